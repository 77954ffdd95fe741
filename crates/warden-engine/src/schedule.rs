//! The scheduler: from configuration, state and `now`, the transition that brings the cluster
//! where it should be (ordered actions, the summary operators read, and the next wake-up).

use std::fmt;

use crate::config::{Config, MultipleActive, NoQuorumPolicy, OrderKind, ResourceSpec, TargetRole};
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
    /// Fence (reboot) a node; what it ran counts as stopped once this succeeds.
    Fence {
        node: String,
        reason: String,
    },
}

impl ActionKind {
    /// The operation this action runs, for resource actions.
    pub fn op(&self) -> Option<OpKey> {
        use crate::config::OpName;
        match self {
            ActionKind::Probe { .. } => Some(OpKey::probe()),
            ActionKind::Start { .. } => Some(OpKey {
                name: OpName::Start,
                interval_ms: 0,
            }),
            ActionKind::Stop { .. } => Some(OpKey {
                name: OpName::Stop,
                interval_ms: 0,
            }),
            ActionKind::Fence { .. } => None,
        }
    }

    pub fn resource(&self) -> Option<&str> {
        match self {
            ActionKind::Probe { resource, .. }
            | ActionKind::Start { resource, .. }
            | ActionKind::Stop { resource, .. } => Some(resource),
            ActionKind::Fence { .. } => None,
        }
    }

    pub fn node(&self) -> &str {
        match self {
            ActionKind::Probe { node, .. }
            | ActionKind::Start { node, .. }
            | ActionKind::Stop { node, .. }
            | ActionKind::Fence { node, .. } => node,
        }
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ActionKind::Probe { resource, node } => write!(f, "{resource}_monitor_0 on {node}"),
            ActionKind::Start { resource, node } => write!(f, "{resource}_start_0 on {node}"),
            ActionKind::Stop { resource, node } => write!(f, "{resource}_stop_0 on {node}"),
            ActionKind::Fence { node, .. } => write!(f, "fence (reboot) {node}"),
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
    },
    /// A failed resource restarted in place (`from == to`) or elsewhere.
    Recover {
        resource: String,
        from: String,
        to: String,
    },
    Move {
        resource: String,
        from: String,
        to: String,
    },
    Restart {
        resource: String,
        node: String,
        reason: String,
    },
    Fence {
        node: String,
        reason: String,
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
            } => {
                write!(f, "Stop {resource} ( {node} )")?;
                match reason {
                    Some(StopReason::NodeAvailability) => f.write_str(" due to node availability"),
                    Some(StopReason::NoQuorum) => f.write_str(" due to no quorum"),
                    Some(StopReason::Order(why)) => write!(f, " due to {why}"),
                    None => Ok(()),
                }
            }
            Change::Recover { resource, from, to } if from == to => {
                write!(f, "Recover {resource} ( {from} )")
            }
            Change::Recover { resource, from, to } => {
                write!(f, "Recover {resource} ( {from} -> {to} )")
            }
            Change::Move { resource, from, to } => write!(f, "Move {resource} ( {from} -> {to} )"),
            Change::Restart {
                resource,
                node,
                reason,
            } => {
                write!(f, "Restart {resource} ( {node} ) due to {reason}")
            }
            Change::Fence { node, reason } => write!(f, "Fence (reboot) {node} '{reason}'"),
        }
    }
}

/// A placement score, reported by `simulate --scores`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScoreEntry {
    pub resource: String,
    pub node: String,
    pub score: Score,
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
/// or restarts, then emit actions: fences, probes, stops in reverse order, starts in order, so
/// every dependency points to an earlier action.
pub fn schedule_with(
    config: &Config,
    state: &State,
    now: Time,
    opts: ScheduleOptions,
) -> Transition {
    let mut s = Scheduler::new(config, state, now, opts);
    s.fence_unclean_nodes();
    let mut plans: Vec<Plan> = vec![Plan::default(); config.resources().len()];
    for &r in config.placement_order() {
        plans[r] = s.plan(r, &plans);
    }
    s.apply_orders(&mut plans);
    s.emit(&plans);
    for &r in config.placement_order() {
        s.summarize(r, &plans[r]);
    }
    s.out
}

/// What the scheduler decided for one resource, before any action exists.
#[derive(Clone, Debug, Default)]
struct Plan {
    /// Starts and stops are decided for it (managed, not blocked, not in maintenance, not
    /// multiple-active with the `block` policy).
    acts: bool,
    /// Nodes to probe.
    probes: Vec<usize>,
    /// Nodes it runs on (reachable), and on unclean nodes waiting for fencing.
    live_active: Vec<usize>,
    unclean_active: Vec<usize>,
    /// Nodes where it is active and failed.
    failed: Vec<usize>,
    /// Fence actions a start must wait for.
    fences: Vec<ActionId>,
    want_run: bool,
    fatal: bool,
    /// Where it runs after the transition (for resources that do not act: where it runs now).
    target: Option<usize>,
    /// Nodes to stop it on, and the node to start it on.
    stops: Vec<usize>,
    start: Option<usize>,
    /// Why an order constraint changed the plan: "required X start", "unrunnable X start".
    forced: Option<String>,
}

impl Plan {
    /// Stopped and started again on the node it stays on.
    fn restarts_in_place(&self) -> bool {
        self.start.is_some_and(|t| self.stops.contains(&t))
    }
}

/// What the scheduler needs to know of one node.
#[derive(Clone, Debug, Default)]
struct NodeView {
    online: bool,
    /// Waiting to be fenced (only when fencing is enabled).
    unclean: bool,
    standby: bool,
    /// Resources placed here so far in this run: the tie-break after score.
    load: u32,
    fence: Option<ActionId>,
}

impl NodeView {
    fn can_run(&self) -> bool {
        self.online && !self.unclean && !self.standby
    }

    /// Whether actions can be run there at all.
    fn reachable(&self) -> bool {
        self.online && !self.unclean
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
}

impl<'a> Scheduler<'a> {
    fn new(config: &'a Config, state: &'a State, now: Time, opts: ScheduleOptions) -> Self {
        let fencing = config.fencing_enabled();
        let mut nodes: Vec<NodeView> = config
            .nodes()
            .iter()
            .map(|n| {
                let ns = state.node(n);
                NodeView {
                    online: ns.is_some_and(|s| s.online),
                    unclean: fencing && ns.is_some_and(|s| s.unclean.is_some()),
                    standby: ns.is_some_and(|s| s.standby),
                    load: 0,
                    fence: None,
                }
            })
            .collect();
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
        Scheduler {
            config,
            state,
            now,
            opts,
            nodes,
            out: Transition::default(),
            eff: Vec::new(),
        }
    }

    fn push(&mut self, kind: ActionKind, deps: Vec<ActionId>) -> ActionId {
        let id = self.out.actions.len();
        self.out.actions.push(Action { id, kind, deps });
        id
    }

    fn fence_unclean_nodes(&mut self) {
        for i in 0..self.nodes.len() {
            if !self.nodes[i].unclean {
                continue;
            }
            let node = self.config.nodes()[i].clone();
            let reason = self
                .state
                .node(&node)
                .and_then(|s| s.unclean.clone())
                .unwrap_or_default();
            self.out.summary.push(Change::Fence {
                node: node.clone(),
                reason: reason.clone(),
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
        let mut p = Plan {
            live_active: (0..node_names.len())
                .filter(|&i| self.eff[i].role == Role::Started && self.nodes[i].reachable())
                .collect(),
            unclean_active: (0..node_names.len())
                .filter(|&i| self.eff[i].role == Role::Started && self.nodes[i].unclean)
                .collect(),
            // Starting anywhere waits for the fencing of every unclean node it might run on.
            fences: (0..node_names.len())
                .filter(|&i| self.eff[i].role != Role::Stopped)
                .filter_map(|i| self.nodes[i].fence)
                .collect(),
            fatal: self.eff.iter().any(|e| e.fatal),
            ..Plan::default()
        };
        p.failed = p
            .live_active
            .iter()
            .chain(&p.unclean_active)
            .copied()
            .filter(|&i| self.eff[i].failed)
            .collect();
        // Resources that do not act stay where they are, as far as others are concerned.
        p.target = p.live_active.first().copied();

        if meta.maintenance || self.eff.iter().any(|e| e.blocked) {
            self.add_load(&p.live_active);
            return p;
        }
        // Probe wherever we do not know the state.
        p.probes = (0..node_names.len())
            .filter(|&i| self.nodes[i].reachable() && self.eff[i].role == Role::Unknown)
            .collect();

        let scores = self.scores(r, &p.live_active, plans);
        if self.opts.scores {
            for (i, s) in scores.iter().enumerate() {
                self.out.scores.push(ScoreEntry {
                    resource: spec.id.clone(),
                    node: node_names[i].clone(),
                    score: *s,
                });
            }
        }
        let multiple = p.live_active.len() + p.unclean_active.len() > 1;
        if !meta.is_managed || (multiple && meta.multiple_active == MultipleActive::Block) {
            self.add_load(&p.live_active);
            return p;
        }
        p.acts = true;

        let target_role = rs.and_then(|rs| rs.target_role).unwrap_or(meta.target_role);
        let quorum = if self.state.no_quorum {
            self.config.cluster.no_quorum_policy
        } else {
            NoQuorumPolicy::Ignore
        };
        let quorum_stops = matches!(quorum, NoQuorumPolicy::Stop | NoQuorumPolicy::Demote);
        p.want_run = target_role == TargetRole::Started
            && !self.eff.iter().any(|e| e.stop_on_fail)
            && !quorum_stops;

        let mut target = if p.want_run {
            self.choose(&scores, &p.live_active)
        } else {
            None
        };
        // Without quorum under "freeze", nothing starts where it does not already run.
        if quorum == NoQuorumPolicy::Freeze && target.is_some_and(|t| !p.live_active.contains(&t)) {
            target = None;
        }
        if multiple && meta.multiple_active == MultipleActive::StopOnly {
            target = None;
        }
        // Kept from running by what it must run with: say so, not "node availability".
        if p.want_run && target.is_none() {
            let stuck = config
                .colocated_with(r)
                .iter()
                .find(|(w, s)| *s == Score::INFINITY && plans[*w].target.is_none());
            if let Some(&(w, _)) = stuck {
                p.forced = Some(format!("unrunnable {} start", config.resources()[w].id));
            }
        }
        for &i in &p.live_active {
            let keep = Some(i) == target
                && !self.eff[i].failed
                && !(multiple && meta.multiple_active == MultipleActive::StopStart);
            if !keep {
                p.stops.push(i);
            }
        }
        if let Some(t) = target {
            if !p.live_active.contains(&t) || p.stops.contains(&t) {
                p.start = Some(t);
            }
            self.nodes[t].load += 1;
        }
        p.target = target;
        p
    }

    fn add_load(&mut self, nodes: &[usize]) {
        for &i in nodes {
            self.nodes[i].load += 1;
        }
    }

    /// Mandatory orders: a `then` whose `first` will not run cannot run; a `then` whose
    /// `first` (re)starts restarts after it. Repeated until nothing changes (plans only move
    /// toward stopping and restarting, so this ends).
    fn apply_orders(&self, plans: &mut [Plan]) {
        let config = self.config;
        loop {
            let mut changed = false;
            for f in 0..plans.len() {
                for &(t, k) in config.orders_from(f) {
                    if config.orders()[k].kind != OrderKind::Mandatory || !plans[t].acts {
                        continue;
                    }
                    let first = config.resources()[f].id.as_str();
                    let (first_runs, first_starts) =
                        (plans[f].target.is_some(), plans[f].start.is_some());
                    let then = &mut plans[t];
                    if !first_runs && then.target.is_some() {
                        then.target = None;
                        then.start = None;
                        then.stops = then.live_active.clone();
                        then.forced = Some(format!("unrunnable {first} start"));
                        changed = true;
                    } else if first_starts && then.start.is_none() {
                        if let Some(n) = then.target {
                            if !then.stops.contains(&n) {
                                then.stops.push(n);
                            }
                            then.start = Some(n);
                            then.forced = Some(format!("required {first} start"));
                            changed = true;
                        }
                    }
                }
            }
            if !changed {
                return;
            }
        }
    }

    /// Turns plans into actions: probes, then stops (each after the stops of what is ordered
    /// after it), then starts (each after its own probes and stops, the fencing it waits for,
    /// and the starts of what is ordered before it).
    fn emit(&mut self, plans: &[Plan]) {
        let config = self.config;
        let n = plans.len();
        let id = |r: usize| config.resources()[r].id.clone();
        let node = |i: usize| config.nodes()[i].clone();
        let mut probes: Vec<Vec<ActionId>> = vec![Vec::new(); n];
        let mut stops: Vec<Vec<ActionId>> = vec![Vec::new(); n];
        let mut starts: Vec<Option<ActionId>> = vec![None; n];
        for &r in config.action_order() {
            for &i in &plans[r].probes {
                probes[r].push(self.push(
                    ActionKind::Probe {
                        resource: id(r),
                        node: node(i),
                    },
                    Vec::new(),
                ));
            }
        }
        for &r in config.action_order().iter().rev() {
            let mut deps = Vec::new();
            for &(t, k) in config.orders_from(r) {
                let o = &config.orders()[k];
                if o.symmetric || o.kind == OrderKind::Serialize {
                    deps.extend(&stops[t]);
                }
            }
            for &i in &plans[r].stops {
                stops[r].push(self.push(
                    ActionKind::Stop {
                        resource: id(r),
                        node: node(i),
                    },
                    deps.clone(),
                ));
            }
        }
        for &r in config.action_order() {
            let p = &plans[r];
            let Some(t) = p.start else { continue };
            let mut deps = probes[r].clone();
            deps.extend(&stops[r]);
            deps.extend(&p.fences);
            for &(f, k) in config.orders_to(r) {
                deps.extend(starts[f]);
                if config.orders()[k].kind == OrderKind::Serialize {
                    deps.extend(&stops[f]);
                }
            }
            starts[r] = Some(self.push(
                ActionKind::Start {
                    resource: id(r),
                    node: node(t),
                },
                deps,
            ));
        }
    }

    /// The score of every node for resource `r` (design section 3, "Placement").
    fn scores(&self, r: usize, live_active: &[usize], plans: &[Plan]) -> Vec<Score> {
        let config = self.config;
        let spec = &config.resources()[r];
        let rs = self.state.resource(&spec.id);
        let fatal = self.eff.iter().any(|e| e.fatal);
        let mut scores: Vec<Option<Score>> =
            vec![config.cluster.symmetric.then_some(Score::ZERO); self.nodes.len()];
        for &(i, s) in config.locations_of(r) {
            scores[i] = Some(scores[i].unwrap_or(Score::ZERO).add(s));
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
                let e = &self.eff[i];
                let banned = rs.is_some_and(|rs| rs.banned.contains(name));
                if fatal || banned || e.hard_ban || e.threshold_reached || !self.nodes[i].can_run()
                {
                    return Score::MINUS_INFINITY;
                }
                let mut s = s.unwrap_or(Score::MINUS_INFINITY);
                if live_active.contains(&i) {
                    s = s.add(spec.meta.resource_stickiness);
                }
                // Colocations: with the node the other resource will run on (placed before).
                for &(w, score) in config.colocated_with(r) {
                    match plans[w].target {
                        Some(t) if t == i => s = s.add(score),
                        _ if score == Score::INFINITY => s = Score::MINUS_INFINITY,
                        _ => {}
                    }
                }
                s
            })
            .collect()
    }

    /// Highest score wins; ties go to the node it runs on, then the least loaded, then the
    /// first in configuration order. A negative score means "cannot run here".
    fn choose(&self, scores: &[Score], live_active: &[usize]) -> Option<usize> {
        (0..scores.len())
            .filter(|&i| scores[i].value() >= 0)
            .min_by_key(|&i| {
                (
                    std::cmp::Reverse(scores[i]),
                    !live_active.contains(&i),
                    self.nodes[i].load,
                    i,
                )
            })
    }

    /// The summary line(s) of one resource's plan.
    fn summarize(&mut self, r: usize, p: &Plan) {
        if !p.acts {
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
        let target = p.target;
        let stop_reason = |forced: &Option<String>| -> Option<StopReason> {
            if forced.is_some() {
                None
            } else if !p.want_run
                && self.state.no_quorum
                && self.config.cluster.no_quorum_policy != NoQuorumPolicy::Ignore
            {
                Some(StopReason::NoQuorum)
            } else if p.want_run || p.fatal {
                Some(StopReason::NodeAvailability)
            } else {
                None
            }
        };
        let change = match (from.as_slice(), target) {
            ([], Some(t)) if p.start.is_some() => Change::Start {
                resource: id,
                node: name(t),
            },
            ([], _) => return,
            (&[f], Some(t)) if f == t => {
                if !p.restarts_in_place() {
                    return;
                }
                match (&p.forced, p.failed.contains(&f)) {
                    (Some(why), false) => Change::Restart {
                        resource: id,
                        node: name(t),
                        reason: why.clone(),
                    },
                    _ => Change::Recover {
                        resource: id,
                        from: name(f),
                        to: name(t),
                    },
                }
            }
            (&[f], Some(t)) if p.failed.contains(&f) => Change::Recover {
                resource: id,
                from: name(f),
                to: name(t),
            },
            (&[f], Some(t)) => Change::Move {
                resource: id,
                from: name(f),
                to: name(t),
            },
            (&[f], None) => match &p.forced {
                Some(why) => Change::Stop {
                    resource: id,
                    node: name(f),
                    reason: Some(StopReason::Order(why.clone())),
                },
                None => Change::Stop {
                    resource: id,
                    node: name(f),
                    reason: stop_reason(&p.forced),
                },
            },
            (many, target) => {
                for &f in many {
                    if Some(f) != target {
                        self.out.summary.push(Change::Stop {
                            resource: id.clone(),
                            node: name(f),
                            reason: None,
                        });
                    }
                }
                match target {
                    Some(t) if many.contains(&t) && p.restarts_in_place() => Change::Restart {
                        resource: id,
                        node: name(t),
                        reason: "resource being active on multiple nodes".to_owned(),
                    },
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
