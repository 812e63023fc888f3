// The MySQL/MariaDB backend (MySQL Connector/C++ 1.1): one connection per
// pool worker, prepared statements, binary columns for identifiers.
#include "persistence/backends.hpp"

#include <mysql_connection.h>
#include <mysql_driver.h>

#include <cppconn/exception.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <cppconn/datatype.h>
#include <cppconn/resultset_metadata.h>
#include <unistd.h>

#include "common/clock.hpp"
#include "persistence/migrations.hpp"
#include "persistence/sql_store.hpp"

namespace keymesh::persistence {

namespace {

/// Client-side errors (2000 and up: the connection), lock waits, deadlocks
/// and refused logins may pass on another try; the rest is the statement.
store_failure classify(const sql::SQLException& e) {
  auto code = e.getErrorCode();
  if (code == 0 || code >= 2000)
    return store_failure::unavailable;
  switch (code) {
    case 1040: // too many connections
    case 1044: // access denied to the database
    case 1045: // access denied for the user
    case 1049: // unknown database
    case 1053: // server shutdown in progress
    case 1205: // lock wait timeout
    case 1213: // deadlock
    case 1927: // connection killed
      return store_failure::unavailable;
    case 1062: // duplicate entry for a unique key
      return store_failure::conflict;
    default:
      return store_failure::rejected;
  }
}

[[noreturn]] void rethrow(const sql::SQLException& e, const char* what) {
  throw store_error(classify(e), std::string{"mysql "} + what + ": "
                                   + e.what() + " (error "
                                   + std::to_string(e.getErrorCode()) + ")");
}

sql::mysql::MySQL_Driver* driver() {
  // The first call initialises the client library: not thread-safe.
  static std::mutex mutex;
  std::lock_guard<std::mutex> guard{mutex};
  return sql::mysql::get_mysql_driver_instance();
}

class mysql_store : public sql_store {
public:
  explicit mysql_store(const mysql_options& opts) : opts_(opts) {
    driver_ = driver();
    driver_->threadInit();
    sql::ConnectOptionsMap props;
    props["hostName"] = "tcp://" + opts.host + ":" + std::to_string(opts.port);
    props["userName"] = opts.user;
    props["password"] = opts.password;
    props["schema"] = opts.database;
    auto seconds = [](std::chrono::milliseconds ms) {
      return static_cast<int>(std::max<int64_t>(1, (ms.count() + 999) / 1000));
    };
    props["OPT_CONNECT_TIMEOUT"] = seconds(opts.connect_timeout);
    props["OPT_READ_TIMEOUT"] = seconds(opts.query_timeout);
    props["OPT_WRITE_TIMEOUT"] = seconds(opts.query_timeout);
    props["OPT_RECONNECT"] = false;
    props["OPT_CHARSET_NAME"] = "utf8mb4";
    // UPDATE counts the rows it matched, not only those it changed.
    props["CLIENT_FOUND_ROWS"] = true;
    if (opts.tls_mode != "disabled") {
      props["sslEnforce"] = true;
      if (!opts.tls_ca.empty())
        props["sslCA"] = opts.tls_ca;
      if (!opts.tls_cert.empty())
        props["sslCert"] = opts.tls_cert;
      if (!opts.tls_key.empty())
        props["sslKey"] = opts.tls_key;
      props["sslVerify"] = opts.tls_mode == "verify";
    }
    try {
      conn_.reset(driver_->connect(props));
      conn_->setAutoCommit(true);
      std::unique_ptr<sql::Statement> s{conn_->createStatement()};
      s->execute("SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'");
    } catch (const sql::SQLException& e) {
      driver_->threadEnd();
      throw store_error(store_failure::unavailable,
                        "cannot connect to MySQL at " + opts.host + ":"
                          + std::to_string(opts.port) + " as " + opts.user
                          + ": " + e.what());
    }
  }

  ~mysql_store() override {
    put_revocation_.reset();
    cache_.clear();
    try {
      if (conn_)
        conn_->close();
    } catch (const sql::SQLException&) {
      // gone already
    }
    conn_.reset();
    driver_->threadEnd();
  }

  const char* backend() const override {
    return "mysql";
  }


  void migrate() override {
    try {
      // Nodes that start together take turns: the lock is the server's and
      // ends with the session if this node dies.
      auto timeout = std::to_string(
        std::max<int64_t>(1, opts_.query_timeout.count() / 1000));
      auto got = query_int("SELECT GET_LOCK('keymesh_migrate', " + timeout + ")");
      if (got != 1)
        throw store_error(store_failure::unavailable,
                          "another node holds the migration lock");
      try {
        execute(schema_table_mysql);
        for (auto* m : pending_migrations(current_version(), "the database "
                                                               + opts_.database)) {
          // MySQL commits each DDL statement on its own: the statements are
          // written to be re-run safely if a node dies half-way.
          for (auto& sql : m->mysql)
            execute(sql);
          std::unique_ptr<sql::PreparedStatement> record{conn_->prepareStatement(
            "INSERT INTO keymesh_schema (version, description, applied_at_ms, "
            "applied_by) VALUES (?, ?, ?, ?)")};
          record->setInt(1, m->version);
          record->setString(2, m->description);
          record->setInt64(3, to_unix_ms(std::chrono::system_clock::now()));
          record->setString(4, "pid " + std::to_string(getpid()));
          record->execute();
        }
      } catch (...) {
        release_lock();
        throw;
      }
      release_lock();
    } catch (const sql::SQLException& e) {
      rethrow(e, "migration");
    }
  }

  int schema_version() override {
    try {
      execute(schema_table_mysql);
      return current_version();
    } catch (const sql::SQLException& e) {
      rethrow(e, "schema version");
    }
  }

  void ping() override {
    try {
      query_int("SELECT 1");
    } catch (const sql::SQLException& e) {
      rethrow(e, "ping");
    }
  }

  void put_revocation(const revocation_entry& e) override {
    try {
      if (!put_revocation_)
        put_revocation_.reset(conn_->prepareStatement(
          "INSERT INTO revocations (kind, value, revoked_at_ms, until_ms, "
          "reason, origin) VALUES (?, ?, ?, ?, ?, ?) "
          "ON DUPLICATE KEY UPDATE "
          "revoked_at_ms = GREATEST(revoked_at_ms, VALUES(revoked_at_ms)), "
          "until_ms = GREATEST(until_ms, VALUES(until_ms))"));
      put_revocation_->setString(1, e.kind);
      put_revocation_->setString(2, e.value);
      put_revocation_->setInt64(3, e.revoked_at);
      put_revocation_->setInt64(4, e.until);
      put_revocation_->setString(5, e.reason);
      put_revocation_->setString(6, e.origin);
      put_revocation_->executeUpdate();
    } catch (const sql::SQLException& ex) {
      rethrow(ex, "put revocation");
    }
  }

  std::vector<revocation_entry> live_revocations(int64_t now_ms) override {
    try {
      std::unique_ptr<sql::PreparedStatement> s{conn_->prepareStatement(
        "SELECT kind, value, revoked_at_ms, until_ms, reason, origin "
        "FROM revocations WHERE until_ms > ?")};
      s->setInt64(1, now_ms);
      std::unique_ptr<sql::ResultSet> rows{s->executeQuery()};
      std::vector<revocation_entry> out;
      while (rows->next())
        out.push_back({rows->getString(1), rows->getString(2),
                       rows->getInt64(3), rows->getInt64(4),
                       rows->getString(5), rows->getString(6)});
      return out;
    } catch (const sql::SQLException& e) {
      rethrow(e, "load revocations");
    }
  }

  size_t prune_revocations(int64_t now_ms) override {
    try {
      std::unique_ptr<sql::PreparedStatement> s{
        conn_->prepareStatement("DELETE FROM revocations WHERE until_ms <= ?")};
      s->setInt64(1, now_ms);
      return static_cast<size_t>(s->executeUpdate());
    } catch (const sql::SQLException& e) {
      rethrow(e, "prune revocations");
    }
  }

protected:
  size_t execute(const std::string& sql,
                 const std::vector<sql_param>& params) override {
    try {
      return static_cast<size_t>(prepared(sql, params).executeUpdate());
    } catch (const sql::SQLException& e) {
      rethrow(e, "statement");
    }
  }

  std::vector<sql_row> query(const std::string& sql,
                             const std::vector<sql_param>& params) override {
    try {
      std::unique_ptr<sql::ResultSet> rs{prepared(sql, params).executeQuery()};
      auto columns = rs->getMetaData()->getColumnCount();
      std::vector<sql_row> rows;
      while (rs->next()) {
        sql_row row;
        for (unsigned i = 1; i <= columns; ++i)
          row.push_back(rs->isNull(i)
                          ? std::nullopt
                          : std::optional<std::string>{rs->getString(i)});
        rows.push_back(std::move(row));
      }
      return rows;
    } catch (const sql::SQLException& e) {
      rethrow(e, "query");
    }
  }

  int64_t last_insert_id() override {
    try {
      return query_int("SELECT LAST_INSERT_ID()");
    } catch (const sql::SQLException& e) {
      rethrow(e, "last insert id");
    }
  }

  const char* insert_ignore() const override {
    return "INSERT IGNORE";
  }

  const char* secret_ring_upsert() const override {
    // Assignments run left to right: the generation changes last.
    return " ON DUPLICATE KEY UPDATE"
           " sealed = IF(VALUES(generation) > generation, VALUES(sealed),"
           " sealed),"
           " updated_at_ms = IF(VALUES(generation) > generation,"
           " VALUES(updated_at_ms), updated_at_ms),"
           " generation = GREATEST(generation, VALUES(generation))";
  }

  const char* session_upsert() const override {
    // Assignments run left to right: version changes last.
    return " ON DUPLICATE KEY UPDATE"
           " value = IF(VALUES(version) > version, VALUES(value), value),"
           " expires_at_ms = IF(VALUES(version) > version,"
           " VALUES(expires_at_ms), expires_at_ms),"
           " version = GREATEST(version, VALUES(version))";
  }

private:
  sql::PreparedStatement& prepared(const std::string& sql,
                                   const std::vector<sql_param>& params) {
    auto& slot = cache_[sql];
    if (!slot)
      slot.reset(conn_->prepareStatement(sql));
    slot->clearParameters();
    unsigned i = 0;
    for (auto& p : params) {
      ++i;
      if (auto n = std::get_if<int64_t>(&p))
        slot->setInt64(i, *n);
      else if (auto t = std::get_if<std::string>(&p))
        slot->setString(i, *t);
      else
        slot->setNull(i, sql::DataType::VARCHAR);
    }
    return *slot;
  }

  void execute(const std::string& sql) {
    std::unique_ptr<sql::Statement> s{conn_->createStatement()};
    s->execute(sql);
  }

  int64_t query_int(const std::string& sql) {
    std::unique_ptr<sql::Statement> s{conn_->createStatement()};
    std::unique_ptr<sql::ResultSet> rows{s->executeQuery(sql)};
    return rows->next() && !rows->isNull(1) ? rows->getInt64(1) : 0;
  }

  int current_version() {
    return static_cast<int>(
      query_int("SELECT COALESCE(MAX(version), 0) FROM keymesh_schema"));
  }

  void release_lock() {
    try {
      query_int("SELECT RELEASE_LOCK('keymesh_migrate')");
    } catch (const sql::SQLException&) {
      // the lock ends with the session anyway
    }
  }

  mysql_options opts_;
  sql::mysql::MySQL_Driver* driver_ = nullptr;
  std::unique_ptr<sql::Connection> conn_;
  std::unique_ptr<sql::PreparedStatement> put_revocation_;
  std::unordered_map<std::string, std::unique_ptr<sql::PreparedStatement>>
    cache_;
};

} // namespace

std::unique_ptr<store> open_mysql_store(const mysql_options& opts) {
  return std::make_unique<mysql_store>(opts);
}

} // namespace keymesh::persistence
