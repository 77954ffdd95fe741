//! Runs a transition against results the caller decides: the deterministic executor behind
//! `warden simulate`, the semantics tests and the seeded simulation. Pure: no agent runs.

use crate::apply::{Event, OpResult, apply, expected};
use crate::config::Config;
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
        ActionKind::Fence { .. } => Outcome::Fenced(true),
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
    let mut ok_by_id = vec![false; transition.actions.len()];
    let mut out = Vec::with_capacity(transition.actions.len());
    for a in &transition.actions {
        if a.deps
            .iter()
            .any(|&d| !ok_by_id.get(d).copied().unwrap_or(false))
        {
            out.push(Executed {
                id: a.id,
                outcome: None,
                ok: false,
            });
            continue;
        }
        let outcome = decide(&a.kind);
        let ok = match (&a.kind, &outcome) {
            (ActionKind::Fence { node, .. }, Outcome::Fenced(ok)) => {
                let ev = Event::Fenced {
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
        };
        ok_by_id[a.id] = ok;
        out.push(Executed {
            id: a.id,
            outcome: Some(outcome),
            ok,
        });
    }
    out
}
