#include "runner/report/templates.h"

#include <kainjow/mustache.hpp>

#include <nlohmann/json.hpp>

#include "runner/core/error.h"
#include "runner/os/files.h"
#include "runner/report/markdown.h"

namespace runner::report {
namespace {

namespace mu = kainjow::mustache;

mu::data toData(const nlohmann::json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::object: {
      mu::data d{mu::data::type::object};
      for (const auto& [k, v] : j.items()) d.set(k, toData(v));
      return d;
    }
    case nlohmann::json::value_t::array: {
      mu::data d{mu::data::type::list};
      for (const auto& v : j) d.push_back(toData(v));
      return d;
    }
    case nlohmann::json::value_t::string:
      return mu::data(j.get<std::string>());
    case nlohmann::json::value_t::boolean:
      return mu::data(j.get<bool>() ? mu::data::type::bool_true : mu::data::type::bool_false);
    case nlohmann::json::value_t::null:
    case nlohmann::json::value_t::discarded:
      return mu::data(mu::data::type::bool_false);
    default:
      return mu::data(j.dump());
  }
}

}  // namespace

Templates Templates::builtIn() {
  std::map<std::string, std::string, std::less<>> texts;
  for (const auto& [name, text] : detail::embeddedTemplates())
    texts.emplace(std::string(name), std::string(text));
  return Templates(std::move(texts));
}

Templates Templates::withOverrides(const std::filesystem::path& dir) {
  Templates t = builtIn();
  for (auto& [name, text] : t.texts_) {
    auto file = dir / (name + ".md.mustache");
    if (std::filesystem::exists(file)) text = os::readFile(file);
  }
  return t;
}

std::string Templates::render(std::string_view name, const nlohmann::json& view) const {
  auto it = texts_.find(name);
  if (it == texts_.end()) throw InputError("no template named '" + std::string(name) + "'");
  mu::data data = toData(view);
  if (!data.is_object()) data = mu::data{mu::data::type::object};
  for (const auto& [partialName, text] : texts_) {
    if (partialName == name || data.get(partialName)) continue;
    std::string copy = text;
    data.set(partialName, mu::partial([copy] { return copy; }));
  }
  mu::mustache tmpl(it->second);
  if (!tmpl.is_valid())
    throw InputError("template '" + std::string(name) + "': " + tmpl.error_message());
  tmpl.set_custom_escape([](const std::string& s) { return escapeMarkdown(s); });
  std::string out = tmpl.render(data);
  if (!tmpl.is_valid())
    throw InputError("template '" + std::string(name) + "': " + tmpl.error_message());
  return collapseBlankLines(out);
}

}  // namespace runner::report
