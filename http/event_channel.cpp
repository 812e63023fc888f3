#include "http/event_channel.hpp"

#include <utility>

namespace keymesh::http {

event_channel::event_channel(size_t max_buffered) : max_buffered_(max_buffered) {
}

std::function<void()> event_channel::close_locked() {
  if (closed_)
    return {};
  closed_ = true;
  auto on_closed = std::move(closed_fn_);
  std::function<void()> wake;
  if (waiting_) {
    waiting_ = false;
    wake = ready_;
  }
  return [on_closed = std::move(on_closed), wake = std::move(wake)] {
    if (on_closed)
      on_closed();
    if (wake)
      wake();
  };
}

bool event_channel::push(std::string_view text) {
  std::function<void()> after;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    if (closed_ || finished_)
      return false;
    if (queue_.size() + text.size() > max_buffered_) {
      after = close_locked();
    } else {
      queue_.append(text);
      if (waiting_) {
        waiting_ = false;
        after = ready_;
      }
    }
  }
  if (after)
    after();
  return !closed();
}

void event_channel::finish() {
  std::function<void()> wake;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    if (finished_ || closed_)
      return;
    finished_ = true;
    if (waiting_) {
      waiting_ = false;
      wake = ready_;
    }
  }
  if (wake)
    wake();
}

size_t event_channel::buffered() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return queue_.size();
}

bool event_channel::closed() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return closed_;
}

void event_channel::on_close(std::function<void()> f) {
  {
    std::lock_guard<std::mutex> guard{mutex_};
    if (!closed_) {
      closed_fn_ = std::move(f);
      return;
    }
  }
  f();
}

void event_channel::on_ready(std::function<void()> f) {
  std::lock_guard<std::mutex> guard{mutex_};
  ready_ = std::move(f);
}

event_channel::chunk event_channel::take() {
  std::lock_guard<std::mutex> guard{mutex_};
  chunk out;
  out.data = std::move(queue_);
  queue_.clear();
  out.last = finished_ || closed_;
  if (out.data.empty() && !out.last)
    waiting_ = true;
  return out;
}

void event_channel::close() {
  std::function<void()> after;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    queue_.clear();
    after = close_locked();
  }
  if (after)
    after();
}

} // namespace keymesh::http
