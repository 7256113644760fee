#include "runner/app/config_loader.h"

#include <algorithm>

#include <catch2/catch.hpp>

#include "runner/core/error.h"
#include "runner/core/text.h"
#include "runner/os/files.h"
#include "tests/support/run.h"

namespace fs = std::filesystem;
using namespace runner;
using runner::app::checkConfigText;

namespace {
std::vector<std::string> errors(const app::ConfigCheck& c) {
  std::vector<std::string> out;
  for (const auto& i : c.issues)
    if (!i.warning) out.push_back(app::formatIssue("s.yaml", i));
  return out;
}
}  // namespace

TEST_CASE("the example config is valid and reads as documented", "[unit][config]") {
  auto text = os::readFile(tests::sourceDir() / "templates" / "switchyard.example.yaml");
  auto c = checkConfigText(text, "example.yaml", "/etc/switchyard");
  INFO(errors(c).size());
  REQUIRE(c.ok());
  const Config& cfg = c.config;
  CHECK(cfg.listen == "127.0.0.1:8470");
  CHECK(cfg.concurrency.deploys == 8);
  REQUIRE(cfg.forges.count("home"));
  CHECK(cfg.forges.at("home").type == "gitea");
  CHECK(cfg.forges.at("home").apiUrl == "https://git.example.org/api/v1");
  REQUIRE(cfg.repos.size() == 1);
  const RepoConfig& r = cfg.repos[0];
  CHECK(r.name == "alice/infra");
  CHECK(r.detection == PlanMode::Auto);
  CHECK(r.rollout.canary == std::vector<std::string>{"octavia"});
  CHECK(r.rollout.maxParallel == 4);
  CHECK(r.activation.confirmTimeout == std::chrono::seconds(30));
  REQUIRE(r.hosts.size() == 5);
  CHECK(r.hosts[4].name == "demo");  // off: retried when the fleet probe reaches it again
  CHECK(r.hosts[4].retryUnreachable == std::chrono::hours(7 * 24));
  CHECK(r.hosts[1].target == "root@[2a01:4f8::1]:2222");
  CHECK_FALSE(r.hosts[1].deploy);
  CHECK(r.hosts[1].action == SwitchAction::Switch);
  CHECK(r.hosts[2].name == "nixos");
  CHECK(r.hosts[2].deploy == DeployPolicy::Manual);
  CHECK(r.hosts[3].action == SwitchAction::Boot);
  CHECK(cfg.ssh.knownHosts == "/etc/switchyard/known_hosts");
  // forks: the top level's policy, overridden per repository
  CHECK(cfg.untrusted.user == "switchyard-untrusted");
  CHECK(cfg.untrusted.evalTimeout == std::chrono::minutes(5));
  CHECK(cfg.untrusted.maxSilentTime == std::chrono::minutes(10));
  CHECK(cfg.untrusted.defaults.build == UntrustedBuild::Approve);
  CHECK(r.untrusted.build == UntrustedBuild::Never);
  // the HTTP server's limits, written out with their defaults
  const http::ServerOptions so = app::serverOptionsFor(cfg), defaults{};
  CHECK(cfg.server.maxConnections == 4096u);
  CHECK(so.maxBodyBytes == defaults.maxBodyBytes);
  CHECK(so.maxConnections == defaults.maxConnections);
  CHECK(so.maxConnectionsPerAddress == defaults.maxConnectionsPerAddress);
  CHECK(so.maxStreams == defaults.maxStreams);
  CHECK(so.maxRequestLineBytes == defaults.maxRequestLineBytes);
  CHECK(so.maxHeaderBytes == defaults.maxHeaderBytes);
  CHECK(so.maxHeaderCount == defaults.maxHeaderCount);
  CHECK(so.maxBufferedBodyBytes == defaults.maxBufferedBodyBytes);
  CHECK(so.keepAliveMaxRequests == defaults.keepAliveMaxRequests);
  CHECK(so.headerTimeout == defaults.headerTimeout);
  CHECK(so.bodyTimeout == defaults.bodyTimeout);
  CHECK(so.keepAlive == defaults.keepAlive);
  CHECK(so.writeTimeout == defaults.writeTimeout);
  // secret files do not exist on this machine: warnings, not errors
  CHECK(std::any_of(c.issues.begin(), c.issues.end(), [](const auto& i) { return i.warning; }));
}

TEST_CASE("an empty config means the embedded defaults", "[unit][config]") {
  auto c = checkConfigText("", "s.yaml", "/tmp");
  CHECK(c.ok());
  CHECK(c.config.listen == "127.0.0.1:8470");
  CHECK(c.config.stateDir == ".switchyard");
}

TEST_CASE("database: a postgresql:// URL, SQLite in state_dir when left out", "[unit][config]") {
  CHECK(checkConfigText("", "s.yaml", "/tmp").config.database.empty());
  auto c = checkConfigText("database: postgresql://sy@db.lan:5432/switchyard\n", "s.yaml", "/tmp");
  CHECK(c.ok());
  CHECK(c.config.database == "postgresql://sy@db.lan:5432/switchyard");
  // the value is not echoed: it may hold a password
  auto bad = checkConfigText("database: mysql://sy:pw@db.lan/sy\n", "s.yaml", "/tmp");
  CHECK(errors(bad) == std::vector<std::string>{"s.yaml:1: database: must be a postgresql:// URL "
                                                "(leave it out for SQLite in state_dir)"});
}

TEST_CASE("every mistake is reported with its line and key", "[unit][config]") {
  std::string text =
      "listen: 127.0.0.1\n"                        // 1
      "forges:\n"                                  // 2
      "  home:\n"                                  // 3
      "    type: gitlab\n"                         // 4
      "    url: git.example.org\n"                 // 5
      "    webhook_secret_file: /nonexistent\n"    // 6
      "repos:\n"                                   // 7
      "  - name: alice/infra\n"                    // 8
      "    forge: away\n"                          // 9
      "    deploy_branch: [main]\n"                // 10
      "    detection: maybe\n"                     // 11
      "    rollout: {max_parallel: 0}\n"           // 12
      "    activation: {confirm_timeout: soon}\n"  // 13
      "    hosts:\n"                               // 14
      "      web1: {target: 'fd00::2'}\n";         // 15
  auto c = checkConfigText(text, "s.yaml", "/tmp");
  CHECK_FALSE(c.ok());
  auto e = errors(c);
  CHECK(e ==
        std::vector<std::string>{
            "s.yaml:1: listen: must be host:port, e.g. 127.0.0.1:8470",
            "s.yaml:4: forges.home.type: must be gitea, forgejo or github, not 'gitlab'",
            "s.yaml:5: forges.home.url: must start with http:// or https://",
            "s.yaml:9: repos[0].forge: no forge named 'away' under forges:",
            "s.yaml:10: repos[0].deploy_branch: unknown key (did you mean 'deploy_branches'?)",
            "s.yaml:11: repos[0].detection: must be static, exact or auto, not 'maybe'",
            "s.yaml:12: repos[0].rollout.max_parallel: must be a positive integer",
            "s.yaml:13: repos[0].activation.confirm_timeout: invalid duration 'soon' (e.g. 30s, "
            "5m, 1h)",
            "s.yaml:15: repos[0].hosts.web1.target: invalid target 'fd00::2': IPv6 addresses "
            "must be in brackets (expected [user@]host[:port], IPv6 in brackets)",
        });
}

TEST_CASE("hosts: deploy policy and switch action are read and checked", "[unit][config]") {
  auto c = checkConfigText(
      "repos:\n"                                           // 1
      "  - name: lab/infra\n"                              // 2
      "    path: /tmp\n"                                   // 3
      "    rollout: {canary: ['@web', web1, '@']}\n"       // 4
      "    hosts:\n"                                       // 5
      "      web1: {deploy: manual, action: test}\n"       // 6
      "      web2: {deploy: never}\n"                      // 7
      "      web3: {deploy: sometimes, action: reboot}\n"  // 8
      "      web4: {tags: [web]}\n",                       // 9
      "s.yaml", "/tmp");
  CHECK(errors(c) ==
        std::vector<std::string>{
            "s.yaml:4: repos[0].rollout.canary: '@' names no tag",
            "s.yaml:8: repos[0].hosts.web3.deploy: must be auto, manual or never, not 'sometimes'",
            "s.yaml:8: repos[0].hosts.web3.action: must be switch, boot or test, not 'reboot'",
            "s.yaml:9: repos[0].hosts.web4.tags: unknown key (did you mean 'target'?)",
        });
  const RepoConfig& r = c.config.repos.at(0);
  CHECK(r.rollout.canary == std::vector<std::string>{"@web", "web1", "@"});
  REQUIRE(r.hosts.size() >= 2);
  CHECK(r.hosts[0].deploy == DeployPolicy::Manual);
  CHECK(r.hosts[0].action == SwitchAction::Test);
  CHECK(r.hosts[1].deploy == DeployPolicy::Never);
  CHECK(std::string(toString(DeployPolicy::Manual)) == "manual");
  CHECK(std::string(toString(SwitchAction::Boot)) == "boot");
}

TEST_CASE("server: limits are read, checked and reach the HTTP server's options",
          "[unit][config]") {
  auto c = checkConfigText(
      "listen: 0.0.0.0:8470\n"
      "max_body_bytes: 1048576\n"
      "server:\n"
      "  max_connections: 20000\n"
      "  max_connections_per_address: 50\n"
      "  header_timeout: 3s\n"
      "  keep_alive: 1m\n",
      "s.yaml", "/tmp");
  REQUIRE(c.ok());
  const http::ServerOptions so = app::serverOptionsFor(c.config), defaults{};
  CHECK(so.listen == "0.0.0.0:8470");
  CHECK(so.maxBodyBytes == 1048576u);
  CHECK(so.maxConnections == 20000u);
  CHECK(so.maxConnectionsPerAddress == 50u);
  CHECK(so.headerTimeout == std::chrono::seconds(3));
  CHECK(so.keepAlive == std::chrono::minutes(1));
  CHECK(so.bodyTimeout == defaults.bodyTimeout);  // unset: the server's default
  CHECK(so.maxHeaderBytes == defaults.maxHeaderBytes);

  auto bad = checkConfigText(
      "max_body_bytes: 33554432\n"             // 1
      "server:\n"                              // 2
      "  max_connections: 8\n"                 // 3
      "  max_connections_per_address: 5000\n"  // 4
      "  max_request_line_bytes: 100\n"        // 5
      "  max_header_count: -1\n"               // 6
      "  max_buffered_body_bytes: 16777216\n"  // 7
      "  header_timeout: 2h\n"                 // 8
      "  body_timeout: 0s\n"                   // 9
      "  keepalive: 5s\n",                     // 10
      "s.yaml", "/tmp");
  CHECK(errors(bad) ==
        std::vector<std::string>{
            "s.yaml:3: server.max_connections: must be between 16 and 1000000",
            "s.yaml:4: server.max_connections_per_address: must be at most max_connections "
            "(4096)",
            "s.yaml:5: server.max_request_line_bytes: must be between 1024 and 1048576",
            "s.yaml:6: server.max_header_count: must be a positive integer",
            "s.yaml:7: server.max_buffered_body_bytes: must be at least max_body_bytes "
            "(33554432): one body must fit",
            "s.yaml:8: server.header_timeout: must be between 1s and 600s",
            "s.yaml:9: server.body_timeout: must be between 1s and 3600s",
            "s.yaml:10: server.keepalive: unknown key (did you mean 'keep_alive'?)",
        });
}

TEST_CASE("broken YAML is one clear error with the line", "[unit][config]") {
  auto c = checkConfigText("repos:\n  - name: [unclosed\n", "s.yaml", "/tmp");
  auto e = errors(c);
  REQUIRE(e.size() == 1);
  CHECK(e[0].find("s.yaml:") == 0);
  CHECK(e[0].find("not valid YAML") != std::string::npos);
}

TEST_CASE("forges require a webhook secret, github gets its API URL", "[unit][config]") {
  auto c =
      checkConfigText("forges:\n  gh:\n    type: github\n    token_file: /x\n", "s.yaml", "/tmp");
  auto e = errors(c);
  REQUIRE(e.size() == 1);
  CHECK(
      e[0] ==
      "s.yaml:3: forges.gh.webhook_secret_file: is required: unsigned webhooks are refused (401)");
  CHECK(c.config.forges.at("gh").apiUrl == "https://api.github.com");
}

TEST_CASE("loadConfig throws a ConfigError naming the first mistake and the count",
          "[unit][config]") {
  os::TempDir d;
  os::writeFileAtomic(d.path() / "s.yaml", "listen: nope\nbogus: 1\n");
  try {
    app::loadConfig(d.path() / "s.yaml");
    FAIL("no error");
  } catch (const ConfigError& e) {
    std::string msg = e.what();
    CHECK(msg.find((d.path() / "s.yaml").string() + ":1: listen: must be host:port") == 0);
    CHECK(msg.find("and 1 more; run switchyard check-config") != std::string::npos);
  }
}

TEST_CASE("check-config exits 2 listing every error, 0 when fine", "[integration][cli]") {
  os::TempDir d;
  os::writeFileAtomic(d.path() / "bad.yaml", "listen: nope\nrepos: 3\n");
  auto r = tests::switchyard({"check-config", (d.path() / "bad.yaml").string()});
  CHECK(r.exitStatus == 2);
  CHECK(r.errTail.find("bad.yaml:1: listen: must be host:port") != std::string::npos);
  CHECK(r.errTail.find("bad.yaml:2: repos: must be a list") != std::string::npos);
  CHECK(r.errTail.find("2 errors") != std::string::npos);
  // the example names files of another machine: valid, but not usable here (exit 1)
  auto example = tests::switchyard(
      {"check-config", (tests::sourceDir() / "templates" / "switchyard.example.yaml").string()});
  CHECK(example.exitStatus == 1);
  CHECK(example.out.find("ok (1 forges, 1 repos), ") != std::string::npos);
  CHECK(example.errTail.find(
            "ssh.known_hosts: file /etc/switchyard/known_hosts does not exist (host keys are "
            "pinned: deploys need it)") != std::string::npos);
  os::writeFileAtomic(d.path() / "good.yaml", "listen: '[::1]:8470'\nstate_dir: state\n");
  auto ok = tests::switchyard({"check-config", (d.path() / "good.yaml").string()});
  CHECK(ok.exitStatus == 0);
  CHECK(ok.out.find("ok (0 forges, 0 repos)\n") != std::string::npos);
  // addresses that cannot be listened on are errors
  for (const char* listen :
       {"999.1.1.1:8470", "127.0.0.1:99999", "::1:8470", "[nope]:1", "a b:1"}) {
    INFO(listen);
    os::writeFileAtomic(d.path() / "l.yaml", std::string("listen: '") + listen + "'\n");
    auto l = tests::switchyard({"check-config", (d.path() / "l.yaml").string()});
    CHECK(l.exitStatus == 2);
    CHECK(l.errTail.find("l.yaml:1: listen: ") != std::string::npos);
  }
}

TEST_CASE("config host and repository names follow the same rule as the flake's",
          "[unit][config]") {
  std::string text =
      "repos:\n"                           // 1
      "  - name: ../../etc\n"              // 2
      "    path: /tmp\n"                   // 3
      "    hosts:\n"                       // 4
      "      ../x: {target: 10.0.0.1}\n"   // 5
      "      web-1: {target: 10.0.0.2}\n"  // 6
      "  - name: alice/infra\n"            // 7
      "    path: /tmp\n";                  // 8
  auto c = checkConfigText(text, "s.yaml", "/tmp");
  auto e = errors(c);
  REQUIRE(e.size() == 2);
  CHECK(e[0] ==
        "s.yaml:2: repos[0].name: '../../etc' is not a repository name (owner/name, no '.' or "
        "'..' parts)");
  CHECK(e[1] ==
        "s.yaml:5: repos[0].hosts.../x: is not an accepted host name: the name starts "
        "with '.'");
}

TEST_CASE("build: remote builders in Nix's syntax or as a list, with pinned host keys",
          "[unit][config]") {
  auto list = checkConfigText(R"(ssh:
  known_hosts: /etc/switchyard/known_hosts
  identity_file: /etc/switchyard/id
build:
  max_jobs: 0
  builders_use_substitutes: true
  builders:
    - uri: ssh-ng://nix@big.example:2222
      systems: x86_64-linux, aarch64-linux
      max_jobs: 8
      features: [kvm, big-parallel]
      identity_file: /etc/switchyard/builder_id
    - uri: ssh://small.example
)",
                              "s.yaml", "/etc/switchyard");
  INFO(errors(list).size());
  REQUIRE(list.ok());
  const BuildConfig& b = list.config.build;
  CHECK(b.maxJobs == 0);
  CHECK(b.buildersUseSubstitutes);
  REQUIRE(b.builders.size() == 2);
  CHECK(b.builders[0].uri() == "ssh-ng://nix@big.example");
  CHECK(b.builders[0].port == 2222);
  CHECK(b.builders[0].systems == std::vector<std::string>{"x86_64-linux", "aarch64-linux"});
  CHECK(b.builders[0].maxJobs == 8);
  CHECK(b.builders[0].features == std::vector<std::string>{"kvm", "big-parallel"});
  CHECK(b.builders[0].identityFile == fs::path("/etc/switchyard/builder_id"));
  CHECK(b.builders[1].uri() == "ssh://root@small.example");

  auto nixSyntax = checkConfigText(
      "ssh: {known_hosts: /k}\nbuild:\n  builders: \"ssh://a x86_64-linux - 2; ssh://b\"\n",
      "s.yaml", "/");
  REQUIRE(nixSyntax.ok());
  CHECK(nixSyntax.config.build.builders.size() == 2);

  auto bad = checkConfigText(R"(build:
  max_jobs: -1
  builders:
    - uri: http://cache.example
    - systems: x86_64-linux
    - uri: ssh://a.example:22
    - uri: ssh://a.example:2222
  bogus: 1
)",
                             "s.yaml", "/");
  auto e = errors(bad);
  INFO(join(e, "\n"));
  auto has = [&](const std::string& part) {
    return std::any_of(e.begin(), e.end(),
                       [&](const std::string& s) { return s.find(part) != std::string::npos; });
  };
  CHECK(has("s.yaml:2: build.max_jobs: must be 0 (build only on the builders) or more"));
  CHECK(has("s.yaml:4: build.builders[0].uri: builder 'http://cache.example': protocol 'http'"));
  CHECK(has("s.yaml:5: build.builders[1].uri: is required"));
  CHECK(has("build.builders: host 'a.example' is listed twice with a different user, port or key"));
  CHECK(has("build.builders: needs build.known_hosts or ssh.known_hosts"));
  CHECK(has("s.yaml:8: build.bogus: unknown key"));
  auto noBuilders = checkConfigText("build:\n  max_jobs: 0\n", "s.yaml", "/");
  CHECK(errors(noBuilders) ==
        std::vector<std::string>{
            "s.yaml:2: build.max_jobs: 0 needs at least one entry in build.builders"});
}

TEST_CASE("a repository is (forge, name): one name on two forges, never twice on one",
          "[unit][config]") {
  const std::string forges =
      "forges:\n"                                                                   // 1
      "  hub: {type: github, webhook_secret_file: /s}\n"                            // 2
      "  home: {type: gitea, url: https://git.example, webhook_secret_file: /s}\n"  // 3
      "repos:\n"                                                                    // 4
      "  - {forge: hub, name: alice/infra}\n"                                       // 5
      "  - {forge: home, name: alice/infra}\n";                                     // 6
  auto ok = checkConfigText(forges, "s.yaml", "/tmp");
  INFO(join(errors(ok), "\n"));
  REQUIRE(ok.ok());
  const Config& c = ok.config;
  REQUIRE(c.findRepo("hub", "alice/infra"));
  CHECK(c.findRepo("hub", "alice/infra")->forge == "hub");
  CHECK(c.findRepo("home", "Alice/Infra")->forge == "home");  // forges compare without case
  CHECK_FALSE(c.findRepo("", "alice/infra"));
  CHECK(c.reposNamed("alice/infra").size() == 2);

  auto twice = checkConfigText(forges + "  - {forge: home, name: Alice/Infra}\n", "s.yaml", "/tmp");
  auto e = errors(twice);
  REQUIRE(e.size() == 1);
  CHECK(e[0] ==
        "s.yaml:7: repos[2].name: repository 'Alice/Infra' is listed twice for forge 'home'");

  auto badForge = checkConfigText("forges:\n  \"a/b\": {type: github, webhook_secret_file: /s}\n",
                                  "s.yaml", "/tmp");
  e = errors(badForge);
  REQUIRE(e.size() == 1);
  CHECK(e[0].find("forges.a/b: 'a/b' is not a forge name") != std::string::npos);
}

TEST_CASE("hosts: user and retry_unreachable are read, each bad value names its key and line",
          "[unit][config]") {
  auto c = checkConfigText(
      "repos:\n"                                                          // 1
      "  - name: lab/infra\n"                                             // 2
      "    path: /tmp\n"                                                  // 3
      "    rollout: {retry_unreachable: 2d}\n"                            // 4
      "    hosts:\n"                                                      // 5
      "      web1: {user: deploy, retry_unreachable: 90m}\n"              // 6
      "      web2: {retry_unreachable: 0}\n"                              // 7
      "      web3: {retry_unreachable: 1w}\n"                             // 8
      "      web4: {retry_unreachable: -5m}\n"                            // 9
      "      web5: {user: 'al ice'}\n"                                    // 10
      "      web6: {user: 'admin@web6'}\n"                                // 11
      "      web7: {user: '-oProxyCommand=x'}\n"                          // 12
      "      web8: {retry_unreachabel: 1h, usr: ops}\n"                   // 13
      "      web9: {user: [ops], retry_unreachable: [1h]}\n"              // 14
      "      web10: {deploy: [manual], action: {boot: 1}, build_on: }\n"  // 15
      "      web11:\n"                                                    // 16
      "  - name: lab/other\n"                                             // 17
      "    path: /tmp\n"                                                  // 18
      "    rollout: {retry_unreachable: soon}\n",                         // 19
      "s.yaml", "/tmp");
  const std::string users =
      "is not a user name (letters, digits, '.', '_' or '-', not starting "
      "with '-')";
  CHECK(errors(c) ==
        std::vector<std::string>{
            "s.yaml:8: repos[0].hosts.web3.retry_unreachable: invalid duration '1w': unknown "
            "unit 'w' (use ms, s, m, h or d)",
            "s.yaml:9: repos[0].hosts.web4.retry_unreachable: invalid duration '-5m' (e.g. 30s, "
            "5m, 1h)",
            "s.yaml:10: repos[0].hosts.web5.user: 'al ice' " + users,
            "s.yaml:11: repos[0].hosts.web6.user: 'admin@web6' " + users,
            "s.yaml:12: repos[0].hosts.web7.user: '-oProxyCommand=x' " + users,
            "s.yaml:13: repos[0].hosts.web8.retry_unreachabel: unknown key (did you mean "
            "'retry_unreachable'?)",
            "s.yaml:13: repos[0].hosts.web8.usr: unknown key (did you mean 'user'?)",
            "s.yaml:14: repos[0].hosts.web9.user: must be a string",
            "s.yaml:14: repos[0].hosts.web9.retry_unreachable: must be a string",
            "s.yaml:15: repos[0].hosts.web10.build_on: must be a string",
            "s.yaml:15: repos[0].hosts.web10.deploy: must be a string",
            "s.yaml:15: repos[0].hosts.web10.action: must be a string",
            "s.yaml:19: repos[1].rollout.retry_unreachable: invalid duration 'soon' (e.g. 30s, "
            "5m, 1h)",
        });
  REQUIRE(c.config.repos.size() == 2);
  const RepoConfig& r = c.config.repos[0];
  CHECK(r.rollout.retryUnreachable == std::chrono::hours(48));
  REQUIRE(r.hosts.size() >= 2);
  CHECK(r.hosts[0].name == "web1");
  CHECK(r.hosts[0].user == "deploy");
  CHECK(r.hosts[0].retryUnreachable == std::chrono::minutes(90));
  CHECK(r.hosts[1].name == "web2");
  CHECK(r.hosts[1].retryUnreachable == std::chrono::seconds(0));  // this host: never retried
  CHECK_FALSE(r.hosts[1].user);
  auto web11 = std::find_if(r.hosts.begin(), r.hosts.end(),
                            [](const HostConfig& h) { return h.name == "web11"; });
  REQUIRE(web11 != r.hosts.end());
  CHECK_FALSE(web11->retryUnreachable);  // the repository's rollout setting applies
  CHECK(c.config.repos[1].rollout.retryUnreachable == std::chrono::seconds(0));  // default: off
}

TEST_CASE("build_on and fold_statuses_above are read and checked", "[unit][config]") {
  auto c = checkConfigText(
      "forges:\n"  // 1
      "  home: {type: gitea, url: https://g.example, webhook_secret_file: /s, "
      "fold_statuses_above: 50}\n"                                                // 2
      "  gh: {type: github, webhook_secret_file: /s, fold_statuses_above: -1}\n"  // 3
      "repos:\n"                                                                  // 4
      "  - name: a/b\n"                                                           // 5
      "    path: /srv/infra\n"                                                    // 6
      "    hosts:\n"                                                              // 7
      "      pi: {build_on: target}\n"                                            // 8
      "      vm: {build_on: runner}\n"                                            // 9
      "      big: {build_on: builder1}\n",                                        // 10
      "s.yaml", "/tmp");
  CHECK(errors(c) ==
        std::vector<std::string>{
            "s.yaml:3: forges.gh.fold_statuses_above: must be 0 or a positive integer",
            "s.yaml:10: repos[0].hosts.big.build_on: must be runner or target, not 'builder1' "
            "(for other build machines use build.builders)",
        });
  CHECK(c.config.forges.at("home").foldStatusesAbove == 50u);
  CHECK(c.config.forges.at("gh").foldStatusesAbove == 100u);  // the default stays
  const RepoConfig& r = c.config.repos.at(0);
  REQUIRE(r.hosts.size() >= 2);
  CHECK(r.hosts[0].buildOn == BuildPlace::Target);
  CHECK(r.hosts[1].buildOn == BuildPlace::Runner);
}
