//! What the machine is doing: waiting for it to be quiet before a measured round, and a
//! process's resident memory.

use std::time::{Duration, Instant};

/// Busy share of all cores (0 to 1) above which a round does not start.
const QUIET_BELOW: f64 = 0.10;

/// Longest wait for a quiet machine before measuring anyway (and saying so), unless
/// `LATCHKEY_BENCH_QUIET_WAIT` gives another number of seconds.
fn quiet_wait() -> Duration {
    std::env::var("LATCHKEY_BENCH_QUIET_WAIT")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(Duration::from_secs(90), Duration::from_secs)
}

/// Cumulative CPU time of all cores from `/proc/stat`: (busy, total) in clock ticks.
fn cpu_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .filter_map(|t| t.parse().ok())
        .collect();
    let total: u64 = ticks.iter().take(8).sum();
    // idle and iowait are the fourth and fifth fields.
    let idle = ticks.get(3)? + ticks.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// Busy share of all cores over the next `window`.
async fn busy_over(window: Duration) -> Option<f64> {
    let (busy0, total0) = cpu_ticks()?;
    tokio::time::sleep(window).await;
    let (busy1, total1) = cpu_ticks()?;
    let total = total1.checked_sub(total0).filter(|t| *t > 0)?;
    #[expect(clippy::cast_precision_loss, reason = "tick counts are small")]
    Some((busy1 - busy0) as f64 / total as f64)
}

/// Waits until the machine's cores are less than 10 % busy over a second (other work
/// distorts every figure), at most 90 s (see [`quiet_wait`]); says so if it never was. Returns the last reading.
pub async fn wait_for_quiet(what: &str) -> Option<f64> {
    let started = Instant::now();
    loop {
        let busy = busy_over(Duration::from_secs(1)).await?;
        if busy < QUIET_BELOW {
            return Some(busy);
        }
        if started.elapsed() >= quiet_wait() {
            println!(
                "  (the machine stayed {:.0}% busy for {} s; measuring {what} anyway: its figures are not comparable)",
                100.0 * busy,
                started.elapsed().as_secs()
            );
            return Some(busy);
        }
    }
}

/// Resident memory of process `pid` in MiB, from `/proc/<pid>/status`.
pub fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// The median and the range of `values`, as "median [min–max]" with `decimals` decimals.
pub fn median_range(values: &[f64], decimals: usize) -> String {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match (sorted.first(), sorted.last()) {
        (Some(min), Some(max)) => format!(
            "{:.decimals$} [{min:.decimals$}–{max:.decimals$}]",
            median(&sorted)
        ),
        _ => "-".to_owned(),
    }
}

/// The median of `values` (the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        f64::midpoint(sorted[n / 2 - 1], sorted[n / 2])
    }
}
