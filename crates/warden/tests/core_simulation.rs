//! A seeded simulation of the daemon's core ([`warden::core::Core`]) over virtual time: a
//! simulated world of agents whose operations succeed, fail or hang, processes that exit
//! (some in a crash loop), operators' commands, reloads that change, drop and bring back
//! resources, shutdowns and SIGKILLs of the daemon (a new core from the store). After every
//! step the invariants hold:
//!
//! - nothing is acted on before it is recorded: the core's state is exactly the recorded
//!   events applied, in order, and every transition it starts passes `check_transition`;
//! - no start while a mandatory `first` is not running, no stop of a `first` under a running
//!   `then` (one that can be stopped);
//! - a crash loop delays only itself: an idle core has nothing left to schedule;
//! - once failures stop, the core's record matches the world: what it says runs, runs.
//!
//! Replay one seed: `WARDEN_CORE_SIM_SEED=N cargo test -p warden --test core_simulation`;
//! `WARDEN_CORE_SIM_SEEDS=N` runs seeds 1..=N; `SIMTRACE=1` prints the world and the log of
//! a resource whose record and world differ, `SIMSTATS=1` what each seed recorded.
//! `WARDEN_CORE_SIM_KILL_MIDACTION=1` also kills the daemon while an agent changes something,
//! which loses that result (seed 2041 shows it): the hardening issue's "record an action
//! before launching it" is what closes that gap.

use std::collections::{BTreeMap, BinaryHeap};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use warden::core::{Boot, Core, Effect, Input, OpOutcome};
use warden::exec::process::Exited;
use warden::store::MemoryStore;
use warden::wire::WireDefinition;
use warden_engine::*;

const NODE: &str = "vm";
const T0: Time = Time::from_millis(1_767_225_600_000);

/// xorshift64*: small, seeded, replayable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// One resource of the simulated file: id, class, parameter generation.
#[derive(Clone, Debug)]
struct Res {
    id: String,
    process: bool,
    generation: u32,
}

impl Res {
    fn spec(&self) -> ResourceSpec {
        let agent = if self.process {
            Agent::Process(ProcessSpec {
                command: vec!["sleep".into(), format!("{}", 1000 + self.generation)],
                stop_signal: "TERM".into(),
                stop_timeout: Duration::from_secs(5),
                ..ProcessSpec::default()
            })
        } else {
            Agent::Ocf {
                provider: "heartbeat".into(),
                kind: "Dummy".into(),
            }
        };
        let mut r = ResourceSpec::new(self.id.clone(), agent);
        if !self.process {
            r.params.push((
                "state".into(),
                format!("/run/{}.{}", self.id, self.generation),
            ));
        }
        r.ops
            .push(OpSpec::new(OpName::Monitor, Duration::from_secs(10)));
        r
    }
}

/// The simulated file: resources (some gone for now) and mandatory orders i -> j (i < j).
#[derive(Clone, Debug)]
struct File {
    resources: Vec<Res>,
    present: Vec<bool>,
    orders: Vec<(usize, usize)>,
}

impl File {
    fn config(&self) -> Config {
        let specs: Vec<ResourceSpec> = self
            .resources
            .iter()
            .zip(&self.present)
            .filter(|(_, p)| **p)
            .map(|(r, _)| r.spec())
            .collect();
        let orders = self
            .orders
            .iter()
            .filter(|(a, b)| self.present[*a] && self.present[*b])
            .map(|(a, b)| {
                Order::new(
                    self.resources[*a].id.clone(),
                    self.resources[*b].id.clone(),
                    OrderKind::Mandatory,
                )
            })
            .collect();
        Config::new(
            ClusterOptions::default(),
            vec![NODE.into()],
            vec![],
            specs,
            vec![],
        )
        .and_then(|c| c.with_constraints(vec![], orders, vec![]))
        .expect("valid config")
    }
}

/// A completion the world will report: (when, sequence, input). The daemon that launched it
/// (`epoch`) must still be alive for the result to arrive.
#[derive(Debug, PartialEq, Eq)]
struct Pending {
    at: Time,
    seq: u64,
    epoch: u32,
    input: Input,
    /// What it does to the world when it completes: (resource, runs with digest).
    world: Option<(String, Option<u64>)>,
}

impl Ord for Pending {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

struct Sim {
    rng: Rng,
    now: Time,
    file: File,
    store: MemoryStore,
    core: Core,
    /// Replayed from the store at every step: must equal the core's state.
    shadow: State,
    shadow_from: usize,
    /// The definitions the core asked to keep (the store's `definitions`).
    stored_defs: Vec<ResourceSpec>,
    /// What runs in the world, by resource: the digest it runs with.
    world: BTreeMap<String, u64>,
    pending: BinaryHeap<Pending>,
    seq: u64,
    epoch: u32,
    /// Resources that die right after every start.
    crashy: Option<String>,
    failures: bool,
    steps: u64,
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let n = 3 + rng.below(4) as usize;
        let resources: Vec<Res> = (0..n)
            .map(|i| Res {
                id: format!("r{i}"),
                process: rng.chance(50),
                generation: 0,
            })
            .collect();
        let mut orders = Vec::new();
        for j in 1..n {
            if rng.chance(40) {
                orders.push((rng.below(j as u64) as usize, j));
            }
        }
        let file = File {
            present: vec![true; n],
            resources,
            orders,
        };
        let config = Arc::new(file.config());
        let core = Core::new(Boot {
            file_config: config,
            orphans: vec![],
            previous: vec![],
            state: State::default(),
            node: NODE.into(),
            health_monitors: vec![],
            monitors_here: true,
        })
        .expect("core");
        let mut sim = Sim {
            rng,
            now: T0,
            file,
            store: MemoryStore::default(),
            core,
            shadow: State::default(),
            shadow_from: 0,
            stored_defs: vec![],
            world: BTreeMap::new(),
            pending: BinaryHeap::new(),
            seq: 0,
            epoch: 0,
            crashy: None,
            failures: true,
            steps: 0,
        };
        let effects = sim.core.join(sim.now, &mut sim.store).expect("join");
        sim.after(effects);
        sim
    }

    /// Checks the invariants after a call into the core, then carries out its effects.
    fn after(&mut self, effects: Vec<Effect>) {
        self.steps += 1;
        // Recorded before applied: the core's state is the store's events, applied.
        for (e, t) in &self.store.log[self.shadow_from..] {
            let _ = apply(self.core.config(), &mut self.shadow, e, *t);
        }
        self.shadow_from = self.store.log.len();
        assert_eq!(
            &self.shadow,
            self.core.state(),
            "the core's state is not the recorded events applied"
        );
        let config = Arc::clone(self.core.config());
        let state = self.core.state().clone();
        for e in effects {
            match e {
                Effect::Run { id, spec, op, .. } => {
                    self.check_launch(&config, &state, &spec.id, op.name);
                    self.run(id, &spec, op);
                }
                Effect::Monitor {
                    resource,
                    interval_ms,
                    generation,
                    ..
                } => {
                    let running = self.world.contains_key(&resource);
                    let rc = if !running {
                        rc::NOT_RUNNING
                    } else if self.failures && self.rng.chance(3) {
                        rc::ERR_GENERIC
                    } else {
                        rc::OK
                    };
                    let input = Input::MonitorDone {
                        resource,
                        interval_ms,
                        generation,
                        result: outcome(rc, 10),
                    };
                    let took = Duration::from_millis(5 + self.rng.below(50));
                    self.later(took, input, None);
                }
                Effect::SaveDefinitions(defs) => self.stored_defs = defs,
                Effect::Fence { .. } | Effect::Health { .. } => {
                    panic!("no fencing or health monitors in this simulation")
                }
            }
        }
    }

    /// No start while a mandatory `first` does not run; no stop of a `first` under a `then`
    /// that runs and can be stopped.
    fn check_launch(&self, config: &Config, state: &State, r: &str, op: OpName) {
        let active = |x: &str| state.active_nodes(x).next().is_some();
        for o in config.orders() {
            if op == OpName::Start && o.then == r {
                assert!(
                    active(&o.first),
                    "start of {r} while {} (first) does not run",
                    o.first
                );
            }
            if op == OpName::Stop && o.first == r && active(&o.then) {
                let then = state.on_node(&o.then, NODE);
                let spec = config.resource(&o.then);
                let acts = !then.blocked && spec.is_some_and(|s| s.meta.is_managed);
                assert!(!acts, "stop of {r} while {} (then) runs", o.then);
            }
        }
    }

    fn later(&mut self, after: Duration, input: Input, world: Option<(String, Option<u64>)>) {
        self.seq += 1;
        self.pending.push(Pending {
            at: self.now + after,
            seq: self.seq,
            epoch: self.epoch,
            input,
            world,
        });
    }

    /// An agent operation in the simulated world: its result, what it does to the world,
    /// and when.
    fn run(&mut self, id: ActionId, spec: &ResourceSpec, op: OpKey) {
        let r = spec.id.clone();
        let running = self.world.contains_key(&r);
        let fail = self.failures && self.rng.chance(5);
        let hang = self.failures && self.rng.chance(2);
        let (rc, world) = match op.name {
            OpName::Monitor => (if running { rc::OK } else { rc::NOT_RUNNING }, None),
            // Now and then the agent is missing on that node (the executor's "not installed").
            OpName::Start if fail && self.rng.chance(25) => (rc::ERR_INSTALLED, None),
            OpName::Start if fail || hang => (rc::ERR_GENERIC, None),
            OpName::Start => (rc::OK, Some((r.clone(), Some(spec.digest())))),
            OpName::Stop if fail || hang => (rc::ERR_GENERIC, None),
            OpName::Stop => (rc::OK, Some((r.clone(), None))),
            _ => (rc::OK, None),
        };
        let took = if hang {
            Duration::from_secs(20)
        } else {
            Duration::from_millis(1 + self.rng.below(200))
        };
        self.later(
            took,
            Input::ActionDone {
                id,
                result: outcome(rc, took.as_millis() as u64),
            },
            world,
        );
        // A crash-looping process dies 50 ms after each start.
        if op.name == OpName::Start && self.crashy.as_deref() == Some(r.as_str()) && rc == 0 {
            let exit = Input::Exited(Exited {
                resource: r.clone(),
                pid: 1,
                how: "exited with 1".into(),
            });
            self.later(took + Duration::from_millis(50), exit, Some((r, None)));
        }
    }

    /// One step: the next completion, or something from outside, or time passing.
    fn step(&mut self) {
        let before = self.core.transition().cloned();
        let effects = self.core.poll(self.now).expect("poll");
        // A transition the core just started keeps the engine's rules, checked against the
        // state it was scheduled from (nothing was applied since).
        if let Some(t) = self.core.transition() {
            if before.as_ref() != Some(t) {
                if let Err(e) = check_transition(self.core.config(), self.core.state(), self.now, t)
                {
                    panic!(
                        "invariant violated: {e}
{t:#?}"
                    );
                }
            }
        }
        self.after(effects);
        self.check_idle();
        if self.core.finished() {
            self.restart();
            return;
        }
        if self.failures && self.rng.chance(20) {
            self.outside();
            return;
        }
        let next_result = self.pending.peek().map(|p| p.at);
        let timeout = self.core.poll_timeout();
        let at = match (next_result, timeout) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b).unwrap_or(self.now + Duration::from_secs(10)),
        };
        self.now = self.now.max(at);
        while self.pending.peek().is_some_and(|p| p.at <= self.now) {
            let Some(p) = self.pending.pop() else { break };
            if let Some((r, digest)) = &p.world {
                if std::env::var_os("SIMTRACE").is_some() {
                    eprintln!(
                        "{} world {r} -> {digest:?} (epoch {} of {}) {:?}",
                        self.now.as_millis(),
                        p.epoch,
                        self.epoch,
                        p.input
                    );
                }
                match digest {
                    Some(d) => self.world.insert(r.clone(), *d),
                    None => self.world.remove(r),
                };
            }
            // A result whose daemon was killed is lost; a process's exit is not: the new
            // daemon watches the processes it adopts.
            if p.epoch != self.epoch && !matches!(p.input, Input::Exited(_)) {
                continue;
            }
            let effects = self
                .core
                .handle(p.input, self.now, &mut self.store)
                .expect("handle");
            self.after(effects);
        }
    }

    /// An idle core has nothing left to schedule: nothing is held back by another
    /// resource's crash loop (there is no fencing here to back off from).
    fn check_idle(&self) {
        if self.core.busy() || self.core.finished() || self.core.leaves_running() {
            return;
        }
        let t = schedule(self.core.config(), self.core.state(), self.now);
        assert!(
            t.is_empty(),
            "idle with work to do: {:?}",
            t.summary
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        );
    }

    fn outside(&mut self) {
        let ids: Vec<String> = self
            .core
            .config()
            .resources()
            .iter()
            .map(|r| r.id.clone())
            .collect();
        let pick = |rng: &mut Rng| ids[rng.below(ids.len() as u64) as usize].clone();
        match self.rng.below(100) {
            0..=29 => {
                // A process dies (or an OCF resource vanishes, found by its next monitor).
                let running: Vec<String> = self.world.keys().cloned().collect();
                if running.is_empty() {
                    return;
                }
                let r = running[self.rng.below(running.len() as u64) as usize].clone();
                self.world.remove(&r);
                if self.file.resources.iter().any(|x| x.id == r && x.process) {
                    let input = Input::Exited(Exited {
                        resource: r,
                        pid: 1,
                        how: "killed by signal 9".into(),
                    });
                    let effects = self
                        .core
                        .handle(input, self.now, &mut self.store)
                        .expect("exit");
                    self.after(effects);
                }
            }
            30..=59 => {
                let r = pick(&mut self.rng);
                // Weighted toward what brings resources back, so most of them run most of
                // the time.
                let cmd = match self.rng.below(14) {
                    0 | 1 => AdminCommand::Cleanup {
                        resource: Some(r),
                        node: None,
                    },
                    2..=4 => AdminCommand::Restart {
                        resource: r,
                        node: None,
                    },
                    5 => AdminCommand::Disable { resource: r },
                    6 | 7 => AdminCommand::Enable { resource: r },
                    8 => AdminCommand::Ban {
                        resource: r,
                        node: NODE.into(),
                    },
                    9 | 10 => AdminCommand::Clear { resource: r },
                    11 => AdminCommand::Standby { node: NODE.into() },
                    _ => AdminCommand::Online { node: NODE.into() },
                };
                if let Ok(effects) = self.core.admin(cmd, self.now, &mut self.store) {
                    self.after(effects);
                }
            }
            60..=74 => {
                // A reload: a definition changes, a resource leaves the file or comes back.
                let i = self.rng.below(self.file.resources.len() as u64) as usize;
                match self.rng.below(3) {
                    0 => self.file.resources[i].generation += 1,
                    1 => self.file.present[i] = !self.file.present[i],
                    _ => self.file.present[i] = true,
                }
                if !self.file.present.iter().any(|p| *p) {
                    self.file.present[i] = true;
                }
                let new = self.file.config();
                let (_, effects) = self
                    .core
                    .reload(&new, &[], self.now, &mut self.store)
                    .expect("reload");
                self.after(effects);
            }
            75..=84 => {
                // A process starts to crash-loop, or stops doing so.
                self.crashy = if self.crashy.is_some() {
                    None
                } else {
                    self.file
                        .resources
                        .iter()
                        .find(|r| r.process)
                        .map(|r| r.id.clone())
                };
            }
            85..=93 => {
                // A SIGKILL while an agent changes something would lose its result and
                // leave it running unrecorded: the hardening issue's "record an action
                // before launching it". Until then such a kill is simulated only with
                // WARDEN_CORE_SIM_KILL_MIDACTION=1 (which shows the gap); otherwise the
                // daemon leaves its resources running and stops once its actions end.
                let mid_action = self.pending.iter().any(|p| {
                    p.epoch == self.epoch
                        && p.world.is_some()
                        && !matches!(p.input, Input::Exited(_))
                });
                if mid_action && std::env::var_os("WARDEN_CORE_SIM_KILL_MIDACTION").is_none() {
                    let effects = self
                        .core
                        .shutdown(true, self.now, &mut self.store)
                        .expect("shutdown");
                    self.after(effects);
                } else {
                    self.restart();
                }
            }
            _ => {
                let effects = self
                    .core
                    .shutdown(false, self.now, &mut self.store)
                    .expect("shutdown");
                self.after(effects);
            }
        }
    }

    /// A new daemon from the store, after a SIGKILL or a finished shutdown (results of the
    /// old one still in flight are lost either way).
    fn restart(&mut self) {
        self.epoch += 1;
        let file_config = Arc::new(self.file.config());
        // The definitions go through their stored form, as in the daemon.
        let stored: Vec<ResourceSpec> = self
            .stored_defs
            .iter()
            .map(|d| {
                WireDefinition::from_spec(d)
                    .into_orphan()
                    .expect("stored definition")
            })
            .collect();
        let log = &self.store.log;
        let boot = Boot::restore(file_config, stored, NODE.into(), vec![], |config| {
            let mut state = State::default();
            for (e, t) in log {
                let _ = apply(config, &mut state, e, *t);
            }
            Ok(state)
        })
        .expect("boot");
        self.shadow = boot.state.clone();
        self.shadow_from = self.store.log.len();
        self.core = Core::new(boot).expect("core");
        let effects = self.core.join(self.now, &mut self.store).expect("join");
        self.after(effects);
    }

    /// With failures over, the core converges and its record matches the world.
    fn settle(&mut self) {
        self.failures = false;
        self.crashy = None;
        for _ in 0..2000 {
            self.step();
            if !self.core.busy() && self.pending.iter().all(|p| p.epoch != self.epoch) {
                break;
            }
        }
        // Wait out crash-loop delays and monitors that report what changed meanwhile.
        for _ in 0..200 {
            self.step();
        }
        assert!(!self.core.busy(), "still busy after settling");
        let config = Arc::clone(self.core.config());
        for spec in config.resources() {
            let on = self.core.state().on_node(&spec.id, NODE);
            if blocked_or_held(&config, self.core.state(), &spec.id) || !spec.meta.is_managed {
                continue;
            }
            let recorded = on.role.is_active();
            let runs = self.world.contains_key(&spec.id);
            if recorded != runs && std::env::var_os("SIMTRACE").is_some() {
                for (e, t) in &self.store.log {
                    let mine = match e {
                        Event::OpResult(r) => r.resource == spec.id,
                        _ => true,
                    };
                    if mine {
                        eprintln!("{} log {e:?}", t.as_millis());
                    }
                }
                eprintln!(
                    "on {on:?}\nnow {}\ncore {:#?}\nfile {:?}",
                    self.now.as_millis(),
                    self.core,
                    self.file
                );
            }
            assert_eq!(
                recorded, runs,
                "{}: recorded {:?}, running in the world: {runs}",
                spec.id, on.role
            );
            if runs {
                assert_eq!(
                    self.world.get(&spec.id).copied(),
                    Some(spec.digest()),
                    "{} runs another definition",
                    spec.id
                );
            }
        }
    }
}

fn outcome(rc: i32, ms: u64) -> OpOutcome {
    OpOutcome {
        rc,
        exit_reason: String::new(),
        duration: Duration::from_millis(ms),
        status: if rc == rc::ERR_INSTALLED {
            rc::ExecStatus::NotInstalled
        } else {
            rc::ExecStatus::Done
        },
    }
}

fn run_seed(seed: u64) {
    let mut sim = Sim::new(seed);
    for _ in 0..600 {
        sim.step();
    }
    sim.settle();
    assert!(sim.steps > 600, "the simulation did something");
    if std::env::var_os("SIMSTATS").is_some() {
        let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
        for (e, _) in &sim.store.log {
            let k = match e {
                Event::OpResult(r) => format!("{}:{}", r.op.name, r.rc),
                Event::Admin(a) => format!("{a:?}")
                    .split([' ', '{'])
                    .next()
                    .unwrap_or("")
                    .to_owned(),
                other => format!("{other:?}")
                    .split([' ', '{'])
                    .next()
                    .unwrap_or("")
                    .to_owned(),
            };
            *kinds.entry(k).or_default() += 1;
        }
        eprintln!(
            "seed {seed}: epochs {} steps {} {kinds:?}",
            sim.epoch, sim.steps
        );
    }
}

#[test]
fn seeded_simulation_of_the_core_keeps_every_invariant() {
    let seeds: Vec<u64> = match std::env::var("WARDEN_CORE_SIM_SEED") {
        Ok(s) => vec![s.parse().expect("WARDEN_CORE_SIM_SEED is a number")],
        Err(_) => {
            let n = std::env::var("WARDEN_CORE_SIM_SEEDS")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(150);
            (1..=n).collect()
        }
    };
    for seed in seeds {
        if let Err(e) = catch_unwind(AssertUnwindSafe(|| run_seed(seed))) {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()));
            panic!(
                "seed {seed} failed: {}\nreplay: WARDEN_CORE_SIM_SEED={seed} cargo test -p warden --test core_simulation",
                msg.unwrap_or_default()
            );
        }
    }
}
