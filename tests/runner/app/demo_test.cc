// `switchyard demo` is the README's main job: run the built binary as a user would and check
// that the loop went through plan → build → deploy for exactly the machines the change touches.
#include <catch2/catch.hpp>

#include "runner/os/files.h"
#include "tests/support/run.h"

TEST_CASE("demo: two pushes, the second deploys only the two machines importing web.nix",
          "[integration][e2e][demo]") {
  runner::os::TempDir dir("sy-demo-test");
  auto r = tests::switchyard(
      {"demo", "--dir", (dir.path() / "d").string(), "--port", "0", "--no-serve"});
  INFO(r.out << r.errTail);
  REQUIRE(r.exitStatus == 0);
  CHECK(r.out.find("plan (auto): 2 of 5 machines affected") != std::string::npos);
  CHECK(r.out.find("vps-het-1: file modules/web.nix; derivation changed") != std::string::npos);
  CHECK(r.out.find("run 2 (deploy, hook)") != std::string::npos);
  CHECK(r.out.find("vps-het-1  deploy succeeded: deployed (generation 2)") != std::string::npos);
  CHECK(r.out.find("wellsjaha  deploy succeeded: deployed (generation 2)") != std::string::npos);
  CHECK(r.out.find("demo       plan not-affected: not affected") != std::string::npos);
  CHECK(r.out.find("run page: http://127.0.0.1:") != std::string::npos);
  // what the machines say they run (their state, read after the deploy)
  CHECK(r.out.find("now runs /nix/store/") != std::string::npos);
  CHECK(r.out.find("-nixos-system-wellsjaha-fake-24.05") != std::string::npos);

  // the config it leaves is the whole config it ran with: valid here, and the CLI reads the
  // demo's runs through it
  const std::string config = (dir.path() / "d" / "switchyard.yaml").string();
  auto check = tests::switchyard({"check-config", config});
  INFO(check.out << check.errTail);
  CHECK(check.exitStatus == 0);
  CHECK(check.out.find("ok (0 forges, 1 repos)") != std::string::npos);
  std::string yaml = runner::os::readFile(config);
  CHECK(yaml.find("listen: '127.0.0.1:0'") == std::string::npos);  // the port it really took
  CHECK(yaml.find("hook_secret_file: ") != std::string::npos);
  CHECK(yaml.find("known_hosts: ") != std::string::npos);
  CHECK(yaml.find("      wellsjaha: {target: ") != std::string::npos);
  auto runs = tests::switchyard({"runs", "--config", config});
  CHECK(runs.exitStatus == 0);
  CHECK(runs.out.find("lab/infra") != std::string::npos);
}
