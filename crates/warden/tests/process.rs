//! The `process` class against real processes: start, exit noticed at once, stop with SIGKILL
//! after the stop timeout, adoption after a restart (pidfile + pidfd), monitor commands.

use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use warden::exec::process::{Exited, Supervisor, start_time};
use warden_engine::{ProcessSpec, rc};

fn spec(argv: &[&str]) -> ProcessSpec {
    ProcessSpec {
        command: argv.iter().map(|s| s.to_string()).collect(),
        stop_signal: "TERM".into(),
        stop_timeout: Duration::from_secs(5),
        ..ProcessSpec::default()
    }
}

fn pid_of(dir: &std::path::Path, id: &str) -> i32 {
    let text = std::fs::read_to_string(dir.join("run").join(format!("{id}.pid"))).expect("pidfile");
    text.split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .expect("pid")
}

fn sigkill(pid: i32) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill");
}

async fn next_exit(rx: &mut mpsc::UnboundedReceiver<Exited>) -> Exited {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("an exit within 10s")
        .expect("channel open")
}

#[tokio::test]
async fn a_crash_is_noticed_at_once() {
    let dir = tempfile::tempdir().expect("dir");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let sup = Supervisor::new(dir.path(), tx).expect("supervisor");
    assert_eq!(sup.probe("web").rc, rc::NOT_RUNNING);
    assert_eq!(sup.start("web", &spec(&["sleep", "300"])).rc, rc::OK);
    assert_eq!(sup.probe("web").rc, rc::OK);
    assert_eq!(
        sup.monitor("web", &spec(&["sleep"]), None, Duration::from_secs(5))
            .await
            .rc,
        rc::OK
    );
    let pid = pid_of(dir.path(), "web");
    let killed = Instant::now();
    sigkill(pid);
    let ex = next_exit(&mut rx).await;
    let noticed = killed.elapsed();
    assert_eq!(
        ex,
        Exited {
            resource: "web".into(),
            pid,
            how: "killed by signal 9".into()
        }
    );
    assert!(
        noticed < Duration::from_secs(2),
        "noticed after {noticed:?}"
    );
    assert_eq!(
        sup.monitor("web", &spec(&["sleep"]), None, Duration::from_secs(5))
            .await
            .rc,
        rc::NOT_RUNNING
    );
    assert_eq!(sup.probe("web").rc, rc::NOT_RUNNING);
}

#[tokio::test]
async fn stop_escalates_to_sigkill_after_the_stop_timeout() {
    let dir = tempfile::tempdir().expect("dir");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let sup = Supervisor::new(dir.path(), tx).expect("supervisor");
    let mut s = spec(&["sh", "-c", "trap '' TERM; sleep 300 & wait; sleep 300"]);
    s.stop_timeout = Duration::from_millis(300);
    assert_eq!(sup.start("stubborn", &s).rc, rc::OK);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let pid = pid_of(dir.path(), "stubborn");
    let r = sup.stop("stubborn", &s).await;
    assert_eq!(r.rc, rc::OK);
    assert_eq!(r.exit_reason, "did not stop within 300ms; killed");
    assert!(start_time(pid).is_none(), "the process is gone");
    // A stop we asked for is not reported as a crash.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), rx.recv())
            .await
            .is_err()
    );
    // Stopping what is stopped succeeds.
    assert_eq!(sup.stop("stubborn", &s).await.rc, rc::OK);
}

#[tokio::test]
async fn a_stopped_process_is_continued_so_it_takes_the_stop_signal() {
    let dir = tempfile::tempdir().expect("dir");
    let (tx, _rx) = mpsc::unbounded_channel();
    let sup = Supervisor::new(dir.path(), tx).expect("supervisor");
    // A shell that exits 0 on SIGTERM: "killed" in the reason would mean it never saw it.
    let mut s = spec(&[
        "sh",
        "-c",
        "trap 'exit 0' TERM; while :; do sleep 0.05; done",
    ]);
    s.stop_timeout = Duration::from_secs(20);
    assert_eq!(sup.start("frozen", &s).rc, rc::OK);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let pid = pid_of(dir.path(), "frozen");
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGSTOP,
    )
    .expect("SIGSTOP");
    let r = sup.stop("frozen", &s).await;
    assert_eq!((r.rc, r.exit_reason.as_str()), (rc::OK, ""));
    assert!(
        r.duration < Duration::from_secs(10),
        "the stop waited {:?}: the signal sat with a stopped process",
        r.duration
    );
    assert!(start_time(pid).is_none(), "the process is gone");
}

#[tokio::test]
async fn a_restarted_supervisor_adopts_and_watches_the_process() {
    let dir = tempfile::tempdir().expect("dir");
    let (tx, _rx) = mpsc::unbounded_channel();
    let first = Supervisor::new(dir.path(), tx).expect("supervisor");
    assert_eq!(first.start("db", &spec(&["sleep", "300"])).rc, rc::OK);
    let pid = pid_of(dir.path(), "db");
    drop(first);
    // A new daemon: it finds the process through the pidfile and watches it with a pidfd.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let second = Supervisor::new(dir.path(), tx).expect("supervisor");
    assert_eq!(second.probe("db").rc, rc::OK);
    sigkill(pid);
    // It is not our child: reap it on behalf of the test's process so it does not linger as a
    // zombie (a real adopted process is reparented to init, which reaps it).
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
    let ex = next_exit(&mut rx).await;
    assert_eq!((ex.resource.as_str(), ex.pid), ("db", pid));
}

#[tokio::test]
async fn a_pidfile_naming_someone_else_is_not_ours() {
    let dir = tempfile::tempdir().expect("dir");
    let (tx, _rx) = mpsc::unbounded_channel();
    let sup = Supervisor::new(dir.path(), tx).expect("supervisor");
    // Our own pid, with a start time that is not its own: a reused pid.
    let me = std::process::id();
    std::fs::write(dir.path().join("run/ghost.pid"), format!("{me} 1\n")).expect("write");
    assert_eq!(sup.probe("ghost").rc, rc::NOT_RUNNING);
}

#[tokio::test]
async fn environment_directory_and_output_files() {
    let dir = tempfile::tempdir().expect("dir");
    let work = tempfile::tempdir().expect("work");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let sup = Supervisor::new(dir.path(), tx).expect("supervisor");
    let mut s = spec(&["sh", "-c", "echo \"$GREETING from $(pwd)\"; echo oops >&2"]);
    s.env = vec![("GREETING".into(), "hello".into())];
    s.cwd = Some(work.path().display().to_string());
    assert_eq!(sup.start("echo", &s).rc, rc::OK);
    let ex = next_exit(&mut rx).await;
    assert_eq!(ex.how, "exited with 0");
    let (out, err) = sup.log_files("echo");
    assert_eq!(
        std::fs::read_to_string(out).expect("out"),
        format!("hello from {}\n", work.path().display())
    );
    assert_eq!(std::fs::read_to_string(err).expect("err"), "oops\n");
}

#[tokio::test]
async fn monitor_commands_and_missing_programs() {
    let dir = tempfile::tempdir().expect("dir");
    let (tx, _rx) = mpsc::unbounded_channel();
    let sup = Supervisor::new(dir.path(), tx).expect("supervisor");
    assert_eq!(sup.start("svc", &spec(&["sleep", "300"])).rc, rc::OK);
    let ok: Vec<String> = vec!["true".into()];
    assert_eq!(
        sup.monitor("svc", &spec(&["sleep"]), Some(&ok), Duration::from_secs(5))
            .await
            .rc,
        rc::OK
    );
    let bad: Vec<String> = vec![
        "sh".into(),
        "-c".into(),
        "echo 'port 8080 refused' >&2; exit 3".into(),
    ];
    let r = sup
        .monitor("svc", &spec(&["sleep"]), Some(&bad), Duration::from_secs(5))
        .await;
    assert_eq!(r.rc, rc::ERR_GENERIC);
    assert_eq!(
        r.exit_reason,
        "monitor command exited with 3: port 8080 refused"
    );
    let hang: Vec<String> = vec!["sleep".into(), "100".into()];
    let r = sup
        .monitor(
            "svc",
            &spec(&["sleep"]),
            Some(&hang),
            Duration::from_millis(200),
        )
        .await;
    assert_eq!(
        (r.rc, r.exit_reason.as_str()),
        (rc::ERR_GENERIC, "timed out after 200ms")
    );
    assert_eq!(sup.stop("svc", &spec(&["sleep"])).await.rc, rc::OK);
    let r = sup.start("nope", &spec(&["/nonexistent/program"]));
    assert_eq!(r.rc, rc::ERR_INSTALLED);
    assert_eq!(r.status, rc::ExecStatus::NotInstalled);
    assert!(
        r.exit_reason.contains("/nonexistent/program"),
        "{}",
        r.exit_reason
    );
}

#[tokio::test]
async fn runs_as_the_configured_user() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipping: needs root to switch users");
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let (tx, _rx) = mpsc::unbounded_channel();
    let sup = Supervisor::new(dir.path(), tx).expect("supervisor");
    let mut s = spec(&["sleep", "300"]);
    s.user = Some("nobody".into());
    assert_eq!(sup.start("as-nobody", &s).rc, rc::OK);
    let pid = pid_of(dir.path(), "as-nobody");
    let nobody = nix::unistd::User::from_name("nobody")
        .expect("lookup")
        .expect("nobody exists");
    // setpriv switches before it runs the program (same pid): wait for the exec.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
        let uid_line = status
            .lines()
            .find(|l| l.starts_with("Uid:"))
            .expect("Uid line")
            .to_owned();
        let name = status.lines().next().unwrap_or("").to_owned();
        if name.contains("sleep") {
            assert!(
                uid_line.split_whitespace().nth(1) == Some(&nobody.uid.to_string()),
                "{uid_line}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "{name}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sup.stop("as-nobody", &s).await.rc, rc::OK);
    s.user = Some("no-such-user-here".into());
    let r = sup.start("ghost", &s);
    assert_eq!(
        (r.rc, r.exit_reason.as_str()),
        (rc::ERR_CONFIGURED, "unknown user \"no-such-user-here\"")
    );
}

#[tokio::test]
async fn a_pidfile_that_cannot_be_written_fails_the_start_and_leaves_nothing_running() {
    let dir = tempfile::tempdir().expect("dir");
    let (tx, _rx) = mpsc::unbounded_channel();
    let sup = Supervisor::new(dir.path(), tx).expect("supervisor");
    // The pidfile cannot be written: the new file's place is taken by a directory.
    std::fs::create_dir_all(dir.path().join("run").join("svc.pid.new").join("x")).expect("mkdir");
    let pid_at = dir.path().join("started.pid");
    let s = spec(&[
        "sh",
        "-c",
        &format!("echo $$ > {}; exec sleep 300", pid_at.display()),
    ]);
    let r = sup.start("svc", &s);
    assert_eq!(r.rc, rc::ERR_GENERIC, "{r:?}");
    assert!(
        r.exit_reason.contains("cannot record the pid"),
        "{}",
        r.exit_reason
    );
    // Whatever it got to run is gone: a restarted daemon could not have known it.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pid: Option<i32> = std::fs::read_to_string(&pid_at)
            .ok()
            .and_then(|t| t.trim().parse().ok());
        if pid.is_none_or(|p| start_time(p).is_none()) {
            break;
        }
        assert!(Instant::now() < deadline, "the process still runs");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sup.probe("svc").rc, rc::NOT_RUNNING);
}

/// A user made for the test (once per machine), in two supplementary groups.
fn test_user() -> nix::unistd::User {
    const NAME: &str = "warden-test-u";
    if let Ok(Some(u)) = nix::unistd::User::from_name(NAME) {
        return u;
    }
    let st = std::process::Command::new("useradd")
        .args([
            "--system",
            "--no-create-home",
            "--home-dir",
            "/nonexistent-warden",
        ])
        .args(["--shell", "/bin/sh", "--groups", "adm,sys", NAME])
        .status()
        .expect("useradd");
    assert!(st.success(), "useradd {NAME}");
    nix::unistd::User::from_name(NAME)
        .expect("lookup")
        .expect("the user exists now")
}

#[tokio::test]
async fn every_command_of_a_process_runs_as_its_user_with_its_groups_and_a_clean_environment() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipping: needs root to switch users");
        return;
    }
    let u = test_user();
    let gid = |name: &str| {
        nix::unistd::Group::from_name(name)
            .expect("lookup")
            .expect("group")
            .gid
            .as_raw()
    };
    let dir = tempfile::tempdir().expect("dir");
    let out = dir.path().join("out");
    std::fs::create_dir(&out).expect("mkdir");
    std::fs::set_permissions(&out, std::os::unix::fs::PermissionsExt::from_mode(0o777))
        .expect("chmod");
    let (tx, _rx) = mpsc::unbounded_channel();
    let sup = Supervisor::new(dir.path(), tx).expect("supervisor");
    // Each command writes who it runs as and what environment it got.
    let report = |what: &str| -> Vec<String> {
        let o = out.display();
        vec![
            "sh".into(),
            "-c".into(),
            format!("id -u > {o}/{what}.uid; id -G > {o}/{what}.groups; env > {o}/{what}.env"),
        ]
    };
    let mut s = spec(&[
        "sh",
        "-c",
        &format!(
            "id -u > {o}/start.uid; id -G > {o}/start.groups; env > {o}/start.env; exec sleep 300",
            o = out.display()
        ),
    ]);
    s.user = Some("warden-test-u".into());
    s.env = vec![("MINE".into(), "1".into())];
    s.promote = Some(report("promote"));
    s.demote = Some(report("demote"));
    assert_eq!(sup.start("svc", &s).rc, rc::OK);
    let monitor = report("monitor");
    let r = sup
        .monitor("svc", &s, Some(&monitor), Duration::from_secs(10))
        .await;
    assert_eq!(r.rc, rc::OK, "{r:?}");
    for promote in [true, false] {
        let r = sup
            .change_role("svc", &s, promote, Duration::from_secs(10), &[])
            .await;
        assert_eq!(r.rc, rc::OK, "{r:?}");
    }
    let read = |f: &str| {
        let path = out.join(f);
        for _ in 0..100 {
            if let Ok(t) = std::fs::read_to_string(&path) {
                if !t.is_empty() {
                    return t;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{} was not written", path.display())
    };
    for what in ["start", "monitor", "promote", "demote"] {
        assert_eq!(
            read(&format!("{what}.uid")).trim(),
            u.uid.to_string(),
            "{what}"
        );
        let mut groups: Vec<u32> = read(&format!("{what}.groups"))
            .split_whitespace()
            .map(|g| g.parse().expect("gid"))
            .collect();
        groups.sort_unstable();
        let mut want = vec![u.gid.as_raw(), gid("adm"), gid("sys")];
        want.sort_unstable();
        want.dedup();
        assert_eq!(
            groups, want,
            "{what}: the user's groups, as initgroups gives them"
        );
        let env = read(&format!("{what}.env"));
        assert!(env.contains("HOME=/nonexistent-warden\n"), "{what}: {env}");
        assert!(env.contains("USER=warden-test-u\n"), "{what}: {env}");
        assert!(env.contains("MINE=1\n"), "{what}: {env}");
        assert!(env.contains("PATH="), "{what}: {env}");
        assert!(
            !env.contains("CARGO_MANIFEST_DIR="),
            "{what}: the daemon's environment leaked in: {env}"
        );
    }
    assert_eq!(sup.stop("svc", &s).await.rc, rc::OK);
}
