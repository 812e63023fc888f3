#include "services/audit.hpp"

#include <caf/send.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "actors/node_status.hpp"

namespace keymesh {

void publish_audit(const bus_actor& bus, const node_status* status,
                   const std::string& posture, int64_t now_ms,
                   nlohmann::json event) {
  event["posture"] = posture;
  event["at"] = now_ms;
  if (status != nullptr)
    event["node"] = status->instance_id;
  auto text = event.dump(-1, ' ', false,
                         nlohmann::json::error_handler_t::replace);
  spdlog::info("audit: {}", text);
  if (bus)
    caf::anon_send(bus, atom::publish_v, std::string{"audit"},
                   std::move(text));
}

} // namespace keymesh
