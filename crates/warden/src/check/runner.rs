//! Runs the checks of every upstream: one fixed-rate loop per peer (shifted by a random part of
//! the jitter, so checks never bunch), at most `concurrency` checks in flight per upstream, the
//! result fed to the peer's hysteresis; the status of all upstreams is shared for the API.

use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::{Semaphore, broadcast};
use tokio::time::Instant;
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
    /// The error of the current run of failed checks (none once a check succeeds).
    pub last_error: Option<String>,
    /// The last failed check: its error and when (kept after the peer recovers).
    pub last_failure: Option<(String, Time)>,
    /// The kind of the last error logged at ERROR (each kind once while the peer is up).
    last_error_kind: Option<&'static str>,
    pub last_check: Option<Time>,
    /// When its routing state last changed (None: not since the start).
    pub since: Option<Instant>,
    /// When its current run of successful checks reached `rise` (None: not in this run).
    pub risen: Option<Instant>,
    /// The operator drained it (`warden upstream drain`): no new connection or request goes
    /// there, those open finish, and it is still checked, so its health stays known.
    pub drained: bool,
}

impl UpstreamStatus {
    /// A status as the checker would hold it (for tests of the outputs).
    pub fn for_test(name: &str, version: u64, peers: Vec<PeerStatus>) -> UpstreamStatus {
        UpstreamStatus {
            name: name.to_owned(),
            version,
            peers,
            late_checks: 0,
            late_warned: None,
        }
    }
}

impl PeerStatus {
    /// A peer not checked yet.
    fn new(peer: Peer, backup: bool) -> PeerStatus {
        PeerStatus {
            peer,
            backup,
            health: PeerHealth::default(),
            last_error: None,
            last_failure: None,
            last_error_kind: None,
            last_check: None,
            since: None,
            risen: None,
            drained: false,
        }
    }

    /// A status as the checker would hold it (for tests of the outputs).
    pub fn for_test(peer: Peer, backup: bool, health: PeerHealth) -> PeerStatus {
        PeerStatus {
            health,
            ..PeerStatus::new(peer, backup)
        }
    }

    /// Whether traffic may go there: not DOWN, and not UNKNOWN when the upstream routes unknown
    /// peers as down.
    pub fn routable(&self, spec: &super::CheckSpec) -> bool {
        if self.drained {
            return false;
        }
        match self.state() {
            PeerState::Down => false,
            PeerState::Unknown => spec.unknown_routable,
            PeerState::Up => true,
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
    /// Checks that started later than one `interval` after they were due.
    pub late_checks: u64,
    /// When that was last said at WARN.
    late_warned: Option<Instant>,
}

/// A peer changed state (for the proxy and the web page).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerEvent {
    pub upstream: String,
    pub peer: String,
    pub from: PeerState,
    pub to: PeerState,
    pub version: u64,
    /// The peer became a primary (`Some(false)`) or a backup (`Some(true)`) with its state
    /// unchanged: its upstream follows a resource that moved.
    pub backup: Option<bool>,
}

/// The checks of all upstreams, running.
#[derive(Clone, Debug)]
pub struct Checker {
    pub status: Arc<Mutex<Vec<UpstreamStatus>>>,
    pub events: broadcast::Sender<PeerEvent>,
    /// Per upstream: its configuration and the concurrency limit its checks share, by a
    /// stable index (the status has the same index). A reload appends new upstreams and
    /// retires removed ones (index kept, hidden, no loop).
    upstreams: Arc<RwLock<Vec<Entry>>>,
    /// The running loop of each peer, by (upstream index, address), to stop it on removal.
    loops: Arc<Mutex<std::collections::HashMap<(usize, String), tokio::task::AbortHandle>>>,
    /// Bumped by every change that can change routing (a peer's routability or role, a peer
    /// added, removed or updated), so routers can cache what they derive from the status.
    generation: Arc<std::sync::atomic::AtomicU64>,
}

/// One upstream as the checker runs it.
#[derive(Clone, Debug)]
struct Entry {
    upstream: Arc<Upstream>,
    sem: Arc<Semaphore>,
    retired: bool,
}

impl Entry {
    fn new(u: Upstream) -> Entry {
        let sem = Arc::new(Semaphore::new(u.check.concurrency.max(1)));
        Entry {
            upstream: Arc::new(u),
            sem,
            retired: false,
        }
    }
}

fn status_of(u: &Upstream) -> UpstreamStatus {
    UpstreamStatus {
        name: u.name.clone(),
        version: 0,
        late_checks: 0,
        late_warned: None,
        peers: u
            .primary
            .iter()
            .map(|p| (p, false))
            .chain(u.backup.iter().map(|p| (p, true)))
            .map(|(p, backup)| PeerStatus::new(p.clone(), backup))
            .collect(),
    }
}

/// Why a peer could not be added or removed at runtime.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PeerChangeError {
    #[error("unknown upstream {0:?}")]
    UnknownUpstream(String),
    #[error("{0}")]
    BadAddress(String),
    #[error("upstream {upstream:?} already has peer {addr}")]
    Exists { upstream: String, addr: String },
    #[error("upstream {upstream:?} has no peer {addr}")]
    NoSuchPeer { upstream: String, addr: String },
    #[error("upstream {0:?} runs already")]
    UpstreamExists(String),
}

/// A small xorshift generator for jitter, seeded from the clock and the peer.
fn jitter_fraction(seed: u64) -> f64 {
    let mut x =
        seed ^ 0x9E37_79B9_7F4A_7C15 ^ crate::wire::wall_clock().as_millis().rotate_left(17);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    (x % 1_000_000) as f64 / 1_000_000.0
}

impl Checker {
    /// Starts checking every peer of every upstream.
    pub fn start(upstreams: Vec<Upstream>) -> Checker {
        let (events, _) = broadcast::channel(1024);
        let status: Vec<UpstreamStatus> = upstreams.iter().map(status_of).collect();
        let entries: Vec<Entry> = upstreams.into_iter().map(Entry::new).collect();
        let checker = Checker {
            status: Arc::new(Mutex::new(status)),
            events,
            upstreams: Arc::new(RwLock::new(entries)),
            loops: Arc::default(),
            generation: Arc::default(),
        };
        for ui in 0..checker.entries().len() {
            checker.spawn_all(ui);
        }
        checker
    }

    /// A copy of the upstream entries (cheap: `Arc`s).
    fn entries(&self) -> Vec<Entry> {
        self.upstreams.read().map(|v| v.clone()).unwrap_or_default()
    }

    fn entry(&self, ui: usize) -> Option<Entry> {
        self.upstreams.read().ok()?.get(ui).cloned()
    }

    /// Starts the loop of every peer of upstream number `ui`.
    fn spawn_all(&self, ui: usize) {
        let Some(e) = self.entry(ui) else { return };
        for (pi, peer) in e
            .upstream
            .primary
            .iter()
            .chain(&e.upstream.backup)
            .enumerate()
        {
            self.spawn_peer(ui, pi, peer.clone());
        }
    }

    /// Stops the loop of every peer of upstream number `ui`.
    fn stop_all(&self, ui: usize) {
        if let Ok(mut loops) = self.loops.lock() {
            loops.retain(|(u, _), h| {
                if *u == ui {
                    h.abort();
                }
                *u != ui
            });
        }
    }

    /// Starts checking a new upstream (a reload).
    pub fn add_upstream(&self, u: Upstream) -> Result<(), PeerChangeError> {
        if self.upstream_index(&u.name).is_ok() {
            return Err(PeerChangeError::UpstreamExists(u.name));
        }
        let ui = {
            let (Ok(mut entries), Ok(mut status)) = (self.upstreams.write(), self.status.lock())
            else {
                return Ok(());
            };
            status.push(status_of(&u));
            entries.push(Entry::new(u));
            entries.len() - 1
        };
        self.bump();
        self.spawn_all(ui);
        Ok(())
    }

    /// Stops checking an upstream (a reload removed it); it leaves the status.
    pub fn remove_upstream(&self, name: &str) -> Result<(), PeerChangeError> {
        let ui = self.upstream_index(name)?;
        if let Ok(mut entries) = self.upstreams.write() {
            if let Some(e) = entries.get_mut(ui) {
                e.retired = true;
            }
        }
        self.stop_all(ui);
        self.bump();
        Ok(())
    }

    /// Checks an upstream's peers with a new check (kind, interval, timeout, fall, rise,
    /// ...): their loops restart with it; their states stay.
    fn set_check(&self, ui: usize, u: &Upstream) {
        if let Ok(mut entries) = self.upstreams.write() {
            if let Some(e) = entries.get_mut(ui) {
                let mut up = (*e.upstream).clone();
                up.check = u.check.clone();
                *e = Entry::new(up);
            }
        }
        let peers: Vec<Peer> = self
            .status
            .lock()
            .map(|all| {
                all.get(ui)
                    .map(|x| x.peers.iter().map(|p| p.peer.clone()).collect())
                    .unwrap_or_default()
            })
            .unwrap_or_default();
        self.stop_all(ui);
        for (pi, peer) in peers.into_iter().enumerate() {
            self.spawn_peer(ui, pi, peer);
        }
        self.bump();
    }

    fn spawn_peer(&self, ui: usize, seed: usize, peer: Peer) {
        if peer.down {
            return;
        }
        let Some(Entry {
            upstream: u, sem, ..
        }) = self.entry(ui)
        else {
            return;
        };
        let addr = peer.addr.clone();
        let me = self.clone();
        let handle = tokio::spawn(async move { me.peer_loop(ui, seed, peer, u, sem).await });
        if let Ok(mut loops) = self.loops.lock() {
            loops.insert((ui, addr), handle.abort_handle());
        }
    }

    /// Adds a peer to a running upstream; the others keep their state.
    pub fn add_peer(
        &self,
        upstream: &str,
        addr: &str,
        backup: bool,
    ) -> Result<(), PeerChangeError> {
        let peer = Peer::parse(addr).map_err(PeerChangeError::BadAddress)?;
        self.add_peer_spec(upstream, peer, backup)
    }

    /// Adds a peer given in full (a reload).
    pub fn add_peer_spec(
        &self,
        upstream: &str,
        peer: Peer,
        backup: bool,
    ) -> Result<(), PeerChangeError> {
        let ui = self.upstream_index(upstream)?;
        let addr = peer.addr.clone();
        let addr = addr.as_str();
        let seed = {
            let Ok(mut all) = self.status.lock() else {
                return Ok(());
            };
            let up = &mut all[ui];
            if up.peers.iter().any(|p| p.peer.addr == addr) {
                return Err(PeerChangeError::Exists {
                    upstream: upstream.to_owned(),
                    addr: addr.to_owned(),
                });
            }
            up.peers.push(PeerStatus::new(peer.clone(), backup));
            self.bump();
            up.peers.len()
        };
        self.spawn_peer(ui, seed, peer);
        Ok(())
    }

    /// Removes a peer from a running upstream and stops checking it.
    pub fn remove_peer(&self, upstream: &str, addr: &str) -> Result<(), PeerChangeError> {
        let ui = self.upstream_index(upstream)?;
        let canonical = Peer::parse(addr).map(|p| p.addr);
        let addr = canonical.as_deref().unwrap_or(addr);
        if let Ok(mut all) = self.status.lock() {
            let before = all[ui].peers.len();
            all[ui].peers.retain(|p| p.peer.addr != addr);
            self.bump();
            if all[ui].peers.len() == before {
                return Err(PeerChangeError::NoSuchPeer {
                    upstream: upstream.to_owned(),
                    addr: addr.to_owned(),
                });
            }
        }
        if let Some(h) = self
            .loops
            .lock()
            .ok()
            .and_then(|mut l| l.remove(&(ui, addr.to_owned())))
        {
            h.abort();
        }
        crate::metrics::global()
            .checks
            .retain(|k| !(k[0] == upstream && k[1] == addr));
        Ok(())
    }

    /// Drains a peer (`true`: no new traffic goes there) or takes it back (`false`), until the
    /// daemon restarts; a reload keeps it.
    pub fn set_drained(
        &self,
        upstream: &str,
        addr: &str,
        drained: bool,
    ) -> Result<(), PeerChangeError> {
        let ui = self.upstream_index(upstream)?;
        let canonical = Peer::parse(addr).map(|p| p.addr);
        let addr = canonical.as_deref().unwrap_or(addr);
        let Ok(mut all) = self.status.lock() else {
            return Ok(());
        };
        let Some(p) = all[ui].peers.iter_mut().find(|p| p.peer.addr == addr) else {
            return Err(PeerChangeError::NoSuchPeer {
                upstream: upstream.to_owned(),
                addr: addr.to_owned(),
            });
        };
        if p.drained != drained {
            p.drained = drained;
            all[ui].version += 1;
            tracing::info!(
                upstream,
                peer = addr,
                drained,
                "peer drain changed by the operator"
            );
            self.bump();
        }
        Ok(())
    }

    fn upstream_index(&self, name: &str) -> Result<usize, PeerChangeError> {
        self.upstreams
            .read()
            .ok()
            .and_then(|v| v.iter().position(|e| !e.retired && e.upstream.name == name))
            .ok_or_else(|| PeerChangeError::UnknownUpstream(name.to_owned()))
    }

    async fn peer_loop(
        self,
        ui: usize,
        seed: usize,
        peer: Peer,
        u: Arc<Upstream>,
        sem: Arc<Semaphore>,
    ) {
        let offset = u
            .check
            .jitter
            .mul_f64(jitter_fraction((ui as u64) << 32 | seed as u64));
        let interval = u.check.interval.max(std::time::Duration::from_millis(1));
        let mut next = Instant::now() + offset;
        // The connection kept between checks (`keepalive`).
        let mut conn = None;
        loop {
            tokio::time::sleep_until(next).await;
            let due = next;
            let Ok(_permit) = sem.acquire().await else {
                return;
            };
            let started = Instant::now();
            // Fixed rate on the schedule the jitter set, and never two checks of a peer closer
            // than `interval`: after a slow check, a wait for a slot or a hang of the whole
            // process, the missed ticks are skipped (the check due during a SIGSTOP and the
            // next one do not run back to back).
            next = due + interval;
            if next < started + interval {
                let behind = (started + interval - next).as_nanos();
                let skip = behind.div_ceil(interval.as_nanos().max(1));
                next += interval * u32::try_from(skip).unwrap_or(u32::MAX);
            }
            if started.duration_since(due) > interval {
                // Checks cannot start on time: too many slow peers for `concurrency`.
                self.late(ui, &u, started.duration_since(due));
            }
            // Boxed: a check's buffers live only while it runs (at most `concurrency` at a
            // time), not in every idle peer's loop.
            let began = Instant::now();
            let result = if u.check.keepalive {
                Box::pin(super::probe_keepalive(&peer, &u.check, &mut conn)).await
            } else {
                Box::pin(probe(&peer, &u.check)).await
            };
            let outcome = match &result {
                Ok(()) => "success",
                Err(CheckError::Local(_)) => "not_checked",
                Err(_) => "failure",
            };
            crate::metrics::global()
                .checks
                .observe(&[&u.name, &peer.addr, outcome], began.elapsed());
            self.record(ui, &peer.addr, &u, result);
        }
    }

    /// A check started `by` late (it waited for one of the upstream's `concurrency` slots):
    /// counted, and said at WARN at most every 30 s per upstream.
    fn late(&self, ui: usize, u: &Upstream, by: std::time::Duration) {
        let Ok(mut all) = self.status.lock() else {
            return;
        };
        let Some(up) = all.get_mut(ui) else { return };
        up.late_checks += 1;
        let now = Instant::now();
        if up
            .late_warned
            .is_none_or(|t| now.duration_since(t) > std::time::Duration::from_secs(30))
        {
            up.late_warned = Some(now);
            warn!(upstream = %u.name, late_checks = up.late_checks, concurrency = u.check.concurrency, "checks of upstream {} start late (one by {}): {} peer(s) share {} check slot(s), and slow or hung peers hold them up to `timeout` each; raise `concurrency` or lower `timeout`", u.name, crate::duration::format(by), up.peers.len(), u.check.concurrency);
        }
    }

    fn record(&self, ui: usize, addr: &str, u: &Upstream, result: Result<(), CheckError>) {
        let Ok(mut all) = self.status.lock() else {
            return;
        };
        let Some(up) = all.get_mut(ui) else { return };
        // Found by address: peers come and go at runtime.
        let Some(pi) = up.peers.iter().position(|p| p.peer.addr == addr) else {
            return;
        };
        let p = &mut up.peers[pi];
        if let Err(e @ CheckError::Local(_)) = &result {
            // Nothing learnt about the peer: its state stays, and a human hears of it once.
            if p.last_error_kind != Some(e.kind()) {
                warn!(upstream = %u.name, peer = %p.peer.addr, error = %e, "peer {} of upstream {} could not be checked: {e}", p.peer.addr, u.name);
            }
            p.last_error_kind = Some(e.kind());
            return;
        }
        p.last_check = Some(crate::wire::wall_clock());
        let ok = result.is_ok();
        match &result {
            Ok(()) => {
                p.last_error_kind = None;
                p.last_error = None;
                debug!(upstream = %u.name, peer = %p.peer.addr, "check ok");
            }
            Err(e) => {
                // The first error of each kind while the peer is up needs a human. A peer not
                // yet seen up (its service still starting) is not an error until it turns
                // DOWN, which is logged at WARN.
                if p.health.state == PeerState::Up && p.last_error_kind != Some(e.kind()) {
                    error!(upstream = %u.name, peer = %p.peer.addr, error = %e, "check of peer {} of upstream {} failed: {e}", p.peer.addr, u.name);
                }
                p.last_error_kind = Some(e.kind());
                p.last_error = Some(e.to_string());
                p.last_failure = p.last_check.map(|t| (e.to_string(), t));
            }
        }
        let change = p.health.record(ok, u.check.hysteresis);
        // The run of successes that reaches `rise` (or the failure that ends it) is news for
        // the proxy's passive detection, whether or not routing changes.
        let rise = u.check.hysteresis.rise.max(1);
        if ok && p.health.successes == rise {
            p.risen = Some(Instant::now());
            self.bump();
        } else if !ok && p.risen.take().is_some() {
            self.bump();
        }
        let Some(change) = change else {
            return;
        };
        if !change.routing_changed {
            return;
        }
        up.version += 1;
        self.bump();
        up.peers[pi].since = Some(Instant::now());
        let p = &up.peers[pi];
        match change.to {
            PeerState::Down => {
                let why = p.last_error.as_deref().unwrap_or("marked down");
                warn!(upstream = %u.name, peer = %p.peer.addr, version = up.version, error = %why, "peer {} of upstream {} is turned down after {} failure(s): {why}", p.peer.addr, u.name, change.after)
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
            backup: None,
        });
    }

    /// Brings a running upstream to its configuration `u` (a reload): adds and removes peers,
    /// updates the options of the others in place (their health stays), and, when `roles`,
    /// their primary/backup role, and the check itself (its peer loops restart with it).
    /// Returns what changed, for the operator.
    pub fn reconcile(&self, u: &Upstream, roles: bool) -> Result<Vec<String>, PeerChangeError> {
        let ui = self.upstream_index(&u.name)?;
        let desired: Vec<(&Peer, bool)> = u
            .primary
            .iter()
            .map(|p| (p, false))
            .chain(u.backup.iter().map(|p| (p, true)))
            .collect();
        let current: Vec<PeerStatus> = self
            .status
            .lock()
            .map(|all| all.get(ui).map(|x| x.peers.clone()).unwrap_or_default())
            .unwrap_or_default();
        let mut changes = Vec::new();
        for p in &current {
            if !desired.iter().any(|(d, _)| d.addr == p.peer.addr) {
                self.remove_peer(&u.name, &p.peer.addr)?;
                changes.push(format!("upstream {}: peer {} removed", u.name, p.peer.addr));
            }
        }
        let mut primaries = Vec::new();
        for (d, backup) in &desired {
            if !backup {
                primaries.push(d.addr.clone());
            }
            match current.iter().find(|p| p.peer.addr == d.addr) {
                None => {
                    self.add_peer_spec(&u.name, (*d).clone(), *backup)?;
                    changes.push(format!("upstream {}: peer {} added", u.name, d.addr));
                }
                Some(p) if p.peer != **d => {
                    if let Ok(mut all) = self.status.lock() {
                        if let Some(x) = all
                            .get_mut(ui)
                            .and_then(|x| x.peers.iter_mut().find(|x| x.peer.addr == d.addr))
                        {
                            x.peer = (*d).clone();
                        }
                        self.bump();
                    }
                    if p.peer.down != d.down {
                        // Marked down: no more checks; no longer: checked from now on.
                        if let Some(h) = self
                            .loops
                            .lock()
                            .ok()
                            .and_then(|mut l| l.remove(&(ui, d.addr.clone())))
                        {
                            h.abort();
                        }
                        let seed = current.len() + changes.len();
                        self.spawn_peer(ui, seed, (*d).clone());
                    }
                    changes.push(format!("upstream {}: peer {} updated", u.name, d.addr));
                }
                Some(_) => {}
            }
        }
        if roles {
            let before: Vec<bool> = self.roles(ui);
            self.set_primaries(&u.name, &primaries);
            if before != self.roles(ui) {
                changes.push(format!(
                    "upstream {}: primaries are now {}",
                    u.name,
                    primaries.join(", ")
                ));
            }
        }
        if self.entry(ui).is_some_and(|e| e.upstream.check != u.check) {
            self.set_check(ui, u);
            changes.push(format!("upstream {}: check updated", u.name));
        }
        Ok(changes)
    }

    fn roles(&self, ui: usize) -> Vec<bool> {
        self.status
            .lock()
            .map(|all| {
                all.get(ui)
                    .map(|x| x.peers.iter().map(|p| p.backup).collect())
                    .unwrap_or_default()
            })
            .unwrap_or_default()
    }

    fn bump(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::Release);
    }

    /// Changes whenever routing may have changed (see the field).
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Whether an upstream of this name runs.
    pub fn has_upstream(&self, name: &str) -> bool {
        self.upstream_index(name).is_ok()
    }

    /// The names of the running upstreams.
    pub fn upstream_names(&self) -> Vec<String> {
        self.entries()
            .iter()
            .filter(|e| !e.retired)
            .map(|e| e.upstream.name.clone())
            .collect()
    }

    /// Makes the peers at `primaries` the upstream's primaries and every other peer a backup
    /// (an upstream that follows a resource). Each peer whose role changes bumps the version
    /// and sends an event; nothing happens when nothing changes.
    pub fn set_primaries(&self, upstream: &str, primaries: &[String]) {
        let Ok(ui) = self.upstream_index(upstream) else {
            return;
        };
        let Ok(mut all) = self.status.lock() else {
            return;
        };
        let Some(up) = all.get_mut(ui) else { return };
        for i in 0..up.peers.len() {
            let backup = !primaries.contains(&up.peers[i].peer.addr);
            if up.peers[i].backup == backup {
                continue;
            }
            up.peers[i].backup = backup;
            up.version += 1;
            self.bump();
            let p = &up.peers[i];
            warn!(upstream = %upstream, peer = %p.peer.addr, version = up.version, "peer {} of upstream {} is now a {}", p.peer.addr, upstream, if backup { "backup" } else { "primary" });
            let _ = self.events.send(PeerEvent {
                upstream: upstream.to_owned(),
                peer: p.peer.addr.clone(),
                from: p.state(),
                to: p.state(),
                version: up.version,
                backup: Some(backup),
            });
        }
    }

    /// A failure seen in real traffic (the proxy's connect was refused or timed out): it counts
    /// like a failed check, now, not at the next one.
    pub fn report_failure(&self, upstream: &str, addr: &str, error: CheckError) {
        let Ok(ui) = self.upstream_index(upstream) else {
            return;
        };
        let Some(e) = self.entry(ui) else { return };
        self.record(ui, addr, &e.upstream, Err(error));
    }

    /// The peers of an upstream (a copy of that upstream only) and its check.
    pub fn peers_of(&self, name: &str) -> Option<(Vec<PeerStatus>, super::CheckSpec)> {
        let ui = self.upstream_index(name).ok()?;
        let peers = self.status.lock().ok()?.get(ui)?.peers.clone();
        Some((peers, self.entry(ui)?.upstream.check.clone()))
    }

    /// The check of an upstream.
    pub fn check_spec_of(&self, name: &str) -> Option<super::CheckSpec> {
        let ui = self.upstream_index(name).ok()?;
        Some(self.entry(ui)?.upstream.check.clone())
    }

    /// A copy of the status of every upstream (those a reload removed are gone).
    pub fn snapshot(&self) -> Vec<UpstreamStatus> {
        let retired: Vec<bool> = self.entries().iter().map(|e| e.retired).collect();
        self.status
            .lock()
            .map(|s| {
                s.iter()
                    .enumerate()
                    .filter(|(i, _)| !retired.get(*i).copied().unwrap_or(false))
                    .map(|(_, u)| u.clone())
                    .collect()
            })
            .unwrap_or_default()
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
    o.push_str("# HELP warden_upstream_late_checks_total Checks that started more than one interval after they were due (too few check slots for slow peers).\n# TYPE warden_upstream_late_checks_total counter\n");
    for u in ups {
        o.push_str(&format!(
            "warden_upstream_late_checks_total{{name=\"{}\"}} {}\n",
            escape(&u.name),
            u.late_checks
        ));
    }
    o
}

/// A label value as Prometheus' text format wants it.
pub(crate) fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
