//! What the cluster knows: nodes, where each resource is, its failures and admin overrides.
//! State changes only through [`crate::apply`]; the scheduler reads it and never writes it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use crate::config::{Config, INFINITY_COUNT, Meta, OpName, TargetRole};
use crate::score::Score;
use crate::time::{Time, millis};

/// The whole cluster's state, keyed by names so it survives configuration changes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    pub nodes: BTreeMap<String, NodeState>,
    pub resources: BTreeMap<String, ResourceState>,
    /// False when the cluster has lost quorum (only in multi-node clusters).
    pub no_quorum: bool,
    /// Tickets by name; a ticket not here was never granted.
    pub tickets: BTreeMap<String, TicketState>,
    /// Node attributes set at run time (`warden node attribute`, Pacemaker's transient
    /// attributes), by node: they override the file's.
    pub node_attributes: BTreeMap<String, BTreeMap<String, String>>,
    /// The node rules see as `#is_dc` (an imported CIB's DC).
    pub dc: Option<String>,
}

/// A ticket (Pacemaker's `crm_ticket`): what the resources that need it may do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TicketState {
    pub granted: bool,
    /// Granted but on standby: the resources that need it stop (or demote) as if revoked,
    /// without their loss policy.
    pub standby: bool,
}

/// What is known of one node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeState {
    pub online: bool,
    /// Must be fenced before anything it ran can be recovered elsewhere.
    pub unclean: Option<String>,
    /// Put in standby by an operator.
    pub standby: bool,
    /// Its daemon is shutting down: every resource leaves it, in the engine's order, and it
    /// runs nothing until it joins again.
    pub shutdown: bool,
    /// A member still joining (Pacemaker's pending node): nothing is placed or probed there
    /// yet, and a resource running nowhere does not start while it is unknown there (it might
    /// run there).
    pub pending: bool,
    /// Unfenced since it last joined (Pacemaker's `#node-unfenced`); lost when it leaves.
    pub unfenced: bool,
}

/// Admin overrides and per-node status of one resource.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourceState {
    /// `resource enable` / `disable`; overrides the configured target role.
    pub target_role: Option<TargetRole>,
    /// `resource move`: a +INFINITY preference for this node.
    pub moved_to: Option<String>,
    /// `resource ban`: -INFINITY on these nodes.
    pub banned: BTreeSet<String>,
    pub nodes: BTreeMap<String, ResourceOnNode>,
    /// Promotion scores set by the agent (`warden promotion-score`), per node.
    pub promotion_scores: BTreeMap<String, Score>,
    /// Locked to the node it ran on when that node shut down (`shutdown_lock`).
    pub lock: Option<ShutdownLock>,
}

/// A resource kept to a node that shut down cleanly, from a time (`shutdown_lock`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShutdownLock {
    pub node: String,
    pub since: Time,
}

impl ShutdownLock {
    /// Whether it still holds at `now` under `limit` (None: no limit).
    pub fn holds(&self, limit: Option<Duration>, now: Time) -> bool {
        limit.is_none_or(|l| now < self.since + l)
    }
}

/// The role of a resource on a node, as last observed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Role {
    /// Not probed yet: the scheduler probes before trusting anything.
    #[default]
    Unknown,
    Stopped,
    /// Running (for a promotable resource: running unpromoted).
    Started,
    /// Running promoted (promotable resources only).
    Promoted,
}

impl Role {
    /// Running, promoted or not.
    pub fn is_active(self) -> bool {
        matches!(self, Role::Started | Role::Promoted)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Unknown => "Unknown",
            Role::Stopped => "Stopped",
            Role::Started => "Started",
            Role::Promoted => "Promoted",
        })
    }
}

/// Identifies an operation: name and interval (a monitor with interval 0 is a probe).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpKey {
    pub name: OpName,
    pub interval_ms: u64,
}

impl OpKey {
    pub fn new(name: OpName, interval: Duration) -> OpKey {
        OpKey {
            name,
            interval_ms: millis(interval),
        }
    }

    pub fn probe() -> OpKey {
        OpKey {
            name: OpName::Monitor,
            interval_ms: 0,
        }
    }

    pub fn is_probe(self) -> bool {
        self.name == OpName::Monitor && self.interval_ms == 0
    }

    pub fn is_recurring_monitor(self) -> bool {
        self.name == OpName::Monitor && self.interval_ms != 0
    }

    pub fn interval(self) -> Duration {
        Duration::from_millis(self.interval_ms)
    }
}

impl fmt::Display for OpKey {
    /// Pacemaker's operation key form: `monitor_10000`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}", self.name, self.interval_ms)
    }
}

/// One recorded operation result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpRecord {
    pub rc: i32,
    pub time: Time,
    pub exit_reason: String,
}

/// A resource's status on one node: its role and every failure that still counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourceOnNode {
    pub role: Role,
    /// Active but failed: must be stopped (or recovered) before anything else.
    pub failed: bool,
    /// The last monitor said "degraded" (rc 190).
    pub degraded: bool,
    /// FAILED (blocked): no operation until cleanup.
    pub blocked: bool,
    /// A fatal error happened here: stopped on every node until cleanup.
    pub fatal: bool,
    /// A failure of the promoted copy with `on_fail = "demote"`: demote (and promote again per
    /// scores) rather than stop.
    pub demote_on_fail: bool,
    /// The demote failed: the copy is stopped without another demote.
    pub demote_failed: bool,
    /// A hard error banned the resource from this node.
    pub hard_ban: bool,
    /// The executor found no agent here ([`crate::rc::ExecStatus::NotInstalled`]): banned
    /// from this node, and the failures here do not expire, until cleanup.
    pub not_installed: bool,
    /// `on_fail = "stop"`: not to be started anywhere.
    pub stop_on_fail: bool,
    /// `on_fail = "standby"`: the node runs nothing while this failure counts.
    pub standby_on_fail: bool,
    /// `on_fail = "ignore"`: a failure was recorded and ignored.
    pub failure_ignored: bool,
    /// Fail counts per operation.
    pub fail_counts: BTreeMap<OpKey, u32>,
    /// When the most recent counted failure happened (failure_timeout counts from here).
    pub last_failure: Option<Time>,
    /// The most recent failure of each operation, for operators.
    pub failed_ops: BTreeMap<OpKey, OpRecord>,
    /// An operator asked for a restart (`resource restart`): stopped, with what depends on
    /// it, and started again. Cleared once it stops.
    pub restart: bool,
    /// When the last start here finished (successfully or not).
    pub last_start: Option<Time>,
    /// Failures in a row that came within `crash_loop_window` of a start (or were starts).
    pub quick_failures: u32,
    /// A crash loop: no start here before this time.
    pub start_not_before: Option<Time>,
    /// The definition digest the running copy was started with ([`crate::ResourceSpec::digest`];
    /// None when unknown, which never restarts anything).
    pub digest: Option<u64>,
    /// Its restart digest ([`crate::ResourceSpec::restart_digest`]): when only the full digest
    /// differs, a reload is enough.
    pub restart_digest: Option<u64>,
    /// Its agent's digest ([`crate::ResourceSpec::agent_digest`]): another agent now is a
    /// restart, never a reload.
    pub agent_digest: Option<u64>,
    /// The copy's instance number where one is known (an imported CIB's `rsc:N`): among
    /// copies alike, the lower one is kept promoted, as Pacemaker orders its instances.
    pub instance: Option<u32>,
}

impl ResourceOnNode {
    /// Whether `failure_timeout` has expired the failures recorded here at `now`.
    /// Blocked, fatal and not-installed states never expire: they need a cleanup.
    pub fn failures_expired(&self, meta: &Meta, now: Time) -> bool {
        if self.blocked || self.fatal || self.not_installed {
            return false;
        }
        match (meta.failure_timeout, self.last_failure) {
            (Some(t), Some(last)) => !t.is_zero() && now >= last + t,
            _ => false,
        }
    }

    /// When the failures here expire, if they will.
    pub fn expiry(&self, meta: &Meta) -> Option<Time> {
        match (meta.failure_timeout, self.last_failure) {
            (Some(t), Some(last))
                if !t.is_zero()
                    && !self.blocked
                    && !self.fatal
                    && !self.not_installed
                    && self.has_expirable_failures() =>
            {
                Some(last + t)
            }
            _ => None,
        }
    }

    fn has_expirable_failures(&self) -> bool {
        !self.fail_counts.is_empty()
            || self.hard_ban
            || self.stop_on_fail
            || self.standby_on_fail
            || self.failure_ignored
            || !self.failed_ops.is_empty()
    }

    /// Forgets expired failures (counts, bans and their records), as of `now`.
    pub fn expire(&mut self, meta: &Meta, now: Time) {
        if self.failures_expired(meta, now) {
            self.clear_failures();
        }
    }

    /// Forgets counted failures, their bans and records; leaves role, blocked and fatal alone.
    pub fn clear_failures(&mut self) {
        self.hard_ban = false;
        self.not_installed = false;
        self.stop_on_fail = false;
        self.standby_on_fail = false;
        self.failure_ignored = false;
        self.fail_counts.clear();
        self.failed_ops.clear();
        self.last_failure = None;
    }

    /// Sum of fail counts on this node (capped at INFINITY), as of `now`.
    pub fn fail_count(&self, meta: &Meta, now: Time) -> u32 {
        if self.failures_expired(meta, now) {
            return 0;
        }
        let sum: u64 = self.fail_counts.values().map(|&c| u64::from(c)).sum();
        u32::try_from(sum.min(u64::from(INFINITY_COUNT))).unwrap_or(INFINITY_COUNT)
    }

    /// A view with expired failures dropped, as of `now`.
    pub fn effective(&self, meta: &Meta, now: Time) -> Effective {
        let live = !self.failures_expired(meta, now);
        let count = self.fail_count(meta, now);
        Effective {
            role: self.role,
            failed: self.failed,
            blocked: self.blocked,
            fatal: self.fatal,
            demote_on_fail: self.demote_on_fail,
            demote_failed: self.demote_failed,
            hard_ban: live && self.hard_ban,
            stop_on_fail: live && self.stop_on_fail,
            standby_on_fail: live && self.standby_on_fail,
            failure_ignored: live && self.failure_ignored,
            threshold_reached: meta.threshold().is_some_and(|t| count >= t),
            fail_count: count,
            restart: self.restart && self.role.is_active(),
            start_not_before: self.start_not_before.filter(|&t| t > now),
            digest: self.digest.filter(|_| self.role.is_active()),
            restart_digest: self.restart_digest.filter(|_| self.role.is_active()),
            agent_digest: self.agent_digest.filter(|_| self.role.is_active()),
        }
    }
}

/// [`ResourceOnNode`] as the scheduler sees it at one instant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Effective {
    pub role: Role,
    pub failed: bool,
    pub blocked: bool,
    pub fatal: bool,
    pub demote_on_fail: bool,
    pub demote_failed: bool,
    pub hard_ban: bool,
    pub stop_on_fail: bool,
    pub standby_on_fail: bool,
    pub failure_ignored: bool,
    pub threshold_reached: bool,
    pub fail_count: u32,
    /// An operator asked for a restart of this active copy.
    pub restart: bool,
    /// A crash loop delays its next start here until then (only when still to come).
    pub start_not_before: Option<Time>,
    /// The definition digest an active copy was started with.
    pub digest: Option<u64>,
    pub restart_digest: Option<u64>,
    pub agent_digest: Option<u64>,
}

/// True as Pacemaker reads a boolean (`crm_is_true`): `true`, `on`, `yes`, `y`, `1`, in any
/// case.
pub fn truthy(v: &str) -> bool {
    matches!(
        v.to_ascii_lowercase().as_str(),
        "true" | "on" | "yes" | "y" | "1"
    )
}

/// The reason a node is fenced for a failure of `resource` there (`on_fail = "fence"`, or a
/// stop that failed with fencing).
pub fn fenced_for_failure_of(resource: &str) -> String {
    format!("{resource} failed there")
}

impl State {
    /// The shutdown lock that holds resource `id` to a node at `now`, if any
    /// (`shutdown_lock`): not once expired, nor while it is active anywhere but on its node
    /// shutting down (the lock has nothing left to keep then, as Pacemaker cancels it).
    pub fn shutdown_lock(
        &self,
        cluster: &crate::config::ClusterOptions,
        id: &str,
        now: Time,
    ) -> Option<&ShutdownLock> {
        let rs = self.resource(id)?;
        let lock = rs.lock.as_ref()?;
        let shutting_down = self.node(&lock.node).is_some_and(|n| n.shutdown);
        let elsewhere = rs
            .nodes
            .iter()
            .any(|(n, on)| on.role.is_active() && (*n != lock.node || !shutting_down));
        (cluster.shutdown_lock && !elsewhere && lock.holds(cluster.shutdown_lock_limit, now))
            .then_some(lock)
    }

    /// With fencing, node `node` is unclean for something other than a failure of `resource`
    /// there: that resource's failures there are left to the fence (Pacemaker skips their
    /// handling on an unclean node).
    pub fn unclean_for_another(&self, config: &Config, resource: &str, node: &str) -> bool {
        config.fencing_enabled()
            && self
                .node(node)
                .and_then(|s| s.unclean.as_deref())
                .is_some_and(|why| why != fenced_for_failure_of(resource))
    }

    /// Node `node` is in maintenance: its `maintenance` attribute (set at run time, else
    /// configured) is [`truthy`].
    /// Nothing is placed or probed there, and what runs there is left as it is.
    pub fn node_in_maintenance(&self, config: &Config, node: &str) -> bool {
        self.node_attributes
            .get(node)
            .and_then(|a| a.get("maintenance"))
            .map(String::as_str)
            .or_else(|| {
                config.node_index(node).and_then(|i| {
                    config
                        .node_attributes(i)
                        .iter()
                        .find(|(k, _)| k == "maintenance")
                        .map(|(_, v)| v.as_str())
                })
            })
            .is_some_and(truthy)
    }

    /// A state in which the given nodes are online and nothing has been probed.
    pub fn with_online_nodes<'a>(nodes: impl IntoIterator<Item = &'a str>) -> State {
        let mut s = State::default();
        for n in nodes {
            s.nodes.insert(
                n.to_owned(),
                NodeState {
                    online: true,
                    ..NodeState::default()
                },
            );
        }
        s
    }

    pub fn node(&self, name: &str) -> Option<&NodeState> {
        self.nodes.get(name)
    }

    /// Whether `ticket` is granted and not on standby.
    pub fn ticket_ok(&self, ticket: &str) -> bool {
        self.tickets
            .get(ticket)
            .is_some_and(|t| t.granted && !t.standby)
    }

    pub fn resource(&self, id: &str) -> Option<&ResourceState> {
        self.resources.get(id)
    }

    /// The status of `resource` on `node` (the default, Unknown, when never recorded).
    pub fn on_node(&self, resource: &str, node: &str) -> ResourceOnNode {
        self.resources
            .get(resource)
            .and_then(|r| r.nodes.get(node))
            .cloned()
            .unwrap_or_default()
    }

    pub(crate) fn on_node_mut(&mut self, resource: &str, node: &str) -> &mut ResourceOnNode {
        self.resources
            .entry(resource.to_owned())
            .or_default()
            .nodes
            .entry(node.to_owned())
            .or_default()
    }

    /// The latest time at which something recorded in this state happened (failures, starts;
    /// not deadlines such as a crash loop's, which may rightly lie ahead).
    pub fn latest_time(&self) -> Option<Time> {
        self.resources
            .values()
            .flat_map(|r| r.nodes.values())
            .flat_map(|n| {
                [n.last_failure, n.last_start]
                    .into_iter()
                    .flatten()
                    .chain(n.failed_ops.values().map(|o| o.time))
            })
            .max()
    }

    /// Moves every time recorded here `d` earlier. After the clock was stepped back, what was
    /// recorded keeps its age (a failure a minute older than the last record is a minute old)
    /// instead of lying in the future, where it would not expire until the clock caught up.
    pub fn move_times_back(&mut self, d: Duration) {
        for n in self
            .resources
            .values_mut()
            .flat_map(|r| r.nodes.values_mut())
        {
            for t in [
                &mut n.last_failure,
                &mut n.last_start,
                &mut n.start_not_before,
            ]
            .into_iter()
            .flatten()
            {
                *t = t.earlier_by(d);
            }
            for o in n.failed_ops.values_mut() {
                o.time = o.time.earlier_by(d);
            }
        }
    }

    /// Drops failures that have expired by `now`, so a saved state does not carry them.
    pub fn expire_failures(&mut self, config: &Config, now: Time) {
        for (id, rs) in &mut self.resources {
            if let Some(spec) = config.resource(id) {
                for on in rs.nodes.values_mut() {
                    on.expire(&spec.meta, now);
                }
            }
        }
    }

    /// Nodes where the resource is recorded as running (promoted or not).
    pub fn active_nodes<'a>(&'a self, resource: &str) -> impl Iterator<Item = &'a str> + 'a {
        self.resources
            .get(resource)
            .into_iter()
            .flat_map(|r| r.nodes.iter())
            .filter(|(_, on)| on.role.is_active())
            .map(|(n, _)| n.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_move_back_together_and_keep_their_ages() {
        let mut s = State::default();
        let t = Time::from_millis(10_000_000);
        let on = s.on_node_mut("web", "n1");
        on.last_failure = Some(t);
        on.last_start = Some(t + Duration::from_secs(1));
        on.start_not_before = Some(t + Duration::from_secs(30));
        on.failed_ops.insert(
            OpKey::new(OpName::Monitor, Duration::from_secs(10)),
            OpRecord {
                rc: 7,
                time: t,
                exit_reason: String::new(),
            },
        );
        // A deadline ahead is not a sign of a clock set back.
        assert_eq!(s.latest_time(), Some(t + Duration::from_secs(1)));
        s.move_times_back(Duration::from_secs(3600));
        let on = s.on_node("web", "n1");
        let back = t.earlier_by(Duration::from_secs(3600));
        assert_eq!(on.last_failure, Some(back));
        assert_eq!(on.last_start, Some(back + Duration::from_secs(1)));
        assert_eq!(on.start_not_before, Some(back + Duration::from_secs(30)));
        assert_eq!(on.failed_ops.values().next().map(|o| o.time), Some(back));
        // Never before the epoch.
        s.move_times_back(Duration::from_secs(1 << 40));
        assert_eq!(s.latest_time(), Some(Time::ZERO));
    }
}
