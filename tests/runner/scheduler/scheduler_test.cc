// The scheduler's rules with real SQLite and real git mirrors (an upstream repository in a
// temp dir, fetched with libgit2), and fake stages that record what they were asked:
// pushes to deploy branches deploy, other branches do not; pull requests (forks too) only
// build; newer pushes supersede queued runs and inherit their base; closed PRs supersede
// their queued runs; re-runs build exactly the named hosts; comment commands need the
// permission hook; restart recovery marks in-flight hosts interrupted and re-checks hosts
// that were being deployed.
#include "runner/scheduler/scheduler.h"

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "runner/core/error.h"
#include "runner/core/text.h"
#include "runner/os/files.h"
#include "runner/store/database.h"
#include "runner/store/deliveries.h"
#include "runner/store/runs.h"
#include "tests/support/temp_git_repo.h"
#include "tests/support/wait.h"

namespace fs = std::filesystem;
using namespace runner;
using runner::scheduler::Scheduler;

namespace {

const std::vector<std::string> kHosts = {"db1", "web1", "web2"};

class FakePlan final : public PlanStage {
 public:
  // to-sha -> affected hosts (default: web1 only)
  std::map<std::string, std::set<std::string>> affected;
  std::vector<PlanInput> calls;
  Plan plan(const PlanInput& in) override {
    std::scoped_lock lk(mu_);
    calls.push_back(in);
    Plan p;
    p.repo = in.repo->name;
    p.from = in.from.value_or("");
    p.to = in.to;
    std::set<std::string> a =
        affected.count(in.to) ? affected[in.to] : std::set<std::string>{"web1"};
    for (const auto& h : kHosts) {
      HostPlan hp;
      hp.name = h;
      hp.affected = a.count(h) > 0;
      if (hp.affected) hp.reasons = {Reason{ReasonKind::File, "hosts/" + h + ".nix", "", ""}};
      hp.newDrv = "/nix/store/" + std::string(32, 'd') + "-" + h + ".drv";
      p.hosts.push_back(hp);
    }
    return p;
  }

 private:
  std::mutex mu_;
};

class FakeBuild final : public BuildStage {
 public:
  std::vector<std::vector<std::string>> calls;  // hosts per call
  std::vector<bool> untrusted;                  // BuildInput::untrusted per call
  std::set<std::string> failing;
  std::string storeError;        // non-empty: the build throws StoreError with it after starting
  std::function<void()> during;  // called (once) while building
  std::vector<BuildHostOutcome> build(const BuildInput& in, StageListener& l) override {
    if (during) std::exchange(during, nullptr)();
    if (!storeError.empty()) {
      for (const auto& h : in.hosts) l.hostStarted(h.host, "building");
      throw StoreError(storeError);
    }
    std::vector<std::string> names;
    std::vector<BuildHostOutcome> out;
    for (const auto& h : in.hosts) {
      names.push_back(h.host);
      l.hostStarted(h.host, "building");
      bool ok = !failing.count(h.host);
      out.push_back(
          {h.host, ok, h.drvPath,
           "/nix/store/" + std::string(32, 'o') + "-" + h.host + "-" + in.sha.substr(0, 7),
           ok ? "built in 1s" : "failed: builder exited with 1", ok ? "" : "boom"});
    }
    calls.push_back(names);
    untrusted.push_back(in.untrusted);
    return out;
  }
};

class FakeDeploy final : public DeployStage {
 public:
  std::vector<std::vector<DeployHost>> calls;
  std::vector<std::vector<std::string>> named;           // each call's DeployInput::named
  std::vector<std::optional<std::string>> stopRequests;  // DeployInput::stopRequested()
  std::set<std::string> refused;
  std::function<void()> tick;  // called inside each step (the test moves its clock)
  std::vector<DeployHostOutcome> deploy(const DeployInput& in, StageListener& l) override {
    calls.push_back(in.hosts);
    named.push_back(in.named);
    stopRequests.push_back(in.stopRequested ? in.stopRequested() : std::nullopt);
    std::vector<DeployHostOutcome> out;
    for (const auto& h : in.hosts) {
      l.hostStarted(h.host, "deploy: lock");
      // the steps the real deploy stage reports (DeployRelay), `tick` between them
      for (const char* step : {"copy", "activate", "health", "confirm"}) {
        l.hostStep(h.host, step, false);
        if (tick) tick();
        l.hostStep(h.host, step, true);
      }
      if (refused.count(h.host))
        out.push_back({h.host, HostState::Refused, "refused: not a descendant"});
      else if (h.checkCurrentFirst)
        out.push_back({h.host, HostState::Succeeded, "already running (checked after a restart)"});
      else
        out.push_back({h.host, HostState::Succeeded, "deployed"});
    }
    return out;
  }
};

class RecordingReporter final : public RunReporter {
 public:
  // Every call is recorded, then throws StoreError as ForgeReporter does when the outbox
  // cannot be written.
  std::atomic<bool> outboxDown{false};
  void runQueued(const RunView& r) override { add("queued " + std::to_string(r.id)); }
  void planned(const RunView& r, const Plan&) override { add("planned " + std::to_string(r.id)); }
  void hostChanged(const RunView& r, const RunHostView& h) override {
    add("host " + std::to_string(r.id) + " " + h.host + " " + toString(h.stage) + " " +
        toString(h.state));
  }
  void runFinished(const RunView& r, const std::vector<RunHostView>&) override {
    add("finished " + std::to_string(r.id) + " " + toString(r.state));
  }
  std::vector<std::string> events() {
    std::scoped_lock lk(mu_);
    return events_;
  }
  bool saw(const std::string& e) {
    auto ev = events();
    return std::find(ev.begin(), ev.end(), e) != ev.end();
  }

 private:
  void add(std::string e) {
    {
      std::scoped_lock lk(mu_);
      events_.push_back(std::move(e));
    }
    if (outboxDown) throw StoreError("outbox: database is locked");
  }
  std::mutex mu_;
  std::vector<std::string> events_;
};

// The system's time plus an offset the test moves forward (deferrals without sleeping).
class ShiftedClock final : public Clock {
 public:
  std::chrono::system_clock::time_point now() const override {
    return std::chrono::system_clock::now() + shift_.load();
  }
  std::chrono::steady_clock::time_point steadyNow() const override {
    return std::chrono::steady_clock::now() + shift_.load();
  }
  void advance(std::chrono::milliseconds d) { shift_ = shift_.load() + d; }

 private:
  std::atomic<std::chrono::milliseconds> shift_{std::chrono::milliseconds(0)};
};

struct Harness {
  explicit Harness(std::function<void(scheduler::SchedulerOptions&)> tune = {}) {
    RepoConfig r;
    r.forge = "home";
    r.name = "alice/infra";
    r.url = upstream.path().string();
    r.deployBranches = {"main"};
    config.repos = {r};
    config.stateDir = tmp.path() / "state";
    config.publicUrl = "https://ci.example.org";
    db = store::Database::open(tmp.path() / "state" / "switchyard.db");
    sha0 = upstream.commit({{"flake.nix", "{ }"}}, "zero");
    sched = std::make_unique<Scheduler>(scheduler::SchedulerPorts{config, *db, clock, log, reporter,
                                                                  mirrors, plan, build, deployer},
                                        options(tune));
  }
  scheduler::SchedulerOptions options(
      const std::function<void(scheduler::SchedulerOptions&)>& tune = {}) {
    scheduler::SchedulerOptions o;
    o.stateDir = config.stateDir;
    o.gatewayRetry = std::chrono::seconds(0);
    o.finishRetry = std::chrono::milliseconds(1);
    // A stand-in for runner/report's ForgeGateway: writers may comment-rerun; the forge may
    // be down (Retry) a given number of times; check_run re-requests name run/stage/host.
    o.gateway = [this](const Event& e) {
      ++gatewayCalls;
      if (gatewayFault) std::exchange(gatewayFault, nullptr)();
      report::GatewayDecision d;
      if (forgeDown > 0) {
        --forgeDown;
        d.kind = report::GatewayDecision::Kind::Retry;
        d.reason = "forge answered 502";
        return d;
      }
      if (e.kind == EventKind::CommentCommand && !writers.count(e.commentAuthor)) {
        d.kind = report::GatewayDecision::Kind::Refused;
        d.reason = e.commentAuthor + " has read access";
        return d;
      }
      d.kind = report::GatewayDecision::Kind::Accepted;
      d.request.hosts = e.hosts;
      d.request.sha = e.headSha;
      if (e.runId) d.request.runId = e.runId;
      if (!e.stage.empty()) d.request.stage = stageFrom(e.stage);
      d.request.trigger =
          e.kind == EventKind::CommentCommand ? RunTrigger::Comment : RunTrigger::Rerequest;
      d.request.approve = e.command == "approve";
      d.request.requestedBy = e.commentAuthor;
      return d;
    };
    if (tune) tune(o);
    return o;
  }
  std::string commit(const std::string& file) {
    const int k = ++n;  // (not ++n and n in one call: their order is unspecified)
    return upstream.commit({{file, "{ x = " + std::to_string(k) + "; }"}}, "c" + std::to_string(k));
  }
  int64_t deliver(Event e) {
    e.deliveryId = "d" + std::to_string(++deliveries);
    if (e.forge.empty() && e.forgeType.empty()) {
      e.forge = "home";
      e.forgeType = "gitea";
    }
    nlohmann::json j = e;
    store::Deliveries d(*db, clock);
    return d
        .insert({e.forge.empty() ? e.forgeType : e.forge, e.deliveryId, "test", j.dump(),
                 e.kind == EventKind::Ignored, e.ignoredReason})
        .id;
  }
  Event push(const std::string& ref, const std::string& before, const std::string& after) {
    Event e;
    e.kind = EventKind::Push;
    e.repo = "alice/infra";
    e.ref = ref;
    e.before = before;
    e.after = after;
    return e;
  }
  // A re-run of run `runId`: from the CLI, or (forge = true) a GitHub check-run re-request.
  Event rerun(int64_t runId, std::vector<std::string> hosts = {}, bool forge = false) {
    Event e;
    e.kind = EventKind::Rerun;
    e.forgeType = forge ? "github" : "cli";
    if (forge) {
      e.forge = "home";
      e.repo = "alice/infra";
    }
    e.runId = runId;
    e.hosts = std::move(hosts);
    return e;
  }
  Event pr(PrAction action, int64_t number, const std::string& head, const std::string& base,
           bool fork = false) {
    Event e;
    e.kind = EventKind::PullRequest;
    e.repo = "alice/infra";
    e.prAction = action;
    e.prNumber = number;
    e.headSha = head;
    e.baseSha = base;
    e.fromFork = fork;
    return e;
  }
  void drain() {
    while (sched->dispatchQueued() > 0 || sched->runNext()) {
    }
  }
  store::Runs runs() { return store::Runs(*db, clock, config.effectivePublicUrl()); }
  // Makes the database refuse some writes, as a full disk or a long-held lock would: an
  // SQLite trigger raising `why` (StoreError) for the rows `when` matches.
  void breakWrites(const std::string& name, const std::string& on, const std::string& when,
                   const std::string& why) {
    db->exec("CREATE TRIGGER " + name + " BEFORE " + on + " WHEN " + when +
             " BEGIN SELECT RAISE(ABORT, '" + why + "'); END");
  }
  void repairWrites(const std::string& name) { db->exec("DROP TRIGGER " + name); }
  store::RunRecord run(int64_t id) {
    auto r = runs().get(id);
    REQUIRE(r);
    return *r;
  }
  std::string summaryOf(int64_t id, const std::string& host) {
    for (const auto& h : runs().hosts(id))
      if (h.host == host) return h.summary;
    return "(no such host)";
  }
  std::map<std::string, std::string> hostStates(int64_t id) {
    std::map<std::string, std::string> out;
    for (const auto& h : runs().hosts(id))
      out[h.host] = std::string(toString(h.stage)) + "/" + toString(h.state);
    return out;
  }
  std::string deliveryState(int64_t id) {
    store::Deliveries d(*db, clock);
    return d.get(id)->state + ": " + d.get(id)->detail;
  }

  os::TempDir tmp{"sy-sched"};
  tests::TempGitRepo upstream;
  Config config;
  ShiftedClock clock;
  NullLogger log;
  RecordingReporter reporter;
  scheduler::Mirrors mirrors{tmp.path() / "state", log};
  FakePlan plan;
  FakeBuild build;
  FakeDeploy deployer;
  std::set<std::string> writers;
  int forgeDown = 0, gatewayCalls = 0;
  std::function<void()> gatewayFault;  // called (once) when the gateway is asked next
  std::unique_ptr<store::Database> db;
  std::unique_ptr<Scheduler> sched;
  std::string sha0;
  int n = 0, deliveries = 0;
};

}  // namespace

TEST_CASE("a push to a deploy branch plans, builds and deploys the affected hosts",
          "[unit][scheduler]") {
  Harness h;
  std::string sha1 = h.commit("hosts/web1.nix");
  int64_t d = h.deliver(h.push("refs/heads/main", h.sha0, sha1));
  h.drain();
  CHECK(h.deliveryState(d) == "processed: run 1");
  auto r = h.run(1);
  CHECK(r.view.kind == RunKind::Deploy);
  CHECK(r.view.trigger == RunTrigger::Push);
  CHECK(r.view.state == RunState::Succeeded);
  CHECK(r.view.baseSha == h.sha0);
  CHECK(r.view.url == "https://ci.example.org/runs/1");
  REQUIRE(h.plan.calls.size() == 1);
  CHECK(h.plan.calls[0].from == h.sha0);
  CHECK(h.plan.calls[0].to == sha1);
  CHECK(h.plan.calls[0].gitDir == h.config.stateDir / "mirrors" / "home" / "alice" / "infra.git");
  CHECK(h.build.calls == std::vector<std::vector<std::string>>{{"web1"}});
  REQUIRE(h.deployer.calls.size() == 1);
  CHECK(h.deployer.calls[0][0].host == "web1");
  CHECK_FALSE(h.deployer.calls[0][0].checkCurrentFirst);
  CHECK(h.hostStates(1) == std::map<std::string, std::string>{{"db1", "plan/not-affected"},
                                                              {"web1", "deploy/succeeded"},
                                                              {"web2", "plan/not-affected"}});
  CHECK(h.reporter.saw("queued 1"));
  CHECK(h.reporter.saw("planned 1"));
  CHECK(h.reporter.saw("host 1 web1 build running"));
  CHECK(h.reporter.saw("host 1 web1 deploy succeeded"));
  CHECK(h.reporter.events().back() == "finished 1 succeeded");
  CHECK(r.planJson);
  // The planner's log has a name no host's log (<host>.log) can take: a host named `plan`
  // writes plan.log, never into the plan's log.
  CHECK(fs::exists(h.config.stateDir / "logs" / "1" / "@plan.log"));
  CHECK_FALSE(fs::exists(h.config.stateDir / "logs" / "1" / "plan.log"));

  // The next push plans from what this run deployed.
  std::string sha2 = h.commit("hosts/web2.nix");
  h.plan.affected[sha2] = {"web2"};
  h.deliver(h.push("refs/heads/main", sha1, sha2));
  h.drain();
  CHECK(h.plan.calls.back().from == sha1);
  CHECK(h.hostStates(2).at("web2") == "deploy/succeeded");
}

TEST_CASE("pushes arriving late or twice do not replace the newer run — a force push back does",
          "[unit][scheduler]") {
  Harness h;
  std::string s1 = h.commit("hosts/web1.nix"), s2 = h.commit("hosts/web2.nix"),
              s3 = h.commit("hosts/db1.nix");
  // Newest first, as a forge retry or a hook racing a webhook can deliver them.
  h.deliver(h.push("refs/heads/main", s2, s3));
  int64_t p2 = h.deliver(h.push("refs/heads/main", s1, s2));
  int64_t p1 = h.deliver(h.push("refs/heads/main", h.sha0, s1));
  int64_t again = h.deliver(h.push("refs/heads/main", s2, s3));
  REQUIRE(h.sched->dispatchQueued() == 4);
  CHECK(h.runs().list(10).size() == 1);
  CHECK(h.deliveryState(p2) ==
        "ignored: older than run 1 (" + shortSha(s3) + "), which includes " + runner::shortSha(s2));
  CHECK(h.deliveryState(p1) ==
        "ignored: older than run 1 (" + shortSha(s3) + "), which includes " + runner::shortSha(s1));
  CHECK(h.deliveryState(again) == "ignored: run 1 already deploys " + runner::shortSha(s3));
  // The run plans from where the branch was before all three pushes.
  CHECK(h.run(1).view.baseSha == h.sha0);
  h.drain();
  CHECK(h.run(1).view.state == RunState::Succeeded);
  CHECK(h.run(1).view.sha == s3);
  CHECK(h.plan.calls.back().from == h.sha0);

  // The branch moved back (before = the run's commit): a new run, even for an older commit.
  int64_t back = h.deliver(h.push("refs/heads/main", s3, s1));
  h.drain();
  CHECK(h.deliveryState(back) == "processed: run 2");
  CHECK(h.run(2).view.sha == s1);
}

TEST_CASE("a state the forge did not hear of before a crash is told after the restart",
          "[unit][scheduler]") {
  Harness h;
  std::string s1 = h.commit("hosts/web1.nix"), s2 = h.commit("hosts/web2.nix");
  // The reporter fails as the process would die: after the commit, before the forge is told.
  h.reporter.outboxDown = true;
  h.deliver(h.push("refs/heads/main", h.sha0, s1));
  h.deliver(h.push("refs/heads/main", s1, s2));
  REQUIRE(h.sched->dispatchQueued() == 2);
  CHECK(h.run(1).view.state == RunState::Superseded);
  h.reporter.outboxDown = false;
  size_t before = h.reporter.events().size();
  CHECK(h.sched->recover() == 0);  // nothing was running
  auto ev = h.reporter.events();
  CHECK(std::vector<std::string>(ev.begin() + before, ev.end()) ==
        std::vector<std::string>{"finished 1 superseded", "queued 2"});
  // Told once: another restart says nothing again.
  CHECK(h.sched->recover() == 0);
  CHECK(h.reporter.events().size() == ev.size());
  h.drain();
  CHECK(h.reporter.events().back() == "finished 2 succeeded");
  h.sched->recover();
  CHECK(h.reporter.events().back() == "finished 2 succeeded");
}

TEST_CASE("pushes to other branches and unknown repositories make no run", "[unit][scheduler]") {
  Harness h;
  std::string sha1 = h.commit("a.nix");
  int64_t feature = h.deliver(h.push("refs/heads/feature", h.sha0, sha1));
  auto other = h.push("refs/heads/main", h.sha0, sha1);
  other.repo = "mallory/infra";
  int64_t unknown = h.deliver(other);
  h.drain();
  CHECK(h.deliveryState(feature) == "ignored: branch feature is not a deploy branch");
  CHECK(h.deliveryState(unknown) == "ignored: repository mallory/infra is not configured");
  CHECK(h.runs().list(10).empty());
}

TEST_CASE("a newer push supersedes queued runs of the branch and plans from their base",
          "[unit][scheduler]") {
  Harness h;
  std::string s1 = h.commit("a.nix"), s2 = h.commit("b.nix"), s3 = h.commit("c.nix");
  h.deliver(h.push("refs/heads/main", h.sha0, s1));
  h.deliver(h.push("refs/heads/main", s1, s2));
  h.deliver(h.push("refs/heads/main", s2, s3));
  REQUIRE(h.sched->dispatchQueued() == 3);
  CHECK(h.run(1).view.state == RunState::Superseded);
  CHECK(h.run(1).view.supersededBy == 2);
  CHECK(h.run(2).view.state == RunState::Superseded);
  CHECK(h.run(2).view.supersededBy == 3);
  CHECK(h.run(2).view.error == "superseded by run 3 (" + s3.substr(0, 8) + ")");
  CHECK(h.reporter.saw("finished 1 superseded"));
  h.drain();
  CHECK(h.run(3).view.state == RunState::Succeeded);
  REQUIRE(h.plan.calls.size() == 1);      // only the newest ran
  CHECK(h.plan.calls[0].from == h.sha0);  // nothing of s1, s2 was deployed
  CHECK(h.plan.calls[0].to == s3);
}

TEST_CASE("pull requests build only — forks too — sync supersedes, close cancels",
          "[unit][scheduler]") {
  Harness h;
  h.config.repos[0].untrusted.build = UntrustedBuild::Always;
  std::string head1 = h.commit("hosts/web1.nix");
  h.deliver(h.pr(PrAction::Opened, 7, head1, h.sha0));
  h.drain();
  auto r = h.run(1);
  CHECK(r.view.kind == RunKind::Check);
  CHECK(r.view.ref == "refs/pull/7/head");
  CHECK(r.view.prNumber == 7);
  CHECK(r.view.state == RunState::Succeeded);
  CHECK(h.plan.calls.back().from == h.sha0);
  CHECK(h.build.calls.size() == 1);
  CHECK(h.deployer.calls.empty());
  CHECK(h.hostStates(1).at("web1") == "build/succeeded");

  // A fork's pull request: a check run, never a deploy — even re-run by hand.
  std::string head2 = h.commit("hosts/web2.nix");
  h.deliver(h.pr(PrAction::Opened, 8, head2, h.sha0, true));
  h.drain();
  CHECK(h.run(2).view.fromFork);
  // Its code is planned and built in the jail; the first PR's as the runner.
  CHECK(h.plan.calls.back().untrusted);
  CHECK(h.build.untrusted == std::vector<bool>{false, true});
  h.deliver(h.rerun(2));
  h.drain();
  CHECK(h.run(3).view.kind == RunKind::Rerun);
  CHECK(h.run(3).view.fromFork);
  CHECK(h.build.untrusted.back());
  CHECK(h.deployer.calls.empty());

  // synchronize supersedes the queued run of the same PR; close supersedes without a run.
  std::string head3 = h.commit("x.nix"), head4 = h.commit("y.nix");
  h.deliver(h.pr(PrAction::Synchronized, 7, head3, h.sha0));
  h.deliver(h.pr(PrAction::Synchronized, 7, head4, h.sha0));
  int64_t close = h.deliver(h.pr(PrAction::Closed, 7, head4, h.sha0));
  REQUIRE(h.sched->dispatchQueued() == 3);
  CHECK(h.run(4).view.state == RunState::Superseded);
  CHECK(h.run(4).view.supersededBy == 5);
  CHECK(h.run(5).view.state == RunState::Superseded);
  CHECK_FALSE(h.run(5).view.supersededBy);
  CHECK(h.run(5).view.error == "pull request closed");
  CHECK(h.deliveryState(close) == "processed: pull request closed; superseded 1 queued run(s)");
  CHECK(h.runs().list(10).size() == 5);
}

TEST_CASE("a re-run builds exactly the named hosts — deploys only where the parent deployed",
          "[unit][scheduler]") {
  Harness h;
  std::string s1 = h.commit("hosts/web1.nix");
  h.deliver(h.push("refs/heads/main", h.sha0, s1));
  h.drain();
  Event e = h.rerun(1, {"db1"});  // db1 is not affected by the change: re-run anyway
  h.deliver(e);
  h.drain();
  auto r = h.run(2);
  CHECK(r.view.kind == RunKind::Rerun);
  CHECK(r.view.trigger == RunTrigger::Manual);
  CHECK(r.view.parentRunId == 1);
  CHECK(r.view.hostsFilter == std::vector<std::string>{"db1"});
  CHECK(h.build.calls.back() == std::vector<std::string>{"db1"});
  CHECK(h.deployer.calls.back().size() == 1);
  CHECK(h.deployer.calls.back()[0].host == "db1");
  // Named by a person: a `deploy: manual` host goes (issue 18); a push names nobody.
  CHECK(h.deployer.named.front().empty());
  CHECK(h.deployer.named.back() == std::vector<std::string>{"db1"});
  CHECK(h.hostStates(2) == std::map<std::string, std::string>{{"db1", "deploy/succeeded"},
                                                              {"web1", "plan/skipped"},
                                                              {"web2", "plan/not-affected"}});
  // stage "build": no deploy.
  e.hosts = {"web1"};
  e.stage = "build";
  h.deliver(e);
  size_t deploys = h.deployer.calls.size();
  h.drain();
  CHECK(h.deployer.calls.size() == deploys);
  CHECK(h.hostStates(3).at("web1") == "build/succeeded");
  // A host that does not exist: the run fails and says so.
  e.hosts = {"nope"};
  e.stage = "";
  h.deliver(e);
  h.drain();
  CHECK(h.run(4).view.state == RunState::Failed);
  CHECK(h.run(4).view.error == "none of the named hosts exist: nope");
}

TEST_CASE("comment commands and check re-requests go through the re-run gateway",
          "[unit][scheduler]") {
  Harness h;
  std::string head = h.commit("hosts/web1.nix");
  h.deliver(h.pr(PrAction::Opened, 3, head, h.sha0));
  h.drain();
  Event c;
  c.kind = EventKind::CommentCommand;
  c.repo = "alice/infra";
  c.prNumber = 3;
  c.command = "rerun";
  c.commentAuthor = "mallory";
  c.hosts = {"web2"};
  int64_t refused = h.deliver(c);
  h.drain();
  CHECK(h.deliveryState(refused) == "ignored: re-run refused: mallory has read access");
  h.writers.insert("alice");
  c.commentAuthor = "alice";
  int64_t ok = h.deliver(c);
  h.drain();
  CHECK(h.deliveryState(ok) == "processed: run 2");
  CHECK(h.run(2).view.trigger == RunTrigger::Comment);
  CHECK(h.run(2).view.kind == RunKind::Rerun);
  CHECK(h.run(2).view.parentRunId == 1);
  CHECK(h.build.calls.back() == std::vector<std::string>{"web2"});
  CHECK(h.deployer.calls.empty());

  // The PR moved on since its last run: the command checks the new head.
  std::string head2 = h.commit("hosts/web2.nix");
  c.headSha = head2;
  h.deliver(c);
  h.drain();
  CHECK(h.run(3).view.kind == RunKind::Check);
  CHECK(h.run(3).view.sha == head2);

  // The forge is down: the delivery waits and is asked again; nothing is lost.
  h.forgeDown = 2;
  int64_t later = h.deliver(c);
  CHECK(h.sched->dispatchQueued() == 0);
  CHECK(h.deliveryState(later) == "queued: ");
  CHECK(h.sched->dispatchQueued() == 0);
  CHECK(h.sched->dispatchQueued() == 1);
  CHECK(h.deliveryState(later) == "processed: run 4");

  // A check_run re-request names a run, a stage and a host.
  Event rr = h.rerun(1, {"db1"}, true);
  rr.stage = "build";
  int calls = h.gatewayCalls;
  h.deliver(rr);
  h.drain();
  CHECK(h.gatewayCalls == calls + 1);
  CHECK(h.run(5).view.trigger == RunTrigger::Rerequest);
  CHECK(h.run(5).view.stageFilter == Stage::Build);
  CHECK(h.run(5).view.hostsFilter == std::vector<std::string>{"db1"});
  // CLI re-runs do not ask the gateway.
  calls = h.gatewayCalls;
  h.deliver(h.rerun(1));
  h.drain();
  CHECK(h.gatewayCalls == calls);
  CHECK(h.run(6).view.trigger == RunTrigger::Manual);
}

TEST_CASE("a failing build fails the run — a refused deploy is visible as refused",
          "[unit][scheduler]") {
  Harness h;
  std::string s1 = h.commit("x.nix");
  h.plan.affected[s1] = {"web1", "web2"};
  h.build.failing = {"web2"};
  h.deployer.refused = {"web1"};
  h.deliver(h.push("refs/heads/main", h.sha0, s1));
  h.drain();
  CHECK(h.run(1).view.state == RunState::Failed);
  CHECK(h.hostStates(1).at("web1") == "deploy/refused");
  CHECK(h.hostStates(1).at("web2") == "build/failed");
  CHECK(h.deployer.calls.at(0).size() == 1);  // web2 never reached the deploy
  // A commit the repository does not have: the run fails with git's word for it.
  h.deliver(h.push("refs/heads/main", s1, std::string(40, 'e')));
  h.drain();
  CHECK(h.run(2).view.state == RunState::Failed);
  CHECK(h.run(2).view.error.find("is not in") != std::string::npos);
}

TEST_CASE("restart recovery: in-flight hosts are interrupted, the run resumes, deploys re-check",
          "[unit][scheduler]") {
  Harness h;
  std::string s1 = h.commit("x.nix");
  h.plan.affected[s1] = {"db1", "web1", "web2"};
  // What a runner killed mid-run leaves behind: a running run, db1 deployed, web1 being
  // deployed, web2 being built.
  auto runs = h.runs();
  store::NewRun n;
  n.repo = "alice/infra";
  n.forge = "home";
  n.kind = RunKind::Deploy;
  n.sha = s1;
  n.ref = "refs/heads/main";
  n.baseSha = h.sha0;
  int64_t id = runs.create(n);
  REQUIRE(runs.claimNext()->view.id == id);
  RunHostView v;
  v.host = "db1";
  v.stage = Stage::Deploy;
  v.state = HostState::Succeeded;
  runs.putHost(id, v);
  v.host = "web1";
  v.state = HostState::Running;
  runs.putHost(id, v);
  v.host = "web2";
  v.stage = Stage::Build;
  runs.putHost(id, v);

  CHECK(h.sched->recover() == 1);
  CHECK(h.run(id).view.state == RunState::Queued);
  CHECK(h.run(id).view.error == "resumed after a runner restart");
  CHECK(h.hostStates(id) == std::map<std::string, std::string>{{"db1", "deploy/succeeded"},
                                                               {"web1", "deploy/interrupted"},
                                                               {"web2", "build/interrupted"}});
  CHECK(h.reporter.saw("host 1 web1 deploy interrupted"));
  h.drain();
  auto r = h.run(id);
  CHECK(r.view.state == RunState::Succeeded);
  CHECK(r.attempts == 2);
  CHECK(h.build.calls == std::vector<std::vector<std::string>>{{"web1", "web2"}});  // not db1
  REQUIRE(h.deployer.calls.size() == 1);
  std::map<std::string, bool> check;
  for (const auto& d : h.deployer.calls[0]) check[d.host] = d.checkCurrentFirst;
  CHECK(check == std::map<std::string, bool>{{"web1", true}, {"web2", false}});
  CHECK(h.hostStates(id).at("web1") == "deploy/succeeded");
}

TEST_CASE("each host keeps when its plan, build, deploy and deploy steps started and finished",
          "[unit][scheduler]") {
  Harness h;
  int ticks = 0;
  h.deployer.tick = [&] {
    ++ticks;
    h.clock.advance(std::chrono::seconds(ticks));  // copy 1 s, activate 2 s, …
  };
  std::string s1 = h.commit("hosts/web1.nix");
  h.deliver(h.push("refs/heads/main", h.sha0, s1));
  h.drain();
  REQUIRE(h.run(1).view.state == RunState::Succeeded);
  auto web1 = h.runs().host(1, "web1");
  REQUIRE(web1);
  std::vector<std::string> names;
  for (const auto& st : web1->steps) names.push_back(st.name);
  CHECK(names == std::vector<std::string>{"plan", "build", "deploy", "copy", "activate", "health",
                                          "confirm"});
  int64_t last = 0;
  for (const auto& st : web1->steps) {
    INFO(st.name);
    REQUIRE(st.finishedAt);
    CHECK(st.startedAt >= last);  // in the order they ran
    CHECK(*st.finishedAt >= st.startedAt);
    if (st.name != "deploy") last = st.startedAt;
  }
  auto ms = [&](const std::string& n) {
    for (const auto& st : web1->steps)
      if (st.name == n) return *st.finishedAt - st.startedAt;
    return int64_t{-1};
  };
  // the fake clock moved 1, 2, 3, 4 s inside them (and the real one a little more)
  CHECK(ms("copy") >= 1000);
  CHECK(ms("activate") >= 2000);
  CHECK(ms("health") >= 3000);
  CHECK(ms("confirm") >= 4000);
  CHECK(ms("deploy") >= 10'000);
  CHECK(ms("copy") < ms("activate"));
  // the whole deploy stage contains its steps
  CHECK(web1->steps[2].startedAt <= web1->steps[3].startedAt);
  CHECK(*web1->steps[2].finishedAt >= *web1->steps[6].finishedAt);
}

TEST_CASE("a run cancelled while it runs stays cancelled after a restart", "[unit][scheduler]") {
  Harness h;
  std::string s1 = h.commit("x.nix");
  // A run the previous runner was deploying: db1 done, web1 in its deploy.
  auto runs = h.runs();
  store::NewRun n;
  n.repo = "alice/infra";
  n.forge = "home";
  n.kind = RunKind::Deploy;
  n.sha = s1;
  n.ref = "refs/heads/main";
  n.baseSha = h.sha0;
  const int64_t id = runs.create(n);
  REQUIRE(runs.claimNext()->view.id == id);
  RunHostView v;
  v.host = "db1";
  v.stage = Stage::Deploy;
  v.state = HostState::Succeeded;
  runs.putHost(id, v);
  v.host = "web1";
  v.state = HostState::Running;
  runs.putHost(id, v);
  // A person cancels it while it runs: the request is kept with the run.
  Event e;
  e.kind = EventKind::Rerun;
  e.forgeType = "ui";
  e.command = "cancel";
  e.sender = "web login from 127.0.0.1";
  e.runId = id;
  const int64_t d = h.deliver(e);
  h.sched->dispatchQueued();
  CHECK(h.deliveryState(d) ==
        "processed: run " + std::to_string(id) + " stops: cancelled by web login from 127.0.0.1");
  CHECK(h.run(id).view.state == RunState::Running);
  CHECK(runs.cancelRequest(id) == "cancelled by web login from 127.0.0.1");

  // The runner dies; a new one (nothing in memory) starts and recovers.
  h.sched.reset();
  h.sched = std::make_unique<Scheduler>(
      scheduler::SchedulerPorts{h.config, *h.db, h.clock, h.log, h.reporter, h.mirrors, h.plan,
                                h.build, h.deployer},
      h.options());
  CHECK(h.sched->recover() == 1);
  CHECK(h.run(id).view.state == RunState::Cancelled);
  CHECK(h.run(id).view.error == "cancelled by web login from 127.0.0.1");
  CHECK(h.hostStates(id) == std::map<std::string, std::string>{{"db1", "deploy/succeeded"},
                                                               {"web1", "deploy/interrupted"}});
  CHECK(h.summaryOf(id, "web1") ==
        "interrupted by a runner restart during deploy; the run was cancelled by web login "
        "from 127.0.0.1");
  CHECK(h.reporter.saw("finished " + std::to_string(id) + " cancelled"));
  h.drain();  // not resumed: nothing is built or deployed
  CHECK(h.run(id).view.state == RunState::Cancelled);
  CHECK(h.build.calls.empty());
  CHECK(h.deployer.calls.empty());
  CHECK(h.sched->recover() == 0);
}

TEST_CASE("a run interrupted too often ends as interrupted", "[unit][scheduler]") {
  Harness h;
  auto runs = h.runs();
  store::NewRun n;
  n.repo = "alice/infra";
  n.kind = RunKind::Deploy;
  n.sha = h.sha0;
  n.ref = "refs/heads/main";
  int64_t id = runs.create(n);
  for (int i = 0; i < 3; ++i) {
    REQUIRE(runs.claimNext());
    if (i < 2) {
      CHECK(h.sched->recover() == 1);
      CHECK(h.run(id).view.state == RunState::Queued);
    }
  }
  CHECK(h.sched->recover() == 1);
  CHECK(h.run(id).view.state == RunState::Interrupted);
  CHECK(h.run(id).view.error == "interrupted 3 times by runner restarts; not resumed again");
}

TEST_CASE("runs of one ref run one at a time — other refs do not wait", "[unit][scheduler]") {
  Harness h;
  auto runs = h.runs();
  store::NewRun a;
  a.repo = "alice/infra";
  a.kind = RunKind::Deploy;
  a.sha = h.sha0;
  a.ref = "refs/heads/main";
  int64_t first = runs.create(a);
  int64_t second = runs.create(a);
  a.ref = "refs/pull/1/head";
  int64_t other = runs.create(a);
  CHECK(runs.claimNext()->view.id == first);
  CHECK(runs.claimNext()->view.id == other);  // second waits for first
  CHECK_FALSE(runs.claimNext());
  runs.setState(first, RunState::Succeeded);
  CHECK(runs.claimNext()->view.id == second);
}

TEST_CASE("each delivery becomes one run, once, however often the queue is read",
          "[unit][scheduler]") {
  Harness h;
  std::string s1 = h.commit("x.nix");
  int64_t d = h.deliver(h.push("refs/heads/main", h.sha0, s1));
  CHECK(h.sched->dispatchQueued() == 1);
  CHECK(h.sched->dispatchQueued() == 0);
  auto r = h.runs().byDelivery(d);
  REQUIRE(r);
  CHECK(h.runs().list(10).size() == 1);
  // A delivery whose event cannot be read fails alone; the next is processed.
  store::Deliveries ds(*h.db, h.clock);
  int64_t bad = ds.insert({"home", "broken", "push", "{not json", false, ""}).id;
  int64_t good = h.deliver(h.push("refs/heads/main", s1, s1));
  h.sched->dispatchQueued();
  CHECK(ds.get(bad)->state == "failed");
  CHECK(ds.get(good)->state == "processed");
}

TEST_CASE("a run failing with a database error leaves running once the database is back",
          "[unit][scheduler]") {
  Harness h;
  std::string s1 = h.commit("hosts/web1.nix"), s2 = h.commit("hosts/web2.nix");
  h.build.storeError = "database is locked";
  h.deliver(h.push("refs/heads/main", h.sha0, s1));
  REQUIRE(h.sched->dispatchQueued() == 1);
  // The disk is full: neither the failed hosts nor the run's end can be written.
  h.breakWrites("no_failed_hosts", "INSERT ON run_hosts", "NEW.state = 'failed'", "disk full");
  h.breakWrites("no_run_end", "UPDATE OF state ON runs", "NEW.state != 'running'", "disk full");
  CHECK_NOTHROW(h.sched->runNext());
  CHECK(h.run(1).view.state == RunState::Running);
  CHECK(h.hostStates(1).at("web1") == "build/running");
  CHECK_FALSE(h.reporter.saw("finished 1 failed"));

  // A newer push waits for the branch; a worker retries the end while the database is down…
  h.build.storeError.clear();
  h.deliver(h.push("refs/heads/main", s1, s2));
  REQUIRE(h.sched->dispatchQueued() == 1);
  CHECK_FALSE(h.sched->runNext());
  CHECK(h.run(1).view.state == RunState::Running);
  // …and records it as soon as the database is back; the branch goes on.
  h.repairWrites("no_failed_hosts");
  h.repairWrites("no_run_end");
  CHECK(h.sched->runNext());
  auto r = h.run(1);
  CHECK(r.view.state == RunState::Failed);
  CHECK(r.view.error == "database is locked");
  CHECK(r.view.finishedAt.has_value());
  CHECK(h.hostStates(1).at("web1") == "build/failed");
  CHECK(h.runs().host(1, "web1")->summary == "run failed: database is locked");
  CHECK(h.reporter.saw("finished 1 failed"));
  CHECK(h.run(2).view.state == RunState::Succeeded);
  CHECK(h.hostStates(2).at("web1") == "deploy/succeeded");
}

TEST_CASE("progress and reporting are best effort — failing writes do not stop a deploy",
          "[unit][scheduler]") {
  Harness h;
  std::string s1 = h.commit("hosts/web1.nix");
  h.deliver(h.push("refs/heads/main", h.sha0, s1));
  // The outbox cannot be written, nor can progress rows (pending, running).
  h.reporter.outboxDown = true;
  h.breakWrites("no_progress", "INSERT ON run_hosts", "NEW.state IN ('pending', 'running')",
                "database is locked");
  REQUIRE_NOTHROW(h.drain());
  auto r = h.run(1);
  CHECK(r.view.state == RunState::Succeeded);
  CHECK(r.view.error == "");
  REQUIRE(h.deployer.calls.size() == 1);  // the deploy ran to its end
  CHECK(h.deployer.calls[0].at(0).host == "web1");
  CHECK(h.hostStates(1) == std::map<std::string, std::string>{{"db1", "plan/not-affected"},
                                                              {"web1", "deploy/succeeded"},
                                                              {"web2", "plan/not-affected"}});
  CHECK(h.runs().host(1, "web1")->summary == "deployed");
  // Every notification was attempted, in order.
  CHECK(h.reporter.events() ==
        std::vector<std::string>{"queued 1", "planned 1", "host 1 db1 plan not-affected",
                                 "host 1 web1 build pending", "host 1 web2 plan not-affected",
                                 "host 1 web1 build running", "host 1 web1 build succeeded",
                                 "host 1 web1 deploy pending", "host 1 web1 deploy running",
                                 "host 1 web1 deploy succeeded", "finished 1 succeeded"});
}

TEST_CASE("a delivery waits out store and outbox errors — only an invalid one fails",
          "[unit][scheduler]") {
  Harness h;
  std::string s1 = h.commit("hosts/web1.nix");
  h.deliver(h.push("refs/heads/main", h.sha0, s1));
  h.drain();
  Event rr = h.rerun(1, {"web1"}, true);

  // The gateway cannot write its outbox: the delivery stays queued, the gateway was asked
  // once, and it is asked again (and the re-run made) on a later pass.
  h.gatewayFault = [] { throw StoreError("outbox: database is locked"); };
  int64_t outbox = h.deliver(rr);
  CHECK(h.sched->dispatchQueued() == 0);
  CHECK(h.deliveryState(outbox) == "queued: ");
  CHECK(h.gatewayCalls == 1);
  CHECK(h.sched->dispatchQueued() == 1);
  CHECK(h.gatewayCalls == 2);
  CHECK(h.deliveryState(outbox) == "processed: run 2");
  h.drain();
  CHECK(h.run(2).view.state == RunState::Succeeded);

  // The run cannot be written (disk full): the push stays queued until it can.
  std::string s2 = h.commit("hosts/web1.nix");
  h.breakWrites("no_runs", "INSERT ON runs", "1", "database or disk is full");
  int64_t push = h.deliver(h.push("refs/heads/main", s1, s2));
  CHECK(h.sched->dispatchQueued() == 0);
  CHECK(h.deliveryState(push) == "queued: ");
  CHECK(h.sched->dispatchQueued() == 0);
  h.repairWrites("no_runs");
  CHECK(h.sched->dispatchQueued() == 1);
  CHECK(h.deliveryState(push) == "processed: run 3");

  // An event the gateway finds invalid fails for good, after one question.
  h.gatewayFault = [] { throw InputError("check run external_id 'run:x' is not valid"); };
  int calls = h.gatewayCalls;
  int64_t invalid = h.deliver(rr);
  CHECK(h.sched->dispatchQueued() == 1);
  CHECK(h.gatewayCalls == calls + 1);
  CHECK(h.deliveryState(invalid) == "failed: check run external_id 'run:x' is not valid");
  CHECK(h.sched->dispatchQueued() == 0);
}

TEST_CASE("a forge re-run of a run of another repository or commit is refused",
          "[unit][scheduler]") {
  Harness h;
  std::string s1 = h.commit("hosts/web1.nix"), s2 = h.commit("hosts/web2.nix");
  h.deliver(h.push("refs/heads/main", h.sha0, s1));
  h.drain();
  store::NewRun other;  // a run of another repository on the same forge
  other.repo = "bob/other";
  other.forge = "home";
  other.kind = RunKind::Deploy;
  other.sha = s2;
  other.ref = "refs/heads/main";
  REQUIRE(h.runs().create(other) == 2);

  Event rr = h.rerun(2, {}, true);
  rr.headSha = s2;
  int64_t foreign = h.deliver(rr);
  rr.runId = 1;  // this repository's run, but the check run was on another commit
  int64_t moved = h.deliver(rr);
  rr.headSha = s1;
  int64_t ok = h.deliver(rr);
  h.drain();
  CHECK(h.deliveryState(foreign) ==
        "ignored: re-run refused: run 2 is of bob/other, not alice/infra");
  CHECK(h.deliveryState(moved) == "ignored: re-run refused: run 1 is of commit " + s1.substr(0, 8) +
                                      ", not " + s2.substr(0, 8));
  CHECK(h.deliveryState(ok) == "processed: run 3");
  CHECK(h.run(3).view.parentRunId == 1);
  CHECK(h.run(3).view.sha == s1);
  CHECK(h.runs().list(10).size() == 3);
}

namespace {
Event approveComment(int64_t pr, const std::string& author) {
  Event c;
  c.kind = EventKind::CommentCommand;
  c.repo = "alice/infra";
  c.prNumber = pr;
  c.command = "approve";
  c.commentAuthor = author;
  return c;
}
}  // namespace

TEST_CASE("a fork's pull request waits for a writer's approval before it builds",
          "[unit][scheduler]") {
  Harness h;  // untrusted.build: approve, the default
  std::string head = h.commit("hosts/web1.nix");
  h.deliver(h.pr(PrAction::Opened, 9, head, h.sha0, true));
  h.drain();
  CHECK(h.plan.calls.back().untrusted);
  CHECK(h.build.calls.empty());  // planned, not built
  CHECK(h.hostStates(1).at("web1") == "build/waiting");
  CHECK(h.run(1).view.state == RunState::Succeeded);
  CHECK(h.summaryOf(1, "web1").find("/switchyard approve") != std::string::npos);

  // A reader's approval is refused; a writer's records the commit and builds it.
  int64_t refused = h.deliver(approveComment(9, "mallory"));
  h.drain();
  CHECK(h.deliveryState(refused) == "ignored: re-run refused: mallory has read access");
  CHECK(h.build.calls.empty());
  h.writers.insert("alice");
  int64_t ok = h.deliver(approveComment(9, "alice"));
  h.drain();
  CHECK(h.deliveryState(ok).find("processed: run 2 (approved") == 0);
  REQUIRE(h.build.calls.size() == 1);
  CHECK(h.build.untrusted.back());
  CHECK(h.hostStates(2).at("web1") == "build/succeeded");
  CHECK(h.deployer.calls.empty());
  store::Approvals approvals(*h.db, h.clock);
  auto a = approvals.find("home", "alice/infra", head);
  REQUIRE(a);
  CHECK(a->approvedBy == "alice");

  // The approval is for that commit only: a new push to the fork waits again.
  std::string head2 = h.commit("hosts/web1.nix");
  h.deliver(h.pr(PrAction::Synchronized, 9, head2, h.sha0, true));
  h.drain();
  CHECK(h.build.calls.size() == 1);
  CHECK(h.hostStates(3).at("web1") == "build/waiting");
}

TEST_CASE("untrusted policy: never builds, or only plans statically", "[unit][scheduler]") {
  Harness h;
  h.config.repos[0].untrusted.build = UntrustedBuild::Never;
  std::string head = h.commit("hosts/web1.nix");
  h.deliver(h.pr(PrAction::Opened, 4, head, h.sha0, true));
  h.drain();
  CHECK(h.build.calls.empty());
  CHECK(h.hostStates(1).at("web1") == "build/skipped");
  CHECK(h.summaryOf(1, "web1").find("untrusted.build: never") != std::string::npos);
  // a same-repository pull request is not affected by the fork policy
  h.deliver(h.pr(PrAction::Opened, 5, head, h.sha0, false));
  h.drain();
  CHECK(h.build.calls.size() == 1);
  CHECK_FALSE(h.build.untrusted.back());
}

TEST_CASE("runs that deploy are claimed first and keep a worker free", "[unit][scheduler]") {
  Harness h;
  auto runs = h.runs();
  store::NewRun check;
  check.repo = "alice/infra";
  check.kind = RunKind::Check;
  check.prNumber = 1;
  check.fromFork = true;
  check.sha = std::string(40, 'c');
  check.ref = "refs/pull/1/head";
  int64_t c1 = runs.create(check);
  check.ref = "refs/pull/2/head";
  int64_t c2 = runs.create(check);
  store::NewRun deploy;
  deploy.repo = "alice/infra";
  deploy.kind = RunKind::Deploy;
  deploy.sha = std::string(40, 'd');
  deploy.ref = "refs/heads/main";
  int64_t d = runs.create(deploy);
  // three workers: the deploy goes first though it came last; then one check, and the
  // second check waits (one worker stays free for the next deploy)
  CHECK(runs.claimNext(2)->view.id == d);
  CHECK(runs.claimNext(2)->view.id == c1);
  CHECK(runs.claimNext(1).has_value() == false);
  CHECK(runs.claimNext(2)->view.id == c2);
}

TEST_CASE("a run does not start when its log directory cannot be written, and says why",
          "[integration][scheduler][mount]") {
  Harness h;
  // the state's logs on a full little disk of their own (needs root and mount(2))
  const fs::path logs = h.config.stateDir / "logs";
  fs::create_directories(logs);
  if (std::system(("mount -t tmpfs -o size=1m switchyard-test '" + logs.string() + "'").c_str()) !=
      0) {
    WARN("SKIPPED: cannot mount a tmpfs here (needs root)");
    return;
  }
  struct Unmount {
    fs::path p;
    ~Unmount() { std::system(("umount -l '" + p.string() + "'").c_str()); }
  } unmount{logs};
  std::string s1 = h.commit("hosts/web1.nix");
  h.deliver(h.push("refs/heads/main", h.sha0, s1));
  h.drain();
  auto r = h.run(1);
  CHECK(r.view.state == RunState::Failed);
  CHECK(r.view.error.find("not started: the state directory cannot be written: ") !=
        std::string::npos);
  CHECK(r.view.error.find("MiB free (at least 16 MiB needed)") != std::string::npos);
  CHECK(h.plan.calls.empty());  // nothing was planned, built or deployed
  CHECK(h.build.calls.empty());
  CHECK(h.deployer.calls.empty());
}

TEST_CASE("a woken worker starts a queued run at once, not at its next poll", "[unit][scheduler]") {
  // Issue 13: the workers' wait checked only `stopping_`, so a notify woke nobody and every
  // run started at the next poll. With an hour's poll, only a wake-up can start this run.
  Harness h([](scheduler::SchedulerOptions& o) { o.poll = std::chrono::hours(1); });
  h.sched->start();
  std::string s1 = h.commit("hosts/web1.nix");
  h.deliver(h.push("refs/heads/main", h.sha0, s1));
  h.sched->wake();  // what intake's group commit does after storing the delivery
  auto finished = [&] {
    auto r = h.runs().get(1);
    return r && isFinal(r->view.state);
  };
  REQUIRE(tests::waitUntil(finished, std::chrono::seconds(60)));
  CHECK(h.run(1).view.state == RunState::Succeeded);
  h.sched->stop();
}

TEST_CASE("a delivery the forge could not answer waits by the scheduler's clock",
          "[unit][scheduler]") {
  Harness h([](scheduler::SchedulerOptions& o) { o.gatewayRetry = std::chrono::seconds(30); });
  std::string s1 = h.commit("hosts/web1.nix");
  h.deliver(h.push("refs/heads/main", h.sha0, s1));
  h.drain();
  h.forgeDown = 1;
  int64_t rr = h.deliver(h.rerun(1, {"web1"}, true));
  CHECK(h.sched->dispatchQueued() == 0);  // Retry: deferred for gatewayRetry
  CHECK(h.gatewayCalls == 1);
  h.clock.advance(std::chrono::seconds(29));
  CHECK(h.sched->dispatchQueued() == 0);  // not yet: the gateway is not asked again
  CHECK(h.gatewayCalls == 1);
  h.clock.advance(std::chrono::seconds(2));
  CHECK(h.sched->dispatchQueued() == 1);
  CHECK(h.gatewayCalls == 2);
  CHECK(h.deliveryState(rr) == "processed: run 2");
}

TEST_CASE("a cancelled queued run never starts, a running one skips what it has not started",
          "[unit][scheduler]") {
  Harness h;
  auto cancel = [&](int64_t run) {
    Event e;
    e.kind = EventKind::Rerun;
    e.forgeType = "ui";
    e.command = "cancel";
    e.sender = "web login from 127.0.0.1";
    e.runId = run;
    return h.deliver(e);
  };
  std::string s1 = h.commit("hosts/web1.nix");
  h.deliver(h.push("refs/heads/main", h.sha0, s1));
  h.sched->dispatchQueued();
  REQUIRE(h.run(1).view.state == RunState::Queued);
  int64_t d = cancel(1);
  h.drain();
  CHECK(h.run(1).view.state == RunState::Cancelled);
  CHECK(h.run(1).view.error == "cancelled by web login from 127.0.0.1");
  CHECK(h.build.calls.empty());
  CHECK(h.reporter.saw("finished 1 cancelled"));
  CHECK(h.deliveryState(d) == "processed: run 1 cancelled by web login from 127.0.0.1");
  // Cancelling it again: it already ended; nothing changes.
  d = cancel(1);
  h.drain();
  CHECK(h.deliveryState(d) == "ignored: run 1 already ended (cancelled)");

  // Running: cancelled while it builds; the build ends, nothing is deployed.
  std::string s2 = h.commit("hosts/web2.nix");
  h.deliver(h.push("refs/heads/main", s1, s2));
  h.sched->dispatchQueued();
  h.build.during = [&] {
    cancel(2);
    h.sched->dispatchQueued();
  };
  h.drain();
  CHECK(h.run(2).view.state == RunState::Cancelled);
  CHECK(h.build.calls.size() == 1);
  CHECK(h.deployer.calls.empty());
  // built, then not deployed
  CHECK(h.hostStates(2).at("web1") == "deploy/skipped");
  CHECK(h.summaryOf(2, "web1") == "not started: the run was cancelled by web login from 127.0.0.1");
  CHECK(h.run(2).view.error == "cancelled by web login from 127.0.0.1");
  CHECK(h.reporter.saw("finished 2 cancelled"));

  // The deploy stage is asked before each host: no request, no reason.
  std::string s3 = h.commit("hosts/web1.nix");
  h.deliver(h.push("refs/heads/main", s2, s3));
  h.drain();
  CHECK(h.run(3).view.state == RunState::Succeeded);
  REQUIRE(h.deployer.stopRequests.size() == 1);
  CHECK_FALSE(h.deployer.stopRequests[0]);
}
