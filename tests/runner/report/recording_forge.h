// A hand-written Forge (STYLE.md P9) for report tests that need no HTTP: records every call
// as a line ("status <context>=<state>:<description>", "check create <name>", "comment <pr>",
// …) and answers Ok, with check run and comment ids counting up.
#pragma once

#include <mutex>
#include <string>
#include <vector>

#include "runner/core/forge.h"

namespace tests::report {

class RecordingForge final : public runner::Forge {
 public:
  explicit RecordingForge(bool checkRuns = false, size_t maxDescription = 0)
      : caps_{checkRuns, maxDescription} {}

  runner::ForgeCapabilities capabilities() const override { return caps_; }
  runner::CallResult setStatus(const std::string&, const std::string&,
                               const runner::CommitStatus& s) override {
    record("status " + s.context + "=" + toString(s.state) + ":" + s.description);
    return runner::CallResult::success(201);
  }
  runner::ForgeResult<runner::CommentRef> upsertComment(const std::string&, int64_t pr,
                                                        const std::string&,
                                                        const std::string& body) override {
    record("comment " + std::to_string(pr));
    std::scoped_lock lk(mu_);
    lastComment = body;
    return {runner::CallResult::success(200), {500, "", runner::CommentRef::Change::Updated}};
  }
  runner::ForgeResult<runner::CommentRef> postComment(const std::string&, int64_t n,
                                                      const std::string& body) override {
    record("reply " + std::to_string(n) + ": " + body);
    return {runner::CallResult::success(201), {501, "", runner::CommentRef::Change::Created}};
  }
  runner::CallResult addReaction(const std::string&, int64_t id, runner::Reaction r) override {
    record("reaction " + std::to_string(id) + " " + toString(r));
    return runner::CallResult::success(201);
  }
  runner::ForgeResult<runner::UserPermission> userPermission(const std::string&,
                                                             const std::string&) override {
    return {runner::CallResult::success(200), {"write", true}};
  }
  runner::ForgeResult<runner::PullRequestInfo> pullRequest(const std::string&, int64_t) override {
    return runner::CallResult::refused("not in this fake");
  }
  runner::ForgeResult<int64_t> createCheckRun(const std::string&,
                                              const runner::CheckRunSpec& s) override {
    std::scoped_lock lk(mu_);
    calls.push_back("check create " + s.name + " " + toString(s.status));
    return {runner::CallResult::success(201), ++nextId_};
  }
  runner::CallResult updateCheckRun(const std::string&, int64_t id,
                                    const runner::CheckRunSpec& s) override {
    record("check update " + std::to_string(id) + " " + s.name + " " +
           (s.conclusion ? toString(*s.conclusion) : toString(s.status)));
    return runner::CallResult::success(200);
  }

  std::vector<std::string> taken() {
    std::scoped_lock lk(mu_);
    return calls;
  }
  std::vector<std::string> calls;  // GUARDED_BY(mu_)
  std::string lastComment;         // GUARDED_BY(mu_)

 private:
  void record(std::string line) {
    std::scoped_lock lk(mu_);
    calls.push_back(std::move(line));
  }
  runner::ForgeCapabilities caps_;
  std::mutex mu_;
  int64_t nextId_ = 100;  // GUARDED_BY(mu_)
};

}  // namespace tests::report
