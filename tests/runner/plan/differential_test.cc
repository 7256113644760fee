// Differential soundness testing of the static planner (issue 12, "Prove it"): lab flakes
// built on real framework code (nixpkgs' lib.evalModules, flake-parts; tests/support/
// lab_flake_gen.h) in the shapes real repositories use get seeded random edits, and for every
// edit the static plan must contain every host the exact plan (Nix's drvPaths) marks affected:
// static ⊇ exact. Precision |exact| / |static| is reported, not required.
//
// Needs the real libraries: SWITCHYARD_NIX_LIBS names a directory with nixpkgs-lib/ and
// flake-parts/ (scripts/test.sh sets it from ../shared/nix-libs when that exists). Without it
// every case prints "SKIPPED: SWITCHYARD_NIX_LIBS ..." and CTest reports it skipped.
//
// The hidden case [.campaign] runs a longer campaign (bench/plan_differential.sh):
//   SWITCHYARD_DIFF_EDITS   edits in all (default 288), 24 per lab, shapes in turn
//   SWITCHYARD_DIFF_SEED    first seed (default 1000)
//   SWITCHYARD_DIFF_SHAPE   only this shape (as shapeName prints it)
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <set>

#include <catch2/catch.hpp>

#include "runner/core/drv_cache.h"
#include "runner/core/text.h"
#include "runner/git/repository.h"
#include "runner/nix/nix_cli.h"
#include "runner/os/files.h"
#include "runner/os/process.h"
#include "runner/plan/exact_planner.h"
#include "runner/plan/static_planner.h"
#include "tests/support/lab_flake_gen.h"

namespace fs = std::filesystem;
using namespace runner;
using tests::labgen::Edit;
using tests::labgen::LabFlake;
using tests::labgen::Shape;
using tests::labgen::shapeName;

namespace {

constexpr const char* kSkipped =
    "SKIPPED: SWITCHYARD_NIX_LIBS is not set to a directory with nixpkgs-lib/ and flake-parts/";

// Shapes static planning is known to get wrong in every edit (the [!mayfail] cases below show
// them without failing CI). None now.
bool knownUnsound(Shape) { return false; }

// Soundness bugs this test found and the planner does not fix yet, in words: a miss in one of
// these is listed as KNOWN, not as a violation. Each has a [!mayfail] case of its own.
std::optional<std::string> knownBug(Shape, const std::string&) { return std::nullopt; }

class MemoryDrvCache final : public DrvPathCache {
 public:
  std::optional<std::string> get(const std::string& tree, const std::string& host) override {
    std::scoped_lock lk(m_);
    auto it = map_.find({tree, host});
    if (it == map_.end()) return std::nullopt;
    return it->second;
  }
  void put(const std::string& tree, const std::string& host, const std::string& drv) override {
    std::scoped_lock lk(m_);
    map_[{tree, host}] = drv;
  }

 private:
  std::mutex m_;
  std::map<std::pair<std::string, std::string>, std::string> map_;
};

struct KindTally {
  int edits = 0;
  size_t exact = 0, reported = 0, found = 0;
};

// What a run of edits found; precision and recall are over hosts, summed over edits.
struct Tally {
  int edits = 0;
  size_t exact = 0;     // hosts Nix marks affected
  size_t reported = 0;  // hosts static marks affected
  size_t found = 0;     // hosts in both
  size_t labMismatches = 0;
  std::vector<std::string> violations;  // static missed a host: how to reproduce it
  std::vector<std::string> known;       // the same, for a knownBug()
  std::vector<std::string> mismatches;  // Nix disagreed with the generator's model
  std::vector<double> staticMs, exactMs;
  std::map<std::string, KindTally> kinds;
  std::map<std::string, KindTally> shapes;

  double recall() const { return exact ? double(found) / double(exact) : 1.0; }
  double precision() const { return reported ? double(found) / double(reported) : 1.0; }
};

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::string setText(const std::set<std::string>& s) {
  return s.empty() ? "{}" : "{" + join(std::vector<std::string>(s.begin(), s.end()), ",") + "}";
}

std::string reasonsOf(const Plan& p, const std::string& host) {
  const HostPlan* h = p.host(host);
  if (!h) return "(not in the static plan)";
  std::vector<std::string> rs;
  for (const auto& r : h->reasons) {
    std::string one = toString(r.kind);
    for (const auto* part : {&r.path, &r.name, &r.detail})
      if (!part->empty()) one += " " + *part;
    rs.push_back(one);
  }
  return rs.empty() ? "(no reason)" : join(rs, "; ");
}

// One lab: `edits` random edits of (shape, seed), each planned static and exact.
void runLab(const fs::path& libs, Shape shape, uint64_t seed, int edits, Tally& t) {
  os::PosixProcessRunner procs;
  os::TempDir tmp("sy-diff");
  LabFlake lab(procs, tmp.path(), libs, shape, seed);
  auto repo = git::Repository::open(lab.repoPath());
  nix::NixCli nix(procs);
  MemoryDrvCache cache;
  const std::string where = lab.describe();
  for (int i = 0; i < edits; ++i) {
    Edit e = lab.randomEdit();
    const std::string id = "shape " + shapeName(shape) + " seed " + std::to_string(seed) +
                           " edit #" + std::to_string(e.index) + " (" + e.kind +
                           "): " + e.description;
    auto t0 = std::chrono::steady_clock::now();
    Plan st = plan::planStatic(*repo, e.fromSha, e.toSha);
    auto t1 = std::chrono::steady_clock::now();
    Plan ex = plan::planExact(*repo, nix, e.fromSha, e.toSha,
                              {.evalWorkers = 2, .detectSelfRevision = false, .cache = &cache});
    auto t2 = std::chrono::steady_clock::now();
    t.staticMs.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    t.exactMs.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());

    std::vector<std::string> sv = st.affectedHosts(), xv = ex.affectedHosts();
    std::set<std::string> s(sv.begin(), sv.end()), x(xv.begin(), xv.end());
    for (const auto& h : ex.hosts)
      if (h.evalError)
        t.mismatches.push_back(id + ": " + h.name + " does not evaluate: " + *h.evalError);
    if (x != e.expected) {
      ++t.labMismatches;
      t.mismatches.push_back(id + ": Nix says " + setText(x) + ", the generator expected " +
                             setText(e.expected));
    }
    std::set<std::string> missed;
    size_t found = 0;
    for (const auto& h : x)
      if (s.count(h))
        ++found;
      else
        missed.insert(h);
    t.found += found;
    if (!missed.empty()) {
      std::string v = id + ": static missed " + setText(missed) + " (static " + setText(s) +
                      ", exact " + setText(x) + "); the lab at creation: " + where;
      if (auto bug = knownBug(shape, e.kind))
        t.known.push_back(v + " [known: " + *bug + "]");
      else
        t.violations.push_back(v);
    }
    ++t.edits;
    t.exact += x.size();
    t.reported += s.size();
    for (auto* k : {&t.kinds[e.kind], &t.shapes[shapeName(shape)]}) {
      ++k->edits;
      k->exact += x.size();
      k->reported += s.size();
      k->found += found;
    }
    if (std::getenv("SWITCHYARD_DIFF_VERBOSE")) {
      std::cout << id << "\n  static " << setText(s) << " exact " << setText(x) << "\n";
      for (const auto& h : s)
        if (!x.count(h)) std::cout << "  over-report " << h << ": " << reasonsOf(st, h) << "\n";
    }
  }
}

std::string fmt(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.3f", v);
  return b;
}

std::string report(const Tally& t) {
  std::string s = "edits " + std::to_string(t.edits) + ", hosts exact " + std::to_string(t.exact) +
                  ", static " + std::to_string(t.reported) + ": recall " + fmt(t.recall()) +
                  ", precision " + fmt(t.precision()) + ", soundness violations " +
                  std::to_string(t.violations.size()) + " (known bugs " +
                  std::to_string(t.known.size()) + "), lab mismatches " +
                  std::to_string(t.mismatches.size()) + "; median static " +
                  fmt(median(t.staticMs)) + " ms, exact " + fmt(median(t.exactMs)) + " ms\n";
  auto table = [&](const char* title, const std::map<std::string, KindTally>& m) {
    s += std::string(title) + "\n";
    for (const auto& [k, v] : m) {
      char b[160];
      std::snprintf(b, sizeof b,
                    "  %-18s edits %4d  exact %4zu  static %4zu  recall %s  precision %s\n",
                    k.c_str(), v.edits, v.exact, v.reported,
                    v.exact ? fmt(double(v.found) / double(v.exact)).c_str() : "-",
                    v.reported ? fmt(double(v.found) / double(v.reported)).c_str() : "-");
      s += b;
    }
  };
  table("by shape:", t.shapes);
  table("by edit kind:", t.kinds);
  for (const auto& v : t.violations) s += "VIOLATION " + v + "\n";
  for (const auto& v : t.known) s += "KNOWN " + v + "\n";
  for (const auto& m : t.mismatches) s += "LAB " + m + "\n";
  return s;
}

long envLong(const char* name, long fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtol(v, nullptr, 10) : fallback;
}

// Edit kinds kEditKinds[k] with k % stride == offset on a lab of `shape`, each once: Nix
// agrees with the generator, static ⊇ exact.
void kindsOnShape(const fs::path& libs, Shape shape, uint64_t seed, size_t stride, size_t offset) {
  os::PosixProcessRunner procs;
  os::TempDir tmp("sy-diff");
  LabFlake lab(procs, tmp.path(), libs, shape, seed);
  auto repo = git::Repository::open(lab.repoPath());
  nix::NixCli nix(procs);
  MemoryDrvCache cache;
  for (size_t k = offset; k < tests::labgen::kEditKinds.size(); k += stride) {
    const std::string& kind = tests::labgen::kEditKinds[k];
    Edit e = lab.edit(kind);
    INFO(shapeName(shape) + " seed " + std::to_string(seed) + ", " + kind + ": " + e.description);
    Plan st = plan::planStatic(*repo, e.fromSha, e.toSha);
    Plan ex = plan::planExact(*repo, nix, e.fromSha, e.toSha,
                              {.detectSelfRevision = false, .cache = &cache});
    std::vector<std::string> sv = st.affectedHosts(), xv = ex.affectedHosts();
    std::set<std::string> s(sv.begin(), sv.end()), x(xv.begin(), xv.end());
    CHECK(x == e.expected);
    auto bug = knownBug(shape, kind);
    for (const auto& h : x) {
      INFO("host " + h + "; static reasons: " + reasonsOf(st, h) +
           "; static warnings: " + join(st.warnings, "; "));
      if (bug && !s.count(h))
        WARN("known soundness bug (" + *bug + "): static missed " + h);
      else
        CHECK(s.count(h) == 1);
    }
  }
}

}  // namespace

TEST_CASE("differential: static plans contain every host Nix sees changed (fixed seeds)",
          "[integration][nix][plan][differential]") {
  auto libs = tests::labgen::nixLibsFromEnv();
  if (!libs) {
    WARN(kSkipped);
    return;
  }
  Tally t;
  int labs = 0;
  for (Shape shape : tests::labgen::kAllShapes) {
    if (knownUnsound(shape)) continue;
    runLab(*libs, shape, 7, 5, t);
    ++labs;
  }
  INFO(report(t));
  std::cout << "differential (fixed seeds): " << report(t);
  CHECK(t.mismatches.empty());  // the lab itself: Nix agrees with the generator's model
  CHECK(t.violations.empty());  // static ⊇ exact
  CHECK(t.edits == 5 * labs);
}

// Every edit kind on every third shape (in turn), so each kind meets two or three shapes and
// the case stays within a minute; the campaign runs them all.
TEST_CASE("differential: every edit kind, on shapes in turn",
          "[integration][nix][plan][differential]") {
  auto libs = tests::labgen::nixLibsFromEnv();
  if (!libs) {
    WARN(kSkipped);
    return;
  }
  size_t i = 0;
  for (Shape shape : tests::labgen::kAllShapes)
    if (!knownUnsound(shape)) kindsOnShape(*libs, shape, 11, 3, i++ % 3);
}

// Found by this test (fixed): hosts listed in a JSON file,
//   nixosConfigurations = let inventory = builtins.fromJSON (builtins.readFile ./inventory.json);
//                         in lib.mapAttrs (h: info: lib.nixosSystem { ... }) inventory;
// Static discovery found no hosts ("mapAttrs of an unknown set"). The evaluator now reads the
// file and models fromJSON; the file is part of every host's definition. Reproduce:
//   SWITCHYARD_DIFF_SHAPE=inventory bench/plan_differential.sh 6 11
TEST_CASE("differential: hosts from a JSON inventory", "[integration][nix][plan][differential]") {
  auto libs = tests::labgen::nixLibsFromEnv();
  if (!libs) {
    WARN(kSkipped);
    return;
  }
  Tally t;
  runLab(*libs, Shape::Inventory, 11, 6, t);
  INFO(report(t));
  CHECK(t.mismatches.empty());
  CHECK(t.violations.empty());
}

// Found by this test (fixed): in a flake-parts flake, a host module using
// `self.packages.x86_64-linux.lab-cli` where `perSystem = { system, ... }: { packages.lab-cli =
// ….callPackage ./pkgs/lab-cli.nix { }; }`: an edit of pkgs/lab-cli.nix affected no host in the
// static plan (no reason, no warning) while Nix saw every host importing the module change.
// The evaluator now transposes perSystem outputs into self.packages.<system>.
TEST_CASE("differential: flake-parts perSystem package used through self.packages",
          "[integration][nix][plan][differential]") {
  auto libs = tests::labgen::nixLibsFromEnv();
  if (!libs) {
    WARN(kSkipped);
    return;
  }
  os::PosixProcessRunner procs;
  os::TempDir tmp("sy-diff");
  LabFlake lab(procs, tmp.path(), *libs, Shape::FlakeParts, 11);
  auto repo = git::Repository::open(lab.repoPath());
  nix::NixCli nix(procs);
  MemoryDrvCache cache;
  for (int i = 0; i < 3; ++i) {
    Edit e = lab.edit("self-package");
    INFO(e.description);
    Plan st = plan::planStatic(*repo, e.fromSha, e.toSha);
    Plan ex = plan::planExact(*repo, nix, e.fromSha, e.toSha,
                              {.detectSelfRevision = false, .cache = &cache});
    std::vector<std::string> sv = st.affectedHosts(), xv = ex.affectedHosts();
    std::set<std::string> s(sv.begin(), sv.end()), x(xv.begin(), xv.end());
    CHECK(x == e.expected);
    for (const auto& h : x) {
      INFO("host " + h);
      CHECK(s.count(h) == 1);
    }
  }
}

TEST_CASE("differential campaign (bench/plan_differential.sh)", "[.campaign]") {
  auto libs = tests::labgen::nixLibsFromEnv();
  if (!libs) {
    WARN(kSkipped);
    return;
  }
  const long edits = envLong("SWITCHYARD_DIFF_EDITS", 288);
  const long firstSeed = envLong("SWITCHYARD_DIFF_SEED", 1000);
  const long perLab = std::min<long>(edits, 24);
  std::vector<Shape> shapes(std::begin(tests::labgen::kAllShapes),
                            std::end(tests::labgen::kAllShapes));
  if (const char* only = std::getenv("SWITCHYARD_DIFF_SHAPE")) {
    auto s = tests::labgen::shapeFromName(only);
    REQUIRE(s);
    shapes = {*s};
  }
  Tally t;
  long done = 0;
  for (long lab = 0; done < edits; ++lab) {
    Shape shape = shapes[static_cast<size_t>(lab) % shapes.size()];
    long n = std::min(perLab, edits - done);
    runLab(*libs, shape, static_cast<uint64_t>(firstSeed + lab), static_cast<int>(n), t);
    done += n;
  }
  std::cout << report(t);
  CHECK(t.violations.empty());
  CHECK(t.mismatches.empty());
}
