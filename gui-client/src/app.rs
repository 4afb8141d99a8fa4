//! Ties the three layers together once per frame: drain network events (with a budget, so a
//! flood never freezes the UI), run timers, draw, and turn what the user did into actions.

use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, unbounded};

use crate::net::{Net, Waker};
use crate::state::{Action, ChatState, ConnectForm, NetEvent};
use crate::view::{self, UiAction};

/// Most network events applied per frame; the rest wait for the next frame.
pub const EVENTS_PER_FRAME: usize = 5_000;

/// Storage key of the connect form.
pub const FORM_KEY: &str = "connect-form";

/// The whole client.
pub struct ChatApp {
    /// The state (public for tests and persistence).
    pub state: ChatState,
    net: Net,
    events: Receiver<NetEvent>,
    /// The window title last set.
    title: String,
    /// `--frame-bench`: the measurement in progress.
    bench: Option<crate::framebench::FrameBench>,
}

impl ChatApp {
    /// A client with a remembered form and a scrollback cap.
    pub fn new(form: ConnectForm, scrollback: usize) -> Self {
        let (tx, rx) = unbounded();
        ChatApp {
            state: ChatState::new(form, scrollback),
            net: Net::new(tx),
            events: rx,
            title: String::new(),
            bench: None,
        }
    }

    /// Runs the frame-time benchmark instead of the chat (`--frame-bench FRAMES`), with
    /// `lines` messages in the room.
    pub fn frame_bench(&mut self, frames: usize, lines: usize) {
        crate::framebench::FrameBench::fill_with(&mut self.state, lines);
        self.bench = Some(crate::framebench::FrameBench::new(frames));
    }

    /// Presses Connect (for `--connect`).
    pub fn connect_now(&mut self, ctx: &egui::Context) {
        let actions = self.state.connect_clicked();
        self.apply(actions, ctx);
    }

    fn apply(&mut self, actions: Vec<Action>, ctx: &egui::Context) {
        let ctx = ctx.clone();
        let wake: Waker = Arc::new(move || ctx.request_repaint());
        for action in actions {
            self.net.apply(action, &wake);
        }
    }

    /// Runs one frame: events, timers, the view, the user's actions.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        if let Some(bench) = &mut self.bench {
            ctx.request_repaint();
            if let Some(summary) = bench.frame() {
                println!("{summary}");
                ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            }
        }
        let now = Instant::now();
        let mut actions = Vec::new();
        for _ in 0..EVENTS_PER_FRAME {
            match self.events.try_recv() {
                Ok(event) => actions.extend(self.state.on_event(event, now)),
                Err(_) => break,
            }
        }
        if !self.events.is_empty() {
            ctx.request_repaint();
        }
        let focused = ctx.input(|i| i.focused);
        if focused != self.state.window_focused {
            self.state.set_window_focused(focused);
        }
        if let Some(what) = self.state.attention.take() {
            tracing::debug!(%what, "asking for attention");
            ctx.send_viewport_cmd(egui::ViewportCommand::RequestUserAttention(
                egui::UserAttentionType::Informational,
            ));
            if self.state.settings.notifications {
                crate::settings::notify("Chat", &what);
            }
        }
        self.state.settings.apply(&ctx);
        actions.extend(self.state.tick(now));
        self.apply(actions, &ctx);
        if let Some(wait) = self.state.wait_left(now) {
            // Wake up for the reconnect, and once a second for the countdown.
            ctx.request_repaint_after(wait.min(std::time::Duration::from_secs(1)));
        }

        let title = self.state.window_title();
        if self.title != title {
            ctx.send_viewport_cmd(egui::ViewportCommand::Title(title.clone()));
            self.title = title;
        }
        for ui_action in view::show(ui, &mut self.state, now) {
            let actions = match ui_action {
                UiAction::Connect => self.state.connect_clicked(),
                UiAction::Disconnect => self.state.disconnect_clicked(),
                UiAction::Reconnect => self.state.reconnect_clicked(),
                UiAction::BackToConnect => self.state.back_to_connect(),
                UiAction::Submit => self.state.submit(),
                UiAction::UserClicked(name) => {
                    self.state.user_clicked(&name);
                    vec![]
                }
                UiAction::Select(i) => {
                    self.state.select(i);
                    vec![]
                }
                UiAction::Retry(conv, line) => self.state.retry(conv, line),
                UiAction::LoadOlder => self.state.load_older(),
                UiAction::Following(f) => {
                    self.state.set_following(f);
                    vec![]
                }
                UiAction::RecallPrevious => {
                    self.state.recall_previous();
                    vec![]
                }
                UiAction::RecallNext => {
                    self.state.recall_next();
                    vec![]
                }
                UiAction::CompleteName => {
                    self.state.complete_name();
                    vec![]
                }
            };
            self.apply(actions, &ctx);
        }
    }
}

impl eframe::App for ChatApp {
    fn raw_input_hook(&mut self, _ctx: &egui::Context, raw_input: &mut egui::RawInput) {
        if let Some(bench) = &self.bench {
            bench.input(raw_input);
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }

    /// The panels' own colour: the central panel is then left unfilled
    /// ([`crate::view::central_panel`]), so the largest area is painted once, by the
    /// clear, not twice (a software renderer pays for every pixel it fills).
    fn clear_color(&self, visuals: &egui::Visuals) -> [f32; 4] {
        visuals.panel_fill.to_normalized_gamma_f32()
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, FORM_KEY, &self.state.form);
        eframe::set_value(storage, crate::settings::SETTINGS_KEY, &self.state.settings);
    }
}
