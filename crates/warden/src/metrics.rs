//! Latency histograms for `/metrics`: resource operations, health checks and store writes, in
//! Prometheus' histogram form (cumulative `_bucket{le=...}`, `_sum`, `_count`). One set per
//! process, as Prometheus' client libraries keep a default registry: a process runs one
//! daemon. Observing is a few atomic adds (a lock only to find a new label set's series).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::check::runner::escape;

/// One histogram series.
#[derive(Debug)]
struct Series {
    /// Observations at or under each bound (not cumulative: summed when rendered).
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    /// The sum in nanoseconds (whole, so it adds exactly).
    sum_nanos: AtomicU64,
}

/// A histogram with labels: a series per label set.
#[derive(Debug)]
pub struct Family {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    /// Upper bounds in seconds, increasing.
    bounds: &'static [f64],
    series: Mutex<BTreeMap<Vec<String>, Arc<Series>>>,
}

impl Family {
    pub const fn new(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
        bounds: &'static [f64],
    ) -> Family {
        Family {
            name,
            help,
            labels,
            bounds,
            series: Mutex::new(BTreeMap::new()),
        }
    }

    /// Counts one observation of `took` for the label values `values` (in `labels` order).
    pub fn observe(&self, values: &[&str], took: Duration) {
        let series = {
            let Ok(mut m) = self.series.lock() else {
                return;
            };
            let key: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
            Arc::clone(m.entry(key).or_insert_with(|| {
                Arc::new(Series {
                    buckets: self.bounds.iter().map(|_| AtomicU64::new(0)).collect(),
                    count: AtomicU64::new(0),
                    sum_nanos: AtomicU64::new(0),
                })
            }))
        };
        let secs = took.as_secs_f64();
        if let Some(i) = self.bounds.iter().position(|&b| secs <= b) {
            series.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        series.count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        series.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Forgets the series whose label values `keep` refuses (a peer or resource removed).
    pub fn retain(&self, keep: impl Fn(&[String]) -> bool) {
        if let Ok(mut m) = self.series.lock() {
            m.retain(|k, _| keep(k));
        }
    }

    /// The histogram in Prometheus' text format.
    pub fn render(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP {} {}\n# TYPE {} histogram",
            self.name, self.help, self.name
        );
        let all: Vec<(Vec<String>, Arc<Series>)> = match self.series.lock() {
            Ok(m) => m.iter().map(|(k, v)| (k.clone(), Arc::clone(v))).collect(),
            Err(_) => return,
        };
        for (values, s) in all {
            let labels: String = self
                .labels
                .iter()
                .zip(&values)
                .map(|(k, v)| format!("{k}=\"{}\",", escape(v)))
                .collect();
            let mut cumulative = 0;
            for (bound, n) in self.bounds.iter().zip(&s.buckets) {
                cumulative += n.load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "{}_bucket{{{labels}le=\"{bound}\"}} {cumulative}",
                    self.name
                );
            }
            let count = s.count.load(Ordering::Relaxed);
            let plain = labels.trim_end_matches(',');
            let _ = writeln!(
                out,
                "{}_bucket{{{labels}le=\"+Inf\"}} {count}\n{}_sum{{{plain}}} {}\n{}_count{{{plain}}} {count}",
                self.name,
                self.name,
                s.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
                self.name
            );
        }
    }
}

/// Bounds for resource operations: agents take milliseconds to minutes.
const OPERATION_BOUNDS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];
/// Bounds for health checks and store writes: sub-millisecond to seconds.
const FAST_BOUNDS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// The daemon's histograms.
#[derive(Debug)]
pub struct Metrics {
    /// Each resource operation (start, stop, monitor, probe, promote, ...) by result.
    pub operations: Family,
    /// Each health check of an upstream peer, by outcome.
    pub checks: Family,
    /// Each durable write of the store (a redb commit on one machine, an etcd write in a
    /// cluster).
    pub store_writes: Family,
}

/// The process's histograms.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| Metrics {
        operations: Family::new(
            "warden_operation_duration_seconds",
            "How long resource operations took, by resource, operation (probe is a monitor of interval 0) and result (the OCF return code's name: ok, not running, error, ...).",
            &["resource", "operation", "result"],
            OPERATION_BOUNDS,
        ),
        checks: Family::new(
            "warden_check_duration_seconds",
            "How long health checks of upstream peers took, by outcome.",
            &["upstream", "peer", "result"],
            FAST_BOUNDS,
        ),
        store_writes: Family::new(
            "warden_store_write_duration_seconds",
            "How long durable writes of the store took (redb on one machine, etcd in a cluster).",
            &["store"],
            FAST_BOUNDS,
        ),
    })
}

/// An operation's name for the `operation` label: `probe` for a monitor of interval 0.
pub fn operation_label(op: warden_engine::OpKey) -> &'static str {
    if op.is_probe() {
        "probe"
    } else {
        op.name.as_str()
    }
}

/// Counts a resource operation that took `took` and returned `rc`.
pub fn observe_operation(resource: &str, op: warden_engine::OpKey, rc: i32, took: Duration) {
    let result = warden_engine::rc::name(rc);
    global()
        .operations
        .observe(&[resource, operation_label(op), result], took);
}

impl Metrics {
    /// Every histogram in Prometheus' text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.operations.render(&mut out);
        self.checks.render(&mut out);
        self.store_writes.render(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_with_sum_and_count() {
        let f = Family::new("t_seconds", "Test.", &["a", "b"], &[0.1, 1.0]);
        f.observe(&["x", "y\"z"], Duration::from_millis(50));
        f.observe(&["x", "y\"z"], Duration::from_millis(500));
        f.observe(&["x", "y\"z"], Duration::from_secs(5));
        let mut out = String::new();
        f.render(&mut out);
        assert_eq!(
            out,
            "# HELP t_seconds Test.\n# TYPE t_seconds histogram\n\
             t_seconds_bucket{a=\"x\",b=\"y\\\"z\",le=\"0.1\"} 1\n\
             t_seconds_bucket{a=\"x\",b=\"y\\\"z\",le=\"1\"} 2\n\
             t_seconds_bucket{a=\"x\",b=\"y\\\"z\",le=\"+Inf\"} 3\n\
             t_seconds_sum{a=\"x\",b=\"y\\\"z\"} 5.55\n\
             t_seconds_count{a=\"x\",b=\"y\\\"z\"} 3\n"
        );
        f.retain(|k| k[0] != "x");
        let mut out = String::new();
        f.render(&mut out);
        assert!(!out.contains("t_seconds_count"), "{out}");
    }

    /// The metric names of docs/api.md's metrics table.
    fn documented() -> Vec<String> {
        let docs = include_str!("../../../docs/api.md");
        let table = docs.split("## Metrics").nth(1).unwrap_or_default();
        names(
            table
                .split("\n\n")
                .find(|p| p.starts_with("| metric"))
                .unwrap_or_default(),
        )
    }

    /// Every `warden_*` or `process_*` name in `text`.
    fn names(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        for (i, _) in text.match_indices(['w', 'p']) {
            let rest = &text[i..];
            if !(rest.starts_with("warden_") || rest.starts_with("process_")) {
                continue;
            }
            if i > 0 && text.as_bytes()[i - 1].is_ascii_alphanumeric() {
                continue;
            }
            let end = rest
                .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
                .unwrap_or(rest.len());
            out.push(rest[..end].to_owned());
        }
        out
    }

    #[test]
    fn the_grafana_dashboard_uses_only_documented_metrics() {
        let documented = documented();
        assert!(documented.len() > 20, "{documented:?}");
        let dashboard: serde_json::Value =
            serde_json::from_str(include_str!("../../../packaging/grafana/warden.json"))
                .expect("the dashboard is JSON");
        let mut used = 0;
        for panel in dashboard["panels"].as_array().into_iter().flatten() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                for name in names(target["expr"].as_str().unwrap_or_default()) {
                    let base = ["_bucket", "_count", "_sum"]
                        .iter()
                        .find_map(|s| name.strip_suffix(s))
                        .filter(|b| documented.iter().any(|d| d == b))
                        .unwrap_or(&name);
                    assert!(
                        documented.iter().any(|d| d == base),
                        "panel {:?} uses {name}, which docs/api.md does not list",
                        panel["title"]
                    );
                    used += 1;
                }
            }
        }
        assert!(used > 20, "{used}");
        // Every histogram of the daemon is documented.
        let mut text = String::new();
        global().operations.render(&mut text);
        global().checks.render(&mut text);
        global().store_writes.render(&mut text);
        for line in text.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
            let name = line.split(' ').next().unwrap_or_default();
            assert!(
                documented.iter().any(|d| d == name),
                "{name} is not in docs/api.md"
            );
        }
    }
}
