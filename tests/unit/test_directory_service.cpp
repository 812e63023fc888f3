// The directory service under the test coordinator, over a real SQLite
// database and real scrypt, every actor (the store and hash workers too)
// scheduled by the coordinator: users (create, read, page, change,
// delete), groups, claims, members and grants, what a login reads of an
// account, hash upgrades, and the sessions a disabled or deleted account
// loses.
#define CAF_SUITE directory_service
#define FAIL(msg) CAF_FAIL(msg)
#include "caf/test/dsl.hpp"

#include "services/directory.hpp"
#include "actors/error.hpp"
#include "services/sessions.hpp"
#include "persistence/store.hpp"
#include "support/actor_config.hpp"
#include "support/directory_stack.hpp"
#include "support/manual_clock.hpp"
#include "support/owning_shard.hpp"
#include "support/temp_dir.hpp"

using namespace keymesh;
using namespace std::chrono_literals;
using keymesh::test::manual_clock;

namespace {

using keymesh::test::actor_config;

constexpr auth::scrypt_cost test_cost{10, 8, 1};

struct fixture : test_coordinator_fixture<actor_config> {
  manual_clock clock;
  test::temp_dir dir;
  config::settings cfg;
  shard_actor shard;
  sessions_actor sessions;
  std::unique_ptr<test::directory_stack> stack;
  directory_actor directory;

  fixture() {
    shard = test::spawn_owning_shard(sys, self, clock);
    cfg.node.data_dir = dir.path();
    cfg.auth.scrypt_log2_n = test_cost.log2_n;
    cfg.auth.scrypt_r = test_cost.r;
    cfg.auth.scrypt_p = test_cost.p;
    auto so = sessions_options::from_settings(cfg);
    CAF_REQUIRE(so);
    sessions_deps sd;
    sd.state.partitions = 1;
    sd.state.shards = {shard};
    sd.deny = std::make_shared<state::deny_set>();
    sd.clock = clock.fn();
    sessions = spawn_sessions(sys, *so, sd, 1).front();
    stack = std::make_unique<test::directory_stack>(sys, cfg, clock,
                                                    sessions);
    directory = stack->directory;
    sched.run();
  }

  ~fixture() override {
    stack->stop();
    caf::anon_send_exit(sessions, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(shard, caf::exit_reason::user_shutdown);
    sched.run();
  }

  template <class Result, class Dest, class... Ts>
  caf::expected<Result> ask_of(const Dest& dest, Ts... xs) {
    self->send(dest, xs...);
    sched.run();
    caf::expected<Result> out{caf::error{}};
    self->receive([&](Result& r) { out = std::move(r); },
                  [&](caf::error& err) { out = std::move(err); });
    return out;
  }

  template <class Result, class... Ts>
  caf::expected<Result> ask(Ts... xs) {
    return ask_of<Result>(directory, xs...);
  }

  user_view add_user(std::string name, std::string password = "secret") {
    auto u = ask<user_view>(atom::create_v,
                            user_spec{std::move(name), std::move(password),
                                      true});
    CAF_REQUIRE(u);
    return *u;
  }

  account account_of(const std::string& name) {
    auto a = ask<account>(atom::get_v, atom::account_v, name);
    CAF_REQUIRE(a);
    return *a;
  }

  std::string session_of(const std::string& sub) {
    session_spec spec;
    spec.sub = sub;
    auto s = ask_of<state::session>(sessions, atom::create_v, spec);
    CAF_REQUIRE(s);
    return s->sid;
  }

  bool live(const std::string& sid) {
    auto found = ask_of<session_found>(sessions, atom::get_v, sid);
    return static_cast<bool>(found);
  }
};

template <class T>
bool failed_with(const caf::expected<T>& result, ec code) {
  return !result && has_code(result.error(), code);
}

} // namespace

CAF_TEST_FIXTURE_SCOPE(directory_service_tests, fixture)

CAF_TEST(a user is created with a hash of its password and read back) {
  auto u = add_user("alice", "correct horse");
  CAF_CHECK_EQUAL(u.username, "alice");
  CAF_CHECK(u.enabled);
  CAF_CHECK_EQUAL(u.created_at, clock.ms());
  auto a = account_of("alice");
  CAF_CHECK(a.found);
  CAF_CHECK(auth::verify_password("correct horse", a.password_hash));
  CAF_CHECK(!auth::needs_rehash(a.password_hash, test_cost));
  CAF_CHECK(!account_of("nobody").found);
  auto twice = ask<user_view>(atom::create_v,
                              user_spec{"alice", "other", true});
  CAF_REQUIRE(failed_with(twice, ec::conflict));
  CAF_CHECK_EQUAL(context_text(twice.error()), "the user alice");
  CAF_CHECK(failed_with(ask<user_view>(atom::create_v,
                                       user_spec{"a\nb", "pw", true}),
                        ec::invalid_argument));
  CAF_CHECK(failed_with(ask<user_view>(atom::create_v,
                                       user_spec{"carol", "", true}),
                        ec::invalid_argument));
  CAF_CHECK(failed_with(ask<user_view>(atom::get_v, atom::user_v,
                                       std::string{"nobody"}),
                        ec::not_found));
}

CAF_TEST(users come in pages in username order) {
  for (auto name : {"dave", "alice", "carol", "bob", "erin"})
    add_user(name);
  auto first = ask<user_page>(atom::list_v, atom::user_v, std::string{},
                              uint64_t{2});
  CAF_REQUIRE(first);
  CAF_REQUIRE_EQUAL(first->users.size(), 2u);
  CAF_CHECK_EQUAL(first->users[0].username, "alice");
  CAF_CHECK_EQUAL(first->next, "bob");
  auto rest = ask<user_page>(atom::list_v, atom::user_v, first->next,
                             uint64_t{10});
  CAF_REQUIRE(rest);
  CAF_CHECK_EQUAL(rest->users.size(), 3u);
  CAF_CHECK(rest->next.empty());
  CAF_CHECK(failed_with(ask<user_page>(atom::list_v, atom::user_v,
                                       std::string{}, uint64_t{0}),
                        ec::invalid_argument));
}

CAF_TEST(groups members claims and grants make the claims of a user) {
  add_user("alice");
  auto g = ask<group_view>(atom::create_v, atom::group_v,
                           std::string{"admins"});
  CAF_REQUIRE(g);
  CAF_CHECK(failed_with(ask<group_view>(atom::create_v, atom::group_v,
                                        std::string{"admins"}),
                        ec::conflict));
  auto role = ask<claim_view>(atom::create_v,
                              claim_spec{"role", "admin", "all rights"});
  CAF_REQUIRE(role);
  CAF_CHECK(ask<atom::ok>(atom::add_v, atom::member_v, std::string{"admins"},
                          std::string{"alice"}));
  CAF_CHECK(ask<atom::ok>(atom::add_v, atom::grant_v, std::string{"admins"},
                          role->id));
  CAF_CHECK(failed_with(ask<atom::ok>(atom::add_v, atom::member_v,
                                      std::string{"admins"},
                                      std::string{"nobody"}),
                        ec::not_found));
  auto u = ask<user_view>(atom::get_v, atom::user_v, std::string{"alice"});
  CAF_REQUIRE(u);
  CAF_CHECK_EQUAL(u->groups, std::vector<std::string>{"admins"});
  CAF_REQUIRE_EQUAL(u->claims.size(), 1u);
  CAF_CHECK_EQUAL(u->claims[0].value, "admin");
  auto group = ask<group_view>(atom::get_v, atom::group_v,
                               std::string{"admins"});
  CAF_REQUIRE(group);
  CAF_CHECK_EQUAL(group->members, std::vector<std::string>{"alice"});
  CAF_CHECK_EQUAL(group->claims.size(), 1u);
  auto a = account_of("alice");
  CAF_CHECK_EQUAL(a.claims.size(), 1u);
  CAF_CHECK(ask<atom::ok>(atom::remove_v, atom::grant_v,
                          std::string{"admins"}, role->id));
  CAF_CHECK(failed_with(ask<atom::ok>(atom::remove_v, atom::grant_v,
                                      std::string{"admins"}, role->id),
                        ec::not_found));
  CAF_CHECK(ask<atom::ok>(atom::remove_v, atom::member_v,
                          std::string{"admins"}, std::string{"alice"}));
  CAF_CHECK(ask<atom::ok>(atom::remove_v, atom::claim_v, role->id));
  auto claims = ask<std::vector<claim_view>>(atom::list_v, atom::claim_v);
  CAF_REQUIRE(claims);
  CAF_CHECK(claims->empty());
  CAF_CHECK(ask<atom::ok>(atom::remove_v, atom::group_v,
                          std::string{"admins"}));
  auto groups = ask<std::vector<group_view>>(atom::list_v, atom::group_v);
  CAF_REQUIRE(groups);
  CAF_CHECK(groups->empty());
}

CAF_TEST(a new password replaces the hash and disabling ends the sessions) {
  add_user("alice", "old password");
  auto sid = session_of("alice");
  user_change change;
  change.username = "alice";
  change.password = "new password";
  clock.advance(5s);
  auto u = ask<user_view>(atom::update_v, change);
  CAF_REQUIRE(u);
  CAF_CHECK_EQUAL(u->updated_at, clock.ms());
  CAF_CHECK(auth::verify_password("new password",
                                  account_of("alice").password_hash));
  CAF_CHECK(live(sid)); // a new password alone ends nothing
  change.password.clear();
  change.set_enabled = true;
  change.enabled = false;
  u = ask<user_view>(atom::update_v, change);
  CAF_REQUIRE(u);
  CAF_CHECK(!u->enabled);
  CAF_CHECK(!live(sid));
  change.username = "nobody";
  CAF_CHECK(failed_with(ask<user_view>(atom::update_v, change),
                        ec::not_found));
}

CAF_TEST(deleting a user ends its sessions) {
  add_user("alice");
  auto sid = session_of("alice");
  CAF_CHECK(ask<atom::ok>(atom::remove_v, atom::user_v,
                          std::string{"alice"}));
  CAF_CHECK(!live(sid));
  CAF_CHECK(!account_of("alice").found);
  CAF_CHECK(failed_with(ask<atom::ok>(atom::remove_v, atom::user_v,
                                      std::string{"alice"}),
                        ec::not_found));
}

CAF_TEST(a hash is upgraded only if it did not change meanwhile) {
  add_user("alice", "pw");
  auto old_hash = account_of("alice").password_hash;
  auto fresh = auth::hash_password("pw", auth::scrypt_cost{11, 8, 1});
  auto replaced = ask<bool>(atom::rehash_v, std::string{"alice"},
                            std::string{"not the hash"}, fresh);
  CAF_REQUIRE(replaced);
  CAF_CHECK(!*replaced);
  replaced = ask<bool>(atom::rehash_v, std::string{"alice"}, old_hash, fresh);
  CAF_REQUIRE(replaced);
  CAF_CHECK(*replaced);
  CAF_CHECK_EQUAL(account_of("alice").password_hash, fresh);
}

CAF_TEST(a password that cannot be hashed is a crypto failure) {
  // r * p = 2^30: scrypt refuses the parameters before it allocates.
  directory_options opts;
  opts.cost = auth::scrypt_cost{1, 1u << 15, 1u << 15};
  directory_deps deps;
  deps.store = stack->store;
  deps.hashing = stack->hashing.get();
  deps.clock = clock.fn();
  auto odd = spawn_directory(sys, opts, deps, {}, 1).front();
  auto made = ask_of<user_view>(odd, atom::create_v,
                                user_spec{"alice", "pw", true});
  CAF_CHECK(failed_with(made, ec::crypto_failure));
  caf::anon_send_exit(odd, caf::exit_reason::user_shutdown);
}

CAF_TEST(relying parties are registered checked listed and removed) {
  using persistence::client_record;
  auto put = [&](std::string id, std::string uri, bool required) {
    return ask<client_record>(atom::put_v,
                              client_record{std::move(id), std::move(uri),
                                            required, 0, 0});
  };
  auto made = put("rp-a", "https://rp-a.example/bcl?x=1", true);
  CAF_REQUIRE(made);
  CAF_CHECK_EQUAL(made->created_at, clock.ms());
  CAF_CHECK(made->session_required);
  clock.advance(5000ms);
  auto replaced = put("rp-a", "http://127.0.0.1:8099/logout", false);
  CAF_REQUIRE(replaced);
  CAF_CHECK_EQUAL(replaced->created_at, made->created_at);
  CAF_CHECK_EQUAL(replaced->updated_at, clock.ms());
  CAF_CHECK_EQUAL(replaced->backchannel_logout_uri,
                  "http://127.0.0.1:8099/logout");
  CAF_REQUIRE(put("rp-b", "", false)); // no back-channel logout
  // Refused: a URL that is not absolute http(s), has a fragment, user info
  // or whitespace, is too long; a client_id that is empty or not UTF-8.
  for (auto uri : {"rp.example/logout", "ftp://rp.example/x",
                   "https://rp.example/x#frag", "https://u:p@rp.example/x",
                   "https://rp.example/a b", "https:///x"}) {
    CAF_MESSAGE("refused: " << uri);
    CAF_CHECK(failed_with(put("rp-c", uri, false), ec::invalid_argument));
  }
  CAF_CHECK(failed_with(
    put("rp-c", "https://rp.example/" + std::string(2100, 'a'), false),
    ec::invalid_argument));
  CAF_CHECK(failed_with(put("", "", false), ec::invalid_argument));
  CAF_CHECK(failed_with(put(std::string{"rp\xff"}, "", false),
                        ec::invalid_argument));
  auto one = ask<client_records>(atom::get_v, atom::client_v,
                                 std::string{"rp-a"});
  CAF_REQUIRE(one);
  CAF_REQUIRE_EQUAL(one->size(), 1u);
  CAF_CHECK(!one->front().session_required);
  auto page = ask<client_records>(atom::list_v, atom::client_v, std::string{},
                                  uint64_t{10});
  CAF_REQUIRE(page);
  CAF_REQUIRE_EQUAL(page->size(), 2u);
  CAF_CHECK_EQUAL(page->back().client_id, "rp-b");
  CAF_CHECK(ask<atom::ok>(atom::remove_v, atom::client_v, std::string{"rp-a"}));
  CAF_CHECK(failed_with(ask<atom::ok>(atom::remove_v, atom::client_v,
                                      std::string{"rp-a"}),
                        ec::not_found));
  auto none = ask<client_records>(atom::get_v, atom::client_v,
                                  std::string{"rp-a"});
  CAF_REQUIRE(none);
  CAF_CHECK(none->empty());
}

CAF_TEST(without a database every request is unavailable) {
  auto opts = directory_options::from_settings(cfg);
  CAF_REQUIRE(opts);
  auto bare = spawn_directory(sys, *opts, directory_deps{}, {}, 1).front();
  auto u = ask_of<user_view>(bare, atom::get_v, atom::user_v,
                             std::string{"alice"});
  CAF_CHECK(failed_with(u, ec::unavailable));
  auto made = ask_of<user_view>(bare, atom::create_v,
                                user_spec{"alice", "pw", true});
  CAF_CHECK(failed_with(made, ec::unavailable));
  caf::anon_send_exit(bare, caf::exit_reason::user_shutdown);
}

CAF_TEST_FIXTURE_SCOPE_END()
