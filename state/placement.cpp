#include "state/placement.hpp"

#include <algorithm>
#include <utility>

namespace keymesh::state {

namespace {

uint64_t mix(uint64_t x) {
  // splitmix64's finaliser: spreads FNV's weak low bits over the word.
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

} // namespace

uint64_t stable_hash(std::string_view data, uint64_t seed) {
  uint64_t h = 0xcbf29ce484222325ULL ^ mix(seed);
  for (unsigned char c : data) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return mix(h);
}

uint32_t partition_of(std::string_view key, uint32_t partitions) {
  return static_cast<uint32_t>(stable_hash(key) % partitions);
}

std::vector<std::string> owners_of(uint32_t partition,
                                   const std::vector<std::string>& members,
                                   size_t replicas) {
  std::vector<std::pair<uint64_t, const std::string*>> scored;
  scored.reserve(members.size());
  for (auto& m : members)
    scored.emplace_back(stable_hash(m, partition + 1), &m);
  std::sort(scored.begin(), scored.end(), [](auto& a, auto& b) {
    return a.first != b.first ? a.first > b.first : *a.second < *b.second;
  });
  auto n = replicas == 0 ? scored.size() : std::min(replicas, scored.size());
  std::vector<std::string> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i)
    out.push_back(*scored[i].second);
  return out;
}

} // namespace keymesh::state
