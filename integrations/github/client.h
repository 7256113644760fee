// The GitHub API client behind runner::Forge (DESIGN.md §7): commit statuses, check runs
// (as a GitHub App), the one PR comment kept up to date, reactions and replies,
// collaborator permissions and pull request lookups, over the REST API (api.github.com or a
// GitHub Enterprise Server's /api/v3).
//
// Authentication, per call:
//  * as a GitHub App (appId + private key): a JWT (app_auth.h) mints an installation token
//    via POST /app/installations/{id}/access_tokens; tokens are cached per installation and
//    minted again `tokenRefreshMargin` before their expires_at, or at once after a 401. The
//    installation of a repository comes from noteInstallation() (webhook deliveries carry
//    it) or GET /repos/{owner}/{repo}/installation, and is cached.
//  * otherwise with a personal/OAuth token (commit statuses and comments only: GitHub
//    refuses check runs to anything but an App).
// Requests carry `Authorization: Bearer <token>`, `Accept: application/vnd.github+json`,
// `X-GitHub-Api-Version: 2022-11-28` and a User-Agent (GitHub rejects requests without one).
// The requests GitHub and Gitea share are built by runner::RestForge
// (integrations/common/rest_forge.h).
//
// Limits applied before sending (FORGE-FACTS §2.3-2.4): status descriptions are cut to 140
// characters; check run summary and text to 65535 bytes; action labels to 20 and
// descriptions to 40 characters; more than 3 actions or an identifier over 20 characters is
// refused (Permanent, httpStatus 0), as is a completed run without a conclusion.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "runner/core/clock.h"
#include "runner/core/config.h"
#include "runner/core/forge.h"
#include "runner/core/http_client.h"
#include "runner/core/log.h"

namespace integrations::github {

struct ClientSettings {
  std::string forgeName;                          // for log lines
  std::string apiUrl = "https://api.github.com";  // no trailing '/'
  std::string token;                              // personal/OAuth token; "" with an App only
  std::optional<int64_t> appId;                   // GitHub App id (the JWT's iss)
  std::string privateKeyPem;                      // the App's private key, PKCS#1 or PKCS#8
  std::chrono::milliseconds timeout{15000};
  std::string userAgent = "switchyard/0.1";
  std::chrono::seconds tokenRefreshMargin{300};  // mint a new token this long before expiry
  // When set, every installation token is registered as it is minted, so it never reaches
  // a log line. Must outlive the Forge.
  runner::Redactor* redactor = nullptr;
};

// A Forge for GitHub. `http`, `clock` and `log` must outlive it. Thread-safe; minting a
// token is serialised (other calls wait for it rather than mint their own).
// Throws InputError if privateKeyPem is not an RSA private key, and ConfigError when
// neither a token nor an App (id and key) is given.
std::unique_ptr<runner::Forge> makeForge(ClientSettings settings, runner::HttpClient& http,
                                         runner::Clock& clock, runner::Logger& log);

// The same from configuration: reads config.tokenFile and/or config.privateKeyFile (with
// config.appId), registering the secrets with `redactor` if given. apiUrl defaults to
// https://api.github.com for url https://github.com (or no url), else url + "/api/v3".
// When both a token and an App are configured, the App is used.
std::unique_ptr<runner::Forge> makeForge(const runner::ForgeConfig& config,
                                         runner::HttpClient& http, runner::Clock& clock,
                                         runner::Logger& log, runner::Redactor* redactor = nullptr);

}  // namespace integrations::github
