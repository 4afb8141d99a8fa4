//! The egui view: draws the state and reports what the user did as [`UiAction`]s. The
//! only state it writes is text the user types into its fields.

mod chat;
mod connect;
pub mod timeline;

use std::time::Instant;

use crate::state::ChatState;

/// Something the user did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UiAction {
    /// Pressed Connect.
    Connect,
    /// Pressed Disconnect.
    Disconnect,
    /// Pressed Reconnect.
    Reconnect,
    /// Wants the connect screen back.
    BackToConnect,
    /// Pressed Enter or Send in the message box.
    Submit,
    /// Clicked a user in the list.
    UserClicked(String),
    /// Picked conversation `0` (an index into `ChatState::conversations`).
    Select(usize),
    /// Clicked "retry" on a failed message: conversation, line.
    Retry(usize, usize),
    /// Scrolled to the top of the room.
    LoadOlder,
    /// Whether the end of the conversation is in sight.
    Following(bool),
    /// Up, Down and Tab in the message box.
    RecallPrevious,
    /// See [`UiAction::RecallPrevious`].
    RecallNext,
    /// See [`UiAction::RecallPrevious`].
    CompleteName,
}

/// Draws the screen the state calls for.
pub fn show(ui: &mut egui::Ui, state: &mut ChatState, now: Instant) -> Vec<UiAction> {
    let mut actions = Vec::new();
    if state.in_chat {
        chat::show(ui, state, now, &mut actions);
    } else {
        connect::show(ui, state, &mut actions);
    }
    actions
}

/// The central panel, unfilled: the window is cleared to the panels' colour
/// (`ChatApp::clear_color`), so filling it again would paint the area twice, and a
/// software renderer pays for every pixel it fills (BENCHMARKS.md, "2026-12-02 (day)").
pub fn central_panel(ui: &egui::Ui) -> egui::CentralPanel {
    let frame = egui::Frame::central_panel(ui.style()).fill(egui::Color32::TRANSPARENT);
    egui::CentralPanel::default().frame(frame)
}

/// A side, top or bottom panel's frame, unfilled for the same reason as
/// [`central_panel`]; its separator line is still drawn.
pub fn side_panel_frame(ui: &egui::Ui) -> egui::Frame {
    egui::Frame::side_top_panel(ui.style()).fill(egui::Color32::TRANSPARENT)
}
