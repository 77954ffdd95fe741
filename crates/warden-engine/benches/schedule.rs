//! Scheduler benchmark: a cluster of R resources on N nodes in steady state,
//! one monitor failure injected, `schedule` timed. Run: `cargo bench -p warden-engine`.
//! Prints medians; the figures and the comparison with Pacemaker live in docs/benchmarks.md.

use std::hint::black_box;
use std::time::{Duration, Instant};

use warden_engine::*;

const T0: Time = Time::from_millis(1_767_225_600_000);
const MONITOR: Duration = Duration::from_secs(10);

fn node_names(nodes: usize) -> Vec<String> {
    (1..=nodes).map(|i| format!("node{i}")).collect()
}

/// An OCF resource with a recurring monitor every 10 s.
fn resource(id: String, provider: &str, kind: &str) -> ResourceSpec {
    let mut r = ResourceSpec::new(
        id,
        Agent::Ocf {
            provider: provider.into(),
            kind: kind.into(),
        },
    );
    r.ops.push(OpSpec::new(OpName::Monitor, MONITOR));
    r
}

/// Records `id` as probed everywhere: `home_role` on node number `home`, `other_role` elsewhere.
fn place(
    state: &mut State,
    id: &str,
    names: &[String],
    home: usize,
    home_role: Role,
    other_role: Role,
) {
    let rs = state.resources.entry(id.to_owned()).or_default();
    for (j, n) in names.iter().enumerate() {
        let role = if j == home { home_role } else { other_role };
        rs.nodes.insert(
            n.clone(),
            ResourceOnNode {
                role,
                ..ResourceOnNode::default()
            },
        );
    }
}

/// Checks the state is steady, then records a failed recurring monitor of `resource` on `node`.
fn fail(config: &Config, state: &mut State, resource: String, node: String, op: OpKey, rc: i32) {
    assert!(
        schedule(config, state, T0).is_empty(),
        "the steady state must need no action"
    );
    let ev = Event::OpResult(OpResult {
        resource,
        node,
        op,
        rc,
        exit_reason: String::new(),
        status: warden_engine::rc::ExecStatus::Done,
        digest: None,
    });
    apply(config, state, &ev, T0).expect("apply");
}

/// Times `iters` runs of `schedule`; returns the last transition and the times.
fn time_schedule(config: &Config, state: &State, iters: usize) -> (Transition, Vec<Duration>) {
    let mut times = Vec::with_capacity(iters);
    let mut last = Transition::default();
    for _ in 0..iters {
        let t = Instant::now();
        last = black_box(schedule(black_box(config), black_box(state), T0));
        times.push(t.elapsed());
    }
    (last, times)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// A steady cluster: every resource probed everywhere and started on one node, round robin.
fn bench(resources: usize, nodes: usize, iters: usize) {
    let names = node_names(nodes);
    let specs: Vec<ResourceSpec> = (0..resources)
        .map(|i| {
            let mut r = resource(format!("r{i}"), "heartbeat", "Dummy");
            r.meta.migration_threshold = 3;
            r
        })
        .collect();
    let config = Config::new(
        ClusterOptions::default(),
        names.clone(),
        vec![],
        specs,
        vec![],
    )
    .expect("config");
    let mut state = State::with_online_nodes(names.iter().map(String::as_str));
    for i in 0..resources {
        place(
            &mut state,
            &format!("r{i}"),
            &names,
            i % nodes,
            Role::Started,
            Role::Stopped,
        );
    }
    let (_, idle_times) = time_schedule(&config, &state, iters);

    let failed = format!("r{}", resources / 2);
    let node = names[(resources / 2) % nodes].clone();
    let op = OpKey::new(OpName::Monitor, MONITOR);
    fail(
        &config,
        &mut state,
        failed.clone(),
        node.clone(),
        op,
        rc::ERR_GENERIC,
    );
    let (last, times) = time_schedule(&config, &state, iters);
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
    let names = node_names(nodes);
    let mut specs = Vec::new();
    let mut group_list = Vec::new();
    for g in 0..groups {
        let members: Vec<String> = (0..4).map(|m| format!("g{g}m{m}")).collect();
        specs.extend(
            members
                .iter()
                .map(|id| resource(id.clone(), "heartbeat", "Dummy")),
        );
        group_list.push(Group {
            id: format!("g{g}"),
            resources: members,
        });
    }
    let config = Config::new(
        ClusterOptions::default(),
        names.clone(),
        vec![],
        specs,
        vec![],
    )
    .and_then(|c| c.with_constraints(vec![], vec![], group_list))
    .expect("config");
    let mut state = State::with_online_nodes(names.iter().map(String::as_str));
    for g in 0..groups {
        for m in 0..4 {
            place(
                &mut state,
                &format!("g{g}m{m}"),
                &names,
                g % nodes,
                Role::Started,
                Role::Stopped,
            );
        }
    }
    let g = groups / 2;
    let op = OpKey::new(OpName::Monitor, MONITOR);
    fail(
        &config,
        &mut state,
        format!("g{g}m1"),
        names[g % nodes].clone(),
        op,
        rc::ERR_GENERIC,
    );
    let (last, times) = time_schedule(&config, &state, iters);
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
    let names = node_names(nodes);
    let promoted_mon = Duration::from_secs(9);
    let specs: Vec<ResourceSpec> = (0..resources)
        .map(|i| {
            let mut r = resource(format!("p{i}"), "warden-test", "Stateful");
            let mut m = OpSpec::new(OpName::Monitor, promoted_mon);
            m.role = OpRole::Promoted;
            r.ops.push(m);
            r.meta.migration_threshold = 3;
            r.copies = Some(Copies {
                score: Some(Score::new(5)),
                ..Copies::promotable()
            });
            r
        })
        .collect();
    let config = Config::new(
        ClusterOptions::default(),
        names.clone(),
        vec![],
        specs,
        vec![],
    )
    .expect("config");
    let mut state = State::with_online_nodes(names.iter().map(String::as_str));
    for i in 0..resources {
        place(
            &mut state,
            &format!("p{i}"),
            &names,
            i % nodes,
            Role::Promoted,
            Role::Started,
        );
    }
    let victim = resources / 2;
    let node = names[victim % nodes].clone();
    let op = OpKey::new(OpName::Monitor, promoted_mon);
    fail(
        &config,
        &mut state,
        format!("p{victim}"),
        node.clone(),
        op,
        rc::FAILED_PROMOTED,
    );
    let (last, times) = time_schedule(&config, &state, iters);
    let summary: Vec<String> = last.summary.iter().map(ToString::to_string).collect();
    // A failed promoted copy recovers in its role, as crm_simulate words it.
    assert_eq!(summary, [format!("Recover p{victim} ( Promoted {node} )")]);
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
