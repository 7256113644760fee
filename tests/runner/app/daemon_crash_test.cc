// Crash test (DESIGN.md §8): 100 signed deliveries sent by four senders to the built
// switchyard binary while the test kills it with SIGKILL at random moments and starts it
// again. A sender whose request fails (connection refused or cut) sends the SAME delivery
// again after the restart, as a forge's redelivery would. Afterwards every delivery the
// daemon acknowledged is exactly one stored delivery and exactly one run, every delivery was
// processed, and no run was left queued or running.
#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "runner/http/curl_client.h"
#include "runner/os/files.h"
#include "runner/store/database.h"
#include "tests/runner/app/daemon_helpers.h"
#include "tests/runner/app/daemon_process.h"
#include "tests/support/temp_git_repo.h"
#include "tests/support/wait.h"

namespace fs = std::filesystem;

TEST_CASE("crash test: SIGKILL at random points loses and duplicates no acknowledged delivery",
          "[integration][daemon][crash]") {
  runner::os::TempDir tmp("sy-crash");
  tests::TempGitRepo upstream;
  std::string base = upstream.commit({{"flake.nix", "{ }"}}, "base");
  runner::os::writeFileAtomic(tmp.path() / "hook.secret", tests::kHookSecret);
  fs::path config = tmp.path() / "switchyard.yaml";
  runner::os::writeFileAtomic(config,
                              "listen: 127.0.0.1:0\n"
                              "state_dir: " +
                                  (tmp.path() / "state").string() +
                                  "\n"
                                  "hook_secret_file: " +
                                  (tmp.path() / "hook.secret").string() +
                                  "\n"
                                  "repos:\n"
                                  "  - name: infra\n"
                                  "    path: " +
                                  upstream.path().string() +
                                  "\n"
                                  "    deploy_branches: [main]\n"
                                  "    detection: static\n");
  fs::path log = tmp.path() / "daemon.log";

  constexpr int kDeliveries = 100;
  std::mutex mu;
  std::string url;               // GUARDED_BY(mu): the running daemon's URL ("" while restarting)
  std::map<int, int64_t> acked;  // GUARDED_BY(mu): delivery number -> row id answered
  std::string lastFailure;       // GUARDED_BY(mu)
  std::atomic<int> next{0}, failures{0}, duplicates{0}, gaveUp{0};
  auto currentUrl = [&] {
    std::scoped_lock lk(mu);
    return url;
  };

  auto daemon = std::make_unique<tests::DaemonProcess>(config, log);
  {
    std::scoped_lock lk(mu);
    url = daemon->url();
  }
  std::vector<std::thread> senders;
  for (int s = 0; s < 4; ++s)
    senders.emplace_back([&] {
      runner::http::CurlHttpClient http;
      std::mt19937 pace(static_cast<unsigned>(next.load()) * 7919u);
      for (int i; (i = next++) < kDeliveries;) {
        // Spread the deliveries over about three seconds, so kills land between and during them.
        std::this_thread::sleep_for(std::chrono::milliseconds(60 + pace() % 120));
        // Each push moves main forward by a made-up commit: the runs fail fast ("not in the
        // repository") so the test measures bookkeeping, not builds.
        std::string before = i == 0 ? base : std::string(39, 'a') + char('0' + i % 10);
        char two[8];
        std::snprintf(two, sizeof two, "%02d", i);
        std::string after = std::string(38, 'b') + two;
        const auto giveUpAt = std::chrono::steady_clock::now() + std::chrono::minutes(3);
        for (;;) {
          if (std::chrono::steady_clock::now() >
              giveUpAt) {  // (Catch2 assertions are not for threads)
            ++gaveUp;
            break;
          }
          std::string u = currentUrl();
          if (u.empty()) {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
            continue;
          }
          auto r = tests::postHook(http, u, "crash-" + std::to_string(i), "infra",
                                   "refs/heads/main", before, after);
          if (r.status == 202 || r.status == 200) {
            auto j = nlohmann::json::parse(r.body);
            if (j.value("duplicate", false)) ++duplicates;
            std::scoped_lock lk(mu);
            acked[i] = j["delivery"].get<int64_t>();
            break;
          }
          if (++failures % 500 == 1) {
            std::scoped_lock lk(mu);
            lastFailure = std::to_string(r.status) + " " + r.body + r.error;
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
      }
    });

  std::mt19937 rng(20261125);
  int kills = 0;
  for (;;) {
    size_t ackedBefore = 0;
    {
      std::scoped_lock lk(mu);
      if (static_cast<int>(acked.size()) == kDeliveries || gaveUp > 0) break;
      ackedBefore = acked.size();
    }
    // Each daemon gets at least one delivery through before it is killed, however slow this
    // machine (or a sanitizer) makes it; then it dies at a random moment of the traffic.
    tests::waitUntil(
        [&] {
          std::scoped_lock lk(mu);
          return acked.size() > ackedBefore || gaveUp > 0;
        },
        std::chrono::seconds(60));
    std::this_thread::sleep_for(std::chrono::milliseconds(30 + rng() % 150));
    {
      std::scoped_lock lk(mu);
      if (static_cast<int>(acked.size()) == kDeliveries) break;
      url.clear();
    }
    int status = daemon->kill(SIGKILL);
    CHECK(WIFSIGNALED(status));
    ++kills;
    daemon = std::make_unique<tests::DaemonProcess>(config, log);
    std::scoped_lock lk(mu);
    url = daemon->url();
  }
  for (auto& t : senders) t.join();
  INFO("kills: " << kills << ", failed requests: " << failures << " (e.g. " << lastFailure << ")"
                 << ", duplicate answers: " << duplicates);
  CHECK(gaveUp == 0);
  CHECK(kills >= 3);

  // Let the last daemon drain the queue, then stop it normally.
  auto db = runner::store::Database::open(tmp.path() / "state" / "switchyard.db",
                                          runner::store::Durability::Normal);
  auto pending = [&] {
    return db
        ->query(
            "SELECT (SELECT COUNT(*) FROM deliveries WHERE state = 'queued') + "
            "(SELECT COUNT(*) FROM runs WHERE state IN ('queued', 'running'))")
        .at(0)
        .integer(0);
  };
  tests::waitUntil([&] { return pending() == 0; }, std::chrono::seconds(30));
  CHECK(pending() == 0);
  CHECK(WEXITSTATUS(daemon->kill(SIGTERM)) == 0);

  // Every acknowledged delivery: one row with the id the daemon answered, processed, one run.
  REQUIRE(acked.size() == kDeliveries);
  CHECK(db->query("SELECT COUNT(*) FROM deliveries").at(0).integer(0) == kDeliveries);
  for (const auto& [i, row] : acked) {
    INFO("delivery crash-" << i);
    auto rows = db->query("SELECT id, state FROM deliveries WHERE delivery_id = ?",
                          {"crash-" + std::to_string(i)});
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].integer(0) == row);
    CHECK(rows[0].text(1) == "processed");
    CHECK(db->query("SELECT COUNT(*) FROM runs WHERE delivery = ?", {row}).at(0).integer(0) == 1);
  }
  CHECK(db->query("SELECT COUNT(*) FROM runs").at(0).integer(0) == kDeliveries);
  CHECK(db->query("SELECT COUNT(*) FROM runs WHERE state NOT IN ('failed', 'superseded', "
                  "'succeeded', 'interrupted')")
            .at(0)
            .integer(0) == 0);
}
