// libFuzzer target for the static planner's evaluation of a flake (runner/plan: source_tree,
// evaluator, deps, static_planner) on fuzzed Nix: hostile flake.nix and module files from a
// fork must plan, or fail with InputError or PlanError — never crash, hang or take unbounded
// memory. The files live in memory (tests/support/memory_files.h): no git, no processes.
//
// Input: the text up to the first line starting with "#@ " is flake.nix; each "#@ <path>" line
// starts another file of the new commit, "#@ old:<path>" one of the old commit only (it
// replaces the new commit's file of that name there). Without "old:" files the old commit is
// the new one with flake.nix edited, so the fingerprints of flake-level code are compared.
// Seeds: tests/fuzz/seeds/static_plan.
//
// Oracle: besides the sanitizers, a plan of the new commit against itself affects no host.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "runner/core/error.h"
#include "runner/core/plan.h"
#include "runner/plan/static_planner.h"
#include "tests/support/memory_files.h"

namespace {

// "hosts/a.nix" and the like; false for names a tree cannot hold.
bool validPath(std::string_view p) {
  if (p.empty() || p.size() > 200 || p.front() == '/' || p.back() == '/') return false;
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find('/', start);
    if (end == std::string_view::npos) end = p.size();
    std::string_view part = p.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  for (char c : p)
    if (static_cast<unsigned char>(c) < 0x20) return false;
  return true;
}

std::vector<runner::FileChange> diffOf(const tests::MemoryFiles& from,
                                       const tests::MemoryFiles& to) {
  std::vector<runner::FileChange> out;
  for (const auto& [path, text] : to.files()) {
    auto it = from.files().find(path);
    if (it == from.files().end())
      out.push_back({path, runner::FileStatus::Added, std::nullopt});
    else if (it->second != text)
      out.push_back({path, runner::FileStatus::Modified, std::nullopt});
  }
  for (const auto& [path, _] : from.files())
    if (!to.files().count(path)) out.push_back({path, runner::FileStatus::Deleted, std::nullopt});
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::map<std::string, std::string> files, oldFiles;
  std::string* current = &files["flake.nix"];
  bool anyOld = false;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    size_t next = eol == std::string_view::npos ? text.size() : eol + 1;
    std::string_view line = text.substr(pos, next - pos);
    if (line.substr(0, 3) == "#@ ") {
      std::string_view name = line.substr(3);
      while (!name.empty() && (name.back() == '\n' || name.back() == '\r')) name.remove_suffix(1);
      bool old = name.substr(0, 4) == "old:";
      if (old) name.remove_prefix(4);
      static std::string ignored;
      ignored.clear();
      if (!validPath(name) || (files.size() + oldFiles.size()) >= 16) {
        current = &ignored;
      } else {
        current = &(old ? oldFiles : files)[std::string(name)];
        current->clear();
        anyOld = anyOld || old;
      }
    } else {
      current->append(line);
    }
    pos = next;
  }
  tests::MemoryFiles to(files);
  tests::MemoryFiles from(files);
  if (anyOld) {
    for (auto& [path, content] : oldFiles) from.put(path, content);
  } else {
    from.put("flake.nix", "# the old commit\n" + files["flake.nix"]);
  }

  runner::plan::StaticOptions opts;
  opts.repoLabel = "fuzz";
  // Small enough that a hostile input stops in well under a second with the sanitizers; the
  // mechanism is the one the default limits use.
  opts.limits.maxWork = 300'000;
  opts.limits.maxStringBytes = 64 << 10;
  try {
    (void)runner::plan::planStatic(from, "old", to, "new", diffOf(from, to), opts);
  } catch (const runner::InputError&) {
  } catch (const runner::PlanError&) {
  }
  try {
    runner::Plan self = runner::plan::planStatic(to, "new", to, "new", {}, opts);
    for (const auto& h : self.hosts)
      if (h.affected && self.discoveryError.empty()) __builtin_trap();
  } catch (const runner::InputError&) {
  } catch (const runner::PlanError&) {
  }
  return 0;
}
