//! The typed control handle in front of the daemon. The API (and through it the CLI and the
//! web page) asks the daemon only through [`Control`]; the daemon's loop answers each
//! [`Request`]. Errors are a closed enum that names the field it concerns, so nobody reads
//! an error's text to decide anything. Nothing here knows HTTP.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use warden_engine::{AdminCommand, ApplyError, Config, Score, State, Time};

use crate::check::CheckSpec;
use crate::check::runner::{Checker, PeerChangeError, UpstreamStatus, prometheus, status_page};
use crate::proxy::stats::Registry;
use crate::store::HistoryEntry;

/// What the daemon is asked.
#[derive(Debug)]
pub enum Request {
    Admin {
        cmd: AdminCommand,
        reply: oneshot::Sender<Result<(), ControlError>>,
    },
    Status {
        reply: oneshot::Sender<StatusView>,
    },
    History {
        resource: Option<String>,
        limit: usize,
        reply: oneshot::Sender<Result<Vec<HistoryEntry>, ControlError>>,
    },
    /// Apply the configuration file (`warden reload`, SIGHUP); the reply lists the changes.
    Reload {
        reply: oneshot::Sender<Result<Vec<String>, ControlError>>,
    },
    /// An agent sets (Some) or removes its promotion score on a node.
    PromotionScore {
        resource: String,
        node: String,
        score: Option<Score>,
        reply: oneshot::Sender<Result<(), ControlError>>,
    },
    /// Stop the daemon: stop its resources first, or leave them running for a new daemon.
    Shutdown {
        leave_running: bool,
        reply: oneshot::Sender<Result<(), ControlError>>,
    },
}

/// What `status` shows: the configuration and state at one instant.
#[derive(Clone, Debug)]
pub struct StatusView {
    pub config: Arc<Config>,
    pub state: State,
    pub now: Time,
    pub node: String,
    pub transition_running: bool,
    pub next_wakeup: Option<Time>,
    /// The node that coordinates the cluster (None on one machine).
    pub coordinator: Option<String>,
    /// What the operator must know about this view (etcd unreachable, say).
    pub warnings: Vec<String>,
    /// In a cluster: whether this node holds a valid etcd lease, and whether etcd answers
    /// (None on one machine).
    pub cluster: Option<ClusterLink>,
}

/// A cluster node's link to etcd, as the status shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClusterLink {
    pub lease_valid: bool,
    pub etcd_connected: bool,
}

/// Why a request was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// The engine refuses the command: an unknown resource or node, a restart of what does
    /// not run.
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error("{0} is not promotable (set `promotable = true`)")]
    NotPromotable(String),
    /// The configuration file cannot be applied (a reload); nothing changed.
    #[error("{0}")]
    Config(String),
    /// The store could not record the command; nothing was applied.
    #[error("{0}")]
    Store(String),
    #[error("the daemon is stopping")]
    Stopping,
    /// The cluster could not take the request (etcd unreachable, no coordinator, or the
    /// coordinator refused it).
    #[error("{0}")]
    Cluster(String),
}

/// How a refusal is classed, for transports to map (the API to HTTP statuses).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Names something that does not exist.
    NotFound,
    /// Exists, but the request does not fit its state.
    Conflict,
    /// The input itself is wrong.
    Invalid,
    /// The daemon cannot answer now.
    Unavailable,
    /// Something on the daemon's side failed.
    Internal,
}

impl ControlError {
    /// The request field the error concerns.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            ControlError::Apply(ApplyError::UnknownResource(_) | ApplyError::NotActive { .. })
            | ControlError::NotPromotable(_) => Some("resource"),
            ControlError::Apply(ApplyError::UnknownNode(_)) => Some("node"),
            ControlError::Apply(ApplyError::BadTicket(_)) => Some("ticket"),
            ControlError::Apply(ApplyError::BadAttribute(_)) => Some("attribute"),
            ControlError::Config(_) => Some("config"),
            ControlError::Store(_) | ControlError::Stopping | ControlError::Cluster(_) => None,
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            ControlError::Apply(ApplyError::UnknownResource(_) | ApplyError::UnknownNode(_)) => {
                ErrorKind::NotFound
            }
            ControlError::Apply(ApplyError::NotActive { .. }) | ControlError::NotPromotable(_) => {
                ErrorKind::Conflict
            }
            ControlError::Config(_)
            | ControlError::Apply(ApplyError::BadTicket(_) | ApplyError::BadAttribute(_)) => {
                ErrorKind::Invalid
            }
            ControlError::Stopping | ControlError::Cluster(_) => ErrorKind::Unavailable,
            // The store cannot record now (a full disk): try again later.
            ControlError::Store(_) => ErrorKind::Unavailable,
        }
    }
}

/// The handle: cheap to clone, one per client of the daemon. Resource and node matters go
/// to the daemon's loop as [`Request`]s; the health checker and the proxy's counters, which
/// keep their own state behind locks, are read and changed directly.
#[derive(Clone, Debug)]
pub struct Control {
    tx: mpsc::UnboundedSender<Request>,
    checker: Checker,
    proxy_stats: Registry,
    /// What the other nodes of a cluster last published (empty on one machine).
    elsewhere: crate::cluster::health::Elsewhere,
}

/// One upstream as the API shows it: its status and its check (None when unknown).
pub type UpstreamView = (UpstreamStatus, Option<CheckSpec>);

impl Control {
    /// A handle and the receiver the daemon's loop reads.
    pub fn new(
        checker: Checker,
        proxy_stats: Registry,
    ) -> (Control, mpsc::UnboundedReceiver<Request>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Control {
                tx,
                checker,
                proxy_stats,
                elsewhere: Default::default(),
            },
            rx,
        )
    }

    /// Every upstream's status with its check.
    pub fn upstreams(&self) -> Vec<UpstreamView> {
        self.checker
            .snapshot()
            .into_iter()
            .map(|u| {
                let spec = self.checker.check_spec_of(&u.name);
                (u, spec)
            })
            .collect()
    }

    /// The health-check status page (lua-resty-upstream-healthcheck's text format).
    pub fn status_page(&self) -> String {
        status_page(&self.checker.snapshot())
    }

    /// Prometheus text: upstream health and the proxy listeners' counters.
    pub fn metrics(&self) -> String {
        let mut text = prometheus(&self.checker.snapshot());
        text.push_str(&self.proxy_stats.prometheus());
        text
    }

    /// What the other nodes of a cluster last published (their upstreams and listeners), by
    /// node; the handle the cluster node fills.
    pub fn elsewhere(&self) -> &crate::cluster::health::Elsewhere {
        &self.elsewhere
    }

    /// Every listener's counters as JSON.
    pub fn listeners(&self) -> serde_json::Value {
        self.proxy_stats.json()
    }

    /// Adds a peer to a running upstream (until the next restart).
    pub fn add_peer(
        &self,
        upstream: &str,
        addr: &str,
        backup: bool,
    ) -> Result<(), PeerChangeError> {
        self.checker.add_peer(upstream, addr, backup)
    }

    pub fn remove_peer(&self, upstream: &str, addr: &str) -> Result<(), PeerChangeError> {
        self.checker.remove_peer(upstream, addr)
    }

    /// Drains a peer (no new traffic goes there) or takes it back.
    pub fn drain_peer(
        &self,
        upstream: &str,
        addr: &str,
        drained: bool,
    ) -> Result<(), PeerChangeError> {
        self.checker.set_drained(upstream, addr, drained)
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Request,
    ) -> Result<T, ControlError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .map_err(|_| ControlError::Stopping)?;
        rx.await.map_err(|_| ControlError::Stopping)
    }

    pub async fn admin(&self, cmd: AdminCommand) -> Result<(), ControlError> {
        self.ask(|reply| Request::Admin { cmd, reply }).await?
    }

    pub async fn status(&self) -> Result<StatusView, ControlError> {
        self.ask(|reply| Request::Status { reply }).await
    }

    pub async fn history(
        &self,
        resource: Option<String>,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>, ControlError> {
        self.ask(|reply| Request::History {
            resource,
            limit,
            reply,
        })
        .await?
    }

    pub async fn reload(&self) -> Result<Vec<String>, ControlError> {
        self.ask(|reply| Request::Reload { reply }).await?
    }

    pub async fn promotion_score(
        &self,
        resource: String,
        node: String,
        score: Option<Score>,
    ) -> Result<(), ControlError> {
        self.ask(|reply| Request::PromotionScore {
            resource,
            node,
            score,
            reply,
        })
        .await?
    }

    pub async fn shutdown(&self, leave_running: bool) -> Result<(), ControlError> {
        self.ask(|reply| Request::Shutdown {
            leave_running,
            reply,
        })
        .await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_their_field_from_their_kind_not_their_text() {
        // A resource whose name contains "node" is still a resource.
        let e = ControlError::from(ApplyError::UnknownResource("node-exporter".into()));
        assert_eq!(e.field(), Some("resource"));
        assert_eq!(e.kind(), ErrorKind::NotFound);
        let e = ControlError::from(ApplyError::UnknownNode("web".into()));
        assert_eq!(e.field(), Some("node"));
        let e = ControlError::from(ApplyError::NotActive {
            resource: "web".into(),
            node: Some("n1".into()),
        });
        assert_eq!(e.to_string(), "web is not started on n1");
        assert_eq!(
            (e.field(), e.kind()),
            (Some("resource"), ErrorKind::Conflict)
        );
    }

    #[tokio::test]
    async fn a_handle_whose_daemon_is_gone_says_so() {
        let (control, rx) = Control::new(Checker::start(vec![]), Registry::default());
        drop(rx);
        assert_eq!(control.reload().await, Err(ControlError::Stopping));
        assert_eq!(
            control.add_peer("nope", "127.0.0.1:1", false),
            Err(PeerChangeError::UnknownUpstream("nope".into()))
        );
    }
}
