//! Starts the whole chat system on localhost with defaults: the broker, then a server
//! linked to it, then the desktop client, each once the previous one is ready. Closing the
//! window, Ctrl-C or SIGTERM stops them all in reverse order; if one dies, the others are
//! stopped too. Without a display it says so and keeps broker and server running.
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

/// Start broker, server and desktop client on localhost, and stop them together.
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
    /// Log the desktop client in at once with this name.
    #[arg(long)]
    name: Option<String>,
    /// Do not start the desktop client.
    #[arg(long)]
    no_gui: bool,
}

/// How long a process may take to print its `listening on` lines.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _log = netkit::logging::init();
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
    let port = server_addrs[0]
        .rsplit(':')
        .next()
        .unwrap_or("65432")
        .to_string();
    if let Some(text) = server_addrs.get(1) {
        let text_port = text.rsplit(':').next().unwrap_or("65433");
        println!("line port {text}: try `nc localhost {text_port}`");
    }

    let mut gui = None;
    if args.no_gui {
        println!("desktop client not started (--no-gui)");
    } else if !has_display() {
        println!(
            "no display found (neither DISPLAY nor WAYLAND_DISPLAY is set), so the desktop client \
             cannot start. Broker and server keep running: connect from a machine with a display \
             with `gui-client --server HOST:{port}`, or use `nc localhost 65433`. To run the \
             processes alone: `broker --listen 127.0.0.1:65430`, then \
             `server --broker 127.0.0.1:65430`."
        );
    } else {
        let server_arg = format!("127.0.0.1:{port}");
        let mut gui_args = vec!["--server", server_arg.as_str()];
        if let Some(name) = &args.name {
            gui_args.extend(["--name", name.as_str(), "--connect"]);
        }
        // The window's stdout stays the terminal's: a pipe nobody reads would make any
        // print of the GUI (or of a library it uses) fail.
        match start(&dir, "gui-client", &gui_args, false) {
            Ok(child) => gui = Some(child),
            Err(e) => println!("the desktop client did not start: {e:#}"),
        }
    }
    println!("press Ctrl-C to stop");

    let gui_exit = async {
        match gui.as_mut() {
            Some(g) => g.wait().await.map(|_| ()),
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = netkit::shutdown::signal() => {}
        _ = gui_exit => tracing::info!("the window was closed; stopping"),
        status = broker.wait() => tracing::error!("the broker exited ({status:?}); stopping"),
        status = server.wait() => tracing::error!("the server exited ({status:?}); stopping"),
    }
    if let Some(g) = gui.as_mut() {
        stop(g, "gui-client").await;
    }
    stop(&mut server, "server").await;
    stop(&mut broker, "broker").await;
    Ok(())
}

/// Whether a window can be opened (X11 or Wayland).
fn has_display() -> bool {
    ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}

/// Starts `name` from the launcher's directory. Its stdout is piped (to read its
/// `listening on` lines) when `piped`, otherwise inherited.
fn start(dir: &Path, name: &str, args: &[&str], piped: bool) -> anyhow::Result<Child> {
    let path: PathBuf = dir.join(name);
    Command::new(&path)
        .args(args)
        .stdout(if piped {
            Stdio::piped()
        } else {
            Stdio::inherit()
        })
        .kill_on_drop(true)
        .spawn()
        .with_context(|| {
            format!(
                "starting {} (build the workspace first: cargo build --release)",
                path.display()
            )
        })
}

/// Starts a process whose `listening on` lines the launcher waits for.
fn spawn(
    dir: &Path,
    name: &str,
    args: &[&str],
) -> anyhow::Result<(Child, Lines<BufReader<ChildStdout>>)> {
    let mut child = start(dir, name, args, true)?;
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
