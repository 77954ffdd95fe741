//! `[[listener]]`: the failover proxy's listeners.

use std::net::SocketAddr;

use toml::de::DeValue;

use super::table::{Reader, Section, Span, Tbl, suggest};
use crate::diag::did_you_mean;
use crate::proxy::balance::{Balance, Failback};
use crate::proxy::{ListenerSpec, Protocol};

pub(super) const LISTENER: Section = Section::new("[[listener]]", "[[listener]]");
pub(super) const FAILBACK: Section = Section::new("failback", "failback");

pub(super) fn listeners(
    r: &mut Reader<'_>,
    top: &Tbl<'_, '_>,
    upstreams: &[&str],
) -> Vec<ListenerSpec> {
    let mut out: Vec<ListenerSpec> = Vec::new();
    let mut names: Vec<(String, Span)> = Vec::new();
    for (t, at) in r.tables(top, "listener") {
        let read = r.section(t, at, LISTENER, |r, t| listener(r, t, upstreams));
        if let Some((l, span)) = read {
            if let Some((_, first)) = names.iter().find(|(n, _)| *n == l.name) {
                let (line, _) = crate::diag::line_col(r.d.src(), first.start);
                r.d.error(
                    span,
                    format!(
                        "listener {:?} is defined twice (first at line {line})",
                        l.name
                    ),
                );
            } else {
                names.push((l.name.clone(), span));
                out.push(l);
            }
        }
    }
    out
}

fn listener(
    r: &mut Reader<'_>,
    t: &Tbl<'_, '_>,
    upstreams: &[&str],
) -> Option<(ListenerSpec, Span)> {
    const WHAT: &str = "[[listener]]";
    let name = r.required_name(t, "name", WHAT);
    let listen = match r.required_string(t, "listen", WHAT) {
        Some((a, span)) => match a.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                r.d.error(span, format!("bad listen address {a:?}: expected IP:PORT"));
                None
            }
        },
        None => None,
    };
    let upstream = r.required_string(t, "upstream", WHAT);
    if let Some((u, span)) = &upstream {
        if !upstreams.contains(&u.as_str()) {
            let hint = suggest(u, upstreams.iter().copied());
            r.d.error(span.clone(), format!("unknown upstream {u:?}{hint}"));
        }
    }
    let mut l = ListenerSpec::tcp(
        &name.as_ref().map(|n| n.0.clone()).unwrap_or_default(),
        listen.unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0))),
        &upstream.as_ref().map(|u| u.0.clone()).unwrap_or_default(),
    );
    if let Some((v, span)) = r.string(t, "protocol") {
        match v.as_str() {
            "tcp" => l.protocol = Protocol::Tcp,
            "http" => l.protocol = Protocol::Http,
            _ => {
                r.d.error(span, format!("unknown protocol {v:?} (allowed: tcp, http)"))
            }
        }
    }
    if let Some((v, span)) = r.string(t, "balance") {
        match Balance::parse(&v) {
            Some(b) => l.policy.balance = b,
            None => {
                let hint = did_you_mean(&v, Balance::NAMES)
                    .map(|s| format!("; did you mean {s:?}?"))
                    .unwrap_or_default();
                r.d.error(
                    span,
                    format!(
                        "unknown balance {v:?}{hint} (allowed: {})",
                        Balance::NAMES.join(", ")
                    ),
                )
            }
        }
    }
    if let Some(v) = r.boolean(t, "all_backups") {
        l.policy.all_backups = v;
    }
    let allowed = "\"preempt\", \"no_preempt\" or { preempt_delay = \"30s\" }";
    match t.take("failback") {
        None => {
            // Its keys belong to the file all the same.
            let empty = toml::de::DeTable::default();
            r.section(&empty, t.span.clone(), FAILBACK, |r, ft| {
                r.positive_duration(ft, "preempt_delay")
            });
        }
        Some(v) => match v.get_ref() {
            DeValue::String(s) if s.as_ref() == "preempt" => l.policy.failback = Failback::Preempt,
            DeValue::String(s) if s.as_ref() == "no_preempt" => {
                l.policy.failback = Failback::NoPreempt
            }
            DeValue::Table(ft) => {
                let d = r.section(ft, v.span(), FAILBACK, |r, ft| {
                    (
                        r.positive_duration(ft, "preempt_delay"),
                        ft.take("preempt_delay").is_some(),
                    )
                });
                match d {
                    (Some(d), _) => l.policy.failback = Failback::PreemptDelay(d),
                    (None, false) => r.d.error(v.span(), format!("failback: expected {allowed}")),
                    (None, true) => {}
                }
            }
            _ => r.d.error(v.span(), format!("failback: expected {allowed}")),
        },
    }
    for (key, slot) in [
        ("shutdown_sessions", &mut l.shutdown_sessions),
        ("shutdown_backup_sessions", &mut l.shutdown_backup_sessions),
        ("forwarded_for", &mut l.forwarded_for),
        ("observe_requests", &mut l.observe_requests),
    ] {
        if let Some(v) = r.boolean(t, key) {
            *slot = v;
        }
    }
    for (key, slot) in [
        ("connect_timeout", &mut l.connect_timeout),
        ("upstream_timeout", &mut l.upstream_timeout),
        ("client_keepalive", &mut l.client_keepalive),
        ("client_timeout", &mut l.client_timeout),
        ("upstream_keepalive", &mut l.upstream_keepalive),
    ] {
        if let Some(d) = r.positive_duration(t, key) {
            *slot = d;
        }
    }
    if let Some(list) = r.string_list(t, "trusted_proxies") {
        for (s, span) in list {
            match s.parse::<crate::net::Cidr>() {
                Ok(c) => l.trusted_proxies.push(c),
                Err(e) => r.d.error(span, e),
            }
        }
    }
    if let Some(n) = r.at_least_one(t, "max_connections") {
        l.max_connections = n;
    }
    if let Some(n) = r.size(t, "max_request_body", 1, "1 byte") {
        l.max_request_body = Some(n);
    }
    if let Some(d) = r.positive_duration(t, "idle_timeout") {
        l.idle_timeout = Some(d);
    }
    let format = r.string(t, "access_log_format").and_then(|(f, span)| {
        let parsed = crate::proxy::access::Format::parse(&f);
        if parsed.is_none() {
            r.d.error(
                span,
                format!(
                    "unknown access_log_format {f:?}: use {}",
                    crate::proxy::access::Format::NAMES
                ),
            );
        }
        parsed
    });
    match r.string(t, "access_log") {
        Some((path, span)) if !path.starts_with('/') => {
            r.d.error(
                span,
                format!(
                    "access_log {path:?} must be an absolute path, like \"/var/log/warden/{}.log\"",
                    l.name
                ),
            );
        }
        Some((path, _)) => {
            l.access_log = Some(crate::proxy::access::Spec {
                path: path.into(),
                format: format.unwrap_or_default(),
            });
        }
        None if format.is_some() => {
            r.d.error(
                t.span_of("access_log_format"),
                "access_log_format needs access_log (the file to write)",
            );
        }
        None => {}
    }
    if l.protocol == Protocol::Tcp {
        for key in [
            "upstream_timeout",
            "forwarded_for",
            "trusted_proxies",
            "observe_requests",
            "client_keepalive",
            "client_timeout",
            "upstream_keepalive",
            "max_request_body",
        ] {
            r.forbid(t, key, "it applies to protocol = \"http\"");
        }
    }
    let (_, span) = name?;
    (listen.is_some() && upstream.is_some()).then_some((l, span))
}
