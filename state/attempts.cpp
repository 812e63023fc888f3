#include "state/attempts.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "common/json_number.hpp"

namespace keymesh::state {

using nlohmann::json;

std::string encode_attempts(const attempt_counter& c) {
  return json{{"n", c.count}, {"w", c.window_start}, {"l", c.locked_until}}
      .dump();
}

attempt_counter decode_attempts(std::string_view stored) {
  attempt_counter c;
  auto j = json::parse(stored, nullptr, false);
  if (!j.is_object())
    return c;
  auto number = [&](const char* name) {
    auto i = j.find(name);
    return i == j.end() ? int64_t{0}
                        : exact_int64(*i, 0, int64_t{1} << 50).value_or(0);
  };
  c.count = std::max<int64_t>(0, number("n"));
  c.window_start = number("w");
  c.locked_until = number("l");
  return c;
}

attempt_decision reserve_attempt(attempt_counter c,
                                 const attempt_policy& policy, int64_t now_ms) {
  attempt_decision d;
  if (c.locked_until > now_ms) {
    d.next = c;
    d.expires_at = std::max(c.window_start + policy.window_ms, c.locked_until);
    return d;
  }
  if (c.locked_until != 0 || c.window_start + policy.window_ms <= now_ms ||
      c.window_start > now_ms)
    c = attempt_counter{0, now_ms, 0};
  ++c.count;
  if (c.count >= policy.limit)
    c.locked_until = now_ms + policy.lockout_ms;
  d.granted = true;
  d.next = c;
  d.expires_at = std::max(c.window_start + policy.window_ms, c.locked_until);
  return d;
}

} // namespace keymesh::state
