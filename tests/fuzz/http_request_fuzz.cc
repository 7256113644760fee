// libFuzzer target for the HTTP request parser (runner/http/request_parser.h): any byte
// string, cut into pieces of any size, must parse into requests or be refused with one of
// the documented statuses — never crash, hang, leak or buffer past a limit. The oracle: the
// same bytes fed whole and fed in pieces give the same requests and the same verdict.
// The first input byte chooses the piece size. Build and run: see tests/fuzz/README.md.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "runner/http/request_parser.h"

namespace {

using runner::http::ParserLimits;
using runner::http::RequestParser;

struct Outcome {
  std::vector<std::string> requests;  // method, target and body of each complete request
  int errorStatus = 0;
  size_t consumed = 0;  // compared only without an error (after one, nothing more is read)
  bool operator==(const Outcome& o) const {
    return requests == o.requests && errorStatus == o.errorStatus &&
           (errorStatus != 0 || consumed == o.consumed);
  }
};

void check(bool ok) {
  if (!ok) std::abort();
}

Outcome run(std::string_view input, size_t piece, const ParserLimits& limits) {
  Outcome out;
  RequestParser p(limits);
  size_t pos = 0;
  while (pos < input.size()) {
    size_t n = std::min(piece, input.size() - pos);
    size_t used = p.feed(input.substr(pos, n));
    check(used <= n);
    pos += used;
    check(p.body().size() <= limits.maxBodyBytes);
    if (p.state() == RequestParser::State::Done) {
      const auto& h = p.head();
      out.requests.push_back(h.method + " " + h.target + " " + p.body());
      std::string path;
      std::map<std::string, std::string> params;
      (void)runner::http::percentDecode(h.target, false, path);
      runner::http::parseUrlEncoded(p.body(), params);
      p.reset();
    } else if (p.state() == RequestParser::State::Error) {
      int s = p.errorStatus();
      check(s == 400 || s == 413 || s == 414 || s == 417 || s == 431 || s == 501 || s == 505);
      check(!p.errorText().empty());
      out.errorStatus = s;
      break;
    } else {
      // an incomplete request takes all it is given, but stops once after its head
      check(used == n || (p.state() == RequestParser::State::Body && p.body().empty()));
    }
  }
  out.consumed = pos;
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  size_t piece = 1 + data[0] % 17;
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  ParserLimits limits;
  limits.maxRequestLineBytes = 256;
  limits.maxHeaderBytes = 1024;
  limits.maxHeaderCount = 16;
  limits.maxBodyBytes = 2048;
  limits.maxChunkLineBytes = 64;
  Outcome whole = run(input, input.size() + 1, limits);
  Outcome pieces = run(input, piece, limits);
  check(whole == pieces);
  return 0;
}
