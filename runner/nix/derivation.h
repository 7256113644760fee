// Derivations as `nix show-derivation` prints them, and the comparison of two derivation
// closures "modulo" a set of string substitutions. The exact planner uses the comparison to
// tell a host whose toplevel differs only through the flake's own revision (self.rev,
// lastModified, the source path) from one that really changed; the builder uses the closures
// to attribute build activity to hosts.
//
// Everything here is pure: values in, values out. NixCli::showDerivations produces the input.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace runner::nix {

struct Derivation {
  std::string path;                                           // /nix/store/<hash>-<name>.drv
  std::map<std::string, std::string> outputs;                 // output name -> store path
  std::vector<std::string> inputSrcs;                         // store paths
  std::map<std::string, std::vector<std::string>> inputDrvs;  // drv path -> output names
  std::string system;
  std::string builder;
  std::vector<std::string> args;
  std::map<std::string, std::string> env;

  // The name part of the path ("nixos-system-web1-fake-24.05").
  std::string name() const;
};

// drv path -> derivation
using DerivationSet = std::map<std::string, Derivation>;

// Parses `nix show-derivation [-r]` JSON. Throws NixError naming `what` on malformed input.
DerivationSet parseShowDerivation(std::string_view json, std::string_view what = "nix output");

// "/nix/store/<32 chars>-name[.drv]" -> "name" (without ".drv"); returns the input unchanged
// when it is not a store path.
std::string storePathName(std::string_view path);

// The drv paths reachable from `roots` through inputDrvs (roots included) that are in `set`.
std::set<std::string> drvClosure(const DerivationSet& set, const std::vector<std::string>& roots);

// Old -> new string replacements, applied to every string of an old derivation (longest
// first, each occurrence).
using Substitutions = std::vector<std::pair<std::string, std::string>>;

struct ClosureComparison {
  bool equivalent = false;
  // When not equivalent: the leaf differences, sorted: derivations whose own fields differ
  // ("etc-motd: env.text differs", "x: args, env.src differ") and inputs that appeared,
  // disappeared or were replaced ("config.json: input hello-2.12 replaced by hello-2.13").
  // Derivations that differ only because an input differs are not listed.
  std::vector<std::string> differences;
};

// Compares derivation `oldDrv` (in `oldSet`) with `newDrv` (in `newSet`). They are
// equivalent when, after applying `subs` plus the output-path mapping of every pair of
// equivalent inputs (inputs matched by name, recursively) and of the pair itself, their
// builder, args, env, system and outputs are equal, their input derivations pair up into
// equivalent pairs, and their input sources are equal after substitution.
// Throws NixError when a derivation it needs is missing from its set.
ClosureComparison compareClosures(const DerivationSet& oldSet, const std::string& oldDrv,
                                  const DerivationSet& newSet, const std::string& newDrv,
                                  const Substitutions& subs);

// Applies `subs` to `s` (each pair in order, every occurrence).
std::string substitute(std::string s, const Substitutions& subs);

}  // namespace runner::nix
