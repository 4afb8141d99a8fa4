#!/usr/bin/env python3
"""Scripted users for the README screenshots. Before `alice` (the GUI) arrives they talk,
so her room starts with history; once she joins they chat, with a long message that wraps
and has a line break and a link, and bob writes to her privately. On a line "away" on
stdin (alice's server is down) they say two more things, which alice must find when she
is back; on "room", one says something in the room. Standard library only."""
import argparse
import json
import socket
import sys
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
    for sock, msg in [
        (carol, "morning all, the lab is open until 6"),
        (dave, "is the exercise 3 deadline still Friday?"),
        (carol, "yes, Friday noon"),
    ]:
        send(sock, "*", msg)
        time.sleep(0.1)
    print("ready", flush=True)
    if not wait_for_join(bob, "alice", time.time() + 60):
        raise SystemExit("alice never joined")
    time.sleep(0.5)
    script = [
        (carol, "*", "Hi alice, welcome to the class chat!"),
        (bob, "*", "hey everyone, did anyone finish exercise 3?"),
        (dave, "*", "almost. The broker part took me a while: the router has to store "
                    "every batch before it sends it out, or a crash loses confirmed "
                    "messages.\nThe notes are at https://example.org/chat/exercise-3"),
        (bob, "alice", "psst, lunch at 12?"),
        (bob, "alice", "the usual place"),
        (carol, "*", "I can share my notes after class, alice"),
    ]
    for sock, to, msg in script:
        send(sock, to, msg)
        time.sleep(0.3)
    print("chatted", flush=True)
    for line in sys.stdin:
        if line.strip() == "room":
            send(dave, "*", "who is presenting first on Friday?")
            print("said", flush=True)
        if line.strip() == "away":
            send(carol, "*", "the room moved to B204 for the afternoon")
            time.sleep(0.2)
            send(dave, "*", "thanks carol, on my way")
            print("said", flush=True)
    time.sleep(30)


if __name__ == "__main__":
    main()
