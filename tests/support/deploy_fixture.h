// A whole deploy test bed in one object: a lab infra flake (runner/app/lab) whose hosts are
// sshd test hosts (TestHosts) with their own Nix stores, a state database, and a real
// SshDeployer (libssh, nix copy, the watchdog agent) wired to them. Integration tests of the
// deploy stage, the scheduler and the CLI start from it.
//
//   DeployFixture f({"web1", "web2"});
//   auto out = f.build(f.lab.infra.head());            // host -> toplevel store path
//   auto o = f.deploy("web1", f.lab.infra.head());     // build + deploy one host
//   CHECK(f.hosts.host("web1").profilePath() == out.at("web1"));
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "runner/core/log.h"
#include "runner/deploy/ssh_deployer.h"
#include "runner/lab/lab.h"
#include "runner/lab/test_hosts.h"
#include "runner/os/files.h"
#include "runner/os/process.h"
#include "runner/store/database.h"
#include "tests/support/fake_http_client.h"

namespace tests {

// Remembers what the deployer reported, per host; thread-safe.
class RecordingDeployObserver final : public runner::deploy::DeployObserver {
 public:
  void stepStarted(const std::string& host, runner::deploy::Step step,
                   std::string_view detail) override;
  void stepFinished(const std::string& host, runner::deploy::Step step,
                    std::chrono::milliseconds took, std::string_view detail) override;
  void logLine(const std::string& host, runner::deploy::Step step, std::string_view line) override;
  void hostFinished(const runner::deploy::HostOutcome& outcome) override;

  // "connect", "inspect", … in the order started, for one host.
  std::vector<std::string> steps(const std::string& host);
  std::vector<std::string> log(const std::string& host);
  std::vector<std::string> finishedHosts();

 private:
  std::mutex mu_;
  std::map<std::string, std::vector<std::string>> steps_, log_;
  std::vector<std::string> finished_;
};

struct DeployFixtureOptions {
  std::vector<runner::lab::LabHost> labHosts;  // empty: one plain LabHost per name
  std::chrono::seconds confirmTimeout{3};
  std::chrono::seconds switchTimeout{30};
  std::string loginUser;  // TestHostsOptions::loginUser
};

class DeployFixture {
 public:
  explicit DeployFixture(const std::vector<std::string>& hostNames,
                         DeployFixtureOptions options = {});

  // Builds the hosts' toplevels at `rev` (all hosts when `hosts` is empty) in one nix build;
  // returns host -> out path. Fails the test when the build fails.
  std::map<std::string, std::string> build(const std::string& rev,
                                           std::vector<std::string> hosts = {});
  runner::deploy::HostJob job(const std::string& host, const std::string& storePath) const;
  runner::deploy::DeployRequest request(const std::string& rev, bool force = false) const;
  // A deployer over the current `settings` (make it after changing them).
  std::unique_ptr<runner::deploy::SshDeployer> deployer();
  // Builds `host` at `rev` and deploys it with a fresh deployer.
  runner::deploy::HostOutcome deploy(const std::string& host, const std::string& rev,
                                     bool force = false);

  runner::os::PosixProcessRunner procs;
  runner::os::TempDir tmp{"sy-deploy"};
  runner::lab::Lab lab;
  runner::lab::TestHosts hosts;
  std::unique_ptr<runner::store::Database> db;
  runner::SystemClock clock;
  runner::store::HostLocks locks;
  runner::store::Deployments deployments;
  runner::deploy::HostLockGuard guard;
  runner::ssh::ConnectorPtr connector;
  FakeHttpClient http;
  runner::NullLogger log;
  runner::deploy::GitAncestry ancestry;
  runner::deploy::DeploySettings settings;
  RecordingDeployObserver observer;
};

}  // namespace tests
