// The part of a forge API client that Gitea/Forgejo and GitHub share (DESIGN.md §7). Both
// REST APIs take the same requests for commit statuses, issue comments, reactions,
// collaborator permissions and pull requests under /repos/<owner>/<name>, paginate with
// RFC 8288 Link headers and report errors alike (classifyResponse), so RestForge
// implements those Forge methods once. A forge's client derives from it, says how one call
// is authenticated and sent (callUrl), reads its permission answers (readPermission) and
// adds what only it has (check runs, capabilities). The integrations stay independent of
// each other (DESIGN.md §2): each includes only this shared header.
//
// Nothing here retries or sleeps; every method returns a classified CallResult as the
// Forge port says, and a malformed repo name is refused before anything is sent.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "integrations/common/rest.h"
#include "runner/core/clock.h"
#include "runner/core/forge.h"
#include "runner/core/http_client.h"
#include "runner/core/log.h"
#include "runner/core/thread_annotations.h"

namespace runner {

// What RestForge needs to know about the API it talks to.
struct RestApiSettings {
  std::string forgeName;  // for log lines
  std::string apiUrl;     // "https://git.example.org/api/v1"; trailing '/' are removed
  std::chrono::milliseconds timeout{15000};
  std::string commentListQuery;  // appended to a PR's comment list URL ("?per_page=100")
  // Appended to the message of a 403 from the collaborator permission call (Gitea answers
  // 403 unless the token's account administers the repository).
  std::string permissionForbiddenHint;
};

// A Forge over a Gitea- or GitHub-style REST API. Thread-safe as long as the derived
// class's callUrl, readPermission and fetchSelfLogin are; RestForge's one piece of state, the
// account it posts as, is cached under a mutex.
class RestForge : public Forge {
 public:
  // POST /statuses/<sha>. Refuses a malformed sha. The description is cut to
  // capabilities().maxStatusDescription characters (sent as given when that is 0). When
  // capabilities().statusContextsIgnoreCase, a context that differs only in case from one
  // this client already set on the same commit (the last 4096 commits are remembered) is
  // refused (Permanent, httpStatus 0) instead of replacing that status.
  CallResult setStatus(const std::string& repo, const std::string& sha,
                       const CommitStatus& status) override;
  // Lists the PR's comments page by page (at most 20 pages; a next page on another host is
  // not followed), then edits the marked comment that this client's own account wrote
  // (selfLogin) or posts a new one.
  ForgeResult<CommentRef> upsertComment(const std::string& repo, int64_t prNumber,
                                        const std::string& marker,
                                        const std::string& body) override;
  // PATCH /issues/comments/<id>; on a 404, upsertComment.
  ForgeResult<CommentRef> updateComment(const std::string& repo, int64_t prNumber,
                                        int64_t commentId, const std::string& marker,
                                        const std::string& body) override;
  // POST /issues/<number>/comments.
  ForgeResult<CommentRef> postComment(const std::string& repo, int64_t number,
                                      const std::string& body) override;
  // POST /issues/comments/<id>/reactions.
  CallResult addReaction(const std::string& repo, int64_t commentId, Reaction reaction) override;
  // GET /collaborators/<user>/permission; a 404 (no such user there) is level "none", an
  // answer without "permission" is a Permanent "unexpected answer", anything else goes to
  // readPermission.
  ForgeResult<UserPermission> userPermission(const std::string& repo,
                                             const std::string& user) override;
  // GET /pulls/<number>, read by pullRequestFromJson; an answer without a head sha is a
  // Permanent "unexpected answer".
  ForgeResult<PullRequestInfo> pullRequest(const std::string& repo, int64_t number) override;

 protected:
  // `http`, `clock` and `log` must outlive the object.
  RestForge(RestApiSettings settings, HttpClient& http, Clock& clock, Logger& log);

  // Sends one call on behalf of `repo` (a valid "owner/name": callers check) to the absolute
  // `url`, with `body` as JSON when non-null, and returns the classified answer; the
  // response goes to `out` when non-null. Must be thread-safe and must not throw (but
  // std::bad_alloc). Implementations authenticate, then use send() and classifyAndLog().
  virtual CallResult callUrl(const std::string& repo, const std::string& method,
                             const std::string& url, const nlohmann::json* body,
                             HttpResponse* out) = 0;

  // The user's permission from a collaborator permission answer; `permission` is the
  // answer's non-empty "permission" field. Must be thread-safe.
  virtual UserPermission readPermission(const nlohmann::json& answer,
                                        const std::string& permission) const = 0;

  // The login the forge shows as the author of what this client posts, asked on behalf of
  // `repo`. The default asks GET /user (the token's own account); a GitHub App answers
  // "<slug>[bot]". Must be thread-safe.
  virtual ForgeResult<std::string> fetchSelfLogin(const std::string& repo);
  // callUrl with `path` below the API URL ("/repos/o/n/statuses/…").
  CallResult call(const std::string& repo, const std::string& method, const std::string& path,
                  const nlohmann::json* body, HttpResponse* out = nullptr);

  // Sends `method url` with `headers`, plus Content-Type: application/json and the dumped
  // `body` when non-null, within the configured timeout. Returns what the HttpClient does,
  // after following up to 3 redirects (301, 302, 307, 308: a renamed or transferred
  // repository) with the same method, headers and body — only to URLs below the API URL on
  // the same host; any other redirect is returned as it is (and classified Permanent). A
  // repository's move is logged once, with its new name (GitHub redirects to
  // /repositories/<id>/…: the name is asked of GET /repositories/<id>).
  HttpResponse send(const std::string& method, const std::string& url, const nlohmann::json* body,
                    std::vector<std::pair<std::string, std::string>> headers);

  // classifyResponse(response, clock.now()), logged: debug when it worked, warn with the
  // message when not. `url` must start with the API URL (it is logged without it).
  CallResult classifyAndLog(const std::string& method, const std::string& url,
                            const HttpResponse& response);

  // "/repos/<owner>/<name>", each part url-encoded; nullopt for a malformed repo name.
  static std::optional<std::string> repoPath(const std::string& repo);

  // `r` turned into a Permanent failure "unexpected answer: <what>" (an answer that worked
  // but lacks what we asked for).
  static CallResult unexpected(CallResult r, const std::string& what);

  // The API URL without trailing '/'.
  const std::string& apiUrl() const { return api_.apiUrl; }

  // The clock classifyAndLog() reads; a derived class may use it for its own timing.
  Clock& clock() const { return clock_; }

 private:
  // The next page of a list, if the forge offers one on the same API ("" otherwise).
  std::string nextPage(const HttpResponse& response) const;
  // fetchSelfLogin, remembered after the first answer.
  ForgeResult<std::string> selfLogin(const std::string& repo);
  // The redirect target of `response` to follow from `url`, or "" (not a redirect, or one
  // that leaves the API or its host).
  std::string redirectTarget(const std::string& url, const HttpResponse& response) const;
  // Logs, once per repository, that `from` moved to `to` (both below the API URL).
  void noteMove(const std::string& from, const std::string& to,
                const std::vector<std::pair<std::string, std::string>>& headers);
  // Records `context` as set on (repo, sha); returns the context it clashes with (same
  // letters, other case), if any.
  std::optional<std::string> claimContext(const std::string& repo, const std::string& sha,
                                          const std::string& context);

  RestApiSettings api_;
  HttpClient& http_;
  Clock& clock_;
  Logger& log_;
  Mutex selfMu_;
  std::optional<std::string> self_ GUARDED_BY(selfMu_);
  Mutex movedMu_;
  std::set<std::string> movedLogged_ GUARDED_BY(movedMu_);  // "/repos/o/n" already logged
  Mutex contextsMu_;
  // (repo, sha) -> lowercased context -> context as set; at most kRememberedCommits keys,
  // the oldest dropped first (contextOrder_).
  std::map<std::pair<std::string, std::string>, std::map<std::string, std::string>> contexts_
      GUARDED_BY(contextsMu_);
  std::deque<std::pair<std::string, std::string>> contextOrder_ GUARDED_BY(contextsMu_);
};

}  // namespace runner
