// The SQLite backend: one file in the data directory, WAL journal, one
// connection per pool worker (SQLite serialises the writers itself).
#include "persistence/backends.hpp"

#include <sqlite3.h>

#include <chrono>
#include <thread>
#include <unordered_map>
#include <unistd.h>

#include "common/clock.hpp"
#include "persistence/migrations.hpp"
#include "persistence/sql_store.hpp"

namespace keymesh::persistence {

namespace {

/// One prepared statement; reset on every use.
class statement {
public:
  statement(sqlite3* db, const std::string& sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql.c_str(), static_cast<int>(sql.size()),
                           &stmt_, nullptr)
        != SQLITE_OK)
      fail("prepare");
  }

  ~statement() {
    sqlite3_finalize(stmt_);
  }

  statement(const statement&) = delete;
  statement& operator=(const statement&) = delete;

  statement& bind(int i, const std::string& text) {
    check(sqlite3_bind_blob(stmt_, i, text.data(),
                            static_cast<int>(text.size()), SQLITE_TRANSIENT));
    return *this;
  }

  statement& bind_text(int i, const std::string& text) {
    check(sqlite3_bind_text(stmt_, i, text.data(),
                            static_cast<int>(text.size()), SQLITE_TRANSIENT));
    return *this;
  }

  statement& bind(int i, int64_t value) {
    check(sqlite3_bind_int64(stmt_, i, value));
    return *this;
  }

  /// Steps once: true while a row is there.
  bool step() {
    auto rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW)
      return true;
    if (rc == SQLITE_DONE)
      return false;
    fail("step");
    return false;
  }

  /// Runs a statement without result rows.
  void run() {
    while (step()) {
    }
    reset();
  }

  void reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  int64_t integer(int col) const {
    return sqlite3_column_int64(stmt_, col);
  }

  bool is_null(int col) const {
    return sqlite3_column_type(stmt_, col) == SQLITE_NULL;
  }

  int columns() const {
    return sqlite3_column_count(stmt_);
  }

  std::string text(int col) const {
    auto data = static_cast<const char*>(sqlite3_column_blob(stmt_, col));
    auto size = sqlite3_column_bytes(stmt_, col);
    return data ? std::string{data, static_cast<size_t>(size)} : std::string{};
  }

private:
  void check(int rc) {
    if (rc != SQLITE_OK)
      fail("bind");
  }

  [[noreturn]] void fail(const char* what) {
    auto code = sqlite3_extended_errcode(db_);
    auto primary = code & 0xff;
    auto failure = primary == SQLITE_BUSY || primary == SQLITE_LOCKED
                       || primary == SQLITE_IOERR || primary == SQLITE_FULL
                       || primary == SQLITE_CANTOPEN
                     ? store_failure::unavailable
                   : code == SQLITE_CONSTRAINT_UNIQUE
                       || code == SQLITE_CONSTRAINT_PRIMARYKEY
                     ? store_failure::conflict
                     : store_failure::rejected;
    auto message = std::string{"sqlite "} + what + ": " + sqlite3_errmsg(db_);
    if (stmt_) {
      sqlite3_reset(stmt_);
      sqlite3_clear_bindings(stmt_);
    }
    throw store_error(failure, message);
  }

  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

class sqlite_store : public sql_store {
public:
  sqlite_store(const std::string& path, std::chrono::milliseconds busy)
    : path_(path) {
    auto flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                 | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
      std::string why = db_ ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      db_ = nullptr;
      throw store_error(store_failure::unavailable,
                        "cannot open the SQLite database " + path + ": " + why);
    }
    sqlite3_busy_timeout(db_, static_cast<int>(busy.count()));
    // WAL lets readers go on while a writer commits; NORMAL syncs at
    // checkpoints, and a commit survives a process crash (not a power cut
    // between checkpoints).
    // Switching a new file to WAL can answer "locked" without waiting when
    // other connections open it at the same time: try again until BUSY.
    auto deadline = std::chrono::steady_clock::now() + busy;
    for (;;) {
      try {
        exec("PRAGMA journal_mode=WAL");
        break;
      } catch (const store_error& e) {
        if (e.failure != store_failure::unavailable
            || std::chrono::steady_clock::now() >= deadline) {
          sqlite3_close(db_);
          db_ = nullptr;
          throw;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds{5});
      }
    }
    exec("PRAGMA synchronous=NORMAL");
    exec("PRAGMA foreign_keys=ON");
  }

  ~sqlite_store() override {
    put_revocation_.reset();
    cache_.clear();
    sqlite3_close(db_);
  }

  const char* backend() const override {
    return "sqlite";
  }


  void migrate() override {
    exec("BEGIN IMMEDIATE");
    try {
      exec(schema_table_sqlite);
      for (auto* m : pending_migrations(version_in_transaction(),
                                        "the database " + path_)) {
        for (auto& sql : m->sqlite)
          exec(sql);
        statement record{db_, "INSERT INTO keymesh_schema (version, "
                              "description, applied_at_ms, applied_by) "
                              "VALUES (?, ?, ?, ?)"};
        record.bind(1, int64_t{m->version})
          .bind_text(2, m->description)
          .bind(3, to_unix_ms(std::chrono::system_clock::now()))
          .bind_text(4, "pid " + std::to_string(getpid()))
          .run();
      }
      exec("COMMIT");
    } catch (...) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }

  int schema_version() override {
    exec(schema_table_sqlite);
    return version_in_transaction();
  }

  void ping() override {
    statement s{db_, "SELECT 1"};
    s.step();
  }

  void put_revocation(const revocation_entry& e) override {
    if (!put_revocation_)
      put_revocation_ = std::make_unique<statement>(
        db_,
        "INSERT INTO revocations (kind, value, revoked_at_ms, until_ms, "
        "reason, origin) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (kind, value) DO UPDATE SET "
        "revoked_at_ms = max(revoked_at_ms, excluded.revoked_at_ms), "
        "until_ms = max(until_ms, excluded.until_ms)");
    put_revocation_->bind_text(1, e.kind)
      .bind(2, e.value)
      .bind(3, e.revoked_at)
      .bind(4, e.until)
      .bind(5, e.reason)
      .bind_text(6, e.origin)
      .run();
  }

  std::vector<revocation_entry> live_revocations(int64_t now_ms) override {
    statement s{db_, "SELECT kind, value, revoked_at_ms, until_ms, reason, "
                     "origin FROM revocations WHERE until_ms > ?"};
    s.bind(1, now_ms);
    std::vector<revocation_entry> out;
    while (s.step())
      out.push_back({s.text(0), s.text(1), s.integer(2), s.integer(3),
                     s.text(4), s.text(5)});
    return out;
  }

  size_t prune_revocations(int64_t now_ms) override {
    statement s{db_, "DELETE FROM revocations WHERE until_ms <= ?"};
    s.bind(1, now_ms).run();
    return static_cast<size_t>(sqlite3_changes(db_));
  }

protected:
  size_t execute(const std::string& sql,
                 const std::vector<sql_param>& params) override {
    auto& s = prepared(sql, params);
    s.run();
    return static_cast<size_t>(sqlite3_changes(db_));
  }

  std::vector<sql_row> query(const std::string& sql,
                             const std::vector<sql_param>& params) override {
    auto& s = prepared(sql, params);
    std::vector<sql_row> rows;
    while (s.step()) {
      sql_row row;
      for (int i = 0; i < s.columns(); ++i)
        row.push_back(s.is_null(i) ? std::nullopt
                                   : std::optional<std::string>{s.text(i)});
      rows.push_back(std::move(row));
    }
    s.reset();
    return rows;
  }

  int64_t last_insert_id() override {
    return sqlite3_last_insert_rowid(db_);
  }

  const char* insert_ignore() const override {
    return "INSERT OR IGNORE";
  }

  const char* secret_ring_upsert() const override {
    return " ON CONFLICT (purpose) DO UPDATE SET sealed = excluded.sealed,"
           " generation = excluded.generation,"
           " updated_at_ms = excluded.updated_at_ms"
           " WHERE excluded.generation > secret_rings.generation";
  }

  const char* session_upsert() const override {
    return " ON CONFLICT (sid) DO UPDATE SET value = excluded.value,"
           " expires_at_ms = excluded.expires_at_ms,"
           " version = excluded.version"
           " WHERE excluded.version > sessions.version";
  }

private:
  /// The cached statement for SQL, with PARAMS bound.
  statement& prepared(const std::string& sql,
                      const std::vector<sql_param>& params) {
    auto& slot = cache_[sql];
    if (!slot)
      slot = std::make_unique<statement>(db_, sql);
    slot->reset();
    int i = 0;
    for (auto& p : params) {
      ++i;
      if (auto n = std::get_if<int64_t>(&p))
        slot->bind(i, *n);
      else if (auto t = std::get_if<std::string>(&p))
        slot->bind(i, *t);
      // nullptr: left unbound, which is NULL
    }
    return *slot;
  }

  void exec(const std::string& sql) {
    char* error = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
      std::string why = error ? error : "unknown error";
      sqlite3_free(error);
      auto primary = sqlite3_extended_errcode(db_) & 0xff;
      throw store_error(primary == SQLITE_BUSY || primary == SQLITE_LOCKED
                            || primary == SQLITE_IOERR
                          ? store_failure::unavailable
                          : store_failure::rejected,
                        "sqlite: " + why);
    }
  }

  int version_in_transaction() {
    statement s{db_, "SELECT COALESCE(MAX(version), 0) FROM keymesh_schema"};
    return s.step() ? static_cast<int>(s.integer(0)) : 0;
  }

  std::string path_;
  sqlite3* db_ = nullptr;
  std::unique_ptr<statement> put_revocation_;
  std::unordered_map<std::string, std::unique_ptr<statement>> cache_;
};

} // namespace

std::unique_ptr<store> open_sqlite_store(const std::string& path,
                                         std::chrono::milliseconds busy) {
  return std::make_unique<sqlite_store>(path, busy);
}

} // namespace keymesh::persistence
