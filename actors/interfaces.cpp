#include "actors/interfaces.hpp"

#include "actors/error.hpp"

namespace keymesh {

void add_message_types(caf::actor_system_config& cfg) {
  cfg.add_message_types<caf::id_block::keymesh>();
  cfg.add_error_category(error_category,
                         [](uint8_t code, caf::atom_value,
                            const caf::message& ctx) -> std::string {
                           std::string out = "keymesh::";
                           out += to_string(static_cast<ec>(code));
                           if (!ctx.empty()) {
                             out += ": ";
                             out += ctx.get_as<std::string>(0);
                           }
                           return out;
                         });
}

} // namespace keymesh
