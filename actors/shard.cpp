#include "actors/shard.hpp"

#include <algorithm>
#include <random>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <spdlog/spdlog.h>

#include "actors/error.hpp"
#include "state/attempts.hpp"
#include "state/secret_ring.hpp"

namespace keymesh {


// -- metrics --------------------------------------------------------------------

void state_metrics::publish(
  uint32_t partition, std::map<std::string, state::keyspace_stats> stats) {
  std::lock_guard<std::mutex> guard{mutex_};
  if (partition >= per_partition_.size())
    per_partition_.resize(partition + 1);
  per_partition_[partition] = std::move(stats);
}

std::map<std::string, state::keyspace_stats> state_metrics::totals() const {
  std::lock_guard<std::mutex> guard{mutex_};
  std::map<std::string, state::keyspace_stats> out;
  for (auto& part : per_partition_)
    for (auto& [keyspace, s] : part) {
      auto& t = out[keyspace];
      t.records += s.records;
      t.tombstones += s.tombstones;
      t.bytes += s.bytes;
    }
  return out;
}

// -- state ----------------------------------------------------------------------

void shard_state::configure(shard_options opts) {
  opts_ = std::move(opts);
  data = state::partition{opts_.partition};
  auto now = now_ms();
  for (auto& r : opts_.initial) {
    opts_.clock->observe(r.rec.ver.stamp);
    data.merge(r.keyspace, r.key, std::move(r.rec), now);
  }
  opts_.initial.clear();
  opts_.initial.shrink_to_fit();
  if (!opts_.metrics)
    opts_.metrics = std::make_shared<state_metrics>(opts_.partition + 1);
}

bool shard_state::is_owner() const {
  auto& o = view.owners;
  return std::find(o.begin(), o.end(), opts_.instance_id) != o.end();
}

bool shard_state::is_primary() const {
  return !view.owners.empty() && view.owners.front() == opts_.instance_id;
}

std::vector<std::string> shard_state::co_owners() const {
  std::vector<std::string> out;
  for (auto& id : view.owners)
    if (id != opts_.instance_id)
      out.push_back(id);
  return out;
}

shard_actor shard_state::shard_of(const std::string& id) const {
  for (size_t i = 0; i < view.members.size() && i < view.shards.size(); ++i)
    if (view.members[i] == id)
      return view.shards[i];
  return shard_actor{};
}

ec shard_state::check(const write_request& write) const {
  auto current = data.find(write.keyspace, write.key, now_ms());
  switch (write.condition) {
    case write_condition::always:
      return ec::none;
    case write_condition::exists:
      return current && !current->tombstone ? ec::none : ec::not_found;
    case write_condition::absent:
      // A tombstone counts: a deleted key is not created again while its
      // tombstone lives.
      return current ? ec::conflict : ec::none;
    case write_condition::version_is:
      if (!current || current->tombstone)
        return ec::not_found;
      return current->ver == write.expected ? ec::none : ec::conflict;
  }
  return ec::invalid_argument;
}

caf::error shard_state::decision_fence() const {
  if (opts_.joined && !opts_.joined->load())
    return make_error(ec::unavailable,
                      "this node has not tried to reach its cluster yet; it "
                      "decides nothing before");
  auto live = view.members.size();
  if (live * 2 <= view.known)
    return make_error(ec::unavailable,
                      "this node sees " + std::to_string(live) + " of the "
                        + std::to_string(view.known)
                        + " members it knows: a minority decides nothing");
  size_t needed = view.replicas == 0
                    ? live
                    : std::min<size_t>(view.replicas, view.known);
  if (view.owners.size() < needed)
    return make_error(ec::unavailable,
                      "partition " + std::to_string(opts_.partition) + " has "
                        + std::to_string(view.owners.size())
                        + " live owner(s); a decision needs "
                        + std::to_string(needed));
  return {};
}

bool shard_state::admits(const decide_request& d,
                         const state::record* current) {
  if (!current)
    return true;
  if (current->ver == d.rec.ver)
    return true; // applied before (a retried request)
  switch (d.condition) {
    case write_condition::always:
      return true;
    case write_condition::exists:
      return !current->tombstone || current->ver < d.expected;
    case write_condition::absent:
      return false;
    case write_condition::version_is:
      return current->ver <= d.expected;
  }
  return false;
}

size_t shard_state::merge_all(std::vector<state::keyed_record> records) {
  size_t changed = 0;
  auto now = now_ms();
  for (auto& r : records) {
    opts_.clock->observe(r.rec.ver.stamp);
    auto out = data.merge(r.keyspace, r.key, std::move(r.rec), now);
    if (out == state::partition::outcome::inserted
        || out == state::partition::outcome::replaced)
      ++changed;
  }
  return changed;
}

sync_reply shard_state::answer_sync(const state::digest_vector& theirs) const {
  sync_reply reply;
  reply.digests = data.digests();
  state::partition_snapshot snap;
  snap.partition = opts_.partition;
  size_t bytes = 0;
  for (auto bucket : data.differing(theirs)) {
    if (bytes >= opts_.max_transfer_bytes) {
      reply.more = true;
      break;
    }
    for (auto& r : data.export_records({bucket})) {
      bytes += r.key.size() + r.rec.value.size() + r.keyspace.size() + 32;
      snap.records.push_back(std::move(r));
    }
  }
  if (!snap.records.empty())
    reply.snapshot = state::encode_snapshot(snap);
  return reply;
}

// -- actor ----------------------------------------------------------------------

namespace {

constexpr uint32_t max_hops = 2;
/// Requests that may wait behind a decision on one key.
constexpr size_t max_waiting_decisions = 1024;
constexpr int max_sync_rounds = 1000;

void schedule_tick(shard_pointer self) {
  self->delayed_send(self, self->state.options().tick_interval, atom::tick_v,
                     ++self->state.timer_id);
}

/// Where a read or scan of a partition this node does not own goes: the
/// first owner whose shard is known (the primary, normally).
shard_actor forward_target(shard_pointer self) {
  auto& st = self->state;
  for (auto& id : st.view.owners)
    if (id != st.options().instance_id)
      if (auto s = st.shard_of(id))
        return s;
  return shard_actor{};
}

template <class Result, class Request, class Atom>
void forward(shard_pointer self, Atom op, Request req,
             caf::typed_response_promise<Result> rp, shard_actor target) {
  auto& st = self->state;
  if (!target || req.hops >= max_hops) {
    rp.deliver(make_error(ec::unavailable,
                          "no owner of partition "
                            + std::to_string(st.options().partition)
                            + " is reachable"));
    return;
  }
  ++req.hops;
  st.options().metrics->forwarded.fetch_add(1, std::memory_order_relaxed);
  auto partition = st.options().partition;
  self->request(target, st.options().peer_timeout, op, std::move(req))
    .then([rp](Result& r) mutable { rp.deliver(std::move(r)); },
          [rp, partition, self](caf::error& err) mutable {
            // The owner's own answer (not found, a conflict ...) and a
            // timeout go back as they are; an owner that is gone (its
            // node died: CAF answers request_receiver_down) or a link
            // that broke is the partition being unavailable for now.
            if (err.category() == error_category
                || err == caf::sec::request_timeout) {
              rp.deliver(std::move(err));
              return;
            }
            rp.deliver(make_error(
              ec::unavailable, "the owner of partition "
                                 + std::to_string(partition)
                                 + " did not answer: "
                                 + self->system().render(err)));
          });
}

void park(shard_pointer self, std::function<void()> op) {
  self->state.parked.push_back(std::move(op));
}

void do_get(shard_pointer self, read_request req,
            caf::typed_response_promise<read_result> rp) {
  auto& st = self->state;
  if (!st.is_owner())
    return forward(self, atom::get_v, std::move(req), rp, forward_target(self));
  if (!st.ready)
    return park(self, [=] { do_get(self, req, rp); });
  read_result out;
  if (auto r = st.data.find(req.keyspace, req.key, st.now_ms())) {
    out.found = true;
    out.rec = *r;
  }
  rp.deliver(std::move(out));
}

void do_scan(shard_pointer self, scan_request req,
             caf::typed_response_promise<record_list> rp) {
  auto& st = self->state;
  if (!st.is_owner())
    return forward(self, atom::scan_v, std::move(req), rp,
                   forward_target(self));
  if (!st.ready)
    return park(self, [=] { do_scan(self, req, rp); });
  rp.deliver(st.data.scan(req.keyspace, req.prefix, st.now_ms(),
                          std::max<uint32_t>(req.limit, 1)));
}

void finish_write(shard_pointer self, uint64_t id) {
  auto& st = self->state;
  auto i = st.writes.find(id);
  if (i == st.writes.end())
    return;
  auto& w = i->second;
  auto confirmed = w.result.copies - 1; // the coordinator's own copy
  if (confirmed >= w.needed) {
    auto done = std::move(w.done);
    auto result = w.result;
    st.writes.erase(i);
    done(std::move(result));
  } else if (confirmed + w.waiting.size() < w.needed) {
    auto done = std::move(w.done);
    auto needed = w.needed;
    st.writes.erase(i);
    done(make_error(ec::unavailable,
                    std::to_string(needed - confirmed)
                      + " owner(s) did not confirm the write in time"));
  }
}

/// Sends RECORDS to peer ID unless it is too far behind; returns whether
/// the request went out. ON_DONE runs with the outcome.
bool send_records(shard_pointer self, const std::string& id,
                  record_list records, std::function<void(bool)> on_done) {
  auto& st = self->state;
  auto target = st.shard_of(id);
  if (!target)
    return false;
  auto& n = st.inflight[id];
  if (n >= st.options().max_inflight) {
    st.options().metrics->replication_cutoffs.fetch_add(
      1, std::memory_order_relaxed);
    return false;
  }
  ++n;
  self
    ->request(target, st.options().peer_timeout, atom::replicate_v,
              std::move(records))
    .then(
      [=](atom::ok) {
        --self->state.inflight[id];
        if (on_done)
          on_done(true);
      },
      [=](caf::error&) {
        --self->state.inflight[id];
        self->state.options().metrics->replication_failures.fetch_add(
          1, std::memory_order_relaxed);
        if (on_done)
          on_done(false);
      });
  return true;
}

/// Applies REC to KEYSPACE/KEY here (this node coordinates: it is the
/// primary) and replicates it to the other owners; DONE runs once the
/// write consistency is met or cannot be.
void coordinate_write(shard_pointer self, const std::string& keyspace,
                      const std::string& key, state::record rec,
                      std::function<void(caf::expected<write_result>)> done) {
  auto& st = self->state;
  rec.ver = st.options().clock->now();
  st.data.merge(keyspace, key, rec, st.now_ms());
  auto others = st.co_owners();
  auto id = ++st.next_write;
  auto& w = st.writes[id];
  w.done = std::move(done);
  w.result.ver = rec.ver;
  w.result.copies = 1;
  w.result.owners = static_cast<uint32_t>(others.size() + 1);
  record_list batch{state::keyed_record{keyspace, key, std::move(rec)}};
  for (auto& peer : others) {
    bool sent = send_records(self, peer, batch, [=](bool ok) {
      auto i = self->state.writes.find(id);
      if (i == self->state.writes.end())
        return;
      i->second.waiting.erase(peer);
      if (ok)
        ++i->second.result.copies;
      finish_write(self, id);
    });
    if (sent)
      w.waiting.insert(peer);
  }
  auto owners = others.size() + 1;
  switch (st.options().consistency) {
    case write_consistency::all:
      w.needed = static_cast<uint32_t>(w.waiting.size());
      break;
    case write_consistency::quorum:
      w.needed = static_cast<uint32_t>(owners / 2); // plus this copy
      break;
    case write_consistency::one:
      w.needed = 0;
      break;
  }
  finish_write(self, id);
}

enum class route { here, forwarded, not_ready };

/// Whether REQ is coordinated here, went on to the primary, or has to wait
/// for the handoff.
template <class Result, class Request, class Atom>
route to_primary(shard_pointer self, Atom op, Request& req,
                 caf::typed_response_promise<Result>& rp) {
  auto& st = self->state;
  if (!st.is_primary()) {
    // A request that bounced between nodes with different views is
    // coordinated by any owner rather than refused.
    if (!(st.is_owner() && req.hops >= max_hops)) {
      shard_actor primary;
      if (!st.view.owners.empty())
        primary = st.shard_of(st.view.owners.front());
      forward(self, op, std::move(req), rp, primary);
      return route::forwarded;
    }
  }
  return st.ready ? route::here : route::not_ready;
}

std::string decision_lock(const std::string& keyspace, const std::string& key) {
  std::string out;
  out.reserve(keyspace.size() + key.size() + 1);
  out += keyspace;
  out.push_back('\0');
  out += key;
  return out;
}

void do_put(shard_pointer self, write_request req,
            caf::typed_response_promise<write_result> rp);

/// Ends this node's decision on LOCK and runs the requests that waited.
void settle_decision(shard_pointer self, const std::string& lock) {
  auto& st = self->state;
  auto i = st.deciding.find(lock);
  if (i == st.deciding.end())
    return;
  auto waiting = std::move(i->second);
  st.deciding.erase(i);
  for (auto& op : waiting)
    op();
}

/// Decides REQ (conditional, this node is its primary and ready): the
/// condition is checked here and by every other owner against its own
/// copy, and the record is applied here only once all of them applied it.
/// So no decision is acknowledged that an owner with a newer copy would
/// contradict, and of two nodes deciding the same key with different views
/// (a stale primary and a new one) the owner they share settles which one
/// wins. A node in a minority, or with fewer live owners than the
/// replication factor, decides nothing (ec::unavailable).
void decide(shard_pointer self, write_request req,
            caf::typed_response_promise<write_result> rp) {
  auto& st = self->state;
  auto& m = *st.options().metrics;
  if (auto err = st.decision_fence()) {
    m.decisions_fenced.fetch_add(1, std::memory_order_relaxed);
    rp.deliver(std::move(err));
    return;
  }
  auto lock = decision_lock(req.keyspace, req.key);
  if (auto i = st.deciding.find(lock); i != st.deciding.end()) {
    // One decision per key at a time: this one runs once the first
    // settled, against what it left (a bounded queue: a hot key with a
    // slow owner answers "try again" rather than pile up).
    if (i->second.size() >= max_waiting_decisions) {
      rp.deliver(make_error(ec::unavailable,
                            "too many decisions wait on the same key"));
      return;
    }
    i->second.push_back([=] { do_put(self, req, rp); });
    return;
  }
  if (auto why = st.check(req); why != ec::none) {
    rp.deliver(make_error(why));
    return;
  }
  if (st.view.owners.size() == 1) {
    // The only owner (a single node): decided here, at once.
    state::record rec;
    rec.value = std::move(req.value);
    rec.expires_at = req.expires_at;
    rec.tombstone = req.tombstone;
    rec.ver = st.options().clock->now();
    st.data.merge(req.keyspace, req.key, rec, st.now_ms());
    rp.deliver(write_result{rec.ver, 1, 1});
    return;
  }
  st.deciding[lock];
  auto d = std::make_shared<decide_request>();
  d->keyspace = std::move(req.keyspace);
  d->key = std::move(req.key);
  d->condition = req.condition;
  d->expected = req.expected;
  d->rec.value = std::move(req.value);
  d->rec.expires_at = req.expires_at;
  d->rec.tombstone = req.tombstone;
  d->rec.ver = st.options().clock->now();
  auto others = st.co_owners();
  struct tally {
    size_t pending = 0;
    size_t accepted = 0;
    bool busy = false;
    bool failed = false;
    std::optional<state::record> newest;
  };
  auto t = std::make_shared<tally>();
  t->pending = others.size();
  auto owners = static_cast<uint32_t>(others.size() + 1);
  auto settle = [self, d, t, rp, lock, owners]() mutable {
    auto& st = self->state;
    auto& m = *st.options().metrics;
    auto partition = std::to_string(st.options().partition);
    if (t->newest) {
      // An owner holds a newer copy: catch up with it, and when another
      // owner applied this decision already, outrank it with that copy.
      m.decisions_outdated.fetch_add(1, std::memory_order_relaxed);
      auto newest = *t->newest;
      st.options().clock->observe(newest.ver.stamp);
      st.data.merge(d->keyspace, d->key, newest, st.now_ms());
      if (t->accepted > 0)
        coordinate_write(self, d->keyspace, d->key, std::move(newest),
                         [](caf::expected<write_result>) {});
      rp.deliver(make_error(ec::conflict));
    } else if (t->busy) {
      rp.deliver(make_error(ec::conflict,
                            "another owner is deciding on the same key"));
    } else if (t->failed) {
      rp.deliver(make_error(ec::unavailable,
                            "not every owner of partition " + partition
                              + " confirmed the decision"));
    } else {
      st.data.merge(d->keyspace, d->key, d->rec, st.now_ms());
      rp.deliver(write_result{d->rec.ver, owners, owners});
    }
    settle_decision(self, lock);
  };
  if (others.empty())
    return settle();
  for (auto& peer : others) {
    auto target = st.shard_of(peer);
    if (!target) {
      t->failed = true;
      if (--t->pending == 0)
        settle();
      continue;
    }
    self->request(target, st.options().peer_timeout, atom::decide_v, *d)
      .then(
        [t, settle](decide_reply& r) mutable {
          if (r.accepted)
            ++t->accepted;
          else if (!r.found)
            t->busy = true;
          else if (!t->newest || t->newest->ver < r.current.ver)
            t->newest = std::move(r.current);
          if (--t->pending == 0)
            settle();
        },
        [t, settle](caf::error&) mutable {
          t->failed = true;
          if (--t->pending == 0)
            settle();
        });
  }
}

void do_put(shard_pointer self, write_request req,
            caf::typed_response_promise<write_result> rp) {
  switch (to_primary(self, atom::put_v, req, rp)) {
    case route::forwarded:
      return;
    case route::not_ready:
      return park(self, [=] { do_put(self, req, rp); });
    case route::here:
      break;
  }
  if (req.decide && req.condition != write_condition::always)
    return decide(self, std::move(req), std::move(rp));
  if (auto why = self->state.check(req); why != ec::none) {
    rp.deliver(make_error(why));
    return;
  }
  state::record rec;
  rec.value = std::move(req.value);
  rec.expires_at = req.expires_at;
  rec.tombstone = req.tombstone;
  coordinate_write(self, req.keyspace, req.key, std::move(rec),
                   [rp](caf::expected<write_result> r) mutable {
                     if (r)
                       rp.deliver(std::move(*r));
                     else
                       rp.deliver(std::move(r.error()));
                   });
}

void do_reserve(shard_pointer self, attempt_request req,
                caf::typed_response_promise<attempt_result> rp) {
  switch (to_primary(self, atom::reserve_v, req, rp)) {
    case route::forwarded:
      return;
    case route::not_ready:
      return park(self, [=] { do_reserve(self, req, rp); });
    case route::here:
      break;
  }
  auto& st = self->state;
  auto now = st.now_ms();
  state::attempt_counter current;
  if (auto r = st.data.find(req.keyspace, req.key, now); r && !r->tombstone)
    current = state::decode_attempts(r->value);
  // Bounded, so that no request (from a member, too) overflows the times.
  constexpr int64_t max_span = int64_t{1} << 40; // ms, about 35 years
  auto d = state::reserve_attempt(
    current,
    {std::clamp<int64_t>(req.limit, 1, 1'000'000),
     std::clamp<int64_t>(req.window_ms, 0, max_span),
     std::clamp<int64_t>(req.lockout_ms, 0, max_span)},
    now);
  attempt_result out{d.granted, d.next.count, d.next.locked_until};
  if (!d.granted) {
    rp.deliver(out);
    return;
  }
  // Granted only once the owners hold the count: a primary that dies
  // right after cannot hand the attempt back.
  state::record rec;
  rec.value = state::encode_attempts(d.next);
  rec.expires_at = d.expires_at;
  coordinate_write(self, req.keyspace, req.key, std::move(rec),
                   [rp, out](caf::expected<write_result> r) mutable {
                     if (r)
                       rp.deliver(out);
                     else
                       rp.deliver(std::move(r.error()));
                   });
}

void run_parked(shard_pointer self) {
  auto ops = std::move(self->state.parked);
  self->state.parked.clear();
  for (auto& op : ops)
    op();
}

void report_synced(shard_pointer self) {
  auto& st = self->state;
  if (st.router)
    self->send(caf::actor_cast<router_actor>(st.router), atom::synced_v,
               st.options().partition, st.view.epoch);
}

void become_ready(shard_pointer self) {
  self->state.ready = true;
  report_synced(self);
  run_parked(self);
}

/// Pushes this replica's records of the buckets where PEER differs, in
/// bounded batches.
void push_differences(shard_pointer self, const std::string& peer,
                      const state::digest_vector& theirs) {
  auto& st = self->state;
  auto buckets = st.data.differing(theirs);
  if (buckets.empty())
    return;
  record_list batch;
  size_t bytes = 0;
  for (auto bucket : buckets)
    for (auto& r : st.data.export_records({bucket})) {
      bytes += r.key.size() + r.rec.value.size() + 32;
      batch.push_back(std::move(r));
      if (bytes >= st.options().max_transfer_bytes) {
        send_records(self, peer, std::move(batch), nullptr);
        batch.clear();
        bytes = 0;
      }
    }
  if (!batch.empty())
    send_records(self, peer, std::move(batch), nullptr);
}

/// One sync exchange with PEER: pull what differs, merge, push back what
/// the peer lacks. DONE runs once with whether the pull completed.
void sync_with(shard_pointer self, const std::string& peer, bool handoff,
               int round, std::function<void(bool)> done) {
  auto& st = self->state;
  auto target = st.shard_of(peer);
  if (!target)
    return done(false);
  self
    ->request(target, st.options().peer_timeout * 2, atom::sync_v,
              st.data.digests())
    .then(
      [=](sync_reply& reply) {
        auto& st = self->state;
        size_t changed = 0;
        if (!reply.snapshot.empty()) {
          state::partition_snapshot snap;
          std::string error;
          if (!state::decode_snapshot(reply.snapshot, snap, error)) {
            spdlog::warn("shard {}: bad sync answer from {}: {}",
                         st.options().partition, peer, error);
            return done(false);
          }
          changed = st.merge_all(std::move(snap.records));
        }
        auto& m = *st.options().metrics;
        if (handoff)
          m.handoff_records.fetch_add(changed, std::memory_order_relaxed);
        else
          m.anti_entropy_repairs.fetch_add(changed, std::memory_order_relaxed);
        if (reply.more && round < max_sync_rounds)
          return sync_with(self, peer, handoff, round + 1, done);
        push_differences(self, peer, reply.digests);
        done(true);
      },
      [=](caf::error& err) {
        spdlog::debug("shard {}: sync with {} failed: {}",
                      self->state.options().partition, peer,
                      self->system().render(err));
        done(false);
      });
}

void on_ownership(shard_pointer self, ownership next) {
  auto& st = self->state;
  if (next.epoch <= st.view.epoch && st.view.epoch != 0)
    return;
  auto previous = std::move(st.view);
  st.view = std::move(next);
  auto& me = st.options().instance_id;
  auto live = [&](const std::string& id) {
    return std::find(st.view.members.begin(), st.view.members.end(), id)
           != st.view.members.end();
  };
  // Pending writes no longer wait for owners that left the view.
  std::vector<uint64_t> ids;
  for (auto& [id, w] : st.writes) {
    for (auto i = w.waiting.begin(); i != w.waiting.end();)
      i = live(*i) ? std::next(i) : w.waiting.erase(i);
    if (st.options().consistency == write_consistency::all)
      w.needed = std::min<uint32_t>(
        w.needed, w.result.copies - 1 + static_cast<uint32_t>(w.waiting.size()));
    ids.push_back(id);
  }
  for (auto id : ids)
    finish_write(self, id);
  if (!st.is_owner()) {
    st.ready = false;
    st.syncing.clear();
    if (st.data.size() > 0 && !st.release_at)
      st.release_at = st.options().monotonic() + st.options().release_after;
    run_parked(self); // they forward now
    return;
  }
  st.release_at.reset();
  bool was_owner = std::find(previous.owners.begin(), previous.owners.end(),
                             me)
                   != previous.owners.end();
  // Who may hold records this node lacks: owners that joined the set and,
  // when this node only now became an owner, the previous owners too.
  std::set<std::string> sources;
  for (auto& id : st.view.owners)
    if (id != me
        && std::find(previous.owners.begin(), previous.owners.end(), id)
             == previous.owners.end())
      sources.insert(id);
  if (!was_owner)
    for (auto& id : previous.owners)
      if (id != me && live(id))
        sources.insert(id);
  // A member came back (after a cut or a pause): it, or a co-owner that
  // saw it first, may hold writes taken meanwhile that this node lacks.
  // Exchange with every other co-owner now, not at the next anti-entropy
  // round (this does not hold up serving); after a handoff, once it is
  // done, so that what it brought reaches them too; and once more a tick
  // later.
  auto in_previous = [&](const std::string& id) {
    return std::find(previous.members.begin(), previous.members.end(), id)
           != previous.members.end();
  };
  std::vector<std::string> co_owners;
  for (auto& id : st.view.owners)
    if (id != me && sources.count(id) == 0)
      co_owners.push_back(id);
  auto exchange = [self, co_owners] {
    for (auto& id : co_owners)
      sync_with(self, id, false, 0, [](bool) {});
  };
  bool member_back = !previous.members.empty()
                     && !std::all_of(st.view.members.begin(),
                                     st.view.members.end(), in_previous);
  if (member_back) {
    if (sources.empty())
      exchange();
    // Writes coordinated under the views before this one may still be on
    // their way to the owners of those views: one more round a tick after
    // the view settled takes them in.
    auto soon = st.options().monotonic() + st.options().tick_interval;
    st.next_anti_entropy = std::min(st.next_anti_entropy, soon);
  }
  st.syncing = sources;
  if (sources.empty()) {
    if (st.ready)
      report_synced(self);
    else
      become_ready(self);
    return;
  }
  st.ready = false;
  st.options().metrics->handoffs.fetch_add(1, std::memory_order_relaxed);
  auto epoch = st.view.epoch;
  for (auto& peer : sources)
    sync_with(self, peer, true, 0, [=](bool ok) {
      auto& st = self->state;
      if (st.view.epoch != epoch)
        return;
      if (!ok) {
        st.options().metrics->handoff_failures.fetch_add(
          1, std::memory_order_relaxed);
        spdlog::warn("shard {}: handoff from {} did not complete; serving "
                     "anyway, anti-entropy repairs the rest",
                     st.options().partition, peer);
      }
      st.syncing.erase(peer);
      if (st.syncing.empty() && !st.ready) {
        become_ready(self);
        exchange();
      }
    });
}

void on_tick(shard_pointer self) {
  auto& st = self->state;
  auto& m = *st.options().metrics;
  state::partition::expired_fn expired;
  if (st.options().on_session_expired && st.is_primary())
    expired = [&st](const std::string& keyspace, const std::string& key,
                    const state::record& rec) {
      if (keyspace == state::sessions_keyspace)
        st.options().on_session_expired(key, rec.value);
    };
  if (auto n = st.data.purge(st.now_ms(), st.options().purge_budget,
                             expired))
    m.purged.fetch_add(n, std::memory_order_relaxed);
  auto now = st.options().monotonic();
  if (st.release_at && now >= *st.release_at) {
    st.release_at.reset();
    if (!st.is_owner())
      st.data.clear();
  }
  if (st.is_owner() && st.ready && now >= st.next_anti_entropy) {
    st.next_anti_entropy = now + st.options().anti_entropy_interval;
    auto peers = st.co_owners();
    if (!peers.empty())
      m.anti_entropy_rounds.fetch_add(1, std::memory_order_relaxed);
    for (auto& peer : peers)
      sync_with(self, peer, false, 0, [](bool) {});
  }
  m.publish(st.options().partition, st.data.stats());
}

/// From this node's own actors (the router, the node, this shard's timer).
bool here(shard_pointer self) {
  return classify_sender(self, nullptr) == sender_kind::local;
}

/// From this node or an admitted member (reads, writes, replication).
bool member_or_here(shard_pointer self) {
  return classify_sender(self, self->state.options().admitted.get())
         != sender_kind::stranger;
}

caf::error refused() {
  return make_error(ec::refused, "not an admitted cluster member");
}

} // namespace

shard_actor::behavior_type shard(shard_pointer self, shard_options opts) {
  self->state.configure(std::move(opts));
  auto& st = self->state;
  self->set_default_handler(caf::print_and_drop);
  // Spread the shards' anti-entropy rounds over the interval.
  std::minstd_rand rng{st.options().random_seed != 0
                         ? st.options().random_seed
                         : std::random_device{}()};
  auto interval = st.options().anti_entropy_interval.count();
  st.next_anti_entropy
    = st.options().monotonic()
      + std::chrono::milliseconds{interval > 0 ? rng() % interval : 0};
  st.options().metrics->publish(st.options().partition, st.data.stats());
  // The first tick at a random point of the interval: the shards' purges
  // and statistics then never all run at the same instant.
  auto tick = st.options().tick_interval.count();
  self->delayed_send(self,
                     std::chrono::milliseconds{tick > 0 ? rng() % tick : 0},
                     atom::tick_v, ++st.timer_id);
  return {
    [=](atom::get, read_request& req) -> caf::result<read_result> {
      if (!member_or_here(self))
        return refused();
      auto rp = self->make_response_promise<read_result>();
      do_get(self, std::move(req), rp);
      return rp;
    },
    [=](atom::put, write_request& req) -> caf::result<write_result> {
      if (!member_or_here(self))
        return refused();
      auto rp = self->make_response_promise<write_result>();
      do_put(self, std::move(req), rp);
      return rp;
    },
    [=](atom::reserve, attempt_request& req) -> caf::result<attempt_result> {
      if (!member_or_here(self))
        return refused();
      auto rp = self->make_response_promise<attempt_result>();
      do_reserve(self, std::move(req), rp);
      return rp;
    },
    [=](atom::scan, scan_request& req) -> caf::result<record_list> {
      if (!member_or_here(self))
        return refused();
      auto rp = self->make_response_promise<record_list>();
      do_scan(self, std::move(req), rp);
      return rp;
    },
    [=](atom::replicate, record_list& records) -> caf::result<atom::ok> {
      if (!member_or_here(self))
        return refused();
      self->state.merge_all(std::move(records));
      return atom::ok_v;
    },
    [=](atom::decide, decide_request& d) -> caf::result<decide_reply> {
      if (!member_or_here(self))
        return refused();
      auto& st = self->state;
      if (!st.is_owner() || !st.ready)
        return make_error(ec::unavailable,
                          "this node does not serve partition "
                            + std::to_string(st.options().partition)
                            + " (yet)");
      decide_reply out;
      if (st.deciding.count(decision_lock(d.keyspace, d.key)) > 0)
        return out; // busy with a decision of its own on the key
      // One lookup: the record may expire between two.
      auto current = st.data.find(d.keyspace, d.key, st.now_ms());
      if (!shard_state::admits(d, current)) {
        out.found = true;
        out.current = *current; // admits() refuses only an existing copy
        return out;
      }
      st.options().clock->observe(d.rec.ver.stamp);
      st.data.merge(d.keyspace, d.key, std::move(d.rec), st.now_ms());
      out.accepted = true;
      return out;
    },
    [=](atom::sync, state::digest_vector& theirs) -> caf::result<sync_reply> {
      if (!member_or_here(self))
        return refused();
      return self->state.answer_sync(theirs);
    },
    [=](atom::owners, ownership& next) {
      if (!here(self))
        return;
      self->state.router = self->current_sender();
      on_ownership(self, std::move(next));
    },
    [=](atom::snapshot) -> caf::result<std::string> {
      if (!here(self))
        return refused();
      state::partition_snapshot snap;
      snap.partition = self->state.options().partition;
      snap.records = self->state.data.export_records();
      // The secret rings never reach the snapshot file in the clear (the
      // database keeps them sealed).
      snap.records.erase(
        std::remove_if(snap.records.begin(), snap.records.end(),
                       [](const state::keyed_record& r) {
                         return r.keyspace == state::secrets_keyspace;
                       }),
        snap.records.end());
      return state::encode_snapshot(snap);
    },
    [=](atom::tick, uint64_t id) {
      if (id != self->state.timer_id || !here(self))
        return;
      on_tick(self);
      schedule_tick(self);
    },
  };
}

shard_actor spawn_shard(caf::actor_system& sys, shard_options opts) {
  return sys.spawn(shard, std::move(opts));
}

} // namespace keymesh
