// The runner's HTTP server (DESIGN.md §1, §2): webhooks, the web UI, the JSON API, log
// streaming and /metrics all go through this one small interface. It is our own HTTP/1.1
// server (README "Decisions": cpp-httplib's thread per connection let 120 slow clients stall
// the daemon, and it buffered chunked bodies past the limit):
//
//  * one event-loop thread owns every socket (epoll, non-blocking): reading, parsing
//    (request_parser.h, strict), writing and all deadlines, so an idle or slow client costs a
//    few hundred bytes and no thread;
//  * complete requests go to a small pool of handler threads; a streamed answer's producer
//    gets a thread of its own (at most maxStreams) and writes through a bounded queue that
//    the loop drains (the producer blocks while the client is slow, never the loop);
//  * routes by method and path pattern ("/runs/:id/logs/:host"), with the raw body bytes
//    (signatures cover them) and case-insensitive headers (runner::Headers);
//  * limits on everything a client controls (ServerOptions): body (413 as soon as a
//    Content-Length or the decoded chunked size passes it; with "Expect: 100-continue" the
//    body is never sent), head size (414/431), whole-head and whole-body deadlines (408),
//    idle keep-alive, write progress, connections in total and per remote address (503);
//  * keep-alive, pipelining, HEAD, Connection: close, HTTP/1.0;
//  * the error boundary (STYLE.md P3): a handler that throws is answered 500 with one line
//    (InputError: 400), logged, never propagated;
//  * a graceful stop: stop() closes the listening socket and idle connections, lets requests
//    in progress finish and their answers go out (streams see `stopping()`), and joins the
//    threads.
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
  // When set, the body is produced by this function on a thread of its own (it may block),
  // chunk by chunk, until it returns (then the response ends). Its writes wait while the
  // client is slow (ServerOptions::streamBufferBytes queued).
  std::function<void(StreamSink&)> stream;

  static Response text(int status, std::string body);
  static Response json(int status, const std::string& jsonText);
  static Response html(int status, std::string body);
  static Response redirect(const std::string& location, int status = 303);
};

using Handler = std::function<Response(const Request&)>;

// Every limit a client can push against. Times are whole-phase deadlines, not reset by each
// byte that arrives.
struct ServerOptions {
  std::string listen = "127.0.0.1:0";  // host:port; port 0 = any free port
  size_t maxBodyBytes = 25u << 20;     // decoded request body (413 beyond)
  size_t threads = 16;                 // handler threads: requests handled at the same time
  size_t maxStreams = 64;        // streamed answers producing at once, a thread each (503 beyond)
  size_t maxConnections = 4096;  // open connections in total (503 and closed beyond)
  size_t maxConnectionsPerAddress = 256;          // open connections per remote IP address (same)
  size_t maxRequestLineBytes = size_t{8} * 1024;  // 414 beyond
  size_t maxHeaderBytes = size_t{32} * 1024;      // all header lines of a request (431 beyond)
  size_t maxHeaderCount = 100;                    // header fields of a request (431 beyond)
  // Request bodies in memory, all connections together (being read or handled). A body is
  // read only once its size (Content-Length; maxBodyBytes when chunked) is reserved out of
  // this; until then its connection is not read and gets no 100 Continue (its body deadline
  // runs). Reserved bodies always make progress. Taken as at least maxBodyBytes.
  size_t maxBufferedBodyBytes = 256u << 20;
  // From a request's first byte (a new connection: from accept) to the end of its head:
  // 408 (a new connection that sent nothing is closed without an answer).
  std::chrono::milliseconds headerTimeout{10'000};
  std::chrono::milliseconds bodyTimeout{60'000};   // from the end of the head to the body's end
  std::chrono::milliseconds keepAlive{5'000};      // idle between requests, then closed
  std::chrono::milliseconds writeTimeout{30'000};  // an answer makes no progress: closed
  size_t keepAliveMaxRequests = 1000;              // requests per connection
  size_t streamBufferBytes = size_t{256} * 1024;   // a stream's queued output before write() blocks
  std::chrono::milliseconds stopGrace{10'000};     // stop() waits this long for answers in flight
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
  // Connections accepted and not yet closed (readable from any thread; tests wait on it
  // instead of sleeping, a metric could show it).
  size_t openConnections() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  ServerOptions options_;
  Logger& log_;
  int port_ = 0;
  std::thread thread_;  // the event loop
};

// The descriptors the rest of the process may hold beside the server's connections (the
// database, log files, pipes to nix and ssh children, git mirrors).
inline constexpr size_t kOtherDescriptors = 1024;
// Raises the process's soft limit of open files to what `maxConnections` connections need
// (each is a descriptor) plus kOtherDescriptors — never lowers it, never past the hard limit —
// and logs the change, or a warning when the hard limit is too low. Server::start() calls it:
// the limit is process-wide, so it is raised only as far as the configured connections need.
void raiseFileLimitFor(size_t maxConnections, Logger& log);

// Splits "host:port" ("[::1]:80" for IPv6). Throws InputError.
std::pair<std::string, int> splitListen(std::string_view listen);

}  // namespace runner::http
