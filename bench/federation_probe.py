#!/usr/bin/env python3
"""Measures key federation latency in a running cluster: rotates the keys of
node A (POST /api/keys/rotate) and times until the new pre-published kid is
in the JWKS of every other node. Prints one line per rotation in ms, then
p50/p99.

usage: federation_probe.py ROTATIONS ADMIN_KEY_A PORT_A PORT_B [PORT_C ...]"""
import http.client
import json
import sys
import time

rotations, admin = int(sys.argv[1]), sys.argv[2]
port_a, others = int(sys.argv[3]), [int(p) for p in sys.argv[4:]]
conn_a = http.client.HTTPConnection("127.0.0.1", port_a, timeout=10)
conns = {p: http.client.HTTPConnection("127.0.0.1", p, timeout=10) for p in others}


def kids(conn):
    conn.request("GET", "/api/pkeys")
    res = conn.getresponse()
    body = res.read()
    return {k["kid"] for k in json.loads(body)["keys"]}


samples = []
for _ in range(rotations):
    # Rotations are paced (not timed) so that retired keys, published for a
    # token lifetime after their rotation, do not pile up in the JWKS.
    time.sleep(0.05)
    start = time.perf_counter()
    conn_a.request("POST", "/api/keys/rotate", b"", {"Authorization": "Bearer " + admin})
    res = conn_a.getresponse()
    data = res.read()
    if res.status != 200:
        sys.exit("rotate: HTTP %d %s" % (res.status, data[:200]))
    new_kid = json.loads(data)["next_kid"]
    pending = set(others)
    deadline = start + 10
    while pending:
        for p in list(pending):
            if new_kid in kids(conns[p]):
                pending.discard(p)
        if time.perf_counter() > deadline:
            sys.exit("kid %s did not reach %s within 10 s" % (new_kid, sorted(pending)))
    samples.append((time.perf_counter() - start) * 1000.0)
samples.sort()


def pct(q):
    return samples[min(len(samples) - 1, int(q * len(samples)))]


print("p50_ms %.3f" % pct(0.50))
print("p99_ms %.3f" % pct(0.99))
print("max_ms %.3f" % samples[-1])
