#include "runner/app/untrusted_jail.h"

#include <algorithm>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "runner/core/error.h"
#include "runner/core/text.h"

namespace fs = std::filesystem;

namespace runner::app {
namespace {

// Which of `paths` `account` can read (tried as that account, not guessed from modes).
std::vector<std::string> readableBy(ProcessRunner& procs, const Confinement& account,
                                    const std::vector<fs::path>& paths) {
  RunOptions o;
  o.program = "/bin/sh";
  o.args = {"-c", "for f; do if [ -r \"$f\" ]; then echo \"$f\"; fi; done", "sh"};
  for (const auto& p : paths) o.args.push_back(p.string());
  o.inheritEnv = false;
  o.env["PATH"] = "/usr/bin:/bin";
  o.confine = account;
  o.timeout = std::chrono::seconds(30);
  RunResult r = procs.run(o);
  if (!r.ok()) throw SysError(0, "checking what the untrusted account can read: " + r.errTail);
  std::vector<std::string> out;
  for (const auto& line : split(r.out, '\n'))
    if (!line.empty()) out.push_back(line);
  return out;
}

// The daemon's trusted-users as the runner's nix sees its configuration.
std::vector<std::string> trustedUsers(ProcessRunner& procs) {
  RunOptions o;
  o.program = "nix";
  o.args = {"--extra-experimental-features", "nix-command", "show-config", "--json"};
  o.timeout = std::chrono::seconds(30);
  RunResult r = procs.run(o);
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  std::vector<std::string> out;
  if (!j.is_object() || !j.contains("trusted-users")) return out;
  const auto& v = j["trusted-users"].value("value", nlohmann::json::array());
  if (v.is_array())
    for (const auto& u : v)
      if (u.is_string()) out.push_back(u.get<std::string>());
  return out;
}

}  // namespace

std::vector<fs::path> runnerPrivateFiles(const Config& c) {
  std::vector<fs::path> out = {c.stateDir, c.stateDir / "switchyard.db"};
  for (const auto& [_, f] : c.forges)
    for (const auto& p : {f.tokenFile, f.webhookSecretFile, f.privateKeyFile})
      if (p) out.push_back(*p);
  for (const auto& p : {c.hookSecretFile, c.uiTokenFile, c.ssh.identityFile})
    if (p) out.push_back(*p);
  return out;
}

UntrustedJailSetup setUpUntrustedJail(const Config& config, ProcessRunner& procs,
                                      const std::vector<fs::path>& mustNotRead) {
  UntrustedJailSetup s;
  const std::string& name = config.untrusted.user;
  auto account = os::lookupAccount(name);
  if (!account) {
    s.problem = "the account '" + name +
                "' (untrusted.user) does not exist; create it with `useradd --system "
                "--no-create-home --shell /usr/sbin/nologin " +
                name + "`";
    return s;
  }
  if (account->uid == 0 || account->uid == ::geteuid()) {
    s.problem =
        "untrusted.user '" + name + "' is " +
        (account->uid == 0 ? std::string("root") : std::string("the runner's own account")) +
        ": it must be an unprivileged account of its own";
    return s;
  }
  Confinement confine{account->uid, account->gid, true};
  try {
    s.home = std::make_unique<os::TempDir>("switchyard-untrusted");
    fs::create_directories(s.home->path() / "tmp");
    for (const auto& p : {s.home->path(), s.home->path() / "tmp"}) {
      os::changeOwner(p, account->uid, account->gid);
      fs::permissions(p, fs::perms::owner_all, fs::perm_options::replace);
    }
    if (auto leaks = readableBy(procs, confine, mustNotRead); !leaks.empty()) {
      s.problem = "the untrusted account '" + name + "' can read " + join(leaks, ", ") +
                  ": make the state directory 0700 and secret files 0600, owned by the runner";
      return s;
    }
  } catch (const SysError& e) {
    s.problem = "cannot run code as '" + name + "': " + describe(e) +
                " (the runner needs to be root, or hold CAP_SETUID, CAP_SETGID and CAP_SYS_ADMIN)";
    return s;
  }
  for (const auto& t : trustedUsers(procs)) {
    bool member = t == "*" || t == name ||
                  (startsWith(t, "@") && std::find(account->groups.begin(), account->groups.end(),
                                                   t.substr(1)) != account->groups.end());
    if (member) {
      s.problem = "'" + name + "' is one of the nix-daemon's trusted-users ('" + t +
                  "'): it could turn the sandbox off; remove it from trusted-users";
      return s;
    }
  }
  nix::UntrustedJail jail;
  jail.account = confine;
  jail.home = s.home->path();
  jail.evalTimeout = config.untrusted.evalTimeout;
  jail.restrictEval = config.untrusted.restrictEval;
  // The daemon must answer the jailed account (its Nix has no other way to the store).
  auto opts = nix::untrustedNixOptions({}, jail);
  RunOptions ping;
  ping.program = opts.nix;
  ping.args = {"--extra-experimental-features", "nix-command", "store", "ping"};
  ping.env = opts.env;
  ping.inheritEnv = false;
  ping.confine = opts.confine;
  ping.timeout = std::chrono::seconds(30);
  RunResult r = procs.run(ping);
  if (!r.ok()) {
    s.problem = "the nix-daemon does not answer '" + name + "' (" + r.describeStatus() +
                "): " + std::string(trim(r.errTail)) +
                " — start nix-daemon (untrusted code reaches the store only through it)";
    return s;
  }
  s.jail = jail;
  return s;
}

}  // namespace runner::app
