#!/usr/bin/env python3
"""scrypt hashes per second with THREADS threads at cost ln, r, p (Python's
hashlib.scrypt is OpenSSL's, the same KDF keymesh calls).

  scrypt_rate.py LN R P THREADS SECONDS
"""
import hashlib
import sys
import threading
import time

ln, r, p, threads, seconds = (int(x) for x in sys.argv[1:6])
count = [0] * threads
stop = time.perf_counter() + seconds


def work(i):
    while time.perf_counter() < stop:
        hashlib.scrypt(b"password", salt=b"0123456789abcdef", n=1 << ln, r=r,
                       p=p, maxmem=256 << 20, dklen=32)
        count[i] += 1


start = time.perf_counter()
pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
for t in pool:
    t.start()
for t in pool:
    t.join()
print("%.2f" % (sum(count) / (time.perf_counter() - start)))
