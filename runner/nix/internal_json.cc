#include "runner/nix/internal_json.h"

#include <nlohmann/json.hpp>

#include "runner/core/text.h"

namespace runner::nix {
namespace {

std::vector<LogField> fieldsOf(const nlohmann::json& j) {
  std::vector<LogField> out;
  auto it = j.find("fields");
  if (it == j.end() || !it->is_array()) return out;
  for (const auto& f : *it) {
    if (f.is_number_integer() || f.is_number_unsigned())
      out.emplace_back(f.get<int64_t>());
    else if (f.is_string())
      out.emplace_back(f.get<std::string>());
    else
      out.emplace_back(std::string(f.dump()));
  }
  return out;
}

uint64_t idOf(const nlohmann::json& j, const char* key = "id") {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<uint64_t>() : 0;
}

LogEvent parseJsonEvent(std::string_view body, std::string_view line);

}  // namespace

std::optional<std::string> ActivityStart::path() const {
  if (fields.empty() || !std::holds_alternative<std::string>(fields[0])) return std::nullopt;
  const auto& s = std::get<std::string>(fields[0]);
  if (!startsWith(s, "/")) return std::nullopt;
  return s;
}

int64_t ActivityResult::number(size_t i) const {
  if (i >= fields.size() || !std::holds_alternative<int64_t>(fields[i])) return 0;
  return std::get<int64_t>(fields[i]);
}

std::string ActivityResult::text(size_t i) const {
  if (i >= fields.size() || !std::holds_alternative<std::string>(fields[i])) return {};
  return std::get<std::string>(fields[i]);
}

std::string stripAnsi(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\x1b' && i + 1 < s.size() && s[i + 1] == '[') {
      size_t j = i + 2;
      while (j < s.size() && !((s[j] >= '@' && s[j] <= '~'))) ++j;
      i = j;  // skip the final byte too
      continue;
    }
    out += s[i];
  }
  return out;
}

LogEvent parseLogLine(std::string_view line) {
  constexpr std::string_view kPrefix = "@nix ";
  if (!startsWith(line, kPrefix)) return PlainLine{std::string(line)};
  try {
    return parseJsonEvent(line.substr(kPrefix.size()), line);
  } catch (const nlohmann::json::exception&) {
    return PlainLine{std::string(line)};  // a field of an unexpected type
  }
}

namespace {
LogEvent parseJsonEvent(std::string_view body, std::string_view line) {
  nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("action"))
    return PlainLine{std::string(line)};
  const std::string action = j["action"].is_string() ? j["action"].get<std::string>() : "";
  if (action == "start") {
    ActivityStart s;
    s.id = idOf(j);
    s.type = static_cast<ActivityType>(j.value("type", 0));
    s.level = j.value("level", 0);
    s.text = j.value("text", std::string());
    s.fields = fieldsOf(j);
    s.parent = idOf(j, "parent");
    return s;
  }
  if (action == "stop") return ActivityStop{idOf(j)};
  if (action == "result") {
    ActivityResult r;
    r.id = idOf(j);
    r.type = static_cast<ResultType>(j.value("type", 0));
    r.fields = fieldsOf(j);
    return r;
  }
  if (action == "msg") {
    LogMessage m;
    m.level = j.value("level", 0);
    m.msg = stripAnsi(j.value("msg", std::string()));
    return m;
  }
  return PlainLine{std::string(line)};
}
}  // namespace

}  // namespace runner::nix
