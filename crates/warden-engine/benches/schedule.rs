//! Scheduler benchmark (design section 8): a cluster of R resources on N nodes in steady state,
//! one monitor failure injected, `schedule` timed. Run: `cargo bench -p warden-engine`.
//! Prints medians; the figures and the comparison with Pacemaker live in docs/benchmarks.md.

use std::hint::black_box;
use std::time::{Duration, Instant};

use warden_engine::*;

const T0: Time = Time::from_millis(1_767_225_600_000);

/// A steady cluster: every resource probed everywhere and started on one node, round robin.
fn steady(resources: usize, nodes: usize) -> (Config, State) {
    let node_names: Vec<String> = (1..=nodes).map(|i| format!("node{i}")).collect();
    let specs: Vec<ResourceSpec> = (0..resources)
        .map(|i| {
            let mut r = ResourceSpec::new(
                format!("r{i}"),
                Agent::Ocf {
                    provider: "heartbeat".into(),
                    kind: "Dummy".into(),
                },
            );
            r.ops
                .push(OpSpec::new(OpName::Monitor, Duration::from_secs(10)));
            r.meta.migration_threshold = 3;
            r
        })
        .collect();
    let config = Config::new(
        ClusterOptions::default(),
        node_names.clone(),
        vec![],
        specs,
        vec![],
    )
    .expect("config");
    let mut state = State::with_online_nodes(node_names.iter().map(String::as_str));
    for i in 0..resources {
        let rs = state.resources.entry(format!("r{i}")).or_default();
        for (j, n) in node_names.iter().enumerate() {
            let role = if j == i % nodes {
                Role::Started
            } else {
                Role::Stopped
            };
            rs.nodes.insert(
                n.clone(),
                ResourceOnNode {
                    role,
                    ..ResourceOnNode::default()
                },
            );
        }
    }
    (config, state)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn bench(resources: usize, nodes: usize, iters: usize) {
    let (config, mut state) = steady(resources, nodes);
    let idle = schedule(&config, &state, T0);
    assert!(idle.is_empty(), "the steady state must need no action");
    let mut idle_times = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t = Instant::now();
        black_box(schedule(black_box(&config), black_box(&state), T0));
        idle_times.push(t.elapsed());
    }

    let failed = format!("r{}", resources / 2);
    let node = state
        .active_nodes(&failed)
        .next()
        .expect("placed")
        .to_owned();
    let ev = Event::OpResult(OpResult {
        resource: failed.clone(),
        node: node.clone(),
        op: OpKey::new(OpName::Monitor, Duration::from_secs(10)),
        rc: rc::ERR_GENERIC,
        exit_reason: String::new(),
    });
    apply(&config, &mut state, &ev, T0).expect("apply");
    let mut times = Vec::with_capacity(iters);
    let mut last = Transition::default();
    for _ in 0..iters {
        let t = Instant::now();
        last = black_box(schedule(black_box(&config), black_box(&state), T0));
        times.push(t.elapsed());
    }
    let summary: Vec<String> = last.summary.iter().map(ToString::to_string).collect();
    assert_eq!(summary, [format!("Recover {failed} ( {node} )")]);
    let min = times.iter().min().copied().unwrap_or_default();
    let med = median(times);
    println!(
        "schedule {resources:>5} resources x {nodes:>2} nodes, one monitor failure: median {med:>8.2?}  min {min:>8.2?}  (steady, no failure: median {:.2?}; {iters} runs)",
        median(idle_times),
    );
    println!(
        "RESULT resources={resources} nodes={nodes} median_ns={}",
        med.as_nanos()
    );
}

/// 500 groups of 4 on 10 nodes, steady; the second member of one group fails: it recovers and
/// the two after it restart.
fn bench_groups(groups: usize, nodes: usize, iters: usize) {
    let node_names: Vec<String> = (1..=nodes).map(|i| format!("node{i}")).collect();
    let mut specs = Vec::new();
    let mut group_list = Vec::new();
    for g in 0..groups {
        let members: Vec<String> = (0..4).map(|m| format!("g{g}m{m}")).collect();
        for id in &members {
            let mut r = ResourceSpec::new(
                id.clone(),
                Agent::Ocf {
                    provider: "heartbeat".into(),
                    kind: "Dummy".into(),
                },
            );
            r.ops
                .push(OpSpec::new(OpName::Monitor, Duration::from_secs(10)));
            specs.push(r);
        }
        group_list.push(Group {
            id: format!("g{g}"),
            resources: members,
        });
    }
    let config = Config::new(
        ClusterOptions::default(),
        node_names.clone(),
        vec![],
        specs,
        vec![],
    )
    .and_then(|c| c.with_constraints(vec![], vec![], group_list))
    .expect("config");
    let mut state = State::with_online_nodes(node_names.iter().map(String::as_str));
    for g in 0..groups {
        for m in 0..4 {
            let rs = state.resources.entry(format!("g{g}m{m}")).or_default();
            for (j, n) in node_names.iter().enumerate() {
                let role = if j == g % nodes {
                    Role::Started
                } else {
                    Role::Stopped
                };
                rs.nodes.insert(
                    n.clone(),
                    ResourceOnNode {
                        role,
                        ..ResourceOnNode::default()
                    },
                );
            }
        }
    }
    assert!(
        schedule(&config, &state, T0).is_empty(),
        "the steady state must need no action"
    );
    let g = groups / 2;
    let node = node_names[g % nodes].clone();
    let ev = Event::OpResult(OpResult {
        resource: format!("g{g}m1"),
        node: node.clone(),
        op: OpKey::new(OpName::Monitor, Duration::from_secs(10)),
        rc: rc::ERR_GENERIC,
        exit_reason: String::new(),
    });
    apply(&config, &mut state, &ev, T0).expect("apply");
    let mut times = Vec::with_capacity(iters);
    let mut last = Transition::default();
    for _ in 0..iters {
        let t = Instant::now();
        last = black_box(schedule(black_box(&config), black_box(&state), T0));
        times.push(t.elapsed());
    }
    assert_eq!(last.summary.len(), 3, "{:?}", last.summary);
    let med = median(times);
    println!(
        "schedule {groups:>5} groups of 4 x {nodes:>2} nodes, one member fails:  median {med:>8.2?}"
    );
    println!(
        "RESULT groups={groups} nodes={nodes} median_ns={}",
        med.as_nanos()
    );
}

/// `resources` promotable resources with a copy on each of `nodes` nodes, each promoted on one
/// node (round robin), steady; the promoted copy of one fails (rc 9): it is demoted, stopped,
/// started and promoted again.
fn bench_promotable(resources: usize, nodes: usize, iters: usize) {
    let node_names: Vec<String> = (1..=nodes).map(|i| format!("node{i}")).collect();
    let promoted_mon = Duration::from_secs(9);
    let specs: Vec<ResourceSpec> = (0..resources)
        .map(|i| {
            let mut r = ResourceSpec::new(
                format!("p{i}"),
                Agent::Ocf {
                    provider: "warden-test".into(),
                    kind: "Stateful".into(),
                },
            );
            r.ops
                .push(OpSpec::new(OpName::Monitor, Duration::from_secs(10)));
            let mut m = OpSpec::new(OpName::Monitor, promoted_mon);
            m.role = OpRole::Promoted;
            r.ops.push(m);
            r.meta.migration_threshold = 3;
            r.promotable = Some(Promotable {
                score: Some(Score::new(5)),
                ..Promotable::default()
            });
            r
        })
        .collect();
    let config = Config::new(
        ClusterOptions::default(),
        node_names.clone(),
        vec![],
        specs,
        vec![],
    )
    .expect("config");
    let mut state = State::with_online_nodes(node_names.iter().map(String::as_str));
    for i in 0..resources {
        let rs = state.resources.entry(format!("p{i}")).or_default();
        for (j, n) in node_names.iter().enumerate() {
            let role = if j == i % nodes {
                Role::Promoted
            } else {
                Role::Started
            };
            rs.nodes.insert(
                n.clone(),
                ResourceOnNode {
                    role,
                    ..ResourceOnNode::default()
                },
            );
        }
    }
    assert!(
        schedule(&config, &state, T0).is_empty(),
        "the steady state must need no action"
    );
    let victim = resources / 2;
    let node = node_names[victim % nodes].clone();
    let ev = Event::OpResult(OpResult {
        resource: format!("p{victim}"),
        node: node.clone(),
        op: OpKey::new(OpName::Monitor, promoted_mon),
        rc: rc::FAILED_PROMOTED,
        exit_reason: String::new(),
    });
    apply(&config, &mut state, &ev, T0).expect("apply");
    let mut times = Vec::with_capacity(iters);
    let mut last = Transition::default();
    for _ in 0..iters {
        let t = Instant::now();
        last = black_box(schedule(black_box(&config), black_box(&state), T0));
        times.push(t.elapsed());
    }
    let summary: Vec<String> = last.summary.iter().map(ToString::to_string).collect();
    assert_eq!(summary, [format!("Recover p{victim} ( {node} )")]);
    assert_eq!(last.actions.len(), 4, "demote, stop, start, promote");
    let med = median(times);
    println!(
        "schedule {resources:>5} promotable x {nodes:>2} nodes, one promoted copy fails: median {med:>8.2?}"
    );
    println!(
        "RESULT promotable={resources} nodes={nodes} median_ns={}",
        med.as_nanos()
    );
}

fn main() {
    // `cargo test --benches` runs this once quickly; `cargo bench` passes --bench.
    let quick = !std::env::args().any(|a| a == "--bench");
    let iters = if quick { 3 } else { 51 };
    // WARDEN_BENCH_SIZES="1000x5 8000x10" picks the sizes (bench/engine-vs-pacemaker.sh uses it).
    let sizes = std::env::var("WARDEN_BENCH_SIZES").unwrap_or_else(|_| "1000x5 8000x10".to_owned());
    for size in sizes.split_whitespace() {
        let parsed = size
            .split_once('x')
            .and_then(|(r, n)| Some((r.parse().ok()?, n.parse().ok()?)));
        match parsed {
            Some((r, n)) if r > 0 && n > 0 => bench(r, n, iters),
            _ => eprintln!("WARDEN_BENCH_SIZES: skipping {size:?} (expected RESOURCESxNODES)"),
        }
    }
    if std::env::var("WARDEN_BENCH_SIZES").is_err() {
        bench_groups(500, 10, iters);
        bench_promotable(1000, 10, iters);
    }
}
