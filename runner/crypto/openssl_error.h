// The one error check for OpenSSL (STYLE.md P6), internal to runner/crypto. OpenSSL keeps a
// per-thread error queue; these functions read and clear it on the failing thread.
#pragma once

#include <string>
#include <string_view>

namespace runner::crypto {

// Throws CryptoError("<doing>: <OpenSSL's reason>") unless rc == 1 (OpenSSL's success).
void checkOpenSsl(int rc, std::string_view doing);
// Throws CryptoError for `doing` with the reason at the top of OpenSSL's error queue.
[[noreturn]] void throwOpenSsl(std::string_view doing);
// The queued OpenSSL reasons joined by "; " (or "unknown error"); clears the queue.
std::string drainOpenSslErrors();

}  // namespace runner::crypto
