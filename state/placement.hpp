// Where records live: the partition of a key and the owners of a partition.
// Both must come out the same on every node and in every build, so they use
// their own hash (FNV-1a with a final mix), never std::hash.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace keymesh::state {

/// A 64-bit hash that is the same on every node and platform.
uint64_t stable_hash(std::string_view data, uint64_t seed = 0);

/// Separates a record key's partition key from the rest: "alice\x1fs1" lives
/// in alice's partition, so one partition holds everything under "alice".
inline constexpr char partition_key_separator = '\x1f';

/// The part of KEY that decides its partition (up to the first separator).
inline std::string_view partition_key(std::string_view key) {
  return key.substr(0, key.find(partition_key_separator));
}

/// The part of KEY after its partition key (empty without a separator).
inline std::string_view key_after_partition(std::string_view key) {
  auto sep = key.find(partition_key_separator);
  return sep == std::string_view::npos ? std::string_view{}
                                       : key.substr(sep + 1);
}

/// The partition (0 .. partitions-1) of a partition key.
uint32_t partition_of(std::string_view key, uint32_t partitions);

/// The owners of PARTITION among MEMBERS (instance ids), best first: the
/// first is the primary. Rendezvous hashing: each member scores every
/// partition and the highest scores win, so a member that joins or leaves
/// moves only the partitions it wins or held. REPLICAS == 0 means all.
std::vector<std::string> owners_of(uint32_t partition,
                                   const std::vector<std::string>& members,
                                   size_t replicas);

} // namespace keymesh::state
