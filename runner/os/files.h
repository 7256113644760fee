// Files and directories: whole-file reads and atomic writes, and temporary directories that
// remove themselves.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace runner {
class Redactor;
}

namespace runner::os {

// Reads a whole file. Throws InputError naming the path if it cannot be read.
std::string readFile(const std::filesystem::path& path);
// Like readFile, but nullopt when the file does not exist.
std::optional<std::string> readFileIfExists(const std::filesystem::path& path);
// Reads a secret from a file: the content with one trailing newline removed, registered with
// `redactor` (when given) before it is returned, so no log line can show it.
// Throws InputError naming the path (never the content) if it is missing or empty.
std::string readSecretFile(const std::filesystem::path& path, Redactor* redactor);

// The one way text from outside (a host name, a repository name, a run id, a forge name)
// becomes a path: `base` / `name` + `suffix`. `name` may hold '/'-separated components
// ("owner/repo"); each must be non-empty, not "." or "..", and free of NUL, backslash and
// control characters, so the result always lies inside `base` — an absolute name or one that
// climbs out is refused, never "cleaned". Throws InputError naming what was refused.
std::filesystem::path pathUnder(const std::filesystem::path& base, std::string_view name,
                                std::string_view suffix = "");

// Whether new files can be written under `dir` right now: at least `minFreeBytes` free for
// unprivileged writers, and a small file created, written, synced and removed. nullopt when
// they can, else why not ("No space left on device", "only 3 MiB free", …). Never throws.
// The blocks the file system reserves for root (ext4: 5 % by default) do not count, although
// the daemon runs as root and could write into them: that reserve is there so the machine stays
// administrable (journald, a root login, package updates) when the disk fills, and run logs
// must not take it.
std::optional<std::string> writeProblem(const std::filesystem::path& dir,
                                        uint64_t minFreeBytes = 16u << 20);

// Writes via a temp file in the same directory + rename, so readers never see half a file.
// Creates missing parent directories. Throws SysError.
void writeFileAtomic(const std::filesystem::path& path, std::string_view content,
                     std::filesystem::perms perms = std::filesystem::perms(0644));

// A fresh directory under $TMPDIR (or /tmp), removed recursively on destruction.
class TempDir {
 public:
  explicit TempDir(std::string_view prefix = "switchyard");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  // Keep the directory (for debugging a failed test).
  void keep() { keep_ = true; }

 private:
  std::filesystem::path path_;
  bool keep_ = false;
};

// Full path of a program found in $PATH, or nullopt.
std::optional<std::filesystem::path> findInPath(std::string_view program);

// A local account (passwd and group databases).
struct Account {
  std::string name;
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<std::string> groups;  // names of its primary and supplementary groups
};
// The account called `name`, or nullopt when there is none. Throws SysError when the
// databases cannot be read.
std::optional<Account> lookupAccount(const std::string& name);

// chown(2) that throws SysError naming the path.
void changeOwner(const std::filesystem::path& path, uint32_t uid, uint32_t gid);

}  // namespace runner::os
