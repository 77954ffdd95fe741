//! `[api]`.

use std::net::SocketAddr;

use super::DEFAULT_API_LISTEN;
use super::table::{Reader, Section, Span, Tbl};

pub(super) const API: Section = Section::new("[api]", "[api]");

/// How many connections the API serves at once by default.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 256;

/// `[api]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiSettings {
    pub listen: SocketAddr,
    /// Names besides IP addresses, `localhost` and this machine's host name that requests may
    /// carry in `Host` (a browser page on another name cannot use the API: DNS rebinding).
    pub hosts: Vec<String>,
    /// Connections served at once; more wait in the kernel's queue.
    pub max_connections: u32,
    /// The operator confirms an API listening on every interface.
    pub public: bool,
    /// Clients allowed (none: every one) and refused (nginx's `allow 127.0.0.1; deny all;`).
    pub allow: Vec<crate::net::Cidr>,
    pub deny: Vec<crate::net::Cidr>,
    /// HTTPS instead of HTTP: the certificate chain and its key (PEM).
    pub tls: Option<ApiTlsFiles>,
}

/// `[api] tls_cert` and `tls_key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiTlsFiles {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

/// What `warden run` and `check-config` say about an API on every interface without `public`.
pub const EXPOSED: &str = "the API listens on every interface: its reads (status, history, metrics) are open to anyone who can reach the port; listen on 127.0.0.1 or a private address, or set `public = true` in [api] to confirm";

impl ApiSettings {
    /// Whether a client at `ip` is refused: it is in `deny`, or `allow` has entries and none
    /// holds it.
    pub fn refuses(&self, ip: std::net::IpAddr) -> bool {
        crate::net::any_contains(&self.deny, ip)
            || (!self.allow.is_empty() && !crate::net::any_contains(&self.allow, ip))
    }

    /// Whether the API listens on every interface without `public = true`.
    pub fn exposed_unconfirmed(&self) -> bool {
        self.listen.ip().is_unspecified() && !self.public
    }
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings {
            listen: DEFAULT_API_LISTEN
                .parse()
                .expect("the default API address parses"),
            hosts: Vec::new(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            public: false,
            allow: Vec::new(),
            deny: Vec::new(),
            tls: None,
        }
    }
}

/// Where `[api]`'s keys the shell checks later are written.
#[derive(Default)]
pub(super) struct ApiPlaces {
    pub listen: Option<Span>,
    pub tls: Option<Span>,
}

/// `[api]` (None: wrong, reported), and the places of `listen` and `tls_cert`.
pub(super) fn api(r: &mut Reader<'_>, t: &Tbl<'_, '_>) -> Option<(ApiSettings, ApiPlaces)> {
    let mut s = ApiSettings::default();
    let mut ok = true;
    let mut at = None;
    if let Some((a, span)) = r.string(t, "listen") {
        match a.parse::<SocketAddr>() {
            Ok(a) => s.listen = a,
            Err(_) => {
                r.d.error(
                    span.clone(),
                    format!("bad listen address {a:?}: expected IP:PORT, like \"127.0.0.1:7946\""),
                );
                ok = false;
            }
        }
        at = Some(span);
    }
    if let Some(list) = r.string_list(t, "hosts") {
        for (h, span) in list {
            let valid = !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'));
            if valid {
                s.hosts.push(h.to_ascii_lowercase());
            } else {
                r.d.error(
                    span,
                    format!(
                        "bad host name {h:?}: a DNS name like \"warden.example.com\", without port"
                    ),
                );
                ok = false;
            }
        }
    }
    if let Some(n) = r.at_least_one(t, "max_connections") {
        s.max_connections = n;
    }
    if let Some(p) = r.boolean(t, "public") {
        s.public = p;
    }
    for (key, out) in [("allow", &mut s.allow), ("deny", &mut s.deny)] {
        for (c, span) in r.string_list(t, key).unwrap_or_default() {
            match c.parse::<crate::net::Cidr>() {
                Ok(c) => out.push(c),
                Err(e) => {
                    r.d.error(span, e);
                    ok = false;
                }
            }
        }
    }
    let mut tls_at = None;
    match (r.string(t, "tls_cert"), r.string(t, "tls_key")) {
        (Some((cert, span)), Some((key, _))) => {
            s.tls = Some(ApiTlsFiles {
                cert: cert.into(),
                key: key.into(),
            });
            tls_at = Some(span);
        }
        (None, None) => {}
        (Some((_, span)), None) | (None, Some((_, span))) => {
            r.d.error(
                span,
                "`tls_cert` and `tls_key` go together (the API's certificate and its key)",
            );
            ok = false;
        }
    }
    ok.then_some((
        s,
        ApiPlaces {
            listen: at,
            tls: tls_at,
        },
    ))
}
