//! `[[resource]]` with its `meta`, `ops` and `monitor`; `[resource_defaults]` and
//! `[op_defaults]`.

use std::collections::HashMap;
use std::time::Duration;

use toml::de::DeValue;
use warden_engine::config::DEFAULT_STOP_TIMEOUT;
use warden_engine::{
    Agent, Copies, INFINITY_COUNT, Meta, MultipleActive, OnFail, OpName, OpRole, OpSpec,
    ProcessSpec, ResourceSpec, TargetRole,
};

use super::table::{Reader, Section, Span, Tbl};
use super::{HealthMonitor, IMPLICIT_MONITOR};
use crate::duration;

pub(super) const RESOURCE: Section = Section::new("[[resource]]", "[[resource]]");
pub(super) const META: Section = Section::new("meta", "meta");
pub(super) const RESOURCE_DEFAULTS: Section =
    Section::new("[resource_defaults]", "[resource_defaults]");
pub(super) const OP: Section = Section::new("ops", "an operation");
pub(super) const OP_DEFAULTS: Section = Section::new("[op_defaults]", "[op_defaults]");
pub(super) const MONITOR: Section = Section::new("monitor", "monitor");

/// Meta attributes of resources with `promotable = true`.
/// Meta keys of clones (`clone = true` or `promotable = true`).
const CLONE_META_KEYS: &[&str] = &[
    "clone_max",
    "clone_node_max",
    "clone_min",
    "ordered",
    "clone_name",
    "notify",
    "interleave",
    "globally_unique",
];
/// Meta keys of promotable resources only.
const PROMOTABLE_META_KEYS: &[&str] = &["promoted_max", "promotion_score"];
/// Keys of class `process` only.
const PROCESS_KEYS: &[&str] = &[
    "command",
    "promote",
    "demote",
    "env",
    "cwd",
    "user",
    "group",
    "stop_signal",
    "stop_timeout",
    "output_max",
];
/// Signals a process may be stopped with.
const STOP_SIGNALS: &[&str] = &["TERM", "INT", "QUIT", "HUP", "USR1", "USR2", "KILL"];

/// `[resource_defaults]` and `[op_defaults]`.
pub(super) struct Defaults {
    pub meta: Meta,
    pub op_timeout: Duration,
    /// `[resource_defaults]` sets `resource_stickiness` (clones then take it, not 1).
    pub stickiness_set: bool,
    /// `[resource_defaults]` sets `requires`.
    pub requires_set: bool,
    /// A fence device unfences: what sets no `requires` requires unfencing, as Pacemaker's
    /// default then.
    pub unfencing: bool,
}

pub(super) fn defaults(r: &mut Reader<'_>, top: &Tbl<'_, '_>) -> Defaults {
    let mut meta = Meta::default();
    let mut stickiness_set = false;
    let mut requires_set = false;
    r.sub(top, "resource_defaults", RESOURCE_DEFAULTS, |r, t| {
        read_meta(r, t, &mut meta);
        stickiness_set = t.take("resource_stickiness").is_some();
        requires_set = t.take("requires").is_some();
        clone_meta(r, t, None);
    });
    let op_timeout = r.sub(top, "op_defaults", OP_DEFAULTS, |r, t| {
        r.positive_duration(t, "timeout")
            .unwrap_or(warden_engine::config::DEFAULT_OP_TIMEOUT)
    });
    Defaults {
        meta,
        op_timeout,
        stickiness_set,
        requires_set,
        unfencing: false,
    }
}

/// The resources of the file.
pub(super) struct Resources {
    pub specs: Vec<ResourceSpec>,
    /// Every id the file defines, at its first definition, including resources whose blocks
    /// had errors (a reference to one of those is not "unknown").
    pub declared: HashMap<String, Span>,
    pub health_monitors: Vec<HealthMonitor>,
}

pub(super) fn resources(
    r: &mut Reader<'_>,
    top: &Tbl<'_, '_>,
    defaults: &Defaults,
    fencing: bool,
) -> Resources {
    let mut out = Resources {
        specs: Vec::new(),
        declared: HashMap::new(),
        health_monitors: Vec::new(),
    };
    for (t, at) in r.tables(top, "resource") {
        let (id, spec, health) =
            r.section(t, at, RESOURCE, |r, t| resource(r, t, defaults, fencing));
        let Some((id, span)) = id else {
            continue;
        };
        if let Some(first) = out.declared.get(&id) {
            let (line, _) = crate::diag::line_col(r.d.src(), first.start);
            r.d.error(
                span,
                format!("resource {id:?} is defined twice (first at line {line})"),
            );
            continue;
        }
        out.declared.insert(id, span);
        if let Some(spec) = spec {
            out.specs.push(spec);
            out.health_monitors.extend(health);
        }
    }
    out
}

type ResourceRead = (
    Option<(String, Span)>,
    Option<ResourceSpec>,
    Option<HealthMonitor>,
);

fn resource(
    r: &mut Reader<'_>,
    t: &Tbl<'_, '_>,
    defaults: &Defaults,
    fencing: bool,
) -> ResourceRead {
    // Read every key first; what applies depends on the class.
    let id = r.required_name(t, "id", "[[resource]]");
    let what = id.as_ref().map_or("[[resource]]".to_owned(), |(i, _)| {
        format!("resource {i:?}")
    });
    let class = r.required_string(t, "class", &what);
    let provider = r.string(t, "provider");
    let kind = r.string(t, "type");
    let params = params(r, t);
    let utilization = r.utilization(t);
    let process = process(r, t);
    let promotable = r.boolean(t, "promotable").unwrap_or(false);
    let clone = r.boolean(t, "clone").unwrap_or(false) || promotable;
    let mut meta = defaults.meta.clone();
    let mut copies = if promotable {
        Some(Copies::promotable())
    } else {
        clone.then(Copies::default)
    };
    let mut stickiness_set = defaults.stickiness_set;
    let mut requires_set = defaults.requires_set;
    r.sub(t, "meta", META, |r, mt| {
        read_meta(r, mt, &mut meta);
        stickiness_set |= mt.take("resource_stickiness").is_some();
        requires_set |= mt.take("requires").is_some();
        clone_meta(r, mt, copies.as_mut());
    });
    if defaults.unfencing && !requires_set {
        meta.requires = warden_engine::Requires::Unfencing;
    }
    // As Pacemaker: a clone with no stickiness of its own or from the defaults sticks with 1,
    // so its copies stay where they run when scores tie.
    if clone && !stickiness_set {
        meta.resource_stickiness = warden_engine::Score::new(1);
    }
    let health = r.table(t, "monitor").and_then(|(mt, span)| {
        let rid = id.as_ref().map_or("", |(i, _)| i.as_str()).to_owned();
        r.section(mt, span, MONITOR, |r, mt| health_monitor(r, mt, &rid))
    });

    // The class decides which keys apply.
    let agent = match class.as_ref().map(|(c, s)| (c.as_str(), s.clone())) {
        Some(("ocf", _)) => {
            for k in PROCESS_KEYS {
                r.forbid(
                    t,
                    k,
                    "an ocf resource runs its agent; this key is for class \"process\"",
                );
            }
            // Both name one file under $OCF_ROOT/resource.d: a path would run another file.
            for (what, v) in [("provider", &provider), ("type", &kind)] {
                if let Some((name, span)) = v {
                    if !plain_name(name) {
                        r.d.error(
                            span.clone(),
                            format!("bad {what} {name:?}: an agent's {what} is a plain name (letters, digits, '_', '-', '.'; not '.' or '..')"),
                        );
                    }
                }
            }
            let provider = provider.map_or("heartbeat".to_owned(), |v| v.0);
            match kind {
                Some((kind, type_span)) => {
                    if let Some((id, id_span)) = &id {
                        r.found.agents.push(super::AgentUse {
                            resource: id.clone(),
                            at: id_span.clone(),
                            provider: provider.clone(),
                            kind: kind.clone(),
                            kind_at: type_span,
                            params: params
                                .iter()
                                .map(|(k, _, s)| (k.clone(), s.clone()))
                                .collect(),
                        });
                    }
                    Some(Agent::Ocf { provider, kind })
                }
                None => {
                    if t.take("type").is_none() {
                        r.d.error(t.span.clone(), format!("{what} needs `type`"));
                    }
                    None
                }
            }
        }
        Some(("process", _)) => {
            for k in ["provider", "type"] {
                r.forbid(t, k, "`provider` and `type` are for class \"ocf\"");
            }
            r.forbid(
                t,
                "params",
                "`params` are passed to OCF agents; a process takes its `command`",
            );
            if !promotable {
                for k in ["promote", "demote"] {
                    r.forbid(
                        t,
                        k,
                        "promote and demote commands are for resources with `promotable = true`",
                    );
                }
            }
            process.and_then(|p| lower_process(r, t, &what, p))
        }
        Some(("systemd", class_span)) => {
            for k in PROCESS_KEYS {
                r.forbid(
                    t,
                    k,
                    "a systemd resource is its unit; this key is for class \"process\"",
                );
            }
            r.forbid(t, "provider", "`provider` is for class \"ocf\"");
            r.forbid(
                t,
                "params",
                "a systemd unit takes no parameters (set them in the unit or a drop-in)",
            );
            if promotable {
                r.d.error(
                    t.span_of("promotable"),
                    "a systemd unit cannot be promotable (it has no promote or demote)",
                );
            }
            match kind {
                Some((kind, span)) => {
                    let unit = crate::exec::systemd::unit_name(&kind);
                    if crate::exec::systemd::valid_unit_name(&unit) {
                        r.found.systemd_units.push((unit.clone(), class_span));
                        Some(Agent::Systemd { unit })
                    } else {
                        r.d.error(
                            span,
                            format!("bad unit {kind:?}: a unit name like \"nginx\" or \"nginx.service\" (letters, digits, ':', '-', '_', '.', '@')"),
                        );
                        None
                    }
                }
                None => {
                    r.d.error(
                        t.span.clone(),
                        format!("{what} needs `type` (the unit, like \"nginx\")"),
                    );
                    None
                }
            }
        }
        Some((other, span)) => {
            r.d.error(
                span,
                format!("unknown class {other:?} (allowed: ocf, process, systemd)"),
            );
            None
        }
        None => None,
    };
    let is_process = matches!(agent, Some(Agent::Process(_)));
    // An operation's `command` is judged by the class as written, even when the rest of the
    // resource has errors (a process with a bad `command` still has monitor commands, and a
    // misspelt class is reported once, at the class).
    let ocf_class = class.as_ref().is_some_and(|(c, _)| c == "ocf");

    let mut ops: Vec<OpSpec> = Vec::new();
    let mut op_spans: Vec<Span> = Vec::new();
    for v in r.array(t, "ops").unwrap_or_default() {
        let Some(ot) = v.get_ref().as_table() else {
            r.d.error(
                v.span(),
                format!(
                    "an operation is a table like {{ name = \"monitor\", interval = \"10s\" }}, not {}",
                    v.get_ref().type_str()
                ),
            );
            continue;
        };
        let op = r.section(ot, v.span(), OP, |r, ot| {
            op(
                r,
                ot,
                v.span(),
                defaults.op_timeout,
                fencing,
                ocf_class,
                promotable,
            )
        });
        let Some(op) = op else { continue };
        if let Some(i) = ops
            .iter()
            .position(|o| o.name == op.name && o.interval == op.interval)
        {
            let (line, _) = crate::diag::line_col(r.d.src(), op_spans[i].start);
            r.d.error(
                v.span(),
                format!(
                    "duplicate operation {} with interval {} (first at line {line}); (name, interval) must be unique",
                    op.name,
                    duration::format(op.interval)
                ),
            );
        } else {
            ops.push(op);
            op_spans.push(v.span());
        }
    }
    // A health-check monitor is a recurring monitor at its interval (on_fail and the rest
    // apply to it); the daemon runs the check instead of the agent's monitor.
    let mut health_monitor = None;
    if let Some((hm, on_fail, span)) = health {
        if ops
            .iter()
            .any(|o| o.name == OpName::Monitor && o.interval == hm.check.interval)
        {
            r.d.error(
                span,
                format!(
                    "an operation already monitors every {}: give the health check another interval",
                    duration::format(hm.check.interval)
                ),
            );
        } else {
            let mut op = OpSpec::new(OpName::Monitor, hm.check.interval);
            op.timeout = hm.check.timeout + Duration::from_secs(1);
            op.on_fail = on_fail;
            ops.push(op);
            if let crate::check::CheckKind::Exec { command } = &hm.check.kind {
                r.found.programs.push((command[0].clone(), span.clone()));
            }
            health_monitor = Some(hm);
        }
    }
    implicit_monitors(&mut ops, is_process, promotable, defaults.op_timeout);

    let spec = match (&id, agent) {
        (Some((id, _)), Some(agent)) => {
            let mut spec = ResourceSpec::new(id.clone(), agent);
            spec.params = params.into_iter().map(|(k, v, _)| (k, v)).collect();
            spec.meta = meta;
            spec.ops = ops;
            spec.copies = copies;
            spec.utilization = utilization;
            spec.op_timeout = defaults.op_timeout;
            Some(spec)
        }
        _ => None,
    };
    (id, spec, health_monitor)
}

/// A process is watched all the time; it gets a recurring monitor when it has none, so its exit
/// has an operation to count against. A promotable process gets one per role: its promoted copy
/// runs only promoted monitors, and its exit must count against one of them.
fn implicit_monitors(ops: &mut Vec<OpSpec>, is_process: bool, promotable: bool, timeout: Duration) {
    for role in [OpRole::Started, OpRole::Promoted] {
        let promoted = role == OpRole::Promoted;
        if !is_process || (promoted && !promotable) {
            continue;
        }
        let has = ops.iter().any(|o| {
            o.enabled
                && o.name == OpName::Monitor
                && !o.interval.is_zero()
                && (o.role == OpRole::Promoted) == promoted
        });
        if has {
            continue;
        }
        // Distinct intervals per role, as Pacemaker requires.
        let mut interval = IMPLICIT_MONITOR - Duration::from_secs(u64::from(promoted));
        while ops
            .iter()
            .any(|o| o.name == OpName::Monitor && o.interval == interval)
        {
            interval += Duration::from_millis(100);
        }
        let mut implicit = OpSpec::new(OpName::Monitor, interval);
        implicit.timeout = timeout;
        implicit.role = role;
        ops.push(implicit);
    }
}

/// `params = { name = value }`: (name, value as text, place of the name).
pub(super) fn params(r: &mut Reader<'_>, t: &Tbl<'_, '_>) -> Vec<(String, String, Span)> {
    let mut out = Vec::new();
    let Some((pt, _)) = r.table(t, "params") else {
        return out;
    };
    for (k, v) in pt.iter() {
        let key = k.get_ref().to_string();
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            r.d.error(
                k.span(),
                format!("bad parameter name {key:?}: use letters, digits, '_', '-' and '.'"),
            );
            continue;
        }
        let Some(value) = r.scalar_text(v, &format!("parameter {key:?}")) else {
            continue;
        };
        out.push((key, value, k.span()));
    }
    out
}

/// The keys of a `process` resource, read whatever the class (checked against it after).
struct ProcessRead {
    command: Option<(Vec<String>, Span)>,
    env: Vec<(String, String)>,
    cwd: Option<String>,
    user: Option<(String, Span)>,
    group: Option<(String, Span)>,
    stop_signal: String,
    stop_timeout: Duration,
    promote: Option<(Vec<String>, Span)>,
    demote: Option<(Vec<String>, Span)>,
    output_max: Option<u64>,
}

fn process(r: &mut Reader<'_>, t: &Tbl<'_, '_>) -> Option<ProcessRead> {
    let command = r.argv(t, "command", None);
    let mut env = Vec::new();
    if let Some((et, _)) = r.table(t, "env") {
        for (k, v) in et.iter() {
            let key = k.get_ref().to_string();
            if key.is_empty() || key.contains('=') || key.contains('\0') {
                r.d.error(k.span(), format!("bad environment variable name {key:?}"));
                continue;
            }
            match v.get_ref() {
                DeValue::String(s) => env.push((key, s.to_string())),
                DeValue::Integer(i) => env.push((key, i.to_string())),
                DeValue::Boolean(b) => env.push((key, b.to_string())),
                other => r.d.error(
                    v.span(),
                    format!(
                        "environment variable {key:?} must be a string, not {}",
                        other.type_str()
                    ),
                ),
            }
        }
    }
    let cwd = r.string(t, "cwd").map(|v| v.0);
    let user = r.string(t, "user");
    let group = r.string(t, "group");
    if let (None, Some((_, span))) = (&user, &group) {
        r.d.error(
            span.clone(),
            "`group` needs `user`: alone, the process would still run as root (name the user it runs as)",
        );
    }
    let mut stop_signal = "TERM".to_owned();
    if let Some((sig, span)) = r.string(t, "stop_signal") {
        let norm = sig.trim_start_matches("SIG").to_ascii_uppercase();
        if STOP_SIGNALS.contains(&norm.as_str()) {
            stop_signal = norm;
        } else {
            r.d.error(
                span,
                format!(
                    "unknown stop_signal {sig:?} (allowed: {})",
                    STOP_SIGNALS.join(", ")
                ),
            );
        }
    }
    let stop_timeout = r
        .positive_duration(t, "stop_timeout")
        .unwrap_or(DEFAULT_STOP_TIMEOUT);
    let promote = r.argv(t, "promote", None);
    let demote = r.argv(t, "demote", None);
    let output_max = r.size(
        t,
        "output_max",
        crate::exec::output::MIN_OUTPUT_MAX,
        "64KiB",
    );
    Some(ProcessRead {
        command,
        env,
        cwd,
        user,
        group,
        stop_signal,
        stop_timeout,
        promote,
        demote,
        output_max,
    })
}

fn lower_process(r: &mut Reader<'_>, t: &Tbl<'_, '_>, what: &str, p: ProcessRead) -> Option<Agent> {
    let Some((command, span)) = p.command else {
        if t.take("command").is_none() {
            r.d.error(
                t.span.clone(),
                format!("{what} needs `command` (an array like [\"/usr/bin/prog\", \"--flag\"])"),
            );
        }
        return None;
    };
    r.found.programs.push((command[0].clone(), span));
    for (argv, span) in [&p.promote, &p.demote].into_iter().flatten() {
        r.found.programs.push((argv[0].clone(), span.clone()));
    }
    r.found.users.extend(p.user.clone());
    r.found.groups.extend(p.group.clone());
    Some(Agent::Process(ProcessSpec {
        command,
        env: p.env,
        cwd: p.cwd,
        user: p.user.map(|u| u.0),
        group: p.group.map(|g| g.0),
        stop_signal: p.stop_signal,
        stop_timeout: p.stop_timeout,
        promote: p.promote.map(|a| a.0),
        demote: p.demote.map(|a| a.0),
        output_max: p.output_max,
    }))
}

#[allow(clippy::too_many_arguments)]
fn op(
    r: &mut Reader<'_>,
    t: &Tbl<'_, '_>,
    span: Span,
    default_timeout: Duration,
    fencing: bool,
    ocf_class: bool,
    promotable: bool,
) -> Option<OpSpec> {
    let name = match t.take("name") {
        Some(v) => r.keyword_value(v, OpName::ALL),
        None => {
            r.d.error(
                span,
                "an operation needs a name (allowed: start, stop, monitor, promote, demote, notify)",
            );
            None
        }
    };
    /// The shortest interval of a recurring operation.
    const MIN_INTERVAL: Duration = Duration::from_millis(100);
    let interval = t
        .take("interval")
        .and_then(|v| r.duration_value(v).map(|i| (i, v.span())));
    let timeout = r.positive_duration(t, "timeout").unwrap_or(default_timeout);
    let enabled = r.boolean(t, "enabled").unwrap_or(true);
    let role = match t.take("role") {
        Some(v) => match r.keyword_value(v, OpRole::ALL) {
            // A monitor of the stopped role checks where the resource must not run.
            Some(OpRole::Stopped) if name != Some(OpName::Monitor) || interval.is_none() => {
                r.d.error(
                    v.span(),
                    "role \"stopped\" applies to recurring monitors (they check the nodes where the resource is stopped)",
                );
                OpRole::Started
            }
            Some(OpRole::Stopped) => OpRole::Stopped,
            Some(role) if role != OpRole::Started && !promotable => {
                r.d.error(
                    v.span(),
                    format!(
                        "role {:?} applies to resources with `promotable = true`",
                        role.as_str()
                    ),
                );
                role
            }
            Some(role) => role,
            None => OpRole::Started,
        },
        None => OpRole::Started,
    };
    let check_level = r.u32(t, "check_level");
    let on_fail = t
        .take("on_fail")
        .and_then(|v| r.keyword_value(v, OnFail::ALL).map(|f| (f, v.span())));
    let command = if ocf_class {
        r.forbid(
            t,
            "command",
            "a monitor command is for class \"process\"; an ocf agent monitors itself",
        );
        None
    } else if name.is_some_and(|n| n != OpName::Monitor) {
        r.forbid(t, "command", "only monitor operations take a command");
        None
    } else {
        r.argv(t, "command", None)
    };

    let name = name?;
    let mut op = OpSpec::new(name, Duration::ZERO);
    op.timeout = timeout;
    if let Some((i, span)) = interval {
        if !i.is_zero() && name != OpName::Monitor {
            r.d.error(
                span.clone(),
                format!("only monitor operations recur; {name} takes no interval"),
            );
        } else if !i.is_zero() && i < MIN_INTERVAL {
            r.d.error(
                span.clone(),
                format!(
                    "a monitor every {} would run its agent {} times a second: the shortest interval is {}",
                    duration::format(i),
                    1000 / i.as_millis().max(1),
                    duration::format(MIN_INTERVAL)
                ),
            );
        }
        op.interval = i;
    }
    op.enabled = enabled;
    op.role = role;
    op.check_level = check_level;
    if let Some((argv, span)) = command {
        r.found.programs.push((argv[0].clone(), span));
        op.command = Some(argv);
    }
    if let Some((on_fail, span)) = on_fail {
        if !on_fail.allowed_for(name, op.role) {
            let allowed = OnFail::allowed_values(name, op.role).join(", ");
            r.d.error(
                span,
                format!(
                    "on_fail = {:?} is not valid for a {name} operation (allowed: {allowed})",
                    on_fail.as_str()
                ),
            );
        } else if on_fail == OnFail::Fence && !fencing {
            r.d.error(
                span,
                "on_fail = \"fence\" needs fencing: add a [[fence_device]]",
            );
        }
        op.on_fail = Some(on_fail);
    }
    Some(op)
}

/// Meta attributes (of a resource's `meta`, or `[resource_defaults]`).
fn read_meta(r: &mut Reader<'_>, t: &Tbl<'_, '_>, meta: &mut Meta) {
    if let Some(v) = t.take("migration_threshold") {
        match v.get_ref() {
            DeValue::String(s) if s.eq_ignore_ascii_case("INFINITY") => {
                meta.migration_threshold = INFINITY_COUNT
            }
            _ => {
                if let Some(n) = r.u32_value(v, "migration_threshold") {
                    meta.migration_threshold = n.min(INFINITY_COUNT);
                }
            }
        }
    }
    if let Some(d) = r.duration(t, "failure_timeout") {
        meta.failure_timeout = (!d.is_zero()).then_some(d);
    }
    if let Some(s) = r.score(t, "resource_stickiness") {
        meta.resource_stickiness = s;
    }
    if let Some((v, _)) = r.keyword(t, "target_role", TargetRole::ALL) {
        meta.target_role = v;
    }
    if let Some(v) = r.boolean(t, "is_managed") {
        meta.is_managed = v;
    }
    if let Some(v) = r.boolean(t, "maintenance") {
        meta.maintenance = v;
    }
    if let Some((v, _)) = r.keyword(t, "multiple_active", MultipleActive::ALL) {
        meta.multiple_active = v;
    }
    if let Some(n) = r.int(t, "priority") {
        meta.priority = n;
    }
    if let Some(d) = r.duration(t, "crash_loop_window") {
        meta.crash_loop_window = d;
    }
    if let Some(d) = r.duration(t, "crash_loop_delay_max") {
        meta.crash_loop_delay_max = d;
    }
    if let Some(v) = r.boolean(t, "allow_migrate") {
        meta.allow_migrate = v;
    }
    if let Some(v) = r.boolean(t, "allow_unhealthy_nodes") {
        meta.allow_unhealthy_nodes = v;
    }
    if let Some((v, _)) = r.keyword(t, "requires", warden_engine::Requires::ALL) {
        meta.requires = v;
    }
}

/// `clone_max`, `notify` and `interleave` of a clone, `promoted_max` and `promotion_score` of
/// a promotable one (None: not a clone, and these keys do not apply).
fn clone_meta(r: &mut Reader<'_>, t: &Tbl<'_, '_>, spec: Option<&mut Copies>) {
    let Some(spec) = spec else {
        for k in CLONE_META_KEYS {
            r.forbid(
                t,
                k,
                "it applies to clones (`clone = true` or `promotable = true`)",
            );
        }
        for k in PROMOTABLE_META_KEYS {
            r.forbid(t, k, "it applies to resources with `promotable = true`");
        }
        return;
    };
    if let Some(n) = r.u32(t, "clone_max") {
        spec.clone_max = Some(n);
    }
    if let Some(n) = r.u32(t, "clone_min") {
        spec.clone_min = (n > 0).then_some(n);
    }
    if let Some(v) = r.boolean(t, "ordered") {
        spec.ordered = v;
    }
    if let Some((name, _)) = r.string(t, "clone_name") {
        spec.name = Some(name);
    }
    if let Some(v) = r.boolean(t, "notify") {
        spec.notify = v;
    }
    if let Some(v) = r.boolean(t, "interleave") {
        spec.interleave = v;
    }
    if let Some(v) = r.boolean(t, "globally_unique") {
        spec.globally_unique = v;
    }
    if let Some(v) = t.take("clone_node_max") {
        match r.u32_value(v, "clone_node_max") {
            Some(0) => r.d.error(v.span(), "`clone_node_max` must be at least 1"),
            Some(n) if n > 1 && !spec.globally_unique => r.d.error(
                v.span(),
                "clone_node_max above 1 needs `globally_unique = true` (copies of an anonymous clone on one node are one and the same to its agent)",
            ),
            Some(n) if n > 1 && (spec.promotable || spec.notify || spec.interleave) => r.d.error(
                v.span(),
                "clone_node_max above 1 is not supported with promotable, notify or interleave yet",
            ),
            Some(n) => spec.clone_node_max = n,
            None => {}
        }
    }
    if !spec.promotable {
        for k in PROMOTABLE_META_KEYS {
            r.forbid(t, k, "it applies to resources with `promotable = true`");
        }
        return;
    }
    if let Some(n) = r.u32(t, "promoted_max") {
        spec.promoted_max = n;
    }
    if let Some(v) = t.take("promotion_score") {
        spec.score = r.score_value(v);
    }
}

/// `monitor = { http = "http://host:port/path" | tcp = "host:port" | exec = [...], interval,
/// timeout, fall, rise, valid_statuses, body, on_fail, grace }`.
fn health_monitor(
    r: &mut Reader<'_>,
    t: &Tbl<'_, '_>,
    resource: &str,
) -> Option<(HealthMonitor, Option<OnFail>, Span)> {
    use crate::check::{CheckKind, CheckSpec, Peer};
    let span = t.span.clone();
    let http = r.string(t, "http");
    let tcp = r.string(t, "tcp");
    let exec = r.string_list(t, "exec");
    let mut check = CheckSpec {
        interval: Duration::from_secs(5),
        timeout: Duration::from_secs(2),
        ..CheckSpec::default()
    };
    check.hysteresis = warden_engine::health::Hysteresis { fall: 3, rise: 1 };
    super::upstreams::check_common(r, t, &mut check);
    let grace = r.duration(t, "grace").unwrap_or(Duration::from_secs(5));
    let on_fail = match t.take("on_fail") {
        Some(v) => match r.keyword_value(v, OnFail::ALL) {
            Some(f) if f.allowed_for(OpName::Monitor, OpRole::Started) => Some(f),
            Some(f) => {
                r.d.error(
                    v.span(),
                    format!("on_fail = {:?} is not valid for a monitor", f.as_str()),
                );
                None
            }
            None => None,
        },
        None => None,
    };

    let peer_of = |host: String, port: u16, _written: String| Peer {
        addr: crate::check::peer_addr(&host, port),
        host,
        port,
        weight: 1,
        max_fails: 1,
        fail_timeout: Duration::ZERO,
        down: false,
    };
    let peer = if let Some((url, uspan)) = http {
        let Some(rest) = url.strip_prefix("http://") else {
            r.d.error(
                uspan,
                format!("bad http monitor {url:?}: expected http://HOST:PORT/PATH"),
            );
            return None;
        };
        let (hostport, path) = rest
            .split_once('/')
            .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
        let (host, port) = match crate::check::parse_peer_addr(hostport) {
            Ok(hp) => hp,
            Err(e) => {
                r.d.error(uspan, e);
                return None;
            }
        };
        check.kind = CheckKind::Http {
            request: format!("GET {path} HTTP/1.0\r\nHost: {hostport}\r\n\r\n").into_bytes(),
            tls: None,
        };
        peer_of(host, port, hostport.to_owned())
    } else if let Some((addr, aspan)) = tcp {
        match crate::check::parse_peer_addr(&addr) {
            Ok((host, port)) => peer_of(host, port, addr),
            Err(e) => {
                r.d.error(aspan, e);
                return None;
            }
        }
    } else if t.take("exec").is_some() {
        let list = exec?;
        if list.is_empty() {
            r.d.error(span.clone(), "`exec` must name a program");
            return None;
        }
        check.kind = CheckKind::Exec {
            command: list.into_iter().map(|(s, _)| s).collect(),
        };
        peer_of("127.0.0.1".into(), 1, resource.to_owned())
    } else {
        r.d.error(span, "a monitor needs `http`, `tcp` or `exec`");
        return None;
    };
    Some((
        HealthMonitor {
            resource: resource.to_owned(),
            peer,
            check,
            grace,
        },
        on_fail,
        span,
    ))
}

/// A name that is one path component: not empty, not `.` or `..`, no `/` or other oddities.
fn plain_name(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}
