//! PNG plots (plotters, with the Ubuntu font egui ships, so no system fonts are needed).

use std::path::Path;

use anyhow::Context;
use hdrhistogram::Histogram;
use plotters::prelude::*;

fn register_font() {
    let _ = plotters::style::register_font(
        "sans-serif",
        FontStyle::Normal,
        epaint_default_fonts::UBUNTU_LIGHT,
    );
}

/// The latency distribution of each histogram: latency (ms) against percentile, with the
/// percentile axis stretched towards the tail (x = -log10(1 - q)).
pub fn latency(
    path: &Path,
    title: &str,
    series: &[(String, &Histogram<u64>)],
) -> anyhow::Result<()> {
    register_font();
    let root = BitMapBackend::new(path, (1000, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let max_ms = series
        .iter()
        .map(|(_, h)| h.max() as f64 / 1000.0)
        .fold(0.1, f64::max);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(20)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..5f64, 0f64..max_ms * 1.05)?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (ms)")
        .x_label_formatter(&|x| {
            let q = 1.0 - 10f64.powf(-x);
            format!("{:.3}%", q * 100.0)
        })
        .draw()?;
    let colors = [BLUE, RED, GREEN, MAGENTA, CYAN, BLACK];
    for (i, (name, h)) in series.iter().enumerate() {
        let color = colors[i % colors.len()];
        let points: Vec<(f64, f64)> = (0..=500)
            .map(|k| {
                let x = f64::from(k) / 100.0;
                let q = (1.0 - 10f64.powf(-x)).min(0.99999);
                (x, h.value_at_quantile(q) as f64 / 1000.0)
            })
            .collect();
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present().context("writing the plot")?;
    Ok(())
}

/// A ramp: connections over time and login p99 over time.
pub fn ramp(path: &Path, title: &str, points: &[(f64, u64, f64)]) -> anyhow::Result<()> {
    register_font();
    let root = BitMapBackend::new(path, (1000, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let max_t = points.iter().map(|p| p.0).fold(1.0, f64::max);
    let max_c = points.iter().map(|p| p.1).max().unwrap_or(1).max(1) as f64;
    let max_l = points.iter().map(|p| p.2).fold(1.0, f64::max);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(20)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .right_y_label_area_size(70)
        .build_cartesian_2d(0f64..max_t, 0f64..max_c * 1.05)?
        .set_secondary_coord(0f64..max_t, 0f64..max_l * 1.1);
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc("logged-in clients")
        .draw()?;
    chart
        .configure_secondary_axes()
        .y_desc("login p99 (ms)")
        .draw()?;
    chart
        .draw_series(LineSeries::new(
            points.iter().map(|p| (p.0, p.1 as f64)),
            BLUE.stroke_width(2),
        ))?
        .label("clients")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
    chart
        .draw_secondary_series(LineSeries::new(
            points.iter().map(|p| (p.0, p.2)),
            RED.stroke_width(2),
        ))?
        .label("login p99 (ms)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(2)));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present().context("writing the plot")?;
    Ok(())
}
