#include "runner/ssh/known_hosts.h"

#include <fstream>

#include "runner/core/text.h"
#include "runner/ssh/libssh_support.h"

namespace runner::ssh {

std::string knownHostsName(const std::string& host, int port) {
  if (port == 22) return host;
  return "[" + host + "]:" + std::to_string(port);
}

std::vector<KnownHostEntry> knownHostEntries(const std::filesystem::path& file,
                                             const std::string& hostField) {
  detail::ensureLibsshInitialised();
  std::vector<KnownHostEntry> out;
  std::ifstream in(file);
  if (!in) return out;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    std::string_view t = trim(line);
    if (t.empty() || t.front() == '#') continue;
    detail::KnownHostsEntryHandle entry;
    // SSH_OK with an entry when the line applies to hostField (plain, pattern list or hashed);
    // SSH_AGAIN when it does not; SSH_ERROR when it does not parse.
    int rc = ssh_known_hosts_parse_line(hostField.c_str(), std::string(t).c_str(), Out(entry));
    if (rc != SSH_OK || !entry || !entry->publickey) continue;
    out.push_back(
        {number, detail::keyTypeOf(entry->publickey), detail::fingerprintOf(entry->publickey)});
  }
  return out;
}

HostKeyVerdict judgeHostKey(const std::vector<KnownHostEntry>& recorded,
                            const std::string& offeredType, const std::string& offeredFingerprint) {
  bool sameType = false;
  for (const auto& e : recorded) {
    if (e.keyType == offeredType) {
      if (e.fingerprint == offeredFingerprint) return HostKeyVerdict::Match;
      sameType = true;
    }
  }
  if (sameType) return HostKeyVerdict::Changed;
  return recorded.empty() ? HostKeyVerdict::Unknown : HostKeyVerdict::Other;
}

std::string hostKeyRefusal(HostKeyVerdict verdict, const std::string& hostField,
                           const std::string& offeredType, const std::string& offeredFingerprint,
                           const std::vector<KnownHostEntry>& recorded,
                           const std::filesystem::path& file) {
  const std::string offered = offeredType + " " + offeredFingerprint;
  const std::string path = file.string();
  const std::string removeHint =
      "ssh-keygen -R " + shellQuote(hostField) + " -f " + shellQuote(path);
  auto where = [&](const KnownHostEntry& e) {
    return path + ":" + std::to_string(e.line) + " records " + e.keyType + " " + e.fingerprint;
  };
  switch (verdict) {
    case HostKeyVerdict::Match:
      return "host key of " + hostField + " matches " + path;
    case HostKeyVerdict::Changed: {
      std::vector<std::string> records, lines;
      for (const auto& e : recorded) {
        if (e.keyType != offeredType) continue;
        records.push_back(where(e));
        lines.push_back(std::to_string(e.line));
      }
      return "host key of " + hostField + " has CHANGED: the server offered " + offered + ", " +
             join(records, ", ") +
             ". If the host was reinstalled or its key rotated, check the new key out of band, "
             "then replace line" +
             (lines.size() > 1 ? "s " : " ") + join(lines, ", ") + " of " + path + " (" +
             removeHint + ", then add the new key). Refusing to connect.";
    }
    case HostKeyVerdict::Other: {
      std::vector<std::string> records;
      for (const auto& e : recorded) records.push_back(where(e));
      return "host key of " + hostField + " is of another type than recorded: the server offered " +
             offered + ", but " + join(records, ", ") +
             ". If the host's keys changed, check the new key out of band and add it to " + path +
             ". Refusing to connect.";
    }
    case HostKeyVerdict::Unknown:
      break;
  }
  return "host " + hostField + " is not in " + path + " (the server offered " + offered +
         "). Strict host key checking refuses unknown hosts: check the key out of band, then "
         "add a line '" +
         hostField + " " + offeredType + " <base64 key>' to " + path + ". Refusing to connect.";
}

}  // namespace runner::ssh
