// NixCli against real Nix on generated lab flakes: many hosts in one process, per-host errors
// (also those builtins.tryEval cannot catch), bare repositories, host targets, dry runs,
// builds with the internal-json log, GC roots, and closure scans.
#include "runner/nix/nix_cli.h"

#include <cstdlib>
#include <filesystem>
#include <thread>

#include <catch2/catch.hpp>

#include "runner/core/error.h"
#include "runner/core/text.h"
#include "runner/lab/lab.h"
#include "runner/os/files.h"
#include "runner/os/process.h"
#include "tests/runner/nix/counting_process_runner.h"
#include "tests/support/run.h"
#include "tests/support/temp_git_repo.h"
#include "tests/support/wait.h"

namespace fs = std::filesystem;
using namespace runner::nix;
using runner::lab::Lab;
using runner::lab::LabHost;
using runner::lab::numberedHosts;

namespace {

std::string drv(const HostEvals& e, const std::string& host) {
  const auto& v = e.hosts.at(host);
  INFO(host << ": " << v.error.value_or("(no error)"));
  REQUIRE(v.value);
  return v.value->get<std::string>();
}

}  // namespace

TEST_CASE("NixCli evaluates many hosts in one process and attributes errors",
          "[integration][nix]") {
  runner::os::PosixProcessRunner real;
  tests::CountingProcessRunner procs(real);
  runner::os::TempDir tmp("sy-nixcli");
  auto lab = Lab::create(real, tmp.path(), {.hosts = numberedHosts(4)});
  NixCli nix(procs);
  std::string good = lab.infra.head();

  auto all = nix.evalDrvPaths(gitFlakeRef(lab.infra.path(), good), std::nullopt);
  CHECK(procs.count("nix") == 1);
  CHECK(all.processes == 1);
  REQUIRE(all.hosts.size() == 4);
  CHECK(runner::endsWith(drv(all, "host03"), "-nixos-system-host03-fake-24.05.drv"));

  SECTION("two processes give the same answer") {
    procs.reset();
    auto two =
        nix.evalDrvPaths(gitFlakeRef(lab.infra.path(), good), std::nullopt, {.processes = 2});
    CHECK(procs.count("nix") == 4);  // metadata prefetch, host list, two evaluations
    for (const auto& [h, v] : all.hosts) CHECK(drv(two, h) == v.value->get<std::string>());
  }
  SECTION("a host that throws is retried alone; the others keep their first answer") {
    std::string bad = lab.infra.updateHost("host02", [](LabHost& h) {
      h.extraConfig = "networking.domain = throw \"boom: no domain\";";
    });
    // config.json serialises every option, so the throw reaches the drvPath
    procs.reset();
    auto e = nix.evalDrvPaths(gitFlakeRef(lab.infra.path(), bad), std::nullopt);
    CHECK(procs.count("nix") == 2);
    CHECK(drv(e, "host01") == drv(all, "host01"));
    REQUIRE(e.hosts.at("host02").error);
    CHECK(e.hosts.at("host02").error->find("boom: no domain") != std::string::npos);
    CHECK_FALSE(e.hosts.at("host02").value);
  }
  SECTION("an error tryEval cannot catch falls back to one process per host") {
    std::string bad = lab.infra.updateHost("host03", [](LabHost& h) {
      h.extraConfig = "networking.domain = config.services.doesNotExist.foo;";
    });
    procs.reset();
    auto e = nix.evalDrvPaths(gitFlakeRef(lab.infra.path(), bad), std::nullopt,
                              {.processes = 1, .fallbackWorkers = 2});
    CHECK(procs.count("nix") == 1 + 1 + 4);  // all at once, the host list, each alone
    CHECK(drv(e, "host04") == drv(all, "host04"));
    REQUIRE(e.hosts.at("host03").error);
    CHECK(
        runner::startsWith(*e.hosts.at("host03").error, "error: attribute 'doesNotExist' missing"));
    CHECK(e.hosts.at("host03").error->find("hosts/host03/default.nix") != std::string::npos);
  }
  SECTION("named hosts, one of them unknown") {
    auto e = nix.evalDrvPaths(gitFlakeRef(lab.infra.path(), good),
                              std::vector<std::string>{"host01", "nope"});
    CHECK(e.hosts.size() == 2);
    CHECK(e.hosts.at("nope").missing);
    CHECK(drv(e, "host01") == drv(all, "host01"));
  }
  SECTION("a broken flake.nix is a flake error") {
    std::string broken = lab.infra.commitFiles({{"flake.nix", "{ outputs = { self }: {"}}, "oops");
    auto e = nix.evalDrvPaths(gitFlakeRef(lab.infra.path(), broken), std::nullopt);
    REQUIRE(e.flakeError);
    CHECK(e.flakeError->find("syntax error") != std::string::npos);
    CHECK_THROWS_AS(nix.hostNames(gitFlakeRef(lab.infra.path(), broken)), runner::NixError);
  }
  SECTION("a bare clone evaluates the same") {
    fs::path bare = tmp.path() / "bare.git";
    tests::runOk("git", {"clone", "-q", "--bare", lab.infra.path().string(), bare.string()});
    auto e = nix.evalDrvPaths(gitFlakeRef(bare, good), std::nullopt);
    CHECK(drv(e, "host02") == drv(all, "host02"));
    CHECK(nix.hostNames(gitFlakeRef(bare, good)) ==
          std::vector<std::string>{"host01", "host02", "host03", "host04"});
  }
  SECTION("a bare mirror whose HEAD is main evaluates a commit that is only on a PR ref") {
    // What a forge mirror looks like: Nix 2.8 alone fetches `master` here and fails.
    fs::path bare = tmp.path() / "mirror.git";
    tests::runOk("git", {"init", "-q", "--bare", "-b", "main", bare.string()});
    tests::runOk("git", {"-C", lab.infra.path().string(), "push", "-q", bare.string(),
                         good + ":refs/pull/7/head"});
    auto e = nix.evalDrvPaths(gitFlakeRef(bare, good), std::nullopt);
    CHECK(drv(e, "host03") == drv(all, "host03"));
  }
}

TEST_CASE("gitFlakeRef pins a bare repository's commit on a ref git can read", "[unit][nix]") {
  tests::TempGitRepo repo;
  std::string sha = repo.commit({{"flake.nix", "{ }"}});
  fs::path bare = repo.bareClone();
  std::string plain = "git+file://" + bare.string() + "?rev=" + sha;
  std::string pin = "refs/switchyard/commits/" + sha;
  CHECK(gitFlakeRef(bare, sha) == plain + "&ref=" + pin);
  CHECK(tests::runOk("git", {"-C", bare.string(), "rev-parse", pin}) == sha);
  CHECK_FALSE(fs::exists(bare / (pin + ".lock")));
  CHECK(gitFlakeRef(bare, sha) == plain + "&ref=" + pin);  // again: already there

  // Work trees and abbreviated revs are left as they are; nothing is written for them.
  CHECK(gitFlakeRef(repo.path(), sha) == "git+file://" + repo.path().string() + "?rev=" + sha);
  CHECK_FALSE(fs::exists(repo.path() / ".git" / "refs" / "switchyard"));
  CHECK(gitFlakeRef(bare, sha.substr(0, 12)) ==
        "git+file://" + bare.string() + "?rev=" + sha.substr(0, 12));

  // A ref that cannot be written is an error, not a reference Nix would then fail on.
  fs::path readOnly = repo.bareClone();
  std::string other = repo.commit({{"a", "b"}});
  tests::runOk("git", {"-C", repo.path().string(), "push", "-q", readOnly.string(), "HEAD"});
  fs::create_directories(readOnly / "refs" / "switchyard");
  runner::os::writeFileAtomic(readOnly / "refs" / "switchyard" / "commits", "not a directory");
  CHECK_THROWS_AS(gitFlakeRef(readOnly, other), runner::SysError);
}

TEST_CASE("NixCli reads targets and platforms of every host in one process", "[integration][nix]") {
  runner::os::PosixProcessRunner real;
  tests::CountingProcessRunner procs(real);
  runner::os::TempDir tmp("sy-nixcli");
  auto hosts = runner::lab::seedHosts();
  hosts[1].system = "aarch64-linux";  // demo
  auto lab = Lab::create(real, tmp.path(), {.hosts = hosts});
  NixCli nix(procs);
  auto info = nix.evalHostInfo(gitFlakeRef(lab.infra.path(), lab.infra.head()));
  CHECK(procs.count("nix") == 1);
  REQUIRE(info.hosts.size() == 5);
  // Deploy facts a host does not set are null (Clan vars, Colmena's user, port, sshOptions,
  // privilegeEscalationCommand, replaceUnknownProfiles; runner/deploy/deploy_stage.cc reads them)
  auto facts = [](nlohmann::json set) {
    nlohmann::json all = {{"clan", nullptr},
                          {"clanVars", nullptr},
                          {"colmena", nullptr},
                          {"escalation", nullptr},
                          {"explicitUpdate", nullptr},
                          {"port", nullptr},
                          {"replaceUnknownProfiles", nullptr},
                          {"sshOptions", nullptr},
                          {"system", nullptr},
                          {"tags", nullptr},
                          {"user", nullptr}};
    all.update(set);
    return all;
  };
  CHECK(*info.hosts.at("octavia").value ==
        facts({{"clan", "root@10.20.0.2"}, {"system", "x86_64-linux"}}));
  CHECK(*info.hosts.at("demo").value ==
        facts({{"colmena", "demo.lab.invalid"}, {"system", "aarch64-linux"}}));
}

TEST_CASE("NixCli builds, streams the log, reports failures and adds GC roots",
          "[integration][nix]") {
  runner::os::PosixProcessRunner real;
  runner::os::TempDir tmp("sy-nixcli");
  auto hosts = numberedHosts(3);
  hosts[2].extraConfig = "testing.buildSeconds = \"not a number\";";
  auto lab = Lab::create(real, tmp.path(), {.hosts = hosts});
  NixCli nix(real);
  auto e = nix.evalDrvPaths(gitFlakeRef(lab.infra.path(), lab.infra.head()), std::nullopt);
  std::vector<std::string> drvs = {drv(e, "host01"), drv(e, "host02"), drv(e, "host03")};

  DryRun dry = nix.dryRun(drvs);
  CHECK(dry.outputs.size() == 3);
  CHECK(dry.willBuild.count(drvs[0]));
  CHECK(dry.willBuild.size() >= 9);
  auto closure = nix.showDerivations(drvs, true);
  CHECK(closure.count(drvs[0]));

  int buildStarts = 0;
  std::vector<std::string> logLines;
  BuildRun run = nix.build({.drvPaths = drvs}, [&](const LogEvent& ev) {
    if (auto* s = std::get_if<ActivityStart>(&ev); s && s->type == ActivityType::Build)
      ++buildStarts;
    if (auto* r = std::get_if<ActivityResult>(&ev); r && r->type == ResultType::BuildLogLine)
      logLines.push_back(r->text(0));
  });
  CHECK(run.process.exitStatus == 1);
  CHECK(run.outputs.empty());  // nix prints --json only when everything was built
  CHECK(buildStarts == static_cast<int>(dry.willBuild.size()));
  REQUIRE(run.errors.size() == 1);
  CHECK(run.errors[0] == "error: builder for '" + drvs[2] + "' failed with exit code 1");
  CHECK(std::count(logLines.begin(), logLines.end(), "built host01") == 1);
  CHECK(std::count(logLines.begin(), logLines.end(), "sleep: invalid number 'not a number'") == 1);

  const std::string out1 = dry.outputs.at(drvs[0]).at("out");
  std::string err;
  CHECK(nix.addGcRoot(tmp.path() / "roots" / "host01", out1, &err));
  CHECK(fs::read_symlink(tmp.path() / "roots" / "host01") == out1);
  CHECK_FALSE(
      nix.addGcRoot(tmp.path() / "roots" / "host03", dry.outputs.at(drvs[2]).at("out"), &err));
  CHECK_FALSE(err.empty());

  BuildRun again = nix.build({.drvPaths = {drvs[0], drvs[1]}});
  CHECK(again.process.exitStatus == 0);
  CHECK(again.outputs.at(drvs[0]).at("out") == out1);
}

TEST_CASE("NixCli kills a build at its timeout", "[integration][nix]") {
  runner::os::PosixProcessRunner real;
  runner::os::TempDir tmp("sy-nixcli");
  auto hosts = numberedHosts(1);
  hosts[0].buildSeconds = 61;  // "sleep 61": a command line no other test uses
  auto lab = Lab::create(real, tmp.path(), {.hosts = hosts});
  NixCli nix(real);
  auto e = nix.evalDrvPaths(gitFlakeRef(lab.infra.path(), lab.infra.head()), std::nullopt);
  BuildRun run = nix.build({.drvPaths = {drv(e, "host01")}, .timeout = std::chrono::seconds(2)});
  CHECK(run.process.timedOut);
  CHECK(run.process.duration < std::chrono::seconds(10));
  // the sandboxed builder (a build user's `sleep 61`) went with it
  auto builderLeft = [] {
    auto ps = tests::run("ps", {"-eo", "user:20,args"});
    for (const auto& line : runner::split(ps.out, '\n'))
      if (runner::startsWith(line, "nixbld") && runner::endsWith(line, " sleep 61")) return true;
    return false;
  };
  CHECK(tests::waitUntil([&] { return !builderLeft(); }, std::chrono::seconds(10),
                         std::chrono::milliseconds(100)));
}

TEST_CASE("NixCli finds the revision in a closure only when the flake uses it",
          "[integration][nix]") {
  runner::os::PosixProcessRunner real;
  runner::os::TempDir tmp("sy-nixcli");
  NixCli nix(real);
  for (bool selfRevision : {false, true}) {
    auto lab = Lab::create(real, tmp.path() / (selfRevision ? "a" : "b"),
                           {.hosts = numberedHosts(2), .selfRevision = selfRevision});
    std::string rev = lab.infra.head();
    auto e = nix.evalDrvPaths(gitFlakeRef(lab.infra.path(), rev), std::nullopt);
    CHECK(nix.closureMentions({drv(e, "host01")}, {rev}) == selfRevision);
    CHECK_FALSE(nix.closureMentions({drv(e, "host01")}, {"no-such-needle-anywhere"}));
    auto meta = nix.metadata(gitFlakeRef(lab.infra.path(), rev));
    CHECK(meta.rev == rev);
    CHECK(runner::endsWith(meta.path, "-source"));
    CHECK(runner::startsWith(meta.narHash, "sha256-"));
    CHECK(meta.lastModified > 1600000000);
  }
}

TEST_CASE("a host's deploy target: given, then Clan, then Colmena, then its name", "[unit][nix]") {
  HostValue both;
  both.value = nlohmann::json{{"clan", "root@10.0.0.2"}, {"colmena", "web.lan"}, {"system", "x"}};
  HostValue colmena;
  colmena.value = nlohmann::json{{"clan", nullptr}, {"colmena", "web.lan"}};
  HostValue empty;
  empty.value = nlohmann::json{{"clan", ""}, {"colmena", 7}};
  HostValue failed;
  failed.error = "error: infinite recursion";
  std::map<std::string, std::string> given = {{"web", "admin@10.1.1.1"}};
  CHECK(chooseTarget("web", given, &both).text == "admin@10.1.1.1");
  CHECK(chooseTarget("web", given, &both).from == "config");
  CHECK(chooseTarget("db", given, &both).text == "root@10.0.0.2");
  CHECK(chooseTarget("db", given, &both).from == "clan");
  CHECK(chooseTarget("db", given, &colmena).from == "colmena");
  CHECK(chooseTarget("db", given, &empty).text == "db");  // empty and non-string: not targets
  CHECK(chooseTarget("db", given, &empty).from == "name");
  CHECK(chooseTarget("db", given, &failed).from == "name");
  CHECK(chooseTarget("db", given, nullptr).text == "db");
}

TEST_CASE("fetches for forks run Nix and git without credentials", "[unit][nix]") {
  runner::os::TempDir tmp("sy-untrusted");
  // A stand-in for nix that records the environment it was given.
  const fs::path envFile = tmp.path() / "env";
  const fs::path fakeNix = tmp.path() / "nix";
  runner::os::writeFileAtomic(fakeNix, "#!/bin/sh\nenv > '" + envFile.string() + "'\necho '[]'\n",
                              fs::perms(0755));
  ::setenv("SSH_AUTH_SOCK", "/tmp/agent.sock", 1);
  ::setenv("GIT_SSH", "/usr/bin/ssh", 1);
  runner::os::PosixProcessRunner procs;
  auto envOf = [&](const NixCliOptions& o) {
    NixCli nix(procs, o);
    CHECK(nix.hostNames("git+file:///x?rev=" + std::string(40, 'a')).empty());
    std::map<std::string, std::string> env;
    for (const auto& line : runner::split(runner::os::readFile(envFile), '\n'))
      if (auto eq = line.find('='); eq != std::string::npos)
        env[line.substr(0, eq)] = line.substr(eq + 1);
    return env;
  };
  NixCliOptions base;
  base.nix = fakeNix.string();
  auto trusted = envOf(base);
  CHECK(trusted.at("SSH_AUTH_SOCK") == "/tmp/agent.sock");
  CHECK_FALSE(trusted.count("GIT_SSH_COMMAND"));

  auto env = envOf(credentiallessNixOptions(base, tmp.path() / "home"));
  CHECK(env.at("HOME") == (tmp.path() / "home").string());
  CHECK(env.at("NIX_CONFIG") == "access-tokens = ");  // the first line; netrc on the next
  CHECK(runner::os::readFile(envFile).find("\nnetrc-file = /dev/null\n") != std::string::npos);
  CHECK(env.at("GIT_SSH_COMMAND") == "false");
  CHECK(env.at("GIT_CONFIG_NOSYSTEM") == "1");
  CHECK(env.at("GIT_CONFIG_GLOBAL") == "/dev/null");
  CHECK(env.at("GIT_TERMINAL_PROMPT") == "0");
  CHECK_FALSE(env.count("SSH_AUTH_SOCK"));
  CHECK_FALSE(env.count("GIT_SSH"));
  ::unsetenv("SSH_AUTH_SOCK");
  ::unsetenv("GIT_SSH");
}

TEST_CASE("Nix honours the credential-less options over nix.conf", "[integration][nix]") {
  runner::os::TempDir tmp("sy-untrusted-nix");
  runner::os::writeFileAtomic(tmp.path() / "user.conf", "access-tokens = github.com=secret\n");
  NixCliOptions base;
  base.env["NIX_USER_CONF_FILES"] = (tmp.path() / "user.conf").string();
  auto show = [&](const NixCliOptions& o) {
    runner::os::PosixProcessRunner procs;
    runner::RunOptions r{.program = "nix",
                         .args = {"--extra-experimental-features", "nix-command", "show-config"}};
    r.env = o.env;
    return procs.run(r).out;
  };
  CHECK(show(base).find("access-tokens = github.com=secret") != std::string::npos);
  auto out = show(credentiallessNixOptions(base, tmp.path() / "home"));
  CHECK(out.find("github.com=secret") == std::string::npos);
  CHECK(out.find("netrc-file = /dev/null") != std::string::npos);
}
