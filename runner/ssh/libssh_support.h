// Internal to runner/ssh: the RAII aliases for libssh handles (STYLE.md P4), the one error
// check for libssh calls (P6) and key fingerprints. Only .cc files in this folder include it.
#pragma once

#include <string>
#include <string_view>
#include <type_traits>

#include <libssh/libssh.h>

#include "runner/core/c_handle.h"

namespace runner::ssh::detail {

// Disconnects (politely, if still connected) and frees a session.
void closeSession(ssh_session s) noexcept;

using SessionHandle = CHandle<std::remove_pointer_t<ssh_session>, closeSession>;
using ChannelHandle = CHandle<std::remove_pointer_t<ssh_channel>, ssh_channel_free>;
using KeyHandle = CHandle<std::remove_pointer_t<ssh_key>, ssh_key_free>;
using KnownHostsEntryHandle = CHandle<ssh_knownhosts_entry, ssh_knownhosts_entry_free>;

// Throws SshError "<doing>: <libssh's message> (libssh <rc>)" when rc is not SSH_OK.
// Call it on the thread that made the failing call, right after it.
void checkSsh(ssh_session session, int rc, std::string_view doing);

// "SHA256:…" as ssh-keygen -l prints it; "" if the key cannot be hashed.
std::string fingerprintOf(ssh_key key);
// "ssh-ed25519", …
std::string keyTypeOf(ssh_key key);

// Initialises libssh once per process (thread-safe).
void ensureLibsshInitialised();

}  // namespace runner::ssh::detail
