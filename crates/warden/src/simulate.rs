//! `warden simulate`: the what-if tool. Loads a configuration and a saved state, applies node
//! events, admin commands and injected results, schedules, runs the transition against
//! simulated agents (every action succeeds unless told otherwise) and prints what happened.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::json;
use warden_engine::{
    ActionKind, AdminCommand, Config, Event, OpKey, OpName, OpResult, Outcome, ScheduleOptions,
    Score, State, TicketAction, Time, apply, check_transition, default_outcome, execute,
    failed_actions, node_groups, rc, resource_status, schedule_with,
};

use crate::config;
use crate::duration;
use crate::wire::{StateFile, format_time, parse_time, wall_clock};

/// Everything `simulate` was asked to do.
#[derive(Debug, Default, clap::Args)]
pub struct SimulateArgs {
    /// The configuration file.
    #[arg(long, short, required_unless_present = "cib")]
    pub config: Option<PathBuf>,
    /// A Pacemaker CIB (`cibadmin -Q`), its configuration and status, instead of
    /// `--config` and `--state` (docs/pacemaker.md).
    #[arg(long, conflicts_with_all = ["config", "state"])]
    pub cib: Option<PathBuf>,
    /// A state saved by an earlier `--save-state` (default: a fresh cluster).
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Where to write the state after the transition.
    #[arg(long)]
    pub save_state: Option<PathBuf>,
    /// Bring a node online (repeatable). A fresh state with no node events has every node online.
    #[arg(long, value_name = "NODE")]
    pub node_up: Vec<String>,
    /// Lose a node without a clean shutdown (repeatable).
    #[arg(long, value_name = "NODE")]
    pub node_fail: Vec<String>,
    /// Put a node in standby (repeatable).
    #[arg(long, value_name = "NODE")]
    pub standby: Vec<String>,
    /// Take a node out of standby (repeatable).
    #[arg(long, value_name = "NODE")]
    pub online: Vec<String>,
    /// Set a node attribute as `warden node attribute` does: NODE@NAME=VALUE, or NODE@NAME=
    /// to delete it (repeatable).
    #[arg(long, value_name = "NODE@NAME=VALUE")]
    pub node_attribute: Vec<String>,
    /// Grant a ticket (repeatable).
    #[arg(long, value_name = "TICKET")]
    pub ticket_grant: Vec<String>,
    /// Revoke a ticket (repeatable).
    #[arg(long, value_name = "TICKET")]
    pub ticket_revoke: Vec<String>,
    /// Put a ticket on standby (repeatable).
    #[arg(long, value_name = "TICKET")]
    pub ticket_standby: Vec<String>,
    /// Take a ticket out of standby (repeatable).
    #[arg(long, value_name = "TICKET")]
    pub ticket_activate: Vec<String>,
    /// Clean up a resource's failures, on one node or all: RES[@NODE] (repeatable).
    #[arg(long, value_name = "RES[@NODE]")]
    pub cleanup: Vec<String>,
    /// Record an operation result before scheduling: RES:OP[:INTERVAL]@NODE=RC (repeatable).
    /// `monitor:0` is a probe, `monitor:10s` the recurring monitor; RC may be `timeout`.
    #[arg(long, value_name = "SPEC")]
    pub inject: Vec<String>,
    /// Set a promotion score as an agent would (`warden promotion-score`): RES@NODE=SCORE,
    /// or RES@NODE= to remove it (repeatable).
    #[arg(long, value_name = "RES@NODE=SCORE")]
    pub promotion_score: Vec<String>,
    /// Make an action of the transition fail: RES:OP[:INTERVAL]@NODE=RC, or fence@NODE.
    #[arg(long, value_name = "SPEC")]
    pub fail: Vec<String>,
    /// The time to simulate at: RFC 3339, or +DURATION after the saved state's time.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// Show placement scores.
    #[arg(long)]
    pub scores: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// A parsed `RES:OP[:INTERVAL]@NODE=RC`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct OpSpecArg {
    resource: String,
    node: String,
    op: OpKey,
    rc: i32,
    reason: String,
}

fn parse_op_arg(config: &Config, s: &str, flag: &str) -> anyhow::Result<OpSpecArg> {
    let usage = || {
        format!("{flag} {s:?}: expected RES:OP[:INTERVAL]@NODE=RC, like dummy:monitor:10s@node1=7")
    };
    let (lhs, rc_s) = s.rsplit_once('=').with_context(usage)?;
    let (what, node) = lhs.rsplit_once('@').with_context(usage)?;
    let mut parts = what.split(':');
    let resource = parts.next().unwrap_or_default();
    let op_s = parts.next().with_context(usage)?;
    let interval_s = parts.next();
    if parts.next().is_some() {
        bail!(usage());
    }
    let Some(spec) = config.resource(resource) else {
        bail!("{flag} {s:?}: unknown resource {resource:?}");
    };
    if config.node_index(node).is_none() {
        bail!("{flag} {s:?}: unknown node {node:?}");
    }
    let name: OpName = op_s
        .parse()
        .map_err(|_| anyhow::anyhow!("{flag} {s:?}: unknown operation {op_s:?} (allowed: start, stop, monitor, promote, demote, notify)"))?;
    let interval = match interval_s {
        Some(i) => duration::parse(i).map_err(|e| anyhow::anyhow!("{flag} {s:?}: {e}"))?,
        None if name == OpName::Monitor => {
            bail!(
                "{flag} {s:?}: say monitor:0 for a probe or monitor:INTERVAL for a recurring monitor"
            )
        }
        None => Duration::ZERO,
    };
    if name == OpName::Monitor
        && !interval.is_zero()
        && spec.op(OpName::Monitor, interval).is_none()
    {
        let have: Vec<String> = spec
            .recurring_monitors()
            .map(|o| duration::format(o.interval))
            .collect();
        bail!(
            "{flag} {s:?}: {resource} has no recurring monitor every {} (configured: {})",
            duration::format(interval),
            if have.is_empty() {
                "none".to_owned()
            } else {
                have.join(", ")
            }
        );
    }
    let (rc, reason) = match rc_s {
        "timeout" => (rc::ERR_GENERIC, "timed out".to_owned()),
        n => (
            n.parse::<i32>()
                .map_err(|_| anyhow::anyhow!("{flag} {s:?}: RC must be a number or `timeout`"))?,
            String::new(),
        ),
    };
    Ok(OpSpecArg {
        resource: resource.to_owned(),
        node: node.to_owned(),
        op: OpKey::new(name, interval),
        rc,
        reason,
    })
}

/// A parsed `RES@NODE=SCORE` (an empty score removes it).
fn parse_promotion_score(config: &Config, s: &str) -> anyhow::Result<Event> {
    let usage = || format!("--promotion-score {s:?}: expected RES@NODE=SCORE, like db@node2=10");
    let (lhs, score) = s.split_once('=').with_context(usage)?;
    let (resource, node) = lhs.split_once('@').with_context(usage)?;
    match config.resource(resource) {
        None => bail!("--promotion-score {s:?}: unknown resource {resource:?}"),
        Some(r) if !r.is_promotable() => {
            bail!("--promotion-score {s:?}: {resource} is not promotable")
        }
        Some(_) => {}
    }
    if config.node_index(node).is_none() {
        bail!("--promotion-score {s:?}: unknown node {node:?}");
    }
    let score = match score {
        "" => None,
        v => Some(
            v.parse::<Score>()
                .map_err(|e| anyhow::anyhow!("--promotion-score {s:?}: {e}"))?,
        ),
    };
    Ok(Event::PromotionScore {
        resource: resource.to_owned(),
        node: node.to_owned(),
        score,
    })
}

/// The outcome of one simulated action.
#[derive(Debug)]
struct Executed {
    action: String,
    outcome: String,
    ok: bool,
}

pub fn run(args: &SimulateArgs) -> anyhow::Result<String> {
    let mut notes = Vec::new();
    let (loaded, imported) = match (&args.cib, &args.config) {
        (Some(cib), _) => {
            let xml = std::fs::read_to_string(cib)
                .with_context(|| format!("cannot read {}", cib.display()))?;
            let i = crate::cib::import(&xml).with_context(|| format!("{}", cib.display()))?;
            let name = cib.display().to_string();
            let mut loaded = config::parse(&i.toml, &name, String::new).map_err(|e| {
                anyhow::anyhow!("{e}\n(the configuration read from the CIB:)\n{}", i.toml)
            })?;
            loaded.engine = loaded.engine.with_reloadable(&i.reloadable);
            // What the status knows and the configuration lost: stopped as orphans.
            if !i.orphans.is_empty() {
                loaded.engine = loaded
                    .engine
                    .with_extra_resources(i.orphans.clone())
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            }
            notes.extend(
                i.unsupported
                    .iter()
                    .map(|u| format!("not carried over: {u}")),
            );
            notes.extend(
                i.ignored
                    .iter()
                    .map(|u| format!("ignored, as Pacemaker ignores it: {u}")),
            );
            (loaded, Some((i.state, i.time)))
        }
        (None, Some(path)) => (config::load(path)?, None),
        (None, None) => bail!("simulate needs --config or --cib"),
    };
    let config = &loaded.engine;

    let (mut state, saved_time) = match (&args.state, imported) {
        (_, Some((state, time))) => (
            state.unwrap_or_else(|| {
                State::with_online_nodes(config.nodes().iter().map(String::as_str))
            }),
            Some(time),
        ),
        (state_file, None) => match state_file {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read {}", p.display()))?;
                let file: StateFile = serde_json::from_str(&text)
                    .with_context(|| format!("{}: not a warden state file", p.display()))?;
                let (s, t) = file
                    .into_state()
                    .with_context(|| format!("{}", p.display()))?;
                (s, Some(t))
            }
            None => {
                let mut s = State::default();
                if args.node_up.is_empty() && args.node_fail.is_empty() {
                    s = State::with_online_nodes(config.nodes().iter().map(String::as_str));
                }
                (s, None)
            }
        },
    };

    let now = match args.at.as_deref() {
        Some(rel) if rel.starts_with('+') => {
            let d = duration::parse(&rel[1..]).map_err(|e| anyhow::anyhow!("--at {rel:?}: {e}"))?;
            saved_time.unwrap_or_else(wall_clock) + d
        }
        Some(abs) => parse_time(abs).context("--at")?,
        None => saved_time.unwrap_or_else(wall_clock),
    };

    let mut events = Vec::new();
    events.extend(
        args.node_up
            .iter()
            .map(|n| Event::NodeUp { node: n.clone() }),
    );
    events.extend(
        args.node_fail
            .iter()
            .map(|n| Event::NodeDown { node: n.clone() }),
    );
    events.extend(
        args.standby
            .iter()
            .map(|n| Event::Admin(AdminCommand::Standby { node: n.clone() })),
    );
    events.extend(
        args.online
            .iter()
            .map(|n| Event::Admin(AdminCommand::Online { node: n.clone() })),
    );
    for a in &args.node_attribute {
        let usage = || {
            format!("--node-attribute {a:?}: expected NODE@NAME=VALUE (or NODE@NAME= to delete)")
        };
        let (lhs, value) = a.split_once('=').with_context(usage)?;
        let (node, name) = lhs.split_once('@').with_context(usage)?;
        events.push(Event::Admin(AdminCommand::NodeAttribute {
            node: node.to_owned(),
            name: name.to_owned(),
            value: (!value.is_empty()).then(|| value.to_owned()),
        }));
    }
    for (list, action) in [
        (&args.ticket_grant, TicketAction::Grant),
        (&args.ticket_revoke, TicketAction::Revoke),
        (&args.ticket_standby, TicketAction::Standby),
        (&args.ticket_activate, TicketAction::Activate),
    ] {
        events.extend(list.iter().map(|t| {
            Event::Admin(AdminCommand::Ticket {
                ticket: t.clone(),
                action,
            })
        }));
    }
    for c in &args.cleanup {
        let (r, n) = match c.split_once('@') {
            Some((r, n)) => (r, Some(n.to_owned())),
            None => (c.as_str(), None),
        };
        events.push(Event::Admin(AdminCommand::Cleanup {
            resource: Some(r.to_owned()),
            node: n,
        }));
    }
    for i in &args.inject {
        let a = parse_op_arg(config, i, "--inject")?;
        if a.op.is_recurring_monitor() && !state.on_node(&a.resource, &a.node).role.is_active() {
            notes.push(format!(
                "{} is not started on {}: the monitor result is stale and ignored",
                a.resource, a.node
            ));
        }
        events.push(Event::OpResult(OpResult {
            resource: a.resource,
            node: a.node,
            op: a.op,
            rc: a.rc,
            exit_reason: a.reason,
            status: warden_engine::rc::ExecStatus::Done,
            digest: None,
        }));
    }
    for p in &args.promotion_score {
        events.push(parse_promotion_score(config, p)?);
    }
    let mut fails = Vec::new();
    let mut fence_fails = HashSet::new();
    for f in &args.fail {
        if let Some(node) = f.strip_prefix("fence@") {
            let node = node.split('=').next().unwrap_or_default();
            if config.node_index(node).is_none() {
                bail!("--fail {f:?}: unknown node {node:?}");
            }
            fence_fails.insert(node.to_owned());
        } else {
            fails.push(parse_op_arg(config, f, "--fail")?);
        }
    }

    // What really runs, for the simulated agents' probes: a cleanup makes the cluster forget,
    // not the resources stop.
    let reality = state.clone();
    for e in &events {
        apply(config, &mut state, e, now)?;
    }
    state.expire_failures(config, now);

    let transition = schedule_with(
        config,
        &state,
        now,
        ScheduleOptions {
            scores: args.scores,
        },
    );
    let violation = check_transition(config, &state, now, &transition).err();

    // Run the transition: an action runs once all it depends on succeeded.
    let results = execute(config, &mut state, &transition, now, |kind| match kind {
        ActionKind::Fence { node, .. } => Outcome::Fenced(!fence_fails.contains(node)),
        ActionKind::Unfence { .. } => Outcome::Fenced(true),
        kind => fails
            .iter()
            .find(|f| {
                Some(f.resource.as_str()) == kind.resource()
                    && f.node == kind.node()
                    && Some(f.op) == kind.op()
            })
            .map_or_else(
                || match kind {
                    ActionKind::Probe { resource, node } => {
                        match reality.on_node(resource, node).role {
                            warden_engine::Role::Started => Outcome::rc(rc::OK),
                            warden_engine::Role::Promoted => Outcome::rc(rc::RUNNING_PROMOTED),
                            _ => Outcome::rc(rc::NOT_RUNNING),
                        }
                    }
                    kind => default_outcome(kind),
                },
                |f| Outcome::Rc {
                    rc: f.rc,
                    exit_reason: f.reason.clone(),
                },
            ),
    });
    let executed: Vec<Executed> = transition
        .actions
        .iter()
        .zip(&results)
        .map(|(a, r)| {
            let outcome = match &r.outcome {
                None => "skipped: a prerequisite failed".to_owned(),
                Some(Outcome::Fenced(ok)) => if *ok { "ok" } else { "failed" }.to_owned(),
                Some(Outcome::Rc {
                    rc: code,
                    exit_reason,
                }) => {
                    let mut s = format!("rc={code} ({})", rc::name(*code));
                    if !exit_reason.is_empty() {
                        let _ = write!(s, " '{exit_reason}'");
                    }
                    if !r.ok {
                        s.push_str(", unexpected");
                    }
                    s
                }
            };
            Executed {
                action: a.kind.to_string(),
                outcome,
                ok: r.ok,
            }
        })
        .collect();

    if let Some(p) = &args.save_state {
        let text = serde_json::to_string_pretty(&StateFile::from_state(&state, now))?;
        std::fs::write(p, text + "\n").with_context(|| format!("cannot write {}", p.display()))?;
    }

    let wakeup = warden_engine::schedule(config, &state, now).wakeup;
    if args.json {
        let out = json!({
            "time": format_time(now),
            "summary": transition.summary.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "actions": transition.actions.iter().zip(&executed).map(|(a, e)| json!({
                "id": a.id, "action": a.kind.to_string(), "deps": a.deps, "outcome": e.outcome, "ok": e.ok,
            })).collect::<Vec<_>>(),
            "nodes": node_groups(config, &state).into_iter().map(|(k, v)| (k.to_owned(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "resources": resource_status(config, &state, now).iter().map(|r| json!({
                "id": r.id, "agent": r.agent, "status": r.to_string(), "nodes": r.nodes,
                "failed": r.failed, "blocked": r.blocked, "flags": r.flags,
            })).collect::<Vec<_>>(),
            "failed_actions": failed_actions(config, &state, now).iter().map(|f| json!({
                "resource": f.resource, "node": f.node, "op": f.op.to_string(), "rc": f.record.rc,
                "rc_name": rc::name(f.record.rc), "exit_reason": f.record.exit_reason,
                "time": format_time(f.record.time), "fail_count": f.fail_count,
            })).collect::<Vec<_>>(),
            "scores": transition.scores.iter().map(|s| json!({
                "resource": s.resource, "node": s.node, "score": s.score.to_string(),
                "kind": if s.promotion { "promotion" } else { "allocation" },
            })).collect::<Vec<_>>(),
            "next_wakeup": wakeup.map(format_time),
            "notes": notes,
            "invariant_violation": violation,
        });
        return Ok(serde_json::to_string_pretty(&out)? + "\n");
    }

    let mut o = String::new();
    for n in &notes {
        writeln!(o, "Note: {n}")?;
    }
    if args.scores {
        writeln!(o, "Allocation scores:")?;
        for s in &transition.scores {
            let kind = if s.promotion {
                "promotion"
            } else {
                "allocation"
            };
            writeln!(
                o,
                "  {} {kind} score on {}: {}",
                s.resource, s.node, s.score
            )?;
        }
        writeln!(o)?;
    }
    writeln!(o, "Transition Summary:")?;
    if transition.summary.is_empty() {
        writeln!(o, "  (nothing to do)")?;
    }
    for c in &transition.summary {
        writeln!(o, "  * {c}")?;
    }
    if !executed.is_empty() {
        writeln!(o, "\nExecuting Cluster Transition:")?;
        for e in &executed {
            writeln!(o, "  * {}: {}", e.action, e.outcome)?;
        }
    }
    writeln!(o, "\nRevised Cluster Status ({}):", format_time(now))?;
    write!(o, "{}", render_status(config, &state, now))?;
    if let Some(w) = wakeup {
        writeln!(o, "\nNext wake-up: {} (a failure expires)", format_time(w))?;
    }
    if let Some(v) = violation {
        writeln!(o, "\nINVARIANT VIOLATED: {v}")?;
    }
    Ok(o)
}

/// Nodes, resources and failed actions, as `simulate` and `status` print them.
pub fn render_status(config: &Config, state: &State, now: Time) -> String {
    let mut o = String::new();
    for (label, names) in node_groups(config, state) {
        let _ = writeln!(o, "  * {label}: [ {} ]", names.join(" "));
    }
    let _ = writeln!(o, "  * Resources:");
    for r in resource_status(config, state, now) {
        let _ = writeln!(o, "    * {r}");
    }
    // Node attributes (the file's and those set at run time), as crm_mon -A lists them.
    let attrs: Vec<(&String, std::collections::BTreeMap<String, String>)> = config
        .nodes()
        .iter()
        .map(|n| (n, warden_engine::node_attributes(config, state, n)))
        .filter(|(_, a)| !a.is_empty())
        .collect();
    if !attrs.is_empty() {
        let _ = writeln!(o, "  * Node Attributes:");
        for (n, a) in attrs {
            let list: Vec<String> = a.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let _ = writeln!(o, "    * {n}: {}", list.join(" "));
        }
    }
    // Capacities used and held, under a placement strategy (as crm_simulate -U).
    let used: Vec<String> = config
        .nodes()
        .iter()
        .filter_map(|n| {
            let u = warden_engine::node_utilization(config, state, n);
            let list: Vec<String> = u.iter().map(|(k, a, b)| format!("{k}={a}/{b}")).collect();
            (!list.is_empty()).then(|| format!("    * {n}: {}", list.join(" ")))
        })
        .collect();
    if !used.is_empty() {
        let _ = writeln!(o, "  * Node Utilization:");
        for line in used {
            let _ = writeln!(o, "{line}");
        }
    }
    // Every ticket a constraint names or an operator set, as crm_mon lists them.
    let mut tickets: std::collections::BTreeSet<&str> =
        config.tickets().iter().map(|t| t.ticket.as_str()).collect();
    tickets.extend(state.tickets.keys().map(String::as_str));
    if !tickets.is_empty() {
        let _ = writeln!(o, "  * Tickets:");
        for t in tickets {
            let st = state.tickets.get(t).cloned().unwrap_or_default();
            let word = if st.granted { "granted" } else { "revoked" };
            let standby = if st.standby { " (standby)" } else { "" };
            let _ = writeln!(o, "    * {t}: {word}{standby}");
        }
    }
    // Like crm_mon -f: every resource with failures on a node, against its threshold.
    let mut summary = Vec::new();
    for node in config.nodes() {
        for spec in config.resources() {
            let Some(on) = state.resource(&spec.id).and_then(|r| r.nodes.get(node)) else {
                continue;
            };
            let count = on.fail_count(&spec.meta, now);
            if count == 0 {
                continue;
            }
            let mut line = format!(
                "    * {node}: {}: fail-count={} migration-threshold={}",
                spec.id,
                count_str(count),
                spec.meta
                    .threshold()
                    .map_or("disabled".to_owned(), count_str)
            );
            if let Some(t) = on.last_failure {
                let _ = write!(line, " last-failure={}", format_time(t));
            }
            if let Some(e) = on.expiry(&spec.meta) {
                let _ = write!(line, " expires={}", format_time(e));
            }
            summary.push(line);
        }
    }
    if !summary.is_empty() {
        let _ = writeln!(o, "  * Migration Summary:");
        for l in summary {
            let _ = writeln!(o, "{l}");
        }
    }
    let failed = failed_actions(config, state, now);
    if !failed.is_empty() {
        let _ = writeln!(o, "  * Failed Resource Actions:");
        for f in failed {
            let _ = write!(
                o,
                "    * {}_{} on {} '{}' ({}): fail-count={}, at {}",
                f.resource,
                f.op,
                f.node,
                rc::name(f.record.rc),
                f.record.rc,
                count_str(f.fail_count),
                format_time(f.record.time),
            );
            if !f.record.exit_reason.is_empty() {
                let _ = write!(o, ", exit-reason='{}'", f.record.exit_reason);
            }
            let _ = writeln!(o);
        }
    }
    o
}

fn count_str(c: u32) -> String {
    if c >= warden_engine::INFINITY_COUNT {
        "INFINITY".to_owned()
    } else {
        c.to_string()
    }
}
