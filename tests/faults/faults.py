#!/usr/bin/env python3
"""Fault injection on a real keymesh cluster.

Each node runs in a network namespace this script creates (veth pairs on a
bridge, addresses 10.231.K.i, all removed at the end), so that it can cut
the links between nodes both ways or one way and drop a share of their
packets (nftables in each namespace), pause a node (SIGSTOP), kill it (-9)
and restart it, slow one link (a delaying relay, delayer.py: this
kernel has no netem) and run a node's clock ahead (node.clock_offset).
Each scenario runs a bounded mixed load from a client per
node (session creates, reads, touches, revocations, token verifies,
single-use consumes), records every operation with its answer, injects
the fault, heals it, waits for the cluster to converge and checks the
history:

- every acknowledged create is readable on every node afterwards;
- every acknowledged revocation is enforced by every node afterwards, and
  no node that the revocation reached accepted the token after the
  revocation was acknowledged;
- a single-use value was won by at most one caller;
- a restarted node, the moment it reports ready, refuses every token whose
  revocation was acknowledged before (kill, join-kill);
- in clock-ahead, each side sees the other's clock offset.

It also counts the tokens of live sessions that a ready node refused
(refused_live), the stale reads, the error rate and the 99th percentile
latency during the fault. It prints one line of figures per scenario (and --json writes them).
Needs root (namespaces, nftables); run by `make faults`, and by ctest as
faults.short.
"""

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import keymesh_http  # noqa: E402  (tests/support/keymesh_http.py)

HEARTBEAT = "500ms"
FAILURE_TIMEOUT = "2s"
HTTP_PORT = 8080
CLUSTER_PORT = 7401
RELAY_PORT = 7499
RELAY_MARK = 0x4b4d
DELAYER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "delayer.py")


def run(*args, ns=None, check=True):
    cmd = (["ip", "netns", "exec", ns] if ns else []) + list(args)
    out = subprocess.run(cmd, capture_output=True, text=True)
    if check and out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {out.stderr.strip() or out.stdout.strip()}")
    return out.stdout


class Net:
    """A bridge and one namespace per node; nftables rules in each."""

    def __init__(self, count):
        self.count = count
        self.tag = f"kmf{os.getpid() % 100000}"
        self.subnet = f"10.231.{random.randint(1, 250)}"
        self.bridge = f"{self.tag}b"
        self.made = []
        try:
            run("ip", "link", "add", self.bridge, "type", "bridge")
            self.made.append(("link", self.bridge))
            run("ip", "addr", "add", f"{self.subnet}.254/24", "dev", self.bridge)
            run("ip", "link", "set", self.bridge, "up")
            for i in range(1, count + 1):
                ns = self.ns(i)
                run("ip", "netns", "add", ns)
                self.made.append(("netns", ns))
                veth = f"{self.tag}v{i}"
                run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
                self.made.append(("link", veth))
                run("ip", "link", "set", veth, "master", self.bridge, "up")
                run("ip", "-n", ns, "addr", "add", f"{self.addr(i)}/24", "dev", "eth0")
                run("ip", "-n", ns, "link", "set", "eth0", "up")
                run("ip", "-n", ns, "link", "set", "lo", "up")
                rules = (
                    "table inet faults {\n"
                    "  chain input { type filter hook input priority 0; }\n"
                    "  chain output { type filter hook output priority 0; }\n"
                    "}\n"
                )
                subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=rules,
                               text=True, check=True, capture_output=True)
        except Exception:
            self.close()
            raise

    def ns(self, i):
        return f"{self.tag}n{i}"

    def addr(self, i):
        return f"{self.subnet}.{i}"

    def cut(self, a, b, both=True):
        """Node A stops sending to B (and, BOTH, hearing from it)."""
        run("nft", "add", "rule", "inet", "faults", "output", "ip", "daddr", self.addr(b), "drop", ns=self.ns(a))
        if both:
            run("nft", "add", "rule", "inet", "faults", "input", "ip", "saddr", self.addr(b), "drop", ns=self.ns(a))

    def drop_share(self, a, b, percent):
        """PERCENT % of what node A sends to B is lost."""
        run("nft", "add", "rule", "inet", "faults", "output", "ip", "daddr", self.addr(b),
            "numgen", "random", "mod", "100", "<", str(percent), "drop", ns=self.ns(a))

    def loss(self, a, percent):
        """A share of what node A sends to the other nodes is lost."""
        for b in range(1, self.count + 1):
            if b != a:
                self.drop_share(a, b, percent)

    def loss_between(self, a, b, percent):
        """A share of what A and B send each other is lost."""
        self.drop_share(a, b, percent)
        self.drop_share(b, a, percent)

    def relay(self, a, b, delay_ms, log):
        """Node A's connections to B's cluster port go through a delaying
        relay in A's namespace (delayer.py; idle until delay() turns it
        on). Returns the relay's process."""
        ns = self.ns(a)
        rules = (
            "table ip relay {\n"
            "  chain output { type nat hook output priority -100; }\n"
            "}\n"
        )
        subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=rules,
                       text=True, check=True, capture_output=True)
        run("nft", "add", "rule", "ip", "relay", "output", "ip", "daddr", self.addr(b), "tcp", "dport",
            str(CLUSTER_PORT), "meta", "mark", "!=", str(RELAY_MARK), "redirect", "to", f":{RELAY_PORT}", ns=ns)
        proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, DELAYER, str(RELAY_PORT),
                                 str(delay_ms), str(RELAY_MARK)], stdout=subprocess.PIPE, stderr=log, text=True)
        if proc.stdout.readline().strip() != "listening":
            proc.kill()
            raise RuntimeError(f"the delaying relay in {ns} did not start")
        return proc

    def heal(self):
        for i in range(1, self.count + 1):
            for chain in ("input", "output"):
                run("nft", "flush", "chain", "inet", "faults", chain, ns=self.ns(i))

    def close(self):
        for kind, name in reversed(self.made):
            if kind == "netns":
                run("ip", "netns", "del", name, check=False)
            else:
                run("ip", "link", "del", name, check=False)
        self.made = []


class Cluster:
    """keymesh nodes from genclust, each in its namespace."""

    def __init__(self, binary, net, work, env=None, node_env=None):
        self.binary, self.net, self.work = binary, net, work
        self.env = env or {}
        self.procs = {}
        self.runs = {}
        self.unready = {}  # node -> [[from, until]]: not to be sent traffic
        out = subprocess.run([binary, "genclust", "--nodes", str(net.count), "--out", os.path.join(work, "c")],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"genclust: {out.stderr}")
        seeds = ",".join(f"{net.addr(i)}:{CLUSTER_PORT}" for i in range(1, net.count + 1))
        self.node_env = {}
        for i in range(1, net.count + 1):
            self.node_env[i] = {
                "KEYMESH_HTTP_LISTEN": f"{net.addr(i)}:{HTTP_PORT}",
                "KEYMESH_CLUSTER_LISTEN": f"{net.addr(i)}:{CLUSTER_PORT}",
                "KEYMESH_CLUSTER_SEEDS": seeds,
                "KEYMESH_CLUSTER_HEARTBEAT": HEARTBEAT,
                "KEYMESH_CLUSTER_FAILURE_TIMEOUT": FAILURE_TIMEOUT,
                **self.env,
                **(node_env or {}).get(i, {}),
            }
        self.keys = {}

    def config(self, i):
        return os.path.join(self.work, f"c/node-{i}/keymesh.yaml")

    def admin_key(self, i):
        if i not in self.keys:
            with open(os.path.join(self.work, f"c/node-{i}/data/admin.keys")) as f:
                self.keys[i] = [l.strip() for l in f if l.strip() and not l.startswith("#")][0]
        return self.keys[i]

    def start(self, i):
        if i not in self.runs:
            self.unready.setdefault(i, []).append([time.time(), None])
        self.runs[i] = self.runs.get(i, 0) + 1
        env = {k: v for k, v in os.environ.items() if not k.startswith("KEYMESH_")}
        env.update(self.node_env[i])
        log = open(os.path.join(self.work, f"node-{i}-{self.runs[i]}.log"), "w")
        self.procs[i] = subprocess.Popen(
            ["ip", "netns", "exec", self.net.ns(i), self.binary, "serve", "--config", self.config(i)],
            env=env, stdout=log, stderr=subprocess.STDOUT)

    def serving(self, i, t):
        """Whether node I was ready at T: not between a kill (or its first
        start) and the next time a scenario saw it ready."""
        return not any(start <= t and (end is None or t < end) for start, end in self.unready.get(i, []))

    def await_ready(self, i, seconds=30):
        self.wait(f"node {i} ready", lambda: self.ready(i), seconds)
        for span in self.unready.get(i, []):
            if span[1] is None:
                span[1] = time.time()

    def signal(self, i, sig):
        p = self.procs.get(i)
        if p and p.poll() is None:
            os.kill(p.pid, sig)

    def kill(self, i):
        p = self.procs.get(i)
        self.unready.setdefault(i, []).append([time.time(), None])
        if p and p.poll() is None:
            os.kill(p.pid, signal.SIGCONT)
            os.kill(p.pid, signal.SIGKILL)
            p.wait(10)

    def stop_all(self):
        for i in list(self.procs):
            self.kill(i)

    def call(self, i, method, path, body=None, timeout=3.0):
        """(status, json or None); status 0 when the node did not answer."""
        try:
            key = self.admin_key(i)  # written by the node as it starts
        except OSError:
            return 0, None
        return keymesh_http.call(self.net.addr(i), HTTP_PORT, key, method, path, body, timeout)

    def ready(self, i):
        return self.call(i, "GET", "/healthz/ready", timeout=1.0)[0] == 200

    def linked(self, nodes):
        for i in nodes:
            status, view = self.call(i, "GET", "/api/cluster", timeout=1.0)
            if status != 200:
                return False
            up = {m["instance_id"] for m in view.get("members", []) if m.get("state") == "up"}
            if any(f"node-{j}" not in up for j in nodes if j != i):
                return False
        return True

    def clock_offsets(self, i):
        """Node I's measured clock offsets of its peers: {id: ms}."""
        status, view = self.call(i, "GET", "/api/cluster", timeout=1.0)
        if status != 200:
            return {}
        return {m["instance_id"]: m["clock_offset_ms"] for m in view.get("members", [])
                if "clock_offset_ms" in m}

    def wait(self, what, fn, seconds):
        deadline = time.time() + seconds
        while time.time() < deadline:
            if fn():
                return True
            time.sleep(0.1)
        raise RuntimeError(f"{what} within {seconds} s")


class MariaDB:
    """A MariaDB server the nodes share, on the bridge's address."""

    PASSWORD = "faults-password-1"

    def __init__(self, net, work):
        self.host, self.port = f"{net.subnet}.254", 3306
        self.dir = os.path.join(work, "db")
        self.socket = os.path.join(self.dir, "mysqld.sock")
        self.password_file = os.path.join(work, "db-password")
        os.makedirs(self.dir)
        with open(self.password_file, "w") as f:
            f.write(self.PASSWORD + "\n")
        user = subprocess.run(["whoami"], capture_output=True, text=True).stdout.strip()
        out = subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={self.dir}/data",
                              "--auth-root-authentication-method=normal", "--skip-test-db", f"--user={user}"],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"mariadb-install-db: {out.stderr}")
        log = open(os.path.join(self.dir, "server.log"), "w")
        self.proc = subprocess.Popen(
            ["/usr/sbin/mariadbd", "--no-defaults", f"--datadir={self.dir}/data", f"--socket={self.socket}",
             f"--port={self.port}", f"--bind-address={self.host}", f"--user={user}",
             f"--pid-file={self.dir}/mysqld.pid", "--skip-name-resolve"],
            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.sql("SELECT 1", check=False):
                break
            if self.proc.poll() is not None:
                raise RuntimeError("mariadbd exited")
            time.sleep(0.2)
        else:
            raise RuntimeError("mariadbd did not come up")
        self.sql("CREATE DATABASE keymesh; CREATE USER 'keymesh'@'%' IDENTIFIED BY "
                 f"'{self.PASSWORD}'; GRANT ALL ON keymesh.* TO 'keymesh'@'%';")

    def sql(self, text, check=True):
        out = subprocess.run(["mariadb", "--no-defaults", f"--socket={self.socket}", "-u", "root", "-e", text],
                             capture_output=True, text=True)
        if check and out.returncode != 0:
            raise RuntimeError(f"mariadb: {out.stderr}")
        return out.returncode == 0

    def env(self):
        return {
            "KEYMESH_DATABASE_DRIVER": "mysql",
            "KEYMESH_DATABASE_HOST": self.host,
            "KEYMESH_DATABASE_PORT": str(self.port),
            "KEYMESH_DATABASE_PASSWORD_FILE": self.password_file,
            "KEYMESH_DATABASE_HEALTH_INTERVAL": "200ms",
            "KEYMESH_DATABASE_CONNECT_TIMEOUT": "1s",
        }

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


class History:
    """Every operation with its answer, and the checks on them."""

    def __init__(self):
        self.lock = threading.Lock()
        self.ops = []  # (kind, node, start, end, ok, detail)
        self.created = {}  # sid -> (node that acknowledged it, when)
        self.revoked = {}  # sid -> (ack time, nodes it reached)
        self.maybe_revoked = set()  # revocations without a 200: in force or not
        self.tokens = {}  # token -> sid
        self.minted = {}  # token -> (node, start)
        self.accepts = []  # (node, token, start)
        self.refusals = []  # (node, token, start, error)
        self.reads = []  # (sid, node, start, status)
        self.winners = {}  # object id -> [node ...]

    def add(self, kind, node, start, ok, detail=None):
        with self.lock:
            self.ops.append((kind, node, start, time.time(), ok, detail))


class Load:
    """One client per node, each running a mix until stopped."""

    def __init__(self, cluster, nodes, history, seed=1):
        self.cluster, self.nodes, self.h = cluster, nodes, history
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.client, args=(n, seed + n), daemon=True) for n in nodes]
        self.objects = 0
        # Consume races run beside the clients (a paused node must not
        # hold every client up); finish() waits for them.
        self.racers = []

    def start(self):
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads + self.racers:
            t.join(30)

    def client(self, node, seed):
        rng = random.Random(seed)
        c, h = self.cluster, self.h
        mine = []
        n = 0
        while not self.stop.is_set():
            n += 1
            op = rng.random()
            t0 = time.time()
            if op < 0.3 or not mine:
                status, body = c.call(node, "POST", "/api/sessions", {"sub": f"f-{node}-{n}"})
                ok = status == 201
                if ok:
                    with h.lock:
                        h.created[body["sid"]] = (node, time.time())
                    mine.append(body["sid"])
                h.add("create", node, t0, ok, status)
            elif op < 0.5:
                sid = rng.choice(mine)
                status, _ = c.call(node, "GET", f"/api/sessions/{sid}")
                with h.lock:
                    h.reads.append((sid, node, t0, status))
                h.add("read", node, t0, status in (200, 404), status)
            elif op < 0.6:
                sid = rng.choice(mine)
                status, _ = c.call(node, "PATCH", f"/api/sessions/{sid}", {"touch": True})
                h.add("touch", node, t0, status in (200, 404), status)
            elif op < 0.7:
                sid = mine.pop(rng.randrange(len(mine)))
                status, body = c.call(node, "DELETE", f"/api/sessions/{sid}")
                ok = status == 200
                if ok:
                    reached = set(range(1, c.net.count + 1)) - {
                        int(u.split("-")[-1]) for u in body.get("unreached", []) if u.startswith("node-")}
                    with h.lock:
                        h.revoked[sid] = (time.time(), reached)
                else:
                    # Refused or unanswered: it may be in force on the
                    # nodes it reached (a 503 says so), or not at all.
                    with h.lock:
                        h.maybe_revoked.add(sid)
                h.add("revoke", node, t0, ok, status)
            elif op < 0.9:
                sid = rng.choice(mine)
                status, body = c.call(node, "POST", f"/api/sessions/{sid}/tokens", {})
                if status == 201:
                    with h.lock:
                        h.tokens[body["token"]] = sid
                        h.minted[body["token"]] = (node, t0)
                    target = rng.choice(self.nodes)
                    t1 = time.time()
                    vstatus, v = c.call(target, "POST", "/api/verify", {"token": body["token"]})
                    if vstatus == 200 and v.get("active"):
                        with h.lock:
                            h.accepts.append((target, body["token"], t1))
                    elif vstatus == 200:
                        with h.lock:
                            h.refusals.append((target, body["token"], t1, v.get("reason")))
                    h.add("verify", target, t1, vstatus == 200, vstatus)
                h.add("token", node, t0, status in (201, 404), status)
            else:
                # A value every client races to consume once.
                with h.lock:
                    self.objects += 1
                    oid = f"o-{self.objects}"
                status, _ = c.call(node, "PUT", f"/api/objects/Fault/{oid}", {"value": {"n": n}, "ttl": 600})
                h.add("put", node, t0, status == 200, status)
                if status == 200:
                    def race(who, oid=oid):
                        s, _ = c.call(who, "POST", f"/api/objects/Fault/{oid}/consume",
                                      {"idempotency_key": f"{oid}-{who}"})
                        if s == 200:
                            with h.lock:
                                h.winners.setdefault(oid, []).append(who)
                    racers = [threading.Thread(target=race, args=(w,), daemon=True) for w in self.nodes]
                    for r in racers:
                        r.start()
                    with h.lock:
                        self.racers = [r for r in self.racers if r.is_alive()] + racers
            time.sleep(0.005)


def check(cluster, history, nodes):
    """The promises after healing: (problems, stale reads)."""
    problems = []
    h = history
    revoked = dict(h.revoked)
    for sid, (node, _) in list(h.created.items()):
        if sid in h.maybe_revoked:
            continue
        for i in nodes:
            status, _ = cluster.call(i, "GET", f"/api/sessions/{sid}")
            if sid in revoked:
                if status != 404:
                    problems.append(f"revoked {sid} answered {status} by node-{i}")
            elif status != 200:
                problems.append(f"acknowledged {sid} (node-{node}) answered {status} by node-{i}")
    for token, sid in list(h.tokens.items()):
        if sid in revoked:
            for i in nodes:
                status, v = cluster.call(i, "POST", "/api/verify", {"token": token})
                if status != 200 or v.get("active"):
                    problems.append(f"token of revoked {sid} accepted by node-{i} after healing")
                    break
    for node, token, t in h.accepts:
        sid = h.tokens.get(token)
        if sid in revoked:
            acked, reached = revoked[sid]
            if t > acked and node in reached:
                problems.append(f"node-{node} accepted a token of {sid} {t - acked:.3f} s after its revocation reached it")
    for oid, who in h.winners.items():
        if len(who) > 1:
            problems.append(f"{oid} consumed by {len(who)} callers: {who}")
    return problems


def enforced_when_ready(cluster, history, node):
    """Right after NODE reports ready: every token of a session whose
    revocation was acknowledged before that is refused by it. (A node
    that was away must have taken the revocations it missed before it
    says it is ready.)"""
    ready_at = time.time()
    h = history
    with h.lock:
        revoked = {sid for sid, (acked, _) in h.revoked.items() if acked < ready_at}
        tokens = [(t, sid) for t, sid in h.tokens.items() if sid in revoked]
    problems = []
    for token, sid in tokens:
        status, v = cluster.call(node, "POST", "/api/verify", {"token": token})
        if status == 200 and v.get("active"):
            problems.append(f"node-{node} accepted a token of revoked {sid} "
                            f"{time.time() - ready_at:.3f} s after it reported ready")
    return problems


def false_refusals(cluster, history):
    """Verifies that answered active: false for a token of a session not
    revoked (not even possibly) by then, both nodes ready (a load balancer
    sends a node nothing before): {"node-N reason": count}."""
    h = history
    out = {}
    for node, token, t, reason in h.refusals:
        sid = h.tokens.get(token)
        if sid in h.maybe_revoked or (sid in h.revoked and h.revoked[sid][0] <= t):
            continue
        minter, minted = h.minted[token]
        if not cluster.serving(node, t) or not cluster.serving(minter, minted):
            continue
        key = f"node-{node} {reason}"
        out[key] = out.get(key, 0) + 1
    return out


def p99_ms(ops):
    """The 99th percentile of the operations' durations, in ms."""
    if not ops:
        return None
    took = sorted(o[3] - o[2] for o in ops)
    return round(1000 * took[min(len(took) - 1, int(len(took) * 0.99))])


def stale_reads(history, since=0.0):
    """Reads (started after SINCE) that answered 404 for a session
    acknowledged before the read started and not revoked (not even
    possibly) by then."""
    h = history
    n = 0
    for sid, node, t, status in h.reads:
        if t < since:
            continue
        if status != 404 or sid in h.maybe_revoked:
            continue
        revoked = h.revoked.get(sid)
        if h.created.get(sid, (0, t))[1] < t and (revoked is None or revoked[0] > t):
            n += 1
    return n


def converge(cluster, history, nodes, seconds):
    """Seconds from now until every check passes (or the problems left)."""
    t0 = time.time()
    problems = []
    while time.time() - t0 < seconds:
        started = time.time()
        problems = check(cluster, history, nodes)
        if not problems:
            return started - t0, []
        time.sleep(0.5)
    return None, problems


SCENARIOS = {}


def scenario(name, faulted, size=3, start=(1, 2, 3), final=(1, 2, 3), database=False,
             relayed=None, node_env=None):
    """Registers a scenario. FAULTED: the node the fault is done to; SIZE:
    the nodes genclust makes; START: those running (with a client each)
    before the fault; FINAL: those checked after it; DATABASE: the nodes
    share a MariaDB server instead of a SQLite file each; RELAYED: (a, b,
    ms): the link between nodes a and b runs through delaying relays from
    the start (the scenario turns the delay on); NODE_ENV: {node: {KEYMESH_*:
    value}} for the whole run."""
    def register(fn):
        fn.faulted, fn.size, fn.start, fn.final = faulted, size, list(start), list(final)
        fn.database, fn.relayed, fn.node_env = database, relayed, node_env or {}
        SCENARIOS[name] = fn
        return fn
    return register


@scenario("partition", 3)
def partition(net, cluster, history, hold):
    """Node 3 cut from nodes 1 and 2, both ways."""
    for other in (1, 2):
        net.cut(3, other)
        net.cut(other, 3)
    time.sleep(hold)
    net.heal()


@scenario("one-way", 3)
def one_way(net, cluster, history, hold):
    """Node 3 hears nodes 1 and 2, but what it sends them is lost."""
    for other in (1, 2):
        net.cut(3, other, both=False)
    time.sleep(hold)
    net.heal()


@scenario("loss", 3)
def loss(net, cluster, history, hold):
    """20 % of what node 3 sends to the others is lost."""
    net.loss(3, 20)
    time.sleep(hold)
    net.heal()


@scenario("slow-link", 2, relayed=(1, 2, 200))
def slow_link(net, cluster, history, hold):
    """The link between nodes 1 and 2 slowed by 200 ms each way (a relay
    holds every chunk) and 20 % of its packets lost, both directions."""
    for relay in cluster.relays:
        relay.send_signal(signal.SIGUSR1)
    net.loss_between(1, 2, 20)
    time.sleep(hold)
    net.heal()
    for relay in cluster.relays:
        relay.send_signal(signal.SIGUSR2)


@scenario("clock-ahead", 3, node_env={3: {"KEYMESH_NODE_CLOCK_OFFSET": "30s"}})
def clock_ahead(net, cluster, history, hold):
    """Node 3's clock runs 30 s ahead for the whole run (node.clock_offset);
    the others must see it (clock_offset_ms in /api/cluster)."""
    time.sleep(hold)
    problems = []
    for i, peer, expected in ((1, "node-3", 30000), (3, "node-1", -30000)):
        seen = cluster.clock_offsets(i).get(peer)
        if seen is None or abs(seen - expected) > 1000:
            problems.append(f"node-{i} measured {peer}'s clock offset as {seen} ms, not about {expected}")
    return problems


@scenario("pause", 1)
def pause(net, cluster, history, hold):
    """Node 1 paused (SIGSTOP) for longer than the failure timeout."""
    cluster.signal(1, signal.SIGSTOP)
    time.sleep(max(hold, 3.5))
    cluster.signal(1, signal.SIGCONT)


@scenario("kill", 2)
def kill(net, cluster, history, hold):
    """Node 2 killed (-9), restarted after a while; once ready it enforces
    the revocations made while it was down."""
    cluster.kill(2)
    time.sleep(hold)
    cluster.start(2)
    cluster.await_ready(2)
    return enforced_when_ready(cluster, history, 2)


@scenario("split", 3, size=4, start=(1, 2, 3, 4), final=(1, 2, 3, 4))
def split(net, cluster, history, hold):
    """A 4-node cluster split 2/2 (1 and 2 | 3 and 4): no side is a
    majority."""
    for a in (1, 2):
        for b in (3, 4):
            net.cut(a, b)
            net.cut(b, a)
    time.sleep(hold)
    net.heal()


@scenario("join-kill", 2, size=4, start=(1, 2, 3), final=(1, 2, 3, 4))
def join_kill(net, cluster, history, hold):
    """Node 4 joins, and node 2 is killed (-9) while the partitions are
    handed over; restarted after a while."""
    cluster.start(4)
    time.sleep(0.3)
    cluster.kill(2)
    time.sleep(hold)
    cluster.start(2)
    cluster.await_ready(2)
    problems = enforced_when_ready(cluster, history, 2)
    cluster.await_ready(4)
    return problems + enforced_when_ready(cluster, history, 4)


@scenario("database", 3, database=True)
def database(net, cluster, history, hold):
    """The shared database unreachable from node 3 only."""
    run("nft", "add", "rule", "inet", "faults", "output", "ip", "daddr", f"{net.subnet}.254",
        "tcp", "dport", "3306", "drop", ns=net.ns(3))
    time.sleep(hold)
    net.heal()


def run_scenario(name, binary, hold, warm):
    spec = SCENARIOS[name]
    net = Net(spec.size)
    work = tempfile.mkdtemp(prefix="keymesh-faults-")
    db = None
    relays = []
    try:
        db = MariaDB(net, work) if spec.database else None
        cluster = Cluster(binary, net, work, db.env() if db else None, spec.node_env)
        if spec.relayed:
            a, b, ms = spec.relayed
            log = open(os.path.join(work, "relays.log"), "w")
            relays.append(net.relay(a, b, ms, log))
            relays.append(net.relay(b, a, ms, log))
        cluster.relays = relays
    except Exception:
        for relay in relays:
            relay.kill()
        if db:
            db.stop()
        net.close()
        shutil.rmtree(work, ignore_errors=True)
        raise
    nodes = spec.start
    try:
        for i in nodes:
            cluster.start(i)
        cluster.wait("the cluster linked", lambda: all(cluster.ready(i) for i in nodes) and cluster.linked(nodes), 30)
        for i in nodes:
            cluster.await_ready(i)
        history = History()
        load = Load(cluster, nodes, history)
        load.start()
        time.sleep(warm)
        fault_start = time.time()
        early = SCENARIOS[name](net, cluster, history, hold) or []
        healed = time.time()
        cluster.wait("the cluster linked again", lambda: cluster.linked(spec.final), 60)
        relinked = time.time()
        time.sleep(warm)
        load.finish()
        convergence, problems = converge(cluster, history, spec.final, 30)
        problems = early + problems
        during = [o for o in history.ops if fault_start <= o[2] <= healed]
        figures = {
            "scenario": name,
            "operations": len(history.ops),
            "acknowledged_creates": len(history.created),
            "acknowledged_revocations": len(history.revoked),
            "unanswered_revocations": len(history.maybe_revoked),
            "stale_reads": stale_reads(history),
            # The same, from 1 s after every node saw every other up again.
            "stale_after_heal": stale_reads(history, relinked + 1.0),
            "verifies_accepted": len(history.accepts),
            # Tokens of sessions never revoked that a node refused, by error.
            "refused_live": false_refusals(cluster, history),
            "consumes_won": sum(len(w) for w in history.winners.values()),
            "lost": sum(1 for p in problems if p.startswith("acknowledged")),
            "violations": len(problems),
            "relink_s": round(relinked - healed, 1),
            "converged_s": None if convergence is None else round(convergence, 1),
            # Operations of the clients of the other nodes during the fault
            # that failed (the faulted node's own clients are expected to).
            "errors_elsewhere": "{}/{}".format(
                sum(1 for o in during if not o[4] and o[1] != SCENARIOS[name].faulted),
                sum(1 for o in during if o[1] != SCENARIOS[name].faulted)),
            "p99_ms_during": p99_ms(during),
            "errors_at_faulted": "{}/{}".format(
                sum(1 for o in during if not o[4] and o[1] == SCENARIOS[name].faulted),
                sum(1 for o in during if o[1] == SCENARIOS[name].faulted)),
        }
        if problems:
            for p in problems[:20]:
                print(f"  {name}: {p}")
        return figures, problems
    finally:
        cluster.stop_all()
        for relay in cluster.relays:
            relay.kill()
            relay.wait(10)
        if db:
            db.stop()
        net.close()
        if os.environ.get("KEEP_FAULTS_DIR"):
            print(f"  {name}: logs in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bin", default=os.environ.get("KEYMESH_BIN", "build/keymesh"))
    parser.add_argument("--short", action="store_true", help="a few scenarios, briefly (ctest)")
    parser.add_argument("--only", action="append", help="run these scenarios (repeatable)")
    parser.add_argument("--hold", type=float, default=6.0, help="seconds each fault lasts")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("faults: needs root (network namespaces and nftables)")
    # A timeout (ctest's) or ^C still stops the nodes and removes the
    # namespaces and the bridge: the finally blocks run.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    for tool in ("ip", "nft"):
        if not shutil.which(tool):
            sys.exit(f"faults: {tool} is missing (scripts/setup installs it)")
    names = args.only or (["partition", "kill", "slow-link", "clock-ahead"] if args.short else list(SCENARIOS))
    if any(SCENARIOS[n].database for n in names if n in SCENARIOS):
        for tool in ("mariadb-install-db", "mariadb", "/usr/sbin/mariadbd"):
            if not shutil.which(tool):
                sys.exit(f"faults: {tool} is missing (scripts/setup installs mariadb-server)")
    hold = min(args.hold, 4.0) if args.short else args.hold
    results, failed = [], False
    for name in names:
        figures, problems = run_scenario(name, args.bin, hold, 2.0 if args.short else 3.0)
        results.append(figures)
        failed = failed or bool(problems)
        print(" ".join(f"{k}={v}" for k, v in figures.items()), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
