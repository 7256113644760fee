// Delivers the outbox (store/outbox.h) through the Forge port: one thread per runner, one
// call at a time, oldest due row first.
//
//  * Ok: the row is sent; what the forge made (a check run's id, the comment's id) is
//    recorded in forge_objects, so the next row with the same key PATCHes it.
//  * Permanent (401, 403, 404, 422, refused before sending): the row is failed with the
//    forge's message and never sent again.
//  * Retryable (5xx, 429, rate limit, timeout): the row stays pending and its whole forge
//    waits an exponential back-off with jitter (initialBackoff · 2^(failures−1), at most
//    maxBackoff), or the retry-after / x-ratelimit-reset the forge asked for when that is
//    longer — so an outage costs one probe per back-off, not one failure per row. Rows older than
//    giveUpAfter are failed instead of retried.
//  * Pacing: calls to one forge start at least `spacing` apart (GitHub asks for ≥ 1 s
//    between mutating calls; spacingFor("github")).
//
// The outbox keeps at most one pending row per order key (the newest), so whatever order
// rows are sent in, an older state never follows a newer one for the same status. Nothing
// is in flight on disk: after a crash or restart, a row whose send was interrupted is still
// pending and is sent again (a status or comment update is idempotent; a check run whose
// create answer was lost may appear twice, and GitHub shows the newest).
//
// Drive it by hand (step(): tests with a manual clock) or with start()/stop() on its own
// thread, which sleeps until the next row is due, a wake() or `idlePoll`. Exceptions never
// leave the thread: a failing database is logged and retried after a second.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "runner/core/clock.h"
#include "runner/core/log.h"
#include "runner/core/thread_annotations.h"
#include "runner/report/calls.h"
#include "runner/report/comment.h"
#include "runner/store/database.h"
#include "runner/store/forge_objects.h"
#include "runner/store/outbox.h"

namespace runner::report {

struct SenderOptions {
  std::chrono::milliseconds initialBackoff = std::chrono::seconds(5);
  std::chrono::milliseconds maxBackoff = std::chrono::minutes(10);
  double jitter = 0.2;  // our own back-off varies by ± this fraction (a forge's wait does not)
  std::chrono::milliseconds giveUpAfter = std::chrono::hours(24);
  std::map<std::string, std::chrono::milliseconds, std::less<>> spacing;  // per forge name
  std::chrono::milliseconds idlePoll = std::chrono::seconds(5);     // start(): re-check this often
  std::chrono::milliseconds keepSent = std::chrono::hours(24 * 7);  // then prune sent rows
  uint32_t seed = 0;  // jitter's random seed; 0: from std::random_device
  // This runner's id (store/runners.h) when several runners share the database: rows are
  // claimed (Outbox::claimDue), so one runner at a time sends the rows of one order key.
  // Empty: this sender is the only one, and takes due rows unclaimed.
  std::string runnerId;
  // Told each forge's answer to a send: the forge's name and the HTTP status (0: no answer,
  // e.g. a timeout). For /metrics; called on the sender's thread, must be quick and not throw.
  std::function<void(const std::string& forge, int httpStatus)> answered;
};

// The pacing a forge type needs: "github" 1 s (secondary rate limits), others none.
std::chrono::milliseconds spacingFor(std::string_view forgeType);

struct StepResult {
  enum class Kind {
    Sent,      // `rowId` was delivered
    Failed,    // `rowId` failed for good (Permanent, unknown forge, gave up)
    Retrying,  // `rowId` failed and waits; its forge waits until `wakeAt`
    Idle,      // nothing could be sent now; `wakeAt`: when something will be (nullopt: nothing
               // pending)
  };
  Kind kind = Kind::Idle;
  int64_t rowId = 0;
  std::optional<std::chrono::system_clock::time_point> wakeAt;
};

class OutboxSender {
 public:
  // `db`, the Forge objects in `forges`, `renderer` (comments), `clock` and `log` must outlive
  // this object. `db` may be the scheduler's Database or another connection to the same file.
  OutboxSender(store::Database& db, Forges forges, const CommentRenderer& renderer, Clock& clock,
               Logger& log, SenderOptions options = {});
  ~OutboxSender();  // stop()
  OutboxSender(const OutboxSender&) = delete;
  OutboxSender& operator=(const OutboxSender&) = delete;

  // Sends at most one due row. Not thread-safe against itself: call it from one thread, and
  // not while start()ed. Throws StoreError when the outbox cannot be read or written.
  StepResult step();
  // step() until it returns Idle or `maxSteps` were taken; the results in order.
  std::vector<StepResult> drain(int maxSteps = 10000);

  // Runs step() on a thread of its own until stop(). REQUIRES: not started.
  void start();
  // Stops and joins the thread (a call in flight finishes first). Idempotent. Never throws.
  void stop() noexcept;
  // Rows were added: look now instead of at the next timer. Thread-safe, never blocks long.
  void wake();

 private:
  struct ForgeState {
    std::chrono::system_clock::time_point readyAt{};  // no call before this (back-off, pacing)
    int failures = 0;                                 // consecutive Retryable answers
  };
  struct Outcome {
    CallResult result;
    nlohmann::json recorded = nlohmann::json::object();
  };

  StepResult send(const store::OutboxRow& row, std::chrono::system_clock::time_point now);
  Outcome deliver(Forge& forge, const store::OutboxRow& row);
  std::chrono::milliseconds backoff(int failures);
  void loop() noexcept;

  store::Outbox outbox_;
  store::ForgeObjects objects_;
  Forges forges_;
  const CommentRenderer& renderer_;
  Clock& clock_;
  Logger& log_;
  SenderOptions options_;
  std::mt19937 random_;
  std::map<std::string, ForgeState, std::less<>> states_;  // used by step() only
  std::optional<std::chrono::system_clock::time_point> lastPrune_;

  Mutex mu_;
  std::condition_variable cv_;
  bool stopping_ GUARDED_BY(mu_) = false;
  bool woken_ GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace runner::report
