#!/usr/bin/env python3
"""Interop check: logs in the way the seed-000 class-chat clients do and exercises the
server with their protocol. Standard library only.

    python3 class_chat_client.py --host 127.0.0.1 --port 65432

Like those clients it sends the bare name with no newline (sock.send(name.encode())),
parses the welcome with one json.loads per recv, and sends frames
{"from": {"name", "ip"}, "to", "msg"}. After the welcome, several frames may arrive in one
recv, so it buffers and splits on the newline the server puts after each frame.
Exits 0 when every check passes, 1 with a message otherwise.
"""
import argparse
import json
import socket
import sys
import time

TIMEOUT = 10.0


class Client:
    def __init__(self, host, port, name):
        self.name = name
        self.sock = socket.create_connection((host, port), timeout=TIMEOUT)
        self.sock.send(name.encode())  # exactly like the seed clients: no newline
        self.buf = b""

    def welcome(self):
        # The seed clients do one recv and one json.loads: the welcome must come alone.
        data = self.sock.recv(4096)
        return json.loads(data.decode())

    def send(self, to, msg):
        frame = {"from": {"name": self.name, "ip": "127.0.0.1"}, "to": to, "msg": msg}
        self.sock.send(json.dumps(frame).encode())

    def recv(self):
        deadline = time.time() + TIMEOUT
        while b"\n" not in self.buf:
            self.sock.settimeout(max(0.01, deadline - time.time()))
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(f"{self.name}: connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line.decode())

    def recv_until(self, what, pred):
        deadline = time.time() + TIMEOUT
        while time.time() < deadline:
            frame = self.recv()
            if pred(frame):
                return frame
        raise TimeoutError(f"{self.name}: no {what}")


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print(f"ok - {what}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=65432)
    a = p.parse_args()

    alice = Client(a.host, a.port, "alice")
    w = alice.welcome()
    check("Welcome alice" in w["msg"], "alice gets a welcome frame")
    check(w["from"]["name"] == "SERVER" and w["to"] == "alice", "the welcome comes from SERVER to alice")
    check(w.get("users") == ["alice"], "the welcome lists the users online")

    bob = Client(a.host, a.port, "bob")
    w = bob.welcome()
    check("Welcome bob" in w["msg"] and w.get("users") == ["alice", "bob"], "bob's welcome lists alice and bob")

    alice.send("bob", "hi bob, privately")
    f = bob.recv_until("private message", lambda f: f["msg"] == "hi bob, privately")
    check(f["from"]["name"] == "alice" and f["to"] == "bob", "a private message reaches bob, stamped from alice")

    alice.send("/shout", "hello everyone")
    f = bob.recv_until("public message", lambda f: f["msg"] == "hello everyone")
    check(f["from"]["name"] == "alice", "a /shout reaches bob, stamped from alice")
    f = alice.recv_until("confirmation", lambda f: f["from"]["name"] == "SERVER" and "Message sent" in f["msg"])
    check(f["msg"] == "Message sent to 1 user", "alice's /shout is confirmed")

    bob.send("/list", "")
    f = bob.recv_until("user list", lambda f: "alice" in f["msg"] and "bob" in f["msg"])
    check(f.get("users") == ["alice", "bob"], "/list names both users")

    dup = Client(a.host, a.port, "alice")
    f = json.loads(dup.sock.recv(4096).decode())
    check(f["msg"].startswith("Error"), "a duplicate name gets a frame starting with Error")
    dup.sock.settimeout(TIMEOUT)
    check(dup.sock.recv(4096) == b"", "and the connection is closed")

    for c in (alice, bob):
        c.sock.close()
    print("all interop checks passed")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # any failure: say what, exit non-zero
        print(f"FAIL: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
