// The forge-neutral policy in runner/core/forge.h: header lookup, "/switchyard" comment
// commands, the retry classification of API answers (FORGE-FACTS §2.6), and the small text
// helpers the integrations share.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "integrations/common/rest.h"
#include "runner/core/forge.h"

using namespace std::chrono_literals;
using runner::CallStatus;
using runner::CommentCommand;
using runner::HttpResponse;

namespace {

const auto kNow = std::chrono::system_clock::time_point(1767225600s);  // 2026-01-01T00:00:00Z

HttpResponse response(int status, std::map<std::string, std::string> headers = {},
                      std::string body = "") {
  HttpResponse r;
  r.status = status;
  r.headers = std::move(headers);
  r.body = std::move(body);
  return r;
}

}  // namespace

TEST_CASE("Headers are looked up in any case and keep empty values", "[unit][forge]") {
  runner::Headers h{{"X-Gitea-Signature", ""}, {"x-gitea-event", "push"}};
  h.add("X-GitHub-Delivery", "abc");
  CHECK(h.get("x-gitea-signature") == std::string());
  CHECK(h.get("X-GITEA-EVENT") == std::string("push"));
  CHECK(h.get("x-github-delivery") == std::string("abc"));
  CHECK_FALSE(h.get("X-Hub-Signature-256").has_value());
  CHECK(h.has("X-Gitea-Signature"));
  CHECK(h.fields().size() == 3);
}

TEST_CASE("comment commands: rerun with hosts, or nothing", "[unit][forge]") {
  auto c = runner::parseCommentCommand("/switchyard rerun octavia, web-1 octavia");
  CHECK(c.kind == CommentCommand::Kind::Command);
  CHECK(c.command == "rerun");
  CHECK(c.hosts == std::vector<std::string>{"octavia", "web-1"});

  auto all = runner::parseCommentCommand("Looks flaky.\r\n  /switchyard rerun\r\nthanks");
  CHECK(all.kind == CommentCommand::Kind::Command);
  CHECK(all.hosts.empty());

  CHECK(runner::parseCommentCommand("/switchyard RERUN vps.het-1").hosts ==
        std::vector<std::string>{"vps.het-1"});
  CHECK(runner::parseCommentCommand("LGTM").kind == CommentCommand::Kind::None);
  CHECK(runner::parseCommentCommand("").kind == CommentCommand::Kind::None);
  // quoted, inline or fenced mentions are not commands
  CHECK(runner::parseCommentCommand("> /switchyard rerun").kind == CommentCommand::Kind::None);
  CHECK(runner::parseCommentCommand("try `/switchyard rerun`").kind == CommentCommand::Kind::None);
  CHECK(runner::parseCommentCommand("```\n/switchyard rerun\n```").kind ==
        CommentCommand::Kind::None);
  CHECK(runner::parseCommentCommand("/switchyardrerun").kind == CommentCommand::Kind::None);
}

TEST_CASE("comment commands count only as text a reader sees", "[unit][forge]") {
  using K = CommentCommand::Kind;
  // hidden in an HTML comment, on one line or across lines
  CHECK(runner::parseCommentCommand("LGTM <!-- \n/switchyard rerun\n -->").kind == K::None);
  CHECK(runner::parseCommentCommand("<!--\n/switchyard rerun").kind == K::None);  // unterminated
  // an indented code block (four spaces or a tab), and a quote
  CHECK(runner::parseCommentCommand("see:\n\n    /switchyard rerun\n").kind == K::None);
  CHECK(runner::parseCommentCommand("see:\n\n\t/switchyard rerun\n").kind == K::None);
  CHECK(runner::parseCommentCommand(">> /switchyard rerun").kind == K::None);
  // the visible text after a hidden part still counts
  CHECK(runner::parseCommentCommand("<!-- x -->\n/switchyard rerun web").hosts ==
        std::vector<std::string>{"web"});
  CHECK(runner::parseCommentCommand("<!-- x --> /switchyard rerun").kind == K::Command);
  // up to three spaces of indentation is still a paragraph
  CHECK(runner::parseCommentCommand("   /switchyard rerun").kind == K::Command);
}

TEST_CASE("comment commands: approve takes no hosts", "[unit][forge]") {
  auto a = runner::parseCommentCommand("/switchyard approve");
  CHECK(a.kind == CommentCommand::Kind::Command);
  CHECK(a.command == "approve");
  auto bad = runner::parseCommentCommand("/switchyard approve web");
  CHECK(bad.kind == CommentCommand::Kind::Invalid);
  CHECK(bad.problem.find("approve takes no host names") == 0);
}

TEST_CASE("comment commands: refused with a reason", "[unit][forge]") {
  auto unknown = runner::parseCommentCommand("/switchyard deploy octavia");
  CHECK(unknown.kind == CommentCommand::Kind::Invalid);
  CHECK(unknown.problem == "unknown command 'deploy'");
  auto empty = runner::parseCommentCommand("/switchyard");
  CHECK(empty.kind == CommentCommand::Kind::Invalid);
  CHECK(empty.problem == "no command after /switchyard");
  auto bad = runner::parseCommentCommand("/switchyard rerun $(reboot)");
  CHECK(bad.kind == CommentCommand::Kind::Invalid);
  CHECK(bad.problem == "invalid host name '$(reboot)'");
  CHECK(bad.hosts.empty());
  CHECK(runner::parseCommentCommand("/switchyard rerun -rf").problem == "invalid host name '-rf'");
  std::string many = "/switchyard rerun";
  for (int i = 0; i < 51; ++i) many += " h" + std::to_string(i);
  CHECK(runner::parseCommentCommand(many).problem == "too many hosts (at most 50)");
}

TEST_CASE("classifyResponse: success and permanent failures", "[unit][forge]") {
  auto ok = runner::classifyResponse(response(201), kNow);
  CHECK(ok.ok());
  CHECK(ok.httpStatus == 201);

  auto invalid = runner::classifyResponse(
      response(
          422, {},
          R"({"message":"Validation Failed","errors":[{"resource":"Status","code":"custom",)"
          R"J("field":"description","message":"description is too long (maximum is 140 characters)"}]})J"),
      kNow);
  CHECK(invalid.status == CallStatus::Permanent);
  CHECK(invalid.httpStatus == 422);
  CHECK(invalid.message ==
        "HTTP 422: Validation Failed: description is too long (maximum is 140 characters)");
  CHECK_FALSE(invalid.retryAfter.has_value());

  auto forbidden = runner::classifyResponse(
      response(403, {}, R"({"message":"Resource not accessible by integration"})"), kNow);
  CHECK(forbidden.status == CallStatus::Permanent);  // a bare 403 is a permission error
  CHECK(forbidden.message == "HTTP 403: Resource not accessible by integration");

  auto missing = runner::classifyResponse(
      response(404, {}, R"({"message":"Not Found","documentation_url":"https://docs.github.com"})"),
      kNow);
  CHECK(missing.status == CallStatus::Permanent);
  CHECK(missing.message == "HTTP 404: Not Found");

  auto unauthorized = runner::classifyResponse(response(401, {}, "<html>\nno</html>"), kNow);
  CHECK(unauthorized.status == CallStatus::Permanent);
  CHECK(unauthorized.message == "HTTP 401: <html>");

  auto gitea422 = runner::classifyResponse(
      response(422, {}, R"({"errors":["state: bad"],"message":"[State]: Required"})"), kNow);
  CHECK(gitea422.message == "HTTP 422: [State]: Required: state: bad");
}

TEST_CASE("classifyResponse: rate limits and outages are retryable with the forge's wait",
          "[unit][forge]") {
  auto retryAfter = runner::classifyResponse(response(429, {{"retry-after", "17"}}), kNow);
  CHECK(retryAfter.status == CallStatus::Retryable);
  CHECK(retryAfter.retryAfter == 17s);

  auto secondary = runner::classifyResponse(response(403, {{"retry-after", "60"}}), kNow);
  CHECK(secondary.retryable());
  CHECK(secondary.retryAfter == 60s);

  auto primary = runner::classifyResponse(
      response(403, {{"x-ratelimit-remaining", "0"}, {"x-ratelimit-reset", "1767225690"}},
               R"({"message":"API rate limit exceeded"})"),
      kNow);
  CHECK(primary.retryable());
  CHECK(primary.retryAfter == 90s);
  CHECK(primary.message == "HTTP 403: API rate limit exceeded");

  auto pastReset = runner::classifyResponse(
      response(429, {{"x-ratelimit-remaining", "0"}, {"x-ratelimit-reset", "1767225000"}}), kNow);
  CHECK(pastReset.retryAfter == 1s);

  auto bare429 = runner::classifyResponse(response(429), kNow);
  CHECK(bare429.retryable());
  CHECK(bare429.retryAfter == 60s);

  auto secondaryNoHeaders = runner::classifyResponse(
      response(403, {}, R"({"message":"You have exceeded a secondary rate limit"})"), kNow);
  CHECK(secondaryNoHeaders.retryable());
  CHECK(secondaryNoHeaders.retryAfter == 60s);

  // remaining > 0 on a 403: not a rate limit
  auto notLimited = runner::classifyResponse(
      response(403, {{"x-ratelimit-remaining", "4999"}, {"x-ratelimit-reset", "1767225690"}}),
      kNow);
  CHECK(notLimited.status == CallStatus::Permanent);

  for (int status : {500, 502, 503, 504, 408}) {
    auto r = runner::classifyResponse(response(status), kNow);
    CHECK(r.retryable());
    CHECK_FALSE(r.retryAfter.has_value());
  }
  auto maintenance = runner::classifyResponse(
      response(503, {{"retry-after", "Thu, 01 Jan 2026 00:02:00 GMT"}}), kNow);
  CHECK(maintenance.retryAfter == 120s);
  // "0" or a date already past names no wait: the caller's back-off applies.
  auto now503 = runner::classifyResponse(response(503, {{"retry-after", "0"}}), kNow);
  CHECK(now503.retryable());
  CHECK_FALSE(now503.retryAfter.has_value());
  auto past429 = runner::classifyResponse(
      response(429, {{"retry-after", "Wed, 31 Dec 2025 23:00:00 GMT"}}), kNow);
  CHECK(past429.retryable());
  CHECK_FALSE(past429.retryAfter.has_value());

  HttpResponse transport;
  transport.error = "Failed to connect to git.example.org port 443: Connection refused";
  auto down = runner::classifyResponse(transport, kNow);
  CHECK(down.retryable());
  CHECK(down.httpStatus == 0);
  CHECK(down.message ==
        "no response: Failed to connect to git.example.org port 443: Connection refused");
  CHECK_FALSE(down.retryAfter.has_value());

  // a retry-after on a 404 changes nothing
  CHECK(runner::classifyResponse(response(404, {{"retry-after", "5"}}), kNow).status ==
        CallStatus::Permanent);
}

TEST_CASE("truncateChars counts code points, not bytes", "[unit][forge]") {
  CHECK(runner::truncateChars("hello", 5) == "hello");
  CHECK(runner::truncateChars("hello!", 5) == "hell\xe2\x80\xa6");
  std::string accents;
  for (int i = 0; i < 150; ++i) accents += "\xc3\xa9";  // é, 2 bytes each
  auto cut = runner::truncateChars(accents, 140);
  size_t chars = 0;
  for (char c : cut) chars += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  CHECK(chars == 140);
  CHECK(cut.size() == 139 * 2 + 3);
  CHECK(runner::truncateChars(std::string(140, 'x'), 140).size() == 140);
  CHECK(runner::truncateChars("abc", 0).empty());
}

TEST_CASE("url and form helpers", "[unit][forge]") {
  CHECK(runner::urlEncode("a b/c?d=é~") == "a%20b%2Fc%3Fd%3D%C3%A9~");
  CHECK(runner::urlDecode("a%20b+c", true) == std::string("a b c"));
  CHECK(runner::urlDecode("a+b", false) == std::string("a+b"));
  CHECK_FALSE(runner::urlDecode("%zz", true).has_value());
  CHECK_FALSE(runner::urlDecode("%4", true).has_value());
  CHECK(runner::formValue("a=1&payload=%7B%22x%22%3A1%7D", "payload") == std::string(R"({"x":1})"));
  CHECK_FALSE(runner::formValue("a=1", "payload").has_value());
  CHECK(runner::splitRepo("alice/infra") ==
        std::make_pair(std::string("alice"), std::string("infra")));
  CHECK_FALSE(runner::splitRepo("alice").has_value());
  CHECK_FALSE(runner::splitRepo("alice/infra/x").has_value());
  CHECK_FALSE(runner::splitRepo("../infra").has_value());
  CHECK_FALSE(runner::splitRepo("/infra").has_value());
  CHECK(runner::looksLikeSha("4522cbcefc20728a5b72b3a86af35e608622c514"));
  CHECK(runner::looksLikeSha(std::string(64, 'a')));
  CHECK_FALSE(runner::looksLikeSha("main"));
  CHECK_FALSE(runner::looksLikeSha("../../x"));
}

TEST_CASE("nextPageUrl reads RFC 8288 Link headers", "[unit][forge]") {
  CHECK(
      runner::nextPageUrl(
          R"(<https://api.github.com/repositories/1/issues/2/comments?page=2>; rel="next", <https://api.github.com/repositories/1/issues/2/comments?page=5>; rel="last")") ==
      std::string("https://api.github.com/repositories/1/issues/2/comments?page=2"));
  CHECK_FALSE(
      runner::nextPageUrl(R"(<https://x/?page=1>; rel="prev", <https://x/?page=1>; rel="first")")
          .has_value());
  CHECK_FALSE(runner::nextPageUrl("").has_value());
}

TEST_CASE("json readers never throw on foreign shapes", "[unit][forge]") {
  auto j = nlohmann::json::parse(R"({"a":{"b":"x","n":7,"f":true,"null":null},"s":"str"})");
  CHECK(runner::jsonString(j, {"a", "b"}) == "x");
  CHECK(runner::jsonString(j, {"a", "n"}).empty());
  CHECK(runner::jsonString(j, {"s", "deeper"}).empty());
  CHECK(runner::jsonInt(j, {"a", "n"}) == 7);
  CHECK(runner::jsonInt(j, {"a", "b"}) == 0);
  CHECK(runner::jsonBool(j, {"a", "f"}));
  CHECK_FALSE(runner::jsonBool(j, {"a", "null"}));
  CHECK(runner::jsonFind(j, {"a", "null"})->is_null());
  CHECK(runner::jsonFind(j, {"missing"}) == nullptr);
}

TEST_CASE("pull request answers and marked comments are read the same for both forges",
          "[unit][forge]") {
  auto pr = runner::pullRequestFromJson(nlohmann::json::parse(R"({
      "number": 3, "state": "open", "merged": false,
      "head": {"ref": "fix", "sha": "abc1234", "repo": {"full_name": "mallory/infra",
               "clone_url": "https://git.example.org/mallory/infra.git"}},
      "base": {"ref": "main", "sha": "def5678", "repo": {"full_name": "alice/infra"}}})"),
                                        "alice/infra");
  CHECK(pr.number == 3);
  CHECK(pr.headRef == "fix");
  CHECK(pr.headSha == "abc1234");
  CHECK(pr.baseSha == "def5678");
  CHECK(pr.headCloneUrl == "https://git.example.org/mallory/infra.git");
  CHECK(pr.fromFork);
  auto gone = runner::pullRequestFromJson(
      nlohmann::json::parse(R"({"number": 4, "head": {"sha": "abc1234", "repo": null}})"),
      "alice/infra");
  CHECK(gone.baseRepo == "alice/infra");
  CHECK(gone.headRepo.empty());
  CHECK(gone.fromFork);
  CHECK(runner::pullRequestFromJson(nlohmann::json::parse("[]"), "a/b").headSha.empty());

  auto list = nlohmann::json::parse(R"([
      {"id": 1, "body": "quote: <!-- m --> here", "user": {"login": "bot"}},
      {"id": 2, "body": "<!-- m -->\nbait", "user": {"login": "mallory"}},
      {"id": 3, "body": "<!-- m -->\nplan", "html_url": "https://x/3", "user": {"login": "Bot"}},
      {"id": 4, "body": "<!-- m -->\nsecond", "user": {"login": "bot"}}])");
  auto found = runner::findMarkedComment(list, "<!-- m -->", "bot");
  REQUIRE(found.has_value());
  CHECK(found->first.id == 3);  // not mallory's, although it came first
  CHECK(found->first.url == "https://x/3");
  CHECK(found->second == "<!-- m -->\nplan");
  CHECK(runner::findMarkedComment(list, "<!-- m -->", "mallory")->first.id == 2);
  CHECK_FALSE(runner::findMarkedComment(list, "<!-- m -->", "").has_value());
  CHECK_FALSE(runner::findMarkedComment(list, "<!-- other -->", "bot").has_value());
  CHECK_FALSE(runner::findMarkedComment(nlohmann::json::object(), "<!-- m -->", "bot").has_value());
}

TEST_CASE("a receiver made of two functions calls them", "[unit][forge]") {
  int verified = 0;
  auto receiver = runner::makeWebhookReceiver(
      [&](const runner::WebhookDelivery& d) {
        ++verified;
        return d.body == "ok" ? runner::SignatureCheck::accept("X-Test")
                              : runner::SignatureCheck::reject("nope");
      },
      [](const runner::WebhookDelivery&) { return runner::ParseResult::bad("always"); });
  runner::WebhookDelivery d;
  d.body = "ok";
  CHECK(receiver->verify(d).accepted);
  d.body = "no";
  CHECK(receiver->verify(d).detail == "nope");
  CHECK(receiver->parse(d).error == "always");
  CHECK(verified == 2);
}
