#include "config/duration.hpp"

#include <array>
#include <cctype>
#include <limits>
#include <utility>

#include "config/settings.hpp"

namespace keymesh::config {

namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

bool is_alnum(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0;
}

/// Splits "30s" into ("30", "s"); the number part must be non-empty.
std::optional<std::pair<uint64_t, std::string_view>>
split_number(std::string_view text) {
  size_t digits = 0;
  while (digits < text.size() && is_digit(text[digits]))
    ++digits;
  auto number = parse_unsigned(text.substr(0, digits));
  if (!number)
    return std::nullopt;
  return std::make_pair(*number, text.substr(digits));
}

std::optional<uint64_t> checked_multiply(uint64_t value, uint64_t factor,
                                         uint64_t limit) {
  if (value > limit / factor)
    return std::nullopt;
  return value * factor;
}

/// A host name or IPv4 address: letters, digits, '.', '-', '_'.
bool is_plain_host(std::string_view host) {
  if (host.empty())
    return false;
  for (char c : host)
    if (!is_alnum(c) && c != '.' && c != '-' && c != '_')
      return false;
  return true;
}

/// The inside of "[...]": hex digits, ':' and '.' (IPv4-mapped), at least
/// one ':'.
bool is_ipv6_literal(std::string_view host) {
  if (host.find(':') == std::string_view::npos)
    return false;
  for (char c : host)
    if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.')
      return false;
  return true;
}

std::optional<uint16_t> parse_port(std::string_view text) {
  if (text.empty() || text.size() > 5)
    return std::nullopt;
  auto value = parse_unsigned(text);
  if (!value || *value > 65535)
    return std::nullopt;
  return static_cast<uint16_t>(*value);
}

} // namespace

std::optional<uint64_t> parse_unsigned(std::string_view text) {
  if (text.empty())
    return std::nullopt;
  uint64_t result = 0;
  constexpr auto max = std::numeric_limits<uint64_t>::max();
  for (char c : text) {
    if (!is_digit(c))
      return std::nullopt;
    auto digit = static_cast<uint64_t>(c - '0');
    if (result > (max - digit) / 10)
      return std::nullopt;
    result = result * 10 + digit;
  }
  return result;
}

std::optional<bool> parse_bool(std::string_view text) {
  std::string lower;
  for (char c : text)
    lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "true" || lower == "yes" || lower == "on" || lower == "1")
    return true;
  if (lower == "false" || lower == "no" || lower == "off" || lower == "0")
    return false;
  return std::nullopt;
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  static constexpr std::array<std::pair<std::string_view, uint64_t>, 6> units{{
      {"ms", 1},
      {"s", 1000},
      {"m", 60 * 1000},
      {"h", 60 * 60 * 1000},
      {"d", 24 * 60 * 60 * 1000},
      {"", 1000},
  }};
  auto parts = split_number(text);
  if (!parts)
    return std::nullopt;
  constexpr auto limit = static_cast<uint64_t>(
      std::numeric_limits<std::chrono::milliseconds::rep>::max());
  for (const auto& [suffix, factor] : units) {
    if (parts->second != suffix)
      continue;
    auto ms = checked_multiply(parts->first, factor, limit);
    if (!ms)
      return std::nullopt;
    return std::chrono::milliseconds{static_cast<int64_t>(*ms)};
  }
  return std::nullopt;
}

std::optional<size_t> parse_size(std::string_view text) {
  static constexpr std::array<std::pair<std::string_view, uint64_t>, 5> units{{
      {"B", 1},
      {"KiB", uint64_t{1} << 10},
      {"MiB", uint64_t{1} << 20},
      {"GiB", uint64_t{1} << 30},
      {"", 1},
  }};
  auto parts = split_number(text);
  if (!parts)
    return std::nullopt;
  constexpr auto limit =
      static_cast<uint64_t>(std::numeric_limits<size_t>::max());
  for (const auto& [suffix, factor] : units) {
    if (parts->second != suffix)
      continue;
    auto bytes = checked_multiply(parts->first, factor, limit);
    if (!bytes)
      return std::nullopt;
    return static_cast<size_t>(*bytes);
  }
  return std::nullopt;
}

std::string format_duration(std::chrono::milliseconds value) {
  // Days are accepted but never produced: "24h" reads better than "1d".
  static constexpr std::array<std::pair<const char*, int64_t>, 3> units{{
      {"h", 60 * 60 * 1000},
      {"m", 60 * 1000},
      {"s", 1000},
  }};
  auto ms = value.count();
  if (ms == 0)
    return "0s";
  for (const auto& [suffix, factor] : units)
    if (ms % factor == 0)
      return std::to_string(ms / factor) + suffix;
  return std::to_string(ms) + "ms";
}

std::string format_size(size_t bytes) {
  static constexpr std::array<std::pair<const char*, size_t>, 3> units{{
      {"GiB", size_t{1} << 30},
      {"MiB", size_t{1} << 20},
      {"KiB", size_t{1} << 10},
  }};
  if (bytes != 0)
    for (const auto& [suffix, factor] : units)
      if (bytes % factor == 0)
        return std::to_string(bytes / factor) + suffix;
  return std::to_string(bytes) + "B";
}

std::optional<host_port> parse_host_port(std::string_view text) {
  std::string_view host;
  std::string_view rest;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos)
      return std::nullopt;
    host = text.substr(1, close - 1);
    rest = text.substr(close + 1);
    if (!is_ipv6_literal(host))
      return std::nullopt;
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos)
      return std::nullopt;
    host = text.substr(0, colon);
    rest = text.substr(colon);
    if (!is_plain_host(host))
      return std::nullopt;
  }
  if (rest.empty() || rest.front() != ':')
    return std::nullopt;
  auto port = parse_port(rest.substr(1));
  if (!port)
    return std::nullopt;
  return host_port{std::string{host}, *port};
}

bool is_base_url(std::string_view text) {
  std::string_view rest;
  if (text.substr(0, 7) == "http://")
    rest = text.substr(7);
  else if (text.substr(0, 8) == "https://")
    rest = text.substr(8);
  else
    return false;
  auto slash = rest.find('/');
  auto authority = rest.substr(0, slash);
  auto path =
      slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
  for (char c : path)
    if (c <= ' ' || c == '?' || c == '#' || c == '\x7f')
      return false;
  if (authority.find('@') != std::string_view::npos)
    return false;
  // Either host alone or host:port; reuse the host:port rules for both.
  bool bracketed = !authority.empty() && authority.front() == '[';
  bool has_port = bracketed ? authority.back() != ']'
                            : authority.find(':') != std::string_view::npos;
  if (!has_port) {
    if (bracketed)
      return is_ipv6_literal(authority.substr(1, authority.size() - 2));
    return is_plain_host(authority);
  }
  auto parsed = parse_host_port(authority);
  return parsed && parsed->port != 0;
}

bool is_dns_name(std::string_view text) {
  if (text.empty() || text.size() > 253 || text.front() == '.')
    return false;
  return is_plain_host(text) && text.find("..") == std::string_view::npos;
}

} // namespace keymesh::config
