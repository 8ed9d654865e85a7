#!/usr/bin/env python3
"""Drives strata-serve with httpx (HTTP/1.1, one keep-alive connection pool, no pipelining):
GET and POST bodies and headers, and that the pool reused one connection. Exit status 0 = pass.

Usage: httpx_client.py PORT
"""
import sys

import httpx


def main():
    port = int(sys.argv[1])
    base = f"http://127.0.0.1:{port}"
    local_ports = set()

    def track(response):
        stream = response.extensions.get("network_stream")
        if stream is not None:
            sock = stream.get_extra_info("socket")
            if sock is not None:
                local_ports.add(sock.getsockname()[1])

    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    with httpx.Client(base_url=base, limits=limits, timeout=10, http2=False) as client:
        count = 0
        for _ in range(5):
            r = client.get("/")
            track(r)
            assert r.status_code == 200 and r.text == "Hello, World!", (r, r.text)
            assert r.http_version == "HTTP/1.1", r.http_version
            assert r.headers["content-length"] == "13"
            assert r.headers["content-type"].startswith("text/plain")
            assert r.headers["server"] == "strata" and "date" in r.headers, r.headers
            count += 1

        r = client.get("/json")
        track(r)
        assert r.json() == {"message": "Hello, World!"}, r.text
        count += 1

        body = bytes(range(256)) * 4096  # 1 MiB
        r = client.post("/echo", content=body, headers={"Content-Type": "application/octet-stream"})
        track(r)
        assert r.status_code == 200 and r.content == body, (r, len(r.content))
        assert r.headers["content-length"] == str(len(body))
        assert r.headers["content-type"] == "application/octet-stream"
        count += 1

        def pieces():
            for i in range(0, len(body), 100_000):
                yield body[i:i + 100_000]

        r = client.put("/echo", content=pieces())  # a generator: sent chunked
        track(r)
        assert r.status_code == 200 and r.content == body, (r, len(r.content))
        assert r.headers.get("transfer-encoding") == "chunked", r.headers
        count += 1

        r = client.post("/echo", data={"a": "1", "b": "two words"})
        track(r)
        assert r.text == "a=1&b=two+words", r.text
        assert r.headers["content-type"] == "application/x-www-form-urlencoded", r.headers
        count += 1

        r = client.head("/")
        track(r)
        assert r.status_code == 200 and r.content == b"" and r.headers["content-length"] == "13"
        count += 1

        r = client.get("/missing")
        track(r)
        assert r.status_code == 404, r
        count += 1

    if len(local_ports) > 1:
        raise AssertionError(f"httpx used {len(local_ports)} connections, expected keep-alive reuse of one")
    print(f"ok: {count} requests, {len(local_ports) or '?'} connection(s)")


if __name__ == "__main__":
    try:
        main()
    except Exception as error:  # noqa: BLE001
        import traceback
        traceback.print_exc()
        print(f"FAIL: {error!r}")
        sys.exit(1)
