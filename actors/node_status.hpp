// The node's status board: what /healthz/ready and /metrics report about
// the node as a whole. The composition root (node/) creates it and flips its
// flags as the node starts and stops; the actors that watch a part of the
// node write their part (membership: cluster_ready; router: state_synced;
// the secrets service: secrets_ready; the store pool: store; the cluster
// transport: transport); the HTTP front only reads it.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "actors/cluster_transport.hpp"
#include "actors/store_pool.hpp"
#include "common/clock.hpp"

namespace keymesh {

/// Back-channel logout counters (the logout and sessions services write
/// them).
struct logout_stats {
  /// Deliveries that ended: the client answered 200 or 204; failed (a
  /// final answer, a refused address, or given up); clients that took part
  /// without a registered URI.
  std::atomic<uint64_t> delivered{0};
  std::atomic<uint64_t> failed{0};
  std::atomic<uint64_t> skipped{0};
  /// Subject revocations that found no session to log out.
  std::atomic<uint64_t> no_sessions{0};
  /// POSTs made, and deliveries taken over from a node that stopped.
  std::atomic<uint64_t> attempts{0};
  std::atomic<uint64_t> taken_over{0};
  /// Deliveries this node holds now.
  std::atomic<int64_t> pending{0};
};

/// Revocations this node carried out (the sessions service writes them).
struct revocation_stats {
  /// The outcomes, in the order of the metric's label values.
  enum outcome : size_t { complete, partial, log_failed };
  static constexpr std::array<const char*, 3> outcome_names
    = {"complete", "partial", "log_failed"};
  /// Indexed by state::deny_kind, then by outcome.
  std::array<std::array<std::atomic<uint64_t>, 3>, 3> counts{};
};

/// The cluster members this node knows and their states ("up", "suspect",
/// "down"): the membership actor replaces the list of the members it has
/// linked to whenever a state changes; the members known from earlier runs
/// (node.data_dir/cluster-members, which the state's majorities count)
/// and not linked since are "down". /metrics reads it.
class member_board {
public:
  using entries = std::vector<std::pair<std::string, std::string>>;

  /// The members known before this run, by instance id.
  void set_known(std::vector<std::string> ids) {
    std::lock_guard<std::mutex> guard{mutex_};
    known_ = std::move(ids);
  }

  void publish(entries members) {
    std::lock_guard<std::mutex> guard{mutex_};
    members_ = std::move(members);
  }

  /// Every member with its state, in order of instance id.
  entries read() const {
    std::lock_guard<std::mutex> guard{mutex_};
    auto out = members_;
    for (auto& id : known_) {
      auto linked = std::any_of(out.begin(), out.end(),
                                [&](auto& m) { return m.first == id; });
      if (!linked)
        out.emplace_back(id, "down");
    }
    std::sort(out.begin(), out.end());
    return out;
  }

private:
  mutable std::mutex mutex_;
  std::vector<std::string> known_;
  entries members_;
};

struct node_status {
  std::string instance_id;
  time_point started_at = std::chrono::system_clock::now();
  std::atomic<bool> http_listening{false};
  std::atomic<bool> stopping{false};
  /// Cleared when an actor the node needs has terminated unexpectedly.
  std::atomic<bool> actors_alive{true};
  /// False until a clustered node has tried every seed once.
  std::atomic<bool> cluster_ready{true};
  /// False until the secrets service holds every secret ring.
  std::atomic<bool> secrets_ready{true};
  /// Whether every partition this node owns is served (null: no state).
  std::shared_ptr<std::atomic<bool>> state_synced;
  /// The database (null: none, as in tests without a store).
  std::shared_ptr<store_status> store;
  /// Back-channel logout counters.
  std::shared_ptr<logout_stats> logout = std::make_shared<logout_stats>();
  /// The cluster port's counters (null without clustering).
  std::shared_ptr<const transport_stats> transport;
  /// Revocations by kind and outcome.
  std::shared_ptr<revocation_stats> revocations
    = std::make_shared<revocation_stats>();
  /// The members and their states (null without clustering).
  std::shared_ptr<member_board> members;
};

} // namespace keymesh
