//! Runs a transition against results the caller decides: the deterministic executor behind
//! `warden simulate`, the semantics tests and the seeded simulation. Pure: no agent runs. Its
//! progress is the daemon's own [`Progress`], in the mode that skips only what depends on a
//! failure.

use crate::apply::{Event, OpResult, apply, expected};
use crate::config::Config;
use crate::progress::Progress;
use crate::schedule::{ActionKind, Transition};
use crate::state::State;
use crate::time::Time;

/// What a simulated action returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// An agent operation's return code and exit reason.
    Rc { rc: i32, exit_reason: String },
    /// Whether a fence action succeeded.
    Fenced(bool),
}

impl Outcome {
    pub fn rc(rc: i32) -> Outcome {
        Outcome::Rc {
            rc,
            exit_reason: String::new(),
        }
    }
}

/// What happened to one action of the transition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Executed {
    pub id: usize,
    /// None when it was skipped because something it depends on failed.
    pub outcome: Option<Outcome>,
    /// Whether the result was the expected one.
    pub ok: bool,
}

/// The result an action gets when nothing says otherwise: probes find the resource stopped,
/// every other operation and every fence succeeds.
pub fn default_outcome(kind: &ActionKind) -> Outcome {
    match kind {
        ActionKind::Fence { .. } | ActionKind::Unfence { .. } => Outcome::Fenced(true),
        ActionKind::Probe { .. } => Outcome::rc(crate::rc::NOT_RUNNING),
        _ => Outcome::rc(crate::rc::OK),
    }
}

/// Runs every action in dependency order at time `now`, applying each result to `state`. An
/// action whose prerequisite failed is skipped, as are its own dependents.
pub fn execute(
    config: &Config,
    state: &mut State,
    transition: &Transition,
    now: Time,
    mut decide: impl FnMut(&ActionKind) -> Outcome,
) -> Vec<Executed> {
    let mut progress = Progress::keep_going(transition.clone());
    let mut out: Vec<Executed> = transition
        .actions
        .iter()
        .map(|a| Executed {
            id: a.id,
            outcome: None,
            ok: false,
        })
        .collect();
    loop {
        let ready = progress.launch_ready();
        if ready.is_empty() {
            break;
        }
        for a in ready {
            let outcome = decide(&a.kind);
            let ok = apply_outcome(config, state, &a.kind, &outcome, now);
            progress.finish(a.id, ok);
            out[a.id] = Executed {
                id: a.id,
                outcome: Some(outcome),
                ok,
            };
        }
    }
    out
}

/// Applies one action's outcome; whether it was the expected one.
fn apply_outcome(
    config: &Config,
    state: &mut State,
    kind: &ActionKind,
    outcome: &Outcome,
    now: Time,
) -> bool {
    match (kind, outcome) {
        (ActionKind::Fence { node, .. }, Outcome::Fenced(ok)) => {
            let ev = Event::Fenced {
                node: node.clone(),
                ok: *ok,
            };
            apply(config, state, &ev, now).is_ok() && *ok
        }
        (ActionKind::Unfence { node, .. }, Outcome::Fenced(ok)) => {
            let ev = Event::Unfenced {
                node: node.clone(),
                ok: *ok,
            };
            apply(config, state, &ev, now).is_ok() && *ok
        }
        (kind, Outcome::Rc { rc, exit_reason }) => match (kind.resource(), kind.op()) {
            (Some(resource), Some(op)) => {
                let ev = Event::OpResult(OpResult {
                    resource: resource.to_owned(),
                    node: kind.node().to_owned(),
                    op,
                    rc: *rc,
                    exit_reason: exit_reason.clone(),
                    status: crate::rc::ExecStatus::Done,
                    digest: None,
                });
                apply(config, state, &ev, now).is_ok()
                    && config
                        .resource(resource)
                        .is_some_and(|spec| expected(spec, op, *rc))
            }
            _ => false,
        },
        _ => false,
    }
}
