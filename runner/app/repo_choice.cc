#include "runner/app/repo_choice.h"

#include "runner/core/error.h"
#include "runner/scheduler/mirrors.h"

namespace fs = std::filesystem;

namespace runner::app {
namespace {

std::string labelOf(const RepoConfig& r) {
  return r.forge ? *r.forge + ":" + r.name : r.name + " (no forge)";
}

std::vector<const RepoConfig*> onForge(const std::vector<const RepoConfig*>& in,
                                       const std::string& forge) {
  if (forge.empty()) return in;
  std::vector<const RepoConfig*> out;
  for (const auto* r : in)
    if (r->forge.value_or("") == forge) out.push_back(r);
  return out;
}

// One of `candidates` (all fitting `what`), narrowed to `forge`; throws when that is not one.
const RepoConfig* pick(const std::vector<const RepoConfig*>& candidates, const std::string& forge,
                       const std::string& what) {
  auto fit = onForge(candidates, forge);
  if (fit.size() == 1) return fit.front();
  if (fit.empty())
    throw UsageError(what + " is not configured on forge '" + forge +
                     "'; it is: " + describeRepos(candidates));
  std::string options;
  for (const auto* r : fit)
    if (r->forge) options += (options.empty() ? "--forge " : " or --forge ") + *r->forge;
  throw UsageError(what + " is ambiguous: " + describeRepos(fit) + " — pass " +
                   (options.empty() ? std::string("a directory as --repo") : options));
}

}  // namespace

std::string describeRepos(const std::vector<const RepoConfig*>& repos) {
  std::string out;
  for (const auto* r : repos) out += (out.empty() ? "" : ", ") + labelOf(*r);
  return out;
}

RepoChoice chooseRepo(const Config* config, const std::string& repoArg, const std::string& forge) {
  RepoChoice out;
  out.gitDir = repoArg;
  if (!config) {
    if (!forge.empty()) throw UsageError("--forge needs --config (the forges are named there)");
    return out;
  }
  if (!forge.empty() && !config->forges.count(forge))
    throw UsageError("--forge: no forge named '" + forge + "' in the config");
  std::error_code ec;
  const bool isDir = fs::is_directory(repoArg, ec);
  if (isDir) {
    std::vector<const RepoConfig*> atPath;
    auto want = fs::weakly_canonical(repoArg, ec);
    for (const auto& r : config->repos)
      if (r.path && fs::weakly_canonical(*r.path, ec) == want) atPath.push_back(&r);
    if (!atPath.empty()) {
      out.repo = pick(atPath, forge, "the repository at " + repoArg);
      return out;
    }
  } else if (auto named = config->reposNamed(repoArg); !named.empty()) {
    out.repo = pick(named, forge, "repository '" + repoArg + "'");
    out.gitDir =
        out.repo->path ? *out.repo->path : scheduler::mirrorPath(config->stateDir, *out.repo);
    if (!fs::exists(out.gitDir, ec))
      throw InputError("no mirror of " + labelOf(*out.repo) + " at " + out.gitDir.string() +
                       " yet (the daemon fetches it on the first run); pass a clone as --repo");
    return out;
  }
  std::vector<const RepoConfig*> all;
  for (const auto& r : config->repos) all.push_back(&r);
  if (forge.empty()) {
    if (all.size() == 1) out.repo = all.front();
    return out;
  }
  auto fit = onForge(all, forge);
  if (fit.empty())
    throw UsageError("--forge: no repository is configured on forge '" + forge + "'");
  if (fit.size() > 1)
    throw UsageError("--forge " + forge + " has several repositories (" + describeRepos(fit) +
                     "): pass one of them as --repo");
  out.repo = fit.front();
  return out;
}

}  // namespace runner::app
