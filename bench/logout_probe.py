#!/usr/bin/env python3
"""Back-channel logout fan-out, keymesh versus direct POSTs.

  logout_probe.py keymesh PORT ADMIN_KEY RECEIVER_URL ACCESS_LOG SESSIONS CLIENTS ROUND
      Registers CLIENTS relying parties (RECEIVER_URL/rp-N), creates
      SESSIONS sessions of one subject each with every client taking part
      (not timed), then revokes the subject and waits until the receiver's
      access log (nginx, "$msec $request_uri" per line) has every logout
      token. Each token's latency runs from sending the revocation to its
      line; prints p50_ms, p99_ms, total_ms, ack_ms and per_s.
  logout_probe.py direct RECEIVER_URL ACCESS_LOG COUNT WORKERS
      The peer: curl --parallel sends COUNT form POSTs of a
      logout-token-sized body, WORKERS at a time, each on a connection of
      its own (as keymesh sends them), timed the same way: what a sender
      that neither signs, nor records, nor retries takes.
"""
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time


def percentile(values, p):
    values = sorted(values)
    k = min(len(values) - 1, max(0, int(round(p / 100.0 * len(values) + 0.5)) - 1))
    return values[k]


def lines_after(path, offset):
    with open(path) as f:
        f.seek(offset)
        return [l for l in f.read().splitlines() if l.strip()]


def wait_lines(path, offset, count, limit=120):
    deadline = time.time() + limit
    while time.time() < deadline:
        got = lines_after(path, offset)
        if len(got) >= count:
            return got
        time.sleep(0.002)
    sys.exit("bench: only %d of %d logouts arrived" % (len(lines_after(path, offset)), count))


def report(t0, lines, ack=None):
    arrivals = [float(l.split()[0]) for l in lines]
    ms = [(a - t0) * 1000.0 for a in arrivals]
    total = max(ms)
    print("count %d" % len(ms))
    print("p50_ms %.1f" % percentile(ms, 50))
    print("p99_ms %.1f" % percentile(ms, 99))
    print("total_ms %.1f" % total)
    if ack is not None:
        print("ack_ms %.1f" % ack)
    print("per_s %.0f" % (len(ms) / (total / 1000.0)))


def keymesh(port, key, receiver, log, sessions, clients, rnd):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def call(method, path, body=None):
        headers = {"Authorization": "Bearer " + key}
        if body is not None:
            headers["Content-Type"] = "application/json"
            body = json.dumps(body)
        conn.request(method, path, body, headers)
        res = conn.getresponse()
        data = res.read()
        if res.status >= 300:
            sys.exit("bench: %s %s -> %d %s" % (method, path, res.status, data))
        return json.loads(data) if data else None

    names = ["rp-%d" % i for i in range(clients)]
    for n in names:
        call("PUT", "/api/admin/clients/" + n,
             {"backchannel_logout_uri": "%s/%s" % (receiver, n)})
    sub = "bench-%s" % rnd
    for i in range(sessions):
        call("POST", "/api/sessions",
             {"sub": sub, "clients": {n: "" for n in names}})
    offset = os.path.getsize(log)
    t0 = time.time()
    call("DELETE", "/api/subjects/%s/sessions" % sub)
    ack = (time.time() - t0) * 1000.0
    lines = wait_lines(log, offset, sessions * clients)
    report(t0, lines, ack)


def direct(receiver, log, count, workers):
    # curl --parallel: a compiled client, WORKERS transfers at once, each
    # on a connection of its own (Connection: close), as keymesh sends.
    work = tempfile.mkdtemp()
    body = os.path.join(work, "body")
    with open(body, "w") as f:
        f.write("logout_token=" + "x" * 560)  # an ES256 logout token's size
    config = os.path.join(work, "urls")
    with open(config, "w") as f:
        for i in range(count):
            f.write('url = "%s/direct-%d"\noutput = "/dev/null"\n' % (receiver, i % 3))
    offset = os.path.getsize(log)
    t0 = time.time()
    subprocess.run(["curl", "-s", "--no-progress-meter", "--parallel", "--parallel-max", str(workers),
                    "-H", "Connection: close",
                    "-H", "Content-Type: application/x-www-form-urlencoded",
                    "--data-binary", "@" + body, "-K", config], check=True)
    report(t0, wait_lines(log, offset, count))
    shutil.rmtree(work)


if __name__ == "__main__":
    if sys.argv[1] == "keymesh":
        keymesh(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5],
                int(sys.argv[6]), int(sys.argv[7]), sys.argv[8])
    else:
        direct(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
