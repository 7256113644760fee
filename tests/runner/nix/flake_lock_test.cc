#include "runner/nix/flake_lock.h"

#include <catch2/catch.hpp>

#include "runner/core/error.h"

using namespace runner;
using nlohmann::json;

namespace {

json githubNode(const std::string& owner, const std::string& repo, const std::string& rev,
                const std::string& narHash, int64_t lastModified, json inputs = nullptr) {
  json n = {{"locked",
             {{"lastModified", lastModified},
              {"narHash", narHash},
              {"owner", owner},
              {"repo", repo},
              {"rev", rev},
              {"type", "github"}}},
            {"original", {{"owner", owner}, {"repo", repo}, {"type", "github"}}}};
  if (!inputs.is_null()) n["inputs"] = inputs;
  return n;
}

// The shape of a typical infra flake: nixpkgs, home-manager following nixpkgs, flake-parts
// with its own nixpkgs-lib, and a non-flake input.
json baseLock() {
  return {{"version", 7},
          {"root", "root"},
          {"nodes",
           {{"root",
             {{"inputs",
               {{"nixpkgs", "nixpkgs"},
                {"home-manager", "home-manager"},
                {"flake-parts", "flake-parts"},
                {"wallpapers", "wallpapers"}}}}},
            {"nixpkgs", githubNode("NixOS", "nixpkgs", "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1",
                                   "sha256-AAAA", 1700000000)},
            {"home-manager",
             githubNode("nix-community", "home-manager", "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2",
                        "sha256-BBBB", 1700000100, {{"nixpkgs", json::array({"nixpkgs"})}})},
            {"flake-parts",
             githubNode("hercules-ci", "flake-parts", "c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3",
                        "sha256-CCCC", 1700000200, {{"nixpkgs-lib", "nixpkgs-lib"}})},
            {"nixpkgs-lib",
             githubNode("nix-community", "nixpkgs.lib", "d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4",
                        "sha256-DDDD", 1700000300)},
            {"wallpapers",
             {{"flake", false},
              {"locked",
               {{"lastModified", 1600000000},
                {"narHash", "sha256-WWWW"},
                {"type", "tarball"},
                {"url", "https://example.org/w.tar.gz"}}},
              {"original", {{"type", "tarball"}, {"url", "https://example.org/w.tar.gz"}}}}}}}};
}

nix::FlakeLock parse(const json& j) { return nix::parseFlakeLock(j.dump(), "test.lock"); }

const InputChange* find(const std::vector<InputChange>& cs, const std::string& name) {
  for (const auto& c : cs)
    if (c.name == name) return &c;
  return nullptr;
}

std::string parseError(const std::string& text) {
  try {
    nix::parseFlakeLock(text, "bad.lock");
  } catch (const InputError& e) {
    return e.describe();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("identical locks have no changes", "[unit][lock]") {
  CHECK(nix::diffLocks(parse(baseLock()), parse(baseLock())).empty());
}

TEST_CASE("a nixpkgs bump is a direct change and reaches followers transitively", "[unit][lock]") {
  json next = baseLock();
  next["nodes"]["nixpkgs"]["locked"]["rev"] = "e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5";
  next["nodes"]["nixpkgs"]["locked"]["narHash"] = "sha256-EEEE";
  next["nodes"]["nixpkgs"]["locked"]["lastModified"] = 1700009999;
  auto cs = nix::diffLocks(parse(baseLock()), parse(next));
  REQUIRE(cs.size() == 2);
  const auto* np = find(cs, "nixpkgs");
  REQUIRE(np);
  CHECK_FALSE(np->transitive);
  CHECK(np->path == std::vector<std::string>{"nixpkgs"});
  CHECK(np->oldLocked->rev == "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1");
  CHECK(np->newLocked->rev == "e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5");
  CHECK(np->newLocked->narHash == "sha256-EEEE");
  CHECK(np->newLocked->lastModified == 1700009999);
  const auto* hm = find(cs, "home-manager");
  REQUIRE(hm);
  CHECK(hm->transitive);
  CHECK(hm->path == std::vector<std::string>{"home-manager", "nixpkgs"});
  CHECK(hm->newLocked->rev == "e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5");
  CHECK(find(cs, "flake-parts") == nullptr);
}

TEST_CASE("lastModified alone is not a change", "[unit][lock]") {
  json next = baseLock();
  next["nodes"]["nixpkgs"]["locked"]["lastModified"] = 1800000000;
  CHECK(nix::diffLocks(parse(baseLock()), parse(next)).empty());
}

TEST_CASE("a renamed node with identical content is not a change", "[unit][lock]") {
  json next = baseLock();
  next["nodes"]["nixpkgs-lib_2"] = next["nodes"]["nixpkgs-lib"];
  next["nodes"].erase("nixpkgs-lib");
  next["nodes"]["flake-parts"]["inputs"]["nixpkgs-lib"] = "nixpkgs-lib_2";
  next["nodes"]["nixpkgs_3"] = next["nodes"]["nixpkgs"];
  next["nodes"].erase("nixpkgs");
  next["nodes"]["root"]["inputs"]["nixpkgs"] = "nixpkgs_3";
  CHECK(nix::diffLocks(parse(baseLock()), parse(next)).empty());
}

TEST_CASE("a change deep inside an input is transitive with the path to it", "[unit][lock]") {
  json next = baseLock();
  next["nodes"]["nixpkgs-lib"]["locked"]["rev"] = "ffffffffffffffffffffffffffffffffffffffff";
  auto cs = nix::diffLocks(parse(baseLock()), parse(next));
  REQUIRE(cs.size() == 1);
  CHECK(cs[0].name == "flake-parts");
  CHECK(cs[0].transitive);
  CHECK(cs[0].path == std::vector<std::string>{"flake-parts", "nixpkgs-lib"});
  CHECK(cs[0].oldLocked->rev == "d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4");
}

TEST_CASE("added and removed root inputs", "[unit][lock]") {
  json next = baseLock();
  next["nodes"]["root"]["inputs"].erase("wallpapers");
  next["nodes"].erase("wallpapers");
  next["nodes"]["root"]["inputs"]["disko"] = "disko";
  next["nodes"]["disko"] =
      githubNode("nix-community", "disko", "9999999999999999999999999999999999999999",
                 "sha256-9999", 1, {{"nixpkgs", json::array({"nixpkgs"})}});
  auto cs = nix::diffLocks(parse(baseLock()), parse(next));
  REQUIRE(cs.size() == 2);
  CHECK(cs[0].name == "disko");
  CHECK(cs[0].added);
  CHECK_FALSE(cs[0].oldLocked);
  CHECK(cs[0].newLocked->rev == "9999999999999999999999999999999999999999");
  CHECK(cs[1].name == "wallpapers");
  CHECK(cs[1].removed);
  CHECK(cs[1].oldLocked->narHash == "sha256-WWWW");
}

TEST_CASE("a non-flake input's narHash change is a change", "[unit][lock]") {
  json next = baseLock();
  next["nodes"]["wallpapers"]["locked"]["narHash"] = "sha256-XXXX";
  auto cs = nix::diffLocks(parse(baseLock()), parse(next));
  REQUIRE(cs.size() == 1);
  CHECK(cs[0].name == "wallpapers");
  CHECK_FALSE(cs[0].oldLocked->rev);
  CHECK(cs[0].newLocked->narHash == "sha256-XXXX");
  json flip = baseLock();
  flip["nodes"]["wallpapers"]["flake"] = true;
  CHECK(nix::diffLocks(parse(baseLock()), parse(flip)).size() == 1);
}

TEST_CASE("follows paths resolve from the root like Nix, nested ones included", "[unit][lock]") {
  // clan-core follows nixpkgs; clan-core's disko follows ["clan-core", "nixpkgs"], which is
  // itself a follows: disko's nixpkgs is the root nixpkgs.
  json j = baseLock();
  j["nodes"]["root"]["inputs"]["clan-core"] = "clan-core";
  j["nodes"]["clan-core"] = githubNode(
      "clan", "clan-core", "1111111111111111111111111111111111111111", "sha256-1111", 1,
      {{"nixpkgs", json::array({"nixpkgs"})}, {"disko", "disko"}, {"self", json::array()}});
  j["nodes"]["disko"] =
      githubNode("nix-community", "disko", "2222222222222222222222222222222222222222",
                 "sha256-2222", 1, {{"nixpkgs", json::array({"clan-core", "nixpkgs"})}});
  auto lock = parse(j);
  CHECK(lock.resolve({"clan-core", "disko", "nixpkgs"}) == "nixpkgs");
  CHECK(lock.resolve({"home-manager", "nixpkgs"}) == "nixpkgs");
  CHECK(lock.resolve({"clan-core", "self"}) == "root");
  CHECK(lock.resolve({}) == "root");
  CHECK_FALSE(lock.resolve({"nope"}));

  json next = j;
  next["nodes"]["nixpkgs"]["locked"]["rev"] = "0000000000000000000000000000000000000001";
  auto cs = nix::diffLocks(lock, parse(next));
  const auto* clan = find(cs, "clan-core");
  REQUIRE(clan);
  CHECK(clan->transitive);
  CHECK(clan->path == std::vector<std::string>{"clan-core", "nixpkgs"});
  CHECK(find(cs, "flake-parts") == nullptr);
}

TEST_CASE("malformed locks are rejected with the reason", "[unit][lock]") {
  CHECK(parseError("{ nope").find("bad.lock: not valid JSON") == 0);
  // the message is for people: where, and what — not the library's tag or the input's bytes
  CHECK(parseError("{\n  \"nodes\": {\n    nope") ==
        "bad.lock: not valid JSON: line 3, column 6: syntax error while parsing object key - "
        "invalid literal; expected string literal");
  // found by flake_lock_fuzz: a number too large for the JSON library was not an InputError
  CHECK(parseError(R"({"nodes": {"a": {"locked": {"lastModified": 172329E3904}}}})") ==
        "bad.lock: not valid JSON: number overflow parsing '172329E3904'");
  // and a follows path through an input whose node does not exist threw std::out_of_range
  const char* dangling = R"({"version": 7, "root": "root", "nodes": {
    "root": {"inputs": {"a": ["b", "x"], "b": "b"}},
    "b": {"inputs": {"x": "missing"}, "locked": {"type": "github", "owner": "o", "repo": "b",
          "rev": "1111111111111111111111111111111111111111"}}}})";
  CHECK(parseError(dangling).find("'missing', which does not exist") != std::string::npos);
  CHECK(parseError("[]") == "bad.lock: not a flake.lock (not an object)");
  CHECK(parseError(R"({"version": 4, "root": "root", "nodes": {"root": {}}})") ==
        "bad.lock: unsupported flake.lock version 4 (supported: 5 to 7)");
  CHECK(parseError(R"({"version": 8, "root": "root", "nodes": {"root": {}}})") ==
        "bad.lock: unsupported flake.lock version 8 (supported: 5 to 7)");
  CHECK(parseError(R"({"version": 7, "nodes": {"root": {}}})") == "bad.lock: no 'root' node name");
  CHECK(parseError(R"({"version": 7, "root": "r", "nodes": {"root": {}}})") ==
        "bad.lock: root node 'r' does not exist");
  CHECK(parseError(
            R"({"version": 7, "root": "root", "nodes": {"root": {"inputs": {"a": "gone"}}}})") ==
        "bad.lock: input 'a' of node 'root' refers to node 'gone', which does not exist");
  CHECK(
      parseError(
          R"({"version": 7, "root": "root", "nodes": {"root": {"inputs": {"a": ["b"], "b": ["a"]}}}})")
          .find("follows cycle") != std::string::npos);
  CHECK(
      parseError(
          R"({"version": 7, "root": "root", "nodes": {"root": {"inputs": {"a": ["x", "y"]}}}})") ==
      "bad.lock: input 'a' of node 'root' follows 'x/y', which does not exist");
  CHECK(
      parseError(
          R"({"version": 7, "root": "root", "nodes": {"root": {"inputs": {"a": "a"}}, "a": {}}})") ==
      "bad.lock: node 'a' has no 'locked' attributes");
  CHECK(parseError(R"({"version": 7, "root": "root", "nodes": {"root": {"inputs": {"a": 3}}}})") ==
        "bad.lock: input 'a' of node 'root' must be a node name or a follows path");
}

TEST_CASE("versions 5 and 6 are accepted", "[unit][lock]") {
  for (int v : {5, 6}) {
    json j = baseLock();
    j["version"] = v;
    CHECK(parse(j).version == v);
  }
}

TEST_CASE("the human table names each change", "[unit][lock]") {
  json next = baseLock();
  next["nodes"]["nixpkgs"]["locked"]["rev"] = "e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5";
  auto text = nix::formatLockDiff(nix::diffLocks(parse(baseLock()), parse(next)));
  CHECK(text.find("INPUT") == 0);
  CHECK(text.find("nixpkgs       updated") != std::string::npos);
  CHECK(text.find("transitive via nixpkgs") != std::string::npos);
  CHECK(text.find("a1a1a1a1a1a1 (2023-11-14)") != std::string::npos);
  CHECK(nix::formatLockDiff({}) == "no input changed\n");
}
