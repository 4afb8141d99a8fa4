//! `server`: a chat front-end server (see the library's docs).
//!
//! `server --listen 127.0.0.1:0 --text-listen 127.0.0.1:0 --broker ADDR` prints
//! `listening on IP:PORT` and `text listening on IP:PORT` once the broker link is up.

use clap::Parser;
use server::cli::Args;
use server::net::tls;
use server::{Listeners, run};

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    netkit::logging::init();
    // Before the runtime starts its threads (see netkit::fdlimit).
    let nofile = netkit::fdlimit::prepare();
    tracing::debug!(nofile, "open-file limit");
    netkit::runtime::build(args.threads)?.block_on(serve(args, nofile))
}

async fn serve(args: Args, nofile: u64) -> anyhow::Result<()> {
    let config = args.config(nofile)?;
    let tls = match args.tls_listen.addr() {
        Some(addr) => {
            let identity = tls::Identity::from_flags(
                args.tls_cert.clone(),
                args.tls_key.clone(),
                args.tls_self_signed,
                addr.ip(),
            )?;
            let (acceptor, cert_file) = tls::acceptor(&identity)?;
            tracing::info!("TLS certificate: {}", cert_file.display());
            Some((addr, acceptor))
        }
        None => None,
    };
    let listeners = Listeners::bind(args.listen, args.text_listen, tls).await?;
    let addrs = listeners.addrs()?;
    let ready = || {
        println!("listening on {}", addrs.json);
        if let Some(addr) = addrs.line {
            println!("text listening on {addr}");
        }
        if let Some(addr) = addrs.tls {
            println!("tls listening on {addr}");
        }
    };
    run(config, listeners, ready, netkit::shutdown::signal()).await
}
