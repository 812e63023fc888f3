// The store contract, run on both backends: SQLite in a temp dir and a real
// MariaDB server started on loopback by the harness. Then the store pool:
// workers, a bounded queue, the monitor's migration, log loading and health.
#define CAF_SUITE store
#include "caf/test/unit_test.hpp"

#include <atomic>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <sqlite3.h>

#include "actors/error.hpp"
#include "actors/interfaces.hpp"
#include "actors/store_pool.hpp"
#include "config/settings.hpp"
#include "persistence/data_dir.hpp"
#include "persistence/store.hpp"
#include "support/mariadb.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"

using namespace keymesh;
using persistence::revocation_entry;
using persistence::store;
using persistence::store_error;
using persistence::store_failure;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

/// One MariaDB for the whole suite (started on first use, stopped at exit).
test::mariadb_server& mariadb() {
  static test::mariadb_server server;
  return server;
}

config::settings mysql_settings() {
  config::settings cfg;
  cfg.database.driver = "mysql";
  cfg.database.host = "127.0.0.1";
  cfg.database.port = mariadb().port();
  cfg.database.password_file = mariadb().password_file();
  cfg.database.connect_timeout = milliseconds{2000};
  cfg.database.query_timeout = milliseconds{5000};
  return cfg;
}

config::settings sqlite_settings(const test::temp_dir& dir) {
  config::settings cfg;
  cfg.node.data_dir = dir.path();
  return cfg;
}

/// Empties the MySQL database between tests.
void reset_mysql() {
  mariadb().sql("DROP DATABASE IF EXISTS keymesh; CREATE DATABASE keymesh;");
}

revocation_entry entry(std::string kind, std::string value, int64_t at,
                       int64_t until, std::string reason = "") {
  return {std::move(kind), std::move(value), at, until, std::move(reason),
          "node-a"};
}

const revocation_entry* find(const std::vector<revocation_entry>& all,
                             const std::string& kind,
                             const std::string& value) {
  for (auto& e : all)
    if (e.kind == kind && e.value == value)
      return &e;
  return nullptr;
}

bool throws_failure(const std::function<void()>& f, store_failure expected) {
  try {
    f();
  } catch (const store_error& e) {
    return e.failure == expected;
  }
  return false;
}

/// The contract every backend keeps.
void check_contract(const config::settings& cfg) {
  auto db = persistence::open_store(cfg);
  CAF_CHECK_EQUAL(db->schema_version(), 0);
  db->migrate();
  CAF_CHECK_EQUAL(db->schema_version(), persistence::latest_schema_version());
  db->migrate(); // nothing left to do
  CAF_CHECK_EQUAL(db->schema_version(), persistence::latest_schema_version());
  db->ping();
  // Identifiers are compared exactly (MySQL's default collation would fold
  // case), and a repeated revocation keeps the later times.
  db->put_revocation(entry("sid", "Abc", 1000, 50'000, "first"));
  db->put_revocation(entry("sid", "abc", 1000, 50'000));
  db->put_revocation(entry("sub", "alice", 1000, 60'000));
  db->put_revocation(entry("sub", "alice", 3000, 40'000, "second"));
  db->put_revocation(entry("jti", "old", 1000, 9'000));
  auto live = db->live_revocations(10'000);
  CAF_CHECK_EQUAL(live.size(), 3u);
  CAF_REQUIRE(find(live, "sid", "Abc") && find(live, "sid", "abc"));
  CAF_CHECK_EQUAL(find(live, "sid", "Abc")->reason, "first");
  CAF_CHECK_EQUAL(find(live, "sid", "Abc")->origin, "node-a");
  auto alice = find(live, "sub", "alice");
  CAF_REQUIRE(alice != nullptr);
  CAF_CHECK_EQUAL(alice->revoked_at, 3000);
  CAF_CHECK_EQUAL(alice->until, 60'000);
  CAF_CHECK(find(live, "jti", "old") == nullptr);
  // SQL metacharacters and odd bytes go in and come out as they were.
  std::vector<std::string> nasty{
    "'; DROP TABLE revocations; --", "a\"b`c\\d", "%_*?", "\xe2\x9c\x93 ok",
    std::string{"nul\0byte", 8}, "' OR '1'='1"};
  for (auto& v : nasty)
    db->put_revocation(entry("jti", v, 1000, 80'000, v));
  live = db->live_revocations(10'000);
  for (auto& v : nasty) {
    auto e = find(live, "jti", v);
    CAF_CHECK(e != nullptr);
    if (e)
      CAF_CHECK(e->reason == v);
  }
  // Pruning deletes what ended, and only that.
  CAF_CHECK_EQUAL(db->prune_revocations(10'000), 1u);
  CAF_CHECK_EQUAL(db->prune_revocations(10'000), 0u);
  CAF_CHECK_EQUAL(db->live_revocations(0).size(), 3u + nasty.size());
  CAF_CHECK_EQUAL(db->prune_revocations(100'000), 3u + nasty.size());
  // The data outlives the connection.
  db->put_revocation(entry("sid", "kept", 1, 1'000'000));
  db.reset();
  auto again = persistence::open_store(cfg);
  again->migrate();
  CAF_CHECK_EQUAL(again->live_revocations(0).size(), 1u);
}

persistence::session_row session_row(std::string sid, std::string sub,
                                     std::string value, int64_t created,
                                     int64_t expires, int64_t version) {
  persistence::session_row r;
  r.sid = std::move(sid);
  r.sub = std::move(sub);
  r.value = std::move(value);
  r.created_at = created;
  r.expires_at = expires;
  r.version = version;
  return r;
}

/// Durable sessions, as both backends keep them.
void check_sessions(const config::settings& cfg) {
  auto db = persistence::open_store(cfg);
  db->migrate();
  // One statement writes many rows; sids compare exactly.
  db->put_sessions({session_row("sidA", "alice", "v1", 100, 50'000, 0),
                    session_row("sida", "alice", "v2", 200, 50'000, 0),
                    session_row("sidB", "bob", "'; DROP TABLE sessions; --",
                                300, 5'000, 0)});
  auto a = db->find_session("sidA");
  CAF_REQUIRE(a.has_value());
  CAF_CHECK_EQUAL(a->value, "v1");
  CAF_CHECK_EQUAL(a->sub, "alice");
  CAF_CHECK_EQUAL(a->created_at, 100);
  CAF_CHECK_EQUAL(a->expires_at, 50'000);
  CAF_CHECK(!a->revoked);
  auto b = db->find_session("sidB");
  CAF_REQUIRE(b.has_value());
  CAF_CHECK_EQUAL(b->value, "'; DROP TABLE sessions; --");
  CAF_CHECK(!db->find_session("SIDA").has_value());
  // A newer version replaces; an older one (a late write) does not.
  db->put_sessions({session_row("sidA", "alice", "v1-new", 100, 60'000, 7)});
  db->put_sessions({session_row("sidA", "alice", "v1-late", 100, 70'000, 5)});
  a = db->find_session("sidA");
  CAF_REQUIRE(a.has_value());
  CAF_CHECK_EQUAL(a->value, "v1-new");
  CAF_CHECK_EQUAL(a->expires_at, 60'000);
  CAF_CHECK_EQUAL(a->version, 7);
  // The same sid twice in one batch: the newer version wins.
  db->put_sessions({session_row("sidC", "carol", "c9", 1, 50'000, 9),
                    session_row("sidC", "carol", "c3", 1, 50'000, 3)});
  auto c = db->find_session("sidC");
  CAF_REQUIRE(c.has_value());
  CAF_CHECK_EQUAL(c->value, "c9");
  // A subject's live sessions, oldest first.
  auto alice = db->subject_sessions("alice", 10'000, 10);
  CAF_REQUIRE_EQUAL(alice.size(), 2u);
  CAF_CHECK_EQUAL(alice[0].sid, "sidA");
  CAF_CHECK_EQUAL(alice[1].sid, "sida");
  CAF_CHECK_EQUAL(db->subject_sessions("alice", 10'000, 1).size(), 1u);
  CAF_CHECK(db->subject_sessions("bob", 10'000, 10).empty()); // ended
  // Revoking a sid marks it, and a later write cannot bring it back.
  db->revoke_sessions(entry("sid", "sidA", 1000, 90'000));
  db->put_sessions({session_row("sidA", "alice", "v1-after", 100, 80'000, 99)});
  a = db->find_session("sidA");
  CAF_REQUIRE(a.has_value());
  CAF_CHECK(a->revoked);
  // A sid never stored gets a marker that outlives the token window, so a
  // write that arrives after the revocation stays revoked too.
  db->revoke_sessions(entry("sid", "sidLate", 1000, 90'000));
  db->put_sessions({session_row("sidLate", "dave", "late", 900, 80'000, 1)});
  auto late = db->find_session("sidLate");
  CAF_REQUIRE(late.has_value());
  CAF_CHECK(late->revoked);
  // A subject revocation marks what was created until then, not later.
  db->put_sessions({session_row("sidD", "erin", "d", 500, 50'000, 0),
                    session_row("sidE", "erin", "e", 1500, 50'000, 0)});
  db->revoke_sessions(entry("sub", "erin", 1000, 90'000));
  auto d = db->find_session("sidD");
  auto e = db->find_session("sidE");
  CAF_REQUIRE(d.has_value() && e.has_value());
  CAF_CHECK(d->revoked);
  CAF_CHECK(!e->revoked);
  CAF_CHECK_EQUAL(db->subject_sessions("erin", 10'000, 10).size(), 1u);
  db->revoke_sessions(entry("jti", "sidE", 1000, 90'000)); // not a session
  e = db->find_session("sidE");
  CAF_REQUIRE(e.has_value());
  CAF_CHECK(!e->revoked);
  // Pruning deletes ended rows, revoked or not.
  CAF_CHECK_EQUAL(db->prune_sessions(10'000), 1u); // sidB
  CAF_CHECK_EQUAL(db->prune_sessions(100'000), 6u);
  CAF_CHECK(!db->find_session("sidA").has_value());
}

/// Users, groups and claims, as both backends keep them.
void check_directory(const config::settings& cfg) {
  auto db = persistence::open_store(cfg);
  db->migrate();
  auto alice = db->create_user("alice", "$scrypt$hash-a", true, 100);
  CAF_CHECK_GREATER(alice.id, 0);
  // Names are exact and unique.
  auto upper = db->create_user("Alice", "$scrypt$hash-b", false, 100);
  CAF_CHECK_NOT_EQUAL(upper.id, alice.id);
  CAF_CHECK(throws_failure(
    [&] { db->create_user("alice", "x", true, 100); }, store_failure::conflict));
  auto found = db->find_user("alice");
  CAF_REQUIRE(found.has_value());
  CAF_CHECK_EQUAL(found->password_hash, "$scrypt$hash-a");
  CAF_CHECK(found->enabled);
  CAF_CHECK(!db->find_user("ALICE").has_value());
  CAF_CHECK(!db->find_user("' OR '1'='1").has_value());
  // Updates change only what is given.
  CAF_CHECK(db->update_user("alice", std::nullopt, false, 200));
  found = db->find_user("alice");
  CAF_CHECK(!found->enabled);
  CAF_CHECK_EQUAL(found->password_hash, "$scrypt$hash-a");
  CAF_CHECK_EQUAL(found->updated_at, 200);
  CAF_CHECK(db->update_user("alice", std::string{"$scrypt$new"}, std::nullopt,
                            200)); // same instant, same values: still found
  auto changed = db->find_user("alice"); // (the check keeps a reference)
  CAF_REQUIRE(changed.has_value());
  CAF_CHECK_EQUAL(changed->password_hash, "$scrypt$new");
  CAF_CHECK(!db->update_user("nobody", std::nullopt, true, 300));
  // A re-hash replaces only the hash it was made from.
  CAF_CHECK(!db->replace_password_hash("alice", "$scrypt$stale",
                                       "$scrypt$rehashed", 250));
  CAF_CHECK(db->replace_password_hash("alice", "$scrypt$new",
                                      "$scrypt$rehashed", 250));
  auto rehashed = db->find_user("alice");
  CAF_REQUIRE(rehashed.has_value());
  CAF_CHECK_EQUAL(rehashed->password_hash, "$scrypt$rehashed");
  CAF_CHECK(!db->replace_password_hash("nobody", "h", "h2", 250));
  // Listing pages in name order.
  for (auto name : {"carol", "bob", "dave"})
    db->create_user(name, "h", true, 100);
  auto page = db->list_users("", 2);
  CAF_REQUIRE_EQUAL(page.size(), 2u);
  CAF_CHECK_EQUAL(page[0].username, "Alice");
  CAF_CHECK_EQUAL(page[1].username, "alice");
  page = db->list_users("alice", 10);
  CAF_REQUIRE_EQUAL(page.size(), 3u);
  CAF_CHECK_EQUAL(page[0].username, "bob");
  // Groups, members, claims.
  auto admins = db->create_group("admins", 100);
  db->create_group("readers", 100);
  CAF_CHECK(throws_failure([&] { db->create_group("admins", 1); },
                           store_failure::conflict));
  CAF_CHECK_EQUAL(db->list_groups().size(), 2u);
  CAF_CHECK(db->add_member("admins", "alice"));
  CAF_CHECK(db->add_member("admins", "alice")); // twice: fine
  CAF_CHECK(db->add_member("readers", "alice"));
  CAF_CHECK(db->add_member("readers", "bob"));
  CAF_CHECK(!db->add_member("nogroup", "alice"));
  CAF_CHECK(!db->add_member("admins", "nobody"));
  CAF_CHECK_EQUAL(db->group_members("admins"),
                  (std::vector<std::string>{"alice"}));
  auto role = db->create_claim("role", "admin", "may administer");
  auto scope = db->create_claim("scope", "read", "");
  auto nasty = db->create_claim("x'; DROP TABLE claims; --", "\"v\"", "");
  CAF_CHECK(throws_failure([&] { db->create_claim("role", "admin", ""); },
                           store_failure::conflict));
  CAF_CHECK(db->grant_claim("admins", role.id));
  CAF_CHECK(db->grant_claim("admins", scope.id));
  CAF_CHECK(db->grant_claim("readers", scope.id));
  CAF_CHECK(db->grant_claim("readers", nasty.id));
  CAF_CHECK(!db->grant_claim("admins", 999999));
  CAF_CHECK(!db->grant_claim("nogroup", role.id));
  CAF_CHECK_EQUAL(db->group_claims("admins").size(), 2u);
  CAF_CHECK_EQUAL(db->user_groups(alice.id),
                  (std::vector<std::string>{"admins", "readers"}));
  // Each claim once, though two groups grant scope=read.
  auto claims = db->user_claims(alice.id);
  CAF_REQUIRE_EQUAL(claims.size(), 3u);
  CAF_CHECK_EQUAL(claims[0].name, "role");
  CAF_CHECK_EQUAL(claims[1].name, "scope");
  CAF_CHECK_EQUAL(claims[2].name, "x'; DROP TABLE claims; --");
  CAF_CHECK_EQUAL(claims[2].value, "\"v\"");
  auto bob = db->find_user("bob");
  CAF_CHECK_EQUAL(db->user_claims(bob->id).size(), 2u);
  // Removing a grant, a membership, a claim, a group, a user.
  CAF_CHECK(db->revoke_claim("admins", scope.id));
  CAF_CHECK(!db->revoke_claim("admins", scope.id));
  CAF_CHECK_EQUAL(db->user_claims(alice.id).size(), 3u); // readers still
  CAF_CHECK(db->remove_member("readers", "alice"));
  CAF_CHECK_EQUAL(db->user_claims(alice.id).size(), 1u);
  CAF_CHECK(db->delete_claim(role.id));
  CAF_CHECK(db->user_claims(alice.id).empty());
  CAF_CHECK(db->delete_group("readers"));
  CAF_CHECK(db->user_claims(bob->id).empty());
  CAF_CHECK(db->delete_user("alice"));
  CAF_CHECK(!db->delete_user("alice"));
  CAF_CHECK(db->group_members("admins").empty());
  CAF_CHECK_EQUAL(db->list_claims().size(), 2u);
  (void) admins;
}

/// Several nodes starting at once against one database.
void check_concurrent_migration(const config::settings& cfg) {
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&] {
      try {
        persistence::open_store(cfg)->migrate();
      } catch (const std::exception& e) {
        CAF_MESSAGE("migration failed: " << e.what());
        ++failures;
      }
    });
  for (auto& t : threads)
    t.join();
  CAF_CHECK_EQUAL(failures.load(), 0);
  CAF_CHECK_EQUAL(persistence::open_store(cfg)->schema_version(),
                  persistence::latest_schema_version());
}

} // namespace

CAF_TEST(sqlite keeps the store contract) {
  test::temp_dir dir;
  check_contract(sqlite_settings(dir));
}

CAF_TEST(mariadb keeps the store contract) {
  reset_mysql();
  check_contract(mysql_settings());
}

/// Secret rings: the newer generation wins, whatever order they come in;
/// binary blobs come back unchanged.
void check_secret_rings(const config::settings& cfg) {
  auto db = persistence::open_store(cfg);
  db->migrate();
  CAF_CHECK(!db->find_secret_ring("dpop"));
  std::string blob{"KMS1\0\x01\xff sealed", 15};
  db->put_secret_ring({"dpop", 2, blob, 100});
  db->put_secret_ring({"dpop", 1, "older", 200});
  db->put_secret_ring({"cookies", 7, "c", 300});
  auto dpop = db->find_secret_ring("dpop");
  CAF_REQUIRE(dpop);
  CAF_CHECK_EQUAL(dpop->generation, 2);
  CAF_CHECK(dpop->sealed == blob);
  CAF_CHECK_EQUAL(dpop->updated_at, 100);
  db->put_secret_ring({"dpop", 3, "newer", 400});
  dpop = db->find_secret_ring("dpop");
  CAF_REQUIRE(dpop);
  CAF_CHECK_EQUAL(dpop->generation, 3);
  CAF_CHECK_EQUAL(dpop->sealed, "newer");
  auto cookies = db->find_secret_ring("cookies");
  CAF_REQUIRE(cookies);
  CAF_CHECK_EQUAL(cookies->generation, 7);
  CAF_CHECK(!db->find_secret_ring("DPOP")); // exact
}

CAF_TEST(sqlite keeps secret rings) {
  test::temp_dir dir;
  check_secret_rings(sqlite_settings(dir));
}

CAF_TEST(mariadb keeps secret rings) {
  reset_mysql();
  check_secret_rings(mysql_settings());
}

void check_clients(const config::settings& cfg) {
  auto db = persistence::open_store(cfg);
  db->migrate();
  CAF_CHECK(!db->find_client("rp-1"));
  auto made = db->put_client({"rp-1", "https://rp1.example/logout", true, 100,
                              100});
  CAF_CHECK_EQUAL(made.client_id, "rp-1");
  CAF_CHECK_EQUAL(made.backchannel_logout_uri, "https://rp1.example/logout");
  CAF_CHECK(made.session_required);
  CAF_CHECK_EQUAL(made.created_at, 100);
  // A replace keeps when it was created; the last writer's fields win.
  auto replaced = db->put_client({"rp-1", "https://rp1.example/bcl", false,
                                  900, 200});
  CAF_CHECK_EQUAL(replaced.backchannel_logout_uri, "https://rp1.example/bcl");
  CAF_CHECK(!replaced.session_required);
  CAF_CHECK_EQUAL(replaced.created_at, 100);
  CAF_CHECK_EQUAL(replaced.updated_at, 200);
  db->put_client({"rp-0", "", false, 300, 300});
  db->put_client({"rp-2", "http://127.0.0.1:9/x", false, 300, 300});
  auto page = db->list_clients("", 2);
  CAF_REQUIRE_EQUAL(page.size(), 2u);
  CAF_CHECK_EQUAL(page[0].client_id, "rp-0");
  CAF_CHECK_EQUAL(page[1].client_id, "rp-1");
  auto rest = db->list_clients("rp-1", 10);
  CAF_REQUIRE_EQUAL(rest.size(), 1u);
  CAF_CHECK_EQUAL(rest[0].client_id, "rp-2");
  CAF_CHECK(!db->find_client("RP-1")); // exact
  CAF_CHECK(db->delete_client("rp-1"));
  CAF_CHECK(!db->delete_client("rp-1"));
  CAF_CHECK(!db->find_client("rp-1"));
}

CAF_TEST(the known members file round trips and tolerates hand edits) {
  test::temp_dir dir;
  CAF_CHECK(persistence::read_known_members(dir.path()).empty());
  persistence::write_known_members(dir.path(), {"node-2", "node-3"});
  auto back = persistence::read_known_members(dir.path());
  CAF_CHECK(back == (std::set<std::string>{"node-2", "node-3"}));
  // Comments, blank lines, CRLF and stray spaces from an editor.
  auto edited = persistence::parse_known_members(
    "# header\r\n\n  node-2 \r\n\t# node-3 forgotten\nnode-4");
  CAF_CHECK(edited == (std::set<std::string>{"node-2", "node-4"}));
}

CAF_TEST(sqlite keeps client registrations) {
  test::temp_dir dir;
  check_clients(sqlite_settings(dir));
}

CAF_TEST(mariadb keeps client registrations) {
  reset_mysql();
  check_clients(mysql_settings());
}

void check_outbox(const config::settings& cfg) {
  auto db = persistence::open_store(cfg);
  db->migrate();
  auto row = [](std::string id, std::string owner, int64_t lease) {
    persistence::outbox_row r;
    r.id = std::move(id);
    r.session_id = "S";
    r.sid = "rp-sid";
    r.sub = "alice";
    r.client_id = "rp-1";
    r.uri = "https://rp1.example/bcl";
    r.reason = "logout";
    r.posture = "durable";
    r.created_at = 100;
    r.give_up_at = 10'000;
    r.next_attempt_at = 100;
    r.owner = std::move(owner);
    r.lease_until = lease;
    return r;
  };
  db->put_outbox({row("a", "node-1", 500), row("b", "node-1", 2000),
                  row("c", "node-2", 400)});
  CAF_CHECK_EQUAL(db->outbox_size(), 3u);
  // At 1000 the leases of a and c ended: node-3 takes both, b stays.
  auto taken = db->claim_outbox("node-3", 1000, 5000, 10);
  CAF_REQUIRE_EQUAL(taken.size(), 2u);
  for (auto& t : taken) {
    CAF_CHECK(t.id == "a" || t.id == "c");
    CAF_CHECK_EQUAL(t.owner, "node-3");
    CAF_CHECK_EQUAL(t.lease_until, 5000);
    CAF_CHECK_EQUAL(t.uri, "https://rp1.example/bcl");
  }
  // Nobody takes them again before the new lease ends.
  auto none = db->claim_outbox("node-4", 1000, 5000, 10);
  CAF_CHECK(none.empty());
  // The old owner lost them: its update and delete do nothing.
  auto stale = row("a", "node-1", 9000);
  stale.attempts = 7;
  CAF_CHECK(!db->update_outbox(stale));
  CAF_CHECK(!db->delete_outbox("a", "node-1"));
  auto mine = taken.front();
  mine.attempts = 2;
  mine.last_error = "the client answered HTTP 503";
  mine.next_attempt_at = 6000;
  mine.lease_until = 7000;
  CAF_CHECK(db->update_outbox(mine));
  auto later = db->claim_outbox("node-4", 7000, 9000, 10);
  CAF_REQUIRE_EQUAL(later.size(), 3u);
  for (auto& t : later)
    if (t.id == mine.id) {
      CAF_CHECK_EQUAL(t.attempts, 2);
      CAF_CHECK_EQUAL(t.last_error, "the client answered HTTP 503");
      CAF_CHECK_EQUAL(t.next_attempt_at, 6000);
    }
  CAF_CHECK(db->delete_outbox("b", "node-4"));
  CAF_CHECK_EQUAL(db->outbox_size(), 2u);
  // Registrations of several clients at once.
  db->put_client({"rp-1", "https://rp1.example/bcl", true, 1, 1});
  db->put_client({"rp-2", "", false, 1, 1});
  auto found = db->find_clients({"rp-1", "rp-2", "rp-3"});
  CAF_CHECK_EQUAL(found.size(), 2u);
  CAF_CHECK(db->find_clients({}).empty());
}

CAF_TEST(sqlite keeps the logout outbox) {
  test::temp_dir dir;
  check_outbox(sqlite_settings(dir));
}

CAF_TEST(mariadb keeps the logout outbox) {
  reset_mysql();
  check_outbox(mysql_settings());
}

CAF_TEST(sqlite keeps durable sessions) {
  test::temp_dir dir;
  check_sessions(sqlite_settings(dir));
}

CAF_TEST(mariadb keeps durable sessions) {
  reset_mysql();
  check_sessions(mysql_settings());
}

CAF_TEST(the pool batches session writes) {
  reset_mysql();
  caf::actor_system_config sys_cfg;
  add_message_types(sys_cfg);
  caf::actor_system sys{sys_cfg};
  auto cfg = mysql_settings();
  auto status = std::make_shared<store_status>();
  store_pool_options opts;
  opts.open = [cfg] { return persistence::open_store(cfg); };
  opts.workers = 2;
  opts.health_interval = milliseconds{100};
  store_pool pool{sys, opts, status};
  CAF_REQUIRE(test::eventually([&] { return status->loaded.load(); },
                               milliseconds{10000}));
  // 1000 rows at once: each request is answered once, without an error,
  // and the rows share far fewer statements than there are rows.
  constexpr int rows = 1000;
  std::atomic<int> ok{0}, failed{0};
  auto write_rows = [&](const std::string& prefix, int n) {
    // (CAF 0.17 dereferences a null argument tuple when a function-based
    // actor takes no arguments besides self: UBSan stops there.)
    sys.spawn(
      [&, prefix](caf::event_based_actor* self, session_writer_actor writer,
                  int n) {
      for (int i = 0; i < n; ++i)
        self
          ->request(writer, caf::infinite, atom::put_v,
                    session_row(prefix + std::to_string(i), "batch", "v", i,
                                4'000'000'000'000, 0))
          .then([&](atom::ok) { ++ok; }, [&](caf::error&) { ++failed; });
    },
      pool.session_writer(), n);
  };
  write_rows("s", rows);
  CAF_REQUIRE(test::eventually([&] { return ok + failed == rows; },
                               milliseconds{20000}));
  CAF_CHECK_EQUAL(ok.load(), rows);
  CAF_CHECK_EQUAL(status->session_rows.load(), static_cast<uint64_t>(rows));
  CAF_CHECK_LESS(status->session_batches.load(), static_cast<uint64_t>(rows / 4));
  CAF_CHECK_EQUAL(std::stoi(mariadb().sql("SELECT COUNT(*) FROM "
                                          "keymesh.sessions")),
                  rows);
  // With the database gone, every waiting write fails (none hangs).
  mariadb().stop();
  CAF_CHECK(test::eventually([&] { return !status->healthy.load(); },
                             milliseconds{10000}));
  ok = 0;
  failed = 0;
  write_rows("down", 50);
  CAF_CHECK(test::eventually([&] { return failed.load() == 50; },
                             milliseconds{15000}));
  CAF_CHECK_EQUAL(ok.load(), 0);
  mariadb().start();
  CAF_CHECK(test::eventually([&] { return status->healthy.load(); },
                             milliseconds{15000}));
  pool.stop();
}

CAF_TEST(sqlite keeps users groups and claims) {
  test::temp_dir dir;
  check_directory(sqlite_settings(dir));
}

CAF_TEST(mariadb keeps users groups and claims) {
  reset_mysql();
  check_directory(mysql_settings());
}

CAF_TEST(concurrent migrations apply each version once) {
  test::temp_dir dir;
  check_concurrent_migration(sqlite_settings(dir));
  reset_mysql();
  check_concurrent_migration(mysql_settings());
  auto applied = mariadb().sql("SELECT COUNT(*) FROM keymesh.keymesh_schema");
  CAF_CHECK_EQUAL(std::stoi(applied),
                  static_cast<int>(persistence::latest_schema_version()));
}

CAF_TEST(a database newer than the program is refused) {
  test::temp_dir dir;
  auto cfg = sqlite_settings(dir);
  persistence::open_store(cfg)->migrate();
  sqlite3* raw = nullptr;
  CAF_REQUIRE_EQUAL(sqlite3_open(persistence::sqlite_path(cfg).c_str(), &raw),
                    SQLITE_OK);
  CAF_CHECK_EQUAL(sqlite3_exec(raw,
                               "INSERT INTO keymesh_schema VALUES "
                               "(999, 'from the future', 0, 'test')",
                               nullptr, nullptr, nullptr),
                  SQLITE_OK);
  sqlite3_close(raw);
  CAF_CHECK(throws_failure([&] { persistence::open_store(cfg)->migrate(); },
                           store_failure::schema));
  reset_mysql();
  persistence::open_store(mysql_settings())->migrate();
  mariadb().sql("INSERT INTO keymesh.keymesh_schema VALUES "
                "(999, 'from the future', 0, 'test')");
  CAF_CHECK(throws_failure(
    [&] { persistence::open_store(mysql_settings())->migrate(); },
    store_failure::schema));
}

CAF_TEST(mariadb rejects oversized values and bad logins clearly) {
  reset_mysql();
  auto db = persistence::open_store(mysql_settings());
  db->migrate();
  CAF_CHECK(throws_failure(
    [&] { db->put_revocation(entry("sid", std::string(600, 'x'), 1, 2)); },
    store_failure::rejected));
  db->ping(); // the connection survives a refused statement
  auto cfg = mysql_settings();
  test::temp_dir dir;
  test::write_file(dir.path() + "/wrong", "not-the-password\n");
  cfg.database.password_file = dir.path() + "/wrong";
  try {
    persistence::open_store(cfg);
    CAF_FAIL("a wrong password connected");
  } catch (const store_error& e) {
    CAF_CHECK(e.failure == store_failure::unavailable);
    // The message names the server and user, never the password.
    CAF_CHECK(std::string{e.what()}.find("not-the-password")
              == std::string::npos);
    CAF_CHECK(std::string{e.what()}.find("keymesh") != std::string::npos);
  }
  cfg.database.password_file = dir.path() + "/missing";
  CAF_CHECK(throws_failure([&] { persistence::open_store(cfg); },
                           store_failure::unavailable));
}

CAF_TEST(the pool lends workers off the scheduler and reports an absent database) {
  reset_mysql();
  {
    // A revocation in the log before the node starts.
    auto db = persistence::open_store(mysql_settings());
    db->migrate();
    db->put_revocation(entry("jti", "logged-before", 1, 4'000'000'000'000));
  }
  caf::actor_system_config sys_cfg;
  add_message_types(sys_cfg);
  caf::actor_system sys{sys_cfg};
  auto cfg = mysql_settings();
  auto status = std::make_shared<store_status>();
  status->backend = "mysql";
  store_pool_options opts;
  auto caller = std::this_thread::get_id();
  std::atomic<int> opened_here{0}, opened_elsewhere{0};
  opts.open = [cfg, caller, &opened_here, &opened_elsewhere] {
    ++(std::this_thread::get_id() == caller ? opened_here : opened_elsewhere);
    return persistence::open_store(cfg);
  };
  opts.workers = 2;
  opts.max_queue = 4;
  opts.health_interval = milliseconds{100};
  opts.deny = std::make_shared<state::deny_set>();
  opts.shared = true;
  store_pool pool{sys, opts, status};
  // The monitor migrates and loads the log into the deny set.
  CAF_REQUIRE(test::eventually([&] { return status->loaded.load(); },
                               milliseconds{10000}));
  CAF_CHECK(status->healthy.load());
  CAF_CHECK(opts.deny->denied("", "logged-before", "", 0, 1000));
  CAF_CHECK_EQUAL(status->revocations_loaded.load(), 1u);
  // Requests to workers are answered on the workers' own threads (the
  // connections are opened there), exactly once each.
  caf::scoped_actor self{sys};
  auto ask = [&](caf::expected<store_worker_actor> worker,
                 const std::string& value) -> caf::error {
    CAF_REQUIRE(worker);
    caf::error out;
    self
      ->request(*worker, seconds{20}, atom::put_v,
                entry("jti", value, 1, 4'000'000'000'000))
      .receive([](atom::ok) {}, [&](caf::error& err) { out = err; });
    return out;
  };
  for (int i = 0; i < 4; ++i)
    CAF_CHECK(!ask(pool.worker(), "j" + std::to_string(i)));
  CAF_CHECK_EQUAL(opened_here.load(), 0);
  CAF_CHECK_GREATER(opened_elsewhere.load(), 0);
  CAF_CHECK_EQUAL(std::stoi(mariadb().sql(
                    "SELECT COUNT(*) FROM keymesh.revocations")),
                  5);
  // A full queue refuses at once: four requests are lent a worker and not
  // answered yet; a fifth is refused (ec::overloaded) until one is.
  std::vector<store_worker_actor> lent;
  for (int i = 0; i < 4; ++i) {
    auto w = pool.worker();
    CAF_REQUIRE(w);
    lent.push_back(*w);
  }
  auto refused = pool.worker();
  CAF_REQUIRE(!refused);
  CAF_CHECK(has_code(refused.error(), ec::overloaded));
  CAF_CHECK_EQUAL(status->refused.load(), 1u);
  for (size_t i = 0; i < lent.size(); ++i)
    CAF_CHECK(!ask(lent[i], "q" + std::to_string(i)));
  CAF_CHECK(!ask(pool.worker(), "after-full"));
  CAF_CHECK_EQUAL(status->queued.load(), 0u);
  // The database goes away: the monitor reports it, requests fail with
  // ec::unavailable (not hang), and everything recovers when it is back.
  mariadb().stop();
  CAF_CHECK(test::eventually([&] { return !status->healthy.load(); },
                             milliseconds{10000}));
  CAF_CHECK(!status->error().empty());
  auto down = ask(pool.worker(), "while-down");
  CAF_CHECK(has_code(down, ec::unavailable));
  mariadb().start();
  CAF_CHECK(test::eventually([&] { return status->healthy.load(); },
                             milliseconds{15000}));
  CAF_CHECK(!ask(pool.worker(), "after"));
  // A name that exists already is a conflict, named.
  caf::error conflict;
  self
    ->request(*pool.worker(), seconds{20}, atom::create_v, atom::group_v,
              std::string{"admins"}, int64_t{1})
    .receive([](group_view&) {}, [&](caf::error&) {});
  self
    ->request(*pool.worker(), seconds{20}, atom::create_v, atom::group_v,
              std::string{"admins"}, int64_t{2})
    .receive([](group_view&) {}, [&](caf::error& err) { conflict = err; });
  CAF_CHECK(has_code(conflict, ec::conflict));
  CAF_CHECK_EQUAL(context_text(conflict), "the group admins");
  pool.stop();
}

CAF_TEST(mariadb over tls as configured) {
  test::mariadb_server server{true}; // the keymesh user REQUIRES SSL
  auto cfg = mysql_settings();
  cfg.database.port = server.port();
  cfg.database.password_file = server.password_file();
  auto connects = [&](const std::string& mode, const std::string& ca) {
    cfg.database.tls.mode = mode;
    cfg.database.tls.ca = ca;
    try {
      persistence::open_store(cfg)->ping();
      return true;
    } catch (const store_error& e) {
      CAF_MESSAGE(mode << ": " << e.what());
      return false;
    }
  };
  CAF_CHECK(!connects("disabled", ""));
  CAF_CHECK(connects("required", ""));
  CAF_CHECK(connects("verify", server.ca_file()));
  CAF_CHECK(!connects("verify", server.other_ca_file()));
}
