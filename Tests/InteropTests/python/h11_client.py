#!/usr/bin/env python3
"""Drives strata-serve with h11, a strict HTTP/1.1 state machine: several requests on one
keep-alive connection. h11 raises on any malformed response (bad status line, framing,
field syntax, body longer or shorter than declared); we also check that both sides are DONE
after every exchange, so keep-alive works. Exit status 0 = pass.

Usage: h11_client.py PORT
"""
import json
import socket
import sys

import h11


class Client:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.conn = h11.Connection(our_role=h11.CLIENT, max_incomplete_event_size=64 * 1024)
        self.exchanges = 0

    def send(self, *events):
        for event in events:
            data = self.conn.send(event)
            if data:
                self.sock.sendall(data)

    def next_event(self):
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                self.conn.receive_data(self.sock.recv(65536))
                continue
            return event

    def receive(self):
        """The final response, its body, and the interim responses before it."""
        interim, response, body = [], None, bytearray()
        while True:
            event = self.next_event()
            if isinstance(event, h11.InformationalResponse):
                interim.append(event.status_code)
            elif isinstance(event, h11.Response):
                response = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                return response, bytes(body), interim
            elif isinstance(event, h11.ConnectionClosed):
                raise AssertionError("the server closed the connection mid-exchange")
            else:
                raise AssertionError(f"unexpected event {event!r}")

    def finish_cycle(self, keep_alive=True):
        self.exchanges += 1
        if keep_alive:
            assert self.conn.our_state is h11.DONE, self.conn.states
            assert self.conn.their_state is h11.DONE, f"server state {self.conn.states}: keep-alive broken"
            self.conn.start_next_cycle()

    def request(self, method, target, headers=(), body=None, chunks=None):
        headers = [("Host", "strata.test")] + list(headers)
        if body is not None:
            headers.append(("Content-Length", str(len(body))))
        if chunks is not None:
            headers.append(("Transfer-Encoding", "chunked"))
        self.send(h11.Request(method=method, target=target, headers=headers))
        if body:
            self.send(h11.Data(data=body))
        for chunk in chunks or []:
            self.send(h11.Data(data=chunk))
        self.send(h11.EndOfMessage())
        return self.receive()


def header(response, name):
    name = name.lower().encode()
    values = [v.decode() for k, v in response.headers if k == name]
    return values[0] if values else None


def main():
    port = int(sys.argv[1])
    c = Client(port)
    payload = bytes((i * 7 + 3) % 256 for i in range(200_000))

    for _ in range(3):
        r, body, _ = c.request("GET", "/")
        assert r.status_code == 200, r
        assert r.http_version == b"1.1", r.http_version
        assert body == b"Hello, World!", body
        assert header(r, "content-type").startswith("text/plain"), r.headers
        assert header(r, "content-length") == "13"
        assert header(r, "date") and header(r, "server") == "strata", r.headers
        c.finish_cycle()

    r, body, _ = c.request("GET", "/json")
    assert r.status_code == 200 and header(r, "content-type") == "application/json", r
    assert json.loads(body) == {"message": "Hello, World!"}, body
    c.finish_cycle()

    r, body, _ = c.request("POST", "/echo", headers=[("Content-Type", "application/x-test")], body=payload)
    assert r.status_code == 200, r
    assert header(r, "content-type") == "application/x-test", r.headers
    assert body == payload, f"echo (Content-Length): {len(body)} bytes back"
    c.finish_cycle()

    pieces = [payload[i:i + 30_000] for i in range(0, len(payload), 30_000)]
    r, body, _ = c.request("PUT", "/echo", chunks=pieces)
    assert r.status_code == 200, r
    assert header(r, "transfer-encoding") == "chunked", r.headers
    assert body == payload, f"echo (chunked): {len(body)} bytes back"
    c.finish_cycle()

    r, body, _ = c.request("POST", "/echo", body=b"")
    assert r.status_code == 200 and body == b"", (r, body)
    c.finish_cycle()

    r, body, _ = c.request("HEAD", "/")
    assert r.status_code == 200 and body == b"", (r, body)
    assert header(r, "content-length") == "13", r.headers
    c.finish_cycle()

    # Expect: 100-continue: headers first, the body only after the interim response.
    c.send(h11.Request(method="POST", target="/echo",
                       headers=[("Host", "strata.test"), ("Content-Length", "5"), ("Expect", "100-continue")]))
    event = c.next_event()
    assert isinstance(event, h11.InformationalResponse) and event.status_code == 100, event
    assert not c.conn.they_are_waiting_for_100_continue
    c.send(h11.Data(data=b"hello"), h11.EndOfMessage())
    r, body, interim = c.receive()
    assert r.status_code == 200 and body == b"hello", (r, body, interim)
    c.finish_cycle()

    r, body, _ = c.request("GET", "/nope")
    assert r.status_code == 404, r
    c.finish_cycle()

    r, body, _ = c.request("DELETE", "/json")
    assert r.status_code == 405 and header(r, "allow"), r
    c.finish_cycle()

    r, body, _ = c.request("GET", "/healthz")
    assert r.status_code == 200 and body == b"ok\n", (r, body)
    c.finish_cycle()

    # The last one asks to close: the server must say so and close.
    r, body, _ = c.request("GET", "/", headers=[("Connection", "close")])
    assert r.status_code == 200 and body == b"Hello, World!"
    assert header(r, "connection") == "close", r.headers
    assert c.conn.their_state is h11.MUST_CLOSE, c.conn.states
    c.finish_cycle(keep_alive=False)
    assert c.sock.recv(1) == b"", "the server did not close after Connection: close"

    print(f"ok: {c.exchanges} exchanges on one connection")


if __name__ == "__main__":
    try:
        main()
    except Exception as error:  # noqa: BLE001 - any failure is a test failure
        import traceback
        traceback.print_exc()
        print(f"FAIL: {error!r}")
        sys.exit(1)
