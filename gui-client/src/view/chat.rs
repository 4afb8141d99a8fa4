//! The chat screen: status bar, conversations, user list, the active conversation and the
//! message box.

use std::time::Instant;

use egui::{Align, Color32, Layout, RichText};

use super::UiAction;
use crate::state::{ChatLine, ChatState, Delivery, LineKind, Phase};

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
        let row_height = ui
            .spacing()
            .interact_size
            .y
            .max(ui.text_style_height(&egui::TextStyle::Body));
        let active = state.active;
        let conv = &state.conversations[active];
        let total = conv.lines.len();
        // Only the visible rows are laid out, so 100,000 lines cost what 50 do.
        let out = egui::ScrollArea::vertical()
            .auto_shrink(false)
            .stick_to_bottom(true)
            .show_rows(ui, row_height, total, |ui, rows| {
                for i in rows {
                    if let Some(line) = conv.lines.get(i)
                        && show_line(ui, line)
                    {
                        actions.push(UiAction::Retry(active, i));
                    }
                }
            });
        let max = (out.content_size.y - out.inner_rect.height()).max(0.0);
        let following = out.state.clamped_offset().y >= max - row_height;
        if following != state.following {
            actions.push(UiAction::Following(following));
        }
        if active == 0 && out.state.clamped_offset().y <= 0.0 && conv.more_before && total > 0 {
            actions.push(UiAction::LoadOlder);
        }
    });
}

/// Draws one line; returns whether its "retry" was clicked.
fn show_line(ui: &mut egui::Ui, line: &ChatLine) -> bool {
    let visuals = ui.visuals();
    let private = if visuals.dark_mode {
        Color32::from_rgb(0xd0, 0x8c, 0xff)
    } else {
        Color32::from_rgb(0x80, 0x20, 0xb0)
    };
    let (text, color, strong) = match line.kind {
        LineKind::Chat => (
            format!("{}: {}", line.who, line.text),
            visuals.text_color(),
            false,
        ),
        LineKind::Own => (
            format!("{}: {}", line.who, line.text),
            visuals.hyperlink_color,
            false,
        ),
        LineKind::PrivateIn => (
            format!("(private) {}: {}", line.who, line.text),
            private,
            true,
        ),
        LineKind::PrivateOut => (
            format!("(private to {}) {}", line.who, line.text),
            private,
            false,
        ),
        LineKind::Join | LineKind::Leave => {
            (format!("* {}", line.text), visuals.weak_text_color(), false)
        }
        LineKind::System => (
            format!("-- {}", line.text),
            visuals.weak_text_color(),
            false,
        ),
        LineKind::Error => (format!("! {}", line.text), visuals.error_fg_color, true),
        LineKind::Away => (
            format!("—— {} ——", line.text),
            visuals.hyperlink_color,
            true,
        ),
    };
    // One row per message keeps rows uniform for show_rows; the full text is on hover.
    let one_line = text.replace(['\n', '\r'], " ");
    let mut rich = RichText::new(format!("[{}] {one_line}", line.time)).color(color);
    if strong {
        rich = rich.strong();
    }
    if matches!(
        line.kind,
        LineKind::Join | LineKind::Leave | LineKind::System
    ) {
        rich = rich.italics();
    }
    let mut retry = false;
    ui.horizontal(|ui| {
        match &line.delivery {
            Some(Delivery::Queued { .. }) => {
                ui.weak("(queued)");
            }
            Some(Delivery::Pending { .. }) => {
                ui.weak("(sending)");
            }
            Some(Delivery::Failed { reason }) => {
                ui.colored_label(ui.visuals().error_fg_color, "(failed)")
                    .on_hover_text(reason);
                retry = ui.small_button("Retry").clicked();
            }
            Some(Delivery::Sent) | None => {}
        }
        let response = ui.add(egui::Label::new(rich).truncate());
        if one_line.len() > 80 {
            response.on_hover_text(text);
        }
    });
    retry
}
