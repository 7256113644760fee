// What the report tests share: a database in a temporary directory, a manual clock, a real
// HTTP client talking to FakeGitea or FakeGitHub (tests/support/fake_forge.h), the Forge of
// that integration, and the reporter, sender (no jitter, no pacing unless a test asks) and
// gateway wired the way the daemon wires them; plus a recorded closure differ and builders
// for runs, plans and hosts of a five-machine fleet (three affected).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "integrations/gitea/client.h"
#include "integrations/github/client.h"
#include "runner/core/run.h"
#include "runner/http/curl_client.h"
#include "runner/os/files.h"
#include "runner/report/closure_diff.h"
#include "runner/report/comment.h"
#include "runner/report/forge_reporter.h"
#include "runner/report/gateway.h"
#include "runner/report/sender.h"
#include "runner/report/templates.h"
#include "runner/store/database.h"
#include "runner/store/outbox.h"
#include "tests/integrations/test_helpers.h"
#include "tests/support/fake_forge.h"

namespace tests::report {

using namespace std::chrono_literals;

inline const std::string kRepo = "alice/infra";
inline const std::string kSha = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
inline const std::string kBase = "d6fde92930d4715a2b49857d24b940956b26d2d3";
inline const std::string kRunUrl = "https://ci.example.org/runs/12";
inline const std::string kWebOld = "/nix/store/cb5j6x519m8v4xqrylsxp1376pk6qajy-nixos-system-web1";
inline const std::string kWebNew = "/nix/store/yr7a50gf1frrw6jirh2jmzxs6i53qslk-nixos-system-web1";
inline const std::string kDbOld = "/nix/store/0000000000000000000000000000000a-nixos-system-db";
inline const std::string kDbNew = "/nix/store/0000000000000000000000000000000b-nixos-system-db";
constexpr int64_t kAppId = 4242;
constexpr int64_t kInstallation = 77;

// Answers from recorded diff-closures output; an unknown pair is "not valid" like Nix says.
class RecordedDiffer final : public runner::report::ClosureDiffer {
 public:
  void on(const std::string& a, const std::string& b, std::string output) {
    outputs_[{a, b}] = std::move(output);
  }
  std::optional<runner::report::ClosureDiff> diff(const std::string& a, const std::string& b,
                                                  std::string* error) override {
    calls.emplace_back(a, b);
    auto it = outputs_.find({a, b});
    if (it == outputs_.end()) {
      if (error) *error = "path '" + a + "' is not valid";
      return std::nullopt;
    }
    return runner::report::parseDiffClosures(it->second);
  }
  std::vector<std::pair<std::string, std::string>> calls;

 private:
  std::map<std::pair<std::string, std::string>, std::string> outputs_;
};

inline runner::RunView prRun(int64_t id = 12) {
  runner::RunView r;
  r.id = id;
  r.repo = kRepo;
  r.forge = "home";
  r.kind = runner::RunKind::Check;
  r.trigger = runner::RunTrigger::PullRequest;
  r.state = runner::RunState::Queued;
  r.sha = kSha;
  r.ref = "refs/pull/7/head";
  r.baseSha = kBase;
  r.prNumber = 7;
  r.url = "https://ci.example.org/runs/" + std::to_string(id);
  return r;
}

inline runner::RunView deployRun(int64_t id = 12) {
  runner::RunView r = prRun(id);
  r.kind = runner::RunKind::Deploy;
  r.trigger = runner::RunTrigger::Push;
  r.ref = "refs/heads/main";
  r.prNumber = 0;
  return r;
}

// db, edge, mail, web1, web2: web1 and web2 changed through modules/web.nix, db through the
// nixpkgs input; edge and mail are not affected.
inline runner::Plan fleetPlan() {
  runner::Plan p;
  p.repo = kRepo;
  p.from = kBase;
  p.to = kSha;
  p.mode = runner::PlanMode::Auto;
  runner::InputChange nixpkgs;
  nixpkgs.name = "nixpkgs";
  nixpkgs.path = {"nixpkgs"};
  nixpkgs.oldLocked =
      runner::LockedSummary{"1111111111111111111111111111111111111111", std::nullopt, 1767225600};
  nixpkgs.newLocked =
      runner::LockedSummary{"2222222222222222222222222222222222222222", std::nullopt, 1767830400};
  p.inputsChanged = {nixpkgs};
  p.filesChanged = {{"modules/web.nix", runner::FileStatus::Modified, std::nullopt},
                    {"flake.lock", runner::FileStatus::Modified, std::nullopt}};
  auto host = [](std::string name, std::vector<runner::Reason> reasons) {
    runner::HostPlan h;
    h.name = std::move(name);
    h.affected = !reasons.empty();
    h.reasons = std::move(reasons);
    return h;
  };
  runner::Reason web{runner::ReasonKind::File, "modules/web.nix", "", ""};
  runner::Reason input{runner::ReasonKind::Input, "", "nixpkgs", ""};
  p.hosts = {host("db", {input}), host("edge", {}), host("mail", {}), host("web1", {web}),
             host("web2", {web})};
  return p;
}

inline runner::RunHostView hostView(std::string name, runner::Stage stage, runner::HostState state,
                                    std::string summary = "") {
  runner::RunHostView h;
  h.host = std::move(name);
  h.stage = stage;
  h.state = state;
  h.summary = std::move(summary);
  return h;
}

// Nix 2.8's answer for web1 (colour codes removed).
inline const char* kWebDiff =
    "data: +47.9 KiB\n"
    "hello: 2.12 \xe2\x86\x92 2.13\n";

// The parts every forge flavour shares; the subclasses make the Forge.
struct FixtureBase {
  FixtureBase() : db(runner::store::Database::open(dir.path() / "switchyard.db")) {
    differ.on(kWebOld, kWebNew, kWebDiff);
  }
  virtual ~FixtureBase() = default;

  // Call once the forge exists.
  void wire(runner::report::SenderOptions senderOptions = {}) {
    forges = {{"home", forge.get()}};
    reporter.emplace(*db, forges, templates, clock, log);
    senderOptions.jitter = 0;
    senderOptions.seed = 1;
    sender.emplace(*db, forges, renderer, clock, log, senderOptions);
    gateway.emplace(*db, forges, clock, log);
  }
  // Reopens everything on the same database file, as a restarted daemon would.
  void restart() {
    gateway.reset();
    sender.reset();
    reporter.reset();
    db.reset();
    db = runner::store::Database::open(dir.path() / "switchyard.db");
    wire();
  }
  // Sends everything due now; the request targets the fake saw meanwhile.
  std::vector<runner::report::StepResult> drain() { return sender->drain(); }
  std::vector<runner::store::OutboxRow> rows() { return runner::store::Outbox(*db).list(); }

  runner::os::TempDir dir{"sy-report"};
  std::unique_ptr<runner::store::Database> db;
  tests::ManualClock clock;
  tests::RecordingLogger log;
  runner::http::CurlHttpClient http;
  std::unique_ptr<runner::Forge> forge;
  runner::report::Forges forges;
  runner::report::Templates templates = runner::report::Templates::builtIn();
  RecordedDiffer differ;
  runner::report::CommentRenderer renderer{templates, &differ};
  std::optional<runner::report::ForgeReporter> reporter;
  std::optional<runner::report::OutboxSender> sender;
  std::optional<runner::report::ForgeGateway> gateway;
};

struct GiteaFixture : FixtureBase {
  explicit GiteaFixture(runner::report::SenderOptions o = {}) {
    forge = integrations::gitea::makeForge(
        {.forgeName = "home", .apiUrl = gitea.apiUrl(), .token = gitea.token(), .timeout = 1s},
        http, clock, log);
    wire(o);
  }
  tests::FakeGitea gitea;
};

struct GitHubFixture : FixtureBase {
  explicit GitHubFixture(runner::report::SenderOptions o = {}) {
    github.setClock([this] { return clock.now(); });
    forge = integrations::github::makeForge(
        {.forgeName = "home", .apiUrl = github.apiUrl(), .token = github.token(), .timeout = 1s},
        http, clock, log);
    wire(o);
  }
  tests::FakeGitHub github;
};

inline std::string appKey() {
  return tests::webhookJson(
      "github/app-jwt/universal-github-app-jwt-vector.json")["private_key_pkcs8_pem"];
}

struct GitHubAppFixture : FixtureBase {
  GitHubAppFixture() {
    github.enableApp(kAppId, {{kRepo, kInstallation}});
    github.setClock([this] { return clock.now(); });
    forge = integrations::github::makeForge({.forgeName = "home",
                                             .apiUrl = github.apiUrl(),
                                             .appId = kAppId,
                                             .privateKeyPem = appKey(),
                                             .timeout = 1s,
                                             .redactor = &redactor},
                                            http, clock, log);
    wire();
  }
  runner::Redactor redactor;
  tests::FakeGitHub github;
};

// The requests' targets, filtered to those starting with `prefix`.
inline std::vector<std::string> targetsOf(const tests::FakeForgeServer& fake,
                                          const std::string& prefix = "") {
  std::vector<std::string> out;
  for (const auto& t : fake.targets())
    if (t.rfind(prefix, 0) == 0) out.push_back(t);
  return out;
}

// "context=state:description" of each status request, in order.
inline std::vector<std::string> statusBodies(const tests::FakeForgeServer& fake) {
  std::vector<std::string> out;
  for (const auto& r : fake.requests()) {
    if (r.method != "POST" || r.path.find("/statuses/") == std::string::npos) continue;
    auto j = r.json();
    out.push_back(j["context"].get<std::string>() + "=" + j["state"].get<std::string>() + ":" +
                  j["description"].get<std::string>());
  }
  return out;
}

}  // namespace tests::report
