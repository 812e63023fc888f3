#include "actors/federation.hpp"

#include <algorithm>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "actors/admission.hpp"
#include "actors/error.hpp"
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

bool federation_state::apply(key_announcement ann, origin_rank rank,
                             time_point now) {
  if (ann.departed) {
    bool added = false;
    for (auto& info : ann.keys)
      if (info.expire_at != 0) // a departed key always has an end
        added = keep(ann.origin, ann.incarnation, std::move(info)) || added;
    return added;
  }
  auto i = origins_.find(ann.origin);
  if (i != origins_.end()) {
    // An origin keeps the rank it was first seen with, unless a higher one
    // claims it (a static peer's URL is never a member's instance id).
    if (rank > i->second.rank)
      return false;
    if (i->second.ann.incarnation == ann.incarnation) {
      if (i->second.ann.serial > ann.serial)
        return false;
    } else {
      // The origin restarted: what the old process signed must still verify.
      retain(i->second.ann, now);
    }
  }
  auto origin = ann.origin;
  origins_[origin] = ranked_announcement{std::move(ann), rank};
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
  retain(i->second.ann, at);
  origins_.erase(i);
}

std::optional<origin_rank>
federation_state::admit(key_announcement& ann,
                        const std::optional<std::string>& member) const {
  auto in_namespace = [&](const public_key_info& info) {
    auto& id = ann.origin;
    return info.kid.size() > id.size() + 1
           && info.kid.compare(0, id.size(), id) == 0
           && info.kid[id.size()] == '-';
  };
  if (!member)
    return ann.origin == opts_.local_origin && !ann.departed
             ? origin_rank::local
             : origin_rank::member;
  // A member announces its own keys, and passes on keys of departed
  // origins (this node's earlier incarnations among them); each kid lies
  // in the namespace of the origin that announces it.
  if (!ann.departed && ann.origin != *member) {
    spdlog::warn("federation: member {} announced keys as {}; refused",
                 *member, ann.origin);
    return std::nullopt;
  }
  auto before = ann.keys.size();
  ann.keys.erase(std::remove_if(ann.keys.begin(), ann.keys.end(),
                                [&](auto& info) { return !in_namespace(info); }),
                 ann.keys.end());
  if (ann.keys.size() != before)
    spdlog::warn("federation: member {} announced {} key(s) outside the "
                 "namespace of {}; refused",
                 *member, before - ann.keys.size(), ann.origin);
  return origin_rank::member;
}

const key_announcement* federation_state::local_announcement() const {
  auto i = origins_.find(opts_.local_origin);
  return i == origins_.end() ? nullptr : &i->second.ann;
}

bool federation_state::in_cluster_namespace(const std::string& kid) const {
  auto owns = [&](const std::string& id) {
    return kid.size() > id.size() + 1 && kid.compare(0, id.size(), id) == 0
           && kid[id.size()] == '-';
  };
  if (owns(opts_.local_origin))
    return true;
  for (auto& [origin, ranked] : origins_)
    if (ranked.rank != origin_rank::static_peer && owns(origin))
      return true;
  for (auto& r : retained_)
    if (owns(r.origin))
      return true;
  return false;
}

void federation_state::refuse_static(const std::string& origin,
                                     const std::string& kid,
                                     const char* why) {
  if (!refused_.emplace(origin, kid).second)
    return;
  spdlog::warn("federation: static peer {} publishes key id {}, {}; its key "
               "is refused",
               origin, kid, why);
}

const jose::key* federation_state::parse(const public_key_info& info) {
  // By the JWK's text: a kid announced by two origins with two keys never
  // makes either be imported again, and an unusable JWK is reported once.
  auto [i, added] = parsed_.try_emplace(info.alg + ' ' + info.jwk);
  i->second.used = true;
  if (!added)
    return i->second.key ? &*i->second.key : nullptr;
  try {
    auto jwk = nlohmann::json::parse(info.jwk);
    auto key = jose::key::from_public_jwk(jwk);
    if (jose::to_string(key.alg()) != info.alg) {
      spdlog::warn("federation: key {} announces alg {} but is a {} key; "
                   "ignored",
                   info.kid, info.alg, jose::to_string(key.alg()));
      return nullptr;
    }
    i->second.key = std::move(key);
    return &*i->second.key;
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
  auto take = [&](const std::string& origin, const public_key_info& info,
                  origin_rank rank) {
    if (info.expire_at != 0 && info.expire_at <= now_ms)
      return;
    if (rank == origin_rank::static_peer) {
      if (snap->cluster_keys.find(info.kid) != nullptr)
        return refuse_static(origin, info.kid,
                             "which this cluster owns");
      if (in_cluster_namespace(info.kid))
        return refuse_static(origin, info.kid,
                             "in the namespace of this node or a cluster "
                             "member");
    }
    // A kid taken already belongs to a higher or earlier origin.
    if (auto* known = snap->keys.find(info.kid)) {
      if (rank != origin_rank::static_peer)
        if (auto* key = parse(info);
            key != nullptr && known->thumbprint() != key->thumbprint())
          spdlog::warn("federation: key id {} names two different keys; "
                       "keeping the one of the higher origin",
                       info.kid);
      return;
    }
    auto* key = parse(info);
    if (key == nullptr)
      return;
    snap->keys.add(info.kid, *key);
    if (rank != origin_rank::static_peer)
      snap->cluster_keys.add(info.kid, *key);
    if (rank == origin_rank::local && origin == opts_.local_origin)
      local.add(info.kid, *key);
    consider(info.sign_from);
    consider(info.retire_at);
    consider(info.expire_at);
  };
  retained_.erase(std::remove_if(retained_.begin(), retained_.end(),
                                 [now_ms](const retained_key& r) {
                                   return r.info.expire_at <= now_ms;
                                 }),
                  retained_.end());
  // By rank, and within a rank current keys first, so that a live origin
  // wins over a retained copy.
  for (auto rank :
       {origin_rank::local, origin_rank::member, origin_rank::static_peer}) {
    for (auto& [origin, ranked] : origins_)
      if (ranked.rank == rank)
        for (auto& info : ranked.ann.keys)
          take(origin, info, rank);
    for (auto& r : retained_)
      if (retained_rank(r.origin) == rank)
        take(r.origin, r.info, rank);
  }
  // Forget parsed keys nobody announces any more.
  for (auto i = parsed_.begin(); i != parsed_.end();) {
    if (!i->second.used)
      i = parsed_.erase(i);
    else
      (i++)->second.used = false;
  }
  snap->shadowing_refused = refused_.size();
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

/// Refuses WHAT from a sender that is neither of this node nor an admitted
/// member (logged once per node).
caf::error refuse_sender(federation_pointer self, const char* what) {
  auto& sender = self->current_sender();
  auto node = sender ? caf::to_string(sender->node()) : std::string{"?"};
  if (self->state.refused_nodes.insert(node).second)
    spdlog::warn("federation: refused {} from node {}, which is not an "
                 "admitted cluster member",
                 what, node);
  return make_error(ec::refused, "not an admitted cluster member");
}

/// Sends a joining peer this node's keys and the keys it retains for
/// departed origins.
void push_keys(federation_pointer self, const std::string& peer_id,
               const federation_actor& peer) {
  auto& st = self->state;
  std::vector<key_announcement> batch = st.departed_announcements();
  if (auto* ann = st.local_announcement())
    batch.push_back(*ann);
  for (auto& ann : batch)
    self
      ->request(peer, st.options().peer_ack_timeout, atom::announce_v,
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
    [=](atom::announce, atom::fetched,
        key_announcement& ann) -> caf::result<atom::ok> {
      // A static peer's keys, from this node's peer fetcher.
      auto& st = self->state;
      if (classify_sender(self, st.options().admitted.get())
          != sender_kind::local)
        return refuse_sender(self, "static peer keys");
      if (st.apply(std::move(ann), origin_rank::static_peer, st.now()))
        st.publish(st.now());
      return atom::ok_v;
    },
    [=](atom::announce, key_announcement& ann) -> caf::result<atom::ok> {
      auto& st = self->state;
      std::optional<std::string> member;
      switch (classify_sender(self, st.options().admitted.get())) {
        case sender_kind::local:
          break;
        case sender_kind::member:
          member = st.options().admitted->member(
            self->current_sender()->node());
          break;
        case sender_kind::stranger:
          return refuse_sender(self, "keys");
      }
      auto rank = st.admit(ann, member);
      if (!rank)
        return make_error(ec::refused, "keys outside the sender's namespace");
      bool local = *rank == origin_rank::local;
      if (!st.apply(ann, *rank, st.now()))
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
        self->request(peer, st.options().peer_ack_timeout, atom::announce_v,
                      ann)
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
    [=](atom::join, peer_federation& peer) {
      if (classify_sender(self, nullptr) != sender_kind::local)
        return;
      self->state.peers[peer.instance_id] = peer.handle;
      push_keys(self, peer.instance_id, peer.handle);
    },
    [=](atom::leave, std::string& peer_id, int64_t at_ms) {
      if (classify_sender(self, nullptr) != sender_kind::local)
        return;
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

caf::expected<federation_options>
federation_options::from_settings(const config::settings& c) {
  if (c.cluster.failure_timeout.count() <= 0)
    return make_error(ec::invalid_argument,
                      "cluster.failure_timeout must be positive");
  federation_options opts;
  opts.departed_retention = std::chrono::duration_cast<
    std::chrono::milliseconds>(c.keys.max_token_ttl + c.keys.leeway);
  opts.peer_ack_timeout = c.cluster.failure_timeout;
  return opts;
}

} // namespace keymesh
