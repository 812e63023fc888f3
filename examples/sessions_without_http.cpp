// An application actor that uses keymesh's sessions service directly, with
// no HTTP in between: it creates a session, signs an access token bound to
// it, revokes the session, and sees it refused afterwards (the service
// reads it as revoked; the deny set refuses tokens bound to it). The program
// starts a whole single node in its own actor system (data in a temporary
// directory) and exits 0 when every step did what it should.
//
// Built and run by `make test` (CTest: examples.sessions_without_http);
// docs/embedding.md quotes the marked parts of this file.
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>

#include <unistd.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <nlohmann/json.hpp>

#include "actors/error.hpp"
#include "actors/interfaces.hpp"
#include "node/node.hpp"

namespace {

// [session-client]
/// What the application asks for: a session for a user, then a token bound
/// to it, then (on "logout") the session's end.
caf::behavior session_client(caf::event_based_actor* self,
                             keymesh::sessions_actor sessions,
                             keymesh::keystore_actor keystore) {
  using namespace keymesh;
  return {
    // Logs USER in: answers (sid, signed access token).
    [=](atom::create, std::string user) {
      auto rp = self->make_response_promise<std::string, std::string>();
      session_spec spec;
      spec.sub = user;
      spec.client_id = "example-app";
      spec.attributes = {{"device", "laptop"}};
      self->request(sessions, caf::infinite, atom::create_v, spec)
        .then(
          [=](state::session& s) mutable {
            token_request tr;
            tr.sub = s.sub;
            tr.extra_claims_json = nlohmann::json{{"sid", s.sid}}.dump();
            self->request(keystore, caf::infinite, atom::sign_v, tr)
              .then(
                [=](signed_token& t) mutable { rp.deliver(s.sid, t.token); },
                [=](caf::error& err) mutable { rp.deliver(err); });
          },
          [=](caf::error& err) mutable { rp.deliver(err); });
      return rp;
    },
    // Logs session SID out everywhere in the cluster: answers the number
    // of nodes that did not confirm (0 on a single node).
    [=](atom::revoke, std::string sid) {
      auto rp = self->make_response_promise<uint64_t>();
      self
        ->request(sessions, caf::infinite, atom::revoke_v,
                  revocation_order{"sid", sid, "logout"})
        .then(
          [=](revocation_outcome& out) mutable {
            rp.deliver(static_cast<uint64_t>(out.unreached.size()));
          },
          [=](caf::error& err) mutable { rp.deliver(err); });
      return rp;
    },
  };
}
// [session-client]

int fail(const std::string& what) {
  std::cerr << "sessions_without_http: FAILED: " << what << '\n';
  return EXIT_FAILURE;
}

struct app_config : caf::actor_system_config {
  app_config() {
    keymesh::add_message_types(*this);
  }
};

} // namespace

int main() {
  namespace fs = std::filesystem;
  auto data = fs::temp_directory_path()
              / ("keymesh-example-" + std::to_string(::getpid()));
  app_config cfg;
  int status = EXIT_SUCCESS;
  {
    caf::actor_system sys{cfg};
    keymesh::config::settings settings;
    settings.node.data_dir = data.string();
    settings.http.listen = "127.0.0.1:0";
    settings.http.threads = 1;
    auto node = keymesh::node::start(sys, settings);
    // [session-use]
    auto client = sys.spawn(session_client, node->sessions(),
                            node->keystore());
    caf::scoped_actor self{sys};
    std::string sid, token, failure;
    self
      ->request(client, std::chrono::seconds{10}, keymesh::atom::create_v,
                std::string{"alice"})
      .receive(
        [&](std::string& s, std::string& t) {
          sid = std::move(s);
          token = std::move(t);
        },
        [&](caf::error& err) { failure = sys.render(err); });
    // [session-use]
    if (!failure.empty())
      status = fail("create: " + failure);
    std::cout << "created session " << sid << " with a token of "
              << token.size() << " bytes\n";
    // The session reads back through the service.
    bool live = false;
    if (status == EXIT_SUCCESS)
      self
        ->request(node->sessions(), std::chrono::seconds{10},
                  keymesh::atom::get_v, sid)
        .receive([&](keymesh::session_found& f) { live = f.s.sub == "alice"; },
                 [&](caf::error& err) { failure = sys.render(err); });
    if (status == EXIT_SUCCESS && !live)
      status = fail("the new session does not read back: " + failure);
    uint64_t unreached = 1;
    if (status == EXIT_SUCCESS)
      self
        ->request(client, std::chrono::seconds{10}, keymesh::atom::revoke_v,
                  sid)
        .receive([&](uint64_t n) { unreached = n; },
                 [&](caf::error& err) { failure = sys.render(err); });
    if (status == EXIT_SUCCESS && unreached != 0)
      status = fail("the revocation was not confirmed: " + failure);
    std::cout << "revoked session " << sid << '\n';
    // Revoked: the session reads as revoked, and the node's deny set
    // refuses the token bound to it.
    bool revoked = false;
    if (status == EXIT_SUCCESS)
      self
        ->request(node->sessions(), std::chrono::seconds{10},
                  keymesh::atom::get_v, sid)
        .receive([&](keymesh::session_found&) {},
                 [&](caf::error& err) {
                   revoked = err == keymesh::make_error(keymesh::ec::revoked);
                 });
    if (status == EXIT_SUCCESS && !revoked)
      status = fail("the revoked session still reads as live");
    if (status == EXIT_SUCCESS
        && !node->deny_set()->session_denied(sid, keymesh::to_unix_ms(
                                                    std::chrono::system_clock::now())))
      status = fail("the deny set does not refuse the session");
    if (status == EXIT_SUCCESS)
      std::cout << "the session reads as revoked and its tokens are refused\n";
    self->send_exit(client, caf::exit_reason::user_shutdown);
    node->stop();
  }
  fs::remove_all(data);
  return status;
}
