//! A small hand-built SVG scatter plot with a fitted line, for the growth plots of `bench`:
//! one file, no fonts or scripts, readable in any browser or image viewer.

use std::fmt::Write as _;

use super::stats::LinearFit;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 400.0;
/// Room for the axis labels at the left and bottom, and a margin at the right and top.
const LEFT: f64 = 70.0;
const BOTTOM: f64 = 50.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const TICKS: usize = 5;

/// What to draw: points, an optional fitted line, a title and axis labels.
pub struct Plot<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub points: &'a [(f64, f64)],
    pub fit: Option<LinearFit>,
}

/// Escapes text for an SVG text node.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A tick label: short, without trailing zeros.
fn tick_label(value: f64) -> String {
    if value.abs() >= 1000.0 || value == value.trunc() {
        format!("{value:.0}")
    } else if value.abs() >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

impl Plot<'_> {
    /// The axes start at 0 (costs and counts are not negative) and end a little past the
    /// largest value, so a line through the origin looks like one.
    fn ranges(&self) -> (f64, f64) {
        let max = |pick: fn(&(f64, f64)) -> f64| {
            let top = self.points.iter().map(pick).fold(0.0, f64::max);
            if top > 0.0 {
                top * 1.05
            } else {
                1.0
            }
        };
        (max(|p| p.0), max(|p| p.1))
    }

    pub fn render(&self) -> String {
        let (x_max, y_max) = self.ranges();
        let plot_width = WIDTH - LEFT - RIGHT;
        let plot_height = HEIGHT - TOP - BOTTOM;
        let x_at = |x: f64| LEFT + x / x_max * plot_width;
        let y_at = |y: f64| HEIGHT - BOTTOM - y / y_max * plot_height;
        let mut svg = String::new();
        let _ = writeln!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"#,
            WIDTH / 2.0,
            escape(self.title)
        );
        // Axes, ticks and grid.
        let _ = writeln!(
            svg,
            r#"<path d="M{LEFT},{TOP} V{} H{}" stroke="black" fill="none"/>"#,
            HEIGHT - BOTTOM,
            WIDTH - RIGHT
        );
        for tick in 0..=TICKS {
            let fraction = tick as f64 / TICKS as f64;
            let (x, y) = (x_at(fraction * x_max), y_at(fraction * y_max));
            let _ = writeln!(
                svg,
                r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" stroke="#ddd"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
                HEIGHT - BOTTOM,
                HEIGHT - BOTTOM + 16.0,
                tick_label(fraction * x_max)
            );
            let _ = writeln!(
                svg,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
                WIDTH - RIGHT,
                LEFT - 6.0,
                y + 4.0,
                tick_label(fraction * y_max)
            );
        }
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            LEFT + plot_width / 2.0,
            HEIGHT - 10.0,
            escape(self.x_label)
        );
        let _ = writeln!(
            svg,
            r#"<text x="16" y="{:.1}" text-anchor="middle" transform="rotate(-90 16 {:.1})">{}</text>"#,
            TOP + plot_height / 2.0,
            TOP + plot_height / 2.0,
            escape(self.y_label)
        );
        if let Some(fit) = self.fit {
            // The fitted line, clipped to the plot's y range.
            let y0 = fit.intercept.clamp(0.0, y_max);
            let y1 = (fit.intercept + fit.slope * x_max).clamp(0.0, y_max);
            let _ = writeln!(
                svg,
                r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#c33" stroke-dasharray="6 4"/>"##,
                x_at(0.0),
                y_at(y0),
                x_at(x_max),
                y_at(y1)
            );
            let _ = writeln!(
                svg,
                r##"<text x="{:.1}" y="{:.1}" fill="#c33">least squares: R² = {:.3}</text>"##,
                LEFT + 10.0,
                TOP + 14.0,
                fit.r_squared
            );
        }
        for &(x, y) in self.points {
            let _ = writeln!(
                svg,
                r##"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="#236"/>"##,
                x_at(x),
                y_at(y)
            );
        }
        svg.push_str("</svg>\n");
        svg
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::stats::linear_fit;

    #[test]
    fn a_plot_is_one_svg_document_with_every_point() {
        // Proves the writer emits a closed SVG element with a circle per point, the fit's R²
        // and escaped labels.
        let points = [(0.0, 1.0), (10.0, 21.0), (20.0, 41.0)];
        let svg = Plot {
            title: "recovery <ms>",
            x_label: "redo bytes",
            y_label: "ms",
            points: &points,
            fit: linear_fit(&points),
        }
        .render();
        assert!(svg.starts_with("<svg ") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<circle").count(), 3);
        assert!(svg.contains("R² = 1.000"));
        assert!(svg.contains("recovery &lt;ms&gt;"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }

    #[test]
    fn points_map_inside_the_plot_area() {
        // Proves the largest point lands inside the frame and the origin on the axes' corner.
        let points = [(0.0, 0.0), (100.0, 50.0)];
        let svg = Plot {
            title: "t",
            x_label: "x",
            y_label: "y",
            points: &points,
            fit: None,
        }
        .render();
        assert!(svg.contains(&format!(r#"cx="{LEFT:.1}" cy="{:.1}""#, HEIGHT - BOTTOM)));
        let empty = Plot {
            title: "t",
            x_label: "x",
            y_label: "y",
            points: &[],
            fit: None,
        }
        .render();
        assert!(!empty.contains("NaN"));
    }
}
