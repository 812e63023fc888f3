// The federation actor: merges the public keys of every origin (this node's
// keystore now; cluster peers and HTTP peers later) into one key set and
// publishes it as an immutable snapshot. Readers on any thread (the HTTP
// front's JWKS and verify paths) load the snapshot without a message.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include <caf/expected.hpp>
#include <caf/fwd.hpp>

#include "actors/admission.hpp"
#include "actors/interfaces.hpp"
#include "common/clock.hpp"
#include "config/settings.hpp"
#include "jose/key.hpp"
#include "jose/key_set.hpp"

namespace keymesh {

/// Where keys come from, highest first: a kid owned by a higher origin is
/// never replaced by a lower one, and a static peer may not publish kids in
/// the namespace ("<instance id>-") of this node or of a cluster member.
enum class origin_rank : uint8_t { local = 0, member = 1, static_peer = 2 };

/// One immutable view of the merged key set, pre-serialised for HTTP.
struct key_snapshot {
  /// Every published key, for verification.
  jose::key_set keys;
  /// This cluster's own keys only (this node's and the members'), for what
  /// only the cluster's tokens may do (ending one of its sessions).
  jose::key_set cluster_keys;
  /// Keys of static peers refused so far because they named a kid owned by
  /// this node or a member, or in their namespace (each peer and kid
  /// counted once).
  uint64_t shadowing_refused = 0;
  /// The merged JWKS document and its ETag (a quoted hex digest).
  std::string jwks;
  std::string etag;
  /// Only this node's keys (the form Stoke-style peers fetch).
  std::string jwks_local;
  std::string etag_local;
  size_t key_count = 0;
  size_t local_key_count = 0;
  /// The next instant at which the published set is scheduled to change.
  time_point next_change = time_point::max();
};

/// Where the federation publishes its snapshots: written by one actor, read
/// by any thread. A reader keeps the snapshot it saw last in a thread-local
/// cache and only takes the lock when a newer one was stored, so the hot
/// paths (JWKS, verify) pay one atomic load per request.
class key_snapshot_slot {
public:
  std::shared_ptr<const key_snapshot> load() const;

  void store(std::shared_ptr<const key_snapshot> next);

private:
  mutable std::mutex mutex_;
  std::shared_ptr<const key_snapshot> current_;
  /// Unique across all slots of the process (0: nothing stored yet).
  std::atomic<uint64_t> stamp_{0};
};

struct federation_options {
  /// This node's instance id: the origin whose keys are "local".
  std::string local_origin;
  std::shared_ptr<key_snapshot_slot> slot;
  wall_clock clock = system_wall_clock();
  /// How long the keys of a departed peer (or of a replaced incarnation) stay
  /// published: keys.max_token_ttl + keys.leeway, so that every token they
  /// signed can still be verified.
  std::chrono::milliseconds departed_retention{0};
  /// How long a local key change waits for peers' acknowledgements.
  std::chrono::milliseconds peer_ack_timeout{2000};
  /// The admitted cluster members (null: no cluster; only this node's own
  /// actors may announce).
  std::shared_ptr<const admission> admitted;

  /// The retention and the ack wait of the keys.* and cluster.* settings
  /// (the caller adds the origin, the slot, the clock and the admission).
  static caf::expected<federation_options>
  from_settings(const config::settings& c);
};

class federation_state {
public:
  static inline const char* name = "federation";

  void configure(federation_options opts);

  const federation_options& options() const {
    return opts_;
  }

  /// Takes the keys of one origin of RANK; returns false for a stale
  /// announcement. A new incarnation of an origin replaces the old one,
  /// whose keys are retained as if it had departed.
  bool apply(key_announcement ann, origin_rank rank, time_point now);

  /// The rank of a key kept for ORIGIN once it is gone.
  origin_rank retained_rank(const std::string& origin) const {
    return origin == opts_.local_origin ? origin_rank::local
                                        : origin_rank::member;
  }

  /// The origin went away at AT: its keys stay until the tokens they could
  /// have signed have expired, then leave the set.
  void depart(const std::string& origin, time_point at);

  /// The local origin's current announcement (empty before the first).
  const key_announcement* local_announcement() const;

  /// The retained keys of departed origins, one departed announcement per
  /// origin and incarnation, for a peer that joins.
  std::vector<key_announcement> departed_announcements() const;

  /// Cluster peers' federations, by instance id (from membership, once
  /// their handshake completed).
  std::map<std::string, federation_actor> peers;

  /// Nodes refused as senders (each logged once).
  std::set<std::string> refused_nodes;

  /// The rank of ANN from MEMBER (nullopt: this node's own actors) or
  /// nullopt when it is refused; drops keys outside the namespace of the
  /// announcing origin.
  std::optional<origin_rank>
  admit(key_announcement& ann, const std::optional<std::string>& member) const;

  /// Builds and publishes a snapshot of every key still published at NOW.
  std::shared_ptr<const key_snapshot> publish(time_point now);

  time_point now() const {
    return opts_.clock();
  }

  const std::shared_ptr<key_snapshot_slot>& slot() const {
    return opts_.slot;
  }

  /// Id of the one pending timer; ticks with another id are ignored.
  uint64_t timer_id = 0;

private:
  struct parsed_key {
    /// Empty: the JWK is not a usable key (reported once).
    std::optional<jose::key> key;
    /// Seen by the publish under way (the others are dropped after it).
    bool used = false;
  };

  /// The parsed key for INFO, reusing the previous parse when unchanged.
  const jose::key* parse(const public_key_info& info);

  /// Moves ANN's keys to retained_, unpublished by AT + retention at most.
  void retain(const key_announcement& ann, time_point at);

  /// Whether KID lies in the namespace of this node or of a member known
  /// now (live or retained).
  bool in_cluster_namespace(const std::string& kid) const;

  /// Logs and counts, once per origin and kid, a static peer's key that
  /// was refused.
  void refuse_static(const std::string& origin, const std::string& kid,
                     const char* why);

  federation_options opts_;
  struct ranked_announcement {
    key_announcement ann;
    origin_rank rank = origin_rank::member;
  };
  std::map<std::string, ranked_announcement> origins_;
  /// Static peers' refused kids (origin, kid), each logged once.
  std::set<std::pair<std::string, std::string>> refused_;
  struct retained_key {
    std::string origin;
    uint64_t incarnation = 0;
    public_key_info info;
  };

  /// Adds INFO unless its kid is retained already; returns whether it was.
  bool keep(const std::string& origin, uint64_t incarnation,
            public_key_info info);

  /// Keys of departed origins and replaced incarnations, until they expire.
  std::vector<retained_key> retained_;
  std::map<std::string, parsed_key> parsed_;
};

using federation_pointer = federation_actor::stateful_pointer<federation_state>;

federation_actor::behavior_type federation(federation_pointer self,
                                           federation_options opts);

federation_actor spawn_federation(caf::actor_system& sys,
                                  federation_options opts);

/// A federation for a single node (no retention needed for peers).
federation_actor spawn_federation(caf::actor_system& sys,
                                  std::string local_origin,
                                  std::shared_ptr<key_snapshot_slot> slot,
                                  wall_clock clock = system_wall_clock());

} // namespace keymesh
