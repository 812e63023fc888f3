// keymesh admin against a real node: where it finds the node and the key,
// each command group as a table and as --json, the exit codes scripts rely
// on, and tail following the event stream.
#define CAF_SUITE admin_cli
#include "caf/test/unit_test.hpp"

#include <fstream>
#include <thread>

#include "support/single_node.hpp"

using namespace keymesh::test;
using namespace std::chrono_literals;

namespace {

struct cli_node : node_fixture {
  cli_node() {
    proc->stop(SIGTERM);
    // Cheap password hashes: the cost is not what is tested here.
    start({{"KEYMESH_AUTH_SCRYPT_LOG2_N", "10"}});
  }

  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(port);
  }

  /// keymesh admin --url URL --key-file <the node's> ARGS.
  std::pair<int, std::string> admin(std::vector<std::string> args,
                                    std::map<std::string, std::string> env
                                    = {}) {
    std::vector<std::string> argv{keymesh_binary(), "admin", "--url", url(),
                                  "--key-file", dir.file("data/admin.keys")};
    argv.insert(argv.end(), args.begin(), args.end());
    auto result = run_command(std::move(argv), std::move(env),
                              dir.file("cli-" + std::to_string(++runs_)
                                       + ".log"));
    if (result.first != 0)
      CAF_MESSAGE("keymesh admin exited " << result.first << ":\n"
                                          << result.second);
    return result;
  }

  /// The --json output of a command that must succeed.
  json admin_json(std::vector<std::string> args) {
    args.insert(args.begin(), "--json");
    auto [code, out] = admin(std::move(args));
    CAF_REQUIRE_EQUAL(code, 0);
    return json::parse(out);
  }

  std::string create_session(const std::string& sub) {
    auto res = call("POST", "/api/sessions", json{{"sub", sub}}.dump());
    CAF_REQUIRE_EQUAL(res.result_int(), 201u);
    return json::parse(res.body())["sid"].get<std::string>();
  }

  std::string write(const std::string& name, const std::string& text) {
    std::ofstream{dir.file(name)} << text;
    return dir.file(name);
  }

  int runs_ = 0;
};

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

} // namespace

CAF_TEST_FIXTURE_SCOPE(admin_cli_tests, cli_node)

CAF_TEST(status_finds_the_node_and_key_from_the_configuration) {
  auto [code, out] = admin({"status"});
  CAF_CHECK_EQUAL(code, 0);
  CAF_CHECK(contains(out, ": ready"));
  CAF_CHECK(contains(out, "cluster: disabled"));
  auto j = admin_json({"cluster", "status"});
  CAF_CHECK_EQUAL(at(at(j, "ready"), "status"), "ready");
  CAF_CHECK_EQUAL(at(at(j, "cluster"), "enabled"), false);
  // No --url, no --key-file: http.listen and node.data_dir/admin.keys of
  // the configuration (here from the environment, as the node had it).
  auto found = run_command({keymesh_binary(), "admin", "status"},
                           {{"KEYMESH_HTTP_LISTEN",
                             "127.0.0.1:" + std::to_string(port)},
                            {"KEYMESH_NODE_DATA_DIR", dir.file("data")}},
                           dir.file("found.log"));
  CAF_CHECK_EQUAL(found.first, 0);
  CAF_CHECK(contains(found.second, ": ready"));
  // KEYMESH_URL and KEYMESH_ADMIN_KEY beat the configuration (and are not
  // mistaken for settings).
  auto by_env = run_command({keymesh_binary(), "admin", "status"},
                            {{"KEYMESH_URL", url()},
                             {"KEYMESH_ADMIN_KEY", admin_key},
                             {"KEYMESH_NODE_DATA_DIR", dir.file("nowhere")}},
                            dir.file("env.log"));
  CAF_CHECK_EQUAL(by_env.first, 0);
}

CAF_TEST(exit_codes_tell_scripts_what_went_wrong) {
  auto wrong = write("wrong.keys", "# not the node's\nthis-is-not-the-admin-key-0123\n");
  auto [refused, refused_out] = admin({"--key-file", wrong, "keys", "rotate"});
  CAF_CHECK_EQUAL(refused, 5);
  CAF_CHECK(contains(refused_out, "403"));
  auto digests = write("digests.keys",
                       "sha256:120e48c173b16028e1a41a84dd7156d6aaafc27ee52cd6"
                       "4229094106fb91046d\n");
  auto [hashed, hashed_out] = admin({"--key-file", digests, "status"});
  CAF_CHECK_EQUAL(hashed, 2);
  CAF_CHECK(contains(hashed_out, "only sha256 digests"));
  auto [down, down_out] = admin({"--url", "http://127.0.0.1:1", "status"});
  CAF_CHECK_EQUAL(down, 4);
  CAF_CHECK(contains(down_out, "cannot reach"));
  CAF_CHECK_EQUAL(admin({"frobnicate"}).first, 2);
  CAF_CHECK_EQUAL(admin({"revoke", "kid", "x"}).first, 2);
  CAF_CHECK_EQUAL(admin({"sessions", "show"}).first, 2);
  CAF_CHECK_EQUAL(admin({"--url", "https://127.0.0.1:1", "status"}).first, 2);
  auto [missing, missing_out] = admin({"sessions", "show",
                                       "AAAAAAAAAAAAAAAAAAAAAA"});
  CAF_CHECK_EQUAL(missing, 3);
  CAF_CHECK(contains(missing_out, "404"));
  auto [bad, bad_out] = admin({"users", "list", "--limit", "0"});
  CAF_CHECK_EQUAL(bad, 1);
  CAF_CHECK(contains(bad_out, "400"));
  auto [help, help_out] = admin({"--help"});
  CAF_CHECK_EQUAL(help, 0);
  CAF_CHECK(contains(help_out, "usage: keymesh admin"));
}

CAF_TEST(sessions_are_listed_shown_and_revoked) {
  auto sid = create_session("alice");
  create_session("alice");
  auto [code, table] = admin({"sessions", "list", "alice"});
  CAF_CHECK_EQUAL(code, 0);
  CAF_CHECK(table.rfind("SID", 0) == 0);
  CAF_CHECK(contains(table, sid));
  auto listed = admin_json({"sessions", "list", "alice"});
  CAF_CHECK_EQUAL(at(listed, "sessions").size(), 2u);
  auto [shown, fields] = admin({"sessions", "show", sid});
  CAF_CHECK_EQUAL(shown, 0);
  CAF_CHECK(contains(fields, "sub:"));
  CAF_CHECK(contains(fields, "alice"));
  auto token = json::parse(
    call("POST", "/api/sessions/" + sid + "/tokens", "{}").body())["token"]
                 .get<std::string>();
  auto [revoked, said] = admin({"sessions", "revoke", sid, "--reason",
                                "lost laptop"});
  CAF_CHECK_EQUAL(revoked, 0);
  CAF_CHECK(contains(said, "propagation complete"));
  CAF_CHECK_EQUAL(at(verify(token), "reason"), "revoked");
  CAF_CHECK_EQUAL(admin({"sessions", "show", sid}).first, 3);
  auto all = admin_json({"sessions", "revoke-subject", "alice"});
  CAF_CHECK_EQUAL(at(all, "revoked"), "sub");
  CAF_CHECK_GREATER_OR_EQUAL(at(all, "sessions").get<int>(), 1);
  CAF_CHECK_EQUAL(at(admin_json({"sessions", "list", "alice"}), "sessions")
                    .size(),
                  0u);
}

CAF_TEST(revoke_names_a_sid_sub_or_jti) {
  auto token = issue({{"sub", "dave"}})["token"].get<std::string>();
  auto checked = verify(token);
  CAF_CHECK_EQUAL(at(checked, "active"), true);
  auto jti = checked["claims"]["jti"].get<std::string>();
  auto out = admin_json({"revoke", "jti", jti, "--reason", "leak"});
  CAF_CHECK_EQUAL(at(out, "revoked"), "jti");
  CAF_CHECK_EQUAL(at(out, "propagation"), "complete");
  CAF_CHECK_EQUAL(at(verify(token), "reason"), "revoked");
  auto [code, text] = admin({"revoke", "sub", "erin"});
  CAF_CHECK_EQUAL(code, 0);
  CAF_CHECK(contains(text, "revoked sub erin"));
}

CAF_TEST(users_groups_and_claims) {
  auto pw = write("pw", "correct horse\n");
  auto added = admin_json({"users", "add", "carol", "--password-file", pw});
  CAF_CHECK_EQUAL(at(added, "username"), "carol");
  CAF_CHECK_EQUAL(at(added, "enabled"), true);
  CAF_CHECK_EQUAL(admin({"users", "add", "carol", "--password-file", pw}).first,
                  1); // 409: exists
  CAF_CHECK_EQUAL(admin({"groups", "add", "staff"}).first, 0);
  auto claim = admin_json({"claims", "add", "role", "editor", "--description",
                           "may edit"});
  auto claim_id = at(claim, "id").dump();
  CAF_CHECK_EQUAL(admin({"groups", "grant", "staff", claim_id}).first, 0);
  CAF_CHECK_EQUAL(admin({"groups", "add-member", "staff", "carol"}).first, 0);
  auto user = admin_json({"users", "show", "carol"});
  CAF_CHECK_EQUAL(at(user, "groups").dump(), R"(["staff"])");
  CAF_CHECK_EQUAL(at(at(user, "claims")[0], "value"), "editor");
  auto [listed, table] = admin({"users", "list"});
  CAF_CHECK_EQUAL(listed, 0);
  CAF_CHECK(table.rfind("USERNAME", 0) == 0);
  CAF_CHECK(contains(table, "carol"));
  CAF_CHECK(contains(admin({"groups", "list"}).second, "staff"));
  CAF_CHECK(contains(admin({"claims", "list"}).second, "editor"));
  // A new password from a file: the old one no longer logs in.
  auto new_pw = write("pw2", "battery staple\n");
  CAF_CHECK_EQUAL(admin({"users", "passwd", "carol", "--password-file",
                         new_pw}).first,
                  0);
  auto login = [&](const std::string& password) {
    return request(port, "POST", "/api/login",
                   json{{"username", "carol"}, {"password", password}}.dump(),
                   "Content-Type: application/json\r\n")
      .result_int();
  };
  CAF_CHECK_EQUAL(login("battery staple"), 200u);
  CAF_CHECK_EQUAL(login("correct horse"), 401u);
  auto disabled = admin_json({"users", "disable", "carol"});
  CAF_CHECK_EQUAL(at(disabled, "enabled"), false);
  CAF_CHECK_EQUAL(login("battery staple"), 403u);
  CAF_CHECK_EQUAL(admin({"groups", "remove-member", "staff", "carol"}).first, 0);
  CAF_CHECK_EQUAL(admin({"groups", "ungrant", "staff", claim_id}).first, 0);
  CAF_CHECK_EQUAL(admin({"users", "delete", "carol"}).first, 0);
  CAF_CHECK_EQUAL(admin({"users", "show", "carol"}).first, 3);
  CAF_CHECK_EQUAL(admin({"groups", "delete", "staff"}).first, 0);
  CAF_CHECK_EQUAL(admin({"claims", "delete", claim_id}).first, 0);
}

CAF_TEST(keys_are_shown_and_rotated) {
  auto pkeys = json::parse(request(port, "GET", "/api/pkeys").body());
  auto first_kid = pkeys["keys"][0]["kid"].get<std::string>();
  auto [code, table] = admin({"keys", "show"});
  CAF_CHECK_EQUAL(code, 0);
  CAF_CHECK(table.rfind("KID", 0) == 0);
  CAF_CHECK(contains(table, first_kid));
  auto before = issue({{"sub", "frank"}})["kid"].get<std::string>();
  auto rotated = admin_json({"keys", "rotate"});
  CAF_CHECK_NOT_EQUAL(at(rotated, "signing_kid"), before);
  auto after = issue({{"sub", "frank"}})["kid"].get<std::string>();
  CAF_CHECK_EQUAL(at(rotated, "signing_kid"), after);
}

CAF_TEST(tail_follows_the_event_stream) {
  // Follows until it has seen one revocation, printing it as JSON.
  process tail{{keymesh_binary(), "admin", "--url", url(), "--key-file",
                dir.file("data/admin.keys"), "--json", "tail", "--topics",
                "revocations", "--count", "1"},
               {},
               dir.file("tail.log")};
  // Once it follows, one revocation reaches it at once (not after a
  // buffer's worth of events).
  CAF_REQUIRE(tail.wait_for_log("following /api/events"));
  auto sent = std::chrono::steady_clock::now();
  call("POST", "/api/revocations", json{{"jti", "tail-one"}}.dump());
  auto code = tail.wait(std::chrono::seconds{5});
  CAF_REQUIRE(code.has_value());
  CAF_CHECK_LESS(std::chrono::steady_clock::now() - sent, 2s);
  CAF_CHECK_EQUAL(*code, 0);
  auto line = trim_line(tail.log());
  auto event = json::parse(line.substr(line.rfind('\n') + 1), nullptr, false);
  CAF_REQUIRE(!event.is_discarded());
  CAF_CHECK_EQUAL(at(event, "event"), "revocations");
  CAF_CHECK_EQUAL(at(at(at(event, "data"), "payload"), "type"), "jti");
  // A refused key is an exit code too, not a hang.
  auto wrong = write("wrong.keys", "this-is-not-the-admin-key-0123\n");
  auto [refused, _] = admin({"--key-file", wrong, "tail"});
  CAF_CHECK_EQUAL(refused, 5);
}

CAF_TEST_FIXTURE_SCOPE_END()
