#include "runner/lab/git_cli.h"

#include "runner/core/error.h"
#include "runner/core/text.h"

namespace runner::lab {

GitCli::GitCli(ProcessRunner& procs, std::filesystem::path workTree)
    : procs_(&procs), workTree_(std::move(workTree)) {}

void GitCli::init() const {
  std::filesystem::create_directories(workTree_);
  run({"init", "-q", "-b", "main"});
}

std::string GitCli::run(const std::vector<std::string>& args) const {
  RunOptions o;
  o.program = "git";
  o.args = {"-C", workTree_.string(),         "-c", "commit.gpgsign=false",
            "-c", "core.hooksPath=/dev/null", "-c", "init.defaultBranch=main"};
  o.args.insert(o.args.end(), args.begin(), args.end());
  o.env = {{"GIT_AUTHOR_NAME", "Switchyard Lab"},
           {"GIT_AUTHOR_EMAIL", "lab@switchyard.invalid"},
           {"GIT_COMMITTER_NAME", "Switchyard Lab"},
           {"GIT_COMMITTER_EMAIL", "lab@switchyard.invalid"},
           {"GIT_CONFIG_NOSYSTEM", "1"},
           {"GIT_TERMINAL_PROMPT", "0"}};
  o.timeout = std::chrono::minutes(2);
  RunResult r = procs_->run(o);
  if (!r.ok()) {
    throw GitError("git " + join(args, " ") + " in " + workTree_.string() + " " +
                   r.describeStatus() + ": " + std::string(trim(r.errTail)));
  }
  std::string out = std::move(r.out);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

std::string GitCli::commitAll(const std::string& message) const {
  run({"add", "-A"});
  run({"commit", "-q", "--allow-empty", "--no-verify", "-m", message});
  return head();
}

std::string GitCli::head() const { return run({"rev-parse", "HEAD"}); }

}  // namespace runner::lab
