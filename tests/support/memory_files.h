// A commit's files held in memory (plan::CommitFiles), for planner tests and the evaluator's
// fuzz target: no git repository, no processes. Directories are implied by the files' paths.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runner/plan/source_tree.h"

namespace tests {

class MemoryFiles final : public runner::plan::CommitFiles {
 public:
  MemoryFiles() = default;
  explicit MemoryFiles(std::map<std::string, std::string> files) : files_(std::move(files)) {}

  // Adds or replaces a file; `path` is repo-relative ("hosts/a/default.nix").
  void put(const std::string& path, std::string content) { files_[path] = std::move(content); }
  const std::map<std::string, std::string>& files() const { return files_; }

  std::optional<runner::git::EntryKind> kindAt(std::string_view path) override {
    if (files_.count(std::string(path))) return runner::git::EntryKind::Blob;
    if (isDir(path)) return runner::git::EntryKind::Tree;
    return std::nullopt;
  }
  std::optional<runner::git::Blob> readFile(std::string_view path) override {
    auto it = files_.find(std::string(path));
    if (it == files_.end()) return std::nullopt;
    return runner::git::Blob{oidOf(it->second), it->second};
  }
  std::optional<std::vector<runner::git::TreeEntry>> listTree(std::string_view dir,
                                                              bool recursive) override {
    if (!isDir(dir)) return std::nullopt;
    std::string prefix = dir.empty() ? "" : std::string(dir) + "/";
    std::vector<runner::git::TreeEntry> out;
    std::string lastDir;
    for (auto it = files_.lower_bound(prefix); it != files_.end(); ++it) {
      const std::string& p = it->first;
      if (p.compare(0, prefix.size(), prefix) != 0) break;
      auto slash = p.find('/', prefix.size());
      if (recursive || slash == std::string::npos) {
        out.push_back({p, oidOf(it->second), runner::git::EntryKind::Blob});
      } else if (std::string sub = p.substr(0, slash); sub != lastDir) {
        out.push_back({sub, oidOf(sub), runner::git::EntryKind::Tree});
        lastDir = sub;
      }
    }
    return out;
  }

  // A stable id of a content (FNV-1a and the length), standing in for a blob id.
  static std::string oidOf(std::string_view content) {
    uint64_t h = 1469598103934665603ull;
    for (unsigned char c : content) h = (h ^ c) * 1099511628211ull;
    char buf[40];
    std::snprintf(buf, sizeof buf, "%016llx%08zx", static_cast<unsigned long long>(h),
                  content.size());
    return buf;
  }

 private:
  bool isDir(std::string_view dir) const {
    if (dir.empty()) return true;
    std::string prefix = std::string(dir) + "/";
    auto it = files_.lower_bound(prefix);
    return it != files_.end() && it->first.compare(0, prefix.size(), prefix) == 0;
  }

  std::map<std::string, std::string> files_;
};

}  // namespace tests
