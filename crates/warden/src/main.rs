//! The `warden` command: check a configuration, simulate what the engine would do, inspect
//! agents.

use warden::{agent, config, diag, exec, simulate};

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Warden keeps services available: resources with Pacemaker's failure semantics, health
/// checks and failover, in one binary with one TOML file.
#[derive(Debug, Parser)]
#[command(name = "warden", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a configuration file; print every problem with file:line:col.
    CheckConfig {
        /// The configuration file.
        file: PathBuf,
        /// Where OCF agents live (their meta-data is used to check parameters).
        #[arg(long, env = "OCF_ROOT", default_value = exec::ocf::DEFAULT_OCF_ROOT)]
        ocf_root: PathBuf,
    },
    /// What-if: schedule and run one transition on a simulated cluster (like crm_simulate).
    Simulate(Box<simulate::SimulateArgs>),
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
enum AgentCommand {
    /// List every agent as ocf:PROVIDER:TYPE.
    List,
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
    match run(cli) {
        Ok(out) => {
            let _ = std::io::stdout().write_all(out.as_bytes());
            ExitCode::SUCCESS
        }
        Err(e) => {
            if let Some(fe) = e.downcast_ref::<diag::FileErrors>() {
                eprintln!("{fe}");
            } else {
                eprintln!("warden: error: {e:#}");
            }
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<String> {
    match cli.command {
        Command::CheckConfig { file, ocf_root } => {
            let loaded = config::load(&file)?;
            let c = &loaded.engine;
            // Parameters are checked against the agents' meta-data where the agent is installed.
            let mut metadata = std::collections::HashMap::new();
            let rt = runtime()?;
            for (provider, kind) in config::ocf_agents(c) {
                match rt.block_on(exec::ocf::metadata(&ocf_root, &provider, &kind)) {
                    Ok(md) => {
                        metadata.insert((provider, kind), md);
                    }
                    Err(e) => {
                        eprintln!("{}: warning: parameters not checked: {e:#}", file.display())
                    }
                }
            }
            let src = std::fs::read_to_string(&file)?;
            config::check_agent_params(&src, &file.display().to_string(), &metadata)?;
            Ok(format!(
                "{}: ok ({} node(s), {} resource(s), {} constraint(s), fencing {}; data in {}, api on {})\n",
                file.display(),
                c.nodes().len(),
                c.resources().len(),
                c.locations().len(),
                if c.fencing_enabled() {
                    "enabled"
                } else {
                    "disabled"
                },
                loaded.data_dir.display(),
                loaded.api_listen,
            ))
        }
        Command::Simulate(args) => simulate::run(&args),
        Command::Agent { ocf_root, command } => match command {
            AgentCommand::List => agent::list(&ocf_root),
            AgentCommand::Info { agent, json } => {
                runtime()?.block_on(agent::info(&ocf_root, &agent, json))
            }
        },
    }
}

/// The async runtime for commands that run agents or serve: one thread, as the daemon will.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}
