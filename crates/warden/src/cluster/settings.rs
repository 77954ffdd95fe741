//! `[cluster.etcd]`: how a node reaches etcd, and the timing budget that keeps two nodes from
//! running the same resource at once (docs/cluster.md).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use warden_engine::{Agent, Config, OpName, ResourceSpec, config::DEFAULT_OP_TIMEOUT};

/// The default lease TTL.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(2);

/// How a node reaches etcd (`[cluster.etcd]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EtcdSettings {
    /// `http://host:port` or `https://host:port`.
    pub endpoints: Vec<String>,
    /// The TTL of each node's lease: a node cut off from etcd has stopped its resources
    /// before this has passed since its last acknowledged keepalive was sent; the others
    /// take over once etcd expires the lease.
    pub lease_ttl: Duration,
    /// Every key Warden writes starts with this (default `/warden/<cluster name>`).
    pub prefix: String,
    pub tls: Option<TlsFiles>,
    pub auth: Option<(String, String)>,
}

/// TLS to etcd: the CA that signed the servers' certificates, and optionally a client
/// certificate and key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca: Option<PathBuf>,
    pub cert_key: Option<(PathBuf, PathBuf)>,
}

/// The timing a node keeps with etcd, all derived from the lease TTL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    pub ttl: Duration,
    /// How often the lease is renewed.
    pub renew: Duration,
    /// The deadline of one etcd request.
    pub request: Duration,
    /// Slack for scheduling delays and the clocks' rate difference.
    pub margin: Duration,
}

impl Timing {
    pub fn of(ttl: Duration) -> Timing {
        Timing {
            ttl,
            renew: ttl / 4,
            request: ttl / 8,
            margin: (ttl / 20).max(Duration::from_millis(50)),
        }
    }

    /// How long a node may take to stop everything once it knows it cannot renew: it learns
    /// at the latest a renew interval and two request timeouts after its last acknowledged
    /// keepalive was sent, and must be done before that send time plus the TTL.
    pub fn stop_budget(&self) -> Duration {
        self.ttl
            .saturating_sub(self.renew + 2 * self.request + self.margin)
    }
}

impl EtcdSettings {
    pub fn timing(&self) -> Timing {
        Timing::of(self.lease_ttl)
    }
}

/// The time a resource may take to leave a node: a promoted copy demotes first, then stops.
pub fn stop_time(spec: &ResourceSpec) -> Duration {
    let op = |name| {
        spec.op(name, Duration::ZERO)
            .map_or(DEFAULT_OP_TIMEOUT, |o| o.timeout)
    };
    let stop = match &spec.agent {
        // A process gets `stop_signal`, then SIGKILL after `stop_timeout`.
        Agent::Process(p) => p.stop_timeout + Duration::from_millis(100),
        // A fence device's stop does nothing.
        Agent::Fence(_) => Duration::from_millis(100),
        _ => op(OpName::Stop),
    };
    if spec.is_promotable() {
        stop + op(OpName::Demote)
    } else {
        stop
    }
}

/// The longest time stopping everything on a node can take: stops follow the order
/// constraints in reverse, so the longest chain of stop times counts. Returns that time and
/// the chain (first stopped first).
pub fn longest_stop(config: &Config) -> (Duration, Vec<String>) {
    // then -> first: `then` stops before `first`.
    let mut after: HashMap<&str, Vec<&str>> = HashMap::new();
    for o in config.orders() {
        after
            .entry(o.then.as_str())
            .or_default()
            .push(o.first.as_str());
    }
    let mut memo: HashMap<String, (Duration, Vec<String>)> = HashMap::new();
    fn walk(
        config: &Config,
        after: &HashMap<&str, Vec<&str>>,
        memo: &mut HashMap<String, (Duration, Vec<String>)>,
        id: &str,
        depth: usize,
    ) -> (Duration, Vec<String>) {
        if let Some(v) = memo.get(id) {
            return v.clone();
        }
        let own = config.resource(id).map_or(Duration::ZERO, stop_time);
        let mut best = (Duration::ZERO, Vec::new());
        // Orders form no cycle (the engine refuses them); the depth bound is a guard.
        if depth < 10_000 {
            for next in after.get(id).into_iter().flatten() {
                let c = walk(config, after, memo, next, depth + 1);
                if c.0 > best.0 {
                    best = c;
                }
            }
        }
        let mut chain = vec![id.to_owned()];
        chain.extend(best.1);
        let v = (own + best.0, chain);
        memo.insert(id.to_owned(), v.clone());
        v
    }
    let mut best = (Duration::ZERO, Vec::new());
    for r in config.resources() {
        let c = walk(config, &after, &mut memo, &r.id, 0);
        if c.0 > best.0 {
            best = c;
        }
    }
    best
}

/// Checks that a node losing etcd can stop everything in time; the error gives the numbers.
pub fn check_budget(timing: &Timing, config: &Config) -> Result<(), String> {
    let (stop, chain) = longest_stop(config);
    let budget = timing.stop_budget();
    if stop <= budget {
        return Ok(());
    }
    let d = |d: Duration| crate::duration::format(d);
    Err(format!(
        "lease_ttl {} cannot keep two nodes from running a resource at once: a node cut off from etcd needs renew interval {} + 2 x request timeout {} + stop time {} + margin {} = {} to notice and stop everything, more than the TTL; the stop time is the chain {} (stop timeouts, demote first when promotable). Shorten those stop timeouts (ops with name = \"stop\", or stop_timeout of a process) or raise lease_ttl to at least {}",
        d(timing.ttl),
        d(timing.renew),
        d(timing.request),
        d(stop),
        d(timing.margin),
        d(timing.renew + 2 * timing.request + stop + timing.margin),
        chain.join(" -> "),
        d(min_ttl_for(stop)),
    ))
}

/// The smallest whole-second TTL whose stop budget covers `stop`.
fn min_ttl_for(stop: Duration) -> Duration {
    let mut secs = 1;
    while Timing::of(Duration::from_secs(secs)).stop_budget() < stop && secs < 1 << 40 {
        secs += 1;
    }
    Duration::from_secs(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timing_of_one_second_leaves_a_stop_budget() {
        let t = Timing::of(Duration::from_secs(1));
        assert_eq!(t.renew, Duration::from_millis(250));
        assert_eq!(t.request, Duration::from_millis(125));
        assert_eq!(t.margin, Duration::from_millis(50));
        assert_eq!(t.stop_budget(), Duration::from_millis(450));
        assert_eq!(
            min_ttl_for(Duration::from_millis(450)),
            Duration::from_secs(1)
        );
        assert_eq!(
            min_ttl_for(Duration::from_millis(451)),
            Duration::from_secs(2)
        );
        assert_eq!(
            min_ttl_for(Duration::from_secs(20)),
            Duration::from_secs(45)
        );
    }
}
