#include "actors/basp_payload.hpp"

#include <algorithm>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <caf/atom.hpp>
#include <caf/binary_deserializer.hpp>
#include <caf/error.hpp>
#include <caf/execution_unit.hpp>
#include <caf/message.hpp>
#include <caf/node_id.hpp>
#include <caf/proxy_registry.hpp>

namespace keymesh {

namespace {

using caf::io::basp::message_type;

/// Names whose presence in a payload means it is read here first: the
/// types whose reading can throw (a variant inside), and the type list of
/// a link request.
constexpr std::string_view suspicious[] = {
  "config_value",   // config_value, settings (dictionary<@config_value>)
  "stream_msg",     // @downstream_msg, @upstream_msg, @open_stream_msg
  "@atom+@strong_actor_ptr", // (link_atom, strong_actor_ptr)
};

bool names_suspicious(const char* data, size_t size) {
  std::string_view text{data, size};
  return std::any_of(std::begin(suspicious), std::end(suspicious),
                     [&](std::string_view name) {
                       return text.find(name) != std::string_view::npos;
                     });
}

/// Makes no proxies: a remote actor handle in a payload read here comes
/// out empty, and reading it has no effect on the node.
struct no_proxies : caf::proxy_registry::backend {
  caf::strong_actor_ptr make_proxy(caf::node_id, caf::actor_id) override {
    return nullptr;
  }
  void set_last_hop(caf::node_id*) override {
    // nothing to track
  }
};

/// The context of a read here: this node's actor system, a proxy registry
/// of its own.
struct isolated_unit : caf::execution_unit {
  explicit isolated_unit(caf::actor_system& sys)
      : execution_unit(&sys), proxies(sys, backend) {
    proxy_registry_ptr(&proxies);
  }
  void exec_later(caf::resumable*) override {
    // nothing runs here
  }
  no_proxies backend;
  caf::proxy_registry proxies;
};

/// Reads the payload with the layout CAF's BASP reads it with; sets
/// LINK_REQUEST when it is a direct message BASP takes as a link request.
void read_as_basp(caf::actor_system& sys, message_type op, const char* data,
                  size_t size, bool& link_request) {
  isolated_unit unit{sys};
  caf::binary_deserializer source{&unit, data, size};
  caf::node_id source_node;
  caf::node_id dest_node;
  switch (op) {
  case message_type::server_handshake: {
    std::vector<std::string> app_ids;
    caf::actor_id aid = 0;
    std::set<std::string> sigs;
    source(source_node, app_ids, aid, sigs);
    return;
  }
  case message_type::client_handshake:
    source(source_node);
    return;
  case message_type::routed_message:
    if (source(source_node, dest_node))
      return;
    [[fallthrough]];
  case message_type::direct_message: {
    std::vector<caf::strong_actor_ptr> stages;
    caf::message msg;
    if (source(stages, msg))
      return;
    if (msg.match_elements<caf::atom_value, caf::strong_actor_ptr>()) {
      auto what = static_cast<uint64_t>(msg.get_as<caf::atom_value>(0));
      link_request = what == caf::link_atom::uint_value()
                     || what == caf::unlink_atom::uint_value();
    }
    return;
  }
  case message_type::monitor_message:
    source(source_node, dest_node);
    return;
  case message_type::down_message: {
    caf::error reason;
    source(source_node, dest_node, reason);
    return;
  }
  case message_type::heartbeat:
    return;
  }
}

} // namespace

bool basp_payload_admissible(caf::actor_system& sys, message_type op,
                             const char* data, size_t size, const char*& why) {
  if (size == 0 || !names_suspicious(data, size))
    return true;
  bool link_request = false;
  try {
    read_as_basp(sys, op, data, size, link_request);
  } catch (...) {
    why = "a payload that CAF cannot read without crashing";
    return false;
  }
  if (link_request) {
    why = "a link request";
    return false;
  }
  return true;
}

void read_basp_payload(caf::actor_system& sys, message_type op,
                       const char* data, size_t size) {
  bool link_request = false;
  read_as_basp(sys, op, data, size, link_request);
}

} // namespace keymesh
