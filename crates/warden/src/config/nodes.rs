//! `[[node]]` and `[[fence_device]]`.

use std::collections::HashMap;
use std::net::IpAddr;

use warden_engine::FenceDevice;

use super::Ref;
use super::table::{Reader, Section, Span, Tbl};

pub(super) const NODE: Section = Section::new("[[node]]", "[[node]]");
pub(super) const FENCE_DEVICE: Section = Section::new("[[fence_device]]", "[[fence_device]]");

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
}

pub(super) fn fence_devices(r: &mut Reader<'_>, top: &Tbl<'_, '_>) -> Fencing {
    let mut out = Fencing {
        devices: Vec::new(),
        node_refs: Vec::new(),
        enabled: top.take("fence_device").is_some(),
    };
    let mut seen: Vec<String> = Vec::new();
    for (t, at) in r.tables(top, "fence_device") {
        r.section(t, at, FENCE_DEVICE, |r, t| {
            let name = r.required_name(t, "name", "[[fence_device]]");
            if let Some((n, span)) = &name {
                if seen.contains(n) {
                    r.d.error(span.clone(), format!("fence device {n:?} is defined twice"));
                }
                seen.push(n.clone());
            }
            let command = r.argv(t, "command", Some("[[fence_device]]"));
            let nodes_of = r.string_list(t, "nodes").unwrap_or_default();
            let names = nodes_of.iter().map(|(n, _)| n.clone()).collect();
            out.node_refs
                .extend(nodes_of.into_iter().map(|(name, span)| Ref { name, span }));
            if let Some((argv, span)) = &command {
                r.found.programs.push((argv[0].clone(), span.clone()));
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
