//! Invariants every transition must keep, checked by the seeded simulation after every step
//! (and usable by anyone holding a transition).

use std::collections::{HashMap, HashSet};

use crate::config::{Config, OrderKind, TargetRole};
use crate::schedule::{ActionKind, Transition};
use crate::state::{Role, State};
use crate::time::Time;

/// Checks a transition against the state it was scheduled from. Returns the first violation.
pub fn check_transition(
    config: &Config,
    state: &State,
    now: Time,
    t: &Transition,
) -> Result<(), String> {
    let mut starts: HashMap<&str, usize> = HashMap::new();
    let mut fences = HashSet::new();
    for (pos, a) in t.actions.iter().enumerate() {
        if a.id != pos {
            return Err(format!("action {pos} carries id {}", a.id));
        }
        if let Some(d) = a.deps.iter().find(|&&d| d >= a.id) {
            return Err(format!(
                "action {} ({}) depends on later action {d}",
                a.id, a.kind
            ));
        }
        let node = a.kind.node();
        let node_state = state.node(node);
        if let ActionKind::Fence { .. } = a.kind {
            if !fences.insert(node) {
                return Err(format!("node {node} fenced twice"));
            }
            continue;
        }
        let Some(resource) = a.kind.resource() else {
            continue;
        };
        let Some(spec) = config.resource(resource) else {
            return Err(format!("action {} for unknown resource", a.kind));
        };
        let rs = state.resource(resource);
        let eff_any = |f: fn(&crate::state::Effective) -> bool| {
            rs.is_some_and(|rs| {
                rs.nodes
                    .values()
                    .any(|on| f(&on.effective(&spec.meta, now)))
            })
        };
        if eff_any(|e| e.blocked) {
            return Err(format!(
                "{} scheduled for blocked resource {resource}",
                a.kind
            ));
        }
        if node_state.is_none_or(|n| !n.online) {
            return Err(format!("{} scheduled on offline node", a.kind));
        }
        if config.fencing_enabled() && node_state.is_some_and(|n| n.unclean.is_some()) {
            return Err(format!(
                "{} scheduled on a node waiting to be fenced",
                a.kind
            ));
        }
        if let ActionKind::Start { .. } = a.kind {
            *starts.entry(resource).or_default() += 1;
            let on = state.on_node(resource, node).effective(&spec.meta, now);
            let standby = node_state.is_some_and(|n| n.standby)
                || state.resources.iter().any(|(id, rs)| {
                    config.resource(id).is_some_and(|s| {
                        rs.nodes
                            .get(node)
                            .is_some_and(|o| o.effective(&s.meta, now).standby_on_fail)
                    })
                });
            let banned = rs.is_some_and(|rs| rs.banned.contains(node));
            let target = rs
                .and_then(|rs| rs.target_role)
                .unwrap_or(spec.meta.target_role);
            let why = if standby {
                Some("a standby node")
            } else if banned || on.hard_ban || on.threshold_reached {
                Some("a node it is banned from")
            } else if eff_any(|e| e.fatal) {
                Some("anywhere after a fatal error")
            } else if eff_any(|e| e.stop_on_fail) {
                Some("anywhere after on_fail=stop")
            } else if target == TargetRole::Stopped {
                Some("anywhere while disabled")
            } else {
                None
            };
            if let Some(why) = why {
                return Err(format!("{} starts {resource} on {why}", a.kind));
            }
            // Every copy that is (or, on an unclean node, may be) active must be stopped or
            // fenced first.
            for (n, on) in rs.map(|rs| rs.nodes.iter()).into_iter().flatten() {
                let unclean_node =
                    config.fencing_enabled() && state.node(n).is_some_and(|s| s.unclean.is_some());
                let maybe_active =
                    on.role == Role::Started || (unclean_node && on.role == Role::Unknown);
                if !maybe_active {
                    continue;
                }
                let ns = state.node(n);
                let reachable = ns.is_some_and(|s| {
                    s.online && (s.unclean.is_none() || !config.fencing_enabled())
                });
                let unclean = config.fencing_enabled() && ns.is_some_and(|s| s.unclean.is_some());
                let stopped_first = t.actions.iter().any(|b| {
                    a.deps.contains(&b.id)
                        && match &b.kind {
                            ActionKind::Stop {
                                resource: r2,
                                node: n2,
                            } => r2 == resource && n2 == n,
                            ActionKind::Fence { node: n2, .. } => n2 == n,
                            _ => false,
                        }
                });
                if (reachable || unclean) && !stopped_first {
                    return Err(format!(
                        "{} while {resource} is still active on {n}",
                        a.kind
                    ));
                }
            }
        }
    }
    if let Some((r, n)) = starts.iter().find(|(_, n)| **n > 1) {
        return Err(format!("{r} started {n} times in one transition"));
    }
    check_orders(config, state, t)
}

/// Mandatory orders: `then` never starts before `first` has started in the same transition,
/// nor while `first` neither runs nor starts.
fn check_orders(config: &Config, state: &State, t: &Transition) -> Result<(), String> {
    let start_of = |r: &str| {
        t.actions
            .iter()
            .find(|a| matches!(&a.kind, ActionKind::Start { resource, .. } if resource == r))
    };
    let stops_everywhere = |r: &str| {
        state.active_nodes(r).all(|n| {
            t.actions.iter().any(|a| matches!(&a.kind, ActionKind::Stop { resource, node } if resource == r && node == n))
        })
    };
    for o in config
        .orders()
        .iter()
        .filter(|o| o.kind == OrderKind::Mandatory)
    {
        let Some(then_start) = start_of(&o.then) else {
            continue;
        };
        match start_of(&o.first) {
            Some(first_start) => {
                if !reaches(t, then_start.id, first_start.id) {
                    return Err(format!(
                        "{} does not wait for {} (order {} then {})",
                        then_start.kind, first_start.kind, o.first, o.then
                    ));
                }
            }
            None => {
                let first_runs =
                    state.active_nodes(&o.first).next().is_some() && !stops_everywhere(&o.first);
                if !first_runs {
                    return Err(format!(
                        "{} while {} neither runs nor starts (order {} then {})",
                        then_start.kind, o.first, o.first, o.then
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Whether action `later` depends, directly or not, on action `earlier`.
fn reaches(t: &Transition, later: usize, earlier: usize) -> bool {
    let mut stack = vec![later];
    let mut seen = HashSet::new();
    while let Some(a) = stack.pop() {
        if a == earlier {
            return true;
        }
        if seen.insert(a) {
            stack.extend(t.actions.get(a).map(|x| x.deps.clone()).unwrap_or_default());
        }
    }
    false
}
