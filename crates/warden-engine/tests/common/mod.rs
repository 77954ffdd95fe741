//! A small world for engine tests: a config, a state, a virtual clock, and helpers that run
//! transitions against simulated agents through the public API only.

#![allow(dead_code)]

use std::time::Duration;

use warden_engine::*;

pub const T0: Time = Time::from_millis(1_767_225_600_000); // 2026-01-01T00:00:00Z

/// A resource of the OCF Dummy kind with a 10 s recurring monitor.
pub fn dummy(id: &str) -> ResourceSpec {
    let mut r = ResourceSpec::new(
        id,
        Agent::Ocf {
            provider: "heartbeat".into(),
            kind: "Dummy".into(),
        },
    );
    r.ops
        .push(OpSpec::new(OpName::Monitor, Duration::from_secs(10)));
    r
}

/// An unfencing fence agent (fence_scsi's kind) placed as a resource, with `devices`.
pub fn scsi_device(program: &str, devices: &str) -> ResourceSpec {
    ResourceSpec::new(
        "scsi",
        Agent::Fence(Box::new(FenceDevice {
            name: "scsi".into(),
            method: FenceMethod::Agent(FenceAgent {
                program: program.into(),
                params: vec![("devices".into(), devices.into())],
                host_map: vec![],
                action: "off".into(),
            }),
            nodes: vec![],
            timeout_ms: 60_000,
            unfence: true,
            disabled: false,
        })),
    )
}

pub fn with_on_fail(
    mut r: ResourceSpec,
    op: OpName,
    interval: Duration,
    v: OnFail,
) -> ResourceSpec {
    match r
        .ops
        .iter_mut()
        .find(|o| o.name == op && o.interval == interval)
    {
        Some(o) => o.on_fail = Some(v),
        None => {
            let mut o = OpSpec::new(op, interval);
            o.on_fail = Some(v);
            r.ops.push(o);
        }
    }
    r
}

pub fn loc(resource: &str, node: &str, score: i64) -> Location {
    Location::new(resource, node, Score::new(score))
}

pub struct Builder {
    pub cluster: ClusterOptions,
    pub nodes: Vec<String>,
    pub resources: Vec<ResourceSpec>,
    pub locations: Vec<Location>,
    pub fencing: bool,
    /// The fence device also unfences.
    pub unfencing: bool,
    pub colocations: Vec<Colocation>,
    pub orders: Vec<Order>,
    pub groups: Vec<Group>,
    pub tickets: Vec<TicketConstraint>,
    /// Node capacities (`utilization`), by node name.
    pub capacity: Vec<(String, Vec<(String, i64)>)>,
}

pub fn build(nodes: &[&str]) -> Builder {
    Builder {
        cluster: ClusterOptions::default(),
        nodes: nodes.iter().map(|s| s.to_string()).collect(),
        resources: Vec::new(),
        locations: Vec::new(),
        fencing: false,
        unfencing: false,
        colocations: Vec::new(),
        orders: Vec::new(),
        groups: Vec::new(),
        tickets: Vec::new(),
        capacity: Vec::new(),
    }
}

impl Builder {
    pub fn resource(mut self, r: ResourceSpec) -> Self {
        self.resources.push(r);
        self
    }
    pub fn location(mut self, l: Location) -> Self {
        self.locations.push(l);
        self
    }
    pub fn colocation(mut self, resource: &str, with: &str, score: Score) -> Self {
        self.colocations
            .push(Colocation::new(resource, with, score));
        self
    }
    /// A colocation with roles (`Started` for "wherever it runs").
    pub fn colocation_roles(
        mut self,
        resource: &str,
        role: OpRole,
        with: &str,
        with_role: OpRole,
        score: Score,
    ) -> Self {
        self.colocations.push(Colocation {
            role,
            with_role,
            ..Colocation::new(resource, with, score)
        });
        self
    }
    /// "`first_action` first then `then_action` then", mandatory and symmetric.
    pub fn order_actions(
        mut self,
        first_action: OpName,
        first: &str,
        then_action: OpName,
        then: &str,
    ) -> Self {
        self.orders.push(Order {
            first_action,
            then_action,
            ..Order::new(first, then, OrderKind::Mandatory)
        });
        self
    }
    pub fn order(mut self, first: &str, then: &str, kind: OrderKind) -> Self {
        self.orders.push(Order {
            symmetric: kind != OrderKind::Serialize,
            ..Order::new(first, then, kind)
        });
        self
    }
    pub fn group(mut self, id: &str, members: &[&str]) -> Self {
        self.groups.push(Group {
            id: id.into(),
            resources: members.iter().map(|m| m.to_string()).collect(),
        });
        self
    }
    pub fn ticket(
        mut self,
        ticket: &str,
        resource: &str,
        role: OpRole,
        loss_policy: LossPolicy,
    ) -> Self {
        self.tickets.push(TicketConstraint {
            ticket: ticket.into(),
            resource: resource.into(),
            role,
            loss_policy,
        });
        self
    }
    pub fn fencing(mut self) -> Self {
        self.fencing = true;
        self
    }
    /// Fencing by a device that also unfences (an agent's `on`).
    pub fn unfencing(mut self) -> Self {
        self.fencing = true;
        self.unfencing = true;
        self
    }
    pub fn capacity(mut self, node: &str, c: &[(&str, i64)]) -> Self {
        let c = c.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        self.capacity.push((node.to_string(), c));
        self
    }
    pub fn cluster(mut self, f: impl FnOnce(&mut ClusterOptions)) -> Self {
        f(&mut self.cluster);
        self
    }
    pub fn config(self) -> Config {
        self.try_config().expect("valid config")
    }
    /// The configuration, or why `Config` refuses it.
    pub fn try_config(self) -> Result<Config, ConfigError> {
        let fence = if self.fencing {
            vec![FenceDevice {
                name: "power".into(),
                method: FenceMethod::Command(vec!["/bin/true".into()]),
                nodes: vec![],
                timeout_ms: 60_000,
                unfence: self.unfencing,
                disabled: false,
            }]
        } else {
            vec![]
        };
        Config::new(
            self.cluster,
            self.nodes,
            fence,
            self.resources,
            self.locations,
        )
        .and_then(|c| c.with_constraints(self.colocations, self.orders, self.groups))
        .and_then(|c| c.with_tickets(self.tickets))
        .map(|c| {
            let capacity = c
                .nodes()
                .iter()
                .map(|n| {
                    self.capacity
                        .iter()
                        .find(|(name, _)| name == n)
                        .map(|(_, c)| c.clone())
                        .unwrap_or_default()
                })
                .collect();
            c.with_node_capacity(capacity)
        })
    }
    /// A world with every node online, settled into its steady state.
    pub fn world(self) -> World {
        let config = self.config();
        let state = State::with_online_nodes(config.nodes().iter().map(String::as_str));
        let mut w = World {
            config,
            state,
            now: T0,
        };
        w.settle();
        w
    }
}

/// A failure to inject into the next transition: (resource, op, node, rc).
pub type Fail<'a> = (&'a str, OpName, &'a str, i32);

pub struct World {
    pub config: Config,
    pub state: State,
    pub now: Time,
}

impl World {
    /// Runs one transition; actions matching `fails` return that rc, all others succeed.
    /// Returns the summary lines. Checks the transition's invariants.
    pub fn step(&mut self, fails: &[Fail<'_>]) -> Vec<String> {
        self.step_with(fails, &[])
    }

    /// [`World::step`] where fencing (and unfencing) of the listed nodes fails.
    pub fn step_with(&mut self, fails: &[Fail<'_>], fence_fails: &[&str]) -> Vec<String> {
        let t = schedule(&self.config, &self.state, self.now);
        if let Err(e) = check_transition(&self.config, &self.state, self.now, &t) {
            panic!("invariant violated: {e}\n{t:#?}");
        }
        execute(
            &self.config,
            &mut self.state,
            &t,
            self.now,
            |kind| match kind {
                ActionKind::Fence { node, .. } | ActionKind::Unfence { node, .. } => {
                    Outcome::Fenced(!fence_fails.contains(&node.as_str()))
                }
                kind => fails
                    .iter()
                    .find(|(r, op, n, _)| {
                        kind.resource() == Some(*r)
                            && kind.node() == *n
                            && kind.op().map(|k| k.name) == Some(*op)
                    })
                    .map_or_else(|| default_outcome(kind), |f| Outcome::rc(f.3)),
            },
        );
        t.summary.iter().map(ToString::to_string).collect()
    }

    /// Runs transitions with every action succeeding until nothing is left to do. Returns
    /// every summary line. Panics if it does not converge.
    pub fn settle(&mut self) -> Vec<String> {
        let mut all = Vec::new();
        for _ in 0..10 {
            let t = schedule(&self.config, &self.state, self.now);
            if t.is_empty() {
                return all;
            }
            all.extend(self.step(&[]));
        }
        panic!(
            "did not settle: {:#?}",
            schedule(&self.config, &self.state, self.now)
        );
    }

    /// The summary of the next transition, without running it.
    pub fn plan(&self) -> Vec<String> {
        schedule(&self.config, &self.state, self.now)
            .summary
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    pub fn event(&mut self, e: Event) {
        apply(&self.config, &mut self.state, &e, self.now).expect("event applies");
    }

    pub fn admin(&mut self, c: AdminCommand) {
        self.event(Event::Admin(c));
    }

    /// A result of the 10 s recurring monitor.
    pub fn monitor(&mut self, resource: &str, node: &str, rc: i32) {
        self.op(
            resource,
            node,
            OpKey::new(OpName::Monitor, Duration::from_secs(10)),
            rc,
        );
    }

    /// The stop of `resource` on `node` failed (blocked there without fencing).
    pub fn fail_stop(&mut self, resource: &str, node: &str) {
        let stop = OpKey {
            name: OpName::Stop,
            interval_ms: 0,
        };
        self.op(resource, node, stop, rc::ERR_GENERIC);
    }

    pub fn op(&mut self, resource: &str, node: &str, op: OpKey, rc: i32) {
        self.op_with(resource, node, op, rc, rc::ExecStatus::Done);
    }

    /// [`World::op`] with the executor's status (`NotInstalled`: it found no agent).
    pub fn op_with(
        &mut self,
        resource: &str,
        node: &str,
        op: OpKey,
        rc: i32,
        status: rc::ExecStatus,
    ) {
        self.event(Event::OpResult(OpResult {
            resource: resource.into(),
            node: node.into(),
            op,
            rc,
            exit_reason: String::new(),
            status,
            digest: None,
        }));
    }

    pub fn advance(&mut self, d: Duration) {
        self.now = self.now + d;
    }

    /// Status lines, like `dummy Started node1`.
    pub fn status(&self) -> Vec<String> {
        resource_status(&self.config, &self.state, self.now)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    pub fn status_of(&self, id: &str) -> String {
        resource_status(&self.config, &self.state, self.now)
            .into_iter()
            .find(|r| r.id == id)
            .map(|r| r.to_string())
            .expect("resource exists")
    }

    /// The recorded status of `resource` on `node`, to change by hand.
    pub fn on_node_mut(&mut self, resource: &str, node: &str) -> &mut ResourceOnNode {
        self.state
            .resources
            .get_mut(resource)
            .and_then(|r| r.nodes.get_mut(node))
            .expect("a recorded status")
    }

    pub fn fail_count(&self, resource: &str, node: &str) -> u32 {
        let meta = &self.config.resource(resource).expect("resource").meta;
        self.state
            .on_node(resource, node)
            .fail_count(meta, self.now)
    }

    pub fn wakeup(&self) -> Option<Time> {
        schedule(&self.config, &self.state, self.now).wakeup
    }
}

/// The first action of a transition that `f` picks.
pub fn find(t: &Transition, f: impl Fn(&ActionKind) -> bool) -> ActionId {
    t.actions
        .iter()
        .find(|a| f(&a.kind))
        .map(|a| a.id)
        .expect("action present")
}

/// Whether action `later` waits, directly or not, for action `earlier`.
pub fn depends(t: &Transition, later: ActionId, earlier: ActionId) -> bool {
    let mut stack = vec![later];
    while let Some(a) = stack.pop() {
        if a == earlier {
            return true;
        }
        stack.extend(&t.actions[a].deps);
    }
    false
}
