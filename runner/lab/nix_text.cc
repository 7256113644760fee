#include "runner/lab/nix_text.h"

#include <filesystem>

#include "runner/os/files.h"

namespace runner::lab {

std::string nixString(std::string_view s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '$':
        out += (i + 1 < s.size() && s[i + 1] == '{') ? "\\$" : "$";
        break;
      default:
        out += c;
    }
  }
  return out + "\"";
}

std::string nixStringList(const std::vector<std::string>& items) {
  std::string out = "[";
  for (const auto& i : items) out += " " + nixString(i);
  return out + " ]";
}

std::string fillTemplate(std::string text, const std::map<std::string, std::string>& vars) {
  for (const auto& [key, value] : vars) {
    const std::string needle = "@" + key + "@";
    for (size_t pos = 0; (pos = text.find(needle, pos)) != std::string::npos; pos += value.size())
      text.replace(pos, needle.size(), value);
  }
  return text;
}

void writeTextFile(const std::string& dir, const std::string& rel, std::string_view content) {
  os::writeFileAtomic(std::filesystem::path(dir) / rel, content);
}

}  // namespace runner::lab
