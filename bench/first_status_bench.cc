// First-status latency (issue 13): how long after a signed Gitea push webhook's 202 the forge
// hears of the run — the time from the 202 to the first commit-status request at a local fake
// Gitea. The daemon is the real one (HTTP intake, group commit, scheduler with its default
// 500 ms poll, runner/report's outbox sender); the stages are instant fakes, so what is
// measured is the runner's own latency: wake-ups, transactions and the outbox.
//
//   first_status_bench [--runs 20] [--poll-ms 500] [--own-intake-connection 0|1]
//
// Each push is a new commit of a real git repository (the mirror fetches it); the next push
// is sent only after the previous run ended and its statuses were sent. Prints every sample,
// then the median, p90 and max. Never a timed assertion; numbers go to bench/RESULTS.md.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

// The fake forge asserts with Catch2, which needs a running session: the bench is one test
// case that main runs through Catch's session.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "runner/app/daemon.h"
#include "runner/core/error.h"
#include "runner/core/log.h"
#include "runner/core/stages.h"
#include "runner/core/text.h"
#include "runner/http/curl_client.h"
#include "runner/os/files.h"
#include "runner/os/process.h"
#include "tests/integrations/test_helpers.h"
#include "tests/runner/app/daemon_helpers.h"
#include "tests/support/fake_forge.h"
#include "tests/support/fake_stages.h"

using namespace runner;
using Steady = std::chrono::steady_clock;

namespace {

// A work tree in `dir` with one commit per call of commit(); git through the process port.
class GitRepo {
 public:
  explicit GitRepo(std::filesystem::path dir) : dir_(std::move(dir)) {
    std::filesystem::create_directories(dir_);
    git({"init", "-q", "-b", "main"});
  }
  std::string commit(const std::string& file, const std::string& text) {
    std::filesystem::create_directories((dir_ / file).parent_path());
    os::writeFileAtomic(dir_ / file, text);
    git({"add", "-A"});
    git({"-c", "user.name=bench", "-c", "user.email=bench@example.invalid", "commit", "-qm", file});
    return std::string(trim(git({"rev-parse", "HEAD"})));
  }

 private:
  std::string git(std::vector<std::string> args) {
    auto r = procs_.run({.program = "git", .args = std::move(args), .cwd = dir_});
    if (!r.ok()) throw Error("git: " + r.errTail);
    return r.out;
  }
  std::filesystem::path dir_;
  os::PosixProcessRunner procs_;
};

double ms(Steady::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

// The first status request for `sha` the fake received (with `planned`: the first that says
// the plan succeeded, so the run had started), polled every 0.2 ms; false after 10 s.
bool waitForStatus(const tests::FakeGitea& gitea, const std::string& sha, bool planned,
                   Steady::time_point& at) {
  const auto end = Steady::now() + std::chrono::seconds(10);
  while (Steady::now() < end) {
    for (const auto& r : gitea.requests())
      if (r.method == "POST" && r.path.find("/statuses/" + sha) != std::string::npos &&
          (!planned || (r.json().value("context", "") == "switchyard/plan" &&
                        r.json().value("state", "") == "success"))) {
        at = Steady::now();
        return true;
      }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return false;
}

}  // namespace

namespace {
int runs = 20;
int pollMs = 500;
bool ownIntakeConnection = false;
int benchResult = 0;
int bench();
}  // namespace

TEST_CASE("first status latency") { benchResult = bench(); }

int main(int argc, char** argv) {
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--runs")
      runs = std::atoi(argv[i + 1]);
    else if (a == "--poll-ms")
      pollMs = std::atoi(argv[i + 1]);
    else if (a == "--own-intake-connection")
      ownIntakeConnection = std::string(argv[i + 1]) == "1";
    else {
      std::fprintf(
          stderr,
          "usage: first_status_bench [--runs N] [--poll-ms MS] [--own-intake-connection 0|1]\n");
      return 2;
    }
  }
  Catch::Session session;
  if (session.run(1, argv) != 0) return 1;
  return benchResult;
}

namespace {
int bench() {
  try {
    tests::FakeGitea gitea;
    os::TempDir tmp("sy-first-status");
    GitRepo upstream(tmp.path() / "upstream");
    std::vector<std::string> shas{upstream.commit("flake.nix", "{ }")};
    for (int i = 0; i < runs; ++i)
      shas.push_back(upstream.commit("hosts/web1.nix", "{ n = " + std::to_string(i) + "; }"));
    Config config = tests::daemonConfig(tmp.path());
    os::writeFileAtomic(tmp.path() / "gitea.token", gitea.token());
    config.forges["home"].url = gitea.baseUrl();
    config.forges["home"].apiUrl = gitea.apiUrl();
    config.forges["home"].tokenFile = tmp.path() / "gitea.token";
    config.forges.erase("hub");
    RepoConfig repo;
    repo.forge = "home";
    repo.name = "alice/infra";
    repo.deployBranches = {"main"};
    config.repos = {repo};
    tests::FixedPlanStage plan({"web1"}, {"web1"});
    tests::FakeBuildStage build;
    tests::OkDeployStage deploy;
    NullLogger log;
    app::DaemonOptions o;
    o.log = &log;
    o.planner = &plan;
    o.builder = &build;
    o.deployer = &deploy;
    o.poll = std::chrono::milliseconds(pollMs);
    o.ownIntakeConnection = ownIntakeConnection;
    app::Daemon daemon(config, o);
    daemon.start();
    http::CurlHttpClient http;
    auto push = tests::webhookJson("gitea/push/go-scm-push.json");
    push["ref"] = "refs/heads/main";
    push["repository"]["full_name"] = "alice/infra";
    push["repository"]["clone_url"] = (tmp.path() / "upstream").string();

    std::vector<double> samples, started;
    for (int i = 0; i < runs; ++i) {
      push["before"] = shas[i];
      push["after"] = shas[i + 1];
      const std::string body = push.dump();
      auto r = tests::post(http, daemon.baseUrl() + "/hooks/home", body,
                           {{"X-Gitea-Event", "push"},
                            {"X-Gitea-Delivery", "push-" + std::to_string(i)},
                            {"X-Gitea-Signature", tests::hexHmac(tests::kGiteaSecret, body)}});
      const auto accepted = Steady::now();
      if (r.status != 202) {
        std::fprintf(stderr, "push %d: HTTP %d\n", i, r.status);
        return 1;
      }
      Steady::time_point first, planned;
      if (!waitForStatus(gitea, shas[i + 1], false, first) ||
          !waitForStatus(gitea, shas[i + 1], true, planned)) {
        std::fprintf(stderr, "push %d: no status within 10 s\n", i);
        return 1;
      }
      samples.push_back(ms(first - accepted));
      started.push_back(ms(planned - accepted));
      std::printf("run %2d: 202 -> first status (plan pending) %.1f ms, -> plan success %.1f ms\n",
                  i + 1, samples.back(), started.back());
      // The next push only once this run is over and the forge heard everything about it.
      if (!daemon.waitForRunState(i + 1, std::chrono::seconds(30))) {
        std::fprintf(stderr, "run %d did not finish\n", i + 1);
        return 1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
    std::printf(
        "runs %d, poll %d ms, intake on %s connection: median %.1f ms, p90 %.1f ms, max %.1f ms\n",
        runs, pollMs, ownIntakeConnection ? "its own" : "the shared", percentile(samples, 0.5),
        percentile(samples, 0.9), *std::max_element(samples.begin(), samples.end()));
    std::printf("202 -> plan success (the run started): median %.1f ms, p90 %.1f ms, max %.1f ms\n",
                percentile(started, 0.5), percentile(started, 0.9),
                *std::max_element(started.begin(), started.end()));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "first_status_bench: %s\n", describe(e).c_str());
    return 1;
  }
  return 0;
}
}  // namespace
