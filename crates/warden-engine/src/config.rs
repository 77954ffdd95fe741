//! The validated cluster configuration the engine decides from. The file form (TOML, with
//! positions for error messages) lives in the `warden` crate and converts into these types.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::rule::Rule;
use crate::score::Score;

/// Pacemaker's INFINITY as a fail count or threshold.
pub const INFINITY_COUNT: u32 = 1_000_000;

/// Cluster-wide options (Pacemaker's cluster properties, with its defaults).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterOptions {
    pub name: String,
    /// A failed start sets the fail count to INFINITY (ban the node at once).
    pub start_failure_is_fatal: bool,
    pub no_quorum_policy: NoQuorumPolicy,
    /// When false, resources run only where a location constraint allows them (opt-in cluster).
    pub symmetric: bool,
    /// How nodes' capacities and resources' utilization weigh in placement.
    pub placement_strategy: PlacementStrategy,
    /// How node health attributes weigh in placement.
    pub node_health: NodeHealth,
    /// Pacemaker's `shutdown-lock`: what runs on a node that shuts down cleanly stays there,
    /// stopped, until it starts there again when the node is back (or, with a limit, until
    /// the limit passes), instead of moving; not fence devices, clones or their instances.
    pub shutdown_lock: bool,
    /// `shutdown-lock-limit`: a lock older than this lets the resource go elsewhere (None:
    /// no limit).
    pub shutdown_lock_limit: Option<Duration>,
}

/// Node health (Pacemaker's `node-health-strategy` and its scores): node attributes named
/// `#health...` valued `red`, `yellow`, `green` or a score add up, per node, to a score every
/// resource gets there (but a negative one for resources with `allow_unhealthy_nodes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeHealth {
    pub strategy: NodeHealthStrategy,
    /// What every node starts from (`progressive` only).
    pub base: Score,
    /// What `green`, `yellow` and `red` count (`progressive` and `custom`; the other
    /// strategies fix them).
    pub green: Score,
    pub yellow: Score,
    pub red: Score,
}

impl Default for NodeHealth {
    fn default() -> Self {
        NodeHealth {
            strategy: NodeHealthStrategy::None,
            base: Score::ZERO,
            green: Score::ZERO,
            yellow: Score::ZERO,
            red: Score::MINUS_INFINITY,
        }
    }
}

impl NodeHealth {
    /// What `red`, `yellow` and `green` count under the strategy.
    pub fn colors(&self) -> (Score, Score, Score) {
        match self.strategy {
            NodeHealthStrategy::None => (Score::ZERO, Score::ZERO, Score::ZERO),
            NodeHealthStrategy::MigrateOnRed => (Score::MINUS_INFINITY, Score::ZERO, Score::ZERO),
            NodeHealthStrategy::OnlyGreen => {
                (Score::MINUS_INFINITY, Score::MINUS_INFINITY, Score::ZERO)
            }
            NodeHealthStrategy::Progressive | NodeHealthStrategy::Custom => {
                (self.red, self.yellow, self.green)
            }
        }
    }

    /// The health score of a node with these attributes (zero: no effect).
    pub fn score<'a>(&self, attributes: impl Iterator<Item = (&'a str, &'a str)>) -> Score {
        if self.strategy == NodeHealthStrategy::None {
            return Score::ZERO;
        }
        let (red, yellow, green) = self.colors();
        let mut sum = if self.strategy == NodeHealthStrategy::Progressive {
            self.base
        } else {
            Score::ZERO
        };
        for (name, value) in attributes {
            if !name.starts_with("#health") {
                continue;
            }
            let v = match value.trim().to_ascii_lowercase().as_str() {
                "red" => red,
                "yellow" => yellow,
                "green" => green,
                other => other.parse::<Score>().unwrap_or(Score::ZERO),
            };
            sum = sum.add(v);
        }
        sum
    }
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            name: "warden".to_owned(),
            start_failure_is_fatal: true,
            no_quorum_policy: NoQuorumPolicy::Stop,
            symmetric: true,
            placement_strategy: PlacementStrategy::Default,
            node_health: NodeHealth::default(),
            shutdown_lock: false,
            shutdown_lock_limit: None,
        }
    }
}

macro_rules! keyword_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vm])* $variant),+ }

        impl $name {
            /// Every value, in the order they are documented.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The keyword used in the config file and on the command line.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = ();
            fn from_str(s: &str) -> Result<Self, ()> {
                match s { $($text => Ok($name::$variant),)+ _ => Err(()) }
            }
        }
    };
}

keyword_enum!(
    /// What to do when the cluster has lost quorum.
    NoQuorumPolicy {
        Stop = "stop",
        Freeze = "freeze",
        Ignore = "ignore",
        Demote = "demote",
    }
);

keyword_enum!(
    /// Whether a resource is looked for (probed) on a location's node (Pacemaker's
    /// `resource-discovery`).
    Discovery {
        /// Probed there (the default).
        Always = "always",
        /// Never probed there: what runs there unbeknownst to Warden stays unknown.
        Never = "never",
        /// Probed only on the nodes of its exclusive locations, and runs nowhere else.
        Exclusive = "exclusive",
    }
);

keyword_enum!(
    /// How node health attributes weigh in placement (Pacemaker's `node-health-strategy`).
    NodeHealthStrategy {
        /// Health attributes are not looked at.
        None = "none",
        /// A red node runs nothing (but what allows unhealthy nodes).
        MigrateOnRed = "migrate_on_red",
        /// A red or yellow node runs nothing (but what allows unhealthy nodes).
        OnlyGreen = "only_green",
        /// Colors count the configured scores, from a configured base.
        Progressive = "progressive",
        /// Colors count the configured scores.
        Custom = "custom",
    }
);

keyword_enum!(
    /// How nodes' capacities (`utilization` of a node) and what resources use (`utilization`
    /// of a resource) weigh in placement, as Pacemaker's `placement-strategy`.
    PlacementStrategy {
        /// Utilization is not looked at.
        Default = "default",
        /// A resource goes only where the remaining capacity holds what it uses.
        Utilization = "utilization",
        /// As `utilization`, and ties go by node order, not by load (fewest nodes used).
        Minimal = "minimal",
        /// As `utilization`, and ties go to the node with the most capacity left.
        Balanced = "balanced",
    }
);

keyword_enum!(
    /// The operations an agent performs.
    OpName {
        Start = "start",
        Stop = "stop",
        Monitor = "monitor",
        Promote = "promote",
        Demote = "demote",
        Notify = "notify",
        /// OCF `reload-agent`: apply changed reloadable parameters without a restart.
        Reload = "reload",
        /// Live migration, on the node it leaves (`allow_migrate`).
        MigrateTo = "migrate_to",
        /// Live migration, on the node it arrives at.
        MigrateFrom = "migrate_from",
    }
);

keyword_enum!(
    /// What to do when an operation fails (Pacemaker's `on-fail`).
    OnFail {
        /// Record the failure, keep running, show "failure ignored".
        Ignore = "ignore",
        /// Mark the resource FAILED (blocked) and perform no further operation on it.
        Block = "block",
        /// Stop the resource and do not start it anywhere until cleanup.
        Stop = "stop",
        /// Stop and start it again, on this node while under `migration_threshold`.
        Restart = "restart",
        /// Fence the node the resource failed on, then recover it elsewhere.
        Fence = "fence",
        /// Put the node in standby: every resource leaves it.
        Standby = "standby",
        /// Demote the promoted copy and promote again, without a stop.
        Demote = "demote",
    }
);

keyword_enum!(
    /// The role a resource should be in.
    TargetRole {
        Started = "started",
        Stopped = "stopped",
        /// Running, never promoted (Pacemaker's `Unpromoted`; for a resource without roles,
        /// started).
        Unpromoted = "unpromoted",
    }
);

keyword_enum!(
    /// What to do when a primitive is found active on more than one node.
    MultipleActive {
        /// Stop it everywhere, then start it once.
        StopStart = "stop_start",
        /// Stop it everywhere.
        StopOnly = "stop_only",
        /// Leave it alone and mark it blocked.
        Block = "block",
        /// Keep the copy where it belongs, stop the others.
        StopUnexpected = "stop_unexpected",
    }
);

keyword_enum!(
    /// What a resource needs to start (Pacemaker's `requires`): `fencing` (the default)
    /// quorum, and the fencing of every node it may still run on; `quorum` quorum only (a
    /// copy on a lost node counts for nothing: it starts elsewhere before the fence);
    /// `nothing` neither.
    Requires {
        /// Fencing, and its node unfenced before it starts there (the default where a fence
        /// device unfences).
        Unfencing = "unfencing",
        Fencing = "fencing",
        Quorum = "quorum",
        Nothing = "nothing",
    }
);

keyword_enum!(
    /// The role a recurring operation applies to.
    OpRole {
        Started = "started",
        Unpromoted = "unpromoted",
        Promoted = "promoted",
        /// Monitors only: run where the resource is stopped, to find it running there.
        Stopped = "stopped",
    }
);

keyword_enum!(
    /// What happens to a resource whose ticket is revoked while it runs (Pacemaker's
    /// `loss-policy`).
    LossPolicy {
        /// Stop it (the default, and what any ticket not granted does to a stopped resource).
        Stop = "stop",
        /// Demote its promoted copies; the copies keep running unpromoted.
        Demote = "demote",
        /// Fence the nodes it runs on (in the ticket's role).
        Fence = "fence",
        /// Leave it as it is: nothing starts, stops or moves until the ticket comes back.
        Freeze = "freeze",
    }
);

keyword_enum!(
    /// What an operator does to a ticket.
    TicketAction {
        /// The resources that need it may run.
        Grant = "grant",
        /// Take it away: the resources that need it stop, as their `loss_policy` says.
        Revoke = "revoke",
        /// Keep it granted but let its resources go (stop or demote) without the loss policy.
        Standby = "standby",
        /// Out of standby.
        Activate = "activate",
    }
);

impl OnFail {
    /// Whether this `on_fail` value may be set on an operation of this name and role.
    pub fn allowed_for(self, op: OpName, role: OpRole) -> bool {
        match op {
            OpName::Stop => matches!(self, OnFail::Ignore | OnFail::Block | OnFail::Fence),
            OpName::Notify => matches!(self, OnFail::Ignore),
            OpName::Promote => true,
            OpName::Monitor => self != OnFail::Demote || role == OpRole::Promoted,
            OpName::Start
            | OpName::Demote
            | OpName::Reload
            | OpName::MigrateTo
            | OpName::MigrateFrom => self != OnFail::Demote,
        }
    }

    /// The values allowed for an operation, for error messages.
    pub fn allowed_values(op: OpName, role: OpRole) -> Vec<&'static str> {
        OnFail::ALL
            .iter()
            .filter(|v| v.allowed_for(op, role))
            .map(|v| v.as_str())
            .collect()
    }
}

/// Which agent runs a resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Agent {
    /// An OCF resource agent at `$OCF_ROOT/resource.d/<provider>/<kind>`.
    Ocf { provider: String, kind: String },
    /// A command Warden supervises itself.
    Process(ProcessSpec),
    /// A systemd unit (`nginx.service`), started, stopped and watched through systemd's
    /// D-Bus API (Pacemaker's `systemd:` class).
    Systemd { unit: String },
    /// A fence device placed on a node as Pacemaker places its `stonith` resources: started
    /// there by checking the device (its agent's `monitor`), and checked again by its
    /// recurring monitor. Fencing itself does not depend on where it runs.
    Fence(Box<FenceDevice>),
}

/// How Warden runs a `process` resource. Plain data: the engine only carries it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessSpec {
    /// Program and arguments.
    pub command: Vec<String>,
    /// Extra environment variables, in the order written.
    pub env: Vec<(String, String)>,
    pub cwd: Option<String>,
    pub user: Option<String>,
    pub group: Option<String>,
    /// The signal `stop` sends first (a name like `TERM`).
    pub stop_signal: String,
    /// How long `stop` waits after `stop_signal` before SIGKILL.
    pub stop_timeout: Duration,
    /// Commands run to promote and demote the process (promotable resources). Without one,
    /// the role changes in Warden's records only.
    pub promote: Option<Vec<String>>,
    pub demote: Option<Vec<String>>,
    /// The most bytes each of its output files holds before it is rotated (None: the
    /// shell's default). Not part of the definition: changing it restarts nothing.
    pub output_max: Option<u64>,
}

/// What a copy was started with: the definition digest, the restart digest and the agent's
/// (None where not known: a record from before Warden kept it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Digests {
    pub all: u64,
    pub restart: u64,
    pub agent: Option<u64>,
}

impl Digests {
    pub fn of(spec: &ResourceSpec) -> Digests {
        Digests {
            all: spec.digest(),
            restart: spec.restart_digest(),
            agent: Some(spec.agent_digest()),
        }
    }
}

/// FNV-1a with each field's length first, so `["ab", "c"]` and `["a", "bc"]` differ.
struct Digest(u64);

impl Default for Digest {
    fn default() -> Self {
        Digest(0xcbf2_9ce4_8422_2325)
    }
}

impl Digest {
    fn bytes(&mut self, b: &[u8]) {
        for &x in b {
            self.0 ^= u64::from(x);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn field(&mut self, s: &str) {
        self.bytes(&(s.len() as u64).to_le_bytes());
        self.bytes(s.as_bytes());
    }
    fn list(&mut self, v: &[String]) {
        self.bytes(&(v.len() as u64).to_le_bytes());
        for s in v {
            self.field(s);
        }
    }
    /// Which agent runs a resource, without its parameters ([`ResourceSpec::agent_digest`]).
    fn agent(&mut self, agent: &Agent) {
        match agent {
            Agent::Ocf { provider, kind } => {
                self.field("ocf");
                self.field(provider);
                self.field(kind);
            }
            Agent::Systemd { unit } => {
                self.field("systemd");
                self.field(unit);
            }
            Agent::Fence(dev) => {
                self.field("fence");
                match &dev.method {
                    FenceMethod::Command(_) => self.field("\0"),
                    FenceMethod::Agent(a) => self.field(&a.program),
                }
            }
            Agent::Process(_) => self.field("process"),
        }
    }
    fn pairs(&mut self, v: &[(String, String)]) {
        self.bytes(&(v.len() as u64).to_le_bytes());
        for (k, x) in v {
            self.field(k);
            self.field(x);
        }
    }
}

/// How long a process is given to exit after its stop signal, by default.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);

impl fmt::Display for Agent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Agent::Ocf { provider, kind } => write!(f, "ocf:{provider}:{kind}"),
            Agent::Process { .. } => f.write_str("process"),
            Agent::Systemd { unit } => write!(f, "systemd:{unit}"),
            Agent::Fence(d) => write!(f, "fence:{}", d.program()),
        }
    }
}

/// Resource meta attributes, with Pacemaker's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meta {
    /// Failures on a node (summed over operations) that ban the resource from it. 0 disables.
    pub migration_threshold: u32,
    /// How long after the most recent failure all failures on that node expire. None: never.
    pub failure_timeout: Option<Duration>,
    pub resource_stickiness: Score,
    pub target_role: TargetRole,
    pub is_managed: bool,
    pub maintenance: bool,
    pub multiple_active: MultipleActive,
    pub priority: i64,
    /// A failure this soon after a start counts toward a crash loop (a failed start always does).
    pub crash_loop_window: Duration,
    /// The longest a crash loop delays the next start of the resource on that node (the
    /// delay starts at [`CRASH_LOOP_FIRST_DELAY`] and doubles). Zero: never delayed.
    pub crash_loop_delay_max: Duration,
    /// What it needs to start: quorum and the fence of every lost node it may run on
    /// (fencing), quorum only (a copy on a lost node is taken for stopped), or nothing (it
    /// keeps running and may start without quorum). Without quorum, what `no_quorum_policy`
    /// says applies to all but `nothing`.
    pub requires: Requires,
    /// Moves by live migration (`migrate_to` where it runs, `migrate_from` where it goes,
    /// then a stop where it was) instead of a stop and a start, when its agent offers it.
    pub allow_migrate: bool,
    /// Gone from the configuration but still active somewhere: stopped, never started
    /// (Pacemaker's `stop-orphan-resources`); set by the daemon, not by the file.
    pub orphan: bool,
    /// A negative node health does not keep it away (Pacemaker's `allow-unhealthy-nodes`).
    pub allow_unhealthy_nodes: bool,
}

/// The first delay of a crash loop: the second quick failure in a row waits this long.
pub const CRASH_LOOP_FIRST_DELAY: Duration = Duration::from_millis(100);

impl Default for Meta {
    fn default() -> Self {
        Meta {
            migration_threshold: INFINITY_COUNT,
            failure_timeout: None,
            resource_stickiness: Score::ZERO,
            target_role: TargetRole::Started,
            is_managed: true,
            maintenance: false,
            multiple_active: MultipleActive::StopStart,
            priority: 0,
            crash_loop_window: Duration::from_secs(1),
            crash_loop_delay_max: Duration::from_secs(10),
            allow_migrate: false,
            requires: Requires::Fencing,
            orphan: false,
            allow_unhealthy_nodes: false,
        }
    }
}

impl Meta {
    /// The fail count at which the node is banned; `None` when the threshold is disabled.
    pub fn threshold(&self) -> Option<u32> {
        (self.migration_threshold != 0).then_some(self.migration_threshold)
    }

    /// How long the next start waits after `quick` quick failures in a row: none for the
    /// first, then [`CRASH_LOOP_FIRST_DELAY`] doubling up to `crash_loop_delay_max`.
    pub fn crash_loop_delay(&self, quick: u32) -> Option<Duration> {
        if quick < 2 || self.crash_loop_delay_max.is_zero() {
            return None;
        }
        let doubled = CRASH_LOOP_FIRST_DELAY.saturating_mul(1u32 << (quick - 2).min(20));
        Some(doubled.min(self.crash_loop_delay_max))
    }
}

/// Pacemaker's default operation timeout.
pub const DEFAULT_OP_TIMEOUT: Duration = Duration::from_secs(20);

/// One configured operation of a resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpSpec {
    pub name: OpName,
    /// Zero for one-shot operations; a monitor with an interval recurs.
    pub interval: Duration,
    pub timeout: Duration,
    /// None: the default for this operation (see [`ResourceSpec::on_fail`]).
    pub on_fail: Option<OnFail>,
    pub enabled: bool,
    pub role: OpRole,
    pub check_level: Option<u32>,
    /// For monitors of `process` resources: a command whose exit status 0 means healthy.
    pub command: Option<Vec<String>>,
}

impl OpSpec {
    pub fn new(name: OpName, interval: Duration) -> OpSpec {
        OpSpec {
            name,
            interval,
            timeout: DEFAULT_OP_TIMEOUT,
            on_fail: None,
            enabled: true,
            role: OpRole::Started,
            check_level: None,
            command: None,
        }
    }
}

/// A primitive resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceSpec {
    pub id: String,
    pub agent: Agent,
    /// Agent parameters, in the order written.
    pub params: Vec<(String, String)>,
    pub meta: Meta,
    pub ops: Vec<OpSpec>,
    /// A clone: runs as copies on several nodes, some of them promoted when promotable
    /// (None: a primitive, one copy, no roles).
    pub copies: Option<Copies>,
    /// Its agent offers `reload-agent`: the parameters it can change without a restart
    /// (from the agent's meta-data; None: every change restarts).
    pub reloadable: Option<Vec<String>>,
    /// What it uses of a node's capacity, by name (`cpu`, `memory`, ...), when a placement
    /// strategy other than `default` is set.
    pub utilization: Vec<(String, i64)>,
    /// One instance of a globally unique clone with `clone_node_max` above 1 (set by
    /// [`Config::new`], which turns such a clone into its instances).
    pub instance: Option<Instance>,
    /// The timeout of an operation it has no [`OpSpec`] for (`[op_defaults]`): see
    /// [`ResourceSpec::timeout`].
    pub op_timeout: Duration,
}

/// One copy of a globally unique clone that may run several copies on a node
/// (`clone_node_max` above 1): a resource of its own, `R:N`, as Pacemaker's instances are, so
/// that its number (what the agent serves: an IPaddr2 `clusterip` bucket) moves with it.
/// Constraints and commands naming the clone (`R`) name all its instances.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instance {
    /// The clone's resource id.
    pub of: String,
    /// Its number, `0 .. clone_max`.
    pub number: u32,
    pub clone_max: u32,
    pub clone_node_max: u32,
    /// What follows the clone needs this many instances (`clone_min`, else 1).
    pub clone_min: u32,
    /// The clone's name as reasons call it (`unrunnable ip-clone running`).
    pub name: String,
    /// The clone is `ordered`: each instance starts after the one numbered before it (when
    /// both start) and stops before it.
    pub ordered: bool,
}

/// How a clone runs: up to `clone_max` copies, at most one per node; when promotable, at
/// most `promoted_max` of them promoted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Copies {
    /// How many copies run at most (None: one per node).
    pub clone_max: Option<u32>,
    /// How many copies run on one node at most (Pacemaker's `clone-node-max`). Above 1, the
    /// clone must be globally unique: [`Config::new`] turns it into its [`Instance`]s.
    pub clone_node_max: u32,
    /// Copies may be promoted (Pacemaker's promotable clone).
    pub promotable: bool,
    pub promoted_max: u32,
    /// Send pre and post notifications of start, stop, promote and demote to the copies.
    pub notify: bool,
    /// Orders and colocations with another clone bind copy to copy on each node, not the
    /// whole clone (Pacemaker's `interleave`).
    pub interleave: bool,
    /// Each copy is a different instance to its agent (Pacemaker's `globally-unique`): OCF
    /// agents get `OCF_RESKEY_CRM_meta_globally_unique=true` and the copy's number (its
    /// node's place in the node list) as `OCF_RESKEY_CRM_meta_clone`.
    pub globally_unique: bool,
    /// The promotion score of a running copy until its agent sets one (`warden promotion-score`).
    pub score: Option<Score>,
    /// What is ordered after the clone needs only this many of its copies (Pacemaker's
    /// `clone-min`): it starts once that many can run, and stops only when fewer can.
    pub clone_min: Option<u32>,
    /// Copies start one after another, in node order, and stop in reverse (Pacemaker's
    /// `ordered`), rather than all at once.
    pub ordered: bool,
    /// The clone's name as a whole (Pacemaker's clone id), as reasons call it
    /// (`unrunnable web-clone running`); None: the resource's id.
    pub name: Option<String>,
}

impl Default for Copies {
    /// A plain clone: one copy per node, none promoted.
    fn default() -> Self {
        Copies {
            clone_max: None,
            clone_node_max: 1,
            promotable: false,
            promoted_max: 1,
            notify: false,
            interleave: false,
            globally_unique: false,
            score: None,
            clone_min: None,
            ordered: false,
            name: None,
        }
    }
}

impl Copies {
    /// How many copies run at most in a cluster of `nodes` nodes (`clone_max`, else one per
    /// node).
    pub fn max_copies(&self, nodes: usize) -> usize {
        self.clone_max.map_or(nodes, |c| c as usize)
    }

    /// A promotable clone with the defaults: one copy per node, one promoted.
    pub fn promotable() -> Copies {
        Copies {
            promotable: true,
            ..Copies::default()
        }
    }
}

impl ResourceSpec {
    pub fn new(id: impl Into<String>, agent: Agent) -> ResourceSpec {
        ResourceSpec {
            id: id.into(),
            agent,
            params: Vec::new(),
            meta: Meta::default(),
            ops: Vec::new(),
            copies: None,
            reloadable: None,
            utilization: Vec::new(),
            instance: None,
            op_timeout: DEFAULT_OP_TIMEOUT,
        }
    }

    /// How long operation `op` may run: its operation's `timeout`; for a probe without one,
    /// the first recurring monitor's; else [`ResourceSpec::op_timeout`].
    pub fn timeout(&self, op: crate::OpKey) -> Duration {
        self.op(op.name, op.interval())
            .or_else(|| {
                op.is_probe()
                    .then(|| self.recurring_monitors().next())
                    .flatten()
            })
            .map_or(self.op_timeout, |o| o.timeout)
    }

    /// The definition digest: what a running copy was started with (its agent, parameters,
    /// and a process's command, environment, directory, user and group). A copy started with
    /// another digest is restarted, as Pacemaker's definition digest decides. Meta
    /// attributes and operations are not part of it: they take effect without a restart (a
    /// changed monitor is rescheduled, as Pacemaker does). Stable across releases: FNV-1a
    /// over a fixed encoding, never a `Hash` or `Debug` form.
    pub fn digest(&self) -> u64 {
        self.digest_but(&[])
    }

    /// The definition digest without the parameters the agent reloads (Pacemaker's restart
    /// digest): a copy whose full digest differs but whose restart digest is the same is
    /// reloaded, not restarted.
    pub fn restart_digest(&self) -> u64 {
        self.digest_but(self.reloadable.as_deref().unwrap_or(&[]))
    }

    /// The digest of which agent runs it, without its parameters (Pacemaker compares the
    /// class, provider and type a resource's history recorded): another agent is a restart
    /// whatever the agent reloads, and unfences again where the resource is an unfencing
    /// device (`Device definition changed`).
    pub fn agent_digest(&self) -> u64 {
        let mut d = Digest::default();
        d.agent(&self.agent);
        d.0
    }

    fn digest_but(&self, skip: &[String]) -> u64 {
        let mut d = Digest::default();
        match &self.agent {
            // The agent is all there is of its definition besides the parameters.
            Agent::Ocf { .. } | Agent::Systemd { .. } => d.agent(&self.agent),
            Agent::Fence(dev) => {
                d.field("fence");
                d.field(&dev.name);
                match &dev.method {
                    FenceMethod::Command(argv) => d.list(argv),
                    FenceMethod::Agent(a) => {
                        d.field(&a.program);
                        d.pairs(&a.params);
                    }
                }
            }
            Agent::Process(p) => {
                d.field("process");
                d.list(&p.command);
                d.pairs(&p.env);
                d.field(p.cwd.as_deref().unwrap_or("\0"));
                d.field(p.user.as_deref().unwrap_or("\0"));
                d.field(p.group.as_deref().unwrap_or("\0"));
            }
        }
        let params: Vec<(String, String)> = self
            .params
            .iter()
            .filter(|(k, _)| !skip.contains(k))
            .cloned()
            .collect();
        d.pairs(&params);
        d.0
    }

    /// Starts only once every lost node it may run on is fenced (`requires = "fencing"`;
    /// a fence device never waits for fencing, as Pacemaker's).
    pub fn needs_fencing(&self) -> bool {
        matches!(self.meta.requires, Requires::Fencing | Requires::Unfencing)
            && !matches!(self.agent, Agent::Fence(_))
    }

    /// Starts on a node only once it is unfenced (`requires = "unfencing"`).
    pub fn needs_unfencing(&self) -> bool {
        self.meta.requires == Requires::Unfencing && !matches!(self.agent, Agent::Fence(_))
    }

    /// Probed and started on a node only once it is unfenced, where a device unfences: what
    /// needs unfencing, and fence devices (whose agents may not even probe before).
    pub(crate) fn after_unfencing(&self) -> bool {
        self.needs_unfencing() || matches!(self.agent, Agent::Fence(_))
    }

    /// A clone whose copies may be promoted.
    pub fn is_promotable(&self) -> bool {
        self.copies.as_ref().is_some_and(|c| c.promotable)
    }

    /// A clone (promotable or not): copies on several nodes.
    pub fn is_clone(&self) -> bool {
        self.copies.is_some()
    }

    /// The promotable clone's settings.
    pub fn promotable(&self) -> Option<&Copies> {
        self.copies.as_ref().filter(|c| c.promotable)
    }

    /// The role a recurring monitor of this interval runs in (Started when not configured).
    pub fn monitor_role(&self, interval: Duration) -> OpRole {
        self.op(OpName::Monitor, interval)
            .map_or(OpRole::Started, |o| o.role)
    }

    /// The enabled recurring monitors that run on a copy in `promoted` role or not: a
    /// promoted copy runs the monitors with role `promoted`, the others every other monitor.
    pub fn recurring_monitors_in(&self, promoted: bool) -> impl Iterator<Item = &OpSpec> {
        self.recurring_monitors()
            .filter(move |o| o.role != OpRole::Stopped && (o.role == OpRole::Promoted) == promoted)
    }

    /// The enabled recurring monitors with role `stopped`: they run on the nodes where the
    /// resource is stopped, and expect it not running (Pacemaker's `role="Stopped"`).
    pub fn stopped_monitors(&self) -> impl Iterator<Item = &OpSpec> {
        self.recurring_monitors()
            .filter(|o| o.role == OpRole::Stopped)
    }

    /// The enabled operation with this name and interval, if configured.
    pub fn op(&self, name: OpName, interval: Duration) -> Option<&OpSpec> {
        self.ops
            .iter()
            .find(|o| o.enabled && o.name == name && o.interval == interval)
    }

    /// The enabled recurring monitors.
    pub fn recurring_monitors(&self) -> impl Iterator<Item = &OpSpec> {
        self.ops
            .iter()
            .filter(|o| o.enabled && o.name == OpName::Monitor && !o.interval.is_zero())
    }

    /// The `on_fail` in force for an operation: the configured value, else Pacemaker's default
    /// (`restart`; for `stop`, `fence` when fencing is enabled and `block` otherwise; for `demote`,
    /// the promoted monitor's value).
    pub fn on_fail(&self, name: OpName, interval: Duration, fencing: bool) -> OnFail {
        // A disabled operation's `on_fail` still says what a failure of it means (a result
        // from before it was disabled), as Pacemaker reads it.
        let configured = self.op(name, interval).or_else(|| {
            self.ops
                .iter()
                .find(|o| o.name == name && o.interval == interval)
        });
        if let Some(v) = configured.and_then(|o| o.on_fail) {
            return v;
        }
        match name {
            OpName::Stop if fencing => OnFail::Fence,
            OpName::Stop => OnFail::Block,
            OpName::Notify => OnFail::Ignore,
            OpName::Demote => self
                .ops
                .iter()
                .find(|o| o.enabled && o.name == OpName::Monitor && o.role == OpRole::Promoted)
                .and_then(|o| o.on_fail)
                .unwrap_or(OnFail::Restart),
            _ => OnFail::Restart,
        }
    }
}

/// A location constraint: the score of running `resource` on `node`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub resource: String,
    pub node: String,
    pub score: Score,
    /// `Started`: where it runs; `Promoted`: where a promotable resource is promoted.
    pub role: OpRole,
    /// Whether it is probed there.
    pub discovery: Discovery,
}

/// A location whose nodes a rule picks (Pacemaker's `rsc_location` with a `rule`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleLocation {
    pub resource: String,
    pub rule: Rule,
    pub score: RuleScore,
    /// `Promoted`: adds to the promotion scores of a promotable resource's copies.
    pub role: OpRole,
}

/// What a rule location adds on the nodes its rule matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuleScore {
    Score(Score),
    /// The value of this node attribute on the node (Pacemaker's `score-attribute`);
    /// -INFINITY where the node does not have it.
    Attribute(String),
}

keyword_enum!(
    /// How an order constraint binds.
    OrderKind {
        /// `then` may run only where and while `first` runs; a restart of `first` restarts it.
        Mandatory = "mandatory",
        /// Only orders the actions when both happen in the same transition.
        Optional = "optional",
        /// The two never run actions at the same time.
        Serialize = "serialize",
    }
);

/// `resource` runs with (score > 0), away from (score < 0) the node `with` runs on;
/// ±INFINITY makes it mandatory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Colocation {
    pub resource: String,
    pub with: String,
    pub score: Score,
    /// `Promoted`: places the promoted copy of `resource` (which must be promotable).
    pub role: OpRole,
    /// `Promoted`: with the node(s) where `with` is promoted, rather than where it runs.
    pub with_role: OpRole,
}

/// `then` starts after `first` starts (and, when symmetric, stops before it stops).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Order {
    pub first: String,
    pub then: String,
    pub kind: OrderKind,
    pub symmetric: bool,
    /// `Start` or `Promote`: the action of `first` that `then`'s action waits for.
    pub first_action: OpName,
    /// `Start` or `Promote`.
    pub then_action: OpName,
    /// When `first` stands for a group (its last member): what reasons call it, as
    /// Pacemaker names the group's action (`web-group running`); with `first_min`, the
    /// name of what `then` waits for (orders with one label and one `then` count together).
    pub first_label: Option<String>,
    /// `then` needs only this many copies of `first` (of the resources of the orders with
    /// the same `first_label` and `then`, all copies counted) to run or be promoted, not all
    /// of them (Pacemaker's `clone-min`, and `require-all = false` of a set); no start of
    /// `first` restarts `then`.
    pub first_min: Option<u32>,
    /// The constraint's name, for reasons (`clone-one-or-more:ID`).
    pub id: Option<String>,
    /// `then` stands for a group (its first member): the order binds the group as a whole,
    /// so it does not keep the members from migrating (Pacemaker orders a group's
    /// pseudo-actions, not its members' migrations).
    pub then_group: bool,
}

impl Location {
    /// Where `resource` runs (role `Started`).
    pub fn new(resource: impl Into<String>, node: impl Into<String>, score: Score) -> Location {
        Location {
            resource: resource.into(),
            node: node.into(),
            score,
            role: OpRole::Started,
            discovery: Discovery::Always,
        }
    }
}

impl Order {
    /// A plain "start `first` then start `then`" order.
    pub fn new(first: impl Into<String>, then: impl Into<String>, kind: OrderKind) -> Order {
        Order {
            first: first.into(),
            then: then.into(),
            kind,
            symmetric: true,
            first_action: OpName::Start,
            then_action: OpName::Start,
            first_label: None,
            first_min: None,
            id: None,
            then_group: false,
        }
    }
}

impl Colocation {
    /// A plain colocation: `resource` runs with (or away from) the node `with` runs on.
    pub fn new(resource: impl Into<String>, with: impl Into<String>, score: Score) -> Colocation {
        Colocation {
            resource: resource.into(),
            with: with.into(),
            score,
            role: OpRole::Started,
            with_role: OpRole::Started,
        }
    }
}

/// Members start in order and stop in reverse, all on one node: each member is colocated with
/// (INFINITY) and ordered after (mandatory, symmetric) the one before it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub id: String,
    pub resources: Vec<String>,
}

/// `resource` may run (in `role`) only while `ticket` is granted and not on standby
/// (Pacemaker's `rsc_ticket`); `loss_policy` says what a revoke does to it while it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TicketConstraint {
    pub ticket: String,
    pub resource: String,
    /// `Promoted`: only the promoted copies need the ticket.
    pub role: OpRole,
    pub loss_policy: LossPolicy,
}

/// A fence device: what the coordinator runs to power a lost node off before it recovers what
/// the node ran.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FenceDevice {
    pub name: String,
    pub method: FenceMethod,
    /// The nodes it can fence; empty means every node.
    pub nodes: Vec<String>,
    /// How long one attempt may take before it counts as failed (Pacemaker's
    /// `stonith-timeout`, 60 s by default).
    pub timeout_ms: u64,
    /// It also unfences (Pacemaker's `provides=unfencing`: fence_scsi, fence_mpath): a node
    /// is unfenced (the agent's `on`) before what requires unfencing starts there.
    pub unfence: bool,
    /// Disabled (`target_role = "stopped"`): not placed, and neither fences nor unfences
    /// (Pacemaker's fencer leaves a disabled device out); fencing stays enabled.
    pub disabled: bool,
}

/// How a [`FenceDevice`] is called.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FenceMethod {
    /// A program called with the name of the node to fence as its last argument.
    Command(Vec<String>),
    /// A fence agent of the `fence-agents` kind, called as Pacemaker's fencer calls it.
    Agent(FenceAgent),
}

/// A fence agent (`fence_ipmilan`, `fence_xvm`, ...): its options go to its standard input as
/// `name=value` lines, with `action`, `nodename` and, when its metadata has the parameter, the
/// node's `plug` (or `port`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FenceAgent {
    /// The program's path.
    pub program: String,
    /// The device's own options (`ip`, `username`, ...), by name.
    pub params: Vec<(String, String)>,
    /// The plug of each node where it differs from the node's name (`pcmk_host_map`).
    pub host_map: Vec<(String, String)>,
    /// What the agent is asked to do (`reboot`, or `off`: `pcmk_reboot_action`).
    pub action: String,
}

impl FenceDevice {
    /// A device of this name with nothing to run: what a resource placed for a fence device
    /// that is gone from the configuration stands on (its stop does nothing).
    pub fn gone(name: impl Into<String>) -> FenceDevice {
        FenceDevice {
            name: name.into(),
            method: FenceMethod::Command(Vec::new()),
            nodes: Vec::new(),
            timeout_ms: 60_000,
            unfence: false,
            disabled: false,
        }
    }

    /// The program it runs.
    pub fn program(&self) -> &str {
        match &self.method {
            FenceMethod::Command(argv) => argv.first().map_or("", String::as_str),
            FenceMethod::Agent(a) => &a.program,
        }
    }
}

/// A configuration the engine can rely on: every reference resolves, names are unique.
#[derive(Clone, Debug)]
pub struct Config {
    pub cluster: ClusterOptions,
    nodes: Vec<String>,
    fence_devices: Vec<FenceDevice>,
    resources: Vec<ResourceSpec>,
    locations: Vec<Location>,
    node_index: HashMap<String, usize>,
    resource_index: HashMap<String, usize>,
    locations_by_resource: Vec<Vec<(usize, Score)>>,
    /// Per resource with a location that is not `always`, each node's discovery.
    discovery: Vec<Option<Vec<Discovery>>>,
    /// Per resource: (node index, score) of its `role = "promoted"` locations.
    promotion_locations: Vec<Vec<(usize, Score)>>,
    colocations: Vec<Colocation>,
    /// Every order, those of groups included.
    orders: Vec<Order>,
    /// The orders as given (without those of groups).
    given_orders: Vec<Order>,
    groups: Vec<Group>,
    tickets: Vec<TicketConstraint>,
    /// Per resource: indexes in `tickets` of the tickets it needs.
    tickets_of: Vec<Vec<usize>>,
    rule_locations: Vec<RuleLocation>,
    /// Per resource: indexes in `rule_locations` of its own.
    rule_locations_of: Vec<Vec<usize>>,
    /// Per node: its attributes from the file (rules read them; the state's override them).
    node_attributes: Vec<Vec<(String, String)>>,
    /// Per node: its capacities (`utilization`), by name.
    node_capacity: Vec<Vec<(String, i64)>>,
    /// Resources with monitors of the stopped role, by index.
    stopped_monitored: Vec<usize>,
    /// Per resource: its definition digest and restart digest ([`ResourceSpec::digest`]).
    digests: Vec<Digests>,
    /// Per resource: the colocations it depends on.
    colocated_with: Vec<Vec<ColocRef>>,
    /// Per resource: (dependent, score) of the plain colocations with it (no roles).
    dependents_of: Vec<Vec<(usize, Score)>>,
    /// Per promotable resource: (dependent, score) of the colocations with its promoted role
    /// (of dependents that are neither clones nor placed by their own promoted role).
    promoted_dependents_of: Vec<Vec<(usize, Score)>>,
    /// Per resource: (index of `then`, order) of the orders where it comes first.
    orders_from: Vec<Vec<(usize, usize)>>,
    /// Per resource: (index of `first`, order) of the orders where it comes second.
    orders_to: Vec<Vec<(usize, usize)>>,
    /// Per order (of `orders`): it binds copy to copy, node by node (see `interleaved`).
    interleaved: Vec<bool>,
    /// Resource indexes, each after those it is colocated with (then by priority, then
    /// order): the order of the summary.
    placement_order: Vec<usize>,
    /// What is placed together in Pacemaker's order: each resource alone, a group as one (its
    /// members in order), in declaration order.
    placement_units: Vec<Vec<usize>>,
    /// Per resource: the index of its unit in `placement_units`.
    unit_of: Vec<usize>,
    /// The order resources are placed in under the `default` placement strategy (see
    /// [`Config::assignment_order`]).
    assignment_order: Vec<usize>,
    /// For each resource, the one whose placement places it first (it is colocated with
    /// it), under the `default` placement strategy.
    assignment_within: Vec<Option<usize>>,
    /// Resource indexes, each after those ordered before it.
    action_order: Vec<usize>,
    /// Clones turned into instances ([`Instance`]): the clone's id and its instances'
    /// indexes, in number order.
    instance_sets: Vec<(String, Vec<usize>)>,
    /// Index in `instance_sets` by the clone's id.
    set_index: HashMap<String, usize>,
}

/// Turns each globally unique clone with `clone_node_max` above 1 into its instances
/// (`R:0`, `R:1`, ...: [`Instance`]), in its place; refuses what its instances cannot be yet.
fn instances(resources: Vec<ResourceSpec>, nodes: usize) -> Result<Vec<ResourceSpec>, ConfigError> {
    let mut out = Vec::with_capacity(resources.len());
    for r in resources {
        let Some(c) = r.copies.as_ref().filter(|c| c.clone_node_max > 1) else {
            out.push(r);
            continue;
        };
        let refuse = |why| {
            Err(ConfigError::Instances {
                resource: r.id.clone(),
                why,
            })
        };
        if !c.globally_unique {
            // Copies of an anonymous clone on one node are one and the same to its agent.
            return refuse("needs globally_unique = true");
        }
        if c.promotable || c.notify || c.interleave {
            return refuse("is not supported with promotable, notify or interleave yet");
        }
        let clone_max = c.clone_max.unwrap_or(nodes as u32);
        if clone_max == 0 {
            // Its name would name nothing; `target_role = "stopped"` stops every instance.
            return refuse("needs clone_max of at least 1");
        }
        for number in 0..clone_max {
            out.push(ResourceSpec {
                id: format!("{}:{number}", r.id),
                copies: None,
                instance: Some(Instance {
                    of: r.id.clone(),
                    number,
                    clone_max,
                    clone_node_max: c.clone_node_max,
                    clone_min: c.clone_min.filter(|&m| m > 0).unwrap_or(1),
                    name: c.name.clone().unwrap_or_else(|| r.id.clone()),
                    ordered: c.ordered,
                }),
                ..r.clone()
            });
        }
    }
    Ok(out)
}

/// Why a set of parts is not a configuration. The `warden` crate reports these with positions
/// before they can reach here; the engine still refuses them rather than trust its caller.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("a cluster needs at least one node")]
    NoNodes,
    #[error("clone {resource:?}: clone_node_max above 1 {why}")]
    Instances { resource: String, why: &'static str },
    #[error("node {0:?} is defined twice")]
    DuplicateNode(String),
    #[error("resource {0:?} is defined twice")]
    DuplicateResource(String),
    #[error("{what} refers to unknown node {node:?}")]
    UnknownNode { what: String, node: String },
    #[error("{what} refers to unknown resource {resource:?}")]
    UnknownResource { what: String, resource: String },
    #[error("resource {resource:?} is in two groups, {first:?} and {second:?}")]
    TwoGroups {
        resource: String,
        first: String,
        second: String,
    },
    #[error("{0} form a cycle")]
    Cycle(String),
    #[error("{what} needs {resource:?} to be promotable")]
    NotPromotable { what: String, resource: String },
    #[error("{what}: role {role:?} is not allowed here (allowed: {allowed})")]
    BadRole {
        what: String,
        role: String,
        allowed: &'static str,
    },
    #[error("{what}: action {action:?} is not allowed here (allowed: start, promote)")]
    BadAction { what: String, action: String },
}

/// A colocation as the scheduler reads it: with resource number `with`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ColocRef {
    pub with: usize,
    pub score: Score,
    /// The dependent's promoted copy is placed (promotion scores), not where it runs.
    pub promoted: bool,
    /// The dependent's unpromoted copies: a positive score keeps its promotion off the nodes
    /// of `with` (as Pacemaker's role phase takes the score from the copy's priority there)
    /// and places nothing; a negative one also places, as a plain colocation.
    pub unpromoted: bool,
    /// With the nodes where `with` is promoted, not where it runs.
    pub with_promoted: bool,
    /// With the nodes where `with` runs unpromoted (Pacemaker's `with-rsc-role="Unpromoted"`).
    pub with_unpromoted: bool,
    /// With a clone of instances (index of its set): where any of them runs; `with` is its
    /// last instance.
    pub with_set: Option<usize>,
    /// A group's own (a member with the one before it).
    pub internal: bool,
}

impl ColocRef {
    /// With a role of `with` (promoted or unpromoted), not with wherever it runs.
    pub fn by_role(&self) -> bool {
        self.with_promoted || self.with_unpromoted
    }

    /// Whether it weighs where the dependent runs (not only where it is promoted).
    pub fn places(&self) -> bool {
        let positive_unpromoted = self.unpromoted && self.score.value() > 0;
        !self.promoted && !positive_unpromoted
    }
}

impl Config {
    /// Builds a configuration, indexing it for the scheduler.
    pub fn new(
        cluster: ClusterOptions,
        nodes: Vec<String>,
        fence_devices: Vec<FenceDevice>,
        resources: Vec<ResourceSpec>,
        locations: Vec<Location>,
    ) -> Result<Config, ConfigError> {
        if nodes.is_empty() {
            return Err(ConfigError::NoNodes);
        }
        let mut node_index = HashMap::with_capacity(nodes.len());
        for (i, n) in nodes.iter().enumerate() {
            if node_index.insert(n.clone(), i).is_some() {
                return Err(ConfigError::DuplicateNode(n.clone()));
            }
        }
        let resources = instances(resources, nodes.len())?;
        let mut resource_index = HashMap::with_capacity(resources.len());
        for (i, r) in resources.iter().enumerate() {
            if resource_index.insert(r.id.clone(), i).is_some() {
                return Err(ConfigError::DuplicateResource(r.id.clone()));
            }
        }
        let mut instance_sets: Vec<(String, Vec<usize>)> = Vec::new();
        let mut set_index: HashMap<String, usize> = HashMap::new();
        for (i, r) in resources.iter().enumerate() {
            if let Some(inst) = &r.instance {
                if resource_index.contains_key(&inst.of) {
                    return Err(ConfigError::DuplicateResource(inst.of.clone()));
                }
                let k = *set_index.entry(inst.of.clone()).or_insert_with(|| {
                    instance_sets.push((inst.of.clone(), Vec::new()));
                    instance_sets.len() - 1
                });
                instance_sets[k].1.push(i);
            }
        }
        // What names a clone of instances names each of them.
        let locations: Vec<Location> = locations
            .into_iter()
            .flat_map(|l| match set_index.get(&l.resource) {
                Some(&k) => instance_sets[k]
                    .1
                    .iter()
                    .map(|&m| Location {
                        resource: resources[m].id.clone(),
                        ..l.clone()
                    })
                    .collect(),
                None => vec![l],
            })
            .collect();
        for d in &fence_devices {
            if let Some(n) = d.nodes.iter().find(|n| !node_index.contains_key(*n)) {
                return Err(ConfigError::UnknownNode {
                    what: format!("fence device {:?}", d.name),
                    node: n.clone(),
                });
            }
        }
        let mut locations_by_resource = vec![Vec::new(); resources.len()];
        let mut promotion_locations = vec![Vec::new(); resources.len()];
        let mut discovery: Vec<Option<Vec<Discovery>>> = vec![None; resources.len()];
        for l in &locations {
            let what = || format!("location of {:?} on {:?}", l.resource, l.node);
            let r =
                *resource_index
                    .get(&l.resource)
                    .ok_or_else(|| ConfigError::UnknownResource {
                        what: what(),
                        resource: l.resource.clone(),
                    })?;
            let n = *node_index
                .get(&l.node)
                .ok_or_else(|| ConfigError::UnknownNode {
                    what: what(),
                    node: l.node.clone(),
                })?;
            if l.discovery != Discovery::Always {
                // The strongest a node is given: exclusive, then never, then always.
                let modes =
                    discovery[r].get_or_insert_with(|| vec![Discovery::Always; nodes.len()]);
                modes[n] = modes[n].max(l.discovery);
            }
            match l.role {
                OpRole::Promoted => {
                    if !resources[r].is_promotable() {
                        return Err(ConfigError::NotPromotable {
                            what: format!("{} with role promoted", what()),
                            resource: l.resource.clone(),
                        });
                    }
                    promotion_locations[r].push((n, l.score));
                }
                _ => locations_by_resource[r].push((n, l.score)),
            }
        }
        let n = resources.len();
        let node_count = nodes.len();
        let by_priority: Vec<usize> = {
            let mut v: Vec<usize> = (0..n).collect();
            v.sort_by_key(|&i| std::cmp::Reverse(resources[i].meta.priority));
            v
        };
        let digests: Vec<Digests> = resources.iter().map(Digests::of).collect();
        let stopped_monitored = (0..n)
            .filter(|&i| resources[i].stopped_monitors().next().is_some())
            .collect();
        Ok(Config {
            cluster,
            nodes,
            fence_devices,
            resources,
            locations,
            node_index,
            resource_index,
            instance_sets,
            set_index,
            locations_by_resource,
            promotion_locations,
            discovery,
            colocations: Vec::new(),
            orders: Vec::new(),
            given_orders: Vec::new(),
            groups: Vec::new(),
            tickets: Vec::new(),
            tickets_of: vec![Vec::new(); n],
            rule_locations: Vec::new(),
            rule_locations_of: vec![Vec::new(); n],
            node_attributes: vec![Vec::new(); node_count],
            node_capacity: vec![Vec::new(); node_count],
            digests,
            stopped_monitored,
            colocated_with: vec![Vec::new(); n],
            dependents_of: vec![Vec::new(); n],
            promoted_dependents_of: vec![Vec::new(); n],
            orders_from: vec![Vec::new(); n],
            orders_to: vec![Vec::new(); n],
            interleaved: Vec::new(),
            placement_order: by_priority.clone(),
            placement_units: (0..n).map(|r| vec![r]).collect(),
            unit_of: (0..n).collect(),
            assignment_order: by_priority.clone(),
            assignment_within: vec![None; n],
            action_order: by_priority,
        })
    }

    /// Adds colocation and order constraints and groups (which expand into both). Refuses
    /// unknown resources, a resource in two groups, and cycles.
    pub fn with_constraints(
        mut self,
        colocations: Vec<Colocation>,
        orders: Vec<Order>,
        groups: Vec<Group>,
    ) -> Result<Config, ConfigError> {
        let idx = |what: &dyn Fn() -> String, r: &str| {
            self.resource_index(r)
                .ok_or_else(|| ConfigError::UnknownResource {
                    what: what(),
                    resource: r.to_owned(),
                })
        };
        // A clone of instances: as the dependent, each instance is; as what it is colocated
        // with, any of them (where one runs); first in an order, what follows needs
        // `clone_min` of them (the clone running); then in an order, each instance.
        let given_colocations = colocations;
        let mut colocations = Vec::with_capacity(given_colocations.len());
        let mut coloc_sets: Vec<Option<usize>> = Vec::new();
        for c in &given_colocations {
            let with_set = self.set_index.get(&c.with).copied();
            let with = match with_set {
                Some(k) => self.instance_sets[k]
                    .1
                    .last()
                    .map(|&m| self.resources[m].id.clone()),
                None => None,
            };
            for dep in self.named_ids(&c.resource) {
                colocations.push(Colocation {
                    resource: dep,
                    with: with.clone().unwrap_or_else(|| c.with.clone()),
                    ..c.clone()
                });
                coloc_sets.push(with_set);
            }
        }
        let given_orders = orders;
        let mut orders = Vec::with_capacity(given_orders.len());
        for o in &given_orders {
            let from_set = self.set_index.get(&o.first).copied();
            for first in self.named_ids(&o.first) {
                for then in self.named_ids(&o.then) {
                    let mut e = Order {
                        first: first.clone(),
                        then,
                        ..o.clone()
                    };
                    if let Some(k) = from_set {
                        let inst = self.resources[self.instance_sets[k].1[0]]
                            .instance
                            .as_ref()
                            .expect("an instance");
                        e.first_min = Some(inst.clone_min);
                        e.first_label = Some(format!("{} running", inst.name));
                    }
                    orders.push(e);
                }
            }
        }
        // An ordered clone's instances: one after another, as Pacemaker orders its instances
        // (optionally: one that cannot start holds none of the others).
        for (_, members) in &self.instance_sets {
            let ordered = members
                .first()
                .and_then(|&m| self.resources[m].instance.as_ref())
                .is_some_and(|i| i.ordered);
            if ordered {
                for w in members.windows(2) {
                    orders.push(Order::new(
                        self.resources[w[0]].id.clone(),
                        self.resources[w[1]].id.clone(),
                        OrderKind::Optional,
                    ));
                }
            }
        }
        if let Some(g) = groups
            .iter()
            .find(|g| g.resources.iter().any(|m| self.set_index.contains_key(m)))
        {
            return Err(ConfigError::Instances {
                resource: g
                    .resources
                    .iter()
                    .find(|m| self.set_index.contains_key(*m))
                    .cloned()
                    .unwrap_or_default(),
                why: "is not supported in a group yet",
            });
        }
        let mut all_colocations = colocations.clone();
        let mut all_orders = orders.clone();
        // After a clone with `clone_min` (or with `first_min` of its own), an order waits
        // for that many copies (as Pacemaker's `clone-one-or-more:ORDER` pseudo-action); a
        // `first_min` of an order from what is not a clone means nothing (as Pacemaker's
        // `require-all` there), unless it comes from a set (`one-or-more:SET`).
        for o in &mut all_orders {
            if self
                .resource(&o.first)
                .is_some_and(|r| r.instance.is_some())
            {
                continue;
            }
            let copies = self.resource(&o.first).and_then(|r| r.copies.as_ref());
            let of_a_set = o
                .first_label
                .as_deref()
                .is_some_and(|l| l.starts_with("one-or-more:"));
            let min = match copies {
                _ if of_a_set && o.first_min.is_some() => continue,
                Some(c) => c.clone_min.filter(|&m| m > 0).or(o.first_min),
                None => {
                    o.first_min = None;
                    continue;
                }
            };
            if let Some(m) = min {
                o.first_min = Some(m);
                let id =
                    o.id.clone()
                        .unwrap_or_else(|| format!("{}-then-{}", o.first, o.then));
                o.first_label = Some(format!("clone-one-or-more:{id}"));
            }
        }
        let mut member_of: HashMap<&str, &str> = HashMap::new();
        for g in &groups {
            for (i, m) in g.resources.iter().enumerate() {
                idx(&|| format!("group {:?}", g.id), m)?;
                if let Some(other) = member_of.insert(m, &g.id) {
                    return Err(ConfigError::TwoGroups {
                        resource: m.clone(),
                        first: other.to_owned(),
                        second: g.id.clone(),
                    });
                }
                if i > 0 {
                    let prev = g.resources[i - 1].clone();
                    all_colocations.push(Colocation::new(m.clone(), prev.clone(), Score::INFINITY));
                    all_orders.push(Order::new(prev, m.clone(), OrderKind::Mandatory));
                }
            }
        }
        let n = self.resources.len();
        let mut colocated_with = vec![Vec::new(); n];
        for (k, c) in all_colocations.iter().enumerate() {
            let what = || format!("colocation of {:?} with {:?}", c.resource, c.with);
            let (r, w) = (idx(&what, &c.resource)?, idx(&what, &c.with)?);
            let promoted = |role: OpRole, i: usize, name: &str| {
                if role != OpRole::Promoted {
                    return Ok(false);
                }
                if self.resources[i].is_promotable() {
                    Ok(true)
                } else {
                    Err(ConfigError::NotPromotable {
                        what: what(),
                        resource: name.to_owned(),
                    })
                }
            };
            if c.role == OpRole::Stopped {
                return Err(ConfigError::BadRole {
                    what: what(),
                    role: c.role.to_string(),
                    allowed: "started, promoted, unpromoted",
                });
            }
            if c.with_role == OpRole::Stopped {
                return Err(ConfigError::BadRole {
                    what: what(),
                    role: c.with_role.to_string(),
                    allowed: "started, promoted, unpromoted",
                });
            }
            let unpromoted = |role: OpRole, i: usize, name: &str| {
                if role != OpRole::Unpromoted {
                    return Ok(false);
                }
                if self.resources[i].is_promotable() {
                    Ok(true)
                } else {
                    Err(ConfigError::NotPromotable {
                        what: format!("{} with role unpromoted", what()),
                        resource: name.to_owned(),
                    })
                }
            };
            colocated_with[r].push(ColocRef {
                with: w,
                score: c.score,
                promoted: promoted(c.role, r, &c.resource)?,
                unpromoted: unpromoted(c.role, r, &c.resource)?,
                with_promoted: promoted(c.with_role, w, &c.with)?,
                with_unpromoted: unpromoted(c.with_role, w, &c.with)?,
                with_set: coloc_sets.get(k).copied().flatten(),
                internal: k >= colocations.len(),
            });
        }
        let mut orders_from = vec![Vec::new(); n];
        let mut orders_to = vec![Vec::new(); n];
        for (k, o) in all_orders.iter().enumerate() {
            let what = || format!("order of {:?} then {:?}", o.first, o.then);
            let (f, t) = (idx(&what, &o.first)?, idx(&what, &o.then)?);
            for (action, i, name) in [(o.first_action, f, &o.first), (o.then_action, t, &o.then)] {
                match action {
                    OpName::Start => {}
                    OpName::Promote if self.resources[i].is_promotable() => {}
                    OpName::Promote => {
                        return Err(ConfigError::NotPromotable {
                            what: what(),
                            resource: name.clone(),
                        });
                    }
                    other => {
                        return Err(ConfigError::BadAction {
                            what: what(),
                            action: other.to_string(),
                        });
                    }
                }
            }
            orders_from[f].push((t, k));
            orders_to[t].push((f, k));
        }
        let by_priority = self.placement_order.clone();
        let coloc_edges: Vec<Vec<usize>> = colocated_with
            .iter()
            .map(|v| {
                v.iter()
                    .flat_map(|c| match c.with_set {
                        Some(k) => self.instance_sets[k].1.clone(),
                        None => vec![c.with],
                    })
                    .collect()
            })
            .collect();
        let order_edges: Vec<Vec<usize>> = orders_to
            .iter()
            .map(|v| v.iter().map(|(f, _)| *f).collect())
            .collect();
        let names = |cycle: Vec<usize>| {
            cycle
                .iter()
                .map(|&i| self.resources[i].id.clone())
                .collect::<Vec<_>>()
                .join(", ")
        };
        // Colocations may form a loop, as in Pacemaker: the scheduler breaks it where it
        // starts placing (the one placed first does not see the one that closes the loop).
        self.placement_order = topo(&by_priority, &coloc_edges).unwrap_or(by_priority.clone());
        self.action_order = topo(&by_priority, &order_edges)
            .map_err(|c| ConfigError::Cycle(format!("orders of {}", names(c))))?;
        let mut dependents_of = vec![Vec::new(); n];
        let mut promoted_dependents_of = vec![Vec::new(); n];
        for (r, list) in colocated_with.iter().enumerate() {
            for c in list
                .iter()
                .filter(|c| c.places() && !c.with_unpromoted && c.with_set.is_none())
            {
                if !c.with_promoted {
                    dependents_of[c.with].push((r, c.score));
                } else if c.with != r && !self.resources[r].is_clone() {
                    promoted_dependents_of[c.with].push((r, c.score));
                }
            }
        }
        self.dependents_of = dependents_of;
        self.promoted_dependents_of = promoted_dependents_of;
        self.colocated_with = colocated_with;
        let copies = |id: &str| self.resource(id).and_then(|r| r.copies.as_ref());
        // The members of a group of clones go together copy by copy (a cloned group, as
        // Pacemaker's clone of a group), whatever their `interleave`.
        self.interleaved = all_orders
            .iter()
            .enumerate()
            .map(|(k, o)| {
                let within_group = k >= orders.len();
                o.first_action == OpName::Start
                    && o.then_action == OpName::Start
                    && o.first_min.is_none()
                    && copies(&o.first).is_some()
                    && copies(&o.then).is_some_and(|c| c.interleave || within_group)
            })
            .collect();
        // An order after a whole clone (not copy to copy) waits for the clone to be running,
        // as reasons say (Pacemaker's `web-clone running`).
        for (k, o) in all_orders.iter_mut().enumerate() {
            if o.first_label.is_some()
                || o.first_action != OpName::Start
                || self.interleaved.get(k).copied().unwrap_or(false)
            {
                continue;
            }
            if let Some(c) = self.resource(&o.first).and_then(|r| r.copies.as_ref()) {
                let name = c.name.clone().unwrap_or_else(|| o.first.clone());
                o.first_label = Some(format!("{name} running"));
            }
        }
        self.orders_from = orders_from;
        self.orders_to = orders_to;
        self.colocations = given_colocations;
        self.orders = all_orders;
        self.given_orders = given_orders;
        self.groups = groups;
        self.placement_units = self.units();
        self.unit_of = vec![0; self.resources.len()];
        for (u, unit) in self.placement_units.iter().enumerate() {
            for &r in unit {
                self.unit_of[r] = u;
            }
        }
        let by_priority = self.units_by_priority();
        (self.assignment_order, self.assignment_within) = self.assign_in(&by_priority);
        Ok(self)
    }

    /// The same configuration with `extra` resources added after the others, with no
    /// constraint naming them: the daemon adds orphans this way (resources gone from the file
    /// that still run somewhere), so the engine stops them.
    pub fn with_extra_resources(&self, extra: Vec<ResourceSpec>) -> Result<Config, ConfigError> {
        let mut resources = self.resources.clone();
        resources.extend(extra);
        Config::new(
            self.cluster.clone(),
            self.nodes.clone(),
            self.fence_devices.clone(),
            resources,
            self.locations.clone(),
        )?
        .with_constraints(
            self.colocations.clone(),
            self.given_orders.clone(),
            self.groups.clone(),
        )?
        .with_tickets(self.tickets.clone())?
        .with_rule_locations(self.rule_locations.clone())
        .map(|c| {
            c.with_node_attributes(self.node_attributes.clone())
                .with_node_capacity(self.node_capacity.clone())
        })
    }

    /// Adds locations whose nodes rules pick. Refuses unknown resources and a `promoted`
    /// role on a resource that is not promotable.
    pub fn with_rule_locations(mut self, list: Vec<RuleLocation>) -> Result<Config, ConfigError> {
        let list: Vec<RuleLocation> = list
            .into_iter()
            .flat_map(|l| {
                self.named_ids(&l.resource)
                    .into_iter()
                    .map(move |resource| RuleLocation {
                        resource,
                        ..l.clone()
                    })
            })
            .collect();
        let mut of = vec![Vec::new(); self.resources.len()];
        for (k, l) in list.iter().enumerate() {
            let what = || format!("location of {:?} by rule {}", l.resource, l.rule);
            let r =
                self.resource_index(&l.resource)
                    .ok_or_else(|| ConfigError::UnknownResource {
                        what: what(),
                        resource: l.resource.clone(),
                    })?;
            if l.role == OpRole::Promoted && !self.resources[r].is_promotable() {
                return Err(ConfigError::NotPromotable {
                    what: format!("{} with role promoted", what()),
                    resource: l.resource.clone(),
                });
            }
            of[r].push(k);
        }
        self.rule_locations = list;
        self.rule_locations_of = of;
        Ok(self)
    }

    /// Sets the nodes' attributes from the file, by node index (missing nodes have none).
    pub fn with_node_attributes(mut self, mut attrs: Vec<Vec<(String, String)>>) -> Config {
        attrs.resize(self.nodes.len(), Vec::new());
        self.node_attributes = attrs;
        self
    }

    /// Sets the nodes' capacities, by node index (missing nodes have none).
    pub fn with_node_capacity(mut self, mut capacity: Vec<Vec<(String, i64)>>) -> Config {
        capacity.resize(self.nodes.len(), Vec::new());
        self.node_capacity = capacity;
        self
    }

    /// Node number `i`'s capacities.
    pub fn node_capacity(&self, i: usize) -> &[(String, i64)] {
        self.node_capacity.get(i).map_or(&[], Vec::as_slice)
    }

    pub fn rule_locations(&self) -> &[RuleLocation] {
        &self.rule_locations
    }

    /// The rule locations of resource number `r`.
    pub(crate) fn rule_locations_of(&self, r: usize) -> impl Iterator<Item = &RuleLocation> {
        self.rule_locations_of[r]
            .iter()
            .map(|&k| &self.rule_locations[k])
    }

    /// Node number `i`'s attributes from the file.
    pub fn node_attributes(&self, i: usize) -> &[(String, String)] {
        self.node_attributes.get(i).map_or(&[], Vec::as_slice)
    }

    /// Adds ticket constraints. Refuses unknown resources and a `promoted` role on a
    /// resource that is not promotable.
    pub fn with_tickets(mut self, tickets: Vec<TicketConstraint>) -> Result<Config, ConfigError> {
        let tickets: Vec<TicketConstraint> = tickets
            .into_iter()
            .flat_map(|t| {
                self.named_ids(&t.resource)
                    .into_iter()
                    .map(move |resource| TicketConstraint {
                        resource,
                        ..t.clone()
                    })
            })
            .collect();
        let mut tickets_of = vec![Vec::new(); self.resources.len()];
        for (k, t) in tickets.iter().enumerate() {
            let what = || format!("ticket {:?} of {:?}", t.ticket, t.resource);
            let r =
                self.resource_index(&t.resource)
                    .ok_or_else(|| ConfigError::UnknownResource {
                        what: what(),
                        resource: t.resource.clone(),
                    })?;
            if t.role == OpRole::Promoted && !self.resources[r].is_promotable() {
                return Err(ConfigError::NotPromotable {
                    what: format!("{} with role promoted", what()),
                    resource: t.resource.clone(),
                });
            }
            tickets_of[r].push(k);
        }
        self.tickets = tickets;
        self.tickets_of = tickets_of;
        Ok(self)
    }

    /// The definition digests of resource number `r`.
    pub(crate) fn digests(&self, r: usize) -> Digests {
        self.digests[r]
    }

    /// The same configuration where the agents of these resources offer `reload-agent`, with
    /// their reloadable parameters (the shell reads the agents' meta-data).
    pub fn with_reloadable(mut self, reloadable: &HashMap<String, Vec<String>>) -> Config {
        for (i, r) in self.resources.iter_mut().enumerate() {
            if let Some(p) = reloadable.get(&r.id) {
                r.reloadable = Some(p.clone());
                self.digests[i] = Digests::of(r);
            }
        }
        self
    }

    /// Node names in configuration order (the final placement tie-break).
    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }

    pub fn resources(&self) -> &[ResourceSpec] {
        &self.resources
    }

    /// The resources with monitors of the stopped role (`role = "stopped"`).
    pub fn stopped_monitored(&self) -> impl Iterator<Item = &ResourceSpec> {
        self.stopped_monitored.iter().map(|&i| &self.resources[i])
    }

    pub fn locations(&self) -> &[Location] {
        &self.locations
    }

    pub fn fence_devices(&self) -> &[FenceDevice] {
        &self.fence_devices
    }

    /// Fencing is enabled when at least one fence device is configured.
    pub fn fencing_enabled(&self) -> bool {
        !self.fence_devices.is_empty()
    }

    /// A fence device unfences: nodes are unfenced before what needs it (and fence devices)
    /// is probed or started there.
    pub fn unfencing_enabled(&self) -> bool {
        self.fence_devices.iter().any(|d| d.unfence)
    }

    /// The fence devices able to fence `node`, in configuration order.
    pub fn fence_devices_for<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a FenceDevice> {
        self.fence_devices
            .iter()
            .filter(|d| !d.disabled)
            .filter(move |d| d.nodes.is_empty() || d.nodes.iter().any(|n| n == node))
    }

    /// What fencing `node` does: the action of the first device able to fence it (`reboot`
    /// for a command device, or when none can).
    pub fn fence_action<'a>(&'a self, node: &'a str) -> &'a str {
        match self.fence_devices_for(node).next().map(|d| &d.method) {
            Some(FenceMethod::Agent(a)) => &a.action,
            _ => "reboot",
        }
    }

    pub fn node_index(&self, name: &str) -> Option<usize> {
        self.node_index.get(name).copied()
    }

    pub fn resource_index(&self, id: &str) -> Option<usize> {
        self.resource_index.get(id).copied()
    }

    pub fn resource(&self, id: &str) -> Option<&ResourceSpec> {
        self.resource_index(id).map(|i| &self.resources[i])
    }

    /// The instances (indexes, in number order) of a clone turned into instances
    /// ([`Instance`]), by the clone's id.
    pub fn instances_of(&self, id: &str) -> Option<&[usize]> {
        self.set_index
            .get(id)
            .map(|&k| self.instance_sets[k].1.as_slice())
    }

    /// The members (indexes) of instance set number `k` (see [`ColocRef::with_set`]).
    pub(crate) fn set_members(&self, k: usize) -> &[usize] {
        &self.instance_sets[k].1
    }

    /// The name of instance set number `k`, as reasons call it.
    pub(crate) fn set_name(&self, k: usize) -> &str {
        &self.instance_sets[k].0
    }

    /// The resource ids a constraint or command naming `id` applies to: the resource itself,
    /// or a clone's instances (an unknown name is kept, for the caller to refuse).
    pub fn named_ids(&self, id: &str) -> Vec<String> {
        match self.instances_of(id) {
            Some(members) => members
                .iter()
                .map(|&m| self.resources[m].id.clone())
                .collect(),
            None => vec![id.to_owned()],
        }
    }

    /// Whether resource number `r` is looked for (probed) on node number `i`.
    pub fn discovers(&self, r: usize, i: usize) -> bool {
        match self.discovery.get(r).and_then(Option::as_ref) {
            None => true,
            Some(modes) => match modes.get(i) {
                Some(Discovery::Exclusive) => true,
                Some(Discovery::Never) | None => false,
                Some(Discovery::Always) => !modes.contains(&Discovery::Exclusive),
            },
        }
    }

    /// [`Config::discovers`] by names (true for names it does not know).
    pub fn discovers_on(&self, resource: &str, node: &str) -> bool {
        match (self.resource_index(resource), self.node_index(node)) {
            (Some(r), Some(i)) => self.discovers(r, i),
            _ => true,
        }
    }

    /// Whether resource number `r` runs only on the nodes of its exclusive locations.
    pub(crate) fn exclusive_discovery(&self, r: usize) -> bool {
        self.discovery
            .get(r)
            .and_then(Option::as_ref)
            .is_some_and(|m| m.contains(&Discovery::Exclusive))
    }

    /// Location scores of resource number `r`, as (node index, score).
    pub(crate) fn locations_of(&self, r: usize) -> &[(usize, Score)] {
        &self.locations_by_resource[r]
    }

    /// The colocation constraints as configured (groups add their own, internally).
    pub fn colocations(&self) -> &[Colocation] {
        &self.colocations
    }

    /// Every order constraint, those of groups included.
    pub fn orders(&self) -> &[Order] {
        &self.orders
    }

    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    pub fn tickets(&self) -> &[TicketConstraint] {
        &self.tickets
    }

    /// The ticket constraints of resource number `r`.
    pub(crate) fn tickets_of(&self, r: usize) -> impl Iterator<Item = &TicketConstraint> {
        self.tickets_of[r].iter().map(|&k| &self.tickets[k])
    }

    /// Promotion scores of resource number `r` from `role = "promoted"` locations.
    pub(crate) fn promotion_locations_of(&self, r: usize) -> &[(usize, Score)] {
        &self.promotion_locations[r]
    }

    /// (dependent, score) of the plain colocations with resource number `r`.
    pub(crate) fn dependents_of(&self, r: usize) -> &[(usize, Score)] {
        &self.dependents_of[r]
    }

    /// What is colocated with the promoted role of `r` (see the field).
    pub(crate) fn promoted_dependents_of(&self, r: usize) -> &[(usize, Score)] {
        &self.promoted_dependents_of[r]
    }

    pub(crate) fn colocated_with(&self, r: usize) -> &[ColocRef] {
        &self.colocated_with[r]
    }

    /// Whether order number `k` is one a group makes between its members.
    pub(crate) fn group_internal(&self, k: usize) -> bool {
        k >= self.given_orders.len()
    }

    pub(crate) fn orders_from(&self, r: usize) -> &[(usize, usize)] {
        &self.orders_from[r]
    }

    /// Whether order number `k` binds copy to copy, node by node: a start-to-start order
    /// between two clones whose `then` interleaves (Pacemaker reads `interleave` of the `then`
    /// clone, for the order and its inverse).
    pub(crate) fn interleaved(&self, k: usize) -> bool {
        self.interleaved.get(k).copied().unwrap_or(false)
    }

    pub(crate) fn orders_to(&self, r: usize) -> &[(usize, usize)] {
        &self.orders_to[r]
    }

    pub(crate) fn placement_order(&self) -> &[usize] {
        &self.placement_order
    }

    pub(crate) fn placement_units(&self) -> &[Vec<usize>] {
        &self.placement_units
    }

    /// The unit `r` is placed with: itself alone, or its group's members.
    pub(crate) fn unit_of(&self, r: usize) -> &[usize] {
        &self.placement_units[self.unit_of[r]]
    }

    /// The order resources are placed in under the `default` placement strategy, as
    /// Pacemaker's: the highest priority first, then in configuration order, a group as one
    /// (by its first member's priority), each resource after those it is colocated with.
    pub(crate) fn assignment_order(&self) -> &[usize] {
        &self.assignment_order
    }

    /// For each resource, the one whose placement places it first, in
    /// [`Config::assignment_order`].
    pub(crate) fn assignment_within(&self) -> &[Option<usize>] {
        &self.assignment_within
    }

    /// Each resource alone and each group as one, in declaration order.
    fn units(&self) -> Vec<Vec<usize>> {
        let mut group_of: Vec<Option<usize>> = vec![None; self.resources.len()];
        let members: Vec<Vec<usize>> = self
            .groups
            .iter()
            .enumerate()
            .map(|(g, group)| {
                let m: Vec<usize> = group
                    .resources
                    .iter()
                    .filter_map(|id| self.resource_index(id))
                    .collect();
                for &r in &m {
                    group_of[r] = Some(g);
                }
                m
            })
            .collect();
        let mut units: Vec<Vec<usize>> = Vec::new();
        let mut group_done = vec![false; members.len()];
        for (r, group) in group_of.iter().enumerate() {
            match *group {
                Some(g) if group_done[g] => {}
                Some(g) => {
                    group_done[g] = true;
                    units.push(members[g].clone());
                }
                None => units.push(vec![r]),
            }
        }
        units
    }

    /// Unit indexes (of `placement_units`) by descending priority, declaration order kept.
    pub(crate) fn units_by_priority(&self) -> Vec<usize> {
        let units = &self.placement_units;
        let mut sorted: Vec<usize> = (0..units.len()).collect();
        sorted.sort_by_key(|&u| std::cmp::Reverse(self.resources[units[u][0]].meta.priority));
        sorted
    }

    /// The resources of `units` (indexes of `placement_units`) in that order, each after those
    /// it is colocated with (the highest priority, then clones, first); a colocation loop is
    /// broken where it is met. With it, for each resource, the one whose placement placed it
    /// first (Pacemaker places the primaries of a resource while placing it).
    pub(crate) fn assign_in(&self, units: &[usize]) -> (Vec<usize>, Vec<Option<usize>>) {
        let mut order = Vec::with_capacity(self.resources.len());
        let mut within = vec![None; self.resources.len()];
        let mut seen = vec![false; self.resources.len()];
        for &u in units {
            for &r in &self.placement_units[u] {
                self.assign_after_primaries(r, None, &mut seen, &mut order, &mut within);
            }
        }
        (order, within)
    }

    fn assign_after_primaries(
        &self,
        r: usize,
        parent: Option<usize>,
        seen: &mut [bool],
        order: &mut Vec<usize>,
        within: &mut [Option<usize>],
    ) {
        if seen[r] {
            return;
        }
        seen[r] = true;
        within[r] = parent;
        let resources = &self.resources;
        let mut primaries: Vec<usize> = self.colocated_with[r]
            .iter()
            .flat_map(|c| match c.with_set {
                Some(k) => self.instance_sets[k].1.clone(),
                None => vec![c.with],
            })
            .collect();
        primaries.sort_by_key(|&w| {
            (
                std::cmp::Reverse(resources[w].meta.priority),
                !resources[w].is_clone(),
                !resources[w].is_promotable(),
            )
        });
        for w in primaries {
            self.assign_after_primaries(w, Some(r), seen, order, within);
        }
        order.push(r);
    }

    pub(crate) fn action_order(&self) -> &[usize] {
        &self.action_order
    }
}

/// A topological order of `0..n` (each after its `deps`), ties broken by `preferred`; on a
/// cycle, the resources in it.
fn topo(preferred: &[usize], deps: &[Vec<usize>]) -> Result<Vec<usize>, Vec<usize>> {
    let n = deps.len();
    let mut rank = vec![0; n];
    for (pos, &i) in preferred.iter().enumerate() {
        rank[i] = pos;
    }
    let mut pending: Vec<usize> = deps.iter().map(Vec::len).collect();
    let mut dependents = vec![Vec::new(); n];
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds {
            dependents[d].push(i);
        }
    }
    let mut ready: std::collections::BTreeSet<(usize, usize)> = (0..n)
        .filter(|&i| pending[i] == 0)
        .map(|i| (rank[i], i))
        .collect();
    let mut out = Vec::with_capacity(n);
    while let Some((_, i)) = ready.pop_first() {
        out.push(i);
        for &j in &dependents[i] {
            pending[j] -= 1;
            if pending[j] == 0 {
                ready.insert((rank[j], j));
            }
        }
    }
    if out.len() == n {
        return Ok(out);
    }
    // What is left sits on a cycle or behind one; peel off those nothing left depends on
    // (behind it), so only the cycle is named.
    let mut left: std::collections::BTreeSet<usize> = (0..n).filter(|&i| pending[i] > 0).collect();
    loop {
        let sinks: Vec<usize> = left
            .iter()
            .copied()
            .filter(|&i| !dependents[i].iter().any(|j| left.contains(j)))
            .collect();
        if sinks.is_empty() {
            return Err(left.into_iter().collect());
        }
        for i in sinks {
            left.remove(&i);
        }
    }
}
