// Which configured repository a CLI command means (issue 17: a repository is (forge, name),
// so the same owner/name may be configured on a GitHub and on a Gitea). `--repo` takes a
// directory (a work tree or bare repository) or a configured name; `--forge` picks among
// repositories that share a name or a path. An ambiguous choice is a usage error that lists
// the candidates, never a silent first match.
#pragma once

#include <filesystem>
#include <string>

#include "runner/core/config.h"

namespace runner::app {

struct RepoChoice {
  const RepoConfig* repo = nullptr;  // null: no configured repository applies (defaults)
  std::filesystem::path gitDir;      // what to read: the directory given, or the mirror
};

// `repoArg` is `--repo` (default "."), `forge` is `--forge` ("" when not given).
//  * a directory some repositories have as `path`: the one of them (on `forge`);
//  * else a configured name (owner/name, without case) that is not a directory here: the
//    repository of that name (on `forge`), read from its `path` or its mirror in state_dir;
//  * else the directory itself, with the settings of the only repository (on `forge`) when
//    there is exactly one, else none (and none at all without a config).
// Throws UsageError naming the candidates when several fit and `forge` does not decide, when
// `forge` is not a configured forge, or when it names a forge none of the candidates is on.
RepoChoice chooseRepo(const Config* config, const std::string& repoArg, const std::string& forge);

// The candidates' names for an error: "hub:alice/infra, home:alice/infra".
std::string describeRepos(const std::vector<const RepoConfig*>& repos);

}  // namespace runner::app
