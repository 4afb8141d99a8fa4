//! A conversation's lines, wrapped, with their line breaks, selectable and copyable, and
//! links clickable, while 100,000 of them stay smooth: only the lines in sight are laid
//! out. The others take an estimated height (their text's length against the width), kept
//! until the conversation or the width changes, so the scroll bar is about right and the
//! lines in sight flow from where the estimate puts the first of them.

use egui::text::LayoutJob;
use egui::{Color32, FontId, RichText, TextFormat};

use crate::state::{ChatLine, Conversation, Delivery, LineKind};

/// What the user did in the timeline, and where it stands.
#[derive(Debug, Default)]
pub struct Shown {
    /// "Retry" was clicked on this line.
    pub retry: Option<usize>,
    /// The end of the conversation is in sight.
    pub following: bool,
    /// The top of the conversation is in sight.
    pub at_top: bool,
}

/// Estimated heights, by line, of one conversation at one width.
#[derive(Clone, Default)]
struct Heights {
    key: (usize, usize, u32, Option<u64>, usize),
    tops: Vec<f32>,
    total: f32,
}

/// Draws conversation `conv` (number `index` in the list) filling the space left; with
/// `to_end`, scrolled to its end.
pub fn show(ui: &mut egui::Ui, index: usize, conv: &Conversation, to_end: bool) -> Shown {
    let font = egui::TextStyle::Body.resolve(ui.style());
    let row = ui.fonts_mut(|f| f.row_height(&font));
    let glyph = ui.fonts_mut(|f| f.glyph_width(&font, 'n')).max(1.0);
    let gap = ui.spacing().item_spacing.y;
    let width = ui.available_width().max(100.0);
    let heights = heights(ui, index, conv, width, glyph, row, gap);
    let mut shown = Shown::default();
    let mut area = egui::ScrollArea::vertical()
        .auto_shrink(false)
        .stick_to_bottom(true);
    if to_end {
        area = area.vertical_scroll_offset(heights.total);
    }
    let out = area.show_viewport(ui, |ui, viewport| {
        ui.set_height(heights.total);
        let n = conv.lines.len();
        let first = heights
            .tops
            .partition_point(|&top| top <= viewport.min.y)
            .saturating_sub(1);
        let top = heights.tops.get(first).copied().unwrap_or(0.0);
        let origin = ui.min_rect().min;
        let rect = egui::Rect::from_min_max(
            origin + egui::vec2(0.0, top),
            egui::pos2(
                origin.x + width,
                origin.y + heights.total.max(top + viewport.height()),
            ),
        );
        let mut child = ui.new_child(egui::UiBuilder::new().max_rect(rect));
        let bottom = origin.y + viewport.max.y;
        for i in first..n {
            if child.cursor().top() > bottom {
                break;
            }
            if let Some(line) = conv.lines.get(i)
                && show_line(&mut child, line, &font)
            {
                shown.retry = Some(i);
            }
        }
    });
    let max = (out.content_size.y - out.inner_rect.height()).max(0.0);
    let offset = out.state.clamped_offset().y;
    shown.following = offset >= max - row;
    shown.at_top = offset <= 0.0;
    shown
}

fn heights(
    ui: &egui::Ui,
    index: usize,
    conv: &Conversation,
    width: f32,
    glyph: f32,
    row: f32,
    gap: f32,
) -> std::sync::Arc<Heights> {
    let key = (
        index,
        conv.lines.len(),
        width.round() as u32,
        conv.lines.front().and_then(|l| l.id),
        conv.lines.front().map_or(0, |l| l.text.len()),
    );
    let id = ui.make_persistent_id(("timeline-heights", index));
    // Shared, not copied: 100,000 heights are 400 KB.
    if let Some(h) = ui.data(|d| d.get_temp::<std::sync::Arc<Heights>>(id))
        && h.key == key
    {
        return h;
    }
    let per_row = (width / glyph).max(10.0);
    let mut tops = Vec::with_capacity(conv.lines.len());
    let mut y = 0.0;
    for line in &conv.lines {
        tops.push(y);
        y += estimate(line, per_row) * row + gap;
    }
    let h = std::sync::Arc::new(Heights {
        key,
        tops,
        total: y,
    });
    ui.data_mut(|d| d.insert_temp(id, h.clone()));
    h
}

/// How many rows `line` takes with `per_row` characters to a row.
fn estimate(line: &ChatLine, per_row: f32) -> f32 {
    let mut lead = line.time.len() + line.who.len() + 4;
    let mut rows = 0.0;
    for para in line.text.split('\n') {
        rows += (((para.len() + lead) as f32) / per_row).ceil().max(1.0);
        lead = 0;
    }
    rows
}

/// Draws one line; returns whether its "retry" was clicked.
fn show_line(ui: &mut egui::Ui, line: &ChatLine, font: &FontId) -> bool {
    let visuals = ui.visuals().clone();
    let private = if visuals.dark_mode {
        Color32::from_rgb(0xd0, 0x8c, 0xff)
    } else {
        Color32::from_rgb(0x80, 0x20, 0xb0)
    };
    let mention = if visuals.dark_mode {
        Color32::from_rgb(0x50, 0x40, 0x10)
    } else {
        Color32::from_rgb(0xff, 0xf0, 0xb0)
    };
    let weak = visuals.weak_text_color();
    let (who, color, italics) = match line.kind {
        LineKind::Chat => (format!("{}: ", line.who), visuals.text_color(), false),
        LineKind::Own => (format!("{}: ", line.who), visuals.hyperlink_color, false),
        LineKind::PrivateIn => (format!("(private) {}: ", line.who), private, false),
        LineKind::PrivateOut => (format!("(private to {}) ", line.who), private, false),
        LineKind::Join | LineKind::Leave => ("* ".to_string(), weak, true),
        LineKind::System => ("-- ".to_string(), weak, true),
        LineKind::Error => ("! ".to_string(), visuals.error_fg_color, false),
        LineKind::Away => ("—— ".to_string(), visuals.hyperlink_color, false),
    };
    let mut retry = false;
    ui.horizontal_top(|ui| {
        match &line.delivery {
            Some(Delivery::Queued { .. }) => {
                ui.label(RichText::new("(queued)").color(weak));
            }
            Some(Delivery::Pending { .. }) => {
                ui.label(RichText::new("(sending)").color(weak));
            }
            Some(Delivery::Failed { reason }) => {
                ui.colored_label(visuals.error_fg_color, "(failed)")
                    .on_hover_text(reason);
                retry = ui.small_button("Retry").on_hover_text(reason).clicked();
            }
            Some(Delivery::Sent) | None => {}
        }
        let format = |color: Color32| TextFormat {
            font_id: font.clone(),
            color,
            italics,
            background: if line.mention {
                mention
            } else {
                Color32::TRANSPARENT
            },
            ..Default::default()
        };
        let links = links(&line.text);
        if links.is_empty() {
            let mut job = LayoutJob::default();
            if !line.time.is_empty() {
                job.append(&format!("[{}] ", line.time), 0.0, format(weak));
            }
            job.append(&who, 0.0, format(color));
            job.append(
                &line.text,
                0.0,
                format(if line.kind == LineKind::Away {
                    color
                } else {
                    visuals.text_color()
                }),
            );
            job.wrap.max_width = ui.available_width();
            ui.add(egui::Label::new(job).wrap().selectable(true));
        } else {
            // With links: the pieces flow, and each link opens in the browser.
            ui.horizontal_wrapped(|ui| {
                ui.spacing_mut().item_spacing.x = 0.0;
                ui.label(RichText::new(format!("[{}] {who}", line.time)).color(color));
                let mut at = 0;
                for (start, end) in links {
                    ui.label(&line.text[at..start]);
                    let url = &line.text[start..end];
                    ui.hyperlink_to(url, url);
                    at = end;
                }
                ui.label(&line.text[at..]);
            });
        }
    });
    retry
}

/// Where the `http://` and `https://` links in `text` are, as byte ranges.
pub fn links(text: &str) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(rel) = text[from..].find("http") {
        let start = from + rel;
        let rest = &text[start..];
        if rest.starts_with("https://") || rest.starts_with("http://") {
            let len = rest
                .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"'))
                .unwrap_or(rest.len());
            // A sentence's full stop or closing bracket is not part of the link.
            let url = rest[..len].trim_end_matches(['.', ',', ')', ';', ':', '!', '?']);
            if url.len() > "https://".len() {
                found.push((start, start + url.len()));
            }
            from = start + len.max(1);
        } else {
            from = start + 4;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_found_without_trailing_punctuation() {
        let t = "see https://example.org/a?b=1. and http://x.io, not httpfoo or https://";
        let got: Vec<&str> = links(t).into_iter().map(|(s, e)| &t[s..e]).collect();
        assert_eq!(got, ["https://example.org/a?b=1", "http://x.io"]);
        assert!(links("no links here").is_empty());
    }

    #[test]
    fn a_long_or_multi_line_message_is_estimated_taller() {
        let short = ChatLine::new(LineKind::Chat, "bob", "hi", "12:00".into());
        let long = ChatLine::new(LineKind::Chat, "bob", "x".repeat(5000), "12:00".into());
        let lines = ChatLine::new(LineKind::Chat, "bob", "a\nb\nc", "12:00".into());
        assert_eq!(estimate(&short, 80.0), 1.0);
        assert!(estimate(&long, 80.0) >= 62.0);
        assert_eq!(estimate(&lines, 80.0), 3.0);
    }
}
