#!/usr/bin/env python3
"""Renders deploy/k8s with kustomize (Debian's kubectl, `kubectl kustomize`)
after making the cluster's certificates with `keymesh genclust`, and checks
the manifests against the configuration the pods get: the SRV name the
nodes ask is the one the headless Service publishes, ports and probes match
the listen addresses, the pods' KEYMESH_* variables are a valid keymesh
configuration (`keymesh config check`: unknown variables are errors), every
file the configuration names is in the mounted Secret, and the disruption
budget and the scrape annotations cover the pods.

usage: k8s_test.py --bin build/keymesh --kubectl PATH
Exits 0 when every check passes, 1 (printing each failure) otherwise."""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
K8S = os.path.join(HERE, "..", "..", "deploy", "k8s")

failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
    return ok


def render(kubectl, binary, work):
    base = os.path.join(work, "k8s")
    shutil.copytree(K8S, base)
    out = subprocess.run([binary, "genclust", "--nodes", "3", "--name", "keymesh",
                          "--out", os.path.join(base, "cluster")], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"genclust: {out.stderr}")
    with open(os.path.join(base, "cluster", "admin.keys"), "w") as f:
        f.write("0" * 64 + "\n")
    out = subprocess.run([kubectl, "kustomize", base], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"kubectl kustomize: {out.stderr}")
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def one(docs, kind, name=None):
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    if len(found) != 1:
        sys.exit(f"expected one {kind} {name or ''}, found {len(found)}")
    return found[0]


def port_of(address):
    return int(address.rsplit(":", 1)[1])


def expand(value, env):
    """Kubernetes' $(VAR) references to earlier variables."""
    return re.sub(r"\$\(([A-Z_]+)\)", lambda m: env.get(m.group(1), m.group(0)), value)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("--kubectl", required=True)
    args = parser.parse_args()
    for tool in (args.bin, args.kubectl):
        if not os.access(tool, os.X_OK):
            sys.exit(f"k8s_test: {tool} is missing (scripts/setup extracts Debian's kubernetes-client)")
    with tempfile.TemporaryDirectory() as work:
        docs = render(args.kubectl, args.bin, work)
        namespace = one(docs, "Namespace")["metadata"]["name"]
        sts = one(docs, "StatefulSet", "keymesh")
        peers = one(docs, "Service", sts["spec"]["serviceName"])
        clients = one(docs, "Service", "keymesh")
        pdb = one(docs, "PodDisruptionBudget")
        secret = one(docs, "Secret")
        pod = sts["spec"]["template"]
        labels = pod["metadata"]["labels"]
        container = pod["spec"]["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}

        # The pod's environment as keymesh sees it in pod keymesh-0: the
        # variables, then what the start script exports.
        env = {"POD_NAME": "keymesh-0", "POD_NAMESPACE": namespace}
        for var in container["env"]:
            if "value" in var:
                env[var["name"]] = expand(var["value"], env)
        script = container["args"][0]
        check("exec keymesh serve" in script, "the start script runs keymesh serve")
        for name, value in re.findall(r'export (KEYMESH_[A-Z_]+)="([^"]+)"', script):
            env[name] = value.replace("$i", "1")
        check(env.get("KEYMESH_CLUSTER_INSTANCE_ID") == "node-1",
              f"pod keymesh-0 is node-1, not {env.get('KEYMESH_CLUSTER_INSTANCE_ID')}")

        # SRV discovery: the name the nodes ask is the Service's records.
        cluster_port = [p for p in peers["spec"]["ports"] if p["name"] == "cluster"]
        check(len(cluster_port) == 1, "the headless Service has a port named cluster")
        srv = f"_cluster._{cluster_port[0]['protocol'].lower()}.{peers['metadata']['name']}.{namespace}.svc.cluster.local"
        check(env.get("KEYMESH_CLUSTER_DISCOVERY") == "srv", "cluster.discovery is srv")
        check(env.get("KEYMESH_CLUSTER_SRV_NAMES") == srv,
              f"cluster.srv.names {env.get('KEYMESH_CLUSTER_SRV_NAMES')!r} is the Service's {srv!r}")
        check(peers["spec"].get("clusterIP") == "None", "the peers' Service is headless")
        check(peers["spec"].get("publishNotReadyAddresses") is True,
              "peers are published before they are ready (readiness waits for the peers)")
        check(peers["spec"]["selector"].items() <= labels.items(), "the peers' Service selects the pods")
        check(clients["spec"]["selector"].items() <= labels.items(), "the clients' Service selects the pods")
        # The advertised address is the SRV target of this pod, on the
        # port the records give and the node listens on.
        advertise = env.get("KEYMESH_CLUSTER_ADVERTISE", "")
        check(advertise == f"keymesh-0.{peers['metadata']['name']}.{namespace}.svc.cluster.local:{cluster_port[0]['port']}",
              f"cluster.advertise {advertise!r} is pod keymesh-0's SRV target and port")
        check(port_of(env["KEYMESH_CLUSTER_LISTEN"]) == ports.get("cluster") == cluster_port[0]["port"],
              "cluster.listen, the container port and the Service port agree")
        check(cluster_port[0]["targetPort"] in ("cluster", ports.get("cluster")), "the peers' Service targets the cluster port")

        # HTTP, probes, scraping.
        http_port = port_of(env["KEYMESH_HTTP_LISTEN"])
        check(ports.get("http") == http_port, "http.listen and the container port agree")
        for probe, path in (("readinessProbe", "/healthz/ready"), ("livenessProbe", "/healthz/live")):
            get = container.get(probe, {}).get("httpGet", {})
            check(get.get("path") == path, f"{probe} asks {path}")
            check(get.get("port") in ("http", http_port), f"{probe} asks the HTTP port")
        annotations = pod["metadata"].get("annotations", {})
        check(annotations.get("prometheus.io/scrape") == "true", "pods are scraped")
        check(annotations.get("prometheus.io/port") == str(http_port), "scraped on the HTTP port")
        check(annotations.get("prometheus.io/path") == "/metrics", "scraped at /metrics")
        check(clients["spec"]["ports"][0]["targetPort"] in ("http", http_port), "the clients' Service targets HTTP")
        requests = container.get("resources", {}).get("requests", {})
        check("cpu" in requests and "memory" in requests, "the container requests CPU and memory")

        # Every file the configuration names is in the mounted Secret.
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
        secret_volume = [n for n, v in volumes.items() if v.get("secret", {}).get("secretName") == secret["metadata"]["name"]]
        check(len(secret_volume) == 1, "the Secret (with its generated name) is mounted")
        mount = mounts.get(secret_volume[0]) if secret_volume else None
        for key in ("KEYMESH_CLUSTER_TLS_CA", "KEYMESH_CLUSTER_TLS_CERT", "KEYMESH_CLUSTER_TLS_KEY",
                    "KEYMESH_SECRETS_ENCRYPTION_KEY_FILE", "KEYMESH_HTTP_ADMIN_KEYS_FILE"):
            path = env.get(key, "")
            check(mount is not None and os.path.dirname(path) == mount
                  and os.path.basename(path) in secret.get("data", {}),
                  f"{key}={path} is a file of the mounted Secret")
        for i in (1, 2, 3):
            for part in ("cert", "key"):
                check(f"node-{i}-{part}.pem" in secret.get("data", {}), f"the Secret holds node-{i}-{part}.pem")
        check(sts["spec"]["replicas"] == 3, "three replicas, as many as the Secret has certificates")
        check(mounts.get("data") == "/var/lib/keymesh", "the data directory is on the claimed volume")
        check(any(t["metadata"]["name"] == "data" for t in sts["spec"].get("volumeClaimTemplates", [])),
              "each pod claims a volume for its data directory")

        # The disruption budget covers the pods and keeps a majority.
        check(pdb["spec"]["selector"]["matchLabels"].items() <= labels.items(), "the budget selects the pods")
        check(pdb["spec"].get("maxUnavailable") == 1, "one pod at a time may be disrupted")

        # The pod's variables are a valid keymesh configuration.
        keymesh_env = {k: v for k, v in env.items() if k.startswith("KEYMESH_")}
        empty = os.path.join(work, "empty.yaml")
        open(empty, "w").close()
        clean = {k: v for k, v in os.environ.items() if not k.startswith("KEYMESH_")}
        out = subprocess.run([args.bin, "config", "check", empty], env={**clean, **keymesh_env},
                             capture_output=True, text=True)
        check(out.returncode == 0, f"keymesh config check of the pod's variables: {out.stderr.strip()}")

    for f in failures:
        print(f"FAIL: {f}")
    print(f"k8s: {len(failures)} failure(s)")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
