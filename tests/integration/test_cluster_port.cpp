// Strangers at the cluster port of a real 3-node cluster (mutual TLS): a
// thousand refused connection attempts of every kind during a load of
// session creates, reads and token checks drop no link between the nodes
// and fail no request, and thousands of idle connections are closed once
// their handshake time is up, with the node holding no more of them than
// its cap at any time.
#define CAF_SUITE cluster_port
#include "caf/test/unit_test.hpp"

#include <atomic>
#include <csignal>
#include <filesystem>
#include <mutex>
#include <sstream>
#include <thread>

#include <sys/resource.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>

#include "actors/cluster_transport.hpp"
#include "actors/interfaces.hpp"
#include "cluster/certs.hpp"
#include "support/knock.hpp"
#include "support/session_cluster.hpp"

using namespace keymesh::test;
using namespace std::chrono_literals;

namespace {

struct guarded_cluster : session_cluster {
  guarded_cluster()
      : session_cluster({{"KEYMESH_CLUSTER_HANDSHAKE_TIMEOUT", "1s"},
                         {"KEYMESH_CLUSTER_MAX_PENDING_HANDSHAKES", "64"}},
                        4) {}

  /// Strangers write to sockets the nodes closed: no SIGPIPE for that.
  static bool ignore_sigpipe() {
    std::signal(SIGPIPE, SIG_IGN);
    return true;
  }
  bool sigpipe_ignored = ignore_sigpipe();

  uint16_t cluster_port(int i) const {
    return static_cast<uint16_t>(cluster_base + i - 1);
  }

  /// Lines in the logs of nodes 1 to 3 that say a link between two of
  /// them went (node 4's own end is not counted).
  size_t links_lost() {
    size_t n = 0;
    for (int i = 1; i <= 3; ++i) {
      std::istringstream log{node(i).log()};
      for (std::string line; std::getline(log, line);) {
        if (line.find("node-4") != std::string::npos)
          continue;
        for (auto* what : {"link lost", "is down", "is suspect"})
          if (line.find(what) != std::string::npos)
            ++n;
      }
    }
    return n;
  }

  size_t open_descriptors(int i) {
    auto dir = "/proc/" + std::to_string(node(i).pid()) + "/fd";
    size_t n = 0;
    for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator{dir})
      ++n;
    return n;
  }

  /// The value of metric line NAME on node I (0 when absent or when the
  /// node does not answer).
  uint64_t metric(int i, const std::string& name) {
    std::string text;
    try {
      text = request(http_port(i), "GET", "/metrics").body();
    } catch (const std::exception&) {
      return 0;
    }
    auto at = text.find("\n" + name + " ");
    if (at == std::string::npos)
      return 0;
    return std::stoull(text.substr(at + name.size() + 2));
  }
};

/// Session creates, reads on another node and token checks on a third,
/// until finished; counts what failed. (Plain requests: CAF's checks are
/// for the test's own thread.)
/// Requests to nodes 1-3 from two threads (so that one request waiting on
/// a killed member does not stall the rest). A request forwarded to node 4
/// at the moment it is killed waits for state.peer_timeout and is answered
/// 504 "the owners of the partition did not answer in time": the
/// documented cost of a kill for requests in flight to it
/// (docs/reliability.md, "errors elsewhere during the fault"), counted
/// apart. Every other failure counts as failed.
struct load {
  static constexpr int threads = 2;
  std::atomic<bool> stop{false};
  std::atomic<size_t> done{0};
  std::atomic<size_t> failed{0};
  std::atomic<size_t> owner_timeouts{0};
  std::mutex mutex;
  /// What the failures were (read after finish()).
  std::vector<std::string> failures;
  std::vector<std::thread> workers;

  explicit load(guarded_cluster& c) {
    for (int t = 0; t < threads; ++t)
      workers.emplace_back([this, &c, t] { run(c, t); });
  }

  void run(guarded_cluster& c, int t) {
    for (int n = t; !stop; n += threads) {
      auto a = 1 + n % 3, b = 1 + (n + 1) % 3, d = 1 + (n + 2) % 3;
      std::string why;
      bool owner_timeout = false;
      auto check = [&](const char* what, int node, const response& res,
                       unsigned status) {
        if (res.result_int() == status)
          return true;
        owner_timeout = res.result_int() == 504u
                        && res.body().find("owners of the partition")
                             != std::string::npos;
        why = std::string{what} + " on node " + std::to_string(node) + ": "
              + std::to_string(res.result_int()) + " " + res.body();
        return false;
      };
      auto created =
        c.call(a, "POST", "/api/sessions",
               json{{"sub", "load-" + std::to_string(n)}}.dump());
      bool ok = check("create", a, created, 201u);
      if (ok) {
        auto sid = json::parse(created.body())["sid"].get<std::string>();
        ok = check("read", b, c.call(b, "GET", "/api/sessions/" + sid), 200u);
      }
      if (ok) {
        auto issued = c.call(a, "POST", "/api/tokens", R"({"sub":"load"})");
        ok = check("sign", a, issued, 201u);
        if (ok) {
          auto token = json::parse(issued.body())["token"];
          auto v = request(c.http_port(d), "POST", "/api/verify",
                           json{{"token", token}}.dump());
          ok = json::parse(v.body())["active"] == true;
          if (!ok)
            why = "verify on node " + std::to_string(d) + ": " + v.body();
        }
      }
      ++done;
      if (ok)
        continue;
      ++(owner_timeout ? owner_timeouts : failed);
      std::lock_guard<std::mutex> guard{mutex};
      failures.push_back(std::move(why));
    }
  }

  void finish() {
    stop = true;
    for (auto& w : workers)
      if (w.joinable())
        w.join();
  }

  ~load() {
    finish();
  }
};

/// A process with a valid certificate of the cluster CA (CN node-9) that
/// completes TLS and BASP with node 1, so it gets the membership actor,
/// but never proves an identity in keymesh's handshake. Its messages can
/// carry a `poison`: one byte where a config_value's type index goes.
struct poison {
  uint8_t type_index = 200;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, poison& x) {
  return f(x.type_index);
}

struct rogue_peer {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::unique_ptr<keymesh::cluster_transport> transport;
  std::unique_ptr<caf::scoped_actor> owner;
  caf::scoped_actor& self;
  keymesh::membership_actor membership;

  explicit rogue_peer(guarded_cluster& c) : self(make(c)) {
    std::string failure;
    self
      ->request(transport->connector(), std::chrono::seconds{10},
                caf::connect_atom_v, std::string{"127.0.0.1"},
                c.cluster_port(1))
      .receive(
        [&](caf::node_id&, caf::strong_actor_ptr& ptr,
            std::set<std::string>&) {
          membership = caf::actor_cast<keymesh::membership_actor>(ptr);
        },
        [&](caf::error& err) { failure = to_string(err); });
    CAF_REQUIRE_EQUAL(failure, "");
    CAF_REQUIRE(membership);
  }

private:
  caf::scoped_actor& make(guarded_cluster& c) {
    keymesh::cluster::issued cluster_ca{read_file(c.dir.file("c/ca.pem")),
                                        read_file(c.dir.file("c/ca.key"))};
    auto cert = keymesh::cluster::make_node_cert(cluster_ca, "node-9",
                                                 {"127.0.0.1"}, 1);
    write_file(c.dir.file("rogue-cert.pem"), cert.cert_pem);
    write_file(c.dir.file("rogue-key.pem"), cert.key_pem);
    keymesh::add_message_types(cfg);
    // Named as CAF's config_value: node 1 reads it as one.
    cfg.add_message_type<poison>("@config_value");
    cfg.load<caf::io::middleman>();
    sys = std::make_unique<caf::actor_system>(cfg);
    keymesh::transport_options opts;
    opts.ca_file = c.dir.file("c/ca.pem");
    opts.cert_file = c.dir.file("rogue-cert.pem");
    opts.key_file = c.dir.file("rogue-key.pem");
    transport = std::make_unique<keymesh::cluster_transport>(*sys, opts);
    owner = std::make_unique<caf::scoped_actor>(*sys);
    transport->expose({caf::actor_cast<caf::strong_actor_ptr>(*owner)});
    return *owner;
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(cluster_port_tests, guarded_cluster)

CAF_TEST(strangers_at_the_cluster_port_never_drop_healthy_links) {
  // Credentials of every kind a stranger may bring.
  keymesh::cluster::issued cluster_ca{read_file(dir.file("c/ca.pem")),
                                      read_file(dir.file("c/ca.key"))};
  auto foreign_ca = keymesh::cluster::make_ca("rogue", 1);
  auto foreign =
      keymesh::cluster::make_node_cert(foreign_ca, "node-1", {"127.0.0.1"}, 1);
  auto wrong_id =
      keymesh::cluster::make_node_cert(cluster_ca, "node-9", {"127.0.0.1"}, 1);
  auto no_cert = knock::client_context("", "");
  auto other_ca = knock::client_context(foreign.cert_pem, foreign.key_pem);
  auto valid_cert = knock::client_context(wrong_id.cert_pem, wrong_id.key_pem);
  // A fourth node, killed (-9) while the strangers knock: its loss is not
  // theirs, and drops no link between the other three either.
  start_node(4);
  CAF_REQUIRE(eventually([&] { return all_linked(4); }, 20s));
  auto before = links_lost();
  load traffic{*this};
  auto started = std::chrono::steady_clock::now();
  std::atomic<size_t> done_at_kill{0};
  std::chrono::steady_clock::time_point killed_at;
  std::atomic<size_t> attempts{0};
  std::vector<std::thread> strangers;
  std::mutex stalled_mutex;
  std::vector<int> stalled;
  for (int t = 0; t < 2; ++t)
    strangers.emplace_back([&, t] {
      std::mt19937 rng{static_cast<unsigned>(t + 1)};
      for (int n = t; n < 1000; n += 2) {
        auto port = cluster_port(1 + n % 3);
        switch (n / 3 % 6) {
        case 0:
          knock::garbage(port, rng);
          break;
        case 1:
          knock::connect_and_close(port);
          break;
        case 2:
          knock::tls_attempt(port, no_cert.get(), rng);
          break;
        case 3:
          knock::tls_attempt(port, other_ca.get(), rng);
          break;
        case 4:
          knock::tls_attempt(port, valid_cert.get(), rng, true);
          break;
        case 5: {
          auto fd = knock::stall_mid_handshake(port);
          std::lock_guard<std::mutex> guard{stalled_mutex};
          stalled.push_back(fd);
          break;
        }
        }
        if (++attempts == 500) {
          done_at_kill = traffic.done.load();
          killed_at = std::chrono::steady_clock::now();
          node(4).stop(SIGKILL);
        }
      }
    });
  for (auto& s : strangers)
    s.join();
  CAF_CHECK_EQUAL(attempts.load(), 1000u);
  // The stalled handshakes are closed by the nodes once their time is up.
  size_t closed = 0;
  for (auto fd : stalled) {
    if (fd >= 0 && knock::closed_by_peer(fd, 3s))
      ++closed;
    if (fd >= 0)
      ::close(fd);
  }
  CAF_MESSAGE(stalled.size()
              << " stalled handshakes, " << closed << " closed by the nodes");
  CAF_CHECK_EQUAL(closed, stalled.size());
  std::this_thread::sleep_for(1s);
  traffic.finish();
  CAF_MESSAGE(traffic.done << " requests during the attempts, "
                           << traffic.failed << " failed, "
                           << traffic.owner_timeouts
                           << " in flight to the killed node");
  for (auto& why : traffic.failures)
    CAF_MESSAGE("failed: " << why);
  CAF_MESSAGE(done_at_kill << " requests before the kill at "
              << std::chrono::duration_cast<std::chrono::milliseconds>(
                   killed_at - started).count()
              << " ms; the attempts took "
              << std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - started).count()
              << " ms");
  CAF_CHECK_GREATER(traffic.done.load(), 50u);
  CAF_CHECK_EQUAL(traffic.failed.load(), 0u);
  // At most the requests in flight to node 4 when it was killed.
  CAF_CHECK_LESS_OR_EQUAL(traffic.owner_timeouts.load(),
                          static_cast<size_t>(load::threads));
  CAF_CHECK_EQUAL(links_lost(), before);
  CAF_CHECK(all_linked(3));
  // The fourth node is gone, and the three saw it go.
  CAF_CHECK(eventually([&] { return state_of(1, "node-4") == "down"; }, 10s));
  uint64_t refused = 0;
  for (int i = 1; i <= 3; ++i)
    refused += metric(i, "keymesh_cluster_handshake_failures_total") +
               metric(i, "keymesh_cluster_handshake_timeouts_total") +
               metric(i, "keymesh_cluster_handshakes_over_capacity_total") +
               metric(i, "keymesh_cluster_refused_messages_total");
  CAF_MESSAGE(refused << " connections refused, as counted by the nodes");
  CAF_CHECK_GREATER(refused, 900u);
}

CAF_TEST(thousands_of_idle_connections_are_bounded_and_closed) {
  // The test process needs a descriptor per connection.
  rlimit lim{};
  getrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = std::min<rlim_t>(lim.rlim_max, 8192);
  setrlimit(RLIMIT_NOFILE, &lim);
  auto count = std::min<size_t>(3000, lim.rlim_cur - 200);
  CAF_REQUIRE_GREATER(count, 1000u);
  auto baseline = open_descriptors(1);
  auto before = links_lost();
  load traffic{*this};
  std::vector<int> idle;
  size_t peak = 0;
  for (size_t n = 0; n < count; ++n) {
    auto fd = knock::connect_to(cluster_port(1));
    if (fd >= 0)
      idle.push_back(fd);
    if (n % 250 == 0)
      peak = std::max(peak, open_descriptors(1));
  }
  peak = std::max(peak, open_descriptors(1));
  CAF_MESSAGE(idle.size() << " idle connections; node 1 held at most " << peak
                          << " descriptors (" << baseline << " before)");
  CAF_CHECK_GREATER(idle.size(), count * 9 / 10);
  // At most the cap (64) pending, plus the listen backlog on the way in.
  CAF_CHECK_LESS(peak, baseline + 64 + 40);
  // Every one is closed by the node: at once over the cap, after 1 s in
  // its handshake otherwise.
  size_t closed = 0;
  for (auto fd : idle) {
    if (knock::closed_by_peer(fd, 3s))
      ++closed;
    ::close(fd);
  }
  CAF_CHECK_EQUAL(closed, idle.size());
  CAF_CHECK_LESS(open_descriptors(1), baseline + 10);
  traffic.finish();
  CAF_MESSAGE(traffic.done << " requests meanwhile, " << traffic.failed
                           << " failed");
  CAF_CHECK_EQUAL(traffic.failed.load(), 0u);
  CAF_CHECK_EQUAL(links_lost(), before);
  CAF_CHECK(all_linked(3));
  CAF_CHECK_GREATER(
      metric(1, "keymesh_cluster_handshakes_over_capacity_total") +
          metric(1, "keymesh_cluster_handshake_timeouts_total"),
      count / 2);
}

CAF_TEST(a_peer_that_never_proved_who_it_is_is_not_heard) {
  // A process with a valid certificate of the cluster CA (CN node-9) that
  // completes TLS and BASP, so it gets the membership actor, but never
  // proves an identity in keymesh's handshake.
  rogue_peer rogue{*this};
  auto& self = rogue.self;
  auto& membership = rogue.membership;
  auto outcome = [](caf::error& err) { return to_string(err); };
  // Heartbeats and the member view are for admitted members only.
  std::string ping = "no answer", members = "no answer", prove = "no answer";
  self->request(membership, std::chrono::seconds{5}, keymesh::atom::ping_v,
                uint64_t{7})
    .receive([&](uint64_t, int64_t) { ping = "answered"; },
             [&](caf::error& err) { ping = outcome(err); });
  CAF_CHECK(ping.find("not an admitted cluster member") != std::string::npos);
  self->request(membership, std::chrono::seconds{5}, keymesh::atom::get_v,
                keymesh::atom::members_v)
    .receive([&](keymesh::cluster_status&) { members = "answered"; },
             [&](caf::error& err) { members = outcome(err); });
  CAF_CHECK(members.find("not an admitted cluster member")
            != std::string::npos);
  // A proof with no handshake behind it gets nothing, no services above all.
  self->request(membership, std::chrono::seconds{5}, keymesh::atom::prove_v,
                std::string{"node-9"}, std::string{"x"},
                keymesh::node_services{})
    .receive([&](keymesh::node_services&) { prove = "answered"; },
             [&](caf::error& err) { prove = outcome(err); });
  CAF_CHECK(prove.find("no handshake is pending") != std::string::npos);
  // Gossip from it is not taken: node 1 never dials what it names.
  self->send(membership, keymesh::atom::gossip_v,
             std::vector<keymesh::member_info>{
               {"node-9", "127.0.0.1:1", "up", 0, 0, 1, 1}});
  std::this_thread::sleep_for(1500ms);
  CAF_CHECK(get_cluster(1).dump().find("127.0.0.1:1\"") == std::string::npos);
  CAF_CHECK(all_linked(3));
}

CAF_TEST(a_peer_message_that_would_crash_caf_closes_its_link_only) {
  // CAF 0.17.6 terminates on a config_value whose type index is out of
  // range, and casts the pointer of a (link_atom, strong_actor_ptr) message
  // to a proxy whatever it names. Each closes the rogue's link; node 1 and
  // the links between the three nodes stay up.
  auto refused_before = metric(1, "keymesh_cluster_refused_messages_total");
  {
    rogue_peer rogue{*this};
    rogue.self->send(caf::actor_cast<caf::actor>(rogue.membership), poison{});
    CAF_CHECK(eventually(
      [&] {
        return metric(1, "keymesh_cluster_refused_messages_total")
               > refused_before;
      },
      5s));
  }
  CAF_CHECK(!node(1).poll_exit());
  auto refused_after_poison =
    metric(1, "keymesh_cluster_refused_messages_total");
  {
    rogue_peer rogue{*this};
    caf::atom_value link = caf::link_atom::value;
    rogue.self->send(caf::actor_cast<caf::actor>(rogue.membership), link,
                     caf::actor_cast<caf::strong_actor_ptr>(rogue.membership));
    CAF_CHECK(eventually(
      [&] {
        return metric(1, "keymesh_cluster_refused_messages_total")
               > refused_after_poison;
      },
      5s));
  }
  CAF_CHECK(!node(1).poll_exit());
  CAF_CHECK(node(1).log().find("CAF cannot read without crashing")
            != std::string::npos);
  CAF_CHECK(node(1).log().find("a link request") != std::string::npos);
  CAF_CHECK_EQUAL(
    request(http_port(1), "GET", "/healthz/ready").result_int(), 200u);
  CAF_CHECK(all_linked(3));
  CAF_CHECK_EQUAL(links_lost(), 0u);
}

CAF_TEST_FIXTURE_SCOPE_END()
