#include "persistence/migrations.hpp"

#include "persistence/store.hpp"

namespace keymesh::persistence {

// Values that are identifiers or tokens are binary in MySQL: its default
// collations compare case-insensitively, which would make "Abc" and "abc"
// one session id.

const char* const schema_table_sqlite
  = "CREATE TABLE IF NOT EXISTS keymesh_schema ("
    " version INTEGER PRIMARY KEY,"
    " description TEXT NOT NULL,"
    " applied_at_ms INTEGER NOT NULL,"
    " applied_by TEXT NOT NULL)";

const char* const schema_table_mysql
  = "CREATE TABLE IF NOT EXISTS keymesh_schema ("
    " version INT NOT NULL PRIMARY KEY,"
    " description VARCHAR(255) NOT NULL,"
    " applied_at_ms BIGINT NOT NULL,"
    " applied_by VARCHAR(128) NOT NULL"
    ") ENGINE=InnoDB";

const std::vector<migration>& migrations() {
  static const std::vector<migration> all{
    {1,
     "the revocation log",
     {"CREATE TABLE revocations ("
      " kind TEXT NOT NULL,"
      " value BLOB NOT NULL,"
      " revoked_at_ms INTEGER NOT NULL,"
      " until_ms INTEGER NOT NULL,"
      " reason BLOB NOT NULL,"
      " origin TEXT NOT NULL,"
      " PRIMARY KEY (kind, value))",
      "CREATE INDEX revocations_until ON revocations (until_ms)"},
     {"CREATE TABLE IF NOT EXISTS revocations ("
      " kind VARCHAR(8) NOT NULL,"
      " value VARBINARY(512) NOT NULL,"
      " revoked_at_ms BIGINT NOT NULL,"
      " until_ms BIGINT NOT NULL,"
      " reason VARBINARY(1024) NOT NULL,"
      " origin VARBINARY(255) NOT NULL,"
      " PRIMARY KEY (kind, value),"
      " KEY revocations_until (until_ms)"
      ") ENGINE=InnoDB"}},
  };
  return all;
}

std::vector<const migration*> pending_migrations(int current,
                                                 const std::string& where) {
  if (current > latest_schema_version())
    throw store_error(store_failure::schema,
                      where + " has schema version " + std::to_string(current)
                        + ", newer than this keymesh knows ("
                        + std::to_string(latest_schema_version()) + ")");
  std::vector<const migration*> out;
  for (auto& m : migrations())
    if (m.version > current)
      out.push_back(&m);
  return out;
}

int latest_schema_version() {
  return migrations().empty() ? 0 : migrations().back().version;
}

} // namespace keymesh::persistence
