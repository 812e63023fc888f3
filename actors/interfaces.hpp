// The whole actor protocol of a keymesh node in one place: every typed actor
// interface, one comment per handler, and the type-ID block that registers
// every message type. An embedding application includes this header, calls
// keymesh::add_message_types(cfg) and talks to the actors through these
// handles.
#pragma once

#include <string>

#include <caf/actor_system_config.hpp>
#include <caf/replies_to.hpp>
#include <caf/type_id.hpp>
#include <caf/typed_actor.hpp>

#include "actors/atoms.hpp"
#include "actors/messages.hpp"

namespace keymesh {

struct node_services;
struct peer_federation;
struct peer_bus;

/// Owns this node's private signing keys and their rotation schedule.
using keystore_actor = caf::typed_actor<
  // Signs a token with the current signing key; fails with
  // ec::invalid_argument for unusable extra claims and ec::crypto_failure
  // when signing fails otherwise (no key, an OpenSSL error, bad UTF-8).
  caf::replies_to<atom::sign, token_request>::with<signed_token>,
  // The public keys this node currently publishes, with their schedule.
  caf::replies_to<atom::get, atom::keys>::with<key_announcement>,
  // Rotates now (e.g. after a suspected compromise): answers with the new
  // signing kid and the new pre-published kid, once peers have the latter.
  caf::replies_to<atom::rotate>::with<std::string, std::string>,
  // Internal timer (the id guards against stray ticks): applies the rotation
  // schedule at the current wall-clock time.
  caf::reacts_to<atom::tick, uint64_t>>;

/// Owns the merged public key set (this node's keys plus every peer's) and
/// publishes it as an immutable snapshot for the HTTP front.
using federation_actor = caf::typed_actor<
  // The keys of one origin changed (this node's keystore, or an admitted
  // member's federation); acknowledged once the new snapshot is visible to
  // readers. A member announces only kids in its own namespace.
  caf::replies_to<atom::announce, key_announcement>::with<atom::ok>,
  // A static peer's keys (from this node's peer fetchers only): they rank
  // below this node and the members, and never take a kid they own or a
  // kid in their namespace.
  caf::replies_to<atom::announce, atom::fetched, key_announcement>::with<
    atom::ok>,
  // The merged JWKS document as served at /api/pkeys.
  caf::replies_to<atom::get, atom::jwks>::with<std::string>,
  // A cluster peer came up (from membership): it is sent this node's keys,
  // and receives every later change.
  caf::reacts_to<atom::join, peer_federation>,
  // A cluster peer went away at the given Unix ms: its keys stay published
  // until the tokens they could have signed have expired.
  caf::reacts_to<atom::leave, std::string, int64_t>,
  // Internal timer (the id guards against stray ticks): rebuilds the
  // snapshot when the schedule changes it (a key starts signing, retires, or
  // leaves once its tokens have all expired).
  caf::reacts_to<atom::tick, uint64_t>>;

/// Owns this node's view of the cluster: links to peers (one per pair),
/// handshakes, heartbeats, gossip and reconnection.
using membership_actor = caf::typed_actor<
  // A peer opened a link: its facts and a nonce; the answer carries this
  // node's facts, its proof over the nonce and a nonce of its own.
  caf::replies_to<atom::hello, node_hello>::with<node_hello>,
  // The dialling peer's proof over this node's nonce (peer id, signature)
  // and its services; once the proof verifies, the answer carries this
  // node's services.
  caf::replies_to<atom::prove, std::string, std::string,
                  node_services>::with<node_services>,
  // Heartbeat; answers with the same sequence number and the answering
  // node's wall clock (Unix ms), from which the pinging node estimates the
  // offset between their clocks.
  caf::replies_to<atom::ping, uint64_t>::with<uint64_t, int64_t>,
  // A peer's view of the cluster: (instance id, address) of what it knows.
  caf::reacts_to<atom::gossip, std::vector<member_info>>,
  // Addresses found by discovery (DNS SRV), added as seeds.
  caf::reacts_to<atom::seeds, std::vector<std::string>>,
  // This node and its view, for GET /api/cluster.
  caf::replies_to<atom::get, atom::members>::with<cluster_status>,
  // Timer (heartbeats, failure detection, redials), id-guarded; the node
  // sends (tick, 0) once, after publishing the actor, to start the rounds.
  caf::reacts_to<atom::tick, uint64_t>>;

/// Holds one partition of every keyspace on this node: serves it when this
/// node owns the partition, forwards to an owner otherwise, replicates the
/// writes it coordinates, and keeps its replicas in line (handoff and
/// anti-entropy). One per partition per node.
using shard_actor = caf::typed_actor<
  // Reads one record (local when this node owns the partition).
  caf::replies_to<atom::get, read_request>::with<read_result>,
  // Writes one record; coordinated by the partition's primary owner and
  // acknowledged per state.write_consistency. Fails with ec::conflict when
  // the condition does not hold, ec::unavailable when owners do not answer.
  caf::replies_to<atom::put, write_request>::with<write_result>,
  // Lists the live records under a key prefix.
  caf::replies_to<atom::scan, scan_request>::with<record_list>,
  // Reserves one attempt under a key (failed-login counting): decided by
  // the primary owner before the attempt's check runs, replicated and
  // acknowledged like a write; refused (not granted) while the key is
  // locked.
  caf::replies_to<atom::reserve, attempt_request>::with<attempt_result>,
  // From the coordinating owner: records to merge.
  caf::replies_to<atom::replicate, record_list>::with<atom::ok>,
  // From the primary owner deciding a conditional write: check it against
  // this copy and apply it, or refuse.
  caf::replies_to<atom::decide, decide_request>::with<decide_reply>,
  // Handoff and anti-entropy: the sender's bucket digests; answers with the
  // records of the buckets that differ and this replica's digests.
  caf::replies_to<atom::sync, state::digest_vector>::with<sync_reply>,
  // From the router: the owners of this partition in a new view.
  caf::reacts_to<atom::owners, ownership>,
  // The partition as a snapshot archive (graceful shutdown).
  caf::replies_to<atom::snapshot>::with<std::string>,
  // Internal timer (id-guarded): expiry purge, anti-entropy, statistics.
  caf::reacts_to<atom::tick, uint64_t>>;

/// Maps partitions to owners for the current member view and tells every
/// local shard when its owners change.
using router_actor = caf::typed_actor<
  // A peer linked (from membership).
  caf::reacts_to<atom::join, peer_actors>,
  // A peer went down (from membership).
  caf::reacts_to<atom::leave, std::string>,
  // From a shard: it serves the partition for this epoch (handoff done).
  caf::reacts_to<atom::synced, uint32_t, uint64_t>>;

/// One per node, meshed with every peer's bus: topics ("revocations",
/// "sessions", "members", "keys", and an embedding application's own) reach
/// the subscribers on every node. Receivers drop duplicates and, after a
/// reconnect, fetch the serials they missed: delivery is at-least-once.
/// Subscribers receive (atom::event, bus_event).
using bus_actor = caf::typed_actor<
  // Publishes on TOPIC with a JSON payload; answers, once every linked peer
  // acknowledged or the peer timeout passed, with the peers that did not.
  caf::replies_to<atom::publish, std::string, std::string>::with<
    std::vector<std::string>>,
  // From a peer's bus: a batch of events, in order; acknowledged once
  // applied here.
  caf::replies_to<atom::deliver, bus_event_list>::with<atom::ok>,
  // From a peer's bus that reconnected: this node's own events after a
  // serial of an incarnation (all retained ones for another incarnation).
  caf::replies_to<atom::replay, uint64_t, uint64_t>::with<bus_event_list>,
  // From a peer's bus that linked: every revocation in force in this
  // node's deny set, as "revocations" events (origin this node, serial 0),
  // whoever took them: what their origins may no longer have to replay.
  caf::replies_to<atom::replay, atom::revoke>::with<bus_event_list>,
  // From membership, before the node reports ready: answers (true) once
  // the deny sets of the peers linked so far have been read (or their
  // reads failed), so a node back from a restart enforces what it missed
  // before it takes traffic.
  caf::replies_to<atom::get, atom::revoke>::with<bool>,
  // Local subscriptions ("*" is every topic); a subscriber that terminates
  // is dropped.
  caf::reacts_to<atom::subscribe, std::vector<std::string>, caf::actor>,
  // The same, resuming after an event id (Last-Event-ID): answers with the
  // retained events of those topics after it, and whether it was found
  // (when not, every retained event of those topics). No event falls
  // between the answer and the first live one.
  caf::replies_to<atom::subscribe, std::vector<std::string>, caf::actor,
                  std::string>::with<bus_event_list, bool>,
  caf::reacts_to<atom::unsubscr, caf::actor>,
  // From membership: a peer's bus linked / the peer went down.
  caf::reacts_to<atom::join, peer_bus>,
  caf::reacts_to<atom::leave, std::string>>;

/// The directory's requests that a store worker answers as they come (the
/// directory service checks the input first and hands them on; it also
/// revokes the sessions of a user it deletes).
using directory_records_actor = caf::typed_actor<
  // Users: read one (with its groups and claims), list a page after a
  // username, delete (with its memberships).
  caf::replies_to<atom::get, atom::user, std::string>::with<user_view>,
  caf::replies_to<atom::list, atom::user, std::string, uint64_t>::with<
    user_page>,
  caf::replies_to<atom::remove, atom::user, std::string>::with<atom::ok>,
  // Groups: read one (members, claims), list, delete.
  caf::replies_to<atom::get, atom::group, std::string>::with<group_view>,
  caf::replies_to<atom::list, atom::group>::with<std::vector<group_view>>,
  caf::replies_to<atom::remove, atom::group, std::string>::with<atom::ok>,
  // Claims: create, list, delete (with their grants).
  caf::replies_to<atom::create, claim_spec>::with<claim_view>,
  caf::replies_to<atom::list, atom::claim>::with<std::vector<claim_view>>,
  caf::replies_to<atom::remove, atom::claim, int64_t>::with<atom::ok>,
  // Membership (group, username) and grants (group, claim id).
  caf::replies_to<atom::add, atom::member, std::string, std::string>::with<
    atom::ok>,
  caf::replies_to<atom::remove, atom::member, std::string,
                  std::string>::with<atom::ok>,
  caf::replies_to<atom::add, atom::grant, std::string, int64_t>::with<
    atom::ok>,
  caf::replies_to<atom::remove, atom::grant, std::string, int64_t>::with<
    atom::ok>,
  // For the auth service: what a login needs of a username (found or not).
  caf::replies_to<atom::get, atom::account, std::string>::with<account>,
  // Relying parties registered for back-channel logout: read one (none or
  // one), a page after a client_id (at most LIMIT), delete one.
  caf::replies_to<atom::get, atom::client, std::string>::with<client_records>,
  caf::replies_to<atom::list, atom::client, std::string, uint64_t>::with<
    client_records>,
  caf::replies_to<atom::remove, atom::client, std::string>::with<atom::ok>,
  // Creates or replaces a registration (a replace keeps created_at; the
  // directory service checks it and stamps the times); answers it as
  // stored.
  caf::replies_to<atom::put, persistence::client_record>::with<
    persistence::client_record>>;

/// One worker of the store pool, on a thread of its own with its own
/// database connection (opened, or opened again after an outage, as
/// needed). Every request is one named database operation. Lent by
/// store_pool::worker(), which counts the request against
/// database.max_queue. Errors: ec::unavailable (the database is down or did
/// not answer: context says), ec::conflict (context: what exists already),
/// ec::not_found (context: what), ec::rejected (the database refused the
/// statement).
using store_worker_actor = directory_records_actor::extend<
  // The revocation log: records one entry (a repeated one keeps the later
  // deadline).
  caf::replies_to<atom::put, persistence::revocation_entry>::with<atom::ok>,
  // Records an entry and marks the durable sessions it ends as revoked.
  caf::replies_to<atom::revoke, persistence::revocation_entry>::with<
    atom::ok>,
  // Durable sessions: writes rows in one statement (a row replaces a
  // stored one only when its version is newer).
  caf::replies_to<atom::put, session_rows>::with<atom::ok>,
  // The row of a sid (none or one).
  caf::replies_to<atom::get, atom::session, std::string>::with<session_rows>,
  // A subject's sessions neither revoked nor ended at NOW (Unix ms), at
  // most LIMIT.
  caf::replies_to<atom::list, atom::session, std::string, int64_t,
                  uint64_t>::with<session_rows>,
  // A new user, a change to one (both answer with the user as written),
  // a new group (at Unix ms).
  caf::replies_to<atom::create, new_user>::with<user_view>,
  caf::replies_to<atom::update, user_write>::with<user_view>,
  caf::replies_to<atom::create, atom::group, std::string, int64_t>::with<
    group_view>,
  // Replaces a password hash unless it changed meanwhile; answers whether
  // it did.
  caf::replies_to<atom::rehash, hash_upgrade>::with<bool>,
  // Cluster secret rings, sealed: writes one unless a newer generation is
  // stored; reads the one of a purpose (none or one).
  caf::replies_to<atom::put, persistence::secret_row>::with<atom::ok>,
  caf::replies_to<atom::get, atom::ring, std::string>::with<secret_rows>,
  // The registrations of several clients (those that exist, any order).
  caf::replies_to<atom::get, atom::client, std::vector<std::string>>::with<
    client_records>,
  // The back-channel logout outbox: writes deliveries in one statement;
  // takes over (owner, now, lease until, at most LIMIT) those whose lease
  // ended; records an attempt of a delivery its owner still owns (whether
  // it did); deletes one (id, owner) its owner still owns (whether it
  // did).
  caf::replies_to<atom::put, outbox_rows>::with<atom::ok>,
  caf::replies_to<atom::reserve, atom::logout, std::string, int64_t, int64_t,
                  uint64_t>::with<outbox_rows>,
  caf::replies_to<atom::update, persistence::outbox_row>::with<bool>,
  caf::replies_to<atom::remove, atom::logout, std::string,
                  std::string>::with<bool>,
  // Quits after the requests queued before (an exit message would overtake
  // them).
  caf::reacts_to<atom::leave>>;

/// Batches durable session writes: rows that arrive while earlier batches
/// are being written wait and go together in the next one (one statement,
/// one commit); at most half the store workers write batches at once.
/// Errors: ec::unavailable (context: why the row was not written).
using session_writer_actor = caf::typed_actor<
  caf::replies_to<atom::put, persistence::session_row>::with<atom::ok>>;

/// One worker of the hash pool (password hashes: slow on purpose), on a
/// thread of its own. Lent by hash_pool::worker(), which counts the request
/// against its queue. Errors: ec::crypto_failure (a hash could not be made).
using hash_worker_actor = caf::typed_actor<
  // A new scrypt hash of a password at a cost.
  caf::replies_to<atom::hash, password_text, auth::scrypt_cost>::with<
    std::string>,
  // Whether a password matches a stored hash; against an empty hash, the
  // same work on a dummy hash of the cost (an unknown user), and false.
  caf::replies_to<atom::check, password_text, std::string,
                  auth::scrypt_cost>::with<bool>,
  // Quits after the requests queued before.
  caf::reacts_to<atom::leave>>;

/// Sessions: create, read, update and touch, list by subject, and
/// revocations (by sid, subject or token id). Reads and writes go to the
/// shards of the sessions and subjects keyspaces; with sessions.posture
/// durable, through to the database before an acknowledgement. Local to
/// its node (peers never reach it); several may run, all equivalent.
/// Errors: ec::invalid_argument (input the settings refuse), ec::not_found
/// (absent or expired), ec::revoked, ec::conflict, ec::unavailable.
using sessions_actor = caf::typed_actor<
  // Creates a session; answers once the session and its subject index
  // entry (and, durable, the database row) are written.
  caf::replies_to<atom::create, session_spec>::with<state::session>,
  // A live session (not revoked by sid or subject, not expired) and its
  // record version. Durable: one memory lost is read back from the
  // database.
  caf::replies_to<atom::get, std::string>::with<session_found>,
  // Changes attributes (and touches, unless told not to); retries lost
  // races a few times, then fails with ec::conflict.
  caf::replies_to<atom::update, std::string, session_patch>::with<
    state::session>,
  // Activity on a session read at a version: moves its idle deadline. A
  // race lost to another touch leaves the session live as read.
  caf::replies_to<atom::touch, session_found>::with<touch_result>,
  // The live sessions of a subject (at most 1,000).
  caf::replies_to<atom::list, std::string>::with<std::vector<state::session>>,
  // Logs one client out of a session that goes on (sid, client_id): its
  // back-channel logout is queued (in the outbox) first, then the session
  // is written without it. ec::not_found when the session is absent or the
  // client does not take part in it.
  caf::replies_to<atom::remove, atom::client, std::string,
                  std::string>::with<state::session>,
  // Revokes: this node's deny set at once, a broadcast to every node, the
  // tombstones of the sessions it ends, and the revocation log; answers
  // once all of them did or failed.
  caf::replies_to<atom::revoke, revocation_order>::with<revocation_outcome>>;

/// Back-channel logout (OpenID Connect Back-Channel Logout 1.0): sends a
/// logout token to every registered client that took part in a session
/// that ended, through the durable outbox (one node owns a delivery at a
/// time; a node that stops renewing its lease hands it to another).
/// Local to its node.
using logout_actor = caf::typed_actor<
  // Queues the deliveries of ending sessions (durably when there is a
  // database, in one statement) and starts them; answers once they are
  // recorded.
  caf::replies_to<atom::logout, session_endings>::with<logout_receipt>,
  // Internal timers: take over deliveries whose lease ended (the id guards
  // against stray ticks); attempt delivery ID now.
  caf::reacts_to<atom::tick, uint64_t>,
  caf::reacts_to<atom::run, std::string>>;

/// One blocking POST at a time (a detached actor of the logout service).
using poster_actor = caf::typed_actor<
  // POSTs a form-encoded BODY to URI.
  caf::replies_to<atom::post, std::string, std::string>::with<post_result>>;

/// Revocations alone: the part of the sessions service that an actor which
/// only ends sessions needs (the directory, an application's admin actor).
/// Every sessions_actor converts to it (node::revocations()).
using revocation_actor = caf::typed_actor<
  // As sessions_actor's revoke: this node's deny set at once, a broadcast
  // to every node, the tombstones of the sessions it ends, the revocation
  // log; answers once all of them did or failed.
  caf::replies_to<atom::revoke, revocation_order>::with<revocation_outcome>>;

/// Logins, refresh token rotation and logouts. A login is counted against
/// auth.max_failures before its password is checked (on the hash pool), then
/// makes a session (through a sessions service), a refresh token family and
/// an access token with the claims of the user's groups. Local to its node;
/// several may run, all equivalent. Errors: ec::invalid_credentials,
/// ec::locked (context: when it unlocks, Unix ms), ec::disabled,
/// ec::invalid_grant (context: why), ec::overloaded (the hash queue is full),
/// ec::unavailable (the database or the partition owners did not answer).
using auth_actor = caf::typed_actor<
  // Checks the credentials; answers with the new session's tokens.
  caf::replies_to<atom::login, credentials>::with<token_grant>,
  // Rotates a refresh token (text as the client sent it): exactly one of
  // racing rotations wins; an older generation is reuse and ends the
  // session. Answers with the next tokens.
  caf::replies_to<atom::refresh, std::string>::with<token_grant>,
  // Ends the session of a refresh token or of a verified access token's
  // sid, with the revocation's outcome.
  caf::replies_to<atom::logout, logout_request>::with<revocation_outcome>>;

/// The user directory in the database: users (with scrypt password
/// hashes, made on the hash pool), groups and their members, and the
/// claims groups grant. Disabling or deleting a user revokes its sessions
/// (through a sessions service). Local to its node; several may run, all
/// equivalent. Errors: ec::invalid_argument, ec::not_found (context: what),
/// ec::conflict (context: what exists already), ec::unavailable (no
/// database, or it did not answer: context says), ec::overloaded (a queue
/// is full), ec::rejected (the database refused the statement),
/// ec::crypto_failure (a password could not be hashed).
using directory_actor = directory_records_actor::extend<
  // Users: create (hashing the password), change (password, enabled;
  // disabling revokes the user's sessions).
  caf::replies_to<atom::create, user_spec>::with<user_view>,
  caf::replies_to<atom::update, user_change>::with<user_view>,
  // Groups: create.
  caf::replies_to<atom::create, atom::group, std::string>::with<group_view>,
  // For the auth service: replaces USER's hash OLD with NEW (the same
  // password at the current cost) unless it changed meanwhile; answers
  // whether it did.
  caf::replies_to<atom::rehash, std::string, std::string,
                  std::string>::with<bool>>;

/// Short-lived objects of an OpenID Provider's models, shared by every
/// node: put (with a TTL, only if absent, or compare-and-set), get,
/// consume exactly once, destroy, look up by an index field (uid,
/// grant_id, user_code ...) and destroy everything of an index value (a
/// grant). Decisions are made by the partition's primary owner; an
/// object's state only moves forward (live, consumed, destroyed). Local to
/// its node; several may run, all equivalent. Errors: ec::invalid_argument
/// (context: which limit), ec::not_found (absent or expired),
/// ec::already_consumed (context: when, Unix ms), ec::version_mismatch,
/// ec::conflict (absent was asked and it exists), ec::unavailable.
using objects_actor = caf::typed_actor<
  // Writes an object (and its index entries); answers with it as stored.
  caf::replies_to<atom::put, object_put>::with<object_found>,
  // An object by kind and id, consumed ones too (consumed_at set).
  caf::replies_to<atom::get, std::string, std::string>::with<object_found>,
  // Consumes (kind, id) once: the first caller gets the consumed object;
  // a retry with the winner's idempotency key (non-empty) gets the same
  // answer again; everyone else ec::already_consumed.
  caf::replies_to<atom::consume, std::string, std::string,
                  std::string>::with<object_found>,
  // Destroys (kind, id) and its index entries; ec::not_found if absent.
  caf::replies_to<atom::remove, std::string, std::string>::with<atom::ok>,
  // The live or consumed objects of an index value (at most 1,000).
  caf::replies_to<atom::list, object_lookup>::with<std::vector<object_found>>,
  // Destroys every object of an index value; answers how many.
  caf::replies_to<atom::remove, object_lookup>::with<uint64_t>,
  // The replay registry: registers (scope, iss, jti) until exp; a second
  // registration anywhere in the cluster is a replay (with when the value
  // was first seen).
  caf::replies_to<atom::check, replay_check>::with<replay_verdict>,
  // Pushed authorization requests (RFC 9126): keeps one for its client
  // and answers where to find it; redeems one once, by that client only
  // (ec::client_mismatch for another, ec::expired, ec::already_consumed,
  // ec::not_found, ec::invalid_argument for a malformed request_uri).
  caf::replies_to<atom::push, par_push>::with<par_pushed>,
  caf::replies_to<atom::redeem, par_redeem>::with<par_request>>;

/// Keeps this node's copy of the cluster's secret rings (DPoP nonce keys,
/// cookie keys) current, creates and rotates them (services/secrets.hpp).
/// Local to its node. Errors: ec::invalid_argument (unknown purpose),
/// ec::unavailable (the state or the database did not answer).
using secrets_actor = caf::typed_actor<
  // Re-reads the ring of a purpose now; answers with the generation this
  // node holds afterwards.
  caf::replies_to<atom::update, std::string>::with<uint64_t>,
  // Rotates the ring of a purpose now (admin); answers with the new
  // generation.
  caf::replies_to<atom::rotate, std::string>::with<uint64_t>,
  // From the bus: a ring changed on some node.
  caf::reacts_to<atom::event, bus_event>,
  // Internal timer (id-guarded): re-read every ring, rotate when due.
  caf::reacts_to<atom::tick, uint64_t>>;

/// A node's actors that its peers talk to, handed over only once the other
/// side's handshake proof verified: nothing but the membership actor is
/// reachable by a peer before that.
struct node_services {
  federation_actor federation;
  /// One per partition (index = partition).
  std::vector<shard_actor> shards;
  bus_actor bus;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_services& x) {
  return f(caf::meta::type_name("node_services"), x.federation, x.shards,
           x.bus);
}

// -- messages that carry typed handles ------------------------------------------

/// What two nodes tell each other when a link opens. The dialling node sends
/// one (with a nonce for the other side to sign); the answer carries the
/// other side's facts, its signature over that nonce, and its own nonce.
struct node_hello {
  std::string instance_id;
  std::string cluster_name;
  uint32_t protocol_version = 0;
  /// SHA-256 (hex) of `settings`.
  std::string settings_fingerprint;
  /// "key=value" for every setting that must agree across the cluster.
  std::vector<std::string> settings;
  /// The cluster address this node listens on (host:port).
  std::string address;
  uint64_t incarnation = 0;
  /// The node's certificate (PEM); empty when the cluster runs in plaintext.
  std::string certificate_pem;
  /// A fresh random challenge for the other side.
  std::string nonce;
  /// In an answer: the signature over the dialling node's nonce.
  std::string proof;
  /// The sender's membership actor: the only handle a peer gets before its
  /// proof succeeded (see node_services).
  membership_actor membership;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_hello& x) {
  return f(caf::meta::type_name("node_hello"), x.instance_id, x.cluster_name,
           x.protocol_version, x.settings_fingerprint, x.settings, x.address,
           x.incarnation, x.certificate_pem, x.nonce, x.proof, x.membership);
}

/// Who owns one partition in the current view (from the router to a shard).
struct ownership {
  uint64_t epoch = 0;
  /// Best first: the first is the primary.
  std::vector<std::string> owners;
  /// Every live member and its shard of this partition (this node's own
  /// shard included).
  std::vector<std::string> members;
  std::vector<shard_actor> shards;
  /// The replication factor (0: every member owns every partition).
  uint32_t replicas = 0;
  /// How many members this node has known in its life, itself included
  /// (the fence of decisions: a view with at most half of them decides
  /// nothing).
  uint32_t known = 1;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, ownership& x) {
  return f(caf::meta::type_name("ownership"), x.epoch, x.owners, x.members,
           x.shards, x.replicas, x.known);
}

/// A linked peer's actors (from membership to the router).
struct peer_actors {
  std::string instance_id;
  uint64_t incarnation = 0;
  std::vector<shard_actor> shards;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, peer_actors& x) {
  return f(caf::meta::type_name("peer_actors"), x.instance_id, x.incarnation,
           x.shards);
}

/// A linked peer's federation (from membership to this node's federation).
struct peer_federation {
  std::string instance_id;
  federation_actor handle;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, peer_federation& x) {
  return f(caf::meta::type_name("peer_federation"), x.instance_id, x.handle);
}

/// A linked peer's bus (from membership to this node's bus).
struct peer_bus {
  std::string instance_id;
  bus_actor handle;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, peer_bus& x) {
  return f(caf::meta::type_name("peer_bus"), x.instance_id, x.handle);
}

/// Registers every keymesh message type with an actor system config.
void add_message_types(caf::actor_system_config& cfg);

} // namespace keymesh

CAF_BEGIN_TYPE_ID_BLOCK(keymesh, caf::first_custom_type_id)
  CAF_ADD_TYPE_ID(keymesh, (keymesh::token_request))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::signed_token))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::public_key_info))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::key_announcement))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::node_hello))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::member_info))
  CAF_ADD_TYPE_ID(keymesh, (std::vector<keymesh::member_info>))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::cluster_status))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::state::version))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::state::record))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::state::keyed_record))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::record_list))
  CAF_ADD_TYPE_ID(keymesh, (std::vector<uint64_t>))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::read_request))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::read_result))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::write_request))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::write_result))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::scan_request))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::sync_reply))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::ownership))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::peer_actors))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::bus_event))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::bus_event_list))
  CAF_ADD_TYPE_ID(keymesh, (std::vector<std::string>))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::keystore_actor))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::federation_actor))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::membership_actor))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::shard_actor))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::router_actor))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::bus_actor))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::attempt_request))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::attempt_result))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::node_services))
  CAF_ADD_TYPE_ID(keymesh, (std::vector<keymesh::shard_actor>))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::state::session))
  CAF_ADD_TYPE_ID(keymesh, (std::vector<keymesh::state::session>))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::session_spec))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::session_found))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::session_patch))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::touch_result))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::revocation_order))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::revocation_outcome))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::sessions_actor))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::credentials))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::token_grant))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::logout_request))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::auth_actor))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::claim_view))
  CAF_ADD_TYPE_ID(keymesh, (std::vector<keymesh::claim_view>))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::user_view))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::user_page))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::group_view))
  CAF_ADD_TYPE_ID(keymesh, (std::vector<keymesh::group_view>))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::user_spec))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::user_change))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::claim_spec))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::account))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::directory_actor))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::peer_federation))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::peer_bus))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::revocation_actor))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::password_text))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::auth::scrypt_cost))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::new_user))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::user_write))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::hash_upgrade))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::persistence::revocation_entry))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::persistence::session_row))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::session_rows))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::store_worker_actor))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::session_writer_actor))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::hash_worker_actor))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::state::object))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::object_put))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::object_found))
  CAF_ADD_TYPE_ID(keymesh, (std::vector<keymesh::object_found>))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::object_lookup))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::objects_actor))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::replay_check))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::replay_verdict))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::decide_request))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::decide_reply))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::par_push))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::par_pushed))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::par_redeem))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::par_request))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::persistence::secret_row))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::secret_rows))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::secrets_actor))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::persistence::client_record))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::client_records))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::persistence::outbox_row))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::outbox_rows))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::session_ending))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::session_endings))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::logout_receipt))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::post_result))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::logout_actor))
  CAF_ADD_TYPE_ID(keymesh, (keymesh::poster_actor))
CAF_END_TYPE_ID_BLOCK(keymesh)
