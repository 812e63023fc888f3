#!/usr/bin/env python3
"""Issues N distinct tokens from a keymesh node over one keep-alive
connection and writes them one per line: mint_tokens.py PORT ADMIN_KEY N OUT"""
import http.client
import json
import sys

port, key, count, out = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
headers = {"Content-Type": "application/json", "Authorization": "Bearer " + key}
with open(out, "w") as f:
    for i in range(count):
        body = json.dumps({"sub": "user-%d" % i, "ttl": 3600})
        conn.request("POST", "/api/tokens", body, headers)
        res = conn.getresponse()
        data = res.read()
        if res.status != 201:
            sys.exit("mint: HTTP %d: %s" % (res.status, data[:200]))
        f.write(json.loads(data)["token"] + "\n")
