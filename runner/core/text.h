// Small string helpers used across the runner (no locale, ASCII semantics).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace runner {

std::string_view trim(std::string_view s);
std::vector<std::string> split(std::string_view s, char sep);
std::string join(const std::vector<std::string>& parts, std::string_view sep);
bool startsWith(std::string_view s, std::string_view prefix);
bool endsWith(std::string_view s, std::string_view suffix);
std::string toLower(std::string_view s);

// Lowercase hex of bytes, and back (nullopt-like: returns false on bad input).
std::string toHex(std::string_view bytes);
bool fromHex(std::string_view hex, std::string& bytes);

// Compares two byte strings in time that depends only on their lengths.
bool constantTimeEquals(std::string_view a, std::string_view b) noexcept;

// "2026-11-25T19:20:00Z"
std::string formatUtc(std::chrono::system_clock::time_point t);
// Unix milliseconds -> "2026-11-25T19:20:00Z"
std::string formatUtcMillis(int64_t millis);
// 1234 ms -> "1.2s"; 134000 -> "2m14s"; 3 -> "3ms"
std::string formatDuration(std::chrono::milliseconds d);

// Cuts a UTF-8 string to at most `maxBytes` without splitting a code point; appends "…"
// (which counts toward the limit) when it cut.
std::string truncateUtf8(std::string_view s, size_t maxBytes);

// Shortens a 40-hex sha for display.
std::string shortSha(std::string_view sha, size_t n = 8);

// Escapes text for HTML element content and attribute values ('&', '<', '>', '"', '\'').
std::string htmlEscape(std::string_view s);

// Percent-encodes every byte but RFC 3986's unreserved characters (letters, digits, "-._~")
// and those in `keep` (e.g. "/" for a path in a URL).
std::string percentEncode(std::string_view s, std::string_view keep = "");

// Quotes a string for a POSIX shell command line (single quotes).
std::string shellQuote(std::string_view s);

// Text from builds, evaluations and forges made harmless for a terminal or a log viewer:
// colour codes (ESC [ … m) are dropped, every other control character — ESC starting an OSC
// title or clipboard write, BEL, a lone CR that overwrites a line, C1 controls — becomes a
// visible escape ("\x1b", "\u009b"). Newlines and tabs stay. Invalid UTF-8 is kept as bytes.
std::string neutralizeControls(std::string_view s);

}  // namespace runner
