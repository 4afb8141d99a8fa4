//! Runs Python 3 clients written like the seed-000 class-chat clients (standard library
//! only, raw-name login, one `json.loads` per `recv` for the welcome) against the real
//! broker and server.

mod support;

use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;

use support::*;
use testkit::service::{Kind, Service};

testkit::on_both_backends!(
    the_seed_client_script_passes,
    the_seed_client_script_fails_against_the_line_port,
    a_seed_style_client_recovers_what_it_missed_after_a_reconnect,
);

/// Runs `python3 script --host 127.0.0.1 --port PORT` against `addr` and returns its
/// output; fails if it does not finish within a bound.
fn run_script(script: &str, addr: SocketAddr) -> Output {
    let mut cmd = Command::new("python3");
    cmd.args([
        script,
        "--host",
        "127.0.0.1",
        "--port",
        &addr.port().to_string(),
    ])
    .stdin(Stdio::null());
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(cmd.output());
    });
    // The scripts bound each wait by TIMEOUT themselves; this only catches a hang.
    rx.recv_timeout(TIMEOUT * 3)
        .unwrap_or_else(|_| panic!("{script} did not finish in time"))
        .expect("python3 must be installed")
}

/// Asserts the script exited 0 and printed `marker`; shows its output otherwise.
fn assert_passed(out: &Output, marker: &str) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "interop failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains(marker),
        "no {marker:?} in:\n{stdout}\n{stderr}"
    );
}

fn the_seed_client_script_passes(kind: Kind) {
    let service = Service::start(kind, false);
    let s = service.server(&[]);
    let out = run_script(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/interop/seed_client.py"
        ),
        s.json,
    );
    assert_passed(&out, "PASS:");
    // It really ran its checks (a script that skipped them would print no "ok -" lines).
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.lines().filter(|l| l.starts_with("ok - ")).count() >= 10,
        "{stdout}"
    );
}

fn the_seed_client_script_fails_against_the_line_port(kind: Kind) {
    // The script must be able to fail: the line port speaks no JSON.
    let service = Service::start(kind, false);
    let s = service.server(&[]);
    let out = run_script(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/interop/seed_client.py"
        ),
        s.text,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("FAIL:"), "{stderr}");
}

fn a_seed_style_client_recovers_what_it_missed_after_a_reconnect(kind: Kind) {
    // The real binaries: the in-process broker keeps no history.
    let service = Service::start(kind, true);
    let s = service.server_proc(&[]);
    let out = run_script(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/interop/recover_client.py"
        ),
        s.json,
    );
    assert_passed(&out, "PASS:");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.lines().filter(|l| l.starts_with("ok - ")).count() >= 8,
        "{stdout}"
    );
}
