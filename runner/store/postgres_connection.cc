// The PostgreSQL adapter of SqlConnection (libpqxx): statements prepared once per connection
// under their SQL text, parameters sent as text and typed by the server from their context,
// results read back by column type. The schema version lives in a one-row table, and a
// transaction-scoped advisory lock keeps two runners from migrating at once.
#include <map>
#include <optional>
#include <pqxx/pqxx>

#include "runner/core/error.h"
#include "runner/store/sql_connection.h"
#include "runner/store/sql_dialect.h"

namespace runner::store {
namespace {

// Type OIDs of the built-in types we read as numbers (PostgreSQL's pg_type.dat).
constexpr pqxx::oid kBool = 16, kInt8 = 20, kInt2 = 21, kInt4 = 23, kFloat4 = 700, kFloat8 = 701,
                    kNumeric = 1700;
// pg_advisory_xact_lock key for migrations ("SWYD").
constexpr int64_t kMigrationLock = 0x53575944;

SqlValue valueOf(const pqxx::field& f) {
  if (f.is_null()) return nullptr;
  std::string_view text(f.c_str(), f.size());
  switch (f.type()) {
    case kBool:
      return int64_t{text == "t" ? 1 : 0};
    case kInt2:
    case kInt4:
    case kInt8:
      return static_cast<int64_t>(std::stoll(std::string(text)));
    case kFloat4:
    case kFloat8:
      return std::stod(std::string(text));
    case kNumeric:  // SUM(bigint) is numeric: whole numbers stay integers
      if (text.find_first_of(".eE") == std::string_view::npos)
        return static_cast<int64_t>(std::stoll(std::string(text)));
      return std::stod(std::string(text));
    default:
      return std::string(text);
  }
}

class PostgresConnection final : public SqlConnection {
 public:
  explicit PostgresConnection(const std::string& url) : conn_(url) {}

  Backend backend() const override { return Backend::Postgres; }

  std::vector<SqlRow> run(std::string_view sql, const std::vector<SqlValue>& params,
                          int64_t& changed) override {
    const std::string& name = prepared(sql);
    std::vector<std::string> texts(params.size());
    std::vector<const char*> args(params.size());
    for (size_t i = 0; i < params.size(); ++i) {
      std::visit(
          [&](const auto& v) {
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, std::nullptr_t>) {
              args[i] = nullptr;
            } else {
              if constexpr (std::is_same_v<T, std::string>)
                texts[i] = v;
              else
                texts[i] = pqxx::to_string(v);
              args[i] = texts[i].c_str();
            }
          },
          params[i]);
    }
    pqxx::result r;
    try {
      if (txn_) {
        r = txn_->exec_prepared(name, pqxx::prepare::make_dynamic_params(args));
      } else {
        pqxx::nontransaction once(conn_);
        r = once.exec_prepared(name, pqxx::prepare::make_dynamic_params(args));
      }
    } catch (const std::exception& e) {
      throw StoreError("running '" + firstWords(sql) + "': " + trimmed(e.what()));
    }
    changed = static_cast<int64_t>(r.affected_rows());
    std::vector<SqlRow> rows;
    rows.reserve(r.size());
    for (const auto& row : r) {
      SqlRow out;
      out.values.reserve(row.size());
      for (const auto& f : row) out.values.push_back(valueOf(f));
      rows.push_back(std::move(out));
    }
    return rows;
  }

  void runScript(std::string_view sql) override {
    try {
      if (txn_) {
        txn_->exec(std::string(sql));
      } else {
        pqxx::nontransaction once(conn_);
        once.exec(std::string(sql));
      }
    } catch (const std::exception& e) {
      throw StoreError(trimmed(e.what()));
    }
  }

  void begin() override {
    try {
      txn_.emplace(conn_);
    } catch (const std::exception& e) {
      throw StoreError("BEGIN: " + trimmed(e.what()));
    }
  }
  void commit() override {
    try {
      txn_->commit();
      txn_.reset();
    } catch (const std::exception& e) {
      txn_.reset();
      throw StoreError("COMMIT: " + trimmed(e.what()));
    }
  }
  void rollback() noexcept override {
    try {
      if (txn_) txn_->abort();
    } catch (...) {  // the connection is gone: the server rolls back by itself
    }
    txn_.reset();
  }

  int schemaVersion() override {
    runScript(
        "CREATE TABLE IF NOT EXISTS switchyard_schema (version BIGINT NOT NULL);"
        "INSERT INTO switchyard_schema SELECT 0 WHERE NOT EXISTS "
        "(SELECT 1 FROM switchyard_schema)");
    int64_t changed = 0;
    return static_cast<int>(
        run("SELECT version FROM switchyard_schema", {}, changed).at(0).integer(0));
  }
  void setSchemaVersion(int version) override {
    int64_t changed = 0;
    run("UPDATE switchyard_schema SET version = ?1", {int64_t{version}}, changed);
  }
  void lockSchema() override { lockForTransaction(kMigrationLock); }
  void lockForTransaction(int64_t key) override {
    int64_t changed = 0;
    run("SELECT pg_advisory_xact_lock(?1)", {key}, changed);
  }

 private:
  // The server's messages end in a newline and sometimes carry a second line.
  static std::string trimmed(std::string msg) {
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    return msg;
  }

  const std::string& prepared(std::string_view sql) {
    auto it = statements_.find(sql);
    if (it != statements_.end()) return it->second;
    std::string name = "s" + std::to_string(statements_.size() + 1);
    conn_.prepare(name, postgresPlaceholders(sql));
    return statements_.emplace(std::string(sql), std::move(name)).first->second;
  }

  pqxx::connection conn_;
  std::optional<pqxx::work> txn_;
  std::map<std::string, std::string, std::less<>> statements_;  // SQL text → prepared name
};

}  // namespace

std::unique_ptr<SqlConnection> openPostgresConnection(const std::string& url) {
  try {
    return std::make_unique<PostgresConnection>(url);
  } catch (const std::exception& e) {
    std::string msg = e.what();
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    throw StoreError("cannot connect to PostgreSQL: " + msg);
  }
}

}  // namespace runner::store
