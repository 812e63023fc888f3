// The membership actor: this node's view of the cluster. It dials seeds and
// gossiped peers (exactly one link per node pair), runs the handshake that
// binds a certificate to an instance id and refuses peers whose settings
// differ, sends heartbeats, marks silent peers suspect and then down, and
// reconnects with back-off and jitter. Peers that come up and go down are
// reported to the federation, which shares keys with them.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <caf/fwd.hpp>
#include <caf/io/middleman_actor.hpp>

#include "actors/admission.hpp"
#include "actors/cluster_transport.hpp"
#include "actors/interfaces.hpp"
#include "actors/node_status.hpp"
#include "cluster/certs.hpp"
#include "common/clock.hpp"
#include "config/settings.hpp"

namespace keymesh {

/// Bumped whenever the cluster protocol changes incompatibly.
inline constexpr uint32_t cluster_protocol_version = 4;

/// "key=value" for every setting that must agree across the cluster.
std::vector<std::string> shared_settings(const config::settings& cfg);

/// SHA-256 (hex) over SETTINGS.
std::string settings_fingerprint(const std::vector<std::string>& settings);

/// Names the settings in which A and B differ ("keys.algorithm: ES256 here,
/// EdDSA there"); empty when they agree.
std::string settings_difference(const std::vector<std::string>& here,
                                const std::vector<std::string>& there);

/// The node's TLS identity, replaceable at run time (SIGHUP) while the
/// membership actor reads it for every handshake.
class identity_slot {
public:
  explicit identity_slot(std::optional<cluster::tls_identity> id = {})
    : id_(std::move(id)) {
  }

  std::optional<cluster::tls_identity> get() const {
    std::lock_guard<std::mutex> guard{mutex_};
    return id_;
  }

  void set(std::optional<cluster::tls_identity> id) {
    std::lock_guard<std::mutex> guard{mutex_};
    id_ = std::move(id);
  }

private:
  mutable std::mutex mutex_;
  std::optional<cluster::tls_identity> id_;
};

struct membership_options {
  std::string instance_id;
  std::string cluster_name;
  /// The address peers reach this node at (cluster.listen).
  std::string address;
  std::vector<std::string> seeds;
  std::chrono::milliseconds heartbeat{1000};
  std::chrono::milliseconds failure_timeout{4000};
  std::vector<std::string> settings;
  /// This node's certificate and key; null or empty when the cluster is
  /// plaintext.
  std::shared_ptr<identity_slot> identity;
  uint64_t incarnation = 0;
  /// The middleman (plain or TLS) that opens links.
  connector_actor connector;
  federation_actor federation;
  /// Told when peers link and go down (may be null), and this node's shards
  /// for the handshake.
  router_actor router;
  std::vector<shard_actor> shards;
  /// Told when peers' buses link and go down (may be null).
  bus_actor bus;
  /// Where admitted peers are recorded the moment their proof verifies
  /// (null: nowhere, as in tests of the handshake alone).
  std::shared_ptr<admission> admitted;
  /// Where the members' states are published for /metrics (may be null).
  std::shared_ptr<member_board> board;
  /// Called once, when every seed has been tried at least once.
  std::function<void()> on_seeds_tried;
  /// Seeds also come from discovery: wait for its first answer before
  /// calling on_seeds_tried.
  bool await_discovery = false;
  /// Monotonic time for heartbeats, failure detection and redials.
  monotonic_clock monotonic = system_monotonic_clock();
  /// Seed of the back-off jitter and the gossip choices (0: random).
  uint32_t random_seed = 0;
  /// Wall-clock time for the "since" of member states and the clock
  /// offsets measured by heartbeats.
  wall_clock wall = system_wall_clock();
  /// A peer whose clock is further ahead or behind than this is logged as
  /// a warning (0: never; the node uses half of keys.leeway).
  std::chrono::milliseconds clock_warning{0};
};

class membership_state {
public:
  static inline const char* name = "membership";

  enum class state { up, suspect, down };

  struct member {
    std::string id;
    std::string address;
    state st = state::down;
    time_point since;
    std::chrono::microseconds rtt{0};
    uint32_t protocol = 0;
    uint64_t incarnation = 0;
    membership_actor handle;
    /// The node the member was admitted as.
    caf::node_id node;
    std::chrono::steady_clock::time_point last_heard;
    /// How far the member's wall clock is ahead of this node's (negative:
    /// behind), from the last heartbeat answer, and whether it is being
    /// warned about.
    std::chrono::milliseconds clock_offset{0};
    bool clock_warned = false;
  };

  /// What this node knows about an address it may dial.
  struct address_entry {
    /// The node there, once a handshake told us.
    std::string id;
    bool is_seed = false;
    bool is_self = false;
    bool dialing = false;
    bool tried = false;
    unsigned failures = 0;
    std::chrono::steady_clock::time_point next_attempt;
    /// Since when no link to this address is up.
    std::chrono::steady_clock::time_point unlinked_since;
  };

  /// A handshake this node answered and whose proof it awaits.
  struct pending_handshake {
    node_hello hello;
    std::string nonce;
    std::chrono::steady_clock::time_point started;
  };

  void configure(membership_options opts);

  const membership_options& options() const {
    return opts_;
  }

  /// Why a peer's hello is refused, or nullopt to accept it.
  std::optional<std::string> check_hello(const node_hello& peer) const;

  /// This node's hello, with NONCE as the challenge and PROOF over the
  /// peer's challenge (empty when dialling).
  node_hello make_hello(std::string nonce, std::string proof) const;

  /// This node's actors for a peer whose proof verified.
  node_services services() const;

  /// The bytes signed to prove ownership of a certificate: the challenge and
  /// both ids, so a proof cannot be replayed for another pair.
  static std::string proof_input(const std::string& nonce,
                                 const std::string& signer,
                                 const std::string& verifier);

  std::string sign(const std::string& nonce, const std::string& verifier) const;

  bool verify(const node_hello& peer, const std::string& proof,
              const std::string& my_nonce) const;

  /// Whether this node should dial ADDRESS now: links are opened by the
  /// node with the smaller address; the other side dials only after waiting
  /// in vain for a while, so two nodes rarely dial each other at once.
  bool should_dial(const std::string& address,
                   std::chrono::steady_clock::time_point now) const;

  /// Records an address (seed or gossip).
  void learn(const std::string& address, bool is_seed,
             std::chrono::steady_clock::time_point now);

  /// The status for GET /api/cluster.
  cluster_status status() const;

  /// Writes the members' states to options().board, if any.
  void publish() const;

  /// Monotonic time now (membership_options::monotonic).
  monotonic_time now() const {
    return opts_.monotonic();
  }

  /// The failure detector, once per heartbeat at NOW: a member silent for
  /// more than two heartbeats becomes suspect; the ids of those silent for
  /// longer than failure_timeout less one heartbeat are returned, for the
  /// caller to declare down (silence is judged once per heartbeat, so the
  /// verdict never comes later than failure_timeout).
  std::vector<std::string> judge(monotonic_time now);

  /// Member ID answered, at NOW, a ping sent at SENT: heard, its round
  /// trip measured, a suspect member up again. False when ID is not a
  /// member that is up or suspect.
  bool heard(const std::string& id, monotonic_time sent, monotonic_time now);

  /// Member ID's wall clock read PEER_MS (Unix ms) while this node's read
  /// between SENT and RECEIVED: its offset is PEER_MS less the midpoint.
  /// Returns a message to log when the offset crosses
  /// options().clock_warning (warning) or comes back under half of it.
  std::optional<std::pair<bool, std::string>>
  clock_sample(const std::string& id, time_point sent, time_point received,
               int64_t peer_ms);

  std::string random_nonce();

  std::map<std::string, member> members;
  std::map<std::string, address_entry> addresses;
  std::map<std::string, pending_handshake> pending;
  uint64_t timer_id = 0;
  uint64_t ping_seq = 0;
  bool seeds_reported = false;
  bool discovery_answered = false;
  std::minstd_rand rng{std::random_device{}()};

private:
  std::optional<cluster::tls_identity> identity() const {
    return opts_.identity ? opts_.identity->get() : std::nullopt;
  }

  membership_options opts_;
};

using membership_pointer = membership_actor::stateful_pointer<membership_state>;

membership_actor::behavior_type membership(membership_pointer self,
                                           membership_options opts);

membership_actor spawn_membership(caf::actor_system& sys,
                                  membership_options opts);

} // namespace keymesh
