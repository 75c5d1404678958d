#!/usr/bin/env python3
"""Compute request-signature vectors with the official python-ovh client (pinned in
requirements.txt), through its own code path (`Client.call` -> `raw_call`), without any network.

The HTTP session is replaced by a recorder that captures the method, URL, headers and body
python-ovh would send; the clock and the server time delta are fixed. The printed JSON is pasted
into `src/ovh/sign.rs` tests. Rerun:

    python3 -m venv /tmp/pyovh && /tmp/pyovh/bin/pip install -r tests/python/requirements.txt
    /tmp/pyovh/bin/python tests/python/sign_vectors.py
"""

import json
import time

import ovh
import ovh.client


class Recorder:
    """Stands in for requests.Session: records the request, answers 200 `null`."""

    def __init__(self):
        self.seen = None

    def request(self, method, url, headers=None, data=None, timeout=None):
        self.seen = {"method": method, "url": url, "headers": dict(headers or {}), "body": data}

        class Resp:
            status_code = 200

            def json(self):
                return None

        return Resp()


CASES = [
    # (endpoint, method, path, data, query, local_time, time_delta)
    ("ovh-eu", "GET", "/dedicated/server", None, {}, 1700000000, 0),
    ("ovh-eu", "GET", "/dedicated/server/ns1.ip-1-2-3.eu/task", None,
     {"function": "reinstallServer", "status": "doing"}, 1700000123, 7),
    ("ovh-ca", "PUT", "/dedicated/server/ns1.ip-1-2-3.eu", {"bootId": 1}, {}, 1712345678, -3),
    ("sim", "POST", "/dedicated/server/ns1.ip-1-2-3.eu/reinstall",
     {"operatingSystem": "debian12_64", "customizations": {"hostname": "web-01"}}, {}, 1750000000, 0),
    ("ovh-eu", "DELETE", "/v2/iam/resource/urn:v1:eu:resource:dedicatedServer:ns1.ip-1-2-3.eu/tag/ovhform",
     None, {}, 1760000000, 12),
]


def main():
    ovh.client.ENDPOINTS["sim"] = "http://127.0.0.1:8080/1.0"
    out = []
    for endpoint, method, path, data, query, now, delta in CASES:
        client = ovh.Client(
            endpoint=endpoint,
            application_key="7kbG7Bk7S9Nt7ZSV",
            application_secret="EXEgWIz07P0HYwtQDs7cNIqCiQaWSuHF",
            consumer_key="MtSwSrPpNjqfVSmJhLbPyr2i45lSwPU1",
        )
        rec = Recorder()
        client._session = rec
        client._time_delta = delta
        real_time = time.time
        time.time = lambda: float(now)
        try:
            kwargs = dict(query)
            if method == "GET":
                client.get(path, **kwargs)
            elif method == "DELETE":
                client.delete(path, **kwargs)
            elif method == "PUT":
                client.put(path, **data)
            else:
                client.post(path, **data)
        finally:
            time.time = real_time
        h = rec.seen["headers"]
        out.append({
            "method": method,
            "url": rec.seen["url"],
            "body": rec.seen["body"],
            "timestamp": int(h["X-Ovh-Timestamp"]),
            "signature": h["X-Ovh-Signature"],
        })
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
