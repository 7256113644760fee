// The runner's configuration as values (DESIGN.md §4). runner/app reads it from YAML
// (switchyard.yaml) and validates it; every other folder receives these structs. Secrets
// are never values here: only the paths of the files that hold them.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runner/core/plan.h"

namespace runner {

struct ForgeConfig {
  std::string name;    // the key under `forges:`; also the webhook path /hooks/<name>
  std::string type;    // "gitea" | "forgejo" | "github"
  std::string url;     // web URL (https://git.example.org, https://github.com)
  std::string apiUrl;  // API base; default <url>/api/v1 (gitea) or https://api.github.com
  std::optional<std::filesystem::path> tokenFile;
  std::optional<std::filesystem::path> webhookSecretFile;
  // GitHub App (Check Runs instead of commit statuses)
  std::optional<int64_t> appId;
  std::optional<std::filesystem::path> privateKeyFile;
  // Runs planning more hosts than this report unaffected (and not selected) hosts in the
  // switchyard/plan status only, not one status per host and stage; 0: never fold.
  size_t foldStatusesAbove = 100;
};

struct RolloutConfig {
  // Deployed first, one at a time: host names, or `@tag` for every host carrying the
  // Colmena tag (deployment.tags), in the order the hosts are deployed.
  std::vector<std::string> canary;
  int maxParallel = 4;
  bool stopOnFailure = true;
  // retry_unreachable (issue 18): a host a deploy found unreachable gets that deploy again
  // when the fleet probe next reaches it, if that is within this long of the failed attempt
  // (0: never retried). HostConfig::retryUnreachable overrides it per host.
  std::chrono::seconds retryUnreachable{0};
};

struct ActivationConfig {
  std::chrono::seconds confirmTimeout{30};
  std::vector<std::string> healthChecks;  // commands run on the target (via sh -c)
  std::vector<std::string> httpChecks;    // URLs the runner GETs; 2xx = healthy
  std::chrono::seconds switchTimeout{600};
  bool substituteOnTarget = true;  // nix copy --substitute-on-destination
};

// When a host is deployed (README "Deploying"): `auto` on every push to a deploy branch,
// `manual` only when a person names it (a re-run or `switchyard deploy HOST` naming the host;
// a tag does not name it), `never` not by Switchyard at all (built and checked only).
enum class DeployPolicy { Auto, Manual, Never };
// What switch-to-configuration does with the new system: `switch` activates it and makes it
// the boot default, `boot` only makes it the boot default (picked up at the next reboot),
// `test` only activates it (the next reboot returns to the boot default).
enum class SwitchAction { Switch, Boot, Test };
const char* toString(DeployPolicy p);  // "auto" | "manual" | "never"
const char* toString(SwitchAction a);  // "switch" | "boot" | "test"

enum class BuildPlace { Runner, Target };

struct HostConfig {
  std::string name;
  std::optional<std::string> target;  // [user@]host[:port], IPv6 in brackets
  // nullopt: auto, or manual when the flake sets clan.core.deployment.requireExplicitUpdate.
  std::optional<DeployPolicy> deploy;
  SwitchAction action = SwitchAction::Switch;
  // Where its closure is built (build/target_builds.h); nullopt: as the flake says (Colmena
  // deployment.buildOnTarget, Clan clan.core.networking.buildHost), else the runner.
  std::optional<BuildPlace> buildOn;
  std::optional<std::chrono::seconds> retryUnreachable;  // nullopt: the repo's rollout setting
  // The login user, whatever the target says (issue 18); not root: commands that need root
  // run through sudo (or Colmena's deployment.privilegeEscalationCommand).
  std::optional<std::string> user;
};

// What a pull request from a fork may do (README "Untrusted evaluation"). Its Nix code
// runs in the jail (NixCli untrustedNixOptions); these say whether and what.
enum class UntrustedBuild {
  Approve,  // builds only once a writer approves its head (`/switchyard approve`, run page)
  Always,   // builds without approval, but derivations with network access (fixed-output
            // derivations) still need an approval
  Never,    // evaluated (planned) only
};
const char* toString(UntrustedBuild b);

struct UntrustedPolicy {
  bool evaluate = true;  // false: planned statically only, never evaluated or built
  UntrustedBuild build = UntrustedBuild::Approve;
  // Sources a fork may lock besides the base branch's (nix/untrusted_inputs.h patterns);
  // nullopt: the well-known forges.
  std::optional<std::vector<std::string>> allowedInputs;
};

struct RepoConfig {
  std::optional<std::string> forge;  // key into Config::forges; none for hook/CLI-only repos
  std::string name;                  // "owner/name"
  std::optional<std::filesystem::path> path;  // read this local repo instead of cloning
  std::optional<std::string> url;             // clone URL when there is no path
  std::vector<std::string> deployBranches{"main"};
  PlanMode detection = PlanMode::Auto;
  RolloutConfig rollout;
  ActivationConfig activation;
  std::vector<HostConfig> hosts;      // empty: every nixosConfigurations entry
  bool skipSelfRevisionOnly = false;  // do not rebuild hosts whose drv differs only by self.rev
  std::chrono::seconds buildTimeout{3600};
  UntrustedPolicy untrusted;  // pull requests from forks (defaults: Config::untrusted)
};

struct SshConfig {
  std::optional<std::filesystem::path> identityFile;
  std::optional<std::filesystem::path> knownHosts;  // strict: hosts not listed are refused
  std::chrono::seconds connectTimeout{10};
  bool useAgent = true;  // also try ssh-agent when SSH_AUTH_SOCK is set
};

// A Nix remote builder (issue 16): `nix build` of a trusted run may hand derivations to it
// (`--builders`). Its ssh user, port, key and host key are pinned like a deploy target's
// (build/remote_builders.h writes them into an OpenSSH client config for NIX_SSHOPTS).
struct RemoteBuilderConfig {
  std::string protocol = "ssh";  // "ssh" (nix-store --serve) | "ssh-ng" (nix-daemon --stdio)
  std::string user = "root";
  std::string host;  // a host name or IPv4 address
  int port = 22;
  std::vector<std::string> systems;  // empty: the runner's own system
  int maxJobs = 1;
  int speedFactor = 1;
  std::vector<std::string> features;                  // supported-features
  std::vector<std::string> mandatoryFeatures;         // mandatory-features
  std::optional<std::filesystem::path> identityFile;  // empty: ssh.identity_file
  std::string publicHostKey;  // Nix's 8th field (base64 of a known_hosts key), passed as is
  // Nix's store URI: "ssh://root@host". No port: Nix 2.8 gives the URI's host to ssh as is,
  // so the port is in the client config.
  std::string uri() const;
};
// Nix's `builders` syntax ("URI SYSTEMS KEY MAX-JOBS SPEED FEATURES MANDATORY HOSTKEY", entries
// separated by ';' or newlines, '-' for a default; the URI may carry ":port"). Throws
// InputError naming the entry and field. "@file" is refused: the runner must see each builder
// to pin its host key and probe it.
std::vector<RemoteBuilderConfig> parseNixBuilders(std::string_view text);
// One builder from "ssh://user@host[:port]" or "ssh-ng://…". Throws InputError.
RemoteBuilderConfig parseBuilderUri(std::string_view uri);

struct BuildConfig {
  std::vector<RemoteBuilderConfig> builders;
  bool buildersUseSubstitutes = false;  // builders fetch from their own substituters
  std::optional<int> maxJobs;           // local --max-jobs of trusted builds; 0: builders only
  // The builders' host keys; empty: ssh.known_hosts. A builder whose key is not in it is
  // refused by ssh (StrictHostKeyChecking yes).
  std::optional<std::filesystem::path> knownHosts;
};

// Slots shared by every run. Deploys come first: a run that deploys takes any free slot,
// pull request checks at most `checks` evaluation and build slots at once, and checks of
// forks at most `forks` of those — so with the defaults one evaluation and one build slot is
// always left for a deploy, whatever the pull requests do.
struct Concurrency {
  int evals = 2;
  int builds = 2;
  int deploys = 8;
  int checks = 1;  // < evals and < builds (config_loader checks)
  int forks = 1;   // <= checks
};

// The jail for pull requests from forks (nix::UntrustedJail).
struct UntrustedConfig {
  std::string user = "switchyard-untrusted";  // an unprivileged account of its own
  std::chrono::seconds evalTimeout{300};      // per evaluation process
  std::chrono::seconds buildTimeout{1800};    // the whole build of a run
  std::chrono::seconds maxSilentTime{600};    // a builder silent this long is killed
  // Nix's restrict-eval in the jail (only inputs and store paths readable, no URI). It also
  // refuses inputs on local paths (git+file, path) that the base branch locks — turn it
  // off for such repositories; the account and the missing network still hold.
  bool restrictEval = true;
  UntrustedPolicy defaults;  // repos[].untrusted overrides these
};

// Limits of the HTTP server (`server:` in switchyard.yaml, issue 11). An unset field keeps
// http::ServerOptions' default (what each means is written there, and in
// templates/switchyard.example.yaml); the request body limit is the top-level max_body_bytes.
struct ServerLimits {
  std::optional<size_t> maxConnections;            // max_connections
  std::optional<size_t> maxConnectionsPerAddress;  // max_connections_per_address
  std::optional<size_t> maxStreams;                // max_streams
  std::optional<size_t> maxRequestLineBytes;       // max_request_line_bytes
  std::optional<size_t> maxHeaderBytes;            // max_header_bytes
  std::optional<size_t> maxHeaderCount;            // max_header_count
  std::optional<size_t> maxBufferedBodyBytes;      // max_buffered_body_bytes
  std::optional<size_t> keepAliveMaxRequests;      // keep_alive_max_requests
  std::optional<std::chrono::seconds> headerTimeout, bodyTimeout, keepAlive, writeTimeout;
};

// The fleet probe (issue 14): every `probeInterval` the daemon asks each host with a known
// target what it runs (readlink of `currentSystemLink` and of the system profile), at most
// `probeConcurrency` hosts at once, each bounded by `probeTimeout`.
struct FleetConfig {
  std::chrono::seconds probeInterval{300};  // 0: never probe
  int probeConcurrency = 4;
  std::chrono::seconds probeTimeout{15};
  // What the host runs now. NixOS: /run/current-system. The lab's fake NixOS records it in
  // /var/lib/fake-nixos/current-system (`switchyard demo` sets that).
  std::string currentSystemLink = "/run/current-system";
};

struct Config {
  std::string listen = "127.0.0.1:8470";
  std::string publicUrl;  // base of status links; default http://<listen>
  std::filesystem::path stateDir = ".switchyard";
  // Where runs, deliveries, locks and the outbox live: empty for the SQLite file
  // <stateDir>/switchyard.db (the default), or a postgresql:// URL (issue 16). A password is
  // better kept in ~/.pgpass or PGPASSWORD (libpq reads both) than in this file.
  std::string database;
  Concurrency concurrency;
  std::map<std::string, ForgeConfig> forges;
  std::vector<RepoConfig> repos;
  SshConfig ssh;
  BuildConfig build;  // trusted builds only (forks never use the builders)
  UntrustedConfig untrusted;
  FleetConfig fleet;
  size_t maxBodyBytes = 25u << 20;
  ServerLimits server;
  std::optional<std::filesystem::path> hookSecretFile;  // shared secret of hooks/post-receive
  std::optional<std::filesystem::path> uiTokenFile;     // login token for the web UI re-run
  // A private installation: reading runs, logs, the API and /metrics needs a login too (or,
  // for the API and /metrics, `Authorization: Bearer <ui token>`). Webhooks and /healthz
  // stay open.
  bool privateUi = false;

  // A repository is (forge, name) (issue 17): the same owner/name may be configured on a
  // GitHub and on a Gitea. The repo on `forge` ("" for repos without one) named `name`,
  // compared without case as both forges do; nullptr when none.
  const RepoConfig* findRepo(std::string_view forge, std::string_view name) const;
  // Every repo named `name` (without case), on any forge, in config order.
  std::vector<const RepoConfig*> reposNamed(std::string_view name) const;
  std::string effectivePublicUrl() const;
};

// A deploy target: [user@]host[:port]; IPv6 addresses in brackets ("root@[fd00::2]:22").
struct Target {
  std::string user = "root";
  std::string host;
  int port = 22;
  std::string toString() const;  // canonical form, port omitted when 22
};
// Throws InputError naming the text when it is not a valid target.
Target parseTarget(std::string_view text);

// "30s", "5m", "1h", "250ms" or a bare number of seconds. Throws InputError.
std::chrono::milliseconds parseDuration(std::string_view text);

}  // namespace runner
