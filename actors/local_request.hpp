// The timeout of requests to this node's own actors.
#pragma once

#include <caf/duration.hpp>

namespace keymesh {

/// The timeout of requests to this node's own actors on the hot paths
/// (the HTTP bridge, the services): none. A local actor answers or fails (a
/// shard that forwards to a peer bounds that by state.peer_timeout itself),
/// and the server's response deadline bounds the client's wait by
/// http.request_timeout. In CAF 0.17 every request timeout costs a timer
/// entry on the clock thread and a timeout message later, about a tenth of
/// a node's CPU at 40k requests/s.
inline constexpr auto local_request = caf::infinite;

} // namespace keymesh
