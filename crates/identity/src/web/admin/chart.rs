//! Bar charts as inline SVG, drawn by latchkey (no script, no external service): one bar per
//! bucket, stacked when there are several series, with the axis' top value, a few x labels and
//! a tooltip (`<title>`) per bar.

use std::fmt::Write as _;

const WIDTH: i64 = 640;
const HEIGHT: i64 = 160;
const LEFT: i64 = 40;
const BOTTOM: i64 = 20;

/// One series: its name, its colour (a CSS value), a value per bucket.
pub(crate) struct Series<'a> {
    pub name: &'a str,
    pub colour: &'a str,
    pub values: &'a [i64],
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The chart titled `title`, one bar per label, the series stacked in order.
pub(crate) fn bars(title: &str, labels: &[String], series: &[Series<'_>]) -> String {
    let buckets = i64::try_from(labels.len()).unwrap_or(1).max(1);
    let total = |i: usize| -> i64 {
        series
            .iter()
            .map(|s| s.values.get(i).copied().unwrap_or(0))
            .sum()
    };
    let max = (0..labels.len()).map(total).max().unwrap_or(0).max(1);
    let plot_w = WIDTH - LEFT;
    let plot_h = HEIGHT - BOTTOM;
    let slot = plot_w / buckets;
    let bar = (slot * 4 / 5).max(1);
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" \
         aria-label=\"{}\" class=\"chart\"><title>{}</title>",
        escape(title),
        escape(title)
    );
    let _ = write!(
        svg,
        "<line x1=\"{LEFT}\" y1=\"{plot_h}\" x2=\"{WIDTH}\" y2=\"{plot_h}\" stroke=\"currentColor\" stroke-opacity=\".3\"/>\
         <text x=\"{}\" y=\"12\" font-size=\"11\" text-anchor=\"end\" fill=\"currentColor\">{max}</text>\
         <text x=\"{}\" y=\"{plot_h}\" font-size=\"11\" text-anchor=\"end\" fill=\"currentColor\">0</text>",
        LEFT - 4,
        LEFT - 4
    );
    for (i, label) in labels.iter().enumerate() {
        let x = LEFT + i64::try_from(i).unwrap_or(0) * slot + (slot - bar) / 2;
        let mut top = plot_h;
        for s in series {
            let value = s.values.get(i).copied().unwrap_or(0);
            if value <= 0 {
                continue;
            }
            let height = (value * (plot_h - 14) / max).max(1);
            top -= height;
            let _ = write!(
                svg,
                "<rect x=\"{x}\" y=\"{top}\" width=\"{bar}\" height=\"{height}\" fill=\"{}\"><title>{}: {} {value}</title></rect>",
                escape(s.colour),
                escape(label),
                escape(s.name)
            );
        }
        let last = i + 1 == labels.len();
        if i == 0 || last || i == labels.len() / 2 {
            let anchor = if i == 0 {
                "start"
            } else if last {
                "end"
            } else {
                "middle"
            };
            let tx = if last { x + bar } else { x };
            let _ = write!(
                svg,
                "<text x=\"{tx}\" y=\"{}\" font-size=\"11\" text-anchor=\"{anchor}\" fill=\"currentColor\">{}</text>",
                HEIGHT - 4,
                escape(label)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_stack_and_escape_text() {
        let labels = vec!["a<b".to_owned(), "2".to_owned(), "3".to_owned()];
        let svg = bars(
            "T & t",
            &labels,
            &[
                Series {
                    name: "ok",
                    colour: "green",
                    values: &[1, 4, 0],
                },
                Series {
                    name: "failed",
                    colour: "red",
                    values: &[1, 0, 0],
                },
            ],
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("T &amp; t") && svg.contains("a&lt;b") && !svg.contains("a<b"));
        // The top label is the tallest stack; empty values draw nothing.
        assert!(svg.contains(">4</text>"));
        assert_eq!(svg.matches("<rect").count(), 3);
    }
}
