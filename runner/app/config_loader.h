// Reads switchyard.yaml (DESIGN.md §4) into runner::Config and validates it. Every mistake is
// reported with the file, line and key path ("switchyard.yaml:12: repos[0].rollout.max_parallel:
// must be a positive integer"), all of them at once, so one edit fixes everything.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "runner/core/config.h"
#include "runner/http/server.h"

namespace runner::app {

struct ConfigIssue {
  int line = 0;     // 1-based; 0 when not tied to a line
  std::string key;  // "repos[0].rollout.max_parallel"
  std::string message;
  bool warning = false;  // warnings do not stop loading (e.g. a secret file missing on this box)
};

struct ConfigCheck {
  Config config;
  std::vector<ConfigIssue> issues;
  bool ok() const;
};

// Parses and validates `text` (named `fileName` in messages). Never throws for bad content:
// everything is in `issues`. Relative paths in the config are resolved against `baseDir`.
ConfigCheck checkConfigText(const std::string& text, const std::string& fileName,
                            const std::filesystem::path& baseDir);

// Reads the file and validates it; throws ConfigError with every error on its own line
// (the first line names the count) when it has errors.
Config loadConfig(const std::filesystem::path& file);

// "file:12: key: message"
std::string formatIssue(const std::string& fileName, const ConfigIssue& issue);

// The HTTP server's options from the config: `listen`, `max_body_bytes` and `server:` (unset
// limits keep http::ServerOptions' defaults).
http::ServerOptions serverOptionsFor(const Config& config);

}  // namespace runner::app
