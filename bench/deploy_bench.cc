// Deploy fan-out benchmark (issue 5): N sshd test hosts with their own Nix stores
// (runner/lab/test_hosts.h), the real SshDeployer (libssh, nix copy, the watchdog agent)
// and the real rollout. Never a timed assertion; the numbers go to bench/RESULTS.md.
//
//   deploy_bench [--hosts 10] [--runs 5] [--parallel 10,25,50]
//
// Each run deploys fresh closures (a new commit that changes every host, built before the
// clock starts) in these ways:
//   one   — a single host alone (the baseline: what one deploy costs)
//   pN    — all hosts, max_parallel = N for each N of --parallel (default: hosts, then 1)
// and measures the runner's own overhead: wall time minus the time covered by nix/ssh
// operations (ssh connects and commands, and child processes such as nix copy), measured by
// pass-through decorators around the ssh and process ports (the union of their intervals,
// so parallel operations are not counted twice). Medians over the runs.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <unistd.h>
#include <vector>

#include <nlohmann/json.hpp>

#include "runner/core/error.h"
#include "runner/core/log.h"
#include "runner/core/text.h"
#include "runner/deploy/rollout.h"
#include "runner/deploy/ssh_deployer.h"
#include "runner/lab/lab.h"
#include "runner/lab/test_hosts.h"
#include "runner/os/files.h"
#include "runner/os/process.h"
#include "runner/store/database.h"

using namespace runner;
using Steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

// Intervals spent inside nix/ssh operations, from any thread.
class OpLog {
 public:
  void add(Steady::time_point a, Steady::time_point b) {
    std::lock_guard lk(mu_);
    spans_.emplace_back(a, b);
  }
  void clear() {
    std::lock_guard lk(mu_);
    spans_.clear();
  }
  // How much of [from, to] is covered by at least one interval.
  double coveredMs(Steady::time_point from, Steady::time_point to) {
    std::lock_guard lk(mu_);
    auto s = spans_;
    std::sort(s.begin(), s.end());
    double total = 0;
    Steady::time_point curA{}, curB{};
    bool open = false;
    for (auto [a, b] : s) {
      a = std::max(a, from);
      b = std::min(b, to);
      if (b <= a) continue;
      if (open && a <= curB) {
        curB = std::max(curB, b);
        continue;
      }
      if (open) total += std::chrono::duration<double, std::milli>(curB - curA).count();
      curA = a;
      curB = b;
      open = true;
    }
    if (open) total += std::chrono::duration<double, std::milli>(curB - curA).count();
    return total;
  }

 private:
  std::mutex mu_;
  std::vector<std::pair<Steady::time_point, Steady::time_point>> spans_;
};

class TimedSession final : public ssh::Session {
 public:
  TimedSession(ssh::SessionPtr inner, OpLog& log) : inner_(std::move(inner)), log_(log) {}
  ssh::ExecResult exec(const ssh::ExecRequest& r) override {
    auto a = Steady::now();
    auto res = inner_->exec(r);
    log_.add(a, Steady::now());
    return res;
  }
  bool connected() const override { return inner_->connected(); }
  std::string hostKey() const override { return inner_->hostKey(); }

 private:
  ssh::SessionPtr inner_;
  OpLog& log_;
};

class TimedConnector final : public ssh::Connector {
 public:
  TimedConnector(ssh::Connector& inner, OpLog& log) : inner_(inner), log_(log) {}
  ssh::ConnectResult connect(const ssh::Endpoint& ep) override {
    auto a = Steady::now();
    auto r = inner_.connect(ep);
    log_.add(a, Steady::now());
    if (auto* s = std::get_if<ssh::SessionPtr>(&r))
      return ssh::SessionPtr(std::make_unique<TimedSession>(std::move(*s), log_));
    return r;
  }

 private:
  ssh::Connector& inner_;
  OpLog& log_;
};

class TimedProcesses final : public ProcessRunner {
 public:
  TimedProcesses(ProcessRunner& inner, OpLog& log) : inner_(inner), log_(log) {}
  RunResult run(const RunOptions& o) override {
    auto a = Steady::now();
    auto r = inner_.run(o);
    log_.add(a, Steady::now());
    return r;
  }

 private:
  ProcessRunner& inner_;
  OpLog& log_;
};

class NoHttp final : public HttpClient {
 public:
  HttpResponse send(const HttpRequest&) override { return {}; }
};

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// CPU used by this benchmark and everything it starts (the test hosts' sshd and every process
// of theirs, nix, ssh): a cpuacct cgroup (v1) this process joins before starting anything, so
// the other work on a shared machine does not count. Without cgroups: nothing is measured.
class CpuAccount {
 public:
  // `suffix` names the group; `join`: move this process into it.
  explicit CpuAccount(const std::string& suffix, bool join = true) {
    dir_ = "/sys/fs/cgroup/cpuacct/switchyard-deploy-bench-" + std::to_string(::getpid()) + suffix;
    std::error_code ec;
    if (!std::filesystem::create_directory(dir_, ec)) return;
    ok_ = true;
    if (join) add(::getpid());
  }
  ~CpuAccount() {
    // Everything left in the group goes back to the root group, then the group is removed.
    auto tasks = os::readFileIfExists(dir_ / "tasks").value_or("");
    for (const auto& t : split(tasks, '\n')) {
      if (t.empty()) continue;
      if (FILE* f = std::fopen("/sys/fs/cgroup/cpuacct/tasks", "w")) {
        std::fprintf(f, "%s\n", t.c_str());
        std::fclose(f);
      }
    }
    std::error_code ec;
    std::filesystem::remove(dir_, ec);
  }
  // Moves a process (and so its future children) into this group; cgroupfs files are written
  // in place, not through a rename.
  void add(int pid) {
    if (!ok_) return;
    if (FILE* f = std::fopen((dir_ / "tasks").c_str(), "w")) {
      std::fprintf(f, "%d\n", pid);
      std::fclose(f);
    }
  }
  // CPU time so far, in ms; 0 when not measured.
  double ms() const {
    if (!ok_) return 0;
    auto text = os::readFileIfExists(dir_ / "cpuacct.usage").value_or("0");
    return static_cast<double>(std::stoll(text)) / 1e6;
  }

 private:
  std::filesystem::path dir_;
  bool ok_ = false;
};

struct Sample {
  double wallMs = 0, opsMs = 0, cpuMs = 0, targetCpuMs = 0;
  double overheadMs() const { return wallMs - opsMs; }
  double overheadPct() const { return wallMs > 0 ? 100.0 * overheadMs() / wallMs : 0; }
};

}  // namespace

int main(int argc, char** argv) {
  int hostCount = 10, runs = 5;
  std::vector<int> parallel;
  bool probe = false;
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--probe") probe = true;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--hosts") hostCount = std::stoi(argv[i + 1]);
    if (k == "--runs") runs = std::stoi(argv[i + 1]);
    if (k == "--parallel")
      for (const auto& p : split(argv[i + 1], ',')) parallel.push_back(std::stoi(p));
  }
  if (parallel.empty()) parallel = {hostCount, 1};
  CpuAccount cpu("");  // first: everything started later is accounted
  // The test hosts' processes (sshd, the commands it runs, nix-store on the target, the agent,
  // switch-to-configuration) are moved here: on real machines that CPU is not the runner's.
  CpuAccount targetCpu("-targets", false);
  try {
    os::PosixProcessRunner procs;
    os::TempDir tmp("sy-deploy-bench");
    auto labHosts = lab::numberedHosts(hostCount);
    auto lab = lab::Lab::create(procs, tmp.path() / "lab", {.hosts = labHosts});
    std::vector<std::string> names = lab.infra.hostNames();
    lab::TestHosts hosts({.names = names});
    for (const auto& h : names)
      for (int pid : hosts.processIds(h)) targetCpu.add(pid);
    auto db = store::Database::open(tmp.path() / "state.db");
    SystemClock clock;
    store::HostLocks locks(*db, clock);
    store::Deployments deployments(*db);
    deploy::HostLockGuard guard(locks, clock);
    OpLog ops;
    auto real = ssh::makeLibsshConnector();
    TimedConnector connector(*real, ops);
    TimedProcesses timedProcs(procs, ops);
    NoHttp http;
    NullLogger log;
    deploy::GitAncestry ancestry(lab.infra.path());
    deploy::DeploySettings settings;
    settings.ssh = hosts.sshConfig();
    settings.activation.confirmTimeout = std::chrono::seconds(10);
    deploy::SshDeployer deployer(
        {connector, timedProcs, http, guard, deployments, ancestry, clock, log}, settings);
    deploy::NullDeployObserver observer;

    // Builds every host at a fresh commit (not timed); returns the jobs.
    auto freshJobs = [&](const std::string& rev) {
      std::vector<std::string> args = {"build", "--no-link", "--json"};
      for (const auto& h : names)
        args.push_back(lab.infra.url(rev) + "#" + lab::InfraFlake::toplevelAttr(h));
      // Retried: on a shared machine another tenant's build can take the same nixbld uid, and
      // Nix kills that uid's processes before it builds (our builder dies of signal 9).
      RunResult r;
      for (int attempt = 0; attempt < 3; ++attempt) {
        r = procs.run({.program = "nix", .args = args, .timeout = std::chrono::minutes(10)});
        if (r.ok()) break;
      }
      if (!r.ok()) throw Error("nix build: " + r.errTail);
      std::map<std::string, std::string> outs;
      for (const auto& item : nlohmann::json::parse(r.out)) {
        std::string path = item.at("outputs").at("out").get<std::string>();
        for (const auto& h : names)
          if (path.find("-nixos-system-" + h + "-") != std::string::npos) outs[h] = path;
      }
      std::vector<deploy::HostJob> jobs;
      for (const auto& h : names) jobs.push_back({h, hosts.host(h).target(), outs.at(h)});
      return jobs;
    };
    auto measure = [&](const std::vector<deploy::HostJob>& jobs, const std::string& rev,
                       int maxParallel, std::map<std::string, std::vector<double>>* steps) {
      RolloutConfig rollout;
      rollout.maxParallel = maxParallel;
      rollout.stopOnFailure = false;
      deploy::DeployRequest req;
      req.repo = "bench";
      req.sha = rev;
      ops.clear();
      double cpu0 = cpu.ms(), tcpu0 = targetCpu.ms();
      auto t0 = Steady::now();
      auto out = deploy::runRollout(jobs, req, rollout, deployer, observer);
      auto t1 = Steady::now();
      for (const auto& o : out) {
        if (o.result != deploy::HostResult::Succeeded)
          throw Error(o.host + ": " + std::string(deploy::resultName(o.result)) + ": " + o.reason);
        if (steps)
          for (const auto& [s, d] : o.durations)
            (*steps)[std::string(deploy::stepName(s))].push_back(static_cast<double>(d.count()));
      }
      Sample s;
      s.cpuMs = cpu.ms() - cpu0;
      s.targetCpuMs = targetCpu.ms() - tcpu0;
      s.wallMs = std::chrono::duration<double, std::milli>(t1 - t0).count();
      s.opsMs = ops.coveredMs(t0, t1);
      return s;
    };

    if (probe) {
      // Where one deploy's CPU goes: each operation 10 times, CPU (cgroup) and wall per call.
      std::string rev = lab.infra.head();
      auto jobs = freshJobs(rev);
      const auto& job = jobs.front();
      auto ep = ssh::endpointFor(job.target, settings.ssh);
      auto timeIt = [&](const char* what, const std::function<void()>& f) {
        double c0 = cpu.ms() + targetCpu.ms();
        auto t0 = Steady::now();
        for (int i = 0; i < 10; ++i) f();
        double wall = std::chrono::duration<double, std::milli>(Steady::now() - t0).count() / 10;
        std::printf("  %-34s cpu %6.1f ms  wall %6.1f ms\n", what,
                    (cpu.ms() + targetCpu.ms() - c0) / 10, wall);
      };
      auto session = std::get<ssh::SessionPtr>(real->connect(ep));
      timeIt("libssh connect + auth", [&] { real->connect(ep); });
      timeIt("exec 'true'", [&] { session->exec({.command = "true"}); });
      timeIt("connect + first exec 'true'", [&] {
        auto s2 = std::get<ssh::SessionPtr>(real->connect(ep));
        s2->exec({.command = "true"});
      });
      timeIt("exec 'sleep 0.02' (fork+exec)", [&] { session->exec({.command = "sleep 0.02"}); });
      timeIt("exec nix-store --check-validity", [&] {
        session->exec({.command = "nix-store --check-validity /nix/store/x 2>/dev/null; true"});
      });
      timeIt("exec readlink profile",
             [&] { session->exec({.command = "readlink /nix/var/nix/profiles/system; true"}); });
      procs.run(deploy::nixCopyOptions(job, settings));
      timeIt("nix copy (already there)", [&] { procs.run(deploy::nixCopyOptions(job, settings)); });
      auto withOpts = [&](const std::string& extra) {
        auto o = deploy::nixCopyOptions(job, settings);
        o.env["NIX_SSHOPTS"] = *o.env["NIX_SSHOPTS"] + " " + extra;
        return o;
      };
      timeIt("nix copy, kex curve25519",
             [&] { procs.run(withOpts("-o KexAlgorithms=curve25519-sha256")); });
      timeIt("ssh true (OpenSSH client)", [&] {
        procs.run(
            {.program = "ssh", .args = {"-F", hosts.sshConfigFile().string(), job.host, "true"}});
      });
      timeIt("ssh true, kex curve25519", [&] {
        procs.run({.program = "ssh",
                   .args = {"-F", hosts.sshConfigFile().string(), "-o",
                            "KexAlgorithms=curve25519-sha256", job.host, "true"}});
      });
      timeIt("nix path-info (local nix startup)", [&] {
        procs.run({.program = "nix", .args = {"path-info", job.storePath}});
      });
      timeIt("exec nix-env --set (same path)",
             [&] { session->exec({.command = "nix-env -p /tmp/p --set " + job.storePath}); });
      timeIt("exec switch-to-configuration test", [&] {
        session->exec({.command = job.storePath + "/bin/switch-to-configuration test"});
      });
      return 0;
    }
    // A first deploy everywhere (first generations; fills the stores with the shared paths).
    {
      std::string rev = lab.infra.head();
      measure(freshJobs(rev), rev, hostCount, nullptr);
    }
    std::vector<Sample> one;
    std::map<int, std::vector<Sample>> fan;  // max_parallel -> samples
    std::map<std::string, std::vector<double>> steps;
    std::printf("run  one-host ms");
    for (int p : parallel) std::printf("  p%d ms", p);
    std::printf("\n");
    for (int r = 0; r < runs; ++r) {
      std::string rev = lab.infra.changeModule("base");
      auto jobs = freshJobs(rev);
      one.push_back(measure({jobs.front()}, rev, 1, &steps));
      std::printf("%3d  %11.0f", r + 1, one.back().wallMs);
      std::string detail;
      for (int p : parallel) {
        rev = lab.infra.changeModule("base");
        jobs = freshJobs(rev);
        fan[p].push_back(measure(jobs, rev, p, nullptr));
        const Sample& x = fan[p].back();
        std::printf("  %6.0f", x.wallMs);
        char buf[160];
        std::snprintf(buf, sizeof buf,
                      "  [p%d overhead %.1f ms %.1f%%, cpu runner %.0f targets %.0f ms]", p,
                      x.overheadMs(), x.overheadPct(), x.cpuMs, x.targetCpuMs);
        detail += buf;
      }
      std::printf("%s\n", detail.c_str());
      std::fflush(stdout);
    }
    auto med = [](const std::vector<Sample>& v, double (Sample::*f)() const) {
      std::vector<double> x;
      for (const auto& s : v) x.push_back((s.*f)());
      return median(x);
    };
    auto medWall = [](const std::vector<Sample>& v) {
      std::vector<double> x;
      for (const auto& s : v) x.push_back(s.wallMs);
      return median(x);
    };
    const double mOne = medWall(one);
    const long cores = sysconf(_SC_NPROCESSORS_ONLN);
    std::printf("\nmedian over %d runs, %d hosts (%ld cores, shared with the test hosts):\n", runs,
                hostCount, cores);
    std::printf("  one host alone              %7.0f ms  runner overhead %.1f ms (%.2f%%)\n", mOne,
                med(one, &Sample::overheadMs), med(one, &Sample::overheadPct));
    for (int p : parallel) {
      const auto& v = fan[p];
      std::vector<double> rc, tc, share;
      for (const auto& x : v) {
        rc.push_back(x.cpuMs / hostCount);
        tc.push_back(x.targetCpuMs / hostCount);
        share.push_back(100.0 * x.cpuMs / (x.cpuMs + x.targetCpuMs));
      }
      const double w = medWall(v);
      std::printf(
          "  %2d hosts, max_parallel %2d %7.0f ms  (%.2fx one host)  runner overhead %.1f ms "
          "(%.2f%%)\n"
          "      CPU per host: runner side %.0f ms, target side %.0f ms; the runner's share of "
          "all CPU %.0f%%\n"
          "      floor on these %ld cores (runner + targets): %.0f ms; runner side alone: %.0f "
          "ms\n",
          hostCount, p, w, w / mOne, med(v, &Sample::overheadMs), med(v, &Sample::overheadPct),
          median(rc), median(tc), median(share), cores,
          hostCount * (median(rc) + median(tc)) / cores, hostCount * median(rc) / cores);
    }
    std::printf("  one host's steps (median ms):");
    for (const char* s : {"lock", "ancestry", "connect", "inspect", "copy", "activate", "health",
                          "confirm", "record"})
      std::printf(" %s %.0f", s, median(steps[s]));
    std::printf("\n");
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "deploy_bench: %s\n", describe(e).c_str());
    return 1;
  }
}
