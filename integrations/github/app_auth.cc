#include "integrations/github/app_auth.h"

#include <ctime>

namespace integrations::github {

std::string makeAppJwt(const runner::crypto::RsaSigningKey& key, int64_t appId,
                       std::chrono::system_clock::time_point now) {
  using namespace std::chrono;
  const int64_t nowSecs = duration_cast<seconds>(now.time_since_epoch()).count();
  const int64_t iat = nowSecs - kJwtBackdate.count();
  const int64_t exp = iat + kJwtLifetime.count();
  const std::string header = R"({"alg":"RS256","typ":"JWT"})";
  const std::string claims = "{\"iat\":" + std::to_string(iat) + ",\"exp\":" + std::to_string(exp) +
                             ",\"iss\":" + std::to_string(appId) + "}";
  std::string signingInput =
      runner::crypto::base64UrlEncode(header) + "." + runner::crypto::base64UrlEncode(claims);
  return signingInput + "." + runner::crypto::base64UrlEncode(key.signRs256(signingInput));
}

std::optional<std::chrono::system_clock::time_point> parseGitHubTime(std::string_view text) {
  std::tm tm{};
  std::string s(text);
  const char* end = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  if (!end || *end) return std::nullopt;
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

}  // namespace integrations::github
