//! `[cluster]`, `[cluster.etcd]`, `[api]`, `[[node]]` and `[[fence_device]]`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use warden_engine::{ClusterOptions, FenceDevice, NoQuorumPolicy};

use super::table::{Reader, Section, Span, Tbl};
use super::{DEFAULT_API_LISTEN, DEFAULT_DATA_DIR, Ref};
use crate::cluster::{EtcdSettings, TlsFiles, settings::DEFAULT_LEASE_TTL};

pub(super) const CLUSTER: Section = Section::new("[cluster]", "[cluster]");
pub(super) const ETCD: Section = Section::new("[cluster.etcd]", "[cluster.etcd]");
pub(super) const API: Section = Section::new("[api]", "[api]");
pub(super) const NODE: Section = Section::new("[[node]]", "[[node]]");
pub(super) const FENCE_DEVICE: Section = Section::new("[[fence_device]]", "[[fence_device]]");

/// What `[cluster]` says.
pub(super) struct Cluster {
    pub options: ClusterOptions,
    pub data_dir: PathBuf,
    /// Where `no_quorum_policy` is written, when it is.
    pub no_quorum_policy_at: Option<Span>,
    /// `[cluster.etcd]`, read (None when absent or wrong), with the place of its table and of
    /// its `lease_ttl`.
    pub etcd: Option<EtcdSettings>,
    pub etcd_at: Option<Span>,
}

pub(super) fn cluster(r: &mut Reader<'_>, t: &Tbl<'_, '_>) -> Cluster {
    let mut options = ClusterOptions::default();
    if let Some((v, _)) = r.string(t, "name") {
        options.name = v;
    }
    let data_dir = r
        .string(t, "data_dir")
        .map_or(DEFAULT_DATA_DIR.into(), |v| v.0);
    if let Some(v) = r.boolean(t, "start_failure_is_fatal") {
        options.start_failure_is_fatal = v;
    }
    let mut no_quorum_policy_at = None;
    if let Some((v, span)) = r.keyword(t, "no_quorum_policy", NoQuorumPolicy::ALL) {
        options.no_quorum_policy = v;
        no_quorum_policy_at = Some(span);
    }
    if let Some(v) = r.boolean(t, "symmetric") {
        options.symmetric = v;
    }
    let (etcd, etcd_at) = match r.table(t, "etcd") {
        Some((et, span)) => {
            let name = options.name.clone();
            let (settings, at) = r.section(et, span, ETCD, |r, t| {
                (etcd(r, t, &name), t.span_of("lease_ttl"))
            });
            (settings, Some(at))
        }
        None => (None, None),
    };
    Cluster {
        options,
        data_dir: PathBuf::from(data_dir),
        no_quorum_policy_at,
        etcd,
        etcd_at,
    }
}

/// `[cluster.etcd]`.
fn etcd(r: &mut Reader<'_>, t: &Tbl<'_, '_>, cluster_name: &str) -> Option<EtcdSettings> {
    let mut ok = true;
    let mut endpoints = Vec::new();
    let endpoints_at = t.span_of("endpoints");
    match r.string_list(t, "endpoints") {
        None if t.take("endpoints").is_none() => {
            r.d.error(
                t.span.clone(),
                "[cluster.etcd] needs `endpoints` (like [\"http://10.0.0.1:2379\"])",
            );
            ok = false;
        }
        None => ok = false,
        Some(list) if list.is_empty() => {
            r.d.error(
                endpoints_at.clone(),
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
                        !h.is_empty() && !h.contains('/') && p.parse::<u16>().is_ok_and(|p| p > 0)
                    })
                });
                if good {
                    endpoints.push(e);
                } else {
                    r.d.error(
                        span,
                        format!("bad etcd endpoint {e:?}: expected http://HOST:PORT or https://HOST:PORT, like \"http://10.0.0.1:2379\""),
                    );
                    ok = false;
                }
            }
        }
    }
    let mut lease_ttl = DEFAULT_LEASE_TTL;
    if let Some(v) = t.take("lease_ttl") {
        match r.duration_value(v) {
            Some(d) if d < Duration::from_secs(1) => {
                r.d.error(
                    v.span(),
                    "`lease_ttl` must be at least 1s (etcd's leases count whole seconds, and its minimum is 1.5 x the election timeout, rounded up)",
                );
                ok = false;
            }
            Some(d) if d.subsec_nanos() != 0 => {
                r.d.error(
                    v.span(),
                    format!(
                        "`lease_ttl` must be whole seconds (etcd's leases count seconds), like \"{}s\"",
                        d.as_secs().max(1)
                    ),
                );
                ok = false;
            }
            Some(d) if d > Duration::from_secs(3600) => {
                r.d.error(v.span(), "`lease_ttl` must be at most 1h");
                ok = false;
            }
            Some(d) => lease_ttl = d,
            None => ok = false,
        }
    }
    let prefix = match r.string(t, "prefix") {
        Some((p, span)) if !p.starts_with('/') || p.len() < 2 => {
            r.d.error(
                span,
                format!("bad prefix {p:?}: expected a key path like \"/warden/demo\""),
            );
            ok = false;
            String::new()
        }
        Some((p, _)) => p.trim_end_matches('/').to_owned(),
        None => format!("/warden/{cluster_name}"),
    };
    let ca = r.string(t, "ca").map(|v| PathBuf::from(v.0));
    let cert = r.string(t, "cert");
    let key = r.string(t, "key");
    let cert_key = match (cert, key) {
        (Some(c), Some(k)) => Some((PathBuf::from(c.0), PathBuf::from(k.0))),
        (None, None) => None,
        (Some((_, span)), None) | (None, Some((_, span))) => {
            r.d.error(
                span,
                "`cert` and `key` go together (a client certificate and its key)",
            );
            ok = false;
            None
        }
    };
    if ca.is_none() && endpoints.iter().any(|e| e.starts_with("https://")) {
        r.d.error(
            endpoints_at.clone(),
            "https endpoints need `ca` (the certificate of the authority that signed the etcd servers')",
        );
        ok = false;
    }
    let tls = (ca.is_some() || cert_key.is_some()).then_some(TlsFiles { ca, cert_key });
    if tls.is_some() && endpoints.iter().any(|e| e.starts_with("http://")) {
        r.d.error(
            endpoints_at,
            "TLS files are set (`ca`, `cert`, `key`): the endpoints must be https://",
        );
        ok = false;
    }
    let user = r.string(t, "user");
    let password = r.string(t, "password");
    let auth = match (user, password) {
        (Some(u), Some(p)) => Some((u.0, p.0)),
        (None, None) => None,
        (Some((_, span)), None) | (None, Some((_, span))) => {
            r.d.error(span, "`user` and `password` go together");
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

/// `[api]`: the address the daemon's API listens on (None: wrong, reported).
pub(super) fn api(r: &mut Reader<'_>, t: &Tbl<'_, '_>) -> Option<SocketAddr> {
    match r.string(t, "listen") {
        Some((s, span)) => match s.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                r.d.error(
                    span,
                    format!("bad listen address {s:?}: expected IP:PORT, like \"127.0.0.1:7946\""),
                );
                None
            }
        },
        None => DEFAULT_API_LISTEN.parse().ok(),
    }
}

/// The `[[node]]`s.
pub(super) struct Nodes {
    /// In file order; this machine's host name alone when the file has no `[[node]]`.
    pub names: Vec<String>,
    /// Where each is defined (empty when the file has none).
    pub spans: Vec<Span>,
    pub addresses: HashMap<String, IpAddr>,
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
        });
    }
    if !given {
        out.names.push(local());
    }
    out
}

/// The `[[fence_device]]`s, with the nodes they name (checked later).
pub(super) struct Fencing {
    pub devices: Vec<FenceDevice>,
    pub node_refs: Vec<Ref>,
    /// Fencing is on: the file has fence devices (even ones with errors).
    pub enabled: bool,
    /// Each device's program, with its place.
    pub programs: Vec<(String, Span)>,
}

pub(super) fn fence_devices(r: &mut Reader<'_>, top: &Tbl<'_, '_>) -> Fencing {
    let mut out = Fencing {
        devices: Vec::new(),
        node_refs: Vec::new(),
        enabled: top.take("fence_device").is_some(),
        programs: Vec::new(),
    };
    for (t, at) in r.tables(top, "fence_device") {
        r.section(t, at, FENCE_DEVICE, |r, t| {
            let name = r.required_name(t, "name", "[[fence_device]]");
            if let Some((n, span)) = &name {
                if out.devices.iter().any(|d| d.name == *n) {
                    r.d.error(span.clone(), format!("fence device {n:?} is defined twice"));
                }
            }
            let command = r.argv(t, "command", Some("[[fence_device]]"));
            let nodes_of = r.string_list(t, "nodes").unwrap_or_default();
            let names = nodes_of.iter().map(|(n, _)| n.clone()).collect();
            out.node_refs
                .extend(nodes_of.into_iter().map(|(name, span)| Ref { name, span }));
            if let Some((argv, span)) = &command {
                out.programs.push((argv[0].clone(), span.clone()));
            }
            if let (Some((name, _)), Some((command, _))) = (name, command) {
                out.devices.push(FenceDevice {
                    name,
                    command,
                    nodes: names,
                });
            }
        });
    }
    out
}
