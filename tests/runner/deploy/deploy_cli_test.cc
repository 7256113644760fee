// `switchyard deploy` end to end: the built binary, a switchyard.yaml, a lab flake and sshd
// test hosts. Progress on stderr, a results table (or JSON) on stdout, exit 1 when a host
// did not succeed.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "runner/core/text.h"
#include "runner/lab/lab.h"
#include "runner/lab/test_hosts.h"
#include "runner/os/files.h"
#include "runner/os/process.h"
#include "tests/support/run.h"

namespace fs = std::filesystem;
using namespace runner::lab;

namespace {

std::string config(const TestHosts& hosts, const fs::path& repo, const fs::path& state,
                   const std::string& extraActivation = "") {
  std::string y = "state_dir: " + state.string() +
                  "\n"
                  "repos:\n"
                  "  - name: lab/infra\n"
                  "    path: " +
                  repo.string() +
                  "\n"
                  "    rollout: {canary: [web1], max_parallel: 2, stop_on_failure: false}\n"
                  "    activation: {confirm_timeout: 3s" +
                  extraActivation +
                  "}\n"
                  "    hosts:\n";
  for (const auto& h : hosts.hosts())
    y += "      " + h.name + ": {target: \"" + h.target().toString() + "\"}\n";
  y += "ssh:\n  identity_file: " + hosts.identityFile().string() +
       "\n  known_hosts: " + hosts.knownHostsFile().string() + "\n  use_agent: false\n";
  return y;
}

}  // namespace

TEST_CASE("switchyard deploy: progress, a results table and the exit status",
          "[integration][ssh][deploy][cli]") {
  runner::os::PosixProcessRunner procs;
  runner::os::TempDir tmp("sy-deploy-cli");
  std::vector<LabHost> labHosts(2);
  labHosts[0].name = "web1";
  labHosts[1].name = "web2";
  auto lab = Lab::create(procs, tmp.path() / "lab", {.hosts = labHosts});
  TestHosts hosts({.names = {"web1", "web2"}});
  const fs::path cfg = tmp.path() / "switchyard.yaml";
  runner::os::writeFileAtomic(cfg, config(hosts, lab.infra.path(), tmp.path() / "state"));
  const std::string repo = lab.infra.path().string();

  auto r = tests::switchyard({"deploy", "--repo", repo, "--rev", "HEAD", "--config", cfg.string()});
  INFO(r.out << r.errTail);
  REQUIRE(r.exitStatus == 0);
  auto lines = runner::split(std::string(runner::trim(r.out)), '\n');
  REQUIRE(lines.size() == 3);
  CHECK(runner::startsWith(lines[0], "HOST  RESULT     GENERATION  TIME"));
  CHECK(runner::startsWith(lines[1], "web1  succeeded  - -> 1"));
  CHECK(runner::startsWith(lines[2], "web2  succeeded  - -> 1"));
  CHECK(r.errTail.find("[web2] => succeeded") != std::string::npos);
  CHECK(hosts.host("web1").profileGeneration() == 1);
  CHECK(hosts.host("web2").profileGeneration() == 1);

  // web2's next configuration fails to activate: rolled back, exit 1; web1 succeeds.
  lab.infra.changeHost("web1");
  lab.infra.updateHost("web2", [](auto& h) { h.failActivation = true; });
  r = tests::switchyard(
      {"deploy", "--repo", repo, "--rev", "HEAD", "--config", cfg.string(), "--json"});
  INFO(r.out << r.errTail);
  CHECK(r.exitStatus == 1);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j.at("repo") == "lab/infra");
  CHECK(j.at("rev") == lab.infra.head());
  REQUIRE(j.at("hosts").size() == 2);
  CHECK(j["hosts"][0]["host"] == "web1");
  CHECK(j["hosts"][0]["result"] == "succeeded");
  CHECK(j["hosts"][0]["previous_generation"] == 1);
  CHECK(j["hosts"][0]["new_generation"] == 2);
  CHECK(j["hosts"][1]["host"] == "web2");
  CHECK(j["hosts"][1]["result"] == "rolled-back");
  CHECK(j["hosts"][1]["reason"] ==
        "activation failed: switch-to-configuration exited with status 3; generation 1 is "
        "active again");
  CHECK(j["hosts"][1]["failed_step"] == "verify");
  CHECK(hosts.host("web2").profileGeneration() == 1);

  // An older commit is refused without --force (exit 1), and a dry run changes nothing.
  r = tests::switchyard(
      {"deploy", "--repo", repo, "--rev", "HEAD~2", "--config", cfg.string(), "web1"});
  CHECK(r.exitStatus == 1);
  CHECK(r.out.find("web1  refused") != std::string::npos);
  CHECK(r.out.find("is not a descendant of") != std::string::npos);

  r = tests::switchyard(
      {"deploy", "--repo", repo, "--rev", "HEAD", "--config", cfg.string(), "--dry-run", "web1"});
  INFO(r.out << r.errTail);
  CHECK(r.exitStatus == 0);
  CHECK(r.out.find("web1 (" + hosts.host("web1").target().toString() +
                   ")\n  current: generation 2") == 0);
  CHECK(r.out.find("  dry-activate:\n    would activate /nix/store/") != std::string::npos);
  CHECK(r.out.find("web1  dry run") != std::string::npos);
  CHECK(hosts.host("web1").profileGeneration() == 2);

  // Without known_hosts there is no deploy at all.
  r = tests::switchyard(
      {"deploy", "--repo", repo, "--rev", "HEAD", "--target", "web1=root@127.0.0.1:1", "web1"});
  CHECK(r.exitStatus == 2);
  CHECK(r.errTail.find("no known_hosts file") != std::string::npos);
}
