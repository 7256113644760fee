#include "runner/http/server.h"

#include <atomic>

#include <httplib.h>

#include "runner/core/error.h"
#include "runner/core/text.h"

namespace runner::http {
namespace {

struct Route {
  std::string method;
  std::vector<std::string> segments;  // ":name" segments match anything non-empty
  Handler handler;
};

std::vector<std::string> pathSegments(std::string_view path) {
  std::vector<std::string> out;
  for (auto& s : split(path, '/'))
    if (!s.empty()) out.push_back(s);
  return out;
}

bool matchRoute(const Route& r, const std::vector<std::string>& segs,
                std::map<std::string, std::string>& params) {
  if (r.segments.size() != segs.size()) return false;
  for (size_t i = 0; i < segs.size(); ++i) {
    if (!r.segments[i].empty() && r.segments[i][0] == ':') {
      params[r.segments[i].substr(1)] = segs[i];
    } else if (r.segments[i] != segs[i]) {
      return false;
    }
  }
  return true;
}

class HttplibSink final : public StreamSink {
 public:
  HttplibSink(httplib::DataSink& sink, const std::atomic<bool>& stopping)
      : sink_(sink), stopping_(stopping) {}
  bool write(std::string_view data) override {
    if (stopping_ || !sink_.is_writable()) return false;
    return data.empty() || sink_.write(data.data(), data.size());
  }
  bool stopping() const override { return stopping_; }

 private:
  httplib::DataSink& sink_;
  const std::atomic<bool>& stopping_;
};

}  // namespace

std::string Request::param(const std::string& name) const {
  if (auto it = pathParams.find(name); it != pathParams.end()) return it->second;
  if (auto it = params.find(name); it != params.end()) return it->second;
  return "";
}

std::string Request::cookie(std::string_view name) const {
  auto header = headers.get("Cookie");
  if (!header) return "";
  for (auto& part : split(*header, ';')) {
    auto kv = trim(part);
    auto eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    if (trim(kv.substr(0, eq)) == name) return std::string(trim(kv.substr(eq + 1)));
  }
  return "";
}

Response Response::text(int status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}
Response Response::json(int status, const std::string& jsonText) {
  Response r;
  r.status = status;
  r.contentType = "application/json";
  r.body = jsonText;
  return r;
}
Response Response::html(int status, std::string body) {
  Response r;
  r.status = status;
  r.contentType = "text/html; charset=utf-8";
  r.body = std::move(body);
  return r;
}
Response Response::redirect(const std::string& location, int status) {
  Response r;
  r.status = status;
  r.headers.emplace_back("Location", location);
  return r;
}

std::pair<std::string, int> splitListen(std::string_view listen) {
  std::string host;
  std::string_view portText;
  if (!listen.empty() && listen[0] == '[') {
    auto close = listen.find(']');
    if (close == std::string_view::npos || close + 1 >= listen.size() || listen[close + 1] != ':')
      throw InputError("listen address '" + std::string(listen) + "': expected [v6]:port");
    host = std::string(listen.substr(1, close - 1));
    portText = listen.substr(close + 2);
  } else {
    auto colon = listen.rfind(':');
    if (colon == std::string_view::npos)
      throw InputError("listen address '" + std::string(listen) + "': expected host:port");
    host = std::string(listen.substr(0, colon));
    portText = listen.substr(colon + 1);
  }
  int port = 0;
  for (char c : portText) {
    if (c < '0' || c > '9' || port > 65535)
      throw InputError("listen address '" + std::string(listen) + "': bad port");
    port = port * 10 + (c - '0');
  }
  if (portText.empty() || port > 65535 || host.empty())
    throw InputError("listen address '" + std::string(listen) + "': expected host:port");
  return {host, port};
}

struct Server::Impl {
  httplib::Server svr;
  std::vector<Route> routes;
  std::atomic<bool> stopping{false};
  std::atomic<bool> started{false};
};

Server::Server(ServerOptions options, Logger& log)
    : impl_(std::make_unique<Impl>()), options_(std::move(options)), log_(log) {}

Server::~Server() { stop(); }

void Server::route(const std::string& method, const std::string& pattern, Handler handler) {
  impl_->routes.push_back({method, pathSegments(pattern), std::move(handler)});
}

bool Server::running() const { return impl_->started && !impl_->stopping; }

int Server::start() {
  auto [host, port] = splitListen(options_.listen);
  auto& svr = impl_->svr;
  size_t threads = options_.threads == 0 ? 1 : options_.threads;
  svr.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  svr.set_payload_max_length(options_.maxBodyBytes);
  svr.set_read_timeout(options_.readTimeout);
  svr.set_keep_alive_timeout(options_.keepAlive.count());
  svr.set_keep_alive_max_count(options_.keepAliveMaxRequests);
  svr.set_tcp_nodelay(true);

  // Over the limit with "Expect: 100-continue": answer 413 before the client sends a byte.
  size_t limit = options_.maxBodyBytes;
  svr.set_expect_100_continue_handler([limit](const httplib::Request& req, httplib::Response& res) {
    if (req.has_header("Content-Length") &&
        req.get_header_value<uint64_t>("Content-Length") > static_cast<uint64_t>(limit)) {
      // This path of cpp-httplib sends no Content-Length by itself; without one the client
      // would read until the connection closes. Closing tells it the body is unwanted.
      static const std::string kBody = "request body too large\n";
      res.status = 413;
      res.set_content(kBody, "text/plain; charset=utf-8");
      res.set_header("Content-Length", std::to_string(kBody.size()));
      res.set_header("Connection", "close");
      return 413;
    }
    return 100;
  });

  auto dispatch = [this](const httplib::Request& hreq, httplib::Response& hres) {
    Request req;
    req.method = hreq.method;
    req.path = hreq.path;
    req.body = hreq.body;
    req.remoteAddr = hreq.remote_addr;
    for (const auto& [k, v] : hreq.headers) req.headers.add(k, v);
    for (const auto& [k, v] : hreq.params) req.params.emplace(k, v);
    auto segs = pathSegments(req.path);
    Response res;
    bool pathKnown = false;
    const Route* chosen = nullptr;
    for (const auto& r : impl_->routes) {
      std::map<std::string, std::string> params;
      if (!matchRoute(r, segs, params)) continue;
      pathKnown = true;
      if (r.method != req.method && !(req.method == "HEAD" && r.method == "GET")) continue;
      chosen = &r;
      req.pathParams = std::move(params);
      break;
    }
    if (!chosen) {
      res = pathKnown ? Response::text(405, "method not allowed\n")
                      : Response::text(404, "not found\n");
    } else {
      try {  // the HTTP error boundary (STYLE.md P3)
        res = chosen->handler(req);
      } catch (const InputError& e) {
        res = Response::text(400, describe(e) + "\n");
      } catch (const std::exception& e) {
        log_.error(req.method + " " + req.path + ": " + describe(e));
        res = Response::text(500, "internal error\n");
      }
    }
    hres.status = res.status;
    for (const auto& [k, v] : res.headers) hres.set_header(k, v);
    if (res.stream) {
      auto producer = std::make_shared<std::function<void(StreamSink&)>>(std::move(res.stream));
      hres.set_chunked_content_provider(
          res.contentType, [this, producer](size_t, httplib::DataSink& sink) {
            HttplibSink out(sink, impl_->stopping);
            try {
              (*producer)(out);
            } catch (const std::exception& e) {
              log_.error(std::string("while streaming a response: ") + describe(e));
            }
            sink.done();
            return true;
          });
    } else {
      hres.set_content(res.body, res.contentType);
    }
  };
  for (const char* m : {"GET", "POST", "PUT", "DELETE", "PATCH"}) {
    std::string method = m;
    auto h = [dispatch](const httplib::Request& q, httplib::Response& s) { dispatch(q, s); };
    if (method == "GET") svr.Get(".*", h);
    if (method == "POST") svr.Post(".*", h);
    if (method == "PUT") svr.Put(".*", h);
    if (method == "DELETE") svr.Delete(".*", h);
    if (method == "PATCH") svr.Patch(".*", h);
  }
  svr.set_exception_handler(
      [this](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
        try {
          if (ep) std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          log_.error(req.method + " " + req.path + ": " + describe(e));
        } catch (...) {
          log_.error(req.method + " " + req.path + ": unknown exception");
        }
        res.status = 500;
        res.set_content("internal error\n", "text/plain; charset=utf-8");
      });

  // cpp-httplib listens with a backlog of 5: a burst of new connections (a forge retrying,
  // a load test opening 64) overflows it and waits for SYN retransmits (1 s and more). The
  // socket options hook sees the listening socket; listen() again with a real backlog.
  int listenFd = -1;
  svr.set_socket_options([&listenFd](int sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    listenFd = sock;
  });
  if (port == 0) {
    port = svr.bind_to_any_port(host);
    if (port < 0) throw SysError(errno, "binding " + options_.listen);
  } else if (!svr.bind_to_port(host, port)) {
    throw SysError(errno, "binding " + options_.listen);
  }
  if (listenFd >= 0) ::listen(listenFd, 1024);
  port_ = port;
  impl_->started = true;
  thread_ = std::thread([this] {
    if (!impl_->svr.listen_after_bind() && !impl_->stopping)
      log_.error("http server on " + options_.listen + " stopped unexpectedly");
  });
  return port_;
}

void Server::stop() noexcept {
  if (!impl_->started) return;
  impl_->stopping = true;
  impl_->svr.stop();
  if (thread_.joinable()) thread_.join();
  impl_->started = false;
}

}  // namespace runner::http
