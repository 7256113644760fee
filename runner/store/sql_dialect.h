// Where SQLite's and PostgreSQL's SQL differ, in one place. Statements in this folder are
// written in the dialect the two share (ON CONFLICT … DO UPDATE/NOTHING for upserts,
// RETURNING id for new rows, times as unix ms bound from the Clock rather than the
// engine's now()); what cannot be shared is rewritten here for PostgreSQL:
//   * placeholders: ?N and ? become $N;
//   * the schema's types: an `INTEGER PRIMARY KEY` id becomes an identity column (SQLite's
//     rowid alias), INTEGER becomes BIGINT (unix ms do not fit 32 bits), WITHOUT ROWID goes.
// The schema version lives in PRAGMA user_version on SQLite and in a one-row table on
// PostgreSQL (the adapters).
#pragma once

#include <string>
#include <string_view>

#include "runner/store/database.h"

namespace runner::store {

// `sql` with ?N / ? rewritten to $N (outside quoted strings and comments); for PostgreSQL.
std::string postgresPlaceholders(std::string_view sql);

// A migration written for SQLite, as `backend` needs it.
std::string ddlFor(Backend backend, std::string_view migration);

// Appended to a SELECT that claims rows for this transaction: PostgreSQL locks them and
// skips rows another runner's transaction holds (FOR UPDATE SKIP LOCKED); SQLite needs
// nothing, BEGIN IMMEDIATE already gives the transaction the whole database.
std::string_view claimRowsSuffix(Backend backend);

bool isPostgresUrl(std::string_view s);
// postgresql://user:secret@host/db → postgresql://user:***@host/db (for messages and logs).
std::string urlWithoutPassword(std::string_view url);

}  // namespace runner::store
