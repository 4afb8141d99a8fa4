//! The chat broker: one process that owns the global user directory, gives every event its
//! place in one global order, and routes messages between front-end servers.
//!
//! `broker --listen 127.0.0.1:0` prints `listening on IP:PORT` once it accepts links.

mod cli;
mod directory;
mod link;
mod listener;
mod router;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tokio::sync::Semaphore;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = cli::Args::parse();
    netkit::logging::init();
    let source =
        netkit::token::TokenSource::from_flags(args.token.clone(), args.token_file.clone())?;
    let token = source
        .read_or_create()
        .context("the broker link needs a token")?;
    tracing::info!("link token from {}", source.describe());
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    println!("listening on {addr}");
    tracing::info!("broker listening on {addr}");
    let heartbeat = Duration::from_millis(args.heartbeat_ms.max(1));
    let cfg = link::LinkConfig {
        max_frame: args.max_link_frame,
        queue_bytes: args.link_queue_bytes,
        idle_timeout: heartbeat * 3,
        token: token.into(),
        inbox_budget: Arc::new(Semaphore::new(
            args.inbox_bytes.max(link::MAX_WEIGHT as usize),
        )),
    };
    listener::run(listener, cfg, netkit::shutdown::signal()).await;
    tracing::info!("broker stopped");
    Ok(())
}
