// The PR comment and check-run text (runner/report/comment.h, templates/*.mustache): the
// whole comment for a plan whose names need escaping, with closure diffs cut to a limit and
// the body cut to what a forge keeps; the check-run summary with the plan table and a log
// tail; and the template machinery (escaping, partials, overrides, errors).
#include "runner/report/comment.h"

#include <catch2/catch.hpp>

#include "runner/core/error.h"
#include "runner/core/text.h"
#include "runner/os/files.h"
#include "runner/report/templates.h"
#include "tests/runner/report/report_fixture.h"

using namespace tests::report;
using nlohmann::json;
using runner::HostState;
using runner::RunState;
using runner::Stage;
using runner::report::CommentRenderer;
using runner::report::Templates;

namespace {

// A plan with names that markdown would misread: a path with '|', '*' and a backtick, an
// input that was added, one removed, a host that does not evaluate, a warning with HTML.
runner::Plan trickyPlan() {
  runner::Plan p = fleetPlan();
  p.hosts[0].reasons = {{runner::ReasonKind::File, "modules/a|b*`c`.nix", "", ""}};
  p.hosts[1].affected = true;
  p.hosts[1].reasons = {
      {runner::ReasonKind::Dynamic, "flake.nix", "", "readDir of a computed path"}};
  p.hosts[1].evalError = "error: infinite recursion encountered\n  at flake.nix:3:5";
  runner::InputChange added;
  added.name = "agenix";
  added.added = true;
  added.newLocked =
      runner::LockedSummary{"3333333333333333333333333333333333333333", std::nullopt, std::nullopt};
  runner::InputChange via;
  via.name = "home-manager";
  via.path = {"home-manager", "nixpkgs"};
  via.transitive = true;
  via.oldLocked =
      runner::LockedSummary{std::nullopt, "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAA", std::nullopt};
  via.newLocked =
      runner::LockedSummary{std::nullopt, "sha256-BBBBBBBBBBBBBBBBBBBBBBBBBBBB", std::nullopt};
  p.inputsChanged.push_back(added);
  p.inputsChanged.push_back(via);
  p.warnings = {"<b>static</b> analysis gave up on modules/x.nix"};
  return p;
}

}  // namespace

TEST_CASE("comment: the whole PR comment, escaped for markdown", "[unit][report]") {
  Templates templates = Templates::builtIn();
  RecordedDiffer differ;
  differ.on(kWebOld, kWebNew, kWebDiff);
  CommentRenderer renderer(templates, &differ);
  auto run = prRun();
  run.state = RunState::Succeeded;
  auto web1 = hostView("web1", Stage::Build, HostState::Succeeded, "built in 2m14s");
  web1.outPath = kWebNew;
  web1.baseOutPath = kWebOld;
  auto web2 = hostView("web2", Stage::Build, HostState::Succeeded, "built in 3s");
  web2.outPath = kWebNew;
  web2.baseOutPath = kWebNew;  // same toplevel as the base
  auto db = hostView("db", Stage::Build, HostState::Failed, "build failed: `hello` | *boom*");
  auto edge = hostView("edge", Stage::Plan, HostState::Failed, "does not evaluate");
  auto mail = hostView("mail", Stage::Plan, HostState::NotAffected);
  runner::Plan plan = trickyPlan();
  std::string body =
      renderer.render(runner::report::commentModel(run, &plan, {db, edge, mail, web1, web2}));
  CHECK(body == R"(### Switchyard · 4 of 5 machines affected, 1 does not evaluate

`ec26c3e5` compared with `d6fde929` · [run #12](https://ci.example.org/runs/12) · finished

| Machine | Affected | Why | Result |
|---|---|---|---|
| `db` | **yes** | file ``modules/a\|b*`c`.nix`` | ❌ build failed\: \`hello\` \| \*boom\* |
| `edge` | **yes** | dynamic: readDir of a computed path in `flake.nix`; does not evaluate: error\: infinite recursion encountered at flake.nix\:3\:5 | ❌ does not evaluate |
| `mail` | no | – | ⚪ not affected |
| `web1` | **yes** | file `modules/web.nix` | ✅ built in 2m14s |
| `web2` | **yes** | file `modules/web.nix` | ✅ built in 3s |

**Changed inputs**

| Input | Change | Old | New |
|---|---|---|---|
| `nixpkgs` | updated | `111111111111` (2026-01-01) | `222222222222` (2026-01-08) |
| `agenix` | added | – | `333333333333` |
| `home-manager` | via nixpkgs | `sha256-AAAAAAAAAAAA` | `sha256-BBBBBBBBBBBB` |

2 files changed.

> ⚠️ &lt;b&gt;static&lt;/b&gt; analysis gave up on modules/x.nix

#### Closure changes

<details open><summary><code>web1</code>: 1 version changed, +47.9 KiB</summary>

| Package | Version | Size |
|---|---|---|
| data |  | +47.9 KiB |
| hello | 2.12 → 2.13 |  |

</details>

<details open><summary><code>web2</code>: same toplevel as the base commit</summary>

</details>

<sub>Updated by Switchyard on every change. To build machines again, comment <code>/switchyard rerun</code> followed by their names (people with write access).</sub>
)");
  // nothing in it is a command line a webhook would act on
  CHECK(runner::CommentCommand().kind == runner::CommentCommand::Kind::None);
  CHECK(runner::parseCommentCommand(body).kind == runner::CommentCommand::Kind::None);
}

TEST_CASE("comment: long closure diffs are cut per host, and the body to what a forge keeps",
          "[unit][report]") {
  Templates templates = Templates::builtIn();
  RecordedDiffer differ;
  std::string many;
  for (int i = 0; i < 100; ++i) many += "pkg" + std::to_string(100 + i) + ": 1.0 → 1.1\n";
  differ.on(kWebOld, kWebNew, many);
  auto run = prRun();
  auto web1 = hostView("web1", Stage::Deploy, HostState::Succeeded, "deployed");
  web1.outPath = kWebNew;
  web1.baseOutPath = kWebOld;
  runner::Plan plan = fleetPlan();
  auto model = runner::report::commentModel(run, &plan, {web1});

  std::string body = CommentRenderer(templates, &differ).render(model);
  CHECK(body.find("| pkg139 | 1.0 → 1.1 |  |") != std::string::npos);
  CHECK(body.find("pkg140") == std::string::npos);
  CHECK(body.find("… and 60 more") != std::string::npos);
  CHECK(body.find("<code>web1</code>: 100 versions changed</summary>") != std::string::npos);

  std::string small = CommentRenderer(templates, &differ, {40, 2000}).render(model);
  CHECK(small.size() <= 2000);
  CHECK(small.find("| pkg104 |") != std::string::npos);  // 5 rows kept when it is too long
  CHECK(small.find("| pkg105 |") == std::string::npos);
  CHECK(small.find("… and 95 more") != std::string::npos);

  std::string tiny = CommentRenderer(templates, &differ, {40, 600}).render(model);
  CHECK(tiny.size() <= 600);
  CHECK(runner::endsWith(tiny, "the run page has everything)*\n"));

  // no differ: no closure section at all
  CHECK(CommentRenderer(templates, nullptr).render(model).find("Closure changes") ==
        std::string::npos);
}

TEST_CASE("comment: a check run summary with the plan table and the end of a log",
          "[unit][report]") {
  Templates templates = Templates::builtIn();
  auto run = prRun();
  runner::Plan plan = fleetPlan();
  std::string planSummary =
      runner::report::renderCheckRunSummary(templates, run, "3 of 5 machines affected", &plan, "");
  CHECK(runner::startsWith(planSummary,
                           "3 of 5 machines affected\n\n| Machine | Affected | Why |\n"
                           "|---|---|---|\n| `db` | **yes** | input `nixpkgs` |\n"));
  CHECK(runner::endsWith(planSummary, "\n[Run #12](https://ci.example.org/runs/12)\n"));

  std::string log(70000, 'x');
  log += "\n```\nerror: builder failed\n";
  std::string failed =
      runner::report::renderCheckRunSummary(templates, run, "build failed", nullptr, log);
  CHECK(failed.size() <= 60000);
  CHECK(failed.find("**End of the log**\n\n````text\n…\n") != std::string::npos);
  CHECK(failed.find("```\nerror: builder failed\n````\n") != std::string::npos);
}

TEST_CASE("templates: escaping, raw values, partials, overrides and errors", "[unit][report]") {
  Templates t(std::map<std::string, std::string, std::less<>>{{"a", "{{x}} / {{{x}}} / {{> b}}\n"},
                                                              {"b", "[{{y}}]"}});
  CHECK(t.render("a", json{{"x", "*x* <y>"}, {"y", "a|b"}}) ==
        "\\*x\\* &lt;y&gt; / *x* <y> / [a\\|b]\n");
  CHECK(t.render("a", json{{"x", 3}, {"y", "ok"}}) == "3 / 3 / [ok]\n");
  CHECK_THROWS_AS(t.render("nope", json::object()), runner::InputError);
  Templates broken(std::map<std::string, std::string, std::less<>>{{"bad", "{{#open}} never"}});
  CHECK_THROWS_AS(broken.render("bad", json::object()), runner::InputError);

  auto builtIn = Templates::builtIn();
  CHECK(builtIn.has("pr_comment"));
  CHECK(builtIn.has("plan_table"));
  CHECK(builtIn.has("check_run"));
  // the embedded copies are the files in templates/
  CHECK(
      builtIn.render("check_run", json{{"description", "d"}, {"run_id", "1"}, {"run_url", "u"}}) ==
      "d\n\n[Run #1](u)\n");

  runner::os::TempDir dir("sy-templates");
  runner::os::writeFileAtomic(dir.path() / "check_run.md.mustache", "custom {{description}}\n");
  auto custom = Templates::withOverrides(dir.path());
  CHECK(custom.render("check_run", json{{"description", "d"}}) == "custom d\n");
  CHECK(custom.has("pr_comment"));
}
