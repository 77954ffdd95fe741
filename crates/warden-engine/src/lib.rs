//! Warden's decision engine: given the configuration, the cluster state and `now`, what to do.
//!
//! Pure by construction: no I/O, no clock reads, no randomness, no async runtime. Everything
//! that happens enters through [`apply`]; every decision leaves through [`schedule`].

mod apply;
pub mod config;
mod execute;
pub mod health;
mod invariants;
mod progress;
pub mod rc;
pub mod rule;
mod schedule;
mod score;
mod state;
mod status;
mod time;

pub use apply::{
    AdminCommand, ApplyError, Event, OpResult, apply, expected, lock_for_shutdown, valid_attribute,
    valid_ticket,
};
pub use config::{
    Agent, ClusterOptions, Colocation, Config, ConfigError, Copies, Digests, Discovery, FenceAgent,
    FenceDevice, FenceMethod, Group, INFINITY_COUNT, Instance, Location, LossPolicy, Meta,
    MultipleActive, NoQuorumPolicy, NodeHealth, NodeHealthStrategy, OnFail, OpName, OpRole, OpSpec,
    Order, OrderKind, PlacementStrategy, ProcessSpec, Requires, ResourceSpec, RuleLocation,
    RuleScore, TargetRole, TicketAction, TicketConstraint,
};
pub use execute::{Executed, Outcome, default_outcome, execute};
pub use invariants::{blocked_or_held, check_transition};
pub use progress::{Progress, Step};
pub use rule::{AttrOp, DateExpr, Rule, ValueKind, parse_date};
pub use schedule::{
    Action, ActionId, ActionKind, Change, Notification, NotifyKind, ScheduleOptions, ScoreEntry,
    StopReason, Transition, schedule, schedule_with,
};
pub use score::{INFINITY, Score};
pub use state::{
    Effective, NodeState, OpKey, OpRecord, ResourceOnNode, ResourceState, Role, ShutdownLock,
    State, TicketState, truthy,
};
pub use status::{
    FailedAction, ResourceStatus, failed_actions, node_attributes, node_groups, node_utilization,
    resource_status,
};
pub use time::{Civil, Time, millis};
