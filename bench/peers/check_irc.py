#!/usr/bin/env python3
"""Functional check for an IRC benchmark peer on 127.0.0.1 (stdlib only).

Opens N clients (NICK/USER, wait for 001, JOIN #bench, wait for 366; PINGs
are answered with PONG), then client 0 sends --messages PRIVMSGs to the
channel and every other client must receive all of them, in order.

Clients are brought up with at most --ramp-window registrations in flight at
once (connect -> 001 -> JOIN -> 366), because ngIRCd listens with a fixed
backlog of 10.

The sender either writes everything at once (default, "blast") or, with
--pace-batch K, sends K PRIVMSGs followed by a PING and keeps at most
--pace-inflight such batches un-PONGed (bounded unparsed input; not needed
by the Debian bookworm builds, kept for servers that drop fast senders).

--connect-only registers the clients without JOIN/flood (connection caps).

This is a correctness/smoke check, not the load generator: with thousands of
clients the single Python thread that parses all deliveries is the bottleneck,
so the printed rates are a lower bound on what the server can do.

Exit status 0 and a final line starting with "OK" on success.
"""

import argparse
import errno
import os
import random
import selectors
import socket
import string
import sys
import time

CHANNEL = "#bench"


class Client:
    __slots__ = ("idx", "nick", "sock", "rbuf", "wbuf", "state", "expect",
                 "received", "errors", "closed", "t_ready", "last_recv_t",
                 "pongs", "attempts", "events")

    def __init__(self, idx, nick):
        self.idx = idx
        self.nick = nick
        self.sock = None
        self.rbuf = b""
        self.wbuf = bytearray()
        self.state = "new"  # new, connecting, registering, joining, ready, dead
        self.expect = 0     # next expected message sequence number
        self.received = 0
        self.errors = []
        self.closed = None
        self.t_ready = None
        self.last_recv_t = None
        self.pongs = []
        self.attempts = 0
        self.events = 0


class Checker:
    def __init__(self, args):
        self.a = args
        self.sel = selectors.DefaultSelector()
        tag = "".join(random.choice(string.ascii_lowercase) for _ in range(2))
        self.clients = [Client(i, "k%s%d" % (tag, i)) for i in range(args.clients)]
        self.msg_prefix = b"PRIVMSG " + CHANNEL.encode() + b" :"
        self.match = (" PRIVMSG %s :" % CHANNEL).encode()
        self.pad = b"x" * max(0, args.size)
        self.now = time.monotonic

    # ------------------------------------------------------------------ io
    def _want(self, c):
        ev = selectors.EVENT_READ
        if c.wbuf or c.state == "connecting":
            ev |= selectors.EVENT_WRITE
        if ev != c.events:
            self.sel.modify(c.sock, ev, c)
            c.events = ev

    def send(self, c, data):
        if c.state == "dead":
            return
        c.wbuf += data
        self._flush(c)

    def _flush(self, c):
        if c.state in ("dead", "connecting"):
            return
        while c.wbuf:
            try:
                n = c.sock.send(c.wbuf)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as e:
                self.kill(c, "send error: %s" % e)
                return
            del c.wbuf[:n]
        self._want(c)

    def kill(self, c, why):
        if c.state == "dead":
            return
        if c.closed is None:
            c.closed = why
        c.state = "dead"
        try:
            self.sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        try:
            c.sock.close()
        except OSError:
            pass

    def start_connect(self, c):
        c.attempts += 1
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.sock = s
        c.rbuf = b""
        c.wbuf = bytearray()
        c.state = "connecting"
        rc = s.connect_ex(("127.0.0.1", self.a.port))
        if rc not in (0, errno.EINPROGRESS):
            s.close()
            c.state = "new"
            raise OSError(rc, os.strerror(rc))
        c.events = selectors.EVENT_READ | selectors.EVENT_WRITE
        self.sel.register(s, c.events, c)

    def on_connected(self, c):
        err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self.kill(c, "connect failed: %s" % os.strerror(err))
            return
        c.state = "registering"
        self.send(c, ("NICK %s\r\nUSER %s 0 * :bench client %d\r\n"
                      % (c.nick, c.nick, c.idx)).encode())

    def on_readable(self, c):
        try:
            data = c.sock.recv(262144)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            self.kill(c, "recv error: %s" % e)
            return
        if not data:
            self.kill(c, "EOF from server")
            return
        buf = c.rbuf + data
        lines = buf.split(b"\n")
        c.rbuf = lines.pop()
        match = self.match
        for line in lines:
            if match in line:
                self.on_privmsg(c, line)
            else:
                self.on_line(c, line.rstrip(b"\r"))

    def on_privmsg(self, c, line):
        # ":nick!user@host PRIVMSG #bench :<seq> xxxx"
        body = line.split(self.match, 1)[1]
        sp = body.find(b" ")
        try:
            seq = int(body[:sp] if sp >= 0 else body.rstrip(b"\r"))
        except ValueError:
            c.errors.append("unparsable PRIVMSG %r" % line[:80])
            return
        if seq != c.expect:
            if len(c.errors) < 5:
                c.errors.append("expected #%d got #%d" % (c.expect, seq))
            c.expect = seq + 1
        else:
            c.expect += 1
        c.received += 1
        c.last_recv_t = self.now()

    def on_line(self, c, line):
        if not line:
            return
        parts = line.split(b" ")
        if parts[0].startswith(b":"):
            cmd = parts[1] if len(parts) > 1 else b""
        else:
            cmd = parts[0]
        if cmd == b"PING":
            arg = line.split(b"PING", 1)[1].strip()
            self.send(c, b"PONG " + arg + b"\r\n")
        elif cmd == b"PONG":
            c.pongs.append(line.rsplit(b":", 1)[-1] if b":" in line[1:] else parts[-1])
        elif cmd == b"001":
            if c.state == "registering":
                if self.a.connect_only:
                    c.state = "ready"
                    c.t_ready = self.now()
                else:
                    c.state = "joining"
                    self.send(c, ("JOIN %s\r\n" % CHANNEL).encode())
        elif cmd == b"366":
            if c.state == "joining":
                c.state = "ready"
                c.t_ready = self.now()
        elif cmd == b"433":
            # nick in use: pick another one
            c.nick = c.nick + "_"
            self.send(c, ("NICK %s\r\n" % c.nick).encode())
        elif cmd == b"ERROR":
            c.closed = "ERROR from server: %s" % line.decode("utf-8", "replace")
        elif cmd in (b"465", b"471", b"473", b"474", b"475", b"405"):
            c.errors.append(line.decode("utf-8", "replace"))

    def poll(self, timeout):
        for key, ev in self.sel.select(timeout):
            c = key.data
            if c.state == "dead":
                continue
            if c.state == "connecting":
                if ev & (selectors.EVENT_WRITE | selectors.EVENT_READ):
                    self.on_connected(c)
                continue
            if ev & selectors.EVENT_READ:
                self.on_readable(c)
            if c.state != "dead" and ev & selectors.EVENT_WRITE:
                self._flush(c)

    # --------------------------------------------------------------- phases
    def ramp(self):
        a = self.a
        deadline = self.now() + a.timeout
        pending = list(self.clients)
        pending.reverse()
        inflight = set()
        n_ready = 0
        last_report = self.now()
        while True:
            for c in list(inflight):
                if c.state in ("ready", "dead"):
                    inflight.discard(c)
                    if c.state == "ready":
                        n_ready += 1
            if any(c.state == "dead" for c in self.clients):
                bad = [c for c in self.clients if c.state == "dead"]
                return "client %s died during ramp: %s" % (bad[0].nick, bad[0].closed)
            while pending and len(inflight) < a.ramp_window:
                c = pending.pop()
                try:
                    self.start_connect(c)
                except OSError as e:
                    return "connect() failed for client %d: %s" % (c.idx, e)
                inflight.add(c)
            if not pending and not inflight:
                return None
            if self.now() > deadline:
                return ("ramp timed out after %ds: %d ready, %d in flight, %d not started"
                        % (a.timeout, n_ready, len(inflight), len(pending)))
            self.poll(0.2)
            if a.verbose and self.now() - last_report > 2:
                last_report = self.now()
                print("  ramp: %d/%d ready" % (n_ready, len(self.clients)), flush=True)

    def settle(self, seconds):
        end = self.now() + seconds
        while self.now() < end:
            self.poll(max(0.0, min(0.05, end - self.now())))

    def drain_joins(self):
        """Let the JOIN broadcasts of the ramp drain before timing the flood."""
        quiet_since = self.now()
        end = self.now() + self.a.timeout
        while self.now() < end:
            got = self.sel.select(0.3)
            if not got:
                if self.now() - quiet_since > 0.5:
                    return
                continue
            quiet_since = self.now()
            for key, ev in got:
                c = key.data
                if c.state == "dead":
                    continue
                if ev & selectors.EVENT_READ:
                    self.on_readable(c)
                if c.state != "dead" and ev & selectors.EVENT_WRITE:
                    self._flush(c)

    def flood(self):
        a = self.a
        sender = self.clients[0]
        receivers = self.clients[1:]
        total = a.messages
        lines = [self.msg_prefix + str(i).encode() + b" " + self.pad + b"\r\n"
                 for i in range(total)]
        t0 = self.now()
        sent = 0
        acked_batches = 0
        batches_sent = 0
        t_sent_all = None
        deadline = t0 + a.timeout
        if a.pace_batch <= 0:
            self.send(sender, b"".join(lines))
            sent = total
        while True:
            if a.pace_batch > 0:
                # count PONGs for our batch tokens
                while sender.pongs:
                    tok = sender.pongs.pop(0)
                    if tok.startswith(b"ack"):
                        acked_batches += 1
                while sent < total and batches_sent - acked_batches < a.pace_inflight:
                    k = min(a.pace_batch, total - sent)
                    chunk = b"".join(lines[sent:sent + k])
                    sent += k
                    batches_sent += 1
                    self.send(sender, chunk + b"PING :ack%d\r\n" % batches_sent)
            if t_sent_all is None and sent == total and not sender.wbuf:
                t_sent_all = self.now()
            if sender.state == "dead":
                return None, "sender died: %s" % sender.closed
            done = all(r.received >= total or r.state == "dead" for r in receivers)
            if done:
                break
            if self.now() > deadline:
                break
            self.poll(0.05)
        t_end = max([r.last_recv_t for r in receivers if r.last_recv_t] or [self.now()])
        return (t0, t_sent_all, t_end), None

    def teardown(self, seconds=15.0):
        """QUIT every client and read until the server closes the socket, so
        the server never writes QUIT broadcasts into already-closed sockets
        (ngIRCd logs one 'Broken pipe' line per such write: O(N^2) lines)."""
        for c in self.clients:
            self.send(c, b"QUIT :done\r\n")
        end = self.now() + seconds
        while self.now() < end and any(c.state != "dead" for c in self.clients):
            self.poll(0.1)
        for c in self.clients:
            self.kill(c, "done")

    def run(self):
        a = self.a
        print("check_irc: %d clients -> 127.0.0.1:%d, %d messages of %d payload bytes, %s"
              % (a.clients, a.port, a.messages, a.size,
                 "blast" if a.pace_batch <= 0 else
                 "paced (batch %d, inflight %d)" % (a.pace_batch, a.pace_inflight)),
              flush=True)
        t0 = self.now()
        err = self.ramp()
        t_ramp = self.now() - t0
        if err:
            print("FAIL: " + err)
            self.teardown(5)
            return 1
        print("ramp: %d clients %s in %.2fs (%.0f/s, window %d)"
              % (a.clients, "registered" if a.connect_only else "registered+joined", t_ramp, a.clients / t_ramp if t_ramp else 0, a.ramp_window),
              flush=True)
        self.drain_joins()
        if a.connect_only:
            # hold all connections a moment, then check nobody was dropped
            self.settle(2.0)
            dead = [c for c in self.clients if c.state == "dead"]
            self.teardown()
            if dead:
                print("FAIL: %d clients dropped, e.g. %s: %s" % (len(dead), dead[0].nick, dead[0].closed))
                return 1
            print("OK: %d clients registered and held (no JOIN/flood, --connect-only)" % a.clients)
            return 0
        if a.clients < 2:
            print("FAIL: need at least 2 clients")
            return 1
        cpu0 = proc_cpu(a.server_pid)
        times, err = self.flood()
        cpu1 = proc_cpu(a.server_pid)
        if err:
            print("FAIL: " + err)
            self.teardown(5)
            return 1
        t_start, t_sent_all, t_end = times
        receivers = self.clients[1:]
        # a short grace period to notice late duplicates / disconnects
        self.settle(0.3)
        problems = []
        for r in receivers:
            if r.state == "dead":
                problems.append("%s disconnected: %s" % (r.nick, r.closed))
            elif r.received != a.messages:
                problems.append("%s received %d/%d" % (r.nick, r.received, a.messages))
            if r.errors:
                problems.append("%s order errors: %s" % (r.nick, "; ".join(r.errors[:3])))
        if self.clients[0].state == "dead":
            problems.append("sender disconnected: %s" % self.clients[0].closed)
        elapsed = t_end - t_start
        deliveries = sum(r.received for r in receivers)
        send_s = (t_sent_all - t_start) if t_sent_all else float("nan")
        print("flood: sender wrote %d msgs in %.3fs; last delivery after %.3fs; "
              "%d deliveries (%.0f msg/s fan-out, %.0f msg/s accepted from sender)"
              % (a.messages, send_s, elapsed, deliveries,
                 deliveries / elapsed if elapsed > 0 else 0,
                 a.messages / elapsed if elapsed > 0 else 0), flush=True)
        if cpu0 is not None and cpu1 is not None:
            print("server pid %d used %.2fs CPU during the flood (%.0f%% of one core)"
                  % (a.server_pid, cpu1 - cpu0, 100.0 * (cpu1 - cpu0) / elapsed if elapsed > 0 else 0))
        self.teardown()
        if problems:
            print("FAIL: %d problem(s):" % len(problems))
            for p in problems[:20]:
                print("  " + p)
            return 1
        print("OK: %d receivers got all %d messages in order (ramp %.2fs, flood %.3fs)"
              % (len(receivers), a.messages, t_ramp, elapsed))
        return 0


def proc_cpu(pid):
    """user+system CPU seconds of a process, or None."""
    if not pid:
        return None
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--clients", type=int, default=200, help="number of clients (>= 2)")
    p.add_argument("--messages", type=int, default=1000)
    p.add_argument("--size", type=int, default=32, help="payload bytes per message after the seq number")
    p.add_argument("--ramp-window", type=int, default=10,
                   help="max clients connecting/registering/joining at once (default 10 = ngIRCd backlog)")
    p.add_argument("--pace-batch", type=int, default=0,
                   help="0 = blast all messages at once; K = send K PRIVMSG then a PING")
    p.add_argument("--pace-inflight", type=int, default=2,
                   help="max un-PONGed batches when pacing (default 2)")
    p.add_argument("--connect-only", action="store_true",
                   help="only register the clients (no JOIN, no flood): checks connection caps")
    p.add_argument("--timeout", type=float, default=120, help="per-phase timeout in seconds")
    p.add_argument("--server-pid", type=int, default=0,
                   help="optional: report this process's CPU time used during the flood (Linux /proc)")
    p.add_argument("-v", "--verbose", action="store_true")
    a = p.parse_args()
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = min(hard, max(soft, a.clients + 100))
        if want > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (ImportError, ValueError, OSError):
        pass
    sys.exit(Checker(a).run())


if __name__ == "__main__":
    main()
