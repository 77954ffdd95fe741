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
    pub agent_env: Arc<Vec<(String, String)>>,
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
                inv.extra_env = &self.agent_env;
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
                            &self.agent_env,
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
/// promotion-score`): `WARDEN_API`, `WARDEN_TOKEN`, `WARDEN_NODE`, `WARDEN_BIN`.
pub fn agent_env(api: std::net::SocketAddr, token: &str, node: &str) -> Arc<Vec<(String, String)>> {
    Arc::new(vec![
        ("WARDEN_API".to_owned(), api.to_string()),
        ("WARDEN_TOKEN".to_owned(), token.to_owned()),
        ("WARDEN_NODE".to_owned(), node.to_owned()),
        (
            "WARDEN_BIN".to_owned(),
            std::env::current_exe().map_or("warden".to_owned(), |p| p.display().to_string()),
        ),
    ])
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
