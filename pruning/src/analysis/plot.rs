//! PNG plots with plotters and an embedded DejaVu font, written atomically.

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;
use plotters::style::FontStyle;

use super::essential::SweepResult;
use crate::{Error, Result};

static FONT: Once = Once::new();

/// Registers DejaVu Sans as plotters' `sans-serif` (once per process).
pub(crate) fn register_font() {
    FONT.call_once(|| {
        // The embedded font is valid; a failure here would only mean no text in plots.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
    });
}

/// Draws into a temporary sibling of `path` and renames it into place.
pub(crate) fn write_png_atomically(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(
        &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    ) -> std::result::Result<(), String>,
) -> Result<()> {
    register_font();
    let plot_err = |reason: String| Error::Plot {
        path: path.to_path_buf(),
        reason,
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| plot_err("the path has no file name".into()))?
        .to_string_lossy()
        .to_string();
    let tmp = path.with_file_name(format!(".{file_name}.{}.tmp.png", std::process::id()));
    {
        let root = BitMapBackend::new(&tmp, size).into_drawing_area();
        draw(&root).map_err(plot_err)?;
        root.present().map_err(|e| plot_err(e.to_string()))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::Io {
            path: path.to_path_buf(),
            source: e,
        }
    })
}

pub(crate) fn sweep_png(
    r: &SweepResult,
    path: &Path,
    title: &str,
    metric: &str,
    delta: f64,
) -> Result<()> {
    write_png_atomically(path, (900, 600), |root| {
        let e = |x: &dyn std::fmt::Display| x.to_string();
        root.fill(&WHITE).map_err(|x| e(&x))?;
        let all: Vec<f64> = std::iter::once(r.dense_metric)
            .chain(r.unstructured.iter().chain(&r.nm).map(|p| p.metric))
            .collect();
        let (lo, hi) = all
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &x| {
                (l.min(x), h.max(x))
            });
        let pad = ((hi - lo) * 0.05).max(1e-6);
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 24))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0f64..1.0f64, (lo - pad)..(hi + pad))
            .map_err(|x| e(&x))?;
        chart
            .configure_mesh()
            .x_desc("sparsity of the selected weights")
            .y_desc(metric)
            .label_style(("sans-serif", 15))
            .draw()
            .map_err(|x| e(&x))?;
        let mut curve: Vec<(f64, f64)> = vec![(0.0, r.dense_metric)];
        curve.extend(r.unstructured.iter().map(|p| (p.sparsity, p.metric)));
        chart
            .draw_series(LineSeries::new(curve.clone(), BLUE.stroke_width(2)))
            .map_err(|x| e(&x))?
            .label("global magnitude (unstructured)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
        chart
            .draw_series(
                curve
                    .iter()
                    .map(|&(x, y)| Circle::new((x, y), 3, BLUE.filled())),
            )
            .map_err(|x| e(&x))?;
        chart
            .draw_series(LineSeries::new(
                vec![(0.0, r.dense_metric - delta), (1.0, r.dense_metric - delta)],
                BLACK.mix(0.4),
            ))
            .map_err(|x| e(&x))?
            .label(format!("dense − δ (δ = {delta})"))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.4)));
        for p in &r.nm {
            let name = p.pattern.map(|q| q.to_string()).unwrap_or_default();
            chart
                .draw_series(std::iter::once(TriangleMarker::new(
                    (p.sparsity, p.metric),
                    8,
                    RED.filled(),
                )))
                .map_err(|x| e(&x))?;
            chart
                .draw_series(std::iter::once(Text::new(
                    format!("{name} N:M"),
                    (p.sparsity + 0.01, p.metric),
                    ("sans-serif", 15).into_font().color(&RED),
                )))
                .map_err(|x| e(&x))?;
        }
        let knees = [
            (
                r.essential_sparsity(delta),
                GREEN,
                "essential sparsity (within δ)",
            ),
            (r.max_curvature_sparsity(), MAGENTA, "maximum curvature"),
        ];
        for (knee, color, label) in knees {
            if let Some(s) = knee {
                chart
                    .draw_series(LineSeries::new(
                        vec![(s, lo - pad), (s, hi + pad)],
                        color.stroke_width(1),
                    ))
                    .map_err(|x| e(&x))?
                    .label(format!("{label}: {:.0}%", 100.0 * s))
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 15))
            .draw()
            .map_err(|x| e(&x))?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::essential::{SweepPoint, curve};

    #[test]
    fn writes_a_png() {
        let r = SweepResult {
            dense_metric: 0.95,
            nm: vec![SweepPoint {
                sparsity: 0.5,
                pattern: Some(crate::NmPattern::new(2, 4).unwrap()),
                metric: 0.93,
            }],
            ..curve(&[(0.5, 0.94), (0.8, 0.9), (0.9, 0.5)])
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sweep.png");
        r.plot_png(&path, "test", "accuracy", 0.01).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
        assert!(
            r.plot_png(dir.path().join("no/such/dir.png"), "t", "m", 0.0)
                .is_err()
        );
    }
}
