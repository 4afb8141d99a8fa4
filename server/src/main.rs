//! `server`: a chat front-end server (see the library's docs).
//!
//! `server --listen 127.0.0.1:0 --text-listen 127.0.0.1:0 --broker ADDR` prints
//! `listening on IP:PORT` and `text listening on IP:PORT` once the broker link is up (and,
//! with `--metrics-listen`, `metrics listening on IP:PORT` last).

use clap::Parser;
use server::cli::Args;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _log = netkit::logging::init();
    // Before the runtime starts its threads (see netkit::fdlimit).
    let nofile = netkit::fdlimit::prepare();
    tracing::debug!(nofile, "open-file limit");
    let ready = |addrs: server::Addrs| {
        netkit::logging::announce(&format!("listening on {}", addrs.json));
        if let Some(addr) = addrs.line {
            netkit::logging::announce(&format!("text listening on {addr}"));
        }
        if let Some(addr) = addrs.tls {
            netkit::logging::announce(&format!("tls listening on {addr}"));
        }
        if let Some(addr) = addrs.metrics {
            netkit::logging::announce(&format!("metrics listening on {addr}"));
        }
    };
    netkit::runtime::build(args.threads)?.block_on(server::launch(
        &args,
        nofile,
        ready,
        netkit::shutdown::signal(),
    ))
}
