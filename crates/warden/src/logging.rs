//! Logs: `--log-level`, `--log-format text|json`, `--log-output stderr|FILE`.

use std::path::PathBuf;

use anyhow::Context;
use tracing_subscriber::EnvFilter;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Log options shared by every command.
#[derive(Clone, Debug, clap::Args)]
pub struct LogArgs {
    /// error, warn, info, debug or trace (or a tracing filter like `warden=debug`).
    #[arg(long, global = true, default_value = "info", env = "WARDEN_LOG_LEVEL")]
    pub log_level: String,
    /// text or json.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// `stderr` or a file to append to.
    #[arg(long, global = true, default_value = "stderr")]
    pub log_output: String,
}

pub fn init(args: &LogArgs) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&args.log_level)
        .with_context(|| format!("bad --log-level {:?}", args.log_level))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let result = match (args.log_output.as_str(), args.log_format) {
        // Colours only on a terminal: journald and log files store the escape codes.
        ("stderr", LogFormat::Text) => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr)
            .try_init(),
        ("stderr", LogFormat::Json) => builder.json().with_writer(std::io::stderr).try_init(),
        (path, format) => {
            let path = PathBuf::from(path);
            // Logs name resources, peers and errors: the daemon's alone (0600).
            let file = std::os::unix::fs::OpenOptionsExt::mode(
                std::fs::OpenOptions::new().create(true).append(true),
                0o600,
            )
            .open(&path)
            .with_context(|| format!("cannot open --log-output {}", path.display()))?;
            let file = std::sync::Mutex::new(file);
            match format {
                LogFormat::Text => builder.with_ansi(false).with_writer(file).try_init(),
                LogFormat::Json => builder.json().with_writer(file).try_init(),
            }
        }
    };
    result.map_err(|e| anyhow::anyhow!("cannot set up logging: {e}"))
}
