// The versioned schema, in both SQL dialects. A migration is applied once,
// in order, and recorded in keymesh_schema; released migrations are never
// edited, only followed by new ones.
#pragma once

#include <string>
#include <vector>

namespace keymesh::persistence {

struct migration {
  int version;
  std::string description;
  std::vector<std::string> sqlite;
  std::vector<std::string> mysql;
};

const std::vector<migration>& migrations();

/// The migrations after CURRENT, in order. Throws store_error (schema) when
/// CURRENT is newer than this program knows; WHERE names the database.
std::vector<const migration*> pending_migrations(int current,
                                                 const std::string& where);

/// The table that records applied migrations, in each dialect.
extern const char* const schema_table_sqlite;
extern const char* const schema_table_mysql;

} // namespace keymesh::persistence
