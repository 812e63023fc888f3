// Partition snapshots: the unit of handoff, anti-entropy transfer and the
// warm-start file, as binary archives (the layout of cereal's, read with
// every length checked) with a magic and a format
// version in front so that a truncated or foreign file is refused cleanly.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "state/record.hpp"

namespace keymesh::state {

struct partition_snapshot {
  uint32_t partition = 0;
  std::vector<keyed_record> records;
};

std::string encode_snapshot(const partition_snapshot& snap);

/// Decodes BYTES; on failure returns false and says why in ERROR.
bool decode_snapshot(std::string_view bytes, partition_snapshot& out,
                     std::string& error);

/// Several partitions in one file (the warm-start snapshot).
std::string encode_snapshot_file(const std::vector<partition_snapshot>& parts,
                                 uint32_t partitions);

bool decode_snapshot_file(std::string_view bytes,
                          std::vector<partition_snapshot>& out,
                          uint32_t& partitions, std::string& error);

} // namespace keymesh::state
