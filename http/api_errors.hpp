// Error answers several handler files share.
#pragma once

#include <string_view>

#include <caf/fwd.hpp>

#include "http/types.hpp"

namespace keymesh::http {

/// The answer for a failed replicated-state operation on WHAT: 404, 409,
/// 503, 504, or 500 (logged).
response state_error(caf::actor_system& sys, const caf::error& err,
                     std::string_view what);

/// 503 overloaded: a queue the request needs is full (counted as
/// back-pressure in keymesh_http_refused_total).
response overloaded(std::string_view description);

/// Whether RES is an overloaded answer.
bool is_overloaded(const response& res);

/// 503 not_ready: the node has no keys yet.
response not_ready();

} // namespace keymesh::http
