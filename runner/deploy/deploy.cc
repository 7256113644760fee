#include "runner/deploy/deploy.h"

#include <nlohmann/json.hpp>

#include "runner/core/error.h"
#include "runner/core/text.h"

namespace runner::deploy {

std::string_view resultName(HostResult r) {
  switch (r) {
    case HostResult::Succeeded:
      return "succeeded";
    case HostResult::Failed:
      return "failed";
    case HostResult::RolledBack:
      return "rolled-back";
    case HostResult::Unreachable:
      return "unreachable";
    case HostResult::Refused:
      return "refused";
    case HostResult::Skipped:
      return "skipped";
    case HostResult::DryRun:
      return "dry-run";
  }
  return "unknown";
}

std::string resultLabel(HostResult r) {
  if (r == HostResult::RolledBack) return "rolled back";
  if (r == HostResult::DryRun) return "dry run";
  return std::string(resultName(r));
}

bool isFailure(HostResult r) {
  return r == HostResult::Failed || r == HostResult::RolledBack || r == HostResult::Unreachable ||
         r == HostResult::Refused;
}

std::string_view stepName(Step s) {
  switch (s) {
    case Step::Lock:
      return "lock";
    case Step::Ancestry:
      return "ancestry";
    case Step::Connect:
      return "connect";
    case Step::Inspect:
      return "inspect";
    case Step::Copy:
      return "copy";
    case Step::Keys:
      return "keys";
    case Step::Activate:
      return "activate";
    case Step::Health:
      return "health";
    case Step::Confirm:
      return "confirm";
    case Step::Verify:
      return "verify";
    case Step::Record:
      return "record";
  }
  return "unknown";
}

namespace {

// Account and group names as useradd allows them (and numeric ids).
bool accountName(std::string_view s) {
  if (s.empty() || s.size() > 64 || s[0] == '-') return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '-' || c == '.'))
      return false;
  return true;
}

bool pathText(std::string_view s) {
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return false;
  return true;
}

std::string stringField(const std::string& attr, const nlohmann::json& j, const char* field,
                        const std::string& fallback) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_string())
    throw InputError("deployment.keys." + attr + "." + field + " is not a string");
  return it->get<std::string>();
}

}  // namespace

std::string KeySpec::describe() const {
  return name + " -> " + destination() + " (" + user + ":" + group + " " + permissions + ", " +
         (uploadAt == UploadAt::PreActivation ? "pre-activation" : "post-activation") + ")";
}

KeySpec parseKeySpec(const std::string& attr, const nlohmann::json& j) {
  const std::string where = "deployment.keys." + attr;
  if (!j.is_object()) throw InputError(where + " is not an attribute set");
  KeySpec k;
  k.name = stringField(attr, j, "name", attr);
  if (k.name.empty() || k.name == "." || k.name == ".." || k.name.find('/') != std::string::npos ||
      !pathText(k.name))
    throw InputError(where + ".name '" + k.name + "' is not a file name");
  int sources = 0;
  if (auto it = j.find("text"); it != j.end() && !it->is_null()) {
    if (!it->is_string()) throw InputError(where + ".text is not a string");
    k.source = KeySpec::Source::Text;
    k.text = it->get<std::string>();
    ++sources;
  }
  if (auto it = j.find("keyFile"); it != j.end() && !it->is_null()) {
    if (!it->is_string()) throw InputError(where + ".keyFile is not a path");
    k.source = KeySpec::Source::File;
    k.keyFile = it->get<std::string>();
    if (k.keyFile.empty() || k.keyFile[0] != '/' || !pathText(k.keyFile))
      throw InputError(where + ".keyFile '" + k.keyFile + "' is not an absolute path");
    ++sources;
  }
  if (auto it = j.find("keyCommand"); it != j.end() && !it->is_null()) {
    if (!it->is_array() || it->empty())
      throw InputError(where + ".keyCommand is not a non-empty list of strings");
    for (const auto& a : *it) {
      if (!a.is_string()) throw InputError(where + ".keyCommand is not a list of strings");
      k.keyCommand.push_back(a.get<std::string>());
    }
    k.source = KeySpec::Source::Command;
    ++sources;
  }
  if (sources != 1)
    throw InputError(where + " needs exactly one of text, keyFile and keyCommand (it has " +
                     std::to_string(sources) + ")");
  k.destDir = stringField(attr, j, "destDir", k.destDir);
  while (k.destDir.size() > 1 && k.destDir.back() == '/') k.destDir.pop_back();
  if (k.destDir.empty() || k.destDir[0] != '/' || !pathText(k.destDir) ||
      k.destDir.find("/../") != std::string::npos || endsWith(k.destDir, "/.."))
    throw InputError(where + ".destDir '" + k.destDir + "' is not an absolute directory");
  k.user = stringField(attr, j, "user", k.user);
  k.group = stringField(attr, j, "group", k.group);
  if (!accountName(k.user)) throw InputError(where + ".user '" + k.user + "' is not a user name");
  if (!accountName(k.group))
    throw InputError(where + ".group '" + k.group + "' is not a group name");
  k.permissions = stringField(attr, j, "permissions", k.permissions);
  bool octal = k.permissions.size() == 3 || k.permissions.size() == 4;
  for (char c : k.permissions) octal &= c >= '0' && c <= '7';
  if (!octal)
    throw InputError(where + ".permissions '" + k.permissions + "' is not an octal mode like 0600");
  const std::string at = stringField(attr, j, "uploadAt", "pre-activation");
  if (at == "pre-activation")
    k.uploadAt = KeySpec::UploadAt::PreActivation;
  else if (at == "post-activation")
    k.uploadAt = KeySpec::UploadAt::PostActivation;
  else
    throw InputError(where + ".uploadAt must be pre-activation or post-activation, not '" + at +
                     "'");
  return k;
}

std::chrono::milliseconds HostOutcome::duration(Step s) const {
  std::chrono::milliseconds total{0};
  for (const auto& [step, d] : durations)
    if (step == s) total += d;
  return total;
}

}  // namespace runner::deploy
