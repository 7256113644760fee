// Closure differences between a host's base and new toplevel (`nix store diff-closures OLD
// NEW`): which packages changed version, appeared or went away, and how much the store paths
// grew or shrank — the part of the PR comment that tells a reviewer what a change does to a
// machine beyond "it is affected".
//
// Nix 2.8 has no JSON output for diff-closures, so its lines are parsed here:
//   "hello: 2.12 → 2.13, +12.5 KiB"   versions (sets, ", "-separated; "∅" = none; "ε" = "")
//   "bluez-qt: +12.6 KiB"              size only (Nix prints sizes from 8 KiB on)
// ClosureDiffer is the port the comment renderer asks; NixClosureDiffer runs Nix (through
// runner/nix's NixCli) and caches answers, since two store paths always differ the same way.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "runner/core/thread_annotations.h"

namespace runner::nix {
class NixCli;
}

namespace runner::report {

struct PackageChange {
  std::string name;
  std::vector<std::string> before;  // versions only in the old closure ("" for ε)
  std::vector<std::string> after;   // versions only in the new closure
  bool added = false;               // not in the old closure at all (∅ → …)
  bool removed = false;             // not in the new closure at all (… → ∅)
  std::optional<double> sizeDeltaKiB;
  friend bool operator==(const PackageChange&, const PackageChange&) = default;
};

struct ClosureDiff {
  std::vector<PackageChange> changes;  // in Nix's order (by name)
  // The sum of the size changes Nix printed (changes under 8 KiB are not printed, so this is
  // close to, not exactly, the closure's growth).
  double sizeDeltaKiB = 0;
  int versionChanges() const;  // packages whose versions changed (not added or removed)
  int added() const;
  int removed() const;
};

// Parses diff-closures output (colour codes already removed). Lines it cannot read are
// skipped. Never throws.
ClosureDiff parseDiffClosures(std::string_view text);

// "+12.5 KiB", "-3.1 MiB", "+1.2 GiB" (one decimal, binary units, sign always shown).
std::string formatKiB(double kib);

// The port: the difference between two toplevels, or nullopt (with why in `error`) when it
// cannot be computed, e.g. the base toplevel was never built here. Implementations are
// thread-safe.
class ClosureDiffer {
 public:
  virtual ~ClosureDiffer() = default;
  virtual std::optional<ClosureDiff> diff(const std::string& oldPath, const std::string& newPath,
                                          std::string* error) = 0;
};

// Runs `nix store diff-closures` through `nix` (which must outlive this). Successful answers
// are cached in memory by (old, new); failures are not (the base may be built later).
class NixClosureDiffer final : public ClosureDiffer {
 public:
  explicit NixClosureDiffer(nix::NixCli& nix) : nix_(nix) {}
  std::optional<ClosureDiff> diff(const std::string& oldPath, const std::string& newPath,
                                  std::string* error) override;

 private:
  nix::NixCli& nix_;
  Mutex mu_;
  std::map<std::pair<std::string, std::string>, ClosureDiff> cache_ GUARDED_BY(mu_);
};

}  // namespace runner::report
