#!/usr/bin/env python3
"""A relying party's back-channel logout endpoint for the integration tests.

It validates every logout token as an RP library would (OpenID Connect
Back-Channel Logout 1.0 §2.6) with PyJWT against the cluster's JWKS:
signature, typ logout+jwt, iss, aud (the client id in the path), exp, iat,
the backchannel-logout event, no nonce, a sid or sub, a jti it has not seen
before. Each token it receives is one JSON line in RECORDS, valid or not.

usage: bcl_receiver.py JWKS_URL ISSUER RECORDS
Prints "listening PORT" once it serves. Paths (POST):
  /rp/CLIENT/ok        200 for a valid token (400 for an invalid one)
  /rp/CLIENT/ok204     204 for a valid token
  /rp/CLIENT/flaky     the status set by GET /control/flaky/STATUS (503 at
                       first), 200 once that is 200
  /rp/CLIENT/redirect  302 to /rp/CLIENT/ok
  /rp/CLIENT/hang      never answers (holds the connection for 60 s)
"""
import json
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt

EVENT = "http://schemas.openid.net/event/backchannel-logout"

jwks_url, issuer, records_path = sys.argv[1:4]
jwks = jwt.PyJWKClient(jwks_url, cache_keys=False)
lock = threading.Lock()
seen_jti = set()
flaky_status = [503]


def validate(token, client):
    header = jwt.get_unverified_header(token)
    if header.get("typ") != "logout+jwt":
        raise ValueError("typ is %r" % header.get("typ"))
    key = jwks.get_signing_key_from_jwt(token)
    claims = jwt.decode(token, key.key, algorithms=[header["alg"]],
                        issuer=issuer, audience=client,
                        options={"require": ["iss", "aud", "iat", "exp",
                                             "jti", "events"]})
    if "nonce" in claims:
        raise ValueError("a logout token carries a nonce")
    if claims.get("events", {}).get(EVENT) != {}:
        raise ValueError("events is %r" % claims.get("events"))
    if not claims.get("sid") and not claims.get("sub"):
        raise ValueError("neither sid nor sub")
    if claims["exp"] - claims["iat"] > 300:
        raise ValueError("lives %d s" % (claims["exp"] - claims["iat"]))
    with lock:
        if claims["jti"] in seen_jti:
            raise ValueError("jti %s replayed" % claims["jti"])
        seen_jti.add(claims["jti"])
    return claims


def record(entry):
    with lock:
        with open(records_path, "a") as f:
            f.write(json.dumps(entry) + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", "0")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()

    def do_GET(self):
        parts = self.path.strip("/").split("/")
        if len(parts) == 3 and parts[:2] == ["control", "flaky"]:
            flaky_status[0] = int(parts[2])
            return self.answer(204)
        self.answer(404)

    def do_POST(self):
        parts = self.path.strip("/").split("/")
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length).decode()
        if len(parts) != 3 or parts[0] != "rp":
            return self.answer(404)
        client, mode = urllib.parse.unquote(parts[1]), parts[2]
        if mode == "hang":
            time.sleep(60)
            return
        if mode == "redirect":
            return self.answer(302, [("Location", "/rp/%s/ok" % parts[1])])
        status = {"ok": 200, "ok204": 204}.get(mode, flaky_status[0])
        form = urllib.parse.parse_qs(body)
        token = form.get("logout_token", [""])[0]
        entry = {"client": client, "mode": mode, "status": status,
                 "content_type": self.headers.get("Content-Type", "")}
        try:
            claims = validate(token, client)
            entry.update(valid=True, sid=claims.get("sid"),
                         sub=claims.get("sub"), jti=claims["jti"])
        except Exception as e:  # every failure is recorded and refused
            entry.update(valid=False, why="%s: %s" % (type(e).__name__, e))
            status = 400
        entry["answered"] = status
        record(entry)
        self.answer(status)


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print("listening %d" % server.server_address[1], flush=True)
server.serve_forever()
