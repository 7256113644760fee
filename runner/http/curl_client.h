// The real outbound HTTP client: runner::HttpClient implemented with libcurl (DESIGN.md §2,
// runner/http is the only folder that sees curl). Forge API clients and HTTP health checks
// use it through the port in runner/core/http_client.h.
//
// Behaviour worth knowing:
//  * One curl easy handle per send(): no handle is shared between threads, so send() is
//    thread-safe without locks (STYLE.md P12). Connections are not reused across calls.
//  * Only http:// and https:// URLs; redirects are NOT followed (a 3xx is returned as is),
//    so an Authorization header is never replayed to another host.
//  * The request's `timeout` bounds the whole exchange; connecting is bounded by
//    min(timeout, connectTimeout).
//  * Response header names are lowercased; a header that appears more than once is joined
//    with ", " (RFC 9110 §5.3). Only the final response's headers are kept (not those of a
//    "100 Continue").
//  * Transport failures come back as a response with status 0 and `error` set to curl's
//    description ("Failed to connect to 127.0.0.1 port 9: Connection refused", "timed out
//    after 200 ms"). Error text never contains request headers or bodies, so tokens in
//    headers cannot leak through it.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

#include "runner/core/http_client.h"

namespace runner::http {

struct CurlOptions {
  std::string userAgent = "switchyard/0.1";  // sent unless the request sets User-Agent
  std::chrono::milliseconds connectTimeout{10000};
  size_t maxResponseBytes = 32u << 20;  // larger bodies fail with "response too large"
  std::string caFile;                   // extra CA bundle (PEM); "" = the system's
};

class CurlHttpClient final : public HttpClient {
 public:
  // Initialises libcurl once per process (thread-safe). Throws HttpError if libcurl cannot
  // be initialised.
  explicit CurlHttpClient(CurlOptions options = {});

  // See HttpClient::send. Never throws for HTTP statuses or transport failures; throws
  // HttpError only if libcurl rejects an option (a bug or out of memory). Thread-safe.
  HttpResponse send(const HttpRequest& request) override;

 private:
  CurlOptions options_;
};

}  // namespace runner::http
