// Helpers for generating Nix source text in the lab: quoting strings as Nix literals and
// filling @NAME@ placeholders in templates.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace runner::lab {

// A double-quoted Nix string literal whose value is exactly `s` (escapes \ " ${ and controls).
std::string nixString(std::string_view s);
// `[ "a" "b" ]`
std::string nixStringList(const std::vector<std::string>& items);
// Replaces every "@KEY@" for each key of `vars` in `text`.
std::string fillTemplate(std::string text, const std::map<std::string, std::string>& vars);
// Writes `content` to `dir/rel` (creating directories), replacing the file.
void writeTextFile(const std::string& dir, const std::string& rel, std::string_view content);

}  // namespace runner::lab
