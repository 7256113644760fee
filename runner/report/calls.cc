#include "runner/report/calls.h"

#include "runner/core/error.h"

namespace runner::report {

using nlohmann::json;

namespace {

int64_t toMillis(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
std::chrono::system_clock::time_point fromMillis(int64_t ms) {
  return std::chrono::system_clock::time_point(std::chrono::milliseconds(ms));
}

StatusState statusStateFrom(const std::string& s) {
  if (s == "pending") return StatusState::Pending;
  if (s == "success") return StatusState::Success;
  if (s == "failure") return StatusState::Failure;
  if (s == "error") return StatusState::Error;
  throw InputError("unknown status state '" + s + "'");
}

CheckStatus checkStatusFrom(const std::string& s) {
  if (s == "queued") return CheckStatus::Queued;
  if (s == "in_progress") return CheckStatus::InProgress;
  if (s == "completed") return CheckStatus::Completed;
  throw InputError("unknown check run status '" + s + "'");
}

CheckConclusion conclusionFrom(const std::string& s) {
  for (auto c : {CheckConclusion::ActionRequired, CheckConclusion::Cancelled,
                 CheckConclusion::Failure, CheckConclusion::Neutral, CheckConclusion::Success,
                 CheckConclusion::Skipped, CheckConclusion::TimedOut})
    if (s == toString(c)) return c;
  throw InputError("unknown check run conclusion '" + s + "'");
}

Reaction reactionFrom(const std::string& s) {
  for (auto r : {Reaction::ThumbsUp, Reaction::ThumbsDown, Reaction::Laugh, Reaction::Confused,
                 Reaction::Heart, Reaction::Hooray, Reaction::Rocket, Reaction::Eyes})
    if (s == toString(r)) return r;
  throw InputError("unknown reaction '" + s + "'");
}

json specJson(const CheckRunSpec& s) {
  json j = {{"name", s.name},
            {"head_sha", s.headSha},
            {"status", toString(s.status)},
            {"details_url", s.detailsUrl},
            {"external_id", s.externalId},
            {"title", s.title},
            {"summary", s.summary},
            {"text", s.text}};
  j["conclusion"] = s.conclusion ? json(toString(*s.conclusion)) : json(nullptr);
  j["started_at"] = s.startedAt ? json(toMillis(*s.startedAt)) : json(nullptr);
  j["completed_at"] = s.completedAt ? json(toMillis(*s.completedAt)) : json(nullptr);
  json actions = json::array();
  for (const auto& a : s.actions)
    actions.push_back(
        {{"label", a.label}, {"description", a.description}, {"identifier", a.identifier}});
  j["actions"] = std::move(actions);
  if (!s.annotations.empty()) {
    json notes = json::array();
    for (const auto& a : s.annotations)
      notes.push_back({{"path", a.path},
                       {"start_line", a.startLine},
                       {"end_line", a.endLine},
                       {"level", toString(a.level)},
                       {"title", a.title},
                       {"message", a.message},
                       {"raw_details", a.rawDetails}});
    j["annotations"] = std::move(notes);
  }
  return j;
}

CheckAnnotation::Level annotationLevelFrom(const std::string& s) {
  for (auto l : {CheckAnnotation::Level::Notice, CheckAnnotation::Level::Warning,
                 CheckAnnotation::Level::Failure})
    if (s == toString(l)) return l;
  throw InputError("unknown annotation level '" + s + "'");
}

CheckRunSpec specFrom(const json& j) {
  CheckRunSpec s;
  s.name = j.at("name").get<std::string>();
  s.headSha = j.at("head_sha").get<std::string>();
  s.status = checkStatusFrom(j.at("status").get<std::string>());
  if (!j.at("conclusion").is_null()) s.conclusion = conclusionFrom(j["conclusion"]);
  s.detailsUrl = j.at("details_url").get<std::string>();
  s.externalId = j.at("external_id").get<std::string>();
  if (!j.at("started_at").is_null()) s.startedAt = fromMillis(j["started_at"].get<int64_t>());
  if (!j.at("completed_at").is_null()) s.completedAt = fromMillis(j["completed_at"].get<int64_t>());
  s.title = j.at("title").get<std::string>();
  s.summary = j.at("summary").get<std::string>();
  s.text = j.at("text").get<std::string>();
  for (const auto& a : j.at("actions"))
    s.actions.push_back({a.at("label").get<std::string>(), a.at("description").get<std::string>(),
                         a.at("identifier").get<std::string>()});
  if (auto notes = j.find("annotations"); notes != j.end())  // rows written before have none
    for (const auto& a : *notes)
      s.annotations.push_back({a.at("path").get<std::string>(), a.at("start_line").get<int>(),
                               a.at("end_line").get<int>(),
                               annotationLevelFrom(a.at("level").get<std::string>()),
                               a.at("title").get<std::string>(), a.at("message").get<std::string>(),
                               a.at("raw_details").get<std::string>()});
  return s;
}

template <class F>
auto parsePayload(const std::string& payload, const char* kind, F&& read) {
  json j = json::parse(payload, nullptr, false);
  if (!j.is_object()) throw InputError(std::string(kind) + " payload is not a JSON object");
  try {
    return read(j);
  } catch (const json::exception& e) {
    throw InputError(std::string(kind) + " payload: " + describe(e));
  }
}

}  // namespace

std::string commentObjectKey(int64_t prNumber) { return "comment:pr:" + std::to_string(prNumber); }

store::NewOutboxRow toRow(const std::string& forge, const std::string& repo, const StatusCall& c) {
  json j = {{"run", c.run},
            {"sha", c.sha},
            {"status",
             {{"state", toString(c.status.state)},
              {"context", c.status.context},
              {"description", c.status.description},
              {"target_url", c.status.targetUrl}}}};
  return {forge, repo, kStatusKind, "status:" + c.sha + ":" + c.status.context, j.dump()};
}

store::NewOutboxRow toRow(const std::string& forge, const std::string& repo,
                          const CheckRunCall& c) {
  json j = {{"run", c.run}, {"key", c.key}, {"spec", specJson(c.spec)}};
  return {forge, repo, kCheckRunKind, c.key, j.dump()};
}

store::NewOutboxRow toRow(const std::string& forge, const std::string& repo, const CommentCall& c) {
  json j = {{"run", c.run}, {"pr", c.pr}, {"marker", c.marker}, {"model", c.model}};
  return {forge, repo, kCommentKind, commentObjectKey(c.pr), j.dump()};
}

store::NewOutboxRow toRow(const std::string& forge, const std::string& repo,
                          const ReactionCall& c) {
  json j = {{"comment_id", c.commentId}, {"reaction", toString(c.reaction)}};
  return {forge, repo, kReactionKind,
          "reaction:" + std::to_string(c.commentId) + ":" + toString(c.reaction), j.dump()};
}

store::NewOutboxRow toRow(const std::string& forge, const std::string& repo, const ReplyCall& c) {
  json j = {{"number", c.number}, {"in_reply_to", c.inReplyTo}, {"body", c.body}};
  return {forge, repo, kReplyKind,
          "reply:" + std::to_string(c.number) + ":" + std::to_string(c.inReplyTo), j.dump()};
}

StatusCall statusCallFrom(const std::string& payload) {
  return parsePayload(payload, kStatusKind, [](const json& j) {
    StatusCall c;
    c.run = j.at("run").get<int64_t>();
    c.sha = j.at("sha").get<std::string>();
    const json& s = j.at("status");
    c.status.state = statusStateFrom(s.at("state").get<std::string>());
    c.status.context = s.at("context").get<std::string>();
    c.status.description = s.at("description").get<std::string>();
    c.status.targetUrl = s.at("target_url").get<std::string>();
    return c;
  });
}

CheckRunCall checkRunCallFrom(const std::string& payload) {
  return parsePayload(payload, kCheckRunKind, [](const json& j) {
    CheckRunCall c;
    c.run = j.at("run").get<int64_t>();
    c.key = j.at("key").get<std::string>();
    c.spec = specFrom(j.at("spec"));
    return c;
  });
}

CommentCall commentCallFrom(const std::string& payload) {
  return parsePayload(payload, kCommentKind, [](const json& j) {
    CommentCall c;
    c.run = j.at("run").get<int64_t>();
    c.pr = j.at("pr").get<int64_t>();
    c.marker = j.at("marker").get<std::string>();
    c.model = j.at("model");
    return c;
  });
}

ReactionCall reactionCallFrom(const std::string& payload) {
  return parsePayload(payload, kReactionKind, [](const json& j) {
    ReactionCall c;
    c.commentId = j.at("comment_id").get<int64_t>();
    c.reaction = reactionFrom(j.at("reaction").get<std::string>());
    return c;
  });
}

ReplyCall replyCallFrom(const std::string& payload) {
  return parsePayload(payload, kReplyKind, [](const json& j) {
    ReplyCall c;
    c.number = j.at("number").get<int64_t>();
    c.inReplyTo = j.value("in_reply_to", int64_t{0});
    c.body = j.at("body").get<std::string>();
    return c;
  });
}

bool admitNewer(const store::NewOutboxRow& row, const store::OutboxRow& newest) {
  json mine = json::parse(row.payload, nullptr, false);
  json theirs = json::parse(newest.payload, nullptr, false);
  if (mine.is_object() && theirs.is_object() && mine.contains("run") && theirs.contains("run") &&
      theirs["run"].is_number_integer() && mine["run"].is_number_integer() &&
      theirs["run"].get<int64_t>() > mine["run"].get<int64_t>())
    return false;  // a newer run has spoken for this key
  bool live =
      newest.state == store::OutboxState::Pending || newest.state == store::OutboxState::Sent;
  return !(live && newest.payload == row.payload);
}

bool enqueueCall(store::Outbox& outbox, const store::NewOutboxRow& row, int64_t nowMs) {
  return outbox
      .enqueue(row, nowMs, [&](const store::OutboxRow& newest) { return admitNewer(row, newest); })
      .id.has_value();
}

}  // namespace runner::report
