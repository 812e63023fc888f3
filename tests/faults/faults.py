#!/usr/bin/env python3
"""Fault injection on a real keymesh cluster.

Each node runs in a network namespace this script creates (veth pairs on a
bridge, addresses 10.231.K.i, all removed at the end), so that it can cut
the links between nodes both ways or one way and drop a share of their
packets (nftables in each namespace), pause a node (SIGSTOP), kill it (-9)
and restart it. Each scenario runs a bounded mixed load from a client per
node (session creates, reads, touches, revocations, token verifies,
single-use consumes), records every operation with its answer, injects
the fault, heals it, waits for the cluster to converge and checks the
history:

- every acknowledged create is readable on every node afterwards;
- every acknowledged revocation is enforced by every node afterwards, and
  no node that the revocation reached accepted the token after the
  revocation was acknowledged;
- a single-use value was won by at most one caller.

It prints one line of figures per scenario (and --json writes them).
Needs root (namespaces, nftables); run by `make faults`, and by ctest as
faults.short.
"""

import argparse
import http.client
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

HEARTBEAT = "500ms"
FAILURE_TIMEOUT = "2s"
HTTP_PORT = 8080
CLUSTER_PORT = 7401


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

    def loss(self, a, percent):
        """A share of what node A sends to the other nodes is lost."""
        for b in range(1, self.count + 1):
            if b != a:
                run("nft", "add", "rule", "inet", "faults", "output", "ip", "daddr", self.addr(b),
                    "numgen", "random", "mod", "100", "<", str(percent), "drop", ns=self.ns(a))

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

    def __init__(self, binary, net, work, env=None):
        self.binary, self.net, self.work = binary, net, work
        self.env = env or {}
        self.procs = {}
        self.runs = {}
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
        self.runs[i] = self.runs.get(i, 0) + 1
        env = {k: v for k, v in os.environ.items() if not k.startswith("KEYMESH_")}
        env.update(self.node_env[i])
        log = open(os.path.join(self.work, f"node-{i}-{self.runs[i]}.log"), "w")
        self.procs[i] = subprocess.Popen(
            ["ip", "netns", "exec", self.net.ns(i), self.binary, "serve", "--config", self.config(i)],
            env=env, stdout=log, stderr=subprocess.STDOUT)

    def signal(self, i, sig):
        p = self.procs.get(i)
        if p and p.poll() is None:
            os.kill(p.pid, sig)

    def kill(self, i):
        p = self.procs.get(i)
        if p and p.poll() is None:
            os.kill(p.pid, signal.SIGCONT)
            os.kill(p.pid, signal.SIGKILL)
            p.wait(10)

    def stop_all(self):
        for i in list(self.procs):
            self.kill(i)

    def call(self, i, method, path, body=None, timeout=3.0):
        """(status, json or None); status 0 when the node did not answer."""
        conn = http.client.HTTPConnection(self.net.addr(i), HTTP_PORT, timeout=timeout)
        try:
            headers = {"Authorization": f"Bearer {self.admin_key(i)}"}
            data = None
            if body is not None:
                data = json.dumps(body)
                headers["Content-Type"] = "application/json"
            conn.request(method, path, body=data, headers=headers)
            res = conn.getresponse()
            text = res.read()
            try:
                return res.status, json.loads(text) if text else None
            except ValueError:
                return res.status, None
        except (OSError, http.client.HTTPException):
            return 0, None
        finally:
            conn.close()

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
        self.accepts = []  # (node, token, start)
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
                    target = rng.choice(self.nodes)
                    t1 = time.time()
                    vstatus, v = c.call(target, "POST", "/api/verify", {"token": body["token"]})
                    if vstatus == 200 and v.get("active"):
                        with h.lock:
                            h.accepts.append((target, body["token"], t1))
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


def stale_reads(history):
    """Reads that answered 404 for a session acknowledged before the read
    started and not revoked (not even possibly) by then."""
    h = history
    n = 0
    for sid, node, t, status in h.reads:
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


def scenario(name, faulted, size=3, start=(1, 2, 3), final=(1, 2, 3), database=False):
    """Registers a scenario. FAULTED: the node the fault is done to; SIZE:
    the nodes genclust makes; START: those running (with a client each)
    before the fault; FINAL: those checked after it; DATABASE: the nodes
    share a MariaDB server instead of a SQLite file each."""
    def register(fn):
        fn.faulted, fn.size, fn.start, fn.final = faulted, size, list(start), list(final)
        fn.database = database
        SCENARIOS[name] = fn
        return fn
    return register


@scenario("partition", 3)
def partition(net, cluster, hold):
    """Node 3 cut from nodes 1 and 2, both ways."""
    for other in (1, 2):
        net.cut(3, other)
        net.cut(other, 3)
    time.sleep(hold)
    net.heal()


@scenario("one-way", 3)
def one_way(net, cluster, hold):
    """Node 3 hears nodes 1 and 2, but what it sends them is lost."""
    for other in (1, 2):
        net.cut(3, other, both=False)
    time.sleep(hold)
    net.heal()


@scenario("loss", 3)
def loss(net, cluster, hold):
    """20 % of what node 3 sends to the others is lost."""
    net.loss(3, 20)
    time.sleep(hold)
    net.heal()


@scenario("pause", 1)
def pause(net, cluster, hold):
    """Node 1 paused (SIGSTOP) for longer than the failure timeout."""
    cluster.signal(1, signal.SIGSTOP)
    time.sleep(max(hold, 3.5))
    cluster.signal(1, signal.SIGCONT)


@scenario("kill", 2)
def kill(net, cluster, hold):
    """Node 2 killed (-9), restarted after a while."""
    cluster.kill(2)
    time.sleep(hold)
    cluster.start(2)
    cluster.wait("node 2 ready again", lambda: cluster.ready(2), 30)


@scenario("split", 3, size=4, start=(1, 2, 3, 4), final=(1, 2, 3, 4))
def split(net, cluster, hold):
    """A 4-node cluster split 2/2 (1 and 2 | 3 and 4): no side is a
    majority."""
    for a in (1, 2):
        for b in (3, 4):
            net.cut(a, b)
            net.cut(b, a)
    time.sleep(hold)
    net.heal()


@scenario("join-kill", 2, size=4, start=(1, 2, 3), final=(1, 2, 3, 4))
def join_kill(net, cluster, hold):
    """Node 4 joins, and node 2 is killed (-9) while the partitions are
    handed over; restarted after a while."""
    cluster.start(4)
    time.sleep(0.3)
    cluster.kill(2)
    time.sleep(hold)
    cluster.start(2)
    cluster.wait("node 2 ready again", lambda: cluster.ready(2), 30)
    cluster.wait("node 4 ready", lambda: cluster.ready(4), 30)


@scenario("database", 3, database=True)
def database(net, cluster, hold):
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
    try:
        db = MariaDB(net, work) if spec.database else None
        cluster = Cluster(binary, net, work, db.env() if db else None)
    except Exception:
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
        history = History()
        load = Load(cluster, nodes, history)
        load.start()
        time.sleep(warm)
        fault_start = time.time()
        SCENARIOS[name](net, cluster, hold)
        healed = time.time()
        cluster.wait("the cluster linked again", lambda: cluster.linked(spec.final), 60)
        time.sleep(warm)
        load.finish()
        convergence, problems = converge(cluster, history, spec.final, 30)
        during = [o for o in history.ops if fault_start <= o[2] <= healed]
        figures = {
            "scenario": name,
            "operations": len(history.ops),
            "acknowledged_creates": len(history.created),
            "acknowledged_revocations": len(history.revoked),
            "unanswered_revocations": len(history.maybe_revoked),
            "stale_reads": stale_reads(history),
            "verifies_accepted": len(history.accepts),
            "consumes_won": sum(len(w) for w in history.winners.values()),
            "lost": sum(1 for p in problems if p.startswith("acknowledged")),
            "violations": len(problems),
            "relink_s": round(time.time() - healed, 1),
            "converged_s": None if convergence is None else round(convergence, 1),
            # Operations of the clients of the other nodes during the fault
            # that failed (the faulted node's own clients are expected to).
            "errors_elsewhere": "{}/{}".format(
                sum(1 for o in during if not o[4] and o[1] != SCENARIOS[name].faulted),
                sum(1 for o in during if o[1] != SCENARIOS[name].faulted)),
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
    names = args.only or (["partition", "kill"] if args.short else list(SCENARIOS))
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
