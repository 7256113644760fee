// The outbound HTTP port (forge APIs, HTTP health checks). The real client is libcurl in
// runner/http; tests use a real fake forge server on loopback, or a hand-written fake.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace runner {

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::chrono::milliseconds timeout{15000};
};

struct HttpResponse {
  int status = 0;                              // 0: no HTTP response (see `error`)
  std::map<std::string, std::string> headers;  // names lowercased
  std::string body;
  std::string error;  // transport failure ("connection refused", "timed out"); "" otherwise

  bool ok() const { return status >= 200 && status < 300; }
  // The header's value, or "" (name is matched case-insensitively).
  std::string header(const std::string& name) const;
};

class HttpClient {
 public:
  virtual ~HttpClient() = default;
  // Sends one request. Never throws for an HTTP status or a transport failure: both are in
  // the response. Thread-safe.
  virtual HttpResponse send(const HttpRequest& request) = 0;
};

}  // namespace runner
