//! Starts the whole chat system on localhost with defaults: the broker, then a server
//! linked to it, each once the previous one is ready. Ctrl-C (or SIGTERM) stops them in
//! reverse order; if either dies, the other is stopped too.
//!
//! The binaries are taken from the launcher's own directory (`target/release` after
//! `cargo build --release`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// Start broker and server on localhost, and stop them together.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Broker address (kept on loopback).
    #[arg(long, env = "CHAT_BROKER_LISTEN", default_value = "127.0.0.1:65430")]
    broker_listen: String,
    /// JSON client port of the server.
    #[arg(long, env = "CHAT_LISTEN", default_value = "0.0.0.0:65432")]
    listen: String,
    /// Line port of the server, or `off`.
    #[arg(long, env = "CHAT_TEXT_LISTEN", default_value = "0.0.0.0:65433")]
    text_listen: String,
}

/// How long a process may take to print its `listening on` lines.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    netkit::logging::init();
    let dir = std::env::current_exe()
        .context("locating the launcher")?
        .parent()
        .map(Path::to_path_buf)
        .context("the launcher has no directory")?;

    let (mut broker, mut broker_out) = spawn(&dir, "broker", &["--listen", &args.broker_listen])?;
    let broker_addr = wait_listening(&mut broker_out, "broker", 1)
        .await?
        .remove(0);
    let (mut server, mut server_out) = spawn(
        &dir,
        "server",
        &[
            "--broker",
            &broker_addr,
            "--listen",
            &args.listen,
            "--text-listen",
            &args.text_listen,
        ],
    )?;
    let lines = if args.text_listen.eq_ignore_ascii_case("off") {
        1
    } else {
        2
    };
    let server_addrs = match wait_listening(&mut server_out, "server", lines).await {
        Ok(a) => a,
        Err(e) => {
            stop(&mut broker, "broker").await;
            return Err(e);
        }
    };
    println!(
        "chat is up: broker {broker_addr}, JSON port {}",
        server_addrs[0]
    );
    if let Some(text) = server_addrs.get(1) {
        let port = text.rsplit(':').next().unwrap_or("65433");
        println!("line port {text}: try `nc localhost {port}`");
    }
    println!("press Ctrl-C to stop");

    tokio::select! {
        _ = netkit::shutdown::signal() => {}
        status = broker.wait() => tracing::error!("the broker exited ({status:?}); stopping"),
        status = server.wait() => tracing::error!("the server exited ({status:?}); stopping"),
    }
    stop(&mut server, "server").await;
    stop(&mut broker, "broker").await;
    Ok(())
}

fn spawn(
    dir: &Path,
    name: &str,
    args: &[&str],
) -> anyhow::Result<(Child, Lines<BufReader<ChildStdout>>)> {
    let path: PathBuf = dir.join(name);
    let mut child = Command::new(&path)
        .args(args)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| {
            format!(
                "starting {} (build the workspace first: cargo build --release)",
                path.display()
            )
        })?;
    let stdout = child.stdout.take().context("child stdout")?;
    Ok((child, BufReader::new(stdout).lines()))
}

/// Reads `count` `... listening on ADDR` lines and returns the addresses.
async fn wait_listening(
    out: &mut Lines<BufReader<ChildStdout>>,
    name: &str,
    count: usize,
) -> anyhow::Result<Vec<String>> {
    let mut addrs = Vec::new();
    let read = async {
        while addrs.len() < count {
            match out.next_line().await? {
                Some(line) => {
                    if let Some((_, addr)) = line.split_once("listening on ") {
                        addrs.push(addr.trim().to_string());
                    }
                }
                None => bail!("{name} exited before it was ready (see its log above)"),
            }
        }
        Ok(())
    };
    tokio::time::timeout(READY_TIMEOUT, read)
        .await
        .with_context(|| format!("{name} was not ready within {READY_TIMEOUT:?}"))??;
    Ok(addrs)
}

/// SIGTERM, then SIGKILL if the process does not stop in time.
async fn stop(child: &mut Child, name: &str) {
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
    match tokio::time::timeout(Duration::from_secs(15), child.wait()).await {
        Ok(Ok(status)) => tracing::info!("{name} stopped ({status})"),
        _ => {
            tracing::warn!("{name} did not stop in time; killing it");
            let _ = child.kill().await;
        }
    }
}
