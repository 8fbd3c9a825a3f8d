//! Line plots for the experiment programs: PNG through plotters with an embedded DejaVu font
//! (no system font libraries), written to a temporary sibling and renamed into place.

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;
use plotters::style::FontStyle;

static FONT: Once = Once::new();

fn register_font() {
    FONT.call_once(|| {
        // The embedded font is valid; a failure would only mean plots without text.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
    });
}

/// One curve: a legend label and its (x, y) points, drawn in the order given.
#[derive(Clone, Debug)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Points.
    pub points: Vec<(f64, f64)>,
    /// Draw as a dashed horizontal reference line at the first point's y (a baseline).
    pub reference: bool,
}

impl Series {
    /// A curve.
    pub fn line(label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            label: label.into(),
            points,
            reference: false,
        }
    }

    /// A horizontal reference line at `y` across the plot (e.g. the dense model's value).
    pub fn reference(label: impl Into<String>, y: f64) -> Self {
        Self {
            label: label.into(),
            points: vec![(f64::NAN, y)],
            reference: true,
        }
    }
}

/// Axis titles and scales of a [`line_plot`].
#[derive(Clone, Debug)]
pub struct Axes<'a> {
    /// Plot title.
    pub title: &'a str,
    /// x-axis description.
    pub x: &'a str,
    /// y-axis description.
    pub y: &'a str,
    /// Logarithmic y axis.
    pub log_y: bool,
}

const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];

/// Draws `series` into a 900×600 PNG at `path`.
///
/// # Errors
/// A message naming the path when drawing or the file write fails, or when there is no finite
/// point to plot.
pub fn line_plot(path: &Path, axes: &Axes<'_>, series: &[Series]) -> Result<(), String> {
    register_font();
    let finite: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .filter(|p| p.1.is_finite() && (!axes.log_y || p.1 > 0.0))
        .collect();
    let xs: Vec<f64> = finite
        .iter()
        .map(|p| p.0)
        .filter(|x| x.is_finite())
        .collect();
    if finite.is_empty() || xs.is_empty() {
        return Err(format!("{}: nothing finite to plot", path.display()));
    }
    let fold = |v: &mut dyn Iterator<Item = f64>| {
        v.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), x| {
            (l.min(x), h.max(x))
        })
    };
    let (x0, x1) = fold(&mut xs.iter().copied());
    let (y0, y1) = fold(&mut finite.iter().map(|p| p.1));
    let xpad = ((x1 - x0) * 0.03).max(1e-9);
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .ok_or_else(|| format!("{}: no file name", path.display()))?;
    let tmp = path.with_file_name(format!(".{file_name}.{}.tmp.png", std::process::id()));
    let err = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    {
        let root = BitMapBackend::new(&tmp, (900, 600)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut builder = ChartBuilder::on(&root);
        builder
            .caption(axes.title, ("sans-serif", 22))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(70);
        let xr = (x0 - xpad)..(x1 + xpad);
        if axes.log_y {
            let mut chart = builder
                .build_cartesian_2d(xr, ((y0 * 0.9)..(y1 * 1.1)).log_scale())
                .map_err(|e| err(&e))?;
            chart
                .configure_mesh()
                .x_desc(axes.x)
                .y_desc(axes.y)
                .label_style(("sans-serif", 14))
                .draw()
                .map_err(|e| err(&e))?;
            draw_series(&mut chart, series, (x0 - xpad, x1 + xpad)).map_err(|e| err(&e))?;
            legend(&mut chart).map_err(|e| err(&e))?;
        } else {
            let ypad = ((y1 - y0) * 0.05).max(1e-9);
            let mut chart = builder
                .build_cartesian_2d(xr, (y0 - ypad)..(y1 + ypad))
                .map_err(|e| err(&e))?;
            chart
                .configure_mesh()
                .x_desc(axes.x)
                .y_desc(axes.y)
                .label_style(("sans-serif", 14))
                .draw()
                .map_err(|e| err(&e))?;
            draw_series(&mut chart, series, (x0 - xpad, x1 + xpad)).map_err(|e| err(&e))?;
            legend(&mut chart).map_err(|e| err(&e))?;
        }
        root.present().map_err(|e| err(&e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        err(&e)
    })
}

type Chart<'a, Y> =
    ChartContext<'a, BitMapBackend<'a>, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>;

fn draw_series<'a, Y>(
    chart: &mut Chart<'a, Y>,
    series: &[Series],
    (xa, xb): (f64, f64),
) -> Result<(), DrawingAreaErrorKind<<BitMapBackend<'a> as DrawingBackend>::ErrorType>>
where
    Y: Ranged<ValueType = f64>,
{
    for (n, s) in series.iter().enumerate() {
        let color = if s.reference {
            BLACK
        } else {
            COLORS[n % COLORS.len()]
        };
        if s.reference {
            let y = s.points[0].1;
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(xa, y), (xb, y)],
                    8,
                    5,
                    color.stroke_width(2),
                ))?
                .label(s.label.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            continue;
        }
        let pts: Vec<(f64, f64)> = s
            .points
            .iter()
            .copied()
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))?
            .label(s.label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
    }
    Ok(())
}

fn legend<'a, Y>(
    chart: &mut Chart<'a, Y>,
) -> Result<(), DrawingAreaErrorKind<<BitMapBackend<'a> as DrawingBackend>::ErrorType>>
where
    Y: Ranged<ValueType = f64>,
{
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plot_is_written_and_nothing_finite_is_an_error() {
        let dir = std::env::temp_dir().join(format!("examples-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p.png");
        let axes = Axes {
            title: "t",
            x: "x",
            y: "y",
            log_y: true,
        };
        let s = [
            Series::line("a", vec![(0.1, 2.0), (0.5, 1.5)]),
            Series::reference("dense", 1.2),
        ];
        line_plot(&path, &axes, &s).unwrap();
        assert!(std::fs::metadata(&path).unwrap().len() > 1000);
        let none = [Series::line("a", vec![(0.1, f64::NAN)])];
        assert!(line_plot(&dir.join("q.png"), &axes, &none).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
