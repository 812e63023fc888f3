// The sessions service (sessions_actor in actors/interfaces.hpp): sessions
// and revocations as an actor, so the HTTP front, the login flow and an
// embedding application all create, read, touch, list and revoke sessions
// the same way. The work is in sessions_state's methods; the behaviour's
// handlers are one call each.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/expected.hpp>
#include <caf/fwd.hpp>
#include <nlohmann/json_fwd.hpp>

#include "actors/interfaces.hpp"
#include "actors/node_status.hpp"
#include "actors/router.hpp"
#include "actors/store_pool.hpp"
#include "common/clock.hpp"
#include "config/settings.hpp"
#include "state/deny_set.hpp"
#include "state/session.hpp"

namespace keymesh {

/// What the service takes from the settings.
struct sessions_options {
  config::settings::sessions_section limits;
  /// How long a token issued now may still verify (keys.max_token_ttl +
  /// keys.leeway): how long a revocation by sid or jti is kept.
  std::chrono::milliseconds token_window{0};
  /// How long a revocation's broadcast waits for peers (twice
  /// state.peer_timeout).
  std::chrono::milliseconds broadcast_timeout{0};

  /// From the settings; an error names a setting the service cannot use.
  static caf::expected<sessions_options>
  from_settings(const config::settings& c);
};

/// What the service talks to. STATE is required; the rest may be null (no
/// deny set, no bus, no database: then nothing is denied locally, nothing
/// is broadcast, revocations are not logged and sessions are volatile).
struct sessions_deps {
  keyspace_client state;
  std::shared_ptr<state::deny_set> deny;
  bus_actor bus;
  std::shared_ptr<store_pool> store;
  std::shared_ptr<node_status> status;
  wall_clock clock = system_wall_clock();
  /// Back-channel logout (null: no relying party is told).
  logout_actor logout;
};

class sessions_state {
public:
  static inline const char* name = "sessions";

  using found_fn
    = std::function<void(std::optional<state::session>, bool, state::version)>;
  using fail_fn = std::function<void(caf::error)>;

  sessions_actor::pointer self = nullptr;
  sessions_options opts;
  sessions_deps deps;

  // -- the operations of the interface ---------------------------------------

  void create(session_spec spec,
              caf::typed_response_promise<state::session> rp);
  void get(std::string sid, caf::typed_response_promise<session_found> rp);
  void update(std::string sid, session_patch patch,
              caf::typed_response_promise<state::session> rp);
  void touch(session_found found,
             caf::typed_response_promise<touch_result> rp);
  void list(std::string sub,
            caf::typed_response_promise<std::vector<state::session>> rp);
  void revoke(revocation_order order,
              caf::typed_response_promise<revocation_outcome> rp);
  void remove_client(std::string sid, std::string client,
                     caf::typed_response_promise<state::session> rp);

  // -- the steps they are made of ---------------------------------------------

  /// A session from SPEC (a new sid, the times from now), or why SPEC is
  /// refused.
  caf::expected<state::session> make_session(const session_spec& spec) const;

  /// Reads a session; THEN gets nullopt for an absent or revoked one (and
  /// whether it was revoked), or the session and its record version.
  /// RECOVER: look in the database (durable posture) when memory has no
  /// record.
  void read(std::string sid, found_fn then, fail_fn fail,
            bool recover = true);

  /// Reads a session memory lost back from the database into memory.
  void recover(std::string sid, found_fn then, fail_fn fail);

  /// Writes session S and its subject index entry at once; THEN(error)
  /// once both (and, durable, the database) answered. CHOSEN: the caller
  /// named the sid; the session is created first, once (ec::conflict when
  /// it exists), and only then indexed.
  void write_new(const state::session& s, bool chosen, fail_fn then);

  /// Writes session S back if its record is still at version VER (and to
  /// the database in the durable posture); DONE(error, new version).
  void write_back(const state::session& s, state::version ver,
                  std::function<void(caf::error, state::version)> done);

  /// S (read at VER) with last_seen = now; THEN(live, end in Unix ms).
  void touch_read(state::session s, state::version ver,
                  std::function<void(bool, int64_t)> then);

  /// Tombstones session SID and its refresh family, publishes the event.
  void end_record(std::string sid, std::string reason, fail_fn done);

  /// What an ending session SID has for the logout service: its subject
  /// and participating clients as stored (the deny set is not asked: the
  /// revocation that ends it is there already); nullopt when it had ended
  /// before.
  void ending_of(std::string sid,
                 std::function<void(std::optional<state::session>)> then);

  /// Ends sessions SIDS: their relying parties' logouts are queued first
  /// (in the outbox, one batch), then end_record for each. DONE(error, how
  /// many were live, why their logouts are not durable or empty).
  void end_sessions(std::vector<std::string> sids, std::string reason,
                    std::function<void(caf::error, size_t, std::string)> done);

  /// The sids in SUB's index (and, durable, the database's).
  void subject_sids(std::string sub,
                    std::function<void(std::vector<std::string>)> then,
                    fail_fn fail);

  /// sessions.posture is durable and there is a database.
  bool durable() const;

  /// Logs EVENT and publishes it on the bus topic "audit", with the
  /// posture, the time and this node added.
  void audit(nlohmann::json event) const;

private:
  void write_through(const state::session& s, std::string value,
                     state::version ver, fail_fn done);
  void publish_session_event(const nlohmann::json& payload) const;
  using edit_fn = std::function<caf::error(state::session&)>;
  /// Reads session SID, applies EDIT (an error refuses the change) and
  /// writes it back if nobody wrote meanwhile, retrying lost races a few
  /// times; answers the session as written.
  void change(std::string sid, edit_fn edit, int attempt,
              caf::typed_response_promise<state::session> rp);
  int64_t now_ms() const;
};

using sessions_pointer = sessions_actor::stateful_pointer<sessions_state>;

sessions_actor::behavior_type sessions_service(sessions_pointer self,
                                               sessions_options opts,
                                               sessions_deps deps);

/// COUNT equivalent instances (at least one), for callers to share out.
std::vector<sessions_actor> spawn_sessions(caf::actor_system& sys,
                                           const sessions_options& opts,
                                           const sessions_deps& deps,
                                           size_t count);

} // namespace keymesh
