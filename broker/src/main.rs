//! The `broker` binary: flags, logging and the link token, then [`broker::run`] on the
//! listener until SIGINT or SIGTERM.
//!
//! `broker --listen 127.0.0.1:0` prints `listening on IP:PORT` once it accepts links.

mod cli;

use anyhow::Context;
use clap::Parser;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = cli::Args::parse();
    let _log = netkit::logging::init();
    // As many links as the hard limit allows (a server holds one; refusals hold one each
    // while they are written).
    let nofile = netkit::fdlimit::raise_nofile();
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
    netkit::logging::announce(&format!("listening on {addr}"));
    tracing::info!("broker listening on {addr}");
    broker::run(
        args.config(token, nofile),
        listener,
        netkit::shutdown::signal(),
    )
    .await;
    tracing::info!("broker stopped");
    Ok(())
}
