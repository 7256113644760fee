// `switchyard lockdiff` and `switchyard diff`: the flake.lock and git views of a change.
#include <filesystem>
#include <iostream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "runner/app/commands.h"
#include "runner/core/error.h"
#include "runner/git/repository.h"
#include "runner/nix/flake_lock.h"
#include "runner/os/files.h"

namespace runner::app {
namespace {

nix::FlakeLock loadLock(const std::string& path) {
  return nix::parseFlakeLock(os::readFile(path), path);
}

std::string formatFileChanges(const std::vector<FileChange>& files) {
  std::string out;
  for (const auto& f : files) {
    std::string status = toString(f.status);
    out += status + std::string(status.size() < 11 ? 11 - status.size() : 1, ' ') + f.path;
    if (f.oldPath) out += " (from " + *f.oldPath + ")";
    out += "\n";
  }
  if (files.empty()) out = "no file changed\n";
  return out;
}

}  // namespace

void registerLockCommands(CLI::App& app, CommandContext& ctx) {
  {
    auto* cmd = app.add_subcommand("lockdiff", "Compare two flake.lock files");
    auto oldPath = std::make_shared<std::string>();
    auto newPath = std::make_shared<std::string>();
    auto asJson = std::make_shared<bool>(false);
    cmd->add_option("OLD", *oldPath, "the old flake.lock")->required();
    cmd->add_option("NEW", *newPath, "the new flake.lock")->required();
    cmd->add_flag("--json", *asJson, "print JSON (the plan's inputs_changed shape)");
    cmd->callback([&ctx, oldPath, newPath, asJson] {
      ctx.action = [=] {
        auto changes = nix::diffLocks(loadLock(*oldPath), loadLock(*newPath));
        if (*asJson)
          std::cout << nlohmann::json{{"inputs_changed", changes}}.dump(2) << "\n";
        else
          std::cout << nix::formatLockDiff(changes);
        return 0;
      };
    });
  }
  {
    auto* cmd = app.add_subcommand("diff", "Files changed between two commits (and the lock diff)");
    auto repo = std::make_shared<std::string>(".");
    auto from = std::make_shared<std::string>();
    auto to = std::make_shared<std::string>();
    auto asJson = std::make_shared<bool>(false);
    cmd->add_option("--repo", *repo, "repository (work tree or bare)")->capture_default_str();
    cmd->add_option("--from", *from, "old revision")->required();
    cmd->add_option("--to", *to, "new revision")->required();
    cmd->add_flag("--json", *asJson, "print JSON");
    cmd->callback([&ctx, repo, from, to, asJson] {
      ctx.action = [=] {
        auto r = git::Repository::open(*repo);
        std::string a = r->resolveCommit(*from), b = r->resolveCommit(*to);
        auto files = r->diff(a, b);
        std::optional<std::vector<InputChange>> inputs;
        bool lockChanged = std::any_of(files.begin(), files.end(), [](const FileChange& f) {
          return f.path == "flake.lock" || (f.oldPath && *f.oldPath == "flake.lock");
        });
        if (lockChanged) {
          auto oldBlob = r->readFile(a, "flake.lock");
          auto newBlob = r->readFile(b, "flake.lock");
          auto parse = [&](const std::optional<git::Blob>& blob, const std::string& sha) {
            if (!blob)
              return nix::parseFlakeLock(R"({"version":7,"root":"root","nodes":{"root":{}}})", "");
            return nix::parseFlakeLock(blob->content, "flake.lock at " + sha.substr(0, 12));
          };
          inputs = nix::diffLocks(parse(oldBlob, a), parse(newBlob, b));
        }
        if (*asJson) {
          nlohmann::json j{{"from", a}, {"to", b}, {"files_changed", files}};
          j["inputs_changed"] = inputs ? nlohmann::json(*inputs) : nlohmann::json(nullptr);
          std::cout << j.dump(2) << "\n";
        } else {
          std::cout << formatFileChanges(files);
          if (inputs) std::cout << "\nflake.lock:\n" << nix::formatLockDiff(*inputs);
        }
        return 0;
      };
    });
  }
}

}  // namespace runner::app
