// Free loopback ports for test servers, picked below Linux's ephemeral range
// (32768+) so that outgoing connections of concurrent tests never take them.
#pragma once

#include <cstdint>
#include <random>
#include <stdexcept>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace keymesh::test {

/// Whether PORT on 127.0.0.1 can be bound for TYPE (SOCK_STREAM/SOCK_DGRAM).
inline bool loopback_port_free(uint16_t port, int type = SOCK_STREAM) {
  int fd = ::socket(AF_INET, type, 0);
  if (fd < 0)
    return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

/// The first of COUNT consecutive free TCP ports (free for UDP as well when
/// UDP_TOO) in 20000..30000.
inline uint16_t free_port_range(int count, bool udp_too = false) {
  std::mt19937 rng{std::random_device{}()};
  std::uniform_int_distribution<int> pick{20000, 30000};
  for (int attempt = 0; attempt < 200; ++attempt) {
    auto base = static_cast<uint16_t>(pick(rng));
    bool all = true;
    for (int i = 0; i < count && all; ++i) {
      auto port = static_cast<uint16_t>(base + i);
      all = loopback_port_free(port)
            && (!udp_too || loopback_port_free(port, SOCK_DGRAM));
    }
    if (all)
      return base;
  }
  throw std::runtime_error("no free loopback port range");
}

} // namespace keymesh::test
