// The HTTP/1.1 request parser of runner::http::Server (RFC 9112), kept apart from the sockets
// so that it can be fed bytes by the tests and the fuzzer (tests/fuzz/http_request_fuzz.cc).
//
// It is strict: whatever two readers could understand differently (request smuggling) or
// that only an attacker sends is refused with the status the server answers before closing:
//
//   400  a malformed request line or header line (bare LF, obs-fold, controls, a space
//        before the colon), no Host (HTTP/1.1) or several, Content-Length and
//        Transfer-Encoding together, several or non-numeric Content-Lengths, "chunked" not
//        the only coding, a malformed chunk (size, extension, CRLF) or trailer
//   413  a Content-Length over the body limit (known with the head, before any body byte),
//        or a chunked body whose decoded size passes the limit (at the chunk-size line that
//        passes it: nothing beyond the limit is ever buffered)
//   414  a request line over its limit;  431 header section over its size or count limit
//   417  an Expect other than 100-continue;  501 a transfer coding other than chunked
//   505  an HTTP version other than 1.0 and 1.1
//
// Memory is bounded by the limits: at most maxRequestLineBytes + maxHeaderBytes for the head
// and maxBodyBytes for the body.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "runner/core/forge.h"

namespace runner::http {

struct ParserLimits {
  size_t maxRequestLineBytes = size_t{8} * 1024;  // method, target and version (414 beyond)
  size_t maxHeaderBytes = size_t{32} * 1024;      // all header lines together, trailers too (431)
  size_t maxHeaderCount = 100;                    // header fields (431 beyond)
  size_t maxBodyBytes = 25u << 20;                // decoded body (413 beyond)
  size_t maxChunkLineBytes = 1024;                // a chunk-size line with its extensions (400)
};

// The request head as parsed. `target` is the raw request-target (origin-form, or "*").
struct RequestHead {
  std::string method;
  std::string target;
  int minorVersion = 1;  // HTTP/1.<minor>
  Headers headers;
  bool chunked = false;
  uint64_t contentLength = 0;  // when not chunked
  bool expectContinue = false;
  bool keepAlive = true;  // what the client asked for (version and Connection)
};

// An incremental parser for one request at a time. Not thread-safe.
class RequestParser {
 public:
  enum class State { Head, Body, Done, Error };

  explicit RequestParser(ParserLimits limits) : limits_(limits) {}

  // Consumes bytes of `data` until the head is complete and a body follows (it returns then,
  // so the caller can decide whether to read the body: memory, Expect), the request is
  // complete (Done), the input is refused (Error) or the data runs out. Returns how many
  // bytes it consumed: bytes after a complete request belong to the next (pipelined) request
  // and are left to the caller; feed the rest again to go on with a body.
  size_t feed(std::string_view data);

  State state() const { return state_; }
  // True once the head is parsed (state Body or Done).
  bool headComplete() const { return state_ == State::Body || state_ == State::Done; }
  // True once any byte of this request arrived.
  bool started() const { return started_; }
  const RequestHead& head() const { return head_; }
  std::string& body() { return body_; }
  // In state Error: the status to answer (400, 413, …) and why, one line.
  int errorStatus() const { return errorStatus_; }
  const std::string& errorText() const { return errorText_; }

  // Forgets the request, ready for the next one on the same connection.
  void reset();

 private:
  enum class Step { RequestLine, Headers, FixedBody, ChunkSize, ChunkData, ChunkDataEnd, Trailers };

  void fail(int status, std::string why);
  // Collects one CRLF-terminated line into line_; returns false while incomplete.
  bool takeLine(std::string_view data, size_t& pos, size_t limit, int overStatus, const char* what);
  void onRequestLine();
  void onHeaderLine(bool trailer);
  void onHeadEnd();
  void onChunkSizeLine();

  ParserLimits limits_;
  State state_ = State::Head;
  Step step_ = Step::RequestLine;
  bool started_ = false;
  int leadingEmptyLines_ = 0;
  std::string line_;
  size_t headerBytes_ = 0;
  size_t headerCount_ = 0;
  uint64_t remaining_ = 0;  // of the fixed body or the current chunk
  RequestHead head_;
  std::string body_;
  int errorStatus_ = 0;
  std::string errorText_;
};

// Decodes %XX escapes (and '+' as space when `plusIsSpace`). Returns false on a malformed
// escape.
bool percentDecode(std::string_view in, bool plusIsSpace, std::string& out);

// Adds the fields of "a=1&b=x%20y" to `params`; the first value of a name wins. Malformed
// escapes are kept as they are.
void parseUrlEncoded(std::string_view text, std::map<std::string, std::string>& params);

}  // namespace runner::http
