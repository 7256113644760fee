#include "runner/report/markdown.h"

#include <algorithm>

namespace runner::report {
namespace {

size_t longestBacktickRun(std::string_view s) {
  size_t best = 0, run = 0;
  for (char c : s) {
    run = c == '`' ? run + 1 : 0;
    best = std::max(best, run);
  }
  return best;
}

}  // namespace

std::string escapeMarkdown(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '\r':
        break;
      case '\n':
        out += ' ';
        break;
      case '\\':
      case '`':
      case '*':
      case '_':
      case '{':
      case '}':
      case '[':
      case ']':
      case '(':
      case ')':
      case '#':
      case '!':
      case '|':
      case '~':
      case ':':
      case '@':
        // ':' (autolinks "https:") and '@' (mentions) too, so nothing in the text turns into
        // a link or notifies anyone
        out += '\\';
        out += c;
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string codeSpan(std::string_view text) {
  std::string body;
  body.reserve(text.size());
  for (char c : text) {
    if (c == '\r') continue;
    if (c == '\n') {
      body += ' ';
    } else if (c == '|') {
      body += "\\|";
    } else {
      body += c;
    }
  }
  if (body.empty()) return "";
  std::string fence(longestBacktickRun(body) + 1, '`');
  bool pad = body.front() == '`' || body.back() == '`';
  return fence + (pad ? " " : "") + body + (pad ? " " : "") + fence;
}

std::string codeBlock(std::string_view text, std::string_view lang) {
  std::string fence(std::max<size_t>(3, longestBacktickRun(text) + 1), '`');
  std::string out = fence + std::string(lang) + "\n" + std::string(text);
  if (out.back() != '\n') out += '\n';
  return out + fence + "\n";
}

std::string linkTarget(std::string_view url) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : url) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7F || c == '(' || c == ')' || c == '<' || c == '>') {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    } else {
      out += c;
    }
  }
  return out;
}

std::string tailUtf8(std::string_view text, size_t maxBytes) {
  if (text.size() <= maxBytes) return std::string(text);
  static constexpr std::string_view kEllipsis = "\xe2\x80\xa6\n";
  if (maxBytes <= kEllipsis.size()) return std::string();
  size_t start = text.size() - (maxBytes - kEllipsis.size());
  while (start < text.size() && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) ++start;
  size_t nl = text.find('\n', start);
  // start at a line when one begins soon; a log of one huge line is cut mid-line
  if (nl != std::string_view::npos && nl - start < 256 && nl + 1 < text.size()) start = nl + 1;
  return std::string(kEllipsis) + std::string(text.substr(start));
}

std::string collapseBlankLines(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t fence = 0;        // length of the open code fence; 0: outside a code block
  bool lastBlank = false;  // the line written last was blank (outside a code block)
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    bool last = end == std::string_view::npos;
    std::string_view line = text.substr(pos, last ? std::string_view::npos : end - pos);
    if (last && line.empty()) break;
    size_t ticks = line.find_first_not_of('`');
    if (ticks == std::string_view::npos) ticks = line.size();
    bool blank = line.find_first_not_of(" \t") == std::string_view::npos;
    if (fence == 0 && ticks >= 3) {
      fence = ticks;
    } else if (fence > 0 && ticks >= fence && ticks == line.size()) {
      fence = 0;
    } else if (fence == 0 && blank) {
      if (lastBlank) {
        pos = end + 1;
        continue;
      }
    }
    lastBlank = fence == 0 && blank;
    out += line;
    if (!last) out += '\n';
    if (last) break;
    pos = end + 1;
  }
  return out;
}

}  // namespace runner::report
