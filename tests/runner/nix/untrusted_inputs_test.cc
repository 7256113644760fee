#include "runner/nix/untrusted_inputs.h"

#include <catch2/catch.hpp>

using namespace runner::nix;
using nlohmann::json;

namespace {

// A lock with one root input per (name, locked attributes).
FlakeLock lockOf(const std::vector<std::pair<std::string, json>>& inputs) {
  json j = {{"version", 7}, {"root", "root"}, {"nodes", {{"root", {{"inputs", json::object()}}}}}};
  for (const auto& [name, locked] : inputs) {
    j["nodes"]["root"]["inputs"][name] = name;
    j["nodes"][name] = {{"locked", locked}, {"original", locked}};
  }
  return parseFlakeLock(j.dump(), "flake.lock");
}

const std::string kRev = "0123456789abcdef0123456789abcdef01234567";
const std::string kHash = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

json github(const std::string& owner, const std::string& repo, const std::string& rev = kRev) {
  return {{"type", "github"}, {"owner", owner},   {"repo", repo},
          {"rev", rev},       {"narHash", kHash}, {"lastModified", 1700000000}};
}

bool refusedMentions(const InputCheck& c, const std::string& what) {
  for (const auto& r : c.refused)
    if (r.find(what) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_CASE("sources name a repository without its revision", "[unit][nix]") {
  CHECK(sourceOf(github("NixOS", "nixpkgs")) == "github:NixOS/nixpkgs");
  json gh = github("o", "r");
  gh["host"] = "git.example.org";
  CHECK(sourceOf(gh) == "github@git.example.org:o/r");
  CHECK(sourceOf({{"type", "git"}, {"url", "https://x.org/a.git"}}) == "git+https://x.org/a.git");
  CHECK(sourceOf({{"type", "tarball"}, {"url", "https://x.org/a.tar.gz"}}) ==
        "https://x.org/a.tar.gz");
  CHECK(sourceOf({{"type", "path"}, {"path", "/etc"}}) == "path:/etc");
}

TEST_CASE("glob patterns match any run of characters at '*'", "[unit][nix]") {
  CHECK(globMatch("github:*", "github:NixOS/nixpkgs"));
  CHECK(globMatch("github:NixOS/*", "github:NixOS/nixpkgs"));
  CHECK_FALSE(globMatch("github:NixOS/*", "github:evil/nixpkgs"));
  CHECK(globMatch("https://*.example.org/*", "https://git.example.org/a/b"));
  CHECK_FALSE(globMatch("https://github.com/*", "https://github.com.evil.org/x"));
  CHECK(globMatch("*", ""));
  CHECK_FALSE(globMatch("a", "ab"));
}

TEST_CASE("a fork may lock new revisions of well-known forges", "[unit][nix]") {
  auto base = lockOf({{"nixpkgs", github("NixOS", "nixpkgs")}});
  auto fork = lockOf({{"nixpkgs", github("NixOS", "nixpkgs", std::string(40, 'f'))},
                      {"home", github("nix-community", "home-manager")}});
  auto c = checkUntrustedInputs(fork, &base, {});
  CHECK(c.ok());
  REQUIRE(c.fetch.size() == 2);
  CHECK(c.fetch[0].attrs.at("type") == "github");
}

TEST_CASE("local and credential-bearing inputs of a fork refuse the run, naming the node",
          "[unit][nix]") {
  auto base = lockOf({{"nixpkgs", github("NixOS", "nixpkgs")}});
  auto fork = lockOf({
      {"secret", {{"type", "path"}, {"path", "/root/.ssh"}, {"narHash", kHash}}},
      {"local", {{"type", "git"}, {"url", "file:///srv/infra"}, {"rev", kRev}, {"narHash", kHash}}},
      {"ssh",
       {{"type", "git"}, {"url", "ssh://git@github.com/o/r"}, {"rev", kRev}, {"narHash", kHash}}},
      {"tar", {{"type", "tarball"}, {"url", "file:///etc/shadow"}, {"narHash", kHash}}},
      {"subs",
       {{"type", "git"},
        {"url", "https://github.com/o/r"},
        {"rev", kRev},
        {"narHash", kHash},
        {"submodules", true}}},
      {"nohash", {{"type", "github"}, {"owner", "o"}, {"repo", "r"}, {"rev", kRev}}},
  });
  auto c = checkUntrustedInputs(fork, &base, {});
  CHECK(c.fetch.empty());
  CHECK(c.refused.size() == 6);
  CHECK(refusedMentions(c, "input 'secret' (path:/root/.ssh): local paths are refused"));
  CHECK(refusedMentions(c, "input 'local' (git+file:///srv/infra): only https"));
  CHECK(refusedMentions(c, "input 'ssh'"));
  CHECK(refusedMentions(c, "input 'tar' (file:///etc/shadow)"));
  CHECK(refusedMentions(c, "submodules"));
  CHECK(refusedMentions(c, "input 'nohash' (github:o/r): it is not locked by narHash"));
}

TEST_CASE("an input locked exactly as on the base branch is trusted whatever its type",
          "[unit][nix]") {
  json local = {
      {"type", "path"}, {"path", "/srv/nixpkgs"}, {"narHash", kHash}, {"lastModified", 1}};
  auto base = lockOf({{"nixpkgs", local}});
  CHECK(checkUntrustedInputs(lockOf({{"nixpkgs", local}}), &base, {}).ok());
  json changed = local;
  changed["narHash"] = "sha256-BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB=";
  auto c = checkUntrustedInputs(lockOf({{"nixpkgs", changed}}), &base, {});
  CHECK_FALSE(c.ok());
  CHECK(refusedMentions(c, "local paths are refused"));
  // without a base lock, nothing is trusted that way
  CHECK_FALSE(checkUntrustedInputs(lockOf({{"nixpkgs", local}}), nullptr, {}).ok());
}

TEST_CASE("a configured list replaces the forges, and the base branch's sources stay allowed",
          "[unit][nix]") {
  auto base = lockOf({{"nixpkgs", github("NixOS", "nixpkgs")}});
  InputPolicy strict;
  strict.allowed = {"https://git.example.org/*"};
  auto fork = lockOf({{"nixpkgs", github("NixOS", "nixpkgs", std::string(40, 'e'))},
                      {"evil", github("evil", "payload")}});
  auto c = checkUntrustedInputs(fork, &base, strict);
  REQUIRE(c.refused.size() == 1);
  CHECK(refusedMentions(c, "input 'evil' (github:evil/payload): the base branch does not use"));
  REQUIRE(c.fetch.size() == 1);
  CHECK(c.fetch[0].node == "nixpkgs");
}

TEST_CASE("fetch attributes keep only plain values fetchTree knows", "[unit][nix]") {
  json gh = github("o", "r");
  gh["dir"] = "sub";                       // a flake attribute, not a fetcher one
  gh["extra"] = json::object({{"a", 1}});  // unknown: dropped
  auto c = checkUntrustedInputs(lockOf({{"x", gh}}), nullptr, {});
  REQUIRE(c.ok());
  REQUIRE(c.fetch.size() == 1);
  CHECK_FALSE(c.fetch[0].attrs.contains("dir"));
  CHECK_FALSE(c.fetch[0].attrs.contains("extra"));
  CHECK(c.fetch[0].attrs.at("narHash") == kHash);
  json bad = github("o", "r");
  bad["rev"] = json::array({1});
  auto c2 = checkUntrustedInputs(lockOf({{"x", bad}}), nullptr, {});
  CHECK_FALSE(c2.ok());
}
