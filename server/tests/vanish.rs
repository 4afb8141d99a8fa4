//! A client whose machine vanishes without closing (no FIN, no RST): the server's TCP
//! keepalive finds out and frees the name. The client runs in a network namespace joined
//! to the host by a veth pair; "vanishing" is taking its end of the cable down.
//!
//! Needs root and iproute2 (`ip netns`), which CI has; elsewhere the test says why it
//! cannot run and passes without asserting anything.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::netns::Netns;
use support::*;

struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A class-chat style client in the namespace: logs in, prints its welcome, then sits
/// there without reading or closing.
const GHOST: &str = r#"
import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
s.sendall(b"ghost")
print(s.recv(4096).decode(errors="replace").strip(), flush=True)
time.sleep(120)
"#;

#[test]
fn a_client_that_vanishes_without_closing_is_dropped_by_keepalive() {
    let Some(ns) = Netns::create("chatvanish", 77) else {
        return;
    };
    let (_b, baddr) = broker(&[]);
    let listen = format!("{}:0", ns.host_ip);
    // Keepalive after 1 s of silence, probes 1 s apart: a vanished peer is gone in ~4 s.
    let b = baddr.to_string();
    let (_s, addrs) = Proc::start(
        "server",
        &[
            "--broker",
            &b,
            "--listen",
            &listen,
            "--text-listen",
            "off",
            "--keepalive-ms",
            "1000",
        ],
        1,
    );
    let json = addrs[0];
    let mut bob = JsonClient::login(json, "bob");

    let ghost = Command::new("ip")
        .args(["netns", "exec", &ns.name, "python3", "-c", GHOST])
        .arg(json.ip().to_string())
        .arg(json.port().to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 in the namespace");
    let mut ghost = Reaped(ghost);
    let mut out = BufReader::new(ghost.0.stdout.take().expect("stdout"));
    let mut welcome = String::new();
    out.read_line(&mut welcome).expect("the ghost's welcome");
    assert!(welcome.contains("Welcome ghost"), "{welcome}");
    await_presence(&mut bob, "join", &["ghost"], TIMEOUT);

    // The cable is cut: nothing reaches the ghost any more, and nothing comes back.
    assert!(ns.exec_ip(&["link", "set", &ns.ns_if, "down"]), "link down");
    let cut = Instant::now();
    await_presence(&mut bob, "leave", &["ghost"], Duration::from_secs(15));
    let took = cut.elapsed();
    eprintln!("vanished client dropped {took:?} after the cut");
    assert!(
        took >= Duration::from_secs(1),
        "not before keepalive could know: {took:?}"
    );
    // The name is free again.
    let _ghost2 = JsonClient::login(json, "ghost");
}
