//! The scheduler: from configuration, state and `now`, the transition that brings the cluster
//! where it should be (ordered actions, the summary operators read, and the next wake-up).

use std::fmt;

use crate::config::{
    ColocRef, Config, LossPolicy, MultipleActive, NoQuorumPolicy, OpName, OpRole, OrderKind,
    PlacementStrategy, Requires, ResourceSpec, RuleScore, TargetRole,
};
use crate::score::Score;
use crate::state::{Effective, OpKey, ResourceState, Role, State};
use crate::time::Time;

/// Index of an action within its transition.
pub type ActionId = usize;

/// One thing to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActionKind {
    /// A one-shot monitor telling whether the resource runs on the node.
    Probe {
        resource: String,
        node: String,
    },
    Start {
        resource: String,
        node: String,
    },
    Stop {
        resource: String,
        node: String,
    },
    /// Promote the copy of a promotable resource on the node.
    Promote {
        resource: String,
        node: String,
    },
    /// Demote the promoted copy on the node.
    Demote {
        resource: String,
        node: String,
    },
    /// Apply a changed definition to the running copy without a restart (OCF
    /// `reload-agent`): only reloadable parameters changed.
    Reload {
        resource: String,
        node: String,
    },
    /// Live migration, first step, on the node it runs on: send it to `target`.
    MigrateTo {
        resource: String,
        node: String,
        target: String,
    },
    /// Live migration, second step, on the node it goes to: take it from `source`.
    MigrateFrom {
        resource: String,
        node: String,
        source: String,
    },
    /// Tell the copy on the node what is about to happen or just happened to the resource.
    Notify {
        resource: String,
        node: String,
        notification: Box<Notification>,
    },
    /// Fence (reboot) a node; what it ran counts as stopped once this succeeds.
    Fence {
        node: String,
        reason: String,
    },
    /// Unfence a node (the `on` of every device that unfences it) before what requires
    /// unfencing is probed or started there.
    Unfence {
        node: String,
        reason: String,
    },
}

/// Before or after the operation it tells of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotifyKind {
    Pre,
    Post,
}

impl NotifyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyKind::Pre => "pre",
            NotifyKind::Post => "post",
        }
    }
}

/// What a notification tells a copy (the OCF `notify` environment): the operation, and the
/// nodes of every start, stop, promote and demote of this transition, with the nodes where the
/// resource was active, promoted and unpromoted when it began.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub kind: NotifyKind,
    pub operation: OpName,
    pub start: Vec<String>,
    pub stop: Vec<String>,
    pub promote: Vec<String>,
    pub demote: Vec<String>,
    pub active: Vec<String>,
    pub promoted: Vec<String>,
    pub unpromoted: Vec<String>,
    pub inactive: Vec<String>,
}

impl ActionKind {
    /// The operation this action runs, for resource actions.
    pub fn op(&self) -> Option<OpKey> {
        let name = match self {
            ActionKind::Probe { .. } => return Some(OpKey::probe()),
            ActionKind::Start { .. } => OpName::Start,
            ActionKind::Stop { .. } => OpName::Stop,
            ActionKind::Promote { .. } => OpName::Promote,
            ActionKind::Demote { .. } => OpName::Demote,
            ActionKind::Notify { .. } => OpName::Notify,
            ActionKind::Reload { .. } => OpName::Reload,
            ActionKind::MigrateTo { .. } => OpName::MigrateTo,
            ActionKind::MigrateFrom { .. } => OpName::MigrateFrom,
            ActionKind::Fence { .. } | ActionKind::Unfence { .. } => return None,
        };
        Some(OpKey {
            name,
            interval_ms: 0,
        })
    }

    pub fn resource(&self) -> Option<&str> {
        match self {
            ActionKind::Probe { resource, .. }
            | ActionKind::Start { resource, .. }
            | ActionKind::Stop { resource, .. }
            | ActionKind::Promote { resource, .. }
            | ActionKind::Demote { resource, .. }
            | ActionKind::Reload { resource, .. }
            | ActionKind::MigrateTo { resource, .. }
            | ActionKind::MigrateFrom { resource, .. }
            | ActionKind::Notify { resource, .. } => Some(resource),
            ActionKind::Fence { .. } | ActionKind::Unfence { .. } => None,
        }
    }

    pub fn node(&self) -> &str {
        match self {
            ActionKind::Probe { node, .. }
            | ActionKind::Start { node, .. }
            | ActionKind::Stop { node, .. }
            | ActionKind::Promote { node, .. }
            | ActionKind::Demote { node, .. }
            | ActionKind::Reload { node, .. }
            | ActionKind::MigrateTo { node, .. }
            | ActionKind::MigrateFrom { node, .. }
            | ActionKind::Notify { node, .. }
            | ActionKind::Fence { node, .. }
            | ActionKind::Unfence { node, .. } => node,
        }
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ActionKind::Probe { resource, node } => write!(f, "{resource}_monitor_0 on {node}"),
            ActionKind::Start { resource, node } => write!(f, "{resource}_start_0 on {node}"),
            ActionKind::Stop { resource, node } => write!(f, "{resource}_stop_0 on {node}"),
            ActionKind::Promote { resource, node } => write!(f, "{resource}_promote_0 on {node}"),
            ActionKind::Demote { resource, node } => write!(f, "{resource}_demote_0 on {node}"),
            ActionKind::Reload { resource, node } => write!(f, "{resource}_reload_0 on {node}"),
            ActionKind::MigrateTo {
                resource,
                node,
                target,
            } => write!(f, "{resource}_migrate_to_0 on {node} (to {target})"),
            ActionKind::MigrateFrom {
                resource,
                node,
                source,
            } => write!(f, "{resource}_migrate_from_0 on {node} (from {source})"),
            ActionKind::Notify {
                resource,
                node,
                notification: n,
            } => write!(
                f,
                "{resource}_{}_notify_{}_0 on {node}",
                n.kind.as_str(),
                n.operation
            ),
            ActionKind::Fence { node, .. } => write!(f, "fence (reboot) {node}"),
            ActionKind::Unfence { node, .. } => write!(f, "fence (on) {node}"),
        }
    }
}

/// An action and the actions that must complete successfully before it may begin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Action {
    pub id: ActionId,
    pub kind: ActionKind,
    /// Always ids of earlier actions, so every transition is acyclic and terminates.
    pub deps: Vec<ActionId>,
}

/// Why a resource is stopped, when the summary says so.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// It should run, but no node may run it (bans, standby, failures, node loss).
    NodeAvailability,
    /// The cluster lost quorum.
    NoQuorum,
    /// An order constraint: "unrunnable X start".
    Order(String),
    /// A crash loop delays its next start (see `crash_loop_delay_max`).
    CrashLoop,
}

/// One line of the transition summary, in the vocabulary Pacemaker operators read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Start {
        resource: String,
        node: String,
    },
    Stop {
        resource: String,
        node: String,
        reason: Option<StopReason>,
        /// A copy of a promotable resource: the role it stops in (`Promoted`, `Unpromoted`).
        role: Option<&'static str>,
        /// The stop cannot happen: what must stop before it cannot (crm_simulate's
        /// `(blocked)`); it keeps running.
        blocked: bool,
    },
    /// A failed resource restarted in place (`from == to`) or elsewhere.
    Recover {
        resource: String,
        from: String,
        to: String,
        /// A copy of a promotable resource: its role before and after.
        roles: Option<(&'static str, &'static str)>,
    },
    Move {
        resource: String,
        from: String,
        to: String,
        /// A copy of a promotable resource: its role before and after.
        roles: Option<(&'static str, &'static str)>,
        /// Why a resource that could migrate moves by stop and start instead (`unrunnable A
        /// stop`: it runs after A, which moves by stop and start, as crm_simulate words it).
        reason: Option<String>,
    },
    Restart {
        resource: String,
        node: String,
        /// Why (None: no reason is given, as `crm_simulate` gives none where the start
        /// itself has none: a restart for being active on several nodes).
        reason: Option<String>,
        /// A copy of a promotable resource: its role.
        role: Option<&'static str>,
    },
    Fence {
        node: String,
        reason: String,
        /// What the device asked first is to do: `reboot` or `off`.
        action: String,
    },
    /// A copy promoted: from unpromoted (`from` Started) or from stopped (started first).
    /// With `blocked`, the promotion cannot happen, and why (crm_simulate's `(blocked)`
    /// promote lines): the copy still starts or keeps running unpromoted.
    Promote {
        resource: String,
        node: String,
        from: Role,
        blocked: Option<String>,
    },
    Demote {
        resource: String,
        node: String,
    },
    /// The promoted copy demoted and promoted again in place (`on_fail = "demote"`).
    Repromote {
        resource: String,
        node: String,
    },
    /// A changed definition applied without a restart (`reload-agent`).
    Reload {
        resource: String,
        node: String,
    },
    /// A start that cannot happen, and why (crm_simulate's `(blocked)` lines): where the
    /// resource would start.
    BlockedStart {
        resource: String,
        node: String,
        reason: String,
    },
    /// Moved by live migration (`allow_migrate`).
    Migrate {
        resource: String,
        from: String,
        to: String,
    },
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Start { resource, node } => write!(f, "Start {resource} ( {node} )"),
            Change::Stop {
                resource,
                node,
                reason,
                role,
                blocked,
            } => {
                match role {
                    Some(role) => write!(f, "Stop {resource} ( {role} {node} )")?,
                    None => write!(f, "Stop {resource} ( {node} )")?,
                }
                match reason {
                    Some(StopReason::NodeAvailability) => {
                        f.write_str(" due to node availability")?
                    }
                    Some(StopReason::NoQuorum) => f.write_str(" due to no quorum")?,
                    Some(StopReason::Order(why)) => write!(f, " due to {why}")?,
                    Some(StopReason::CrashLoop) => f.write_str(" due to crash loop")?,
                    None => {}
                }
                // As crm_simulate: `(blocked)` after a reason, a bare `blocked` without one.
                match (*blocked, reason) {
                    (true, Some(_)) => f.write_str(" (blocked)")?,
                    (true, None) => f.write_str(" blocked")?,
                    (false, _) => {}
                }
                Ok(())
            }
            // As crm_simulate details a copy of a promotable resource: with its roles.
            Change::Recover {
                resource,
                from,
                to,
                roles,
            } => match roles {
                None if from == to => write!(f, "Recover {resource} ( {from} )"),
                None => write!(f, "Recover {resource} ( {from} -> {to} )"),
                Some((a, b)) if from == to && a == b => {
                    write!(f, "Recover {resource} ( {a} {from} )")
                }
                Some((a, b)) if from == to => write!(f, "Recover {resource} ( {a} -> {b} {from} )"),
                Some((a, b)) if a == b => write!(f, "Recover {resource} ( {from} -> {to} {a} )"),
                Some((a, b)) => write!(f, "Recover {resource} ( {a} {from} -> {b} {to} )"),
            },
            Change::Move {
                resource,
                from,
                to,
                roles,
                reason,
            } => {
                match roles {
                    None => write!(f, "Move {resource} ( {from} -> {to} )")?,
                    Some((a, b)) if a == b => {
                        write!(f, "Move {resource} ( {from} -> {to} {a} )")?;
                    }
                    Some((a, b)) => write!(f, "Move {resource} ( {a} {from} -> {b} {to} )")?,
                }
                match reason {
                    Some(why) => write!(f, " due to {why}"),
                    None => Ok(()),
                }
            }
            Change::Restart {
                resource,
                node,
                reason,
                role,
            } => {
                match role {
                    Some(role) => write!(f, "Restart {resource} ( {role} {node} )")?,
                    None => write!(f, "Restart {resource} ( {node} )")?,
                }
                match reason {
                    Some(reason) => write!(f, " due to {reason}"),
                    None => Ok(()),
                }
            }
            Change::Fence {
                node,
                reason,
                action,
            } => write!(f, "Fence ({action}) {node} '{reason}'"),
            Change::Promote {
                resource,
                node,
                from,
                blocked,
            } => {
                let from = if *from == Role::Started {
                    "Unpromoted"
                } else {
                    "Stopped"
                };
                write!(f, "Promote {resource} ( {from} -> Promoted {node} )")?;
                match blocked {
                    Some(why) => write!(f, " due to {why} (blocked)"),
                    None => Ok(()),
                }
            }
            Change::Demote { resource, node } => {
                write!(f, "Demote {resource} ( Promoted -> Unpromoted {node} )")
            }
            Change::Repromote { resource, node } => {
                write!(f, "Re-promote {resource} ( Promoted {node} )")
            }
            Change::Reload { resource, node } => write!(f, "Reload {resource} ( {node} )"),
            Change::BlockedStart {
                resource,
                node,
                reason,
            } if reason.is_empty() => write!(f, "Start {resource} ( {node} ) blocked"),
            Change::BlockedStart {
                resource,
                node,
                reason,
            } => write!(f, "Start {resource} ( {node} ) due to {reason} (blocked)"),
            Change::Migrate { resource, from, to } => {
                write!(f, "Migrate {resource} ( {from} -> {to} )")
            }
        }
    }
}

/// A placement score, reported by `simulate --scores`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScoreEntry {
    pub resource: String,
    pub node: String,
    pub score: Score,
    /// A promotion score (of a promotable resource's copy on the node), not a placement one.
    pub promotion: bool,
}

/// What the scheduler decided.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Transition {
    pub actions: Vec<Action>,
    pub summary: Vec<Change>,
    /// When to schedule again even if nothing happens (a failure_timeout expiring).
    pub wakeup: Option<Time>,
    /// Placement scores, when asked for.
    pub scores: Vec<ScoreEntry>,
}

impl Transition {
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }
}

/// Knobs of one scheduling run.
#[derive(Clone, Copy, Debug, Default)]
pub struct ScheduleOptions {
    /// Record every placement score in [`Transition::scores`].
    pub scores: bool,
}

/// Decides the next transition. Pure: the same inputs always give the same transition.
pub fn schedule(config: &Config, state: &State, now: Time) -> Transition {
    schedule_with(config, state, now, ScheduleOptions::default())
}

/// [`schedule`] with options. Three phases: plan every resource (each after those it is
/// colocated with), let order constraints stop or restart what depends on something that stops
/// or restarts, then emit actions: fences, probes, demotes and stops in reverse order, starts
/// and promotes in order, so every dependency points to an earlier action.
pub fn schedule_with(
    config: &Config,
    state: &State,
    now: Time,
    opts: ScheduleOptions,
) -> Transition {
    let mut s = Scheduler::new(config, state, now, opts);
    s.fence_unclean_nodes();
    let mut plans: Vec<Plan> = vec![Plan::default(); config.resources().len()];
    let (order, within) = s.assignment_order();
    s.within = within;
    for &r in order.iter() {
        plans[r] = s.plan(r, &plans);
        plans[r].placed = true;
        plans[r].assigned = plans[r].targets.clone();
    }
    // A resource that migrates does not restart what is ordered after it; a migration that
    // orders make impossible is a stop and a start after all, which may restart others.
    // Migrations are only ever cancelled, so this ends; the bound says so.
    s.plan_migrations(&mut plans);
    for _ in 0..=plans.len() {
        s.apply_orders(&mut plans);
        let before: Vec<Option<(usize, usize)>> = plans.iter().map(|p| p.migrate).collect();
        s.plan_migrations(&mut plans);
        if plans.iter().map(|p| p.migrate).eq(before) {
            break;
        }
    }
    s.block_stops(&mut plans);
    // What it takes away from a resource, what is ordered after that resource loses too.
    if s.keep_away_from_blocked_stops(&mut plans) {
        s.apply_orders(&mut plans);
        s.block_stops(&mut plans);
    }
    // A stop held back keeps its resource's promotions as they are: what an order binds to a
    // promotion that will not happen now cannot run either.
    if plans.iter().any(|p| !p.blocked_stops.is_empty()) {
        s.drop_unpromoted_orders(&mut plans);
        s.block_stops(&mut plans);
    }
    s.emit(&plans);
    for &r in config.placement_order() {
        if plans[r].clone {
            s.summarize_copies(r, &plans);
        } else {
            s.summarize(r, &plans[r]);
        }
        s.summarize_reloads(r, &plans[r]);
    }
    s.out
}

/// What the scheduler decided for one resource, before any action exists. Node sets are
/// node indexes; a primitive has at most one target, a promotable resource one per copy.
#[derive(Clone, Debug, Default)]
struct Plan {
    /// Starts and stops are decided for it (managed, not blocked, not in maintenance, not
    /// multiple-active with the `block` policy).
    acts: bool,
    /// A clone: copies on several nodes.
    clone: bool,
    /// Placed already (a resource colocated with one not placed yet, on a colocation loop,
    /// does not see it).
    placed: bool,
    /// Where placing put it, before orders: a copy stopped on a node it was not placed on
    /// stops for node availability, whatever the orders say.
    assigned: Vec<usize>,
    /// Copies of a clone that would start but cannot, and why (`(blocked)` lines).
    blocked_copies: Vec<(usize, String)>,
    /// Copies that would be promoted but cannot, and why (`(blocked)` promote lines).
    blocked_promotions: Vec<(usize, String)>,
    /// Copies an interleaved order took away because `first` has no copy placed beside
    /// them (Pacemaker unassigns them: no `(blocked)` line, here or after).
    unassigned: Vec<usize>,
    /// Nodes to probe.
    probes: Vec<usize>,
    /// Nodes it runs on (reachable), and on unclean nodes waiting for fencing.
    live_active: Vec<usize>,
    unclean_active: Vec<usize>,
    /// Reachable nodes where it is promoted now.
    promoted_now: Vec<usize>,
    /// Nodes where it is active and failed.
    failed: Vec<usize>,
    /// Fence actions a start (of a primitive) or a promote must wait for.
    fences: Vec<ActionId>,
    want_run: bool,
    fatal: bool,
    /// Where it runs after the transition (for resources that do not act: where it runs now).
    targets: Vec<usize>,
    /// Where it is promoted after the transition.
    promoted: Vec<usize>,
    /// Running nodes where it is stopped and started again (failed, or forced by an order).
    restart: Vec<usize>,
    /// Running nodes where it restarts because another agent runs it now.
    redefined: Vec<usize>,
    /// Promoted nodes demoted and promoted again without a stop (`on_fail = "demote"`).
    repromote: Vec<usize>,
    /// Promoted nodes whose demote failed: stopped without another demote.
    no_demote: Vec<usize>,
    /// Derived from the above by [`Plan::derive`].
    stops: Vec<usize>,
    starts: Vec<usize>,
    demotes: Vec<usize>,
    promotes: Vec<usize>,
    /// Why an order constraint changed the plan: "required X start", "unrunnable X start".
    forced: Option<String>,
    /// Nodes where it restarts only because a resource it is ordered after starts (that
    /// resource, the nodes): undone when that start is held after all.
    restarted_for: Vec<(usize, Vec<usize>)>,
    /// A crash loop keeps it from starting until then.
    delayed: Option<Time>,
    /// A ticket it needs in the promoted role is missing: no copy is promoted.
    no_promote: bool,
    /// Moves by live migration: (from, to).
    migrate: Option<(usize, usize)>,
    /// Frozen without quorum where it would have started (or moved) elsewhere.
    frozen: bool,
    /// Why it moves by stop and start although it could migrate (a move's reason).
    no_migrate: Option<String>,
    /// FAILED and blocked where it is: it stays, but its start can never run, so what must
    /// start after it cannot start either.
    stuck: bool,
    /// A stopped primitive that would start on this node but cannot, and why (the summary's
    /// `(blocked)` line).
    blocked: Option<(usize, String)>,
    /// Nodes it runs on that could run resources but whose score for it is negative (banned,
    /// failed past its threshold): a copy leaving one moves only after copies not running
    /// anywhere are placed.
    disallowed: Vec<usize>,
    /// Nodes where a copy failed and is blocked (`on_fail = "block"`, or a stop failed with
    /// no fencing): it stays there, but nothing colocated with the clone counts on it.
    blocked_on: Vec<usize>,
    /// Stops that cannot happen because what must stop first cannot (a failed, blocked
    /// resource ordered after it), and why it would have stopped: it stays where it runs.
    blocked_stops: Vec<usize>,
    blocked_stop_reason: Option<StopReason>,
    /// Nodes where it restarts because an operator asked (for it, or for what it is
    /// colocated with).
    requested: Vec<usize>,
    /// Running nodes where a changed definition is reloaded (OCF `reload-agent`), unless the
    /// copy stops there anyway.
    reloads: Vec<usize>,
}

impl Plan {
    /// The node a primitive runs on after the transition.
    fn target(&self) -> Option<usize> {
        self.targets.first().copied()
    }

    /// Stopped and started again on the node it stays on.
    fn restarts_in_place(&self) -> bool {
        self.starts.iter().any(|t| self.stops.contains(t))
    }

    /// Takes the nodes `lost` from where it runs after the transition because of `why` (a
    /// colocation an order broke): a clone's copies there are listed `(blocked)`, a primitive
    /// that does not run yet gets a `(blocked)` start, and `why` becomes its reason.
    fn withdraw(&mut self, lost: &[usize], why: String) {
        self.targets.retain(|i| !lost.contains(i));
        if self.clone {
            self.block_copies(lost, &why);
        } else if self.live_active.is_empty() {
            self.blocked = Some((lost[0], why.clone()));
        }
        if self.forced.is_none() {
            self.forced = Some(why);
        }
        let targets = self.targets.clone();
        self.promoted.retain(|i| targets.contains(i));
        self.derive();
    }

    /// Copies that would have started on `nodes` and now cannot, listed `(blocked)` with
    /// `why` (the first reason a node gets is kept).
    fn block_copies(&mut self, nodes: &[usize], why: &str) {
        for &i in nodes {
            if !self.live_active.contains(&i) && !self.blocked_copies.iter().any(|b| b.0 == i) {
                self.blocked_copies.push((i, why.to_owned()));
            }
        }
    }

    /// Nodes of `with` that a colocation refers to: where it is promoted, or where it runs.
    fn nodes_for(&self, promoted: bool) -> &[usize] {
        if promoted {
            &self.promoted
        } else {
            &self.targets
        }
    }

    /// The nodes a colocation `c` with this resource binds to: [`Plan::nodes_for`], less a
    /// clone's copies that failed and are blocked under a mandatory colocation (Pacemaker
    /// counts no `pe_rsc_block` instance there).
    fn colocated_nodes(&self, c: &ColocRef) -> std::borrow::Cow<'_, [usize]> {
        if c.with_unpromoted {
            return std::borrow::Cow::Owned(
                self.targets
                    .iter()
                    .copied()
                    .filter(|i| !self.promoted.contains(i) && !self.blocked_on.contains(i))
                    .collect(),
            );
        }
        let on = self.nodes_for(c.with_promoted);
        if self.clone && c.score == Score::INFINITY && !self.blocked_on.is_empty() {
            std::borrow::Cow::Owned(
                on.iter()
                    .copied()
                    .filter(|i| !self.blocked_on.contains(i))
                    .collect(),
            )
        } else {
            std::borrow::Cow::Borrowed(on)
        }
    }

    /// The actions that take it from where it is to `targets` and `promoted`.
    fn derive(&mut self) {
        self.stops.clear();
        self.starts.clear();
        self.demotes.clear();
        self.promotes.clear();
        for &i in &self.live_active {
            let stop = !self.targets.contains(&i) || self.restart.contains(&i);
            if stop {
                self.stops.push(i);
            }
            if self.promoted_now.contains(&i) {
                let demote = if stop {
                    !self.no_demote.contains(&i)
                } else {
                    !self.promoted.contains(&i) || self.repromote.contains(&i)
                };
                if demote {
                    self.demotes.push(i);
                }
            }
        }
        for &i in &self.targets {
            if !self.live_active.contains(&i) || self.stops.contains(&i) {
                self.starts.push(i);
            }
        }
        for &i in &self.promoted {
            if !self.promoted_now.contains(&i)
                || self.stops.contains(&i)
                || self.demotes.contains(&i)
            {
                self.promotes.push(i);
            }
        }
    }
}

/// Why a start waits for quorum (the summary's reason).
const NO_QUORUM: &str = "no quorum";

/// How deep the merge of colocated node scores follows chains of colocations.
const MERGE_DEPTH: usize = 64;

/// A colocation's score as a fraction of INFINITY.
#[allow(clippy::cast_precision_loss)]
fn fraction(score: Score) -> f64 {
    score.value() as f64 / crate::score::INFINITY as f64
}

/// A node score `value` scaled by a colocation's `factor`, rounded, and never rounded away to
/// nothing (Pacemaker's `add_node_scores_matching_attr`).
#[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
fn scaled(value: i64, factor: f64) -> i64 {
    let weight = (factor * value as f64).round() as i64;
    match weight {
        0 if value != 0 && factor > 0.0 => 1,
        0 if value != 0 => -1,
        w => w,
    }
}

/// What the tickets of a resource do to it in this transition.
#[derive(Clone, Copy, Debug, Default)]
struct TicketEffect {
    /// May run nowhere.
    banned: bool,
    /// Stays as it is (loss policy freeze).
    frozen: bool,
    /// No copy may be promoted.
    no_promote: bool,
}

/// The utilization `own` and that of resources `others`, summed by name.
fn need_sum(own: &[(String, i64)], others: &[usize], config: &Config) -> Vec<(String, i64)> {
    let mut sum: Vec<(String, i64)> = Vec::new();
    let all = std::iter::once(own).chain(
        others
            .iter()
            .map(|&x| &config.resources()[x].utilization[..]),
    );
    for u in all {
        for (name, used) in u {
            add_amount(&mut sum, name, *used);
        }
    }
    sum
}

/// Adds `delta` to amount `name` of a capacity list (a missing one counts from 0).
fn add_amount(list: &mut Vec<(String, i64)>, name: &str, delta: i64) {
    match list.iter_mut().find(|(n, _)| n == name) {
        Some((_, v)) => *v = v.saturating_add(delta),
        None => list.push((name.to_owned(), delta)),
    }
}

/// A reason that names an order (`unrunnable X start`, `required X running`).
fn order_reason(why: &str) -> bool {
    why.starts_with("unrunnable ") || why.starts_with("required ")
}

/// What the scheduler needs to know of one node.
#[derive(Clone, Debug, Default)]
struct NodeView {
    online: bool,
    /// Waiting to be fenced (only when fencing is enabled).
    unclean: bool,
    standby: bool,
    /// In maintenance (its `maintenance` node attribute is true, as Pacemaker's): nothing is
    /// placed or probed here, and what runs here is left as it is.
    maintenance: bool,
    /// Still joining: nothing is placed or probed here yet.
    pending: bool,
    /// Resources placed here so far in this run: the tie-break after score.
    load: u32,
    /// Capacity left after what was placed here so far (placement strategies other than
    /// `default`), by name.
    remaining: Vec<(String, i64)>,
    fence: Option<ActionId>,
    /// Why it is fenced (when `unclean`).
    fence_reason: String,
}

impl NodeView {
    fn can_run(&self) -> bool {
        self.online && !self.unclean && !self.standby && !self.maintenance && !self.pending
    }

    /// Whether actions can be run there at all.
    fn reachable(&self) -> bool {
        self.online && !self.unclean
    }

    /// Unclean and not fenced in this transition (no quorum): what runs there stays there
    /// as far as anyone knows.
    fn stranded(&self) -> bool {
        self.unclean && self.fence.is_none()
    }
}

struct Scheduler<'a> {
    config: &'a Config,
    state: &'a State,
    now: Time,
    opts: ScheduleOptions,
    nodes: Vec<NodeView>,
    out: Transition,
    /// Per-resource scratch, reused to avoid allocating per resource.
    eff: Vec<Effective>,
    /// Base node scores of resources colocated with others, computed once per run.
    dependent_base: std::cell::RefCell<Vec<Option<std::rc::Rc<Vec<Score>>>>>,
    /// For each resource, the one whose placement places it first (see
    /// [`Config::assign_in`]).
    within: Vec<Option<usize>>,
    /// Each node's health score (see [`crate::config::NodeHealth`]).
    health: Vec<Score>,
    /// The fail counts and last failures rules read, by node, as Pacemaker's node
    /// attributes (`fail-count-R#monitor_10000`; see [`failure_attributes`]).
    failure_attrs: Vec<Vec<(String, String)>>,
    /// By node: why it is unfenced again in this transition, where the definition of an
    /// unfencing device that runs there changed (see [`devices_changed`]).
    device_changed: Vec<Option<&'static str>>,
}

/// Nodes unfenced again because an unfencing device running there runs with another
/// definition than the configuration's (Pacemaker's `trigger_unfencing` from its digest
/// checks): `Device definition changed` (another agent), `Device parameters changed`, or
/// `(reload)` where the device is only reloaded.
/// Only nodes that are members, clean and not shutting down are unfenced.
fn devices_changed(
    config: &Config,
    state: &State,
    nodes: &[NodeView],
) -> Vec<Option<&'static str>> {
    let mut out = vec![None; nodes.len()];
    if !config.unfencing_enabled() {
        return out;
    }
    for spec in config.resources() {
        let crate::config::Agent::Fence(dev) = &spec.agent else {
            continue;
        };
        let Some(rs) = state.resource(&spec.id).filter(|_| dev.unfence) else {
            continue;
        };
        let now = crate::config::Digests::of(spec);
        for (n, on) in &rs.nodes {
            let Some(i) = config.node_index(n) else {
                continue;
            };
            let v = &nodes[i];
            if !on.role.is_active()
                || on.digest.is_none_or(|d| d == now.all)
                || !v.reachable()
                || v.pending
                || state.node(n).is_none_or(|s| s.shutdown)
            {
                continue;
            }
            let reload = spec.reloadable.is_some() && on.restart_digest == Some(now.restart);
            let agent = on.agent_digest.is_some_and(|d| Some(d) != now.agent);
            out[i].get_or_insert(if agent {
                "Device definition changed"
            } else if reload {
                "Device parameters changed (reload)"
            } else {
                "Device parameters changed"
            });
        }
    }
    out
}

/// The node attributes Pacemaker keeps for failures that `rules` read, for each node:
/// `fail-count-R#OP_INTERVAL` (an operation's fail count), `fail-count-R` (all of them),
/// `last-failure-R#OP_INTERVAL` and `last-failure-R` (seconds since the epoch).
fn failure_attributes(config: &Config, state: &State) -> Vec<Vec<(String, String)>> {
    let mut names: Vec<&str> = config
        .rule_locations()
        .iter()
        .flat_map(|l| {
            let mut a = l.rule.attributes();
            if let RuleScore::Attribute(s) = &l.score {
                a.push(s);
            }
            a
        })
        .filter(|a| a.starts_with("fail-count-") || a.starts_with("last-failure-"))
        .collect();
    names.sort_unstable();
    names.dedup();
    config
        .nodes()
        .iter()
        .map(|node| {
            names
                .iter()
                .filter_map(|&name| {
                    let (count, rest) = match name.strip_prefix("fail-count-") {
                        Some(rest) => (true, rest),
                        None => (false, name.strip_prefix("last-failure-")?),
                    };
                    let (id, op) = match rest.split_once('#') {
                        Some((id, op)) => (id, Some(op)),
                        None => (rest, None),
                    };
                    let on = state.resource(id)?.nodes.get(node)?;
                    let value = if count {
                        let n: u64 = on
                            .fail_counts
                            .iter()
                            .filter(|(k, _)| op.is_none_or(|op| k.to_string() == op))
                            .map(|(_, &c)| u64::from(c))
                            .sum();
                        if n == 0 {
                            return None;
                        }
                        Score::new(i64::try_from(n).unwrap_or(i64::MAX)).to_string()
                    } else {
                        let t = match op {
                            Some(op) => on
                                .failed_ops
                                .iter()
                                .filter(|(k, _)| k.to_string() == op)
                                .map(|(_, r)| r.time)
                                .max()?,
                            None => on.last_failure?,
                        };
                        (t.as_millis() / 1000).to_string()
                    };
                    Some((name.to_owned(), value))
                })
                .collect()
        })
        .collect()
}

/// The actions emitted for one resource, by kind.
#[derive(Clone, Debug, Default)]
struct Emitted {
    probes: Vec<ActionId>,
    demotes: Vec<ActionId>,
    stops: Vec<ActionId>,
    starts: Vec<ActionId>,
    promotes: Vec<ActionId>,
    /// The last notifications sent, which the next round of actions waits for.
    notified: Vec<ActionId>,
}

impl Emitted {
    /// What an order's `then` waits for: the starts or the promotes of `first`.
    fn done(&self, action: OpName) -> &[ActionId] {
        match action {
            OpName::Promote => &self.promotes,
            _ => &self.starts,
        }
    }

    /// What an order's `first` undoes after its `then` is undone: stops or demotes.
    fn undone(&self, action: OpName) -> &[ActionId] {
        match action {
            OpName::Promote => &self.demotes,
            _ => &self.stops,
        }
    }
}

impl<'a> Scheduler<'a> {
    fn new(config: &'a Config, state: &'a State, now: Time, opts: ScheduleOptions) -> Self {
        let fencing = config.fencing_enabled();
        let capacities = config.cluster.placement_strategy != PlacementStrategy::Default;
        let mut nodes: Vec<NodeView> = config
            .nodes()
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let ns = state.node(n);
                NodeView {
                    remaining: if capacities {
                        config.node_capacity(i).to_vec()
                    } else {
                        Vec::new()
                    },
                    online: ns.is_some_and(|s| s.online),
                    unclean: fencing && ns.is_some_and(|s| s.unclean.is_some()),
                    standby: ns.is_some_and(|s| s.standby || s.shutdown),
                    maintenance: state.node_in_maintenance(config, n),
                    pending: ns.is_some_and(|s| s.pending && s.online),
                    load: 0,
                    fence: None,
                    fence_reason: ns.and_then(|s| s.unclean.clone()).unwrap_or_default(),
                }
            })
            .collect();
        // A ticket revoked with loss_policy "fence": the nodes running what needs it (in the
        // ticket's role) are fenced.
        if fencing {
            for t in config.tickets() {
                if t.loss_policy != LossPolicy::Fence
                    || state.tickets.get(&t.ticket).is_some_and(|s| s.granted)
                {
                    continue;
                }
                let Some(rs) = state.resource(&t.resource) else {
                    continue;
                };
                for (n, on) in &rs.nodes {
                    let matches = match t.role {
                        OpRole::Promoted => on.role == Role::Promoted,
                        _ => on.role.is_active(),
                    };
                    if let Some(i) = config.node_index(n).filter(|_| matches) {
                        if nodes[i].online && !nodes[i].unclean {
                            nodes[i].unclean = true;
                            nodes[i].fence_reason = "deadman ticket was lost".to_owned();
                        }
                    }
                }
            }
        }
        // A failure with on_fail = "standby" puts its node in standby while it counts.
        for (id, rs) in &state.resources {
            let Some(spec) = config.resource(id) else {
                continue;
            };
            for (n, on) in &rs.nodes {
                if on.standby_on_fail && !on.failures_expired(&spec.meta, now) {
                    if let Some(i) = config.node_index(n) {
                        nodes[i].standby = true;
                    }
                }
            }
        }
        let device_changed = devices_changed(config, state, &nodes);
        Scheduler {
            config,
            state,
            now,
            opts,
            nodes,
            out: Transition::default(),
            eff: Vec::new(),
            dependent_base: std::cell::RefCell::new(vec![None; config.resources().len()]),
            within: Vec::new(),
            failure_attrs: failure_attributes(config, state),
            device_changed,
            health: (0..config.nodes().len())
                .map(|i| {
                    let node = config.nodes()[i].as_str();
                    let live = state.node_attributes.get(node);
                    let configured = config
                        .node_attributes(i)
                        .iter()
                        .filter(|(k, _)| !live.is_some_and(|l| l.contains_key(k)))
                        .map(|(k, v)| (k.as_str(), v.as_str()));
                    let set = live
                        .into_iter()
                        .flatten()
                        .map(|(k, v)| (k.as_str(), v.as_str()));
                    config.cluster.node_health.score(configured.chain(set))
                })
                .collect(),
        }
    }

    fn push(&mut self, kind: ActionKind, deps: Vec<ActionId>) -> ActionId {
        let id = self.out.actions.len();
        self.out.actions.push(Action { id, kind, deps });
        id
    }

    fn fence_unclean_nodes(&mut self) {
        // Without quorum (unless no_quorum_policy = "ignore") a node is fenced only while it
        // is still a member, as Pacemaker: the other side may have quorum and be fencing
        // this one. What runs on a node left unclean stays there as far as anyone knows.
        let quorate =
            !self.state.no_quorum || self.config.cluster.no_quorum_policy == NoQuorumPolicy::Ignore;
        for i in 0..self.nodes.len() {
            if !self.nodes[i].unclean || !(quorate || self.nodes[i].online) {
                continue;
            }
            let node = self.config.nodes()[i].clone();
            let reason = self.nodes[i].fence_reason.clone();
            self.out.summary.push(Change::Fence {
                node: node.clone(),
                reason: reason.clone(),
                action: self.config.fence_action(&node).to_owned(),
            });
            let id = self.push(ActionKind::Fence { node, reason }, Vec::new());
            self.nodes[i].fence = Some(id);
        }
    }

    fn note_wakeup(&mut self, t: Time) {
        if t > self.now && self.out.wakeup.is_none_or(|w| t < w) {
            self.out.wakeup = Some(t);
        }
    }

    /// Decides where resource `r` should run and what that takes (no actions yet). `plans`
    /// holds the plans of the resources placed before it.
    fn plan(&mut self, r: usize, plans: &[Plan]) -> Plan {
        let config = self.config;
        let spec: &ResourceSpec = &config.resources()[r];
        let meta = &spec.meta;
        let rs: Option<&ResourceState> = self.state.resource(&spec.id);
        let node_names = config.nodes();

        self.eff.clear();
        for n in node_names {
            let e = match rs.and_then(|rs| rs.nodes.get(n)) {
                Some(on) => {
                    if let Some(t) = on.expiry(meta) {
                        self.note_wakeup(t);
                    }
                    on.effective(meta, self.now)
                }
                None => Effective::default(),
            };
            self.eff.push(e);
        }
        // A failure on a node that is unclean for another reason is left to the fence (which
        // stops the copy there): the copy is neither failed nor blocked, as Pacemaker skips
        // the failure handling of what runs on an unclean node.
        if self.nodes.iter().any(|n| n.unclean) {
            let fenced_for = crate::state::fenced_for_failure_of(&spec.id);
            for (i, e) in self.eff.iter_mut().enumerate() {
                let n = &self.nodes[i];
                if n.unclean && n.fence_reason != fenced_for {
                    e.failed = false;
                    e.blocked = false;
                }
            }
        }
        // A failure ignored (`on_fail = "ignore"`) anywhere: so is the migration threshold,
        // whatever else counted (Pacemaker's `pe_rsc_failure_ignored`).
        if self.eff.iter().any(|e| e.failure_ignored) {
            for e in &mut self.eff {
                e.threshold_reached = false;
            }
        }
        for l in config.rule_locations_of(r) {
            if let Some(t) = l.rule.next_change(self.now) {
                self.note_wakeup(t);
            }
        }
        if let (Some(lock), Some(limit)) = (self.lock(r), config.cluster.shutdown_lock_limit) {
            self.note_wakeup(lock.since + limit);
        }
        let all = 0..node_names.len();
        let needs_fencing = spec.needs_fencing();
        let mut p = Plan {
            clone: spec.is_clone(),
            live_active: all
                .clone()
                .filter(|&i| self.eff[i].role.is_active() && self.nodes[i].reachable())
                .collect(),
            unclean_active: all
                .clone()
                .filter(|&i| self.eff[i].role.is_active() && self.nodes[i].unclean)
                .collect(),
            promoted_now: all
                .clone()
                .filter(|&i| self.eff[i].role == Role::Promoted && self.nodes[i].reachable())
                .collect(),
            // Starting (or promoting) anywhere waits for the fencing of every unclean node it
            // might run on; what requires only quorum for the nodes where its state is
            // unknown (it may run there unseen), as Pacemaker's `order_start_vs_fencing`.
            fences: all
                .clone()
                .filter(|&i| match (needs_fencing, meta.requires) {
                    (true, _) => self.eff[i].role != Role::Stopped,
                    (false, Requires::Nothing) => false,
                    (false, _) => self.eff[i].role == Role::Unknown,
                })
                .filter_map(|i| self.nodes[i].fence)
                .collect(),
            fatal: self.eff.iter().any(|e| e.fatal),
            ..Plan::default()
        };
        // A failed copy on a node to be fenced is settled by the fence: what ran there moves,
        // as crm_simulate says; a node fenced for the failure itself (still online) recovers
        // it.
        p.failed = p
            .live_active
            .iter()
            .copied()
            .filter(|&i| self.eff[i].failed)
            // (A failure on a node unclean for another reason was cleared above.)
            .chain(
                p.unclean_active
                    .iter()
                    .copied()
                    .filter(|&i| self.eff[i].failed && self.nodes[i].online),
            )
            .collect();
        // A blocked failure on a node about to be fenced is resolved by the fence: the
        // resource is recovered elsewhere after it.
        p.blocked_on = all
            .clone()
            .filter(|&i| self.eff[i].blocked && self.nodes[i].fence.is_none())
            .collect();
        let blocked = !p.blocked_on.is_empty();
        // Running on a node in maintenance (online or not: a node left in maintenance keeps
        // what it ran): left as it is there (and, as a clone with a blocked copy, everywhere).
        let on_maintenance_node = all
            .clone()
            .any(|i| self.nodes[i].maintenance && self.eff[i].role.is_active());
        if meta.maintenance || blocked || on_maintenance_node {
            p.stuck = self
                .eff
                .iter()
                .enumerate()
                .any(|(i, e)| e.blocked && e.failed && self.nodes[i].fence.is_none());
            return self.stays(r, p);
        }
        // Probe wherever we do not know the state.
        p.probes = all
            .clone()
            .filter(|&i| {
                self.nodes[i].reachable()
                    && !self.nodes[i].maintenance
                    && !self.nodes[i].pending
                    && self.eff[i].role == Role::Unknown
                    && config.discovers(r, i)
            })
            .collect();

        let tickets = self.tickets(r, &p);
        let mut scores = self.scores(r, &p.live_active, plans);
        if tickets.banned {
            scores.fill(Score::MINUS_INFINITY);
        }
        if p.clone {
            p.disallowed = p
                .live_active
                .iter()
                .chain(&p.unclean_active)
                .copied()
                .filter(|&i| scores[i].value() < 0 && self.nodes[i].can_run())
                .collect();
        }
        if self.opts.scores {
            for (i, s) in scores.iter().enumerate() {
                self.out.scores.push(ScoreEntry {
                    resource: spec.id.clone(),
                    node: node_names[i].clone(),
                    score: *s,
                    promotion: false,
                });
            }
        }
        // Active on several nodes: where it may still run on a node to be fenced counts only
        // for what waits for fencing to start elsewhere (not fence devices, nor what requires
        // only quorum or nothing, which start elsewhere at once), as Pacemaker counts it.
        let unclean_count = if needs_fencing {
            p.unclean_active.len()
        } else {
            0
        };
        let multiple = !p.clone && p.live_active.len() + unclean_count > 1;
        p.no_promote = tickets.no_promote;
        if !meta.is_managed
            || tickets.frozen
            || (multiple && meta.multiple_active == MultipleActive::Block)
        {
            return self.stays(r, p);
        }
        p.acts = true;

        let target_role = rs.and_then(|rs| rs.target_role).unwrap_or(meta.target_role);
        // Unpromoted: no copy is promoted (its promoted copies demote).
        p.no_promote |= target_role == TargetRole::Unpromoted;
        let quorum = if self.state.no_quorum && meta.requires != Requires::Nothing {
            self.config.cluster.no_quorum_policy
        } else {
            NoQuorumPolicy::Ignore
        };
        let quorum_stops = quorum == NoQuorumPolicy::Stop
            || (quorum == NoQuorumPolicy::Demote && !spec.is_promotable());
        // An orphan (gone from the file) is only ever stopped, whatever `enable` said.
        let orphan = meta.orphan;
        p.want_run = target_role != TargetRole::Stopped
            && !orphan
            && !self.eff.iter().any(|e| e.stop_on_fail)
            && !quorum_stops;

        p.targets = if !p.want_run {
            Vec::new()
        } else if spec.copies.is_some() {
            self.copy_targets(r, &scores, &p, plans)
        } else {
            let prefer = self.ban_insufficient_capacity(r, &mut scores, plans);
            // An instance beyond its fair share of its node is placed afresh: where it runs
            // breaks no tie (Pacemaker's second pass over a clone's instances).
            let here: &[usize] = match self.preallocated(r) {
                Some(None) => &[],
                _ => &p.live_active,
            };
            let best = self.choose(&scores, here);
            // The node with the most capacity left, when none holds it and what is colocated
            // with it, as long as it scores as well as the best.
            match (prefer, best) {
                (Some(n), Some(b)) if scores[n] >= scores[b] && scores[n].value() >= 0 => {
                    vec![n]
                }
                _ => best.into_iter().collect(),
            }
        };
        // Without quorum under "freeze", what is stopped does not start (a copy of a clone
        // neither); what runs may still move, as Pacemaker's freeze keeps roles from rising.
        if quorum == NoQuorumPolicy::Freeze && (p.clone || p.live_active.is_empty()) {
            if let (false, Some(&t)) = (p.clone, p.targets.first()) {
                p.blocked = Some((t, "quorum freeze".to_owned()));
            }
            p.frozen = p.targets.iter().any(|t| !p.live_active.contains(t));
            p.targets.retain(|t| p.live_active.contains(t));
        }
        // Kept from starting only by the lost quorum: where it would start, for the summary.
        if quorum_stops
            && !p.clone
            && p.live_active.is_empty()
            && p.unclean_active.is_empty()
            && target_role != TargetRole::Stopped
            && !orphan
        {
            let scores = self.scores_as(r, &p.live_active, plans, true);
            if let Some(t) = self.choose(&scores, &p.live_active) {
                p.blocked = Some((t, NO_QUORUM.to_owned()));
                // Placed there all the same, as Pacemaker places it: it counts in the load.
                self.place_on(r, t);
            }
        }
        // A clone's copies kept from starting only by the lost quorum: where they would
        // start, for the summary (and for what is colocated with the clone).
        if quorum_stops && p.clone && target_role != TargetRole::Stopped && !orphan {
            let scores = self.scores_as(r, &p.live_active, plans, true);
            let would: Vec<usize> = self
                .copy_targets(r, &scores, &p, plans)
                .into_iter()
                .filter(|i| !p.live_active.contains(i) && !p.unclean_active.contains(i))
                .collect();
            p.block_copies(&would, NO_QUORUM);
        }
        // Running nowhere known, and not yet probed on a node still joining (it might run
        // there): it does not start until that node has been probed (Pacemaker's start after
        // an unrunnable probe; crm_simulate says a bare `blocked`).
        if !p.clone && p.live_active.is_empty() && p.unclean_active.is_empty() {
            let unknown_on_pending = all.clone().any(|i| {
                self.nodes[i].pending && self.eff[i].role == Role::Unknown && config.discovers(r, i)
            });
            if let (true, Some(&t)) = (unknown_on_pending, p.targets.first()) {
                p.blocked = Some((t, String::new()));
                p.targets.clear();
            }
        }
        if multiple && meta.multiple_active == MultipleActive::StopOnly {
            p.targets.clear();
        }
        // It may still run on an unclean node that will not be fenced (no quorum): it starts
        // nowhere else, unless it needs neither quorum nor fencing.
        if !p.clone
            && meta.requires != Requires::Nothing
            && p.unclean_active.iter().any(|&i| self.nodes[i].stranded())
        {
            p.targets.clear();
        }
        // A crash loop delays its start on that node: it stays stopped there until then.
        let eff = &self.eff;
        let delays: Vec<Time> = p
            .targets
            .iter()
            .filter(|&&t| !p.live_active.contains(&t) || eff[t].failed)
            .filter_map(|&t| eff[t].start_not_before)
            .collect();
        if let Some(&until) = delays.iter().min() {
            p.targets.retain(|&t| {
                eff[t].start_not_before.is_none() || (p.live_active.contains(&t) && !eff[t].failed)
            });
            p.delayed = Some(until);
            for t in delays {
                self.note_wakeup(t);
            }
        }
        p.restart = p
            .live_active
            .iter()
            .copied()
            .filter(|&i| {
                self.eff[i].failed
                    || self.eff[i].restart
                    || (multiple && meta.multiple_active == MultipleActive::StopStart)
            })
            .collect();
        // Started with another definition: restarted with the configuration's, as
        // Pacemaker's definition digest decides.
        // Where the agent reloads and only reloadable parameters changed, a reload is enough.
        let digests = config.digests(r);
        let mut changed: Vec<usize> = p
            .live_active
            .iter()
            .copied()
            .filter(|&i| self.eff[i].digest.is_some_and(|d| d != digests.all))
            .filter(|i| !p.restart.contains(i))
            .collect();
        if spec.reloadable.is_some() {
            let eff = &self.eff;
            p.reloads = changed
                .iter()
                .copied()
                .filter(|&i| eff[i].restart_digest == Some(digests.restart))
                .collect();
            changed.retain(|i| !p.reloads.contains(i));
        }
        // Another agent now: restarted without a reason, as crm_simulate words it (the
        // digests of its parameters may not tell, so neither does Pacemaker). So is what
        // requires nothing: Pacemaker resets the reason of its start once it is placed.
        p.redefined = changed
            .iter()
            .copied()
            .filter(|&i| {
                meta.requires == Requires::Nothing
                    || self.eff[i]
                        .agent_digest
                        .is_some_and(|d| Some(d) != digests.agent)
            })
            .collect();
        if !changed.is_empty() {
            if changed
                .iter()
                .any(|i| p.targets.contains(i) && !p.redefined.contains(i))
            {
                p.forced = Some("resource definition change".to_owned());
            }
            p.restart.extend(changed);
        }
        // Where its node is unfenced again (an unfencing device's definition changed there),
        // what requires unfencing stops before and starts after it, as Pacemaker orders
        // them (`pcmk__order_restart_vs_unfence`): `due to required stonith`.
        if spec.needs_unfencing() {
            let again: Vec<usize> = p
                .live_active
                .iter()
                .copied()
                .filter(|&i| self.unfenced_again(i) && !p.restart.contains(&i))
                .collect();
            if again.iter().any(|i| p.targets.contains(i)) && p.forced.is_none() {
                p.forced = Some("required stonith".to_owned());
            }
            p.restart.extend(again);
        }
        // An operator's restart: stopped and started again where it stays; so is what is
        // colocated with it there (as `pcs resource restart`, which disables and enables).
        p.requested = p
            .restart
            .iter()
            .copied()
            .filter(|&i| self.eff[i].restart && p.targets.contains(&i))
            .collect();
        if !p.requested.is_empty() && p.forced.is_none() {
            p.forced = Some("operator request".to_owned());
        }
        // Its state is unknown on an unclean node that will not be fenced (it may run there):
        // nothing starts, here or elsewhere, until that is settled; what runs stays.
        let maybe_stranded = !p.clone
            && meta.requires != Requires::Nothing
            && all.clone().any(|i| {
                self.eff[i].role == Role::Unknown
                    && self.nodes[i].unclean
                    && self.nodes[i].stranded()
            });
        if maybe_stranded {
            let (live, restart) = (p.live_active.clone(), p.restart.clone());
            p.targets
                .retain(|i| live.contains(i) && !restart.contains(i));
            let targets = p.targets.clone();
            p.promoted.retain(|i| targets.contains(i));
            if !p.requested.is_empty() && p.forced.as_deref() == Some("operator request") {
                p.forced = None;
            }
            p.requested.clear();
        }
        for c in config.colocated_with(r) {
            if !c.places() || c.score != Score::INFINITY {
                continue;
            }
            let again: Vec<usize> = self
                .with_plan(c, plans)
                .requested
                .iter()
                .copied()
                .filter(|i| p.live_active.contains(i) && p.targets.contains(i))
                .filter(|i| !p.restart.contains(i))
                .collect();
            if !again.is_empty() {
                p.restart.extend(&again);
                p.requested.extend(again);
                p.forced = Some(format!("restart of {}", self.with_name(c)));
            }
        }
        p.repromote = p
            .promoted_now
            .iter()
            .copied()
            .filter(|&i| self.eff[i].demote_on_fail)
            .collect();
        p.no_demote = p
            .promoted_now
            .iter()
            .copied()
            .filter(|&i| self.eff[i].demote_failed)
            .collect();
        for &t in &p.targets {
            self.place_on(r, t);
        }
        if let Some(pr) = spec.promotable() {
            let frozen = quorum == NoQuorumPolicy::Freeze;
            p.promoted = if quorum == NoQuorumPolicy::Demote || p.no_promote {
                Vec::new()
            } else {
                self.choose_promoted(r, &p, pr.promoted_max as usize, plans, frozen)
            };
        } else {
            p.promoted.clear();
        }
        p.derive();
        p
    }

    /// Where a clone's copies go: one per node, best scores first, at most `clone_max`,
    /// counting the copies on nodes waiting to be fenced (they may still run).
    fn copy_targets(&self, r: usize, scores: &[Score], p: &Plan, plans: &[Plan]) -> Vec<usize> {
        let spec = &self.config.resources()[r];
        let max = spec
            .copies
            .as_ref()
            .map_or(self.nodes.len(), |c| c.max_copies(self.nodes.len()));
        let own = &spec.utilization;
        let mut cand: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| scores[i].value() >= 0 && self.has_capacity(i, own))
            .collect();
        // Copies already running keep their nodes in node order (Pacemaker numbers the
        // instances it finds in the status that way, and keeps the lowest); new copies go to
        // the least loaded nodes.
        cand.sort_by_key(|&i| {
            let active = p.live_active.contains(&i);
            (
                std::cmp::Reverse(scores[i]),
                !active,
                if active { 0 } else { self.nodes[i].load },
                i,
            )
        });
        // A copy on a node to be fenced keeps its place until the fence when the clone waits
        // for fencing, or runs everywhere; otherwise it is taken for stopped and replaced at
        // once (Pacemaker makes it an orphan, `find_anonymous_clone`).
        let unclean = if spec.needs_fencing() || max == self.nodes.len() {
            p.unclean_active.len()
        } else {
            0
        };
        let count = max.saturating_sub(unclean);
        // Under a placement strategy, copies are placed one at a time as Pacemaker assigns
        // instances: each on the best node left with the capacity for it and what is
        // colocated with it (one copy of a clone), while such a node is left; else on the
        // best node left with the capacity for it alone.
        let need = self.colocated_need(r, plans);
        if need.len() > 1 {
            let sum = need_sum(
                &self.config.resources()[r].utilization,
                &need[1..],
                self.config,
            );
            let mut left = cand;
            cand = Vec::new();
            while cand.len() < count && !left.is_empty() {
                let k = left
                    .iter()
                    .position(|&i| self.has_capacity(i, &sum))
                    .unwrap_or(0);
                cand.push(left.remove(k));
            }
        } else {
            cand.truncate(count);
        }
        cand.sort_unstable();
        cand
    }

    /// Resource `r` and what is colocated with it, mandatory, either way, not placed yet
    /// (`r` first): what Pacemaker sums the utilization of to place `r`. What is colocated
    /// with a clone goes with one of its copies only when it is a clone itself.
    fn colocated_need(&self, r: usize, plans: &[Plan]) -> Vec<usize> {
        let config = self.config;
        if config.cluster.placement_strategy == PlacementStrategy::Default {
            return vec![r];
        }
        let resources = config.resources();
        let mut with = vec![r];
        let mut k = 0;
        while k < with.len() {
            let x = with[k];
            k += 1;
            let primaries = config
                .colocated_with(x)
                .iter()
                .filter(|c| c.score == Score::INFINITY && c.places() && !c.by_role())
                .map(|c| c.with);
            let dependents = config
                .dependents_of(x)
                .iter()
                .filter(|&&(d, score)| {
                    // A clone cannot tell where a primitive colocated with it goes.
                    score == Score::INFINITY
                        && (!resources[x].is_clone() || resources[d].is_clone())
                })
                .map(|&(d, _)| d);
            for y in primaries.chain(dependents).collect::<Vec<_>>() {
                if !with.contains(&y) && !plans[y].placed {
                    with.push(y);
                }
            }
        }
        with
    }

    /// What the tickets resource `r` needs do to it (Pacemaker's `rsc_ticket`): a ticket
    /// not granted (or on standby) bans it everywhere, but a revoke while it runs follows the
    /// loss policy (demote: only the promoted role goes; fence: the nodes are fenced, see
    /// `new`; freeze: it stays as it is). A ticket of the promoted role that is missing
    /// forbids promotion.
    fn tickets(&self, r: usize, p: &Plan) -> TicketEffect {
        let mut out = TicketEffect::default();
        let running = !p.live_active.is_empty() || !p.unclean_active.is_empty();
        for t in self.config.tickets_of(r) {
            let st = self.state.tickets.get(&t.ticket);
            let granted = st.is_some_and(|s| s.granted);
            if granted && !st.is_some_and(|s| s.standby) {
                continue;
            }
            let promoted_role = t.role == OpRole::Promoted;
            out.no_promote |= promoted_role;
            let role_matches = !promoted_role || !p.promoted_now.is_empty();
            if !granted && running {
                match t.loss_policy {
                    LossPolicy::Stop => out.banned = true,
                    LossPolicy::Demote => out.banned |= !promoted_role,
                    LossPolicy::Fence => out.banned |= role_matches && !promoted_role,
                    LossPolicy::Freeze => out.frozen |= role_matches,
                }
            } else if !promoted_role || t.loss_policy == LossPolicy::Stop {
                out.banned = true;
            }
        }
        out
    }

    /// The copies to promote: running ones (after the transition) with a promotion score of
    /// zero or more, best first; ties go to the copy promoted now, then configuration order.
    /// A copy has a score when its agent set one (or the resource has a default `score`) or a
    /// `role = "promoted"` location names its node.
    fn choose_promoted(
        &mut self,
        r: usize,
        p: &Plan,
        max: usize,
        plans: &[Plan],
        frozen: bool,
    ) -> Vec<usize> {
        let config = self.config;
        let spec = &config.resources()[r];
        let rs = self.state.resource(&spec.id);
        let default = spec.promotable().and_then(|pr| pr.score);
        // What is colocated with the promoted role adds its own node scores, scaled by the
        // colocation's (Pacemaker's `apply_coloc_to_primary`): one that would turn a node's
        // positive priority negative leaves it 1, the lowest there is, and a zero unchanged.
        // A dependent's scores take in those of what is colocated with it in turn (a group
        // colocated with it whose member is banned from a node pulls the promotion away).
        let mut visiting = vec![false; config.resources().len()];
        let with_promoted: Vec<(std::rc::Rc<Vec<Score>>, f64)> = config
            .promoted_dependents_of(r)
            .iter()
            .map(|&(d, score)| {
                let base = self.dependent_base(d);
                if config.dependents_of(d).is_empty() {
                    return (base, fraction(score));
                }
                let mut work = (*base).clone();
                visiting[d] = true;
                for &(d2, s2) in config.dependents_of(d) {
                    self.merge_dependent(r, d2, &mut work, fraction(s2), plans, &mut visiting, 1);
                }
                visiting[d] = false;
                (std::rc::Rc::new(work), fraction(score))
            })
            .collect();
        let mut cand: Vec<(Score, usize)> = Vec::new();
        for &i in &p.targets {
            let node = &config.nodes()[i];
            let agent = rs
                .and_then(|rs| rs.promotion_scores.get(node))
                .copied()
                .or(default);
            let locs: Vec<Score> = config
                .promotion_locations_of(r)
                .iter()
                .filter(|(n, _)| *n == i)
                .map(|(_, s)| *s)
                .chain(self.rule_score(r, i, true))
                .collect();
            // The clone's own location scores there count too (Pacemaker's promotion
            // priority is the clone's node weight plus the copy's promotion score).
            let placed: Score = config
                .locations_of(r)
                .iter()
                .filter(|(n, _)| *n == i)
                .fold(Score::ZERO, |acc, (_, s)| acc.add(*s));
            // Without a score of its own, a copy starts at -1: only what adds to it (a
            // colocation of the promoted role with where something runs) can promote it, as
            // Pacemaker's default priority.
            let base = match agent {
                Some(a) => a,
                None if locs.is_empty() => Score::new(-1),
                None => Score::ZERO,
            };
            let mut s = locs.iter().fold(base, |acc, l| acc.add(*l)).add(placed);
            let scored = agent.is_some() || !locs.is_empty();
            if scored && p.promoted_now.contains(&i) && !p.failed.contains(&i) {
                s = s.add(spec.meta.resource_stickiness);
            }
            for (base, factor) in &with_promoted {
                let merged = s.add(Score::new(scaled(base[i].value(), *factor)));
                s = match s.value() {
                    _ if merged.value() >= 0 => merged,
                    v if v > 0 => Score::new(1),
                    0 => s,
                    _ => merged,
                };
            }
            for c in config.colocated_with(r).iter().filter(|c| c.promoted) {
                if self.with_plan(c, plans).colocated_nodes(c).contains(&i) {
                    s = s.add(c.score);
                } else if c.score == Score::INFINITY {
                    s = Score::MINUS_INFINITY;
                }
            }
            // Its unpromoted copies with `with`: the copy there is that much less promotable.
            for c in config.colocated_with(r).iter().filter(|c| c.unpromoted) {
                if self.with_plan(c, plans).colocated_nodes(c).contains(&i) {
                    s = s.add(Score::new(-c.score.value()));
                }
            }
            if self.opts.scores {
                self.out.scores.push(ScoreEntry {
                    resource: spec.id.clone(),
                    node: node.clone(),
                    score: s,
                    promotion: true,
                });
            }
            if s.value() >= 0 && (!frozen || p.promoted_now.contains(&i)) {
                cand.push((s, i));
            }
        }
        // Ties: the copy promoted now; then where what is colocated with the clone prefers
        // (its node scores, scaled by the colocation's); then the lower instance number
        // (where known); then node order: as Pacemaker orders its instances
        // (`pcmk__cmp_instance`).
        let instance = |i: usize| {
            rs.and_then(|rs| rs.nodes.get(&config.nodes()[i]))
                .and_then(|on| on.instance)
                .unwrap_or(u32::MAX)
        };
        // (Computed only when there is a tie to break.)
        let tied = cand
            .iter()
            .enumerate()
            .any(|(k, a)| cand[k + 1..].iter().any(|b| a.0 == b.0));
        let pulls: Vec<(std::rc::Rc<Vec<Score>>, f64)> = if tied {
            config
                .dependents_of(r)
                .iter()
                .filter(|&&(d, _)| !config.resources()[d].is_clone())
                .map(|&(d, score)| (self.dependent_base(d), fraction(score)))
                .collect()
        } else {
            Vec::new()
        };
        let pull = |i: usize| -> i64 {
            pulls
                .iter()
                .map(|(base, f)| scaled(base[i].value(), *f))
                .fold(0i64, i64::saturating_add)
        };
        cand.sort_by_cached_key(|&(s, i)| {
            (
                std::cmp::Reverse(s),
                !p.promoted_now.contains(&i),
                std::cmp::Reverse(if tied { pull(i) } else { 0 }),
                if tied { instance(i) } else { 0 },
                i,
            )
        });
        // A copy still promoted on a node waiting to be fenced is not counted: every promote
        // waits for that fence (see `emit`).
        let mut out: Vec<usize> = cand.into_iter().take(max).map(|(_, i)| i).collect();
        out.sort_unstable();
        out
    }

    /// For an instance of a clone ([`crate::Instance`]): the node it keeps before any other
    /// instance is placed, if any. In number order, an instance that runs (not failed) on a
    /// node that can run it keeps it while that node holds fewer than its fair share of the
    /// clone (`clone_max` over the nodes available, at least 1) and fewer than
    /// `clone_node_max`, as Pacemaker pre-allocates instances (`distribute_children`). None:
    /// not an instance.
    fn preallocated(&self, r: usize) -> Option<Option<usize>> {
        let inst = self.config.resources()[r].instance.as_ref()?;
        let members = self.config.instances_of(&inst.of)?;
        let k = members.iter().position(|&m| m == r)?;
        Some(self.preallocation(inst)[k])
    }

    /// [`Scheduler::preallocated`] for every instance of `inst`'s clone, in number order.
    fn preallocation(&self, inst: &crate::Instance) -> Vec<Option<usize>> {
        let config = self.config;
        let members = config.instances_of(&inst.of).unwrap_or_default();
        let available = self.nodes.iter().filter(|n| n.can_run()).count().max(1);
        let fair = (inst.clone_max as usize / available)
            .max(1)
            .min(inst.clone_node_max as usize);
        let mut count = vec![0usize; config.nodes().len()];
        members
            .iter()
            .map(|&m| {
                let spec = &config.resources()[m];
                // One that cannot leave (blocked where it failed, or unmanaged) keeps its
                // node whatever its share; a failed one is placed afresh.
                let mut pinned = !spec.meta.is_managed || spec.meta.maintenance;
                let active: Vec<usize> = self
                    .state
                    .resource(&spec.id)
                    .into_iter()
                    .flat_map(|rs| rs.nodes.iter())
                    .filter(|(_, on)| {
                        pinned |= on.role.is_active() && on.blocked;
                        on.role.is_active() && (!on.failed || on.blocked)
                    })
                    .filter_map(|(n, _)| config.node_index(n))
                    .filter(|&i| self.nodes[i].reachable())
                    .collect();
                // Active on several nodes, only one that cannot leave keeps one of them.
                let current = match active.as_slice() {
                    [i] => Some(*i),
                    [i, ..] if pinned => Some(*i),
                    _ => None,
                };
                let kept =
                    current.filter(|&i| pinned || (self.nodes[i].can_run() && count[i] < fair));
                if let Some(i) = kept {
                    count[i] += 1;
                }
                kept
            })
            .collect()
    }

    /// What colocation `c` is with: its resource's plan, or for a clone of instances the
    /// union of its instances' plans (as one clone: placed once all of them are).
    fn with_plan<'p>(&self, c: &ColocRef, plans: &'p [Plan]) -> std::borrow::Cow<'p, Plan> {
        let Some(k) = c.with_set else {
            return std::borrow::Cow::Borrowed(&plans[c.with]);
        };
        let mut u = Plan {
            clone: true,
            placed: true,
            acts: true,
            ..Plan::default()
        };
        let add = |to: &mut Vec<usize>, from: &[usize]| {
            for &i in from {
                if !to.contains(&i) {
                    to.push(i);
                }
            }
        };
        for &m in self.config.set_members(k) {
            let p = &plans[m];
            u.placed &= p.placed;
            add(&mut u.targets, &p.targets);
            add(&mut u.assigned, &p.assigned);
            add(&mut u.live_active, &p.live_active);
            add(&mut u.requested, &p.requested);
            add(&mut u.blocked_on, &p.blocked_on);
            add(&mut u.starts, &p.starts);
            add(&mut u.stops, &p.stops);
            u.blocked_copies.extend(p.blocked.iter().cloned());
            u.blocked_copies.extend(p.blocked_copies.iter().cloned());
        }
        u.targets.sort_unstable();
        std::borrow::Cow::Owned(u)
    }

    /// The name reasons give what colocation `c` is with (`colocation with W`).
    fn with_name(&self, c: &ColocRef) -> &'a str {
        match c.with_set {
            Some(k) => self.config.set_name(k),
            None => &self.config.resources()[c.with].id,
        }
    }

    /// The plan of a resource that does not act: it stays where it is, as far as the others
    /// are concerned.
    fn stays(&mut self, r: usize, mut p: Plan) -> Plan {
        for &i in &p.live_active {
            self.place_on(r, i);
        }
        p.targets = p.live_active.clone();
        p.promoted = p.promoted_now.clone();
        p
    }

    /// Mandatory orders: a `then` whose `first` will not run (or not be promoted, for an
    /// order on `promote`) cannot run (or be promoted); a `then` whose `first` (re)starts or
    /// is promoted anew restarts after it. Repeated until nothing changes (plans only move
    /// toward stopping and restarting, so this ends).
    fn apply_orders(&self, plans: &mut [Plan]) {
        let config = self.config;
        loop {
            let mut changed = false;
            for f in 0..plans.len() {
                for &(t, k) in config.orders_from(f) {
                    let o = &config.orders()[k];
                    if o.kind != OrderKind::Mandatory || !plans[t].acts {
                        continue;
                    }
                    let first = || {
                        o.first_label.clone().unwrap_or_else(|| {
                            format!("{} {}", config.resources()[f].id, o.first_action)
                        })
                    };
                    if config.interleaved(k) {
                        // Copy to copy: a copy of `then` runs only where `first` has one, and
                        // restarts only where `first`'s copy (re)starts. Of the copies with
                        // none beside them, those whose `first` copy is placed (and was not
                        // taken away by interleaving) but cannot start are blocked; the others
                        // are not placed either (Pacemaker unassigns them).
                        let (lost, dropped): (Vec<usize>, Vec<usize>) = {
                            let first_plan = &plans[f];
                            plans[t]
                                .targets
                                .iter()
                                .copied()
                                .filter(|i| !first_plan.targets.contains(i))
                                .partition(|i| {
                                    first_plan.assigned.contains(i)
                                        && !first_plan.unassigned.contains(i)
                                })
                        };
                        let (f_targets, f_starts) =
                            (plans[f].targets.clone(), plans[f].starts.clone());
                        // Copies that ran and stop because of an order of their own: what
                        // follows them stops for their `required` start (crm_simulate's words).
                        let word = if plans[f].live_active.is_empty()
                            || !plans[f].forced.as_deref().is_some_and(order_reason)
                        {
                            "unrunnable"
                        } else {
                            "required"
                        };
                        let second_stop = self.second_member_stop(plans, f, k, word == "required");
                        let then = &mut plans[t];
                        let before = then.targets.len();
                        then.unassigned.extend(dropped);
                        then.targets.retain(|i| f_targets.contains(i));
                        let mut touched = then.targets.len() != before;
                        if touched {
                            then.forced =
                                Some(second_stop.unwrap_or_else(|| format!("{word} {}", first())));
                            then.block_copies(&lost, &format!("unrunnable {}", first()));
                        }
                        let again: Vec<usize> = then
                            .targets
                            .iter()
                            .copied()
                            .filter(|i| f_starts.contains(i) && !then.starts.contains(i))
                            .collect();
                        if !again.is_empty() {
                            then.restart.extend(&again);
                            then.restarted_for.push((f, again));
                            then.forced = Some(format!("required {}", first()));
                            touched = true;
                        }
                        if touched {
                            then.promoted.retain(|i| f_targets.contains(i));
                            then.derive();
                            changed = true;
                        }
                        continue;
                    }
                    let (first_runs, first_starts) = match o.first_action {
                        // Enough copies of what it waits for; their starts restart nothing.
                        action if o.first_min.is_some() => {
                            let count: usize = config
                                .orders_to(t)
                                .iter()
                                .filter(|&&(_, k2)| {
                                    let o2 = &config.orders()[k2];
                                    o2.first_min.is_some() && o2.first_label == o.first_label
                                })
                                .map(|&(f2, _)| match action {
                                    OpName::Promote => plans[f2].promoted.len(),
                                    _ => plans[f2].targets.len(),
                                })
                                .sum();
                            let need = o.first_min.unwrap_or(1) as usize;
                            (count >= need, false)
                        }
                        OpName::Promote => {
                            (!plans[f].promoted.is_empty(), !plans[f].promotes.is_empty())
                        }
                        // A migration is no restart: what follows stays.
                        // A failed, blocked `first` runs for nothing that has yet to start.
                        _ => (
                            !(plans[f].targets.is_empty()
                                || (plans[f].stuck && plans[t].live_active.is_empty())),
                            !plans[f].starts.is_empty() && plans[f].migrate.is_none(),
                        ),
                    };
                    // What was running and now stops: crm_simulate words what must stop
                    // after it `required X start` (its start required first), where a
                    // resource that was not running makes it `unrunnable X start`; after a
                    // whole clone (`X running`), `required` only when the clone stops for
                    // an order of its own (not for node availability).
                    let first_plan = &plans[f];
                    let required = !first_plan.live_active.is_empty()
                        && !config.resources()[t].meta.allow_migrate
                        && if first_plan.clone || o.first_label.is_some() {
                            o.first_min.is_none()
                                && first_plan.forced.as_deref().is_some_and(order_reason)
                        } else {
                            true
                        };
                    let stopped_word = if required { "required" } else { "unrunnable" };
                    let named_reason = self
                        .second_member_stop(plans, f, k, required)
                        .or_else(|| self.blocked_by_colocation(plans, f, t));
                    // After a whole clone, a resource (not a clone) restarts only for a copy
                    // that starts or stops (is promoted, for an order on promote) where it
                    // runs (Pacemaker reads the clone's actions on the node of what follows
                    // it); another `then` for any copy started.
                    let by_node = first_plan.clone
                        && !plans[t].clone
                        && o.first_min.is_none()
                        && matches!(o.first_action, OpName::Start | OpName::Promote);
                    let first_moves: Vec<usize> = match o.first_action {
                        _ if !by_node => Vec::new(),
                        OpName::Promote => first_plan.promotes.clone(),
                        _ => first_plan
                            .starts
                            .iter()
                            .chain(&first_plan.stops)
                            .copied()
                            .collect(),
                    };
                    let first_starts = if by_node {
                        !first_moves.is_empty() && first_plan.migrate.is_none()
                    } else {
                        first_starts
                    };
                    let then = &mut plans[t];
                    if o.then_action == OpName::Promote {
                        if !first_runs && !then.promoted.is_empty() {
                            then.promoted.clear();
                            then.forced = Some(format!("unrunnable {}", first()));
                            then.derive();
                            changed = true;
                        }
                    } else if !first_runs && !o.symmetric && !then.targets.is_empty() {
                        // An order one way only (Pacemaker's symmetrical=false) holds starts:
                        // what already runs (and is not restarted) stays.
                        let stay: Vec<usize> = then
                            .targets
                            .iter()
                            .copied()
                            .filter(|i| then.live_active.contains(i) && !then.restart.contains(i))
                            .collect();
                        if stay.len() != then.targets.len() {
                            if let (true, Some(&t)) = (
                                stay.is_empty() && !then.clone && then.live_active.is_empty(),
                                then.targets.first(),
                            ) {
                                then.blocked = Some((t, format!("unrunnable {}", first())));
                            }
                            then.promoted.retain(|i| stay.contains(i));
                            then.targets = stay;
                            then.forced = Some(format!("unrunnable {}", first()));
                            then.derive();
                            changed = true;
                        }
                    } else if !first_runs && !then.targets.is_empty() {
                        if let (false, Some(&t)) = (
                            then.clone || !then.live_active.is_empty(),
                            then.targets.first(),
                        ) {
                            then.blocked = Some((t, format!("unrunnable {}", first())));
                        }
                        if then.clone {
                            let lost = then.targets.clone();
                            then.block_copies(&lost, &format!("unrunnable {}", first()));
                        }
                        then.targets.clear();
                        then.promoted.clear();
                        then.forced = Some(match named_reason {
                            Some(w) => w,
                            None => format!("{stopped_word} {}", first()),
                        });
                        then.derive();
                        changed = true;
                    } else if first_starts && o.symmetric {
                        let again: Vec<usize> = then
                            .targets
                            .iter()
                            .copied()
                            .filter(|i| !then.starts.contains(i))
                            .filter(|i| !by_node || first_moves.contains(i))
                            .collect();
                        if !again.is_empty() {
                            then.restart.extend(&again);
                            then.restarted_for.push((f, again));
                            then.forced = Some(format!("required {}", first()));
                            then.derive();
                            changed = true;
                        }
                    }
                }
            }
            changed |= self.follow_colocations(plans);
            if !changed {
                return;
            }
        }
    }

    /// The reason a group's second member stops when the first member (`f`, over the
    /// group's order number `k`) stops by an order of its own: crm_simulate names the first
    /// member's stop (the group's ordering of stops is what requires this one first). Later
    /// members, and one after a member that cannot run, name the start (None here).
    fn second_member_stop(
        &self,
        plans: &[Plan],
        f: usize,
        k: usize,
        required: bool,
    ) -> Option<String> {
        let config = self.config;
        let first_member = !config
            .orders_to(f)
            .iter()
            .any(|&(_, k2)| config.group_internal(k2));
        (required
            && config.group_internal(k)
            && first_member
            && plans[f]
                .forced
                .as_deref()
                .is_some_and(|w| w.starts_with("required ")))
        .then(|| format!("required {} stop", config.resources()[f].id))
    }

    /// The reason a resource (not a clone) that must run with `f` (INFINITY) and start after
    /// it stops when `f` cannot start for what an order requires of it: crm_simulate names
    /// the colocation (Pacemaker blocks the colocation's dependents as soon as `f`'s start
    /// is unrunnable, before it follows the order). After an `f` that cannot run at all, it
    /// names the order (None here).
    fn blocked_by_colocation(&self, plans: &[Plan], f: usize, t: usize) -> Option<String> {
        let config = self.config;
        if config.resources()[t].is_clone()
            || !plans[f]
                .forced
                .as_deref()
                .is_some_and(|w| w.starts_with("required "))
        {
            return None;
        }
        config
            .colocated_with(t)
            .iter()
            .find(|c| {
                c.with == f
                    && c.score == Score::INFINITY
                    && c.places()
                    && !c.internal
                    && !c.by_role()
                    && c.with_set.is_none()
            })
            .map(|_| {
                let spec = &config.resources()[f];
                let name = spec.copies.as_ref().and_then(|c| c.name.as_deref());
                format!("colocation with {}", name.unwrap_or(&spec.id))
            })
    }

    /// What must run with a resource (INFINITY) that an order has kept from where it was
    /// placed does not run there either (Pacemaker's `pcmk__block_colocation_dependents`):
    /// `Stop R ( N ) due to colocation with W`, or a `(blocked)` start. Returns whether a
    /// plan changed.
    fn follow_colocations(&self, plans: &mut [Plan]) -> bool {
        let config = self.config;
        let mut changed = false;
        for d in 0..plans.len() {
            for c in config.colocated_with(d) {
                if c.with_unpromoted && c.score == Score::MINUS_INFINITY && c.places() {
                    // Away from where `with` runs unpromoted: a copy an order demotes (or
                    // keeps from its promotion) after this one was placed beside it leaves
                    // no room there (`Stop R ( N ) due to colocation with W`).
                    let w = self.with_plan(c, plans);
                    let p = &plans[d];
                    let lost: Vec<usize> = p
                        .targets
                        .iter()
                        .copied()
                        .filter(|i| w.targets.contains(i) && !w.promoted.contains(i))
                        .collect();
                    drop(w);
                    if !p.acts || lost.is_empty() {
                        continue;
                    }
                    plans[d].withdraw(&lost, format!("colocation with {}", self.with_name(c)));
                    changed = true;
                    continue;
                }
                if c.promoted && c.score == Score::INFINITY && !c.by_role() {
                    // The promoted role with what an order kept from where it was placed: the
                    // promotion there cannot happen (`Promote R ( ... ) due to colocation with
                    // W (blocked)`); the copy itself still runs.
                    let w = self.with_plan(c, plans);
                    let p = &plans[d];
                    let lost: Vec<usize> = p
                        .promoted
                        .iter()
                        .copied()
                        .filter(|i| !w.targets.contains(i) && w.assigned.contains(i))
                        .filter(|i| !p.promoted_now.contains(i))
                        .collect();
                    let acts = p.acts;
                    drop(w);
                    if !acts || lost.is_empty() {
                        continue;
                    }
                    let p = &mut plans[d];
                    let why = format!("colocation with {}", self.with_name(c));
                    for &i in &lost {
                        if !p.blocked_promotions.iter().any(|b| b.0 == i) {
                            p.blocked_promotions.push((i, why.clone()));
                        }
                    }
                    p.promoted.retain(|i| !lost.contains(i));
                    p.derive();
                    changed = true;
                    continue;
                }
                if c.score != Score::INFINITY || !c.places() || c.by_role() || c.internal {
                    continue;
                }
                let w = self.with_plan(c, plans);
                let p = &plans[d];
                // A clone holds its dependents back only when no copy can run at all.
                if !p.acts || (w.clone && !w.targets.is_empty()) {
                    continue;
                }
                // Only what orders took away since placing (a colocation loop may leave a
                // dependent where its primary never was); a copy of the primary that an
                // interleaved order unassigned holds nothing back: Pacemaker unassigns it
                // after placing what is colocated with it, and blocks dependents only when a
                // copy's start is unrunnable, not absent.
                let lost: Vec<usize> = p
                    .targets
                    .iter()
                    .copied()
                    .filter(|i| {
                        !w.targets.contains(i)
                            && w.assigned.contains(i)
                            && !w.unassigned.contains(i)
                    })
                    .collect();
                drop(w);
                if lost.is_empty() {
                    continue;
                }
                plans[d].withdraw(&lost, format!("colocation with {}", self.with_name(c)));
                changed = true;
            }
        }
        changed
    }

    /// Symmetric mandatory orders stop `then` before `first`: when `then` cannot stop (failed
    /// and blocked where it runs, or held by such a resource itself), `first` cannot stop
    /// either and keeps running; the summary lists its stop as `(blocked)`. Repeated along
    /// chains (groups included); a plan only ever turns to staying, so this ends.
    fn block_stops(&self, plans: &mut [Plan]) {
        let config = self.config;
        loop {
            let mut changed = false;
            for (k, o) in config.orders().iter().enumerate() {
                if o.kind != OrderKind::Mandatory || !o.symmetric || config.interleaved(k) {
                    continue;
                }
                let (Some(f), Some(t)) = (
                    config.resource_index(&o.first),
                    config.resource_index(&o.then),
                ) else {
                    continue;
                };
                let held = {
                    let then = &plans[t];
                    !then.live_active.is_empty() && (then.stuck || !then.blocked_stops.is_empty())
                };
                let first = &plans[f];
                if !held || !first.acts || first.stops.is_empty() || !first.blocked_stops.is_empty()
                {
                    continue;
                }
                // As crm_simulate words a stop held this way: one placed nowhere keeps its
                // own reason (node availability); one restarted because what it follows
                // restarts is `required X stop` (that stop needs it first); any other is
                // `unrunnable T stop` (the held stop of what follows it).
                let reason = if first.targets.is_empty() {
                    self.stop_reason(first)
                } else if let Some(x) = first
                    .restarted_for
                    .iter()
                    .map(|&(x, _)| x)
                    // A running resource (not a clone) that restarts: its stop needs this
                    // one's first.
                    .find(|&x| !plans[x].live_active.is_empty() && !plans[x].clone)
                {
                    Some(StopReason::Order(format!(
                        "required {} stop",
                        config.resources()[x].id
                    )))
                } else {
                    Some(StopReason::Order(format!(
                        "unrunnable {} stop",
                        config.resources()[t].id
                    )))
                };
                let first = &mut plans[f];
                first.blocked_stops = first.stops.clone();
                first.blocked_stop_reason = reason;
                first.targets = first.live_active.clone();
                first.promoted = first.promoted_now.clone();
                // A copy that stays promoted where it cannot stop leaves no room to promote
                // again one that is demoted for its failure (`on_fail = "demote"`).
                let max = config.resources()[f]
                    .promotable()
                    .map_or(usize::MAX, |p| p.promoted_max as usize);
                if first.promoted.len() > max {
                    let again = std::mem::take(&mut first.repromote);
                    first.promoted.retain(|i| !again.contains(i));
                }
                first.restart.clear();
                first.migrate = None;
                first.derive();
                Self::undo_restarts_for(f, plans);
                changed = true;
            }
            if !changed {
                return;
            }
        }
    }

    /// `f` no longer starts (its stop is held): what restarted only for its start stays
    /// as it runs, and so on down the orders.
    fn undo_restarts_for(f: usize, plans: &mut [Plan]) {
        let mut held = vec![f];
        while let Some(f) = held.pop() {
            for (t, p) in plans.iter_mut().enumerate() {
                let Some(k) = p.restarted_for.iter().position(|(by, _)| *by == f) else {
                    continue;
                };
                let (_, nodes) = p.restarted_for.remove(k);
                let still: Vec<usize> = p
                    .restarted_for
                    .iter()
                    .flat_map(|(_, n)| n.iter().copied())
                    .collect();
                let before = p.restart.len();
                p.restart
                    .retain(|i| !nodes.contains(i) || still.contains(i));
                if p.restart.len() == before {
                    continue;
                }
                if p.restarted_for.is_empty() && p.forced.as_deref().is_some_and(order_reason) {
                    p.forced = None;
                }
                p.derive();
                if p.starts.is_empty() {
                    held.push(t);
                }
            }
        }
    }

    /// Mandatory orders on `first`'s promotion whose `first` is promoted nowhere now: `then`
    /// runs nowhere (as `apply_orders` decides, for promotions a held stop took away).
    fn drop_unpromoted_orders(&self, plans: &mut [Plan]) {
        let config = self.config;
        for (k, o) in config.orders().iter().enumerate() {
            if o.kind != OrderKind::Mandatory
                || o.first_action != OpName::Promote
                || config.interleaved(k)
            {
                continue;
            }
            let (Some(f), Some(t)) = (
                config.resource_index(&o.first),
                config.resource_index(&o.then),
            ) else {
                continue;
            };
            if !plans[f].promoted.is_empty() || !plans[t].acts {
                continue;
            }
            let then = &mut plans[t];
            let gone = match o.then_action {
                OpName::Promote => !std::mem::take(&mut then.promoted).is_empty(),
                _ => {
                    let had = !then.targets.is_empty();
                    then.targets.clear();
                    then.promoted.clear();
                    had
                }
            };
            if gone {
                then.forced = Some(format!("unrunnable {} promote", o.first));
                then.derive();
            }
        }
    }

    /// A resource whose stop cannot happen stays where it runs: what must never run beside
    /// it (a -INFINITY colocation, either way) does not start there, and stops there if it
    /// runs there (nor, by its promoted role, is it promoted there), though placing, which
    /// took it for stopped, chose that node.
    /// Whether it changed a plan.
    fn keep_away_from_blocked_stops(&mut self, plans: &mut [Plan]) -> bool {
        let config = self.config;
        let mut changed = false;
        for r in 0..plans.len() {
            for c in config.colocated_with(r) {
                if c.score != Score::MINUS_INFINITY {
                    continue;
                }
                for (stays, other, promoted) in
                    [(c.with, r, c.promoted), (r, c.with, c.with_promoted)]
                {
                    // What does not act (blocked, unmanaged) stays where it is too.
                    if plans[stays].blocked_stops.is_empty() || !plans[other].acts {
                        continue;
                    }
                    let held = plans[stays].blocked_stops.clone();
                    // By its promoted role: promoted where the one that stays is not (the
                    // choice made again, now that it is known to stay); else no start there.
                    if promoted {
                        if plans[other].promoted.iter().any(|i| held.contains(i)) {
                            let max = config.resources()[other]
                                .promotable()
                                .map_or(0, |pr| pr.promoted_max as usize);
                            let scores = std::mem::replace(&mut self.opts.scores, false);
                            let chosen =
                                self.choose_promoted(other, &plans[other], max, plans, false);
                            self.opts.scores = scores;
                            let p = &mut plans[other];
                            let now = p.promoted_now.clone();
                            p.promoted = chosen
                                .into_iter()
                                .filter(|i| !held.contains(i) || now.contains(i))
                                .collect();
                            p.derive();
                            changed = true;
                        }
                        continue;
                    }
                    let p = &mut plans[other];
                    let before = p.targets.len();
                    p.targets.retain(|i| !held.contains(i));
                    if p.targets.len() != before {
                        let targets = p.targets.clone();
                        p.promoted.retain(|i| targets.contains(i));
                        p.derive();
                        changed = true;
                    }
                }
            }
        }
        changed
    }

    /// Which moves are live migrations: a primitive with `allow_migrate`, managed, running
    /// on one reachable node, not failed nor restarted where it goes, moving to another
    /// (Pacemaker's `pcmk__rsc_can_migrate`). A resource whose `first` (of a symmetric order)
    /// stops in the same transition is stopped and started instead, so its stop comes before
    /// that one.
    fn plan_migrations(&self, plans: &mut [Plan]) {
        let config = self.config;
        for r in 0..plans.len() {
            let spec = &config.resources()[r];
            let p = &plans[r];
            // Only OCF agents have migrate_to and migrate_from.
            let ocf = matches!(spec.agent, crate::config::Agent::Ocf { .. });
            if !spec.meta.allow_migrate
                || !ocf
                || !p.acts
                || p.clone
                || !p.unclean_active.is_empty()
            {
                plans[r].migrate = None;
                continue;
            }
            let (&[f], &[t]) = (p.stops.as_slice(), p.starts.as_slice()) else {
                plans[r].migrate = None;
                continue;
            };
            // Its migrate_to comes after the start of what it must run after (a mandatory
            // order) and before that one's stop (which follows its own): something that both
            // stops and starts without migrating holds it to a stop and a start (Pacemaker's
            // migration loop, `unrunnable A stop`). One that only stops or only starts does
            // not, nor does an optional order.
            let moving_first = config.orders_to(r).iter().find_map(|&(first, k)| {
                let o = &config.orders()[k];
                let fp = &plans[first];
                (o.symmetric
                    && o.kind == OrderKind::Mandatory
                    && !o.then_group
                    && !fp.stops.is_empty()
                    && !fp.starts.is_empty()
                    && fp.migrate.is_none())
                .then(|| {
                    let spec = &config.resources()[first];
                    let name = spec.copies.as_ref().and_then(|c| c.name.as_deref());
                    format!("unrunnable {} stop", name.unwrap_or(&spec.id))
                })
            });
            let stopping_first = moving_first.is_some();
            let ok = f != t
                && p.live_active == [f]
                && !p.failed.contains(&f)
                // A restart where it leaves (a definition changed there) is no restart:
                // it starts on the other node with the definition now.
                && p.restart.iter().all(|&i| i == f)
                && p.forced.is_none()
                && !stopping_first;
            plans[r].migrate = ok.then_some((f, t));
            plans[r].no_migrate = moving_first.filter(|_| !ok);
        }
    }

    /// Turns plans into actions: probes; then, in reverse order, demotes and stops (each after
    /// the undoing of what is ordered after it); then, in order, starts and promotes (each
    /// after its own probes, demotes and stops, the fencing it waits for, and what is ordered
    /// before it). With `notify`, each kind of action is wrapped in pre and post notifications.
    fn emit(&mut self, plans: &[Plan]) {
        let config = self.config;
        let n = plans.len();
        let mut done: Vec<Emitted> = vec![Emitted::default(); n];
        let unfences = self.unfence(plans);
        let unfenced_first = |r: usize| config.resources()[r].after_unfencing();
        for &r in config.action_order() {
            for &i in &plans[r].probes {
                let deps = match unfences[i] {
                    Some(u) if unfenced_first(r) => vec![u],
                    _ => Vec::new(),
                };
                let a = self.push(self.kind(OpName::Monitor, r, i), deps);
                done[r].probes.push(a);
            }
        }
        let probed = self.probes_above(plans, &done);
        let mut deferred_stop: Vec<Vec<ActionId>> = vec![Vec::new(); n];
        for &r in config.action_order().iter().rev() {
            let p = &plans[r];
            // The inverse of an order: what `then` undoes (stop or demote) comes before what
            // `first` undoes (demote before an order on `promote`, stop otherwise).
            let mut after = [Vec::new(), Vec::new()];
            // Interleaved clones: each copy's stop waits for the other clone's stop on its
            // own node only.
            let mut stop_after_on: Vec<Vec<ActionId>> = Vec::new();
            for &(t, k) in config.orders_from(r) {
                let o = &config.orders()[k];
                if !(o.symmetric || o.kind == OrderKind::Serialize) {
                    continue;
                }
                if config.interleaved(k) {
                    stop_after_on.resize(self.nodes.len(), Vec::new());
                    for (&i, &a) in plans[t].stops.iter().zip(&done[t].stops) {
                        stop_after_on[i].push(a);
                    }
                    continue;
                }
                let slot = usize::from(o.first_action == OpName::Promote);
                after[slot].extend(done[t].undone(o.then_action));
            }
            let [mut before_stop, mut before_demote] = after;
            // What the probes of a resource it depends on find can undo the reason to stop
            // it (a cleaned-up resource found running): those probes come first.
            if let Some(probed) = &probed {
                before_stop.extend(&probed[r]);
                before_demote.extend(&probed[r]);
            }
            let ids = self.emit_round(
                r,
                p,
                OpName::Demote,
                &p.demotes,
                (before_demote, &[]),
                &mut done,
            );
            done[r].demotes = ids;
            let mut stop_deps = before_stop;
            stop_deps.extend(&done[r].demotes);
            if p.migrate.is_some() {
                // Stopped where it was only after it migrated (in the start round).
                deferred_stop[r] = stop_deps;
                continue;
            }
            let ids = self.emit_round(
                r,
                p,
                OpName::Stop,
                &p.stops,
                (stop_deps, &stop_after_on),
                &mut done,
            );
            done[r].stops = ids;
        }
        let mut unfences = unfences;
        for (i, u) in self.unfence_again(plans, &done).into_iter().enumerate() {
            unfences[i] = unfences[i].or(u);
        }
        for &r in config.action_order() {
            let p = &plans[r];
            let mut before: [Vec<ActionId>; 2] = [Vec::new(), Vec::new()];
            // Interleaved clones: each copy's start waits for the other clone's start on its
            // own node only.
            let mut start_after_on: Vec<Vec<ActionId>> = Vec::new();
            for &(f, k) in config.orders_to(r) {
                let o = &config.orders()[k];
                if config.interleaved(k) {
                    start_after_on.resize(self.nodes.len(), Vec::new());
                    for (&i, &a) in plans[f].starts.iter().zip(&done[f].starts) {
                        start_after_on[i].push(a);
                    }
                    continue;
                }
                let slot = usize::from(o.then_action == OpName::Promote);
                before[slot].extend(done[f].done(o.first_action));
                if o.kind == OrderKind::Serialize {
                    before[slot].extend(&done[f].stops);
                }
            }
            let [start_before, promote_before] = before;
            let mut deps = done[r].probes.clone();
            deps.extend(&done[r].demotes);
            deps.extend(&done[r].stops);
            let mut start_deps = deps.clone();
            start_deps.extend(start_before);
            if !p.clone {
                start_deps.extend(&p.fences);
            }
            // Where it starts on a node unfenced in this transition, after the unfence.
            if unfenced_first(r) && p.starts.iter().any(|&i| unfences[i].is_some()) {
                start_after_on.resize(self.nodes.len(), Vec::new());
                for &i in &p.starts {
                    start_after_on[i].extend(unfences[i]);
                }
            }
            if let Some((f, t)) = p.migrate {
                // migrate_to where it runs, migrate_from where it goes, then the stop where
                // it was; what waits for its start waits for the migrate_from.
                let resource = config.resources()[r].id.clone();
                let (from, to) = (config.nodes()[f].clone(), config.nodes()[t].clone());
                start_deps.sort_unstable();
                start_deps.dedup();
                let mt = self.push(
                    ActionKind::MigrateTo {
                        resource: resource.clone(),
                        node: from.clone(),
                        target: to.clone(),
                    },
                    start_deps,
                );
                let mf = self.push(
                    ActionKind::MigrateFrom {
                        resource: resource.clone(),
                        node: to,
                        source: from.clone(),
                    },
                    vec![mt],
                );
                deferred_stop[r].push(mf);
                done[r].starts = vec![mf];
                continue;
            }
            let ids = self.emit_round(
                r,
                p,
                OpName::Start,
                &p.starts,
                (start_deps, &start_after_on),
                &mut done,
            );
            done[r].starts = ids;
            let mut promote_deps = deps;
            promote_deps.extend(&done[r].starts);
            promote_deps.extend(&p.fences);
            promote_deps.extend(promote_before);
            let ids = self.emit_round(
                r,
                p,
                OpName::Promote,
                &p.promotes,
                (promote_deps, &[]),
                &mut done,
            );
            done[r].promotes = ids;
            for &i in p.reloads.iter().filter(|i| !p.stops.contains(i)) {
                let kind = self.kind(OpName::Reload, r, i);
                self.push(kind, done[r].probes.clone());
            }
        }
        // The stops where migrated resources were, last, in reverse order: each after its
        // migrate_from and after the stops of what is ordered after it.
        for &r in config.action_order().iter().rev() {
            let Some((f, _)) = plans[r].migrate else {
                continue;
            };
            let mut deps = std::mem::take(&mut deferred_stop[r]);
            for &(t, k) in config.orders_from(r) {
                if config.orders()[k].symmetric {
                    deps.extend(&done[t].stops);
                }
            }
            deps.sort_unstable();
            deps.dedup();
            let kind = self.kind(OpName::Stop, r, f);
            done[r].stops = vec![self.push(kind, deps)];
        }
    }

    /// For each resource, the probes of the resources it depends on, directly or not (the
    /// `first` of its orders, the resources it is colocated with); None when the transition
    /// probes nothing.
    fn probes_above(&self, plans: &[Plan], done: &[Emitted]) -> Option<Vec<Vec<ActionId>>> {
        if done.iter().all(|d| d.probes.is_empty()) {
            return None;
        }
        let config = self.config;
        let n = done.len();
        let mut out: Vec<Vec<ActionId>> = vec![Vec::new(); n];
        for r in (0..n).filter(|&r| !plans[r].stops.is_empty() || !plans[r].demotes.is_empty()) {
            let mut seen = vec![false; n];
            seen[r] = true;
            let mut stack = vec![r];
            while let Some(x) = stack.pop() {
                let ups = config
                    .orders_to(x)
                    .iter()
                    .map(|&(f, _)| f)
                    .chain(config.colocated_with(x).iter().map(|c| c.with));
                for u in ups {
                    if !seen[u] {
                        seen[u] = true;
                        out[r].extend(&done[u].probes);
                        stack.push(u);
                    }
                }
            }
        }
        Some(out)
    }

    /// The action running `op` (a probe for `Monitor`) of resource `r` on node `i`.
    /// Notifications are built by [`Scheduler::notify`].
    fn kind(&self, op: OpName, r: usize, i: usize) -> ActionKind {
        let resource = self.config.resources()[r].id.clone();
        let node = self.config.nodes()[i].clone();
        match op {
            OpName::Monitor => ActionKind::Probe { resource, node },
            OpName::Start => ActionKind::Start { resource, node },
            OpName::Stop => ActionKind::Stop { resource, node },
            OpName::Promote => ActionKind::Promote { resource, node },
            OpName::Reload => ActionKind::Reload { resource, node },
            // Migrations and notifications are built where they are emitted, with their peer
            // or notification; a demote is what is left.
            OpName::Demote | OpName::Notify | OpName::MigrateTo | OpName::MigrateFrom => {
                ActionKind::Demote { resource, node }
            }
        }
    }

    /// Emits the `op` actions of resource `r` on `nodes`, each after `deps.0` and after
    /// `deps.1[node]` when given (and, for a demote or stop, after the demote on its own
    /// node); with notifications, after a pre
    /// notification of the copies active before them, and followed by a post notification of
    /// those active after them. Returns the action ids, in node order.
    fn emit_round(
        &mut self,
        r: usize,
        p: &Plan,
        op: OpName,
        nodes: &[usize],
        (mut deps, on_node): (Vec<ActionId>, &[Vec<ActionId>]),
        done: &mut [Emitted],
    ) -> Vec<ActionId> {
        if nodes.is_empty() {
            return Vec::new();
        }
        let copies = self.config.resources()[r].copies.as_ref();
        let notify = copies.is_some_and(|pr| pr.notify);
        // An ordered clone's copies start one after another and stop in reverse.
        let serial =
            copies.is_some_and(|pr| pr.ordered) && matches!(op, OpName::Start | OpName::Stop);
        // Serial: the actions in node order (stops in reverse). Ids are returned in `nodes`'
        // order.
        let mut turn: Vec<usize> = (0..nodes.len()).collect();
        if serial {
            turn.sort_unstable_by_key(|&k| nodes[k]);
            if op == OpName::Stop {
                turn.reverse();
            }
        }
        deps.extend(&done[r].notified);
        // Who is running before and after this round.
        let before: Vec<usize> = match op {
            OpName::Demote | OpName::Stop => p.live_active.clone(),
            OpName::Start => p
                .live_active
                .iter()
                .copied()
                .filter(|i| !p.stops.contains(i))
                .collect(),
            _ => p.targets.clone(),
        };
        let after: Vec<usize> = match op {
            OpName::Stop => before
                .iter()
                .copied()
                .filter(|i| !p.stops.contains(i))
                .collect(),
            OpName::Start => p.targets.clone(),
            _ => before.clone(),
        };
        if notify {
            let pre = self.notify(r, p, op, NotifyKind::Pre, &before, deps.clone());
            deps.extend(pre);
        }
        let mut ids = vec![0; nodes.len()];
        deps.sort_unstable();
        deps.dedup();
        let mut previous = None;
        for k in turn {
            let i = nodes[k];
            let mut d = deps.clone();
            if let Some(more) = on_node.get(i).filter(|m| !m.is_empty()) {
                d.extend(more);
            }
            if let (true, Some(p)) = (serial, previous) {
                d.push(p);
            }
            d.sort_unstable();
            d.dedup();
            let id = self.push(self.kind(op, r, i), d);
            ids[k] = id;
            previous = Some(id);
        }
        if notify {
            done[r].notified = self.notify(r, p, op, NotifyKind::Post, &after, ids.clone());
        }
        ids
    }

    /// Whether node `i` is unfenced again in this transition, after what requires unfencing
    /// there stops: it was unfenced, and an unfencing device that runs there changed.
    fn unfenced_again(&self, i: usize) -> bool {
        self.device_changed[i].is_some()
            && self
                .state
                .node(&self.config.nodes()[i])
                .is_some_and(|s| s.unfenced)
    }

    /// The unfence actions of nodes unfenced again (see [`Self::unfenced_again`]), by node:
    /// each after the stops there of what requires unfencing and of fence devices, so that
    /// they start again after it.
    fn unfence_again(&mut self, plans: &[Plan], done: &[Emitted]) -> Vec<Option<ActionId>> {
        let config = self.config;
        (0..self.nodes.len())
            .map(|i| {
                if !self.unfenced_again(i) {
                    return None;
                }
                let deps: Vec<ActionId> = config
                    .action_order()
                    .iter()
                    .filter(|&&r| config.resources()[r].after_unfencing())
                    .flat_map(|&r| {
                        plans[r]
                            .stops
                            .iter()
                            .zip(&done[r].stops)
                            .filter(|&(&n, _)| n == i)
                            .map(|(_, &a)| a)
                    })
                    .collect();
                let reason = self.device_changed[i].unwrap_or_default().to_owned();
                Some(self.push_unfence(i, reason, deps))
            })
            .collect()
    }

    /// The unfence actions of this transition, by node (Pacemaker's `pcmk__order_vs_unfence`):
    /// a node that can run resources and has not been unfenced since it joined is unfenced
    /// before a fence device or what requires unfencing is probed or started there. The
    /// reason names the first such action (probes first, in action order), as crm_simulate's
    /// `Fence (on) N 'required by R monitor'`.
    fn unfence(&mut self, plans: &[Plan]) -> Vec<Option<ActionId>> {
        let config = self.config;
        let mut out = vec![None; self.nodes.len()];
        if !config.unfencing_enabled() {
            return out;
        }
        let needs = |r: usize| config.resources()[r].after_unfencing();
        for (i, name) in config.nodes().iter().enumerate() {
            let v = &self.nodes[i];
            let node = self.state.node(name);
            if !v.reachable()
                || v.pending
                || node.is_none_or(|s| s.shutdown || s.unfenced)
                || !config.fence_devices_for(name).any(|d| d.unfence)
            {
                continue;
            }
            // A changed unfencing device unfences its node whatever runs there.
            let reason = self.device_changed[i].map(str::to_owned);
            let trigger = config
                .action_order()
                .iter()
                .find(|&&r| needs(r) && plans[r].probes.contains(&i))
                .map(|&r| (r, "monitor"))
                .or_else(|| {
                    config
                        .action_order()
                        .iter()
                        .find(|&&r| needs(r) && plans[r].starts.contains(&i))
                        .map(|&r| (r, "start"))
                });
            let reason = match (reason, trigger) {
                (Some(reason), _) => reason,
                (None, Some((r, task))) => {
                    format!("required by {} {task}", config.resources()[r].id)
                }
                (None, None) => continue,
            };
            out[i] = Some(self.push_unfence(i, reason, Vec::new()));
        }
        out
    }

    /// Unfences node number `i` after `deps`: the summary's `Fence (on) N 'reason'` and the
    /// action.
    fn push_unfence(&mut self, i: usize, reason: String, deps: Vec<ActionId>) -> ActionId {
        let node = self.config.nodes()[i].clone();
        self.out.summary.push(Change::Fence {
            node: node.clone(),
            reason: reason.clone(),
            action: "on".to_owned(),
        });
        self.push(ActionKind::Unfence { node, reason }, deps)
    }

    /// One round of notifications of `op` to the copies on `to`, each after `deps`.
    fn notify(
        &mut self,
        r: usize,
        p: &Plan,
        op: OpName,
        kind: NotifyKind,
        to: &[usize],
        mut deps: Vec<ActionId>,
    ) -> Vec<ActionId> {
        let names = |v: &[usize]| -> Vec<String> {
            v.iter().map(|&i| self.config.nodes()[i].clone()).collect()
        };
        let inactive: Vec<usize> = (0..self.nodes.len())
            .filter(|i| !p.live_active.contains(i))
            .collect();
        let unpromoted: Vec<usize> = p
            .live_active
            .iter()
            .copied()
            .filter(|i| !p.promoted_now.contains(i))
            .collect();
        let n = Notification {
            kind,
            operation: op,
            start: names(&p.starts),
            stop: names(&p.stops),
            promote: names(&p.promotes),
            demote: names(&p.demotes),
            active: names(&p.live_active),
            promoted: names(&p.promoted_now),
            unpromoted: names(&unpromoted),
            inactive: names(&inactive),
        };
        deps.sort_unstable();
        deps.dedup();
        let resource = self.config.resources()[r].id.clone();
        to.iter()
            .map(|&i| {
                let kind = ActionKind::Notify {
                    resource: resource.clone(),
                    node: self.config.nodes()[i].clone(),
                    notification: Box::new(n.clone()),
                };
                self.push(kind, deps.clone())
            })
            .collect()
    }

    /// Node number `i`'s attribute `name` as rules read it: the built-in `#uname`, `#id`,
    /// `#kind` and `#is_dc`, else the state's (set at run time), else the failure
    /// attributes, else the file's.
    fn node_attribute(&self, i: usize, name: &str) -> Option<&str> {
        let config = self.config;
        let node = config.nodes()[i].as_str();
        match name {
            "#uname" | "#id" => return Some(node),
            "#kind" => return Some("cluster"),
            "#is_dc" => {
                return Some(if self.state.dc.as_deref() == Some(node) {
                    "true"
                } else {
                    "false"
                });
            }
            "#cluster-name" => return Some(config.cluster.name.as_str()),
            _ => {}
        }
        self.state
            .node_attributes
            .get(node)
            .and_then(|a| a.get(name))
            .map(String::as_str)
            .or_else(|| {
                self.failure_attrs[i]
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.as_str())
            })
            .or_else(|| {
                config
                    .node_attributes(i)
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.as_str())
            })
    }

    /// What the rule locations of resource `r` in `role` add on node `i` (None: no rule
    /// matches there).
    fn rule_score(&self, r: usize, i: usize, promoted: bool) -> Option<Score> {
        let mut out: Option<Score> = None;
        for l in self.config.rule_locations_of(r) {
            if (l.role == OpRole::Promoted) != promoted {
                continue;
            }
            if !l.rule.matches(&|k| self.node_attribute(i, k), self.now) {
                continue;
            }
            let s = match &l.score {
                RuleScore::Score(s) => *s,
                RuleScore::Attribute(a) => self
                    .node_attribute(i, a)
                    .map_or(Score::MINUS_INFINITY, Score::parse_lenient),
            };
            out = Some(out.unwrap_or(Score::ZERO).add(s));
        }
        out
    }

    /// The score of every node for resource `r` (Pacemaker's placement rules).
    fn scores(&self, r: usize, live_active: &[usize], plans: &[Plan]) -> Vec<Score> {
        self.scores_as(r, live_active, plans, false)
    }

    /// [`Scheduler::scores`]; with `as_if_quorate`, what is kept from starting only by the
    /// lost quorum counts where it would start (for the `(blocked)` lines: Pacemaker places
    /// resources before it looks at quorum).
    fn scores_as(
        &self,
        r: usize,
        live_active: &[usize],
        plans: &[Plan],
        as_if_quorate: bool,
    ) -> Vec<Score> {
        let config = self.config;
        let mut scores = self.base_scores(r, &self.eff, live_active);
        // An instance of a clone goes nowhere that already has `clone_node_max` of them:
        // those placed, and those not placed yet that keep the node they run on (see
        // `preallocated`).
        if let Some(inst) = &config.resources()[r].instance {
            let members = config.instances_of(&inst.of).unwrap_or_default();
            let kept = self.preallocation(inst);
            let mut taken = vec![0usize; scores.len()];
            for (k, &m) in members.iter().enumerate().filter(|&(_, &m)| m != r) {
                if plans[m].placed {
                    for &i in &plans[m].targets {
                        taken[i] += 1;
                    }
                } else if let Some(i) = kept[k] {
                    taken[i] += 1;
                }
            }
            for (s, &t) in scores.iter_mut().zip(&taken) {
                if t >= inst.clone_node_max as usize {
                    *s = Score::MINUS_INFINITY;
                }
            }
        }
        // Colocations: with the nodes the other resource will run (or be promoted) on; it
        // was placed before. The highest priority first, then clones.
        let resources = config.resources();
        let mut cons: Vec<&ColocRef> = config
            .colocated_with(r)
            .iter()
            .filter(|c| c.places())
            .collect();
        cons.sort_by_key(|c| {
            (
                std::cmp::Reverse(resources[c.with].meta.priority),
                !resources[c.with].is_clone(),
                !resources[c.with].is_promotable(),
            )
        });
        for c in cons {
            let with = self.with_plan(c, plans);
            if !with.placed {
                continue;
            }
            let held: Vec<usize> = match &with.blocked {
                Some((t, why)) if as_if_quorate && with.targets.is_empty() && why == NO_QUORUM => {
                    vec![*t]
                }
                _ if as_if_quorate && with.clone => with
                    .targets
                    .iter()
                    .copied()
                    .chain(
                        with.blocked_copies
                            .iter()
                            .filter(|(_, why)| why == NO_QUORUM)
                            .map(|&(i, _)| i),
                    )
                    .collect(),
                _ => Vec::new(),
            };
            let on = if held.is_empty() {
                with.colocated_nodes(c)
            } else {
                std::borrow::Cow::Owned(held)
            };
            self.apply_colocation(&mut scores, c, &on);
        }
        // What is colocated with it pulls it (Pacemaker's merge of colocated node scores).
        if !config.resources()[r].is_clone() {
            let mut visiting = vec![false; config.resources().len()];
            visiting[r] = true;
            for &(d, score) in config.dependents_of(r) {
                self.merge_dependent(r, d, &mut scores, fraction(score), plans, &mut visiting, 0);
            }
        }
        scores
    }

    /// One colocation of the resource being placed with `with` (placed on `on`), as
    /// Pacemaker applies it: a mandatory one bans the nodes `with` is not on (all of them
    /// when it is nowhere) and adds nothing where it is, so the resource's own preferences
    /// still choose among those; an optional one adds its score where `with` is, and takes
    /// it from every node when `with` (not a clone) runs nowhere. An optional one that
    /// would leave no node allowed is not applied.
    fn apply_colocation(&self, scores: &mut Vec<Score>, c: &ColocRef, on: &[usize]) {
        let clone =
            self.config.resources()[c.with].is_clone() || c.by_role() || c.with_set.is_some();
        let mut work = scores.clone();
        for (i, s) in work.iter_mut().enumerate() {
            if on.is_empty() && !clone {
                if c.score.value() > 0 {
                    *s = s.add(Score::new(-c.score.value()));
                }
            } else if on.contains(&i) {
                if c.score != Score::INFINITY {
                    *s = s.add(c.score);
                }
            } else if c.score == Score::INFINITY {
                *s = Score::MINUS_INFINITY;
            }
        }
        let mandatory = c.score == Score::INFINITY || c.score == Score::MINUS_INFINITY;
        if mandatory || work.iter().any(|s| s.value() >= 0) {
            *scores = work;
        }
    }

    /// Adds the node scores of `d` (a resource colocated with the one being placed), scaled by
    /// `factor` (the colocation's score over INFINITY), then of what is colocated with `d`, as
    /// Pacemaker's `pcmk__add_colocated_node_scores`: a negative preference of a dependent
    /// that avoids its primary is not counted, and scores that would leave no node allowed are
    /// rolled back.
    #[allow(clippy::too_many_arguments)]
    fn merge_dependent(
        &self,
        r: usize,
        d: usize,
        nodes: &mut Vec<Score>,
        factor: f64,
        plans: &[Plan],
        visiting: &mut [bool],
        depth: usize,
    ) {
        let config = self.config;
        let spec = &config.resources()[d];
        // A chain of colocations deeper than this adds nothing more (and keeps the recursion
        // well inside any thread's stack).
        if visiting[d] || spec.is_clone() || depth >= MERGE_DEPTH {
            return;
        }
        visiting[d] = true;
        let mut base = self.dependent_base(d);
        // A dependent whose placement is placing this one has taken in its colocations with
        // what is already placed (Pacemaker applies each as soon as its primary is placed).
        if self.places(d, r) {
            let mut own = (*base).clone();
            for c in config.colocated_with(d).iter().filter(|c| c.places()) {
                let with = self.with_plan(c, plans);
                if with.placed {
                    self.apply_colocation(&mut own, c, &with.colocated_nodes(c));
                }
            }
            base = std::rc::Rc::new(own);
        }
        let mut work = nodes.clone();
        for (i, w) in work.iter_mut().enumerate() {
            let score = base[i].value();
            if factor < 0.0 && score < 0 {
                continue;
            }
            *w = Score::new(scaled(score, factor)).add(*w);
        }
        if work.iter().any(|s| s.value() >= 0) {
            let sign = if factor < 0.0 { -1.0 } else { 1.0 };
            for &(d2, score) in config.dependents_of(d) {
                self.merge_dependent(
                    r,
                    d2,
                    &mut work,
                    sign * fraction(score),
                    plans,
                    visiting,
                    depth + 1,
                );
            }
            *nodes = work;
        }
        visiting[d] = false;
    }

    /// Whether placing `d` is what places `r` (`r` is placed while `d`'s primaries are).
    fn places(&self, d: usize, r: usize) -> bool {
        let mut at = r;
        for _ in 0..self.within.len() {
            match self.within.get(at).copied().flatten() {
                Some(p) if p == d => return true,
                Some(p) => at = p,
                None => return false,
            }
        }
        false
    }

    /// [`Scheduler::base_scores`] of resource `d`, from its own state (computed once a run).
    fn dependent_base(&self, d: usize) -> std::rc::Rc<Vec<Score>> {
        if let Some(b) = self.dependent_base.borrow().get(d).cloned().flatten() {
            return b;
        }
        let eff = self.effective_everywhere(d);
        let active: Vec<usize> = (0..eff.len())
            .filter(|&i| eff[i].role.is_active() && self.nodes[i].reachable())
            .collect();
        let b = std::rc::Rc::new(self.base_scores(d, &eff, &active));
        if let Some(slot) = self.dependent_base.borrow_mut().get_mut(d) {
            *slot = Some(std::rc::Rc::clone(&b));
        }
        b
    }

    /// The shutdown lock that holds resource `r` to a node now, if any (`shutdown_lock`): not
    /// once expired, nor while it is active anywhere but on its node shutting down (then the
    /// lock has nothing left to keep, as Pacemaker cancels it).
    fn lock(&self, r: usize) -> Option<&'a crate::state::ShutdownLock> {
        self.state.shutdown_lock(
            &self.config.cluster,
            &self.config.resources()[r].id,
            self.now,
        )
    }

    /// The score of every node for resource `r` before colocations: locations (and rules, a
    /// move), -INFINITY where it may not run (bans, failures, unavailable nodes, every node
    /// but the one a shutdown lock holds it to), and its stickiness where it runs when it
    /// runs on one node.
    fn base_scores(&self, r: usize, eff: &[Effective], live_active: &[usize]) -> Vec<Score> {
        let config = self.config;
        let spec = &config.resources()[r];
        let rs = self.state.resource(&spec.id);
        let fatal = eff.iter().any(|e| e.fatal);
        let lock = self.lock(r);
        // Exclusive discovery: only the nodes of its exclusive locations.
        let exclusive = config.exclusive_discovery(r);
        let mut scores: Vec<Option<Score>> =
            vec![config.cluster.symmetric.then_some(Score::ZERO); self.nodes.len()];
        for &(i, s) in config.locations_of(r) {
            scores[i] = Some(scores[i].unwrap_or(Score::ZERO).add(s));
        }
        // Node health counts as a location of every resource (a negative one not for those
        // allowed on unhealthy nodes).
        for (i, &h) in self.health.iter().enumerate() {
            if h != Score::ZERO && (h.value() > 0 || !spec.meta.allow_unhealthy_nodes) {
                scores[i] = Some(scores[i].unwrap_or(Score::ZERO).add(h));
            }
        }
        for (i, score) in scores.iter_mut().enumerate() {
            if let Some(s) = self.rule_score(r, i, false) {
                *score = Some(score.unwrap_or(Score::ZERO).add(s));
            }
        }
        if let Some(rs) = rs {
            if let Some(i) = rs.moved_to.as_deref().and_then(|n| config.node_index(n)) {
                scores[i] = Some(scores[i].unwrap_or(Score::ZERO).add(Score::INFINITY));
            }
        }
        scores
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let name = &config.nodes()[i];
                let e = &eff[i];
                let banned = rs.is_some_and(|rs| rs.banned.contains(name))
                    || (exclusive && !config.discovers(r, i))
                    || lock.is_some_and(|l| l.node != *name);
                if fatal || banned || e.hard_ban || e.threshold_reached || !self.nodes[i].can_run()
                {
                    return Score::MINUS_INFINITY;
                }
                let mut s = s.unwrap_or(Score::MINUS_INFINITY);
                if live_active.contains(&i) {
                    s = s.add(spec.meta.resource_stickiness);
                }
                s
            })
            .collect()
    }

    /// A resource's scores for [`Scheduler::assignment_order`]: [`Scheduler::dependent_base`],
    /// but a clone's without its copies' stickiness, which Pacemaker gives the instances, not
    /// the clone it sorts.
    fn sort_base(&self, d: usize) -> std::rc::Rc<Vec<Score>> {
        let spec = &self.config.resources()[d];
        if spec.copies.is_none() || spec.meta.resource_stickiness == Score::ZERO {
            return self.dependent_base(d);
        }
        std::rc::Rc::new(self.base_scores(d, &self.effective_everywhere(d), &[]))
    }

    /// Resource `d` on every node, from its own state.
    fn effective_everywhere(&self, d: usize) -> Vec<Effective> {
        let spec = &self.config.resources()[d];
        let rs = self.state.resource(&spec.id);
        self.config
            .nodes()
            .iter()
            .map(|n| {
                rs.and_then(|rs| rs.nodes.get(n))
                    .map_or_else(Effective::default, |on| on.effective(&spec.meta, self.now))
            })
            .collect()
    }

    /// The order resources are placed in ([`Config::assignment_order`]); under another
    /// placement strategy, as Pacemaker sorts them then: what has the higher score where it
    /// runs first (what runs before what does not), then the higher score on the first node
    /// (most capacity first under `balanced`) where they differ.
    fn assignment_order(&self) -> (std::borrow::Cow<'a, [usize]>, Vec<Option<usize>>) {
        let config = self.config;
        if config.cluster.placement_strategy == PlacementStrategy::Default {
            return (
                std::borrow::Cow::Borrowed(config.assignment_order()),
                config.assignment_within().to_vec(),
            );
        }
        let resources = config.resources();
        let units = config.placement_units();
        let mut sorted = config.units_by_priority();
        let mut nodes: Vec<usize> = (0..config.nodes().len()).collect();
        if config.cluster.placement_strategy == PlacementStrategy::Balanced {
            nodes.sort_by(|&a, &b| self.compare_capacities(a, b).then(a.cmp(&b)));
        }
        let keys: Vec<(Score, Vec<Score>)> = units
            .iter()
            .map(|unit| {
                // A group's score on a node is its members' lowest there: a member's failure
                // bans the whole group (Pacemaker bans a group member's failure on the group).
                let mut base = (*self.sort_base(unit[0])).clone();
                for &m in &unit[1..] {
                    for (b, s) in base.iter_mut().zip(self.sort_base(m).iter()) {
                        *b = (*b).min(*s);
                    }
                }
                // With what it is colocated with, as Pacemaker sorts (its scores taken in,
                // scaled by the colocation's): a clone banned from a node bans what must
                // run with it there.
                for &m in unit {
                    for c in config.colocated_with(m) {
                        if !c.places()
                            || c.internal
                            || c.by_role()
                            || c.with_set.is_some()
                            || c.score.value() <= 0
                            || unit.contains(&c.with)
                        {
                            continue;
                        }
                        let primary = self.sort_base(c.with);
                        for (b, s) in base.iter_mut().zip(primary.iter()) {
                            *b = b.add(Score::new(scaled(s.value(), fraction(c.score))));
                        }
                    }
                }
                let current = unit
                    .iter()
                    .find_map(|&m| self.running_on(m))
                    .map_or(Score::MINUS_INFINITY, |i| base[i]);
                (current, nodes.iter().map(|&i| base[i]).collect())
            })
            .collect();
        sorted.sort_by(|&a, &b| {
            let pa = resources[units[a][0]].meta.priority;
            let pb = resources[units[b][0]].meta.priority;
            pb.cmp(&pa)
                .then(keys[b].0.cmp(&keys[a].0))
                .then_with(|| keys[b].1.cmp(&keys[a].1))
        });
        let (order, within) = config.assign_in(&sorted);
        (std::borrow::Cow::Owned(order), within)
    }

    /// The first reachable node where resource `r` is active now.
    fn running_on(&self, r: usize) -> Option<usize> {
        let spec = &self.config.resources()[r];
        let rs = self.state.resource(&spec.id)?;
        self.config.nodes().iter().enumerate().find_map(|(i, n)| {
            let on = rs.nodes.get(n)?;
            (on.effective(&spec.meta, self.now).role.is_active() && self.nodes[i].reachable())
                .then_some(i)
        })
    }

    /// Resource `r` is placed on node `i`: one more resource there, and (placement strategies
    /// other than `default`) less capacity left.
    fn place_on(&mut self, r: usize, i: usize) {
        let node = &mut self.nodes[i];
        node.load += 1;
        if self.config.cluster.placement_strategy == PlacementStrategy::Default {
            return;
        }
        for (name, used) in &self.config.resources()[r].utilization {
            add_amount(&mut node.remaining, name, used.saturating_neg());
        }
    }

    /// What node `i` has left of capacity `name` (none: 0).
    fn remaining(&self, i: usize, name: &str) -> i64 {
        self.nodes[i]
            .remaining
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0, |(_, v)| *v)
    }

    /// Whether node `i` has the capacity left for `need` (always, under `default`).
    fn has_capacity(&self, i: usize, need: &[(String, i64)]) -> bool {
        self.config.cluster.placement_strategy == PlacementStrategy::Default
            || need.iter().all(|(n, v)| self.remaining(i, n) >= *v)
    }

    /// Pacemaker's comparison of two nodes' capacity left: by how many capacities one has
    /// more of than the other. Less means `a` has more left.
    fn compare_capacities(&self, a: usize, b: usize) -> std::cmp::Ordering {
        let mut result = 0i32;
        let names = self.nodes[a]
            .remaining
            .iter()
            .chain(&self.nodes[b].remaining)
            .map(|(n, _)| n.as_str())
            .collect::<std::collections::BTreeSet<&str>>();
        for n in names {
            match self.remaining(a, n).cmp(&self.remaining(b, n)) {
                std::cmp::Ordering::Greater => result -= 1,
                std::cmp::Ordering::Less => result += 1,
                std::cmp::Ordering::Equal => {}
            }
        }
        result.cmp(&0)
    }

    /// Bans the nodes without the capacity left for resource `r` (placement strategies other
    /// than `default`), as Pacemaker: for `r` and what is colocated with it (mandatory, both
    /// ways, not placed yet) together when some node holds them all; else for `r` alone, and
    /// then the node with the most capacity left is preferred.
    fn ban_insufficient_capacity(
        &self,
        r: usize,
        scores: &mut [Score],
        plans: &[Plan],
    ) -> Option<usize> {
        let config = self.config;
        if config.cluster.placement_strategy == PlacementStrategy::Default {
            return None;
        }
        let resources = config.resources();
        // What goes with r: mandatory colocations either way, not placed yet.
        let with = self.colocated_need(r, plans);
        let sum = need_sum(&resources[r].utilization, &with[1..], config);
        let available: Vec<usize> = (0..scores.len())
            .filter(|&i| scores[i].value() >= 0)
            .collect();
        let any = available.iter().any(|&i| self.has_capacity(i, &sum));
        let (need, prefer) = if any {
            (&sum, None)
        } else {
            let most = available.iter().copied().reduce(|m, i| {
                if self.compare_capacities(i, m).is_lt() {
                    i
                } else {
                    m
                }
            });
            (&resources[r].utilization, most)
        };
        for &i in &available {
            if !self.has_capacity(i, need) {
                scores[i] = Score::MINUS_INFINITY;
            }
        }
        prefer
    }

    /// Highest score wins; ties go to the node it runs on, then the least loaded, then the
    /// first in configuration order. A negative score means "cannot run here".
    fn choose(&self, scores: &[Score], live_active: &[usize]) -> Option<usize> {
        let strategy = self.config.cluster.placement_strategy;
        (0..scores.len())
            .filter(|&i| scores[i].value() >= 0)
            .min_by(|&a, &b| {
                let key = |i: usize| {
                    let here = live_active.contains(&i);
                    (
                        std::cmp::Reverse(scores[i]),
                        !(here && scores[i].value() > 0),
                    )
                };
                let rest = |i: usize| (self.nodes[i].load, !live_active.contains(&i));
                key(a).cmp(&key(b)).then_with(|| match strategy {
                    // Fewest nodes: no balancing, the first node in order.
                    PlacementStrategy::Minimal => a.cmp(&b),
                    PlacementStrategy::Balanced => self
                        .compare_capacities(a, b)
                        .then_with(|| rest(a).cmp(&rest(b)))
                        .then(a.cmp(&b)),
                    _ => rest(a).cmp(&rest(b)).then(a.cmp(&b)),
                })
            })
    }

    /// Why a resource that stops is stopped, for the summary.
    fn stop_reason(&self, p: &Plan) -> Option<StopReason> {
        if p.delayed.is_some() {
            Some(StopReason::CrashLoop)
        } else if let Some(why) = &p.forced {
            Some(StopReason::Order(why.clone()))
        } else if !p.want_run
            && !p.clone
            && self.state.no_quorum
            && self.config.cluster.no_quorum_policy != NoQuorumPolicy::Ignore
        {
            // (A clone's copies stop for node availability, as crm_simulate says.)
            Some(StopReason::NoQuorum)
        } else if p.want_run || p.fatal || p.targets.is_empty() {
            // As Pacemaker: a stop of what is placed nowhere (target role stopped included)
            // is for node availability.
            Some(StopReason::NodeAvailability)
        } else {
            None
        }
    }

    /// The summary lines of a promotable resource: one per copy that changes, by node.
    /// `Reload R ( N )` for each copy reloaded in place.
    fn summarize_reloads(&mut self, r: usize, p: &Plan) {
        for &i in p.reloads.iter().filter(|i| !p.stops.contains(i)) {
            self.out.summary.push(Change::Reload {
                resource: self.config.resources()[r].id.clone(),
                node: self.config.nodes()[i].clone(),
            });
        }
    }

    /// The summary lines of a clone: one per copy that changes. A copy that stops on one
    /// node while another starts elsewhere moves (Pacemaker's instance keeps its identity),
    /// paired in node order. Copies of a promotable resource carry their roles, as
    /// crm_simulate prints them.
    fn summarize_copies(&mut self, r: usize, plans: &[Plan]) {
        let p = &plans[r];
        if !p.acts {
            return;
        }
        // A member of a cloned group whose group runs on a node already (another member
        // runs there) starts there as part of that copy of the group: nothing moves to it.
        let mates = self.config.unit_of(r);
        let group_here = |i: usize| {
            mates
                .iter()
                .any(|&m| m != r && plans[m].live_active.contains(&i))
        };
        let names = self.config.nodes();
        let spec = &self.config.resources()[r];
        let promotable = spec.is_promotable();
        let id = spec.id.clone();
        let role =
            |promoted: bool| promotable.then_some(if promoted { "Promoted" } else { "Unpromoted" });
        let roles = |a: bool, b: bool| role(a).zip(role(b));
        // Copies on nodes being fenced stop with the fence.
        let gone: Vec<usize> = p
            .stops
            .iter()
            .chain(&p.unclean_active)
            .copied()
            .filter(|i| !p.starts.contains(i))
            .collect();
        let new: Vec<usize> = p
            .starts
            .iter()
            .copied()
            .filter(|&i| !p.stops.contains(&i) && !group_here(i))
            .collect();
        // Copies that leave a node they may still run on (standby, unclean) move to new
        // nodes first; then copies not running anywhere (Pacemaker's inactive instances)
        // take new nodes, before copies that leave a node they are banned from: the order
        // Pacemaker assigns its instances in (`pcmk__cmp_instance`).
        let max = spec
            .copies
            .as_ref()
            .map_or(names.len(), |c| c.max_copies(names.len()));
        // A copy on a node to be fenced that the clone does not wait for is another
        // instance (an orphan to Pacemaker): it stops, it does not move.
        let orphans: &[usize] = if spec.needs_fencing() || max == names.len() {
            &[]
        } else {
            &p.unclean_active
        };
        let spare =
            max.saturating_sub(p.live_active.len() + p.unclean_active.len() - orphans.len());
        let (banned, allowed): (Vec<usize>, Vec<usize>) = gone
            .iter()
            .filter(|i| !orphans.contains(i))
            .partition(|i| p.disallowed.contains(i));
        let moved: Vec<(usize, usize)> = allowed
            .iter()
            .copied()
            .zip(new.iter().copied())
            .chain(
                banned
                    .iter()
                    .copied()
                    .zip(new.iter().copied().skip(allowed.len() + spare)),
            )
            .collect();
        // A failed copy restarting where it was while a copy starts on a new node: Pacemaker's
        // failed instance (no stickiness keeps it) takes the new node, and a fresh one starts
        // where it was: `Recover R ( N1 -> N2 )` and `Start R ( N1 )`.
        let unmatched: Vec<usize> = new
            .iter()
            .copied()
            .filter(|t| !moved.iter().any(|&(_, m)| m == *t))
            .collect();
        let swapped: Vec<(usize, usize)> = p
            .failed
            .iter()
            .copied()
            .filter(|i| !promotable && p.stops.contains(i) && p.starts.contains(i))
            .zip(unmatched)
            .collect();
        for &(f, _) in &swapped {
            self.out.summary.push(Change::Start {
                resource: id.clone(),
                node: names[f].clone(),
            });
        }
        let moved: Vec<(usize, usize)> = moved.into_iter().chain(swapped).collect();
        for &(f, t) in &moved {
            let (from, to) = (names[f].clone(), names[t].clone());
            let roles = roles(
                p.promoted_now.contains(&f) && !p.no_demote.contains(&f),
                p.promotes.contains(&t),
            );
            let change = if p.failed.contains(&f) {
                Change::Recover {
                    resource: id.clone(),
                    from,
                    to,
                    roles,
                }
            } else {
                Change::Move {
                    resource: id.clone(),
                    from,
                    to,
                    roles,
                    reason: None,
                }
            };
            self.out.summary.push(change);
        }
        let paired = |i: usize| moved.iter().any(|&(f, t)| f == i || t == i);
        for (i, name) in names.iter().enumerate() {
            if paired(i) {
                continue;
            }
            let node = name.clone();
            let resource = id.clone();
            let fenced = p.unclean_active.contains(&i);
            // A copy blocked by its own failure (or whose stop failed) on a lost node that
            // cannot be fenced is past the cluster's reach: no line, as crm_simulate lists
            // an unmanaged instance.
            let stop_failed = || {
                self.state
                    .resource(&id)
                    .and_then(|rs| rs.nodes.get(name))
                    .is_some_and(|on| {
                        on.failed_ops.iter().any(|(k, op)| {
                            k.name == OpName::Stop && on.last_start.is_none_or(|t| op.time >= t)
                        })
                    })
            };
            if fenced && self.nodes[i].stranded() && (p.blocked_on.contains(&i) || stop_failed()) {
                continue;
            }
            let (stop, start) = (p.stops.contains(&i) || fenced, p.starts.contains(&i));
            let (demote, promote) = (p.demotes.contains(&i), p.promotes.contains(&i));
            // A copy whose demote failed reads as unpromoted, as Pacemaker records it (it
            // is stopped without another demote, before anything is promoted).
            let was_promoted = (p.promoted_now.contains(&i) && !p.no_demote.contains(&i))
                || (fenced
                    && self
                        .state
                        .resource(&id)
                        .and_then(|rs| rs.nodes.get(name))
                        .is_some_and(|on| on.role == Role::Promoted));
            let change = if stop && start {
                match (&p.forced, p.failed.contains(&i)) {
                    // Another agent: no reason, as crm_simulate.
                    (None, false) if p.redefined.contains(&i) => Change::Restart {
                        resource,
                        node,
                        reason: None,
                        role: role(was_promoted),
                    },
                    // Restarted into another role than it had: one line with both roles,
                    // as crm_simulate.
                    (Some(why), false) => Change::Restart {
                        resource,
                        node,
                        reason: Some(why.clone()),
                        role: match (promotable, was_promoted, promote) {
                            (true, false, true) => Some("Unpromoted -> Promoted"),
                            (true, true, false) => Some("Promoted -> Unpromoted"),
                            _ => role(was_promoted),
                        },
                    },
                    // One line with the roles before and after, as crm_simulate.
                    _ => {
                        self.out.summary.push(Change::Recover {
                            resource,
                            from: node.clone(),
                            to: node,
                            roles: roles(was_promoted, promote),
                        });
                        continue;
                    }
                }
            } else if stop {
                // A copy on a node it would not be placed on anyway stops for that.
                // One an interleaved order took away (its `first` has no copy placed there)
                // stops with no reason, as crm_simulate lists an unassigned instance.
                let reason = match self.stop_reason(p) {
                    _ if p.unassigned.contains(&i) => None,
                    Some(StopReason::Order(_)) if !p.assigned.contains(&i) => {
                        Some(StopReason::NodeAvailability)
                    }
                    other => other,
                };
                Change::Stop {
                    resource,
                    node,
                    reason,
                    role: role(was_promoted),
                    blocked: fenced && self.nodes[i].stranded(),
                }
            } else if start && promote {
                Change::Promote {
                    resource,
                    node,
                    from: Role::Stopped,
                    blocked: None,
                }
            } else if let Some((_, why)) = p
                .blocked_promotions
                .iter()
                .find(|b| b.0 == i && !promote && !demote)
            {
                Change::Promote {
                    resource,
                    node,
                    from: if start { Role::Stopped } else { Role::Started },
                    blocked: Some(why.clone()),
                }
            } else if start {
                Change::Start { resource, node }
            } else if demote && promote {
                Change::Repromote { resource, node }
            } else if demote {
                Change::Demote { resource, node }
            } else if promote {
                Change::Promote {
                    resource,
                    node,
                    from: Role::Started,
                    blocked: None,
                }
            } else {
                continue;
            };
            self.out.summary.push(change);
        }
        for (i, why) in &p.blocked_copies {
            if !p.starts.contains(i) && !p.live_active.contains(i) {
                self.out.summary.push(Change::BlockedStart {
                    resource: id.clone(),
                    node: names[*i].clone(),
                    reason: why.clone(),
                });
            }
        }
    }

    /// The summary line(s) of one resource's plan.
    fn summarize(&mut self, r: usize, p: &Plan) {
        if !p.acts {
            return;
        }
        if !p.blocked_stops.is_empty() {
            for &i in &p.blocked_stops {
                self.out.summary.push(Change::Stop {
                    resource: self.config.resources()[r].id.clone(),
                    node: self.config.nodes()[i].clone(),
                    reason: p.blocked_stop_reason.clone(),
                    role: None,
                    blocked: true,
                });
            }
            return;
        }
        let names = self.config.nodes();
        let spec = &self.config.resources()[r];
        let id = spec.id.clone();
        let name = |i: usize| names[i].clone();
        let mut from: Vec<usize> = p
            .live_active
            .iter()
            .chain(&p.unclean_active)
            .copied()
            .collect();
        from.sort_unstable();
        let target = p.target();
        let change = match (from.as_slice(), target) {
            ([], Some(t)) if !p.starts.is_empty() => Change::Start {
                resource: id,
                node: name(t),
            },
            ([], _) => match &p.blocked {
                Some((t, why)) => Change::BlockedStart {
                    resource: id,
                    node: name(*t),
                    reason: why.clone(),
                },
                None => return,
            },
            (&[f], Some(t)) if f == t => {
                if !p.restarts_in_place() {
                    return;
                }
                match (&p.forced, p.failed.contains(&f)) {
                    (Some(why), false) => Change::Restart {
                        resource: id,
                        node: name(t),
                        reason: Some(why.clone()),
                        role: None,
                    },
                    (None, false) if p.redefined.contains(&f) => Change::Restart {
                        resource: id,
                        node: name(t),
                        reason: None,
                        role: None,
                    },
                    _ => Change::Recover {
                        resource: id,
                        from: name(f),
                        to: name(t),
                        roles: None,
                    },
                }
            }
            (&[f], Some(t)) if p.failed.contains(&f) => Change::Recover {
                resource: id,
                from: name(f),
                to: name(t),
                roles: None,
            },
            (&[f], Some(t)) if p.migrate.is_some() => Change::Migrate {
                resource: id,
                from: name(f),
                to: name(t),
            },
            (&[f], Some(t)) => Change::Move {
                resource: id,
                from: name(f),
                to: name(t),
                roles: None,
                reason: p.no_migrate.clone(),
            },
            (&[f], None) => Change::Stop {
                resource: id,
                node: name(f),
                // Frozen without quorum where it could run elsewhere, it is not taken off its
                // unclean node, only kept from starting anew: crm_simulate gives its blocked
                // stop there no reason (where it can run nowhere, node availability).
                reason: if self.nodes[f].stranded() && p.frozen {
                    None
                } else {
                    self.stop_reason(p)
                },
                role: None,
                // On a node that is unclean and cannot be fenced, nothing can stop it.
                blocked: self.nodes[f].stranded(),
            },
            (many, target) => {
                // Active on several nodes and staying on one of them: one line, a restart
                // where it stays, whether it restarts there or only its other copies stop
                // (`stop_unexpected`), as crm_simulate lists it (the other copies' stops only
                // when it stops everywhere or cannot start). Copies on nodes to be fenced stop
                // with them: nothing to say.
                if let Some(t) = target.filter(|t| many.contains(t)) {
                    let stops_live = p.stops.iter().any(|i| p.live_active.contains(i));
                    if !p.restarts_in_place() && !stops_live {
                        return;
                    }
                    // Failed on any of them: recovered (Pacemaker marks the whole resource).
                    self.out.summary.push(if p.failed.is_empty() {
                        Change::Restart {
                            resource: id,
                            node: name(t),
                            reason: p.forced.clone(),
                            role: None,
                        }
                    } else {
                        Change::Recover {
                            resource: id,
                            from: name(t),
                            to: name(t),
                            roles: None,
                        }
                    });
                    return;
                }
                // Placed nowhere, each copy stops for that reason.
                let reason = if target.is_none() {
                    self.stop_reason(p)
                } else {
                    None
                };
                for &f in many {
                    if Some(f) != target {
                        self.out.summary.push(Change::Stop {
                            resource: id.clone(),
                            node: name(f),
                            reason: reason.clone(),
                            role: None,
                            blocked: self.nodes[f].stranded(),
                        });
                    }
                }
                match target {
                    Some(t) if !many.contains(&t) => Change::Start {
                        resource: id,
                        node: name(t),
                    },
                    _ => return,
                }
            }
        };
        self.out.summary.push(change);
    }
}
