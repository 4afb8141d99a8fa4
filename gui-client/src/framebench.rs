//! `gui-client --frame-bench FRAMES`: how long frames take while scrolling through 100,000
//! messages of mixed lengths (BENCHMARKS.md, issue 13). The room is filled with generated
//! lines, the window scrolls up by a wheel step every frame, and the time between frames
//! (layout, tessellation and painting by the renderer, whatever it is) is recorded; the
//! figures go to standard output as one JSON line and the window closes.

use std::time::Instant;

use crate::state::{ChatLine, ChatState, LineKind};

/// Lines the benchmark fills the room with.
pub const LINES: usize = 100_000;

/// The measurement in progress.
pub struct FrameBench {
    frames: usize,
    last: Option<Instant>,
    times_us: Vec<u64>,
}

impl FrameBench {
    /// A benchmark of `frames` frames.
    pub fn new(frames: usize) -> Self {
        FrameBench {
            frames: frames.max(1),
            last: None,
            times_us: Vec::with_capacity(frames),
        }
    }

    /// Fills the room of `state` with [`LINES`] lines: mostly short, some long, some of
    /// several lines (one in 50 wraps over many rows, one in 20 has line breaks).
    pub fn fill(state: &mut ChatState) {
        Self::fill_with(state, LINES);
    }

    /// Like [`FrameBench::fill`] with `count` lines (0: the renderer's floor, to compare).
    pub fn fill_with(state: &mut ChatState, count: usize) {
        state.in_chat = true;
        state.me = "bench".into();
        let room = &mut state.conversations[0];
        let words = [
            "chat", "broker", "message", "history", "server", "queue", "rust",
        ];
        for i in 0..count {
            let n = match i % 50 {
                0 => 400,
                1..=5 => 40,
                _ => 3 + i % 12,
            };
            let mut text: String = (0..n)
                .map(|k| words[(i + k) % words.len()])
                .collect::<Vec<_>>()
                .join(" ");
            if i % 20 == 7 {
                text.push_str("\nsecond line\nthird line");
            }
            let who = format!("user{}", i % 37);
            let mut line = ChatLine::new(LineKind::Chat, who, text, "12:00".into());
            line.id = Some(i as u64 + 1);
            room.lines.push_back(line);
        }
    }

    /// Scrolls the room up by one wheel step, over the middle of the window.
    pub fn input(&self, raw: &mut egui::RawInput) {
        let center = raw
            .screen_rect
            .map_or(egui::pos2(450.0, 300.0), |r| r.center());
        raw.events.push(egui::Event::PointerMoved(center));
        raw.events.push(egui::Event::MouseWheel {
            unit: egui::MouseWheelUnit::Line,
            delta: egui::vec2(0.0, 3.0),
            modifiers: egui::Modifiers::NONE,
            phase: egui::TouchPhase::Move,
            source: egui::MouseWheelSource::Wheel,
        });
    }

    /// A frame began; returns the summary once the last one is in.
    pub fn frame(&mut self) -> Option<String> {
        let now = Instant::now();
        if let Some(last) = self.last {
            let us = u64::try_from(now.duration_since(last).as_micros()).unwrap_or(u64::MAX);
            self.times_us.push(us);
        }
        self.last = Some(now);
        (self.times_us.len() >= self.frames).then(|| summary(&mut self.times_us))
    }
}

fn summary(times: &mut [u64]) -> String {
    times.sort_unstable();
    let at = |q: f64| {
        let i = ((times.len() as f64 - 1.0) * q).round() as usize;
        times.get(i).copied().unwrap_or(0) as f64 / 1000.0
    };
    let mean = times.iter().sum::<u64>() as f64 / times.len().max(1) as f64 / 1000.0;
    format!(
        "{{\"frames\":{},\"mean_ms\":{mean:.2},\"p50_ms\":{:.2},\"p99_ms\":{:.2},\"max_ms\":{:.2}}}",
        times.len(),
        at(0.5),
        at(0.99),
        at(1.0)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_room_is_filled_with_mixed_lines_and_the_summary_counts_frames() {
        let mut s = ChatState::new(crate::state::ConnectForm::default(), LINES);
        FrameBench::fill(&mut s);
        let lines = &s.room().lines;
        assert_eq!(lines.len(), LINES);
        assert!(lines.iter().any(|l| l.text.len() > 2000), "long ones");
        assert!(
            lines.iter().any(|l| l.text.contains('\n')),
            "multi-line ones"
        );
        let mut b = FrameBench::new(3);
        assert!(b.frame().is_none());
        assert!(b.frame().is_none() && b.frame().is_none());
        let json = b.frame().expect("done after 3 intervals");
        assert!(json.contains("\"frames\":3"), "{json}");
    }
}
