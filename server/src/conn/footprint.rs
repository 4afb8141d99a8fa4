//! What one logged-in connection holds in the server's own structures, in bytes: the
//! futures of its two tasks and the values they keep. Every connection's task is as large
//! as its largest moment, so these sizes are paid by every idle connection of a large
//! room; BENCHMARKS.md ("Memory per connection") adds them up with what tokio and the
//! allocator add. The bounds fail a change that makes every connection larger.

use std::mem::size_of_val;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use chat_common::command::{self, Request};
use chat_common::json_stream::JsonStreamDecoder;
use chat_common::{ClientFrame, FrameError};
use tokio_util::sync::CancellationToken;

use crate::backend::broker::{BrokerBackend, LinkSettings, TcpDial};
use crate::chat::Chat;
use crate::conn::serve::{self, Input};
use crate::conn::{json_port, line_port};
use crate::core::clients::ClientInfo;
use crate::core::frames::Format;
use crate::core::hub::Hub;
use crate::core::presence::PresencePolicy;
use crate::ctx::Ctx;
use crate::net::limits::Unnamed;
use crate::session::Session;

fn ctx() -> Ctx<BrokerBackend> {
    use clap::Parser;
    let cfg = crate::cli::Args::try_parse_from(["server", "--token", "t"])
        .expect("flags")
        .config(1000)
        .expect("config");
    let hub = Arc::new(Hub::new(
        "127.0.0.1".into(),
        PresencePolicy {
            limit: 0,
            budget: 0,
        },
    ));
    let settings = LinkSettings {
        label: "probe".into(),
        token: netkit::token::TokenSource::Literal("t".into()),
        queue_bytes: 1 << 20,
        heartbeat: Duration::from_secs(1),
        max_frame: 1 << 20,
    };
    // Nothing listens there: the link task only retries, which sizes do not care about.
    let (backend, _task, _up) = BrokerBackend::start(
        hub.clone(),
        TcpDial("127.0.0.1:9".into()),
        settings,
        CancellationToken::new(),
    );
    let login_timeout = cfg.login_timeout;
    Ctx::new(Chat::new(hub, backend, login_timeout), cfg)
}

#[tokio::test]
async fn a_connection_costs_what_the_table_in_benchmarks_md_says() {
    let ctx = ctx();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let connect = || async { tokio::net::TcpStream::connect(addr).await.expect("connect") };

    let json_task = json_port::handle(connect().await, addr, 1, Unnamed::default(), ctx.clone());
    let line_task = line_port::handle(connect().await, addr, 2, Unnamed::default(), ctx.clone());
    let (rd, wr) = connect().await.into_split();
    // Built as the ports build them.
    let out = ctx.outbound(wr, Duration::ZERO);
    let session = Session::unregistered(3, out.queue.clone(), ctx.chat.clone());
    let reader = ctx.reader(rd, JsonStreamDecoder::new(1 << 20), BytesMut::new());
    let logged_in = serve::serve(
        session,
        reader,
        out,
        &ctx,
        "frame",
        |item: Result<ClientFrame, FrameError>| match item {
            Ok(f) => (command::parse_json(f.to, f.msg).map(Some).into(), None),
            Err(bad) => (Input::Bad(bad.into()), None),
        },
    );
    let (_q, rx) = netkit::queue::channel(10);
    let (_rd, wr) = connect().await.into_split();
    let pacing = netkit::writer::Pacing {
        first_gap: Duration::from_millis(50),
        coalesce: Duration::from_millis(3),
    };
    let writer = netkit::writer::run_paced(rx, wr, pacing);
    let (q, _rx) = netkit::queue::channel(10);
    let probe = Session::unregistered(4, q.clone(), ctx.chat.clone());
    let publish = crate::cmd::execute(
        Request::Public {
            text: String::new(),
            confirm: false,
        },
        &probe,
    );
    let login = Session::login(&ctx.chat, 5, "n".into(), addr, Format::Json, &q);

    let rows = [
        (
            "JSON connection task (json_port::handle)",
            size_of_val(&json_task),
            1400,
        ),
        (
            "line connection task (line_port::handle)",
            size_of_val(&line_task),
            1400,
        ),
        (
            "  of which the logged-in loop (serve::serve)",
            size_of_val(&logged_in),
            1050,
        ),
        (
            "  of which a message on its way (cmd::execute)",
            size_of_val(&publish),
            256,
        ),
        (
            "  the login, while it runs (Session::login)",
            size_of_val(&login),
            640,
        ),
        (
            "writer task (netkit::writer::run_paced)",
            size_of_val(&writer),
            560,
        ),
        ("Session", size_of::<Session<BrokerBackend>>(), 72),
        (
            "ClientInfo (the hub's entry, without the map)",
            size_of::<ClientInfo>(),
            64,
        ),
    ];
    for (what, size, bound) in rows {
        eprintln!("{size:>6} B  {what}");
        assert!(size <= bound, "{what}: {size} bytes, more than {bound}");
    }
}
