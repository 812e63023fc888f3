// Fuzz target: the stored forms of replicated state, as they arrive from
// peers and from the warm-start file: partition snapshots (merged into a
// partition as a sync does), sessions, refresh families and tokens, and
// attempt counters, objects (state/object.hpp) and their index keys,
// pushed authorization requests (state/par.hpp), secret rings with their
// nonces and sealed cookies (state/secret_ring.hpp).
#include <cstdint>
#include <string>
#include <string_view>

#include "state/attempts.hpp"
#include "state/object.hpp"
#include "state/par.hpp"
#include "state/secret_ring.hpp"
#include "state/partition.hpp"
#include "state/refresh.hpp"
#include "state/session.hpp"
#include "state/snapshot.hpp"

using namespace keymesh;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input{reinterpret_cast<const char*>(data), size};
  state::partition_snapshot snap;
  std::string error;
  if (state::decode_snapshot(input, snap, error)) {
    state::partition p{snap.partition};
    for (auto& r : snap.records)
      p.merge(r.keyspace, r.key, r.rec, 1'700'000'000'000);
    p.digests();
    state::encode_snapshot(snap);
  }
  if (auto s = state::decode_session(input)) {
    s->record_expiry();
    s->participants();
    state::clients_problem(s->clients);
    state::session_json(*s);
    state::encode_session(*s);
  }
  std::vector<state::partition_snapshot> parts;
  uint32_t partitions = 0;
  state::decode_snapshot_file(input, parts, partitions, error);
  if (auto f = state::decode_family(input))
    state::encode_family(*f);
  if (auto t = state::parse_refresh_token(input))
    state::mac_matches(state::refresh_family{}, *t);
  auto c = state::decode_attempts(input);
  state::reserve_attempt(c, {5, 60'000, 300'000}, 1'700'000'000'000);
  state::valid_session_id(input);
  if (auto o = state::decode_object(input)) {
    // What is decoded encodes and decodes to the same object.
    auto again = state::decode_object(state::encode_object(*o));
    if (!again || again->value != o->value || again->indexes != o->indexes
        || again->consumed_at != o->consumed_at)
      __builtin_trap();
  }
  state::valid_object_kind(input);
  state::valid_object_id(input);
  state::id_of_object_index_key(input);
  state::par_id(input);
  if (auto r = state::decode_par(input)) {
    auto again = state::decode_par(state::encode_par(*r));
    if (!again || again->client_id != r->client_id
        || again->params != r->params || again->expires_at != r->expires_at)
      __builtin_trap();
  }
  if (auto ring = state::decode_ring(input)) {
    auto again = state::decode_ring(state::encode_ring(*ring));
    if (!again || again->generation != ring->generation
        || again->keys.size() != ring->keys.size())
      __builtin_trap();
    // Whatever a ring holds, nonces and cookies are checked without harm.
    state::dpop_nonce_valid(*ring, input, 1'700'000'000'000, 60'000);
    state::open_cookie(*ring, input, "", 1'700'000'000'000);
  }
  return 0;
}
