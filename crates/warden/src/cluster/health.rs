//! What each node's health checker and proxy see, shared through etcd so that any node's API
//! and console show the whole cluster: every [`PERIOD`] a node puts its upstreams and listeners
//! under `health/<node>` (attached to its lease: a node that leaves takes its entry with it)
//! and reads everyone's.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::etcd::Etcd;
use super::session::LeaseRx;
use crate::control::Control;

/// How often a node publishes and reads.
pub const PERIOD: Duration = Duration::from_secs(2);

/// What the other nodes last published, by node.
pub type Elsewhere = Arc<Mutex<BTreeMap<String, Value>>>;

/// This node's view now: when, its upstreams and its listeners.
pub fn view(control: &Control) -> Value {
    json!({
        "time": crate::wire::format_time(crate::wire::wall_clock()),
        "upstreams": crate::api::upstreams_json(&control.upstreams()),
        "listeners": control.listeners(),
    })
}

/// Publishes this node's view and reads the others', for ever.
pub async fn run(etcd: Arc<Etcd>, node: String, control: Control, lease: LeaseRx, out: Elsewhere) {
    let prefix = etcd.key(super::log::keys::HEALTH);
    let mine = format!("{prefix}{node}");
    loop {
        tokio::time::sleep(PERIOD).await;
        let held = *lease.borrow();
        if let Some(l) = held.filter(|l| l.valid()) {
            let value = view(&control).to_string().into_bytes();
            let _ = etcd.put(&mine, value, Some(l.id), l.valid_until).await;
        }
        let deadline = Instant::now() + etcd.timing.request;
        if let Ok((kvs, _)) = etcd.get_prefix(&prefix, deadline).await {
            let seen: BTreeMap<String, Value> = kvs
                .iter()
                .filter_map(|kv| {
                    let name = std::str::from_utf8(kv.key()).ok()?.strip_prefix(&prefix)?;
                    let v = serde_json::from_slice(kv.value()).ok()?;
                    (name != node).then(|| (name.to_owned(), v))
                })
                .collect();
            if let Ok(mut m) = out.lock() {
                *m = seen;
            }
        }
    }
}
