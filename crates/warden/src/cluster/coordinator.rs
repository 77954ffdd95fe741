//! The coordinator: the node elected through etcd's election API runs the daemon's core with
//! its store in etcd. Its effects become assignments for the nodes' agents, their results
//! and reports come back as inputs, node membership comes from the member keys. Every write
//! compares the election key's create revision (the epoch): a deposed coordinator cannot
//! write. A new coordinator continues from etcd: the log, and the actions its predecessor
//! assigned (their results are recorded; it schedules once none is left running).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use etcd_client::{EventType, WatchOptions};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tracing::{debug, error, info, warn};
use warden_engine::{ActionId, AdminCommand, Config, Digests, Event, OpName, OpResult, Time};

use super::etcd::{Etcd, reason};
use super::log::{Deposed, EtcdLog, keys};
use super::session::LeaseRx;
use super::wire::{ActionResult, Assignment, Report, WireNotification};
use crate::control::ControlError;
use crate::core::{Boot, Core, Effect, Input, OpOutcome};
use crate::wire::{WireDefinition, WireEvent, format_digest};

/// What the coordinator's loop gets.
#[derive(Debug)]
enum In {
    /// A member key appeared (with its create revision) or went.
    Member {
        node: String,
        incarnation: Option<i64>,
    },
    Result {
        key: String,
        result: ActionResult,
    },
    Report {
        key: String,
        report: Report,
    },
    Request {
        key: String,
        event: WireEvent,
    },
    Fenced {
        id: ActionId,
        ok: bool,
    },
    /// A watch ended: the coordinator steps down and is elected again from a fresh read.
    WatchLost(String),
}

/// A request's reply (`reply/<id>`).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Reply {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// An action in flight.
#[derive(Debug)]
struct Assigned {
    id: ActionId,
    node: String,
}

/// What the coordinator runs with.
#[derive(Clone)]
pub struct Shared {
    pub etcd: Arc<Etcd>,
    pub node: String,
    pub config: watch::Receiver<Arc<Config>>,
    pub lease: LeaseRx,
    pub rt: tokio::runtime::Handle,
    /// Set when the daemon stops: the coordinator's thread returns.
    pub stop: Arc<std::sync::atomic::AtomicBool>,
    /// Whether the coordinator's thread runs (the daemon waits for it before it exits).
    pub running: Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

/// Campaigns for ever; while elected, coordinates.
pub async fn campaign(shared: Shared) {
    let mut lease_rx = shared.lease.clone();
    let election = shared.etcd.key(keys::ELECTION);
    loop {
        let current = *lease_rx.borrow_and_update();
        let lease = match current {
            Some(l) if l.valid() => l,
            _ => {
                if lease_rx.changed().await.is_err() {
                    return;
                }
                continue;
            }
        };
        let Ok((i, mut client)) = shared.etcd.client().await else {
            tokio::time::sleep(super::etcd::jittered(Duration::from_millis(200))).await;
            continue;
        };
        // A campaign cancelled midway makes etcd delete the candidate's key (and the
        // key is per lease): cancel only when the lease itself is gone or replaced, not at
        // each renewal.
        let lease_gone = async {
            loop {
                if lease_rx.changed().await.is_err() {
                    return;
                }
                if lease_rx.borrow().is_none_or(|l| l.id != lease.id) {
                    return;
                }
            }
        };
        let won = tokio::select! {
            r = client.campaign(election.clone(), shared.node.clone(), lease.id) => Some(r),
            _ = lease_gone => None,
        };
        let leader = match won {
            None => continue,
            Some(Err(e)) => {
                shared.etcd.failed(i, format!("campaign: {}", reason(&e)));
                tokio::time::sleep(super::etcd::jittered(Duration::from_millis(200))).await;
                continue;
            }
            Some(Ok(mut r)) => match r.take_leader() {
                Some(l) => l,
                None => continue,
            },
        };
        let epoch = leader.rev();
        info!(epoch, "elected coordinator");
        let key = leader.key().to_vec();
        match coordinate(shared.clone(), key, epoch).await {
            Ok(()) => info!(epoch, "no longer the coordinator"),
            Err(e) if e.downcast_ref::<Deposed>().is_some() => {
                warn!(epoch, "deposed: another node coordinates now")
            }
            Err(e) => error!(epoch, error = %format!("{e:#}"), "the coordinator stopped"),
        }
        // Give the key up (if it still exists) so another node can be elected at once.
        if let Ok((_, mut c)) = shared.etcd.client().await {
            let opts = etcd_client::ResignOptions::new().with_leader(leader);
            let _ = tokio::time::timeout(shared.etcd.timing.request, c.resign(Some(opts))).await;
        }
    }
}

/// One term as coordinator: reads everything, starts the watches, runs the loop on a thread
/// of its own (the core's store blocks on etcd), until deposed or the lease is lost.
async fn coordinate(shared: Shared, leader_key: Vec<u8>, epoch: i64) -> anyhow::Result<()> {
    let etcd = Arc::clone(&shared.etcd);
    let deadline = Instant::now() + etcd.timing.ttl * 2;
    let (kvs, rev) = etcd.get_prefix(&etcd.prefix, deadline).await?;
    let (tx, rx) = mpsc::unbounded_channel();
    // The watches start right after what was read.
    let watch_task = tokio::spawn(watch_inputs(Arc::clone(&etcd), rev + 1, tx.clone()));
    let kvs: Vec<(String, Vec<u8>, i64)> = kvs
        .into_iter()
        .map(|kv| {
            (
                String::from_utf8_lossy(kv.key()).into_owned(),
                kv.value().to_vec(),
                kv.lease(),
            )
        })
        .collect();
    let (done_tx, done_rx) = oneshot::channel();
    let s = shared.clone();
    std::thread::Builder::new()
        .name("coordinator".into())
        .spawn(move || {
            use std::sync::atomic::Ordering;
            s.running.store(true, Ordering::SeqCst);
            let running = Arc::clone(&s.running);
            let r = Coordinator::start(s, leader_key, epoch, kvs, tx).and_then(|c| c.run(rx));
            running.store(false, Ordering::SeqCst);
            let _ = done_tx.send(r);
        })
        .context("cannot start the coordinator's thread")?;
    let r = done_rx
        .await
        .unwrap_or_else(|_| Err(anyhow::anyhow!("the coordinator's thread ended")));
    watch_task.abort();
    r
}

/// Watches members, results, reports and requests from `rev` on.
async fn watch_inputs(etcd: Arc<Etcd>, rev: i64, tx: mpsc::UnboundedSender<In>) {
    let prefix = etcd.prefix.clone();
    let (i, mut client) = match etcd.client().await {
        Ok(c) => c,
        Err(e) => {
            let _ = tx.send(In::WatchLost(e.to_string()));
            return;
        }
    };
    let opts = WatchOptions::new()
        .with_prefix()
        .with_start_revision(rev)
        .with_prev_key();
    let mut stream = match tokio::time::timeout(
        etcd.timing.request,
        client.watch(format!("{prefix}/"), Some(opts)),
    )
    .await
    {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            let _ = tx.send(In::WatchLost(
                etcd.failed(i, format!("watch: {}", reason(&e))).to_string(),
            ));
            return;
        }
        Err(_) => {
            let _ = tx.send(In::WatchLost(
                etcd.failed(i, "watch: request timed out".to_owned())
                    .to_string(),
            ));
            return;
        }
    };
    let members = etcd.key(keys::MEMBERS);
    let results = etcd.key(keys::RESULT);
    let reports = etcd.key(keys::REPORT);
    let requests = etcd.key(keys::REQUEST);
    loop {
        let resp = match stream.message().await {
            Ok(Some(r)) => r,
            Ok(None) => {
                let _ = tx.send(In::WatchLost(
                    etcd.failed(i, "watch: stream closed".to_owned())
                        .to_string(),
                ));
                return;
            }
            Err(e) => {
                let _ = tx.send(In::WatchLost(
                    etcd.failed(i, format!("watch: {}", reason(&e))).to_string(),
                ));
                return;
            }
        };
        if resp.canceled() || resp.compact_revision() > 0 {
            let _ = tx.send(In::WatchLost(format!(
                "watch cancelled ({}; compacted at {})",
                resp.cancel_reason(),
                resp.compact_revision()
            )));
            return;
        }
        for ev in resp.events() {
            let Some(kv) = ev.kv() else { continue };
            let key = String::from_utf8_lossy(kv.key()).into_owned();
            let put = ev.event_type() == EventType::Put;
            let input = if let Some(node) = key.strip_prefix(&members) {
                Some(In::Member {
                    node: node.to_owned(),
                    incarnation: put.then(|| kv.lease()),
                })
            } else if !put {
                None
            } else if key.starts_with(&results) {
                serde_json::from_slice(kv.value())
                    .map(|result| In::Result {
                        key: key.clone(),
                        result,
                    })
                    .map_err(|e| warn!(key = %key, error = %e, "result not understood"))
                    .ok()
            } else if key.starts_with(&reports) {
                serde_json::from_slice(kv.value())
                    .map(|report| In::Report {
                        key: key.clone(),
                        report,
                    })
                    .map_err(|e| warn!(key = %key, error = %e, "report not understood"))
                    .ok()
            } else if key.starts_with(&requests) {
                serde_json::from_slice(kv.value())
                    .map(|event| In::Request {
                        key: key.clone(),
                        event,
                    })
                    .map_err(|e| warn!(key = %key, error = %e, "request not understood"))
                    .ok()
            } else {
                None
            };
            if let Some(input) = input {
                if tx.send(input).is_err() {
                    return;
                }
            }
        }
    }
}

/// The wall clock as the coordinator sees it (wall time at its start plus monotonic time).
#[derive(Clone, Copy, Debug)]
struct Clock {
    wall0: Time,
    mono0: std::time::Instant,
}

impl Clock {
    fn now(&self) -> Time {
        self.wall0 + self.mono0.elapsed()
    }
}

struct Coordinator {
    shared: Shared,
    core: Core,
    log: EtcdLog,
    clock: Clock,
    /// Actions this coordinator assigned, by their number.
    assigned: HashMap<u64, Assigned>,
    next_n: u64,
    /// Actions an earlier coordinator assigned that still run: nothing is scheduled until
    /// their results are in (or their node is gone), at most until `old_deadline`.
    old: HashMap<String, Assignment>,
    old_deadline: Time,
    /// Member keys' leases: a node's incarnation (a new lease, a new incarnation).
    members: HashMap<String, i64>,
    /// The incarnation of each node last recorded as joined.
    seen: HashMap<String, i64>,
    tx: mpsc::UnboundedSender<In>,
}

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator")
            .field("epoch", &self.log.epoch)
            .finish_non_exhaustive()
    }
}

impl Coordinator {
    fn start(
        shared: Shared,
        leader_key: Vec<u8>,
        epoch: i64,
        kvs: Vec<(String, Vec<u8>, i64)>,
        tx: mpsc::UnboundedSender<In>,
    ) -> anyhow::Result<Coordinator> {
        let etcd = Arc::clone(&shared.etcd);
        let config = shared.config.borrow().clone();
        let rel = |k: &str| {
            k.strip_prefix(&format!("{}/", etcd.prefix))
                .map(str::to_owned)
        };
        let mut stored = Vec::new();
        let mut members = HashMap::new();
        let mut seen = HashMap::new();
        let mut old = HashMap::new();
        let mut results = Vec::new();
        let mut reports = Vec::new();
        let mut requests = Vec::new();
        for (k, v, lease) in &kvs {
            let Some(r) = rel(k) else { continue };
            if r == keys::DEFINITIONS {
                match serde_json::from_slice::<Vec<WireDefinition>>(v) {
                    Ok(defs) => stored = defs,
                    Err(e) => warn!(error = %e, "stored definitions not understood"),
                }
            } else if let Some(node) = r.strip_prefix(keys::MEMBERS) {
                members.insert(node.to_owned(), *lease);
            } else if let Some(node) = r.strip_prefix(&format!("{}/", keys::SEEN)) {
                if let Ok(rev) = String::from_utf8_lossy(v).parse::<i64>() {
                    seen.insert(node.to_owned(), rev);
                }
            } else if r.starts_with(keys::ASSIGN) {
                match serde_json::from_slice::<Assignment>(v) {
                    Ok(a) => {
                        old.insert(k.clone(), a);
                    }
                    Err(e) => warn!(key = %k, error = %e, "assignment not understood"),
                }
            } else if r.starts_with(keys::RESULT) {
                if let Ok(result) = serde_json::from_slice::<ActionResult>(v) {
                    results.push((k.clone(), result));
                }
            } else if r.starts_with(keys::REPORT) {
                if let Ok(report) = serde_json::from_slice::<Report>(v) {
                    reports.push((k.clone(), report));
                }
            } else if r.starts_with(keys::REQUEST) {
                if let Ok(event) = serde_json::from_slice::<WireEvent>(v) {
                    requests.push((k.clone(), event));
                }
            }
        }
        let stored = crate::wire::orphan_specs(stored);
        let rt = shared.rt.clone();
        let mut loaded_log = None;
        let boot = Boot::restore(
            Arc::clone(&config),
            stored,
            shared.node.clone(),
            Vec::new(),
            |c| {
                let l = rt.block_on(super::log::load(
                    &etcd,
                    c,
                    Instant::now() + etcd.timing.ttl * 2,
                ))?;
                for s in &l.skipped {
                    warn!(entry = %s, "stored event no longer applies to the configuration; skipped");
                }
                let state = l.state.clone();
                loaded_log = Some(l);
                Ok(state)
            },
        )?;
        let loaded_log = loaded_log.context("the log was not read")?;
        let mut boot = boot;
        boot.monitors_here = false;
        let core = Core::new(boot)?;
        let log = EtcdLog::new(
            Arc::clone(&etcd),
            shared.rt.clone(),
            leader_key,
            epoch,
            &loaded_log,
        );
        let clock = Clock {
            wall0: crate::wire::wall_clock(),
            mono0: std::time::Instant::now(),
        };
        let now = clock.now();
        let mut c = Coordinator {
            shared,
            core,
            log,
            clock,
            assigned: HashMap::new(),
            next_n: 0,
            old,
            old_deadline: now + Duration::from_secs(120),
            members: HashMap::new(),
            seen,
            tx,
        };
        info!(
            epoch,
            resources = config.resources().len(),
            nodes = config.nodes().len(),
            pending = c.old.len(),
            "coordinating"
        );
        // What happened while nobody coordinated: results, reports, requests, membership.
        for (key, result) in results {
            c.on_result(key, result)?;
        }
        for (key, report) in reports {
            c.on_report(key, report)?;
        }
        for node in config.nodes() {
            let incarnation = members.get(node).copied();
            c.on_member(node.clone(), incarnation)?;
        }
        for (key, event) in requests {
            c.on_request(key, event)?;
        }
        Ok(c)
    }

    fn run(mut self, mut rx: mpsc::UnboundedReceiver<In>) -> anyhow::Result<()> {
        let rt = self.shared.rt.clone();
        let effects = self.core.begin();
        self.carry_out(effects)?;
        let mut config = self.shared.config.borrow().clone();
        loop {
            if self.shared.stop.load(std::sync::atomic::Ordering::SeqCst) {
                return Ok(());
            }
            if !self.shared.lease.borrow().is_some_and(|l| l.valid()) {
                warn!("the lease is no longer valid: stepping down");
                return Ok(());
            }
            let latest = self.shared.config.borrow().clone();
            if !Arc::ptr_eq(&latest, &config) {
                config = latest;
                let now = self.clock.now();
                let (changes, effects) = self.core.reload(&config, &[], now, &mut self.log)?;
                for c in &changes {
                    info!(change = %c, "configuration change");
                }
                self.carry_out(effects)?;
            }
            let now = self.clock.now();
            if !self.old.is_empty() && now >= self.old_deadline {
                for (key, a) in std::mem::take(&mut self.old) {
                    warn!(key = %key, resource = %a.resource, op = %a.op, "an earlier coordinator's action never reported; taken as failed");
                    self.record_old(
                        &key,
                        &a,
                        ActionResult {
                            rc: warden_engine::rc::ERR_GENERIC,
                            exit_reason: "result lost with the coordinator".to_owned(),
                            duration_ms: 0,
                            status: None,
                        },
                        None,
                    )?;
                }
            }
            if self.old.is_empty() {
                let effects = self.core.poll(now)?;
                self.carry_out(effects)?;
            }
            let wake = self
                .core
                .poll_timeout()
                .map_or(Duration::from_secs(1), |t| t.since(self.clock.now()))
                .min(Duration::from_millis(100))
                .max(Duration::from_millis(1));
            let input = rt.block_on(async { tokio::time::timeout(wake, rx.recv()).await });
            match input {
                Err(_) => {}
                Ok(None) => return Ok(()),
                Ok(Some(i)) => self.on_input(i)?,
            }
            // Everything already queued, before scheduling again.
            while let Ok(i) = rx.try_recv() {
                self.on_input(i)?;
            }
        }
    }

    fn on_input(&mut self, i: In) -> anyhow::Result<()> {
        match i {
            In::Member { node, incarnation } => self.on_member(node, incarnation),
            In::Result { key, result } => self.on_result(key, result),
            In::Report { key, report } => self.on_report(key, report),
            In::Request { key, event } => self.on_request(key, event),
            In::Fenced { id, ok } => {
                let now = self.clock.now();
                let effects = self
                    .core
                    .handle(Input::FenceDone { id, ok }, now, &mut self.log)?;
                self.carry_out(effects)
            }
            In::WatchLost(why) => anyhow::bail!("lost the watch on etcd: {why}"),
        }
    }

    fn rel_key(&self, key: &str) -> Option<String> {
        key.strip_prefix(&format!("{}/", self.shared.etcd.prefix))
            .map(str::to_owned)
    }

    /// `<node>/<epoch>-<n>` of an assignment or result key.
    fn parse_action_key(rest: &str) -> Option<(String, i64, u64)> {
        let (node, id) = rest.split_once('/')?;
        let (epoch, n) = id.split_once('-')?;
        Some((node.to_owned(), epoch.parse().ok()?, n.parse().ok()?))
    }

    fn on_result(&mut self, key: String, result: ActionResult) -> anyhow::Result<()> {
        let Some(rest) = self
            .rel_key(&key)
            .and_then(|r| r.strip_prefix(keys::RESULT).map(str::to_owned))
        else {
            return Ok(());
        };
        let assign_key = self.shared.etcd.key(&format!("{}{rest}", keys::ASSIGN));
        let Some((_, epoch, n)) = Self::parse_action_key(&rest) else {
            return Ok(());
        };
        if epoch == self.log.epoch {
            let Some(a) = self.assigned.remove(&n) else {
                return self.log.write(Vec::new(), vec![assign_key, key], None);
            };
            let now = self.clock.now();
            self.log.also_delete = vec![assign_key.clone(), key.clone()];
            let outcome = OpOutcome {
                rc: result.rc,
                status: result.exec_status(),
                exit_reason: result.exit_reason,
                duration: Duration::from_millis(result.duration_ms),
            };
            let effects = self.core.handle(
                Input::ActionDone {
                    id: a.id,
                    result: outcome,
                },
                now,
                &mut self.log,
            )?;
            if !self.log.also_delete.is_empty() {
                // Nothing was recorded (the action no longer mattered): just clean up.
                let deletes = std::mem::take(&mut self.log.also_delete);
                self.log.write(Vec::new(), deletes, None)?;
            }
            return self.carry_out(effects);
        }
        match self.old.remove(&assign_key) {
            Some(a) => self.record_old(&assign_key, &a, result, Some(key)),
            None => self.log.write(Vec::new(), vec![key], None),
        }
    }

    /// Records the result of an action an earlier coordinator assigned.
    fn record_old(
        &mut self,
        assign_key: &str,
        a: &Assignment,
        result: ActionResult,
        result_key: Option<String>,
    ) -> anyhow::Result<()> {
        let node = self
            .rel_key(assign_key)
            .and_then(|r| {
                r.strip_prefix(keys::ASSIGN)
                    .and_then(|r| r.split_once('/'))
                    .map(|(n, _)| n.to_owned())
            })
            .unwrap_or_default();
        let Ok(op) = crate::wire::parse_op_key(&a.op) else {
            return Ok(());
        };
        let digest = crate::wire::parse_digest(&a.digest)
            .ok()
            .zip(crate::wire::parse_digest(&a.restart_digest).ok())
            .map(|(all, restart)| Digests {
                all,
                restart,
                agent: crate::wire::parse_digest(&a.agent_digest).ok(),
            });
        let event = Event::OpResult(OpResult {
            resource: a.resource.clone(),
            node,
            op,
            rc: result.rc,
            status: result.exec_status(),
            exit_reason: result.exit_reason,
            digest: digest.filter(|_| {
                matches!(
                    op.name,
                    OpName::Start | OpName::Reload | OpName::MigrateFrom
                )
            }),
        });
        self.log.also_delete = std::iter::once(assign_key.to_owned())
            .chain(result_key)
            .collect();
        let now = self.clock.now();
        let effects = self.core.handle(
            Input::Observed {
                event,
                duration_ms: Some(result.duration_ms),
            },
            now,
            &mut self.log,
        )?;
        self.carry_out(effects)
    }

    fn on_report(&mut self, key: String, report: Report) -> anyhow::Result<()> {
        let event = match report.event.into_event() {
            Ok(e) => e,
            Err(e) => {
                warn!(key = %key, error = %format!("{e:#}"), "report not understood");
                return self.log.write(Vec::new(), vec![key], None);
            }
        };
        let now = self.clock.now();
        if let Event::NodeUp { node } = &event {
            // The node stopped everything on its own (it could not renew its lease in time,
            // then could): what was assigned to it will not run; it is probed again.
            warn!(node = %node, "the node stopped its resources on its own; probing it again");
            self.lose_actions_of(node, now)?;
            let prefix = self.shared.etcd.key(&format!("{}{node}/", keys::ASSIGN));
            self.delete_prefix(prefix)?;
        }
        self.log.also_delete = vec![key];
        let effects = self.core.handle(
            Input::Observed {
                event,
                duration_ms: report.duration_ms,
            },
            now,
            &mut self.log,
        )?;
        self.carry_out(effects)
    }

    fn on_member(&mut self, node: String, incarnation: Option<i64>) -> anyhow::Result<()> {
        let config = self.core.config().clone();
        if config.node_index(&node).is_none() {
            if incarnation.is_some() {
                warn!(node = %node, "a member that is not in the configuration; ignored");
            }
            return Ok(());
        }
        let now = self.clock.now();
        let online = self.core.state().nodes.get(&node).is_some_and(|n| n.online);
        match incarnation {
            Some(inc) => {
                self.members.insert(node.clone(), inc);
                if online && self.seen.get(&node) == Some(&inc) {
                    return Ok(());
                }
                // A new incarnation: whatever ran there is probed again.
                self.lose_actions_of(&node, now)?;
                self.log.also_put = vec![(
                    self.shared.etcd.key(&format!("{}/{node}", keys::SEEN)),
                    inc.to_string().into_bytes(),
                )];
                let effects = self.core.handle(
                    Input::Observed {
                        event: Event::NodeUp { node: node.clone() },
                        duration_ms: None,
                    },
                    now,
                    &mut self.log,
                )?;
                self.seen.insert(node, inc);
                self.carry_out(effects)
            }
            None => {
                self.members.remove(&node);
                if !online {
                    return Ok(());
                }
                self.lose_actions_of(&node, now)?;
                let effects = self.core.handle(
                    Input::Observed {
                        event: Event::NodeDown { node: node.clone() },
                        duration_ms: None,
                    },
                    now,
                    &mut self.log,
                )?;
                self.carry_out(effects)?;
                // Its assignments will never run (a new incarnation reads none).
                let prefix = self.shared.etcd.key(&format!("{}{node}/", keys::ASSIGN));
                self.delete_prefix(prefix)
            }
        }
    }

    /// The actions in flight on `node` will never report.
    fn lose_actions_of(&mut self, node: &str, now: Time) -> anyhow::Result<()> {
        let lost: Vec<u64> = self
            .assigned
            .iter()
            .filter(|(_, a)| a.node == node)
            .map(|(n, _)| *n)
            .collect();
        for n in lost {
            if let Some(a) = self.assigned.remove(&n) {
                let effects =
                    self.core
                        .handle(Input::ActionLost { id: a.id }, now, &mut self.log)?;
                self.carry_out(effects)?;
            }
        }
        let prefix = self.shared.etcd.key(&format!("{}{node}/", keys::ASSIGN));
        self.old.retain(|k, _| !k.starts_with(&prefix));
        Ok(())
    }

    fn delete_prefix(&self, prefix: String) -> anyhow::Result<()> {
        let etcd = Arc::clone(&self.shared.etcd);
        let r = self.shared.rt.block_on(async move {
            etcd.once("delete", etcd.timing.request, |mut c| async move {
                c.delete(
                    prefix,
                    Some(etcd_client::DeleteOptions::new().with_prefix()),
                )
                .await
            })
            .await
        });
        if let Err(e) = r {
            warn!(error = %e, "cannot delete a lost node's assignments");
        }
        Ok(())
    }

    fn on_request(&mut self, key: String, event: WireEvent) -> anyhow::Result<()> {
        let reply_key = key.replacen(
            &format!("/{}", keys::REQUEST),
            &format!("/{}", keys::REPLY),
            1,
        );
        let now = self.clock.now();
        let reply = |r: Result<(), ControlError>| -> Vec<u8> {
            let reply = match r {
                Ok(()) => Reply {
                    error: None,
                    field: None,
                    kind: None,
                },
                Err(e) => Reply {
                    error: Some(e.to_string()),
                    field: e.field().map(str::to_owned),
                    kind: Some(format!("{:?}", e.kind())),
                },
            };
            serde_json::to_vec(&reply).unwrap_or_default()
        };
        let result = match event.into_event() {
            Ok(Event::Admin(cmd)) => {
                self.log.also_delete = vec![key.clone()];
                self.log.also_put = vec![(reply_key.clone(), reply(Ok(())))];
                self.core.admin(cmd, now, &mut self.log)
            }
            Ok(Event::PromotionScore {
                resource,
                node,
                score,
            }) => {
                self.log.also_delete = vec![key.clone()];
                self.log.also_put = vec![(reply_key.clone(), reply(Ok(())))];
                self.core
                    .promotion_score(resource, node, score, now, &mut self.log)
            }
            Ok(Event::NodeShutdown { node }) => {
                self.log.also_delete = vec![key.clone()];
                self.log.also_put = vec![(reply_key.clone(), reply(Ok(())))];
                self.core
                    .handle(
                        Input::Observed {
                            event: Event::NodeShutdown { node },
                            duration_ms: None,
                        },
                        now,
                        &mut self.log,
                    )
                    .map_err(|e| ControlError::Store(format!("{e:#}")))
            }
            Ok(_) | Err(_) => Err(ControlError::Config("not a command".to_owned())),
        };
        match result {
            Ok(effects) => {
                self.flush_pending()?;
                self.carry_out(effects)
            }
            Err(ControlError::Store(e)) => Err(anyhow::anyhow!(e)),
            Err(e) => {
                self.log.also_delete.clear();
                self.log.also_put.clear();
                self.log
                    .write(vec![(reply_key, reply(Err(e)))], vec![key], None)
            }
        }
    }

    /// Writes what an append was to carry along when nothing was appended.
    fn flush_pending(&mut self) -> anyhow::Result<()> {
        if self.log.also_delete.is_empty() && self.log.also_put.is_empty() {
            return Ok(());
        }
        let puts = std::mem::take(&mut self.log.also_put);
        let deletes = std::mem::take(&mut self.log.also_delete);
        self.log.write(puts, deletes, None)
    }

    /// The core's effects: actions become assignments (in one transaction per batch), fence
    /// devices run here, definitions are stored.
    fn carry_out(&mut self, effects: Vec<Effect>) -> anyhow::Result<()> {
        self.flush_pending()?;
        let mut puts = Vec::new();
        for e in effects {
            match e {
                Effect::Run {
                    id,
                    node,
                    spec,
                    op,
                    notification,
                    migration,
                } => {
                    self.next_n += 1;
                    let n = self.next_n;
                    let key = self.shared.etcd.key(&format!(
                        "{}{node}/{:020}-{n:010}",
                        keys::ASSIGN,
                        self.log.epoch
                    ));
                    let a = Assignment {
                        resource: spec.id.clone(),
                        op: op.to_string(),
                        digest: format_digest(spec.digest()),
                        restart_digest: format_digest(spec.restart_digest()),
                        agent_digest: format_digest(spec.agent_digest()),
                        definition: WireDefinition::from_spec(&spec),
                        notification: notification.as_ref().map(WireNotification::from),
                        migration,
                    };
                    debug!(node = %node, resource = %spec.id, op = %op, "assigned");
                    puts.push((key, serde_json::to_vec(&a)?));
                    self.assigned.insert(n, Assigned { id, node });
                }
                Effect::Fence {
                    id,
                    node,
                    devices,
                    unfence,
                } => {
                    let tx = self.tx.clone();
                    self.shared.rt.spawn(async move {
                        let ok = crate::exec::executor::fence(&node, &devices, unfence).await;
                        let _ = tx.send(In::Fenced { id, ok });
                    });
                }
                Effect::SaveDefinitions(defs) => {
                    let defs: Vec<WireDefinition> =
                        defs.iter().map(WireDefinition::from_spec).collect();
                    puts.push((
                        self.shared.etcd.key(keys::DEFINITIONS),
                        serde_json::to_vec(&defs)?,
                    ));
                }
                // Node agents run their own monitors.
                Effect::Monitor { .. } | Effect::Health { .. } => {}
            }
        }
        for chunk in puts.chunks(100) {
            self.log.write(chunk.to_vec(), Vec::new(), None)?;
        }
        if self.log.log_len() >= crate::store::SNAPSHOT_EVERY {
            let now = self.clock.now();
            self.log.snapshot(self.core.state(), now)?;
        }
        Ok(())
    }
}

/// An admin command recorded in the cluster's log by the coordinator on behalf of any node.
pub fn admin_event(cmd: AdminCommand) -> WireEvent {
    WireEvent::from_event(&Event::Admin(cmd))
}
