#!/usr/bin/env python3
"""Checks deploy/prometheus and deploy/grafana against promtool and against
the /metrics of a real 3-node keymesh cluster.

1. promtool (Debian's prometheus): `check config` of prometheus.yml,
   `check rules` of alerts.yaml, `test rules` of alerts_test.yaml. The
   Kubernetes variant (prometheus-kubernetes.yml) is checked too; Debian's
   promtool has no Kubernetes discovery, so it is then checked with static
   targets in its place, and its relabelling is applied to the pods of
   deploy/k8s (one target per pod, on the annotated port and path).
2. Every alert of alerts.yaml has a test in alerts_test.yaml.
3. A cluster of three nodes (genclust, 127.0.0.1, ports in 20000-32000,
   each node's data directory its own temporary directory, one admin key
   file) under a few seconds of load from threads: session creates, tokens,
   verifies, revocations (DELETE /api/sessions/{sid}, POST /api/revocations).
   Then, on each node's /metrics:
   - `promtool check metrics` prints no problem;
   - every metric name the alerts (expressions and annotations) and the
     dashboard's expressions use is in the live output (`up` is
     Prometheus's own), so renaming a metric breaks this test;
   - keymesh_revocations_total counted each revocation the node answered,
     under its kind and the propagation its answer gave;
   - the alerts, evaluated by promtool on the live samples, are all silent.
4. Node 3 is killed (SIGKILL): the others' /metrics show it with
   keymesh_cluster_member_up 0 and keymesh_cluster_members{state="down"} or
   "suspect" >= 1, both report keymesh_ready 1 again within 20 s (a survivor
   can be not ready, check "state", for a moment after the loss: it is
   logged), and promtool, fed those samples, fires KeymeshPeerDown
   naming node-3 and the node that sees it (and nothing else). A
   revocation on node 1 then counts under the propagation its answer gives
   (a killed member is not linked, so "complete"); with node 2 stopped
   (SIGSTOP) a revocation is "partial" (node 2 unreached) and counts so, and
   promtool fires KeymeshRevocationPartial on the samples before and after.

usage: prometheus_test.py --bin build/keymesh [--promtool /usr/bin/promtool]
Exits 0 when every check passes, 1 (printing each failure) otherwise; it
prints each check as it goes. Every wait is bounded; the nodes are killed
by pid at the end (and by PR_SET_PDEATHSIG if this script dies).
"""

import argparse
import ctypes
import http.client
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import keymesh_http  # noqa: E402  (tests/support/keymesh_http.py)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
PROM = os.path.join(ROOT, "deploy", "prometheus")
CONFIG = os.path.join(PROM, "prometheus.yml")
K8S_CONFIG = os.path.join(PROM, "prometheus-kubernetes.yml")
ALERTS = os.path.join(PROM, "alerts.yaml")
ALERTS_TEST = os.path.join(PROM, "alerts_test.yaml")
DASHBOARD = os.path.join(ROOT, "deploy", "grafana", "keymesh.json")
STATEFULSET = os.path.join(ROOT, "deploy", "k8s", "statefulset.yaml")
KUSTOMIZATION = os.path.join(ROOT, "deploy", "k8s", "kustomization.yaml")

LOAD_SECONDS = 4.0
LOAD_THREADS = 6

failures = []
START = time.time()


def log(text):
    print(f"[{time.time() - START:6.1f}s] {text}", flush=True)


def check(ok, what, detail=""):
    log(f"{'ok  ' if ok else 'FAIL'} {what}" + (f": {detail}" if detail and not ok else ""))
    if not ok:
        failures.append(what + (f": {detail}" if detail else ""))
    return ok


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, **kw)


# --- promtool ----------------------------------------------------------------

def static_checks(promtool, work):
    out = run([promtool, "check", "config", CONFIG])
    check(out.returncode == 0, "promtool check config deploy/prometheus/prometheus.yml",
          (out.stdout + out.stderr).strip())
    with open(CONFIG) as f:
        config = yaml.safe_load(f)
    check("alerts.yaml" in config.get("rule_files", []), "prometheus.yml loads alerts.yaml")
    check(any(s.get("job_name") == "keymesh" for s in config.get("scrape_configs", [])),
          "prometheus.yml has the scrape job keymesh")
    out = run([promtool, "check", "rules", ALERTS])
    check(out.returncode == 0, "promtool check rules deploy/prometheus/alerts.yaml", (out.stdout + out.stderr).strip())
    out = run([promtool, "test", "rules", os.path.basename(ALERTS_TEST)], cwd=PROM)
    check(out.returncode == 0, "promtool test rules deploy/prometheus/alerts_test.yaml",
          (out.stdout + out.stderr).strip()[-4000:])
    kubernetes_config(promtool, work)


def relabel(labels, rules):
    """Prometheus' relabelling (replace, keep, drop) of one target; None when dropped."""
    labels = dict(labels)
    for r in rules:
        action = r.get("action", "replace")
        value = r.get("separator", ";").join(labels.get(l, "") for l in r.get("source_labels", []))
        m = re.fullmatch(r.get("regex", "(.*)"), value)
        if action == "keep" and not m:
            return None
        if action == "drop" and m:
            return None
        if action == "replace" and m:
            result = re.sub(r"\$\{?(\w+)\}?", lambda g: m.group(int(g.group(1))) or "" if g.group(1).isdigit()
                            else m.group(g.group(1)) or "", r.get("replacement", "$1"))
            if result:
                labels[r["target_label"]] = result
            else:
                labels.pop(r["target_label"], None)
    return labels


def kubernetes_config(promtool, work):
    """prometheus-kubernetes.yml: promtool (with static targets in place of
    Kubernetes discovery when this promtool lacks it), and its relabelling
    applied to the pods of deploy/k8s."""
    out = run([promtool, "check", "config", K8S_CONFIG])
    if out.returncode != 0 and "kubernetes_sd_configs not found" in out.stdout + out.stderr:
        with open(K8S_CONFIG) as f:
            config = yaml.safe_load(f)
        for job in config["scrape_configs"]:
            if job.pop("kubernetes_sd_configs", None) is not None:
                job["static_configs"] = [{"targets": ["10.0.0.5:8080"]}]
        d = os.path.join(work, "k8s-config")
        os.makedirs(d)
        shutil.copy(ALERTS, d)
        with open(os.path.join(d, "prometheus.yml"), "w") as f:
            yaml.safe_dump(config, f)
        out = run([promtool, "check", "config", os.path.join(d, "prometheus.yml")])
        what = ("promtool check config deploy/prometheus/prometheus-kubernetes.yml "
                "(this promtool has no Kubernetes discovery: checked with static targets in its place)")
    else:
        what = "promtool check config deploy/prometheus/prometheus-kubernetes.yml"
    check(out.returncode == 0, what, (out.stdout + out.stderr).strip())

    with open(K8S_CONFIG) as f:
        config = yaml.safe_load(f)
    with open(STATEFULSET) as f:
        sts = yaml.safe_load(f)
    with open(KUSTOMIZATION) as f:
        namespace = yaml.safe_load(f).get("namespace", "default")
    jobs = [j for j in config["scrape_configs"] if j.get("kubernetes_sd_configs")]
    if not check(len(jobs) == 1 and jobs[0]["job_name"] == "keymesh",
                 "prometheus-kubernetes.yml: one job keymesh with Kubernetes discovery"):
        return
    job = jobs[0]
    sd = job["kubernetes_sd_configs"][0]
    check(sd.get("role") == "pod" and namespace in sd.get("namespaces", {}).get("names", [namespace]),
          f"prometheus-kubernetes.yml discovers pods in the namespace {namespace} of deploy/k8s")
    pod = sts["spec"]["template"]
    targets = set()
    for ordinal in range(sts["spec"]["replicas"]):
        for container in pod["spec"]["containers"]:
            for port in container.get("ports", []):
                meta = {"__address__": f"10.0.0.{5 + ordinal}:{port['containerPort']}",
                        "__metrics_path__": job.get("metrics_path", "/metrics"),
                        "__scheme__": "http", "job": job["job_name"],
                        "__meta_kubernetes_namespace": namespace,
                        "__meta_kubernetes_pod_name": f"{sts['metadata']['name']}-{ordinal}",
                        "__meta_kubernetes_pod_phase": "Running",
                        "__meta_kubernetes_pod_container_port_name": port.get("name", "")}
                for k, v in pod["metadata"].get("annotations", {}).items():
                    meta["__meta_kubernetes_pod_annotation_" + re.sub(r"[^a-zA-Z0-9_]", "_", k)] = str(v)
                labels = relabel(meta, job.get("relabel_configs", []))
                if labels is not None:
                    targets.add(tuple(sorted((k, v) for k, v in labels.items() if not k.startswith("__meta_"))))
    annotations = pod["metadata"].get("annotations", {})
    want = {(f"10.0.0.{5 + i}:{annotations.get('prometheus.io/port')}", annotations.get("prometheus.io/path"),
             f"{sts['metadata']['name']}-{i}", "keymesh") for i in range(sts["spec"]["replicas"])}
    got = {(dict(t)["__address__"], dict(t)["__metrics_path__"], dict(t).get("instance"), dict(t).get("job"))
           for t in targets}
    check(got == want, "prometheus-kubernetes.yml's relabelling gives one target per pod of deploy/k8s, "
          "on its prometheus.io/port and path, instance = pod name, job keymesh", f"got {sorted(got)}, want {sorted(want)}")


def alert_coverage():
    with open(ALERTS) as f:
        rules = [r for g in yaml.safe_load(f)["groups"] for r in g["rules"]]
    with open(ALERTS_TEST) as f:
        tests = yaml.safe_load(f)["tests"]
    tested = {t["alertname"] for g in tests for t in g.get("alert_rule_test", [])}
    firing = {t["alertname"] for g in tests for t in g.get("alert_rule_test", []) if t.get("exp_alerts")}
    alerts = [r["alert"] for r in rules if "alert" in r]
    for a in alerts:
        check(a in tested and a in firing, f"alert {a} has a test in alerts_test.yaml where it fires")
    return rules


# --- metric names in expressions ----------------------------------------------

KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
            "group_left", "group_right", "inf", "nan", "atan2", "start", "end"}


def metric_names(expr):
    """The metric names a PromQL expression selects (functions, keywords,
    label names, strings and ranges left out)."""
    e = expr.replace("$__rate_interval", "5m").replace("$__interval", "1m").replace("$__range", "1h")
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', e)
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = set()
    for m in re.finditer(r"(?<![\w.$])([a-zA-Z_:][\w:]*)(\s*\()?", e):
        if m.group(2) or m.group(1).lower() in KEYWORDS:
            continue
        names.add(m.group(1))
    return names


def used_names(rules):
    """{name: [where]} for the alerts and the dashboard."""
    used = {}
    for r in rules:
        for n in metric_names(r["expr"]):
            used.setdefault(n, []).append(f"alert {r.get('alert') or r.get('record')}")
        for text in r.get("annotations", {}).values():
            for n in re.findall(r"\b(keymesh_[a-z0-9_]+)", text):
                used.setdefault(n, []).append(f"alert {r.get('alert')} (annotation)")
    with open(DASHBOARD) as f:
        dash = json.load(f)

    def panels(ps):
        for p in ps:
            yield p
            yield from panels(p.get("panels", []))
    n_expr = 0
    for p in panels(dash.get("panels", [])):
        for t in p.get("targets", []):
            if t.get("expr"):
                n_expr += 1
                for n in metric_names(t["expr"]):
                    used.setdefault(n, []).append(f"dashboard panel {p.get('title')!r}")
    for v in dash.get("templating", {}).get("list", []):
        q = v.get("query")
        q = q.get("query", "") if isinstance(q, dict) else (q or "")
        m = re.match(r"\s*label_values\(\s*([a-zA-Z_:][\w:]*)", q)
        if m:
            used.setdefault(m.group(1), []).append(f"dashboard variable {v.get('name')}")
        elif v.get("type") == "query":
            for n in metric_names(q):
                used.setdefault(n, []).append(f"dashboard variable {v.get('name')}")
    return used, n_expr, dash


def dashboard_shape(dash):
    names = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
    check(names.get("datasource", {}).get("type") == "datasource"
          and names["datasource"].get("query") == "prometheus",
          "the dashboard has a Prometheus datasource variable")
    check("instance" in names, "the dashboard has an instance variable")
    bad = []

    def walk(ps):
        for p in ps:
            if p.get("type") != "row":
                ds = p.get("datasource", {})
                if not (isinstance(ds, dict) and ds.get("uid") == "${datasource}"):
                    bad.append(p.get("title"))
                for t in p.get("targets", []):
                    if "$instance" not in t.get("expr", "$instance"):
                        bad.append(f"{p.get('title')} (no $instance)")
            walk(p.get("panels", []))
    walk(dash.get("panels", []))
    check(not bad, "every dashboard panel uses ${datasource} and filters on $instance", ", ".join(map(str, bad)))


# --- the cluster ---------------------------------------------------------------

def free_run(n):
    """A port P in 20000-32000 with P .. P+n-1 free on 127.0.0.1."""
    for _ in range(200):
        base = random.randrange(20000, 32000 - n)
        socks = []
        try:
            for p in range(base, base + n):
                s = socket.socket()
                s.bind(("127.0.0.1", p))
                socks.append(s)
            return base
        except OSError:
            pass
        finally:
            for s in socks:
                s.close()
    sys.exit("no free ports in 20000-32000")


def pdeathsig():
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Cluster:
    def __init__(self, binary, work, count=3):
        self.binary, self.work, self.count = binary, work, count
        self.http = free_run(count)
        self.cport = free_run(count)
        while abs(self.cport - self.http) < count:
            self.cport = free_run(count)
        out = run([binary, "genclust", "--nodes", str(count), "--out", os.path.join(work, "c"),
                   "--http-port", str(self.http), "--cluster-port", str(self.cport)])
        if out.returncode != 0:
            sys.exit(f"genclust: {out.stderr}")
        self.key = secrets.token_urlsafe(32)
        self.keys_file = os.path.join(work, "admin.keys")
        with open(self.keys_file, "w") as f:
            f.write(f"# prometheus_test admin key\n{self.key}\n")
        os.chmod(self.keys_file, 0o600)
        self.dirs = {i: tempfile.mkdtemp(prefix=f"keymesh-prometheus-test-node{i}-") for i in range(1, count + 1)}
        self.procs = {}

    def start(self, i):
        env = {k: v for k, v in os.environ.items() if not k.startswith("KEYMESH_")}
        env.update({"KEYMESH_NODE_DATA_DIR": os.path.join(self.dirs[i], "data"),
                    "KEYMESH_HTTP_ADMIN_KEYS_FILE": self.keys_file,
                    # A linked peer that does not answer a revocation within
                    # this is reported unreached ("partial").
                    "KEYMESH_STATE_PEER_TIMEOUT": "1s"})
        logf = open(os.path.join(self.dirs[i], "node.log"), "w")
        self.procs[i] = subprocess.Popen(
            [self.binary, "serve", "--config", os.path.join(self.work, f"c/node-{i}/keymesh.yaml")],
            env=env, stdout=logf, stderr=subprocess.STDOUT, preexec_fn=pdeathsig)
        logf.close()

    def port(self, i):
        return self.http + i - 1

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
            try:
                self.kill(i)
            except (OSError, subprocess.TimeoutExpired):
                pass

    def cleanup(self):
        for d in self.dirs.values():
            shutil.rmtree(d, ignore_errors=True)

    def log_tail(self, i, n=15):
        try:
            with open(os.path.join(self.dirs[i], "node.log")) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def call(self, i, method, path, body=None, timeout=3.0, conn=None, raw=False):
        """(status, json or text); status 0 when the node did not answer."""
        return keymesh_http.call("127.0.0.1", self.port(i), self.key, method, path, body,
                                 timeout, conn, raw)

    def metrics(self, i):
        status, text = self.call(i, "GET", "/metrics", raw=True)
        return text if status == 200 else None

    def wait(self, what, fn, seconds):
        deadline = time.time() + seconds
        while time.time() < deadline:
            if fn():
                return True
            time.sleep(0.1)
        return False

    def linked(self):
        for i in self.procs:
            status, view = self.call(i, "GET", "/api/cluster", timeout=1.0)
            if status != 200:
                return False
            up = {m["instance_id"] for m in view.get("members", []) if m.get("state") == "up"}
            if any(f"node-{j}" not in up for j in self.procs if j != i):
                return False
        return True


def parse_metrics(text):
    """[(name, {labels}, value)] and the family names of # TYPE lines."""
    samples, families = [], set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            families.add(line.split()[2])
            continue
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)", line)
        if m:
            labels = dict((k, json.loads(f'"{v}"')) for k, v in re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
            try:
                value = float(m.group(3))
            except ValueError:
                continue
            samples.append((m.group(1), labels, value))
    return samples, families


def value(samples, name, **labels):
    """Sum of the samples of NAME whose labels include LABELS; None when there is none."""
    found = [v for n, l, v in samples if n == name and all(l.get(k) == w for k, w in labels.items())]
    return sum(found) if found else None


# --- load ------------------------------------------------------------------------

class Load:
    def __init__(self, cluster, nodes):
        self.cluster, self.nodes = cluster, nodes
        self.lock = threading.Lock()
        self.ops = {}          # kind -> [ok, failed]
        self.statuses = {}     # (op, status) -> n
        self.revocations = {}  # (node, kind, propagation) -> n

    def note(self, op, status):
        with self.lock:
            self.statuses[(op, status)] = self.statuses.get((op, status), 0) + 1
            self.ops.setdefault(op, [0, 0])[0 if 200 <= status < 300 else 1] += 1

    def revoked(self, node, kind, answer):
        with self.lock:
            key = (node, kind, answer.get("propagation"))
            self.revocations[key] = self.revocations.get(key, 0) + 1

    def client(self, seed, until):
        rnd = random.Random(seed)
        nodes = self.nodes
        conns = {i: http.client.HTTPConnection("127.0.0.1", self.cluster.port(i), timeout=5) for i in nodes}

        def call(i, method, path, body=None):
            status, answer = self.cluster.call(i, method, path, body, conn=conns[i])
            if status == 0:
                conns[i] = http.client.HTTPConnection("127.0.0.1", self.cluster.port(i), timeout=5)
            return status, answer
        n = 0
        while time.time() < until:
            n += 1
            a, b, c = rnd.sample(nodes, 3) if len(nodes) >= 3 else (nodes * 3)[:3]
            status, s = call(a, "POST", "/api/sessions", {"sub": f"user-{seed}-{n % 7}", "client_id": "web"})
            self.note("POST /api/sessions", status)
            if status != 201:
                continue
            sid = s["sid"]
            status, t = call(a, "POST", f"/api/sessions/{sid}/tokens", {})
            self.note("POST /api/sessions/{sid}/tokens", status)
            token = t.get("token") if status == 201 and isinstance(t, dict) else None
            if token:
                status, v = call(b, "POST", "/api/verify", {"token": token})
                self.note("POST /api/verify", status)
            which = n % 3
            if which == 0:
                status, r = call(c, "DELETE", f"/api/sessions/{sid}")
                op, kind = "DELETE /api/sessions/{sid}", "sid"
            elif which == 1:
                status, r = call(c, "POST", "/api/revocations", {"sid": sid, "reason": "prometheus_test"})
                op, kind = "POST /api/revocations sid", "sid"
            else:
                jti = secrets.token_urlsafe(16)
                status, r = call(c, "POST", "/api/revocations", {"jti": jti})
                op, kind = "POST /api/revocations jti", "jti"
            self.note(op, status)
            if status == 200 and isinstance(r, dict):
                self.revoked(c, kind, r)
            if status == 200 and which != 2 and token:
                # the token of the revoked session is refused at once
                # (the revoking node waited for the others' acknowledgement)
                if isinstance(r, dict) and r.get("propagation") == "complete":
                    status, v = call(b, "POST", "/api/verify", {"token": token})
                    self.note("POST /api/verify (revoked)", status)
                    if status == 200 and v.get("active") is not False:
                        with self.lock:
                            self.ops.setdefault("revoked token refused", [0, 0])[1] += 1
        for conn in conns.values():
            conn.close()

    def run(self, seconds, threads):
        until = time.time() + seconds
        ts = [threading.Thread(target=self.client, args=(k, until), daemon=True) for k in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(seconds + 20)


# --- alerts on live samples ------------------------------------------------------

def alert_names(rules):
    return [r["alert"] for r in rules if "alert" in r]


def live_alert_test(promtool, work, rules, snapshots, expected, what):
    """Feeds promtool the live samples (SNAPSHOTS: {instance: [text, ...]},
    each text a scrape, the last repeated) as series sampled every minute,
    and checks that at 10m exactly EXPECTED fire ({alert: [labels]}); the
    rules' annotations are left out (their text is tested in alerts_test.yaml)."""
    d = tempfile.mkdtemp(dir=work)
    stripped = {"groups": [{"name": "keymesh", "rules": [
        {k: v for k, v in r.items() if k != "annotations"} for r in rules]}]}
    with open(os.path.join(d, "rules.yaml"), "w") as f:
        yaml.safe_dump(stripped, f)
    used = set()
    for r in rules:
        used |= metric_names(r["expr"])
    series = {}
    for instance, texts in snapshots.items():
        steps = len(texts)
        for step, text in enumerate(texts):
            samples, _ = parse_metrics(text)
            for name, labels, v in samples:
                if name not in used:
                    continue
                labels = {**labels, "instance": instance, "job": "keymesh"}
                key = name + "{" + ",".join(f'{k}={json.dumps(v2)}' for k, v2 in sorted(labels.items())) + "}"
                series.setdefault(key, [None] * steps)[step] = v
        series[f'up{{instance="{instance}",job="keymesh"}}'] = [1.0] * steps
    input_series = []
    for key, values in series.items():
        # a scrape without the series: take the next one that has it
        filled = list(values)
        for k in range(len(filled) - 2, -1, -1):
            if filled[k] is None:
                filled[k] = filled[k + 1]
        filled = [v if v is not None else 0.0 for v in filled]
        # 3 samples of each scrape but the last, which is repeated to 20m
        parts = [f"{v!r}x2" for v in filled[:-1]] + [f"{filled[-1]!r}x20"]
        input_series.append({"series": key, "values": " ".join(parts)})
    tests = [{"interval": "1m", "input_series": input_series, "alert_rule_test": [
        {"eval_time": "10m", "alertname": a,
         "exp_alerts": [{"exp_labels": {**labels, **{k: v for k, v in rule_labels(rules, a).items()}}}
                        for labels in expected.get(a, [])]}
        for a in alert_names(rules)]}]
    with open(os.path.join(d, "test.yaml"), "w") as f:
        yaml.safe_dump({"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests}, f)
    out = run([promtool, "test", "rules", "test.yaml"], cwd=d)
    return check(out.returncode == 0, what, (out.stdout + out.stderr).strip()[-3000:])


def rule_labels(rules, alert):
    return next(r.get("labels", {}) for r in rules if r.get("alert") == alert)


# --- main ---------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("--promtool", default="/usr/bin/promtool")
    args = parser.parse_args()
    for tool in (args.bin, args.promtool):
        if not os.access(tool, os.X_OK):
            sys.exit(f"prometheus_test: {tool} is missing (promtool: Debian's prometheus package)")
    binary = os.path.abspath(args.bin)

    with tempfile.TemporaryDirectory(prefix="keymesh-prometheus-test-") as work:
        log("static checks")
        static_checks(args.promtool, work)
        rules = alert_coverage()
        used, n_expr, dash = used_names(rules)
        dashboard_shape(dash)
        log(f"{len(alert_names(rules))} alerts, {n_expr} dashboard expressions, {len(used)} metric names used")

        cluster = Cluster(binary, work)
        try:
            live_checks(cluster, args.promtool, work, rules, used)
        finally:
            cluster.stop_all()
            cluster.cleanup()

    for f in failures:
        print(f"FAIL: {f}")
    print(f"prometheus: {len(failures)} failure(s) in {time.time() - START:.1f} s")
    sys.exit(1 if failures else 0)


def live_checks(cluster, promtool, work, rules, used):
    log(f"starting 3 nodes: HTTP 127.0.0.1:{cluster.port(1)}-{cluster.port(3)}, "
        f"cluster {cluster.cport}-{cluster.cport + 2}")
    for i in (1, 2, 3):
        cluster.start(i)
    ready = cluster.wait("ready", lambda: all(cluster.call(i, "GET", "/healthz/ready", timeout=1.0)[0] == 200
                                               for i in (1, 2, 3)), 30)
    if not check(ready, "the 3 nodes are ready within 30 s",
                 " | ".join(cluster.log_tail(i, 5) for i in (1, 2, 3))):
        return
    if not check(cluster.wait("linked", cluster.linked, 20), "the 3 nodes see each other up within 20 s"):
        return
    instances = {i: f"127.0.0.1:{cluster.port(i)}" for i in (1, 2, 3)}

    before = {i: parse_metrics(cluster.metrics(i) or "")[0] for i in (1, 2, 3)}
    load = Load(cluster, [1, 2, 3])
    log(f"load: {LOAD_THREADS} threads for {LOAD_SECONDS:.0f} s")
    load.run(LOAD_SECONDS, LOAD_THREADS)
    for op, (ok, failed) in sorted(load.ops.items()):
        log(f"     {op}: {ok} ok, {failed} failed")
    log("     statuses: " + ", ".join(f"{op} {st}: {n}" for (op, st), n in sorted(load.statuses.items())))
    check(all(load.ops.get(op, [0])[0] > 0 for op in
              ("POST /api/sessions", "POST /api/sessions/{sid}/tokens", "POST /api/verify",
               "DELETE /api/sessions/{sid}", "POST /api/revocations sid", "POST /api/revocations jti")),
          "the load ran every operation")
    check(not load.ops.get("revoked token refused", [0, 0])[1], "revoked tokens are refused")
    errors = sum(n for (op, st), n in load.statuses.items() if st == 0 or st >= 500)
    check(errors == 0, "no 5xx and no unanswered request under load", f"{errors}")

    texts = {i: cluster.metrics(i) for i in (1, 2, 3)}
    live_names = set()
    for i in (1, 2, 3):
        text = texts[i]
        if not check(text is not None, f"node-{i} answers GET /metrics"):
            continue
        out = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
        problems = [l for l in (out.stdout + out.stderr).splitlines() if l.strip()]
        check(not problems and out.returncode == 0, f"promtool check metrics on node-{i}'s /metrics "
              f"({len(text.splitlines())} lines)", "\n    " + "\n    ".join(problems))
        samples, families = parse_metrics(text)
        live_names |= families | {n for n, _, _ in samples}

    def is_live(name):
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        return name in live_names or base in live_names
    missing = {n: w for n, w in used.items() if n != "up" and not is_live(n)}
    check(not missing, f"the {len(used)} metric names the alerts and the dashboard use are in the live /metrics",
          "; ".join(f"{n} (in {', '.join(sorted(set(w)))})" for n, w in sorted(missing.items())))

    # Every metric a clustered node writes is documented (docs/*.md), so a
    # new metric without docs fails here.
    docs_text = ""
    for name in sorted(os.listdir(os.path.join(ROOT, "docs"))):
        if name.endswith(".md"):
            with open(os.path.join(ROOT, "docs", name), encoding="utf-8") as f:
                docs_text += f.read()
    families = set()
    for i in (1, 2, 3):
        families |= parse_metrics(texts[i] or "")[1]
    undocumented = sorted(n for n in families
                          if not re.search(r"\b" + re.escape(n) + r"\b", docs_text))
    check(not undocumented, f"the {len(families)} metric families of a cluster node are documented in docs/",
          ", ".join(undocumented))

    # Revocations counted as answered.
    after = {i: parse_metrics(texts[i] or "")[0] for i in (1, 2, 3)}
    bad = []
    for i in (1, 2, 3):
        for kind in ("sid", "jti", "sub"):
            for outcome in ("complete", "partial", "log_failed"):
                want = load.revocations.get((i, kind, outcome), 0)
                got = (value(after[i], "keymesh_revocations_total", kind=kind, outcome=outcome) or 0) - \
                      (value(before[i], "keymesh_revocations_total", kind=kind, outcome=outcome) or 0)
                if got != want:
                    bad.append(f"node-{i} {kind} {outcome}: counted {got:g}, answered {want}")
    answered = sum(load.revocations.values())
    complete = sum(n for (i, k, p), n in load.revocations.items() if p == "complete")
    check(answered > 0 and not bad, f"keymesh_revocations_total counts the {answered} revocations "
          f"answered under load ({complete} complete) by node, kind and outcome", "; ".join(bad))

    live_alert_test(promtool, work, rules, {instances[i]: [texts[i] or ""] for i in (1, 2, 3)}, {},
                    "promtool: no alert fires on the healthy cluster's samples")

    # Kill node 3.
    log("SIGKILL node-3")
    killed = time.time()
    cluster.kill(3)

    def sees_down(i):
        samples, _ = parse_metrics(cluster.metrics(i) or "")
        up = value(samples, "keymesh_cluster_member_up", member="node-3")
        gone = (value(samples, "keymesh_cluster_members", state="down") or 0) + \
               (value(samples, "keymesh_cluster_members", state="suspect") or 0)
        return up == 0 and gone >= 1
    for i in (1, 2):
        check(cluster.wait(f"node-{i} sees node-3 down", lambda: sees_down(i), 15),
              f'node-{i}\'s /metrics shows keymesh_cluster_member_up{{member="node-3"}} 0 and '
              f'keymesh_cluster_members{{state="down"|"suspect"}} >= 1 within 15 s')
    # A survivor may report not ready for a moment after losing a member
    # (the "state" check, while it takes over the member's partitions):
    # the alert waits 5 minutes, so only a node that stays not ready counts.
    unready = {1: [], 2: []}

    def survivors_ready():
        now = time.time() - killed
        ok = True
        for i in (1, 2):
            samples, _ = parse_metrics(cluster.metrics(i) or "")
            if value(samples, "keymesh_ready") != 1:
                failing = [l.get("check") for n, l, v in samples if n == "keymesh_ready_check" and v == 0]
                unready[i].append((now, failing))
                ok = False
        return ok
    ready_again = cluster.wait("survivors ready", survivors_ready, 20)
    for i in (1, 2):
        if unready[i]:
            log(f"     node-{i} was not ready from {unready[i][0][0]:.2f} s to {unready[i][-1][0]:.2f} s after the kill "
                f"({len(unready[i])} polls; failing checks: {sorted({c for _, f in unready[i] for c in f})})")
    check(ready_again, "both survivors report keymesh_ready 1 within 20 s of the kill",
          "; ".join(f"node-{i} not ready, failing {unready[i][-1][1]}" for i in (1, 2) if unready[i]))
    texts = {i: cluster.metrics(i) or "" for i in (1, 2)}
    for i in (1, 2):
        samples, _ = parse_metrics(texts[i])
        ready = value(samples, "keymesh_ready")
        failing = [l.get("check") for n, l, v in samples if n == "keymesh_ready_check" and v == 0]
        status, answer = cluster.call(i, "GET", "/healthz/ready", timeout=2.0)
        log(f"     node-{i}: keymesh_ready {ready:g}, failing checks {failing}, members " + ", ".join(
            f"{l.get('state')}={v:g}" for n, l, v in samples if n == "keymesh_cluster_members")
            + f"; GET /healthz/ready now: {status} {json.dumps(answer)}")
    expected = {"KeymeshPeerDown": [{"instance": instances[i], "job": "keymesh", "member": "node-3"} for i in (1, 2)]}
    live_alert_test(promtool, work, rules, {instances[i]: [texts[i]] for i in (1, 2)}, expected,
                    "promtool: on the survivors' samples KeymeshPeerDown fires for member node-3 on both, "
                    "and nothing else")

    # A revocation after the kill: a killed member is no longer linked.
    before1 = parse_metrics(cluster.metrics(1) or "")[0]
    status, answer = cluster.call(1, "POST", "/api/revocations", {"sub": "prometheus-test-after-kill"}, timeout=10)
    propagation = (answer or {}).get("propagation")
    log(f"     revocation on node-1 after the kill: {status} {json.dumps(answer)}")
    after1 = parse_metrics(cluster.metrics(1) or "")[0]
    if check(status == 200 and propagation in ("complete", "partial"), "a revocation on node-1 after the kill answers"):
        d = (value(after1, "keymesh_revocations_total", kind="sub", outcome=propagation) or 0) - \
            (value(before1, "keymesh_revocations_total", kind="sub", outcome=propagation) or 0)
        check(d == 1, f'keymesh_revocations_total{{kind="sub",outcome="{propagation}"}} on node-1 went up by 1 '
              f'(the answer: {propagation}, unreached {answer.get("unreached")})', f"went up by {d:g}")

    # Node 2 stopped: linked but silent, so unreached.
    log("SIGSTOP node-2, revocation on node-1")
    cluster.signal(2, signal.SIGSTOP)
    try:
        status, answer = cluster.call(1, "POST", "/api/revocations", {"sub": "prometheus-test-stopped"}, timeout=10)
    finally:
        cluster.signal(2, signal.SIGCONT)
    log(f"     {status} {json.dumps(answer)}")
    after2 = parse_metrics(cluster.metrics(1) or "")[0]
    if check(status == 200 and (answer or {}).get("propagation") == "partial"
             and answer.get("unreached") == ["node-2"],
             "a revocation on node-1 while node-2 is stopped is partial, node-2 unreached", json.dumps(answer)):
        d = (value(after2, "keymesh_revocations_total", kind="sub", outcome="partial") or 0) - \
            (value(after1, "keymesh_revocations_total", kind="sub", outcome="partial") or 0)
        check(d == 1, 'keymesh_revocations_total{kind="sub",outcome="partial"} on node-1 went up by 1',
              f"went up by {d:g}")
    # node-1 sees node-2 up again before the samples are taken (else it would be a peer down too)
    check(cluster.wait("node-2 up again", lambda: value(parse_metrics(cluster.metrics(1) or "")[0],
                                                        "keymesh_cluster_member_up", member="node-2") == 1, 10),
          'after SIGCONT node-1 shows keymesh_cluster_member_up{member="node-2"} 1 within 10 s')
    final = cluster.metrics(1) or ""
    expected = {"KeymeshPeerDown": [{"instance": instances[1], "job": "keymesh", "member": "node-3"}],
                "KeymeshRevocationPartial": [{"instance": instances[1], "job": "keymesh"}]}
    live_alert_test(promtool, work, rules, {instances[1]: [texts[1], final]}, expected,
                    "promtool: on node-1's samples before and after the partial revocation "
                    "KeymeshRevocationPartial fires (and KeymeshPeerDown for node-3), nothing else")

    # A node restarted while its peers are gone still counts them (known
    # from node.data_dir/cluster-members, as its majorities do): down.
    log("stop every node, restart node-1 alone")
    cluster.stop_all()
    cluster.start(1)
    def alone():
        samples = parse_metrics(cluster.metrics(1) or "")[0]
        return all(value(samples, "keymesh_cluster_member_up", member=m) == 0
                   for m in ("node-2", "node-3")) \
            and value(samples, "keymesh_cluster_members", state="down") == 2
    check(cluster.wait("node-1 alone", alone, 20),
          'node-1 restarted alone shows keymesh_cluster_member_up 0 for node-2 and node-3 '
          'and keymesh_cluster_members{state="down"} 2 within 20 s', cluster.log_tail(1, 5))


if __name__ == "__main__":
    main()
