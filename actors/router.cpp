#include "actors/router.hpp"

#include <algorithm>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <spdlog/spdlog.h>

#include "state/placement.hpp"

namespace keymesh {

void router_state::configure(router_options opts) {
  opts_ = std::move(opts);
  // Kept here only (the options' copy was the starting point).
  known = std::move(opts_.known);
  opts_.known.clear();
  known.erase(opts_.instance_id);
  reported.assign(opts_.partitions, 0);
  owned.assign(opts_.partitions, false);
}

std::vector<std::string> router_state::members() const {
  std::vector<std::string> out{opts_.instance_id};
  for (auto& [id, p] : peers)
    out.push_back(id);
  std::sort(out.begin(), out.end());
  return out;
}

ownership router_state::make_ownership(uint32_t partition) const {
  ownership o;
  o.epoch = epoch;
  o.members = members();
  o.owners = state::owners_of(partition, o.members, opts_.replicas);
  o.replicas = static_cast<uint32_t>(opts_.replicas);
  o.known = static_cast<uint32_t>(known.size() + 1);
  for (auto& id : o.members) {
    if (id == opts_.instance_id) {
      o.shards.push_back(opts_.shards[partition]);
      continue;
    }
    auto& shards = peers.at(id).shards;
    o.shards.push_back(partition < shards.size() ? shards[partition]
                                                 : shard_actor{});
  }
  return o;
}

bool router_state::all_synced() const {
  for (uint32_t p = 0; p < opts_.partitions; ++p)
    if (owned[p] && reported[p] < epoch)
      return false;
  return true;
}

namespace {

void update_synced(router_pointer self) {
  auto& st = self->state;
  if (st.options().synced)
    st.options().synced->store(st.all_synced());
}

void distribute(router_pointer self) {
  auto& st = self->state;
  ++st.epoch;
  for (uint32_t p = 0; p < st.options().partitions; ++p) {
    auto o = st.make_ownership(p);
    st.owned[p] = std::find(o.owners.begin(), o.owners.end(),
                            st.options().instance_id)
                  != o.owners.end();
    self->send(st.options().shards[p], atom::owners_v, std::move(o));
  }
  update_synced(self);
}

} // namespace

router_actor::behavior_type router(router_pointer self, router_options opts) {
  self->state.configure(std::move(opts));
  self->set_default_handler(caf::print_and_drop);
  distribute(self);
  return {
    [=](atom::join, peer_actors& peer) {
      auto& st = self->state;
      if (peer.shards.size() != st.options().partitions) {
        spdlog::error("router: peer {} has {} partitions, this node {}; not "
                      "sharing state with it",
                      peer.instance_id, peer.shards.size(),
                      st.options().partitions);
        return;
      }
      auto id = peer.instance_id;
      if (id != st.options().instance_id && st.known.insert(id).second
          && st.options().on_known)
        st.options().on_known(st.known);
      st.peers[id] = std::move(peer);
      distribute(self);
    },
    [=](atom::leave, std::string& id) {
      if (self->state.peers.erase(id) > 0)
        distribute(self);
    },
    [=](atom::synced, uint32_t partition, uint64_t epoch) {
      auto& st = self->state;
      if (partition >= st.options().partitions)
        return;
      st.reported[partition] = std::max(st.reported[partition], epoch);
      update_synced(self);
    },
  };
}

router_actor spawn_router(caf::actor_system& sys, router_options opts) {
  return sys.spawn(router, std::move(opts));
}

const shard_actor& keyspace_client::shard_for(std::string_view key) const {
  return shards[state::partition_of(state::partition_key(key), partitions)];
}

} // namespace keymesh
