// A fake "nixpkgs" flake for the lab: what real infra flakes call from nixpkgs (lib.nixosSystem,
// lib.genAttrs, lib.mapAttrs and friends over a toy module system with `imports`), a static
// busybox copied into the flake as the only real package (every derivation is built by
// `busybox sh` inside the sandbox: no network, no bash), runCommand/writeText, and a versioned
// fake `hello` so `nix store diff-closures` shows version changes.
//
// A host's `config.system.build.toplevel` is a real derivation whose output has
// `bin/switch-to-configuration {switch|boot|test|dry-activate}`. The script keeps its state in
// `${FAKE_NIXOS_STATE:-/var/lib/fake-nixos}`: `current-system` (symlink to the toplevel),
// `activated` and `boot-default` (toplevel paths), `etc/` (a copy of the toplevel's etc) and
// `switch.log` (one line per action: "<UTC time> <action> <host> <toplevel> [FAILED]").
//
// Options a host module may set (defaults in nixos/options.nix of the generated flake):
//   networking.hostName, nixpkgs.hostPlatform, system.configurationRevision,
//   clan.core.networking.targetHost, deployment.targetHost, environment.etc.<path>.text,
//   environment.systemPackages, services.openssh.enable, and the test knobs
//   testing.failActivation   switch/test exit 3 (boot still records boot-default)
//   testing.buildSeconds     the toplevel's builder sleeps this long (timeouts)
//   testing.evalWeight       CPU and memory burnt when the toplevel is evaluated
//                            (1000000 ≈ 0.1 s and ~150 MB on the reference machine)
//   testing.activationSeconds  switch/test sleep this long before activating
//   testing.extraActivation  a shell snippet run (busybox sh -e) during switch/test
// services.openssh.enable: on switch/test the script starts the host's sshd
// (`/usr/sbin/sshd -f /etc/ssh/sshd_config -o PidFile=$STATE/sshd.pid -E $STATE/sshd.log`)
// when it is enabled and not running, and stops it (the pid in $STATE/sshd.pid) when it is
// disabled, so a bad configuration can cut a deployer off and a rollback brings ssh back.
// FAKE_NIXOS_NO_SSHD=1 in the environment turns sshd management off (for running a switch
// on the build machine itself).
#pragma once

#include <filesystem>
#include <string>

#include "runner/core/process.h"
#include "runner/lab/git_cli.h"

namespace runner::lab {

struct FakeNixpkgsOptions {
  std::string helloVersion = "2.12";
  std::filesystem::path busybox = "/bin/busybox";  // a statically linked busybox
};

class FakeNixpkgs {
 public:
  // Writes the flake into `dir` (created when missing; it should be empty), makes it a git
  // repository on branch main and commits. `procs` must outlive the object.
  // Throws InputError when the busybox is missing, GitError when git fails.
  static FakeNixpkgs create(ProcessRunner& procs, const std::filesystem::path& dir,
                            const FakeNixpkgsOptions& options = {});

  const std::filesystem::path& path() const { return git_.workTree(); }
  std::string url() const;  // "git+file:///abs/dir" (what an infra flake's input says)
  std::string head() const { return git_.head(); }
  const std::string& helloVersion() const { return helloVersion_; }

  // Each of these commits one change and returns the new sha. An infra flake sees it after
  // InfraFlake::updateNixpkgs().
  std::string setHelloVersion(const std::string& version);  // hosts using pkgs.hello change
  std::string touchReadme(const std::string& text);         // no derivation changes
  std::string changeSwitchScript();                         // every toplevel changes

  const GitCli& git() const { return git_; }

 private:
  explicit FakeNixpkgs(GitCli git) : git_(std::move(git)) {}
  GitCli git_;
  std::string helloVersion_;
  int switchRevision_ = 1;
};

}  // namespace runner::lab
