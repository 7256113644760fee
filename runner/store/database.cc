#include "runner/store/database.h"

#include "runner/core/error.h"
#include "runner/core/log.h"
#include "runner/store/schema.h"
#include "runner/store/sql_connection.h"
#include "runner/store/sql_dialect.h"

namespace fs = std::filesystem;

namespace runner::store {

std::string firstWords(std::string_view sql) {
  size_t i = 0;
  while (i < sql.size() && (sql[i] == ' ' || sql[i] == '\n')) ++i;
  std::string_view rest = sql.substr(i, 48);
  std::string out(rest.substr(0, rest.find('\n')));
  return out;
}

int64_t SqlRow::integer(size_t i) const {
  const auto& v = values.at(i);
  if (auto* p = std::get_if<int64_t>(&v)) return *p;
  if (auto* d = std::get_if<double>(&v)) return static_cast<int64_t>(*d);
  return 0;
}
std::string SqlRow::text(size_t i) const {
  const auto& v = values.at(i);
  if (auto* s = std::get_if<std::string>(&v)) return *s;
  if (auto* p = std::get_if<int64_t>(&v)) return std::to_string(*p);
  return "";
}
std::optional<std::string> SqlRow::optText(size_t i) const {
  if (isNull(i)) return std::nullopt;
  return text(i);
}
std::optional<int64_t> SqlRow::optInteger(size_t i) const {
  if (isNull(i)) return std::nullopt;
  return integer(i);
}

Database::Database(std::unique_ptr<SqlConnection> conn, std::string location)
    : conn_(std::move(conn)), backend_(conn_->backend()), location_(std::move(location)) {}
Database::~Database() = default;

std::unique_ptr<Database> Database::open(const fs::path& file, Durability durability) {
  std::error_code ec;
  if (file.has_parent_path()) fs::create_directories(file.parent_path(), ec);
  std::unique_ptr<Database> db(new Database(openSqliteConnection(file, durability), file));
  try {
    db->migrate();
  } catch (Error& e) {
    e.addContext("while opening " + file.string());
    throw;
  }
  return db;
}

std::unique_ptr<Database> Database::connect(const std::string& url) {
  const std::string shown = urlWithoutPassword(url);
  std::unique_ptr<Database> db;
  try {
    db.reset(new Database(openPostgresConnection(url), shown));
    db->migrate();
  } catch (Error& e) {
    e.addContext("while connecting to " + shown);
    throw;
  }
  return db;
}

std::unique_ptr<Database> Database::openConfigured(const std::string& database,
                                                   const fs::path& defaultFile,
                                                   Durability durability) {
  if (database.empty()) return open(defaultFile, durability);
  if (!isPostgresUrl(database))
    throw StoreError("database '" + urlWithoutPassword(database) +
                     "' is not a postgresql:// URL (leave it out for the SQLite file in the "
                     "state directory)");
  return connect(database);
}

int Database::schemaVersion() {
  RecursiveMutexLock lk(mu_);
  return conn_->schemaVersion();
}

void Database::migrate() {
  const auto& ms = migrations();
  transaction([&] {
    conn_->lockSchema();
    int version = conn_->schemaVersion();
    if (version > static_cast<int>(ms.size()))
      throw StoreError("database schema version " + std::to_string(version) +
                       " is newer than this switchyard supports (" + std::to_string(ms.size()) +
                       ")");
    for (size_t i = static_cast<size_t>(version); i < ms.size(); ++i) {
      try {
        conn_->runScript(ddlFor(backend_, ms[i]));
      } catch (Error& e) {
        e.addContext("while running migration " + std::to_string(i + 1));
        throw;
      }
      conn_->setSchemaVersion(static_cast<int>(i + 1));
    }
  });
}

void Database::lockForTransaction(TxnLock lock) {
  RecursiveMutexLock lk(mu_);
  if (txnDepth_ == 0) throw StoreError("lockForTransaction outside a transaction");
  conn_->lockForTransaction(static_cast<int64_t>(lock));
}

void Database::transaction(const std::function<void()>& fn) {
  RecursiveMutexLock lk(mu_);
  if (txnDepth_ > 0) {
    ++txnDepth_;
    try {
      fn();
    } catch (...) {
      --txnDepth_;
      throw;
    }
    --txnDepth_;
    return;
  }
  conn_->begin();
  txnDepth_ = 1;
  try {
    fn();
    conn_->commit();
    txnDepth_ = 0;
  } catch (...) {
    txnDepth_ = 0;
    conn_->rollback();  // never throws
    throw;
  }
}

std::vector<SqlRow> Database::run(std::string_view sql, const std::vector<SqlValue>& params,
                                  int64_t& changed) {
  RecursiveMutexLock lk(mu_);
  const Redactor* r = redactor_.load();
  if (!r) return conn_->run(sql, params, changed);
  std::vector<SqlValue> redacted = params;
  for (auto& v : redacted)
    if (auto* s = std::get_if<std::string>(&v)) *s = r->apply(*s);
  return conn_->run(sql, redacted, changed);
}

std::vector<SqlRow> Database::query(std::string_view sql, const std::vector<SqlValue>& params) {
  int64_t changed = 0;
  return run(sql, params, changed);
}

int64_t Database::exec(std::string_view sql, const std::vector<SqlValue>& params) {
  int64_t changed = 0;
  run(sql, params, changed);
  return changed;
}

void Database::setRedactor(const Redactor* redactor) { redactor_ = redactor; }

}  // namespace runner::store
