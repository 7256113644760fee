// Cryptography for the runner: digests and HMACs (webhook signatures), base64 (JWTs, PEM),
// RS256 signing with an RSA private key (GitHub App JWTs) and random tokens (CSRF, UI
// logins). This folder is the only one that includes OpenSSL (DESIGN.md §2); everything
// here takes and returns byte strings, so no OpenSSL type leaks out of it.
//
// All functions are thread-safe. Digests and MACs return raw bytes; use runner::toHex for
// the hex form forges put in headers.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "runner/core/error.h"

namespace runner::crypto {

// OpenSSL reported a failure that is not the caller's input (out of memory, no entropy).
class CryptoError : public Error {
  using Error::Error;
};

// Raw digests: 32 bytes (SHA-256) and 20 bytes (SHA-1).
std::string sha256(std::string_view data);
std::string sha1(std::string_view data);

// Raw HMACs keyed with `key` (any length, including empty): 32 and 20 bytes.
std::string hmacSha256(std::string_view key, std::string_view data);
std::string hmacSha1(std::string_view key, std::string_view data);

// Standard base64 (RFC 4648 §4) with '=' padding.
std::string base64Encode(std::string_view bytes);
// base64url (RFC 4648 §5) without padding, as JWTs use it.
std::string base64UrlEncode(std::string_view bytes);
// Decodes either alphabet's own form: base64Decode accepts padded or unpadded standard
// base64 and skips ASCII whitespace (PEM bodies); base64UrlDecode accepts the url alphabet,
// padded or not. nullopt on any other character or an impossible length.
std::optional<std::string> base64Decode(std::string_view text);
std::optional<std::string> base64UrlDecode(std::string_view text);

// `n` bytes from OpenSSL's CSPRNG. Throws CryptoError if it cannot be seeded.
std::string randomBytes(size_t n);
// A random token: `bytes` random bytes, base64url-encoded (32 bytes -> 43 characters).
std::string randomToken(size_t bytes = 32);

// An RSA private key that signs with RS256 (RSASSA-PKCS1-v1_5 over SHA-256, RFC 7518 §3.3).
// Immutable after construction; sign() may be called from several threads at once.
// Movable, not copyable.
class RsaSigningKey {
 public:
  // Parses a PEM private key: PKCS#1 ("BEGIN RSA PRIVATE KEY") or PKCS#8 ("BEGIN PRIVATE
  // KEY"), unencrypted. Throws InputError (never quoting the key) if the text is not such a
  // key, the key is encrypted, or it is not RSA.
  static RsaSigningKey fromPem(std::string_view pem);

  RsaSigningKey(RsaSigningKey&&) noexcept;
  RsaSigningKey& operator=(RsaSigningKey&&) noexcept;
  ~RsaSigningKey();

  // The raw RS256 signature of `data` (as long as the modulus: 256 bytes for RSA-2048).
  // Deterministic. Throws CryptoError if OpenSSL fails.
  std::string signRs256(std::string_view data) const;

  // Modulus size in bits (2048, 4096, ...).
  int bits() const;

 private:
  struct Impl;
  explicit RsaSigningKey(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace runner::crypto
