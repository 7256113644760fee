#include "runner/core/forge.h"

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

const char* toString(CheckAnnotation::Level l) {
  switch (l) {
    case CheckAnnotation::Level::Notice:
      return "notice";
    case CheckAnnotation::Level::Warning:
      return "warning";
    case CheckAnnotation::Level::Failure:
      return "failure";
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
