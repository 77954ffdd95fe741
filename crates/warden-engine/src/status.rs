//! The state as operators read it: one line per resource and per node class, shared by
//! `warden simulate` and `warden status`.

use std::fmt;

use crate::config::{Config, TargetRole};
use crate::state::{OpKey, OpRecord, Role, State};
use crate::time::Time;

/// Where one resource stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceStatus {
    pub id: String,
    pub agent: String,
    /// Nodes it is active on, in configuration order.
    pub nodes: Vec<String>,
    /// Of `nodes`, those where a promotable resource is promoted.
    pub promoted: Vec<String>,
    pub promotable: bool,
    /// A clone (promotable or not): copies on several nodes.
    pub clone: bool,
    pub failed: bool,
    pub blocked: bool,
    /// Of `nodes`, those where the copy failed (or is blocked).
    pub failed_nodes: Vec<String>,
    pub flags: Vec<&'static str>,
    /// A crash loop delays its next start until then.
    pub start_delayed_until: Option<Time>,
}

impl fmt::Display for ResourceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.clone && !self.nodes.is_empty() {
            // Copies by role, the failed ones last and apart (as crm_mon lists a failed
            // instance on a line of its own): `web Started [ node2 node3 ] FAILED [ node1 ]`,
            // `db Promoted [ node1 ] Unpromoted [ node2 ] FAILED Unpromoted [ node3 ]`.
            write!(f, "{}", self.id)?;
            let group = |f: &mut fmt::Formatter<'_>, failed: bool| -> fmt::Result {
                let of = |promoted: bool| -> Vec<&str> {
                    self.nodes
                        .iter()
                        .filter(|n| self.failed_nodes.contains(n) == failed)
                        .filter(|n| !self.promotable || self.promoted.contains(n) == promoted)
                        .map(String::as_str)
                        .collect()
                };
                let prefix = if failed { " FAILED" } else { "" };
                let roles: &[(bool, &str)] = if self.promotable {
                    &[(true, " Promoted"), (false, " Unpromoted")]
                } else if failed {
                    &[(false, "")]
                } else {
                    &[(false, " Started")]
                };
                for &(promoted, word) in roles {
                    let nodes = of(promoted);
                    if !nodes.is_empty() {
                        write!(f, "{prefix}{word} [ {} ]", nodes.join(" "))?;
                    }
                }
                Ok(())
            };
            group(f, false)?;
            group(f, true)?;
        } else {
            let word = if self.failed || self.blocked {
                "FAILED"
            } else if self.nodes.is_empty() {
                "Stopped"
            } else {
                "Started"
            };
            write!(f, "{} {word}", self.id)?;
            match self.nodes.as_slice() {
                [] => {}
                [one] => write!(f, " {one}")?,
                many => write!(f, " [ {} ]", many.join(" "))?,
            }
        }
        for flag in &self.flags {
            write!(f, " ({flag})")?;
        }
        if let Some(t) = self.start_delayed_until {
            write!(f, " (start delayed until {}: crash loop)", t.rfc3339())?;
        }
        Ok(())
    }
}

/// A failure still counting against a resource on a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailedAction {
    pub resource: String,
    pub node: String,
    pub op: OpKey,
    pub record: OpRecord,
    /// Failures of this operation on this node (probes and ignored failures count none).
    pub fail_count: u32,
}

/// One line per resource, in configuration order.
pub fn resource_status(config: &Config, state: &State, now: Time) -> Vec<ResourceStatus> {
    let fencing = config.fencing_enabled();
    config
        .resources()
        .iter()
        .map(|spec| {
            let rs = state.resource(&spec.id);
            let mut st = ResourceStatus {
                id: spec.id.clone(),
                agent: spec.agent.to_string(),
                nodes: Vec::new(),
                promoted: Vec::new(),
                promotable: spec.is_promotable(),
                clone: spec.is_clone(),
                failed: false,
                blocked: false,
                failed_nodes: Vec::new(),
                flags: Vec::new(),
                start_delayed_until: None,
            };
            let mut ignored = false;
            let mut degraded = false;
            let mut unclean = false;
            let mut fatal = false;
            for n in config.nodes() {
                let Some(on) = rs.and_then(|rs| rs.nodes.get(n)) else {
                    continue;
                };
                let e = on.effective(&spec.meta, now);
                fatal |= e.fatal;
                if let Some(t) = e.start_not_before {
                    st.start_delayed_until = Some(st.start_delayed_until.map_or(t, |u| u.min(t)));
                }
                let ns = state.node(n);
                let lost = ns.is_none_or(|s| !s.online)
                    && !(fencing && ns.is_some_and(|s| s.unclean.is_some()));
                if !e.role.is_active() || lost {
                    continue;
                }
                st.nodes.push(n.clone());
                if e.role == Role::Promoted {
                    st.promoted.push(n.clone());
                }
                st.failed |= e.failed;
                st.blocked |= e.blocked;
                if e.failed || e.blocked {
                    st.failed_nodes.push(n.clone());
                }
                ignored |= e.failure_ignored;
                degraded |= on.degraded;
                unclean |= fencing && ns.is_some_and(|s| s.unclean.is_some());
            }
            let flags = &mut st.flags;
            if st.blocked {
                flags.push("blocked");
            }
            if unclean {
                flags.push("UNCLEAN");
            }
            if ignored {
                flags.push("failure ignored");
            }
            if degraded {
                flags.push("degraded");
            }
            if spec.meta.orphan {
                flags.push("orphan: gone from the configuration");
            }
            // Kept for a node that shut down (`shutdown_lock`), as crm_mon marks it.
            if state
                .shutdown_lock(&config.cluster, &spec.id, now)
                .is_some()
            {
                flags.push("LOCKED");
            }
            if spec.meta.maintenance {
                flags.push("maintenance");
            } else if !spec.meta.is_managed {
                flags.push("unmanaged");
            }
            if rs
                .and_then(|r| r.target_role)
                .unwrap_or(spec.meta.target_role)
                == TargetRole::Stopped
            {
                flags.push("disabled");
            }
            if fatal && st.nodes.is_empty() {
                flags.push("fatal error: cleanup needed");
            }
            if st.nodes.len() > 1 && !st.clone {
                flags.push("multiple active");
            }
            st
        })
        .collect()
}

/// A node's attributes as rules read them (but the built-in `#` ones): the file's,
/// overridden by those set at run time.
pub fn node_attributes(
    config: &Config,
    state: &State,
    node: &str,
) -> std::collections::BTreeMap<String, String> {
    let mut out: std::collections::BTreeMap<String, String> = config
        .node_index(node)
        .map(|i| config.node_attributes(i).iter().cloned().collect())
        .unwrap_or_default();
    if let Some(run) = state.node_attributes.get(node) {
        out.extend(run.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    out
}

/// A node's capacities under a placement strategy other than `default`: (name, used by
/// what runs there now, capacity). Empty under `default`, or when the node names none.
pub fn node_utilization(config: &Config, state: &State, node: &str) -> Vec<(String, i64, i64)> {
    let Some(i) = config.node_index(node) else {
        return Vec::new();
    };
    if config.cluster.placement_strategy == crate::config::PlacementStrategy::Default {
        return Vec::new();
    }
    config
        .node_capacity(i)
        .iter()
        .map(|(name, capacity)| {
            let used = config
                .resources()
                .iter()
                .filter(|r| {
                    state
                        .resource(&r.id)
                        .and_then(|rs| rs.nodes.get(node))
                        .is_some_and(|on| on.role.is_active())
                })
                .flat_map(|r| &r.utilization)
                .filter(|(n, _)| n == name)
                .fold(0i64, |sum, (_, v)| sum.saturating_add(*v));
            (name.clone(), used, *capacity)
        })
        .collect()
}

/// Nodes grouped as operators read them: (label, names).
pub fn node_groups(config: &Config, state: &State) -> Vec<(&'static str, Vec<String>)> {
    let fencing = config.fencing_enabled();
    let mut online = Vec::new();
    let mut standby = Vec::new();
    let mut maintenance = Vec::new();
    let mut pending = Vec::new();
    let mut unclean = Vec::new();
    let mut offline = Vec::new();
    for n in config.nodes() {
        let ns = state.node(n).cloned().unwrap_or_default();
        if fencing && ns.unclean.is_some() {
            unclean.push(n.clone());
        } else if !ns.online {
            offline.push(n.clone());
        } else if ns.pending {
            pending.push(n.clone());
        } else if ns.standby {
            standby.push(n.clone());
        } else if state.node_in_maintenance(config, n) {
            maintenance.push(n.clone());
        } else {
            online.push(n.clone());
        }
    }
    [
        ("Online", online),
        ("Standby", standby),
        ("Maintenance", maintenance),
        ("Pending", pending),
        ("UNCLEAN", unclean),
        ("OFFLINE", offline),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .collect()
}

/// Every failure that still counts, in configuration order.
pub fn failed_actions(config: &Config, state: &State, now: Time) -> Vec<FailedAction> {
    let mut out = Vec::new();
    for spec in config.resources() {
        let Some(rs) = state.resource(&spec.id) else {
            continue;
        };
        for n in config.nodes() {
            let Some(on) = rs.nodes.get(n) else { continue };
            if on.failures_expired(&spec.meta, now) {
                continue;
            }
            for (op, rec) in &on.failed_ops {
                out.push(FailedAction {
                    resource: spec.id.clone(),
                    node: n.clone(),
                    op: *op,
                    record: rec.clone(),
                    fail_count: on.fail_counts.get(op).copied().unwrap_or(0),
                });
            }
        }
    }
    out
}
