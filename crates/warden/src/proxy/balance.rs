//! Which peer a new connection (or request) goes to, and in what order the others are tried
//! when a connect fails. Pure: the caller passes the peers' health and the time, so every rule
//! is unit-tested here without a socket.
//!
//! Tiers: routable primaries take the traffic; backups only when no primary can. The failback
//! policy says when traffic returns from the backups: at once (`preempt`), once the primary has
//! been routable for a delay (`preempt_delay`), or only when no backup can take it
//! (`no_preempt`). Within the tier: first by configuration order (`primary-backup`; with
//! `all_backups` the backups share the load), round robin, smooth weighted round robin (nginx's
//! algorithm) or least connections (relative to weight). Passive failures follow nginx:
//! `max_fails` failed attempts within `fail_timeout` make a peer unavailable for `fail_timeout`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How a listener spreads traffic within a tier.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Balance {
    /// The first routable peer, in configuration order.
    #[default]
    PrimaryBackup,
    RoundRobin,
    /// Smooth weighted round robin.
    Weighted,
    /// The fewest connections in flight, relative to weight.
    LeastConn,
}

impl Balance {
    pub const NAMES: &'static [&'static str] =
        &["primary-backup", "round-robin", "weighted", "least-conn"];

    pub fn parse(s: &str) -> Option<Balance> {
        Some(match s {
            "primary-backup" => Balance::PrimaryBackup,
            "round-robin" => Balance::RoundRobin,
            "weighted" => Balance::Weighted,
            "least-conn" => Balance::LeastConn,
            _ => return None,
        })
    }
}

/// When traffic returns from the backups to a primary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Failback {
    /// As soon as a primary is routable again.
    #[default]
    Preempt,
    /// Only when no backup can take it any more.
    NoPreempt,
    /// Once a primary has been routable for this long.
    PreemptDelay(Duration),
}

/// A listener's policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    pub balance: Balance,
    pub failback: Failback,
    /// `primary-backup`: when on the backups, spread over all of them (round robin) rather
    /// than the first.
    pub all_backups: bool,
}

/// A peer as the balancer needs to see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerView {
    pub addr: String,
    pub backup: bool,
    /// Health allows traffic (not DOWN; UNKNOWN per the upstream's setting).
    pub routable: bool,
    /// Marked down by the operator: never used.
    pub down: bool,
    pub weight: u32,
    /// nginx's passive detection; 0 disables it.
    pub max_fails: u32,
    pub fail_timeout: Duration,
    /// When its routability last changed (None: never, since the start).
    pub since: Option<Instant>,
    /// When its current run of successful health checks reached `rise` (None: not in this
    /// run): a peer that was back before its check ever saw it down (a quick restart) proves
    /// itself this way.
    pub risen: Option<Instant>,
}

#[derive(Clone, Copy, Debug, Default)]
struct Passive {
    fails: u32,
    first: Option<Instant>,
    /// Taken out at `blocked_at` until `until`.
    blocked_at: Option<Instant>,
    until: Option<Instant>,
}

/// The state a listener keeps between choices.
#[derive(Clone, Debug, Default)]
pub struct Balancer {
    policy: Policy,
    /// Round-robin cursor.
    rr: usize,
    /// Smooth weighted round robin: each peer's current weight.
    current: HashMap<String, i64>,
    /// Connections (or requests) in flight per peer.
    conns: HashMap<String, u32>,
    passive: HashMap<String, Passive>,
    /// Traffic went to the backups: the failback policy decides when it returns.
    on_backups: bool,
}

impl Balancer {
    pub fn new(policy: Policy) -> Balancer {
        Balancer {
            policy,
            ..Balancer::default()
        }
    }

    /// Whether passive failures keep `p` out at `now`. A health check that turned it up
    /// again since it was taken out knows better, and lifts it.
    fn passively_down(&self, p: &PeerView, now: Instant) -> bool {
        let Some(s) = self.passive.get(&p.addr) else {
            return false;
        };
        let (Some(until), Some(at)) = (s.until, s.blocked_at) else {
            return false;
        };
        // Lifted early once health checks saw it come back after the failures.
        p.max_fails > 0
            && now < until
            && p.since.is_none_or(|since| since <= at)
            && p.risen.is_none_or(|risen| risen <= at)
    }

    fn available(&self, p: &PeerView, now: Instant) -> bool {
        !p.down && p.routable && !self.passively_down(p, now)
    }

    /// Whether traffic is on the backups now (after the last `order`).
    pub fn on_backups(&self) -> bool {
        self.on_backups
    }

    /// The peers to try for one new connection, best first: the tier's choice, the rest of
    /// the tier, the other tier's available peers, then every other peer not marked down (a
    /// health state can be stale, and a refused connect costs little).
    pub fn order(&mut self, peers: &[PeerView], now: Instant) -> Vec<String> {
        self.order_indexes(peers, now)
            .into_iter()
            .map(|i| peers[i].addr.clone())
            .collect()
    }

    /// [`Balancer::order`] as indexes into `peers`.
    pub fn order_indexes(&mut self, peers: &[PeerView], now: Instant) -> Vec<usize> {
        let avail = |backup: bool| -> Vec<usize> {
            (0..peers.len())
                .filter(|&i| peers[i].backup == backup && self.available(&peers[i], now))
                .collect()
        };
        let (primaries, backups) = (avail(false), avail(true));
        let stay_on_backups = self.on_backups
            && !backups.is_empty()
            && match self.policy.failback {
                Failback::Preempt => primaries.is_empty(),
                Failback::NoPreempt => true,
                // Back for `d`: since its health turned it routable and since its checks last
                // proved it again (a primary back before its checks saw it down).
                Failback::PreemptDelay(d) => !primaries.iter().any(|&i| {
                    peers[i]
                        .since
                        .max(peers[i].risen)
                        .is_none_or(|back| now.saturating_duration_since(back) >= d)
                }),
            };
        let use_backups = stay_on_backups || primaries.is_empty() && !backups.is_empty();
        self.on_backups = use_backups;
        let (tier, other) = if use_backups {
            (backups, primaries)
        } else {
            (primaries, backups)
        };
        let mut out: Vec<usize> = self.within(peers, &tier, use_backups);
        out.extend(other);
        for backup in [false, true] {
            let rest: Vec<usize> = (0..peers.len())
                .filter(|&i| peers[i].backup == backup && !peers[i].down && !out.contains(&i))
                .collect();
            out.extend(rest);
        }
        out
    }

    /// The tier's peers in the order the balance picks them.
    fn within(&mut self, peers: &[PeerView], tier: &[usize], backups: bool) -> Vec<usize> {
        if tier.is_empty() {
            return Vec::new();
        }
        let rotate = |rr: usize| -> Vec<usize> {
            let k = rr % tier.len();
            tier[k..].iter().chain(&tier[..k]).copied().collect()
        };
        match self.policy.balance {
            Balance::PrimaryBackup if !(backups && self.policy.all_backups) => tier.to_vec(),
            Balance::PrimaryBackup | Balance::RoundRobin => {
                let k = self.rr;
                self.rr = self.rr.wrapping_add(1);
                rotate(k)
            }
            Balance::Weighted => {
                // nginx: every peer gains its weight; the highest wins and pays the total.
                let total: i64 = tier
                    .iter()
                    .map(|&i| i64::from(peers[i].weight.max(1)))
                    .sum();
                let mut best = tier[0];
                let mut best_w = i64::MIN;
                for &i in tier {
                    if !self.current.contains_key(&peers[i].addr) {
                        self.current.insert(peers[i].addr.clone(), 0);
                    }
                    if let Some(w) = self.current.get_mut(&peers[i].addr) {
                        *w += i64::from(peers[i].weight.max(1));
                        if *w > best_w {
                            best_w = *w;
                            best = i;
                        }
                    }
                }
                if let Some(w) = self.current.get_mut(&peers[best].addr) {
                    *w -= total;
                }
                let mut out = vec![best];
                out.extend(tier.iter().copied().filter(|&i| i != best));
                out
            }
            Balance::LeastConn => {
                let k = self.rr;
                self.rr = self.rr.wrapping_add(1);
                let mut order = rotate(k);
                // conns / weight, compared without division; ties keep the rotation.
                order.sort_by(|&a, &b| {
                    let ca = u64::from(self.conns.get(&peers[a].addr).copied().unwrap_or(0));
                    let cb = u64::from(self.conns.get(&peers[b].addr).copied().unwrap_or(0));
                    (ca * u64::from(peers[b].weight.max(1)))
                        .cmp(&(cb * u64::from(peers[a].weight.max(1))))
                });
                order
            }
        }
    }

    /// A connection to `addr` is open (least-conn counts it until `closed`); traffic is on
    /// the backups when `addr` is one (a failed connect can carry it there, whatever the tier).
    pub fn connected(&mut self, addr: &str, backup: bool) {
        self.on_backups = backup;
        match self.conns.get_mut(addr) {
            Some(c) => *c += 1,
            None => {
                self.conns.insert(addr.to_owned(), 1);
            }
        }
        if let Some(s) = self.passive.get_mut(addr) {
            if s.fails > 0 || s.until.is_some() {
                *s = Passive::default();
            }
        }
    }

    /// Connections open to `addr` now.
    pub fn conns_to(&self, addr: &str) -> u32 {
        self.conns.get(addr).copied().unwrap_or(0)
    }

    pub fn closed(&mut self, addr: &str) {
        if let Some(c) = self.conns.get_mut(addr) {
            *c = c.saturating_sub(1);
        }
    }

    /// An attempt on `peer` failed at `now` (nginx: `max_fails` within `fail_timeout` make it
    /// unavailable for `fail_timeout`).
    pub fn failed(&mut self, peer: &PeerView, now: Instant) {
        if peer.max_fails == 0 {
            return;
        }
        let s = self.passive.entry(peer.addr.clone()).or_default();
        let fresh = s
            .first
            .is_none_or(|first| now.saturating_duration_since(first) >= peer.fail_timeout);
        if fresh {
            *s = Passive {
                first: Some(now),
                ..Passive::default()
            };
        }
        s.fails += 1;
        if s.fails >= peer.max_fails {
            s.blocked_at = Some(now);
            s.until = Some(now + peer.fail_timeout);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(addr: &str, backup: bool) -> PeerView {
        PeerView {
            addr: addr.into(),
            backup,
            routable: true,
            down: false,
            weight: 1,
            max_fails: 1,
            fail_timeout: Duration::from_secs(10),
            since: None,
            risen: None,
        }
    }

    fn first(b: &mut Balancer, peers: &[PeerView], now: Instant) -> String {
        b.order(peers, now).into_iter().next().unwrap_or_default()
    }

    #[test]
    fn primary_backup_tiers_and_fallbacks() {
        let now = Instant::now();
        let mut peers = vec![p("a", false), p("b", false), p("x", true), p("y", true)];
        let mut b = Balancer::new(Policy::default());
        assert_eq!(b.order(&peers, now), ["a", "b", "x", "y"]);
        peers[0].routable = false;
        assert_eq!(b.order(&peers, now), ["b", "x", "y", "a"]);
        peers[1].routable = false;
        assert_eq!(b.order(&peers, now), ["x", "y", "a", "b"]);
        assert!(b.on_backups());
        // A peer marked down is never tried, not even last.
        peers[2].down = true;
        assert_eq!(b.order(&peers, now), ["y", "a", "b"]);
        // all_backups spreads over the backups.
        peers[2].down = false;
        let mut b = Balancer::new(Policy {
            all_backups: true,
            ..Policy::default()
        });
        let firsts: Vec<String> = (0..4).map(|_| first(&mut b, &peers, now)).collect();
        assert_eq!(firsts, ["x", "y", "x", "y"]);
    }

    #[test]
    fn failback_policies() {
        let t0 = Instant::now();
        let mut peers = vec![p("a", false), p("x", true)];
        let delay = Duration::from_secs(30);
        // (policy, first choice right after the primary is back, 31 s later, after the backup fails)
        let rows = [
            (Failback::Preempt, "a", "a", "a"),
            (Failback::NoPreempt, "x", "x", "a"),
            (Failback::PreemptDelay(delay), "x", "a", "a"),
        ];
        for (failback, back, later, backup_failed) in rows {
            let mut b = Balancer::new(Policy {
                failback,
                ..Policy::default()
            });
            peers[0].routable = true;
            peers[1].routable = true;
            assert_eq!(first(&mut b, &peers, t0), "a", "{failback:?}");
            peers[0].routable = false;
            peers[0].since = Some(t0);
            assert_eq!(first(&mut b, &peers, t0), "x", "{failback:?}");
            let t1 = t0 + Duration::from_secs(5);
            peers[0].routable = true;
            peers[0].since = Some(t1);
            assert_eq!(first(&mut b, &peers, t1), back, "{failback:?} back");
            let t2 = t1 + Duration::from_secs(31);
            assert_eq!(first(&mut b, &peers, t2), later, "{failback:?} later");
            peers[1].routable = false;
            assert_eq!(
                first(&mut b, &peers, t2),
                backup_failed,
                "{failback:?} backup failed"
            );
        }
        // A primary back before its checks saw it down (a passive failure, then `rise` checks):
        // the delay counts from those checks.
        let mut b = Balancer::new(Policy {
            failback: Failback::PreemptDelay(delay),
            ..Policy::default()
        });
        peers[0].since = None;
        peers[1].routable = true;
        b.failed(&peers[0], t0);
        assert_eq!(first(&mut b, &peers, t0), "x");
        let t1 = t0 + Duration::from_secs(1);
        peers[0].risen = Some(t1);
        assert_eq!(first(&mut b, &peers, t1), "x", "within the delay");
        assert_eq!(first(&mut b, &peers, t1 + delay), "a", "after it");
    }

    #[test]
    fn smooth_weighted_round_robin_is_nginx_s() {
        let now = Instant::now();
        let mut peers = vec![p("a", false), p("b", false), p("c", false)];
        peers[0].weight = 5;
        let mut b = Balancer::new(Policy {
            balance: Balance::Weighted,
            ..Policy::default()
        });
        let seq: String = (0..7)
            .map(|_| first(&mut b, &peers, now))
            .collect::<Vec<_>>()
            .concat();
        // nginx's documented sequence for weights 5, 1, 1: a a b a c a a.
        assert_eq!(seq, "aabacaa");
        let mut counts = HashMap::new();
        for _ in 0..7000 {
            *counts.entry(first(&mut b, &peers, now)).or_insert(0) += 1;
        }
        assert_eq!(counts["a"], 5000);
        assert_eq!(counts["b"], 1000);
    }

    #[test]
    fn round_robin_and_least_conn() {
        let now = Instant::now();
        let peers = vec![p("a", false), p("b", false), p("c", false)];
        let mut b = Balancer::new(Policy {
            balance: Balance::RoundRobin,
            ..Policy::default()
        });
        let seq: Vec<String> = (0..4).map(|_| first(&mut b, &peers, now)).collect();
        assert_eq!(seq, ["a", "b", "c", "a"]);

        let mut b = Balancer::new(Policy {
            balance: Balance::LeastConn,
            ..Policy::default()
        });
        b.connected("a", false);
        b.connected("a", false);
        b.connected("b", false);
        assert_eq!(first(&mut b, &peers, now), "c");
        b.connected("c", false);
        assert_eq!(first(&mut b, &peers, now), "b", "b and c have one, a two");
        b.closed("a");
        b.closed("a");
        assert_eq!(first(&mut b, &peers, now), "a");
    }

    #[test]
    fn passive_failures_follow_nginx() {
        let t0 = Instant::now();
        let mut peers = vec![p("a", false), p("b", false)];
        peers[0].max_fails = 2;
        let mut b = Balancer::new(Policy::default());
        b.failed(&peers[0], t0);
        assert_eq!(first(&mut b, &peers, t0), "a", "one failure of two");
        b.failed(&peers[0], t0 + Duration::from_secs(1));
        assert_eq!(first(&mut b, &peers, t0), "b", "two within fail_timeout");
        assert_eq!(
            first(&mut b, &peers, t0 + Duration::from_secs(11)),
            "a",
            "back after fail_timeout"
        );
        // Failures further apart than fail_timeout do not add up.
        let mut b = Balancer::new(Policy::default());
        b.failed(&peers[0], t0);
        b.failed(&peers[0], t0 + Duration::from_secs(11));
        assert_eq!(first(&mut b, &peers, t0 + Duration::from_secs(11)), "a");
        // A health check that turns it up again lifts it.
        let mut b = Balancer::new(Policy::default());
        peers[0].max_fails = 1;
        b.failed(&peers[0], t0);
        assert_eq!(first(&mut b, &peers, t0), "b");
        peers[0].since = Some(t0 + Duration::from_secs(2));
        assert_eq!(first(&mut b, &peers, t0 + Duration::from_secs(2)), "a");
        // So do `rise` checks in a row after the failure, though it never turned DOWN (it was
        // back before a check saw it gone); a run of successes from before does not.
        peers[0].since = None;
        let mut b = Balancer::new(Policy::default());
        peers[0].risen = Some(t0);
        b.failed(&peers[0], t0 + Duration::from_secs(1));
        assert_eq!(first(&mut b, &peers, t0 + Duration::from_secs(2)), "b");
        peers[0].risen = Some(t0 + Duration::from_secs(2));
        assert_eq!(first(&mut b, &peers, t0 + Duration::from_secs(2)), "a");
        // max_fails = 0 disables it.
        peers[0].max_fails = 0;
        let mut b = Balancer::new(Policy::default());
        for _ in 0..5 {
            b.failed(&peers[0], t0);
        }
        assert_eq!(first(&mut b, &peers, t0), "a");
    }
}
