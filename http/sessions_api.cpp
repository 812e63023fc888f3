// The session routes of http::api: create, read, touch and update, revoke,
// list and revoke by subject, tokens bound to a session, and revocations by
// sid, subject or token id. Each request becomes messages to the local
// shard of the key's partition, which serves or forwards.
#include <algorithm>

#include <caf/event_based_actor.hpp>
#include <caf/sec.hpp>
#include <caf/send.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "actors/bus.hpp"
#include "actors/error.hpp"
#include "http/api.hpp"
#include "http/api_errors.hpp"
#include "http/store_call.hpp"
#include "http/json_input.hpp"
#include "state/placement.hpp"
#include "state/refresh.hpp"
#include "state/session.hpp"

namespace keymesh::http {

namespace {

using nlohmann::json;
using state::session;

constexpr size_t max_reason_bytes = 256;
constexpr size_t max_listed_sessions = 1000;
constexpr int max_update_attempts = 5;

response session_gone(bool revoked) {
  return error_response(bhttp::status::not_found, "not_found",
                        revoked ? "the session was revoked"
                                : "no such session (or it expired)");
}

/// The optional "reason" member of BODY; nullopt (and ERROR) when invalid.
std::optional<std::string> read_reason(const json& body, response& error) {
  auto r = body.find("reason");
  if (r == body.end())
    return std::string{};
  if (!r->is_string()
      || r->get_ref<const std::string&>().size() > max_reason_bytes) {
    error = bad_request("\"reason\" must be a string of at most 256 bytes");
    return std::nullopt;
  }
  return r->get<std::string>();
}

/// The reason of a DELETE, whose body is empty or {"reason": "..."}.
std::optional<std::string> reason_of(const request& req, response& error) {
  if (req.body().empty())
    return std::string{};
  auto body = parse_object(req, error);
  if (!body || !only_members(*body, {"reason"}, error))
    return std::nullopt;
  return read_reason(*body, error);
}

/// The {sid} of a route, or nullopt after answering 400 for a malformed one.
std::optional<std::string> session_id(const route_params& params,
                                      responder& done) {
  auto sid = params.at("sid");
  if (state::valid_session_id(sid))
    return sid;
  done(bad_request("malformed session id"));
  return std::nullopt;
}

/// Reads "attributes": an object of strings (NULLS: null deletes).
bool read_attributes(const json& body, bool nulls,
                     std::map<std::string, std::optional<std::string>>& out,
                     response& error) {
  auto a = body.find("attributes");
  if (a == body.end())
    return true;
  if (!a->is_object()) {
    error = bad_request("\"attributes\" must be an object of strings");
    return false;
  }
  for (auto& [k, v] : a->items()) {
    if (k.empty() || k.size() > max_subject_bytes) {
      error = bad_request("attribute names are 1 to 256 bytes");
      return false;
    }
    if (v.is_string())
      out[k] = v.get<std::string>();
    else if (v.is_null() && nulls)
      out[k] = std::nullopt;
    else {
      error = bad_request(nulls ? "attribute values must be strings (or null "
                                  "to remove one)"
                                : "attribute values must be strings");
      return false;
    }
  }
  return true;
}

std::optional<int64_t> read_seconds(const json& body, const char* name,
                                    int64_t min, int64_t max, bool& bad) {
  auto v = body.find(name);
  if (v == body.end())
    return std::nullopt;
  if (!v->is_number_integer() || v->get<int64_t>() < min
      || v->get<int64_t>() > max) {
    bad = true;
    return std::nullopt;
  }
  return v->get<int64_t>();
}

/// The write of session S's record (its stored form, until its end).
write_request session_record(const session& s, write_condition condition) {
  write_request w;
  w.keyspace = state::sessions_keyspace;
  w.key = s.sid;
  w.value = state::encode_session(s);
  w.expires_at = s.record_expiry();
  w.condition = condition;
  return w;
}

/// Whether a subject revocation covers S (made at or before its cut).
bool subject_revoked(const state::deny_set* deny, const session& s,
                     int64_t now) {
  if (deny == nullptr)
    return false;
  auto cut = deny->subject_revoked_at(s.sub, now);
  return cut != 0 && s.created_at <= cut;
}

} // namespace

response state_error(caf::actor_system& sys, const caf::error& err,
                     std::string_view what) {
  if (err.category() == error_category) {
    switch (static_cast<ec>(err.code())) {
      case ec::not_found:
        return error_response(bhttp::status::not_found, "not_found",
                              std::string{what} + " does not exist");
      case ec::conflict:
        return error_response(bhttp::status::conflict, "conflict",
                              std::string{what}
                                + " was changed concurrently; retry");
      case ec::unavailable:
        return error_response(bhttp::status::service_unavailable,
                              "unavailable", sys.render(err));
      default:
        break;
    }
  }
  if (err == caf::sec::request_timeout)
    return error_response(bhttp::status::gateway_timeout,
                          "the owners of the partition did not answer in "
                          "time");
  spdlog::error("http: state operation failed: {}", sys.render(err));
  return error_response(bhttp::status::internal_server_error,
                        "state operation failed");
}

// -- helpers that talk to shards --------------------------------------------

void api::read_session(caf::event_based_actor* self, std::string sid,
                       std::function<void(std::optional<session>, bool,
                                          state::version)>
                         then,
                       std::function<void(caf::error)> fail,
                       bool recover) const {
  auto& shard = ctx_.state.shard_for(sid);
  self
    ->request(shard, local_request, atom::get_v,
              read_request{state::sessions_keyspace, sid, 0})
    .then(
      [=, deny = ctx_.deny, clock = ctx_.clock](read_result& r) {
        auto now = to_unix_ms(clock());
        // A revoked session whose record is gone (volatile state lost in a
        // crash) is still reported as revoked: the deny set remembers.
        if (!r.found) {
          auto denied = deny && deny->session_denied(sid, now);
          if (denied || !recover || !durable())
            return then(std::nullopt, denied, {});
          return recover_session(self, sid, then, fail);
        }
        if (r.rec.tombstone || (deny && deny->session_denied(sid, now)))
          return then(std::nullopt, true, {});
        auto s = state::decode_session(r.rec.value);
        if (!s)
          return then(std::nullopt, false, {});
        s->sid = sid;
        if (subject_revoked(deny.get(), *s, now))
          return then(std::nullopt, true, {});
        then(std::move(s), false, r.rec.ver);
      },
      [=](caf::error& err) { fail(std::move(err)); });
}

bool api::durable() const {
  return ctx_.store && ctx_.settings.sessions.posture == "durable";
}

void api::recover_session(
  caf::event_based_actor* self, std::string sid,
  std::function<void(std::optional<session>, bool, state::version)> then,
  std::function<void(caf::error)> fail) const {
  // Memory lost the session (the whole cluster restarted): the database
  // has it if it was acknowledged. It goes back into memory, so the next
  // read finds it there.
  store_call(
    self, *ctx_.store,
    [sid](persistence::store& db) { return db.find_session(sid); },
    [=, deny = ctx_.deny, clock = ctx_.clock,
     status = ctx_.store->status()](
      store_outcome<std::optional<persistence::session_row>> got) {
      if (!got.ok())
        return fail(make_error(ec::unavailable,
                               "the session is not in memory and the "
                               "database did not answer: "
                                 + got.error));
      auto& row = *got.value;
      auto now = to_unix_ms(clock());
      if (!row || row->expires_at <= now)
        return then(std::nullopt, false, {});
      if (row->revoked)
        return then(std::nullopt, true, {});
      auto s = state::decode_session(row->value);
      if (!s || s->record_expiry() <= now)
        return then(std::nullopt, false, {});
      s->sid = sid;
      if (subject_revoked(deny.get(), *s, now))
        return then(std::nullopt, true, {});
      write_request w;
      w.keyspace = state::sessions_keyspace;
      w.key = sid;
      w.value = row->value;
      w.expires_at = s->record_expiry();
      w.condition = write_condition::absent;
      self
        ->request(ctx_.state.shard_for(sid), local_request, atom::put_v,
                  std::move(w))
        .then(
          [=](write_result& written) {
            status->sessions_recovered.fetch_add(1,
                                                 std::memory_order_relaxed);
            then(std::move(s), false, written.ver);
          },
          [=](caf::error& err) {
            // Written back meanwhile (or revoked): read what memory has.
            if (err.category() == error_category
                && err.code() == static_cast<uint8_t>(ec::conflict))
              return read_session(self, sid, then, fail, false);
            fail(std::move(err));
          });
    });
}

void api::revoke_session_record(caf::event_based_actor* self, std::string sid,
                                std::string reason,
                                std::function<void(caf::error)> done) const {
  auto now = to_unix_ms(ctx_.clock());
  write_request w;
  w.keyspace = state::sessions_keyspace;
  w.key = sid;
  w.tombstone = true;
  // The merge keeps the tombstone at least as long as the session it ends.
  w.expires_at = now + deny_window_ms();
  // Its refresh family (whose id is the sid) ends with it; the tombstone
  // takes the family's own expiry where it replaces one.
  auto family = w;
  family.keyspace = state::refresh_keyspace;
  self->request(ctx_.state.shard_for(sid), local_request, atom::put_v,
                std::move(family))
    .then([](write_result&) {},
          [sid](caf::error& err) {
            spdlog::warn("the refresh family of session {} was not ended "
                         "(a refresh still finds the session revoked): {}",
                         sid, caf::to_string(err));
          });
  self->request(ctx_.state.shard_for(sid), local_request,
                atom::put_v, std::move(w))
    .then(
      [=](write_result&) {
        publish_session_event(json{{"type", "revoked"}, {"sid", sid}});
        json event{{"type", "session.revoked"}, {"sid", sid}};
        if (!reason.empty())
          event["reason"] = reason;
        audit(std::move(event));
        done(caf::error{});
      },
      [=](caf::error& err) { done(std::move(err)); });
}

void api::audit(nlohmann::json event) const {
  event["posture"] = ctx_.settings.sessions.posture;
  event["at"] = to_unix_ms(ctx_.clock());
  if (ctx_.status)
    event["node"] = ctx_.status->instance_id;
  auto text = event.dump(-1, ' ', false, json::error_handler_t::replace);
  spdlog::info("audit: {}", text);
  if (ctx_.bus)
    caf::anon_send(ctx_.bus, atom::publish_v, std::string{"audit"}, text);
}

void api::publish_session_event(const nlohmann::json& payload) const {
  if (ctx_.bus)
    caf::anon_send(ctx_.bus, atom::publish_v, std::string{"sessions"},
                   payload.dump(-1, ' ', false,
                                json::error_handler_t::replace));
}

int64_t api::deny_window_ms() const {
  auto& k = ctx_.settings.keys;
  return std::chrono::duration_cast<std::chrono::milliseconds>(k.max_token_ttl
                                                               + k.leeway)
    .count();
}

// -- routes -------------------------------------------------------------------

void api::post_sessions(const request& req, const route_params&,
                        responder& done) {
  response error;
  auto body = parse_object(req, error);
  if (!body)
    return done(std::move(error));
  if (!only_members(*body, {"sub", "client_id", "ttl", "idle_timeout",
                            "attributes"},
                    error))
    return done(std::move(error));
  auto& cfg = ctx_.settings.sessions;
  session s;
  auto sub = body->find("sub");
  if (sub == body->end() || !valid_short_string(*sub))
    return done(bad_request("\"sub\" is required: a string of 1 to 256 bytes"));
  s.sub = sub->get<std::string>();
  if (s.sub.find(state::partition_key_separator) != std::string::npos)
    return done(bad_request("\"sub\" may not contain control character 0x1f"));
  if (auto c = body->find("client_id"); c != body->end()) {
    if (!valid_short_string(*c))
      return done(bad_request("\"client_id\" must be a string of 1 to 256 "
                              "bytes"));
    s.client_id = c->get<std::string>();
  }
  bool bad = false;
  auto max_ttl = cfg.max_ttl.count();
  auto ttl = read_seconds(*body, "ttl", 1, max_ttl, bad);
  if (bad)
    return done(bad_request("\"ttl\" must be whole seconds from 1 to "
                            + std::to_string(max_ttl)
                            + " (sessions.max_ttl)"));
  auto idle = read_seconds(*body, "idle_timeout", 0, max_ttl, bad);
  if (bad)
    return done(bad_request("\"idle_timeout\" must be whole seconds from 0 "
                            "(none) to sessions.max_ttl"));
  std::map<std::string, std::optional<std::string>> attrs;
  if (!read_attributes(*body, false, attrs, error))
    return done(std::move(error));
  for (auto& [k, v] : attrs)
    s.attributes[k] = *v;
  if (state::attribute_bytes(s.attributes) > cfg.max_attribute_bytes)
    return done(bad_request("\"attributes\" are larger than "
                            + std::to_string(cfg.max_attribute_bytes)
                            + " bytes (sessions.max_attribute_bytes)"));
  auto now = to_unix_ms(ctx_.clock());
  s.sid = state::new_session_id();
  s.created_at = now;
  s.last_seen = now;
  s.expires_at = now + 1000 * ttl.value_or(cfg.default_ttl.count());
  s.idle_timeout = idle.value_or(cfg.idle_timeout.count());
  ctx_.bridge->submit([this, s = std::move(s),
                       done](caf::event_based_actor* self) mutable {
    create_session(self, s, [=](caf::error err, const char* what) {
      if (err)
        return done(state_error(self->system(), err, what));
      done(json_response(bhttp::status::created, state::session_json(s)));
    });
  });
}

void api::create_session(caf::event_based_actor* self, state::session s,
                         std::function<void(caf::error, const char*)> then) {
  // The subject index entry and the session are written at once; the
  // session is acknowledged only when both are, so a subject revocation
  // always finds an acknowledged session. (A failure leaves at most an
  // entry or a session whose sid nobody was given; both expire.)
  write_request index;
  index.keyspace = state::subjects_keyspace;
  index.key = state::subject_index_key(s.sub, s.sid);
  index.expires_at = s.expires_at;
  auto w = session_record(s, write_condition::absent);
  auto durable_write = durable();
  struct outcome {
    // The index, the session, and (durable) the database row.
    int left;
    caf::error failed;
    const char* what = nullptr;
    explicit outcome(int n) : left(n) {
    }
  };
  auto out = std::make_shared<outcome>(durable_write ? 3 : 2);
  auto settle = [=](caf::error err, const char* what) {
    if (err && !out->failed) {
      out->failed = std::move(err);
      out->what = what;
    }
    if (--out->left > 0)
      return;
    if (out->failed)
      return then(out->failed, out->what);
    publish_session_event(json{{"type", "created"},
                               {"sid", s.sid},
                               {"sub", s.sub},
                               {"client_id", s.client_id},
                               {"expires_at", s.expires_at / 1000}});
    audit(json{{"type", "session.created"},
               {"sid", s.sid},
               {"sub", s.sub},
               {"client_id", s.client_id},
               {"expires_at", s.expires_at}});
    then({}, nullptr);
  };
  self
    ->request(ctx_.state.shard_for(index.key), local_request, atom::put_v,
              index)
    .then([=](write_result&) { settle({}, nullptr); },
          [=](caf::error& err) {
            settle(std::move(err), "the subject index");
          });
  self->request(ctx_.state.shard_for(s.sid), local_request, atom::put_v, w)
    .then([=](write_result&) { settle({}, nullptr); },
          [=](caf::error& err) { settle(std::move(err), "the session"); });
  // Durable: the database has the session before it is acknowledged.
  if (durable_write)
    write_through(self, s, w.value, {}, [=](caf::error err) {
      settle(std::move(err), "the durable session");
    });
}

void api::write_through(caf::event_based_actor* self, const state::session& s,
                        std::string value, state::version ver,
                        std::function<void(caf::error)> done) const {
  persistence::session_row row;
  row.sid = s.sid;
  row.sub = s.sub;
  row.value = std::move(value);
  row.created_at = s.created_at;
  row.expires_at = s.record_expiry();
  row.version = static_cast<int64_t>(ver.stamp);
  ctx_.store->write_session(
    std::move(row), back_to<std::string>(self, [done](std::string error) {
      if (error.empty())
        return done({});
      spdlog::error("store: a durable session was not written: {}", error);
      done(make_error(ec::unavailable,
                      "the session could not be written to the database: "
                        + error));
    }));
}

void api::get_session(const request&, const route_params& params,
                      responder& done) {
  auto sid_param = session_id(params, done);
  if (!sid_param)
    return;
  auto sid = std::move(*sid_param);
  ctx_.bridge->submit([this, sid, done](caf::event_based_actor* self) {
    read_session(
      self, sid,
      [=](std::optional<session> s, bool revoked, state::version) {
        if (!s)
          return done(session_gone(revoked));
        done(json_response(bhttp::status::ok, state::session_json(*s)));
      },
      [=](caf::error err) {
        done(state_error(self->system(), err, "the session"));
      });
  });
}

void api::patch_session(const request& req, const route_params& params,
                        responder& done) {
  auto sid_param = session_id(params, done);
  if (!sid_param)
    return;
  auto sid = std::move(*sid_param);
  std::map<std::string, std::optional<std::string>> changes;
  bool touch = true;
  if (!req.body().empty()) {
    response error;
    auto body = parse_object(req, error);
    if (!body || !only_members(*body, {"attributes", "touch"}, error))
      return done(std::move(error));
    if (!read_attributes(*body, true, changes, error))
      return done(std::move(error));
    if (auto t = body->find("touch"); t != body->end()) {
      if (!t->is_boolean())
        return done(bad_request("\"touch\" must be true or false"));
      touch = t->get<bool>();
    }
  }
  ctx_.bridge->submit([this, sid, changes, touch,
                       done](caf::event_based_actor* self) {
    // Read, change, write back if nobody else wrote meanwhile. The retry
    // function holds itself weakly; each pending step holds it strongly.
    auto attempt = std::make_shared<std::function<void(int)>>();
    std::weak_ptr<std::function<void(int)>> weak = attempt;
    *attempt = [=](int n) {
      auto retry = weak.lock();
      read_session(
        self, sid,
        [=](std::optional<session> s, bool revoked, state::version ver) {
          if (!s)
            return done(session_gone(revoked));
          for (auto& [k, v] : changes)
            if (v)
              s->attributes[k] = *v;
            else
              s->attributes.erase(k);
          if (state::attribute_bytes(s->attributes)
              > ctx_.settings.sessions.max_attribute_bytes)
            return done(bad_request(
              "the attributes would be larger than "
              + std::to_string(ctx_.settings.sessions.max_attribute_bytes)
              + " bytes (sessions.max_attribute_bytes)"));
          if (touch)
            s->last_seen = to_unix_ms(ctx_.clock());
          update_session(self, *s, ver, [=](caf::error err, state::version) {
            if (!err)
              return done(json_response(bhttp::status::ok,
                                        state::session_json(*s)));
            if (err.category() == error_category
                && err.code() == static_cast<uint8_t>(ec::conflict)
                && n + 1 < max_update_attempts)
              return (*retry)(n + 1);
            if (err.category() == error_category
                && err.code() == static_cast<uint8_t>(ec::not_found))
              return done(session_gone(true));
            done(state_error(self->system(), err, "the session"));
          });
        },
        [=](caf::error err) {
          done(state_error(self->system(), err, "the session"));
        });
    };
    (*attempt)(0);
  });
}

void api::update_session(
  caf::event_based_actor* self, const state::session& s, state::version ver,
  std::function<void(caf::error, state::version)> done) const {
  auto w = session_record(s, write_condition::version_is);
  w.expected = ver;
  self->request(ctx_.state.shard_for(s.sid), local_request, atom::put_v, w)
    .then(
      [=](write_result& written) {
        if (!durable())
          return done({}, written.ver);
        write_through(self, s, w.value, written.ver,
                      [=, ver = written.ver](caf::error err) {
                        done(std::move(err), ver);
                      });
      },
      [=](caf::error& err) { done(std::move(err), {}); });
}

void api::touch_session(caf::event_based_actor* self, state::session s,
                        state::version ver,
                        std::function<void(bool, int64_t)> then) const {
  auto before = s.record_expiry();
  s.last_seen = to_unix_ms(ctx_.clock());
  update_session(self, s, ver, [=](caf::error err, state::version) {
    if (!err)
      return then(true, s.record_expiry());
    if (err.category() == error_category
        && err.code() == static_cast<uint8_t>(ec::not_found))
      return then(false, 0);
    // Changed concurrently (touched by someone else), or not written: the
    // session was live when read, and ends when it did then.
    then(true, before);
  });
}

void api::delete_session(const request& req, const route_params& params,
                         responder& done) {
  auto sid_param = session_id(params, done);
  if (!sid_param)
    return;
  auto sid = std::move(*sid_param);
  response error;
  auto reason = reason_of(req, error);
  if (!reason)
    return done(std::move(error));
  revoke(state::deny_kind::sid, sid, *reason, done);
}

void api::get_subject_sessions(const request&, const route_params& params,
                               responder& done) {
  auto sub = params.at("sub");
  if (sub.empty() || sub.size() > max_subject_bytes)
    return done(bad_request("the subject must be 1 to 256 bytes"));
  ctx_.bridge->submit([this, sub, done](caf::event_based_actor* self) {
    list_subject(
      self, sub,
      [=](std::vector<std::string> sids) {
        auto found = std::make_shared<std::vector<std::string>>();
        auto left = std::make_shared<size_t>(sids.size());
        auto finish = [=] {
          std::string out = R"({"sub":)" + json(sub).dump() + R"(,"sessions":[)";
          for (size_t i = 0; i < found->size(); ++i)
            out += (i ? "," : "") + (*found)[i];
          out += "]}";
          done(json_response(bhttp::status::ok, std::move(out)));
        };
        if (sids.empty())
          return finish();
        for (auto& sid : sids)
          read_session(
            self, sid,
            [=](std::optional<session> s, bool, state::version) {
              if (s && s->sub == sub)
                found->push_back(state::session_json(*s));
              if (--*left == 0)
                finish();
            },
            [=](caf::error) {
              if (--*left == 0)
                finish();
            });
      },
      [=](caf::error err) {
        done(state_error(self->system(), err, "the subject index"));
      });
  });
}

void api::delete_subject_sessions(const request& req,
                                  const route_params& params,
                                  responder& done) {
  auto sub = params.at("sub");
  if (sub.empty() || sub.size() > max_subject_bytes)
    return done(bad_request("the subject must be 1 to 256 bytes"));
  response error;
  auto reason = reason_of(req, error);
  if (!reason)
    return done(std::move(error));
  revoke(state::deny_kind::sub, sub, *reason, done);
}

void api::list_subject(caf::event_based_actor* self, std::string sub,
                       std::function<void(std::vector<std::string>)> then,
                       std::function<void(caf::error)> fail) const {
  scan_request scan;
  scan.keyspace = state::subjects_keyspace;
  scan.prefix = state::subject_index_key(sub, "");
  scan.limit = max_listed_sessions;
  self
    ->request(ctx_.state.shard_for(scan.prefix),
              local_request, atom::scan_v, scan)
    .then(
      [=](record_list& hits) {
        std::vector<std::string> sids;
        for (auto& h : hits)
          if (!h.rec.tombstone)
            sids.emplace_back(state::sid_of_index_key(h.key));
        if (!durable())
          return then(std::move(sids));
        // Durable: sessions memory lost are in the database (while the
        // database is down, memory has every session made since start).
        auto now = to_unix_ms(ctx_.clock());
        store_call(
          self, *ctx_.store,
          [sub, now](persistence::store& db) {
            return db.subject_sessions(sub, now, max_listed_sessions);
          },
          [=](store_outcome<std::vector<persistence::session_row>> rows) {
            auto all = sids;
            if (!rows.ok())
              spdlog::warn("store: durable sessions of a subject not "
                           "listed: {}",
                           rows.error);
            else
              for (auto& r : *rows.value)
                if (std::find(all.begin(), all.end(), r.sid) == all.end()
                    && all.size() < max_listed_sessions)
                  all.push_back(r.sid);
            then(std::move(all));
          });
      },
      [=](caf::error& err) { fail(std::move(err)); });
}

void api::revoke(state::deny_kind kind, std::string value,
                 std::string reason, responder done) {
  auto now = to_unix_ms(ctx_.clock());
  auto token_window = deny_window_ms();
  auto session_window = std::chrono::duration_cast<std::chrono::milliseconds>(
                          ctx_.settings.sessions.max_ttl)
                          .count();
  auto what = state::to_string(kind);
  // Until every token (and, for a subject, every session) it covers ended.
  auto until = now + (kind == state::deny_kind::sub
                        ? std::max(token_window, session_window)
                        : token_window);
  // The local deny set first: this node enforces the revocation from now on.
  if (ctx_.deny)
    ctx_.deny->add(kind, value, now, until);
  spdlog::info("revoked {} {}{}{}", what, value,
               reason.empty() ? "" : ": ", reason);
  ctx_.bridge->submit([=](caf::event_based_actor* self) {
    // The broadcast and the tombstones go out at once; the answer waits for
    // both: every reachable node applied the revocation to its deny set,
    // and the sessions it ends are tombstoned on their owners. It names the
    // nodes that did not confirm. (One bridge actor runs all of this: no
    // locking.)
    // The log entry is written at once too: the answer waits for it.
    struct outcome {
      std::optional<std::vector<std::string>> unreached;
      std::optional<size_t> sessions;
      caf::error failed;
      std::optional<std::string> log_error; // empty: written
      bool answered = false;
    };
    auto out = std::make_shared<outcome>();
    auto settle = [=] {
      if (out->answered || !out->unreached || (!out->sessions && !out->failed)
          || !out->log_error)
        return;
      out->answered = true;
      if (out->failed)
        return done(state_error(self->system(), out->failed, "the session"));
      if (!out->log_error->empty())
        return done(error_response(
          bhttp::status::service_unavailable,
          "the revocation is in force on the nodes that were reached, but "
          "it could not be written to the revocation log (retry: revoking "
          "again is harmless): "
            + *out->log_error));
      // Done: asking for this revocation again has nothing left to do.
      if (ctx_.deny)
        ctx_.deny->mark_logged(kind, value);
      auto& unreached = *out->unreached;
      json body{{"revoked", what},
                {what, value},
                {"sessions", *out->sessions},
                {"propagation", unreached.empty() ? "complete" : "partial"},
                {"unreached", unreached}};
      if (!reason.empty())
        body["reason"] = reason;
      done(json_response(bhttp::status::ok, body.dump()));
    };
    if (!ctx_.store) {
      out->log_error.emplace();
    } else {
      persistence::revocation_entry entry{what, value, now, until, reason,
                                          ctx_.status->instance_id};
      store_call(
        self, *ctx_.store,
        [entry, sessions = durable()](persistence::store& db) {
          db.put_revocation(entry);
          if (sessions)
            db.revoke_sessions(entry);
          return true;
        },
        [=](store_outcome<bool> written) {
          if (!written.ok())
            spdlog::error("store: revocation of {} {} not logged: {}", what,
                          value, written.error);
          out->log_error = written.ok() ? std::string{} : written.error;
          settle();
        });
    }
    if (!ctx_.bus) {
      out->unreached.emplace();
    } else {
      self
        ->request(ctx_.bus, ctx_.settings.state.peer_timeout * 2,
                  atom::publish_v, std::string{"revocations"},
                  revocation_payload(kind, value, now, until, reason))
        .then(
          [=](std::vector<std::string>& unreached) {
            out->unreached = std::move(unreached);
            settle();
          },
          [=](caf::error&) {
            out->unreached = std::vector<std::string>{"(bus)"};
            settle();
          });
    }
    auto tombstoned = [=](size_t n) {
      out->sessions = n;
      settle();
    };
    auto fail = [=](caf::error err) {
      out->failed = std::move(err);
      settle();
    };
    switch (kind) {
      case state::deny_kind::jti:
        return tombstoned(0);
      case state::deny_kind::sid:
        return revoke_session_record(self, value, reason, [=](caf::error err) {
          if (err)
            return fail(std::move(err));
          tombstoned(1);
        });
      case state::deny_kind::sub:
        break;
    }
    list_subject(
      self, value,
      [=](std::vector<std::string> sids) {
        if (sids.empty())
          return tombstoned(0);
        auto left = std::make_shared<size_t>(sids.size());
        auto failed = std::make_shared<caf::error>();
        for (auto& sid : sids)
          revoke_session_record(self, sid, reason, [=](caf::error err) {
            if (err)
              *failed = std::move(err);
            if (--*left > 0)
              return;
            if (*failed)
              return fail(*failed);
            tombstoned(sids.size());
          });
      },
      fail);
  });
}

void api::post_revocations(const request& req, const route_params&,
                           responder& done) {
  response error;
  auto body = parse_object(req, error);
  if (!body || !only_members(*body, {"sid", "sub", "jti", "reason"}, error))
    return done(std::move(error));
  int targets = 0;
  auto target = state::deny_kind::sid;
  std::string value;
  for (auto kind :
       {state::deny_kind::sid, state::deny_kind::sub, state::deny_kind::jti}) {
    auto name = state::to_string(kind);
    auto v = body->find(name);
    if (v == body->end())
      continue;
    ++targets;
    if (!valid_short_string(*v))
      return done(bad_request(std::string{"\""} + name
                              + "\" must be a string of 1 to 256 bytes"));
    target = kind;
    value = v->get<std::string>();
  }
  if (targets != 1)
    return done(bad_request("name exactly one of \"sid\", \"sub\" or \"jti\""));
  if (target == state::deny_kind::sid && !state::valid_session_id(value))
    return done(bad_request("malformed session id"));
  auto reason = read_reason(*body, error);
  if (!reason)
    return done(std::move(error));
  revoke(target, std::move(value), std::move(*reason), done);
}

void api::post_session_tokens(const request& req, const route_params& params,
                              responder& done) {
  auto sid_param = session_id(params, done);
  if (!sid_param)
    return;
  auto sid = std::move(*sid_param);
  response error;
  json body = json::object();
  if (!req.body().empty()) {
    auto parsed = parse_object(req, error);
    if (!parsed)
      return done(std::move(error));
    body = std::move(*parsed);
  }
  if (body.contains("sub"))
    return done(bad_request("the subject comes from the session: leave "
                            "\"sub\" out"));
  if (auto c = body.find("claims");
      c != body.end() && c->is_object() && c->contains("sid"))
    return done(bad_request("the \"sid\" claim comes from the session"));
  ctx_.bridge->submit([this, sid, body = std::move(body),
                       done](caf::event_based_actor* self) mutable {
    read_session(
      self, sid,
      [=](std::optional<session> s, bool revoked, state::version) mutable {
        if (!s)
          return done(session_gone(revoked));
        body["sub"] = s->sub;
        response error;
        auto tr = parse_token_request(body, error);
        if (!tr)
          return done(std::move(error));
        auto claims = tr->extra_claims_json.empty()
                        ? json::object()
                        : json::parse(tr->extra_claims_json);
        claims["sid"] = sid;
        tr->extra_claims_json = claims.dump();
        // A token never outlives its session.
        auto left = (s->record_expiry() - to_unix_ms(ctx_.clock())) / 1000;
        auto ttl = tr->ttl_seconds > 0
                     ? tr->ttl_seconds
                     : ctx_.settings.keys.default_token_ttl.count();
        tr->ttl_seconds = std::max<int64_t>(1, std::min<int64_t>(ttl, left));
        self
          ->request(ctx_.keystore, local_request, atom::sign_v,
                    std::move(*tr))
          .then(
            [=](signed_token& t) {
              json out{{"token", t.token},
                       {"kid", t.kid},
                       {"expires_at", t.expires_at},
                       {"sid", sid}};
              done(json_response(bhttp::status::created, out.dump()));
            },
            [=](caf::error& err) {
              done(state_error(self->system(), err, "the token"));
            });
      },
      [=](caf::error err) {
        done(state_error(self->system(), err, "the session"));
      });
  });
}

} // namespace keymesh::http
