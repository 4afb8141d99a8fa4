//! The chat screen: status bar, conversations, user list, the active conversation and the
//! message box.

use std::time::Instant;

use egui::{Align, Layout, RichText};

use super::{UiAction, timeline};
use crate::state::{ChatState, Phase};

/// Draws the chat screen.
pub fn show(ui: &mut egui::Ui, state: &mut ChatState, now: Instant, actions: &mut Vec<UiAction>) {
    egui::Panel::top("status")
        .frame(super::side_panel_frame(ui))
        .show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.label(state.status(now));
                ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
                    if ui.button("Settings").clicked() {
                        state.settings_open = !state.settings_open;
                    }
                    match state.phase {
                        Phase::Online { .. } | Phase::Connecting { .. } => {
                            if ui.button("Disconnect").clicked() {
                                actions.push(UiAction::Disconnect);
                            }
                        }
                        Phase::Waiting { .. } | Phase::Idle => {
                            if ui.button("Change server").clicked() {
                                actions.push(UiAction::BackToConnect);
                            }
                            if ui.button("Reconnect").clicked() {
                                actions.push(UiAction::Reconnect);
                            }
                        }
                    }
                });
            });
        });

    if state.settings_open {
        settings_panel(ui.ctx(), state);
    }
    // Ctrl+PageDown / Ctrl+PageUp: the next or previous conversation (as in HexChat).
    let n = state.conversations.len();
    ui.input_mut(|i| {
        if i.consume_key(egui::Modifiers::CTRL, egui::Key::PageDown) {
            actions.push(UiAction::Select((state.active + 1) % n));
        }
        if i.consume_key(egui::Modifiers::CTRL, egui::Key::PageUp) {
            actions.push(UiAction::Select((state.active + n - 1) % n));
        }
    });

    egui::Panel::left("conversations")
        .frame(super::side_panel_frame(ui))
        .resizable(true)
        .show(ui, |ui| {
            ui.heading("Conversations");
            ui.separator();
            for (i, c) in state.conversations.iter().enumerate() {
                let text = match c.unread {
                    0 => RichText::new(&c.title),
                    n => RichText::new(format!("{} ({n})", c.title)).strong(),
                };
                if ui.selectable_label(i == state.active, text).clicked() {
                    actions.push(UiAction::Select(i));
                }
            }
        });

    egui::Panel::right("users")
        .frame(super::side_panel_frame(ui))
        .resizable(true)
        .show(ui, |ui| {
            let online = state.is_online();
            ui.heading(format!("Users ({})", state.users.len()));
            if !online {
                // What the list said when the connection went: shown, but not as the truth.
                ui.label(RichText::new("offline: as last seen").small().weak());
            }
            ui.separator();
            egui::ScrollArea::vertical()
                .auto_shrink(false)
                .show(ui, |ui| {
                    for user in &state.users {
                        let me = *user == state.me;
                        let text = if me {
                            RichText::new(format!("{user} (you)")).strong()
                        } else {
                            RichText::new(user)
                        };
                        let r = ui.add_enabled(online, egui::Button::selectable(false, text));
                        if r.clicked() && !me {
                            actions.push(UiAction::UserClicked(user.clone()));
                        }
                        r.on_hover_text(if me {
                            "That's you"
                        } else {
                            "Click to talk privately"
                        });
                    }
                });
        });

    egui::Panel::bottom("compose")
        .frame(super::side_panel_frame(ui))
        .show(ui, |ui| {
            ui.add_space(4.0);
            ui.horizontal(|ui| {
                let label = ui.label("Message:");
                let send_width = 60.0;
                let id = ui.make_persistent_id("message-box");
                // Keys the box means differently from egui's defaults, taken before it sees
                // them: Enter sends (Shift+Enter is a new line), Tab completes a name instead
                // of moving the focus away, Up and Down recall while the text is one line.
                if ui.memory(|m| m.has_focus(id)) {
                    let one_line = !state.input.contains('\n');
                    ui.input_mut(|i| {
                        if take_plain(i, egui::Key::Enter) {
                            actions.push(UiAction::Submit);
                        }
                        if take_plain(i, egui::Key::Tab) {
                            actions.push(UiAction::CompleteName);
                        }
                        if one_line && take_plain(i, egui::Key::ArrowUp) {
                            actions.push(UiAction::RecallPrevious);
                        }
                        if one_line && take_plain(i, egui::Key::ArrowDown) {
                            actions.push(UiAction::RecallNext);
                        }
                    });
                }
                let edit = egui::TextEdit::multiline(&mut state.input)
                    .id(id)
                    .desired_rows(1)
                    .lock_focus(true)
                    .hint_text("message (Shift+Enter: new line), @nick private, /help")
                    .desired_width(ui.available_width() - send_width);
                let response = ui.add(edit).labelled_by(label.id);
                if state.focus_input {
                    response.request_focus();
                    // Put the cursor after the text (after a recalled or completed entry).
                    let mut edit_state =
                        egui::TextEdit::load_state(ui.ctx(), response.id).unwrap_or_default();
                    let end = egui::text::CCursor::new(state.input.chars().count());
                    edit_state
                        .cursor
                        .set_char_range(Some(egui::text::CCursorRange::one(end)));
                    edit_state.store(ui.ctx(), response.id);
                    state.focus_input = false;
                }
                if ui.button("Send").clicked() {
                    actions.push(UiAction::Submit);
                }
            });
            ui.add_space(4.0);
        });

    super::central_panel(ui).show(ui, |ui| {
        let active = state.active;
        let conv = &state.conversations[active];
        // Scrolled up with news below: a way back to the end, saying how much is new.
        let mut to_end = false;
        if !state.following && conv.unread > 0 {
            let s = if conv.unread == 1 { "" } else { "s" };
            let jump = format!("Jump to latest ({} new message{s})", conv.unread);
            to_end = ui.button(jump).clicked();
        }
        let shown = timeline::show(ui, active, conv, to_end);
        if let Some(line) = shown.retry {
            actions.push(UiAction::Retry(active, line));
        }
        if shown.following != state.following {
            actions.push(UiAction::Following(shown.following));
        }
        if active == 0 && shown.at_top && conv.more_before && !conv.lines.is_empty() {
            actions.push(UiAction::LoadOlder);
        }
    });
}

/// Takes the presses of `key` without any modifier out of this frame's input; returns
/// whether there was one. (egui's `consume_key` ignores Shift, and Shift+Enter must stay
/// a new line.)
fn take_plain(input: &mut egui::InputState, key: egui::Key) -> bool {
    let before = input.events.len();
    input.events.retain(|e| {
        !matches!(e, egui::Event::Key { key: k, pressed: true, modifiers, .. }
            if *k == key && modifiers.is_none())
    });
    input.events.len() < before
}

/// The settings window: theme, text size, notifications. (Its fields are edited in place,
/// like the connect form's; the app applies and remembers them.)
fn settings_panel(ctx: &egui::Context, state: &mut ChatState) {
    use crate::settings::{TEXT_SCALES, Theme};
    let mut open = state.settings_open;
    egui::Window::new("Settings")
        .open(&mut open)
        .resizable(false)
        .collapsible(false)
        .show(ctx, |ui| {
            let s = &mut state.settings;
            ui.horizontal(|ui| {
                ui.label("Theme:");
                ui.radio_value(&mut s.theme, Theme::System, "System");
                ui.radio_value(&mut s.theme, Theme::Light, "Light");
                ui.radio_value(&mut s.theme, Theme::Dark, "Dark");
            });
            ui.horizontal(|ui| {
                let label = ui.label("Text size:");
                ui.add(egui::Slider::new(&mut s.text_scale, TEXT_SCALES).step_by(0.05))
                    .labelled_by(label.id);
            });
            ui.checkbox(
                &mut s.notifications,
                "Desktop notifications for private messages and mentions",
            );
        });
    state.settings_open = open;
}
