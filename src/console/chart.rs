//! Charts as SVG drawn on the server: no script, no inline style (the stylesheet colours the
//! classes), readable by screen readers through the label and the table that goes with them.

use maud::{html, Markup, PreEscaped};
use std::fmt::Write;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 180.0;
const LEFT: f64 = 48.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 22.0;

/// One line of a chart: its CSS class (`series-orbipay`, ...) and its values.
pub struct Series<'a> {
    pub class: &'a str,
    pub values: Vec<f64>,
}

/// A line chart of several series over the same x steps, labelled at both ends.
pub fn lines(label: &str, series: &[Series<'_>], first_x: &str, last_x: &str) -> Markup {
    let n = series.iter().map(|s| s.values.len()).max().unwrap_or(0);
    let (lo, hi) = bounds(series.iter().flat_map(|s| s.values.iter().copied()));
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |i: usize| {
        LEFT + if n > 1 {
            plot_w * i as f64 / (n - 1) as f64
        } else {
            plot_w / 2.0
        }
    };
    let y = |v: f64| TOP + plot_h - (v - lo) / (hi - lo) * plot_h;
    let mut paths = String::new();
    for s in series {
        let mut d = String::new();
        for (i, v) in s.values.iter().enumerate() {
            let _ = write!(d, "{}{:.1},{:.1}", if i == 0 { "M" } else { " L" }, x(i), y(*v));
        }
        // Values are numbers and classes are constants of this crate: nothing to escape.
        let _ = write!(paths, r#"<path class="{}" d="{d}"/>"#, s.class);
    }
    html! {
        svg.chart viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img" aria-label=(label) {
            title { (label) }
            line.axis x1=(LEFT) y1=(TOP + plot_h) x2=(WIDTH - RIGHT) y2=(TOP + plot_h) {}
            line.grid x1=(LEFT) y1=(TOP) x2=(WIDTH - RIGHT) y2=(TOP) {}
            text x=(LEFT - 4.0) y=(TOP + 4.0) text-anchor="end" { (axis_number(hi)) }
            text x=(LEFT - 4.0) y=(TOP + plot_h) text-anchor="end" { (axis_number(lo)) }
            text x=(LEFT) y=(HEIGHT - 6.0) { (first_x) }
            text x=(WIDTH - RIGHT) y=(HEIGHT - 6.0) text-anchor="end" { (last_x) }
            (PreEscaped(paths))
        }
    }
}

/// The value range to draw: from zero (or below, for negative balances) to the maximum, never
/// empty.
fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (0.0f64, 0.0f64);
    for v in values {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if hi - lo < 1e-9 {
        hi = lo + 1.0;
    }
    (lo, hi)
}

fn axis_number(v: f64) -> String {
    if v.abs() >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v.fract().abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_draws_one_path_per_series_and_escapes_its_label() {
        let svg = lines(
            "<b>label</b>",
            &[
                Series {
                    class: "series-orbipay",
                    values: vec![0.0, 2.0, 1.0],
                },
                Series {
                    class: "series-empayre",
                    values: vec![1.0, 1.0, 1.0],
                },
            ],
            "a",
            "b",
        )
        .into_string();
        assert_eq!(svg.matches("<path ").count(), 2);
        assert!(svg.contains("&lt;b&gt;label&lt;/b&gt;"));
        assert!(!svg.contains("style="));
    }

    #[test]
    fn flat_and_negative_ranges_are_drawable() {
        assert_eq!(bounds([0.0, 0.0].into_iter()), (0.0, 1.0));
        assert_eq!(bounds([-5.0, 3.0].into_iter()), (-5.0, 3.0));
    }
}
