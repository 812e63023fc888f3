#!/usr/bin/env python3
"""Writes, for `redis-cli --pipe`, N sessions as Redis hashes with a TTL:
the same fields keymesh keeps (sub, client_id, created_at, expires_at,
last_seen, idle_timeout and ~200 bytes of attributes as JSON) under
session:<22-character sid>. redis_fill.py N"""
import base64
import os
import sys
import time

ATTRIBUTES = ('{"ip":"203.0.113.17","ua":"Mozilla/5.0 (X11; Linux x86_64) '
              'AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",'
              '"acr":"urn:mace:incommon:iap:silver","amr":"pwd otp","tenant":"acme-eu-1"}')


def command(*args):
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(parts)


n = int(sys.argv[1])
now = int(time.time())
out = sys.stdout.buffer
batch = []
for i in range(n):
    sid = base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=")
    key = b"session:" + sid
    batch.append(command("HSET", key, "sub", "bench-%d" % i, "client_id", "web",
                         "created_at", now, "expires_at", now + 28800,
                         "last_seen", now, "idle_timeout", 3600,
                         "attributes", ATTRIBUTES))
    batch.append(command("EXPIRE", key, 28800))
    if len(batch) >= 2000:
        out.write(b"".join(batch))
        batch = []
out.write(b"".join(batch))
