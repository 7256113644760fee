// One commit of the repository as the planner sees it: files and directories read from the
// git object database (never a checkout), and Nix files parsed once per blob. Two commits of
// one plan share a ParseCache, so a file unchanged between them is parsed once.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runner/git/repository.h"
#include "runner/nix/ast.h"

namespace runner::plan {

struct ParsedFile {
  std::string path;                // repo-relative
  std::string oid;                 // blob id
  std::unique_ptr<nix::Expr> ast;  // null when it does not parse
  std::string error;               // "file:line:col: message" when it does not parse
};

// Parsed files by blob id. Not thread-safe: one per plan.
class ParseCache {
 public:
  std::shared_ptr<const ParsedFile> get(const std::string& oid, const std::string& path,
                                        const std::string& text);
  size_t parsedCount() const { return parsed_; }

 private:
  std::map<std::string, std::shared_ptr<const ParsedFile>> byOid_;
  size_t parsed_ = 0;
};

// The files of one commit, as the planner reads them: from the git object database in
// production (GitCommitFiles), from memory in tests and the fuzz target
// (tests/support/memory_files.h). Paths are repo-relative, '/'-separated; "" is the root.
class CommitFiles {
 public:
  virtual ~CommitFiles() = default;
  // What is at `path`; nullopt when nothing.
  virtual std::optional<git::EntryKind> kindAt(std::string_view path) = 0;
  // The blob at `path`; nullopt when there is none (or it is a tree).
  virtual std::optional<git::Blob> readFile(std::string_view path) = 0;
  // Entries below `dir`: recursive lists every blob/link/submodule below it, non-recursive the
  // direct children, trees included. nullopt when `dir` is not a directory.
  virtual std::optional<std::vector<git::TreeEntry>> listTree(std::string_view dir,
                                                              bool recursive) = 0;
};

// One commit of a repository. REQUIRES: `repo` outlives it.
class GitCommitFiles final : public CommitFiles {
 public:
  GitCommitFiles(git::Repository& repo, std::string commit)
      : repo_(repo), commit_(std::move(commit)) {}
  std::optional<git::EntryKind> kindAt(std::string_view path) override {
    return repo_.kindAt(commit_, path);
  }
  std::optional<git::Blob> readFile(std::string_view path) override {
    return repo_.readFile(commit_, path);
  }
  std::optional<std::vector<git::TreeEntry>> listTree(std::string_view dir,
                                                      bool recursive) override {
    return repo_.listTree(commit_, dir, recursive);
  }

 private:
  git::Repository& repo_;
  std::string commit_;
};

class SourceTree {
 public:
  SourceTree(git::Repository& repo, std::string commit, ParseCache& cache)
      : owned_(std::make_unique<GitCommitFiles>(repo, commit)),
        files_(*owned_),
        commit_(std::move(commit)),
        cache_(cache) {}
  // REQUIRES: `files` outlives the tree. `commit` names it in messages.
  SourceTree(CommitFiles& files, std::string commit, ParseCache& cache)
      : files_(files), commit_(std::move(commit)), cache_(cache) {}

  const std::string& commit() const { return commit_; }
  std::optional<git::EntryKind> kind(const std::string& path);
  bool isDir(const std::string& path) { return kind(path) == git::EntryKind::Tree; }
  bool exists(const std::string& path) { return kind(path).has_value(); }
  std::optional<git::Blob> read(const std::string& path);
  // Direct children of a directory (nullopt when it is not one). Cached.
  const std::vector<git::TreeEntry>* children(const std::string& dir);
  // Every file below `dir`, recursively. Cached.
  const std::vector<git::TreeEntry>& filesBelow(const std::string& dir);
  // The parsed Nix file; null when there is no such file. A file that does not parse is
  // returned with `ast == null` and `error` set.
  std::shared_ptr<const ParsedFile> parse(const std::string& path);

 private:
  std::unique_ptr<CommitFiles> owned_;
  CommitFiles& files_;
  std::string commit_;
  ParseCache& cache_;
  std::map<std::string, std::optional<git::EntryKind>> kinds_;
  std::map<std::string, std::optional<std::vector<git::TreeEntry>>> children_;
  std::map<std::string, std::vector<git::TreeEntry>> below_;
  std::map<std::string, std::shared_ptr<const ParsedFile>> parsed_;
};

// Joins a relative path (as written in a Nix file: "./a", "../b", "c/d") to the directory
// of `fromFile` and normalises it to a repo-relative path ("" is the root). nullopt when it
// leaves the repository.
std::optional<std::string> resolveRelative(std::string_view fromDir, std::string_view rel);
// "a/b/c.nix" -> "a/b"; "c.nix" -> ""
std::string dirName(std::string_view path);

}  // namespace runner::plan
