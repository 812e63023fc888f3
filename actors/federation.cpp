#include "actors/federation.hpp"

#include <algorithm>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "common/digest.hpp"

namespace keymesh {

namespace {

/// Stamps of stored snapshots, process-wide, so that a thread's cache can
/// never mistake one slot's snapshot for another's.
std::atomic<uint64_t> next_snapshot_stamp{1};

} // namespace

std::shared_ptr<const key_snapshot> key_snapshot_slot::load() const {
  struct cached {
    uint64_t stamp = 0;
    std::shared_ptr<const key_snapshot> snapshot;
  };
  thread_local cached last;
  auto stamp = stamp_.load(std::memory_order_acquire);
  if (stamp == 0)
    return nullptr;
  if (stamp != last.stamp) {
    std::lock_guard<std::mutex> guard{mutex_};
    last.snapshot = current_;
    last.stamp = stamp_.load(std::memory_order_relaxed);
  }
  return last.snapshot;
}

void key_snapshot_slot::store(std::shared_ptr<const key_snapshot> next) {
  std::lock_guard<std::mutex> guard{mutex_};
  current_ = std::move(next);
  stamp_.store(next_snapshot_stamp.fetch_add(1), std::memory_order_release);
}

void federation_state::configure(federation_options opts) {
  opts_ = std::move(opts);
  if (!opts_.clock)
    opts_.clock = system_wall_clock();
}

bool federation_state::apply(key_announcement ann, time_point now) {
  if (ann.departed) {
    bool added = false;
    for (auto& info : ann.keys)
      if (info.expire_at != 0) // a departed key always has an end
        added = keep(ann.origin, ann.incarnation, std::move(info)) || added;
    return added;
  }
  auto i = origins_.find(ann.origin);
  if (i != origins_.end()) {
    if (i->second.incarnation == ann.incarnation) {
      if (i->second.serial > ann.serial)
        return false;
    } else {
      // The origin restarted: what the old process signed must still verify.
      retain(i->second, now);
    }
  }
  auto origin = ann.origin;
  origins_[origin] = std::move(ann);
  return true;
}

bool federation_state::keep(const std::string& origin, uint64_t incarnation,
                            public_key_info info) {
  for (auto& r : retained_)
    if (r.info.kid == info.kid)
      return false;
  retained_.push_back(retained_key{origin, incarnation, std::move(info)});
  return true;
}

void federation_state::retain(const key_announcement& ann, time_point at) {
  auto until = to_unix_ms(at + opts_.departed_retention);
  for (auto info : ann.keys) {
    if (info.expire_at == 0 || info.expire_at > until)
      info.expire_at = until;
    keep(ann.origin, ann.incarnation, std::move(info));
  }
}

std::vector<key_announcement>
federation_state::departed_announcements() const {
  std::vector<key_announcement> out;
  for (auto& r : retained_) {
    auto i = std::find_if(out.begin(), out.end(), [&](auto& a) {
      return a.origin == r.origin && a.incarnation == r.incarnation;
    });
    if (i == out.end()) {
      key_announcement a;
      a.origin = r.origin;
      a.incarnation = r.incarnation;
      a.departed = true;
      out.push_back(std::move(a));
      i = std::prev(out.end());
    }
    i->keys.push_back(r.info);
  }
  return out;
}

void federation_state::depart(const std::string& origin, time_point at) {
  auto i = origins_.find(origin);
  if (i == origins_.end())
    return;
  retain(i->second, at);
  origins_.erase(i);
}

const key_announcement* federation_state::local_announcement() const {
  auto i = origins_.find(opts_.local_origin);
  return i == origins_.end() ? nullptr : &i->second;
}

const jose::key* federation_state::parse(const public_key_info& info) {
  auto i = parsed_.find(info.kid);
  if (i != parsed_.end() && i->second.jwk == info.jwk)
    return &i->second.key;
  try {
    auto jwk = nlohmann::json::parse(info.jwk);
    auto key = jose::key::from_public_jwk(jwk);
    if (jose::to_string(key.alg()) != info.alg) {
      spdlog::warn("federation: key {} announces alg {} but is a {} key; "
                   "ignored",
                   info.kid, info.alg, jose::to_string(key.alg()));
      return nullptr;
    }
    auto& slot = parsed_.insert_or_assign(info.kid, parsed_key{info.jwk, key})
                   .first->second;
    return &slot.key;
  } catch (const std::exception& e) {
    spdlog::warn("federation: key {} is not a usable public JWK: {}", info.kid,
                 e.what());
    return nullptr;
  }
}

std::shared_ptr<const key_snapshot> federation_state::publish(time_point now) {
  auto snap = std::make_shared<key_snapshot>();
  jose::key_set local;
  auto now_ms = to_unix_ms(now);
  auto consider = [&](int64_t ms) {
    if (ms > now_ms)
      snap->next_change = std::min(snap->next_change, from_unix_ms(ms));
  };
  auto take = [&](const public_key_info& info, bool is_local) {
    if (info.expire_at != 0 && info.expire_at <= now_ms)
      return;
    auto* key = parse(info);
    if (key == nullptr)
      return;
    if (auto* known = snap->keys.find(info.kid)) {
      if (known->thumbprint() != key->thumbprint())
        spdlog::warn("federation: key id {} names two different keys; "
                     "keeping the first",
                     info.kid);
      return;
    }
    snap->keys.add(info.kid, *key);
    if (is_local)
      local.add(info.kid, *key);
    consider(info.sign_from);
    consider(info.retire_at);
    consider(info.expire_at);
  };
  // Current keys first, so that a live origin wins over a retained copy.
  for (auto& [origin, ann] : origins_)
    for (auto& info : ann.keys)
      take(info, origin == opts_.local_origin);
  retained_.erase(std::remove_if(retained_.begin(), retained_.end(),
                                 [now_ms](const retained_key& r) {
                                   return r.info.expire_at <= now_ms;
                                 }),
                  retained_.end());
  for (auto& r : retained_)
    take(r.info, false);
  // Forget parsed keys nobody announces any more.
  for (auto i = parsed_.begin(); i != parsed_.end();)
    i = snap->keys.find(i->first) == nullptr ? parsed_.erase(i) : std::next(i);
  snap->jwks = snap->keys.to_jwks().dump();
  snap->etag = make_etag(snap->jwks);
  snap->jwks_local = local.to_jwks().dump();
  snap->etag_local = make_etag(snap->jwks_local);
  snap->key_count = snap->keys.size();
  snap->local_key_count = local.size();
  opts_.slot->store(snap);
  return snap;
}

namespace {

// One timer chain for the actor's lifetime: wakes at the next scheduled
// change of the published set, and at least once a minute.
void schedule_tick(federation_pointer self) {
  auto snap = self->state.slot()->load();
  auto delay = std::chrono::milliseconds{60'000};
  if (snap && snap->next_change != time_point::max())
    delay = std::clamp(std::chrono::duration_cast<std::chrono::milliseconds>(
                         snap->next_change - self->state.now())
                         + std::chrono::milliseconds{1},
                       std::chrono::milliseconds{1}, delay);
  self->delayed_send(self, delay, atom::tick_v, ++self->state.timer_id);
}

} // namespace

namespace {

/// Sends a joining peer this node's keys and the keys it retains for
/// departed origins.
void push_keys(federation_pointer self, const std::string& peer_id,
               const caf::actor& peer) {
  auto& st = self->state;
  std::vector<key_announcement> batch = st.departed_announcements();
  if (auto* ann = st.local_announcement())
    batch.push_back(*ann);
  for (auto& ann : batch)
    self
      ->request(caf::actor_cast<federation_actor>(peer),
                st.options().peer_ack_timeout, atom::announce_v,
                std::move(ann))
      .then([](atom::ok) {},
            [peer_id](caf::error& err) {
              spdlog::warn("federation: peer {} did not take keys: {}",
                           peer_id, caf::to_string(err));
            });
}

} // namespace

federation_actor::behavior_type federation(federation_pointer self,
                                           federation_options opts) {
  self->state.configure(std::move(opts));
  self->set_default_handler(caf::print_and_drop); // see membership.cpp
  schedule_tick(self);
  return {
    [=](atom::announce, key_announcement& ann) -> caf::result<atom::ok> {
      auto& st = self->state;
      bool local = ann.origin == st.options().local_origin;
      if (!st.apply(ann, st.now()))
        return atom::ok_v;
      st.publish(st.now());
      if (!local || st.peers.empty())
        return atom::ok_v;
      // A local change is acknowledged once every live peer has it (or the
      // bounded wait is over), so that no verifier sees an unknown kid.
      auto rp = self->make_response_promise<atom::ok>();
      auto pending = std::make_shared<size_t>(st.peers.size());
      auto done = [rp, pending]() mutable {
        if (--*pending == 0)
          rp.deliver(atom::ok_v);
      };
      for (auto& [peer_id, peer] : st.peers)
        self->request(caf::actor_cast<federation_actor>(peer),
                      st.options().peer_ack_timeout, atom::announce_v, ann)
          .then([done](atom::ok) mutable { done(); },
                [done, id = peer_id](caf::error& err) mutable {
                  spdlog::warn("federation: peer {} did not acknowledge a key "
                               "change in time: {}",
                               id, caf::to_string(err));
                  done();
                });
      return rp;
    },
    [=](atom::get, atom::jwks) -> std::string {
      auto snap = self->state.slot()->load();
      return snap ? snap->jwks : std::string{R"({"keys":[]})"};
    },
    [=](atom::join, std::string& peer_id, caf::actor& peer) {
      self->state.peers[peer_id] = peer;
      push_keys(self, peer_id, peer);
    },
    [=](atom::leave, std::string& peer_id, int64_t at_ms) {
      auto& st = self->state;
      st.peers.erase(peer_id);
      st.depart(peer_id, from_unix_ms(at_ms));
      st.publish(st.now());
    },
    [=](atom::tick, uint64_t id) {
      if (id != self->state.timer_id)
        return;
      auto snap = self->state.slot()->load();
      if (snap && snap->next_change <= self->state.now())
        self->state.publish(self->state.now());
      schedule_tick(self);
    },
  };
}

federation_actor spawn_federation(caf::actor_system& sys,
                                  federation_options opts) {
  return sys.spawn(federation, std::move(opts));
}

federation_actor spawn_federation(caf::actor_system& sys,
                                  std::string local_origin,
                                  std::shared_ptr<key_snapshot_slot> slot,
                                  wall_clock clock) {
  federation_options opts;
  opts.local_origin = std::move(local_origin);
  opts.slot = std::move(slot);
  opts.clock = std::move(clock);
  return spawn_federation(sys, std::move(opts));
}

} // namespace keymesh
