// The forge calls the reporter and the gateway queue, as outbox rows (store/outbox.h): one
// kind per Forge method, each a JSON payload that holds the whole desired state — a status,
// a check run as it should look now, the PR comment's model — so the newest row for an
// order key is all the sender needs and older ones can be dropped.
//
//   kind        order key                               payload
//   status      "status:<sha>:<context>"
//   {"run","sha","status":{state,context,description,target_url}} check_run
//   "check_run:<run>:<stage>/<host>" {"run","key","spec":{name,head_sha,status,conclusion,…}}
//   comment     "comment:pr:<number>"                   {"run","pr","marker","model":{…}} (rendered
//   when sent) reaction    "reaction:<comment id>:<content>"       {"comment_id","reaction"} reply
//   "reply:<number>:<comment id>"           {"number","body"}
//
// `run` orders rows across runs of the same commit: a row from an older run never replaces
// one from a newer run (a late update of a superseded run cannot undo a re-run's status).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "runner/core/forge.h"
#include "runner/store/outbox.h"

namespace runner::report {

// Configured forges by name (ForgeConfig::name). The Forge objects belong to the caller and
// must outlive everything given this map.
using Forges = std::map<std::string, Forge*, std::less<>>;

inline constexpr const char* kStatusKind = "status";
inline constexpr const char* kCheckRunKind = "check_run";
inline constexpr const char* kCommentKind = "comment";
inline constexpr const char* kReactionKind = "reaction";
inline constexpr const char* kReplyKind = "reply";

// The hidden first line of the one comment per pull request.
inline constexpr const char* kCommentMarker = "<!-- switchyard:plan -->";

// forge_objects keys.
std::string commentObjectKey(int64_t prNumber);  // "comment:pr:<n>"

struct StatusCall {
  int64_t run = 0;
  std::string sha;
  CommitStatus status;
};
struct CheckRunCall {
  int64_t run = 0;
  std::string key;  // forge_objects key and order key: "check_run:<run>:<stage>/<host>"
  CheckRunSpec spec;
};
struct CommentCall {
  int64_t run = 0;
  int64_t pr = 0;
  std::string marker = kCommentMarker;
  nlohmann::json model;  // comment.h: commentModel()
};
struct ReactionCall {
  int64_t commentId = 0;
  Reaction reaction = Reaction::ThumbsUp;
};
struct ReplyCall {
  int64_t number = 0;     // issue / pull request
  int64_t inReplyTo = 0;  // the comment answered (dedupes a redelivered command)
  std::string body;
};

store::NewOutboxRow toRow(const std::string& forge, const std::string& repo, const StatusCall& c);
store::NewOutboxRow toRow(const std::string& forge, const std::string& repo, const CheckRunCall& c);
store::NewOutboxRow toRow(const std::string& forge, const std::string& repo, const CommentCall& c);
store::NewOutboxRow toRow(const std::string& forge, const std::string& repo, const ReactionCall& c);
store::NewOutboxRow toRow(const std::string& forge, const std::string& repo, const ReplyCall& c);

// Reading payloads back; throw InputError when the payload is not the kind's shape.
StatusCall statusCallFrom(const std::string& payload);
CheckRunCall checkRunCallFrom(const std::string& payload);
CommentCall commentCallFrom(const std::string& payload);
ReactionCall reactionCallFrom(const std::string& payload);
ReplyCall replyCallFrom(const std::string& payload);

// The admission rule for a new row given the newest row with its key: drop it when that row
// comes from a newer run, or is pending or sent with the same payload (the forge already
// shows, or is about to show, exactly this).
bool admitNewer(const store::NewOutboxRow& row, const store::OutboxRow& newest);

// Enqueues `row` with admitNewer; returns true when a row was added.
bool enqueueCall(store::Outbox& outbox, const store::NewOutboxRow& row, int64_t nowMs);

}  // namespace runner::report
