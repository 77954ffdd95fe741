//! `[[upstream]]`, its `[upstream.check]` and its peers.

use std::path::PathBuf;

use toml::de::DeValue;

use super::Ref;
use super::table::{Reader, Section, Span, Tbl};
use crate::check::{CheckKind, CheckSpec, Peer, Upstream};

pub(super) const UPSTREAM: Section = Section::new("[[upstream]]", "[[upstream]]");
pub(super) const CHECK: Section = Section::new("[upstream.check]", "[upstream.check]");
pub(super) const PEER: Section = Section::new("peer", "a peer");

/// An upstream that follows a resource, with the places of the names it refers to.
pub(super) struct FollowRead {
    pub follow: crate::follow::Follow,
    pub resource: Ref,
    pub nodes: Vec<Ref>,
}

/// The upstreams of the file.
pub(super) struct Upstreams {
    pub list: Vec<Upstream>,
    pub follows: Vec<FollowRead>,
}

pub(super) fn upstreams(r: &mut Reader<'_>, top: &Tbl<'_, '_>) -> Upstreams {
    let mut out = Upstreams {
        list: Vec::new(),
        follows: Vec::new(),
    };
    for (t, at) in r.tables(top, "upstream") {
        let read = r.section(t, at, UPSTREAM, |r, t| upstream(r, t, &mut out));
        if let Some((u, span)) = read {
            if out.list.iter().any(|o| o.name == u.name) {
                r.d.error(span, format!("upstream {:?} is defined twice", u.name));
            } else {
                out.list.push(u);
            }
        }
    }
    out
}

fn upstream(r: &mut Reader<'_>, t: &Tbl<'_, '_>, out: &mut Upstreams) -> Option<(Upstream, Span)> {
    let name = r.required_name(t, "name", "[[upstream]]");
    let primary = peers(r, t, "primary");
    let mut backup = peers(r, t, "backup");
    let from_resource = r.string(t, "from_resource");
    let nodes = r.table(t, "nodes");
    let host_default = name.as_ref().map_or(String::new(), |n| n.0.clone());
    let check = r.sub(t, "check", CHECK, |r, ct| check(r, ct, &host_default));
    let (name, name_span) = name?;

    if let Some((resource, rspan)) = from_resource {
        for k in ["primary", "backup"] {
            r.forbid(
                t,
                k,
                "the peers of a `from_resource` upstream are its `nodes`",
            );
        }
        let mut addrs = Vec::new();
        let mut node_refs = Vec::new();
        match nodes {
            Some((nt, _)) => {
                for (k, v) in nt.iter() {
                    let node = k.get_ref().to_string();
                    let Some(addr) = v.get_ref().as_str() else {
                        r.type_error(v, "\"host:port\" for the node");
                        continue;
                    };
                    match Peer::parse(addr) {
                        Ok(peer) => {
                            addrs.push((node.clone(), peer.addr.clone()));
                            backup.push(peer);
                            node_refs.push(Ref {
                                name: node,
                                span: k.span(),
                            });
                        }
                        Err(e) => r.d.error(v.span(), e),
                    }
                }
            }
            None => r.d.error(
                rspan.clone(),
                format!(
                    "upstream {name:?} follows {resource:?}: add `nodes = {{ node1 = \"10.0.0.1:5432\", ... }}`, the address of each node's copy"
                ),
            ),
        }
        out.follows.push(FollowRead {
            follow: crate::follow::Follow {
                upstream: name.clone(),
                resource: resource.clone(),
                nodes: addrs,
            },
            resource: Ref {
                name: resource,
                span: rspan,
            },
            nodes: node_refs,
        });
    } else if nodes.is_some() {
        r.forbid(
            t,
            "nodes",
            "`nodes` gives the addresses of a `from_resource` upstream",
        );
    } else if t.take("primary").is_none() && t.take("backup").is_none() {
        r.d.error(
            name_span.clone(),
            format!(
                "upstream {name:?} has no peers: add `primary` (and `backup`), or `from_resource`"
            ),
        );
    }
    Some((
        Upstream {
            name,
            primary,
            backup,
            check,
        },
        name_span,
    ))
}

/// `[upstream.check]` of `upstream` (its name is the default `Host`).
fn check(r: &mut Reader<'_>, ct: &Tbl<'_, '_>, upstream: &str) -> CheckSpec {
    let mut check = CheckSpec::default();
    // Every key, whatever the type; then what applies to the type.
    let kind = r.string(ct, "type");
    let http_req = r.string(ct, "http_req");
    let method = r.string(ct, "method").map_or("GET".to_owned(), |v| v.0);
    let path = r.string(ct, "path").map_or("/".to_owned(), |v| v.0);
    let host = r.string(ct, "host").map_or(upstream.to_owned(), |v| v.0);
    let mut headers = String::new();
    if let Some((ht, _)) = r.table(ct, "headers") {
        for (k, v) in ht.iter() {
            match v.get_ref().as_str() {
                Some(v) => headers.push_str(&format!("{}: {v}\r\n", k.get_ref())),
                None => r.d.error(v.span(), "a header value is a string"),
            }
        }
    }
    let sni = r.string(ct, "sni");
    let verify = r.boolean(ct, "verify").unwrap_or(true);
    let ca = r.string(ct, "ca");
    let keepalive = r.boolean(ct, "keepalive").unwrap_or(false);
    let command = r.argv(ct, "command", None);
    check_common(r, ct, &mut check);
    check.jitter = check.interval / 10;
    if let Some(d) = r.duration(ct, "jitter") {
        check.jitter = d;
    }
    if let Some(n) = r.at_least_one(ct, "concurrency") {
        check.concurrency = n as usize;
    }
    if let Some((u, span)) = r.string(ct, "unknown") {
        match u.as_str() {
            "up" => check.unknown_routable = true,
            "down" => check.unknown_routable = false,
            other => r.d.error(
                span,
                format!(
                    "unknown = {other:?}: how a peer not yet checked is routed (allowed: up, down)"
                ),
            ),
        }
    }
    if let Some(v) = ct.take("port") {
        match r.int_value(v, "port").map(u16::try_from) {
            Some(Ok(p)) if p > 0 => check.port = Some(p),
            Some(_) => r.d.error(v.span(), "a port is between 1 and 65535"),
            None => {}
        }
    }

    let scheme = kind.as_ref().map(|(k, _)| k.as_str());
    if !matches!(scheme, Some("http" | "https")) {
        for k in ["http_req", "method", "path", "host", "headers"] {
            r.forbid(ct, k, "the request is for type = \"http\" and \"https\"");
        }
    }
    if scheme != Some("https") {
        for k in ["sni", "verify", "ca"] {
            r.forbid(ct, k, "TLS settings are for type = \"https\"");
        }
    }
    if scheme != Some("exec") {
        r.forbid(ct, "command", "a command is for type = \"exec\"");
    }
    check.kind = match kind.as_ref().map(|(k, s)| (k.as_str(), s.clone())) {
        None | Some(("tcp", _)) => CheckKind::Tcp,
        Some((scheme @ ("http" | "https"), type_span)) => {
            let request = match http_req {
                Some((raw, _)) => raw.into_bytes(),
                None => {
                    // A kept connection speaks HTTP/1.1 (persistent by default).
                    let version = if keepalive { "1.1" } else { "1.0" };
                    format!("{method} {path} HTTP/{version}\r\nHost: {host}\r\n{headers}\r\n")
                        .into_bytes()
                }
            };
            let tls = (scheme == "https").then(|| {
                let at = ca
                    .as_ref()
                    .or(sni.as_ref())
                    .map_or(type_span, |(_, s)| s.clone());
                r.found.tls.push((upstream.to_owned(), at));
                crate::check::tls::Tls::new(
                    sni.map_or(host.clone(), |v| v.0),
                    verify,
                    ca.map(|v| PathBuf::from(v.0)),
                )
            });
            CheckKind::Http { request, tls }
        }
        Some(("exec", type_span)) => match command {
            Some((command, span)) => {
                r.found.programs.push((command[0].clone(), span));
                CheckKind::Exec { command }
            }
            None => {
                if ct.take("command").is_none() {
                    r.d.error(
                        type_span,
                        "an exec check needs `command` (an array like [\"/usr/bin/prog\", \"--flag\"])",
                    );
                }
                CheckKind::Tcp
            }
        },
        Some((other, span)) => {
            r.d.error(
                span,
                format!("unknown check type {other:?} (allowed: http, https, tcp, exec)"),
            );
            CheckKind::Tcp
        }
    };
    check.keepalive = keepalive;
    if keepalive && !matches!(check.kind, CheckKind::Http { tls: None, .. }) {
        r.forbid(
            ct,
            "keepalive",
            "kept connections are for type = \"http\" checks",
        );
    }
    check
}

/// The keys an upstream check and a health monitor share: `interval`, `timeout`, `fall`,
/// `rise`, `valid_statuses`, `body`.
pub(super) fn check_common(r: &mut Reader<'_>, t: &Tbl<'_, '_>, check: &mut CheckSpec) {
    if let Some(d) = r.positive_duration(t, "interval") {
        check.interval = d;
    }
    if let Some(d) = r.positive_duration(t, "timeout") {
        check.timeout = d;
    }
    if let Some(n) = r.at_least_one(t, "fall") {
        check.hysteresis.fall = n;
    }
    if let Some(n) = r.at_least_one(t, "rise") {
        check.hysteresis.rise = n;
    }
    if let Some(arr) = r.array(t, "valid_statuses") {
        let mut codes = Vec::new();
        for v in arr {
            match r.int_value(v, "valid_statuses").map(u16::try_from) {
                Some(Ok(c)) if (100..600).contains(&c) => codes.push(c),
                Some(_) => r.d.error(v.span(), "an HTTP status is between 100 and 599"),
                None => {}
            }
        }
        check.valid_statuses = Some(codes);
    }
    check.body = r.string(t, "body").map(|v| v.0);
}

/// Peers: `"host:port"` or `{ addr = "host:port", weight, max_fails, fail_timeout, down }`.
fn peers(r: &mut Reader<'_>, t: &Tbl<'_, '_>, key: &'static str) -> Vec<Peer> {
    let mut out = Vec::new();
    for v in r.array(t, key).unwrap_or_default() {
        let peer = match v.get_ref() {
            DeValue::String(s) => match Peer::parse(s) {
                Ok(peer) => Some(peer),
                Err(e) => {
                    r.d.error(v.span(), e);
                    None
                }
            },
            DeValue::Table(pt) => r.section(pt, v.span(), PEER, peer_table),
            other => {
                r.d.error(
                    v.span(),
                    format!(
                        "a peer is \"host:port\" or a table, not {}",
                        other.type_str()
                    ),
                );
                None
            }
        };
        out.extend(peer);
    }
    out
}

fn peer_table(r: &mut Reader<'_>, t: &Tbl<'_, '_>) -> Option<Peer> {
    let addr = r.required_string(t, "addr", "a peer");
    let weight = r.at_least_one(t, "weight");
    let max_fails = r.u32(t, "max_fails");
    let fail_timeout = r.duration(t, "fail_timeout");
    let down = r.boolean(t, "down");
    let (addr, span) = addr?;
    let mut peer = match Peer::parse(&addr) {
        Ok(p) => p,
        Err(e) => {
            r.d.error(span, e);
            return None;
        }
    };
    if let Some(w) = weight {
        peer.weight = w;
    }
    if let Some(n) = max_fails {
        peer.max_fails = n;
    }
    if let Some(d) = fail_timeout {
        peer.fail_timeout = d;
    }
    if let Some(b) = down {
        peer.down = b;
    }
    Some(peer)
}
