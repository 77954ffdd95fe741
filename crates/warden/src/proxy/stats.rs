//! What the listeners did, for `/metrics`: HAProxy's stats page, in Prometheus' text format.
//! A listener's counters live in a [`Registry`] by name, so a reload that restarts or changes
//! a listener keeps them counting (Prometheus counters must not go back); a reload that
//! removes a listener removes them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::check::runner::escape;

/// One listener's counters.
#[derive(Debug, Default)]
pub struct Stats {
    /// Client connections open now.
    sessions: AtomicU64,
    /// Client connections accepted.
    sessions_total: AtomicU64,
    /// Connects to a peer, or exchanges with one, that failed (each moves on to the next peer
    /// when the retry rules allow).
    failed_attempts: AtomicU64,
    /// TCP client connections no peer accepted (closed at once).
    unserved: AtomicU64,
    /// Bytes read from clients and written to them.
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    /// Requests (HTTP) or sessions (TCP) a peer took after another peer failed them: each a
    /// failure the client never saw.
    failovers: AtomicU64,
    /// Responses from peers (HTTP), by status.
    by_peer_status: Mutex<BTreeMap<u16, u64>>,
    /// Requests (HTTP) or sessions (TCP) each peer took.
    by_peer: RwLock<BTreeMap<String, AtomicU64>>,
    /// Answers the proxy made itself (HTTP), by status.
    by_status: Mutex<BTreeMap<u16, u64>>,
}

impl Stats {
    /// A client connection, counted open until the guard drops.
    pub(super) fn session(self: &Arc<Self>) -> Open {
        self.sessions.fetch_add(1, Ordering::Relaxed);
        self.sessions_total.fetch_add(1, Ordering::Relaxed);
        Open(Arc::clone(self))
    }

    /// Client connections open now.
    pub(super) fn open(&self) -> u64 {
        self.sessions.load(Ordering::Relaxed)
    }

    pub(super) fn failed_attempt(&self) {
        self.failed_attempts.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn unserved(&self) {
        self.unserved.fetch_add(1, Ordering::Relaxed);
    }

    /// `peer` took a request (HTTP) or a session (TCP).
    pub(super) fn took(&self, peer: &str) {
        if let Ok(m) = self.by_peer.read() {
            if let Some(n) = m.get(peer) {
                n.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        if let Ok(mut m) = self.by_peer.write() {
            m.entry(peer.to_owned())
                .or_default()
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `n` bytes came from a client.
    pub(super) fn received(&self, n: u64) {
        self.bytes_in.fetch_add(n, Ordering::Relaxed);
    }

    /// `n` bytes went to a client.
    pub(super) fn sent(&self, n: u64) {
        self.bytes_out.fetch_add(n, Ordering::Relaxed);
    }

    /// A peer took a request or session after another one failed it.
    pub(super) fn failover(&self) {
        self.failovers.fetch_add(1, Ordering::Relaxed);
    }

    /// A peer answered a request with `status`.
    pub(super) fn response(&self, status: u16) {
        if let Ok(mut m) = self.by_peer_status.lock() {
            *m.entry(status).or_default() += 1;
        }
    }

    /// The proxy answered a request itself with `status`.
    pub(super) fn answered(&self, status: u16) {
        if let Ok(mut m) = self.by_status.lock() {
            *m.entry(status).or_default() += 1;
        }
    }
}

/// One of a listener's counters.
type Field = fn(&Stats) -> &AtomicU64;

/// One of a listener's counts by HTTP status.
type CodeField = fn(&Stats) -> &Mutex<BTreeMap<u16, u64>>;

/// A count by status, as it is now.
fn codes(m: &Mutex<BTreeMap<u16, u64>>) -> BTreeMap<u16, u64> {
    m.lock().map(|m| m.clone()).unwrap_or_default()
}

/// A client connection counted open.
#[derive(Debug)]
pub(super) struct Open(Arc<Stats>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.sessions.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The listeners' counters by listener name.
#[derive(Clone, Debug, Default)]
pub struct Registry(Arc<Mutex<BTreeMap<String, Arc<Stats>>>>);

impl Registry {
    /// The counters of listener `name` (new ones the first time).
    pub fn of(&self, name: &str) -> Arc<Stats> {
        match self.0.lock() {
            Ok(mut m) => Arc::clone(m.entry(name.to_owned()).or_default()),
            Err(_) => Arc::default(),
        }
    }

    /// Client sessions open now, over every listener.
    pub fn open_sessions(&self) -> u64 {
        self.0.lock().map_or(0, |m| {
            m.values().map(|s| s.sessions.load(Ordering::Relaxed)).sum()
        })
    }

    /// Forgets listener `name` (a reload removed it).
    pub fn remove(&self, name: &str) {
        if let Ok(mut m) = self.0.lock() {
            m.remove(name);
        }
    }

    /// Every listener's counters, by name.
    fn listeners(&self) -> Vec<(String, Arc<Stats>)> {
        match self.0.lock() {
            Ok(m) => m.iter().map(|(k, v)| (k.clone(), Arc::clone(v))).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Every listener's counters as JSON (`/v1/listeners`, docs/api.md).
    pub fn json(&self) -> serde_json::Value {
        let all = self.listeners();
        let list = all
            .iter()
            .map(|(name, s)| {
                let by_peer: BTreeMap<String, u64> = s
                    .by_peer
                    .read()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.clone(), v.load(Ordering::Relaxed)))
                            .collect()
                    })
                    .unwrap_or_default();
                serde_json::json!({
                    "name": name,
                    "sessions": s.sessions.load(Ordering::Relaxed),
                    "sessions_total": s.sessions_total.load(Ordering::Relaxed),
                    "requests_total": by_peer.values().sum::<u64>(),
                    "failed_attempts_total": s.failed_attempts.load(Ordering::Relaxed),
                    "unserved_total": s.unserved.load(Ordering::Relaxed),
                    "received_bytes_total": s.bytes_in.load(Ordering::Relaxed),
                    "sent_bytes_total": s.bytes_out.load(Ordering::Relaxed),
                    "failovers_total": s.failovers.load(Ordering::Relaxed),
                    "responses_total": codes(&s.by_peer_status),
                    "peer_requests_total": by_peer,
                    "proxy_responses_total": codes(&s.by_status),
                })
            })
            .collect();
        serde_json::Value::Array(list)
    }

    /// The counters in Prometheus' text format.
    pub fn prometheus(&self) -> String {
        let all = self.listeners();
        let mut o = String::new();
        let scalars: [(&str, &str, &str, Field); 7] = [
            (
                "warden_listener_sessions",
                "gauge",
                "Client connections open now.",
                |s| &s.sessions,
            ),
            (
                "warden_listener_sessions_total",
                "counter",
                "Client connections accepted.",
                |s| &s.sessions_total,
            ),
            (
                "warden_listener_failed_attempts_total",
                "counter",
                "Connects to a peer or exchanges with one that failed (each moves on to the next peer when the retry rules allow).",
                |s| &s.failed_attempts,
            ),
            (
                "warden_listener_unserved_total",
                "counter",
                "TCP client connections no peer accepted.",
                |s| &s.unserved,
            ),
            (
                "warden_listener_received_bytes_total",
                "counter",
                "Bytes read from clients (TCP sessions count when they end).",
                |s| &s.bytes_in,
            ),
            (
                "warden_listener_sent_bytes_total",
                "counter",
                "Bytes written to clients (TCP sessions count when they end).",
                |s| &s.bytes_out,
            ),
            (
                "warden_listener_failovers_total",
                "counter",
                "Requests (HTTP) or sessions (TCP) a peer took after another peer failed them: failures no client saw.",
                |s| &s.failovers,
            ),
        ];
        for (name, kind, help, field) in scalars {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (l, s) in &all {
                let v = field(s).load(Ordering::Relaxed);
                let _ = writeln!(o, "{name}{{listener=\"{}\"}} {v}", escape(l));
            }
        }
        o.push_str("# HELP warden_listener_peer_requests_total Requests (HTTP) or sessions (TCP) each peer took.\n# TYPE warden_listener_peer_requests_total counter\n");
        for (l, s) in &all {
            if let Ok(m) = s.by_peer.read() {
                for (peer, n) in m.iter() {
                    let _ = writeln!(
                        o,
                        "warden_listener_peer_requests_total{{listener=\"{}\",peer=\"{}\"}} {}",
                        escape(l),
                        escape(peer),
                        n.load(Ordering::Relaxed)
                    );
                }
            }
        }
        let by_code: [(&str, &str, CodeField); 2] = [
            (
                "warden_listener_responses_total",
                "Responses of peers relayed to clients (HTTP), by status.",
                |s| &s.by_peer_status,
            ),
            (
                "warden_listener_proxy_responses_total",
                "Answers the proxy made itself (HTTP), by status.",
                |s| &s.by_status,
            ),
        ];
        for (name, help, field) in by_code {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter");
            for (l, s) in &all {
                for (code, n) in codes(field(s)) {
                    let _ = writeln!(
                        o,
                        "{name}{{listener=\"{}\",code=\"{code}\"}} {n}",
                        escape(l)
                    );
                }
            }
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_by_listener_in_prometheus_text() {
        let r = Registry::default();
        let web = r.of("web");
        let open = web.session();
        let _closed = web.session();
        drop(_closed);
        web.took("10.0.0.1:80");
        web.took("10.0.0.1:80");
        web.took("10.0.0.2:80");
        web.failed_attempt();
        web.answered(502);
        web.response(200);
        web.response(200);
        web.received(10);
        web.sent(20);
        web.failover();
        r.of("db").unserved();
        assert!(Arc::ptr_eq(&web, &r.of("web")), "one set per name");
        let text = r.prometheus();
        for want in [
            "# TYPE warden_listener_sessions gauge\nwarden_listener_sessions{listener=\"db\"} 0\nwarden_listener_sessions{listener=\"web\"} 1\n",
            "warden_listener_sessions_total{listener=\"web\"} 2\n",
            "warden_listener_failed_attempts_total{listener=\"web\"} 1\n",
            "warden_listener_unserved_total{listener=\"db\"} 1\n",
            "warden_listener_peer_requests_total{listener=\"web\",peer=\"10.0.0.1:80\"} 2\n",
            "warden_listener_peer_requests_total{listener=\"web\",peer=\"10.0.0.2:80\"} 1\n",
            "warden_listener_proxy_responses_total{listener=\"web\",code=\"502\"} 1\n",
            "warden_listener_responses_total{listener=\"web\",code=\"200\"} 2\n",
            "warden_listener_received_bytes_total{listener=\"web\"} 10\n",
            "warden_listener_sent_bytes_total{listener=\"web\"} 20\n",
            "warden_listener_failovers_total{listener=\"web\"} 1\n",
        ] {
            assert!(text.contains(want), "{want}\n{text}");
        }
        drop(open);
        r.remove("db");
        let text = r.prometheus();
        assert!(text.contains("warden_listener_sessions{listener=\"web\"} 0\n"));
        assert!(!text.contains("db"), "{text}");
    }
}
