//! Copies resources: copies, promotion scores, promote and demote
//! failures, on_fail = "demote", demote before promote, fence before promote, notifications,
//! and constraints with roles and actions, through the public engine API.

mod common;

use std::time::Duration;

use common::*;
use warden_engine::*;

const PROMOTED_MON: Duration = Duration::from_secs(9);

/// A promotable Dummy-like resource: monitors every 10 s (unpromoted) and 9 s (promoted);
/// every copy has promotion score 5 until its agent sets one.
fn stateful(id: &str) -> ResourceSpec {
    let mut r = dummy(id);
    let mut promoted = OpSpec::new(OpName::Monitor, PROMOTED_MON);
    promoted.role = OpRole::Promoted;
    r.ops.push(promoted);
    r.copies = Some(Copies {
        score: Some(Score::new(5)),
        ..Copies::promotable()
    });
    r
}

fn with(mut r: ResourceSpec, f: impl FnOnce(&mut Copies)) -> ResourceSpec {
    f(r.copies.as_mut().expect("promotable"));
    r
}

fn three(r: ResourceSpec) -> Builder {
    build(&["node1", "node2", "node3"]).resource(r)
}

fn score(w: &mut World, node: &str, s: i64) {
    w.event(Event::PromotionScore {
        resource: "db".into(),
        node: node.into(),
        score: Some(Score::new(s)),
    });
}

fn promote_on(t: &Transition, node: &str) -> ActionId {
    find(
        t,
        |k| matches!(k, ActionKind::Promote { node: n, .. } if n == node),
    )
}

fn demote_on(t: &Transition, node: &str) -> ActionId {
    find(
        t,
        |k| matches!(k, ActionKind::Demote { node: n, .. } if n == node),
    )
}

fn promoted_monitor(w: &mut World, node: &str, rc: i32) {
    w.op("db", node, OpKey::new(OpName::Monitor, PROMOTED_MON), rc);
}

#[test]
fn copies_start_everywhere_and_one_is_promoted() {
    let config = three(stateful("db")).config();
    let mut world = World {
        state: State::with_online_nodes(config.nodes().iter().map(String::as_str)),
        config,
        now: T0,
    };
    let summary = world.settle();
    assert_eq!(
        summary,
        [
            "Promote db ( Stopped -> Promoted node1 )",
            "Start db ( node2 )",
            "Start db ( node3 )"
        ]
    );
    assert_eq!(
        world.status_of("db"),
        "db Promoted [ node1 ] Unpromoted [ node2 node3 ]"
    );
}

#[test]
fn clone_max_and_promoted_max_limit_copies() {
    let cases: &[(Option<u32>, u32, &str)] = &[
        (Some(2), 1, "db Promoted [ node1 ] Unpromoted [ node2 ]"),
        (None, 2, "db Promoted [ node1 node2 ] Unpromoted [ node3 ]"),
        (Some(1), 1, "db Promoted [ node1 ]"),
        (None, 0, "db Unpromoted [ node1 node2 node3 ]"),
    ];
    for &(clone_max, promoted_max, want) in cases {
        let w = three(with(stateful("db"), |p| {
            p.clone_max = clone_max;
            p.promoted_max = promoted_max;
        }))
        .world();
        assert_eq!(
            w.status_of("db"),
            want,
            "clone_max {clone_max:?} promoted_max {promoted_max}"
        );
    }
}

#[test]
fn promotion_scores_come_from_the_agent_and_promoted_locations() {
    // Without any score, nothing is promoted.
    let w = three(with(stateful("db"), |p| p.score = None)).world();
    assert_eq!(w.status_of("db"), "db Unpromoted [ node1 node2 node3 ]");

    // The agent's score moves the promotion: demote first, then promote.
    let mut w = three(stateful("db")).world();
    score(&mut w, "node2", 10);
    let t = schedule(&w.config, &w.state, w.now);
    assert_eq!(
        w.plan(),
        [
            "Demote db ( Promoted -> Unpromoted node1 )",
            "Promote db ( Unpromoted -> Promoted node2 )"
        ]
    );
    assert!(depends(&t, promote_on(&t, "node2"), demote_on(&t, "node1")));
    w.settle();
    assert_eq!(
        w.status_of("db"),
        "db Promoted [ node2 ] Unpromoted [ node1 node3 ]"
    );

    // A role = "promoted" location adds to it; -INFINITY forbids promotion there.
    let w = three(stateful("db"))
        .location(Location {
            role: OpRole::Promoted,
            ..Location::new("db", "node3", Score::new(100))
        })
        .world();
    assert_eq!(
        w.status_of("db"),
        "db Promoted [ node3 ] Unpromoted [ node1 node2 ]"
    );
    let w = three(stateful("db"))
        .location(Location {
            role: OpRole::Promoted,
            ..Location::new("db", "node1", Score::MINUS_INFINITY)
        })
        .world();
    assert_eq!(
        w.status_of("db"),
        "db Promoted [ node2 ] Unpromoted [ node1 node3 ]"
    );
}

#[test]
fn stickiness_keeps_the_promotion_on_equal_scores() {
    let mut w = three(stateful("db")).world();
    // Another copy reaches the same score: the promoted one stays.
    score(&mut w, "node2", 5);
    assert!(w.plan().is_empty(), "{:?}", w.plan());
}

#[test]
fn monitor_results_by_role() {
    // (monitor, node, rc, expected summary)
    let rows: &[(bool, &str, i32, &[&str])] = &[
        // Expected results change nothing.
        (true, "node1", rc::RUNNING_PROMOTED, &[]),
        (false, "node2", rc::OK, &[]),
        (true, "node1", rc::DEGRADED_PROMOTED, &[]),
        // rc 9 and any failure of the promoted copy: demote, stop, start, promote again.
        (
            true,
            "node1",
            rc::FAILED_PROMOTED,
            &["Recover db ( Promoted node1 )"],
        ),
        (
            true,
            "node1",
            rc::ERR_GENERIC,
            &["Recover db ( Promoted node1 )"],
        ),
        // The promoted copy says it is merely running: a failure too.
        (true, "node1", rc::OK, &["Recover db ( Promoted node1 )"]),
        // An unpromoted copy saying it is promoted is a failure.
        (
            false,
            "node2",
            rc::RUNNING_PROMOTED,
            &["Recover db ( Unpromoted node2 )"],
        ),
        (
            false,
            "node3",
            rc::NOT_RUNNING,
            &["Recover db ( Unpromoted node3 )"],
        ),
    ];
    for &(promoted, node, code, want) in rows {
        let mut w = three(stateful("db")).world();
        if promoted {
            promoted_monitor(&mut w, node, code);
        } else {
            w.monitor("db", node, code);
        }
        assert_eq!(w.plan(), want, "promoted={promoted} {node} rc {code}");
        let failed = !want.is_empty();
        assert_eq!(w.fail_count("db", node), u32::from(failed), "rc {code}");
        if failed {
            let t = schedule(&w.config, &w.state, w.now);
            if promoted {
                // Demote, stop, start and promote again, in that order.
                let d = demote_on(&t, node);
                let p = promote_on(&t, node);
                assert!(depends(&t, p, d));
            }
            w.settle();
            assert_eq!(
                w.status_of("db"),
                "db Promoted [ node1 ] Unpromoted [ node2 node3 ]"
            );
        }
    }
}

#[test]
fn a_failed_promoted_copy_at_its_threshold_hands_over_the_promotion() {
    let mut r = stateful("db");
    r.meta.migration_threshold = 1;
    let mut w = three(r).world();
    promoted_monitor(&mut w, "node1", rc::FAILED_PROMOTED);
    let t = schedule(&w.config, &w.state, w.now);
    assert_eq!(
        w.plan(),
        [
            "Stop db ( Promoted node1 ) due to node availability",
            "Promote db ( Unpromoted -> Promoted node2 )"
        ]
    );
    let stop = find(
        &t,
        |k| matches!(k, ActionKind::Stop { node, .. } if node == "node1"),
    );
    assert!(depends(&t, promote_on(&t, "node2"), stop));
    assert!(depends(&t, stop, demote_on(&t, "node1")));
    w.settle();
    assert_eq!(
        w.status_of("db"),
        "db Promoted [ node2 ] Unpromoted [ node3 ]"
    );
}

#[test]
fn on_fail_demote_demotes_and_promotes_again_without_a_stop() {
    let r = with_on_fail(
        stateful("db"),
        OpName::Monitor,
        PROMOTED_MON,
        OnFail::Demote,
    );
    let mut w = three(r).world();
    promoted_monitor(&mut w, "node1", rc::ERR_GENERIC);
    assert_eq!(w.plan(), ["Re-promote db ( Promoted node1 )"]);
    let t = schedule(&w.config, &w.state, w.now);
    assert!(
        !t.actions
            .iter()
            .any(|a| matches!(a.kind, ActionKind::Stop { .. }))
    );
    assert_eq!(w.fail_count("db", "node1"), 1);
    w.settle();
    assert_eq!(
        w.status_of("db"),
        "db Promoted [ node1 ] Unpromoted [ node2 node3 ]"
    );
}

#[test]
fn a_rule_on_the_fail_count_keeps_the_promotion_off_the_node_that_failed() {
    // Pacemaker's idiom with on-fail=demote (on_fail_demote2): a promoted-role location of
    // -INFINITY where `fail-count-db#monitor_9000 gt 0`. The failed copy is demoted and
    // another promoted, rather than promoted again where it failed.
    let r = with_on_fail(
        stateful("db"),
        OpName::Monitor,
        PROMOTED_MON,
        OnFail::Demote,
    );
    let config = three(r)
        .config()
        .with_rule_locations(vec![RuleLocation {
            resource: "db".into(),
            rule: Rule::parse("fail-count-db#monitor_9000 gt 0").expect("rule"),
            score: RuleScore::Score(Score::MINUS_INFINITY),
            role: OpRole::Promoted,
        }])
        .expect("rule");
    let mut w = World {
        state: State::with_online_nodes(config.nodes().iter().map(String::as_str)),
        config,
        now: T0,
    };
    w.settle();
    assert_eq!(
        w.status_of("db"),
        "db Promoted [ node1 ] Unpromoted [ node2 node3 ]"
    );
    promoted_monitor(&mut w, "node1", rc::ERR_GENERIC);
    assert_eq!(
        w.plan(),
        [
            "Demote db ( Promoted -> Unpromoted node1 )",
            "Promote db ( Unpromoted -> Promoted node2 )"
        ]
    );
    w.settle();
    assert_eq!(
        w.status_of("db"),
        "db Promoted [ node2 ] Unpromoted [ node1 node3 ]"
    );
}

#[test]
fn promote_and_demote_failures() {
    // A failed promote: fail count +1; demote, stop, start, and the promotion is tried again.
    let mut w = three(with(stateful("db"), |p| p.score = None)).world();
    score(&mut w, "node2", 10);
    w.step(&[("db", OpName::Promote, "node2", rc::ERR_GENERIC)]);
    assert_eq!(w.fail_count("db", "node2"), 1);
    assert_eq!(w.plan(), ["Recover db ( Promoted node2 )"]);
    let t = schedule(&w.config, &w.state, w.now);
    assert!(depends(&t, promote_on(&t, "node2"), demote_on(&t, "node2")));
    w.settle();
    assert_eq!(
        w.status_of("db"),
        "db Promoted [ node2 ] Unpromoted [ node1 node3 ]"
    );

    // A failed demote: fail count +1; stopped without another demote, started again.
    let mut w = three(stateful("db")).world();
    score(&mut w, "node3", 50);
    w.step(&[("db", OpName::Demote, "node1", rc::ERR_GENERIC)]);
    assert_eq!(w.fail_count("db", "node1"), 1);
    // Still promoted as far as anyone knows: node3 must wait.
    assert_eq!(
        w.status_of("db"),
        "db Unpromoted [ node2 node3 ] FAILED Promoted [ node1 ]"
    );
    let t = schedule(&w.config, &w.state, w.now);
    assert!(
        !t.actions
            .iter()
            .any(|a| matches!(a.kind, ActionKind::Demote { .. }))
    );
    let stop = find(
        &t,
        |k| matches!(k, ActionKind::Stop { node, .. } if node == "node1"),
    );
    assert!(depends(&t, promote_on(&t, "node3"), stop));
    // Summarised as Pacemaker records a failed demote: the copy is unpromoted.
    assert_eq!(
        w.plan(),
        [
            "Recover db ( Unpromoted node1 )",
            "Promote db ( Unpromoted -> Promoted node3 )"
        ]
    );
    w.settle();
    assert_eq!(
        w.status_of("db"),
        "db Promoted [ node3 ] Unpromoted [ node1 node2 ]"
    );
}

#[test]
fn node_loss_promotes_a_backup_only_after_fencing() {
    let mut w = three(stateful("db")).fencing().world();
    w.event(Event::NodeDown {
        node: "node1".into(),
    });
    let t = schedule(&w.config, &w.state, w.now);
    assert_eq!(
        w.plan(),
        [
            "Fence (reboot) node1 'peer is no longer part of the cluster'",
            // The lost node's copy stops with the fence, as crm_simulate lists it.
            "Stop db ( Promoted node1 ) due to node availability",
            "Promote db ( Unpromoted -> Promoted node2 )"
        ]
    );
    let fence = find(&t, |k| matches!(k, ActionKind::Fence { .. }));
    assert!(depends(&t, promote_on(&t, "node2"), fence));
    // The fence fails: nothing is promoted.
    w.step_with(&[], &["node1"]);
    assert_eq!(
        w.status_of("db"),
        "db Promoted [ node1 ] Unpromoted [ node2 node3 ] (UNCLEAN)"
    );
    w.settle();
    assert_eq!(
        w.status_of("db"),
        "db Promoted [ node2 ] Unpromoted [ node3 ]"
    );

    // Without fencing, the backup is promoted at once.
    let mut w = three(stateful("db")).world();
    w.event(Event::NodeDown {
        node: "node1".into(),
    });
    assert_eq!(w.plan(), ["Promote db ( Unpromoted -> Promoted node2 )"]);
}

#[test]
fn probes_finding_two_promoted_copies_demote_one() {
    let config = three(stateful("db")).config();
    let mut w = World {
        state: State::with_online_nodes(config.nodes().iter().map(String::as_str)),
        config,
        now: T0,
    };
    for (node, code) in [
        ("node1", rc::RUNNING_PROMOTED),
        ("node2", rc::RUNNING_PROMOTED),
        ("node3", rc::NOT_RUNNING),
    ] {
        w.op("db", node, OpKey::probe(), code);
    }
    assert_eq!(
        w.plan(),
        [
            "Demote db ( Promoted -> Unpromoted node2 )",
            "Start db ( node3 )"
        ]
    );
}

#[test]
fn disable_demotes_then_stops_and_quorum_demote_keeps_copies_running() {
    let mut w = three(stateful("db")).world();
    w.admin(AdminCommand::Disable {
        resource: "db".into(),
    });
    let t = schedule(&w.config, &w.state, w.now);
    let stop1 = find(
        &t,
        |k| matches!(k, ActionKind::Stop { node, .. } if node == "node1"),
    );
    assert!(depends(&t, stop1, demote_on(&t, "node1")));
    w.settle();
    assert_eq!(w.status_of("db"), "db Stopped (disabled)");

    let mut w = three(stateful("db"))
        .cluster(|c| c.no_quorum_policy = NoQuorumPolicy::Demote)
        .world();
    w.event(Event::Quorum(false));
    assert_eq!(w.plan(), ["Demote db ( Promoted -> Unpromoted node1 )"]);
    w.settle();
    assert_eq!(w.status_of("db"), "db Unpromoted [ node1 node2 node3 ]");
}

#[test]
fn colocation_with_the_promoted_copy_follows_the_promotion() {
    let mut w = three(stateful("db"))
        .resource(dummy("vip"))
        .colocation_roles(
            "vip",
            OpRole::Started,
            "db",
            OpRole::Promoted,
            Score::INFINITY,
        )
        .world();
    assert_eq!(w.status_of("vip"), "vip Started node1");
    score(&mut w, "node3", 50);
    assert_eq!(
        w.plan(),
        [
            "Demote db ( Promoted -> Unpromoted node1 )",
            "Promote db ( Unpromoted -> Promoted node3 )",
            "Move vip ( node1 -> node3 )"
        ]
    );
    w.settle();
    assert_eq!(w.status_of("vip"), "vip Started node3");
}

#[test]
fn colocation_with_the_unpromoted_role_follows_the_replicas() {
    // "ro" lives with a replica (an unpromoted copy), "backup" never on one; when the
    // promotion moves, so do both (Pacemaker's with-rsc-role="Unpromoted").
    let mut w = build(&["node1", "node2"])
        .resource(stateful("db"))
        .resource(dummy("ro"))
        .resource(dummy("backup"))
        .location(loc("ro", "node1", 50))
        .colocation_roles(
            "ro",
            OpRole::Started,
            "db",
            OpRole::Unpromoted,
            Score::new(1000),
        )
        .colocation_roles(
            "backup",
            OpRole::Started,
            "db",
            OpRole::Unpromoted,
            Score::MINUS_INFINITY,
        )
        .world();
    assert_eq!(
        w.status_of("db"),
        "db Promoted [ node1 ] Unpromoted [ node2 ]"
    );
    assert_eq!(w.status_of("ro"), "ro Started node2");
    assert_eq!(w.status_of("backup"), "backup Started node1");
    score(&mut w, "node2", 50);
    assert_eq!(
        w.plan(),
        [
            "Demote db ( Promoted -> Unpromoted node1 )",
            "Promote db ( Unpromoted -> Promoted node2 )",
            "Move ro ( node2 -> node1 )",
            "Move backup ( node1 -> node2 )"
        ]
    );
    w.settle();
    assert_eq!(w.status_of("ro"), "ro Started node1");
    assert_eq!(w.status_of("backup"), "backup Started node2");
}

#[test]
fn a_colocation_role_must_be_one_the_resources_have() {
    let plain = build(&["node1", "node2"])
        .resource(dummy("a"))
        .resource(dummy("b"))
        .colocation_roles(
            "a",
            OpRole::Started,
            "b",
            OpRole::Unpromoted,
            Score::INFINITY,
        )
        .try_config()
        .expect_err("b has no roles");
    assert!(
        plain.to_string().contains("needs \"b\" to be promotable"),
        "{plain}"
    );
    let stopped = build(&["node1", "node2"])
        .resource(stateful("db"))
        .resource(dummy("b"))
        .colocation_roles("db", OpRole::Stopped, "b", OpRole::Started, Score::INFINITY)
        .try_config()
        .expect_err("what is stopped is placed nowhere");
    assert!(
        stopped
            .to_string()
            .contains("role \"stopped\" is not allowed here"),
        "{stopped}"
    );
}

#[test]
fn unpromoted_copies_colocated_with_a_resource_keep_the_promotion_off_its_node() {
    // db's unpromoted copy goes with "a": a positive score places no copy (both nodes run
    // one) but takes that much from the promotion where "a" runs, so when "a" moves to
    // node1 the promotion leaves it (Pacemaker's colo_unpromoted_w_native).
    let mut w = build(&["node1", "node2"])
        .resource(dummy("a"))
        .resource(stateful("db"))
        .location(loc("a", "node2", 50))
        .colocation_roles(
            "db",
            OpRole::Unpromoted,
            "a",
            OpRole::Started,
            Score::INFINITY,
        )
        .world();
    assert_eq!(w.status_of("a"), "a Started node2");
    assert_eq!(
        w.status_of("db"),
        "db Promoted [ node1 ] Unpromoted [ node2 ]"
    );
    w.admin(AdminCommand::Move {
        resource: "a".into(),
        node: "node1".into(),
    });
    assert_eq!(
        w.plan(),
        [
            "Move a ( node2 -> node1 )",
            "Demote db ( Promoted -> Unpromoted node1 )",
            "Promote db ( Unpromoted -> Promoted node2 )"
        ]
    );
    w.settle();
    assert_eq!(
        w.status_of("db"),
        "db Promoted [ node2 ] Unpromoted [ node1 ]"
    );
}

#[test]
fn a_promotion_held_by_what_cannot_start_is_listed_blocked() {
    // No copy has a score of its own: what the promoted role is colocated with is what
    // promotes one (Pacemaker's default priority of -1, plus INFINITY). "vip" is placed on
    // node1 but cannot start (it waits for "gate", which is stopped): the copy there still
    // starts, its promotion is listed blocked, and no other copy is promoted instead.
    let mut gate = dummy("gate");
    gate.meta.target_role = TargetRole::Stopped;
    let mut w = build(&["node1", "node2"])
        .resource(with(stateful("db"), |c| c.score = None))
        .resource(dummy("vip"))
        .resource(gate)
        .order("gate", "vip", OrderKind::Mandatory)
        .colocation_roles(
            "db",
            OpRole::Promoted,
            "vip",
            OpRole::Started,
            Score::INFINITY,
        )
        .world();
    assert_eq!(w.status_of("db"), "db Unpromoted [ node1 node2 ]");
    let mut plan = w.plan();
    plan.sort();
    assert_eq!(
        plan,
        [
            "Promote db ( Unpromoted -> Promoted node1 ) due to colocation with vip (blocked)",
            "Start vip ( node1 ) due to unrunnable gate start (blocked)",
        ]
    );
    // Once "gate" may run, so does "vip", and the copy beside it is promoted.
    w.admin(AdminCommand::Enable {
        resource: "gate".into(),
    });
    w.settle();
    assert_eq!(w.status_of("vip"), "vip Started node1");
    assert_eq!(
        w.status_of("db"),
        "db Promoted [ node1 ] Unpromoted [ node2 ]"
    );
}

#[test]
fn the_promoted_copy_can_be_colocated_with_another_resource() {
    let w = three(stateful("db"))
        .resource(dummy("vip"))
        .location(loc("vip", "node2", 100))
        .colocation_roles(
            "db",
            OpRole::Promoted,
            "vip",
            OpRole::Started,
            Score::INFINITY,
        )
        .world();
    assert_eq!(w.status_of("vip"), "vip Started node2");
    assert_eq!(
        w.status_of("db"),
        "db Promoted [ node2 ] Unpromoted [ node1 node3 ]"
    );
}

#[test]
fn order_on_promote_waits_for_the_promotion() {
    let config = three(stateful("db"))
        .resource(dummy("app"))
        .order_actions(OpName::Promote, "db", OpName::Start, "app")
        .config();
    let state = State::with_online_nodes(config.nodes().iter().map(String::as_str));
    let mut w = World {
        config,
        state,
        now: T0,
    };
    // First transition: probes, starts, the promote, and app after it.
    let t = schedule(&w.config, &w.state, w.now);
    let app = find(
        &t,
        |k| matches!(k, ActionKind::Start { resource, .. } if resource == "app"),
    );
    assert!(depends(&t, app, promote_on(&t, "node1")));
    w.settle();
    assert_eq!(w.status_of("app"), "app Started node1");

    // No copy may be promoted any more: app stops, and says why.
    w.event(Event::PromotionScore {
        resource: "db".into(),
        node: "node1".into(),
        score: Some(Score::MINUS_INFINITY),
    });
    for n in ["node2", "node3"] {
        score(&mut w, n, -1);
    }
    let t = schedule(&w.config, &w.state, w.now);
    assert_eq!(
        w.plan(),
        [
            "Demote db ( Promoted -> Unpromoted node1 )",
            "Stop app ( node1 ) due to unrunnable db promote"
        ]
    );
    // Undone in reverse: app stops before db is demoted.
    let stop = find(
        &t,
        |k| matches!(k, ActionKind::Stop { resource, .. } if resource == "app"),
    );
    assert!(depends(&t, demote_on(&t, "node1"), stop));
}

#[test]
fn notifications_wrap_each_kind_of_action() {
    let config = three(with(stateful("db"), |p| p.notify = true)).config();
    let state = State::with_online_nodes(config.nodes().iter().map(String::as_str));
    let mut state2 = state.clone();
    // Probe everything first.
    let t = schedule(&config, &state, T0);
    for a in &t.actions {
        if let ActionKind::Probe { node, .. } = &a.kind {
            apply(
                &config,
                &mut state2,
                &Event::OpResult(OpResult {
                    resource: "db".into(),
                    node: node.clone(),
                    op: OpKey::probe(),
                    rc: rc::NOT_RUNNING,
                    exit_reason: String::new(),
                    status: warden_engine::rc::ExecStatus::Done,
                    digest: None,
                }),
                T0,
            )
            .expect("probe result applies");
        }
    }
    let t = schedule(&config, &state2, T0);
    let kinds: Vec<String> = t.actions.iter().map(|a| a.kind.to_string()).collect();
    // Nothing runs yet, so no pre-start notification; post-start to the three new copies,
    // then pre and post promote to all three around the promote.
    assert_eq!(
        kinds,
        [
            "db_start_0 on node1",
            "db_start_0 on node2",
            "db_start_0 on node3",
            "db_post_notify_start_0 on node1",
            "db_post_notify_start_0 on node2",
            "db_post_notify_start_0 on node3",
            "db_pre_notify_promote_0 on node1",
            "db_pre_notify_promote_0 on node2",
            "db_pre_notify_promote_0 on node3",
            "db_promote_0 on node1",
            "db_post_notify_promote_0 on node1",
            "db_post_notify_promote_0 on node2",
            "db_post_notify_promote_0 on node3",
        ]
        .map(String::from)
    );
    // Each waits for the one before it in this list.
    for w in t.actions.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        let same_round =
            a.kind.to_string().split(" on ").next() == b.kind.to_string().split(" on ").next();
        if !same_round {
            assert!(depends(&t, b.id, a.id), "{} waits for {}", b.kind, a.kind);
        }
    }
    let ActionKind::Notify { notification, .. } = &t.actions[6].kind else {
        panic!("a notification");
    };
    assert_eq!(notification.kind, NotifyKind::Pre);
    assert_eq!(notification.operation, OpName::Promote);
    assert_eq!(notification.start, ["node1", "node2", "node3"]);
    assert_eq!(notification.promote, ["node1"]);
    assert!(notification.active.is_empty());
    // Notification failures are ignored: the promote still runs.
    let mut s = state2.clone();
    let results = execute(&config, &mut s, &t, T0, |k| match k {
        ActionKind::Notify { .. } => Outcome::rc(rc::ERR_GENERIC),
        k => default_outcome(k),
    });
    assert!(results.iter().all(|r| r.ok));
    assert_eq!(s.on_node("db", "node1").role, Role::Promoted);
    assert_eq!(s.on_node("db", "node1").fail_counts.len(), 0);
}

#[test]
fn no_copy_is_promoted_beside_what_must_never_be_with_its_promoted_role_and_cannot_stop() {
    // db's promoted copy must never be with a. a cannot stop on node1 (b, ordered after it,
    // is blocked there), so db is promoted elsewhere, not on node1 where a stays.
    let config = |a_stopped: bool| {
        let mut a = dummy("a");
        if a_stopped {
            a.meta.target_role = TargetRole::Stopped;
        }
        build(&["node1", "node2"])
            .resource(a)
            .resource(dummy("b"))
            .resource(with(stateful("db"), |c| c.score = None))
            .location(loc("a", "node1", 100))
            .location(loc("b", "node1", 100))
            .order("a", "b", OrderKind::Mandatory)
            .colocation_roles(
                "db",
                OpRole::Promoted,
                "a",
                OpRole::Started,
                Score::MINUS_INFINITY,
            )
            .config()
    };
    let mut w = World {
        config: config(false),
        state: State::with_online_nodes(["node1", "node2"]),
        now: T0,
    };
    w.settle();
    w.fail_stop("b", "node1");
    w.config = config(true);
    score(&mut w, "node1", 100);
    score(&mut w, "node2", 10);
    w.settle();
    assert_eq!(
        w.status_of("db"),
        "db Promoted [ node2 ] Unpromoted [ node1 ]"
    );
}

#[test]
fn target_role_unpromoted_runs_every_copy_and_promotes_none() {
    // Pacemaker's target-role=Unpromoted: the promoted copy demotes, nothing is promoted
    // in its place, and the copies keep running; on a resource without roles it is started.
    let mut w = three(stateful("db")).world();
    assert_eq!(
        w.status_of("db"),
        "db Promoted [ node1 ] Unpromoted [ node2 node3 ]"
    );
    let mut db = stateful("db");
    db.meta.target_role = TargetRole::Unpromoted;
    w.config = three(db).config();
    assert_eq!(w.settle(), ["Demote db ( Promoted -> Unpromoted node1 )"]);
    assert_eq!(w.status_of("db"), "db Unpromoted [ node1 node2 node3 ]");
    let mut plain = dummy("web");
    plain.meta.target_role = TargetRole::Unpromoted;
    let w = build(&["node1"]).resource(plain).world();
    assert_eq!(w.status_of("web"), "web Started node1");
    assert!(w.plan().is_empty());
}

#[test]
fn a_copy_restarted_by_an_order_into_another_role_is_one_line_with_both_roles() {
    // Pacemaker's promoted-pseudo: `Restart R ( Unpromoted -> Promoted N ) due to ...`, not
    // a restart and a promotion apart.
    let mut w = three(stateful("db"))
        .resource(dummy("app"))
        .location(loc("app", "node2", 100))
        .order("app", "db", OrderKind::Mandatory)
        .world();
    assert_eq!(w.status_of("app"), "app Started node2");
    score(&mut w, "node2", 50);
    w.monitor("app", "node2", rc::ERR_GENERIC);
    let plan = w.plan();
    assert!(
        plan.iter()
            .any(|l| l == "Restart db ( Unpromoted -> Promoted node2 ) due to required app start"),
        "{plan:?}"
    );
    assert!(
        !plan.iter().any(|l| l.starts_with("Promote db")),
        "{plan:?}"
    );
}

#[test]
fn promotion_ties_go_where_what_follows_the_clone_prefers_then_to_the_lower_instance() {
    // Two copies promoted, one to keep, equal scores: the lower instance number stays
    // promoted (Pacemaker's promoted-role); a resource colocated with the clone pulls the
    // tie its way first (promoted-demote).
    let mut db = stateful("db");
    db.copies.as_mut().expect("a clone").promoted_max = 2;
    let mut w = three(db).world();
    score(&mut w, "node1", 10);
    score(&mut w, "node2", 10);
    score(&mut w, "node3", 5);
    assert_eq!(
        w.status_of("db"),
        "db Promoted [ node1 node2 ] Unpromoted [ node3 ]"
    );
    w.on_node_mut("db", "node1").instance = Some(1);
    w.on_node_mut("db", "node2").instance = Some(0);
    w.config = three(stateful("db")).config();
    assert_eq!(w.plan(), ["Demote db ( Promoted -> Unpromoted node1 )"]);
    w.config = three(stateful("db"))
        .resource(dummy("vip"))
        .location(loc("vip", "node1", 50))
        .colocation("vip", "db", Score::INFINITY)
        .config();
    let plan = w.plan();
    assert!(
        plan.contains(&"Demote db ( Promoted -> Unpromoted node2 )".to_owned()),
        "{plan:?}"
    );
}

#[test]
fn a_clones_own_location_scores_count_toward_promotion() {
    // Pacemaker's bug-cl-5168: equal promotion scores, and the clone prefers node3 (a plain
    // location, not one for the promoted role): node3's copy is promoted.
    let mut w = three(stateful("db"))
        .location(loc("db", "node3", 100))
        .world();
    score(&mut w, "node1", 0);
    score(&mut w, "node2", 10);
    score(&mut w, "node3", 10);
    w.settle();
    assert_eq!(
        w.status_of("db"),
        "db Promoted [ node3 ] Unpromoted [ node1 node2 ]"
    );
}

#[test]
fn what_runs_with_the_promoted_copy_pulls_the_promotion_where_it_can_run() {
    // Pacemaker's promoted-13 and promoted-move: vip must run with the promoted copy and
    // cannot run on node1; node1's priority drops to the lowest (1), so node2 is promoted.
    let mut w = three(stateful("db")).world();
    score(&mut w, "node1", 10);
    score(&mut w, "node2", 10);
    score(&mut w, "node3", 5);
    assert_eq!(
        w.status_of("db"),
        "db Promoted [ node1 ] Unpromoted [ node2 node3 ]"
    );
    w.config = three(stateful("db"))
        .resource(dummy("vip"))
        .location(loc("vip", "node1", -1_000_000))
        .colocation_roles(
            "vip",
            OpRole::Started,
            "db",
            OpRole::Promoted,
            Score::INFINITY,
        )
        .config();
    w.settle();
    assert_eq!(
        w.status_of("db"),
        "db Promoted [ node2 ] Unpromoted [ node1 node3 ]"
    );
    assert_eq!(w.status_of("vip"), "vip Started node2");
}

#[test]
fn a_promoted_copy_held_by_a_blocked_stop_leaves_no_room_to_promote_another_again() {
    // db is promoted twice: on node1 it failed and must stop, but "app" (after db) cannot
    // stop, so neither can db; on node2 its promoted monitor failed under on_fail = "demote".
    // node1 stays promoted: node2 is demoted, not promoted again (promoted_max 1).
    let mut db = stateful("db");
    db.ops
        .iter_mut()
        .filter(|o| o.role == OpRole::Promoted)
        .for_each(|o| o.on_fail = Some(OnFail::Demote));
    let config = build(&["node1", "node2"])
        .resource(db)
        .resource(dummy("app"))
        .order("db", "app", OrderKind::Mandatory)
        .config();
    let mut state = State::with_online_nodes(["node1", "node2"]);
    let rs = state.resources.entry("db".into()).or_default();
    rs.nodes.insert(
        "node1".into(),
        ResourceOnNode {
            role: Role::Promoted,
            failed: true,
            hard_ban: true,
            ..Default::default()
        },
    );
    rs.nodes.insert(
        "node2".into(),
        ResourceOnNode {
            role: Role::Promoted,
            demote_on_fail: true,
            ..Default::default()
        },
    );
    state
        .resources
        .entry("app".into())
        .or_default()
        .nodes
        .insert(
            "node2".into(),
            ResourceOnNode {
                role: Role::Started,
                failed: true,
                blocked: true,
                ..Default::default()
            },
        );
    let t = schedule(&config, &state, T0);
    let kinds: Vec<String> = t.actions.iter().map(|a| a.kind.to_string()).collect();
    assert!(
        kinds.contains(&"db_demote_0 on node2".to_string()),
        "{kinds:?}"
    );
    assert!(
        !kinds.iter().any(|k| k.starts_with("db_promote_0")),
        "{kinds:?}"
    );
    check_transition(&config, &state, T0, &t).expect("invariants hold");
}

#[test]
fn what_waits_for_a_promotion_a_held_stop_prevents_does_not_start() {
    // db would be promoted on node1, but its failed copy on node2 cannot stop ("blocker",
    // after db, cannot stop there), so nothing of db changes: "web", after db's promotion,
    // must not start (nor restart) for a promotion that does not happen.
    let config = build(&["node1", "node2"])
        .resource(stateful("db"))
        .resource(dummy("blocker"))
        .resource(dummy("web"))
        .order("db", "blocker", OrderKind::Mandatory)
        .order_actions(OpName::Promote, "db", OpName::Start, "web")
        .config();
    let mut state = State::with_online_nodes(["node1", "node2"]);
    let on = |role, failed, blocked| ResourceOnNode {
        role,
        failed,
        blocked,
        hard_ban: failed,
        ..Default::default()
    };
    let db = state.resources.entry("db".into()).or_default();
    db.nodes
        .insert("node1".into(), on(Role::Started, false, false));
    db.nodes
        .insert("node2".into(), on(Role::Started, true, false));
    state
        .resources
        .entry("blocker".into())
        .or_default()
        .nodes
        .insert("node2".into(), on(Role::Started, true, true));
    state
        .resources
        .entry("web".into())
        .or_default()
        .nodes
        .insert("node1".into(), on(Role::Started, false, false));
    let t = schedule(&config, &state, T0);
    let kinds: Vec<String> = t.actions.iter().map(|a| a.kind.to_string()).collect();
    assert!(
        !kinds
            .iter()
            .any(|k| k.starts_with("web_start") || k.starts_with("db_promote")),
        "{kinds:?}"
    );
    check_transition(&config, &state, T0, &t).expect("invariants hold");
}

#[test]
fn what_follows_a_promotion_restarts_only_where_a_copy_is_promoted() {
    // Pacemaker reads a clone's promotion on the node of what follows it (bug-lf-2317):
    // `near` and `far` start after db's promotion; a second promotion, on node2, restarts
    // `near`, which runs there, and not `far`, on node1.
    let config = |promoted_max: u32| {
        let mut b = build(&["node1", "node2"])
            .resource(with(stateful("db"), |c| c.promoted_max = promoted_max))
            .resource(dummy("near"))
            .resource(dummy("far"))
            .location(loc("near", "node2", 100))
            .location(loc("far", "node1", 100))
            .order("db", "near", OrderKind::Mandatory)
            .order("db", "far", OrderKind::Mandatory);
        for o in &mut b.orders {
            o.first_action = OpName::Promote;
        }
        b
    };
    let mut w = config(1).world();
    assert_eq!(w.status_of("near"), "near Started node2");
    assert_eq!(w.status_of("far"), "far Started node1");
    w.config = config(2).config();
    assert_eq!(
        w.plan(),
        [
            "Promote db ( Unpromoted -> Promoted node2 )",
            "Restart near ( node2 ) due to required db promote"
        ]
    );
}

#[test]
fn what_is_colocated_with_the_promoted_roles_dependent_pulls_the_promotion_too() {
    // As Pacemaker's group-dependents: `fs` runs with db's promoted copy, `app` with fs;
    // app is banned from node1 (a failure past its threshold, here a location). The scores
    // of what is colocated with fs count in db's promotion, so db is promoted on node2 and
    // fs and app run there, rather than app not running at all.
    let w = build(&["node1", "node2"])
        .resource(stateful("db"))
        .resource(dummy("fs"))
        .resource(dummy("app"))
        .colocation_roles(
            "fs",
            OpRole::Started,
            "db",
            OpRole::Promoted,
            Score::INFINITY,
        )
        .colocation("app", "fs", Score::INFINITY)
        .location(Location::new("app", "node1", Score::MINUS_INFINITY))
        .world();
    assert_eq!(
        w.status_of("db"),
        "db Promoted [ node2 ] Unpromoted [ node1 ]"
    );
    assert_eq!(w.status_of("fs"), "fs Started node2");
    assert_eq!(w.status_of("app"), "app Started node2");
}

#[test]
fn what_must_stay_away_from_the_unpromoted_role_leaves_where_an_order_demotes() {
    // app must never run where db runs unpromoted (-INFINITY with role unpromoted). db is
    // promoted only after gate starts: gate is disabled, the order demotes db, and app, placed
    // beside the promoted copy, has to go.
    let mut b = build(&["node1"])
        .resource(stateful("db"))
        .resource(dummy("gate"))
        .resource(dummy("app"))
        .order("gate", "db", OrderKind::Mandatory)
        .colocation_roles(
            "app",
            OpRole::Started,
            "db",
            OpRole::Unpromoted,
            Score::MINUS_INFINITY,
        );
    b.orders[0].then_action = OpName::Promote;
    let mut w = b.world();
    assert_eq!(w.status_of("db"), "db Promoted [ node1 ]");
    assert_eq!(w.status_of("app"), "app Started node1");
    w.admin(AdminCommand::Disable {
        resource: "gate".into(),
    });
    let plan = w.plan();
    assert!(
        plan.contains(&"Demote db ( Promoted -> Unpromoted node1 )".to_owned()),
        "{plan:#?}"
    );
    assert!(
        plan.contains(&"Stop app ( node1 ) due to colocation with db".to_owned()),
        "{plan:#?}"
    );
}
