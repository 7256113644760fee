// Nix's `--log-format internal-json` log (stderr lines "@nix {json}"), parsed into events.
// This is how `nix build` reports what it is doing: activities start and stop (a build of one
// derivation, a download, the overall "builds" counter) and report results (a build log line,
// a phase change, progress counters, expected totals); messages carry errors and warnings.
// The numbering is Nix's own (src/libutil/logging.hh), stable since Nix 2.3:
//   activity types  100 CopyPath, 101 FileTransfer, 102 Realise, 103 CopyPaths, 104 Builds,
//                   105 Build, 106 OptimiseStore, 107 VerifyPaths, 108 Substitute,
//                   109 QueryPathInfo, 110 PostBuildHook, 111 BuildWaiting
//   result types    100 FileLinked, 101 BuildLogLine, 102 UntrustedPath, 103 CorruptedPath,
//                   104 SetPhase, 105 Progress, 106 SetExpected, 107 PostBuildLogLine
// Note for Nix 2.8: `-L` after `--log-format internal-json` switches the format back to
// plain text; pass `-L` first (NixCli does).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace runner::nix {

enum class ActivityType : int {
  Unknown = 0,
  CopyPath = 100,
  FileTransfer = 101,
  Realise = 102,
  CopyPaths = 103,
  Builds = 104,
  Build = 105,
  OptimiseStore = 106,
  VerifyPaths = 107,
  Substitute = 108,
  QueryPathInfo = 109,
  PostBuildHook = 110,
  BuildWaiting = 111,
};

enum class ResultType : int {
  FileLinked = 100,
  BuildLogLine = 101,
  UntrustedPath = 102,
  CorruptedPath = 103,
  SetPhase = 104,
  Progress = 105,
  SetExpected = 106,
  PostBuildLogLine = 107,
};

// A field of a start/result event: Nix sends numbers and strings.
using LogField = std::variant<int64_t, std::string>;

struct ActivityStart {
  uint64_t id = 0;
  ActivityType type = ActivityType::Unknown;
  int level = 0;
  std::string text;
  std::vector<LogField> fields;  // Build: [drvPath, machine, round, nrRounds]
  uint64_t parent = 0;           // 0 when absent (Nix 2.8 sends none)
  // Build / Substitute / CopyPath: the store path the activity is about (fields[0]).
  std::optional<std::string> path() const;
};

struct ActivityStop {
  uint64_t id = 0;
};

struct ActivityResult {
  uint64_t id = 0;
  ResultType type = ResultType::BuildLogLine;
  std::vector<LogField> fields;      // BuildLogLine/SetPhase: [text]; Progress: [done, expected,
                                     // running, failed]; SetExpected: [activityType, expected]
  int64_t number(size_t i) const;    // 0 when absent or not a number
  std::string text(size_t i) const;  // "" when absent or not a string
};

struct LogMessage {
  int level = 0;    // 0 error, 1 warn, 2 notice, 3 info, 4 talkative, 5 chatty, 6 debug, 7 vomit
  std::string msg;  // ANSI colour codes removed
};

// A stderr line that is not "@nix ..." (nix sometimes prints plain text, e.g. before the
// logger is set up).
struct PlainLine {
  std::string text;
};

using LogEvent = std::variant<ActivityStart, ActivityStop, ActivityResult, LogMessage, PlainLine>;

// Parses one stderr line. A malformed "@nix" line comes back as a PlainLine (never throws).
LogEvent parseLogLine(std::string_view line);

// Removes ANSI escape sequences (ESC [ ... letter) from Nix's messages.
std::string stripAnsi(std::string_view s);

}  // namespace runner::nix
