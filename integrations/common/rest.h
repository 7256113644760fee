// The REST and webhook plumbing Gitea/Forgejo and GitHub share (DESIGN.md §7), beside the
// integrations that use it: how an API response is classified, URL and form encoding, and
// the JSON shapes both REST APIs return (pull requests, comment lists, Link pagination).
// The Forge port and its value types stay in runner/core/forge.h.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <nlohmann/json_fwd.hpp>

#include "runner/core/forge.h"
#include "runner/core/http_client.h"

namespace runner {

// Classifies a forge API response by the rules of FORGE-FACTS §2.6:
//  * 2xx -> Ok.
//  * no response (transport failure) -> Retryable, no wait given.
//  * `retry-after: <seconds>` (or an HTTP date) on any 403/429/5xx -> Retryable, that wait;
//    no wait given when it is 0 or the date is past.
//  * 403/429 with `x-ratelimit-remaining: 0` -> Retryable until `x-ratelimit-reset` (epoch
//    seconds, measured against `now`; at least 1 s).
//  * 429, or 403 whose message mentions a rate limit, without those headers -> Retryable,
//    60 s (GitHub: "wait at least one minute").
//  * 408 and 5xx -> Retryable, no wait given.
//  * everything else (400, 401, 403, 404, 409, 422, ...) -> Permanent.
// The message of a failure is "HTTP <status>: " + the JSON `message` (and GitHub's
// `errors[].message`) or the start of the body, or the transport error.
CallResult classifyResponse(const HttpResponse& response,
                            std::chrono::system_clock::time_point now);

// Percent-encodes everything but RFC 3986 unreserved characters (for one path segment or
// query value).
std::string urlEncode(std::string_view s);
// Decodes %XX escapes and, when `plusIsSpace`, '+' (form encoding). nullopt on a bad escape.
std::optional<std::string> urlDecode(std::string_view s, bool plusIsSpace);
// The value of `name` in an application/x-www-form-urlencoded body, decoded; nullopt when
// absent or badly encoded.
std::optional<std::string> formValue(std::string_view body, std::string_view name);

// Reads a pull request object as both forges' REST APIs return it (number, state, merged,
// head/base ref, sha and repo). baseRepo falls back to `repo`; a missing or null head repo
// leaves headRepo "" and counts as a fork. headSha is "" when the object has none.
PullRequestInfo pullRequestFromJson(const nlohmann::json& pr, const std::string& repo);

// The first comment in a JSON list of issue comments written by `author` (user.login, in any
// case) whose body starts with `marker`: its id and html_url (change Unchanged) and its body;
// nullopt when none does. Anyone can post a marker; only our own comments count.
std::optional<std::pair<CommentRef, std::string>> findMarkedComment(const nlohmann::json& list,
                                                                    std::string_view marker,
                                                                    std::string_view author);

// The URL of the rel="next" page in an RFC 8288 Link header (GitHub and Gitea paginate
// with it), or nullopt.
std::optional<std::string> nextPageUrl(std::string_view linkHeader);

}  // namespace runner
