// The jail for pull requests from forks, set up and checked when the daemon starts (README
// "Untrusted evaluation"). It holds when:
//  * the configured account (untrusted.user) exists, is not root and is not the runner's;
//  * that account can read none of the runner's files: the state directory, the database and
//    every secret file the config names (checked by trying, as the account);
//  * the nix-daemon answers that account (its Nix talks to the store only through it), and
//    the daemon does not count it among its trusted-users (which could turn off the sandbox).
// When any of this fails, forks' runs fail with the reason; they are never evaluated by the
// runner itself.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runner/core/config.h"
#include "runner/core/process.h"
#include "runner/nix/nix_cli.h"
#include "runner/os/files.h"

namespace runner::app {

struct UntrustedJailSetup {
  std::optional<nix::UntrustedJail> jail;  // set when the jail holds
  std::string problem;                     // why it does not
  std::unique_ptr<os::TempDir> home;       // the account's HOME while the daemon runs
};

// `mustNotRead`: the runner's files the account must not be able to read.
UntrustedJailSetup setUpUntrustedJail(const Config& config, ProcessRunner& procs,
                                      const std::vector<std::filesystem::path>& mustNotRead);

// The runner's files the config names that untrusted code must not read: the state
// directory and database, and every secret file.
std::vector<std::filesystem::path> runnerPrivateFiles(const Config& config);

}  // namespace runner::app
