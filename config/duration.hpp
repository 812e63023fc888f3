// Text parsing helpers for configuration values: durations, byte sizes,
// addresses and URLs. Pure functions with no dependency on the schema.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace keymesh::config {

/// "500ms", "30s", "15m", "24h", "7d"; a plain integer means seconds.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

/// "512B", "16KiB", "1MiB", "1GiB"; a plain integer means bytes.
std::optional<size_t> parse_size(std::string_view text);

/// The largest unit up to hours that represents the value exactly: 24h, 90s,
/// 500ms.
std::string format_duration(std::chrono::milliseconds value);

/// The largest binary unit that represents the value exactly: 1MiB, 1500B.
std::string format_size(size_t bytes);

/// A plain decimal integer without sign; nullopt on overflow or other text.
std::optional<uint64_t> parse_unsigned(std::string_view text);

/// true, false, yes, no, on, off, 1, 0 (any case).
std::optional<bool> parse_bool(std::string_view text);

/// An http:// or https:// base URL with a host, an optional port 1..65535
/// and an optional path; no user info, query or fragment.
bool is_base_url(std::string_view text);

/// A DNS name such as "_keymesh._tcp.example.com".
bool is_dns_name(std::string_view text);

} // namespace keymesh::config
