#include "runner/http/server.h"

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <deque>
#include <list>
#include <mutex>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <unordered_map>

#include "runner/core/error.h"
#include "runner/core/text.h"
#include "runner/core/thread_annotations.h"
#include "runner/http/request_parser.h"

namespace runner::http {
namespace {

using Clock = std::chrono::steady_clock;

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

const char* reasonPhrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 417:
      return "Expectation Failed";
    case 422:
      return "Unprocessable Content";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Status";
  }
}

std::string httpDate() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  size_t n = std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return std::string(buf, n);
}

bool bodyAllowed(int status) { return status >= 200 && status != 204 && status != 304; }

bool safeHeader(const std::string& name, const std::string& value) {
  auto bad = [](char c) { return c == '\r' || c == '\n' || c == '\0'; };
  return !name.empty() && std::none_of(name.begin(), name.end(), bad) &&
         std::none_of(value.begin(), value.end(), bad);
}

// Headers the server writes itself; a handler's copy would make the framing ambiguous.
bool framingHeader(const std::string& name) {
  auto n = toLower(name);
  return n == "content-length" || n == "transfer-encoding" || n == "connection" || n == "date";
}

// A small, complete answer for errors the loop produces itself (always closes).
std::string errorAnswer(int status, const std::string& text) {
  std::string body = text + "\n";
  return "HTTP/1.1 " + std::to_string(status) + " " + reasonPhrase(status) +
         "\r\nDate: " + httpDate() +
         "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

}  // namespace

void raiseFileLimitFor(size_t maxConnections, Logger& log) {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  const rlim_t needed = static_cast<rlim_t>(maxConnections) + kOtherDescriptors;
  if (rl.rlim_cur >= needed) return;
  const rlim_t before = rl.rlim_cur;
  rl.rlim_cur = std::min(needed, rl.rlim_max);
  if (rl.rlim_cur > before && ::setrlimit(RLIMIT_NOFILE, &rl) != 0) {
    log.warn("http: cannot raise the open-file limit from " + std::to_string(before) + " to " +
             std::to_string(rl.rlim_cur) + ": " + std::strerror(errno));
    rl.rlim_cur = before;
  } else if (rl.rlim_cur > before) {
    log.info("http: raised the open-file limit from " + std::to_string(before) + " to " +
             std::to_string(rl.rlim_cur) + " for " + std::to_string(maxConnections) +
             " connections (server.max_connections)");
  }
  if (rl.rlim_cur < needed)
    log.warn("http: the open-file limit " + std::to_string(rl.rlim_cur) + " is below the " +
             std::to_string(needed) + " that " + std::to_string(maxConnections) +
             " connections need: past it connections wait to be accepted (raise the hard "
             "limit, LimitNOFILE= in systemd, or lower server.max_connections)");
}

namespace {

std::string addressText(const sockaddr_storage& sa) {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (sa.ss_family == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(sa).sin_addr, buf, sizeof buf);
  } else if (sa.ss_family == AF_INET6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(sa).sin6_addr, buf, sizeof buf);
  }
  return buf;
}

// The output of one streamed answer: the producer (its own thread) appends, the loop drains.
struct StreamChannel {
  Mutex m;
  std::condition_variable cv;
  std::string pending GUARDED_BY(m);    // framed bytes not yet taken by the loop
  bool finished GUARDED_BY(m) = false;  // the producer returned
  bool closed GUARDED_BY(m) = false;    // the connection is gone
  bool chunked = true;
  size_t cap = 0;
  uint64_t connId = 0;
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
  enum class Phase { Reading, Handling, Writing, Lingering };
  enum class Deadline { None, Header, Idle, Body, Write, Linger };

  struct Conn {
    uint64_t id = 0;
    int fd = -1;
    std::string addr;
    RequestParser parser;
    std::string in;  // bytes read past a complete request (pipelined), not yet parsed
    std::string out;
    size_t outOff = 0;
    Phase phase = Phase::Reading;
    Deadline kind = Deadline::Header;
    Clock::time_point deadline;
    bool closeAfterWrite = false;
    bool sentContinue = false;
    bool paused = false;  // body not read: the buffered-body budget is used up
    size_t served = 0;
    size_t reserved = 0;  // this connection's share of bodyReserved
    uint32_t events = 0;
    std::shared_ptr<StreamChannel> stream;
    explicit Conn(ParserLimits l) : parser(l) {}
  };

  struct Job {
    uint64_t connId = 0;
    std::string addr;
    RequestHead head;
    std::string body;
    size_t held = 0;
    bool keepAlive = false;
  };

  struct Completion {
    uint64_t connId;
    std::string bytes;
    bool close;
    std::shared_ptr<StreamChannel> stream;
  };

  Impl(ServerOptions& o, Logger& l) : opt(o), log(l) {}

  ServerOptions& opt;
  Logger& log;
  std::vector<Route> routes;
  std::atomic<bool> stopping{false};
  std::atomic<bool> started{false};
  int listenFd = -1;
  int epfd = -1;
  int wakeFd = -1;

  // loop-thread state
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns;
  std::unordered_map<std::string, size_t> perAddress;
  std::atomic<size_t> openCount{0};  // conns.size(), readable from other threads
  uint64_t nextId = 1;
  bool listening = false;
  Clock::time_point acceptPausedUntil{};
  Clock::time_point stopDeadline{};
  // Body bytes reserved by connections reading a body and by requests being handled: a
  // Content-Length, or maxBodyBytes for a chunked body. A body is read only once reserved, so
  // reserved bodies always make progress (no two uploads wait for each other).
  std::atomic<size_t> bodyReserved{0};
  size_t pausedCount = 0;

  // worker → loop
  Mutex doneMutex;
  std::vector<Completion> done GUARDED_BY(doneMutex);
  std::vector<uint64_t> streamsToDrain GUARDED_BY(doneMutex);

  // loop → workers
  Mutex jobMutex;
  std::condition_variable jobCv;
  std::deque<Job> jobs GUARDED_BY(jobMutex);
  bool noMoreJobs GUARDED_BY(jobMutex) = false;
  std::vector<std::thread> workers;

  // streamed answers, each producer on a thread of its own
  Mutex streamMutex;
  std::list<std::thread> streamThreads GUARDED_BY(streamMutex);
  std::vector<std::thread::id> finishedStreams GUARDED_BY(streamMutex);
  size_t activeStreams GUARDED_BY(streamMutex) = 0;

  ParserLimits limits() const {
    return {opt.maxRequestLineBytes, opt.maxHeaderBytes, opt.maxHeaderCount, opt.maxBodyBytes,
            1024};
  }
  size_t bodyBudget() const { return std::max(opt.maxBufferedBodyBytes, opt.maxBodyBytes); }

  void wake() {
    uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wakeFd, &one, sizeof one);
  }

  // ---- the event loop -------------------------------------------------------------------

  void setEvents(Conn& c, uint32_t ev) {
    if (c.events == ev) return;
    epoll_event e{};
    e.events = ev;
    e.data.u64 = c.id;
    ::epoll_ctl(epfd, EPOLL_CTL_MOD, c.fd, &e);
    c.events = ev;
  }

  void closeConn(uint64_t id) {
    auto it = conns.find(id);
    if (it == conns.end()) return;
    Conn& c = *it->second;
    if (c.stream) {
      MutexLock lk(c.stream->m);
      c.stream->closed = true;
      c.stream->cv.notify_all();
    }
    bodyReserved -= c.reserved;
    if (c.paused) --pausedCount;
    ::epoll_ctl(epfd, EPOLL_CTL_DEL, c.fd, nullptr);
    ::close(c.fd);
    if (auto a = perAddress.find(c.addr); a != perAddress.end() && --a->second == 0)
      perAddress.erase(a);
    conns.erase(it);
    openCount = conns.size();
  }

  void acceptAll(Clock::time_point now) {
    for (int i = 0; i < 256; ++i) {
      sockaddr_storage sa{};
      socklen_t len = sizeof sa;
      int fd =
          ::accept4(listenFd, reinterpret_cast<sockaddr*>(&sa), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          // out of descriptors: stop accepting for a moment rather than spin
          ::epoll_ctl(epfd, EPOLL_CTL_DEL, listenFd, nullptr);
          listening = false;
          acceptPausedUntil = now + std::chrono::milliseconds(100);
          log.warn("http: cannot accept a connection: " + std::string(std::strerror(errno)));
        }
        return;
      }
      std::string addr = addressText(sa);
      size_t& n = perAddress[addr];
      if (conns.size() >= opt.maxConnections || n >= opt.maxConnectionsPerAddress) {
        if (n == 0) perAddress.erase(addr);
        const std::string kBusy = errorAnswer(503, "too many connections");
        [[maybe_unused]] auto w = ::send(fd, kBusy.data(), kBusy.size(), MSG_NOSIGNAL);
        ::close(fd);
        continue;
      }
      ++n;
      int yes = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
      auto c = std::make_unique<Conn>(limits());
      c->id = nextId++;
      c->fd = fd;
      c->addr = std::move(addr);
      c->kind = Deadline::Header;
      c->deadline = now + opt.headerTimeout;
      c->events = EPOLLIN;
      epoll_event e{};
      e.events = c->events;
      e.data.u64 = c->id;
      ::epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e);
      conns.emplace(c->id, std::move(c));
      openCount = conns.size();
    }
  }

  // Feeds bytes to the parser and acts on what it found. Returns the bytes consumed.
  size_t parse(Conn& c, std::string_view data, Clock::time_point now) {
    size_t used = c.parser.feed(data);
    if (c.parser.started() && c.kind == Deadline::Idle) {
      c.kind = Deadline::Header;
      c.deadline = now + opt.headerTimeout;
    }
    switch (c.parser.state()) {
      case RequestParser::State::Head:
        break;
      case RequestParser::State::Body:
        if (c.kind != Deadline::Body) {  // the head just ended
          c.kind = Deadline::Body;
          c.deadline = now + opt.bodyTimeout;
          if (!reserveBody(c)) {
            c.paused = true;
            ++pausedCount;
            setEvents(c, 0);
            break;
          }
          bodyReady(c, now);
        }
        break;
      case RequestParser::State::Done:
        dispatch(c);
        break;
      case RequestParser::State::Error:
        answerAndClose(c, c.parser.errorStatus(), c.parser.errorText(), now);
        break;
    }
    return used;
  }

  bool reserveBody(Conn& c) {
    const auto& h = c.parser.head();
    size_t need = h.chunked ? opt.maxBodyBytes : static_cast<size_t>(h.contentLength);
    if (bodyReserved + need > bodyBudget()) return false;
    bodyReserved += need;
    c.reserved = need;
    return true;
  }

  // The body may come now: ask for it when the client waits to be asked.
  void bodyReady(Conn& c, Clock::time_point now) {
    if (c.parser.head().expectContinue && !c.sentContinue) {
      c.sentContinue = true;
      c.out += "HTTP/1.1 100 Continue\r\n\r\n";
      flush(c, now);
    }
  }

  // Parses `data` as far as the connection may go (a head, a body it has room for, one
  // request); what is left waits in c.in.
  void consume(Conn& c, std::string_view data, Clock::time_point now) {
    uint64_t id = c.id;
    size_t total = 0;
    while (total < data.size() && c.phase == Phase::Reading && !c.paused) {
      size_t used = parse(c, data.substr(total), now);
      if (!conns.count(id)) return;
      total += used;
      if (used == 0) break;
    }
    if (total < data.size() && (c.phase == Phase::Handling || c.paused))
      c.in.append(data.substr(total));
  }

  void resumePaused(Clock::time_point now) {
    std::vector<uint64_t> ids;
    for (auto& [id, c] : conns)
      if (c->paused) ids.push_back(id);
    for (uint64_t id : ids) {
      auto it = conns.find(id);
      if (it == conns.end()) continue;
      Conn& c = *it->second;
      if (!reserveBody(c)) return;  // first come, first served
      c.paused = false;
      --pausedCount;
      setEvents(c, EPOLLIN);
      bodyReady(c, now);
      if (!conns.count(id) || c.in.empty()) continue;
      std::string pending = std::move(c.in);
      c.in.clear();
      consume(c, pending, now);
    }
  }

  void answerAndClose(Conn& c, int status, const std::string& text, Clock::time_point now) {
    if (c.paused) {  // a body deadline passed while waiting for memory
      c.paused = false;
      --pausedCount;
    }
    c.parser.reset();  // the body read so far is not needed any more
    bodyReserved -= c.reserved;
    c.reserved = 0;
    c.in.clear();
    c.out.erase(0, c.outOff);
    c.outOff = 0;
    c.out += errorAnswer(status, text);
    c.closeAfterWrite = true;
    startWriting(c, now);
  }

  void startWriting(Conn& c, Clock::time_point now) {
    c.phase = Phase::Writing;
    c.kind = Deadline::Write;
    c.deadline = now + opt.writeTimeout;
    flush(c, now);
  }

  void dispatch(Conn& c) {
    c.phase = Phase::Handling;
    c.kind = Deadline::None;
    setEvents(c, c.out.size() > c.outOff ? uint32_t{EPOLLOUT} : 0u);
    Job job{c.id,
            c.addr,
            c.parser.head(),
            std::move(c.parser.body()),
            c.reserved,
            c.parser.head().keepAlive && c.served + 1 < opt.keepAliveMaxRequests && !stopping};
    c.reserved = 0;  // the job holds it now
    {
      MutexLock lk(jobMutex);
      jobs.push_back(std::move(job));
    }
    jobCv.notify_one();
  }

  void readFrom(Conn& c, Clock::time_point now) {
    char buf[64 * 1024];
    for (int round = 0; round < 4 && c.phase == Phase::Reading; ++round) {
      ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
      if (n == 0) return closeConn(c.id);  // the client is gone (mid-request or idle)
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
        return closeConn(c.id);
      }
      uint64_t id = c.id;
      consume(c, std::string_view(buf, static_cast<size_t>(n)), now);
      if (!conns.count(id) || c.paused) return;
    }
  }

  void discardFrom(Conn& c) {
    char buf[16 * 1024];
    for (int round = 0; round < 16; ++round) {
      ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
      if (n > 0) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
      return closeConn(c.id);
    }
  }

  // Moves what a stream's producer wrote into the connection's output (bounded).
  void pullStream(Conn& c) {
    auto& ch = *c.stream;
    MutexLock lk(ch.m);
    if (c.out.size() - c.outOff < ch.cap && !ch.pending.empty()) {
      c.out.erase(0, c.outOff);
      c.outOff = 0;
      c.out += ch.pending;
      ch.pending.clear();
      ch.cv.notify_all();
    }
  }

  bool streamDone(Conn& c) {
    MutexLock lk(c.stream->m);
    return c.stream->finished && c.stream->pending.empty();
  }

  // Writes what is queued; at the end of an answer, goes on with the next request.
  void flush(Conn& c, Clock::time_point now) {
    while (true) {
      if (c.stream) pullStream(c);
      while (c.outOff < c.out.size()) {
        ssize_t n = ::send(c.fd, c.out.data() + c.outOff, c.out.size() - c.outOff,
                           MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
          if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) break;
          return closeConn(c.id);
        }
        c.outOff += static_cast<size_t>(n);
        if (c.phase == Phase::Writing) c.deadline = now + opt.writeTimeout;  // progress
      }
      if (c.outOff < c.out.size()) {
        if (c.outOff > size_t{64} * 1024) {
          c.out.erase(0, c.outOff);
          c.outOff = 0;
        }
        uint32_t ev = EPOLLOUT;
        if (c.phase == Phase::Reading && !c.paused) ev |= EPOLLIN;  // a 100 Continue going out
        if (c.phase == Phase::Writing && c.kind != Deadline::Write) {
          c.kind = Deadline::Write;
          c.deadline = now + opt.writeTimeout;
        }
        setEvents(c, ev);
        return;
      }
      c.out.clear();
      c.outOff = 0;
      if (c.phase != Phase::Writing) {
        if (c.phase == Phase::Reading) setEvents(c, c.paused ? 0u : uint32_t{EPOLLIN});
        if (c.phase == Phase::Handling) setEvents(c, 0);
        return;
      }
      if (c.stream && !streamDone(c)) {
        MutexLock lk(c.stream->m);
        if (!c.stream->pending.empty()) continue;  // more arrived meanwhile
        setEvents(c, EPOLLRDHUP);  // wait for the producer; notice a client hanging up
        c.kind = Deadline::None;   // a producer may pause (a log waiting to grow)
        return;
      }
      c.stream.reset();
      finishAnswer(c, now);
      return;
    }
  }

  void finishAnswer(Conn& c, Clock::time_point now) {
    if (c.closeAfterWrite || stopping) {
      // Lingering close: the client may still be sending (a body we refused); closing at
      // once would reset the connection and could destroy the answer in flight.
      ::shutdown(c.fd, SHUT_WR);
      c.phase = Phase::Lingering;
      c.kind = Deadline::Linger;
      c.deadline = now + std::chrono::seconds(2);
      setEvents(c, EPOLLIN);
      return;
    }
    ++c.served;
    c.parser.reset();
    c.sentContinue = false;
    c.phase = Phase::Reading;
    c.kind = Deadline::Idle;
    c.deadline = now + opt.keepAlive;
    setEvents(c, EPOLLIN);
    if (!c.in.empty()) {  // a pipelined request
      std::string pending = std::move(c.in);
      c.in.clear();
      consume(c, pending, now);
    }
  }

  void onCompletions(Clock::time_point now) {
    std::vector<Completion> batch;
    std::vector<uint64_t> drains;
    {
      MutexLock lk(doneMutex);
      batch.swap(done);
      drains.swap(streamsToDrain);
    }
    for (auto& d : batch) {
      auto it = conns.find(d.connId);
      if (it == conns.end()) {
        if (d.stream) {
          MutexLock lk(d.stream->m);
          d.stream->closed = true;
          d.stream->cv.notify_all();
        }
        continue;
      }
      Conn& c = *it->second;
      c.out.erase(0, c.outOff);
      c.outOff = 0;
      c.out += d.bytes;
      c.closeAfterWrite = d.close;
      c.stream = std::move(d.stream);
      startWriting(c, now);
    }
    for (uint64_t id : drains) {
      auto it = conns.find(id);
      if (it != conns.end() && it->second->stream && it->second->phase == Phase::Writing) {
        it->second->kind = Deadline::Write;
        flush(*it->second, now);
      }
    }
    if (pausedCount > 0) resumePaused(now);
  }

  void sweep(Clock::time_point now) {
    std::vector<uint64_t> expired;
    for (auto& [id, c] : conns)
      if (c->kind != Deadline::None && now >= c->deadline) expired.push_back(id);
    for (uint64_t id : expired) {
      Conn& c = *conns.at(id);
      switch (c.kind) {
        case Deadline::Header:
          if (c.parser.started()) {
            answerAndClose(c, 408, "request head not received in time", now);
          } else {
            closeConn(id);
          }
          break;
        case Deadline::Body:
          answerAndClose(c, 408, "request body not received in time", now);
          break;
        default:  // idle keep-alive, a client that does not read, the end of lingering
          closeConn(id);
          break;
      }
    }
  }

  void onStopping(Clock::time_point now) {
    if (listenFd >= 0) {
      ::epoll_ctl(epfd, EPOLL_CTL_DEL, listenFd, nullptr);
      ::close(listenFd);
      listenFd = -1;
      listening = false;
      stopDeadline = now + opt.stopGrace;
    }
    std::vector<uint64_t> idle;
    for (auto& [id, c] : conns)
      if (c->phase == Phase::Reading || c->phase == Phase::Lingering || now >= stopDeadline)
        idle.push_back(id);
    for (uint64_t id : idle) closeConn(id);
  }

  void loop() {
    std::vector<epoll_event> events(512);
    auto nextSweep = Clock::now();
    while (true) {
      int n = ::epoll_wait(epfd, events.data(), static_cast<int>(events.size()), 50);
      auto now = Clock::now();
      for (int i = 0; i < n; ++i) {
        uint64_t id = events[i].data.u64;
        uint32_t ev = events[i].events;
        if (id == 0) {
          uint64_t v;
          [[maybe_unused]] auto r = ::read(wakeFd, &v, sizeof v);
          continue;
        }
        if (id == UINT64_MAX) {
          if (!stopping) acceptAll(now);
          continue;
        }
        auto it = conns.find(id);
        if (it == conns.end()) continue;
        Conn& c = *it->second;
        if (ev & (EPOLLERR | EPOLLHUP)) {
          closeConn(id);
          continue;
        }
        if (c.phase == Phase::Lingering) {
          discardFrom(c);
          continue;
        }
        if (ev & EPOLLOUT) {
          flush(c, now);
          if (!conns.count(id)) continue;
        }
        if ((ev & EPOLLIN) && c.phase == Phase::Reading) {
          readFrom(c, now);
          continue;
        }
        if ((ev & EPOLLRDHUP) && c.phase == Phase::Writing) {
          closeConn(id);  // the client hung up while its answer was being produced
        }
      }
      onCompletions(now);
      if (!listening && !stopping && listenFd >= 0 && now >= acceptPausedUntil) {
        epoll_event e{};
        e.events = EPOLLIN;
        e.data.u64 = UINT64_MAX;
        ::epoll_ctl(epfd, EPOLL_CTL_ADD, listenFd, &e);
        listening = true;
      }
      if (now >= nextSweep) {
        sweep(now);
        nextSweep = now + std::chrono::milliseconds(50);
      }
      if (stopping) {
        onStopping(now);
        if (conns.empty()) break;
      }
    }
  }

  // ---- handler threads --------------------------------------------------------------------

  void post(Completion c) {
    {
      MutexLock lk(doneMutex);
      done.push_back(std::move(c));
    }
    wake();
  }

  void work() {
    while (true) {
      Job job;
      {
        MutexLock lk(jobMutex);
        lk.wait(jobCv, [&]() REQUIRES(jobMutex) { return noMoreJobs || !jobs.empty(); });
        if (jobs.empty()) return;
        job = std::move(jobs.front());
        jobs.pop_front();
      }
      try {
        serve(job);
      } catch (const std::exception& e) {  // only allocation failures get here
        log.error(std::string("http: ") + describe(e));
        post({job.connId, errorAnswer(500, "internal error"), true, nullptr});
      }
      bodyReserved -= job.held;
      wake();
    }
  }

  Response handle(Request& req) {
    auto segs = pathSegments(req.path);
    bool pathKnown = false;
    const Route* chosen = nullptr;
    for (const auto& r : routes) {
      std::map<std::string, std::string> params;
      if (!matchRoute(r, segs, params)) continue;
      pathKnown = true;
      if (r.method != req.method && !(req.method == "HEAD" && r.method == "GET")) continue;
      chosen = &r;
      req.pathParams = std::move(params);
      break;
    }
    if (!chosen)
      return pathKnown ? Response::text(405, "method not allowed\n")
                       : Response::text(404, "not found\n");
    try {  // the HTTP error boundary (STYLE.md P3)
      return chosen->handler(req);
    } catch (const InputError& e) {
      return Response::text(400, describe(e) + "\n");
    } catch (const std::exception& e) {
      log.error(req.method + " " + req.path + ": " + describe(e));
      return Response::text(500, "internal error\n");
    } catch (...) {
      log.error(req.method + " " + req.path + ": unknown exception");
      return Response::text(500, "internal error\n");
    }
  }

  void serve(Job& job) {
    Request req;
    req.method = job.head.method;
    req.headers = std::move(job.head.headers);
    req.remoteAddr = job.addr;
    std::string_view target = job.head.target;
    size_t q = target.find('?');
    if (!percentDecode(target.substr(0, q), false, req.path) ||
        req.path.find('\0') != std::string::npos) {
      post({job.connId, errorAnswer(400, "malformed request target"), true, nullptr});
      return;
    }
    if (q != std::string_view::npos) parseUrlEncoded(target.substr(q + 1), req.params);
    if (auto ct = req.headers.get("Content-Type");
        ct && startsWith(toLower(trim(*ct)), "application/x-www-form-urlencoded"))
      parseUrlEncoded(job.body, req.params);
    req.body = std::move(job.body);
    bool head = req.method == "HEAD";

    Response res = handle(req);
    bool keepAlive = job.keepAlive && !stopping;
    bool http10 = job.head.minorVersion == 0;
    bool stream = static_cast<bool>(res.stream) && bodyAllowed(res.status);
    if (stream && !head) {
      MutexLock lk(streamMutex);
      if (activeStreams >= opt.maxStreams) {
        res = Response::text(503, "too many streamed answers at once; try again later\n");
        stream = false;
      }
    }
    if (stream && http10) keepAlive = false;  // the body ends when the connection does

    std::string out = "HTTP/1.1 " + std::to_string(res.status) + " " + reasonPhrase(res.status) +
                      "\r\nDate: " + httpDate() + "\r\n";
    if (!res.contentType.empty() && bodyAllowed(res.status))
      out += "Content-Type: " + res.contentType + "\r\n";
    for (const auto& [k, v] : res.headers) {
      if (framingHeader(k)) continue;
      if (!safeHeader(k, v)) {
        log.error(req.method + " " + req.path + ": dropped a response header with CR/LF");
        continue;
      }
      out += k + ": " + v + "\r\n";
    }
    if (stream) {
      if (!http10) out += "Transfer-Encoding: chunked\r\n";
    } else if (bodyAllowed(res.status)) {
      out += "Content-Length: " + std::to_string(res.body.size()) + "\r\n";
    }
    if (!keepAlive) {
      out += "Connection: close\r\n";
    } else if (http10) {
      out += "Connection: keep-alive\r\n";
    }
    out += "\r\n";
    if (!stream || head) {
      if (!head && bodyAllowed(res.status)) out += res.body;
      post({job.connId, std::move(out), !keepAlive, nullptr});
      return;
    }
    auto ch = std::make_shared<StreamChannel>();
    ch->chunked = !http10;
    ch->cap = std::max<size_t>(opt.streamBufferBytes, 1);
    ch->connId = job.connId;
    startStream(ch, std::move(res.stream), req.method + " " + req.path);
    post({job.connId, std::move(out), !keepAlive, ch});
  }

  class ChannelSink final : public StreamSink {
   public:
    ChannelSink(Impl& impl, StreamChannel& ch) : impl_(impl), ch_(ch) {}
    bool write(std::string_view data) override {
      if (impl_.stopping) return false;
      if (data.empty()) return true;
      {
        MutexLock lk(ch_.m);
        while (!ch_.closed && !impl_.stopping && ch_.pending.size() >= ch_.cap)
          lk.waitFor(ch_.cv, std::chrono::milliseconds(100));
        if (ch_.closed || impl_.stopping) return false;
        if (ch_.chunked) {
          char size[24];
          int n = std::snprintf(size, sizeof size, "%zx\r\n", data.size());
          ch_.pending.append(size, static_cast<size_t>(n));
          ch_.pending.append(data);
          ch_.pending += "\r\n";
        } else {
          ch_.pending.append(data);
        }
      }
      impl_.notifyStream(ch_.connId);
      return true;
    }
    bool stopping() const override { return impl_.stopping; }

   private:
    Impl& impl_;
    StreamChannel& ch_;
  };

  void notifyStream(uint64_t connId) {
    {
      MutexLock lk(doneMutex);
      streamsToDrain.push_back(connId);
    }
    wake();
  }

  void startStream(const std::shared_ptr<StreamChannel>& ch,
                   std::function<void(StreamSink&)> producer, const std::string& what) {
    MutexLock lk(streamMutex);
    reapStreams();
    ++activeStreams;
    streamThreads.emplace_back([this, ch, producer = std::move(producer), what] {
      ChannelSink sink(*this, *ch);
      try {
        producer(sink);
      } catch (const std::exception& e) {
        log.error("while streaming " + what + ": " + describe(e));
      } catch (...) {
        log.error("while streaming " + what + ": unknown exception");
      }
      {
        MutexLock clk(ch->m);
        if (ch->chunked) ch->pending += "0\r\n\r\n";
        ch->finished = true;
      }
      notifyStream(ch->connId);
      MutexLock slk(streamMutex);
      --activeStreams;
      finishedStreams.push_back(std::this_thread::get_id());
    });
  }

  // Joins the threads of streams that ended.
  void reapStreams() REQUIRES(streamMutex) {
    for (auto id : finishedStreams) {
      auto it = std::find_if(streamThreads.begin(), streamThreads.end(),
                             [&](const std::thread& t) { return t.get_id() == id; });
      if (it != streamThreads.end()) {
        it->join();  // it has returned or is about to (only the unlock is left)
        streamThreads.erase(it);
      }
    }
    finishedStreams.clear();
  }
};

Server::Server(ServerOptions options, Logger& log) : options_(std::move(options)), log_(log) {
  impl_ = std::make_unique<Impl>(options_, log_);
}

Server::~Server() { stop(); }

void Server::route(const std::string& method, const std::string& pattern, Handler handler) {
  impl_->routes.push_back({method, pathSegments(pattern), std::move(handler)});
}

bool Server::running() const { return impl_->started && !impl_->stopping; }

size_t Server::openConnections() const { return impl_->openCount; }

int Server::start() {
  auto [host, port] = splitListen(options_.listen);
  raiseFileLimitFor(options_.maxConnections, log_);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  std::string portText = std::to_string(port);
  if (int rc = ::getaddrinfo(host.c_str(), portText.c_str(), &hints, &found); rc != 0)
    throw InputError("listen address '" + options_.listen + "': " + ::gai_strerror(rc));
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard(found, &::freeaddrinfo);
  int fd = ::socket(found->ai_family, found->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw SysError(errno, "creating a socket for " + options_.listen);
  int yes = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  if (::bind(fd, found->ai_addr, found->ai_addrlen) != 0 || ::listen(fd, 1024) != 0) {
    int err = errno;
    ::close(fd);
    throw SysError(err, "binding " + options_.listen);
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
  port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6&>(bound).sin6_port
                                            : reinterpret_cast<sockaddr_in&>(bound).sin_port);

  auto& I = *impl_;
  I.listenFd = fd;
  I.epfd = ::epoll_create1(EPOLL_CLOEXEC);
  I.wakeFd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (I.epfd < 0 || I.wakeFd < 0) {
    int err = errno;
    ::close(fd);
    throw SysError(err, "creating the event loop of " + options_.listen);
  }
  epoll_event e{};
  e.events = EPOLLIN;
  e.data.u64 = 0;
  ::epoll_ctl(I.epfd, EPOLL_CTL_ADD, I.wakeFd, &e);
  e.data.u64 = UINT64_MAX;
  ::epoll_ctl(I.epfd, EPOLL_CTL_ADD, fd, &e);
  I.listening = true;
  size_t threads = options_.threads == 0 ? 1 : options_.threads;
  for (size_t i = 0; i < threads; ++i) I.workers.emplace_back([&I] { I.work(); });
  I.started = true;
  thread_ = std::thread([&I] {
    try {
      I.loop();
    } catch (const std::exception& e) {
      I.log.error("http server stopped unexpectedly: " + describe(e));
    }
  });
  return port_;
}

void Server::stop() noexcept {
  auto& I = *impl_;
  if (!I.started) return;
  I.stopping = true;
  I.wake();
  if (thread_.joinable()) thread_.join();
  {
    MutexLock lk(I.jobMutex);
    I.noMoreJobs = true;
  }
  I.jobCv.notify_all();
  for (auto& t : I.workers) t.join();
  I.workers.clear();
  std::list<std::thread> streams;
  {
    MutexLock lk(I.streamMutex);
    streams.swap(I.streamThreads);
    I.finishedStreams.clear();
  }
  for (auto& t : streams) t.join();
  for (auto& [id, c] : I.conns) ::close(c->fd);
  I.conns.clear();
  I.openCount = 0;
  if (I.listenFd >= 0) ::close(I.listenFd);
  ::close(I.epfd);
  ::close(I.wakeFd);
  I.listenFd = I.epfd = I.wakeFd = -1;
  I.started = false;
}

}  // namespace runner::http
