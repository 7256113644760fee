// `switchyard runs`, `switchyard rerun` and `switchyard logs`: the daemon's state from the
// command line. They read (and, for rerun, append to) the daemon's SQLite database and log
// files in state_dir directly rather than calling its HTTP API: that works whether or not the
// daemon runs, needs no API credentials (the state directory's file permissions are the
// access control), and SQLite's WAL mode lets them read while the daemon writes. A re-run is
// a delivery with source "cli" in the same durable queue the webhooks use; the daemon picks
// it up like any other.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "runner/app/commands.h"
#include "runner/app/daemon.h"
#include "runner/app/repo_choice.h"
#include "runner/app/web.h"
#include "runner/core/error.h"
#include "runner/core/plan.h"
#include "runner/core/text.h"
#include "runner/crypto/crypto.h"
#include "runner/fleet/fleet.h"
#include "runner/os/files.h"
#include "runner/store/database.h"
#include "runner/store/deliveries.h"
#include "runner/store/runs.h"

namespace fs = std::filesystem;

namespace runner::app {

Config configOrDefaults(const std::string& file);  // commands_serve.cc

namespace {

const SystemClock kClock;

std::unique_ptr<store::Database> openState(const Config& config) {
  if (!config.database.empty()) return openDatabase(config, store::Durability::Normal);
  fs::path file = databasePath(config);
  if (!fs::exists(file))
    throw InputError("no runner state at " + file.string() +
                     " (start `switchyard serve` there, or pass --config)");
  return store::Database::open(file, store::Durability::Normal);
}

std::string pad(std::string s, size_t n) {
  if (s.size() < n) s.append(n - s.size(), ' ');
  return s;
}

int64_t parseRunId(const std::string& s) {
  try {
    size_t used = 0;
    long long v = std::stoll(s, &used);
    if (used == s.size() && v > 0) return v;
  } catch (const std::exception&) {  // std::stoll's way of saying "not a number"
  }
  throw UsageError("RUN_ID must be a positive number, not '" + s + "'");
}

}  // namespace

void registerRunsCommands(CLI::App& app, CommandContext& ctx) {
  {
    auto* cmd = app.add_subcommand(
        "fleet", "Every host: what it runs (generation, commit, run), its last deploy, drift");
    struct Opts {
      std::string config;
      bool json = false;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_option("--config", o->config, "switchyard.yaml (default: ./.switchyard)");
    cmd->add_flag("--json", o->json, "print the table as JSON");
    cmd->callback([&ctx, o] {
      ctx.action = [o] {
        Config config = configOrDefaults(o->config);
        auto db = openState(config);
        auto rows = fleet::fleetTable(*db, config, [&](const RepoConfig& repo) {
          std::string sha = deployHead(*db, repo);
          if (sha.empty()) return std::vector<std::string>{};
          try {
            return flakeHostsAt(config, repo, sha);
          } catch (const std::exception& e) {
            std::cerr << "note: the flake's hosts of " << repo.name << " are not known ("
                      << describe(e) << ")\n";
            return std::vector<std::string>{};
          }
        });
        if (o->json)
          std::cout << fleet::fleetJson(rows).dump(2) << "\n";
        else
          std::cout << fleet::fleetText(rows);
        return 0;
      };
    });
  }
  {
    auto* cmd = app.add_subcommand("runs", "Recent runs of the daemon, newest first");
    struct Opts {
      std::string config, repo, forge;
      bool json = false;
      int limit = 30;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_option("--config", o->config, "switchyard.yaml (default: ./.switchyard)");
    cmd->add_option("--repo", o->repo, "only this repository's runs (owner/name)");
    cmd->add_option("--forge", o->forge,
                    "only runs of this forge's repositories (and names the forge of --repo)");
    cmd->add_flag("--json", o->json, "print the runs as JSON");
    cmd->add_option("--limit", o->limit, "how many runs")->capture_default_str();
    cmd->callback([&ctx, o] {
      ctx.action = [o] {
        Config config = configOrDefaults(o->config);
        // A repository is (forge, name): a name on several forges needs --forge.
        if (!o->forge.empty() && !config.forges.count(o->forge))
          throw UsageError("--forge: no forge named '" + o->forge + "' in the config");
        std::optional<std::string> forge;  // the runs' forge, when known
        if (!o->forge.empty()) forge = o->forge;
        if (!o->repo.empty()) {
          auto named = config.reposNamed(o->repo);
          std::vector<const RepoConfig*> fit;
          for (const auto* r : named)
            if (!forge || r->forge.value_or("") == *forge) fit.push_back(r);
          if (fit.size() > 1)
            throw UsageError("repository '" + o->repo + "' is ambiguous: " + describeRepos(fit) +
                             " — pass --forge");
          if (fit.size() == 1) forge = fit.front()->forge.value_or("");
        }
        auto db = openState(config);
        store::Runs runs(*db, kClock, config.effectivePublicUrl());
        const size_t want = static_cast<size_t>(std::max(1, o->limit));
        std::vector<store::RunRecord> list;
        for (int offset = 0; list.size() < want; offset += 200) {
          auto page = runs.list(200, offset);
          for (auto& r : page) {
            const RunView& v = r.view;
            if (forge && v.forge != *forge) continue;
            if (!o->repo.empty() && toLower(v.repo) != toLower(o->repo)) continue;
            if (list.size() < want) list.push_back(std::move(r));
          }
          if (page.size() < 200) break;
        }
        if (o->json) {
          nlohmann::json out = nlohmann::json::array();
          for (const auto& r : list) out.push_back(runJson(r, runs.hosts(r.view.id)));
          std::cout << out.dump(2) << "\n";
          return 0;
        }
        if (list.empty()) std::cout << "no runs yet\n";
        for (const auto& r : list) {
          const RunView& v = r.view;
          std::string hosts;
          for (const auto& h : runs.hosts(v.id))
            hosts += (hosts.empty() ? "" : " ") + h.host + ":" + toString(h.state);
          std::cout << pad("#" + std::to_string(v.id), 6) << pad(toString(v.state), 12)
                    << pad(toString(v.kind), 8) << pad(repoLabel(v), 20) << pad(shortSha(v.sha), 10)
                    << pad(v.ref, 22) << hosts << "\n";
        }
        return 0;
      };
    });
  }
  {
    auto* cmd = app.add_subcommand("rerun", "Queue a re-run of a run (optionally of some hosts)");
    struct Opts {
      std::string config, run;
      std::vector<std::string> hosts;
      std::string stage;
      double wait = 10;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_option("RUN_ID", o->run, "the run to re-run")->required();
    cmd->add_option("HOST", o->hosts, "only these hosts (default: the run's hosts)");
    cmd->add_option("--config", o->config, "switchyard.yaml (default: ./.switchyard)");
    cmd->add_option("--stage", o->stage, "plan | build | deploy (default: all stages)")
        ->check(CLI::IsMember({"plan", "build", "deploy"}));
    cmd->add_option("--wait", o->wait, "seconds to wait for the daemon to take it")
        ->capture_default_str();
    cmd->callback([&ctx, o] {
      ctx.action = [o] {
        Config config = configOrDefaults(o->config);
        int64_t runId = parseRunId(o->run);
        auto db = openState(config);
        store::Runs runs(*db, kClock, config.effectivePublicUrl());
        auto parent = runs.get(runId);
        if (!parent) throw InputError("there is no run " + o->run);
        for (const auto& h : o->hosts)
          if (!validLogName(h)) throw UsageError("'" + h + "' is not a host name");
        // Refused before anything is queued (the web answers 400 alike): a re-run of a host
        // the run does not have would only make a run that fails at once.
        const auto runHosts = runs.hosts(runId);
        if (auto missing = hostsNotInRun(runHosts, o->hosts); !missing.empty()) {
          std::vector<std::string> names;
          for (const auto& h : runHosts) names.push_back(h.host);
          throw InputError(join(missing, ", ") + (missing.size() == 1 ? " is" : " are") +
                           " not a host of run " + o->run +
                           "; nothing was re-run. Its hosts: " + join(names, ", "));
        }
        Event e;
        e.kind = EventKind::Rerun;
        e.forgeType = "cli";
        e.eventName = "rerun";
        e.deliveryId = "cli-" + crypto::randomToken(12);
        e.runId = runId;
        e.hosts = o->hosts;
        e.stage = o->stage;
        e.repo = parent->view.repo;
        store::Deliveries deliveries(*db, kClock);
        nlohmann::json ej = e;
        auto stored = deliveries.insert({"cli", e.deliveryId, "rerun", ej.dump(), false, ""});
        auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(static_cast<int64_t>(o->wait * 1000));
        while (std::chrono::steady_clock::now() < deadline) {
          auto d = deliveries.get(stored.id);
          if (d && d->state != "queued") {
            if (auto r = runs.byDelivery(stored.id)) {
              std::cout << "run " << r->view.id << " queued: re-run of run " << runId
                        << (o->hosts.empty() ? "" : " (" + join(o->hosts, ", ") + ")") << "\n"
                        << r->view.url << "\n";
              return 0;
            }
            std::cerr << "switchyard: the daemon did not re-run it: " << d->detail << "\n";
            return 1;
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        std::cout << "queued as delivery " << stored.id
                  << "; the daemon has not taken it yet (is `switchyard serve` running with "
                  << "state in " << config.stateDir.string() << "?)\n";
        return 0;
      };
    });
  }
  {
    auto* cmd = app.add_subcommand("logs", "Print (or follow) a run's logs");
    struct Opts {
      std::string config, run, host;
      bool follow = false;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_option("RUN_ID", o->run, "the run")->required();
    cmd->add_option("HOST", o->host, "one host (\"plan\": the plan); default: every log");
    cmd->add_option("--config", o->config, "switchyard.yaml (default: ./.switchyard)");
    cmd->add_flag("--follow,-f", o->follow, "keep printing while the run is running");
    cmd->callback([&ctx, o] {
      ctx.action = [o] {
        Config config = configOrDefaults(o->config);
        int64_t runId = parseRunId(o->run);
        auto db = openState(config);
        store::Runs runs(*db, kClock, config.effectivePublicUrl());
        if (!runs.get(runId)) throw InputError("there is no run " + o->run);
        if (!o->host.empty() && !validLogName(o->host))
          throw UsageError("'" + o->host + "' is not a host name");
        fs::path dir = config.stateDir / "logs" / std::to_string(runId);
        // The files to show: one host's, or the plan's and every host's (in host order).
        auto files = [&] {
          std::vector<std::pair<std::string, fs::path>> out;
          if (!o->host.empty()) {
            out.emplace_back(o->host, os::pathUnder(dir, o->host, ".log"));
            return out;
          }
          fs::path planLog = os::pathUnder(dir, kPlanLogName, ".log");
          if (!fs::exists(planLog) && fs::exists(dir / "plan.log")) planLog = dir / "plan.log";
          out.emplace_back("plan", planLog);
          for (const auto& h : runs.hosts(runId))
            if (validLogName(h.host)) out.emplace_back(h.host, os::pathUnder(dir, h.host, ".log"));
          return out;
        };
        std::map<std::string, std::streamoff> offsets;
        std::string lastHeader;
        bool printedAny = false;
        auto pump = [&] {
          bool any = false;
          auto list = files();
          for (const auto& [name, file] : list) {
            std::ifstream in(file, std::ios::binary);
            if (!in) continue;
            in.seekg(offsets[name]);
            std::string chunk((std::istreambuf_iterator<char>(in)), {});
            if (chunk.empty()) continue;
            if (list.size() > 1 && lastHeader != name) {
              std::cout << (printedAny ? "\n" : "") << "==> " << name << " <==\n";
              lastHeader = name;
            }
            // Logs are scrubbed when written; older files and hand-copied ones may not be.
            std::cout << neutralizeControls(chunk) << std::flush;
            offsets[name] += static_cast<std::streamoff>(chunk.size());
            any = printedAny = true;
          }
          return any;
        };
        pump();
        while (o->follow) {
          auto r = runs.get(runId);
          bool final = !r || isFinal(r->view.state);
          bool grew = pump();
          if (final && !grew) break;
          if (!grew) std::this_thread::sleep_for(std::chrono::milliseconds(250));
        }
        if (!printedAny && !o->follow) {
          std::cerr << "switchyard: no logs for run " << runId
                    << (o->host.empty() ? "" : " host " + o->host) << " yet\n";
          return 1;
        }
        return 0;
      };
    });
  }
}

}  // namespace runner::app
