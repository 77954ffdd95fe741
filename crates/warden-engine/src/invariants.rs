//! Invariants every transition must keep, checked by the seeded simulation after every step
//! (and usable by anyone holding a transition).

use std::collections::{HashMap, HashSet};

use crate::config::{Config, OpName, OrderKind, Requires, TargetRole};
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
        // Blocked where it is, unless that node is being fenced (the fence settles it) or is
        // unclean for another reason (its failures are left to the fence).
        let fenced_here = |n: &str| {
            t.actions
                .iter()
                .any(|b| matches!(&b.kind, ActionKind::Fence { node, .. } if node == n))
        };
        let blocked = rs.is_some_and(|rs| {
            rs.nodes.iter().any(|(n, on)| {
                on.effective(&spec.meta, now).blocked
                    && !fenced_here(n)
                    && !state.unclean_for_another(config, resource, n)
            })
        });
        if blocked {
            return Err(format!(
                "{} scheduled for blocked resource {resource}",
                a.kind
            ));
        }
        if node_state.is_none_or(|n| !n.online) {
            return Err(format!("{} scheduled on offline node", a.kind));
        }
        // What requires unfencing is probed or started only on a node unfenced (before, or
        // in this transition first); one shutting down is not unfenced again (a probe
        // there only looks).
        if spec.needs_unfencing()
            && config.unfencing_enabled()
            && config.fence_devices_for(node).any(|d| d.unfence)
            && matches!(a.kind, ActionKind::Probe { .. } | ActionKind::Start { .. })
            && !node_state.is_some_and(|n| n.unfenced || n.shutdown)
        {
            let before = ancestors(t, a.id);
            let unfenced = t.actions.iter().any(|b| {
                before.contains(&b.id)
                    && matches!(&b.kind, ActionKind::Unfence { node: n, .. } if n == node)
            });
            if !unfenced {
                return Err(format!("{}, a node not unfenced", a.kind));
            }
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
            let standby = node_state.is_some_and(|n| n.standby || n.shutdown)
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
            } else if banned
                || on.hard_ban
                // An ignored failure anywhere sets the migration threshold aside.
                || (on.threshold_reached && !eff_any(|e| e.failure_ignored))
            {
                Some("a node it is banned from")
            } else if eff_any(|e| e.fatal) {
                Some("anywhere after a fatal error")
            } else if eff_any(|e| e.stop_on_fail) {
                Some("anywhere after on_fail=stop")
            } else if target == TargetRole::Stopped {
                Some("anywhere while disabled")
            } else if spec.meta.orphan {
                Some("anywhere: it is gone from the configuration")
            } else if on.start_not_before.is_some() {
                Some("a node where a crash loop delays its start")
            } else {
                None
            };
            if let Some(why) = why {
                return Err(format!("{} starts {resource} on {why}", a.kind));
            }
            // Every copy that is (or, on an unclean node, may be) active must be stopped or
            // fenced first.
            for (n, on) in rs.map(|rs| rs.nodes.iter()).into_iter().flatten() {
                // Copies of a clone run side by side: only its own node counts.
                if spec.is_clone() && n != node {
                    continue;
                }
                let unclean_node =
                    config.fencing_enabled() && state.node(n).is_some_and(|s| s.unclean.is_some());
                let maybe_active =
                    on.role.is_active() || (unclean_node && on.role == Role::Unknown);
                if !maybe_active {
                    continue;
                }
                let ns = state.node(n);
                let reachable = ns.is_some_and(|s| {
                    s.online && (s.unclean.is_none() || !config.fencing_enabled())
                });
                // What does not wait for fencing (a fence device, what requires only quorum)
                // takes a copy on a lost node for stopped, but still waits where its state
                // is unknown there; what requires nothing never waits.
                let unclean = config.fencing_enabled()
                    && ns.is_some_and(|s| s.unclean.is_some())
                    && (spec.needs_fencing()
                        || (spec.meta.requires != Requires::Nothing && on.role == Role::Unknown));
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
    if let Some((r, n)) = starts
        .iter()
        .find(|(r, n)| **n > 1 && config.resource(r).is_some_and(|s| !s.is_clone()))
    {
        return Err(format!("{r} started {n} times in one transition"));
    }
    check_promotions(config, state, t)?;
    check_orders(config, state, t)
}

/// Every promote waits until no other copy is promoted or being demoted: each copy promoted
/// now elsewhere is demoted, stopped or fenced before it, and so is every demote of the
/// resource in the transition; and never more than `promoted_max` end up promoted.
fn check_promotions(config: &Config, state: &State, t: &Transition) -> Result<(), String> {
    for a in &t.actions {
        let ActionKind::Promote { resource, node } = &a.kind else {
            continue;
        };
        let Some(spec) = config.resource(resource) else {
            return Err(format!("{} for unknown resource", a.kind));
        };
        let Some(pr) = spec.promotable() else {
            return Err(format!("{} of a resource that is not promotable", a.kind));
        };
        let before = ancestors(t, a.id);
        let undone_before = |n: &str| {
            t.actions.iter().any(|b| {
                before.contains(&b.id)
                    && match &b.kind {
                        ActionKind::Demote {
                            resource: r,
                            node: m,
                        }
                        | ActionKind::Stop {
                            resource: r,
                            node: m,
                        } => r == resource && m == n,
                        ActionKind::Fence { node: m, .. } => m == n,
                        _ => false,
                    }
            })
        };
        let still_promoted: Vec<&str> = state
            .resource(resource)
            .into_iter()
            .flat_map(|rs| rs.nodes.iter())
            .filter(|(n, on)| *n != node && on.role == Role::Promoted && !undone_before(n))
            // What does not wait for fencing takes a copy on a lost node for stopped; without
            // fencing, a node that is down runs nothing (as Pacemaker reads it).
            .filter(|(n, _)| {
                let s = state.node(n);
                if !config.fencing_enabled() {
                    return s.is_some_and(|s| s.online);
                }
                spec.needs_fencing() || s.is_none_or(|s| s.unclean.is_none())
            })
            .map(|(n, _)| n.as_str())
            .collect();
        let promotes = t
            .actions
            .iter()
            .filter(|b| matches!(&b.kind, ActionKind::Promote { resource: r, .. } if r == resource))
            .count();
        if still_promoted.len() + promotes > pr.promoted_max as usize {
            return Err(format!(
                "{} while {resource} is still promoted on {} (promoted_max {})",
                a.kind,
                still_promoted.join(", "),
                pr.promoted_max
            ));
        }
        if let Some(d) = t.actions.iter().find(|b| {
            matches!(&b.kind, ActionKind::Demote { resource: r, .. } if r == resource)
                && !before.contains(&b.id)
        }) {
            return Err(format!("{} does not wait for {}", a.kind, d.kind));
        }
        let running = state.on_node(resource, node).role.is_active();
        let started = t.actions.iter().any(|b| {
            before.contains(&b.id)
                && matches!(&b.kind, ActionKind::Start { resource: r, node: m } if r == resource && m == node)
        });
        if !running && !started {
            return Err(format!("{} of a copy that neither runs nor starts", a.kind));
        }
    }
    Ok(())
}

/// Every action `id` waits for, directly or not.
fn ancestors(t: &Transition, id: usize) -> HashSet<usize> {
    let mut seen = HashSet::new();
    let mut stack: Vec<usize> = t
        .actions
        .get(id)
        .map(|a| a.deps.clone())
        .unwrap_or_default();
    while let Some(a) = stack.pop() {
        if seen.insert(a) {
            stack.extend(t.actions.get(a).map(|x| x.deps.clone()).unwrap_or_default());
        }
    }
    seen
}

/// Mandatory orders: `then` never starts before `first` has started in the same transition,
/// nor while `first` neither runs nor starts.
fn check_orders(config: &Config, state: &State, t: &Transition) -> Result<(), String> {
    // The actions of resource `r` that are `op` (start, stop, promote or demote).
    // A live migration's migrate_from is its start where it goes.
    let actions_of = |r: &str, op: OpName| -> Vec<&crate::schedule::Action> {
        t.actions
            .iter()
            .filter(|a| {
                a.kind.resource() == Some(r)
                    && a.kind.op().is_some_and(|k| {
                        k.name == op || (op == OpName::Start && k.name == OpName::MigrateFrom)
                    })
            })
            .collect()
    };
    let inverse = |op: OpName| match op {
        OpName::Promote => OpName::Demote,
        _ => OpName::Stop,
    };
    for (k, o) in config
        .orders()
        .iter()
        .enumerate()
        .filter(|(_, o)| o.kind == OrderKind::Mandatory)
    {
        // Interleaved clones: copy to copy, on the same node only.
        let interleaved = config.interleaved(k);
        let same_node = |a: &crate::schedule::Action, b: &crate::schedule::Action| {
            !interleaved || a.kind.node() == b.kind.node()
        };
        let all_firsts = actions_of(&o.first, o.first_action);
        for then in actions_of(&o.then, o.then_action) {
            let firsts: Vec<_> = all_firsts
                .iter()
                .copied()
                .filter(|f| same_node(f, then))
                .collect();
            if let Some(f) = firsts.iter().find(|f| !reaches(t, then.id, f.id)) {
                return Err(format!(
                    "{} does not wait for {} (order {} {} then {} {})",
                    then.kind, f.kind, o.first_action, o.first, o.then_action, o.then
                ));
            }
            if firsts.is_empty() {
                // Then `first` must already be (and stay) running, or promoted; of what needs
                // only some of several (`first_min`: a clone's instances, a set), one of them
                // running or starting will do.
                let group: Vec<&crate::config::Order> = if o.first_min.is_some() {
                    config
                        .orders()
                        .iter()
                        .filter(|o2| {
                            o2.then == o.then
                                && o2.first_min.is_some()
                                && o2.first_label == o.first_label
                        })
                        .collect()
                } else {
                    vec![o]
                };
                let one_of = group.iter().filter(|o2| o2.first != o.first).any(|o2| {
                    let undone = actions_of(&o2.first, inverse(o2.first_action));
                    !actions_of(&o2.first, o2.first_action).is_empty()
                        || state.resource(&o2.first).is_some_and(|rs| {
                            rs.nodes.iter().any(|(n, on)| {
                                on.role.is_active() && !undone.iter().any(|a| a.kind.node() == n)
                            })
                        })
                });
                let undone = actions_of(&o.first, inverse(o.first_action));
                let stays = one_of
                    || state.resource(&o.first).is_some_and(|rs| {
                        rs.nodes.iter().any(|(n, on)| {
                            let there = match o.first_action {
                                OpName::Promote => on.role == Role::Promoted,
                                _ => on.role.is_active(),
                            };
                            there
                                && !undone.iter().any(|a| a.kind.node() == n)
                                && (!interleaved || n == then.kind.node())
                        })
                    });
                if !stays {
                    return Err(format!(
                        "{} while {} is not {} and will not be (order {} {} then {} {})",
                        then.kind,
                        o.first,
                        if o.first_action == OpName::Promote {
                            "promoted"
                        } else {
                            "running"
                        },
                        o.first_action,
                        o.first,
                        o.then_action,
                        o.then
                    ));
                }
            }
        }
        // Undone in reverse: `first` is stopped (demoted) only after `then` is.
        if o.symmetric {
            let thens = actions_of(&o.then, inverse(o.then_action));
            for f in actions_of(&o.first, inverse(o.first_action)) {
                if let Some(th) = thens
                    .iter()
                    .find(|th| same_node(f, th) && !reaches(t, f.id, th.id))
                {
                    return Err(format!(
                        "{} does not wait for {} (order {} {} then {} {})",
                        f.kind, th.kind, o.first_action, o.first, o.then_action, o.then
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Whether action `later` depends, directly or not, on action `earlier`.
fn reaches(t: &Transition, later: usize, earlier: usize) -> bool {
    ancestors(t, later).contains(&earlier)
}

/// Whether resource `id` may stay where it runs whatever the scheduler wants: blocked there
/// (a failed operation with `block`), or held by such a resource, since a symmetric mandatory
/// order stops `then` before `first` and a `then` that cannot stop keeps `first` running.
pub fn blocked_or_held(config: &Config, state: &State, id: &str) -> bool {
    let mut seen = vec![id.to_owned()];
    let mut k = 0;
    while k < seen.len() {
        let r = seen[k].clone();
        k += 1;
        if state
            .resource(&r)
            .is_some_and(|rs| rs.nodes.values().any(|on| on.blocked))
        {
            return true;
        }
        for o in config.orders() {
            if o.first == r
                && o.kind == OrderKind::Mandatory
                && o.symmetric
                && !seen.contains(&o.then)
            {
                seen.push(o.then.clone());
            }
        }
    }
    false
}
