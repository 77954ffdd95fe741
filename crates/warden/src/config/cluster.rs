//! `[cluster]` and `[cluster.etcd]`.

use std::path::PathBuf;
use std::time::Duration;

use warden_engine::{ClusterOptions, NoQuorumPolicy, PlacementStrategy};

use super::DEFAULT_DATA_DIR;
use super::table::{Reader, Section, Span, Tbl};
use crate::cluster::{EtcdSettings, TlsFiles, settings::DEFAULT_LEASE_TTL};

pub(super) const CLUSTER: Section = Section::new("[cluster]", "[cluster]");
pub(super) const ETCD: Section = Section::new("[cluster.etcd]", "[cluster.etcd]");

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
    if let Some((v, _)) = r.keyword(t, "placement_strategy", PlacementStrategy::ALL) {
        options.placement_strategy = v;
    }
    if let Some(v) = r.boolean(t, "shutdown_lock") {
        options.shutdown_lock = v;
    }
    if let Some(d) = r.duration(t, "shutdown_lock_limit") {
        options.shutdown_lock_limit = (!d.is_zero()).then_some(d);
    }
    let health = &mut options.node_health;
    if let Some((v, _)) = r.keyword(
        t,
        "node_health_strategy",
        warden_engine::NodeHealthStrategy::ALL,
    ) {
        health.strategy = v;
    }
    for (key, score) in [
        ("node_health_base", &mut health.base),
        ("node_health_green", &mut health.green),
        ("node_health_yellow", &mut health.yellow),
        ("node_health_red", &mut health.red),
    ] {
        if let Some(v) = r.score(t, key) {
            *score = v;
        }
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
