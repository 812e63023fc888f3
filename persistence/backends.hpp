// The backends behind open_store (persistence/store.hpp).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "persistence/store.hpp"

namespace keymesh::persistence {

/// Opens (creating if needed) the SQLite database at PATH; BUSY: how long a
/// statement waits for another connection's lock.
std::unique_ptr<store> open_sqlite_store(const std::string& path,
                                         std::chrono::milliseconds busy);

struct mysql_options {
  std::string host;
  unsigned port = 3306;
  std::string database;
  std::string user;
  std::string password;
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds query_timeout{10000};
  /// "disabled", "required" or "verify".
  std::string tls_mode = "disabled";
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
};

/// Connects to MySQL/MariaDB.
std::unique_ptr<store> open_mysql_store(const mysql_options& opts);

} // namespace keymesh::persistence
