// SHA digests and HMACs through OpenSSL's one-shot EVP interfaces.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "runner/crypto/crypto.h"
#include "runner/crypto/openssl_error.h"

namespace runner::crypto {

namespace {

std::string digest(const EVP_MD* md, std::string_view data, std::string_view what) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  checkOpenSsl(EVP_Digest(data.data(), data.size(), out, &len, md, nullptr), what);
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string hmac(const EVP_MD* md, std::string_view key, std::string_view data,
                 std::string_view what) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  // HMAC() rejects a null key pointer even with length 0; an empty key is legal HMAC.
  static const unsigned char kEmpty = 0;
  const void* k = key.empty() ? static_cast<const void*>(&kEmpty) : key.data();
  if (!HMAC(md, k, static_cast<int>(key.size()),
            reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len))
    throwOpenSsl(what);
  return std::string(reinterpret_cast<char*>(out), len);
}

}  // namespace

std::string sha256(std::string_view data) {
  return digest(EVP_sha256(), data, "computing SHA-256");
}
std::string sha1(std::string_view data) { return digest(EVP_sha1(), data, "computing SHA-1"); }

std::string hmacSha256(std::string_view key, std::string_view data) {
  return hmac(EVP_sha256(), key, data, "computing HMAC-SHA256");
}
std::string hmacSha1(std::string_view key, std::string_view data) {
  return hmac(EVP_sha1(), key, data, "computing HMAC-SHA1");
}

}  // namespace runner::crypto
