//! Process-wide counters for `/metrics` (Prometheus' text format, version 0.0.4:
//! <https://prometheus.io/docs/instrumenting/exposition_formats/>). A process serves one
//! latchkey, so the counters are statics any part can bump; the server renders them with the
//! gauges it reads when scraped. Bumping is an atomic add after a shared read lock; a label
//! seen for the first time takes the write lock once.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

/// A counter with one label, whose values are a small fixed set of codes. The common value
/// (`hot`) is a bare atomic: bumping it takes no lock, which matters on a path every request
/// takes.
pub struct CounterVec {
    name: &'static str,
    help: &'static str,
    label: &'static str,
    hot: (&'static str, AtomicU64),
    values: RwLock<BTreeMap<&'static str, AtomicU64>>,
}

impl CounterVec {
    #[must_use]
    pub const fn new(
        name: &'static str,
        help: &'static str,
        label: &'static str,
        hot: &'static str,
    ) -> Self {
        Self {
            name,
            help,
            label,
            hot: (hot, AtomicU64::new(0)),
            values: RwLock::new(BTreeMap::new()),
        }
    }

    /// Adds one to the series labelled `value`.
    pub fn inc(&self, value: &'static str) {
        if value == self.hot.0 {
            self.hot.1.fetch_add(1, Ordering::Relaxed);
            return;
        }
        {
            let values = self.values.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(counter) = values.get(value) {
                counter.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        self.values
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(value)
            .or_insert_with(|| AtomicU64::new(0))
            .fetch_add(1, Ordering::Relaxed);
    }

    /// The series labelled `value` (0 if never bumped).
    #[must_use]
    pub fn get(&self, value: &str) -> u64 {
        if value == self.hot.0 {
            return self.hot.1.load(Ordering::Relaxed);
        }
        self.values
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(value)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Appends the family in text format.
    pub fn render(&self, out: &mut String) {
        family(out, self.name, self.help, "counter");
        let values = self.values.read().unwrap_or_else(PoisonError::into_inner);
        let hot = std::iter::once((&self.hot.0, &self.hot.1));
        for (value, counter) in hot.chain(values.iter()) {
            let _ = writeln!(
                out,
                "{}{{{}=\"{}\"}} {}",
                self.name,
                self.label,
                escape(value),
                counter.load(Ordering::Relaxed)
            );
        }
    }
}

/// Upper bounds of the request duration buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default)]
struct Series {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

/// HTTP requests by method, matched route and status, with their durations.
pub struct Requests {
    series: RwLock<BTreeMap<(String, String, u16), Arc<Series>>>,
}

/// Every request the server answered (recorded only while `/metrics` is on).
pub static REQUESTS: Requests = Requests {
    series: RwLock::new(BTreeMap::new()),
};

impl Requests {
    /// Records one answered request. `route` is the matched route (`/admin/users/{user_id}`),
    /// never the raw path, so the label set stays small.
    pub fn record(&self, method: &str, route: &str, status: u16, took: Duration) {
        let key = (method.to_owned(), route.to_owned(), status);
        let existing = self
            .series
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .cloned();
        let series = existing.unwrap_or_else(|| {
            Arc::clone(
                self.series
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .entry(key)
                    .or_default(),
            )
        });
        let seconds = took.as_secs_f64();
        for (bound, bucket) in BUCKETS.iter().zip(&series.buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        series.count.fetch_add(1, Ordering::Relaxed);
        series.sum_micros.fetch_add(
            u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Appends the histogram family in text format.
    pub fn render(&self, out: &mut String) {
        let name = "latchkey_http_request_duration_seconds";
        family(
            out,
            name,
            "Time to answer HTTP requests, by method, matched route and status.",
            "histogram",
        );
        let series = self.series.read().unwrap_or_else(PoisonError::into_inner);
        for ((method, route, status), s) in series.iter() {
            let labels = format!(
                "method=\"{}\",route=\"{}\",status=\"{status}\"",
                escape(method),
                escape(route)
            );
            for (bound, bucket) in BUCKETS.iter().zip(&s.buckets) {
                let _ = writeln!(
                    out,
                    "{name}_bucket{{{labels},le=\"{bound}\"}} {}",
                    bucket.load(Ordering::Relaxed)
                );
            }
            let count = s.count.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
            #[expect(
                clippy::cast_precision_loss,
                reason = "a sum of microseconds stays far below 2^52"
            )]
            let sum = s.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
            let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
        }
    }
}

/// Session tokens the app verified, by outcome (`verified` or the refusal's code).
pub static TOKEN_VERIFICATIONS: CounterVec = CounterVec::new(
    "latchkey_session_token_verifications_total",
    "Session tokens the app checked, by outcome: verified, or why it was refused.",
    "outcome",
    "verified",
);

/// `# HELP` and `# TYPE` lines.
pub fn family(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// One sample line without labels.
pub fn sample(out: &mut String, name: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "{name} {value}");
}

/// A label value with `\`, `"` and newlines escaped.
#[must_use]
pub fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
