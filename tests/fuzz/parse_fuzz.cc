// libFuzzer target for the Nix parser (runner/nix/parser.h): any byte string must either
// parse or throw ParseError — never crash, hang, leak, or overflow the stack. Accepted
// input is also printed (Nix format) and converted to JSON, so those walks are fuzzed too.
// Build and run: see tests/fuzz/README.md.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "runner/nix/ast_json.h"
#include "runner/nix/parser.h"
#include "runner/nix/printer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view source(reinterpret_cast<const char*>(data), size);
  try {
    auto ast = runner::nix::parseNix(source, "fuzz.nix");
    runner::nix::NixPrintOptions o{"/base/dir", "/home/fuzz"};
    (void)runner::nix::printNixParse(*ast, o);
    (void)runner::nix::dumpJson(*ast);
  } catch (const runner::nix::ParseError&) {
    // rejected input is an expected outcome
  }
  return 0;
}
