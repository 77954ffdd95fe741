//! `[api]`.

use std::net::SocketAddr;

use super::DEFAULT_API_LISTEN;
use super::table::{Reader, Section, Tbl};

pub(super) const API: Section = Section::new("[api]", "[api]");

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
