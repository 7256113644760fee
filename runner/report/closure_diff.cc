#include "runner/report/closure_diff.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "runner/core/text.h"
#include "runner/nix/nix_cli.h"

namespace runner::report {
namespace {

constexpr size_t kMaxCached = 1024;
constexpr std::string_view kArrow = " \xE2\x86\x92 ";   // " → "
constexpr std::string_view kEmptySet = "\xE2\x88\x85";  // "∅"
constexpr std::string_view kEpsilon = "\xCE\xB5";       // "ε"

// "+12.5 KiB" / "-6597.8 KiB" -> KiB; nullopt for anything else.
std::optional<double> parseDelta(std::string_view s) {
  if (!endsWith(s, " KiB") || s.size() < 6 || (s[0] != '+' && s[0] != '-')) return std::nullopt;
  std::string number(s.substr(0, s.size() - 4));
  for (size_t i = 1; i < number.size(); ++i)
    if (!std::isdigit(static_cast<unsigned char>(number[i])) && number[i] != '.')
      return std::nullopt;
  char* end = nullptr;
  double v = std::strtod(number.c_str(), &end);
  if (end != number.c_str() + number.size()) return std::nullopt;
  return v;
}

std::vector<std::string> parseVersions(std::string_view side, bool& none) {
  none = side == kEmptySet;
  std::vector<std::string> out;
  if (none) return out;
  for (auto& v : split(side, ',')) {
    std::string t(trim(v));
    out.push_back(t == kEpsilon ? "" : t);
  }
  return out;
}

}  // namespace

int ClosureDiff::versionChanges() const {
  int n = 0;
  for (const auto& c : changes)
    n += !c.added && !c.removed && (!c.before.empty() || !c.after.empty());
  return n;
}
int ClosureDiff::added() const {
  int n = 0;
  for (const auto& c : changes) n += c.added;
  return n;
}
int ClosureDiff::removed() const {
  int n = 0;
  for (const auto& c : changes) n += c.removed;
  return n;
}

ClosureDiff parseDiffClosures(std::string_view text) {
  ClosureDiff out;
  for (const auto& rawLine : split(text, '\n')) {
    std::string_view line = trim(rawLine);
    size_t colon = line.find(": ");
    if (line.empty() || colon == std::string_view::npos || colon == 0) continue;
    PackageChange c;
    c.name = std::string(line.substr(0, colon));
    std::string_view rest = line.substr(colon + 2);
    // the size change, when there is one, is the last ", "-separated item
    size_t lastComma = rest.rfind(", ");
    std::string_view lastItem =
        lastComma == std::string_view::npos ? rest : rest.substr(lastComma + 2);
    if (auto d = parseDelta(lastItem)) {
      c.sizeDeltaKiB = d;
      rest = lastComma == std::string_view::npos ? std::string_view() : rest.substr(0, lastComma);
    }
    if (!rest.empty()) {
      size_t arrow = rest.find(kArrow);
      if (arrow == std::string_view::npos) continue;  // not a line we know
      c.before = parseVersions(rest.substr(0, arrow), c.added);
      c.after = parseVersions(rest.substr(arrow + kArrow.size()), c.removed);
    } else if (!c.sizeDeltaKiB) {
      continue;
    }
    if (c.sizeDeltaKiB) out.sizeDeltaKiB += *c.sizeDeltaKiB;
    out.changes.push_back(std::move(c));
  }
  return out;
}

std::string formatKiB(double kib) {
  const char* unit = "KiB";
  double v = kib;
  if (std::fabs(v) >= 1024 * 1024) {
    v /= 1024 * 1024;
    unit = "GiB";
  } else if (std::fabs(v) >= 1024) {
    v /= 1024;
    unit = "MiB";
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%+.1f %s", v, unit);
  return buf;
}

std::optional<ClosureDiff> NixClosureDiffer::diff(const std::string& oldPath,
                                                  const std::string& newPath, std::string* error) {
  {
    MutexLock lk(mu_);
    auto it = cache_.find({oldPath, newPath});
    if (it != cache_.end()) return it->second;
  }
  std::string text, why;
  if (!nix_.diffClosures(oldPath, newPath, text, &why)) {
    if (error) *error = why.empty() ? "nix store diff-closures failed" : why;
    return std::nullopt;
  }
  ClosureDiff d = parseDiffClosures(text);
  MutexLock lk(mu_);
  if (cache_.size() >= kMaxCached) cache_.clear();  // bounded; a miss only costs a nix call
  cache_[{oldPath, newPath}] = d;
  return d;
}

}  // namespace runner::report
