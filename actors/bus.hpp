// The bus actor: one per node, meshed with every peer's bus (CAF_NOTES.md:
// remote groups route through one node and lack TLS, so keymesh does not use
// them). It numbers this node's events, fans them out to peers with
// acknowledgements, drops duplicates, catches up after reconnects from the
// origin's retained events, applies revocations to the local deny set, and
// hands events to local subscribers (embedding actors).
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string_view>
#include <utility>
#include <set>
#include <string>
#include <vector>

#include <caf/expected.hpp>
#include <caf/fwd.hpp>
#include <caf/response_promise.hpp>

#include "actors/admission.hpp"
#include "actors/interfaces.hpp"
#include "common/clock.hpp"
#include "config/settings.hpp"
#include "persistence/store.hpp"
#include "state/deny_set.hpp"

namespace keymesh {

struct bus_options {
  std::string instance_id;
  uint64_t incarnation = 0;
  wall_clock clock = system_wall_clock();
  std::chrono::milliseconds peer_timeout{2000};
  /// This node's own events kept for peers that reconnect.
  size_t retention = 10000;
  /// Events of every origin kept for event-stream resumes (Last-Event-ID):
  /// at most this many, and none older than log_age.
  size_t log_events = 50000;
  std::chrono::milliseconds log_age{std::chrono::minutes{5}};
  /// Unacknowledged batches per peer, and events per batch.
  size_t max_in_flight = 2;
  size_t max_batch = 512;
  /// Events waiting for one peer beyond this are refused for it (it is
  /// reported unreached and catches up from the origin after a reconnect).
  size_t max_queued = 100000;
  /// Membership changes are published on "members" (off in unit tests that
  /// count events).
  bool publish_members = true;
  /// The cluster members whose buses may deliver here (null: none).
  std::shared_ptr<const admission> admitted;
  /// Revocation events are applied here (may be null).
  std::shared_ptr<state::deny_set> deny;
  /// Called (on the bus actor: it must not block) with each revocation that
  /// came from another node, after it was applied to the deny set.
  std::function<void(const persistence::revocation_entry&)> on_revocation;

  /// The timing of the state.* settings (the caller adds the identity,
  /// the clock, the deny set and the hooks).
  static caf::expected<bus_options> from_settings(const config::settings& c);
};

class bus_state {
public:
  static inline const char* name = "bus";

  void configure(bus_options opts);

  const bus_options& options() const {
    return opts_;
  }

  /// Numbers a new event of this node.
  bus_event make_event(std::string topic, std::string payload);

  /// Whether E is new here; records it as seen.
  bool first_sight(const bus_event& e);

  /// Applies E here: revocations to the deny set, then local subscribers.
  /// Returns the subscribers to send it to.
  std::vector<caf::actor> apply(const bus_event& e);

  /// Own events after SERIAL of INCARNATION.
  bus_event_list own_after(uint64_t incarnation, uint64_t serial) const;

  /// Logged events of TOPICS ("*": all) after the one with id AFTER; the
  /// flag says whether AFTER was found (when it was not, every retained
  /// event of those topics). An empty AFTER yields nothing, found.
  std::pair<bus_event_list, bool>
  history(const std::string& after, const std::vector<std::string>& topics);

  /// Drops logged events beyond the count and age bounds.
  void trim_log();

  /// One delivery pipeline per linked peer: events wait here while
  /// max_in_flight batches are unacknowledged, then go out together, so a
  /// busy node sends a few large messages instead of many small ones.
  struct peer_link {
    bus_actor handle;
    /// Tells links of the same peer apart across a leave and a rejoin.
    uint64_t generation = 0;
    size_t in_flight = 0;
    /// Each event with the callback that learns whether the peer acked it.
    std::deque<std::pair<bus_event, std::function<void(bool)>>> queue;
  };
  std::map<std::string, peer_link> peers;
  uint64_t generations = 0;
  /// topic → subscribers.
  std::map<std::string, std::set<caf::actor>> subscribers;

  /// What arrived from one origin: every serial up to `contiguous`, and
  /// the ones past a gap (a delivery lost while a link was down or timed
  /// out). A catch-up asks the origin for everything after `contiguous`,
  /// so a gap is filled even when newer events came first.
  struct seen_origin {
    uint64_t incarnation = 0;
    uint64_t contiguous = 0;
    std::set<uint64_t> ahead;
    /// A catch-up from this origin is on its way.
    bool catching_up = false;
  };
  std::map<std::string, seen_origin> seen;

  /// Reads of peers' deny sets on their way, and who waits for them all
  /// to end ((get, revoke): a node reports ready only then).
  size_t deny_reads = 0;
  std::vector<caf::response_promise> deny_waiters;

  /// Serials kept past a gap per origin; beyond, the gap is given up (the
  /// origin's retention has let it go long before).
  static constexpr size_t max_ahead = 100000;

private:
  bus_options opts_;
  uint64_t serial_ = 0;
  std::deque<bus_event> own_;
  struct logged {
    bus_event event;
    int64_t received_ms;
  };
  std::deque<logged> log_;
};

using bus_pointer = bus_actor::stateful_pointer<bus_state>;

bus_actor::behavior_type bus(bus_pointer self, bus_options opts);

bus_actor spawn_bus(caf::actor_system& sys, bus_options opts);

/// The payload of a "keys" event: this node's key set after a change.
std::string keys_payload(const key_announcement& a);

/// Splits an event id "<origin>.<incarnation>.<serial>" (origins may contain
/// dots); nullopt when malformed.
struct event_id {
  std::string origin;
  uint64_t incarnation = 0;
  uint64_t serial = 0;
};
std::optional<event_id> parse_event_id(std::string_view id);

/// The revocation a "revocations" payload carries (origin left empty);
/// nullopt when it is malformed.
std::optional<persistence::revocation_entry>
parse_revocation(const std::string& payload);

/// The payload of a revocation event.
std::string revocation_payload(state::deny_kind kind, const std::string& value,
                               int64_t revoked_at_ms, int64_t until_ms,
                               const std::string& reason);

} // namespace keymesh
