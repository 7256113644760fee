// The dependency rule of DESIGN.md §2, checked on the source tree: a folder includes only
// the folders its level may use, and each C library's headers appear only in the one folder
// that wraps it. This test fails the build's test run the moment someone crosses a line.
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <string>

#include <catch2/catch.hpp>

#include "runner/os/files.h"
#include "tests/support/run.h"

namespace fs = std::filesystem;

namespace {

// folder -> the folders it may include (itself is always allowed)
const std::map<std::string, std::set<std::string>>& allowedFolders() {
  static const std::set<std::string> kLevel1 = {"runner/core", "runner/os",    "runner/git",
                                                "runner/ssh",  "runner/store", "runner/http",
                                                "runner/nix",  "runner/crypto"};
  static const std::set<std::string> kStages = {
      "runner/plan",  "runner/build",       "runner/deploy",      "runner/report",
      "runner/fleet", "integrations/gitea", "integrations/github"};
  // what the forge integrations share (RestForge, webhook rules): level 2, used by them only
  static const std::string kForgeCommon = "integrations/common";
  static const std::map<std::string, std::set<std::string>> kRules = [] {
    std::map<std::string, std::set<std::string>> r;
    r["runner/core"] = {};
    for (auto f :
         {"runner/os", "runner/git", "runner/ssh", "runner/store", "runner/http", "runner/crypto"})
      r[f] = {"runner/core"};
    r["runner/nix"] = {"runner/core", "runner/os"};
    // the lab (demo, tests, benchmarks): beside level 1, used by runner/app only
    r["runner/lab"] = {"runner/core", "runner/os"};
    for (const auto& s : kStages) r[s] = kLevel1;  // stages never include each other
    r[kForgeCommon] = kLevel1;
    for (auto f : {"integrations/gitea", "integrations/github"}) r[f].insert(kForgeCommon);
    std::set<std::string> sched = kLevel1;
    sched.insert(kStages.begin(), kStages.end());
    sched.insert(kForgeCommon);
    r["runner/scheduler"] = sched;
    std::set<std::string> all = sched;
    all.insert("runner/scheduler");
    all.insert("runner/lab");
    r["runner/app"] = all;
    return r;
  }();
  return kRules;
}

// header prefix -> the only folder allowed to include it
const std::map<std::string, std::string>& libraryOwners() {
  static const std::map<std::string, std::string> kOwners = {
      {"git2", "runner/git"},      {"libssh/", "runner/ssh"},     {"sqlite3", "runner/store"},
      {"pqxx/", "runner/store"},   {"curl/", "runner/http"},      {"httplib", "runner/http"},
      {"yaml-cpp/", "runner/app"}, {"openssl/", "runner/crypto"}, {"CLI/", "runner/app"},
      {"catch2/", "tests"},
  };
  return kOwners;
}

std::string folderOf(const fs::path& rel) {
  auto it = rel.begin();
  std::string a = it->string();
  ++it;
  return it == rel.end() ? a : a + "/" + it->string();
}

struct Violation {
  std::string file, include, why;
};

std::vector<Violation> checkTree(const fs::path& root) {
  std::vector<Violation> out;
  static const std::regex kInclude(R"(^\s*#\s*include\s*([<"])([^>"]+)[>"])");
  for (const char* top : {"runner", "integrations"}) {
    if (!fs::exists(root / top)) continue;
    for (const auto& e : fs::recursive_directory_iterator(root / top)) {
      if (!e.is_regular_file()) continue;
      auto ext = e.path().extension();
      if (ext != ".h" && ext != ".cc") continue;
      fs::path rel = fs::relative(e.path(), root);
      std::string folder = folderOf(rel);
      auto rules = allowedFolders().find(folder);
      std::ifstream in(e.path());
      std::string line;
      while (std::getline(in, line)) {
        std::smatch m;
        if (!std::regex_search(line, m, kInclude)) continue;
        std::string inc = m[2];
        if (m[1] == "\"") {
          fs::path p(inc);
          if (std::distance(p.begin(), p.end()) < 3) continue;  // local include
          std::string target = folderOf(p);
          if (target == folder) continue;
          if (rules == allowedFolders().end()) {
            out.push_back({rel.string(), inc, "folder " + folder + " is not in the layout table"});
          } else if (!rules->second.count(target)) {
            out.push_back({rel.string(), inc, folder + " may not use " + target});
          }
        } else {
          for (const auto& [prefix, owner] : libraryOwners()) {
            if (inc.rfind(prefix, 0) == 0 && folder != owner)
              out.push_back({rel.string(), inc, "only " + owner + " may include <" + prefix + ">"});
          }
        }
      }
    }
  }
  return out;
}

}  // namespace

TEST_CASE("every folder includes only what its level may use", "[unit][layout]") {
  auto violations = checkTree(tests::sourceDir());
  for (const auto& v : violations)
    UNSCOPED_INFO(v.file << ": #include " << v.include << ": " << v.why);
  CHECK(violations.empty());
}

TEST_CASE(
    "the layout check catches a stage including another stage or the lab, and a stray C header",
    "[unit][layout]") {
  runner::os::TempDir dir("sy-layout");
  fs::create_directories(dir.path() / "runner/build");
  fs::create_directories(dir.path() / "runner/plan");
  std::ofstream(dir.path() / "runner/build/x.cc")
      << "#include \"runner/plan/planner.h\"\n#include <sqlite3.h>\n#include "
         "\"runner/git/repository.h\"\n";
  std::ofstream(dir.path() / "runner/plan/y.h") << "#include \"runner/core/error.h\"\n";
  fs::create_directories(dir.path() / "runner/deploy");
  std::ofstream(dir.path() / "runner/deploy/z.cc") << "#include \"runner/lab/test_hosts.h\"\n";
  auto v = checkTree(dir.path());
  REQUIRE(v.size() == 3);
  std::set<std::string> why;
  for (const auto& x : v) why.insert(x.why);
  CHECK(why.count("runner/build may not use runner/plan"));
  CHECK(why.count("only runner/store may include <sqlite3>"));
  CHECK(why.count("runner/deploy may not use runner/lab"));  // the lab stays out of the runner
}

TEST_CASE("no test name contains a semicolon (CTest would split it and run nothing)",
          "[unit][layout]") {
  // catch_discover_tests turns names into CMake lists: "a; b" becomes a test named "a" that
  // matches no test case and passes without running anything.
  static const std::regex kName(R"re(TEST_CASE\(\s*((?:"[^"]*"\s*)+))re");
  std::vector<std::string> bad;
  for (const auto& e : fs::recursive_directory_iterator(tests::sourceDir() / "tests")) {
    if (!e.is_regular_file() || e.path().extension() != ".cc") continue;
    std::ifstream in(e.path());
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (std::sregex_iterator it(text.begin(), text.end(), kName), end; it != end; ++it)
      if ((*it)[1].str().find(';') != std::string::npos) bad.push_back((*it)[1].str());
  }
  for (const auto& b : bad) UNSCOPED_INFO(b);
  CHECK(bad.empty());
}
