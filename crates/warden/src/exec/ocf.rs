//! Runs an OCF resource agent: the action is the only argument, parameters travel in the
//! environment (design section 3), the agent runs in its own process group, which gets SIGKILL
//! when the time-out expires.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use warden_engine::{OpKey, millis, rc};

use super::{AgentResult, EXIT_REASON_PREFIX, OUTPUT_LIMIT, exit_reason};

/// The default OCF root.
pub const DEFAULT_OCF_ROOT: &str = "/usr/lib/ocf";

/// How long output is still read after the agent exits: a daemon the agent started may hold
/// its pipes open forever, so we never wait for end-of-file.
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(100);

/// One invocation of an agent.
#[derive(Clone, Debug)]
pub struct Invocation<'a> {
    pub ocf_root: &'a Path,
    pub provider: &'a str,
    pub kind: &'a str,
    /// The resource's id (`OCF_RESOURCE_INSTANCE`); empty for `meta-data`.
    pub instance: &'a str,
    /// The action: `start`, `monitor`, ..., or `meta-data`.
    pub action: &'a str,
    /// The operation's interval (zero for one-shot operations).
    pub interval: Duration,
    pub timeout: Duration,
    pub params: &'a [(String, String)],
    pub node: &'a str,
    /// `OCF_CHECK_LEVEL`, only for the operation that sets it.
    pub check_level: Option<u32>,
}

impl<'a> Invocation<'a> {
    /// An invocation of the operation `op` of a resource.
    #[allow(clippy::too_many_arguments)]
    pub fn for_op(
        ocf_root: &'a Path,
        provider: &'a str,
        kind: &'a str,
        instance: &'a str,
        op: OpKey,
        timeout: Duration,
        params: &'a [(String, String)],
        node: &'a str,
        check_level: Option<u32>,
    ) -> Self {
        Invocation {
            ocf_root,
            provider,
            kind,
            instance,
            action: op.name.as_str(),
            interval: op.interval(),
            timeout,
            params,
            node,
            check_level,
        }
    }

    /// Where the agent lives: `$OCF_ROOT/resource.d/<provider>/<type>`.
    pub fn agent_path(&self) -> PathBuf {
        agent_path(self.ocf_root, self.provider, self.kind)
    }

    /// The environment the agent gets on top of the daemon's own (whose OCF_ variables are
    /// removed first).
    pub fn environment(&self) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        let mut set = |k: &str, v: String| {
            env.insert(k.to_owned(), v);
        };
        set("OCF_ROOT", self.ocf_root.display().to_string());
        set("OCF_RA_VERSION_MAJOR", "1".into());
        set("OCF_RA_VERSION_MINOR", "1".into());
        if !self.instance.is_empty() {
            set("OCF_RESOURCE_INSTANCE", self.instance.into());
        }
        set("OCF_RESOURCE_TYPE", self.kind.into());
        set("OCF_RESOURCE_PROVIDER", self.provider.into());
        set("OCF_EXIT_REASON_PREFIX", EXIT_REASON_PREFIX.into());
        for (k, v) in self.params {
            set(&format!("OCF_RESKEY_{k}"), v.clone());
        }
        set(
            "OCF_RESKEY_CRM_meta_timeout",
            millis(self.timeout).to_string(),
        );
        if !self.interval.is_zero() {
            set(
                "OCF_RESKEY_CRM_meta_interval",
                millis(self.interval).to_string(),
            );
            set("OCF_RESKEY_CRM_meta_name", self.action.into());
        }
        set("OCF_RESKEY_CRM_meta_on_node", self.node.into());
        if let Some(level) = self.check_level {
            set("OCF_CHECK_LEVEL", level.to_string());
        }
        env
    }
}

/// Where an agent lives.
pub fn agent_path(ocf_root: &Path, provider: &str, kind: &str) -> PathBuf {
    ocf_root.join("resource.d").join(provider).join(kind)
}

/// Runs the agent and waits for it (or for its time-out). Never fails: a missing agent is
/// rc 5, one that cannot be executed rc 4, a time-out or a death by signal rc 1.
pub async fn run(inv: &Invocation<'_>) -> AgentResult {
    let started = Instant::now();
    let path = inv.agent_path();
    let mut cmd = Command::new(&path);
    cmd.arg(inv.action)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(false);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("OCF_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(inv.environment());

    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let rc = match e.kind() {
                io::ErrorKind::NotFound => rc::ERR_INSTALLED,
                io::ErrorKind::PermissionDenied => rc::ERR_PERM,
                _ => rc::ERR_GENERIC,
            };
            return AgentResult {
                rc,
                exit_reason: format!("cannot run {}: {e}", path.display()),
                stdout: String::new(),
                stderr: String::new(),
                duration: started.elapsed(),
                timed_out: false,
            };
        }
    };
    let pgid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .map(Pid::from_raw);
    let out = Arc::new(Mutex::new(Vec::new()));
    let err = Arc::new(Mutex::new(Vec::new()));
    let readers = [
        child
            .stdout
            .take()
            .map(|s| tokio::spawn(collect(s, Arc::clone(&out)))),
        child
            .stderr
            .take()
            .map(|s| tokio::spawn(collect(s, Arc::clone(&err)))),
    ];

    let (code, reason, timed_out) = match tokio::time::timeout(inv.timeout, child.wait()).await {
        Ok(Ok(status)) => match (
            status.code(),
            std::os::unix::process::ExitStatusExt::signal(&status),
        ) {
            (Some(c), _) => (c, None, false),
            (None, Some(sig)) => (
                rc::ERR_GENERIC,
                Some(format!("killed by signal {sig}")),
                false,
            ),
            (None, None) => (
                rc::ERR_GENERIC,
                Some("ended without a status".to_owned()),
                false,
            ),
        },
        Ok(Err(e)) => (
            rc::ERR_GENERIC,
            Some(format!("waiting for the agent failed: {e}")),
            false,
        ),
        Err(_) => {
            // The whole process group dies: the agent and everything it forked.
            if let Some(pgid) = pgid {
                let _ = killpg(pgid, Signal::SIGKILL);
            }
            let _ = child.wait().await;
            let t = crate::duration::format(inv.timeout);
            (rc::ERR_GENERIC, Some(format!("timed out after {t}")), true)
        }
    };
    for r in readers.into_iter().flatten() {
        if tokio::time::timeout(DRAIN_AFTER_EXIT, r).await.is_err() {
            // Still open (a daemon holds it); what was read so far is kept.
        }
    }
    let take = |b: &Arc<Mutex<Vec<u8>>>| {
        let v = b.lock().map(|v| v.clone()).unwrap_or_default();
        String::from_utf8_lossy(&v).into_owned()
    };
    let stdout = take(&out);
    let stderr = take(&err);
    let exit_reason = reason.unwrap_or_else(|| exit_reason(&stderr));
    AgentResult {
        rc: code,
        exit_reason,
        stdout,
        stderr,
        duration: started.elapsed(),
        timed_out,
    }
}

/// Reads a pipe into `buf`, keeping at most [`OUTPUT_LIMIT`] bytes and discarding the rest (the
/// pipe is still drained so the agent never blocks on a full pipe).
async fn collect(mut pipe: impl AsyncRead + Unpin, buf: Arc<Mutex<Vec<u8>>>) {
    let mut chunk = [0u8; 8192];
    loop {
        match pipe.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if let Ok(mut b) = buf.lock() {
                    let room = OUTPUT_LIMIT.saturating_sub(b.len());
                    b.extend_from_slice(&chunk[..n.min(room)]);
                }
            }
        }
    }
}

/// Runs `meta-data` and parses it.
pub async fn metadata(
    ocf_root: &Path,
    provider: &str,
    kind: &str,
) -> anyhow::Result<super::metadata::AgentMetadata> {
    let inv = Invocation {
        ocf_root,
        provider,
        kind,
        instance: "",
        action: "meta-data",
        interval: Duration::ZERO,
        timeout: super::metadata::METADATA_TIMEOUT,
        params: &[],
        node: "",
        check_level: None,
    };
    let r = run(&inv).await;
    if r.rc != rc::OK {
        anyhow::bail!(
            "ocf:{provider}:{kind} meta-data failed with rc {} ({}){}",
            r.rc,
            rc::name(r.rc),
            if r.exit_reason.is_empty() {
                String::new()
            } else {
                format!(": {}", r.exit_reason)
            }
        );
    }
    Ok(super::metadata::AgentMetadata::parse(&r.stdout)?)
}
