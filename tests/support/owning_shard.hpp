// One shard that owns its partition alone (node "node-1"), on the wall
// clock CLOCK: the replicated state a service needs in a unit test.
#pragma once

#include <memory>

#include <caf/actor_cast.hpp>
#include <caf/send.hpp>

#include "actors/shard.hpp"
#include "support/manual_clock.hpp"

namespace keymesh::test {

/// Spawns the shard and tells it (through SENDER) that it owns partition 0;
/// the caller's scheduler delivers that.
template <class Sender>
shard_actor spawn_owning_shard(caf::actor_system& sys, Sender& sender,
                               const manual_clock& clock) {
  shard_options so;
  so.partition = 0;
  so.instance_id = "node-1";
  so.clock = std::make_shared<state::hlc>(state::node_tag("node-1"),
                                          clock.fn());
  so.wall = clock.fn();
  so.metrics = std::make_shared<state_metrics>(1);
  auto shard = spawn_shard(sys, std::move(so));
  ownership o;
  o.epoch = 1;
  o.owners = {"node-1"};
  o.members = {"node-1"};
  o.shards = {shard};
  sender->send(shard, atom::owners_v, o);
  return shard;
}

} // namespace keymesh::test
