#include "runner/nix/untrusted_inputs.h"

#include <map>
#include <set>

#include "runner/core/text.h"

using nlohmann::json;

namespace runner::nix {
namespace {

std::string str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The attributes builtins.fetchTree takes for each type (Nix 2.8's fetchers).
const std::map<std::string, std::set<std::string>, std::less<>>& fetchAttributes() {
  static const std::set<std::string> forge = {"type", "owner",   "repo", "rev",
                                              "ref",  "narHash", "host", "lastModified"};
  static const std::map<std::string, std::set<std::string>, std::less<>> kAttrs = {
      {"github", forge},
      {"gitlab", forge},
      {"sourcehut", forge},
      {"git",
       {"type", "url", "rev", "ref", "narHash", "lastModified", "revCount", "shallow",
        "submodules"}},
      {"tarball", {"type", "url", "narHash", "rev", "lastModified", "revCount"}},
      {"file", {"type", "url", "narHash", "rev", "lastModified", "revCount"}},
      {"path", {"type", "path", "narHash", "rev", "lastModified", "revCount"}},
      {"mercurial", {"type", "url", "rev", "ref", "narHash", "lastModified", "revCount"}},
  };
  return kAttrs;
}

// fetchTree attributes of a locked node: its known attributes of scalar type. nullopt (and
// `why`) when the type is unknown or an attribute is not a plain value.
std::optional<json> fetchAttrs(const json& locked, std::string& why) {
  const std::string type = str(locked, "type");
  auto known = fetchAttributes().find(type);
  if (known == fetchAttributes().end()) {
    why = "inputs of type '" + type + "' are not supported for untrusted code";
    return std::nullopt;
  }
  json out = json::object();
  for (const auto& [k, v] : locked.items()) {
    if (!known->second.count(k)) continue;
    if (!(v.is_string() || v.is_number_integer() || v.is_number_unsigned() || v.is_boolean())) {
      why = "its attribute '" + k + "' is not a plain value";
      return std::nullopt;
    }
    out[k] = v;
  }
  return out;
}

bool isHttps(std::string_view url) { return startsWith(url, "https://"); }

// Why a node that the base branch did not lock exactly so may not be fetched for a fork;
// nullopt when its shape is acceptable (the source is checked separately).
std::optional<std::string> shapeProblem(const json& locked) {
  const std::string type = str(locked, "type");
  if (type == "path") return "local paths are refused for untrusted code";
  if (type == "indirect") return "it is not locked to a source (indirect)";
  if (type == "mercurial") return "mercurial inputs are refused for untrusted code";
  if (!fetchAttributes().count(type)) return "inputs of type '" + type + "' are refused";
  if (str(locked, "narHash").empty()) return "it is not locked by narHash";
  if (type == "git" || type == "tarball" || type == "file") {
    const std::string url = str(locked, "url");
    if (!isHttps(url)) return "only https URLs are fetched for untrusted code (" + url + ")";
  }
  if (type == "git") {
    auto sub = locked.find("submodules");
    if (sub != locked.end() && sub->is_boolean() && sub->get<bool>())
      return "git submodules are refused for untrusted code (they can point anywhere)";
  }
  if (type == "github" || type == "gitlab" || type == "sourcehut") {
    if (str(locked, "owner").empty() || str(locked, "repo").empty())
      return "it names no owner/repo";
    if (str(locked, "rev").size() != 40) return "it is not locked to a commit";
  }
  return std::nullopt;
}

}  // namespace

std::vector<std::string> defaultAllowedInputs() {
  return {"github:*",
          "gitlab:*",
          "sourcehut:*",
          "git+https://github.com/*",
          "git+https://gitlab.com/*",
          "git+https://codeberg.org/*",
          "git+https://git.sr.ht/*",
          "https://github.com/*",
          "https://gitlab.com/*",
          "https://codeberg.org/*",
          "https://git.sr.ht/*",
          "https://channels.nixos.org/*",
          "https://releases.nixos.org/*",
          "https://flakehub.com/*",
          "https://api.flakehub.com/*"};
}

std::string sourceOf(const json& locked) {
  const std::string type = str(locked, "type");
  if (type == "github" || type == "gitlab" || type == "sourcehut") {
    std::string host = str(locked, "host");
    std::string name = str(locked, "owner") + "/" + str(locked, "repo");
    if (host.empty()) return type + ":" + name;
    return type + "@" + host + ":" + name;
  }
  if (type == "git" || type == "mercurial") {
    std::string url = str(locked, "url");
    return (type == "git" ? "git+" : "hg+") + url;
  }
  if (type == "tarball" || type == "file") return str(locked, "url");
  if (type == "path") return "path:" + str(locked, "path");
  return (type.empty() ? std::string("?") : type) + ":?";
}

bool globMatch(std::string_view pattern, std::string_view text) {
  // Iterative wildcard match with one backtrack point (the last '*').
  size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] != '*' && pattern[p] == text[t]) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

InputCheck checkUntrustedInputs(const FlakeLock& lock, const FlakeLock* base,
                                const InputPolicy& policy) {
  std::set<std::string> baseExact, baseSources;
  if (base)
    for (const auto& [name, n] : base->nodes)
      if (name != base->root && n.locked) {
        baseExact.insert(n.locked->dump());
        baseSources.insert(sourceOf(*n.locked));
      }
  InputCheck out;
  std::set<std::string> queued;
  for (const auto& [name, node] : lock.nodes) {
    if (name == lock.root) continue;
    if (!node.locked || !node.locked->is_object()) {
      out.refused.push_back("input '" + name + "' is not locked");
      continue;
    }
    const json& locked = *node.locked;
    const std::string source = sourceOf(locked);
    const std::string label = "input '" + name + "' (" + source + ")";
    const bool fromBase = baseExact.count(locked.dump()) > 0;
    if (!fromBase) {
      if (auto problem = shapeProblem(locked)) {
        out.refused.push_back(label + ": " + *problem);
        continue;
      }
      bool allowed = baseSources.count(source) > 0;
      for (const auto& pat : policy.allowed) allowed = allowed || globMatch(pat, source);
      if (!allowed) {
        out.refused.push_back(label +
                              ": the base branch does not use this source and no allowed "
                              "pattern matches it (untrusted.allowed_inputs)");
        continue;
      }
    }
    std::string why;
    auto attrs = fetchAttrs(locked, why);
    if (!attrs) {
      out.refused.push_back(label + ": " + why);
      continue;
    }
    if (queued.insert(attrs->dump()).second)
      out.fetch.push_back({name, std::move(*attrs), fromBase});
  }
  return out;
}

std::vector<InputToFetch> lockedInputs(const FlakeLock& lock) {
  std::vector<InputToFetch> out;
  std::set<std::string> queued;
  for (const auto& [name, node] : lock.nodes) {
    if (name == lock.root || !node.locked || !node.locked->is_object()) continue;
    std::string why;
    auto attrs = fetchAttrs(*node.locked, why);
    if (attrs && queued.insert(attrs->dump()).second)
      out.push_back({name, std::move(*attrs), true});
  }
  return out;
}

}  // namespace runner::nix
