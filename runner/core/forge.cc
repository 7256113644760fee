#include "runner/core/forge.h"

#include <ctime>

#include <nlohmann/json.hpp>

#include "runner/core/text.h"

namespace runner {

// ---------------------------------------------------------------------------------------------
// Headers

namespace {
bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = char(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = char(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}
}  // namespace

Headers::Headers(std::initializer_list<std::pair<std::string, std::string>> fields)
    : fields_(fields) {}

void Headers::add(std::string name, std::string value) {
  fields_.emplace_back(std::move(name), std::move(value));
}

std::optional<std::string> Headers::get(std::string_view name) const {
  for (const auto& [n, v] : fields_)
    if (equalsIgnoreCase(n, name)) return v;
  return std::nullopt;
}

namespace {
class FunctionReceiver final : public WebhookReceiver {
 public:
  FunctionReceiver(std::function<SignatureCheck(const WebhookDelivery&)> verify,
                   std::function<ParseResult(const WebhookDelivery&)> parse)
      : verify_(std::move(verify)), parse_(std::move(parse)) {}
  SignatureCheck verify(const WebhookDelivery& d) const override { return verify_(d); }
  ParseResult parse(const WebhookDelivery& d) const override { return parse_(d); }

 private:
  const std::function<SignatureCheck(const WebhookDelivery&)> verify_;
  const std::function<ParseResult(const WebhookDelivery&)> parse_;
};
}  // namespace

std::unique_ptr<WebhookReceiver> makeWebhookReceiver(
    std::function<SignatureCheck(const WebhookDelivery&)> verify,
    std::function<ParseResult(const WebhookDelivery&)> parse) {
  return std::make_unique<FunctionReceiver>(std::move(verify), std::move(parse));
}

// ---------------------------------------------------------------------------------------------
// Comment commands

namespace {

bool isHostChar(char c, bool first) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')
    return true;
  return !first && (c == '-' || c == '.');
}

// User text echoed in a `problem`: printable ASCII only, short.
std::string quoteForProblem(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 40)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (s.size() > 40) out += "...";
  return "'" + out + "'";
}

std::vector<std::string> commandTokens(std::string_view s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == ' ' || c == '\t' || c == ',' || c == '\r') {
      if (!cur.empty()) out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

}  // namespace

bool isHostName(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  for (size_t i = 0; i < s.size(); ++i)
    if (!isHostChar(s[i], i == 0)) return false;
  return true;
}

namespace {

// `body` with every HTML comment (<!-- … -->, across lines; an unterminated one hides the
// rest) replaced by a space: a reader of the rendered comment never sees its text.
std::string withoutHtmlComments(std::string_view body) {
  std::string out;
  for (size_t pos = 0; pos < body.size();) {
    size_t open = body.find("<!--", pos);
    if (open == std::string_view::npos) {
      out.append(body.substr(pos));
      break;
    }
    out.append(body.substr(pos, open - pos));
    size_t close = body.find("-->", open + 4);
    if (close == std::string_view::npos) break;
    out += ' ';
    pos = close + 3;
  }
  return out;
}

// Leading spaces of a line (a tab counts as four, as Markdown's indentation does).
size_t indentOf(std::string_view line) {
  size_t n = 0;
  for (char c : line) {
    if (c == ' ')
      ++n;
    else if (c == '\t')
      n += 4;
    else
      break;
  }
  return n;
}

}  // namespace

CommentCommand parseCommentCommand(std::string_view body) {
  static constexpr std::string_view kPrefix = "/switchyard";
  const std::string visible = withoutHtmlComments(body);
  bool inFence = false;
  for (const auto& rawLine : split(visible, '\n')) {
    const size_t indent = indentOf(rawLine);
    std::string_view line = trim(rawLine);
    if (indent < 4 && (startsWith(line, "```") || startsWith(line, "~~~"))) {
      inFence = !inFence;
      continue;
    }
    // Only text a reader sees as a paragraph counts: not code (fenced, or indented by four
    // spaces), not a quote of someone else's words.
    if (inFence || indent >= 4 || startsWith(line, ">") || !startsWith(line, kPrefix)) continue;
    std::string_view rest = line.substr(kPrefix.size());
    if (!rest.empty() && rest[0] != ' ' && rest[0] != '\t') continue;  // "/switchyardx"

    CommentCommand cmd;
    auto tokens = commandTokens(rest);
    if (tokens.empty()) {
      cmd.kind = CommentCommand::Kind::Invalid;
      cmd.problem = "no command after /switchyard";
      return cmd;
    }
    std::string name = toLower(tokens[0]);
    if (name != "rerun" && name != "approve") {
      cmd.kind = CommentCommand::Kind::Invalid;
      cmd.problem = "unknown command " + quoteForProblem(tokens[0]);
      return cmd;
    }
    cmd.command = name;
    if (name == "approve" && tokens.size() > 1) {
      cmd.kind = CommentCommand::Kind::Invalid;
      cmd.problem = "approve takes no host names (it approves the pull request's head commit)";
      return cmd;
    }
    for (size_t i = 1; i < tokens.size(); ++i) {
      if (!isHostName(tokens[i])) {
        cmd.kind = CommentCommand::Kind::Invalid;
        cmd.problem = "invalid host name " + quoteForProblem(tokens[i]);
        cmd.hosts.clear();
        return cmd;
      }
      bool seen = false;
      for (const auto& h : cmd.hosts) seen = seen || h == tokens[i];
      if (!seen) cmd.hosts.push_back(tokens[i]);
    }
    if (cmd.hosts.size() > 50) {
      cmd.kind = CommentCommand::Kind::Invalid;
      cmd.problem = "too many hosts (at most 50)";
      cmd.hosts.clear();
      return cmd;
    }
    cmd.kind = CommentCommand::Kind::Command;
    return cmd;
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// Call results

const char* toString(CallStatus s) {
  switch (s) {
    case CallStatus::Ok:
      return "ok";
    case CallStatus::Retryable:
      return "retryable";
    case CallStatus::Permanent:
      return "permanent";
  }
  return "?";
}

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

// ---------------------------------------------------------------------------------------------
// Value names

const char* toString(StatusState s) {
  switch (s) {
    case StatusState::Pending:
      return "pending";
    case StatusState::Success:
      return "success";
    case StatusState::Failure:
      return "failure";
    case StatusState::Error:
      return "error";
  }
  return "?";
}

const char* toString(Reaction r) {
  switch (r) {
    case Reaction::ThumbsUp:
      return "+1";
    case Reaction::ThumbsDown:
      return "-1";
    case Reaction::Laugh:
      return "laugh";
    case Reaction::Confused:
      return "confused";
    case Reaction::Heart:
      return "heart";
    case Reaction::Hooray:
      return "hooray";
    case Reaction::Rocket:
      return "rocket";
    case Reaction::Eyes:
      return "eyes";
  }
  return "?";
}

const char* toString(CheckStatus s) {
  switch (s) {
    case CheckStatus::Queued:
      return "queued";
    case CheckStatus::InProgress:
      return "in_progress";
    case CheckStatus::Completed:
      return "completed";
  }
  return "?";
}

const char* toString(CheckConclusion c) {
  switch (c) {
    case CheckConclusion::ActionRequired:
      return "action_required";
    case CheckConclusion::Cancelled:
      return "cancelled";
    case CheckConclusion::Failure:
      return "failure";
    case CheckConclusion::Neutral:
      return "neutral";
    case CheckConclusion::Success:
      return "success";
    case CheckConclusion::Skipped:
      return "skipped";
    case CheckConclusion::TimedOut:
      return "timed_out";
  }
  return "?";
}

// ---------------------------------------------------------------------------------------------
// Helpers

std::optional<std::pair<std::string, std::string>> splitRepo(std::string_view repo) {
  size_t slash = repo.find('/');
  if (slash == std::string_view::npos || repo.find('/', slash + 1) != std::string_view::npos)
    return std::nullopt;
  std::string owner(repo.substr(0, slash)), name(repo.substr(slash + 1));
  for (const auto& part : {owner, name})
    if (part.empty() || part == "." || part == "..") return std::nullopt;
  return std::make_pair(owner, name);
}

bool looksLikeSha(std::string_view s) {
  if (s.size() < 7 || s.size() > 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) return false;
  return true;
}

bool isCommitId(std::string_view s) {
  if (s.size() != 40 && s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::optional<std::string> refNameProblem(std::string_view ref) {
  if (!startsWith(ref, "refs/")) return "it does not start with refs/";
  if (ref.size() > 1024) return "it is longer than 1024 bytes";
  if (ref.find("..") != std::string_view::npos) return "it contains \"..\"";
  if (ref.find("@{") != std::string_view::npos) return "it contains \"@{\"";
  for (unsigned char c : ref)
    if (c < 0x20 || c == 0x7f || c == ' ' || c == '~' || c == '^' || c == ':' || c == '?' ||
        c == '*' || c == '[' || c == '\\')
      return "it contains a character git does not allow in ref names";
  for (const auto& part : split(ref, '/')) {
    if (part.empty()) return "it has an empty part";
    if (part[0] == '.') return "a part starts with '.'";
    if (endsWith(part, ".lock")) return "a part ends with .lock";
  }
  if (ref.back() == '.') return "it ends with '.'";
  return std::nullopt;
}

std::string urlEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out += char(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

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

const nlohmann::json* jsonFind(const nlohmann::json& j,
                               std::initializer_list<std::string_view> path) {
  const nlohmann::json* cur = &j;
  for (std::string_view key : path) {
    if (!cur->is_object()) return nullptr;
    auto it = cur->find(key);
    if (it == cur->end()) return nullptr;
    cur = &*it;
  }
  return cur;
}

std::string jsonString(const nlohmann::json& j, std::initializer_list<std::string_view> path) {
  const auto* v = jsonFind(j, path);
  return v && v->is_string() ? v->get<std::string>() : std::string();
}

int64_t jsonInt(const nlohmann::json& j, std::initializer_list<std::string_view> path) {
  const auto* v = jsonFind(j, path);
  return v && v->is_number_integer() ? v->get<int64_t>() : 0;
}

bool jsonBool(const nlohmann::json& j, std::initializer_list<std::string_view> path) {
  const auto* v = jsonFind(j, path);
  return v && v->is_boolean() && v->get<bool>();
}

std::string truncateChars(std::string_view s, size_t maxChars) {
  auto isLead = [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; };
  size_t chars = 0;
  for (char c : s) chars += isLead(c);
  if (chars <= maxChars) return std::string(s);
  if (maxChars == 0) return std::string();
  // keep maxChars - 1 code points, then the ellipsis
  size_t kept = 0, cut = 0;
  for (; cut < s.size(); ++cut) {
    if (isLead(s[cut])) {
      if (kept == maxChars - 1) break;
      ++kept;
    }
  }
  return std::string(s.substr(0, cut)) + "\xe2\x80\xa6";
}

}  // namespace runner
