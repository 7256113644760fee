// Gitea/Forgejo webhooks: the go-scm signature vector and its negative cases, empty
// signatures from hooks without a secret, form-encoded deliveries, and the normalisation of
// every recorded Gitea/Forgejo payload in tests/data/webhooks/gitea with concrete fields.
#include <cctype>
#include <filesystem>
#include <functional>
#include <map>
#include <tuple>

#include <catch2/catch.hpp>

#include "integrations/common/rest.h"
#include "integrations/gitea/webhook.h"
#include "runner/core/error.h"
#include "runner/core/text.h"
#include "runner/crypto/crypto.h"
#include "runner/os/files.h"
#include "tests/integrations/test_helpers.h"

using integrations::gitea::parseDelivery;
using integrations::gitea::Source;
using integrations::gitea::verifySignature;
using runner::EventKind;
using runner::PrAction;
using tests::delivery;
using tests::webhookBody;

namespace {

const std::string kSecret = "71295b197fa25f4356d2fb9965df3f2379d903d7";
const std::string kSignedBody = "gitea/signed/go-scm-pull_request_edited.body.json";
const std::string kSignature = "a31111f057bafe895837f4a93c0f1f528919c199a20438b1fc8e23485780a33a";
const Source kSource{"home", "gitea"};

runner::Event parsed(const std::string& body, const std::string& event,
                     std::vector<std::pair<std::string, std::string>> more = {},
                     const Source& source = kSource) {
  more.emplace_back("X-Gitea-Event", event);
  more.emplace_back("X-Gitea-Delivery", "d-1");
  auto r = parseDelivery(delivery(body, more), source);
  INFO(r.error);
  REQUIRE(r.ok());
  return r.event;
}

runner::Event parsedFile(const std::string& rel, const std::string& event) {
  return parsed(webhookBody(rel), event);
}

// The fixture with one field replaced (parsing does not need the original bytes).
std::string edited(const std::string& rel, const std::function<void(nlohmann::json&)>& change) {
  auto j = tests::webhookJson(rel);
  change(j);
  return j.dump();
}

std::string formEncode(const std::string& json) { return "payload=" + runner::urlEncode(json); }

}  // namespace

TEST_CASE("gitea: the go-scm signed delivery verifies under every signature header",
          "[unit][gitea]") {
  const auto body = webhookBody(kSignedBody);
  REQUIRE(body.size() == 5109);
  for (const auto& [header, value] : std::vector<std::pair<std::string, std::string>>{
           {"X-Gitea-Signature", kSignature},
           {"X-Forgejo-Signature", kSignature},
           {"X-Gogs-Signature", kSignature},
           {"X-Hub-Signature-256", "sha256=" + kSignature},
           {"x-gitea-signature", runner::toLower(kSignature)},
           {"X-Gitea-Signature", " " + kSignature + " "}}) {
    INFO(header);
    auto check = verifySignature(kSecret, delivery(body, {{header, value}}));
    CHECK(check.accepted);
  }
  auto upper = kSignature;
  for (char& c : upper) c = char(std::toupper(c));
  CHECK(verifySignature(kSecret, delivery(body, {{"X-Gitea-Signature", upper}})).accepted);
  CHECK(verifySignature(kSecret, delivery(body, {{"X-Gitea-Signature", kSignature}})).detail ==
        "X-Gitea-Signature");
}

TEST_CASE("gitea: missing, empty, malformed and wrong signatures are rejected", "[unit][gitea]") {
  const auto body = webhookBody(kSignedBody);
  auto reason = [&](std::vector<std::pair<std::string, std::string>> headers,
                    const std::string& secret = kSecret, std::string b = "") {
    auto c = verifySignature(secret, delivery(b.empty() ? body : b, std::move(headers)));
    CHECK_FALSE(c.accepted);
    return c.detail;
  };
  // go-scm's negative cases
  CHECK(reason({{"X-Gitea-Signature", "failfailfailfail"}}) ==
        "malformed signature in X-Gitea-Signature");
  CHECK(reason({{"X-Gitea-Event", "pull_request"}}) == "missing signature header");
  // what Gitea sends for a hook without a secret
  CHECK(reason({{"X-Gitea-Signature", ""},
                {"X-Gogs-Signature", ""},
                {"X-Hub-Signature-256", "sha256="},
                {"X-Hub-Signature", "sha1="}}) ==
        "empty signature (is a secret set on the forge's hook?)");
  // a right-looking signature of other bytes, or with another secret
  CHECK(reason({{"X-Gitea-Signature", kSignature}}, kSecret, body + "\n") ==
        "signature does not match");
  CHECK(reason({{"X-Gitea-Signature", kSignature}}, "another-secret") ==
        "signature does not match");
  CHECK(reason({{"X-Gitea-Signature", std::string(64, '0')}}) == "signature does not match");
  // no secret configured: nothing is accepted, not even a correct signature
  CHECK(reason({{"X-Gitea-Signature", kSignature}}, "") == "no webhook secret configured");
  // the prefix belongs only on the Hub header; SHA-1 is never enough
  CHECK(reason({{"X-Gitea-Signature", "sha256=" + kSignature}}) ==
        "malformed signature in X-Gitea-Signature");
  CHECK(reason({{"X-Hub-Signature-256", kSignature}}) ==
        "malformed signature in X-Hub-Signature-256");
  CHECK(reason({{"X-Hub-Signature", "sha1=3d278f2f589f8ba360c5d16a6f754521eff20ff1"}}) ==
        "missing signature header");
  CHECK(reason({{"X-Gitea-Signature", kSignature.substr(0, 63) + "g"}}) ==
        "malformed signature in X-Gitea-Signature");
}

TEST_CASE("gitea: form-encoded deliveries are refused, the MAC covers exactly the parsed bytes",
          "[unit][gitea]") {
  const auto json = webhookBody(kSignedBody);
  auto d = delivery(formEncode(json), {{"Content-Type", "application/x-www-form-urlencoded"},
                                       {"X-Gitea-Signature", kSignature},
                                       {"X-Gitea-Event", "pull_request"}});
  // Gitea's form signature is over the JSON, not over the bytes sent: not accepted
  CHECK_FALSE(verifySignature(kSecret, d).accepted);
  auto r = parseDelivery(d, kSource);
  CHECK_FALSE(r.ok());
  CHECK(r.error ==
        "form-encoded deliveries are not accepted: set the hook's content type to "
        "application/json");
  // another content type is refused too; JSON with parameters is fine
  auto xml = parseDelivery(
      delivery(json, {{"Content-Type", "text/xml"}, {"X-Gitea-Event", "push"}}), kSource);
  CHECK(xml.error == "Content-Type must be application/json, not text/xml");
  auto utf8 = parseDelivery(delivery(json, {{"Content-Type", "application/json; charset=utf-8"},
                                            {"X-Gitea-Event", "pull_request"}}),
                            kSource);
  CHECK(utf8.ok());
}

TEST_CASE("gitea: the signed go-scm pull_request 'edited' delivery is ignored", "[unit][gitea]") {
  auto e = parsedFile(kSignedBody, "pull_request");
  CHECK(e.kind == EventKind::Ignored);
  CHECK(e.ignoredReason == "pull request edited");
  CHECK(e.forge == "home");
  CHECK(e.forgeType == "gitea");
  CHECK(e.deliveryId == "d-1");
  CHECK(e.eventName == "pull_request");
  CHECK(e.prNumber == 1);
}

TEST_CASE("gitea: pushes normalise from before/after, never from the commits list",
          "[unit][gitea]") {
  SECTION("go-scm push (older Gitea, one commit)") {
    auto e = parsedFile("gitea/push/go-scm-push.json", "push");
    CHECK(e.kind == EventKind::Push);
    CHECK(e.repo == "gogits/hello-world");
    CHECK(e.cloneUrl == "http://try.gitea.io/gogits/hello-world.git");
    CHECK(e.ref == "refs/heads/master");
    CHECK(e.before == "9836a96a253cce25d17988fcf41b8c4205cf779f");
    CHECK(e.after == "4522cbcefc20728a5b72b3a86af35e608622c514");
    CHECK_FALSE(e.created);
    CHECK_FALSE(e.forced);
    CHECK(e.totalCommits == 1);
    CHECK(e.sender == "unknwon");
  }
  SECTION("codeberg push creating a branch: zero before, empty commits") {
    auto e = parsedFile("gitea/push/woodpecker-push-branch-created.json", "push");
    CHECK(e.kind == EventKind::Push);
    CHECK(e.repo == "meisam/woodpecktester");
    CHECK(e.ref == "refs/heads/fdsafdsa");
    CHECK(e.before == "0000000000000000000000000000000000000000");
    CHECK(e.after == "28c3613ae62640216bea5e7dc71aa65356e4298b");
    CHECK(e.created);
    CHECK(e.totalCommits == 0);
    CHECK(e.sender == "6543");
  }
  SECTION("three commits, newest first, total_commits") {
    auto e = parsedFile("gitea/push/woodpecker-push-multi.json", "push");
    CHECK(e.kind == EventKind::Push);
    CHECK(e.repo == "Test-CI/multi-line-secrets");
    CHECK(e.ref == "refs/heads/main");
    CHECK(e.before == "6efcf5b7c98f3e7a491675164b7a2e7acac27941");
    CHECK(e.after == "29be01c073851cf0db0c6a466e396b725a670453");
    CHECK_FALSE(e.created);
    CHECK(e.totalCommits == 3);
    CHECK(e.sender == "test-user");
  }
  SECTION("more commits than Gitea lists: total_commits wins over the truncated list") {
    auto e = parsed(
        edited("gitea/push/woodpecker-push-multi.json", [](auto& j) { j["total_commits"] = 12; }),
        "push");
    CHECK(e.totalCommits == 12);
  }
  SECTION("a SHA-256 repository's zero id (64 zeros) also means created") {
    auto e = parsed(edited("gitea/push/go-scm-push.json",
                           [](auto& j) {
                             j["before"] = std::string(64, '0');
                             j["after"] = std::string(64, 'a');
                           }),
                    "push");
    CHECK(e.kind == EventKind::Push);
    CHECK(e.created);
  }
  SECTION("a deleted branch (zero after, no flags in Gitea) is ignored") {
    auto e = parsed(
        edited("gitea/push/go-scm-push.json", [](auto& j) { j["after"] = std::string(40, '0'); }),
        "push");
    CHECK(e.kind == EventKind::Ignored);
    CHECK(e.ignoredReason == "branch deleted");
  }
  SECTION("a tag push is ignored") {
    auto e = parsed(
        edited("gitea/push/go-scm-push.json", [](auto& j) { j["ref"] = "refs/tags/v1.0.0"; }),
        "push");
    CHECK(e.kind == EventKind::Ignored);
    CHECK(e.ignoredReason == "tag push");
    CHECK(e.ref == "refs/tags/v1.0.0");
  }
  SECTION("a push without 'after' is a bad payload") {
    auto r = parseDelivery(
        delivery(edited("gitea/push/go-scm-push.json", [](auto& j) { j.erase("after"); }),
                 {{"X-Gitea-Event", "push"}}),
        kSource);
    CHECK_FALSE(r.ok());
    CHECK(r.error == "push payload has no 'after'");
  }
}

TEST_CASE("gitea: pull requests by action, with merges and fork detection", "[unit][gitea]") {
  SECTION("go-scm opened") {
    auto e = parsedFile("gitea/pull_request/go-scm-opened.json", "pull_request");
    CHECK(e.kind == EventKind::PullRequest);
    CHECK(e.prAction == PrAction::Opened);
    CHECK(e.repo == "jcitizen/my-repo");
    CHECK(e.prNumber == 1);
    CHECK(e.headSha == "2eba238e33607c1fa49253182e9fff42baafa1eb");
    CHECK(e.headRef == "feature");
    CHECK(e.baseRef == "master");
    CHECK(e.baseSha == "39af58f1eff02aa308e16913e887c8d50362b474");
    CHECK(e.headRepo == "jcitizen/my-repo");
    CHECK(e.headCloneUrl == "https://try.gitea.io/jcitizen/my-repo.git");
    CHECK_FALSE(e.fromFork);
    CHECK(e.sender == "jcitizen");
  }
  SECTION("synchronized (not GitHub's synchronize), head.repo trimmed: repo_id decides") {
    auto e = parsedFile("gitea/pull_request/woodpecker-synchronized.json", "pull_request");
    CHECK(e.kind == EventKind::PullRequest);
    CHECK(e.prAction == PrAction::Synchronized);
    CHECK(e.prNumber == 2);
    CHECK(e.headSha == "788ed8d02d3b7fcfcf6386dbcbca696aa1d4dc25");
    CHECK(e.headRef == "test-patch-1");
    CHECK(e.baseSha == "29be01c073851cf0db0c6a466e396b725a670453");
    CHECK(e.headRepo == "Test-CI/multi-line-secrets");
    CHECK(e.headCloneUrl == "http://127.0.0.1:3000/Test-CI/multi-line-secrets.git");
    CHECK_FALSE(e.fromFork);
    CHECK(e.before.empty());  // Gitea sends no before/after on sync
    CHECK(e.sender == "test");
  }
  SECTION("merged: closed + merged, with the merge commit") {
    auto e = parsedFile("gitea/pull_request/woodpecker-merged.json", "pull_request");
    CHECK(e.kind == EventKind::PullRequest);
    CHECK(e.prAction == PrAction::Merged);
    CHECK(e.repo == "anbraten/test-repo");
    CHECK(e.prNumber == 1);
    CHECK(e.headSha == "d555a5dd07f4d0148a58d4686ec381502ae6a2d4");
    CHECK(e.mergeSha == "f2440f050054df0f8ecabcace648f1683509064c");
    CHECK_FALSE(e.fromFork);
  }
  SECTION("Forgejo closed without merging") {
    auto e =
        parsed(webhookBody("gitea/pull_request/forgejo-woodpecker-closed.json"), "pull_request",
               {{"X-Forgejo-Event", "pull_request"}}, Source{"codeberg", "forgejo"});
    CHECK(e.kind == EventKind::PullRequest);
    CHECK(e.prAction == PrAction::Closed);
    CHECK(e.forge == "codeberg");
    CHECK(e.forgeType == "forgejo");
    CHECK(e.cloneUrl == "https://forgejo.com/anbraten/test-repo.git");
    CHECK(e.headRef == "anbraten-patch-1");
    CHECK(e.baseSha == "068aee163ffd44eef28a7f9ebd43e2c01774f0fa");
    CHECK(e.mergeSha.empty());
  }
  SECTION("GitHub's spelling 'synchronize' means the same") {
    auto e = parsed(edited("gitea/pull_request/go-scm-opened.json",
                           [](auto& j) { j["action"] = "synchronize"; }),
                    "pull_request");
    CHECK(e.prAction == PrAction::Synchronized);
  }
  SECTION("retargeting to another base branch re-plans") {
    auto e = parsed(edited("gitea/pull_request/go-scm-opened.json",
                           [](auto& j) {
                             j["action"] = "edited";
                             j["changes"] = {{"ref", {{"from", "develop"}}}};
                           }),
                    "pull_request");
    CHECK(e.prAction == PrAction::Synchronized);
  }
  SECTION("labels, reviews and assignments are ignored") {
    for (const std::string action : {"label_updated", "reviewed", "assigned", "milestoned"}) {
      auto e = parsed(
          edited("gitea/pull_request/go-scm-opened.json", [&](auto& j) { j["action"] = action; }),
          "pull_request");
      CHECK(e.kind == EventKind::Ignored);
      CHECK(e.ignoredReason == "pull request " + action);
    }
  }
  SECTION("a head repository that differs from the base is a fork") {
    auto e = parsed(edited("gitea/pull_request/go-scm-opened.json",
                           [](auto& j) {
                             j["pull_request"]["head"]["repo"]["full_name"] = "mallory/my-repo";
                             j["pull_request"]["head"]["repo"]["clone_url"] =
                                 "https://try.gitea.io/mallory/my-repo.git";
                           }),
                    "pull_request");
    CHECK(e.fromFork);
    CHECK(e.headRepo == "mallory/my-repo");
    CHECK(e.headCloneUrl == "https://try.gitea.io/mallory/my-repo.git");
  }
  SECTION("no head repository and no repo ids: treated as a fork") {
    auto e = parsed(edited("gitea/pull_request/woodpecker-synchronized.json",
                           [](auto& j) {
                             j["pull_request"]["head"].erase("repo_id");
                             j["pull_request"]["head"]["repo"] = nullptr;
                           }),
                    "pull_request");
    CHECK(e.kind == EventKind::PullRequest);
    CHECK(e.fromFork);
    CHECK(e.headRepo.empty());
  }
}

TEST_CASE("gitea: comments become commands only on pull requests", "[unit][gitea]") {
  const auto rerun = [](auto& j) { j["comment"]["body"] = "/switchyard rerun octavia"; };
  SECTION("a comment on a plain issue is ignored, even with a command") {
    auto e = parsed(edited("gitea/issue_comment/go-scm-issue-comment-created.json", rerun),
                    "issue_comment", {{"X-Gitea-Event-Type", "issue_comment"}});
    CHECK(e.kind == EventKind::Ignored);
    CHECK(e.ignoredReason == "comment on an issue, not a pull request");
    CHECK(e.prNumber == 1);
    CHECK(e.commentId == 43);
    CHECK(e.commentAuthor == "unknwon");
  }
  SECTION("the recorded PR comment (2019, no pull_request object) is not a command") {
    auto e = parsedFile("gitea/issue_comment/zulip-issue-comment-in-pr.json", "issue_comment");
    CHECK(e.kind == EventKind::Ignored);
    CHECK(e.ignoredReason == "comment without a /switchyard command");
    CHECK(e.repo == "kostekIV/test");
  }
  SECTION("a command on a 2019 PR comment: no head sha in the payload") {
    auto e = parsed(edited("gitea/issue_comment/zulip-issue-comment-in-pr.json", rerun),
                    "issue_comment");
    CHECK(e.kind == EventKind::CommentCommand);
    CHECK(e.command == "rerun");
    CHECK(e.hosts == std::vector<std::string>{"octavia"});
    CHECK(e.prNumber == 1);
    CHECK(e.commentId == 24399);
    CHECK(e.commentAuthor == "kostekIV");
    CHECK(e.sender == "kostekIV");
    CHECK(e.headSha.empty());  // the scheduler asks Forge::pullRequest
  }
  SECTION("the recorded fork PR comment (2025) is not a command") {
    auto e = parsedFile("gitea/issue_comment/zulip-pr-comment-from-fork.json", "issue_comment");
    CHECK(e.kind == EventKind::Ignored);
    CHECK(e.ignoredReason == "comment without a /switchyard command");
  }
  SECTION("a command on a fork PR carries the head from the pull_request object") {
    auto e = parsed(edited("gitea/issue_comment/zulip-pr-comment-from-fork.json",
                           [](auto& j) { j["comment"]["body"] = "Please\n/switchyard rerun"; }),
                    "issue_comment");
    CHECK(e.kind == EventKind::CommentCommand);
    CHECK(e.hosts.empty());
    CHECK(e.repo == "Aneesh-Hegde/gitea-webhook");
    CHECK(e.prNumber == 3);
    CHECK(e.commentId == 1043451);
    CHECK(e.headSha == "cabcb9513308844c015a6b3dd804c5618875b447");
    CHECK(e.headRef == "main");
    CHECK(e.baseRef == "dummy");
    CHECK(e.baseSha == "be9a5ae270570a9d860e31933c46fa83399af568");
    CHECK(e.headRepo == "Celebi_datatransfer/gitea-webhook");
    CHECK(e.headCloneUrl == "https://gitea.com/Celebi_datatransfer/gitea-webhook.git");
    CHECK(e.fromFork);
  }
  SECTION("edited and deleted comments, and invalid commands, are ignored") {
    auto e = parsed(edited("gitea/issue_comment/zulip-issue-comment-in-pr.json",
                           [&](auto& j) {
                             rerun(j);
                             j["action"] = "edited";
                           }),
                    "issue_comment");
    CHECK(e.kind == EventKind::Ignored);
    CHECK(e.ignoredReason == "comment edited");
    auto bad = parsed(edited("gitea/issue_comment/zulip-issue-comment-in-pr.json",
                             [](auto& j) { j["comment"]["body"] = "/switchyard nuke"; }),
                      "issue_comment");
    CHECK(bad.kind == EventKind::Ignored);
    CHECK(bad.ignoredReason == "invalid /switchyard command: unknown command 'nuke'");
  }
  SECTION("X-Gitea-Event: pull_request_comment is a REVIEW comment") {
    auto e = parsed(edited("gitea/issue_comment/zulip-issue-comment-in-pr.json", rerun),
                    "pull_request_comment");
    CHECK(e.kind == EventKind::Ignored);
    CHECK(e.ignoredReason == "review comment");
  }
}

TEST_CASE("gitea: events we do not act on are ignored with a reason", "[unit][gitea]") {
  auto tag = parsedFile("gitea/create/go-scm-tag-create.json", "create");
  CHECK(tag.kind == EventKind::Ignored);
  CHECK(tag.ignoredReason == "create event (new branches arrive as push)");
  CHECK(tag.ref == "v1.0.0");
  CHECK(tag.repo == "gogits/hello-world");

  CHECK(parsedFile("gitea/push/go-scm-push.json", "delete").ignoredReason == "delete event");
  CHECK(
      parsedFile("gitea/pull_request/go-scm-opened.json", "pull_request_approved").ignoredReason ==
      "pull request review");
  CHECK(
      parsedFile("gitea/pull_request/go-scm-opened.json", "pull_request_rejected").ignoredReason ==
      "pull request review");
  auto release = parsed("{}", "release");
  CHECK(release.kind == EventKind::Ignored);
  CHECK(release.ignoredReason == "event 'release' is not used");
  // very old Gitea sent review hooks with action synchronized under review events
  auto oldReview = parsed(edited("gitea/pull_request/go-scm-opened.json",
                                 [](auto& j) { j["action"] = "synchronized"; }),
                          "pull_request_approved");
  CHECK(oldReview.kind == EventKind::Ignored);
}

TEST_CASE("gitea: the event header is taken from Forgejo, Gitea or Gogs", "[unit][gitea]") {
  auto body = webhookBody("gitea/push/go-scm-push.json");
  auto forgejo = parseDelivery(
      delivery(body, {{"X-Forgejo-Event", "push"}, {"X-Forgejo-Delivery", "f-1"}}), kSource);
  REQUIRE(forgejo.ok());
  CHECK(forgejo.event.kind == EventKind::Push);
  CHECK(forgejo.event.deliveryId == "f-1");
  auto gogs = parseDelivery(delivery(body, {{"X-Gogs-Event", "push"}}), kSource);
  REQUIRE(gogs.ok());
  CHECK(gogs.event.kind == EventKind::Push);
}

TEST_CASE("gitea: malformed bodies are bad payloads, not exceptions", "[unit][gitea]") {
  auto bad = [](std::string body, std::vector<std::pair<std::string, std::string>> h) {
    auto r = parseDelivery(delivery(std::move(body), std::move(h)), kSource);
    CHECK_FALSE(r.ok());
    return r.error;
  };
  CHECK(bad("{not json", {{"X-Gitea-Event", "push"}}) == "body is not JSON");
  CHECK(bad("", {{"X-Gitea-Event", "push"}}) == "body is not JSON");
  CHECK(bad("[1,2]", {{"X-Gitea-Event", "push"}}) == "body is not a JSON object");
  CHECK(bad(webhookBody("gitea/push/go-scm-push.json"), {}) == "no X-Gitea-Event header");
  CHECK(bad(R"({"ref":"refs/heads/main","before":"a","after":"b"})", {{"X-Gitea-Event", "push"}}) ==
        "push payload has no repository.full_name");
  CHECK(bad(R"({"repository":{"full_name":"a/b"},"ref":7,"before":"a","after":"b"})",
            {{"X-Gitea-Event", "push"}}) == "push payload has no 'ref'");
  CHECK(bad(R"({"repository":{"full_name":"a/b"},"action":"opened","pull_request":"x"})",
            {{"X-Gitea-Event", "pull_request"}}) == "pull_request payload has no pull_request");
  CHECK(bad(R"({"repository":{"full_name":"a/b"},"action":"opened","pull_request":{}})",
            {{"X-Gitea-Event", "pull_request"}}) ==
        "pull_request payload has no head sha or number");
  CHECK(bad(R"({"repository":{"full_name":"a/b"},"action":"created"})",
            {{"X-Gitea-Event", "issue_comment"}}) ==
        "issue_comment payload has no comment or issue");
}

TEST_CASE("gitea: a receiver reads its secret from the configured file", "[unit][gitea]") {
  runner::os::TempDir dir("sy-gitea");
  runner::os::writeFileAtomic(dir.path() / "hook", kSecret + "\n");
  runner::ForgeConfig config;
  config.name = "home";
  config.type = "forgejo";
  config.webhookSecretFile = dir.path() / "hook";
  runner::Redactor redactor;
  auto receiver = integrations::gitea::makeWebhookReceiver(config, &redactor);
  auto d = delivery(webhookBody(kSignedBody),
                    {{"X-Gitea-Signature", kSignature}, {"X-Gitea-Event", "pull_request"}});
  CHECK(receiver->verify(d).accepted);
  auto r = receiver->parse(d);
  REQUIRE(r.ok());
  CHECK(r.event.forge == "home");
  CHECK(r.event.forgeType == "forgejo");
  CHECK(redactor.apply("secret " + kSecret) == "secret [redacted]");

  config.webhookSecretFile.reset();
  auto unsecured = integrations::gitea::makeWebhookReceiver(config);
  CHECK(unsecured->verify(d).detail == "no webhook secret configured");

  config.webhookSecretFile = dir.path() / "missing";
  CHECK_THROWS_AS(integrations::gitea::makeWebhookReceiver(config), runner::InputError);
}

TEST_CASE("gitea: the vector and negative cases in the go-scm meta file hold", "[unit][gitea]") {
  auto meta = tests::webhookJson("gitea/signed/go-scm-pull_request_edited.meta.json");
  const auto body = webhookBody("gitea/signed/" + meta["body_file"].get<std::string>());
  CHECK(body.size() == meta["body_bytes"].get<size_t>());
  CHECK(runner::toHex(runner::crypto::sha256(body)) == meta["body_sha256"]);
  const std::string secret = meta["secret"];
  runner::WebhookDelivery d;
  d.body = body;
  for (const auto& [k, v] : meta["headers_from_test"].items()) d.headers.add(k, v);
  CHECK(verifySignature(secret, d).accepted);
  CHECK(runner::toHex(runner::crypto::hmacSha256(secret, body)) ==
        meta["verified_locally"]["hmac_sha256_hex"]);
  for (const auto& negative : meta["negative_cases_from_test"]) {
    runner::WebhookDelivery n;
    n.body = body;
    if (!negative["X-Gitea-Signature"].is_null())
      n.headers.add("X-Gitea-Signature", negative["X-Gitea-Signature"]);
    INFO(negative.dump());
    CHECK_FALSE(verifySignature(secret, n).accepted);
  }
  auto r = parseDelivery(d, kSource);
  REQUIRE(r.ok());
  CHECK(r.event.deliveryId == "ee8d97b4-1479-43f1-9cac-fbbd1b80da55");
}

TEST_CASE("gitea: every recorded payload has an expected outcome", "[unit][gitea]") {
  // file -> (X-Gitea-Event, kind, ignored reason); a new file without a row fails here
  const std::map<std::string, std::tuple<std::string, EventKind, std::string>> expected = {
      {"create/go-scm-tag-create.json",
       {"create", EventKind::Ignored, "create event (new branches arrive as push)"}},
      {"issue_comment/go-scm-issue-comment-created.json",
       {"issue_comment", EventKind::Ignored, "comment on an issue, not a pull request"}},
      {"issue_comment/zulip-issue-comment-in-pr.json",
       {"issue_comment", EventKind::Ignored, "comment without a /switchyard command"}},
      {"issue_comment/zulip-pr-comment-from-fork.json",
       {"issue_comment", EventKind::Ignored, "comment without a /switchyard command"}},
      {"pull_request/forgejo-woodpecker-closed.json", {"pull_request", EventKind::PullRequest, ""}},
      {"pull_request/go-scm-opened.json", {"pull_request", EventKind::PullRequest, ""}},
      {"pull_request/woodpecker-merged.json", {"pull_request", EventKind::PullRequest, ""}},
      {"pull_request/woodpecker-synchronized.json", {"pull_request", EventKind::PullRequest, ""}},
      {"push/go-scm-push.json", {"push", EventKind::Push, ""}},
      {"push/woodpecker-push-branch-created.json", {"push", EventKind::Push, ""}},
      {"push/woodpecker-push-multi.json", {"push", EventKind::Push, ""}},
      {"signed/go-scm-pull_request_edited.body.json",
       {"pull_request", EventKind::Ignored, "pull request edited"}},
  };
  size_t seen = 0;
  const auto root = tests::dataDir() / "webhooks" / "gitea";
  for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
    auto rel = std::filesystem::relative(entry.path(), root).string();
    if (!entry.is_regular_file() || runner::endsWith(rel, ".meta.json")) continue;
    INFO(rel);
    auto it = expected.find(rel);
    REQUIRE(it != expected.end());
    const auto& [event, kind, reason] = it->second;
    auto e = parsedFile("gitea/" + rel, event);
    CHECK(e.kind == kind);
    CHECK(e.ignoredReason == reason);
    CHECK_FALSE(e.repo.empty());
    ++seen;
  }
  CHECK(seen == expected.size());
}
