// The models of the flake frameworks whose outputs hold hosts: flake-parts (mkFlake,
// evalFlakeModule, perSystem transposition, withSystem), lite-config, adios-flake, Clan
// (machines/, inventory, sops secrets) and Colmena hives. Each turns the framework's entry
// point into the attribute sets and NixosSystem values the evaluator discovers hosts from;
// what a model cannot follow is a discovery gap, never a silently missing host.
#include <algorithm>

#include "runner/core/text.h"
#include "runner/plan/evaluator.h"
#include "runner/plan/evaluator_internal.h"

namespace runner::plan {

using namespace runner::nix;

// flake-parts.mkFlake
ValuePtr Evaluator::builtinFlakePartsMkFlake(const std::string& name,
                                             const std::vector<ThunkPtr>& args, const Expr* site,
                                             const EnvPtr& env) {
  return flakeParts(args[0], args[1]);
}

// flake-parts.evalFlakeModule
ValuePtr Evaluator::builtinFlakePartsEvalFlakeModule(const std::string& name,
                                                     const std::vector<ThunkPtr>& args,
                                                     const Expr* site, const EnvPtr& env) {
  auto config = make(VKind::Attrs);
  config->open = true;
  config->attrs["flake"] = ready(flakeParts(args[0], args[1]));
  auto out = make(VKind::Attrs);
  out->open = true;
  out->attrs["config"] = ready(config);
  return out;
}

// withSystem
ValuePtr Evaluator::builtinWithSystem(const std::string& name, const std::vector<ThunkPtr>& args,
                                      const Expr* site, const EnvPtr& env) {
  return apply(argValue(args, 1), ready(systemArgs()), site, env);
}

void Evaluator::collectFlakePartsModule(const ValuePtr& module, const ThunkPtr& moduleArgs,
                                        FlakePartsCollected& out, int depth) {
  if (depth > 20) return;
  charge(1);
  switch (module->kind) {
    case VKind::Path:
    case VKind::String:
      if (module->path && module->path->exact) {
        collectFlakePartsModule(force(importFile(module->path->path)), moduleArgs, out, depth + 1);
        return;
      }
      break;
    case VKind::Lambda:
      collectFlakePartsModule(apply(module, moduleArgs, nullptr, nullptr), moduleArgs, out,
                              depth + 1);
      return;
    case VKind::List:
      for (const auto& el : module->elems)
        collectFlakePartsModule(force(el), moduleArgs, out, depth + 1);
      return;
    case VKind::Attrs: {
      static const std::set<std::string> kModelled = {
          "flake", "clan",          "lite-config", "imports",          "perSystem", "systems",
          "debug", "transposition", "partitions",  "partitionedAttrs", "_class",    "_file",
          "key",   "options",       "config",      "disabledModules"};
      if (ThunkPtr f = select(module, "flake")) out.flake.push_back(f);
      if (ThunkPtr c = select(module, "clan")) out.clan.push_back(c);
      if (ThunkPtr l = select(module, "lite-config")) out.liteConfig.push_back(l);
      if (ThunkPtr p = select(module, "perSystem")) out.perSystem.push_back(p);
      if (ThunkPtr s = select(module, "systems")) out.systems.push_back(s);
      if (ThunkPtr c = select(module, "config")) {  // { options = …; config = { flake = …; }; }
        ValuePtr cv = force(c);
        if (cv->kind == VKind::Attrs) collectFlakePartsModule(cv, moduleArgs, out, depth + 1);
      }
      if (ThunkPtr i = select(module, "imports"))
        collectFlakePartsModule(force(i), moduleArgs, out, depth + 1);
      for (const auto& [k, _] : module->attrs)
        if (!kModelled.count(k)) out.otherOptions.insert(k);
      return;
    }
    case VKind::Input:
      // a flake module from an input (clan-core.flakeModules.default, lite-config, …)
      out.externalModules.push_back(module->input + "." + join(module->inputPath, "."));
      return;
    default:
      break;
  }
  std::string gap = "a flake-parts module the planner cannot evaluate: " +
                    (module->reason.empty() ? std::string("unknown value") : module->reason);
  warnings_.push_back(gap);
  discoveryGaps_.push_back(gap);
}

// yelite/lite-config: hosts.<name>.system, hostModuleDir/<name>, systemModules for every
// host; darwin systems become darwinConfigurations, not NixOS hosts.
ValuePtr Evaluator::liteConfig(const std::vector<ThunkPtr>& parts, const ThunkPtr& moduleArgs) {
  std::vector<ThunkPtr> values;
  for (const auto& p : parts) {
    ValuePtr v = force(p);
    if (v->kind == VKind::Lambda) v = apply(v, moduleArgs, nullptr, nullptr);
    values.push_back(ready(v));
  }
  ValuePtr cfg = mergeAttrs(values);
  auto configs = make(VKind::Attrs);
  if (cfg->kind != VKind::Attrs) return configs;
  std::optional<std::string> hostDir;
  if (ThunkPtr d = select(cfg, "hostModuleDir")) {
    ValuePtr dv = force(d);
    if (dv->path && dv->path->exact) hostDir = dv->path->path;
  }
  // Everything else lite-config is given (systemModules, nixpkgs overlays, …) may end up in
  // every host: a module value without an origin, so its parts are scanned one by one.
  auto shared = make(VKind::Attrs);
  for (const auto& [k, t] : cfg->attrs)
    if (k != "hostModuleDir" && k != "hosts") shared->attrs[k] = t;
  ThunkPtr hostsT = select(cfg, "hosts");
  ValuePtr hosts = hostsT ? force(hostsT) : make(VKind::Attrs);
  if (hosts->kind != VKind::Attrs) {
    configs->open = true;
    configs->openReason = "lite-config hosts the planner cannot evaluate";
    return configs;
  }
  for (const auto& [name, spec] : hosts->attrs) {
    ValuePtr sv = force(spec);
    if (sv->kind == VKind::Attrs) {
      if (ThunkPtr sys = select(sv, "system")) {
        ValuePtr system = force(sys);
        if (system->kind == VKind::String && system->text && endsWith(*system->text, "-darwin"))
          continue;
      }
    }
    auto sys = make(VKind::NixosSystem);
    sys->libInput = inputs_.count("nixpkgs") ? "nixpkgs" : "lite-config";
    sys->hostNameIsName = true;  // lite-config sets networking.hostName to the host's name
    auto mods = make(VKind::List);
    if (hostDir)
      mods->elems.push_back(ready(pathValue(PathRef{true, *hostDir + "/" + name, "", ""})));
    mods->elems.push_back(ready(shared));
    mods->elems.push_back(spec);
    sys->modules = ready(mods);
    configs->attrs[name] = ready(sys);
  }
  return configs;
}

ValuePtr Evaluator::flakeParts(const ThunkPtr& args, const ThunkPtr& module) {
  // The module arguments flake-parts gives its modules.
  auto margs = make(VKind::Attrs);
  margs->open = true;
  margs->attrs["self"] = self_;
  margs->attrs["inputs"] = inputsAttrs_;
  auto lib = make(VKind::Input);
  lib->input = inputs_.count("nixpkgs") ? "nixpkgs" : "flake-parts";
  lib->inputPath = {"lib"};
  margs->attrs["lib"] = ready(lib);
  auto fpl = make(VKind::Input);
  fpl->input = "flake-parts";
  fpl->inputPath = {"lib"};
  margs->attrs["flake-parts-lib"] = ready(fpl);
  auto config = make(VKind::Attrs);
  config->open = true;
  config->attrs["flake"] = self_;
  margs->attrs["config"] = ready(config);
  margs->attrs["withSystem"] = ready(withSystemFunction());
  ThunkPtr moduleArgs = ready(margs);

  FlakePartsCollected c;
  collectFlakePartsModule(force(module), moduleArgs, c, 0);
  std::vector<ThunkPtr> flakeParts = c.flake;
  // `self.packages.<system>.x` of a perSystem package: the outputs flake-parts transposes
  if (!c.perSystem.empty()) flakeParts.insert(flakeParts.begin(), ready(perSystemCategories(c)));
  ValuePtr merged = mergeAttrs(flakeParts);
  std::vector<ThunkPtr> hostSets;
  if (!c.clan.empty()) {
    ValuePtr clanResult = clan(ready(mergeAttrs(c.clan)));
    if (ThunkPtr cc = select(clanResult, "nixosConfigurations")) hostSets.push_back(cc);
  }
  if (!c.liteConfig.empty()) hostSets.push_back(ready(liteConfig(c.liteConfig, moduleArgs)));
  // Options set by flake modules of inputs that the planner does not model may define hosts.
  std::vector<std::string> unmodelled;
  for (const auto& o : c.otherOptions) unmodelled.push_back(o);
  if (!c.externalModules.empty() && !unmodelled.empty()) {
    warnings_.push_back("flake-parts options " + join(unmodelled, ", ") +
                        " come from flake modules the planner does not model (" +
                        join(c.externalModules, ", ") +
                        "): hosts they define are not discovered; list them under hosts: in the "
                        "config");
    discoverySoftGaps_.push_back("flake-parts options " + join(unmodelled, ", ") +
                                 " come from flake modules the planner does not model");
  }
  if (hostSets.empty()) return merged;
  auto out = make(VKind::Attrs);
  *out = *merged;
  if (ThunkPtr own = select(merged, "nixosConfigurations")) hostSets.push_back(own);
  out->attrs["nixosConfigurations"] = ready(mergeAttrs(hostSets));
  return out;
}

ValuePtr Evaluator::perSystemOutputs(const std::vector<ThunkPtr>& modules, const ValuePtr& system) {
  auto args = make(VKind::Attrs);
  *args = *systemArgs();
  args->attrs["system"] = ready(system);
  if (!args->attrs.count("self")) args->attrs["self"] = self_;
  // `config` and `self'` are these same outputs (filled in below; forced early, unknown)
  ThunkPtr own = newThunk();
  own->compute = [] { return unknown("perSystem config read while it is being defined"); };
  args->attrs["config"] = own;
  args->attrs["self'"] = own;
  ThunkPtr argsT = ready(args);
  std::vector<ThunkPtr> parts;
  static const std::set<std::string> kNotOutputs = {"imports", "options", "config",         "_file",
                                                    "key",     "_class",  "disabledModules"};
  std::function<void(ValuePtr, int)> collect = [&](ValuePtr m, int depth) {
    charge(1);
    if (depth > 20) {
      parts.push_back(ready(unknown("perSystem modules nested too deeply")));
      return;
    }
    if ((m->kind == VKind::Path || m->kind == VKind::String) && m->path && m->path->exact)
      m = force(importFile(m->path->path));
    if (m->kind == VKind::Lambda) m = apply(m, argsT, nullptr, nullptr);
    if (m->kind == VKind::List) {
      for (const auto& el : m->elems) collect(force(el), depth + 1);
      if (m->open) parts.push_back(ready(unknown("a perSystem imports list not fully known")));
      return;
    }
    if (m->kind != VKind::Attrs) {
      // every per-system output may come from it: selecting one is dynamic (mergeAttrs)
      parts.push_back(ready(m));
      return;
    }
    auto outputs = make(VKind::Attrs);
    inheritOpen(*outputs, *m);
    for (const auto& [k, t] : m->attrs)
      if (!kNotOutputs.count(k)) outputs->attrs[k] = t;
    parts.push_back(ready(outputs));
    if (ThunkPtr cfg = select(m, "config")) collect(force(cfg), depth + 1);
    if (ThunkPtr i = select(m, "imports")) collect(force(i), depth + 1);
  };
  for (const auto& t : modules) collect(force(t), 0);
  ValuePtr out = mergeAttrs(parts);
  if (!own->value) {
    own->compute = nullptr;
    own->value = out;
  }
  return out;
}

ValuePtr Evaluator::perSystemCategories(const FlakePartsCollected& c) {
  // The systems: a list option, its definitions concatenate.
  std::optional<std::vector<std::string>> systems = std::vector<std::string>{};
  for (const auto& t : c.systems) {
    auto s = knownStrings(force(t));
    if (!s) {
      systems.reset();
      break;
    }
    systems->insert(systems->end(), s->begin(), s->end());
  }
  if (c.systems.empty()) systems.reset();
  std::vector<ThunkPtr> modules = c.perSystem;
  // One evaluation per system, on demand (a host that never reads self.packages forces none).
  auto bySystem = std::make_shared<std::map<std::string, ThunkPtr>>();
  auto forSystem = [this, modules, bySystem](const std::optional<std::string>& sys) {
    std::string key = sys ? *sys : std::string("<unknown>");
    auto it = bySystem->find(key);
    if (it != bySystem->end()) return it->second;
    auto t = newThunk();
    t->compute = [this, modules, sys] {
      return perSystemOutputs(modules, sys ? str(*sys) : unknown("the system"));
    };
    return (*bySystem)[key] = t;
  };
  auto out = make(VKind::Attrs);
  // flake-parts' own transposed options; other transpositions come from modules
  for (const char* category :
       {"packages", "legacyPackages", "checks", "devShells", "apps", "formatter"}) {
    std::string cat = category;
    auto t = newThunk();
    t->compute = [this, cat, systems, forSystem] {
      auto perSys = make(VKind::Attrs);
      auto one = [this, cat, forSystem](const std::optional<std::string>& sys) {
        auto x = newThunk();
        x->compute = [this, cat, forSystem, sys] {
          ThunkPtr outputs = forSystem(sys);
          ThunkPtr v = select(force(outputs), cat);
          return v ? force(v) : make(VKind::Attrs);
        };
        return x;
      };
      if (systems) {
        for (const auto& s : *systems) perSys->attrs[s] = one(s);
      } else {
        perSys->open = true;
        perSys->unknownEntries.push_back(one(std::nullopt));
      }
      return ValuePtr(perSys);
    };
    out->attrs[cat] = t;
  }
  return out;
}

// The arguments a per-system function gets (flake-parts' and adios-flake's `withSystem`,
// perSystem): pkgs from nixpkgs, its lib; the system and the primed inputs are unknown.
ValuePtr Evaluator::systemArgs() {
  auto a = make(VKind::Attrs);
  a->open = true;
  if (inputs_.count("nixpkgs")) {
    auto pkgs = make(VKind::Input);
    pkgs->input = "nixpkgs";
    pkgs->inputPath = {"<pkgs>"};
    a->attrs["pkgs"] = ready(pkgs);
    auto lib = make(VKind::Input);
    lib->input = "nixpkgs";
    lib->inputPath = {"lib"};
    a->attrs["lib"] = ready(lib);
  }
  return a;
}

ValuePtr Evaluator::withSystemFunction() {
  auto b = make(VKind::Builtin);
  b->name = "withSystem";
  return b;
}

// adios-flake (Mic92/adios-flake) is called with one attribute set
// `{ inputs; self; systems; modules; perSystem; config; flake; }`; flake-parts' mkFlake takes two
// arguments, the first of which never has those keys.
bool Evaluator::isAdiosCall(const std::string& input, const ThunkPtr& arg) {
  if (input.find("adios") != std::string::npos) return true;
  ValuePtr a = force(arg);
  if (a->kind != VKind::Attrs) return false;
  for (const char* k : {"systems", "modules", "perSystem", "flake"})
    if (a->attrs.count(k)) return true;
  return false;
}

// adios-flake's outputs: flake-scoped categories (nixosConfigurations among them) come from the
// `flake` argument (a set, or a function of `{ withSystem }`) and from modules that do not
// depend on a system (functions without pkgs/system/inputs'/self' arguments, which adios calls
// with self, withSystem and lib, and plain attribute sets). A system-dependent module's outputs
// always land under a system: adios refuses flake-scoped ones from it.
ValuePtr Evaluator::adiosFlake(const ThunkPtr& argsThunk) {
  ValuePtr a = force(argsThunk);
  auto out = make(VKind::Attrs);
  if (a->kind != VKind::Attrs) {
    std::string gap = "adios-flake mkFlake called with arguments the planner cannot evaluate";
    warnings_.push_back(gap);
    discoveryGaps_.push_back(gap);
    return out;
  }
  auto moduleArgs = make(VKind::Attrs);
  moduleArgs->attrs["self"] = self_;
  moduleArgs->attrs["withSystem"] = ready(withSystemFunction());
  if (inputs_.count("nixpkgs")) {
    auto lib = make(VKind::Input);
    lib->input = "nixpkgs";
    lib->inputPath = {"lib"};
    moduleArgs->attrs["lib"] = ready(lib);
  }
  std::vector<ThunkPtr> hostSets;
  // The outputs: flake-scoped ones as they are, a system-dependent module's under each system
  // (`self.packages.<system>.x`, as flake-parts transposes perSystem; issue 12 corpus).
  std::vector<ThunkPtr> parts;
  FlakePartsCollected perSystem;
  if (ThunkPtr s = select(a, "systems")) perSystem.systems.push_back(s);
  auto gap = [&](const std::string& what) {
    std::string g = "an adios-flake module the planner cannot evaluate: " + what;
    warnings_.push_back(g);
    discoveryGaps_.push_back(g);
  };
  auto fromResult = [&](const ValuePtr& r, const std::string& what) {
    if (r->kind != VKind::Attrs)
      return gap(what + (r->reason.empty() ? "" : " (" + r->reason + ")"));
    if (r->open && !r->unknownEntries.empty()) gap(what + " has outputs the planner cannot name");
    if (ThunkPtr nc = select(r, "nixosConfigurations")) hostSets.push_back(nc);
    parts.push_back(ready(r));
  };
  auto oneModule = [&](ValuePtr m, const std::string& what) {
    if ((m->kind == VKind::Path || m->kind == VKind::String) && m->path && m->path->exact)
      m = force(importFile(m->path->path));
    if (m->kind == VKind::Lambda) {
      static const std::set<std::string> kSystemArgs = {"pkgs", "system", "inputs'", "self'"};
      if (m->lambda->formals)
        for (const auto& f : m->lambda->formals->formals)
          if (kSystemArgs.count(f.name)) {
            perSystem.perSystem.push_back(ready(m));  // per-system outputs only
            return;
          }
      return fromResult(apply(m, ready(moduleArgs), nullptr, nullptr), what);
    }
    if (m->kind == VKind::Attrs) {
      for (const char* k : {"options", "inputs", "impl", "modules", "outputs"})
        if (m->attrs.count(k)) return gap(what + " (a native adios module)");
      return fromResult(m, what);
    }
    if (m->kind == VKind::Null) return;
    gap(what + (m->reason.empty() ? "" : " (" + m->reason + ")"));
  };
  if (ThunkPtr mods = select(a, "modules")) {
    ValuePtr ml = force(mods);
    if (ml->kind == VKind::List) {
      for (size_t i = 0; i < ml->elems.size(); ++i)
        oneModule(force(ml->elems[i]), "modules[" + std::to_string(i) + "]");
      if (ml->open) gap("a modules list the planner cannot evaluate fully");
    } else {
      gap("modules" + (ml->reason.empty() ? std::string() : " (" + ml->reason + ")"));
    }
  }
  // `perSystem` is per-system whatever its arguments
  if (ThunkPtr ps = select(a, "perSystem")) perSystem.perSystem.push_back(ps);
  if (ThunkPtr f = select(a, "flake")) {
    ValuePtr fv = force(f);
    if (fv->kind == VKind::Lambda) {
      auto wargs = make(VKind::Attrs);
      wargs->attrs["withSystem"] = ready(withSystemFunction());
      fv = apply(fv, ready(wargs), nullptr, nullptr);
    }
    fromResult(fv, "the flake argument");
  }
  if (!perSystem.perSystem.empty())
    parts.insert(parts.begin(), ready(perSystemCategories(perSystem)));
  if (!parts.empty()) *out = *mergeAttrs(parts);
  out->attrs.erase("nixosConfigurations");
  if (!hostSets.empty()) out->attrs["nixosConfigurations"] = ready(mergeAttrs(hostSets));
  return out;
}

// clan-core's sops rule (issue 12 cause 6): secret s belongs to machine M when
// sops/secrets/s/machines/M exists, or s/groups/g does with sops/groups/g/machines/M; the
// machine's own age key is the secret M-age.key. Membership links are matched as patterns, so
// a machine added to or removed from a secret or a group (at either commit) is a change of it.
std::vector<PathRef> Evaluator::clanSopsSecrets(const std::string& sops, const std::string& m) {
  std::vector<PathRef> out;
  const std::string secrets = sops + "secrets/", groupsDir = sops + "groups/";
  out.push_back({true, secrets + m + "-age.key/", "", ""});
  out.push_back({true, secrets + m + "-age.key", "", ""});
  out.push_back({false, "", secrets, "/machines/" + m});
  out.push_back({false, "", groupsDir, "/machines/" + m});
  std::set<std::string> groups;
  if (const auto* gs = tree_.children(sops + "groups")) {
    for (const auto& g : *gs) {
      std::string name = g.path.substr(g.path.rfind('/') + 1);
      if (!tree_.exists(g.path + "/machines/" + m)) continue;
      groups.insert(name);
      out.push_back({true, g.path + "/", "", ""});
      out.push_back({false, "", secrets, "/groups/" + name});
    }
  }
  if (const auto* ss = tree_.children(sops + "secrets")) {
    for (const auto& s : *ss) {
      if (s.kind != git::EntryKind::Tree) continue;
      bool mine = tree_.exists(s.path + "/machines/" + m);
      for (const auto& g : groups) mine = mine || tree_.exists(s.path + "/groups/" + g);
      if (mine) out.push_back({true, s.path + "/", "", ""});
    }
  }
  return out;
}

ValuePtr Evaluator::clan(const ThunkPtr& argsThunk) {
  ValuePtr a = force(argsThunk);
  ThunkPtr machines = a->kind == VKind::Attrs ? select(a, "machines") : nullptr;
  ThunkPtr specialArgs = a->kind == VKind::Attrs ? select(a, "specialArgs") : nullptr;
  ThunkPtr inventory = a->kind == VKind::Attrs ? select(a, "inventory") : nullptr;
  std::string dir;
  if (ThunkPtr d = a->kind == VKind::Attrs ? select(a, "directory") : nullptr) {
    ValuePtr dv = force(d);
    if (dv->path && dv->path->exact) dir = dv->path->path;
  }
  std::string machinesDir = dir.empty() ? "machines" : dir + "/machines";
  std::map<std::string, ThunkPtr> explicitMachines;
  bool open = false;
  if (machines) {
    ValuePtr m = force(machines);
    if (m->kind == VKind::Attrs) {
      explicitMachines = m->attrs;
      open = m->open;
    } else {
      open = true;
      warnings_.push_back("Clan machines the planner cannot evaluate: " + m->reason);
    }
  }
  std::set<std::string> names;
  for (const auto& [k, _] : explicitMachines) names.insert(k);
  // Clan discovers machines from machines/<name>/configuration.nix.
  if (const auto* kids = tree_.children(machinesDir)) {
    for (const auto& k : *kids) {
      if (k.kind != git::EntryKind::Tree) continue;
      if (tree_.exists(k.path + "/configuration.nix"))
        names.insert(k.path.substr(k.path.rfind('/') + 1));
    }
  }
  std::set<std::string> darwin;
  if (inventory) {
    ValuePtr inv = force(inventory);
    if (inv->kind == VKind::Attrs) {
      if (ThunkPtr im = select(inv, "machines")) {
        ValuePtr imv = force(im);
        if (imv->kind == VKind::Attrs) {
          for (const auto& [k, spec] : imv->attrs) {
            names.insert(k);
            ValuePtr sv = force(spec);
            ThunkPtr mc = sv->kind == VKind::Attrs ? select(sv, "machineClass") : nullptr;
            ValuePtr mcv = mc ? force(mc) : nullptr;
            if (mcv && mcv->kind == VKind::String && mcv->text == "darwin") darwin.insert(k);
          }
        }
      }
    }
  }
  for (const auto& d : darwin) names.erase(d);  // darwinConfigurations, not NixOS hosts
  auto configs = make(VKind::Attrs);
  configs->open = open;
  if (open) configs->openReason = "Clan machines the planner cannot evaluate";
  std::string libInput = inputs_.count("clan-core") ? "clan-core" : "nixpkgs";
  for (const auto& n : names) {
    auto sys = make(VKind::NixosSystem);
    sys->libInput = libInput;
    sys->specialArgs = specialArgs;
    sys->hostNameIsName = true;  // clan-core sets networking.hostName to the machine's name
    auto mods = make(VKind::List);
    if (auto it = explicitMachines.find(n); it != explicitMachines.end())
      mods->elems.push_back(it->second);
    // clan-core imports these three when they exist (their existence matters: a new
    // hardware-configuration.nix is a change of the machine); nothing else of the machine's
    // directory is read unless its modules refer to it (issue 12 cause 8).
    std::string mdir = machinesDir + "/" + n + "/";
    auto exactPath = [](std::string p) { return PathRef{true, std::move(p), "", ""}; };
    for (const char* f : {"configuration.nix", "hardware-configuration.nix", "disko.nix"}) {
      sys->conventionPaths.push_back(exactPath(mdir + f));
      if (tree_.exists(mdir + f)) mods->elems.push_back(ready(pathValue(exactPath(mdir + f))));
    }
    // inventory roles/tags may add modules to any machine: scan the whole inventory
    if (inventory) mods->elems.push_back(inventory);
    sys->modules = ready(mods);
    // hardware facts, vars and secrets bound to the machine by convention
    std::string root = dir.empty() ? "" : dir + "/";
    for (std::string p :
         {mdir + "facter.json", mdir + "facts/", root + "vars/per-machine/" + n + "/",
          root + "vars/shared/", root + "sops/machines/" + n + "/"})
      sys->conventionPaths.push_back(exactPath(std::move(p)));
    for (auto& p : clanSopsSecrets(root + "sops/", n)) sys->conventionPaths.push_back(std::move(p));
    configs->attrs[n] = ready(sys);
  }
  auto config = make(VKind::Attrs);
  config->open = true;
  config->attrs["nixosConfigurations"] = ready(configs);
  auto out = make(VKind::Attrs);
  out->open = true;
  out->attrs["config"] = ready(config);
  out->attrs["nixosConfigurations"] = ready(configs);
  return out;
}

// Colmena's hive (src/nix/hive/eval.nix in zhaofengli/colmena): every attribute but `meta`
// (or its NixOps alias `network`) and `defaults` is a node, whose value is a module or a list
// of modules. A node is evaluated with `defaults` and its own modules (plus Colmena's, from
// `colmenaInput` when that is known), nixpkgs from `meta.nodeNixpkgs.<node>` else
// `meta.nixpkgs`, and specialArgs `meta.specialArgs // meta.nodeSpecialArgs.<node> // { name;
// nodes; }`. Each node is built lazily, so its code is in its own trace only. A part the planner
// cannot evaluate makes the node dynamic; a hive it cannot evaluate gives an open set (hosts
// may be missing).
ValuePtr Evaluator::colmenaHosts(const ValuePtr& hive, const std::string& colmenaInput) {
  auto out = make(VKind::Attrs);
  if (hive->kind != VKind::Attrs) {
    out->open = true;
    out->carried = hive->carried;
    out->openReason = "a Colmena hive the planner cannot evaluate" +
                      (hive->reason.empty() ? std::string() : " (" + hive->reason + ")");
    return out;
  }
  inheritOpen(*out, *hive);
  ThunkPtr meta = select(hive, "meta");
  if (!meta) meta = select(hive, "network");
  ThunkPtr defaults = select(hive, "defaults");
  for (const auto& entry : hive->attrs) {
    const std::string name = entry.first;
    const ThunkPtr t = entry.second;
    if (name == "meta" || name == "network" || name == "defaults") continue;
    auto node = newThunk();
    node->compute = [this, meta, defaults, t, name, colmenaInput]() -> ValuePtr {
      auto sys = make(VKind::NixosSystem);
      sys->libInput = "nixpkgs";
      if (!colmenaInput.empty()) sys->carried.inputs.insert(colmenaInput);
      auto dynamic = [&](const std::string& why, const Carried& c) {
        sys->modules = ready(unknown("Colmena node '" + name + "': " + why, c));
        return sys;
      };
      auto special = make(VKind::Attrs);
      ValuePtr metaV = meta ? force(meta) : nullptr;
      if (metaV) {
        if (metaV->kind != VKind::Attrs) return dynamic("meta is not understood", metaV->carried);
        // nixpkgs: the node's own, else the hive's; an input (`import nixpkgs {…}`) or unknown
        ThunkPtr np = select(metaV, "nixpkgs");
        if (ThunkPtr nn = select(metaV, "nodeNixpkgs")) {
          ValuePtr nnv = force(nn);
          if (nnv->kind != VKind::Attrs)
            return dynamic("meta.nodeNixpkgs is not understood", nnv->carried);
          if (ThunkPtr own = select(nnv, name)) np = own;
        }
        if (np) {
          ValuePtr npv = force(np);
          if (npv->kind != VKind::Input)
            return dynamic("its nixpkgs is not understood", npv->carried);
          sys->libInput = npv->input;
          sys->carried.merge(npv->carried);
        }
        std::vector<ThunkPtr> parts;
        if (ThunkPtr sa = select(metaV, "specialArgs")) parts.push_back(sa);
        if (ThunkPtr ns = select(metaV, "nodeSpecialArgs")) {
          ValuePtr nsv = force(ns);
          if (nsv->kind != VKind::Attrs)
            return dynamic("meta.nodeSpecialArgs is not understood", nsv->carried);
          if (ThunkPtr own = select(nsv, name)) parts.push_back(own);
        }
        for (const auto& p : parts) {
          ValuePtr pv = force(p);
          if (pv->kind != VKind::Attrs)
            return dynamic("its specialArgs are not understood", pv->carried);
          for (const auto& [k, v] : pv->attrs) special->attrs[k] = v;
          inheritOpen(*special, *pv);
        }
      }
      special->attrs["name"] = ready(str(name));
      special->attrs["nodes"] = ready(unknown("Colmena's nodes"));
      sys->specialArgs = ready(special);
      auto mods = make(VKind::List);
      if (defaults) mods->elems.push_back(defaults);
      ValuePtr nv = force(t);
      if (nv->kind == VKind::List) {
        mods->elems.insert(mods->elems.end(), nv->elems.begin(), nv->elems.end());
        mods->open = nv->open;
        mods->carried.merge(nv->carried);
      } else {
        mods->elems.push_back(t);
      }
      sys->modules = ready(mods);
      return sys;
    };
    out->attrs[name] = node;
  }
  return out;
}

// `colmena.lib.makeHive hive`: what eval.nix exports, `nodes` (the nixosConfigurations users
// take from it) and `meta`; the rest (toplevel, deploymentConfig, …) is not modelled.
ValuePtr Evaluator::makeHive(const ThunkPtr& hive, const std::string& colmenaInput) {
  auto out = make(VKind::Attrs);
  out->name = "colmena.makeHive";
  out->open = true;
  out->openReason = "an attribute of Colmena's makeHive the planner does not model";
  auto nodes = newThunk();
  nodes->compute = [this, hive, colmenaInput] { return colmenaHosts(force(hive), colmenaInput); };
  out->attrs["nodes"] = nodes;
  auto meta = newThunk();
  meta->compute = [this, hive]() -> ValuePtr {
    ValuePtr h = force(hive);
    ThunkPtr m = h->kind == VKind::Attrs ? select(h, "meta") : nullptr;
    if (m && h->kind == VKind::Attrs) return force(m);
    return unknown("the meta of a Colmena hive", h->carried);
  };
  out->attrs["meta"] = meta;
  return out;
}

}  // namespace runner::plan
