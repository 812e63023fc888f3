#include "actors/cluster_transport.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <map>
#include <stdexcept>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <caf/io/basp/header.hpp>
#include <caf/io/basp/message_type.hpp>
#include <caf/io/basp_broker.hpp>
#include <caf/io/middleman.hpp>
#include <caf/io/network/default_multiplexer.hpp>
#include <caf/io/network/stream_impl.hpp>
#include <caf/io/scribe.hpp>
#include <caf/stateful_actor.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include "actors/atoms.hpp"
#include "actors/basp_payload.hpp"

namespace keymesh {

namespace {

using steady = std::chrono::steady_clock;
using caf::io::network::rw_state;

/// Empties this thread's OpenSSL error queue and returns what it held.
/// SSL_get_error() reads the queue first: an error one connection leaves
/// behind would otherwise fail the next call on another.
std::string drain_errors() {
  std::string out;
  while (auto e = ERR_get_error()) {
    char text[256];
    ERR_error_string_n(e, text, sizeof(text));
    if (!out.empty())
      out += "; ";
    out += text;
  }
  return out;
}

struct ssl_free {
  void operator()(SSL* p) const {
    SSL_free(p);
  }
};
using ssl_ptr = std::unique_ptr<SSL, ssl_free>;

struct ssl_ctx_free {
  void operator()(SSL_CTX* p) const {
    SSL_CTX_free(p);
  }
};

std::shared_ptr<SSL_CTX> make_context(const transport_options& opts) {
  std::shared_ptr<SSL_CTX> ctx{SSL_CTX_new(TLS_method()), ssl_ctx_free{}};
  ERR_clear_error();
  if (!ctx)
    throw std::runtime_error("cluster TLS: cannot create a context: " +
                             drain_errors());
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_ENABLE_PARTIAL_WRITE |
                                  SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (!opts.passphrase.empty())
    SSL_CTX_set_default_passwd_cb_userdata(
        ctx.get(), const_cast<char*>(opts.passphrase.c_str()));
  auto key = opts.key_file.empty() ? opts.cert_file : opts.key_file;
  auto fail = [&](const std::string& what) {
    throw std::runtime_error("cluster TLS: " + what + ": " + drain_errors());
  };
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), opts.cert_file.c_str()) !=
      1)
    fail("cannot use the certificate " + opts.cert_file);
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), key.c_str(), SSL_FILETYPE_PEM) !=
          1 ||
      SSL_CTX_check_private_key(ctx.get()) != 1)
    fail("cannot use the key " + key);
  if (SSL_CTX_load_verify_locations(ctx.get(), opts.ca_file.c_str(), nullptr) !=
      1)
    fail("cannot use the CA " + opts.ca_file);
  // The passphrase is needed only while the key is read.
  SSL_CTX_set_default_passwd_cb_userdata(ctx.get(), nullptr);
  SSL_CTX_set_verify(
      ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  return ctx;
}

void close_fd(int& fd) {
  if (fd >= 0)
    ::close(fd);
  fd = -1;
}

/// A TCP connection whose TLS handshake (if any) is done, before BASP
/// takes it; closes the socket unless released.
struct established_link {
  int fd = -1;
  ssl_ptr ssl;

  established_link(int f, ssl_ptr s)
      : fd(f)
      , ssl(std::move(s)) {}

  ~established_link() {
    ssl.reset();
    close_fd(fd);
  }
};

/// Reads and writes an established link: TLS records, or plain TCP.
class link_policy {
public:
  explicit link_policy(ssl_ptr ssl)
      : ssl_(std::move(ssl)) {}

  rw_state read_some(size_t& result, caf::io::network::native_socket fd,
                     void* buf, size_t len) {
    result = 0;
    if (len == 0)
      return rw_state::indeterminate;
    if (!ssl_) {
      auto n = ::recv(fd, buf, len, 0);
      if (n > 0) {
        result = static_cast<size_t>(n);
        return rw_state::success;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return rw_state::success;
      return rw_state::failure; // 0: closed by the peer
    }
    ERR_clear_error();
    auto n = SSL_read(ssl_.get(), buf, static_cast<int>(len));
    if (n > 0) {
      result = static_cast<size_t>(n);
      return rw_state::success;
    }
    return on_error(n);
  }

  rw_state write_some(size_t& result, caf::io::network::native_socket fd,
                      const void* buf, size_t len) {
    result = 0;
    if (len == 0)
      return rw_state::indeterminate;
    if (!ssl_) {
      auto n = ::send(fd, buf, len, MSG_NOSIGNAL);
      if (n >= 0) {
        result = static_cast<size_t>(n);
        return rw_state::success;
      }
      return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR
                 ? rw_state::success
                 : rw_state::failure;
    }
    ERR_clear_error();
    auto n = SSL_write(ssl_.get(), buf, static_cast<int>(len));
    if (n > 0) {
      result = static_cast<size_t>(n);
      return rw_state::success;
    }
    return on_error(n);
  }

  bool must_read_more(caf::io::network::native_socket, size_t threshold) {
    return ssl_ && static_cast<size_t>(SSL_pending(ssl_.get())) >= threshold;
  }

private:
  rw_state on_error(int n) {
    switch (SSL_get_error(ssl_.get(), n)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
      return rw_state::success; // nothing this time
    default: {
      auto why = drain_errors();
      spdlog::debug("cluster transport: a TLS link failed: {}", why);
      return rw_state::failure;
    }
    }
  }

  ssl_ptr ssl_;
};

/// What becomes of a message from a peer.
enum class verdict { pass, drop, close };

/// What a peer may send: checked on every BASP header before BASP sees it.
struct message_filter {
  /// The actors of this node peers may address (read-only once set).
  std::shared_ptr<const std::unordered_set<caf::actor_id>> exposed;

  /// The verdict on HDR, and why when it is not pass.
  verdict judge(const caf::io::basp::header& hdr, const char*& why) const {
    using caf::io::basp::message_type;
    switch (hdr.operation) {
    case message_type::server_handshake:
    case message_type::client_handshake:
    case message_type::down_message:
    case message_type::heartbeat:
      return verdict::pass;
    case message_type::routed_message:
      why = "a routed message (links are direct)";
      return verdict::close;
    case message_type::direct_message:
      if ((hdr.flags & caf::io::basp::header::named_receiver_flag) != 0) {
        // BASP asks every new node's spawn server for its info; keymesh
        // spawns nothing remotely, so the question goes unanswered.
        if (hdr.dest_actor == static_cast<uint64_t>(caf::atom("SpawnServ")))
          return verdict::drop;
        why = "a message to an actor by name";
        return verdict::close;
      }
      if (hdr.source_actor == 0) {
        why = "an anonymous message";
        return verdict::close;
      }
      if (!reachable(hdr.dest_actor)) {
        why = "a message to an actor this node does not expose";
        return verdict::close;
      }
      return verdict::pass;
    case message_type::monitor_message:
      if (!reachable(hdr.dest_actor)) {
        why = "a monitor of an actor this node does not expose";
        return verdict::close;
      }
      return verdict::pass;
    }
    why = "an unknown message type";
    return verdict::close;
  }

  bool reachable(caf::actor_id id) const {
    return exposed && exposed->count(id) > 0;
  }
};

/// A BASP connection: the stream, and the header check in front of BASP.
class link_scribe : public caf::io::scribe {
public:
  link_scribe(caf::io::network::default_multiplexer& mpx,
              std::shared_ptr<established_link> link, message_filter filter,
              std::shared_ptr<transport_stats> stats)
      : scribe(caf::io::network::conn_hdl_from_socket(link->fd))
      , sys_(&mpx.system())
      , filter_(std::move(filter))
      , stats_(std::move(stats))
      , stream_(mpx, link->fd, std::move(link->ssl)) {
    link->fd = -1; // the stream owns the socket now
  }

  bool consume(caf::execution_unit* ctx, const void* buf,
               size_t size) override {
    using caf::io::basp::header_size;
    if (dropping_) { // the payload of a dropped message: BASP never sees it
      dropping_ = false;
      stream_.configure_read(caf::io::receive_policy::exactly(header_size));
      return true;
    }
    if (payload_left_ > 0) {
      payload_left_ = 0;
      const char* why = nullptr;
      if (!basp_payload_admissible(*sys_, payload_op_,
                                   static_cast<const char*>(buf), size, why))
        return refuse(ctx, why);
      return scribe::consume(ctx, buf, size);
    }
    // BASP reads a header, then its payload (if any), then a header ...
    caf::io::basp::header hdr;
    const char* why = "a malformed header";
    auto decision = verdict::close;
    if (size == header_size) {
      auto* b = static_cast<const uint8_t*>(buf);
      auto number = [&](size_t at, size_t bytes) {
        uint64_t x = 0;
        for (size_t i = 0; i < bytes; ++i)
          x = (x << 8) | b[at + i];
        return x;
      };
      hdr.operation = static_cast<caf::io::basp::message_type>(b[0]);
      hdr.flags = b[3];
      hdr.payload_len = static_cast<uint32_t>(number(4, 4));
      hdr.operation_data = number(8, 8);
      hdr.source_actor = number(16, 8);
      hdr.dest_actor = number(24, 8);
      decision = filter_.judge(hdr, why);
    }
    switch (decision) {
    case verdict::close:
      return refuse(ctx, why);
    case verdict::drop:
      if (hdr.payload_len > 0) {
        dropping_ = true;
        stream_.configure_read(
            caf::io::receive_policy::exactly(hdr.payload_len));
      }
      return true;
    case verdict::pass:
      break;
    }
    if (hdr.operation == caf::io::basp::message_type::server_handshake ||
        hdr.operation == caf::io::basp::message_type::client_handshake)
      handshaken_ = true;
    payload_left_ = hdr.payload_len;
    payload_op_ = hdr.operation;
    return scribe::consume(ctx, buf, size);
  }

  /// Closes the link for what the peer sent (WHY).
  bool refuse(caf::execution_unit* ctx, const char* why) {
    stats_->refused_messages.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("cluster transport: closing the link from {}: it sent {}",
                 addr(), why);
    closed_ = true;
    io_failure(ctx, caf::io::network::operation::read);
    return false;
  }

  /// Whether BASP's handshake message arrived.
  bool handshaken() const {
    return handshaken_;
  }

  /// Whether the filter closed the link.
  bool closed() const {
    return closed_;
  }

  /// Closes the link (on the multiplexer's thread).
  void close(caf::io::network::default_multiplexer& mpx) {
    caf::intrusive_ptr<link_scribe> self{this};
    mpx.post([self, &mpx] {
      self->io_failure(&mpx, caf::io::network::operation::read);
    });
  }

  void configure_read(caf::io::receive_policy::config config) override {
    stream_.configure_read(config);
    if (!launched_) {
      launched_ = true;
      stream_.start(this);
    }
  }

  void ack_writes(bool enable) override {
    stream_.ack_writes(enable);
  }

  std::vector<char>& wr_buf() override {
    return stream_.wr_buf();
  }

  std::vector<char>& rd_buf() override {
    return stream_.rd_buf();
  }

  void graceful_shutdown() override {
    stream_.graceful_shutdown();
    detach(&stream_.backend(), false);
  }

  void flush() override {
    stream_.flush(this);
  }

  std::string addr() const override {
    auto x = caf::io::network::remote_addr_of_fd(stream_.fd());
    return x ? *x : std::string{};
  }

  uint16_t port() const override {
    auto x = caf::io::network::remote_port_of_fd(stream_.fd());
    return x ? *x : 0;
  }

  void add_to_loop() override {
    stream_.activate(this);
  }

  void remove_from_loop() override {
    stream_.passivate();
  }

private:
  caf::actor_system* sys_;
  message_filter filter_;
  std::shared_ptr<transport_stats> stats_;
  caf::io::network::stream_impl<link_policy> stream_;
  bool launched_ = false;
  uint32_t payload_left_ = 0;
  caf::io::basp::message_type payload_op_ =
      caf::io::basp::message_type::heartbeat;
  bool dropping_ = false;
  std::atomic<bool> handshaken_{false};
  std::atomic<bool> closed_{false};
};

caf::io::network::default_multiplexer& multiplexer_of(caf::actor_system& sys) {
  return static_cast<caf::io::network::default_multiplexer&>(
      sys.middleman().backend());
}

caf::actor basp_of(caf::actor_system& sys) {
  return sys.middleman().named_broker<caf::io::basp_broker>(caf::atom("BASP"));
}

/// One step of a non-blocking TLS handshake: 1 done, 0 again later (when
/// WANT_WRITE says which way), -1 failed (WHY says why).
int handshake_step(SSL* ssl, bool& want_write, std::string& why) {
  ERR_clear_error();
  auto rc = SSL_do_handshake(ssl);
  if (rc == 1)
    return 1;
  switch (SSL_get_error(ssl, rc)) {
  case SSL_ERROR_WANT_READ:
    want_write = false;
    return 0;
  case SSL_ERROR_WANT_WRITE:
    want_write = true;
    return 0;
  default:
    why = drain_errors();
    if (why.empty())
      why = "the peer closed the connection";
    return -1;
  }
}

std::string peer_address(const sockaddr_storage& sa) {
  char text[INET6_ADDRSTRLEN] = {0};
  if (sa.ss_family == AF_INET)
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(sa).sin_addr, text,
              sizeof(text));
  else if (sa.ss_family == AF_INET6)
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(sa).sin6_addr,
              text, sizeof(text));
  return text;
}

/// A finished dial (TCP and TLS), brought to the connector actor.
struct dial_outcome {
  uint64_t id = 0;
  std::shared_ptr<established_link> link;
  std::string error;
};

} // namespace

struct cluster_transport::shared {
  caf::actor_system* sys = nullptr;
  std::chrono::milliseconds timeout{5000};
  size_t max_pending = 0;
  size_t max_pending_per_address = 0;
  bool tls = false;
  std::shared_ptr<transport_stats> stats;

  std::mutex mutex;
  std::shared_ptr<SSL_CTX> ctx;
  std::shared_ptr<const std::unordered_set<caf::actor_id>> exposed;
  /// Accepted links handed to BASP whose BASP handshake is awaited.
  std::vector<std::pair<caf::intrusive_ptr<link_scribe>, steady::time_point>>
      awaiting;
  /// Dial threads running (the destructor waits for them).
  size_t dials = 0;
  std::condition_variable dials_done;

  std::shared_ptr<SSL_CTX> context() {
    std::lock_guard<std::mutex> guard{mutex};
    return ctx;
  }

  message_filter filter() {
    std::lock_guard<std::mutex> guard{mutex};
    return message_filter{exposed};
  }

  /// Makes the scribe for LINK (any thread; BASP activates it).
  caf::intrusive_ptr<link_scribe>
  make_scribe(std::shared_ptr<established_link> link) {
    return caf::intrusive_ptr<link_scribe>{new link_scribe(
        multiplexer_of(*sys), std::move(link), filter(), stats)};
  }

  /// TCP connect and TLS handshake to HOST:PORT within the timeout
  /// (blocking: runs on a dial thread).
  std::shared_ptr<established_link> dial(const std::string& host, uint16_t port,
                                         std::string& why);
};

std::shared_ptr<established_link>
cluster_transport::shared::dial(const std::string& host, uint16_t port,
                                std::string& why) {
  auto deadline = steady::now() + timeout;
  auto left_ms = [&] {
    auto d = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - steady::now());
    return static_cast<int>(std::max<int64_t>(0, d.count()));
  };
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (auto rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints,
                            &found);
      rc != 0) {
    why = "cannot resolve " + host + ": " + gai_strerror(rc);
    return nullptr;
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> addresses{found,
                                                               freeaddrinfo};
  int fd =
      ::socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    why = std::string{"socket: "} + std::strerror(errno);
    return nullptr;
  }
  auto link = std::make_shared<established_link>(fd, nullptr);
  if (::connect(fd, found->ai_addr, found->ai_addrlen) != 0) {
    if (errno != EINPROGRESS) {
      why = std::string{"connect: "} + std::strerror(errno);
      return nullptr;
    }
    pollfd p{fd, POLLOUT, 0};
    int error = 0;
    socklen_t len = sizeof(error);
    if (::poll(&p, 1, left_ms()) != 1) {
      why = "connect timed out";
      return nullptr;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0 || error != 0) {
      why = std::string{"connect: "} + std::strerror(error);
      return nullptr;
    }
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (!tls)
    return link;
  auto tls_ctx = context();
  link->ssl.reset(SSL_new(tls_ctx.get()));
  if (!link->ssl) {
    why = "SSL_new: " + drain_errors();
    return nullptr;
  }
  SSL_set_fd(link->ssl.get(), fd);
  SSL_set_connect_state(link->ssl.get());
  for (bool want_write = false;;) {
    auto step = handshake_step(link->ssl.get(), want_write, why);
    if (step == 1)
      return link;
    if (step < 0) {
      why = "TLS handshake failed: " + why;
      return nullptr;
    }
    pollfd p{fd, static_cast<short>(want_write ? POLLOUT : POLLIN), 0};
    if (::poll(&p, 1, left_ms()) != 1) {
      why = "TLS handshake timed out";
      return nullptr;
    }
  }
}

} // namespace keymesh

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(keymesh::dial_outcome)

namespace keymesh {

namespace {

/// The connector: one thread per dial (DNS and connect block), then BASP's
/// handshake on the multiplexer.
using connector_impl = caf::typed_actor<
    caf::replies_to<caf::connect_atom, std::string, uint16_t>::with<
        caf::node_id, caf::strong_actor_ptr, std::set<std::string>>,
    caf::reacts_to<atom::run, dial_outcome>>;

struct connector_state {
  static inline const char* name = "cluster_connector";
  std::shared_ptr<cluster_transport::shared> shared;
  uint64_t next_id = 0;
  struct waiting {
    caf::typed_response_promise<caf::node_id, caf::strong_actor_ptr,
                                std::set<std::string>>
        promise;
    uint16_t port = 0;
  };
  std::map<uint64_t, waiting> dials;
};

connector_impl::behavior_type
dialer(connector_impl::stateful_pointer<connector_state> self,
       std::shared_ptr<cluster_transport::shared> shared) {
  self->state.shared = std::move(shared);
  self->set_default_handler(caf::print_and_drop);
  return {
      [=](caf::connect_atom, std::string& host,
          uint16_t port) -> caf::result<caf::node_id, caf::strong_actor_ptr,
                                        std::set<std::string>> {
        auto& st = self->state;
        auto rp =
            self->make_response_promise<caf::node_id, caf::strong_actor_ptr,
                                        std::set<std::string>>();
        auto id = ++st.next_id;
        st.dials.emplace(id, connector_state::waiting{rp, port});
        auto sh = st.shared;
        {
          std::lock_guard<std::mutex> guard{sh->mutex};
          ++sh->dials;
        }
        auto me = caf::actor_cast<caf::actor>(self);
        std::thread{[sh, me, id, host, port] {
          dial_outcome out;
          out.id = id;
          out.link = sh->dial(host, port, out.error);
          caf::anon_send(me, atom::run_v, std::move(out));
          std::lock_guard<std::mutex> guard{sh->mutex};
          --sh->dials;
          sh->dials_done.notify_all();
        }}.detach();
        return rp;
      },
      [=](atom::run, dial_outcome& out) {
        auto& st = self->state;
        auto i = st.dials.find(out.id);
        if (i == st.dials.end())
          return;
        auto waiting = std::move(i->second);
        st.dials.erase(i);
        if (!out.link) {
          st.shared->stats->handshake_failures.fetch_add(
              1, std::memory_order_relaxed);
          waiting.promise.deliver(
              caf::make_error(caf::sec::cannot_connect_to_node, out.error));
          return;
        }
        auto scribe = st.shared->make_scribe(std::move(out.link));
        auto& mpx = multiplexer_of(self->system());
        self->request(basp_of(self->system()), st.shared->timeout,
                      caf::connect_atom_v, caf::io::scribe_ptr{scribe},
                      waiting.port)
            .then(
                [=](caf::node_id& node, caf::strong_actor_ptr& ptr,
                    std::set<std::string>& sigs) mutable {
                  self->state.shared->stats->established.fetch_add(
                      1, std::memory_order_relaxed);
                  waiting.promise.deliver(std::move(node), std::move(ptr),
                                          std::move(sigs));
                },
                [=, &mpx](caf::error& err) mutable {
                  // BASP never finished: the link goes.
                  scribe->close(mpx);
                  waiting.promise.deliver(std::move(err));
                });
      },
  };
}

} // namespace

cluster_transport::cluster_transport(caf::actor_system& sys,
                                     transport_options opts)
    : sys_(sys)
    , shared_(std::make_shared<shared>())
    , stats_(std::make_shared<transport_stats>()) {
  // OpenSSL writes to sockets with write(): a peer that hung up must not
  // end the process with SIGPIPE (keymesh serve ignores it anyway; an
  // embedding application with cluster links gets the same).
  std::signal(SIGPIPE, SIG_IGN);
  shared_->sys = &sys;
  shared_->timeout = opts.handshake_timeout;
  shared_->max_pending = opts.max_pending;
  shared_->max_pending_per_address = opts.max_pending_per_address;
  shared_->tls = opts.tls();
  shared_->stats = stats_;
  if (shared_->tls)
    shared_->ctx = make_context(opts);
  if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0)
    throw std::runtime_error(std::string{"cluster transport: pipe: "} +
                             std::strerror(errno));
  connector_ = caf::actor_cast<connector_actor>(sys.spawn(dialer, shared_));
}

cluster_transport::~cluster_transport() {
  unpublish();
  caf::anon_send_exit(connector_, caf::exit_reason::user_shutdown);
  // Dials end by their deadline at the latest.
  std::unique_lock<std::mutex> guard{shared_->mutex};
  shared_->dials_done.wait(guard, [&] { return shared_->dials == 0; });
  shared_->awaiting.clear();
  guard.unlock();
  close_fd(wake_[0]);
  close_fd(wake_[1]);
}

void cluster_transport::expose(
    const std::vector<caf::strong_actor_ptr>& actors) {
  auto ids = std::make_shared<std::unordered_set<caf::actor_id>>();
  for (auto& a : actors)
    if (a)
      ids->insert(a->id());
  std::lock_guard<std::mutex> guard{shared_->mutex};
  shared_->exposed = std::move(ids);
}

void cluster_transport::reload(const transport_options& opts) {
  if (!shared_->tls)
    return;
  auto fresh = make_context(opts); // throws: the old one stays
  std::lock_guard<std::mutex> guard{shared_->mutex};
  shared_->ctx = std::move(fresh);
}

caf::expected<uint16_t> cluster_transport::publish(caf::strong_actor_ptr whom,
                                                   std::set<std::string> sigs,
                                                   const std::string& host,
                                                   uint16_t port) {
  if (listen_fd_ >= 0)
    return caf::make_error(caf::sec::runtime_error, "already listening");
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  auto bind_host = host.empty() ? nullptr : host.c_str();
  if (auto rc =
          getaddrinfo(bind_host, std::to_string(port).c_str(), &hints, &found);
      rc != 0)
    return caf::make_error(caf::sec::cannot_open_port,
                           "cannot resolve " + host + ": " + gai_strerror(rc));
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> addresses{found,
                                                               freeaddrinfo};
  int fd =
      ::socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  if (fd < 0 ||
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
      ::bind(fd, found->ai_addr, found->ai_addrlen) != 0 ||
      ::listen(fd, 128) != 0) {
    auto why = std::string{std::strerror(errno)};
    close_fd(fd);
    return caf::make_error(caf::sec::cannot_open_port,
                           "cannot listen on " + host + ":" +
                               std::to_string(port) + ": " + why);
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof(bound);
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
  port_ = ntohs(bound.ss_family == AF_INET6
                    ? reinterpret_cast<sockaddr_in6&>(bound).sin6_port
                    : reinterpret_cast<sockaddr_in&>(bound).sin_port);
  listen_fd_ = fd;
  whom_ = std::move(whom);
  sigs_ = std::move(sigs);
  acceptor_ = std::thread{[this] { accept_loop(); }};
  return port_;
}

void cluster_transport::unpublish() {
  if (!acceptor_.joinable())
    return;
  char c = 0;
  (void)!::write(wake_[1], &c, 1);
  acceptor_.join();
  close_fd(listen_fd_);
}

void cluster_transport::accept_loop() {
  struct handshake {
    ssl_ptr ssl;
    std::string address;
    steady::time_point deadline;
    bool want_write = false;
  };
  std::map<int, handshake> pending;
  std::map<std::string, size_t> per_address;
  auto& stats = *stats_;
  auto drop = [&](std::map<int, handshake>::iterator i) {
    auto fd = i->first;
    if (--per_address[i->second.address] == 0)
      per_address.erase(i->second.address);
    auto next = pending.erase(i); // frees the SSL first
    ::close(fd);
    stats.pending.store(pending.size(), std::memory_order_relaxed);
    return next;
  };
  auto basp = basp_of(sys_);
  auto& mpx = multiplexer_of(sys_);
  auto hand_over = [&](int fd, ssl_ptr ssl) {
    auto scribe = shared_->make_scribe(
        std::make_shared<established_link>(fd, std::move(ssl)));
    {
      std::lock_guard<std::mutex> guard{shared_->mutex};
      shared_->awaiting.emplace_back(scribe, steady::now() + shared_->timeout);
    }
    caf::anon_send(basp, caf::publish_atom_v, caf::io::scribe_ptr{scribe},
                   port_, whom_, sigs_);
  };
  std::vector<pollfd> fds;
  for (;;) {
    fds.clear();
    fds.push_back({wake_[0], POLLIN, 0});
    fds.push_back({listen_fd_, POLLIN, 0});
    for (auto& [fd, h] : pending)
      fds.push_back(
          {fd, static_cast<short>(h.want_write ? POLLOUT : POLLIN), 0});
    // A tick of 100 ms at most: deadlines are checked at least that often.
    ::poll(fds.data(), fds.size(), 100);
    if (fds[0].revents != 0)
      return;
    for (size_t k = 2; k < fds.size(); ++k) {
      if (fds[k].revents == 0)
        continue;
      auto i = pending.find(fds[k].fd);
      if (i == pending.end())
        continue;
      std::string why;
      auto step =
          handshake_step(i->second.ssl.get(), i->second.want_write, why);
      if (step < 0) {
        stats.handshake_failures.fetch_add(1, std::memory_order_relaxed);
        spdlog::debug("cluster transport: TLS handshake with {} failed: {}",
                      i->second.address, why);
        drop(i);
      } else if (step == 1) {
        auto fd = i->first;
        auto ssl = std::move(i->second.ssl);
        if (--per_address[i->second.address] == 0)
          per_address.erase(i->second.address);
        pending.erase(i);
        stats.pending.store(pending.size(), std::memory_order_relaxed);
        hand_over(fd, std::move(ssl));
      }
    }
    auto now = steady::now();
    for (auto i = pending.begin(); i != pending.end();)
      if (i->second.deadline <= now) {
        stats.handshake_timeouts.fetch_add(1, std::memory_order_relaxed);
        i = drop(i);
      } else {
        ++i;
      }
    // Links BASP never greeted within the deadline go too.
    {
      std::lock_guard<std::mutex> guard{shared_->mutex};
      auto& awaiting = shared_->awaiting;
      for (auto i = awaiting.begin(); i != awaiting.end();) {
        if (i->first->handshaken()) {
          stats.established.fetch_add(1, std::memory_order_relaxed);
          i = awaiting.erase(i);
        } else if (i->first->closed()) { // refused already
          i = awaiting.erase(i);
        } else if (i->second <= now) {
          stats.handshake_timeouts.fetch_add(1, std::memory_order_relaxed);
          i->first->close(mpx);
          i = awaiting.erase(i);
        } else {
          ++i;
        }
      }
    }
    if ((fds[1].revents & POLLIN) == 0)
      continue;
    for (;;) {
      sockaddr_storage from{};
      socklen_t len = sizeof(from);
      int fd = ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&from), &len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0)
        break; // EAGAIN, or out of descriptors: the next tick tries again
      stats.accepted.fetch_add(1, std::memory_order_relaxed);
      auto address = peer_address(from);
      if (pending.size() >= shared_->max_pending ||
          per_address[address] >= shared_->max_pending_per_address) {
        stats.over_capacity.fetch_add(1, std::memory_order_relaxed);
        ::close(fd);
        continue;
      }
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      if (!shared_->tls) {
        hand_over(fd, nullptr);
        continue;
      }
      auto ctx = shared_->context();
      ssl_ptr ssl{SSL_new(ctx.get())};
      if (!ssl) {
        drain_errors();
        ::close(fd);
        continue;
      }
      SSL_set_fd(ssl.get(), fd);
      SSL_set_accept_state(ssl.get());
      ++per_address[address];
      pending.emplace(fd, handshake{std::move(ssl), address,
                                    steady::now() + shared_->timeout});
      stats.pending.store(pending.size(), std::memory_order_relaxed);
    }
  }
}

} // namespace keymesh
