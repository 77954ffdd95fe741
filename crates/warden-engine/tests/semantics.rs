//! The failure semantics (docs/config.md, `on_fail`), row by row: OCF return codes and their
//! recovery class, per-action failure handling, every `on_fail` value, meta attributes and
//! placement. Each test names its row.

mod common;

use std::time::Duration;

use common::*;
use warden_engine::*;

const MON: Duration = Duration::from_secs(10);

/// Two nodes, `dummy` preferring node1 (score 100).
fn two_nodes(r: ResourceSpec) -> World {
    build(&["node1", "node2"])
        .resource(r)
        .location(loc("dummy", "node1", 100))
        .world()
}

// ---------------------------------------------------------------------------------------
// Table 1: return codes and recovery class, as results of a recurring monitor.
// ---------------------------------------------------------------------------------------

#[test]
fn rc_table_from_a_recurring_monitor() {
    // (rc, summary of the next transition, fail count on node1, banned from node1)
    let rows: &[(i32, &[&str], u32)] = &[
        (rc::OK, &[], 0),
        (rc::ERR_GENERIC, &["Recover dummy ( node1 )"], 1),
        (rc::ERR_ARGS, &["Recover dummy ( node1 -> node2 )"], 1),
        // Pacemaker 2.1 restarts in place for rc 3 from a recurring monitor.
        (rc::ERR_UNIMPLEMENTED, &["Recover dummy ( node1 )"], 1),
        (rc::ERR_PERM, &["Recover dummy ( node1 -> node2 )"], 1),
        (rc::ERR_INSTALLED, &["Recover dummy ( node1 -> node2 )"], 1),
        (
            rc::ERR_CONFIGURED,
            &["Stop dummy ( node1 ) due to node availability"],
            1,
        ),
        (rc::NOT_RUNNING, &["Recover dummy ( node1 )"], 1),
        (rc::RUNNING_PROMOTED, &["Recover dummy ( node1 )"], 1),
        (rc::FAILED_PROMOTED, &["Recover dummy ( node1 )"], 1),
        (rc::DEGRADED, &[], 0),
        (rc::DEGRADED_PROMOTED, &["Recover dummy ( node1 )"], 1),
        (42, &["Recover dummy ( node1 )"], 1),
    ];
    for &(code, want, count) in rows {
        let mut w = two_nodes(dummy("dummy"));
        assert_eq!(w.status_of("dummy"), "dummy Started node1");
        w.monitor("dummy", "node1", code);
        assert_eq!(w.plan(), want, "rc {code}");
        assert_eq!(w.fail_count("dummy", "node1"), count, "rc {code}");
        w.settle();
    }
}

#[test]
fn rc_190_is_success_shown_as_degraded() {
    let mut w = two_nodes(dummy("dummy"));
    w.monitor("dummy", "node1", rc::DEGRADED);
    assert!(w.plan().is_empty());
    assert_eq!(w.status_of("dummy"), "dummy Started node1 (degraded)");
    w.monitor("dummy", "node1", rc::OK);
    assert_eq!(w.status_of("dummy"), "dummy Started node1");
}

#[test]
fn fatal_stops_everywhere_and_never_restarts_until_cleanup() {
    let mut w = two_nodes(dummy("dummy"));
    w.monitor("dummy", "node1", rc::ERR_CONFIGURED);
    w.settle();
    assert_eq!(
        w.status_of("dummy"),
        "dummy Stopped (fatal error: cleanup needed)"
    );
    w.advance(Duration::from_secs(3600));
    assert!(w.plan().is_empty(), "fatal never restarts by itself");
    w.admin(AdminCommand::Cleanup {
        resource: Some("dummy".into()),
        node: None,
    });
    assert_eq!(w.settle(), ["Start dummy ( node1 )"]);
}

#[test]
fn hard_error_bans_the_node_until_cleanup() {
    let mut w = two_nodes(dummy("dummy"));
    w.monitor("dummy", "node1", rc::ERR_INSTALLED);
    assert_eq!(w.settle(), ["Recover dummy ( node1 -> node2 )"]);
    w.advance(Duration::from_secs(3600));
    assert!(w.plan().is_empty(), "still banned from node1");
    w.admin(AdminCommand::Cleanup {
        resource: Some("dummy".into()),
        node: Some("node1".into()),
    });
    assert_eq!(w.settle(), ["Move dummy ( node2 -> node1 )"]);
}

// ---------------------------------------------------------------------------------------
// Table 2: what happens when each action fails.
// ---------------------------------------------------------------------------------------

#[test]
fn probe_not_running_is_fine_and_the_resource_starts() {
    let w = build(&["node1", "node2"]).resource(dummy("dummy")).config();
    let mut w = World {
        state: State::with_online_nodes(["node1", "node2"]),
        config: w,
        now: T0,
    };
    let t = schedule(&w.config, &w.state, w.now);
    let probes = t
        .actions
        .iter()
        .filter(|a| matches!(a.kind, ActionKind::Probe { .. }))
        .count();
    assert_eq!(probes, 2);
    let start = t
        .actions
        .iter()
        .find(|a| matches!(a.kind, ActionKind::Start { .. }))
        .expect("start");
    assert_eq!(start.deps.len(), 2, "the start waits for both probes");
    assert_eq!(w.step(&[]), ["Start dummy ( node1 )"]);
    assert_eq!(w.fail_count("dummy", "node1"), 0);
}

#[test]
fn probe_finding_the_resource_running_adopts_it() {
    let config = build(&["node1", "node2"]).resource(dummy("dummy")).config();
    let mut w = World {
        state: State::with_online_nodes(["node1", "node2"]),
        config,
        now: T0,
    };
    w.op("dummy", "node2", OpKey::probe(), rc::OK);
    w.op("dummy", "node1", OpKey::probe(), rc::NOT_RUNNING);
    assert!(
        w.plan().is_empty(),
        "already running on node2: nothing to do"
    );
    assert_eq!(w.status_of("dummy"), "dummy Started node2");
}

#[test]
fn probe_finding_it_active_on_two_nodes_applies_multiple_active() {
    let config = build(&["node1", "node2"]).resource(dummy("dummy")).config();
    let mut w = World {
        state: State::with_online_nodes(["node1", "node2"]),
        config,
        now: T0,
    };
    w.op("dummy", "node1", OpKey::probe(), rc::OK);
    w.op("dummy", "node2", OpKey::probe(), rc::OK);
    assert_eq!(
        w.status_of("dummy"),
        "dummy Started [ node1 node2 ] (multiple active)"
    );
    // Default stop_start: stop everywhere, start once (one line, as crm_simulate's).
    assert_eq!(w.step(&[]), ["Restart dummy ( node1 )"]);
    assert_eq!(w.status_of("dummy"), "dummy Started node1");
    assert!(w.plan().is_empty());
}

#[test]
fn probe_rc_2_or_5_is_stopped_and_bans_the_node_without_a_fail_count() {
    for code in [rc::ERR_ARGS, rc::ERR_INSTALLED] {
        let config = build(&["node1", "node2"])
            .resource(dummy("dummy"))
            .location(loc("dummy", "node1", 100))
            .config();
        let mut w = World {
            state: State::with_online_nodes(["node1", "node2"]),
            config,
            now: T0,
        };
        let out = w.step(&[("dummy", OpName::Monitor, "node1", code)]);
        // The start planned on node1 is skipped (its probe failed); the next transition moves on.
        assert_eq!(out, ["Start dummy ( node1 )"]);
        assert_eq!(w.settle(), ["Start dummy ( node2 )"], "rc {code}");
        assert_eq!(
            w.fail_count("dummy", "node1"),
            0,
            "probes never bump fail counts"
        );
    }
}

#[test]
fn probe_failure_is_recovered_without_a_fail_count() {
    let config = build(&["node1", "node2"])
        .resource(dummy("dummy"))
        .location(loc("dummy", "node1", 100))
        .config();
    let mut w = World {
        state: State::with_online_nodes(["node1", "node2"]),
        config,
        now: T0,
    };
    w.step(&[("dummy", OpName::Monitor, "node1", rc::ERR_GENERIC)]);
    assert_eq!(w.status_of("dummy"), "dummy FAILED node1");
    assert_eq!(w.settle(), ["Recover dummy ( node1 )"]);
    assert_eq!(w.fail_count("dummy", "node1"), 0);
}

#[test]
fn monitor_failures_restart_in_place_until_the_threshold_then_move() {
    let mut r = dummy("dummy");
    r.meta.migration_threshold = 3;
    let mut w = two_nodes(r);
    for n in 1..=2 {
        // A monitor fails an interval after the start, not at once (a crash loop would wait).
        w.advance(Duration::from_secs(10));
        w.monitor("dummy", "node1", rc::ERR_GENERIC);
        assert_eq!(w.settle(), ["Recover dummy ( node1 )"], "failure {n}");
        assert_eq!(w.fail_count("dummy", "node1"), n);
    }
    w.advance(Duration::from_secs(10));
    w.monitor("dummy", "node1", rc::ERR_GENERIC);
    assert_eq!(w.settle(), ["Recover dummy ( node1 -> node2 )"]);
    assert_eq!(w.fail_count("dummy", "node1"), 3);
}

#[test]
fn migration_threshold_zero_disables_it() {
    let mut r = dummy("dummy");
    r.meta.migration_threshold = 0;
    let mut w = two_nodes(r);
    for _ in 0..5 {
        w.advance(Duration::from_secs(10));
        w.monitor("dummy", "node1", rc::ERR_GENERIC);
        assert_eq!(w.settle(), ["Recover dummy ( node1 )"]);
    }
}

#[test]
fn fail_counts_are_per_operation_and_summed_against_the_threshold() {
    let mut r = dummy("dummy");
    r.meta.migration_threshold = 2;
    r.ops
        .push(OpSpec::new(OpName::Monitor, Duration::from_secs(60)));
    let mut w = two_nodes(r);
    w.monitor("dummy", "node1", rc::ERR_GENERIC);
    w.settle();
    w.op(
        "dummy",
        "node1",
        OpKey::new(OpName::Monitor, Duration::from_secs(60)),
        rc::ERR_GENERIC,
    );
    let on = w.state.on_node("dummy", "node1");
    assert_eq!(on.fail_counts.len(), 2, "one count per operation");
    assert_eq!(
        w.settle(),
        ["Recover dummy ( node1 -> node2 )"],
        "1 + 1 reaches 2"
    );
}

#[test]
fn start_failure_is_fatal_by_default_and_moves_at_once() {
    let mut w = build(&["node1", "node2"])
        .resource(dummy("dummy"))
        .location(loc("dummy", "node1", 100))
        .world();
    w.admin(AdminCommand::Disable {
        resource: "dummy".into(),
    });
    w.settle();
    w.admin(AdminCommand::Enable {
        resource: "dummy".into(),
    });
    assert_eq!(
        w.step(&[("dummy", OpName::Start, "node1", rc::ERR_GENERIC)]),
        ["Start dummy ( node1 )"]
    );
    assert_eq!(w.fail_count("dummy", "node1"), INFINITY_COUNT);
    assert_eq!(w.status_of("dummy"), "dummy FAILED node1");
    assert_eq!(w.settle(), ["Recover dummy ( node1 -> node2 )"]);
}

#[test]
fn start_failure_on_a_one_node_cluster_leaves_it_stopped() {
    let config = build(&["node1"]).resource(dummy("dummy")).config();
    let mut w = World {
        state: State::with_online_nodes(["node1"]),
        config,
        now: T0,
    };
    w.step(&[("dummy", OpName::Start, "node1", rc::ERR_GENERIC)]);
    assert_eq!(
        w.settle(),
        ["Stop dummy ( node1 ) due to node availability"]
    );
    assert_eq!(w.status_of("dummy"), "dummy Stopped");
    assert!(w.plan().is_empty());
}

#[test]
fn start_failure_not_fatal_retries_until_the_threshold() {
    let mut r = dummy("dummy");
    r.meta.migration_threshold = 3;
    let config = build(&["node1", "node2"])
        .resource(r)
        .location(loc("dummy", "node1", 100))
        .cluster(|c| c.start_failure_is_fatal = false)
        .config();
    let mut w = World {
        state: State::with_online_nodes(["node1", "node2"]),
        config,
        now: T0,
    };
    let fail = [("dummy", OpName::Start, "node1", rc::ERR_GENERIC)];
    assert_eq!(w.step(&fail), ["Start dummy ( node1 )"]);
    assert_eq!(w.fail_count("dummy", "node1"), 1);
    assert_eq!(w.step(&fail), ["Recover dummy ( node1 )"]);
    assert_eq!(w.fail_count("dummy", "node1"), 2);
    // Failed starts in a row are a crash loop: the third waits 100 ms on node1.
    assert_eq!(w.plan(), ["Stop dummy ( node1 ) due to crash loop"]);
    w.advance(Duration::from_millis(100));
    assert_eq!(w.step(&fail), ["Recover dummy ( node1 )"]);
    assert_eq!(w.fail_count("dummy", "node1"), 3);
    assert_eq!(w.settle(), ["Recover dummy ( node1 -> node2 )"]);
}

#[test]
fn stop_failure_without_fencing_blocks_until_cleanup() {
    let mut w = two_nodes(dummy("dummy"));
    w.monitor("dummy", "node1", rc::ERR_GENERIC);
    w.step(&[("dummy", OpName::Stop, "node1", rc::ERR_GENERIC)]);
    assert_eq!(w.fail_count("dummy", "node1"), INFINITY_COUNT);
    assert_eq!(w.status_of("dummy"), "dummy FAILED node1 (blocked)");
    w.advance(Duration::from_secs(86_400));
    let t = schedule(&w.config, &w.state, w.now);
    assert!(
        t.actions.is_empty(),
        "a blocked resource gets no action: {t:?}"
    );
    w.admin(AdminCommand::Cleanup {
        resource: Some("dummy".into()),
        node: None,
    });
    // Cleanup re-probes; the probes find it stopped, so it starts again.
    assert_eq!(w.settle(), ["Start dummy ( node1 )"]);
    assert_eq!(w.status_of("dummy"), "dummy Started node1");
}

#[test]
fn stop_failure_with_fencing_fences_then_recovers_elsewhere() {
    let mut w = build(&["node1", "node2"])
        .resource(dummy("dummy"))
        .location(loc("dummy", "node1", 100))
        .fencing()
        .world();
    w.monitor("dummy", "node1", rc::ERR_GENERIC);
    w.step(&[("dummy", OpName::Stop, "node1", rc::ERR_GENERIC)]);
    let t = schedule(&w.config, &w.state, w.now);
    let fence = t
        .actions
        .iter()
        .find(|a| matches!(a.kind, ActionKind::Fence { .. }))
        .expect("fence");
    let start = t
        .actions
        .iter()
        .find(|a| matches!(a.kind, ActionKind::Start { .. }))
        .expect("start");
    assert!(
        start.deps.contains(&fence.id),
        "recovery waits for the fence"
    );
    assert_eq!(
        w.step(&[]),
        [
            "Fence (reboot) node1 'dummy failed there'",
            "Recover dummy ( node1 -> node2 )"
        ]
    );
    assert_eq!(w.status_of("dummy"), "dummy Started node2");
}

#[test]
fn what_requires_only_quorum_starts_elsewhere_before_the_fence() {
    // node1 is lost. By default (requires = "fencing") the resource starts on node2 only
    // after node1 is fenced; with requires = "quorum" it is taken for stopped on the lost
    // node and starts at once (Pacemaker's `requires`); with "nothing" as well.
    for (requires, waits) in [
        (Requires::Fencing, true),
        (Requires::Quorum, false),
        (Requires::Nothing, false),
    ] {
        let mut d = dummy("dummy");
        d.meta.requires = requires;
        let mut w = build(&["node1", "node2"])
            .resource(d)
            .location(loc("dummy", "node1", 100))
            .fencing()
            .world();
        w.event(Event::NodeDown {
            node: "node1".into(),
        });
        let t = schedule(&w.config, &w.state, w.now);
        let fence = find(&t, |k| matches!(k, ActionKind::Fence { .. }));
        let start = find(&t, |k| matches!(k, ActionKind::Start { .. }));
        assert_eq!(depends(&t, start, fence), waits, "{requires}: {t:#?}");
        assert_eq!(
            w.step(&[]),
            [
                "Fence (reboot) node1 'peer is no longer part of the cluster'",
                "Move dummy ( node1 -> node2 )"
            ],
            "{requires}"
        );
    }
    // Where its state is unknown on the lost node (never probed there), even quorum waits:
    // it may run there unseen (Pacemaker's `order_start_vs_fencing`).
    let mut d = dummy("dummy");
    d.meta.requires = Requires::Quorum;
    let config = build(&["node1", "node2"]).resource(d).fencing().config();
    let mut state = State::with_online_nodes(["node1", "node2"]);
    apply(
        &config,
        &mut state,
        &Event::NodeDown {
            node: "node1".into(),
        },
        T0,
    )
    .expect("node1 lost");
    let t = schedule(&config, &state, T0);
    let fence = find(&t, |k| matches!(k, ActionKind::Fence { .. }));
    let start = find(&t, |k| matches!(k, ActionKind::Start { .. }));
    assert!(depends(&t, start, fence), "{t:#?}");
}

#[test]
fn a_failure_on_a_node_fenced_for_something_else_is_settled_by_the_fence() {
    // Pacemaker's rec-node-6: the stop failed (on_fail = "block"), then node1's daemon went
    // away (still a member): the fence stops it, and it moves, not recovers; the resource
    // whose failure fenced the node is recovered.
    let blocked = with_on_fail(dummy("a"), OpName::Stop, Duration::ZERO, OnFail::Block);
    let fenced = with_on_fail(
        dummy("b"),
        OpName::Monitor,
        Duration::from_secs(10),
        OnFail::Fence,
    );
    let mut w = build(&["node1", "node2"])
        .resource(blocked)
        .resource(fenced)
        .location(loc("a", "node1", 100))
        .location(loc("b", "node1", 100))
        .fencing()
        .world();
    w.monitor("a", "node1", rc::ERR_GENERIC);
    w.step(&[("a", OpName::Stop, "node1", rc::ERR_GENERIC)]);
    assert_eq!(w.status_of("a"), "a FAILED node1 (blocked)");
    w.monitor("b", "node1", rc::ERR_GENERIC);
    assert_eq!(
        w.plan(),
        [
            "Fence (reboot) node1 'b failed there'",
            "Move a ( node1 -> node2 )",
            "Recover b ( node1 -> node2 )"
        ]
    );
}

#[test]
fn without_quorum_what_runs_on_a_lost_node_cannot_stop_and_its_failures_are_left_to_the_fence() {
    // Pacemaker's rec-node-8 (freeze) and rec-node-10 (stop): node1 is lost and cannot be
    // fenced without quorum. a's blocked stop failure there is no block anymore (the fence
    // will settle it): a and b alike are stopped there only as far as the summary goes.
    // c can run nowhere else: frozen or not, it is for node availability (bug-cl-5212).
    for (policy, why, why_c) in [
        (
            NoQuorumPolicy::Freeze,
            " blocked",
            " due to node availability (blocked)",
        ),
        (
            NoQuorumPolicy::Stop,
            " due to no quorum (blocked)",
            " due to no quorum (blocked)",
        ),
    ] {
        let blocked = with_on_fail(dummy("a"), OpName::Stop, Duration::ZERO, OnFail::Block);
        let mut w = build(&["node1", "node2", "node3"])
            .resource(blocked)
            .resource(dummy("b"))
            .resource(dummy("c"))
            .location(loc("a", "node1", 100))
            .location(loc("b", "node1", 100))
            .location(loc("c", "node1", 100))
            .location(loc("c", "node2", -1_000_000))
            .location(loc("c", "node3", -1_000_000))
            .fencing()
            .cluster(|c| c.no_quorum_policy = policy)
            .world();
        w.monitor("a", "node1", rc::ERR_GENERIC);
        w.step(&[("a", OpName::Stop, "node1", rc::ERR_GENERIC)]);
        assert_eq!(w.status_of("a"), "a FAILED node1 (blocked)");
        w.event(Event::NodeDown {
            node: "node1".into(),
        });
        w.state.no_quorum = true;
        let mut plan = w.plan();
        plan.retain(|l| l.starts_with("Stop"));
        assert_eq!(
            plan,
            [
                format!("Stop a ( node1 ){why}"),
                format!("Stop b ( node1 ){why}"),
                format!("Stop c ( node1 ){why_c}")
            ],
            "{policy:?}"
        );
    }
}

#[test]
fn a_resource_running_nowhere_waits_for_a_node_still_joining() {
    // Pacemaker's probe-4 and stonith-4: node2 is pending (a member not done joining): it is
    // not probed, and what runs nowhere known does not start (it might run there).
    let mut state = State::with_online_nodes(["node1", "node2"]);
    state.nodes.get_mut("node2").expect("node2").pending = true;
    let mut w = World {
        state,
        config: build(&["node1", "node2"])
            .resource(dummy("a"))
            .location(loc("a", "node1", 100))
            .config(),
        now: T0,
    };
    w.op("a", "node1", OpKey::probe(), rc::NOT_RUNNING);
    let t = schedule(&w.config, &w.state, w.now);
    assert!(
        t.actions.iter().all(|a| a.kind.node() != "node2"),
        "nothing on the pending node: {t:?}"
    );
    assert_eq!(w.plan(), ["Start a ( node1 ) blocked"]);
    assert_eq!(
        node_groups(&w.config, &w.state),
        [
            ("Online", vec!["node1".to_owned()]),
            ("Pending", vec!["node2".to_owned()])
        ]
    );
    // Joined: probed there, and started.
    w.event(Event::NodeUp {
        node: "node2".into(),
    });
    assert_eq!(w.settle(), ["Start a ( node1 )"]);
}

#[test]
fn notify_failures_are_ignored_and_never_counted() {
    let mut w = two_nodes(dummy("dummy"));
    w.op(
        "dummy",
        "node1",
        OpKey::new(OpName::Notify, Duration::ZERO),
        rc::ERR_GENERIC,
    );
    assert!(w.plan().is_empty());
    assert_eq!(w.fail_count("dummy", "node1"), 0);
    assert!(w.state.on_node("dummy", "node1").failed_ops.is_empty());
}

#[test]
fn a_timeout_is_a_generic_failure_of_that_action() {
    // Executors report a timeout as rc 1 with the reason "timed out".
    let mut w = two_nodes(dummy("dummy"));
    w.event(Event::OpResult(OpResult {
        resource: "dummy".into(),
        node: "node1".into(),
        op: OpKey::new(OpName::Monitor, MON),
        rc: rc::ERR_GENERIC,
        exit_reason: "timed out".into(),
        status: warden_engine::rc::ExecStatus::Done,
        digest: None,
    }));
    assert_eq!(w.plan(), ["Recover dummy ( node1 )"]);
    let fa = failed_actions(&w.config, &w.state, w.now);
    assert_eq!(fa[0].record.exit_reason, "timed out");
}

#[test]
fn a_late_monitor_result_after_a_stop_is_ignored() {
    let mut w = two_nodes(dummy("dummy"));
    w.admin(AdminCommand::Disable {
        resource: "dummy".into(),
    });
    w.settle();
    w.monitor("dummy", "node1", rc::NOT_RUNNING);
    assert_eq!(w.fail_count("dummy", "node1"), 0);
}

// ---------------------------------------------------------------------------------------
// Table 3: every on_fail value, and the defaults.
// ---------------------------------------------------------------------------------------

#[test]
fn on_fail_ignore_records_and_keeps_running() {
    let mut w = two_nodes(with_on_fail(
        dummy("dummy"),
        OpName::Monitor,
        MON,
        OnFail::Ignore,
    ));
    w.monitor("dummy", "node1", rc::ERR_GENERIC);
    assert!(w.plan().is_empty());
    assert_eq!(
        w.status_of("dummy"),
        "dummy Started node1 (failure ignored)"
    );
    assert_eq!(w.fail_count("dummy", "node1"), 0);
    assert_eq!(
        failed_actions(&w.config, &w.state, w.now).len(),
        1,
        "the failure is recorded"
    );
}

#[test]
fn an_agent_the_executor_cannot_find_is_not_ignored_and_never_expires() {
    // on_fail = "ignore" ignores an agent's own rc 5, but not the executor's finding that
    // there is no agent (Pacemaker's "not installed" execution status): the resource is
    // recovered elsewhere and stays away from that node until cleanup, failure_timeout or not.
    let spec = || {
        let mut r = with_on_fail(dummy("dummy"), OpName::Monitor, MON, OnFail::Ignore);
        r.meta.failure_timeout = Some(Duration::from_secs(60));
        r
    };
    let monitor = |w: &mut World, status| {
        w.op_with(
            "dummy",
            "node1",
            OpKey::new(OpName::Monitor, MON),
            rc::ERR_INSTALLED,
            status,
        );
    };
    let mut w = two_nodes(spec());
    monitor(&mut w, rc::ExecStatus::Done);
    assert!(w.plan().is_empty(), "the agent's own rc 5 is ignored");
    let mut w = two_nodes(spec());
    monitor(&mut w, rc::ExecStatus::NotInstalled);
    assert_eq!(w.status_of("dummy"), "dummy FAILED node1");
    assert_eq!(w.settle(), ["Recover dummy ( node1 -> node2 )"]);
    w.advance(Duration::from_secs(3600));
    assert!(w.settle().is_empty(), "the ban does not expire");
    assert_eq!(w.wakeup(), None);
    w.admin(AdminCommand::Cleanup {
        resource: Some("dummy".into()),
        node: Some("node1".into()),
    });
    assert_eq!(w.settle(), ["Move dummy ( node2 -> node1 )"]);
}

#[test]
fn a_start_the_executor_found_no_agent_for_ran_nothing_and_goes_elsewhere() {
    // Its start on node1 could not run (no agent there): nothing to stop on node1, where the
    // agent is missing too; it starts on node2 and stays away from node1 until cleanup. An
    // agent's own rc 5 on start may have left something behind: stopped there first.
    // A world where it was stopped on node1 (its start there is next).
    let stopped = || {
        let mut w = two_nodes(dummy("dummy"));
        assert_eq!(w.status_of("dummy"), "dummy Started node1");
        w.op(
            "dummy",
            "node1",
            OpKey::new(OpName::Stop, Duration::ZERO),
            rc::OK,
        );
        w
    };
    let start = |w: &mut World, status| {
        let start = OpKey::new(OpName::Start, Duration::ZERO);
        w.op_with("dummy", "node1", start, rc::ERR_INSTALLED, status);
    };
    let mut w = stopped();
    start(&mut w, rc::ExecStatus::NotInstalled);
    assert_eq!(w.status_of("dummy"), "dummy Stopped");
    assert_eq!(w.settle(), ["Start dummy ( node2 )"]);
    let mut w = stopped();
    start(&mut w, rc::ExecStatus::Done);
    assert_eq!(w.status_of("dummy"), "dummy FAILED node1");
    assert_eq!(w.settle(), ["Recover dummy ( node1 -> node2 )"]);
}

#[test]
fn an_ignored_failure_sets_the_migration_threshold_aside_too() {
    // Two fail counts (from a failed start, say) reach a threshold of 2: the resource moves,
    // unless a failure of it was ignored, which sets the threshold aside (Pacemaker's
    // on-fail-ignore: `pe_rsc_failure_ignored`).
    let spec = || {
        let mut r = with_on_fail(dummy("dummy"), OpName::Monitor, MON, OnFail::Ignore);
        r.meta.migration_threshold = 2;
        r
    };
    let counted = |w: &mut World| {
        let now = w.now;
        let on = w.on_node_mut("dummy", "node1");
        on.fail_counts
            .insert(OpKey::new(OpName::Start, Duration::ZERO), 2);
        on.last_failure = Some(now);
    };
    let mut w = two_nodes(spec());
    counted(&mut w);
    assert_eq!(w.settle(), ["Move dummy ( node1 -> node2 )"]);
    let mut w = two_nodes(spec());
    w.monitor("dummy", "node1", rc::ERR_GENERIC);
    counted(&mut w);
    assert!(w.plan().is_empty(), "{:?}", w.plan());
}

#[test]
fn on_fail_block_stops_all_operations() {
    let mut w = two_nodes(with_on_fail(
        dummy("dummy"),
        OpName::Monitor,
        MON,
        OnFail::Block,
    ));
    w.monitor("dummy", "node1", rc::ERR_GENERIC);
    assert!(schedule(&w.config, &w.state, w.now).actions.is_empty());
    assert_eq!(w.status_of("dummy"), "dummy FAILED node1 (blocked)");
    w.admin(AdminCommand::Cleanup {
        resource: Some("dummy".into()),
        node: Some("node1".into()),
    });
    w.settle();
    assert_eq!(w.status_of("dummy"), "dummy Started node1");
}

#[test]
fn on_fail_stop_stops_and_starts_nowhere() {
    let mut w = two_nodes(with_on_fail(
        dummy("dummy"),
        OpName::Monitor,
        MON,
        OnFail::Stop,
    ));
    w.monitor("dummy", "node1", rc::ERR_GENERIC);
    assert_eq!(
        w.settle(),
        ["Stop dummy ( node1 ) due to node availability"]
    );
    assert_eq!(w.status_of("dummy"), "dummy Stopped");
    w.admin(AdminCommand::Cleanup {
        resource: Some("dummy".into()),
        node: None,
    });
    assert_eq!(w.settle(), ["Start dummy ( node1 )"]);
}

#[test]
fn on_fail_restart_is_the_default_for_monitor_and_start() {
    let r = dummy("dummy");
    assert_eq!(r.on_fail(OpName::Monitor, MON, false), OnFail::Restart);
    assert_eq!(
        r.on_fail(OpName::Start, Duration::ZERO, true),
        OnFail::Restart
    );
    let mut w = two_nodes(with_on_fail(r, OpName::Monitor, MON, OnFail::Restart));
    w.monitor("dummy", "node1", rc::ERR_GENERIC);
    assert_eq!(w.settle(), ["Recover dummy ( node1 )"]);
}

#[test]
fn on_fail_defaults_for_stop_follow_fencing() {
    let r = dummy("dummy");
    assert_eq!(r.on_fail(OpName::Stop, Duration::ZERO, true), OnFail::Fence);
    assert_eq!(
        r.on_fail(OpName::Stop, Duration::ZERO, false),
        OnFail::Block
    );
    assert_eq!(
        r.on_fail(OpName::Notify, Duration::ZERO, false),
        OnFail::Ignore
    );
}

#[test]
fn on_fail_demote_defaults_to_the_promoted_monitor() {
    let mut r = dummy("dummy");
    assert_eq!(
        r.on_fail(OpName::Demote, Duration::ZERO, false),
        OnFail::Restart
    );
    let mut m = OpSpec::new(OpName::Monitor, Duration::from_secs(5));
    m.role = OpRole::Promoted;
    m.on_fail = Some(OnFail::Block);
    r.ops.push(m);
    assert_eq!(
        r.on_fail(OpName::Demote, Duration::ZERO, false),
        OnFail::Block
    );
}

#[test]
fn on_fail_allowed_values_per_operation() {
    use OnFail::*;
    let rows: &[(OpName, OpRole, &[OnFail])] = &[
        (
            OpName::Start,
            OpRole::Started,
            &[Ignore, Block, Stop, Restart, Fence, Standby],
        ),
        (OpName::Stop, OpRole::Started, &[Ignore, Block, Fence]),
        (
            OpName::Monitor,
            OpRole::Started,
            &[Ignore, Block, Stop, Restart, Fence, Standby],
        ),
        (
            OpName::Monitor,
            OpRole::Promoted,
            &[Ignore, Block, Stop, Restart, Fence, Standby, Demote],
        ),
        (
            OpName::Promote,
            OpRole::Started,
            &[Ignore, Block, Stop, Restart, Fence, Standby, Demote],
        ),
        (
            OpName::Demote,
            OpRole::Started,
            &[Ignore, Block, Stop, Restart, Fence, Standby],
        ),
        (OpName::Notify, OpRole::Started, &[Ignore]),
    ];
    for (op, role, allowed) in rows {
        for v in OnFail::ALL {
            assert_eq!(
                v.allowed_for(*op, *role),
                allowed.contains(v),
                "{op} {role:?} {v}"
            );
        }
    }
}

#[test]
fn on_fail_fence_fences_the_node_and_recovers_elsewhere() {
    let r = with_on_fail(dummy("dummy"), OpName::Monitor, MON, OnFail::Fence);
    let mut w = build(&["node1", "node2"])
        .resource(r)
        .location(loc("dummy", "node1", 100))
        .fencing()
        .world();
    w.monitor("dummy", "node1", rc::ERR_GENERIC);
    assert_eq!(
        w.settle(),
        [
            "Fence (reboot) node1 'dummy failed there'",
            "Recover dummy ( node1 -> node2 )"
        ]
    );
}

#[test]
fn on_fail_standby_empties_the_node() {
    let r = with_on_fail(dummy("dummy"), OpName::Monitor, MON, OnFail::Standby);
    let mut w = build(&["node1", "node2"])
        .resource(r)
        .resource(dummy("other"))
        .location(loc("dummy", "node1", 100))
        .location(loc("other", "node1", 100))
        .world();
    assert_eq!(w.status(), ["dummy Started node1", "other Started node1"]);
    w.monitor("dummy", "node1", rc::ERR_GENERIC);
    let mut out = w.settle();
    out.sort();
    assert_eq!(
        out,
        [
            "Move other ( node1 -> node2 )",
            "Recover dummy ( node1 -> node2 )"
        ]
    );
    let groups = node_groups(&w.config, &w.state);
    assert_eq!(
        groups[0].0, "Online",
        "the operator's standby flag is untouched"
    );
}

// ---------------------------------------------------------------------------------------
// Meta attributes, placement, nodes and admin commands.
// ---------------------------------------------------------------------------------------

#[test]
fn failure_timeout_expires_at_its_exact_time_and_the_resource_moves_back() {
    let mut r = dummy("dummy");
    r.meta.migration_threshold = 1;
    r.meta.failure_timeout = Some(Duration::from_secs(60));
    let mut w = two_nodes(r);
    let failed_at = w.now;
    w.monitor("dummy", "node1", rc::ERR_GENERIC);
    assert_eq!(w.settle(), ["Recover dummy ( node1 -> node2 )"]);
    assert_eq!(
        w.wakeup(),
        Some(failed_at + Duration::from_secs(60)),
        "wake exactly at expiry"
    );
    w.advance(Duration::from_millis(59_999));
    assert!(w.plan().is_empty(), "not a millisecond early");
    w.advance(Duration::from_millis(1));
    assert_eq!(
        w.settle(),
        ["Move dummy ( node2 -> node1 )"],
        "without stickiness it goes back"
    );
    assert_eq!(w.fail_count("dummy", "node1"), 0);
    assert_eq!(w.wakeup(), None);
}

#[test]
fn failure_timeout_expiry_with_stickiness_stays() {
    let mut r = dummy("dummy");
    r.meta.migration_threshold = 1;
    r.meta.failure_timeout = Some(Duration::from_secs(60));
    r.meta.resource_stickiness = Score::new(200);
    let mut w = two_nodes(r);
    w.monitor("dummy", "node1", rc::ERR_GENERIC);
    assert_eq!(w.settle(), ["Recover dummy ( node1 -> node2 )"]);
    w.advance(Duration::from_secs(60));
    assert!(
        w.settle().is_empty(),
        "stickiness 200 beats the location's 100"
    );
    assert_eq!(w.fail_count("dummy", "node1"), 0);
}

#[test]
fn failure_timeout_resets_old_failures_before_counting_a_new_one() {
    let mut r = dummy("dummy");
    r.meta.migration_threshold = 2;
    r.meta.failure_timeout = Some(Duration::from_secs(60));
    let mut w = two_nodes(r);
    w.monitor("dummy", "node1", rc::ERR_GENERIC);
    w.settle();
    w.advance(Duration::from_secs(61));
    w.monitor("dummy", "node1", rc::ERR_GENERIC);
    assert_eq!(
        w.fail_count("dummy", "node1"),
        1,
        "the first failure had expired"
    );
    assert_eq!(w.settle(), ["Recover dummy ( node1 )"]);
}

#[test]
fn location_scores_stickiness_and_ties() {
    // Highest score wins.
    let w = build(&["node1", "node2", "node3"])
        .resource(dummy("dummy"))
        .location(loc("dummy", "node2", 50))
        .world();
    assert_eq!(w.status_of("dummy"), "dummy Started node2");
    // A negative score means "cannot run there".
    let w = build(&["node1"])
        .resource(dummy("dummy"))
        .location(loc("dummy", "node1", -10))
        .world();
    assert_eq!(w.status_of("dummy"), "dummy Stopped");
    // Ties go to the least loaded node, then configuration order.
    let w = build(&["node1", "node2"])
        .resource(dummy("a"))
        .resource(dummy("b"))
        .resource(dummy("c"))
        .world();
    assert_eq!(
        w.status(),
        ["a Started node1", "b Started node2", "c Started node1"]
    );
}

#[test]
fn priority_places_important_resources_first() {
    let mut b = dummy("b");
    b.meta.priority = 10;
    let w = build(&["node1", "node2"])
        .resource(dummy("a"))
        .resource(b)
        .world();
    assert_eq!(w.status(), ["a Started node2", "b Started node1"]);
}

#[test]
fn stickiness_keeps_a_resource_when_a_better_node_returns() {
    let mut r = dummy("dummy");
    r.meta.resource_stickiness = Score::new(200);
    let mut w = two_nodes(r);
    w.admin(AdminCommand::Standby {
        node: "node1".into(),
    });
    assert_eq!(w.settle(), ["Move dummy ( node1 -> node2 )"]);
    w.admin(AdminCommand::Online {
        node: "node1".into(),
    });
    assert!(
        w.settle().is_empty(),
        "200 of stickiness on node2 beats 100 on node1"
    );
}

#[test]
fn standby_nodes_run_nothing_and_online_brings_them_back() {
    let mut w = two_nodes(dummy("dummy"));
    w.admin(AdminCommand::Standby {
        node: "node1".into(),
    });
    assert_eq!(w.settle(), ["Move dummy ( node1 -> node2 )"]);
    w.admin(AdminCommand::Online {
        node: "node1".into(),
    });
    assert_eq!(w.settle(), ["Move dummy ( node2 -> node1 )"]);
}

#[test]
fn opt_in_cluster_runs_only_where_allowed() {
    let w = build(&["node1", "node2"])
        .resource(dummy("dummy"))
        .resource(dummy("free"))
        .location(loc("dummy", "node2", 0))
        .cluster(|c| c.symmetric = false)
        .world();
    assert_eq!(w.status(), ["dummy Started node2", "free Stopped"]);
}

#[test]
fn infinity_location_pins_and_minus_infinity_forbids() {
    let w = build(&["node1", "node2", "node3"])
        .resource(dummy("dummy"))
        .location(Location::new("dummy", "node3", Score::INFINITY))
        .location(Location::new("dummy", "node3", Score::MINUS_INFINITY))
        .world();
    assert_eq!(
        w.status_of("dummy"),
        "dummy Started node1",
        "-INFINITY wins over INFINITY"
    );
}

#[test]
fn target_role_stopped_and_enable_disable() {
    let mut r = dummy("dummy");
    r.meta.target_role = TargetRole::Stopped;
    let mut w = two_nodes(r);
    assert_eq!(w.status_of("dummy"), "dummy Stopped (disabled)");
    w.admin(AdminCommand::Enable {
        resource: "dummy".into(),
    });
    assert_eq!(w.settle(), ["Start dummy ( node1 )"]);
    w.admin(AdminCommand::Disable {
        resource: "dummy".into(),
    });
    // As Pacemaker says it of a stop of what may run nowhere, target role included.
    assert_eq!(
        w.settle(),
        ["Stop dummy ( node1 ) due to node availability"]
    );
}

#[test]
fn unmanaged_resources_are_probed_but_never_started_or_stopped() {
    let mut r = dummy("dummy");
    r.meta.is_managed = false;
    let mut w = two_nodes(r);
    assert_eq!(w.status_of("dummy"), "dummy Stopped (unmanaged)");
    w.op("dummy", "node2", OpKey::probe(), rc::OK);
    w.monitor("dummy", "node2", rc::ERR_GENERIC);
    assert!(schedule(&w.config, &w.state, w.now).actions.is_empty());
}

#[test]
fn an_unmanaged_resource_found_not_running_is_stopped_and_what_follows_it_stops() {
    // A group's middle member, unmanaged, stopped by hand: it is stopped, not failed, and the
    // member colocated with it can run nowhere (Pacemaker's group-unmanaged-stopped).
    let mut b = dummy("b");
    b.meta.is_managed = false;
    let config = build(&["node1", "node2"])
        .resource(dummy("a"))
        .resource(b)
        .resource(dummy("c"))
        .group("g", &["a", "b", "c"])
        .config();
    let mut w = World {
        state: State::with_online_nodes(["node1", "node2"]),
        config,
        now: T0,
    };
    for r in ["a", "b", "c"] {
        w.op(r, "node1", OpKey::probe(), rc::OK);
        w.op(r, "node2", OpKey::probe(), rc::NOT_RUNNING);
    }
    w.monitor("b", "node1", rc::NOT_RUNNING);
    assert_eq!(w.status_of("b"), "b Stopped (unmanaged)");
    assert_eq!(w.step(&[]), ["Stop c ( node1 ) due to node availability"]);
    assert_eq!(w.status_of("a"), "a Started node1");
}

#[test]
fn maintenance_resources_get_no_action_at_all() {
    let mut r = dummy("dummy");
    r.meta.maintenance = true;
    let config = build(&["node1"]).resource(r).config();
    let w = World {
        state: State::with_online_nodes(["node1"]),
        config,
        now: T0,
    };
    assert!(
        schedule(&w.config, &w.state, w.now).actions.is_empty(),
        "not even probes"
    );
}

#[test]
fn multiple_active_policies() {
    let rows: &[(MultipleActive, &[&str], &str)] = &[
        (
            MultipleActive::StopStart,
            &["Restart dummy ( node1 )"],
            "dummy Started node1",
        ),
        (
            MultipleActive::StopOnly,
            &[
                "Stop dummy ( node1 ) due to node availability",
                "Stop dummy ( node2 ) due to node availability",
            ],
            "dummy Stopped",
        ),
        (
            MultipleActive::Block,
            &[],
            "dummy Started [ node1 node2 ] (multiple active)",
        ),
        (
            MultipleActive::StopUnexpected,
            // Only node2's copy stops; crm_simulate calls that a restart where it stays.
            &["Restart dummy ( node1 )"],
            "dummy Started node1",
        ),
    ];
    for (policy, summary, status) in rows {
        let mut r = dummy("dummy");
        r.meta.multiple_active = *policy;
        let mut w = two_nodes(r);
        w.op("dummy", "node2", OpKey::probe(), rc::OK);
        assert_eq!(w.step(&[]), *summary, "{policy}");
        assert_eq!(w.status_of("dummy"), *status, "{policy}");
    }
}

#[test]
fn node_loss_without_fencing_recovers_at_once() {
    let mut w = two_nodes(dummy("dummy"));
    w.event(Event::NodeDown {
        node: "node1".into(),
    });
    assert_eq!(w.settle(), ["Start dummy ( node2 )"]);
    // It comes back and is probed; it prefers node1, so the resource moves back.
    w.event(Event::NodeUp {
        node: "node1".into(),
    });
    let t = schedule(&w.config, &w.state, w.now);
    assert!(t.actions.iter().any(|a| a.kind
        == ActionKind::Probe {
            resource: "dummy".into(),
            node: "node1".into()
        }));
    assert_eq!(w.settle(), ["Move dummy ( node2 -> node1 )"]);
}

#[test]
fn a_rejoining_node_still_running_the_old_copy_ends_with_one_copy() {
    let mut w = two_nodes(dummy("dummy"));
    w.event(Event::NodeDown {
        node: "node1".into(),
    });
    w.settle();
    w.event(Event::NodeUp {
        node: "node1".into(),
    });
    // The probe finds the old copy: the planned start on node1 is dropped.
    w.step(&[("dummy", OpName::Monitor, "node1", rc::OK)]);
    w.settle();
    assert_eq!(w.status_of("dummy"), "dummy Started node1");
}

#[test]
fn node_loss_with_fencing_fences_first_and_waits_for_it() {
    let mut w = build(&["node1", "node2"])
        .resource(dummy("dummy"))
        .location(loc("dummy", "node1", 100))
        .fencing()
        .world();
    w.event(Event::NodeDown {
        node: "node1".into(),
    });
    assert_eq!(w.status_of("dummy"), "dummy Started node1 (UNCLEAN)");
    // Fencing fails: nothing is recovered.
    w.step_with(&[], &["node1"]);
    assert_eq!(w.status_of("dummy"), "dummy Started node1 (UNCLEAN)");
    // It succeeds on the retry.
    assert_eq!(
        w.step(&[]),
        [
            "Fence (reboot) node1 'peer is no longer part of the cluster'",
            "Move dummy ( node1 -> node2 )"
        ]
    );
    assert_eq!(w.status_of("dummy"), "dummy Started node2");
}

#[test]
fn a_lost_node_that_rejoins_before_it_is_fenced_is_still_fenced_first() {
    let mut w = build(&["node1", "node2"])
        .resource(dummy("dummy"))
        .location(loc("dummy", "node1", 100))
        .fencing()
        .world();
    w.event(Event::NodeDown {
        node: "node1".into(),
    });
    w.event(Event::NodeUp {
        node: "node1".into(),
    });
    assert_eq!(
        w.status_of("dummy"),
        "dummy Started node1 (UNCLEAN)",
        "no trust before the fence"
    );
    assert_eq!(
        w.step(&[]),
        [
            "Fence (reboot) node1 'peer is no longer part of the cluster'",
            "Move dummy ( node1 -> node2 )"
        ]
    );
}

#[test]
fn a_restarted_daemon_reprobes_and_adopts_without_restarting() {
    let mut w = two_nodes(dummy("dummy"));
    w.monitor("dummy", "node1", rc::ERR_GENERIC);
    w.settle();
    // The daemon on node1 restarts: node1 rejoins while it was never seen leaving.
    w.event(Event::NodeUp {
        node: "node1".into(),
    });
    let t = schedule(&w.config, &w.state, w.now);
    assert!(t.actions.iter().any(|a| a.kind
        == ActionKind::Probe {
            resource: "dummy".into(),
            node: "node1".into()
        }));
    // The probe finds it running: the optimistic start is dropped and nothing restarts.
    w.step(&[("dummy", OpName::Monitor, "node1", rc::OK)]);
    assert_eq!(w.status_of("dummy"), "dummy Started node1");
    assert!(w.plan().is_empty());
    assert_eq!(
        w.fail_count("dummy", "node1"),
        1,
        "history survives the restart"
    );
}

#[test]
fn a_blocked_resource_stays_blocked_across_a_rejoin() {
    let mut w = two_nodes(with_on_fail(
        dummy("dummy"),
        OpName::Monitor,
        MON,
        OnFail::Block,
    ));
    w.monitor("dummy", "node1", rc::ERR_GENERIC);
    w.event(Event::NodeUp {
        node: "node1".into(),
    });
    assert_eq!(w.status_of("dummy"), "dummy FAILED node1 (blocked)");
    assert!(schedule(&w.config, &w.state, w.now).actions.is_empty());
}

#[test]
fn move_ban_and_clear() {
    let mut w = build(&["node1", "node2", "node3"])
        .resource(dummy("dummy"))
        .world();
    w.admin(AdminCommand::Move {
        resource: "dummy".into(),
        node: "node3".into(),
    });
    assert_eq!(w.settle(), ["Move dummy ( node1 -> node3 )"]);
    w.admin(AdminCommand::Ban {
        resource: "dummy".into(),
        node: "node3".into(),
    });
    assert_eq!(w.settle(), ["Move dummy ( node3 -> node1 )"]);
    w.admin(AdminCommand::Clear {
        resource: "dummy".into(),
    });
    assert!(w.settle().is_empty(), "equal scores: it stays where it is");
}

#[test]
fn cleanup_reprobes_and_forgets() {
    let mut w = two_nodes(dummy("dummy"));
    w.monitor("dummy", "node1", rc::ERR_GENERIC);
    w.settle();
    w.admin(AdminCommand::Cleanup {
        resource: Some("dummy".into()),
        node: None,
    });
    assert_eq!(w.fail_count("dummy", "node1"), 0);
    let t = schedule(&w.config, &w.state, w.now);
    let probes: Vec<_> = t
        .actions
        .iter()
        .filter(|a| matches!(a.kind, ActionKind::Probe { .. }))
        .collect();
    assert_eq!(probes.len(), 2, "both nodes are probed again");
    let start = t
        .actions
        .iter()
        .find(|a| matches!(a.kind, ActionKind::Start { .. }))
        .expect("optimistic start");
    assert!(
        probes.iter().all(|p| start.deps.contains(&p.id)),
        "the start waits for the probes"
    );
    // The probe finds it running on node1: the start is dropped, nothing restarts.
    w.step(&[("dummy", OpName::Monitor, "node1", rc::OK)]);
    assert_eq!(w.status_of("dummy"), "dummy Started node1");
    assert!(w.plan().is_empty());
}

#[test]
fn no_quorum_policies() {
    let rows: &[(NoQuorumPolicy, &[&str])] = &[
        (
            NoQuorumPolicy::Stop,
            &["Stop dummy ( node1 ) due to no quorum"],
        ),
        (
            NoQuorumPolicy::Demote,
            &["Stop dummy ( node1 ) due to no quorum"],
        ),
        (NoQuorumPolicy::Freeze, &[]),
        (NoQuorumPolicy::Ignore, &[]),
    ];
    for (policy, want) in rows {
        let mut w = build(&["node1", "node2"])
            .resource(dummy("dummy"))
            .location(loc("dummy", "node1", 100))
            .cluster(|c| c.no_quorum_policy = *policy)
            .world();
        w.event(Event::Quorum(false));
        assert_eq!(w.plan(), *want, "{policy}");
    }
    // Freeze: what runs may be recovered elsewhere (its role does not rise, as Pacemaker's
    // freeze has it); what is stopped does not start.
    let mut w = build(&["node1", "node2"])
        .resource(dummy("dummy"))
        .cluster(|c| c.no_quorum_policy = NoQuorumPolicy::Freeze)
        .world();
    w.event(Event::Quorum(false));
    w.monitor("dummy", "node1", rc::ERR_INSTALLED);
    assert_eq!(w.settle(), ["Recover dummy ( node1 -> node2 )"]);
    let config = build(&["node1", "node2"])
        .resource(dummy("dummy"))
        .cluster(|c| c.no_quorum_policy = NoQuorumPolicy::Freeze)
        .config();
    let mut state = State::with_online_nodes(["node1", "node2"]);
    state.no_quorum = true;
    let lines: Vec<String> = schedule(&config, &state, T0)
        .summary
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        lines,
        ["Start dummy ( node1 ) due to quorum freeze (blocked)"]
    );
}

#[test]
fn events_naming_unknown_things_are_refused() {
    let mut w = two_nodes(dummy("dummy"));
    let before = w.state.clone();
    let bad = [
        Event::NodeUp {
            node: "nope".into(),
        },
        Event::Admin(AdminCommand::Ban {
            resource: "nope".into(),
            node: "node1".into(),
        }),
        Event::OpResult(OpResult {
            resource: "dummy".into(),
            node: "nope".into(),
            op: OpKey::probe(),
            rc: 0,
            exit_reason: String::new(),
            status: warden_engine::rc::ExecStatus::Done,
            digest: None,
        }),
    ];
    for e in bad {
        assert!(apply(&w.config, &mut w.state, &e, w.now).is_err(), "{e:?}");
    }
    assert_eq!(w.state, before, "a refused event changes nothing");
    w.settle();
}

#[test]
fn a_monitor_of_the_stopped_role_finds_it_running_where_it_must_not_and_it_is_stopped() {
    let mut r = dummy("dummy");
    let mut m = OpSpec::new(OpName::Monitor, Duration::from_secs(30));
    m.role = OpRole::Stopped;
    r.ops.push(m);
    let mut w = two_nodes(r);
    assert_eq!(w.status_of("dummy"), "dummy Started node1");
    let stopped_monitor = OpKey::new(OpName::Monitor, Duration::from_secs(30));
    // "Not running" on node2 is what it expects: nothing happens.
    w.op("dummy", "node2", stopped_monitor, rc::NOT_RUNNING);
    assert!(w.plan().is_empty());
    assert!(expected(
        w.config.resource("dummy").expect("dummy"),
        stopped_monitor,
        rc::NOT_RUNNING
    ));
    // Running on node2 too: a failure there, and it is stopped there (the resource is
    // recovered where it stays, as crm_simulate says it).
    w.op("dummy", "node2", stopped_monitor, rc::OK);
    assert_eq!(w.fail_count("dummy", "node2"), 1);
    assert_eq!(w.plan(), ["Recover dummy ( node1 )"]);
    assert!(
        schedule(&w.config, &w.state, w.now)
            .actions
            .iter()
            .any(|a| a.kind.to_string() == "dummy_stop_0 on node2"),
        "stopped on node2"
    );
    w.settle();
    assert_eq!(w.status_of("dummy"), "dummy Started node1");
    // A stale result of that monitor on the node where it runs is ignored.
    w.op("dummy", "node1", stopped_monitor, rc::OK);
    assert_eq!(w.fail_count("dummy", "node1"), 0);
}

#[test]
fn a_blocked_stop_failure_on_a_node_then_lost_is_moved_after_the_fence() {
    // on_fail = "block" on the stop: FAILED and blocked on node1, nothing happens...
    let r = with_on_fail(dummy("dummy"), OpName::Stop, Duration::ZERO, OnFail::Block);
    let mut w = build(&["node1", "node2"])
        .resource(r)
        .location(loc("dummy", "node1", 100))
        .fencing()
        .world();
    w.monitor("dummy", "node1", rc::ERR_GENERIC);
    w.step(&[("dummy", OpName::Stop, "node1", rc::ERR_GENERIC)]);
    assert_eq!(w.status_of("dummy"), "dummy FAILED node1 (blocked)");
    assert!(w.plan().is_empty());
    // ...until node1 is lost: the fence settles the failure, and it moves.
    w.event(Event::NodeDown {
        node: "node1".into(),
    });
    assert_eq!(
        w.settle(),
        [
            "Fence (reboot) node1 'peer is no longer part of the cluster'",
            "Move dummy ( node1 -> node2 )"
        ]
    );
    assert_eq!(w.status_of("dummy"), "dummy Started node2");
}

#[test]
fn without_quorum_a_lost_node_is_not_fenced_and_what_it_ran_stays_there() {
    // As Pacemaker: the other side may hold quorum and fence this one; a node that is no
    // longer a member is fenced only with quorum (or no_quorum_policy = "ignore").
    let lost = |policy: NoQuorumPolicy| {
        let mut w = build(&["node1", "node2", "node3"])
            .resource(dummy("dummy"))
            .location(loc("dummy", "node2", 100))
            .fencing()
            .cluster(|c| c.no_quorum_policy = policy)
            .world();
        assert_eq!(w.status_of("dummy"), "dummy Started node2");
        w.event(Event::NodeDown {
            node: "node2".into(),
        });
        w.state.no_quorum = true;
        w.plan()
    };
    assert_eq!(
        lost(NoQuorumPolicy::Stop),
        ["Stop dummy ( node2 ) due to no quorum (blocked)"]
    );
    assert_eq!(
        lost(NoQuorumPolicy::Ignore),
        [
            "Fence (reboot) node2 'peer is no longer part of the cluster'",
            "Move dummy ( node2 -> node1 )"
        ]
    );
}

#[test]
fn a_node_is_unfenced_again_where_an_unfencing_device_changed() {
    // As Pacemaker (unfence-parameters, unfence-definition): where an unfencing device
    // runs with another definition, its node is unfenced again, and what requires
    // unfencing there stops before and starts after that (`due to required stonith`).
    // What requires only fencing stays; so does the other node.
    let config = |program: &str, devices: &str| {
        let mut disk = dummy("disk");
        disk.meta.requires = Requires::Unfencing;
        let mut copies = dummy("vol");
        copies.meta.requires = Requires::Unfencing;
        copies.copies = Some(Copies::default());
        build(&["node1", "node2"])
            .resource(scsi_device(program, devices))
            .resource(disk)
            .resource(copies)
            .resource(dummy("web"))
            .location(loc("scsi", "node1", 10))
            .location(loc("disk", "node1", 10))
            .location(loc("web", "node1", 10))
            .unfencing()
    };
    let mut w = config("fence_scsi", "/dev/sdb").world();
    assert_eq!(w.status_of("scsi"), "scsi Started node1");
    assert_eq!(w.status_of("disk"), "disk Started node1");
    assert!(w.plan().is_empty());

    w.config = config("fence_scsi", "/dev/sdc").config();
    let t = schedule(&w.config, &w.state, w.now);
    assert_eq!(
        w.plan(),
        [
            "Fence (on) node1 'Device parameters changed'",
            "Restart scsi ( node1 ) due to resource definition change",
            "Restart disk ( node1 ) due to required stonith",
            "Restart vol ( node1 ) due to required stonith",
        ]
    );
    let unfence = find(&t, |k| matches!(k, ActionKind::Unfence { .. }));
    let op = |op: OpName, r: &str| {
        find(&t, |k| {
            k.resource() == Some(r) && k.node() == "node1" && k.op().is_some_and(|o| o.name == op)
        })
    };
    for r in ["scsi", "disk", "vol"] {
        assert!(depends(&t, unfence, op(OpName::Stop, r)), "{r} stop");
    }
    for r in ["disk", "vol"] {
        assert!(depends(&t, op(OpName::Start, r), unfence), "{r} start");
    }
    w.settle();
    assert!(w.state.node("node1").is_some_and(|s| s.unfenced));
    assert!(w.plan().is_empty());

    // Another agent: `Device definition changed`, and the device restarts without a reason.
    w.config = config("fence_mpath", "/dev/sdc").config();
    assert_eq!(
        w.plan(),
        [
            "Fence (on) node1 'Device definition changed'",
            "Restart scsi ( node1 )",
            "Restart disk ( node1 ) due to required stonith",
            "Restart vol ( node1 ) due to required stonith",
        ]
    );
    w.settle();
    assert!(w.plan().is_empty());
}

#[test]
fn a_node_is_unfenced_before_what_requires_unfencing_is_probed_or_started_there() {
    // A fence device that unfences (fence_scsi): each node is unfenced (the device's `on`)
    // before `disk`, which requires unfencing, is probed there; once unfenced, not again,
    // until the node leaves and joins again. What requires only fencing waits for nothing.
    let mut disk = dummy("disk");
    disk.meta.requires = Requires::Unfencing;
    let mut w = build(&["node1", "node2"])
        .resource(disk)
        .location(loc("disk", "node1", 10))
        .unfencing()
        .world();
    // `world` settled the cluster: both nodes were unfenced first.
    for n in ["node1", "node2"] {
        assert!(w.state.node(n).is_some_and(|s| s.unfenced), "{n}");
    }
    assert_eq!(w.status_of("disk"), "disk Started node1");
    assert!(w.plan().is_empty());
    // node2 leaves and joins again: unfenced again before the probe there.
    w.event(Event::NodeDown {
        node: "node2".into(),
    });
    w.settle();
    w.event(Event::NodeUp {
        node: "node2".into(),
    });
    let t = schedule(&w.config, &w.state, w.now);
    assert_eq!(w.plan(), ["Fence (on) node2 'required by disk monitor'"]);
    let unfence = find(&t, |k| matches!(k, ActionKind::Unfence { .. }));
    let probe = find(
        &t,
        |k| matches!(k, ActionKind::Probe { node, .. } if node == "node2"),
    );
    assert!(depends(&t, probe, unfence));
    // The unfence fails: the probe does not run, and the next transition tries again.
    w.step_with(&[], &["node2"]);
    assert!(!w.state.node("node2").is_some_and(|s| s.unfenced));
    assert_eq!(w.plan(), ["Fence (on) node2 'required by disk monitor'"]);
    w.settle();
    assert!(w.state.node("node2").is_some_and(|s| s.unfenced));

    // Requiring fencing only: no unfencing.
    let mut w = build(&["node1", "node2"])
        .resource(dummy("disk"))
        .unfencing()
        .world();
    assert!(!w.state.node("node1").is_some_and(|s| s.unfenced));
    w.event(Event::NodeUp {
        node: "node1".into(),
    });
    assert!(w.settle().iter().all(|l| !l.contains("Fence (on)")));
}
