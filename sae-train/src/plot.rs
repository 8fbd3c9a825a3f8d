//! PNG plots of training curves (plotters, pure Rust, with an embedded DejaVu font).

use std::path::Path;
use std::sync::Once;

use plotters::coord::ranged1d::ValueFormatter;
use plotters::prelude::*;

use crate::{Error, MetricRecord, Result};

static FONT: Once = Once::new();

/// Registers DejaVu Sans as plotters' `sans-serif` (once per process).
fn register_font() {
    FONT.call_once(|| {
        // The font is embedded and valid; an error here would be a bug in the dejavu crate.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
    });
}

/// The panels of the training plot: title, value of a record, log-scale y.
/// A panel: title, the value it shows, whether its y axis is logarithmic.
type Panel = (&'static str, fn(&MetricRecord) -> f64, bool);

const PANELS: [Panel; 4] = [
    ("loss", |r| r.loss, true),
    ("FVU", |r| r.fvu, true),
    ("L0", |r| r.l0, false),
    ("dead latents (%)", |r| 100.0 * r.dead_fraction, false),
];

/// Draws loss, FVU, L0 and dead % against tokens, one line per SAE, into a PNG at `path`.
///
/// # Errors
/// [`Error::Plot`] if the records are empty or the image cannot be drawn or written.
pub fn plot_training(records: &[MetricRecord], path: &Path) -> Result<()> {
    if records.is_empty() {
        return Err(Error::Plot {
            path: path.into(),
            reason: "no metric records to plot".into(),
        });
    }
    register_font();
    draw(records, path).map_err(|e| Error::Plot {
        path: path.into(),
        reason: e.to_string(),
    })
}

fn draw(
    records: &[MetricRecord],
    path: &Path,
) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let mut names: Vec<&str> = Vec::new();
    for r in records {
        if !names.contains(&r.sae.as_str()) {
            names.push(&r.sae);
        }
    }
    let root = BitMapBackend::new(path, (1200, 800)).into_drawing_area();
    root.fill(&WHITE)?;
    let max_tokens = records.iter().map(|r| r.tokens).max().unwrap_or(1).max(1) as f64;
    for ((title, value, log_y), area) in PANELS.iter().zip(root.split_evenly((2, 2))) {
        let values: Vec<f64> = records
            .iter()
            .map(value)
            .filter(|v| v.is_finite())
            .collect();
        let positive = values.iter().copied().filter(|v| *v > 0.0);
        let (lo, hi) = if *log_y {
            let lo = positive.clone().fold(f64::INFINITY, f64::min);
            let hi = positive.fold(0.0, f64::max);
            if lo.is_finite() && hi > lo {
                (lo, hi)
            } else {
                (1e-6, 1.0)
            }
        } else {
            let hi = values.iter().copied().fold(0.0, f64::max);
            (0.0, if hi > 0.0 { hi * 1.05 } else { 1.0 })
        };
        let mut builder = ChartBuilder::on(&area);
        builder
            .caption(*title, ("sans-serif", 22))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(60);
        let series = |name: &str| {
            records
                .iter()
                .filter(move |r| r.sae == name)
                .map(|r| (r.tokens as f64, value(r)))
                .filter(|(_, v)| v.is_finite() && (!*log_y || *v > 0.0))
                .collect::<Vec<_>>()
        };
        // The two y scales are different coordinate types, so each builds its own chart.
        if *log_y {
            let mut chart = builder.build_cartesian_2d(0.0..max_tokens, (lo..hi).log_scale())?;
            draw_lines(&mut chart, &names, series)?;
        } else {
            let mut chart = builder.build_cartesian_2d(0.0..max_tokens, lo..hi)?;
            draw_lines(&mut chart, &names, series)?;
        }
    }
    root.present()?;
    Ok(())
}

/// Draws the mesh (tokens on x), one line per SAE from `series(name)` and the legend on a
/// panel's chart, whose y axis may be linear or logarithmic.
fn draw_lines<'a, X, Y>(
    chart: &mut ChartContext<'a, BitMapBackend<'a>, Cartesian2d<X, Y>>,
    names: &[&str],
    series: impl Fn(&str) -> Vec<(f64, f64)>,
) -> std::result::Result<(), Box<dyn std::error::Error>>
where
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .x_desc("tokens")
        .x_label_formatter(&|x| compact(*x))
        .y_label_formatter(&|y| compact(*y))
        .draw()?;
    for (i, name) in names.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(series(name), color.stroke_width(2)))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()?;
    Ok(())
}

/// Short axis labels: `1.2M`, `350k`, `0.042`.
fn compact(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 100.0 || v == v.round() {
        format!("{v:.0}")
    } else {
        format!("{:.3}", v)
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_png() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("curves.png");
        let records: Vec<MetricRecord> = (0..20)
            .flat_map(|s| {
                ["a", "b"].map(|n| MetricRecord {
                    step: s,
                    tokens: s * 100,
                    sae: n.into(),
                    loss: 1.0 / (s + 1) as f64,
                    mse: 0.0,
                    aux_loss: 0.0,
                    fvu: 0.5 / (s + 1) as f64,
                    l0: 4.0,
                    dead_fraction: 0.1,
                    dense_fraction: 0.0,
                    lr: 1e-3,
                    sparsity_scale: 0.0,
                })
            })
            .collect();
        plot_training(&records, &path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        assert!(plot_training(&[], &path).is_err());
    }
}
