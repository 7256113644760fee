#include "runner/git/repository.h"

#include <map>
#include <mutex>

#include <git2.h>

#include "runner/core/c_handle.h"
#include "runner/core/error.h"

namespace fs = std::filesystem;

namespace runner::git {
namespace {

using RepoPtr = CHandle<git_repository, git_repository_free>;
using CommitPtr = CHandle<git_commit, git_commit_free>;
using TreePtr = CHandle<git_tree, git_tree_free>;
using TreeEntryPtr = CHandle<git_tree_entry, git_tree_entry_free>;
using BlobPtr = CHandle<git_blob, git_blob_free>;
using ObjectPtr = CHandle<git_object, git_object_free>;
using DiffPtr = CHandle<git_diff, git_diff_free>;
using RemotePtr = CHandle<git_remote, git_remote_free>;
using ReferencePtr = CHandle<git_reference, git_reference_free>;

void ensureInit() {
  static std::once_flag once;
  std::call_once(once, [] { git_libgit2_init(); });
}

// The one check for libgit2 results (STYLE.md P6): reads the thread-local error at once.
void checkGit(int rc, std::string_view doing) {
  if (rc >= 0) return;
  const git_error* e = git_error_last();
  throw GitError(std::string(doing) + ": " + (e && e->message ? e->message : "unknown error") +
                 " (libgit2 " + std::to_string(rc) + ")");
}

std::string oidHex(const git_oid* oid) {
  char buf[GIT_OID_HEXSZ + 1];
  git_oid_tostr(buf, sizeof buf, oid);
  return buf;
}

git_oid parseOid(std::string_view hex) {
  git_oid oid;
  if (hex.size() != GIT_OID_HEXSZ || git_oid_fromstrn(&oid, hex.data(), hex.size()) != 0)
    throw InputError("not a full object id: '" + std::string(hex) + "'");
  return oid;
}

EntryKind kindOf(git_filemode_t mode) {
  switch (mode) {
    case GIT_FILEMODE_TREE:
      return EntryKind::Tree;
    case GIT_FILEMODE_BLOB_EXECUTABLE:
      return EntryKind::Executable;
    case GIT_FILEMODE_LINK:
      return EntryKind::Symlink;
    case GIT_FILEMODE_COMMIT:
      return EntryKind::Submodule;
    default:
      return EntryKind::Blob;
  }
}

FileStatus statusOf(git_delta_t d) {
  switch (d) {
    case GIT_DELTA_ADDED:
      return FileStatus::Added;
    case GIT_DELTA_DELETED:
      return FileStatus::Deleted;
    case GIT_DELTA_RENAMED:
      return FileStatus::Renamed;
    case GIT_DELTA_COPIED:
      return FileStatus::Copied;
    case GIT_DELTA_TYPECHANGE:
      return FileStatus::TypeChange;
    default:
      return FileStatus::Modified;
  }
}

std::string joinPath(std::string_view dir, std::string_view name) {
  if (dir.empty()) return std::string(name);
  return std::string(dir) + "/" + std::string(name);
}

std::string normalise(std::string_view path) {
  while (!path.empty() && path.front() == '/') path.remove_prefix(1);
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  if (path == ".") return "";
  if (path.substr(0, 2) == "./") path.remove_prefix(2);
  return std::string(path);
}

}  // namespace

struct Repository::Impl {
  RepoPtr repo;
  std::map<std::string, TreePtr, std::less<>> trees;  // commit sha -> its tree

  git_tree* treeFor(std::string_view commitSha) {
    auto it = trees.find(commitSha);
    if (it != trees.end()) return it->second.get();
    git_oid oid = parseOid(commitSha);
    CommitPtr c;
    checkGit(git_commit_lookup(Out(c), repo.get(), &oid),
             "looking up commit " + std::string(commitSha));
    TreePtr t;
    checkGit(git_commit_tree(Out(t), c.get()), "reading the tree of " + std::string(commitSha));
    if (trees.size() > 64) trees.clear();
    return trees.emplace(std::string(commitSha), std::move(t)).first->second.get();
  }

  // The subtree at `dir` ("" = root), or null when absent or not a tree.
  TreePtr subtree(std::string_view commitSha, const std::string& dir, git_tree** rootOut) {
    git_tree* root = treeFor(commitSha);
    *rootOut = root;
    if (dir.empty()) return nullptr;
    TreeEntryPtr e;
    int rc = git_tree_entry_bypath(Out(e), root, dir.c_str());
    if (rc == GIT_ENOTFOUND) return nullptr;
    checkGit(rc, "looking up " + dir);
    if (git_tree_entry_type(e.get()) != GIT_OBJECT_TREE) return nullptr;
    TreePtr t;
    checkGit(git_tree_lookup(Out(t), repo.get(), git_tree_entry_id(e.get())), "reading " + dir);
    return t;
  }

  void walk(git_tree* tree, const std::string& prefix, bool recursive,
            std::vector<TreeEntry>& out) {
    size_t n = git_tree_entrycount(tree);
    for (size_t i = 0; i < n; ++i) {
      const git_tree_entry* e = git_tree_entry_byindex(tree, i);
      std::string path = joinPath(prefix, git_tree_entry_name(e));
      EntryKind kind = kindOf(git_tree_entry_filemode(e));
      if (kind == EntryKind::Tree && recursive) {
        TreePtr sub;
        checkGit(git_tree_lookup(Out(sub), repo.get(), git_tree_entry_id(e)), "reading " + path);
        walk(sub.get(), path, true, out);
        continue;
      }
      out.push_back({path, oidHex(git_tree_entry_id(e)), kind});
    }
  }
};

Repository::Repository(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Repository::~Repository() = default;

std::unique_ptr<Repository> Repository::open(const fs::path& path) {
  ensureInit();
  std::error_code ec;
  if (!fs::exists(path, ec)) throw InputError(path.string() + ": no such directory");
  auto impl = std::make_unique<Impl>();
  int rc = git_repository_open_ext(Out(impl->repo), path.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH,
                                   nullptr);
  if (rc == GIT_ENOTFOUND) throw InputError(path.string() + ": not a git repository");
  checkGit(rc, "opening repository " + path.string());
  return std::unique_ptr<Repository>(new Repository(std::move(impl)));
}

std::unique_ptr<Repository> Repository::openOrInitBare(const fs::path& path) {
  ensureInit();
  auto impl = std::make_unique<Impl>();
  std::error_code ec;
  if (fs::exists(path / "HEAD", ec)) {
    checkGit(git_repository_open_bare(Out(impl->repo), path.c_str()),
             "opening mirror " + path.string());
  } else {
    fs::create_directories(path);
    checkGit(git_repository_init(Out(impl->repo), path.c_str(), /*is_bare=*/1),
             "creating mirror " + path.string());
  }
  return std::unique_ptr<Repository>(new Repository(std::move(impl)));
}

fs::path Repository::gitDir() const { return git_repository_path(impl_->repo.get()); }

std::optional<fs::path> Repository::workDir() const {
  const char* w = git_repository_workdir(impl_->repo.get());
  if (!w) return std::nullopt;
  return fs::path(w);
}

std::string Repository::resolveCommit(std::string_view rev) {
  if (rev.empty()) throw InputError("empty revision");
  ObjectPtr obj;
  std::string spec(rev);
  int rc = git_revparse_single(Out(obj), impl_->repo.get(), spec.c_str());
  if (rc == GIT_ENOTFOUND || rc == GIT_EINVALIDSPEC || rc == GIT_EAMBIGUOUS) {
    throw InputError("unknown revision '" + spec + "' in " + gitDir().string() +
                     (rc == GIT_EAMBIGUOUS ? " (ambiguous)" : ""));
  }
  checkGit(rc, "resolving revision '" + spec + "'");
  ObjectPtr commit;
  rc = git_object_peel(Out(commit), obj.get(), GIT_OBJECT_COMMIT);
  if (rc < 0) throw InputError("revision '" + spec + "' does not name a commit");
  return oidHex(git_object_id(commit.get()));
}

CommitInfo Repository::commit(std::string_view sha) {
  git_oid oid = parseOid(sha);
  CommitPtr c;
  checkGit(git_commit_lookup(Out(c), impl_->repo.get(), &oid),
           "looking up commit " + std::string(sha));
  CommitInfo info;
  info.sha = std::string(sha);
  info.tree = oidHex(git_commit_tree_id(c.get()));
  const char* summary = git_commit_summary(c.get());
  info.summary = summary ? summary : "";
  const git_signature* a = git_commit_author(c.get());
  info.author = a && a->name ? a->name : "";
  info.time = git_commit_time(c.get());
  for (unsigned i = 0; i < git_commit_parentcount(c.get()); ++i)
    info.parents.push_back(oidHex(git_commit_parent_id(c.get(), i)));
  return info;
}

std::string Repository::treeOf(std::string_view commitSha) {
  return oidHex(git_tree_id(impl_->treeFor(commitSha)));
}

std::optional<Blob> Repository::readFile(std::string_view commitSha, std::string_view path) {
  std::string p = normalise(path);
  if (p.empty()) return std::nullopt;
  git_tree* root = impl_->treeFor(commitSha);
  TreeEntryPtr e;
  int rc = git_tree_entry_bypath(Out(e), root, p.c_str());
  if (rc == GIT_ENOTFOUND) return std::nullopt;
  checkGit(rc, "looking up " + p);
  if (git_tree_entry_type(e.get()) != GIT_OBJECT_BLOB) return std::nullopt;
  BlobPtr b;
  checkGit(git_blob_lookup(Out(b), impl_->repo.get(), git_tree_entry_id(e.get())), "reading " + p);
  const char* data = static_cast<const char*>(git_blob_rawcontent(b.get()));
  return Blob{oidHex(git_blob_id(b.get())),
              std::string(data, static_cast<size_t>(git_blob_rawsize(b.get())))};
}

std::optional<EntryKind> Repository::kindAt(std::string_view commitSha, std::string_view path) {
  std::string p = normalise(path);
  git_tree* root = impl_->treeFor(commitSha);
  if (p.empty()) return EntryKind::Tree;
  TreeEntryPtr e;
  int rc = git_tree_entry_bypath(Out(e), root, p.c_str());
  if (rc == GIT_ENOTFOUND) return std::nullopt;
  checkGit(rc, "looking up " + p);
  return kindOf(git_tree_entry_filemode(e.get()));
}

std::optional<std::vector<TreeEntry>> Repository::listTree(std::string_view commitSha,
                                                           std::string_view dir, bool recursive) {
  std::string d = normalise(dir);
  git_tree* root = nullptr;
  TreePtr sub = impl_->subtree(commitSha, d, &root);
  if (!d.empty() && !sub) return std::nullopt;
  std::vector<TreeEntry> out;
  impl_->walk(sub ? sub.get() : root, d, recursive, out);
  return out;
}

std::vector<FileChange> Repository::diff(std::string_view fromSha, std::string_view toSha) {
  git_tree* a = impl_->treeFor(fromSha);
  git_tree* b = impl_->treeFor(toSha);
  git_diff_options opts = GIT_DIFF_OPTIONS_INIT;
  DiffPtr d;
  checkGit(git_diff_tree_to_tree(Out(d), impl_->repo.get(), a, b, &opts), "diffing trees");
  git_diff_find_options fopts = GIT_DIFF_FIND_OPTIONS_INIT;
  fopts.flags = GIT_DIFF_FIND_RENAMES | GIT_DIFF_FIND_FOR_UNTRACKED;
  checkGit(git_diff_find_similar(d.get(), &fopts), "detecting renames");
  std::vector<FileChange> out;
  size_t n = git_diff_num_deltas(d.get());
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const git_diff_delta* delta = git_diff_get_delta(d.get(), i);
    FileChange fc;
    fc.status = statusOf(delta->status);
    fc.path = delta->new_file.path ? delta->new_file.path : delta->old_file.path;
    if (fc.status == FileStatus::Deleted && delta->old_file.path) fc.path = delta->old_file.path;
    if ((fc.status == FileStatus::Renamed || fc.status == FileStatus::Copied) &&
        delta->old_file.path)
      fc.oldPath = delta->old_file.path;
    out.push_back(std::move(fc));
  }
  return out;
}

bool Repository::isAncestor(std::string_view ancestor, std::string_view descendant) {
  git_oid a = parseOid(ancestor), d = parseOid(descendant);
  if (git_oid_equal(&a, &d)) return true;
  int rc = git_graph_descendant_of(impl_->repo.get(), &d, &a);
  checkGit(rc, "checking ancestry");
  return rc == 1;
}

std::optional<std::string> Repository::refTarget(std::string_view ref) {
  git_oid oid;
  std::string r(ref);
  int rc = git_reference_name_to_id(&oid, impl_->repo.get(), r.c_str());
  if (rc == GIT_ENOTFOUND || rc == GIT_EINVALIDSPEC) return std::nullopt;
  checkGit(rc, "reading reference " + r);
  return oidHex(&oid);
}

void Repository::fetch(const std::string& url, const std::vector<std::string>& refspecs) {
  RemotePtr remote;
  checkGit(git_remote_create_anonymous(Out(remote), impl_->repo.get(), url.c_str()),
           "preparing a fetch from " + url);
  std::vector<char*> specs;
  specs.reserve(refspecs.size());
  std::vector<std::string> store(refspecs);
  for (auto& s : store) specs.push_back(s.data());
  git_strarray arr{specs.data(), specs.size()};
  git_fetch_options opts = GIT_FETCH_OPTIONS_INIT;
  opts.prune = GIT_FETCH_NO_PRUNE;
  opts.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
  checkGit(git_remote_fetch(remote.get(), &arr, &opts, "switchyard fetch"), "fetching " + url);
  impl_->trees.clear();
}

void Repository::setRef(std::string_view ref, std::string_view sha) {
  git_oid oid = parseOid(sha);
  ReferencePtr out;
  std::string r(ref);
  checkGit(
      git_reference_create(Out(out), impl_->repo.get(), r.c_str(), &oid, /*force=*/1, "switchyard"),
      "setting " + r);
}

}  // namespace runner::git
