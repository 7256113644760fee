// Derivation closures compared modulo substitutions, on closures recorded from Nix 2.8
// (tests/data/nix/self_revision_closures.json: one host of a flake with
// system.configurationRevision = self.rev and etc/flake-source = "${self}").
#include "runner/nix/derivation.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "runner/core/error.h"
#include "runner/core/text.h"
#include "runner/os/files.h"
#include "tests/support/run.h"

using namespace runner::nix;

namespace {

struct Side {
  std::string drv;
  DerivationSet closure;
  nlohmann::json meta;
};

Side load(const char* key) {
  static const nlohmann::json doc = nlohmann::json::parse(
      runner::os::readFile(tests::dataDir() / "nix" / "self_revision_closures.json"));
  const auto& j = doc.at(key);
  return {j.at("drv").get<std::string>(), parseShowDerivation(j.at("closure").dump(), key),
          j.at("meta")};
}

Substitutions selfSubs(const Side& a, const Side& b) {
  Substitutions s;
  for (const char* k : {"rev", "narHash", "path"})
    s.emplace_back(a.meta.at(k).get<std::string>(), b.meta.at(k).get<std::string>());
  s.emplace_back(a.meta.at("rev").get<std::string>().substr(0, 7),
                 b.meta.at("rev").get<std::string>().substr(0, 7));
  return s;
}

}  // namespace

TEST_CASE("storePathName", "[unit][nix]") {
  CHECK(storePathName("/nix/store/5kv8dx1hxvi4v70982g6ik9azggflrbp-nixos-system-db1.drv") ==
        "nixos-system-db1");
  CHECK(storePathName("/nix/store/5kv8dx1hxvi4v70982g6ik9azggflrbp-source/hosts") == "source");
  CHECK(storePathName("relative") == "relative");
}

TEST_CASE("parseShowDerivation reads every field", "[unit][nix]") {
  Side old = load("old");
  REQUIRE(old.closure.count(old.drv));
  const Derivation& top = old.closure.at(old.drv);
  CHECK(top.name() == "nixos-system-db1-fake-24.05");
  CHECK(top.env.at("host") == "db1");
  CHECK(top.env.at("configurationRevision") == old.meta.at("rev"));
  CHECK(top.outputs.at("out") == top.env.at("out"));
  CHECK(top.args.at(0) == "sh");
  CHECK(top.system == "x86_64-linux");
  CHECK(top.inputDrvs.size() == 3);
  CHECK(drvClosure(old.closure, {old.drv}).size() == old.closure.size());
  CHECK_THROWS_AS(parseShowDerivation("[1]"), runner::NixError);
  CHECK_THROWS_AS(parseShowDerivation(R"({"/x.drv": {"outputs": 3}})"), runner::NixError);
}

TEST_CASE("a README-only commit differs only through self", "[unit][nix]") {
  Side old = load("old"), readme = load("readme_only");
  REQUIRE(old.drv != readme.drv);
  auto plain = compareClosures(old.closure, old.drv, readme.closure, readme.drv, {});
  CHECK_FALSE(plain.equivalent);
  REQUIRE_FALSE(plain.differences.empty());
  auto modSelf =
      compareClosures(old.closure, old.drv, readme.closure, readme.drv, selfSubs(old, readme));
  INFO(runner::join(modSelf.differences, "\n"));
  CHECK(modSelf.equivalent);
  CHECK(modSelf.differences.empty());
}

TEST_CASE("a real change is not explained by self", "[unit][nix]") {
  Side old = load("old"), changed = load("real_change");
  auto r =
      compareClosures(old.closure, old.drv, changed.closure, changed.drv, selfSubs(old, changed));
  CHECK_FALSE(r.equivalent);
  // the nonce in modules/base.nix reaches its etc file and config.json (every option)
  CHECK(r.differences == std::vector<std::string>{"config.json: env.text differs",
                                                  "etc-lab-nonce: env.text differs"});
}

TEST_CASE("compareClosures: identical paths, missing derivations", "[unit][nix]") {
  Side old = load("old");
  CHECK(compareClosures(old.closure, old.drv, old.closure, old.drv, {}).equivalent);
  CHECK_THROWS_AS(compareClosures(old.closure, "/nix/store/x.drv", old.closure, old.drv, {}),
                  runner::NixError);
}

TEST_CASE("substitute replaces every occurrence in order", "[unit][nix]") {
  CHECK(substitute("abcabc-ab", {{"abc", "X"}, {"ab", "Y"}}) == "XX-Y");
  CHECK(substitute("aaa", {{"a", "aa"}}) == "aaaaaa");
}
