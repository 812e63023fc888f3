// GET /api/events: the bus as Server-Sent Events. Each stream is an actor
// subscribed to the bus for the requested topics; it formats events into an
// event_channel that the connection writes out. A client that falls behind
// (too many bytes queued, or the oldest waiting too long) is cut off; it
// reconnects with Last-Event-ID and resumes from the bus's retained log.
#include <chrono>
#include <deque>

#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "http/api.hpp"
#include "http/event_channel.hpp"

namespace keymesh::http {

namespace {

using nlohmann::json;
using steady = std::chrono::steady_clock;

constexpr size_t max_topics = 32;
constexpr size_t max_topic_bytes = 64;
constexpr size_t max_event_id_bytes = 512;

/// What one stream may hold for a slow client before it is cut off.
struct stream_limits {
  /// Bytes handed to the connection but not yet written.
  size_t channel_bytes = 1 << 20;
  /// Handed over only while the connection holds less than this.
  size_t low_water = 256 * 1024;
  /// Frames waiting in the actor (the resume backlog, live events).
  size_t pending_bytes = 32 << 20;
  std::chrono::milliseconds max_lag{30'000};
  std::chrono::milliseconds heartbeat{15'000};
  std::chrono::milliseconds retry{2'000};
};

bool valid_topic(std::string_view t) {
  if (t == "*")
    return true;
  if (t.empty() || t.size() > max_topic_bytes)
    return false;
  for (char c : t)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_'
        && c != '-')
      return false;
  return true;
}

/// One SSE frame: "id: <event id>@<node>", "event: <topic>", and the event
/// as one line of JSON (its payload embedded when it is JSON).
std::string frame(const bus_event& e, const std::string& node) {
  auto payload = json::parse(e.payload, nullptr, false);
  json data{{"id", e.id()},
            {"topic", e.topic},
            {"origin", e.origin},
            {"at", e.at},
            {"payload", payload.is_discarded() ? json(e.payload) : payload}};
  std::string out;
  out.reserve(e.payload.size() + 160);
  out += "id: ";
  out += e.id();
  out += '@';
  out += node;
  out += "\nevent: ";
  out += e.topic;
  out += "\ndata: ";
  out += data.dump(-1, ' ', false, json::error_handler_t::replace);
  out += "\n\n";
  return out;
}

struct stream_state {
  static inline const char* name = "event-stream";
  std::shared_ptr<event_channel> channel;
  std::string node;
  stream_limits limits;
  std::deque<std::pair<std::string, steady::time_point>> pending;
  size_t pending_bytes = 0;
  bool flush_scheduled = false;
};

/// One per stream (local only).
using event_stream_actor = caf::typed_actor<
  // A live event from the bus.
  caf::reacts_to<atom::event, bus_event>,
  // Flush what waits for a slow client (scheduled by flush itself).
  caf::reacts_to<atom::run>,
  // Heartbeat: a comment line keeps proxies from closing an idle stream.
  caf::reacts_to<atom::tick>>;

using stream_pointer = event_stream_actor::stateful_pointer<stream_state>;

/// Hands waiting frames to the connection while it has room; false when the
/// client is gone or too far behind (the actor then quits).
bool flush(stream_pointer self) {
  auto& st = self->state;
  while (!st.pending.empty()
         && st.channel->buffered() < st.limits.low_water) {
    auto& [text, since] = st.pending.front();
    if (!st.channel->push(text))
      return false;
    st.pending_bytes -= text.size();
    st.pending.pop_front();
  }
  if (st.channel->closed())
    return false;
  if (st.pending.empty())
    return true;
  if (st.pending_bytes > st.limits.pending_bytes
      || steady::now() - st.pending.front().second > st.limits.max_lag) {
    spdlog::info("events: a stream fell behind ({} bytes waiting); cut off",
                 st.pending_bytes);
    return false;
  }
  if (!st.flush_scheduled) {
    st.flush_scheduled = true;
    self->delayed_send(self, std::chrono::milliseconds{10}, atom::run_v);
  }
  return true;
}

void enqueue(stream_pointer self, std::string text) {
  auto& st = self->state;
  st.pending_bytes += text.size();
  st.pending.emplace_back(std::move(text), steady::now());
  if (!flush(self)) {
    st.channel->close();
    self->quit();
  }
}

event_stream_actor::behavior_type event_stream(stream_pointer self,
                           std::shared_ptr<event_channel> channel,
                           bus_actor bus, std::vector<std::string> topics,
                           std::string after, std::string node) {
  auto& st = self->state;
  st.channel = channel;
  st.node = std::move(node);
  // The connection closing ends the stream (client gone, shutdown).
  channel->on_close([weak = caf::actor_cast<caf::weak_actor_ptr>(self)] {
    if (auto strong = caf::actor_cast<caf::actor>(weak.lock()))
      caf::anon_send_exit(strong, caf::exit_reason::user_shutdown);
  });
  self->monitor(bus);
  self->set_down_handler([=](caf::down_msg&) {
    self->state.channel->finish();
    self->quit();
  });
  self->set_default_handler(caf::drop);
  enqueue(self, "retry: " + std::to_string(st.limits.retry.count())
                  + "\n: keymesh events\n\n");
  // await: live events wait until the backlog is queued.
  self
    ->request(bus, std::chrono::seconds{10}, atom::subscribe_v, topics,
              caf::actor_cast<caf::actor>(self), after)
    .await(
      [=](bus_event_list& backlog, bool found) {
        if (!found) {
          json gap{{"last_event_id", after},
                   {"reason", "the last event id is unknown or older than "
                              "the retention window: events may have been "
                              "missed; replaying every retained event"}};
          enqueue(self, "event: gap\ndata: " + gap.dump() + "\n\n");
        }
        for (auto& e : backlog)
          enqueue(self, frame(e, self->state.node));
      },
      [=](caf::error& err) {
        spdlog::warn("events: cannot subscribe to the bus: {}",
                     self->system().render(err));
        self->state.channel->finish();
        self->quit();
      });
  self->delayed_send(self, st.limits.heartbeat, atom::tick_v);
  return {
    [=](atom::event, bus_event& e) { enqueue(self, frame(e, self->state.node)); },
    [=](atom::run) {
      self->state.flush_scheduled = false;
      if (!flush(self)) {
        self->state.channel->close();
        self->quit();
      }
    },
    [=](atom::tick) {
      enqueue(self, ": ping\n\n");
      self->delayed_send(self, self->state.limits.heartbeat, atom::tick_v);
    },
  };
}

} // namespace

void api::get_events(const request& req, const route_params&,
                     responder& done) {
  if (!ctx_.bus)
    return done(error_response(bhttp::status::service_unavailable,
                               "the event bus is not running"));
  if (!done.can_stream())
    return done(error_response(bhttp::status::not_implemented,
                               "this transport cannot stream"));
  std::vector<std::string> topics;
  auto list = query_param(req.target(), "topics").value_or("*");
  for (size_t pos = 0; pos <= list.size();) {
    auto comma = list.find(',', pos);
    if (comma == std::string::npos)
      comma = list.size();
    auto topic = list.substr(pos, comma - pos);
    if (!valid_topic(topic))
      return done(error_response(
        bhttp::status::bad_request,
        "topics: a comma-separated list of topic names (letters, digits, "
        "'.', '_', '-'; at most 64 bytes each) or '*'"));
    if (std::find(topics.begin(), topics.end(), topic) == topics.end())
      topics.push_back(std::move(topic));
    pos = comma + 1;
  }
  if (topics.size() > max_topics)
    return done(error_response(bhttp::status::bad_request,
                               "topics: at most "
                                 + std::to_string(max_topics) + " topics"));
  std::string after;
  if (auto i = req.find("Last-Event-ID"); i != req.end())
    after = std::string{i->value()};
  else if (auto q = query_param(req.target(), "last_event_id"))
    after = *q;
  if (after.size() > max_event_id_bytes)
    return done(error_response(bhttp::status::bad_request,
                               "Last-Event-ID: at most "
                                 + std::to_string(max_event_id_bytes)
                                 + " bytes"));
  response head{bhttp::status::ok, req.version()};
  head.set(bhttp::field::content_type, "text/event-stream; charset=utf-8");
  head.set(bhttp::field::cache_control, "no-store");
  head.set("X-Accel-Buffering", "no");
  if (req.method() == bhttp::verb::head) // the header alone, no stream
    return done(std::move(head));
  stream_limits limits;
  auto channel = std::make_shared<event_channel>(limits.channel_bytes);
  ctx_.bus->home_system().spawn(event_stream, channel, ctx_.bus,
                                std::move(topics), std::move(after),
                                ctx_.status ? ctx_.status->instance_id
                                            : std::string{});
  done.stream(std::move(head), std::move(channel));
}

} // namespace keymesh::http
