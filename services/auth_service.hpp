// The auth service (auth_actor in actors/interfaces.hpp): logins, refresh
// token rotation and logouts as an actor, so the HTTP front and an
// embedding application log users in the same way. The work is in
// auth_state's methods; the behaviour's handlers are one call each.
//
// A login checks the password on the hash pool (against a dummy hash for an
// unknown user, so that the answer and its time are the same), counts each
// attempt per username in the replicated keyspace "login_failures" before
// its password is checked (reserved by the partition's primary owner, so no
// burst on any number of nodes gets more than auth.max_failures checks per
// window), and creates a session, an access token with the claims of the
// user's groups and a refresh token. Refresh tokens belong to a family kept
// in the keyspace "refresh" (state/refresh.hpp); rotation is a conditional
// write that the partition's primary owner decides, so exactly one of two
// racing refreshes wins, and a token of an older generation is reuse: the
// family and its session are revoked. A refresh never outlives its session:
// it reads the session first (revoked, expired or idle: the family ends)
// and touches it.
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
#include "actors/router.hpp"
#include "actors/hash_pool.hpp"
#include "auth/password.hpp"
#include "common/clock.hpp"
#include "config/settings.hpp"
#include "state/deny_set.hpp"
#include "state/refresh.hpp"
#include "state/session.hpp"

namespace keymesh {

/// What the service takes from the settings.
struct auth_options {
  config::settings::auth_section limits;
  /// The cost of new password hashes (auth.scrypt_*).
  auth::scrypt_cost cost;
  /// The lifetime of an access token (keys.default_token_ttl), capped by
  /// its session's end.
  std::chrono::seconds token_ttl{0};

  /// From the settings; an error names a setting the service cannot use.
  static caf::expected<auth_options> from_settings(const config::settings& c);
};

/// What the service talks to. Without a DIRECTORY (or, for logins,
/// HASHING) there is no user directory: logins and refreshes fail with
/// ec::unavailable.
struct auth_deps {
  keyspace_client state;
  /// The sessions service this instance makes and ends sessions with.
  sessions_actor sessions;
  keystore_actor keystore;
  /// The users, their password hashes, groups and claims.
  directory_actor directory;
  /// Where passwords are checked (owned by the node).
  hash_pool* hashing = nullptr;
  /// A logout of a sid this node has logged as revoked costs nothing.
  std::shared_ptr<state::deny_set> deny;
  wall_clock clock = system_wall_clock();
};

/// The claims a user's groups grant, as token claims: a name with one value
/// carries it as a string, with several as an array; "groups" lists them.
nlohmann::json token_claims(const account& a);

class auth_state {
public:
  static inline const char* name = "auth";

  using grant_promise = caf::typed_response_promise<token_grant>;
  using outcome_promise = caf::typed_response_promise<revocation_outcome>;

  auth_actor::pointer self = nullptr;
  auth_options opts;
  auth_deps deps;

  // -- the operations of the interface ---------------------------------------

  void login(credentials who, grant_promise rp);
  void refresh(std::string text, grant_promise rp);
  void logout(logout_request req, outcome_promise rp);

  // -- the steps they are made of ---------------------------------------------

  /// The directory lookup and the password check of a counted login.
  void check_password(credentials who, grant_promise rp);

  /// Stores USER's password again at the current cost unless the stored
  /// hash changed meanwhile (in the background; a login never waits).
  void upgrade_hash(std::string user, std::string password,
                    std::string old_hash);

  /// A session, a refresh token family and the tokens for a checked user.
  void open_session(std::string user, nlohmann::json claims,
                    std::string client_id, grant_promise rp);

  /// Signs an access token for session SID (ending by SESSION_END, Unix
  /// ms, at the latest) and answers with it and REFRESH.
  void issue(std::string sid, std::string sub, nlohmann::json claims,
             int64_t session_end, std::string refresh, grant_promise rp);

  /// Reads the family of refresh token T and checks T's MAC; THEN(version,
  /// family), or FAIL with ec::invalid_grant.
  void load_family(const state::refresh_token& t,
                   std::function<void(state::version, state::refresh_family)>
                     then,
                   std::function<void(caf::error)> fail);

  /// Rotates family ID of F (at VER) whose session S (at SESSION_VER) is
  /// live, touches the session, then issues the next tokens.
  void rotate(std::string id, state::refresh_family f, state::version ver,
              state::session s, state::version session_ver,
              grant_promise rp);

  /// After a rotation: the user's current claims, then the tokens.
  void refresh_claims(std::string id, state::refresh_family next,
                      int64_t session_end, grant_promise rp);

  /// Ends the family ID (reuse, a lost race, a gone account) and revokes its
  /// session; answers ec::invalid_grant with WHY.
  void end_family(std::string id, state::refresh_family f, std::string why,
                  grant_promise rp);

  /// Tombstones the family ID of a session that ended on its own.
  void drop_family(const std::string& id, const state::refresh_family& f);

  /// Ends family ID and revokes its session for REASON; DONE gets the
  /// revocation's answer.
  void close_family(const std::string& id, const state::refresh_family& f,
                    std::string reason,
                    std::function<void(caf::expected<revocation_outcome>)>
                      done);

  /// Whether this node has a user directory (and a hash pool).
  bool has_directory() const;

private:
  int64_t now_ms() const;
  void revoke_sid(std::string sid, std::string reason,
                  std::function<void(caf::expected<revocation_outcome>)>
                    done);
};

using auth_pointer = auth_actor::stateful_pointer<auth_state>;

auth_actor::behavior_type auth_service(auth_pointer self, auth_options opts,
                                       auth_deps deps);

/// One instance per sessions service in SESSIONS (at least one), each
/// paired with its own, and with an entry of DIRECTORIES in turn (when
/// given; else deps.directory).
std::vector<auth_actor>
spawn_auth(caf::actor_system& sys, const auth_options& opts,
           const auth_deps& deps, const std::vector<sessions_actor>& sessions,
           const std::vector<directory_actor>& directories = {});

} // namespace keymesh
