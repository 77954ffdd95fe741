//! Running one operation of a resource on this node (an OCF agent or a supervised process),
//! and fence devices: what the daemon's shell and a cluster node's agent share.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tracing::warn;
use warden_engine::{Agent, Notification, OpKey, OpName, OpSpec, ResourceSpec, rc};

use super::process::Supervisor;
use super::{AgentResult, ocf, run_command};

/// What an operation needs to run on this node, detached from any loop.
#[derive(Clone, Debug)]
pub struct Executor {
    pub ocf_root: Arc<PathBuf>,
    pub supervisor: Supervisor,
    pub node: String,
    pub agent_env: Arc<AgentEnv>,
}

impl Executor {
    pub async fn run_op(
        &self,
        spec: &ResourceSpec,
        op: OpKey,
        notification: Option<&Notification>,
    ) -> AgentResult {
        let op_spec: Option<&OpSpec> = spec.op(op.name, op.interval());
        // A probe takes the probe op's timeout, else the recurring monitor's.
        let timeout = op_spec
            .or_else(|| {
                if op.is_probe() {
                    spec.recurring_monitors().next()
                } else {
                    None
                }
            })
            .map_or(warden_engine::config::DEFAULT_OP_TIMEOUT, |o| o.timeout);
        match &spec.agent {
            Agent::Ocf { provider, kind } => {
                let mut inv = ocf::Invocation::for_op(
                    &self.ocf_root,
                    provider,
                    kind,
                    &spec.id,
                    op,
                    timeout,
                    &spec.params,
                    &self.node,
                    op_spec.and_then(|o| o.check_level),
                );
                let env = self.agent_env.of(&spec.id);
                inv.extra_env = &env;
                inv.promotable = spec.promotable.as_ref();
                inv.notification = notification;
                inv.role = op_spec
                    .filter(|o| spec.is_promotable() && o.name == OpName::Monitor)
                    .map(|o| o.role);
                // What changes the resource is noted while it runs; monitors only look.
                if op.name != OpName::Monitor {
                    inv.track = Some(self.supervisor.agents_dir().join(format!(
                        "{}.{}",
                        spec.id,
                        op.name.as_str()
                    )));
                }
                ocf::run(&inv).await
            }
            Agent::Process(p) => match op.name {
                OpName::Monitor if op.is_probe() => self.supervisor.probe(&spec.id),
                OpName::Monitor => {
                    self.supervisor
                        .monitor(
                            &spec.id,
                            p,
                            op_spec.and_then(|o| o.command.as_deref()),
                            timeout,
                        )
                        .await
                }
                OpName::Start => self.supervisor.start(&spec.id, p),
                OpName::Stop => self.supervisor.stop(&spec.id, p).await,
                OpName::Promote | OpName::Demote => {
                    self.supervisor
                        .change_role(
                            &spec.id,
                            p,
                            op.name == OpName::Promote,
                            timeout,
                            &self.agent_env.of(&spec.id),
                        )
                        .await
                }
                // A process has no reload-agent (its definition is never reloadable).
                OpName::Reload => AgentResult::failed("a process cannot reload"),
                // A process takes no notifications; they succeed.
                OpName::Notify => AgentResult {
                    rc: rc::OK,
                    exit_reason: String::new(),
                    stdout: String::new(),
                    stderr: String::new(),
                    duration: Duration::ZERO,
                    timed_out: false,
                },
            },
        }
    }
}

/// What every agent and promote/demote command gets to reach its daemon (`warden
/// promotion-score`): `WARDEN_API`, `WARDEN_NODE`, `WARDEN_BIN`, and a `WARDEN_TOKEN` good
/// for nothing but its own resource's promotion score ([`resource_token`]): an agent or a
/// command running as an unprivileged `user` never holds the daemon's token.
#[derive(Clone)]
pub struct AgentEnv {
    common: Vec<(String, String)>,
    token: String,
}

impl std::fmt::Debug for AgentEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentEnv")
            .field("common", &self.common)
            .finish_non_exhaustive()
    }
}

impl AgentEnv {
    pub fn new(api: std::net::SocketAddr, token: &str, node: &str) -> Arc<AgentEnv> {
        Arc::new(AgentEnv {
            common: vec![
                ("WARDEN_API".to_owned(), api.to_string()),
                ("WARDEN_NODE".to_owned(), node.to_owned()),
                (
                    "WARDEN_BIN".to_owned(),
                    std::env::current_exe()
                        .map_or("warden".to_owned(), |p| p.display().to_string()),
                ),
            ],
            token: token.to_owned(),
        })
    }

    /// The environment for an agent or command of `resource`.
    pub fn of(&self, resource: &str) -> Vec<(String, String)> {
        let mut env = self.common.clone();
        env.push((
            "WARDEN_TOKEN".to_owned(),
            resource_token(&self.token, resource),
        ));
        env
    }
}

/// The token that lets `resource`'s agents set its promotion score and nothing else: an
/// HMAC-SHA256 of the resource's name under the daemon's token, so the API can check it
/// without storing it, and it tells nothing about the daemon's token.
pub fn resource_token(token: &str, resource: &str) -> String {
    use std::fmt::Write;
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, token.as_bytes());
    let tag = ring::hmac::sign(&key, format!("promotion-score\0{resource}").as_bytes());
    let mut out = String::from("resource.");
    for b in tag.as_ref() {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Runs the fence devices of `node` in order (each gets the node's name as its last
/// argument) until one succeeds.
pub async fn fence(node: &str, devices: &[Vec<String>]) -> bool {
    for argv in devices {
        let Some(program) = argv.first() else {
            continue;
        };
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(&argv[1..]).arg(node);
        let r = run_command(cmd, Duration::from_secs(60)).await;
        if r.rc == 0 {
            return true;
        }
        warn!(node = %node, device = %program, rc = r.rc, reason = %r.exit_reason, "fence device failed");
    }
    false
}
