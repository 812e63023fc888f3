// The federation actor: merges the public keys of every origin (this node's
// keystore now; cluster peers and HTTP peers later) into one key set and
// publishes it as an immutable snapshot. Readers on any thread (the HTTP
// front's JWKS and verify paths) load the snapshot without a message.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <caf/fwd.hpp>

#include "actors/interfaces.hpp"
#include "common/clock.hpp"
#include "jose/key.hpp"
#include "jose/key_set.hpp"

namespace keymesh {

/// One immutable view of the merged key set, pre-serialised for HTTP.
struct key_snapshot {
  /// Every published key, for verification.
  jose::key_set keys;
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
  uint64_t version = 0;
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

class federation_state {
public:
  static inline const char* name = "federation";

  void configure(std::string local_origin,
                 std::shared_ptr<key_snapshot_slot> slot, wall_clock clock);

  /// Takes the keys of one origin; returns false for a stale announcement.
  bool apply(key_announcement ann);

  /// Builds and publishes a snapshot of every key still published at NOW.
  std::shared_ptr<const key_snapshot> publish(time_point now);

  time_point now() const {
    return clock_();
  }

  const std::shared_ptr<key_snapshot_slot>& slot() const {
    return slot_;
  }

  /// Id of the one pending timer; ticks with another id are ignored.
  uint64_t timer_id = 0;

private:
  struct parsed_key {
    std::string jwk;
    jose::key key;
  };

  /// The parsed key for INFO, reusing the previous parse when unchanged.
  const jose::key* parse(const public_key_info& info);

  std::string local_origin_;
  std::shared_ptr<key_snapshot_slot> slot_;
  wall_clock clock_;
  std::map<std::string, key_announcement> origins_;
  std::map<std::string, parsed_key> parsed_;
  uint64_t version_ = 0;
};

using federation_pointer = federation_actor::stateful_pointer<federation_state>;

federation_actor::behavior_type
federation(federation_pointer self, std::string local_origin,
           std::shared_ptr<key_snapshot_slot> slot, wall_clock clock);

federation_actor spawn_federation(caf::actor_system& sys,
                                  std::string local_origin,
                                  std::shared_ptr<key_snapshot_slot> slot,
                                  wall_clock clock = system_wall_clock());

} // namespace keymesh
