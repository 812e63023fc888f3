// The Server-Sent Events reader (net/sse) that keymesh admin tail uses.
#define CAF_SUITE sse
#include "caf/test/unit_test.hpp"

#include <vector>

#include "net/sse.hpp"

using keymesh::net::sse_event;
using keymesh::net::sse_reader;

namespace {

struct collected {
  std::vector<sse_event> events;
  sse_reader reader{[this](const sse_event& ev) {
    events.push_back(ev);
    return true;
  }};
};

// What keymesh sends: retry, heartbeats, events with ids, a gap event.
const std::string stream = "retry: 2000\n\n"
                           ": ping\n\n"
                           "id: 7@node-1\nevent: revocations\n"
                           "data: {\"a\":1}\n\n"
                           "event: gap\r\ndata: line one\r\ndata: line two\r\n\r\n"
                           "data:no space\rdata:  two spaces\r\r";

} // namespace

CAF_TEST(events_come_out_whole_however_the_bytes_are_split) {
  collected whole;
  CAF_CHECK(whole.reader.feed(stream) == sse_reader::status::more);
  CAF_REQUIRE_EQUAL(whole.events.size(), 3u);
  CAF_CHECK_EQUAL(whole.events[0].id, "7@node-1");
  CAF_CHECK_EQUAL(whole.events[0].type, "revocations");
  CAF_CHECK_EQUAL(whole.events[0].data, R"({"a":1})");
  // The last id carries over; CRLF ends lines; data lines join with \n.
  CAF_CHECK_EQUAL(whole.events[1].id, "7@node-1");
  CAF_CHECK_EQUAL(whole.events[1].type, "gap");
  CAF_CHECK_EQUAL(whole.events[1].data, "line one\nline two");
  // CR alone ends lines; one space after the colon is dropped, no more.
  CAF_CHECK_EQUAL(whole.events[2].type, "message");
  CAF_CHECK_EQUAL(whole.events[2].data, "no space\n two spaces");
  for (size_t size : {1u, 2u, 3u, 7u}) {
    collected split;
    for (size_t i = 0; i < stream.size(); i += size)
      split.reader.feed(std::string_view{stream}.substr(i, size));
    CAF_REQUIRE_EQUAL(split.events.size(), whole.events.size());
    for (size_t e = 0; e < whole.events.size(); ++e) {
      CAF_CHECK_EQUAL(split.events[e].id, whole.events[e].id);
      CAF_CHECK_EQUAL(split.events[e].type, whole.events[e].type);
      CAF_CHECK_EQUAL(split.events[e].data, whole.events[e].data);
    }
  }
}

CAF_TEST(an_event_is_dispatched_only_at_its_blank_line) {
  collected c;
  c.reader.feed("data: half");
  c.reader.feed("\n");
  CAF_CHECK(c.events.empty());
  c.reader.feed("\n");
  CAF_CHECK_EQUAL(c.events.size(), 1u);
  // Fields without data dispatch nothing.
  c.reader.feed("event: nothing\nid: 9\n\n");
  CAF_CHECK_EQUAL(c.events.size(), 1u);
}

CAF_TEST(the_handler_stops_the_reader) {
  int seen = 0;
  sse_reader reader{[&](const sse_event&) { return ++seen < 2; }};
  CAF_CHECK(reader.feed("data: 1\n\ndata: 2\n\ndata: 3\n\n")
            == sse_reader::status::stopped);
  CAF_CHECK_EQUAL(seen, 2);
  CAF_CHECK(reader.feed("data: 4\n\n") == sse_reader::status::stopped);
  CAF_CHECK_EQUAL(seen, 2);
}

CAF_TEST(lines_and_data_are_bounded) {
  int seen = 0;
  sse_reader line_limit{[&](const sse_event&) { return ++seen, true; }, 16};
  CAF_CHECK(line_limit.feed("data: 0123456789") == sse_reader::status::more);
  CAF_CHECK(line_limit.feed("abcdef") == sse_reader::status::too_long);
  CAF_CHECK(line_limit.feed("\n\n") == sse_reader::status::stopped);
  // Many short data lines add up to the same bound.
  sse_reader data_limit{[&](const sse_event&) { return ++seen, true; }, 16};
  CAF_CHECK(data_limit.feed("data: 012345\ndata: 012345\ndata: 012345\n")
            == sse_reader::status::too_long);
  CAF_CHECK_EQUAL(seen, 0);
}
