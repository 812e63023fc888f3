// A Server-Sent Events client for integration tests: opens GET /api/events
// on a raw loopback socket and parses the frames as they arrive.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "support/http_client.hpp"

namespace keymesh::test {

struct sse_event {
  std::string id;
  std::string event;
  std::string data;

  nlohmann::json json() const {
    return nlohmann::json::parse(data, nullptr, false);
  }
};

class event_stream {
public:
  /// Opens the stream; STATUS holds the response status (0: no answer).
  event_stream(uint16_t port, const std::string& target,
               const std::string& headers)
    : conn_(port) {
    conn_.send_raw(make_request("GET", target, {}, headers));
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{5};
    while (raw_.find("\r\n\r\n") == std::string::npos && read_some(deadline))
      ;
    auto end = raw_.find("\r\n\r\n");
    if (end == std::string::npos)
      return;
    head = raw_.substr(0, end);
    raw_.erase(0, end + 4);
    if (head.size() > 12)
      status = static_cast<unsigned>(std::stoi(head.substr(9, 3)));
  }

  /// Reads until PRED holds for the events so far or LIMIT passes.
  bool wait_until(const std::function<bool(const std::vector<sse_event>&)>& pred,
                  std::chrono::milliseconds limit = std::chrono::seconds{10}) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      parse();
      if (pred(events))
        return true;
      if (!read_some(deadline))
        return pred(events);
    }
  }

  /// Events of TOPIC so far.
  std::vector<sse_event> of(const std::string& topic) const {
    std::vector<sse_event> out;
    for (auto& e : events)
      if (e.event == topic)
        out.push_back(e);
    return out;
  }

  /// Whether the server closed the stream within LIMIT.
  bool closed_within(std::chrono::milliseconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (read_some(deadline))
      ;
    return closed_;
  }

  std::string head;
  unsigned status = 0;
  std::vector<sse_event> events;
  /// Comment lines (": ...") seen.
  std::vector<std::string> comments;

private:
  int fd() {
    return conn_.native_handle();
  }

  bool read_some(std::chrono::steady_clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || closed_)
      return false;
    pollfd p{fd(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0)
      return false;
    char buf[65536];
    auto n = ::recv(fd(), buf, sizeof(buf), 0);
    if (n <= 0) {
      closed_ = true;
      return false;
    }
    raw_.append(buf, static_cast<size_t>(n));
    return true;
  }

  void parse() {
    size_t end;
    while ((end = raw_.find("\n\n")) != std::string::npos) {
      auto block = raw_.substr(0, end);
      raw_.erase(0, end + 2);
      sse_event e;
      bool any = false;
      size_t pos = 0;
      while (pos <= block.size()) {
        auto nl = block.find('\n', pos);
        if (nl == std::string::npos)
          nl = block.size();
        auto line = block.substr(pos, nl - pos);
        pos = nl + 1;
        if (line.rfind(": ", 0) == 0 || line == ":")
          comments.push_back(line.size() > 2 ? line.substr(2) : "");
        else if (line.rfind("id: ", 0) == 0)
          e.id = line.substr(4), any = true;
        else if (line.rfind("event: ", 0) == 0)
          e.event = line.substr(7), any = true;
        else if (line.rfind("data: ", 0) == 0)
          e.data += line.substr(6), any = true;
      }
      if (any)
        events.push_back(std::move(e));
    }
  }

  connection conn_;
  std::string raw_;
  bool closed_ = false;
};

} // namespace keymesh::test
