// Writes the seed corpus of every fuzz target into DIR/<target>/: valid and
// nearly valid inputs, so that the fuzzers start deep in each parser. Run
// it from build-fuzz (`./tests/fuzz/fuzz_seeds ../tests/fuzz/corpus`); the
// output is checked in.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/message.hpp>
#include <nlohmann/json.hpp>

#include "actors/interfaces.hpp"
#include "fuzz_keys.hpp"
#include "common/base64url.hpp"
#include "jose/jws.hpp"
#include "jose/key.hpp"
#include "state/attempts.hpp"
#include "state/object.hpp"
#include "state/par.hpp"
#include "state/secret_ring.hpp"
#include "state/refresh.hpp"
#include "state/session.hpp"
#include "state/snapshot.hpp"

using namespace keymesh;
using nlohmann::json;

namespace {

std::string out_dir;

void write(const std::string& target, const std::string& name,
           const std::string& bytes) {
  auto dir = std::filesystem::path{out_dir} / target;
  std::filesystem::create_directories(dir);
  std::ofstream{dir / name, std::ios::binary} << bytes;
}

json claims(json extra = json::object()) {
  json c{{"sub", "alice"},
         {"iss", "https://issuer.example"},
         {"aud", "api"},
         {"jti", "j-1"},
         {"sid", "AAAAAAAAAAAAAAAAAAAAAA"},
         {"iat", fuzz::fuzz_now - 5},
         {"exp", fuzz::fuzz_now + 600}};
  for (auto& [k, v] : extra.items())
    c[k] = v;
  return c;
}

std::string token_with_header(const jose::key& k, const json& header,
                              const json& payload) {
  auto input = keymesh::base64url_encode(header.dump()) + "." +
               keymesh::base64url_encode(payload.dump());
  return input + "." + keymesh::base64url_encode(k.sign(input));
}

template<class T>
std::string serialized(caf::actor_system& sys, T x) {
  std::vector<char> buf;
  caf::binary_serializer sink{sys, buf};
  sink(x);
  return {buf.begin(), buf.end()};
}

std::string http_request(const std::string& method, const std::string& target,
                         const std::string& body = {},
                         const std::string& extra = {}) {
  std::string out =
      method + " " + target + " HTTP/1.1\r\nHost: fuzz\r\n" + extra;
  if (!body.empty())
    out += "Content-Type: application/json\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n";
  return out + "\r\n" + body;
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: fuzz_seeds DIR\n";
    return 2;
  }
  out_dir = argv[1];
  auto es = jose::key::from_jwk(json::parse(fuzz::es256_jwk));
  auto ed = jose::key::from_jwk(json::parse(fuzz::eddsa_jwk));
  auto rs = jose::key::from_jwk(json::parse(fuzz::rs256_jwk));
  // -- jwt
  // ----------------------------------------------------------------------
  auto good = jose::sign_compact(es, "es", claims());
  write("jwt", "es256", good);
  write("jwt", "eddsa", jose::sign_compact(ed, "ed", claims()));
  write("jwt", "rs256", jose::sign_compact(rs, "rs", claims()));
  write("jwt", "expired",
        jose::sign_compact(es, "es", claims({{"exp", fuzz::fuzz_now - 100}})));
  write("jwt", "nbf",
        jose::sign_compact(
            es, "es",
            claims({{"nbf", fuzz::fuzz_now + 100}, {"aud", {"x", "api"}}})));
  write(
      "jwt", "crit",
      token_with_header(
          es,
          {{"alg", "ES256"}, {"kid", "es"}, {"crit", {"b64"}}, {"b64", false}},
          claims()));
  write("jwt", "jku",
        token_with_header(es,
                          {{"alg", "ES256"},
                           {"kid", "es"},
                           {"jku", "http://x/"},
                           {"typ", "JWT"}},
                          claims()));
  write("jwt", "none",
        "eyJhbGciOiJub25lIn0." + good.substr(good.find('.') + 1));
  // -- jwk
  // ----------------------------------------------------------------------
  json jwks{{"keys", json::array()}};
  for (auto* k : {&es, &ed, &rs}) {
    auto pub = k->public_jwk();
    pub["kid"] = std::string{"k-"} + std::string{jose::to_string(k->alg())};
    pub["use"] = "sig";
    pub["alg"] = std::string{jose::to_string(k->alg())};
    jwks["keys"].push_back(pub);
  }
  write("jwk", "jwks", jwks.dump());
  write("jwk", "es-private", fuzz::es256_jwk);
  write("jwk", "ed-private", fuzz::eddsa_jwk);
  write("jwk", "rs-private", fuzz::rs256_jwk);
  write(
      "jwk", "mixed",
      R"({"keys":[{"kty":"EC","crv":"P-384","kid":"a"},{"kty":"oct","k":"AAAA","kid":"b"},)"
      R"({"kty":"OKP","crv":"Ed25519","x":"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","kid":"c"},1,"x",null]})");
  // -- config
  // ---------------------------------------------------------------------
  write("config", "full", R"(node:
  data_dir: /var/lib/keymesh
http:
  listen: 127.0.0.1:8080
  threads: 4
  max_body_bytes: 1MiB
keys:
  algorithm: EdDSA
  rotate_every: 7d
  max_token_ttl: 2h
  default_token_ttl: 30m
  leeway: 60s
  issuer: https://auth.example.com
cluster:
  enabled: true
  listen: 0.0.0.0:7000
  advertise: node-1:7000
  seeds: [node-2:7000, "[fe80::1]:7000"]
  static_peers: [https://peer.example/]
  tls: {ca: /ca.pem, cert: /cert.pem, key: /key.pem}
state:
  partitions: 64
  replication_factor: all
sessions:
  posture: durable
database:
  driver: mysql
  host: db
)");
  write("config", "small", "http:\n  listen: [::1]:0\nlog:\n  level: debug\n");
  write("config", "errors", "htp: 1\nkeys:\n  leeway: -1\n  algorithm: [x]\n");
  // -- state
  // ----------------------------------------------------------------------
  state::session s;
  s.sid = "AAAAAAAAAAAAAAAAAAAAAA";
  s.sub = "alice";
  s.client_id = "web";
  s.created_at = 1'700'000'000'000;
  s.last_seen = s.created_at;
  s.expires_at = s.created_at + 3'600'000;
  s.idle_timeout = 600;
  s.attributes = {{"a", "b"}};
  write("state", "session", state::encode_session(s));
  auto family = state::new_family(s.sid, s.sub, s.expires_at);
  write("state", "family", state::encode_family(family));
  state::object obj;
  obj.value = R"({"accountId":"alice"})";
  obj.indexes = {{"grant_id", "g1"}, {"uid", "u1"}};
  obj.created_at = 1'700'000'000'000;
  obj.consumed_at = 1'700'000'000'500;
  obj.consume_key = "k1";
  write("state", "object-v1", state::encode_object(obj));
  write("state", "ring", state::encode_ring(state::new_ring("dpop", 1)));
  write("state", "par",
        state::encode_par({"rp", R"({"scope":"openid"})", 1700000060000}));
  write("state", "refresh-token", state::make_refresh_token(s.sid, family));
  write("state", "attempts", state::encode_attempts({3, s.created_at, 0}));
  state::partition_snapshot snap;
  snap.partition = 3;
  state::record rec;
  rec.value = state::encode_session(s);
  rec.ver = state::version{1'700'000'000'000ull << 16, 7};
  rec.expires_at = s.expires_at;
  snap.records.push_back({"sessions", s.sid, rec});
  rec.tombstone = true;
  snap.records.push_back({"refresh", s.sid, rec});
  write("state", "snapshot", state::encode_snapshot(snap));
  write("state", "snapshot-file", state::encode_snapshot_file({snap}, 64));
  // -- http
  // -----------------------------------------------------------------------
  auto admin =
      std::string{"Authorization: Bearer fuzz-admin-key-0123456789\r\n"};
  write("http", "pkeys", http_request("GET", "/api/pkeys?local=true"));
  write("http", "discovery",
        http_request("GET", "/.well-known/openid-configuration"));
  write("http", "ready", http_request("GET", "/healthz/ready"));
  write("http", "metrics", http_request("GET", "/metrics"));
  write("http", "verify",
        http_request("POST", "/api/verify", json{{"token", good}}.dump()));
  write("http", "login",
        http_request(
            "POST", "/api/login",
            R"({"username":"alice","password":"pw","client_id":"web"})"));
  write("http", "refresh",
        http_request(
            "POST", "/api/refresh",
            json{{"refresh_token", state::make_refresh_token(s.sid, family)}}
                .dump()));
  write("http", "logout",
        http_request("POST", "/api/logout", json{{"token", good}}.dump()));
  write("http", "tokens",
        http_request(
            "POST", "/api/tokens",
            R"({"sub":"bob","aud":["a","b"],"ttl":60,"claims":{"role":"x"}})",
            admin));
  write("http", "session-create",
        http_request("POST", "/api/sessions",
                     R"({"sub":"bob","ttl":60,"attributes":{"k":"v"}})",
                     admin));
  write("http", "session-get",
        http_request("GET", "/api/sessions/AAAAAAAAAAAAAAAAAAAAAA", {}, admin));
  write("http", "session-patch",
        http_request("PATCH", "/api/sessions/AAAAAAAAAAAAAAAAAAAAAA",
                     R"({"attributes":{"k":null},"touch":false})", admin));
  write("http", "subject-revoke",
        http_request("DELETE", "/api/subjects/bob/sessions",
                     R"({"reason":"fuzz"})", admin));
  write("http", "revocations",
        http_request("POST", "/api/revocations", R"({"jti":"j-1"})", admin));
  write("http", "object-put",
        http_request("PUT", "/api/objects/Grant/g%3A1",
                     R"({"value":{"a":1},"ttl":60,"indexes":{"uid":"u1"},)"
                     R"("if_version":"18c0000000000-1a2b3c4d"})",
                     admin));
  write("http", "object-consume",
        http_request("POST", "/api/objects/Grant/g%3A1/consume",
                     R"({"idempotency_key":"k1"})", admin));
  write("http", "object-find",
        http_request("GET", "/api/objects/Grant?index=uid&value=u1", {},
                     admin));
  write("http", "replay",
        http_request("POST", "/api/replay",
                     R"({"scope":"dpop","iss":"i","jti":"j","exp":4000000000})",
                     admin));
  write("http", "par-push",
        http_request("POST", "/api/par",
                     R"({"client_id":"rp","params":{"scope":"openid"},)"
                     R"("ttl":60})",
                     admin));
  write("http", "par-redeem",
        http_request("POST", "/api/par/redeem",
                     R"({"client_id":"rp","request_uri":"urn:ietf:params:)"
                     R"(oauth:request_uri:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA)"
                     R"(AAAAAAAAAAAA"})",
                     admin));
  write("http", "dpop-check",
        http_request("POST", "/api/dpop/nonce/check",
                     R"({"nonce":"rVUUCwAAAAAAW19k-1EZ7AXoETd7PD1a2yR_Aw"})",
                     admin));
  write("http", "cookie-open",
        http_request("POST", "/api/cookies/open",
                     R"({"sealed":"v1.IAc1-UtNUzENRWcTmAEfPogrZq8fMLRNCSpaN)"
                     R"(-8uVVxO6bPMNK-pa3Q","aad":"_s"})",
                     admin));
  write("http", "cookie-seal",
        http_request("POST", "/api/cookies/seal",
                     R"({"plaintext":"x","aad":"_s"})", admin));
  write("http", "chunked",
        "POST /api/verify HTTP/1.1\r\nHost: f\r\nContent-Type: "
        "application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n5\r\n{\"tok\r\n0\r\n\r\n");
  // -- messages
  // ---------------------------------------------------------------------
  caf::actor_system_config cfg;
  add_message_types(cfg);
  caf::actor_system sys{cfg};
  key_announcement ann{"node-1", 7, 3, {}};
  ann.keys.push_back(
      public_key_info{"node-1-0", "ES256", es.public_jwk().dump(), 1, 2, 3, 4});
  node_hello hello;
  hello.instance_id = "node-1";
  hello.cluster_name = "keymesh";
  hello.protocol_version = 1;
  hello.settings = {"keys.algorithm=ES256"};
  hello.nonce = std::string(32, 'n');
  write_request w;
  w.keyspace = "sessions";
  w.key = s.sid;
  w.value = state::encode_session(s);
  w.condition = write_condition::version_is;
  bus_event e{"revocations", "node-1", 1, 2, 3, R"({"kind":"sid"})"};
  auto msg = [&](const char* name, caf::message m) {
    write("messages", name, serialized(sys, m));
  };
  msg("token_request", caf::make_message(token_request{"a", {"x"}, 60, "{}"}));
  msg("announce", caf::make_message(ann));
  msg("hello", caf::make_message(hello));
  msg("write", caf::make_message(w));
  msg("read", caf::make_message(read_request{"sessions", s.sid, 1}));
  msg("records", caf::make_message(record_list{snap.records}));
  msg("sync",
      caf::make_message(sync_reply{state::encode_snapshot(snap), {}, true}));
  msg("events", caf::make_message(bus_event_list{e, e}));
  msg("attempt", caf::make_message(
                     attempt_request{"login_failures", "alice", 5, 1, 2, 0}));
  msg("members", caf::make_message(std::vector<member_info>{
                     member_info{"node-2", "h:1", "up", 1, 2, 1, 9}}));
  msg("services", caf::make_message(node_services{}));
  msg("client", caf::make_message(
                  atom::put_v, persistence::client_record{
                                 "rp-1", "https://rp.example/bcl", true, 1, 2}));
  msg("clients", caf::make_message(client_records{
                   {"rp-1", "", false, 1, 2}, {"rp-2", "http://h/x", true, 3, 4}}));
  persistence::outbox_row row;
  row.id = "Qx0";
  row.session_id = s.sid;
  row.sid = "rp-sid";
  row.sub = "alice";
  row.client_id = "rp-1";
  row.uri = "https://rp.example/bcl";
  row.posture = "durable";
  row.give_up_at = 9;
  row.owner = "node-1";
  msg("outbox", caf::make_message(atom::put_v, outbox_rows{row, row}));
  msg("ending", caf::make_message(
                  atom::logout_v,
                  session_endings{session_ending{s.sid, "alice", "logout",
                                                 {{"rp-1", "x"}}}}));
  msg("receipt", caf::make_message(logout_receipt{2, {"rp-9"}, ""}));
  session_spec spec;
  spec.sub = "alice";
  spec.ttl = 60;
  spec.clients = {{"rp-1", "x"}};
  spec.sid = s.sid; // a sid the caller chose
  msg("spec", caf::make_message(atom::create_v, spec));
  msg("posted", caf::make_message(post_result{302, "", false, "/x"}));
  write("messages", "raw-announce", serialized(sys, ann));
  write("messages", "raw-hello", serialized(sys, hello));
  write("messages", "raw-write", serialized(sys, w));
  std::cout << "seeds written to " << out_dir << "\n";
  return 0;
}
