// Which flake inputs a fork's pull request may bring (issue 19). A fork's Nix code is
// evaluated in a jail without network (NixCli with untrustedNixOptions), so every input its
// flake.lock names must already be in the store; the runner fetches them first, outside the
// jail — which must never fetch what the runner can read and the fork cannot: a local path,
// a `file://` URL, a git repository over ssh with the runner's keys.
//
// The rule, node by node (every node of the lock but the root):
//  * a node locked exactly as a node of the base commit's lock is trusted whatever its type
//    (the base branch chose it; the fork cannot change what it holds);
//  * otherwise its type must be github, gitlab, sourcehut, git, tarball or file, over https
//    (git without submodules, which could point anywhere), with a narHash, and its source
//    (sourceOf) must be one the base lock uses at any revision, or match an allowed pattern
//    (InputPolicy::allowed; default: the well-known forges, defaultAllowedInputs()).
// Anything else refuses the run, with a message naming the node and why.
//
// Pure: lock values in, verdicts out.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runner/nix/flake_lock.h"

namespace runner::nix {

// github:*, gitlab:*, sourcehut:* and https URLs (tarballs, git+https) of github.com,
// gitlab.com, codeberg.org, git.sr.ht, nixos.org's channels and flakehub.com.
std::vector<std::string> defaultAllowedInputs();

struct InputPolicy {
  // Patterns over sourceOf(): literal text with '*' matching any run of characters.
  std::vector<std::string> allowed = defaultAllowedInputs();
};

// A node's source without its revision: "github:NixOS/nixpkgs",
// "github@git.example.org:o/r" (another host), "gitlab:o/r", "sourcehut:~o/r",
// "git+https://host/x.git", "https://host/x.tar.gz" (tarball, file), "path:/srv/x",
// "<type>:?" for what it cannot name.
std::string sourceOf(const nlohmann::json& locked);

// True when `text` matches `pattern` ('*' = any run of characters, everything else literal).
bool globMatch(std::string_view pattern, std::string_view text);

struct InputToFetch {
  std::string node;      // the lock's node name (for messages)
  nlohmann::json attrs;  // builtins.fetchTree attributes (strings and integers only)
  // Locked exactly so on the base branch: the runner may fetch it with its credentials (a
  // private input of the repository); other inputs are fetched without any.
  bool base = false;
};

struct InputCheck {
  std::vector<InputToFetch> fetch;   // allowed nodes, each source once
  std::vector<std::string> refused;  // "input 'x' (path:/etc): …", one per refused node
  bool ok() const { return refused.empty(); }
};

// Checks every node of `lock` against `base` (the base commit's lock; nullptr when the base
// has none) and `policy`.
InputCheck checkUntrustedInputs(const FlakeLock& lock, const FlakeLock* base,
                                const InputPolicy& policy);

// The same attributes for every node of a trusted lock (the base commit's own): what the jail
// needs in the store to evaluate it. Nodes without `locked` are left out.
std::vector<InputToFetch> lockedInputs(const FlakeLock& lock);

}  // namespace runner::nix
