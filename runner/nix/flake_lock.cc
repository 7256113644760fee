#include "runner/nix/flake_lock.h"

#include <array>
#include <deque>
#include <functional>
#include <set>

#include "runner/core/error.h"
#include "runner/core/text.h"

using nlohmann::json;

namespace runner::nix {
namespace {

std::string pathString(const std::vector<std::string>& path) {
  return path.empty() ? std::string("<root>") : join(path, "/");
}

LockInput parseInput(const json& v, std::string_view origin, const std::string& nodeName,
                     const std::string& inputName) {
  LockInput in;
  if (v.is_string()) {
    in.node = v.get<std::string>();
  } else if (v.is_array()) {
    std::vector<std::string> path;
    for (const auto& e : v) {
      if (!e.is_string())
        throw InputError(std::string(origin) + ": input '" + inputName + "' of node '" + nodeName +
                         "': follows path must be a list of strings");
      path.push_back(e.get<std::string>());
    }
    in.follows = std::move(path);
  } else {
    throw InputError(std::string(origin) + ": input '" + inputName + "' of node '" + nodeName +
                     "' must be a node name or a follows path");
  }
  return in;
}

// The node's own identity: its locked attributes without lastModified, and its flake flag.
json ownIdentity(const LockNode& n) {
  json id = json::object();
  if (n.locked) {
    id["locked"] = *n.locked;
    id["locked"].erase("lastModified");
  }
  id["flake"] = n.flake;
  return id;
}

// Content fingerprints of nodes: own identity plus the fingerprints of what its inputs
// resolve to. Memoised per node; a reference back into a node being computed (only possible
// through follows to an ancestor, e.g. the root) is recorded by its input path.
class Fingerprints {
 public:
  explicit Fingerprints(const FlakeLock& lock) : lock_(lock) {}

  const std::string& of(const std::string& node) {
    auto it = memo_.find(node);
    if (it != memo_.end()) return it->second;
    if (active_.count(node)) {
      static const std::string kCycle = "<cycle>";
      return node == lock_.root ? root_ : kCycle;
    }
    active_.insert(node);
    const LockNode& n = lock_.nodes.at(node);
    json fp = ownIdentity(n);
    json inputs = json::object();
    for (const auto& [name, in] : n.inputs) {
      std::optional<std::string> target = in.node;
      if (in.follows) target = lock_.resolve(*in.follows);
      inputs[name] = target ? (*target == lock_.root ? root_ : of(*target)) : "<missing>";
    }
    fp["inputs"] = inputs;
    active_.erase(node);
    return memo_[node] = fp.dump();
  }

 private:
  const FlakeLock& lock_;
  std::map<std::string, std::string> memo_;
  std::set<std::string> active_;
  const std::string root_ = "<root>";
};

// The node reached through input `name` of `node`, or nullopt.
std::optional<std::string> inputTarget(const FlakeLock& lock, const std::string& node,
                                       const std::string& name) {
  const auto& n = lock.nodes.at(node);
  auto it = n.inputs.find(name);
  if (it == n.inputs.end()) return std::nullopt;
  if (it->second.node) return it->second.node;
  return lock.resolve(*it->second.follows);
}

}  // namespace

std::optional<std::string> FlakeLock::resolve(const std::vector<std::string>& path) const {
  std::set<std::vector<std::string>> visited;
  // Mirrors Nix's LockFile::findInput: walk from the root; a follows edge restarts the walk
  // from the root with the follows path.
  std::function<std::optional<std::string>(const std::vector<std::string>&)> find =
      [&](const std::vector<std::string>& p) -> std::optional<std::string> {
    if (!visited.insert(p).second)
      throw InputError("follows cycle at input path '" + pathString(p) + "'");
    std::string pos = root;
    for (const auto& elem : p) {
      auto found = nodes.find(pos);
      if (found == nodes.end())  // found by flake_lock_fuzz: an edge to a missing node
        throw InputError("input path '" + pathString(p) + "' reaches node '" + pos +
                         "', which does not exist");
      const auto& node = found->second;
      auto it = node.inputs.find(elem);
      if (it == node.inputs.end()) return std::nullopt;
      if (it->second.node) {
        pos = *it->second.node;
      } else {
        auto target = find(*it->second.follows);
        if (!target) return std::nullopt;
        pos = *target;
      }
    }
    return pos;
  };
  return find(path);
}

namespace {

// "line 3, column 7: syntax error while parsing object key - invalid literal; expected string
// literal" — the JSON library's words without its exception tag and without the input bytes
// it echoes (they may hold anything).
std::string jsonErrorText(std::string_view text, const json::exception& ex) {
  std::string what = ex.what();
  const auto* e = dynamic_cast<const json::parse_error*>(&ex);
  if (!e) {  // e.g. a number too large: "[json.exception.out_of_range.406] number overflow …"
    auto tag = what.find("] ");
    return tag == std::string::npos ? what : what.substr(tag + 2);
  }
  std::string msg = what;
  if (auto at = what.find("parse error"); at != std::string::npos)
    if (auto colon = what.find(": ", at); colon != std::string::npos) msg = what.substr(colon + 2);
  if (auto echo = msg.find("; last read: "); echo != std::string::npos) {
    auto expected = msg.find("; expected", echo);
    msg = msg.substr(0, echo) + (expected == std::string::npos ? "" : msg.substr(expected));
  }
  size_t line = 1, column = 1;
  for (size_t i = 0; i + 1 < e->byte && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(column) + ": " + msg;
}

}  // namespace

FlakeLock parseFlakeLock(std::string_view text, std::string_view origin) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {  // parse errors, and numbers out of range
    throw InputError(std::string(origin) + ": not valid JSON: " + jsonErrorText(text, e));
  }
  if (!j.is_object()) throw InputError(std::string(origin) + ": not a flake.lock (not an object)");
  FlakeLock lock;
  auto ver = j.find("version");
  if (ver == j.end() || !ver->is_number_integer())
    throw InputError(std::string(origin) + ": not a flake.lock (no integer 'version')");
  lock.version = ver->get<int>();
  if (lock.version < 5 || lock.version > 7)
    throw InputError(std::string(origin) + ": unsupported flake.lock version " +
                     std::to_string(lock.version) + " (supported: 5 to 7)");
  auto root = j.find("root");
  if (root == j.end() || !root->is_string())
    throw InputError(std::string(origin) + ": no 'root' node name");
  lock.root = root->get<std::string>();
  auto nodes = j.find("nodes");
  if (nodes == j.end() || !nodes->is_object())
    throw InputError(std::string(origin) + ": no 'nodes' object");
  if (!nodes->contains(lock.root))
    throw InputError(std::string(origin) + ": root node '" + lock.root + "' does not exist");
  for (const auto& [name, v] : nodes->items()) {
    if (!v.is_object())
      throw InputError(std::string(origin) + ": node '" + name + "' is not an object");
    LockNode node;
    if (auto in = v.find("inputs"); in != v.end()) {
      if (!in->is_object())
        throw InputError(std::string(origin) + ": inputs of node '" + name + "' is not an object");
      for (const auto& [iname, iv] : in->items())
        node.inputs.emplace(iname, parseInput(iv, origin, name, iname));
    }
    if (auto l = v.find("locked"); l != v.end()) {
      if (!l->is_object())
        throw InputError(std::string(origin) + ": 'locked' of node '" + name +
                         "' is not an object");
      node.locked = *l;
    }
    if (auto o = v.find("original"); o != v.end()) node.original = *o;
    if (auto f = v.find("flake"); f != v.end()) {
      if (!f->is_boolean())
        throw InputError(std::string(origin) + ": 'flake' of node '" + name + "' is not a boolean");
      node.flake = f->get<bool>();
    }
    if (name != lock.root && !node.locked)
      throw InputError(std::string(origin) + ": node '" + name + "' has no 'locked' attributes");
    lock.nodes.emplace(name, std::move(node));
  }
  // Validate every edge: direct references exist, follows paths resolve without cycles.
  for (const auto& [name, node] : lock.nodes) {
    for (const auto& [iname, in] : node.inputs) {
      if (in.node && !lock.nodes.count(*in.node))
        throw InputError(std::string(origin) + ": input '" + iname + "' of node '" + name +
                         "' refers to node '" + *in.node + "', which does not exist");
      if (in.follows) {
        std::optional<std::string> target;
        try {
          target = lock.resolve(*in.follows);
        } catch (InputError& e) {
          e.addContext("in " + std::string(origin) + ", input '" + iname + "' of node '" + name +
                       "'");
          throw;
        }
        if (!target)
          throw InputError(std::string(origin) + ": input '" + iname + "' of node '" + name +
                           "' follows '" + pathString(*in.follows) + "', which does not exist");
      }
    }
  }
  return lock;
}

LockedSummary summarize(const LockNode& node) {
  LockedSummary s;
  if (!node.locked) return s;
  const json& l = *node.locked;
  if (auto it = l.find("rev"); it != l.end() && it->is_string()) s.rev = it->get<std::string>();
  if (auto it = l.find("narHash"); it != l.end() && it->is_string())
    s.narHash = it->get<std::string>();
  if (auto it = l.find("lastModified"); it != l.end() && it->is_number_integer())
    s.lastModified = it->get<int64_t>();
  return s;
}

std::vector<InputChange> diffLocks(const FlakeLock& oldLock, const FlakeLock& newLock) {
  Fingerprints fpOld(oldLock), fpNew(newLock);
  std::set<std::string> names;
  for (const auto& [n, _] : oldLock.rootNode().inputs) names.insert(n);
  for (const auto& [n, _] : newLock.rootNode().inputs) names.insert(n);

  std::vector<InputChange> out;
  for (const auto& name : names) {
    auto o = inputTarget(oldLock, oldLock.root, name);
    auto n = inputTarget(newLock, newLock.root, name);
    InputChange c;
    c.name = name;
    c.path = {name};
    if (!o && !n) continue;
    if (!o) {
      c.added = true;
      if (*n != newLock.root) c.newLocked = summarize(newLock.nodes.at(*n));
      out.push_back(std::move(c));
      continue;
    }
    if (!n) {
      c.removed = true;
      if (*o != oldLock.root) c.oldLocked = summarize(oldLock.nodes.at(*o));
      out.push_back(std::move(c));
      continue;
    }
    if (*o == oldLock.root || *n == newLock.root) {
      if ((*o == oldLock.root) != (*n == newLock.root)) out.push_back(std::move(c));
      continue;  // an input that follows the flake itself: never an input change
    }
    const LockNode& on = oldLock.nodes.at(*o);
    const LockNode& nn = newLock.nodes.at(*n);
    if (ownIdentity(on) != ownIdentity(nn)) {
      c.oldLocked = summarize(on);
      c.newLocked = summarize(nn);
      out.push_back(std::move(c));
      continue;
    }
    if (fpOld.of(*o) == fpNew.of(*n)) continue;
    // Transitive: breadth-first in both graphs at once for the nearest node that differs.
    c.transitive = true;
    struct Item {
      std::string oldNode, newNode;
      std::vector<std::string> path;
    };
    std::deque<Item> queue{{*o, *n, {name}}};
    std::set<std::pair<std::string, std::string>> seen;
    bool found = false;
    while (!queue.empty() && !found) {
      Item it = std::move(queue.front());
      queue.pop_front();
      if (!seen.insert({it.oldNode, it.newNode}).second) continue;
      std::set<std::string> inputNames;
      for (const auto& [k, _] : oldLock.nodes.at(it.oldNode).inputs) inputNames.insert(k);
      for (const auto& [k, _] : newLock.nodes.at(it.newNode).inputs) inputNames.insert(k);
      for (const auto& in : inputNames) {
        auto ot = inputTarget(oldLock, it.oldNode, in);
        auto nt = inputTarget(newLock, it.newNode, in);
        auto path = it.path;
        path.push_back(in);
        bool oldRoot = ot && *ot == oldLock.root, newRoot = nt && *nt == newLock.root;
        if (oldRoot && newRoot) continue;
        if (!ot || !nt || oldRoot != newRoot) {
          c.path = path;
          if (ot && !oldRoot) c.oldLocked = summarize(oldLock.nodes.at(*ot));
          if (nt && !newRoot) c.newLocked = summarize(newLock.nodes.at(*nt));
          found = true;
          break;
        }
        const LockNode& a = oldLock.nodes.at(*ot);
        const LockNode& b = newLock.nodes.at(*nt);
        if (ownIdentity(a) != ownIdentity(b)) {
          c.path = path;
          c.oldLocked = summarize(a);
          c.newLocked = summarize(b);
          found = true;
          break;
        }
        if (fpOld.of(*ot) != fpNew.of(*nt)) queue.push_back({*ot, *nt, path});
      }
    }
    out.push_back(std::move(c));
  }
  return out;
}

namespace {
std::string describeLocked(const std::optional<LockedSummary>& s) {
  if (!s) return "-";
  std::string out;
  if (s->rev)
    out = shortSha(*s->rev, 12);
  else if (s->narHash)
    out = s->narHash->substr(0, 19);
  else
    out = "(unpinned)";
  if (s->lastModified)
    out += " (" +
           formatUtc(std::chrono::system_clock::time_point(std::chrono::seconds(*s->lastModified)))
               .substr(0, 10) +
           ")";
  return out;
}
}  // namespace

std::string formatLockDiff(const std::vector<InputChange>& changes) {
  if (changes.empty()) return "no input changed\n";
  std::vector<std::array<std::string, 4>> rows;
  rows.push_back({"INPUT", "CHANGE", "OLD", "NEW"});
  for (const auto& c : changes) {
    std::string kind = c.added        ? "added"
                       : c.removed    ? "removed"
                       : c.transitive ? "transitive"
                                      : "updated";
    if (c.transitive)
      kind += " via " + join(std::vector<std::string>(c.path.begin() + 1, c.path.end()), "/");
    rows.push_back({c.name, kind, describeLocked(c.oldLocked), describeLocked(c.newLocked)});
  }
  size_t w[4] = {0, 0, 0, 0};
  for (const auto& r : rows)
    for (int i = 0; i < 4; ++i) w[i] = std::max(w[i], r[i].size());
  std::string out;
  for (const auto& r : rows) {
    std::string line;
    for (int i = 0; i < 4; ++i) {
      line += r[i];
      if (i < 3) line += std::string(w[i] - r[i].size() + 2, ' ');
    }
    out += std::string(trim(line)) + "\n";
  }
  return out;
}

}  // namespace runner::nix
