#!/usr/bin/env python3
"""Two scripted users for the README screenshot: they wait for `alice` (the GUI) to join,
then chat a little, including a private message to her. Standard library only."""
import argparse
import json
import socket
import time


def login(port, name):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(name.encode() + b"\n")
    buf = b""
    while b"\n" not in buf:
        buf += s.recv(4096)
    return s


def send(s, to, msg):
    s.sendall(json.dumps({"from": {"name": "", "ip": ""}, "to": to, "msg": msg}).encode())


def wait_for_join(s, who, deadline):
    buf = b""
    while time.time() < deadline:
        try:
            buf += s.recv(4096)
        except socket.timeout:
            continue
        for line in buf.split(b"\n"):
            if line.strip():
                try:
                    f = json.loads(line)
                except ValueError:
                    continue
                if f.get("type") == "join" and f.get("user") == who:
                    return True
    return False


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    a = p.parse_args()
    bob = login(a.port, "bob")
    carol = login(a.port, "carol")
    dave = login(a.port, "dave")
    print("ready", flush=True)
    if not wait_for_join(bob, "alice", time.time() + 60):
        raise SystemExit("alice never joined")
    time.sleep(0.5)
    script = [
        (carol, "*", "Hi alice, welcome to the class chat!"),
        (bob, "*", "hey everyone, did anyone finish exercise 3?"),
        (dave, "*", "almost, the broker part took me a while"),
        (bob, "alice", "psst, lunch at 12?"),
        (carol, "*", "I can share my notes after class"),
    ]
    for sock, to, msg in script:
        send(sock, to, msg)
        time.sleep(0.3)
    time.sleep(30)


if __name__ == "__main__":
    main()
