// The keystore actor: generates this node's signing keys in memory, rotates
// them on schedule, signs tokens, and announces its public keys to the
// federation actor whenever the published set changes.
//
// Schedule: the current key signs; the next key is already published and
// starts signing after keys.rotate_every; a retired key stays published until
// every token it signed has expired (retire + max_token_ttl + leeway).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <string>

#include <caf/expected.hpp>
#include <caf/fwd.hpp>

#include "actors/interfaces.hpp"
#include "common/clock.hpp"
#include "config/settings.hpp"
#include "jose/key.hpp"

namespace keymesh {

struct managed_key {
  std::string kid;
  jose::key key;
  time_point created_at;
  time_point sign_from;
  /// time_point::max() while no successor exists.
  time_point retire_at = time_point::max();
  time_point expire_at = time_point::max();
  /// The announcement serial that first carried this key.
  uint64_t first_serial = 0;
  /// Every live peer (or just the local federation) has confirmed it.
  bool acknowledged = false;
};

struct keystore_options {
  jose::algorithm algorithm = jose::algorithm::es256;
  std::chrono::seconds rotate_every{24 * 3600};
  std::chrono::seconds max_token_ttl{3600};
  std::chrono::seconds default_token_ttl{900};
  std::chrono::seconds leeway{30};
  std::string issuer;
  std::string audience;
  std::string instance_id;
  /// First key sequence number to use (key ids are "<instance_id>-<n>").
  uint64_t first_sequence = 0;
  /// Called with the next free sequence number after a key was generated, so
  /// that a restarted node never reuses a key id. May be empty.
  std::function<void(uint64_t)> persist_sequence;
  wall_clock clock = system_wall_clock();
  /// A single node keeps its keys (sealed with keys.encryption_key_file or
  /// node.data_dir/signing_keys.key): the keys
  /// read at start (still published ones only are used), and a function
  /// that stores every changed key set. A failed store is retried with
  /// back-off, like a failed key generation. Both may be empty.
  std::deque<managed_key> restored_keys;
  std::function<void(const std::deque<managed_key>&)> save_keys;
  /// Called with every changed key set as it is announced (the node
  /// publishes it on the bus topic "keys"). May be empty.
  std::function<void(const key_announcement&)> on_announce;
  /// How long a key that is due to sign waits for every live peer to
  /// acknowledge it before it signs anyway (with a warning). Retired keys
  /// stay published this much longer. 0: no waiting (a single node).
  std::chrono::milliseconds ack_wait{0};
  /// Run on a dedicated thread: key generation (RSA takes ~100 ms) and the
  /// key-sequence file write block, and must not stall CAF's scheduler.
  /// Deterministic tests turn it off to run under the test coordinator.
  bool own_thread = true;

  /// Reads the keys.* settings; fails on values the keystore cannot use.
  static caf::expected<keystore_options>
  from_settings(const config::settings& cfg, std::string instance_id);
};


/// The keystore's state; the actor's handlers are thin calls into it, so the
/// schedule logic is testable without an actor.
class keystore_state {
public:
  static inline const char* name = "keystore";

  void configure(keystore_options opts);

  const keystore_options& options() const {
    return opts_;
  }

  time_point now() const {
    return opts_.clock();
  }

  /// Applies the schedule at NOW: creates the first keys, promotes the next
  /// key, pre-publishes its successor and drops expired keys. Returns whether
  /// the published set changed.
  bool advance(time_point now);

  /// The key that signs at NOW, or nullptr before advance() ran: the newest
  /// key due to sign that peers have acknowledged, or that has waited
  /// ack_wait for them.
  const managed_key* signing_key(time_point now) const;

  /// Announcement SERIAL (and every earlier one) was acknowledged.
  void acknowledge(uint64_t serial);

  /// Emergency rotation at NOW: the pre-published next key signs from now on,
  /// the current key retires, and a new next key is published. Returns the
  /// new signing kid and the new next kid. Throws like advance().
  std::pair<std::string, std::string> rotate_now(time_point now);

  uint64_t serial() const {
    return serial_;
  }

  /// The key set changed and could not be stored yet.
  bool save_pending() const {
    return save_pending_;
  }

  /// Signs a token at NOW; throws jose::jose_error on failure.
  signed_token sign(const token_request& req, time_point now) const;

  /// The public keys as announced to the federation.
  key_announcement announcement() const;

  /// The next instant at which advance() has work to do.
  time_point next_event() const;

  const std::deque<managed_key>& keys() const {
    return keys_;
  }

  /// Id of the one pending timer; ticks with another id are ignored.
  uint64_t timer_id = 0;
  /// Failed attempts to apply the schedule in a row (0: healthy).
  unsigned failures = 0;
  /// The last announcement was not acknowledged; the next tick resends it.
  bool announce_pending = false;
  /// The kid last warned about signing without acknowledgement.
  std::string warned_unacknowledged;

private:
  managed_key make_key(time_point now, time_point sign_from);
  /// Stores the key set (save_keys); on failure logs and leaves it pending.
  void save();

  keystore_options opts_;
  std::deque<managed_key> keys_; // ordered by sign_from
  uint64_t next_sequence_ = 0;
  uint64_t serial_ = 0;
  /// The last key set was not stored yet (save_keys failed).
  bool save_pending_ = false;
  /// Random per process start: peers tell a restart from a stale message.
  uint64_t incarnation_ = 0;
};

/// The file a single node keeps its keys in, sealed with AES-256-GCM under
/// ENCRYPTION_KEY and bound to INSTANCE_ID. Written atomically (0600).
void save_signing_keys(const std::string& path,
                       const std::string& encryption_key,
                       const std::string& instance_id,
                       const std::deque<managed_key>& keys);

/// The keys in PATH (none when there is no file). Throws
/// persistence::storage_error when the file cannot be read, was sealed
/// with another key or for another instance, or was changed; the message
/// names KEY_SOURCE (where ENCRYPTION_KEY came from) and never holds key
/// material.
std::deque<managed_key> load_signing_keys(const std::string& path,
                                          const std::string& encryption_key,
                                          const std::string& instance_id,
                                          const std::string& key_source);

using keystore_pointer = keystore_actor::stateful_pointer<keystore_state>;

/// The actor. FEDERATION may be a null handle (the keystore then announces to
/// nobody).
keystore_actor::behavior_type keystore(keystore_pointer self,
                                       keystore_options opts,
                                       federation_actor federation);

/// Validates OPTS and spawns the keystore.
caf::expected<keystore_actor> spawn_keystore(caf::actor_system& sys,
                                             keystore_options opts,
                                             federation_actor federation);

} // namespace keymesh
