//! Plain clones (Pacemaker's anonymous clones): a copy per node, `clone_max`, copies that
//! move, colocations and orders with a clone, and `interleave`.

mod common;

use common::*;
use warden_engine::*;

/// A plain clone of a Dummy-like resource (stickiness 1, as the config reader gives clones).
fn clone(id: &str, f: impl FnOnce(&mut Copies)) -> ResourceSpec {
    let mut r = dummy(id);
    let mut c = Copies::default();
    f(&mut c);
    r.copies = Some(c);
    r.meta.resource_stickiness = Score::new(1);
    r
}

fn three() -> Builder {
    build(&["node1", "node2", "node3"])
}

fn standby(w: &mut World, node: &str) {
    w.admin(AdminCommand::Standby { node: node.into() });
}

fn start_of(t: &Transition, resource: &str, node: &str) -> ActionId {
    t.actions
        .iter()
        .find(|a| {
            matches!(&a.kind, ActionKind::Start { resource: r, node: n } if r == resource && n == node)
        })
        .map(|a| a.id)
        .unwrap_or_else(|| panic!("no start of {resource} on {node}: {t:#?}"))
}

#[test]
fn a_clone_runs_a_copy_on_every_node_and_is_not_multiple_active() {
    let mut world = World {
        state: State::with_online_nodes(["node1", "node2", "node3"]),
        config: three().resource(clone("web", |_| {})).config(),
        now: T0,
    };
    let mut started = world.settle();
    started.sort();
    assert_eq!(
        started,
        [
            "Start web ( node1 )",
            "Start web ( node2 )",
            "Start web ( node3 )"
        ]
    );
    assert_eq!(world.status_of("web"), "web Started [ node1 node2 node3 ]");
    // A node going into standby stops its copy only: the others have a node each already.
    standby(&mut world, "node2");
    assert_eq!(
        world.settle(),
        ["Stop web ( node2 ) due to node availability"]
    );
    assert_eq!(world.status_of("web"), "web Started [ node1 node3 ]");
}

#[test]
fn with_clone_max_a_copy_moves_to_a_node_without_one() {
    let mut w = three()
        .resource(clone("web", |c| c.clone_max = Some(2)))
        .world();
    assert_eq!(w.status_of("web"), "web Started [ node1 node2 ]");
    standby(&mut w, "node1");
    assert_eq!(w.settle(), ["Move web ( node1 -> node3 )"]);
    // A failed copy goes elsewhere only past its threshold: here it recovers in place.
    w.monitor("web", "node2", rc::ERR_GENERIC);
    assert_eq!(w.settle(), ["Recover web ( node2 )"]);
}

#[test]
fn a_copy_banned_from_its_node_stops_when_a_copy_not_running_can_start_instead() {
    // Pacemaker assigns a clone's inactive instances before one active on a node it is now
    // banned from (clone-no-shuffle), but one active on a node that merely cannot run
    // resources (standby) first of all (migrate-stop_start): stop and start, or a move.
    let world = || {
        let mut w = three().resource(clone("web", |_| {})).world();
        standby(&mut w, "node3");
        w.settle();
        assert_eq!(w.status_of("web"), "web Started [ node1 node2 ]");
        w.admin(AdminCommand::Online {
            node: "node3".into(),
        });
        w
    };
    let mut w = world();
    w.admin(AdminCommand::Ban {
        resource: "web".into(),
        node: "node1".into(),
    });
    let mut plan = w.plan();
    plan.sort();
    assert_eq!(
        plan,
        [
            "Start web ( node3 )",
            "Stop web ( node1 ) due to node availability"
        ]
    );
    let mut w = world();
    standby(&mut w, "node1");
    assert_eq!(w.plan(), ["Move web ( node1 -> node3 )"]);
}

#[test]
fn without_quorum_a_clone_stops_for_node_availability_and_says_where_it_would_start() {
    // Pacemaker's stop-failure-with-fencing: the copies kept from starting by the lost quorum
    // are listed blocked, so is what is colocated with the clone; running copies stop for
    // node availability (a primitive's stop says no quorum).
    let mut w = build(&["node1", "node2"])
        .resource(clone("web", |_| {}))
        .resource(dummy("vip"))
        .colocation("vip", "web", Score::INFINITY)
        .cluster(|c| c.no_quorum_policy = NoQuorumPolicy::Stop)
        .world();
    w.state.no_quorum = true;
    let mut plan = w.plan();
    plan.sort();
    assert_eq!(
        plan,
        [
            "Stop vip ( node1 ) due to no quorum",
            "Stop web ( node1 ) due to node availability",
            "Stop web ( node2 ) due to node availability"
        ]
    );
    w.settle();
    let mut plan = w.plan();
    plan.sort();
    assert_eq!(plan.len(), 3, "{plan:?}");
    assert!(
        plan[0].starts_with("Start vip ( node")
            && plan[0].ends_with(" ) due to no quorum (blocked)")
    );
    assert_eq!(
        plan[1..],
        [
            "Start web ( node1 ) due to no quorum (blocked)",
            "Start web ( node2 ) due to no quorum (blocked)"
        ]
    );
}

#[test]
fn copies_beyond_clone_max_stop_last_in_node_order_whatever_the_load() {
    // Pacemaker's anon-instance-pending: it keeps the instances it numbered first (in node
    // order) and stops the rest, however loaded their nodes are.
    let with = |max: Option<u32>| {
        three()
            .resource(dummy("a"))
            .resource(dummy("b"))
            .location(loc("a", "node1", 100))
            .location(loc("b", "node1", 100))
            .resource(clone("web", |c| c.clone_max = max))
            .config()
    };
    let mut w = World {
        state: State::with_online_nodes(["node1", "node2", "node3"]),
        config: with(None),
        now: T0,
    };
    w.settle();
    assert_eq!(w.status_of("web"), "web Started [ node1 node2 node3 ]");
    w.config = with(Some(2));
    assert_eq!(w.plan(), ["Stop web ( node3 ) due to node availability"]);
}

#[test]
fn a_failed_copy_restarting_while_a_new_copy_starts_is_summarised_as_pacemaker_pairs_them() {
    // Pacemaker's novell-252693-3: the failed instance takes the new node, a fresh one
    // starts where it failed.
    let mut w = World {
        state: State::with_online_nodes(["node1", "node2"]),
        config: three().resource(clone("web", |_| {})).config(),
        now: T0,
    };
    w.settle();
    w.monitor("web", "node2", rc::ERR_GENERIC);
    w.event(Event::NodeUp {
        node: "node3".into(),
    });
    let mut plan = w.plan();
    plan.sort();
    assert_eq!(
        plan,
        ["Recover web ( node2 -> node3 )", "Start web ( node2 )"]
    );
    w.settle();
    assert_eq!(w.status_of("web"), "web Started [ node1 node2 node3 ]");
}

#[test]
fn a_resource_colocated_with_a_clone_runs_where_a_copy_runs() {
    let mut w = three()
        .resource(clone("web", |_| {}))
        .resource(dummy("vip"))
        .location(loc("web", "node1", -1_000_000))
        .colocation("vip", "web", Score::INFINITY)
        .world();
    assert_eq!(w.status_of("web"), "web Started [ node2 node3 ]");
    let vip = w.status_of("vip");
    assert!(
        vip == "vip Started node2" || vip == "vip Started node3",
        "{vip}"
    );
    // No copy anywhere: the dependent cannot run, placed nowhere (as Pacemaker says: for
    // node availability).
    w.admin(AdminCommand::Disable {
        resource: "web".into(),
    });
    let plan = w.plan();
    assert!(
        plan.iter()
            .any(|l| l.starts_with("Stop vip") && l.ends_with("due to node availability")),
        "{plan:?}"
    );
}

#[test]
fn a_copy_failed_and_blocked_is_no_copy_to_be_colocated_with() {
    // Pacemaker's bug-cl-5170 and clone-fail-block-colocation: the copy stays where it failed
    // (nothing acts on it), but what must run with the clone leaves that node.
    let web = with_on_fail(
        clone("web", |_| {}),
        OpName::Monitor,
        std::time::Duration::from_secs(10),
        OnFail::Block,
    );
    let mut w = three()
        .resource(web)
        .resource(dummy("vip"))
        .location(loc("vip", "node1", 100))
        .colocation("vip", "web", Score::INFINITY)
        .world();
    assert_eq!(w.status_of("vip"), "vip Started node1");
    w.monitor("web", "node1", rc::ERR_GENERIC);
    let plan = w.plan();
    assert_eq!(plan.len(), 1, "{plan:?}");
    assert!(plan[0].starts_with("Move vip ( node1 -> node"), "{plan:?}");
    assert_eq!(
        w.status_of("web"),
        "web Started [ node2 node3 ] FAILED [ node1 ] (blocked)"
    );
}

#[test]
fn an_order_after_a_clone_waits_for_every_copy_and_restarts_for_a_copy_where_it_runs() {
    let config = three()
        .resource(clone("web", |c| c.name = Some("web-clone".into())))
        .resource(dummy("app"))
        .location(loc("app", "node1", 100))
        .order("web", "app", OrderKind::Mandatory)
        .config();
    let state = State::with_online_nodes(["node1", "node2"]);
    let t = schedule(&config, &state, T0);
    let app = start_of(&t, "app", "node1");
    for n in ["node1", "node2"] {
        assert!(
            depends(&t, app, start_of(&t, "web", n)),
            "app after web on {n}"
        );
    }
    let mut w = World {
        config,
        state,
        now: T0,
    };
    w.settle();
    // node3 joins: its new copy starts elsewhere, and app stays (Pacemaker's bug-lf-2581).
    w.event(Event::NodeUp {
        node: "node3".into(),
    });
    assert_eq!(w.settle(), ["Start web ( node3 )"]);
    // The copy on app's node restarts: so does app, ordered after the whole clone (the
    // reason names the whole clone, as Pacemaker's `web-clone running`); one elsewhere not.
    w.monitor("web", "node2", rc::ERR_GENERIC);
    assert_eq!(w.settle(), ["Recover web ( node2 )"]);
    w.monitor("web", "node1", rc::ERR_GENERIC);
    let mut plan = w.plan();
    plan.sort();
    assert_eq!(
        plan,
        [
            "Recover web ( node1 )",
            "Restart app ( node1 ) due to required web-clone running"
        ]
    );
}

#[test]
fn interleaved_clones_bind_copy_to_copy_on_each_node() {
    let config = three()
        .resource(clone("base", |_| {}))
        .resource(clone("top", |c| c.interleave = true))
        .order("base", "top", OrderKind::Mandatory)
        .config();
    let mut w = World {
        state: State::with_online_nodes(["node1", "node2"]),
        config,
        now: T0,
    };
    w.settle();
    w.event(Event::NodeUp {
        node: "node3".into(),
    });
    let t = schedule(&w.config, &w.state, w.now);
    let mut plan: Vec<String> = t.summary.iter().map(ToString::to_string).collect();
    plan.sort();
    // Nothing restarts on node1 and node2.
    assert_eq!(plan, ["Start base ( node3 )", "Start top ( node3 )"]);
    assert!(depends(
        &t,
        start_of(&t, "top", "node3"),
        start_of(&t, "base", "node3")
    ));
    w.settle();
    // base cannot run on node2 any more: only top's copy there stops with it, with no reason
    // (Pacemaker unassigns it: clone-interleave-2).
    w.admin(AdminCommand::Ban {
        resource: "base".into(),
        node: "node2".into(),
    });
    let mut plan = w.plan();
    plan.sort();
    assert_eq!(
        plan,
        [
            "Stop base ( node2 ) due to node availability",
            "Stop top ( node2 )"
        ]
    );
}

#[test]
fn clone_min_lets_what_follows_run_on_that_many_copies() {
    // app waits for 2 copies of web (Pacemaker's clone-min), not for all of them.
    let config = || {
        three()
            .resource(clone("web", |c| c.clone_min = Some(2)))
            .resource(dummy("app"))
            .location(loc("app", "node1", 100))
            .order("web", "app", OrderKind::Mandatory)
            .config()
    };
    let mut w = World {
        config: config(),
        state: State::with_online_nodes(["node1"]),
        now: T0,
    };
    // One copy can run: app's start waits, and says for what.
    let mut plan = w.plan();
    plan.sort();
    assert_eq!(
        plan,
        [
            "Start app ( node1 ) due to unrunnable clone-one-or-more:web-then-app (blocked)",
            "Start web ( node1 )"
        ]
    );
    w.event(Event::NodeUp {
        node: "node2".into(),
    });
    w.settle();
    assert_eq!(w.status_of("app"), "app Started node1");
    // A third copy starting restarts nothing (without clone_min app would restart).
    w.event(Event::NodeUp {
        node: "node3".into(),
    });
    assert_eq!(w.plan(), ["Start web ( node3 )"]);
    w.settle();
    // Losing one copy of three leaves two: app stays. Losing another stops it.
    standby(&mut w, "node3");
    assert_eq!(w.plan(), ["Stop web ( node3 ) due to node availability"]);
    w.settle();
    standby(&mut w, "node2");
    let mut plan = w.plan();
    plan.sort();
    assert_eq!(
        plan,
        [
            "Stop app ( node1 ) due to unrunnable clone-one-or-more:web-then-app",
            "Stop web ( node2 ) due to node availability"
        ]
    );
}

#[test]
fn a_group_of_clones_runs_its_members_together_copy_by_copy() {
    // A cloned group (Pacemaker's clone of a group): fs then app on each node, bound copy by
    // copy, although neither clone is interleaved.
    let mut w = three()
        .resource(clone("fs", |_| {}))
        .resource(clone("app", |_| {}))
        .location(loc("fs", "node3", -1_000_000))
        .group("stack", &["fs", "app"])
        .world();
    // app runs only where fs does.
    assert_eq!(
        w.status(),
        ["fs Started [ node1 node2 ]", "app Started [ node1 node2 ]"]
    );
    // A failure of fs on node1 restarts fs and app there, nothing on node2.
    w.monitor("fs", "node1", rc::ERR_GENERIC);
    let mut plan = w.plan();
    plan.sort();
    assert_eq!(
        plan,
        [
            "Recover fs ( node1 )",
            "Restart app ( node1 ) due to required fs start"
        ]
    );
    w.settle();
    // app failing on node2 restarts only itself.
    w.monitor("app", "node2", rc::ERR_GENERIC);
    assert_eq!(w.plan(), ["Recover app ( node2 )"]);
}

#[test]
fn a_cloned_group_member_starting_where_its_group_runs_moves_nothing_there() {
    // Pacemaker's bug-lf-2508: the group's copy on node3 runs fs only; node1 leaves. app's
    // start on node3 completes that copy of the group; node1's copy just stops.
    let mut w = three()
        .resource(clone("fs", |_| {}))
        .resource(clone("app", |_| {}))
        .group("stack", &["fs", "app"])
        .world();
    w.on_node_mut("app", "node3").role = Role::Stopped;
    standby(&mut w, "node1");
    let mut plan = w.plan();
    plan.sort();
    assert_eq!(
        plan,
        [
            "Start app ( node3 )",
            "Stop app ( node1 ) due to node availability",
            "Stop fs ( node1 ) due to node availability"
        ]
    );
}

#[test]
fn an_ordered_clones_copies_start_one_after_another_and_stop_in_reverse() {
    let run = |ordered: bool| {
        let config = three()
            .resource(clone("web", |c| c.ordered = ordered))
            .config();
        let state = State::with_online_nodes(["node1", "node2", "node3"]);
        let t = schedule(&config, &state, T0);
        let starts: Vec<ActionId> = ["node1", "node2", "node3"]
            .iter()
            .map(|n| start_of(&t, "web", n))
            .collect();
        (t, starts)
    };
    let (t, s) = run(true);
    assert!(depends(&t, s[1], s[0]) && depends(&t, s[2], s[1]));
    let (t, s) = run(false);
    assert!(!depends(&t, s[1], s[0]) && !depends(&t, s[2], s[1]));
    // Stopping: node3's copy first, then node2's, then node1's.
    let mut w = World {
        config: three()
            .resource(clone("web", |c| c.ordered = true))
            .config(),
        state: State::with_online_nodes(["node1", "node2", "node3"]),
        now: T0,
    };
    w.settle();
    w.admin(AdminCommand::Disable {
        resource: "web".into(),
    });
    let t = schedule(&w.config, &w.state, w.now);
    let stop = |n: &str| {
        t.actions
            .iter()
            .find(|a| matches!(&a.kind, ActionKind::Stop { node, .. } if node == n))
            .map(|a| a.id)
            .unwrap_or_else(|| panic!("no stop on {n}"))
    };
    assert!(depends(&t, stop("node2"), stop("node3")) && depends(&t, stop("node1"), stop("node2")));
}

/// A globally unique clone that runs up to `node_max` copies on a node: its instances.
fn unique(id: &str, clone_max: u32, node_max: u32) -> ResourceSpec {
    clone(id, |c| {
        c.globally_unique = true;
        c.clone_max = Some(clone_max);
        c.clone_node_max = node_max;
    })
}

#[test]
fn clone_node_max_runs_instances_that_keep_their_numbers_when_they_move() {
    // Five instances, two per node at most, two nodes: four run, spread (Pacemaker's inc0).
    let w = build(&["node1", "node2"])
        .resource(unique("ip", 5, 2))
        .world();
    let mut running: Vec<String> = (0..5).map(|n| w.status_of(&format!("ip:{n}"))).collect();
    running.sort();
    assert_eq!(
        running,
        [
            "ip:0 Started node1",
            "ip:1 Started node2",
            "ip:2 Started node1",
            "ip:3 Started node2",
            "ip:4 Stopped"
        ]
    );
    // The clusterip case: two instances, both may run on one node. node2 leaves: its
    // instance (its number, what the agent serves) moves to node1, beside the other.
    let mut w = build(&["node1", "node2"])
        .resource(unique("ip", 2, 2))
        .world();
    assert_eq!(w.status_of("ip:1"), "ip:1 Started node2");
    standby(&mut w, "node2");
    assert_eq!(w.plan(), ["Move ip:1 ( node2 -> node1 )"]);
    w.settle();
    assert_eq!(w.status_of("ip:0"), "ip:0 Started node1");
    assert_eq!(w.status_of("ip:1"), "ip:1 Started node1");
}

#[test]
fn constraints_and_commands_naming_a_clone_of_instances_name_them_all() {
    // "web" runs only where an instance of "ip" runs and after one has started; a ban of
    // "ip" bans every instance; two per node at most.
    let mut w = three()
        .resource(unique("ip", 2, 2))
        .resource(dummy("web"))
        .location(loc("ip", "node3", 100))
        .location(loc("web", "node1", 50))
        .colocation("web", "ip", Score::INFINITY)
        .order("ip", "web", OrderKind::Mandatory)
        .world();
    assert_eq!(w.status_of("ip:0"), "ip:0 Started node3");
    assert_eq!(w.status_of("ip:1"), "ip:1 Started node3");
    assert_eq!(w.status_of("web"), "web Started node3");
    w.admin(AdminCommand::Ban {
        resource: "ip".into(),
        node: "node3".into(),
    });
    let t = schedule(&w.config, &w.state, w.now);
    let mut plan: Vec<String> = t.summary.iter().map(ToString::to_string).collect();
    plan.sort();
    assert_eq!(
        plan,
        [
            "Move ip:0 ( node3 -> node1 )",
            "Move ip:1 ( node3 -> node2 )",
            "Move web ( node3 -> node1 )"
        ]
    );
    // web starts after an instance of ip has started (the clone running).
    let web = start_of(&t, "web", "node1");
    let ip0 = start_of(&t, "ip:0", "node1");
    assert!(depends(&t, web, ip0), "{t:#?}");
    w.settle();
    // Without any instance, web runs nowhere (as a colocation with a clone that runs nowhere).
    w.admin(AdminCommand::Disable {
        resource: "ip".into(),
    });
    let mut plan = w.plan();
    plan.sort();
    assert_eq!(
        plan,
        [
            "Stop ip:0 ( node1 ) due to node availability",
            "Stop ip:1 ( node2 ) due to node availability",
            "Stop web ( node1 ) due to node availability"
        ]
    );
}

#[test]
fn clone_node_max_above_one_needs_a_globally_unique_clone() {
    let anonymous = three()
        .resource(clone("web", |c| c.clone_node_max = 2))
        .try_config()
        .expect_err("anonymous copies on one node are one to the agent");
    assert_eq!(
        anonymous.to_string(),
        "clone \"web\": clone_node_max above 1 needs globally_unique = true"
    );
    let none = three()
        .resource(unique("ip", 0, 2))
        .try_config()
        .expect_err("no instance to name");
    assert_eq!(
        none.to_string(),
        "clone \"ip\": clone_node_max above 1 needs clone_max of at least 1"
    );
}

#[test]
fn an_ordered_clone_of_instances_starts_them_one_after_another() {
    let mut ip = unique("ip", 3, 2);
    ip.copies.as_mut().expect("clone").ordered = true;
    let w = build(&["node1", "node2"]).resource(ip).config();
    let state = State::with_online_nodes(["node1", "node2"]);
    let t = schedule(&w, &state, T0);
    let (s0, s1, s2) = (
        start_of(&t, "ip:0", "node1"),
        start_of(&t, "ip:1", "node2"),
        start_of(&t, "ip:2", "node1"),
    );
    assert!(depends(&t, s1, s0) && depends(&t, s2, s1), "{t:#?}");
}

#[test]
fn a_copy_on_a_lost_node_of_a_clone_that_requires_only_quorum_is_replaced_at_once() {
    // Two copies on three nodes; node1 is lost. A clone that waits for fencing keeps the
    // lost copy's place until the fence: only then does a copy start on node3. One that
    // requires only quorum takes that copy for stopped: a new copy starts on node3 at once,
    // not after the fence, and the lost one stops with it (Pacemaker's
    // clone-requires-quorum-recovery).
    for requires in [Requires::Fencing, Requires::Quorum] {
        let mut web = clone("web", |c| c.clone_max = Some(2));
        web.meta.requires = requires;
        let mut w = three().resource(web).fencing().world();
        w.settle();
        assert_eq!(w.status_of("web"), "web Started [ node1 node2 ]");
        w.event(Event::NodeDown {
            node: "node1".into(),
        });
        let t = schedule(&w.config, &w.state, w.now);
        let fence = find(&t, |k| matches!(k, ActionKind::Fence { .. }));
        let fenced = "Fence (reboot) node1 'peer is no longer part of the cluster'";
        let stop = "Stop web ( node1 ) due to node availability";
        if requires == Requires::Fencing {
            assert!(
                !t.actions
                    .iter()
                    .any(|a| matches!(a.kind, ActionKind::Start { .. }))
            );
            assert_eq!(w.step(&[]), [fenced, stop]);
            assert_eq!(w.settle(), ["Start web ( node3 )"]);
        } else {
            assert!(!depends(&t, start_of(&t, "web", "node3"), fence));
            assert_eq!(w.step(&[]), [fenced, stop, "Start web ( node3 )"]);
        }
        assert_eq!(w.status_of("web"), "web Started [ node2 node3 ]");
    }
}

#[test]
fn a_copy_whose_stop_failed_on_a_lost_node_that_cannot_be_fenced_has_no_line() {
    // web runs on every node. Its stop fails on node3, which is to be fenced for it; before
    // the fence, quorum is lost and node3 leaves: it cannot be fenced without quorum, and the
    // copy there is past the cluster's reach. crm_simulate lists nothing for it
    // (stop-failure-no-quorum), where a copy that merely ran there is a blocked stop.
    let mut w = three().resource(clone("web", |_| {})).fencing().world();
    w.settle();
    w.fail_stop("web", "node3");
    w.event(Event::Quorum(false));
    w.event(Event::NodeDown {
        node: "node3".into(),
    });
    let plan = w.plan();
    assert!(!plan.iter().any(|l| l.contains("node3")), "{plan:?}");
    // A copy that only ran on a lost node that cannot be fenced: its stop is blocked.
    let mut w = three().resource(clone("web", |_| {})).fencing().world();
    w.settle();
    w.event(Event::Quorum(false));
    w.event(Event::NodeDown {
        node: "node3".into(),
    });
    assert!(
        w.plan()
            .contains(&"Stop web ( node3 ) due to node availability (blocked)".to_owned()),
        "{:?}",
        w.plan()
    );
}

#[test]
fn a_cloned_groups_members_stop_in_crm_simulates_words() {
    // As Pacemaker's cloned-group-stop: root, then base, then the cloned group [a, b, c].
    // root is disabled: base cannot run; a, running, is required to stop by base's order;
    // b names a's stop (the group orders the stops), c names b's start.
    let mut w = build(&["node1"])
        .resource(clone("root", |_| {}))
        .resource(clone("base", |_| {}))
        .resource(clone("a", |_| {}))
        .resource(clone("b", |_| {}))
        .resource(clone("c", |_| {}))
        .group("g", &["a", "b", "c"])
        .order("root", "base", OrderKind::Mandatory)
        .order("base", "a", OrderKind::Mandatory)
        .world();
    assert_eq!(w.status_of("c"), "c Started [ node1 ]");
    w.admin(AdminCommand::Disable {
        resource: "root".into(),
    });
    assert_eq!(
        w.plan(),
        [
            "Stop root ( node1 ) due to node availability",
            "Stop base ( node1 ) due to unrunnable root running",
            "Stop a ( node1 ) due to required base running",
            "Stop b ( node1 ) due to required a stop",
            "Stop c ( node1 ) due to required b start",
        ]
    );
}

#[test]
fn a_stop_forced_through_a_colocation_is_named_as_crm_simulate_names_it() {
    // As Pacemaker's complex_enforce_colo: keystone (a clone) is disabled; api starts after
    // it, sched after api and with it, vol after sched and with it. api cannot run; sched,
    // running, must stop for the order (`required api start`); vol is held by its
    // colocation first (`colocation with sched`), as Pacemaker blocks a colocation's
    // dependents as soon as the primary's start is unrunnable.
    let mut w = build(&["node1"])
        .resource(clone("keystone", |_| {}))
        .resource(dummy("api"))
        .resource(dummy("sched"))
        .resource(dummy("vol"))
        .order("keystone", "api", OrderKind::Mandatory)
        .order("api", "sched", OrderKind::Mandatory)
        .order("sched", "vol", OrderKind::Mandatory)
        .colocation("sched", "api", Score::INFINITY)
        .colocation("vol", "sched", Score::INFINITY)
        .world();
    assert_eq!(w.status_of("vol"), "vol Started node1");
    w.admin(AdminCommand::Disable {
        resource: "keystone".into(),
    });
    assert_eq!(
        w.plan(),
        [
            "Stop keystone ( node1 ) due to node availability",
            "Stop api ( node1 ) due to unrunnable keystone running",
            "Stop sched ( node1 ) due to required api start",
            "Stop vol ( node1 ) due to colocation with sched",
        ]
    );
}

#[test]
fn copies_an_interleaved_order_unassigns_hold_back_nothing_colocated_with_them() {
    // As Pacemaker's unrunnable-2: api (interleaved) starts after core, copy by copy; core is
    // disabled, so api's copies are unassigned. listener, colocated with api, keeps running
    // (Pacemaker unassigns api's copies after placing what goes with them, and blocks
    // dependents only for a start that cannot run, not for a copy that is not placed);
    // vol, a primitive after api and with it, is stopped by the order.
    let mut w = build(&["node1", "node2"])
        .resource(clone("core", |_| {}))
        .resource(clone("api", |c| c.interleave = true))
        .resource(clone("listener", |_| {}))
        .resource(dummy("vol"))
        .order("core", "api", OrderKind::Mandatory)
        .order("api", "vol", OrderKind::Mandatory)
        .colocation("listener", "api", Score::INFINITY)
        .colocation("vol", "api", Score::INFINITY)
        .world();
    assert_eq!(w.status_of("listener"), "listener Started [ node1 node2 ]");
    w.admin(AdminCommand::Disable {
        resource: "core".into(),
    });
    let plan = w.plan();
    assert!(plan.iter().all(|l| !l.contains("listener")), "{plan:#?}");
    assert!(
        plan.contains(&"Stop vol ( node1 ) due to required api running".to_owned()),
        "{plan:#?}"
    );
}
