//! The `warden` command: run the daemon, talk to it, check a configuration, simulate, inspect
//! agents.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use serde_json::Value;
use warden::client::{Client, escape};
use warden::{agent, config, daemon, diag, exec, logging, simulate};

/// The version, the commit it was built from and the build date.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("WARDEN_COMMIT"),
    ", built ",
    env!("WARDEN_BUILD_DATE"),
    ")"
);

/// Warden keeps services available: resources with Pacemaker's failure semantics, health
/// checks and failover, in one binary with one TOML file.
#[derive(Debug, Parser)]
#[command(name = "warden", version = VERSION, about)]
struct Cli {
    #[command(flatten)]
    log: logging::LogArgs,
    #[command(subcommand)]
    command: Command,
}

/// How the CLI finds the daemon: its configuration gives the API address and the token file.
#[derive(Debug, Clone, clap::Args)]
struct Target {
    /// The daemon's configuration file.
    #[arg(
        long,
        short,
        global = true,
        env = "WARDEN_CONFIG",
        default_value = "/etc/warden/warden.toml"
    )]
    config: PathBuf,
    /// The API address, IP:PORT, or https://IP:PORT when it speaks TLS (default: where the
    /// daemon of the configuration listens, from its data dir).
    #[arg(long, global = true, env = "WARDEN_API")]
    api: Option<String>,
    /// The pin of the API's certificate, sha256:HEX, when it speaks TLS (default: read from
    /// `<data_dir>/api.pin`).
    #[arg(long, global = true, env = "WARDEN_API_PIN")]
    api_pin: Option<String>,
    /// The API token (default: read from `<data_dir>/api.token`).
    #[arg(long, global = true, env = "WARDEN_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// (Internal) copies standard input to FILE, rotating it at MAX bytes: what a supervised
    /// process writes goes through one of these.
    #[command(hide = true)]
    OutputWriter {
        #[arg(long)]
        file: PathBuf,
        #[arg(long)]
        max: u64,
    },
    /// (Internal) holds the listening sockets of a daemon that systemd restarts, for the new
    /// daemon to take (a process of its own, as the old daemon must exit first).
    #[command(hide = true)]
    HoldListeners { data_dir: PathBuf },
    /// Run the daemon: manage the configured resources on this machine.
    Run {
        /// The configuration file.
        #[arg(
            long,
            short,
            env = "WARDEN_CONFIG",
            default_value = "/etc/warden/warden.toml"
        )]
        config: PathBuf,
        /// This node's name (default: the configuration's only node).
        #[arg(long)]
        node: Option<String>,
        /// Where OCF agents live.
        #[arg(long, env = "OCF_ROOT", default_value = exec::ocf::DEFAULT_OCF_ROOT)]
        ocf_root: PathBuf,
        /// On SIGTERM and SIGINT, leave resources running instead of stopping them (SIGQUIT
        /// always leaves them; `warden shutdown` decides at stop time).
        #[arg(long)]
        leave_running: bool,
    },
    /// Stop the daemon: its resources first, in constraint order, or with --leave-running
    /// none of them, for a new daemon (same or newer binary) to adopt.
    Shutdown {
        #[command(flatten)]
        target: Target,
        /// Leave every resource running.
        #[arg(long)]
        leave_running: bool,
    },
    /// Nodes, resources (role, node, fail counts) and failed actions.
    Status {
        #[command(flatten)]
        target: Target,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Refresh every second until interrupted.
        #[arg(long)]
        watch: bool,
    },
    /// Act on a resource.
    Resource {
        #[command(flatten)]
        target: Target,
        #[command(subcommand)]
        action: ResourceAction,
    },
    /// Put a node in standby or back online.
    Node {
        #[command(flatten)]
        target: Target,
        #[command(subcommand)]
        action: NodeAction,
    },
    /// Grant, revoke, put on standby or activate a ticket (as Pacemaker's crm_ticket): the
    /// resources a `[[ticket]]` binds to it run only while it is granted.
    Ticket {
        #[command(flatten)]
        target: Target,
        #[arg(value_parser = ["grant", "revoke", "standby", "activate"])]
        action: String,
        ticket: String,
    },
    /// Every operation: time, rc, duration, exit reason (all resources, or one).
    History {
        #[command(flatten)]
        target: Target,
        resource: Option<String>,
        /// How many of the most recent operations.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Set, remove or show a copy's promotion score. Agents of promotable resources call it as
    /// Pacemaker agents call crm_master: the daemon gives them WARDEN_API, WARDEN_TOKEN and
    /// WARDEN_NODE, and OCF_RESOURCE_INSTANCE names the resource.
    PromotionScore {
        #[command(flatten)]
        target: Target,
        /// The resource.
        #[arg(long, env = "OCF_RESOURCE_INSTANCE")]
        resource: String,
        /// The node of the copy.
        #[arg(long, env = "WARDEN_NODE")]
        node: String,
        /// The score to set: an integer, INFINITY or -INFINITY.
        #[arg(
            long,
            short = 'v',
            allow_hyphen_values = true,
            conflicts_with = "delete"
        )]
        value: Option<String>,
        /// Remove the score (the copy can no longer be promoted by it).
        #[arg(long, short = 'D')]
        delete: bool,
        /// Print the score shown as JSON (`resource`, `node`, `score`).
        #[arg(long)]
        json: bool,
    },
    /// Apply the configuration file's upstreams and listeners to the running daemon without
    /// dropping a connection (as SIGHUP does); prints what changed.
    Reload {
        #[command(flatten)]
        target: Target,
        /// Print the daemon's answer as JSON (`ok`, `changes`).
        #[arg(long)]
        json: bool,
    },
    /// Health of upstream peers (the status page, or JSON).
    Upstream {
        #[command(flatten)]
        target: Target,
        #[command(subcommand)]
        action: UpstreamAction,
    },
    /// Check a configuration file; print every problem with file:line:col.
    CheckConfig {
        /// The configuration file.
        file: PathBuf,
        /// Where OCF agents live (their meta-data is used to check parameters).
        #[arg(long, env = "OCF_ROOT", default_value = exec::ocf::DEFAULT_OCF_ROOT)]
        ocf_root: PathBuf,
        /// Check the file for `warden simulate` only: several nodes without [cluster.etcd]
        /// are fine there (`warden run` refuses them).
        #[arg(long)]
        simulate: bool,
        /// Print JSON: `ok`, `summary`, `errors` and `warnings` (each with line, col, message).
        #[arg(long)]
        json: bool,
    },
    /// The cluster's configuration in etcd (several machines).
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// What-if: schedule and run one transition on a simulated cluster (like crm_simulate).
    Simulate(Box<simulate::SimulateArgs>),
    /// Migrate from another manager: writes a Warden configuration (and state) from its.
    Import {
        #[command(subcommand)]
        from: ImportFrom,
    },
    /// Print shell completions (bash, zsh, fish, elvish, powershell) to standard output:
    /// `warden completions bash > /etc/bash_completion.d/warden`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// (Packaging) writes the man pages of `warden` and of each command into DIR.
    #[command(hide = true)]
    Manpages { dir: PathBuf },
    /// The OCF resource agents installed on this machine.
    Agent {
        /// Where OCF agents live.
        #[arg(long, env = "OCF_ROOT", default_value = exec::ocf::DEFAULT_OCF_ROOT, global = true)]
        ocf_root: PathBuf,
        #[command(subcommand)]
        command: AgentCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ImportFrom {
    /// A Pacemaker CIB (`cibadmin -Q > cib.xml`): writes DIR/warden.toml and, from the status
    /// section, DIR/state.json (for `warden simulate --state`); lists by name every construct
    /// it could not carry over.
    Pacemaker {
        /// The CIB, XML.
        cib: PathBuf,
        /// The directory to write into (created if missing).
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigAction {
    /// Check FILE and store it in etcd (its `[cluster.etcd]` says where): every node runs it
    /// and applies the changes live.
    Push {
        /// The configuration file.
        file: PathBuf,
    },
    /// Print a complete, commented configuration: every key with its default.
    Example,
}

#[derive(Debug, Subcommand)]
enum ResourceAction {
    /// Forget failures (on one node or all) and probe again.
    Cleanup {
        resource: String,
        node: Option<String>,
    },
    /// Stop it, with what depends on it (orders, colocations, groups), and start it all again.
    Restart {
        resource: String,
        /// Only the copy on this node (default: wherever it runs).
        node: Option<String>,
    },
    /// Let it run (target role started).
    Enable { resource: String },
    /// Stop it and keep it stopped.
    Disable { resource: String },
    /// Prefer a node (+INFINITY) until `clear`.
    Move { resource: String, node: String },
    /// Forbid a node (-INFINITY) until `clear`; default: the node it runs on.
    Ban {
        resource: String,
        node: Option<String>,
    },
    /// Remove `move` and `ban` constraints.
    Clear { resource: String },
}

#[derive(Debug, Subcommand)]
enum UpstreamAction {
    /// Every upstream and its peers: UP, DOWN or UNKNOWN.
    Status {
        /// Print JSON (version, consecutive counts, last error and check time per peer).
        #[arg(long)]
        json: bool,
        /// Every node's upstreams and listeners, as JSON (a cluster's nodes publish theirs
        /// every 2 s).
        #[arg(long)]
        cluster: bool,
    },
    /// Add a peer to a running upstream (until the daemon restarts).
    AddPeer {
        upstream: String,
        /// HOST:PORT
        addr: String,
        /// As a backup peer.
        #[arg(long)]
        backup: bool,
    },
    /// Remove a peer from a running upstream.
    RemovePeer { upstream: String, addr: String },
    /// Drain a peer: no new connection or request goes there, those open finish; it is still
    /// checked (until the daemon restarts, or `undrain`).
    Drain { upstream: String, addr: String },
    /// Let traffic go to a drained peer again.
    Undrain { upstream: String, addr: String },
}

#[derive(Debug, Subcommand)]
enum NodeAction {
    /// The node runs nothing (default: the node of the daemon asked).
    Standby { node: Option<String> },
    /// The node may run resources again (default: the node of the daemon asked).
    Online { node: Option<String> },
    /// Set a node attribute that location rules read (as Pacemaker's crm_attribute), or
    /// remove it with --delete.
    Attribute {
        node: String,
        name: String,
        #[arg(required_unless_present = "delete")]
        value: Option<String>,
        #[arg(long, conflicts_with = "value")]
        delete: bool,
    },
}

#[derive(Debug, Subcommand)]
enum AgentCommand {
    /// List every agent as ocf:PROVIDER:TYPE.
    List {
        /// Print JSON (a list of names).
        #[arg(long)]
        json: bool,
    },
    /// Show an agent's parameters (required ones, defaults) and actions, from its meta-data.
    Info {
        /// The agent, like ocf:heartbeat:Dummy.
        agent: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::OutputWriter { file, max } = &cli.command {
        // Nothing else: no logging, no runtime, so it costs a few hundred kilobytes.
        return match exec::output::write_rotating(std::io::stdin().lock(), file, *max) {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::FAILURE,
        };
    }
    let logs = matches!(cli.command, Command::Run { .. });
    if logs {
        if let Err(e) = logging::init(&cli.log) {
            eprintln!("warden: error: {e:#}");
            return ExitCode::FAILURE;
        }
    }
    match run(cli) {
        Ok(out) => {
            let _ = std::io::stdout().write_all(out.as_bytes());
            ExitCode::SUCCESS
        }
        Err(e) => {
            if let Some(fe) = e.downcast_ref::<diag::FileErrors>() {
                eprintln!("{fe}");
            } else if logs {
                tracing::error!("{e:#}");
            } else {
                eprintln!("warden: error: {e:#}");
            }
            ExitCode::FAILURE
        }
    }
}

/// `NAME.1` for `cmd`, then `NAME-SUB.1` for each of its visible commands, recursively.
fn write_manpages(cmd: &clap::Command, dir: &Path, name: &str) -> anyhow::Result<()> {
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .title(name.to_owned())
        .render(&mut page)
        .context("cannot render a man page")?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, page).with_context(|| format!("cannot write {}", path.display()))?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_manpages(sub, dir, &format!("{name}-{}", sub.get_name()))?;
    }
    Ok(())
}

fn run(cli: Cli) -> anyhow::Result<String> {
    match cli.command {
        // Handled in main, before anything is set up.
        Command::OutputWriter { .. } => Ok(String::new()),
        Command::HoldListeners { data_dir } => {
            let held = runtime()?.block_on(warden::handover::hold(
                &data_dir,
                warden::handover::HOLD_WAIT,
            ))?;
            Ok(if held {
                "the listening sockets went to the new daemon\n".to_owned()
            } else {
                "no new daemon took the listening sockets; they are closed\n".to_owned()
            })
        }
        Command::Manpages { dir } => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot make {}", dir.display()))?;
            let cmd = <Cli as clap::CommandFactory>::command();
            write_manpages(&cmd, &dir, "warden")?;
            Ok(String::new())
        }
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "warden",
                &mut out,
            );
            String::from_utf8(out).context("completions are not UTF-8")
        }
        Command::Run {
            config,
            node,
            ocf_root,
            leave_running,
        } => {
            // Before any socket or thread: the descriptor budget follows the raised limit.
            let limit = warden::fds::raise_limit();
            let budget = warden::fds::budget();
            tracing::info!(
                limit,
                connections = budget.connections,
                "file descriptors: soft limit {limit}, {} for connections, the rest kept for agents and processes",
                budget.connections
            );
            let opts = daemon::Options {
                config_path: config,
                node,
                ocf_root,
                leave_running,
            };
            // The daemon's loop is one task; health checks and the API run on worker threads:
            // half the cores by default, `WARDEN_THREADS=N` to choose, 0 for one thread for
            // everything. Proxy sessions have threads of their own (`WARDEN_PROXY_THREADS`,
            // see `proxy::spawn`).
            let threads = std::env::var("WARDEN_THREADS")
                .ok()
                .and_then(|t| t.parse().ok())
                .unwrap_or_else(|| {
                    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).clamp(1, 8))
                });
            let rt = if threads == 0 {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?
            } else {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(threads)
                    .enable_all()
                    .build()?
            };
            rt.block_on(daemon::run(opts))?;
            Ok(String::new())
        }
        Command::Status {
            target,
            json,
            watch,
        } => {
            let client = client(&target)?;
            if !watch {
                return status(&client, json);
            }
            loop {
                let out = status(&client, json).unwrap_or_else(|e| format!("warden: {e:#}\n"));
                print!("{}", redraw(&out));
                let _ = std::io::stdout().flush();
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        Command::Resource { target, action } => {
            let client = client(&target)?;
            let (id, verb, node) = match action {
                ResourceAction::Cleanup { resource, node } => (resource, "cleanup", node),
                ResourceAction::Restart { resource, node } => (resource, "restart", node),
                ResourceAction::Enable { resource } => (resource, "enable", None),
                ResourceAction::Disable { resource } => (resource, "disable", None),
                ResourceAction::Move { resource, node } => (resource, "move", Some(node)),
                // Without a node, the daemon bans the node it runs on.
                ResourceAction::Ban { resource, node } => (resource, "ban", node),
                ResourceAction::Clear { resource } => (resource, "clear", None),
            };
            let q = node
                .as_deref()
                .map(|n| format!("?node={}", escape(n)))
                .unwrap_or_default();
            client.post(&format!("/v1/resources/{}/{verb}{q}", escape(&id)))?;
            Ok(format!("{verb} {id}: done\n"))
        }
        Command::PromotionScore {
            target,
            resource,
            node,
            value,
            delete,
            json,
        } => {
            let client = client(&target)?;
            let path = format!(
                "/v1/resources/{}/promotion-score?node={}",
                escape(&resource),
                escape(&node)
            );
            if delete {
                client.delete(&path)?;
                return Ok(String::new());
            }
            if let Some(v) = value {
                let score: warden_engine::Score = v.parse().map_err(anyhow::Error::msg)?;
                client.post(&format!("{path}&score={}", escape(&score.to_string())))?;
                return Ok(String::new());
            }
            let status = client.get("/v1/status")?;
            let r = status["resources"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|r| r["id"] == resource.as_str())
                .with_context(|| format!("unknown resource {resource:?}"))?;
            match r["promotion_scores"][&node].as_str() {
                Some(s) if json => Ok(serde_json::to_string_pretty(
                    &serde_json::json!({ "resource": resource, "node": node, "score": s }),
                )? + "\n"),
                Some(s) => Ok(format!("{s}\n")),
                None => anyhow::bail!("{resource} has no promotion score on {node}"),
            }
        }
        Command::Reload { target, json } => {
            let v = client(&target)?.post("/v1/reload")?;
            if json {
                return Ok(serde_json::to_string_pretty(&v)? + "\n");
            }
            let changes: Vec<&str> = v["changes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(serde_json::Value::as_str)
                .collect();
            Ok(if changes.is_empty() {
                "reloaded: nothing changed\n".to_owned()
            } else {
                format!("reloaded:\n{}\n", changes.join("\n"))
            })
        }
        Command::Shutdown {
            target,
            leave_running,
        } => {
            let q = if leave_running {
                "?leave_running=true"
            } else {
                ""
            };
            client(&target)?.post(&format!("/v1/shutdown{q}"))?;
            Ok(if leave_running {
                "shutting down; resources are left running\n".to_owned()
            } else {
                "shutting down; stopping resources first\n".to_owned()
            })
        }
        Command::Node { target, action } => {
            let client = client(&target)?;
            let (node, verb) = match action {
                NodeAction::Standby { node } => (node, "standby"),
                NodeAction::Online { node } => (node, "online"),
                NodeAction::Attribute {
                    node,
                    name,
                    value,
                    delete,
                } => {
                    let path = format!("/v1/nodes/{}/attributes/{}", escape(&node), escape(&name));
                    return match value.filter(|_| !delete) {
                        Some(v) => {
                            client.post(&format!("{path}?value={}", escape(&v)))?;
                            Ok(format!("{name}={v} on {node}: done\n"))
                        }
                        None => {
                            client.delete(&path)?;
                            Ok(format!("{name} deleted on {node}: done\n"))
                        }
                    };
                }
            };
            let node = match node {
                Some(n) => n,
                None => client
                    .get("/v1/status")?
                    .get("node")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .context("the daemon did not say which node it runs as: name the node")?,
            };
            client.post(&format!("/v1/nodes/{}/{verb}", escape(&node)))?;
            Ok(format!("{verb} {node}: done\n"))
        }
        Command::Ticket {
            target,
            action,
            ticket,
        } => {
            client(&target)?.post(&format!("/v1/tickets/{}/{action}", escape(&ticket)))?;
            Ok(format!("ticket {action} {ticket}: done\n"))
        }
        Command::History {
            target,
            resource,
            limit,
            json,
        } => {
            let client = client(&target)?;
            let q = resource
                .as_deref()
                .map(|r| format!("&resource={}", escape(r)))
                .unwrap_or_default();
            let v = client.get(&format!("/v1/history?limit={limit}{q}"))?;
            if json {
                return Ok(serde_json::to_string_pretty(&v)? + "\n");
            }
            let mut o = String::new();
            for h in v.as_array().into_iter().flatten() {
                let s = |k: &str| h[k].as_str().unwrap_or("").to_owned();
                o.push_str(&format!(
                    "{}  {}_{} on {}  rc={} ({})  {}ms",
                    s("time"),
                    s("resource"),
                    s("op"),
                    s("node"),
                    h["rc"],
                    s("rc_name"),
                    h["duration_ms"]
                ));
                if !s("exit_reason").is_empty() {
                    o.push_str(&format!("  '{}'", s("exit_reason")));
                }
                o.push('\n');
            }
            if o.is_empty() {
                o.push_str("(no operations yet)\n");
            }
            Ok(o)
        }
        Command::Upstream {
            target,
            action:
                UpstreamAction::AddPeer {
                    upstream,
                    addr,
                    backup,
                },
        } => {
            let path = format!(
                "/v1/upstreams/{}/peers?addr={}&backup={backup}",
                escape(&upstream),
                escape(&addr)
            );
            client(&target)?.post(&path)?;
            Ok(format!("added {addr} to {upstream}\n"))
        }
        Command::Upstream {
            target,
            action: UpstreamAction::RemovePeer { upstream, addr },
        } => {
            let path = format!(
                "/v1/upstreams/{}/peers?addr={}",
                escape(&upstream),
                escape(&addr)
            );
            client(&target)?.delete(&path)?;
            Ok(format!("removed {addr} from {upstream}\n"))
        }
        Command::Upstream {
            target,
            action: UpstreamAction::Drain { upstream, addr },
        } => drain(&target, "drain", &upstream, &addr),
        Command::Upstream {
            target,
            action: UpstreamAction::Undrain { upstream, addr },
        } => drain(&target, "undrain", &upstream, &addr),
        Command::Upstream {
            target,
            action: UpstreamAction::Status { json, cluster },
        } => {
            let client = client(&target)?;
            if cluster {
                let v = client.get("/v1/cluster")?;
                return Ok(serde_json::to_string_pretty(&v)? + "\n");
            }
            if json {
                let v = client.get("/v1/upstreams")?;
                return Ok(serde_json::to_string_pretty(&v)? + "\n");
            }
            client.get_text("/status")
        }
        Command::Config {
            action: ConfigAction::Example,
        } => Ok(config::EXAMPLE.to_owned()),
        Command::Config {
            action: ConfigAction::Push { file },
        } => {
            let loaded = config::load(&file)?;
            let Some(etcd) = loaded.etcd else {
                anyhow::bail!(
                    "{}: has no [cluster.etcd]: a single machine runs its file directly (`warden reload` applies changes)",
                    file.display()
                );
            };
            let text = std::fs::read_to_string(&file)?;
            let rev = runtime()?.block_on(warden::cluster::node::push_config(&etcd, &text))?;
            Ok(format!(
                "{}: stored in etcd under {} (revision {rev}); every node applies it now\n",
                file.display(),
                etcd.prefix
            ))
        }
        Command::CheckConfig {
            file,
            ocf_root,
            simulate,
            json,
        } => {
            let (r, warnings) = check_config(&file, &ocf_root, simulate);
            let name = file.display().to_string();
            if !json {
                for w in &warnings {
                    eprintln!("{name}:{}:{}: warning: {}", w.line, w.col, w.message);
                }
                return r;
            }
            let diag = |d: &[warden::diag::Diagnostic]| -> Vec<Value> {
                d.iter()
                    .map(|d| serde_json::json!({ "line": d.line, "col": d.col, "message": d.message }))
                    .collect()
            };
            let (summary, errors) = match r {
                Ok(s) => (Some(s.trim_end().to_owned()), Vec::new()),
                Err(e) => match e.downcast::<warden::diag::FileErrors>() {
                    Ok(fe) => (None, fe.list),
                    Err(e) => return Err(e),
                },
            };
            let v = serde_json::json!({
                "file": name,
                "ok": errors.is_empty(),
                "summary": summary,
                "errors": diag(&errors),
                "warnings": diag(&warnings),
            });
            if errors.is_empty() {
                Ok(format!("{v}\n"))
            } else {
                println!("{v}");
                anyhow::bail!("{}: {} error(s)", name, errors.len())
            }
        }
        Command::Simulate(args) => simulate::run(&args),
        Command::Import {
            from: ImportFrom::Pacemaker { cib, out },
        } => import_pacemaker(&cib, &out),
        Command::Agent { ocf_root, command } => match command {
            AgentCommand::List { json } => agent::list(&ocf_root, json),
            AgentCommand::Info { agent, json } => {
                runtime()?.block_on(agent::info(&ocf_root, &agent, json))
            }
        },
    }
}

fn status(client: &Client, json: bool) -> anyhow::Result<String> {
    let mut v = client.get("/v1/status")?;
    if json {
        if let Some(o) = v.as_object_mut() {
            o.remove("text");
        }
        return Ok(serde_json::to_string_pretty(&v)? + "\n");
    }
    let s = |k: &str| v[k].as_str().unwrap_or("").to_owned();
    let mut out = format!(
        "Cluster {} on node {} at {}",
        s("cluster"),
        s("node"),
        s("time")
    );
    if let Some(c) = v["coordinator"].as_str() {
        out.push_str(&format!(", coordinator {c}"));
    }
    if v["transition_running"].as_bool() == Some(true) {
        out.push_str(" (acting)");
    }
    out.push('\n');
    for w in v["warnings"].as_array().into_iter().flatten() {
        out.push_str(&format!("  ! {}\n", w.as_str().unwrap_or_default()));
    }
    out.push_str(&s("text"));
    Ok(out)
}

/// `warden check-config`: the summary line, or the file's errors; and its warnings either way.
fn check_config(
    file: &Path,
    ocf_root: &Path,
    simulate: bool,
) -> (anyhow::Result<String>, Vec<warden::diag::Diagnostic>) {
    let loaded = match config::load(file) {
        Ok(l) => l,
        Err(e) => return (Err(e), Vec::new()),
    };
    let c = &loaded.engine;
    let name = file.display().to_string();
    // Then what only this machine can tell: agents, parameters, programs, users.
    let mut metadata = std::collections::HashMap::new();
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return (Err(e), Vec::new()),
    };
    for (provider, kind) in config::ocf_agents(c) {
        let md = rt
            .block_on(exec::ocf::metadata(ocf_root, &provider, &kind))
            .map_err(|e| format!("{e:#}"));
        metadata.insert((provider, kind), md);
    }
    let places = &loaded.places;
    let (mut errors, warnings) = config::machine::check_agents(places, ocf_root, &metadata);
    errors.extend(config::machine::check_programs(
        places,
        std::env::var("PATH").ok().as_deref(),
    ));
    errors.extend(config::machine::check_identities(places));
    errors.extend(config::machine::check_systemd(places));
    if let (Some((line, col)), None, false) = (places.second_node, &loaded.etcd, simulate) {
        errors.push(warden::diag::Diagnostic {
                    line,
                    col,
                    message: "a second [[node]] without [cluster.etcd]: `warden run` runs one machine's file; several machines coordinate through etcd (add [cluster.etcd], docs/cluster.md). `warden simulate` takes the file as it is (check it with --simulate)".to_owned(),
                });
    }
    let mut warnings = warnings;
    if loaded.api.exposed_unconfirmed() {
        let (line, col) = places.api_listen.unwrap_or((1, 1));
        warnings.push(warden::diag::Diagnostic {
            line,
            col,
            message: config::API_EXPOSED.to_owned(),
        });
    }
    if !errors.is_empty() {
        errors.sort_by_key(|d| (d.line, d.col));
        return (
            Err(warden::diag::FileErrors {
                file: name,
                list: errors,
            }
            .into()),
            warnings,
        );
    }
    let summary = format!(
        "{}: ok ({} node(s), {} resource(s), {} constraint(s), fencing {}; data in {}, api on {})\n",
        file.display(),
        c.nodes().len(),
        c.resources().len(),
        c.locations().len() + c.colocations().len() + c.orders().len() + c.groups().len()
            - c.groups()
                .iter()
                .map(|g| g.resources.len().saturating_sub(1))
                .sum::<usize>(),
        if c.fencing_enabled() {
            "enabled"
        } else {
            "disabled"
        },
        loaded.data_dir.display(),
        loaded.api.listen,
    );
    (Ok(summary), warnings)
}

/// `warden import pacemaker CIB --out DIR`.
fn import_pacemaker(cib: &std::path::Path, out: &std::path::Path) -> anyhow::Result<String> {
    let xml =
        std::fs::read_to_string(cib).with_context(|| format!("cannot read {}", cib.display()))?;
    let i = warden::cib::import(&xml).with_context(|| format!("{}", cib.display()))?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let file = out.join("warden.toml");
    std::fs::write(&file, &i.toml).with_context(|| format!("cannot write {}", file.display()))?;
    let mut said = format!("wrote {}\n", file.display());
    if let Some(state) = &i.state {
        let path = out.join("state.json");
        let text =
            serde_json::to_string_pretty(&warden::wire::StateFile::from_state(state, i.time))?;
        std::fs::write(&path, text + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
        said.push_str(&format!(
            "wrote {} (the status at {})\n",
            path.display(),
            warden::wire::format_time(i.time)
        ));
    }
    if !i.ignored.is_empty() {
        said.push_str(&format!(
            "ignored, as Pacemaker ignores it ({}):\n",
            i.ignored.len()
        ));
        for u in &i.ignored {
            said.push_str(&format!("  {u}\n"));
        }
    }
    if i.unsupported.is_empty() {
        said.push_str("everything was carried over\n");
    } else {
        said.push_str(&format!("not carried over ({}):\n", i.unsupported.len()));
        for u in &i.unsupported {
            said.push_str(&format!("  {u}\n"));
        }
    }
    Ok(said)
}

/// `text` drawn over the previous screen in place (no flicker of a full clear): home, each
/// line with the rest of it cleared, then everything below cleared.
fn redraw(text: &str) -> String {
    let mut out = String::from("\x1b[H");
    for line in text.lines() {
        out.push_str(line);
        out.push_str("\x1b[K\n");
    }
    out.push_str("\x1b[J");
    out
}

/// `warden upstream drain|undrain UPSTREAM ADDR`.
fn drain(target: &Target, verb: &str, upstream: &str, addr: &str) -> anyhow::Result<String> {
    let path = format!(
        "/v1/upstreams/{}/peers/{verb}?addr={}",
        escape(upstream),
        escape(addr)
    );
    client(target)?.post(&path)?;
    Ok(format!("{verb}ed {addr} of {upstream}\n"))
}

/// A client for the daemon the configuration describes (or that --api and --token name). The
/// daemon is found through its data dir, which holds the address it listens on and the token:
/// a configuration file with errors (being edited) still names its data dir.
fn client(t: &Target) -> anyhow::Result<Client> {
    if let (Some(api), Some(token)) = (&t.api, &t.token) {
        let (addr, https) = warden::client::parse_api(api)?;
        let pin = match (https, &t.api_pin) {
            (false, _) => None,
            (true, Some(p)) => Some(p.clone()),
            (true, None) => anyhow::bail!(
                "{api} speaks TLS: give the pin of its certificate with --api-pin or WARDEN_API_PIN (the daemon writes it to <data_dir>/api.pin)"
            ),
        };
        return Ok(Client {
            addr,
            token: Some(token.clone()),
            token_problem: None,
            pin,
        });
    }
    let configured = config::data_dir_of(&t.config).with_context(|| {
        format!(
            "reading {} to find the daemon's data dir (set --config or WARDEN_CONFIG)",
            t.config.display()
        )
    })?;
    let data_dir = daemon::data_dir(&t.config, &configured);
    let (addr, https) = match &t.api {
        Some(a) => warden::client::parse_api(a)?,
        None => {
            let path = data_dir.join("api.addr");
            let text = std::fs::read_to_string(&path).map_err(|e| {
                anyhow::anyhow!(
                    "cannot read {}: {} (is `warden run --config {}` running?)",
                    path.display(),
                    io_reason(&e),
                    t.config.display()
                )
            })?;
            warden::client::parse_api(text.trim())
                .with_context(|| format!("{}: not an address: {:?}", path.display(), text.trim()))?
        }
    };
    let pin = match (https, &t.api_pin) {
        (false, _) => None,
        (true, Some(p)) => Some(p.clone()),
        (true, None) => {
            let path = data_dir.join("api.pin");
            let text = std::fs::read_to_string(&path).map_err(|e| {
                anyhow::anyhow!(
                    "the API speaks TLS and its certificate's pin cannot be read from {}: {} (or give it with --api-pin)",
                    path.display(),
                    io_reason(&e)
                )
            })?;
            Some(text.trim().to_owned())
        }
    };
    let (token, token_problem) = match &t.token {
        Some(tok) => (Some(tok.clone()), None),
        None => match read_token(&data_dir) {
            Ok(tok) => (Some(tok), None),
            Err(why) => (None, Some(why)),
        },
    };
    Ok(Client {
        addr,
        token,
        token_problem,
        pin,
    })
}

/// An I/O error as a person reads it, with what to do for the usual ones.
fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::PermissionDenied => {
            "permission denied (the data dir is the daemon's user's, 0700: run as that user or root, or pass --api and --token)".to_owned()
        }
        std::io::ErrorKind::NotFound => "no such file".to_owned(),
        _ => e.to_string(),
    }
}

/// The daemon's API token from its data dir, or why it cannot be read.
fn read_token(data_dir: &Path) -> Result<String, String> {
    let path = data_dir.join("api.token");
    match std::fs::read_to_string(&path) {
        Ok(s) if s.trim().is_empty() => Err(format!("{} is empty", path.display())),
        Ok(s) => Ok(s.trim().to_owned()),
        Err(e) => Err(format!("cannot read {}: {}", path.display(), io_reason(&e))),
    }
}

/// The async runtime for commands that run agents or serve: one thread, as the daemon needs.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}
