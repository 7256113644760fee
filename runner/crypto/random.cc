#include <openssl/rand.h>

#include "runner/crypto/crypto.h"
#include "runner/crypto/openssl_error.h"

namespace runner::crypto {

std::string randomBytes(size_t n) {
  std::string out(n, '\0');
  if (n == 0) return out;
  checkOpenSsl(RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)),
               "drawing random bytes");
  return out;
}

std::string randomToken(size_t bytes) { return base64UrlEncode(randomBytes(bytes)); }

}  // namespace runner::crypto
