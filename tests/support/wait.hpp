// Polling helpers for tests that wait on other processes or threads.
#pragma once

#include <chrono>
#include <thread>

namespace keymesh::test {

/// Polls PRED every POLL until it holds or LIMIT passes; returns its last
/// answer.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit,
                std::chrono::milliseconds poll = std::chrono::milliseconds{
                  50}) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred())
      return true;
    std::this_thread::sleep_for(poll);
  }
  return pred();
}

} // namespace keymesh::test
