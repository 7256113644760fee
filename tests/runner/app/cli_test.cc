// End-to-end: the built switchyard binary, its output and its exit codes.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "runner/os/files.h"
#include "tests/support/run.h"
#include "tests/support/temp_git_repo.h"

using tests::switchyard;

namespace {
std::string lockPath(const std::string& name) {
  return (tests::dataDir() / "locks" / name).string();
}
}  // namespace

TEST_CASE("lockdiff prints a table and JSON for real-world locks", "[integration][cli]") {
  auto r = switchyard({"lockdiff", lockPath("homelab-old.lock"), lockPath("homelab-new.lock")});
  INFO(r.errTail);
  REQUIRE(r.exitStatus == 0);
  CHECK(r.out.find("nixpkgs") != std::string::npos);
  auto j = switchyard(
      {"lockdiff", lockPath("homelab-old.lock"), lockPath("homelab-new.lock"), "--json"});
  REQUIRE(j.exitStatus == 0);
  auto doc = nlohmann::json::parse(j.out);
  auto& changes = doc.at("inputs_changed");
  REQUIRE(changes.size() == 3);
  CHECK(changes[0]["name"] == "clan-core");
  CHECK(changes[0]["transitive"] == true);
  CHECK(changes[0]["path"] == nlohmann::json{"clan-core", "nixpkgs"});
  CHECK(changes[1]["name"] == "home-manager");
  CHECK(changes[1]["transitive"] == true);
  CHECK(changes[2]["name"] == "nixpkgs");
  CHECK(changes[2]["transitive"] == false);
  CHECK(changes[2]["old"]["rev"] == "b134951a4c9f3c995fd7be05f3243f8ecd65d798");
  CHECK(changes[2]["new"]["rev"] == "5e4fbfb6b3de1aa2872b76d49fafc942626e2add");
}

TEST_CASE("lockdiff: bad input exits 2 with one line naming the file", "[integration][cli]") {
  runner::os::TempDir d;
  runner::os::writeFileAtomic(d.path() / "bad.lock",
                              "{\"version\": 9, \"root\": \"root\", \"nodes\": {}}");
  auto r = switchyard({"lockdiff", (d.path() / "bad.lock").string(), lockPath("homelab-new.lock")});
  CHECK(r.exitStatus == 2);
  CHECK(r.errTail == "switchyard: error: " + (d.path() / "bad.lock").string() +
                         ": unsupported flake.lock version 9 (supported: 5 to 7)\n");
  auto missing = switchyard({"lockdiff", "/nonexistent.lock", lockPath("homelab-new.lock")});
  CHECK(missing.exitStatus == 2);
  CHECK(missing.errTail == "switchyard: error: /nonexistent.lock: no such file\n");
  auto usage = switchyard({"lockdiff", "only-one"});
  CHECK(usage.exitStatus == 2);
  CHECK(usage.errTail.find("switchyard: error: ") == 0);
  CHECK(std::count(usage.errTail.begin(), usage.errTail.end(), '\n') == 1);
}

TEST_CASE("diff lists changed files and the lock diff between two commits", "[integration][cli]") {
  tests::TempGitRepo t;
  auto a = t.commit({{"flake.nix", "{ }"},
                     {"flake.lock", runner::os::readFile(lockPath("homelab-old.lock"))},
                     {"hosts/web/default.nix", "{ }"}});
  t.git({"mv", "hosts/web", "hosts/www"});
  auto b = t.commit({{"flake.lock", runner::os::readFile(lockPath("homelab-new.lock"))}});
  auto r = switchyard({"diff", "--repo", t.path().string(), "--from", a, "--to", "HEAD", "--json"});
  INFO(r.errTail);
  REQUIRE(r.exitStatus == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["to"] == b);
  REQUIRE(j["files_changed"].size() == 2);
  CHECK(j["files_changed"][0] == nlohmann::json{{"path", "flake.lock"}, {"status", "modified"}});
  CHECK(j["files_changed"][1] == nlohmann::json{{"path", "hosts/www/default.nix"},
                                                {"status", "renamed"},
                                                {"old_path", "hosts/web/default.nix"}});
  CHECK(j["inputs_changed"].size() == 3);
  auto human =
      switchyard({"diff", "--repo", t.bareClone().string(), "--from", "HEAD~1", "--to", "HEAD"});
  CHECK(human.exitStatus == 0);
  CHECK(human.out.find("renamed    hosts/www/default.nix (from hosts/web/default.nix)") !=
        std::string::npos);
  auto bad = switchyard({"diff", "--repo", t.path().string(), "--from", "nope", "--to", "HEAD"});
  CHECK(bad.exitStatus == 2);
  CHECK(bad.errTail.find("unknown revision 'nope'") != std::string::npos);
}
