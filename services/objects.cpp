#include "services/objects.hpp"

#include <algorithm>
#include <memory>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/error.hpp"
#include "actors/local_request.hpp"
#include "common/base64url.hpp"
#include "common/digest.hpp"
#include "common/text.hpp"
#include "config/schema.hpp"
#include "state/par.hpp"

namespace keymesh {

namespace {

caf::error invalid(std::string why) {
  return make_error(ec::invalid_argument, std::move(why));
}

/// A kind a caller may use: keymesh's own ("keymesh.*", the replay
/// registry's) are reserved.
bool caller_kind(std::string_view kind) {
  return state::valid_object_kind(kind) && kind.rfind("keymesh.", 0) != 0;
}

/// A callback to call N times (N > 0); the last call runs DONE with the
/// first error any call passed (none when all succeeded).
std::function<void(caf::error)>
countdown(size_t n, std::function<void(caf::error)> done) {
  struct state {
    size_t pending;
    caf::error failed;
    std::function<void(caf::error)> done;
  };
  auto st = std::make_shared<state>(state{n, {}, std::move(done)});
  return [st](caf::error err) {
    if (err && !st->failed)
      st->failed = std::move(err);
    if (--st->pending == 0)
      st->done(std::move(st->failed));
  };
}

caf::error contended() {
  return make_error(ec::unavailable,
                    "the object changed too often to decide: try again");
}

} // namespace

caf::expected<objects_options>
objects_options::from_settings(const config::settings& c) {
  objects_options opts;
  opts.limits = c.objects;
  if (opts.limits.default_ttl > opts.limits.max_ttl)
    return make_error(ec::invalid_argument,
                      "objects.default_ttl must be at most objects.max_ttl");
  for (auto& item : c.objects.kinds) {
    auto limit = config::parse_kind_limit(item);
    if (!limit)
      return make_error(ec::invalid_argument,
                        "objects.kinds: not KIND:MAX_TTL:MAX_VALUE_SIZE: "
                          + item);
    if (limit->max_ttl > opts.limits.max_ttl
        || limit->max_value_bytes > opts.limits.max_value_bytes)
      return make_error(ec::invalid_argument,
                        "objects.kinds: " + item
                          + " is not within objects.max_ttl and "
                            "objects.max_value_bytes");
    if (!caller_kind(limit->kind))
      return make_error(ec::invalid_argument,
                        "objects.kinds: " + limit->kind
                          + " is not a kind callers may use");
    opts.kinds[limit->kind] = kind_caps{
      std::chrono::duration_cast<std::chrono::milliseconds>(limit->max_ttl)
        .count(),
      limit->max_value_bytes};
  }
  return opts;
}

objects_options::kind_caps
objects_options::caps(std::string_view kind) const {
  if (auto i = kinds.find(kind); i != kinds.end())
    return i->second;
  return {std::chrono::duration_cast<std::chrono::milliseconds>(limits.max_ttl)
            .count(),
          limits.max_value_bytes};
}

int64_t objects_state::now_ms() const {
  return to_unix_ms(deps.clock());
}

caf::error objects_state::check(const object_put& req) const {
  if (!caller_kind(req.kind))
    return invalid("a kind is 1 to 64 of A-Z a-z 0-9 _ - . (kinds starting "
                   "with \"keymesh.\" are reserved)");
  if (!state::valid_object_id(req.id))
    return invalid("an id is 1 to 512 bytes of UTF-8 without control "
                   "characters");
  auto caps = opts.caps(req.kind);
  auto own = opts.kinds.count(req.kind) > 0;
  if (req.value.size() > caps.max_value_bytes)
    return invalid("the value is larger than "
                   + std::string{own ? "objects.kinds' cap of " + req.kind
                                     : "objects.max_value_bytes"}
                   + " (" + std::to_string(caps.max_value_bytes) + ")");
  if (!is_utf8(req.value))
    return invalid("the value is not UTF-8 text (values are answered in "
                   "JSON)");
  if (req.ttl_ms < 0 || req.ttl_ms > caps.max_ttl_ms)
    return invalid("ttl must be from 1 ms to "
                   + std::string{own ? "objects.kinds' cap of " + req.kind
                                     : "objects.max_ttl"}
                   + " (" + std::to_string(caps.max_ttl_ms / 1000) + " s)");
  switch (req.condition) {
    case object_condition::always:
    case object_condition::absent:
    case object_condition::version_is:
      break;
    default: // from a peer or an application that knows more
      return invalid("unknown condition");
  }
  if (req.indexes.size() > state::max_object_indexes)
    return invalid("at most 8 index fields");
  for (auto& [field, value] : req.indexes)
    if (!state::valid_object_kind(field) || !state::valid_object_id(value))
      return invalid("an index field is 1 to 64 of A-Z a-z 0-9 _ - ., its "
                     "value 1 to 512 bytes without control characters");
  return {};
}

// -- reading ------------------------------------------------------------------

void objects_state::read(const std::string& kind, const std::string& id,
                         found_fn then, fail_fn fail) {
  auto key = state::object_key(kind, id);
  self
    ->request(deps.state.shard_for(key), local_request, atom::get_v,
              read_request{state::objects_keyspace, key, 0})
    .then(
      [=](read_result& r) {
        if (!r.found || r.rec.tombstone)
          return then(std::nullopt);
        auto o = state::decode_object(r.rec.value);
        if (!o)
          return then(std::nullopt);
        o->kind = kind;
        o->id = id;
        o->expires_at = r.rec.expires_at;
        then(object_found{std::move(*o), r.rec.ver});
      },
      [=](caf::error& err) { fail(std::move(err)); });
}

void objects_state::get(std::string kind, std::string id,
                        promise<object_found> rp) {
  if (!caller_kind(kind) || !state::valid_object_id(id)) {
    rp.deliver(make_error(ec::not_found));
    return;
  }
  read(
    kind, id,
    [rp](std::optional<object_found> found) mutable {
      if (!found)
        rp.deliver(make_error(ec::not_found));
      else
        rp.deliver(std::move(*found));
    },
    [rp](caf::error err) mutable { rp.deliver(std::move(err)); });
}

void objects_state::find(object_lookup q,
                         promise<std::vector<object_found>> rp) {
  lookup(
    std::move(q),
    [rp](std::vector<object_found> out) mutable { rp.deliver(std::move(out)); },
    [rp](caf::error err) mutable { rp.deliver(std::move(err)); });
}

void objects_state::lookup(
  object_lookup q, std::function<void(std::vector<object_found>)> then,
  fail_fn fail) {
  if (!caller_kind(q.kind) || !state::valid_object_kind(q.field)
      || !state::valid_object_id(q.value))
    return then({});
  scan_request scan;
  scan.keyspace = state::object_index_keyspace;
  scan.prefix = state::object_index_prefix(q.kind, q.field, q.value);
  scan.limit = max_listed_objects;
  self
    ->request(deps.state.shard_for(scan.prefix), local_request, atom::scan_v,
              scan)
    .then(
      [this, q, then, fail](record_list& hits) mutable {
        std::vector<std::string> ids;
        for (auto& h : hits)
          if (!h.rec.tombstone)
            ids.emplace_back(state::id_of_object_index_key(h.key));
        if (ids.empty())
          return then({});
        // Each object read back: an index entry outlives a change of the
        // object's index value until it is replaced, so it is checked.
        struct fan_in {
          std::vector<object_found> out;
          size_t pending = 0;
          caf::error failed;
        };
        auto st = std::make_shared<fan_in>();
        st->pending = ids.size();
        auto settle = [st, then, fail]() mutable {
          if (--st->pending > 0)
            return;
          if (st->failed)
            return fail(st->failed);
          std::sort(st->out.begin(), st->out.end(),
                    [](const object_found& a, const object_found& b) {
                      return a.obj.id < b.obj.id;
                    });
          then(std::move(st->out));
        };
        for (auto& id : ids)
          read(
            q.kind, id,
            [st, q, settle](std::optional<object_found> found) mutable {
              if (found) {
                auto i = found->obj.indexes.find(q.field);
                if (i != found->obj.indexes.end() && i->second == q.value)
                  st->out.push_back(std::move(*found));
              }
              settle();
            },
            [st, settle](caf::error err) mutable {
              st->failed = std::move(err);
              settle();
            });
      },
      [fail](caf::error& err) { fail(std::move(err)); });
}

// -- writing ------------------------------------------------------------------

void objects_state::write(
  const state::object& o, write_condition c, state::version expected,
  std::function<void(caf::expected<state::version>)> done) {
  write_request w;
  w.keyspace = state::objects_keyspace;
  w.key = state::object_key(o.kind, o.id);
  w.value = state::encode_object(o);
  w.expires_at = o.expires_at;
  w.condition = c;
  w.expected = expected;
  // Every conditional write of an object is a decision (fenced, checked
  // by every owner): a create that must happen once, a compare-and-set, a
  // consume.
  w.decide = c != write_condition::always;
  auto indexes = o.indexes;
  auto kind = o.kind;
  auto id = o.id;
  auto expires_at = o.expires_at;
  self->request(deps.state.shard_for(w.key), local_request, atom::put_v, w)
    .then(
      [=](write_result& written) {
        if (indexes.empty())
          return done(written.ver);
        // The index entries once the object is written: a lookup never
        // finds an entry whose object does not exist yet.
        std::vector<write_request> entries;
        for (auto& [field, value] : indexes) {
          write_request e;
          e.keyspace = state::object_index_keyspace;
          e.key = state::object_index_key(kind, field, value, id);
          e.expires_at = expires_at;
          entries.push_back(std::move(e));
        }
        put_all(std::move(entries),
                [done, ver = written.ver](caf::error err) {
                  if (!err)
                    return done(ver);
                  done(make_error(ec::unavailable,
                                  "the object is written, but not all of "
                                  "its index entries: "
                                    + context_text(err)));
                });
      },
      [done](caf::error& err) { done(std::move(err)); });
}

void objects_state::put_all(std::vector<write_request> writes,
                            fail_fn done) {
  auto each = countdown(writes.size(), std::move(done));
  for (auto& w : writes)
    self->request(deps.state.shard_for(w.key), local_request, atom::put_v, w)
      .then([each](write_result&) { each({}); },
            [each](caf::error& err) { each(std::move(err)); });
}

void objects_state::put(object_put req, promise<object_found> rp) {
  if (auto err = check(req)) {
    rp.deliver(std::move(err));
    return;
  }
  put_attempt(std::move(req), 0, std::move(rp));
}

void objects_state::put_attempt(object_put req, int attempt,
                                promise<object_found> rp, bool absent_lost) {
  auto now = now_ms();
  state::object o;
  o.kind = req.kind;
  o.id = req.id;
  o.value = req.value;
  o.indexes = req.indexes;
  o.created_at = now;
  auto ttl = req.ttl_ms > 0
               ? req.ttl_ms
               : std::min<int64_t>(std::chrono::duration_cast<
                                     std::chrono::milliseconds>(
                                     opts.limits.default_ttl)
                                     .count(),
                                   opts.caps(req.kind).max_ttl_ms);
  o.expires_at = now + ttl;
  auto answer = [rp, o](caf::expected<state::version> ver) mutable {
    if (!ver)
      rp.deliver(std::move(ver.error()));
    else
      rp.deliver(object_found{o, *ver});
  };
  if (req.condition == object_condition::absent) {
    write(o, write_condition::absent, {},
          [answer](caf::expected<state::version> ver) mutable {
            if (!ver && has_code(ver.error(), ec::conflict))
              return answer(make_error(ec::conflict, "the object exists"));
            answer(std::move(ver));
          });
    return;
  }
  // Replacing reads first: a consumed object is never replaced (its state
  // only moves forward), and the write is conditional on what was read.
  read(
    req.kind, req.id,
    [this, req, attempt, rp, o,
     absent_lost](std::optional<object_found> current) mutable {
      auto cas = req.condition == object_condition::version_is;
      if (cas && (!current || current->ver != req.expected)) {
        rp.deliver(current ? make_error(ec::version_mismatch)
                           : make_error(ec::not_found));
        return;
      }
      if (current && current->obj.consumed()) {
        rp.deliver(make_error(ec::already_consumed,
                              std::to_string(current->obj.consumed_at)));
        return;
      }
      if (current)
        o.created_at = current->obj.created_at;
      auto old_indexes = current ? current->obj.indexes
                                 : std::map<std::string, std::string>{};
      write(
        o, current ? write_condition::version_is : write_condition::absent,
        current ? current->ver : state::version{},
        [this, req, attempt, rp, o, old_indexes, cas, absent_lost,
         had = current.has_value()](caf::expected<state::version> ver) mutable {
          if (!ver && (has_code(ver.error(), ec::conflict)
                       || has_code(ver.error(), ec::not_found))) {
            // Another write came between the read and this one.
            if (cas) {
              rp.deliver(make_error(ec::version_mismatch));
              return;
            }
            // Twice nothing to read and yet a record: the id was destroyed
            // and its tombstone lives (a racing create would have been
            // found the second time).
            if (!had && absent_lost) {
              rp.deliver(make_error(ec::conflict,
                                    "the object was destroyed; its id cannot "
                                    "be used again before it would have "
                                    "expired"));
              return;
            }
            if (attempt + 1 >= max_object_attempts) {
              rp.deliver(contended());
              return;
            }
            return put_attempt(std::move(req), attempt + 1, std::move(rp),
                               !had);
          }
          if (ver)
            for (auto& [field, value] : old_indexes) {
              auto i = o.indexes.find(field);
              if (i != o.indexes.end() && i->second == value)
                continue;
              // An entry the object no longer has.
              write_request gone;
              gone.keyspace = state::object_index_keyspace;
              gone.key = state::object_index_key(o.kind, field, value, o.id);
              gone.tombstone = true;
              gone.expires_at = o.expires_at;
              self
                ->request(deps.state.shard_for(gone.key), local_request,
                          atom::put_v, gone)
                .then([](write_result&) {}, [](caf::error&) {});
            }
          if (!ver)
            rp.deliver(std::move(ver.error()));
          else
            rp.deliver(object_found{o, *ver});
        });
    },
    [rp](caf::error err) mutable { rp.deliver(std::move(err)); });
}

// -- consuming ----------------------------------------------------------------

void objects_state::consume(std::string kind, std::string id, std::string key,
                            promise<object_found> rp) {
  if (!caller_kind(kind) || !state::valid_object_id(id)) {
    rp.deliver(make_error(ec::not_found));
    return;
  }
  if (!key.empty() && !state::valid_object_id(key)) {
    rp.deliver(invalid("an idempotency key is 1 to 512 bytes without "
                       "control characters"));
    return;
  }
  consume_attempt(std::move(kind), std::move(id), std::move(key), 0,
                  [rp](caf::expected<object_found> r) mutable {
                    if (r)
                      rp.deliver(std::move(*r));
                    else
                      rp.deliver(std::move(r.error()));
                  });
}

void objects_state::consume_attempt(std::string kind, std::string id,
                                    std::string key, int attempt,
                                    consumed_fn done) {
  read(
    kind, id,
    [this, kind, id, key, attempt,
     done](std::optional<object_found> found) mutable {
      if (!found)
        return done(make_error(ec::not_found));
      auto& o = found->obj;
      if (o.consumed()) {
        // The winner asking again (its answer was lost) gets it again.
        if (!key.empty() && key == o.consume_key)
          return done(std::move(*found));
        return done(make_error(ec::already_consumed,
                               std::to_string(o.consumed_at)));
      }
      o.consumed_at = std::max<int64_t>(now_ms(), 1);
      o.consume_key = key;
      // A decision: of racing consumes of the same version exactly one is
      // written; the others re-read and find it consumed.
      write(o, write_condition::version_is, found->ver,
            [this, kind, id, key, attempt, done,
             o](caf::expected<state::version> ver) mutable {
              if (ver)
                return done(object_found{o, *ver});
              if (!has_code(ver.error(), ec::conflict)
                  && !has_code(ver.error(), ec::not_found))
                return done(std::move(ver.error()));
              if (attempt + 1 >= max_object_attempts)
                return done(contended());
              consume_attempt(std::move(kind), std::move(id), std::move(key),
                              attempt + 1, std::move(done));
            });
    },
    [done](caf::error err) mutable { done(std::move(err)); });
}

// -- destroying ---------------------------------------------------------------

void objects_state::end(const state::object& o, fail_fn done) {
  // The tombstone lives as long as the object would have: a replica that
  // missed it cannot bring the object back meanwhile.
  auto until = std::max(o.expires_at, now_ms() + 1000);
  std::vector<write_request> writes;
  write_request w;
  w.keyspace = state::objects_keyspace;
  w.key = state::object_key(o.kind, o.id);
  w.tombstone = true;
  w.expires_at = until;
  writes.push_back(w);
  for (auto& [field, value] : o.indexes) {
    write_request e;
    e.keyspace = state::object_index_keyspace;
    e.key = state::object_index_key(o.kind, field, value, o.id);
    e.tombstone = true;
    e.expires_at = until;
    writes.push_back(std::move(e));
  }
  put_all(std::move(writes), std::move(done));
}

void objects_state::destroy(std::string kind, std::string id,
                            promise<atom::ok> rp) {
  if (!caller_kind(kind) || !state::valid_object_id(id)) {
    rp.deliver(make_error(ec::not_found));
    return;
  }
  read(
    kind, id,
    [this, rp](std::optional<object_found> found) mutable {
      if (!found) {
        rp.deliver(make_error(ec::not_found));
        return;
      }
      end(found->obj, [rp](caf::error err) mutable {
        if (err)
          rp.deliver(std::move(err));
        else
          rp.deliver(atom::ok_v);
      });
    },
    [rp](caf::error err) mutable { rp.deliver(std::move(err)); });
}

void objects_state::destroy_all(object_lookup q, promise<uint64_t> rp) {
  // Find, then end each: an object written after the lookup stays (as
  // with any destroy that runs before a write).
  lookup(
    std::move(q),
    [this, rp](std::vector<object_found> objects) mutable {
      if (objects.empty()) {
        rp.deliver(uint64_t{0});
        return;
      }
      auto count = static_cast<uint64_t>(objects.size());
      auto each = countdown(objects.size(), [rp, count](caf::error err) mutable {
        if (err)
          rp.deliver(std::move(err));
        else
          rp.deliver(count);
      });
      for (auto& f : objects)
        end(f.obj, each);
    },
    [rp](caf::error err) mutable { rp.deliver(std::move(err)); });
}

// -- the replay registry ------------------------------------------------------

void objects_state::check_replay(replay_check c,
                                 promise<replay_verdict> rp) {
  if (!state::valid_object_kind(c.scope))
    return void(rp.deliver(invalid("a scope is 1 to 64 of A-Z a-z 0-9 _ - .")));
  if (!state::valid_object_id(c.iss) || !state::valid_object_id(c.jti))
    return void(rp.deliver(
      invalid("iss and jti are 1 to 512 bytes without control characters")));
  auto now = now_ms();
  auto max_ttl
    = std::chrono::duration_cast<std::chrono::milliseconds>(opts.limits.max_ttl)
        .count();
  constexpr int64_t max_exp = int64_t{1} << 40; // s, far beyond any token
  if (c.exp <= 0 || c.exp > max_exp || c.exp * 1000 <= now)
    return void(rp.deliver(invalid("exp must be a time in the future")));
  // One id per (scope, iss, jti), of bounded size whatever their lengths;
  // the newline cannot occur in either, so no two pairs share a digest
  // input.
  auto digest = sha256(c.iss + "\n" + c.jti);
  object_put put;
  put.kind = replay_kind;
  put.id = c.scope + ":"
           + base64url_encode({reinterpret_cast<const char*>(digest.data()),
                               digest.size()});
  put.value = "{}";
  put.ttl_ms = std::min(c.exp * 1000 - now, max_ttl);
  put.condition = object_condition::absent;
  state::object o;
  o.kind = put.kind;
  o.id = put.id;
  o.value = put.value;
  o.created_at = now;
  o.expires_at = now + put.ttl_ms;
  // Registered if absent, decided by the partition's primary owner: of two
  // nodes that see the same value at once, exactly one gets "first use".
  write(o, write_condition::absent, {},
        [this, rp, o](caf::expected<state::version> ver) mutable {
          if (ver) {
            rp.deliver(replay_verdict{false, o.created_at});
            return;
          }
          if (!has_code(ver.error(), ec::conflict)) {
            rp.deliver(std::move(ver.error()));
            return;
          }
          read(
            o.kind, o.id,
            [rp](std::optional<object_found> seen) mutable {
              rp.deliver(
                replay_verdict{true, seen ? seen->obj.created_at : 0});
            },
            [rp](caf::error err) mutable { rp.deliver(std::move(err)); });
        });
}

// -- pushed authorization requests --------------------------------------------

void objects_state::push_par(par_push req, promise<par_pushed> rp) {
  if (!state::valid_object_id(req.client_id))
    return void(rp.deliver(invalid(
      "client_id is 1 to 512 bytes without control characters")));
  if (!is_utf8(req.params))
    return void(rp.deliver(invalid("the parameters are not UTF-8 text")));
  if (req.params.size() > opts.limits.max_value_bytes)
    return void(rp.deliver(
      invalid("the parameters are larger than objects.max_value_bytes ("
              + std::to_string(opts.limits.max_value_bytes) + ")")));
  if (req.ttl_ms < 0 || req.ttl_ms > state::par_max_ttl_ms)
    return void(rp.deliver(invalid("ttl must be from 1 to 600 s")));
  auto now = now_ms();
  auto ttl = req.ttl_ms > 0 ? req.ttl_ms : state::par_default_ttl_ms;
  state::par_record r{req.client_id, req.params, now + ttl};
  auto uri = state::new_request_uri();
  state::object o;
  o.kind = state::par_kind;
  o.id = *state::par_id(uri);
  o.value = state::encode_par(r);
  o.created_at = now;
  // Kept past its expiry for a while, so that a late redemption is told
  // "expired" rather than "not found".
  o.expires_at = r.expires_at + state::par_expired_grace_ms;
  write(o, write_condition::absent, {},
        [rp, uri, expires_at = r.expires_at](
          caf::expected<state::version> ver) mutable {
          if (!ver)
            rp.deliver(std::move(ver.error()));
          else
            rp.deliver(par_pushed{uri, expires_at});
        });
}

void objects_state::redeem_par(par_redeem req, promise<par_request> rp) {
  auto id = state::par_id(req.request_uri);
  if (!id)
    return void(rp.deliver(
      invalid("request_uri is not one this service handed out")));
  if (!state::valid_object_id(req.client_id))
    return void(rp.deliver(invalid(
      "client_id is 1 to 512 bytes without control characters")));
  // Checked before it is consumed: another client presenting it (a
  // request_uri that leaked) does not use it up.
  read(
    state::par_kind, *id,
    [this, req, id = *id, rp](std::optional<object_found> found) mutable {
      std::optional<state::par_record> r;
      if (found)
        r = state::decode_par(found->obj.value);
      caf::error refused;
      if (!r)
        refused = make_error(ec::not_found);
      else if (r->client_id != req.client_id)
        refused = make_error(ec::client_mismatch);
      else if (now_ms() >= r->expires_at)
        refused = make_error(ec::expired, std::to_string(r->expires_at));
      else if (found->obj.consumed())
        refused = make_error(ec::already_consumed,
                             std::to_string(found->obj.consumed_at));
      if (refused) {
        rp.deliver(std::move(refused));
        return;
      }
      consume_attempt(state::par_kind, id, {}, 0,
                      [rp, r = *r](caf::expected<object_found> c) mutable {
                        if (c)
                          rp.deliver(
                            par_request{r.client_id, r.params, r.expires_at});
                        else
                          rp.deliver(std::move(c.error()));
                      });
    },
    [rp](caf::error err) mutable { rp.deliver(std::move(err)); });
}

// -- the actor ----------------------------------------------------------------

objects_actor::behavior_type objects_service(objects_pointer self,
                                             objects_options opts,
                                             objects_deps deps) {
  auto& s = self->state;
  s.self = self;
  s.opts = std::move(opts);
  s.deps = std::move(deps);
  return {
    [self, &s](atom::put, object_put& req) {
      auto rp = self->make_response_promise<object_found>();
      s.put(std::move(req), rp);
      return rp;
    },
    [self, &s](atom::get, std::string& kind, std::string& id) {
      auto rp = self->make_response_promise<object_found>();
      s.get(std::move(kind), std::move(id), rp);
      return rp;
    },
    [self, &s](atom::consume, std::string& kind, std::string& id,
               std::string& key) {
      auto rp = self->make_response_promise<object_found>();
      s.consume(std::move(kind), std::move(id), std::move(key), rp);
      return rp;
    },
    [self, &s](atom::remove, std::string& kind, std::string& id) {
      auto rp = self->make_response_promise<atom::ok>();
      s.destroy(std::move(kind), std::move(id), rp);
      return rp;
    },
    [self, &s](atom::list, object_lookup& q) {
      auto rp = self->make_response_promise<std::vector<object_found>>();
      s.find(std::move(q), rp);
      return rp;
    },
    [self, &s](atom::remove, object_lookup& q) {
      auto rp = self->make_response_promise<uint64_t>();
      s.destroy_all(std::move(q), rp);
      return rp;
    },
    [self, &s](atom::check, replay_check& c) {
      auto rp = self->make_response_promise<replay_verdict>();
      s.check_replay(std::move(c), rp);
      return rp;
    },
    [self, &s](atom::push, par_push& req) {
      auto rp = self->make_response_promise<par_pushed>();
      s.push_par(std::move(req), rp);
      return rp;
    },
    [self, &s](atom::redeem, par_redeem& req) {
      auto rp = self->make_response_promise<par_request>();
      s.redeem_par(std::move(req), rp);
      return rp;
    },
  };
}

std::vector<objects_actor> spawn_objects(caf::actor_system& sys,
                                         const objects_options& opts,
                                         const objects_deps& deps,
                                         size_t count) {
  std::vector<objects_actor> out;
  for (size_t i = 0; i < std::max<size_t>(count, 1); ++i)
    out.push_back(sys.spawn(objects_service, opts, deps));
  return out;
}

}  // namespace keymesh
