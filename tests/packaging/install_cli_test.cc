// The commands made for installing and for someone else's CI: `plan --format github-actions`
// (with GITHUB_OUTPUT and GITHUB_STEP_SUMMARY pointing at temp files), `github-app-manifest`
// and `manpage`.
#include <fstream>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "runner/app/github_actions.h"
#include "runner/core/text.h"
#include "runner/os/files.h"
#include "tests/support/run.h"
#include "tests/support/temp_git_repo.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const char* kFlake = R"nix({
  inputs.nixpkgs.url = "github:NixOS/nixpkgs";
  outputs = { self, nixpkgs }: {
    nixosConfigurations = nixpkgs.lib.genAttrs [ "web" "db" "mail" ] (host: nixpkgs.lib.nixosSystem {
      modules = [ ./hosts/${host}.nix ./modules/common.nix { system.configurationRevision = self.rev or "dirty"; } ];
    });
  };
})nix";

runner::RunResult planInActions(const std::vector<std::string>& args,
                                const std::map<std::string, std::string>& env) {
  std::vector<std::string> all = {"plan"};
  all.insert(all.end(), args.begin(), args.end());
  return tests::run(tests::switchyardBinary().string(), all, {}, env);
}

}  // namespace

TEST_CASE("plan --format github-actions: hosts as a matrix, the plan as the step summary",
          "[integration][cli][packaging]") {
  tests::TempGitRepo t;
  auto a = t.commit({{"flake.nix", kFlake},
                     {"hosts/web.nix", "{ ... }: { }\n"},
                     {"hosts/db.nix", "{ ... }: { }\n"},
                     {"hosts/mail.nix", "{ ... }: { }\n"},
                     {"modules/common.nix", "{ ... }: { }\n"}});
  auto b = t.commit({{"hosts/web.nix", "{ ... }: { services.nginx.enable = true; }\n"},
                     {"hosts/mail.nix", "{ ... }: { services.postfix.enable = true; }\n"}});
  runner::os::TempDir dir("switchyard-gha");
  const fs::path output = dir.path() / "output", summary = dir.path() / "summary";
  // the runner appends: earlier steps' lines stay
  std::ofstream(output) << "earlier=1\n";
  const std::vector<std::string> args = {
      "--repo", t.path().string(), "--from", a,          "--to",
      b,        "--mode",          "static", "--format", "github-actions"};
  auto r = planInActions(
      args, {{"GITHUB_OUTPUT", output.string()}, {"GITHUB_STEP_SUMMARY", summary.string()}});
  INFO(r.errTail);
  REQUIRE(r.exitStatus == 0);
  auto lines = runner::split(runner::os::readFile(output), '\n');
  CHECK(lines == std::vector<std::string>{"earlier=1", "hosts=[\"mail\",\"web\"]", "count=2",
                                          "any=true", ""});
  std::string md = runner::os::readFile(summary);
  CHECK(md.find("### Switchyard · 2 of 3 machines affected") == 0);
  CHECK(md.find("| `web` | **yes** | file `hosts/web.nix` |") != std::string::npos);
  CHECK(r.out.find("switchyard: 2 of 3 hosts affected: [\"mail\",\"web\"]") != std::string::npos);

  // every warning of the plan is one ::warning command on the log
  auto j = tests::run(
      tests::switchyardBinary().string(),
      {"plan", "--repo", t.path().string(), "--from", a, "--to", b, "--mode", "static", "--json"});
  REQUIRE(j.exitStatus == 0);
  auto warnings = json::parse(j.out)["warnings"];
  size_t commands = 0;
  for (size_t at = 0;
       (at = r.out.find("::warning title=switchyard plan::", at)) != std::string::npos; ++at)
    ++commands;
  CHECK(commands == warnings.size());
  for (const auto& w : warnings)
    CHECK(r.out.find("::warning title=switchyard plan::" +
                     runner::app::escapeWorkflowData(w.get<std::string>()) + "\n") !=
          std::string::npos);

  // nothing affected: an empty list, and any=false to guard the matrix job with
  std::ofstream(output, std::ios::trunc).flush();
  auto none = planInActions({"--repo", t.path().string(), "--from", b, "--to", b, "--mode",
                             "static", "--format", "github-actions"},
                            {{"GITHUB_OUTPUT", output.string()}});
  INFO(none.errTail);
  REQUIRE(none.exitStatus == 0);
  CHECK(runner::os::readFile(output) == "hosts=[]\ncount=0\nany=false\n");

  // outside Actions: exit 2 naming the variable, before any planning
  auto outside = planInActions(args, {{"GITHUB_OUTPUT", ""}});
  CHECK(outside.exitStatus == 2);
  CHECK(outside.errTail.find("GITHUB_OUTPUT is not set") != std::string::npos);
  auto both = planInActions(
      {"--repo", t.path().string(), "--from", a, "--to", b, "--json", "--format", "github-actions"},
      {{"GITHUB_OUTPUT", output.string()}});
  CHECK(both.exitStatus == 2);
}

TEST_CASE("workflow command data is escaped as the Actions runner reads it", "[unit][packaging]") {
  CHECK(runner::app::escapeWorkflowData("50% done\r\nnext") == "50%25 done%0D%0Anext");
  CHECK(runner::app::escapeWorkflowData("plain: text, ok") == "plain: text, ok");
}

TEST_CASE("github-app-manifest: the shipped manifest with this runner's URLs",
          "[integration][cli][packaging]") {
  auto r = tests::switchyard({"github-app-manifest", "--url", "https://ci.example.net/", "--forge",
                              "gh", "--name", "Yard"});
  INFO(r.errTail);
  REQUIRE(r.exitStatus == 0);
  auto m = json::parse(r.out);
  auto shipped =
      json::parse(runner::os::readFile(tests::sourceDir() / "templates/github-app-manifest.json"));
  CHECK(m["name"] == "Yard");
  CHECK(m["url"] == "https://ci.example.net");
  CHECK(m["hook_attributes"] ==
        json({{"url", "https://ci.example.net/hooks/gh"}, {"active", true}}));
  CHECK(m["redirect_url"] == "https://ci.example.net/");
  CHECK(m["public"] == false);
  // exactly what integrations/github calls and parses (runner/app/commands_install.cc says why)
  CHECK(m["default_permissions"] == json({{"checks", "write"},
                                          {"statuses", "write"},
                                          {"pull_requests", "write"},
                                          {"issues", "write"},
                                          {"metadata", "read"}}));
  CHECK(m["default_events"] ==
        json({"check_run", "check_suite", "issue_comment", "pull_request", "push"}));
  CHECK(m["default_permissions"] == shipped["default_permissions"]);
  CHECK(m["default_events"] == shipped["default_events"]);

  auto bad = tests::switchyard({"github-app-manifest", "--url", "ci.example.net"});
  CHECK(bad.exitStatus == 2);
  CHECK(bad.errTail.find("--url: must start with https://") != std::string::npos);
  CHECK(tests::switchyard({"github-app-manifest"}).exitStatus == 2);
  CHECK(tests::switchyard({"github-app-manifest", "--url", "https://x", "--forge", "../x"})
            .exitStatus == 2);
}

TEST_CASE("manpage: every command's help, in roff", "[integration][cli][packaging]") {
  auto r = tests::switchyard({"manpage"});
  REQUIRE(r.exitStatus == 0);
  CHECK(r.out.find(".TH SWITCHYARD 1") == 0);
  for (const char* cmd :
       {"serve", "plan", "hosts", "build", "deploy", "runs", "rerun", "logs", "lockdiff", "diff",
        "parse", "check\\-config", "demo", "github\\-app\\-manifest"})
    CHECK(r.out.find(std::string(".SS ") + cmd + "\n") != std::string::npos);
  CHECK(r.out.find("\\-\\-format") != std::string::npos);  // plan's options are in it
  CHECK(r.out.find(".SS manpage") == std::string::npos);   // the hidden command is not
  // no line starts with a stray control character
  for (const auto& line : runner::split(r.out, '\n'))
    if (line.starts_with("'")) FAIL("line starts with ': " << line);
  // the main help does not list the packaging command
  auto help = tests::switchyard({"--help"});
  CHECK(help.out.find("manpage") == std::string::npos);
  CHECK(help.out.find("github-app-manifest") != std::string::npos);
}

// The example workflows' plan step, run as the Actions runner would (its `${{ … }}` filled in,
// `nix run …#switchyard --` being the built binary), and their matrix read from its output.
TEST_CASE("the example workflows' plan step works and feeds the build matrix",
          "[integration][cli][packaging]") {
  tests::TempGitRepo t;
  auto a = t.commit({{"flake.nix", kFlake},
                     {"hosts/web.nix", "{ ... }: { }\n"},
                     {"hosts/db.nix", "{ ... }: { }\n"},
                     {"hosts/mail.nix", "{ ... }: { }\n"},
                     {"modules/common.nix", "{ ... }: { }\n"}});
  auto b = t.commit({{"modules/common.nix", "{ ... }: { time.timeZone = \"UTC\"; }\n"}});
  for (const char* name : {"github-plan.yml", "gitea-plan.yml"}) {
    INFO(name);
    YAML::Node wf = YAML::LoadFile((tests::sourceDir() / "templates/workflows" / name).string());
    YAML::Node plan = wf["jobs"]["plan"];
    std::string run;
    for (const auto& step : plan["steps"])
      if (step["id"] && step["id"].as<std::string>() == "plan") run = step["run"].as<std::string>();
    while (!run.empty() && (run.back() == '\n' || run.back() == ' ')) run.pop_back();  // `>` folds
    REQUIRE(!run.empty());
    CHECK(plan["outputs"]["hosts"].as<std::string>() == "${{ steps.plan.outputs.hosts }}");
    CHECK(wf["jobs"]["build"]["strategy"]["matrix"]["host"].as<std::string>() ==
          "${{ fromJSON(needs.plan.outputs.hosts) }}");
    CHECK(wf["jobs"]["build"]["if"].as<std::string>() == "needs.plan.outputs.any == 'true'");
    // the runner's substitutions
    auto replace = [](std::string s, const std::string& from, const std::string& to) {
      for (size_t at; (at = s.find(from)) != std::string::npos;) s.replace(at, from.size(), to);
      return s;
    };
    run = replace(run, "${{ github.event.pull_request.base.sha }}", a);
    run = replace(run, "${{ github.event.pull_request.head.sha }}", b);
    auto dashes = run.find(" -- ");
    REQUIRE(dashes != std::string::npos);
    REQUIRE(run.starts_with("nix run "));
    // static: the test flake's nixpkgs input cannot be fetched here (auto would ask Nix)
    run =
        "'" + tests::switchyardBinary().string() + "'" + run.substr(dashes + 3) + " --mode static";
    runner::os::TempDir dir("switchyard-gha-wf");
    const fs::path output = dir.path() / "output", summary = dir.path() / "summary";
    auto r =
        tests::run("/bin/sh", {"-ec", run}, t.path(),
                   {{"GITHUB_OUTPUT", output.string()}, {"GITHUB_STEP_SUMMARY", summary.string()}});
    INFO(run << "\n" << r.errTail);
    REQUIRE(r.exitStatus == 0);
    CHECK(runner::os::readFile(output) == "hosts=[\"db\",\"mail\",\"web\"]\ncount=3\nany=true\n");
    CHECK(runner::os::readFile(summary).find("3 of 3 machines affected") != std::string::npos);
  }
}
