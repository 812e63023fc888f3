// Plain data types that travel in keymesh messages, with their inspect()
// overloads. Everything here may cross nodes, so every type is registered in
// the type-ID block of actors/interfaces.hpp and round-trips in a unit test.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/meta/omittable.hpp>
#include <caf/meta/type_name.hpp>

#include "auth/password.hpp"
#include "persistence/records.hpp"
#include "state/object.hpp"
#include "state/partition.hpp"
#include "state/record.hpp"
#include "state/session.hpp"

namespace keymesh {

/// Asks the keystore to sign a token. The HTTP layer has validated the input.
struct token_request {
  std::string sub;
  /// Audiences; empty means "use keys.audience if configured, else none".
  std::vector<std::string> aud;
  /// Requested lifetime in seconds; 0 means keys.default_token_ttl. Capped by
  /// keys.max_token_ttl.
  int64_t ttl_seconds = 0;
  /// Extra claims as the text of a JSON object (may be empty). Registered
  /// claims (iss, sub, aud, exp, nbf, iat, jti) in here are ignored.
  std::string extra_claims_json;
  /// The header's typ (RFC 8725 §3.11 explicit typing, e.g. "logout+jwt");
  /// empty: "JWT". At most 64 characters of A-Z a-z 0-9 + - . /.
  std::string typ = {};
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, token_request& x) {
  return f(caf::meta::type_name("token_request"), x.sub, x.aud, x.ttl_seconds,
           x.extra_claims_json, x.typ);
}

/// A signed compact JWS and what a caller needs to know about it.
struct signed_token {
  std::string token;
  std::string kid;
  /// Unix seconds.
  int64_t expires_at = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, signed_token& x) {
  return f(caf::meta::type_name("signed_token"), x.token, x.kid, x.expires_at);
}

/// One published public key with its schedule (all times in Unix ms).
struct public_key_info {
  std::string kid;
  /// "ES256", "EdDSA" or "RS256".
  std::string alg;
  /// The public JWK as JSON text (no private members, no kid/alg/use).
  std::string jwk;
  int64_t created_at = 0;
  /// The key signs from this instant...
  int64_t sign_from = 0;
  /// ...until this one (0 = not yet scheduled: it is the current key and its
  /// successor has not been created).
  int64_t retire_at = 0;
  /// The key leaves the JWKS at this instant (0 = not yet scheduled).
  int64_t expire_at = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, public_key_info& x) {
  return f(caf::meta::type_name("public_key_info"), x.kid, x.alg, x.jwk,
           x.created_at, x.sign_from, x.retire_at, x.expire_at);
}

using public_key_list = std::vector<public_key_info>;

/// The keys one origin (this node, a peer) currently publishes.
struct key_announcement {
  /// instance id of the node (or URL of the HTTP peer) that owns the keys.
  std::string origin;
  /// Random per process start of the origin (0 for HTTP peers): a new
  /// incarnation replaces the old one's keys, which stay published until
  /// the tokens they signed have expired.
  uint64_t incarnation = 0;
  /// Increases with every change within one incarnation; stale
  /// announcements lose.
  uint64_t serial = 0;
  public_key_list keys;
  /// Keys of an origin that is gone (or of a replaced incarnation), passed
  /// on so that a node joining later, or the restarted origin itself, still
  /// verifies the tokens they signed. Each key carries its expire_at.
  bool departed = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, key_announcement& x) {
  return f(caf::meta::type_name("key_announcement"), x.origin, x.incarnation,
           x.serial, x.keys, x.departed);
}


/// A node as one member knows it, for gossip and status.
struct member_info {
  std::string instance_id;
  std::string address;
  /// "up", "suspect" or "down".
  std::string state;
  /// Unix ms of the last state change.
  int64_t since = 0;
  /// Last heartbeat round trip in microseconds (0: none yet).
  int64_t rtt_us = 0;
  uint32_t protocol_version = 0;
  uint64_t incarnation = 0;
  /// How far the member's wall clock is ahead of this node's (negative:
  /// behind), in ms, estimated from the last heartbeat; 0: none yet.
  int64_t clock_offset_ms = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, member_info& x) {
  return f(caf::meta::type_name("member_info"), x.instance_id, x.address,
           x.state, x.since, x.rtt_us, x.protocol_version, x.incarnation,
           x.clock_offset_ms);
}

/// This node and its view of the cluster (GET /api/cluster).
struct cluster_status {
  member_info self;
  std::string cluster_name;
  std::vector<member_info> members;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cluster_status& x) {
  return f(caf::meta::type_name("cluster_status"), x.self, x.cluster_name,
           x.members);
}

// -- replicated state --------------------------------------------------------

/// A read of one record, sent to the shard of the key's partition; a shard
/// that does not own the partition forwards it (HOPS counts forwards).
struct read_request {
  std::string keyspace;
  std::string key;
  uint32_t hops = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, read_request& x) {
  return f(caf::meta::type_name("read_request"), x.keyspace, x.key, x.hops);
}

struct read_result {
  /// False when the key is absent or expired; a tombstone is found.
  bool found = false;
  state::record rec;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, read_result& x) {
  return f(caf::meta::type_name("read_result"), x.found, x.rec);
}

/// When a write applies; checked by the partition's primary owner, so
/// exactly one of several racing conditional writes wins.
enum class write_condition : uint8_t {
  always = 0,
  /// A live (not deleted) record exists: updates, revocations of a known key.
  exists = 1,
  /// No live record exists: creates.
  absent = 2,
  /// The current record has exactly `expected` as its version
  /// (read-modify-write).
  version_is = 3,
};

struct write_request {
  std::string keyspace;
  std::string key;
  std::string value;
  /// Unix ms (0: never).
  int64_t expires_at = 0;
  bool tombstone = false;
  write_condition condition = write_condition::always;
  state::version expected;
  /// A decision (a consume, a create-if-absent that must happen once):
  /// fenced, and applied only once every owner of the partition has
  /// checked the condition against its own copy (see decide_request).
  bool decide = false;
  uint32_t hops = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, write_request& x) {
  return f(caf::meta::type_name("write_request"), x.keyspace, x.key, x.value,
           x.expires_at, x.tombstone, x.condition, x.expected, x.decide,
           x.hops);
}

struct write_result {
  state::version ver;
  /// How many owners applied the write before it was acknowledged, of how
  /// many live owners the partition has.
  uint32_t copies = 0;
  uint32_t owners = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, write_result& x) {
  return f(caf::meta::type_name("write_result"), x.ver, x.copies, x.owners);
}

/// Live records of a keyspace whose key starts with a prefix, in one
/// partition.
struct scan_request {
  std::string keyspace;
  std::string prefix;
  uint32_t limit = 0;
  uint32_t hops = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, scan_request& x) {
  return f(caf::meta::type_name("scan_request"), x.keyspace, x.prefix,
           x.limit, x.hops);
}

/// Reserves one attempt (a login) under a key before the attempt's check
/// runs: decided by the partition's primary owner, which counts it in the
/// record (state/attempts.hpp) and replicates the count like a write.
struct attempt_request {
  std::string keyspace;
  std::string key;
  /// Attempts per window; the one that reaches it locks the key.
  int64_t limit = 0;
  int64_t window_ms = 0;
  int64_t lockout_ms = 0;
  uint32_t hops = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, attempt_request& x) {
  return f(caf::meta::type_name("attempt_request"), x.keyspace, x.key,
           x.limit, x.window_ms, x.lockout_ms, x.hops);
}

struct attempt_result {
  /// Whether the attempt may go ahead (it is counted).
  bool granted = false;
  /// Attempts counted in the window, this one included when granted.
  int64_t count = 0;
  /// Unix ms until which the key is locked (0: not locked).
  int64_t locked_until = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, attempt_result& x) {
  return f(caf::meta::type_name("attempt_result"), x.granted, x.count,
           x.locked_until);
}

using record_list = std::vector<state::keyed_record>;

/// The answer to a sync (handoff or anti-entropy): the answering replica's
/// records in the buckets whose digests differed, as a snapshot archive, and
/// its digests. MORE is set when the transfer was cut at its size bound.
struct sync_reply {
  std::string snapshot;
  state::digest_vector digests;
  bool more = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, sync_reply& x) {
  return f(caf::meta::type_name("sync_reply"), x.snapshot, x.digests, x.more);
}

/// From the primary owner deciding a conditional write to each other
/// owner: apply REC if the condition holds against your copy too. A copy
/// older than EXPECTED (a replica that missed writes) does not stop it; a
/// newer one, or a decision of the owner's own on the key, does.
struct decide_request {
  std::string keyspace;
  std::string key;
  write_condition condition = write_condition::always;
  state::version expected;
  state::record rec;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, decide_request& x) {
  return f(caf::meta::type_name("decide_request"), x.keyspace, x.key,
           x.condition, x.expected, x.rec);
}

/// An owner's answer to a decide_request: applied, or refused with the
/// copy that refused it (FOUND unset: busy with a decision of its own).
struct decide_reply {
  bool accepted = false;
  bool found = false;
  state::record current;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, decide_reply& x) {
  return f(caf::meta::type_name("decide_reply"), x.accepted, x.found,
           x.current);
}

// node_hello, ownership and peer_actors carry typed actor handles whose
// interfaces name them: they are defined in actors/interfaces.hpp, after
// the handles.
struct node_hello;
struct ownership;
struct peer_actors;

// -- bus -----------------------------------------------------------------------

/// One event on the bus. (origin, incarnation, serial) identifies it
/// cluster-wide; receivers drop duplicates.
struct bus_event {
  std::string topic;
  std::string origin;
  uint64_t incarnation = 0;
  /// 1, 2, 3 ... per origin incarnation.
  uint64_t serial = 0;
  /// Unix ms at the origin.
  int64_t at = 0;
  /// JSON text.
  std::string payload;

  /// "<origin>.<incarnation>.<serial>", the SSE event id.
  std::string id() const {
    return origin + "." + std::to_string(incarnation) + "."
           + std::to_string(serial);
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, bus_event& x) {
  return f(caf::meta::type_name("bus_event"), x.topic, x.origin,
           x.incarnation, x.serial, x.at, x.payload);
}

using bus_event_list = std::vector<bus_event>;

// -- the sessions service ------------------------------------------------------

} // namespace keymesh

namespace keymesh::state {

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, session& x) {
  return f(caf::meta::type_name("session"), x.sid, x.sub, x.client_id,
           x.created_at, x.expires_at, x.last_seen, x.idle_timeout,
           x.attributes, x.clients);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, object& x) {
  return f(caf::meta::type_name("object"), x.kind, x.id, x.value, x.indexes,
           x.created_at, x.expires_at, x.consumed_at, x.consume_key);
}

} // namespace keymesh::state

namespace keymesh {

/// A session to create. The service assigns the sid and the times.
struct session_spec {
  std::string sub;
  std::string client_id;
  /// Seconds; 0: sessions.default_ttl. At most sessions.max_ttl.
  int64_t ttl = 0;
  /// Seconds (0: none); -1: sessions.idle_timeout.
  int64_t idle_timeout = -1;
  std::map<std::string, std::string> attributes;
  /// The participating clients (client_id -> the sid it was given).
  std::map<std::string, std::string> clients = {};
  /// A sid the caller chose (22 base64url characters, say derived from an
  /// OP's own session id); empty: a new random one.
  std::string sid = {};
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, session_spec& x) {
  return f(caf::meta::type_name("session_spec"), x.sub, x.client_id, x.ttl,
           x.idle_timeout, x.attributes, x.clients, x.sid);
}

/// A live session and the version of its record (for a later touch).
struct session_found {
  state::session s;
  state::version ver;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, session_found& x) {
  return f(caf::meta::type_name("session_found"), x.s, x.ver);
}

/// A change to a session's attributes (REMOVE goes after SET), and whether
/// it counts as activity (moves the idle deadline).
struct session_patch {
  std::map<std::string, std::string> set;
  std::vector<std::string> remove;
  bool touch = true;
  /// Clients that took part since (added, or their sid replaced).
  std::map<std::string, std::string> clients = {};
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, session_patch& x) {
  return f(caf::meta::type_name("session_patch"), x.set, x.remove, x.touch,
           x.clients);
}

/// After a touch: whether the session is live, and when it ends (Unix ms).
struct touch_result {
  bool live = false;
  int64_t ends_at = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, touch_result& x) {
  return f(caf::meta::type_name("touch_result"), x.live, x.ends_at);
}

/// A revocation: KIND is "sid", "sub" or "jti".
struct revocation_order {
  std::string kind;
  std::string value;
  std::string reason;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, revocation_order& x) {
  return f(caf::meta::type_name("revocation_order"), x.kind, x.value,
           x.reason);
}

/// What a revocation did: the sessions it ended, the nodes that did not
/// confirm it, and (when not empty) why it is not in the revocation log.
/// It is in force on the nodes reached either way.
struct revocation_outcome {
  revocation_order order;
  uint64_t sessions = 0;
  std::vector<std::string> unreached;
  std::string log_error;
  /// When not empty: why some back-channel logouts of the sessions it
  /// ended are not in the durable outbox (they are sent from memory).
  std::string logout_error = {};
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, revocation_outcome& x) {
  return f(caf::meta::type_name("revocation_outcome"), x.order, x.sessions,
           x.unreached, x.log_error, x.logout_error);
}

/// A session that is ending, for the logout service: who took part, and
/// why it ends.
struct session_ending {
  /// The keymesh sid.
  std::string sid;
  std::string sub;
  std::string reason;
  /// client_id -> the sid its logout token carries.
  std::map<std::string, std::string> participants;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, session_ending& x) {
  return f(caf::meta::type_name("session_ending"), x.sid, x.sub, x.reason,
           x.participants);
}

/// Sessions that end together (a subject's): their deliveries are
/// recorded at once.
using session_endings = std::vector<session_ending>;

/// What the logout service did with session_endings: how many deliveries
/// it queued, the clients that get none (and why), and, when not empty,
/// why the deliveries are not durable (then they go from memory).
struct logout_receipt {
  uint64_t queued = 0;
  std::vector<std::string> skipped;
  std::string error;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, logout_receipt& x) {
  return f(caf::meta::type_name("logout_receipt"), x.queued, x.skipped,
           x.error);
}

/// What one POST got: the status (0: no complete response), why not,
/// whether the address was refused, and the Location of a redirect.
struct post_result {
  int32_t status = 0;
  std::string error;
  bool refused = false;
  std::string location;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, post_result& x) {
  return f(caf::meta::type_name("post_result"), x.status, x.error, x.refused,
           x.location);
}

/// A login: a username and its password, for a client (may be empty).
/// Local to a node (the auth service never takes one from a peer); the
/// password never appears in a message's printed form.
struct credentials {
  std::string username;
  std::string password;
  std::string client_id;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, credentials& x) {
  return f(caf::meta::type_name("credentials"), x.username,
           caf::meta::omittable(), x.password, x.client_id);
}

/// What a login or a refresh grants: an access token that names its
/// session, its lifetime in seconds, and the next refresh token.
struct token_grant {
  std::string access_token;
  int64_t expires_in = 0;
  std::string refresh_token;
  std::string sid;
  std::string sub;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, token_grant& x) {
  return f(caf::meta::type_name("token_grant"), caf::meta::omittable(),
           x.access_token, x.expires_in, caf::meta::omittable(),
           x.refresh_token, x.sid, x.sub);
}

/// A logout: by refresh token, or by the sid of a verified access token
/// (exactly one of them).
struct logout_request {
  std::string refresh_token;
  std::string sid;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, logout_request& x) {
  return f(caf::meta::type_name("logout_request"), caf::meta::omittable(),
           x.refresh_token, x.sid);
}

// -- the user directory ------------------------------------------------------------

/// A claim (name and value) that groups grant to their members.
struct claim_view {
  int64_t id = 0;
  std::string name;
  std::string value;
  std::string description;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, claim_view& x) {
  return f(caf::meta::type_name("claim_view"), x.id, x.name, x.value,
           x.description);
}

/// A user as the directory shows it (never its password hash). GROUPS and
/// CLAIMS are filled when one user is read.
struct user_view {
  std::string username;
  bool enabled = true;
  /// Unix ms.
  int64_t created_at = 0;
  int64_t updated_at = 0;
  std::vector<std::string> groups;
  std::vector<claim_view> claims;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, user_view& x) {
  return f(caf::meta::type_name("user_view"), x.username, x.enabled,
           x.created_at, x.updated_at, x.groups, x.claims);
}

/// One page of users in username order; NEXT (when not empty) is the
/// "after" of the next page.
struct user_page {
  std::vector<user_view> users;
  std::string next;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, user_page& x) {
  return f(caf::meta::type_name("user_page"), x.users, x.next);
}

/// A group, its members and the claims it grants (the lists are filled
/// when one group is read).
struct group_view {
  std::string name;
  /// Unix ms.
  int64_t created_at = 0;
  std::vector<std::string> members;
  std::vector<claim_view> claims;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, group_view& x) {
  return f(caf::meta::type_name("group_view"), x.name, x.created_at,
           x.members, x.claims);
}

/// A new user: its password is hashed by the directory (auth.scrypt_*).
struct user_spec {
  std::string username;
  std::string password;
  bool enabled = true;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, user_spec& x) {
  return f(caf::meta::type_name("user_spec"), x.username,
           caf::meta::omittable(), x.password, x.enabled);
}

/// A change to a user: a new password (empty: unchanged) and/or the
/// enabled flag. Disabling a user revokes its sessions.
struct user_change {
  std::string username;
  std::string password;
  /// Whether ENABLED is part of the change.
  bool set_enabled = false;
  bool enabled = true;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, user_change& x) {
  return f(caf::meta::type_name("user_change"), x.username,
           caf::meta::omittable(), x.password, x.set_enabled, x.enabled);
}

/// A new claim.
struct claim_spec {
  std::string name;
  std::string value;
  std::string description;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, claim_spec& x) {
  return f(caf::meta::type_name("claim_spec"), x.name, x.value,
           x.description);
}

/// What a login or a refresh needs to know of a username: whether it
/// exists, its password hash, whether it is enabled, its groups and the
/// claims they grant. Local to a node (a hash never leaves it).
struct account {
  bool found = false;
  std::string username;
  std::string password_hash;
  bool enabled = false;
  std::vector<std::string> groups;
  std::vector<claim_view> claims;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, account& x) {
  return f(caf::meta::type_name("account"), x.found, x.username,
           caf::meta::omittable(), x.password_hash, x.enabled, x.groups,
           x.claims);
}

// -- objects (services/objects) ---------------------------------------------------

/// When a put applies (checked by the partition's primary owner).
enum class object_condition : uint8_t {
  /// Creates or replaces a live object (never a consumed one).
  always = 0,
  /// Only when no live or consumed object has the id.
  absent = 1,
  /// Only when the object is at version EXPECTED (compare-and-set).
  version_is = 2,
};

/// Creates or replaces an object: the caller's payload, its index fields
/// and how long it lives (ms; 0: the kind's longest).
struct object_put {
  std::string kind;
  std::string id;
  std::string value;
  std::map<std::string, std::string> indexes;
  int64_t ttl_ms = 0;
  object_condition condition = object_condition::always;
  state::version expected;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, object_put& x) {
  return f(caf::meta::type_name("object_put"), x.kind, x.id, x.value,
           x.indexes, x.ttl_ms, x.condition, x.expected);
}

/// An object and the version of its record (for compare-and-set).
struct object_found {
  state::object obj;
  state::version ver;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, object_found& x) {
  return f(caf::meta::type_name("object_found"), x.obj, x.ver);
}

/// The objects of a kind whose index FIELD has VALUE.
struct object_lookup {
  std::string kind;
  std::string field;
  std::string value;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, object_lookup& x) {
  return f(caf::meta::type_name("object_lookup"), x.kind, x.field, x.value);
}

/// A one-time value to register (a client assertion's, a request
/// object's, a DPoP proof's or a logout token's jti): first use or replay.
struct replay_check {
  /// What kind of value ("client_assertion", "dpop", ...): 1 to 64 of
  /// A-Z a-z 0-9 _ - .
  std::string scope;
  std::string iss;
  std::string jti;
  /// When the value expires (Unix seconds): it is remembered until then
  /// (at most objects.max_ttl).
  int64_t exp = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, replay_check& x) {
  return f(caf::meta::type_name("replay_check"), x.scope, x.iss, x.jti,
           x.exp);
}

/// The answer to a replay_check: the first use is not a replay.
struct replay_verdict {
  bool replayed = false;
  /// Unix ms when the value was first registered.
  int64_t first_seen = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, replay_verdict& x) {
  return f(caf::meta::type_name("replay_verdict"), x.replayed,
           x.first_seen);
}

/// A pushed authorization request (RFC 9126) to keep for its client.
struct par_push {
  /// 1 to 512 bytes without control characters.
  std::string client_id;
  /// The authorization request's parameters: JSON text of an object, at
  /// most objects.max_value_bytes.
  std::string params;
  /// Lifetime (0: 60 s); at most 600 s.
  int64_t ttl_ms = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, par_push& x) {
  return f(caf::meta::type_name("par_push"), x.client_id, x.params,
           x.ttl_ms);
}

/// Where the client finds its pushed request.
struct par_pushed {
  /// "urn:ietf:params:oauth:request_uri:<random>" (only its hash is kept).
  std::string request_uri;
  /// Unix ms.
  int64_t expires_at = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, par_pushed& x) {
  return f(caf::meta::type_name("par_pushed"), x.request_uri, x.expires_at);
}

/// A client presenting a request_uri at the authorization endpoint.
struct par_redeem {
  std::string client_id;
  std::string request_uri;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, par_redeem& x) {
  return f(caf::meta::type_name("par_redeem"), x.client_id, x.request_uri);
}

/// A redeemed pushed request.
struct par_request {
  std::string client_id;
  /// JSON text of the parameters pushed.
  std::string params;
  /// Unix ms.
  int64_t expires_at = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, par_request& x) {
  return f(caf::meta::type_name("par_request"), x.client_id, x.params,
           x.expires_at);
}

// -- the store pool's and the hash pool's requests (local to a node) ---------------

/// A password on its way to the hash pool (never in a printed message).
struct password_text {
  std::string value;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, password_text& x) {
  return f(caf::meta::type_name("password_text"), caf::meta::omittable(),
           x.value);
}

/// A new user as the database stores it: the hash the hash pool made.
struct new_user {
  std::string username;
  std::string password_hash;
  bool enabled = true;
  /// Unix ms.
  int64_t created_at = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, new_user& x) {
  return f(caf::meta::type_name("new_user"), x.username,
           caf::meta::omittable(), x.password_hash, x.enabled, x.created_at);
}

/// A change to a user as the database writes it.
struct user_write {
  std::string username;
  /// Whether PASSWORD_HASH replaces the stored one.
  bool set_hash = false;
  std::string password_hash;
  /// Whether ENABLED is part of the change.
  bool set_enabled = false;
  bool enabled = true;
  /// Unix ms.
  int64_t updated_at = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, user_write& x) {
  return f(caf::meta::type_name("user_write"), x.username, x.set_hash,
           caf::meta::omittable(), x.password_hash, x.set_enabled, x.enabled,
           x.updated_at);
}

/// Replaces a user's password hash OLD_HASH with NEW_HASH (the same
/// password at the current cost) unless it changed meanwhile.
struct hash_upgrade {
  std::string username;
  std::string old_hash;
  std::string new_hash;
  /// Unix ms.
  int64_t updated_at = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, hash_upgrade& x) {
  return f(caf::meta::type_name("hash_upgrade"), x.username,
           caf::meta::omittable(), x.old_hash, caf::meta::omittable(),
           x.new_hash, x.updated_at);
}

/// Durable session rows (a batch to write, or what a read found).
using session_rows = std::vector<persistence::session_row>;

/// A sealed secret ring as stored (none or one).
using secret_rows = std::vector<persistence::secret_row>;

/// Registered relying parties (a page of them, or a read's none or one).
using client_records = std::vector<persistence::client_record>;

/// Back-channel logout deliveries (to write, or taken over).
using outbox_rows = std::vector<persistence::outbox_row>;

} // namespace keymesh

namespace keymesh::persistence {

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, revocation_entry& x) {
  return f(caf::meta::type_name("revocation_entry"), x.kind, x.value,
           x.revoked_at, x.until, x.reason, x.origin);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, session_row& x) {
  return f(caf::meta::type_name("session_row"), x.sid, x.sub, x.value,
           x.created_at, x.expires_at, x.version, x.revoked);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, client_record& x) {
  return f(caf::meta::type_name("client_record"), x.client_id,
           x.backchannel_logout_uri, x.session_required, x.created_at,
           x.updated_at);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, outbox_row& x) {
  return f(caf::meta::type_name("outbox_row"), x.id, x.session_id, x.sid,
           x.sub, x.client_id, x.uri, x.reason, x.posture, x.created_at,
           x.give_up_at, x.next_attempt_at, x.attempts, x.owner,
           x.lease_until, x.last_error);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, secret_row& x) {
  return f(caf::meta::type_name("secret_row"), x.purpose, x.generation,
           caf::meta::omittable(), x.sealed, x.updated_at);
}

} // namespace keymesh::persistence

namespace keymesh::auth {

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, scrypt_cost& x) {
  return f(caf::meta::type_name("scrypt_cost"), x.log2_n, x.r, x.p);
}

} // namespace keymesh::auth
