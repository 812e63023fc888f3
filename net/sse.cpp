#include "net/sse.hpp"

namespace keymesh::net {

sse_reader::status sse_reader::feed(std::string_view bytes) {
  if (done_)
    return status::stopped;
  for (char c : bytes) {
    if (after_cr_) {
      after_cr_ = false;
      if (c == '\n')
        continue; // "\r\n": one line end
    }
    if (c == '\r' || c == '\n') {
      after_cr_ = c == '\r';
      auto st = line(pending_);
      pending_.clear();
      if (st != status::more) {
        done_ = true;
        return st;
      }
      continue;
    }
    if (pending_.size() >= max_line_) {
      done_ = true;
      return status::too_long;
    }
    pending_ += c;
  }
  return status::more;
}

sse_reader::status sse_reader::line(std::string_view text) {
  if (text.empty()) { // the end of an event: dispatched if it has data
    auto dispatch = has_data_;
    auto ev = std::move(event_);
    event_ = sse_event{};
    event_.id = ev.id; // the last event id carries over
    has_data_ = false;
    if (!dispatch)
      return status::more;
    if (ev.type.empty())
      ev.type = "message";
    return on_event_(ev) ? status::more : status::stopped;
  }
  if (text.front() == ':')
    return status::more; // a comment (the node's heartbeat)
  auto colon = text.find(':');
  auto field = text.substr(0, colon);
  std::string_view value;
  if (colon != std::string_view::npos) {
    value = text.substr(colon + 1);
    if (!value.empty() && value.front() == ' ')
      value.remove_prefix(1);
  }
  if (field == "data") {
    if (event_.data.size() + value.size() + 1 > max_line_)
      return status::too_long;
    if (has_data_)
      event_.data += '\n';
    event_.data.append(value.data(), value.size());
    has_data_ = true;
  } else if (field == "event") {
    event_.type.assign(value.data(), value.size());
  } else if (field == "id") {
    // An id with a NUL is ignored (the standard's rule).
    if (value.find('\0') == std::string_view::npos)
      event_.id.assign(value.data(), value.size());
  }
  // "retry" and unknown fields: nothing to do for this reader.
  return status::more;
}

} // namespace keymesh::net
