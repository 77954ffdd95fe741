//! Runs the checks of every upstream: one fixed-rate loop per peer (shifted by a random part of
//! the jitter, so checks never bunch), at most `concurrency` checks in flight per upstream, the
//! result fed to the peer's hysteresis; the status of all upstreams is shared for the API.

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::{Semaphore, broadcast};
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{debug, error, warn};
use warden_engine::Time;
use warden_engine::health::{PeerHealth, PeerState};

use super::{CheckError, Peer, Upstream, probe};

/// One peer as the status shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerStatus {
    pub peer: Peer,
    pub backup: bool,
    pub health: PeerHealth,
    pub last_error: Option<String>,
    /// The kind of the last error logged at ERROR (each kind once while the peer is up).
    last_error_kind: Option<&'static str>,
    pub last_check: Option<Time>,
}

impl PeerStatus {
    /// A status as the checker would hold it (for tests of the outputs).
    pub fn for_test(peer: Peer, backup: bool, health: PeerHealth) -> PeerStatus {
        PeerStatus {
            peer,
            backup,
            health,
            last_error: None,
            last_error_kind: None,
            last_check: None,
        }
    }

    /// DOWN when the operator marked it down, else its health.
    pub fn state(&self) -> PeerState {
        if self.peer.down {
            PeerState::Down
        } else {
            self.health.state
        }
    }
}

/// One upstream as the status shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamStatus {
    pub name: String,
    /// Bumped by every change of a peer's routing state.
    pub version: u64,
    pub peers: Vec<PeerStatus>,
}

/// A peer changed state (for the proxy and the web page).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerEvent {
    pub upstream: String,
    pub peer: String,
    pub from: PeerState,
    pub to: PeerState,
    pub version: u64,
}

/// The checks of all upstreams, running.
#[derive(Clone, Debug)]
pub struct Checker {
    pub status: Arc<Mutex<Vec<UpstreamStatus>>>,
    pub events: broadcast::Sender<PeerEvent>,
}

fn wall() -> Time {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Time::from_millis(ms)
}

/// A small xorshift generator for jitter, seeded from the clock and the peer.
fn jitter_fraction(seed: u64) -> f64 {
    let mut x = seed ^ 0x9E37_79B9_7F4A_7C15 ^ wall().as_millis().rotate_left(17);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    (x % 1_000_000) as f64 / 1_000_000.0
}

impl Checker {
    /// Starts checking every peer of every upstream.
    pub fn start(upstreams: Vec<Upstream>) -> Checker {
        let (events, _) = broadcast::channel(1024);
        let status: Vec<UpstreamStatus> = upstreams
            .iter()
            .map(|u| UpstreamStatus {
                name: u.name.clone(),
                version: 0,
                peers: u
                    .primary
                    .iter()
                    .map(|p| (p, false))
                    .chain(u.backup.iter().map(|p| (p, true)))
                    .map(|(p, backup)| PeerStatus {
                        peer: p.clone(),
                        backup,
                        health: PeerHealth::default(),
                        last_error: None,
                        last_error_kind: None,
                        last_check: None,
                    })
                    .collect(),
            })
            .collect();
        let checker = Checker {
            status: Arc::new(Mutex::new(status)),
            events,
        };
        for (ui, u) in upstreams.into_iter().enumerate() {
            let sem = Arc::new(Semaphore::new(u.check.concurrency.max(1)));
            let u = Arc::new(u);
            let peers = u.primary.len() + u.backup.len();
            for pi in 0..peers {
                let (u, sem, checker) = (Arc::clone(&u), Arc::clone(&sem), checker.clone());
                tokio::spawn(async move { checker.peer_loop(ui, pi, u, sem).await });
            }
        }
        checker
    }

    async fn peer_loop(self, ui: usize, pi: usize, u: Arc<Upstream>, sem: Arc<Semaphore>) {
        let peer = u.primary.iter().chain(&u.backup).nth(pi).cloned();
        let Some(peer) = peer else { return };
        if peer.down {
            return;
        }
        let offset = u
            .check
            .jitter
            .mul_f64(jitter_fraction((ui as u64) << 32 | pi as u64));
        let mut tick = tokio::time::interval_at(
            Instant::now() + offset,
            u.check.interval.max(std::time::Duration::from_millis(1)),
        );
        // Fixed rate: a slow check skips ticks rather than bunching the next ones.
        tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
        loop {
            tick.tick().await;
            let Ok(_permit) = sem.acquire().await else {
                return;
            };
            let result = probe(&peer, &u.check).await;
            self.record(ui, pi, &u, result);
        }
    }

    fn record(&self, ui: usize, pi: usize, u: &Upstream, result: Result<(), CheckError>) {
        let Ok(mut all) = self.status.lock() else {
            return;
        };
        let Some(up) = all.get_mut(ui) else { return };
        let Some(p) = up.peers.get_mut(pi) else {
            return;
        };
        p.last_check = Some(wall());
        let ok = result.is_ok();
        match &result {
            Ok(()) => {
                p.last_error_kind = None;
                debug!(upstream = %u.name, peer = %p.peer.addr, "check ok");
            }
            Err(e) => {
                // The first error of each kind while the peer is up (or unknown) needs a human.
                if p.health.state.routable() && p.last_error_kind != Some(e.kind()) {
                    error!(upstream = %u.name, peer = %p.peer.addr, error = %e, "check of peer {} of upstream {} failed: {e}", p.peer.addr, u.name);
                }
                p.last_error_kind = Some(e.kind());
                p.last_error = Some(e.to_string());
            }
        }
        let Some(change) = p.health.record(ok, u.check.hysteresis) else {
            return;
        };
        if !change.routing_changed {
            return;
        }
        up.version += 1;
        let p = &up.peers[pi];
        match change.to {
            PeerState::Down => {
                warn!(upstream = %u.name, peer = %p.peer.addr, version = up.version, "peer {} of upstream {} is turned down after {} failure(s)", p.peer.addr, u.name, change.after)
            }
            _ => {
                warn!(upstream = %u.name, peer = %p.peer.addr, version = up.version, "peer {} of upstream {} is turned up after {} success(es)", p.peer.addr, u.name, change.after)
            }
        }
        let _ = self.events.send(PeerEvent {
            upstream: u.name.clone(),
            peer: p.peer.addr.clone(),
            from: change.from,
            to: change.to,
            version: up.version,
        });
    }

    /// A copy of the status of every upstream.
    pub fn snapshot(&self) -> Vec<UpstreamStatus> {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// The status page in lua-resty-upstream-healthcheck's format (a blank line between upstreams,
/// "Backup Peers" always printed); a peer not yet checked is UNKNOWN.
pub fn status_page(ups: &[UpstreamStatus]) -> String {
    let mut o = String::new();
    for (i, u) in ups.iter().enumerate() {
        if i > 0 {
            o.push('\n');
        }
        o.push_str(&format!("Upstream {}\n    Primary Peers\n", u.name));
        for p in u.peers.iter().filter(|p| !p.backup) {
            o.push_str(&format!("        {} {}\n", p.peer.addr, p.state()));
        }
        o.push_str("    Backup Peers\n");
        for p in u.peers.iter().filter(|p| p.backup) {
            o.push_str(&format!("        {} {}\n", p.peer.addr, p.state()));
        }
    }
    o
}

/// Prometheus lines: `warden_upstream_status_info{name,endpoint,status,role} 1` per peer and the
/// version per upstream.
pub fn prometheus(ups: &[UpstreamStatus]) -> String {
    let mut o = String::from(
        "# HELP warden_upstream_status_info Health of each upstream peer.\n# TYPE warden_upstream_status_info gauge\n",
    );
    for u in ups {
        for p in &u.peers {
            let role = if p.backup { "backup" } else { "primary" };
            o.push_str(&format!(
                "warden_upstream_status_info{{name=\"{}\",endpoint=\"{}\",status=\"{}\",role=\"{role}\"}} 1\n",
                escape(&u.name),
                escape(&p.peer.addr),
                p.state()
            ));
        }
    }
    o.push_str("# HELP warden_upstream_version Changes of peer state per upstream.\n# TYPE warden_upstream_version counter\n");
    for u in ups {
        o.push_str(&format!(
            "warden_upstream_version{{name=\"{}\"}} {}\n",
            escape(&u.name),
            u.version
        ));
    }
    o
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
