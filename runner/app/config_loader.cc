#include "runner/app/config_loader.h"

#include <algorithm>
#include <arpa/inet.h>
#include <cctype>
#include <map>
#include <set>

#include <yaml-cpp/yaml.h>

#include "runner/core/error.h"
#include "runner/core/plan.h"
#include "runner/core/text.h"
#include "runner/http/server.h"
#include "runner/os/files.h"

namespace fs = std::filesystem;

namespace runner::app {
namespace {

// What is wrong with a listen address, or nullopt: host:port, where host is an IPv4 address
// (four numbers 0-255), an IPv6 address in brackets, or a host name; port 0-65535 (0: any).
std::optional<std::string> listenProblem(const std::string& listen) {
  const std::string usage = "must be host:port, e.g. 127.0.0.1:8470";
  std::string host, port;
  if (!listen.empty() && listen[0] == '[') {
    auto close = listen.find(']');
    if (close == std::string::npos || close + 1 >= listen.size() || listen[close + 1] != ':')
      return usage + " ([v6]:port for IPv6)";
    host = listen.substr(1, close - 1);
    port = listen.substr(close + 2);
    in6_addr a6{};
    if (::inet_pton(AF_INET6, host.c_str(), &a6) != 1)
      return "'" + host + "' is not an IPv6 address";
  } else {
    auto colon = listen.rfind(':');
    if (colon == std::string::npos) return usage;
    host = listen.substr(0, colon);
    port = listen.substr(colon + 1);
    if (host.empty()) return usage;
    if (host.find(':') != std::string::npos)
      return "IPv6 addresses must be in brackets: [::1]:8470";
    bool numeric = host.find_first_not_of("0123456789.") == std::string::npos;
    in_addr a4{};
    if (numeric && ::inet_pton(AF_INET, host.c_str(), &a4) != 1)
      return "'" + host + "' is not an IPv4 address";
    if (!numeric)
      for (char ch : host)
        if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '.'))
          return "'" + host + "' is not a host name or address";
  }
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos || std::stol(port) > 65535)
    return "port '" + port + "' must be a number from 0 to 65535";
  return std::nullopt;
}

int lineOf(const YAML::Node& n) { return n.Mark().line >= 0 ? n.Mark().line + 1 : 0; }

// Edit distance, for "did you mean" suggestions.
size_t distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

class Reader {
 public:
  Reader(std::vector<ConfigIssue>& issues, fs::path baseDir)
      : issues_(issues), baseDir_(std::move(baseDir)) {}

  void error(const YAML::Node& n, const std::string& key, const std::string& msg) {
    issues_.push_back({lineOf(n), key, msg, false});
  }
  void warn(const YAML::Node& n, const std::string& key, const std::string& msg) {
    issues_.push_back({lineOf(n), key, msg, true});
  }

  // Reports keys of a mapping that are not in `known`, with a suggestion.
  bool mapping(const YAML::Node& n, const std::string& key,
               std::initializer_list<const char*> known) {
    return mapping(n, key, std::vector<const char*>(known));
  }
  bool mapping(const YAML::Node& n, const std::string& key, const std::vector<const char*>& known) {
    if (!n.IsMap()) {
      error(n, key, "must be a mapping");
      return false;
    }
    for (const auto& kv : n) {
      std::string k = kv.first.Scalar();
      if (std::none_of(known.begin(), known.end(), [&](const char* s) { return k == s; })) {
        std::string best;
        size_t bestD = 4;
        for (const char* s : known) {
          size_t d = distance(k, s);
          if (d < bestD) bestD = d, best = s;
        }
        error(kv.first, join(key, k),
              "unknown key" + (best.empty() ? std::string() : " (did you mean '" + best + "'?)"));
      }
    }
    return true;
  }

  static std::string join(const std::string& a, const std::string& b) {
    return a.empty() ? b : a + "." + b;
  }

  std::optional<std::string> string(const YAML::Node& n, const std::string& key) {
    if (!n.IsScalar()) {
      error(n, key, "must be a string");
      return std::nullopt;
    }
    return n.Scalar();
  }

  std::optional<int64_t> positiveInt(const YAML::Node& n, const std::string& key) {
    try {
      if (n.IsScalar()) {
        auto v = n.as<int64_t>();
        if (v > 0) return v;
      }
    } catch (const YAML::Exception&) {
    }
    error(n, key, "must be a positive integer");
    return std::nullopt;
  }

  std::optional<int64_t> nonNegativeInt(const YAML::Node& n, const std::string& key) {
    try {
      if (n.IsScalar()) {
        auto v = n.as<int64_t>();
        if (v >= 0) return v;
      }
    } catch (const YAML::Exception&) {
    }
    error(n, key, "must be 0 or a positive integer");
    return std::nullopt;
  }

  std::optional<bool> boolean(const YAML::Node& n, const std::string& key) {
    try {
      if (n.IsScalar()) return n.as<bool>();
    } catch (const YAML::Exception&) {
    }
    error(n, key, "must be true or false");
    return std::nullopt;
  }

  std::optional<std::chrono::seconds> duration(const YAML::Node& n, const std::string& key) {
    if (auto s = string(n, key)) {
      try {
        auto ms = parseDuration(*s);
        return std::chrono::duration_cast<std::chrono::seconds>(ms +
                                                                std::chrono::milliseconds(999));
      } catch (const InputError& e) {
        error(n, key, describe(e));
      }
    }
    return std::nullopt;
  }

  std::vector<std::string> stringList(const YAML::Node& n, const std::string& key) {
    std::vector<std::string> out;
    if (!n.IsSequence()) {
      error(n, key, "must be a list");
      return out;
    }
    for (size_t i = 0; i < n.size(); ++i)
      if (auto s = string(n[i], key + "[" + std::to_string(i) + "]")) out.push_back(*s);
    return out;
  }

  // A path to a secret: resolved, and checked to exist (a warning: the config may be written
  // on another machine than the one that runs it).
  std::optional<fs::path> secretFile(const YAML::Node& n, const std::string& key) {
    auto s = string(n, key);
    if (!s) return std::nullopt;
    fs::path p = resolve(*s);
    std::error_code ec;
    if (!fs::exists(p, ec))
      warn(n, key, "file " + p.string() + " does not exist");
    else if (fs::file_size(p, ec) == 0)
      warn(n, key, "file " + p.string() + " is empty");
    return p;
  }

  fs::path resolve(const std::string& s) const {
    fs::path p(s);
    return p.is_absolute() ? p : baseDir_ / p;
  }

 private:
  std::vector<ConfigIssue>& issues_;
  fs::path baseDir_;
};

// `build:` (issue 16): remote builders for trusted builds, in Nix's own `builders` syntax (a
// string) or as a list of entries.
void readBuild(Reader& r, const YAML::Node& n, Config& c) {
  if (!r.mapping(n, "build", {"builders", "builders_use_substitutes", "max_jobs", "known_hosts"}))
    return;
  if (const auto& b = n["builders"]; b) {
    if (b.IsScalar()) {
      try {
        c.build.builders = parseNixBuilders(b.Scalar());
      } catch (const InputError& e) {
        r.error(b, "build.builders", describe(e));
      }
    } else if (b.IsSequence()) {
      for (size_t i = 0; i < b.size(); ++i) {
        const std::string key = "build.builders[" + std::to_string(i) + "]";
        const YAML::Node& e = b[i];
        if (!r.mapping(e, key,
                       {"uri", "systems", "max_jobs", "speed_factor", "features",
                        "mandatory_features", "identity_file"}))
          continue;
        if (!e["uri"]) {
          r.error(e, key + ".uri", "is required (ssh://user@host or ssh-ng://user@host)");
          continue;
        }
        auto uri = r.string(e["uri"], key + ".uri");
        if (!uri) continue;
        RemoteBuilderConfig rb;
        try {
          rb = parseBuilderUri(*uri);
        } catch (const InputError& x) {
          r.error(e["uri"], key + ".uri", describe(x));
          continue;
        }
        auto words = [&](const char* k) {
          std::vector<std::string> out;
          if (!e[k]) return out;
          if (e[k].IsScalar()) {
            for (auto& w : split(e[k].Scalar(), ','))
              if (!std::string(trim(w)).empty()) out.emplace_back(trim(w));
          } else {
            out = r.stringList(e[k], key + "." + k);
          }
          return out;
        };
        rb.systems = words("systems");
        rb.features = words("features");
        rb.mandatoryFeatures = words("mandatory_features");
        if (e["max_jobs"])
          if (auto v = r.positiveInt(e["max_jobs"], key + ".max_jobs")) rb.maxJobs = int(*v);
        if (e["speed_factor"])
          if (auto v = r.positiveInt(e["speed_factor"], key + ".speed_factor"))
            rb.speedFactor = int(*v);
        if (e["identity_file"])
          rb.identityFile = r.secretFile(e["identity_file"], key + ".identity_file");
        c.build.builders.push_back(std::move(rb));
      }
    } else {
      r.error(b, "build.builders", "must be Nix's builders string or a list of builders");
    }
    // One client config entry per host: two builders on one host must agree on how to reach it.
    std::map<std::string, const RemoteBuilderConfig*> byHost;
    for (const auto& rb : c.build.builders) {
      auto [it, fresh] = byHost.emplace(rb.host, &rb);
      if (!fresh && (it->second->port != rb.port || it->second->user != rb.user ||
                     it->second->identityFile != rb.identityFile))
        r.error(b, "build.builders",
                "host '" + rb.host + "' is listed twice with a different user, port or key");
    }
  }
  if (n["builders_use_substitutes"])
    if (auto v = r.boolean(n["builders_use_substitutes"], "build.builders_use_substitutes"))
      c.build.buildersUseSubstitutes = *v;
  if (const auto& m = n["max_jobs"]; m) {
    int64_t v = -1;
    try {
      if (m.IsScalar()) v = m.as<int64_t>();
    } catch (const YAML::Exception&) {
    }
    if (v < 0)
      r.error(m, "build.max_jobs", "must be 0 (build only on the builders) or more");
    else
      c.build.maxJobs = int(v);
  }
  if (n["known_hosts"])
    if (auto p = r.string(n["known_hosts"], "build.known_hosts")) {
      c.build.knownHosts = r.resolve(*p);
      std::error_code ec;
      if (!fs::is_regular_file(*c.build.knownHosts, ec))
        r.warn(n["known_hosts"], "build.known_hosts",
               "file " + c.build.knownHosts->string() +
                   " does not exist (builders' host keys are pinned: builds on them need it)");
    }
  if (c.build.maxJobs == 0 && c.build.builders.empty())
    r.error(n["max_jobs"], "build.max_jobs", "0 needs at least one entry in build.builders");
}

void readForge(Reader& r, const std::string& name, const YAML::Node& n, Config& c) {
  std::string key = "forges." + name;
  // The name is a URL part (/hooks/<name>) and a directory (mirrors/<name>/owner/repo.git).
  if (name.empty() || name.size() > 64 || name.front() == '.' ||
      name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") !=
          std::string::npos)
    r.error(
        n, key,
        "'" + neutralizeControls(name) +
            "' is not a forge name (1-64 letters, digits, '-', '_', '.', not starting with '.')");
  if (!r.mapping(n, key,
                 {"type", "url", "api_url", "token_file", "webhook_secret_file", "app_id",
                  "private_key_file", "fold_statuses_above"}))
    return;
  ForgeConfig f;
  f.name = name;
  if (!n["type"]) {
    r.error(n, key + ".type", "is required (gitea, forgejo or github)");
  } else if (auto t = r.string(n["type"], key + ".type")) {
    if (*t != "gitea" && *t != "forgejo" && *t != "github")
      r.error(n["type"], key + ".type", "must be gitea, forgejo or github, not '" + *t + "'");
    f.type = *t;
  }
  if (n["url"]) {
    if (auto u = r.string(n["url"], key + ".url")) {
      f.url = *u;
      while (!f.url.empty() && f.url.back() == '/') f.url.pop_back();
      if (!startsWith(f.url, "http://") && !startsWith(f.url, "https://"))
        r.error(n["url"], key + ".url", "must start with http:// or https://");
    }
  } else if (f.type != "github") {
    r.error(n, key + ".url", "is required for " + f.type);
  } else {
    f.url = "https://github.com";
  }
  if (n["api_url"]) {
    if (auto u = r.string(n["api_url"], key + ".api_url")) f.apiUrl = *u;
  } else if (f.type == "github") {
    f.apiUrl = f.url == "https://github.com" ? "https://api.github.com" : f.url + "/api/v3";
  } else {
    f.apiUrl = f.url + "/api/v1";
  }
  while (!f.apiUrl.empty() && f.apiUrl.back() == '/') f.apiUrl.pop_back();
  if (n["token_file"]) f.tokenFile = r.secretFile(n["token_file"], key + ".token_file");
  if (n["webhook_secret_file"])
    f.webhookSecretFile = r.secretFile(n["webhook_secret_file"], key + ".webhook_secret_file");
  else
    r.error(n, key + ".webhook_secret_file", "is required: unsigned webhooks are refused (401)");
  if (n["app_id"]) f.appId = r.positiveInt(n["app_id"], key + ".app_id");
  if (n["private_key_file"])
    f.privateKeyFile = r.secretFile(n["private_key_file"], key + ".private_key_file");
  if (f.appId.has_value() != f.privateKeyFile.has_value())
    r.error(n, key, "app_id and private_key_file go together (a GitHub App)");
  if (f.appId && f.type != "github") r.error(n["app_id"], key + ".app_id", "only for github");
  if (n["fold_statuses_above"])
    if (auto v = r.nonNegativeInt(n["fold_statuses_above"], key + ".fold_statuses_above"))
      f.foldStatusesAbove = static_cast<size_t>(*v);
  if (!f.appId && !f.tokenFile)
    r.warn(n, key, "no token_file (or GitHub App): statuses cannot be posted");
  c.forges[name] = std::move(f);
}

// evaluate / build / allowed_inputs, at the top level's `untrusted:` and per repository.
void readUntrustedPolicy(Reader& r, const YAML::Node& n, const std::string& key, UntrustedPolicy& p,
                         std::initializer_list<const char*> extraKeys = {}) {
  std::vector<const char*> known = {"evaluate", "build", "allowed_inputs"};
  known.insert(known.end(), extraKeys.begin(), extraKeys.end());
  if (!r.mapping(n, key, known)) return;
  if (n["evaluate"])
    if (auto v = r.boolean(n["evaluate"], key + ".evaluate")) p.evaluate = *v;
  if (n["build"]) {
    if (auto s = r.string(n["build"], key + ".build")) {
      if (*s == "approve")
        p.build = UntrustedBuild::Approve;
      else if (*s == "always")
        p.build = UntrustedBuild::Always;
      else if (*s == "never")
        p.build = UntrustedBuild::Never;
      else
        r.error(n["build"], key + ".build", "must be approve, always or never, not '" + *s + "'");
    }
  }
  if (n["allowed_inputs"])
    p.allowedInputs = r.stringList(n["allowed_inputs"], key + ".allowed_inputs");
}

void readRepo(Reader& r, size_t index, const YAML::Node& n, Config& c) {
  std::string key = "repos[" + std::to_string(index) + "]";
  if (!r.mapping(n, key,
                 {"forge", "name", "path", "url", "deploy_branches", "detection", "rollout",
                  "activation", "hosts", "skip_self_revision_only", "build_timeout", "untrusted"}))
    return;
  RepoConfig repo;
  repo.untrusted = c.untrusted.defaults;
  if (n["name"]) {
    if (auto s = r.string(n["name"], key + ".name")) {
      repo.name = *s;
      try {  // the name becomes the mirror's path: it must stay inside the state dir
        os::pathUnder("/", *s);
      } catch (const InputError&) {
        r.error(n["name"], key + ".name",
                "'" + *s + "' is not a repository name (owner/name, no '.' or '..' parts)");
      }
    }
  } else {
    r.error(n, key + ".name", "is required (owner/name as the forge names it)");
  }
  if (n["forge"]) {
    if (auto s = r.string(n["forge"], key + ".forge")) {
      repo.forge = *s;
      if (!c.forges.count(*s))
        r.error(n["forge"], key + ".forge", "no forge named '" + *s + "' under forges:");
    }
  }
  if (n["path"])
    if (auto s = r.string(n["path"], key + ".path")) {
      repo.path = r.resolve(*s);
      std::error_code ec;
      if (!fs::is_directory(*repo.path, ec))
        r.warn(n["path"], key + ".path",
               "no repository at " + repo.path->string() + " (the directory does not exist)");
    }
  if (n["url"])
    if (auto s = r.string(n["url"], key + ".url")) repo.url = *s;
  if (!repo.path && !repo.url && !repo.forge)
    r.error(n, key, "needs a path, a url or a forge to fetch the repository from");
  if (n["deploy_branches"]) {
    repo.deployBranches = r.stringList(n["deploy_branches"], key + ".deploy_branches");
  }
  if (n["detection"]) {
    if (auto s = r.string(n["detection"], key + ".detection")) {
      if (*s == "static")
        repo.detection = PlanMode::Static;
      else if (*s == "exact")
        repo.detection = PlanMode::Exact;
      else if (*s == "auto")
        repo.detection = PlanMode::Auto;
      else
        r.error(n["detection"], key + ".detection",
                "must be static, exact or auto, not '" + *s + "'");
    }
  }
  if (const auto& ro = n["rollout"];
      ro && r.mapping(ro, key + ".rollout",
                      {"canary", "max_parallel", "stop_on_failure", "retry_unreachable"})) {
    if (ro["canary"]) repo.rollout.canary = r.stringList(ro["canary"], key + ".rollout.canary");
    if (ro["max_parallel"])
      if (auto v = r.positiveInt(ro["max_parallel"], key + ".rollout.max_parallel"))
        repo.rollout.maxParallel = static_cast<int>(*v);
    if (ro["stop_on_failure"])
      if (auto v = r.boolean(ro["stop_on_failure"], key + ".rollout.stop_on_failure"))
        repo.rollout.stopOnFailure = *v;
    if (ro["retry_unreachable"])
      if (auto d = r.duration(ro["retry_unreachable"], key + ".rollout.retry_unreachable"))
        repo.rollout.retryUnreachable = *d;
  }
  if (const auto& a = n["activation"];
      a && r.mapping(a, key + ".activation",
                     {"confirm_timeout", "health_checks", "http_checks", "switch_timeout",
                      "substitute_on_target"})) {
    if (a["confirm_timeout"])
      if (auto d = r.duration(a["confirm_timeout"], key + ".activation.confirm_timeout"))
        repo.activation.confirmTimeout = *d;
    if (a["switch_timeout"])
      if (auto d = r.duration(a["switch_timeout"], key + ".activation.switch_timeout"))
        repo.activation.switchTimeout = *d;
    if (a["health_checks"])
      repo.activation.healthChecks =
          r.stringList(a["health_checks"], key + ".activation.health_checks");
    if (a["http_checks"])
      repo.activation.httpChecks = r.stringList(a["http_checks"], key + ".activation.http_checks");
    if (a["substitute_on_target"])
      if (auto v = r.boolean(a["substitute_on_target"], key + ".activation.substitute_on_target"))
        repo.activation.substituteOnTarget = *v;
  }
  if (const auto& hs = n["hosts"]; hs) {
    if (!hs.IsMap()) {
      r.error(hs, key + ".hosts", "must be a mapping of host name to {target, deploy, action}");
    } else {
      for (const auto& kv : hs) {
        std::string hk = key + ".hosts." + kv.first.Scalar();
        HostConfig h;
        h.name = kv.first.Scalar();
        if (auto why = hostNameProblem(h.name)) {
          r.error(kv.first, hk, "is not an accepted host name: " + *why);
          continue;
        }
        if (kv.second.IsNull()) {
          repo.hosts.push_back(h);
          continue;
        }
        if (!r.mapping(kv.second, hk,
                       {"target", "deploy", "action", "build_on", "retry_unreachable", "user"}))
          continue;
        if (kv.second["build_on"]) {
          if (auto s = r.string(kv.second["build_on"], hk + ".build_on")) {
            if (*s == "runner")
              h.buildOn = BuildPlace::Runner;
            else if (*s == "target")
              h.buildOn = BuildPlace::Target;
            else
              r.error(kv.second["build_on"], hk + ".build_on",
                      "must be runner or target, not '" + *s +
                          "' (for other build machines use build.builders)");
          }
        }
        if (kv.second["user"])
          if (auto u = r.string(kv.second["user"], hk + ".user")) {
            std::optional<Target> t;  // the target's user-name rules, said of the user alone
            try {
              t = parseTarget(*u + "@x");
            } catch (const InputError&) {
            }
            if (t && t->user == *u && t->host == "x")
              h.user = *u;
            else
              r.error(kv.second["user"], hk + ".user",
                      "'" + *u +
                          "' is not a user name (letters, digits, '.', '_' or '-', not "
                          "starting with '-')");
          }
        if (kv.second["retry_unreachable"])
          h.retryUnreachable =
              r.duration(kv.second["retry_unreachable"], hk + ".retry_unreachable");
        if (kv.second["deploy"]) {
          if (auto s = r.string(kv.second["deploy"], hk + ".deploy")) {
            if (*s == "auto")
              h.deploy = DeployPolicy::Auto;
            else if (*s == "manual")
              h.deploy = DeployPolicy::Manual;
            else if (*s == "never")
              h.deploy = DeployPolicy::Never;
            else
              r.error(kv.second["deploy"], hk + ".deploy",
                      "must be auto, manual or never, not '" + *s + "'");
          }
        }
        if (kv.second["action"]) {
          if (auto s = r.string(kv.second["action"], hk + ".action")) {
            if (*s == "switch")
              h.action = SwitchAction::Switch;
            else if (*s == "boot")
              h.action = SwitchAction::Boot;
            else if (*s == "test")
              h.action = SwitchAction::Test;
            else
              r.error(kv.second["action"], hk + ".action",
                      "must be switch, boot or test, not '" + *s + "'");
          }
        }
        if (kv.second["target"]) {
          if (auto t = r.string(kv.second["target"], hk + ".target")) {
            try {
              parseTarget(*t);
              h.target = *t;
            } catch (const InputError& e) {
              r.error(kv.second["target"], hk + ".target", describe(e));
            }
          }
        }
        repo.hosts.push_back(h);
      }
    }
  }
  if (n["skip_self_revision_only"])
    if (auto v = r.boolean(n["skip_self_revision_only"], key + ".skip_self_revision_only"))
      repo.skipSelfRevisionOnly = *v;
  if (n["build_timeout"])
    if (auto d = r.duration(n["build_timeout"], key + ".build_timeout")) repo.buildTimeout = *d;
  if (n["untrusted"]) readUntrustedPolicy(r, n["untrusted"], key + ".untrusted", repo.untrusted);
  for (const auto& canary : repo.rollout.canary) {
    if (startsWith(canary, "@")) {  // a Colmena tag: the flake says which hosts carry it
      if (canary.size() == 1) r.error(n["rollout"], key + ".rollout.canary", "'@' names no tag");
      continue;
    }
    if (!repo.hosts.empty() && std::none_of(repo.hosts.begin(), repo.hosts.end(),
                                            [&](const HostConfig& h) { return h.name == canary; }))
      r.warn(n["rollout"], key + ".rollout.canary", "'" + canary + "' is not under hosts:");
  }
  c.repos.push_back(std::move(repo));
}

}  // namespace

bool ConfigCheck::ok() const {
  return std::none_of(issues.begin(), issues.end(),
                      [](const ConfigIssue& i) { return !i.warning; });
}

std::string formatIssue(const std::string& fileName, const ConfigIssue& i) {
  std::string out = fileName;
  if (i.line > 0) out += ":" + std::to_string(i.line);
  out += ": ";
  if (i.warning) out += "warning: ";
  if (!i.key.empty()) out += i.key + ": ";
  return out + i.message;
}

namespace {

// `server:`: the HTTP server's limits, each within bounds a working daemon needs (a request
// line the UI's URLs fit in, a minute of headers at most, …), and consistent with each other.
void readServerLimits(Reader& r, const YAML::Node& s, Config& c) {
  if (!r.mapping(s, "server",
                 {"max_connections", "max_connections_per_address", "max_streams",
                  "max_request_line_bytes", "max_header_bytes", "max_header_count",
                  "max_buffered_body_bytes", "keep_alive_max_requests", "header_timeout",
                  "body_timeout", "keep_alive", "write_timeout"}))
    return;
  ServerLimits& l = c.server;
  auto count = [&](const char* key, int64_t min, int64_t max, std::optional<size_t>& into) {
    if (!s[key]) return;
    std::string k = std::string("server.") + key;
    auto v = r.positiveInt(s[key], k);
    if (!v) return;
    if (*v < min || *v > max)
      r.error(s[key], k, "must be between " + std::to_string(min) + " and " + std::to_string(max));
    else
      into = static_cast<size_t>(*v);
  };
  count("max_connections", 16, 1'000'000, l.maxConnections);
  count("max_connections_per_address", 1, 1'000'000, l.maxConnectionsPerAddress);
  count("max_streams", 1, 4096, l.maxStreams);
  count("max_request_line_bytes", 1024, 1 << 20, l.maxRequestLineBytes);
  count("max_header_bytes", 4096, 1 << 20, l.maxHeaderBytes);
  count("max_header_count", 32, 10'000, l.maxHeaderCount);
  count("max_buffered_body_bytes", 1 << 20, int64_t(1) << 40, l.maxBufferedBodyBytes);
  count("keep_alive_max_requests", 1, 1'000'000, l.keepAliveMaxRequests);
  auto time = [&](const char* key, std::chrono::seconds max,
                  std::optional<std::chrono::seconds>& into) {
    if (!s[key]) return;
    std::string k = std::string("server.") + key;
    auto d = r.duration(s[key], k);
    if (!d) return;
    if (*d < std::chrono::seconds(1) || *d > max)
      r.error(s[key], k, "must be between 1s and " + std::to_string(max.count()) + "s");
    else
      into = *d;
  };
  time("header_timeout", std::chrono::minutes(10), l.headerTimeout);
  time("body_timeout", std::chrono::hours(1), l.bodyTimeout);
  time("keep_alive", std::chrono::minutes(10), l.keepAlive);
  time("write_timeout", std::chrono::hours(1), l.writeTimeout);
  const http::ServerOptions defaults{};
  const size_t conns = l.maxConnections.value_or(defaults.maxConnections);
  if (l.maxConnectionsPerAddress && *l.maxConnectionsPerAddress > conns)
    r.error(s["max_connections_per_address"], "server.max_connections_per_address",
            "must be at most max_connections (" + std::to_string(conns) + ")");
  if (l.maxBufferedBodyBytes && *l.maxBufferedBodyBytes < c.maxBodyBytes)
    r.error(s["max_buffered_body_bytes"], "server.max_buffered_body_bytes",
            "must be at least max_body_bytes (" + std::to_string(c.maxBodyBytes) +
                "): one body must fit");
}

}  // namespace

ConfigCheck checkConfigText(const std::string& text, const std::string& fileName,
                            const fs::path& baseDir) {
  ConfigCheck out;
  Reader r(out.issues, baseDir);
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    out.issues.push_back({e.mark.line + 1, "", "not valid YAML: " + e.msg, false});
    return out;
  }
  if (root.IsNull()) return out;  // an empty file: the embedded defaults
  Config& c = out.config;
  if (!r.mapping(root, "",
                 {"listen", "public_url", "state_dir", "concurrency", "forges", "repos", "ssh",
                  "max_body_bytes", "server", "hook_secret_file", "ui_token_file", "untrusted",
                  "private_ui", "fleet", "build", "database"}))
    return out;
  if (root["listen"]) {
    if (auto s = r.string(root["listen"], "listen")) {
      if (auto why = listenProblem(*s)) r.error(root["listen"], "listen", *why);
      c.listen = *s;
    }
  }
  if (root["public_url"])
    if (auto s = r.string(root["public_url"], "public_url")) c.publicUrl = *s;
  if (root["state_dir"])
    if (auto s = r.string(root["state_dir"], "state_dir")) c.stateDir = r.resolve(*s);
  if (root["database"])
    if (auto s = r.string(root["database"], "database")) {
      if (!s->starts_with("postgresql://") && !s->starts_with("postgres://"))
        r.error(root["database"], "database",
                "must be a postgresql:// URL (leave it out for SQLite in state_dir)");
      c.database = *s;
    }
  if (const auto& u = root["untrusted"]; u) {
    readUntrustedPolicy(
        r, u, "untrusted", c.untrusted.defaults,
        {"user", "eval_timeout", "build_timeout", "max_silent_time", "restrict_eval"});
    if (u.IsMap()) {
      if (u["user"])
        if (auto s = r.string(u["user"], "untrusted.user")) {
          if (s->empty() || *s == "root")
            r.error(u["user"], "untrusted.user",
                    "must be an unprivileged account, not '" + *s + "'");
          c.untrusted.user = *s;
        }
      if (u["eval_timeout"])
        if (auto d = r.duration(u["eval_timeout"], "untrusted.eval_timeout"))
          c.untrusted.evalTimeout = *d;
      if (u["build_timeout"])
        if (auto d = r.duration(u["build_timeout"], "untrusted.build_timeout"))
          c.untrusted.buildTimeout = *d;
      if (u["restrict_eval"])
        if (auto v = r.boolean(u["restrict_eval"], "untrusted.restrict_eval"))
          c.untrusted.restrictEval = *v;
      if (u["max_silent_time"])
        if (auto d = r.duration(u["max_silent_time"], "untrusted.max_silent_time"))
          c.untrusted.maxSilentTime = *d;
    }
  }
  if (const auto& cc = root["concurrency"];
      cc && r.mapping(cc, "concurrency", {"evals", "builds", "deploys", "checks", "forks"})) {
    if (cc["evals"])
      if (auto v = r.positiveInt(cc["evals"], "concurrency.evals")) c.concurrency.evals = int(*v);
    if (cc["builds"])
      if (auto v = r.positiveInt(cc["builds"], "concurrency.builds"))
        c.concurrency.builds = int(*v);
    if (cc["deploys"])
      if (auto v = r.positiveInt(cc["deploys"], "concurrency.deploys"))
        c.concurrency.deploys = int(*v);
    if (cc["checks"])
      if (auto v = r.positiveInt(cc["checks"], "concurrency.checks"))
        c.concurrency.checks = int(*v);
    if (cc["forks"])
      if (auto v = r.positiveInt(cc["forks"], "concurrency.forks")) c.concurrency.forks = int(*v);
    auto& k = c.concurrency;
    const int room = std::min(k.evals, k.builds);
    if (!cc["checks"]) k.checks = std::max(1, room - 1);
    if (!cc["forks"]) k.forks = std::min(k.forks, k.checks);
    if (cc["checks"] && room > 1 && k.checks >= room)
      r.error(cc["checks"], "concurrency.checks",
              "must be smaller than evals (" + std::to_string(k.evals) + ") and builds (" +
                  std::to_string(k.builds) + "): a deploy must always find a free slot");
    if (room == 1)
      r.warn(cc, "concurrency",
             "with one evaluation or build slot, a deploy waits for a pull request check that "
             "holds it (it still goes first in the queue)");
    if (k.forks > k.checks)
      r.error(cc["forks"], "concurrency.forks",
              "must be at most checks (" + std::to_string(k.checks) + ")");
  }
  if (const auto& fs_ = root["forges"]; fs_) {
    if (!fs_.IsMap())
      r.error(fs_, "forges", "must be a mapping of forge name to settings");
    else
      for (const auto& kv : fs_) readForge(r, kv.first.Scalar(), kv.second, c);
  }
  if (const auto& rs = root["repos"]; rs) {
    if (!rs.IsSequence())
      r.error(rs, "repos", "must be a list");
    else
      for (size_t i = 0; i < rs.size(); ++i) readRepo(r, i, rs[i], c);
  }
  if (const auto& s = root["ssh"];
      s && r.mapping(s, "ssh", {"identity_file", "known_hosts", "connect_timeout", "use_agent"})) {
    if (s["identity_file"])
      c.ssh.identityFile = r.secretFile(s["identity_file"], "ssh.identity_file");
    if (s["known_hosts"]) {
      if (auto p = r.string(s["known_hosts"], "ssh.known_hosts")) {
        c.ssh.knownHosts = r.resolve(*p);
        std::error_code ec;
        if (!fs::is_regular_file(*c.ssh.knownHosts, ec))
          r.warn(s["known_hosts"], "ssh.known_hosts",
                 "file " + c.ssh.knownHosts->string() +
                     " does not exist (host keys are pinned: deploys need it)");
      }
    }
    if (s["connect_timeout"])
      if (auto d = r.duration(s["connect_timeout"], "ssh.connect_timeout"))
        c.ssh.connectTimeout = *d;
    if (s["use_agent"])
      if (auto v = r.boolean(s["use_agent"], "ssh.use_agent")) c.ssh.useAgent = *v;
  }
  if (const auto& f = root["fleet"];
      f && r.mapping(f, "fleet",
                     {"probe_interval", "probe_concurrency", "probe_timeout", "current_system"})) {
    if (f["probe_interval"])
      if (auto d = r.duration(f["probe_interval"], "fleet.probe_interval"))
        c.fleet.probeInterval = *d;
    if (f["probe_concurrency"])
      if (auto v = r.positiveInt(f["probe_concurrency"], "fleet.probe_concurrency"))
        c.fleet.probeConcurrency = int(std::min<int64_t>(*v, 64));
    if (f["probe_timeout"])
      if (auto d = r.duration(f["probe_timeout"], "fleet.probe_timeout")) {
        if (d->count() == 0) r.error(f["probe_timeout"], "fleet.probe_timeout", "must be > 0");
        c.fleet.probeTimeout = *d;
      }
    if (f["current_system"])
      if (auto s = r.string(f["current_system"], "fleet.current_system")) {
        if (s->empty() || (*s)[0] != '/' ||
            s->find_first_of(" \t\n'\"$`\\;&|<>()") != std::string::npos)
          r.error(f["current_system"], "fleet.current_system",
                  "must be an absolute path without spaces or shell characters");
        else
          c.fleet.currentSystemLink = *s;
      }
  }
  if (const auto& b = root["build"]; b) readBuild(r, b, c);
  if (root["max_body_bytes"])
    if (auto v = r.positiveInt(root["max_body_bytes"], "max_body_bytes"))
      c.maxBodyBytes = static_cast<size_t>(*v);
  if (const auto& s = root["server"]; s) readServerLimits(r, s, c);
  if (root["hook_secret_file"])
    c.hookSecretFile = r.secretFile(root["hook_secret_file"], "hook_secret_file");
  if (root["ui_token_file"]) c.uiTokenFile = r.secretFile(root["ui_token_file"], "ui_token_file");
  if (root["private_ui"])
    if (auto v = r.boolean(root["private_ui"], "private_ui")) c.privateUi = *v;
  if (!c.build.builders.empty() && !c.build.knownHosts && !c.ssh.knownHosts)
    r.error(root["build"], "build.builders",
            "needs build.known_hosts or ssh.known_hosts: builders' host keys are pinned like "
            "deploy targets'");
  if (c.privateUi && !c.uiTokenFile)
    r.error(root["private_ui"], "private_ui", "needs ui_token_file (the login token)");
  // A repository is (forge, name): the same owner/name may be on two forges, not twice on one
  // (forges compare names without case).
  std::set<std::pair<std::string, std::string>> names;
  for (size_t i = 0; i < c.repos.size(); ++i) {
    const RepoConfig& repo = c.repos[i];
    if (!repo.name.empty() && !names.insert({repo.forge.value_or(""), toLower(repo.name)}).second)
      r.error(root["repos"][i], "repos[" + std::to_string(i) + "].name",
              "repository '" + repo.name + "' is listed twice" +
                  (repo.forge ? " for forge '" + *repo.forge + "'" : " without a forge"));
  }
  std::stable_sort(out.issues.begin(), out.issues.end(),
                   [](const ConfigIssue& a, const ConfigIssue& b) { return a.line < b.line; });
  return out;
}

http::ServerOptions serverOptionsFor(const Config& config) {
  http::ServerOptions so;
  so.listen = config.listen;
  so.maxBodyBytes = config.maxBodyBytes;
  const ServerLimits& l = config.server;
  if (l.maxConnections) so.maxConnections = *l.maxConnections;
  if (l.maxConnectionsPerAddress) so.maxConnectionsPerAddress = *l.maxConnectionsPerAddress;
  if (l.maxStreams) so.maxStreams = *l.maxStreams;
  if (l.maxRequestLineBytes) so.maxRequestLineBytes = *l.maxRequestLineBytes;
  if (l.maxHeaderBytes) so.maxHeaderBytes = *l.maxHeaderBytes;
  if (l.maxHeaderCount) so.maxHeaderCount = *l.maxHeaderCount;
  if (l.maxBufferedBodyBytes) so.maxBufferedBodyBytes = *l.maxBufferedBodyBytes;
  if (l.keepAliveMaxRequests) so.keepAliveMaxRequests = *l.keepAliveMaxRequests;
  if (l.headerTimeout) so.headerTimeout = *l.headerTimeout;
  if (l.bodyTimeout) so.bodyTimeout = *l.bodyTimeout;
  if (l.keepAlive) so.keepAlive = *l.keepAlive;
  if (l.writeTimeout) so.writeTimeout = *l.writeTimeout;
  return so;
}

Config loadConfig(const fs::path& file) {
  std::string text = os::readFile(file);
  auto check = checkConfigText(
      text, file.string(),
      file.parent_path().empty() ? fs::current_path() : fs::absolute(file).parent_path());
  if (check.ok()) return std::move(check.config);
  std::vector<std::string> lines;
  for (const auto& i : check.issues)
    if (!i.warning) lines.push_back(formatIssue(file.string(), i));
  std::string msg = lines.front();
  if (lines.size() > 1)
    msg += " (and " + std::to_string(lines.size() - 1) + " more; run switchyard check-config " +
           file.string() + ")";
  throw ConfigError(msg);
}

}  // namespace runner::app
