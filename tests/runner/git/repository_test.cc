#include "runner/git/repository.h"

#include <catch2/catch.hpp>

#include "runner/core/error.h"
#include "tests/support/temp_git_repo.h"

using namespace runner;
using tests::TempGitRepo;

namespace {
std::vector<std::string> paths(const std::vector<git::TreeEntry>& es) {
  std::vector<std::string> out;
  for (const auto& e : es) out.push_back(e.path);
  return out;
}
}  // namespace

TEST_CASE("revisions resolve like git resolves them", "[unit][git]") {
  TempGitRepo t;
  auto a = t.commit({{"flake.nix", "{ }"}});
  auto b = t.commit({{"hosts/web/default.nix", "{ }"}});
  t.git({"tag", "v1", a});
  auto repo = git::Repository::open(t.path());
  CHECK(repo->resolveCommit("HEAD") == b);
  CHECK(repo->resolveCommit("main") == b);
  CHECK(repo->resolveCommit("HEAD~1") == a);
  CHECK(repo->resolveCommit(a.substr(0, 10)) == a);
  CHECK(repo->resolveCommit("v1") == a);
  CHECK_THROWS_AS(repo->resolveCommit("no-such-branch"), InputError);
  CHECK_THROWS_WITH(repo->resolveCommit("HEAD~5"), Catch::Contains("unknown revision 'HEAD~5'"));
  auto info = repo->commit(b);
  CHECK(info.parents == std::vector<std::string>{a});
  CHECK(info.summary == "change");
}

TEST_CASE("opening something that is not a repository is bad input", "[unit][git]") {
  runner::os::TempDir d;
  CHECK_THROWS_AS(git::Repository::open(d.path()), InputError);
  CHECK_THROWS_WITH(git::Repository::open(d.path() / "missing"),
                    Catch::Contains("no such directory"));
}

TEST_CASE("files and trees are read from the object database, not the work tree", "[unit][git]") {
  TempGitRepo t;
  auto a = t.commit({{"flake.nix", "{ v = 1; }"},
                     {"hosts/web/default.nix", "web"},
                     {"hosts/db/default.nix", "db"}});
  t.write("flake.nix", "{ v = 2; }");  // uncommitted: must not be seen
  auto repo = git::Repository::open(t.path());
  auto blob = repo->readFile(a, "flake.nix");
  REQUIRE(blob);
  CHECK(blob->content == "{ v = 1; }");
  CHECK(blob->oid.size() == 40);
  CHECK_FALSE(repo->readFile(a, "nope.nix"));
  CHECK_FALSE(repo->readFile(a, "hosts"));  // a tree, not a blob
  CHECK(repo->kindAt(a, "hosts") == git::EntryKind::Tree);
  CHECK(repo->kindAt(a, "./flake.nix") == git::EntryKind::Blob);
  CHECK_FALSE(repo->kindAt(a, "missing"));
  CHECK(paths(*repo->listTree(a, "hosts", true)) ==
        std::vector<std::string>{"hosts/db/default.nix", "hosts/web/default.nix"});
  CHECK(paths(*repo->listTree(a, "hosts", false)) ==
        std::vector<std::string>{"hosts/db", "hosts/web"});
  CHECK(paths(*repo->listTree(a, "", false)) == std::vector<std::string>{"flake.nix", "hosts"});
  CHECK_FALSE(repo->listTree(a, "nothing", true));
  CHECK(repo->treeOf(a).size() == 40);
}

TEST_CASE("diff reports added, modified, deleted, renamed and binary files", "[unit][git]") {
  TempGitRepo t;
  std::string big = "{ config, ... }: {\n";
  for (int i = 0; i < 40; ++i) big += "  services.s" + std::to_string(i) + ".enable = true;\n";
  big += "}\n";
  auto a = t.commit({{"modules/old.nix", big},
                     {"keep.nix", "1"},
                     {"gone.nix", "x"},
                     {"logo.png", std::string("\x89PNG\r\n\x1a\n\0\0\0", 11)}});
  t.git({"mv", "modules/old.nix", "modules/new.nix"});
  auto b = t.commit({{"keep.nix", "2"},
                     {"gone.nix", std::nullopt},
                     {"added.nix", "{}"},
                     {"logo.png", std::string("\x89PNG\r\n\x1a\n\1\1\1", 11)}});
  auto repo = git::Repository::open(t.path());
  auto d = repo->diff(a, b);
  std::map<std::string, FileChange> byPath;
  for (const auto& f : d) byPath[f.path] = f;
  REQUIRE(d.size() == 5);
  CHECK(byPath.at("added.nix").status == FileStatus::Added);
  CHECK(byPath.at("gone.nix").status == FileStatus::Deleted);
  CHECK(byPath.at("keep.nix").status == FileStatus::Modified);
  CHECK(byPath.at("logo.png").status == FileStatus::Modified);
  CHECK(byPath.at("modules/new.nix").status == FileStatus::Renamed);
  CHECK(byPath.at("modules/new.nix").oldPath == "modules/old.nix");
  CHECK(repo->diff(a, a).empty());
}

TEST_CASE("a bare clone answers the same questions", "[unit][git]") {
  TempGitRepo t;
  auto a = t.commit({{"flake.nix", "{ }"}});
  auto b = t.commit({{"flake.nix", "{ x = 1; }"}});
  auto repo = git::Repository::open(t.bareClone());
  CHECK_FALSE(repo->workDir());
  CHECK(repo->resolveCommit("main") == b);
  CHECK(repo->readFile(b, "flake.nix")->content == "{ x = 1; }");
  CHECK(repo->diff(a, b).size() == 1);
}

TEST_CASE("ancestry follows merge commits", "[unit][git]") {
  TempGitRepo t;
  auto base = t.commit({{"a", "1"}});
  t.git({"checkout", "-q", "-b", "feature"});
  auto f1 = t.commit({{"b", "1"}});
  t.git({"checkout", "-q", "main"});
  auto m1 = t.commit({{"c", "1"}});
  t.git({"merge", "-q", "--no-ff", "-m", "merge feature", "feature"});
  auto merge = t.git({"rev-parse", "HEAD"});
  auto repo = git::Repository::open(t.path());
  CHECK(repo->commit(merge).parents.size() == 2);
  CHECK(repo->isAncestor(base, merge));
  CHECK(repo->isAncestor(f1, merge));
  CHECK(repo->isAncestor(m1, merge));
  CHECK(repo->isAncestor(merge, merge));
  CHECK_FALSE(repo->isAncestor(merge, f1));
  CHECK_FALSE(repo->isAncestor(f1, m1));
  auto d = repo->diff(m1, merge);
  REQUIRE(d.size() == 1);
  CHECK(d[0].path == "b");
}

TEST_CASE("a mirror fetches incrementally from a repository", "[unit][git]") {
  TempGitRepo t;
  auto a = t.commit({{"flake.nix", "{ }"}});
  runner::os::TempDir dir;
  auto mirror = git::Repository::openOrInitBare(dir.path() / "m.git");
  mirror->fetch(t.path().string(), {"+refs/heads/*:refs/heads/*"});
  CHECK(mirror->refTarget("refs/heads/main") == a);
  auto b = t.commit({{"flake.nix", "{ y = 1; }"}});
  mirror->fetch(t.path().string(), {"+refs/heads/*:refs/heads/*"});
  CHECK(mirror->refTarget("refs/heads/main") == b);
  CHECK(mirror->readFile(b, "flake.nix")->content == "{ y = 1; }");
  CHECK_FALSE(mirror->refTarget("refs/heads/none"));
  CHECK_THROWS_AS(mirror->fetch("/nonexistent/repo", {"+refs/heads/*:refs/heads/*"}), GitError);
}
