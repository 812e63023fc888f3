// Fuzz target: every cluster message type through CAF's deserializer, the
// way BASP reads a peer's payload. The bytes are taken as the payload of
// each BASP message type, and as a direct message of any type registered
// in keymesh's type-ID block (the seeds hold one of each); a payload the
// transport's check admits must read without a throw (CAF 0.17.6 would
// terminate the node). Then the same bytes as each of the larger types
// directly.
#include <cstdint>
#include <memory>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/binary_deserializer.hpp>
#include <caf/message.hpp>

#include "actors/basp_payload.hpp"
#include "actors/interfaces.hpp"

using namespace keymesh;

namespace {

struct target {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;

  target() {
    add_message_types(cfg);
    cfg.set("scheduler.max-threads", 1);
    sys = std::make_unique<caf::actor_system>(cfg);
  }
};

template<class T>
void read_as(caf::actor_system& sys, const std::vector<char>& buf) {
  T x;
  caf::binary_deserializer source{sys, buf};
  source(x);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Never destroyed: CAF tears an actor system down badly at exit.
  static auto& t = *new target;
  std::vector<char> buf{reinterpret_cast<const char*>(data),
                        reinterpret_cast<const char*>(data) + size};
  using caf::io::basp::message_type;
  auto as_payload = [&](message_type op, const std::vector<char>& bytes) {
    const char* why = nullptr;
    if (keymesh::basp_payload_admissible(*t.sys, op, bytes.data(),
                                         bytes.size(), why))
      keymesh::read_basp_payload(*t.sys, op, bytes.data(), bytes.size());
  };
  for (auto op : {message_type::server_handshake,
                  message_type::client_handshake,
                  message_type::monitor_message, message_type::down_message,
                  message_type::direct_message})
    as_payload(op, buf);
  // A direct message without forwarding stages: one zero byte, the message.
  std::vector<char> direct{'\0'};
  direct.insert(direct.end(), buf.begin(), buf.end());
  as_payload(message_type::direct_message, direct);
  read_as<key_announcement>(*t.sys, buf);
  read_as<node_hello>(*t.sys, buf);
  read_as<write_request>(*t.sys, buf);
  read_as<record_list>(*t.sys, buf);
  read_as<sync_reply>(*t.sys, buf);
  read_as<bus_event_list>(*t.sys, buf);
  read_as<attempt_request>(*t.sys, buf);
  read_as<std::vector<member_info>>(*t.sys, buf);
  read_as<session_spec>(*t.sys, buf);
  read_as<session_found>(*t.sys, buf);
  read_as<session_patch>(*t.sys, buf);
  read_as<revocation_outcome>(*t.sys, buf);
  read_as<std::vector<state::session>>(*t.sys, buf);
  read_as<credentials>(*t.sys, buf);
  read_as<token_grant>(*t.sys, buf);
  read_as<logout_request>(*t.sys, buf);
  read_as<user_view>(*t.sys, buf);
  read_as<user_page>(*t.sys, buf);
  read_as<group_view>(*t.sys, buf);
  read_as<std::vector<claim_view>>(*t.sys, buf);
  read_as<user_spec>(*t.sys, buf);
  read_as<user_change>(*t.sys, buf);
  read_as<claim_spec>(*t.sys, buf);
  read_as<account>(*t.sys, buf);
  read_as<ownership>(*t.sys, buf);
  read_as<peer_federation>(*t.sys, buf);
  read_as<peer_bus>(*t.sys, buf);
  read_as<password_text>(*t.sys, buf);
  read_as<auth::scrypt_cost>(*t.sys, buf);
  read_as<new_user>(*t.sys, buf);
  read_as<user_write>(*t.sys, buf);
  read_as<hash_upgrade>(*t.sys, buf);
  read_as<persistence::revocation_entry>(*t.sys, buf);
  read_as<session_rows>(*t.sys, buf);
  read_as<object_put>(*t.sys, buf);
  read_as<object_found>(*t.sys, buf);
  read_as<std::vector<object_found>>(*t.sys, buf);
  read_as<object_lookup>(*t.sys, buf);
  read_as<replay_check>(*t.sys, buf);
  read_as<replay_verdict>(*t.sys, buf);
  read_as<decide_request>(*t.sys, buf);
  read_as<decide_reply>(*t.sys, buf);
  read_as<par_push>(*t.sys, buf);
  read_as<par_request>(*t.sys, buf);
  read_as<secret_rows>(*t.sys, buf);
  read_as<persistence::client_record>(*t.sys, buf);
  read_as<client_records>(*t.sys, buf);
  read_as<persistence::outbox_row>(*t.sys, buf);
  read_as<outbox_rows>(*t.sys, buf);
  read_as<session_ending>(*t.sys, buf);
  read_as<session_endings>(*t.sys, buf);
  read_as<logout_receipt>(*t.sys, buf);
  read_as<post_result>(*t.sys, buf);
  return 0;
}
