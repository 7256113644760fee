// The Gitea/Forgejo API client behind runner::Forge (DESIGN.md §7): commit statuses, the
// one PR comment kept up to date, reactions and replies, collaborator permissions, and pull
// request lookups, over the REST API v1 (`<url>/api/v1`). Gitea has no check runs.
//
// Every request carries `Authorization: token <T>` (never a `?token=` query: it can be
// disabled and ends up in access logs), `Accept: application/json` and a User-Agent.
// Calls return values classified by runner::classifyResponse; nothing is retried here. The
// requests Gitea and GitHub share are built by runner::RestForge
// (integrations/common/rest_forge.h). Gitea's status API answers with the state under "status" (the
// request uses "state"); descriptions have no length limit, so they are sent as given.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "integrations/common/rest.h"
#include "runner/core/clock.h"
#include "runner/core/config.h"
#include "runner/core/forge.h"
#include "runner/core/http_client.h"
#include "runner/core/log.h"

namespace integrations::gitea {

struct ClientSettings {
  std::string forgeName;  // for log lines
  std::string apiUrl;     // "https://git.example.org/api/v1", no trailing '/'
  std::string token;      // API token (a secret): repository write scope; its account must
                          // administer the repo for permission checks (re-run commands)
  std::chrono::milliseconds timeout{15000};
  std::string userAgent = "switchyard/0.1";
};

// A Forge for one Gitea/Forgejo instance. `http`, `clock` and `log` must outlive it.
// Thread-safe (it holds no mutable state).
std::unique_ptr<runner::Forge> makeForge(ClientSettings settings, runner::HttpClient& http,
                                         runner::Clock& clock, runner::Logger& log);

// The same from configuration: reads config.tokenFile (registering the token with
// `redactor` if given); apiUrl defaults to config.url + "/api/v1". Throws ConfigError when
// no token_file is configured and InputError when it cannot be read.
std::unique_ptr<runner::Forge> makeForge(const runner::ForgeConfig& config,
                                         runner::HttpClient& http, runner::Clock& clock,
                                         runner::Logger& log, runner::Redactor* redactor = nullptr);

}  // namespace integrations::gitea
