//! The JSON form of the cluster state (`simulate --state/--save-state`), converted by hand to
//! and from the engine's types so the engine stays free of serialization.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use warden_engine::{
    AdminCommand, Agent, Copies, Digests, Event, NodeState, OpKey, OpName, OpRecord, OpResult,
    OpSpec, ProcessSpec, ResourceOnNode, ResourceSpec, ResourceState, Role, Score, State,
    TargetRole, TicketState, Time,
};

/// The version of the state file format.
pub const STATE_VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateFile {
    pub version: u32,
    /// The time the state describes (RFC 3339).
    pub time: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub no_quorum: bool,
    pub nodes: BTreeMap<String, WireNode>,
    pub resources: BTreeMap<String, WireResource>,
    /// Tickets by name (absent: never granted).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tickets: BTreeMap<String, WireTicket>,
    /// Node attributes set at run time, by node.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_attributes: BTreeMap<String, BTreeMap<String, String>>,
    /// The node rules see as `#is_dc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dc: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireTicket {
    pub granted: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub standby: bool,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireNode {
    pub online: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unclean: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub standby: bool,
    /// Its daemon is shutting down: it runs nothing until it joins again.
    #[serde(default, skip_serializing_if = "is_false")]
    pub shutdown: bool,
    /// Still joining (an imported CIB's pending node).
    #[serde(default, skip_serializing_if = "is_false")]
    pub pending: bool,
    /// Unfenced since it joined.
    #[serde(default, skip_serializing_if = "is_false")]
    pub unfenced: bool,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireResource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_to: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub banned: Vec<String>,
    pub nodes: BTreeMap<String, WireOnNode>,
    /// Promotion scores set by the agent, per node.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub promotion_scores: BTreeMap<String, i64>,
    /// Locked to a node that shut down (`shutdown_lock`): the node, and since when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<WireLock>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireLock {
    pub node: String,
    pub since: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireOnNode {
    pub role: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fail_counts: BTreeMap<String, u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub failed_ops: BTreeMap<String, WireOp>,
    /// When the last start finished (crash loops count from it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_start: Option<String>,
    /// Failures in a row within the crash-loop window of a start.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub quick_failures: u32,
    /// A crash loop: no start here before this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_not_before: Option<String>,
    /// The definition digest the running copy was started with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_digest: Option<String>,
    /// The digest of the agent it was started with (its class and type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_digest: Option<String>,
    /// The copy's instance number, where an imported CIB gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireOp {
    pub rc: i32,
    pub time: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub exit_reason: String,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

const FLAGS: &[&str] = &[
    "failed",
    "degraded",
    "blocked",
    "fatal",
    "hard_ban",
    "not_installed",
    "stop_on_fail",
    "standby_on_fail",
    "failure_ignored",
    "demote_on_fail",
    "demote_failed",
    "restart",
];

fn flag_mut<'a>(on: &'a mut ResourceOnNode, name: &str) -> Option<&'a mut bool> {
    Some(match name {
        "failed" => &mut on.failed,
        "degraded" => &mut on.degraded,
        "blocked" => &mut on.blocked,
        "fatal" => &mut on.fatal,
        "hard_ban" => &mut on.hard_ban,
        "not_installed" => &mut on.not_installed,
        "stop_on_fail" => &mut on.stop_on_fail,
        "standby_on_fail" => &mut on.standby_on_fail,
        "failure_ignored" => &mut on.failure_ignored,
        "demote_on_fail" => &mut on.demote_on_fail,
        "demote_failed" => &mut on.demote_failed,
        "restart" => &mut on.restart,
        _ => return None,
    })
}

/// An execution status as a record's `status` field: absent when the agent ran.
pub fn status_field(s: warden_engine::rc::ExecStatus) -> Option<String> {
    (!s.is_done()).then(|| s.as_str().to_owned())
}

/// Formats a time as RFC 3339 with milliseconds, UTC.
pub fn format_time(t: Time) -> String {
    // RFC 3339 ends with year 9999; a later time (from a hand-edited state file) is shown as
    // that year's last millisecond rather than panicking.
    const LAST: u64 = 253_402_300_799_999;
    let st = UNIX_EPOCH + Duration::from_millis(t.as_millis().min(LAST));
    humantime::format_rfc3339_millis(st).to_string()
}

/// Parses an RFC 3339 time (`2026-01-01T00:00:00Z`).
pub fn parse_time(s: &str) -> anyhow::Result<Time> {
    let st = humantime::parse_rfc3339_weak(s)
        .with_context(|| format!("bad time {s:?}: expected RFC 3339, like 2026-01-01T00:00:00Z"))?;
    let ms = st
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Ok(Time::from_millis(ms))
}

/// The wall clock, for the shell only (the engine never reads it).
pub fn wall_clock() -> Time {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Time::from_millis(ms)
}

/// A definition digest as the state file and the store keep it: 16 hex digits.
pub fn format_digest(d: u64) -> String {
    format!("{d:016x}")
}

pub fn parse_digest(s: &str) -> anyhow::Result<u64> {
    u64::from_str_radix(s, 16).with_context(|| format!("bad digest {s:?}: expected 16 hex digits"))
}

/// Parses an operation key like `monitor_10000`.
pub fn parse_op_key(s: &str) -> anyhow::Result<OpKey> {
    let (name, ms) = s
        .rsplit_once('_')
        .with_context(|| format!("bad operation key {s:?}: expected NAME_INTERVALMS"))?;
    let name: OpName = name
        .parse()
        .map_err(|_| anyhow::anyhow!("bad operation key {s:?}: unknown operation {name:?}"))?;
    let interval_ms = ms
        .parse()
        .with_context(|| format!("bad operation key {s:?}: interval must be milliseconds"))?;
    Ok(OpKey { name, interval_ms })
}

fn role_str(r: Role) -> &'static str {
    match r {
        Role::Unknown => "unknown",
        Role::Stopped => "stopped",
        Role::Started => "started",
        Role::Promoted => "promoted",
    }
}

impl StateFile {
    pub fn from_state(state: &State, now: Time) -> StateFile {
        let nodes = state
            .nodes
            .iter()
            .map(|(n, s)| {
                (
                    n.clone(),
                    WireNode {
                        online: s.online,
                        unclean: s.unclean.clone(),
                        standby: s.standby,
                        shutdown: s.shutdown,
                        pending: s.pending,
                        unfenced: s.unfenced,
                    },
                )
            })
            .collect();
        let resources = state
            .resources
            .iter()
            .map(|(id, rs)| {
                let nodes = rs
                    .nodes
                    .iter()
                    .map(|(n, on)| {
                        let mut copy = on.clone();
                        let flags = FLAGS
                            .iter()
                            .filter(|f| flag_mut(&mut copy, f).is_some_and(|b| *b))
                            .map(|f| (*f).to_owned())
                            .collect();
                        let w = WireOnNode {
                            role: role_str(on.role).to_owned(),
                            flags,
                            fail_counts: on
                                .fail_counts
                                .iter()
                                .map(|(k, c)| (k.to_string(), *c))
                                .collect(),
                            last_failure: on.last_failure.map(format_time),
                            last_start: on.last_start.map(format_time),
                            quick_failures: on.quick_failures,
                            start_not_before: on.start_not_before.map(format_time),
                            digest: on.digest.map(format_digest),
                            restart_digest: on.restart_digest.map(format_digest),
                            agent_digest: on.agent_digest.map(format_digest),
                            instance: on.instance,
                            failed_ops: on
                                .failed_ops
                                .iter()
                                .map(|(k, r)| {
                                    (
                                        k.to_string(),
                                        WireOp {
                                            rc: r.rc,
                                            time: format_time(r.time),
                                            exit_reason: r.exit_reason.clone(),
                                        },
                                    )
                                })
                                .collect(),
                        };
                        (n.clone(), w)
                    })
                    .collect();
                let wr = WireResource {
                    target_role: rs.target_role.map(|r| r.as_str().to_owned()),
                    moved_to: rs.moved_to.clone(),
                    banned: rs.banned.iter().cloned().collect(),
                    nodes,
                    promotion_scores: rs
                        .promotion_scores
                        .iter()
                        .map(|(n, s)| (n.clone(), s.value()))
                        .collect(),
                    lock: rs.lock.as_ref().map(|l| WireLock {
                        node: l.node.clone(),
                        since: format_time(l.since),
                    }),
                };
                (id.clone(), wr)
            })
            .collect();
        StateFile {
            version: STATE_VERSION,
            time: format_time(now),
            no_quorum: state.no_quorum,
            nodes,
            resources,
            tickets: state
                .tickets
                .iter()
                .map(|(k, t)| {
                    (
                        k.clone(),
                        WireTicket {
                            granted: t.granted,
                            standby: t.standby,
                        },
                    )
                })
                .collect(),
            node_attributes: state.node_attributes.clone(),
            dc: state.dc.clone(),
        }
    }

    /// The engine state and the time it describes.
    pub fn into_state(self) -> anyhow::Result<(State, Time)> {
        if self.version != STATE_VERSION {
            bail!(
                "state file version {} is not supported (this warden reads version {STATE_VERSION})",
                self.version
            );
        }
        let now = parse_time(&self.time).context("field `time`")?;
        let mut state = State {
            no_quorum: self.no_quorum,
            dc: self.dc,
            ..State::default()
        };
        for (n, attrs) in self.node_attributes {
            if let Some(bad) = attrs.keys().find(|k| !warden_engine::valid_attribute(k)) {
                bail!("node_attributes.{n}: bad attribute name {bad:?}");
            }
            state.node_attributes.insert(n, attrs);
        }
        for (k, t) in self.tickets {
            if !warden_engine::valid_ticket(&k) {
                bail!("tickets: bad ticket name {k:?}");
            }
            state.tickets.insert(
                k,
                TicketState {
                    granted: t.granted,
                    standby: t.standby,
                },
            );
        }
        for (n, w) in self.nodes {
            state.nodes.insert(
                n,
                NodeState {
                    online: w.online,
                    unclean: w.unclean,
                    standby: w.standby,
                    shutdown: w.shutdown,
                    pending: w.pending,
                    unfenced: w.unfenced,
                },
            );
        }
        for (id, w) in self.resources {
            let ctx = |f: &str| format!("resources.{id}.{f}");
            let target_role =
                match w.target_role.as_deref() {
                    None => None,
                    Some(s) => Some(s.parse::<TargetRole>().map_err(|_| {
                        anyhow::anyhow!("{}: unknown role {s:?}", ctx("target_role"))
                    })?),
                };
            let mut rs = ResourceState {
                target_role,
                moved_to: w.moved_to,
                banned: w.banned.into_iter().collect(),
                nodes: BTreeMap::new(),
                promotion_scores: w
                    .promotion_scores
                    .into_iter()
                    .map(|(n, s)| (n, Score::new(s)))
                    .collect(),
                lock: match w.lock {
                    None => None,
                    Some(l) => Some(warden_engine::ShutdownLock {
                        since: parse_time(&l.since).with_context(|| ctx("lock.since"))?,
                        node: l.node,
                    }),
                },
            };
            for (n, wn) in w.nodes {
                let mut on = ResourceOnNode {
                    role: match wn.role.as_str() {
                        "unknown" => Role::Unknown,
                        "stopped" => Role::Stopped,
                        "started" => Role::Started,
                        "promoted" => Role::Promoted,
                        other => bail!(
                            "{}: unknown role {other:?} (allowed: unknown, stopped, started, promoted)",
                            ctx(&format!("nodes.{n}.role"))
                        ),
                    },
                    ..ResourceOnNode::default()
                };
                for f in &wn.flags {
                    let Some(b) = flag_mut(&mut on, f) else {
                        bail!(
                            "{}: unknown flag {f:?} (allowed: {})",
                            ctx(&format!("nodes.{n}.flags")),
                            FLAGS.join(", ")
                        );
                    };
                    *b = true;
                }
                for (k, c) in wn.fail_counts {
                    on.fail_counts.insert(
                        parse_op_key(&k).with_context(|| ctx(&format!("nodes.{n}.fail_counts")))?,
                        c,
                    );
                }
                // An optional field parsed, its place named when it is bad.
                fn opt<T>(
                    v: Option<String>,
                    parse: fn(&str) -> anyhow::Result<T>,
                    place: impl FnOnce() -> String,
                ) -> anyhow::Result<Option<T>> {
                    v.as_deref().map(parse).transpose().with_context(place)
                }
                let at = |f: &str| ctx(&format!("nodes.{n}.{f}"));
                on.last_failure = opt(wn.last_failure, parse_time, || at("last_failure"))?;
                on.last_start = opt(wn.last_start, parse_time, || at("last_start"))?;
                on.quick_failures = wn.quick_failures;
                on.digest = opt(wn.digest, parse_digest, || at("digest"))?;
                on.restart_digest = opt(wn.restart_digest, parse_digest, || at("restart_digest"))?;
                on.agent_digest = opt(wn.agent_digest, parse_digest, || at("agent_digest"))?;
                on.instance = wn.instance;
                on.start_not_before =
                    opt(wn.start_not_before, parse_time, || at("start_not_before"))?;
                for (k, op) in wn.failed_ops {
                    let key =
                        parse_op_key(&k).with_context(|| ctx(&format!("nodes.{n}.failed_ops")))?;
                    let time = parse_time(&op.time)
                        .with_context(|| ctx(&format!("nodes.{n}.failed_ops.{k}.time")))?;
                    on.failed_ops.insert(
                        key,
                        OpRecord {
                            rc: op.rc,
                            time,
                            exit_reason: op.exit_reason,
                        },
                    );
                }
                rs.nodes.insert(n, on);
            }
            state.resources.insert(id, rs);
        }
        Ok((state, now))
    }
}

/// An event as the store keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum WireEvent {
    OpResult {
        resource: String,
        node: String,
        op: String,
        rc: i32,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        exit_reason: String,
        /// `not_installed` when the executor found no agent to run (absent: the agent ran).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<String>,
        /// A start's (or reload's) definition digest, 16 hex digits.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        digest: Option<String>,
        /// Its restart digest (without the reloadable parameters).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        restart_digest: Option<String>,
        /// Its agent's digest.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent_digest: Option<String>,
    },
    NodeUp {
        node: String,
    },
    NodeDown {
        node: String,
    },
    NodeShutdown {
        node: String,
    },
    Fenced {
        node: String,
        ok: bool,
    },
    Unfenced {
        node: String,
        ok: bool,
    },
    Quorum {
        quorum: bool,
    },
    Cleanup {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resource: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node: Option<String>,
    },
    Restart {
        resource: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node: Option<String>,
    },
    Enable {
        resource: String,
    },
    Disable {
        resource: String,
    },
    Move {
        resource: String,
        node: String,
    },
    Ban {
        resource: String,
        node: String,
    },
    Clear {
        resource: String,
    },
    Standby {
        node: String,
    },
    Online {
        node: String,
    },
    Ticket {
        ticket: String,
        /// grant, revoke, standby or activate.
        action: String,
    },
    NodeAttribute {
        node: String,
        name: String,
        /// None: deleted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<String>,
    },
    PromotionScore {
        resource: String,
        node: String,
        /// None: the score was removed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        score: Option<i64>,
    },
}

impl WireEvent {
    pub fn from_event(e: &Event) -> WireEvent {
        match e.clone() {
            Event::OpResult(r) => WireEvent::OpResult {
                resource: r.resource,
                node: r.node,
                op: r.op.to_string(),
                rc: r.rc,
                exit_reason: r.exit_reason,
                status: status_field(r.status),
                digest: r.digest.map(|d| format_digest(d.all)),
                restart_digest: r.digest.map(|d| format_digest(d.restart)),
                agent_digest: r.digest.and_then(|d| d.agent).map(format_digest),
            },
            Event::NodeUp { node } => WireEvent::NodeUp { node },
            Event::NodeDown { node } => WireEvent::NodeDown { node },
            Event::NodeShutdown { node } => WireEvent::NodeShutdown { node },
            Event::Fenced { node, ok } => WireEvent::Fenced { node, ok },
            Event::Unfenced { node, ok } => WireEvent::Unfenced { node, ok },
            Event::Quorum(quorum) => WireEvent::Quorum { quorum },
            Event::PromotionScore {
                resource,
                node,
                score,
            } => WireEvent::PromotionScore {
                resource,
                node,
                score: score.map(|s| s.value()),
            },
            Event::Admin(c) => match c {
                AdminCommand::Cleanup { resource, node } => WireEvent::Cleanup { resource, node },
                AdminCommand::Restart { resource, node } => WireEvent::Restart { resource, node },
                AdminCommand::Enable { resource } => WireEvent::Enable { resource },
                AdminCommand::Disable { resource } => WireEvent::Disable { resource },
                AdminCommand::Move { resource, node } => WireEvent::Move { resource, node },
                AdminCommand::Ban { resource, node } => WireEvent::Ban { resource, node },
                AdminCommand::Clear { resource } => WireEvent::Clear { resource },
                AdminCommand::Standby { node } => WireEvent::Standby { node },
                AdminCommand::Online { node } => WireEvent::Online { node },
                AdminCommand::NodeAttribute { node, name, value } => {
                    WireEvent::NodeAttribute { node, name, value }
                }
                AdminCommand::Ticket { ticket, action } => WireEvent::Ticket {
                    ticket,
                    action: action.as_str().to_owned(),
                },
            },
        }
    }

    pub fn into_event(self) -> anyhow::Result<Event> {
        let admin = Event::Admin;
        Ok(match self {
            WireEvent::OpResult {
                resource,
                node,
                op,
                rc,
                exit_reason,
                status,
                digest,
                restart_digest,
                agent_digest,
            } => {
                let status = match status.as_deref() {
                    None => warden_engine::rc::ExecStatus::Done,
                    Some(s) => warden_engine::rc::ExecStatus::parse(s)
                        .with_context(|| format!("unknown execution status {s:?}"))?,
                };
                let all = digest.as_deref().map(parse_digest).transpose()?;
                let restart = restart_digest.as_deref().map(parse_digest).transpose()?;
                let agent = agent_digest.as_deref().map(parse_digest).transpose()?;
                Event::OpResult(OpResult {
                    resource,
                    node,
                    op: parse_op_key(&op)?,
                    rc,
                    exit_reason,
                    status,
                    digest: all.map(|all| Digests {
                        all,
                        restart: restart.unwrap_or(all),
                        agent,
                    }),
                })
            }
            WireEvent::NodeUp { node } => Event::NodeUp { node },
            WireEvent::NodeDown { node } => Event::NodeDown { node },
            WireEvent::NodeShutdown { node } => Event::NodeShutdown { node },
            WireEvent::Fenced { node, ok } => Event::Fenced { node, ok },
            WireEvent::Unfenced { node, ok } => Event::Unfenced { node, ok },
            WireEvent::Quorum { quorum } => Event::Quorum(quorum),
            WireEvent::Cleanup { resource, node } => {
                admin(AdminCommand::Cleanup { resource, node })
            }
            WireEvent::Restart { resource, node } => {
                admin(AdminCommand::Restart { resource, node })
            }
            WireEvent::Enable { resource } => admin(AdminCommand::Enable { resource }),
            WireEvent::Disable { resource } => admin(AdminCommand::Disable { resource }),
            WireEvent::Move { resource, node } => admin(AdminCommand::Move { resource, node }),
            WireEvent::Ban { resource, node } => admin(AdminCommand::Ban { resource, node }),
            WireEvent::Clear { resource } => admin(AdminCommand::Clear { resource }),
            WireEvent::Standby { node } => admin(AdminCommand::Standby { node }),
            WireEvent::Online { node } => admin(AdminCommand::Online { node }),
            WireEvent::NodeAttribute { node, name, value } => {
                admin(AdminCommand::NodeAttribute { node, name, value })
            }
            WireEvent::Ticket { ticket, action } => admin(AdminCommand::Ticket {
                ticket,
                action: action.parse().map_err(|()| {
                    anyhow::anyhow!(
                        "unknown ticket action {action:?} (allowed: grant, revoke, standby, activate)"
                    )
                })?,
            }),
            WireEvent::PromotionScore {
                resource,
                node,
                score,
            } => Event::PromotionScore {
                resource,
                node,
                score: score.map(Score::new),
            },
        })
    }
}

/// What the store keeps of a resource's definition: enough to probe, stop and demote a copy
/// started with it after the file has changed or lost it (an orphan, or a copy whose
/// definition changed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireDefinition {
    pub id: String,
    /// `ocf:PROVIDER:TYPE` or `process`.
    pub agent: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<WireProcess>,
    /// Operations: name, interval and timeout in ms (for the probe's, stop's and demote's
    /// time-outs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ops: Vec<(String, u64, u64)>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub promotable: bool,
    /// A clone (copies on several nodes); `promotable` says whether they may be promoted.
    #[serde(default, skip_serializing_if = "is_false")]
    pub clone: bool,
    /// The timeout of the operations it has none of its own for, in ms (absent: 20 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op_timeout_ms: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireProcess {
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub stop_signal: String,
    pub stop_timeout_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promote: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub demote: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_max: Option<u64>,
}

impl WireDefinition {
    pub fn from_spec(spec: &ResourceSpec) -> WireDefinition {
        let process = match &spec.agent {
            Agent::Process(p) => Some(WireProcess {
                command: p.command.clone(),
                env: p.env.clone(),
                cwd: p.cwd.clone(),
                user: p.user.clone(),
                group: p.group.clone(),
                stop_signal: p.stop_signal.clone(),
                stop_timeout_ms: warden_engine::millis(p.stop_timeout),
                promote: p.promote.clone(),
                demote: p.demote.clone(),
                output_max: p.output_max,
            }),
            Agent::Ocf { .. } | Agent::Systemd { .. } | Agent::Fence(_) => None,
        };
        WireDefinition {
            id: spec.id.clone(),
            agent: spec.agent.to_string(),
            params: spec.params.clone(),
            process,
            ops: spec
                .ops
                .iter()
                .map(|o| {
                    (
                        o.name.to_string(),
                        warden_engine::millis(o.interval),
                        warden_engine::millis(o.timeout),
                    )
                })
                .collect(),
            promotable: spec.is_promotable(),
            clone: spec.is_clone(),
            op_timeout_ms: (spec.op_timeout != warden_engine::config::DEFAULT_OP_TIMEOUT)
                .then(|| warden_engine::millis(spec.op_timeout)),
        }
    }

    /// The definition as a resource the engine only stops: an orphan, disabled, with no
    /// recurring monitor. Its digest is the digest of the definition it came from.
    pub fn into_orphan(self) -> anyhow::Result<ResourceSpec> {
        let agent = match (
            self.agent.split(':').collect::<Vec<_>>().as_slice(),
            self.process,
        ) {
            (["ocf", provider, kind], _) => Agent::Ocf {
                provider: (*provider).to_owned(),
                kind: (*kind).to_owned(),
            },
            (["systemd", unit], _) => Agent::Systemd {
                unit: (*unit).to_owned(),
            },
            (["process"], Some(p)) => Agent::Process(ProcessSpec {
                command: p.command,
                env: p.env,
                cwd: p.cwd,
                user: p.user,
                group: p.group,
                stop_signal: p.stop_signal,
                stop_timeout: Duration::from_millis(p.stop_timeout_ms),
                promote: p.promote,
                demote: p.demote,
                output_max: p.output_max,
            }),
            // A fence device gone from the file: its stop does nothing to undo.
            (["fence", ..], _) => {
                Agent::Fence(Box::new(warden_engine::FenceDevice::gone(self.id.clone())))
            }
            _ => bail!("definition of {}: bad agent {:?}", self.id, self.agent),
        };
        let mut spec = ResourceSpec::new(self.id, agent);
        spec.params = self.params;
        if let Some(ms) = self.op_timeout_ms {
            spec.op_timeout = Duration::from_millis(ms);
        }
        for (name, interval_ms, timeout_ms) in self.ops {
            let Ok(name) = name.parse::<OpName>() else {
                continue;
            };
            if name == OpName::Monitor && interval_ms != 0 {
                continue;
            }
            let mut op = OpSpec::new(name, Duration::from_millis(interval_ms));
            op.timeout = Duration::from_millis(timeout_ms);
            spec.ops.push(op);
        }
        if self.promotable {
            spec.copies = Some(Copies::promotable());
        } else if self.clone {
            spec.copies = Some(Copies::default());
        }
        spec.meta.orphan = true;
        spec.meta.target_role = TargetRole::Stopped;
        Ok(spec)
    }
}

/// Stored definitions as orphan specs; one that cannot be read is skipped with a warning.
pub fn orphan_specs(defs: Vec<WireDefinition>) -> Vec<ResourceSpec> {
    defs.into_iter()
        .filter_map(|d| {
            d.into_orphan()
                .map_err(|e| tracing::warn!(error = %e, "stored definition skipped"))
                .ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_past_year_9999_are_shown_not_panicked_on() {
        assert_eq!(
            format_time(Time::from_millis(u64::MAX)),
            "9999-12-31T23:59:59.999Z"
        );
        assert_eq!(
            format_time(Time::from_millis(1_767_225_600_000)),
            "2026-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn a_shutdown_lock_and_a_not_installed_mark_survive_the_state_file() {
        let mut state = State::default();
        let rs = state.resources.entry("db".into()).or_default();
        rs.lock = Some(warden_engine::ShutdownLock {
            node: "n1".into(),
            since: Time::from_millis(1_767_225_600_000),
        });
        rs.nodes.entry("n2".into()).or_default().not_installed = true;
        let now = Time::from_millis(1_767_225_700_000);
        let json = serde_json::to_string(&StateFile::from_state(&state, now)).expect("json");
        let back: StateFile = serde_json::from_str(&json).expect("parse");
        let (read, at) = back.into_state().expect("state");
        assert_eq!(at, now);
        assert_eq!(
            read.resources["db"].lock, state.resources["db"].lock,
            "{json}"
        );
        assert!(read.resources["db"].nodes["n2"].not_installed, "{json}");
    }

    #[test]
    fn an_executors_not_installed_survives_the_store_and_old_records_read_as_done() {
        let ev = |status| {
            Event::OpResult(OpResult {
                resource: "db".into(),
                node: "n1".into(),
                op: warden_engine::OpKey::new(OpName::Monitor, Duration::from_secs(10)),
                rc: warden_engine::rc::ERR_INSTALLED,
                exit_reason: "cannot run".into(),
                status,
                digest: None,
            })
        };
        for status in [
            warden_engine::rc::ExecStatus::Done,
            warden_engine::rc::ExecStatus::NotInstalled,
        ] {
            let json = serde_json::to_string(&WireEvent::from_event(&ev(status))).expect("json");
            assert_eq!(json.contains("not_installed"), !status.is_done(), "{json}");
            let back: WireEvent = serde_json::from_str(&json).expect("parse");
            assert_eq!(back.into_event().expect("event"), ev(status));
        }
        let bad = r#"{"kind":"op_result","resource":"db","node":"n1","op":"monitor_10000","rc":5,"status":"gone"}"#;
        let back: WireEvent = serde_json::from_str(bad).expect("parse");
        let err = back.into_event().expect_err("unknown status");
        assert!(err.to_string().contains("\"gone\""), "{err}");
    }

    #[test]
    fn a_stored_definition_keeps_its_digest_and_becomes_a_disabled_orphan() {
        let mut ocf = ResourceSpec::new(
            "db",
            Agent::Ocf {
                provider: "heartbeat".into(),
                kind: "Dummy".into(),
            },
        );
        ocf.params.push(("state".into(), "/run/db".into()));
        ocf.ops
            .push(OpSpec::new(OpName::Monitor, Duration::from_secs(10)));
        let mut stop = OpSpec::new(OpName::Stop, Duration::ZERO);
        stop.timeout = Duration::from_secs(90);
        ocf.ops.push(stop);
        let mut proc = ResourceSpec::new(
            "web",
            Agent::Process(ProcessSpec {
                command: vec!["sleep".into(), "9".into()],
                env: vec![("A".into(), "1".into())],
                user: Some("nobody".into()),
                stop_signal: "INT".into(),
                stop_timeout: Duration::from_secs(3),
                ..ProcessSpec::default()
            }),
        );
        // Its stop has no operation of its own: it takes `[op_defaults]`'s timeout.
        proc.op_timeout = Duration::from_secs(45);
        let unit = ResourceSpec::new(
            "nginx",
            Agent::Systemd {
                unit: "nginx.service".into(),
            },
        );
        for spec in [ocf, proc, unit] {
            let json = serde_json::to_string(&WireDefinition::from_spec(&spec)).expect("json");
            let back: WireDefinition = serde_json::from_str(&json).expect("parse");
            let orphan = back.into_orphan().expect("orphan");
            assert_eq!(orphan.digest(), spec.digest(), "{json}");
            assert_eq!(orphan.agent, spec.agent);
            assert!(orphan.meta.orphan);
            assert_eq!(orphan.meta.target_role, TargetRole::Stopped);
            assert_eq!(
                orphan.recurring_monitors().count(),
                0,
                "orphans are not monitored"
            );
            let stop = |s: &ResourceSpec| {
                s.timeout(warden_engine::OpKey::new(OpName::Stop, Duration::ZERO))
            };
            assert_eq!(stop(&orphan), stop(&spec), "{json}");
        }
        let bad = WireDefinition {
            agent: "lxc:nginx".into(),
            ..WireDefinition::from_spec(&ResourceSpec::new(
                "x",
                Agent::Ocf {
                    provider: "p".into(),
                    kind: "k".into(),
                },
            ))
        };
        assert!(bad.into_orphan().is_err());
    }
}
