//! The `process` class: Warden runs a command itself. Start spawns it in its own process group
//! with its output appended to files under the data dir, and records a pidfile (pid and kernel
//! start time, so a reused pid is never mistaken for ours). Its exit is noticed the moment it
//! happens, through the child handle or, for a process adopted after a restart, a pidfd. Stop
//! sends the stop signal to the group, waits `stop_timeout`, then SIGKILL.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::{Group, Pid, User};
use tokio::process::Command;
use tokio::sync::mpsc;
use warden_engine::{ProcessSpec, rc};

use super::{AgentResult, run_command, spawn_error_rc};

/// Takes the exits of `resource` out of `deferred` (exits that came while an operation of
/// their resource was in flight: they count once it is done).
pub fn take_exits_of(deferred: &mut Vec<Exited>, resource: &str) -> Vec<Exited> {
    let (mine, later) = std::mem::take(deferred)
        .into_iter()
        .partition(|e| e.resource == resource);
    *deferred = later;
    mine
}

/// A supervised process ended on its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exited {
    pub resource: String,
    pub pid: i32,
    /// How it ended, for operators ("exited with 1", "killed by signal 9").
    pub how: String,
}

/// A running process we know: pid and kernel start time (clock ticks since boot).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Running {
    pid: i32,
    start_time: u64,
}

/// Runs and watches `process` resources.
#[derive(Clone, Debug)]
pub struct Supervisor {
    run_dir: PathBuf,
    log_dir: PathBuf,
    running: Arc<Mutex<HashMap<String, Running>>>,
    exits: mpsc::UnboundedSender<Exited>,
}

/// How long stop waits after SIGKILL before it reports failure.
const KILL_GRACE: Duration = Duration::from_secs(5);

impl Supervisor {
    /// A supervisor keeping pidfiles in `data_dir/run` and output in `data_dir/log`; exits are
    /// sent to `exits`.
    pub fn new(
        data_dir: &Path,
        exits: mpsc::UnboundedSender<Exited>,
    ) -> std::io::Result<Supervisor> {
        let run_dir = data_dir.join("run");
        let log_dir = data_dir.join("log");
        std::fs::create_dir_all(&run_dir)?;
        std::fs::create_dir_all(&log_dir)?;
        Ok(Supervisor {
            run_dir,
            log_dir,
            running: Arc::default(),
            exits,
        })
    }

    fn pidfile(&self, id: &str) -> PathBuf {
        self.run_dir.join(format!("{id}.pid"))
    }

    /// Present while the process is promoted (a promotable resource), so the role survives a
    /// restart of the daemon as the process does.
    fn promoted_marker(&self, id: &str) -> PathBuf {
        self.run_dir.join(format!("{id}.promoted"))
    }

    fn is_promoted(&self, id: &str) -> bool {
        self.promoted_marker(id).exists()
    }

    /// rc 0, or rc 8 ("running promoted") when the process is promoted.
    fn running_rc(&self, id: &str) -> i32 {
        if self.is_promoted(id) {
            rc::RUNNING_PROMOTED
        } else {
            rc::OK
        }
    }

    /// Promote (`promote` true) or demote the running process: its command, if it has one,
    /// then the role is recorded. rc 7 when the process is not running.
    pub async fn change_role(
        &self,
        id: &str,
        spec: &ProcessSpec,
        promote: bool,
        timeout: Duration,
        extra_env: &[(String, String)],
    ) -> AgentResult {
        let started = Instant::now();
        let Some(r) = self.current(id) else {
            if !promote {
                // Nothing runs, so nothing is promoted: the demote has nothing left to do.
                let _ = std::fs::remove_file(self.promoted_marker(id));
                return result(rc::OK, String::new(), started);
            }
            return result(
                rc::NOT_RUNNING,
                "the process is not running".to_owned(),
                started,
            );
        };
        let (argv, what) = if promote {
            (spec.promote.as_deref(), "promote")
        } else {
            (spec.demote.as_deref(), "demote")
        };
        if let Some(argv) = argv.filter(|a| !a.is_empty()) {
            let mut cmd = Command::new(&argv[0]);
            cmd.args(&argv[1..]);
            cmd.envs(spec.env.iter().map(|(k, v)| (k, v)));
            cmd.envs(extra_env.iter().map(|(k, v)| (k, v)));
            cmd.env("WARDEN_PID", r.pid.to_string());
            cmd.env("WARDEN_RESOURCE", id);
            if let Some(dir) = &spec.cwd {
                cmd.current_dir(dir);
            }
            let mut out = run_command(cmd, timeout).await;
            if out.rc != rc::OK {
                if out.exit_reason.is_empty() {
                    let last = out.stderr.lines().rev().find(|l| !l.trim().is_empty());
                    out.exit_reason = format!(
                        "{what} command exited with {}{}",
                        out.rc,
                        last.map(|l| format!(": {}", l.trim())).unwrap_or_default()
                    );
                }
                return out;
            }
        }
        let marker = self.promoted_marker(id);
        let written = if promote {
            std::fs::write(&marker, b"")
        } else {
            match std::fs::remove_file(&marker) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            }
        };
        match written {
            Ok(()) => result(rc::OK, String::new(), started),
            Err(e) => result(
                rc::ERR_GENERIC,
                format!("cannot record the role in {}: {e}", marker.display()),
                started,
            ),
        }
    }

    /// Where the process's stdout and stderr go.
    pub fn log_files(&self, id: &str) -> (PathBuf, PathBuf) {
        (
            self.log_dir.join(format!("{id}.out")),
            self.log_dir.join(format!("{id}.err")),
        )
    }

    /// The process of `id` if it is running: from memory, else from its pidfile (a process
    /// started before this daemon did), checked against the kernel's start time.
    fn current(&self, id: &str) -> Option<Running> {
        let known = self.running.lock().ok().and_then(|m| m.get(id).copied());
        let r = known.or_else(|| {
            let text = std::fs::read_to_string(self.pidfile(id)).ok()?;
            let mut it = text.split_whitespace();
            Some(Running {
                pid: it.next()?.parse().ok()?,
                start_time: it.next()?.parse().ok()?,
            })
        })?;
        (start_time(r.pid) == Some(r.start_time)).then_some(r)
    }

    /// Probe: rc 0 when running (and from now on watched), rc 7 otherwise.
    pub fn probe(&self, id: &str) -> AgentResult {
        let started = Instant::now();
        match self.current(id) {
            Some(r) => {
                let adopted = self
                    .running
                    .lock()
                    .map(|mut m| m.insert(id.to_owned(), r).is_none())
                    .unwrap_or(false);
                if adopted {
                    self.watch_adopted(id, r);
                }
                result(self.running_rc(id), String::new(), started)
            }
            None => result(rc::NOT_RUNNING, String::new(), started),
        }
    }

    /// Monitor: not running is rc 7; running with a failing `command` is rc 1.
    pub async fn monitor(
        &self,
        id: &str,
        command: Option<&[String]>,
        timeout: Duration,
    ) -> AgentResult {
        let started = Instant::now();
        if self.current(id).is_none() {
            return result(
                rc::NOT_RUNNING,
                "the process is not running".to_owned(),
                started,
            );
        }
        let Some(argv) = command.filter(|c| !c.is_empty()) else {
            return result(self.running_rc(id), String::new(), started);
        };
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]);
        let mut r = run_command(cmd, timeout).await;
        if r.rc != rc::OK && r.exit_reason.is_empty() {
            let last = r
                .stderr
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim();
            r.exit_reason = format!(
                "monitor command exited with {}{}",
                r.rc,
                if last.is_empty() {
                    String::new()
                } else {
                    format!(": {last}")
                }
            );
        }
        r.rc = if r.rc != rc::OK {
            rc::ERR_GENERIC
        } else {
            self.running_rc(id)
        };
        r
    }

    /// Start: spawn the process (rc 0 when it is running, or already was).
    pub fn start(&self, id: &str, spec: &ProcessSpec) -> AgentResult {
        let started = Instant::now();
        if self.current(id).is_some() {
            return result(rc::OK, String::new(), started);
        }
        let Some((program, args)) = spec.command.split_first() else {
            return result(rc::ERR_CONFIGURED, "no command".to_owned(), started);
        };
        // A fresh process starts unpromoted.
        let _ = std::fs::remove_file(self.promoted_marker(id));
        let (out, err) = self.log_files(id);
        let open = |p: &Path| OpenOptions::new().create(true).append(true).open(p);
        let (stdout, stderr) = match (open(&out), open(&err)) {
            (Ok(o), Ok(e)) => (o, e),
            (Err(e), _) | (_, Err(e)) => {
                return result(
                    rc::ERR_PERM,
                    format!("cannot open log files in {}: {e}", self.log_dir.display()),
                    started,
                );
            }
        };
        let mut cmd = Command::new(program);
        cmd.args(args)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0)
            .kill_on_drop(false);
        if let Some(dir) = &spec.cwd {
            cmd.current_dir(dir);
        }
        if let Some(user) = &spec.user {
            match User::from_name(user) {
                Ok(Some(u)) => {
                    cmd.uid(u.uid.as_raw());
                    if spec.group.is_none() {
                        cmd.gid(u.gid.as_raw());
                    }
                }
                _ => {
                    return result(
                        rc::ERR_CONFIGURED,
                        format!("unknown user {user:?}"),
                        started,
                    );
                }
            }
        }
        if let Some(group) = &spec.group {
            match Group::from_name(group) {
                Ok(Some(g)) => {
                    cmd.gid(g.gid.as_raw());
                }
                _ => {
                    return result(
                        rc::ERR_CONFIGURED,
                        format!("unknown group {group:?}"),
                        started,
                    );
                }
            }
        }
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                return result(
                    spawn_error_rc(&e),
                    format!("cannot run {program}: {e}"),
                    started,
                );
            }
        };
        let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) else {
            return result(
                rc::ERR_GENERIC,
                "the process vanished at once".to_owned(),
                started,
            );
        };
        let running = Running {
            pid,
            start_time: start_time(pid).unwrap_or(0),
        };
        if let Ok(mut m) = self.running.lock() {
            m.insert(id.to_owned(), running);
        }
        let _ = std::fs::write(
            self.pidfile(id),
            format!("{} {}\n", running.pid, running.start_time),
        );
        // Reap it and say so the moment it ends.
        let (exits, running_map, id_owned) =
            (self.exits.clone(), Arc::clone(&self.running), id.to_owned());
        tokio::spawn(async move {
            let how = match child.wait().await {
                Ok(s) => describe(s),
                Err(e) => format!("lost: {e}"),
            };
            report_exit(&running_map, &exits, &id_owned, pid, how);
        });
        result(rc::OK, String::new(), started)
    }

    /// Watches a process we did not start (found by a probe) through a pidfd.
    fn watch_adopted(&self, id: &str, r: Running) {
        let (exits, running_map, id_owned) =
            (self.exits.clone(), Arc::clone(&self.running), id.to_owned());
        let Some(pid) = rustix::process::Pid::from_raw(r.pid) else {
            return;
        };
        match rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()) {
            Ok(fd) => {
                // A pidfd turns readable when the process ends. A detached thread waits on it:
                // there are few processes, and it never holds up the daemon's exit.
                std::thread::spawn(move || {
                    let mut fds = [rustix::event::PollFd::new(
                        &fd,
                        rustix::event::PollFlags::IN,
                    )];
                    while rustix::event::poll(&mut fds, None).is_err() {}
                    report_exit(&running_map, &exits, &id_owned, r.pid, "exited".to_owned());
                });
            }
            Err(_) => {
                // No pidfd (old kernel): poll, slower but sure.
                tokio::spawn(async move {
                    while start_time(r.pid) == Some(r.start_time) {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    report_exit(&running_map, &exits, &id_owned, r.pid, "exited".to_owned());
                });
            }
        }
    }

    /// Stop: the stop signal to the process group, then SIGKILL after `stop_timeout`. rc 0 once
    /// nothing of it runs (also when it was not running).
    pub async fn stop(&self, id: &str, spec: &ProcessSpec) -> AgentResult {
        let started = Instant::now();
        let current = self.current(id);
        // Forget it first: the exit this causes is not a failure.
        if let Ok(mut m) = self.running.lock() {
            m.remove(id);
        }
        let _ = std::fs::remove_file(self.pidfile(id));
        let _ = std::fs::remove_file(self.promoted_marker(id));
        let Some(r) = current else {
            return result(rc::OK, String::new(), started);
        };
        let pgid = Pid::from_raw(r.pid);
        let sig = signal(&spec.stop_signal);
        let _ = killpg(pgid, sig);
        // A stopped (SIGSTOP, SIGTSTP) process would hold the stop signal until its whole
        // stop_timeout ran out: continue it so it handles the signal (as systemd does).
        if sig != Signal::SIGCONT {
            let _ = killpg(pgid, Signal::SIGCONT);
        }
        if wait_gone(r, spec.stop_timeout).await {
            return result(rc::OK, String::new(), started);
        }
        let _ = killpg(pgid, Signal::SIGKILL);
        let _ = kill(pgid, Signal::SIGKILL);
        if wait_gone(r, KILL_GRACE).await {
            return result(
                rc::OK,
                format!(
                    "did not stop within {}; killed",
                    crate::duration::format(spec.stop_timeout)
                ),
                started,
            );
        }
        result(
            rc::ERR_GENERIC,
            format!("process {} survived SIGKILL", r.pid),
            started,
        )
    }
}

fn report_exit(
    running: &Mutex<HashMap<String, Running>>,
    exits: &mpsc::UnboundedSender<Exited>,
    id: &str,
    pid: i32,
    how: String,
) {
    // Only the process we still consider running counts; a stop already forgot it.
    let ours = running.lock().map(|mut m| {
        if m.get(id).is_some_and(|r| r.pid == pid) {
            m.remove(id);
            true
        } else {
            false
        }
    });
    if ours.unwrap_or(false) {
        let _ = exits.send(Exited {
            resource: id.to_owned(),
            pid,
            how,
        });
    }
}

async fn wait_gone(r: Running, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if start_time(r.pid) != Some(r.start_time) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn signal(name: &str) -> Signal {
    match name {
        "INT" => Signal::SIGINT,
        "QUIT" => Signal::SIGQUIT,
        "HUP" => Signal::SIGHUP,
        "USR1" => Signal::SIGUSR1,
        "USR2" => Signal::SIGUSR2,
        "KILL" => Signal::SIGKILL,
        _ => Signal::SIGTERM,
    }
}

fn describe(s: std::process::ExitStatus) -> String {
    match (s.code(), std::os::unix::process::ExitStatusExt::signal(&s)) {
        (Some(c), _) => format!("exited with {c}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => "ended".to_owned(),
    }
}

/// The kernel start time of a live process (field 22 of /proc/PID/stat); None when it is gone
/// or a zombie.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // after ") ": field 3 (state) is index 0, so field 22 is index 19.
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

fn result(code: i32, exit_reason: String, started: Instant) -> AgentResult {
    AgentResult {
        rc: code,
        exit_reason,
        stdout: String::new(),
        stderr: String::new(),
        duration: started.elapsed(),
        timed_out: false,
    }
}
