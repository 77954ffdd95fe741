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

use super::{AgentResult, run_command, spawn_error_rc, spawn_error_status};

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

/// Who a process's commands run as: its `user` (with the user's supplementary groups, as
/// systemd's `User=` gives them through initgroups) or `group`'s override of the primary one.
#[derive(Clone, Debug)]
struct Identity {
    uid: nix::unistd::Uid,
    gid: nix::unistd::Gid,
    groups: Vec<nix::unistd::Gid>,
    name: String,
    home: PathBuf,
    shell: PathBuf,
}

impl Identity {
    /// The identity `spec` names; `Ok(None)` when it names none (the daemon's own).
    fn of(spec: &ProcessSpec) -> Result<Option<Identity>, String> {
        let Some(user) = &spec.user else {
            // `group` alone is refused when the file is read: it would still run as root.
            return Ok(None);
        };
        let u = match User::from_name(user) {
            Ok(Some(u)) => u,
            Ok(None) => return Err(format!("unknown user {user:?}")),
            Err(e) => return Err(format!("cannot look up user {user:?}: {e}")),
        };
        let gid = match &spec.group {
            None => u.gid,
            Some(group) => match Group::from_name(group) {
                Ok(Some(g)) => g.gid,
                Ok(None) => return Err(format!("unknown group {group:?}")),
                Err(e) => return Err(format!("cannot look up group {group:?}: {e}")),
            },
        };
        let cname = std::ffi::CString::new(u.name.clone())
            .map_err(|_| format!("bad user name {user:?}"))?;
        let mut groups = nix::unistd::getgrouplist(&cname, gid)
            .map_err(|e| format!("cannot read the groups of {user:?}: {e}"))?;
        if !groups.contains(&gid) {
            groups.push(gid);
        }
        Ok(Some(Identity {
            uid: u.uid,
            gid,
            groups,
            name: u.name,
            home: u.dir,
            shell: u.shell,
        }))
    }
}

/// Variables of the daemon's environment a process still gets (systemd passes none but PATH
/// and the locale; `env` adds the rest).
const KEPT_ENV: &[&str] = &["PATH", "LANG", "LANGUAGE", "TZ"];

/// Where `setpriv` (util-linux) is: it drops to a process's user and groups before running it.
const SETPRIV: &str = "/usr/bin/setpriv";

/// A command of a process resource (the process itself, or its monitor, promote or demote
/// command): a clean environment (the daemon's PATH, locale and time zone; HOME, USER,
/// LOGNAME and SHELL of the user it runs as; then `env`), its `cwd`, and its identity. With a
/// `user`, util-linux's `setpriv` sets the groups, group and user (the whole list, as
/// initgroups gives it) and then runs the program: the daemon's code forbids `unsafe`, so it
/// cannot do so itself between fork and exec.
fn command_for(argv: &[String], spec: &ProcessSpec, who: Option<&Identity>) -> Option<Command> {
    let (program, args) = argv.split_first()?;
    let mut cmd = match who {
        None => Command::new(program),
        Some(w) => {
            let mut c = Command::new(SETPRIV);
            c.arg(format!("--reuid={}", w.uid))
                .arg(format!("--regid={}", w.gid));
            if w.groups.is_empty() {
                c.arg("--clear-groups");
            } else {
                let list: Vec<String> = w.groups.iter().map(ToString::to_string).collect();
                c.arg(format!("--groups={}", list.join(",")));
            }
            c.arg("--").arg(program);
            c
        }
    };
    cmd.args(args).env_clear();
    for (k, v) in std::env::vars_os() {
        let keep = k
            .to_str()
            .is_some_and(|k| KEPT_ENV.contains(&k) || k.starts_with("LC_"));
        if keep {
            cmd.env(k, v);
        }
    }
    if std::env::var_os("PATH").is_none() {
        cmd.env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        );
    }
    let me = match who {
        Some(w) => Some((w.home.clone(), w.name.clone(), w.shell.clone())),
        None => User::from_uid(nix::unistd::geteuid())
            .ok()
            .flatten()
            .map(|u| (u.dir, u.name, u.shell)),
    };
    if let Some((home, name, shell)) = me {
        cmd.env("HOME", home)
            .env("USER", &name)
            .env("LOGNAME", &name)
            .env("SHELL", shell);
    }
    cmd.envs(spec.env.iter().map(|(k, v)| (k, v)));
    if let Some(dir) = &spec.cwd {
        cmd.current_dir(dir);
    }
    Some(cmd)
}

/// Runs and watches `process` resources.
#[derive(Clone, Debug)]
pub struct Supervisor {
    run_dir: PathBuf,
    log_dir: PathBuf,
    running: Arc<Mutex<HashMap<String, Running>>>,
    exits: mpsc::UnboundedSender<Exited>,
    /// The `warden` binary, whose `output-writer` caps and rotates each process's output (see
    /// [`super::output`]); None: output is appended to its files directly, uncapped.
    output_writer: Option<PathBuf>,
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
        std::fs::create_dir_all(run_dir.join("agents"))?;
        std::fs::create_dir_all(&log_dir)?;
        Ok(Supervisor {
            run_dir,
            log_dir,
            running: Arc::default(),
            exits,
            output_writer: None,
        })
    }

    /// Output through `warden output-writer` (`program` is the warden binary): capped at each
    /// process's `output_max` and rotated.
    pub fn with_output_writer(mut self, program: PathBuf) -> Supervisor {
        self.output_writer = Some(program);
        self
    }

    /// Where a process's output goes: its file, or a pipe to an output writer of its own.
    fn output_to(&self, file: &Path, max: u64) -> std::io::Result<std::process::Stdio> {
        // The daemon's alone (0600): a process's output is its own business.
        let direct = || {
            std::os::unix::fs::OpenOptionsExt::mode(
                OpenOptions::new().create(true).append(true),
                0o600,
            )
            .open(file)
            .map(std::process::Stdio::from)
        };
        let Some(program) = &self.output_writer else {
            return direct();
        };
        let mut c = Command::new(program);
        c.arg("output-writer")
            .arg("--file")
            .arg(file)
            .arg("--max")
            .arg(max.to_string())
            .env_clear()
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            // Its own group: a stop signal to the process's group leaves it to drain the pipe,
            // and it ends when the process (every holder of the pipe) has.
            .process_group(0)
            .kill_on_drop(false);
        let mut child = match c.spawn() {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "cannot start an output writer: this output is appended uncapped");
                return direct();
            }
        };
        let pipe = child
            .stdin
            .take()
            .ok_or_else(|| std::io::Error::other("no pipe to the output writer"))?
            .into_owned_fd()?;
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        Ok(pipe.into())
    }

    /// Where agents running now are noted (see [`super::reap_interrupted`]).
    pub fn agents_dir(&self) -> PathBuf {
        self.run_dir.join("agents")
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
        let current = match self.current(id) {
            Ok(c) => c,
            Err(e) => return result(rc::ERR_GENERIC, e, started),
        };
        let Some(r) = current else {
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
            let who = match Identity::of(spec) {
                Ok(w) => w,
                Err(e) => return result(rc::ERR_CONFIGURED, e, started),
            };
            let Some(mut cmd) = command_for(argv, spec, who.as_ref()) else {
                return result(rc::ERR_CONFIGURED, format!("no {what} command"), started);
            };
            cmd.envs(extra_env.iter().map(|(k, v)| (k, v)));
            cmd.env("WARDEN_PID", r.pid.to_string());
            cmd.env("WARDEN_RESOURCE", id);
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
    /// `Err` when that cannot be told (the pidfile or `/proc` cannot be read, as when the
    /// daemon is out of descriptors): "not running" is never concluded from an error.
    fn current(&self, id: &str) -> Result<Option<Running>, String> {
        let known = self.running.lock().ok().and_then(|m| m.get(id).copied());
        let r = match known {
            Some(r) => r,
            None => {
                let path = self.pidfile(id);
                let text = match std::fs::read_to_string(&path) {
                    Ok(t) => t,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
                };
                let mut it = text.split_whitespace();
                let parsed = (|| {
                    Some(Running {
                        pid: it.next()?.parse().ok()?,
                        start_time: it.next()?.parse().ok()?,
                    })
                })();
                // A torn or foreign file names no process of ours.
                let Some(r) = parsed else { return Ok(None) };
                r
            }
        };
        match read_start_time(r.pid) {
            Ok(t) => Ok((t == Some(r.start_time)).then_some(r)),
            Err(e) => Err(format!(
                "cannot tell whether process {} runs: /proc/{}/stat: {e}",
                r.pid, r.pid
            )),
        }
    }

    /// [`Supervisor::current`], asked again every 100 ms while it cannot tell, for `within`.
    async fn current_within(&self, id: &str, within: Duration) -> Result<Option<Running>, String> {
        let deadline = Instant::now() + within;
        loop {
            match self.current(id) {
                Err(e) if Instant::now() < deadline => {
                    tracing::warn!(resource = %id, error = %e, "trying again");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                r => return r,
            }
        }
    }

    /// Probe: rc 0 when running (and from now on watched), rc 7 otherwise.
    pub fn probe(&self, id: &str) -> AgentResult {
        let started = Instant::now();
        match self.current(id) {
            Err(e) => result(rc::ERR_GENERIC, e, started),
            Ok(Some(r)) => {
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
            Ok(None) => result(rc::NOT_RUNNING, String::new(), started),
        }
    }

    /// Monitor: not running is rc 7; running with a failing `command` is rc 1.
    pub async fn monitor(
        &self,
        id: &str,
        spec: &ProcessSpec,
        command: Option<&[String]>,
        timeout: Duration,
    ) -> AgentResult {
        let started = Instant::now();
        let current = match self.current_within(id, timeout).await {
            Ok(c) => c,
            Err(e) => return result(rc::ERR_GENERIC, e, started),
        };
        if current.is_none() {
            return result(
                rc::NOT_RUNNING,
                "the process is not running".to_owned(),
                started,
            );
        }
        let Some(argv) = command.filter(|c| !c.is_empty()) else {
            return result(self.running_rc(id), String::new(), started);
        };
        let who = match Identity::of(spec) {
            Ok(w) => w,
            Err(e) => return result(rc::ERR_CONFIGURED, e, started),
        };
        let Some(cmd) = command_for(argv, spec, who.as_ref()) else {
            return result(self.running_rc(id), String::new(), started);
        };
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
        // A monitor command that cannot run fails the check (rc 1), as any failing command:
        // the process itself is there.
        r.status = warden_engine::rc::ExecStatus::Done;
        r
    }

    /// Start: spawn the process (rc 0 when it is running, or already was).
    pub fn start(&self, id: &str, spec: &ProcessSpec) -> AgentResult {
        let started = Instant::now();
        match self.current(id) {
            Ok(Some(_)) => return result(rc::OK, String::new(), started),
            Ok(None) => {}
            // Unsure whether a copy runs: never start a second one.
            Err(e) => return result(rc::ERR_GENERIC, e, started),
        }
        let who = match Identity::of(spec) {
            Ok(w) => w,
            Err(e) => return result(rc::ERR_CONFIGURED, e, started),
        };
        let Some(mut cmd) = command_for(&spec.command, spec, who.as_ref()) else {
            return result(rc::ERR_CONFIGURED, "no command".to_owned(), started);
        };
        let program = &spec.command[0];
        // A fresh process starts unpromoted.
        let _ = std::fs::remove_file(self.promoted_marker(id));
        let (out, err) = self.log_files(id);
        let max = spec.output_max.unwrap_or(super::output::DEFAULT_OUTPUT_MAX);
        let (stdout, stderr) = match (self.output_to(&out, max), self.output_to(&err, max)) {
            (Ok(o), Ok(e)) => (o, e),
            (Err(e), _) | (_, Err(e)) => {
                return result(
                    rc::ERR_PERM,
                    format!("cannot open log files in {}: {e}", self.log_dir.display()),
                    started,
                );
            }
        };
        cmd.stdin(std::process::Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0)
            .kill_on_drop(false);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                return AgentResult {
                    status: spawn_error_status(&e),
                    ..result(
                        spawn_error_rc(&e),
                        format!("cannot run {program}: {e}"),
                        started,
                    )
                };
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
        // Without its pidfile a restarted daemon would not know this copy and start another:
        // a pidfile that cannot be written fails the start, and the copy goes.
        if let Err(e) = write_pidfile(&self.pidfile(id), running) {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            tokio::spawn(async move {
                let _ = child.wait().await;
            });
            return result(
                rc::ERR_GENERIC,
                format!(
                    "cannot record the pid in {}: {e}; the process was killed",
                    self.pidfile(id).display()
                ),
                started,
            );
        }
        if let Ok(mut m) = self.running.lock() {
            m.insert(id.to_owned(), running);
        }
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
                    // Until the kernel says it is gone (an unreadable /proc says nothing).
                    while !read_start_time(r.pid).is_ok_and(|t| t != Some(r.start_time)) {
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
        let current = match self.current_within(id, spec.stop_timeout).await {
            Ok(c) => c,
            // Unsure whether it runs: not stopped, and nothing forgotten.
            Err(e) => return result(rc::ERR_GENERIC, e, started),
        };
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
        // An error reading /proc says nothing: keep waiting.
        if read_start_time(r.pid).is_ok_and(|t| t != Some(r.start_time)) {
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

/// The kernel start time of a live process (field 22 of /proc/PID/stat); None when it is gone,
/// a zombie, or cannot be read (use [`read_start_time`] where that difference matters).
pub fn start_time(pid: i32) -> Option<u64> {
    read_start_time(pid).ok().flatten()
}

/// The kernel start time of a live process: `Ok(None)` only when the kernel says it is gone
/// (no such entry) or a zombie; `Err` when /proc could not be read (EMFILE, ...), which says
/// nothing about the process.
pub fn read_start_time(pid: i32) -> std::io::Result<Option<u64>> {
    let stat = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s,
        Err(e) => return gone_or_error(e),
    };
    let Some(close) = stat.rfind(')') else {
        return Ok(None);
    };
    let after = stat.get(close + 2..).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    // after ") ": field 3 (state) is index 0, so field 22 is index 19.
    if fields.first() == Some(&"Z") {
        return Ok(None);
    }
    Ok(fields.get(19).and_then(|f| f.parse().ok()))
}

/// An error reading a process's /proc entry: gone (ENOENT, ESRCH) or unknown.
fn gone_or_error(e: std::io::Error) -> std::io::Result<Option<u64>> {
    let gone = e.kind() == std::io::ErrorKind::NotFound
        || e.raw_os_error() == Some(rustix::io::Errno::SRCH.raw_os_error());
    if gone { Ok(None) } else { Err(e) }
}

/// Writes a pidfile whole or not at all (a new file renamed over the old one), synced.
fn write_pidfile(path: &Path, r: Running) -> std::io::Result<()> {
    super::write_whole(path, &format!("{} {}\n", r.pid, r.start_time))
}

fn result(code: i32, exit_reason: String, started: Instant) -> AgentResult {
    AgentResult {
        rc: code,
        exit_reason,
        stdout: String::new(),
        stderr: String::new(),
        duration: started.elapsed(),
        timed_out: false,
        status: warden_engine::rc::ExecStatus::Done,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_kernel_saying_so_makes_a_process_gone() {
        let err = |n| gone_or_error(std::io::Error::from_raw_os_error(n));
        assert!(matches!(err(2), Ok(None)), "ENOENT: gone");
        assert!(matches!(err(3), Ok(None)), "ESRCH: gone");
        assert!(err(24).is_err(), "EMFILE says nothing");
        assert!(err(12).is_err(), "ENOMEM says nothing");
        assert!(matches!(read_start_time(i32::MAX), Ok(None)));
        assert!(read_start_time(std::process::id() as i32).is_ok_and(|t| t.is_some()));
    }
}
