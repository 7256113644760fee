// Exact and auto planning against real Nix on generated lab flakes: exact agrees with static
// where static is right and corrects it where static over-reports; lock bumps; evaluation
// errors; the drvPath cache (zero nix processes on a re-plan); self-revision-only.
#include "runner/plan/exact_planner.h"

#include <filesystem>

#include <catch2/catch.hpp>

#include "runner/core/error.h"
#include "runner/core/text.h"
#include "runner/git/repository.h"
#include "runner/lab/lab.h"
#include "runner/nix/nix_cli.h"
#include "runner/os/files.h"
#include "runner/os/process.h"
#include "runner/plan/static_planner.h"
#include "runner/store/database.h"
#include "runner/store/drv_cache.h"
#include "tests/runner/nix/counting_process_runner.h"

namespace fs = std::filesystem;
using namespace runner;
using lab::Lab;
using lab::LabHost;
using lab::numberedHosts;
using lab::Wiring;

namespace {

std::vector<std::string> affected(const Plan& p) { return p.affectedHosts(); }

// Everything a test needs: a lab, the repository, nix behind a counting runner, a cache.
struct Fixture {
  os::PosixProcessRunner real;
  tests::CountingProcessRunner procs{real};
  os::TempDir tmp{"sy-exact"};
  Lab lab;
  std::unique_ptr<git::Repository> repo;
  std::unique_ptr<store::Database> db;
  std::unique_ptr<store::SqliteDrvCache> cache;

  explicit Fixture(lab::InfraOptions options = {})
      : lab(Lab::create(real, tmp.path(), std::move(options))) {
    repo = git::Repository::open(lab.infra.path());
    db = store::Database::open(tmp.path() / "state.db", store::Durability::Normal);
    cache = std::make_unique<store::SqliteDrvCache>(*db);
  }
  Plan exact(const std::string& from, const std::string& to, bool useCache = true) {
    nix::NixCli nix(procs);
    return plan::planExact(*repo, nix, from, to, {.cache = useCache ? cache.get() : nullptr});
  }
  Plan autoPlan(const std::string& from, const std::string& to) {
    nix::NixCli nix(procs);
    return plan::planAuto(*repo, nix, plan::planStatic(*repo, from, to), {.cache = cache.get()});
  }
  // Auto as the CLI and the daemon run it: static planning failures fall back to Nix.
  Plan autoFull(const std::string& from, const std::string& to) {
    nix::NixCli nix(procs);
    return plan::planAuto(*repo, nix, from, to, {}, {.cache = cache.get()});
  }
};

}  // namespace

TEST_CASE("exact: a module change affects the hosts importing it, static agrees",
          "[integration][nix][plan]") {
  Fixture f;  // the seed's five hosts, genAttrs wiring
  std::string a = f.lab.infra.head();
  std::string b = f.lab.infra.changeModule("web");
  Plan p = f.exact(a, b);
  CHECK(p.mode == PlanMode::Exact);
  CHECK(affected(p) == std::vector<std::string>{"vps-het-1", "wellsjaha"});
  const HostPlan* web = p.host("wellsjaha");
  REQUIRE(web);
  REQUIRE(web->reasons.size() == 1);
  CHECK(web->reasons[0].kind == ReasonKind::Drv);
  CHECK(web->reasons[0].detail ==
        "config.json: env.text differs; etc-nginx.conf: env.text differs");
  REQUIRE(web->oldDrv);
  REQUIRE(web->newDrv);
  CHECK(*web->oldDrv != *web->newDrv);
  const HostPlan* demo = p.host("demo");
  REQUIRE(demo);
  CHECK_FALSE(demo->affected);
  CHECK(demo->oldDrv == demo->newDrv);
  CHECK(p.filesChanged == std::vector<FileChange>{{"modules/web.nix", FileStatus::Modified, {}}});
  CHECK(affected(plan::planStatic(*f.repo, a, b)) == affected(p));
  CHECK(affected(f.autoPlan(a, b)) == affected(p));
}

TEST_CASE("comments and whitespace change no host: exact, auto and static agree",
          "[integration][nix][plan]") {
  Fixture f;
  std::string a = f.lab.infra.head();
  std::string b = f.lab.infra.commentOnly("modules/base.nix");
  std::string c = f.lab.infra.whitespaceOnly("hosts/octavia/default.nix");
  for (auto [from, to] : {std::pair{a, b}, std::pair{b, c}}) {
    Plan st = plan::planStatic(*f.repo, from, to);
    // static reads imported code by its syntax tree (README "How planning works"), so it no
    // longer over-reports these; exact and auto must not either
    CHECK(affected(st).empty());
    CHECK(affected(f.exact(from, to)).empty());
    Plan au = f.autoPlan(from, to);
    CHECK(au.mode == PlanMode::Auto);
    CHECK(affected(au).empty());
    for (const auto& h : au.hosts) CHECK(h.reasons.empty());
  }
}

TEST_CASE("exact: a nixpkgs bump that changes hello affects only the hosts using it",
          "[integration][nix][plan]") {
  Fixture f;
  std::string a = f.lab.infra.head();
  f.lab.nixpkgs.setHelloVersion("2.13");
  std::string b = f.lab.infra.updateNixpkgs();
  Plan p = f.exact(a, b);
  CHECK(affected(p) == std::vector<std::string>{"vps-het-1", "wellsjaha"});
  REQUIRE(p.inputsChanged.size() == 1);
  CHECK(p.inputsChanged[0].name == "nixpkgs");
  CHECK(p.host("wellsjaha")->reasons[0].detail ==
        "config.json: input hello-2.12 replaced by hello-2.13; system-path: input hello-2.12 "
        "replaced by hello-2.13");
  Plan au = f.autoPlan(a, b);
  CHECK(affected(au) == affected(p));
  const HostPlan* web = au.host("vps-het-1");
  CHECK(web->hasReason(ReasonKind::Input));  // static's reason kept next to exact's
  CHECK(web->hasReason(ReasonKind::Drv));
}

TEST_CASE("exact: one host that does not evaluate is reported, the others are planned",
          "[integration][nix][plan]") {
  Fixture f;
  std::string a = f.lab.infra.head();
  std::string b = f.lab.infra.updateHost("demo", [](LabHost& h) {
    h.extraConfig = "networking.domain = config.services.doesNotExist.domain;";
  });
  std::string c = f.lab.infra.changeModule("base");
  Plan p = f.exact(a, c);
  CHECK(p.hosts.size() == 5);
  const HostPlan* demo = p.host("demo");
  REQUIRE(demo);
  CHECK(demo->affected);
  REQUIRE(demo->evalError);
  CHECK(startsWith(*demo->evalError, "error: attribute 'doesNotExist' missing"));
  CHECK(affected(p) ==
        std::vector<std::string>{"demo", "nixos", "octavia", "vps-het-1", "wellsjaha"});
  CHECK_FALSE(p.host("nixos")->evalError);
  // the failing host is not cached: planning again evaluates it (and only it) again
  f.procs.reset();
  Plan again = f.exact(a, c);
  CHECK(again.host("demo")->evalError == demo->evalError);
  CHECK(f.procs.count("nix") >= 1);
}

TEST_CASE("exact: a second plan of the same commits runs no nix process",
          "[integration][nix][plan]") {
  Fixture f({.wiring = Wiring::ReadDir, .hosts = numberedHosts(4)});
  std::string a = f.lab.infra.head();
  std::string b = f.lab.infra.changeHost("host02");
  Plan first = f.exact(a, b);
  CHECK(f.procs.count("nix") > 0);
  f.procs.reset();
  Plan second = f.exact(a, b);
  CHECK(f.procs.count("nix") == 0);
  CHECK(f.procs.total() == 0);
  CHECK(affected(second) == std::vector<std::string>{"host02"});
  CHECK(nlohmann::json(second) == nlohmann::json(first));

  // the same tree at another commit: no derivation mentions the commit, so still no process
  std::string c = f.lab.infra.commitFiles({}, "empty commit, same tree");
  f.procs.reset();
  Plan third = f.exact(a, c);
  CHECK(f.procs.count("nix") == 0);
  CHECK(affected(third) == affected(first));
}

TEST_CASE("exact: self.rev hosts are self-revision-only on a README change",
          "[integration][nix][plan]") {
  Fixture f({.wiring = Wiring::PerHost, .hosts = numberedHosts(3), .selfRevision = true});
  std::string a = f.lab.infra.head();
  std::string b = f.lab.infra.readmeOnly();
  Plan p = f.exact(a, b);
  CHECK(affected(p).size() == 3);
  for (const auto& h : p.hosts) {
    REQUIRE(h.reasons.size() == 1);
    CHECK(h.reasons[0].kind == ReasonKind::SelfRevisionOnly);
    CHECK(*h.oldDrv != *h.newDrv);
  }
  Plan skipped = p;
  CHECK(plan::dropSelfRevisionOnly(skipped) == 3);
  CHECK(affected(skipped).empty());

  std::string c = f.lab.infra.changeHost("host03");
  Plan q = f.exact(b, c);
  CHECK(q.host("host01")->reasons[0].kind == ReasonKind::SelfRevisionOnly);
  CHECK(q.host("host03")->reasons[0].kind == ReasonKind::Drv);
  CHECK(q.host("host03")->reasons[0].detail ==
        "config.json: env.text differs; etc-host-id: env.text differs");
  Plan dropped = q;
  CHECK(plan::dropSelfRevisionOnly(dropped) == 2);
  CHECK(affected(dropped) == std::vector<std::string>{"host03"});

  // the rev is in the closure, so the cache keys these by commit: an empty commit with the
  // same tree is evaluated again (and is self-revision-only again)
  std::string d = f.lab.infra.commitFiles({}, "same tree, new commit");
  f.procs.reset();
  Plan r = f.exact(c, d);
  CHECK(f.procs.count("nix") > 0);
  CHECK(affected(r).size() == 3);
  CHECK(r.host("host02")->reasons[0].kind == ReasonKind::SelfRevisionOnly);
  // and a re-plan is free again, verdicts included
  f.procs.reset();
  CHECK(nlohmann::json(f.exact(c, d)) == nlohmann::json(r));
  CHECK(f.procs.total() == 0);
}

TEST_CASE("exact: the whole source in the closure, and a file read through it",
          "[integration][nix][plan]") {
  auto hosts = numberedHosts(2);
  hosts[1].extraConfig = "environment.etc.\"motd-path\".text = \"${self}/files/motd\";";
  Fixture f({.hosts = hosts, .selfSource = true});
  std::string a = f.lab.infra.commitFiles({{"files/motd", "hello\n"}}, "motd");
  std::string b = f.lab.infra.readmeOnly();
  Plan p = f.exact(a, b);
  CHECK(affected(p).size() == 2);
  CHECK(p.host("host01")->reasons[0].kind == ReasonKind::SelfRevisionOnly);
  CHECK(p.host("host02")->reasons[0].kind == ReasonKind::SelfRevisionOnly);
  std::string c = f.lab.infra.commitFiles({{"files/motd", "changed\n"}}, "motd changed");
  Plan q = f.exact(b, c);
  CHECK(q.host("host01")->reasons[0].kind == ReasonKind::SelfRevisionOnly);
  REQUIRE(q.host("host02")->reasons[0].kind == ReasonKind::Drv);
  CHECK(q.host("host02")->reasons[0].detail ==
        "reads files/motd from the flake's source, and files/motd changed");
}

TEST_CASE("exact: new and removed hosts, auto never evaluates what static clears",
          "[integration][nix][plan]") {
  Fixture f({.hosts = numberedHosts(4)});
  std::string a = f.lab.infra.head();
  LabHost extra;
  extra.name = "host05";
  std::string b = f.lab.infra.addHost(extra);
  std::string c = f.lab.infra.removeHost("host01");
  Plan p = f.exact(a, c);
  CHECK(p.host("host05")->affected);
  CHECK(p.host("host05")->hasReason(ReasonKind::NewHost));
  CHECK_FALSE(p.host("host01")->affected);
  CHECK(p.host("host01")->hasReason(ReasonKind::RemovedHost));
  // a host missing at one commit is cached as missing: re-plans stay free
  Plan firstAuto = f.autoPlan(a, c);
  CHECK(firstAuto.host("host05")->hasReason(ReasonKind::NewHost));
  f.procs.reset();
  CHECK(nlohmann::json(f.autoPlan(a, c)) == nlohmann::json(firstAuto));
  CHECK(f.procs.total() == 0);

  std::string d = f.lab.infra.changeHost("host03");
  Plan au = f.autoPlan(c, d);
  CHECK(affected(au) == std::vector<std::string>{"host03"});
  for (const char* h : {"host02", "host04", "host05"}) {
    INFO(h);
    CHECK_FALSE(au.host(h)->oldDrv);  // never evaluated
    CHECK_FALSE(au.host(h)->newDrv);
  }
  REQUIRE(au.host("host03")->newDrv);
}

TEST_CASE("auto: when static discovery finds no host, every host is evaluated",
          "[integration][nix][plan]") {
  Fixture f({.hosts = numberedHosts(3)});
  // Host names from fromTOML: Nix evaluates it, the static planner cannot.
  std::string flake = os::readFile(f.lab.infra.path() / "flake.nix");
  std::string from = "forAllHosts = lib.genAttrs [ \"host01\" \"host02\" \"host03\" ];";
  auto pos = flake.find(from);
  REQUIRE(pos != std::string::npos);
  flake.replace(pos, from.size(),
                "forAllHosts = f: builtins.mapAttrs (n: _: f n) (builtins.fromTOML "
                "\"host01 = 1\\nhost02 = 1\\nhost03 = 1\");");
  std::string a = f.lab.infra.commitFiles({{"flake.nix", flake}}, "hosts from JSON");
  std::string b = f.lab.infra.changeHost("host02");
  // static alone cannot answer: a failed plan, not an empty one
  CHECK_THROWS_AS(plan::planStatic(*f.repo, a, b), PlanError);
  Plan au = f.autoFull(a, b);
  CHECK(au.mode == PlanMode::Auto);
  CHECK(affected(au) == std::vector<std::string>{"host02"});
  CHECK(au.hosts.size() == 3);
  REQUIRE_FALSE(au.warnings.empty());
  CHECK(au.warnings.front().find("static planning failed (static planning cannot tell which "
                                 "hosts") == 0);
  CHECK(endsWith(au.warnings.front(), "every host was evaluated"));
}

TEST_CASE("exact and auto: a flake that does not evaluate at the new commit fails the plan",
          "[integration][nix][plan]") {
  // Issue 11 item 5: never an empty plan, never "every host removed".
  Fixture f({.hosts = numberedHosts(2)});
  std::string a = f.lab.infra.head();
  const std::string flake = os::readFile(f.lab.infra.path() / "flake.nix");
  const std::string lock = os::readFile(f.lab.infra.path() / "flake.lock");

  std::string syntax = f.lab.infra.commitFiles({{"flake.nix", flake + " }"}}, "syntax error");
  CHECK_THROWS_AS(f.exact(a, syntax), PlanError);
  CHECK_THROWS_WITH(f.exact(a, syntax), Catch::Contains("does not evaluate"));
  CHECK_THROWS_AS(f.autoFull(a, syntax), PlanError);

  std::string badLock =
      f.lab.infra.commitFiles({{"flake.nix", flake}, {"flake.lock", "not json"}}, "lock");
  CHECK_THROWS_AS(f.exact(a, badLock), PlanError);
  CHECK_THROWS_AS(f.autoFull(a, badLock), PlanError);

  // A library function that does not exist: static cannot tell, Nix can.
  std::string missing = flake;
  const std::string call = "lib.genAttrs [";
  auto pos = missing.find(call);
  REQUIRE(pos != std::string::npos);
  missing.replace(pos, call.size(), "lib.genAttrsThatDoesNotExist [");
  std::string noLib =
      f.lab.infra.commitFiles({{"flake.nix", missing}, {"flake.lock", lock}}, "missing lib");
  Plan st = plan::planStatic(*f.repo, a, noLib);
  CHECK(affected(st) == std::vector<std::string>{"host01", "host02"});  // dynamic, not removed
  CHECK_FALSE(st.discoveryError.empty());
  CHECK_THROWS_AS(f.autoFull(a, noLib), PlanError);
  CHECK_THROWS_AS(f.autoPlan(a, noLib), PlanError);
  CHECK_THROWS_AS(f.exact(a, noLib), PlanError);

  // The old commit broken, the new one fixed: a plan, every host affected.
  Plan fixedPlan = f.exact(noLib, f.lab.infra.commitFiles({{"flake.nix", flake}}, "fixed"));
  CHECK(affected(fixedPlan) == std::vector<std::string>{"host01", "host02"});
}

TEST_CASE("auto: static discovery that is incomplete asks Nix about every host",
          "[integration][nix][plan]") {
  Fixture f({.hosts = numberedHosts(2)});
  std::string a = f.lab.infra.head();
  // host03 exists only through a name static planning cannot compute.
  std::string b = f.lab.infra.addComputedHost("host03", "host01");
  Plan st = plan::planStatic(*f.repo, a, b);
  CHECK_FALSE(st.discoveryError.empty());
  Plan au = f.autoFull(a, b);
  REQUIRE(au.host("host03"));
  CHECK(au.host("host03")->hasReason(ReasonKind::NewHost));
}

TEST_CASE("dropSelfRevisionOnly keeps real changes", "[unit][plan]") {
  Plan p;
  HostPlan a{"a", true, {{ReasonKind::SelfRevisionOnly, "", "", ""}}, {}, {}, {}};
  HostPlan b{
      "b", true, {{ReasonKind::File, "x.nix", "", ""}, {ReasonKind::SelfRevisionOnly, "", "", ""}},
      {},  {},   {}};
  HostPlan c{"c", true, {{ReasonKind::Drv, "", "", "etc: env.x differs"}}, {}, {}, {}};
  HostPlan d{"d", false, {}, {}, {}, {}};
  p.hosts = {a, b, c, d};
  CHECK(plan::dropSelfRevisionOnly(p) == 2);
  CHECK(p.affectedHosts() == std::vector<std::string>{"c"});
  CHECK(p.host("a")->reasons.size() == 1);  // kept for the record
}
