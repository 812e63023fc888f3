// A whole keymesh node embedded in an application: the program starts a
// single node in its own actor system (data in a temporary directory),
// and an actor of its own adds a user through the directory service, logs
// it in and rotates its refresh token through the auth service, with no
// HTTP in between. The node's HTTP front, in the same process, verifies
// the access token; after a logout through the auth service it refuses it.
// Exits 0 when every step did what it should.
//
// Built and run by `make test` (CTest: examples.embed_node);
// docs/embedding.md quotes the marked parts of this file.
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>

#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <nlohmann/json.hpp>

#include "actors/error.hpp"
#include "actors/interfaces.hpp"
#include "node/node.hpp"

namespace {

// [login-client]
/// The application's account actor: registers a user, then logs it in;
/// rotates a refresh token; logs a session out.
caf::behavior account_client(caf::event_based_actor* self,
                             keymesh::directory_actor directory,
                             keymesh::auth_actor auth) {
  using namespace keymesh;
  return {
    // Registers USER with PASSWORD and logs it in: answers the tokens.
    [=](atom::create, std::string user, std::string password) {
      auto rp = self->make_response_promise<token_grant>();
      self
        ->request(directory, caf::infinite, atom::create_v,
                  user_spec{user, password, true})
        .then(
          [=](user_view&) mutable {
            self
              ->request(auth, caf::infinite, atom::login_v,
                        credentials{user, password, "example-app"})
              .then([=](token_grant& g) mutable { rp.deliver(g); },
                    [=](caf::error& err) mutable { rp.deliver(err); });
          },
          [=](caf::error& err) mutable { rp.deliver(err); });
      return rp;
    },
    // The next tokens for a refresh token (the old one is spent).
    [=](atom::refresh, std::string refresh_token) {
      return self->delegate(auth, atom::refresh_v, std::move(refresh_token));
    },
    // Ends the session of a refresh token on every node.
    [=](atom::logout, std::string refresh_token) {
      return self->delegate(auth, atom::logout_v,
                            logout_request{std::move(refresh_token), {}});
    },
  };
}
// [login-client]

/// POST /api/verify on the node's HTTP port: whether TOKEN is active.
bool verified(uint16_t port, const std::string& token) {
  namespace beast = boost::beast;
  namespace http = beast::http;
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket socket{io};
  socket.connect({boost::asio::ip::make_address("127.0.0.1"), port});
  http::request<http::string_body> req{http::verb::post, "/api/verify", 11};
  req.set(http::field::host, "127.0.0.1");
  req.set(http::field::content_type, "application/json");
  req.body() = nlohmann::json{{"token", token}}.dump();
  req.prepare_payload();
  http::write(socket, req);
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(socket, buf, res);
  auto body = nlohmann::json::parse(res.body(), nullptr, false);
  return res.result() == http::status::ok && body.is_object()
         && body.value("active", false);
}

int fail(const std::string& what) {
  std::cerr << "embed_node: FAILED: " << what << '\n';
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
  using namespace keymesh;
  auto data = fs::temp_directory_path()
              / ("keymesh-embed-" + std::to_string(::getpid()));
  int status = EXIT_SUCCESS;
  {
    // [start-node]
    app_config cfg;
    caf::actor_system sys{cfg};
    config::settings settings; // a single node on SQLite, ES256 keys
    settings.node.data_dir = data.string();
    settings.http.listen = "127.0.0.1:0"; // any free port
    settings.http.threads = 1;
    auto node = node::start(sys, settings); // blocks until it is ready
    std::cout << "node " << node->instance_id() << " serves HTTP on port "
              << node->http_port() << '\n';
    auto client = sys.spawn(account_client, node->directory(), node->auth());
    // [start-node]
    // [use-node]
    caf::scoped_actor self{sys};
    token_grant first, next;
    std::string failure;
    self
      ->request(client, std::chrono::seconds{30}, atom::create_v,
                std::string{"alice"}, std::string{"correct horse"})
      .receive([&](token_grant& g) { first = std::move(g); },
               [&](caf::error& err) { failure = sys.render(err); });
    if (failure.empty())
      self
        ->request(client, std::chrono::seconds{30}, atom::refresh_v,
                  first.refresh_token)
        .receive([&](token_grant& g) { next = std::move(g); },
                 [&](caf::error& err) { failure = sys.render(err); });
    // [use-node]
    if (!failure.empty())
      status = fail("login or refresh: " + failure);
    else if (next.sid != first.sid || next.refresh_token == first.refresh_token)
      status = fail("the refresh did not rotate the session's token");
    else
      std::cout << "alice logged in (session " << first.sid
                << ") and rotated her refresh token\n";
    if (status == EXIT_SUCCESS && !verified(node->http_port(), next.access_token))
      status = fail("the node's HTTP front does not accept the token");
    uint64_t ended = 0;
    if (status == EXIT_SUCCESS)
      self
        ->request(client, std::chrono::seconds{30}, atom::logout_v,
                  next.refresh_token)
        .receive([&](revocation_outcome& out) { ended = out.sessions; },
                 [&](caf::error& err) { failure = sys.render(err); });
    if (status == EXIT_SUCCESS && ended != 1)
      status = fail("the logout did not end the session: " + failure);
    if (status == EXIT_SUCCESS && verified(node->http_port(), next.access_token))
      status = fail("the node still accepts the token after the logout");
    if (status == EXIT_SUCCESS)
      std::cout << "after the logout the node refuses the token\n";
    // [stop-node]
    self->send_exit(client, caf::exit_reason::user_shutdown);
    node->stop(); // HTTP first, then the actors; the system waits for them
    // [stop-node]
  }
  fs::remove_all(data);
  return status;
}
