//! The chat screen: status bar, conversations, user list, the active conversation and the
//! message box.

use std::time::Instant;

use egui::{Align, Layout, RichText};

use super::{UiAction, timeline};
use crate::state::{ChatState, Phase};

/// Draws the chat screen.
pub fn show(ui: &mut egui::Ui, state: &mut ChatState, now: Instant, actions: &mut Vec<UiAction>) {
    egui::Panel::top("status").show(ui, |ui| {
        ui.horizontal(|ui| {
            ui.label(state.status(now));
            ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
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

    egui::Panel::left("conversations")
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

    egui::Panel::right("users").resizable(true).show(ui, |ui| {
        ui.heading(format!("Users ({})", state.users.len()));
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
                    let r = ui.selectable_label(false, text);
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

    egui::Panel::bottom("compose").show(ui, |ui| {
        ui.add_space(4.0);
        ui.horizontal(|ui| {
            let label = ui.label("Message:");
            let send_width = 60.0;
            let edit = egui::TextEdit::singleline(&mut state.input)
                .hint_text("message, @nick private, /list, /time, /help, /quit")
                .desired_width(ui.available_width() - send_width);
            let response = ui.add(edit).labelled_by(label.id);
            if state.focus_input {
                response.request_focus();
                // Put the cursor after the text (after "@nick " when a user was clicked).
                let mut edit_state =
                    egui::TextEdit::load_state(ui.ctx(), response.id).unwrap_or_default();
                let end = egui::text::CCursor::new(state.input.chars().count());
                edit_state
                    .cursor
                    .set_char_range(Some(egui::text::CCursorRange::one(end)));
                edit_state.store(ui.ctx(), response.id);
                state.focus_input = false;
            }
            if response.has_focus() {
                if ui.input(|i| i.key_pressed(egui::Key::ArrowUp)) {
                    actions.push(UiAction::RecallPrevious);
                }
                if ui.input(|i| i.key_pressed(egui::Key::ArrowDown)) {
                    actions.push(UiAction::RecallNext);
                }
            }
            let enter = response.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            if ui.button("Send").clicked() || enter {
                actions.push(UiAction::Submit);
            }
        });
        ui.add_space(4.0);
    });

    egui::CentralPanel::default().show(ui, |ui| {
        let active = state.active;
        let conv = &state.conversations[active];
        let shown = timeline::show(ui, active, conv);
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
