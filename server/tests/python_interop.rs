//! Runs a Python 3 client written like the seed-000 class-chat clients (standard library
//! only, raw-name login) against the real broker and server.

mod support;

use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;

use support::*;

#[test]
fn a_seed_style_python_client_works_unchanged() {
    let (_b, s) = system();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/interop/class_chat_client.py"
    );
    let mut cmd = Command::new("python3");
    cmd.args([
        script,
        "--host",
        "127.0.0.1",
        "--port",
        &s.json.port().to_string(),
    ])
    .stdin(Stdio::null());
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(cmd.output());
    });
    let out = rx
        .recv_timeout(TIMEOUT * 3)
        .expect("the Python client did not finish in time")
        .expect("python3 must be installed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "interop failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("all interop checks passed"), "{stdout}");
}
