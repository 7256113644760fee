#include "runner/core/plan.h"

#include <algorithm>
#include <cctype>

#include <nlohmann/json.hpp>

#include "runner/core/error.h"
#include "runner/core/text.h"

namespace runner {

using nlohmann::json;

const char* toString(FileStatus s) {
  switch (s) {
    case FileStatus::Added:
      return "added";
    case FileStatus::Modified:
      return "modified";
    case FileStatus::Deleted:
      return "deleted";
    case FileStatus::Renamed:
      return "renamed";
    case FileStatus::Copied:
      return "copied";
    case FileStatus::TypeChange:
      return "typechange";
  }
  return "?";
}

const char* toString(ReasonKind k) {
  switch (k) {
    case ReasonKind::File:
      return "file";
    case ReasonKind::Input:
      return "input";
    case ReasonKind::Global:
      return "global";
    case ReasonKind::Dynamic:
      return "dynamic";
    case ReasonKind::Drv:
      return "drv";
    case ReasonKind::SelfRevisionOnly:
      return "self-revision-only";
    case ReasonKind::NewHost:
      return "new-host";
    case ReasonKind::RemovedHost:
      return "removed-host";
  }
  return "?";
}

const char* toString(PlanMode m) {
  switch (m) {
    case PlanMode::Static:
      return "static";
    case PlanMode::Exact:
      return "exact";
    case PlanMode::Auto:
      return "auto";
  }
  return "?";
}

namespace {
template <class E, size_t N>
E parseEnum(const std::string& s, const E (&values)[N], const char* what) {
  for (E v : values)
    if (s == toString(v)) return v;
  throw InputError(std::string("unknown ") + what + " '" + s + "'");
}
constexpr FileStatus kStatuses[] = {FileStatus::Added,   FileStatus::Modified,
                                    FileStatus::Deleted, FileStatus::Renamed,
                                    FileStatus::Copied,  FileStatus::TypeChange};
constexpr ReasonKind kKinds[] = {ReasonKind::File,    ReasonKind::Input,
                                 ReasonKind::Global,  ReasonKind::Dynamic,
                                 ReasonKind::Drv,     ReasonKind::SelfRevisionOnly,
                                 ReasonKind::NewHost, ReasonKind::RemovedHost};
constexpr PlanMode kModes[] = {PlanMode::Static, PlanMode::Exact, PlanMode::Auto};

template <class T>
json optional(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}
template <class T>
void readOptional(const json& j, const char* key, std::optional<T>& out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null())
    out.reset();
  else
    out = it->get<T>();
}
}  // namespace

bool HostPlan::hasReason(ReasonKind k) const {
  return std::any_of(reasons.begin(), reasons.end(), [k](const Reason& r) { return r.kind == k; });
}

std::optional<std::string> hostNameProblem(std::string_view name) {
  if (name.empty()) return "the name is empty";
  if (name.size() > 253) return "the name is longer than 253 bytes";
  if (name[0] == '.') return "the name starts with '.'";
  for (unsigned char c : name) {
    bool ok = std::isalnum(c) || c == '-' || c == '_' || c == '.';
    if (!ok || c >= 0x80)
      return "the name holds " +
             (c == '/'                ? std::string("'/'")
              : c < 0x20 || c >= 0x7f ? "a byte that is not printable ASCII"
                                      : "'" + std::string(1, static_cast<char>(c)) + "'") +
             " (host names are letters, digits, '-', '_' and '.')";
  }
  return std::nullopt;
}

size_t refuseBadHostNames(Plan& plan) {
  size_t n = 0;
  for (auto& h : plan.hosts) {
    auto why = hostNameProblem(h.name);
    if (!why) continue;
    h.refused = *why;
    h.affected = false;
    h.oldDrv.reset();
    h.newDrv.reset();
    ++n;
  }
  if (n > 0)
    plan.warnings.push_back(std::to_string(n) + (n == 1 ? " host is" : " hosts are") +
                            " refused: the name breaks the host-name rule");
  return n;
}

std::string describeReasons(const HostPlan& host, const ReasonStyle& style) {
  std::vector<std::string> parts;
  if (host.refused) return "refused: " + style.text(*host.refused);
  for (const auto& r : host.reasons) {
    switch (r.kind) {
      case ReasonKind::File:
        parts.push_back("file " + style.code(r.path));
        break;
      case ReasonKind::Input:
        parts.push_back("input " + style.code(r.name));
        break;
      case ReasonKind::Global:
        parts.push_back("global " + style.code(r.path) +
                        (r.detail.empty() ? "" : " (" + style.text(r.detail) + ")"));
        break;
      case ReasonKind::Dynamic:
        parts.push_back("dynamic: " + style.text(r.detail) +
                        (r.path.empty() ? "" : " in " + style.code(r.path)));
        break;
      case ReasonKind::Drv:
        parts.push_back("derivation changed");
        break;
      case ReasonKind::SelfRevisionOnly:
        parts.push_back("only the flake's own revision changed");
        break;
      case ReasonKind::NewHost:
        parts.push_back("new host");
        break;
      case ReasonKind::RemovedHost:
        parts.push_back("removed");
        break;
    }
  }
  if (host.evalError) {
    std::string err;  // one line: runs of whitespace become one space
    for (char c : trim(*host.evalError)) {
      bool space = c == ' ' || c == '\n' || c == '\t' || c == '\r';
      if (!space)
        err += c;
      else if (!err.empty() && err.back() != ' ')
        err += ' ';
    }
    parts.push_back("does not evaluate: " + style.text(truncateUtf8(err, 300)));
  }
  if (parts.empty()) return style.none;
  std::string out = parts[0];
  for (size_t i = 1; i < parts.size(); ++i) out += "; " + parts[i];
  return out;
}

std::vector<std::string> Plan::affectedHosts() const {
  std::vector<std::string> out;
  for (const auto& h : hosts)
    if (h.affected) out.push_back(h.name);
  return out;
}

const HostPlan* Plan::host(std::string_view name) const {
  for (const auto& h : hosts)
    if (h.name == name) return &h;
  return nullptr;
}

void to_json(json& j, const LockedSummary& v) {
  j = {{"rev", optional(v.rev)},
       {"narHash", optional(v.narHash)},
       {"lastModified", optional(v.lastModified)}};
}
void from_json(const json& j, LockedSummary& v) {
  readOptional(j, "rev", v.rev);
  readOptional(j, "narHash", v.narHash);
  readOptional(j, "lastModified", v.lastModified);
}

void to_json(json& j, const InputChange& v) {
  j = {{"name", v.name},
       {"path", v.path},
       {"old", optional(v.oldLocked)},
       {"new", optional(v.newLocked)},
       {"added", v.added},
       {"removed", v.removed},
       {"transitive", v.transitive}};
}
void from_json(const json& j, InputChange& v) {
  v.name = j.at("name").get<std::string>();
  v.path = j.value("path", std::vector<std::string>{});
  readOptional(j, "old", v.oldLocked);
  readOptional(j, "new", v.newLocked);
  v.added = j.value("added", false);
  v.removed = j.value("removed", false);
  v.transitive = j.value("transitive", false);
}

void to_json(json& j, const FileChange& v) {
  j = {{"path", v.path}, {"status", toString(v.status)}};
  if (v.oldPath) j["old_path"] = *v.oldPath;
}
void from_json(const json& j, FileChange& v) {
  v.path = j.at("path").get<std::string>();
  v.status = parseEnum(j.at("status").get<std::string>(), kStatuses, "file status");
  readOptional(j, "old_path", v.oldPath);
}

void to_json(json& j, const Reason& v) {
  j = {{"kind", toString(v.kind)}};
  if (!v.path.empty()) j["path"] = v.path;
  if (!v.name.empty()) j["name"] = v.name;
  if (!v.detail.empty()) j["detail"] = v.detail;
}
void from_json(const json& j, Reason& v) {
  v.kind = parseEnum(j.at("kind").get<std::string>(), kKinds, "reason kind");
  v.path = j.value("path", "");
  v.name = j.value("name", "");
  v.detail = j.value("detail", "");
}

void to_json(json& j, const HostPlan& v) {
  j = {{"name", v.name},
       {"affected", v.affected},
       {"reasons", v.reasons},
       {"old_drv", optional(v.oldDrv)},
       {"new_drv", optional(v.newDrv)}};
  if (v.evalError) j["eval_error"] = *v.evalError;
  if (v.refused) j["refused"] = *v.refused;
}
void from_json(const json& j, HostPlan& v) {
  v.name = j.at("name").get<std::string>();
  v.affected = j.at("affected").get<bool>();
  v.reasons = j.value("reasons", std::vector<Reason>{});
  readOptional(j, "old_drv", v.oldDrv);
  readOptional(j, "new_drv", v.newDrv);
  readOptional(j, "eval_error", v.evalError);
  readOptional(j, "refused", v.refused);
}

void to_json(json& j, const Plan& v) {
  j = {{"repo", v.repo},
       {"from", v.from},
       {"to", v.to},
       {"mode", toString(v.mode)},
       {"inputs_changed", v.inputsChanged},
       {"files_changed", v.filesChanged},
       {"hosts", v.hosts}};
  if (!v.warnings.empty()) j["warnings"] = v.warnings;
  if (!v.discoveryError.empty()) j["discovery_error"] = v.discoveryError;
}
void from_json(const json& j, Plan& v) {
  v.repo = j.value("repo", "");
  v.from = j.value("from", "");
  v.to = j.value("to", "");
  v.mode = parseEnum(j.value("mode", "static"), kModes, "plan mode");
  v.inputsChanged = j.value("inputs_changed", std::vector<InputChange>{});
  v.filesChanged = j.value("files_changed", std::vector<FileChange>{});
  v.hosts = j.value("hosts", std::vector<HostPlan>{});
  v.warnings = j.value("warnings", std::vector<std::string>{});
  v.discoveryError = j.value("discovery_error", "");
}

}  // namespace runner
