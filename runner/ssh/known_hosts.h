// known_hosts lookups and the messages for a refused host key.
//
// libssh tells us *that* a host key does not match (ssh_session_is_known_server), not *which*
// recorded key it compared against or where that key is written. A person fixing a refused
// deploy needs both: the key the server offered, the key on record, and the file and line to
// edit. These functions find the recorded entries (plain and hashed `|1|` host names, with
// OpenSSH's `[host]:port` form for ports other than 22) and build that message.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace runner::ssh {

// The host field OpenSSH and libssh use for a host and port: "host" for 22, else "[host]:port"
// (IPv6 addresses go in without brackets for port 22, in brackets otherwise).
std::string knownHostsName(const std::string& host, int port);

struct KnownHostEntry {
  int line = 0;             // 1-based line in the file
  std::string keyType;      // "ssh-ed25519", "ecdsa-sha2-nistp256", …
  std::string fingerprint;  // "SHA256:…" (as ssh-keygen -l prints it)
};

// Every entry of `file` that applies to `hostField` (see knownHostsName), in file order.
// Hashed host names are matched. Empty when the file does not exist or nothing matches.
// Lines that do not parse are skipped (OpenSSH ignores them too).
std::vector<KnownHostEntry> knownHostEntries(const std::filesystem::path& file,
                                             const std::string& hostField);

// How the offered key compares with the entries on record.
enum class HostKeyVerdict {
  Match,    // an entry with the same key
  Changed,  // an entry with a key of the same type, but a different key
  Other,    // entries only with keys of other types
  Unknown,  // no entry for this host at all
};

// The verdict from the recorded entries and the key the server offered (pure).
// `offeredFingerprint` is compared with each entry's fingerprint (same type → same digest).
HostKeyVerdict judgeHostKey(const std::vector<KnownHostEntry>& recorded,
                            const std::string& offeredType, const std::string& offeredFingerprint);

// The refusal message for a verdict other than Match (pure), e.g.
//   host key of [127.0.0.11]:2201 has CHANGED: the server offered ssh-ed25519 SHA256:abc…,
//   /etc/switchyard/known_hosts:3 records ssh-ed25519 SHA256:def…. If the host was
//   reinstalled, check the new key out of band, then replace line 3 of
//   /etc/switchyard/known_hosts (ssh-keygen -R '[127.0.0.11]:2201' -f …). Refusing to connect.
std::string hostKeyRefusal(HostKeyVerdict verdict, const std::string& hostField,
                           const std::string& offeredType, const std::string& offeredFingerprint,
                           const std::vector<KnownHostEntry>& recorded,
                           const std::filesystem::path& file);

}  // namespace runner::ssh
