// Login, refresh and logout on any replica. A login checks the password on
// the hash pool (against a dummy hash for an unknown user, so that the
// answer and its time are the same), counts each attempt per username in
// the replicated keyspace "login_failures" before its password is checked
// (reserved by the partition's primary owner, so no burst on any number of
// nodes gets more than auth.max_failures checks per window), and
// creates a session, an access token with the claims of the user's groups
// and a refresh token. Refresh tokens belong to a family kept in the
// keyspace "refresh"; rotation is a conditional write that the partition's
// primary owner decides, so exactly one of two racing refreshes wins, and a
// token of an older generation is reuse: the family and its session are
// revoked. A refresh never outlives its session: it reads the session
// first (revoked, expired or idle: the family ends) and touches it.
#include <caf/event_based_actor.hpp>
#include <nlohmann/json.hpp>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <spdlog/spdlog.h>

#include "actors/atoms.hpp"
#include "auth/password.hpp"
#include "common/clock.hpp"
#include "http/api.hpp"
#include "http/api_errors.hpp"
#include "http/json_input.hpp"
#include "actors/store_call.hpp"
#include "common/base64url.hpp"
#include "jose/jwt.hpp"
#include "persistence/data_dir.hpp"
#include "state/attempts.hpp"
#include "state/session.hpp"
#include "common/random.hpp"

namespace keymesh::http {

using nlohmann::json;

namespace {

using state::refresh_family;
using state::refresh_token;

constexpr const char* failures_keyspace = "login_failures";
using state::max_refresh_token_bytes;
using state::refresh_keyspace;

// -- answers ---------------------------------------------------------------------------

response invalid_credentials() {
  return error_response(bhttp::status::unauthorized, "invalid_credentials",
                        "the username or the password is wrong");
}

/// The database did not answer a login, refresh or logout: the details go
/// to the log only (these routes are unauthenticated).
response directory_unavailable(const std::string& detail) {
  spdlog::error("login: the user directory is unavailable: {}", detail);
  return error_response(bhttp::status::service_unavailable,
                        "database unavailable");
}

/// Too many attempts for one username: locked for LEFT_MS more.
response account_locked(int64_t left_ms) {
  auto res = error_response(bhttp::status::too_many_requests,
                            "account_locked",
                            "too many failed logins: try again later");
  res.set(bhttp::field::retry_after,
          std::to_string(std::max<int64_t>(1, (left_ms + 999) / 1000)));
  return res;
}

response invalid_grant(const std::string& why) {
  return error_response(bhttp::status::unauthorized, "invalid_grant", why);
}

/// The claims a user's groups grant, as token claims: a name with one value
/// carries it as a string, with several as an array; "groups" lists them.
json token_claims(const std::vector<std::string>& groups,
                  const std::vector<persistence::claim_record>& claims) {
  json out = json::object();
  for (auto& c : claims) {
    auto& slot = out[c.name];
    if (slot.is_null())
      slot = c.value;
    else if (slot.is_string())
      slot = json::array({slot, c.value});
    else
      slot.push_back(c.value);
  }
  out["groups"] = groups;
  return out;
}

/// What a login or a refresh needs from the directory.
struct directory_entry {
  std::optional<persistence::user_record> user;
  std::vector<std::string> groups;
  std::vector<persistence::claim_record> claims;
};

directory_entry look_up(persistence::store& db, const std::string& username) {
  directory_entry e;
  e.user = db.find_user(username);
  if (e.user) {
    e.groups = db.user_groups(e.user->id);
    e.claims = db.user_claims(e.user->id);
  }
  return e;
}

/// A hash with the current cost that no password matches, made once: an
/// unknown username is checked against it, so that it costs the same.
const std::string& dummy_hash(const auth::scrypt_cost& cost) {
  static const std::string hash = auth::hash_password(
    keymesh::base64url_encode(keymesh::random_bytes(16)), cost);
  return hash;
}

/// The answer to a logout: the revocation's own answer when it failed,
/// without the database's text (logged already: this route is public).
responder logged_out(std::string sid, responder done) {
  return [sid = std::move(sid), done](response res) {
    if (res.result() == bhttp::status::service_unavailable)
      return done(error_response(
        bhttp::status::service_unavailable,
        "the session is revoked on the nodes that were reached, but the "
        "revocation could not be completed (database or partition owners "
        "unavailable): log out again"));
    if (res.result() != bhttp::status::ok)
      return done(std::move(res));
    done(json_response(bhttp::status::ok,
                       json{{"logged_out", true}, {"sid", sid}}.dump()));
  };
}

} // namespace

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
  std::string client_id;
  if (auto c = body->find("client_id"); c != body->end()) {
    if (!valid_short_string(*c))
      return done(bad_request("\"client_id\" must be a string of 1 to 256 "
                              "bytes"));
    client_id = c->get<std::string>();
  }
  if (!ctx_.store || !ctx_.hashing)
    return done(error_response(bhttp::status::service_unavailable,
                               "this node has no user directory"));
  ctx_.bridge->submit([this, user = *username, pw = *password, client_id,
                       done](caf::event_based_actor* self) {
    // The attempt is counted before its password is checked.
    auto& auth = ctx_.settings.auth;
    attempt_request attempt{failures_keyspace,
                            user,
                            static_cast<int64_t>(auth.max_failures),
                            auth.failure_window.count() * 1000,
                            auth.lockout.count() * 1000,
                            0};
    self
      ->request(ctx_.state.shard_for(user), local_request, atom::reserve_v,
                std::move(attempt))
      .then(
        [=](attempt_result& counted) {
          if (!counted.granted)
            return done(account_locked(counted.locked_until
                                       - to_unix_ms(ctx_.clock())));
          if (counted.locked_until != 0)
            spdlog::warn("login: {} attempts for one username: locked for "
                         "{} s unless this one succeeds",
                         counted.count, ctx_.settings.auth.lockout.count());
          check_login(self, user, pw, client_id, done);
        },
        [=](caf::error& err) {
          done(state_error(self->system(), err, "the login counter"));
        });
  });
}

void api::check_login(caf::event_based_actor* self, std::string user,
                      std::string password, std::string client_id,
                      responder done) {
  auto cost = password_cost();
  store_call(
    self, *ctx_.store,
    [user](persistence::store& db) { return look_up(db, user); },
    [=](store_outcome<directory_entry> found) {
      if (!found.ok())
        return done(directory_unavailable(found.error));
      auto entry = std::make_shared<directory_entry>(std::move(*found.value));
      auto hash = entry->user ? entry->user->password_hash : std::string{};
      work_call(
        self, *ctx_.hashing,
        [password, hash, cost] {
          // The same work for an unknown user: a check against a dummy.
          return hash.empty() ? (auth::verify_password(password,
                                                       dummy_hash(cost)),
                                 false)
                              : auth::verify_password(password, hash);
        },
        [=](std::optional<bool> matched) {
          if (!matched)
            return done(error_response(bhttp::status::service_unavailable,
                                       "too many logins waiting"));
          if (!*matched) // counted already
            return done(invalid_credentials());
          if (!entry->user->enabled)
            return done(error_response(bhttp::status::forbidden,
                                       "account_disabled",
                                       "this account is disabled"));
          if (auth::needs_rehash(hash, cost))
            upgrade_hash(self, user, password, hash);
          finish_login(self, *entry->user, token_claims(entry->groups,
                                                        entry->claims),
                       client_id, done);
        });
    });
}

void api::upgrade_hash(caf::event_based_actor* self, std::string user,
                       std::string password, std::string old_hash) {
  // The stored hash has another cost than auth.scrypt_*: store the same
  // password at the current cost, unless the hash changed meanwhile. The
  // login does not wait for it; a failure leaves the old hash, which still
  // verifies, and the next login tries again.
  auto cost = password_cost();
  work_call(
    self, *ctx_.hashing,
    [password, cost] { return auth::hash_password(password, cost); },
    [=](std::optional<std::string> fresh) {
      if (!fresh)
        return;
      auto now = to_unix_ms(ctx_.clock());
      store_call(
        self, *ctx_.store,
        [=](persistence::store& db) {
          return db.replace_password_hash(user, old_hash, *fresh, now);
        },
        [cost](store_outcome<bool> replaced) {
          if (replaced.ok() && *replaced.value)
            spdlog::info("login: a password hash was upgraded to scrypt "
                         "ln={} r={} p={}",
                         cost.log2_n, cost.r, cost.p);
          else if (!replaced.ok())
            spdlog::warn("login: a password hash was not upgraded: {}",
                         replaced.error);
        });
    });
}

void api::finish_login(caf::event_based_actor* self,
                       const persistence::user_record& user, json claims,
                       std::string client_id, responder done) {
  auto now = to_unix_ms(ctx_.clock());
  // A successful login clears the username's failures (a zero count, not a
  // tombstone: conditional counts must find a live record).
  write_request clear;
  clear.keyspace = failures_keyspace;
  clear.key = user.username;
  clear.value = state::encode_attempts({0, now, 0});
  clear.expires_at = now + ctx_.settings.auth.failure_window.count() * 1000;
  self->request(ctx_.state.shard_for(clear.key), local_request, atom::put_v,
                clear)
    .then([](write_result&) {}, [](caf::error&) {});
  session_spec spec;
  spec.sub = user.username;
  spec.client_id = std::move(client_id);
  self->request(sessions(), local_request, atom::create_v, std::move(spec))
    .then(
      [=](state::session& s) {
        // The family's id is the session's: ending the session ends it.
        auto f = state::new_family(
          s.sid, s.sub,
          std::min(s.expires_at,
                   now + ctx_.settings.auth.refresh_ttl.count() * 1000));
        write_request w;
        w.keyspace = refresh_keyspace;
        w.key = s.sid;
        w.value = encode_family(f);
        w.expires_at = f.expires_at;
        w.condition = write_condition::absent;
        self
          ->request(ctx_.state.shard_for(w.key), local_request, atom::put_v,
                    w)
          .then(
            [=](write_result&) {
              issue_tokens(self, s.sid, s.sub, claims,
                           std::min(f.expires_at, s.record_expiry()),
                           make_refresh_token(s.sid, f), done);
            },
            [=](caf::error& e) {
              done(state_error(self->system(), e, "the refresh token"));
            });
      },
      [=](caf::error& err) {
        done(state_error(self->system(), err, "the session"));
      });
}

void api::issue_tokens(caf::event_based_actor* self, std::string sid,
                       std::string sub, json claims, int64_t session_end,
                       std::string refresh, responder done) {
  claims["sid"] = sid;
  token_request tr;
  tr.sub = sub;
  tr.extra_claims_json = claims.dump(-1, ' ', false,
                                     json::error_handler_t::replace);
  auto left = (session_end - to_unix_ms(ctx_.clock())) / 1000;
  tr.ttl_seconds = std::max<int64_t>(
    1, std::min<int64_t>(ctx_.settings.keys.default_token_ttl.count(), left));
  self->request(ctx_.keystore, local_request, atom::sign_v, std::move(tr))
    .then(
      [=](signed_token& t) {
        json out{{"access_token", t.token},
                 {"token_type", "Bearer"},
                 {"expires_in", tr.ttl_seconds},
                 {"refresh_token", refresh},
                 {"sid", sid},
                 {"sub", sub}};
        done(json_response(bhttp::status::ok, out.dump()));
      },
      [=](caf::error& err) {
        done(state_error(self->system(), err, "the token"));
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
  auto token = text ? state::parse_refresh_token(*text) : std::nullopt;
  if (!token)
    return done(invalid_grant("not a refresh token"));
  if (!ctx_.store)
    return done(error_response(bhttp::status::service_unavailable,
                               "this node has no user directory"));
  ctx_.bridge->submit([this, t = *token, done](caf::event_based_actor* self) {
    load_family(self, t, [=](state::version ver, refresh_family f) {
      if (t.generation < f.generation)
        return end_family(self, t.id, f, "refresh token reuse", done);
      // The session must be live: not revoked (by sid or subject), not
      // past its absolute or idle end.
      read_session(
        self, f.sid,
        [=](std::optional<state::session> s, bool revoked,
            state::version session_ver) {
          if (!s)
            return drop_family(self, t.id, f,
                               revoked ? "the session was revoked"
                                       : "the session has ended",
                               done);
          rotate_family(self, t.id, f, ver, *s, session_ver, done);
        },
        [=](caf::error err) {
          done(state_error(self->system(), err, "the session"));
        });
    }, done);
  });
}

void api::rotate_family(caf::event_based_actor* self, std::string id,
                        const refresh_family& f, state::version ver,
                        state::session s, state::version session_ver,
                        responder done) {
  // One of several racing refreshes wins at the primary.
  auto next = f;
  next.generation = f.generation + 1;
  write_request w;
  w.keyspace = refresh_keyspace;
  w.key = id;
  w.value = encode_family(next);
  w.expires_at = next.expires_at;
  w.condition = write_condition::version_is;
  w.expected = ver;
  self->request(ctx_.state.shard_for(id), local_request, atom::put_v, w)
    .then(
      [=](write_result&) {
        // A refresh is activity: the session's idle deadline moves.
        touch_session(self, s, session_ver, [=](bool live, int64_t end) {
          if (!live)
            return done(invalid_grant("the session was revoked"));
          refresh_claims(self, id, next, end, done);
        });
      },
      [=](caf::error& err) {
        if (err == make_error(ec::conflict))
          return end_family(self, id, f, "refresh token used twice at once",
                            done);
        if (err == make_error(ec::not_found)) // ended meanwhile
          return done(invalid_grant("the session was revoked"));
        done(state_error(self->system(), err, "the refresh token"));
      });
}

void api::load_family(caf::event_based_actor* self, const refresh_token& t,
                      std::function<void(state::version, refresh_family)> then,
                      responder done) {
  self
    ->request(ctx_.state.shard_for(t.id), local_request, atom::get_v,
              read_request{refresh_keyspace, t.id, 0})
    .then(
      [=](read_result& r) {
        auto f = r.found && !r.rec.tombstone
                   ? state::decode_family(r.rec.value)
                   : std::nullopt;
        if (!f || !state::mac_matches(*f, t))
          return done(invalid_grant("unknown, expired or revoked refresh "
                                    "token"));
        then(r.rec.ver, std::move(*f));
      },
      [=](caf::error& err) {
        done(state_error(self->system(), err, "the refresh token"));
      });
}

void api::refresh_claims(caf::event_based_actor* self, std::string id,
                         const refresh_family& next, int64_t session_end,
                         responder done) {
  // The user's current claims, and whether the account is still enabled.
  store_call(
    self, *ctx_.store,
    [sub = next.sub](persistence::store& db) { return look_up(db, sub); },
    [=, f = next](store_outcome<directory_entry> found) {
      if (!found.ok())
        return done(directory_unavailable(found.error));
      auto& e = *found.value;
      if (!e.user || !e.user->enabled)
        return end_family(self, id, f, "the account is gone or disabled",
                          done);
      issue_tokens(self, f.sid, f.sub, token_claims(e.groups, e.claims),
                   std::min(f.expires_at, session_end),
                   make_refresh_token(id, f), done);
    });
}

void api::end_family(caf::event_based_actor* self, std::string id,
                     const refresh_family& f, std::string why,
                     responder done) {
  spdlog::warn("login: {}: the token family and its session are revoked",
               why);
  close_family(self, id, f, why, [done, why](response) {
    done(invalid_grant(why + ": the session is revoked"));
  });
}

void api::drop_family(caf::event_based_actor* self, const std::string& id,
                      const refresh_family& f, std::string why,
                      responder done) {
  // The session ended without this family (it expired, or was revoked
  // before revocations ended families): the family ends too.
  write_request w;
  w.keyspace = refresh_keyspace;
  w.key = id;
  w.tombstone = true;
  w.expires_at = f.expires_at;
  self->request(ctx_.state.shard_for(id), local_request, atom::put_v, w)
    .then([](write_result&) {}, [](caf::error&) {});
  done(invalid_grant(why));
}

void api::close_family(caf::event_based_actor* self, const std::string& id,
                       const refresh_family& f, const std::string& reason,
                       responder then) {
  // Revoking the session ends the family whose id is the sid; a family of
  // another id (made before families took their session's id) is
  // tombstoned by name.
  if (id != f.sid)
    drop_family(self, id, f, reason, [](response) {});
  revoke(state::deny_kind::sid, f.sid, reason, std::move(then));
}

// -- POST /api/logout --------------------------------------------------------------------

void api::post_logout(const request& req, const route_params&,
                      responder& done) {
  response error;
  auto body = parse_object(req, error);
  if (!body || !only_members(*body, {"refresh_token", "token"}, error))
    return done(std::move(error));
  if (auto text = string_member(*body, "refresh_token",
                                max_refresh_token_bytes)) {
    auto token = state::parse_refresh_token(*text);
    if (!token)
      return done(invalid_grant("not a refresh token"));
    ctx_.bridge->submit([this, t = *token, done](caf::event_based_actor* self) {
      load_family(
        self, t,
        [=](state::version, refresh_family f) {
          close_family(self, t.id, f, "logout", logged_out(f.sid, done));
        },
        done);
    });
    return;
  }
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
  auto v = jose::verify_jwt(*token, snap->cluster_keys, checks_, ctx_.clock());
  auto sid = v.ok() ? v.claims.value("sid", "") : std::string{};
  if (!state::valid_session_id(sid))
    return done(invalid_grant("not a valid access token of a session"));
  // Logged out already (this node wrote or loaded the revocation): nothing
  // is left to do, and a replayed token costs no write or broadcast.
  if (ctx_.deny
      && ctx_.deny->logged(state::deny_kind::sid, sid,
                           to_unix_ms(ctx_.clock())))
    return logged_out(sid, done)(json_response(bhttp::status::ok, "{}"));
  revoke(state::deny_kind::sid, sid, "logout", logged_out(sid, done));
}

} // namespace keymesh::http
