#include "runner/report/sender.h"

#include <algorithm>
#include <cmath>

#include "runner/core/error.h"

namespace runner::report {

using nlohmann::json;
using std::chrono::duration_cast;
using std::chrono::milliseconds;
using TimePoint = std::chrono::system_clock::time_point;

namespace {

int64_t millisOf(TimePoint t) { return duration_cast<milliseconds>(t.time_since_epoch()).count(); }

}  // namespace

milliseconds spacingFor(std::string_view forgeType) {
  return forgeType == "github" ? std::chrono::seconds(1) : milliseconds(0);
}

OutboxSender::OutboxSender(store::Database& db, Forges forges, const CommentRenderer& renderer,
                           Clock& clock, Logger& log, SenderOptions options)
    : outbox_(db),
      objects_(db),
      forges_(std::move(forges)),
      renderer_(renderer),
      clock_(clock),
      log_(log),
      options_(std::move(options)),
      random_(options_.seed ? options_.seed : std::random_device{}()) {}

OutboxSender::~OutboxSender() { stop(); }

milliseconds OutboxSender::backoff(int failures) {
  double base = static_cast<double>(options_.initialBackoff.count()) *
                std::pow(2.0, std::min(failures - 1, 30));
  base = std::min(base, static_cast<double>(options_.maxBackoff.count()));
  if (options_.jitter > 0) {
    std::uniform_real_distribution<double> spread(1.0 - options_.jitter, 1.0 + options_.jitter);
    base *= spread(random_);
  }
  return milliseconds(static_cast<int64_t>(std::max(base, 1.0)));
}

StepResult OutboxSender::step() {
  const TimePoint now = clock_.now();
  const int64_t nowMs = millisOf(now);
  if (!lastPrune_ || now - *lastPrune_ >= std::chrono::hours(1)) {
    lastPrune_ = now;
    if (int64_t n = outbox_.prune(nowMs - options_.keepSent.count()); n > 0)
      log_.debug("outbox: pruned " + std::to_string(n) + " sent rows");
  }

  // forges that must wait (back-off or pacing), and when the first of them may go again
  std::vector<std::string> waiting;
  std::optional<TimePoint> wakeAt;
  for (const auto& [name, state] : states_) {
    if (state.readyAt <= now) continue;
    waiting.push_back(name);
    if (!wakeAt || state.readyAt < *wakeAt) wakeAt = state.readyAt;
  }

  // one row a step (the caller loops): the oldest due row, claimed when runners share the outbox
  std::optional<store::OutboxRow> due;
  if (!options_.runnerId.empty()) {
    due = outbox_.claimDue(nowMs, options_.runnerId, waiting);
  } else if (auto rows = outbox_.due(nowMs, 1, waiting); !rows.empty()) {
    due = std::move(rows.front());
  }
  if (due) {
    const store::OutboxRow& row = *due;
    if (!forges_.count(row.forge) || !forges_.find(row.forge)->second) {
      outbox_.markFailed(row.id, "no forge named '" + row.forge + "' is configured", nowMs);
      log_.warn("outbox row " + std::to_string(row.id) + ": no forge named '" + row.forge + "'");
      return {StepResult::Kind::Failed, row.id, std::nullopt};
    }
    if (nowMs - row.createdAt > options_.giveUpAfter.count()) {
      std::string why = "gave up after " + std::to_string(row.attempts) + " attempts" +
                        (row.lastError.empty() ? "" : ": " + row.lastError);
      outbox_.markFailed(row.id, why, nowMs);
      log_.warn("outbox row " + std::to_string(row.id) + " (" + row.kind + " on " + row.repo +
                "): " + why);
      return {StepResult::Kind::Failed, row.id, std::nullopt};
    }
    return send(row, now);
  }

  if (auto next = outbox_.nextAttemptAt(waiting)) {
    TimePoint t{milliseconds(*next)};
    if (!wakeAt || t < *wakeAt) wakeAt = t;
  }
  return {StepResult::Kind::Idle, 0, wakeAt};
}

StepResult OutboxSender::send(const store::OutboxRow& row, TimePoint now) {
  Forge& forge = *forges_.find(row.forge)->second;
  ForgeState& state = states_[row.forge];
  auto spacing = options_.spacing.find(row.forge);
  state.readyAt = now + (spacing == options_.spacing.end() ? milliseconds(0) : spacing->second);

  Outcome out = deliver(forge, row);
  if (options_.answered) options_.answered(row.forge, out.result.httpStatus);
  const TimePoint done = clock_.now();  // waits the forge asks for count from its answer
  const int64_t doneMs = millisOf(done);
  const std::string what =
      row.kind + " " + std::to_string(row.id) + " on " + row.forge + ":" + row.repo;
  if (out.result.ok()) {
    state.failures = 0;
    outbox_.markSent(row.id, out.recorded.dump(), doneMs);
    log_.debug("outbox: sent " + what);
    return {StepResult::Kind::Sent, row.id, std::nullopt};
  }
  if (!out.result.retryable()) {
    outbox_.markFailed(row.id, out.result.message, doneMs);
    log_.warn("outbox: " + what + " failed for good: " + out.result.message);
    return {StepResult::Kind::Failed, row.id, std::nullopt};
  }
  ++state.failures;
  // The forge's wait never shortens the back-off: "Retry-After: 0" in an outage must not
  // turn the sender into a busy loop against it.
  milliseconds wait = backoff(state.failures);
  if (out.result.retryAfter)
    wait = std::max(wait, duration_cast<milliseconds>(*out.result.retryAfter));
  state.readyAt = std::max(state.readyAt, done + wait);
  outbox_.retryLater(row.id, out.result.message, millisOf(state.readyAt));
  log_.info("outbox: " + what + " will be retried in " + std::to_string(wait.count() / 1000) +
            "s (" + out.result.message + ")");
  return {StepResult::Kind::Retrying, row.id, state.readyAt};
}

OutboxSender::Outcome OutboxSender::deliver(Forge& forge, const store::OutboxRow& row) {
  try {
    if (row.kind == kStatusKind) {
      auto c = statusCallFrom(row.payload);
      return {forge.setStatus(row.repo, c.sha, c.status)};
    }
    if (row.kind == kCheckRunKind) {
      auto c = checkRunCallFrom(row.payload);
      if (auto id = objects_.find(row.forge, row.repo, c.key)) {
        CallResult r = forge.updateCheckRun(row.repo, std::stoll(*id), c.spec);
        if (r.httpStatus != 404) return {r, {{"id", std::stoll(*id)}}};
        objects_.forget(row.forge, row.repo, c.key);  // deleted on the forge: make it again
      }
      auto created = forge.createCheckRun(row.repo, c.spec);
      if (!created.ok()) return {created};
      objects_.remember(row.forge, row.repo, c.key, std::to_string(created.value));
      return {created, {{"id", created.value}}};
    }
    if (row.kind == kCommentKind) {
      auto c = commentCallFrom(row.payload);
      // the comment's id once known: edited at once, listed again only if it was deleted
      auto known = objects_.find(row.forge, row.repo, commentObjectKey(c.pr));
      const std::string text = renderer_.render(c.model);
      auto r = known ? forge.updateComment(row.repo, c.pr, std::stoll(*known), c.marker, text)
                     : forge.upsertComment(row.repo, c.pr, c.marker, text);
      if (!r.ok()) return {r};
      objects_.remember(row.forge, row.repo, commentObjectKey(c.pr), std::to_string(r.value.id));
      const char* change = r.value.change == CommentRef::Change::Created   ? "created"
                           : r.value.change == CommentRef::Change::Updated ? "updated"
                                                                           : "unchanged";
      return {r, {{"id", r.value.id}, {"url", r.value.url}, {"change", change}}};
    }
    if (row.kind == kReactionKind) {
      auto c = reactionCallFrom(row.payload);
      return {forge.addReaction(row.repo, c.commentId, c.reaction)};
    }
    if (row.kind == kReplyKind) {
      auto c = replyCallFrom(row.payload);
      auto r = forge.postComment(row.repo, c.number, c.body);
      if (!r.ok()) return {r};
      return {r, {{"id", r.value.id}, {"url", r.value.url}}};
    }
    return {CallResult::refused("unknown outbox row kind '" + row.kind + "'")};
  } catch (const InputError& e) {
    // a payload or template we cannot use: sending it again cannot help
    return {CallResult::refused(describe(e))};
  } catch (const std::invalid_argument&) {
    return {CallResult::refused("malformed forge object id for " + row.orderKey)};
  } catch (const std::out_of_range&) {
    return {CallResult::refused("malformed forge object id for " + row.orderKey)};
  }
}

std::vector<StepResult> OutboxSender::drain(int maxSteps) {
  std::vector<StepResult> out;
  for (int i = 0; i < maxSteps; ++i) {
    out.push_back(step());
    if (out.back().kind == StepResult::Kind::Idle) break;
  }
  return out;
}

void OutboxSender::start() {
  {
    MutexLock lk(mu_);
    stopping_ = false;
  }
  thread_ = std::thread([this] { loop(); });
}

void OutboxSender::stop() noexcept {
  {
    MutexLock lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void OutboxSender::wake() {
  {
    MutexLock lk(mu_);
    woken_ = true;
  }
  cv_.notify_all();
}

void OutboxSender::loop() noexcept {
  for (;;) {
    milliseconds wait = options_.idlePoll;
    try {
      StepResult r = step();
      if (r.kind != StepResult::Kind::Idle) {
        wait = milliseconds(0);
      } else if (r.wakeAt) {
        wait = std::clamp(duration_cast<milliseconds>(*r.wakeAt - clock_.now()), milliseconds(0),
                          options_.idlePoll);
      }
    } catch (const std::exception& e) {
      log_.error(std::string("outbox sender: ") + describe(e) + "; trying again in 1s");
      wait = std::chrono::seconds(1);
    } catch (...) {
      log_.error("outbox sender: unknown exception; trying again in 1s");
      wait = std::chrono::seconds(1);
    }
    MutexLock lk(mu_);
    if (wait.count() > 0)
      lk.waitFor(cv_, wait, [&]() REQUIRES(mu_) { return stopping_ || woken_; });
    if (stopping_) return;
    woken_ = false;
  }
}

}  // namespace runner::report
