#include "runner/build/remote_builders.h"

#include <future>
#include <set>

#include "runner/core/error.h"
#include "runner/core/text.h"
#include "runner/nix/internal_json.h"
#include "runner/nix/nix_cli.h"
#include "runner/os/files.h"

namespace fs = std::filesystem;

namespace runner::build {
namespace {

void refuseWhitespace(const fs::path& p, const std::string& what) {
  if (p.string().find_first_of(" \t\n") != std::string::npos)
    throw InputError(what + " '" + p.string() +
                     "' contains whitespace, which NIX_SSHOPTS cannot carry");
}

std::string commaList(const std::vector<std::string>& v) { return v.empty() ? "-" : join(v, ","); }

}  // namespace

RemoteBuilders::RemoteBuilders(ProcessRunner& procs, BuildConfig config, const SshConfig& ssh,
                               const fs::path& dir)
    : procs_(procs),
      config_(std::move(config)),
      defaultKey_(ssh.identityFile),
      connectTimeout_(ssh.connectTimeout),
      sshConfigFile_(fs::absolute(dir) / "builders_ssh_config") {
  if (config_.builders.empty()) return;
  const std::optional<fs::path> knownHosts =
      config_.knownHosts ? config_.knownHosts : ssh.knownHosts;
  if (!knownHosts)
    throw InputError(
        "build.builders needs build.known_hosts or ssh.known_hosts: builders' host keys are "
        "pinned like deploy targets'");
  refuseWhitespace(sshConfigFile_, "the builders' ssh config");
  refuseWhitespace(*knownHosts, "known_hosts file");
  std::string text =
      "# written by switchyard (build.builders): how `nix build` reaches its remote builders\n";
  std::set<std::string> seen;
  for (const auto& b : config_.builders) {
    if (!seen.insert(b.host).second) continue;
    text += "Host " + b.host + "\n  Port " + std::to_string(b.port) + "\n  User " + b.user + "\n";
    if (auto key = b.identityFile ? b.identityFile : defaultKey_) {
      refuseWhitespace(*key, "identity file");
      text += "  IdentityFile " + key->string() + "\n  IdentitiesOnly yes\n";
    }
  }
  text += "Host *\n  UserKnownHostsFile " + knownHosts->string() +
          "\n  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n"
          "  BatchMode yes\n  ConnectTimeout " +
          std::to_string(std::max<int64_t>(1, connectTimeout_.count())) +
          "\n  ServerAliveInterval 15\n  ServerAliveCountMax 4\n  LogLevel ERROR\n";
  os::writeFileAtomic(sshConfigFile_, text, fs::perms(0600));
}

std::string RemoteBuilders::nixBuildersSpec(const std::vector<RemoteBuilderConfig>& builders,
                                            const std::optional<fs::path>& defaultKey) {
  std::vector<std::string> entries;
  for (const auto& b : builders) {
    auto key = b.identityFile ? b.identityFile : defaultKey;
    entries.push_back(b.uri() + " " + commaList(b.systems) + " " +
                      (key ? key->string() : std::string("-")) + " " + std::to_string(b.maxJobs) +
                      " " + std::to_string(b.speedFactor) + " " + commaList(b.features) + " " +
                      commaList(b.mandatoryFeatures) + " " +
                      (b.publicHostKey.empty() ? "-" : b.publicHostKey));
  }
  return join(entries, "\n");
}

std::optional<std::string> RemoteBuilders::probe(const RemoteBuilderConfig& b) const {
  std::string store = b.uri();
  if (!b.publicHostKey.empty()) store += "?base64-ssh-public-host-key=" + b.publicHostKey;
  RunOptions o;
  o.program = "nix";
  o.args = {"--extra-experimental-features", "nix-command", "store", "ping", "--store", store};
  o.env["NIX_SSHOPTS"] = "-F " + sshConfigFile_.string();
  o.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(connectTimeout_) +
              std::chrono::seconds(20);
  RunResult r = procs_.run(o);
  if (r.ok()) return std::nullopt;
  // ssh's own words ("Connection refused", "Host key verification failed") come before Nix's
  // "error: cannot connect to …", which alone does not say why.
  // ssh's host key warning is a page of '@'; the lines below are the ones that say what failed.
  std::string why, all;
  for (const auto& raw : split(nix::stripAnsi(r.errTail), '\n')) {
    std::string line(trim(raw));
    if (line.empty() || startsWith(line, "warning:")) continue;
    all += line + "\n";
    if (line.find("REMOTE HOST IDENTIFICATION HAS CHANGED") != std::string::npos)
      why +=
          "its host key is not the one pinned in known_hosts (REMOTE HOST IDENTIFICATION "
          "HAS CHANGED)\n";
    else if (startsWith(line, "ssh:") || startsWith(line, "error:") ||
             line.find("Host key verification failed") != std::string::npos ||
             line.find("host key is known") != std::string::npos ||
             line.find("Permission denied") != std::string::npos)
      why += line + "\n";
  }
  if (why.empty()) why = all;
  if (r.timedOut)
    why = "no answer within " + formatDuration(o.timeout) + (why.empty() ? "" : ": " + why);
  // One paragraph: ssh's lines and Nix's joined.
  std::string flat;
  for (const auto& line : split(why, '\n')) {
    std::string t(trim(line));
    if (t.empty()) continue;
    if (!flat.empty()) flat += " ";
    flat += t;
  }
  return truncateUtf8(flat.empty() ? r.describeStatus() : flat, 600);
}

RemoteBuildSetup RemoteBuilders::setup() const {
  RemoteBuildSetup s;
  s.maxJobs = config_.maxJobs;
  if (config_.builders.empty()) return s;
  std::vector<std::future<std::optional<std::string>>> probes;
  for (const auto& b : config_.builders)
    probes.push_back(std::async(std::launch::async, [this, &b] { return probe(b); }));
  std::vector<RemoteBuilderConfig> up;
  std::vector<std::string> down;
  for (size_t i = 0; i < probes.size(); ++i) {
    const auto& b = config_.builders[i];
    if (auto why = probes[i].get()) {
      down.push_back(b.uri() + " (port " + std::to_string(b.port) + "): " + *why);
      s.notes.push_back("remote builder " + b.uri() +
                        " is unreachable, not used for this build: " + *why);
    } else {
      up.push_back(b);
      s.notes.push_back("remote builder " + b.uri() + " (" + commaList(b.systems) + ", " +
                        std::to_string(b.maxJobs) + " jobs) answered");
    }
  }
  if (up.empty() && config_.maxJobs == 0) {
    s.failure = "no remote builder answered and local builds are off (build.max_jobs: 0): " +
                join(down, "; ");
    return s;
  }
  if (!up.empty()) {
    s.nixArgs.insert(s.nixArgs.end(), {"--option", "builders", nixBuildersSpec(up, defaultKey_)});
    if (config_.buildersUseSubstitutes)
      s.nixArgs.insert(s.nixArgs.end(), {"--option", "builders-use-substitutes", "true"});
    s.env["NIX_SSHOPTS"] = "-F " + sshConfigFile_.string();
  } else {
    // None answered: a builders line in nix.conf must not be tried either.
    s.nixArgs.insert(s.nixArgs.end(), {"--option", "builders", ""});
  }
  return s;
}

}  // namespace runner::build
