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

void federation_state::configure(std::string local_origin,
                                 std::shared_ptr<key_snapshot_slot> slot,
                                 wall_clock clock) {
  local_origin_ = std::move(local_origin);
  slot_ = std::move(slot);
  clock_ = clock ? std::move(clock) : system_wall_clock();
}

bool federation_state::apply(key_announcement ann) {
  auto i = origins_.find(ann.origin);
  if (i != origins_.end() && i->second.serial > ann.serial)
    return false;
  auto origin = ann.origin;
  origins_[origin] = std::move(ann);
  return true;
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
  for (auto& [origin, ann] : origins_) {
    for (auto& info : ann.keys) {
      if (info.expire_at != 0 && info.expire_at <= now_ms)
        continue;
      auto* key = parse(info);
      if (key == nullptr)
        continue;
      if (snap->keys.find(info.kid) != nullptr) {
        spdlog::warn("federation: key id {} is announced by more than one "
                     "origin; keeping the first",
                     info.kid);
        continue;
      }
      snap->keys.add(info.kid, *key);
      if (origin == local_origin_)
        local.add(info.kid, *key);
      consider(info.sign_from);
      consider(info.retire_at);
      consider(info.expire_at);
    }
  }
  // Forget parsed keys nobody announces any more.
  for (auto i = parsed_.begin(); i != parsed_.end();)
    i = snap->keys.find(i->first) == nullptr ? parsed_.erase(i) : std::next(i);
  snap->jwks = snap->keys.to_jwks().dump();
  snap->etag = make_etag(snap->jwks);
  snap->jwks_local = local.to_jwks().dump();
  snap->etag_local = make_etag(snap->jwks_local);
  snap->key_count = snap->keys.size();
  snap->local_key_count = local.size();
  snap->version = ++version_;
  slot_->store(snap);
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

federation_actor::behavior_type
federation(federation_pointer self, std::string local_origin,
           std::shared_ptr<key_snapshot_slot> slot, wall_clock clock) {
  self->state.configure(std::move(local_origin), std::move(slot),
                        std::move(clock));
  schedule_tick(self);
  return {
    [=](atom::announce, key_announcement& ann) {
      if (self->state.apply(std::move(ann)))
        self->state.publish(self->state.now());
      return atom::ok_v;
    },
    [=](atom::get, atom::jwks) -> std::string {
      auto snap = self->state.slot()->load();
      return snap ? snap->jwks : std::string{R"({"keys":[]})"};
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
                                  std::string local_origin,
                                  std::shared_ptr<key_snapshot_slot> slot,
                                  wall_clock clock) {
  return sys.spawn(federation, std::move(local_origin), std::move(slot),
                   std::move(clock));
}

} // namespace keymesh
