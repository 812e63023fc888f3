#!/usr/bin/env python3
"""Revocation propagation latency, keymesh versus Redis pub/sub.

  revocation_probe.py keymesh N KEY_A,KEY_B,KEY_C PORT_A PORT_B PORT_C
      Creates N sessions and a token bound to each (not timed). Then, for
      each: sends DELETE /api/sessions/{sid} to one node (round robin) and,
      without waiting for its answer, asks all three nodes (on connections
      of their own) to verify the token, round after round, until every
      node answers "revoked". Propagation is timed from sending the revoke
      to the last "revoked"; the acknowledgement (the revoke's answer, which
      also waits for the tombstones) is timed separately.
  revocation_probe.py redis N PORT
      Three subscribers on one channel; for each of N messages: PUBLISH,
      then wait until all three subscribers have it. Timed from sending the
      PUBLISH to the last delivery.

Prints p50_ms, p99_ms, max_ms and count; every connection is a persistent
loopback connection, and the client does the same amount of I/O per round
trip in both modes."""
import http.client
import json
import socket
import sys
import time


def percentile(values, p):
    values = sorted(values)
    k = min(len(values) - 1, max(0, int(round(p / 100.0 * len(values) + 0.5)) - 1))
    return values[k]


def report(latencies):
    ms = [x * 1000.0 for x in latencies]
    print("count %d" % len(ms))
    print("p50_ms %.3f" % percentile(ms, 50))
    print("p99_ms %.3f" % percentile(ms, 99))
    print("max_ms %.3f" % max(ms))


class connect:
    """A persistent HTTP/1.1 connection on a raw socket."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def read_response(self):
        """(status, body) of the next response (Content-Length framing)."""
        while b"\r\n\r\n" not in self.buf:
            self.fill()
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ")[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            self.buf = rest
            self.fill()
            rest = self.buf
        self.buf = rest[length:]
        return status, rest[:length]

    def fill(self):
        data = self.sock.recv(65536)
        if not data:
            sys.exit("probe: the server closed the connection")
        self.buf += data


def keymesh(n, keys, ports):
    conns = [http.client.HTTPConnection("127.0.0.1", p, timeout=10) for p in ports]
    admins = [{"Authorization": "Bearer " + k, "Content-Type": "application/json"} for k in keys]

    def call(i, method, path, body=None):
        c = conns[i]
        c.request(method, path, body, admins[i])
        r = c.getresponse()
        return r.status, r.read()

    work = []
    for i in range(n):
        status, body = call(i % 3, "POST", "/api/sessions", json.dumps({"sub": "probe-%d" % i}))
        if status != 201:
            sys.exit("probe: create: HTTP %d %s" % (status, body[:200]))
        sid = json.loads(body)["sid"]
        status, body = call(i % 3, "POST", "/api/sessions/%s/tokens" % sid, "{}")
        if status != 201:
            sys.exit("probe: token: HTTP %d %s" % (status, body[:200]))
        work.append((sid, json.loads(body)["token"]))
    # The timed part speaks HTTP/1.1 on raw sockets with prepared requests,
    # as the Redis mode speaks RESP: the client's own cost per round trip
    # stays small next to what is measured.
    verifiers = [connect(p) for p in ports]
    revokers = [connect(p) for p in ports]
    latencies = []
    acks = []
    for i, (sid, token) in enumerate(work):
        body = json.dumps({"token": token}).encode()
        verify = (b"POST /api/verify HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                  % (len(body), body))
        node = (i + 1) % 3
        revoke = ("DELETE /api/sessions/%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  "Authorization: Bearer %s\r\nContent-Length: 0\r\n\r\n"
                  % (sid, keys[node])).encode()
        t0 = time.perf_counter()
        revokers[node].send(revoke)
        pending = list(verifiers)
        deadline = t0 + 5
        while pending:
            for s in pending:
                s.send(verify)
            still = []
            for s in pending:
                status, answer = s.read_response()
                if status != 200:
                    sys.exit("probe: verify: HTTP %d %s" % (status, answer[:200]))
                if b'"revoked"' not in answer:
                    still.append(s)
            pending = still
            if time.perf_counter() > deadline:
                sys.exit("probe: a node did not refuse the token within 5 s")
        latencies.append(time.perf_counter() - t0)
        status, answer = revokers[node].read_response()
        acks.append(time.perf_counter() - t0)
        if status != 200 or json.loads(answer).get("propagation") != "complete":
            sys.exit("probe: revoke: HTTP %d %s" % (status, answer[:200]))
    report(latencies)
    ms = [x * 1000.0 for x in acks]
    print("ack_p50_ms %.3f" % percentile(ms, 50))
    print("ack_p99_ms %.3f" % percentile(ms, 99))


def redis(n, port):
    def connect():
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    subs = [connect() for _ in range(3)]
    for s in subs:
        s.sendall(b"*2\r\n$9\r\nSUBSCRIBE\r\n$5\r\nrevok\r\n")
        buf = b""
        while buf.count(b"\r\n") < 6:  # the subscribe confirmation
            buf += s.recv(4096)
    pub = connect()
    latencies = []
    for i in range(n):
        msg = b"sid-%08d" % i
        cmd = b"*3\r\n$7\r\nPUBLISH\r\n$5\r\nrevok\r\n$%d\r\n%s\r\n" % (len(msg), msg)
        t0 = time.perf_counter()
        pub.sendall(cmd)
        reply = b""
        while not reply.endswith(b"\r\n"):
            reply += pub.recv(64)
        if reply != b":3\r\n":
            sys.exit("probe: PUBLISH reached %r subscribers" % reply)
        for s in subs:
            got = b""
            while msg not in got:
                got += s.recv(4096)
        latencies.append(time.perf_counter() - t0)
    report(latencies)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "keymesh":
        keymesh(int(sys.argv[2]), sys.argv[3].split(","), [int(p) for p in sys.argv[4:7]])
    elif mode == "redis":
        redis(int(sys.argv[2]), int(sys.argv[3]))
    else:
        sys.exit(__doc__)
