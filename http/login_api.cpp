// Login, refresh and logout on any replica: each route checks its input,
// sends one request to an auth service (services/auth_service.hpp) and
// renders the answer. These routes are public: an answer never carries a
// database's text.
#include <caf/event_based_actor.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "actors/atoms.hpp"
#include "actors/error.hpp"
#include "common/clock.hpp"
#include "http/api.hpp"
#include "http/api_errors.hpp"
#include "http/json_input.hpp"
#include "jose/jwt.hpp"
#include "state/refresh.hpp"
#include "state/session.hpp"

namespace keymesh::http {

using nlohmann::json;

namespace {

using state::max_refresh_token_bytes;

response invalid_grant(const std::string& why) {
  return error_response(bhttp::status::unauthorized, "invalid_grant", why);
}

/// A logout's revocation is in force where it reached, but not complete.
response logout_incomplete() {
  return error_response(
    bhttp::status::service_unavailable,
    "the session is revoked on the nodes that were reached, but the "
    "revocation could not be completed (database or partition owners "
    "unavailable): log out again");
}

response granted(const token_grant& g) {
  json out{{"access_token", g.access_token},
           {"token_type", "Bearer"},
           {"expires_in", g.expires_in},
           {"refresh_token", g.refresh_token},
           {"sid", g.sid},
           {"sub", g.sub}};
  return json_response(bhttp::status::ok, out.dump());
}

} // namespace

// -- the auth service ---------------------------------------------------------------------

const auth_actor& api::auth() const {
  thread_local size_t next = 0;
  return ctx_.auth[next++ % ctx_.auth.size()];
}

response api::auth_error(caf::actor_system& sys, const caf::error& err,
                         std::string_view what) const {
  if (err.category() == error_category) {
    switch (static_cast<ec>(err.code())) {
      case ec::invalid_credentials:
        return error_response(bhttp::status::unauthorized,
                              "invalid_credentials",
                              "the username or the password is wrong");
      case ec::locked: {
        // The context is when the username unlocks (Unix ms).
        auto until = std::strtoll(context_text(err).c_str(), nullptr, 10);
        auto left_ms = until - to_unix_ms(ctx_.clock());
        auto res = error_response(bhttp::status::too_many_requests,
                                  "account_locked",
                                  "too many failed logins: try again later");
        res.set(bhttp::field::retry_after,
                std::to_string(std::max<int64_t>(1, (left_ms + 999) / 1000)));
        return res;
      }
      case ec::disabled:
        return error_response(bhttp::status::forbidden, "account_disabled",
                              "this account is disabled");
      case ec::invalid_grant:
        return invalid_grant(context_text(err));
      case ec::overloaded:
        return overloaded(context_text(err));
      case ec::unavailable:
        // The service's own text (never a database's): these routes are
        // public.
        return error_response(bhttp::status::service_unavailable,
                              context_text(err));
      default:
        break;
    }
  }
  return state_error(sys, err, what);
}

// -- POST /api/login -------------------------------------------------------------------

void api::post_login(const request& req, const route_params&,
                     responder& done) {
  response error;
  auto body = parse_object(req, error);
  if (!body || !only_members(*body, {"username", "password", "client_id"}, error))
    return done(std::move(error));
  auto username = string_member(*body, "username", max_name_bytes);
  auto password = string_member(*body, "password", max_password_bytes);
  if (!username || !password)
    return done(bad_request("\"username\" (1 to 255 bytes) and \"password\" "
                            "(1 to 1024 bytes) are required strings"));
  credentials who{std::move(*username), std::move(*password), {}};
  if (auto c = body->find("client_id"); c != body->end()) {
    if (!valid_short_string(*c))
      return done(bad_request("\"client_id\" must be a string of 1 to 256 "
                              "bytes"));
    who.client_id = c->get<std::string>();
  }
  ctx_.bridge->submit([this, who = std::move(who),
                       done](bridge_self self) {
    self->request(auth(), local_request, atom::login_v, who)
      .then([=](token_grant& g) { done(granted(g)); },
            [=](caf::error& err) {
              done(auth_error(self->system(), err, "the login"));
            });
  });
}

// -- POST /api/refresh -------------------------------------------------------------------

void api::post_refresh(const request& req, const route_params&,
                       responder& done) {
  response error;
  auto body = parse_object(req, error);
  if (!body || !only_members(*body, {"refresh_token"}, error))
    return done(std::move(error));
  auto text = string_member(*body, "refresh_token", max_refresh_token_bytes);
  if (!text || !state::parse_refresh_token(*text))
    return done(invalid_grant("not a refresh token"));
  ctx_.bridge->submit([this, text = std::move(*text),
                       done](bridge_self self) {
    self->request(auth(), local_request, atom::refresh_v, text)
      .then([=](token_grant& g) { done(granted(g)); },
            [=](caf::error& err) {
              done(auth_error(self->system(), err, "the refresh token"));
            });
  });
}

// -- POST /api/logout --------------------------------------------------------------------

void api::post_logout(const request& req, const route_params&,
                      responder& done) {
  response error;
  auto body = parse_object(req, error);
  if (!body || !only_members(*body, {"refresh_token", "token"}, error))
    return done(std::move(error));
  logout_request out;
  if (auto text = string_member(*body, "refresh_token",
                                max_refresh_token_bytes)) {
    if (!state::parse_refresh_token(*text))
      return done(invalid_grant("not a refresh token"));
    out.refresh_token = std::move(*text);
  } else {
    // An access token names its session.
    auto token = string_member(*body, "token", checks_.max_token_bytes);
    if (!token)
      return done(bad_request("send {\"refresh_token\": ...} or "
                              "{\"token\": <access token>}"));
    auto snap = ctx_.keys->load();
    if (!snap)
      return done(not_ready());
    // Only this cluster's own keys can end one of its sessions: a token
    // signed by a static peer names a sid of its own issuer.
    auto v = jose::verify_jwt(*token, snap->cluster_keys, cluster_checks_,
                              ctx_.clock());
    out.sid = v.ok() ? v.claims.value("sid", "") : std::string{};
    if (!state::valid_session_id(out.sid))
      return done(invalid_grant("not a valid access token of a session"));
  }
  ctx_.bridge->submit([this, out = std::move(out),
                       done](bridge_self self) {
    self->request(auth(), local_request, atom::logout_v, out)
      .then(
        [=](revocation_outcome& r) {
          if (!r.log_error.empty())
            return done(logout_incomplete());
          done(json_response(
            bhttp::status::ok,
            json{{"logged_out", true}, {"sid", r.order.value}}.dump()));
        },
        [=](caf::error& err) {
          auto res = auth_error(self->system(), err, "the session");
          if (res.result() == bhttp::status::service_unavailable)
            return done(logout_incomplete());
          done(std::move(res));
        });
  });
}

} // namespace keymesh::http
