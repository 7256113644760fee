// Intake through the REAL HTTP server (the daemon with its scheduler off): every recorded
// webhook payload with a correct, a wrong and a missing signature, malformed bodies,
// oversize bodies (413, with and without Expect: 100-continue), duplicate deliveries, the
// git-hook endpoint, unknown forges, and concurrent deliveries committed in groups.
#include <arpa/inet.h>
#include <atomic>
#include <filesystem>
#include <map>
#include <netinet/in.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "runner/app/daemon.h"
#include "runner/core/log.h"
#include "runner/http/curl_client.h"
#include "runner/os/files.h"
#include "tests/integrations/test_helpers.h"
#include "tests/runner/app/daemon_helpers.h"
#include "tests/support/run.h"

namespace fs = std::filesystem;
using runner::app::Daemon;
using runner::app::DaemonOptions;

namespace {

struct Fixture {
  std::string file;      // under tests/data/webhooks
  std::string forge;     // "home" (gitea) or "hub" (github)
  std::string event;     // the event header
  int status;            // expected answer
  std::string ignored;   // expected reason when ignored ("" otherwise)
  std::string stateRow;  // "queued" | "ignored"
};

// Every recorded payload and what intake answers for it. Ignored events answer 200 with the
// reason and are stored as ignored; events we act on answer 202 and are queued.
const std::vector<Fixture>& fixtures() {
  static const std::vector<Fixture> k = {
      {"gitea/create/go-scm-tag-create.json", "home", "create", 200, "*", "ignored"},
      {"gitea/issue_comment/go-scm-issue-comment-created.json", "home", "issue_comment", 200, "*",
       "ignored"},
      {"gitea/issue_comment/zulip-issue-comment-in-pr.json", "home", "issue_comment", 200, "*",
       "ignored"},
      {"gitea/issue_comment/zulip-pr-comment-from-fork.json", "home", "issue_comment", 200, "*",
       "ignored"},
      {"gitea/pull_request/forgejo-woodpecker-closed.json", "home", "pull_request", 202, "",
       "queued"},
      {"gitea/pull_request/go-scm-opened.json", "home", "pull_request", 202, "", "queued"},
      {"gitea/pull_request/woodpecker-merged.json", "home", "pull_request", 202, "", "queued"},
      {"gitea/pull_request/woodpecker-synchronized.json", "home", "pull_request", 202, "",
       "queued"},
      {"gitea/push/go-scm-push.json", "home", "push", 202, "", "queued"},
      {"gitea/push/woodpecker-push-branch-created.json", "home", "push", 202, "", "queued"},
      {"gitea/push/woodpecker-push-multi.json", "home", "push", 202, "", "queued"},
      {"gitea/signed/go-scm-pull_request_edited.body.json", "home", "pull_request", 200, "*",
       "ignored"},
      {"github/check_run/octokit-created.json", "hub", "check_run", 200, "*", "ignored"},
      {"github/check_run/octokit-requested-action.json", "hub", "check_run", 202, "", "queued"},
      {"github/check_run/octokit-rerequested.json", "hub", "check_run", 202, "", "queued"},
      {"github/check_suite/octokit-requested.json", "hub", "check_suite", 200, "*", "ignored"},
      {"github/check_suite/octokit-rerequested.json", "hub", "check_suite", 202, "", "queued"},
      {"github/issue_comment/go-scm-created-on-pr.json", "hub", "issue_comment", 200, "*",
       "ignored"},
      {"github/issue_comment/octokit-created-on-issue.json", "hub", "issue_comment", 200, "*",
       "ignored"},
      {"github/ping/octokit-repository-hook.json", "hub", "ping", 200, "*", "ignored"},
      {"github/pull_request/octokit-closed.json", "hub", "pull_request", 202, "", "queued"},
      {"github/pull_request/octokit-opened.json", "hub", "pull_request", 202, "", "queued"},
      {"github/pull_request/octokit-reopened.json", "hub", "pull_request", 202, "", "queued"},
      {"github/pull_request/octokit-synchronize.json", "hub", "pull_request", 202, "", "queued"},
      {"github/pull_request/woodpecker-merged.json", "hub", "pull_request", 202, "", "queued"},
      {"github/push/octokit-branch-created.json", "hub", "push", 202, "", "queued"},
      {"github/push/octokit-tag-created.json", "hub", "push", 200, "tag", "ignored"},
      {"github/push/woodpecker-push.json", "hub", "push", 202, "", "queued"},
  };
  return k;
}

std::vector<std::pair<std::string, std::string>> forgeHeaders(const Fixture& f,
                                                              const std::string& body,
                                                              const std::string& deliveryId,
                                                              const std::string& signature) {
  std::vector<std::pair<std::string, std::string>> h;
  if (f.forge == "home") {
    h = {{"X-Gitea-Event", f.event}, {"X-Gitea-Delivery", deliveryId}};
    if (!signature.empty()) h.emplace_back("X-Gitea-Signature", signature);
  } else {
    h = {{"X-GitHub-Event", f.event}, {"X-GitHub-Delivery", deliveryId}};
    if (!signature.empty()) h.emplace_back("X-Hub-Signature-256", "sha256=" + signature);
  }
  return h;
}

std::string secretOf(const Fixture& f) {
  return f.forge == "home" ? tests::kGiteaSecret : tests::kGithubSecret;
}

struct Running {
  explicit Running(size_t maxBody = 25u << 20) {
    config = tests::daemonConfig(tmp.path());
    config.maxBodyBytes = maxBody;
    DaemonOptions o;
    o.log = &log;
    o.runScheduler = false;
    daemon = std::make_unique<Daemon>(config, o);
    daemon->start();
    url = daemon->baseUrl();
  }
  int64_t rows() const { return tests::countRows(config, "SELECT COUNT(*) FROM deliveries"); }

  runner::os::TempDir tmp{"sy-intake"};
  runner::NullLogger log;
  runner::Config config;
  std::unique_ptr<Daemon> daemon;
  std::string url;
  runner::http::CurlHttpClient http;
};

}  // namespace

TEST_CASE("intake: every recorded payload, correctly signed, is answered and stored once",
          "[integration][intake]") {
  Running d;
  int n = 0;
  for (const auto& f : fixtures()) {
    INFO(f.file);
    std::string body = tests::webhookBody(f.file);
    std::string id = "fixture-" + std::to_string(++n);
    auto r = tests::post(d.http, d.url + "/hooks/" + f.forge, body,
                         forgeHeaders(f, body, id, tests::hexHmac(secretOf(f), body)));
    INFO(r.body);
    REQUIRE(r.status == f.status);
    auto j = nlohmann::json::parse(r.body);
    REQUIRE(j.contains("delivery"));
    int64_t row = j["delivery"].get<int64_t>();
    if (!f.ignored.empty()) {
      REQUIRE(j.contains("ignored"));
      CHECK_FALSE(j["ignored"].get<std::string>().empty());
      if (f.ignored != "*")
        CHECK(j["ignored"].get<std::string>().find(f.ignored) != std::string::npos);
    }
    auto db = runner::store::Database::open(runner::app::databasePath(d.config),
                                            runner::store::Durability::Normal);
    auto rows = db->query(
        "SELECT source, delivery_id, state, event, event_name FROM deliveries "
        "WHERE id = ?",
        {row});
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].text(0) == f.forge);
    CHECK(rows[0].text(1) == id);
    CHECK(rows[0].text(2) == f.stateRow);
    CHECK(rows[0].text(4) == f.event);
    auto event = nlohmann::json::parse(rows[0].text(3)).get<runner::Event>();
    CHECK(event.deliveryId == id);
    CHECK(event.forge == f.forge);
    CHECK((event.kind == runner::EventKind::Ignored) == (f.stateRow == "ignored"));
  }
  CHECK(d.rows() == static_cast<int64_t>(fixtures().size()));
}

TEST_CASE("intake: wrong and missing signatures are refused with 401 and store nothing",
          "[integration][intake]") {
  Running d;
  int n = 0;
  for (const auto& f : fixtures()) {
    INFO(f.file);
    std::string body = tests::webhookBody(f.file);
    std::string good = tests::hexHmac(secretOf(f), body);
    std::string wrongKey = tests::hexHmac("not-the-secret", body);
    std::string flipped = good;
    flipped[5] = flipped[5] == 'a' ? 'b' : 'a';
    for (const auto& sig : {wrongKey, flipped, std::string()}) {
      auto r = tests::post(d.http, d.url + "/hooks/" + f.forge, body,
                           forgeHeaders(f, body, "bad-" + std::to_string(++n), sig));
      CHECK(r.status == 401);
      CHECK(r.body.find("signature") != std::string::npos);
    }
    // Signed with the OTHER forge's secret: still refused.
    std::string other = f.forge == "home" ? tests::kGithubSecret : tests::kGiteaSecret;
    auto r =
        tests::post(d.http, d.url + "/hooks/" + f.forge, body,
                    forgeHeaders(f, body, "x-" + std::to_string(++n), tests::hexHmac(other, body)));
    CHECK(r.status == 401);
  }
  CHECK(d.rows() == 0);
}

TEST_CASE("intake: malformed bodies are 400, unknown forges 404, and nothing is stored",
          "[integration][intake]") {
  Running d;
  for (const std::string body : {"not json", "[1,2,3]", "{\"ref\": ", ""}) {
    INFO(body);
    auto gitea = tests::post(d.http, d.url + "/hooks/home", body,
                             {{"X-Gitea-Event", "push"},
                              {"X-Gitea-Delivery", "m1"},
                              {"X-Gitea-Signature", tests::hexHmac(tests::kGiteaSecret, body)}});
    CHECK(gitea.status == 400);
    auto github = tests::post(
        d.http, d.url + "/hooks/hub", body,
        {{"X-GitHub-Event", "push"},
         {"X-GitHub-Delivery", "m2"},
         {"X-Hub-Signature-256", "sha256=" + tests::hexHmac(tests::kGithubSecret, body)}});
    CHECK(github.status == 400);
    auto hook = tests::post(
        d.http, d.url + "/hooks/git", body,
        {{"X-Switchyard-Signature", runner::scheduler::signHookBody(tests::kHookSecret, body)}});
    CHECK(hook.status == 400);
  }
  auto unknown = tests::post(d.http, d.url + "/hooks/nosuchforge", "{}", {});
  CHECK(unknown.status == 404);
  CHECK(d.rows() == 0);
}

TEST_CASE("intake: duplicates are told by the signed body, not the unsigned delivery id",
          "[integration][intake]") {
  Running d;
  std::string body = tests::webhookBody("github/push/woodpecker-push.json");
  auto headers = [&](const std::string& id, const std::string& b) {
    return std::vector<std::pair<std::string, std::string>>{
        {"X-GitHub-Event", "push"},
        {"X-GitHub-Delivery", id},
        {"X-Hub-Signature-256", "sha256=" + tests::hexHmac(tests::kGithubSecret, b)}};
  };
  auto first = tests::post(d.http, d.url + "/hooks/hub", body, headers("dup-1", body));
  auto second = tests::post(d.http, d.url + "/hooks/hub", body, headers("dup-1", body));
  // an old body replayed under a new delivery's id is still the old delivery…
  auto replay = tests::post(d.http, d.url + "/hooks/hub", body, headers("dup-2", body));
  REQUIRE(first.status == 202);
  REQUIRE(second.status == 200);
  auto a = nlohmann::json::parse(first.body), b = nlohmann::json::parse(second.body);
  CHECK(b["delivery"] == a["delivery"]);
  CHECK(b["duplicate"] == true);
  REQUIRE(replay.status == 200);
  CHECK(nlohmann::json::parse(replay.body)["duplicate"] == true);
  // …and the real delivery that has that id is not taken for a duplicate
  std::string next = body;
  next.insert(next.rfind('}'), ",\"x-next\":1");
  auto real = tests::post(d.http, d.url + "/hooks/hub", next, headers("dup-2", next));
  CHECK(real.status == 202);
  CHECK(nlohmann::json::parse(real.body)["delivery"] != a["delivery"]);
  CHECK(d.rows() == 2);
  // The same id from another forge is another delivery.
  std::string gbody = tests::webhookBody("gitea/push/go-scm-push.json");
  auto g = tests::post(d.http, d.url + "/hooks/home", gbody,
                       {{"X-Gitea-Event", "push"},
                        {"X-Gitea-Delivery", "dup-1"},
                        {"X-Gitea-Signature", tests::hexHmac(tests::kGiteaSecret, gbody)}});
  CHECK(g.status == 202);
  CHECK(d.rows() == 3);
}

TEST_CASE("intake: bodies over the limit are refused with 413 and not stored",
          "[integration][intake]") {
  Running d(64 * 1024);
  std::string big(100 * 1024, 'x');
  std::string sig = tests::hexHmac(tests::kGithubSecret, big);
  std::vector<std::pair<std::string, std::string>> h = {{"X-GitHub-Event", "push"},
                                                        {"X-GitHub-Delivery", "big"},
                                                        {"X-Hub-Signature-256", "sha256=" + sig}};
  auto plain = tests::post(d.http, d.url + "/hooks/hub", big, h);
  CHECK(plain.status == 413);
  auto h2 = h;
  h2.emplace_back("Expect", "100-continue");
  auto expect = tests::post(d.http, d.url + "/hooks/hub", big, h2);
  CHECK(expect.status == 413);
  // The connection is still usable afterwards, and a body at the limit is read.
  std::string body = tests::webhookBody("github/push/woodpecker-push.json");
  auto ok = tests::post(
      d.http, d.url + "/hooks/hub", body,
      {{"X-GitHub-Event", "push"},
       {"X-GitHub-Delivery", "small"},
       {"X-Hub-Signature-256", "sha256=" + tests::hexHmac(tests::kGithubSecret, body)}});
  CHECK(ok.status == 202);
  CHECK(d.rows() == 1);
}

TEST_CASE("intake: a signed chunked body over the limit is 413 and not stored (issue 11)",
          "[integration][intake]") {
  // cpp-httplib applied the limit to Content-Length only: a chunked body was read whole and
  // a correctly signed one stored.
  Running d(64 * 1024);
  std::string body = tests::webhookBody("github/push/woodpecker-push.json");
  body += std::string(200 * 1024, ' ');  // still the same JSON document
  std::string sig = tests::hexHmac(tests::kGithubSecret, body);
  int port = std::stoi(d.url.substr(d.url.rfind(':') + 1));
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  std::string req =
      "POST /hooks/hub HTTP/1.1\r\nHost: 127.0.0.1\r\nX-GitHub-Event: push\r\n"
      "X-GitHub-Delivery: chunked-big\r\nX-Hub-Signature-256: sha256=" +
      sig + "\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (size_t off = 0; off < body.size(); off += 4096) {
    std::string part = body.substr(off, 4096);
    char size[16];
    std::snprintf(size, sizeof size, "%zx\r\n", part.size());
    req += size + part + "\r\n";
  }
  req += "0\r\n\r\n";
  std::thread writer([&] { ::send(fd, req.data(), req.size(), MSG_NOSIGNAL); });
  std::string answer;
  char buf[4096];
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ssize_t n;
  while (answer.find("\r\n") == std::string::npos && (n = ::recv(fd, buf, sizeof buf, 0)) > 0)
    answer.append(buf, static_cast<size_t>(n));
  ::shutdown(fd, SHUT_RDWR);
  writer.join();
  ::close(fd);
  CHECK(answer.substr(0, 12) == "HTTP/1.1 413");
  CHECK(d.rows() == 0);
}

TEST_CASE("intake: git hook deliveries are verified, parsed and stored", "[integration][intake]") {
  Running d;
  std::string a(40, 'a'), b(40, 'b'), z(40, '0');
  auto r = tests::postHook(d.http, d.url, "h1", "infra", "refs/heads/main", a, b);
  CHECK(r.status == 202);
  auto tag = tests::postHook(d.http, d.url, "h2", "infra", "refs/tags/v1", z, b);
  CHECK(tag.status == 200);
  CHECK(nlohmann::json::parse(tag.body)["ignored"] == "tag push");
  auto del = tests::postHook(d.http, d.url, "h3", "infra", "refs/heads/old", a, z);
  CHECK(nlohmann::json::parse(del.body)["ignored"] == "branch deleted");
  std::string body = R"({"repo":"infra","ref":"refs/heads/main","before":"","after":")" + b + "\"}";
  auto wrong = tests::post(d.http, d.url + "/hooks/git", body,
                           {{"X-Switchyard-Signature", tests::hexHmac("nope", body)}});
  CHECK(wrong.status == 401);
  auto unsigned_ = tests::post(d.http, d.url + "/hooks/git", body, {});
  CHECK(unsigned_.status == 401);
  CHECK(d.rows() == 3);
  auto db = runner::store::Database::open(runner::app::databasePath(d.config),
                                          runner::store::Durability::Normal);
  auto ev = nlohmann::json::parse(
                db->query("SELECT event FROM deliveries WHERE delivery_id = 'h1'").at(0).text(0))
                .get<runner::Event>();
  CHECK(ev.kind == runner::EventKind::Push);
  CHECK(ev.forgeType == "hook");
  CHECK(ev.repo == "infra");
  CHECK(ev.before == a);
  CHECK(ev.after == b);
}

TEST_CASE("intake: concurrent deliveries all commit, in fewer transactions than deliveries",
          "[integration][intake]") {
  Running d;
  std::atomic<int> accepted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 16; ++t)
    threads.emplace_back([&, t] {
      runner::http::CurlHttpClient http;
      for (int i = 0; i < 20; ++i) {
        auto r =
            tests::postHook(http, d.url, "c-" + std::to_string(t) + "-" + std::to_string(i),
                            "infra", "refs/heads/main", std::string(40, 'a'), std::string(40, 'b'));
        if (r.status == 202) ++accepted;
      }
    });
  for (auto& t : threads) t.join();
  CHECK(accepted == 320);
  CHECK(d.rows() == 320);
  CHECK(tests::countRows(d.config, "SELECT COUNT(DISTINCT delivery_id) FROM deliveries") == 320);
}

TEST_CASE("healthz, metrics and the empty API answer", "[integration][intake]") {
  Running d;
  runner::HttpRequest get;
  get.url = d.url + "/healthz";
  auto h = d.http.send(get);
  CHECK(h.status == 200);
  CHECK(h.body == "ok\n");
  get.url = d.url + "/api/runs";
  CHECK(d.http.send(get).body == "[]");
  tests::postHook(d.http, d.url, "m1", "infra", "refs/heads/main", std::string(40, 'a'),
                  std::string(40, 'b'));
  get.url = d.url + "/metrics";
  auto m = d.http.send(get);
  CHECK(m.body.find("switchyard_deliveries{state=\"queued\"} 1\n") != std::string::npos);
  CHECK(m.body.find("switchyard_queue_depth 1\n") != std::string::npos);
  get.url = d.url + "/nothing/here";
  CHECK(d.http.send(get).status == 404);
}
