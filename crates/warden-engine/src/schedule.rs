//! The scheduler: from configuration, state and `now`, the transition that brings the cluster
//! where it should be (ordered actions, the summary operators read, and the next wake-up).

use std::fmt;

use crate::config::{Config, MultipleActive, NoQuorumPolicy, ResourceSpec, TargetRole};
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// It should run, but no node may run it (bans, standby, failures, node loss).
    NodeAvailability,
    /// The cluster lost quorum.
    NoQuorum,
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

/// [`schedule`] with options.
pub fn schedule_with(
    config: &Config,
    state: &State,
    now: Time,
    opts: ScheduleOptions,
) -> Transition {
    let mut s = Scheduler::new(config, state, now, opts);
    s.fence_unclean_nodes();
    let mut order: Vec<usize> = (0..config.resources().len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(config.resources()[i].meta.priority));
    for r in order {
        s.resource(r);
    }
    s.out
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

    fn resource(&mut self, r: usize) {
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
        // Record the active nodes as this resource's load, whatever happens below.
        let live_active: Vec<usize> = (0..node_names.len())
            .filter(|&i| self.eff[i].role == Role::Started && self.nodes[i].reachable())
            .collect();
        let unclean_active: Vec<usize> = (0..node_names.len())
            .filter(|&i| self.eff[i].role == Role::Started && self.nodes[i].unclean)
            .collect();
        // Starting anywhere waits for the fencing of every unclean node it might run on.
        let fences: Vec<ActionId> = (0..node_names.len())
            .filter(|&i| self.eff[i].role != Role::Stopped)
            .filter_map(|i| self.nodes[i].fence)
            .collect();

        if meta.maintenance || self.eff.iter().any(|e| e.blocked) {
            for &i in &live_active {
                self.nodes[i].load += 1;
            }
            return;
        }

        // Probe wherever we do not know the state.
        let mut probes = Vec::new();
        for (i, n) in node_names.iter().enumerate() {
            if self.nodes[i].reachable() && self.eff[i].role == Role::Unknown {
                let kind = ActionKind::Probe {
                    resource: spec.id.clone(),
                    node: n.clone(),
                };
                probes.push(self.push(kind, Vec::new()));
            }
        }

        let scores = self.scores(r, &live_active);
        if self.opts.scores {
            for (i, s) in scores.iter().enumerate() {
                self.out.scores.push(ScoreEntry {
                    resource: spec.id.clone(),
                    node: node_names[i].clone(),
                    score: *s,
                });
            }
        }

        if !meta.is_managed {
            for &i in &live_active {
                self.nodes[i].load += 1;
            }
            return;
        }

        let target_role = rs.and_then(|rs| rs.target_role).unwrap_or(meta.target_role);
        let quorum = if self.state.no_quorum {
            self.config.cluster.no_quorum_policy
        } else {
            NoQuorumPolicy::Ignore
        };
        let quorum_stops = matches!(quorum, NoQuorumPolicy::Stop | NoQuorumPolicy::Demote);
        let want_run = target_role == TargetRole::Started
            && !self.eff.iter().any(|e| e.stop_on_fail)
            && !quorum_stops;

        let mut target = if want_run {
            self.choose(&scores, &live_active)
        } else {
            None
        };
        // Without quorum under "freeze", nothing starts where it does not already run.
        if quorum == NoQuorumPolicy::Freeze && target.is_some_and(|t| !live_active.contains(&t)) {
            target = None;
        }

        let active_count = live_active.len() + unclean_active.len();
        let multiple = active_count > 1;
        if multiple {
            match meta.multiple_active {
                MultipleActive::Block => return,
                MultipleActive::StopOnly => target = None,
                MultipleActive::StopStart | MultipleActive::StopUnexpected => {}
            }
        }

        // Stops.
        let mut stops = Vec::new();
        let mut stopped_target = false;
        for &i in &live_active {
            let keep = Some(i) == target
                && !self.eff[i].failed
                && !(multiple && meta.multiple_active == MultipleActive::StopStart);
            if !keep {
                let kind = ActionKind::Stop {
                    resource: spec.id.clone(),
                    node: node_names[i].clone(),
                };
                stops.push(self.push(kind, Vec::new()));
                stopped_target |= Some(i) == target;
            }
        }
        // Start, after every probe and stop of this resource and the fencing of lost nodes.
        if let Some(t) = target {
            if !live_active.contains(&t) || stopped_target {
                let mut deps = probes.clone();
                deps.extend(&stops);
                deps.extend(&fences);
                let kind = ActionKind::Start {
                    resource: spec.id.clone(),
                    node: node_names[t].clone(),
                };
                self.push(kind, deps);
            }
            self.nodes[t].load += 1;
        }

        self.summarize(
            spec,
            target,
            want_run,
            &live_active,
            &unclean_active,
            stopped_target,
        );
    }

    /// The score of every node for resource `r` (design section 3, "Placement").
    fn scores(&self, r: usize, live_active: &[usize]) -> Vec<Score> {
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

    fn summarize(
        &mut self,
        spec: &ResourceSpec,
        target: Option<usize>,
        want_run: bool,
        live_active: &[usize],
        unclean_active: &[usize],
        stopped_target: bool,
    ) {
        let names = self.config.nodes();
        let id = spec.id.clone();
        let name = |i: usize| names[i].clone();
        let from: Vec<usize> = {
            let mut v: Vec<usize> = live_active.iter().chain(unclean_active).copied().collect();
            v.sort_unstable();
            v
        };
        let stop_reason = if !want_run
            && self.state.no_quorum
            && self.config.cluster.no_quorum_policy != NoQuorumPolicy::Ignore
        {
            Some(StopReason::NoQuorum)
        } else if want_run || self.eff.iter().any(|e| e.fatal) {
            Some(StopReason::NodeAvailability)
        } else {
            None
        };
        let change = match (from.as_slice(), target) {
            ([], Some(t)) => Change::Start {
                resource: id,
                node: name(t),
            },
            ([], None) => return,
            (&[f], Some(t)) if f == t => {
                if !stopped_target {
                    return;
                }
                Change::Recover {
                    resource: id,
                    from: name(f),
                    to: name(t),
                }
            }
            (&[f], Some(t)) if self.eff[f].failed => Change::Recover {
                resource: id,
                from: name(f),
                to: name(t),
            },
            (&[f], Some(t)) => Change::Move {
                resource: id,
                from: name(f),
                to: name(t),
            },
            (&[f], None) => Change::Stop {
                resource: id,
                node: name(f),
                reason: stop_reason,
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
                    Some(t) if many.contains(&t) && stopped_target => Change::Restart {
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
