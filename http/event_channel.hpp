// A one-way, thread-safe pipe from a producer (an actor) to a streamed HTTP
// response (Server-Sent Events): the producer pushes text, the connection's
// strand takes it and writes it. Either side can end it: the producer
// finishes, the connection closes (client gone, write timeout, shutdown).
#pragma once

#include <functional>
#include <mutex>
#include <string>
#include <string_view>

namespace keymesh::http {

class event_channel {
public:
  /// At most MAX_BUFFERED bytes wait to be written; a push beyond that
  /// closes the channel (the client is too slow and is cut off).
  explicit event_channel(size_t max_buffered);

  // -- producer (any thread) ------------------------------------------------

  /// Queues TEXT; false once the channel is closed (then the producer
  /// stops).
  bool push(std::string_view text);

  /// No more data: the connection closes once the queue is written.
  void finish();

  /// Bytes queued and not yet taken by the connection.
  size_t buffered() const;

  bool closed() const;

  /// Runs once when the channel closes (at once if it is closed already).
  void on_close(std::function<void()> f);

  // -- consumer (the connection) --------------------------------------------

  /// Called (from the pushing thread) when data or the finish arrives while
  /// the consumer waits for it; the consumer then calls take().
  void on_ready(std::function<void()> f);

  struct chunk {
    std::string data;
    /// The producer finished (or the channel closed) and DATA is the rest.
    bool last = false;
  };

  /// Everything queued; arms on_ready again when nothing was.
  chunk take();

  /// The connection is gone: later pushes fail.
  void close();

private:
  /// Under the lock: what to call once it is released.
  std::function<void()> close_locked();

  mutable std::mutex mutex_;
  std::string queue_;
  size_t max_buffered_;
  bool finished_ = false;
  bool closed_ = false;
  bool waiting_ = false;
  std::function<void()> ready_;
  std::function<void()> closed_fn_;
};

} // namespace keymesh::http
