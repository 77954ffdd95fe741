//! The configuration file: TOML read with positions, checked completely (every problem is
//! reported with `file:line:col`, not only the first), and converted into the engine's
//! [`warden_engine::Config`].
//!
//! Three stages, none of which touches the machine: each section's reader (one file per
//! section; [`table`] records the keys it takes and reports the rest) checks shape and values;
//! validation checks what sections say of each other (references, roles, fencing, the cluster's
//! timing budget); lowering builds the engine's configuration. What needs the machine (TLS
//! files, agents' meta-data, programs, users) comes after, in the shell: [`prepare`] for every
//! command that runs the file, [`machine`] for `check-config`, both reporting at the places the
//! reader kept ([`Places`]).

mod api;
pub use api::{ApiSettings, EXPOSED as API_EXPOSED};
mod cluster;
mod constraints;
mod listeners;
pub mod machine;
mod nodes;
mod resources;
mod table;
mod upstreams;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::de::DeTable;
use warden_engine::{Config, NoQuorumPolicy};

use crate::diag::{Diagnostic, Diagnostics, FileErrors, line_col};
use table::{Reader, Section, Span, suggest};

/// A loaded configuration: the engine's part and the daemon's.
#[derive(Debug)]
pub struct Loaded {
    pub engine: Config,
    /// Upstreams whose peers are health-checked.
    pub upstreams: Vec<crate::check::Upstream>,
    /// Resources whose recurring monitor is a health check: (resource, what to check, how).
    pub health_monitors: Vec<HealthMonitor>,
    /// Failover proxy listeners.
    pub listeners: Vec<crate::proxy::ListenerSpec>,
    /// Upstreams that take their primary from a resource (`from_resource`).
    pub follows: Vec<crate::follow::Follow>,
    pub data_dir: PathBuf,
    pub api: ApiSettings,
    /// `[cluster.etcd]`: several machines coordinating through etcd (None: one machine,
    /// embedded store).
    pub etcd: Option<crate::cluster::EtcdSettings>,
    /// Where each node's API and listeners are reached (`[[node]] address`).
    pub addresses: HashMap<String, std::net::IpAddr>,
    /// Where things the shell checks on the machine are written.
    pub places: Places,
}

/// What the readers found that the shell checks on the machine, with the spans of its places.
#[derive(Default)]
pub(crate) struct Found {
    agents: Vec<AgentUse<Span>>,
    /// Programs the file runs.
    programs: Vec<(String, Span)>,
    users: Vec<(String, Span)>,
    groups: Vec<(String, Span)>,
    /// `https` checks: the upstream, and where to report a TLS problem.
    tls: Vec<(String, Span)>,
    /// `class = "systemd"` resources: the unit, and where the class is written.
    systemd_units: Vec<(String, Span)>,
}

/// A place in the file: 1-based line and column.
pub type Pos = (usize, usize);

/// An ocf resource's agent as the file names it, with places (`P`: a span while reading, a
/// [`Pos`] after).
#[derive(Clone, Debug)]
pub struct AgentUse<P> {
    pub resource: String,
    pub at: P,
    pub provider: String,
    pub kind: String,
    pub kind_at: P,
    pub params: Vec<(String, P)>,
}

/// Where the things are written that only the machine can check.
#[derive(Clone, Debug, Default)]
pub struct Places {
    pub agents: Vec<AgentUse<Pos>>,
    /// Every program the file runs (processes, monitors, promote/demote, fence devices, exec
    /// checks).
    pub programs: Vec<(String, Pos)>,
    pub users: Vec<(String, Pos)>,
    pub groups: Vec<(String, Pos)>,
    /// `https` checks: the upstream, and where to report its TLS files.
    pub tls: Vec<(String, Pos)>,
    /// `class = "systemd"` resources: the unit, and where the class is written.
    pub systemd_units: Vec<(String, Pos)>,
    /// The second `[[node]]`, when there is one.
    pub second_node: Option<Pos>,
    /// `[api] listen`, when given.
    pub api_listen: Option<Pos>,
    /// `[api] tls_cert`, when given.
    pub api_tls: Option<Pos>,
}

pub const DEFAULT_DATA_DIR: &str = "/var/lib/warden";
pub const DEFAULT_API_LISTEN: &str = "127.0.0.1:7946";
/// A resource monitored by a health check (`monitor = { http = "http://127.0.0.1:8080/" }`): its
/// recurring monitor at `check.interval` fails (rc 1) when the peer turns DOWN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthMonitor {
    pub resource: String,
    pub peer: crate::check::Peer,
    pub check: crate::check::CheckSpec,
    /// After a start, failures do not count until the check has passed once or this has
    /// passed: a service may take a while to come up.
    pub grace: Duration,
}

/// The recurring monitor a `process` resource gets when it configures none.
pub const IMPLICIT_MONITOR: Duration = Duration::from_secs(10);

/// A complete, commented configuration: every key with its default (`warden config example`).
pub const EXAMPLE: &str = include_str!("example.toml");

/// Reads and checks a configuration file, then what its TLS files say ([`prepare`]).
pub fn load(path: &Path) -> anyhow::Result<Loaded> {
    let src = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let file = path.display().to_string();
    let loaded = parse(&src, &file, local_node_name)?;
    prepare(&loaded, &file)?;
    Ok(loaded)
}

/// The data dir a configuration file names (`[cluster] data_dir`), read without checking the
/// rest of the file: the CLI finds a running daemon through it even while the file, being
/// edited, has errors. A file that is not even TOML is scanned line by line.
pub fn data_dir_of(path: &Path) -> anyhow::Result<PathBuf> {
    let src = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    Ok(PathBuf::from(data_dir_in(&src)))
}

fn data_dir_in(src: &str) -> String {
    let default = || DEFAULT_DATA_DIR.to_owned();
    if let Ok(t) = src.parse::<toml::Table>() {
        return t
            .get("cluster")
            .and_then(|c| c.get("data_dir"))
            .and_then(|d| d.as_str())
            .map_or_else(default, str::to_owned);
    }
    let mut in_cluster = false;
    for line in src.lines().map(str::trim) {
        if line.starts_with('[') {
            in_cluster = line.trim_start_matches('[').trim_end_matches(']').trim() == "cluster";
            continue;
        }
        if !in_cluster {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            if k.trim() == "data_dir" {
                let v = v.trim();
                let quoted = v
                    .strip_prefix('"')
                    .and_then(|v| v.split_once('"'))
                    .or_else(|| v.strip_prefix('\'').and_then(|v| v.split_once('\'')));
                if let Some((dir, _)) = quoted {
                    return dir.to_owned();
                }
            }
        }
    }
    default()
}

/// The node name used when the file defines no `[[node]]`: this machine's host name.
pub fn local_node_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// The shell's part of loading: builds the TLS clients of `https` checks (reading their CA
/// files) once, so a bad file is reported at its place; the checks then use them.
pub fn prepare(loaded: &Loaded, file: &str) -> Result<(), FileErrors> {
    let mut list = Vec::new();
    for u in &loaded.upstreams {
        let crate::check::CheckKind::Http { tls: Some(tls), .. } = &u.check.kind else {
            continue;
        };
        if let Err(e) = tls.client() {
            let (line, col) = loaded
                .places
                .tls
                .iter()
                .find(|(name, _)| *name == u.name)
                .map_or((1, 1), |(_, p)| *p);
            list.push(Diagnostic {
                line,
                col,
                message: e.to_owned(),
            });
        }
    }
    if let Some(files) = &loaded.api.tls {
        if let Err(e) = crate::api_tls::load(&files.cert, &files.key) {
            let (line, col) = loaded.places.api_tls.unwrap_or((1, 1));
            list.push(Diagnostic {
                line,
                col,
                message: e,
            });
        }
    }
    if list.is_empty() {
        Ok(())
    } else {
        Err(FileErrors {
            file: file.to_owned(),
            list,
        })
    }
}

/// A checked reference to a node or resource, kept with its place for later resolution.
pub(crate) struct Ref {
    name: String,
    span: Span,
}

const TOP: Section = Section::new("top level", "the top level");

/// Parses configuration text. `file` names it in messages; `local` names the one node of a
/// file without `[[node]]`. Does no I/O.
pub fn parse(src: &str, file: &str, local: impl FnOnce() -> String) -> Result<Loaded, FileErrors> {
    let (loaded, list, _) = read(src, local);
    match loaded {
        Some(l) if list.is_empty() => Ok(l),
        _ => Err(FileErrors {
            file: file.to_owned(),
            list,
        }),
    }
}

type Read = (
    Option<Loaded>,
    Vec<Diagnostic>,
    BTreeMap<&'static str, Vec<&'static str>>,
);

fn read(src: &str, local: impl FnOnce() -> String) -> Read {
    let mut d = Diagnostics::new(src);
    let (root, errors) = DeTable::parse_recoverable(src);
    for e in &errors {
        d.error(
            e.span().unwrap_or(0..0),
            e.message().trim_end_matches('\n').to_owned(),
        );
    }
    let mut r = Reader::new(d);
    let loaded = r.section(root.get_ref(), 0..0, TOP, |r, top| root_of(r, top, local));
    let list = r.d.finish();
    (loaded, list, r.keys)
}

/// The keys the reader accepts, by section (as docs/config.md titles them): what reading a
/// file with every section, each empty, takes.
pub fn accepted_keys() -> BTreeMap<&'static str, Vec<&'static str>> {
    const ALL: &str = "[cluster]\n[cluster.etcd]\n[api]\n[resource_defaults]\n[op_defaults]\n\
        [[node]]\n[[fence_device]]\n[[resource]]\nops = [{}]\nmonitor = {}\n\
        [[location]]\n[[ban]]\n[[group]]\n[[colocation]]\nsets = [{}]\n[[order]]\nsets = [{}]\n\
        [[ticket]]\n\
        [[upstream]]\nprimary = [{}]\n[[listener]]\nfailback = {}\n";
    read(ALL, || "here".to_owned()).2
}

fn root_of(
    r: &mut Reader<'_>,
    top: &table::Tbl<'_, '_>,
    local: impl FnOnce() -> String,
) -> Option<Loaded> {
    // Read every section.
    let cl = r.sub(top, "cluster", cluster::CLUSTER, cluster::cluster);
    let api = r.sub(top, "api", api::API, api::api);
    let nodes = nodes::nodes(r, top, local);
    let mut defaults = resources::defaults(r, top);
    let mut fencing = nodes::fence_devices(r, top);
    defaults.unfencing = fencing.devices.iter().any(|d| d.unfence);
    let mut res = resources::resources(r, top, &defaults, fencing.enabled);
    // Each fence agent device is placed on a node as a resource, as Pacemaker's stonith
    // resources are: started there by checking the device, checked again every `monitor`. A
    // command device has nothing to check and is not placed.
    for (device, placed) in fencing.devices.iter().zip(&fencing.monitors) {
        let nodes::Placement {
            monitor: interval,
            clone,
            requires,
            managed,
            meta,
            at,
        } = placed;
        if matches!(device.method, warden_engine::FenceMethod::Command(_)) {
            continue;
        }
        if res.declared.contains_key(&device.name) {
            r.d.error(
                at.clone(),
                format!(
                    "fence device {:?} has the name of a resource: a fence device is placed as a resource of its own name",
                    device.name
                ),
            );
            continue;
        }
        let mut spec = warden_engine::ResourceSpec::new(
            device.name.clone(),
            warden_engine::Agent::Fence(Box::new(device.clone())),
        );
        spec.meta = defaults.meta.clone();
        if let Some(requires) = requires {
            spec.meta.requires = *requires;
        }
        if let Some(managed) = managed {
            spec.meta.is_managed = *managed;
        }
        if device.disabled {
            spec.meta.target_role = warden_engine::TargetRole::Stopped;
        }
        if *clone {
            spec.copies = Some(warden_engine::Copies::default());
            if !defaults.stickiness_set {
                spec.meta.resource_stickiness = warden_engine::Score::new(1);
            }
        }
        for m in meta {
            match *m {
                nodes::MetaKey::MigrationThreshold(n) => spec.meta.migration_threshold = n,
                nodes::MetaKey::FailureTimeout(d) => spec.meta.failure_timeout = d,
                nodes::MetaKey::Stickiness(v) => spec.meta.resource_stickiness = v,
                nodes::MetaKey::Priority(n) => spec.meta.priority = n,
            }
        }
        let mut start = warden_engine::OpSpec::new(warden_engine::OpName::Start, Duration::ZERO);
        start.timeout = Duration::from_millis(device.timeout_ms);
        spec.ops.push(start);
        if !interval.is_zero() {
            let mut m = warden_engine::OpSpec::new(warden_engine::OpName::Monitor, *interval);
            m.timeout = Duration::from_millis(device.timeout_ms);
            spec.ops.push(m);
        }
        res.declared.insert(device.name.clone(), at.clone());
        res.specs.push(spec);
    }
    // Resources and fence devices are placed in the order the file declares them (after
    // priority), as Pacemaker places them in the CIB's order.
    res.specs
        .sort_by_key(|s| res.declared.get(&s.id).map_or(usize::MAX, |at| at.start));
    let mut cons = constraints::constraints(r, top);
    let ups = upstreams::upstreams(r, top);
    let upstream_names: Vec<&str> = ups.list.iter().map(|u| u.name.as_str()).collect();
    let listeners = listeners::listeners(r, top, &upstream_names);

    // Validate what the sections say of each other.
    if cl.etcd.is_some()
        && !fencing.enabled
        && matches!(
            cl.options.no_quorum_policy,
            NoQuorumPolicy::Freeze | NoQuorumPolicy::Ignore
        )
    {
        r.d.error(
            cl.no_quorum_policy_at.clone().unwrap_or(0..0),
            format!(
                "no_quorum_policy = \"{}\" keeps resources running on a node cut off from etcd while the other nodes recover them: with [cluster.etcd] it needs fence devices ([[fence_device]]) so the lost node is fenced first; use \"stop\" or \"demote\" otherwise",
                cl.options.no_quorum_policy
            ),
        );
    }
    let copies: std::collections::HashMap<String, Option<warden_engine::Copies>> = res
        .specs
        .iter()
        .map(|s| (s.id.clone(), s.copies.clone()))
        .collect();
    cons.validate(r, &copies);
    if !fencing.enabled {
        for span in std::mem::take(&mut cons.fence_tickets) {
            r.d.error(
                span,
                "loss_policy = \"fence\" needs fencing: add a [[fence_device]]",
            );
        }
    }
    let mut node_refs = std::mem::take(&mut fencing.node_refs);
    node_refs.append(&mut cons.node_refs);
    let mut resource_refs = std::mem::take(&mut cons.resource_refs);
    for f in &ups.follows {
        resource_refs.push(Ref {
            name: f.resource.name.clone(),
            span: f.resource.span.clone(),
        });
        node_refs.extend(f.nodes.iter().map(|n| Ref {
            name: n.name.clone(),
            span: n.span.clone(),
        }));
    }
    for n in node_refs {
        if !nodes.names.contains(&n.name) {
            let hint = suggest(&n.name, nodes.names.iter().map(String::as_str));
            r.d.error(n.span, format!("unknown node {:?}{hint}", n.name));
        }
    }
    let group_ids: HashSet<&str> = cons.groups.iter().map(|g| g.id.as_str()).collect();
    for rr in resource_refs {
        // A resource whose block has errors is reported there, not as unknown here; a
        // constraint may name a group.
        if !res.declared.contains_key(&rr.name) && !group_ids.contains(rr.name.as_str()) {
            let mut ids: Vec<&str> = res.declared.keys().map(String::as_str).collect();
            ids.sort_unstable();
            let hint = suggest(&rr.name, ids.into_iter());
            r.d.error(rr.span, format!("unknown resource {:?}{hint}", rr.name));
        }
    }
    if !r.d.is_empty() {
        return None;
    }

    // Lower.
    let unmanaged: HashSet<String> = res
        .specs
        .iter()
        .filter(|s| !s.meta.is_managed)
        .map(|s| s.id.clone())
        .collect();
    let cloned = |interleaved: bool| -> HashSet<String> {
        res.specs
            .iter()
            .filter(|s| {
                s.copies
                    .as_ref()
                    .is_some_and(|c| !interleaved || c.interleave)
            })
            .map(|s| s.id.clone())
            .collect()
    };
    cons.expand_groups(&unmanaged, &cloned(false), &cloned(true));
    let node_attributes = nodes.attributes.clone();
    let node_capacity = nodes.capacity.clone();
    let built = Config::new(
        cl.options,
        nodes.names,
        fencing.devices,
        res.specs,
        cons.locations,
    )
    .and_then(|c| c.with_constraints(cons.colocations, cons.orders, cons.groups))
    .and_then(|c| c.with_tickets(cons.tickets))
    .and_then(|c| c.with_rule_locations(cons.rule_locations))
    .map(|c| {
        c.with_node_attributes(node_attributes)
            .with_node_capacity(node_capacity)
    });
    let engine = match built {
        Ok(engine) => engine,
        Err(e) => {
            // Cycles and double group membership: at the first constraint of the file.
            r.d.error(cons.first_at.unwrap_or(0..0), e.to_string());
            return None;
        }
    };
    if let Some(e) = &cl.etcd {
        if let Err(msg) = crate::cluster::settings::check_budget(&e.timing(), &engine) {
            r.d.error(cl.etcd_at.unwrap_or(0..0), msg);
            return None;
        }
    }
    let src = r.d.src();
    let pos = |s: &Span| line_col(src, s.start);
    let named = |v: &[(String, Span)]| -> Vec<(String, Pos)> {
        v.iter().map(|(n, s)| (n.clone(), pos(s))).collect()
    };
    let found = &r.found;
    let places = Places {
        agents: found
            .agents
            .iter()
            .map(|a| AgentUse {
                resource: a.resource.clone(),
                at: pos(&a.at),
                provider: a.provider.clone(),
                kind: a.kind.clone(),
                kind_at: pos(&a.kind_at),
                params: named(&a.params),
            })
            .collect(),
        programs: named(&found.programs),
        users: named(&found.users),
        groups: named(&found.groups),
        tls: named(&found.tls),
        systemd_units: named(&found.systemd_units),
        second_node: nodes.spans.get(1).map(pos),
        api_listen: api.as_ref().and_then(|(_, at)| at.listen.as_ref()).map(pos),
        api_tls: api.as_ref().and_then(|(_, at)| at.tls.as_ref()).map(pos),
    };
    Some(Loaded {
        engine,
        upstreams: ups.list,
        health_monitors: res.health_monitors,
        listeners,
        follows: ups.follows.into_iter().map(|f| f.follow).collect(),
        data_dir: cl.data_dir,
        api: api?.0,
        etcd: cl.etcd,
        addresses: nodes.addresses,
        places,
    })
}

/// The OCF agents a configuration uses, as (provider, type), each once.
pub fn ocf_agents(config: &Config) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = config
        .resources()
        .iter()
        .filter_map(|r| match &r.agent {
            warden_engine::Agent::Ocf { provider, kind } => Some((provider.clone(), kind.clone())),
            warden_engine::Agent::Process(_)
            | warden_engine::Agent::Systemd { .. }
            | warden_engine::Agent::Fence(_) => None,
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_engine::config::DEFAULT_STOP_TIMEOUT;
    use warden_engine::{Agent, FenceAgent, FenceMethod, INFINITY_COUNT, Meta, Score};

    fn ok(src: &str) -> Loaded {
        match parse(src, "t.toml", || "here".to_owned()) {
            Ok(l) => l,
            Err(e) => panic!("{e}"),
        }
    }

    fn errors(src: &str) -> String {
        match parse(src, "t.toml", || "here".to_owned()) {
            Ok(_) => panic!("expected errors for {src}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_group_of_clones_is_a_cloned_group_and_a_mixed_one_is_refused_at_its_place() {
        let res = |id: &str, clone: bool| {
            format!(
                "[[resource]]\nid = \"{id}\"\nclass = \"ocf\"\ntype = \"Dummy\"\nclone = {clone}\n"
            )
        };
        let l = ok(&format!(
            "{}{}[[group]]\nid = \"g\"\nresources = [\"a\", \"b\"]\n",
            res("a", true),
            res("b", true)
        ));
        assert_eq!(l.engine.groups()[0].resources, ["a", "b"]);
        let e = errors(&format!(
            "{}{}[[group]]\nid = \"g\"\nresources = [\"a\", \"b\"]\n",
            res("a", true),
            res("b", false)
        ));
        assert!(
            e.contains("t.toml:12:1: error: group \"g\" mixes clones and other resources"),
            "{e}"
        );
    }

    #[test]
    fn after_an_unmanaged_member_a_groups_mandatory_colocations_bind_each_member() {
        let res = |id: &str, managed: bool| {
            format!(
                "[[resource]]\nid = \"{id}\"\nclass = \"ocf\"\ntype = \"Dummy\"\nmeta = {{ is_managed = {managed} }}\n"
            )
        };
        let cols = |b_managed: bool| {
            let l = ok(&format!(
                "{}{}{}{}[[group]]\nid = \"g\"\nresources = [\"a\", \"b\", \"c\"]\n\
                 [[colocation]]\nresource = \"g\"\nwith = \"x\"\n",
                res("a", true),
                res("b", b_managed),
                res("c", true),
                res("x", true)
            ));
            l.engine
                .colocations()
                .iter()
                .filter(|c| c.with == "x")
                .map(|c| c.resource.clone())
                .collect::<Vec<_>>()
        };
        // The first member, the rest following it through the group's own colocations.
        assert_eq!(cols(true), ["a"]);
        // b stays where it runs whatever binds it: c, after it, is bound itself (Pacemaker's
        // colocate-unmanaged-group).
        assert_eq!(cols(false), ["a", "c"]);
    }

    #[test]
    fn an_order_naming_a_group_starts_its_first_member_and_binds_the_group_whole() {
        let l = ok(
            "[[resource]]\nid = \"a\"\nclass = \"ocf\"\ntype = \"Dummy\"\n\
             [[resource]]\nid = \"b\"\nclass = \"ocf\"\ntype = \"Dummy\"\n\
             [[resource]]\nid = \"x\"\nclass = \"ocf\"\ntype = \"Dummy\"\n\
             [[resource]]\nid = \"y\"\nclass = \"ocf\"\ntype = \"Dummy\"\n\
             [[group]]\nid = \"g\"\nresources = [\"a\", \"b\"]\n\
             [[order]]\nfirst = \"x\"\nthen = \"g\"\n\
             [[order]]\nfirst = \"g\"\nthen = \"y\"\n",
        );
        let orders: Vec<(&str, &str, bool)> = l
            .engine
            .orders()
            .iter()
            .filter(|o| o.first == "x" || o.then == "y")
            .map(|o| (o.first.as_str(), o.then.as_str(), o.then_group))
            .collect();
        // `then_group`: the members migrate whatever x does (docs/pacemaker.md).
        assert_eq!(orders, [("x", "a", true), ("b", "y", false)]);
    }

    #[test]
    fn what_runs_with_a_cloned_group_goes_with_its_first_member_unless_interleaved() {
        // Pacemaker's bug-suse-707150 and bug-lf-2422: a copy of a cloned group is placed
        // where its first member is; an interleaved clone pairs with the whole copy beside it.
        let res = |id: &str, meta: &str| {
            format!("[[resource]]\nid = \"{id}\"\nclass = \"ocf\"\ntype = \"Dummy\"\n{meta}")
        };
        let resources = [
            res("a", "clone = true\n"),
            res("b", "clone = true\n"),
            res("vm", ""),
            res("x", "clone = true\nmeta = { interleave = true }\n"),
            res("y", ""),
            res("c", ""),
            res("d", ""),
        ]
        .concat();
        let l = ok(&format!(
            "{resources}[[group]]\nid = \"g\"\nresources = [\"a\", \"b\"]\n\
             [[colocation]]\nresource = \"vm\"\nwith = \"g\"\n\
             [[colocation]]\nresource = \"x\"\nwith = \"g\"\n\
             [[colocation]]\nresource = \"y\"\nwith = \"p\"\n\
             [[group]]\nid = \"p\"\nresources = [\"c\", \"d\"]\n"
        ));
        let with = |r: &str| {
            l.engine
                .colocations()
                .iter()
                .find(|c| c.resource == r)
                .map(|c| c.with.clone())
        };
        assert_eq!(with("vm").as_deref(), Some("a"));
        assert_eq!(with("x").as_deref(), Some("b"));
        // A plain group: its last member (it runs whole only where that one does).
        assert_eq!(with("y").as_deref(), Some("d"));
    }

    #[test]
    fn resource_sets_expand_as_pacemakers_and_bad_ones_are_named_at_their_place() {
        let mut base = String::new();
        for id in ["a", "b", "c", "d", "e"] {
            base.push_str(&format!(
                "[[resource]]\nid = \"{id}\"\nclass = \"ocf\"\ntype = \"Dummy\"\n"
            ));
        }
        base.push_str("[[resource]]\nid = \"w\"\nclass = \"ocf\"\ntype = \"Dummy\"\nclone = true\nmeta = { clone_min = 2 }\n");
        let l = ok(&format!(
            "{base}[[colocation]]\nsets = [{{ resources = [\"a\", \"b\"] }}, {{ resources = [\"c\", \"d\"], sequential = false }}]\n\
             [[order]]\nid = \"o\"\nsets = [{{ id = \"s1\", resources = [\"a\", \"b\"], sequential = false, require_all = false }}, {{ resources = [\"c\", \"d\"], sequential = true }}]\n\
             [[order]]\nfirst = \"w\"\nthen = \"e\"\n"
        ));
        let cols: Vec<(&str, &str)> = l
            .engine
            .colocations()
            .iter()
            .map(|c| (c.resource.as_str(), c.with.as_str()))
            .collect();
        // b with a within the first set; a (its first) with each of the unordered second set.
        assert_eq!(cols, [("b", "a"), ("a", "c"), ("a", "d")]);
        let ords: Vec<(&str, &str, Option<u32>, Option<&str>)> = l
            .engine
            .orders()
            .iter()
            .map(|o| {
                (
                    o.first.as_str(),
                    o.then.as_str(),
                    o.first_min,
                    o.first_label.as_deref(),
                )
            })
            .collect();
        // Within the sequential set c then d; after the set of which one is enough, each of
        // the next set waits for one of a and b; after a clone with clone_min, for 2 copies.
        assert_eq!(
            ords,
            [
                ("c", "d", None, None),
                ("a", "c", Some(1), Some("one-or-more:s1")),
                ("a", "d", Some(1), Some("one-or-more:s1")),
                ("b", "c", Some(1), Some("one-or-more:s1")),
                ("b", "d", Some(1), Some("one-or-more:s1")),
                ("w", "e", Some(2), Some("clone-one-or-more:w-then-e")),
            ]
        );
        let e = errors(&format!(
            "{base}[[order]]\nfirst = \"a\"\nsets = [{{ resources = [] }}, {{ resources = [\"zz\"], actoin = \"start\" }}]\n"
        ));
        assert!(e.contains("error: `first` does not apply here"), "{e}");
        assert!(e.contains("a set needs `resources`, at least one"), "{e}");
        assert!(
            e.contains("unknown key `actoin` in an order's set; did you mean `action`?"),
            "{e}"
        );
        assert!(e.contains("unknown resource \"zz\""), "{e}");
    }

    #[test]
    fn rules_tickets_attributes_and_clones_are_read_and_bad_ones_named_at_their_place() {
        let base = "[[node]]\nname = \"n1\"\nattributes = { rack = \"a\", weight = 5 }\n\
                    [[resource]]\nid = \"d\"\nclass = \"ocf\"\ntype = \"Dummy\"\nclone = true\n";
        let l = ok(&format!(
            "{base}[[location]]\nresource = \"d\"\nrule = \"rack eq a or defined pingd\"\nscore_attribute = \"weight\"\n\
             [[ticket]]\nticket = \"t\"\nresource = \"d\"\n"
        ));
        let e = &l.engine;
        assert_eq!(
            e.node_attributes(0),
            [
                ("rack".to_owned(), "a".to_owned()),
                ("weight".to_owned(), "5".to_owned())
            ]
        );
        let rl = &e.rule_locations()[0];
        assert_eq!(rl.rule.to_string(), "rack eq a or defined pingd");
        assert_eq!(
            rl.score,
            warden_engine::RuleScore::Attribute("weight".into())
        );
        assert_eq!(e.tickets()[0].loss_policy, warden_engine::LossPolicy::Stop);
        let d = e.resource("d").expect("d");
        assert!(d.is_clone() && !d.is_promotable());
        assert_eq!(d.meta.resource_stickiness.value(), 1);
        for (extra, want) in [
            (
                "[[location]]\nresource = \"d\"\nrule = \"rack is a\"\nscore = 1\n",
                "t.toml:11:8: error: bad rule \"rack is a\": unknown comparison \"is\"",
            ),
            (
                "[[location]]\nresource = \"d\"\nrule = \"rack eq a\"\nnode = \"n1\"\nscore = 1\n",
                "t.toml:12:1: error: `node` does not apply here: a location with a `rule` picks its nodes by the rule",
            ),
            (
                "[[location]]\nresource = \"d\"\nrule = \"rack eq a\"\n",
                "error: a location with a rule needs `score`",
            ),
            (
                "[[ticket]]\nticket = \"t\"\nresource = \"d\"\nloss_policy = \"fence\"\n",
                "t.toml:12:15: error: loss_policy = \"fence\" needs fencing",
            ),
            (
                "[[ticket]]\nticket = \"t t\"\nresource = \"d\"\n",
                "t.toml:10:10: error: bad ticket \"t t\"",
            ),
            (
                "[[ticket]]\nticket = \"t\"\nresource = \"d\"\nrole = \"promoted\"\n",
                "needs \"d\" to be promotable",
            ),
            (
                "[[resource]]\nid = \"f\"\nclass = \"ocf\"\ntype = \"Dummy\"\nclone = true\nmeta = { clone_node_max = 2 }\n",
                "t.toml:14:27: error: clone_node_max above 1 needs `globally_unique = true`",
            ),
            (
                "[[resource]]\nid = \"f\"\nclass = \"ocf\"\ntype = \"Dummy\"\nclone = true\nmeta = { globally_unique = true, notify = true, clone_node_max = 2 }\n",
                "t.toml:14:66: error: clone_node_max above 1 is not supported with promotable, notify or interleave yet",
            ),
            (
                "[[resource]]\nid = \"e\"\nclass = \"ocf\"\ntype = \"Dummy\"\n[[colocation]]\nresource = \"e\"\nwith = \"d\"\nwith_role = \"unpromoted\"\n",
                "t.toml:16:13: error: with_role \"unpromoted\" needs \"d\" to be promotable",
            ),
            (
                "[[resource]]\nid = \"e\"\nclass = \"ocf\"\ntype = \"Dummy\"\n[[colocation]]\nresource = \"d\"\nwith = \"e\"\nrole = \"unpromoted\"\n",
                "t.toml:16:8: error: role \"unpromoted\" needs \"d\" to be promotable",
            ),
        ] {
            let e = errors(&format!("{base}{extra}"));
            assert!(e.contains(want), "{extra}\n{e}");
        }
        let e = errors("[[node]]\nname = \"n1\"\nattributes = { \"#uname\" = \"x\" }\n");
        assert!(
            e.contains("t.toml:3:16: error: bad attribute name \"#uname\""),
            "{e}"
        );
        // Clone keys on a resource that is not a clone, promotable keys on a plain clone.
        let e = errors(
            "[[resource]]\nid = \"p\"\nclass = \"ocf\"\ntype = \"Dummy\"\nmeta = { interleave = true }\n\
             [[resource]]\nid = \"c\"\nclass = \"ocf\"\ntype = \"Dummy\"\nclone = true\nmeta = { promoted_max = 1 }\n",
        );
        assert!(
            e.contains(
                "t.toml:5:10: error: `interleave` does not apply here: it applies to clones"
            ),
            "{e}"
        );
        assert!(e.contains("t.toml:11:10: error: `promoted_max` does not apply here: it applies to resources with `promotable = true`"), "{e}");
    }

    #[test]
    fn agents_are_plain_names_and_monitors_not_too_frequent() {
        let e = errors(
            "[[resource]]\nid = \"d\"\nclass = \"ocf\"\nprovider = \"..\"\ntype = \"../../bin/sh\"\n\
             ops = [{ name = \"monitor\", interval = \"1ms\" }]\n",
        );
        for want in [
            "t.toml:4:12: error: bad provider \"..\": an agent's provider is a plain name",
            "t.toml:5:8: error: bad type \"../../bin/sh\": an agent's type is a plain name",
            "t.toml:6:39: error: a monitor every 1ms would run its agent 1000 times a second: the shortest interval is 100ms",
        ] {
            assert!(e.contains(want), "{want}\n{e}");
        }
        ok(
            "[[resource]]\nid = \"d\"\nclass = \"ocf\"\nprovider = \"my-co.x\"\ntype = \"db_2\"\n\
            ops = [{ name = \"monitor\", interval = \"100ms\" }]\n",
        );
    }

    #[test]
    fn defaults_are_pacemakers() {
        let l = ok(
            "[[resource]]\nid = \"d\"\nclass = \"ocf\"\ntype = \"Dummy\"\nops = [{ name = \"monitor\", interval = \"10s\" }]\n",
        );
        let c = &l.engine;
        assert_eq!(c.nodes(), ["here"], "no [[node]] means this machine alone");
        assert!(c.cluster.start_failure_is_fatal);
        assert_eq!(c.cluster.no_quorum_policy, NoQuorumPolicy::Stop);
        assert!(c.cluster.symmetric);
        assert!(!c.fencing_enabled());
        let r = &c.resources()[0];
        assert_eq!(
            r.agent,
            Agent::Ocf {
                provider: "heartbeat".into(),
                kind: "Dummy".into()
            }
        );
        assert_eq!(r.meta, Meta::default());
        assert_eq!(r.meta.migration_threshold, INFINITY_COUNT);
        assert_eq!(r.meta.failure_timeout, None);
        assert_eq!(r.ops[0].timeout, Duration::from_secs(20));
        assert!(r.ops[0].enabled);
        assert_eq!(r.ops[0].on_fail, None);
        assert_eq!(l.data_dir, PathBuf::from("/var/lib/warden"));
        assert_eq!(l.api.listen.to_string(), "127.0.0.1:7946");
    }

    #[test]
    fn resource_and_op_defaults_apply_and_resources_override_them() {
        let l = ok(r#"
[resource_defaults]
resource_stickiness = 100
migration_threshold = 2
[op_defaults]
timeout = "45s"
[[resource]]
id = "p"
class = "process"
command = ["sleep", "100"]
meta = { migration_threshold = "INFINITY", failure_timeout = "0" }
ops = [{ name = "monitor", interval = "5s" }, { name = "stop", timeout = "2m" }]
"#);
        let r = &l.engine.resources()[0];
        assert_eq!(r.meta.resource_stickiness, Score::new(100));
        assert_eq!(r.meta.migration_threshold, INFINITY_COUNT);
        assert_eq!(r.meta.failure_timeout, None, "\"0\" means never");
        assert_eq!(r.ops[0].timeout, Duration::from_secs(45));
        assert_eq!(r.ops[1].timeout, Duration::from_secs(120));
    }

    #[test]
    fn class_specific_keys_are_checked() {
        let e = errors("[[resource]]\nid = \"p\"\nclass = \"process\"\ntype = \"Dummy\"\n");
        assert!(
            e.contains("t.toml:4:1: error: `type` does not apply here"),
            "{e}"
        );
        assert!(e.contains("needs `command`"), "{e}");
        let e = errors("[[resource]]\nid = \"o\"\nclass = \"ocf\"\ncommand = [\"x\"]\n");
        assert!(e.contains("`command` does not apply here"), "{e}");
        assert!(e.contains("needs `type`"), "{e}");
        let e = errors("[[resource]]\nid = \"s\"\nclass = \"systemd\"\n");
        assert!(e.contains("needs `type` (the unit"), "{e}");
        let e = errors(
            "[[resource]]\nid = \"s\"\nclass = \"systemd\"\ntype = \"bad/unit\"\nparams = { a = 1 }\ncommand = [\"x\"]\npromotable = true\n",
        );
        for want in [
            "t.toml:4:8: error: bad unit \"bad/unit\"",
            "t.toml:5:1: error: `params` does not apply here: a systemd unit takes no parameters",
            "t.toml:6:1: error: `command` does not apply here: a systemd resource is its unit",
            "t.toml:7:14: error: a systemd unit cannot be promotable",
        ] {
            assert!(e.contains(want), "{want}\n{e}");
        }
        let l = ok(
            "[[resource]]\nid = \"web\"\nclass = \"systemd\"\ntype = \"nginx\"\n[[resource]]\nid = \"t\"\nclass = \"systemd\"\ntype = \"backup.timer\"\n",
        );
        assert_eq!(
            l.engine.resources()[0].agent,
            Agent::Systemd {
                unit: "nginx.service".to_owned()
            }
        );
        assert_eq!(
            l.engine.resources()[1].agent.to_string(),
            "systemd:backup.timer"
        );
        let e = errors("[[resource]]\nid = \"bad id\"\nclass = \"ocf\"\ntype = \"Dummy\"\n");
        assert!(e.contains("bad id \"bad id\""), "{e}");
    }

    #[test]
    fn duplicates_and_references() {
        let e = errors("[[node]]\nname = \"a\"\n[[node]]\nname = \"a\"\n");
        assert!(
            e.contains("t.toml:4:8: error: node \"a\" is defined twice"),
            "{e}"
        );
        let e = errors(
            "[[node]]\nname = \"a\"\n[[fence_device]]\nname = \"f\"\ncommand = [\"x\"]\nnodes = [\"b\"]\n[[ban]]\nresource = \"r\"\nnode = \"a\"\n",
        );
        assert!(e.contains("t.toml:6:10: error: unknown node \"b\""), "{e}");
        assert!(
            e.contains("t.toml:8:12: error: unknown resource \"r\""),
            "{e}"
        );
    }

    #[test]
    fn api_allow_and_deny() {
        let l = ok("[api]\nallow = [\"127.0.0.1\", \"10.0.0.0/8\"]\ndeny = [\"10.0.9.0/24\"]\n");
        let ip = |s: &str| s.parse::<std::net::IpAddr>().expect("ip");
        assert!(!l.api.refuses(ip("127.0.0.1")));
        assert!(!l.api.refuses(ip("10.1.2.3")));
        assert!(l.api.refuses(ip("10.0.9.7")), "deny wins over allow");
        assert!(l.api.refuses(ip("192.168.1.1")), "not allowed");
        let open = ok("[api]\ndeny = [\"192.168.0.0/16\"]\n");
        assert!(
            !open.api.refuses(ip("10.1.2.3")),
            "no allow: everyone but deny"
        );
        assert!(open.api.refuses(ip("192.168.1.1")));
        let e = errors("[api]\nallow = [\"10.0.0.0/33\"]\n");
        assert!(e.contains("t.toml:2:10: error:"), "{e}");
    }

    #[test]
    fn the_data_dir_is_found_in_a_file_with_errors() {
        assert_eq!(data_dir_in("[cluster]\ndata_dir = \"/srv/w\"\n"), "/srv/w");
        assert_eq!(data_dir_in("[api]\nlisten = 1\n"), DEFAULT_DATA_DIR);
        // Valid TOML with errors Warden would report still parses as TOML.
        assert_eq!(
            data_dir_in("[cluster]\ndata_dir = \"d\"\nbogus = 1\n[[resource]]\nid = 3\n"),
            "d"
        );
        // Not TOML at all: scanned, and only under [cluster].
        assert_eq!(
            data_dir_in("[api]\ndata_dir = \"no\"\n[cluster]\n data_dir = 'here' # note\n[[[x"),
            "here"
        );
        assert_eq!(data_dir_in("[[[x\n"), DEFAULT_DATA_DIR);
    }

    #[test]
    fn utilization_and_the_placement_strategy_are_read_and_checked() {
        let l = ok(r#"
[cluster]
placement_strategy = "balanced"
[[node]]
name = "n1"
utilization = { cpu = 8, memory = 2048 }
[[resource]]
id = "r"
class = "process"
command = ["sleep", "1000"]
utilization = { cpu = 2 }
"#);
        assert_eq!(
            l.engine.cluster.placement_strategy,
            warden_engine::PlacementStrategy::Balanced
        );
        assert_eq!(
            l.engine.node_capacity(0),
            [("cpu".to_owned(), 8), ("memory".to_owned(), 2048)]
        );
        let r = l.engine.resource("r").expect("r");
        assert_eq!(r.utilization, [("cpu".to_owned(), 2)]);
        let e = errors(
            "[[node]]\nname = \"n1\"\nutilization = { cpu = -1, \"a b\" = 2, mem = \"x\" }\n",
        );
        assert!(
            e.contains("t.toml:3:23: error: `cpu` must be 0 or more"),
            "{e}"
        );
        assert!(
            e.contains("t.toml:3:27: error: bad utilization name \"a b\""),
            "{e}"
        );
        assert!(
            e.contains("t.toml:3:44: error: expected an integer for `mem`"),
            "{e}"
        );
        let e = errors("[cluster]\nplacement_strategy = \"packed\"\n");
        assert!(e.contains("t.toml:2:22: error:"), "{e}");
    }

    #[test]
    fn resources_and_fence_devices_are_placed_in_the_order_declared() {
        let l = ok(r#"
[[node]]
name = "n1"
[[resource]]
id = "first"
class = "process"
command = ["sleep", "1000"]
[[fence_device]]
name = "ipmi"
agent = "fence_ipmilan"
requires = "nothing"
[[resource]]
id = "last"
class = "process"
command = ["sleep", "1000"]
"#);
        let ids: Vec<&str> = l.engine.resources().iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["first", "ipmi", "last"]);
        let ipmi = l.engine.resource("ipmi").expect("ipmi");
        assert_eq!(ipmi.meta.requires, warden_engine::Requires::Nothing);
    }

    #[test]
    fn requires_is_fencing_by_default_and_a_fence_device_never_waits_for_fencing() {
        let base = "[[node]]\nname = \"n1\"\n[[resource]]\nid = \"a\"\nclass = \"process\"\ncommand = [\"sleep\", \"1000\"]\n";
        let l = ok(base);
        let a = l.engine.resource("a").expect("a");
        assert_eq!(a.meta.requires, warden_engine::Requires::Fencing);
        let l = ok(&format!("{base}[resource.meta]\nrequires = \"quorum\"\n"));
        let a = l.engine.resource("a").expect("a");
        assert_eq!(a.meta.requires, warden_engine::Requires::Quorum);
        let e = errors(&format!(
            "{base}[[fence_device]]\nname = \"ipmi\"\nagent = \"fence_ipmilan\"\nrequires = \"fencing\"\n"
        ));
        assert!(
            e.contains("t.toml:10:12: error: unknown value \"fencing\" (allowed: quorum, nothing)"),
            "{e}"
        );
    }

    #[test]
    fn a_fence_device_that_unfences_makes_resources_require_unfencing_by_default() {
        let base = "[[node]]\nname = \"n1\"\n[[resource]]\nid = \"a\"\nclass = \"process\"\ncommand = [\"sleep\", \"1000\"]\n[[resource]]\nid = \"b\"\nclass = \"process\"\ncommand = [\"sleep\", \"1000\"]\n[resource.meta]\nrequires = \"fencing\"\n";
        let l = ok(&format!(
            "{base}[[fence_device]]\nname = \"scsi\"\nagent = \"fence_scsi\"\nunfence = true\n"
        ));
        assert!(l.engine.unfencing_enabled());
        let requires = |id: &str| l.engine.resource(id).expect(id).meta.requires;
        assert_eq!(requires("a"), warden_engine::Requires::Unfencing);
        // Said otherwise: kept.
        assert_eq!(requires("b"), warden_engine::Requires::Fencing);
        // Without such a device, the default is fencing.
        let l = ok(&format!(
            "{base}[[fence_device]]\nname = \"ipmi\"\nagent = \"fence_ipmilan\"\n"
        ));
        assert_eq!(
            l.engine.resource("a").expect("a").meta.requires,
            warden_engine::Requires::Fencing
        );
        // A command device only fences.
        let e = errors(&format!(
            "{base}[[fence_device]]\nname = \"power\"\ncommand = [\"/usr/local/sbin/power\"]\nunfence = true\n"
        ));
        assert!(
            e.contains("t.toml:16:11: error: `unfence` applies to fence agents"),
            "{e}"
        );
    }

    #[test]
    fn an_unmanaged_fence_device_is_never_started_and_resource_defaults_reach_it() {
        let config = |device: &str, defaults: &str| {
            ok(&format!(
                "[[node]]\nname = \"n1\"\n{defaults}[[fence_device]]\nname = \"ipmi\"\nagent = \"fence_ipmilan\"\n{device}"
            ))
            .engine
        };
        let managed = |c: &warden_engine::Config| c.resource("ipmi").expect("ipmi").meta.is_managed;
        assert!(managed(&config("", "")));
        let off = config("is_managed = false\n", "");
        assert!(!managed(&off));
        assert!(!managed(&config(
            "",
            "[resource_defaults]\nis_managed = false\n"
        )));
        assert!(managed(&config(
            "is_managed = true\n",
            "[resource_defaults]\nis_managed = false\n"
        )));
        // Probed, never started.
        let state = warden_engine::State::with_online_nodes(["n1"]);
        let t = warden_engine::schedule(&off, &state, warden_engine::Time::from_millis(0));
        assert!(
            t.actions
                .iter()
                .all(|a| !matches!(a.kind, warden_engine::ActionKind::Start { .. })),
            "{t:?}"
        );
        assert!(!t.actions.is_empty(), "probed");
    }

    #[test]
    fn a_disabled_fence_device_is_not_placed_and_fences_nothing_but_fencing_stays_on() {
        let c = ok("[[node]]\nname = \"n1\"\n[[node]]\nname = \"n2\"\n\
             [[fence_device]]\nname = \"ipmi\"\nagent = \"fence_ipmilan\"\n\
             target_role = \"stopped\"\nmigration_threshold = 3\n\
             failure_timeout = \"60s\"\nresource_stickiness = 50\npriority = 7\n\
             [[fence_device]]\nname = \"pdu\"\nagent = \"fence_apc\"\n")
        .engine;
        let ipmi = c.resource("ipmi").expect("ipmi");
        assert_eq!(ipmi.meta.target_role, warden_engine::TargetRole::Stopped);
        assert_eq!(ipmi.meta.migration_threshold, 3);
        assert_eq!(ipmi.meta.failure_timeout, Some(Duration::from_secs(60)));
        assert_eq!(ipmi.meta.resource_stickiness, warden_engine::Score::new(50));
        assert_eq!(ipmi.meta.priority, 7);
        let names: Vec<&str> = c.fence_devices_for("n1").map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["pdu"]);
        assert!(c.fencing_enabled());
        // Only started or stopped.
        let e = errors(
            "[[fence_device]]\nname = \"ipmi\"\nagent = \"fence_ipmilan\"\n\
             target_role = \"promoted\"\n",
        );
        assert!(
            e.contains("t.toml:4:15") && e.contains("\"promoted\""),
            "{e}"
        );
    }

    #[test]
    fn fence_devices_call_a_command_or_a_fence_agent() {
        let l = ok(r#"
[[node]]
name = "n1"
[[node]]
name = "n2"
[[fence_device]]
name = "ipmi"
agent = "fence_ipmilan"
params = { ip = "10.0.0.12", username = "admin", lanplus = 1 }
host_map = { n2 = "2" }
action = "off"
timeout = "20s"
nodes = ["n2"]
[[fence_device]]
name = "script"
command = ["/usr/local/sbin/fence-power", "--hard"]
"#);
        let d = l.engine.fence_devices();
        assert_eq!(d.len(), 2);
        assert_eq!(
            d[0].method,
            FenceMethod::Agent(FenceAgent {
                program: "/usr/sbin/fence_ipmilan".to_owned(),
                params: vec![
                    ("ip".to_owned(), "10.0.0.12".to_owned()),
                    ("lanplus".to_owned(), "1".to_owned()),
                    ("username".to_owned(), "admin".to_owned()),
                ],
                host_map: vec![("n2".to_owned(), "2".to_owned())],
                action: "off".to_owned(),
            })
        );
        assert_eq!(
            (d[0].timeout_ms, d[0].nodes.clone()),
            (20_000, vec!["n2".to_owned()])
        );
        assert_eq!(d[1].program(), "/usr/local/sbin/fence-power");
        assert_eq!(d[1].timeout_ms, 60_000);
        let e = errors("[[fence_device]]\nname = \"f\"\nagent = \"fence_x\"\ncommand = [\"x\"]\n");
        assert!(
            e.contains("t.toml:3:9: error: a fence device has either `command`"),
            "{e}"
        );
        let e = errors("[[fence_device]]\nname = \"f\"\n");
        assert!(e.contains("needs `agent` (a fence agent"), "{e}");
        let e =
            errors("[[fence_device]]\nname = \"f\"\ncommand = [\"x\"]\nparams = { ip = \"1\" }\n");
        assert!(
            e.contains("t.toml:4:10: error: `params` is for fence agents"),
            "{e}"
        );
        let e = errors(
            "[[fence_device]]\nname = \"f\"\nagent = \"fence_x\"\naction = \"on\"\nhost_map = { nx = \"1\" }\nparams = { passwd = \"a\\nb\" }\n",
        );
        assert!(
            e.contains("t.toml:4:10: error: action \"on\" cannot fence"),
            "{e}"
        );
        assert!(e.contains("t.toml:5:14: error: unknown node \"nx\""), "{e}");
        assert!(
            e.contains(
                "t.toml:6:12: error: parameter \"passwd\" of a fence agent cannot hold a line break"
            ),
            "{e}"
        );
    }

    #[test]
    fn process_resources() {
        let l = ok(r#"
[[resource]]
id = "web"
class = "process"
command = ["python3", "-m", "http.server", "8080"]
env = { PYTHONUNBUFFERED = "1", WORKERS = 4 }
cwd = "/srv"
stop_signal = "SIGINT"
stop_timeout = "3s"
ops = [{ name = "monitor", interval = "5s", command = ["curl", "-fsS", "http://127.0.0.1:8080/"] }]
"#);
        let r = &l.engine.resources()[0];
        let Agent::Process(p) = &r.agent else {
            panic!("not a process: {:?}", r.agent)
        };
        assert_eq!(p.command[0], "python3");
        assert_eq!(
            p.env,
            vec![
                ("PYTHONUNBUFFERED".to_owned(), "1".to_owned()),
                ("WORKERS".to_owned(), "4".to_owned())
            ]
        );
        assert_eq!(p.cwd.as_deref(), Some("/srv"));
        assert_eq!(p.stop_signal, "INT");
        assert_eq!(p.stop_timeout, Duration::from_secs(3));
        assert_eq!(r.ops[0].command.as_ref().map(|c| c.len()), Some(3));
        let defaults =
            ok("[[resource]]\nid = \"p\"\nclass = \"process\"\ncommand = [\"sleep\", \"1\"]\n");
        let Agent::Process(p) = &defaults.engine.resources()[0].agent else {
            panic!("process")
        };
        assert_eq!(
            (p.stop_signal.as_str(), p.stop_timeout),
            ("TERM", DEFAULT_STOP_TIMEOUT)
        );

        let e = errors(
            "[[resource]]\nid = \"p\"\nclass = \"process\"\ncommand = []\nstop_signal = \"STOP\"\n",
        );
        assert!(
            e.contains("t.toml:4:11: error: `command` must name a program"),
            "{e}"
        );
        assert!(
            e.contains("t.toml:5:15: error: unknown stop_signal \"STOP\""),
            "{e}"
        );
        let e = errors(
            "[[resource]]\nid = \"o\"\nclass = \"ocf\"\ntype = \"Dummy\"\ncwd = \"/\"\nops = [{ name = \"monitor\", interval = \"5s\", command = [\"true\"] }]\n",
        );
        assert!(
            e.contains("t.toml:5:1: error: `cwd` does not apply here"),
            "{e}"
        );
        assert!(
            e.contains("a monitor command is for class \"process\""),
            "{e}"
        );
    }

    #[test]
    fn upstreams() {
        let l = ok(r#"
[[upstream]]
name = "foo.com"
primary = ["127.0.0.1:8081", { addr = "127.0.0.1:8082", weight = 7, max_fails = 2, fail_timeout = "10s" }]
backup = ["[::1]:8083"]
[upstream.check]
type = "http"
http_req = "GET /status HTTP/1.0\r\nHost: foo.com\r\n\r\n"
interval = "2s"
timeout = "1s"
fall = 3
rise = 2
valid_statuses = [200, 302]
concurrency = 10
"#);
        let u = &l.upstreams[0];
        assert_eq!(u.primary[1].weight, 7);
        assert_eq!((u.backup[0].host.as_str(), u.backup[0].port), ("::1", 8083));
        assert_eq!(
            u.check.hysteresis,
            warden_engine::health::Hysteresis { fall: 3, rise: 2 }
        );
        assert_eq!(u.check.valid_statuses, Some(vec![200, 302]));
        assert_eq!(
            u.check.jitter,
            Duration::from_millis(200),
            "a tenth of the interval"
        );
        assert_eq!(
            u.check.kind,
            crate::check::CheckKind::Http {
                request: b"GET /status HTTP/1.0\r\nHost: foo.com\r\n\r\n".to_vec(),
                tls: None
            }
        );
        let l = ok(
            "[[upstream]]\nname = \"api\"\nprimary = [\"127.0.0.1:1\"]\n[upstream.check]\ntype = \"http\"\npath = \"/health\"\nheaders = { X-Check = \"warden\" }\n",
        );
        assert_eq!(
            l.upstreams[0].check.kind,
            crate::check::CheckKind::Http {
                request: b"GET /health HTTP/1.0\r\nHost: api\r\nX-Check: warden\r\n\r\n".to_vec(),
                tls: None
            }
        );
        assert_eq!(
            l.upstreams[0].check.hysteresis,
            warden_engine::health::Hysteresis { fall: 5, rise: 2 },
            "lua-resty's defaults"
        );

        let e = errors(
            "[[upstream]]\nname = \"u\"\nprimary = [\"localhost\", 5]\n[upstream.check]\ntype = \"https\"\nfall = 0\nvalid_statuses = [99]\nca = \"/nonexistent/ca.pem\"\n",
        );
        assert!(
            e.contains("t.toml:3:12: error: bad peer address \"localhost\""),
            "{e}"
        );
        assert!(
            e.contains("t.toml:3:25: error: a peer is \"host:port\" or a table, not integer"),
            "{e}"
        );
        // The CA file is read after reading, by the shell, and reported at its place.
        let l = ok(
            "[[upstream]]\nname = \"u\"\nprimary = [\"127.0.0.1:1\"]\n[upstream.check]\ntype = \"https\"\nca = \"/nonexistent/ca.pem\"\n",
        );
        let ca_err = prepare(&l, "t.toml").expect_err("missing CA").to_string();
        assert!(
            ca_err.starts_with("t.toml:6:6: error: cannot read ca /nonexistent/ca.pem"),
            "{ca_err}"
        );
        let tls_err = errors(
            "[[upstream]]\nname = \"u\"\nprimary = [\"127.0.0.1:1\"]\n[upstream.check]\ntype = \"http\"\nsni = \"x\"\n",
        );
        assert!(tls_err.contains("t.toml:6:1: error: `sni` does not apply here: TLS settings are for type = \"https\""), "{tls_err}");
        let l = ok(
            "[[upstream]]\nname = \"s\"\nprimary = [\"127.0.0.1:1\"]\n[upstream.check]\ntype = \"https\"\nsni = \"api.example.com\"\nverify = false\n",
        );
        assert!(matches!(
            &l.upstreams[0].check.kind,
            crate::check::CheckKind::Http { tls: Some(_), .. }
        ));
        assert!(
            e.contains("t.toml:6:8: error: `fall` must be at least 1"),
            "{e}"
        );
        assert!(
            e.contains("t.toml:7:19: error: an HTTP status is between 100 and 599"),
            "{e}"
        );
        let l = ok(
            "[[upstream]]\nname = \"c\"\nprimary = [\"127.0.0.1:1\"]\n[upstream.check]\nunknown = \"down\"\n",
        );
        assert!(!l.upstreams[0].check.unknown_routable);
        let e = errors(
            "[[upstream]]\nname = \"c\"\nprimary = [\"127.0.0.1:1\"]\n[upstream.check]\nunknown = \"maybe\"\n",
        );
        assert!(e.contains("t.toml:5:11: error: unknown = \"maybe\""), "{e}");
        let e = errors("[[upstream]]\nname = \"u\"\n");
        assert!(
            e.contains("t.toml:2:8: error: upstream \"u\" has no peers"),
            "{e}"
        );
    }

    #[test]
    fn upstreams_following_a_resource() {
        let base = "[[node]]\nname = \"n1\"\n[[node]]\nname = \"n2\"\n[[resource]]\nid = \"db\"\nclass = \"process\"\ncommand = [\"true\"]\npromotable = true\n";
        let l = ok(&format!(
            "{base}[[upstream]]\nname = \"pg\"\nfrom_resource = \"db\"\nnodes = {{ n1 = \"10.0.0.1:5432\", n2 = \"10.0.0.2:5432\" }}\n"
        ));
        assert_eq!(l.follows[0].resource, "db");
        assert_eq!(
            l.follows[0].nodes,
            [
                ("n1".to_owned(), "10.0.0.1:5432".to_owned()),
                ("n2".to_owned(), "10.0.0.2:5432".to_owned())
            ]
        );
        assert_eq!(l.upstreams[0].backup.len(), 2);
        let e = errors(&format!(
            "{base}[[upstream]]\nname = \"pg\"\nfrom_resource = \"dbb\"\nnodes = {{ n3 = \"10.0.0.1:5432\", n2 = \"nowhere\" }}\nprimary = [\"10.0.0.9:1\"]\n"
        ));
        for want in [
            "t.toml:12:17: error: unknown resource \"dbb\"; did you mean \"db\"?",
            "t.toml:13:11: error: unknown node \"n3\"; did you mean \"n1\"?",
            "t.toml:13:38: error: bad peer address \"nowhere\"",
            "t.toml:14:1: error: `primary` does not apply here: the peers of a `from_resource` upstream are its `nodes`",
        ] {
            assert!(e.contains(want), "{want}\n{e}");
        }
        let e = errors(&format!(
            "{base}[[upstream]]\nname = \"pg\"\nfrom_resource = \"db\"\n"
        ));
        assert!(
            e.contains("t.toml:12:17: error: upstream \"pg\" follows \"db\": add `nodes"),
            "{e}"
        );
    }

    #[test]
    fn cluster_etcd() {
        let nodes = "[[node]]\nname = \"n1\"\naddress = \"10.77.0.1\"\n[[node]]\nname = \"n2\"\n";
        let short_stop = "[[resource]]\nid = \"ip\"\nclass = \"ocf\"\nprovider = \"heartbeat\"\ntype = \"Dummy\"\nops = [{ name = \"stop\", timeout = \"400ms\" }]\n";
        let l = ok(&format!(
            "[cluster]\nname = \"demo\"\n[cluster.etcd]\nendpoints = [\"http://10.77.0.1:2379\", \"http://10.77.0.2:2379\"]\nlease_ttl = \"1s\"\n{nodes}{short_stop}"
        ));
        let e = l.etcd.expect("etcd settings");
        assert_eq!(e.endpoints.len(), 2);
        assert_eq!(e.lease_ttl, Duration::from_secs(1));
        assert_eq!(e.prefix, "/warden/demo");
        assert_eq!(l.addresses["n1"].to_string(), "10.77.0.1");
        assert!(!l.addresses.contains_key("n2"));
        // Without [cluster.etcd]: one machine, as before.
        assert!(ok(nodes).etcd.is_none());

        // A stop that cannot finish before the lease runs out is refused with the numbers.
        let e = errors(&format!(
            "[cluster.etcd]\nendpoints = [\"http://127.0.0.1:2379\"]\nlease_ttl = \"1s\"\n{nodes}[[resource]]\nid = \"db\"\nclass = \"ocf\"\nprovider = \"heartbeat\"\ntype = \"Dummy\"\n{short_stop}[[order]]\nfirst = \"db\"\nthen = \"ip\"\n"
        ));
        assert!(
            e.contains("t.toml:3:13: error: lease_ttl 1s cannot keep two nodes from running a resource at once")
                && e.contains("renew interval 250ms + 2 x request timeout 125ms + stop time 20400ms + margin 50ms = 20950ms to notice")
                && e.contains("the chain ip -> db")
                && e.contains("raise lease_ttl to at least 46s"),
            "{e}"
        );
        let e = errors(
            "[cluster]\nno_quorum_policy = \"freeze\"\n[cluster.etcd]\nendpoints = [\"10.0.0.1:2379\", \"https://h:1\"]\nlease_ttl = \"1500ms\"\nprefix = \"warden\"\ncert = \"c.pem\"\nuser = \"u\"\nendpoint = 1\n[[node]]\nname = \"n1\"\naddress = \"n1.example\"\n",
        );
        for want in [
            "t.toml:4:14: error: bad etcd endpoint \"10.0.0.1:2379\": expected http://HOST:PORT",
            "t.toml:5:13: error: `lease_ttl` must be whole seconds",
            "t.toml:6:10: error: bad prefix \"warden\"",
            "t.toml:7:8: error: `cert` and `key` go together",
            "t.toml:8:8: error: `user` and `password` go together",
            "t.toml:9:1: error: unknown key `endpoint` in [cluster.etcd]; did you mean `endpoints`?",
            "t.toml:12:11: error: bad address \"n1.example\": expected an IP address",
        ] {
            assert!(e.contains(want), "{want}\n{e}");
        }
        let e = errors(
            "[cluster]\nno_quorum_policy = \"freeze\"\n[cluster.etcd]\nendpoints = [\"http://h:1\"]\n",
        );
        assert!(e.contains("t.toml:2:20: error: no_quorum_policy = \"freeze\" keeps resources running on a node cut off from etcd"), "{e}");
        let e = errors("[cluster.etcd]\nlease_ttl = \"500ms\"\n");
        assert!(
            e.contains("t.toml:2:1: error: [cluster.etcd] needs `endpoints`"),
            "{e}"
        );
        assert!(
            e.contains("t.toml:2:13: error: `lease_ttl` must be at least 1s"),
            "{e}"
        );
    }

    #[test]
    fn listeners() {
        use crate::proxy::Protocol;
        use crate::proxy::balance::{Balance, Failback};
        let up = "[[upstream]]\nname = \"svc\"\nprimary = [\"127.0.0.1:1\"]\n";
        let l = ok(&format!(
            "{up}[[listener]]\nname = \"front\"\nlisten = \"127.0.0.1:8000\"\nupstream = \"svc\"\nprotocol = \"tcp\"\nconnect_timeout = \"250ms\"\nidle_timeout = \"10m\"\n"
        ));
        assert_eq!(l.listeners[0].upstream, "svc");
        assert_eq!(l.listeners[0].connect_timeout, Duration::from_millis(250));
        assert_eq!(l.listeners[0].idle_timeout, Some(Duration::from_secs(600)));
        let l = ok(&format!(
            "{up}[[listener]]\nname = \"web\"\nlisten = \"127.0.0.1:8000\"\nupstream = \"svc\"\nprotocol = \"http\"\n\
             balance = \"weighted\"\nfailback = {{ preempt_delay = \"30s\" }}\nshutdown_sessions = true\n\
             upstream_timeout = \"2s\"\nforwarded_for = false\nupstream_keepalive = \"5s\"\n\
             trusted_proxies = [\"10.0.0.0/8\", \"::1\"]\nmax_request_body = \"8MiB\"\n"
        ));
        let w = &l.listeners[0];
        assert_eq!(w.max_request_body, Some(8 << 20));
        assert_eq!(
            w.trusted_proxies
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["10.0.0.0/8", "::1/128"]
        );
        assert_eq!(w.upstream_keepalive, Duration::from_secs(5));
        assert_eq!(w.idle_timeout, None);
        assert_eq!(w.protocol, Protocol::Http);
        assert_eq!(w.policy.balance, Balance::Weighted);
        assert_eq!(
            w.policy.failback,
            Failback::PreemptDelay(Duration::from_secs(30))
        );
        assert!(w.shutdown_sessions && !w.forwarded_for);
        assert_eq!(w.upstream_timeout, Duration::from_secs(2));
        let e = errors(&format!(
            "{up}[[listener]]\nname = \"front\"\nlisten = \"here\"\nupstream = \"svx\"\nprotocol = \"udp\"\nbalance = \"round-robbin\"\nfailback = \"later\"\nupstream_timeout = \"1s\"\nidle_timeout = \"0s\"\ntrusted_proxies = [\"10.0.0.0/33\"]\n"
        ));
        for want in [
            "t.toml:6:10: error: bad listen address \"here\"",
            "t.toml:7:12: error: unknown upstream \"svx\"; did you mean \"svc\"?",
            "t.toml:8:12: error: unknown protocol \"udp\" (allowed: tcp, http)",
            "t.toml:9:11: error: unknown balance \"round-robbin\"; did you mean \"round-robin\"?",
            "t.toml:10:12: error: failback: expected \"preempt\", \"no_preempt\" or { preempt_delay = \"30s\" }",
            "t.toml:11:1: error: `upstream_timeout` does not apply here: it applies to protocol = \"http\"",
            "t.toml:12:16: error: `idle_timeout` must be longer than 0",
            "t.toml:13:1: error: `trusted_proxies` does not apply here: it applies to protocol = \"http\"",
        ] {
            assert!(e.contains(want), "{want}\n{e}");
        }
        let e = errors(&format!(
            "{up}[[listener]]\nname = \"front\"\nlisten = \"127.0.0.1:1\"\nupstream = \"svc\"\nprotocol = \"http\"\nmax_request_body = \"lots\"\n\
             [[listener]]\nname = \"back\"\nlisten = \"127.0.0.1:2\"\nupstream = \"svc\"\nprotocol = \"http\"\nmax_request_body = 0\n"
        ));
        for want in [
            "t.toml:9:20: error: bad size \"lots\"",
            "t.toml:15:20: error: `max_request_body` must be at least 1 byte",
        ] {
            assert!(e.contains(want), "{want}\n{e}");
        }
        let l = ok(&format!(
            "{up}[[listener]]\nname = \"db\"\nlisten = \"127.0.0.1:1\"\nupstream = \"svc\"\naccess_log = \"/var/log/db.log\"\naccess_log_format = \"json\"\n"
        ));
        assert_eq!(
            l.listeners[0].access_log,
            Some(crate::proxy::access::Spec {
                path: "/var/log/db.log".into(),
                format: crate::proxy::access::Format::Json
            })
        );
        let e = errors(&format!(
            "{up}[[listener]]\nname = \"front\"\nlisten = \"127.0.0.1:1\"\nupstream = \"svc\"\naccess_log = \"web.log\"\naccess_log_format = \"clf\"\n\
             [[listener]]\nname = \"back\"\nlisten = \"127.0.0.1:2\"\nupstream = \"svc\"\naccess_log_format = \"json\"\n"
        ));
        for want in [
            "t.toml:8:14: error: access_log \"web.log\" must be an absolute path",
            "t.toml:9:21: error: unknown access_log_format \"clf\": use \"haproxy\" or \"json\"",
            "t.toml:14:21: error: access_log_format needs access_log",
        ] {
            assert!(e.contains(want), "{want}\n{e}");
        }
    }
    /// docs/config.md's key tables, by the heading above each: (heading, keys, has a default
    /// column).
    fn config_md() -> String {
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/config.md"))
            .expect("docs/config.md")
    }

    fn documented() -> Vec<(String, Vec<String>, bool)> {
        let text = config_md();
        let mut out: Vec<(String, Vec<String>, bool)> = Vec::new();
        let mut heading = String::new();
        let mut in_table = false;
        for line in text.lines() {
            if line.starts_with('#') {
                heading = line.to_owned();
                in_table = false;
            } else if let Some(row) = line.strip_prefix('|') {
                let first = row.split('|').next().unwrap_or_default();
                if !in_table {
                    in_table = true;
                    let has_default = row.split('|').nth(1).is_some_and(|c| c.trim() == "default");
                    out.push((heading.clone(), Vec::new(), has_default));
                } else if let Some(t) = out.last_mut() {
                    let keys = first.split('`').skip(1).step_by(2).map(str::to_owned);
                    t.1.extend(keys);
                }
            } else {
                in_table = false;
            }
        }
        out
    }

    #[test]
    fn docs_name_every_key_the_reader_takes_and_no_other() {
        let accepted = accepted_keys();
        let docs = documented();
        let mut problems = Vec::new();
        for (section, keys) in &accepted {
            if *section == "top level" {
                continue;
            }
            let marker = format!("`{section}`");
            let tables: Vec<&(String, Vec<String>, bool)> = docs
                .iter()
                .filter(|(h, _, _)| h.contains(&marker))
                .collect();
            if tables.is_empty() {
                problems.push(format!("no key table under a heading naming {marker}"));
                continue;
            }
            for (h, _, has_default) in &tables {
                if !has_default {
                    problems.push(format!("the table under {h:?} has no default column"));
                }
            }
            let written: Vec<&String> = tables.iter().flat_map(|t| &t.1).collect();
            for k in keys {
                if !written.iter().any(|w| w == k) {
                    problems.push(format!("{section} `{k}` is not in docs/config.md"));
                }
            }
            for w in written {
                if !keys.contains(&w.as_str()) {
                    problems.push(format!(
                        "docs/config.md names {section} `{w}`, which the reader refuses"
                    ));
                }
            }
        }
        let text = config_md();
        for top in &accepted["top level"] {
            if !text.contains(&format!("`[{top}]`")) && !text.contains(&format!("`[[{top}]]`")) {
                problems.push(format!("docs/config.md has no section for `{top}`"));
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn the_example_shows_every_key_and_loads() {
        let mut missing = Vec::new();
        for (section, keys) in accepted_keys() {
            for k in keys {
                let found = EXAMPLE.lines().any(|l| {
                    let l = l.trim_start_matches(['#', ' ']);
                    l.starts_with(&format!("{k} ="))
                        || l.starts_with(&format!("[{k}]"))
                        || l.starts_with(&format!("[[{k}]]"))
                        || l.contains(&format!("{{ {k} ="))
                        || l.contains(&format!(", {k} ="))
                        || l.starts_with('[') && l.contains(&format!(".{k}]"))
                });
                if !found {
                    missing.push(format!("{section} `{k}`"));
                }
            }
        }
        assert!(missing.is_empty(), "not in the example: {missing:?}");
        let l = ok(EXAMPLE);
        assert_eq!(l.engine.resources().len(), 2);
    }

    #[test]
    fn unknown_keys_are_compared_with_their_own_table() {
        // `interval` belongs to ops and checks, not to a resource; a promotable key is not
        // offered to a resource that is not promotable.
        let e = errors(
            "[[resource]]\nid = \"d\"\nclass = \"ocf\"\ntype = \"Dummy\"\nintervall = \"5s\"\nmeta = { clone_mx = 2 }\n",
        );
        assert!(e.contains("t.toml:5:1: error: unknown key `intervall` in [[resource]] (allowed: id, class, provider, type, params"), "{e}");
        assert!(
            e.contains(
                "t.toml:6:10: error: unknown key `clone_mx` in meta (allowed: migration_threshold,"
            ),
            "{e}"
        );
        assert!(!e.contains("clone_max"), "{e}");
        // A duration no clock can reach is refused where it is written.
        let e = errors(
            "[[resource]]\nid = \"d\"\nclass = \"ocf\"\ntype = \"Dummy\"\nmeta = { failure_timeout = \"99999999h\" }\n",
        );
        assert!(
            e.contains("t.toml:5:28: error: bad duration \"99999999h\": too long"),
            "{e}"
        );
        // A misspelt class is reported once, at the class, not again at every key it decides.
        let e = errors(
            "[[resource]]\nid = \"p\"\nclass = \"proces\"\ncommand = [\"x\"]\nops = [{ name = \"monitor\", interval = \"5s\", command = [\"true\"] }]\n",
        );
        assert_eq!(
            e, "t.toml:3:9: error: unknown class \"proces\" (allowed: ocf, process, systemd)",
            "{e}"
        );
    }

    #[test]
    fn never_panics_on_mutated_input() {
        let base = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/two-nodes.toml"
        ))
        .expect("example");
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let alphabet = b"[]{}=\",.:-_ \n0123456789abcdefINFTYms#'\\";
        for _ in 0..3000 {
            let mut b = base.clone();
            for _ in 0..1 + next() % 8 {
                let i = (next() as usize) % b.len();
                match next() % 3 {
                    0 => b[i] = alphabet[(next() as usize) % alphabet.len()],
                    1 => {
                        b.remove(i);
                    }
                    _ => b.insert(i, alphabet[(next() as usize) % alphabet.len()]),
                }
            }
            let src = String::from_utf8_lossy(&b);
            let _ = parse(&src, "fuzz.toml", || "here".to_owned());
        }
    }
}
