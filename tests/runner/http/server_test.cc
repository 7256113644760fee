// runner::http::Server against raw sockets (issue 11, items 3 and 4): what hostile or broken
// clients send — oversize chunked bodies, slow heads and bodies, a thousand idle
// connections, malformed and ambiguous requests — and what well-behaved ones rely on:
// keep-alive, pipelining, HEAD, Expect: 100-continue, form decoding, streamed answers, stop().
#include "runner/http/server.h"

#include <arpa/inet.h>
#include <atomic>
#include <chrono>
#include <fstream>
#include <memory>
#include <mutex>
#include <netinet/in.h>
#include <poll.h>
#include <string>
#include <sys/resource.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <catch2/catch.hpp>

#include "runner/core/error.h"
#include "runner/core/log.h"
#include "runner/http/request_parser.h"
#include "tests/support/wait.h"

using namespace std::chrono_literals;
using runner::http::Request;
using runner::http::Response;
using runner::http::Server;
using runner::http::ServerOptions;
using Clock = std::chrono::steady_clock;

namespace {

// A blocking TCP client with a read timeout; nothing of HTTP beyond reading one answer.
class RawClient {
 public:
  explicit RawClient(int port, const char* source = nullptr) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    if (source) {
      sockaddr_in src{};
      src.sin_family = AF_INET;
      ::inet_pton(AF_INET, source, &src.sin_addr);
      REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&src), sizeof src) == 0);
    }
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    ::inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  }
  ~RawClient() { close(); }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  // False when the server closed or reset the connection.
  bool send(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  // Reads until `buf_` holds `n` bytes or the peer closes or the timeout passes.
  bool fill(size_t n, std::chrono::milliseconds timeout = 5000ms) {
    auto end = Clock::now() + timeout;
    while (buf_.size() < n) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now());
      if (left.count() <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
      char tmp[65536];
      ssize_t r = ::recv(fd_, tmp, sizeof tmp, 0);
      if (r <= 0) {
        closed_ = true;
        return false;
      }
      buf_.append(tmp, static_cast<size_t>(r));
    }
    return true;
  }
  bool readLine(std::string& line, std::chrono::milliseconds timeout = 5000ms) {
    while (true) {
      auto nl = buf_.find("\r\n");
      if (nl != std::string::npos) {
        line = buf_.substr(0, nl);
        buf_.erase(0, nl + 2);
        return true;
      }
      if (!fill(buf_.size() + 1, timeout)) return false;
    }
  }

  struct Answer {
    int status = 0;                              // 0: no answer (closed or timed out)
    std::map<std::string, std::string> headers;  // lower-case names
    std::string body;
  };
  // Reads one answer; `head` for an answer to HEAD (no body).
  Answer answer(bool head = false, std::chrono::milliseconds timeout = 5000ms) {
    Answer a;
    std::string line;
    if (!readLine(line, timeout)) return a;
    if (line.size() < 12) return a;
    int status = std::stoi(line.substr(9, 3));
    while (readLine(line, timeout) && !line.empty()) {
      auto colon = line.find(':');
      std::string name = line.substr(0, colon);
      for (auto& c : name) c = static_cast<char>(std::tolower(c));
      a.headers[name] = line.substr(colon + 2);
    }
    if (head || status == 100 || status == 204 || status == 304) {
      a.status = status;
      return a;
    }
    if (a.headers.count("content-length")) {
      size_t n = std::stoul(a.headers["content-length"]);
      if (!fill(n, timeout)) return a;
      a.body = buf_.substr(0, n);
      buf_.erase(0, n);
    } else if (a.headers["transfer-encoding"] == "chunked") {
      while (true) {
        if (!readLine(line, timeout)) return a;
        size_t n = std::stoul(line, nullptr, 16);
        if (n == 0) {
          readLine(line, timeout);
          break;
        }
        if (!fill(n + 2, timeout)) return a;
        a.body += buf_.substr(0, n);
        buf_.erase(0, n + 2);
      }
    } else {
      while (fill(buf_.size() + 1, timeout)) {
      }
      a.body = std::move(buf_);
      buf_.clear();
    }
    a.status = status;
    return a;
  }
  // True when the server closed the connection (EOF) within the timeout.
  bool closedByPeer(std::chrono::milliseconds timeout = 5000ms) {
    while (fill(buf_.size() + 1, timeout)) {
    }
    return closed_;
  }
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
  bool closed_ = false;
  std::string buf_;
};

std::string get(const std::string& path, const std::string& extra = "") {
  return "GET " + path + " HTTP/1.1\r\nHost: t\r\n" + extra + "\r\n";
}

// A server with a few routes the tests use.
struct TestServer {
  explicit TestServer(ServerOptions o = {}) : server(std::move(o), log) {
    server.route("GET", "/healthz", [](const Request&) { return Response::text(200, "ok\n"); });
    server.route("POST", "/echo", [](const Request& r) {
      return Response::text(200, "body=" + r.body + " a=" + r.param("a") + " b=" + r.param("b"));
    });
    server.route("GET", "/runs/:id", [](const Request& r) {
      return Response::text(200, "run " + r.param("id") + " q=" + r.param("q"));
    });
    server.route("GET", "/slow", [this](const Request&) {
      slowStarted = true;
      std::this_thread::sleep_for(300ms);
      return Response::text(200, "slow done");
    });
    server.route("GET", "/throw",
                 [](const Request&) -> Response { throw std::runtime_error("boom"); });
    server.route("GET", "/bad", [](const Request&) -> Response {
      throw runner::InputError("id must be a number");
    });
    server.route("GET", "/stream", [this](const Request&) {
      Response r;
      r.stream = [this](runner::http::StreamSink& out) {
        streamStarted = true;
        for (int i = 0; i < 5; ++i)
          if (!out.write("part " + std::to_string(i) + "\n")) return;
        streamWritten = true;  // all parts are queued: stop() must still deliver them
        while (holdStream && !out.stopping()) std::this_thread::sleep_for(10ms);
        sawStopping = out.stopping();
      };
      return r;
    });
    server.route("GET", "/big-stream", [this](const Request&) {
      Response r;
      r.stream = [this](runner::http::StreamSink& out) {
        std::string chunk(64 * 1024, 'x');
        for (int i = 0; i < 640 && out.write(chunk); ++i) producedChunks++;
      };
      return r;
    });
    port = server.start();
  }
  runner::NullLogger log;
  Server server;
  std::atomic<bool> holdStream{false};
  std::atomic<bool> sawStopping{false};
  std::atomic<bool> slowStarted{false}, streamStarted{false}, streamWritten{false};
  std::atomic<int> producedChunks{0};
  int port = 0;
};

// The resident memory of this process in KiB.
long rssKiB() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

std::chrono::milliseconds timeHealthz(int port) {
  auto t0 = Clock::now();
  RawClient c(port);
  c.send(get("/healthz"));
  auto a = c.answer();
  REQUIRE(a.status == 200);
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
}

}  // namespace

TEST_CASE("server routes, decodes the query, the form body and the path", "[unit][http]") {
  TestServer t;
  RawClient c(t.port);
  c.send(get("/runs/42?q=a%20b+c"));
  auto a = c.answer();
  CHECK(a.status == 200);
  CHECK(a.body == "run 42 q=a b c");
  CHECK(a.headers.count("date") == 1);

  std::string form = "a=1%262&b=x+y";
  c.send(
      "POST /echo?a=query HTTP/1.1\r\nHost: t\r\nContent-Type: "
      "application/x-www-form-urlencoded\r\nContent-Length: " +
      std::to_string(form.size()) + "\r\n\r\n" + form);
  a = c.answer();
  CHECK(a.body == "body=" + form + " a=query b=x y");  // the query's value comes first

  c.send(get("/nope"));
  CHECK(c.answer().status == 404);
  c.send("DELETE /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
  CHECK(c.answer().status == 405);
  c.send(get("/throw"));
  a = c.answer();
  CHECK(a.status == 500);
  CHECK(a.body == "internal error\n");
  c.send(get("/bad"));
  a = c.answer();
  CHECK(a.status == 400);
  CHECK(a.body.find("id must be a number") != std::string::npos);
  c.send("HEAD /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
  a = c.answer(true);
  CHECK(a.status == 200);
  CHECK(a.headers["content-length"] == "3");
  c.send(get("/runs/%2e%2e%00x"));  // a NUL byte in the path
  CHECK(c.answer().status == 400);
}

TEST_CASE("pipelined requests are answered in order on one connection", "[unit][http]") {
  TestServer t;
  RawClient c(t.port);
  std::string body = "hello";
  c.send(get("/runs/1") + "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n" + body +
         get("/slow") + get("/runs/2"));
  CHECK(c.answer().body == "run 1 q=");
  CHECK(c.answer().body == "body=hello a= b=");
  CHECK(c.answer().body == "slow done");
  CHECK(c.answer().body == "run 2 q=");
  // and the connection stays open for more
  c.send(get("/runs/3", "Connection: close\r\n"));
  auto a = c.answer();
  CHECK(a.body == "run 3 q=");
  CHECK(a.headers["connection"] == "close");
  CHECK(c.closedByPeer());
}

TEST_CASE("HTTP/1.0 closes after the answer unless asked to keep alive", "[unit][http]") {
  TestServer t;
  {
    RawClient c(t.port);
    c.send("GET /healthz HTTP/1.0\r\n\r\n");
    CHECK(c.answer().status == 200);
    CHECK(c.closedByPeer());
  }
  RawClient c(t.port);
  c.send("GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  auto a = c.answer();
  CHECK(a.headers["connection"] == "keep-alive");
  c.send("GET /runs/7 HTTP/1.0\r\n\r\n");
  CHECK(c.answer().body == "run 7 q=");
}

TEST_CASE("malformed and ambiguous requests are refused with the right status", "[unit][http]") {
  struct Case {
    const char* what;
    std::string request;
    int status;
  };
  std::vector<Case> cases = {
      {"no version", "GET /\r\n\r\n", 400},
      {"two spaces", "GET  / HTTP/1.1\r\nHost: t\r\n\r\n", 400},
      {"lower-case version", "GET / http/1.1\r\nHost: t\r\n\r\n", 400},
      {"HTTP/2.0", "GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505},
      {"absolute target", "GET http://evil/ HTTP/1.1\r\nHost: t\r\n\r\n", 400},
      {"control byte in the target", std::string("GET /a\x01 HTTP/1.1\r\nHost: t\r\n\r\n"), 400},
      {"bad method", "G(T / HTTP/1.1\r\nHost: t\r\n\r\n", 400},
      {"bare LF", "GET / HTTP/1.1\nHost: t\n\n", 400},
      {"no Host", "GET / HTTP/1.1\r\n\r\n", 400},
      {"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
      {"space before colon", "GET / HTTP/1.1\r\nHost : t\r\n\r\n", 400},
      {"obs-fold", "GET / HTTP/1.1\r\nHost: t\r\nX: a\r\n b\r\n\r\n", 400},
      {"NUL in a value", std::string("GET / HTTP/1.1\r\nHost: t\r\nX: a\0b\r\n\r\n", 35), 400},
      {"Content-Length and chunked",
       "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: "
       "chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
       400},
      {"two Content-Lengths",
       "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400},
      {"signed Content-Length", "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: +3\r\n\r\nabc",
       400},
      {"chunked not last",
       "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400},
      {"gzip coding", "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
       501},
      {"chunked in HTTP/1.0", "POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"bad chunk size",
       "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
      {"chunk longer than its size",
       "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n", 400},
      {"Expect other than 100-continue", "GET / HTTP/1.1\r\nHost: t\r\nExpect: magic\r\n\r\n", 417},
      {"request line too long", "GET /" + std::string(9000, 'a') + " HTTP/1.1\r\n", 414},
      {"header section too large",
       "GET / HTTP/1.1\r\nHost: t\r\nX: " + std::string(40000, 'a') + "\r\n\r\n", 431},
  };
  std::string many = "GET / HTTP/1.1\r\nHost: t\r\n";
  for (int i = 0; i < 120; ++i) many += "X-" + std::to_string(i) + ": 1\r\n";
  cases.push_back({"too many header fields", many + "\r\n", 431});

  TestServer t;
  for (const auto& k : cases) {
    INFO(k.what);
    RawClient c(t.port);
    c.send(k.request);
    auto a = c.answer();
    CHECK(a.status == k.status);
    CHECK(a.headers["connection"] == "close");
    CHECK(c.closedByPeer());
  }
  CHECK(timeHealthz(t.port) < 1000ms);  // and the server is fine
}

TEST_CASE("a chunked body is decoded, trailers and extensions included", "[unit][http]") {
  TestServer t;
  RawClient c(t.port);
  c.send(
      "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-Trailer: yes\r\n\r\n");
  auto a = c.answer();
  CHECK(a.status == 200);
  CHECK(a.body == "body=abc0123456789 a= b=");
  c.send(get("/healthz"));
  CHECK(c.answer().status == 200);
}

TEST_CASE("a chunked body over the limit is refused at the limit, memory bounded", "[unit][http]") {
  ServerOptions o;
  o.maxBodyBytes = 1 << 20;
  TestServer t(o);
  RawClient c(t.port);
  REQUIRE(c.send("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"));
  const size_t total = 256u << 20;
  std::atomic<size_t> sent{0};
  std::atomic<bool> done{false};
  long before = rssKiB();
  std::atomic<long> peak{before};
  std::thread sampler([&] {
    while (!done) {
      peak = std::max(peak.load(), rssKiB());
      std::this_thread::sleep_for(5ms);
    }
  });
  std::thread writer([&] {
    std::string chunk = "10000\r\n" + std::string(0x10000, 'z') + "\r\n";
    while (sent < total && c.send(chunk)) sent += 0x10000;
  });
  auto a = c.answer(false, 20000ms);
  size_t sentAtAnswer = sent;
  writer.join();
  done = true;
  sampler.join();
  CHECK(a.status == 413);
  CHECK(sentAtAnswer < total);       // answered while the client was still sending
  CHECK(peak - before < 48 * 1024);  // KiB: the body was not buffered past the limit
}

TEST_CASE("Content-Length over the limit is 413 before the body, Expect: 100-continue",
          "[unit][http]") {
  ServerOptions o;
  o.maxBodyBytes = 1000;
  TestServer t(o);
  {
    RawClient c(t.port);
    c.send(
        "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1001\r\nExpect: 100-continue\r\n\r\n");
    CHECK(c.answer().status == 413);  // no 100 Continue first
    CHECK(c.closedByPeer());
  }
  RawClient c(t.port);
  c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n");
  CHECK(c.answer().status == 100);
  c.send("abc");
  CHECK(c.answer().body == "body=abc a= b=");
}

TEST_CASE("a slow head gets 408 at its deadline while others are served at once", "[unit][http]") {
  ServerOptions o;
  o.headerTimeout = 1000ms;
  TestServer t(o);
  RawClient slow(t.port);
  auto t0 = Clock::now();
  slow.send("GET /healthz HTTP/1.1\r\n");
  std::atomic<bool> stop{false};
  std::thread trickle([&] {  // a header line every 100 ms: no per-byte timer is reset
    for (int i = 0; !stop && i < 40; ++i) {
      std::this_thread::sleep_for(100ms);
      if (!slow.send("X-" + std::to_string(i) + ": a\r\n")) break;
    }
  });
  std::chrono::milliseconds worst{0};
  while (Clock::now() - t0 < 800ms) worst = std::max(worst, timeHealthz(t.port));
  auto a = slow.answer(false, 3000ms);
  auto took = Clock::now() - t0;
  stop = true;
  trickle.join();
  CHECK(a.status == 408);
  CHECK(took >= 900ms);
  CHECK(took < 1800ms);
  CHECK(worst < 300ms);  // far below the deadline a blocked server would show
}

TEST_CASE("a slow body gets 408 at the body deadline", "[unit][http]") {
  ServerOptions o;
  o.bodyTimeout = 500ms;
  TestServer t(o);
  RawClient c(t.port);
  auto t0 = Clock::now();
  c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n");
  std::thread trickle([&] {
    for (int i = 0; i < 15; ++i) {
      std::this_thread::sleep_for(50ms);
      if (!c.send("x")) break;
    }
  });
  auto a = c.answer(false, 3000ms);
  auto took = Clock::now() - t0;
  trickle.join();
  CHECK(a.status == 408);
  CHECK(took < 1500ms);
}

TEST_CASE("an idle keep-alive connection is closed after its timeout", "[unit][http]") {
  ServerOptions o;
  o.keepAlive = 300ms;
  TestServer t(o);
  RawClient c(t.port);
  c.send(get("/healthz"));
  CHECK(c.answer().status == 200);
  auto t0 = Clock::now();
  CHECK(c.closedByPeer(3000ms));
  CHECK(Clock::now() - t0 < 1500ms);
}

TEST_CASE("1000 idle connections do not keep a request from being served", "[unit][http]") {
  ServerOptions o;
  o.maxConnectionsPerAddress = 2000;
  TestServer t(o);
  std::vector<std::unique_ptr<RawClient>> idle;
  for (int i = 0; i < 1000; ++i) {
    idle.push_back(std::make_unique<RawClient>(t.port));
    if (i % 2) idle.back()->send("GET /healthz HTTP/1.1\r\nHost");  // half a head
  }
  CHECK(tests::waitUntil([&] { return t.server.openConnections() == 1000; }));
  std::chrono::milliseconds worst{0};
  for (int i = 0; i < 20; ++i) worst = std::max(worst, timeHealthz(t.port));
  CHECK(worst < 500ms);
  // and the idle ones are still open and served when they finish
  idle[1]->send(": t\r\n\r\n");
  CHECK(idle[1]->answer().status == 200);
}

TEST_CASE("connections over the per-address and total limits get 503", "[unit][http]") {
  ServerOptions o;
  o.maxConnectionsPerAddress = 4;
  o.maxConnections = 6;
  TestServer t(o);
  std::vector<std::unique_ptr<RawClient>> held;
  for (int i = 0; i < 4; ++i) held.push_back(std::make_unique<RawClient>(t.port, "127.0.0.1"));
  CHECK(tests::waitUntil([&] { return t.server.openConnections() == 4; }));
  {
    RawClient over(t.port, "127.0.0.1");
    CHECK(over.answer().status == 503);
  }
  // another address still gets in, up to the total
  held.push_back(std::make_unique<RawClient>(t.port, "127.0.0.2"));
  held.back()->send(get("/healthz"));
  CHECK(held.back()->answer().status == 200);
  held.push_back(std::make_unique<RawClient>(t.port, "127.0.0.3"));
  CHECK(tests::waitUntil([&] { return t.server.openConnections() == 6; }));
  RawClient total(t.port, "127.0.0.4");
  CHECK(total.answer().status == 503);
  held.clear();  // freed slots serve again
  CHECK(tests::waitUntil([&] { return t.server.openConnections() == 0; }));
  CHECK(timeHealthz(t.port) < 1000ms);
}

TEST_CASE("a streamed answer arrives chunked, a slow reader holds back its producer",
          "[unit][http]") {
  ServerOptions o;
  o.streamBufferBytes = 128 * 1024;
  TestServer t(o);
  {
    RawClient c(t.port);
    c.send(get("/stream"));
    auto a = c.answer();
    CHECK(a.headers["transfer-encoding"] == "chunked");
    CHECK(a.body == "part 0\npart 1\npart 2\npart 3\npart 4\n");
    c.send(get("/healthz"));  // keep-alive after a stream
    CHECK(c.answer().status == 200);
  }
  RawClient c(t.port);
  c.send(get("/big-stream"));
  std::this_thread::sleep_for(500ms);
  // 640 chunks of 64 KiB are 40 MiB; the producer stops at the queue plus socket buffers
  CHECK(t.producedChunks < 320);
  CHECK(timeHealthz(t.port) < 500ms);  // the loop is not blocked by the stream
  auto t0 = Clock::now();
  auto a = c.answer(false, 10000ms);
  INFO("status " << a.status << " after " << (Clock::now() - t0).count() / 1000000
                 << " ms, produced " << t.producedChunks);
  CHECK(a.body.size() == 640u * 64 * 1024);
}

TEST_CASE("stop() finishes requests in progress and tells streams", "[unit][http]") {
  auto t = std::make_unique<TestServer>();
  t->holdStream = true;
  RawClient streaming(t->port);
  streaming.send(get("/stream"));
  RawClient slow(t->port);
  slow.send(get("/slow"));
  CHECK(tests::waitUntil([&] { return t->slowStarted && t->streamWritten; }));
  auto t0 = Clock::now();
  t->server.stop();
  CHECK(Clock::now() - t0 < 2000ms);
  CHECK(t->sawStopping);
  auto a = slow.answer();
  CHECK(a.status == 200);
  CHECK(a.body == "slow done");
  CHECK(a.headers["connection"] == "close");
  auto s = streaming.answer();
  CHECK(s.body.find("part 4") != std::string::npos);
  CHECK_FALSE(t->server.running());
  int port = t->port;
  t.reset();
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a2{};
  a2.sin_family = AF_INET;
  a2.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, "127.0.0.1", &a2.sin_addr);
  CHECK(::connect(fd, reinterpret_cast<sockaddr*>(&a2), sizeof a2) != 0);
  ::close(fd);
}

TEST_CASE("request parser: byte-at-a-time equals all at once", "[unit][http]") {
  std::string req =
      "\r\nPOST /a?b=c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "4\r\nwiki\r\n5;a=b\r\npedia\r\n0\r\nT: 1\r\n\r\nGET /next HTTP/1.1\r\n";
  runner::http::RequestParser whole({});
  size_t used = 0;
  while (whole.state() != runner::http::RequestParser::State::Done && used < req.size())
    used += whole.feed(std::string_view(req).substr(used));
  REQUIRE(whole.state() == runner::http::RequestParser::State::Done);
  CHECK(req.substr(used) == "GET /next HTTP/1.1\r\n");
  CHECK(whole.body() == "wikipedia");
  runner::http::RequestParser bytes({});
  size_t n = 0;
  while (bytes.state() != runner::http::RequestParser::State::Done && n < req.size())
    n += bytes.feed(std::string_view(req).substr(n, 1));
  CHECK(n == used);
  CHECK(bytes.body() == "wikipedia");
  CHECK(bytes.head().target == "/a?b=c");
}

TEST_CASE("bodies held in memory by all connections together are bounded", "[unit][http]") {
  ServerOptions o;
  o.maxBodyBytes = 1 << 20;
  o.maxBufferedBodyBytes = 1 << 20;
  TestServer t(o);
  RawClient a(t.port);
  std::string bodyA(1 << 20, 'a');
  a.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(bodyA.size()) +
         "\r\n\r\n" + bodyA.substr(0, 1000 * 1024));
  std::this_thread::sleep_for(200ms);
  RawClient b(t.port);
  std::string bodyB(64 * 1024, 'b');
  b.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(bodyB.size()) +
         "\r\n\r\n" + bodyB);
  CHECK(b.answer(false, 300ms).status == 0);  // not read while A holds the budget
  CHECK(timeHealthz(t.port) < 500ms);         // requests without a body are not held up
  a.send(bodyA.substr(1000 * 1024));
  CHECK(a.answer().status == 200);
  CHECK(b.answer().body == "body=" + bodyB + " a= b=");
}

TEST_CASE("bodies that never end get 408 and their memory goes to the next request",
          "[unit][http]") {
  ServerOptions o;
  o.maxBodyBytes = 1 << 20;
  o.maxBufferedBodyBytes = 1 << 20;
  o.bodyTimeout = 500ms;
  TestServer t(o);
  RawClient a(t.port);
  a.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1048576\r\n\r\nxyz");
  std::this_thread::sleep_for(100ms);
  RawClient b(t.port);  // waits for A's memory, then is read, but its body never ends
  b.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc");
  CHECK(a.answer(false, 3000ms).status == 408);
  CHECK(b.answer(false, 3000ms).status == 408);
  RawClient c(t.port);
  c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc");
  CHECK(c.answer().body == "body=abc a= b=");
}

namespace {
struct LinesLogger final : runner::Logger {
  void log(runner::LogLevel, std::string_view m) override {
    std::lock_guard<std::mutex> g(mu);
    lines.emplace_back(m);
  }
  std::string all() {
    std::lock_guard<std::mutex> g(mu);
    std::string out;
    for (const auto& l : lines) out += l + "\n";
    return out;
  }
  std::mutex mu;
  std::vector<std::string> lines;
};
}  // namespace

TEST_CASE("start() raises the open-file limit only as far as its connections need, and says so",
          "[unit][http]") {
  rlimit saved{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &saved) == 0);
  const rlim_t needed = 100 + runner::http::kOtherDescriptors;
  if (saved.rlim_max < needed + 100) {
    WARN("the hard open-file limit " << saved.rlim_max << " is too low for this test");
    return;
  }
  struct Restore {
    rlimit rl;
    ~Restore() { ::setrlimit(RLIMIT_NOFILE, &rl); }
  } restore{saved};
  rlimit low = saved;
  low.rlim_cur = 600;
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &low) == 0);

  LinesLogger log;
  ServerOptions o;
  o.maxConnections = 100;
  {
    Server server(o, log);
    server.start();
    server.stop();
  }
  rlimit now{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &now) == 0);
  CHECK(now.rlim_cur == needed);  // not the hard limit: the limit is the whole process's
  CHECK(now.rlim_max == saved.rlim_max);
  CHECK(log.all().find("raised the open-file limit from 600 to " + std::to_string(needed)) !=
        std::string::npos);

  // already enough: left alone, nothing said
  LinesLogger quiet;
  runner::http::raiseFileLimitFor(50, quiet);
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &now) == 0);
  CHECK(now.rlim_cur == needed);
  CHECK(quiet.all().empty());

  // the hard limit is too low: raised to it, with a warning
  rlimit capped{};
  capped.rlim_cur = 600;
  capped.rlim_max = needed - 50;
  // (only as root: raising the hard limit back afterwards needs the privilege)
  if (::geteuid() == 0 && ::setrlimit(RLIMIT_NOFILE, &capped) == 0) {
    LinesLogger warned;
    runner::http::raiseFileLimitFor(100, warned);
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &now) == 0);
    CHECK(now.rlim_cur == needed - 50);
    CHECK(warned.all().find("is below the " + std::to_string(needed)) != std::string::npos);
  }
}
