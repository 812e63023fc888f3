// Fuzz target: the Server-Sent Events reader (net/sse) of keymesh admin
// tail. The input is read whole and again in chunks whose sizes come from
// its first byte; both must give the same events, every event within the
// line limit, and nothing may crash.
#include <cstdint>
#include <string>
#include <vector>

#include "net/sse.hpp"

using keymesh::net::sse_event;
using keymesh::net::sse_reader;

namespace {

constexpr size_t limit = 256;

struct run {
  std::vector<sse_event> events;
  sse_reader::status last = sse_reader::status::more;
  sse_reader reader{[this](const sse_event& ev) {
                      if (ev.data.size() > limit || ev.type.empty())
                        __builtin_trap();
                      events.push_back(ev);
                      return events.size() < 1000;
                    },
                    limit};
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0)
    return 0;
  size_t chunk = data[0] % 16 + 1;
  std::string_view text{reinterpret_cast<const char*>(data) + 1, size - 1};
  run whole;
  whole.last = whole.reader.feed(text);
  run split;
  for (size_t i = 0; i < text.size() && split.last == sse_reader::status::more;
       i += chunk)
    split.last = split.reader.feed(text.substr(i, chunk));
  if (whole.last != split.last || whole.events.size() != split.events.size())
    __builtin_trap();
  for (size_t e = 0; e < whole.events.size(); ++e)
    if (whole.events[e].id != split.events[e].id
        || whole.events[e].type != split.events[e].type
        || whole.events[e].data != split.events[e].data)
      __builtin_trap();
  return 0;
}
