//! Running resource agents: OCF agents (`ocf`), with the environment, time-out and exit-reason
//! rules of the OCF standard as Pacemaker applies them, and their `meta-data`.

pub mod executor;
pub mod metadata;
pub mod ocf;
pub mod output;
pub mod process;
pub mod systemd;

use std::io;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use warden_engine::rc::{self, ExecStatus};

/// What one agent invocation produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentResult {
    /// The OCF return code (a time-out or a signal death is rc 1).
    pub rc: i32,
    /// The agent's `ocf-exit-reason:` line, or the executor's reason ("timed out after 20s").
    pub exit_reason: String,
    /// Captured output, cut at [`OUTPUT_LIMIT`] bytes each.
    pub stdout: String,
    pub stderr: String,
    pub duration: Duration,
    pub timed_out: bool,
    /// Whether the agent ran at all ([`ExecStatus::NotInstalled`]: no such program here).
    pub status: ExecStatus,
}

impl AgentResult {
    /// A failure (rc 1) the executor reports itself, with no agent run.
    pub fn failed(reason: &str) -> AgentResult {
        AgentResult {
            rc: warden_engine::rc::ERR_GENERIC,
            exit_reason: reason.to_owned(),
            stdout: String::new(),
            stderr: String::new(),
            duration: Duration::ZERO,
            timed_out: false,
            status: ExecStatus::Done,
        }
    }
}

/// How much of an agent's stdout and of its stderr is kept.
pub const OUTPUT_LIMIT: usize = 64 * 1024;

/// How long an exit reason may be (Pacemaker keeps 128 characters; we keep a little more).
pub const EXIT_REASON_LIMIT: usize = 256;

/// The prefix that marks an exit reason on an agent's stderr.
pub const EXIT_REASON_PREFIX: &str = "ocf-exit-reason:";

/// The exit reason in an agent's stderr: the last line with the prefix, trimmed and bounded.
pub fn exit_reason(stderr: &str) -> String {
    let Some(line) = stderr
        .lines()
        .filter_map(|l| l.strip_prefix(EXIT_REASON_PREFIX))
        .next_back()
    else {
        return String::new();
    };
    let line = line.trim();
    match line.char_indices().nth(EXIT_REASON_LIMIT) {
        Some((cut, _)) => line[..cut].to_owned(),
        None => line.to_owned(),
    }
}

/// How long output is still read after a command exits: a daemon it started may hold its pipes
/// open forever, so we never wait for end-of-file.
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(100);

/// Runs a command in its own process group and waits for it or for `timeout`, when the whole
/// group gets SIGKILL. Never fails: a missing program is rc 5, one that cannot be executed rc 4,
/// a time-out or a death by signal rc 1; otherwise the exit code is the rc. Output is captured up
/// to [`OUTPUT_LIMIT`] and the exit reason read from stderr.
pub async fn run_command(cmd: Command, timeout: Duration) -> AgentResult {
    run_tracked(cmd, timeout, None).await
}

/// [`run_command`], noting the command's process group and start time in `track` while it
/// runs: a daemon killed meanwhile leaves the note, and the next one kills what is left of
/// the command before it probes ([`reap_interrupted`]), so an interrupted start never runs
/// alongside a new one.
pub async fn run_tracked(
    cmd: Command,
    timeout: Duration,
    track: Option<&std::path::Path>,
) -> AgentResult {
    run(cmd, timeout, track, None).await
}

/// [`run_command`] with `input` on the command's standard input (closed after it).
pub async fn run_with_input(cmd: Command, timeout: Duration, input: Vec<u8>) -> AgentResult {
    run(cmd, timeout, None, Some(input)).await
}

async fn run(
    mut cmd: Command,
    timeout: Duration,
    track: Option<&std::path::Path>,
    input: Option<Vec<u8>>,
) -> AgentResult {
    let started = Instant::now();
    let program = cmd.as_std().get_program().to_string_lossy().into_owned();
    // Noted before it is started: a daemon killed between the start and the note with the
    // process group would otherwise leave an agent no successor knows of. Until the group is
    // noted, the agent is found by the mark in its environment.
    if let Some(path) = track {
        let mark = action_mark();
        if let Err(e) = write_note(path, &format!("pending {mark}\n")) {
            tracing::warn!(path = %path.display(), error = %e, "cannot note a running agent");
        }
        cmd.env(ACTION_MARK, mark);
    }
    for k in crate::notify::PRIVATE_ENV {
        cmd.env_remove(k);
    }
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .process_group(0)
    .kill_on_drop(false);
    let mut child = loop {
        match cmd.spawn() {
            Ok(c) => break c,
            // This machine is out of descriptors or memory for now: nothing the agent did.
            // Try again until the operation's timeout; only then is it a (timed-out) failure.
            Err(e) if crate::fds::is_local_exhaustion(&e) && started.elapsed() < timeout => {
                tracing::warn!(program = %program, error = %e, "cannot start an agent now; trying again");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) if crate::fds::is_local_exhaustion(&e) => {
                let t = crate::duration::format(timeout);
                return AgentResult {
                    rc: rc::ERR_GENERIC,
                    exit_reason: format!("timed out after {t}: cannot run {program}: {e}"),
                    stdout: String::new(),
                    stderr: String::new(),
                    duration: started.elapsed(),
                    timed_out: true,
                    status: ExecStatus::Done,
                };
            }
            Err(e) => {
                return AgentResult {
                    rc: spawn_error_rc(&e),
                    exit_reason: format!("cannot run {program}: {e}"),
                    stdout: String::new(),
                    stderr: String::new(),
                    duration: started.elapsed(),
                    timed_out: false,
                    status: spawn_error_status(&e),
                };
            }
        }
    };
    let pgid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .map(Pid::from_raw);
    let tracked = match (track, pgid) {
        (Some(path), Some(pgid)) => {
            let started = process::start_time(pgid.as_raw()).unwrap_or(0);
            if let Err(e) = write_note(path, &format!("{} {started}\n", pgid.as_raw())) {
                tracing::warn!(path = %path.display(), error = %e, "cannot note a running agent");
            }
            Some(path)
        }
        _ => None,
    };
    if let (Some(mut stdin), Some(input)) = (child.stdin.take(), input) {
        // Written aside so a command that never reads cannot hold this up; the pipe closes
        // when the writer ends (or the command exits).
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let _ = stdin.write_all(&input).await;
        });
    }
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

    let (code, reason, timed_out) = match tokio::time::timeout(timeout, child.wait()).await {
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
            Some(format!("waiting for {program} failed: {e}")),
            false,
        ),
        Err(_) => {
            // The whole process group dies: the command and everything it forked.
            if let Some(pgid) = pgid {
                let _ = killpg(pgid, Signal::SIGKILL);
            }
            let _ = child.wait().await;
            let t = crate::duration::format(timeout);
            (rc::ERR_GENERIC, Some(format!("timed out after {t}")), true)
        }
    };
    for mut r in readers.into_iter().flatten() {
        // Still open after the grace (a child it left behind holds it): what was read so far is
        // kept, and the reader is stopped so our end of the pipe closes (else every such call
        // would leave two descriptors open for as long as that child lives).
        if tokio::time::timeout(DRAIN_AFTER_EXIT, &mut r)
            .await
            .is_err()
        {
            r.abort();
            let _ = r.await;
        }
    }
    let take = |b: &Arc<Mutex<Vec<u8>>>| {
        let v = b.lock().map(|v| v.clone()).unwrap_or_default();
        String::from_utf8_lossy(&v).into_owned()
    };
    if let Some(path) = tracked {
        let _ = std::fs::remove_file(path);
    }
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
        status: ExecStatus::Done,
    }
}

/// `path` with `suffix` added to its name (`web.out` -> `web.out.1`).
pub fn with_suffix(path: &std::path::Path, suffix: &str) -> std::path::PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    std::path::PathBuf::from(s)
}

/// Writes `text` to `path` whole or not at all: a new file (`<path>.new`), synced, renamed over
/// the old one. A reader never sees half of it.
pub fn write_whole(path: &std::path::Path, text: &str) -> io::Result<()> {
    use std::io::Write;
    let tmp = with_suffix(path, ".new");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// The environment variable that marks an agent started by [`run_tracked`].
const ACTION_MARK: &str = "WARDEN_ACTION";

/// A mark no other agent carries: this daemon's pid, the time, a counter.
fn action_mark() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{}-{t}-{n}", std::process::id())
}

/// Writes an agent note whole (a temporary file renamed over it). Not synced: the note must
/// outlive the daemon, not the machine (a machine that goes down takes its agents along).
fn write_note(path: &std::path::Path, text: &str) -> io::Result<()> {
    let tmp = with_suffix(path, ".new");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// The processes whose environment carries `mark` (an agent noted before it started, and
/// what it started).
fn marked(mark: &str) -> Vec<i32> {
    let want = format!("{ACTION_MARK}={mark}");
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|v| v == want.as_bytes()))
        })
        .collect()
}

/// Kills what is left of agents a killed daemon had running (their notes in `dir`, written by
/// [`run_tracked`]): the whole process group of each whose leader is still the process noted
/// (same pid and kernel start time). Returns the notes' names (`RESOURCE.ACTION`) of those
/// killed. Called at start, before anything is probed.
pub fn reap_interrupted(dir: &std::path::Path) -> Vec<String> {
    let mut killed = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return killed;
    };
    for e in entries.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        let note = std::fs::read_to_string(&path).unwrap_or_default();
        let mut it = note.split_whitespace();
        let parsed = (
            it.next().and_then(|p| p.parse::<i32>().ok()),
            it.next().and_then(|t| t.parse::<u64>().ok()),
        );
        if let Some(mark) = note.strip_prefix("pending ").map(str::trim) {
            // Killed between the note and the start, or before the group was noted: whatever
            // carries the mark goes, with its groups.
            let deadline = Instant::now() + Duration::from_secs(5);
            let mut found = false;
            loop {
                let pids = marked(mark);
                if pids.is_empty() || Instant::now() > deadline {
                    break;
                }
                found = true;
                for pid in pids {
                    let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
                    let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            if found {
                killed.push(name.trim_end_matches(".new").to_owned());
            }
            let _ = std::fs::remove_file(&path);
            continue;
        }
        if let (Some(pgid), Some(started)) = parsed {
            if pgid > 1 && process::start_time(pgid) == Some(started) {
                let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
                // The leader is gone before anything is probed.
                let deadline = Instant::now() + Duration::from_secs(5);
                while process::start_time(pgid) == Some(started) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(10));
                }
                killed.push(name.trim_end_matches(".new").to_owned());
            }
        }
        let _ = std::fs::remove_file(&path);
    }
    killed
}

/// The OCF return code for a program that could not be started (as Pacemaker maps them).
pub fn spawn_error_rc(e: &io::Error) -> i32 {
    match e.kind() {
        io::ErrorKind::NotFound => rc::ERR_INSTALLED,
        io::ErrorKind::PermissionDenied => rc::ERR_PERM,
        _ => rc::ERR_GENERIC,
    }
}

/// Whether a program that could not be started is not installed here (no such file), as
/// Pacemaker's executor tells "not installed" from an agent's own rc 5.
pub fn spawn_error_status(e: &io::Error) -> ExecStatus {
    if e.kind() == io::ErrorKind::NotFound {
        ExecStatus::NotInstalled
    } else {
        ExecStatus::Done
    }
}

/// Reads a pipe into `buf`, keeping at most [`OUTPUT_LIMIT`] bytes and discarding the rest (the
/// pipe is still drained so the writer never blocks on a full pipe).
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

#[cfg(test)]
mod tests {
    #[test]
    fn an_agent_noted_only_as_pending_is_found_by_its_mark_and_killed() {
        // The daemon was killed after the note and the start, before the group was noted.
        let dir = tempfile::tempdir().expect("dir");
        let mark = action_mark();
        write_note(&dir.path().join("db.start"), &format!("pending {mark}\n")).expect("note");
        let mut child = std::process::Command::new("sh");
        std::os::unix::process::CommandExt::process_group(&mut child, 0);
        let mut child = child
            .args(["-c", "sleep 100 & wait"])
            .env(ACTION_MARK, &mark)
            .spawn()
            .expect("agent");
        let deadline = Instant::now() + Duration::from_secs(5);
        while marked(&mark).len() < 2 {
            assert!(
                Instant::now() < deadline,
                "the agent and its child never ran"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(reap_interrupted(dir.path()), ["db.start"]);
        let status = child.wait().expect("reaped");
        assert!(!status.success());
        assert!(marked(&mark).is_empty(), "the agent's child lives on");
        assert!(std::fs::read_dir(dir.path()).expect("dir").next().is_none());
    }

    use super::*;

    fn open_fds() -> usize {
        std::fs::read_dir("/proc/self/fd").expect("fds").count()
    }

    #[tokio::test]
    async fn a_child_left_holding_the_output_leaks_no_descriptors() {
        let run = || {
            let mut cmd = Command::new("sh");
            cmd.args(["-c", "sleep 3 & echo started"]);
            run_command(cmd, Duration::from_secs(5))
        };
        // One run first: the runtime's own descriptors (timers, blocking pool) are made.
        assert_eq!(run().await.stdout, "started\n");
        let before = open_fds();
        for _ in 0..20 {
            let r = run().await;
            assert_eq!((r.rc, r.stdout.as_str()), (0, "started\n"));
        }
        let after = open_fds();
        assert!(
            after < before + 5,
            "{before} descriptors before 20 runs, {after} after"
        );
    }

    #[test]
    fn exit_reason_is_the_last_prefixed_line() {
        assert_eq!(
            exit_reason("noise\nocf-exit-reason:first\nocf-exit-reason: second \nmore"),
            "second"
        );
        assert_eq!(exit_reason("no reason here"), "");
        assert_eq!(
            exit_reason(&format!("ocf-exit-reason:{}", "é".repeat(300)))
                .chars()
                .count(),
            EXIT_REASON_LIMIT
        );
    }
}
