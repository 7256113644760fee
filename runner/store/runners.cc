#include "runner/store/runners.h"

#include <random>

#include "runner/store/host_locks.h"

namespace runner::store {

std::string Runners::newId() {
  std::random_device rd;
  uint64_t r = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  static const char* kHex = "0123456789abcdef";
  std::string nonce;
  for (int i = 0; i < 12; ++i) nonce += kHex[(r >> (4 * i)) & 0xf];
  return HostLocks::thisProcess() + ":" + nonce;
}

void Runners::enter(const std::string& id, std::chrono::milliseconds lease) {
  const int64_t now = clock_.nowMillis();
  db_.exec(
      "INSERT INTO runners(id, started_at, expires_at) VALUES (?1, ?2, ?3) "
      "ON CONFLICT(id) DO UPDATE SET expires_at = excluded.expires_at",
      {id, now, now + lease.count()});
}

bool Runners::renew(const std::string& id, std::chrono::milliseconds lease) {
  const int64_t now = clock_.nowMillis();
  return db_.exec("UPDATE runners SET expires_at = ?1 WHERE id = ?2 AND expires_at >= ?3",
                  {now + lease.count(), id, now}) > 0;
}

void Runners::leave(const std::string& id) {
  db_.exec("UPDATE runners SET expires_at = 0 WHERE id = ?1", {id});
}

std::optional<int64_t> Runners::expiresAt(const std::string& id) {
  auto rows = db_.query("SELECT expires_at FROM runners WHERE id = ?1", {id});
  if (rows.empty()) return std::nullopt;
  return rows[0].integer(0);
}

bool Runners::isLive(const std::string& id) {
  auto until = expiresAt(id);
  return until && *until >= clock_.nowMillis() && !HostLocks::isDeadLocalOwner(id);
}

bool Runners::isGone(const std::string& owner) {
  if (HostLocks::isDeadLocalOwner(owner)) return true;
  auto until = expiresAt(owner);
  return until && *until < clock_.nowMillis();
}

}  // namespace runner::store
