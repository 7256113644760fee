// Known-answer tests for runner/crypto: NIST/RFC digests and HMACs, the forges' webhook
// signature vectors, RFC 4648 base64, and the GitHub App JWT signature (RS256 is
// deterministic, so the published token must come out byte for byte).
#include "runner/crypto/crypto.h"

#include <atomic>
#include <set>
#include <thread>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "runner/core/text.h"
#include "runner/os/files.h"
#include "tests/support/run.h"

using runner::toHex;
namespace crypto = runner::crypto;

namespace {

nlohmann::json jwtVector() {
  return nlohmann::json::parse(runner::os::readFile(
      tests::dataDir() / "webhooks/github/app-jwt/universal-github-app-jwt-vector.json"));
}

// A P-256 key: valid PEM, wrong algorithm for RS256.
constexpr const char* kEcKey = R"(-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg6pCcSBGqxVbu6TGp
6AGmhK/EaWsw2x4IohXiCWRfpH2hRANCAARH/VkM4F7IfV0WKs8UPO8oV5fFxQNS
betQ5f+bJ3lq3s4M7QygMmDhx8GAXF8Wpm+rK1d1mwxJ/Vl71IGtZkAM
-----END PRIVATE KEY-----
)";

// RSA-1024 encrypted with the passphrase "test": must fail without prompting.
constexpr const char* kEncryptedKey = R"(-----BEGIN ENCRYPTED PRIVATE KEY-----
MIIC3TBXBgkqhkiG9w0BBQ0wSjApBgkqhkiG9w0BBQwwHAQINqfABJ88+PYCAggA
MAwGCCqGSIb3DQIJBQAwHQYJYIZIAWUDBAEqBBCAMOc1ZMcwLzyU74slwm02BIIC
gA3BBX3tAkN2DzhaOyKn7mkqZ2YMUxOIw7x1kyUmUztoUTspRHEnyvMYnhDPJU1o
NhvE+1Ukw6Jc45VSwKwykNi0f2xz1wA1Dfy371YOcM6GbkwQIz90p+b+Zp4UYhwc
r5rr9OoQ+6IcjSvV7fNYd8hg2ZKkWd7gqvYsc2is4gMWgrRnqzPzijqOENCyfLf9
QCMfVDndfnhcFPezi57zGu/h//KicT9Ow9chwTEPNcKIFao1Nb8UXoeaNZtvQ9NP
sGtmqDdDAonKbJ3y8ZB+eUs3Al3wTco6S5IDRzcjd6+06qdFr1GjD+VfMMU4eFtF
psgPBM5Re8NSDaRY9kW6SvW7JD5QikDrfNKSwSX4J9p1Axz+seqlm90QKNNOXIqu
kdOrb6yP3rw3RDeGEySMBP7Z9V7jGpYqzMbOz/xO4REZR6iF+uBekNvLnrUjsspD
4Pp/M9akJ+vR5gC+sb1KnVTk2K8ZW5BmYw0by6QKIY3tBKzJB8Ku4BPszVQCkmHA
xZ5Vq6rAZs6ryxsnnmBXi9JoVibgs7MNbeVtXu1krcIlcFz5Tft5IJ+HYLCmTb2Z
ghsCL2N0nqvMLUG1rg1q6xO0FHaYUJ7LHCMcE0aIYviaqVipeuloGyj9ECKEadXN
MMt8i0YAFrWbq+tAjzCpt5Qyvpfe0wNYA1gILfVbwXSqe2mYsBcl0Wf5YSPQMt4e
C9JDc6oFAS93FUiyg4sFflv0w9nw5BDolh3z8xswk7965BAURlakQdgXhq2HUioH
aqw/8hHLQjhvl0bGqF89Hyu0mF+JMeVV8493JuT4qqKYZ4YXatseClJgg4c0VsMd
cxiFmbS50R2+jAjaAfC+XIQ=
-----END ENCRYPTED PRIVATE KEY-----
)";

}  // namespace

TEST_CASE("SHA-256 and SHA-1 match the FIPS 180 examples", "[unit][crypto]") {
  CHECK(toHex(crypto::sha256("abc")) ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(toHex(crypto::sha256("")) ==
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(toHex(crypto::sha1("abc")) == "a9993e364706816aba3e25717850c26c9cd0d89d");
  CHECK(crypto::sha256("abc").size() == 32);
}

TEST_CASE("HMAC-SHA256 and HMAC-SHA1 match RFC 4231 and RFC 2202", "[unit][crypto]") {
  CHECK(toHex(crypto::hmacSha256("Jefe", "what do ya want for nothing?")) ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  CHECK(toHex(crypto::hmacSha1("Jefe", "what do ya want for nothing?")) ==
        "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
  // RFC 4231 test case 1: a 20-byte key of 0x0b
  CHECK(toHex(crypto::hmacSha256(std::string(20, '\x0b'), "Hi There")) ==
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  // an empty key is legal HMAC (Python: hmac.new(b'', b'', sha256))
  CHECK(toHex(crypto::hmacSha256("", "")) ==
        "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

TEST_CASE("HMAC-SHA256 reproduces the GitHub docs webhook vector", "[unit][crypto]") {
  auto v = nlohmann::json::parse(runner::os::readFile(
      tests::dataDir() / "webhooks/github/signed/github-docs-test-vector.json"));
  CHECK(
      toHex(crypto::hmacSha256(v["secret"].get<std::string>(), v["payload"].get<std::string>())) ==
      "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
}

TEST_CASE("HMAC over the go-scm Gitea body reproduces its signatures", "[unit][crypto]") {
  auto body = runner::os::readFile(tests::dataDir() /
                                   "webhooks/gitea/signed/go-scm-pull_request_edited.body.json");
  REQUIRE(body.size() == 5109);
  const std::string secret = "71295b197fa25f4356d2fb9965df3f2379d903d7";
  CHECK(toHex(crypto::hmacSha256(secret, body)) ==
        "a31111f057bafe895837f4a93c0f1f528919c199a20438b1fc8e23485780a33a");
  CHECK(toHex(crypto::hmacSha1(secret, body)) == "3d278f2f589f8ba360c5d16a6f754521eff20ff1");
  CHECK(toHex(crypto::sha256(body)) ==
        "ebf2e167875fc80b1ab30ee7684442a60aba8c0266b02e2bde40ccbf276d3b54");
}

TEST_CASE("base64 encodes and decodes the RFC 4648 vectors", "[unit][crypto]") {
  const std::vector<std::pair<std::string, std::string>> vectors = {{"", ""},
                                                                    {"f", "Zg=="},
                                                                    {"fo", "Zm8="},
                                                                    {"foo", "Zm9v"},
                                                                    {"foob", "Zm9vYg=="},
                                                                    {"fooba", "Zm9vYmE="},
                                                                    {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, coded] : vectors) {
    CHECK(crypto::base64Encode(plain) == coded);
    CHECK(crypto::base64Decode(coded) == plain);
  }
  CHECK(crypto::base64UrlEncode("f") == "Zg");
  CHECK(crypto::base64UrlEncode("\xfb\xff") == "-_8");
  CHECK(crypto::base64Encode("\xfb\xff") == "+/8=");
  CHECK(crypto::base64UrlDecode("-_8") == std::string("\xfb\xff"));
  CHECK(crypto::base64Decode("Zm9v\nYmFy\n") == std::string("foobar"));  // PEM line breaks
  CHECK(crypto::base64Decode("Zm9vYg") == std::string("foob"));          // unpadded
}

TEST_CASE("base64 decoding refuses impossible input", "[unit][crypto]") {
  CHECK_FALSE(crypto::base64Decode("Z").has_value());       // 6 bits
  CHECK_FALSE(crypto::base64Decode("Zg=").has_value());     // wrong padding
  CHECK_FALSE(crypto::base64Decode("Zh==").has_value());    // non-zero trailing bits
  CHECK_FALSE(crypto::base64Decode("Zg==Zg").has_value());  // data after padding
  CHECK_FALSE(crypto::base64Decode("Z-8=").has_value());    // url alphabet in standard
  CHECK_FALSE(crypto::base64UrlDecode("+/8").has_value());  // standard alphabet in url
}

TEST_CASE("random bytes and tokens have the asked length and differ", "[unit][crypto]") {
  CHECK(crypto::randomBytes(0).empty());
  CHECK(crypto::randomBytes(32).size() == 32);
  auto a = crypto::randomToken(), b = crypto::randomToken();
  CHECK(a.size() == 43);
  CHECK(a != b);
  for (char c : a)
    CHECK(((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_'));
  CHECK(crypto::randomToken(16).size() == 22);
}

TEST_CASE("RS256 with the published test key reproduces the GitHub App JWT signature",
          "[unit][crypto]") {
  auto v = jwtVector();
  const std::string expected = v["expected_jwt"];
  const auto lastDot = expected.rfind('.');
  const std::string signingInput = expected.substr(0, lastDot);
  const std::string signature = expected.substr(lastDot + 1);

  for (const char* form : {"private_key_pkcs1_pem", "private_key_pkcs8_pem"}) {
    INFO(form);
    auto key = crypto::RsaSigningKey::fromPem(v[form].get<std::string>());
    CHECK(key.bits() == 2048);
    auto sig = key.signRs256(signingInput);
    CHECK(sig.size() == 256);
    CHECK(crypto::base64UrlEncode(sig) == signature);
  }
}

TEST_CASE("a signing key refuses what is not an unencrypted RSA private key", "[unit][crypto]") {
  CHECK_THROWS_AS(crypto::RsaSigningKey::fromPem("not a key"), runner::InputError);
  CHECK_THROWS_AS(crypto::RsaSigningKey::fromPem(""), runner::InputError);
  CHECK_THROWS_WITH(crypto::RsaSigningKey::fromPem(kEcKey),
                    "the private key is not an RSA key (RS256 needs RSA)");
  CHECK_THROWS_AS(crypto::RsaSigningKey::fromPem(kEncryptedKey), runner::InputError);
  // a truncated PEM body
  auto v = jwtVector();
  std::string pem = v["private_key_pkcs1_pem"];
  CHECK_THROWS_AS(
      crypto::RsaSigningKey::fromPem(pem.substr(0, 200) + "\n-----END RSA PRIVATE KEY-----"),
      runner::InputError);
}

TEST_CASE("one signing key signs from several threads", "[unit][crypto]") {
  auto v = jwtVector();
  auto key = crypto::RsaSigningKey::fromPem(v["private_key_pkcs8_pem"].get<std::string>());
  const std::string expected = key.signRs256("payload");
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i)
        if (key.signRs256("payload") != expected) ++mismatches;
    });
  for (auto& th : threads) th.join();
  CHECK(mismatches == 0);
}
