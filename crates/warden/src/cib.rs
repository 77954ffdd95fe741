//! Pacemaker's CIB (`cibadmin -Q`) read into Warden's terms: `warden import pacemaker` writes
//! the configuration file (and the state, from the status section), `warden simulate --cib`
//! schedules it directly. What Warden cannot carry over is listed by name, never dropped
//! silently. docs/pacemaker.md says what maps to what.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use anyhow::{Context, bail};
use roxmltree::{Document, Node};
use toml::{Table, Value};
use warden_engine::{
    Event, OpKey, OpName, OpResult, OpRole, State, Time, apply, rc, truthy as is_true,
};

mod digest;

/// What an import gives.
#[derive(Debug)]
pub struct Imported {
    /// The configuration file, TOML.
    pub toml: String,
    /// The status section's state at `time` (None: the CIB has no status).
    pub state: Option<State>,
    /// The time the CIB describes: its `execution-date`, else now.
    pub time: Time,
    /// Constructs not carried over, each with its name: `clone web-clone (plain clones)`.
    pub unsupported: Vec<String>,
    /// What Pacemaker itself ignores (configuration errors it logs), left out the same way.
    pub ignored: Vec<String>,
    /// Resources the status knows but the configuration no longer has (orphans), which are
    /// stopped where they run, as Pacemaker's `stop-orphan-resources` does: the state holds
    /// them, and the engine takes them with `Config::with_extra_resources`.
    pub orphans: Vec<warden_engine::ResourceSpec>,
    /// The parameters each resource's agent reloads, as the status's operations record them
    /// (`Config::with_reloadable`; the daemon reads them from the agents' meta-data).
    pub reloadable: std::collections::HashMap<String, Vec<String>>,
}

fn elements<'a, 'i>(n: Node<'a, 'i>) -> impl Iterator<Item = Node<'a, 'i>> {
    n.children().filter(Node::is_element)
}

fn child<'a, 'i>(n: Node<'a, 'i>, tag: &str) -> Option<Node<'a, 'i>> {
    elements(n).find(|c| c.has_tag_name(tag))
}

/// The nvpairs of `n`'s `set` children (`meta_attributes`, `instance_attributes`, ...): a set
/// with a rule is reported, not read.
fn nvpairs(
    n: Node<'_, '_>,
    set: &str,
    what: &str,
    skip: &mut Vec<String>,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for s in elements(n).filter(|c| c.has_tag_name(set)) {
        if child(s, "rule").is_some() {
            skip.push(format!(
                "{what}: {set} {} (rules)",
                s.attribute("id").unwrap_or("?")
            ));
            continue;
        }
        if s.attribute("id-ref").is_some() {
            skip.push(format!("{what}: {set} id-ref (references)"));
            continue;
        }
        for p in elements(s).filter(|c| c.has_tag_name("nvpair")) {
            if let (Some(k), Some(v)) = (p.attribute("name"), p.attribute("value")) {
                // `#default` unsets it: the default applies, as Pacemaker reads it.
                if v == "#default" {
                    out.retain(|(name, _)| name != k);
                } else {
                    out.push((k.to_owned(), v.to_owned()));
                }
            }
        }
    }
    out
}

/// The nvpairs of the `set` children of each of `nodes` in turn.
fn nvpairs_of(
    nodes: &[Node<'_, '_>],
    set: &str,
    what: &str,
    skip: &mut Vec<String>,
) -> Vec<(String, String)> {
    nodes
        .iter()
        .flat_map(|n| nvpairs(*n, set, what, skip))
        .collect()
}

/// A `utilization` set: whole numbers from 0 by name (Pacemaker takes anything else as 0).
fn utilization(n: Node<'_, '_>, what: &str, skip: &mut Vec<String>) -> Table {
    nvpairs(n, "utilization", what, skip)
        .into_iter()
        .filter(|(k, _)| warden_engine::valid_attribute(k))
        .map(|(k, v)| {
            let n = v.trim().parse::<i64>().unwrap_or(0).max(0);
            (k, Value::Integer(n))
        })
        .collect()
}

/// A Pacemaker duration (`10s`, `10000ms`, `1m`, `10`: seconds, or ISO 8601's `P30S`,
/// `PT1M30S`, `P1DT2H`) in milliseconds.
fn millis(v: &str) -> Option<u64> {
    let v = v.trim();
    if let Some(iso) = v.strip_prefix('P') {
        return iso_duration(iso);
    }
    let (num, unit) = v
        .find(|c: char| !c.is_ascii_digit())
        .map_or((v, ""), |i| (&v[..i], v[i..].trim()));
    let n: u64 = num.parse().ok()?;
    let f = match unit.to_ascii_lowercase().as_str() {
        "" | "s" | "sec" => 1000,
        "ms" | "msec" => 1,
        "m" | "min" => 60_000,
        "h" | "hr" => 3_600_000,
        _ => return None,
    };
    Some(n * f)
}

/// An ISO 8601 duration after its `P` (`1Y2M3W4DT5H6M7S`; a month 30 days and a year 365,
/// as Pacemaker counts them for an interval), in milliseconds. Before a `T`, `M` is months;
/// after it, minutes (Pacemaker also reads a bare `P30S` as seconds).
fn iso_duration(v: &str) -> Option<u64> {
    let mut total: u64 = 0;
    let mut num = String::new();
    let mut time = false;
    let mut any = false;
    for c in v.chars() {
        match c {
            '0'..='9' => num.push(c),
            'T' | 't' if num.is_empty() => time = true,
            _ => {
                let n: u64 = num.parse().ok()?;
                num.clear();
                let secs = match c.to_ascii_uppercase() {
                    'Y' if !time => 365 * 86_400,
                    'M' if !time => 30 * 86_400,
                    'W' if !time => 7 * 86_400,
                    'D' if !time => 86_400,
                    'H' => 3_600,
                    'M' => 60,
                    'S' => 1,
                    _ => return None,
                };
                total = total.checked_add(n.checked_mul(secs)?.checked_mul(1000)?)?;
                any = true;
            }
        }
    }
    (any && num.is_empty()).then_some(total)
}

fn duration_value(ms: u64) -> Value {
    if ms % 1000 == 0 {
        Value::String(format!("{}s", ms / 1000))
    } else {
        Value::String(format!("{ms}ms"))
    }
}

/// A score as the configuration takes it.
fn score_value(v: &str) -> Value {
    let t = v.trim();
    match t.to_ascii_lowercase().as_str() {
        "infinity" | "+infinity" => Value::String("INFINITY".into()),
        "-infinity" => Value::String("-INFINITY".into()),
        // As Pacemaker's char2score: the leading integer ("1.0" is 1).
        _ => {
            let end = t
                .char_indices()
                .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && (c == '-' || c == '+'))))
                .map_or(t.len(), |(i, _)| i);
            match t[..end].parse::<i64>() {
                Ok(n) => Value::Integer(n.clamp(-1_000_000, 1_000_000)),
                Err(_) => Value::String(t.to_owned()),
            }
        }
    }
}

fn role_word(v: &str) -> Option<&'static str> {
    match v.to_ascii_lowercase().as_str() {
        "started" => Some("started"),
        "stopped" => Some("stopped"),
        "promoted" | "master" => Some("promoted"),
        "unpromoted" | "slave" => Some("unpromoted"),
        _ => None,
    }
}

/// Resource meta attributes Warden has, in the configuration's words; those that change
/// nothing in a schedule are taken silently; any other is reported.
/// Meta attributes Pacemaker schedules by that the importer does not carry over (any other it
/// does not know is a user's own, which Pacemaker ignores).
const PACEMAKER_META: &[&str] = &[
    "container",
    "remote-port",
    "remote-addr",
    "remote-connect-timeout",
    "remote-allow-migrate",
    "critical",
    "collocated",
    "isolation",
    "isolation-instance",
    "isolation-wrapper",
    "isolation-host",
    "resource-failure-stickiness",
    "failure-stickiness",
];

fn meta_key(k: &str) -> Option<Option<&'static str>> {
    Some(Some(match k {
        "migration-threshold" => "migration_threshold",
        "failure-timeout" => "failure_timeout",
        "resource-stickiness" | "resource_stickiness" => "resource_stickiness",
        "target-role" => "target_role",
        "is-managed" => "is_managed",
        "maintenance" => "maintenance",
        "multiple-active" => "multiple_active",
        "priority" => "priority",
        "requires" => "requires",
        "description"
        | "interleave"
        | "ordered"
        | "notify"
        | "globally-unique"
        | "clone-max"
        | "clone-min"
        | "clone-node-max"
        | "promoted-max"
        | "master-max"
        | "promoted-node-max"
        | "master-node-max"
        | "promotable"
        | "record-pending"
        | "timeout"
        | "container-attribute-target" => return Some(None),
        _ => return None,
    }))
}

fn meta_value(key: &str, v: &str) -> Option<Value> {
    Some(match key {
        "migration_threshold" => match v.trim().to_ascii_lowercase().as_str() {
            "infinity" | "+infinity" => Value::String("INFINITY".into()),
            n => Value::Integer(n.parse::<i64>().ok()?.max(0)),
        },
        "failure_timeout" => duration_value(millis(v)?),
        "resource_stickiness" | "priority" => score_value(v),
        // A promotable resource started may be promoted: Pacemaker's Promoted is Started.
        "target_role" => Value::String(
            match role_word(v)? {
                "promoted" => "started",
                w => w,
            }
            .to_owned(),
        ),
        "is_managed" | "maintenance" => Value::Boolean(is_true(v)),
        "multiple_active" => Value::String(v.replace('-', "_")),
        // Anything else unknown is Pacemaker's default, fencing.
        "requires" => Value::String(
            match v.to_ascii_lowercase().as_str() {
                "nothing" => "nothing",
                "quorum" => "quorum",
                "unfencing" => "unfencing",
                _ => "fencing",
            }
            .to_owned(),
        ),
        _ => return None,
    })
}

/// A rule of `rsc_defaults` or `op_defaults` on what a resource or an operation is
/// (Pacemaker's `rsc_expression` and `op_expression`), which the importer evaluates for each
/// resource and operation: Warden's own defaults are the same for every resource.
#[derive(Clone, Debug, PartialEq)]
enum DefaultRule {
    /// Each given field must be the primitive's.
    Resource {
        class: Option<String>,
        provider: Option<String>,
        kind: Option<String>,
    },
    /// The operation's name, and its interval when given (milliseconds).
    Op {
        name: String,
        interval: Option<u64>,
    },
    All(Vec<DefaultRule>),
    Any(Vec<DefaultRule>),
}

/// What a default rule is evaluated on.
struct DefaultTarget<'a> {
    class: &'a str,
    provider: Option<&'a str>,
    kind: &'a str,
    /// The operation (name, interval in milliseconds); None for `rsc_defaults`.
    op: Option<(&'a str, u64)>,
}

impl DefaultRule {
    fn matches(&self, t: &DefaultTarget<'_>) -> bool {
        let same = |want: &Option<String>, have: Option<&str>| {
            want.as_deref().is_none_or(|w| Some(w) == have)
        };
        match self {
            DefaultRule::Resource {
                class,
                provider,
                kind,
            } => {
                same(class, Some(t.class)) && same(provider, t.provider) && same(kind, Some(t.kind))
            }
            DefaultRule::Op { name, interval } => {
                t.op.is_some_and(|(n, i)| n == name && interval.is_none_or(|want| want == i))
            }
            DefaultRule::All(v) => v.iter().all(|r| r.matches(t)),
            DefaultRule::Any(v) => v.iter().any(|r| r.matches(t)),
        }
    }

    /// A `rule` of a defaults block (Err: what it holds that Warden cannot evaluate here).
    fn of(rule: Node<'_, '_>, ops: bool) -> Result<DefaultRule, String> {
        if rule.attribute("id-ref").is_some() {
            return Err("a rule by reference (references)".into());
        }
        let mut parts = Vec::new();
        for e in elements(rule) {
            parts.push(match e.tag_name().name() {
                "rule" => DefaultRule::of(e, ops)?,
                "rsc_expression" => DefaultRule::Resource {
                    class: e.attribute("class").map(str::to_owned),
                    provider: e.attribute("provider").map(str::to_owned),
                    kind: e.attribute("type").map(str::to_owned),
                },
                "op_expression" if ops => DefaultRule::Op {
                    name: e.attribute("name").unwrap_or_default().to_owned(),
                    interval: match e.attribute("interval") {
                        None => None,
                        Some(v) => Some(
                            millis(v).ok_or_else(|| format!("an op_expression interval {v:?}"))?,
                        ),
                    },
                },
                other => return Err(format!("{other} (rules)")),
            });
        }
        Ok(
            if rule
                .attribute("boolean-op")
                .is_some_and(|b| b.eq_ignore_ascii_case("or"))
            {
                DefaultRule::Any(parts)
            } else {
                DefaultRule::All(parts)
            },
        )
    }
}

/// One `meta_attributes` block of `rsc_defaults` or `op_defaults`, in the CIB's order.
#[derive(Clone, Debug)]
struct DefaultBlock {
    /// None: it applies to every resource (or operation).
    rule: Option<DefaultRule>,
    /// Its `score` (blocks of a higher score win; of one score, the later one).
    score: i64,
    pairs: Vec<(String, String)>,
}

/// The blocks of a defaults section; a block whose rule Warden cannot evaluate is named and
/// left out.
fn default_blocks(
    d: Node<'_, '_>,
    what: &str,
    ops: bool,
    skip: &mut Vec<String>,
) -> Vec<DefaultBlock> {
    let mut out = Vec::new();
    for set in elements(d).filter(|c| c.has_tag_name("meta_attributes")) {
        let id = set.attribute("id").unwrap_or("?");
        if set.attribute("id-ref").is_some() {
            skip.push(format!("{what}: meta_attributes id-ref (references)"));
            continue;
        }
        let rule = match child(set, "rule").map(|r| DefaultRule::of(r, ops)) {
            None => None,
            Some(Ok(r)) => Some(r),
            Some(Err(e)) => {
                skip.push(format!("{what}: meta_attributes {id}: {e}"));
                continue;
            }
        };
        let score =
            set.attribute("score")
                .map_or(0, |v| match v.trim().to_ascii_uppercase().as_str() {
                    "INFINITY" | "+INFINITY" => warden_engine::INFINITY,
                    "-INFINITY" => -warden_engine::INFINITY,
                    n => n.parse().unwrap_or(0),
                });
        let mut pairs: Vec<(String, String)> = Vec::new();
        for p in elements(set).filter(|c| c.has_tag_name("nvpair")) {
            if let (Some(k), Some(v)) = (p.attribute("name"), p.attribute("value")) {
                pairs.retain(|(name, _)| name != k);
                pairs.push((k.to_owned(), v.to_owned()));
            }
        }
        out.push(DefaultBlock { rule, score, pairs });
    }
    out
}

/// The values of ruled defaults blocks that win for `t` over every other block (the highest
/// score, then the later block), where a block without a rule does not win: Warden's own
/// defaults carry those.
fn ruled_defaults(blocks: &[DefaultBlock], t: &DefaultTarget<'_>) -> Vec<(String, String)> {
    let mut best: BTreeMap<&str, (i64, usize, bool, &str)> = BTreeMap::new();
    for (n, b) in blocks.iter().enumerate() {
        if b.rule.as_ref().is_some_and(|r| !r.matches(t)) {
            continue;
        }
        for (k, v) in &b.pairs {
            let entry = (b.score, n, b.rule.is_some(), v.as_str());
            match best.get(k.as_str()) {
                Some(&(s, m, _, _)) if (s, m) > (b.score, n) => {}
                _ => {
                    best.insert(k, entry);
                }
            }
        }
    }
    best.into_iter()
        .filter(|(_, (_, _, ruled, v))| *ruled && *v != "#default")
        .map(|(k, (_, _, _, v))| (k.to_owned(), v.to_owned()))
        .collect()
}

struct Reader {
    skip: Vec<String>,
    /// What Pacemaker itself ignores.
    ignored: Vec<String>,
    resources: Vec<Table>,
    groups: Vec<Table>,
    fence: Vec<Table>,
    /// Resources and fence devices in the order the CIB declares them, which is the order
    /// the configuration keeps them in (Pacemaker places resources of equal priority in it).
    written: Vec<(&'static str, usize)>,
    /// Node names by CIB node id (rules on `#id` name nodes by id).
    node_ids: BTreeMap<String, String>,
    locations: Vec<Table>,
    colocations: Vec<Table>,
    orders: Vec<Table>,
    /// Resource ids Warden has, by the CIB id that names them (a promotable clone's id names
    /// its primitive).
    names: BTreeMap<String, String>,
    /// Group ids.
    group_ids: BTreeSet<String>,
    /// The members carried over of each group.
    group_members: BTreeMap<String, Vec<String>>,
    tickets: Vec<Table>,
    /// Stonith primitives (fence devices, not resources).
    stonith: BTreeSet<String>,
    /// The cluster nodes carried over.
    nodes: BTreeSet<String>,
    /// `stonith-enabled`.
    stonith_enabled: bool,
    /// `stonith-action=off`: every agent device powers its node off.
    fence_off: bool,
    /// `startup-fencing` (true unless set false): a node never seen is unclean.
    startup_fencing: bool,
    /// `stop-all-resources`: every resource is stopped (as if disabled).
    stop_all: bool,
    /// `maintenance-mode`: every resource is in maintenance (left exactly as it is).
    maintenance_mode: bool,
    /// Nodes of the CIB not carried over (remote nodes).
    skipped_nodes: BTreeSet<String>,
    /// Resources with the old `restart-type=restart`.
    restart_type: Vec<String>,
    /// What each tag and each template stands for in constraints: the CIB ids of the
    /// resources tagged with it or made from it.
    tags: BTreeMap<String, Vec<String>>,
    /// Each primitive's definition as Pacemaker hashes it, to compare with the digests the
    /// status recorded.
    definitions: BTreeMap<String, digest::Definition>,
    /// `rsc_defaults` and `op_defaults` blocks with rules Warden evaluates per resource (and
    /// those without, which decide where a ruled one loses).
    rsc_default_blocks: Vec<DefaultBlock>,
    op_default_blocks: Vec<DefaultBlock>,
}

/// A resource set of a constraint, as read (or as Pacemaker makes one of a constraint that
/// names a tag or a template).
struct Set {
    /// Its id (a set made of a tag or a resource: the tag's or the resource's).
    id: String,
    members: Vec<String>,
    /// `require-all` (an order's set).
    require_all: bool,
    /// `sequential` as written (None: not written).
    sequential: Option<bool>,
    role: Option<&'static str>,
    action: String,
    score: Option<String>,
    kind: Option<String>,
}

impl Reader {
    fn primitive(&mut self, p: Node<'_, '_>, extra_meta: &[(String, String)]) -> Option<Table> {
        let id = p.attribute("id")?.to_owned();
        // A primitive made from a template: the template's class, agent, attributes and
        // operations, then its own (which win), as Pacemaker's `unpack_template` expands it.
        let template = match p.attribute("template") {
            Some(name) => match p
                .document()
                .root_element()
                .descendants()
                .find(|n| n.has_tag_name("template") && n.attribute("id") == Some(name))
            {
                Some(t) => {
                    self.tags
                        .entry(name.to_owned())
                        .or_default()
                        .push(id.clone());
                    Some(t)
                }
                None => {
                    self.skip
                        .push(format!("primitive {id} (template {name} not found)"));
                    return None;
                }
            },
            None => None,
        };
        // The primitive and its template, the template first.
        let sources: Vec<Node<'_, '_>> = template.into_iter().chain([p]).collect();
        // Its parameters: also those of the groups and clones it is in (Pacemaker passes a
        // parent's instance attributes to the agent and hashes them), the outermost first
        // and its own last (they win).
        let mut param_sources: Vec<Node<'_, '_>> = p
            .ancestors()
            .skip(1)
            .take_while(|a| !a.has_tag_name("resources"))
            .filter(|a| {
                a.has_tag_name("group") || a.has_tag_name("clone") || a.has_tag_name("master")
            })
            .collect();
        param_sources.reverse();
        param_sources.extend(&sources);
        let attr = |k: &str| p.attribute(k).or(template.and_then(|t| t.attribute(k)));
        let class = attr("class").unwrap_or("ocf");
        let kind = attr("type").unwrap_or("");
        // What the ruled `rsc_defaults` give it, under its parents' and its own meta.
        let provider = attr("provider");
        let target = |op| DefaultTarget {
            class,
            provider,
            kind,
            op,
        };
        let mut with_defaults = ruled_defaults(&self.rsc_default_blocks, &target(None));
        with_defaults.extend(extra_meta.iter().cloned());
        let extra_meta = with_defaults.as_slice();
        self.definitions.insert(
            id.clone(),
            definition(&sources, &param_sources, class == "stonith"),
        );
        let mut t = Table::new();
        t.insert("id".into(), Value::String(id.clone()));
        match class {
            // A Pacemaker Remote connection: remote nodes stay out (docs/pacemaker.md).
            "ocf" if attr("provider") == Some("pacemaker") && kind == "remote" => {
                self.skip.push(format!(
                    "primitive {id} (remote nodes: ocf:pacemaker:remote)"
                ));
                return None;
            }
            "ocf" => {
                t.insert("class".into(), "ocf".into());
                if let Some(pr) = attr("provider") {
                    t.insert("provider".into(), pr.into());
                }
                t.insert("type".into(), kind.into());
            }
            "lsb" | "service" | "systemd" | "upstart" => {
                t.insert("class".into(), "systemd".into());
                // An LSB script may be named by its path; systemd knows it by its name.
                let kind = kind.rsplit('/').next().unwrap_or(kind);
                // A unit name has its type after the dot ("asterisk-11.0.1" is a script).
                let typed = kind.rsplit_once('.').is_some_and(|(_, t)| {
                    matches!(
                        t,
                        "service" | "socket" | "target" | "mount" | "timer" | "path" | "slice"
                    )
                });
                let unit = if typed {
                    kind.to_owned()
                } else {
                    format!("{kind}.service")
                };
                t.insert("type".into(), unit.into());
            }
            "stonith" => {
                let mut d = Table::new();
                d.insert("name".into(), id.clone().into());
                d.insert("agent".into(), kind.into());
                // Placed as a resource and checked as often as its monitor says (none: only
                // when it starts).
                let monitor = sources
                    .iter()
                    .filter_map(|s| child(*s, "operations"))
                    .flat_map(elements)
                    .filter(|o| o.attribute("name") == Some("monitor"))
                    .filter_map(|o| millis(o.attribute("interval").unwrap_or("0")))
                    .find(|&ms| ms > 0)
                    .unwrap_or(0);
                d.insert("monitor".into(), duration_value(monitor));
                // Its meta attributes that placing it reads: `requires`, `is-managed` (a
                // clone's first, its own win).
                let meta: Vec<(String, String)> = extra_meta
                    .iter()
                    .cloned()
                    .chain(nvpairs_of(
                        &sources,
                        "meta_attributes",
                        &id,
                        &mut Vec::new(),
                    ))
                    .collect();
                let last = |key: &str| meta.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v);
                if last("requires").is_some_and(|v| v.eq_ignore_ascii_case("nothing")) {
                    d.insert("requires".into(), "nothing".into());
                }
                if last("is-managed").is_some_and(|v| !is_true(v)) {
                    d.insert("is_managed".into(), false.into());
                }
                // `provides=unfencing` (fence_scsi, fence_mpath): it unfences as well.
                let provides = last("provides").cloned().or_else(|| {
                    nvpairs_of(&sources, "instance_attributes", &id, &mut Vec::new())
                        .into_iter()
                        .rev()
                        .find(|(k, _)| k == "provides")
                        .map(|(_, v)| v)
                });
                if provides.is_some_and(|v| v.eq_ignore_ascii_case("unfencing")) {
                    d.insert("unfence".into(), true.into());
                }
                // The rest of its meta attributes: those a device's placement reads carry
                // over as its keys; `target-role=Stopped` disables it (Pacemaker's fencer
                // leaves it out); any other is named.
                let mut own: Vec<(&str, &str)> = Vec::new();
                for (k, v) in &meta {
                    own.retain(|(k2, _)| k2 != k);
                    own.push((k, v));
                }
                for (k, v) in own {
                    if matches!(k, "requires" | "is-managed" | "provides") {
                        continue;
                    }
                    let key = match meta_key(k) {
                        Some(Some(
                            key @ ("target_role"
                            | "migration_threshold"
                            | "failure_timeout"
                            | "resource_stickiness"
                            | "priority"),
                        )) => key,
                        Some(None) => continue,
                        // A meta attribute a resource has and a device does not.
                        Some(Some(_)) => {
                            self.skip.push(format!("{id}: meta {k} (a fence device)"));
                            continue;
                        }
                        None if matches!(k, "allow-migrate" | "allow-unhealthy-nodes") => {
                            self.skip.push(format!("{id}: meta {k} (a fence device)"));
                            continue;
                        }
                        // Pacemaker's own Warden lacks, or the user's: as for any resource.
                        None => {
                            self.meta(&id, k, v, &mut Table::new());
                            continue;
                        }
                    };
                    match (key, meta_value(key, v)) {
                        ("target_role", Some(Value::String(role)))
                            if matches!(role.as_str(), "started" | "stopped") =>
                        {
                            d.insert(key.into(), Value::String(role));
                        }
                        (_, Some(val)) if key != "target_role" => {
                            d.insert(key.into(), val);
                        }
                        _ => self
                            .skip
                            .push(format!("{id}: meta {k}={v} (a fence device)")),
                    }
                }
                if self.fence_off {
                    d.insert("action".into(), "off".into());
                }
                self.written.push(("fence_device", self.fence.len()));
                self.fence.push(d);
                self.stonith.insert(id.clone());
                self.names.insert(id.clone(), id);
                return None;
            }
            other => {
                self.skip.push(format!("primitive {id} (class {other})"));
                return None;
            }
        }
        let params: Table = nvpairs_of(
            &param_sources,
            "instance_attributes",
            &format!("primitive {id}"),
            &mut self.skip,
        )
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
        if !params.is_empty() && class == "ocf" {
            t.insert("params".into(), Value::Table(params));
        }
        let mut used = Table::new();
        for s in &sources {
            used.extend(utilization(*s, &format!("primitive {id}"), &mut self.skip));
        }
        if !used.is_empty() {
            t.insert("utilization".into(), Value::Table(used));
        }
        let mut meta = Table::new();
        let mut all = extra_meta.to_vec();
        all.extend(nvpairs_of(
            &sources,
            "meta_attributes",
            &format!("primitive {id}"),
            &mut self.skip,
        ));
        for (k, v) in all {
            self.meta(&id, &k, &v, &mut meta);
        }
        if !meta.is_empty() {
            t.insert("meta".into(), Value::Table(meta));
        }
        let mut ops: Vec<Table> = Vec::new();
        // Its own operations, then those of its template it has no operation of the same
        // name, interval and role for.
        let op_key = |o: Node<'_, '_>| {
            (
                o.attribute("name").unwrap_or_default().to_owned(),
                millis(o.attribute("interval").unwrap_or("0")),
                o.attribute("role").and_then(role_word),
            )
        };
        let own: Vec<Node<'_, '_>> = child(p, "operations")
            .into_iter()
            .flat_map(elements)
            .filter(|c| c.has_tag_name("op"))
            .collect();
        let from_template = template
            .and_then(|t| child(t, "operations"))
            .into_iter()
            .flat_map(elements)
            .filter(|c| c.has_tag_name("op"))
            .filter(|o| !own.iter().any(|x| op_key(*x) == op_key(*o)));
        // An operation without a timeout of its own takes the ruled `op_defaults` one that
        // wins for it; a start or stop without an operation of its own too.
        let op_blocks = std::mem::take(&mut self.op_default_blocks);
        let op_default = |name: &str, interval: u64| {
            let t = DefaultTarget {
                class,
                provider,
                kind,
                op: Some((name, interval)),
            };
            ruled_defaults(&op_blocks, &t)
                .into_iter()
                .find(|(k, _)| k == "timeout")
                .and_then(|(_, v)| millis(&v))
        };
        let mut defaulted: Vec<(usize, u64)> = Vec::new();
        for op in own.iter().copied().chain(from_template) {
            if let Some(o) = self.op(&id, op) {
                let name = op.attribute("name").unwrap_or_default();
                let interval = millis(op.attribute("interval").unwrap_or("0")).unwrap_or(0);
                if !o.contains_key("timeout") {
                    if let Some(t) = op_default(name, interval) {
                        defaulted.push((ops.len(), t));
                    }
                }
                ops.push(o);
            }
        }
        for (n, t) in defaulted {
            ops[n].insert("timeout".into(), duration_value(t));
        }
        for name in ["start", "stop"] {
            let has = ops
                .iter()
                .any(|o| o.get("name").and_then(Value::as_str) == Some(name));
            if let (false, Some(t)) = (has, op_default(name, 0)) {
                let mut o = Table::new();
                o.insert("name".into(), name.into());
                o.insert("timeout".into(), duration_value(t));
                ops.push(o);
            }
        }
        self.op_default_blocks = op_blocks;
        // Two operations with one name and interval: Pacemaker ignores every such recurring
        // operation (a configuration error it logs) and takes the first of one-shot ones.
        let key = |o: &Table| {
            (
                o.get("name").map(ToString::to_string),
                o.get("interval").map(ToString::to_string),
            )
        };
        let mut kept: Vec<Table> = Vec::new();
        for o in &ops {
            let same = ops.iter().filter(|x| key(x) == key(o)).count();
            let recurring = o.get("interval").is_some();
            let name = o.get("name").and_then(Value::as_str).unwrap_or("");
            if same > 1 && recurring {
                let what = format!(
                    "{id}: the {name} operations of interval {} (one name and interval twice)",
                    o.get("interval").and_then(Value::as_str).unwrap_or("")
                );
                if !self.ignored.contains(&what) {
                    self.ignored.push(what);
                }
            } else if !kept.iter().any(|x| key(x) == key(o)) {
                kept.push(o.clone());
            }
        }
        let ops: Vec<Value> = kept.into_iter().map(Value::Table).collect();
        if !ops.is_empty() {
            t.insert("ops".into(), Value::Array(ops));
        }
        self.names.insert(id.clone(), id);
        Some(t)
    }

    fn meta(&mut self, id: &str, k: &str, v: &str, meta: &mut Table) {
        match meta_key(k) {
            Some(Some(key)) => match meta_value(key, v) {
                Some(val) => {
                    meta.insert(key.into(), val);
                }
                None => self.skip.push(format!("{id}: meta {k}={v} (value)")),
            },
            Some(None) => {}
            None if k == "allow-migrate" => {
                meta.insert("allow_migrate".into(), is_true(v).into());
            }
            None if k == "allow-unhealthy-nodes" => {
                meta.insert("allow_unhealthy_nodes".into(), is_true(v).into());
            }
            // Groups are collocated and ordered unless told otherwise.
            None if (k == "collocated" || k == "ordered") && is_true(v) => {}
            // It matters only after an optional order (checked once the orders are read).
            None if k == "restart-type" => {
                if v.eq_ignore_ascii_case("restart") && !self.restart_type.iter().any(|r| r == id) {
                    self.restart_type.push(id.to_owned());
                }
            }
            None if k == "remote-node" => {
                self.skip.push(format!("{id}: remote-node (remote nodes)"))
            }
            // Pacemaker's own meta attributes Warden does not have.
            None if PACEMAKER_META.contains(&k) => self.skip.push(format!("{id}: meta {k}")),
            // Any other is the user's: Pacemaker passes it to the agent and schedules
            // without it.
            None => {
                let note = format!("{id}: meta {k} (not Pacemaker's: it schedules without it)");
                if !self.ignored.contains(&note) {
                    self.ignored.push(note);
                }
            }
        }
    }

    fn op(&mut self, id: &str, op: Node<'_, '_>) -> Option<Table> {
        let name = op.attribute("name")?;
        let interval = millis(op.attribute("interval").unwrap_or("0")).unwrap_or(0);
        let mut o = Table::new();
        match name {
            "start" | "stop" | "promote" | "demote" | "notify" => {}
            "monitor" => {}
            // Other operations (migrate_to and migrate_from among them) take Warden's
            // defaults.
            _ => return None,
        }
        if name == "monitor" && interval == 0 {
            // A probe's settings: Warden probes with its defaults.
            return None;
        }
        o.insert("name".into(), name.into());
        if interval > 0 {
            o.insert("interval".into(), duration_value(interval));
        }
        if let Some(t) = op.attribute("timeout").and_then(millis) {
            o.insert("timeout".into(), duration_value(t));
        }
        let mut on_fail = op.attribute("on-fail").map(str::to_owned);
        if let Some(r) = op.attribute("role") {
            match role_word(r) {
                // A monitor of where it is stopped; a stopped role on anything else is
                // Pacemaker's error, ignored.
                Some("stopped") if name != "monitor" => return None,
                Some(w) => {
                    o.insert("role".into(), w.into());
                }
                None => {}
            }
        }
        if op.attribute("enabled").is_some_and(|e| !is_true(e)) {
            o.insert("enabled".into(), false.into());
        }
        for (k, v) in nvpairs(
            op,
            "meta_attributes",
            &format!("{id} op {name}"),
            &mut self.skip,
        ) {
            match k.as_str() {
                "timeout" => {
                    if let Some(t) = millis(&v) {
                        o.insert("timeout".into(), duration_value(t));
                    }
                }
                "on-fail" => on_fail = Some(v),
                _ => {}
            }
        }
        if let Some(f) = on_fail {
            let f = f.to_ascii_lowercase();
            // What Pacemaker resets (with a configuration error) before it schedules.
            let reset = match f.as_str() {
                "standby" | "demote" | "stop" if name == "stop" => Some("the default"),
                // Warden's stop has no "stop" on failure: the default (block) there.
                "fence" if !self.stonith_enabled && name == "stop" => Some("the default"),
                "fence" if !self.stonith_enabled => Some("stop"),
                _ => None,
            };
            match reset {
                Some(to) => {
                    self.ignored.push(format!(
                        "{id}: on-fail={f} of its {name} operation (reset to {to})"
                    ));
                    if to == "stop" {
                        o.insert("on_fail".into(), "stop".into());
                    }
                }
                None => {
                    o.insert("on_fail".into(), f.into());
                }
            }
        }
        Some(o)
    }

    fn push_resource(&mut self, t: Table) {
        self.written.push(("resource", self.resources.len()));
        self.resources.push(t);
    }

    fn resources(&mut self, list: Node<'_, '_>) {
        for r in elements(list) {
            let id = r.attribute("id").unwrap_or("?").to_owned();
            match r.tag_name().name() {
                "primitive" => {
                    if let Some(t) = self.primitive(r, &[]) {
                        self.push_resource(t);
                    }
                }
                "group" => {
                    let meta =
                        nvpairs(r, "meta_attributes", &format!("group {id}"), &mut self.skip);
                    let mut members = Vec::new();
                    for p in elements(r).filter(|c| c.has_tag_name("primitive")) {
                        if let Some(t) = self.primitive(p, &meta) {
                            members.push(Value::String(
                                t.get("id").and_then(Value::as_str).unwrap_or("").to_owned(),
                            ));
                            self.push_resource(t);
                        } else if let Some(device) =
                            p.attribute("id").filter(|d| self.stonith.contains(*d))
                        {
                            // Fence devices are placed as resources: a group of them too.
                            members.push(Value::String(device.to_owned()));
                        }
                    }
                    self.group_members.insert(
                        id.clone(),
                        members
                            .iter()
                            .filter_map(|m| m.as_str().map(str::to_owned))
                            .collect(),
                    );
                    if !members.is_empty() {
                        let mut g = Table::new();
                        g.insert("id".into(), id.clone().into());
                        g.insert("resources".into(), Value::Array(members));
                        self.groups.push(g);
                    }
                    self.group_ids.insert(id);
                }
                "clone" | "master" => self.clone_of(r, &id),
                "bundle" => self.skip.push(format!("bundle {id} (bundles)")),
                // Read where a primitive names it.
                "template" => {}
                other => self.skip.push(format!("{other} {id}")),
            }
        }
    }

    fn clone_of(&mut self, r: Node<'_, '_>, id: &str) {
        let meta = nvpairs(r, "meta_attributes", &format!("clone {id}"), &mut self.skip);
        let get = |k: &str| {
            meta.iter()
                .rev()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        let promotable = r.has_tag_name("master") || get("promotable").is_some_and(is_true);

        // Several copies on a node: a globally unique clone of a primitive only, as Warden's
        // instances (docs/config.md); an anonymous clone's copies on one node are one and
        // the same to Pacemaker's history too.
        if get("clone-node-max").is_some_and(|v| v != "1") {
            let flag = |k: &str| get(k).is_some_and(is_true);
            let why = if !flag("globally-unique") {
                Some("on an anonymous clone")
            } else if promotable || flag("notify") || flag("interleave") {
                Some("with promotable, notify or interleave")
            } else if !elements(r).any(|c| c.has_tag_name("primitive")) {
                Some("of a group")
            } else {
                None
            };
            if let Some(why) = why {
                self.skip
                    .push(format!("clone {id} (clone-node-max above 1 {why})"));
                return;
            }
        }
        // What the clone's meta attributes say of its resource (not of the clone itself).
        let inherited: Vec<(String, String)> = meta
            .iter()
            .filter(|(k, _)| meta_key(k) != Some(None))
            .cloned()
            .collect();
        let Some(p) = elements(r).find(|c| c.has_tag_name("primitive")) else {
            match elements(r).find(|c| c.has_tag_name("group")) {
                Some(g) if !promotable => self.cloned_group(g, id, &meta, &inherited),
                Some(_) => self
                    .skip
                    .push(format!("clone {id} (a promotable clone of a group)")),
                None => self.skip.push(format!("clone {id} (nothing to clone)")),
            }
            return;
        };
        let Some(mut t) = self.primitive(p, &inherited) else {
            let child_id = p.attribute("id").unwrap_or_default();
            if self.clone_fence_device(child_id) {
                self.names.insert(id.to_owned(), child_id.to_owned());
            }
            return;
        };
        clone_table(&mut t, promotable, &meta);
        // Reasons call the clone as a whole by its id (`keystone-clone running`).
        if let Some(Value::Table(m)) = t.get_mut("meta") {
            m.insert("clone_name".into(), id.into());
        }
        let child_id = p.attribute("id").unwrap_or(id).to_owned();
        self.names.insert(id.to_owned(), child_id);
        self.push_resource(t);
    }

    /// A clone of a group: a group of clones, each member cloned as the clone says, whose
    /// copies go together on each node (Warden's cloned group, docs/config.md).
    fn cloned_group(
        &mut self,
        g: Node<'_, '_>,
        id: &str,
        meta: &[(String, String)],
        inherited: &[(String, String)],
    ) {
        let gid = g.attribute("id").unwrap_or("?").to_owned();
        let mut gmeta = inherited.to_vec();
        gmeta.extend(nvpairs(
            g,
            "meta_attributes",
            &format!("group {gid}"),
            &mut self.skip,
        ));
        let mut members = Vec::new();
        for p in elements(g).filter(|c| c.has_tag_name("primitive")) {
            let Some(mut t) = self.primitive(p, &gmeta) else {
                // A fence device, cloned: a member as a group of them is.
                let device = p.attribute("id").unwrap_or_default();
                if self.clone_fence_device(device) {
                    members.push(device.to_owned());
                }
                continue;
            };
            clone_table(&mut t, false, meta);
            members.push(t.get("id").and_then(Value::as_str).unwrap_or("").to_owned());
            self.push_resource(t);
        }
        // Named as the clone (reasons call it `glance-clone running`, as Pacemaker's); the
        // group's own id names it too.
        self.group_members.insert(id.to_owned(), members.clone());
        if !members.is_empty() {
            let mut t = Table::new();
            t.insert("id".into(), id.into());
            t.insert(
                "resources".into(),
                Value::Array(members.into_iter().map(Value::String).collect()),
            );
            self.groups.push(t);
        }
        self.group_ids.insert(id.to_owned());
        self.names.insert(gid, id.to_owned());
    }

    /// Sets meta attribute `key` of every resource to `value`, whatever it said (a cluster
    /// option that overrides them all).
    fn meta_of_all(&mut self, key: &str, value: Value) {
        for t in &mut self.resources {
            let meta = t
                .entry("meta")
                .or_insert_with(|| Value::Table(Table::new()));
            if let Value::Table(m) = meta {
                m.insert(key.into(), value.clone());
            }
        }
    }

    /// Makes the fence device `name` (just read from a stonith primitive) a cloned one: a
    /// copy checks it on every node. False when there is no such device.
    fn clone_fence_device(&mut self, name: &str) -> bool {
        match self
            .fence
            .iter_mut()
            .find(|d| d.get("name").and_then(Value::as_str) == Some(name))
        {
            Some(d) => {
                d.insert("clone".into(), true.into());
                true
            }
            None => false,
        }
    }

    /// The Warden resource a constraint's reference names, or why not.
    fn target(&self, what: &str, r: Option<&str>) -> Result<String, String> {
        let Some(r) = r else {
            return Err(format!("{what} (sets or patterns)"));
        };
        // A group carried over is named as it is (the configuration reader applies the
        // constraint to its members as Pacemaker does); one of fence devices only is not.
        if self.group_ids.contains(r) {
            return match self.group_members.get(r) {
                Some(m) if !m.is_empty() => Ok(r.to_owned()),
                _ => Err(format!("{what} names group {r}, which is not carried over")),
            };
        }

        self.names
            .get(r)
            .cloned()
            .ok_or_else(|| format!("{what} names {r}, which is not carried over"))
    }

    /// The Warden resources a reference names: those a tag or a template stands for, or the
    /// one resource it names.
    fn refs(&self, what: &str, r: Option<&str>) -> Result<Vec<String>, String> {
        match r.and_then(|r| self.tags.get(r)) {
            Some(members) => members.iter().map(|m| self.target(what, Some(m))).collect(),
            None => self.target(what, r).map(|t| vec![t]),
        }
    }

    /// Colocations by the promoted role of what is not promotable, as Pacemaker schedules
    /// them: a plain clone's copies have no role to choose (the role is not looked at), and a
    /// resource of one copy is never promoted (a colocation that wants it promoted does
    /// nothing; one that wants it away from its promoted role keeps away from where it runs).
    fn roles_of_colocations(&mut self) {
        let kind = |id: &str| {
            self.resources
                .iter()
                .find(|t| t.get("id").and_then(Value::as_str) == Some(id))
                .map(|t| {
                    (
                        t.get("clone").is_some_and(|v| v.as_bool() == Some(true)),
                        t.get("promotable")
                            .is_some_and(|v| v.as_bool() == Some(true)),
                    )
                })
                .unwrap_or((false, false))
        };
        let mut kept = Vec::new();
        let mut dropped = Vec::new();
        for mut t in std::mem::take(&mut self.colocations) {
            let positive = t.get("score").is_some_and(|s| {
                s.as_integer()
                    .map_or(s.as_str() != Some("-INFINITY"), |n| n > 0)
            });
            let mut useless = None;
            for (role_key, side) in [("role", "resource"), ("with_role", "with")] {
                let role = t.get(role_key).and_then(Value::as_str).unwrap_or_default();
                let name = t.get(side).and_then(Value::as_str).unwrap_or_default();
                if role == "unpromoted" && !kind(name).1 {
                    // Only a promotable clone's copies are ever unpromoted.
                    useless = Some("an unpromoted");
                }
                if role != "promoted" {
                    continue;
                }
                match kind(name) {
                    (_, true) => {}
                    (true, false) => {
                        t.remove(role_key);
                    }
                    (false, false) if positive => useless = Some("a promoted"),
                    (false, false) => {
                        t.remove(role_key);
                    }
                }
            }
            if let Some(role) = useless {
                dropped.push(format!(
                    "a colocation of {} with {} by {role} role it never has",
                    t.get("resource")
                        .and_then(Value::as_str)
                        .unwrap_or_default(),
                    t.get("with").and_then(Value::as_str).unwrap_or_default()
                ));
            } else {
                kept.push(t);
            }
        }
        self.colocations = kept;
        self.ignored.extend(dropped);
    }

    /// Drops `gone` from groups and constraints: a constraint naming one, a set's member, a
    /// group's member (and a group left empty).
    fn forget(&mut self, gone: &BTreeSet<String>) {
        let mut gone = gone.clone();
        for g in &mut self.groups {
            if let Some(Value::Array(list)) = g.get_mut("resources") {
                list.retain(|v| !v.as_str().is_some_and(|v| gone.contains(v)));
            }
        }
        // A group left empty goes, and what names it.
        self.groups.retain(|g| {
            let empty = g
                .get("resources")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty);
            if empty {
                if let Some(id) = g.get("id").and_then(Value::as_str) {
                    gone.insert(id.to_owned());
                }
            }
            !empty
        });
        let gone = &gone;
        let names = |t: &Table, keys: &[&str]| {
            keys.iter().any(|k| {
                t.get(*k)
                    .and_then(Value::as_str)
                    .is_some_and(|v| gone.contains(v))
            })
        };
        let prune = |t: &mut Table, key: &str| {
            if let Some(Value::Array(list)) = t.get_mut(key) {
                list.retain(|v| !v.as_str().is_some_and(|v| gone.contains(v)));
            }
        };
        self.locations.retain(|t| !names(t, &["resource"]));
        self.tickets.retain(|t| !names(t, &["resource"]));
        self.colocations
            .retain(|t| !names(t, &["resource", "with"]));
        self.orders.retain(|t| !names(t, &["first", "then"]));
        for t in self.colocations.iter_mut().chain(self.orders.iter_mut()) {
            if let Some(Value::Array(sets)) = t.get_mut("sets") {
                for set in sets.iter_mut() {
                    if let Value::Table(set) = set {
                        prune(set, "resources");
                    }
                }
                sets.retain(|s| {
                    s.get("resources")
                        .and_then(Value::as_array)
                        .is_some_and(|a| !a.is_empty())
                });
            }
        }
        let empty_sets = |t: &Table| {
            t.get("sets")
                .and_then(Value::as_array)
                .is_some_and(Vec::is_empty)
        };
        self.colocations.retain(|t| !empty_sets(t));
        self.orders.retain(|t| !empty_sets(t));
    }

    /// Whether a reference names a tag or a template.
    fn is_tag(&self, r: Option<&str>) -> bool {
        r.is_some_and(|r| self.tags.contains_key(r))
    }

    fn constraints(&mut self, list: Node<'_, '_>) {
        for c in elements(list) {
            let id = c.attribute("id").unwrap_or("?").to_owned();
            let tag = c.tag_name().name();
            let r = if child(c, "resource_set").is_some() {
                self.sets(c, tag, &id)
            } else if tag != "rsc_location"
                && ["rsc", "with-rsc", "first", "then"]
                    .iter()
                    .any(|a| self.is_tag(c.attribute(*a)))
            {
                self.tag_sets(c, tag, &id)
            } else {
                match tag {
                    "rsc_location" => self.location(c, &id),
                    "rsc_colocation" => self.colocation(c, &id),
                    "rsc_order" => self.order(c, &id),
                    "rsc_ticket" => self.ticket(c, &id),
                    other => Err(format!("{other} {id}")),
                }
            };
            if let Err(e) = r {
                self.skip.push(e);
            }
        }
    }

    /// A constraint with resource sets, as the plain constraints Pacemaker expands it into
    /// (`unpack_colocation_set`, `colocate_rsc_sets`, `unpack_order_set`, `order_rsc_sets`).
    fn sets(&mut self, c: Node<'_, '_>, tag: &str, id: &str) -> Result<(), String> {
        let what = format!("{tag} {id}");
        let mut sets = Vec::new();
        for set in elements(c).filter(|e| e.has_tag_name("resource_set")) {
            if set.attribute("id-ref").is_some() {
                return Err(format!("{what} (references)"));
            }
            let mut members = Vec::new();
            // A tag or a template among them stands for its resources.
            for r in elements(set).filter(|e| e.has_tag_name("resource_ref")) {
                members.extend(self.refs(&what, r.attribute("id"))?);
            }
            let role = set_role(&what, set.attribute("role"))?;
            let action = set.attribute("action").unwrap_or("start").to_owned();
            if action != "start" && action != "promote" {
                return Err(format!("{what} (set action {action})"));
            }
            sets.push(Set {
                id: set.attribute("id").unwrap_or("set").to_owned(),
                members,
                require_all: set.attribute("require-all").is_none_or(is_true),
                sequential: set.attribute("sequential").map(is_true),
                role,
                action,
                score: set.attribute("score").map(str::to_owned),
                kind: set.attribute("kind").map(str::to_ascii_lowercase),
            });
        }
        // Pacemaker's `ordering="listed"` colocation set (the default is `group`) colocates each
        // member with the next one rather than the one before: the same set, listed backwards.
        let listed = elements(c)
            .filter(|e| e.has_tag_name("resource_set"))
            .any(|e| {
                e.attribute("ordering")
                    .is_some_and(|o| !o.eq_ignore_ascii_case("group"))
            });
        if listed && tag == "rsc_colocation" {
            match sets.as_mut_slice() {
                [one] => one.members.reverse(),
                _ => return Err(format!("{what} (ordering=listed in one of several sets)")),
            }
        }
        self.expand_sets(c, tag, &what, sets)
    }

    /// A colocation, order or ticket that names a tag or a template, as the resource sets
    /// Pacemaker turns it into (`pcmk__tag_to_set`): the tag's resources one set, not
    /// sequential, the other side a set of its one resource; roles and actions go with
    /// their side.
    fn tag_sets(&mut self, c: Node<'_, '_>, tag: &str, id: &str) -> Result<(), String> {
        let what = format!("{tag} {id}");
        let sides: &[(&str, Option<&str>)] = match tag {
            "rsc_colocation" => &[
                ("rsc", Some("rsc-role")),
                ("with-rsc", Some("with-rsc-role")),
            ],
            "rsc_order" => &[
                ("first", Some("first-action")),
                ("then", Some("then-action")),
            ],
            "rsc_ticket" => &[("rsc", Some("rsc-role"))],
            _ => return Err(format!("{what} (tags)")),
        };
        if tag == "rsc_colocation" && sides.iter().all(|(a, _)| self.is_tag(c.attribute(*a))) {
            // Pacemaker ignores it ("two templates or tags cannot be colocated").
            self.ignored
                .push(format!("{what} (a colocation of two tags or templates)"));
            return Ok(());
        }
        let mut sets = Vec::new();
        for &(attr, extra) in sides {
            let r = c.attribute(attr);
            let extra = extra.and_then(|e| c.attribute(e));
            let (role, action) = if tag == "rsc_order" {
                (None, extra.unwrap_or("start").to_owned())
            } else {
                (set_role(&what, extra)?, "start".to_owned())
            };
            if action != "start" && action != "promote" {
                return Err(format!("{what} (set action {action})"));
            }
            sets.push(Set {
                id: r.unwrap_or("set").to_owned(),
                require_all: true,
                members: self.refs(&what, r)?,
                sequential: self.is_tag(r).then_some(false),
                role,
                action,
                score: None,
                kind: None,
            });
        }
        self.expand_sets(c, tag, &what, sets)
    }

    /// Resource sets as the plain constraints Pacemaker expands them into.
    fn expand_sets(
        &mut self,
        c: Node<'_, '_>,
        tag: &str,
        what: &str,
        sets: Vec<Set>,
    ) -> Result<(), String> {
        match tag {
            "rsc_location" => {
                let mut out = Vec::new();
                for set in &sets {
                    for m in &set.members {
                        out.extend(self.location_of(c, what, m, set.role, set.score.as_deref())?);
                    }
                }
                self.locations.extend(out);
                Ok(())
            }
            "rsc_ticket" => {
                let ticket = c
                    .attribute("ticket")
                    .ok_or_else(|| format!("{what} (no ticket)"))?;
                let policy = loss_policy(c);
                for set in &sets {
                    for m in &set.members {
                        self.tickets
                            .push(ticket_table(ticket, m, set.role.is_some(), policy));
                    }
                }
                Ok(())
            }
            // Written as sets: the configuration reader expands them as Pacemaker does.
            "rsc_colocation" => {
                let mut t = Table::new();
                t.insert(
                    "score".into(),
                    score_value(c.attribute("score").unwrap_or("0")),
                );
                let list = sets
                    .iter()
                    .map(|set| {
                        let mut s = set_table(set);
                        if let Some(r) = set.role {
                            s.insert("role".into(), r.into());
                        }
                        if let Some(score) = &set.score {
                            s.insert("score".into(), score_value(score));
                        }
                        Value::Table(s)
                    })
                    .collect();
                t.insert("sets".into(), Value::Array(list));
                self.colocations.push(t);
                Ok(())
            }
            "rsc_order" => {
                let kind = order_kind(c.attribute("kind"), c.attribute("score"));
                let mut t = Table::new();
                t.insert("id".into(), c.attribute("id").unwrap_or("order").into());
                t.insert("kind".into(), kind.into());
                if let Some(s) = self.symmetrical(c, kind) {
                    t.insert("symmetric".into(), s.into());
                }
                let list = sets
                    .iter()
                    .map(|set| {
                        let mut s = set_table(set);
                        if set.action == "promote" {
                            s.insert("action".into(), "promote".into());
                        }
                        if !set.require_all {
                            s.insert("require_all".into(), false.into());
                        }
                        if let Some(k) = &set.kind {
                            s.insert("kind".into(), order_kind(Some(k), None).into());
                        }
                        Value::Table(s)
                    })
                    .collect();
                t.insert("sets".into(), Value::Array(list));
                self.orders.push(t);
                Ok(())
            }
            _ => Err(format!("{what} (resource sets)")),
        }
    }

    fn location(&mut self, c: Node<'_, '_>, id: &str) -> Result<(), String> {
        let what = format!("rsc_location {id}");
        // On a node, carried over; rules pick nodes Warden's discovery does not follow.
        let discovery = c.attribute("resource-discovery").filter(|d| *d != "always");
        if discovery.is_some() && child(c, "rule").is_some() {
            return Err(format!("{what} (resource-discovery with rules)"));
        }
        if let Some(d) = discovery.filter(|d| !matches!(*d, "never" | "exclusive")) {
            return Err(format!("{what} (resource-discovery={d})"));
        }
        if c.attribute("rsc-pattern").is_some() {
            return Err(format!("{what} (rsc-pattern)"));
        }
        let mut out = Vec::new();
        for resource in self.refs(&what, c.attribute("rsc"))? {
            out.extend(self.location_of(c, &what, &resource, None, None)?);
        }
        self.locations.extend(out);
        Ok(())
    }

    /// The locations a `rsc_location` gives one resource, with the role and score of its
    /// set when it has them.
    fn location_of(
        &mut self,
        c: Node<'_, '_>,
        what: &str,
        resource: &str,
        role: Option<&'static str>,
        score: Option<&str>,
    ) -> Result<Vec<Table>, String> {
        if child(c, "rule").is_some() {
            // Each rule is a location of its own, as Pacemaker unpacks them.
            let mut out = Vec::new();
            for rule in elements(c).filter(|e| e.has_tag_name("rule")) {
                let text = rule_of(rule, &self.node_ids).map_err(|e| format!("{what}: {e}"))?;
                let mut t = Table::new();
                t.insert("resource".into(), resource.into());
                t.insert("rule".into(), text.to_string().into());
                match (
                    score,
                    rule.attribute("score"),
                    rule.attribute("score-attribute"),
                ) {
                    (Some(s), _, _) | (None, Some(s), _) => {
                        t.insert("score".into(), score_value(s));
                    }
                    (None, None, Some(a)) => {
                        t.insert("score_attribute".into(), a.into());
                    }
                    (None, None, None) => {
                        t.insert("score".into(), Value::Integer(0));
                    }
                }
                let role = role.or(rule
                    .attribute("role")
                    .or(c.attribute("role"))
                    .and_then(role_word));
                match role {
                    Some("promoted") => {
                        t.insert("role".into(), "promoted".into());
                    }
                    Some("started" | "unpromoted") | None => {}
                    Some(r) => return Err(format!("{what} (role {r})")),
                }
                out.push(t);
            }
            return Ok(out);
        }
        let node = c
            .attribute("node")
            .ok_or_else(|| format!("{what} (no node)"))?;
        if self.skipped_nodes.contains(node) {
            return Err(format!(
                "{what} names node {node}, which is not carried over"
            ));
        }
        if !self.nodes.contains(node) {
            // Pacemaker ignores a location on a node it does not know.
            let note = format!("{what}: node {node} is not in the CIB");
            if !self.ignored.contains(&note) {
                self.ignored.push(note);
            }
            return Ok(Vec::new());
        }
        let score = score
            .or(c.attribute("score"))
            .ok_or_else(|| format!("{what} (score-attribute)"))?;
        let mut t = Table::new();
        t.insert("resource".into(), resource.into());
        t.insert("node".into(), node.into());
        t.insert("score".into(), score_value(score));
        if let Some(d) = c.attribute("resource-discovery").filter(|d| *d != "always") {
            t.insert("resource_discovery".into(), d.into());
        }
        if let Some(r) = role.or(c.attribute("role").and_then(role_word)) {
            if r == "promoted" {
                t.insert("role".into(), r.into());
            } else if r != "started" {
                return Err(format!("{what} (role {r})"));
            }
        }
        Ok(vec![t])
    }

    fn colocation(&mut self, c: Node<'_, '_>, id: &str) -> Result<(), String> {
        let what = format!("rsc_colocation {id}");
        if c.attribute("node-attribute").is_some_and(|a| a != "#uname") {
            return Err(format!("{what} (node-attribute)"));
        }
        let resource = self.target(&what, c.attribute("rsc"))?;
        let with = self.target(&what, c.attribute("with-rsc"))?;
        let mut t = Table::new();
        t.insert("resource".into(), resource.into());
        t.insert("with".into(), with.into());
        t.insert(
            "score".into(),
            score_value(c.attribute("score").unwrap_or("0")),
        );
        for (attr, key) in [("rsc-role", "role"), ("with-rsc-role", "with_role")] {
            match c.attribute(attr).and_then(role_word) {
                Some(r @ "promoted") => {
                    t.insert(key.into(), r.into());
                }
                Some(r @ "unpromoted") => {
                    t.insert(key.into(), r.into());
                }
                Some("started") | None => {}
                Some(r) => return Err(format!("{what} ({attr} {r})")),
            }
        }
        self.colocations.push(t);
        Ok(())
    }

    /// A ticket constraint; one on a group binds each member, as Pacemaker applies it to the
    /// group's children.
    fn ticket(&mut self, c: Node<'_, '_>, id: &str) -> Result<(), String> {
        let what = format!("rsc_ticket {id}");
        let ticket = c
            .attribute("ticket")
            .ok_or_else(|| format!("{what} (no ticket)"))?;
        let resource = self.target(&what, c.attribute("rsc"))?;
        let promoted = match c.attribute("rsc-role").and_then(role_word) {
            Some("promoted") => true,
            Some("started") | None => false,
            Some(r) => return Err(format!("{what} (rsc-role {r})")),
        };
        self.tickets
            .push(ticket_table(ticket, &resource, promoted, loss_policy(c)));
        Ok(())
    }

    /// An order's `symmetrical`, as Pacemaker reads it: a Serialize order is never symmetric
    /// (`symmetrical=true` there is a configuration error it ignores).
    fn symmetrical(&mut self, c: Node<'_, '_>, kind: &str) -> Option<bool> {
        let s = is_true(c.attribute("symmetrical")?);
        if kind == "serialize" {
            if s {
                self.ignored.push(format!(
                    "{}: symmetrical=true on a Serialize order",
                    c.attribute("id").unwrap_or("rsc_order")
                ));
            }
            return None;
        }
        Some(s)
    }

    fn order(&mut self, c: Node<'_, '_>, id: &str) -> Result<(), String> {
        let what = format!("rsc_order {id}");
        let first = self.target(&what, c.attribute("first"))?;
        let then = self.target(&what, c.attribute("then"))?;
        let kind = order_kind(c.attribute("kind"), c.attribute("score"));
        let mut t = Table::new();
        t.insert("id".into(), id.into());
        if c.attribute("require-all").is_some_and(|v| !is_true(v)) {
            t.insert("require_all".into(), false.into());
        }
        t.insert("first".into(), first.into());
        t.insert("then".into(), then.into());
        t.insert("kind".into(), kind.into());
        if let Some(s) = self.symmetrical(c, kind) {
            t.insert("symmetric".into(), s.into());
        }
        for (attr, key) in [
            ("first-action", "first_action"),
            ("then-action", "then_action"),
        ] {
            match c.attribute(attr) {
                None | Some("start") => {}
                Some("promote") => {
                    t.insert(key.into(), "promote".into());
                }
                Some(a) => return Err(format!("{what} ({attr} {a})")),
            }
        }
        self.orders.push(t);
        Ok(())
    }
}

/// Makes a primitive's table a clone (promotable or not) with the clone's meta attributes.
/// How the status section is read: the resources' definitions as Pacemaker hashes them (to
/// tell from the digests the status recorded what was started with another definition), the
/// time it is read at, and which fail counts its version writes.
struct Reading<'d> {
    of: &'d BTreeMap<String, digest::Definition>,
    now: Time,
    /// Fail counts per resource (`fail-count-RSC`), before feature set 3.0.13; else per
    /// operation.
    legacy_counts: bool,
    /// `startup-fencing`: a node never seen may run anything, so it is unclean (unless false).
    startup_fencing: bool,
}

impl Reading<'_> {
    /// How a running resource's history (in call order) compares with its definition now:
    /// the operations since its last start (or what implies one), as Pacemaker's
    /// `process_rsc_history` checks them.
    fn change(&self, id: &str, ops: &[(i64, Node<'_, '_>)]) -> digest::Change {
        let Some(def) = self.of.get(id) else {
            return digest::Change::None;
        };
        // Pacemaker's `calculate_active_ops`.
        let (mut start, mut stop) = (None, None);
        let (mut implied_monitor, mut implied_promote) = (None, None);
        for (i, (_, o)) in ops.iter().enumerate() {
            match o.attribute("operation").unwrap_or("") {
                "stop" if o.attribute("op-status") == Some("0") => stop = Some(i),
                "start" | "migrate_from" => start = Some(i),
                "monitor"
                    if implied_monitor <= stop
                        && matches!(o.attribute("rc-code"), Some("0" | "8")) =>
                {
                    implied_monitor = Some(i);
                }
                "promote" | "demote" => implied_promote = Some(i),
                _ => {}
            }
        }
        let start = start.or(implied_promote).or(implied_monitor);
        if start < stop {
            return digest::Change::None;
        }
        let from = start.unwrap_or(0);
        ops[from..]
            .iter()
            .filter_map(|(_, o)| {
                let task = o.attribute("operation")?;
                let interval_ms = o
                    .attribute("interval")
                    .and_then(|i| i.parse::<u64>().ok())
                    .unwrap_or(0);
                let checked = interval_ms > 0
                    || matches!(task, "monitor" | "start" | "promote" | "migrate_from");
                checked.then(|| {
                    def.compare(&digest::Recorded {
                        task,
                        interval_ms,
                        digest: o.attribute("op-digest"),
                        restart_digest: o.attribute("op-restart-digest"),
                        force_restart: o.attribute("op-force-restart"),
                        secure_digest: o.attribute("op-secure-digest"),
                        secure_params: o.attribute("op-secure-params"),
                        feature_set: o.attribute("crm_feature_set"),
                    })
                })
            })
            .max()
            .unwrap_or(digest::Change::None)
    }

    /// Whether the history `lr` of `id` was written by another agent than the one its
    /// definition names now (Pacemaker's `pcmk__rsc_agent_changed`: class, provider and type
    /// compared as written).
    fn agent_changed(&self, id: &str, lr: Node<'_, '_>) -> bool {
        self.of.get(id).is_some_and(|def| {
            ["class", "provider", "type"]
                .iter()
                .zip(&def.agent)
                .any(|(k, now)| lr.attribute(*k) != now.as_deref())
        })
    }

    /// Records in the state that `id` runs on `node` with another definition: a restart, or
    /// a reload (never of a failed copy, which is recovered); `agent`: another agent, which
    /// is a restart.
    fn mark(
        &self,
        config: &warden_engine::Config,
        state: &mut State,
        id: &str,
        node: &str,
        change: digest::Change,
        agent: bool,
    ) {
        let Some(spec) = config.resource(id) else {
            return;
        };
        let now = warden_engine::Digests::of(spec);
        let Some(on) = state
            .resources
            .get_mut(id)
            .and_then(|rs| rs.nodes.get_mut(node))
            .filter(|on| on.role.is_active())
        else {
            return;
        };
        if agent {
            on.agent_digest = now.agent.map(|d| !d);
        }
        match change {
            // Digests other than the configuration's (a probe that found it running
            // recorded none).
            _ if agent => {
                on.digest = Some(!now.all);
                on.restart_digest = Some(!now.restart);
            }
            digest::Change::Restart => {
                on.digest = Some(!now.all);
                on.restart_digest = Some(!now.restart);
            }
            digest::Change::Reload if !on.failed => {
                on.digest = Some(!now.all);
                on.restart_digest = Some(now.restart);
            }
            _ => {}
        }
    }
}

/// A failure Pacemaker no longer counts (its `check_operation_expiry`): the resource has a
/// failure timeout, the failure is older than it, and its fail count (summed over its
/// operations; `legacy_counts`: the old single count per resource) is none or no younger. Pacemaker ignores it: a one-shot operation's
/// failure is as if it had not happened, a recurring monitor's is rescheduled.
/// The resource a history (or fail count) named `full` belongs to: an instance of a clone that
/// may run several copies on a node keeps its number (`ip:1` is a resource of its own); any
/// other clone's copy is its clone's (`web:1` is `web`).
fn history_id<'a>(config: &warden_engine::Config, full: &'a str) -> &'a str {
    if config.resource(full).is_some_and(|r| r.instance.is_some()) {
        full
    } else {
        full.split(':').next().unwrap_or(full)
    }
}

/// One `fail-count-RSC#OP_INTERVAL` node attribute (or, when `legacy`, the old
/// `fail-count-RSC`, taken as the start's), with its `last-failure-...`: Pacemaker reads only
/// the kind the CIB's feature set writes.
struct FailAttribute<'a> {
    /// The resource (a clone instance's number dropped).
    resource: &'a str,
    op: OpKey,
    count: u32,
    last: Option<Time>,
}

fn fail_attributes(
    attrs: &BTreeMap<String, String>,
    legacy: bool,
) -> impl Iterator<Item = FailAttribute<'_>> {
    attrs.iter().filter_map(move |(k, v)| {
        let rest = k.strip_prefix("fail-count-")?;
        if rest.contains('#') == legacy {
            return None;
        }
        let (rsc, op) = match rest.split_once('#') {
            Some((rsc, op)) => {
                let (name, interval) = op.rsplit_once('_')?;
                let op = OpKey {
                    name: name.parse::<OpName>().ok()?,
                    interval_ms: interval.parse::<u64>().ok()?,
                };
                (rsc, op)
            }
            None => (rest, OpKey::new(OpName::Start, std::time::Duration::ZERO)),
        };
        Some(FailAttribute {
            resource: rsc,
            op,
            count: match v.to_ascii_lowercase().as_str() {
                "infinity" | "+infinity" => 1_000_000,
                n => n.parse::<u32>().unwrap_or(0),
            },
            last: attrs
                .get(&format!("last-failure-{rest}"))
                .and_then(|t| t.parse::<u64>().ok())
                .map(|s| Time::from_millis(s * 1000)),
        })
    })
}

fn expired_failure(
    config: &warden_engine::Config,
    id: &str,
    o: Node<'_, '_>,
    attrs: &BTreeMap<String, String>,
    legacy_counts: bool,
    now: Time,
) -> bool {
    let Some(timeout) = config.resource(id).and_then(|s| s.meta.failure_timeout) else {
        return false;
    };
    let Some(at) = o
        .attribute("last-rc-change")
        .and_then(|v| v.parse::<u64>().ok())
        .map(|s| Time::from_millis(s * 1000))
    else {
        return false;
    };
    let status = o.attribute("op-status").unwrap_or("0");
    // Not expected: the result the transition key asked for (its third field) is not the
    // one recorded; an agent not installed never expires.
    let expected = o
        .attribute("transition-key")
        .and_then(|k| k.split(':').nth(2))
        .and_then(|rc| rc.parse::<i32>().ok());
    let code = o.attribute("rc-code").and_then(|v| v.parse::<i32>().ok());
    let failed = status != "0" || expected.is_some_and(|e| Some(e) != code);
    if !failed || status == "7" || now < at + timeout {
        return false;
    }
    let task = o.attribute("operation").unwrap_or("");
    let interval = o.attribute("interval").unwrap_or("0");
    // A probe's finding (running, not running, promoted, degraded) never expires.
    if task == "monitor"
        && interval == "0"
        && code.is_some_and(|c| matches!(c, 0 | 7 | 8 | 190 | 191))
    {
        return false;
    }
    let mine: Vec<FailAttribute<'_>> = fail_attributes(attrs, legacy_counts)
        .filter(|f| history_id(config, f.resource) == id)
        .collect();
    let count: u64 = mine.iter().map(|f| u64::from(f.count)).sum();
    let last = mine.iter().filter_map(|f| f.last).max();
    count == 0 || last.is_some_and(|l| now >= l + timeout)
}

/// The parameters each resource's agent reloads, as the status records them: those not
/// named in `op-force-restart` of an operation with a restart digest.
fn reloadable_of(
    status: Node<'_, '_>,
    definitions: &BTreeMap<String, digest::Definition>,
) -> std::collections::HashMap<String, Vec<String>> {
    let mut out = std::collections::HashMap::new();
    for o in status
        .descendants()
        .filter(|n| n.has_tag_name("lrm_rsc_op") && n.attribute("op-restart-digest").is_some())
    {
        let Some(id) = o
            .parent()
            .and_then(|p| p.attribute("id"))
            .map(|id| id.split(':').next().unwrap_or(id))
        else {
            continue;
        };
        let Some(def) = definitions.get(id) else {
            continue;
        };
        let fixed = o.attribute("op-force-restart").unwrap_or("");
        let reload: Vec<String> = def
            .params
            .keys()
            .filter(|k| !fixed.split_ascii_whitespace().any(|f| f == k.as_str()))
            .cloned()
            .collect();
        out.insert(id.to_owned(), reload);
    }
    out
}

/// A primitive's definition as Pacemaker hashes it (`sources`: its template, then itself):
/// its parameters, and its one-shot operations' own (the first of one name, its own before
/// its template's).
fn definition(
    sources: &[Node<'_, '_>],
    param_sources: &[Node<'_, '_>],
    stonith: bool,
) -> digest::Definition {
    let attr = |k: &str| {
        sources
            .iter()
            .rev()
            .find_map(|s| s.attribute(k))
            .map(str::to_owned)
    };
    let mut d = digest::Definition {
        stonith,
        agent: [attr("class"), attr("provider"), attr("type")],
        ..Default::default()
    };
    d.params = nvpairs_of(param_sources, "instance_attributes", "", &mut Vec::new())
        .into_iter()
        .collect();
    for op in sources
        .iter()
        .rev()
        .filter_map(|s| child(*s, "operations"))
        .flat_map(elements)
        .filter(|c| c.has_tag_name("op"))
    {
        let Some(name) = op.attribute("name") else {
            continue;
        };
        if millis(op.attribute("interval").unwrap_or("0")) != Some(0) {
            continue;
        }
        let own = nvpairs(op, "instance_attributes", "", &mut Vec::new())
            .into_iter()
            .collect();
        d.ops.entry(name.to_owned()).or_insert(own);
    }
    d
}

fn clone_table(t: &mut Table, promotable: bool, meta: &[(String, String)]) {
    let get = |k: &str| {
        meta.iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    };
    if promotable {
        t.insert("promotable".into(), true.into());
    } else {
        t.insert("clone".into(), true.into());
    }
    let mut m = t
        .remove("meta")
        .and_then(|v| v.as_table().cloned())
        .unwrap_or_default();
    let counts: &[(&str, &str)] = if promotable {
        &[
            ("clone-max", "clone_max"),
            ("clone-min", "clone_min"),
            ("promoted-max", "promoted_max"),
            ("master-max", "promoted_max"),
        ]
    } else {
        &[
            ("clone-max", "clone_max"),
            ("clone-min", "clone_min"),
            ("clone-node-max", "clone_node_max"),
        ]
    };
    for &(k, key) in counts {
        if let Some(n) = get(k).and_then(|v| v.parse::<i64>().ok()) {
            m.insert(key.into(), n.into());
        }
    }
    for (k, key) in [
        ("notify", "notify"),
        ("ordered", "ordered"),
        ("interleave", "interleave"),
        ("globally-unique", "globally_unique"),
    ] {
        if get(k).is_some_and(is_true) {
            m.insert(key.into(), true.into());
        }
    }
    t.insert("meta".into(), Value::Table(m));
}

/// What every set written to the configuration has: its id, resources and `sequential` as
/// written.
fn set_table(set: &Set) -> Table {
    let mut s = Table::new();
    s.insert("id".into(), set.id.clone().into());
    s.insert(
        "resources".into(),
        Value::Array(
            set.members
                .iter()
                .map(|m| Value::String(m.clone()))
                .collect(),
        ),
    );
    if let Some(q) = set.sequential {
        s.insert("sequential".into(), q.into());
    }
    s
}

/// The role of a resource set (or of the side of a constraint made one): promoted, or none
/// for started.
fn set_role(what: &str, role: Option<&str>) -> Result<Option<&'static str>, String> {
    match role.and_then(role_word) {
        Some("promoted") => Ok(Some("promoted")),
        Some("started") | None => Ok(None),
        Some(r) => Err(format!("{what} (set role {r})")),
    }
}

/// The resources the status' histories name that the configuration does not have (nor names
/// under another id), as orphans: disabled, stopped wherever they run.
fn orphans_of(
    config: &warden_engine::Config,
    status: Node<'_, '_>,
    names: &BTreeMap<String, String>,
) -> Vec<warden_engine::ResourceSpec> {
    use warden_engine::{Agent, ResourceSpec, TargetRole};
    let mut out: Vec<ResourceSpec> = Vec::new();
    let lrm = elements(status)
        .filter(|c| c.has_tag_name("node_state"))
        .filter_map(|ns| child(ns, "lrm").and_then(|l| child(l, "lrm_resources")))
        .flat_map(|l| elements(l).filter(|c| c.has_tag_name("lrm_resource")));
    for lr in lrm {
        let Some(id) = lr.attribute("id") else {
            continue;
        };
        let id = history_id(config, id);
        if config.resource(id).is_some()
            || names.contains_key(id)
            || out.iter().any(|o| o.id == id)
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            continue;
        }
        let kind = lr.attribute("type").unwrap_or("");
        let agent = match lr.attribute("class") {
            Some("ocf") => Agent::Ocf {
                provider: lr.attribute("provider").unwrap_or("heartbeat").to_owned(),
                kind: kind.to_owned(),
            },
            Some("stonith") => Agent::Fence(Box::new(warden_engine::FenceDevice::gone(id))),
            Some("lsb" | "service" | "systemd") => Agent::Systemd {
                unit: format!("{}.service", kind.rsplit('/').next().unwrap_or(kind)),
            },
            _ => continue,
        };
        let mut spec = ResourceSpec::new(id, agent);
        spec.meta.orphan = true;
        spec.meta.target_role = TargetRole::Stopped;
        out.push(spec);
    }
    out
}

/// One `lrm_resource`'s operations, in Pacemaker's order (see [`history_key`]).
type History<'a, 'i> = Vec<(i64, Node<'a, 'i>)>;

/// Where an operation goes in its history, as Pacemaker's `sort_op_by_callid` orders them:
/// by call id (`2 * call + 1`); an operation in flight with a call id just before the
/// completed one of that id (`2 * call`); one in flight without a call id (-1) before the
/// first operation of a later transition of the same cluster (its key's transition number and
/// UUID), else after everything (it is the newest).
fn history_key(
    call: i64,
    pending: bool,
    o: Node<'_, '_>,
    all: &[(i64, bool, Node<'_, '_>)],
) -> i64 {
    if call >= 0 {
        return call.saturating_mul(2).saturating_add(i64::from(!pending));
    }
    if !pending {
        return -1;
    }
    let transition = |n: Node<'_, '_>| -> Option<(i64, String)> {
        let key = n.attribute("transition-key")?;
        let mut f = key.split(':');
        let _action = f.next()?;
        let t = f.next()?.parse::<i64>().ok()?;
        let _rc = f.next()?;
        Some((t, f.next()?.to_owned()))
    };
    let Some((t, uuid)) = transition(o) else {
        return i64::MAX;
    };
    all.iter()
        .filter(|(c, p, _)| *c >= 0 && !*p)
        .filter(|(_, _, x)| transition(*x).is_some_and(|(t2, u2)| u2 == uuid && t2 > t))
        .map(|(c, _, _)| c.saturating_mul(2))
        .min()
        .unwrap_or(i64::MAX)
}

/// Whether a [`history_key`] is that of an operation in flight.
fn pending_key(key: i64) -> bool {
    key == i64::MAX || (key >= 0 && key % 2 == 0)
}

/// An order's kind as Pacemaker reads it: its `kind`, else `optional` for a score of 0, else
/// `mandatory`; a kind Pacemaker does not know is reset to Mandatory.
fn order_kind(kind: Option<&str>, score: Option<&str>) -> &'static str {
    match (kind.map(str::to_ascii_lowercase).as_deref(), score) {
        (Some("optional"), _) => "optional",
        (Some("serialize"), _) => "serialize",
        (Some(_), _) => "mandatory",
        (None, Some(s)) if s.trim() == "0" => "optional",
        _ => "mandatory",
    }
}

/// A ticket constraint's `loss-policy` in Warden's words (None: Pacemaker's default by role).
fn loss_policy(c: Node<'_, '_>) -> Option<&'static str> {
    match c.attribute("loss-policy")?.to_ascii_lowercase().as_str() {
        "stop" => Some("stop"),
        "demote" => Some("demote"),
        "freeze" => Some("freeze"),
        "fence" => Some("fence"),
        _ => None,
    }
}

/// A `[[ticket]]` table.
fn ticket_table(ticket: &str, resource: &str, promoted: bool, policy: Option<&str>) -> Table {
    let mut t = Table::new();
    t.insert("ticket".into(), ticket.into());
    t.insert("resource".into(), resource.into());
    if promoted {
        t.insert("role".into(), "promoted".into());
    }
    if let Some(p) = policy {
        t.insert("loss_policy".into(), p.into());
    }
    t
}

/// Whether an operation history (by call id) left its resource active, failed or not: its
/// last completed operation is anything but a successful stop, a monitor that found it not
/// running, or a probe that found it cannot run here.
fn left_running(ops: &[(i64, Node<'_, '_>)]) -> bool {
    ops.iter()
        .rev()
        .find(|(key, o)| {
            *key >= 0
                && !pending_key(*key)
                && !matches!(o.attribute("op-status"), Some("-1" | "1"))
                && o.attribute("operation") != Some("notify")
        })
        .is_some_and(|(_, o)| {
            // Active, failed or not: only a stop that succeeded, a monitor that found it not
            // running (a probe, or one that expected that: a recurring monitor expecting it
            // running failed, and it counts as active until stopped, as Pacemaker reads it),
            // or a probe that found it cannot run here leave it stopped.
            let rc = o.attribute("rc-code").unwrap_or("1");
            let probe = o.attribute("interval").is_none_or(|i| i == "0");
            let expected = o
                .attribute("transition-key")
                .and_then(|k| k.split(':').nth(2));
            match o.attribute("operation").unwrap_or("") {
                "stop" => rc != "0",
                "monitor" if rc == "7" => !probe && expected.is_some_and(|e| e != "7"),
                "monitor" => !(probe && matches!(rc, "2" | "5" | "6")),
                _ => true,
            }
        })
}

/// A CIB `<rule>` as Warden's rule; what Warden's rules lack is named. `#id` compares node
/// ids, which Warden does not have: an equality on one is an equality on the node's name.
fn rule_of(
    rule: Node<'_, '_>,
    ids: &BTreeMap<String, String>,
) -> Result<warden_engine::Rule, String> {
    use warden_engine::{AttrOp, DateExpr, Rule, ValueKind};
    if rule.attribute("id-ref").is_some() {
        return Err("a rule by reference (references)".into());
    }
    let mut parts = Vec::new();
    for e in elements(rule) {
        let part = match e.tag_name().name() {
            "rule" => rule_of(e, ids)?,
            "expression" => {
                if e.attribute("value-source").is_some_and(|v| v != "literal") {
                    return Err("an expression with a value-source (rules)".into());
                }
                let attribute = e
                    .attribute("attribute")
                    .ok_or("an expression without an attribute (rules)")?
                    .to_owned();
                let op = e.attribute("operation").unwrap_or("");
                let op = match op.to_ascii_lowercase().as_str() {
                    "defined" => AttrOp::Defined,
                    "not_defined" => AttrOp::NotDefined,
                    o => AttrOp::comparison(o)
                        .ok_or_else(|| format!("an expression with operation {op:?} (rules)"))?,
                };
                let kind = match e.attribute("type") {
                    None => None,
                    Some(t) => Some(
                        ValueKind::parse(t)
                            .ok_or_else(|| format!("an expression of type {t:?} (rules)"))?,
                    ),
                };
                let mut value = match op {
                    AttrOp::Defined | AttrOp::NotDefined => None,
                    _ => Some(e.attribute("value").unwrap_or("").to_owned()),
                };
                let mut attribute = attribute;
                if attribute == "#id" && matches!(op, AttrOp::Eq | AttrOp::Ne) {
                    if let Some(name) = value.as_ref().and_then(|v| ids.get(v)) {
                        attribute = "#uname".to_owned();
                        value = Some(name.clone());
                    }
                }
                Rule::Attr {
                    attribute,
                    op,
                    value,
                    kind,
                }
            }
            "date_expression" => {
                let date = |k: &str| -> Result<Option<Time>, String> {
                    match e.attribute(k) {
                        None => Ok(None),
                        Some(v) => warden_engine::parse_date(v)
                            .map(Some)
                            .ok_or_else(|| format!("a date {v:?} (rules)")),
                    }
                };
                let (start, end) = (date("start")?, date("end")?);
                if child(e, "duration").is_some() {
                    return Err("a date expression with a duration (rules)".into());
                }
                match e.attribute("operation").unwrap_or("in_range") {
                    "gt" => Rule::Date(DateExpr::Gt(start.ok_or("date gt without a start")?)),
                    "lt" => Rule::Date(DateExpr::Lt(end.ok_or("date lt without an end")?)),
                    "in_range" => Rule::Date(DateExpr::InRange { start, end }),
                    "date_spec" => {
                        let spec = child(e, "date_spec").ok_or("date_spec without a spec")?;
                        let mut text = String::from("date-spec");
                        for a in spec.attributes() {
                            if a.name() == "id" {
                                continue;
                            }
                            let _ = write!(text, " {}={}", a.name(), a.value());
                        }
                        Rule::parse(&text).map_err(|e| format!("{e} (rules)"))?
                    }
                    o => return Err(format!("a date expression with operation {o:?} (rules)")),
                }
            }
            other => return Err(format!("a {other} in a rule (rules)")),
        };
        parts.push(part);
    }
    if parts.is_empty() {
        return Err("a rule without expressions (rules)".into());
    }
    let or = rule
        .attribute("boolean-op")
        .is_some_and(|b| b.eq_ignore_ascii_case("or"));
    Ok(match (parts.len(), or) {
        (1, _) => parts.remove(0),
        (_, true) => Rule::Any(parts),
        (_, false) => Rule::All(parts),
    })
}

/// Reads a CIB: the configuration as Warden's TOML, the state of its status section.
pub fn import(xml: &str) -> anyhow::Result<Imported> {
    let doc = Document::parse(xml).context("not XML")?;
    let cib = doc.root_element();
    if !cib.has_tag_name("cib") {
        bail!("not a CIB: the root element is <{}>", cib.tag_name().name());
    }
    let conf = child(cib, "configuration").context("the CIB has no <configuration>")?;
    let mut r = Reader {
        skip: Vec::new(),
        ignored: Vec::new(),
        resources: Vec::new(),
        groups: Vec::new(),
        fence: Vec::new(),
        written: Vec::new(),
        node_ids: BTreeMap::new(),
        locations: Vec::new(),
        colocations: Vec::new(),
        orders: Vec::new(),
        names: BTreeMap::new(),
        group_ids: BTreeSet::new(),
        group_members: BTreeMap::new(),
        tickets: Vec::new(),
        stonith: BTreeSet::new(),
        nodes: BTreeSet::new(),
        tags: BTreeMap::new(),
        stonith_enabled: true,
        fence_off: false,
        startup_fencing: true,
        stop_all: false,
        maintenance_mode: false,
        skipped_nodes: BTreeSet::new(),
        restart_type: Vec::new(),
        definitions: BTreeMap::new(),
        rsc_default_blocks: Vec::new(),
        op_default_blocks: Vec::new(),
    };
    // Cluster options.
    let mut cluster = Table::new();
    cluster.insert("name".into(), "pacemaker".into());
    cluster.insert("data_dir".into(), "/var/lib/warden".into());
    let mut stonith_enabled = true;
    let mut stop_orphans = true;
    if let Some(cc) = child(conf, "crm_config") {
        for (k, v) in nvpairs(cc, "cluster_property_set", "crm_config", &mut r.skip) {
            match k.as_str() {
                "cluster-name" => {
                    cluster.insert("name".into(), v.into());
                }
                "symmetric-cluster" => {
                    cluster.insert("symmetric".into(), is_true(&v).into());
                }
                "no-quorum-policy" => match v.as_str() {
                    "stop" | "freeze" | "ignore" | "demote" => {
                        cluster.insert("no_quorum_policy".into(), v.into());
                    }
                    _ => r.skip.push(format!("crm_config no-quorum-policy={v}")),
                },
                "start-failure-is-fatal" => {
                    cluster.insert("start_failure_is_fatal".into(), is_true(&v).into());
                }
                "stonith-enabled" => stonith_enabled = is_true(&v),
                "stop-orphan-resources" => stop_orphans = is_true(&v),
                "stop-all-resources" => r.stop_all = is_true(&v),
                "maintenance-mode" => r.maintenance_mode = is_true(&v),
                "node-health-strategy" => match v.to_ascii_lowercase().as_str() {
                    s @ ("none" | "migrate-on-red" | "only-green" | "progressive" | "custom") => {
                        cluster.insert("node_health_strategy".into(), s.replace('-', "_").into());
                    }
                    _ => r.skip.push(format!("crm_config node-health-strategy={v}")),
                },
                "node-health-base" | "node-health-green" | "node-health-yellow"
                | "node-health-red" => {
                    cluster.insert(k.replace('-', "_"), score_value(&v));
                }
                "placement-strategy" => match v.to_ascii_lowercase().as_str() {
                    v @ ("default" | "utilization" | "minimal" | "balanced") => {
                        cluster.insert("placement_strategy".into(), v.into());
                    }
                    _ => r.skip.push(format!("crm_config placement-strategy={v}")),
                },
                // `poweroff` is the old name of `off`.
                "stonith-action" => match v.as_str() {
                    "reboot" => {}
                    "off" | "poweroff" => r.fence_off = true,
                    _ => r.skip.push(format!("crm_config {k}={v}")),
                },
                // What Warden does (startup fencing) or needs not say (concurrency); what it
                // does not do is named.
                "startup-fencing" => r.startup_fencing = is_true(&v),
                "concurrent-fencing" => {}
                "shutdown-lock" => {
                    cluster.insert("shutdown_lock".into(), is_true(&v).into());
                }
                "shutdown-lock-limit" => match millis(&v) {
                    Some(ms) => {
                        cluster.insert("shutdown_lock_limit".into(), duration_value(ms));
                    }
                    None => r.skip.push(format!("crm_config {k}={v}")),
                },
                "remove-after-stop" if !is_true(&v) => {}
                "remove-after-stop" => {
                    r.skip.push(format!("crm_config {k}={v}"));
                }
                _ => {}
            }
        }
    }
    r.stonith_enabled = stonith_enabled;
    // Defaults.
    let mut resource_defaults = Table::new();
    let mut op_defaults = Table::new();
    // Blocks with a rule on what a resource or operation is are evaluated for each of them
    // (`Reader::primitive`); the others are Warden's defaults for all.
    if let Some(d) = child(conf, "rsc_defaults") {
        r.rsc_default_blocks = default_blocks(d, "rsc_defaults", false, &mut r.skip);
        for (k, v) in nvpairs(d, "meta_attributes", "rsc_defaults", &mut Vec::new()) {
            r.meta("rsc_defaults", &k, &v, &mut resource_defaults);
        }
    }
    if let Some(d) = child(conf, "op_defaults") {
        r.op_default_blocks = default_blocks(d, "op_defaults", true, &mut r.skip);
        for b in r.op_default_blocks.iter().filter(|b| b.rule.is_some()) {
            for (k, _) in &b.pairs {
                if !matches!(k.as_str(), "timeout" | "record-pending" | "interval") {
                    r.skip.push(format!("op_defaults {k}"));
                }
            }
        }
        for (k, v) in nvpairs(d, "meta_attributes", "op_defaults", &mut Vec::new()) {
            match (k.as_str(), millis(&v)) {
                ("timeout", Some(t)) => {
                    op_defaults.insert("timeout".into(), duration_value(t));
                }
                ("record-pending" | "interval", _) => {}
                _ => r.skip.push(format!("op_defaults {k}")),
            }
        }
    }
    // Nodes.
    let mut nodes = Vec::new();
    let mut standby = BTreeSet::new();
    let mut node_attrs: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    // Node ids (the status and `dc-uuid` name nodes by id).
    let mut node_ids: BTreeMap<String, String> = BTreeMap::new();
    let mut node_capacity: BTreeMap<String, Table> = BTreeMap::new();
    if let Some(list) = child(conf, "nodes") {
        for n in elements(list).filter(|c| c.has_tag_name("node")) {
            let Some(name) = n.attribute("uname") else {
                continue;
            };
            if n.attribute("type")
                .is_some_and(|t| t != "member" && t != "normal")
            {
                r.skip.push(format!(
                    "node {name} (type {})",
                    n.attribute("type").unwrap_or("")
                ));
                r.skipped_nodes.insert(name.to_owned());
                continue;
            }
            for (k, v) in nvpairs(
                n,
                "instance_attributes",
                &format!("node {name}"),
                &mut r.skip,
            ) {
                if k == "standby" {
                    if is_true(&v) {
                        standby.insert(name.to_owned());
                    }
                } else if warden_engine::valid_attribute(&k) {
                    node_attrs.entry(name.to_owned()).or_default().push((k, v));
                }
            }
            if let Some(id) = n.attribute("id") {
                node_ids.insert(id.to_owned(), name.to_owned());
            }
            let capacity = utilization(n, &format!("node {name}"), &mut r.skip);
            if !capacity.is_empty() {
                node_capacity.insert(name.to_owned(), capacity);
            }
            nodes.push(name.to_owned());
        }
    }
    // Pacemaker breaks ties between equal nodes by name; Warden by configuration order.
    nodes.sort();
    r.nodes = nodes.iter().cloned().collect();
    r.node_ids = node_ids.clone();
    if let Some(list) = child(conf, "resources") {
        r.resources(list);
    }
    for tag in child(conf, "tags")
        .into_iter()
        .flat_map(elements)
        .filter(|t| t.has_tag_name("tag"))
    {
        let refs = elements(tag)
            .filter(|o| o.has_tag_name("obj_ref"))
            .filter_map(|o| o.attribute("id").map(str::to_owned));
        if let Some(id) = tag.attribute("id") {
            r.tags.entry(id.to_owned()).or_default().extend(refs);
        }
    }
    if let Some(list) = child(conf, "constraints") {
        r.constraints(list);
        r.roles_of_colocations();
        // `restart-type=restart` restarts a resource after an optional order's `first`
        // restarts, which Warden's optional orders do not do; without such an order it
        // changes nothing.
        for id in std::mem::take(&mut r.restart_type) {
            // The order may name it, or the group it is in (a group's meta attributes are
            // its members').
            let names_it = |then: &str| {
                then == id
                    || r.groups.iter().any(|g| {
                        g.get("id").and_then(Value::as_str) == Some(then)
                            && g.get("resources")
                                .and_then(Value::as_array)
                                .is_some_and(|m| m.iter().any(|x| x.as_str() == Some(&id)))
                    })
            };
            let after_optional = r.orders.iter().any(|o| {
                o.get("kind").and_then(Value::as_str) == Some("optional")
                    && (o.get("then").and_then(Value::as_str).is_some_and(names_it)
                        || o.get("sets").is_some())
            });
            if after_optional {
                r.skip.push(format!("{id}: meta restart-type"));
            } else {
                r.ignored.push(format!(
                    "{id}: meta restart-type (no optional order before it)"
                ));
            }
        }
    }
    if !stonith_enabled {
        r.fence.clear();
        // No fence device is placed: constraints and groups naming one go with it.
        r.forget(&r.stonith.clone());
        // As Pacemaker resets it when fencing is disabled.
        for t in &mut r.tickets {
            if t.get("loss_policy").and_then(Value::as_str) == Some("fence") {
                t.insert("loss_policy".into(), "stop".into());
            }
        }
    } else if r.fence.is_empty() {
        // Fencing enabled without a device: Pacemaker schedules fencing all the same, and
        // it never succeeds (what an unclean node ran stays where it is). A device that
        // always fails does the same here.
        let mut d = Table::new();
        d.insert("name".into(), "no-device".into());
        d.insert("command".into(), Value::Array(vec!["false".into()]));
        r.fence.push(d);
        // And it manages no resource at all ("Resource start-up disabled since no STONITH
        // resources have been defined"): every resource is unmanaged.
        if r.stonith.is_empty() {
            r.meta_of_all("is_managed", false.into());
        }
    }
    // Cluster options that override every resource's own meta attributes.
    if r.maintenance_mode {
        r.meta_of_all("maintenance", true.into());
    }
    if r.stop_all {
        r.meta_of_all("target_role", "stopped".into());
    }
    // The file.
    let mut top = Table::new();
    top.insert("cluster".into(), Value::Table(cluster));
    if !resource_defaults.is_empty() {
        top.insert("resource_defaults".into(), Value::Table(resource_defaults));
    }
    if !op_defaults.is_empty() {
        top.insert("op_defaults".into(), Value::Table(op_defaults));
    }
    let node_tables: Vec<Value> = nodes
        .iter()
        .map(|n| {
            let mut t = Table::new();
            t.insert("name".into(), n.clone().into());
            if let Some(attrs) = node_attrs.get(n) {
                let a: Table = attrs
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect();
                t.insert("attributes".into(), Value::Table(a));
            }
            if let Some(c) = node_capacity.get(n) {
                t.insert("utilization".into(), Value::Table(c.clone()));
            }
            Value::Table(t)
        })
        .collect();
    top.insert("node".into(), Value::Array(node_tables));
    // Resources and fence devices, in the CIB's order.
    let mut placed: Vec<(&str, Table)> = Vec::new();
    let mut resources: Vec<Option<Table>> = r.resources.drain(..).map(Some).collect();
    let mut fence: Vec<Option<Table>> = r.fence.drain(..).map(Some).collect();
    for &(key, i) in &r.written {
        let list = if key == "resource" {
            &mut resources
        } else {
            &mut fence
        };
        if let Some(t) = list.get_mut(i).and_then(Option::take) {
            placed.push((key, t));
        }
    }
    // What was never declared (the stand-in fence device) goes first.
    for t in fence.into_iter().flatten() {
        placed.insert(0, ("fence_device", t));
    }
    for (key, list) in [
        ("group", std::mem::take(&mut r.groups)),
        ("location", std::mem::take(&mut r.locations)),
        ("colocation", std::mem::take(&mut r.colocations)),
        ("order", std::mem::take(&mut r.orders)),
        ("ticket", std::mem::take(&mut r.tickets)),
    ] {
        if !list.is_empty() {
            top.insert(
                key.into(),
                Value::Array(list.into_iter().map(Value::Table).collect()),
            );
        }
    }
    let mut text = String::from(
        "# Imported from a Pacemaker CIB by `warden import pacemaker` (docs/pacemaker.md).\n",
    );
    for s in &r.skip {
        let _ = writeln!(text, "# Not carried over: {s}");
    }
    for s in &r.ignored {
        let _ = writeln!(text, "# Ignored, as Pacemaker ignores it: {s}");
    }
    text.push_str(&toml::to_string(&top).context("writing the configuration")?);
    for (key, t) in placed {
        let mut one = Table::new();
        one.insert(key.into(), Value::Array(vec![Value::Table(t)]));
        text.push('\n');
        text.push_str(&toml::to_string(&one).context("writing the configuration")?);
    }

    // The status.
    let time = cib
        .attribute("execution-date")
        .and_then(|d| d.parse::<u64>().ok())
        .map(|s| Time::from_millis(s * 1000));
    let status = child(cib, "status");
    let mut orphans = Vec::new();
    let mut reloadable = std::collections::HashMap::new();
    let (state, newest) = match status {
        Some(st) => {
            let loaded = crate::config::parse(&text, "imported.toml", || {
                nodes.first().cloned().unwrap_or_default()
            })
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            orphans = orphans_of(&loaded.engine, st, &r.names);
            // With stop-orphan-resources off, Pacemaker leaves them as they are.
            if !stop_orphans {
                for o in &mut orphans {
                    o.meta.is_managed = false;
                }
            }
            reloadable = reloadable_of(st, &r.definitions);
            let engine = loaded
                .engine
                .with_extra_resources(orphans.clone())
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .with_reloadable(&reloadable);
            let reading = Reading {
                of: &r.definitions,
                now: time.unwrap_or_else(crate::wire::wall_clock),
                // Fail counts per resource before feature set 3.0.13 (Pacemaker 1.1.17).
                legacy_counts: cib
                    .attribute("crm_feature_set")
                    .is_none_or(|v| digest::older(v, (3, 0, 13))),
                startup_fencing: r.startup_fencing,
            };
            let (mut s, newest, histories) = state_of(
                &engine,
                st,
                &standby,
                stonith_enabled,
                &reading,
                &mut r.skip,
            )?;
            s.dc = cib.attribute("dc-uuid").and_then(|id| {
                node_ids.get(id).cloned().or_else(|| {
                    elements(st)
                        .filter(|c| c.has_tag_name("node_state"))
                        .find(|c| c.attribute("id") == Some(id))
                        .and_then(|c| c.attribute("uname"))
                        .map(str::to_owned)
                })
            });
            // Promotion scores are node attributes, `master-RSC`, in the file's or the
            // status' (where the agent's crm_master puts them).
            for (node, attrs) in node_attrs
                .iter()
                .map(|(n, a)| (n.clone(), a.clone()))
                .chain(
                    s.node_attributes
                        .iter()
                        .map(|(n, a)| (n.clone(), a.clone().into_iter().collect())),
                )
                .collect::<Vec<_>>()
            {
                // An instance's own (`master-RSC:1`) is the score of the copy whose history
                // there is `RSC:1`, else (none runs there) of the lowest number no other
                // node's copy has; the plain `master-RSC` otherwise, as Pacemaker looks them
                // up by the name its history gave the copy.
                let mut by_rsc: BTreeMap<String, (Option<String>, BTreeMap<u32, String>)> =
                    BTreeMap::new();
                for (k, v) in attrs {
                    let Some(rsc) = k.strip_prefix("master-") else {
                        continue;
                    };
                    let (base, number) = match rsc.split_once(':') {
                        Some((b, n)) => (b, n.parse::<u32>().ok()),
                        None => (rsc, None),
                    };
                    let Some(rsc) = r.names.get(base).cloned() else {
                        continue;
                    };
                    if !loaded
                        .engine
                        .resource(&rsc)
                        .is_some_and(|x| x.is_promotable())
                    {
                        continue;
                    }
                    let entry = by_rsc.entry(rsc).or_default();
                    match number {
                        Some(n) => {
                            entry.1.insert(n, v);
                        }
                        None => entry.0 = Some(v),
                    }
                }
                for (rsc, (plain, numbered)) in by_rsc {
                    let here = histories.get(&(rsc.clone(), node.clone())).copied();
                    let taken: Vec<u32> = histories
                        .iter()
                        .filter(|((r2, n2), _)| *r2 == rsc && *n2 != node)
                        .map(|(_, k)| *k)
                        .collect();
                    let value = match here {
                        Some(k) => numbered.get(&k).cloned(),
                        None => numbered
                            .iter()
                            .find(|(k, _)| !taken.contains(k))
                            .map(|(_, v)| v.clone()),
                    }
                    .or(plain)
                    .or_else(|| numbered.values().next().cloned());
                    if let Some(v) = value {
                        s.resources
                            .entry(rsc)
                            .or_default()
                            .promotion_scores
                            .insert(node.clone(), warden_engine::Score::parse_lenient(&v));
                    }
                }
            }
            s.no_quorum = cib.attribute("have-quorum").is_some_and(|q| !is_true(q));
            if let Some(list) = child(st, "tickets") {
                for t in elements(list).filter(|c| c.has_tag_name("ticket_state")) {
                    let Some(id) = t
                        .attribute("id")
                        .filter(|id| warden_engine::valid_ticket(id))
                    else {
                        continue;
                    };
                    s.tickets.insert(
                        id.to_owned(),
                        warden_engine::TicketState {
                            granted: t.attribute("granted").is_some_and(is_true),
                            standby: t.attribute("standby").is_some_and(is_true),
                        },
                    );
                }
            }
            (Some(s), newest)
        }
        None => (None, None),
    };
    // Without an execution date, now (as crm_simulate schedules), and never before the newest
    // operation the history holds.
    let time = time.unwrap_or_else(|| {
        let now = crate::wire::wall_clock();
        newest.map_or(now, |n| now.max(n + std::time::Duration::from_secs(1)))
    });
    Ok(Imported {
        toml: text,
        state,
        time,
        unsupported: r.skip,
        ignored: r.ignored,
        orphans,
        reloadable,
    })
}

/// Per resource and node, the number of the history (`c:1`) that left a copy running there.
type HistoryNames = BTreeMap<(String, String), u32>;

/// The state the status section describes: node membership as Pacemaker reads it, then each
/// resource's operation history replayed through the engine, in call order, then fail counts
/// from the nodes' attributes.
fn state_of(
    config: &warden_engine::Config,
    status: Node<'_, '_>,
    standby: &BTreeSet<String>,
    fencing: bool,
    reading: &Reading<'_>,
    skip: &mut Vec<String>,
) -> anyhow::Result<(State, Option<Time>, HistoryNames)> {
    let mut state = State::with_online_nodes(config.nodes().iter().map(String::as_str));
    let mut newest: Option<Time> = None;
    let mut membership: BTreeMap<String, (bool, Option<String>, bool, bool)> = BTreeMap::new();
    // Online nodes shutting down, since when (their `shutdown` attribute).
    let mut shutting_down: BTreeMap<String, Time> = BTreeMap::new();
    // Each node's resource histories in the order written (Pacemaker reads them so).
    let mut written: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut transient_standby: BTreeMap<String, bool> = BTreeMap::new();
    let mut unfenced: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    // How many copies of each anonymous clone were found running so far (their numbers).
    let mut anonymous: BTreeMap<String, u32> = BTreeMap::new();
    // The number in the history id (`c:1`) that left a copy running on a node: the name
    // its promotion score attribute goes by.
    let mut histories: HistoryNames = BTreeMap::new();
    let mut counts: Vec<(String, String, OpKey, u32, Option<Time>)> = Vec::new();
    // (resource, node) cleaned up because another agent wrote the history there.
    let mut cleaned: Vec<(String, String)> = Vec::new();
    for ns in elements(status).filter(|c| c.has_tag_name("node_state")) {
        let Some(node) = ns.attribute("uname") else {
            continue;
        };
        if config.node_index(node).is_none() {
            // A remote or guest node that a connection in the histories still stands for
            // (an orphaned `ocf:pacemaker:remote` of its name), with a history of its own:
            // what runs there cannot be carried (remote nodes stay out, docs/pacemaker.md).
            // A node nothing stands for any more, or a cluster node not in the
            // configuration, is ignored, as Pacemaker ignores it.
            let history = child(ns, "lrm")
                .and_then(|l| child(l, "lrm_resources"))
                .is_some_and(|l| elements(l).any(|c| c.has_tag_name("lrm_resource")));
            let connection = status.descendants().any(|c| {
                c.has_tag_name("lrm_resource")
                    && c.attribute("id") == Some(node)
                    && c.attribute("type") == Some("remote")
            });
            if ns.attribute("remote_node").is_some_and(is_true) && history && connection {
                skip.push(format!("node_state {node} (remote nodes)"));
            }
            continue;
        }
        let attrs: BTreeMap<String, String> = child(ns, "transient_attributes")
            .map(|t| nvpairs(t, "instance_attributes", "status", &mut Vec::new()))
            .unwrap_or_default()
            .into_iter()
            .collect();
        let (online, unclean, pending) = membership_of(ns, &attrs, fencing);
        // What is left of the transient attributes are node attributes rules read.
        let user: BTreeMap<String, String> = attrs
            .iter()
            .filter(|(k, _)| {
                !k.starts_with("fail-count-")
                    && !k.starts_with("last-failure-")
                    && !matches!(
                        k.as_str(),
                        "shutdown" | "terminate" | "probe_complete" | "standby"
                    )
                    && warden_engine::valid_attribute(k)
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !user.is_empty() {
            state.node_attributes.insert(node.to_owned(), user);
        }
        // Unfenced since it joined (Pacemaker's fencer records when).
        if attrs.get("#node-unfenced").is_some_and(|v| !v.is_empty()) {
            unfenced.insert(node.to_owned());
        }
        // A transient `standby` (`crm_standby -l reboot`) overrides the node's own.
        if let Some(v) = attrs.get("standby") {
            transient_standby.insert(node.to_owned(), is_true(v));
        }
        let shutdown = attrs
            .get("shutdown")
            .is_some_and(|v| v != "0" && !v.is_empty());
        if let Some(s) = attrs
            .get("shutdown")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|&s| s != 0 && online)
        {
            shutting_down.insert(node.to_owned(), Time::from_millis(s * 1000));
        }
        membership.insert(
            node.to_owned(),
            (online, unclean.clone(), pending, shutdown),
        );
        // Pacemaker reads the history of a node that is down only with fencing enabled
        // (without, a node down runs nothing, whatever its history says).
        let counts_history = online || fencing;
        if let Some(lrm) = child(ns, "lrm").and_then(|l| child(l, "lrm_resources")) {
            // A clone's copies may have several histories on one node (`web:0`, `web:1`): the
            // copy runs there when any of them left it running, so those are replayed last.
            let mut entries: Vec<(&str, bool, History<'_, '_>, Node<'_, '_>)> = Vec::new();
            let mut instances: BTreeMap<&str, u32> = BTreeMap::new();
            for lr in elements(lrm).filter(|c| c.has_tag_name("lrm_resource")) {
                let Some(id) = lr.attribute("id") else {
                    continue;
                };
                let id = history_id(config, id);
                if config.resource(id).is_none() {
                    continue;
                }
                // Stopped for a shutdown with `shutdown-lock`: kept to this node since then.
                let since = lr
                    .attribute("shutdown-lock")
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .filter(|&s| s != 0 && config.cluster.shutdown_lock);
                if let Some(s) = since {
                    state.resources.entry(id.to_owned()).or_default().lock =
                        Some(warden_engine::ShutdownLock {
                            node: node.to_owned(),
                            since: Time::from_millis(s * 1000),
                        });
                }
                written
                    .entry(node.to_owned())
                    .or_default()
                    .push(id.to_owned());
                // A history without call ids (older Pacemakers wrote some) is in the order
                // written, as Pacemaker reads it; otherwise an operation without one is pending.
                let written = elements(lr)
                    .filter(|c| c.has_tag_name("lrm_rsc_op"))
                    .all(|o| o.attribute("call-id").is_none());
                let raw: Vec<(i64, bool, Node<'_, '_>)> = elements(lr)
                    .filter(|c| c.has_tag_name("lrm_rsc_op"))
                    .enumerate()
                    .map(|(i, o)| {
                        let call = o
                            .attribute("call-id")
                            .and_then(|c| c.parse::<i64>().ok())
                            .unwrap_or(if written { i as i64 } else { -1 });
                        let pending =
                            o.attribute("op-status") == Some("-1") || (call < 0 && !written);
                        (call, pending, o)
                    })
                    .collect();
                let mut ops: Vec<(i64, Node<'_, '_>)> = raw
                    .iter()
                    .map(|&(call, pending, o)| (history_key(call, pending, o, &raw), o))
                    .collect();
                // One call id twice (an operation and its last failure): the older change
                // first, as Pacemaker's `pe__is_newer_op` orders them.
                let changed = |o: &Node<'_, '_>| {
                    o.attribute("last-rc-change")
                        .and_then(|v| v.parse::<i64>().ok())
                };
                ops.sort_by(|(a, x), (b, y)| {
                    a.cmp(b).then_with(|| match (changed(x), changed(y)) {
                        (Some(p), Some(q)) => p.cmp(&q),
                        _ => std::cmp::Ordering::Equal,
                    })
                });
                let running = left_running(&ops);
                // The instance number of a copy left running, for ties Pacemaker breaks by
                // it: a unique clone's own (`c:1`); an anonymous clone's copies are numbered
                // as Pacemaker finds them, node by node in the status's order.
                let copies = config.resource(id).and_then(|r| r.copies.as_ref());
                let unique = copies.is_some_and(|c| c.globally_unique);
                let suffix = lr
                    .attribute("id")
                    .and_then(|full| full.split_once(':'))
                    .and_then(|(_, n)| n.parse::<u32>().ok());
                if let (true, Some(n)) = (running, suffix) {
                    histories.insert((id.to_owned(), node.to_owned()), n);
                }
                let number = if unique {
                    suffix
                } else {
                    Some(anonymous.get(id).copied().unwrap_or(0))
                };
                if let (true, Some(n), true) = (running, number, copies.is_some()) {
                    if instances.insert(id, n).is_none() && !unique {
                        *anonymous.entry(id.to_owned()).or_insert(0) += 1;
                    }
                }
                entries.push((id, running, ops, lr));
            }
            entries.sort_by_key(|(id, running, _, _)| (*id, *running));
            // A clone runs one copy per node: two histories left running on one node (an
            // anonymous clone's duplicate instances, which Pacemaker stops) cannot be carried.
            if counts_history {
                for w in entries.windows(2) {
                    if w[0].0 == w[1].0 && w[0].1 && w[1].1 {
                        skip.push(format!(
                            "{}: several copies active on {node} (one copy per node)",
                            w[0].0
                        ));
                    }
                }
            }
            // What was started with another definition (compared before the replay, which
            // records the configuration's digests for each start).
            // Another agent (class, provider or type) than the history's is a restart too.
            let changes: Vec<(&str, digest::Change, bool)> = entries
                .iter()
                .filter(|(_, running, _, _)| *running && counts_history)
                .map(|(id, _, ops, lr)| {
                    (*id, reading.change(id, ops), reading.agent_changed(id, *lr))
                })
                .filter(|(_, c, agent)| *c != digest::Change::None || *agent)
                .collect();
            // Another agent than the history's: Pacemaker cleans the resource up there
            // (`pcmk__schedule_cleanup`), running or not: its failures there no longer count.
            if counts_history {
                cleaned.extend(
                    entries
                        .iter()
                        .filter(|(id, _, _, lr)| reading.agent_changed(id, *lr))
                        .map(|(id, _, _, _)| (id.to_string(), node.to_owned())),
                );
            }
            for (id, _, ops, _) in entries {
                for (call, o) in ops {
                    let t = o
                        .attribute("last-rc-change")
                        .or(o.attribute("last-run"))
                        .and_then(|v| v.parse::<u64>().ok())
                        .map(|s| Time::from_millis(s * 1000));
                    if let Some(t) = t {
                        newest = Some(newest.map_or(t, |n| n.max(t)));
                    }
                    if !counts_history {
                        continue;
                    }
                    let name = o.attribute("operation").unwrap_or("");
                    let op_status = o.attribute("op-status").unwrap_or("0");
                    // An operation in flight: a start or a promote may have happened (Pacemaker
                    // counts the resource active, or promoted, there); any other tells nothing
                    // yet, nor does a cancelled one.
                    let pending = pending_key(call);
                    if (pending && !matches!(name, "start" | "promote")) || op_status == "1" {
                        continue;
                    }
                    let op_name = match name {
                        "start" => OpName::Start,
                        "stop" => OpName::Stop,
                        "monitor" => OpName::Monitor,
                        "promote" => OpName::Promote,
                        "demote" => OpName::Demote,
                        "notify" => continue,
                        "migrate_to" | "migrate_from" => {
                            skip.push(format!("{id}: {name} in the history (live migration)"));
                            continue;
                        }
                        _ => continue,
                    };
                    let interval = o
                        .attribute("interval")
                        .and_then(|i| i.parse::<u64>().ok())
                        .unwrap_or(0);
                    let mut code: i32 = o
                        .attribute("rc-code")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(rc::ERR_GENERIC);
                    let mut reason = o.attribute("exit-reason").unwrap_or("").to_owned();
                    // A start (or other one-shot operation) that found it not running, as its
                    // transition asked (its key's third field): it is stopped there, no
                    // failure (Pacemaker takes a result it expected for a success).
                    let expected = o
                        .attribute("transition-key")
                        .and_then(|k| k.split(':').nth(2))
                        .and_then(|rc| rc.parse::<i32>().ok());
                    let op_name = if code == rc::NOT_RUNNING
                        && expected == Some(code)
                        && op_status == "0"
                        && interval == 0
                        && op_name != OpName::Monitor
                    {
                        OpName::Monitor
                    } else {
                        op_name
                    };
                    if pending {
                        code = rc::OK;
                    } else if expired_failure(
                        config,
                        id,
                        o,
                        &attrs,
                        reading.legacy_counts,
                        reading.now,
                    ) {
                        continue;
                    }
                    match op_status {
                        "2" => {
                            code = rc::ERR_GENERIC;
                            reason = "timed out".into();
                        }
                        // Pacemaker's execution statuses: not supported, a hard error (not
                        // on this node again), a fatal one (nowhere), not installed here.
                        "3" => code = rc::ERR_UNIMPLEMENTED,
                        "5" if rc::class(code, false) == rc::FailureClass::Soft => {
                            code = rc::ERR_PERM;
                        }
                        "6" => code = rc::ERR_CONFIGURED,
                        "7" => code = rc::ERR_INSTALLED,
                        _ => {}
                    }
                    let at = t.unwrap_or(Time::from_millis(0));
                    // A recurring monitor where the history holds no start (Pacemaker keeps
                    // only the last operations, and rebuilds histories after a restart) says
                    // it was running there, as Pacemaker reads it: as a probe that found it,
                    // then the monitor's own result (a failure fails the running copy).
                    let active = state
                        .resource(id)
                        .and_then(|rs| rs.nodes.get(node))
                        .is_some_and(|on| on.role.is_active());
                    let stopped_role = config.resource(id).is_some_and(|spec| {
                        spec.monitor_role(std::time::Duration::from_millis(interval))
                            == OpRole::Stopped
                    });
                    if op_name == OpName::Monitor && interval > 0 && !active && !stopped_role {
                        let found = if matches!(code, rc::RUNNING_PROMOTED | rc::FAILED_PROMOTED) {
                            rc::RUNNING_PROMOTED
                        } else {
                            rc::OK
                        };
                        let probe = Event::OpResult(OpResult {
                            resource: id.to_owned(),
                            node: node.to_owned(),
                            op: OpKey::probe(),
                            rc: found,
                            exit_reason: String::new(),
                            status: rc::ExecStatus::Done,
                            digest: None,
                        });
                        let _ = apply(config, &mut state, &probe, at);
                    }
                    let ev = Event::OpResult(OpResult {
                        resource: id.to_owned(),
                        node: node.to_owned(),
                        op: OpKey {
                            name: op_name,
                            interval_ms: interval,
                        },
                        rc: code,
                        exit_reason: reason,
                        status: if op_status == "7" {
                            rc::ExecStatus::NotInstalled
                        } else {
                            rc::ExecStatus::Done
                        },
                        digest: None,
                    });
                    let _ = apply(config, &mut state, &ev, at);
                }
            }
            for (id, n) in instances {
                if let Some(on) = state
                    .resources
                    .get_mut(id)
                    .and_then(|rs| rs.nodes.get_mut(node))
                {
                    on.instance = Some(n);
                }
            }
            for (id, change, agent) in changes {
                reading.mark(config, &mut state, id, node, change, agent);
            }
        }
        // Fail counts as the node's attributes hold them (the history keeps only the last
        // failure of each operation).
        for f in fail_attributes(&attrs, reading.legacy_counts) {
            counts.push((
                history_id(config, f.resource).to_owned(),
                node.to_owned(),
                f.op,
                f.count,
                f.last,
            ));
        }
    }
    // Pacemaker counts failures only by the nodes' fail-count attributes: they replace
    // whatever the replayed history counted, and where there is none, nothing counts.
    for rs in state.resources.values_mut() {
        for on in rs.nodes.values_mut() {
            on.fail_counts.clear();
        }
    }
    for (rsc, node, op, n, last) in counts {
        if config.resource(&rsc).is_none() || cleaned.contains(&(rsc.clone(), node.clone())) {
            continue;
        }
        let on = state
            .resources
            .entry(rsc)
            .or_default()
            .nodes
            .entry(node)
            .or_default();
        // An anonymous clone's instances count together (`fail-count-R:0`, `fail-count-R:1`
        // on one node), as Pacemaker sums every attribute of the resource; INFINITY stays.
        let count = on.fail_counts.entry(op).or_insert(0);
        *count = count.saturating_add(n).min(1_000_000);
        if last.is_some() {
            on.last_failure = last.max(on.last_failure);
        }
    }
    for (rsc, node) in &cleaned {
        if let Some(on) = state
            .resources
            .get_mut(rsc)
            .and_then(|rs| rs.nodes.get_mut(node))
        {
            on.fail_counts.clear();
            on.failed_ops.clear();
            on.last_failure = None;
            on.hard_ban = false;
            on.fatal = false;
            if !on.role.is_active() {
                on.failed = false;
            }
        }
    }
    // Membership last: nodes without a status entry have not been seen.
    for node in config.nodes() {
        let n = state.nodes.entry(node.clone()).or_default();
        // A transient `standby` (in the status) over the node's own.
        n.standby = transient_standby
            .get(node)
            .copied()
            .unwrap_or_else(|| standby.contains(node));
        match membership.get(node) {
            Some((online, unclean, pending, shutdown)) => {
                n.online = *online;
                // A failure the history replayed may have asked for the fence already.
                n.unclean = if fencing {
                    unclean.clone().or(n.unclean.take())
                } else {
                    None
                };
                n.pending = *pending;
                n.shutdown = *shutdown;
                n.unfenced = *online && unfenced.contains(node);
                // Down, and a managed resource still thought active there: with fencing, it
                // must be fenced before that can run elsewhere (Pacemaker's "is thought to
                // be active there").
                if fencing
                    && !*online
                    && n.unclean.is_none()
                    && !state.node_in_maintenance(config, node)
                {
                    let active = |id: &&String| {
                        let managed = config
                            .resource(id)
                            .is_some_and(|r| r.meta.is_managed && !r.meta.maintenance);
                        managed
                            && state
                                .resources
                                .get(*id)
                                .and_then(|rs| rs.nodes.get(node))
                                .is_some_and(|on| on.role.is_active())
                    };
                    let first = written.get(node).and_then(|ids| ids.iter().find(active));
                    if let Some(id) = first {
                        let reason = format!("{id} is thought to be active there");
                        if let Some(n) = state.nodes.get_mut(node) {
                            n.unclean = Some(reason);
                        }
                    }
                }
            }
            None => {
                n.online = false;
                // Pacemaker's startup fencing: a node never seen may run anything.
                n.unclean =
                    (fencing && reading.startup_fencing).then(|| "node is unclean".to_owned());
            }
        }
        // A node down and clean runs nothing, unless it was left in maintenance: what it ran
        // is still there as far as Pacemaker knows (it is left alone).
        let maintenance = state.node_in_maintenance(config, node);
        let n = state.nodes.entry(node.clone()).or_default();
        if !n.online && n.unclean.is_none() && !maintenance {
            for rs in state.resources.values_mut() {
                if let Some(on) = rs.nodes.get_mut(node) {
                    on.role = warden_engine::Role::Stopped;
                    on.failed = false;
                    on.blocked = false;
                }
            }
        }
    }
    // What runs on a node shutting down with `shutdown-lock` is locked to it from then.
    if config.cluster.shutdown_lock {
        for (node, since) in &shutting_down {
            warden_engine::lock_for_shutdown(config, &mut state, node, *since);
        }
    }
    Ok((state, newest, histories))
}

/// Pacemaker's reading of a `node_state` (with fencing): online, unclean (with the reason),
/// pending (online but not ready to run resources).
fn membership_of(
    ns: Node<'_, '_>,
    attrs: &BTreeMap<String, String>,
    fencing: bool,
) -> (bool, Option<String>, bool) {
    let join = ns.attribute("join");
    let in_cluster = ns.attribute("in_ccm");
    let crmd = ns
        .attribute("crmd")
        .is_some_and(|c| c.eq_ignore_ascii_case("online"));
    let expected = ns.attribute("expected").unwrap_or("down");
    if !fencing {
        // Pacemaker's reading without fencing (`determine_online_status_no_fencing`): a
        // node is up when its controller is and it has joined; one expected up whose
        // controller is not is unclean ("unexpectedly down"), and is down all the same.
        let shutdown = attrs
            .get("shutdown")
            .is_some_and(|v| v != "0" && !v.is_empty());
        let expected_up = !shutdown && expected.eq_ignore_ascii_case("member");
        return match () {
            () if !in_cluster.is_some_and(is_true) => (false, None, false),
            () if crmd => (join == Some("member"), None, false),
            () if !expected_up => (false, None, false),
            () => (false, Some("peer is unexpectedly down".to_owned()), false),
        };
    }
    let terminate = attrs.get("terminate").is_some_and(|t| {
        is_true(t)
            || t.chars()
                .next()
                .is_some_and(|c| c != '0' && c.is_ascii_digit())
    });
    let online = in_cluster.is_some_and(is_true);
    let shutdown = attrs
        .get("shutdown")
        .is_some_and(|v| v != "0" && !v.is_empty());
    let fence = |why: &str| (online, Some(why.to_owned()), false);
    if shutdown {
        return (crmd, None, false);
    }
    match () {
        () if in_cluster.is_none() => fence("peer has not been seen by the cluster"),
        () if join == Some("banned") => fence("peer failed Pacemaker membership criteria"),
        () if !terminate && expected.eq_ignore_ascii_case("down") => (online, None, online || crmd),
        () if terminate && join == Some("down") && !online && !crmd => (false, None, false),
        () if !online => fence("peer is no longer part of the cluster"),
        () if !crmd => fence("peer process is no longer available"),
        () if terminate => fence("termination was requested"),
        () if join == Some("member") => (true, None, false),
        () if matches!(join, Some("pending" | "down")) => (true, None, true),
        () => fence("peer was in an unknown state"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each colocation as (resource, with), in the configuration's order.
    fn colocation_pairs(e: &warden_engine::Config) -> Vec<(&str, &str)> {
        e.colocations()
            .iter()
            .map(|c| (c.resource.as_str(), c.with.as_str()))
            .collect()
    }

    /// The configuration an import wrote, read (on node n1); its errors and text if bad.
    fn loaded(i: &Imported) -> crate::config::Loaded {
        crate::config::parse(&i.toml, "t.toml", || "n1".into())
            .unwrap_or_else(|e| panic!("{e}\n{}", i.toml))
    }

    #[test]
    fn two_recurring_operations_with_one_interval_are_ignored_as_pacemaker_ignores_them() {
        let xml = r#"<cib><configuration><crm_config/>
  <nodes><node id="1" uname="n1"/></nodes>
  <resources><master id="ms"><primitive id="db" class="ocf" provider="heartbeat" type="Dummy">
    <operations>
      <op id="m1" name="monitor" interval="10" role="Promoted"/>
      <op id="m2" name="monitor" interval="10" role="Unpromoted"/>
      <op id="m3" name="monitor" interval="20"/>
      <op id="s1" name="start" timeout="30s"/>
      <op id="s2" name="start" timeout="40s"/>
    </operations>
  </primitive></master></resources><constraints/></configuration></cib>"#;
        let i = import(xml).expect("import");
        assert_eq!(
            i.ignored,
            ["db: the monitor operations of interval 10s (one name and interval twice)"]
        );
        assert!(i.unsupported.is_empty(), "{:?}", i.unsupported);
        let l = loaded(&i);
        let db = l.engine.resource("db").expect("db");
        let monitors: Vec<u128> = db
            .recurring_monitors()
            .map(|o| o.interval.as_millis())
            .collect();
        assert_eq!(monitors, [20_000]);
        // Of one-shot operations, the first counts.
        let start = db
            .op(OpName::Start, std::time::Duration::ZERO)
            .expect("start");
        assert_eq!(start.timeout, std::time::Duration::from_secs(30));
    }

    #[test]
    fn a_recurring_monitor_without_a_start_in_the_history_says_where_it_ran() {
        // Pacemaker's monitor-onfail-stop: the history holds the failed monitor (call 4) and
        // the monitor itself (call 7), no start. It ran there and failed; on-fail=stop.
        let xml = r#"<cib><configuration><crm_config><cluster_property_set id="o">
  <nvpair id="s" name="stonith-enabled" value="false"/></cluster_property_set></crm_config>
  <nodes><node id="1" uname="n1"/></nodes>
  <resources><primitive id="A" class="ocf" provider="heartbeat" type="Dummy">
    <operations><op id="m" name="monitor" interval="20s" on-fail="stop"/></operations>
  </primitive></resources><constraints/></configuration>
  <status><node_state id="1" uname="n1" in_ccm="true" crmd="online" join="member" expected="member">
    <lrm id="1"><lrm_resources><lrm_resource id="A" class="ocf" provider="heartbeat" type="Dummy">
      <lrm_rsc_op id="A_monitor_20000" operation="monitor" call-id="7" rc-code="0" op-status="0" interval="20000"/>
      <lrm_rsc_op id="A_last_failure_0" operation="monitor" call-id="4" rc-code="7" op-status="0" interval="20000"/>
    </lrm_resource></lrm_resources></lrm>
  </node_state></status></cib>"#;
        let i = import(xml).expect("import");
        let state = i.state.expect("a state");
        let on = &state.resources["A"].nodes["n1"];
        assert_eq!(on.role, warden_engine::Role::Started);
        assert!(on.failed && on.stop_on_fail, "{on:?}");
    }

    #[test]
    fn a_unique_clone_with_several_copies_per_node_imports_as_instances_with_their_histories() {
        // Pacemaker's rebalance-unique-clones: both instances run on n1, each with its own
        // history and fail count; an anonymous clone with clone-node-max 2 is named.
        let xml = r#"<cib crm_feature_set="3.17.4"><configuration><crm_config><cluster_property_set id="o">
  <nvpair id="s" name="stonith-enabled" value="false"/></cluster_property_set></crm_config>
  <nodes><node id="1" uname="n1"/><node id="2" uname="n2"/></nodes>
  <resources><clone id="C"><meta_attributes id="m">
      <nvpair id="m1" name="globally-unique" value="true"/>
      <nvpair id="m2" name="clone-max" value="2"/>
      <nvpair id="m3" name="clone-node-max" value="2"/></meta_attributes>
    <primitive id="P" class="ocf" provider="heartbeat" type="Dummy"/></clone>
  <clone id="A"><meta_attributes id="a"><nvpair id="a1" name="clone-node-max" value="2"/>
    </meta_attributes><primitive id="Q" class="ocf" provider="heartbeat" type="Dummy"/></clone>
  </resources><constraints/></configuration>
  <status><node_state id="1" uname="n1" in_ccm="true" crmd="online" join="member" expected="member">
    <transient_attributes id="1"><instance_attributes id="t">
      <nvpair id="f" name="fail-count-P:1#monitor_10000" value="2"/>
      <nvpair id="l" name="last-failure-P:1#monitor_10000" value="1340899990"/>
    </instance_attributes></transient_attributes>
    <lrm id="1"><lrm_resources>
      <lrm_resource id="P:0" class="ocf" provider="heartbeat" type="Dummy">
        <lrm_rsc_op id="P:0_start_0" operation="start" call-id="3" rc-code="0" op-status="0" interval="0"/>
      </lrm_resource>
      <lrm_resource id="P:1" class="ocf" provider="heartbeat" type="Dummy">
        <lrm_rsc_op id="P:1_start_0" operation="start" call-id="4" rc-code="0" op-status="0" interval="0"/>
      </lrm_resource></lrm_resources></lrm>
  </node_state>
  <node_state id="2" uname="n2" in_ccm="true" crmd="online" join="member" expected="member"/>
  </status></cib>"#;
        let i = import(xml).expect("import");
        assert_eq!(
            i.unsupported,
            ["clone A (clone-node-max above 1 on an anonymous clone)"]
        );
        let l = loaded(&i);
        let ids: Vec<&str> = l.engine.resources().iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["P:0", "P:1"]);
        let state = i.state.expect("a state");
        for id in ["P:0", "P:1"] {
            assert_eq!(
                state.resources[id].nodes["n1"].role,
                warden_engine::Role::Started
            );
        }
        let counts = &state.resources["P:1"].nodes["n1"].fail_counts;
        assert_eq!(counts.values().sum::<u32>(), 2, "{counts:?}");
    }

    #[test]
    fn a_copy_with_a_failed_probe_after_its_start_is_active_whatever_another_history_says() {
        // Pacemaker's interleave-restart: on n1, `c:0` started and a later probe failed (it
        // runs, failed); `c:1` was only probed, not running. The copy runs there, failed.
        let xml = r#"<cib><configuration><crm_config><cluster_property_set id="o">
  <nvpair id="s" name="stonith-enabled" value="false"/></cluster_property_set></crm_config>
  <nodes><node id="1" uname="n1"/></nodes>
  <resources><clone id="cl"><primitive id="c" class="ocf" provider="heartbeat" type="Dummy"/>
  </clone></resources><constraints/></configuration>
  <status><node_state id="1" uname="n1" in_ccm="true" crmd="online" join="member" expected="member">
    <lrm id="1"><lrm_resources>
    <lrm_resource id="c:0" class="ocf" provider="heartbeat" type="Dummy">
      <lrm_rsc_op id="c0_monitor_0" operation="monitor" call-id="30" rc-code="1" op-status="0" interval="0"/>
      <lrm_rsc_op id="c0_start_0" operation="start" call-id="11" rc-code="0" op-status="0" interval="0"/>
    </lrm_resource>
    <lrm_resource id="c:1" class="ocf" provider="heartbeat" type="Dummy">
      <lrm_rsc_op id="c1_monitor_0" operation="monitor" call-id="7" rc-code="7" op-status="0" interval="0"/>
    </lrm_resource></lrm_resources></lrm>
  </node_state></status></cib>"#;
        let i = import(xml).expect("import");
        let state = i.state.expect("a state");
        let on = &state.resources["c"].nodes["n1"];
        assert_eq!(on.role, warden_engine::Role::Started);
        assert!(on.failed, "{on:?}");
    }

    #[test]
    fn a_recurring_monitor_that_found_it_not_running_leaves_it_active_and_failed() {
        // Pacemaker's clone-anon-failcount: on n1, `c:1` started and its recurring monitor,
        // expecting it running (key's third field 0), found it not running: the copy is active
        // and failed there (Pacemaker stops it before starting it again), whatever the probe
        // of `c:0` written after it says. Both instances' fail counts count: 3 + 3.
        let xml = r#"<cib><configuration><crm_config><cluster_property_set id="o">
  <nvpair id="s" name="stonith-enabled" value="false"/></cluster_property_set></crm_config>
  <nodes><node id="1" uname="n1"/></nodes>
  <resources><clone id="cl"><primitive id="c" class="ocf" provider="heartbeat" type="Dummy">
  <operations><op id="c-m" name="monitor" interval="10s"/></operations></primitive>
  </clone></resources><constraints/></configuration>
  <status><node_state id="1" uname="n1" in_ccm="true" crmd="online" join="member" expected="member">
    <transient_attributes id="1"><instance_attributes id="a">
      <nvpair id="f0" name="fail-count-c:0" value="3"/>
      <nvpair id="f1" name="fail-count-c:1" value="3"/>
    </instance_attributes></transient_attributes>
    <lrm id="1"><lrm_resources>
    <lrm_resource id="c:1" class="ocf" provider="heartbeat" type="Dummy">
      <lrm_rsc_op id="c1_start_0" operation="start" call-id="11" rc-code="0" op-status="0" interval="0" transition-key="1:1:0:x"/>
      <lrm_rsc_op id="c1_monitor_10000" operation="monitor" call-id="12" rc-code="7" op-status="0" interval="10000" transition-key="2:1:0:x"/>
    </lrm_resource>
    <lrm_resource id="c:0" class="ocf" provider="heartbeat" type="Dummy">
      <lrm_rsc_op id="c0_monitor_0" operation="monitor" call-id="7" rc-code="7" op-status="0" interval="0" transition-key="3:1:7:x"/>
    </lrm_resource></lrm_resources></lrm>
  </node_state></status></cib>"#;
        let i = import(xml).expect("import");
        let state = i.state.expect("a state");
        let on = &state.resources["c"].nodes["n1"];
        assert_eq!(on.role, warden_engine::Role::Started, "{on:?}");
        assert!(on.failed, "{on:?}");
        assert_eq!(on.fail_counts.values().sum::<u32>(), 6, "{on:?}");
    }

    #[test]
    fn a_start_that_found_it_not_running_as_its_transition_expected_is_no_failure() {
        // Pacemaker's unfence-startup: on n2 the start of `f` returned 7 (not running), which
        // its transition key asked for (third field 7): it is stopped there, not failed.
        // On n1 the same result where 0 was expected is a failed start.
        let xml = r#"<cib><configuration><crm_config><cluster_property_set id="o">
  <nvpair id="s" name="stonith-enabled" value="false"/></cluster_property_set></crm_config>
  <nodes><node id="1" uname="n1"/><node id="2" uname="n2"/></nodes>
  <resources><primitive id="f" class="ocf" provider="heartbeat" type="Dummy"/></resources>
  <constraints/></configuration>
  <status><node_state id="1" uname="n1" in_ccm="true" crmd="online" join="member" expected="member">
    <lrm id="1"><lrm_resources><lrm_resource id="f" class="ocf" provider="heartbeat" type="Dummy">
      <lrm_rsc_op id="f_last_0" operation="start" call-id="3" rc-code="7" op-status="0" interval="0" transition-key="1:1:0:x"/>
    </lrm_resource></lrm_resources></lrm></node_state>
  <node_state id="2" uname="n2" in_ccm="true" crmd="online" join="member" expected="member">
    <lrm id="2"><lrm_resources><lrm_resource id="f" class="ocf" provider="heartbeat" type="Dummy">
      <lrm_rsc_op id="f_last_0" operation="start" call-id="3" rc-code="7" op-status="0" interval="0" transition-key="1:1:7:x"/>
    </lrm_resource></lrm_resources></lrm></node_state></status></cib>"#;
        let i = import(xml).expect("import");
        let state = i.state.expect("a state");
        let n1 = &state.resources["f"].nodes["n1"];
        assert!(n1.failed, "{n1:?}");
        let n2 = &state.resources["f"].nodes["n2"];
        assert_eq!(n2.role, warden_engine::Role::Stopped, "{n2:?}");
        assert!(!n2.failed, "{n2:?}");
    }

    #[test]
    fn a_resource_started_with_other_parameters_restarts_or_reloads() {
        // The digests Pacemaker recorded (its params-1 and params-4): A started with other
        // parameters than `ip=127.0.0.20` (restart); B the same, but its agent reloads and
        // the parameters it cannot reload (none) are the same (reload); C as configured.
        let xml = r#"<cib><configuration><crm_config><cluster_property_set id="o">
  <nvpair id="s" name="stonith-enabled" value="false"/></cluster_property_set></crm_config>
  <nodes><node id="1" uname="n1"/></nodes>
  <resources>
    <primitive id="A" class="ocf" provider="heartbeat" type="IPaddr"><instance_attributes id="a">
      <nvpair id="a1" name="ip" value="127.0.0.20"/></instance_attributes></primitive>
    <primitive id="B" class="ocf" provider="heartbeat" type="IPaddr"><instance_attributes id="b">
      <nvpair id="b1" name="ip" value="127.0.0.20"/></instance_attributes></primitive>
    <primitive id="C" class="ocf" provider="heartbeat" type="IPaddr"><instance_attributes id="c">
      <nvpair id="c1" name="ip" value="127.0.0.20"/></instance_attributes></primitive>
  </resources><constraints/></configuration>
  <status><node_state id="1" uname="n1" in_ccm="true" crmd="online" join="member" expected="member">
    <lrm id="1"><lrm_resources>
      <lrm_resource id="A" class="ocf" provider="heartbeat" type="IPaddr">
        <lrm_rsc_op id="A_start_0" operation="start" call-id="4" rc-code="0" op-status="0" interval="0" op-digest="21ccbd2b8e65014ca7b36a2070642a2e"/></lrm_resource>
      <lrm_resource id="B" class="ocf" provider="heartbeat" type="IPaddr">
        <lrm_rsc_op id="B_start_0" operation="start" call-id="5" rc-code="0" op-status="0" interval="0" op-digest="21ccbd2b8e65014ca7b36a2070642a2e" op-force-restart=" dummy " op-restart-digest="f2317cad3d54cec5d7d7aa7d0bf35cf8"/></lrm_resource>
      <lrm_resource id="C" class="ocf" provider="heartbeat" type="IPaddr">
        <lrm_rsc_op id="C_start_0" operation="start" call-id="6" rc-code="0" op-status="0" interval="0" op-digest="c85a9e95c9e9147a613b270c79b58db6"/></lrm_resource>
    </lrm_resources></lrm>
  </node_state></status></cib>"#;
        let i = import(xml).expect("import");
        assert_eq!(i.reloadable.get("B"), Some(&vec!["ip".to_owned()]));
        let config = loaded(&i).engine.with_reloadable(&i.reloadable);
        let state = i.state.expect("a state");
        let now = |id: &str| warden_engine::Digests::of(config.resource(id).expect(id));
        let on = |id: &str| &state.resources[id].nodes["n1"];
        assert_ne!(on("A").digest, Some(now("A").all));
        assert_ne!(on("A").restart_digest, Some(now("A").restart));
        assert_ne!(on("B").digest, Some(now("B").all));
        assert_eq!(on("B").restart_digest, Some(now("B").restart));
        assert_eq!(on("C").digest, Some(now("C").all));
        let summary: Vec<String> = warden_engine::schedule(&config, &state, i.time)
            .summary
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(
            summary
                .iter()
                .any(|l| l.contains("Restart A") && l.contains("resource definition change")),
            "{summary:?}"
        );
        assert!(
            summary.iter().any(|l| l.contains("Reload B")),
            "{summary:?}"
        );
        assert!(!summary.iter().any(|l| l.contains(" C ")), "{summary:?}");
    }

    #[test]
    fn a_failure_older_than_the_failure_timeout_is_ignored_as_pacemaker_ignores_it() {
        // Pacemaker's failcount: A's monitor timed out long before the CIB's date, A has a
        // failure timeout of 60 s and no fail count: the failure expired, A runs (its monitor
        // is rescheduled). With a fail count younger than the timeout, it stands.
        let xml = |count: &str| {
            format!(
                r#"<cib crm_feature_set="3.0.14" execution-date="1340900000"><configuration><crm_config><cluster_property_set id="o">
  <nvpair id="s" name="stonith-enabled" value="false"/></cluster_property_set></crm_config>
  <nodes><node id="1" uname="n1"/></nodes>
  <resources><primitive id="A" class="ocf" provider="heartbeat" type="Dummy">
    <meta_attributes id="m"><nvpair id="m1" name="failure-timeout" value="60"/></meta_attributes>
    <operations><op id="o" name="monitor" interval="10s"/></operations>
  </primitive></resources><constraints/></configuration>
  <status><node_state id="1" uname="n1" in_ccm="true" crmd="online" join="member" expected="member">
    <transient_attributes id="1"><instance_attributes id="t">{count}</instance_attributes></transient_attributes>
    <lrm id="1"><lrm_resources><lrm_resource id="A" class="ocf" provider="heartbeat" type="Dummy">
      <lrm_rsc_op id="A_start_0" operation="start" call-id="3" rc-code="0" op-status="0" interval="0" transition-key="1:1:0:x"/>
      <lrm_rsc_op id="A_monitor_10000" operation="monitor" call-id="4" rc-code="-2" op-status="2" interval="10000" transition-key="2:1:0:x" last-rc-change="1340817748"/>
    </lrm_resource></lrm_resources></lrm>
  </node_state></status></cib>"#
            )
        };
        let on = |count: &str| {
            let i = import(&xml(count)).expect("import");
            i.state.expect("a state").resources["A"].nodes["n1"].clone()
        };
        let expired = on("");
        assert!(expired.role.is_active() && !expired.failed, "{expired:?}");
        let standing = on(
            r#"<nvpair id="c" name="fail-count-A#monitor_10000" value="1"/>
            <nvpair id="l" name="last-failure-A#monitor_10000" value="1340899990"/>"#,
        );
        assert!(standing.failed, "{standing:?}");
        // A count per resource (before feature set 3.0.13) is not what this CIB writes:
        // Pacemaker does not read it.
        let legacy = on(r#"<nvpair id="c" name="fail-count-A" value="1"/>
            <nvpair id="l" name="last-failure-A" value="1340899990"/>"#);
        assert!(legacy.role.is_active() && !legacy.failed, "{legacy:?}");
    }

    #[test]
    fn an_operation_in_flight_is_the_newest_and_a_start_may_have_happened() {
        // Pacemaker's 764: A stopped (call 21), then a start in flight (no call id yet):
        // Pacemaker counts A active there ("Starting"). B's stop in flight tells nothing:
        // B still runs.
        let xml = r#"<cib><configuration><crm_config><cluster_property_set id="o">
  <nvpair id="s" name="stonith-enabled" value="false"/></cluster_property_set></crm_config>
  <nodes><node id="1" uname="n1"/></nodes>
  <resources>
    <primitive id="A" class="ocf" provider="heartbeat" type="Dummy"/>
    <primitive id="B" class="ocf" provider="heartbeat" type="Dummy"/>
  </resources><constraints/></configuration>
  <status><node_state id="1" uname="n1" in_ccm="true" crmd="online" join="member" expected="member">
    <lrm id="1"><lrm_resources>
      <lrm_resource id="A" class="ocf" provider="heartbeat" type="Dummy">
        <lrm_rsc_op id="A_stop_0" operation="stop" call-id="21" rc-code="0" op-status="0" interval="0"/>
        <lrm_rsc_op id="A_start_0" operation="start" call-id="-1" op-status="-1" interval="0"/>
      </lrm_resource>
      <lrm_resource id="B" class="ocf" provider="heartbeat" type="Dummy">
        <lrm_rsc_op id="B_stop_0" operation="stop" call-id="-1" op-status="-1" interval="0"/>
        <lrm_rsc_op id="B_start_0" operation="start" call-id="9" rc-code="0" op-status="0" interval="0"/>
      </lrm_resource>
    </lrm_resources></lrm>
  </node_state></status></cib>"#;
        let i = import(xml).expect("import");
        let state = i.state.expect("a state");
        for r in ["A", "B"] {
            let on = &state.resources[r].nodes["n1"];
            assert_eq!(on.role, warden_engine::Role::Started, "{r}");
            assert!(!on.failed, "{r}: {on:?}");
        }
    }

    #[test]
    fn an_operation_in_flight_goes_where_its_call_id_or_transition_puts_it() {
        // Pacemaker's 735: C's start in flight (no call id) belongs to transition 8, its stop
        // to transition 9: the stop is newer, C is stopped. D's start in flight has call id 3,
        // before its stop (call 9): stopped too. E's start in flight is all there is: active.
        let xml = r#"<cib><configuration><crm_config><cluster_property_set id="o">
  <nvpair id="s" name="stonith-enabled" value="false"/></cluster_property_set></crm_config>
  <nodes><node id="1" uname="n1"/></nodes>
  <resources>
    <primitive id="C" class="ocf" provider="heartbeat" type="Dummy"/>
    <primitive id="D" class="ocf" provider="heartbeat" type="Dummy"/>
    <primitive id="E" class="ocf" provider="heartbeat" type="Dummy"/>
  </resources><constraints/></configuration>
  <status><node_state id="1" uname="n1" in_ccm="true" crmd="online" join="member" expected="member">
    <lrm id="1"><lrm_resources>
      <lrm_resource id="C" class="ocf" provider="heartbeat" type="Dummy">
        <lrm_rsc_op id="C_start_0" operation="start" call-id="-1" op-status="-1" rc-code="-1" interval="0" transition-key="-1:8:0:u"/>
        <lrm_rsc_op id="C_stop_0" operation="stop" call-id="8" rc-code="0" op-status="0" interval="0" transition-key="0:9:0:u"/>
      </lrm_resource>
      <lrm_resource id="D" class="ocf" provider="heartbeat" type="Dummy">
        <lrm_rsc_op id="D_start_0" operation="start" call-id="3" op-status="-1" rc-code="-1" interval="0" transition-key="-1:9:0:u"/>
        <lrm_rsc_op id="D_stop_0" operation="stop" call-id="9" rc-code="0" op-status="0" interval="0" transition-key="0:4:0:u"/>
      </lrm_resource>
      <lrm_resource id="E" class="ocf" provider="heartbeat" type="Dummy">
        <lrm_rsc_op id="E_start_0" operation="start" call-id="-1" op-status="-1" rc-code="-1" interval="0" transition-key="-1:9:0:u"/>
      </lrm_resource>
    </lrm_resources></lrm>
  </node_state></status></cib>"#;
        let i = import(xml).expect("import");
        let state = i.state.expect("a state");
        let role = |r: &str| state.resources[r].nodes["n1"].role;
        assert_eq!(role("C"), warden_engine::Role::Stopped);
        assert_eq!(role("D"), warden_engine::Role::Stopped);
        assert_eq!(role("E"), warden_engine::Role::Started);
    }

    #[test]
    fn resources_and_fence_devices_keep_the_cibs_order_and_nodes_go_by_name() {
        let xml = r#"<cib><configuration><crm_config/>
  <nodes><node id="2" uname="n2"/><node id="1" uname="n1"/></nodes>
  <resources>
    <primitive id="a" class="ocf" provider="heartbeat" type="Dummy"/>
    <primitive id="fence" class="stonith" type="fence_dummy"/>
    <primitive id="b" class="ocf" provider="heartbeat" type="Dummy"/>
  </resources><constraints/></configuration></cib>"#;
        let i = import(xml).expect("import");
        let l = loaded(&i);
        let ids: Vec<&str> = l.engine.resources().iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["a", "fence", "b"]);
        assert_eq!(l.engine.nodes(), ["n1", "n2"]);
    }

    #[test]
    fn resource_sets_become_the_constraints_pacemaker_expands_them_into() {
        let xml = r#"<cib><configuration><crm_config/>
  <nodes><node id="1" uname="n1"/></nodes>
  <resources>
    <primitive id="a" class="ocf" provider="heartbeat" type="Dummy"/>
    <primitive id="b" class="ocf" provider="heartbeat" type="Dummy"/>
    <primitive id="c" class="ocf" provider="heartbeat" type="Dummy"/>
    <primitive id="d" class="ocf" provider="heartbeat" type="Dummy"/>
  </resources>
  <constraints>
    <rsc_colocation id="col" score="INFINITY">
      <resource_set id="s1"><resource_ref id="a"/><resource_ref id="b"/></resource_set>
      <resource_set id="s2"><resource_ref id="c"/><resource_ref id="d"/></resource_set>
    </rsc_colocation>
    <rsc_order id="ord">
      <resource_set id="o1" sequential="true"><resource_ref id="a"/><resource_ref id="b"/></resource_set>
      <resource_set id="o2" sequential="false"><resource_ref id="c"/><resource_ref id="d"/></resource_set>
    </rsc_order>
  </constraints></configuration></cib>"#;
        let i = import(xml).expect("import");
        assert!(i.unsupported.is_empty(), "{:?}", i.unsupported);
        let l = loaded(&i);
        let cols = colocation_pairs(&l.engine);
        // Within a set each member with the one before it; between sets the first set's first
        // member with the second set's last.
        assert_eq!(cols, [("b", "a"), ("d", "c"), ("a", "d")]);
        let ords: Vec<(&str, &str)> = l
            .engine
            .orders()
            .iter()
            .map(|o| (o.first.as_str(), o.then.as_str()))
            .collect();
        // Within the sequential set a then b; the unordered set has none; between the sets the
        // sequential one's last member before every member of the other.
        assert_eq!(ords, [("a", "b"), ("b", "c"), ("b", "d")]);
    }

    #[test]
    fn serialize_orders_and_sets_carry_over_and_are_never_symmetric() {
        // Pacemaker's order-serialize and order-serialize-set: `symmetrical=true` on a
        // Serialize order is an error it ignores.
        let xml = r#"<cib><configuration><crm_config/>
  <nodes><node id="1" uname="n1"/></nodes>
  <resources>
    <primitive id="a" class="ocf" provider="heartbeat" type="Dummy"/>
    <primitive id="b" class="ocf" provider="heartbeat" type="Dummy"/>
    <primitive id="c" class="ocf" provider="heartbeat" type="Dummy"/>
    <primitive id="d" class="ocf" provider="heartbeat" type="Dummy"/>
  </resources>
  <constraints>
    <rsc_order id="one" first="a" then="b" kind="Serialize" symmetrical="true"/>
    <rsc_order id="set" kind="Serialize">
      <resource_set id="s"><resource_ref id="b"/><resource_ref id="c"/><resource_ref id="d"/></resource_set>
    </rsc_order>
  </constraints></configuration></cib>"#;
        let i = import(xml).expect("import");
        assert!(i.unsupported.is_empty(), "{:?}", i.unsupported);
        assert!(
            i.ignored
                .iter()
                .any(|n| n == "one: symmetrical=true on a Serialize order"),
            "{:?}",
            i.ignored
        );
        let l = loaded(&i);
        let ords: Vec<(&str, &str, warden_engine::OrderKind, bool)> = l
            .engine
            .orders()
            .iter()
            .map(|o| (o.first.as_str(), o.then.as_str(), o.kind, o.symmetric))
            .collect();
        let s = warden_engine::OrderKind::Serialize;
        assert_eq!(
            ords,
            [
                ("a", "b", s, false),
                ("b", "c", s, false),
                ("c", "d", s, false)
            ]
        );
    }

    #[test]
    fn shutdown_locks_come_from_the_history_and_from_a_node_shutting_down() {
        // Pacemaker's shutdown-lock: b stopped on n2 for its shutdown (`shutdown-lock` on its
        // history); a runs on n1, which is shutting down, so it is locked there from then.
        let xml = r#"<cib><configuration><crm_config><cluster_property_set id="o">
  <nvpair id="s" name="stonith-enabled" value="false"/>
  <nvpair id="l" name="shutdown-lock" value="true"/></cluster_property_set></crm_config>
  <nodes><node id="1" uname="n1"/><node id="2" uname="n2"/><node id="3" uname="n3"/></nodes>
  <resources><primitive id="a" class="ocf" provider="heartbeat" type="Dummy"/>
    <primitive id="b" class="ocf" provider="heartbeat" type="Dummy"/></resources>
  <constraints/></configuration>
  <status>
  <node_state id="1" uname="n1" in_ccm="true" crmd="online" join="member" expected="member">
    <transient_attributes id="1"><instance_attributes id="t1">
      <nvpair id="t1s" name="shutdown" value="1578347951"/></instance_attributes></transient_attributes>
    <lrm id="1"><lrm_resources><lrm_resource id="a" class="ocf" provider="heartbeat" type="Dummy">
      <lrm_rsc_op id="a_start_0" operation="start" call-id="2" rc-code="0" op-status="0" interval="0"/>
    </lrm_resource></lrm_resources></lrm>
  </node_state>
  <node_state id="2" uname="n2" in_ccm="false" crmd="offline" join="down" expected="down">
    <lrm id="2"><lrm_resources><lrm_resource id="b" class="ocf" provider="heartbeat" type="Dummy" shutdown-lock="1578347927">
      <lrm_rsc_op id="b_stop_0" operation="stop" call-id="3" rc-code="0" op-status="0" interval="0"/>
    </lrm_resource></lrm_resources></lrm>
  </node_state>
  <node_state id="3" uname="n3" in_ccm="true" crmd="online" join="member" expected="member"/>
  </status></cib>"#;
        let i = import(xml).expect("import");
        assert!(i.unsupported.is_empty(), "{:?}", i.unsupported);
        let state = i.state.clone().expect("a state");
        let lock = |id: &str| state.resources[id].lock.clone().map(|l| (l.node, l.since));
        assert_eq!(
            lock("a"),
            Some(("n1".into(), Time::from_millis(1_578_347_951_000)))
        );
        assert_eq!(
            lock("b"),
            Some(("n2".into(), Time::from_millis(1_578_347_927_000)))
        );
        let l = loaded(&i);
        let t = warden_engine::schedule(&l.engine, &state, i.time);
        let lines: Vec<String> = t.summary.iter().map(ToString::to_string).collect();
        assert_eq!(lines, ["Stop a ( n1 ) due to node availability"]);
    }

    #[test]
    fn a_node_down_that_still_runs_a_managed_resource_is_fenced() {
        // Pacemaker's bug-5186-partial-migrate and bug-cl-5212: n2 left cleanly (expected
        // down) but its history says b and a still run there: with fencing, it is unclean
        // for the first of them in its history; without a managed one there, it is clean.
        let cib = |managed: &str| {
            format!(
                r#"<cib><configuration><crm_config><cluster_property_set id="o">
  <nvpair id="s" name="stonith-enabled" value="true"/></cluster_property_set></crm_config>
  <nodes><node id="1" uname="n1"/><node id="2" uname="n2"/></nodes>
  <resources><primitive id="f" class="stonith" type="fence_xvm"/>
    <primitive id="a" class="ocf" provider="heartbeat" type="Dummy"><meta_attributes id="am">
      <nvpair id="am1" name="is-managed" value="{managed}"/></meta_attributes></primitive>
    <primitive id="b" class="ocf" provider="heartbeat" type="Dummy"><meta_attributes id="bm">
      <nvpair id="bm1" name="is-managed" value="{managed}"/></meta_attributes></primitive>
  </resources><constraints/></configuration>
  <status><node_state id="1" uname="n1" in_ccm="true" crmd="online" join="member" expected="member"/>
  <node_state id="2" uname="n2" in_ccm="false" crmd="offline" join="down" expected="down">
    <lrm id="2"><lrm_resources>
    <lrm_resource id="b" class="ocf" provider="heartbeat" type="Dummy">
      <lrm_rsc_op id="b1" operation="start" call-id="3" rc-code="0" op-status="0" interval="0"/>
    </lrm_resource>
    <lrm_resource id="a" class="ocf" provider="heartbeat" type="Dummy">
      <lrm_rsc_op id="a1" operation="start" call-id="2" rc-code="0" op-status="0" interval="0"/>
    </lrm_resource></lrm_resources></lrm>
  </node_state></status></cib>"#
            )
        };
        let unclean = |xml: &str| {
            let state = import(xml).expect("import").state.expect("a state");
            state.nodes["n2"].unclean.clone()
        };
        assert_eq!(
            unclean(&cib("true")).as_deref(),
            Some("b is thought to be active there")
        );
        assert_eq!(unclean(&cib("false")), None);
    }

    #[test]
    fn fencing_options_are_carried_over_or_named() {
        // stonith-action=off (or its old name poweroff): every agent device powers off, and
        // the summary says so; startup-fencing=false: a node never seen is clean; what Warden
        // does not do (shutdown-lock) is named.
        let cib = |options: &str| {
            format!(
                r#"<cib><configuration><crm_config><cluster_property_set id="o">{options}</cluster_property_set></crm_config>
  <nodes><node id="1" uname="n1"/><node id="2" uname="n2"/></nodes>
  <resources><primitive id="f" class="stonith" type="fence_xvm"/></resources><constraints/></configuration>
  <status><node_state id="1" uname="n1" in_ccm="true" crmd="online" join="member" expected="member"/></status></cib>"#
            )
        };
        let off = import(&cib(
            r#"<nvpair id="a" name="stonith-action" value="poweroff"/>"#,
        ))
        .expect("import");
        assert!(off.unsupported.is_empty(), "{:?}", off.unsupported);
        let l = loaded(&off);
        assert_eq!(l.engine.fence_action("n2"), "off");
        let state = off.state.expect("a state");
        assert_eq!(
            state.nodes["n2"].unclean.as_deref(),
            Some("node is unclean")
        );
        let t = warden_engine::schedule(&l.engine, &state, warden_engine::Time::from_millis(0));
        assert!(
            t.summary
                .iter()
                .any(|c| c.to_string() == "Fence (off) n2 'node is unclean'"),
            "{:?}",
            t.summary
        );
        let seen = import(&cib(
            r#"<nvpair id="b" name="startup-fencing" value="false"/>"#,
        ))
        .expect("import");
        assert_eq!(seen.state.expect("a state").nodes["n2"].unclean, None);
        let lock = import(&cib(r#"<nvpair id="c" name="shutdown-lock" value="true"/>
               <nvpair id="d" name="shutdown-lock-limit" value="5m"/>"#))
        .expect("import");
        assert!(lock.unsupported.is_empty(), "{:?}", lock.unsupported);
        let cluster = loaded(&lock).engine.cluster.clone();
        assert!(cluster.shutdown_lock);
        assert_eq!(
            cluster.shutdown_lock_limit,
            Some(std::time::Duration::from_secs(300))
        );
    }

    #[test]
    fn a_fence_devices_meta_attributes_are_carried_over_or_named() {
        // Pacemaker's load-stopped-loop: target-role=Stopped disables a stonith resource
        // (not placed, not used to fence); migration-threshold and the like carry over; one
        // a device has no key for is named, not dropped.
        let xml = r#"<cib><configuration><crm_config><cluster_property_set id="o">
  <nvpair id="s" name="stonith-enabled" value="true"/></cluster_property_set></crm_config>
  <nodes><node id="1" uname="n1"/><node id="2" uname="n2"/></nodes>
  <resources>
  <primitive id="off" class="stonith" type="fence_xvm"><meta_attributes id="m1">
    <nvpair id="m1a" name="target-role" value="Stopped"/>
    <nvpair id="m1b" name="migration-threshold" value="3"/>
    <nvpair id="m1c" name="failure-timeout" value="2min"/></meta_attributes></primitive>
  <primitive id="on" class="stonith" type="fence_xvm"><meta_attributes id="m2">
    <nvpair id="m2a" name="target-role" value="Started"/>
    <nvpair id="m2b" name="multiple-active" value="block"/></meta_attributes></primitive>
  </resources><constraints/></configuration>
  <status><node_state id="1" uname="n1" in_ccm="true" crmd="online" join="member" expected="member"/>
  <node_state id="2" uname="n2" in_ccm="true" crmd="online" join="member" expected="member"/></status></cib>"#;
        let i = import(xml).expect("import");
        assert_eq!(i.unsupported, ["on: meta multiple-active (a fence device)"]);
        let l = loaded(&i);
        let off = l.engine.resource("off").expect("off");
        assert_eq!(off.meta.target_role, warden_engine::TargetRole::Stopped);
        assert_eq!(off.meta.migration_threshold, 3);
        assert_eq!(
            off.meta.failure_timeout,
            Some(std::time::Duration::from_secs(120))
        );
        let names: Vec<&str> = l
            .engine
            .fence_devices_for("n1")
            .map(|d| d.name.as_str())
            .collect();
        assert_eq!(names, ["on"]);
    }

    #[test]
    fn the_status_of_a_remote_node_still_connected_is_named() {
        // Pacemaker's whitebox-orphan-ms: lxc1's connection (an orphaned ocf:pacemaker:remote
        // still running on n1) keeps the guest node and what its history says runs there;
        // Warden has no remote nodes, so that is named. A remote node's status with nothing
        // standing for it any more (no-quorum-demote's removed bundle) is ignored, as
        // Pacemaker ignores it.
        let cib = |connection: &str| {
            format!(
                r#"<cib><configuration><crm_config><cluster_property_set id="o">
  <nvpair id="s" name="stonith-enabled" value="false"/></cluster_property_set></crm_config>
  <nodes><node id="1" uname="n1"/></nodes><resources/><constraints/></configuration>
  <status><node_state id="1" uname="n1" in_ccm="true" crmd="online" join="member" expected="member">
    <lrm id="1"><lrm_resources>{connection}</lrm_resources></lrm></node_state>
  <node_state remote_node="true" id="lxc1" uname="lxc1"><lrm id="lxc1"><lrm_resources>
    <lrm_resource id="db" class="ocf" provider="pacemaker" type="Stateful">
      <lrm_rsc_op id="db_last_0" operation="promote" call-id="5" rc-code="0" op-status="0" interval="0"/>
    </lrm_resource></lrm_resources></lrm></node_state></status></cib>"#
            )
        };
        let connected = import(&cib(
            r#"<lrm_resource id="lxc1" class="ocf" provider="pacemaker" type="remote">
      <lrm_rsc_op id="lxc1_last_0" operation="start" call-id="3" rc-code="0" op-status="0" interval="0"/>
    </lrm_resource>"#,
        ))
        .expect("import");
        assert!(
            connected
                .unsupported
                .contains(&"node_state lxc1 (remote nodes)".to_owned()),
            "{:?}",
            connected.unsupported
        );
        let gone = import(&cib("")).expect("import");
        assert!(gone.unsupported.is_empty(), "{:?}", gone.unsupported);
    }

    #[test]
    fn a_history_written_by_another_agent_is_cleaned_up() {
        // Pacemaker's bug-5025-4: r's start failed on n1 (fail count INFINITY) when r was
        // another agent; the agent changed since, so Pacemaker cleans it up there and r may
        // start on n1 again. The same history by the same agent keeps its failure.
        let cib = |recorded: &str| {
            format!(
                r#"<cib><configuration><crm_config><cluster_property_set id="o">
  <nvpair id="s" name="stonith-enabled" value="false"/></cluster_property_set></crm_config>
  <nodes><node id="1" uname="n1"/></nodes>
  <resources><primitive id="r" class="ocf" provider="pacemaker" type="Dummy"/></resources>
  <constraints/></configuration>
  <status><node_state id="1" uname="n1" in_ccm="true" crmd="online" join="member" expected="member">
    <transient_attributes id="1"><instance_attributes id="a">
      <nvpair id="f" name="fail-count-r" value="INFINITY"/></instance_attributes></transient_attributes>
    <lrm id="1"><lrm_resources><lrm_resource id="r" class="ocf" provider="pacemaker" type="{recorded}">
      <lrm_rsc_op id="r_last_0" operation="stop" call-id="3" rc-code="0" op-status="0" interval="0" crm_feature_set="3.0.7"/>
      <lrm_rsc_op id="r_last_failure_0" operation="start" call-id="2" rc-code="1" op-status="4" interval="0" crm_feature_set="3.0.7"/>
    </lrm_resource></lrm_resources></lrm></node_state></status></cib>"#
            )
        };
        let failures = |recorded: &str| {
            let i = import(&cib(recorded)).expect("import");
            let state = i.state.expect("a state");
            state.resources["r"].nodes["n1"]
                .fail_counts
                .values()
                .sum::<u32>()
        };
        assert_eq!(failures("remote"), 0);
        assert!(failures("Dummy") > 0);
    }

    #[test]
    fn a_clones_instance_attributes_are_its_primitives_parameters() {
        // Pacemaker's probe-2: a clone's instance attributes reach its primitive's agent and
        // are in the digest of what it was started with: a history whose digest holds them
        // (own=2 shared=1) runs the definition now, one without them another.
        let cib = |digest: &str| {
            format!(
                r#"<cib><configuration><crm_config><cluster_property_set id="o">
  <nvpair id="s" name="stonith-enabled" value="false"/></cluster_property_set></crm_config>
  <nodes><node id="1" uname="n1"/></nodes>
  <resources><clone id="cl"><instance_attributes id="ci"><nvpair id="ci1" name="shared" value="1"/></instance_attributes>
    <primitive id="c" class="ocf" provider="heartbeat" type="Dummy">
      <instance_attributes id="pi"><nvpair id="pi1" name="own" value="2"/></instance_attributes></primitive>
  </clone></resources><constraints/></configuration>
  <status><node_state id="1" uname="n1" in_ccm="true" crmd="online" join="member" expected="member">
    <lrm id="1"><lrm_resources><lrm_resource id="c:0" class="ocf" provider="heartbeat" type="Dummy">
      <lrm_rsc_op id="c_start_0" operation="start" call-id="2" rc-code="0" op-status="0" interval="0" crm_feature_set="3.16.1" op-digest="{digest}"/>
    </lrm_resource></lrm_resources></lrm></node_state></status></cib>"#
            )
        };
        let summary = |digest: &str| {
            let i = import(&cib(digest)).expect("import");
            let l = loaded(&i);
            let params = &l.engine.resource("c").expect("c").params;
            assert!(
                params.contains(&("shared".to_owned(), "1".to_owned())),
                "{params:?}"
            );
            let state = i.state.expect("a state");
            warden_engine::schedule(&l.engine, &state, warden_engine::Time::from_millis(0))
                .summary
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            summary("83356ea61d76ee806a81deabd1c3a2bb"),
            Vec::<String>::new()
        );
        assert_eq!(
            summary("d67ef860fd19d9b589fa9cde9c7f8014"),
            ["Restart c ( n1 ) due to resource definition change"]
        );
    }

    #[test]
    fn restart_type_after_an_optional_order_on_its_group_is_named() {
        // Pacemaker's bug-1572-1: `restart-type=restart` on a group restarts it after an
        // optional order's `first` restarts; Warden's optional orders do not, so it is named,
        // whether the order names the group or the member. Without such an order it changes
        // nothing and is only noted.
        let cib = |then: &str| {
            format!(
                r#"<cib><configuration><crm_config><cluster_property_set id="o">
  <nvpair id="s" name="stonith-enabled" value="false"/></cluster_property_set></crm_config>
  <nodes><node id="1" uname="n1"/></nodes>
  <resources><primitive id="x" class="ocf" provider="heartbeat" type="Dummy"/>
    <group id="g"><meta_attributes id="gm"><nvpair id="gm1" name="restart-type" value="restart"/></meta_attributes>
      <primitive id="a" class="ocf" provider="heartbeat" type="Dummy"/>
      <primitive id="b" class="ocf" provider="heartbeat" type="Dummy"/></group></resources>
  <constraints>{then}</constraints></configuration><status/></cib>"#
            )
        };
        for then in ["g", "a"] {
            let i = import(&cib(&format!(
                r#"<rsc_order id="o1" first="x" then="{then}" kind="Optional"/>"#
            )))
            .expect("import");
            assert!(
                i.unsupported.contains(&"a: meta restart-type".to_owned()),
                "{then}: {:?}",
                i.unsupported
            );
        }
        let none = import(&cib("")).expect("import");
        assert!(none.unsupported.is_empty(), "{:?}", none.unsupported);
    }

    #[test]
    fn maintenance_mode_and_stop_all_resources_override_every_resource() {
        let cib = |options: &str| {
            format!(
                r#"<cib><configuration><crm_config><cluster_property_set id="o">
  <nvpair id="s" name="stonith-enabled" value="false"/>{options}</cluster_property_set></crm_config>
  <nodes><node id="1" uname="n1"/></nodes>
  <resources><primitive id="a" class="ocf" provider="heartbeat" type="Dummy"><meta_attributes id="am">
    <nvpair id="am1" name="target-role" value="Started"/><nvpair id="am2" name="maintenance" value="false"/>
  </meta_attributes></primitive></resources><constraints/></configuration></cib>"#
            )
        };
        let meta = |options: &str| {
            let i = import(&cib(options)).expect("import");
            assert!(i.unsupported.is_empty(), "{:?}", i.unsupported);
            loaded(&i).engine.resource("a").expect("a").meta.clone()
        };
        let m = meta(r#"<nvpair id="m" name="maintenance-mode" value="true"/>"#);
        assert!(m.maintenance);
        let m = meta(r#"<nvpair id="x" name="stop-all-resources" value="true"/>"#);
        assert_eq!(m.target_role, warden_engine::TargetRole::Stopped);
        let m = meta("");
        assert!(!m.maintenance);
        assert_eq!(m.target_role, warden_engine::TargetRole::Started);
    }

    #[test]
    fn a_transient_standby_overrides_the_nodes_own() {
        // Pacemaker's standby case: n1 is configured standby=off, its status says standby=on
        // (`crm_standby -l reboot`); n2 the other way round.
        let xml = r#"<cib><configuration><crm_config><cluster_property_set id="o">
  <nvpair id="s" name="stonith-enabled" value="false"/></cluster_property_set></crm_config>
  <nodes><node id="1" uname="n1"><instance_attributes id="i1"><nvpair id="a1" name="standby" value="off"/></instance_attributes></node>
  <node id="2" uname="n2"><instance_attributes id="i2"><nvpair id="a2" name="standby" value="on"/></instance_attributes></node></nodes>
  <resources/><constraints/></configuration>
  <status><node_state id="1" uname="n1" in_ccm="true" crmd="online" join="member" expected="member">
    <transient_attributes id="t1"><instance_attributes id="ti1"><nvpair id="b1" name="standby" value="on"/></instance_attributes></transient_attributes></node_state>
  <node_state id="2" uname="n2" in_ccm="true" crmd="online" join="member" expected="member">
    <transient_attributes id="t2"><instance_attributes id="ti2"><nvpair id="b2" name="standby" value="off"/></instance_attributes></transient_attributes></node_state>
  </status></cib>"#;
        let state = import(xml).expect("import").state.expect("a state");
        assert!(state.nodes["n1"].standby);
        assert!(!state.nodes["n2"].standby);
        assert!(
            state
                .node_attributes
                .get("n1")
                .is_none_or(|a| !a.contains_key("standby"))
        );
    }

    #[test]
    fn an_operation_and_its_failure_under_one_call_id_go_by_their_change_times() {
        // Pacemaker's monitor-recovery: the monitor's record (rc 0) and its last failure (rc 1)
        // carry call id 44; the success changed later, so the failure is past.
        let op = |id: &str, rc: &str, changed: &str| {
            format!(
                r#"<lrm_rsc_op id="{id}" operation="monitor" call-id="44" rc-code="{rc}" op-status="0" interval="15000" last-rc-change="{changed}"/>"#
            )
        };
        let cib = |first: String, second: String| {
            format!(
                r#"<cib><configuration><crm_config><cluster_property_set id="o">
  <nvpair id="s" name="stonith-enabled" value="false"/></cluster_property_set></crm_config>
  <nodes><node id="1" uname="n1"/></nodes>
  <resources><primitive id="A" class="ocf" provider="heartbeat" type="Dummy">
    <operations><op id="m" name="monitor" interval="15s" on-fail="block"/></operations>
  </primitive></resources><constraints/></configuration>
  <status><node_state id="1" uname="n1" in_ccm="true" crmd="online" join="member" expected="member">
    <lrm id="1"><lrm_resources><lrm_resource id="A" class="ocf" provider="heartbeat" type="Dummy">
      <lrm_rsc_op id="A_start_0" operation="start" call-id="41" rc-code="0" op-status="0" interval="0"/>
      {first}{second}
    </lrm_resource></lrm_resources></lrm>
  </node_state></status></cib>"#
            )
        };
        let failed = |xml: String| {
            let state = import(&xml).expect("import").state.expect("a state");
            state.resources["A"].nodes["n1"].failed
        };
        let success = || op("A_monitor_15000", "0", "1367910303");
        let failure = |t: &str| op("A_last_failure_0", "1", t);
        // Written either way round, the later change wins.
        assert!(!failed(cib(success(), failure("1367909258"))));
        assert!(!failed(cib(failure("1367909258"), success())));
        assert!(failed(cib(success(), failure("1367919999"))));
    }

    #[test]
    fn fail_counts_come_only_from_the_nodes_attributes() {
        // Pacemaker's clone-interleave-3: the start failed (the history says so) but no
        // fail-count attribute was written: nothing counts, so it recovers in place.
        let xml = r#"<cib><configuration><crm_config><cluster_property_set id="o">
  <nvpair id="s" name="stonith-enabled" value="false"/></cluster_property_set></crm_config>
  <nodes><node id="1" uname="n1"/></nodes>
  <resources><primitive id="A" class="ocf" provider="heartbeat" type="Dummy"/></resources>
  <constraints/></configuration>
  <status><node_state id="1" uname="n1" in_ccm="true" crmd="online" join="member" expected="member">
    <lrm id="1"><lrm_resources><lrm_resource id="A" class="ocf" provider="heartbeat" type="Dummy">
      <lrm_rsc_op id="A_last_0" operation="start" call-id="1" rc-code="1" op-status="0" interval="0"/>
    </lrm_resource></lrm_resources></lrm>
  </node_state></status></cib>"#;
        let i = import(xml).expect("import");
        let l = loaded(&i);
        let state = i.state.expect("a state");
        let on = &state.resources["A"].nodes["n1"];
        assert!(on.failed, "{on:?}");
        assert!(on.fail_counts.is_empty(), "{on:?}");
        // A primitive's copy has no instance number.
        assert_eq!(on.instance, None);
        let t = warden_engine::schedule(&l.engine, &state, warden_engine::Time::from_millis(0));
        let lines: Vec<String> = t.summary.iter().map(ToString::to_string).collect();
        assert_eq!(lines, ["Recover A ( n1 )"]);
    }

    #[test]
    fn two_copies_of_a_clone_active_on_one_node_are_named() {
        // Pacemaker's clone-anon-dup: c:0 and c:1 both run on n1; Warden runs one copy per
        // node, so the import says what it could not carry over.
        let history = |i: u32| {
            format!(
                r#"<lrm_resource id="c:{i}" class="ocf" provider="heartbeat" type="Dummy">
      <lrm_rsc_op id="c{i}_start_0" operation="start" call-id="{i}" rc-code="0" op-status="0" interval="0"/>
    </lrm_resource>"#
            )
        };
        let xml = format!(
            r#"<cib><configuration><crm_config><cluster_property_set id="o">
  <nvpair id="s" name="stonith-enabled" value="false"/></cluster_property_set></crm_config>
  <nodes><node id="1" uname="n1"/></nodes>
  <resources><clone id="cl"><primitive id="c" class="ocf" provider="heartbeat" type="Dummy"/>
  </clone></resources><constraints/></configuration>
  <status><node_state id="1" uname="n1" in_ccm="true" crmd="online" join="member" expected="member">
    <lrm id="1"><lrm_resources>{}{}</lrm_resources></lrm>
  </node_state></status></cib>"#,
            history(0),
            history(1)
        );
        let i = import(&xml).expect("import");
        assert_eq!(
            i.unsupported,
            ["c: several copies active on n1 (one copy per node)"]
        );
    }

    #[test]
    fn an_instances_promotion_score_goes_by_the_history_that_runs_it() {
        // Pacemaker's bug-1765: each node carries master-db:0 and master-db:1; the copy on
        // a node takes the one named as its history there (`db:0` on n1, `db:1` on n2).
        let node = |id: &str, n: &str, history: &str, zero: &str, one: &str| {
            format!(
                r#"<node_state id="{id}" uname="{n}" in_ccm="true" crmd="online" join="member" expected="member">
    <transient_attributes id="t{id}"><instance_attributes id="i{id}">
      <nvpair id="a{id}" name="master-db:0" value="{zero}"/><nvpair id="b{id}" name="master-db:1" value="{one}"/>
    </instance_attributes></transient_attributes>
    <lrm id="{id}"><lrm_resources><lrm_resource id="{history}" class="ocf" provider="heartbeat" type="Stateful">
      <lrm_rsc_op id="s{id}" operation="start" call-id="1" rc-code="0" op-status="0" interval="0"/>
    </lrm_resource></lrm_resources></lrm></node_state>"#
            )
        };
        let xml = format!(
            r#"<cib><configuration><crm_config><cluster_property_set id="o">
  <nvpair id="s" name="stonith-enabled" value="false"/></cluster_property_set></crm_config>
  <nodes><node id="1" uname="n1"/><node id="2" uname="n2"/></nodes>
  <resources><master id="ms"><primitive id="db" class="ocf" provider="heartbeat" type="Stateful"/></master></resources>
  <constraints/></configuration><status>{}{}</status></cib>"#,
            node("1", "n1", "db:0", "75", "10"),
            node("2", "n2", "db:1", "20", "5")
        );
        let state = import(&xml).expect("import").state.expect("a state");
        let scores = &state.resources["db"].promotion_scores;
        assert_eq!(scores["n1"], warden_engine::Score::new(75));
        assert_eq!(scores["n2"], warden_engine::Score::new(5));
    }

    #[test]
    fn fencing_enabled_without_a_device_manages_nothing() {
        // Pacemaker's stop-failure-no-fencing: stonith-enabled (the default) and no stonith
        // resource: every resource is left unmanaged; with stonith-enabled=false, managed.
        let cib = |options: &str| {
            format!(
                r#"<cib><configuration><crm_config><cluster_property_set id="o">{options}</cluster_property_set></crm_config>
  <nodes><node id="1" uname="n1"/></nodes>
  <resources><primitive id="a" class="ocf" provider="heartbeat" type="Dummy"/>
  <clone id="cl"><primitive id="c" class="ocf" provider="heartbeat" type="Dummy"/></clone>
  </resources><constraints/></configuration></cib>"#
            )
        };
        let managed = |xml: &str| -> Vec<bool> {
            let l = loaded(&import(xml).expect("import"));
            ["a", "c"]
                .iter()
                .map(|id| l.engine.resource(id).expect("resource").meta.is_managed)
                .collect()
        };
        assert_eq!(managed(&cib("")), [false, false]);
        assert_eq!(
            managed(&cib(
                r#"<nvpair id="s" name="stonith-enabled" value="false"/>"#
            )),
            [true, true]
        );
    }

    #[test]
    fn a_colocation_set_ordering_listed_colocates_each_member_with_the_next() {
        // Pacemaker's ordered-set-natural: `ordering="listed"` reverses the chain of a
        // colocation set (the default, `group`, colocates each with the one before).
        let constraint = |sets: &str| {
            format!(
                r#"<cib><configuration><crm_config/>
  <nodes><node id="1" uname="n1"/></nodes>
  <resources>
    <primitive id="a" class="ocf" provider="heartbeat" type="Dummy"/>
    <primitive id="b" class="ocf" provider="heartbeat" type="Dummy"/>
    <primitive id="c" class="ocf" provider="heartbeat" type="Dummy"/>
  </resources>
  <constraints><rsc_colocation id="col" score="INFINITY">{sets}</rsc_colocation>
  </constraints></configuration></cib>"#
            )
        };
        let refs = r#"<resource_ref id="a"/><resource_ref id="b"/><resource_ref id="c"/>"#;
        let i = import(&constraint(&format!(
            r#"<resource_set id="s" ordering="listed">{refs}</resource_set>"#
        )))
        .expect("import");
        assert!(i.unsupported.is_empty(), "{:?}", i.unsupported);
        let l = loaded(&i);
        let cols = colocation_pairs(&l.engine);
        assert_eq!(cols, [("b", "c"), ("a", "b")]);
        // Of several sets, not carried over (named).
        let i = import(&constraint(&format!(
            r#"<resource_set id="s" ordering="listed">{refs}</resource_set><resource_set id="t"><resource_ref id="a"/></resource_set>"#
        )))
        .expect("import");
        assert_eq!(
            i.unsupported,
            ["rsc_colocation col (ordering=listed in one of several sets)"]
        );
    }

    #[test]
    fn templates_and_tags_expand_as_pacemaker_expands_them() {
        let xml = r#"<cib><configuration><crm_config/>
  <nodes><node id="1" uname="n1"/><node id="2" uname="n2"/></nodes>
  <resources>
    <template id="tpl" class="ocf" provider="heartbeat" type="Dummy">
      <instance_attributes id="tpl-ia"><nvpair id="t1" name="state" value="/tmp/t"/></instance_attributes>
      <meta_attributes id="tpl-ma"><nvpair id="t2" name="target-role" value="Stopped"/></meta_attributes>
      <utilization id="tpl-u"><nvpair id="t3" name="cpu" value="2"/></utilization>
      <operations>
        <op id="t4" name="monitor" interval="10s" timeout="20s"/>
        <op id="t5" name="start" interval="0" timeout="30s"/>
      </operations>
    </template>
    <primitive id="a" template="tpl"/>
    <primitive id="b" template="tpl">
      <meta_attributes id="b-ma"><nvpair id="b1" name="target-role" value="Started"/></meta_attributes>
      <operations><op id="b2" name="monitor" interval="10s" timeout="5s"/></operations>
    </primitive>
    <primitive id="c" class="ocf" provider="heartbeat" type="Dummy"/>
    <primitive id="d" class="ocf" provider="heartbeat" type="Dummy"/>
  </resources>
  <constraints>
    <rsc_location id="loc" rsc="tpl" node="n2" score="50"/>
    <rsc_colocation id="col" rsc="c" with-rsc="tpl" score="INFINITY"/>
    <rsc_order id="ord" first="tpl" then="tagged"/>
    <rsc_colocation id="two" rsc="tpl" with-rsc="tagged" score="INFINITY"/>
  </constraints>
  <tags><tag id="tagged"><obj_ref id="c"/><obj_ref id="d"/></tag></tags>
  </configuration></cib>"#;
        let i = import(xml).expect("import");
        assert!(i.unsupported.is_empty(), "{:?}", i.unsupported);
        // Pacemaker ignores a colocation of two tags, and says so.
        assert!(
            i.ignored.iter().any(|w| w.contains("rsc_colocation two")),
            "{:?}",
            i.ignored
        );
        let l = loaded(&i);
        let e = &l.engine;
        let a = e.resource("a").expect("a");
        let b = e.resource("b").expect("b");
        // The template's agent, parameters, utilization and operations; its own win.
        assert!(matches!(&a.agent, warden_engine::Agent::Ocf { kind, .. } if kind == "Dummy"));
        assert_eq!(a.params, [("state".to_owned(), "/tmp/t".to_owned())]);
        assert_eq!(a.utilization, [("cpu".to_owned(), 2)]);
        assert_eq!(a.meta.target_role, warden_engine::TargetRole::Stopped);
        assert_eq!(b.meta.target_role, warden_engine::TargetRole::Started);
        let monitor = |r: &warden_engine::ResourceSpec| {
            r.ops
                .iter()
                .filter(|o| o.name == warden_engine::OpName::Monitor)
                .map(|o| o.timeout.as_secs())
                .collect::<Vec<_>>()
        };
        assert_eq!(monitor(a), [20]);
        assert_eq!(monitor(b), [5]);
        assert!(
            b.ops
                .iter()
                .any(|o| o.name == warden_engine::OpName::Start && o.timeout.as_secs() == 30)
        );
        // A constraint on the template binds each resource made from it; one on a tag each
        // resource tagged.
        let locs: Vec<&str> = e.locations().iter().map(|l| l.resource.as_str()).collect();
        assert_eq!(locs, ["a", "b"]);
        let cols = colocation_pairs(e);
        assert_eq!(cols, [("c", "a"), ("c", "b")]);
        let ords: Vec<(&str, &str)> = e
            .orders()
            .iter()
            .map(|o| (o.first.as_str(), o.then.as_str()))
            .collect();
        assert_eq!(ords, [("a", "c"), ("a", "d"), ("b", "c"), ("b", "d")]);
    }

    #[test]
    fn what_pacemaker_resets_or_never_applies_is_read_as_pacemaker_reads_it() {
        let xml = r#"<cib><configuration><crm_config><cluster_property_set id="c">
    <nvpair id="c1" name="stonith-enabled" value="false"/></cluster_property_set></crm_config>
  <nodes><node id="1" uname="n1"/></nodes>
  <resources>
    <primitive id="a" class="ocf" provider="heartbeat" type="Dummy">
      <operations>
        <op id="a1" name="stop" interval="0" on-fail="stop"/>
        <op id="a2" name="monitor" interval="10s" on-fail="fence"/>
      </operations>
    </primitive>
    <primitive id="s" class="lsb" type="asterisk-11.0.1"/>
    <primitive id="u" class="systemd" type="named.socket"/>
    <clone id="c-clone"><primitive id="c" class="ocf" provider="heartbeat" type="Dummy"/></clone>
    <primitive id="p" class="ocf" provider="heartbeat" type="Dummy"/>
    <clone id="ms"><meta_attributes id="ms-m"><nvpair id="ms-m1" name="promotable" value="true"/>
      </meta_attributes><primitive id="db" class="ocf" provider="pacemaker" type="Stateful"/></clone>
  </resources>
  <constraints>
    <rsc_colocation id="x1" rsc="a" with-rsc="c-clone" with-rsc-role="Promoted" score="INFINITY"/>
    <rsc_colocation id="x2" rsc="s" with-rsc="p" with-rsc-role="Promoted" score="INFINITY"/>
    <rsc_colocation id="x3" rsc="u" with-rsc="c-clone" with-rsc-role="Slave" score="-INFINITY"/>
    <rsc_colocation id="x4" rsc="p" with-rsc="ms" with-rsc-role="Unpromoted" score="100"/>
  </constraints></configuration></cib>"#;
        let i = import(xml).expect("import");
        assert!(i.unsupported.is_empty(), "{:?}", i.unsupported);
        let l = loaded(&i);
        let e = &l.engine;
        let a = e.resource("a").expect("a");
        // A stop may not stop on failure (the default then); fence without fencing is stop.
        let on_fail = |name| a.ops.iter().find(|o| o.name == name).map(|o| o.on_fail);
        assert_eq!(on_fail(warden_engine::OpName::Stop), Some(None));
        assert_eq!(
            on_fail(warden_engine::OpName::Monitor),
            Some(Some(warden_engine::OnFail::Stop))
        );
        assert_eq!(
            i.ignored.iter().filter(|w| w.contains("on-fail")).count(),
            2,
            "{:?}",
            i.ignored
        );
        // A script's name with dots is a script; a unit's type is kept.
        let unit = |id| match &e.resource(id).expect(id).agent {
            warden_engine::Agent::Systemd { unit } => unit.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(unit("s"), "asterisk-11.0.1.service");
        assert_eq!(unit("u"), "named.socket");
        // A plain clone has no role: the colocation is by where it runs. A resource of one
        // copy is never promoted: with its promoted role is nothing; nor is anything but a
        // promotable clone's copy ever unpromoted. With a promotable clone's unpromoted
        // copies is kept.
        let cols: Vec<(&str, &str, warden_engine::OpRole)> = e
            .colocations()
            .iter()
            .map(|c| (c.resource.as_str(), c.with.as_str(), c.with_role))
            .collect();
        assert_eq!(
            cols,
            [
                ("a", "c", warden_engine::OpRole::Started),
                ("p", "db", warden_engine::OpRole::Unpromoted)
            ]
        );
        for gone in [
            "a colocation of s with p by a promoted role",
            "a colocation of u with c by an unpromoted role",
        ] {
            assert!(
                i.ignored.iter().any(|w| w.contains(gone)),
                "{:?}",
                i.ignored
            );
        }
        // The clone as a whole keeps its name, for reasons.
        let name = e
            .resource("c")
            .and_then(|r| r.copies.as_ref())
            .and_then(|c| c.name.clone());
        assert_eq!(name.as_deref(), Some("c-clone"));
    }

    #[test]
    fn a_clone_of_a_group_becomes_a_group_of_clones() {
        let xml = r#"<cib><configuration><crm_config/>
  <nodes><node id="1" uname="n1"/><node id="2" uname="n2"/></nodes>
  <resources>
    <clone id="stack-clone">
      <meta_attributes id="m"><nvpair id="m1" name="clone-max" value="1"/></meta_attributes>
      <group id="stack">
        <primitive id="fs" class="ocf" provider="heartbeat" type="Dummy"/>
        <primitive id="app" class="ocf" provider="heartbeat" type="Dummy"/>
      </group>
    </clone>
    <primitive id="ip" class="ocf" provider="heartbeat" type="Dummy"/>
  </resources>
  <constraints>
    <rsc_colocation id="c" rsc="ip" with-rsc="stack-clone" score="INFINITY"/>
  </constraints></configuration></cib>"#;
        let i = import(xml).expect("import");
        assert!(i.unsupported.is_empty(), "{:?}", i.unsupported);
        let l = loaded(&i);
        let e = &l.engine;
        for id in ["fs", "app"] {
            let copies = e.resource(id).and_then(|r| r.copies.as_ref());
            assert_eq!(copies.and_then(|c| c.clone_max), Some(1), "{id}");
        }
        assert_eq!(e.groups()[0].resources, ["fs", "app"]);
        // The group is named as the clone, as Pacemaker's reasons call it.
        assert_eq!(e.groups()[0].id, "stack-clone");
        // Naming the clone names the group: with it (INFINITY) is with its first member,
        // where Pacemaker places a copy of the group (bug-suse-707150).
        let cols = colocation_pairs(e);
        assert_eq!(cols, [("ip", "fs")]);
    }

    #[test]
    fn groups_of_fence_devices_are_placed_and_go_with_fencing() {
        let xml = |enabled: &str| {
            format!(
                r#"<cib><configuration><crm_config><cluster_property_set id="c">
    <nvpair id="c1" name="stonith-enabled" value="{enabled}"/></cluster_property_set></crm_config>
  <nodes><node id="1" uname="n1"/><node id="2" uname="n2"/></nodes>
  <resources>
    <group id="fencing">
      <primitive id="f1" class="stonith" type="fence_dummy"/>
      <primitive id="f2" class="stonith" type="fence_dummy"/>
    </group>
    <primitive id="a" class="ocf" provider="heartbeat" type="Dummy"/>
  </resources>
  <constraints>
    <rsc_location id="l1" rsc="fencing" node="n2" score="100"/>
    <rsc_location id="l2" rsc="a" node="ghost" score="100"/>
    <rsc_order id="o1" first="fencing" then="a"/>
  </constraints></configuration></cib>"#
            )
        };
        let i = import(&xml("true")).expect("import");
        assert!(i.unsupported.is_empty(), "{:?}", i.unsupported);
        // Pacemaker ignores a location on a node it does not know; so does the import, and
        // says so.
        assert!(
            i.ignored.iter().any(|w| w.contains("node ghost")),
            "{:?}",
            i.ignored
        );
        let l = loaded(&i);
        assert_eq!(l.engine.groups()[0].resources, ["f1", "f2"]);
        let locs: Vec<(&str, &str)> = l
            .engine
            .locations()
            .iter()
            .map(|l| (l.resource.as_str(), l.node.as_str()))
            .collect();
        assert_eq!(locs, [("f1", "n2"), ("f2", "n2")]);
        // Without fencing there is no device, and nothing that names one or their group.
        let i = import(&xml("false")).expect("import");
        let l = loaded(&i);
        assert!(l.engine.groups().is_empty());
        assert!(l.engine.locations().is_empty());
        assert!(l.engine.orders().is_empty());
    }

    #[test]
    fn node_health_and_a_users_own_meta_attributes_are_read_as_pacemaker_reads_them() {
        let xml = r##"<cib><configuration><crm_config><cluster_property_set id="c">
    <nvpair id="c1" name="node-health-strategy" value="progressive"/>
    <nvpair id="c2" name="node-health-yellow" value="-50"/></cluster_property_set></crm_config>
  <nodes><node id="1" uname="n1"><instance_attributes id="i">
    <nvpair id="i1" name="#health-ipmi" value="yellow"/></instance_attributes></node></nodes>
  <resources>
    <primitive id="a" class="ocf" provider="heartbeat" type="Dummy">
      <meta_attributes id="m"><nvpair id="m1" name="allow-unhealthy-nodes" value="true"/>
        <nvpair id="m2" name="comment" value="the old one"/></meta_attributes>
    </primitive>
  </resources>
  <constraints/></configuration></cib>"##;
        let i = import(xml).expect("import");
        assert!(i.unsupported.is_empty(), "{:?}", i.unsupported);
        assert!(
            i.ignored.iter().any(|w| w.contains("meta comment")),
            "{:?}",
            i.ignored
        );
        let l = loaded(&i);
        let health = l.engine.cluster.node_health;
        assert_eq!(
            health.strategy,
            warden_engine::NodeHealthStrategy::Progressive
        );
        assert_eq!(health.yellow, warden_engine::Score::new(-50));
        assert_eq!(
            l.engine.node_attributes(0),
            [("#health-ipmi".to_owned(), "yellow".to_owned())]
        );
        assert!(
            l.engine
                .resource("a")
                .expect("a")
                .meta
                .allow_unhealthy_nodes
        );
    }

    #[test]
    fn resource_discovery_is_carried_over_on_a_node_and_named_on_a_rule() {
        let xml = r#"<cib><configuration><crm_config/>
  <nodes><node id="1" uname="n1"/><node id="2" uname="n2"/></nodes>
  <resources><primitive id="a" class="ocf" provider="heartbeat" type="Dummy"/></resources>
  <constraints>
    <rsc_location id="l1" rsc="a" node="n2" score="0" resource-discovery="exclusive"/>
    <rsc_location id="l2" rsc="a" score="10" resource-discovery="never">
      <rule id="r" score="10"><expression id="e" attribute="x" operation="defined"/></rule>
    </rsc_location>
  </constraints></configuration></cib>"#;
        let i = import(xml).expect("import");
        assert_eq!(
            i.unsupported,
            ["rsc_location l2 (resource-discovery with rules)"]
        );
        let l = loaded(&i);
        assert_eq!(
            l.engine.locations()[0].discovery,
            warden_engine::Discovery::Exclusive
        );
        assert!(l.engine.discovers(0, 1) && !l.engine.discovers(0, 0));
    }

    #[test]
    fn a_resource_the_status_knows_and_the_configuration_lost_is_stopped_as_an_orphan() {
        let xml = |stop_orphans: &str| {
            format!(
                r#"<cib><configuration><crm_config><cluster_property_set id="o">
  <nvpair id="s" name="stonith-enabled" value="false"/>
  <nvpair id="p" name="stop-orphan-resources" value="{stop_orphans}"/>
  </cluster_property_set></crm_config>
  <nodes><node id="1" uname="n1"/></nodes><resources/><constraints/></configuration>
  <status><node_state id="1" uname="n1" in_ccm="true" crmd="online" join="member" expected="member">
    <lrm id="1"><lrm_resources><lrm_resource id="old" class="ocf" provider="heartbeat" type="Dummy">
      <lrm_rsc_op id="a" operation="start" call-id="1" rc-code="0" op-status="0" interval="0"/>
    </lrm_resource></lrm_resources></lrm>
  </node_state></status></cib>"#
            )
        };
        let plan = |stop_orphans: &str| -> Vec<String> {
            let i = import(&xml(stop_orphans)).expect("import");
            assert_eq!(i.orphans.len(), 1);
            let l = crate::config::parse(&i.toml, "t.toml", || "n1".into()).expect("config");
            let config = l.engine.with_extra_resources(i.orphans).expect("orphans");
            let state = i.state.expect("state");
            warden_engine::schedule(&config, &state, i.time)
                .summary
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert_eq!(plan("true"), ["Stop old ( n1 ) due to node availability"]);
        // Pacemaker leaves orphans alone when told to.
        assert!(plan("false").is_empty());
    }

    #[test]
    fn utilization_and_the_placement_strategy_are_carried_over() {
        let xml = r#"<cib><configuration><crm_config><cluster_property_set id="o">
  <nvpair id="p" name="placement-strategy" value="balanced"/></cluster_property_set></crm_config>
  <nodes><node id="1" uname="n1"><utilization id="u1">
    <nvpair id="c" name="cpu" value="4"/><nvpair id="m" name="memory" value="x"/>
  </utilization></node></nodes>
  <resources><primitive id="r" class="ocf" provider="heartbeat" type="Dummy">
    <utilization id="u2"><nvpair id="rc" name="cpu" value="2"/></utilization>
  </primitive></resources><constraints/></configuration></cib>"#;
        let i = import(xml).expect("import");
        let l = loaded(&i);
        assert_eq!(
            l.engine.cluster.placement_strategy,
            warden_engine::PlacementStrategy::Balanced
        );
        // Pacemaker takes what is not a number as 0.
        assert_eq!(
            l.engine.node_capacity(0),
            [("cpu".to_owned(), 4), ("memory".to_owned(), 0)]
        );
        let r = l.engine.resource("r").expect("r");
        assert_eq!(r.utilization, [("cpu".to_owned(), 2)]);
    }

    #[test]
    fn a_failed_stop_in_the_history_asks_for_the_fence_of_its_node() {
        // Pacemaker's rec-rsc-5: with fencing, the failed stop fences the node.
        let xml = r#"<cib><configuration><crm_config><cluster_property_set id="o">
  <nvpair id="s" name="stonith-enabled" value="true"/></cluster_property_set></crm_config>
  <nodes><node id="1" uname="n1"/><node id="2" uname="n2"/></nodes>
  <resources><primitive id="st" class="stonith" type="fence_dummy"/>
    <primitive id="A" class="ocf" provider="heartbeat" type="Dummy"/></resources>
  <constraints/></configuration>
  <status>
  <node_state id="1" uname="n1" in_ccm="true" crmd="online" join="member" expected="member"/>
  <node_state id="2" uname="n2" in_ccm="true" crmd="online" join="member" expected="member">
    <lrm id="2"><lrm_resources><lrm_resource id="A" class="ocf" provider="heartbeat" type="Dummy">
      <lrm_rsc_op id="A_stop_0" operation="stop" call-id="2" rc-code="1" op-status="4" interval="0"/>
    </lrm_resource></lrm_resources></lrm>
  </node_state></status></cib>"#;
        let i = import(xml).expect("import");
        let state = i.state.expect("a state");
        assert_eq!(state.nodes["n2"].unclean.as_deref(), Some("A failed there"));
    }

    #[test]
    fn execution_statuses_read_as_pacemaker_reads_them() {
        // op-status 5: a hard error (not on this node again); 6: fatal (nowhere); 7: not
        // installed here (hard).
        let xml = |status: &str| {
            format!(
                r#"<cib><configuration><crm_config><cluster_property_set id="o">
  <nvpair id="s" name="stonith-enabled" value="false"/></cluster_property_set></crm_config>
  <nodes><node id="1" uname="n1"/></nodes>
  <resources><primitive id="A" class="ocf" provider="heartbeat" type="Dummy"/></resources>
  <constraints/></configuration>
  <status><node_state id="1" uname="n1" in_ccm="true" crmd="online" join="member" expected="member">
    <lrm id="1"><lrm_resources><lrm_resource id="A" class="ocf" provider="heartbeat" type="Dummy">
      <lrm_rsc_op id="A_start_0" operation="start" call-id="2" rc-code="1" op-status="{status}" interval="0"/>
    </lrm_resource></lrm_resources></lrm>
  </node_state></status></cib>"#
            )
        };
        let on = |status: &str| {
            let i = import(&xml(status)).expect("import");
            i.state.expect("state").resources["A"].nodes["n1"].clone()
        };
        let (hard, fatal, missing, soft) = (on("5"), on("6"), on("7"), on("4"));
        assert!(hard.hard_ban && !hard.fatal, "{hard:?}");
        assert!(fatal.fatal, "{fatal:?}");
        assert!(missing.hard_ban && !missing.fatal, "{missing:?}");
        // The executor found no agent: its start ran nothing, and no timeout expires it.
        assert!(
            missing.not_installed && !missing.role.is_active(),
            "{missing:?}"
        );
        assert!(!hard.not_installed && hard.role.is_active(), "{hard:?}");
        assert!(!soft.hard_ban && !soft.fatal, "{soft:?}");
    }

    #[test]
    fn a_rule_on_a_node_id_names_the_node() {
        let xml = r##"<cib><configuration><crm_config/>
  <nodes><node id="uuid1" uname="node1"/><node id="uuid2" uname="node2"/></nodes>
  <resources><primitive id="A" class="ocf" provider="heartbeat" type="Dummy"/></resources>
  <constraints><rsc_location id="l" rsc="A"><rule id="r" score="1">
    <expression id="e" attribute="#id" operation="eq" value="uuid2"/>
  </rule></rsc_location></constraints></configuration></cib>"##;
        let i = import(xml).expect("import");
        assert!(i.toml.contains("rule = \"#uname eq node2\""), "{}", i.toml);
    }

    #[test]
    fn the_history_of_a_node_that_is_down_counts_only_with_fencing() {
        // Pacemaker's rec-node-3: n1 is down; its failed stop counts only when fencing is on.
        let xml = |fencing: &str| {
            format!(
                r#"<cib><configuration><crm_config><cluster_property_set id="o">
  <nvpair id="s" name="stonith-enabled" value="{fencing}"/></cluster_property_set></crm_config>
  <nodes><node id="1" uname="n1"/><node id="2" uname="n2"/></nodes>
  <resources><primitive id="st" class="stonith" type="fence_dummy"/>
    <primitive id="A" class="ocf" provider="heartbeat" type="Dummy"/></resources>
  <constraints/></configuration>
  <status><node_state id="1" uname="n1" in_ccm="false" join="member" expected="member">
    <lrm id="1"><lrm_resources><lrm_resource id="A" class="ocf" provider="heartbeat" type="Dummy">
      <lrm_rsc_op id="A_stop_0" operation="stop" call-id="1" rc-code="6" op-status="4" interval="0"/>
    </lrm_resource></lrm_resources></lrm>
  </node_state>
  <node_state id="2" uname="n2" in_ccm="true" crmd="online" join="member" expected="member"/>
  </status></cib>"#
            )
        };
        let fatal = |fencing: &str| {
            let state = import(&xml(fencing)).expect("import").state.expect("state");
            state
                .resource("A")
                .and_then(|rs| rs.nodes.get("n1"))
                .is_some_and(|on| on.fatal)
        };
        assert!(!fatal("false"));
        assert!(fatal("true"));
    }

    #[test]
    fn defaults_with_rules_on_the_agent_and_the_operation_apply_to_what_they_match() {
        use std::time::Duration;
        // Pacemaker's op-defaults and rsc-defaults: of the blocks that match, the later one
        // wins (a higher `score` first); a block without a rule is Warden's default for all,
        // and where it wins, a ruled one earlier gives nothing.
        let xml = r#"<cib><configuration><crm_config><cluster_property_set id="o">
  <nvpair id="s" name="stonith-enabled" value="false"/></cluster_property_set></crm_config>
  <nodes><node id="1" uname="n1"/></nodes>
  <resources>
    <primitive id="d" class="ocf" provider="pacemaker" type="Dummy">
      <operations><op id="d-m" name="monitor" interval="60s"/></operations></primitive>
    <primitive id="ip" class="ocf" provider="heartbeat" type="IPaddr2">
      <operations><op id="ip-m" name="monitor" interval="10s"/>
        <op id="ip-s" name="start" interval="0" timeout="30s"/></operations></primitive>
    <primitive id="own" class="ocf" provider="pacemaker" type="Dummy">
      <meta_attributes id="own-m"><nvpair id="own-m1" name="is-managed" value="true"/></meta_attributes>
    </primitive>
  </resources>
  <rsc_defaults>
    <meta_attributes id="unmanaged"><rule id="u-r" score="INFINITY">
      <rsc_expression id="u-e" class="ocf" provider="pacemaker" type="Dummy"/></rule>
      <nvpair id="u1" name="is-managed" value="false"/>
      <nvpair id="u2" name="priority" value="3"/></meta_attributes>
    <meta_attributes id="all"><nvpair id="a1" name="priority" value="1"/></meta_attributes>
    <meta_attributes id="ip-stopped" score="10"><rule id="s-r" boolean-op="or">
      <rsc_expression id="s-e" type="IPaddr2"/><rsc_expression id="s-f" type="nothing"/></rule>
      <nvpair id="s1" name="target-role" value="Stopped"/></meta_attributes>
  </rsc_defaults>
  <op_defaults>
    <meta_attributes id="op-all"><nvpair id="o0" name="timeout" value="5s"/></meta_attributes>
    <meta_attributes id="op-dummy"><rule id="od-r" score="INFINITY">
      <rsc_expression id="od-e" type="Dummy"/></rule>
      <nvpair id="o1" name="timeout" value="6s"/></meta_attributes>
    <meta_attributes id="op-monitor"><rule id="om-r" score="INFINITY">
      <op_expression id="om-e" name="monitor"/></rule>
      <nvpair id="o2" name="timeout" value="7s"/></meta_attributes>
    <meta_attributes id="op-10s"><rule id="ot-r" score="INFINITY">
      <rsc_expression id="ot-e" class="ocf" provider="heartbeat" type="IPaddr2"/>
      <op_expression id="ot-f" name="monitor" interval="10s"/></rule>
      <nvpair id="o3" name="timeout" value="8s"/></meta_attributes>
    <meta_attributes id="op-date"><rule id="dt-r" score="INFINITY">
      <date_expression id="dt-e" operation="gt" start="2020-01-01"/></rule>
      <nvpair id="o4" name="timeout" value="9s"/></meta_attributes>
  </op_defaults>
  <constraints/></configuration></cib>"#;
        let i = import(xml).expect("import");
        assert_eq!(
            i.unsupported,
            ["op_defaults: meta_attributes op-date: date_expression (rules)"]
        );
        let l = loaded(&i);
        let spec = |id: &str| l.engine.resource(id).expect(id).clone();
        let timeout = |id: &str, name: OpName, secs: u64| {
            spec(id)
                .op(name, Duration::from_secs(secs))
                .map(|o| o.timeout)
        };
        let (d, ip, own) = (spec("d"), spec("ip"), spec("own"));
        assert!(!d.meta.is_managed);
        assert!(own.meta.is_managed, "its own meta attribute wins");
        // The block without a rule comes later: its priority wins over the ruled one's.
        assert_eq!((d.meta.priority, ip.meta.priority), (1, 1));
        assert_eq!(ip.meta.target_role, warden_engine::TargetRole::Stopped);
        assert_eq!(d.meta.target_role, warden_engine::TargetRole::Started);
        assert_eq!(
            timeout("d", OpName::Monitor, 60),
            Some(Duration::from_secs(7))
        );
        assert_eq!(timeout("d", OpName::Start, 0), Some(Duration::from_secs(6)));
        assert_eq!(timeout("d", OpName::Stop, 0), Some(Duration::from_secs(6)));
        assert_eq!(
            timeout("ip", OpName::Monitor, 10),
            Some(Duration::from_secs(8))
        );
        assert_eq!(
            timeout("ip", OpName::Start, 0),
            Some(Duration::from_secs(30))
        );
        // Where no ruled block wins, the file's `op_defaults` applies.
        assert_eq!(timeout("ip", OpName::Stop, 0), None);
        let stop = warden_engine::OpKey::new(OpName::Stop, Duration::ZERO);
        assert_eq!(ip.timeout(stop), Duration::from_secs(5));
    }

    #[test]
    fn a_value_of_default_unsets_the_attribute() {
        let xml = r##"<primitive id="r"><meta_attributes id="m">
  <nvpair id="a" name="target-role" value="Stopped"/>
  <nvpair id="b" name="target-role" value="#default"/>
  <nvpair id="c" name="priority" value="3"/>
</meta_attributes></primitive>"##;
        let doc = Document::parse(xml).expect("xml");
        let mut skip = Vec::new();
        let pairs = nvpairs(doc.root_element(), "meta_attributes", "r", &mut skip);
        assert_eq!(pairs, [("priority".to_owned(), "3".to_owned())]);
        assert!(skip.is_empty(), "{skip:?}");
    }

    #[test]
    fn durations_and_scores_read_as_pacemaker_writes_them() {
        assert_eq!(millis("10s"), Some(10_000));
        assert_eq!(millis("10"), Some(10_000));
        assert_eq!(millis("1500ms"), Some(1500));
        assert_eq!(millis("2min"), Some(120_000));
        assert_eq!(millis("x"), None);
        // ISO 8601, as Pacemaker's intervals case writes them.
        assert_eq!(millis("P30S"), Some(30_000));
        assert_eq!(millis("PT1M30S"), Some(90_000));
        assert_eq!(millis("P1DT2H"), Some(93_600_000));
        assert_eq!(millis("P1M"), Some(30 * 86_400_000));
        assert_eq!(millis("P"), None);
        assert_eq!(millis("P5"), None);
        assert_eq!(score_value("+INFINITY"), Value::String("INFINITY".into()));
        assert_eq!(score_value("-infinity"), Value::String("-INFINITY".into()));
        assert_eq!(score_value("50"), Value::Integer(50));
    }

    const SIMPLE: &str = r#"<cib crm_feature_set="3.16.2" execution-date="1700000000">
  <configuration>
    <crm_config><cluster_property_set id="o">
      <nvpair id="a" name="stonith-enabled" value="false"/>
      <nvpair id="b" name="no-quorum-policy" value="ignore"/>
    </cluster_property_set></crm_config>
    <nodes><node id="1" uname="node1"/><node id="2" uname="node2"/></nodes>
    <resources>
      <primitive id="rsc1" class="ocf" provider="heartbeat" type="Dummy">
        <operations><op id="m" name="monitor" interval="10s"/></operations>
      </primitive>
      <clone id="web-clone"><primitive id="web" class="ocf" provider="heartbeat" type="apache"/></clone>
      <bundle id="b"/>
    </resources>
    <constraints>
      <rsc_location id="l1" rsc="rsc1" node="node2" score="100"/>
      <rsc_ticket id="t1" rsc="rsc1" ticket="T"/>
    </constraints>
  </configuration>
  <status>
    <tickets><ticket_state id="T" granted="true" standby="false"/></tickets>
    <node_state id="1" uname="node1" in_ccm="true" crmd="online" join="member" expected="member">
      <transient_attributes id="1"><instance_attributes id="s">
        <nvpair id="f" name="fail-count-rsc1#monitor_10000" value="2"/>
      </instance_attributes></transient_attributes>
      <lrm id="1"><lrm_resources><lrm_resource id="rsc1" type="Dummy" class="ocf" provider="heartbeat">
        <lrm_rsc_op id="r1" operation="start" call-id="2" rc-code="0" op-status="0" interval="0" last-rc-change="1699999000"/>
        <lrm_rsc_op id="r2" operation="monitor" call-id="3" rc-code="7" op-status="0" interval="10000" last-rc-change="1699999900"/>
      </lrm_resource></lrm_resources></lrm>
    </node_state>
    <node_state id="2" uname="node2" in_ccm="true" crmd="online" join="member" expected="member"/>
  </status>
</cib>"#;

    #[test]
    fn a_cib_becomes_a_configuration_a_state_and_a_list_of_what_is_not_carried() {
        let i = import(SIMPLE).expect("import");
        assert!(
            i.toml.contains("[[resource]]") && i.toml.contains("id = \"rsc1\""),
            "{}",
            i.toml
        );
        assert!(
            i.toml.contains("no_quorum_policy = \"ignore\""),
            "{}",
            i.toml
        );
        let loaded = crate::config::parse(&i.toml, "t.toml", || "node1".into())
            .unwrap_or_else(|e| panic!("{e}\n{}", i.toml));
        assert_eq!(loaded.engine.resources().len(), 2);
        let web = loaded
            .engine
            .resource("web")
            .expect("the clone's primitive");
        assert!(web.is_clone() && !web.is_promotable(), "{web:?}");
        assert_eq!(web.meta.resource_stickiness.value(), 1, "a clone sticks");
        assert_eq!(loaded.engine.locations().len(), 1);
        let t = &loaded.engine.tickets()[0];
        assert_eq!((t.ticket.as_str(), t.resource.as_str()), ("T", "rsc1"));
        assert_eq!(t.loss_policy, warden_engine::LossPolicy::Stop);
        assert_eq!(i.unsupported, vec!["bundle b (bundles)".to_owned()]);
        assert_eq!(i.time, Time::from_millis(1_700_000_000_000));
        let state = i.state.expect("state");
        assert!(state.ticket_ok("T"), "{:?}", state.tickets);
        let on = state.on_node("rsc1", "node1");
        assert!(on.failed, "the monitor's rc 7 is a failure: {on:?}");
        assert_eq!(
            on.fail_counts.get(&OpKey {
                name: OpName::Monitor,
                interval_ms: 10_000
            }),
            Some(&2),
            "the count comes from the node's attribute"
        );
        assert!(state.nodes.get("node2").is_some_and(|n| n.online));
    }

    #[test]
    fn membership_follows_pacemakers_reading() {
        let doc = |attrs: &str| format!("<node_state uname=\"n\" {attrs}/>");
        // (fencing, attributes, (online, unclean, pending)). Without fencing, as
        // `determine_online_status_no_fencing`: up only with its controller up and joined;
        // unclean when expected up without its controller.
        let cases = [
            (
                true,
                "in_ccm=\"true\" crmd=\"online\" join=\"member\" expected=\"member\"",
                (true, None, false),
            ),
            (
                true,
                "in_ccm=\"false\" crmd=\"offline\" join=\"down\" expected=\"down\"",
                (false, None, false),
            ),
            (
                true,
                "in_ccm=\"false\" crmd=\"offline\" join=\"member\" expected=\"member\"",
                (false, Some("peer is no longer part of the cluster"), false),
            ),
            (
                true,
                "in_ccm=\"true\" crmd=\"offline\" join=\"member\" expected=\"member\"",
                (true, Some("peer process is no longer available"), false),
            ),
            (
                true,
                "in_ccm=\"true\" crmd=\"online\" join=\"pending\" expected=\"member\"",
                (true, None, true),
            ),
            (
                true,
                "crmd=\"online\"",
                (false, Some("peer has not been seen by the cluster"), false),
            ),
            (
                false,
                "in_ccm=\"true\" crmd=\"online\" join=\"member\" expected=\"member\"",
                (true, None, false),
            ),
            (
                false,
                "in_ccm=\"true\" crmd=\"online\" join=\"pending\" expected=\"member\"",
                (false, None, false),
            ),
            (
                false,
                "in_ccm=\"true\" join=\"member\" expected=\"member\"",
                (false, Some("peer is unexpectedly down"), false),
            ),
            (
                false,
                "in_ccm=\"true\" join=\"member\" expected=\"down\"",
                (false, None, false),
            ),
        ];
        for (fencing, attrs, (online, unclean, pending)) in cases {
            let text = doc(attrs);
            let d = Document::parse(&text).expect("xml");
            let got = membership_of(d.root_element(), &BTreeMap::new(), fencing);
            assert_eq!(
                got,
                (online, unclean.map(str::to_owned), pending),
                "{attrs} (fencing {fencing})"
            );
        }
    }
}
