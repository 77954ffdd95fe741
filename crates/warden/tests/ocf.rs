//! The OCF executor against real agents: Debian's `ocf:heartbeat:Dummy` (from the
//! `resource-agents` package the test command installs) and this folder's own test agents
//! (`tests/ocf/resource.d/warden-test`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use warden::exec::ocf::{Invocation, metadata, run};
use warden_engine::{OpKey, OpName, rc};

fn test_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ocf")
}

fn inv<'a>(
    root: &'a Path,
    kind: &'a str,
    action: &'a str,
    params: &'a [(String, String)],
) -> Invocation<'a> {
    Invocation {
        ocf_root: root,
        provider: "warden-test",
        kind,
        instance: "res1",
        action,
        interval: Duration::ZERO,
        timeout: Duration::from_secs(20),
        params,
        node: "node1",
        check_level: None,
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

fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn alive(pid: i32) -> bool {
    // Signal 0 tests for existence; a zombie also fails once reaped by init.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
}

#[tokio::test]
async fn every_return_code_comes_back_as_is() {
    let root = test_root();
    for code in [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 190, 191, 42] {
        let params = p(&[("rc", &code.to_string())]);
        let r = run(&inv(&root, "ExitWith", "monitor", &params)).await;
        assert_eq!(r.rc, code);
        assert_eq!(
            r.status,
            rc::ExecStatus::Done,
            "the agent ran: rc {code} is its own"
        );
        assert!(!r.timed_out);
        assert_eq!(r.stdout, "stdout of monitor\n");
        assert_eq!(r.stderr, "stderr of monitor\n");
        assert_eq!(r.exit_reason, "");
    }
}

#[tokio::test]
async fn exit_reason_is_read_from_stderr() {
    let root = test_root();
    let params = p(&[
        ("rc", "5"),
        ("reason", "the binary /usr/sbin/thing is missing"),
    ]);
    let r = run(&inv(&root, "ExitWith", "start", &params)).await;
    assert_eq!(r.rc, rc::ERR_INSTALLED);
    assert_eq!(r.exit_reason, "the binary /usr/sbin/thing is missing");
}

#[tokio::test]
async fn the_environment_is_the_ocf_one() {
    let root = test_root();
    let dir = tempfile::tempdir().expect("dir");
    let envfile = dir.path().join("env");
    let envfile_s = envfile.display().to_string();
    let params = p(&[("rc", "0"), ("envfile", &envfile_s)]);
    let read = |path: &Path| std::fs::read_to_string(path).expect("env written");

    // A recurring monitor with a check level.
    let mut i = Invocation::for_op(
        &root,
        "warden-test",
        "ExitWith",
        "res1",
        OpKey::new(OpName::Monitor, Duration::from_secs(10)),
        Duration::from_millis(1500),
        &params,
        "node1",
        Some(10),
    );
    assert_eq!(run(&i).await.rc, 0);
    let env = read(&envfile);
    let want = format!(
        "OCF_CHECK_LEVEL=10
OCF_EXIT_REASON_PREFIX=ocf-exit-reason:
OCF_RA_VERSION_MAJOR=1
OCF_RA_VERSION_MINOR=1
OCF_RESKEY_CRM_meta_interval=10000
OCF_RESKEY_CRM_meta_name=monitor
OCF_RESKEY_CRM_meta_on_node=node1
OCF_RESKEY_CRM_meta_timeout=1500
OCF_RESKEY_envfile={envfile_s}
OCF_RESKEY_rc=0
OCF_RESOURCE_INSTANCE=res1
OCF_RESOURCE_PROVIDER=warden-test
OCF_RESOURCE_TYPE=ExitWith
OCF_ROOT={}
",
        root.display()
    );
    assert_eq!(env, want);

    // A one-shot operation: no interval, no name, no check level.
    i.action = "start";
    i.interval = Duration::ZERO;
    i.check_level = None;
    assert_eq!(run(&i).await.rc, 0);
    let env = read(&envfile);
    for absent in [
        "OCF_CHECK_LEVEL",
        "OCF_RESKEY_CRM_meta_interval",
        "OCF_RESKEY_CRM_meta_name",
    ] {
        assert!(
            !env.contains(absent),
            "{absent} must not be set for start:\n{env}"
        );
    }
    assert!(env.contains("OCF_RESKEY_CRM_meta_timeout=1500\n"));

    // A copy of a globally unique clone knows it is one and its number; a migration step
    // knows both ends.
    let copies = warden_engine::Copies {
        clone_max: Some(3),
        globally_unique: true,
        ..warden_engine::Copies::default()
    };
    i.action = "migrate_to";
    i.copies = Some(&copies);
    i.copy_number = Some(2);
    i.migration = Some(("node1", "node2"));
    assert_eq!(run(&i).await.rc, 0);
    let env = read(&envfile);
    for want in [
        "OCF_RESKEY_CRM_meta_clone=2\n",
        "OCF_RESKEY_CRM_meta_clone_max=3\n",
        "OCF_RESKEY_CRM_meta_globally_unique=true\n",
        "OCF_RESKEY_CRM_meta_migrate_source=node1\n",
        "OCF_RESKEY_CRM_meta_migrate_target=node2\n",
    ] {
        assert!(env.contains(want), "{want} missing:\n{env}");
    }
    assert!(!env.contains("OCF_RESKEY_CRM_meta_promotable"), "{env}");

    // An instance of a clone that runs up to two copies on a node: its own number, the
    // clone's limits.
    let instance = warden_engine::Instance {
        of: "ip".into(),
        number: 1,
        clone_max: 2,
        clone_node_max: 2,
        clone_min: 1,
        name: "ip-clone".into(),
        ordered: false,
    };
    i.copies = None;
    i.copy_number = None;
    i.migration = None;
    i.action = "start";
    i.clone_instance = Some(&instance);
    assert_eq!(run(&i).await.rc, 0);
    let env = read(&envfile);
    for want in [
        "OCF_RESKEY_CRM_meta_clone=1\n",
        "OCF_RESKEY_CRM_meta_clone_max=2\n",
        "OCF_RESKEY_CRM_meta_clone_node_max=2\n",
        "OCF_RESKEY_CRM_meta_globally_unique=true\n",
    ] {
        assert!(env.contains(want), "{want} missing:\n{env}");
    }
}

#[tokio::test]
async fn a_hung_agent_is_killed_with_everything_it_forked() {
    let root = test_root();
    let dir = tempfile::tempdir().expect("dir");
    let pidfile = dir.path().join("pid");
    let params = p(&[("pidfile", &pidfile.display().to_string())]);
    let mut i = inv(&root, "Hang", "start", &params);
    i.timeout = Duration::from_millis(500);
    let started = Instant::now();
    let r = run(&i).await;
    assert_eq!(r.rc, rc::ERR_GENERIC);
    assert!(r.timed_out);
    assert_eq!(r.exit_reason, "timed out after 500ms");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "returned at the deadline, not later"
    );
    let child: i32 = std::fs::read_to_string(&pidfile)
        .expect("pid")
        .trim()
        .parse()
        .expect("pid");
    // The forked child was in the agent's process group and got SIGKILL too.
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(child) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !alive(child),
        "the agent's child {child} survived the timeout"
    );
}

#[tokio::test]
async fn a_daemon_holding_the_pipes_does_not_hold_the_result() {
    let root = test_root();
    let dir = tempfile::tempdir().expect("dir");
    let pidfile = dir.path().join("pid");
    let params = p(&[("pidfile", &pidfile.display().to_string())]);
    let started = Instant::now();
    let r = run(&inv(&root, "Daemonize", "start", &params)).await;
    let took = started.elapsed();
    let daemon: i32 = std::fs::read_to_string(&pidfile)
        .expect("pid")
        .trim()
        .parse()
        .expect("pid");
    let still_running = alive(daemon);
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon),
        nix::sys::signal::Signal::SIGKILL,
    );
    assert_eq!(r.rc, 0);
    assert_eq!(r.stdout, "started\n");
    assert!(
        took < Duration::from_secs(5),
        "waited {took:?} for pipes a daemon holds"
    );
    assert!(
        still_running,
        "a successful start leaves its daemon running"
    );
}

#[tokio::test]
async fn a_missing_agent_is_not_installed() {
    let root = test_root();
    let r = run(&inv(&root, "NoSuchAgent", "start", &[])).await;
    assert_eq!(r.rc, rc::ERR_INSTALLED);
    assert_eq!(r.status, rc::ExecStatus::NotInstalled);
    assert!(r.exit_reason.contains("NoSuchAgent"), "{}", r.exit_reason);
}

#[tokio::test]
async fn meta_data_of_our_agent() {
    let md = metadata(&test_root(), "warden-test", "ExitWith")
        .await
        .expect("meta-data");
    assert_eq!(md.name, "ExitWith");
    assert!(md.parameter("rc").is_some_and(|p| p.required));
}

#[tokio::test]
async fn debian_dummy_runs_a_full_cycle() {
    let root = Path::new(warden::exec::ocf::DEFAULT_OCF_ROOT);
    assert!(
        root.join("resource.d/heartbeat/Dummy").exists(),
        "ocf:heartbeat:Dummy is missing: install Debian's resource-agents (scripts/test.sh does)"
    );
    let dir = tempfile::tempdir().expect("dir");
    let state = dir.path().join("dummy.state").display().to_string();
    let params = p(&[("state", &state)]);
    let mut i = inv(root, "Dummy", "monitor", &params);
    i.provider = "heartbeat";
    let step = |action: &'static str| {
        let mut i = i.clone();
        i.action = action;
        async move { run(&i).await }
    };
    assert_eq!(step("monitor").await.rc, rc::NOT_RUNNING, "probe: stopped");
    assert_eq!(step("start").await.rc, rc::OK);
    assert_eq!(step("monitor").await.rc, rc::OK);
    assert_eq!(step("stop").await.rc, rc::OK);
    assert_eq!(step("monitor").await.rc, rc::NOT_RUNNING);
    let md = metadata(root, "heartbeat", "Dummy")
        .await
        .expect("meta-data");
    assert!(md.parameter("state").is_some());
}
