// Strangers at a cluster port, for the suites that check that nobody
// without the cluster's credentials can disturb the links between the nodes
// that have them: idle TCP connections, garbage, TLS clients without a
// certificate or with one from another CA, handshakes that stall half way,
// and a TLS client with a valid certificate that then talks nonsense. Each
// function returns promptly (socket timeouts of a second); the ones that
// keep a connection open return its descriptor. OpenSSL only.
#pragma once

#include <chrono>
#include <memory>
#include <random>
#include <string>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

namespace keymesh::test::knock {

/// A TCP connection to 127.0.0.1:PORT with one-second socket timeouts, or -1.
inline int connect_to(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  timeval tv{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

/// Whether the other side closed FD within LIMIT (a read ends or fails).
inline bool closed_by_peer(int fd, std::chrono::milliseconds limit) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(limit.count())) != 1)
    return false;
  char buf[256];
  auto n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
  return n <= 0;
}

/// Connects, sends random bytes, closes.
inline void garbage(uint16_t port, std::mt19937& rng) {
  int fd = connect_to(port);
  if (fd < 0)
    return;
  std::string junk(64 + rng() % 512, '\0');
  for (auto& c : junk)
    c = static_cast<char>(rng());
  (void)!::send(fd, junk.data(), junk.size(), MSG_NOSIGNAL);
  ::close(fd);
}

/// Connects and closes at once.
inline void connect_and_close(uint16_t port) {
  int fd = connect_to(port);
  if (fd >= 0)
    ::close(fd);
}

/// Sends the first bytes of a TLS ClientHello and stops there; returns the
/// descriptor (the caller closes it), or -1.
inline int stall_mid_handshake(uint16_t port) {
  int fd = connect_to(port);
  if (fd < 0)
    return -1;
  const unsigned char start[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01,
                                 0x00, 0x01, 0xfc, 0x03, 0x03};
  (void)!::send(fd, start, sizeof(start), MSG_NOSIGNAL);
  return fd;
}

struct ssl_ctx_deleter {
  void operator()(SSL_CTX* p) const {
    SSL_CTX_free(p);
  }
};

/// A TLS client context: with CERT_PEM and KEY_PEM (both empty: no client
/// certificate). The server's certificate is not checked: the stranger only
/// wants in.
inline std::shared_ptr<SSL_CTX> client_context(const std::string& cert_pem,
                                               const std::string& key_pem) {
  std::shared_ptr<SSL_CTX> ctx{SSL_CTX_new(TLS_client_method()),
                               ssl_ctx_deleter{}};
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  if (!cert_pem.empty()) {
    auto* cb =
        BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size()));
    auto* cert = PEM_read_bio_X509(cb, nullptr, nullptr, nullptr);
    BIO_free(cb);
    auto* kb =
        BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size()));
    auto* key = PEM_read_bio_PrivateKey(kb, nullptr, nullptr, nullptr);
    BIO_free(kb);
    SSL_CTX_use_certificate(ctx.get(), cert);
    SSL_CTX_use_PrivateKey(ctx.get(), key);
    X509_free(cert);
    EVP_PKEY_free(key);
  }
  return ctx;
}

/// A TLS handshake with CTX; returns whether it completed. With
/// THEN_GARBAGE, random bytes follow a completed handshake (a client with
/// a valid certificate that does not speak the cluster protocol).
inline bool tls_attempt(uint16_t port, SSL_CTX* ctx, std::mt19937& rng,
                        bool then_garbage = false) {
  int fd = connect_to(port);
  if (fd < 0)
    return false;
  auto* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  bool done = SSL_connect(ssl) == 1;
  if (done && then_garbage) {
    std::string junk(64, '\0');
    for (auto& c : junk)
      c = static_cast<char>(rng());
    SSL_write(ssl, junk.data(), static_cast<int>(junk.size()));
    char buf[64];
    SSL_read(ssl, buf, sizeof(buf)); // until the node closes (or 1 s)
  }
  SSL_free(ssl);
  ERR_clear_error();
  ::close(fd);
  return done;
}

} // namespace keymesh::test::knock
