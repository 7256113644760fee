// `switchyard plan` end to end: the built binary on a repository made in a temp dir.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "runner/lab/lab.h"
#include "runner/os/files.h"
#include "runner/os/process.h"
#include "tests/support/run.h"
#include "tests/support/temp_git_repo.h"

using tests::switchyard;

namespace {
const char* kFlake = R"nix({
  inputs.nixpkgs.url = "github:NixOS/nixpkgs";
  outputs = { self, nixpkgs }: {
    nixosConfigurations = nixpkgs.lib.genAttrs [ "web" "db" ] (host: nixpkgs.lib.nixosSystem {
      modules = [ ./hosts/${host}.nix ./modules/common.nix ];
    });
  };
})nix";
}

TEST_CASE("plan --json and --markdown on a real repository", "[integration][cli]") {
  tests::TempGitRepo t;
  auto a = t.commit({{"flake.nix", kFlake},
                     {"hosts/web.nix", "{ ... }: { }\n"},
                     {"hosts/db.nix", "{ ... }: { }\n"},
                     {"modules/common.nix", "{ ... }: { }\n"}});
  auto b = t.commit({{"hosts/web.nix", "{ ... }: { services.nginx.enable = true; }\n"}});
  auto r = switchyard(
      {"plan", "--repo", t.path().string(), "--from", a, "--to", b, "--mode", "static", "--json"});
  INFO(r.errTail);
  REQUIRE(r.exitStatus == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["from"] == a);
  CHECK(j["to"] == b);
  CHECK(j["mode"] == "static");
  REQUIRE(j["hosts"].size() == 2);
  CHECK(j["hosts"][0] == nlohmann::json{{"name", "db"},
                                        {"affected", false},
                                        {"reasons", nlohmann::json::array()},
                                        {"old_drv", nullptr},
                                        {"new_drv", nullptr}});
  CHECK(j["hosts"][1]["name"] == "web");
  CHECK(j["hosts"][1]["affected"] == true);
  CHECK(j["hosts"][1]["reasons"] ==
        nlohmann::json::array({{{"kind", "file"}, {"path", "hosts/web.nix"}}}));
  CHECK(j["files_changed"] ==
        nlohmann::json::array({{{"path", "hosts/web.nix"}, {"status", "modified"}}}));
  auto md = switchyard({"plan", "--repo", t.bareClone().string(), "--from", "HEAD~1", "--to",
                        "HEAD", "--mode", "static", "--markdown"});
  REQUIRE(md.exitStatus == 0);
  CHECK(md.out.find("### Switchyard · 1 of 2 machines affected") == 0);
  CHECK(md.out.find("| `web` | **yes** | file `hosts/web.nix` |\n") != std::string::npos);
  CHECK(md.out.find("[run #") == std::string::npos);  // no run yet: no link, no result column
}

TEST_CASE("plan: bad revisions and a repository without flake.nix exit 2", "[integration][cli]") {
  tests::TempGitRepo t;
  auto a = t.commit({{"README.md", "x"}});
  auto b = t.commit({{"README.md", "y"}});
  auto bad = switchyard({"plan", "--repo", t.path().string(), "--from", "nope", "--to", b});
  CHECK(bad.exitStatus == 2);
  CHECK(bad.errTail.find("unknown revision 'nope'") != std::string::npos);
  auto noFlake =
      switchyard({"plan", "--repo", t.path().string(), "--from", a, "--to", b, "--mode", "static"});
  CHECK(noFlake.exitStatus == 2);
  CHECK(noFlake.errTail.find("switchyard: error: no flake.nix at ") == 0);
  auto usage = switchyard({"plan", "--from", a, "--to", b, "--mode", "fast"});
  CHECK(usage.exitStatus == 2);
  auto notRepo = switchyard({"plan", "--repo", "/nonexistent", "--from", a, "--to", b});
  CHECK(notRepo.exitStatus == 2);
  CHECK(notRepo.errTail == "switchyard: error: /nonexistent: no such directory\n");
}

TEST_CASE("plan --mode exact on a bare mirror whose HEAD names no branch",
          "[integration][nix][cli]") {
  // Nix 2.8 fetches a bare repository's HEAD branch and needs the commit on it; a mirror made
  // by libgit2 has HEAD -> master, which does not exist. The CLI pins the commit on a ref.
  runner::os::TempDir dir("sy-bare-plan");
  runner::os::PosixProcessRunner procs;
  auto lab = runner::lab::Lab::create(procs, dir.path() / "lab");
  std::string a = lab.infra.head();
  std::string b = lab.infra.changeModule("web");
  auto bare = dir.path() / "mirror.git";
  tests::runOk("git", {"init", "-q", "--bare", bare.string()});
  tests::runOk("git", {"-C", lab.infra.path().string(), "push", "-q", bare.string(),
                       "HEAD:refs/heads/feature"});
  auto r = tests::run(
      tests::switchyardBinary().string(),
      {"plan", "--repo", bare.string(), "--from", a, "--to", b, "--mode", "exact", "--json"}, {},
      {{"XDG_CACHE_HOME", (dir.path() / "cache").string()}});
  INFO(r.errTail);
  REQUIRE(r.exitStatus == 0);
  auto j = nlohmann::json::parse(r.out);
  std::vector<std::string> affected;
  for (const auto& h : j["hosts"])
    if (h["affected"]) affected.push_back(h["name"]);
  CHECK(affected == std::vector<std::string>{"vps-het-1", "wellsjaha"});
  CHECK_FALSE(j.contains("warnings"));
}

TEST_CASE("plan: a flake that does not parse or evaluate at the new commit exits 1 in every mode",
          "[integration][nix][cli]") {
  // Issue 11 item 5: a failed plan, never "0 of 0 hosts affected" with exit 0.
  runner::os::TempDir dir("sy-broken-plan");
  runner::os::PosixProcessRunner procs;
  auto lab = runner::lab::Lab::create(procs, dir.path() / "lab");
  const std::string flake = runner::os::readFile(lab.infra.path() / "flake.nix");
  std::string a = lab.infra.head();
  std::string syntax = lab.infra.commitFiles({{"flake.nix", flake + " }"}}, "syntax error");
  std::string badLock =
      lab.infra.commitFiles({{"flake.nix", flake}, {"flake.lock", "not json"}}, "bad lock");
  auto plan = [&](const std::string& to, const std::string& mode) {
    return tests::run(
        tests::switchyardBinary().string(),
        {"plan", "--repo", lab.infra.path().string(), "--from", a, "--to", to, "--mode", mode}, {},
        {{"XDG_CACHE_HOME", (dir.path() / "cache").string()}});
  };
  for (const char* mode : {"static", "exact", "auto"}) {
    for (const auto& [what, to] : {std::pair{"syntax", syntax}, std::pair{"lock", badLock}}) {
      INFO(mode << " " << what);
      auto r = plan(to, mode);
      INFO(r.out << r.errTail);
      CHECK(r.exitStatus == 1);
      CHECK(r.errTail.find("switchyard: error: ") == 0);
      CHECK(r.out.find("0 of 0") == std::string::npos);
    }
  }
}
