//! The connect screen: host, port, name, TLS and its CA file, Connect, and the reason a
//! connection failed.

use egui::{Align, Layout, RichText};

use super::UiAction;
use crate::state::{ChatState, Phase};

/// Draws the connect screen.
pub fn show(ui: &mut egui::Ui, state: &mut ChatState, actions: &mut Vec<UiAction>) {
    super::central_panel(ui).show(ui, |ui| {
        ui.with_layout(Layout::top_down(Align::Center), |ui| {
            ui.add_space(40.0);
            ui.heading("Chat");
            ui.add_space(20.0);
            let busy = matches!(state.phase, Phase::Connecting { .. });
            // Enter connects from anywhere on this screen, a field focused or not.
            let mut enter = ui.input(|i| i.key_pressed(egui::Key::Enter));
            // Nothing focused yet (the screen just opened): the name, which is what a new
            // user types first.
            let focus_name = ui.memory(|m| m.focused().is_none());
            // The grid, centred like the title and the button.
            let left = ((ui.available_width() - FORM_WIDTH) / 2.0).max(0.0);
            ui.horizontal(|ui| {
                ui.add_space(left);
                egui::Grid::new("connect-form")
                    .num_columns(2)
                    .spacing([12.0, 10.0])
                    .show(ui, |ui| {
                        enter |= field(ui, "Server:", &mut state.form.host, 220.0, false);
                        ui.end_row();
                        enter |= field(ui, "Port:", &mut state.form.port, 80.0, false);
                        ui.end_row();
                        enter |= field(ui, "Name:", &mut state.form.name, 220.0, focus_name);
                        ui.end_row();
                        ui.label("");
                        ui.checkbox(&mut state.form.tls, "Use TLS").on_hover_text(
                            "Connect to the server's TLS port and check its certificate",
                        );
                        ui.end_row();
                        if state.form.tls {
                            enter |= field(ui, "CA file:", &mut state.form.ca_file, 220.0, false);
                            ui.end_row();
                            ui.label("");
                            ui.label(
                                RichText::new(
                                    "PEM file to trust; empty: the system's certificates",
                                )
                                .small()
                                .weak(),
                            );
                            ui.end_row();
                        }
                    });
            });
            ui.add_space(12.0);
            let button = ui.add_enabled(!busy, egui::Button::new("Connect"));
            if (button.clicked() || enter) && !busy {
                actions.push(UiAction::Connect);
            }
            if busy {
                ui.add_space(8.0);
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label(format!("Connecting to {}...", state.server));
                });
            }
            if let Some(err) = &state.connect_error {
                ui.add_space(12.0);
                ui.label(
                    RichText::new(err)
                        .color(ui.visuals().error_fg_color)
                        .strong(),
                );
            }
        });
    });
}

/// The form's width: its labels, its widest field, the spacing between.
const FORM_WIDTH: f32 = 300.0;

/// A labelled single-line field, focused when `focus`; true when Enter was pressed in it.
fn field(ui: &mut egui::Ui, label: &str, value: &mut String, width: f32, focus: bool) -> bool {
    let label = ui.label(label);
    let response = ui
        .add(egui::TextEdit::singleline(value).desired_width(width))
        .labelled_by(label.id);
    if focus {
        response.request_focus();
    }
    response.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter))
}
