#include "runner/core/config.h"

#include <catch2/catch.hpp>

#include "runner/core/error.h"

using namespace runner;

TEST_CASE("targets parse with users, ports and bracketed IPv6", "[unit][config]") {
  auto t = parseTarget("root@10.20.0.2");
  CHECK(t.user == "root");
  CHECK(t.host == "10.20.0.2");
  CHECK(t.port == 22);
  t = parseTarget("deploy@[fd00::2]:2222");
  CHECK(t.user == "deploy");
  CHECK(t.host == "fd00::2");
  CHECK(t.port == 2222);
  CHECK(t.toString() == "deploy@[fd00::2]:2222");
  t = parseTarget("octavia:2203");
  CHECK(t.user == "root");
  CHECK(t.host == "octavia");
  CHECK(t.port == 2203);
  CHECK(parseTarget("root@[fd00::2]").toString() == "root@[fd00::2]");
}

TEST_CASE("bad targets name the problem", "[unit][config]") {
  CHECK_THROWS_WITH(parseTarget("fd00::2"), Catch::Contains("IPv6 addresses must be in brackets"));
  CHECK_THROWS_WITH(parseTarget("host:0"), Catch::Contains("port must be 1-65535"));
  CHECK_THROWS_WITH(parseTarget("host:ssh"), Catch::Contains("port must be 1-65535"));
  CHECK_THROWS_WITH(parseTarget("@host"), Catch::Contains("empty user"));
  CHECK_THROWS_WITH(parseTarget("root@"), Catch::Contains("empty host"));
  CHECK_THROWS_AS(parseTarget("[fd00::2"), InputError);
  // Targets come from flakes too and reach ssh's command line: nothing ssh reads as an option.
  CHECK_THROWS_WITH(parseTarget("-oProxyCommand=sh${IFS}-c${IFS}id@host"),
                    Catch::Contains("user must be letters"));
  CHECK_THROWS_WITH(parseTarget("root@-oProxyCommand=x"), Catch::Contains("host must be"));
  CHECK_THROWS_WITH(parseTarget("root@host name"), Catch::Contains("host must be"));
  CHECK_THROWS_WITH(parseTarget("ro ot@host"), Catch::Contains("user must be"));
  CHECK_THROWS_WITH(parseTarget("root@[fd00::2;id]"), Catch::Contains("host must be"));
  CHECK(parseTarget("nixos-admin@web-1.example.org:2222").toString() ==
        "nixos-admin@web-1.example.org:2222");
  CHECK(parseTarget("root@[fe80::1%eth0]").host == "fe80::1%eth0");
}

TEST_CASE("durations", "[unit][config]") {
  using namespace std::chrono;
  CHECK(parseDuration("30s") == seconds(30));
  CHECK(parseDuration("5m") == minutes(5));
  CHECK(parseDuration("250ms") == milliseconds(250));
  CHECK(parseDuration("12") == seconds(12));
  CHECK(parseDuration("7d") == hours(7 * 24));
  CHECK_THROWS_WITH(parseDuration("99999d"), Catch::Contains("over 100 years"));
  CHECK_THROWS_WITH(parseDuration("5 minutes"), Catch::Contains("unknown unit ' minutes'"));
  CHECK_THROWS_AS(parseDuration("soon"), InputError);
}
