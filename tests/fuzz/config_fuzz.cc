// libFuzzer target for the YAML config (runner/app/config_loader.h): any text must give a
// config or a list of issues with line numbers — never a crash, an exception or a hang.
#include <cstddef>
#include <cstdint>
#include <string>

#include "runner/app/config_loader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto check = runner::app::checkConfigText(text, "fuzz.yaml", "/nonexistent-base");
  for (const auto& issue : check.issues) (void)runner::app::formatIssue("fuzz.yaml", issue);
  return 0;
}
