#include "persistence/store.hpp"

#include <filesystem>
#include <fstream>

#include "persistence/backends.hpp"

namespace keymesh::persistence {

std::string sqlite_path(const config::settings& cfg) {
  if (!cfg.database.path.empty())
    return cfg.database.path;
  return (std::filesystem::path{cfg.node.data_dir} / "keymesh.db").string();
}

std::string read_password(const config::settings& cfg) {
  const auto& file = cfg.database.password_file;
  if (file.empty())
    return {};
  std::ifstream in{file};
  if (!in)
    throw store_error(store_failure::unavailable,
                      "cannot read database.password_file " + file);
  std::string line;
  std::getline(in, line);
  if (!line.empty() && line.back() == '\r')
    line.pop_back();
  return line;
}

std::unique_ptr<store> open_store(const config::settings& cfg) {
  const auto& db = cfg.database;
  if (db.driver == "mysql") {
    mysql_options opts;
    opts.host = db.host;
    opts.port = db.port;
    opts.database = db.name;
    opts.user = db.user;
    opts.password = read_password(cfg);
    opts.connect_timeout = db.connect_timeout;
    opts.query_timeout = db.query_timeout;
    opts.tls_mode = db.tls.mode;
    opts.tls_ca = db.tls.ca;
    opts.tls_cert = db.tls.cert;
    opts.tls_key = db.tls.key;
    return open_mysql_store(opts);
  }
  return open_sqlite_store(sqlite_path(cfg), db.query_timeout);
}

} // namespace keymesh::persistence
