//! `gui-client`: the chat system's desktop client.
//!
//! `gui-client --server HOST:PORT --name NAME --connect` skips the connect screen.

use anyhow::Context;
use clap::Parser;
use gui_client::app::{ChatApp, FORM_KEY};
use gui_client::state::{ConnectForm, DEFAULT_SCROLLBACK};

/// Desktop client for the chat system.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Server to use, as HOST:PORT (remembered between runs).
    #[arg(long, env = "CHAT_SERVER")]
    server: Option<String>,
    /// User name (remembered between runs).
    #[arg(long, env = "CHAT_NAME")]
    name: Option<String>,
    /// Connect with TLS (to the server's TLS port; remembered between runs).
    #[arg(long)]
    tls: bool,
    /// With TLS, trust this PEM CA file instead of the system's certificates.
    #[arg(long, env = "CHAT_CA_FILE")]
    ca_file: Option<String>,
    /// Connect at start instead of showing the connect screen.
    #[arg(long)]
    connect: bool,
    /// Most messages kept on screen; older ones are dropped.
    #[arg(long, env = "CHAT_SCROLLBACK", default_value_t = DEFAULT_SCROLLBACK)]
    scrollback: usize,
    /// Measure FRAMES frames while scrolling through 100,000 messages, print the figures as
    /// JSON and exit (BENCHMARKS.md; `bench/gui-frames.sh` runs it under Xvfb).
    #[arg(long, value_name = "FRAMES", hide = true)]
    frame_bench: Option<usize>,
    /// With `--frame-bench`: how many messages (0 measures the renderer's floor).
    #[arg(long, value_name = "N", hide = true, default_value_t = gui_client::framebench::LINES)]
    frame_bench_lines: usize,
}

const ICON: &[u8] = include_bytes!("../../assets/icon.png");

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();

    let mut viewport = egui::ViewportBuilder::default()
        .with_title("Chat")
        .with_inner_size([900.0, 600.0])
        .with_min_inner_size([480.0, 320.0]);
    match eframe::icon_data::from_png_bytes(ICON) {
        Ok(icon) => viewport = viewport.with_icon(icon),
        Err(e) => tracing::warn!("cannot load the app icon: {e}"),
    }
    let options = eframe::NativeOptions {
        viewport,
        // No dithering: it only smooths gradients (a flat-coloured chat has none but menu
        // shadows), and on a software renderer its per-pixel noise took about a tenth of
        // a frame (BENCHMARKS.md, "2026-12-02 (day)").
        dithering: false,
        ..Default::default()
    };
    eframe::run_native(
        "chat-gui-client",
        options,
        Box::new(move |cc| {
            let mut form: ConnectForm = cc
                .storage
                .and_then(|s| eframe::get_value(s, FORM_KEY))
                .unwrap_or_default();
            if let Some(server) = &args.server {
                let (host, port) = server
                    .rsplit_once(':')
                    .unwrap_or((server.as_str(), "65432"));
                form.host = host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string();
                form.port = port.to_string();
            }
            if let Some(name) = &args.name {
                form.name = name.clone();
            }
            if args.tls {
                form.tls = true;
            }
            if let Some(ca) = &args.ca_file {
                form.ca_file = ca.clone();
            }
            let settings: gui_client::settings::Settings = cc
                .storage
                .and_then(|s| eframe::get_value(s, gui_client::settings::SETTINGS_KEY))
                .unwrap_or_default();
            let found = gui_client::fonts::install(&cc.egui_ctx);
            tracing::info!(
                ?found,
                "fonts of the system added for the scripts egui lacks"
            );
            let mut app = ChatApp::new(form, args.scrollback);
            app.state.settings = settings.sane();
            app.state.settings.apply(&cc.egui_ctx);
            if let Some(frames) = args.frame_bench {
                app.frame_bench(frames, args.frame_bench_lines);
            } else if args.connect {
                app.connect_now(&cc.egui_ctx);
            }
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))
    .context("running the window (is there a display? DISPLAY or WAYLAND_DISPLAY must be set)")
}
