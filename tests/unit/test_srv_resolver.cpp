// SRV discovery: answer parsing on hand-built DNS messages, resolve_srv
// against a real dnsmasq on loopback (order, NXDOMAIN, a dead nameserver),
// and the polling actor end to end. Without a dnsmasq binary the cases that
// need it only say so.
#define CAF_SUITE srv_resolver
#include "caf/test/unit_test.hpp"

#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <random>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include "actors/error.hpp"
#include "actors/interfaces.hpp"
#include "actors/srv_resolver.hpp"
#include "support/process.hpp"
#include "support/ports.hpp"
#include "support/temp_dir.hpp"

using namespace keymesh;
using namespace std::chrono_literals;
using std::chrono::milliseconds;
using std::chrono::steady_clock;
using strings = std::vector<std::string>;

namespace {

// -- hand-built DNS messages
// ----------------------------------------------------

using bytes = std::vector<unsigned char>;

void put16(bytes& out, unsigned value) {
  out.push_back(static_cast<unsigned char>(value >> 8));
  out.push_back(static_cast<unsigned char>(value & 0xff));
}

void put_name(bytes& out, const std::string& dotted) {
  size_t start = 0;
  while (start < dotted.size()) {
    auto dot = dotted.find('.', start);
    if (dot == std::string::npos)
      dot = dotted.size();
    out.push_back(static_cast<unsigned char>(dot - start));
    out.insert(out.end(), dotted.begin() + static_cast<long>(start),
               dotted.begin() + static_cast<long>(dot));
    start = dot + 1;
  }
  out.push_back(0);
}

/// A response to "_keymesh._tcp.cluster.test SRV" with ANSWERS records.
bytes response_header(unsigned answers) {
  bytes msg;
  put16(msg, 0x1234);
  put16(msg, 0x8180); // a response, recursion desired and available, NOERROR
  put16(msg, 1);
  put16(msg, answers);
  put16(msg, 0);
  put16(msg, 0);
  put_name(msg, "_keymesh._tcp.cluster.test"); // at offset 12
  put16(msg, 33);
  put16(msg, 1);
  return msg;
}

/// An answer record owned by the question's name (a pointer to offset 12).
void put_record(bytes& msg, unsigned type, const bytes& rdata) {
  put16(msg, 0xc00c);
  put16(msg, type);
  put16(msg, 1);
  put16(msg, 0);
  put16(msg, 60); // TTL
  put16(msg, static_cast<unsigned>(rdata.size()));
  msg.insert(msg.end(), rdata.begin(), rdata.end());
}

bytes srv_rdata(unsigned priority, unsigned weight, unsigned port,
                const std::string& target) {
  bytes rdata;
  put16(rdata, priority);
  put16(rdata, weight);
  put16(rdata, port);
  if (target == ".")
    rdata.push_back(0);
  else
    put_name(rdata, target);
  return rdata;
}

strings parse(const bytes& msg, std::string& error) {
  error.clear();
  return srv_addresses(parse_srv_answer(msg.data(), msg.size(), error));
}

// -- dnsmasq on loopback
// --------------------------------------------------------

/// A loopback port free for both UDP and TCP, below the ephemeral range.
uint16_t free_port() {
  return test::free_port_range(1, true);
}

std::string dnsmasq_binary() {
  for (auto path : {"/usr/sbin/dnsmasq", "/usr/bin/dnsmasq", "/sbin/dnsmasq"})
    if (::access(path, X_OK) == 0)
      return path;
  return {};
}

/// A dnsmasq that answers for cluster.test and other.test only (NXDOMAIN for
/// every other name in them), stopped by pid at the end.
struct dnsmasq_fixture {
  test::temp_dir dir;
  std::unique_ptr<test::process> server;
  std::string nameserver;
  bool running = false;

  dnsmasq_fixture() {
    auto binary = dnsmasq_binary();
    if (binary.empty()) {
      CAF_MESSAGE("dnsmasq is not installed: skipping the cases that need "
                  "it (apt-get install dnsmasq)");
      return;
    }
    auto port = free_port();
    strings args{
        binary,
        "--no-daemon",
        "--port=" + std::to_string(port),
        "--listen-address=127.0.0.1",
        "--bind-interfaces",
        "--no-resolv",
        "--no-hosts",
        "--conf-file=/dev/null",
        "--pid-file=",
        "--log-facility=-",
        "--local=/cluster.test/other.test/",
        // Priority 10 twice (weight 50 before weight 10), then priority 20.
        "--srv-host=_keymesh._tcp.cluster.test,node-b.cluster.test,7402,20,10",
        "--srv-host=_keymesh._tcp.cluster.test,node-a.cluster.test,7401,10,10",
        "--srv-host=_keymesh._tcp.cluster.test,node-c.cluster.test,7403,10,50",
        "--srv-host=_keymesh._tcp.other.test,node-d.other.test,7404,0,10",
    };
    if (::geteuid() == 0)
      args.push_back("--user=root");
    server = std::make_unique<test::process>(
        args, std::map<std::string, std::string>{}, dir.file("dnsmasq.log"));
    nameserver = "127.0.0.1:" + std::to_string(port);
    // Ready once it answers.
    auto deadline = steady_clock::now() + 10s;
    while (steady_clock::now() < deadline && !server->poll_exit()) {
      std::string error;
      if (!resolve_srv("_keymesh._tcp.other.test", nameserver, 1s, error)
               .empty()) {
        running = true;
        return;
      }
      std::this_thread::sleep_for(50ms);
    }
    CAF_MESSAGE("dnsmasq cannot run here, skipping the cases that need it:\n"
                << server->log());
  }

  ~dnsmasq_fixture() {
    if (server)
      server->stop(SIGTERM, 5s);
  }
};

/// Collects what a resolver actor reports, with the time of each report.
struct result_log {
  std::mutex mtx;
  std::condition_variable cv;
  std::vector<std::pair<steady_clock::time_point, strings>> rounds;

  std::function<void(strings)> callback() {
    return [this](strings found) {
      std::lock_guard<std::mutex> guard{mtx};
      rounds.emplace_back(steady_clock::now(), std::move(found));
      cv.notify_all();
    };
  }

  bool wait_for(size_t count, std::chrono::seconds limit) {
    std::unique_lock<std::mutex> guard{mtx};
    return cv.wait_for(guard, limit, [&] { return rounds.size() >= count; });
  }
};

struct actor_fixture : dnsmasq_fixture {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;

  actor_fixture() {
    add_message_types(cfg);
    cfg.set("scheduler.max-threads", 2);
    sys = std::make_unique<caf::actor_system>(cfg);
  }
};

} // namespace

// -- parsing
// --------------------------------------------------------------------

CAF_TEST(answers_are_ordered_by_priority_then_weight) {
  auto msg = response_header(5);
  put_record(msg, 33, srv_rdata(20, 10, 7402, "node-b.cluster.test"));
  put_record(msg, 5, bytes{0}); // a CNAME (to the root): skipped
  put_record(msg, 33, srv_rdata(10, 10, 7401, "node-a.cluster.test"));
  put_record(msg, 33, srv_rdata(10, 50, 7403, "node-c.cluster.test"));
  put_record(msg, 33, srv_rdata(0, 0, 0, ".")); // "not offered": skipped
  std::string error;
  CAF_CHECK_EQUAL(parse(msg, error), (strings{"node-c.cluster.test:7403",
                                              "node-a.cluster.test:7401",
                                              "node-b.cluster.test:7402"}));
  CAF_CHECK_EQUAL(error, "");
}

CAF_TEST(compressed_targets_are_expanded_and_duplicates_dropped) {
  auto msg = response_header(2);
  // "node-x" followed by a pointer to "cluster.test" inside the question.
  bytes rdata;
  put16(rdata, 1);
  put16(rdata, 1);
  put16(rdata, 7400);
  rdata.push_back(6);
  rdata.insert(rdata.end(), {'n', 'o', 'd', 'e', '-', 'x'});
  put16(rdata, 0xc000 | (12 + 14)); // skips "\x08_keymesh\x04_tcp"
  put_record(msg, 33, rdata);
  put_record(msg, 33, rdata);
  std::string error;
  CAF_CHECK_EQUAL(parse(msg, error), (strings{"node-x.cluster.test:7400"}));
  CAF_CHECK_EQUAL(error, "");
}

CAF_TEST(truncated_and_malformed_answers_are_errors) {
  auto msg = response_header(1);
  put_record(msg, 33, srv_rdata(10, 10, 7401, "node-a.cluster.test"));
  std::string error;
  auto cut = bytes(msg.begin(), msg.end() - 5);
  CAF_CHECK_EQUAL(parse(cut, error), strings{});
  CAF_CHECK_NOT_EQUAL(error, "");
  CAF_CHECK_EQUAL(parse(bytes{1, 2, 3}, error), strings{});
  CAF_CHECK_NOT_EQUAL(error, "");
  auto short_rdata = response_header(1);
  put_record(short_rdata, 33, bytes{0, 1, 0, 2});
  CAF_CHECK_EQUAL(parse(short_rdata, error), strings{});
  CAF_CHECK_NOT_EQUAL(error, "");
}

CAF_TEST(bad_nameservers_are_refused_before_any_query) {
  std::string error;
  CAF_CHECK_EQUAL(resolve_srv("_k._tcp.x", "localhost:53", 1s, error),
                  strings{});
  CAF_CHECK_NOT_EQUAL(error, "");
  CAF_CHECK_EQUAL(resolve_srv("_k._tcp.x", "127.0.0.1:99999", 1s, error),
                  strings{});
  CAF_CHECK_NOT_EQUAL(error, "");
}

CAF_TEST(a_nameserver_that_does_not_answer_fails_within_the_timeout) {
  // A closed port refuses at once (ICMP port unreachable).
  auto closed = "127.0.0.1:" + std::to_string(free_port());
  std::string error;
  auto start = steady_clock::now();
  CAF_CHECK_EQUAL(resolve_srv("_keymesh._tcp.cluster.test", closed, 1s, error),
                  strings{});
  CAF_CHECK_NOT_EQUAL(error, "");
  CAF_CHECK_LESS(steady_clock::now() - start, 2s);
  // A socket that never replies: the timeout (1 s) is what ends the wait.
  auto port = free_port();
  int silent = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CAF_REQUIRE_EQUAL(
      ::bind(silent, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  start = steady_clock::now();
  CAF_CHECK_EQUAL(resolve_srv("_keymesh._tcp.cluster.test",
                              "127.0.0.1:" + std::to_string(port), 1s, error),
                  strings{});
  auto took = steady_clock::now() - start;
  ::close(silent);
  CAF_CHECK_NOT_EQUAL(error, "");
  CAF_CHECK_GREATER_OR_EQUAL(took, 900ms);
  CAF_CHECK_LESS(took, 2500ms);
}

// -- against dnsmasq
// --------------------------------------------------------------

CAF_TEST_FIXTURE_SCOPE(srv_resolver_dns_tests, dnsmasq_fixture)

CAF_TEST(resolve_srv_returns_the_targets_in_priority_order) {
  if (!running)
    return;
  std::string error;
  auto found = resolve_srv("_keymesh._tcp.cluster.test", nameserver, 2s, error);
  CAF_CHECK_EQUAL(error, "");
  CAF_CHECK_EQUAL(
      found, (strings{"node-c.cluster.test:7403", "node-a.cluster.test:7401",
                      "node-b.cluster.test:7402"}));
}

CAF_TEST(an_unknown_name_is_an_empty_list_and_no_error) {
  if (!running)
    return;
  std::string error;
  CAF_CHECK_EQUAL(
      resolve_srv("_nothing._tcp.cluster.test", nameserver, 2s, error),
      strings{});
  CAF_CHECK_EQUAL(error, "");
}

CAF_TEST_FIXTURE_SCOPE_END()

// -- the actor
// ------------------------------------------------------------------

CAF_TEST_FIXTURE_SCOPE(srv_resolver_actor_tests, actor_fixture)

CAF_TEST(the_actor_reports_the_union_at_once_and_after_each_interval) {
  if (!running)
    return;
  result_log log;
  auto started = steady_clock::now();
  auto resolver = spawn_srv_resolver(*sys,
                                     {"_keymesh._tcp.cluster.test",
                                      "_nothing._tcp.cluster.test",
                                      "_keymesh._tcp.other.test"},
                                     nameserver, 300ms, log.callback());
  CAF_REQUIRE(log.wait_for(2, 5s));
  caf::scoped_actor self{*sys};
  self->monitor(resolver);
  caf::anon_send_exit(resolver, caf::exit_reason::user_shutdown);
  bool down = false;
  self->receive([&](caf::down_msg&) { down = true; }, caf::after(5s) >> [] {});
  CAF_CHECK(down);
  std::lock_guard<std::mutex> guard{log.mtx};
  auto expected =
      strings{"node-c.cluster.test:7403", "node-a.cluster.test:7401",
              "node-b.cluster.test:7402", "node-d.other.test:7404"};
  CAF_CHECK_EQUAL(log.rounds[0].second, expected);
  CAF_CHECK_EQUAL(log.rounds[1].second, expected);
  CAF_CHECK_LESS(log.rounds[0].first - started, 1s);
  auto gap = log.rounds[1].first - log.rounds[0].first;
  CAF_CHECK_GREATER_OR_EQUAL(gap, 290ms);
  CAF_CHECK_LESS(gap, 2s);
}

CAF_TEST(a_round_without_answers_is_reported_empty) {
  if (!running)
    return;
  result_log log;
  auto resolver = spawn_srv_resolver(*sys, {"_nothing._tcp.cluster.test"},
                                     nameserver, 300ms, log.callback());
  CAF_REQUIRE(log.wait_for(1, 5s));
  caf::anon_send_exit(resolver, caf::exit_reason::user_shutdown);
  std::lock_guard<std::mutex> guard{log.mtx};
  CAF_CHECK_EQUAL(log.rounds[0].second, strings{});
}

CAF_TEST(bad_settings_stop_the_actor) {
  caf::scoped_actor self{*sys};
  result_log log;
  auto resolver = spawn_srv_resolver(*sys, {}, "", 300ms, log.callback());
  self->monitor(resolver);
  caf::error reason;
  self->receive([&](caf::down_msg& msg) { reason = msg.reason; },
                caf::after(5s) >> [] {});
  CAF_CHECK_EQUAL(
      reason, make_error(ec::invalid_argument, "cluster.srv.names is empty"));
  CAF_CHECK(log.rounds.empty());
}

CAF_TEST_FIXTURE_SCOPE_END()
