#include "tests/support/temp_git_repo.h"

#include "runner/os/files.h"
#include "tests/support/run.h"

namespace fs = std::filesystem;

namespace tests {

TempGitRepo::TempGitRepo() : dir_("sy-test-repo") {
  git({"init", "-q", "-b", "main"});
  git({"config", "user.name", "Switchyard Test"});
  git({"config", "user.email", "test@example.invalid"});
  git({"config", "commit.gpgsign", "false"});
}

std::string TempGitRepo::git(const std::vector<std::string>& args) {
  std::vector<std::string> full = {"-C", path().string()};
  full.insert(full.end(), args.begin(), args.end());
  return runOk("git", full);
}

void TempGitRepo::write(const std::string& relPath, const std::string& content) {
  runner::os::writeFileAtomic(path() / relPath, content);
}

void TempGitRepo::remove(const std::string& relPath) { fs::remove_all(path() / relPath); }

std::string TempGitRepo::commitAll(const std::string& message) {
  git({"add", "-A"});
  git({"commit", "-q", "--allow-empty", "-m", message});
  return git({"rev-parse", "HEAD"});
}

std::string TempGitRepo::commit(const std::map<std::string, std::optional<std::string>>& files,
                                const std::string& message) {
  for (const auto& [p, content] : files) {
    if (content)
      write(p, *content);
    else
      remove(p);
  }
  return commitAll(message);
}

fs::path TempGitRepo::bareClone() {
  extra_.push_back(std::make_unique<runner::os::TempDir>("sy-test-bare"));
  fs::path dest = extra_.back()->path() / "repo.git";
  runOk("git", {"clone", "-q", "--bare", path().string(), dest.string()});
  return dest;
}

}  // namespace tests
