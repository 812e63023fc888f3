// A reader of Server-Sent Events (the text/event-stream format of
// GET /api/events), for clients such as `keymesh admin tail`: bytes in as
// they arrive, complete events out. Every line is bounded.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace keymesh::net {

struct sse_event {
  /// The last "id:" of the event (empty: none).
  std::string id;
  /// The "event:" field; "message" when the event has none.
  std::string type;
  /// The "data:" lines, joined by "\n".
  std::string data;
};

class sse_reader {
public:
  enum class status {
    /// Every complete event was handed over; more bytes are welcome.
    more,
    /// The handler asked to stop.
    stopped,
    /// A line (or an event's data) is longer than the limit: the stream is
    /// not one to trust, the reader is done.
    too_long,
  };

  /// ON_EVENT returns false to stop reading.
  using handler = std::function<bool(const sse_event&)>;

  /// MAX_LINE bounds each line and each event's data, in bytes.
  explicit sse_reader(handler on_event, size_t max_line = 1024 * 1024)
    : on_event_(std::move(on_event)), max_line_(max_line) {
  }

  /// Feeds the next BYTES of the stream.
  status feed(std::string_view bytes);

private:
  /// One complete line, without its end.
  status line(std::string_view text);

  handler on_event_;
  size_t max_line_;
  std::string pending_;
  /// The previous chunk ended in "\r": a "\n" first in this one belongs to it.
  bool after_cr_ = false;
  sse_event event_;
  bool has_data_ = false;
  bool done_ = false;
};

} // namespace keymesh::net
