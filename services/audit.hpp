// Audit events: one JSON object per event, written to the log and
// published on the bus topic "audit" (which the SSE stream serves), with
// the durability posture, the time and the node added.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "actors/interfaces.hpp"

namespace keymesh {

struct node_status;

/// Adds "posture", "at" (Unix ms) and "node" to EVENT, logs it and
/// publishes it on BUS (may be null) under the topic "audit".
void publish_audit(const bus_actor& bus, const node_status* status,
                   const std::string& posture, int64_t now_ms,
                   nlohmann::json event);

} // namespace keymesh
