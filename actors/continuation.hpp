// The rest of a step, sent to the actor that started it once work on
// another thread (a database call, a password hash) is done: (atom::run,
// continuation). Local only: it never crosses nodes.
#pragma once

#include <functional>

#include <caf/allowed_unsafe_message_type.hpp>

namespace keymesh {

using continuation = std::function<void()>;

} // namespace keymesh

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(keymesh::continuation)
