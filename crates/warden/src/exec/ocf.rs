//! Runs an OCF resource agent: the action is the only argument, parameters travel in the
//! environment, the agent runs in its own process group, which gets SIGKILL
//! when the time-out expires.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Command;
use warden_engine::{Copies, Notification, OpKey, OpName, OpRole, millis, rc};

use super::{AgentResult, EXIT_REASON_PREFIX};

/// The default OCF root.
pub const DEFAULT_OCF_ROOT: &str = "/usr/lib/ocf";

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
    /// Further variables (how to reach the daemon).
    pub extra_env: &'a [(String, String)],
    /// For clones: the clone meta attributes Pacemaker passes.
    pub copies: Option<&'a Copies>,
    /// For globally unique clones: this copy's number.
    pub copy_number: Option<usize>,
    /// For an instance of a clone that may run several copies on a node: which one.
    pub clone_instance: Option<&'a warden_engine::Instance>,
    /// For `notify`: what the notification tells.
    pub notification: Option<&'a Notification>,
    /// For `migrate_to` and `migrate_from`: (source, target) nodes.
    pub migration: Option<(&'a str, &'a str)>,
    /// The role a recurring monitor is for (`OCF_RESKEY_CRM_meta_role`), when it has one.
    pub role: Option<OpRole>,
    /// Where to note the agent's process group while it runs (see [`super::reap_interrupted`]).
    pub track: Option<PathBuf>,
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
            // Warden's `reload` is OCF 1.1's `reload-agent` (the old `reload` action meant
            // reloading the service, which agents implement unevenly).
            action: match op.name {
                OpName::Reload => "reload-agent",
                other => other.as_str(),
            },
            interval: op.interval(),
            timeout,
            params,
            node,
            check_level,
            extra_env: &[],
            copies: None,
            copy_number: None,
            clone_instance: None,
            notification: None,
            migration: None,
            role: None,
            track: None,
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
        match self.role {
            Some(OpRole::Promoted) => set("OCF_RESKEY_CRM_meta_role", "Promoted".into()),
            Some(OpRole::Unpromoted) => set("OCF_RESKEY_CRM_meta_role", "Unpromoted".into()),
            _ => {}
        }
        if let Some(inst) = self.clone_instance {
            // An instance is its own resource (OCF_RESOURCE_INSTANCE is `R:N`), with the
            // clone's attributes and its own number, as Pacemaker gives them.
            set("OCF_RESKEY_CRM_meta_clone", inst.number.to_string());
            set("OCF_RESKEY_CRM_meta_clone_max", inst.clone_max.to_string());
            set(
                "OCF_RESKEY_CRM_meta_clone_node_max",
                inst.clone_node_max.to_string(),
            );
            set("OCF_RESKEY_CRM_meta_globally_unique", "true".into());
            set("OCF_RESKEY_CRM_meta_notify", "false".into());
        }
        if let Some(p) = self.copies {
            // Pacemaker's names, old and new: agents read either.
            let clone_max = p.clone_max.map_or(String::new(), |c| c.to_string());
            if !clone_max.is_empty() {
                set("OCF_RESKEY_CRM_meta_clone_max", clone_max);
            }
            set(
                "OCF_RESKEY_CRM_meta_clone_node_max",
                p.clone_node_max.to_string(),
            );
            set(
                "OCF_RESKEY_CRM_meta_globally_unique",
                p.globally_unique.to_string(),
            );
            if let Some(n) = self.copy_number.filter(|_| p.globally_unique) {
                set("OCF_RESKEY_CRM_meta_clone", n.to_string());
            }
            if p.promotable {
                for k in ["promoted_max", "master_max"] {
                    set(
                        &format!("OCF_RESKEY_CRM_meta_{k}"),
                        p.promoted_max.to_string(),
                    );
                }
                for k in ["promoted_node_max", "master_node_max"] {
                    set(&format!("OCF_RESKEY_CRM_meta_{k}"), "1".into());
                }
                set("OCF_RESKEY_CRM_meta_promotable", "true".into());
            }
            set("OCF_RESKEY_CRM_meta_notify", p.notify.to_string());
        }
        if let Some((source, target)) = self.migration {
            set("OCF_RESKEY_CRM_meta_migrate_source", source.to_owned());
            set("OCF_RESKEY_CRM_meta_migrate_target", target.to_owned());
        }
        if let Some(n) = self.notification {
            set("OCF_RESKEY_CRM_meta_notify_type", n.kind.as_str().into());
            set(
                "OCF_RESKEY_CRM_meta_notify_operation",
                n.operation.as_str().into(),
            );
            let lists: [(&str, &[String]); 8] = [
                ("start", &n.start),
                ("stop", &n.stop),
                ("promote", &n.promote),
                ("demote", &n.demote),
                ("active", &n.active),
                ("promoted", &n.promoted),
                ("unpromoted", &n.unpromoted),
                ("inactive", &n.inactive),
            ];
            for (name, nodes) in lists {
                let unames = nodes.join(" ");
                // Copies are named after the resource and their node.
                let resources = nodes
                    .iter()
                    .map(|node| format!("{}:{node}", self.instance))
                    .collect::<Vec<_>>()
                    .join(" ");
                let mut names = vec![name];
                match name {
                    "promoted" => names.push("master"),
                    "unpromoted" => names.push("slave"),
                    _ => {}
                }
                for n in names {
                    set(
                        &format!("OCF_RESKEY_CRM_meta_notify_{n}_uname"),
                        unames.clone(),
                    );
                    set(
                        &format!("OCF_RESKEY_CRM_meta_notify_{n}_resource"),
                        resources.clone(),
                    );
                }
            }
        }
        for (k, v) in self.extra_env {
            set(k, v.clone());
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
    let mut cmd = Command::new(inv.agent_path());
    cmd.arg(inv.action);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("OCF_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(inv.environment());
    super::run_tracked(cmd, inv.timeout, inv.track.as_deref()).await
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
        extra_env: &[],
        copies: None,
        copy_number: None,
        clone_instance: None,
        notification: None,
        migration: None,
        role: None,
        track: None,
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
