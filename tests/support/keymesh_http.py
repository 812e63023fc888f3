"""One HTTP call to a keymesh node with an admin key, for the Python test
scripts (tests/faults, tests/deploy).

call() answers (status, body): the body as JSON (None when empty or not
JSON), or as text with raw=True; status 0 when the node did not answer
(refused, reset, timed out). A connection passed as CONN is reused (and
closed on failure); otherwise one is opened and closed per call.
"""
import http.client
import json


def call(host, port, key, method, path, body=None, timeout=3.0, conn=None, raw=False):
    own = conn is None
    if own:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        headers = {"Authorization": f"Bearer {key}"}
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=headers)
        res = conn.getresponse()
        text = res.read().decode("utf-8", errors="replace")
        if raw:
            return res.status, text
        try:
            return res.status, json.loads(text) if text else None
        except ValueError:
            return res.status, None
    except (OSError, http.client.HTTPException):
        if not own:
            conn.close()
        return 0, None
    finally:
        if own:
            conn.close()
