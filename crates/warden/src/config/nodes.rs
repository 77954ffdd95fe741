//! `[[node]]` and `[[fence_device]]`.

use std::collections::HashMap;
use std::net::IpAddr;

use toml::de::DeValue;
use warden_engine::{FenceAgent, FenceDevice, FenceMethod, Requires};

use super::Ref;
use super::table::{Reader, Section, Span, Tbl};

pub(super) const NODE: Section = Section::new("[[node]]", "[[node]]");
pub(super) const FENCE_DEVICE: Section = Section::new("[[fence_device]]", "[[fence_device]]");

/// The `[[node]]`s.
pub(super) struct Nodes {
    /// In file order; this machine's host name alone when the file has no `[[node]]`.
    pub names: Vec<String>,
    /// Where each is defined (empty when the file has none).
    pub spans: Vec<Span>,
    pub addresses: HashMap<String, IpAddr>,
    /// Per node (in `names` order): its attributes, which location rules read.
    pub attributes: Vec<Vec<(String, String)>>,
    /// Per node (in `names` order): its capacities (`utilization`).
    pub capacity: Vec<Vec<(String, i64)>>,
}

pub(super) fn nodes(
    r: &mut Reader<'_>,
    top: &Tbl<'_, '_>,
    local: impl FnOnce() -> String,
) -> Nodes {
    let mut out = Nodes {
        names: Vec::new(),
        spans: Vec::new(),
        addresses: HashMap::new(),
        attributes: Vec::new(),
        capacity: Vec::new(),
    };
    let given = top.take("node").is_some();
    for (t, at) in r.tables(top, "node") {
        r.section(t, at, NODE, |r, t| {
            let address = r.string(t, "address").and_then(|(a, span)| {
                a.parse::<IpAddr>()
                    .map_err(|_| {
                        r.d.error(
                            span,
                            format!("bad address {a:?}: expected an IP address, like \"10.0.0.1\""),
                        )
                    })
                    .ok()
            });
            let attributes = attributes(r, t);
            let capacity = r.utilization(t);
            let Some((name, span)) = r.required_name(t, "name", "[[node]]") else {
                return;
            };
            if out.names.contains(&name) {
                r.d.error(span, format!("node {name:?} is defined twice"));
                return;
            }
            if let Some(a) = address {
                out.addresses.insert(name.clone(), a);
            }
            out.names.push(name);
            out.spans.push(span);
            out.attributes.push(attributes);
            out.capacity.push(capacity);
        });
    }
    if !given {
        out.names.push(local());
        out.attributes.push(Vec::new());
        out.capacity.push(Vec::new());
    }
    out
}

/// `attributes = { rack = "a", weight = 10 }`: the node's attributes, as text.
fn attributes(r: &mut Reader<'_>, t: &Tbl<'_, '_>) -> Vec<(String, String)> {
    let names = "letters, digits, '_', '.', ':', '-' (and '#' after the first; #uname and the like are Warden's own)";
    r.named_values(t, "attributes", "attribute", names, |r, name, v| {
        r.scalar_text(v, &format!("attribute {name:?}"))
    })
}

/// How an agent fence device is placed as a resource.
pub(super) struct Placement {
    /// Its recurring check's interval (zero: none).
    pub monitor: std::time::Duration,
    /// A copy is placed on every node.
    pub clone: bool,
    /// What it needs to run.
    pub requires: Option<Requires>,
    /// Whether Warden starts, checks and stops it (`is_managed = false`: only probed, as
    /// Pacemaker's unmanaged stonith resources); None: as `[resource_defaults]` says.
    pub managed: Option<bool>,
    /// Meta attributes of its own over `[resource_defaults]`' (as a resource's `meta`):
    /// `migration_threshold`, `failure_timeout`, `resource_stickiness`, `priority`.
    pub meta: Vec<MetaKey>,
    /// Where its name is written.
    pub at: Span,
}

/// A meta attribute a fence device sets for its placement.
#[derive(Clone, Copy, Debug)]
pub(super) enum MetaKey {
    MigrationThreshold(u32),
    FailureTimeout(Option<std::time::Duration>),
    Stickiness(warden_engine::Score),
    Priority(i64),
}

/// The `[[fence_device]]`s, with the nodes they name (checked later).
pub(super) struct Fencing {
    pub devices: Vec<FenceDevice>,
    /// Per device (in `devices` order): how it is placed as a resource.
    pub monitors: Vec<Placement>,
    pub node_refs: Vec<Ref>,
    /// Fencing is on: the file has fence devices (even ones with errors).
    pub enabled: bool,
}

pub(super) fn fence_devices(r: &mut Reader<'_>, top: &Tbl<'_, '_>) -> Fencing {
    let mut out = Fencing {
        devices: Vec::new(),
        monitors: Vec::new(),
        node_refs: Vec::new(),
        enabled: top.take("fence_device").is_some(),
    };
    let mut seen: Vec<String> = Vec::new();
    for (t, at) in r.tables(top, "fence_device") {
        r.section(t, at, FENCE_DEVICE, |r, t| {
            let name = r.required_name(t, "name", "[[fence_device]]");
            if let Some((n, span)) = &name {
                if seen.contains(n) {
                    r.d.error(span.clone(), format!("fence device {n:?} is defined twice"));
                }
                seen.push(n.clone());
            }
            let method = fence_method(r, t, &mut out.node_refs);
            let nodes_of = r.string_list(t, "nodes").unwrap_or_default();
            let names = nodes_of.iter().map(|(n, _)| n.clone()).collect();
            out.node_refs
                .extend(nodes_of.into_iter().map(|(name, span)| Ref { name, span }));
            let timeout = r.positive_duration(t, "timeout");
            let monitor = r.duration(t, "monitor").unwrap_or(DEFAULT_FENCE_MONITOR);
            let clone = r.boolean(t, "clone").unwrap_or(false);
            // A fence device never waits for fencing itself.
            let requires = r
                .keyword(t, "requires", &[Requires::Quorum, Requires::Nothing])
                .map(|(v, _)| v);
            let managed = r.boolean(t, "is_managed");
            // Disabled: not placed, and used neither to fence nor to unfence.
            let disabled = r
                .keyword(
                    t,
                    "target_role",
                    &[
                        warden_engine::TargetRole::Started,
                        warden_engine::TargetRole::Stopped,
                    ],
                )
                .is_some_and(|(v, _)| v == warden_engine::TargetRole::Stopped);
            let mut meta = Vec::new();
            if let Some(v) = t.take("migration_threshold") {
                match v.get_ref() {
                    DeValue::String(s) if s.eq_ignore_ascii_case("INFINITY") => {
                        meta.push(MetaKey::MigrationThreshold(warden_engine::INFINITY_COUNT))
                    }
                    _ => {
                        if let Some(n) = r.u32_value(v, "migration_threshold") {
                            meta.push(MetaKey::MigrationThreshold(
                                n.min(warden_engine::INFINITY_COUNT),
                            ));
                        }
                    }
                }
            }
            if let Some(d) = r.duration(t, "failure_timeout") {
                meta.push(MetaKey::FailureTimeout((!d.is_zero()).then_some(d)));
            }
            if let Some(v) = r.score(t, "resource_stickiness") {
                meta.push(MetaKey::Stickiness(v));
            }
            if let Some(n) = r.int(t, "priority") {
                meta.push(MetaKey::Priority(n));
            }
            // Unfencing is the agent's `on` action: fence agents only.
            let unfence = r.boolean(t, "unfence").unwrap_or(false);
            if unfence && matches!(method, Some((FenceMethod::Command(_), _, _))) {
                r.d.error(
                    t.span_of("unfence"),
                    "`unfence` applies to fence agents (`agent`), whose `on` action unfences; \
                     a `command` device only fences",
                );
            }
            if let (Some((name, name_at)), Some((method, program, span))) = (name, method) {
                r.found.programs.push((program, span));
                out.monitors.push(Placement {
                    monitor,
                    clone,
                    requires,
                    managed,
                    meta,
                    at: name_at,
                });
                out.devices.push(FenceDevice {
                    name,
                    method,
                    nodes: names,
                    timeout_ms: timeout.map_or(DEFAULT_FENCE_TIMEOUT_MS, |d| {
                        u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
                    }),
                    unfence,
                    disabled,
                });
            }
        });
    }
    out
}

/// How often a fence device is checked where it is placed, by default (pcs gives stonith
/// resources a 60 s monitor).
const DEFAULT_FENCE_MONITOR: std::time::Duration = std::time::Duration::from_secs(60);

/// How long one fence attempt may take by default (Pacemaker's `stonith-timeout`).
const DEFAULT_FENCE_TIMEOUT_MS: u64 = 60_000;

/// Where Debian's `fence-agents` (and Pacemaker's fencer) keep fence agents: a bare agent name
/// is a program there.
pub const FENCE_AGENT_DIR: &str = "/usr/sbin";

/// What a fence device is asked to do by default (Pacemaker's `stonith-action`).
const FENCE_ACTIONS: [&str; 2] = ["reboot", "off"];

/// A device's `command`, or its `agent` with `params`, `host_map` and `action`: the method,
/// the program it runs and where that is named.
fn fence_method(
    r: &mut Reader<'_>,
    t: &Tbl<'_, '_>,
    node_refs: &mut Vec<Ref>,
) -> Option<(FenceMethod, String, Span)> {
    let command = r.argv(t, "command", None);
    let agent = r.string(t, "agent");
    let params = super::resources::params(r, t);
    let host_map = r.table(t, "host_map").map(|(ht, _)| {
        let mut map = Vec::new();
        for (k, v) in ht.iter() {
            match v.get_ref() {
                DeValue::String(plug) if !plug.is_empty() => {
                    map.push((k.get_ref().to_string(), plug.to_string(), k.span()));
                }
                _ => r.type_error(v, "a non-empty string (the node's plug) in `host_map`"),
            }
        }
        map
    });
    let action = r.string(t, "action");
    match (command, agent) {
        (Some(_), Some((_, span))) => {
            r.d.error(
                span,
                "a fence device has either `command` (a program called with the node's name) or `agent` (a fence agent), not both",
            );
            None
        }
        (None, None) => {
            r.d.error(
                t.span.clone(),
                "[[fence_device]] needs `agent` (a fence agent such as \"fence_ipmilan\") or `command` (an array like [\"/usr/bin/prog\", \"--flag\"], called with the node's name)",
            );
            None
        }
        (Some((argv, span)), None) => {
            for (key, present) in [
                ("params", !params.is_empty()),
                ("host_map", host_map.is_some()),
                ("action", action.is_some()),
            ] {
                if present {
                    r.d.error(
                        t.span_of(key),
                        format!("`{key}` is for fence agents (`agent`); a `command` gets the node's name as its last argument"),
                    );
                }
            }
            let program = argv[0].clone();
            Some((FenceMethod::Command(argv), program, span))
        }
        (None, Some((agent, span))) => {
            if agent.is_empty() || agent.ends_with('/') {
                r.d.error(
                    span,
                    "`agent` must name a fence agent, like \"fence_ipmilan\"",
                );
                return None;
            }
            let program = if agent.contains('/') {
                agent
            } else {
                format!("{FENCE_AGENT_DIR}/{agent}")
            };
            // One option a line on the agent's standard input: a line break would start another.
            for (key, value, span) in &params {
                if value.contains(['\n', '\r']) {
                    r.d.error(
                        span.clone(),
                        format!("parameter {key:?} of a fence agent cannot hold a line break"),
                    );
                }
            }
            let host_map = host_map.unwrap_or_default();
            for (node, _, span) in &host_map {
                node_refs.push(Ref {
                    name: node.clone(),
                    span: span.clone(),
                });
            }
            let action = match action {
                None => FENCE_ACTIONS[0].to_owned(),
                Some((a, _)) if FENCE_ACTIONS.contains(&a.as_str()) => a,
                Some((a, span)) => {
                    r.d.error(
                        span,
                        format!("action {a:?} cannot fence: use \"reboot\" or \"off\""),
                    );
                    return None;
                }
            };
            Some((
                FenceMethod::Agent(FenceAgent {
                    program: program.clone(),
                    params: params.into_iter().map(|(k, v, _)| (k, v)).collect(),
                    host_map: host_map.into_iter().map(|(n, p, _)| (n, p)).collect(),
                    action,
                }),
                program,
                span,
            ))
        }
    }
}
