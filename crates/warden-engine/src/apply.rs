//! Events and how each one changes the state: operation results (with every row of the
//! per-action failure table), node membership, fencing, quorum and admin commands.

use crate::config::{
    Config, Digests, INFINITY_COUNT, OnFail, OpName, OpRole, ResourceSpec, TargetRole, TicketAction,
};
use crate::rc::{self, ExecStatus, FailureClass};
use crate::score::Score;
use crate::state::{OpKey, OpRecord, ResourceOnNode, Role, State};
use crate::time::Time;

/// Something that happened. Every state change goes through one of these.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// An operation finished (probe, start, stop, monitor, ...). A timeout is rc 1.
    OpResult(OpResult),
    /// A node joined or rejoined the cluster (a restarted daemon rejoins): everything on it is
    /// probed again, except blocked resources, which get no operation until cleanup.
    NodeUp { node: String },
    /// A node was lost without a clean shutdown.
    NodeDown { node: String },
    /// A node's daemon is shutting down: every resource leaves the node in the engine's order
    /// (stops of what depends on a resource before its own), as Pacemaker's shutdown does.
    /// The node runs nothing until it joins again ([`Event::NodeUp`]).
    NodeShutdown { node: String },
    /// A fence action finished.
    Fenced { node: String, ok: bool },
    /// An unfence action (the devices' `on`) finished.
    Unfenced { node: String, ok: bool },
    /// The cluster gained (true) or lost (false) quorum.
    Quorum(bool),
    /// An operator's command.
    Admin(AdminCommand),
    /// The agent of a promotable resource set (Some) or removed (None) its promotion score on
    /// a node (Pacemaker's `crm_master`; here `warden promotion-score`).
    PromotionScore {
        resource: String,
        node: String,
        score: Option<Score>,
    },
}

/// The result of one operation of a resource agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpResult {
    pub resource: String,
    pub node: String,
    pub op: OpKey,
    pub rc: i32,
    /// The agent's `ocf-exit-reason:` line, or a reason of the executor's ("timed out").
    pub exit_reason: String,
    /// Whether the agent ran at all: an agent the executor could not find is a hard error
    /// nothing ignores or expires ([`ExecStatus::NotInstalled`]).
    pub status: ExecStatus,
    /// For a start or a reload: the definition digests of what runs now (None: the
    /// configuration's current ones). Recorded with the result, so a replay under a changed
    /// configuration still knows what runs.
    pub digest: Option<Digests>,
}

/// Operator commands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminCommand {
    /// Forget failures and history of a resource (all when None) on a node (all when None),
    /// and probe again.
    Cleanup {
        resource: Option<String>,
        node: Option<String>,
    },
    /// Stop the resource where it runs (on `node` only, when given), with everything that
    /// depends on it (orders, colocations, groups), and start it all again.
    Restart {
        resource: String,
        node: Option<String>,
    },
    Enable {
        resource: String,
    },
    Disable {
        resource: String,
    },
    /// Prefer this node with +INFINITY until `clear`.
    Move {
        resource: String,
        node: String,
    },
    /// Forbid this node with -INFINITY until `clear`.
    Ban {
        resource: String,
        node: String,
    },
    /// Remove the `move` and `ban` constraints of a resource.
    Clear {
        resource: String,
    },
    Standby {
        node: String,
    },
    Online {
        node: String,
    },
    /// Set (Some) or delete (None) a node attribute that rules read (Pacemaker's
    /// `crm_attribute -l reboot`, `attrd_updater`).
    NodeAttribute {
        node: String,
        name: String,
        value: Option<String>,
    },
    /// Grant, revoke, put on standby or activate a ticket (Pacemaker's `crm_ticket`).
    Ticket {
        ticket: String,
        action: TicketAction,
    },
}

impl AdminCommand {
    /// The resource it names, if any.
    pub fn resource(&self) -> Option<&str> {
        match self {
            AdminCommand::Cleanup { resource, .. } => resource.as_deref(),
            AdminCommand::Restart { resource, .. }
            | AdminCommand::Enable { resource }
            | AdminCommand::Disable { resource }
            | AdminCommand::Move { resource, .. }
            | AdminCommand::Ban { resource, .. }
            | AdminCommand::Clear { resource } => Some(resource),
            _ => None,
        }
    }

    /// The same command for resource `id` instead.
    pub fn for_resource(&self, id: &str) -> AdminCommand {
        let mut c = self.clone();
        match &mut c {
            AdminCommand::Cleanup { resource, .. } => *resource = Some(id.to_owned()),
            AdminCommand::Restart { resource, .. }
            | AdminCommand::Enable { resource }
            | AdminCommand::Disable { resource }
            | AdminCommand::Move { resource, .. }
            | AdminCommand::Ban { resource, .. }
            | AdminCommand::Clear { resource } => *resource = id.to_owned(),
            _ => {}
        }
        c
    }
}

/// As the CLI says it (`disable web`, `move web to n2`): how logs and the audit trail name a
/// command.
impl std::fmt::Display for AdminCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdminCommand::Cleanup { resource, node } => {
                write!(
                    f,
                    "cleanup {}",
                    resource.as_deref().unwrap_or("(every resource)")
                )?;
                if let Some(n) = node {
                    write!(f, " on {n}")?;
                }
                Ok(())
            }
            AdminCommand::Restart { resource, node } => {
                write!(f, "restart {resource}")?;
                if let Some(n) = node {
                    write!(f, " on {n}")?;
                }
                Ok(())
            }
            AdminCommand::Enable { resource } => write!(f, "enable {resource}"),
            AdminCommand::Disable { resource } => write!(f, "disable {resource}"),
            AdminCommand::Move { resource, node } => write!(f, "move {resource} to {node}"),
            AdminCommand::Ban { resource, node } => write!(f, "ban {resource} from {node}"),
            AdminCommand::Clear { resource } => write!(f, "clear {resource}"),
            AdminCommand::Standby { node } => write!(f, "standby {node}"),
            AdminCommand::Online { node } => write!(f, "online {node}"),
            AdminCommand::Ticket { ticket, action } => write!(f, "ticket {action} {ticket}"),
            AdminCommand::NodeAttribute {
                node,
                name,
                value: Some(v),
            } => write!(f, "attribute {name}={v} on {node}"),
            AdminCommand::NodeAttribute {
                node,
                name,
                value: None,
            } => write!(f, "attribute {name} deleted on {node}"),
        }
    }
}

/// An event that names something the configuration does not have.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error("unknown resource {0:?}")]
    UnknownResource(String),
    #[error("unknown node {0:?}")]
    UnknownNode(String),
    #[error("bad ticket name {0:?}: use letters, digits, '-', '_' and '.'")]
    BadTicket(String),
    #[error(
        "bad attribute name {0:?}: letters, digits, '_', '.', ':', '-' (and '#' after the first; a leading '#' is Warden's own)"
    )]
    BadAttribute(String),
    /// A restart of a resource that does not run there.
    #[error("{resource} is not started{}", node.as_ref().map(|n| format!(" on {n}")).unwrap_or_default())]
    NotActive {
        resource: String,
        node: Option<String>,
    },
}

/// Whether an operation result is the one the scheduler expected: an unexpected result aborts
/// the running transition so the scheduler can decide again. A recurring monitor of the
/// promoted role expects "running promoted" (8, or 191 degraded).
pub fn expected(spec: &ResourceSpec, op: OpKey, rc: i32) -> bool {
    match op.name {
        OpName::Monitor if op.interval_ms == 0 => rc == rc::NOT_RUNNING,
        OpName::Monitor if spec.monitor_role(op.interval()) == OpRole::Stopped => {
            rc == rc::NOT_RUNNING
        }
        OpName::Monitor if spec.monitor_role(op.interval()) == OpRole::Promoted => {
            matches!(rc, rc::RUNNING_PROMOTED | rc::DEGRADED_PROMOTED)
        }
        OpName::Monitor => matches!(rc, rc::OK | rc::DEGRADED),
        OpName::Start
        | OpName::Promote
        | OpName::Demote
        | OpName::Reload
        | OpName::MigrateTo
        | OpName::MigrateFrom => matches!(rc, rc::OK | rc::DEGRADED),
        OpName::Stop => matches!(rc, rc::OK | rc::NOT_RUNNING),
        OpName::Notify => true,
    }
}

/// Applies one event at time `now`. Unknown names are refused and change nothing.
pub fn apply(
    config: &Config,
    state: &mut State,
    event: &Event,
    now: Time,
) -> Result<(), ApplyError> {
    match event {
        Event::OpResult(r) => op_result(config, state, r, now),
        Event::NodeUp { node } => {
            check_node(config, node)?;
            let fencing = config.fencing_enabled();
            let n = state.nodes.entry(node.clone()).or_default();
            n.online = true;
            n.shutdown = false;
            // Joined: no longer pending, and unfenced again before what needs it runs here
            // (Pacemaker forgets a node's `#node-unfenced` when it leaves).
            n.pending = false;
            n.unfenced = false;
            // Whatever ran there is unknown now: probe it again. A node still waiting to be
            // fenced keeps what it ran until the fence says otherwise.
            if !(fencing && n.unclean.is_some()) {
                reset_node(state, node, Role::Unknown, false);
            }
            Ok(())
        }
        Event::NodeDown { node } => {
            check_node(config, node)?;
            let fencing = config.fencing_enabled();
            let n = state.nodes.entry(node.clone()).or_default();
            n.pending = false;
            n.unfenced = false;
            if n.online {
                n.online = false;
                if fencing && n.unclean.is_none() {
                    n.unclean = Some("peer is no longer part of the cluster".to_owned());
                }
            }
            if !fencing {
                // Without fencing a lost node is taken as stopped at once; a rejoin re-probes it.
                reset_node(state, node, Role::Stopped, false);
                forget_promotion_scores(state, node);
            }
            Ok(())
        }
        Event::NodeShutdown { node } => {
            check_node(config, node)?;
            let n = state.nodes.entry(node.clone()).or_default();
            n.shutdown = true;
            // It leaves: unfenced again when it joins.
            n.unfenced = false;
            if config.cluster.shutdown_lock {
                lock_for_shutdown(config, state, node, now);
            }
            Ok(())
        }
        Event::Fenced { node, ok } => {
            check_node(config, node)?;
            if *ok {
                let n = state.nodes.entry(node.clone()).or_default();
                n.online = false;
                n.unclean = None;
                n.unfenced = false;
                // The node is down: nothing runs there, blocked or not.
                reset_node(state, node, Role::Stopped, true);
                forget_promotion_scores(state, node);
            }
            Ok(())
        }
        Event::Unfenced { node, ok } => {
            check_node(config, node)?;
            if *ok {
                state.nodes.entry(node.clone()).or_default().unfenced = true;
            }
            Ok(())
        }
        Event::PromotionScore {
            resource,
            node,
            score,
        } => {
            check_resource(config, resource)?;
            check_node(config, node)?;
            let scores = &mut state
                .resources
                .entry(resource.clone())
                .or_default()
                .promotion_scores;
            match score {
                Some(s) => scores.insert(node.clone(), *s),
                None => scores.remove(node),
            };
            Ok(())
        }
        Event::Quorum(q) => {
            state.no_quorum = !q;
            Ok(())
        }
        Event::Admin(cmd) => admin(config, state, cmd),
    }
}

/// Sets the role of every resource recorded on `node` and forgets that it was failed or
/// degraded there (failure history and fail counts stay). Blocked resources are left alone
/// unless `unblock` (the node was fenced: nothing runs there any more).
fn reset_node(state: &mut State, node: &str, role: Role, unblock: bool) {
    for rs in state.resources.values_mut() {
        if let Some(on) = rs.nodes.get_mut(node) {
            if on.blocked && !unblock {
                continue;
            }
            on.role = role;
            on.failed = false;
            on.degraded = false;
            on.blocked = false;
            on.demote_on_fail = false;
            on.demote_failed = false;
            if role == Role::Stopped {
                on.restart = false;
            }
        }
    }
}

/// `shutdown_lock`: what is active on `node` alone as it shuts down is locked to it from
/// `since` (a lock it has already stays as it was). Fence devices, clones and their instances,
/// what is not managed, and anything on an unclean node are not locked, as Pacemaker locks
/// none of them.
pub fn lock_for_shutdown(config: &Config, state: &mut State, node: &str, since: Time) {
    if state.node(node).is_some_and(|n| n.unclean.is_some()) {
        return;
    }
    for spec in config.resources() {
        if spec.is_clone()
            || spec.instance.is_some()
            || matches!(spec.agent, crate::config::Agent::Fence(_))
            || !spec.meta.is_managed
            || spec.meta.maintenance
        {
            continue;
        }
        let Some(rs) = state.resources.get_mut(&spec.id) else {
            continue;
        };
        let mut active = rs.nodes.iter().filter(|(_, on)| on.role.is_active());
        let only_here = matches!((active.next(), active.next()), (Some((n, _)), None) if n == node);
        if only_here && rs.lock.is_none() {
            rs.lock = Some(crate::state::ShutdownLock {
                node: node.to_owned(),
                since,
            });
        }
    }
}

/// Promotion scores live as long as the node runs (Pacemaker's `-l reboot`): a node that went
/// down has none until its agents set them again.
fn forget_promotion_scores(state: &mut State, node: &str) {
    for rs in state.resources.values_mut() {
        rs.promotion_scores.remove(node);
    }
}

/// A node attribute's name: 1 to 255 of letters, digits, `_ . : -` and (after the first) `#`;
/// a leading `#` is for Warden's own names (`#uname`), but for node health's (`#health...`).
pub fn valid_attribute(name: &str) -> bool {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-');
    let mut chars = name.chars();
    // `#health...`: node health (Pacemaker's name for it); other `#` names are built in.
    (chars.next().is_some_and(ok) || name.starts_with("#health"))
        && name.len() <= 255
        && chars.all(|c| ok(c) || c == '#')
}

/// A ticket name: Pacemaker's XML id characters.
pub fn valid_ticket(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn check_node(config: &Config, node: &str) -> Result<(), ApplyError> {
    config
        .node_index(node)
        .map(|_| ())
        .ok_or_else(|| ApplyError::UnknownNode(node.to_owned()))
}

fn check_resource(config: &Config, id: &str) -> Result<(), ApplyError> {
    config
        .resource_index(id)
        .map(|_| ())
        .ok_or_else(|| ApplyError::UnknownResource(id.to_owned()))
}

fn op_result(
    config: &Config,
    state: &mut State,
    r: &OpResult,
    now: Time,
) -> Result<(), ApplyError> {
    let spec = config
        .resource(&r.resource)
        .ok_or_else(|| ApplyError::UnknownResource(r.resource.clone()))?;
    check_node(config, &r.node)?;
    let fencing = config.fencing_enabled();
    let start_fatal = config.cluster.start_failure_is_fatal;
    let op = r.op;
    let ok = expected(spec, op, r.rc);
    // Started again where it was locked: the lock has done its work.
    if matches!(op.name, OpName::Start | OpName::MigrateFrom) && ok {
        if let Some(rs) = state.resources.get_mut(&r.resource) {
            if rs.lock.as_ref().is_some_and(|l| l.node == r.node) {
                rs.lock = None;
            }
        }
    }
    let on = state.on_node_mut(&r.resource, &r.node);
    on.expire(&spec.meta, now);
    let record = OpRecord {
        rc: r.rc,
        time: now,
        exit_reason: r.exit_reason.clone(),
    };

    let promotable = spec.is_promotable();
    match op.name {
        // Notification failures are ignored and never counted.
        OpName::Notify => return Ok(()),
        OpName::Monitor if op.is_probe() => {
            probe_result(on, op, r.rc, record, promotable);
            on.not_installed |= r.status == ExecStatus::NotInstalled;
            return Ok(());
        }
        OpName::Monitor if spec.monitor_role(op.interval()) == OpRole::Stopped => {
            // A monitor of where it is stopped: a result for a copy that runs here now is
            // stale; "not running" is what it expects; anything else found it running where
            // it should not: active here (and failed), so it is stopped.
            if on.role.is_active() || ok {
                return Ok(());
            }
            on.role = if matches!(r.rc, rc::RUNNING_PROMOTED | rc::FAILED_PROMOTED) && promotable {
                Role::Promoted
            } else {
                Role::Started
            };
        }
        OpName::Monitor => {
            // A late result for a copy no longer running here, or no longer in the role the
            // monitor is for, is stale.
            let promoted_monitor = spec.monitor_role(op.interval()) == OpRole::Promoted;
            if !on.role.is_active()
                || (promotable && promoted_monitor != (on.role == Role::Promoted))
            {
                return Ok(());
            }
            if ok {
                on.degraded = matches!(r.rc, rc::DEGRADED | rc::DEGRADED_PROMOTED);
                // The monitor that failed last succeeds again: the failure is past (its fail
                // count stays), as Pacemaker clears a past failure handled by restart, block,
                // ignore or demote; one handled by stop, fence or standby stands.
                let newest = on
                    .failed_ops
                    .iter()
                    .max_by_key(|(_, f)| f.time)
                    .map(|(k, _)| *k);
                let clears = matches!(
                    spec.on_fail(op.name, op.interval(), fencing),
                    OnFail::Restart | OnFail::Block | OnFail::Ignore | OnFail::Demote
                );
                if newest == Some(op) && clears {
                    on.failed = false;
                    on.blocked = false;
                    on.demote_on_fail = false;
                }
                return Ok(());
            }
            // Not running, and nobody manages it: it is stopped, not failed (nothing would
            // recover it), as Pacemaker reads it; managed again, it starts like any other.
            if r.rc == rc::NOT_RUNNING && (!spec.meta.is_managed || spec.meta.maintenance) {
                on.role = Role::Stopped;
                on.failed = false;
                on.degraded = false;
                on.digest = None;
                on.restart_digest = None;
                on.agent_digest = None;
                return Ok(());
            }
        }
        OpName::Reload => {
            if !on.role.is_active() {
                return Ok(());
            }
            // Reloaded: the copy runs the new definition. A failed reload fails the copy,
            // which is then restarted (or what its `on_fail` says).
            if ok {
                let d = r.digest.unwrap_or_else(|| Digests::of(spec));
                on.digest = Some(d.all);
                on.restart_digest = Some(d.restart);
                on.agent_digest = d.agent;
                return Ok(());
            }
        }
        // Migrated away: it still runs here until its stop.
        OpName::MigrateTo if ok => return Ok(()),
        // A failed migrate_to leaves it running here, failed: recovery stops it.
        OpName::MigrateTo => on.role = Role::Started,
        OpName::Start | OpName::Promote | OpName::Demote | OpName::MigrateFrom => {
            let start = matches!(op.name, OpName::Start | OpName::MigrateFrom);
            if start {
                on.last_start = Some(now);
            }
            if ok {
                if start {
                    let d = r.digest.unwrap_or_else(|| Digests::of(spec));
                    on.digest = Some(d.all);
                    on.restart_digest = Some(d.restart);
                    on.agent_digest = d.agent;
                }
                on.role = match op.name {
                    OpName::Promote => Role::Promoted,
                    _ => Role::Started,
                };
                on.failed = false;
                on.demote_on_fail = false;
                on.demote_failed = false;
                on.degraded = r.rc == rc::DEGRADED;
                return Ok(());
            }
            // A failed start leaves the resource active and failed: it must be stopped. A
            // failed promote or demote leaves it promoted, as far as anyone can tell. A start
            // the executor found no agent for ran nothing: it stays stopped, with no stop to
            // try where the agent is missing (Pacemaker stops it, which fails the same way).
            if !(start && r.status == ExecStatus::NotInstalled) {
                on.role = if start { Role::Started } else { Role::Promoted };
            }
            if op.name == OpName::Demote {
                on.demote_failed = true;
            }
        }
        OpName::Stop => {
            // A restart asked for is done once the copy stops (or its stop failed, which
            // recovery handles).
            on.restart = false;
            if !ok && !on.role.is_active() {
                // A stop that failed leaves it possibly running, whatever was known before.
                on.role = Role::Started;
            }
            if ok {
                on.role = Role::Stopped;
                on.digest = None;
                on.restart_digest = None;
                on.agent_digest = None;
                on.failed = false;
                on.degraded = false;
                on.demote_on_fail = false;
                on.demote_failed = false;
                return Ok(());
            }
        }
    }

    // A failure of a start, stop, recurring monitor, promote or demote. An agent the executor
    // could not find is a hard error that cannot be ignored (Pacemaker recovers it elsewhere,
    // and this keeps a stop that may have left it running from being taken for one).
    let not_installed = r.status == ExecStatus::NotInstalled;
    let class = if not_installed {
        FailureClass::Hard
    } else {
        rc::class(r.rc, op.is_recurring_monitor())
    };
    let on_fail = match spec.on_fail(op.name, op.interval(), fencing) {
        OnFail::Ignore if not_installed && op.name == OpName::Stop => OnFail::Block,
        OnFail::Ignore if not_installed => OnFail::Restart,
        on_fail => on_fail,
    };
    on.not_installed |= not_installed;
    // Failed where it may still run: to be recovered (a start that ran nothing left nothing).
    let active = !not_installed || on.role.is_active();
    on.failed_ops.insert(op, record);
    on.last_failure = Some(now);
    if on_fail != OnFail::Ignore {
        crash_loop(on, &spec.meta, op, now);
    }
    // An ignored failure is pretended a success: however hard, it bans nothing.
    match class {
        _ if on_fail == OnFail::Ignore => {}
        FailureClass::Soft => {}
        FailureClass::Hard => on.hard_ban = true,
        FailureClass::Fatal => on.fatal = true,
    }
    if on_fail != OnFail::Ignore {
        let add = match op.name {
            OpName::Stop => INFINITY_COUNT,
            OpName::Start if start_fatal => INFINITY_COUNT,
            _ => 1,
        };
        let c = on.fail_counts.entry(op).or_insert(0);
        *c = c.saturating_add(add).min(INFINITY_COUNT);
    }
    match on_fail {
        OnFail::Ignore => {
            // Pacemaker pretends the operation succeeded: the role is what success gives.
            on.failure_ignored = true;
            on.failed = false;
            if op.name == OpName::Stop {
                on.role = Role::Stopped;
            }
        }
        OnFail::Block => {
            on.failed = active;
            on.blocked = true;
        }
        OnFail::Stop => {
            on.failed = active;
            on.stop_on_fail = true;
        }
        OnFail::Restart => on.failed = active,
        // Only the promoted copy can be demoted; anything else fails as with `restart`.
        OnFail::Demote if on.role == Role::Promoted && !on.demote_failed => {
            on.demote_on_fail = true
        }
        OnFail::Demote => on.failed = active,
        OnFail::Standby => {
            on.failed = active;
            on.standby_on_fail = true;
        }
        OnFail::Fence => {
            on.failed = active;
            let reason = crate::state::fenced_for_failure_of(&r.resource);
            let n = state.nodes.entry(r.node.clone()).or_default();
            if n.unclean.is_none() {
                n.unclean = Some(reason);
            }
        }
    }
    Ok(())
}

/// Counts a failure toward a crash loop: a failed start, or a failure of the running copy
/// within `crash_loop_window` of its start, is quick; from the second quick failure in a row
/// the next start on this node waits (100 ms, doubling, up to `crash_loop_delay_max`). A
/// failure after the window ends the loop. Only this resource on this node is delayed.
fn crash_loop(on: &mut ResourceOnNode, meta: &crate::config::Meta, op: OpKey, now: Time) {
    if op.name == OpName::Stop {
        return;
    }
    let quick = op.name == OpName::Start
        || on
            .last_start
            .is_some_and(|s| now < s + meta.crash_loop_window);
    on.quick_failures = if quick {
        on.quick_failures.saturating_add(1)
    } else {
        0
    };
    on.start_not_before = meta.crash_loop_delay(on.quick_failures).map(|d| now + d);
}

/// A probe (monitor with interval 0) tells what runs where; it never bumps a fail count.
fn probe_result(on: &mut ResourceOnNode, op: OpKey, rc: i32, record: OpRecord, promotable: bool) {
    on.degraded = matches!(rc, rc::DEGRADED | rc::DEGRADED_PROMOTED);
    on.failed = false;
    on.demote_on_fail = false;
    on.demote_failed = false;
    // "Running promoted" means promoted only for a resource that has roles.
    let promoted = if promotable {
        Role::Promoted
    } else {
        Role::Started
    };
    match rc {
        rc::NOT_RUNNING => {
            on.role = Role::Stopped;
            on.restart = false;
        }
        rc::OK | rc::DEGRADED => on.role = Role::Started,
        rc::RUNNING_PROMOTED | rc::DEGRADED_PROMOTED => on.role = promoted,
        // The agent cannot work here: treat the resource as stopped and ban the node.
        rc::ERR_ARGS | rc::ERR_INSTALLED => {
            on.role = Role::Stopped;
            on.hard_ban = true;
            on.last_failure = Some(record.time);
            on.failed_ops.insert(op, record);
        }
        // A broken configuration cannot run anywhere.
        rc::ERR_CONFIGURED => {
            on.role = Role::Stopped;
            on.fatal = true;
            on.last_failure = Some(record.time);
            on.failed_ops.insert(op, record);
        }
        // Anything else: it may be running, and it failed: stop it before anything else.
        _ => {
            on.role = if rc == rc::FAILED_PROMOTED {
                promoted
            } else {
                Role::Started
            };
            on.failed = true;
            if rc::class(rc, false) == FailureClass::Hard {
                on.hard_ban = true;
            }
            on.last_failure = Some(record.time);
            on.failed_ops.insert(op, record);
        }
    }
}

fn admin(config: &Config, state: &mut State, cmd: &AdminCommand) -> Result<(), ApplyError> {
    // A command naming a clone of instances is for each instance; a restart of one that runs
    // nowhere is refused only when none runs.
    if let Some(members) = cmd.resource().and_then(|r| config.instances_of(r)) {
        let mut any = false;
        for &m in members {
            match admin(config, state, &cmd.for_resource(&config.resources()[m].id)) {
                Ok(()) => any = true,
                Err(ApplyError::NotActive { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        if any {
            return Ok(());
        }
        return Err(ApplyError::NotActive {
            resource: cmd.resource().unwrap_or_default().to_owned(),
            node: match cmd {
                AdminCommand::Restart { node, .. } => node.clone(),
                _ => None,
            },
        });
    }
    match cmd {
        AdminCommand::Cleanup { resource, node } => {
            if let Some(r) = resource {
                check_resource(config, r)?;
            }
            if let Some(n) = node {
                check_node(config, n)?;
            }
            for (id, rs) in state.resources.iter_mut() {
                if resource.as_ref().is_some_and(|r| r != id) {
                    continue;
                }
                // A cleanup lets a resource locked to a node go (Pacemaker's unlock).
                if rs
                    .lock
                    .as_ref()
                    .is_some_and(|l| node.as_ref().is_none_or(|n| *n == l.node))
                {
                    rs.lock = None;
                }
                for (n, on) in rs.nodes.iter_mut() {
                    if node.as_ref().is_none_or(|want| want == n) {
                        // Forget everything and probe again; what it was started with stays
                        // known, so a changed definition is still applied.
                        *on = ResourceOnNode {
                            digest: on.digest,
                            restart_digest: on.restart_digest,
                            agent_digest: on.agent_digest,
                            ..ResourceOnNode::default()
                        };
                    }
                }
            }
            Ok(())
        }
        AdminCommand::Restart { resource, node } => {
            check_resource(config, resource)?;
            if let Some(n) = node {
                check_node(config, n)?;
            }
            let copies: Vec<&mut ResourceOnNode> = state
                .resources
                .get_mut(resource)
                .into_iter()
                .flat_map(|rs| rs.nodes.iter_mut())
                .filter(|(n, on)| {
                    node.as_ref().is_none_or(|want| want == *n) && on.role.is_active()
                })
                .map(|(_, on)| on)
                .collect();
            if copies.is_empty() {
                return Err(ApplyError::NotActive {
                    resource: resource.clone(),
                    node: node.clone(),
                });
            }
            for on in copies {
                on.restart = true;
            }
            Ok(())
        }
        AdminCommand::Enable { resource } | AdminCommand::Disable { resource } => {
            check_resource(config, resource)?;
            let role = match cmd {
                AdminCommand::Enable { .. } => TargetRole::Started,
                _ => TargetRole::Stopped,
            };
            state
                .resources
                .entry(resource.clone())
                .or_default()
                .target_role = Some(role);
            Ok(())
        }
        AdminCommand::Move { resource, node } => {
            check_resource(config, resource)?;
            check_node(config, node)?;
            let rs = state.resources.entry(resource.clone()).or_default();
            rs.moved_to = Some(node.clone());
            rs.banned.remove(node);
            Ok(())
        }
        AdminCommand::Ban { resource, node } => {
            check_resource(config, resource)?;
            check_node(config, node)?;
            let rs = state.resources.entry(resource.clone()).or_default();
            rs.banned.insert(node.clone());
            if rs.moved_to.as_ref() == Some(node) {
                rs.moved_to = None;
            }
            Ok(())
        }
        AdminCommand::Clear { resource } => {
            check_resource(config, resource)?;
            if let Some(rs) = state.resources.get_mut(resource) {
                rs.moved_to = None;
                rs.banned.clear();
            }
            Ok(())
        }
        AdminCommand::Standby { node } | AdminCommand::Online { node } => {
            check_node(config, node)?;
            state.nodes.entry(node.clone()).or_default().standby =
                matches!(cmd, AdminCommand::Standby { .. });
            Ok(())
        }
        AdminCommand::NodeAttribute { node, name, value } => {
            check_node(config, node)?;
            if !valid_attribute(name) {
                return Err(ApplyError::BadAttribute(name.clone()));
            }
            let attrs = state.node_attributes.entry(node.clone()).or_default();
            match value {
                Some(v) => {
                    attrs.insert(name.clone(), v.clone());
                }
                None => {
                    attrs.remove(name);
                }
            }
            if attrs.is_empty() {
                state.node_attributes.remove(node);
            }
            Ok(())
        }
        AdminCommand::Ticket { ticket, action } => {
            if !valid_ticket(ticket) {
                return Err(ApplyError::BadTicket(ticket.clone()));
            }
            let t = state.tickets.entry(ticket.clone()).or_default();
            match action {
                TicketAction::Grant => t.granted = true,
                TicketAction::Revoke => t.granted = false,
                TicketAction::Standby => t.standby = true,
                TicketAction::Activate => t.standby = false,
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_read_as_the_cli_says_them() {
        let r = || "web".to_owned();
        let n = || "n2".to_owned();
        for (cmd, said) in [
            (
                AdminCommand::Cleanup {
                    resource: None,
                    node: None,
                },
                "cleanup (every resource)",
            ),
            (
                AdminCommand::Cleanup {
                    resource: Some(r()),
                    node: Some(n()),
                },
                "cleanup web on n2",
            ),
            (
                AdminCommand::Restart {
                    resource: r(),
                    node: None,
                },
                "restart web",
            ),
            (
                AdminCommand::Move {
                    resource: r(),
                    node: n(),
                },
                "move web to n2",
            ),
            (
                AdminCommand::Ban {
                    resource: r(),
                    node: n(),
                },
                "ban web from n2",
            ),
            (AdminCommand::Standby { node: n() }, "standby n2"),
            (
                AdminCommand::Ticket {
                    ticket: "site-a".into(),
                    action: TicketAction::Revoke,
                },
                "ticket revoke site-a",
            ),
        ] {
            assert_eq!(cmd.to_string(), said);
        }
    }
}
