// HTTP message types shared by the Beast server and the request handlers,
// and the helpers that build keymesh's JSON responses.
#pragma once

#include <functional>
#include <memory>
#include <type_traits>
#include <string>
#include <string_view>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

namespace keymesh::http {

namespace bhttp = boost::beast::http;

using request = bhttp::request<bhttp::string_body>;
using response = bhttp::response<bhttp::string_body>;

class event_channel;

/// Receives the one response to a request; may be called from any thread.
/// A transport that can stream (the Beast server) also takes a streamed
/// answer: a header, then whatever an event_channel yields.
class responder {
public:
  using respond_fn = std::function<void(response)>;
  using stream_fn
    = std::function<void(response, std::shared_ptr<event_channel>)>;

  responder() = default;

  template <class F,
            class = std::enable_if_t<
              !std::is_same_v<std::decay_t<F>, responder>
              && std::is_invocable_v<F&, response>>>
  responder(F f, stream_fn stream = {})
    : respond_(std::move(f)), stream_(std::move(stream)) {
  }

  void operator()(response res) const {
    respond_(std::move(res));
  }

  bool can_stream() const {
    return static_cast<bool>(stream_);
  }

  /// Sends HEAD (no Content-Length; the connection closes at the end), then
  /// the channel's data as it arrives. Only when can_stream().
  void stream(response head, std::shared_ptr<event_channel> channel) const {
    stream_(std::move(head), std::move(channel));
  }

  const stream_fn& streamer() const {
    return stream_;
  }

private:
  respond_fn respond_;
  stream_fn stream_;
};

/// A JSON response with the given status and body, never cached.
response json_response(bhttp::status status, std::string body);

/// keymesh's error format: {"error": CODE, "error_description": TEXT}.
response error_response(bhttp::status status, std::string_view code,
                        std::string_view description);

/// The error code keymesh uses for an HTTP status (e.g. 404 → "not_found").
std::string_view error_code_for(bhttp::status status);

/// error_response with the standard code for STATUS.
response error_response(bhttp::status status, std::string_view description);

} // namespace keymesh::http
