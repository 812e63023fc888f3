#include "persistence/sql_store.hpp"

#include <algorithm>

namespace keymesh::persistence {

namespace {

int64_t integer(const std::optional<std::string>& column) {
  return column ? std::stoll(*column) : 0;
}

std::string text(const std::optional<std::string>& column) {
  return column.value_or(std::string{});
}

constexpr const char* user_columns
  = "id, username, password_hash, enabled, created_at_ms, updated_at_ms";

user_record to_user(const sql_row& r) {
  return {integer(r[0]), text(r[1]),         text(r[2]),
          integer(r[3]) != 0, integer(r[4]), integer(r[5])};
}

claim_record to_claim(const sql_row& r) {
  return {integer(r[0]), text(r[1]), text(r[2]), text(r[3])};
}

std::vector<claim_record> to_claims(const std::vector<sql_row>& rows) {
  std::vector<claim_record> out;
  for (auto& r : rows)
    out.push_back(to_claim(r));
  return out;
}

std::vector<std::string> first_column(const std::vector<sql_row>& rows) {
  std::vector<std::string> out;
  for (auto& r : rows)
    out.push_back(text(r[0]));
  return out;
}

constexpr const char* session_columns
  = "sid, sub, value, created_at_ms, expires_at_ms, version, revoked";

session_row to_session(const sql_row& r) {
  return {text(r[0]),    text(r[1]),    text(r[2]),        integer(r[3]),
          integer(r[4]), integer(r[5]), integer(r[6]) != 0};
}

} // namespace

// -- cluster secret rings ------------------------------------------------------------

void sql_store::put_secret_ring(const secret_row& row) {
  execute(std::string{"INSERT INTO secret_rings (purpose, generation, sealed,"
                      " updated_at_ms) VALUES (?, ?, ?, ?)"}
            + secret_ring_upsert(),
          {row.purpose, row.generation, row.sealed, row.updated_at});
}

std::optional<secret_row>
sql_store::find_secret_ring(const std::string& purpose) {
  auto rows = query("SELECT purpose, generation, sealed, updated_at_ms FROM"
                    " secret_rings WHERE purpose = ?",
                    {purpose});
  if (rows.empty())
    return std::nullopt;
  auto& r = rows.front();
  return secret_row{text(r[0]), integer(r[1]), text(r[2]), integer(r[3])};
}

// -- relying parties -----------------------------------------------------------------

namespace {

constexpr const char* client_columns
  = "client_id, backchannel_logout_uri, session_required, created_at_ms,"
    " updated_at_ms";

client_record to_client(const sql_row& r) {
  return {text(r[0]), text(r[1]), integer(r[2]) != 0, integer(r[3]),
          integer(r[4])};
}

} // namespace

constexpr const char* outbox_columns
  = "id, session_id, sid, sub, client_id, uri, reason, posture,"
    " created_at_ms, give_up_at_ms, next_attempt_at_ms, attempts, owner,"
    " lease_until_ms, last_error";

outbox_row to_outbox(const sql_row& r) {
  outbox_row o;
  o.id = text(r[0]);
  o.session_id = text(r[1]);
  o.sid = text(r[2]);
  o.sub = text(r[3]);
  o.client_id = text(r[4]);
  o.uri = text(r[5]);
  o.reason = text(r[6]);
  o.posture = text(r[7]);
  o.created_at = integer(r[8]);
  o.give_up_at = integer(r[9]);
  o.next_attempt_at = integer(r[10]);
  o.attempts = integer(r[11]);
  o.owner = text(r[12]);
  o.lease_until = integer(r[13]);
  o.last_error = text(r[14]);
  return o;
}

void sql_store::put_outbox(const std::vector<outbox_row>& rows) {
  // At most 200 rows (3,000 parameters) a statement: SQLite allows 32,766
  // parameters, MySQL 65,535.
  constexpr size_t rows_per_statement = 200;
  for (size_t first = 0; first < rows.size(); first += rows_per_statement) {
    auto last = std::min(rows.size(), first + rows_per_statement);
    std::string sql = std::string{"INSERT INTO bcl_outbox ("} + outbox_columns
                      + ") VALUES ";
    std::vector<sql_param> params;
    for (size_t i = first; i < last; ++i) {
      auto& o = rows[i];
      sql += i == first ? "" : ", ";
      sql += "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
      params.insert(params.end(),
                    {o.id, o.session_id, o.sid, o.sub, o.client_id, o.uri,
                     o.reason, o.posture, o.created_at, o.give_up_at,
                     o.next_attempt_at, o.attempts, o.owner, o.lease_until,
                     o.last_error});
    }
    execute(sql, params);
  }
}

std::vector<outbox_row> sql_store::claim_outbox(const std::string& owner,
                                                int64_t now_ms,
                                                int64_t lease_until,
                                                size_t limit) {
  auto rows = query(std::string{"SELECT "} + outbox_columns
                      + " FROM bcl_outbox WHERE lease_until_ms <= ?"
                        " ORDER BY next_attempt_at_ms LIMIT ?",
                    {now_ms, static_cast<int64_t>(limit)});
  std::vector<outbox_row> out;
  for (auto& r : rows) {
    auto o = to_outbox(r);
    // Taken only if nobody took it since it was read.
    auto taken = execute("UPDATE bcl_outbox SET owner = ?, lease_until_ms = ?"
                         " WHERE id = ? AND owner = ? AND lease_until_ms = ?",
                         {owner, lease_until, o.id, o.owner, o.lease_until});
    if (taken != 1)
      continue;
    o.owner = owner;
    o.lease_until = lease_until;
    out.push_back(std::move(o));
  }
  return out;
}

bool sql_store::update_outbox(const outbox_row& o) {
  return execute("UPDATE bcl_outbox SET attempts = ?, next_attempt_at_ms = ?,"
                 " lease_until_ms = ?, last_error = ?"
                 " WHERE id = ? AND owner = ?",
                 {o.attempts, o.next_attempt_at, o.lease_until, o.last_error,
                  o.id, o.owner})
         == 1;
}

bool sql_store::delete_outbox(const std::string& id,
                              const std::string& owner) {
  return execute("DELETE FROM bcl_outbox WHERE id = ? AND owner = ?",
                 {id, owner})
         == 1;
}

size_t sql_store::outbox_size() {
  auto rows = query("SELECT COUNT(*) FROM bcl_outbox", {});
  return rows.empty() ? 0 : static_cast<size_t>(integer(rows.front()[0]));
}

client_record sql_store::put_client(const client_record& row) {
  // Created once (the first writer's created_at), then the last writer's
  // registration: the same two statements on both backends.
  execute(std::string{insert_ignore()} + " INTO clients (" + client_columns
            + ") VALUES (?, ?, ?, ?, ?)",
          {row.client_id, row.backchannel_logout_uri,
           int64_t{row.session_required ? 1 : 0}, row.created_at,
           row.updated_at});
  execute("UPDATE clients SET backchannel_logout_uri = ?,"
          " session_required = ?, updated_at_ms = ? WHERE client_id = ?",
          {row.backchannel_logout_uri, int64_t{row.session_required ? 1 : 0},
           row.updated_at, row.client_id});
  auto stored = find_client(row.client_id);
  if (!stored) // deleted in between
    throw store_error{store_failure::conflict,
                      "the client was deleted while it was written"};
  return *stored;
}

std::optional<client_record>
sql_store::find_client(const std::string& client_id) {
  auto rows = query(std::string{"SELECT "} + client_columns
                      + " FROM clients WHERE client_id = ?",
                    {client_id});
  if (rows.empty())
    return std::nullopt;
  return to_client(rows.front());
}

std::vector<client_record>
sql_store::find_clients(const std::vector<std::string>& ids) {
  constexpr size_t ids_per_query = 500;
  std::vector<client_record> out;
  for (size_t first = 0; first < ids.size(); first += ids_per_query) {
    auto last = std::min(ids.size(), first + ids_per_query);
    std::string sql = std::string{"SELECT "} + client_columns
                      + " FROM clients WHERE client_id IN (";
    std::vector<sql_param> params;
    for (size_t i = first; i < last; ++i) {
      sql += i == first ? "?" : ", ?";
      params.emplace_back(ids[i]);
    }
    sql += ")";
    for (auto& r : query(sql, params))
      out.push_back(to_client(r));
  }
  return out;
}

std::vector<client_record> sql_store::list_clients(const std::string& after,
                                                   size_t limit) {
  auto rows = query(std::string{"SELECT "} + client_columns
                      + " FROM clients WHERE client_id > ? ORDER BY client_id"
                        " LIMIT ?",
                    {after, static_cast<int64_t>(limit)});
  std::vector<client_record> out;
  for (auto& r : rows)
    out.push_back(to_client(r));
  return out;
}

bool sql_store::delete_client(const std::string& client_id) {
  return execute("DELETE FROM clients WHERE client_id = ?", {client_id}) > 0;
}

// -- durable sessions ----------------------------------------------------------------

void sql_store::put_sessions(const std::vector<session_row>& rows) {
  if (rows.empty())
    return;
  std::string sql = std::string{"INSERT INTO sessions ("} + session_columns
                    + ") VALUES ";
  std::vector<sql_param> params;
  params.reserve(rows.size() * 7);
  for (size_t i = 0; i < rows.size(); ++i) {
    auto& r = rows[i];
    sql += i == 0 ? "(?, ?, ?, ?, ?, ?, ?)" : ", (?, ?, ?, ?, ?, ?, ?)";
    params.insert(params.end(),
                  {r.sid, r.sub, r.value, r.created_at, r.expires_at,
                   r.version, int64_t{r.revoked ? 1 : 0}});
  }
  execute(sql + session_upsert(), params);
}

std::optional<session_row> sql_store::find_session(const std::string& sid) {
  auto rows = query(std::string{"SELECT "} + session_columns
                      + " FROM sessions WHERE sid = ?",
                    {sid});
  if (rows.empty())
    return std::nullopt;
  return to_session(rows.front());
}

std::vector<session_row> sql_store::subject_sessions(const std::string& sub,
                                                     int64_t now_ms,
                                                     size_t limit) {
  auto rows = query(std::string{"SELECT "} + session_columns
                      + " FROM sessions WHERE sub = ? AND revoked = 0"
                        " AND expires_at_ms > ? ORDER BY created_at_ms"
                        " LIMIT ?",
                    {sub, now_ms, static_cast<int64_t>(limit)});
  std::vector<session_row> out;
  for (auto& r : rows)
    out.push_back(to_session(r));
  return out;
}

void sql_store::revoke_sessions(const revocation_entry& e) {
  if (e.kind == "sub") {
    execute("UPDATE sessions SET revoked = 1 WHERE sub = ?"
            " AND created_at_ms <= ?",
            {e.value, e.revoked_at});
    return;
  }
  if (e.kind != "sid")
    return;
  // Mark the row; with none, leave a marker that outlives the tokens the
  // revocation covers. (A write racing the marker is caught by the second
  // UPDATE.)
  const char* mark = "UPDATE sessions SET revoked = 1 WHERE sid = ?";
  if (execute(mark, {e.value}) > 0)
    return;
  execute(std::string{insert_ignore()} + " INTO sessions (" + session_columns
            + ") VALUES (?, '', '', ?, ?, 0, 1)",
          {e.value, e.revoked_at, e.until});
  execute(mark, {e.value});
}

size_t sql_store::prune_sessions(int64_t now_ms) {
  return execute("DELETE FROM sessions WHERE expires_at_ms <= ?", {now_ms});
}

// -- users -------------------------------------------------------------------------

user_record sql_store::create_user(const std::string& username,
                                   const std::string& password_hash,
                                   bool enabled, int64_t now_ms) {
  execute("INSERT INTO users (username, password_hash, enabled, "
          "created_at_ms, updated_at_ms) VALUES (?, ?, ?, ?, ?)",
          {username, password_hash, int64_t{enabled ? 1 : 0}, now_ms, now_ms});
  return {last_insert_id(), username, password_hash, enabled, now_ms, now_ms};
}

std::optional<user_record> sql_store::find_user(const std::string& username) {
  auto rows = query(std::string{"SELECT "} + user_columns
                      + " FROM users WHERE username = ?",
                    {username});
  if (rows.empty())
    return std::nullopt;
  return to_user(rows.front());
}

std::vector<user_record> sql_store::list_users(const std::string& after,
                                               size_t limit) {
  auto rows = query(std::string{"SELECT "} + user_columns
                      + " FROM users WHERE username > ? ORDER BY username "
                        "LIMIT ?",
                    {after, static_cast<int64_t>(limit)});
  std::vector<user_record> out;
  for (auto& r : rows)
    out.push_back(to_user(r));
  return out;
}

bool sql_store::update_user(const std::string& username,
                            const std::optional<std::string>& password_hash,
                            std::optional<bool> enabled, int64_t now_ms) {
  // COALESCE keeps what is not given; the row counts as found even when
  // nothing changes (updated_at always moves).
  return execute("UPDATE users SET password_hash = COALESCE(?, "
                 "password_hash), enabled = COALESCE(?, enabled), "
                 "updated_at_ms = ? WHERE username = ?",
                 {password_hash ? sql_param{*password_hash}
                                : sql_param{nullptr},
                  enabled ? sql_param{int64_t{*enabled ? 1 : 0}}
                          : sql_param{nullptr},
                  now_ms, username})
         > 0;
}

bool sql_store::replace_password_hash(const std::string& username,
                                      const std::string& old_hash,
                                      const std::string& new_hash,
                                      int64_t now_ms) {
  return execute("UPDATE users SET password_hash = ?, updated_at_ms = ? "
                 "WHERE username = ? AND password_hash = ?",
                 {new_hash, now_ms, username, old_hash})
         > 0;
}

bool sql_store::delete_user(const std::string& username) {
  return execute("DELETE FROM users WHERE username = ?", {username}) > 0;
}

// -- groups ------------------------------------------------------------------------

std::optional<int64_t> sql_store::group_id(const std::string& name) {
  auto rows = query("SELECT id FROM user_groups WHERE name = ?", {name});
  if (rows.empty())
    return std::nullopt;
  return integer(rows.front()[0]);
}

group_record sql_store::create_group(const std::string& name, int64_t now_ms) {
  execute("INSERT INTO user_groups (name, created_at_ms) VALUES (?, ?)",
          {name, now_ms});
  return {last_insert_id(), name, now_ms};
}

std::vector<group_record> sql_store::list_groups() {
  std::vector<group_record> out;
  for (auto& r : query("SELECT id, name, created_at_ms FROM user_groups "
                       "ORDER BY name",
                       {}))
    out.push_back({integer(r[0]), text(r[1]), integer(r[2])});
  return out;
}

bool sql_store::delete_group(const std::string& name) {
  return execute("DELETE FROM user_groups WHERE name = ?", {name}) > 0;
}

bool sql_store::add_member(const std::string& group,
                           const std::string& username) {
  auto gid = group_id(group);
  auto user = find_user(username);
  if (!gid || !user)
    return false;
  execute(std::string{insert_ignore()}
            + " INTO group_members (group_id, user_id) VALUES (?, ?)",
          {*gid, user->id});
  return true;
}

bool sql_store::remove_member(const std::string& group,
                              const std::string& username) {
  return execute("DELETE FROM group_members WHERE group_id = (SELECT id FROM "
                 "user_groups WHERE name = ?) AND user_id = (SELECT id FROM "
                 "users WHERE username = ?)",
                 {group, username})
         > 0;
}

std::vector<std::string> sql_store::group_members(const std::string& group) {
  return first_column(
    query("SELECT u.username FROM users u JOIN group_members m ON m.user_id "
          "= u.id JOIN user_groups g ON g.id = m.group_id WHERE g.name = ? "
          "ORDER BY u.username",
          {group}));
}

// -- claims ------------------------------------------------------------------------

claim_record sql_store::create_claim(const std::string& name,
                                     const std::string& value,
                                     const std::string& description) {
  execute("INSERT INTO claims (name, value, description) VALUES (?, ?, ?)",
          {name, value, description});
  return {last_insert_id(), name, value, description};
}

std::vector<claim_record> sql_store::list_claims() {
  return to_claims(query("SELECT id, name, value, description FROM claims "
                         "ORDER BY name, value",
                         {}));
}

bool sql_store::delete_claim(int64_t id) {
  return execute("DELETE FROM claims WHERE id = ?", {id}) > 0;
}

bool sql_store::grant_claim(const std::string& group, int64_t claim_id) {
  auto gid = group_id(group);
  if (!gid || query("SELECT id FROM claims WHERE id = ?", {claim_id}).empty())
    return false;
  execute(std::string{insert_ignore()}
            + " INTO group_claims (group_id, claim_id) VALUES (?, ?)",
          {*gid, claim_id});
  return true;
}

bool sql_store::revoke_claim(const std::string& group, int64_t claim_id) {
  return execute("DELETE FROM group_claims WHERE group_id = (SELECT id FROM "
                 "user_groups WHERE name = ?) AND claim_id = ?",
                 {group, claim_id})
         > 0;
}

std::vector<claim_record> sql_store::group_claims(const std::string& group) {
  return to_claims(
    query("SELECT c.id, c.name, c.value, c.description FROM claims c JOIN "
          "group_claims gc ON gc.claim_id = c.id JOIN user_groups g ON g.id = "
          "gc.group_id WHERE g.name = ? ORDER BY c.name, c.value",
          {group}));
}

std::vector<std::string> sql_store::user_groups(int64_t user_id) {
  return first_column(
    query("SELECT g.name FROM user_groups g JOIN group_members m ON "
          "m.group_id = g.id WHERE m.user_id = ? ORDER BY g.name",
          {user_id}));
}

std::vector<claim_record> sql_store::user_claims(int64_t user_id) {
  return to_claims(query(
    "SELECT DISTINCT c.id, c.name, c.value, c.description FROM claims c "
    "JOIN group_claims gc ON gc.claim_id = c.id JOIN group_members m ON "
    "m.group_id = gc.group_id WHERE m.user_id = ? ORDER BY c.name, c.value",
    {user_id}));
}

} // namespace keymesh::persistence
