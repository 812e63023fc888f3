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
    {2,
     "users, groups and claims",
     {"CREATE TABLE users ("
      " id INTEGER PRIMARY KEY AUTOINCREMENT,"
      " username BLOB NOT NULL UNIQUE,"
      " password_hash TEXT NOT NULL,"
      " enabled INTEGER NOT NULL,"
      " created_at_ms INTEGER NOT NULL,"
      " updated_at_ms INTEGER NOT NULL)",
      "CREATE TABLE user_groups ("
      " id INTEGER PRIMARY KEY AUTOINCREMENT,"
      " name BLOB NOT NULL UNIQUE,"
      " created_at_ms INTEGER NOT NULL)",
      "CREATE TABLE group_members ("
      " group_id INTEGER NOT NULL REFERENCES user_groups (id) ON DELETE CASCADE,"
      " user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,"
      " PRIMARY KEY (group_id, user_id))",
      "CREATE INDEX group_members_user ON group_members (user_id)",
      "CREATE TABLE claims ("
      " id INTEGER PRIMARY KEY AUTOINCREMENT,"
      " name BLOB NOT NULL,"
      " value BLOB NOT NULL,"
      " description BLOB NOT NULL,"
      " UNIQUE (name, value))",
      "CREATE TABLE group_claims ("
      " group_id INTEGER NOT NULL REFERENCES user_groups (id) ON DELETE CASCADE,"
      " claim_id INTEGER NOT NULL REFERENCES claims (id) ON DELETE CASCADE,"
      " PRIMARY KEY (group_id, claim_id))"},
     {"CREATE TABLE IF NOT EXISTS users ("
      " id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
      " username VARBINARY(255) NOT NULL,"
      " password_hash VARCHAR(255) NOT NULL,"
      " enabled TINYINT NOT NULL,"
      " created_at_ms BIGINT NOT NULL,"
      " updated_at_ms BIGINT NOT NULL,"
      " UNIQUE KEY users_username (username)"
      ") ENGINE=InnoDB",
      "CREATE TABLE IF NOT EXISTS user_groups ("
      " id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
      " name VARBINARY(255) NOT NULL,"
      " created_at_ms BIGINT NOT NULL,"
      " UNIQUE KEY user_groups_name (name)"
      ") ENGINE=InnoDB",
      "CREATE TABLE IF NOT EXISTS group_members ("
      " group_id BIGINT NOT NULL,"
      " user_id BIGINT NOT NULL,"
      " PRIMARY KEY (group_id, user_id),"
      " KEY group_members_user (user_id),"
      " FOREIGN KEY (group_id) REFERENCES user_groups (id) ON DELETE CASCADE,"
      " FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE"
      ") ENGINE=InnoDB",
      "CREATE TABLE IF NOT EXISTS claims ("
      " id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
      " name VARBINARY(255) NOT NULL,"
      " value VARBINARY(255) NOT NULL,"
      " description VARBINARY(1024) NOT NULL,"
      " UNIQUE KEY claims_name_value (name, value)"
      ") ENGINE=InnoDB",
      "CREATE TABLE IF NOT EXISTS group_claims ("
      " group_id BIGINT NOT NULL,"
      " claim_id BIGINT NOT NULL,"
      " PRIMARY KEY (group_id, claim_id),"
      " FOREIGN KEY (group_id) REFERENCES user_groups (id) ON DELETE CASCADE,"
      " FOREIGN KEY (claim_id) REFERENCES claims (id) ON DELETE CASCADE"
      ") ENGINE=InnoDB"}},
    {3,
     "durable sessions",
     {"CREATE TABLE sessions ("
      " sid BLOB NOT NULL PRIMARY KEY,"
      " sub BLOB NOT NULL,"
      " value BLOB NOT NULL,"
      " created_at_ms INTEGER NOT NULL,"
      " expires_at_ms INTEGER NOT NULL,"
      " version INTEGER NOT NULL,"
      " revoked INTEGER NOT NULL)",
      "CREATE INDEX sessions_sub ON sessions (sub)",
      "CREATE INDEX sessions_expiry ON sessions (expires_at_ms)"},
     {"CREATE TABLE IF NOT EXISTS sessions ("
      " sid VARBINARY(64) NOT NULL PRIMARY KEY,"
      " sub VARBINARY(512) NOT NULL,"
      " value MEDIUMBLOB NOT NULL,"
      " created_at_ms BIGINT NOT NULL,"
      " expires_at_ms BIGINT NOT NULL,"
      " version BIGINT NOT NULL,"
      " revoked TINYINT NOT NULL,"
      " KEY sessions_sub (sub),"
      " KEY sessions_expiry (expires_at_ms)"
      ") ENGINE=InnoDB"}},
    {4,
     "cluster secret rings",
     {"CREATE TABLE secret_rings ("
      " purpose BLOB NOT NULL PRIMARY KEY,"
      " generation INTEGER NOT NULL,"
      " sealed BLOB NOT NULL,"
      " updated_at_ms INTEGER NOT NULL)"},
     {"CREATE TABLE IF NOT EXISTS secret_rings ("
      " purpose VARBINARY(64) NOT NULL PRIMARY KEY,"
      " generation BIGINT NOT NULL,"
      " sealed BLOB NOT NULL,"
      " updated_at_ms BIGINT NOT NULL"
      ") ENGINE=InnoDB"}},
    {5,
     "relying parties for back-channel logout",
     {"CREATE TABLE clients ("
      " client_id BLOB NOT NULL PRIMARY KEY,"
      " backchannel_logout_uri BLOB NOT NULL,"
      " session_required INTEGER NOT NULL,"
      " created_at_ms INTEGER NOT NULL,"
      " updated_at_ms INTEGER NOT NULL)"},
     {"CREATE TABLE IF NOT EXISTS clients ("
      " client_id VARBINARY(255) NOT NULL PRIMARY KEY,"
      " backchannel_logout_uri VARBINARY(2048) NOT NULL,"
      " session_required TINYINT NOT NULL,"
      " created_at_ms BIGINT NOT NULL,"
      " updated_at_ms BIGINT NOT NULL"
      ") ENGINE=InnoDB"}},
    {6,
     "the back-channel logout outbox",
     {"CREATE TABLE bcl_outbox ("
      " id BLOB NOT NULL PRIMARY KEY,"
      " session_id BLOB NOT NULL,"
      " sid BLOB NOT NULL,"
      " sub BLOB NOT NULL,"
      " client_id BLOB NOT NULL,"
      " uri BLOB NOT NULL,"
      " reason BLOB NOT NULL,"
      " posture BLOB NOT NULL,"
      " created_at_ms INTEGER NOT NULL,"
      " give_up_at_ms INTEGER NOT NULL,"
      " next_attempt_at_ms INTEGER NOT NULL,"
      " attempts INTEGER NOT NULL,"
      " owner BLOB NOT NULL,"
      " lease_until_ms INTEGER NOT NULL,"
      " last_error BLOB NOT NULL)",
      "CREATE INDEX bcl_outbox_lease ON bcl_outbox (lease_until_ms)"},
     {"CREATE TABLE IF NOT EXISTS bcl_outbox ("
      " id VARBINARY(32) NOT NULL PRIMARY KEY,"
      " session_id VARBINARY(32) NOT NULL,"
      " sid VARBINARY(256) NOT NULL,"
      " sub VARBINARY(256) NOT NULL,"
      " client_id VARBINARY(255) NOT NULL,"
      " uri VARBINARY(2048) NOT NULL,"
      " reason VARBINARY(512) NOT NULL,"
      " posture VARBINARY(16) NOT NULL,"
      " created_at_ms BIGINT NOT NULL,"
      " give_up_at_ms BIGINT NOT NULL,"
      " next_attempt_at_ms BIGINT NOT NULL,"
      " attempts BIGINT NOT NULL,"
      " owner VARBINARY(128) NOT NULL,"
      " lease_until_ms BIGINT NOT NULL,"
      " last_error VARBINARY(512) NOT NULL,"
      " KEY bcl_outbox_lease (lease_until_ms)"
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
