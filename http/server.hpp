// The Beast HTTP/1.1 server: a listener and one session per connection, each
// on its own strand, with keep-alive and limits on everything read from the
// network (header bytes and count, body bytes, connections, time).
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "http/api.hpp"

namespace keymesh::http {

struct server_limits {
  size_t max_body_bytes = 1 << 20;
  size_t max_header_bytes = 16 * 1024;
  size_t max_header_count = 100;
  size_t max_connections = 10000;
  /// The whole of one request (and the wait for the first request of a
  /// connection) must arrive within this time.
  std::chrono::milliseconds read_timeout{10'000};
  /// A keep-alive connection may wait this long for its next request.
  std::chrono::milliseconds idle_timeout{60'000};
  /// A request the API has not answered this long after it was read gets a
  /// 504 (http.request_timeout); a later answer is dropped. The API's own
  /// requests to local actors need no timeouts of their own.
  std::chrono::milliseconds response_timeout{5'000};

  /// The http.* limits; an error names a setting the server cannot use.
  static caf::expected<server_limits> from_settings(const config::settings& c);
};

class server {
public:
  server(api& handler, server_limits limits, unsigned threads);
  ~server();

  server(const server&) = delete;
  server& operator=(const server&) = delete;

  /// Binds and listens; returns the bound port (useful with port 0). Throws
  /// std::runtime_error naming the address on failure.
  uint16_t listen(const std::string& host, uint16_t port);

  /// Runs the I/O threads.
  void start();

  /// Stops accepting, closes connections and joins the I/O threads.
  void stop();

  struct core;

private:
  class listener;

  unsigned threads_;
  std::shared_ptr<core> core_;
  std::shared_ptr<listener> listener_;
  std::vector<std::thread> workers_;
  bool stopped_ = false;
};

} // namespace keymesh::http
