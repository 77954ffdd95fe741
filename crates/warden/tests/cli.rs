//! The `warden` command as operators run it: `check-config` and `simulate` stories, compared
//! with snapshots (`UPDATE_EXPECT=1 cargo test` rewrites them after a deliberate change).

use std::path::{Path, PathBuf};
use std::process::Command;

use expect_test::{Expect, expect};

const AT: &str = "2026-01-01T00:00:00Z";

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
}

/// Runs `warden` in `dir`; returns (exit success, stdout, stderr).
fn warden(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_warden"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run warden");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A working directory holding the example config as `c.toml` (plus `extra` appended).
fn workdir(extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let base = std::fs::read_to_string(example("two-nodes.toml")).expect("example");
    std::fs::write(dir.path().join("c.toml"), base + extra).expect("write config");
    dir
}

/// One step of a story: runs simulate with `args` and compares the text output.
fn story(dir: &Path, args: &[&str], want: Expect) {
    let mut full = vec!["simulate", "--config", "c.toml"];
    full.extend_from_slice(args);
    let (ok, out, err) = warden(dir, &full);
    assert!(ok, "simulate {args:?} failed: {err}");
    assert!(!out.contains("INVARIANT"), "{out}");
    want.assert_eq(&out);
}

const FENCING: &str =
    "\n[[fence_device]]\nname = \"power\"\ncommand = [\"/usr/local/sbin/fence-power\"]\n";

#[test]
fn story_monitor_fails_three_times_with_threshold_three() {
    let d = workdir("");
    let dir = d.path();
    story(
        dir,
        &[
            "--node-up",
            "node1",
            "--node-up",
            "node2",
            "--at",
            AT,
            "--save-state",
            "s0.json",
        ],
        expect![[r#"
        Transition Summary:
          * Start dummy ( node1 )

        Executing Cluster Transition:
          * dummy_monitor_0 on node1: rc=7 (not running)
          * dummy_monitor_0 on node2: rc=7 (not running)
          * dummy_start_0 on node1: rc=0 (ok)

        Revised Cluster Status (2026-01-01T00:00:00.000Z):
          * Online: [ node1 node2 ]
          * Resources:
            * dummy Started node1
    "#]],
    );
    story(
        dir,
        &[
            "--state",
            "s0.json",
            "--at",
            "+10s",
            "--inject",
            "dummy:monitor:10s@node1=7",
            "--save-state",
            "s1.json",
        ],
        expect![[r#"
            Transition Summary:
              * Recover dummy ( node1 )

            Executing Cluster Transition:
              * dummy_stop_0 on node1: rc=0 (ok)
              * dummy_start_0 on node1: rc=0 (ok)

            Revised Cluster Status (2026-01-01T00:00:10.000Z):
              * Online: [ node1 node2 ]
              * Resources:
                * dummy Started node1
              * Migration Summary:
                * node1: dummy: fail-count=1 migration-threshold=3 last-failure=2026-01-01T00:00:10.000Z expires=2026-01-01T00:01:10.000Z
              * Failed Resource Actions:
                * dummy_monitor_10000 on node1 'not running' (7): fail-count=1, at 2026-01-01T00:00:10.000Z

            Next wake-up: 2026-01-01T00:01:10.000Z (a failure expires)
        "#]],
    );
    story(
        dir,
        &[
            "--state",
            "s1.json",
            "--at",
            "+10s",
            "--inject",
            "dummy:monitor:10s@node1=1",
            "--save-state",
            "s2.json",
        ],
        expect![[r#"
            Transition Summary:
              * Recover dummy ( node1 )

            Executing Cluster Transition:
              * dummy_stop_0 on node1: rc=0 (ok)
              * dummy_start_0 on node1: rc=0 (ok)

            Revised Cluster Status (2026-01-01T00:00:20.000Z):
              * Online: [ node1 node2 ]
              * Resources:
                * dummy Started node1
              * Migration Summary:
                * node1: dummy: fail-count=2 migration-threshold=3 last-failure=2026-01-01T00:00:20.000Z expires=2026-01-01T00:01:20.000Z
              * Failed Resource Actions:
                * dummy_monitor_10000 on node1 'error' (1): fail-count=2, at 2026-01-01T00:00:20.000Z

            Next wake-up: 2026-01-01T00:01:20.000Z (a failure expires)
        "#]],
    );
    story(
        dir,
        &[
            "--state",
            "s2.json",
            "--at",
            "+10s",
            "--inject",
            "dummy:monitor:10s@node1=timeout",
            "--save-state",
            "s3.json",
        ],
        expect![[r#"
            Transition Summary:
              * Recover dummy ( node1 -> node2 )

            Executing Cluster Transition:
              * dummy_stop_0 on node1: rc=0 (ok)
              * dummy_start_0 on node2: rc=0 (ok)

            Revised Cluster Status (2026-01-01T00:00:30.000Z):
              * Online: [ node1 node2 ]
              * Resources:
                * dummy Started node2
              * Migration Summary:
                * node1: dummy: fail-count=3 migration-threshold=3 last-failure=2026-01-01T00:00:30.000Z expires=2026-01-01T00:01:30.000Z
              * Failed Resource Actions:
                * dummy_monitor_10000 on node1 'error' (1): fail-count=3, at 2026-01-01T00:00:30.000Z, exit-reason='timed out'

            Next wake-up: 2026-01-01T00:01:30.000Z (a failure expires)
        "#]],
    );
}

#[test]
fn story_start_fails() {
    let d = workdir("");
    let dir = d.path();
    story(
        dir,
        &[
            "--at",
            AT,
            "--fail",
            "dummy:start@node1=1",
            "--save-state",
            "s1.json",
        ],
        expect![[r#"
            Transition Summary:
              * Start dummy ( node1 )

            Executing Cluster Transition:
              * dummy_monitor_0 on node1: rc=7 (not running)
              * dummy_monitor_0 on node2: rc=7 (not running)
              * dummy_start_0 on node1: rc=1 (error), unexpected

            Revised Cluster Status (2026-01-01T00:00:00.000Z):
              * Online: [ node1 node2 ]
              * Resources:
                * dummy FAILED node1
              * Migration Summary:
                * node1: dummy: fail-count=INFINITY migration-threshold=3 last-failure=2026-01-01T00:00:00.000Z expires=2026-01-01T00:01:00.000Z
              * Failed Resource Actions:
                * dummy_start_0 on node1 'error' (1): fail-count=INFINITY, at 2026-01-01T00:00:00.000Z

            Next wake-up: 2026-01-01T00:01:00.000Z (a failure expires)
        "#]],
    );
    story(
        dir,
        &["--state", "s1.json", "--at", "+1s"],
        expect![[r#"
            Transition Summary:
              * Recover dummy ( node1 -> node2 )

            Executing Cluster Transition:
              * dummy_stop_0 on node1: rc=0 (ok)
              * dummy_start_0 on node2: rc=0 (ok)

            Revised Cluster Status (2026-01-01T00:00:01.000Z):
              * Online: [ node1 node2 ]
              * Resources:
                * dummy Started node2
              * Migration Summary:
                * node1: dummy: fail-count=INFINITY migration-threshold=3 last-failure=2026-01-01T00:00:00.000Z expires=2026-01-01T00:01:00.000Z
              * Failed Resource Actions:
                * dummy_start_0 on node1 'error' (1): fail-count=INFINITY, at 2026-01-01T00:00:00.000Z

            Next wake-up: 2026-01-01T00:01:00.000Z (a failure expires)
        "#]],
    );
}

#[test]
fn story_stop_fails_without_fencing() {
    let d = workdir("");
    let dir = d.path();
    story(
        dir,
        &["--at", AT, "--save-state", "s0.json"],
        expect![[r#"
        Transition Summary:
          * Start dummy ( node1 )

        Executing Cluster Transition:
          * dummy_monitor_0 on node1: rc=7 (not running)
          * dummy_monitor_0 on node2: rc=7 (not running)
          * dummy_start_0 on node1: rc=0 (ok)

        Revised Cluster Status (2026-01-01T00:00:00.000Z):
          * Online: [ node1 node2 ]
          * Resources:
            * dummy Started node1
    "#]],
    );
    story(
        dir,
        &[
            "--state",
            "s0.json",
            "--inject",
            "dummy:monitor:10s@node1=1",
            "--fail",
            "dummy:stop@node1=1",
            "--save-state",
            "s1.json",
        ],
        expect![[r#"
            Transition Summary:
              * Recover dummy ( node1 )

            Executing Cluster Transition:
              * dummy_stop_0 on node1: rc=1 (error), unexpected
              * dummy_start_0 on node1: skipped: a prerequisite failed

            Revised Cluster Status (2026-01-01T00:00:00.000Z):
              * Online: [ node1 node2 ]
              * Resources:
                * dummy FAILED node1 (blocked)
              * Migration Summary:
                * node1: dummy: fail-count=INFINITY migration-threshold=3 last-failure=2026-01-01T00:00:00.000Z
              * Failed Resource Actions:
                * dummy_stop_0 on node1 'error' (1): fail-count=INFINITY, at 2026-01-01T00:00:00.000Z
                * dummy_monitor_10000 on node1 'error' (1): fail-count=1, at 2026-01-01T00:00:00.000Z
        "#]],
    );
    story(
        dir,
        &["--state", "s1.json", "--at", "+1h"],
        expect![[r#"
            Transition Summary:
              (nothing to do)

            Revised Cluster Status (2026-01-01T01:00:00.000Z):
              * Online: [ node1 node2 ]
              * Resources:
                * dummy FAILED node1 (blocked)
              * Migration Summary:
                * node1: dummy: fail-count=INFINITY migration-threshold=3 last-failure=2026-01-01T00:00:00.000Z
              * Failed Resource Actions:
                * dummy_stop_0 on node1 'error' (1): fail-count=INFINITY, at 2026-01-01T00:00:00.000Z
                * dummy_monitor_10000 on node1 'error' (1): fail-count=1, at 2026-01-01T00:00:00.000Z
        "#]],
    );
    // Cleanup: the probe finds it still running (its stop failed) and it is adopted there.
    story(
        dir,
        &["--state", "s1.json", "--cleanup", "dummy"],
        expect![[r#"
            Transition Summary:
              * Start dummy ( node1 )

            Executing Cluster Transition:
              * dummy_monitor_0 on node1: rc=0 (ok), unexpected
              * dummy_monitor_0 on node2: rc=7 (not running)
              * dummy_start_0 on node1: skipped: a prerequisite failed

            Revised Cluster Status (2026-01-01T00:00:00.000Z):
              * Online: [ node1 node2 ]
              * Resources:
                * dummy Started node1
        "#]],
    );
}

#[test]
fn story_stop_fails_with_fencing() {
    let d = workdir(FENCING);
    let dir = d.path();
    story(
        dir,
        &[
            "--at",
            AT,
            "--save-state",
            "s0.json",
            "--inject",
            "dummy:monitor:0@node1=7",
        ],
        expect![[r#"
        Transition Summary:
          * Start dummy ( node1 )

        Executing Cluster Transition:
          * dummy_monitor_0 on node2: rc=7 (not running)
          * dummy_start_0 on node1: rc=0 (ok)

        Revised Cluster Status (2026-01-01T00:00:00.000Z):
          * Online: [ node1 node2 ]
          * Resources:
            * dummy Started node1
    "#]],
    );
    story(
        dir,
        &[
            "--state",
            "s0.json",
            "--inject",
            "dummy:monitor:10s@node1=1",
            "--fail",
            "dummy:stop@node1=1",
            "--save-state",
            "s1.json",
        ],
        expect![[r#"
            Transition Summary:
              * Recover dummy ( node1 )

            Executing Cluster Transition:
              * dummy_stop_0 on node1: rc=1 (error), unexpected
              * dummy_start_0 on node1: skipped: a prerequisite failed

            Revised Cluster Status (2026-01-01T00:00:00.000Z):
              * Online: [ node2 ]
              * UNCLEAN: [ node1 ]
              * Resources:
                * dummy FAILED node1 (UNCLEAN)
              * Migration Summary:
                * node1: dummy: fail-count=INFINITY migration-threshold=3 last-failure=2026-01-01T00:00:00.000Z expires=2026-01-01T00:01:00.000Z
              * Failed Resource Actions:
                * dummy_stop_0 on node1 'error' (1): fail-count=INFINITY, at 2026-01-01T00:00:00.000Z
                * dummy_monitor_10000 on node1 'error' (1): fail-count=1, at 2026-01-01T00:00:00.000Z

            Next wake-up: 2026-01-01T00:01:00.000Z (a failure expires)
        "#]],
    );
    story(
        dir,
        &["--state", "s1.json", "--at", "+1s"],
        expect![[r#"
            Transition Summary:
              * Fence (reboot) node1 'dummy failed there'
              * Recover dummy ( node1 -> node2 )

            Executing Cluster Transition:
              * fence (reboot) node1: ok
              * dummy_start_0 on node2: rc=0 (ok)

            Revised Cluster Status (2026-01-01T00:00:01.000Z):
              * Online: [ node2 ]
              * OFFLINE: [ node1 ]
              * Resources:
                * dummy Started node2
              * Migration Summary:
                * node1: dummy: fail-count=INFINITY migration-threshold=3 last-failure=2026-01-01T00:00:00.000Z expires=2026-01-01T00:01:00.000Z
              * Failed Resource Actions:
                * dummy_stop_0 on node1 'error' (1): fail-count=INFINITY, at 2026-01-01T00:00:00.000Z
                * dummy_monitor_10000 on node1 'error' (1): fail-count=1, at 2026-01-01T00:00:00.000Z

            Next wake-up: 2026-01-01T00:01:00.000Z (a failure expires)
        "#]],
    );
}

#[test]
fn story_failure_timeout_expiry_without_and_with_stickiness() {
    for (stickiness, want) in [
        (
            "0",
            expect![[r#"
            Transition Summary:
              * Move dummy ( node2 -> node1 )

            Executing Cluster Transition:
              * dummy_stop_0 on node2: rc=0 (ok)
              * dummy_start_0 on node1: rc=0 (ok)

            Revised Cluster Status (2026-01-01T00:01:00.000Z):
              * Online: [ node1 node2 ]
              * Resources:
                * dummy Started node1
        "#]],
        ),
        (
            "200",
            expect![[r#"
            Transition Summary:
              (nothing to do)

            Revised Cluster Status (2026-01-01T00:01:00.000Z):
              * Online: [ node1 node2 ]
              * Resources:
                * dummy Started node2
        "#]],
        ),
    ] {
        let d = workdir(&format!(
            "\n[resource_defaults]\nresource_stickiness = {stickiness}\n"
        ));
        let dir = d.path();
        // resource_defaults is overridden by the resource's own meta, so patch the example's.
        let text = std::fs::read_to_string(dir.join("c.toml")).expect("config");
        let text = text.replace(
            "migration_threshold = 3,",
            &format!("migration_threshold = 1, resource_stickiness = {stickiness},"),
        );
        std::fs::write(dir.join("c.toml"), text).expect("write");
        let (ok, _, err) = warden(
            dir,
            &[
                "simulate",
                "-c",
                "c.toml",
                "--at",
                AT,
                "--save-state",
                "s0.json",
            ],
        );
        assert!(ok, "{err}");
        let (ok, out, err) = warden(
            dir,
            &[
                "simulate",
                "-c",
                "c.toml",
                "--state",
                "s0.json",
                "--inject",
                "dummy:monitor:10s@node1=1",
                "--save-state",
                "s1.json",
            ],
        );
        assert!(ok, "{err}");
        assert!(out.contains("Recover dummy ( node1 -> node2 )"), "{out}");
        // One millisecond before expiry nothing happens; at expiry, it depends on stickiness.
        let (ok, out, err) = warden(
            dir,
            &[
                "simulate", "-c", "c.toml", "--state", "s1.json", "--at", "+59999ms",
            ],
        );
        assert!(ok, "{err}");
        assert!(out.contains("(nothing to do)"), "{out}");
        story(dir, &["--state", "s1.json", "--at", "+60s"], want);
    }
}

#[test]
fn simulate_json_and_scores() {
    let d = workdir("");
    let (ok, out, err) = warden(
        d.path(),
        &["simulate", "-c", "c.toml", "--at", AT, "--json", "--scores"],
    );
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["summary"], serde_json::json!(["Start dummy ( node1 )"]));
    assert_eq!(v["resources"][0]["status"], "dummy Started node1");
    assert_eq!(
        v["scores"][0],
        serde_json::json!({"resource": "dummy", "node": "node1", "score": "100", "kind": "allocation"})
    );
    assert_eq!(v["scores"][1]["score"], "0");
    assert_eq!(v["actions"].as_array().map(Vec::len), Some(3));
    let (ok, out, _) = warden(
        d.path(),
        &["simulate", "-c", "c.toml", "--at", AT, "--scores"],
    );
    assert!(ok);
    assert!(out.starts_with("Allocation scores:\n  dummy allocation score on node1: 100\n  dummy allocation score on node2: 0\n"), "{out}");
}

#[test]
fn simulate_rejects_bad_arguments_clearly() {
    let d = workdir("");
    let rows = [
        (
            &["--inject", "dummy:monitor@node1=7"][..],
            "say monitor:0 for a probe or monitor:INTERVAL",
        ),
        (
            &["--inject", "dummy:monitor:15s@node1=7"][..],
            "has no recurring monitor every 15s (configured: 10s)",
        ),
        (
            &["--inject", "nope:start@node1=1"][..],
            "unknown resource \"nope\"",
        ),
        (
            &["--inject", "dummy:start@node9=1"][..],
            "unknown node \"node9\"",
        ),
        (
            &["--inject", "dummy:start@node1=x"][..],
            "RC must be a number or `timeout`",
        ),
        (
            &["--inject", "garbage"][..],
            "expected RES:OP[:INTERVAL]@NODE=RC",
        ),
        (&["--at", "yesterday"][..], "bad time \"yesterday\""),
        (
            &["--at", "+99999999h"][..],
            "too long (at most 3650d, ten years)",
        ),
        (&["--state", "missing.json"][..], "cannot read missing.json"),
    ];
    for (args, want) in rows {
        let mut full = vec!["simulate", "-c", "c.toml"];
        full.extend_from_slice(args);
        let (ok, _, err) = warden(d.path(), &full);
        assert!(!ok, "{args:?} should fail");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

#[test]
fn check_config_accepts_the_example() {
    // Two nodes without etcd: a file for `simulate`, which `run` refuses; check-config says so
    // unless asked to check it for simulate.
    let (ok, out, err) = warden(&example(""), &["check-config", "two-nodes.toml"]);
    assert!(!ok, "{out}");
    assert!(
        err.starts_with("two-nodes.toml:10:8: error: a second [[node]] without [cluster.etcd]"),
        "{err}"
    );
    let (ok, out, err) = warden(
        &example(""),
        &["check-config", "--simulate", "two-nodes.toml"],
    );
    assert!(ok, "{err}");
    assert!(
        out.starts_with("two-nodes.toml: ok (2 node(s), 1 resource(s), 1 constraint(s)"),
        "{out}"
    );
}

#[test]
fn check_config_reports_every_problem_with_its_place() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(
        dir.path().join("bad.toml"),
        r#"[cluster]
nmae = "x"
no_quorum_policy = "stopp"

[[node]]
name = "node1"

[[resource]]
id = "dummy"
class = "ocf"
type = "Dummy"
meta = { migration-threshold = 3, failure_timeout = "60" }
ops = [
  { name = "monitor", interval = "10s", on_fail = "demote" },
  { name = "monitor", interval = "10s" },
  { name = "stop", on_fail = "restart" },
  { name = "start", interval = "5s", timeout = 20, on_fail = "fence" },
]

[[location]]
resource = "dumy"
node = "node3"
score = "lots"
"#,
    )
    .expect("write");
    let (ok, out, err) = warden(dir.path(), &["check-config", "bad.toml"]);
    assert!(!ok);
    assert_eq!(out, "");
    expect![[r#"
        bad.toml:2:1: error: unknown key `nmae` in [cluster]; did you mean `name`? (allowed: name, data_dir, start_failure_is_fatal, no_quorum_policy, symmetric, placement_strategy, shutdown_lock, shutdown_lock_limit, node_health_strategy, node_health_base, node_health_green, node_health_yellow, node_health_red, etcd)
        bad.toml:3:20: error: unknown value "stopp"; did you mean "stop"? (allowed: stop, freeze, ignore, demote)
        bad.toml:12:10: error: unknown key `migration-threshold` in meta; did you mean `migration_threshold`? (allowed: migration_threshold, failure_timeout, resource_stickiness, target_role, is_managed, maintenance, multiple_active, priority, crash_loop_window, crash_loop_delay_max, allow_migrate, allow_unhealthy_nodes, requires)
        bad.toml:12:53: error: bad duration "60": add a unit (ms, s, m, h or d), like "60s"
        bad.toml:14:51: error: on_fail = "demote" is not valid for a monitor operation (allowed: ignore, block, stop, restart, fence, standby)
        bad.toml:15:3: error: duplicate operation monitor with interval 10s (first at line 14); (name, interval) must be unique
        bad.toml:16:30: error: on_fail = "restart" is not valid for a stop operation (allowed: ignore, block, fence)
        bad.toml:17:32: error: only monitor operations recur; start takes no interval
        bad.toml:17:48: error: durations are strings with a unit, like "20s"
        bad.toml:17:62: error: on_fail = "fence" needs fencing: add a [[fence_device]]
        bad.toml:21:12: error: unknown resource "dumy"; did you mean "dummy"?
        bad.toml:22:8: error: unknown node "node3"; did you mean "node1"?
        bad.toml:23:9: error: bad score "lots": an integer, "INFINITY" or "-INFINITY"
    "#]]
    .assert_eq(&err);
    // The same as JSON, for scripts and editors: every error with its place, exit code 1.
    let (ok, out, _) = warden(dir.path(), &["check-config", "--json", "bad.toml"]);
    assert!(!ok);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["ok"], false);
    assert_eq!(v["summary"], serde_json::Value::Null);
    let errors = v["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 13);
    assert_eq!(
        errors[0],
        serde_json::json!({ "line": 2, "col": 1, "message": "unknown key `nmae` in [cluster]; did you mean `name`? (allowed: name, data_dir, start_failure_is_fatal, no_quorum_policy, symmetric, placement_strategy, shutdown_lock, shutdown_lock_limit, node_health_strategy, node_health_base, node_health_green, node_health_yellow, node_health_red, etcd)" })
    );
    let (ok, out, err) = warden(
        &example(""),
        &["check-config", "--json", "--simulate", "two-nodes.toml"],
    );
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(
        (v["ok"].as_bool(), v["errors"].as_array().map(Vec::len)),
        (Some(true), Some(0))
    );
    assert!(
        v["summary"]
            .as_str()
            .is_some_and(|s| s.starts_with("two-nodes.toml: ok (2 node(s)")),
        "{v}"
    );
}

#[test]
fn check_config_reports_syntax_errors_and_missing_files() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(
        dir.path().join("syn.toml"),
        "[[node]]\nname = \"n1\"\nx = [1,\n",
    )
    .expect("write");
    let (ok, _, err) = warden(dir.path(), &["check-config", "syn.toml"]);
    assert!(!ok);
    assert!(err.lines().all(|l| l.starts_with("syn.toml:")), "{err}");
    assert!(err.contains("syn.toml:3:"), "{err}");
    let (ok, _, err) = warden(dir.path(), &["check-config", "nope.toml"]);
    assert!(!ok);
    assert!(err.contains("cannot read nope.toml"), "{err}");
}

fn test_ocf_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ocf")
}

#[test]
fn agent_list_and_info() {
    let root = test_ocf_root();
    let root_s = root.display().to_string();
    let dir = tempfile::tempdir().expect("dir");
    let (ok, out, err) = warden(dir.path(), &["agent", "--ocf-root", &root_s, "list"]);
    assert!(ok, "{err}");
    assert_eq!(
        out,
        "ocf:warden-test:Chaos\nocf:warden-test:Daemonize\nocf:warden-test:ExitWith\nocf:warden-test:Hang\nocf:warden-test:Marker\nocf:warden-test:Reloadable\nocf:warden-test:SlowStart\nocf:warden-test:Stateful\nocf:warden-test:StopHangs\n"
    );
    let (ok, json, err) = warden(
        dir.path(),
        &["agent", "--ocf-root", &root_s, "list", "--json"],
    );
    assert!(ok, "{err}");
    let names: Vec<String> = serde_json::from_str(&json).expect("json");
    assert_eq!(names.join("\n") + "\n", out);
    let (ok, out, err) = warden(
        dir.path(),
        &[
            "agent",
            "info",
            "ocf:warden-test:ExitWith",
            "--ocf-root",
            &root_s,
        ],
    );
    assert!(ok, "{err}");
    expect![[r#"
        ocf:warden-test:ExitWith (version 1.0): Exits with a chosen code

        Parameters (* required):
          *rc       integer   Exit code
           envfile  string   default ""  Where to write the environment
           reason   string   default ""  Exit reason to print

        Actions:
          start      timeout 20s
          stop       timeout 20s
          monitor    timeout 20s interval 10s
          meta-data  timeout 5s
    "#]]
    .assert_eq(&out);
    let (ok, _, err) = warden(
        dir.path(),
        &[
            "agent",
            "info",
            "ocf:warden-test:Nope",
            "--ocf-root",
            &root_s,
        ],
    );
    assert!(!ok);
    assert!(
        err.contains("meta-data failed with rc 5 (not installed)"),
        "{err}"
    );
    // A bare type resolves when one provider has it; a typo gets a guess.
    let (ok, out, err) = warden(
        dir.path(),
        &["agent", "info", "ExitWith", "--ocf-root", &root_s],
    );
    assert!(ok, "{err}");
    assert!(
        out.starts_with("ocf:warden-test:ExitWith (version 1.0)"),
        "{out}"
    );
    let (ok, _, err) = warden(
        dir.path(),
        &["agent", "info", "Markr", "--ocf-root", &root_s],
    );
    assert!(!ok);
    assert!(
        err.contains("no agent named \"Markr\"") && err.contains("did you mean \"Marker\"?"),
        "{err}"
    );
    let (ok, _, err) = warden(dir.path(), &["agent", "info", "a:b:c:d"]);
    assert!(!ok);
    assert!(err.contains("expected ocf:PROVIDER:TYPE"), "{err}");
}

#[test]
fn check_config_checks_parameters_against_the_agent() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(
        dir.path().join("c.toml"),
        r#"[[node]]
name = "n1"

[[resource]]
id = "a"
class = "ocf"
provider = "warden-test"
type = "ExitWith"
params = { rc = 0, rasons = "x" }

[[resource]]
id = "b"
class = "ocf"
provider = "warden-test"
type = "ExitWith"

[[resource]]
id = "c"
class = "ocf"
provider = "elsewhere"
type = "Thing"
"#,
    )
    .expect("write");
    let root = test_ocf_root().display().to_string();
    let (ok, out, err) = warden(dir.path(), &["check-config", "c.toml", "--ocf-root", &root]);
    assert!(!ok, "{out}");
    expect![[r#"
        c.toml:9:20: error: ocf:warden-test:ExitWith has no parameter `rasons`; did you mean `reason`? (its parameters: rc, envfile, reason)
        c.toml:12:6: error: resource "b" needs parameter `rc` (Exit code): ocf:warden-test:ExitWith requires it
        c.toml:21:8: error: no provider "elsewhere" in ROOT/resource.d (providers: warden-test)
    "#]]
    .assert_eq(&err.replace(&root, "ROOT"));
}

#[test]
fn story_a_group_member_fails() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    std::fs::copy(example("group.toml"), d.join("c.toml")).expect("copy");
    story(
        d,
        &["--at", AT, "--save-state", "s0.json"],
        expect![[r#"
        Transition Summary:
          * Start ip ( node1 )
          * Start db ( node1 )
          * Start app ( node1 )
          * Start backup ( node1 )

        Executing Cluster Transition:
          * ip_monitor_0 on node1: rc=7 (not running)
          * ip_monitor_0 on node2: rc=7 (not running)
          * db_monitor_0 on node1: rc=7 (not running)
          * db_monitor_0 on node2: rc=7 (not running)
          * app_monitor_0 on node1: rc=7 (not running)
          * app_monitor_0 on node2: rc=7 (not running)
          * backup_monitor_0 on node1: rc=7 (not running)
          * backup_monitor_0 on node2: rc=7 (not running)
          * ip_start_0 on node1: rc=0 (ok)
          * db_start_0 on node1: rc=0 (ok)
          * app_start_0 on node1: rc=0 (ok)
          * backup_start_0 on node1: rc=0 (ok)

        Revised Cluster Status (2026-01-01T00:00:00.000Z):
          * Online: [ node1 node2 ]
          * Resources:
            * ip Started node1
            * db Started node1
            * app Started node1
            * backup Started node1
    "#]],
    );
    // db fails: it recovers, and app (after it in the group) and backup (ordered after it)
    // restart after it; ip is untouched.
    story(
        d,
        &[
            "--state",
            "s0.json",
            "--at",
            "+10s",
            "--inject",
            "db:monitor:10s@node1=1",
            "--save-state",
            "s1.json",
        ],
        expect![[r#"
        Transition Summary:
          * Recover db ( node1 )
          * Restart app ( node1 ) due to required db start
          * Restart backup ( node1 ) due to required db start

        Executing Cluster Transition:
          * backup_stop_0 on node1: rc=0 (ok)
          * app_stop_0 on node1: rc=0 (ok)
          * db_stop_0 on node1: rc=0 (ok)
          * db_start_0 on node1: rc=0 (ok)
          * app_start_0 on node1: rc=0 (ok)
          * backup_start_0 on node1: rc=0 (ok)

        Revised Cluster Status (2026-01-01T00:00:10.000Z):
          * Online: [ node1 node2 ]
          * Resources:
            * ip Started node1
            * db Started node1
            * app Started node1
            * backup Started node1
          * Migration Summary:
            * node1: db: fail-count=1 migration-threshold=2 last-failure=2026-01-01T00:00:10.000Z
          * Failed Resource Actions:
            * db_monitor_10000 on node1 'error' (1): fail-count=1, at 2026-01-01T00:00:10.000Z
    "#]],
    );
}

#[test]
fn check_config_reports_constraint_problems() {
    let dir = tempfile::tempdir().expect("dir");
    let base = std::fs::read_to_string(example("group.toml")).expect("example");
    let cases = [
        (
            "[[order]]\nfirst = \"backup\"\nthen = \"db\"\n",
            "orders of db, backup form a cycle",
        ),
        (
            "[[colocation]]\nresource = \"db\"\nwith = \"db\"\n",
            "db cannot be colocated with itself",
        ),
        (
            "[[order]]\nfirst = \"db\"\nthen = \"app\"\nkind = \"sometimes\"\n",
            "unknown value \"sometimes\" (allowed: mandatory, optional, serialize)",
        ),
        (
            "[[group]]\nid = \"g2\"\nresources = [\"app\", \"nope\"]\n",
            "unknown resource \"nope\"",
        ),
    ];
    for (extra, want) in cases {
        std::fs::write(dir.path().join("c.toml"), format!("{base}\n{extra}")).expect("write");
        let (ok, _, err) = warden(dir.path(), &["check-config", "c.toml"]);
        assert!(!ok, "{extra}");
        assert!(err.contains(want), "{extra}: {err}");
        assert!(err.starts_with("c.toml:"), "{err}");
    }
}

#[test]
fn story_promotable_three_nodes_primary_node_lost() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    std::fs::copy(example("promotable.toml"), d.join("c.toml")).expect("copy");
    story(
        d,
        &["--at", AT, "--save-state", "s0.json"],
        expect![[r#"
            Transition Summary:
              * Promote db ( Stopped -> Promoted node1 )
              * Start db ( node2 )
              * Start db ( node3 )
              * Start vip ( node1 )
              * Start app ( node1 )

            Executing Cluster Transition:
              * db_monitor_0 on node1: rc=7 (not running)
              * db_monitor_0 on node2: rc=7 (not running)
              * db_monitor_0 on node3: rc=7 (not running)
              * vip_monitor_0 on node1: rc=7 (not running)
              * vip_monitor_0 on node2: rc=7 (not running)
              * vip_monitor_0 on node3: rc=7 (not running)
              * app_monitor_0 on node1: rc=7 (not running)
              * app_monitor_0 on node2: rc=7 (not running)
              * app_monitor_0 on node3: rc=7 (not running)
              * db_start_0 on node1: rc=0 (ok)
              * db_start_0 on node2: rc=0 (ok)
              * db_start_0 on node3: rc=0 (ok)
              * db_promote_0 on node1: rc=0 (ok)
              * vip_start_0 on node1: rc=0 (ok)
              * app_start_0 on node1: rc=0 (ok)

            Revised Cluster Status (2026-01-01T00:00:00.000Z):
              * Online: [ node1 node2 node3 ]
              * Resources:
                * db Promoted [ node1 ] Unpromoted [ node2 node3 ]
                * vip Started node1
                * app Started node1
        "#]],
    );
    // node1, the primary's node, is lost and cannot be fenced: nothing is promoted elsewhere.
    story(
        d,
        &[
            "--state",
            "s0.json",
            "--at",
            "+1m",
            "--node-fail",
            "node1",
            "--fail",
            "fence@node1",
            "--save-state",
            "s1.json",
        ],
        expect![[r#"
            Transition Summary:
              * Fence (reboot) node1 'peer is no longer part of the cluster'
              * Stop db ( Promoted node1 ) due to node availability
              * Promote db ( Unpromoted -> Promoted node2 )
              * Move vip ( node1 -> node2 )
              * Move app ( node1 -> node2 )

            Executing Cluster Transition:
              * fence (reboot) node1: failed
              * db_promote_0 on node2: skipped: a prerequisite failed
              * vip_start_0 on node2: skipped: a prerequisite failed
              * app_start_0 on node2: skipped: a prerequisite failed

            Revised Cluster Status (2026-01-01T00:01:00.000Z):
              * Online: [ node2 node3 ]
              * UNCLEAN: [ node1 ]
              * Resources:
                * db Promoted [ node1 ] Unpromoted [ node2 node3 ] (UNCLEAN)
                * vip Started node1 (UNCLEAN)
                * app Started node1 (UNCLEAN)
        "#]],
    );
    // The fence succeeds: node2 is promoted, and the address and the application follow.
    story(
        d,
        &[
            "--state",
            "s1.json",
            "--at",
            "+10s",
            "--save-state",
            "s2.json",
        ],
        expect![[r#"
            Transition Summary:
              * Fence (reboot) node1 'peer is no longer part of the cluster'
              * Stop db ( Promoted node1 ) due to node availability
              * Promote db ( Unpromoted -> Promoted node2 )
              * Move vip ( node1 -> node2 )
              * Move app ( node1 -> node2 )

            Executing Cluster Transition:
              * fence (reboot) node1: ok
              * db_promote_0 on node2: rc=0 (ok)
              * vip_start_0 on node2: rc=0 (ok)
              * app_start_0 on node2: rc=0 (ok)

            Revised Cluster Status (2026-01-01T00:01:10.000Z):
              * Online: [ node2 node3 ]
              * OFFLINE: [ node1 ]
              * Resources:
                * db Promoted [ node2 ] Unpromoted [ node3 ]
                * vip Started node2
                * app Started node2
        "#]],
    );
    // node1 comes back: a copy starts there and, preferred by its location, takes the
    // promotion back after node2's copy is demoted.
    story(
        d,
        &[
            "--state",
            "s2.json",
            "--at",
            "+10m",
            "--node-up",
            "node1",
            "--scores",
        ],
        expect![[r#"
            Allocation scores:
              db allocation score on node1: 0
              db allocation score on node2: 1
              db allocation score on node3: 1
              db promotion score on node1: 105
              db promotion score on node2: 6
              db promotion score on node3: 5
              vip allocation score on node1: 0
              vip allocation score on node2: -INFINITY
              vip allocation score on node3: -INFINITY
              app allocation score on node1: 0
              app allocation score on node2: -INFINITY
              app allocation score on node3: -INFINITY

            Transition Summary:
              * Promote db ( Stopped -> Promoted node1 )
              * Demote db ( Promoted -> Unpromoted node2 )
              * Move vip ( node2 -> node1 )
              * Move app ( node2 -> node1 )

            Executing Cluster Transition:
              * db_monitor_0 on node1: rc=7 (not running)
              * vip_monitor_0 on node1: rc=7 (not running)
              * app_monitor_0 on node1: rc=7 (not running)
              * app_stop_0 on node2: rc=0 (ok)
              * vip_stop_0 on node2: rc=0 (ok)
              * db_demote_0 on node2: rc=0 (ok)
              * db_start_0 on node1: rc=0 (ok)
              * db_promote_0 on node1: rc=0 (ok)
              * vip_start_0 on node1: rc=0 (ok)
              * app_start_0 on node1: rc=0 (ok)

            Revised Cluster Status (2026-01-01T00:11:10.000Z):
              * Online: [ node1 node2 node3 ]
              * Resources:
                * db Promoted [ node1 ] Unpromoted [ node2 node3 ]
                * vip Started node1
                * app Started node1
        "#]],
    );
}

#[test]
fn story_promotable_two_nodes_failed_primary() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    let two = std::fs::read_to_string(example("promotable.toml"))
        .expect("example")
        .replace("[[node]]\nname = \"node3\"\n", "");
    std::fs::write(d.join("c.toml"), two).expect("config");
    story(
        d,
        &["--at", AT, "--save-state", "s0.json"],
        expect![[r#"
            Transition Summary:
              * Promote db ( Stopped -> Promoted node1 )
              * Start db ( node2 )
              * Start vip ( node1 )
              * Start app ( node1 )

            Executing Cluster Transition:
              * db_monitor_0 on node1: rc=7 (not running)
              * db_monitor_0 on node2: rc=7 (not running)
              * vip_monitor_0 on node1: rc=7 (not running)
              * vip_monitor_0 on node2: rc=7 (not running)
              * app_monitor_0 on node1: rc=7 (not running)
              * app_monitor_0 on node2: rc=7 (not running)
              * db_start_0 on node1: rc=0 (ok)
              * db_start_0 on node2: rc=0 (ok)
              * db_promote_0 on node1: rc=0 (ok)
              * vip_start_0 on node1: rc=0 (ok)
              * app_start_0 on node1: rc=0 (ok)

            Revised Cluster Status (2026-01-01T00:00:00.000Z):
              * Online: [ node1 node2 ]
              * Resources:
                * db Promoted [ node1 ] Unpromoted [ node2 ]
                * vip Started node1
                * app Started node1
        "#]],
    );
    // The primary fails (rc 9) with migration_threshold 1: the backup is promoted after the
    // failed copy is demoted and stopped; the address and the application move with it.
    story(
        d,
        &[
            "--state",
            "s0.json",
            "--at",
            "+10s",
            "--inject",
            "db:monitor:9s@node1=9",
            "--save-state",
            "s1.json",
        ],
        expect![[r#"
            Transition Summary:
              * Stop db ( Promoted node1 ) due to node availability
              * Promote db ( Unpromoted -> Promoted node2 )
              * Move vip ( node1 -> node2 )
              * Move app ( node1 -> node2 )

            Executing Cluster Transition:
              * app_stop_0 on node1: rc=0 (ok)
              * vip_stop_0 on node1: rc=0 (ok)
              * db_demote_0 on node1: rc=0 (ok)
              * db_stop_0 on node1: rc=0 (ok)
              * db_promote_0 on node2: rc=0 (ok)
              * vip_start_0 on node2: rc=0 (ok)
              * app_start_0 on node2: rc=0 (ok)

            Revised Cluster Status (2026-01-01T00:00:10.000Z):
              * Online: [ node1 node2 ]
              * Resources:
                * db Promoted [ node2 ]
                * vip Started node2
                * app Started node2
              * Migration Summary:
                * node1: db: fail-count=1 migration-threshold=1 last-failure=2026-01-01T00:00:10.000Z
              * Failed Resource Actions:
                * db_monitor_9000 on node1 'promoted (failed)' (9): fail-count=1, at 2026-01-01T00:00:10.000Z
        "#]],
    );
    // Cleanup of node1: a copy starts there again and, preferred by its location, takes the
    // promotion back once node2's copy is demoted.
    story(
        d,
        &[
            "--state",
            "s1.json",
            "--at",
            "+1m",
            "--cleanup",
            "db@node1",
            "--save-state",
            "s2.json",
        ],
        expect![[r#"
            Transition Summary:
              * Promote db ( Stopped -> Promoted node1 )
              * Demote db ( Promoted -> Unpromoted node2 )
              * Move vip ( node2 -> node1 )
              * Move app ( node2 -> node1 )

            Executing Cluster Transition:
              * db_monitor_0 on node1: rc=7 (not running)
              * app_stop_0 on node2: rc=0 (ok)
              * vip_stop_0 on node2: rc=0 (ok)
              * db_demote_0 on node2: rc=0 (ok)
              * db_start_0 on node1: rc=0 (ok)
              * db_promote_0 on node1: rc=0 (ok)
              * vip_start_0 on node1: rc=0 (ok)
              * app_start_0 on node1: rc=0 (ok)

            Revised Cluster Status (2026-01-01T00:01:10.000Z):
              * Online: [ node1 node2 ]
              * Resources:
                * db Promoted [ node1 ] Unpromoted [ node2 ]
                * vip Started node1
                * app Started node1
        "#]],
    );
}

#[test]
fn check_config_first_errors_are_friendly() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(
        dir.path().join("c.toml"),
        r#"[[resource]]
id = "a"
class = "ocf"
provider = "warden-test"
type = "Markr"

[[resource]]
id = "p"
class = "process"
command = ["no-such-program-here", "-x"]
user = "no-such-user-here"
ops = [{ name = "monitor", interval = "0.5s" }]

[[resource]]
id = "q"
class = "process"
command = ["/bin/true"]
stop_signal = "STOP"

[[order]]
first = "q"
then = "a"
"#,
    )
    .expect("write");
    let root = test_ocf_root().display().to_string();
    let (ok, out, err) = warden(dir.path(), &["check-config", "c.toml", "--ocf-root", &root]);
    assert!(!ok, "{out}");
    // The resource with an error is not "unknown" to the order that names it; reading stops
    // before the machine is asked, so a second run shows the machine's findings.
    expect![[r#"
        c.toml:12:39: error: bad duration "0.5s": no fractions; write "500ms"
        c.toml:18:15: error: unknown stop_signal "STOP" (allowed: TERM, INT, QUIT, HUP, USR1, USR2, KILL)
    "#]]
    .assert_eq(&err);
    let fixed = std::fs::read_to_string(dir.path().join("c.toml"))
        .expect("read")
        .replace("\"0.5s\"", "\"500ms\"")
        .replace("stop_signal = \"STOP\"\n", "");
    std::fs::write(dir.path().join("c.toml"), fixed).expect("write");
    let (ok, out, err) = warden(dir.path(), &["check-config", "c.toml", "--ocf-root", &root]);
    assert!(!ok, "{out}");
    expect![[r#"
        c.toml:5:8: error: no agent ocf:warden-test:Markr (no "Markr" in ROOT/resource.d/warden-test); did you mean "Marker"?
        c.toml:10:12: error: program "no-such-program-here" is not found in PATH ($PATH)
        c.toml:11:8: error: no user "no-such-user-here" on this machine
    "#]]
    .assert_eq(
        &err.replace(&root, "ROOT")
            .replace(&std::env::var("PATH").expect("PATH"), "$PATH"),
    );
}

#[test]
fn config_example_is_complete_and_loads() {
    let dir = tempfile::tempdir().expect("dir");
    let (ok, example, err) = warden(dir.path(), &["config", "example"]);
    assert!(ok, "{err}");
    std::fs::write(dir.path().join("w.toml"), &example).expect("write");
    let (ok, out, err) = warden(dir.path(), &["check-config", "w.toml"]);
    assert!(ok, "{out}{err}");
    assert!(
        out.starts_with("w.toml: ok (1 node(s), 2 resource(s)"),
        "{out}"
    );
}

#[test]
fn version_names_the_commit_and_the_build_date_and_completions_cover_every_command() {
    let dir = tempfile::tempdir().expect("dir");
    let (ok, out, err) = warden(dir.path(), &["--version"]);
    assert!(ok, "{err}");
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    assert!(
        out.starts_with(&format!(
            "warden {} (commit {commit}, built 2",
            env!("CARGO_PKG_VERSION")
        )),
        "{out}"
    );
    for (shell, marker) in [
        ("bash", "complete -F _warden"),
        ("zsh", "#compdef warden"),
        ("fish", "complete -c warden"),
    ] {
        let (ok, out, err) = warden(dir.path(), &["completions", shell]);
        assert!(ok, "{err}");
        assert!(out.contains(marker), "{shell}: {out}");
        for sub in ["check-config", "simulate", "promotion-score", "resource"] {
            assert!(out.contains(sub), "{shell} lacks {sub}");
        }
    }
    let (ok, _, err) = warden(dir.path(), &["completions", "tcsh"]);
    assert!(!ok && err.contains("tcsh"), "{err}");
}

/// The Transition Summary lines of `simulate`'s text.
fn transition(text: &str) -> Vec<String> {
    text.split("Transition Summary:")
        .nth(1)
        .unwrap_or_default()
        .lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_pacemaker_cib_is_simulated_and_imported_with_what_is_not_carried_named() {
    let dir = tempfile::tempdir().expect("dir");
    let cib = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cib-two-nodes.xml");
    let cib = cib.to_str().expect("path");
    // db failed its monitor on node1 with migration-threshold 1: it leaves node1; the clone
    // starts a copy on each node.
    let want = [
        "  * Recover db ( node1 -> node2 )",
        "  * Start ping ( node1 )",
        "  * Start ping ( node2 )",
    ];
    let (ok, out, err) = warden(dir.path(), &["simulate", "--cib", cib]);
    assert!(ok, "{err}");
    assert_eq!(transition(&out), want, "{out}");
    assert!(
        out.contains("Note: not carried over: bundle web-bundle (bundles)"),
        "{out}"
    );
    // The import writes the same cluster: the configuration checks, and simulating it with
    // the imported state schedules the same.
    let (ok, out, err) = warden(
        dir.path(),
        &["import", "pacemaker", cib, "--out", "imported"],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("not carried over (1):\n  bundle web-bundle (bundles)"),
        "{out}"
    );
    let conf = dir.path().join("imported/warden.toml");
    let text = std::fs::read_to_string(&conf).expect("warden.toml");
    assert!(text.contains("name = \"shop\""), "{text}");
    let (ok, _, err) = warden(
        dir.path(),
        &["check-config", "--simulate", "imported/warden.toml"],
    );
    assert!(ok, "{err}");
    let (ok, out, err) = warden(
        dir.path(),
        &[
            "simulate",
            "--config",
            "imported/warden.toml",
            "--state",
            "imported/state.json",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(transition(&out), want, "{out}");
    // Not a CIB: said so, with the file.
    std::fs::write(dir.path().join("x.xml"), "<config/>").expect("write");
    let (ok, _, err) = warden(dir.path(), &["simulate", "--cib", "x.xml"]);
    assert!(
        !ok && err.contains("x.xml") && err.contains("not a CIB"),
        "{err}"
    );
}

#[test]
fn constraints_may_name_a_group_as_pacemaker_applies_them() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    let base = std::fs::read_to_string(example("group.toml")).expect("example");
    // The group prefers node2 (every member gets the location), `report` runs with the whole
    // group (INFINITY: with its last member) and after it (its last member's start).
    let extra = "\n[[resource]]\nid = \"report\"\nclass = \"ocf\"\ntype = \"Dummy\"\n\
                 [[location]]\nresource = \"stack\"\nnode = \"node2\"\nscore = 100\n\
                 [[colocation]]\nresource = \"report\"\nwith = \"stack\"\n\
                 [[order]]\nfirst = \"stack\"\nthen = \"report\"\n";
    std::fs::write(d.join("c.toml"), base + extra).expect("config");
    let (ok, out, err) = warden(
        d,
        &[
            "simulate",
            "-c",
            "c.toml",
            "--at",
            AT,
            "--save-state",
            "s0.json",
        ],
    );
    assert!(ok, "{err}");
    for want in [
        "* Start ip ( node2 )",
        "* Start app ( node2 )",
        "* Start report ( node2 )",
    ] {
        assert!(out.contains(want), "{want}\n{out}");
    }
    let at = |o: &str| out.find(o).unwrap_or_else(|| panic!("{o}\n{out}"));
    assert!(
        at("app_start_0 on node2") < at("report_start_0 on node2"),
        "{out}"
    );
    // A member fails: the group restarts from it, and report, after the group, with it.
    let (ok, out, err) = warden(
        d,
        &[
            "simulate",
            "-c",
            "c.toml",
            "--state",
            "s0.json",
            "--inject",
            "db:monitor:10s@node2=1",
        ],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("* Restart report ( node2 ) due to required stack running"),
        "{out}"
    );
    // An unknown name is still refused, with a hint.
    std::fs::write(
        d.join("bad.toml"),
        std::fs::read_to_string(example("group.toml")).expect("example")
            + "\n[[location]]\nresource = \"stak\"\nnode = \"node2\"\nscore = 1\n",
    )
    .expect("config");
    let (ok, _, err) = warden(d, &["check-config", "--simulate", "bad.toml"]);
    assert!(!ok && err.contains("unknown resource \"stak\""), "{err}");
}

#[test]
fn a_placement_strategy_places_by_capacity_and_the_status_shows_it() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    // node1 holds 2 cpu, node2 4; three resources of 2 each. Under "utilization" node1 is
    // full after the first; under "default" the third would go to node1 (fewer resources).
    let config = |strategy: &str| {
        let mut c = format!(
            "[cluster]\nplacement_strategy = \"{strategy}\"\n\
             [[node]]\nname = \"node1\"\nutilization = {{ cpu = 2 }}\n\
             [[node]]\nname = \"node2\"\nutilization = {{ cpu = 4 }}\n"
        );
        for id in ["a", "b", "c"] {
            c.push_str(&format!(
                "[[resource]]\nid = \"{id}\"\nclass = \"ocf\"\ntype = \"Dummy\"\nutilization = {{ cpu = 2 }}\n"
            ));
        }
        c
    };
    std::fs::write(d.join("u.toml"), config("utilization")).expect("config");
    let (ok, out, err) = warden(d, &["simulate", "-c", "u.toml", "--at", AT]);
    assert!(ok, "{err}");
    assert_eq!(
        transition(&out),
        [
            "  * Start a ( node1 )",
            "  * Start b ( node2 )",
            "  * Start c ( node2 )"
        ],
        "{out}"
    );
    assert!(
        out.contains("  * Node Utilization:\n    * node1: cpu=2/2\n    * node2: cpu=4/4\n"),
        "{out}"
    );
    std::fs::write(d.join("d.toml"), config("default")).expect("config");
    let (ok, out, err) = warden(d, &["simulate", "-c", "d.toml", "--at", AT]);
    assert!(ok, "{err}");
    assert!(
        transition(&out).contains(&"  * Start c ( node1 )".to_owned()),
        "{out}"
    );
    assert!(!out.contains("Node Utilization"), "{out}");
}
