// The secrets service under the test coordinator, on one shard that owns
// its partition and a real SQLite database: rings created, adopted and
// sealed into the database; a rotation asked for while a refresh runs; a
// damaged ring record in the state; a restart of the whole cluster while
// the database cannot be read (no new ring: every cookie would stop
// opening), then can.
#define CAF_SUITE secrets_service
#define FAIL(msg) CAF_FAIL(msg)
#include "caf/test/dsl.hpp"

#include <atomic>

#include "actors/error.hpp"
#include "actors/shard.hpp"
#include "persistence/store.hpp"
#include "services/secrets.hpp"
#include "state/secret_ring.hpp"
#include "support/actor_config.hpp"
#include "support/manual_clock.hpp"
#include "support/owning_shard.hpp"
#include "support/temp_dir.hpp"

using namespace keymesh;
using namespace std::chrono_literals;
using keymesh::test::manual_clock;

namespace {

using keymesh::test::actor_config;

/// One node's secrets: its shard (the state), its board and its service.
/// A new one on the same database is a restart of the whole cluster.
struct node_secrets {
  shard_actor shard;
  std::shared_ptr<store_pool> pool;
  std::shared_ptr<secret_board> board = std::make_shared<secret_board>();
  std::shared_ptr<node_status> status = std::make_shared<node_status>();
  secrets_actor service;
};

struct fixture : test_coordinator_fixture<actor_config> {
  manual_clock clock;
  test::temp_dir dir;
  /// While set, every connection the database pool opens fails.
  std::shared_ptr<std::atomic<bool>> db_down
    = std::make_shared<std::atomic<bool>>(false);
  node_secrets node;

  fixture() {
    node = start();
  }

  ~fixture() override {
    stop(node);
  }

  node_secrets start() {
    node_secrets n;
    n.shard = test::spawn_owning_shard(sys, self, clock);
    config::settings cfg;
    cfg.node.data_dir = dir.path();
    store_pool_options po;
    po.open = [cfg, down = db_down]() -> std::unique_ptr<persistence::store> {
      if (down->load())
        throw persistence::store_error{persistence::store_failure::unavailable,
                                       "the database is down (test)"};
      return persistence::open_store(cfg);
    };
    po.workers = 1;
    po.detached = false;
    po.clock = clock.fn();
    n.pool = std::make_shared<store_pool>(sys, po,
                                          std::make_shared<store_status>());
    sched.run();
    auto opts = secrets_options::from_settings(config::settings{});
    CAF_REQUIRE(opts);
    opts->encryption_key = std::string(32, '\x5a');
    secrets_deps deps;
    deps.state.partitions = 1;
    deps.state.shards = {n.shard};
    deps.board = n.board;
    deps.store = n.pool;
    deps.status = n.status;
    deps.clock = clock.fn();
    n.service = spawn_secrets(sys, *opts, deps);
    sched.run();
    return n;
  }

  void stop(node_secrets& n) {
    caf::anon_send_exit(n.service, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(n.shard, caf::exit_reason::user_shutdown);
    sched.run();
    n.pool.reset();
    sched.run();
  }

  /// Sends every message first, then runs the scheduler: the requests meet
  /// a service that is busy with the first.
  std::vector<caf::expected<uint64_t>>
  ask_together(std::vector<std::pair<bool, std::string>> asks) {
    for (auto& [rotate, purpose] : asks) {
      if (rotate)
        self->send(node.service, atom::rotate_v, purpose);
      else
        self->send(node.service, atom::update_v, purpose);
    }
    sched.run();
    std::vector<caf::expected<uint64_t>> out;
    for (size_t i = 0; i < asks.size(); ++i)
      self->receive([&](uint64_t g) { out.emplace_back(g); },
                    [&](caf::error& err) { out.emplace_back(std::move(err)); });
    return out;
  }

  caf::expected<uint64_t> update(const std::string& purpose) {
    return ask_together({{false, purpose}}).front();
  }

  /// The state's record of PURPOSE, decoded.
  std::optional<state::secret_ring> state_ring(const std::string& purpose) {
    self->send(node.shard, atom::get_v,
               read_request{state::secrets_keyspace, purpose, 0});
    sched.run();
    std::optional<state::secret_ring> out;
    self->receive(
      [&](read_result& r) {
        if (r.found && !r.rec.tombstone)
          out = state::decode_ring(r.rec.value);
      },
      [&](caf::error& err) { CAF_FAIL(sys.render(err)); });
    return out;
  }

  /// The database's row of PURPOSE.
  std::optional<persistence::secret_row> db_row(const std::string& purpose) {
    config::settings cfg;
    cfg.node.data_dir = dir.path();
    return persistence::open_store(cfg)->find_secret_ring(purpose);
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(secrets_service_tests, fixture)

CAF_TEST(rings are made adopted and sealed into the database) {
  for (auto purpose : {dpop_purpose, cookies_purpose}) {
    auto ring = node.board->get(purpose);
    CAF_REQUIRE(ring != nullptr);
    CAF_CHECK_EQUAL(ring->generation, 1u);
    auto in_state = state_ring(purpose);
    CAF_REQUIRE(in_state);
    CAF_CHECK_EQUAL(in_state->keys.front().kid, ring->keys.front().kid);
    auto row = db_row(purpose);
    CAF_REQUIRE(row);
    CAF_CHECK_EQUAL(row->generation, 1);
    // Sealed: the key's bytes are not in the row.
    CAF_CHECK(row->sealed.find(ring->keys.front().secret) == std::string::npos);
  }
  CAF_CHECK(node.status->secrets_ready.load());
}

CAF_TEST(a rotation asked for while a refresh runs is not dropped) {
  auto answers = ask_together({{false, "dpop"}, {true, "dpop"}});
  CAF_REQUIRE_EQUAL(answers.size(), 2u);
  CAF_REQUIRE(answers[0]);
  CAF_REQUIRE(answers[1]);
  // Both are answered once the rotation ran: a new generation, on the
  // board, in the state and in the database.
  CAF_CHECK_EQUAL(*answers[1], 2u);
  CAF_CHECK_EQUAL(node.board->get("dpop")->generation, 2u);
  CAF_CHECK_EQUAL(node.board->get("dpop")->keys.size(), 2u);
  auto in_state = state_ring("dpop");
  CAF_REQUIRE(in_state);
  CAF_CHECK_EQUAL(in_state->generation, 2u);
  auto row = db_row("dpop");
  CAF_REQUIRE(row);
  CAF_CHECK_EQUAL(row->generation, 2);
}

CAF_TEST(a damaged ring record is replaced by the ring the database kept) {
  auto before = node.board->get("cookies");
  CAF_REQUIRE(before != nullptr);
  write_request w;
  w.keyspace = state::secrets_keyspace;
  w.key = "cookies";
  w.value = "damaged";
  self->send(node.shard, atom::put_v, w);
  sched.run();
  self->receive([](write_result&) {},
                [&](caf::error& err) { CAF_FAIL(sys.render(err)); });
  CAF_REQUIRE(!state_ring("cookies"));
  // The record is replaced at its version with the ring the database
  // kept (the same keys: what was sealed still opens), at the first try.
  auto answer = update("cookies");
  CAF_REQUIRE(answer);
  CAF_CHECK_EQUAL(*answer, before->generation);
  auto repaired = state_ring("cookies");
  CAF_REQUIRE(repaired);
  CAF_CHECK_EQUAL(repaired->keys.front().kid, before->keys.front().kid);
  CAF_CHECK_EQUAL(node.board->get("cookies")->keys.front().kid,
                  before->keys.front().kid);
}

CAF_TEST(a database that cannot be read gets no new ring) {
  auto kept = node.board->get("cookies");
  CAF_REQUIRE(kept != nullptr);
  // Every node restarts (the state is empty) while the database is down.
  stop(node);
  db_down->store(true);
  node = start();
  CAF_CHECK(node.board->get("cookies") == nullptr);
  CAF_CHECK(!node.status->secrets_ready.load());
  CAF_CHECK(!state_ring("cookies"));
  auto refused = update("cookies");
  CAF_CHECK(!refused);
  CAF_CHECK(!state_ring("cookies"));
  // Back: the ring the database kept, not a new one.
  db_down->store(false);
  auto answer = update("cookies");
  CAF_REQUIRE(answer);
  CAF_CHECK_EQUAL(*answer, kept->generation);
  CAF_CHECK_EQUAL(node.board->get("cookies")->keys.front().kid,
                  kept->keys.front().kid);
  CAF_REQUIRE(update("dpop"));
  CAF_CHECK(node.status->secrets_ready.load());
}

CAF_TEST_FIXTURE_SCOPE_END()
