// A small blocking HTTP/1.1 client (GET, and POST of a small body) for one
// URL at a time, over Beast and
// Asio, with TLS (chain and hostname verification), a deadline on every step
// and a bound on the body it reads. It blocks the calling thread: use it from
// a dedicated thread (a detached actor), never from a CAF worker or a Beast
// handler. It never throws; it does not follow redirects.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace keymesh::net {

struct fetch_options {
  /// Bound on the whole exchange: resolve, connect, TLS handshake, write and
  /// read each get what is left of it.
  std::chrono::milliseconds timeout{5000};
  size_t max_body_bytes = 1 << 20;
  /// PEM file of trusted CAs for https; empty: the system's default store.
  std::string ca_file;
  /// Connect only to public addresses: a name that resolves to loopback,
  /// private, link-local, shared, multicast or reserved addresses only is
  /// refused (the addresses checked are the ones connected to).
  bool public_only = false;
};

struct fetch_result {
  /// The response's status; 0 when no complete response arrived.
  int status = 0;
  std::string body;
  /// The response's ETag header, verbatim (empty if absent).
  std::string etag;
  /// Why no complete response arrived (then status is 0); empty otherwise.
  /// An HTTP error status is not an error here: the caller judges status.
  std::string error;
  /// The address was refused by fetch_options::public_only (asking again
  /// gets the same answer unless DNS changes).
  bool refused = false;
  /// The response's Location header, verbatim (empty if absent).
  std::string location = {};
};

/// The parts of an http:// or https:// URL the client needs.
struct parsed_url {
  bool tls = false;
  /// Without brackets for IPv6 literals.
  std::string host;
  uint16_t port = 0;
  /// Path and query, at least "/".
  std::string target;
  /// What goes into the Host header: host (in brackets for IPv6), with
  /// ":port" unless it is the scheme's default.
  std::string host_header;
};

/// Parses URL strictly: scheme http or https, a host (a DNS name, an IPv4
/// address, or an IPv6 address in brackets), an optional port 1..65535, an
/// optional path and query. User info, fragments, whitespace and control
/// characters are refused. nullopt with ERROR set when the URL is unusable.
std::optional<parsed_url> parse_url(std::string_view url, std::string& error);

/// Whether ADDRESS (an IPv4 or IPv6 literal) is a public unicast address:
/// not loopback, private (RFC 1918, fc00::/7), shared (100.64/10),
/// link-local, unspecified, multicast, documentation, benchmarking or
/// reserved. An IPv4-mapped IPv6 address is judged as its IPv4 address.
bool is_public_address(std::string_view address);

/// POSTs BODY with Content-Type CONTENT_TYPE to URL once.
fetch_result http_post(const std::string& url, const std::string& content_type,
                       const std::string& body, const fetch_options& opts);

/// GETs URL once, sending If-None-Match: IF_NONE_MATCH when it is not empty.
fetch_result http_get(const std::string& url, const std::string& if_none_match,
                      const fetch_options& opts);

} // namespace keymesh::net
