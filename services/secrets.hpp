// The secrets service (secrets_actor in actors/interfaces.hpp): the
// cluster's secret rings (state/secret_ring.hpp) — the DPoP nonce keys and
// the cookie keys — kept alike on every node. The replicated `secrets`
// keyspace holds each ring (one record per purpose, changed only by
// decisions, so of two nodes rotating at once one wins); the database
// keeps it sealed, so that it survives a restart of every node; the bus
// tells every node at once when a ring changed, and every node re-reads
// the rings every secrets.refresh_interval anyway. Whichever node finds a
// ring due rotates it.
//
// What the service adopts goes to a secret_board that any thread reads
// without a message: DPoP nonces are issued and checked, cookies sealed
// and opened in-process (dpop_nonces, cookie_sealer).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include <caf/expected.hpp>
#include <caf/fwd.hpp>

#include "actors/interfaces.hpp"
#include "actors/node_status.hpp"
#include "actors/router.hpp"
#include "actors/store_pool.hpp"
#include "common/clock.hpp"
#include "config/settings.hpp"
#include "state/secret_ring.hpp"

namespace keymesh {

/// The purposes of the rings.
inline constexpr const char* dpop_purpose = "dpop";
inline constexpr const char* cookies_purpose = "cookies";

/// The rings this node uses, by purpose: set by the secrets service, read
/// by any thread.
class secret_board {
public:
  /// The ring of PURPOSE (null until the service adopted one).
  std::shared_ptr<const state::secret_ring>
  get(std::string_view purpose) const;

  /// Takes RING whatever the board held (the state's ring is the one of
  /// record).
  void replace(std::shared_ptr<const state::secret_ring> ring);

private:
  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<const state::secret_ring>, std::less<>>
    rings_;
};

/// DPoP server nonces, issued and checked in-process on any thread.
class dpop_nonces {
public:
  dpop_nonces(std::shared_ptr<const secret_board> board, wall_clock clock,
              std::chrono::milliseconds window);

  /// A nonce for now; empty while the node has no ring yet.
  std::string issue() const;

  /// Whether NONCE was issued by a node of this cluster in the current or
  /// the previous window.
  bool check(std::string_view nonce) const;

private:
  std::shared_ptr<const secret_board> board_;
  wall_clock clock_;
  int64_t window_ms_;
};

/// Cookie payloads sealed with the cluster's cookie ring, in-process.
class cookie_sealer {
public:
  cookie_sealer(std::shared_ptr<const secret_board> board, wall_clock clock);

  /// PLAINTEXT sealed for AAD; nothing while the node has no ring yet.
  std::optional<std::string> seal(std::string_view plaintext,
                                  std::string_view aad) const;

  /// The plaintext, or nothing (not sealed by this cluster for AAD, a key
  /// retired or not known here yet, changed).
  std::optional<std::string> open(std::string_view sealed,
                                  std::string_view aad) const;

  /// Whether this node knows the key SEALED names (when not, a newer ring
  /// may not have reached it yet: ask the service to re-read).
  bool knows_key_of(std::string_view sealed) const;

private:
  std::shared_ptr<const secret_board> board_;
  wall_clock clock_;
};

struct secrets_options {
  state::ring_policy dpop;
  state::ring_policy cookies;
  std::chrono::milliseconds refresh_interval{5000};
  /// The 32-byte key that seals rings in the database (empty: the rings
  /// are not written there).
  std::string encryption_key;

  /// The policies from the settings; the key is the caller's (node/).
  static caf::expected<secrets_options>
  from_settings(const config::settings& c);

  const state::ring_policy& policy(std::string_view purpose) const;
};

struct secrets_deps {
  keyspace_client state;
  std::shared_ptr<secret_board> board;
  bus_actor bus;
  /// Null: no database.
  std::shared_ptr<store_pool> store;
  /// Its secrets_ready flag is set once every ring is adopted (may be
  /// null).
  std::shared_ptr<node_status> status;
  wall_clock clock = system_wall_clock();
};

/// The bus topic ring changes are announced on (purpose and generation,
/// never a key).
inline constexpr const char* secrets_topic = "secrets";

/// Tries of one refresh lost to other writers before it gives up.
inline constexpr int max_ring_attempts = 4;

/// Timeout of the service's requests to the state and the database.
inline constexpr std::chrono::seconds secrets_request_timeout{10};

class secrets_state {
public:
  static inline const char* name = "secrets";

  using ring_ptr = std::shared_ptr<const state::secret_ring>;

  secrets_actor::pointer self = nullptr;
  secrets_options opts;
  secrets_deps deps;
  /// What the service tracks of one purpose's ring.
  struct track {
    /// The generation last written to the database.
    uint64_t persisted = 0;
    /// A read or write of the ring is under way (a new request waits).
    bool busy = false;
    /// A rotation asked for while it was busy: runs when it settles.
    bool pending_force = false;
    /// A bus event that came while it was busy: re-read when it settles.
    bool dirty = false;
    /// Answered with the generation adopted (or the error) when it settles.
    std::vector<caf::typed_response_promise<uint64_t>> waiting;
  };
  std::map<std::string, track> tracks;
  uint64_t timer = 0;

  /// Reads PURPOSE's ring from the state and adopts it, creates it (from
  /// the database's copy, or new) when there is none, and rotates it when
  /// due (FORCE: now). Promises waiting on the purpose get the generation
  /// adopted, or the error. ATTEMPT counts the tries lost to concurrent
  /// writers (at most max_ring_attempts).
  void refresh(const std::string& purpose, bool force = false,
               int attempt = 0);

  /// Writes RING for PURPOSE at condition C (EXPECTED for version_is) as a
  /// decision; adopts it when written, re-reads when another write won.
  void write(const std::string& purpose, ring_ptr ring, write_condition c,
             state::version expected, bool force, int attempt);

  /// Takes RING (the state's, read or written) for the board; seals it
  /// into the database when it is newer than what was written there;
  /// announces it on the bus when ANNOUNCE.
  void adopt(const std::string& purpose, ring_ptr ring, bool announce);

  /// The database's copy of PURPOSE (unsealed), then DONE with it (null:
  /// none, or one this node cannot open: then the generation to start a
  /// new ring at). A failed read fails the refresh.
  void load(const std::string& purpose,
            std::function<void(ring_ptr, uint64_t)> done);

  void settle(const std::string& purpose, caf::error err = {});

  int64_t now_ms() const;
};

using secrets_pointer = secrets_actor::stateful_pointer<secrets_state>;

secrets_actor::behavior_type secrets_service(secrets_pointer self,
                                             secrets_options opts,
                                             secrets_deps deps);

secrets_actor spawn_secrets(caf::actor_system& sys,
                            const secrets_options& opts,
                            const secrets_deps& deps);

} // namespace keymesh
