// Helpers for the daemon tests: a state directory with secret files and a config, signed
// deliveries posted over real HTTP, and counting rows in the daemon's database.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "runner/app/daemon.h"
#include "runner/core/config.h"
#include "runner/core/text.h"
#include "runner/crypto/crypto.h"
#include "runner/http/curl_client.h"
#include "runner/os/files.h"
#include "runner/scheduler/intake.h"
#include "runner/store/database.h"

namespace tests {

inline constexpr const char* kHookSecret = "hook-secret-for-tests";
inline constexpr const char* kGiteaSecret = "gitea-secret-for-tests";
inline constexpr const char* kGithubSecret = "github-secret-for-tests";

// A config on loopback port 0 with state in `dir`, secrets in files there, forges "home"
// (gitea) and "hub" (github), no repos.
inline runner::Config daemonConfig(const std::filesystem::path& dir) {
  runner::Config c;
  c.listen = "127.0.0.1:0";
  c.stateDir = dir / "state";
  runner::os::writeFileAtomic(dir / "hook.secret", std::string(kHookSecret) + "\n");
  runner::os::writeFileAtomic(dir / "gitea.secret", kGiteaSecret);
  runner::os::writeFileAtomic(dir / "github.secret", kGithubSecret);
  c.hookSecretFile = dir / "hook.secret";
  runner::ForgeConfig gitea;
  gitea.name = "home";
  gitea.type = "gitea";
  gitea.url = "http://gitea.invalid";
  gitea.webhookSecretFile = dir / "gitea.secret";
  c.forges["home"] = gitea;
  runner::ForgeConfig github;
  github.name = "hub";
  github.type = "github";
  github.url = "https://github.com";
  github.webhookSecretFile = dir / "github.secret";
  c.forges["hub"] = github;
  return c;
}

inline std::string hexHmac(const std::string& secret, const std::string& body) {
  return runner::toHex(runner::crypto::hmacSha256(secret, body));
}

inline runner::HttpResponse post(runner::HttpClient& http, const std::string& url,
                                 const std::string& body,
                                 std::vector<std::pair<std::string, std::string>> headers) {
  runner::HttpRequest r;
  r.method = "POST";
  r.url = url;
  r.body = body;
  r.headers = std::move(headers);
  r.headers.emplace_back("Content-Type", "application/json");
  r.timeout = std::chrono::seconds(20);
  return http.send(r);
}

// A signed post-receive delivery for `ref` old..new of repo `repo`.
inline runner::HttpResponse postHook(runner::HttpClient& http, const std::string& baseUrl,
                                     const std::string& deliveryId, const std::string& repo,
                                     const std::string& ref, const std::string& before,
                                     const std::string& after) {
  nlohmann::json j = {{"repo", repo},   {"ref", ref},       {"before", before},
                      {"after", after}, {"pusher", "test"}, {"delivery", deliveryId}};
  std::string body = j.dump();
  return post(http, baseUrl + "/hooks/git", body,
              {{"X-Switchyard-Delivery", deliveryId},
               {"X-Switchyard-Signature", runner::scheduler::signHookBody(kHookSecret, body)}});
}

inline int64_t countRows(const runner::Config& c, const std::string& sql,
                         const std::vector<runner::store::SqlValue>& params = {}) {
  auto db = runner::store::Database::open(runner::app::databasePath(c),
                                          runner::store::Durability::Normal);
  return db->query(sql, params).at(0).integer(0);
}

}  // namespace tests
