#include "integrations/common/rest.h"

#include <ctime>

#include <nlohmann/json.hpp>

#include "runner/core/text.h"

namespace runner {

namespace {

// The forge's own words from an error body: GitHub and Gitea both answer
// {"message": "...", "errors": [...]}; anything else (a proxy's HTML page) gives its start.
std::string forgeMessage(std::string_view body) {
  auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  std::string msg;
  if (j.is_object()) {
    if (auto m = j.find("message"); m != j.end() && m->is_string()) msg = m->get<std::string>();
    if (auto e = j.find("errors"); e != j.end() && e->is_array()) {
      for (const auto& item : *e) {
        std::string part;
        if (item.is_string()) {
          part = item.get<std::string>();
        } else if (item.is_object()) {
          if (item.contains("message") && item["message"].is_string()) {
            part = item["message"].get<std::string>();
          } else {
            for (const char* k : {"resource", "field", "code"})
              if (item.contains(k) && item[k].is_string())
                part += (part.empty() ? "" : " ") + item[k].get<std::string>();
          }
        }
        if (!part.empty()) msg += (msg.empty() ? "" : ": ") + part;
      }
    }
  } else {
    std::string_view t = trim(body);
    msg = std::string(t.substr(0, t.find('\n')));
  }
  // keep it one short, printable line
  for (char& c : msg)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  return truncateChars(msg, 300);
}

bool parseInt64(std::string_view s, int64_t& out) {
  s = trim(s);
  if (s.empty() || s.size() > 18) return false;
  bool neg = s[0] == '-';
  if (neg) s.remove_prefix(1);
  if (s.empty()) return false;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  out = neg ? -v : v;
  return true;
}

// retry-after is delta-seconds or an IMF-fixdate (RFC 9110 §10.2.3).
std::optional<std::chrono::seconds> parseRetryAfter(std::string_view v,
                                                    std::chrono::system_clock::time_point now) {
  v = trim(v);
  if (v.empty()) return std::nullopt;
  int64_t secs = 0;
  if (parseInt64(v, secs)) return std::chrono::seconds(std::max<int64_t>(secs, 0));
  std::tm tm{};
  std::string text(v);
  const char* end = strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (!end || *end) return std::nullopt;
  auto at = std::chrono::system_clock::from_time_t(timegm(&tm));
  auto wait = std::chrono::duration_cast<std::chrono::seconds>(at - now);
  return std::max(wait, std::chrono::seconds(0));
}

bool mentionsRateLimit(std::string_view message) {
  return toLower(message).find("rate limit") != std::string::npos;
}

}  // namespace

CallResult classifyResponse(const HttpResponse& r, std::chrono::system_clock::time_point now) {
  if (r.ok()) return CallResult::success(r.status);
  CallResult out;
  out.httpStatus = r.status;
  if (r.status == 0) {
    out.status = CallStatus::Retryable;
    out.message = "no response: " + (r.error.empty() ? std::string("unknown error") : r.error);
    return out;
  }
  std::string detail = forgeMessage(r.body);
  out.message = "HTTP " + std::to_string(r.status) + (detail.empty() ? "" : ": " + detail);
  if (r.status >= 300 && r.status < 400 && !r.header("location").empty())
    out.message += " (moved to " + r.header("location") + ")";

  const bool limited = r.status == 403 || r.status == 429;
  const bool serverSide = r.status == 408 || r.status >= 500;
  if (limited || serverSide) {
    if (auto wait = parseRetryAfter(r.header("retry-after"), now)) {
      out.status = CallStatus::Retryable;
      // "0" or a date already past names no wait: leave it to the caller's back-off rather
      // than retrying at once, again and again.
      if (*wait > std::chrono::seconds(0)) out.retryAfter = *wait;
      return out;
    }
  }
  if (limited && trim(r.header("x-ratelimit-remaining")) == "0") {
    out.status = CallStatus::Retryable;
    int64_t reset = 0;
    if (parseInt64(r.header("x-ratelimit-reset"), reset)) {
      int64_t nowSecs =
          std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
      out.retryAfter = std::chrono::seconds(std::max<int64_t>(reset - nowSecs, 1));
    } else {
      out.retryAfter = std::chrono::seconds(60);
    }
    return out;
  }
  if (r.status == 429 || (r.status == 403 && mentionsRateLimit(detail))) {
    out.status = CallStatus::Retryable;
    out.retryAfter = std::chrono::seconds(60);
    return out;
  }
  out.status = serverSide ? CallStatus::Retryable : CallStatus::Permanent;
  return out;
}

std::string urlEncode(std::string_view s) { return percentEncode(s); }

std::optional<std::string> urlDecode(std::string_view s, bool plusIsSpace) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      std::string byte;
      if (i + 2 >= s.size() || !fromHex(s.substr(i + 1, 2), byte)) return std::nullopt;
      out += byte;
      i += 2;
    } else if (c == '+' && plusIsSpace) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::optional<std::string> formValue(std::string_view body, std::string_view name) {
  for (const auto& pair : split(body, '&')) {
    size_t eq = pair.find('=');
    auto key = urlDecode(std::string_view(pair).substr(0, eq), true);
    if (!key || *key != name) continue;
    if (eq == std::string::npos) return std::string();
    return urlDecode(std::string_view(pair).substr(eq + 1), true);
  }
  return std::nullopt;
}

PullRequestInfo pullRequestFromJson(const nlohmann::json& pr, const std::string& repo) {
  PullRequestInfo info;
  info.number = jsonInt(pr, {"number"});
  info.state = jsonString(pr, {"state"});
  info.merged = jsonBool(pr, {"merged"});
  info.headSha = jsonString(pr, {"head", "sha"});
  info.headRef = jsonString(pr, {"head", "ref"});
  info.baseRef = jsonString(pr, {"base", "ref"});
  info.baseSha = jsonString(pr, {"base", "sha"});
  info.baseRepo = jsonString(pr, {"base", "repo", "full_name"});
  if (info.baseRepo.empty()) info.baseRepo = repo;
  info.headRepo = jsonString(pr, {"head", "repo", "full_name"});  // null: the fork is gone
  info.headCloneUrl = jsonString(pr, {"head", "repo", "clone_url"});
  info.fromFork = info.headRepo.empty() || info.headRepo != info.baseRepo;
  return info;
}

std::optional<std::pair<CommentRef, std::string>> findMarkedComment(const nlohmann::json& list,
                                                                    std::string_view marker,
                                                                    std::string_view author) {
  if (!list.is_array() || author.empty()) return std::nullopt;
  for (const auto& c : list) {
    std::string body = jsonString(c, {"body"});
    if (!startsWith(body, marker)) continue;
    if (toLower(jsonString(c, {"user", "login"})) != toLower(author)) continue;
    CommentRef ref{jsonInt(c, {"id"}), jsonString(c, {"html_url"}), CommentRef::Change::Unchanged};
    return std::make_pair(ref, std::move(body));
  }
  return std::nullopt;
}

std::optional<std::string> nextPageUrl(std::string_view linkHeader) {
  for (const auto& part : split(linkHeader, ',')) {
    std::string_view p = trim(part);
    size_t open = p.find('<'), close = p.find('>');
    if (open != 0 || close == std::string_view::npos) continue;
    std::string params = toLower(p.substr(close + 1));
    for (const auto& param : split(params, ';')) {
      std::string_view kv = trim(param);
      if (kv == "rel=\"next\"" || kv == "rel=next")
        return std::string(p.substr(open + 1, close - open - 1));
    }
  }
  return std::nullopt;
}

}  // namespace runner
