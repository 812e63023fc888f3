// The check of a BASP payload from a peer before CAF's BASP reads it.
//
// CAF 0.17.6 reads some payloads in ways a peer can turn into a crash of
// the whole node, on the multiplexer or a BASP worker thread:
// - a variant (config_value, settings, the stream messages) with a type
//   index out of range throws std::runtime_error("invalid type found"),
//   which nothing catches (std::terminate);
// - a direct message (link_atom or unlink_atom, strong_actor_ptr) is taken
//   as a proxy's link request and the pointer cast to actor_proxy, whatever
//   actor it names (a local actor: undefined behaviour).
// keymesh never sends either. The check finds them without reading most
// payloads: a type that can throw, or the link request's type list, must
// be named in the payload, so a payload without those names is passed as
// is; one with them is read once here, where a throw is caught, and
// refused when it throws or is a link request. Refusing closes the link.
#pragma once

#include <cstddef>

#include <caf/actor_system.hpp>
#include <caf/io/basp/message_type.hpp>

namespace keymesh {

/// Whether CAF's BASP may read the payload DATA/SIZE of a message of type
/// OP from a peer; when not, WHY says what it is.
bool basp_payload_admissible(caf::actor_system& sys,
                             caf::io::basp::message_type op, const char* data,
                             size_t size, const char*& why);

/// Reads the payload as CAF's BASP does (in an isolated context: remote
/// actor handles come out empty, no proxy is made). Throws what CAF's
/// reading throws; for the fuzz target, which checks that a payload the
/// check admits never throws.
void read_basp_payload(caf::actor_system& sys, caf::io::basp::message_type op,
                       const char* data, size_t size);

} // namespace keymesh
