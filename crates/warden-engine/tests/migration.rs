//! Live migration (`allow_migrate`): a move is migrate_to, migrate_from, then the stop where
//! it was; a recovery is not a migration; what is ordered after a migrating resource stays.

mod common;

use common::*;
use warden_engine::*;

fn migratable(id: &str) -> ResourceSpec {
    let mut r = dummy(id);
    r.meta.allow_migrate = true;
    r
}

fn kinds(t: &Transition) -> Vec<String> {
    t.actions
        .iter()
        .filter(|a| !matches!(a.kind, ActionKind::Probe { .. }))
        .map(|a| a.kind.to_string())
        .collect()
}

#[test]
fn a_move_migrates_and_the_stop_comes_last() {
    let mut w = build(&["node1", "node2"])
        .resource(migratable("vm"))
        .resource(dummy("app"))
        .location(loc("vm", "node1", 100))
        .location(loc("app", "node2", 100))
        .order("vm", "app", OrderKind::Mandatory)
        .world();
    assert_eq!(w.status_of("vm"), "vm Started node1");
    w.admin(AdminCommand::Move {
        resource: "vm".into(),
        node: "node2".into(),
    });
    let t = schedule(&w.config, &w.state, w.now);
    // app, ordered after vm, is not restarted by a migration.
    assert_eq!(
        t.summary
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["Migrate vm ( node1 -> node2 )"]
    );
    assert_eq!(
        kinds(&t),
        [
            "vm_migrate_to_0 on node1 (to node2)",
            "vm_migrate_from_0 on node2 (from node1)",
            "vm_stop_0 on node1"
        ]
    );
    assert!(depends(&t, 2, 1) && depends(&t, 1, 0));
    assert_eq!(w.settle(), ["Migrate vm ( node1 -> node2 )"]);
    assert_eq!(w.status_of("vm"), "vm Started node2");
}

#[test]
fn a_failed_resource_is_recovered_not_migrated_and_a_failed_migration_recovers() {
    let mut w = build(&["node1", "node2"])
        .resource(migratable("vm"))
        .location(loc("vm", "node1", 100))
        .cluster(|c| c.start_failure_is_fatal = true)
        .world();
    let mut vm = migratable("vm");
    vm.meta.migration_threshold = 1;
    w.config = build(&["node1", "node2"])
        .resource(vm)
        .location(loc("vm", "node1", 100))
        .config();
    w.monitor("vm", "node1", rc::ERR_GENERIC);
    assert_eq!(w.settle(), ["Recover vm ( node1 -> node2 )"]);
    // A migration whose migrate_from fails leaves it possibly active on both nodes: stopped on
    // both and started once, on node1 (node2 reached its threshold of 1).
    w.admin(AdminCommand::Cleanup {
        resource: None,
        node: None,
    });
    w.settle();
    assert_eq!(w.status_of("vm"), "vm Started node1");
    w.admin(AdminCommand::Move {
        resource: "vm".into(),
        node: "node2".into(),
    });
    let lines = w.step(&[("vm", OpName::MigrateFrom, "node2", rc::ERR_GENERIC)]);
    assert_eq!(lines, ["Migrate vm ( node1 -> node2 )"]);
    // Failed on node2: the resource is recovered where it stays (its copy on node2 stops).
    assert_eq!(w.plan(), ["Recover vm ( node1 )"]);
    assert_eq!(w.fail_count("vm", "node2"), 1);
}

#[test]
fn what_it_is_ordered_after_optionally_does_not_keep_it_from_migrating() {
    // vm after storage: storage leaves node1 in the same transition as vm moves. A mandatory
    // order makes vm stop before storage stops, and start after storage starts, so it moves
    // (crm_simulate says why, Pacemaker's 5-am-then-bm-a-not-migratable); an optional one
    // does not hold it, and it migrates (as Pacemaker's migrate-stop).
    for (kind, line) in [
        (
            OrderKind::Mandatory,
            "Move vm ( node1 -> node2 ) due to unrunnable storage stop",
        ),
        (OrderKind::Optional, "Migrate vm ( node1 -> node2 )"),
    ] {
        let mut w = build(&["node1", "node2"])
            .resource(dummy("storage"))
            .resource(migratable("vm"))
            .location(loc("storage", "node1", 100))
            .location(loc("vm", "node1", 100))
            .order("storage", "vm", kind)
            .world();
        w.admin(AdminCommand::Standby {
            node: "node1".into(),
        });
        let mut plan = w.plan();
        plan.sort();
        let mut want = vec![line, "Move storage ( node1 -> node2 )"];
        want.sort();
        assert_eq!(plan, want, "{kind:?}");
    }
}

#[test]
fn an_order_before_a_whole_group_does_not_keep_its_members_from_migrating() {
    // As Pacemaker's group-dependents: "storage then the group vms" orders the group's
    // pseudo-actions, not its members' migrations; the members migrate while storage moves
    // by stop and start. The same order on the member itself holds it to a move.
    for (then_group, line) in [
        (true, "Migrate vm ( node1 -> node2 )"),
        (
            false,
            "Move vm ( node1 -> node2 ) due to unrunnable storage stop",
        ),
    ] {
        let mut b = build(&["node1", "node2"])
            .resource(dummy("storage"))
            .resource(migratable("vm"))
            .location(loc("storage", "node1", 100))
            .location(loc("vm", "node1", 100))
            .order("storage", "vm", OrderKind::Mandatory);
        b.orders[0].then_group = then_group;
        let mut w = b.world();
        w.admin(AdminCommand::Standby {
            node: "node1".into(),
        });
        let mut plan = w.plan();
        plan.sort();
        let mut want = vec![line, "Move storage ( node1 -> node2 )"];
        want.sort();
        assert_eq!(plan, want, "then_group {then_group}");
    }
}

#[test]
fn a_resource_started_with_another_definition_still_migrates_where_it_goes() {
    // The definition changed where it runs, and it moves anyway: the migration starts it
    // with the definition now (Pacemaker's migrate-1); staying, it restarts.
    let mut w = build(&["node1", "node2"])
        .resource(migratable("vm"))
        .location(loc("vm", "node1", 100))
        .world();
    assert_eq!(w.status_of("vm"), "vm Started node1");
    let on = w.on_node_mut("vm", "node1");
    on.digest = on.digest.map(|d| !d);
    assert_eq!(
        w.plan(),
        ["Restart vm ( node1 ) due to resource definition change"]
    );
    w.admin(AdminCommand::Move {
        resource: "vm".into(),
        node: "node2".into(),
    });
    assert_eq!(w.settle(), ["Migrate vm ( node1 -> node2 )"]);
    assert_eq!(w.status_of("vm"), "vm Started node2");
}

#[test]
fn what_it_is_ordered_after_only_stopping_does_not_keep_it_from_migrating() {
    // Pacemaker's 10-a-then-bm-b-move-a-clone: the clone vm runs after only loses its copy
    // on node1; vm migrates all the same (its migrate_to comes before that stop).
    let mut base = dummy("base");
    base.copies = Some(Copies {
        name: Some("base-clone".into()),
        ..Copies::default()
    });
    let mut w = build(&["node1", "node2"])
        .resource(base)
        .resource(migratable("vm"))
        .location(loc("vm", "node1", 100))
        .order("base", "vm", OrderKind::Mandatory)
        .world();
    assert_eq!(w.status_of("base"), "base Started [ node1 node2 ]");
    w.admin(AdminCommand::Ban {
        resource: "base".into(),
        node: "node1".into(),
    });
    w.admin(AdminCommand::Move {
        resource: "vm".into(),
        node: "node2".into(),
    });
    let mut plan = w.plan();
    plan.sort();
    assert_eq!(
        plan,
        [
            "Migrate vm ( node1 -> node2 )",
            "Stop base ( node1 ) due to node availability"
        ]
    );
}
