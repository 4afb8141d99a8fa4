#!/usr/bin/env python3
"""A client that talks to the chat server exactly like the seed-000 class-chat clients,
and checks what comes back. Python 3 standard library only.

    python3 tests/interop/seed_client.py --host 127.0.0.1 --port 65432

What the seed clients do, and so what this script does:
  * log in with sock.send(name.encode()): the bare name, no newline;
  * read the welcome with one json.loads(sock.recv(4096)): the welcome must arrive alone;
  * send frames {"from": {"name": N, "ip": IP}, "to": T, "msg": M}, with no delimiter.
After the welcome, several frames may arrive in one recv, so frames are buffered and split
on the newline the server writes after each one.

Checks: the welcome (msg contains "Welcome <name>", a users field); a private message
alice -> bob arrives at bob stamped from alice; a /shout reaches bob and alice gets
"Message sent to 1 user"; /list names both; a duplicate name gets a msg starting with
"Error" and the connection is closed.

Exit status: 0 when every check passes, 1 with a FAIL line on stderr otherwise.
Every socket operation has a timeout, and every wait a deadline.
"""
import argparse
import json
import socket
import sys
import time


class CheckFailed(Exception):
    pass


def check(cond, what, detail=None):
    if not cond:
        raise CheckFailed(what if detail is None else f"{what}: {detail!r}")
    print(f"ok - {what}", flush=True)


def own_ip():
    """The address the seed clients put in "from.ip" (their host's address)."""
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "0.0.0.0"


def check_schema(frame, where):
    """Every frame has the seed schema: from {name, ip}, to, msg."""
    ok = (
        isinstance(frame, dict)
        and isinstance(frame.get("from"), dict)
        and isinstance(frame["from"].get("name"), str)
        and isinstance(frame["from"].get("ip"), str)
        and isinstance(frame.get("to"), str)
        and isinstance(frame.get("msg"), str)
    )
    if not ok:
        raise CheckFailed(f"{where}: frame does not follow the seed schema: {frame!r}")


class SeedClient:
    def __init__(self, host, port, name, timeout):
        self.name = name
        self.timeout = timeout
        self.buf = b""
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        # Exactly like the seed clients: the bare name, no newline.
        self.sock.send(name.encode())

    def welcome(self):
        """One recv, one json.loads, as the seed clients read the welcome."""
        data = self.sock.recv(4096)
        if not data:
            raise CheckFailed(f"{self.name}: connection closed before the welcome")
        try:
            frame = json.loads(data)
        except ValueError as e:
            raise CheckFailed(
                f"{self.name}: the first recv is not exactly one JSON object "
                f"(did something arrive together with the welcome?): {e}: {data!r}"
            )
        check_schema(frame, f"{self.name}'s welcome")
        return frame

    def send(self, to, msg):
        frame = {"from": {"name": self.name, "ip": own_ip()}, "to": to, "msg": msg}
        self.sock.send(json.dumps(frame).encode())

    def recv(self, deadline):
        """The next frame, buffered and split on newlines; fails at `deadline`."""
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CheckFailed(f"{self.name}: timed out waiting for a frame")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise CheckFailed(f"{self.name}: timed out waiting for a frame")
            if not chunk:
                raise CheckFailed(f"{self.name}: connection closed while waiting for a frame")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        try:
            frame = json.loads(line)
        except ValueError as e:
            raise CheckFailed(f"{self.name}: not a JSON frame: {e}: {line!r}")
        check_schema(frame, self.name)
        return frame

    def recv_until(self, what, pred):
        """Skips frames until one satisfies `pred`; fails after the timeout."""
        deadline = time.monotonic() + self.timeout
        seen = []
        while True:
            try:
                frame = self.recv(deadline)
            except CheckFailed as e:
                raise CheckFailed(f"{self.name}: no {what} ({e}); frames seen: {seen!r}")
            if pred(frame):
                return frame
            seen.append(frame)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def is_server(frame):
    return frame["from"]["name"] == "SERVER"


def run(host, port, timeout):
    clients = []
    try:
        alice = SeedClient(host, port, "alice", timeout)
        clients.append(alice)
        w = alice.welcome()
        check("Welcome alice" in w["msg"], "alice's welcome says 'Welcome alice'", w)
        check(is_server(w), "the welcome comes from SERVER", w)
        check(w.get("users") == ["alice"], "alice's welcome has a users field [alice]", w)

        bob = SeedClient(host, port, "bob", timeout)
        clients.append(bob)
        w = bob.welcome()
        check("Welcome bob" in w["msg"], "bob's welcome says 'Welcome bob'", w)
        check(
            sorted(w.get("users") or []) == ["alice", "bob"],
            "bob's welcome lists alice and bob in its users field",
            w,
        )
        alice_ip = alice.sock.getsockname()[0]

        # Private message alice -> bob.
        alice.send("bob", "hi bob, just you")
        f = bob.recv_until("private message", lambda f: f["msg"] == "hi bob, just you")
        check(f["from"]["name"] == "alice", "the private message reaches bob from alice", f)
        check(f["from"]["ip"] == alice_ip, "and is stamped with alice's real IP", f)
        check(f["to"] == "bob", "and is addressed to bob", f)

        # Public message via /shout, confirmed to the sender.
        alice.send("/shout", "hello class")
        f = bob.recv_until("public message", lambda f: f["msg"] == "hello class")
        check(f["from"]["name"] == "alice", "the /shout reaches bob from alice", f)
        f = alice.recv_until(
            "/shout confirmation",
            lambda f: is_server(f) and f["msg"].startswith("Message sent"),
        )
        check(f["msg"] == "Message sent to 1 user", "alice gets 'Message sent to 1 user'", f)

        # /list answers with both users.
        bob.send("/list", "")
        f = bob.recv_until(
            "/list answer",
            lambda f: is_server(f) and ("users" in f or "online" in f["msg"].lower()),
        )
        check(
            "alice" in f["msg"] and "bob" in f["msg"],
            "the /list answer names alice and bob",
            f,
        )
        if "users" in f:
            check(sorted(f["users"]) == ["alice", "bob"], "its users field is [alice, bob]", f)

        # A duplicate name is refused with an Error frame and the connection is closed.
        dup = SeedClient(host, port, "alice", timeout)
        clients.append(dup)
        data = dup.sock.recv(4096)
        check(data != b"", "the duplicate login gets an answer before the close")
        try:
            f = json.loads(data)
        except ValueError as e:
            raise CheckFailed(f"the duplicate login's answer is not one JSON object: {e}: {data!r}")
        check_schema(f, "duplicate login")
        check(f["msg"].startswith("Error"), "the duplicate login's msg starts with 'Error'", f)
        try:
            rest = dup.sock.recv(4096)
        except socket.timeout:
            raise CheckFailed("the duplicate login's connection was not closed in time")
        check(rest == b"", "the duplicate login's connection is closed (recv returns b'')", rest)

        # The first alice is unaffected.
        alice.send("bob", "still me")
        f = bob.recv_until("second private message", lambda f: f["msg"] == "still me")
        check(f["from"]["name"] == "alice", "the original alice is still logged in", f)
    finally:
        for c in clients:
            c.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=65432)
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per wait")
    a = p.parse_args()
    try:
        run(a.host, a.port, a.timeout)
    except CheckFailed as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as e:
        print(f"FAIL: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print("PASS: the server works with a seed-000 style client")
    return 0


if __name__ == "__main__":
    sys.exit(main())
