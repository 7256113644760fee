// The Plan: which hosts a change affects and why (DESIGN.md §3, §5). A value type produced by
// the planner and read by the builder, the reporter and the CLI; its JSON form is a stable
// contract other tools read.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace runner {

// The interesting part of a flake.lock node's `locked` attributes.
struct LockedSummary {
  std::optional<std::string> rev;
  std::optional<std::string> narHash;
  std::optional<int64_t> lastModified;
  friend bool operator==(const LockedSummary&, const LockedSummary&) = default;
};

// One root input of the flake whose resolved content differs between the two locks.
struct InputChange {
  std::string name;                        // the root input's name
  std::vector<std::string> path;           // input path from the root to the node that changed
  std::optional<LockedSummary> oldLocked;  // of the node at `path`; nullopt when added
  std::optional<LockedSummary> newLocked;  // nullopt when removed
  bool added = false;
  bool removed = false;
  bool transitive = false;  // its own lock is the same; something it reaches changed
  friend bool operator==(const InputChange&, const InputChange&) = default;
};

enum class FileStatus { Added, Modified, Deleted, Renamed, Copied, TypeChange };
const char* toString(FileStatus s);

struct FileChange {
  std::string path;
  FileStatus status = FileStatus::Modified;
  std::optional<std::string> oldPath;  // renames and copies
  friend bool operator==(const FileChange&, const FileChange&) = default;
};

enum class ReasonKind { File, Input, Global, Dynamic, Drv, SelfRevisionOnly, NewHost, RemovedHost };
const char* toString(ReasonKind k);

struct Reason {
  ReasonKind kind = ReasonKind::File;
  std::string path;    // File, Global: the changed file; Dynamic: the file where it was met
  std::string name;    // Input: the input's name
  std::string detail;  // Dynamic: what the analyser met; Global: why it is global
  friend bool operator==(const Reason&, const Reason&) = default;
};

struct HostPlan {
  std::string name;
  bool affected = false;
  std::vector<Reason> reasons;
  std::optional<std::string> oldDrv;  // exact mode
  std::optional<std::string> newDrv;
  std::optional<std::string> evalError;  // exact mode: Nix's error for this host
  // Set when the name breaks the host-name rule (hostNameProblem): why. Such a host is never
  // built or deployed; the run shows it failed with this reason.
  std::optional<std::string> refused;
  bool hasReason(ReasonKind k) const;
};

enum class PlanMode { Static, Exact, Auto };
const char* toString(PlanMode m);

struct Plan {
  std::string repo;
  std::string from;
  std::string to;
  PlanMode mode = PlanMode::Static;
  std::vector<InputChange> inputsChanged;
  std::vector<FileChange> filesChanged;
  std::vector<HostPlan> hosts;  // sorted by name
  std::vector<std::string> warnings;
  // Static: why host discovery at the new commit failed or is incomplete ("" when it found
  // every host). The hosts then come from the old commit and the config, marked dynamic;
  // auto asks Nix about every host instead.
  std::string discoveryError;

  std::vector<std::string> affectedHosts() const;
  const HostPlan* host(std::string_view name) const;
};

// The host-name rule (README "Decisions"): a host name — from the flake, Clan, Colmena or the
// config — is 1 to 253 bytes of ASCII letters, digits, '-', '_' and '.', and does not start
// with '.'. Names are data that later become file names, status contexts and log lines.
// nullopt when `name` is accepted, else why it is not.
std::optional<std::string> hostNameProblem(std::string_view name);
// The name of the planner's log in a run's log directory (`<name>.log`, beside each host's
// `<host>.log`) and in its URL (/runs/<id>/logs/<name>): '@' is outside the host-name
// alphabet, so no host can take it. Runs logged before it was introduced have `plan.log`.
inline constexpr std::string_view kPlanLogName = "@plan";
// Marks every host of `plan` whose name breaks the rule as refused (not affected, no
// derivations, `refused` says why) and adds one warning naming how many. Returns how many.
size_t refuseBadHostNames(Plan& plan);

// How describeReasons spells names and words: plain text by default; the PR comment passes
// markdown code spans and escaping.
struct ReasonStyle {
  std::function<std::string(std::string_view)> code = [](std::string_view s) {
    return std::string(s);
  };
  std::function<std::string(std::string_view)> text = [](std::string_view s) {
    return std::string(s);
  };
  std::string none = "-";  // when there is no reason
};
// "file modules/core/default.nix; input nixpkgs; does not evaluate: …" — one line.
std::string describeReasons(const HostPlan& host, const ReasonStyle& style = {});

void to_json(nlohmann::json& j, const LockedSummary& v);
void to_json(nlohmann::json& j, const InputChange& v);
void to_json(nlohmann::json& j, const FileChange& v);
void to_json(nlohmann::json& j, const Reason& v);
void to_json(nlohmann::json& j, const HostPlan& v);
void to_json(nlohmann::json& j, const Plan& v);
void from_json(const nlohmann::json& j, LockedSummary& v);
void from_json(const nlohmann::json& j, InputChange& v);
void from_json(const nlohmann::json& j, FileChange& v);
void from_json(const nlohmann::json& j, Reason& v);
void from_json(const nlohmann::json& j, HostPlan& v);
void from_json(const nlohmann::json& j, Plan& v);

}  // namespace runner
