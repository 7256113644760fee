#include "runner/nix/nix_cli.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <exception>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <thread>
#include <unistd.h>

#include "runner/core/error.h"
#include "runner/core/forge.h"
#include "runner/core/text.h"
#include "runner/nix/untrusted_inputs.h"

namespace fs = std::filesystem;

namespace runner::nix {
namespace {

constexpr std::string_view kStoreDir = "/nix/store/";

// Runs fn(i) for i in [0, n) on at most `workers` threads; rethrows the first exception.
void parallelFor(size_t n, int workers, const std::function<void(size_t)>& fn) {
  if (n == 0) return;
  size_t threads = std::min(n, static_cast<size_t>(std::max(workers, 1)));
  if (threads == 1) {
    for (size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::atomic<size_t> next{0};
  std::exception_ptr failure;
  std::mutex failureMu;
  std::vector<std::thread> pool;
  for (size_t t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (size_t i; (i = next.fetch_add(1)) < n;) {
        try {
          fn(i);
        } catch (...) {
          std::scoped_lock lk(failureMu);
          if (!failure) failure = std::current_exception();
        }
      }
    });
  }
  for (auto& t : pool) t.join();
  if (failure) std::rethrow_exception(failure);
}

// The --apply function for the first pass: one attribute per host, each
// {value = ...} | {failed = true} | {missing = true}.
std::string chunkExpression(const std::string& fn,
                            const std::optional<std::vector<std::string>>& names) {
  std::string list = "builtins.attrNames cs";
  if (names) {
    list = "[";
    for (const auto& n : *names) list += " " + nixStringLiteral(n);
    list += " ]";
  }
  return "cs: let\n"
         "  fn = " +
         fn +
         ";\n"
         "  one = n:\n"
         "    if !(builtins.hasAttr n cs) then { missing = true; }\n"
         "    else let r = builtins.tryEval (let v = fn n cs.${n}; in builtins.deepSeq v v);\n"
         "      in if r.success then { value = r.value; } else { failed = true; };\n"
         "in builtins.listToAttrs (map (n: { name = n; value = one n; }) (" +
         list + "))";
}

std::string singleExpression(const std::string& fn, const std::string& host) {
  return "cs: let fn = " + fn + "; n = " + nixStringLiteral(host) +
         "; v = fn n cs.${n}; in builtins.deepSeq v v";
}

const char* kDrvPathFn = "n: c: c.config.system.build.toplevel.drvPath";

const char* kHostInfoFn =
    "n: c: let\n"
    "    cfg = c.config;\n"
    "    try = x: let r = builtins.tryEval x; in if r.success then r.value else null;\n"
    "    plat = try (cfg.nixpkgs.hostPlatform or null);\n"
    "    fromPlat = if builtins.isAttrs plat then plat.system or null else plat;\n"
    "  in {\n"
    "    clan = try (cfg.clan.core.networking.targetHost or null);\n"
    "    colmena = try (cfg.deployment.targetHost or null);\n"
    "    explicitUpdate = try (cfg.clan.core.deployment.requireExplicitUpdate or null);\n"
    "    tags = try (cfg.deployment.tags or null);\n"
    // issue 18: the rest of Colmena's deployment options Switchyard honours or refuses, and
    // which Clan vars backend the machine's secrets use (deploy_stage.h HostFacts)
    "    user = try (cfg.deployment.targetUser or null);\n"
    "    port = try (cfg.deployment.targetPort or null);\n"
    "    sshOptions = try (cfg.deployment.sshOptions or null);\n"
    "    escalation = try (cfg.deployment.privilegeEscalationCommand or null);\n"
    "    replaceUnknownProfiles = try (cfg.deployment.replaceUnknownProfiles or null);\n"
    "    clanVars = try (let v = cfg.clan.core.vars or null; in if v == null then null else let\n"
    "        files = builtins.concatMap (g: builtins.attrValues (g.files or { }))\n"
    "          (builtins.attrValues (v.generators or { }));\n"
    "        deployed = builtins.filter (f: (f.secret or true) && (f.deploy or true)) files;\n"
    "      in {\n"
    "        store = v.settings.secretStore or \"sops\";\n"
    "        secrets = builtins.length deployed;\n"
    "        activation = builtins.length (builtins.filter\n"
    "          (f: (f.neededFor or \"services\") == \"activation\") deployed);\n"
    "        ageKeyFile = let k = cfg.sops.age.keyFile or null; in\n"
    "          if k == null then null else toString k;\n"
    "      });\n"
    "    system = if fromPlat != null then fromPlat\n"
    "      else try (c.pkgs.stdenv.hostPlatform.system or c.pkgs.system or null);\n"
    "  }";

bool isBareRepository(const fs::path& p) {
  std::error_code ec;
  return !fs::exists(p / ".git", ec) && fs::exists(p / "HEAD", ec) &&
         fs::is_directory(p / "objects", ec);
}

// Writes refs/switchyard/commits/<sha> = <sha> unless it is there: `<ref>.lock` created
// exclusively, filled, renamed over the ref, as git itself does. Another writer holding the
// lock writes the same content, so we wait for its ref to appear. Returns the ref's name.
std::string pinCommit(const fs::path& repo, const std::string& sha) {
  std::string name = "refs/switchyard/commits/" + sha;
  fs::path ref = repo / name;
  std::error_code ec;
  if (fs::exists(ref, ec)) return name;
  fs::create_directories(ref.parent_path(), ec);
  if (ec) throw SysError(ec.value(), "creating " + ref.parent_path().string());
  fs::path lock = ref.string() + ".lock";
  int fd = ::open(lock.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0 && errno == EEXIST) {
    for (int i = 0; i < 200 && !fs::exists(ref, ec); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (fs::exists(ref, ec)) return name;
    throw SysError(EEXIST, "waiting for " + name + " (" + lock.string() + " is held)");
  }
  if (fd < 0) throw SysError(errno, "creating " + lock.string());
  std::string line = sha + "\n";
  bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ok = ::close(fd) == 0 && ok;
  if (!ok || ::rename(lock.c_str(), ref.c_str()) != 0) {
    int err = errno;
    ::unlink(lock.c_str());
    throw SysError(err, "writing " + ref.string());
  }
  return name;
}

// Where Nix's git fetcher reads commit `rev` of `repo`: the absolute path and, for a bare
// repository, the ref that pins the commit (pinCommit).
struct GitSource {
  std::string path;
  std::optional<std::string> ref;
};
GitSource gitSource(const fs::path& repo, const std::string& rev) {
  GitSource s;
  s.path = fs::absolute(repo).lexically_normal().string();
  while (s.path.size() > 1 && s.path.back() == '/') s.path.pop_back();
  if (rev.size() == 40 && looksLikeSha(rev) && isBareRepository(s.path))  // a full id: a file name
    s.ref = pinCommit(s.path, rev);
  return s;
}

// A Nix attribute set literal of `attrs` (strings, integers and booleans only).
std::string nixAttrs(const nlohmann::json& attrs) {
  std::string out = "{";
  for (const auto& [k, v] : attrs.items()) {
    out += " " + nixStringLiteral(k) + " = ";
    if (v.is_string())
      out += nixStringLiteral(v.get<std::string>());
    else if (v.is_boolean())
      out += v.get<bool>() ? "true" : "false";
    else if (v.is_number_integer() || v.is_number_unsigned())
      out += v.dump();
    else
      throw InputError("fetchTree attribute '" + k + "' is not a plain value");
    out += ";";
  }
  return out + " }";
}

std::vector<std::string> drvRefsIn(std::string_view text) {
  std::vector<std::string> out;
  for (size_t pos = 0; (pos = text.find(kStoreDir, pos)) != std::string_view::npos;) {
    size_t end = pos + kStoreDir.size();
    while (end < text.size() && text[end] != '"' && text[end] != '\'' && text[end] != ' ' &&
           text[end] != '\n' && text[end] != ')' && text[end] != ',')
      ++end;
    std::string_view p = text.substr(pos, end - pos);
    if (endsWith(p, ".drv") && p.find('/', kStoreDir.size()) == std::string_view::npos)
      out.emplace_back(p);
    pos = end;
  }
  return out;
}

}  // namespace

NixCliOptions credentiallessNixOptions(NixCliOptions base, const fs::path& home) {
  auto& env = base.env;
  env["HOME"] = home.string();
  env["XDG_CONFIG_HOME"] = (home / ".config").string();
  env["XDG_CACHE_HOME"] = (home / ".cache").string();
  env["NIX_CONFIG"] = "access-tokens = \nnetrc-file = /dev/null\n";
  env["SSH_AUTH_SOCK"] = std::nullopt;
  env["GIT_SSH_COMMAND"] = "false";
  env["GIT_SSH"] = std::nullopt;
  env["GIT_CONFIG_NOSYSTEM"] = "1";
  env["GIT_CONFIG_GLOBAL"] = "/dev/null";
  env["GIT_TERMINAL_PROMPT"] = "0";
  env["GIT_ASKPASS"] = "false";
  env["SSH_ASKPASS"] = std::nullopt;
  return base;
}

NixCliOptions untrustedNixOptions(NixCliOptions base, const UntrustedJail& jail) {
  base = credentiallessNixOptions(std::move(base), jail.home);
  base.inheritEnv = false;
  base.confine = jail.account;
  base.confine->isolateNetwork = true;
  base.evalTimeout = jail.evalTimeout;
  auto& env = base.env;
  for (auto it = env.begin(); it != env.end();)  // only variables that are set
    it = it->second ? std::next(it) : env.erase(it);
  const char* path = std::getenv("PATH");
  env["PATH"] = path && *path ? path : "/usr/local/bin:/usr/bin:/bin";
  env["TMPDIR"] = (jail.home / "tmp").string();
  env["NIX_REMOTE"] = "daemon";
  // Read after nix.conf. A client the daemon does not trust cannot change the build
  // settings that matter (sandbox, substituters); these are the evaluator's own.
  env["NIX_CONFIG"] = std::string("access-tokens = \n") +
                      "netrc-file = /dev/null\n"
                      "restrict-eval = " +
                      std::string(jail.restrictEval ? "true" : "false") + "\n" +
                      "pure-eval = true\n"
                      "allowed-uris = \n"
                      "allow-import-from-derivation = false\n"
                      "accept-flake-config = false\n"
                      "flake-registry = \n"
                      "warn-dirty = false\n";
  return base;
}

std::string gitFlakeRef(const fs::path& repo, const std::string& rev) {
  GitSource src = gitSource(repo, rev);
  std::string ref = "git+file://" + percentEncode(src.path, "/+@:=,") + "?rev=" + rev;
  if (src.ref) ref += "&ref=" + *src.ref;
  return ref;
}

std::string sourceFlakeRef(const FlakeMetadata& m) {
  auto q = [](const std::string& v) {
    std::string out;
    for (unsigned char c : v) {
      if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
        out += static_cast<char>(c);
      } else {
        static const char* kHex = "0123456789ABCDEF";
        out += '%';
        out += kHex[c >> 4];
        out += kHex[c & 15];
      }
    }
    return out;
  };
  std::string ref = "path:" + percentEncode(m.path, "/+@:=,") + "?narHash=" + q(m.narHash);
  if (!m.rev.empty()) ref += "&rev=" + q(m.rev);
  if (m.revCount) ref += "&revCount=" + std::to_string(*m.revCount);
  ref += "&lastModified=" + std::to_string(m.lastModified);
  return ref;
}

std::string nixStringLiteral(std::string_view s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '"' || c == '\\')
      out += std::string("\\") + c;
    else if (c == '\n')
      out += "\\n";
    else if (c == '\r')
      out += "\\r";
    else if (c == '\t')
      out += "\\t";
    else if (c == '$' && i + 1 < s.size() && s[i + 1] == '{')
      out += "\\$";
    else
      out += c;
  }
  return out + "\"";
}

std::string nixErrorText(std::string_view stderrText) {
  std::vector<std::string> kept;
  bool inError = false;
  for (const auto& raw : split(stderrText, '\n')) {
    std::string line = stripAnsi(raw);
    if (startsWith(line, "error (ignored)")) continue;  // Nix 2.8 noise from its caches
    if (!inError && startsWith(line, "error")) inError = true;
    if (!inError) continue;
    if (startsWith(line, "warning:") || startsWith(line, "(use '--show-trace'")) continue;
    kept.push_back(line);
  }
  if (kept.empty()) {  // no "error" line: keep whatever nix said, minus warnings
    for (const auto& raw : split(stderrText, '\n')) {
      std::string line = stripAnsi(raw);
      if (!startsWith(line, "warning:")) kept.push_back(line);
    }
  }
  return std::string(trim(join(kept, "\n")));
}

std::string nixErrorSummary(std::string_view errorText) {
  std::string first, where;
  for (const auto& raw : split(errorText, '\n')) {
    std::string line(trim(stripAnsi(raw)));
    if (auto pos = line.find("error:"); first.empty() && pos != std::string::npos)
      first = line.substr(pos);
    if (!first.empty() && where.empty() && startsWith(line, "at ")) {
      where = line.substr(3);
      if (!where.empty() && where.back() == ':') where.pop_back();
      // /nix/store/<hash>-source/flake.nix:1:59 -> flake.nix:1:59
      if (startsWith(where, "/nix/store/"))
        if (auto slash = where.find('/', 11); slash != std::string::npos)
          where = where.substr(slash + 1);
    }
  }
  if (first.empty()) first = std::string(trim(split(errorText, '\n').front()));
  return where.empty() ? first : first + " (at " + where + ")";
}

NixCli::NixCli(ProcessRunner& procs, NixCliOptions options)
    : procs_(procs), options_(std::move(options)) {}

RunOptions NixCli::nixCommand(std::vector<std::string> args) const {
  RunOptions o;
  o.program = options_.nix;
  o.args = {"--extra-experimental-features", "nix-command flakes", "--option", "eval-cache",
            "false"};
  o.args.insert(o.args.end(), std::make_move_iterator(args.begin()),
                std::make_move_iterator(args.end()));
  o.env = options_.env;
  o.inheritEnv = options_.inheritEnv;
  o.confine = options_.confine;
  o.timeout = options_.evalTimeout;
  return o;
}

RunResult NixCli::runNix(const RunOptions& o, ProcessLimit::Kind kind) {
  if (!options_.limit) return procs_.run(o);
  ProcessLimit::Permit place(*options_.limit, kind);
  return procs_.run(o);
}

std::vector<std::string> NixCli::hostNames(const std::string& flakeRef) {
  RunResult r = runNix(nixCommand(
      {"eval", "--json", flakeRef + "#nixosConfigurations", "--apply", "builtins.attrNames"}));
  if (!r.ok())
    throw NixError("cannot list nixosConfigurations of " + flakeRef + " (nix " +
                   r.describeStatus() + "): " + nixErrorText(r.errTail));
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  if (!j.is_array()) throw NixError("nix eval printed no host list for " + flakeRef);
  auto names = j.get<std::vector<std::string>>();
  std::sort(names.begin(), names.end());
  return names;
}

HostValue NixCli::evalOneHost(const std::string& flakeRef, const std::string& fn,
                              const std::string& host) {
  RunResult r = runNix(nixCommand({"eval", "--json", flakeRef + "#nixosConfigurations", "--apply",
                                   singleExpression(fn, host)}));
  HostValue v;
  if (r.ok()) {
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    if (!j.is_discarded()) {
      v.value = std::move(j);
      return v;
    }
    v.error = "nix eval printed no JSON";
    return v;
  }
  v.error = r.timedOut ? "evaluation " + r.describeStatus() : nixErrorText(r.errTail);
  if (v.error->empty()) v.error = "nix eval " + r.describeStatus();
  return v;
}

HostEvals NixCli::evalPerHost(const std::string& flakeRef, const std::string& fn,
                              const std::optional<std::vector<std::string>>& hosts,
                              const EvalParallelism& parallelism) {
  HostEvals result;
  std::atomic<int> processes{0};
  std::optional<std::vector<std::string>> names = hosts;
  int wanted = std::max(parallelism.processes, 1);
  if (wanted > 1) {
    // Fetch the revision into the store once, rather than in every process at once.
    try {
      ++processes;
      metadata(flakeRef);
    } catch (const NixError&) {
      // the evaluations below report the problem per host
    }
    if (!names) {
      try {
        ++processes;
        names = hostNames(flakeRef);
      } catch (const NixError& e) {
        result.flakeError = describe(e);
        result.processes = processes;
        return result;
      }
    }
  }
  // Split the hosts round-robin into at most `wanted` chunks (one chunk: "all" when unknown).
  std::vector<std::optional<std::vector<std::string>>> chunks;
  if (!names) {
    chunks.emplace_back(std::nullopt);
  } else {
    size_t n = std::min(names->size(), static_cast<size_t>(wanted));
    chunks.assign(std::max<size_t>(n, names->empty() ? 0 : 1), std::vector<std::string>{});
    for (size_t i = 0; i < names->size(); ++i) chunks[i % chunks.size()]->push_back((*names)[i]);
  }
  std::mutex mu;
  std::vector<std::string> retry;  // hosts to evaluate alone
  bool listUnknownAndFailed = false;
  parallelFor(chunks.size(), static_cast<int>(chunks.size()), [&](size_t i) {
    ++processes;
    RunResult r = runNix(nixCommand({"eval", "--json", flakeRef + "#nixosConfigurations", "--apply",
                                     chunkExpression(fn, chunks[i])}));
    nlohmann::json j = r.ok() ? nlohmann::json::parse(r.out, nullptr, false) : nlohmann::json();
    std::scoped_lock lk(mu);
    if (r.timedOut && chunks[i]) {
      // Slow, not broken: evaluating each host alone would take as long again per host.
      for (const auto& h : *chunks[i]) result.hosts[h].error = "evaluation " + r.describeStatus();
      return;
    }
    if (r.timedOut) {
      result.flakeError = "evaluation " + r.describeStatus();
      return;
    }
    if (!j.is_object()) {
      if (chunks[i])
        retry.insert(retry.end(), chunks[i]->begin(), chunks[i]->end());
      else
        listUnknownAndFailed = true;
      return;
    }
    for (const auto& [host, v] : j.items()) {
      if (v.contains("value"))
        result.hosts[host].value = v["value"];
      else if (v.value("missing", false))
        result.hosts[host].missing = true;
      else
        retry.push_back(host);
    }
  });
  if (result.flakeError) {
    result.processes = processes;
    return result;
  }
  if (listUnknownAndFailed) {
    try {
      ++processes;
      retry = hostNames(flakeRef);
    } catch (const NixError& e) {
      result.flakeError = describe(e);
      result.processes = processes;
      return result;
    }
  }
  std::sort(retry.begin(), retry.end());
  std::vector<HostValue> alone(retry.size());
  parallelFor(retry.size(), parallelism.fallbackWorkers, [&](size_t i) {
    ++processes;
    alone[i] = evalOneHost(flakeRef, fn, retry[i]);
  });
  for (size_t i = 0; i < retry.size(); ++i) result.hosts[retry[i]] = std::move(alone[i]);
  result.processes = processes;
  return result;
}

HostEvals NixCli::evalDrvPaths(const std::string& flakeRef,
                               const std::optional<std::vector<std::string>>& hosts,
                               const EvalParallelism& parallelism) {
  return evalPerHost(flakeRef, kDrvPathFn, hosts, parallelism);
}

TargetChoice chooseTarget(const std::string& host, const std::map<std::string, std::string>& given,
                          const HostValue* info) {
  if (auto it = given.find(host); it != given.end()) return {it->second, "config"};
  if (info && info->value && info->value->is_object())
    for (const char* key : {"clan", "colmena"}) {
      auto it = info->value->find(key);
      if (it != info->value->end() && it->is_string() && !it->get<std::string>().empty())
        return {it->get<std::string>(), key};
    }
  return {host, "name"};
}

const char* hostInfoFunction() { return kHostInfoFn; }

HostEvals NixCli::evalHostInfo(const std::string& flakeRef,
                               const std::optional<std::vector<std::string>>& hosts) {
  return evalPerHost(flakeRef, kHostInfoFn, hosts, {.processes = 1, .fallbackWorkers = 2});
}

FlakeMetadata NixCli::metadata(const std::string& flakeRef) {
  {
    MutexLock lk(mu_);
    if (auto it = metadata_.find(flakeRef); it != metadata_.end()) return it->second;
  }
  RunResult r = runNix(nixCommand({"flake", "metadata", "--json", flakeRef}));
  if (!r.ok())
    throw NixError("nix flake metadata " + flakeRef + " " + r.describeStatus() + ": " +
                   nixErrorText(r.errTail));
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  if (!j.is_object()) throw NixError("nix flake metadata printed no JSON for " + flakeRef);
  FlakeMetadata m;
  m.path = j.value("path", std::string());
  const auto locked = j.value("locked", nlohmann::json::object());
  m.rev = locked.value("rev", j.value("revision", std::string()));
  m.narHash = locked.value("narHash", std::string());
  m.lastModified = locked.value("lastModified", j.value("lastModified", int64_t{0}));
  if (locked.contains("revCount") && locked["revCount"].is_number())
    m.revCount = locked["revCount"].get<int64_t>();
  MutexLock lk(mu_);
  metadata_[flakeRef] = m;
  return m;
}

FlakeMetadata NixCli::fetchGitSource(const fs::path& repo, const std::string& rev) {
  GitSource src = gitSource(repo, rev);
  const std::string key = src.path + "\n" + rev;
  {
    MutexLock lk(mu_);
    if (auto it = sources_.find(key); it != sources_.end()) return it->second;
  }
  nlohmann::json attrs = {{"type", "git"}, {"url", "file://" + src.path}, {"rev", rev}};
  if (src.ref) attrs["ref"] = *src.ref;
  const std::string expr = "let t = builtins.fetchTree " + nixAttrs(attrs) +
                           "; in { path = t.outPath; inherit (t) narHash lastModified rev; "
                           "revCount = t.revCount or null; }";
  RunResult r = runNix(nixCommand({"eval", "--json", "--expr", expr}));
  if (!r.ok())
    throw NixError("copying commit " + shortSha(rev) + " of " + src.path + " into the store (nix " +
                   r.describeStatus() + "): " + nixErrorText(r.errTail));
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  if (!j.is_object() || !j.contains("path") || !j["path"].is_string())
    throw NixError("fetching commit " + shortSha(rev) + ": nix printed no source");
  FlakeMetadata m;
  m.path = j["path"].get<std::string>();
  m.narHash = j.value("narHash", std::string());
  m.rev = j.value("rev", rev);
  m.lastModified = j.value("lastModified", int64_t{0});
  if (j.contains("revCount") && j["revCount"].is_number())
    m.revCount = j["revCount"].get<int64_t>();
  MutexLock lk(mu_);
  sources_[key] = m;
  return m;
}

void NixCli::fetchInputs(const std::vector<InputToFetch>& inputs) {
  if (inputs.empty()) return;
  auto fetchExpr = [](const std::vector<const InputToFetch*>& list) {
    std::string e = "builtins.length [";
    for (const auto* in : list) e += " (builtins.fetchTree " + nixAttrs(in->attrs) + ").outPath";
    return e + " ]";
  };
  std::vector<const InputToFetch*> all;
  all.reserve(inputs.size());
  for (const auto& in : inputs) all.push_back(&in);
  RunResult r = runNix(nixCommand({"eval", "--json", "--expr", fetchExpr(all)}));
  if (r.ok()) return;
  // Which one: each alone (only on this failure path).
  for (const auto* in : all) {
    RunResult one = runNix(nixCommand({"eval", "--json", "--expr", fetchExpr({in})}));
    if (!one.ok())
      throw NixError("fetching input '" + in->node + "' (" + sourceOf(in->attrs) + ", nix " +
                     one.describeStatus() + "): " + nixErrorText(one.errTail));
  }
  throw NixError("fetching the flake's inputs (nix " + r.describeStatus() +
                 "): " + nixErrorText(r.errTail));
}

DerivationSet NixCli::showDerivations(const std::vector<std::string>& drvPaths, bool recursive) {
  if (drvPaths.empty()) return {};
  std::vector<std::string> args = {"show-derivation"};
  if (recursive) args.push_back("-r");
  args.insert(args.end(), drvPaths.begin(), drvPaths.end());
  RunOptions o = nixCommand(std::move(args));
  o.maxStdout = size_t{1} << 30;
  RunResult r = runNix(o);
  if (!r.ok())
    throw NixError("nix show-derivation " + r.describeStatus() + ": " + nixErrorText(r.errTail));
  return parseShowDerivation(r.out, "nix show-derivation");
}

DryRun NixCli::dryRun(const std::vector<std::string>& drvPaths) {
  DryRun d;
  if (drvPaths.empty()) return d;
  std::vector<std::string> args = {"build", "--dry-run", "--json"};
  args.insert(args.end(), drvPaths.begin(), drvPaths.end());
  RunOptions o = nixCommand(std::move(args));
  o.stderrTailBytes = size_t{16} << 20;
  RunResult r = runNix(o);
  if (!r.ok())
    throw NixError("nix build --dry-run " + r.describeStatus() + ": " + nixErrorText(r.errTail));
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  if (j.is_array()) {
    for (const auto& e : j)
      if (e.contains("drvPath") && e.contains("outputs"))
        d.outputs[e["drvPath"].get<std::string>()] =
            e["outputs"].get<std::map<std::string, std::string>>();
  }
  std::set<std::string>* into = nullptr;
  for (const auto& raw : split(r.errTail, '\n')) {
    std::string line = stripAnsi(raw);
    if (startsWith(line, "these ") || startsWith(line, "this ")) {
      into = line.find("will be built") != std::string::npos     ? &d.willBuild
             : line.find("will be fetched") != std::string::npos ? &d.willFetch
                                                                 : nullptr;
      continue;
    }
    if (into && startsWith(line, "  /"))
      into->insert(std::string(trim(line)));
    else
      into = nullptr;
  }
  return d;
}

BuildRun NixCli::build(const BuildRequest& req,
                       const std::function<void(const LogEvent&)>& onEvent) {
  // -L must come before --log-format: in Nix 2.8 it resets the format to plain text.
  std::vector<std::string> args = {"build", "--no-link",    "--json",
                                   "-L",    "--log-format", "internal-json"};
  if (req.keepGoing) args.push_back("--keep-going");
  if (req.maxJobs) {
    args.push_back("--max-jobs");
    args.push_back(std::to_string(*req.maxJobs));
  }
  if (req.drvTimeout.count() > 0) {
    args.push_back("--timeout");
    args.push_back(std::to_string(req.drvTimeout.count()));
  }
  if (req.maxSilentTime.count() > 0) {
    args.push_back("--max-silent-time");
    args.push_back(std::to_string(req.maxSilentTime.count()));
  }
  args.insert(args.end(), req.extraArgs.begin(), req.extraArgs.end());
  args.insert(args.end(), req.drvPaths.begin(), req.drvPaths.end());
  RunOptions o = nixCommand(std::move(args));
  o.timeout = req.timeout;
  for (const auto& [k, v] : req.env) o.env[k] = v;
  BuildRun run;
  o.onStderrLine = [&](std::string_view line) {
    LogEvent ev = parseLogLine(line);
    if (auto* m = std::get_if<LogMessage>(&ev); m && m->level == 0) run.errors.push_back(m->msg);
    if (onEvent) onEvent(ev);
  };
  run.process = runNix(o, ProcessLimit::Kind::Build);
  auto j = nlohmann::json::parse(run.process.out, nullptr, false);
  if (run.process.ok() && j.is_array()) {
    for (const auto& e : j)
      if (e.contains("drvPath") && e.contains("outputs"))
        run.outputs[e["drvPath"].get<std::string>()] =
            e["outputs"].get<std::map<std::string, std::string>>();
  }
  return run;
}

bool NixCli::addGcRoot(const fs::path& root, const std::string& storePath, std::string* error) {
  RunOptions o;
  fs::path nix(options_.nix);
  o.program = nix.has_parent_path() ? (nix.parent_path() / "nix-store").string() : "nix-store";
  o.args = {"--add-root", root.string(), "--indirect", "--realise", storePath};
  o.timeout = std::chrono::minutes(5);
  fs::create_directories(root.parent_path());
  RunResult r = procs_.run(o);
  if (r.ok()) return true;
  if (error) *error = nixErrorText(r.errTail);
  return false;
}

bool NixCli::diffClosures(const std::string& oldPath, const std::string& newPath, std::string& out,
                          std::string* error) {
  RunOptions o = nixCommand({"store", "diff-closures", oldPath, newPath});
  o.timeout = std::chrono::minutes(5);
  RunResult r = runNix(o);
  if (!r.ok()) {
    if (error)
      *error =
          r.timedOut ? "nix store diff-closures " + r.describeStatus() : nixErrorText(r.errTail);
    return false;
  }
  out.clear();
  for (size_t i = 0; i < r.out.size(); ++i) {  // drop ESC [ … m (SGR colour codes)
    if (r.out[i] == '\x1b' && i + 1 < r.out.size() && r.out[i + 1] == '[') {
      size_t j = i + 2;
      while (j < r.out.size() &&
             (std::isdigit(static_cast<unsigned char>(r.out[j])) || r.out[j] == ';'))
        ++j;
      if (j < r.out.size() && r.out[j] == 'm') {
        i = j;
        continue;
      }
    }
    out += r.out[i];
  }
  return true;
}

bool NixCli::closureMentions(const std::vector<std::string>& drvPaths,
                             const std::vector<std::string>& needles) {
  // One virtual root over all of them: any mention counts.
  for (const auto& p : drvPaths)
    if (!closuresMentioning({p}, needles).empty()) return true;
  return false;
}

std::set<std::string> NixCli::closuresMentioning(const std::vector<std::string>& roots,
                                                 const std::vector<std::string>& needles) {
  struct FileScan {
    bool mentions = false;
    std::vector<std::string> refs;
  };
  std::map<std::string, FileScan> scanned;
  auto scan = [&](const std::string& p) -> const FileScan& {
    auto it = scanned.find(p);
    if (it != scanned.end()) return it->second;
    FileScan f;
    std::ifstream in(p, std::ios::binary);
    if (!in) {
      f.mentions = true;  // unreadable: the safe answer
    } else {
      std::stringstream ss;
      ss << in.rdbuf();
      const std::string text = ss.str();
      for (const auto& n : needles)
        if (!n.empty() && text.find(n) != std::string::npos) f.mentions = true;
      f.refs = drvRefsIn(text);
    }
    return scanned.emplace(p, std::move(f)).first->second;
  };
  std::set<std::string> out;
  for (const auto& root : roots) {
    std::set<std::string> seen;
    std::vector<std::string> todo = {root};
    while (!todo.empty()) {
      std::string p = std::move(todo.back());
      todo.pop_back();
      if (!seen.insert(p).second) continue;
      const FileScan& f = scan(p);
      if (f.mentions) {
        out.insert(root);
        break;
      }
      for (const auto& r : f.refs)
        if (!seen.count(r)) todo.push_back(r);
    }
  }
  return out;
}

}  // namespace runner::nix
