#include "http/server.hpp"

#include <array>

#include <algorithm>
#include <future>
#include <mutex>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include "actors/error.hpp"
#include "http/event_channel.hpp"

namespace keymesh::http {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;

/// A connection the server can close from outside its strand.
class closable {
public:
  virtual ~closable() = default;
  virtual void close_soon() = 0;
};

/// What the listener and every session share. Sessions keep it alive, so a
/// reply that arrives from an actor after the server stopped finds a live
/// (stopped) io_context and is dropped.
struct server::core {
  core(api& h, server_limits l, unsigned threads) : handler(h), limits(l) {
    for (unsigned i = 0; i < threads; ++i) {
      // One single-threaded io_context per I/O thread: a connection lives on
      // one of them, so no handler ever wakes another thread.
      contexts.push_back(std::make_unique<net::io_context>(1));
      guards.push_back(net::make_work_guard(*contexts.back()));
    }
  }

  /// The context for the next accepted connection (round robin).
  net::io_context& next_context() {
    return *contexts[next.fetch_add(1, std::memory_order_relaxed)
                     % contexts.size()];
  }

  std::vector<std::unique_ptr<net::io_context>> contexts;
  std::vector<net::executor_work_guard<net::io_context::executor_type>> guards;
  std::atomic<size_t> next{0};
  api& handler;
  server_limits limits;
  std::atomic<size_t> connections{0};
  std::atomic<bool> stopped{false};
  std::mutex sessions_mutex;
  std::vector<std::weak_ptr<closable>> sessions;

  void track(std::weak_ptr<closable> s) {
    std::lock_guard<std::mutex> guard{sessions_mutex};
    // Forget closed sessions now and then so the list stays small.
    if (sessions.size() >= 64 && sessions.size() % 64 == 0)
      sessions.erase(std::remove_if(sessions.begin(), sessions.end(),
                                    [](auto& w) { return w.expired(); }),
                     sessions.end());
    sessions.push_back(std::move(s));
  }

  void close_all() {
    std::lock_guard<std::mutex> guard{sessions_mutex};
    for (auto& w : sessions)
      if (auto s = w.lock())
        s->close_soon();
    sessions.clear();
  }
};

namespace {

/// Each connection's handlers run on its own strand of one io_context.
using strand_executor = net::strand<net::io_context::executor_type>;
using strand_socket = tcp::socket::rebind_executor<strand_executor>::other;

using strand_stream = beast::basic_stream<tcp, strand_executor>;

/// A connection whose request was answered with a stream of Server-Sent
/// Events: it takes the connection over from its http_session (the way an
/// HTTP session hands a connection to a WebSocket session after an
/// upgrade), writes the header, then whatever the channel yields. The
/// connection closes when the channel ends, the client goes, or a write
/// stalls for read_timeout (a slow client).
class sse_session : public closable,
                    public std::enable_shared_from_this<sse_session> {
public:
  sse_session(strand_stream&& stream, std::shared_ptr<server::core> core)
    : core_(std::move(core)),
      stream_(std::move(stream)),
      limits_(core_->limits) {
  }

  ~sse_session() {
    core_->connections.fetch_sub(1);
  }

  /// Starts the stream: HEAD (an HTTP/VERSION response) then the events.
  void run(response head, unsigned version,
           std::shared_ptr<event_channel> channel) {
    channel_ = std::move(channel);
    head.version(version);
    head.keep_alive(false);
    head.set(bhttp::field::server, "keymesh");
    head.body().clear();
    head.erase(bhttp::field::content_length);
    head_ = std::make_shared<response>(std::move(head));
    serializer_.emplace(*head_);
    std::weak_ptr<sse_session> weak = shared_from_this();
    channel_->on_ready([weak] {
      if (auto self = weak.lock())
        net::post(self->stream_.get_executor(), [self] { self->pump(); });
    });
    stream_.expires_after(limits_.read_timeout);
    bhttp::async_write_header(
      stream_, *serializer_,
      [self = shared_from_this()](beast::error_code ec, size_t) {
        if (ec)
          return self->do_close();
        self->watch_client();
        self->pump();
      });
  }

  void close_soon() override {
    net::post(stream_.get_executor(),
              [self = shared_from_this()] { self->do_close(); });
  }

private:
  // Reads (and ignores) what the client sends, to notice when it goes.
  void watch_client() {
    stream_.socket().async_read_some(
      net::buffer(discard_),
      [self = shared_from_this()](beast::error_code ec, size_t) {
        if (ec)
          return self->do_close();
        self->watch_client();
      });
  }

  void pump() {
    if (writing_ || !channel_)
      return;
    auto chunk = channel_->take();
    if (chunk.data.empty()) {
      if (chunk.last)
        do_close();
      return;
    }
    writing_ = true;
    out_ = std::move(chunk.data);
    last_ = chunk.last;
    stream_.expires_after(limits_.read_timeout);
    net::async_write(stream_, net::buffer(out_),
                     [self = shared_from_this()](beast::error_code ec,
                                                 size_t) {
                       self->writing_ = false;
                       if (ec || self->last_)
                         return self->do_close();
                       self->stream_.expires_never();
                       self->pump();
                     });
  }

  void do_close() {
    if (channel_)
      channel_->close();
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.socket().close(ec);
  }

  // core_ comes first: it owns the io_context that stream_ uses.
  std::shared_ptr<server::core> core_;
  strand_stream stream_;
  const server_limits& limits_;
  std::shared_ptr<event_channel> channel_;
  std::shared_ptr<response> head_;
  std::optional<bhttp::response_serializer<bhttp::string_body>> serializer_;
  std::string out_;
  bool writing_ = false;
  bool last_ = false;
  std::array<char, 512> discard_;
};

/// One TCP connection: wait for a request, read its header, let the API
/// refuse it early or set its body limit, read the body, hand it to the API,
/// write the response (posted back onto this strand), repeat. An answer
/// that is a stream hands the connection to an sse_session.
class http_session : public closable,
                     public std::enable_shared_from_this<http_session> {
public:
  http_session(strand_socket&& socket, std::shared_ptr<server::core> core)
    : core_(std::move(core)),
      executor_(socket.get_executor()),
      stream_(std::move(socket)),
      buffer_(core_->limits.max_header_bytes + slack_bytes),
      handler_(core_->handler),
      limits_(core_->limits),
      deadline_(executor_) {
  }

  ~http_session() {
    if (!handed_off_) // else the sse_session holds the connection
      core_->connections.fetch_sub(1);
  }

  void run() {
    net::dispatch(executor_,
                  beast::bind_front_handler(&http_session::do_wait,
                                            shared_from_this(),
                                            limits_.read_timeout));
  }

  void close_soon() override {
    net::post(executor_,
              [self = shared_from_this()] { self->do_close(); });
  }

private:
  // Waits until the next request starts to arrive, at most TIMEOUT; then
  // the whole request must arrive within read_timeout.
  void do_wait(std::chrono::milliseconds timeout) {
    if (buffer_.size() > 0) // pipelined bytes are already here
      return do_read_header();
    stream_.expires_after(timeout);
    stream_.async_read_some(
      buffer_.prepare(std::min(first_read_bytes, buffer_.max_size())),
      beast::bind_front_handler(&http_session::on_first_bytes, shared_from_this()));
  }

  void on_first_bytes(beast::error_code ec, size_t n) {
    if (ec)
      return do_close();
    buffer_.commit(n);
    do_read_header();
  }

  void do_read_header() {
    body_limit_ = limits_.max_body_bytes; // until the route is known
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(limits_.max_header_bytes));
    parser_->body_limit(limits_.max_body_bytes);
    stream_.expires_after(limits_.read_timeout);
    bhttp::async_read_header(
      stream_, buffer_, *parser_,
      beast::bind_front_handler(&http_session::on_header, shared_from_this()));
  }

  void on_header(beast::error_code ec, size_t) {
    if (ec)
      return on_read_error(ec);
    started_ = std::chrono::steady_clock::now();
    auto& req = parser_->get();
    if (too_many_fields(req))
      return reject(bhttp::status::request_header_fields_too_large,
                    "more than " + std::to_string(limits_.max_header_count)
                      + " header fields");
    auto pre = handler_.preflight(req);
    if (pre.reject) {
      // Without a body the connection can go on; an unread body closes it.
      keep_alive_ = parser_->is_done() && req.keep_alive();
      version_ = req.version();
      head_ = req.method() == bhttp::verb::head;
      return write(std::move(*pre.reject));
    }
    body_limit_ = pre.body_limit;
    parser_->body_limit(body_limit_);
    if (auto length = parser_->content_length(); length && *length > body_limit_)
      return reject(bhttp::status::payload_too_large, too_large_text());
    if (beast::iequals(req[bhttp::field::expect], "100-continue"))
      return send_continue();
    do_read_body();
  }

  // The client waits for "100 Continue" before it sends the body.
  void send_continue() {
    auto interim = std::make_shared<bhttp::response<bhttp::empty_body>>(
      bhttp::status::continue_, 11);
    bhttp::async_write(stream_, *interim,
                       [self = shared_from_this(), interim](
                         beast::error_code ec, size_t) {
                         if (ec)
                           return self->do_close();
                         self->do_read_body();
                       });
  }

  void do_read_body() {
    bhttp::async_read(
      stream_, buffer_, *parser_,
      beast::bind_front_handler(&http_session::on_read, shared_from_this()));
  }

  std::string too_large_text() const {
    return "the body is larger than the " + std::to_string(body_limit_)
           + " bytes this resource accepts";
  }

  bool too_many_fields(const request& req) const {
    auto count = static_cast<size_t>(std::distance(req.begin(), req.end()));
    return count > limits_.max_header_count;
  }

  void on_read(beast::error_code ec, size_t) {
    if (ec)
      return on_read_error(ec);
    stream_.expires_never();
    auto req = parser_->release();
    if (too_many_fields(req)) // chunked trailers add fields after the header
      return reject(bhttp::status::request_header_fields_too_large,
                    "more than " + std::to_string(limits_.max_header_count)
                      + " header and trailer fields");
    keep_alive_ = req.keep_alive();
    version_ = req.version();
    head_ = req.method() == bhttp::verb::head;
    auto self = shared_from_this();
    // Only the answer to the request in hand is written: one that comes
    // after the response deadline answered it is dropped.
    auto seq = ++request_seq_;
    awaiting_ = true;
    due_ = std::chrono::steady_clock::now() + limits_.response_timeout;
    arm_deadline();
    auto respond = [self, seq](response res) {
      if (self->core_->stopped.load())
        return;
      net::dispatch(self->executor_,
                    [self, seq, res = std::move(res)]() mutable {
                      if (self->take_answer(seq))
                        self->write(std::move(res));
                    });
    };
    auto stream = [self, seq](response head,
                              std::shared_ptr<event_channel> ch) {
      if (self->core_->stopped.load())
        return ch->close();
      net::dispatch(self->executor_,
                    [self, seq, head = std::move(head), ch]() mutable {
                      if (!self->take_answer(seq))
                        return ch->close();
                      self->start_stream(std::move(head), std::move(ch));
                    });
    };
    handler_.handle(std::move(req), responder{respond, stream});
  }

  // -- the response deadline ---------------------------------------------------

  /// Whether the answer to request SEQ may be written (once).
  bool take_answer(uint64_t seq) {
    if (seq != request_seq_ || !awaiting_)
      return false;
    awaiting_ = false;
    return true;
  }

  // One timer per connection, not re-armed per request: when it fires while
  // a request is still unanswered but not yet due, it waits for the rest.
  void arm_deadline() {
    if (deadline_armed_)
      return;
    deadline_armed_ = true;
    deadline_.expires_at(due_);
    deadline_.async_wait(
      beast::bind_front_handler(&http_session::on_deadline, shared_from_this()));
  }

  void on_deadline(beast::error_code ec) {
    deadline_armed_ = false;
    if (ec || closed_ || !awaiting_)
      return;
    if (std::chrono::steady_clock::now() < due_)
      return arm_deadline();
    awaiting_ = false;
    handler_.observe_unrouted(
      static_cast<unsigned>(bhttp::status::gateway_timeout),
      std::chrono::steady_clock::now() - started_);
    write(error_response(bhttp::status::gateway_timeout,
                         "no answer within http.request_timeout ("
                           + std::to_string(limits_.response_timeout.count())
                           + " ms)"));
  }

  // -- a streamed response (Server-Sent Events) ------------------------------

  // The connection goes to an sse_session; this session ends.
  void start_stream(response head, std::shared_ptr<event_channel> ch) {
    closed_ = true;
    handed_off_ = true;
    deadline_.cancel();
    auto sse = std::make_shared<sse_session>(std::move(stream_), core_);
    core_->track(sse);
    sse->run(std::move(head), version_, std::move(ch));
  }

  void on_read_error(beast::error_code ec) {
    if (ec == bhttp::error::end_of_stream || ec == net::error::eof
        || ec == beast::error::timeout || ec == net::error::operation_aborted
        || ec == net::error::connection_reset)
      return do_close();
    started_ = std::chrono::steady_clock::now();
    if (ec == bhttp::error::body_limit)
      return reject(bhttp::status::payload_too_large, too_large_text());
    if (ec == bhttp::error::header_limit)
      return reject(bhttp::status::request_header_fields_too_large,
                    "the header is larger than "
                      + std::to_string(limits_.max_header_bytes) + " bytes");
    if (ec == bhttp::error::buffer_overflow) // e.g. endless chunk extensions
      return reject(bhttp::status::bad_request,
                    "a request line, header or chunk header is too long");
    if (ec.category()
        == bhttp::make_error_code(bhttp::error::bad_target).category())
      return reject(bhttp::status::bad_request,
                    "malformed HTTP request: " + ec.message());
    do_close();
  }

  // Answers a request that cannot be read to the end, then closes.
  void reject(bhttp::status status, std::string why) {
    keep_alive_ = false;
    head_ = false;
    version_ = 11;
    handler_.observe_unrouted(static_cast<unsigned>(status),
                              std::chrono::steady_clock::now() - started_);
    write(error_response(status, why));
  }

  void write(response res) {
    res_.emplace(std::move(res));
    res_->version(version_);
    res_->keep_alive(keep_alive_);
    res_->set(bhttp::field::server, "keymesh");
    if (res_->result() == bhttp::status::not_modified) {
      res_->body().clear(); // a 304 has no body and no Content-Length
      res_->erase(bhttp::field::content_length);
    } else {
      res_->prepare_payload();
      if (head_) // same header fields as GET, Content-Length included
        res_->body().clear();
    }
    stream_.expires_after(limits_.read_timeout);
    bhttp::async_write(
      stream_, *res_,
      beast::bind_front_handler(&http_session::on_write, shared_from_this()));
  }

  void on_write(beast::error_code ec, size_t) {
    bool close = !keep_alive_ || res_->need_eof();
    res_.reset();
    if (ec || close)
      return do_close();
    do_wait(limits_.idle_timeout); // sets the next deadline
  }

  void do_close() {
    if (handed_off_)
      return;
    closed_ = true;
    deadline_.cancel();
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.socket().close(ec);
  }

  static constexpr size_t first_read_bytes = 16 * 1024;
  /// Room in the input buffer beyond one header: a chunk header, a read.
  static constexpr size_t slack_bytes = 64 * 1024;

  // core_ comes first: it owns the io_context that stream_ uses, so it must
  // be destroyed last (a session can outlive the server in a late reply).
  std::shared_ptr<server::core> core_;
  /// The connection's strand (kept: the stream moves to an sse_session).
  strand_executor executor_;
  strand_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::optional<response> res_;
  api& handler_;
  const server_limits& limits_;
  std::chrono::steady_clock::time_point started_;
  size_t body_limit_ = 0;
  net::steady_timer deadline_;
  std::chrono::steady_clock::time_point due_;
  uint64_t request_seq_ = 0;
  bool awaiting_ = false;
  bool deadline_armed_ = false;
  bool closed_ = false;
  /// The connection went to an sse_session.
  bool handed_off_ = false;
  bool keep_alive_ = false;
  bool head_ = false;
  unsigned version_ = 11;
};

} // namespace

class server::listener : public std::enable_shared_from_this<listener> {
public:
  explicit listener(std::shared_ptr<core> c)
    : core_(std::move(c)),
      acceptor_(net::make_strand(*core_->contexts[0])),
      backoff_(acceptor_.get_executor()) {
  }

  uint16_t listen(const tcp::endpoint& ep) {
    beast::error_code ec;
    acceptor_.open(ep.protocol(), ec);
    if (!ec)
      acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec)
      acceptor_.bind(ep, ec);
    if (!ec)
      acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec)
      throw std::runtime_error("cannot listen on "
                               + ep.address().to_string() + ":"
                               + std::to_string(ep.port()) + ": "
                               + ec.message());
    return acceptor_.local_endpoint().port();
  }

  void run() {
    net::dispatch(acceptor_.get_executor(),
                  beast::bind_front_handler(&listener::do_accept,
                                            shared_from_this()));
  }

  /// Closes the listening socket on its strand; returns once it is closed.
  void close() {
    auto closed = std::make_shared<std::promise<void>>();
    auto done = closed->get_future();
    net::post(acceptor_.get_executor(), [self = shared_from_this(), closed] {
      beast::error_code ec;
      self->acceptor_.close(ec);
      closed->set_value();
    });
    done.wait_for(std::chrono::seconds{5});
  }

private:
  void do_accept() {
    acceptor_.async_accept(net::make_strand(core_->next_context()),
                           beast::bind_front_handler(&listener::on_accept,
                                                     shared_from_this()));
  }

  void on_accept(beast::error_code ec, strand_socket socket) {
    if (ec == net::error::operation_aborted || !acceptor_.is_open())
      return;
    if (ec) {
      // Out of file descriptors or memory: the pending connection stays
      // queued, so accepting again at once would spin. Wait a little.
      spdlog::warn("http: accept failed: {}; retrying in 50 ms", ec.message());
      backoff_.expires_after(std::chrono::milliseconds{50});
      backoff_.async_wait(
        [self = shared_from_this()](beast::error_code) { self->do_accept(); });
      return;
    }
    {
      if (core_->connections.fetch_add(1) >= core_->limits.max_connections) {
        core_->connections.fetch_sub(1);
        core_->handler.count_refused_connection();
        beast::error_code ignored;
        socket.close(ignored); // over the limit: refuse, keep serving others
      } else {
        socket.set_option(tcp::no_delay(true), ec);
        auto s = std::make_shared<http_session>(std::move(socket), core_);
        core_->track(s);
        s->run();
      }
    }
    do_accept();
  }

  std::shared_ptr<core> core_;
  net::basic_socket_acceptor<tcp, strand_executor> acceptor_;
  net::basic_waitable_timer<std::chrono::steady_clock,
                            net::wait_traits<std::chrono::steady_clock>,
                            strand_executor>
    backoff_;
};

server::server(api& handler, server_limits limits, unsigned threads)
  : threads_(std::max(1u, threads)),
    core_(std::make_shared<core>(handler, limits, threads_)) {
}

server::~server() {
  stop();
}

uint16_t server::listen(const std::string& host, uint16_t port) {
  beast::error_code ec;
  auto address = net::ip::make_address(host, ec);
  if (ec) {
    // A name such as "localhost": resolve it once, here.
    tcp::resolver resolver{*core_->contexts[0]};
    auto results = resolver.resolve(host, std::to_string(port), ec);
    if (ec || results.empty())
      throw std::runtime_error("cannot resolve http.listen host " + host);
    address = results.begin()->endpoint().address();
  }
  listener_ = std::make_shared<listener>(core_);
  return listener_->listen(tcp::endpoint{address, port});
}

void server::start() {
  listener_->run();
  for (unsigned i = 0; i < threads_; ++i)
    workers_.emplace_back([c = core_, i] { c->contexts[i]->run(); });
}

void server::stop() {
  if (stopped_)
    return;
  stopped_ = true;
  core_->stopped = true;
  // Graceful: stop accepting, close every connection on its own strand, give
  // them a moment to go, then stop the I/O threads.
  if (listener_ && !workers_.empty()) {
    listener_->close();
    core_->close_all();
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{2};
    while (core_->connections.load() > 0
           && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds{2});
  }
  core_->guards.clear();
  for (auto& ctx : core_->contexts)
    ctx->stop();
  for (auto& t : workers_)
    t.join();
  workers_.clear();
  // Run what is still queued (closed sockets complete with errors) so that
  // the handlers release their sessions.
  for (auto& ctx : core_->contexts) {
    ctx->restart();
    ctx->poll();
  }
}

caf::expected<server_limits>
server_limits::from_settings(const config::settings& c) {
  if (c.http.max_body_bytes == 0 || c.http.max_header_bytes == 0
      || c.http.max_header_count == 0 || c.http.max_connections == 0)
    return make_error(ec::invalid_argument,
                      "http.max_body_bytes, http.max_header_bytes, "
                      "http.max_header_count and http.max_connections must "
                      "be at least 1");
  if (c.http.read_timeout.count() <= 0 || c.http.idle_timeout.count() <= 0
      || c.http.request_timeout.count() <= 0)
    return make_error(ec::invalid_argument,
                      "http.read_timeout, http.idle_timeout and "
                      "http.request_timeout must be positive");
  server_limits limits;
  limits.max_body_bytes = c.http.max_body_bytes;
  limits.max_header_bytes = c.http.max_header_bytes;
  limits.max_header_count = c.http.max_header_count;
  limits.max_connections = c.http.max_connections;
  limits.read_timeout = c.http.read_timeout;
  limits.idle_timeout = c.http.idle_timeout;
  limits.response_timeout = c.http.request_timeout;
  return limits;
}

} // namespace keymesh::http
