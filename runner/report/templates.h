// The mustache templates (kainjow) for what Switchyard writes on a forge in markdown: the PR
// comment, the plan table, check-run output. They live in templates/*.mustache and are
// compiled into the binary at build time (runner/report/embed_templates.cmake), so a deployed
// runner needs no templates directory; a directory of same-named files can override them.
//
// Escaping: `{{x}}` escapes for markdown (escapeMarkdown: no HTML, no accidental emphasis,
// links, mentions or table breaks), `{{{x}}}` inserts pre-rendered markdown (code spans and
// blocks made with codeSpan/codeBlock). Every template is also a partial: `{{> plan_table}}`.
// Runs of blank lines that empty sections leave behind are collapsed (outside code blocks).
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace runner::report {

namespace detail {
// name ("pr_comment") -> text, generated from templates/ at build time.
const std::vector<std::pair<std::string_view, std::string_view>>& embeddedTemplates();
}  // namespace detail

class Templates {
 public:
  // The templates compiled into the binary.
  static Templates builtIn();
  // builtIn(), with `<dir>/<name>.md.mustache` used instead where such a file exists.
  // Throws InputError when an override cannot be read.
  static Templates withOverrides(const std::filesystem::path& dir);
  // Only these (tests).
  explicit Templates(std::map<std::string, std::string, std::less<>> texts)
      : texts_(std::move(texts)) {}

  // Renders template `name` with `view` (a JSON object: objects and arrays become mustache
  // sections and lists, null and false are falsy, numbers are printed as JSON prints them).
  // Throws InputError when there is no such template or it does not parse. Thread-safe.
  std::string render(std::string_view name, const nlohmann::json& view) const;

  bool has(std::string_view name) const { return texts_.find(name) != texts_.end(); }

 private:
  std::map<std::string, std::string, std::less<>> texts_;
};

}  // namespace runner::report
