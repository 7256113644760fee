// GitHub App authentication (FORGE-FACTS §2.5): the app signs a short JWT with its private
// key (RS256) and trades it for an installation access token, valid for an hour, per
// installation. The JWT is built here by hand so its bytes are exactly the ones GitHub's own
// libraries produce (claims in the order iat, exp, iss), which the known-answer test in
// tests/integrations/github_app_test.cc checks against universal-github-app-jwt's vector.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "runner/crypto/crypto.h"

namespace integrations::github {

// How far the JWT's iat is set back for clock drift, and its lifetime from iat (GitHub
// refuses exp more than 10 minutes ahead; iat = now-30, exp = iat+600 is 9.5 minutes).
inline constexpr std::chrono::seconds kJwtBackdate{30};
inline constexpr std::chrono::seconds kJwtLifetime{600};

// "<base64url header>.<base64url claims>.<base64url RS256 signature>" with header
// {"alg":"RS256","typ":"JWT"} and claims {"iat":<now-30>,"exp":<iat+600>,"iss":<appId>},
// `now` truncated to whole seconds. Deterministic. Throws crypto::CryptoError only if
// OpenSSL fails.
std::string makeAppJwt(const runner::crypto::RsaSigningKey& key, int64_t appId,
                       std::chrono::system_clock::time_point now);

// Parses GitHub's timestamps ("2016-07-11T22:14:10Z"); nullopt for anything else.
std::optional<std::chrono::system_clock::time_point> parseGitHubTime(std::string_view text);

}  // namespace integrations::github
