// The HTTP API as a function from request to response, independent of
// sockets: the Beast server feeds parsed requests in, and unit tests do the
// same without a network. Handlers that need an actor go through the bridge.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <optional>
#include <memory>
#include <string>
#include <vector>

#include <caf/duration.hpp>
#include <nlohmann/json_fwd.hpp>

#include "services/auth_service.hpp"
#include "actors/cluster_transport.hpp"
#include "services/directory.hpp"
#include "services/objects.hpp"
#include "services/secrets.hpp"
#include "actors/federation.hpp"
#include "actors/interfaces.hpp"
#include "actors/local_request.hpp"
#include "actors/node_status.hpp"
#include "actors/router.hpp"
#include "services/sessions.hpp"
#include "actors/shard.hpp"
#include "actors/store_pool.hpp"
#include "actors/hash_pool.hpp"
#include "auth/password.hpp"
#include "state/deny_set.hpp"
#include "state/refresh.hpp"
#include "state/session.hpp"
#include "common/clock.hpp"
#include "config/settings.hpp"
#include "http/admin_auth.hpp"
#include "http/bridge.hpp"
#include "http/metrics.hpp"
#include "http/types.hpp"
#include "jose/verify_cache.hpp"

namespace keymesh::http {



/// Everything the handlers read or talk to.
struct api_context {
  config::settings settings;
  keystore_actor keystore;
  std::shared_ptr<key_snapshot_slot> keys;
  std::shared_ptr<admin_auth> admin;
  std::shared_ptr<node_status> status;
  bridge_pool* bridge = nullptr;
  wall_clock clock = system_wall_clock();
  /// Null when clustering is off.
  membership_actor membership;
  /// The replicated keyspaces (empty shards in tests without state).
  keyspace_client state;
  std::shared_ptr<keymesh::state_metrics> state_stats;
  /// Revoked sids, subjects and token ids, checked by /api/verify.
  std::shared_ptr<state::deny_set> deny;
  /// Revocations and session events go out on it (may be null in tests).
  bus_actor bus;
  /// The durable store (null in tests without one: revocations are then
  /// acknowledged without a log entry).
  std::shared_ptr<store_pool> store;
  /// Where passwords are hashed and checked (null: nowhere; the user
  /// routes then answer 503).
  hash_pool* hashing = nullptr;
  /// The sessions service (equivalent instances, used in turn). Empty: the
  /// api spawns its own from the fields above.
  std::vector<sessions_actor> sessions;
  /// The auth service (equivalent instances, used in turn). Empty: the api
  /// spawns its own from the fields above.
  std::vector<auth_actor> auth;
  /// The directory service (equivalent instances, used in turn). Empty: the
  /// api spawns its own from the fields above.
  std::vector<directory_actor> directory;
  /// The objects service (equivalent instances, used in turn). Empty: the
  /// api spawns its own from the fields above.
  std::vector<objects_actor> objects;
  /// The secrets service and the in-process users of its rings (null: the
  /// DPoP and cookie routes answer 503).
  secrets_actor secrets;
  const dpop_nonces* dpop = nullptr;
  const cookie_sealer* cookies = nullptr;
  std::shared_ptr<const keymesh::secret_board> rings;
};

/// Path parameters of a matched route ("{sid}" → value).
using route_params = std::map<std::string, std::string, std::less<>>;

/// What the server learns from a request's header, before it reads the body.
struct preflight_result {
  /// Set when the request is answered without reading its body (unknown
  /// route, method not allowed, missing or wrong admin key).
  std::optional<response> reject;
  /// The most body bytes the matched route accepts.
  size_t body_limit = 0;
};

class api {
public:
  explicit api(api_context ctx);

  /// Routes and authenticates by the header alone, so that a request that
  /// will be refused is refused before its body is read, and each route gets
  /// its own body limit. Counts rejections in the metrics.
  preflight_result preflight(const bhttp::request_header<>& header);

  /// Handles one request; calls DONE exactly once, on this thread or on a
  /// CAF worker thread.
  void handle(request req, responder done);

  /// Records a request that failed before it could be routed (a parse error,
  /// a body over the limit) under the "unmatched" label.
  void observe_unrouted(unsigned status, std::chrono::nanoseconds latency);

  /// Counts a connection refused over http.max_connections.
  void count_refused_connection();

  const api_context& context() const {
    return ctx_;
  }

private:
  using handler_fn
    = void (api::*)(const request&, const route_params&, responder&);

  struct route {
    bhttp::verb method;
    std::vector<std::string> segments; // "{name}" matches one segment
    std::string label;
    bool admin;
    handler_fn handler;
    size_t body_limit;
  };

  struct match_result {
    const route* chosen = nullptr;
    size_t index = 0;
    route_params params;
    /// Methods the path allows, when it matched but the method did not.
    std::string allow;
    bool bad_escape = false;
    /// A parameter that is not clean UTF-8 text (common/text.hpp).
    bool bad_text = false;
  };

  void add(bhttp::verb method, std::string pattern, bool admin,
           handler_fn handler, size_t body_limit);

  match_result match(bhttp::verb method, std::string_view target) const;

  /// The error response for a request that matched no route or whose admin
  /// key is missing or wrong; nullopt when the request may proceed.
  std::optional<response> refuse(const match_result& m,
                                 const bhttp::request_header<>& header) const;

  // handlers
  void get_jwks(const request& req, const route_params&, responder& done);
  void post_tokens(const request& req, const route_params&, responder& done);
  void post_verify(const request& req, const route_params&, responder& done);
  void get_live(const request& req, const route_params&, responder& done);
  /// /.well-known/openid-configuration and oauth-authorization-server.
  void get_discovery(const request& req, const route_params&,
                     responder& done);
  /// The readiness checks now.
  readiness readiness_now() const;

  void get_ready(const request& req, const route_params&, responder& done);
  void get_metrics(const request& req, const route_params&, responder& done);
  void get_openapi(const request& req, const route_params&, responder& done);
  void get_cluster(const request& req, const route_params&, responder& done);
  void post_rotate(const request& req, const route_params&, responder& done);
  // the event stream (http/events_api.cpp)
  void get_events(const request& req, const route_params&, responder& done);
  // objects (http/objects_api.cpp)
  void put_object(const request& req, const route_params&, responder& done);
  void get_object(const request& req, const route_params&, responder& done);
  void delete_object(const request& req, const route_params&,
                     responder& done);
  void consume_object(const request& req, const route_params&,
                      responder& done);
  void find_objects(const request& req, const route_params&,
                    responder& done);
  void delete_objects(const request& req, const route_params&,
                      responder& done);
  void post_replay(const request& req, const route_params&, responder& done);
  void post_par(const request& req, const route_params&, responder& done);

  // secret rings (http/secrets_api.cpp)
  void get_dpop_nonce(const request& req, const route_params&,
                      responder& done);
  void post_dpop_nonce_check(const request& req, const route_params&,
                             responder& done);
  void post_cookie_seal(const request& req, const route_params&,
                        responder& done);
  void post_cookie_open(const request& req, const route_params&,
                        responder& done);
  void get_secret_ring(const request& req, const route_params& params,
                       responder& done);
  void post_secret_rotate(const request& req, const route_params& params,
                          responder& done);
  void post_par_redeem(const request& req, const route_params&,
                       responder& done);

  // sessions (http/sessions_api.cpp)
  void post_sessions(const request& req, const route_params&, responder& done);
  void get_session(const request& req, const route_params&, responder& done);
  void patch_session(const request& req, const route_params&, responder& done);
  void delete_session(const request& req, const route_params&,
                      responder& done);
  void delete_session_client(const request& req, const route_params&,
                             responder& done);
  void get_subject_sessions(const request& req, const route_params&,
                            responder& done);
  void delete_subject_sessions(const request& req, const route_params&,
                               responder& done);
  void post_session_tokens(const request& req, const route_params&,
                           responder& done);
  void post_revocations(const request& req, const route_params&,
                        responder& done);
  // users, groups, claims (http/admin_api.cpp)
  void post_admin_users(const request& req, const route_params&,
                        responder& done);
  void get_admin_users(const request& req, const route_params&,
                       responder& done);
  void get_admin_user(const request& req, const route_params&,
                      responder& done);
  void patch_admin_user(const request& req, const route_params&,
                        responder& done);
  void delete_admin_user(const request& req, const route_params&,
                         responder& done);
  void post_admin_groups(const request& req, const route_params&,
                         responder& done);
  void get_admin_groups(const request& req, const route_params&,
                        responder& done);
  void get_admin_group(const request& req, const route_params&,
                       responder& done);
  void delete_admin_group(const request& req, const route_params&,
                          responder& done);
  void put_group_member(const request& req, const route_params&,
                        responder& done);
  void delete_group_member(const request& req, const route_params&,
                           responder& done);
  void post_admin_claims(const request& req, const route_params&,
                         responder& done);
  // relying parties for back-channel logout (http/admin_api.cpp)
  void put_admin_client(const request& req, const route_params&,
                        responder& done);
  void get_admin_client(const request& req, const route_params&,
                        responder& done);
  void get_admin_clients(const request& req, const route_params&,
                         responder& done);
  void delete_admin_client(const request& req, const route_params&,
                           responder& done);
  void get_admin_claims(const request& req, const route_params&,
                        responder& done);
  void delete_admin_claim(const request& req, const route_params&,
                          responder& done);
  void put_group_claim(const request& req, const route_params&,
                       responder& done);
  void delete_group_claim(const request& req, const route_params&,
                          responder& done);

  /// A directory service instance (in turn).
  const directory_actor& directory() const;
  /// The answer for an error of the directory service.
  response directory_error(caf::actor_system& sys,
                           const caf::error& err) const;
  /// Sends XS to a directory service; DONE gets RENDER(answer of type T)
  /// or the error's answer.
  template <class T, class Render, class... Ts>
  void ask_directory(responder done, Render render, Ts... xs);

  // login, refresh, logout (http/login_api.cpp)
  void post_login(const request& req, const route_params&, responder& done);
  void post_refresh(const request& req, const route_params&, responder& done);
  void post_logout(const request& req, const route_params&, responder& done);
  /// An auth service instance (in turn).
  const auth_actor& auth() const;
  /// The answer for an error of the auth service about WHAT.
  response auth_error(caf::actor_system& sys, const caf::error& err,
                      std::string_view what) const;

  /// Revokes through the sessions service and answers with what it did.
  void revoke(state::deny_kind kind, std::string value, std::string reason,
              responder done);

  /// A sessions service instance (in turn).
  const sessions_actor& sessions() const;
  /// An objects service instance (in turn).
  const objects_actor& objects() const;
  /// The answer for an error of the objects service.
  response object_error(caf::actor_system& sys, const caf::error& err) const;
  /// Sends XS to an objects service; DONE gets RENDER(answer of type T) or
  /// the error's answer.
  template <class T, class Render, class... Ts>
  void ask_objects(responder done, Render render, Ts... xs);
  /// The answer for an error of the sessions service.
  response session_error(caf::actor_system& sys, const caf::error& err) const;

  /// Reads a session through the service; THEN gets nullopt for an absent
  /// or revoked one (and whether it was revoked), or the session and its
  /// record version.
  void read_session(bridge_self self, std::string sid,
                    std::function<void(std::optional<state::session>, bool,
                                       state::version)>
                      then,
                    std::function<void(caf::error)> fail) const;

  api_context ctx_;
  /// How /api/verify checks tokens (keys.leeway, keys.issuer when set,
  /// keys.audience): fixed by the settings, built once.
  jose::verify_options checks_;
  /// The same with the issuer this cluster's tokens carry
  /// (config::issuer_of): for tokens signed by the cluster's own keys.
  jose::verify_options cluster_checks_;
  std::vector<route> routes_;
  std::shared_ptr<metrics> metrics_;
  std::unique_ptr<jose::verify_cache> verified_;
};

/// Whether the request's Content-Type is application/json (any parameters).
bool is_json_content_type(const request& req);

/// The value of query parameter NAME in TARGET, if present.
std::optional<std::string> query_param(std::string_view target,
                                       std::string_view name);

} // namespace keymesh::http
