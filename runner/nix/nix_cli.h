// The `nix` command-line driver (Nix 2.8 and later): evaluation of many hosts at once with
// per-host error capture, flake metadata, derivation closures, dry runs, builds with the
// internal-json log streamed to a callback, and GC roots. Every call is an argv through the
// ProcessRunner port, so tests count processes with a decorator; nothing here parses a shell
// string. Expected failures (a host that does not evaluate, a build that fails) are values.
//
// Flake references point straight into a repository: `git+file:///path?rev=SHA` works for
// work trees and bare repositories alike and needs no checkout (gitFlakeRef()).
//
// Every invocation passes `--extra-experimental-features "nix-command flakes"` and
// `--option eval-cache false` (parallel evaluations of one revision otherwise fight over
// the eval-cache SQLite file: "SQLite database ... is busy").
//
// Thread-safe: methods may be called from several threads; evalPerHost runs its own threads.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runner/core/process.h"
#include "runner/core/thread_annotations.h"
#include "runner/nix/derivation.h"
#include "runner/nix/internal_json.h"
#include "runner/nix/process_limit.h"

namespace runner::nix {

struct NixCliOptions {
  std::string nix = "nix";  // program; nix-store is looked up next to it
  std::chrono::milliseconds evalTimeout = std::chrono::minutes(10);  // per eval process
  std::map<std::string, std::optional<std::string>> env;             // on top of the inherited env
  bool inheritEnv = true;              // false: the child gets only `env`
  std::optional<Confinement> confine;  // untrusted code: another account, no network
  // Shared by every NixCli of a daemon (process_limit.h): each nix process this object starts
  // (`nix build` as a build, every other `nix` command as an evaluation; not nix-store
  // --add-root) waits for its place first. Null: no limit. Must outlive the NixCli.
  ProcessLimit* limit = nullptr;
};

// Options for fetching what a fork's flake.lock names (untrusted_inputs.h): no credential
// reaches Nix's fetchers. Nix's access-tokens and netrc file are emptied (NIX_CONFIG, read
// after nix.conf), git runs without the system's and the user's config (no credential
// helpers, no URL rewrites), cannot prompt and cannot use ssh, there is no ssh agent, and
// HOME is `home`, a directory of its own.
NixCliOptions credentiallessNixOptions(NixCliOptions base, const std::filesystem::path& home);

// Where a fork's Nix code runs (README "Untrusted evaluation"): as `account` (an unprivileged
// user that can read nothing of the runner's), in a network namespace of its own, talking to
// the nix-daemon (NIX_REMOTE=daemon; the account must not be one of its trusted-users), with
// restrict-eval, no import-from-derivation, no flake nixConfig, no allowed URIs and no
// credentials, an environment of only PATH/HOME/TMPDIR/XDG dirs (HOME is `home`, owned by
// the account), and `evalTimeout` per evaluation process. Flake references must then be
// sourceFlakeRef()s of sources fetched beforehand: the jail can read no repository.
struct UntrustedJail {
  Confinement account;
  std::filesystem::path home;
  std::chrono::milliseconds evalTimeout = std::chrono::minutes(5);
  bool restrictEval = true;  // false: pure evaluation only (local inputs readable by path)
};
NixCliOptions untrustedNixOptions(NixCliOptions base, const UntrustedJail& jail);

// "git+file:///abs/path?rev=SHA" (the path made absolute; characters URLs reserve escaped).
//
// A BARE repository gets "&ref=refs/switchyard/commits/SHA" too, and that ref is written into
// it (git's loose-ref format, under git's own `.lock` protocol) when missing. Nix 2.8 fetches
// a bare repository's `master` (it cannot read a bare HEAD) and then needs the commit on the
// ref it fetched, which fails for mirrors whose default branch is another and for commits only
// on other refs (pull request heads). The pin also keeps the commit from git's garbage
// collection while runs use it. Throws SysError when the ref cannot be written.
std::string gitFlakeRef(const std::filesystem::path& repo, const std::string& rev);

// One input to put into the store before a jailed evaluation: builtins.fetchTree attributes.
struct InputToFetch;

// A Nix string literal ("...") with exactly the value `s`.
std::string nixStringLiteral(std::string_view s);

// One host's result of a per-host evaluation.
struct HostValue {
  std::optional<nlohmann::json> value;  // the function's value, when it evaluated
  std::optional<std::string> error;     // Nix's error message, when it did not
  bool missing = false;                 // no such host in nixosConfigurations
};

// Where a host's deploy target comes from, in this order: a target the caller was given (the
// config's `hosts:` entry, a CLI flag), Clan's clan.core.networking.targetHost, the
// Colmena-style deployment.targetHost (both from NixCli::evalHostInfo), else the host's name.
struct TargetChoice {
  std::string text;  // as written: "root@10.0.0.2", or the host's name
  std::string from;  // "config" | "clan" | "colmena" | "name"
};
TargetChoice chooseTarget(const std::string& host, const std::map<std::string, std::string>& given,
                          const HostValue* info);

// The Nix function evalHostInfo evaluates (`name: nixosSystem: {clan, colmena, …}`), for callers
// that evaluate more per host in the same process (deploy: Colmena keys).
const char* hostInfoFunction();

struct HostEvals {
  std::map<std::string, HostValue> hosts;
  // Set when not even the host list could be evaluated (flake.nix broken, lock missing, ...);
  // `hosts` then holds only the hosts the caller named, each with this error.
  std::optional<std::string> flakeError;
  int processes = 0;  // nix processes this evaluation ran
};

struct EvalParallelism {
  // First pass: the hosts are split across this many `nix eval` processes running at once
  // (1: one process for all). More than 1 first prefetches the revision (flake metadata).
  int processes = 1;
  // Hosts whose first-pass evaluation failed are evaluated alone to get Nix's error for each;
  // at most this many of those run at once.
  int fallbackWorkers = 2;
};

struct FlakeMetadata {
  std::string path;     // the source's store path (/nix/store/<hash>-source)
  std::string rev;      // empty for a dirty work tree
  std::string narHash;  // sha256-…
  int64_t lastModified = 0;
  std::optional<int64_t> revCount;
};

struct DryRun {
  std::map<std::string, std::map<std::string, std::string>> outputs;  // drv -> output -> path
  std::set<std::string> willBuild;  // derivations a build would run
  std::set<std::string> willFetch;  // paths a build would substitute
};

// `path:<store path>?narHash=…&rev=…&revCount=…&lastModified=…`: a flake reference to a
// source already in the store (NixCli::fetchGitSource) that gives `self` the same rev,
// shortRev, revCount, lastModified and narHash as the commit's git+file reference, without
// reading the repository.
std::string sourceFlakeRef(const FlakeMetadata& source);

struct BuildRequest {
  std::vector<std::string> drvPaths;     // built as `nix build DRV...` (Nix 2.8 has no DRV^out)
  std::chrono::milliseconds timeout{0};  // whole process; 0: none. Kills the process group.
  // nix --timeout: each derivation's builder at most this long (Nix kills it and says
  // "building of '….drv!out' … timed out after N seconds"); 0: Nix's setting.
  std::chrono::seconds drvTimeout{0};
  std::optional<int> maxJobs;  // --max-jobs
  // nix --max-silent-time: a builder that prints nothing this long is killed; 0: nix.conf's.
  std::chrono::seconds maxSilentTime{0};
  bool keepGoing = true;  // one failing host does not stop the others
  std::vector<std::string> extraArgs;
  std::map<std::string, std::string> env;  // on top of NixCliOptions::env (NIX_SSHOPTS)
};

struct BuildRun {
  RunResult process;  // exit status, timedOut, duration (errTail holds raw log lines)
  // drv -> output -> path; Nix prints these only when every requested derivation was built.
  std::map<std::string, std::map<std::string, std::string>> outputs;
  std::vector<std::string> errors;  // Nix's error messages (level 0), ANSI codes removed
};

class NixCli {
 public:
  // `procs` must outlive this object.
  explicit NixCli(ProcessRunner& procs, NixCliOptions options = {});

  // The names in nixosConfigurations at `flakeRef`, sorted.
  // Throws NixError with Nix's message when the flake does not evaluate that far.
  std::vector<std::string> hostNames(const std::string& flakeRef);

  // Evaluates `fn`, the Nix text of a function `name: nixosSystem: value` (value must be
  // JSON-serialisable), for each host in `hosts` (nullopt: every host) at `flakeRef`.
  // One host failing (even with an error builtins.tryEval cannot catch) does not fail the
  // others: failed hosts are re-evaluated alone to report Nix's error for each.
  // Never throws for evaluation errors; throws SysError if nix cannot be started.
  HostEvals evalPerHost(const std::string& flakeRef, const std::string& fn,
                        const std::optional<std::vector<std::string>>& hosts,
                        const EvalParallelism& parallelism = {});

  // `config.system.build.toplevel.drvPath` per host (value: a JSON string).
  HostEvals evalDrvPaths(const std::string& flakeRef,
                         const std::optional<std::vector<std::string>>& hosts,
                         const EvalParallelism& parallelism = {});

  // Per host: {"clan": clan.core.networking.targetHost or null, "colmena":
  // deployment.targetHost or null, "explicitUpdate":
  // clan.core.deployment.requireExplicitUpdate or null, "tags": deployment.tags or null,
  // "system": nixpkgs.hostPlatform (its .system when it is an attribute set) or pkgs' system,
  // or null}. One process for all hosts.
  HostEvals evalHostInfo(const std::string& flakeRef,
                         const std::optional<std::vector<std::string>>& hosts = std::nullopt);

  // `nix flake metadata --json`. Cached per flakeRef for the lifetime of this object (a ref
  // with ?rev= is immutable). Throws NixError with Nix's message.
  FlakeMetadata metadata(const std::string& flakeRef);

  // The tree of commit `rev` of the git repository `repo` copied into the store by Nix's own
  // git fetcher (builtins.fetchTree: nothing in the tree is evaluated, not even flake.nix),
  // with the identity the commit's git+file flake reference has. Cached per (repo, rev).
  // Throws NixError with Nix's message.
  FlakeMetadata fetchGitSource(const std::filesystem::path& repo, const std::string& rev);

  // Puts `inputs` into the store (builtins.fetchTree, one nix process). Throws NixError naming
  // the input that could not be fetched.
  void fetchInputs(const std::vector<InputToFetch>& inputs);

  // `nix show-derivation [-r] DRV...`. Throws NixError with Nix's message.
  DerivationSet showDerivations(const std::vector<std::string>& drvPaths, bool recursive);

  // `nix build --dry-run --json DRV...`: output paths and what a build would do.
  // Throws NixError with Nix's message.
  DryRun dryRun(const std::vector<std::string>& drvPaths);

  // `nix build --no-link --json -L --log-format internal-json DRV...`; each stderr log line is
  // parsed and passed to `onEvent` (on the calling thread, as it arrives). A failed or timed
  // out build is a value (BuildRun::process); throws SysError only if nix cannot start.
  BuildRun build(const BuildRequest& request,
                 const std::function<void(const LogEvent&)>& onEvent = {});

  // `nix-store --add-root ROOT --indirect --realise STOREPATH`: ROOT becomes a symlink to the
  // path and an indirect GC root. Always runs as the runner, with its environment (roots live
  // in the runner's state, which a jailed account cannot write). Returns false (with Nix's message
  // in `error`) when the path is not valid; throws SysError only if nix-store cannot start.
  bool addGcRoot(const std::filesystem::path& root, const std::string& storePath,
                 std::string* error = nullptr);

  // `nix store diff-closures OLD NEW`: Nix's lines ("hello: 2.12 → 2.13, +12.5 KiB"), with
  // the colour codes Nix always prints removed, into `out`. Returns false (with Nix's message
  // in `error`) when a path is not valid in the store or nix fails; throws SysError only if
  // nix cannot start.
  bool diffClosures(const std::string& oldPath, const std::string& newPath, std::string& out,
                    std::string* error = nullptr);

  // True when the text of any .drv file in the closures of `drvPaths` contains one of
  // `needles`. Reads the .drv files from the store directly (no process); a .drv that cannot
  // be read counts as a mention (the safe answer).
  bool closureMentions(const std::vector<std::string>& drvPaths,
                       const std::vector<std::string>& needles);
  // The same question for each root separately, reading every .drv file at most once:
  // returns the roots whose closure mentions one of `needles`.
  std::set<std::string> closuresMentioning(const std::vector<std::string>& roots,
                                           const std::vector<std::string>& needles);

 private:
  RunOptions nixCommand(std::vector<std::string> args) const;
  // procs_.run, holding a place of `kind` in options_.limit while the process runs.
  RunResult runNix(const RunOptions& o, ProcessLimit::Kind kind = ProcessLimit::Kind::Eval);
  HostValue evalOneHost(const std::string& flakeRef, const std::string& fn,
                        const std::string& host);

  ProcessRunner& procs_;
  NixCliOptions options_;
  Mutex mu_;
  std::map<std::string, FlakeMetadata> metadata_ GUARDED_BY(mu_);
  std::map<std::string, FlakeMetadata> sources_ GUARDED_BY(mu_);  // fetchGitSource
};

// The part of Nix's stderr that is the error: from the first "error:" line, without
// "warning:" lines and the "(use '--show-trace' …)" hint; trimmed.
std::string nixErrorText(std::string_view stderrText);
// One line for a person: the first "error:" line of `errorText` and the first place it names
// ("at flake.nix:3:5", store prefixes removed). "error: syntax error, unexpected '}' (at
// flake.nix:3:5)".
std::string nixErrorSummary(std::string_view errorText);

}  // namespace runner::nix
