//! Decisions an operator's commands and the daemon's own life ask for: restart, cleanup,
//! shutdown, and the crash-loop delay. Each is an engine input, so its transition keeps the
//! constraints and passes `check_transition` like any other.

mod common;

use std::time::Duration;

use common::*;
use warden_engine::*;

fn action(t: &Transition, op: OpName, r: &str) -> Option<ActionId> {
    t.actions
        .iter()
        .find(|a| a.kind.resource() == Some(r) && a.kind.op().map(|k| k.name) == Some(op))
        .map(|a| a.id)
}

fn checked(w: &World) -> Transition {
    let t = schedule(&w.config, &w.state, w.now);
    check_transition(&w.config, &w.state, w.now, &t).expect("invariants hold");
    t
}

/// `db`, then `app` (mandatory order), `web` colocated with `app`, `other` unrelated.
fn stack() -> World {
    build(&["node1"])
        .resource(dummy("db"))
        .resource(dummy("app"))
        .resource(dummy("web"))
        .resource(dummy("other"))
        .order("db", "app", OrderKind::Mandatory)
        .colocation("web", "app", Score::INFINITY)
        .world()
}

#[test]
fn restart_stops_what_depends_on_it_first_and_starts_it_after() {
    let mut w = stack();
    w.admin(AdminCommand::Restart {
        resource: "db".into(),
        node: None,
    });
    let t = checked(&w);
    let (stop_db, stop_app, stop_web) = (
        action(&t, OpName::Stop, "db").expect("db stops"),
        action(&t, OpName::Stop, "app").expect("app stops"),
        action(&t, OpName::Stop, "web"),
    );
    let (start_db, start_app) = (
        action(&t, OpName::Start, "db").expect("db starts"),
        action(&t, OpName::Start, "app").expect("app starts"),
    );
    assert!(depends(&t, stop_db, stop_app), "app stops before db");
    assert!(depends(&t, start_app, start_db), "app starts after db");
    assert!(depends(&t, start_db, stop_db));
    // web is only colocated with app, which restarts because of its order, not an
    // operator's request: web keeps running (Pacemaker restarts colocated resources only
    // when what they follow moves or stops for good).
    assert_eq!(stop_web, None);
    assert_eq!(
        action(&t, OpName::Stop, "other"),
        None,
        "unrelated: untouched"
    );
    assert_eq!(
        w.plan(),
        [
            "Restart db ( node1 ) due to operator request",
            "Restart app ( node1 ) due to required db start",
        ]
    );
    w.settle();
    assert!(!w.state.on_node("db", "node1").restart, "done once stopped");
    assert!(w.plan().is_empty());
}

#[test]
fn restart_takes_along_what_is_colocated_with_it() {
    let mut w = stack();
    w.admin(AdminCommand::Restart {
        resource: "app".into(),
        node: Some("node1".into()),
    });
    let t = checked(&w);
    assert!(action(&t, OpName::Stop, "web").is_some());
    assert_eq!(action(&t, OpName::Stop, "db"), None, "what app needs stays");
    assert_eq!(
        w.settle(),
        [
            "Restart app ( node1 ) due to operator request",
            "Restart web ( node1 ) due to restart of app",
        ]
    );
}

#[test]
fn restart_of_a_group_member_restarts_the_members_after_it() {
    let mut w = build(&["node1", "node2"])
        .resource(dummy("a"))
        .resource(dummy("b"))
        .resource(dummy("c"))
        .group("g", &["a", "b", "c"])
        .world();
    w.admin(AdminCommand::Restart {
        resource: "b".into(),
        node: None,
    });
    let t = checked(&w);
    assert_eq!(action(&t, OpName::Stop, "a"), None);
    let (stop_b, stop_c) = (
        action(&t, OpName::Stop, "b").expect("b"),
        action(&t, OpName::Stop, "c").expect("c"),
    );
    assert!(depends(&t, stop_b, stop_c), "c stops before b");
    w.settle();
    assert_eq!(
        w.status(),
        ["a Started node1", "b Started node1", "c Started node1"]
    );
}

#[test]
fn restart_of_what_does_not_run_is_refused_and_changes_nothing() {
    let mut w = stack();
    w.admin(AdminCommand::Disable {
        resource: "other".into(),
    });
    w.settle();
    let before = w.state.clone();
    let err = apply(
        &w.config,
        &mut w.state,
        &Event::Admin(AdminCommand::Restart {
            resource: "other".into(),
            node: None,
        }),
        w.now,
    )
    .expect_err("refused");
    assert_eq!(
        err,
        ApplyError::NotActive {
            resource: "other".into(),
            node: None
        }
    );
    assert_eq!(err.to_string(), "other is not started");
    assert_eq!(w.state, before);
}

#[test]
fn cleanup_of_a_healthy_resource_reprobes_and_restarts_nothing() {
    let mut w = stack();
    w.admin(AdminCommand::Cleanup {
        resource: Some("db".into()),
        node: None,
    });
    let t = checked(&w);
    let probe = action(&t, OpName::Monitor, "db").expect("db is probed again");
    let stop_app = action(&t, OpName::Stop, "app").expect("planned in case db is stopped");
    assert!(
        depends(&t, stop_app, probe),
        "app waits for what db's probe finds"
    );
    // The probe finds db running: nothing that waited for it runs.
    let done = execute(&w.config, &mut w.state, &t, w.now, |k| match k {
        ActionKind::Probe { .. } => Outcome::rc(rc::OK),
        k => default_outcome(k),
    });
    let ran: Vec<String> = done
        .iter()
        .filter(|e| e.outcome.is_some())
        .map(|e| t.actions[e.id].kind.to_string())
        .collect();
    assert_eq!(ran, ["db_monitor_0 on node1"]);
    assert!(w.plan().is_empty(), "{:?}", w.plan());
    assert_eq!(w.status_of("app"), "app Started node1");
}

#[test]
fn cleanup_of_a_resource_found_stopped_restarts_what_needs_it() {
    let mut w = stack();
    w.admin(AdminCommand::Cleanup {
        resource: Some("db".into()),
        node: None,
    });
    // The probe finds db stopped (the default outcome): app is restarted after it.
    let lines = w.settle();
    assert_eq!(
        lines,
        [
            "Start db ( node1 )",
            "Restart app ( node1 ) due to required db start"
        ]
    );
}

#[test]
fn shutdown_stops_in_the_engines_order_and_a_rejoin_starts_again() {
    let mut w = stack();
    w.event(Event::NodeShutdown {
        node: "node1".into(),
    });
    let t = checked(&w);
    let (stop_db, stop_app) = (
        action(&t, OpName::Stop, "db").expect("db"),
        action(&t, OpName::Stop, "app").expect("app"),
    );
    assert!(depends(&t, stop_db, stop_app), "app stops before db");
    w.settle();
    assert!(w.state.active_nodes("db").next().is_none());
    assert!(w.state.active_nodes("web").next().is_none());
    assert!(
        w.plan().is_empty(),
        "nothing starts on a node shutting down"
    );
    w.event(Event::NodeUp {
        node: "node1".into(),
    });
    w.settle();
    assert_eq!(w.status_of("app"), "app Started node1");
}

#[test]
fn a_shutdown_lock_keeps_what_ran_on_a_node_for_its_return_or_its_limit() {
    // `shutdown_lock`: what runs on a node that shuts down cleanly stops there and waits for
    // it, instead of moving (a planned reboot); a clone's copies and fence devices are not
    // locked; a start back on the node ends the lock, and a limit lets it go elsewhere.
    let world = |limit: Option<Duration>| {
        let mut web = dummy("web");
        web.copies = Some(Copies::default());
        web.meta.resource_stickiness = Score::new(1);
        build(&["node1", "node2"])
            .resource(dummy("db"))
            .resource(web)
            .location(loc("db", "node1", 100))
            .cluster(|c| {
                c.shutdown_lock = true;
                c.shutdown_lock_limit = limit;
            })
            .world()
    };
    let shutdown = |w: &mut World| {
        w.event(Event::NodeShutdown {
            node: "node1".into(),
        });
        let stops = w.settle();
        w.event(Event::NodeDown {
            node: "node1".into(),
        });
        stops
    };
    let mut w = world(None);
    assert_eq!(w.status_of("db"), "db Started node1");
    assert_eq!(
        shutdown(&mut w),
        [
            "Stop db ( node1 ) due to node availability",
            "Stop web ( node1 ) due to node availability"
        ]
    );
    assert_eq!(
        w.state.resource("db").and_then(|r| r.lock.clone()),
        Some(ShutdownLock {
            node: "node1".into(),
            since: T0
        })
    );
    assert!(w.state.resource("web").is_some_and(|r| r.lock.is_none()));
    w.advance(Duration::from_secs(3600));
    assert_eq!(w.status_of("db"), "db Stopped (LOCKED)");
    assert!(w.plan().is_empty(), "db waits for node1: {:?}", w.plan());
    assert_eq!(w.wakeup(), None);
    w.event(Event::NodeUp {
        node: "node1".into(),
    });
    w.settle();
    assert_eq!(w.status_of("db"), "db Started node1");
    assert!(w.state.resource("db").is_some_and(|r| r.lock.is_none()));

    // With a limit, it goes elsewhere once the limit passes, not a millisecond before.
    let mut w = world(Some(Duration::from_secs(300)));
    shutdown(&mut w);
    assert_eq!(w.wakeup(), Some(T0 + Duration::from_secs(300)));
    w.advance(Duration::from_millis(299_999));
    assert!(w.plan().is_empty());
    w.advance(Duration::from_millis(1));
    assert_eq!(w.plan(), ["Start db ( node2 )"]);

    // A cleanup lets it go at once.
    let mut w = world(None);
    shutdown(&mut w);
    w.admin(AdminCommand::Cleanup {
        resource: Some("db".into()),
        node: None,
    });
    assert_eq!(w.plan(), ["Start db ( node2 )"]);
}

#[test]
fn shutdown_demotes_before_it_stops() {
    let mut db = dummy("db");
    db.copies = Some(Copies {
        score: Some(Score::new(10)),
        ..Copies::promotable()
    });
    let mut w = build(&["node1"]).resource(db).world();
    assert_eq!(w.status_of("db"), "db Promoted [ node1 ]");
    w.event(Event::NodeShutdown {
        node: "node1".into(),
    });
    let t = checked(&w);
    let (demote, stop) = (
        action(&t, OpName::Demote, "db").expect("demote"),
        action(&t, OpName::Stop, "db").expect("stop"),
    );
    assert!(depends(&t, stop, demote));
}

/// `a` fails right after each start; `b` runs beside it.
fn looping() -> World {
    let mut w = build(&["node1"])
        .resource(dummy("a"))
        .resource(dummy("b"))
        .world();
    w.advance(Duration::from_millis(10));
    w
}

#[test]
fn a_crash_loop_delays_only_its_own_start_and_doubles() {
    let mut w = looping();
    // The first quick failure restarts at once.
    w.monitor("a", "node1", rc::NOT_RUNNING);
    assert_eq!(w.settle(), ["Recover a ( node1 )"]);
    // The second waits 100 ms, the third 200 ms: a stays stopped until then.
    let mut delays = Vec::new();
    for i in 0..2 {
        w.advance(Duration::from_millis(10));
        w.monitor("a", "node1", rc::NOT_RUNNING);
        assert_eq!(w.step(&[]), ["Stop a ( node1 ) due to crash loop"]);
        let until = w.wakeup().expect("wakes up when the delay ends");
        delays.push(until.since(w.now));
        assert!(
            w.status_of("a").contains("start delayed until"),
            "{}",
            w.status_of("a")
        );
        // b fails meanwhile (once: twice within a second would be a loop of its own):
        // recovered at once, not held by a's delay.
        if i == 0 {
            w.monitor("b", "node1", rc::ERR_GENERIC);
            assert_eq!(w.step(&[]), ["Recover b ( node1 )"]);
        }
        w.now = until;
        assert_eq!(w.settle(), ["Start a ( node1 )"]);
    }
    assert_eq!(
        delays,
        [Duration::from_millis(100), Duration::from_millis(200)]
    );
    // A failure after the window ends the loop: restarted at once again.
    w.advance(Duration::from_secs(2));
    w.monitor("a", "node1", rc::NOT_RUNNING);
    assert_eq!(w.settle(), ["Recover a ( node1 )"]);
}

#[test]
fn the_crash_loop_delay_is_capped_and_can_be_turned_off() {
    let meta = Meta {
        crash_loop_delay_max: Duration::from_millis(500),
        ..Meta::default()
    };
    let got: Vec<Option<Duration>> = (0..8).map(|n| meta.crash_loop_delay(n)).collect();
    let ms = |m| Some(Duration::from_millis(m));
    assert_eq!(
        got,
        [
            None,
            None,
            ms(100),
            ms(200),
            ms(400),
            ms(500),
            ms(500),
            ms(500)
        ]
    );
    let off = Meta {
        crash_loop_delay_max: Duration::ZERO,
        ..Meta::default()
    };
    assert_eq!(off.crash_loop_delay(9), None);
    assert_eq!(
        Meta::default().crash_loop_delay(40),
        Some(Duration::from_secs(10))
    );
}

#[test]
fn a_crash_loop_holds_what_is_ordered_after_it() {
    let mut w = build(&["node1"])
        .resource(dummy("a"))
        .resource(dummy("b"))
        .order("a", "b", OrderKind::Mandatory)
        .world();
    w.advance(Duration::from_millis(10));
    w.monitor("a", "node1", rc::NOT_RUNNING);
    w.settle();
    w.advance(Duration::from_millis(10));
    w.monitor("a", "node1", rc::NOT_RUNNING);
    let t = checked(&w);
    assert_eq!(action(&t, OpName::Start, "a"), None);
    assert_eq!(
        action(&t, OpName::Start, "b"),
        None,
        "b cannot run without a"
    );
    let until = t.wakeup.expect("wakeup");
    w.step(&[]);
    w.now = until;
    w.settle();
    assert_eq!(w.status(), ["a Started node1", "b Started node1"]);
}

/// The stack's configuration with `db`'s definition changed by `f`.
fn stack_with(f: impl Fn(&mut ResourceSpec)) -> Config {
    let mut db = dummy("db");
    f(&mut db);
    build(&["node1"])
        .resource(db)
        .resource(dummy("app"))
        .resource(dummy("web"))
        .resource(dummy("other"))
        .order("db", "app", OrderKind::Mandatory)
        .colocation("web", "app", Score::INFINITY)
        .config()
}

#[test]
fn a_changed_definition_restarts_the_resource_and_what_needs_it() {
    let mut w = stack();
    w.config = stack_with(|db| db.params.push(("state".into(), "/run/other".into())));
    let t = checked(&w);
    let (stop_db, stop_app) = (
        action(&t, OpName::Stop, "db").expect("db"),
        action(&t, OpName::Stop, "app").expect("app"),
    );
    assert!(depends(&t, stop_db, stop_app));
    assert_eq!(
        w.settle(),
        [
            "Restart db ( node1 ) due to resource definition change",
            "Restart app ( node1 ) due to required db start",
        ]
    );
    assert!(w.plan().is_empty(), "started with the new definition");
}

#[test]
fn a_changed_definition_of_what_requires_nothing_restarts_with_no_reason_given() {
    // As crm_simulate words it (probe-2): Pacemaker resets the reason of a start of what
    // requires nothing once it is placed, so the restart reads without one. Another agent
    // reads without one too (params-2).
    for (what, f) in [
        (
            "requires nothing",
            Box::new(|db: &mut ResourceSpec| {
                db.meta.requires = Requires::Nothing;
                db.params.push(("state".into(), "/run/other".into()));
            }) as Box<dyn Fn(&mut ResourceSpec)>,
        ),
        (
            "another agent",
            Box::new(|db: &mut ResourceSpec| {
                db.agent = Agent::Ocf {
                    provider: "heartbeat".into(),
                    kind: "Stateless".into(),
                };
            }),
        ),
    ] {
        let mut w = World {
            config: stack_with(|db| {
                if what == "requires nothing" {
                    db.meta.requires = Requires::Nothing;
                }
            }),
            ..stack()
        };
        w.settle();
        w.config = stack_with(&f);
        assert_eq!(
            w.settle(),
            [
                "Restart db ( node1 )",
                "Restart app ( node1 ) due to required db start",
            ],
            "{what}"
        );
    }
}

#[test]
fn meta_attributes_and_operations_change_without_a_restart() {
    let mut w = stack();
    w.config = stack_with(|db| {
        db.meta.migration_threshold = 3;
        db.ops[0].interval = Duration::from_secs(30);
    });
    assert!(w.plan().is_empty(), "{:?}", w.plan());
}

#[test]
fn the_digest_survives_a_cleanup_and_an_unknown_one_restarts_nothing() {
    let mut w = stack();
    w.admin(AdminCommand::Cleanup {
        resource: Some("db".into()),
        node: None,
    });
    w.config = stack_with(|db| db.params.push(("fake".into(), "1".into())));
    // The probe finds db running: it was started with the old definition.
    let t = checked(&w);
    execute(&w.config, &mut w.state, &t, w.now, |k| match k {
        ActionKind::Probe { .. } => Outcome::rc(rc::OK),
        k => default_outcome(k),
    });
    assert_eq!(
        w.plan()[0],
        "Restart db ( node1 ) due to resource definition change"
    );
    // A copy whose definition nobody recorded (adopted from an older state) is left alone.
    let mut w = stack();
    w.on_node_mut("db", "node1").digest = None;
    w.config = stack_with(|db| db.params.push(("fake".into(), "1".into())));
    assert!(w.plan().is_empty());
}

#[test]
fn an_orphan_is_stopped_and_never_started() {
    let mut w = stack();
    // "other" is gone from the file; the daemon keeps its definition as an orphan.
    let base = build(&["node1"])
        .resource(dummy("db"))
        .resource(dummy("app"))
        .resource(dummy("web"))
        .order("db", "app", OrderKind::Mandatory)
        .colocation("web", "app", Score::INFINITY)
        .config();
    let mut orphan = dummy("other");
    orphan.meta.orphan = true;
    orphan.meta.target_role = TargetRole::Stopped;
    w.config = base.with_extra_resources(vec![orphan]).expect("config");
    assert_eq!(
        w.settle(),
        ["Stop other ( node1 ) due to node availability"]
    );
    assert_eq!(
        w.status_of("other"),
        "other Stopped (orphan: gone from the configuration) (disabled)"
    );
    assert_eq!(w.status_of("app"), "app Started node1", "the others stay");
    // An operator's earlier `enable` does not bring an orphan back (the core's simulation
    // found this one).
    w.admin(AdminCommand::Enable {
        resource: "other".into(),
    });
    assert!(w.plan().is_empty(), "{:?}", w.plan());
}

#[test]
fn the_digest_is_stable_and_sees_every_part_of_the_definition() {
    let base = dummy("db");
    // Fixed: a change here would restart every resource after an upgrade.
    assert_eq!(base.digest(), 0xaa75_ed9e_bd95_4b48, "{:#x}", base.digest());
    let mut seen = std::collections::HashSet::from([base.digest()]);
    let mut p = ProcessSpec {
        command: vec!["sleep".into(), "1".into()],
        ..ProcessSpec::default()
    };
    let variants: Vec<ResourceSpec> = vec![
        ResourceSpec::new(
            "db",
            Agent::Ocf {
                provider: "pacemaker".into(),
                kind: "Dummy".into(),
            },
        ),
        ResourceSpec::new("db", Agent::Process(p.clone())),
        {
            p.command = vec!["sleep 1".into()];
            ResourceSpec::new("db", Agent::Process(p.clone()))
        },
        {
            p.env.push(("A".into(), "1".into()));
            ResourceSpec::new("db", Agent::Process(p.clone()))
        },
        {
            p.user = Some("nobody".into());
            ResourceSpec::new("db", Agent::Process(p.clone()))
        },
        {
            p.cwd = Some("/tmp".into());
            ResourceSpec::new("db", Agent::Process(p.clone()))
        },
        {
            let mut r = dummy("db");
            r.params.push(("a".into(), "bc".into()));
            r
        },
        {
            let mut r = dummy("db");
            r.params.push(("ab".into(), "c".into()));
            r
        },
    ];
    for v in variants {
        assert!(seen.insert(v.digest()), "{v:?} collides");
    }
}

/// The stack where db's agent reloads `level`, settled, with `level` changed to 2 in the file.
fn reloading_stack() -> (World, std::collections::HashMap<String, Vec<String>>) {
    let reloadable = std::collections::HashMap::from([("db".to_owned(), vec!["level".to_owned()])]);
    let mut w = stack();
    w.config = stack().config.with_reloadable(&reloadable);
    // The copy runs with digests computed before the agent's reloadable parameters were
    // known; restart it once so it runs the annotated definition.
    w.admin(AdminCommand::Restart {
        resource: "db".into(),
        node: None,
    });
    w.settle();
    w.config =
        stack_with(|db| db.params.push(("level".into(), "2".into()))).with_reloadable(&reloadable);
    (w, reloadable)
}

#[test]
fn a_reloadable_change_reloads_in_place_and_restarts_nothing() {
    // Only a reloadable parameter changes: a reload, nothing ordered after db restarts.
    let (mut w, reloadable) = reloading_stack();
    let t = checked(&w);
    assert!(action(&t, OpName::Reload, "db").is_some());
    assert_eq!(action(&t, OpName::Stop, "db"), None);
    assert_eq!(action(&t, OpName::Stop, "app"), None);
    assert_eq!(w.settle(), ["Reload db ( node1 )"]);
    assert!(w.plan().is_empty(), "the copy runs the new definition");
    // Another parameter as well: a restart.
    w.config = stack_with(|db| {
        db.params.push(("level".into(), "3".into()));
        db.params.push(("state".into(), "/run/x".into()));
    })
    .with_reloadable(&reloadable);
    assert_eq!(
        w.plan(),
        [
            "Restart db ( node1 ) due to resource definition change",
            "Restart app ( node1 ) due to required db start",
        ]
    );
    // Without reload-agent the same change restarts.
    let mut w = stack();
    w.config = stack_with(|db| db.params.push(("level".into(), "2".into())));
    assert_eq!(
        w.plan()[0],
        "Restart db ( node1 ) due to resource definition change"
    );
}

#[test]
fn a_failed_reload_fails_the_copy_and_recovers_it() {
    let (mut w, _) = reloading_stack();
    assert_eq!(
        w.step(&[("db", OpName::Reload, "node1", rc::ERR_GENERIC)]),
        ["Reload db ( node1 )"]
    );
    assert_eq!(w.fail_count("db", "node1"), 1);
    assert_eq!(
        w.settle(),
        [
            "Recover db ( node1 )",
            "Restart app ( node1 ) due to required db start"
        ]
    );
}

#[test]
fn a_disabled_monitors_on_fail_still_says_what_its_failure_means() {
    // The monitor was disabled after it failed (as Pacemaker's bug-5069-op-disabled): its
    // `on_fail = "ignore"` still applies to that failure, so nothing is recovered.
    let mut r = with_on_fail(
        dummy("a"),
        OpName::Monitor,
        Duration::from_secs(10),
        OnFail::Ignore,
    );
    let mut w = build(&["node1"]).resource(r.clone()).world();
    for o in &mut r.ops {
        o.enabled = o.name != OpName::Monitor;
    }
    w.config = build(&["node1"]).resource(r).config();
    w.monitor("a", "node1", rc::NOT_RUNNING);
    assert!(w.plan().is_empty(), "{:?}", w.plan());
}

#[test]
fn an_ignored_hard_failure_bans_nothing() {
    // Pacemaker's not-installed-tools: `on_fail = "ignore"` pretends the monitor succeeded,
    // however hard its return code (5, not installed): the resource stays where it runs.
    let r = with_on_fail(
        dummy("a"),
        OpName::Monitor,
        Duration::from_secs(10),
        OnFail::Ignore,
    );
    let mut w = build(&["node1", "node2"])
        .resource(r)
        .location(loc("a", "node1", 100))
        .world();
    w.monitor("a", "node1", rc::ERR_INSTALLED);
    assert!(w.plan().is_empty(), "{:?}", w.plan());
    assert_eq!(w.status_of("a"), "a Started node1 (failure ignored)");
}

#[test]
fn a_monitor_that_succeeds_again_after_its_failure_clears_it_unless_it_stopped_the_resource() {
    // Pacemaker's monitor-recovery: the monitor that failed last reports success again
    // before anything was done: the failure is past (its fail count stays). With on_fail
    // = "stop" it stands (Pacemaker does not clear a failure handled by stop).
    for (on_fail, plan) in [
        (OnFail::Restart, Vec::<&str>::new()),
        (
            OnFail::Stop,
            vec!["Stop a ( node1 ) due to node availability"],
        ),
    ] {
        let r = with_on_fail(
            dummy("a"),
            OpName::Monitor,
            Duration::from_secs(10),
            on_fail,
        );
        let mut w = build(&["node1", "node2"])
            .resource(r)
            .location(loc("a", "node1", 100))
            .world();
        w.monitor("a", "node1", rc::ERR_GENERIC);
        assert!(!w.plan().is_empty());
        w.now = w.now + Duration::from_secs(10);
        w.monitor("a", "node1", rc::OK);
        assert_eq!(w.plan(), plan, "{on_fail:?}");
        assert_eq!(w.fail_count("a", "node1"), 1, "{on_fail:?}");
    }
}
