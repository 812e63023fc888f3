// The cluster's secret rings on three real nodes (mutual TLS) sharing a
// real MariaDB: a DPoP nonce issued on one node is accepted on the others,
// for its window and the next only, across a rotation of the nonce key, and
// after a kill -9 of every node; forged nonces and another cluster's are
// refused. A cookie sealed on one node opens on the others, and while the
// cookie key rotates no node seals with a key another cannot open.
#define CAF_SUITE secrets
#include "caf/test/unit_test.hpp"

#include <csignal>
#include <set>
#include <thread>

#include "common/base64url.hpp"
#include "support/session_cluster.hpp"

using namespace keymesh::test;
using namespace std::chrono_literals;

namespace {

struct secrets_cluster : shared_db_cluster {
  secrets_cluster()
    : shared_db_cluster("volatile",
                        {{"KEYMESH_DPOP_NONCE_WINDOW", "3s"},
                         {"KEYMESH_SECRETS_INSTALL_LEAD", "1s"},
                         {"KEYMESH_SECRETS_REFRESH_INTERVAL", "500ms"}}) {
  }

  std::string nonce(int i) {
    auto res = call(i, "GET", "/api/dpop/nonce");
    CAF_REQUIRE_EQUAL(res.result_int(), 200u);
    return at(json::parse(res.body()), "nonce").get<std::string>();
  }

  bool valid(int i, const std::string& n) {
    auto res = call(i, "POST", "/api/dpop/nonce/check",
                    json{{"nonce", n}}.dump());
    CAF_REQUIRE_EQUAL(res.result_int(), 200u);
    return at(json::parse(res.body()), "valid").get<bool>();
  }

  std::string seal(int i, const std::string& text, const std::string& aad) {
    auto res = call(i, "POST", "/api/cookies/seal",
                    json{{"plaintext", text}, {"aad", aad}}.dump());
    CAF_REQUIRE_EQUAL(res.result_int(), 200u);
    return at(json::parse(res.body()), "sealed").get<std::string>();
  }

  /// The plaintext node I opens, or "<status>" when it refuses.
  std::string open(int i, const std::string& sealed, const std::string& aad) {
    auto res = call(i, "POST", "/api/cookies/open",
                    json{{"sealed", sealed}, {"aad", aad}}.dump());
    if (res.result_int() != 200u)
      return "<" + std::to_string(res.result_int()) + ">";
    return at(json::parse(res.body()), "plaintext").get<std::string>();
  }

  uint64_t generation(int i, const std::string& purpose) {
    auto res = call(i, "GET", "/api/admin/secrets/" + purpose);
    CAF_REQUIRE_EQUAL(res.result_int(), 200u);
    return at(json::parse(res.body()), "generation").get<uint64_t>();
  }

  /// Waits until every node holds generation GEN (or newer) of PURPOSE.
  bool all_hold(const std::string& purpose, uint64_t gen) {
    return eventually(
      [&] {
        for (int i = 1; i <= 3; ++i)
          if (generation(i, purpose) < gen)
            return false;
        return true;
      },
      10s);
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(secrets_tests, secrets_cluster)

CAF_TEST(a_nonce_of_one_node_holds_on_every_node_for_two_windows) {
  auto n = nonce(1);
  for (int i = 1; i <= 3; ++i)
    CAF_CHECK(valid(i, n));
  // Forged: a changed MAC byte, garbage, a well-formed nonce of a key this
  // cluster does not have (another cluster's: tests/unit/test_secret_ring).
  auto raw = *keymesh::base64url_decode(n);
  raw[20] ^= 1;
  CAF_CHECK(!valid(2, keymesh::base64url_encode(raw)));
  CAF_CHECK(!valid(2, "not-a-nonce"));
  CAF_CHECK(!valid(2, std::string(38, 'A')));
  // A rotation of the nonce key: the old key's nonce still holds on every
  // node, the new key's nonces too once it signs.
  auto before = generation(1, "dpop");
  auto rotated = call(3, "POST", "/api/admin/secrets/dpop/rotate");
  CAF_REQUIRE_EQUAL(rotated.result_int(), 200u);
  CAF_REQUIRE(all_hold("dpop", before + 1));
  std::this_thread::sleep_for(1100ms); // the install lead
  auto after = nonce(2);
  CAF_CHECK_NOT_EQUAL(after.substr(0, 6), n.substr(0, 6)); // another kid
  for (int i = 1; i <= 3; ++i) {
    CAF_CHECK(valid(i, n));
    CAF_CHECK(valid(i, after));
  }
  // Two windows (3 s each) later the first nonce is refused everywhere.
  std::this_thread::sleep_for(6s);
  for (int i = 1; i <= 3; ++i)
    CAF_CHECK(!valid(i, n));
}

CAF_TEST(live_nonces_and_cookies_survive_a_kill_9_of_every_node) {
  auto n = nonce(2);
  auto sealed = seal(3, "session-state", "_session");
  // Written to the database by every node that adopted the rings.
  std::this_thread::sleep_for(1s);
  for (int i = 1; i <= 3; ++i) {
    ::kill(node(i).pid(), SIGKILL);
    node(i).wait(10s);
  }
  for (int i = 1; i <= 3; ++i)
    start_node(i);
  CAF_REQUIRE(eventually([&] { return all_linked(3) && all_ready(); }, 30s));
  for (int i = 1; i <= 3; ++i) {
    CAF_CHECK(valid(i, n));
    CAF_CHECK_EQUAL(open(i, sealed, "_session"), "session-state");
  }
}

CAF_TEST(a_cookie_sealed_anywhere_opens_everywhere_also_during_a_rotation) {
  auto sealed = seal(1, "alice", "_session");
  for (int i = 1; i <= 3; ++i) {
    CAF_CHECK_EQUAL(open(i, sealed, "_session"), "alice");
    // Bound to its aad; changed, refused.
    CAF_CHECK_EQUAL(open(i, sealed, "_other"), "<400>");
    auto changed = sealed;
    changed[12] = changed[12] == 'A' ? 'B' : 'A';
    CAF_CHECK_EQUAL(open(i, changed, "_session"), "<400>");
  }
  // Rotate on node 2 and, until well after the new key took over, seal on
  // every node and open on every other: never a cookie another node
  // cannot open.
  auto before = generation(1, "cookies");
  CAF_REQUIRE_EQUAL(
    call(2, "POST", "/api/admin/secrets/cookies/rotate").result_int(), 200u);
  auto deadline = std::chrono::steady_clock::now() + 3s;
  int rounds = 0;
  int failures = 0;
  std::set<std::string> kids;
  while (std::chrono::steady_clock::now() < deadline) {
    for (int from = 1; from <= 3; ++from) {
      auto text = "round-" + std::to_string(rounds);
      auto s = seal(from, text, "_session");
      kids.insert(s.substr(0, 9));
      for (int to = 1; to <= 3; ++to)
        if (open(to, s, "_session") != text)
          ++failures;
    }
    ++rounds;
  }
  CAF_MESSAGE(rounds << " rounds, " << kids.size() << " key(s) sealing");
  CAF_CHECK_EQUAL(failures, 0);
  CAF_CHECK_EQUAL(kids.size(), 2u); // the old key, then the new one
  CAF_CHECK(all_hold("cookies", before + 1));
  // The cookie sealed before the rotation still opens.
  for (int i = 1; i <= 3; ++i)
    CAF_CHECK_EQUAL(open(i, sealed, "_session"), "alice");
  // Bad input.
  CAF_CHECK_EQUAL(call(1, "POST", "/api/cookies/seal",
                       json{{"plaintext", std::string(8193, 'x')}}.dump())
                    .result_int(),
                  400u);
  CAF_CHECK_EQUAL(call(1, "POST", "/api/cookies/seal",
                       json{{"plaintext", std::string(8192, 'x')},
                            {"aad", std::string(256, 'a')}}
                         .dump())
                    .result_int(),
                  200u);
  CAF_CHECK_EQUAL(
    call(1, "POST", "/api/cookies/open", json{{"sealed", 7}}.dump())
      .result_int(),
    400u);
  CAF_CHECK_EQUAL(call(1, "GET", "/api/admin/secrets/other").result_int(),
                  404u);
  // No admin key, no rings.
  CAF_CHECK_EQUAL(
    request(http_port(1), "GET", "/api/admin/secrets/cookies").result_int(),
    401u);
}

CAF_TEST_FIXTURE_SCOPE_END()
