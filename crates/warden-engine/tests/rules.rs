//! Location rules on node attributes and dates (Pacemaker's rule grammar), node attributes set
//! at run time, and `score_attribute`.

mod common;

use std::time::Duration;

use common::*;
use warden_engine::*;

fn rule_location(resource: &str, rule: &str, score: RuleScore) -> RuleLocation {
    RuleLocation {
        resource: resource.into(),
        rule: Rule::parse(rule).expect("rule"),
        score,
        role: OpRole::Started,
    }
}

/// `dummy` on three nodes with these rule locations and node attributes from the file.
fn world(rules: Vec<RuleLocation>, attrs: Vec<Vec<(&str, &str)>>) -> World {
    let config = build(&["node1", "node2", "node3"])
        .resource(dummy("dummy"))
        .config()
        .with_rule_locations(rules)
        .expect("rules")
        .with_node_attributes(
            attrs
                .into_iter()
                .map(|a| {
                    a.into_iter()
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect()
                })
                .collect(),
        );
    let mut w = World {
        state: State::with_online_nodes(["node1", "node2", "node3"]),
        config,
        now: T0,
    };
    w.settle();
    w
}

fn set(w: &mut World, node: &str, name: &str, value: Option<&str>) {
    w.admin(AdminCommand::NodeAttribute {
        node: node.into(),
        name: name.into(),
        value: value.map(str::to_owned),
    });
}

#[test]
fn a_rule_on_the_files_attributes_places_the_resource() {
    let w = world(
        vec![rule_location(
            "dummy",
            "rack eq b and not_defined maintenance",
            RuleScore::Score(Score::new(100)),
        )],
        vec![
            vec![("rack", "a")],
            vec![("rack", "B"), ("maintenance", "yes")],
            vec![("rack", "b")],
        ],
    );
    assert_eq!(w.status_of("dummy"), "dummy Started node3");
}

#[test]
fn an_attribute_set_at_run_time_overrides_the_files_and_moves_the_resource() {
    let mut w = world(
        vec![rule_location(
            "dummy",
            "#uname eq node1 or rack eq b",
            RuleScore::Score(Score::INFINITY),
        )],
        vec![vec![], vec![("rack", "a")], vec![]],
    );
    assert_eq!(w.status_of("dummy"), "dummy Started node1");
    // A ban of node1 and rack b set on node2 at run time: it goes to node2.
    w.config = w
        .config
        .clone()
        .with_rule_locations(vec![
            rule_location(
                "dummy",
                "#uname eq node1 or rack eq b",
                RuleScore::Score(Score::INFINITY),
            ),
            rule_location(
                "dummy",
                "#uname eq node1",
                RuleScore::Score(Score::MINUS_INFINITY),
            ),
        ])
        .expect("rules");
    set(&mut w, "node2", "rack", Some("b"));
    assert_eq!(w.settle(), ["Move dummy ( node1 -> node2 )"]);
    // Deleting the run-time value brings the file's back (rack a): no node prefers it now,
    // it stays where it runs.
    set(&mut w, "node2", "rack", None);
    assert!(w.plan().is_empty(), "{:?}", w.plan());
}

#[test]
fn score_attribute_takes_the_nodes_value_and_minus_infinity_where_it_is_missing() {
    let mut w = world(
        vec![rule_location(
            "dummy",
            "defined pingd or #uname eq node3",
            RuleScore::Attribute("pingd".into()),
        )],
        vec![vec![("pingd", "100")], vec![("pingd", "200")], vec![]],
    );
    assert_eq!(w.status_of("dummy"), "dummy Started node2");
    set(&mut w, "node1", "pingd", Some("300"));
    assert_eq!(w.settle(), ["Move dummy ( node2 -> node1 )"]);
    // node3 matches the rule but has no pingd: -INFINITY, never there.
    set(&mut w, "node1", "pingd", Some("-INFINITY"));
    set(&mut w, "node2", "pingd", Some("-INFINITY"));
    assert_eq!(
        w.settle(),
        ["Stop dummy ( node1 ) due to node availability"]
    );
}

#[test]
fn a_date_rule_takes_effect_when_its_date_comes_and_the_scheduler_wakes_for_it() {
    // From 00:30 on the first day (T0 is 2026-01-01T00:00:00Z), node3 is preferred.
    let mut w = world(
        vec![rule_location(
            "dummy",
            "#uname eq node3 and date gt \"2026-01-01 00:30:00\"",
            RuleScore::Score(Score::new(50)),
        )],
        vec![vec![], vec![], vec![]],
    );
    assert_eq!(w.status_of("dummy"), "dummy Started node1");
    let t = schedule(&w.config, &w.state, w.now);
    assert!(t.is_empty());
    let wake = t.wakeup.expect("a wake-up at the date");
    assert_eq!(wake.rfc3339(), "2026-01-01T00:30:00.001Z");
    w.now = wake;
    assert_eq!(w.settle(), ["Move dummy ( node1 -> node3 )"]);
    // Past the date, nothing to wake for.
    w.advance(Duration::from_secs(1));
    let t = schedule(&w.config, &w.state, w.now);
    assert!(t.is_empty() && t.wakeup.is_none(), "{t:?}");
}

#[test]
fn a_promoted_role_rule_adds_to_the_promotion_score() {
    let mut db = dummy("db");
    let mut promoted = OpSpec::new(OpName::Monitor, Duration::from_secs(9));
    promoted.role = OpRole::Promoted;
    db.ops.push(promoted);
    db.copies = Some(Copies {
        score: Some(Score::new(5)),
        ..Copies::promotable()
    });
    let config = build(&["node1", "node2"])
        .resource(db)
        .config()
        .with_rule_locations(vec![RuleLocation {
            role: OpRole::Promoted,
            ..rule_location("db", "ssd eq true", RuleScore::Score(Score::new(10)))
        }])
        .expect("rules")
        .with_node_attributes(vec![vec![], vec![("ssd".into(), "true".into())]]);
    let mut w = World {
        state: State::with_online_nodes(["node1", "node2"]),
        config,
        now: T0,
    };
    w.settle();
    assert_eq!(
        w.status_of("db"),
        "db Promoted [ node2 ] Unpromoted [ node1 ]"
    );
}

#[test]
fn bad_attribute_names_are_refused() {
    let mut w = world(vec![], vec![vec![], vec![], vec![]]);
    for bad in ["", "#uname", "a b"] {
        let e = apply(
            &w.config,
            &mut w.state,
            &Event::Admin(AdminCommand::NodeAttribute {
                node: "node1".into(),
                name: bad.into(),
                value: Some("x".into()),
            }),
            w.now,
        );
        assert!(
            matches!(e, Err(ApplyError::BadAttribute(_))),
            "{bad:?}: {e:?}"
        );
    }
}

#[test]
fn node_health_keeps_resources_off_unhealthy_nodes_as_the_strategy_says() {
    // a prefers node1; b too, but b may run on unhealthy nodes.
    let world = |strategy: NodeHealthStrategy| {
        let mut b = dummy("b");
        b.meta.allow_unhealthy_nodes = true;
        let mut w = build(&["node1", "node2"])
            .resource(dummy("a"))
            .resource(b)
            .location(loc("a", "node1", 10))
            .location(loc("b", "node1", 10))
            .cluster(|c| {
                c.node_health.strategy = strategy;
                c.node_health.yellow = Score::new(-8);
                c.node_health.base = Score::new(5);
            })
            .world();
        w.settle();
        w
    };
    // A red node runs nothing but what allows unhealthy nodes.
    let mut w = world(NodeHealthStrategy::MigrateOnRed);
    set(&mut w, "node1", "#health-disk", Some("red"));
    assert_eq!(w.plan(), ["Move a ( node1 -> node2 )"]);
    // Yellow is nothing to migrate_on_red, everything to only_green.
    let mut w = world(NodeHealthStrategy::MigrateOnRed);
    set(&mut w, "node1", "#health-disk", Some("yellow"));
    assert!(w.plan().is_empty(), "{:?}", w.plan());
    let mut w = world(NodeHealthStrategy::OnlyGreen);
    set(&mut w, "node1", "#health-disk", Some("yellow"));
    assert_eq!(w.plan(), ["Move a ( node1 -> node2 )"]);
    // Progressive: every node starts from the base (5) and the configured scores add up:
    // node1 scores 10 + 5 - 8 = 7 against node2's 5, then 10 + 5 - 16 = -1 (and a negative
    // score does not count for b).
    let mut w = world(NodeHealthStrategy::Progressive);
    set(&mut w, "node1", "#health-disk", Some("yellow"));
    assert!(w.plan().is_empty(), "{:?}", w.plan());
    set(&mut w, "node1", "#health-cpu", Some("yellow"));
    assert_eq!(w.plan(), ["Move a ( node1 -> node2 )"]);
    // Without a strategy health attributes are only attributes.
    let mut w = world(NodeHealthStrategy::None);
    set(&mut w, "node1", "#health-disk", Some("red"));
    assert!(w.plan().is_empty(), "{:?}", w.plan());
}

#[test]
fn a_node_in_maintenance_keeps_what_runs_there_and_takes_nothing_new() {
    // Pacemaker's node `maintenance` attribute, set at run time as `crm_attribute` sets it.
    let mut w = build(&["node1", "node2"])
        .resource(dummy("a"))
        .resource(dummy("b"))
        .resource({
            let mut c = dummy("c");
            c.meta.target_role = TargetRole::Stopped;
            c
        })
        .location(loc("a", "node1", 100))
        .location(loc("b", "node1", 50))
        .location(loc("c", "node1", 50))
        .world();
    assert_eq!(w.status_of("a"), "a Started node1");
    assert_eq!(w.status_of("b"), "b Started node1");
    w.admin(AdminCommand::NodeAttribute {
        node: "node1".into(),
        name: "maintenance".into(),
        value: Some("on".into()),
    });
    // What runs on node1 is left as it is: not moved, not stopped, not probed again.
    assert!(w.plan().is_empty(), "{:?}", w.plan());
    assert_eq!(
        node_groups(&w.config, &w.state),
        [
            ("Online", vec!["node2".to_owned()]),
            ("Maintenance", vec!["node1".to_owned()]),
        ]
    );
    // Even disabled, what runs there stays; what is not running there starts elsewhere.
    w.admin(AdminCommand::Disable {
        resource: "b".into(),
    });
    assert!(w.plan().is_empty(), "{:?}", w.plan());
    w.admin(AdminCommand::Enable {
        resource: "c".into(),
    });
    assert_eq!(w.settle(), ["Start c ( node2 )"]);
    // Out of maintenance, placement applies again.
    w.admin(AdminCommand::NodeAttribute {
        node: "node1".into(),
        name: "maintenance".into(),
        value: Some("false".into()),
    });
    assert_eq!(
        w.settle(),
        [
            "Stop b ( node1 ) due to node availability",
            "Move c ( node2 -> node1 )"
        ]
    );
}
