//! Running one operation of a resource on this node (an OCF agent or a supervised process),
//! and fence devices: what the daemon's shell and a cluster node's agent share.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};
use warden_engine::{
    Agent, FenceAgent, FenceDevice, FenceMethod, Notification, OpKey, OpName, OpSpec, ResourceSpec,
    rc,
};

use super::process::Supervisor;
use super::{AgentResult, ocf, run_command, run_with_input};

/// What an operation needs to run on this node, detached from any loop.
#[derive(Clone, Debug)]
pub struct Executor {
    pub ocf_root: Arc<PathBuf>,
    pub supervisor: Supervisor,
    pub node: String,
    pub agent_env: Arc<AgentEnv>,
    /// This node's place in the node list: the copy number a globally unique clone's copy
    /// here has.
    pub copy_number: usize,
}

impl Executor {
    pub async fn run_op(
        &self,
        spec: &ResourceSpec,
        op: OpKey,
        notification: Option<&Notification>,
    ) -> AgentResult {
        self.run_migration_op(spec, op, notification, None).await
    }

    /// [`Executor::run_op`] for a live migration's step: `migration` is (source, target).
    pub async fn run_migration_op(
        &self,
        spec: &ResourceSpec,
        op: OpKey,
        notification: Option<&Notification>,
        migration: Option<(&str, &str)>,
    ) -> AgentResult {
        let op_spec: Option<&OpSpec> = spec.op(op.name, op.interval());
        let timeout = spec.timeout(op);
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
                inv.copies = spec.copies.as_ref();
                inv.clone_instance = spec.instance.as_ref();
                inv.copy_number = Some(self.copy_number);
                inv.notification = notification;
                inv.migration = migration;
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
            Agent::Systemd { unit } => super::systemd::run(unit, op, timeout).await,
            Agent::Fence(device) => fence_device_op(device, op, timeout).await,
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
                OpName::MigrateTo | OpName::MigrateFrom => {
                    AgentResult::failed("a process cannot migrate")
                }
                // A process takes no notifications; they succeed.
                OpName::Notify => AgentResult {
                    rc: rc::OK,
                    exit_reason: String::new(),
                    stdout: String::new(),
                    stderr: String::new(),
                    duration: Duration::ZERO,
                    timed_out: false,
                    status: warden_engine::rc::ExecStatus::Done,
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
    pub fn new(
        api: std::net::SocketAddr,
        tls: Option<&crate::api_tls::ApiTls>,
        token: &str,
        node: &str,
    ) -> Arc<AgentEnv> {
        let mut common = vec![
            (
                "WARDEN_API".to_owned(),
                match tls {
                    Some(_) => format!("https://{api}"),
                    None => api.to_string(),
                },
            ),
            ("WARDEN_NODE".to_owned(), node.to_owned()),
            (
                "WARDEN_BIN".to_owned(),
                std::env::current_exe().map_or("warden".to_owned(), |p| p.display().to_string()),
            ),
        ];
        if let Some(t) = tls {
            common.push(("WARDEN_API_PIN".to_owned(), t.pin.clone()));
        }
        Arc::new(AgentEnv {
            common,
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

/// An operation of a fence device placed as a resource: start and the recurring monitor check
/// the device (a fence agent's `monitor` action; a command device has nothing to check), stop
/// does nothing, and a probe finds it stopped (it runs only where this daemon started it).
async fn fence_device_op(device: &FenceDevice, op: OpKey, timeout: Duration) -> AgentResult {
    let done = |rc: i32| AgentResult {
        rc,
        exit_reason: String::new(),
        stdout: String::new(),
        stderr: String::new(),
        duration: Duration::ZERO,
        timed_out: false,
        status: warden_engine::rc::ExecStatus::Done,
    };
    match op.name {
        OpName::Monitor if op.is_probe() => done(rc::NOT_RUNNING),
        OpName::Start | OpName::Monitor => match &device.method {
            FenceMethod::Command(_) => done(rc::OK),
            FenceMethod::Agent(agent) => {
                let mut input = String::from("action=monitor\n");
                for (k, v) in &agent.params {
                    input.push_str(&format!("{k}={v}\n"));
                }
                let mut r = run_with_input(
                    tokio::process::Command::new(&agent.program),
                    timeout,
                    input.into_bytes(),
                )
                .await;
                if r.rc != rc::OK {
                    if r.exit_reason.is_empty() {
                        r.exit_reason =
                            format!("fence device check failed: {}", last_line(&r.stderr));
                    }
                    r.rc = rc::ERR_GENERIC;
                }
                r
            }
        },
        _ => done(rc::OK),
    }
}

/// Runs the fence devices of `node` in order until one succeeds; or, to unfence it, the
/// `on` action of each (every one must succeed: each guards its own storage).
pub async fn fence(node: &str, devices: &[FenceDevice], unfence: bool) -> bool {
    if unfence {
        let mut all = !devices.is_empty();
        for device in devices {
            let timeout = Duration::from_millis(device.timeout_ms);
            let FenceMethod::Agent(agent) = &device.method else {
                all = false;
                continue;
            };
            let on = FenceAgent {
                action: "on".to_owned(),
                ..agent.clone()
            };
            let r = run_fence_agent(&on, node, timeout).await;
            if r.rc == 0 {
                info!(node = %node, device = %device.name, "unfenced");
            } else {
                let reason = if r.exit_reason.is_empty() {
                    last_line(&r.stderr)
                } else {
                    r.exit_reason.clone()
                };
                warn!(node = %node, device = %device.name, rc = r.rc, reason = %reason, "unfencing failed");
                all = false;
            }
        }
        return all;
    }
    for device in devices {
        let timeout = Duration::from_millis(device.timeout_ms);
        let r = match &device.method {
            FenceMethod::Command(argv) => {
                let Some(program) = argv.first() else {
                    continue;
                };
                let mut cmd = tokio::process::Command::new(program);
                cmd.args(&argv[1..]).arg(node);
                run_command(cmd, timeout).await
            }
            FenceMethod::Agent(agent) => run_fence_agent(agent, node, timeout).await,
        };
        if r.rc == 0 {
            info!(node = %node, device = %device.name, "fenced");
            return true;
        }
        let reason = if r.exit_reason.is_empty() {
            last_line(&r.stderr)
        } else {
            r.exit_reason.clone()
        };
        warn!(node = %node, device = %device.name, rc = r.rc, reason = %reason, "fence device failed");
    }
    false
}

/// Calls a fence agent as Pacemaker's fencer does: its options on standard input, one
/// `name=value` a line: `action`, `nodename`, the node's plug as `plug` or `port` when its
/// metadata has either parameter (agents that fence only their own machine have neither), then
/// the device's own options.
async fn run_fence_agent(agent: &FenceAgent, node: &str, timeout: Duration) -> AgentResult {
    let plug = agent
        .host_map
        .iter()
        .find(|(n, _)| n == node)
        .map_or(node, |(_, p)| p.as_str());
    let metadata = run_with_input(
        tokio::process::Command::new(&agent.program),
        timeout,
        b"action=metadata\n".to_vec(),
    )
    .await;
    if metadata.rc != 0 {
        return metadata;
    }
    let mut input = format!("action={}\nnodename={}\n", agent.action, node);
    if let Some(name) = plug_parameter(&metadata.stdout) {
        input.push_str(&format!("{name}={plug}\n"));
    }
    for (k, v) in &agent.params {
        input.push_str(&format!("{k}={v}\n"));
    }
    run_with_input(
        tokio::process::Command::new(&agent.program),
        timeout,
        input.into_bytes(),
    )
    .await
}

/// The name under which a fence agent takes the plug to act on: `plug`, else the older
/// `port`, when its metadata (XML on standard output) has such a parameter.
fn plug_parameter(metadata: &str) -> Option<&'static str> {
    ["plug", "port"]
        .into_iter()
        .find(|p| metadata.contains(&format!("<parameter name=\"{p}\"")))
}

fn last_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("")
        .chars()
        .take(200)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FENCE_DUMMY: &str = "/usr/sbin/fence_dummy";

    fn agent_device(name: &str, program: &str, params: &[(&str, &str)]) -> FenceDevice {
        FenceDevice {
            name: name.to_owned(),
            method: FenceMethod::Agent(FenceAgent {
                program: program.to_owned(),
                params: params
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
                host_map: vec![("n2".to_owned(), "blade-7".to_owned())],
                action: "off".to_owned(),
            }),
            nodes: vec![],
            timeout_ms: 30_000,
            unfence: false,
            disabled: false,
        }
    }

    fn installed() {
        assert!(
            std::path::Path::new(FENCE_DUMMY).exists(),
            "{FENCE_DUMMY} is missing: install Debian's fence-agents (scripts/test.sh does)"
        );
    }

    #[tokio::test]
    async fn a_failing_fence_agent_hands_over_to_the_next_device() {
        installed();
        let dir = tempfile::tempdir().expect("dir");
        let status = dir.path().join("power");
        std::fs::write(&status, "on").expect("status");
        let status_arg = status.to_string_lossy().into_owned();
        // fence_dummy's "fail" type never sees the power go off: it fails after power_timeout.
        let broken = agent_device(
            "broken",
            FENCE_DUMMY,
            &[("type", "fail"), ("power_timeout", "1")],
        );
        let power = agent_device("power", FENCE_DUMMY, &[("status_file", &status_arg)]);
        assert!(!fence("n2", std::slice::from_ref(&broken), false).await);
        assert_eq!(std::fs::read_to_string(&status).expect("status"), "on");
        assert!(fence("n2", &[broken.clone(), power.clone()], false).await);
        // `action = "off"` reached the agent: the outlet it keeps in the file is off.
        assert_eq!(std::fs::read_to_string(&status).expect("status"), "off");
        // Unfencing runs the agent's `on`: the outlet is on again. Every device must succeed.
        assert!(fence("n2", std::slice::from_ref(&power), true).await);
        assert_eq!(std::fs::read_to_string(&status).expect("status"), "on");
        assert!(!fence("n2", &[power, broken], true).await);
        assert!(!fence("n2", &[], true).await, "no device: nothing unfenced");
    }

    #[tokio::test]
    async fn a_fence_agent_reads_its_options_and_the_nodes_plug_from_stdin() {
        // An agent that records its input and offers `plug` (or not) in its metadata, to see
        // exactly what it is given; the real fence_dummy above shows a real agent takes it.
        let dir = tempfile::tempdir().expect("dir");
        let record = dir.path().join("input");
        let agent = |name: &str, parameter: &str| {
            let path = dir.path().join(name);
            std::fs::write(
                &path,
                format!(
                    "#!/bin/sh\ninput=$(cat)\ncase \"$input\" in\naction=metadata*) echo '<resource-agent><parameters><parameter name=\"{parameter}\" unique=\"0\"/></parameters></resource-agent>'; exit 0;;\nesac\nprintf '%s\\n' \"$input\" > {}\n",
                    record.display()
                ),
            )
            .expect("agent");
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .expect("chmod");
            path.to_string_lossy().into_owned()
        };
        let with_plug = agent_device(
            "a",
            &agent("plug-agent", "plug"),
            &[("ip", "10.0.0.9"), ("password", "p w")],
        );
        assert!(fence("n2", std::slice::from_ref(&with_plug), false).await);
        assert_eq!(
            std::fs::read_to_string(&record).expect("input"),
            "action=off\nnodename=n2\nplug=blade-7\nip=10.0.0.9\npassword=p w\n"
        );
        // A node missing from the host map is its own plug; an agent offering only the older
        // `port` gets it as `port`; one offering neither fences its own machine and gets none.
        assert!(fence("n1", &[with_plug], false).await);
        assert!(
            std::fs::read_to_string(&record)
                .expect("input")
                .contains("\nplug=n1\n")
        );
        let with_port = agent_device("b", &agent("port-agent", "port"), &[]);
        assert!(fence("n2", &[with_port], false).await);
        assert_eq!(
            std::fs::read_to_string(&record).expect("input"),
            "action=off\nnodename=n2\nport=blade-7\n"
        );
        let neither = agent_device("c", &agent("self-agent", "ip"), &[]);
        assert!(fence("n2", &[neither], false).await);
        assert_eq!(
            std::fs::read_to_string(&record).expect("input"),
            "action=off\nnodename=n2\n"
        );
    }

    #[tokio::test]
    async fn a_missing_fence_agent_fails_the_device() {
        let missing = agent_device("gone", "/nonexistent/fence_gone", &[]);
        assert!(!fence("n2", &[missing], false).await);
    }
}
