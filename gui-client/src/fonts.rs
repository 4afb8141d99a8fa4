//! Fonts for the scripts egui's own set lacks. egui ships Latin, Greek and Cyrillic
//! (Ubuntu Light, Hack), and with its `monochrome_emoji_fonts` feature (on in this crate:
//! 743 KB, Noto Emoji and emoji-icon-font) the emoji; Chinese, Japanese, Korean,
//! Arabic, Hebrew, Devanagari and more come from the system's fonts where they are
//! installed: nothing is bundled, so the binary does not grow (a CJK font alone is
//! 15–20 MB), and a machine without them shows boxes for those scripts only.
//!
//! egui neither shapes Arabic letters into their joined forms nor lays out right-to-left
//! text: such text shows its letters, unjoined, left to right.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where Linux (Debian and Fedora packages), macOS and Windows keep fonts that cover the
/// scripts egui lacks, best first.
pub const CANDIDATES: &[&str] = &[
    // Chinese, Japanese, Korean.
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/System/Library/Fonts/PingFang.ttc",
    "C:\\Windows\\Fonts\\msyh.ttc",
    // Arabic, Hebrew, and much of the rest of Unicode.
    "/usr/share/fonts/truetype/noto/NotoSansArabic-Regular.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/System/Library/Fonts/Supplemental/Arial Unicode.ttf",
    "C:\\Windows\\Fonts\\seguisym.ttf",
    "C:\\Windows\\Fonts\\arial.ttf",
];

/// No font file is read past this size (a damaged or odd file must not take the memory).
pub const MAX_FONT_BYTES: u64 = 64 * 1024 * 1024;

/// The fonts of `candidates` that exist and can be read, with their names.
pub fn load(candidates: &[&str]) -> Vec<(String, Vec<u8>)> {
    candidates
        .iter()
        .map(PathBuf::from)
        .filter_map(|path| read(&path).map(|bytes| (name_of(&path), bytes)))
        .collect()
}

fn read(path: &Path) -> Option<Vec<u8>> {
    let size = std::fs::metadata(path).ok()?.len();
    if size == 0 || size > MAX_FONT_BYTES {
        return None;
    }
    std::fs::read(path).ok()
}

fn name_of(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// egui's fonts with `extra` after them, in both families: a character egui's fonts lack
/// is drawn from the first of them that has it.
pub fn with_fallbacks(extra: Vec<(String, Vec<u8>)>) -> egui::FontDefinitions {
    let mut fonts = egui::FontDefinitions::default();
    for (name, bytes) in extra {
        fonts
            .font_data
            .insert(name.clone(), Arc::new(egui::FontData::from_owned(bytes)));
        for family in [egui::FontFamily::Proportional, egui::FontFamily::Monospace] {
            fonts.families.entry(family).or_default().push(name.clone());
        }
    }
    fonts
}

/// Installs egui's fonts and the system's fallbacks; returns the names of those found.
pub fn install(ctx: &egui::Context) -> Vec<String> {
    let extra = load(CANDIDATES);
    let names = extra.iter().map(|(n, _)| n.clone()).collect();
    ctx.set_fonts(with_fallbacks(extra));
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fonts_that_exist_are_added_after_eguis_and_the_rest_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        // A real font file: one of egui's own, written out.
        let defaults = egui::FontDefinitions::default();
        let emoji = defaults
            .font_data
            .get("NotoEmoji-Regular")
            .expect("egui's emoji font");
        let path = dir.path().join("Fallback.ttf");
        std::fs::write(&path, (*emoji.font).as_ref()).unwrap();
        let empty = dir.path().join("Empty.ttf");
        std::fs::write(&empty, b"").unwrap();
        let path = path.to_str().unwrap();
        let found = load(&["/nonexistent/font.ttf", empty.to_str().unwrap(), path]);
        assert_eq!(found.len(), 1, "only the readable, non-empty one");
        assert_eq!(found[0].0, "Fallback.ttf");
        let fonts = with_fallbacks(found);
        for family in [egui::FontFamily::Proportional, egui::FontFamily::Monospace] {
            let order = &fonts.families[&family];
            assert_eq!(
                order.last().map(String::as_str),
                Some("Fallback.ttf"),
                "last: a fallback"
            );
            assert!(order.len() > 1, "egui's own come first");
        }
        assert!(fonts.font_data.contains_key("Fallback.ttf"));
    }

    #[test]
    fn emoji_are_drawn_with_the_bundled_emoji_fonts() {
        let ctx = egui::Context::default();
        ctx.set_fonts(with_fallbacks(Vec::new()));
        let mut out = ctx.run_ui(egui::RawInput::default(), |_| {});
        out.textures_delta.clear();
        let font = egui::FontId::proportional(14.0);
        let has = |c| ctx.fonts_mut(|f| f.has_glyph(&font, c));
        assert!(has('😀') && has('👍') && has('🎉'), "emoji");
        assert!(has('é') && has('Ж'), "Latin and Cyrillic");
    }
}
