//! The daemon's core, without I/O: what `warden run` decides, as Sōzu's UDP manager shapes
//! it. The shell (`daemon`) feeds it results as [`Input`]s with the time (`handle`), asks it
//! what to do now (`poll`) and when to ask again (`poll_timeout`), and carries out the
//! [`Effect`]s it returns (run an agent, a monitor, a fence device, store definitions). The
//! core reads no clock, starts no task and touches no socket or process; its one outside
//! dependency is the store, behind [`Recorder`], because every event is recorded before it is
//! applied and only a store makes the [`crate::store::Recorded`] that applying takes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, error, info, warn};
use warden_engine::health::PeerState;
use warden_engine::rc::ExecStatus;
use warden_engine::{
    ActionId, ActionKind, AdminCommand, ApplyError, Config, Digests, Event, FenceDevice,
    Notification, OpKey, OpName, OpResult, Progress, ResourceSpec, Role, Score, State, TargetRole,
    Time, Transition, expected, millis, rc, schedule,
};

use crate::check::{CheckSpec, Peer};
use crate::config::HealthMonitor;
use crate::control::{ControlError, StatusView};
use crate::exec::process::Exited;
use crate::store::{Entry, Recorded, Recorder};

/// Failed fencing rounds in a row after which the core stops retrying (Pacemaker's
/// `stonith-max-attempts` default).
pub const FENCE_MAX_ATTEMPTS: u32 = 10;

/// What finished, as the shell reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// An action of the running transition ([`Effect::Run`]) ended.
    ActionDone { id: ActionId, result: OpOutcome },
    /// A fence action ([`Effect::Fence`]) ended.
    FenceDone { id: ActionId, ok: bool },
    /// A recurring monitor ([`Effect::Monitor`]) ended.
    MonitorDone {
        resource: String,
        interval_ms: u64,
        generation: u64,
        result: OpOutcome,
    },
    /// A health check serving as a monitor ([`Effect::Health`]) ended.
    HealthDone {
        resource: String,
        interval_ms: u64,
        generation: u64,
        /// The check's error, when it failed.
        error: Option<String>,
        took: Duration,
    },
    /// A supervised process ended on its own.
    Exited(Exited),
    /// An event observed elsewhere, to record and apply: a node agent's monitor failure or
    /// process exit, a node joining or leaving (its etcd lease), a result of an action an
    /// earlier coordinator assigned.
    Observed {
        event: Event,
        duration_ms: Option<u64>,
    },
    /// An action of the running transition will never report (its node left): the step
    /// fails, nothing is recorded, and the engine decides again.
    ActionLost { id: ActionId },
}

/// What an agent operation returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpOutcome {
    pub rc: i32,
    pub exit_reason: String,
    pub duration: Duration,
    /// Whether the agent ran at all.
    pub status: ExecStatus,
}

/// What the shell is to do.
// Effects live for one loop turn; boxing the definition would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Run an operation of a resource (its result comes back as [`Input::ActionDone`]).
    Run {
        id: ActionId,
        /// Where it runs (a cluster's coordinator assigns actions to every node).
        node: String,
        spec: ResourceSpec,
        op: OpKey,
        notification: Option<Notification>,
        /// A live migration's step: (source, target).
        migration: Option<(String, String)>,
    },
    /// Run the fence devices of `node`, in order, until one succeeds
    /// ([`Input::FenceDone`]).
    Fence {
        id: ActionId,
        node: String,
        devices: Vec<FenceDevice>,
        /// Unfence instead: the `on` of every device (all must succeed).
        unfence: bool,
    },
    /// Run a recurring monitor ([`Input::MonitorDone`]).
    Monitor {
        resource: String,
        interval_ms: u64,
        generation: u64,
        spec: ResourceSpec,
    },
    /// Run a health check serving as a monitor ([`Input::HealthDone`]).
    Health {
        resource: String,
        interval_ms: u64,
        generation: u64,
        peer: Peer,
        check: CheckSpec,
    },
    /// Store the definitions the daemon may still act on (see [`Core::definitions`]).
    SaveDefinitions(Vec<ResourceSpec>),
}

/// What the core starts from.
#[derive(Debug)]
pub struct Boot {
    pub file_config: Arc<Config>,
    /// Resources the store knows and the file lost, that may still run.
    pub orphans: Vec<ResourceSpec>,
    /// Earlier definitions copies may still run with.
    pub previous: Vec<ResourceSpec>,
    pub state: State,
    pub node: String,
    pub health_monitors: Vec<HealthMonitor>,
    /// Whether this core runs the recurring monitors of `node` (one machine), or the node
    /// agents run their own and report (a cluster's coordinator).
    pub monitors_here: bool,
}

/// A transition at work.
#[derive(Debug)]
struct Run {
    progress: Progress,
    /// The definition digests each start or reload ran with.
    digests: HashMap<ActionId, Digests>,
    /// A fence action failed: the next transitions back off (they would fence again).
    fence_failed: bool,
}

/// One recurring monitor's timer.
#[derive(Debug)]
struct Slot {
    next_due: Time,
    in_flight: bool,
}

/// A resource's health-check monitor and its hysteresis (reset by every start and stop).
#[derive(Debug)]
struct HealthMon {
    peer: Peer,
    check: CheckSpec,
    grace: Duration,
    health: warden_engine::health::PeerHealth,
    generation: u64,
}

impl HealthMon {
    fn new(h: &HealthMonitor) -> HealthMon {
        HealthMon {
            peer: h.peer.clone(),
            check: h.check.clone(),
            grace: h.grace,
            health: Default::default(),
            generation: 0,
        }
    }
}

/// The store could not record an event: nothing was applied, and the core must not be used
/// further (what it did before the failure is not undone); the shell holds its actions and
/// builds a new core from the store once it records again.
#[derive(Debug, thiserror::Error)]
#[error("cannot record an event in the store: {0}")]
pub struct StoreFailed(pub String);

#[derive(Debug)]
pub struct Core {
    /// What the engine schedules: the file's configuration and the orphans still to stop.
    config: Arc<Config>,
    /// The configuration file as last loaded.
    file_config: Arc<Config>,
    /// Resources gone from the file that may still run (stopped, then forgotten).
    orphans: Vec<ResourceSpec>,
    /// Definitions by digest that copies may still run with (from an earlier file): a stop
    /// or demote of such a copy runs with the definition it was started with.
    previous: HashMap<u64, ResourceSpec>,
    node: String,
    /// Whether this core runs `node`'s recurring monitors (see [`Boot::monitors_here`]).
    monitors_here: bool,
    state: State,
    run: Option<Run>,
    /// Something changed: schedule again once no transition runs.
    dirty: bool,
    wakeup: Option<Time>,
    monitors: HashMap<(String, u64), Slot>,
    /// Bumped by every start, stop, promote, demote and exit of a resource: older monitor
    /// results are stale.
    generation: HashMap<String, u64>,
    /// Actions in flight per resource.
    busy: HashMap<String, usize>,
    /// The last recorded rc of each recurring monitor (unchanged successes are not recorded).
    last_monitor_rc: HashMap<(String, u64), i32>,
    /// Stopping: Some(true) leaves the resources running, Some(false) stops them first.
    shutting_down: Option<bool>,
    /// Shutdown done: the shell may exit.
    finished: bool,
    /// Transitions in a row whose fencing failed: scheduling backs off after two, as every
    /// transition would fence again. (A crash loop delays only its own resource.)
    failed_fences: u32,
    hold_until: Option<Time>,
    /// Fencing failed [`FENCE_MAX_ATTEMPTS`] times in a row: nothing is scheduled until a
    /// command or a node event.
    fencing_given_up: bool,
    /// When each resource last started here (a health-check monitor's start grace).
    last_start: HashMap<String, Time>,
    /// Exits of processes whose start had not been applied yet: handled once it is.
    deferred_exits: Vec<Exited>,
    /// Health checks serving as recurring monitors, by (resource, interval).
    health: HashMap<(String, u64), HealthMon>,
    effects: Vec<Effect>,
}

impl Boot {
    /// What a daemon starts from: the file, the definitions its store kept (as orphan
    /// specs), and the state `load` restores under the file's configuration plus the orphans
    /// (their events must replay too). An orphan the state knows stopped everywhere is
    /// forgotten; one that may run stays, to be probed and stopped.
    pub fn restore(
        file_config: Arc<Config>,
        stored: Vec<ResourceSpec>,
        node: String,
        health_monitors: Vec<HealthMonitor>,
        load: impl FnOnce(&Config) -> anyhow::Result<State>,
    ) -> anyhow::Result<Boot> {
        let mut orphans = orphans(&file_config, &stored);
        let state = load(&file_config.with_extra_resources(orphans.clone())?)?;
        orphans.retain(|o| !stopped_everywhere(&state, &o.id));
        for o in &orphans {
            warn!(resource = %o.id, "resource gone from the configuration may still run: it will be stopped");
        }
        Ok(Boot {
            file_config,
            orphans,
            previous: stored,
            state,
            node,
            health_monitors,
            monitors_here: true,
        })
    }
}

/// The orphans among the definitions a store kept: the first definition of each resource the
/// file no longer has.
fn orphans(file: &Config, stored: &[ResourceSpec]) -> Vec<ResourceSpec> {
    let mut out: Vec<ResourceSpec> = Vec::new();
    for d in stored {
        if file.resource(&d.id).is_none() && !out.iter().any(|o| o.id == d.id) {
            out.push(d.clone());
        }
    }
    out
}

/// Whether the state knows `resource` as stopped on every node it was ever seen on.
fn stopped_everywhere(state: &State, resource: &str) -> bool {
    state.resource(resource).is_some_and(|rs| {
        !rs.nodes.is_empty()
            && rs
                .nodes
                .values()
                .all(|on| on.role == Role::Stopped && !on.blocked)
    })
}

impl Core {
    /// A core in the state the store restored. Nothing runs until [`Core::join`].
    pub fn new(boot: Boot) -> anyhow::Result<Core> {
        let config = Arc::new(
            boot.file_config
                .with_extra_resources(boot.orphans.clone())?,
        );
        Ok(Core {
            config,
            file_config: boot.file_config,
            orphans: boot.orphans,
            previous: boot.previous.into_iter().map(|s| (s.digest(), s)).collect(),
            node: boot.node,
            monitors_here: boot.monitors_here,
            state: boot.state,
            run: None,
            dirty: true,
            wakeup: None,
            monitors: HashMap::new(),
            generation: HashMap::new(),
            busy: HashMap::new(),
            last_monitor_rc: HashMap::new(),
            shutting_down: None,
            finished: false,
            failed_fences: 0,
            hold_until: None,
            fencing_given_up: false,
            last_start: HashMap::new(),
            deferred_exits: Vec::new(),
            health: boot
                .health_monitors
                .iter()
                .map(|h| {
                    (
                        (h.resource.clone(), millis(h.check.interval)),
                        HealthMon::new(h),
                    )
                })
                .collect(),
            effects: Vec::new(),
        })
    }

    /// Joining (or rejoining after a restart): everything here is probed, what runs adopted.
    pub fn join(&mut self, now: Time, store: &mut dyn Recorder) -> anyhow::Result<Vec<Effect>> {
        let node = self.node.clone();
        self.record(store, now, vec![(Event::NodeUp { node }, None)])?;
        self.save_definitions();
        Ok(self.take_effects())
    }

    /// Starting to coordinate a cluster (instead of [`Core::join`]): membership comes as
    /// [`Input::Observed`] node events.
    pub fn begin(&mut self) -> Vec<Effect> {
        self.save_definitions();
        self.take_effects()
    }

    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    /// Whether a transition runs.
    pub fn busy(&self) -> bool {
        self.run.is_some()
    }

    /// The transition in progress.
    pub fn transition(&self) -> Option<&Transition> {
        self.run.as_ref().map(|r| &r.progress.transition)
    }

    /// Shut down: the shell may exit.
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// Whether the shutdown leaves the resources running.
    pub fn leaves_running(&self) -> bool {
        self.shutting_down == Some(true)
    }

    pub fn view(&self, now: Time) -> StatusView {
        StatusView {
            config: Arc::clone(&self.config),
            state: self.state.clone(),
            now,
            node: self.node.clone(),
            transition_running: self.run.is_some(),
            next_wakeup: self.wakeup,
            coordinator: None,
            warnings: Vec::new(),
            cluster: None,
        }
    }

    /// Every definition the daemon may still act on: the configuration's (orphans included)
    /// and the earlier ones running copies use.
    pub fn definitions(&self) -> Vec<ResourceSpec> {
        let mut out: Vec<ResourceSpec> = self.config.resources().to_vec();
        out.extend(self.previous.values().cloned());
        out
    }

    fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    /// When to [`Core::poll`] next, at the latest (None: only when an input comes).
    pub fn poll_timeout(&self) -> Option<Time> {
        let monitors = if self.shutting_down.is_some() {
            None
        } else {
            self.monitors
                .values()
                .filter(|s| !s.in_flight)
                .map(|s| s.next_due)
                .min()
        };
        [monitors, self.wakeup, self.hold_until]
            .into_iter()
            .flatten()
            .min()
    }

    /// What to do now: forget stopped orphans, schedule when no transition runs (and the
    /// fencing back-off allows), keep the recurring monitors, fire those due.
    pub fn poll(&mut self, now: Time) -> anyhow::Result<Vec<Effect>> {
        if self.wakeup.is_some_and(|w| now >= w) {
            debug!("a failure expired or a delay ended: scheduling");
            self.wakeup = None;
            self.dirty = true;
        }
        let held = self.hold_until.is_some_and(|h| now < h) || self.fencing_given_up;
        if self.run.is_none() && !self.finished && (!held || self.shutting_down.is_some()) {
            self.hold_until = None;
            self.forget_stopped_orphans()?;
            if self.shutting_down == Some(true) {
                self.finished = true;
            } else if self.dirty {
                self.dirty = false;
                let t = schedule(&self.config, &self.state, now);
                self.wakeup = t.wakeup;
                if !t.is_empty() {
                    self.start_run(t, now);
                } else if self.shutting_down.is_some() {
                    // The engine stopped everything it may stop here.
                    self.finished = true;
                }
            }
        }
        if self.shutting_down.is_none() && self.monitors_here {
            self.reconcile_monitors(now);
            let due: Vec<(String, u64)> = self
                .monitors
                .iter()
                .filter(|(_, s)| !s.in_flight && s.next_due <= now)
                .map(|(k, _)| k.clone())
                .collect();
            for (resource, interval_ms) in due {
                self.fire_monitor(&resource, interval_ms, now);
            }
        }
        Ok(self.take_effects())
    }

    /// A result comes in.
    pub fn handle(
        &mut self,
        input: Input,
        now: Time,
        store: &mut dyn Recorder,
    ) -> anyhow::Result<Vec<Effect>> {
        match input {
            Input::ActionDone { id, result } => self.on_action_done(id, result, now, store)?,
            Input::FenceDone { id, ok } => self.on_fence_done(id, ok, now, store)?,
            Input::MonitorDone {
                resource,
                interval_ms,
                generation,
                result,
            } => {
                self.rearm_monitor(&resource, interval_ms, now);
                self.on_monitor_done(resource, interval_ms, generation, result, now, store)?
            }
            Input::HealthDone {
                resource,
                interval_ms,
                generation,
                error,
                took,
            } => {
                self.rearm_monitor(&resource, interval_ms, now);
                self.on_health_done(resource, interval_ms, generation, error, took, now, store)?
            }
            Input::Exited(exit) => self.on_exit(exit, now, store)?,
            Input::Observed { event, duration_ms } => {
                self.on_observed(event, duration_ms, now, store)?
            }
            Input::ActionLost { id } => self.on_action_lost(id, now),
        }
        Ok(self.take_effects())
    }

    /// Records events durably, then applies what the store recorded. Nothing is acted on
    /// before this returns; an error means the store cannot record and the daemon must stop.
    fn record(
        &mut self,
        store: &mut dyn Recorder,
        now: Time,
        events: Vec<(Event, Option<u64>)>,
    ) -> anyhow::Result<()> {
        let entries: Vec<Entry> = events
            .into_iter()
            .map(|(event, duration_ms)| Entry {
                time: now,
                event,
                duration_ms,
            })
            .collect();
        let recorded = store
            .append(&entries)
            .map_err(|e| StoreFailed(format!("{e:#}")))?;
        self.apply(recorded);
        Ok(())
    }

    /// The configuration file as last loaded (without the orphans).
    pub fn file_config(&self) -> &Arc<Config> {
        &self.file_config
    }

    /// The one place the state changes.
    fn apply(&mut self, recorded: Recorded) {
        for (e, time) in recorded.events() {
            if let Err(err) = warden_engine::apply(&self.config, &mut self.state, e, time) {
                warn!(error = %err, "event refused by the engine");
            }
        }
    }

    fn abort_run(&mut self) {
        if let Some(run) = &mut self.run {
            run.progress.abort();
        }
        self.dirty = true;
    }

    fn start_run(&mut self, t: Transition, now: Time) {
        let probes = t
            .actions
            .iter()
            .filter(|a| matches!(a.kind, ActionKind::Probe { .. }))
            .count();
        if probes > 0 {
            // What follows the probes depends on what they find: say so, not the plan.
            info!(probes, "probing what runs here");
            for c in &t.summary {
                debug!(change = %c, "planned after the probes");
            }
        } else {
            for c in &t.summary {
                info!(change = %c, "transition");
            }
        }
        self.run = Some(Run {
            progress: Progress::new(t),
            digests: HashMap::new(),
            fence_failed: false,
        });
        self.advance(now);
    }

    /// Launches every action whose prerequisites are done; ends the run when nothing more
    /// can happen.
    fn advance(&mut self, now: Time) {
        loop {
            let Some(run) = &mut self.run else { return };
            let launch = run.progress.launch_ready();
            if launch.is_empty() {
                if run.progress.is_over() {
                    let fence_failed = run.fence_failed;
                    self.run = None;
                    self.dirty = true;
                    if fence_failed {
                        self.failed_fences += 1;
                        if self.failed_fences >= FENCE_MAX_ATTEMPTS {
                            // Pacemaker's stonith-max-attempts: stop hammering a device that
                            // keeps failing; an operator's command or a node event retries.
                            error!(
                                attempts = self.failed_fences,
                                "fencing failed {FENCE_MAX_ATTEMPTS} times in a row: no more attempts (and nothing it holds back is recovered) until a command (`warden resource cleanup`) or a node joining or leaving"
                            );
                            self.hold_until = None;
                            self.fencing_given_up = true;
                        } else if self.failed_fences >= 2 {
                            let backoff = Duration::from_millis(50u64 << self.failed_fences.min(7))
                                .min(Duration::from_secs(5));
                            self.hold_until = Some(now + backoff);
                        }
                    } else {
                        self.failed_fences = 0;
                    }
                }
                return;
            }
            for a in launch {
                self.launch(a.id, &a.kind);
            }
        }
    }

    /// The definition an action runs with: the configuration's, except for a stop or demote
    /// of a copy started with an earlier definition still known (its parameters are what
    /// the running copy uses: an OCF agent stops the address, file or process it started).
    fn spec_for(&self, kind: &ActionKind) -> Option<ResourceSpec> {
        let spec = self.config.resource(kind.resource()?)?;
        if matches!(kind, ActionKind::Stop { .. } | ActionKind::Demote { .. }) {
            let on = self.state.on_node(&spec.id, kind.node());
            if let Some(old) = on
                .digest
                .filter(|&d| d != spec.digest())
                .and_then(|d| self.previous.get(&d))
            {
                return Some(old.clone());
            }
        }
        Some(spec.clone())
    }

    fn launch(&mut self, id: ActionId, kind: &ActionKind) {
        if let ActionKind::Fence { node, reason } = kind {
            info!(node = %node, reason = %reason, "fencing");
            let devices = self.config.fence_devices_for(node).cloned().collect();
            self.effects.push(Effect::Fence {
                id,
                node: node.clone(),
                devices,
                unfence: false,
            });
            return;
        }
        if let ActionKind::Unfence { node, reason } = kind {
            info!(node = %node, reason = %reason, "unfencing");
            let devices = self
                .config
                .fence_devices_for(node)
                .filter(|d| d.unfence)
                .cloned()
                .collect();
            self.effects.push(Effect::Fence {
                id,
                node: node.clone(),
                devices,
                unfence: true,
            });
            return;
        }
        let (Some(spec), Some(op)) = (self.spec_for(kind), kind.op()) else {
            // Gone from the configuration since it was scheduled: the step fails (it must
            // not wait forever) and the engine decides again.
            warn!(action = %kind, "the resource is no longer configured; not run");
            if let Some(run) = &mut self.run {
                run.progress.finish(id, false);
            }
            self.dirty = true;
            return;
        };
        *self.busy.entry(spec.id.clone()).or_default() += 1;
        if let Some(run) = &mut self.run {
            run.digests.insert(id, Digests::of(&spec));
        }
        let notification = match kind {
            ActionKind::Notify { notification, .. } => Some((**notification).clone()),
            _ => None,
        };
        let migration = match kind {
            ActionKind::MigrateTo { node, target, .. } => Some((node.clone(), target.clone())),
            ActionKind::MigrateFrom { node, source, .. } => Some((source.clone(), node.clone())),
            _ => None,
        };
        debug!(action = %kind, "action starts");
        self.effects.push(Effect::Run {
            id,
            node: kind.node().to_owned(),
            spec,
            op,
            notification,
            migration,
        });
    }

    fn on_fence_done(
        &mut self,
        id: ActionId,
        ok: bool,
        now: Time,
        store: &mut dyn Recorder,
    ) -> anyhow::Result<()> {
        let Some((node, unfence)) =
            self.run
                .as_ref()
                .and_then(|r| r.progress.action(id))
                .map(|a| {
                    (
                        a.kind.node().to_owned(),
                        matches!(a.kind, ActionKind::Unfence { .. }),
                    )
                })
        else {
            return Ok(());
        };
        let event = if unfence {
            Event::Unfenced {
                node: node.clone(),
                ok,
            }
        } else {
            Event::Fenced {
                node: node.clone(),
                ok,
            }
        };
        self.record(store, now, vec![(event, None)])?;
        if !ok && unfence {
            error!(node = %node, "unfencing failed: what requires it does not start there");
        } else if !ok {
            error!(node = %node, "fencing failed: nothing it ran is recovered until it succeeds");
            if let Some(run) = &mut self.run {
                run.fence_failed = true;
            }
        }
        self.finish_step(id, ok, now);
        Ok(())
    }

    fn finish_step(&mut self, id: ActionId, ok: bool, now: Time) {
        if let Some(run) = &mut self.run {
            run.progress.finish(id, ok);
        }
        self.advance(now);
    }

    fn on_action_done(
        &mut self,
        id: ActionId,
        result: OpOutcome,
        now: Time,
        store: &mut dyn Recorder,
    ) -> anyhow::Result<()> {
        let Some(run) = &self.run else {
            return Ok(());
        };
        let Some(action) = run.progress.action(id).cloned() else {
            return Ok(());
        };
        let digest = run.digests.get(&id).copied();
        let (Some(resource), Some(op)) = (action.kind.resource(), action.kind.op()) else {
            self.finish_step(id, false, now);
            return Ok(());
        };
        if let Some(n) = self.busy.get_mut(resource) {
            *n = n.saturating_sub(1);
        }
        let Some(spec) = self.config.resource(resource) else {
            warn!(action = %action.kind, reason = %result.exit_reason, "result of a resource no longer configured; not recorded");
            self.finish_step(id, false, now);
            return Ok(());
        };
        let ok = expected(spec, op, result.rc);
        let ms = millis(result.duration);
        crate::metrics::observe_operation(resource, op, result.rc, result.duration);
        match (op.is_probe(), result.rc) {
            (true, rc::NOT_RUNNING) => debug!(action = %action.kind, "probe: not running"),
            (true, rc::OK | rc::RUNNING_PROMOTED | rc::DEGRADED) => {
                info!(resource, node = %action.kind.node(), "probe: already running; adopted")
            }
            _ if ok => info!(action = %action.kind, rc = result.rc, ms, "action done"),
            _ => {
                warn!(action = %action.kind, rc = result.rc, rc_name = rc::name(result.rc), reason = %result.exit_reason, ms, "action failed")
            }
        }
        if matches!(op.name, OpName::Start | OpName::MigrateFrom) && ok {
            self.last_start.insert(resource.to_owned(), now);
        }
        // Monitors follow the role: a new instance or role gets fresh ones.
        if matches!(
            op.name,
            OpName::Start | OpName::Stop | OpName::Promote | OpName::Demote | OpName::MigrateFrom
        ) {
            *self.generation.entry(resource.to_owned()).or_default() += 1;
            self.monitors.retain(|(r, _), _| r != resource);
        }
        let resource = resource.to_owned();
        let ev = Event::OpResult(OpResult {
            resource: resource.clone(),
            node: action.kind.node().to_owned(),
            op,
            rc: result.rc,
            exit_reason: result.exit_reason,
            status: result.status,
            digest: digest.filter(|_| {
                matches!(
                    op.name,
                    OpName::Start | OpName::Reload | OpName::MigrateFrom
                )
            }),
        });
        self.record(store, now, vec![(ev, Some(ms))])?;
        self.finish_step(id, ok, now);
        // A process that died before its start was applied: its exit counts now.
        if self.busy.get(&resource).copied().unwrap_or(0) == 0 {
            let mine = crate::exec::process::take_exits_of(&mut self.deferred_exits, &resource);
            for e in mine {
                self.on_exit(e, now, store)?;
            }
        }
        Ok(())
    }

    /// An event seen elsewhere: recorded, applied; anything but an expected result stops the
    /// running transition (the engine decides again).
    fn on_observed(
        &mut self,
        event: Event,
        duration_ms: Option<u64>,
        now: Time,
        store: &mut dyn Recorder,
    ) -> anyhow::Result<()> {
        let expected_result = match &event {
            Event::OpResult(r) => self
                .config
                .resource(&r.resource)
                .is_some_and(|spec| expected(spec, r.op, r.rc)),
            _ => false,
        };
        match &event {
            Event::OpResult(r) if !expected_result => {
                warn!(resource = %r.resource, node = %r.node, op = %r.op, rc = r.rc, rc_name = rc::name(r.rc), reason = %r.exit_reason, "reported failure")
            }
            Event::NodeUp { node } => info!(node = %node, "node joined"),
            Event::NodeDown { node } => warn!(node = %node, "node lost"),
            _ => {}
        }
        if matches!(
            event,
            Event::NodeUp { .. } | Event::NodeDown { .. } | Event::Fenced { .. }
        ) {
            self.retry_fencing();
        }
        self.record(store, now, vec![(event, duration_ms)])?;
        if expected_result {
            self.dirty = true;
        } else {
            self.abort_run();
        }
        Ok(())
    }

    /// Fencing may be tried again (a command or a node event after it was given up).
    fn retry_fencing(&mut self) {
        if self.fencing_given_up {
            info!("fencing will be tried again");
        }
        self.fencing_given_up = false;
        self.failed_fences = 0;
        self.dirty = true;
    }

    fn on_action_lost(&mut self, id: ActionId, now: Time) {
        let Some(action) = self
            .run
            .as_ref()
            .and_then(|r| r.progress.action(id))
            .cloned()
        else {
            return;
        };
        warn!(action = %action.kind, "action lost with its node");
        if let Some(n) = action.kind.resource().and_then(|r| self.busy.get_mut(r)) {
            *n = n.saturating_sub(1);
        }
        self.abort_run();
        self.finish_step(id, false, now);
    }

    /// Keeps one timer per recurring monitor of every resource started here and healthy.
    fn reconcile_monitors(&mut self, now: Time) {
        let mut desired = Vec::new();
        for spec in self.config.resources() {
            // Unmanaged resources are still monitored (as Pacemaker does); maintenance ones are not.
            if spec.meta.maintenance {
                continue;
            }
            let Some(on) = self
                .state
                .resource(&spec.id)
                .and_then(|r| r.nodes.get(&self.node))
            else {
                continue;
            };
            // Where it is known stopped, the monitors of the stopped role look for it.
            if on.role == Role::Stopped && !on.blocked {
                for op in spec.stopped_monitors() {
                    desired.push((spec.id.clone(), millis(op.interval), op.interval));
                }
                continue;
            }
            if !on.role.is_active() || on.failed || on.demote_on_fail || on.blocked {
                continue;
            }
            // A promotable resource's copy runs the monitors of its role.
            let promoted = spec.is_promotable() && on.role == Role::Promoted;
            for op in spec.recurring_monitors_in(promoted) {
                desired.push((spec.id.clone(), millis(op.interval), op.interval));
            }
        }
        let keep: HashSet<(String, u64)> =
            desired.iter().map(|(r, i, _)| (r.clone(), *i)).collect();
        self.monitors.retain(|k, s| keep.contains(k) || s.in_flight);
        for (r, i, interval) in desired {
            self.monitors.entry((r, i)).or_insert_with(|| Slot {
                next_due: now + interval,
                in_flight: false,
            });
        }
    }

    fn fire_monitor(&mut self, resource: &str, interval_ms: u64, now: Time) {
        let interval = Duration::from_millis(interval_ms);
        let busy = self.busy.get(resource).copied().unwrap_or(0) > 0;
        let Some(slot) = self.monitors.get_mut(&(resource.to_owned(), interval_ms)) else {
            return;
        };
        if busy {
            slot.next_due = now + interval;
            return;
        }
        let Some(spec) = self.config.resource(resource).cloned() else {
            return;
        };
        slot.in_flight = true;
        let generation = self.generation.get(resource).copied().unwrap_or(0);
        let resource = resource.to_owned();
        if let Some(h) = self.health.get(&(resource.clone(), interval_ms)) {
            self.effects.push(Effect::Health {
                resource,
                interval_ms,
                generation,
                peer: h.peer.clone(),
                check: h.check.clone(),
            });
            return;
        }
        self.effects.push(Effect::Monitor {
            resource,
            interval_ms,
            generation,
            spec,
        });
    }

    /// A monitor's run ended: whatever becomes of its result, it runs again at its next
    /// interval. Called once per result, where results arrive.
    fn rearm_monitor(&mut self, resource: &str, interval_ms: u64, now: Time) {
        if let Some(slot) = self.monitors.get_mut(&(resource.to_owned(), interval_ms)) {
            slot.in_flight = false;
            slot.next_due = now + Duration::from_millis(interval_ms);
        }
    }

    fn on_monitor_done(
        &mut self,
        resource: String,
        interval_ms: u64,
        generation: u64,
        result: OpOutcome,
        now: Time,
        store: &mut dyn Recorder,
    ) -> anyhow::Result<()> {
        let current = self.generation.get(&resource).copied().unwrap_or(0);
        let started = self.state.on_node(&resource, &self.node).role.is_active();
        let op = OpKey {
            name: OpName::Monitor,
            interval_ms,
        };
        let Some(spec) = self.config.resource(&resource) else {
            return Ok(());
        };
        // A monitor of the stopped role is for where it does not run.
        let of_stopped = spec.monitor_role(op.interval()) == warden_engine::OpRole::Stopped;
        if generation != current || started == of_stopped {
            debug!(resource = %resource, "stale monitor result dropped");
            return Ok(());
        }
        let ok = expected(spec, op, result.rc);
        crate::metrics::observe_operation(&resource, op, result.rc, result.duration);
        let key = (resource.clone(), interval_ms);
        let changed = self.last_monitor_rc.get(&key) != Some(&result.rc);
        self.last_monitor_rc.insert(key, result.rc);
        if ok && !changed {
            return Ok(());
        }
        if !ok {
            warn!(resource = %resource, op = %op, rc = result.rc, rc_name = rc::name(result.rc), reason = %result.exit_reason, "monitor failed");
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
        self.record(store, now, vec![(ev, Some(millis(result.duration)))])?;
        if !ok {
            self.abort_run();
        }
        Ok(())
    }

    /// A health check serving as a monitor: its result goes through the hysteresis, and the
    /// monitor fails (rc 1) while the check is DOWN.
    #[allow(clippy::too_many_arguments)]
    fn on_health_done(
        &mut self,
        resource: String,
        interval_ms: u64,
        generation: u64,
        error: Option<String>,
        took: Duration,
        now: Time,
        store: &mut dyn Recorder,
    ) -> anyhow::Result<()> {
        let Some(h) = self.health.get_mut(&(resource.clone(), interval_ms)) else {
            return Ok(());
        };
        // A new instance (started or stopped since) starts from UNKNOWN.
        if h.generation != generation {
            h.generation = generation;
            h.health = Default::default();
        }
        // Still coming up: failures before its first success count only after the grace.
        let starting = self
            .last_start
            .get(&resource)
            .is_some_and(|&t| now < t + h.grace);
        if error.is_some() && starting && h.health.state == PeerState::Unknown {
            debug!(resource = %resource, error = ?error, "health check failed while the service starts; not counted");
            return Ok(());
        }
        if let Some(change) = h.health.record(error.is_none(), h.check.hysteresis) {
            if change.routing_changed {
                let (dir, what) = if change.to == PeerState::Down {
                    ("down", "failure(s)")
                } else {
                    ("up", "success(es)")
                };
                warn!(resource = %resource, peer = %h.peer.addr, "health check of {resource} ({}) is turned {dir} after {} {what}", h.peer.addr, change.after);
            }
        }
        let down = h.health.state == PeerState::Down;
        let exit_reason = match (down, error) {
            (true, Some(e)) => format!(
                "health check of {} down after {} failure(s): {e}",
                h.peer.addr, h.health.failures
            ),
            (true, None) => format!("health check of {} down", h.peer.addr),
            _ => String::new(),
        };
        let result = OpOutcome {
            rc: if down { rc::ERR_GENERIC } else { rc::OK },
            exit_reason,
            duration: took,
            status: ExecStatus::Done,
        };
        self.on_monitor_done(resource, interval_ms, generation, result, now, store)
    }

    /// A supervised process ended on its own: a failed monitor (rc 7), now.
    fn on_exit(&mut self, exit: Exited, now: Time, store: &mut dyn Recorder) -> anyhow::Result<()> {
        if self.busy.get(&exit.resource).copied().unwrap_or(0) > 0 {
            // Its start is still being applied (a stop never reports an exit): wait for it.
            self.deferred_exits.push(exit);
            return Ok(());
        }
        let role = self.state.on_node(&exit.resource, &self.node).role;
        if !role.is_active() {
            return Ok(());
        }
        let Some(spec) = self.config.resource(&exit.resource) else {
            return Ok(());
        };
        // The exit fails a monitor of the copy's role (a promoted copy runs only those).
        let promoted = spec.is_promotable() && role == Role::Promoted;
        let interval = spec
            .recurring_monitors_in(promoted)
            .next()
            .map_or(crate::config::IMPLICIT_MONITOR, |o| o.interval);
        let op = OpKey::new(OpName::Monitor, interval);
        warn!(resource = %exit.resource, pid = exit.pid, how = %exit.how, "process exited");
        // Dying right after its start again and again is a crash loop: the engine delays
        // this resource's next start (`crash_loop_delay_max`), nothing else.
        *self.generation.entry(exit.resource.clone()).or_default() += 1;
        let ev = Event::OpResult(OpResult {
            resource: exit.resource,
            node: self.node.clone(),
            op,
            rc: rc::NOT_RUNNING,
            exit_reason: format!("process {}", exit.how),
            status: warden_engine::rc::ExecStatus::Done,
            digest: None,
        });
        self.record(store, now, vec![(ev, Some(0))])?;
        self.abort_run();
        Ok(())
    }

    /// An operator's command: checked against the engine first (nothing is recorded that it
    /// would refuse), recorded, applied; the running transition is aborted.
    pub fn admin(
        &mut self,
        cmd: AdminCommand,
        now: Time,
        store: &mut dyn Recorder,
    ) -> Result<Vec<Effect>, ControlError> {
        let mut probe = self.state.clone();
        warden_engine::apply(&self.config, &mut probe, &Event::Admin(cmd.clone()), now)?;
        info!(command = %cmd, "admin command");
        self.retry_fencing();
        self.record(store, now, vec![(Event::Admin(cmd), None)])
            .map_err(|e| ControlError::Store(format!("{e:#}")))?;
        self.abort_run();
        Ok(self.take_effects())
    }

    /// Records an agent's promotion score. Nothing is recorded when it did not change (agents
    /// set it on every monitor); a change is scheduled after the running transition, which
    /// it does not abort.
    pub fn promotion_score(
        &mut self,
        resource: String,
        node: String,
        score: Option<Score>,
        now: Time,
        store: &mut dyn Recorder,
    ) -> Result<Vec<Effect>, ControlError> {
        let Some(spec) = self.config.resource(&resource) else {
            return Err(ApplyError::UnknownResource(resource).into());
        };
        if !spec.is_promotable() {
            return Err(ControlError::NotPromotable(resource));
        }
        if self.config.node_index(&node).is_none() {
            return Err(ApplyError::UnknownNode(node).into());
        }
        let current = self
            .state
            .resource(&resource)
            .and_then(|r| r.promotion_scores.get(&node))
            .copied();
        if current == score {
            return Ok(Vec::new());
        }
        debug!(resource = %resource, node = %node, score = ?score.map(|s| s.to_string()), "promotion score");
        let ev = Event::PromotionScore {
            resource,
            node,
            score,
        };
        self.record(store, now, vec![(ev, None)])
            .map_err(|e| ControlError::Store(format!("{e:#}")))?;
        self.dirty = true;
        Ok(self.take_effects())
    }

    /// Stops: with `leave_running`, once the actions in flight finish; otherwise the node is
    /// recorded as shutting down and the engine stops its resources in its own order (what
    /// depends on a resource first, promoted copies demoted first), then the core is
    /// finished. Asking again to leave them running cuts a stop short.
    pub fn shutdown(
        &mut self,
        leave_running: bool,
        now: Time,
        store: &mut dyn Recorder,
    ) -> anyhow::Result<Vec<Effect>> {
        match self.shutting_down {
            Some(true) => return Ok(Vec::new()),
            Some(false) if !leave_running => return Ok(Vec::new()),
            _ => {}
        }
        info!(leave_running, "shutting down");
        let first = self.shutting_down.is_none();
        self.shutting_down = Some(leave_running);
        if !leave_running && first {
            let node = self.node.clone();
            self.record(store, now, vec![(Event::NodeShutdown { node }, None)])?;
        }
        self.abort_run();
        Ok(self.take_effects())
    }

    fn save_definitions(&mut self) {
        let used: HashSet<u64> = self
            .state
            .resources
            .values()
            .flat_map(|rs| rs.nodes.values())
            .filter(|on| on.role != Role::Stopped)
            .filter_map(|on| on.digest)
            .collect();
        let current: HashSet<u64> = self
            .config
            .resources()
            .iter()
            .map(ResourceSpec::digest)
            .collect();
        self.previous
            .retain(|d, _| used.contains(d) && !current.contains(d));
        let defs = self.definitions();
        self.effects.push(Effect::SaveDefinitions(defs));
    }

    /// Orphans stopped everywhere leave the configuration (and the status).
    fn forget_stopped_orphans(&mut self) -> anyhow::Result<()> {
        let before = self.orphans.len();
        let state = &self.state;
        self.orphans.retain(|o| {
            let done = stopped_everywhere(state, &o.id);
            if done {
                info!(resource = %o.id, "orphan stopped; forgotten");
            }
            !done
        });
        if self.orphans.len() != before {
            self.config = Arc::new(
                self.file_config
                    .with_extra_resources(self.orphans.clone())?,
            );
            self.save_definitions();
        }
        Ok(())
    }

    /// Applies a new file's resources, constraints and cluster options: new resources
    /// start, those gone from the file are stopped as orphans, a changed definition restarts
    /// (the engine compares digests) and its failures no longer count (they are cleaned up
    /// where there are any, as Pacemaker clears the fail count of what failed with other
    /// parameters), everything else takes effect at the next transition. Returns what
    /// changed, one line each. Nothing changes when it fails.
    pub fn reload(
        &mut self,
        new: &Config,
        health_monitors: &[HealthMonitor],
        now: Time,
        store: &mut dyn Recorder,
    ) -> anyhow::Result<(Vec<String>, Vec<Effect>)> {
        let mut changes = Vec::new();
        let old = Arc::clone(&self.config);
        let mut previous = Vec::new();
        let mut cleanups = Vec::new();
        for spec in new.resources() {
            match old.resource(&spec.id) {
                None => changes.push(format!("resource {}: new", spec.id)),
                Some(o) if o.meta.orphan => {
                    changes.push(format!("resource {}: back in the file", spec.id))
                }
                Some(o) if o.digest() != spec.digest() => {
                    previous.push(o.clone());
                    let how = if spec.reloadable.is_some()
                        && o.restart_digest() == spec.restart_digest()
                    {
                        "reloads"
                    } else {
                        "restarts"
                    };
                    changes.push(format!(
                        "resource {}: definition changed: it {how} where it runs",
                        spec.id
                    ));
                    if let Some(rs) = self.state.resource(&spec.id) {
                        for (node, on) in &rs.nodes {
                            if on.fail_counts.values().any(|&c| c > 0) || !on.failed_ops.is_empty()
                            {
                                changes.push(format!(
                                    "resource {}: its failures on {node} were with the old definition: cleaned up",
                                    spec.id
                                ));
                                cleanups.push(AdminCommand::Cleanup {
                                    resource: Some(spec.id.clone()),
                                    node: Some(node.clone()),
                                });
                            }
                        }
                    }
                }
                Some(o) if o != spec => changes.push(format!("resource {}: updated", spec.id)),
                Some(_) => {}
            }
        }
        let mut orphans: Vec<ResourceSpec> = Vec::new();
        for o in old.resources() {
            if new.resource(&o.id).is_some() {
                continue;
            }
            if stopped_everywhere(&self.state, &o.id) {
                if !o.meta.orphan {
                    changes.push(format!("resource {}: removed", o.id));
                }
                continue;
            }
            if !o.meta.orphan {
                changes.push(format!(
                    "resource {}: gone from the file: it is stopped",
                    o.id
                ));
            }
            let mut orphan = o.clone();
            orphan.meta.orphan = true;
            orphan.meta.target_role = TargetRole::Stopped;
            orphan
                .ops
                .retain(|op| op.name != OpName::Monitor || op.interval.is_zero());
            orphans.push(orphan);
        }
        let constraints = |c: &Config| {
            (
                c.locations().to_vec(),
                c.colocations().to_vec(),
                c.orders().to_vec(),
                c.groups().to_vec(),
            )
        };
        if constraints(&self.file_config) != constraints(new) {
            changes.push("constraints: updated".to_owned());
        }
        if self.file_config.cluster != new.cluster
            || self.file_config.fence_devices() != new.fence_devices()
        {
            changes.push("cluster options: updated".to_owned());
        }
        let config = new.with_extra_resources(orphans.clone())?;
        for p in previous {
            self.previous.insert(p.digest(), p);
        }
        self.file_config = Arc::new(new.clone());
        self.orphans = orphans;
        self.config = Arc::new(config);
        // Health checks serving as monitors: unchanged ones keep their hysteresis.
        let mut health = HashMap::new();
        for h in health_monitors {
            let key = (h.resource.clone(), millis(h.check.interval));
            let mon = match self.health.remove(&key) {
                Some(m) if m.peer == h.peer && m.check == h.check && m.grace == h.grace => m,
                _ => HealthMon::new(h),
            };
            health.insert(key, mon);
        }
        self.health = health;
        self.save_definitions();
        if !cleanups.is_empty() {
            let events = cleanups
                .into_iter()
                .map(|c| (Event::Admin(c), None))
                .collect();
            self.record(store, now, events)?;
        }
        if !changes.is_empty() {
            self.abort_run();
        }
        Ok((changes, self.take_effects()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    /// Answers every effect at once: probes find nothing, other actions succeed, every fence
    /// device fails. Returns how many fence rounds ran.
    fn drive(core: &mut Core, store: &mut MemoryStore, now: Time, effects: Vec<Effect>) -> u32 {
        let mut fences = 0;
        let mut queue = effects;
        while let Some(e) = queue.pop() {
            let input = match e {
                Effect::Fence { id, .. } => {
                    fences += 1;
                    Input::FenceDone { id, ok: false }
                }
                Effect::Run { id, op, .. } => Input::ActionDone {
                    id,
                    result: OpOutcome {
                        rc: if op.is_probe() {
                            rc::NOT_RUNNING
                        } else {
                            rc::OK
                        },
                        exit_reason: String::new(),
                        duration: Duration::ZERO,
                        status: ExecStatus::Done,
                    },
                },
                _ => continue,
            };
            queue.extend(core.handle(input, now, store).expect("handle"));
        }
        fences
    }

    #[test]
    fn fencing_that_keeps_failing_stops_after_the_attempt_limit_until_a_command() {
        let toml = "[[node]]\nname = \"n1\"\n[[node]]\nname = \"n2\"\n\
                    [[fence_device]]\nname = \"ipmi\"\ncommand = [\"/bin/false\"]\n\
                    [[resource]]\nid = \"db\"\nclass = \"ocf\"\nprovider = \"heartbeat\"\ntype = \"Dummy\"\n";
        let loaded = crate::config::parse(toml, "t.toml", || "n1".into()).expect("config");
        let mut core = Core::new(Boot {
            file_config: Arc::new(loaded.engine),
            orphans: vec![],
            previous: vec![],
            state: State::default(),
            node: "n1".into(),
            health_monitors: vec![],
            monitors_here: false,
        })
        .expect("core");
        let mut store = MemoryStore::default();
        let mut now = Time::from_millis(1_000_000_000);
        let observe = |core: &mut Core, store: &mut MemoryStore, now, event| {
            core.handle(
                Input::Observed {
                    event,
                    duration_ms: None,
                },
                now,
                store,
            )
            .expect("observe")
        };
        for node in ["n1", "n2"] {
            observe(
                &mut core,
                &mut store,
                now,
                Event::NodeUp { node: node.into() },
            );
        }
        let fx = core.poll(now).expect("poll");
        drive(&mut core, &mut store, now, fx);
        assert_eq!(core.state().on_node("db", "n1").role, Role::Started);
        // n1 is lost: it must be fenced before db starts on n2, and every fence fails.
        observe(
            &mut core,
            &mut store,
            now,
            Event::NodeDown { node: "n1".into() },
        );
        let mut fences = 0;
        for _ in 0..200 {
            now = now + Duration::from_secs(1);
            let fx = core.poll(now).expect("poll");
            fences += drive(&mut core, &mut store, now, fx);
        }
        assert_eq!(fences, FENCE_MAX_ATTEMPTS, "fence rounds before giving up");
        assert_eq!(
            core.state().on_node("db", "n2").role,
            Role::Stopped,
            "recovered without a fence"
        );
        // A command tries again.
        let fx = core
            .admin(
                AdminCommand::Cleanup {
                    resource: None,
                    node: None,
                },
                now,
                &mut store,
            )
            .expect("cleanup");
        fences = drive(&mut core, &mut store, now, fx);
        for _ in 0..5 {
            now = now + Duration::from_secs(1);
            let fx = core.poll(now).expect("poll");
            fences += drive(&mut core, &mut store, now, fx);
        }
        assert!(fences >= 1, "no new fence attempt after the command");
    }
}
