// A complete model of flake.lock (versions 5-7) and the diff of two locks (DESIGN.md §5.1).
//
// A lock is a graph of nodes; "root" is the flake itself. A node's input is either another
// node's name or a `follows` path, which Nix resolves from the root, following further
// follows on the way. Two locks are compared by content, never by node names: a node
// renamed from nixpkgs_2 to nixpkgs_3 with the same locked attributes is not a change.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "runner/core/plan.h"

namespace runner::nix {

struct LockInput {
  std::optional<std::string> node;                  // a direct reference to a node
  std::optional<std::vector<std::string>> follows;  // a follows path from the root
};

struct LockNode {
  std::map<std::string, LockInput> inputs;
  std::optional<nlohmann::json> locked;    // object
  std::optional<nlohmann::json> original;  // object
  bool flake = true;                       // false: a non-flake input (`flake = false`)
};

struct FlakeLock {
  int version = 7;
  std::string root;
  std::map<std::string, LockNode> nodes;

  const LockNode& rootNode() const { return nodes.at(root); }
  // The node an input path from the root leads to, following `follows` like Nix does.
  // Empty path = the root. nullopt when some element does not exist.
  // Throws InputError on a follows cycle.
  std::optional<std::string> resolve(const std::vector<std::string>& path) const;
};

// Parses and validates a flake.lock. `origin` names the file in error messages.
// Throws InputError: not JSON, unsupported version, no root, a dangling node reference,
// a follows path that leads nowhere, a follows cycle.
FlakeLock parseFlakeLock(std::string_view text, std::string_view origin);

// rev, narHash and lastModified of a node's `locked` attributes.
LockedSummary summarize(const LockNode& node);

// Root inputs whose resolved content differs: direct changes (its own locked attributes
// differ, `lastModified` ignored), transitive ones (with the path to the changed node),
// added and removed inputs. Sorted by input name.
std::vector<InputChange> diffLocks(const FlakeLock& oldLock, const FlakeLock& newLock);

// A short human table of a lock diff ("no input changed" when empty).
std::string formatLockDiff(const std::vector<InputChange>& changes);

}  // namespace runner::nix
