//! The `broker` binary: flags, logging and the link token, then [`broker::run`] on the
//! listener until SIGINT or SIGTERM.
//!
//! `broker --listen 127.0.0.1:0` prints `listening on IP:PORT` once it accepts links (and,
//! with `--metrics-listen`, `metrics listening on IP:PORT` after it).

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
    // The history first: a broker that cannot keep it must not start (PROTOCOL.md §10.6).
    let history = match args.history().map_err(anyhow::Error::msg)? {
        None => None,
        Some(h) => {
            let mut store =
                broker::history::store::Store::open(&h.dir, h.retention).with_context(|| {
                    format!(
                        "opening the history in {} (--history off runs without one)",
                        h.dir.display()
                    )
                })?;
            if h.max_pages > 0 {
                store.limit_pages(h.max_pages)?;
            }
            store.set_resume_ttl(args.resume_ttl);
            tracing::info!(
                dir = %h.dir.display(),
                last_id = store.last_id(),
                epoch = store.epoch(),
                "history"
            );
            Some(store)
        }
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    let metrics = match args.metrics_listen {
        cli::Listen::On(at) => Some(
            tokio::net::TcpListener::bind(at)
                .await
                .with_context(|| format!("binding the metrics endpoint {at}"))?,
        ),
        cli::Listen::Off => None,
    };
    netkit::logging::announce(&format!("listening on {addr}"));
    tracing::info!("broker listening on {addr}");
    if let Some(m) = &metrics {
        let at = m.local_addr()?;
        netkit::logging::announce(&format!("metrics listening on {at}"));
    }
    broker::run_with_metrics(
        args.config(token, nofile),
        history,
        listener,
        metrics,
        netkit::shutdown::signal(),
    )
    .await;
    tracing::info!("broker stopped");
    Ok(())
}
