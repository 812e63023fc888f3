#include "services/auth_service.hpp"

#include <algorithm>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "actors/error.hpp"
#include "actors/local_request.hpp"
#include "state/attempts.hpp"

namespace keymesh {

namespace {

using nlohmann::json;
using state::refresh_family;
using state::refresh_token;

constexpr const char* failures_keyspace = "login_failures";


/// What the answer says when the directory did not answer (the details go
/// to the log only: the login routes are public).
constexpr const char* directory_down = "database unavailable";

/// The directory did not answer: its error may carry a database's text,
/// which goes to the log only.
caf::error directory_failed(const caf::error& err) {
  // A full queue is back-pressure, not an outage: said as such (its text
  // names no database).
  if (err.category() == error_category
      && static_cast<ec>(err.code()) == ec::overloaded)
    return err;
  spdlog::error("login: the user directory is unavailable: {}",
                context_text(err));
  return make_error(ec::unavailable, directory_down);
}

caf::error invalid_grant(std::string why) {
  return make_error(ec::invalid_grant, std::move(why));
}

} // namespace

json token_claims(const account& a) {
  json out = json::object();
  for (auto& c : a.claims) {
    auto& slot = out[c.name];
    if (slot.is_null())
      slot = c.value;
    else if (slot.is_string())
      slot = json::array({slot, c.value});
    else
      slot.push_back(c.value);
  }
  out["groups"] = a.groups;
  return out;
}

caf::expected<auth_options>
auth_options::from_settings(const config::settings& c) {
  auto& a = c.auth;
  if (a.max_failures == 0)
    return make_error(ec::invalid_argument, "auth.max_failures must be at "
                                            "least 1");
  if (a.failure_window.count() <= 0 || a.lockout.count() <= 0)
    return make_error(ec::invalid_argument,
                      "auth.failure_window and auth.lockout must be positive");
  if (a.refresh_ttl.count() <= 0)
    return make_error(ec::invalid_argument,
                      "auth.refresh_ttl must be positive");
  auth_options opts;
  opts.limits = a;
  opts.cost = {a.scrypt_log2_n, a.scrypt_r, a.scrypt_p};
  opts.token_ttl = c.keys.default_token_ttl;
  return opts;
}

int64_t auth_state::now_ms() const {
  return to_unix_ms(deps.clock());
}

bool auth_state::has_directory() const {
  return deps.directory && deps.hashing;
}

// -- login -----------------------------------------------------------------------

void auth_state::login(credentials who, grant_promise rp) {
  if (!has_directory()) {
    rp.deliver(make_error(ec::unavailable, "this node has no user directory"));
    return;
  }
  // The attempt is counted before its password is checked.
  auto& limits = opts.limits;
  attempt_request attempt{failures_keyspace,
                          who.username,
                          static_cast<int64_t>(limits.max_failures),
                          limits.failure_window.count() * 1000,
                          limits.lockout.count() * 1000,
                          0};
  self
    ->request(deps.state.shard_for(who.username), local_request,
              atom::reserve_v, std::move(attempt))
    .then(
      [=](attempt_result& counted) mutable {
        if (!counted.granted) {
          rp.deliver(make_error(ec::locked,
                                std::to_string(counted.locked_until)));
          return;
        }
        if (counted.locked_until != 0)
          spdlog::warn("login: {} attempts for one username: locked for "
                       "{} s unless this one succeeds",
                       counted.count, opts.limits.lockout.count());
        check_password(std::move(who), std::move(rp));
      },
      [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
}

void auth_state::check_password(credentials who, grant_promise rp) {
  auto cost = opts.cost;
  self
    ->request(deps.directory, local_request, atom::get_v, atom::account_v,
              who.username)
    .then(
      [=](account& found) mutable {
        auto entry = std::make_shared<account>(std::move(found));
        auto hash = entry->found ? entry->password_hash : std::string{};
        auto checked = [=](bool matched) mutable {
          if (!matched) { // counted already
            rp.deliver(make_error(ec::invalid_credentials));
            return;
          }
          if (!entry->enabled) {
            rp.deliver(make_error(ec::disabled));
            return;
          }
          if (auth::needs_rehash(hash, cost))
            upgrade_hash(who.username, who.password, hash);
          open_session(who.username, token_claims(*entry), who.client_id,
                       std::move(rp));
        };
        auto worker = deps.hashing->worker();
        if (!worker) {
          rp.deliver(make_error(ec::overloaded, "too many logins waiting"));
          return;
        }
        // An unknown user (no hash) costs a check against a dummy hash.
        self
          ->request(*worker, local_request, atom::check_v,
                    password_text{who.password}, hash, cost)
          .then([checked](bool matched) mutable { checked(matched); },
                [rp](caf::error& err) mutable {
                  rp.deliver(std::move(err));
                });
      },
      [rp](caf::error& err) mutable {
        rp.deliver(directory_failed(err));
      });
}

void auth_state::upgrade_hash(std::string user, std::string password,
                              std::string old_hash) {
  // The stored hash has another cost than auth.scrypt_*: store the same
  // password at the current cost, unless the hash changed meanwhile. A
  // failure leaves the old hash, which still verifies, and the next login
  // tries again.
  auto cost = opts.cost;
  auto worker = deps.hashing->worker();
  if (!worker)
    return; // busy: the next login tries again
  self
    ->request(*worker, local_request, atom::hash_v, password_text{password},
              cost)
    .then(
      [=](std::string& fresh) {
        self
          ->request(deps.directory, local_request, atom::rehash_v, user,
                    old_hash, fresh)
          .then(
            [cost](bool replaced) {
              if (replaced)
                spdlog::info("login: a password hash was upgraded to "
                             "scrypt ln={} r={} p={}",
                             cost.log2_n, cost.r, cost.p);
            },
            [](caf::error& err) {
              spdlog::warn("login: a password hash was not upgraded: {}",
                           context_text(err));
            });
      },
      [](caf::error&) {
        // Logged by the hash pool; the old hash still verifies.
      });
}

void auth_state::open_session(std::string user, json claims,
                              std::string client_id, grant_promise rp) {
  auto now = now_ms();
  // A successful login clears the username's failures (a zero count, not a
  // tombstone: conditional counts must find a live record).
  write_request clear;
  clear.keyspace = failures_keyspace;
  clear.key = user;
  clear.value = state::encode_attempts({0, now, 0});
  clear.expires_at = now + opts.limits.failure_window.count() * 1000;
  self->request(deps.state.shard_for(clear.key), local_request, atom::put_v,
                clear)
    .then([](write_result&) {}, [](caf::error&) {});
  session_spec spec;
  spec.sub = std::move(user);
  spec.client_id = std::move(client_id);
  auto refresh_ttl = opts.limits.refresh_ttl.count() * 1000;
  self->request(deps.sessions, local_request, atom::create_v, std::move(spec))
    .then(
      [=](state::session& s) mutable {
        // The family's id is the session's: ending the session ends it.
        auto f = state::new_family(s.sid, s.sub,
                                   std::min(s.expires_at, now + refresh_ttl));
        write_request w;
        w.keyspace = state::refresh_keyspace;
        w.key = s.sid;
        w.value = encode_family(f);
        w.expires_at = f.expires_at;
        w.condition = write_condition::absent;
        self->request(deps.state.shard_for(w.key), local_request, atom::put_v,
                      w)
          .then(
            [=](write_result&) mutable {
              issue(s.sid, s.sub, claims,
                    std::min(f.expires_at, s.record_expiry()),
                    make_refresh_token(s.sid, f), std::move(rp));
            },
            [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
      },
      [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
}

void auth_state::issue(std::string sid, std::string sub, json claims,
                       int64_t session_end, std::string refresh,
                       grant_promise rp) {
  claims["sid"] = sid;
  token_request tr;
  tr.sub = sub;
  tr.extra_claims_json = claims.dump(-1, ' ', false,
                                     json::error_handler_t::replace);
  auto left = (session_end - now_ms()) / 1000;
  tr.ttl_seconds = std::max<int64_t>(
    1, std::min<int64_t>(opts.token_ttl.count(), left));
  auto ttl = tr.ttl_seconds;
  self->request(deps.keystore, local_request, atom::sign_v, std::move(tr))
    .then(
      [=](signed_token& t) mutable {
        rp.deliver(token_grant{std::move(t.token), ttl, refresh, sid, sub});
      },
      [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
}

// -- refresh -----------------------------------------------------------------------

void auth_state::refresh(std::string text, grant_promise rp) {
  auto token = text.size() <= state::max_refresh_token_bytes
                 ? state::parse_refresh_token(text)
                 : std::nullopt;
  if (!token) {
    rp.deliver(invalid_grant("not a refresh token"));
    return;
  }
  if (!deps.directory) {
    rp.deliver(make_error(ec::unavailable, "this node has no user directory"));
    return;
  }
  auto fail = [rp](caf::error err) mutable { rp.deliver(std::move(err)); };
  load_family(
    *token,
    [=, t = *token](state::version ver, refresh_family f) mutable {
      if (t.generation < f.generation)
        return end_family(t.id, f, "refresh token reuse", rp);
      // The session must be live: not revoked (by sid or subject), not
      // past its absolute or idle end.
      self->request(deps.sessions, local_request, atom::get_v, f.sid)
        .then(
          [=](session_found& found) mutable {
            rotate(t.id, f, ver, std::move(found.s), found.ver, rp);
          },
          [=](caf::error& err) mutable {
            auto revoked = has_code(err, ec::revoked);
            if (!revoked && !has_code(err, ec::not_found)) {
              rp.deliver(std::move(err));
              return;
            }
            drop_family(t.id, f);
            rp.deliver(invalid_grant(revoked ? "the session was revoked"
                                             : "the session has ended"));
          });
    },
    fail);
}

void auth_state::load_family(
  const refresh_token& t,
  std::function<void(state::version, refresh_family)> then,
  std::function<void(caf::error)> fail) {
  self
    ->request(deps.state.shard_for(t.id), local_request, atom::get_v,
              read_request{state::refresh_keyspace, t.id, 0})
    .then(
      [=](read_result& r) {
        auto f = r.found && !r.rec.tombstone
                   ? state::decode_family(r.rec.value)
                   : std::nullopt;
        if (!f || !state::mac_matches(*f, t))
          return fail(invalid_grant("unknown, expired or revoked refresh "
                                    "token"));
        then(r.rec.ver, std::move(*f));
      },
      [=](caf::error& err) { fail(std::move(err)); });
}

void auth_state::rotate(std::string id, refresh_family f, state::version ver,
                        state::session s, state::version session_ver,
                        grant_promise rp) {
  // One of several racing refreshes wins at the primary.
  auto next = f;
  next.generation = f.generation + 1;
  write_request w;
  w.keyspace = state::refresh_keyspace;
  w.key = id;
  w.value = encode_family(next);
  w.expires_at = next.expires_at;
  w.condition = write_condition::version_is;
  w.expected = ver;
  auto before = s.record_expiry();
  self->request(deps.state.shard_for(id), local_request, atom::put_v, w)
    .then(
      [=](write_result&) mutable {
        // A refresh is activity: the session's idle deadline moves.
        self
          ->request(deps.sessions, local_request, atom::touch_v,
                    session_found{s, session_ver})
          .then(
            [=](touch_result& touched) mutable {
              if (!touched.live) {
                rp.deliver(invalid_grant("the session was revoked"));
                return;
              }
              refresh_claims(id, next, touched.ends_at, rp);
            },
            // The service did not answer: the session was live when read.
            [=](caf::error&) mutable { refresh_claims(id, next, before, rp); });
      },
      [=](caf::error& err) mutable {
        if (has_code(err, ec::conflict))
          return end_family(id, f, "refresh token used twice at once", rp);
        if (has_code(err, ec::not_found)) { // ended meanwhile
          rp.deliver(invalid_grant("the session was revoked"));
          return;
        }
        rp.deliver(std::move(err));
      });
}

void auth_state::refresh_claims(std::string id, refresh_family next,
                                int64_t session_end, grant_promise rp) {
  // The user's current claims, and whether the account is still enabled.
  self
    ->request(deps.directory, local_request, atom::get_v, atom::account_v,
              next.sub)
    .then(
      [=](account& a) mutable {
        if (!a.found || !a.enabled)
          return end_family(id, next, "the account is gone or disabled", rp);
        issue(next.sid, next.sub, token_claims(a),
              std::min(next.expires_at, session_end),
              make_refresh_token(id, next), std::move(rp));
      },
      [rp](caf::error& err) mutable {
        rp.deliver(directory_failed(err));
      });
}

void auth_state::end_family(std::string id, refresh_family f,
                            std::string why, grant_promise rp) {
  spdlog::warn("login: {}: the token family and its session are revoked",
               why);
  close_family(id, f, why,
               [rp, why](caf::expected<revocation_outcome>) mutable {
                 rp.deliver(invalid_grant(why + ": the session is revoked"));
               });
}

void auth_state::drop_family(const std::string& id, const refresh_family& f) {
  // The session ended without this family (it expired, or was revoked
  // before revocations ended families): the family ends too.
  write_request w;
  w.keyspace = state::refresh_keyspace;
  w.key = id;
  w.tombstone = true;
  w.expires_at = f.expires_at;
  self->request(deps.state.shard_for(id), local_request, atom::put_v, w)
    .then([](write_result&) {}, [](caf::error&) {});
}

void auth_state::close_family(
  const std::string& id, const refresh_family& f, std::string reason,
  std::function<void(caf::expected<revocation_outcome>)> done) {
  // Revoking the session ends the family whose id is the sid; a family of
  // another id (made before families took their session's id) is
  // tombstoned by name.
  if (id != f.sid)
    drop_family(id, f);
  revoke_sid(f.sid, std::move(reason), std::move(done));
}

void auth_state::revoke_sid(
  std::string sid, std::string reason,
  std::function<void(caf::expected<revocation_outcome>)> done) {
  self
    ->request(deps.sessions, local_request, atom::revoke_v,
              revocation_order{"sid", std::move(sid), std::move(reason)})
    .then([=](revocation_outcome& out) { done(std::move(out)); },
          [=](caf::error& err) { done(std::move(err)); });
}

// -- logout -----------------------------------------------------------------------

void auth_state::logout(logout_request req, outcome_promise rp) {
  auto deliver = [rp](caf::expected<revocation_outcome> out) mutable {
    if (out)
      rp.deliver(std::move(*out));
    else
      rp.deliver(std::move(out.error()));
  };
  if (!req.refresh_token.empty()) {
    auto token = req.refresh_token.size() <= state::max_refresh_token_bytes
                   ? state::parse_refresh_token(req.refresh_token)
                   : std::nullopt;
    if (!token) {
      rp.deliver(invalid_grant("not a refresh token"));
      return;
    }
    load_family(
      *token,
      [=, id = token->id](state::version, refresh_family f) {
        close_family(id, f, "logout", deliver);
      },
      [rp](caf::error err) mutable { rp.deliver(std::move(err)); });
    return;
  }
  if (!state::valid_session_id(req.sid)) {
    rp.deliver(invalid_grant("not a valid access token of a session"));
    return;
  }
  // Logged out already (this node wrote or loaded the revocation): nothing
  // is left to do, and a replayed token costs no write or broadcast.
  if (deps.deny
      && deps.deny->logged(state::deny_kind::sid, req.sid, now_ms())) {
    rp.deliver(revocation_outcome{revocation_order{"sid", req.sid, "logout"},
                                  0, {}, {}, {}});
    return;
  }
  revoke_sid(req.sid, "logout", deliver);
}

// -- the actor ----------------------------------------------------------------------

auth_actor::behavior_type auth_service(auth_pointer self, auth_options opts,
                                       auth_deps deps) {
  auto& st = self->state;
  st.self = self;
  st.opts = std::move(opts);
  st.deps = std::move(deps);
  return {
    [self](atom::login, credentials& who) {
      auto rp = self->make_response_promise<token_grant>();
      self->state.login(std::move(who), rp);
      return rp;
    },
    [self](atom::refresh, std::string& text) {
      auto rp = self->make_response_promise<token_grant>();
      self->state.refresh(std::move(text), rp);
      return rp;
    },
    [self](atom::logout, logout_request& req) {
      auto rp = self->make_response_promise<revocation_outcome>();
      self->state.logout(std::move(req), rp);
      return rp;
    },
  };
}

std::vector<auth_actor>
spawn_auth(caf::actor_system& sys, const auth_options& opts,
           const auth_deps& deps, const std::vector<sessions_actor>& sessions,
           const std::vector<directory_actor>& directories) {
  std::vector<auth_actor> out;
  for (size_t i = 0; i < std::max<size_t>(sessions.size(), 1); ++i) {
    auto with = deps;
    if (!sessions.empty())
      with.sessions = sessions[i];
    if (!directories.empty())
      with.directory = directories[i % directories.size()];
    out.push_back(sys.spawn(auth_service, opts, std::move(with)));
  }
  return out;
}

} // namespace keymesh
