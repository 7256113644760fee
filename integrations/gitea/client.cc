#include "integrations/gitea/client.h"

#include <nlohmann/json.hpp>

#include "integrations/common/rest_forge.h"
#include "runner/core/error.h"
#include "runner/os/files.h"

namespace integrations::gitea {

using nlohmann::json;
using runner::CallResult;
using runner::ForgeResult;

namespace {

class GiteaForge final : public runner::RestForge {
 public:
  GiteaForge(ClientSettings s, runner::HttpClient& http, runner::Clock& clock, runner::Logger& log)
      : RestForge({s.forgeName, s.apiUrl, s.timeout, /*commentListQuery=*/"",
                   /*permissionForbiddenHint=*/
                   "Gitea and Forgejo show other users' permissions only to repository "
                   "administrators: give Switchyard's account admin access to the repository"},
                  http, clock, log),
        token_(std::move(s.token)),
        userAgent_(std::move(s.userAgent)) {}

  runner::ForgeCapabilities capabilities() const override { return {false, 0}; }

  ForgeResult<int64_t> createCheckRun(const std::string&, const runner::CheckRunSpec&) override {
    return CallResult::refused("Gitea and Forgejo have no check runs; use commit statuses");
  }
  CallResult updateCheckRun(const std::string&, int64_t, const runner::CheckRunSpec&) override {
    return CallResult::refused("Gitea and Forgejo have no check runs; use commit statuses");
  }

 private:
  CallResult callUrl(const std::string& /*repo*/, const std::string& method, const std::string& url,
                     const json* body, runner::HttpResponse* out) override {
    runner::HttpResponse resp = send(method, url, body,
                                     {{"Authorization", "token " + token_},
                                      {"Accept", "application/json"},
                                      {"User-Agent", userAgent_}});
    CallResult r = classifyAndLog(method, url, resp);
    if (out) *out = std::move(resp);
    return r;
  }

  runner::UserPermission readPermission(const json& /*answer*/,
                                        const std::string& permission) const override {
    return {permission, permission == "write" || permission == "admin" || permission == "owner"};
  }

  const std::string token_;
  const std::string userAgent_;
};

}  // namespace

std::unique_ptr<runner::Forge> makeForge(ClientSettings settings, runner::HttpClient& http,
                                         runner::Clock& clock, runner::Logger& log) {
  return std::make_unique<GiteaForge>(std::move(settings), http, clock, log);
}

std::unique_ptr<runner::Forge> makeForge(const runner::ForgeConfig& config,
                                         runner::HttpClient& http, runner::Clock& clock,
                                         runner::Logger& log, runner::Redactor* redactor) {
  if (!config.tokenFile)
    throw runner::ConfigError("forge '" + config.name + "' (" + config.type +
                              ") needs token_file to report statuses");
  ClientSettings s;
  s.forgeName = config.name;
  s.apiUrl = config.apiUrl.empty() ? config.url + "/api/v1" : config.apiUrl;
  s.token = runner::os::readSecretFile(*config.tokenFile, redactor);
  return makeForge(std::move(s), http, clock, log);
}

}  // namespace integrations::gitea
