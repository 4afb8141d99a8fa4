//! A chat front-end server. It accepts clients on the JSON port (the class-chat protocol)
//! and the line port (nc/telnet), stamps and validates what they send, forwards it to the
//! broker, and fans the broker's events out to its local clients.
//!
//! `server --listen 127.0.0.1:0 --text-listen 127.0.0.1:0 --broker ADDR` prints
//! `listening on IP:PORT` and `text listening on IP:PORT` once the broker link is up.

mod broker_link;
mod cli;
mod cmd;
mod frames;
mod hub;
mod json_port;
mod limits;
mod line_port;
mod listener;
mod rate;
mod reader;
mod session;
mod tls;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::cli::{Args, Config, TextListen};
use crate::listener::Port;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    netkit::logging::init();
    // Before the runtime starts its threads (see netkit::fdlimit).
    let nofile = netkit::fdlimit::prepare();
    tracing::debug!(nofile, "open-file limit");
    netkit::runtime::build(args.threads)?.block_on(serve(args, nofile))
}

async fn serve(args: Args, nofile: u64) -> anyhow::Result<()> {
    // Bind first so a port conflict is reported at once.
    let json = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let json_addr = json.local_addr()?;
    let mut listeners = vec![(json, Port::Json)];
    let mut text_addr = None;
    if let TextListen::On(addr) = args.text_listen {
        let text = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        text_addr = Some(text.local_addr()?);
        listeners.push((text, Port::Line));
    }

    let mut tls_addr = None;
    if let TextListen::On(addr) = args.tls_listen {
        let identity = tls::Identity::from_flags(
            args.tls_cert.clone(),
            args.tls_key.clone(),
            args.tls_self_signed,
            addr.ip(),
        )?;
        let (acceptor, cert_file) = tls::acceptor(&identity)?;
        tracing::info!("TLS certificate: {}", cert_file.display());
        let tls = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        tls_addr = Some(tls.local_addr()?);
        listeners.push((tls, Port::Tls(acceptor)));
    }

    let hub = Arc::new(hub::Hub::new(
        json_addr.ip().to_string(),
        hub::PresencePolicy {
            limit: args.presence_limit,
            budget: args.presence_budget,
        },
    ));
    let link_stop = CancellationToken::new();
    let (up_tx, mut up_rx) = watch::channel(false);
    let token =
        netkit::token::TokenSource::from_flags(args.token.clone(), args.token_file.clone())?;
    let link_cfg = broker_link::LinkSettings {
        broker: args.broker.clone(),
        label: format!("server {json_addr}"),
        token,
        queue_bytes: args.link_queue_bytes,
        heartbeat: Duration::from_millis(args.heartbeat_ms.max(1)),
        max_frame: chat_common::link::DEFAULT_MAX_LINK_FRAME.max(args.max_frame + 4096),
    };
    let link = tokio::spawn(broker_link::run(
        hub.clone(),
        link_cfg,
        link_stop.clone(),
        up_tx,
    ));

    // Accept only once the chat can work: until then every login would be refused.
    tracing::info!("connecting to the broker at {}", args.broker);
    let shutdown = netkit::shutdown::signal();
    tokio::pin!(shutdown);
    tokio::select! {
        r = up_rx.wait_for(|up| *up) => { r.context("broker link task ended")?; }
        _ = &mut shutdown => {
            link_stop.cancel();
            let _ = link.await;
            return Ok(());
        }
    }
    println!("listening on {json_addr}");
    if let Some(addr) = text_addr {
        println!("text listening on {addr}");
    }
    if let Some(addr) = tls_addr {
        println!("tls listening on {addr}");
    }

    let ctx = session::Ctx {
        hub,
        cfg: Arc::new(Config::from(&args)),
        shutdown: CancellationToken::new(),
    };
    let total = match args.max_conns {
        0 => usize::try_from(nofile.saturating_sub(100)).unwrap_or(usize::MAX),
        n => n,
    };
    let limits = limits::ConnLimits::new(limits::Limits {
        total,
        per_ip: args.max_conns_per_ip,
    });
    tracing::info!(total, per_ip = args.max_conns_per_ip, "connection limits");
    listener::run(listeners, ctx, limits, shutdown).await;
    link_stop.cancel();
    let _ = link.await;
    tracing::info!("server stopped");
    Ok(())
}
