// A real git repository in a temporary directory, written with the git CLI (tests read it
// back through runner/git, i.e. libgit2, so the two implementations check each other).
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "runner/os/files.h"

namespace tests {

class TempGitRepo {
 public:
  TempGitRepo();
  const std::filesystem::path& path() const { return dir_.path(); }

  // Writes (or, for nullopt, deletes) files, then commits everything. Returns the new sha.
  std::string commit(const std::map<std::string, std::optional<std::string>>& files,
                     const std::string& message = "change");
  void write(const std::string& relPath, const std::string& content);
  void remove(const std::string& relPath);
  // Commits the work tree as it is (git add -A).
  std::string commitAll(const std::string& message = "change");
  // Runs git in the repository; requires success; returns trimmed stdout.
  std::string git(const std::vector<std::string>& args);
  // A bare clone of this repository in another temp dir (kept alive by this object).
  std::filesystem::path bareClone();

 private:
  runner::os::TempDir dir_;
  std::vector<std::unique_ptr<runner::os::TempDir>> extra_;
};

}  // namespace tests
