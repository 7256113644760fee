// Markdown that stays what it says, whatever the text in it (file paths, input names, Nix
// log lines, commit messages): escaping for inline text and table cells, code spans whose
// backtick fence outgrows the text's own backticks, and fenced blocks likewise. Both GitHub
// (GFM) and Gitea/Forgejo (goldmark, GFM) render these the same way.
#pragma once

#include <string>
#include <string_view>

namespace runner::report {

// Inline text safe anywhere, including a table cell: every ASCII punctuation character
// markdown gives a meaning to is backslash-escaped, '<', '>' and '&' become entities (so
// no HTML, no "<!--" that would hide the rest), and line breaks become spaces.
std::string escapeMarkdown(std::string_view text);

// An inline code span showing `text` literally: fenced with one more backtick than the
// longest backtick run inside, padded with a space when the text starts or ends with a
// backtick, and with '|' escaped (GFM splits table cells on '|' even inside code spans).
// Line breaks become spaces. "" gives "" (an empty code span would show the fence).
std::string codeSpan(std::string_view text);

// A fenced code block (```lang … ```) showing `text` literally: the fence is longer than
// any backtick run in the text. Ends with a newline.
std::string codeBlock(std::string_view text, std::string_view lang = "");

// A link destination: `url` with spaces, '(', ')', '<', '>' and control characters
// percent-encoded, so "[text](<that>)" cannot end early or be bent into markup.
std::string linkTarget(std::string_view url);

// The last `maxBytes` bytes of `text` (or all of it). When it cuts, it starts at a code
// point (and at a line when one begins within 256 bytes) and prefixes "…\n" (counted).
std::string tailUtf8(std::string_view text, size_t maxBytes);

// Runs of blank lines outside fenced code blocks become one blank line (templates leave
// them where optional sections were empty). Code blocks are kept byte for byte.
std::string collapseBlankLines(std::string_view text);

}  // namespace runner::report
