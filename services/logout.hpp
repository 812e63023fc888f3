// The logout service (logout_actor in actors/interfaces.hpp): OpenID
// Connect Back-Channel Logout 1.0. When a session ends, the sessions
// service hands it the session's participating clients; it writes one
// delivery per registered client into the durable outbox before the end is
// acknowledged, then sends each client a logout token (signed by this
// node's keystore, a fresh jti per attempt) until the client answers 200 or
// 204, answers with a final refusal, or the delivery gives up. A node owns
// the deliveries it is sending for a lease it renews; one whose owner
// stopped is taken over by whichever node polls the outbox first.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <caf/expected.hpp>
#include <caf/fwd.hpp>
#include <nlohmann/json_fwd.hpp>

#include "actors/interfaces.hpp"
#include "actors/node_status.hpp"
#include "actors/store_pool.hpp"
#include "common/clock.hpp"
#include "config/settings.hpp"

namespace keymesh {

/// What the service takes from the settings.
struct logout_options {
  config::settings::logout_section limits;
  /// sessions.posture, carried by each delivery and its audit events.
  std::string posture = "volatile";
  /// A logout token's lifetime (OpenID Connect BCL suggests two minutes).
  std::chrono::seconds token_ttl{120};

  static caf::expected<logout_options>
  from_settings(const config::settings& c);
};

/// What the service talks to. KEYSTORE signs the tokens; STORE (may be
/// null: then no client is registered and nothing is sent) holds the
/// registrations and the outbox; BUS (may be null) carries the audit
/// events; STATUS gives the instance id (the owner of deliveries) and the
/// counters.
struct logout_deps {
  keystore_actor keystore;
  std::shared_ptr<store_pool> store;
  bus_actor bus;
  std::shared_ptr<node_status> status;
  wall_clock clock = system_wall_clock();
};

/// How an attempt ended, as the service judges it.
enum class delivery_verdict {
  delivered, // 200 or 204
  retry,     // no answer, 408, 429, 5xx
  final,     // any other answer, a refused address: never sent again
};

/// Judges what one POST got (see delivery_verdict); WHY says what happened.
delivery_verdict judge_delivery(const post_result& r, std::string& why);

/// The delay before retry number ATTEMPTS (1 for the first retry):
/// retry_initial doubled per attempt, capped at retry_max, times JITTER
/// (0.5 to 1.5).
std::chrono::milliseconds retry_delay(const logout_options& opts,
                                      int64_t attempts, double jitter);

/// The form body that carries TOKEN (logout_token=..., form-encoded).
std::string logout_form(const std::string& token);

class logout_state {
public:
  static inline const char* name = "logout";

  logout_actor::pointer self = nullptr;
  logout_options opts;
  logout_deps deps;

  void start();
  void enqueue(session_endings endings,
               caf::typed_response_promise<logout_receipt> rp);
  void poll(uint64_t id);
  void attempt(const std::string& id);

private:
  struct delivery {
    persistence::outbox_row row;
    /// In the outbox (else in memory only: no database, or it failed).
    bool durable = false;
  };

  /// Records ROWS (durably if it can) and starts them; THEN(error).
  void queue(std::vector<persistence::outbox_row> rows,
             std::function<void(std::string)> then);
  void add(persistence::outbox_row row, bool durable);
  /// Drops delivery ID from memory (done, or owned by another node now).
  void forget(const std::string& id);
  void count_pending() const;
  void schedule(const std::string& id, int64_t at_ms);
  void dispatch();
  void send(const std::string& id, size_t poster);
  void settle(const std::string& id, const post_result& r);
  void retry(const std::string& id, std::string why);
  void finish(const std::string& id, bool delivered, std::string why,
              int status);
  /// Keeps the outbox row of D as D says, if this node still owns it;
  /// THEN(still owned) (true without a database, or when it is down).
  void save(const delivery& d, std::function<void(bool)> then);
  void audit(nlohmann::json event, const std::string& posture) const;
  logout_stats* stats() const;
  int64_t now_ms() const;
  std::string owner() const;

  std::map<std::string, delivery> pending_;
  /// Due deliveries waiting for a free poster.
  std::deque<std::string> ready_;
  std::vector<poster_actor> posters_;
  std::vector<bool> busy_;
  uint64_t poll_id_ = 0;
  std::mt19937_64 rng_{std::random_device{}()};
};

using logout_pointer = logout_actor::stateful_pointer<logout_state>;

logout_actor::behavior_type logout_service(logout_pointer self,
                                           logout_options opts,
                                           logout_deps deps);

logout_actor spawn_logout(caf::actor_system& sys, const logout_options& opts,
                          const logout_deps& deps);

} // namespace keymesh
