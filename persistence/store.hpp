// The durable store: one interface, two backends (SQLite for a single node,
// MySQL/MariaDB shared by a cluster). A store object is one database
// connection: blocking, not thread-safe. The store pool (actors/store_pool)
// gives each of its worker threads its own; nothing on CAF's cooperative
// scheduler or an HTTP I/O thread ever calls one.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "config/settings.hpp"
#include "persistence/records.hpp"

namespace keymesh::persistence {

/// Why a store call failed.
enum class store_failure {
  /// The database cannot be reached, or the connection broke: the call may
  /// work on a new connection later.
  unavailable,
  /// The database refused the statement (a constraint, a bad value).
  rejected,
  /// The schema in the database is newer than this program knows.
  schema,
  /// A unique name (user, group, claim) exists already.
  conflict,
};

struct store_error : std::runtime_error {
  store_error(store_failure failure, const std::string& what)
    : std::runtime_error(what), failure(failure) {
  }
  store_failure failure;
};

class store {
public:
  virtual ~store() = default;

  /// "sqlite" or "mysql".
  virtual const char* backend() const = 0;

  /// Brings the schema to the newest version this program knows, one
  /// migration at a time, each recorded in keymesh_schema. Safe when
  /// several nodes start at once against one database: they take turns
  /// (SQLite: a write transaction; MySQL: a named lock), and a migration
  /// another node applied meanwhile is skipped. Throws store_error (schema)
  /// when the database is newer than this program.
  virtual void migrate() = 0;

  /// The schema version in the database (0: none yet).
  virtual int schema_version() = 0;

  /// A cheap round trip (SELECT 1); throws when the database is gone.
  virtual void ping() = 0;

  // -- the revocation log ------------------------------------------------------

  /// Records a revocation. One entry per (kind, value): a repeated one keeps
  /// the later revoked_at and until (a later subject revocation covers more
  /// tokens), and the first reason and origin.
  virtual void put_revocation(const revocation_entry& entry) = 0;

  /// The entries that still matter at NOW_MS (until > NOW_MS).
  virtual std::vector<revocation_entry> live_revocations(int64_t now_ms) = 0;

  /// Deletes entries that ended before NOW_MS; returns how many.
  virtual size_t prune_revocations(int64_t now_ms) = 0;

  // -- durable sessions --------------------------------------------------------

  /// Writes ROWS in one statement (one commit). A row replaces the stored
  /// one only when its version is newer; a revoked row stays revoked.
  virtual void put_sessions(const std::vector<session_row>& rows) = 0;

  virtual std::optional<session_row> find_session(const std::string& sid)
    = 0;

  /// The subject's sessions that are neither revoked nor ended at NOW_MS.
  virtual std::vector<session_row> subject_sessions(const std::string& sub,
                                                    int64_t now_ms,
                                                    size_t limit)
    = 0;

  /// Marks what ENTRY revokes: one sid (a marker row is written when the
  /// session is not stored, so a late write cannot bring it back), or the
  /// subject's sessions created until entry.revoked_at. Nothing for a jti.
  virtual void revoke_sessions(const revocation_entry& entry) = 0;

  /// Deletes rows that ended before NOW_MS; returns how many.
  virtual size_t prune_sessions(int64_t now_ms) = 0;

  // -- cluster secret rings ---------------------------------------------------

  /// Writes ROW unless the stored ring of its purpose is as new or newer.
  virtual void put_secret_ring(const secret_row& row) = 0;

  virtual std::optional<secret_row>
  find_secret_ring(const std::string& purpose) = 0;

  // -- relying parties (back-channel logout) -----------------------------------

  /// Creates or replaces the registration of ROW.client_id (a replace keeps
  /// created_at); returns it as stored.
  virtual client_record put_client(const client_record& row) = 0;

  virtual std::optional<client_record>
  find_client(const std::string& client_id) = 0;

  /// The registrations of those of IDS that exist.
  virtual std::vector<client_record>
  find_clients(const std::vector<std::string>& ids) = 0;

  /// Registrations ordered by client_id, after AFTER, at most LIMIT.
  virtual std::vector<client_record> list_clients(const std::string& after,
                                                  size_t limit) = 0;

  /// Whether there was one.
  virtual bool delete_client(const std::string& client_id) = 0;

  // -- the back-channel logout outbox ------------------------------------------

  /// Writes ROWS (in statements of up to 200 rows).
  virtual void put_outbox(const std::vector<outbox_row>& rows) = 0;

  /// Takes over, for OWNER until LEASE_UNTIL, up to LIMIT deliveries whose
  /// lease ended at or before NOW_MS (their owner stopped renewing it),
  /// soonest due first; returns them as taken. Two nodes never take the
  /// same row at once: each row is taken by a compare-and-set on its lease.
  virtual std::vector<outbox_row> claim_outbox(const std::string& owner,
                                               int64_t now_ms,
                                               int64_t lease_until,
                                               size_t limit) = 0;

  /// Records ROW's attempts, next attempt, lease and last error if ROW.owner
  /// still owns it; whether it did.
  virtual bool update_outbox(const outbox_row& row) = 0;

  /// Deletes delivery ID if OWNER still owns it; whether it did.
  virtual bool delete_outbox(const std::string& id,
                             const std::string& owner) = 0;

  /// How many deliveries the outbox holds.
  virtual size_t outbox_size() = 0;

  // -- users, groups, claims ---------------------------------------------------
  // Names compare exactly (binary). A name that exists already is a
  // store_error (conflict); the bool answers are false for an unknown name.

  virtual user_record create_user(const std::string& username,
                                  const std::string& password_hash,
                                  bool enabled, int64_t now_ms) = 0;
  virtual std::optional<user_record> find_user(const std::string& username)
    = 0;
  /// Users in username order after AFTER (empty: from the start).
  virtual std::vector<user_record> list_users(const std::string& after,
                                              size_t limit) = 0;
  /// Changes what is given; false when the user does not exist.
  virtual bool update_user(const std::string& username,
                           const std::optional<std::string>& password_hash,
                           std::optional<bool> enabled, int64_t now_ms) = 0;
  /// Replaces the user's password hash OLD_HASH with NEW_HASH (the same
  /// password at another cost); false when the hash changed meanwhile (a
  /// new password is never overwritten) or the user is gone.
  virtual bool replace_password_hash(const std::string& username,
                                     const std::string& old_hash,
                                     const std::string& new_hash,
                                     int64_t now_ms)
    = 0;
  /// Also ends the user's group memberships.
  virtual bool delete_user(const std::string& username) = 0;

  virtual group_record create_group(const std::string& name, int64_t now_ms)
    = 0;
  virtual std::vector<group_record> list_groups() = 0;
  /// Also ends its memberships and claim grants.
  virtual bool delete_group(const std::string& name) = 0;
  /// False when the group or the user does not exist (adding twice: true).
  virtual bool add_member(const std::string& group,
                          const std::string& username) = 0;
  virtual bool remove_member(const std::string& group,
                             const std::string& username) = 0;
  virtual std::vector<std::string> group_members(const std::string& group)
    = 0;

  /// One claim per (name, value).
  virtual claim_record create_claim(const std::string& name,
                                    const std::string& value,
                                    const std::string& description) = 0;
  virtual std::vector<claim_record> list_claims() = 0;
  /// Also ends its grants.
  virtual bool delete_claim(int64_t id) = 0;
  /// False when the group or the claim does not exist.
  virtual bool grant_claim(const std::string& group, int64_t claim_id) = 0;
  virtual bool revoke_claim(const std::string& group, int64_t claim_id) = 0;
  virtual std::vector<claim_record> group_claims(const std::string& group)
    = 0;

  /// The user's groups, by name.
  virtual std::vector<std::string> user_groups(int64_t user_id) = 0;
  /// The claims the user's groups grant (each once).
  virtual std::vector<claim_record> user_claims(int64_t user_id) = 0;
};

/// Opens one connection as configured (database.*), with DATA_DIR for the
/// default SQLite path. Throws store_error (unavailable) when it cannot.
std::unique_ptr<store> open_store(const config::settings& cfg);

/// A factory of connections for the pool.
using store_factory = std::function<std::unique_ptr<store>()>;

/// The SQLite file a configuration uses.
std::string sqlite_path(const config::settings& cfg);

/// The password from database.password_file (its first line; empty when no
/// file is configured). Throws store_error (unavailable) naming the file
/// when it cannot be read; never puts the password in a message.
std::string read_password(const config::settings& cfg);

/// The newest schema version this program knows.
int latest_schema_version();

} // namespace keymesh::persistence
