//! The `warden` command: check a configuration, simulate what the engine would do.

mod config;
mod diag;
mod duration;
mod simulate;
mod wire;

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
    },
    /// What-if: schedule and run one transition on a simulated cluster (like crm_simulate).
    Simulate(Box<simulate::SimulateArgs>),
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
        Command::CheckConfig { file } => {
            let loaded = config::load(&file)?;
            let c = &loaded.engine;
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
    }
}
