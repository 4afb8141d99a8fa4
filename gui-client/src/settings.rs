//! What the user chose in the settings panel, remembered between runs like the connect
//! form, and how it is applied to the window.

use serde::{Deserialize, Serialize};

/// Storage key of the settings.
pub const SETTINGS_KEY: &str = "settings";

/// Light, dark, or whatever the system says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Theme {
    /// Follow the system.
    #[default]
    System,
    /// Always light.
    Light,
    /// Always dark.
    Dark,
}

/// The user's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The colours.
    pub theme: Theme,
    /// How large everything is drawn, 1.0 = egui's default.
    pub text_scale: f32,
    /// A desktop notification for a private message or a mention while the window is not
    /// focused (besides asking the window manager for attention, which is always done).
    pub notifications: bool,
}

/// The text sizes the panel offers.
pub const TEXT_SCALES: std::ops::RangeInclusive<f32> = 0.75..=2.0;

impl Default for Settings {
    fn default() -> Self {
        Settings {
            theme: Theme::System,
            text_scale: 1.0,
            notifications: true,
        }
    }
}

impl Settings {
    /// The settings with anything out of range (an edited or older file) put back in it.
    pub fn sane(mut self) -> Self {
        if !self.text_scale.is_finite() {
            self.text_scale = 1.0;
        }
        self.text_scale = self
            .text_scale
            .clamp(*TEXT_SCALES.start(), *TEXT_SCALES.end());
        self
    }

    /// Applies them to the window.
    pub fn apply(&self, ctx: &egui::Context) {
        let theme = match self.theme {
            Theme::System => egui::ThemePreference::System,
            Theme::Light => egui::ThemePreference::Light,
            Theme::Dark => egui::ThemePreference::Dark,
        };
        ctx.options_mut(|o| o.theme_preference = theme);
        if (ctx.zoom_factor() - self.text_scale).abs() > f32::EPSILON {
            ctx.set_zoom_factor(self.text_scale);
        }
    }
}

/// Shows a desktop notification through `notify-send` (libnotify), where the desktop has
/// it; nothing happens where it does not. Never waits for it.
pub fn notify(summary: &str, body: &str) {
    let child = std::process::Command::new("notify-send")
        .args(["--app-name=Chat", summary, body])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    match child {
        // Reaped on a thread of its own, so no zombie is left and the UI never waits.
        Ok(mut child) => {
            let _ = std::thread::Builder::new()
                .name("notify".into())
                .spawn(move || child.wait());
        }
        Err(e) => tracing::debug!("no desktop notification: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_survive_storage_and_bad_values_are_mended() {
        let s = Settings {
            theme: Theme::Dark,
            text_scale: 1.5,
            notifications: false,
        };
        let text = serde_json::to_string(&s).unwrap();
        let back: Settings = serde_json::from_str(&text).unwrap();
        assert_eq!(back, s);
        let old: Settings = serde_json::from_str(r#"{"theme":"Light"}"#).unwrap();
        assert_eq!(
            (old.theme, old.text_scale, old.notifications),
            (Theme::Light, 1.0, true)
        );
        let wild = Settings {
            text_scale: 40.0,
            ..Settings::default()
        };
        assert_eq!(wild.sane().text_scale, 2.0);
        let nan = Settings {
            text_scale: f32::NAN,
            ..Settings::default()
        };
        assert_eq!(nan.sane().text_scale, 1.0);
    }
}
