//! Utilization and placement strategies: nodes' capacities, what resources use, and how
//! `utilization`, `minimal` and `balanced` place them (Pacemaker's `placement-strategy`).

mod common;

use common::*;
use warden_engine::*;

fn using(id: &str, cpu: i64) -> ResourceSpec {
    let mut r = dummy(id);
    r.utilization = vec![("cpu".to_owned(), cpu)];
    r
}

fn strategy(s: PlacementStrategy) -> impl FnOnce(&mut ClusterOptions) {
    move |c| c.placement_strategy = s
}

#[test]
fn a_node_takes_only_what_its_capacity_holds() {
    let three = |s: PlacementStrategy| {
        build(&["node1", "node2"])
            .capacity("node1", &[("cpu", 2)])
            .capacity("node2", &[("cpu", 4)])
            .resource(using("a", 2))
            .resource(using("b", 2))
            .resource(using("c", 2))
            .cluster(strategy(s))
            .world()
    };
    // Under `default` utilization is not looked at: c goes to node1, the first of two nodes
    // with one resource each.
    assert_eq!(
        three(PlacementStrategy::Default).status(),
        ["a Started node1", "b Started node2", "c Started node1"]
    );
    // Under `utilization` node1 is full after a.
    let w = three(PlacementStrategy::Utilization);
    assert_eq!(
        w.status(),
        ["a Started node1", "b Started node2", "c Started node2"]
    );
    // The status shows what is used of each capacity.
    assert_eq!(
        node_utilization(&w.config, &w.state, "node2"),
        [("cpu".to_owned(), 4, 4)]
    );
    assert!(
        node_utilization(&three(PlacementStrategy::Default).config, &w.state, "node2").is_empty()
    );
    // What fits nowhere does not start.
    let w = build(&["node1"])
        .capacity("node1", &[("cpu", 1)])
        .resource(using("big", 2))
        .cluster(strategy(PlacementStrategy::Utilization))
        .world();
    assert_eq!(w.status(), ["big Stopped"]);
}

#[test]
fn balanced_prefers_the_most_capacity_left_and_minimal_the_first_node() {
    let two = |s: PlacementStrategy| {
        build(&["node1", "node2"])
            .capacity("node1", &[("cpu", 4)])
            .capacity("node2", &[("cpu", 8)])
            .resource(using("a", 1))
            .resource(using("b", 1))
            .cluster(strategy(s))
            .world()
    };
    // `utilization`: ties by load, then node order.
    assert_eq!(
        two(PlacementStrategy::Utilization).status(),
        ["a Started node1", "b Started node2"]
    );
    // `balanced`: node2 has more left, for both (8 - 1 = 7 > 4).
    assert_eq!(
        two(PlacementStrategy::Balanced).status(),
        ["a Started node2", "b Started node2"]
    );
    // `minimal`: as few nodes as will do, so the first node while it holds them.
    assert_eq!(
        two(PlacementStrategy::Minimal).status(),
        ["a Started node1", "b Started node1"]
    );
}

#[test]
fn a_group_goes_where_all_its_members_fit() {
    // node1 holds either member but not both: the group's first member already avoids it.
    let w = build(&["node1", "node2"])
        .capacity("node1", &[("cpu", 3)])
        .capacity("node2", &[("cpu", 4)])
        .resource(using("g1", 2))
        .resource(using("g2", 2))
        .group("g", &["g1", "g2"])
        .cluster(strategy(PlacementStrategy::Utilization))
        .world();
    assert_eq!(w.status(), ["g1 Started node2", "g2 Started node2"]);
}

#[test]
fn a_clones_copies_go_where_a_copy_of_what_is_colocated_with_it_fits_too() {
    // Pacemaker's colocated-utilization-clone: `front` (2 copies, cpu 2) must run with a copy
    // of `back` (cpu 4). node1 (cpu 4) holds a copy of front alone but not both: the copies
    // go to node2 and node3, and back's with them.
    let mut front = using("front", 2);
    front.copies = Some(Copies {
        clone_max: Some(2),
        ..Copies::default()
    });
    let mut back = using("back", 4);
    back.copies = front.copies.clone();
    let w = build(&["node1", "node2", "node3"])
        .capacity("node1", &[("cpu", 4)])
        .capacity("node2", &[("cpu", 8)])
        .capacity("node3", &[("cpu", 10)])
        .resource(front)
        .resource(back)
        .colocation("back", "front", Score::INFINITY)
        .cluster(strategy(PlacementStrategy::Utilization))
        .world();
    assert_eq!(
        w.status(),
        [
            "front Started [ node2 node3 ]",
            "back Started [ node2 node3 ]"
        ]
    );
}

/// Groups g1 [x1, y1] preferring node1 and g2 [x2, y2] preferring node2 (200), their members
/// sticky (INFINITY) and gone from a node at their first failure, under `utilization`.
fn sticky_groups(b: Builder) -> Builder {
    let member = |id: &str| {
        let mut r = dummy(id);
        r.meta.resource_stickiness = Score::INFINITY;
        r.meta.migration_threshold = 1;
        r
    };
    b.resource(member("x1"))
        .resource(member("y1"))
        .resource(member("x2"))
        .resource(member("y2"))
        .group("g1", &["x1", "y1"])
        .group("g2", &["x2", "y2"])
        .location(loc("x1", "node1", 200))
        .location(loc("y1", "node1", 200))
        .location(loc("x2", "node2", 200))
        .location(loc("y2", "node2", 200))
        .cluster(strategy(PlacementStrategy::Utilization))
}

#[test]
fn under_a_placement_strategy_what_scores_highest_where_it_runs_is_placed_first() {
    // As Pacemaker's bug-lf-2613: groups g1 on node1 and g2 on node2, sticky. y1 (in g1)
    // fails on node1 past its threshold: g1 must move. Pacemaker sorts the resources before
    // placing them under a placement strategy: g2, which scores highest where it runs, first
    // (it stays on node2), then g1, banned from node1 as a whole, which goes to node3 (the
    // node with fewer resources), not beside g2.
    let mut w = sticky_groups(build(&["node1", "node2", "node3"])).world();
    assert_eq!(w.status_of("y1"), "y1 Started node1");
    assert_eq!(w.status_of("y2"), "y2 Started node2");
    w.op(
        "y1",
        "node1",
        OpKey::new(OpName::Monitor, std::time::Duration::from_secs(10)),
        rc::ERR_GENERIC,
    );
    assert_eq!(
        w.plan(),
        [
            "Move x1 ( node1 -> node3 )",
            "Recover y1 ( node1 -> node3 )",
        ]
    );
}

#[test]
fn under_a_placement_strategy_what_must_run_with_a_banned_clone_is_placed_after() {
    // As Pacemaker's bug-lf-2619: both groups must run with the clone `ping`, which fails
    // on node1 past its threshold. Sorting takes in what each is colocated with: g1 scores
    // -INFINITY where it runs, so g2 is placed first and g1 goes to node3.
    let mut ping = dummy("ping");
    ping.copies = Some(Copies::default());
    ping.meta.migration_threshold = 1;
    let mut w = sticky_groups(build(&["node1", "node2", "node3"]).resource(ping))
        .colocation("x1", "ping", Score::INFINITY)
        .colocation("x2", "ping", Score::INFINITY)
        .world();
    assert_eq!(w.status_of("y1"), "y1 Started node1");
    w.op(
        "ping",
        "node1",
        OpKey::new(OpName::Monitor, std::time::Duration::from_secs(10)),
        rc::ERR_GENERIC,
    );
    let mut plan = w.plan();
    plan.sort();
    assert_eq!(
        plan,
        [
            "Move x1 ( node1 -> node3 )",
            "Move y1 ( node1 -> node3 )",
            "Stop ping ( node1 ) due to node availability",
        ]
    );
}

#[test]
fn a_clones_stickiness_does_not_sort_what_is_colocated_with_it_first() {
    // Under a placement strategy, resources are placed in Pacemaker's order: the higher score
    // where each runs first, ties in the file's order. A clone's stickiness belongs to its
    // copies, not to the clone that is sorted, so it lifts neither the clone nor what must run
    // with it: p (declared first) is placed before v, takes its own node back on a tie of
    // load, and v, behind it, goes where fewer resources run. Counting the copies' stickiness
    // placed v first and moved p instead (Pacemaker's load-stopped-loop).
    let with = |pinned: bool| {
        let mut c = dummy("c");
        c.copies = Some(Copies::default());
        c.meta.resource_stickiness = Score::new(1);
        let mut b = build(&["node1", "node2"])
            .resource(c)
            .resource(dummy("p"))
            .resource(dummy("v"))
            .colocation("v", "c", Score::INFINITY)
            .cluster(strategy(PlacementStrategy::Utilization));
        if pinned {
            b = b
                .location(loc("p", "node1", 100))
                .location(loc("v", "node1", 100));
        }
        b
    };
    let mut w = with(true).world();
    assert_eq!(
        w.status(),
        [
            "c Started [ node1 node2 ]",
            "p Started node1",
            "v Started node1"
        ]
    );
    w.config = with(false).config();
    assert_eq!(w.plan(), ["Move v ( node1 -> node2 )"]);
}
