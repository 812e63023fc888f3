// What both backends share: the users, groups and claims written once over
// three primitives (run a statement, run a query, the last inserted id),
// with the few dialect differences spelled out where they occur.
#pragma once

#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "persistence/store.hpp"

namespace keymesh::persistence {

/// A statement parameter.
using sql_param = std::variant<std::nullptr_t, int64_t, std::string>;

/// A result row: each column as text (integers in decimal), nullopt for
/// NULL.
using sql_row = std::vector<std::optional<std::string>>;

class sql_store : public store {
public:
  void put_sessions(const std::vector<session_row>& rows) override;
  std::optional<session_row> find_session(const std::string& sid) override;
  std::vector<session_row> subject_sessions(const std::string& sub,
                                            int64_t now_ms,
                                            size_t limit) override;
  void revoke_sessions(const revocation_entry& entry) override;
  size_t prune_sessions(int64_t now_ms) override;

  void put_secret_ring(const secret_row& row) override;
  client_record put_client(const client_record& row) override;
  std::optional<client_record>
  find_client(const std::string& client_id) override;
  std::vector<client_record>
  find_clients(const std::vector<std::string>& ids) override;
  std::vector<client_record> list_clients(const std::string& after,
                                          size_t limit) override;
  bool delete_client(const std::string& client_id) override;
  std::optional<secret_row>
  find_secret_ring(const std::string& purpose) override;

  void put_outbox(const std::vector<outbox_row>& rows) override;
  std::vector<outbox_row> claim_outbox(const std::string& owner,
                                       int64_t now_ms, int64_t lease_until,
                                       size_t limit) override;
  bool update_outbox(const outbox_row& row) override;
  bool delete_outbox(const std::string& id,
                     const std::string& owner) override;
  size_t outbox_size() override;

  user_record create_user(const std::string& username,
                          const std::string& password_hash, bool enabled,
                          int64_t now_ms) override;
  std::optional<user_record> find_user(const std::string& username) override;
  std::vector<user_record> list_users(const std::string& after,
                                      size_t limit) override;
  bool update_user(const std::string& username,
                   const std::optional<std::string>& password_hash,
                   std::optional<bool> enabled, int64_t now_ms) override;
  bool replace_password_hash(const std::string& username,
                             const std::string& old_hash,
                             const std::string& new_hash,
                             int64_t now_ms) override;
  bool delete_user(const std::string& username) override;

  group_record create_group(const std::string& name, int64_t now_ms) override;
  std::vector<group_record> list_groups() override;
  bool delete_group(const std::string& name) override;
  bool add_member(const std::string& group,
                  const std::string& username) override;
  bool remove_member(const std::string& group,
                     const std::string& username) override;
  std::vector<std::string> group_members(const std::string& group) override;

  claim_record create_claim(const std::string& name, const std::string& value,
                            const std::string& description) override;
  std::vector<claim_record> list_claims() override;
  bool delete_claim(int64_t id) override;
  bool grant_claim(const std::string& group, int64_t claim_id) override;
  bool revoke_claim(const std::string& group, int64_t claim_id) override;
  std::vector<claim_record> group_claims(const std::string& group) override;

  std::vector<std::string> user_groups(int64_t user_id) override;
  std::vector<claim_record> user_claims(int64_t user_id) override;

protected:
  /// Runs a statement; the number of rows it changed. Throws store_error
  /// (conflict for a unique key that exists).
  virtual size_t execute(const std::string& sql,
                         const std::vector<sql_param>& params) = 0;

  virtual std::vector<sql_row> query(const std::string& sql,
                                     const std::vector<sql_param>& params)
    = 0;

  /// The id the last INSERT on this connection generated.
  virtual int64_t last_insert_id() = 0;

  /// "INSERT OR IGNORE" (SQLite) or "INSERT IGNORE" (MySQL).
  virtual const char* insert_ignore() const = 0;

  /// The tail of "INSERT INTO sessions ... VALUES ..." that, for a sid
  /// stored already, takes the new value, expiry and version only when the
  /// version is newer (and leaves revoked alone).
  virtual const char* session_upsert() const = 0;

  /// The same for a secret ring: " ON CONFLICT ..." / " ON DUPLICATE KEY
  /// ...", taking the new sealed ring only when its generation is newer.
  virtual const char* secret_ring_upsert() const = 0;

private:
  std::optional<int64_t> group_id(const std::string& name);
};

} // namespace keymesh::persistence
