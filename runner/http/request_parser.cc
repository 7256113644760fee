#include "runner/http/request_parser.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace runner::http {
namespace {

bool isTchar(unsigned char c) {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
}

bool isToken(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return isTchar(c); });
}

// Field values: visible ASCII, obs-text, space and tab; no other control byte.
bool isFieldValue(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char ch) {
    auto c = static_cast<unsigned char>(ch);
    return c == '\t' || (c >= 0x20 && c != 0x7f);
  });
}

std::string_view trimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

bool iequals(std::string_view a, std::string_view b) { return lower(a) == lower(b); }

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The comma-separated elements of all fields called `name`, trimmed, lower-cased.
// Returns false when an element is empty.
bool listElements(const Headers& h, std::string_view name, std::vector<std::string>& out) {
  for (const auto& [k, v] : h.fields()) {
    if (!iequals(k, name)) continue;
    size_t start = 0;
    while (true) {
      size_t comma = v.find(',', start);
      auto el = trimOws(std::string_view(v).substr(
          start, comma == std::string::npos ? std::string::npos : comma - start));
      if (el.empty()) return false;
      out.push_back(lower(el));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  return true;
}

size_t countFields(const Headers& h, std::string_view name) {
  return static_cast<size_t>(std::count_if(h.fields().begin(), h.fields().end(),
                                           [&](const auto& f) { return iequals(f.first, name); }));
}

constexpr int kMaxLeadingEmptyLines = 4;  // RFC 9112 2.2: tolerate a CRLF after a body

}  // namespace

void RequestParser::reset() {
  state_ = State::Head;
  step_ = Step::RequestLine;
  started_ = false;
  leadingEmptyLines_ = 0;
  line_.clear();
  headerBytes_ = 0;
  headerCount_ = 0;
  remaining_ = 0;
  head_ = RequestHead{};
  body_.clear();
  body_.shrink_to_fit();
  errorStatus_ = 0;
  errorText_.clear();
}

void RequestParser::fail(int status, std::string why) {
  if (state_ == State::Error) return;
  state_ = State::Error;
  errorStatus_ = status;
  errorText_ = std::move(why);
  line_.clear();
  body_.clear();
}

bool RequestParser::takeLine(std::string_view data, size_t& pos, size_t limit, int overStatus,
                             const char* what) {
  const char* begin = data.data() + pos;
  size_t avail = data.size() - pos;
  const void* nl = std::memchr(begin, '\n', avail);
  size_t n = nl ? static_cast<size_t>(static_cast<const char*>(nl) - begin) + 1 : avail;
  if (line_.size() + n > limit + (nl ? 1 : 0)) {  // the limit counts the line with its CR
    fail(overStatus, std::string(what) + " too long");
    pos = data.size();
    return false;
  }
  line_.append(begin, n);
  pos += n;
  if (!nl) return false;
  line_.pop_back();  // '\n'
  if (line_.empty() || line_.back() != '\r') {
    fail(400, std::string("a line of the ") + what + " ends without CR LF");
    return false;
  }
  line_.pop_back();
  return true;
}

size_t RequestParser::feed(std::string_view data) {
  size_t pos = 0;
  while (pos < data.size() && (state_ == State::Head || state_ == State::Body)) {
    started_ = true;
    switch (step_) {
      case Step::RequestLine:
        if (!takeLine(data, pos, limits_.maxRequestLineBytes, 414, "request line")) break;
        if (line_.empty()) {
          if (++leadingEmptyLines_ > kMaxLeadingEmptyLines) fail(400, "empty request line");
          break;
        }
        onRequestLine();
        line_.clear();
        break;
      case Step::Headers:
      case Step::Trailers: {
        bool trailer = step_ == Step::Trailers;
        size_t left = limits_.maxHeaderBytes - std::min(headerBytes_, limits_.maxHeaderBytes);
        if (!takeLine(data, pos, left, 431, trailer ? "trailer section" : "header section")) break;
        headerBytes_ += line_.size() + 2;
        if (line_.empty()) {
          line_.clear();
          if (trailer) {
            state_ = State::Done;
          } else {
            onHeadEnd();
            if (state_ == State::Body) return pos;  // the caller decides about the body
          }
          break;
        }
        onHeaderLine(trailer);
        line_.clear();
        break;
      }
      case Step::FixedBody:
      case Step::ChunkData: {
        size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, data.size() - pos));
        body_.append(data.data() + pos, n);
        pos += n;
        remaining_ -= n;
        if (remaining_ == 0) {
          if (step_ == Step::FixedBody) {
            state_ = State::Done;
          } else {
            step_ = Step::ChunkDataEnd;
          }
        }
        break;
      }
      case Step::ChunkSize:
        if (!takeLine(data, pos, limits_.maxChunkLineBytes, 400, "chunk size line")) break;
        onChunkSizeLine();
        line_.clear();
        break;
      case Step::ChunkDataEnd:
        if (!takeLine(data, pos, 2, 400, "chunk")) break;
        if (!line_.empty()) {
          fail(400, "chunk data longer than its size");
          break;
        }
        step_ = Step::ChunkSize;
        break;
    }
  }
  return pos;
}

void RequestParser::onRequestLine() {
  std::string_view line = line_;
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos)
    return fail(400, "malformed request line");
  auto method = line.substr(0, sp1);
  auto target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  auto version = line.substr(sp2 + 1);
  if (!isToken(method)) return fail(400, "malformed request method");
  if (target.empty() || !std::all_of(target.begin(), target.end(), [](char ch) {
        auto c = static_cast<unsigned char>(ch);
        return c > 0x20 && c < 0x7f;
      }))
    return fail(400, "malformed request target");
  if (target[0] != '/' && !(target == "*" && method == "OPTIONS"))
    return fail(400, "request target must be a path (origin-form)");
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' ||
      version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9')
    return fail(400, "malformed HTTP version");
  if (version[5] != '1' || version[7] > '1') return fail(505, "HTTP version not supported");
  head_.method = std::string(method);
  head_.target = std::string(target);
  head_.minorVersion = version[7] - '0';
  head_.keepAlive = head_.minorVersion == 1;
  step_ = Step::Headers;
}

void RequestParser::onHeaderLine(bool trailer) {
  std::string_view line = line_;
  if (line[0] == ' ' || line[0] == '\t') return fail(400, "obsolete header line folding");
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return fail(400, "header line without a colon");
  auto name = line.substr(0, colon);
  auto value = trimOws(line.substr(colon + 1));
  if (!isToken(name)) return fail(400, "malformed header name");
  if (!isFieldValue(value)) return fail(400, "control character in a header value");
  if (++headerCount_ > limits_.maxHeaderCount)
    return fail(431, trailer ? "too many trailer fields" : "too many header fields");
  if (!trailer) head_.headers.add(std::string(name), std::string(value));
}

void RequestParser::onHeadEnd() {
  const Headers& h = head_.headers;
  size_t hosts = countFields(h, "Host");
  if (hosts > 1) return fail(400, "several Host fields");
  if (hosts == 0 && head_.minorVersion == 1) return fail(400, "no Host field");

  std::vector<std::string> te;
  if (!listElements(h, "Transfer-Encoding", te))
    return fail(400, "empty element in Transfer-Encoding");
  size_t lengths = countFields(h, "Content-Length");
  if (!te.empty() || countFields(h, "Transfer-Encoding") > 0) {
    if (lengths > 0) return fail(400, "both Content-Length and Transfer-Encoding");
    if (head_.minorVersion == 0) return fail(400, "Transfer-Encoding in an HTTP/1.0 request");
    if (te.back() != "chunked") return fail(400, "chunked must be the final transfer coding");
    if (te.size() > 1) {
      bool twice = std::count(te.begin(), te.end(), "chunked") > 1;
      if (twice) return fail(400, "chunked applied twice");
      return fail(501, "transfer coding not supported: " + te.front());
    }
    head_.chunked = true;
  } else if (lengths > 1) {
    return fail(400, "several Content-Length fields");
  } else if (lengths == 1) {
    auto text = *h.get("Content-Length");
    if (text.empty() ||
        !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return fail(400, "malformed Content-Length");
    if (text.size() > 18) return fail(413, "request body too large");
    head_.contentLength = std::stoull(text);
    if (head_.contentLength > limits_.maxBodyBytes) return fail(413, "request body too large");
  }

  if (auto expect = h.get("Expect")) {
    if (!iequals(trimOws(*expect), "100-continue") || countFields(h, "Expect") > 1)
      return fail(417, "unsupported Expect");
    head_.expectContinue = head_.minorVersion == 1;
  }
  std::vector<std::string> conn;
  if (!listElements(h, "Connection", conn)) return fail(400, "empty element in Connection");
  for (const auto& c : conn) {
    if (c == "close") head_.keepAlive = false;
    if (c == "keep-alive" && head_.minorVersion == 0) head_.keepAlive = true;
  }
  if (std::find(conn.begin(), conn.end(), "close") != conn.end()) head_.keepAlive = false;

  headerCount_ = 0;  // trailers have a count of their own
  if (head_.chunked) {
    state_ = State::Body;
    step_ = Step::ChunkSize;
  } else if (head_.contentLength > 0) {
    state_ = State::Body;
    step_ = Step::FixedBody;
    remaining_ = head_.contentLength;
    body_.reserve(static_cast<size_t>(std::min<uint64_t>(remaining_, uint64_t{64} * 1024)));
  } else {
    state_ = State::Done;
  }
}

void RequestParser::onChunkSizeLine() {
  std::string_view line = line_;
  size_t i = 0;
  uint64_t size = 0;
  while (i < line.size() && hexValue(line[i]) >= 0) {
    if (i >= 15) return fail(413, "request body too large");  // beyond 2^60
    size = size * 16 + static_cast<uint64_t>(hexValue(line[i]));
    ++i;
  }
  if (i == 0) return fail(400, "malformed chunk size");
  auto rest = line.substr(i);
  while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) rest.remove_prefix(1);
  if (!rest.empty() && (rest.front() != ';' || !isFieldValue(rest)))
    return fail(400, "malformed chunk extension");
  if (size > limits_.maxBodyBytes - body_.size()) return fail(413, "request body too large");
  if (size == 0) {
    step_ = Step::Trailers;
  } else {
    remaining_ = size;
    step_ = Step::ChunkData;
  }
}

bool percentDecode(std::string_view in, bool plusIsSpace, std::string& out) {
  out.clear();
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return false;
      int hi = hexValue(in[i + 1]), lo = hexValue(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plusIsSpace) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return true;
}

void parseUrlEncoded(std::string_view text, std::map<std::string, std::string>& params) {
  size_t start = 0;
  while (start <= text.size()) {
    size_t amp = text.find('&', start);
    auto pair =
        text.substr(start, amp == std::string_view::npos ? std::string_view::npos : amp - start);
    if (!pair.empty()) {
      size_t eq = pair.find('=');
      auto rawKey = pair.substr(0, eq);
      auto rawValue = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
      std::string key, value;
      if (!percentDecode(rawKey, true, key)) key = std::string(rawKey);
      if (!percentDecode(rawValue, true, value)) value = std::string(rawValue);
      if (!key.empty()) params.emplace(std::move(key), std::move(value));
    }
    if (amp == std::string_view::npos) break;
    start = amp + 1;
  }
}

}  // namespace runner::http
