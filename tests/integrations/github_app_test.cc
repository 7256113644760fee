// GitHub App JWTs against the known-answer vector of universal-github-app-jwt@2.2.2 (app id
// 1 at time 0 -> iat -30, exp 570): RS256 is deterministic, so the token must come out byte
// for byte, from a PKCS#1 and from a PKCS#8 key.
#include <catch2/catch.hpp>

#include "integrations/github/app_auth.h"
#include "runner/core/text.h"
#include "tests/integrations/test_helpers.h"

using namespace std::chrono_literals;
namespace crypto = runner::crypto;

namespace {
nlohmann::json vector() {
  return tests::webhookJson("github/app-jwt/universal-github-app-jwt-vector.json");
}
}  // namespace

TEST_CASE("the App JWT reproduces the published token byte for byte", "[unit][github]") {
  auto v = vector();
  const std::string expected = v["expected_jwt"];
  const auto epoch = std::chrono::system_clock::time_point(0s);
  for (const char* form : {"private_key_pkcs1_pem", "private_key_pkcs8_pem"}) {
    INFO(form);
    auto key = crypto::RsaSigningKey::fromPem(v[form].get<std::string>());
    CHECK(integrations::github::makeAppJwt(key, v["app_id"].get<int64_t>(), epoch) == expected);
  }
}

TEST_CASE("the App JWT's claims follow the clock: iat = now-30, exp = iat+600", "[unit][github]") {
  auto v = vector();
  auto key = crypto::RsaSigningKey::fromPem(v["private_key_pkcs8_pem"].get<std::string>());
  auto jwt = integrations::github::makeAppJwt(
      key, 1, std::chrono::system_clock::time_point(10s) + 900ms);  // fractions are dropped
  auto parts = runner::split(jwt, '.');
  REQUIRE(parts.size() == 3);
  CHECK(crypto::base64UrlDecode(parts[0]) == std::string(R"({"alg":"RS256","typ":"JWT"})"));
  CHECK(crypto::base64UrlDecode(parts[1]) == std::string(R"({"iat":-20,"exp":580,"iss":1})"));
  CHECK(v["second_case"]["expected_iat"] == -20);
  CHECK(v["second_case"]["expected_exp"] == 580);

  auto later = integrations::github::makeAppJwt(key, 123456,
                                                std::chrono::system_clock::time_point(1767225600s));
  CHECK(crypto::base64UrlDecode(runner::split(later, '.')[1]) ==
        std::string(R"({"iat":1767225570,"exp":1767226170,"iss":123456})"));
}

TEST_CASE("GitHub timestamps parse to UTC", "[unit][github]") {
  auto t = integrations::github::parseGitHubTime("2026-01-01T01:00:00Z");
  REQUIRE(t.has_value());
  CHECK(std::chrono::duration_cast<std::chrono::seconds>(t->time_since_epoch()).count() ==
        1767229200);
  CHECK_FALSE(integrations::github::parseGitHubTime("2026-01-01").has_value());
  CHECK_FALSE(integrations::github::parseGitHubTime("").has_value());
  CHECK_FALSE(integrations::github::parseGitHubTime("2026-01-01T01:00:00Zjunk").has_value());
}
