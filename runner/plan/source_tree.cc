#include "runner/plan/source_tree.h"

#include "runner/core/error.h"
#include "runner/core/text.h"
#include "runner/nix/parser.h"

namespace runner::plan {

std::shared_ptr<const ParsedFile> ParseCache::get(const std::string& oid, const std::string& path,
                                                  const std::string& text) {
  std::string key = oid + ":" + path;  // same blob under two names: positions name the file
  auto it = byOid_.find(key);
  if (it != byOid_.end()) return it->second;
  auto f = std::make_shared<ParsedFile>();
  f->path = path;
  f->oid = oid;
  ++parsed_;
  try {
    f->ast = nix::parseNix(text, path);
  } catch (const InputError& e) {
    f->error = describe(e);
  }
  byOid_.emplace(key, f);
  return f;
}

std::optional<git::EntryKind> SourceTree::kind(const std::string& path) {
  auto it = kinds_.find(path);
  if (it != kinds_.end()) return it->second;
  auto k = files_.kindAt(path);
  kinds_.emplace(path, k);
  return k;
}

std::optional<git::Blob> SourceTree::read(const std::string& path) { return files_.readFile(path); }

const std::vector<git::TreeEntry>* SourceTree::children(const std::string& dir) {
  auto it = children_.find(dir);
  if (it == children_.end()) it = children_.emplace(dir, files_.listTree(dir, false)).first;
  return it->second ? &*it->second : nullptr;
}

const std::vector<git::TreeEntry>& SourceTree::filesBelow(const std::string& dir) {
  auto it = below_.find(dir);
  if (it == below_.end()) {
    auto l = files_.listTree(dir, true);
    it = below_.emplace(dir, l ? std::move(*l) : std::vector<git::TreeEntry>{}).first;
  }
  return it->second;
}

std::shared_ptr<const ParsedFile> SourceTree::parse(const std::string& path) {
  auto it = parsed_.find(path);
  if (it != parsed_.end()) return it->second;
  std::shared_ptr<const ParsedFile> out;
  if (auto blob = read(path)) out = cache_.get(blob->oid, path, blob->content);
  parsed_.emplace(path, out);
  return out;
}

std::optional<std::string> resolveRelative(std::string_view fromDir, std::string_view rel) {
  std::vector<std::string> parts;
  if (!fromDir.empty())
    for (auto& p : split(fromDir, '/'))
      if (!p.empty()) parts.push_back(p);
  for (auto& p : split(rel, '/')) {
    if (p.empty() || p == ".") continue;
    if (p == "..") {
      if (parts.empty()) return std::nullopt;
      parts.pop_back();
      continue;
    }
    parts.push_back(p);
  }
  return join(parts, "/");
}

std::string dirName(std::string_view path) {
  auto slash = path.rfind('/');
  return slash == std::string_view::npos ? std::string() : std::string(path.substr(0, slash));
}

}  // namespace runner::plan
