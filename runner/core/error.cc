#include "runner/core/error.h"

#include <cstring>

namespace runner {

std::string Error::describe() const {
  std::string out = what();
  if (!context_.empty()) {
    out += " (";
    for (size_t i = 0; i < context_.size(); ++i) {
      if (i) out += "; ";
      out += context_[i];
    }
    out += ")";
  }
  return out;
}

SysError::SysError(int err, std::string_view doing)
    : Error(std::string(doing) + ": " + std::strerror(err)), err(err) {}

std::string describe(const std::exception& e) {
  if (auto* re = dynamic_cast<const Error*>(&e)) return re->describe();
  return e.what();
}

int exitCodeFor(const std::exception& e) noexcept {
  return dynamic_cast<const InputError*>(&e) ? 2 : 1;
}

}  // namespace runner
