// Git through its command line, for writing the lab's repositories (runner/git reads
// repositories through libgit2; writing them with the git CLI keeps the two honest).
// Every call is an argv through the ProcessRunner port, with a fixed identity and no
// dependence on the user's global git configuration (no signing, no hooks).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "runner/core/process.h"

namespace runner::lab {

class GitCli {
 public:
  // `procs` must outlive this object. `workTree` need not exist yet (see init()).
  GitCli(ProcessRunner& procs, std::filesystem::path workTree);

  // Creates the directory and `git init -b main` in it (harmless when it is a repository).
  void init() const;
  // Runs `git -C <workTree> args...` and returns stdout without the trailing newline.
  // Throws GitError with git's stderr when git exits non-zero.
  std::string run(const std::vector<std::string>& args) const;
  // `git add -A` + `git commit --allow-empty -m message`; returns the new commit's sha.
  std::string commitAll(const std::string& message) const;
  std::string head() const;  // sha of HEAD

  const std::filesystem::path& workTree() const { return workTree_; }
  ProcessRunner& processes() const { return *procs_; }

 private:
  ProcessRunner* procs_;
  std::filesystem::path workTree_;
};

}  // namespace runner::lab
