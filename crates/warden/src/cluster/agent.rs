//! A node's agent: runs the actions the coordinator assigns to this node and writes their
//! results; runs the recurring monitors of what runs here and reports what it sees (a
//! failed monitor, a process that exited); and stops (or demotes) everything here before
//! its lease can expire when it cannot renew it, so no other node starts a copy while this
//! one still runs (docs/cluster.md, "Safety before speed").

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Compare, CompareOp, EventType, Txn, TxnOp, WatchOptions};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{debug, error, info, warn};
use warden_engine::{
    Config, Event, NoQuorumPolicy, OpKey, OpName, OpResult, ResourceSpec, Role, expected, millis,
    rc,
};

use super::etcd::{Etcd, jittered, reason};
use super::log::keys;
use super::session::{Lease, LeaseRx};
use super::settings::longest_stop;
use super::wire::{ActionResult, Assignment, Report, definition_for};
use crate::exec::AgentResult;
use crate::exec::executor::Executor;
use crate::exec::process::Exited;

/// What the agent's tasks report back to its loop.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Done {
    Op {
        key: String,
        resource: String,
        spec: ResourceSpec,
        op: OpKey,
        result: AgentResult,
    },
    Monitor {
        resource: String,
        interval_ms: u64,
        generation: u64,
        result: AgentResult,
    },
    /// The coordinator knows this node stopped everything under this lease (it probes it
    /// again): the node may act again.
    Rejoined(i64),
}

/// A copy this agent knows runs here (from the operations it ran).
#[derive(Debug)]
struct Copy {
    role: Role,
    /// Its last monitor or operation failed: not monitored until the next operation.
    failed: bool,
    spec: ResourceSpec,
}

#[derive(Debug)]
struct Slot {
    next_due: Instant,
    in_flight: bool,
}

pub struct Agent {
    etcd: Arc<Etcd>,
    node: String,
    executor: Executor,
    config: watch::Receiver<Arc<Config>>,
    lease: LeaseRx,
    local: HashMap<String, Copy>,
    /// Assignment keys running, and done (their result written) until the key goes.
    inflight: HashSet<String>,
    done: HashSet<String>,
    busy: HashMap<String, usize>,
    generation: HashMap<String, u64>,
    monitors: HashMap<(String, u64), Slot>,
    last_rc: HashMap<(String, u64), i32>,
    deferred_exits: Vec<Exited>,
    /// The lease this agent stopped everything for (it acts again under a new lease).
    stopped_for: Option<i64>,
    report_seq: u64,
    tx: mpsc::UnboundedSender<Done>,
    rx: mpsc::UnboundedReceiver<Done>,
    /// How many copies run here (the shell waits for none before it exits).
    count: watch::Sender<usize>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("node", &self.node)
            .field("local", &self.local.len())
            .finish_non_exhaustive()
    }
}

impl Agent {
    pub fn new(
        etcd: Arc<Etcd>,
        node: String,
        executor: Executor,
        config: watch::Receiver<Arc<Config>>,
        lease: LeaseRx,
    ) -> (Agent, watch::Receiver<usize>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let (count, count_rx) = watch::channel(0);
        let agent = Agent {
            etcd,
            node,
            executor,
            config,
            lease,
            local: HashMap::new(),
            inflight: HashSet::new(),
            done: HashSet::new(),
            busy: HashMap::new(),
            generation: HashMap::new(),
            monitors: HashMap::new(),
            last_rc: HashMap::new(),
            deferred_exits: Vec::new(),
            stopped_for: None,
            report_seq: 0,
            tx,
            rx,
            count,
        };
        (agent, count_rx)
    }

    fn current_lease(&self) -> Option<Lease> {
        *self.lease.borrow()
    }

    /// Whether this node may act: it holds a valid lease it has not given up.
    fn may_act(&self) -> bool {
        self.current_lease()
            .is_some_and(|l| l.valid() && self.stopped_for != Some(l.id))
    }

    /// When everything here must start stopping: the lease's end minus the time stopping
    /// takes and the margin. None while nothing runs here.
    fn stop_deadline(&self) -> Option<Instant> {
        if self.local.is_empty() {
            return None;
        }
        let config = self.config.borrow().clone();
        let need = longest_stop(&config).0 + self.etcd.timing.margin;
        match self.current_lease() {
            Some(l) if self.stopped_for == Some(l.id) => None,
            Some(l) => Some(l.valid_until.checked_sub(need).unwrap_or(l.valid_until)),
            // No lease: at once (a lost lease with copies still here is already late).
            None if self.stopped_for.is_some() => None,
            None => Some(Instant::now()),
        }
    }

    /// The agent's loop, for ever. Nothing here waits on etcd: assignments come from a
    /// watcher task, results and reports leave in tasks of their own, so the lease deadline
    /// is always kept.
    pub async fn run(mut self, mut exits: mpsc::UnboundedReceiver<Exited>) {
        let (assign_tx, mut assignments) = mpsc::unbounded_channel();
        let watcher = tokio::spawn(watch_assignments(
            Arc::clone(&self.etcd),
            self.node.clone(),
            self.lease.clone(),
            assign_tx,
        ));
        let _stop_watcher = AbortOnDrop(watcher);
        loop {
            let stop_at = self.stop_deadline();
            let monitor_at = self.next_monitor();
            let far = Instant::now() + Duration::from_secs(3600);
            tokio::select! {
                Some(a) = assignments.recv() => match a {
                    Assigned::Put(key, value) => self.on_assignment(key, &value),
                    Assigned::Gone(key) => {
                        self.done.remove(&key);
                    }
                },
                Some(done) = self.rx.recv() => self.on_done(done),
                Some(exit) = exits.recv() => self.on_exit(exit),
                _ = tokio::time::sleep_until(stop_at.unwrap_or(far)), if stop_at.is_some() => {
                    self.stop_everything().await;
                }
                _ = tokio::time::sleep_until(monitor_at.unwrap_or(far)), if monitor_at.is_some() => {
                    self.fire_monitors();
                }
                r = self.lease.changed() => {
                    if r.is_err() {
                        return;
                    }
                }
            }
        }
    }

    fn on_assignment(&mut self, key: String, value: &[u8]) {
        if self.inflight.contains(&key) || self.done.contains(&key) {
            return;
        }
        if !self.may_act() {
            debug!(key = %key, "assignment not run: this node holds no valid lease");
            return;
        }
        let a: Assignment = match serde_json::from_slice(value) {
            Ok(a) => a,
            Err(e) => {
                error!(key = %key, error = %e, "assignment not understood");
                return;
            }
        };
        let config = self.config.borrow().clone();
        let spec = match definition_for(&a, config.resource(&a.resource)) {
            Ok(s) => s,
            Err(e) => {
                error!(key = %key, error = %format!("{e:#}"), "assignment not understood");
                return;
            }
        };
        let Ok(op) = crate::wire::parse_op_key(&a.op) else {
            error!(key = %key, op = %a.op, "assignment with a bad operation");
            return;
        };
        let notification = match a.notification.map(|n| n.into_notification()).transpose() {
            Ok(n) => n,
            Err(e) => {
                error!(key = %key, error = %format!("{e:#}"), "assignment not understood");
                return;
            }
        };
        self.inflight.insert(key.clone());
        *self.busy.entry(a.resource.clone()).or_default() += 1;
        if matches!(
            op.name,
            OpName::Start | OpName::Stop | OpName::Promote | OpName::Demote | OpName::MigrateFrom
        ) {
            *self.generation.entry(a.resource.clone()).or_default() += 1;
            self.monitors.retain(|(r, _), _| r != &a.resource);
        }
        debug!(resource = %a.resource, op = %op, "assigned action starts");
        let executor = self.executor.clone();
        let tx = self.tx.clone();
        let resource = a.resource;
        let migration = a.migration;
        tokio::spawn(async move {
            let result = executor
                .run_migration_op(
                    &spec,
                    op,
                    notification.as_ref(),
                    migration.as_ref().map(|(s, t)| (s.as_str(), t.as_str())),
                )
                .await;
            let _ = tx.send(Done::Op {
                key,
                resource,
                spec,
                op,
                result,
            });
        });
    }

    fn on_done(&mut self, done: Done) {
        match done {
            Done::Op {
                key,
                resource,
                spec,
                op,
                result,
            } => {
                self.inflight.remove(&key);
                if let Some(n) = self.busy.get_mut(&resource) {
                    *n = n.saturating_sub(1);
                }
                self.learn(&resource, spec, op, result.rc);
                let ok = {
                    let config = self.config.borrow().clone();
                    config
                        .resource(&resource)
                        .map_or(result.rc == rc::OK, |s| expected(s, op, result.rc))
                };
                crate::metrics::observe_operation(&resource, op, result.rc, result.duration);
                if ok {
                    info!(resource = %resource, op = %op, rc = result.rc, ms = millis(result.duration), "action done");
                } else {
                    warn!(resource = %resource, op = %op, rc = result.rc, rc_name = rc::name(result.rc), reason = %result.exit_reason, "action failed");
                }
                self.write_result(&key, &result);
                self.done.insert(key);
                if self.busy.get(&resource).copied().unwrap_or(0) == 0 {
                    let mine =
                        crate::exec::process::take_exits_of(&mut self.deferred_exits, &resource);
                    for e in mine {
                        self.on_exit(e);
                    }
                }
            }
            Done::Rejoined(id) => {
                if self.stopped_for == Some(id) && self.current_lease().is_some_and(|l| l.id == id)
                {
                    info!("the coordinator re-probes this node; acting again");
                    self.stopped_for = None;
                }
            }
            Done::Monitor {
                resource,
                interval_ms,
                generation,
                result,
            } => {
                let key = (resource.clone(), interval_ms);
                if let Some(s) = self.monitors.get_mut(&key) {
                    s.in_flight = false;
                    s.next_due = Instant::now() + Duration::from_millis(interval_ms);
                }
                let current = self.generation.get(&resource).copied().unwrap_or(0);
                let active = self
                    .local
                    .get(&resource)
                    .is_some_and(|c| c.role.is_active() && !c.failed);
                let op = OpKey {
                    name: OpName::Monitor,
                    interval_ms,
                };
                let config = self.config.borrow().clone();
                let Some(spec) = config.resource(&resource) else {
                    return;
                };
                // A monitor of the stopped role is for where it does not run.
                let of_stopped = spec.monitor_role(op.interval()) == warden_engine::OpRole::Stopped;
                let here = self
                    .local
                    .get(&resource)
                    .is_some_and(|c| c.role.is_active());
                if generation != current || (of_stopped && here) || (!of_stopped && !active) {
                    return;
                }
                let ok = expected(spec, op, result.rc);
                let changed = self.last_rc.get(&key) != Some(&result.rc);
                self.last_rc.insert(key, result.rc);
                if ok && !changed {
                    return;
                }
                if !ok {
                    warn!(resource = %resource, op = %op, rc = result.rc, rc_name = rc::name(result.rc), reason = %result.exit_reason, "monitor failed");
                    if let Some(c) = self.local.get_mut(&resource) {
                        c.failed = true;
                    }
                    self.monitors.retain(|(r, _), _| r != &resource);
                }
                let ev = Event::OpResult(OpResult {
                    resource,
                    node: self.node.clone(),
                    op,
                    rc: result.rc,
                    exit_reason: result.exit_reason,
                    status: result.status,
                    digest: None,
                });
                self.report(&ev, Some(millis(result.duration)));
            }
        }
    }

    /// What an operation's result says runs here.
    fn learn(&mut self, resource: &str, spec: ResourceSpec, op: OpKey, rc: i32) {
        let role = match (op.name, rc) {
            (OpName::Monitor, rc::NOT_RUNNING) if op.is_probe() => None,
            (OpName::Monitor, rc::RUNNING_PROMOTED | rc::DEGRADED_PROMOTED) if op.is_probe() => {
                Some((Role::Promoted, false))
            }
            (OpName::Monitor, rc::OK | rc::DEGRADED) if op.is_probe() => {
                Some((Role::Started, false))
            }
            (OpName::Start | OpName::Demote | OpName::MigrateFrom, rc::OK | rc::DEGRADED) => {
                Some((Role::Started, false))
            }
            (OpName::Promote, rc::OK | rc::DEGRADED) => Some((Role::Promoted, false)),
            (OpName::Stop, rc::OK | rc::NOT_RUNNING) => None,
            // Migrated away: it runs here until its stop.
            (OpName::MigrateTo, rc::OK | rc::DEGRADED) => match self.local.get(resource) {
                Some(c) => Some((c.role, c.failed)),
                None => return,
            },
            (OpName::Notify | OpName::Reload | OpName::Monitor, _) => {
                // Unchanged (a reload that failed leaves what ran).
                match self.local.get(resource) {
                    Some(c) => Some((c.role, c.failed)),
                    None => return,
                }
            }
            // A failed operation: it may still run, in a state nobody knows.
            _ => Some((Role::Unknown, true)),
        };
        match role {
            Some((role, failed)) => {
                self.local
                    .insert(resource.to_owned(), Copy { role, failed, spec });
            }
            None => {
                self.local.remove(resource);
            }
        }
        self.last_rc.retain(|(r, _), _| r != resource);
        let _ = self.count.send(self.local.len());
    }

    /// Writes an action's result (in a task), while its assignment exists and this node is
    /// a member.
    fn write_result(&self, key: &str, result: &AgentResult) {
        let Some(rest) = key.strip_prefix(&self.etcd.key(keys::ASSIGN)) else {
            return;
        };
        let result_key = self.etcd.key(&format!("{}{rest}", keys::RESULT));
        let value = match serde_json::to_vec(&ActionResult {
            rc: result.rc,
            exit_reason: result.exit_reason.clone(),
            duration_ms: millis(result.duration),
            status: crate::wire::status_field(result.status),
        }) {
            Ok(v) => v,
            Err(_) => return,
        };
        let deadline = self
            .current_lease()
            .map_or(Instant::now() + self.etcd.timing.ttl, |l| {
                l.valid_until + self.etcd.timing.ttl
            });
        let etcd = Arc::clone(&self.etcd);
        let key = key.to_owned();
        tokio::spawn(async move {
            let r = etcd
                .retry("result", deadline, |mut c| {
                    let txn = Txn::new()
                        .when(vec![Compare::version(key.clone(), CompareOp::Greater, 0)])
                        .and_then(vec![TxnOp::put(result_key.clone(), value.clone(), None)]);
                    async move { c.txn(txn).await }
                })
                .await;
            match r {
                Ok(r) if !r.succeeded() => {
                    debug!(key = %key, "result not written: the assignment is gone")
                }
                Ok(_) => {}
                Err(e) => error!(key = %key, error = %e, "cannot write an action's result"),
            }
        });
    }

    /// Tells the coordinator what this agent saw on its own (in a task).
    fn report(&mut self, event: &Event, duration_ms: Option<u64>) {
        self.report_then(event, duration_ms, None);
    }

    /// Reports, and once the report is written sends `then` to the agent's loop.
    fn report_then(&mut self, event: &Event, duration_ms: Option<u64>, then: Option<Done>) {
        self.report_seq += 1;
        let now_ms = crate::wire::wall_clock().as_millis();
        let key = self.etcd.key(&format!(
            "{}{}/{now_ms:020}-{:06}",
            keys::REPORT,
            self.node,
            self.report_seq
        ));
        let Ok(value) = serde_json::to_vec(&Report::new(event, duration_ms)) else {
            return;
        };
        let deadline = self
            .current_lease()
            .map_or(Instant::now(), |l| l.valid_until);
        let etcd = Arc::clone(&self.etcd);
        let tx = self.tx.clone();
        tokio::spawn(async move {
            match etcd.put(&key, value, None, deadline).await {
                Ok(()) => {
                    if let Some(then) = then {
                        let _ = tx.send(then);
                    }
                }
                Err(e) => error!(error = %e, "cannot report to the coordinator"),
            }
        });
    }

    /// A supervised process ended on its own: a failed monitor (rc 7), reported.
    fn on_exit(&mut self, exit: Exited) {
        if self.busy.get(&exit.resource).copied().unwrap_or(0) > 0 {
            self.deferred_exits.push(exit);
            return;
        }
        let Some(c) = self.local.get_mut(&exit.resource) else {
            return;
        };
        if !c.role.is_active() {
            return;
        }
        let promoted = c.spec.is_promotable() && c.role == Role::Promoted;
        let interval = c
            .spec
            .recurring_monitors_in(promoted)
            .next()
            .map_or(crate::config::IMPLICIT_MONITOR, |o| o.interval);
        c.failed = true;
        warn!(resource = %exit.resource, pid = exit.pid, how = %exit.how, "process exited");
        *self.generation.entry(exit.resource.clone()).or_default() += 1;
        self.monitors.retain(|(r, _), _| r != &exit.resource);
        let ev = Event::OpResult(OpResult {
            resource: exit.resource,
            node: self.node.clone(),
            op: OpKey::new(OpName::Monitor, interval),
            rc: rc::NOT_RUNNING,
            exit_reason: format!("process {}", exit.how),
            status: warden_engine::rc::ExecStatus::Done,
            digest: None,
        });
        self.report(&ev, Some(0));
    }

    /// The next monitor due (keeping one slot per recurring monitor of what runs here).
    fn next_monitor(&mut self) -> Option<Instant> {
        let config = self.config.borrow().clone();
        let mut keep = HashSet::new();
        let now = Instant::now();
        for (id, c) in &self.local {
            if !c.role.is_active() || c.failed || !self.may_act() {
                continue;
            }
            let Some(spec) = config.resource(id) else {
                continue;
            };
            if spec.meta.maintenance {
                continue;
            }
            let promoted = spec.is_promotable() && c.role == Role::Promoted;
            for op in spec.recurring_monitors_in(promoted) {
                let k = (id.clone(), millis(op.interval));
                self.monitors.entry(k.clone()).or_insert(Slot {
                    next_due: now + op.interval,
                    in_flight: false,
                });
                keep.insert(k);
            }
        }
        // Where a resource does not run here, the monitors of the stopped role look for it.
        if self.may_act() {
            for spec in config.stopped_monitored() {
                if spec.meta.maintenance
                    || self
                        .local
                        .get(&spec.id)
                        .is_some_and(|c| c.role.is_active() || c.failed)
                {
                    continue;
                }
                for op in spec.stopped_monitors() {
                    let k = (spec.id.clone(), millis(op.interval));
                    self.monitors.entry(k.clone()).or_insert(Slot {
                        next_due: now + op.interval,
                        in_flight: false,
                    });
                    keep.insert(k);
                }
            }
        }
        self.monitors.retain(|k, s| keep.contains(k) || s.in_flight);
        self.monitors
            .values()
            .filter(|s| !s.in_flight)
            .map(|s| s.next_due)
            .min()
    }

    fn fire_monitors(&mut self) {
        let now = Instant::now();
        let config = self.config.borrow().clone();
        let due: Vec<(String, u64)> = self
            .monitors
            .iter()
            .filter(|(_, s)| !s.in_flight && s.next_due <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for (resource, interval_ms) in due {
            let busy = self.busy.get(&resource).copied().unwrap_or(0) > 0;
            let Some(slot) = self.monitors.get_mut(&(resource.clone(), interval_ms)) else {
                continue;
            };
            if busy {
                slot.next_due = now + Duration::from_millis(interval_ms);
                continue;
            }
            let Some(spec) = config.resource(&resource).cloned() else {
                continue;
            };
            slot.in_flight = true;
            let generation = self.generation.get(&resource).copied().unwrap_or(0);
            let executor = self.executor.clone();
            let tx = self.tx.clone();
            tokio::spawn(async move {
                let op = OpKey {
                    name: OpName::Monitor,
                    interval_ms,
                };
                let result = executor.run_op(&spec, op, None).await;
                let _ = tx.send(Done::Monitor {
                    resource,
                    interval_ms,
                    generation,
                    result,
                });
            });
        }
    }

    /// This node cannot renew its lease in time: everything here stops (or, with
    /// `no_quorum_policy = "demote"`, promoted copies demote and the rest stops) in the
    /// reverse of the order constraints, before the lease can expire.
    async fn stop_everything(&mut self) {
        let config = self.config.borrow().clone();
        let lease = self.current_lease();
        self.stopped_for = Some(lease.map_or(-1, |l| l.id));
        self.monitors.clear();
        let policy = config.cluster.no_quorum_policy;
        if matches!(policy, NoQuorumPolicy::Freeze | NoQuorumPolicy::Ignore) {
            // Allowed only with fencing (checked at load): the coordinator fences this node
            // before recovering what runs here.
            warn!(policy = %policy, "cannot renew the cluster lease: resources keep running (no_quorum_policy)");
            return;
        }
        let started = Instant::now();
        let left = lease.map(|l| l.valid_until.saturating_duration_since(started));
        warn!(resources = self.local.len(), lease_left_ms = left.map(millis), policy = %policy, "cannot renew the cluster lease: stopping everything here before it expires");
        let mut remaining: Vec<String> = self.local.keys().cloned().collect();
        let mut rounds = 0;
        while !remaining.is_empty() && rounds < 1000 {
            rounds += 1;
            // Stops go after the stops of what is ordered after them.
            let wave: Vec<String> = {
                let blocked: HashSet<&str> = config
                    .orders()
                    .iter()
                    .filter(|o| remaining.contains(&o.then) && o.first != o.then)
                    .map(|o| o.first.as_str())
                    .collect();
                let w: Vec<String> = remaining
                    .iter()
                    .filter(|r| !blocked.contains(r.as_str()))
                    .cloned()
                    .collect();
                if w.is_empty() { remaining.clone() } else { w }
            };
            remaining.retain(|r| !wave.contains(r));
            let mut set = tokio::task::JoinSet::new();
            for r in wave {
                let Some(c) = self.local.get(&r) else {
                    continue;
                };
                let spec = c.spec.clone();
                let demote_only = policy == NoQuorumPolicy::Demote && c.role == Role::Promoted;
                let executor = self.executor.clone();
                set.spawn(async move {
                    let op = if demote_only {
                        OpKey::new(OpName::Demote, Duration::ZERO)
                    } else {
                        OpKey::new(OpName::Stop, Duration::ZERO)
                    };
                    let promoted_stop = !demote_only && spec.is_promotable();
                    if promoted_stop {
                        let _ = executor
                            .run_op(&spec, OpKey::new(OpName::Demote, Duration::ZERO), None)
                            .await;
                    }
                    let result = executor.run_op(&spec, op, None).await;
                    (r, spec, op, result)
                });
            }
            while let Some(j) = set.join_next().await {
                let Ok((r, spec, op, result)) = j else {
                    continue;
                };
                if expected(&spec, op, result.rc) {
                    info!(resource = %r, op = %op, rc = result.rc, ms = millis(result.duration), "stopped on its own");
                } else {
                    error!(resource = %r, op = %op, rc = result.rc, reason = %result.exit_reason, "could not stop before the lease expires");
                }
                self.learn(&r, spec, op, result.rc);
            }
        }
        let left_after = lease.map(|l| l.valid_until.saturating_duration_since(Instant::now()));
        warn!(
            took_ms = millis(started.elapsed()),
            lease_left_ms = left_after.map(millis),
            still_here = self.local.len(),
            "stopped what ran here; this node acts again once the coordinator knows (or under a new lease)"
        );
        // If the lease survives after all, the coordinator must learn that nothing runs here
        // any more: it probes the node again (as for a node that joins).
        if let Some(l) = lease {
            let ev = Event::NodeUp {
                node: self.node.clone(),
            };
            self.report_then(&ev, None, Some(Done::Rejoined(l.id)));
        }
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// An assignment key that appeared (with its value) or went.
#[derive(Debug)]
enum Assigned {
    Put(String, Vec<u8>),
    Gone(String),
}

/// Feeds the agent this node's assignments: all of them at first (and again after a watch
/// breaks, is compacted, or the node holds a new lease), then each change.
async fn watch_assignments(
    etcd: Arc<Etcd>,
    node: String,
    mut lease: LeaseRx,
    tx: mpsc::UnboundedSender<Assigned>,
) {
    let prefix = etcd.key(&format!("{}{node}/", keys::ASSIGN));
    loop {
        let deadline = Instant::now() + etcd.timing.ttl;
        let rev = match etcd.get_prefix(&prefix, deadline).await {
            Ok((kvs, rev)) => {
                for kv in &kvs {
                    let key = String::from_utf8_lossy(kv.key()).into_owned();
                    if tx.send(Assigned::Put(key, kv.value().to_vec())).is_err() {
                        return;
                    }
                }
                rev
            }
            Err(_) => {
                tokio::time::sleep(jittered(Duration::from_millis(100))).await;
                continue;
            }
        };
        let stream = match etcd.client().await {
            Ok((i, mut c)) => {
                let opts = WatchOptions::new()
                    .with_prefix()
                    .with_start_revision(rev + 1);
                match tokio::time::timeout(etcd.timing.request, c.watch(prefix.clone(), Some(opts)))
                    .await
                {
                    Ok(Ok(w)) => Some((i, w)),
                    Ok(Err(e)) => {
                        etcd.failed(i, format!("watch: {}", reason(&e)));
                        None
                    }
                    Err(_) => {
                        etcd.failed(i, "watch: request timed out".to_owned());
                        None
                    }
                }
            }
            Err(_) => None,
        };
        let Some((endpoint, mut stream)) = stream else {
            tokio::time::sleep(jittered(Duration::from_millis(100))).await;
            continue;
        };
        let lease_id = lease.borrow().map(|l| l.id);
        loop {
            tokio::select! {
                msg = stream.message() => match msg {
                    Ok(Some(resp)) => {
                        if resp.canceled() || resp.compact_revision() > 0 {
                            warn!(reason = %resp.cancel_reason(), compacted = resp.compact_revision(), "assignment watch cancelled; reading again");
                            break;
                        }
                        for ev in resp.events() {
                            let Some(kv) = ev.kv() else { continue };
                            let key = String::from_utf8_lossy(kv.key()).into_owned();
                            let a = match ev.event_type() {
                                EventType::Put => Assigned::Put(key, kv.value().to_vec()),
                                EventType::Delete => Assigned::Gone(key),
                            };
                            if tx.send(a).is_err() {
                                return;
                            }
                        }
                    }
                    Ok(None) => {
                        etcd.failed(endpoint, "watch: stream closed".to_owned());
                        break;
                    }
                    Err(e) => {
                        etcd.failed(endpoint, format!("watch: {}", reason(&e)));
                        break;
                    }
                },
                r = lease.changed() => {
                    if r.is_err() {
                        return;
                    }
                    let now_id = lease.borrow().map(|l| l.id);
                    if now_id.is_some() && now_id != lease_id {
                        // A new membership: read the assignments again.
                        break;
                    }
                }
            }
        }
    }
}
