//! Placement: groups, colocation and order constraints, through the public
//! engine API.

mod common;

use common::*;
use warden_engine::*;

fn starts(t: &Transition) -> Vec<(String, ActionId, Vec<ActionId>)> {
    t.actions
        .iter()
        .filter_map(|a| match &a.kind {
            ActionKind::Start { resource, .. } => Some((resource.clone(), a.id, a.deps.clone())),
            _ => None,
        })
        .collect()
}

fn action_id(t: &Transition, f: impl Fn(&ActionKind) -> bool) -> ActionId {
    t.actions
        .iter()
        .find(|a| f(&a.kind))
        .map(|a| a.id)
        .expect("action present")
}

fn stop_of(t: &Transition, r: &str) -> ActionId {
    action_id(
        t,
        |k| matches!(k, ActionKind::Stop { resource, .. } if resource == r),
    )
}

fn start_of(t: &Transition, r: &str) -> ActionId {
    action_id(
        t,
        |k| matches!(k, ActionKind::Start { resource, .. } if resource == r),
    )
}

fn group3() -> World {
    build(&["node1", "node2"])
        .resource(dummy("a"))
        .resource(dummy("b"))
        .resource(dummy("c"))
        .group("stack", &["a", "b", "c"])
        .world()
}

#[test]
fn group_members_start_in_order_on_one_node() {
    let config = build(&["node1", "node2"])
        .resource(dummy("a"))
        .resource(dummy("b"))
        .resource(dummy("c"))
        .group("stack", &["a", "b", "c"])
        .config();
    let state = State::with_online_nodes(["node1", "node2"]);
    let t = schedule(&config, &state, T0);
    let (a, b, c) = (start_of(&t, "a"), start_of(&t, "b"), start_of(&t, "c"));
    assert!(depends(&t, b, a) && depends(&t, c, b), "{:?}", starts(&t));
    let mut w = World {
        config,
        state,
        now: T0,
    };
    w.settle();
    assert_eq!(
        w.status(),
        ["a Started node1", "b Started node1", "c Started node1"]
    );
}

#[test]
fn a_failed_group_member_restarts_itself_and_the_members_after_it() {
    let mut w = group3();
    w.monitor("b", "node1", rc::ERR_GENERIC);
    let t = schedule(&w.config, &w.state, w.now);
    assert_eq!(
        t.summary
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [
            "Recover b ( node1 )",
            "Restart c ( node1 ) due to required b start"
        ]
    );
    // c stops before b stops; b starts before c starts; a is untouched.
    assert!(depends(&t, stop_of(&t, "b"), stop_of(&t, "c")));
    assert!(depends(&t, start_of(&t, "c"), start_of(&t, "b")));
    assert!(t.actions.iter().all(|x| x.kind.resource() != Some("a")));
    w.settle();
    assert_eq!(
        w.status(),
        ["a Started node1", "b Started node1", "c Started node1"]
    );
}

#[test]
fn a_member_that_cannot_run_holds_the_ones_after_it() {
    let mut w = group3();
    w.admin(AdminCommand::Disable {
        resource: "b".into(),
    });
    let t = schedule(&w.config, &w.state, w.now);
    assert!(
        depends(&t, stop_of(&t, "b"), stop_of(&t, "c")),
        "c stops first"
    );
    assert_eq!(
        w.settle(),
        [
            "Stop b ( node1 ) due to node availability",
            // As crm_simulate words a group member held by the one before it.
            "Stop c ( node1 ) due to node availability"
        ]
    );
    assert_eq!(
        w.status(),
        ["a Started node1", "b Stopped (disabled)", "c Stopped"]
    );
    w.admin(AdminCommand::Enable {
        resource: "b".into(),
    });
    assert_eq!(w.settle(), ["Start b ( node1 )", "Start c ( node1 )"]);
}

#[test]
fn a_group_moves_as_a_whole_when_its_first_member_cannot_stay() {
    let mut w = group3();
    w.monitor("a", "node1", rc::ERR_INSTALLED);
    let out = w.settle();
    assert_eq!(out[0], "Recover a ( node1 -> node2 )");
    assert_eq!(
        w.status(),
        ["a Started node2", "b Started node2", "c Started node2"]
    );
}

#[test]
fn colocation_scores() {
    // INFINITY: with it, wherever it is.
    let w = build(&["node1", "node2", "node3"])
        .resource(dummy("db"))
        .resource(dummy("web"))
        .location(loc("db", "node3", 100))
        .colocation("web", "db", Score::INFINITY)
        .world();
    assert_eq!(w.status(), ["db Started node3", "web Started node3"]);
    // -INFINITY: never together, even against a preference.
    let w = build(&["node1", "node2"])
        .resource(dummy("db"))
        .resource(dummy("web"))
        .location(loc("db", "node1", 100))
        .location(loc("web", "node1", 100))
        .colocation("web", "db", Score::MINUS_INFINITY)
        .world();
    assert_eq!(w.status(), ["db Started node1", "web Started node2"]);
    // A finite score is a preference that a stronger location beats.
    let w = build(&["node1", "node2"])
        .resource(dummy("db"))
        .resource(dummy("web"))
        .location(loc("db", "node1", 100))
        .location(loc("web", "node2", 50))
        .colocation("web", "db", Score::new(40))
        .world();
    assert_eq!(w.status(), ["db Started node1", "web Started node2"]);
    let w = build(&["node1", "node2"])
        .resource(dummy("db"))
        .resource(dummy("web"))
        .location(loc("db", "node1", 100))
        .location(loc("web", "node2", 50))
        .colocation("web", "db", Score::new(60))
        .world();
    assert_eq!(w.status(), ["db Started node1", "web Started node1"]);
    // INFINITY with something that runs nowhere: it cannot run either.
    let mut db = dummy("db");
    db.meta.target_role = TargetRole::Stopped;
    let w = build(&["node1"])
        .resource(db)
        .resource(dummy("web"))
        .colocation("web", "db", Score::INFINITY)
        .world();
    assert_eq!(w.status(), ["db Stopped (disabled)", "web Stopped"]);
}

#[test]
fn colocation_follows_a_move() {
    let mut w = build(&["node1", "node2"])
        .resource(dummy("db"))
        .resource(dummy("web"))
        .colocation("web", "db", Score::INFINITY)
        .world();
    w.admin(AdminCommand::Move {
        resource: "db".into(),
        node: "node2".into(),
    });
    let mut out = w.settle();
    out.sort();
    assert_eq!(
        out,
        ["Move db ( node1 -> node2 )", "Move web ( node1 -> node2 )"]
    );
}

#[test]
fn mandatory_order() {
    let mut w = build(&["node1", "node2"])
        .resource(dummy("db"))
        .resource(dummy("web"))
        .order("db", "web", OrderKind::Mandatory)
        .world();
    // web runs on node2 (least loaded); a restart of db restarts web after it.
    assert_eq!(w.status(), ["db Started node1", "web Started node2"]);
    w.monitor("db", "node1", rc::ERR_GENERIC);
    assert_eq!(
        w.plan(),
        [
            "Recover db ( node1 )",
            "Restart web ( node2 ) due to required db start"
        ]
    );
    w.settle();
    // db cannot run: web stops, and stops first (crm_simulate's words for what stops
    // after a resource that ran: its start was required).
    w.admin(AdminCommand::Disable {
        resource: "db".into(),
    });
    let t = schedule(&w.config, &w.state, w.now);
    assert!(depends(&t, stop_of(&t, "db"), stop_of(&t, "web")));
    assert_eq!(
        w.settle(),
        [
            "Stop db ( node1 ) due to node availability",
            "Stop web ( node2 ) due to required db start"
        ]
    );
}

#[test]
fn optional_order_orders_without_forcing() {
    let config = build(&["node1", "node2"])
        .resource(dummy("db"))
        .resource(dummy("web"))
        .order("db", "web", OrderKind::Optional)
        .config();
    let state = State::with_online_nodes(["node1", "node2"]);
    let t = schedule(&config, &state, T0);
    assert!(
        depends(&t, start_of(&t, "web"), start_of(&t, "db")),
        "ordered when both start"
    );
    let mut w = World {
        config,
        state,
        now: T0,
    };
    w.settle();
    w.monitor("db", "node1", rc::ERR_GENERIC);
    assert_eq!(w.plan(), ["Recover db ( node1 )"], "no forced restart");
    w.settle();
    w.admin(AdminCommand::Disable {
        resource: "db".into(),
    });
    assert_eq!(
        w.settle(),
        ["Stop db ( node1 ) due to node availability"],
        "web keeps running"
    );
}

#[test]
fn serialize_never_runs_both_at_once() {
    let config = build(&["node1", "node2"])
        .resource(dummy("db"))
        .resource(dummy("web"))
        .order("db", "web", OrderKind::Serialize)
        .config();
    let state = State::with_online_nodes(["node1", "node2"]);
    let t = schedule(&config, &state, T0);
    assert!(depends(&t, start_of(&t, "web"), start_of(&t, "db")));
    let mut w = World {
        config,
        state,
        now: T0,
    };
    w.settle();
    w.monitor("db", "node1", rc::ERR_GENERIC);
    assert_eq!(
        w.plan(),
        ["Recover db ( node1 )"],
        "serialize does not restart the other"
    );
}

#[test]
fn order_cycles_and_double_membership_are_refused() {
    let base = || build(&["node1"]).resource(dummy("a")).resource(dummy("b"));
    let cfg = |b: Builder| {
        Config::new(b.cluster, b.nodes, vec![], b.resources, b.locations)
            .and_then(|c| c.with_constraints(b.colocations, b.orders, b.groups))
    };
    let e = cfg(base()
        .order("a", "b", OrderKind::Mandatory)
        .order("b", "a", OrderKind::Mandatory))
    .expect_err("cycle");
    assert_eq!(e.to_string(), "orders of a, b form a cycle");
    let e = cfg(base().group("g1", &["a", "b"]).group("g2", &["b"])).expect_err("two groups");
    assert_eq!(
        e.to_string(),
        "resource \"b\" is in two groups, \"g1\" and \"g2\""
    );
    let e = cfg(base().order("a", "zz", OrderKind::Optional)).expect_err("unknown");
    assert!(e.to_string().contains("unknown resource \"zz\""), "{e}");
}

#[test]
fn a_dependents_preference_pulls_the_resource_it_is_colocated_with() {
    // app must run with db and prefers node2; db has no preference of its own: Pacemaker
    // merges app's scores into db's, so both start on node2 (not db on node1, app following).
    let w = build(&["node1", "node2"])
        .resource(dummy("db"))
        .resource(dummy("app"))
        .location(loc("app", "node2", 50))
        .colocation("app", "db", Score::INFINITY)
        .world();
    assert_eq!(w.status(), ["db Started node2", "app Started node2"]);
    // A dependent banned from a node keeps its primary off it too; a negative colocation
    // (away from) does not count the dependent's dislikes.
    let w = build(&["node1", "node2"])
        .resource(dummy("db"))
        .resource(dummy("app"))
        .location(loc("db", "node1", 10))
        .location(loc("app", "node1", -1_000_000))
        .colocation("app", "db", Score::INFINITY)
        .world();
    assert_eq!(w.status(), ["db Started node2", "app Started node2"]);
}

#[test]
fn a_start_that_cannot_happen_is_listed_as_blocked_with_its_reason() {
    let mut w = build(&["node1", "node2"])
        .resource(dummy("a"))
        .resource(dummy("b"))
        .order("a", "b", OrderKind::Mandatory)
        .config();
    let mut state = State::with_online_nodes(["node1", "node2"]);
    let disable = Event::Admin(AdminCommand::Disable {
        resource: "a".into(),
    });
    apply(&w, &mut state, &disable, T0).expect("disable");
    let t = schedule(&w, &state, T0);
    let lines: Vec<String> = t.summary.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        ["Start b ( node1 ) due to unrunnable a start (blocked)"]
    );
    assert!(
        !t.actions
            .iter()
            .any(|a| matches!(a.kind, ActionKind::Start { .. })),
        "nothing starts"
    );
    // Without quorum (no_quorum_policy stop), where it would start.
    w = build(&["node1", "node2"]).resource(dummy("c")).config();
    let mut state = State::with_online_nodes(["node1", "node2"]);
    state.no_quorum = true;
    let lines: Vec<String> = schedule(&w, &state, T0)
        .summary
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(lines, ["Start c ( node1 ) due to no quorum (blocked)"]);
    // A group's members, each where it would go (with the member before it), and what is
    // held counts in the load as placed: d goes to the other node.
    w = build(&["node1", "node2"])
        .resource(dummy("c"))
        .resource(dummy("c2"))
        .resource(dummy("d"))
        .group("g", &["c", "c2"])
        .config();
    let mut lines: Vec<String> = schedule(&w, &state, T0)
        .summary
        .iter()
        .map(ToString::to_string)
        .collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "Start c ( node1 ) due to no quorum (blocked)",
            "Start c2 ( node1 ) due to no quorum (blocked)",
            "Start d ( node2 ) due to no quorum (blocked)"
        ]
    );
}

#[test]
fn a_colocation_loop_is_placed_as_pacemaker_places_it() {
    // rsc1 with rsc2 with rsc3 with rsc1, all mandatory: Pacemaker's coloc-loop case. The
    // loop is broken where placing starts; all three land on one node.
    let config = build(&["node1", "node2", "node3"])
        .resource(dummy("rsc1"))
        .resource(dummy("rsc2"))
        .resource(dummy("rsc3"))
        .colocation("rsc1", "rsc2", Score::INFINITY)
        .colocation("rsc2", "rsc3", Score::INFINITY)
        .colocation("rsc3", "rsc1", Score::INFINITY)
        .config();
    let state = State::with_online_nodes(["node1", "node2", "node3"]);
    let t = schedule(&config, &state, T0);
    assert_eq!(
        t.summary
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [
            "Start rsc1 ( node1 )",
            "Start rsc2 ( node1 )",
            "Start rsc3 ( node1 )"
        ]
    );
}

#[test]
fn a_resource_with_several_primaries_keeps_them_together() {
    // rsc1 must run with each of rsc2, rsc3 and rsc4. Placing rsc1 places its primaries
    // first, and once rsc2 is placed rsc1 can only go where rsc2 is: rsc3 and rsc4, pulled
    // by rsc1, follow (Pacemaker applies each colocation as soon as its primary is placed).
    // Balancing rsc3 onto the emptier node would leave rsc1 nowhere to run.
    let w = build(&["node1", "node2"])
        .resource(dummy("rsc1"))
        .resource(dummy("rsc2"))
        .resource(dummy("rsc3"))
        .resource(dummy("rsc4"))
        .colocation("rsc1", "rsc2", Score::INFINITY)
        .colocation("rsc1", "rsc3", Score::INFINITY)
        .colocation("rsc1", "rsc4", Score::INFINITY)
        .world();
    assert_eq!(
        w.status(),
        [
            "rsc1 Started node1",
            "rsc2 Started node1",
            "rsc3 Started node1",
            "rsc4 Started node1"
        ]
    );
}

#[test]
fn equal_scores_go_to_the_least_loaded_node_before_the_current_one() {
    // As Pacemaker's node sort: score, then (when the score is positive) the node it runs on,
    // then the node with fewer resources placed, then the node it runs on, then the name.
    let both_on_node1 = || {
        build(&["node1", "node2"])
            .resource(dummy("a"))
            .resource(dummy("b"))
            .location(loc("a", "node1", 10))
            .location(loc("b", "node1", 10))
            .world()
    };
    let mut w = both_on_node1();
    assert_eq!(w.status(), ["a Started node1", "b Started node1"]);
    // Without the preference and without stickiness both nodes score 0: a stays (its node
    // breaks the tie between empty nodes), b goes where fewer resources are.
    w.config = build(&["node1", "node2"])
        .resource(dummy("a"))
        .resource(dummy("b"))
        .config();
    assert_eq!(w.plan(), ["Move b ( node1 -> node2 )"]);
    // With stickiness the node it runs on scores higher: both stay.
    let mut w = both_on_node1();
    let sticky = |id: &str| {
        let mut r = dummy(id);
        r.meta.resource_stickiness = Score::new(1);
        r
    };
    w.config = build(&["node1", "node2"])
        .resource(sticky("a"))
        .resource(sticky("b"))
        .config();
    assert!(w.plan().is_empty(), "{:?}", w.plan());
}

#[test]
fn a_mandatory_colocation_bans_other_nodes_and_leaves_the_choice_to_the_locations() {
    // As Pacemaker: "with db, INFINITY" adds nothing where db is, so app's own preference
    // (node3 over node2) still chooses among db's nodes. Adding INFINITY there would tie
    // node2 and node3 and take node2, the first.
    let mut db = dummy("db");
    db.copies = Some(Copies::default());
    let w = build(&["node1", "node2", "node3"])
        .resource(db)
        .resource(dummy("app"))
        .location(loc("db", "node1", -1_000_000))
        .location(loc("app", "node3", 100))
        .colocation("app", "db", Score::INFINITY)
        .world();
    assert_eq!(w.status_of("app"), "app Started node3");
}

#[test]
fn a_stop_that_must_wait_for_a_blocked_stop_is_listed_as_blocked_and_not_run() {
    // a then b (mandatory, symmetric): b stops before a. b's stop failed without fencing,
    // so b is blocked where it runs; a, asked to stop, cannot (Pacemaker's unmanaged-stop-1).
    let mut w = build(&["node1"])
        .resource(dummy("a"))
        .resource(dummy("b"))
        .order("a", "b", OrderKind::Mandatory)
        .world();
    assert_eq!(w.status(), ["a Started node1", "b Started node1"]);
    w.fail_stop("b", "node1");
    let mut a = dummy("a");
    a.meta.target_role = TargetRole::Stopped;
    w.config = build(&["node1"])
        .resource(a)
        .resource(dummy("b"))
        .order("a", "b", OrderKind::Mandatory)
        .config();
    let t = schedule(&w.config, &w.state, w.now);
    assert_eq!(
        t.summary
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["Stop a ( node1 ) due to node availability (blocked)"]
    );
    assert!(
        !t.actions
            .iter()
            .any(|x| matches!(&x.kind, ActionKind::Stop { resource, .. } if resource == "a")),
        "{:?}",
        t.actions
    );
}

#[test]
fn stops_held_along_a_group_name_what_holds_them_as_crm_simulate_does() {
    // b, c, d run as a group; d's stop failed without fencing, so d is blocked where it runs.
    // A new first member a starts: b and c would restart after it, but their stops must wait
    // for d's, which cannot happen. c restarts because b does (`required b stop`); b because
    // a starts, and its stop waits for c's (`unrunnable c stop`), as Pacemaker's
    // unmanaged-block-restart lists them.
    let mut w = build(&["node1"])
        .resource(dummy("b"))
        .resource(dummy("c"))
        .resource(dummy("d"))
        .group("g", &["b", "c", "d"])
        .world();
    w.settle();
    w.fail_stop("d", "node1");
    w.config = build(&["node1"])
        .resource(dummy("a"))
        .resource(dummy("b"))
        .resource(dummy("c"))
        .resource(dummy("d"))
        .group("g", &["a", "b", "c", "d"])
        .config();
    assert_eq!(
        w.plan(),
        [
            "Start a ( node1 )",
            "Stop b ( node1 ) due to unrunnable c stop (blocked)",
            "Stop c ( node1 ) due to required b stop (blocked)",
        ]
    );
    // A member that would move away: its stop waits for the held one after it (bug-5028).
    let mut w = build(&["node1", "node2"])
        .resource(dummy("a"))
        .resource(dummy("b"))
        .group("g", &["a", "b"])
        .location(loc("a", "node1", 10))
        .world();
    w.settle();
    w.fail_stop("b", "node1");
    w.config = build(&["node1", "node2"])
        .resource(dummy("a"))
        .resource(dummy("b"))
        .group("g", &["a", "b"])
        .location(loc("a", "node2", 10))
        .config();
    assert_eq!(
        w.plan(),
        ["Stop a ( node1 ) due to unrunnable b stop (blocked)"]
    );
    w.settle();
    assert_eq!(w.status(), ["a Started node1", "b FAILED node1 (blocked)"]);
}

#[test]
fn what_would_restart_for_a_start_that_a_held_stop_prevents_stays_as_it_runs() {
    // a then b, a then c. b's stop failed (blocked where it runs); a's monitor then fails:
    // its recovery needs its stop, which must wait for b's, so a stays as it is. c would
    // restart after a's start, which will not happen: c stays too, rather than restarting
    // in every transition (found by the seeded simulation).
    let mut w = build(&["node1"])
        .resource(dummy("a"))
        .resource(dummy("b"))
        .resource(dummy("c"))
        .order("a", "b", OrderKind::Mandatory)
        .order("a", "c", OrderKind::Mandatory)
        .world();
    w.settle();
    w.fail_stop("b", "node1");
    w.monitor("a", "node1", rc::ERR_GENERIC);
    assert_eq!(
        w.plan(),
        ["Stop a ( node1 ) due to unrunnable b stop (blocked)"]
    );
    w.settle();
    assert_eq!(w.status_of("c"), "c Started node1");
}

#[test]
fn what_must_never_run_beside_a_resource_whose_stop_is_blocked_does_not_start_there() {
    // a cannot stop (b, ordered after it, is blocked where it runs), so a stays on node1:
    // c, which must never run with a, does not start there although placing took a for
    // stopped.
    let config = |a_stopped: bool| {
        let mut a = dummy("a");
        if a_stopped {
            a.meta.target_role = TargetRole::Stopped;
        }
        let mut c = dummy("c");
        c.meta.target_role = if a_stopped {
            TargetRole::Started
        } else {
            TargetRole::Stopped
        };
        build(&["node1"])
            .resource(a)
            .resource(dummy("b"))
            .resource(c)
            .order("a", "b", OrderKind::Mandatory)
            .colocation("c", "a", Score::MINUS_INFINITY)
            .config()
    };
    let mut w = World {
        config: config(false),
        state: State::with_online_nodes(["node1"]),
        now: T0,
    };
    w.settle();
    w.fail_stop("b", "node1");
    w.config = config(true);
    assert_eq!(
        w.plan(),
        ["Stop a ( node1 ) due to node availability (blocked)"]
    );
    w.settle();
    assert_eq!(w.status_of("c"), "c Stopped");
}

#[test]
fn an_order_one_way_holds_starts_only() {
    // "a then b", not symmetric (Pacemaker's symmetrical=false): b waits for a to start, but
    // b running stays when a stops, and a restart of a restarts nothing.
    let one_way = |a: ResourceSpec| {
        let mut b = build(&["node1"]).resource(a).resource(dummy("b"));
        b.orders.push(Order {
            symmetric: false,
            ..Order::new("a", "b", OrderKind::Mandatory)
        });
        b
    };
    let mut w = one_way(dummy("a")).world();
    assert_eq!(w.status(), ["a Started node1", "b Started node1"]);
    w.monitor("a", "node1", rc::ERR_GENERIC);
    assert_eq!(w.plan(), ["Recover a ( node1 )"]);
    let mut stopped = dummy("a");
    stopped.meta.target_role = TargetRole::Stopped;
    w.config = one_way(stopped.clone()).config();
    assert_eq!(w.plan(), ["Stop a ( node1 ) due to node availability"]);
    // What has yet to start waits for a.
    let w = one_way(stopped).world();
    assert_eq!(w.status(), ["a Stopped (disabled)", "b Stopped"]);
}

#[test]
fn after_a_set_that_needs_one_of_its_resources_one_is_enough() {
    // c after one of a and b (a resource set with require-all = false): as Pacemaker's
    // one-or-more pseudo-action, c starts when either can run, and waits when neither can.
    let config = |ban_a: bool, ban_b: bool| {
        let mut b = build(&["node1"])
            .resource(dummy("a"))
            .resource(dummy("b"))
            .resource(dummy("c"));
        for (r, banned) in [("a", ban_a), ("b", ban_b)] {
            if banned {
                b = b.location(loc(r, "node1", -1_000_000));
            }
        }
        for first in ["a", "b"] {
            b.orders.push(Order {
                first_min: Some(1),
                first_label: Some("one-or-more:s1".into()),
                ..Order::new(first, "c", OrderKind::Mandatory)
            });
        }
        b.config()
    };
    let world = |config| World {
        config,
        state: State::with_online_nodes(["node1"]),
        now: T0,
    };
    let mut plan = world(config(true, false)).plan();
    plan.sort();
    assert_eq!(plan, ["Start b ( node1 )", "Start c ( node1 )"]);
    assert_eq!(
        world(config(true, true)).plan(),
        ["Start c ( node1 ) due to unrunnable one-or-more:s1 (blocked)"]
    );
    // What is not a clone and not in such a set ignores `first_min` (Pacemaker's
    // require-all on a plain resource): c waits for a as usual.
    let mut b = build(&["node1"])
        .resource(dummy("a"))
        .resource(dummy("c"))
        .location(loc("a", "node1", -1_000_000));
    b.orders.push(Order {
        first_min: Some(1),
        ..Order::new("a", "c", OrderKind::Mandatory)
    });
    assert_eq!(
        world(b.config()).plan(),
        ["Start c ( node1 ) due to unrunnable a start (blocked)"]
    );
}

#[test]
fn resource_discovery_says_where_a_resource_is_looked_for_and_exclusive_where_it_runs() {
    let probes = |config: &Config| -> Vec<String> {
        let state = State::with_online_nodes(["node1", "node2", "node3"]);
        schedule(config, &state, T0)
            .actions
            .iter()
            .filter_map(|a| match &a.kind {
                ActionKind::Probe { resource, node } if resource == "a" => Some(node.clone()),
                _ => None,
            })
            .collect()
    };
    let with = |discovery: &[(&str, Discovery, i64)]| {
        let mut b = build(&["node1", "node2", "node3"]).resource(dummy("a"));
        for &(node, discovery, score) in discovery {
            b = b.location(Location {
                discovery,
                ..loc("a", node, score)
            });
        }
        b.config()
    };
    // Looked for everywhere by default; never on node2.
    assert_eq!(probes(&with(&[])), ["node1", "node2", "node3"]);
    assert_eq!(
        probes(&with(&[("node2", Discovery::Never, 0)])),
        ["node1", "node3"]
    );
    // Exclusive: looked for on its exclusive nodes only, and runs only there, whatever the
    // other scores.
    let config = with(&[
        ("node3", Discovery::Exclusive, 0),
        ("node1", Discovery::Always, 100),
    ]);
    assert_eq!(probes(&config), ["node3"]);
    assert!(config.discovers(0, 2) && !config.discovers(0, 0));
    let mut w = World {
        config,
        state: State::with_online_nodes(["node1", "node2", "node3"]),
        now: T0,
    };
    w.settle();
    assert_eq!(w.status_of("a"), "a Started node3");
}

#[test]
fn what_must_run_with_a_resource_an_order_stops_stops_with_it() {
    // central runs after base (mandatory) and engine with central (INFINITY). Disabling base
    // stops central (the order) and so engine (the colocation), as Pacemaker's
    // enforce-colo1: engine was placed with central before the order took central away.
    let mut w = build(&["node1", "node2"])
        .resource(dummy("base"))
        .resource(dummy("central"))
        .resource(dummy("engine"))
        .location(loc("base", "node1", 10))
        .location(loc("central", "node2", 10))
        .order("base", "central", OrderKind::Mandatory)
        .colocation("engine", "central", Score::INFINITY)
        .world();
    assert_eq!(w.status_of("engine"), "engine Started node2");
    w.admin(AdminCommand::Disable {
        resource: "base".into(),
    });
    let mut plan = w.plan();
    plan.sort();
    assert_eq!(
        plan,
        [
            "Stop base ( node1 ) due to node availability",
            "Stop central ( node2 ) due to required base start",
            "Stop engine ( node2 ) due to colocation with central",
        ]
    );
    // Starting from nothing, engine's start is listed as blocked, with that reason.
    let mut base = dummy("base");
    base.meta.target_role = TargetRole::Stopped;
    let w = World {
        config: build(&["node1"])
            .resource(base)
            .resource(dummy("central"))
            .resource(dummy("engine"))
            .order("base", "central", OrderKind::Mandatory)
            .colocation("engine", "central", Score::INFINITY)
            .config(),
        state: State::with_online_nodes(["node1"]),
        now: T0,
    };
    let mut plan = w.plan();
    plan.sort();
    assert_eq!(
        plan,
        [
            "Start central ( node1 ) due to unrunnable base start (blocked)",
            "Start engine ( node1 ) due to colocation with central (blocked)"
        ]
    );
}

#[test]
fn what_follows_a_resource_kept_from_its_node_by_a_held_stop_does_not_start_for_it() {
    // x must stop (disabled) but cannot: its stop waits for b's, and b is blocked. r1, which
    // must never run beside x and may run only on node2, was placed there (x leaving it);
    // once x is known to stay, r1 runs nowhere, and so r2, ordered after r1, must not start
    // for it either (found by the seeded simulation: r2 started while r1 did not).
    let mut w = build(&["node1", "node2"])
        .resource(dummy("x"))
        .resource(with_on_fail(
            dummy("b"),
            OpName::Monitor,
            std::time::Duration::from_secs(10),
            OnFail::Block,
        ))
        .resource(dummy("r1"))
        .resource(dummy("r2"))
        .location(loc("x", "node2", 100))
        .location(loc("x", "node1", -1_000_000))
        .location(loc("b", "node2", 100))
        .location(loc("r1", "node2", 100))
        .location(loc("r1", "node1", -1_000_000))
        .location(loc("r2", "node1", 100))
        .order("x", "b", OrderKind::Mandatory)
        .order("r1", "r2", OrderKind::Mandatory)
        .colocation("r1", "x", Score::MINUS_INFINITY)
        .world();
    assert_eq!(w.status_of("x"), "x Started node2");
    assert_eq!(w.status_of("r2"), "r2 Stopped");
    w.monitor("b", "node2", rc::ERR_GENERIC);
    w.admin(AdminCommand::Disable {
        resource: "x".into(),
    });
    assert_eq!(
        w.plan(),
        [
            "Stop x ( node2 ) due to node availability (blocked)",
            "Start r2 ( node1 ) due to unrunnable r1 start (blocked)"
        ]
    );
    let t = schedule(&w.config, &w.state, w.now);
    assert!(
        !t.actions.iter().any(
            |a| matches!(&a.kind, ActionKind::Start { resource, .. } if resource.starts_with('r'))
        ),
        "{t:#?}"
    );
}
