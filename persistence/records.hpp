// The rows the durable store reads and writes: plain data, without the
// store's interface, so messages (actors/messages.hpp) can carry them.
#pragma once

#include <cstdint>
#include <string>

namespace keymesh::persistence {

/// One entry of the revocation log: the deny set entry it restores.
struct revocation_entry {
  /// "sid", "jti" or "sub".
  std::string kind;
  std::string value;
  /// Unix ms; for a subject, tokens issued (iat) until then are revoked.
  int64_t revoked_at = 0;
  /// Unix ms after which the entry no longer matters (pruned).
  int64_t until = 0;
  std::string reason;
  /// The node that took the revocation.
  std::string origin;
};

struct user_record {
  int64_t id = 0;
  std::string username;
  /// The encoded hash (persistence never sees a password).
  std::string password_hash;
  bool enabled = true;
  int64_t created_at = 0;
  int64_t updated_at = 0;
};

struct group_record {
  int64_t id = 0;
  std::string name;
  int64_t created_at = 0;
};

/// A claim (name and value) that groups grant to their members.
struct claim_record {
  int64_t id = 0;
  std::string name;
  std::string value;
  std::string description;
};

/// A relying party registered for back-channel logout (OpenID Connect
/// Back-Channel Logout 1.0): where its logout tokens go.
struct client_record {
  std::string client_id;
  /// Absolute http(s) URL; empty: the client gets no logout tokens.
  std::string backchannel_logout_uri;
  /// Whether its logout tokens must carry the session's sid.
  bool session_required = false;
  int64_t created_at = 0;
  int64_t updated_at = 0;
};

/// One back-channel logout delivery in the outbox: the logout token to
/// send to one client for one ended session, and who is sending it.
struct outbox_row {
  /// 22 base64url characters.
  std::string id;
  /// The keymesh session that ended.
  std::string session_id;
  /// The sid the logout token carries (the client's own, or session_id).
  std::string sid;
  std::string sub;
  std::string client_id;
  std::string uri;
  /// Why the session ended (as its revocation says).
  std::string reason;
  /// The session's posture when it ended: "durable" or "volatile".
  std::string posture;
  /// Unix ms.
  int64_t created_at = 0;
  int64_t give_up_at = 0;
  int64_t next_attempt_at = 0;
  int64_t attempts = 0;
  /// The instance id of the node delivering it, until LEASE_UNTIL (Unix
  /// ms): after that, any node may take it over.
  std::string owner;
  int64_t lease_until = 0;
  /// Why the last attempt failed (empty before the first).
  std::string last_error;
};

/// A durable session (sessions.posture: durable): the stored form of the
/// record in the `sessions` keyspace, or a marker that the sid is revoked.
struct session_row {
  std::string sid;
  std::string sub;
  /// The keyspace value (state::encode_session); empty in a marker.
  std::string value;
  int64_t created_at = 0;
  /// Unix ms: when the record ends (its idle deadline or absolute expiry).
  int64_t expires_at = 0;
  /// The record's version stamp: a write never replaces a newer one.
  int64_t version = 0;
  bool revoked = false;
};

/// A cluster secret ring (state/secret_ring.hpp), sealed with the
/// secrets' encryption key: the database copy that outlives a whole-cluster
/// restart.
struct secret_row {
  std::string purpose;
  /// The ring's generation: a write never replaces a newer one.
  int64_t generation = 0;
  /// persistence::seal(key, encode_ring(ring), "keymesh secret ring " +
  /// purpose).
  std::string sealed;
  /// Unix ms.
  int64_t updated_at = 0;
};

} // namespace keymesh::persistence
