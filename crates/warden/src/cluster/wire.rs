//! What nodes write to each other through etcd: assignments, their results, reports and
//! members. JSON, like the single-machine store.

use serde::{Deserialize, Serialize};
use warden_engine::rc::ExecStatus;
use warden_engine::{Event, Notification, NotifyKind, OpName, ResourceSpec};

use crate::wire::{WireDefinition, WireEvent};

/// An action for a node's agent (`assign/<node>/<epoch>-<n>`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    pub resource: String,
    /// `start`, `stop`, `monitor` (a probe: interval 0), `monitor_10000`, ...
    pub op: String,
    /// The digest of the definition to run with (16 hex digits): the agent uses its own
    /// copy of the configuration when that one has this digest, else `definition`.
    pub digest: String,
    /// Its restart digest (without the reloadable parameters).
    pub restart_digest: String,
    /// Its agent's digest (empty from a peer that did not send one).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub agent_digest: String,
    pub definition: WireDefinition,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification: Option<WireNotification>,
    /// A live migration's step: (source, target) nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration: Option<(String, String)>,
}

/// An action's result (`result/<node>/<epoch>-<n>`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionResult {
    pub rc: i32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub exit_reason: String,
    pub duration_ms: u64,
    /// `not_installed` when the executor found no agent to run (absent: the agent ran).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

impl ActionResult {
    /// Its execution status; one this version does not know is taken as the agent's result.
    pub fn exec_status(&self) -> ExecStatus {
        self.status
            .as_deref()
            .and_then(ExecStatus::parse)
            .unwrap_or_default()
    }
}

/// What an agent saw on its own (`report/<node>/<n>`): a monitor's result, a process exit.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub event: WireEvent,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

impl Report {
    pub fn new(event: &Event, duration_ms: Option<u64>) -> Report {
        Report {
            event: WireEvent::from_event(event),
            duration_ms,
        }
    }
}

/// A member key's value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Where its API listens.
    pub api: String,
    pub pid: u32,
    pub version: String,
}

/// A notification as an agent gets it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireNotification {
    pub kind: String,
    pub operation: String,
    pub start: Vec<String>,
    pub stop: Vec<String>,
    pub promote: Vec<String>,
    pub demote: Vec<String>,
    pub active: Vec<String>,
    pub promoted: Vec<String>,
    pub unpromoted: Vec<String>,
    pub inactive: Vec<String>,
}

impl WireNotification {
    pub fn from(n: &Notification) -> WireNotification {
        WireNotification {
            kind: n.kind.as_str().to_owned(),
            operation: n.operation.to_string(),
            start: n.start.clone(),
            stop: n.stop.clone(),
            promote: n.promote.clone(),
            demote: n.demote.clone(),
            active: n.active.clone(),
            promoted: n.promoted.clone(),
            unpromoted: n.unpromoted.clone(),
            inactive: n.inactive.clone(),
        }
    }

    pub fn into_notification(self) -> anyhow::Result<Notification> {
        let kind = match self.kind.as_str() {
            "pre" => NotifyKind::Pre,
            "post" => NotifyKind::Post,
            k => anyhow::bail!("bad notification kind {k:?}"),
        };
        let operation: OpName = self
            .operation
            .parse()
            .map_err(|_| anyhow::anyhow!("bad notified operation {:?}", self.operation))?;
        Ok(Notification {
            kind,
            operation,
            start: self.start,
            stop: self.stop,
            promote: self.promote,
            demote: self.demote,
            active: self.active,
            promoted: self.promoted,
            unpromoted: self.unpromoted,
            inactive: self.inactive,
        })
    }
}

/// The definition an assignment runs with: the agent's own when its digest matches (it
/// has everything: check levels, monitor roles, commands), else the one it carries.
pub fn definition_for(a: &Assignment, own: Option<&ResourceSpec>) -> anyhow::Result<ResourceSpec> {
    if let Some(spec) = own.filter(|s| crate::wire::format_digest(s.digest()) == a.digest) {
        return Ok(spec.clone());
    }
    let mut spec = a.definition.clone().into_orphan()?;
    // Not an orphan here: only its parameters, agent and time-outs matter to one operation.
    spec.meta.orphan = false;
    Ok(spec)
}
