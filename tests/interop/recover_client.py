#!/usr/bin/env python3
"""A seed-style client that recovers what it missed while it was away (PROTOCOL.md §10.5).
Python 3 standard library only; it reuses seed_client.py's client.

    python3 tests/interop/recover_client.py --host 127.0.0.1 --port 65432

rita logs in like a seed client and keeps the welcome's resume token; sam says two things,
which rita reads and remembers the last id of; rita asks /history for the epoch, then
goes. sam says three more things. rita comes back, resumes her session, asks
`after LAST` and must get exactly the three she missed: no duplicate, no gap, the same
epoch. The private message sam sent her before she went is in her history again (her
session resumed), and only once.

Exit status: 0 when every check passes, 1 with a FAIL line on stderr otherwise.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seed_client import CheckFailed, SeedClient, check  # noqa: E402


def history(client, query):
    """Sends /history QUERY; returns (events, end frame)."""
    client.send("/history", query)
    events = []
    deadline = time.monotonic() + client.timeout
    while True:
        frame = client.recv(deadline)
        if frame.get("type") == "history":
            return events, frame
        if frame.get("history") is True:
            events.append(frame)


def run(host, port, timeout):
    rita = SeedClient(host, port, "rita", timeout)
    w = rita.welcome()
    token = w.get("resume")
    check(isinstance(token, str) and len(token) >= 32, "the welcome carries a resume token", w)
    sam = SeedClient(host, port, "sam", timeout)
    sam.welcome()
    sam.send("rita", "psst")
    rita.recv_until("sam's private message", lambda f: f.get("msg") == "psst")
    for text in ["one", "two"]:
        sam.send("*", text)
    last = None
    for text in ["one", "two"]:
        f = rita.recv_until(f"sam's {text!r}", lambda f, t=text: f.get("msg") == t)
        last = f["id"]
    _, end = history(rita, "latest 1")
    epoch = end.get("epoch")
    check(isinstance(epoch, str) and epoch, "the end frame carries the epoch", end)
    rita.close()
    sam.recv_until("rita's leave", lambda f: f.get("type") == "leave")

    for text in ["three", "four", "five"]:
        sam.send("*", text)
    # The broker has them all once sam's own history shows the last one.
    deadline = time.monotonic() + timeout
    while True:
        events, _ = history(sam, "latest 5")
        if any(e.get("msg") == "five" for e in events):
            break
        if time.monotonic() > deadline:
            raise CheckFailed("sam's messages never reached the history")

    rita = SeedClient(host, port, "rita", timeout)
    rita.welcome()
    rita.send("/resume", token)
    ok = rita.recv_until("the resume's answer", lambda f: f.get("type") in ("system", "error"))
    check(ok.get("type") == "system", "the session is resumed", ok)
    events, end = history(rita, f"after {last}")
    chats = [e["msg"] for e in events if e.get("type") == "chat"]
    check(chats == ["three", "four", "five"], "exactly the three missed messages, in order", chats)
    ids = [e["id"] for e in events]
    check(all(i > last for i in ids) and len(set(ids)) == len(ids), "no duplicate, nothing seen before", ids)
    check(ids == sorted(ids), "ascending ids", ids)
    check(end.get("epoch") == epoch, "the same epoch", end)
    check(end.get("gap") is False, "no gap", end)
    earlier, _ = history(rita, "latest 50")
    privates = [e["msg"] for e in earlier if e.get("type") == "private"]
    check(privates == ["psst"], "her private message is in her resumed history", privates)
    rita.close()
    sam.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=65432)
    p.add_argument("--timeout", type=float, default=10.0)
    a = p.parse_args()
    try:
        run(a.host, a.port, a.timeout)
    except (CheckFailed, OSError) as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    print("PASS: recovered exactly what was missed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
