// An actor system config with keymesh's message types, for test fixtures.
#pragma once

#include <caf/actor_system_config.hpp>

#include "actors/interfaces.hpp"

namespace keymesh::test {

struct actor_config : caf::actor_system_config {
  actor_config() {
    keymesh::add_message_types(*this);
  }
};

} // namespace keymesh::test
