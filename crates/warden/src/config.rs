//! The configuration file: TOML read with positions, checked completely (every problem is
//! reported with `file:line:col`, not only the first), and converted into the engine's
//! [`warden_engine::Config`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};
use warden_engine::config::DEFAULT_STOP_TIMEOUT;
use warden_engine::{
    Agent, ClusterOptions, Config, FenceDevice, INFINITY_COUNT, Location, Meta, MultipleActive,
    NoQuorumPolicy, OnFail, OpName, OpRole, OpSpec, ProcessSpec, Promotable, ResourceSpec, Score,
    TargetRole,
};

use crate::diag::{Diagnostics, FileErrors, did_you_mean};
use crate::duration;

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
    pub api_listen: SocketAddr,
    /// `[cluster.etcd]`: several machines coordinating through etcd (None: one machine,
    /// embedded store).
    pub etcd: Option<crate::cluster::EtcdSettings>,
    /// Where each node's API and listeners are reached (`[[node]] address`).
    pub addresses: HashMap<String, std::net::IpAddr>,
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

/// Reads and checks a configuration file.
pub fn load(path: &Path) -> anyhow::Result<Loaded> {
    let src = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    parse(&src, &path.display().to_string(), local_node_name).map_err(anyhow::Error::from)
}

/// The node name used when the file defines no `[[node]]`: this machine's host name.
pub fn local_node_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

type Table<'i> = DeTable<'i>;
type Value<'i> = Spanned<DeValue<'i>>;

/// Parses configuration text. `file` names it in messages; `local` names the one node of a
/// file without `[[node]]`.
pub fn parse(src: &str, file: &str, local: impl FnOnce() -> String) -> Result<Loaded, FileErrors> {
    let mut d = Diagnostics::new(src);
    let (root, errors) = DeTable::parse_recoverable(src);
    for e in &errors {
        d.error(
            e.span().unwrap_or(0..0),
            e.message().trim_end_matches('\n').to_owned(),
        );
    }
    let mut r = Reader {
        d,
        health_monitors: Vec::new(),
        follows: Vec::new(),
    };
    let loaded = r.root(root.get_ref(), local);
    let list = r.d.finish();
    match loaded {
        Some(l) if list.is_empty() => Ok(l),
        _ => Err(FileErrors {
            file: file.to_owned(),
            list,
        }),
    }
}

const TOP_KEYS: &[&str] = &[
    "cluster",
    "api",
    "node",
    "fence_device",
    "resource",
    "location",
    "ban",
    "resource_defaults",
    "group",
    "colocation",
    "order",
    "upstream",
    "listener",
    "op_defaults",
];
const CLUSTER_KEYS: &[&str] = &[
    "name",
    "data_dir",
    "start_failure_is_fatal",
    "no_quorum_policy",
    "symmetric",
    "etcd",
];
const ETCD_KEYS: &[&str] = &[
    "endpoints",
    "lease_ttl",
    "prefix",
    "ca",
    "cert",
    "key",
    "user",
    "password",
];
const META_KEYS: &[&str] = &[
    "migration_threshold",
    "failure_timeout",
    "resource_stickiness",
    "target_role",
    "is_managed",
    "maintenance",
    "multiple_active",
    "priority",
    "crash_loop_window",
    "crash_loop_delay_max",
];
/// Meta attributes of resources with `promotable = true`.
const PROMOTABLE_META_KEYS: &[&str] = &["clone_max", "promoted_max", "notify", "promotion_score"];
const RESOURCE_KEYS: &[&str] = &[
    "id",
    "class",
    "provider",
    "type",
    "params",
    "command",
    "env",
    "cwd",
    "user",
    "group",
    "stop_signal",
    "stop_timeout",
    "promote",
    "demote",
    "meta",
    "ops",
    "monitor",
    "promotable",
];
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
];
/// Signals a process may be stopped with.
const STOP_SIGNALS: &[&str] = &["TERM", "INT", "QUIT", "HUP", "USR1", "USR2", "KILL"];
const OP_KEYS: &[&str] = &[
    "command",
    "name",
    "interval",
    "timeout",
    "on_fail",
    "enabled",
    "role",
    "check_level",
];

struct Reader<'s> {
    d: Diagnostics<'s>,
    /// Health-check monitors found while reading resources.
    health_monitors: Vec<HealthMonitor>,
    /// `from_resource` upstreams, with the places of the names they refer to.
    follows: Vec<(crate::follow::Follow, Ref, Vec<Ref>)>,
}

/// A checked reference to a node or resource, kept with its place for later resolution.
struct Ref {
    name: String,
    span: Range<usize>,
}

impl<'s> Reader<'s> {
    fn root(&mut self, root: &Table<'_>, local: impl FnOnce() -> String) -> Option<Loaded> {
        self.keys(root, TOP_KEYS, "the top level");

        let empty = Table::default();
        let cluster_t = self.table(root, "cluster").unwrap_or(&empty);
        self.keys(cluster_t, CLUSTER_KEYS, "[cluster]");
        let mut cluster = ClusterOptions::default();
        if let Some(v) = self.string(cluster_t, "name") {
            cluster.name = v.0;
        }
        let data_dir = self
            .string(cluster_t, "data_dir")
            .map_or(DEFAULT_DATA_DIR.into(), |v| v.0);
        if let Some(v) = self.boolean(cluster_t, "start_failure_is_fatal") {
            cluster.start_failure_is_fatal = v;
        }
        if let Some(v) = self.keyword(cluster_t, "no_quorum_policy", NoQuorumPolicy::ALL) {
            cluster.no_quorum_policy = v;
        }
        if let Some(v) = self.boolean(cluster_t, "symmetric") {
            cluster.symmetric = v;
        }
        let etcd_t = self.table(cluster_t, "etcd");
        let etcd = etcd_t.and_then(|t| self.etcd(t, &cluster.name));

        let api_t = self.table(root, "api").unwrap_or(&empty);
        self.keys(api_t, &["listen"], "[api]");
        let api_listen = match self.string(api_t, "listen") {
            Some((s, span)) => {
                match s.parse::<SocketAddr>() {
                    Ok(a) => Some(a),
                    Err(_) => {
                        self.d.error(span, format!("bad listen address {s:?}: expected IP:PORT, like \"127.0.0.1:7946\""));
                        None
                    }
                }
            }
            None => DEFAULT_API_LISTEN.parse().ok(),
        };

        // Nodes.
        let mut nodes: Vec<String> = Vec::new();
        let mut node_spans: HashMap<String, Range<usize>> = HashMap::new();
        let mut addresses = HashMap::new();
        for t in self.tables(root, "node") {
            self.keys(t, &["name", "address"], "[[node]]");
            let address = self.string(t, "address").and_then(|(a, span)| {
                a.parse::<std::net::IpAddr>()
                    .map_err(|_| {
                        self.d.error(
                            span,
                            format!("bad address {a:?}: expected an IP address, like \"10.0.0.1\""),
                        )
                    })
                    .ok()
            });
            if let Some((name, span)) = self.required_name(t, "name", "[[node]]") {
                if node_spans.contains_key(&name) {
                    self.d
                        .error(span, format!("node {name:?} is defined twice"));
                } else {
                    if let Some(a) = address {
                        addresses.insert(name.clone(), a);
                    }
                    node_spans.insert(name.clone(), span);
                    nodes.push(name);
                }
            }
        }
        let has_node_tables = !nodes.is_empty() || root.get("node").is_some();
        if !has_node_tables {
            nodes.push(local());
        }

        // Defaults for resources and operations.
        let mut meta_defaults = Meta::default();
        if let Some(t) = self.table(root, "resource_defaults") {
            self.meta(t, &mut meta_defaults, "[resource_defaults]", &[]);
            self.promotable_meta(t, None);
        }
        let mut op_timeout = warden_engine::config::DEFAULT_OP_TIMEOUT;
        if let Some(t) = self.table(root, "op_defaults") {
            self.keys(t, &["timeout"], "[op_defaults]");
            if let Some(v) = self.positive_duration(t, "timeout") {
                op_timeout = v;
            }
        }

        // Fence devices.
        let mut fence_devices = Vec::new();
        let mut node_refs: Vec<Ref> = Vec::new();
        let mut seen_devices = HashMap::new();
        for t in self.tables(root, "fence_device") {
            self.keys(t, &["name", "command", "nodes"], "[[fence_device]]");
            let name = self.required_name(t, "name", "[[fence_device]]");
            if let Some((n, span)) = &name {
                if seen_devices.insert(n.clone(), ()).is_some() {
                    self.d
                        .error(span.clone(), format!("fence device {n:?} is defined twice"));
                }
            }
            let command = self.command(t, "[[fence_device]]");
            let nodes_of = self.string_list(t, "nodes").unwrap_or_default();
            let names = nodes_of.iter().map(|(n, _)| n.clone()).collect();
            node_refs.extend(nodes_of.into_iter().map(|(name, span)| Ref { name, span }));
            if let (Some((name, _)), Some(command)) = (name, command) {
                fence_devices.push(FenceDevice {
                    name,
                    command,
                    nodes: names,
                });
            }
        }
        let fencing = !fence_devices.is_empty() || root.get("fence_device").is_some();
        if etcd.is_some()
            && !fencing
            && matches!(
                cluster.no_quorum_policy,
                NoQuorumPolicy::Freeze | NoQuorumPolicy::Ignore
            )
        {
            self.d.error(
                cluster_t.get("no_quorum_policy").map_or(0..0, |v| v.span()),
                format!(
                    "no_quorum_policy = \"{}\" keeps resources running on a node cut off from etcd while the other nodes recover them: with [cluster.etcd] it needs fence devices ([[fence_device]]) so the lost node is fenced first; use \"stop\" or \"demote\" otherwise",
                    cluster.no_quorum_policy
                ),
            );
        }

        // Resources.
        let mut resources = Vec::new();
        let mut resource_spans: HashMap<String, Range<usize>> = HashMap::new();
        for t in self.tables(root, "resource") {
            if let Some(r) = self.resource(t, &meta_defaults, op_timeout, fencing) {
                if let Some(first) = resource_spans.get(&r.0.id) {
                    let (line, _) = crate::diag::line_col(self.d_src(), first.start);
                    self.d.error(
                        r.1,
                        format!(
                            "resource {:?} is defined twice (first at line {line})",
                            r.0.id
                        ),
                    );
                } else {
                    resource_spans.insert(r.0.id.clone(), r.1);
                    resources.push(r.0);
                }
            }
        }

        // Location constraints and bans.
        let promotable: std::collections::HashSet<String> = resources
            .iter()
            .filter(|r| r.is_promotable())
            .map(|r| r.id.clone())
            .collect();
        let mut locations = Vec::new();
        let mut resource_refs: Vec<Ref> = Vec::new();
        for (key, is_ban) in [("location", false), ("ban", true)] {
            let what = if is_ban { "[[ban]]" } else { "[[location]]" };
            for t in self.tables(root, key) {
                let allowed: &[&str] = if is_ban {
                    &["resource", "node"]
                } else {
                    &["resource", "node", "score", "role"]
                };
                self.keys(t, allowed, what);
                let res = self.required_string(t, "resource", what);
                let role = self.role(t, "role", res.as_ref(), &promotable);
                let node = self.required_string(t, "node", what);
                let score = if is_ban {
                    Some(Score::MINUS_INFINITY)
                } else {
                    match t.get("score") {
                        Some(v) => self.score(v),
                        None => {
                            self.d.error(self.table_span(t), format!("{what} needs a score (an integer, \"INFINITY\" or \"-INFINITY\")"));
                            None
                        }
                    }
                };
                if let Some((r, span)) = &res {
                    resource_refs.push(Ref {
                        name: r.clone(),
                        span: span.clone(),
                    });
                }
                if let Some((n, span)) = &node {
                    node_refs.push(Ref {
                        name: n.clone(),
                        span: span.clone(),
                    });
                }
                if let (Some((r, _)), Some((n, _)), Some(score)) = (res, node, score) {
                    locations.push(Location {
                        role,
                        ..Location::new(r, n, score)
                    });
                }
            }
        }

        // Groups, colocations and orders.
        let mut groups = Vec::new();
        let mut colocations = Vec::new();
        let mut orders = Vec::new();
        let mut constraint_span: Option<Range<usize>> = None;
        for t in self.tables(root, "group") {
            self.keys(t, &["id", "resources"], "[[group]]");
            constraint_span.get_or_insert_with(|| self.table_span(t));
            let id = self.required_name(t, "id", "[[group]]");
            let members = self.string_list(t, "resources").unwrap_or_default();
            if members.is_empty() {
                self.d.error(
                    self.table_span(t),
                    "[[group]] needs `resources`, its members in start order",
                );
            }
            resource_refs.extend(members.iter().map(|(name, span)| Ref {
                name: name.clone(),
                span: span.clone(),
            }));
            if let Some((id, _)) = id {
                groups.push(warden_engine::Group {
                    id,
                    resources: members.into_iter().map(|m| m.0).collect(),
                });
            }
        }
        for t in self.tables(root, "colocation") {
            self.keys(
                t,
                &["resource", "with", "score", "role", "with_role"],
                "[[colocation]]",
            );
            constraint_span.get_or_insert_with(|| self.table_span(t));
            let r = self.required_string(t, "resource", "[[colocation]]");
            let w = self.required_string(t, "with", "[[colocation]]");
            let role = self.role(t, "role", r.as_ref(), &promotable);
            let with_role = self.role(t, "with_role", w.as_ref(), &promotable);
            let score = match t.get("score") {
                Some(v) => self.score(v),
                None => Some(Score::INFINITY),
            };
            for (name, span) in [&r, &w].into_iter().flatten() {
                resource_refs.push(Ref {
                    name: name.clone(),
                    span: span.clone(),
                });
            }
            if let (Some((r, rs)), Some((w, _))) = (r, w) {
                if r == w {
                    self.d
                        .error(rs, format!("{r} cannot be colocated with itself"));
                } else if let Some(score) = score {
                    colocations.push(warden_engine::Colocation {
                        role,
                        with_role,
                        ..warden_engine::Colocation::new(r, w, score)
                    });
                }
            }
        }
        for t in self.tables(root, "order") {
            self.keys(
                t,
                &[
                    "first",
                    "then",
                    "kind",
                    "symmetric",
                    "first_action",
                    "then_action",
                ],
                "[[order]]",
            );
            constraint_span.get_or_insert_with(|| self.table_span(t));
            let f = self.required_string(t, "first", "[[order]]");
            let th = self.required_string(t, "then", "[[order]]");
            let first_action = self.order_action(t, "first_action", f.as_ref(), &promotable);
            let then_action = self.order_action(t, "then_action", th.as_ref(), &promotable);
            let kind = self
                .keyword(t, "kind", warden_engine::OrderKind::ALL)
                .unwrap_or(warden_engine::OrderKind::Mandatory);
            let symmetric = self
                .boolean(t, "symmetric")
                .unwrap_or(kind != warden_engine::OrderKind::Serialize);
            for (name, span) in [&f, &th].into_iter().flatten() {
                resource_refs.push(Ref {
                    name: name.clone(),
                    span: span.clone(),
                });
            }
            if let (Some((f, fs)), Some((th, _))) = (f, th) {
                if f == th {
                    self.d
                        .error(fs, format!("{f} cannot be ordered after itself"));
                } else {
                    orders.push(warden_engine::Order {
                        symmetric,
                        first_action,
                        then_action,
                        ..warden_engine::Order::new(f, th, kind)
                    });
                }
            }
        }

        // Upstreams.
        let mut upstreams = Vec::new();
        let mut upstream_names = HashMap::new();
        for t in self.tables(root, "upstream") {
            if let Some(u) = self.upstream(t) {
                if upstream_names.insert(u.name.clone(), ()).is_some() {
                    self.d.error(
                        self.table_span(t),
                        format!("upstream {:?} is defined twice", u.name),
                    );
                } else {
                    upstreams.push(u);
                }
            }
        }

        // Listeners of the failover proxy.
        let mut listeners = Vec::new();
        for t in self.tables(root, "listener") {
            if let Some(l) = self.listener(t, &upstream_names) {
                listeners.push(l);
            }
        }

        // Every reference must resolve.
        for (_, r, ns) in &self.follows {
            resource_refs.push(Ref {
                name: r.name.clone(),
                span: r.span.clone(),
            });
            node_refs.extend(ns.iter().map(|n| Ref {
                name: n.name.clone(),
                span: n.span.clone(),
            }));
        }
        for r in node_refs {
            if !nodes.contains(&r.name) {
                let hint = suggest(&r.name, nodes.iter().map(String::as_str));
                self.d
                    .error(r.span, format!("unknown node {:?}{hint}", r.name));
            }
        }
        for r in resource_refs {
            if !resource_spans.contains_key(&r.name) {
                let hint = suggest(
                    &r.name,
                    resources.iter().map(|r: &ResourceSpec| r.id.as_str()),
                );
                self.d
                    .error(r.span, format!("unknown resource {:?}{hint}", r.name));
            }
        }

        if !self.d.is_empty() {
            return None;
        }
        let built = Config::new(cluster, nodes, fence_devices, resources, locations)
            .and_then(|c| c.with_constraints(colocations, orders, groups));
        if let (Ok(engine), Some(e)) = (&built, &etcd) {
            if let Err(msg) = crate::cluster::settings::check_budget(&e.timing(), engine) {
                let span = etcd_t
                    .and_then(|t| t.get("lease_ttl").map(|v| v.span()))
                    .or_else(|| etcd_t.map(|t| self.table_span(t)))
                    .unwrap_or(0..0);
                self.d.error(span, msg);
                return None;
            }
        }
        match built {
            Ok(engine) => Some(Loaded {
                engine,
                upstreams,
                health_monitors: std::mem::take(&mut self.health_monitors),
                listeners,
                follows: std::mem::take(&mut self.follows)
                    .into_iter()
                    .map(|f| f.0)
                    .collect(),
                data_dir: PathBuf::from(data_dir),
                api_listen: api_listen?,
                etcd,
                addresses,
            }),
            Err(e) => {
                // Cycles and double group membership: at the first constraint of the file.
                self.d.error(constraint_span.unwrap_or(0..0), e.to_string());
                None
            }
        }
    }

    /// `[cluster.etcd]`.
    fn etcd(&mut self, t: &Table<'_>, cluster_name: &str) -> Option<crate::cluster::EtcdSettings> {
        use crate::cluster::{EtcdSettings, TlsFiles, settings::DEFAULT_LEASE_TTL};
        self.keys(t, ETCD_KEYS, "[cluster.etcd]");
        let mut ok = true;
        let mut endpoints = Vec::new();
        match self.string_list(t, "endpoints") {
            None if t.get("endpoints").is_none() => {
                self.d.error(
                    self.table_span(t),
                    "[cluster.etcd] needs `endpoints` (like [\"http://10.0.0.1:2379\"])",
                );
                ok = false;
            }
            None => ok = false,
            Some(list) if list.is_empty() => {
                self.d.error(
                    t.get("endpoints").map_or(0..0, |v| v.span()),
                    "`endpoints` must name at least one etcd member",
                );
                ok = false;
            }
            Some(list) => {
                for (e, span) in list {
                    let rest = e
                        .strip_prefix("http://")
                        .or_else(|| e.strip_prefix("https://"));
                    let hostport = rest.map(|r| r.trim_end_matches('/'));
                    let good = hostport.is_some_and(|hp| {
                        hp.rsplit_once(':').is_some_and(|(h, p)| {
                            !h.is_empty()
                                && !h.contains('/')
                                && p.parse::<u16>().is_ok_and(|p| p > 0)
                        })
                    });
                    if good {
                        endpoints.push(e);
                    } else {
                        self.d.error(
                            span,
                            format!("bad etcd endpoint {e:?}: expected http://HOST:PORT or https://HOST:PORT, like \"http://10.0.0.1:2379\""),
                        );
                        ok = false;
                    }
                }
            }
        }
        let mut lease_ttl = DEFAULT_LEASE_TTL;
        if let Some(v) = t.get("lease_ttl") {
            match self.duration_value(v) {
                Some(d) if d < Duration::from_secs(1) => {
                    self.d.error(
                        v.span(),
                        "`lease_ttl` must be at least 1s (etcd's leases count whole seconds, and its minimum is 1.5 x the election timeout, rounded up)",
                    );
                    ok = false;
                }
                Some(d) if d.subsec_nanos() != 0 => {
                    self.d.error(
                        v.span(),
                        format!("`lease_ttl` must be whole seconds (etcd's leases count seconds), like \"{}s\"", d.as_secs().max(1)),
                    );
                    ok = false;
                }
                Some(d) if d > Duration::from_secs(3600) => {
                    self.d.error(v.span(), "`lease_ttl` must be at most 1h");
                    ok = false;
                }
                Some(d) => lease_ttl = d,
                None => ok = false,
            }
        }
        let prefix = match self.string(t, "prefix") {
            Some((p, span)) if !p.starts_with('/') || p.len() < 2 => {
                self.d.error(
                    span,
                    format!("bad prefix {p:?}: expected a key path like \"/warden/demo\""),
                );
                ok = false;
                String::new()
            }
            Some((p, _)) => p.trim_end_matches('/').to_owned(),
            None => format!("/warden/{cluster_name}"),
        };
        let ca = self.string(t, "ca").map(|v| PathBuf::from(v.0));
        let cert = self.string(t, "cert");
        let key = self.string(t, "key");
        let cert_key = match (cert, key) {
            (Some(c), Some(k)) => Some((PathBuf::from(c.0), PathBuf::from(k.0))),
            (None, None) => None,
            (Some((_, span)), None) | (None, Some((_, span))) => {
                self.d.error(
                    span,
                    "`cert` and `key` go together (a client certificate and its key)",
                );
                ok = false;
                None
            }
        };
        if ca.is_none() && endpoints.iter().any(|e| e.starts_with("https://")) {
            self.d.error(
                t.get("endpoints").map_or(0..0, |v| v.span()),
                "https endpoints need `ca` (the certificate of the authority that signed the etcd servers')",
            );
            ok = false;
        }
        let tls = (ca.is_some() || cert_key.is_some()).then_some(TlsFiles { ca, cert_key });
        if tls.is_some() && endpoints.iter().any(|e| e.starts_with("http://")) {
            self.d.error(
                t.get("endpoints").map_or(0..0, |v| v.span()),
                "TLS files are set (`ca`, `cert`, `key`): the endpoints must be https://",
            );
            ok = false;
        }
        let user = self.string(t, "user");
        let password = self.string(t, "password");
        let auth = match (user, password) {
            (Some(u), Some(p)) => Some((u.0, p.0)),
            (None, None) => None,
            (Some((_, span)), None) | (None, Some((_, span))) => {
                self.d.error(span, "`user` and `password` go together");
                ok = false;
                None
            }
        };
        ok.then_some(EtcdSettings {
            endpoints,
            lease_ttl,
            prefix,
            tls,
            auth,
        })
    }

    fn d_src(&self) -> &'s str {
        // Diagnostics keeps the source; expose it for "first defined at" messages.
        self.d.src()
    }

    fn resource(
        &mut self,
        t: &Table<'_>,
        meta_defaults: &Meta,
        op_timeout: Duration,
        fencing: bool,
    ) -> Option<(ResourceSpec, Range<usize>)> {
        self.keys(t, RESOURCE_KEYS, "[[resource]]");
        let (id, id_span) = self.required_name(t, "id", "[[resource]]")?;
        let what = format!("resource {id:?}");
        let promotable = self.boolean(t, "promotable").unwrap_or(false);
        let class = self.required_string(t, "class", &what);
        let agent = match class.as_ref().map(|(c, s)| (c.as_str(), s.clone())) {
            Some(("ocf", _)) => {
                for k in PROCESS_KEYS {
                    self.forbid(
                        t,
                        k,
                        "an ocf resource runs its agent; this key is for class \"process\"",
                    );
                }
                let provider = self
                    .string(t, "provider")
                    .map_or("heartbeat".to_owned(), |v| v.0);
                let kind = self.required_string(t, "type", &what);
                kind.map(|(kind, _)| Agent::Ocf { provider, kind })
            }
            Some(("process", _)) => {
                for k in ["provider", "type"] {
                    self.forbid(t, k, "`provider` and `type` are for class \"ocf\"");
                }
                self.forbid(
                    t,
                    "params",
                    "`params` are passed to OCF agents; a process takes its `command`",
                );
                self.process(t, &what).map(Agent::Process)
            }
            Some(("systemd", span)) => {
                self.d.error(
                    span,
                    "class \"systemd\" is not supported yet (allowed: ocf, process)",
                );
                None
            }
            Some((other, span)) => {
                self.d.error(
                    span,
                    format!("unknown class {other:?} (allowed: ocf, process)"),
                );
                None
            }
            None => None,
        };

        let mut params = Vec::new();
        if let Some(pt) = self.table(t, "params") {
            for (k, v) in pt.iter() {
                let key = k.get_ref().to_string();
                if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    self.d.error(
                        k.span(),
                        format!("bad parameter name {key:?}: use letters, digits and _"),
                    );
                    continue;
                }
                let value = match v.get_ref() {
                    DeValue::String(s) => s.to_string(),
                    DeValue::Integer(i) => i.to_string(),
                    DeValue::Float(f) => f.to_string(),
                    DeValue::Boolean(b) => b.to_string(),
                    other => {
                        self.d.error(
                            v.span(),
                            format!(
                                "parameter {key:?} must be a string, number or boolean, not {}",
                                other.type_str()
                            ),
                        );
                        continue;
                    }
                };
                params.push((key, value));
            }
        }

        let mut meta = meta_defaults.clone();
        let mut promotable_spec = promotable.then(Promotable::default);
        if let Some(mt) = self.table(t, "meta") {
            let extra = if promotable {
                PROMOTABLE_META_KEYS
            } else {
                &[]
            };
            self.meta(mt, &mut meta, "meta", extra);
            self.promotable_meta(mt, promotable_spec.as_mut());
        }

        let is_process = matches!(agent, Some(Agent::Process(_)));
        let health = match self.table(t, "monitor") {
            Some(mt) => self.health_monitor(mt, &id),
            None => None,
        };
        let mut ops: Vec<OpSpec> = Vec::new();
        let mut op_spans: Vec<Range<usize>> = Vec::new();
        if let Some(arr) = self.array(t, "ops") {
            for v in arr.iter() {
                let Some(ot) = v.get_ref().as_table() else {
                    self.d.error(v.span(), format!("an operation is a table like {{ name = \"monitor\", interval = \"10s\" }}, not {}", v.get_ref().type_str()));
                    continue;
                };
                if let Some(op) = self.op(ot, v.span(), op_timeout, fencing, is_process, promotable)
                {
                    if let Some(i) = ops
                        .iter()
                        .position(|o| o.name == op.name && o.interval == op.interval)
                    {
                        let (line, _) = crate::diag::line_col(self.d_src(), op_spans[i].start);
                        self.d.error(v.span(), format!(
                            "duplicate operation {} with interval {} (first at line {line}); (name, interval) must be unique",
                            op.name,
                            duration::format(op.interval)
                        ));
                    } else {
                        ops.push(op);
                        op_spans.push(v.span());
                    }
                }
            }
        }
        // A health-check monitor is a recurring monitor at its interval (on_fail and the rest
        // apply to it); the daemon runs the check instead of the agent's monitor.
        if let Some((hm, on_fail, span)) = health {
            match ops.iter_mut().find(|o| o.name == OpName::Monitor && o.interval == hm.check.interval) {
                Some(_) => self.d.error(span, format!("an operation already monitors every {}: give the health check another interval", duration::format(hm.check.interval))),
                None => {
                    let mut op = OpSpec::new(OpName::Monitor, hm.check.interval);
                    op.timeout = hm.check.timeout + Duration::from_secs(1);
                    op.on_fail = on_fail;
                    ops.push(op);
                    self.health_monitors.push(hm);
                }
            }
        }
        // A process is watched all the time; it gets a recurring monitor when it has none, so its
        // exit has an operation to count against.
        // (A promotable process gets one per role: its promoted copy runs only promoted
        // monitors, and its exit must count against one of them.)
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
            implicit.timeout = op_timeout;
            implicit.role = role;
            ops.push(implicit);
        }
        if is_process && !promotable {
            for k in ["promote", "demote"] {
                self.forbid(
                    t,
                    k,
                    "promote and demote commands are for resources with `promotable = true`",
                );
            }
        }
        let mut spec = ResourceSpec::new(id, agent?);
        spec.params = params;
        spec.meta = meta;
        spec.ops = ops;
        spec.promotable = promotable_spec;
        Some((spec, id_span))
    }

    /// A constraint's `role` key: `started` (the default: wherever it runs) or `promoted`,
    /// which only a promotable `resource` has.
    fn role(
        &mut self,
        t: &Table<'_>,
        key: &str,
        resource: Option<&(String, Range<usize>)>,
        promotable: &std::collections::HashSet<String>,
    ) -> OpRole {
        self.plain_or_promoted(
            t,
            key,
            resource,
            promotable,
            OpRole::Started,
            OpRole::Promoted,
        )
    }

    /// An order's `first_action` / `then_action`: `start` (the default) or `promote`, which
    /// only a promotable resource has.
    fn order_action(
        &mut self,
        t: &Table<'_>,
        key: &str,
        resource: Option<&(String, Range<usize>)>,
        promotable: &std::collections::HashSet<String>,
    ) -> OpName {
        self.plain_or_promoted(t, key, resource, promotable, OpName::Start, OpName::Promote)
    }

    /// A keyword that is `plain` (the default) or `promoted`, the latter only for a promotable
    /// `resource`.
    fn plain_or_promoted<T: Copy + PartialEq + std::fmt::Display + std::str::FromStr>(
        &mut self,
        t: &Table<'_>,
        key: &str,
        resource: Option<&(String, Range<usize>)>,
        promotable: &std::collections::HashSet<String>,
        plain: T,
        promoted: T,
    ) -> T {
        let Some(v) = t.get(key) else {
            return plain;
        };
        match self.keyword_value(v, &[plain, promoted]) {
            Some(k) if k == promoted => match resource {
                Some((r, _)) if !promotable.contains(r) => {
                    self.d.error(
                        v.span(),
                        format!(
                            "{key} \"{promoted}\" needs {r:?} to be promotable (`promotable = true`)"
                        ),
                    );
                    plain
                }
                _ => promoted,
            },
            _ => plain,
        }
    }

    /// A `[[listener]]` of the failover proxy.
    fn listener(
        &mut self,
        t: &Table<'_>,
        upstream_names: &HashMap<String, ()>,
    ) -> Option<crate::proxy::ListenerSpec> {
        use crate::proxy::balance::{Balance, Failback};
        use crate::proxy::{ListenerSpec, Protocol};
        const WHAT: &str = "[[listener]]";
        self.keys(
            t,
            &[
                "name",
                "listen",
                "protocol",
                "upstream",
                "balance",
                "all_backups",
                "failback",
                "shutdown_sessions",
                "shutdown_backup_sessions",
                "connect_timeout",
                "upstream_timeout",
                "forwarded_for",
                "client_keepalive",
                "upstream_keepalive",
                "idle_timeout",
            ],
            WHAT,
        );
        let name = self.required_name(t, "name", WHAT);
        let listen = match self.required_string(t, "listen", WHAT) {
            Some((a, span)) => match a.parse::<SocketAddr>() {
                Ok(a) => Some(a),
                Err(_) => {
                    self.d
                        .error(span, format!("bad listen address {a:?}: expected IP:PORT"));
                    None
                }
            },
            None => None,
        };
        let upstream = self.required_string(t, "upstream", WHAT);
        if let Some((u, span)) = &upstream {
            if !upstream_names.contains_key(u) {
                let names: Vec<&str> = upstream_names.keys().map(String::as_str).collect();
                let hint = suggest(u, names.into_iter());
                self.d
                    .error(span.clone(), format!("unknown upstream {u:?}{hint}"));
            }
        }
        // Every key is checked even when a required one is missing.
        let complete = name.is_some() && listen.is_some() && upstream.is_some();
        let mut l = ListenerSpec::tcp(
            &name.map(|n| n.0).unwrap_or_default(),
            listen.unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0))),
            &upstream.map(|u| u.0).unwrap_or_default(),
        );
        if let Some((v, span)) = self.string(t, "protocol") {
            match v.as_str() {
                "tcp" => l.protocol = Protocol::Tcp,
                "http" => l.protocol = Protocol::Http,
                _ => self
                    .d
                    .error(span, format!("unknown protocol {v:?} (allowed: tcp, http)")),
            }
        }
        if let Some((v, span)) = self.string(t, "balance") {
            match Balance::parse(&v) {
                Some(b) => l.policy.balance = b,
                None => {
                    let hint = did_you_mean(&v, Balance::NAMES)
                        .map(|s| format!("; did you mean {s:?}?"))
                        .unwrap_or_default();
                    self.d.error(
                        span,
                        format!(
                            "unknown balance {v:?}{hint} (allowed: {})",
                            Balance::NAMES.join(", ")
                        ),
                    )
                }
            }
        }
        if let Some(v) = self.boolean(t, "all_backups") {
            l.policy.all_backups = v;
        }
        if let Some(v) = t.get("failback") {
            let allowed = "\"preempt\", \"no_preempt\" or { preempt_delay = \"30s\" }";
            match v.get_ref() {
                DeValue::String(s) if s.as_ref() == "preempt" => {
                    l.policy.failback = Failback::Preempt
                }
                DeValue::String(s) if s.as_ref() == "no_preempt" => {
                    l.policy.failback = Failback::NoPreempt
                }
                DeValue::Table(ft) => {
                    self.keys(ft, &["preempt_delay"], "failback");
                    match self.positive_duration(ft, "preempt_delay") {
                        Some(d) => l.policy.failback = Failback::PreemptDelay(d),
                        None if ft.get("preempt_delay").is_none() => self
                            .d
                            .error(v.span(), format!("failback: expected {allowed}")),
                        None => {}
                    }
                }
                _ => self
                    .d
                    .error(v.span(), format!("failback: expected {allowed}")),
            }
        }
        for (key, slot) in [
            ("shutdown_sessions", &mut l.shutdown_sessions),
            ("shutdown_backup_sessions", &mut l.shutdown_backup_sessions),
            ("forwarded_for", &mut l.forwarded_for),
        ] {
            if let Some(v) = self.boolean(t, key) {
                *slot = v;
            }
        }
        for (key, slot) in [
            ("connect_timeout", &mut l.connect_timeout),
            ("upstream_timeout", &mut l.upstream_timeout),
            ("client_keepalive", &mut l.client_keepalive),
            ("upstream_keepalive", &mut l.upstream_keepalive),
        ] {
            if let Some(d) = self.positive_duration(t, key) {
                *slot = d;
            }
        }
        if let Some(d) = self.positive_duration(t, "idle_timeout") {
            l.idle_timeout = Some(d);
        }
        if l.protocol == Protocol::Tcp {
            for key in [
                "upstream_timeout",
                "forwarded_for",
                "client_keepalive",
                "upstream_keepalive",
            ] {
                self.forbid(t, key, "it applies to protocol = \"http\"");
            }
        }
        complete.then_some(l)
    }

    /// `clone_max`, `promoted_max`, `notify` and `promotion_score` of a promotable resource.
    fn promotable_meta(&mut self, t: &Table<'_>, spec: Option<&mut Promotable>) {
        let Some(spec) = spec else {
            for k in PROMOTABLE_META_KEYS {
                self.forbid(t, k, "it applies to resources with `promotable = true`");
            }
            return;
        };
        if let Some(v) = t.get("clone_max") {
            match self.u32_value(v, "clone_max") {
                Some(0) => self.d.error(v.span(), "`clone_max` must be at least 1"),
                Some(n) => spec.clone_max = Some(n),
                None => {}
            }
        }
        if let Some(v) = t.get("promoted_max") {
            if let Some(n) = self.u32_value(v, "promoted_max") {
                spec.promoted_max = n;
            }
        }
        if let Some(v) = self.boolean(t, "notify") {
            spec.notify = v;
        }
        if let Some(v) = t.get("promotion_score") {
            spec.score = self.score(v);
        }
    }

    /// The keys an upstream check and a health monitor share: `interval`, `timeout`, `fall`,
    /// `rise`, `valid_statuses`, `body`.
    fn check_common(&mut self, t: &Table<'_>, check: &mut crate::check::CheckSpec) {
        if let Some(d) = self.positive_duration(t, "interval") {
            check.interval = d;
        }
        if let Some(d) = self.positive_duration(t, "timeout") {
            check.timeout = d;
        }
        for (key, slot) in [
            ("fall", &mut check.hysteresis.fall),
            ("rise", &mut check.hysteresis.rise),
        ] {
            if let Some(v) = t.get(key) {
                match self.u32_value(v, key) {
                    Some(0) => self
                        .d
                        .error(v.span(), format!("`{key}` must be at least 1")),
                    Some(n) => *slot = n,
                    None => {}
                }
            }
        }
        if let Some(arr) = self.array(t, "valid_statuses") {
            let mut codes = Vec::new();
            for v in arr {
                match self.int_value(v, "valid_statuses").map(u16::try_from) {
                    Some(Ok(c)) if (100..600).contains(&c) => codes.push(c),
                    Some(_) => self
                        .d
                        .error(v.span(), "an HTTP status is between 100 and 599"),
                    None => {}
                }
            }
            check.valid_statuses = Some(codes);
        }
        check.body = self.string(t, "body").map(|v| v.0);
    }

    fn upstream(&mut self, t: &Table<'_>) -> Option<crate::check::Upstream> {
        use crate::check::{CheckKind, CheckSpec, Upstream};
        self.keys(
            t,
            &[
                "name",
                "primary",
                "backup",
                "check",
                "from_resource",
                "nodes",
            ],
            "[[upstream]]",
        );
        let (name, name_span) = self.required_name(t, "name", "[[upstream]]")?;
        let primary = self.peers(t, "primary");
        let mut backup = self.peers(t, "backup");
        if let Some((resource, rspan)) = self.string(t, "from_resource") {
            for k in ["primary", "backup"] {
                self.forbid(
                    t,
                    k,
                    "the peers of a `from_resource` upstream are its `nodes`",
                );
            }
            let mut nodes = Vec::new();
            let mut node_refs = Vec::new();
            match self.table(t, "nodes") {
                Some(nt) => {
                    for (k, v) in nt.iter() {
                        let node = k.get_ref().to_string();
                        let Some(addr) = v.get_ref().as_str() else {
                            self.type_error(v, "\"host:port\" for the node");
                            continue;
                        };
                        match crate::check::parse_peer_addr(addr) {
                            Ok((host, port)) => {
                                backup.push(crate::check::Peer::new(addr.to_owned(), host, port));
                                nodes.push((node.clone(), addr.to_owned()));
                                node_refs.push(Ref {
                                    name: node,
                                    span: k.span(),
                                });
                            }
                            Err(e) => self.d.error(v.span(), e),
                        }
                    }
                }
                None => self.d.error(
                    rspan.clone(),
                    format!("upstream {name:?} follows {resource:?}: add `nodes = {{ node1 = \"10.0.0.1:5432\", ... }}`, the address of each node's copy"),
                ),
            }
            self.follows.push((
                crate::follow::Follow {
                    upstream: name.clone(),
                    resource: resource.clone(),
                    nodes,
                },
                Ref {
                    name: resource,
                    span: rspan,
                },
                node_refs,
            ));
        } else if t.get("nodes").is_some() {
            self.forbid(
                t,
                "nodes",
                "`nodes` gives the addresses of a `from_resource` upstream",
            );
        } else if t.get("primary").is_none() && t.get("backup").is_none() {
            self.d.error(
                name_span,
                format!("upstream {name:?} has no peers: add `primary` (and `backup`), or `from_resource`"),
            );
        }
        let mut check = CheckSpec::default();
        let empty = Table::default();
        let ct = self.table(t, "check").unwrap_or(&empty);
        self.keys(
            ct,
            &[
                "type",
                "http_req",
                "method",
                "path",
                "host",
                "headers",
                "interval",
                "timeout",
                "fall",
                "rise",
                "valid_statuses",
                "body",
                "concurrency",
                "jitter",
                "port",
                "command",
                "unknown",
                "sni",
                "verify",
                "ca",
                "keepalive",
            ],
            "[upstream.check]",
        );
        let keepalive = self.boolean(ct, "keepalive").unwrap_or(false);
        let kind = self.string(ct, "type");
        let host = self.string(ct, "host").map_or(name.clone(), |v| v.0);
        check.kind = match kind.as_ref().map(|(k, s)| (k.as_str(), s.clone())) {
            None | Some(("tcp", _)) => CheckKind::Tcp,
            Some((scheme @ ("http" | "https"), type_span)) => {
                let request = match self.string(ct, "http_req") {
                    Some((raw, _)) => raw.into_bytes(),
                    None => {
                        let method = self.string(ct, "method").map_or("GET".to_owned(), |v| v.0);
                        let path = self.string(ct, "path").map_or("/".to_owned(), |v| v.0);
                        // A kept connection speaks HTTP/1.1 (persistent by default).
                        let version = if keepalive { "1.1" } else { "1.0" };
                        let mut req = format!("{method} {path} HTTP/{version}\r\nHost: {host}\r\n");
                        if let Some(ht) = self.table(ct, "headers") {
                            for (k, v) in ht.iter() {
                                match v.get_ref().as_str() {
                                    Some(v) => req.push_str(&format!("{}: {v}\r\n", k.get_ref())),
                                    None => self.d.error(v.span(), "a header value is a string"),
                                }
                            }
                        }
                        req.push_str("\r\n");
                        req.into_bytes()
                    }
                };
                let tls = if scheme == "https" {
                    let sni = self.string(ct, "sni").map_or(host.clone(), |v| v.0);
                    let verify = self.boolean(ct, "verify").unwrap_or(true);
                    let ca = self.string(ct, "ca").map(|v| v.0);
                    match crate::check::tls::client(&sni, verify, ca.as_deref().map(Path::new)) {
                        Ok(c) => Some(c),
                        Err(e) => {
                            let at = ct
                                .get("ca")
                                .or(ct.get("sni"))
                                .map_or(type_span, |v| v.span());
                            self.d.error(at, e);
                            None
                        }
                    }
                } else {
                    for k in ["sni", "verify", "ca"] {
                        self.forbid(ct, k, "TLS settings are for type = \"https\"");
                    }
                    None
                };
                CheckKind::Http { request, tls }
            }
            Some(("exec", _)) => match self.command(ct, "an exec check") {
                Some(command) => CheckKind::Exec { command },
                None => CheckKind::Tcp,
            },
            Some((other, span)) => {
                self.d.error(
                    span,
                    format!("unknown check type {other:?} (allowed: http, https, tcp, exec)"),
                );
                CheckKind::Tcp
            }
        };
        self.check_common(ct, &mut check);
        check.keepalive = keepalive;
        if keepalive && !matches!(check.kind, CheckKind::Http { tls: None, .. }) {
            self.forbid(
                ct,
                "keepalive",
                "kept connections are for type = \"http\" checks",
            );
        }
        check.jitter = check.interval / 10;
        if let Some(v) = ct.get("jitter") {
            if let Some(d) = self.duration_value(v) {
                check.jitter = d;
            }
        }
        if let Some(v) = ct.get("concurrency") {
            match self.u32_value(v, "concurrency") {
                Some(0) => self.d.error(v.span(), "`concurrency` must be at least 1"),
                Some(n) => check.concurrency = n as usize,
                None => {}
            }
        }
        if let Some((u, span)) = self.string(ct, "unknown") {
            match u.as_str() {
                "up" => check.unknown_routable = true,
                "down" => check.unknown_routable = false,
                other => self.d.error(span, format!("unknown = {other:?}: how a peer not yet checked is routed (allowed: up, down)")),
            }
        }
        if let Some(v) = ct.get("port") {
            match self.int_value(v, "port").map(u16::try_from) {
                Some(Ok(p)) if p > 0 => check.port = Some(p),
                Some(_) => self.d.error(v.span(), "a port is between 1 and 65535"),
                None => {}
            }
        }
        Some(Upstream {
            name,
            primary,
            backup,
            check,
        })
    }

    /// Peers: `"host:port"` or `{ addr = "host:port", weight, max_fails, fail_timeout, down }`.
    fn peers(&mut self, t: &Table<'_>, key: &str) -> Vec<crate::check::Peer> {
        let mut out = Vec::new();
        for v in self.array(t, key).unwrap_or_default() {
            let (addr, span, table) = match v.get_ref() {
                DeValue::String(s) => (s.to_string(), v.span(), None),
                DeValue::Table(pt) => {
                    self.keys(
                        pt,
                        &["addr", "weight", "max_fails", "fail_timeout", "down"],
                        "a peer",
                    );
                    match self.required_string(pt, "addr", "a peer") {
                        Some((a, s)) => (a, s, Some(pt)),
                        None => continue,
                    }
                }
                other => {
                    self.d.error(
                        v.span(),
                        format!(
                            "a peer is \"host:port\" or a table, not {}",
                            other.type_str()
                        ),
                    );
                    continue;
                }
            };
            let (host, port) = match crate::check::parse_peer_addr(&addr) {
                Ok(hp) => hp,
                Err(e) => {
                    self.d.error(span, e);
                    continue;
                }
            };
            let mut peer = crate::check::Peer::new(addr, host, port);
            if let Some(pt) = table {
                if let Some(v) = pt.get("weight") {
                    match self.u32_value(v, "weight") {
                        Some(0) => self.d.error(v.span(), "`weight` must be at least 1"),
                        Some(w) => peer.weight = w,
                        None => {}
                    }
                }
                if let Some(v) = pt.get("max_fails") {
                    if let Some(n) = self.u32_value(v, "max_fails") {
                        peer.max_fails = n;
                    }
                }
                if let Some(v) = pt.get("fail_timeout") {
                    if let Some(d) = self.duration_value(v) {
                        peer.fail_timeout = d;
                    }
                }
                if let Some(b) = self.boolean(pt, "down") {
                    peer.down = b;
                }
            }
            out.push(peer);
        }
        out
    }

    /// `monitor = { http = "http://host:port/path" | tcp = "host:port" | exec = [...], interval,
    /// timeout, fall, rise, valid_statuses, body, on_fail }`.
    fn health_monitor(
        &mut self,
        t: &Table<'_>,
        resource: &str,
    ) -> Option<(HealthMonitor, Option<OnFail>, Range<usize>)> {
        use crate::check::{CheckKind, CheckSpec, Peer};
        self.keys(
            t,
            &[
                "http",
                "tcp",
                "exec",
                "interval",
                "timeout",
                "fall",
                "rise",
                "valid_statuses",
                "body",
                "on_fail",
                "grace",
            ],
            "monitor",
        );
        let span = self.table_span(t);
        let mut check = CheckSpec {
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(2),
            ..CheckSpec::default()
        };
        check.hysteresis = warden_engine::health::Hysteresis { fall: 3, rise: 1 };
        let peer_of = |host: String, port: u16, addr: String| Peer {
            addr,
            host,
            port,
            weight: 1,
            max_fails: 1,
            fail_timeout: Duration::ZERO,
            down: false,
        };
        let peer = if let Some((url, uspan)) = self.string(t, "http") {
            let Some(rest) = url.strip_prefix("http://") else {
                self.d.error(
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
                    self.d.error(uspan, e);
                    return None;
                }
            };
            check.kind = CheckKind::Http {
                request: format!("GET {path} HTTP/1.0\r\nHost: {hostport}\r\n\r\n").into_bytes(),
                tls: None,
            };
            peer_of(host, port, hostport.to_owned())
        } else if let Some((addr, aspan)) = self.string(t, "tcp") {
            match crate::check::parse_peer_addr(&addr) {
                Ok((host, port)) => peer_of(host, port, addr),
                Err(e) => {
                    self.d.error(aspan, e);
                    return None;
                }
            }
        } else if t.get("exec").is_some() {
            let list = self.string_list(t, "exec")?;
            if list.is_empty() {
                self.d.error(span.clone(), "`exec` must name a program");
                return None;
            }
            check.kind = CheckKind::Exec {
                command: list.into_iter().map(|(s, _)| s).collect(),
            };
            peer_of("127.0.0.1".into(), 1, resource.to_owned())
        } else {
            self.d
                .error(span, "a monitor needs `http`, `tcp` or `exec`");
            return None;
        };
        self.check_common(t, &mut check);
        let mut grace = Duration::from_secs(5);
        if let Some(v) = t.get("grace") {
            if let Some(d) = self.duration_value(v) {
                grace = d;
            }
        }
        let on_fail = match t.get("on_fail") {
            Some(v) => match self.keyword_value(v, OnFail::ALL) {
                Some(f) if f.allowed_for(OpName::Monitor, OpRole::Started) => Some(f),
                Some(f) => {
                    self.d.error(
                        v.span(),
                        format!("on_fail = {:?} is not valid for a monitor", f.as_str()),
                    );
                    None
                }
                None => None,
            },
            None => None,
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

    fn process(&mut self, t: &Table<'_>, what: &str) -> Option<ProcessSpec> {
        let command = self.command(t, what);
        let mut p = ProcessSpec {
            command: Vec::new(),
            stop_signal: "TERM".to_owned(),
            stop_timeout: DEFAULT_STOP_TIMEOUT,
            ..ProcessSpec::default()
        };
        if let Some(et) = self.table(t, "env") {
            for (k, v) in et.iter() {
                let key = k.get_ref().to_string();
                if key.is_empty() || key.contains('=') || key.contains('\0') {
                    self.d
                        .error(k.span(), format!("bad environment variable name {key:?}"));
                    continue;
                }
                match v.get_ref() {
                    DeValue::String(s) => p.env.push((key, s.to_string())),
                    DeValue::Integer(i) => p.env.push((key, i.to_string())),
                    DeValue::Boolean(b) => p.env.push((key, b.to_string())),
                    other => self.d.error(
                        v.span(),
                        format!(
                            "environment variable {key:?} must be a string, not {}",
                            other.type_str()
                        ),
                    ),
                }
            }
        }
        p.cwd = self.string(t, "cwd").map(|v| v.0);
        p.user = self.string(t, "user").map(|v| v.0);
        p.group = self.string(t, "group").map(|v| v.0);
        if let Some((sig, span)) = self.string(t, "stop_signal") {
            let norm = sig.trim_start_matches("SIG").to_ascii_uppercase();
            if STOP_SIGNALS.contains(&norm.as_str()) {
                p.stop_signal = norm;
            } else {
                self.d.error(
                    span,
                    format!(
                        "unknown stop_signal {sig:?} (allowed: {})",
                        STOP_SIGNALS.join(", ")
                    ),
                );
            }
        }
        if let Some(d) = self.positive_duration(t, "stop_timeout") {
            p.stop_timeout = d;
        }
        for key in ["promote", "demote"] {
            let Some(list) = self.string_list(t, key) else {
                continue;
            };
            if list.is_empty() {
                if let Some(v) = t.get(key) {
                    self.d
                        .error(v.span(), format!("`{key}` must name a program"));
                }
                continue;
            }
            let argv = Some(list.into_iter().map(|(s, _)| s).collect());
            if key == "promote" {
                p.promote = argv;
            } else {
                p.demote = argv;
            }
        }
        p.command = command?;
        Some(p)
    }

    fn op(
        &mut self,
        t: &Table<'_>,
        span: Range<usize>,
        default_timeout: Duration,
        fencing: bool,
        is_process: bool,
        promotable: bool,
    ) -> Option<OpSpec> {
        self.keys(t, OP_KEYS, "an operation");
        let name = match t.get("name") {
            Some(v) => self.keyword_value(v, OpName::ALL)?,
            None => {
                self.d.error(span, "an operation needs a name (allowed: start, stop, monitor, promote, demote, notify)");
                return None;
            }
        };
        let mut op = OpSpec::new(name, Duration::ZERO);
        op.timeout = default_timeout;
        if let Some(v) = t.get("interval") {
            if let Some(i) = self.duration_value(v) {
                if !i.is_zero() && name != OpName::Monitor {
                    self.d.error(
                        v.span(),
                        format!("only monitor operations recur; {name} takes no interval"),
                    );
                }
                op.interval = i;
            }
        }
        if let Some(v) = self.positive_duration(t, "timeout") {
            op.timeout = v;
        }
        if let Some(v) = self.boolean(t, "enabled") {
            op.enabled = v;
        }
        if let Some(v) = t.get("role") {
            if let Some(role) = self.keyword_value(v, OpRole::ALL) {
                if role != OpRole::Started && !promotable {
                    self.d.error(
                        v.span(),
                        format!(
                            "role {role:?} applies to resources with `promotable = true`",
                            role = role.as_str()
                        ),
                    );
                }
                op.role = role;
            }
        }
        if let Some(v) = t.get("check_level") {
            op.check_level = self.u32_value(v, "check_level");
        }
        if t.get("command").is_some() {
            if !is_process {
                self.forbid(
                    t,
                    "command",
                    "a monitor command is for class \"process\"; an ocf agent monitors itself",
                );
            } else if name != OpName::Monitor {
                self.forbid(t, "command", "only monitor operations take a command");
            } else {
                op.command = self.command(t, "a monitor");
            }
        }
        if let Some(v) = t.get("on_fail") {
            if let Some(on_fail) = self.keyword_value(v, OnFail::ALL) {
                if !on_fail.allowed_for(name, op.role) {
                    let allowed = OnFail::allowed_values(name, op.role).join(", ");
                    self.d.error(v.span(), format!("on_fail = {:?} is not valid for a {name} operation (allowed: {allowed})", on_fail.as_str()));
                } else if on_fail == OnFail::Fence && !fencing {
                    self.d.error(
                        v.span(),
                        "on_fail = \"fence\" needs fencing: add a [[fence_device]]",
                    );
                }
                op.on_fail = Some(on_fail);
            }
        }
        Some(op)
    }

    /// Meta attributes; `extra` names further keys the caller reads itself.
    fn meta(&mut self, t: &Table<'_>, meta: &mut Meta, what: &str, extra: &[&str]) {
        let mut allowed = META_KEYS.to_vec();
        allowed.extend(extra);
        // Keys of promotable resources are reported by `promotable_meta` on the others.
        let quiet = Table::from_iter(
            t.iter()
                .filter(|(k, _)| !PROMOTABLE_META_KEYS.contains(&k.get_ref().as_ref()))
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        self.keys(&quiet, &allowed, what);
        if let Some(v) = t.get("migration_threshold") {
            match v.get_ref() {
                DeValue::String(s) if s.eq_ignore_ascii_case("INFINITY") => {
                    meta.migration_threshold = INFINITY_COUNT
                }
                _ => {
                    if let Some(n) = self.u32_value(v, "migration_threshold") {
                        meta.migration_threshold = n.min(INFINITY_COUNT);
                    }
                }
            }
        }
        if let Some(v) = t.get("failure_timeout") {
            if let Some(d) = self.duration_value(v) {
                meta.failure_timeout = (!d.is_zero()).then_some(d);
            }
        }
        if let Some(v) = t.get("resource_stickiness") {
            if let Some(s) = self.score(v) {
                meta.resource_stickiness = s;
            }
        }
        if let Some(v) = self.keyword(t, "target_role", TargetRole::ALL) {
            meta.target_role = v;
        }
        if let Some(v) = self.boolean(t, "is_managed") {
            meta.is_managed = v;
        }
        if let Some(v) = self.boolean(t, "maintenance") {
            meta.maintenance = v;
        }
        if let Some(v) = self.keyword(t, "multiple_active", MultipleActive::ALL) {
            meta.multiple_active = v;
        }
        if let Some(v) = t.get("priority") {
            if let Some(n) = self.int_value(v, "priority") {
                meta.priority = n;
            }
        }
        if let Some(v) = t.get("crash_loop_window") {
            if let Some(d) = self.duration_value(v) {
                meta.crash_loop_window = d;
            }
        }
        if let Some(v) = t.get("crash_loop_delay_max") {
            if let Some(d) = self.duration_value(v) {
                meta.crash_loop_delay_max = d;
            }
        }
    }

    // ---- typed getters; each reports a wrong type at the value's place ----

    fn table_span(&self, t: &Table<'_>) -> Range<usize> {
        t.iter().next().map_or(0..0, |(k, _)| k.span())
    }

    /// Reports keys of `t` that are not in `allowed`.
    fn keys(&mut self, t: &Table<'_>, allowed: &[&str], what: &str) {
        for (k, _) in t.iter() {
            let key: &str = k.get_ref();
            if !allowed.contains(&key) {
                let hint = did_you_mean(key, allowed)
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
                self.d.error(
                    k.span(),
                    format!(
                        "unknown key `{key}` in {what}{hint} (allowed: {})",
                        allowed.join(", ")
                    ),
                );
            }
        }
    }

    fn forbid(&mut self, t: &Table<'_>, key: &str, why: &str) {
        if let Some((k, _)) = t.iter().find(|(k, _)| k.get_ref() == key) {
            self.d
                .error(k.span(), format!("`{key}` does not apply here: {why}"));
        }
    }

    fn type_error(&mut self, v: &Value<'_>, want: &str) {
        self.d.error(
            v.span(),
            format!("expected {want}, found {}", v.get_ref().type_str()),
        );
    }

    fn table<'a, 'i>(&mut self, t: &'a Table<'i>, key: &str) -> Option<&'a Table<'i>> {
        let v = t.get(key)?;
        match v.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => {
                self.type_error(v, &format!("a table for `{key}`"));
                None
            }
        }
    }

    fn array<'a, 'i>(&mut self, t: &'a Table<'i>, key: &str) -> Option<&'a [Value<'i>]> {
        let v = t.get(key)?;
        match v.get_ref() {
            DeValue::Array(a) => Some(a),
            _ => {
                self.type_error(v, &format!("an array for `{key}`"));
                None
            }
        }
    }

    /// The tables of an array of tables (`[[key]]`).
    fn tables<'a, 'i>(&mut self, t: &'a Table<'i>, key: &str) -> Vec<&'a Table<'i>> {
        let mut out = Vec::new();
        for v in self.array(t, key).unwrap_or_default() {
            match v.get_ref() {
                DeValue::Table(t) => out.push(t),
                _ => self.type_error(v, &format!("a table in `{key}` (write [[{key}]])")),
            }
        }
        out
    }

    fn string(&mut self, t: &Table<'_>, key: &str) -> Option<(String, Range<usize>)> {
        let v = t.get(key)?;
        match v.get_ref() {
            DeValue::String(s) => Some((s.to_string(), v.span())),
            _ => {
                self.type_error(v, &format!("a string for `{key}`"));
                None
            }
        }
    }

    fn required_string(
        &mut self,
        t: &Table<'_>,
        key: &str,
        what: &str,
    ) -> Option<(String, Range<usize>)> {
        if t.get(key).is_none() {
            self.d
                .error(self.table_span(t), format!("{what} needs `{key}`"));
            return None;
        }
        self.string(t, key)
    }

    /// A name other things refer to: non-empty, no spaces and none of `: @ = ,`.
    fn required_name(
        &mut self,
        t: &Table<'_>,
        key: &str,
        what: &str,
    ) -> Option<(String, Range<usize>)> {
        let (s, span) = self.required_string(t, key, what)?;
        let ok = !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !ok {
            self.d.error(
                span,
                format!("bad {key} {s:?}: use letters, digits, '_', '-' and '.'"),
            );
            return None;
        }
        Some((s, span))
    }

    fn string_list(&mut self, t: &Table<'_>, key: &str) -> Option<Vec<(String, Range<usize>)>> {
        let arr = self.array(t, key)?;
        let mut out = Vec::new();
        for v in arr {
            match v.get_ref() {
                DeValue::String(s) => out.push((s.to_string(), v.span())),
                _ => self.type_error(v, &format!("a string in `{key}`")),
            }
        }
        Some(out)
    }

    fn command(&mut self, t: &Table<'_>, what: &str) -> Option<Vec<String>> {
        let Some(v) = t.get("command") else {
            self.d.error(
                self.table_span(t),
                format!("{what} needs `command` (an array like [\"/usr/bin/prog\", \"--flag\"])"),
            );
            return None;
        };
        let list = self.string_list(t, "command")?;
        if list.is_empty() {
            self.d.error(v.span(), "`command` must name a program");
            return None;
        }
        Some(list.into_iter().map(|(s, _)| s).collect())
    }

    fn boolean(&mut self, t: &Table<'_>, key: &str) -> Option<bool> {
        let v = t.get(key)?;
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.type_error(v, &format!("true or false for `{key}`"));
                None
            }
        }
    }

    fn keyword<T: Copy + std::fmt::Display + std::str::FromStr>(
        &mut self,
        t: &Table<'_>,
        key: &str,
        all: &[T],
    ) -> Option<T> {
        let v = t.get(key)?;
        self.keyword_value(v, all)
    }

    fn keyword_value<T: Copy + std::fmt::Display + std::str::FromStr>(
        &mut self,
        v: &Value<'_>,
        all: &[T],
    ) -> Option<T> {
        let allowed: Vec<String> = all.iter().map(|x| x.to_string()).collect();
        let DeValue::String(s) = v.get_ref() else {
            self.type_error(v, &format!("one of {}", allowed.join(", ")));
            return None;
        };
        match s.parse::<T>() {
            Ok(x) => Some(x),
            Err(_) => {
                let refs: Vec<&str> = allowed.iter().map(String::as_str).collect();
                let hint = did_you_mean(s, &refs)
                    .map(|h| format!("; did you mean {h:?}?"))
                    .unwrap_or_default();
                self.d.error(
                    v.span(),
                    format!(
                        "unknown value {s:?}{hint} (allowed: {})",
                        allowed.join(", ")
                    ),
                );
                None
            }
        }
    }

    fn int_value(&mut self, v: &Value<'_>, key: &str) -> Option<i64> {
        match v.get_ref() {
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => Some(n),
                Err(_) => {
                    self.d.error(v.span(), format!("`{key}` is out of range"));
                    None
                }
            },
            _ => {
                self.type_error(v, &format!("an integer for `{key}`"));
                None
            }
        }
    }

    fn u32_value(&mut self, v: &Value<'_>, key: &str) -> Option<u32> {
        let n = self.int_value(v, key)?;
        match u32::try_from(n) {
            Ok(n) => Some(n),
            Err(_) => {
                self.d.error(
                    v.span(),
                    format!("`{key}` must be between 0 and {}", u32::MAX),
                );
                None
            }
        }
    }

    fn duration_value(&mut self, v: &Value<'_>) -> Option<Duration> {
        match v.get_ref() {
            DeValue::String(s) => match duration::parse(s) {
                Ok(d) => Some(d),
                Err(e) => {
                    self.d.error(v.span(), e);
                    None
                }
            },
            DeValue::Integer(i) => {
                self.d.error(
                    v.span(),
                    format!(
                        "durations are strings with a unit, like \"{}s\"",
                        i.as_str()
                    ),
                );
                None
            }
            _ => {
                self.type_error(v, "a duration like \"10s\"");
                None
            }
        }
    }

    fn positive_duration(&mut self, t: &Table<'_>, key: &str) -> Option<Duration> {
        let v = t.get(key)?;
        let d = self.duration_value(v)?;
        if d.is_zero() {
            self.d
                .error(v.span(), format!("`{key}` must be longer than 0"));
            return None;
        }
        Some(d)
    }

    fn score(&mut self, v: &Value<'_>) -> Option<Score> {
        match v.get_ref() {
            DeValue::String(s) => match s.to_ascii_uppercase().as_str() {
                "INFINITY" | "+INFINITY" => Some(Score::INFINITY),
                "-INFINITY" => Some(Score::MINUS_INFINITY),
                _ => {
                    self.d.error(
                        v.span(),
                        format!("bad score {s:?}: an integer, \"INFINITY\" or \"-INFINITY\""),
                    );
                    None
                }
            },
            DeValue::Integer(_) => self.int_value(v, "score").map(Score::new),
            _ => {
                self.type_error(v, "a score (an integer, \"INFINITY\" or \"-INFINITY\")");
                None
            }
        }
    }
}

fn suggest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> String {
    let c: Vec<&str> = candidates.collect();
    match did_you_mean(name, &c) {
        Some(s) => format!("; did you mean {s:?}?"),
        None if c.is_empty() => String::new(),
        None => format!(" (known: {})", c.join(", ")),
    }
}

/// The OCF agents a configuration uses, as (provider, type), each once.
pub fn ocf_agents(config: &Config) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = config
        .resources()
        .iter()
        .filter_map(|r| match &r.agent {
            Agent::Ocf { provider, kind } => Some((provider.clone(), kind.clone())),
            Agent::Process(_) => None,
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Checks the `params` of every ocf resource against its agent's meta-data (when known): an
/// unknown parameter or a missing required one is an error at its place in the file.
pub fn check_agent_params(
    src: &str,
    file: &str,
    metadata: &HashMap<(String, String), crate::exec::metadata::AgentMetadata>,
) -> Result<(), FileErrors> {
    let mut d = Diagnostics::new(src);
    let (root, _) = DeTable::parse_recoverable(src);
    let resources = match root.get_ref().get("resource").map(|v| v.get_ref()) {
        Some(DeValue::Array(a)) => a.iter().filter_map(|v| v.get_ref().as_table()).collect(),
        _ => Vec::new(),
    };
    for t in resources {
        let s = |k: &str| t.get(k).and_then(|v| v.get_ref().as_str());
        if s("class") != Some("ocf") {
            continue;
        }
        let (Some(id), Some(kind)) = (t.get("id"), s("type")) else {
            continue;
        };
        let provider = s("provider").unwrap_or("heartbeat");
        let Some(md) = metadata.get(&(provider.to_owned(), kind.to_owned())) else {
            continue;
        };
        let agent = format!("ocf:{provider}:{kind}");
        let known: Vec<&str> = md.parameters.iter().map(|p| p.name.as_str()).collect();
        let given = match t.get("params").map(|v| v.get_ref()) {
            Some(DeValue::Table(p)) => p
                .iter()
                .map(|(k, _)| (k.get_ref().to_string(), k.span()))
                .collect(),
            _ => Vec::new(),
        };
        for (name, span) in &given {
            if md.parameter(name).is_none() {
                let hint = did_you_mean(name, &known)
                    .map(|h| format!("; did you mean `{h}`?"))
                    .unwrap_or_default();
                let allowed = if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                };
                d.error(
                    span.clone(),
                    format!("{agent} has no parameter `{name}`{hint} (its parameters: {allowed})"),
                );
            }
        }
        for p in md.parameters.iter().filter(|p| p.required) {
            if !given.iter().any(|(n, _)| *n == p.name) {
                let what = if p.shortdesc.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", p.shortdesc)
                };
                d.error(
                    id.span(),
                    format!(
                        "resource {:?} needs parameter `{}`{what}: {agent} requires it",
                        id.get_ref().as_str().unwrap_or_default(),
                        p.name
                    ),
                );
            }
        }
    }
    let list = d.finish();
    if list.is_empty() {
        Ok(())
    } else {
        Err(FileErrors {
            file: file.to_owned(),
            list,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(l.api_listen.to_string(), "127.0.0.1:7946");
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
        assert!(e.contains("not supported yet"), "{e}");
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
        assert!(
            e.contains("t.toml:8:6: error: cannot read ca /nonexistent/ca.pem"),
            "{e}"
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
             upstream_timeout = \"2s\"\nforwarded_for = false\nupstream_keepalive = \"5s\"\n"
        ));
        let w = &l.listeners[0];
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
            "{up}[[listener]]\nname = \"front\"\nlisten = \"here\"\nupstream = \"svx\"\nprotocol = \"udp\"\nbalance = \"round-robbin\"\nfailback = \"later\"\nupstream_timeout = \"1s\"\nidle_timeout = \"0s\"\n"
        ));
        for want in [
            "t.toml:6:10: error: bad listen address \"here\"",
            "t.toml:7:12: error: unknown upstream \"svx\"; did you mean \"svc\"?",
            "t.toml:8:12: error: unknown protocol \"udp\" (allowed: tcp, http)",
            "t.toml:9:11: error: unknown balance \"round-robbin\"; did you mean \"round-robin\"?",
            "t.toml:10:12: error: failback: expected \"preempt\", \"no_preempt\" or { preempt_delay = \"30s\" }",
            "t.toml:11:1: error: `upstream_timeout` does not apply here: it applies to protocol = \"http\"",
            "t.toml:12:16: error: `idle_timeout` must be longer than 0",
        ] {
            assert!(e.contains(want), "{want}\n{e}");
        }
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
