// A small blocking HTTP/1.1 client over a raw loopback socket, for
// integration tests: it can send well-formed requests and arbitrary bytes.
#pragma once

#include <chrono>
#include <stdexcept>
#include <string>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

namespace keymesh::test {

namespace bhttp = boost::beast::http;

using response = bhttp::response<bhttp::string_body>;

class connection {
public:
  explicit connection(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
      throw std::runtime_error("cannot connect to 127.0.0.1:"
                               + std::to_string(port));
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }

  ~connection() {
    if (fd_ >= 0)
      ::close(fd_);
  }

  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  void send_raw(const std::string& bytes) {
    size_t off = 0;
    while (off < bytes.size()) {
      auto n = ::send(fd_, bytes.data() + off, bytes.size() - off,
                      MSG_NOSIGNAL);
      if (n <= 0)
        throw std::runtime_error("send failed");
      off += static_cast<size_t>(n);
    }
  }

  /// Reads one response (within LIMIT); throws on timeout or close.
  response read_response(std::chrono::milliseconds limit
                         = std::chrono::seconds{10},
                         bool head = false) {
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(64 << 20);
    parser.skip(head); // a response to HEAD has no body
    auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      if (buffer_.size() > 0) {
        boost::beast::error_code ec;
        auto used = parser.put(buffer_.data(), ec);
        buffer_.consume(used);
        if (ec && ec != bhttp::error::need_more)
          throw std::runtime_error("bad response: " + ec.message());
        if (parser.is_done())
          return parser.release();
        if (used > 0 && !ec)
          continue;
      }
      if (!read_some(deadline)) {
        if (parser.got_some() && !parser.is_done()) {
          boost::beast::error_code ec;
          parser.put_eof(ec);
          if (!ec && parser.is_done())
            return parser.release();
        }
        throw std::runtime_error("connection closed or timed out");
      }
    }
  }

  /// Waits until the peer closes the connection; false on timeout.
  bool wait_closed(std::chrono::milliseconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0)
        return false;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0)
        return false;
      char buf[4096];
      auto n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0)
        return true;
    }
  }

  int native_handle() const {
    return fd_;
  }

private:
  bool read_some(std::chrono::steady_clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0)
      return false;
    auto buf = buffer_.prepare(65536);
    auto n = ::recv(fd_, buf.data(), buf.size(), 0);
    if (n <= 0)
      return false;
    buffer_.commit(static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  boost::beast::flat_buffer buffer_;
};

/// Builds a request's bytes.
inline std::string make_request(const std::string& method,
                                const std::string& target,
                                const std::string& body = {},
                                const std::string& extra_headers = {},
                                const std::string& content_type
                                = "application/json") {
  std::string out = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  if (!body.empty() || method == "POST") {
    if (!content_type.empty())
      out += "Content-Type: " + content_type + "\r\n";
    out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  out += extra_headers;
  out += "\r\n";
  out += body;
  return out;
}

/// One request on a fresh connection.
inline response request(uint16_t port, const std::string& method,
                        const std::string& target, const std::string& body = {},
                        const std::string& extra_headers = {},
                        const std::string& content_type = "application/json") {
  connection c{port};
  c.send_raw(make_request(method, target, body, extra_headers, content_type));
  return c.read_response();
}

} // namespace keymesh::test
