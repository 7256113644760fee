// CurlHttpClient against a real HTTP server on loopback (cpp-httplib on port 0): methods and
// bodies arrive intact, response headers come back lowercased, and every failure — refused
// connection, timeout, oversize body, bad scheme — is a value with words, never an exception
// and never a header value.
#include "runner/http/curl_client.h"

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include <catch2/catch.hpp>
#include <httplib.h>

#include "tests/support/wait.h"

using runner::HttpRequest;
using runner::http::CurlHttpClient;
using namespace std::chrono_literals;

namespace {

// A loopback server with a few fixed routes; records the last request it saw.
class EchoServer {
 public:
  EchoServer() {
    server_.Get("/hello", [](const httplib::Request&, httplib::Response& res) {
      res.set_header("X-Custom-Header", "A");
      res.set_header("Link", "<a>; rel=\"next\"");
      res.set_header("Link", "<b>; rel=\"last\"");
      res.set_content("hi", "text/plain");
    });
    auto echo = [this](const httplib::Request& req, httplib::Response& res) {
      std::scoped_lock lk(mu_);
      lastMethod = req.method;
      lastBody = req.body;
      lastContentType = req.get_header_value("Content-Type");
      lastAuth = req.get_header_value("Authorization");
      lastUserAgent = req.get_header_value("User-Agent");
      lastExpect = req.get_header_value("Expect");
      res.status = req.method == "POST" ? 201 : 200;
      res.set_content(req.method + ":" + req.body, "text/plain");
    };
    server_.Post("/echo", echo);
    server_.Put("/echo", echo);
    server_.Patch("/echo", echo);
    server_.Delete("/echo", echo);
    server_.Get("/echo", echo);
    server_.Get("/slow", [](const httplib::Request&, httplib::Response& res) {
      std::this_thread::sleep_for(1500ms);
      res.set_content("late", "text/plain");
    });
    server_.Get("/big", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(std::string(1000, 'x'), "text/plain");
    });
    server_.Get("/moved", [](const httplib::Request&, httplib::Response& res) {
      res.set_redirect("/hello");
    });
    server_.Get("/fail", [](const httplib::Request&, httplib::Response& res) {
      res.status = 503;
      res.set_header("Retry-After", "7");
      res.set_content("{\"message\":\"down\"}", "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    REQUIRE(tests::waitUntil([&] { return server_.is_running(); }, 30s, 1ms));
  }
  ~EchoServer() { stop(); }
  void stop() {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  int port() const { return port_; }

  std::mutex mu_;
  std::string lastMethod, lastBody, lastContentType, lastAuth, lastUserAgent, lastExpect;

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

}  // namespace

TEST_CASE("CurlHttpClient returns status, body and lowercased headers", "[integration][http]") {
  EchoServer server;
  CurlHttpClient client;
  auto r = client.send({.method = "GET", .url = server.url("/hello")});
  CHECK(r.status == 200);
  CHECK(r.error.empty());
  CHECK(r.body == "hi");
  CHECK(r.headers.at("x-custom-header") == "A");
  CHECK(r.header("X-CUSTOM-HEADER") == "A");
  CHECK(r.headers.at("content-type") == "text/plain");
  CHECK(r.headers.at("link") == "<a>; rel=\"next\", <b>; rel=\"last\"");  // repeated: joined
  CHECK(r.headers.count("X-Custom-Header") == 0);
}

TEST_CASE("CurlHttpClient sends each method with its body and headers intact",
          "[integration][http]") {
  EchoServer server;
  CurlHttpClient client;
  const std::string json = R"({"state":"success","description":"caf\u00e9 ✓"})";
  for (const std::string method : {"POST", "PUT", "PATCH", "DELETE"}) {
    INFO(method);
    HttpRequest req{
        .method = method,
        .url = server.url("/echo"),
        .headers = {{"Authorization", "token s3cr3t"}, {"Content-Type", "application/json"}},
        .body = method == "DELETE" ? "" : json};
    auto r = client.send(req);
    CHECK(r.status == (method == "POST" ? 201 : 200));
    std::scoped_lock lk(server.mu_);
    CHECK(server.lastMethod == method);
    CHECK(server.lastBody == req.body);
    CHECK(server.lastAuth == "token s3cr3t");
    CHECK(server.lastUserAgent == "switchyard/0.1");
    CHECK(server.lastExpect.empty());
    if (method != "DELETE") CHECK(server.lastContentType == "application/json");
  }
  // an empty POST is still a POST; a custom User-Agent wins over the default
  auto r = client.send(
      {.method = "POST", .url = server.url("/echo"), .headers = {{"User-Agent", "custom/1"}}});
  CHECK(r.status == 201);
  CHECK(r.body == "POST:");
  std::scoped_lock lk(server.mu_);
  CHECK(server.lastUserAgent == "custom/1");
  // no body, no content type: not curl's default application/x-www-form-urlencoded (a
  // GitHub App's POST /app/installations/{id}/access_tokens carries no body)
  CHECK(server.lastContentType.empty());
}

TEST_CASE("CurlHttpClient returns HTTP errors as statuses, not transport errors",
          "[integration][http]") {
  EchoServer server;
  CurlHttpClient client;
  auto r = client.send({.url = server.url("/fail")});
  CHECK(r.status == 503);
  CHECK(r.error.empty());
  CHECK(r.header("retry-after") == "7");
  CHECK(r.body == "{\"message\":\"down\"}");
  CHECK_FALSE(r.ok());

  auto missing = client.send({.url = server.url("/nothing-here")});
  CHECK(missing.status == 404);
}

TEST_CASE("CurlHttpClient does not follow redirects", "[integration][http]") {
  EchoServer server;
  CurlHttpClient client;
  auto r = client.send({.url = server.url("/moved")});
  CHECK(r.status == 302);
  CHECK(r.header("location") == "/hello");
}

TEST_CASE("CurlHttpClient reports a timeout as a value", "[integration][http]") {
  EchoServer server;
  CurlHttpClient client;
  auto started = std::chrono::steady_clock::now();
  auto r = client.send({.url = server.url("/slow"), .timeout = 200ms});
  auto took = std::chrono::steady_clock::now() - started;
  CHECK(r.status == 0);
  CHECK(r.error == "timed out after 200 ms");
  CHECK(took < 1400ms);
}

TEST_CASE("CurlHttpClient reports a refused connection without leaking headers",
          "[integration][http]") {
  int port = 0;
  {
    EchoServer server;
    port = server.port();
  }  // stopped: nothing listens on the port now
  CurlHttpClient client;
  auto r = client.send({.method = "POST",
                        .url = "http://127.0.0.1:" + std::to_string(port) + "/echo",
                        .headers = {{"Authorization", "Bearer ghs_topsecret"}},
                        .body = "{}"});
  CHECK(r.status == 0);
  CHECK_FALSE(r.error.empty());
  CHECK(r.error.find("ghs_topsecret") == std::string::npos);
  CHECK(r.error.find("127.0.0.1") != std::string::npos);
}

TEST_CASE("CurlHttpClient caps the response size and refuses other schemes",
          "[integration][http]") {
  EchoServer server;
  CurlHttpClient small({.maxResponseBytes = 100});
  auto r = small.send({.url = server.url("/big")});
  CHECK(r.status == 0);
  CHECK(r.error == "response too large (over 100 bytes)");
  CHECK(small.send({.url = server.url("/hello")}).body == "hi");

  CurlHttpClient client;
  auto file = client.send({.url = "file:///etc/passwd"});
  CHECK(file.status == 0);
  CHECK_FALSE(file.error.empty());
  CHECK(file.body.empty());
}

TEST_CASE("CurlHttpClient serves many threads at once", "[integration][http]") {
  EchoServer server;
  CurlHttpClient client;
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        std::string body = std::to_string(t) + "-" + std::to_string(i);
        auto r = client.send({.method = "PUT",
                              .url = server.url("/echo"),
                              .headers = {{"Content-Type", "text/plain"}},
                              .body = body});
        if (r.status == 200 && r.body == "PUT:" + body) ++good;
      }
    });
  for (auto& th : threads) th.join();
  CHECK(good == 60);
}
