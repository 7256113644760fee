#include "tests/support/deploy_fixture.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "runner/core/text.h"
#include "tests/support/run.h"

namespace tests {

using namespace runner;

void RecordingDeployObserver::stepStarted(const std::string& host, deploy::Step step,
                                          std::string_view) {
  std::lock_guard lk(mu_);
  steps_[host].emplace_back(deploy::stepName(step));
}
void RecordingDeployObserver::stepFinished(const std::string&, deploy::Step,
                                           std::chrono::milliseconds, std::string_view) {}
void RecordingDeployObserver::logLine(const std::string& host, deploy::Step,
                                      std::string_view line) {
  std::lock_guard lk(mu_);
  log_[host].emplace_back(line);
}
void RecordingDeployObserver::hostFinished(const deploy::HostOutcome& o) {
  std::lock_guard lk(mu_);
  finished_.push_back(o.host);
}
std::vector<std::string> RecordingDeployObserver::steps(const std::string& host) {
  std::lock_guard lk(mu_);
  return steps_[host];
}
std::vector<std::string> RecordingDeployObserver::log(const std::string& host) {
  std::lock_guard lk(mu_);
  return log_[host];
}
std::vector<std::string> RecordingDeployObserver::finishedHosts() {
  std::lock_guard lk(mu_);
  return finished_;
}

namespace {

std::vector<lab::LabHost> labHostsFor(const std::vector<std::string>& names,
                                      const DeployFixtureOptions& o) {
  if (!o.labHosts.empty()) return o.labHosts;
  std::vector<lab::LabHost> out;
  for (const auto& n : names) {
    lab::LabHost h;
    h.name = n;
    out.push_back(h);
  }
  return out;
}

}  // namespace

DeployFixture::DeployFixture(const std::vector<std::string>& hostNames,
                             DeployFixtureOptions options)
    : lab(lab::Lab::create(procs, tmp.path() / "lab", {.hosts = labHostsFor(hostNames, options)})),
      hosts({.names = hostNames, .loginUser = options.loginUser}),
      db(store::Database::open(tmp.path() / "state.db")),
      locks(*db, clock),
      deployments(*db),
      guard(locks, clock),
      connector(ssh::makeLibsshConnector()),
      ancestry(lab.infra.path()) {
  settings.ssh = hosts.sshConfig();
  settings.activation.confirmTimeout = options.confirmTimeout;
  settings.activation.switchTimeout = options.switchTimeout;
  settings.verifySlack = std::chrono::seconds(10);
}

std::map<std::string, std::string> DeployFixture::build(const std::string& rev,
                                                        std::vector<std::string> which) {
  if (which.empty()) which = lab.infra.hostNames();
  std::vector<std::string> args = {"build", "--no-link", "--json"};
  for (const auto& h : which)
    args.push_back(lab.infra.url(rev) + "#" + lab::InfraFlake::toplevelAttr(h));
  auto r = run("nix", args);
  INFO(r.errTail);
  REQUIRE(r.exitStatus == 0);
  std::map<std::string, std::string> out;
  for (const auto& item : nlohmann::json::parse(r.out)) {
    std::string path = item.at("outputs").at("out").get<std::string>();
    for (const auto& h : which)
      if (path.find("-nixos-system-" + h + "-") != std::string::npos) out[h] = path;
  }
  REQUIRE(out.size() == which.size());
  return out;
}

deploy::HostJob DeployFixture::job(const std::string& host, const std::string& storePath) const {
  return {host, hosts.host(host).target(), storePath};
}

deploy::DeployRequest DeployFixture::request(const std::string& rev, bool force) const {
  deploy::DeployRequest r;
  r.repo = "infra";
  r.sha = rev;
  r.force = force;
  return r;
}

std::unique_ptr<deploy::SshDeployer> DeployFixture::deployer() {
  return std::make_unique<deploy::SshDeployer>(
      deploy::DeployServices{*connector, procs, http, guard, deployments, ancestry, clock, log},
      settings);
}

deploy::HostOutcome DeployFixture::deploy(const std::string& host, const std::string& rev,
                                          bool force) {
  auto out = build(rev, {host});
  auto d = deployer();
  return d->deploy(job(host, out.at(host)), request(rev, force), observer);
}

}  // namespace tests
