#include "services/sessions.hpp"

#include <algorithm>

#include <caf/actor_system.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "actors/bus.hpp"
#include "actors/error.hpp"
#include "actors/local_request.hpp"
#include "common/text.hpp"
#include "services/audit.hpp"
#include "state/placement.hpp"
#include "state/refresh.hpp"

namespace keymesh {

namespace {

using nlohmann::json;
using state::session;

constexpr size_t max_listed_sessions = 1000;
constexpr int max_update_attempts = 5;

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

/// Whether every key and value of ATTRS is UTF-8 (sessions are stored and
/// answered as JSON).
bool utf8_attributes(const std::map<std::string, std::string>& attrs) {
  return std::all_of(attrs.begin(), attrs.end(), [](const auto& kv) {
    return is_utf8(kv.first) && is_utf8(kv.second);
  });
}

} // namespace

caf::expected<sessions_options>
sessions_options::from_settings(const config::settings& c) {
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  if (c.sessions.posture != "volatile" && c.sessions.posture != "durable")
    return make_error(ec::invalid_argument,
                      "sessions.posture must be volatile or durable");
  if (c.sessions.max_ttl.count() <= 0
      || c.sessions.default_ttl > c.sessions.max_ttl)
    return make_error(ec::invalid_argument,
                      "sessions.default_ttl must be positive and at most "
                      "sessions.max_ttl");
  sessions_options opts;
  opts.limits = c.sessions;
  opts.token_window
    = duration_cast<milliseconds>(c.keys.max_token_ttl + c.keys.leeway);
  opts.broadcast_timeout = duration_cast<milliseconds>(c.state.peer_timeout * 2);
  return opts;
}

int64_t sessions_state::now_ms() const {
  return to_unix_ms(deps.clock());
}

bool sessions_state::durable() const {
  return deps.store && opts.limits.posture == "durable";
}

// -- create ---------------------------------------------------------------------

caf::expected<session>
sessions_state::make_session(const session_spec& spec) const {
  auto& cfg = opts.limits;
  if (spec.sub.empty() || spec.sub.size() > state::max_subject_bytes)
    return make_error(ec::invalid_argument, "sub must be 1 to 256 bytes");
  if (spec.sub.find(state::partition_key_separator) != std::string::npos)
    return make_error(ec::invalid_argument,
                      "sub may not contain control character 0x1f");
  if (spec.client_id.size() > state::max_subject_bytes)
    return make_error(ec::invalid_argument,
                      "client_id must be at most 256 bytes");
  auto max_ttl = cfg.max_ttl.count();
  if (spec.ttl < 0 || spec.ttl > max_ttl)
    return make_error(ec::invalid_argument,
                      "ttl must be whole seconds up to sessions.max_ttl");
  if (spec.idle_timeout < -1 || spec.idle_timeout > max_ttl)
    return make_error(ec::invalid_argument,
                      "idle_timeout must be whole seconds up to "
                      "sessions.max_ttl");
  if (!is_utf8(spec.sub) || !is_utf8(spec.client_id)
      || !utf8_attributes(spec.attributes))
    return make_error(ec::invalid_argument,
                      "sub, client_id and attributes must be UTF-8 text");
  if (state::attribute_bytes(spec.attributes) > cfg.max_attribute_bytes)
    return make_error(ec::invalid_argument,
                      "attributes are larger than "
                        + std::to_string(cfg.max_attribute_bytes)
                        + " bytes (sessions.max_attribute_bytes)");
  if (auto why = state::clients_problem(spec.clients); !why.empty())
    return make_error(ec::invalid_argument, std::move(why));
  if (!spec.sid.empty() && !state::valid_session_id(spec.sid))
    return make_error(ec::invalid_argument,
                      "sid must be 22 base64url characters");
  auto now = now_ms();
  session s;
  s.sid = spec.sid.empty() ? state::new_session_id() : spec.sid;
  s.sub = spec.sub;
  s.client_id = spec.client_id;
  s.attributes = spec.attributes;
  s.clients = spec.clients;
  s.created_at = now;
  s.last_seen = now;
  s.expires_at
    = now + 1000 * (spec.ttl > 0 ? spec.ttl : cfg.default_ttl.count());
  s.idle_timeout = spec.idle_timeout >= 0 ? spec.idle_timeout
                                          : cfg.idle_timeout.count();
  return s;
}

void sessions_state::create(session_spec spec,
                            caf::typed_response_promise<session> rp) {
  auto s = make_session(spec);
  if (!s) {
    rp.deliver(std::move(s.error()));
    return;
  }
  // A chosen sid may name a session that was revoked: its tombstone
  // refuses the write, and the deny set remembers it after a restart.
  if (!spec.sid.empty() && deps.deny
      && deps.deny->session_denied(spec.sid, now_ms())) {
    rp.deliver(make_error(ec::conflict, "the session was revoked; its sid "
                                        "cannot be used again"));
    return;
  }
  write_new(*s, !spec.sid.empty(), [rp, s = *s](caf::error err) mutable {
    if (err) {
      rp.deliver(std::move(err));
      return;
    }
    rp.deliver(std::move(s));
  });
}

void sessions_state::write_new(const session& s, bool chosen,
                               fail_fn then) {
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
    explicit outcome(int n) : left(n) {
    }
  };
  auto out = std::make_shared<outcome>(durable_write ? 3 : 2);
  auto settle = [this, out, s, then](caf::error err) {
    if (err && !out->failed)
      out->failed = std::move(err);
    if (--out->left > 0)
      return;
    if (out->failed)
      return then(out->failed);
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
    then({});
  };
  // Durable: the database has the session before it is acknowledged.
  auto index_and_database = [=] {
    self
      ->request(deps.state.shard_for(index.key), local_request, atom::put_v,
                index)
      .then([=](write_result&) { settle({}); },
            [=](caf::error& err) { settle(std::move(err)); });
    if (durable_write)
      write_through(s, w.value, {}, settle);
  };
  if (!chosen) {
    index_and_database();
    self->request(deps.state.shard_for(s.sid), local_request, atom::put_v, w)
      .then([=](write_result&) { settle({}); },
            [=](caf::error& err) { settle(std::move(err)); });
    return;
  }
  // A sid the caller chose may exist, or be raced for from two nodes: its
  // create is a decision, taken before the subject index names the sid, so
  // that a refused create never lets a revocation of its subject reach
  // another subject's session.
  w.decide = true;
  self->request(deps.state.shard_for(s.sid), local_request, atom::put_v, w)
    .then(
      [=](write_result&) {
        settle({});
        index_and_database();
      },
      [then](caf::error& err) {
        if (has_code(err, ec::conflict))
          return then(make_error(ec::conflict, "a session with this sid "
                                               "exists or was revoked"));
        then(std::move(err));
      });
}

void sessions_state::write_through(const session& s, std::string value,
                                   state::version ver, fail_fn done) {
  persistence::session_row row;
  row.sid = s.sid;
  row.sub = s.sub;
  row.value = std::move(value);
  row.created_at = s.created_at;
  row.expires_at = s.record_expiry();
  row.version = static_cast<int64_t>(ver.stamp);
  self
    ->request(deps.store->session_writer(), local_request, atom::put_v,
              std::move(row))
    .then([done](atom::ok) { done({}); },
          [done](caf::error& err) {
            auto why = context_text(err);
            spdlog::error("store: a durable session was not written: {}",
                          why);
            done(make_error(ec::unavailable,
                            "the session could not be written to the "
                            "database: "
                              + why));
          });
}

// -- read -------------------------------------------------------------------------

void sessions_state::get(std::string sid,
                         caf::typed_response_promise<session_found> rp) {
  read(
    std::move(sid),
    [rp](std::optional<session> s, bool revoked, state::version ver) mutable {
      if (!s) {
        rp.deliver(revoked ? make_error(ec::revoked)
                                  : make_error(ec::not_found));
        return;
      }
      rp.deliver(session_found{std::move(*s), ver});
    },
    [rp](caf::error err) mutable { rp.deliver(std::move(err)); });
}

void sessions_state::read(std::string sid, found_fn then, fail_fn fail,
                          bool recover_lost) {
  self
    ->request(deps.state.shard_for(sid), local_request, atom::get_v,
              read_request{state::sessions_keyspace, sid, 0})
    .then(
      [=](read_result& r) {
        auto now = now_ms();
        auto* deny = deps.deny.get();
        // A revoked session whose record is gone (volatile state lost in a
        // crash) is still reported as revoked: the deny set remembers.
        if (!r.found) {
          auto denied = deny && deny->session_denied(sid, now);
          if (denied || !recover_lost || !durable())
            return then(std::nullopt, denied, {});
          return recover(sid, then, fail);
        }
        if (r.rec.tombstone || (deny && deny->session_denied(sid, now)))
          return then(std::nullopt, true, {});
        auto s = state::decode_session(r.rec.value);
        if (!s)
          return then(std::nullopt, false, {});
        s->sid = sid;
        if (subject_revoked(deny, *s, now))
          return then(std::nullopt, true, {});
        then(std::move(s), false, r.rec.ver);
      },
      [=](caf::error& err) { fail(std::move(err)); });
}

void sessions_state::recover(std::string sid, found_fn then, fail_fn fail) {
  // Memory lost the session (the whole cluster restarted): the database
  // has it if it was acknowledged. It goes back into memory, so the next
  // read finds it there.
  auto lost = [=](const caf::error& err) {
    fail(make_error(ec::unavailable, "the session is not in memory and the "
                                     "database did not answer: "
                                       + context_text(err)));
  };
  auto worker = deps.store->worker();
  if (!worker)
    return lost(worker.error());
  self->request(*worker, local_request, atom::get_v, atom::session_v, sid)
    .then(
    [=, status = deps.store->status()](session_rows& rows) {
      auto row = rows.empty() ? nullptr : &rows.front();
      auto now = now_ms();
      if (!row || row->expires_at <= now)
        return then(std::nullopt, false, {});
      if (row->revoked)
        return then(std::nullopt, true, {});
      auto s = state::decode_session(row->value);
      if (!s || s->record_expiry() <= now)
        return then(std::nullopt, false, {});
      s->sid = sid;
      if (subject_revoked(deps.deny.get(), *s, now))
        return then(std::nullopt, true, {});
      write_request w;
      w.keyspace = state::sessions_keyspace;
      w.key = sid;
      w.value = row->value;
      w.expires_at = s->record_expiry();
      w.condition = write_condition::absent;
      self
        ->request(deps.state.shard_for(sid), local_request, atom::put_v,
                  std::move(w))
        .then(
          [=](write_result& written) {
            status->sessions_recovered.fetch_add(1,
                                                 std::memory_order_relaxed);
            then(std::move(s), false, written.ver);
          },
          [=](caf::error& err) {
            // Written back meanwhile (or revoked): read what memory has.
            if (has_code(err, ec::conflict))
              return read(sid, then, fail, false);
            fail(std::move(err));
          });
    },
    [lost](caf::error& err) { lost(err); });
}

// -- update and touch ---------------------------------------------------------------

void sessions_state::update(std::string sid, session_patch patch,
                            caf::typed_response_promise<session> rp) {
  if (!utf8_attributes(patch.set)) {
    rp.deliver(make_error(ec::invalid_argument,
                          "attributes must be UTF-8 text"));
    return;
  }
  if (auto why = state::clients_problem(patch.clients); !why.empty()) {
    rp.deliver(make_error(ec::invalid_argument, std::move(why)));
    return;
  }
  change(std::move(sid),
         [this, patch](session& s) -> caf::error {
           for (auto& [k, v] : patch.set)
             s.attributes[k] = v;
           for (auto& k : patch.remove)
             s.attributes.erase(k);
           if (state::attribute_bytes(s.attributes)
               > opts.limits.max_attribute_bytes)
             return make_error(
               ec::invalid_argument,
               "the attributes would be larger than "
                 + std::to_string(opts.limits.max_attribute_bytes)
                 + " bytes (sessions.max_attribute_bytes)");
           for (auto& [id, rp_sid] : patch.clients)
             s.clients[id] = rp_sid;
           if (s.clients.size() > state::max_session_clients)
             return make_error(ec::invalid_argument,
                               "a session has at most "
                                 + std::to_string(state::max_session_clients)
                                 + " clients");
           if (patch.touch)
             s.last_seen = now_ms();
           return {};
         },
         0, std::move(rp));
}

void sessions_state::change(std::string sid, edit_fn edit, int attempt,
                            caf::typed_response_promise<session> rp) {
  // Read, change, write back if nobody else wrote meanwhile.
  read(
    sid,
    [=](std::optional<session> s, bool revoked, state::version ver) mutable {
      if (!s) {
        rp.deliver(revoked ? make_error(ec::revoked)
                           : make_error(ec::not_found));
        return;
      }
      if (auto err = edit(*s)) {
        rp.deliver(std::move(err));
        return;
      }
      write_back(*s, ver, [=](caf::error err, state::version) mutable {
        if (!err) {
          rp.deliver(std::move(*s));
          return;
        }
        if (has_code(err, ec::conflict) && attempt + 1 < max_update_attempts)
          return change(sid, edit, attempt + 1, rp);
        rp.deliver(has_code(err, ec::not_found) ? make_error(ec::revoked)
                                                : std::move(err));
      });
    },
    [rp](caf::error err) mutable { rp.deliver(std::move(err)); });
}

void sessions_state::remove_client(
  std::string sid, std::string client,
  caf::typed_response_promise<session> rp) {
  read(
    sid,
    [=](std::optional<session> s, bool revoked, state::version) mutable {
      if (!s) {
        rp.deliver(revoked ? make_error(ec::revoked)
                           : make_error(ec::not_found));
        return;
      }
      auto parts = s->participants();
      auto it = parts.find(client);
      if (it == parts.end()) {
        rp.deliver(make_error(ec::not_found,
                              "the client does not take part in the session"));
        return;
      }
      auto dropped = [=](std::string logout_error) mutable {
        if (!logout_error.empty())
          spdlog::warn("the back-channel logout of {} from session {} is not "
                       "in the outbox (sent from memory): {}",
                       client, sid, logout_error);
        change(
          sid,
          [client](session& s) -> caf::error {
            s.clients.erase(client);
            if (s.client_id == client)
              s.client_id.clear();
            return {};
          },
          0, rp);
      };
      if (!deps.logout)
        return dropped({});
      // The client's logout is in the outbox before the answer.
      self
        ->request(deps.logout, local_request, atom::logout_v,
                  session_endings{session_ending{
                    sid, s->sub, "client logout", {{client, it->second}}}})
        .then([dropped](logout_receipt& r) mutable { dropped(r.error); },
              [dropped](caf::error& err) mutable {
                dropped("the logout service did not answer: "
                        + context_text(err));
              });
    },
    [rp](caf::error err) mutable { rp.deliver(std::move(err)); });
}

void sessions_state::write_back(
  const session& s, state::version ver,
  std::function<void(caf::error, state::version)> done) {
  auto w = session_record(s, write_condition::version_is);
  w.expected = ver;
  self->request(deps.state.shard_for(s.sid), local_request, atom::put_v, w)
    .then(
      [=](write_result& written) {
        if (!durable())
          return done({}, written.ver);
        write_through(s, w.value, written.ver,
                      [=, ver = written.ver](caf::error err) {
                        done(std::move(err), ver);
                      });
      },
      [=](caf::error& err) { done(std::move(err), {}); });
}

void sessions_state::touch(session_found found,
                           caf::typed_response_promise<touch_result> rp) {
  touch_read(std::move(found.s), found.ver,
             [rp](bool live, int64_t end) mutable {
               rp.deliver(touch_result{live, end});
             });
}

void sessions_state::touch_read(session s, state::version ver,
                                std::function<void(bool, int64_t)> then) {
  auto before = s.record_expiry();
  s.last_seen = now_ms();
  write_back(s, ver, [=](caf::error err, state::version) {
    if (!err)
      return then(true, s.record_expiry());
    if (has_code(err, ec::not_found))
      return then(false, 0);
    // Changed concurrently (touched by someone else), or not written: the
    // session was live when read, and ends when it did then.
    then(true, before);
  });
}

// -- list -------------------------------------------------------------------------

void sessions_state::list(
  std::string sub,
  caf::typed_response_promise<std::vector<session>> rp) {
  subject_sids(
    sub,
    [=](std::vector<std::string> sids) mutable {
      auto found = std::make_shared<std::vector<session>>();
      auto left = std::make_shared<size_t>(sids.size());
      if (sids.empty()) {
        rp.deliver(std::vector<session>{});
        return;
      }
      for (auto& sid : sids)
        read(
          sid,
          [=](std::optional<session> s, bool, state::version) mutable {
            if (s && s->sub == sub)
              found->push_back(std::move(*s));
            if (--*left == 0)
              rp.deliver(std::move(*found));
          },
          [=](caf::error) mutable {
            if (--*left == 0)
              rp.deliver(std::move(*found));
          });
    },
    [rp](caf::error err) mutable { rp.deliver(std::move(err)); });
}

void sessions_state::subject_sids(
  std::string sub, std::function<void(std::vector<std::string>)> then,
  fail_fn fail) {
  scan_request scan;
  scan.keyspace = state::subjects_keyspace;
  scan.prefix = state::subject_index_key(sub, "");
  scan.limit = max_listed_sessions;
  self
    ->request(deps.state.shard_for(scan.prefix), local_request, atom::scan_v,
              scan)
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
        auto now = now_ms();
        auto merge = [=](const session_rows& rows) {
          auto all = sids;
          for (auto& r : rows)
            if (std::find(all.begin(), all.end(), r.sid) == all.end()
                && all.size() < max_listed_sessions)
              all.push_back(r.sid);
          then(std::move(all));
        };
        auto unlisted = [=](const caf::error& err) {
          spdlog::warn("store: durable sessions of a subject not listed: {}",
                       context_text(err));
          then(sids);
        };
        auto worker = deps.store->worker();
        if (!worker)
          return unlisted(worker.error());
        self
          ->request(*worker, local_request, atom::list_v, atom::session_v,
                    sub, now, uint64_t{max_listed_sessions})
          .then([merge](session_rows& rows) { merge(rows); },
                [unlisted](caf::error& err) { unlisted(err); });
      },
      [=](caf::error& err) { fail(std::move(err)); });
}

// -- revoke -----------------------------------------------------------------------

void sessions_state::end_record(std::string sid, std::string reason,
                                fail_fn done) {
  auto now = now_ms();
  write_request w;
  w.keyspace = state::sessions_keyspace;
  w.key = sid;
  w.tombstone = true;
  // The merge keeps the tombstone at least as long as the session it ends.
  w.expires_at = now + opts.token_window.count();
  // Its refresh family (whose id is the sid) ends with it; the tombstone
  // takes the family's own expiry where it replaces one.
  auto family = w;
  family.keyspace = state::refresh_keyspace;
  self->request(deps.state.shard_for(sid), local_request, atom::put_v,
                std::move(family))
    .then([](write_result&) {},
          [sid](caf::error& err) {
            spdlog::warn("the refresh family of session {} was not ended "
                         "(a refresh still finds the session revoked): {}",
                         sid, caf::to_string(err));
          });
  self->request(deps.state.shard_for(sid), local_request, atom::put_v,
                std::move(w))
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

void sessions_state::ending_of(
  std::string sid, std::function<void(std::optional<session>)> then) {
  auto decoded = [sid](const std::string& value) {
    auto s = state::decode_session(value);
    if (s)
      s->sid = sid;
    return s;
  };
  auto from_database = [=] {
    auto worker = deps.store->worker();
    if (!worker)
      return then(std::nullopt);
    self->request(*worker, local_request, atom::get_v, atom::session_v, sid)
      .then(
        [=](session_rows& rows) {
          if (rows.empty() || rows.front().revoked
              || rows.front().expires_at <= now_ms())
            return then(std::nullopt);
          then(decoded(rows.front().value));
        },
        [then](caf::error&) { then(std::nullopt); });
  };
  self
    ->request(deps.state.shard_for(sid), local_request, atom::get_v,
              read_request{state::sessions_keyspace, sid, 0})
    .then(
      [=](read_result& r) {
        if (r.found && !r.rec.tombstone)
          return then(decoded(r.rec.value));
        if (!r.found && durable())
          return from_database();
        then(std::nullopt);
      },
      [then](caf::error&) { then(std::nullopt); });
}

void sessions_state::end_sessions(
  std::vector<std::string> sids, std::string reason,
  std::function<void(caf::error, size_t, std::string)> done) {
  // First what each session has for the logout service, then its
  // relying parties' deliveries into the outbox at once (one batch for a
  // subject's sessions), then the tombstones: the deliveries are recorded
  // before the end is acknowledged.
  auto found = std::make_shared<std::vector<std::optional<session>>>(
    sids.size());
  auto left = std::make_shared<size_t>(sids.size());
  auto end_all = [=](std::string logout_error) {
    size_t live = 0;
    for (auto& s : *found)
      live += s.has_value();
    auto ended = std::make_shared<size_t>(sids.size());
    auto failed = std::make_shared<caf::error>();
    for (auto& sid : sids)
      end_record(sid, reason, [=](caf::error err) {
        if (err)
          *failed = std::move(err);
        if (--*ended == 0)
          done(*failed, live, logout_error);
      });
  };
  auto all_read = [=] {
    session_endings batch;
    for (auto& s : *found)
      if (s) {
        auto parts = s->participants();
        if (!parts.empty())
          batch.push_back(
            session_ending{s->sid, s->sub, reason, std::move(parts)});
      }
    if (batch.empty() || !deps.logout)
      return end_all({});
    self->request(deps.logout, local_request, atom::logout_v, std::move(batch))
      .then([end_all](logout_receipt& receipt) { end_all(receipt.error); },
            [end_all](caf::error& err) {
              end_all("the logout service did not answer: "
                      + context_text(err));
            });
  };
  if (sids.empty())
    return done({}, 0, {});
  for (size_t i = 0; i < sids.size(); ++i)
    ending_of(sids[i], [=](std::optional<session> s) {
      (*found)[i] = std::move(s);
      if (--*left == 0)
        all_read();
    });
}

void sessions_state::revoke(revocation_order order,
                            caf::typed_response_promise<revocation_outcome> rp) {
  auto parsed = state::parse_deny_kind(order.kind);
  if (!parsed || order.value.empty() || order.value.size() > state::max_subject_bytes) {
    rp.deliver(make_error(ec::invalid_argument,
                                 "a revocation names a sid, sub or jti of 1 "
                                 "to 256 bytes"));
    return;
  }
  if (*parsed == state::deny_kind::sid && !state::valid_session_id(order.value)) {
    rp.deliver(make_error(ec::invalid_argument, "malformed session id"));
    return;
  }
  auto kind = *parsed;
  auto now = now_ms();
  auto token_window = opts.token_window.count();
  auto session_window
    = std::chrono::duration_cast<std::chrono::milliseconds>(opts.limits.max_ttl)
        .count();
  // Until every token (and, for a subject, every session) it covers ended.
  auto until = now + (kind == state::deny_kind::sub
                        ? std::max(token_window, session_window)
                        : token_window);
  // The local deny set first: this node enforces the revocation from now on.
  if (deps.deny)
    deps.deny->add(kind, order.value, now, until);
  spdlog::info("revoked {} {}{}{}", order.kind, order.value,
               order.reason.empty() ? "" : ": ", order.reason);
  // The broadcast, the tombstones and the log entry go out at once; the
  // answer waits for all three: every reachable node applied the
  // revocation to its deny set, the sessions it ends are tombstoned on
  // their owners, and the log has it. It names the nodes that did not
  // confirm.
  struct progress {
    std::optional<std::vector<std::string>> unreached;
    std::optional<size_t> sessions;
    caf::error failed;
    std::optional<std::string> log_error; // empty: written
    std::string logout_error;
    bool answered = false;
  };
  auto out = std::make_shared<progress>();
  auto settle = [=]() mutable {
    if (out->answered || !out->unreached || (!out->sessions && !out->failed)
        || !out->log_error)
      return;
    out->answered = true;
    // In force here, broadcast and logged (or not) whatever became of the
    // sessions it ends: counted either way.
    if (deps.status) {
      auto outcome = !out->log_error->empty() ? revocation_stats::log_failed
                     : !out->unreached->empty() ? revocation_stats::partial
                                                : revocation_stats::complete;
      deps.status->revocations->counts[static_cast<size_t>(kind)][outcome]
        .fetch_add(1, std::memory_order_relaxed);
    }
    if (out->failed) {
      rp.deliver(out->failed);
      return;
    }
    // Done: asking for this revocation again has nothing left to do.
    if (deps.deny && out->log_error->empty())
      deps.deny->mark_logged(kind, order.value);
    rp.deliver(revocation_outcome{order, *out->sessions, *out->unreached,
                                  *out->log_error, out->logout_error});
  };
  if (!deps.store) {
    out->log_error.emplace();
  } else {
    persistence::revocation_entry entry{order.kind, order.value,
                                        now,        until,
                                        order.reason,
                                        deps.status ? deps.status->instance_id
                                                    : std::string{}};
    auto logged = [=](const caf::error& err) mutable {
      if (err)
        spdlog::error("store: revocation of {} {} not logged: {}",
                      order.kind, order.value, context_text(err));
      out->log_error = err ? context_text(err) : std::string{};
      settle();
    };
    auto worker = deps.store->worker();
    if (!worker) {
      logged(worker.error());
    } else {
      // Durable: the entry also marks the sessions it ends in the
      // database.
      auto request = durable() ? self->request(*worker, local_request,
                                               atom::revoke_v, entry)
                               : self->request(*worker, local_request,
                                               atom::put_v, entry);
      request.then([logged](atom::ok) mutable { logged({}); },
                   [logged](caf::error& err) mutable { logged(err); });
    }
  }
  if (!deps.bus) {
    out->unreached.emplace();
  } else {
    self
      ->request(deps.bus, opts.broadcast_timeout, atom::publish_v,
                std::string{"revocations"},
                revocation_payload(kind, order.value, now, until,
                                   order.reason))
      .then(
        [=](std::vector<std::string>& unreached) mutable {
          out->unreached = std::move(unreached);
          settle();
        },
        [=](caf::error&) mutable {
          out->unreached = std::vector<std::string>{"(bus)"};
          settle();
        });
  }
  auto tombstoned = [=](size_t n) mutable {
    out->sessions = n;
    settle();
  };
  auto fail = [=](caf::error err) mutable {
    out->failed = std::move(err);
    settle();
  };
  switch (kind) {
    case state::deny_kind::jti:
      return tombstoned(0);
    case state::deny_kind::sid:
      return end_sessions({order.value}, order.reason,
                          [=](caf::error err, size_t,
                              std::string logout_error) mutable {
                            if (err)
                              return fail(std::move(err));
                            out->logout_error = std::move(logout_error);
                            tombstoned(1);
                          });
    case state::deny_kind::sub:
      break;
  }
  subject_sids(
    order.value,
    [=](std::vector<std::string> sids) mutable {
      auto none_live = [=] {
        // The Go OP's warning: with volatile sessions (or all of them
        // gone) a subject's logout may find no relying party to tell.
        if (deps.status)
          deps.status->logout->no_sessions.fetch_add(
            1, std::memory_order_relaxed);
        audit(json{{"type", "bcl.no_sessions_for_subject"},
                   {"sub", order.value},
                   {"reason", order.reason}});
      };
      if (sids.empty()) {
        none_live();
        return tombstoned(0);
      }
      auto n = sids.size();
      end_sessions(std::move(sids), order.reason,
                   [=](caf::error err, size_t live,
                       std::string logout_error) mutable {
                     out->logout_error = std::move(logout_error);
                     if (live == 0)
                       none_live();
                     if (err)
                       return fail(std::move(err));
                     tombstoned(n);
                   });
    },
    fail);
}

// -- events -----------------------------------------------------------------------

void sessions_state::audit(nlohmann::json event) const {
  publish_audit(deps.bus, deps.status.get(), opts.limits.posture, now_ms(),
                std::move(event));
}

void sessions_state::publish_session_event(const json& payload) const {
  if (deps.bus)
    caf::anon_send(deps.bus, atom::publish_v, std::string{"sessions"},
                   payload.dump(-1, ' ', false,
                                json::error_handler_t::replace));
}

// -- the actor ----------------------------------------------------------------------

sessions_actor::behavior_type sessions_service(sessions_pointer self,
                                               sessions_options opts,
                                               sessions_deps deps) {
  auto& st = self->state;
  st.self = self;
  st.opts = std::move(opts);
  st.deps = std::move(deps);
  return {
    [self](atom::create, session_spec& spec) {
      auto rp = self->make_response_promise<session>();
      self->state.create(std::move(spec), rp);
      return rp;
    },
    [self](atom::get, std::string& sid) {
      auto rp = self->make_response_promise<session_found>();
      self->state.get(std::move(sid), rp);
      return rp;
    },
    [self](atom::update, std::string& sid, session_patch& patch) {
      auto rp = self->make_response_promise<session>();
      self->state.update(std::move(sid), std::move(patch), rp);
      return rp;
    },
    [self](atom::touch, session_found& found) {
      auto rp = self->make_response_promise<touch_result>();
      self->state.touch(std::move(found), rp);
      return rp;
    },
    [self](atom::list, std::string& sub) {
      auto rp = self->make_response_promise<std::vector<session>>();
      self->state.list(std::move(sub), rp);
      return rp;
    },
    [self](atom::revoke, revocation_order& order) {
      auto rp = self->make_response_promise<revocation_outcome>();
      self->state.revoke(std::move(order), rp);
      return rp;
    },
    [self](atom::remove, atom::client, std::string& sid, std::string& client) {
      auto rp = self->make_response_promise<session>();
      self->state.remove_client(std::move(sid), std::move(client), rp);
      return rp;
    },
  };
}

std::vector<sessions_actor> spawn_sessions(caf::actor_system& sys,
                                           const sessions_options& opts,
                                           const sessions_deps& deps,
                                           size_t count) {
  std::vector<sessions_actor> out;
  for (size_t i = 0; i < std::max<size_t>(count, 1); ++i)
    out.push_back(sys.spawn(sessions_service, opts, deps));
  return out;
}

} // namespace keymesh
