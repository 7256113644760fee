#include "runner/crypto/openssl_error.h"

#include <openssl/err.h>

#include "runner/crypto/crypto.h"

namespace runner::crypto {

std::string drainOpenSslErrors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown error" : out;
}

void throwOpenSsl(std::string_view doing) {
  throw CryptoError(std::string(doing) + ": " + drainOpenSslErrors());
}

void checkOpenSsl(int rc, std::string_view doing) {
  if (rc != 1) throwOpenSsl(doing);
}

}  // namespace runner::crypto
