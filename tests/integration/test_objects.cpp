// Objects (an OpenID Provider's short-lived models) on a real 3-node
// cluster (mutual TLS, replication factor 2), over HTTP: an object put on
// one node is read, looked up and destroyed on the others; 100 consumers
// spread over all nodes race for one object and exactly one wins, every
// round; compare-and-set and create-if-absent decide once; input past the
// limits gets a clear 400.
#define CAF_SUITE objects
#include "caf/test/unit_test.hpp"

#include <ctime>
#include <thread>

#include "support/session_cluster.hpp"

using namespace keymesh::test;
using namespace std::chrono_literals;

namespace {

struct objects_cluster : session_cluster {
  response put(int i, const std::string& path, const json& body) {
    return call(i, "PUT", "/api/objects/" + path, body.dump());
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(object_tests, objects_cluster)

CAF_TEST(an_object_put_on_one_node_is_found_and_destroyed_on_the_others) {
  for (int n = 0; n < 6; ++n) {
    auto id = "code-" + std::to_string(n);
    auto grant = n % 2 == 0 ? "grant-even" : "grant-odd";
    auto res = put(1 + n % 3, "AuthorizationCode/" + id,
                   {{"value", {{"accountId", "alice"}, {"n", n}}},
                    {"ttl", 60},
                    {"indexes", {{"grant_id", grant}}}});
    CAF_REQUIRE_EQUAL(res.result_int(), 200u);
    CAF_CHECK_EQUAL(at(json::parse(res.body()), "expires_at").get<int64_t>()
                      - at(json::parse(res.body()), "created_at")
                          .get<int64_t>(),
                    60);
  }
  for (int i = 1; i <= 3; ++i) {
    auto got = call(i, "GET", "/api/objects/AuthorizationCode/code-4");
    CAF_REQUIRE_EQUAL(got.result_int(), 200u);
    auto body = json::parse(got.body());
    CAF_CHECK_EQUAL(at(at(body, "value"), "n"), 4);
    CAF_CHECK_EQUAL(at(at(body, "indexes"), "grant_id"), "grant-even");
    auto found = call(i, "GET",
                      "/api/objects/AuthorizationCode?index=grant_id&value="
                      "grant-even");
    CAF_REQUIRE_EQUAL(found.result_int(), 200u);
    CAF_CHECK_EQUAL(at(json::parse(found.body()), "objects").size(), 3u);
  }
  // The grant's objects go, on every node.
  auto ended = call(2, "DELETE",
                    "/api/objects/AuthorizationCode?index=grant_id&value="
                    "grant-even");
  CAF_REQUIRE_EQUAL(ended.result_int(), 200u);
  CAF_CHECK_EQUAL(at(json::parse(ended.body()), "destroyed"), 3);
  for (int i = 1; i <= 3; ++i) {
    CAF_CHECK_EQUAL(
      call(i, "GET", "/api/objects/AuthorizationCode/code-0").result_int(),
      404u);
    CAF_CHECK_EQUAL(
      call(i, "GET", "/api/objects/AuthorizationCode/code-1").result_int(),
      200u);
  }
  CAF_CHECK_EQUAL(
    call(3, "DELETE", "/api/objects/AuthorizationCode/code-1").result_int(),
    200u);
  CAF_CHECK_EQUAL(
    call(1, "DELETE", "/api/objects/AuthorizationCode/code-1").result_int(),
    404u);
}

CAF_TEST(of_100_consumers_on_three_nodes_exactly_one_wins) {
  constexpr int rounds = 5;
  constexpr int consumers = 100;
  for (int round = 0; round < rounds; ++round) {
    auto path = "AuthorizationCode/race-" + std::to_string(round);
    auto created = put(1 + round % 3, path, {{"value", "once"}});
    CAF_MESSAGE("put: " << created.body());
    CAF_REQUIRE_EQUAL(created.result_int(), 200u);
    std::vector<unsigned> status(consumers);
    std::vector<std::thread> threads;
    for (int c = 0; c < consumers; ++c)
      threads.emplace_back([&, c] {
        status[static_cast<size_t>(c)]
          = call(1 + c % 3, "POST", "/api/objects/" + path + "/consume",
                 json{{"idempotency_key", "consumer-" + std::to_string(c)}}
                   .dump())
              .result_int();
      });
    for (auto& t : threads)
      t.join();
    auto won = std::count(status.begin(), status.end(), 200u);
    auto lost = std::count(status.begin(), status.end(), 409u);
    CAF_MESSAGE("round " << round << ": " << won << " won, " << lost
                         << " already consumed");
    CAF_CHECK_EQUAL(won, 1);
    CAF_CHECK_EQUAL(lost, consumers - 1);
    // Every node sees it consumed.
    for (int i = 1; i <= 3; ++i) {
      auto got = call(i, "GET", "/api/objects/" + path);
      CAF_REQUIRE_EQUAL(got.result_int(), 200u);
      CAF_CHECK(json::parse(got.body()).contains("consumed_at"));
    }
  }
  // The winner asking again (through another node) gets its answer again.
  CAF_REQUIRE_EQUAL(put(1, "AuthorizationCode/retry", {{"value", 1}})
                      .result_int(),
                    200u);
  auto first = call(2, "POST", "/api/objects/AuthorizationCode/retry/consume",
                    R"({"idempotency_key":"k-1"})");
  CAF_REQUIRE_EQUAL(first.result_int(), 200u);
  auto again = call(3, "POST", "/api/objects/AuthorizationCode/retry/consume",
                    R"({"idempotency_key":"k-1"})");
  CAF_CHECK_EQUAL(again.result_int(), 200u);
  auto other = call(1, "POST", "/api/objects/AuthorizationCode/retry/consume",
                    R"({"idempotency_key":"k-2"})");
  CAF_CHECK_EQUAL(other.result_int(), 409u);
  CAF_CHECK_EQUAL(at(json::parse(other.body()), "error"), "already_consumed");
  CAF_CHECK_EQUAL(at(json::parse(other.body()), "consumed_at"),
                  at(json::parse(first.body()), "consumed_at"));
}

CAF_TEST(conditions and limits) {
  auto created = put(1, "Interaction/i1",
                     {{"value", {{"prompt", "login"}}}, {"if_absent", true}});
  CAF_REQUIRE_EQUAL(created.result_int(), 200u);
  CAF_CHECK_EQUAL(
    put(2, "Interaction/i1", {{"value", 1}, {"if_absent", true}})
      .result_int(),
    409u);
  auto version = at(json::parse(created.body()), "version").get<std::string>();
  // Two tabs update from the same version: one wins, the other gets 412.
  auto a = put(2, "Interaction/i1",
               {{"value", {{"prompt", "consent"}}}, {"if_version", version}});
  auto b = put(3, "Interaction/i1",
               {{"value", {{"prompt", "other"}}}, {"if_version", version}});
  CAF_CHECK_EQUAL(a.result_int(), 200u);
  CAF_CHECK_EQUAL(b.result_int(), 412u);
  CAF_CHECK_EQUAL(at(json::parse(b.body()), "error"), "version_mismatch");
  // Input past the limits.
  CAF_CHECK_EQUAL(put(1, "bad%20kind/x", {{"value", 1}}).result_int(), 400u);
  CAF_CHECK_EQUAL(put(1, "K/x", {{"value", std::string(65 * 1024, 'v')}})
                    .result_int(),
                  400u);
  CAF_CHECK_EQUAL(put(1, "K/x", {{"value", 1}, {"ttl", 14 * 86400 + 1}})
                    .result_int(),
                  400u);
  CAF_CHECK_EQUAL(put(1, "K/x", {{"value", 1}, {"ttl", 0}}).result_int(),
                  400u);
  CAF_CHECK_EQUAL(put(1, "K/x", {{"novalue", 1}}).result_int(), 400u);
  CAF_CHECK_EQUAL(put(1, "K/x", {{"value", 1}, {"indexes", {{"uid", 7}}}})
                    .result_int(),
                  400u);
  CAF_CHECK_EQUAL(put(1, "K/x", {{"value", 1}, {"if_version", "zz"}})
                    .result_int(),
                  400u);
  CAF_CHECK_EQUAL(
    call(1, "GET", "/api/objects/K?index=uid").result_int(), 400u);
  CAF_CHECK_EQUAL(
    call(1, "POST", "/api/objects/K/x/consume", R"({"idempotency_key":3})")
      .result_int(),
    400u);
  // No admin key, no objects.
  CAF_CHECK_EQUAL(request(http_port(1), "GET", "/api/objects/K/x").result_int(),
                  401u);
}

CAF_TEST(a_value_registered_on_one_node_is_a_replay_on_every_other) {
  auto exp = static_cast<int64_t>(std::time(nullptr)) + 120;
  json check{{"scope", "client_assertion"},
             {"iss", "https://client.example"},
             {"jti", "assertion-1"},
             {"exp", exp}};
  auto first = call(1, "POST", "/api/replay", check.dump());
  CAF_REQUIRE_EQUAL(first.result_int(), 200u);
  CAF_CHECK_EQUAL(at(json::parse(first.body()), "replayed"), false);
  for (int i = 2; i <= 3; ++i) {
    auto again = call(i, "POST", "/api/replay", check.dump());
    CAF_CHECK_EQUAL(again.result_int(), 409u);
    CAF_CHECK_EQUAL(at(json::parse(again.body()), "error"), "replayed");
    CAF_CHECK_EQUAL(at(json::parse(again.body()), "first_seen"),
                    at(json::parse(first.body()), "first_seen"));
  }
  // 60 registrations of one value at once over three nodes: one first use.
  check["jti"] = "assertion-race";
  std::vector<unsigned> status(60);
  std::vector<std::thread> threads;
  for (size_t c = 0; c < status.size(); ++c)
    threads.emplace_back([&, c] {
      status[c] = call(1 + static_cast<int>(c % 3), "POST", "/api/replay",
                       check.dump())
                    .result_int();
    });
  for (auto& t : threads)
    t.join();
  CAF_CHECK_EQUAL(std::count(status.begin(), status.end(), 200u), 1);
  CAF_CHECK_EQUAL(std::count(status.begin(), status.end(), 409u), 59);
  check["exp"] = exp - 600;
  CAF_CHECK_EQUAL(call(2, "POST", "/api/replay", check.dump()).result_int(),
                  400u);
  CAF_CHECK_EQUAL(
    call(2, "POST", "/api/replay", R"({"scope":"s","iss":"i"})").result_int(),
    400u);
}

CAF_TEST(a_request_pushed_on_one_node_is_redeemed_once_on_another) {
  json params{{"response_type", "code"},
              {"scope", "openid"},
              {"redirect_uri", "https://rp.example/cb"}};
  auto pushed = call(1, "POST", "/api/par",
                     json{{"client_id", "rp-1"}, {"params", params}}.dump());
  CAF_REQUIRE_EQUAL(pushed.result_int(), 201u);
  auto uri = at(json::parse(pushed.body()), "request_uri").get<std::string>();
  CAF_CHECK_EQUAL(uri.rfind("urn:ietf:params:oauth:request_uri:", 0), 0u);
  CAF_CHECK_EQUAL(at(json::parse(pushed.body()), "expires_in"), 60);
  auto redeem = [&](int i, const std::string& client, const std::string& u) {
    return call(i, "POST", "/api/par/redeem",
                json{{"client_id", client}, {"request_uri", u}}.dump());
  };
  // Another client presenting it (on node 3) is refused, and does not use
  // it up.
  auto stolen = redeem(3, "rp-2", uri);
  CAF_CHECK_EQUAL(stolen.result_int(), 403u);
  CAF_CHECK_EQUAL(at(json::parse(stolen.body()), "error"), "client_mismatch");
  auto redeemed = redeem(2, "rp-1", uri);
  CAF_REQUIRE_EQUAL(redeemed.result_int(), 200u);
  CAF_CHECK_EQUAL(at(json::parse(redeemed.body()), "params"), params);
  CAF_CHECK_EQUAL(at(json::parse(redeemed.body()), "client_id"), "rp-1");
  auto again = redeem(3, "rp-1", uri);
  CAF_CHECK_EQUAL(again.result_int(), 409u);
  CAF_CHECK_EQUAL(at(json::parse(again.body()), "error"), "already_consumed");
  // Expired (a one-second request, redeemed after it).
  auto brief = call(2, "POST", "/api/par",
                    json{{"client_id", "rp-1"}, {"params", params},
                         {"ttl", 1}}
                      .dump());
  CAF_REQUIRE_EQUAL(brief.result_int(), 201u);
  std::this_thread::sleep_for(1100ms);
  auto late = redeem(3, "rp-1",
                     at(json::parse(brief.body()), "request_uri")
                       .get<std::string>());
  CAF_CHECK_EQUAL(late.result_int(), 410u);
  CAF_CHECK_EQUAL(at(json::parse(late.body()), "error"), "expired");
  // Bad input.
  CAF_CHECK_EQUAL(redeem(1, "rp-1", "urn:ietf:params:oauth:request_uri:x")
                    .result_int(),
                  400u);
  CAF_CHECK_EQUAL(redeem(1, "rp-1", uri + "A").result_int(), 400u);
  CAF_CHECK_EQUAL(redeem(1, "rp-1",
                         "urn:ietf:params:oauth:request_uri:"
                           + std::string(43, 'A'))
                    .result_int(),
                  404u);
  auto push = [&](const json& body) {
    return call(1, "POST", "/api/par", body.dump()).result_int();
  };
  CAF_CHECK_EQUAL(push({{"client_id", "rp-1"}, {"params", params},
                        {"ttl", 601}}),
                  400u);
  CAF_CHECK_EQUAL(push({{"client_id", "rp-1"}, {"params", "scope=openid"}}),
                  400u);
  CAF_CHECK_EQUAL(push({{"client_id", ""}, {"params", params}}), 400u);
  CAF_CHECK_EQUAL(push({{"client_id", "rp-1"},
                        {"params", {{"x", std::string(65 * 1024, 'v')}}}}),
                  400u);
  CAF_CHECK_EQUAL(push({{"client_id", "rp-1"}, {"params", params},
                        {"extra", 1}}),
                  400u);
  // Every field at its limit is taken.
  CAF_CHECK_EQUAL(push({{"client_id", std::string(512, 'c')},
                        {"params", {{"x", std::string(64 * 1024 - 16, 'v')}}},
                        {"ttl", 600}}),
                  201u);
}

CAF_TEST_FIXTURE_SCOPE_END()
