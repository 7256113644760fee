#include "runner/os/files.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <grp.h>
#include <pwd.h>
#include <sstream>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "runner/core/error.h"
#include "runner/core/log.h"
#include "runner/core/text.h"

namespace fs = std::filesystem;

namespace runner::os {

std::optional<std::string> readFileIfExists(const fs::path& path) {
  // open(2)/read(2) rather than a stream: the error a caller sees is the one the call gave
  // (a stream leaves errno to chance).
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::nullopt;
    throw InputError(path.string() + ": cannot read: " + std::strerror(errno));
  }
  std::string out;
  char buf[64 * 1024];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      throw InputError(path.string() + ": read error: " + std::strerror(err));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

fs::path pathUnder(const fs::path& base, std::string_view name, std::string_view suffix) {
  auto refuse = [&](const std::string& why) -> fs::path {
    throw InputError("refusing the name \"" + neutralizeControls(name) + "\" as a path under " +
                     base.string() + ": " + why);
  };
  if (name.empty()) return refuse("it is empty");
  if (name.size() > 255) return refuse("it is longer than 255 bytes");
  fs::path out = base;
  size_t start = 0;
  while (start <= name.size()) {
    size_t slash = name.find('/', start);
    if (slash == std::string_view::npos) slash = name.size();
    std::string_view part = name.substr(start, slash - start);
    if (part.empty()) return refuse(start == 0 ? "it is absolute" : "it has an empty component");
    if (part == "." || part == "..")
      return refuse("it has a \"" + std::string(part) + "\" component");
    for (unsigned char c : part)
      if (c < 0x20 || c == 0x7f || c == '\\')
        return refuse("it holds a control character or backslash");
    out /= std::string(part);
    start = slash + 1;
  }
  if (!suffix.empty()) out += std::string(suffix);
  // belt and braces: the lexical result must still start with every component of base
  auto rel = out.lexically_normal().lexically_relative(base.lexically_normal());
  if (rel.empty() || *rel.begin() == "..") return refuse("it leaves the directory");
  return out;
}

std::optional<std::string> writeProblem(const fs::path& dir, uint64_t minFreeBytes) {
  struct statvfs st {};
  if (::statvfs(dir.c_str(), &st) != 0) return dir.string() + ": " + std::strerror(errno);
  if (st.f_flag & ST_RDONLY) return dir.string() + " is on a read-only file system";
  // f_bavail, not f_bfree: root's reserved blocks are not ours to fill (see the header)
  const uint64_t freeBytes = static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
  if (freeBytes < minFreeBytes)
    return dir.string() + ": only " + std::to_string(freeBytes >> 20) + " MiB free (at least " +
           std::to_string(minFreeBytes >> 20) + " MiB needed)";
  const fs::path probe = dir / (".write-check-" + std::to_string(::getpid()) + "-" +
                                std::to_string(reinterpret_cast<uintptr_t>(&st)));
  int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return "cannot create a file in " + dir.string() + ": " + std::strerror(errno);
  std::string block(4096, 'x');
  std::optional<std::string> problem;
  if (::write(fd, block.data(), block.size()) != static_cast<ssize_t>(block.size()) ||
      ::fsync(fd) != 0)
    problem = "cannot write in " + dir.string() + ": " + std::strerror(errno);
  ::close(fd);
  ::unlink(probe.c_str());
  return problem;
}

std::string readFile(const fs::path& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw InputError(path.string() + ": is a directory");
  auto content = readFileIfExists(path);
  if (!content) throw InputError(path.string() + ": no such file");
  return *content;
}

std::string readSecretFile(const fs::path& path, Redactor* redactor) {
  std::string s = readFile(path);
  if (!s.empty() && s.back() == '\n') s.pop_back();
  if (!s.empty() && s.back() == '\r') s.pop_back();
  if (s.empty()) throw InputError(path.string() + ": secret file is empty");
  if (redactor) redactor->add(s);
  return s;
}

void writeFileAtomic(const fs::path& path, std::string_view content, fs::perms perms) {
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  std::string tmpl = path.string() + ".tmp.XXXXXX";
  int fd = ::mkstemp(tmpl.data());
  if (fd < 0) throw SysError(errno, "creating a temporary file next to " + path.string());
  size_t off = 0;
  while (off < content.size()) {
    ssize_t w = ::write(fd, content.data() + off, content.size() - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      ::unlink(tmpl.c_str());
      throw SysError(e, "writing " + path.string());
    }
    off += static_cast<size_t>(w);
  }
  ::fchmod(fd, static_cast<mode_t>(perms));
  ::close(fd);
  if (::rename(tmpl.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmpl.c_str());
    throw SysError(e, "renaming into " + path.string());
  }
}

TempDir::TempDir(std::string_view prefix) {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl =
      std::string(base && *base ? base : "/tmp") + "/" + std::string(prefix) + ".XXXXXX";
  if (!::mkdtemp(tmpl.data())) throw SysError(errno, "creating a temporary directory");
  path_ = tmpl;
}

TempDir::~TempDir() {
  if (keep_) return;
  std::error_code ec;
  // Make read-only trees (copies of store paths) removable first.
  for (auto it = fs::recursive_directory_iterator(
           path_, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_directory(ec) && !it->is_symlink(ec))
      fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, ec);
  }
  fs::remove_all(path_, ec);
}

std::optional<fs::path> findInPath(std::string_view program) {
  if (program.find('/') != std::string_view::npos) {
    if (::access(std::string(program).c_str(), X_OK) == 0) return fs::path(program);
    return std::nullopt;
  }
  const char* p = std::getenv("PATH");
  for (const auto& dir : split(p ? p : "/usr/bin:/bin", ':')) {
    if (dir.empty()) continue;
    fs::path cand = fs::path(dir) / program;
    if (::access(cand.c_str(), X_OK) == 0) return cand;
  }
  return std::nullopt;
}

std::optional<Account> lookupAccount(const std::string& name) {
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* found = nullptr;
  int rc = ::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found);
  if (rc != 0 && rc != ENOENT && rc != ESRCH) throw SysError(rc, "looking up the account " + name);
  if (!found) return std::nullopt;
  Account a;
  a.name = name;
  a.uid = pw.pw_uid;
  a.gid = pw.pw_gid;
  int n = 64;
  std::vector<gid_t> gids(static_cast<size_t>(n));
  if (::getgrouplist(name.c_str(), pw.pw_gid, gids.data(), &n) < 0) {
    gids.resize(static_cast<size_t>(n));
    ::getgrouplist(name.c_str(), pw.pw_gid, gids.data(), &n);
  }
  gids.resize(static_cast<size_t>(std::max(n, 0)));
  for (gid_t g : gids) {
    group gr{};
    group* gfound = nullptr;
    if (::getgrgid_r(g, &gr, buf.data(), buf.size(), &gfound) == 0 && gfound)
      a.groups.emplace_back(gr.gr_name);
  }
  return a;
}

void changeOwner(const fs::path& path, uint32_t uid, uint32_t gid) {
  if (::chown(path.c_str(), uid, gid) != 0)
    throw SysError(errno, "changing the owner of " + path.string());
}

}  // namespace runner::os
