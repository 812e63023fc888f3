#!/usr/bin/env python3
"""Creates N sessions round robin over the given nodes, over keep-alive
connections, and writes their sids one per line:
make_sessions.py ADMIN_KEY N OUT PORT [PORT...]"""
import http.client
import json
import sys

key, count, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
conns = [http.client.HTTPConnection("127.0.0.1", int(p), timeout=10) for p in sys.argv[4:]]
headers = {"Content-Type": "application/json", "Authorization": "Bearer " + key}
attributes = {"ip": "203.0.113.17", "acr": "urn:mace:incommon:iap:silver", "tenant": "acme-eu-1"}
with open(out, "w") as f:
    for i in range(count):
        c = conns[i % len(conns)]
        c.request("POST", "/api/sessions",
                  json.dumps({"sub": "user-%d" % i, "client_id": "web", "attributes": attributes}),
                  headers)
        res = c.getresponse()
        data = res.read()
        if res.status != 201:
            sys.exit("make_sessions: HTTP %d: %s" % (res.status, data[:200]))
        f.write(json.loads(data)["sid"] + "\n")
