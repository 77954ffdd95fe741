//! The web console at `/`: one page, its script and its style, embedded in the binary (no
//! external asset, so it works on a machine without Internet and cannot be changed by a CDN),
//! fed by `/v1/events`, a stream of server-sent events: a `snapshot` (status, upstreams,
//! listeners) every second and a `feed` event for each change between two snapshots and for
//! each operation the daemon ran. Actions go through the JSON API with the token the operator
//! types in (kept in the tab's session storage only). docs/console.md shows it.

use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::control::{Control, ControlError};
use crate::store::HistoryEntry;
use crate::wire::format_time;

const INDEX: &str = include_str!("web/index.html");
const SCRIPT: &str = include_str!("web/app.js");
const STYLE: &str = include_str!("web/app.css");

/// Scripts and styles from this daemon only; no frame may embed the page (clickjacking).
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// How often the stream sends a snapshot.
const PERIOD: Duration = Duration::from_secs(1);

/// The page, its script or its style (None: no such file).
pub fn asset(name: &str) -> Option<Response> {
    let (body, kind) = match name {
        "index.html" => (INDEX, "text/html; charset=utf-8"),
        "app.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "app.css" => (STYLE, "text/css; charset=utf-8"),
        _ => return None,
    };
    Some(
        (
            [
                ("content-type", kind),
                ("content-security-policy", POLICY),
                ("x-content-type-options", "nosniff"),
                ("referrer-policy", "no-referrer"),
                ("cache-control", "no-cache"),
            ],
            body,
        )
            .into_response(),
    )
}

/// Everything the page shows, at one instant.
pub async fn snapshot(control: &Control) -> Result<Value, ControlError> {
    let view = control.status().await?;
    Ok(json!({
        "status": crate::api::status_json(&view),
        "upstreams": crate::api::upstreams_json(&control.upstreams()),
        "listeners": control.listeners(),
        // The other nodes of a cluster: their upstreams and listeners as last published.
        "elsewhere": control.elsewhere().lock().map(|m| m.clone()).unwrap_or_default(),
    }))
}

/// The event stream of `/v1/events`: a snapshot at once and every second after, the changes
/// between snapshots and the operations run as `feed` events. It ends when the client goes
/// or the daemon stops.
pub fn events(control: Control) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Event>(64);
    tokio::spawn(async move {
        let mut prev: Option<Value> = None;
        // The last operation sent, as (time, seq): only newer ones are sent.
        let mut last_op: Option<(u64, u64)> = None;
        let mut tick = tokio::time::interval(PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if tx.is_closed() {
                return;
            }
            let snap = match snapshot(&control).await {
                Ok(s) => s,
                Err(e) => {
                    let _ = tx
                        .send(Event::default().event("error").data(e.to_string()))
                        .await;
                    return;
                }
            };
            let mut items = prev.as_ref().map(|p| changes(p, &snap)).unwrap_or_default();
            // The first time, the last few operations give the feed a past.
            let limit = if last_op.is_none() { 20 } else { 200 };
            if let Ok(ops) = control.history(None, limit).await {
                for h in ops {
                    let key = (h.time_ms, h.seq);
                    if last_op.is_none_or(|l| key > l) {
                        items.extend(operation(&h));
                        last_op = Some(key);
                    }
                }
                last_op.get_or_insert((0, 0));
            }
            items.sort_by(|a, b| a["time"].as_str().cmp(&b["time"].as_str()));
            for item in items {
                if tx
                    .send(Event::default().event("feed").data(item.to_string()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            let event = Event::default().event("snapshot").data(snap.to_string());
            if tx.send(event).await.is_err() {
                return;
            }
            prev = Some(snap);
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|e| (Ok::<_, Infallible>(e), rx))
    });
    (
        [("cache-control", "no-cache"), ("x-accel-buffering", "no")],
        Sse::new(stream).keep_alive(KeepAlive::default()),
    )
        .into_response()
}

/// One feed item: when, how bad (`info`, `warn`, `error`), what kind of thing, and a line.
fn item(time: &str, level: &str, kind: &str, text: String) -> Value {
    json!({ "time": time, "level": level, "kind": kind, "text": text })
}

/// An operation the daemon ran, as a feed item; None for a recurring monitor that found
/// nothing wrong (one every few seconds per resource would bury everything else).
fn operation(h: &HistoryEntry) -> Option<Value> {
    let time = format_time(warden_engine::Time::from_millis(h.time_ms));
    // A probe that finds the resource stopped is no failure.
    let name = op_label(&h.op);
    let ok = h.rc == 0 || (name == "probe" && h.rc == 7);
    if ok && name == "monitor" {
        return None;
    }
    let mut text = format!(
        "{} {} on {}: {} ({} ms)",
        name,
        h.resource,
        h.node,
        warden_engine::rc::name(h.rc),
        h.duration_ms
    );
    if !h.exit_reason.is_empty() {
        text.push_str(": ");
        text.push_str(&h.exit_reason);
    }
    Some(item(
        &time,
        if ok { "info" } else { "error" },
        "operation",
        text,
    ))
}

/// An operation as history names it (`start_0`, `monitor_10000`) in a word: its name, or
/// `probe` for a monitor of interval 0.
fn op_label(op: &str) -> &str {
    match op.rsplit_once('_') {
        Some(("monitor", "0")) => "probe",
        Some((name, _)) => name,
        None => op,
    }
}

/// A node's state as one word (the console's and `warden_node_state`'s).
pub(crate) fn node_word(n: &Value) -> &'static str {
    if !n["unclean"].is_null() {
        "unclean"
    } else if n["online"] != true {
        "offline"
    } else if n["standby"] == true {
        "standby"
    } else {
        "online"
    }
}

/// What changed between two snapshots, as feed items: nodes, resources, failed actions and
/// peers.
pub fn changes(prev: &Value, next: &Value) -> Vec<Value> {
    let time = next["status"]["time"].as_str().unwrap_or_default();
    let mut out = Vec::new();
    let by = |v: &Value, list: &str, key: &str| -> Vec<(String, Value)> {
        v["status"][list]
            .as_array()
            .into_iter()
            .flatten()
            .map(|x| (x[key].as_str().unwrap_or_default().to_owned(), x.clone()))
            .collect()
    };
    let before = by(prev, "nodes", "name");
    for (name, n) in by(next, "nodes", "name") {
        let was = before
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| node_word(v));
        let now = node_word(&n);
        if was.is_some_and(|w| w != now) || (was.is_none() && !before.is_empty()) {
            let level = if matches!(now, "offline" | "unclean") {
                "warn"
            } else {
                "info"
            };
            out.push(item(time, level, "node", format!("node {name} is {now}")));
        }
    }
    let before = by(prev, "resources", "id");
    for (id, r) in by(next, "resources", "id") {
        let was = before.iter().find(|(k, _)| *k == id).map(|(_, v)| v);
        let text = r["status"].as_str().unwrap_or_default();
        if was.is_some_and(|w| w["status"] != r["status"]) {
            let level = match r["state"].as_str() {
                Some("failed" | "blocked") => "error",
                _ => "info",
            };
            out.push(item(time, level, "resource", text.to_owned()));
        }
    }
    let key = |f: &Value| format!("{}|{}|{}|{}", f["resource"], f["node"], f["op"], f["time"]);
    let failed_before: Vec<String> = prev["status"]["failed_actions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(key)
        .collect();
    for f in next["status"]["failed_actions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if !failed_before.contains(&key(f)) {
            let mut text = format!(
                "{} {} on {} failed: {}",
                op_label(f["op"].as_str().unwrap_or_default()),
                f["resource"].as_str().unwrap_or_default(),
                f["node"].as_str().unwrap_or_default(),
                f["rc_name"].as_str().unwrap_or_default()
            );
            if let Some(why) = f["exit_reason"].as_str().filter(|w| !w.is_empty()) {
                text.push_str(&format!(" ({why})"));
            }
            out.push(item(time, "error", "failure", text));
        }
    }
    let peers = |v: &Value| -> Vec<(String, Value)> {
        v["upstreams"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|u| {
                let name = u["name"].as_str().unwrap_or_default().to_owned();
                u["peers"].as_array().into_iter().flatten().map(move |p| {
                    (
                        format!("{name} {}", p["addr"].as_str().unwrap_or_default()),
                        p.clone(),
                    )
                })
            })
            .collect()
    };
    let before = peers(prev);
    for (key, p) in peers(next) {
        let Some((_, was)) = before.iter().find(|(k, _)| *k == key) else {
            continue;
        };
        if was["state"] != p["state"] {
            let state = p["state"].as_str().unwrap_or_default();
            let mut text = format!("upstream {key} is {state}");
            if let Some(e) = p["last_error"].as_str() {
                text.push_str(&format!(": {e}"));
            }
            let level = if state == "DOWN" { "warn" } else { "info" };
            out.push(item(time, level, "peer", text));
        }
        if was["drained"] != p["drained"] {
            let what = if p["drained"] == true {
                "drained"
            } else {
                "no longer drained"
            };
            out.push(item(
                time,
                "info",
                "peer",
                format!("upstream {key} is {what}"),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    fn snap(node: Value, resource: Value, failed: Value, peer: Value) -> Value {
        json!({
            "status": { "time": "2026-12-05T10:00:00Z", "nodes": [node], "resources": [resource], "failed_actions": failed },
            "upstreams": [{ "name": "app", "peers": [peer] }],
            "listeners": [],
        })
    }

    #[test]
    fn changes_name_what_changed_and_nothing_else() {
        let a = snap(
            json!({"name": "n1", "online": true, "standby": false, "unclean": null}),
            json!({"id": "web", "status": "web (ocf:heartbeat:Dummy): Started n1", "state": "started"}),
            json!([]),
            json!({"addr": "127.0.0.1:80", "state": "UP", "drained": false, "last_error": null}),
        );
        assert_eq!(changes(&a, &a), Vec::<Value>::new());
        let b = snap(
            json!({"name": "n1", "online": true, "standby": true, "unclean": null}),
            json!({"id": "web", "status": "web (ocf:heartbeat:Dummy): FAILED n1", "state": "failed"}),
            json!([{"resource": "web", "node": "n1", "op": "monitor_10000", "time": "t", "rc_name": "not running", "exit_reason": "pid gone"}]),
            json!({"addr": "127.0.0.1:80", "state": "DOWN", "drained": true, "last_error": "connection refused"}),
        );
        let got: Vec<(String, String, String)> = changes(&a, &b)
            .iter()
            .map(|i| {
                (
                    i["level"].as_str().unwrap_or_default().to_owned(),
                    i["kind"].as_str().unwrap_or_default().to_owned(),
                    i["text"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let want = [
            ("info", "node", "node n1 is standby"),
            ("error", "resource", "web (ocf:heartbeat:Dummy): FAILED n1"),
            (
                "error",
                "failure",
                "monitor web on n1 failed: not running (pid gone)",
            ),
            (
                "warn",
                "peer",
                "upstream app 127.0.0.1:80 is DOWN: connection refused",
            ),
            ("info", "peer", "upstream app 127.0.0.1:80 is drained"),
        ];
        let want: Vec<(String, String, String)> = want
            .iter()
            .map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), (*c).to_owned()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn operations_read_as_lines() {
        let h = HistoryEntry {
            seq: 1,
            time_ms: 0,
            resource: "web".into(),
            node: "n1".into(),
            op: "start_0".into(),
            rc: 1,
            exit_reason: "no config".into(),
            duration_ms: 12,
        };
        let Some(i) = operation(&h) else {
            panic!("a failed start is shown")
        };
        assert_eq!(i["level"], "error");
        assert_eq!(i["text"], "start web on n1: error (12 ms): no config");
        let probe = HistoryEntry {
            op: "monitor_0".into(),
            rc: 7,
            exit_reason: String::new(),
            ..h
        };
        let shown = |h: &HistoryEntry| operation(h).unwrap_or_default();
        assert_eq!(shown(&probe)["level"], "info");
        assert_eq!(
            shown(&probe)["text"],
            "probe web on n1: not running (12 ms)"
        );
        let monitor = HistoryEntry {
            op: "monitor_10000".into(),
            ..probe
        };
        assert_eq!(shown(&monitor)["level"], "error");
        assert_eq!(
            shown(&monitor)["text"],
            "monitor web on n1: not running (12 ms)"
        );
        let fine = HistoryEntry { rc: 0, ..monitor };
        assert_eq!(
            operation(&fine),
            None,
            "a monitor that found it running is not news"
        );
    }

    #[test]
    fn assets_are_served_with_a_policy_and_unknown_names_are_not() {
        let Some(r) = asset("index.html") else {
            panic!("no page")
        };
        assert_eq!(r.status(), StatusCode::OK);
        let csp = r
            .headers()
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(INDEX.contains("/ui/app.js") && INDEX.contains("/ui/app.css"));
        assert!(asset("../Cargo.toml").is_none());
    }
}
