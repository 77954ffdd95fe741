//! Logs: `--log-level`, `--log-format text|json`, `--log-output stderr|FILE`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

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
        // journald: each line with its syslog priority (`<3>`), no time (journald stamps it),
        // no colour.
        ("stderr", LogFormat::Text) if stderr_is_journal() => builder
            .event_format(Priority(
                tracing_subscriber::fmt::format()
                    .with_target(false)
                    .with_ansi(false)
                    .without_time(),
            ))
            .with_writer(std::io::stderr)
            .try_init(),
        // Colours only on a terminal: log files and pipes would store the escape codes.
        ("stderr", LogFormat::Text) => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr)
            .try_init(),
        ("stderr", LogFormat::Json) => builder.json().with_writer(std::io::stderr).try_init(),
        (path, format) => {
            let path = PathBuf::from(path);
            let file = LogFile {
                file: Arc::new(Mutex::new(open(&path)?)),
            };
            let _ = OUTPUT.set((path, file.clone()));
            match format {
                LogFormat::Text => builder.with_ansi(false).with_writer(file).try_init(),
                LogFormat::Json => builder.json().with_writer(file).try_init(),
            }
        }
    };
    result.map_err(|e| anyhow::anyhow!("cannot set up logging: {e}"))
}

/// `--log-output FILE`: its path and the file lines go to, for [`reopen`].
static OUTPUT: OnceLock<(PathBuf, LogFile)> = OnceLock::new();

/// Opens the log file to append; logs name resources, peers and errors: the daemon's alone
/// (0600).
fn open(path: &Path) -> anyhow::Result<std::fs::File> {
    std::os::unix::fs::OpenOptionsExt::mode(
        std::fs::OpenOptions::new().create(true).append(true),
        0o600,
    )
    .open(path)
    .with_context(|| format!("cannot open --log-output {}", path.display()))
}

/// Opens `--log-output` again (SIGHUP), so that a file logrotate moved away is let go and a
/// new one started under the name. Nothing to do when logs go to stderr. On failure the old
/// file is kept.
pub fn reopen() -> anyhow::Result<()> {
    let Some((path, out)) = OUTPUT.get() else {
        return Ok(());
    };
    let file = open(path)?;
    *out.file.lock().unwrap_or_else(PoisonError::into_inner) = file;
    Ok(())
}

/// The log file, shared by every line written and [`reopen`].
#[derive(Clone, Debug)]
struct LogFile {
    file: Arc<Mutex<std::fs::File>>,
}

/// One line's hold on the log file.
struct Line<'a>(std::sync::MutexGuard<'a, std::fs::File>);

impl std::io::Write for Line<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogFile {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Line<'a> {
        Line(self.file.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Whether stderr is journald's stream: systemd says so in `$JOURNAL_STREAM` (`DEV:INODE` of
/// the stream it connected), as systemd.exec(5) describes.
fn stderr_is_journal() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(said) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(m) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    said == format!("{}:{}", m.dev(), m.ino())
}

/// A line format that starts each line with its syslog priority (sd-daemon(3)): journald
/// stores it as the entry's priority, so `journalctl -p warning` finds warnings.
struct Priority<F>(F);

impl<S, N, F> tracing_subscriber::fmt::FormatEvent<S, N> for Priority<F>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
    F: tracing_subscriber::fmt::FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        write!(writer, "<{}>", priority(*event.metadata().level()))?;
        self.0.format_event(ctx, writer, event)
    }
}

/// syslog's priority of a level: err, warning, info, debug.
fn priority(level: tracing::Level) -> u8 {
    match level {
        tracing::Level::ERROR => 3,
        tracing::Level::WARN => 4,
        tracing::Level::INFO => 6,
        tracing::Level::DEBUG | tracing::Level::TRACE => 7,
    }
}
