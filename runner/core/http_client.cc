#include "runner/core/http_client.h"

#include "runner/core/text.h"

namespace runner {

std::string HttpResponse::header(const std::string& name) const {
  auto it = headers.find(toLower(name));
  return it == headers.end() ? std::string() : it->second;
}

}  // namespace runner
