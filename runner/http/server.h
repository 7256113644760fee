// The runner's HTTP server (DESIGN.md §1, §2): webhooks, the web UI, the JSON API, log
// streaming and /metrics all go through this one small interface, so only runner/http sees
// cpp-httplib. What it adds to the library:
//
//  * routes by method and path pattern ("/runs/:id/logs/:host"), with the raw body bytes
//    (signatures cover them) and case-insensitive headers (runner::Headers);
//  * a body limit: a request whose Content-Length is over it gets 413 — at once when the
//    client asked "Expect: 100-continue" (the body is never sent), otherwise the body is
//    discarded as it arrives (never buffered); a chunked body is cut off at the limit;
//  * a fixed pool of worker threads: one per open connection at a time (HTTP/1.1 keep-alive
//    holds its thread between requests), so size it above the expected concurrent
//    connections;
//  * the error boundary (STYLE.md P3): a handler that throws is answered 500 with one line
//    (InputError: 400), logged, never propagated;
//  * streamed answers (chunked) for logs that grow while a run runs;
//  * a graceful stop: stop() closes the listening socket, lets requests in progress finish
//    (streams see `stopping()`), and joins the threads.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "runner/core/forge.h"
#include "runner/core/log.h"

namespace runner::http {

struct Request {
  std::string method;  // "GET", "POST", …
  std::string path;    // without the query
  Headers headers;
  std::string body;                               // raw bytes
  std::map<std::string, std::string> params;      // query string and form fields, decoded
  std::map<std::string, std::string> pathParams;  // ":id" segments of the route
  std::string remoteAddr;

  // A path parameter, query parameter or form field ("" when absent).
  std::string param(const std::string& name) const;
  // The value of a cookie, or "".
  std::string cookie(std::string_view name) const;
};

// Writes a streamed (chunked) answer. write() returns false once the client is gone or the
// server is stopping: the producer should return then.
class StreamSink {
 public:
  virtual ~StreamSink() = default;
  virtual bool write(std::string_view data) = 0;
  virtual bool stopping() const = 0;
};

struct Response {
  int status = 200;
  std::string contentType = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // When set, the body is produced by this function on the request's thread, chunk by
  // chunk, until it returns (then the response ends).
  std::function<void(StreamSink&)> stream;

  static Response text(int status, std::string body);
  static Response json(int status, const std::string& jsonText);
  static Response html(int status, std::string body);
  static Response redirect(const std::string& location, int status = 303);
};

using Handler = std::function<Response(const Request&)>;

struct ServerOptions {
  std::string listen = "127.0.0.1:0";  // host:port; port 0 = any free port
  size_t maxBodyBytes = 25u << 20;
  size_t threads = 96;  // worker threads (= concurrent connections served)
  std::chrono::seconds readTimeout{10};
  std::chrono::seconds keepAlive{5};
  size_t keepAliveMaxRequests = 1000;
};

class Server {
 public:
  // `log` must outlive the server (handler failures and access problems go there).
  Server(ServerOptions options, Logger& log);
  ~Server();  // stop()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Adds a route. `pattern` is a path with ":name" segments ("/runs/:id"). Routes are tried
  // in the order added. REQUIRES: before start().
  void route(const std::string& method, const std::string& pattern, Handler handler);

  // Binds and starts serving on a thread of its own; returns the bound port.
  // Throws SysError/InputError when the address is bad or cannot be bound.
  int start();
  // Stops accepting and serving; waits for requests in progress. Idempotent; noexcept.
  void stop() noexcept;
  int port() const { return port_; }
  bool running() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  ServerOptions options_;
  Logger& log_;
  int port_ = 0;
  std::thread thread_;
};

// Splits "host:port" ("[::1]:80" for IPv6). Throws InputError.
std::pair<std::string, int> splitListen(std::string_view listen);

}  // namespace runner::http
