//! `warden run` on a node of a cluster: the configuration from etcd, the membership lease,
//! the node's agent, the campaign for coordinator, a replica of the cluster's state for
//! status (from any node), and the API, whose commands go to the coordinator through etcd.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use etcd_client::{Compare, CompareOp, EventType, Txn, TxnOp, WatchOptions};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{error, info, warn};
use warden_engine::{ApplyError, Config, Event, State, Time};

use super::EtcdSettings;
use super::agent::Agent;
use super::coordinator::{Reply, Shared};
use super::etcd::{Etcd, reason};
use super::log::{Snapshot, keys, replay};
use super::session::Lease;
use super::wire::Member;
use crate::control::{Control, ControlError, Request, StatusView};
use crate::daemon::Options;
use crate::exec::executor::Executor;
use crate::store::HistoryEntry;
use crate::wire::WireEvent;

/// Reads the configuration stored in etcd; stores `local` first when none is (the first
/// node of a new cluster).
async fn stored_config(etcd: &Etcd, local: &str, path: &Path) -> anyhow::Result<(String, i64)> {
    let key = etcd.key(keys::CONFIG);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match etcd.get(&key, deadline).await {
            Ok(Some(kv)) => {
                let text = String::from_utf8(kv.value().to_vec())
                    .context("the configuration stored in etcd is not UTF-8")?;
                return Ok((text, kv.mod_revision()));
            }
            Ok(None) => {
                let txn = Txn::new()
                    .when(vec![Compare::create_revision(
                        key.clone(),
                        CompareOp::Equal,
                        0,
                    )])
                    .and_then(vec![TxnOp::put(
                        key.clone(),
                        local.as_bytes().to_vec(),
                        None,
                    )]);
                if let Ok(r) = etcd.txn(txn).await {
                    if r.succeeded() {
                        info!(file = %path.display(), "no configuration in etcd yet: stored this node's file (change it with `warden config push FILE`)");
                    }
                }
            }
            Err(e) if Instant::now() >= deadline => {
                bail!("cannot read the configuration from etcd: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// `warden config push FILE`: checks the file and stores it for every node.
pub async fn push_config(settings: &EtcdSettings, text: &str) -> anyhow::Result<i64> {
    let etcd = Etcd::new(settings)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let key = etcd.key(keys::CONFIG);
    let r = etcd
        .retry("put", deadline, |mut c| {
            let (key, text) = (key.clone(), text.to_owned());
            async move { c.put(key, text, None).await }
        })
        .await
        .map_err(|e| anyhow::anyhow!("cannot store the configuration: {e}"))?;
    Ok(r.header().map_or(0, |h| h.revision()))
}

/// The cluster's configuration as this node runs it: the cluster's text, with this node's
/// own settings (data dir, API, etcd) from its local file.
fn parse_cluster_config(text: &str, rev: i64) -> anyhow::Result<crate::config::Loaded> {
    let file = format!("etcd:config@{rev}");
    let loaded = crate::config::parse(text, &file, crate::config::local_node_name)?;
    crate::config::prepare(&loaded, &file)?;
    Ok(loaded)
}

/// What status reads: the state as the log says, kept up to date from a watch.
#[derive(Debug, Default)]
struct Replica {
    state: State,
    last_seq: u64,
    /// Assignments outstanding (a transition runs while there are).
    assignments: usize,
    coordinator: Option<String>,
    history: Vec<HistoryEntry>,
    /// Since when the replica has had no watch on etcd (None: it follows it).
    disconnected_since: Option<Time>,
}

/// Runs a node of a cluster until it is stopped.
pub async fn run(
    opts: Options,
    local: crate::config::Loaded,
    settings: EtcdSettings,
) -> anyhow::Result<()> {
    let etcd = Arc::new(Etcd::new(&settings)?);
    let local_text = std::fs::read_to_string(&opts.config_path)?;
    let (text, rev) = stored_config(&etcd, &local_text, &opts.config_path).await?;
    if text != local_text {
        warn!(file = %opts.config_path.display(), revision = rev, "this node's file differs from the cluster's configuration in etcd; running the cluster's (`warden config push FILE` changes it)");
    }
    let cluster = parse_cluster_config(&text, rev)?;
    if !cluster.health_monitors.is_empty() {
        bail!(
            "health-check monitors (`monitor = {{ http = ... }}`) run on one machine only for now; the cluster's configuration uses them"
        );
    }
    let engine = Arc::new(crate::daemon::with_reloadable(cluster.engine, &opts.ocf_root).await);
    let node = match &opts.node {
        Some(n) if engine.node_index(n).is_some() => n.clone(),
        Some(n) => bail!(
            "--node {n:?} is not in the cluster's configuration (nodes: {})",
            engine.nodes().join(", ")
        ),
        None => {
            let host = crate::config::local_node_name();
            if engine.node_index(&host).is_none() {
                bail!(
                    "this cluster has nodes {}: say which one this is with --node",
                    engine.nodes().join(", ")
                );
            }
            host
        }
    };
    let data_dir = crate::daemon::data_dir(&opts.config_path, &local.data_dir);
    crate::daemon::private_dir(&data_dir)?;
    let token = crate::daemon::ensure_token(&data_dir)?;
    let (listener, api_addr, api_tls) = crate::daemon::bind_api(&local.api, &data_dir).await?;
    let (exit_tx, exit_rx) = mpsc::unbounded_channel();
    let supervisor = crate::daemon::supervisor(&data_dir, exit_tx)?;
    let agent_env = crate::exec::executor::AgentEnv::new(api_addr, api_tls.as_ref(), &token, &node);
    let executor = Executor {
        ocf_root: Arc::new(opts.ocf_root.clone()),
        supervisor,
        node: node.clone(),
        agent_env,
        copy_number: engine.node_index(&node).unwrap_or(0),
    };
    // Health checks and the failover proxy run on every node; an upstream that follows a
    // resource takes its primary from the replica of the cluster's state.
    let checker = crate::check::runner::Checker::start(cluster.upstreams.clone());
    let proxy_stats = crate::proxy::stats::Registry::default();
    let mut listeners = HashMap::new();
    for l in &cluster.listeners {
        let running = crate::daemon::start_listener(l, &data_dir, &checker, &proxy_stats)?;
        listeners.insert(l.name.clone(), running);
    }
    let (control, control_rx) = Control::new(checker.clone(), proxy_stats.clone());
    let api_task = tokio::spawn(crate::api::serve(
        listener,
        control.clone(),
        token,
        local.api.clone(),
        api_tls,
    ));

    let (config_tx, config_rx) = watch::channel(Arc::clone(&engine));
    let (lease_tx, lease_rx) = watch::channel::<Option<Lease>>(None);
    let member = Member {
        api: api_addr.to_string(),
        pid: std::process::id(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    let member_key = etcd.key(&format!("{}{node}", keys::MEMBERS));
    let session = tokio::spawn(super::session::run(
        Arc::clone(&etcd),
        member_key,
        serde_json::to_vec(&member)?,
        lease_tx,
    ));
    let health_task = tokio::spawn(super::health::run(
        Arc::clone(&etcd),
        node.clone(),
        control.clone(),
        lease_rx.clone(),
        Arc::clone(control.elsewhere()),
    ));
    let (agent, local_count) = Agent::new(
        Arc::clone(&etcd),
        node.clone(),
        executor,
        config_rx.clone(),
        lease_rx.clone(),
    );
    let agent_task = tokio::spawn(agent.run(exit_rx));
    let shared = Shared {
        etcd: Arc::clone(&etcd),
        node: node.clone(),
        config: config_rx.clone(),
        lease: lease_rx.clone(),
        rt: tokio::runtime::Handle::current(),
        stop: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        running: Arc::new(std::sync::atomic::AtomicBool::new(false)),
    };
    let (stop, coordinating) = (Arc::clone(&shared.stop), Arc::clone(&shared.running));
    let campaign = tokio::spawn(super::coordinator::campaign(shared));
    let replica = Arc::new(std::sync::Mutex::new(Replica::default()));
    let changed = Arc::new(tokio::sync::Notify::new());
    let replica_task = tokio::spawn(follow(
        Arc::clone(&etcd),
        config_rx.clone(),
        Arc::clone(&replica),
        Arc::clone(&changed),
    ));
    let (serving_tx, serving_rx) = mpsc::unbounded_channel();
    let serving = Serving {
        checker: checker.clone(),
        listeners,
        proxy_stats,
        data_dir: data_dir.clone(),
        follows: cluster.follows.clone(),
    };
    let follow_task =
        tokio::spawn(serving.run(serving_rx, Arc::clone(&replica), changed, config_rx.clone()));
    let config_task = tokio::spawn(follow_config(
        Arc::clone(&etcd),
        rev,
        config_tx,
        serving_tx,
        opts.ocf_root.clone(),
    ));
    info!(cluster = %engine.cluster.name, node = %node, data_dir = %data_dir.display(), api = %api_addr, endpoints = settings.endpoints.len(), lease_ttl_s = settings.lease_ttl.as_secs(), "warden started (cluster on etcd)");

    let n = Shell {
        etcd: Arc::clone(&etcd),
        node: node.clone(),
        config: config_rx,
        replica,
        lease: lease_rx,
    };
    n.serve(control_rx, local_count).await;
    info!("stopping: this node's resources stop first");
    api_task.abort();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let until = Instant::now() + Duration::from_secs(2);
    while coordinating.load(std::sync::atomic::Ordering::SeqCst) && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    campaign.abort();
    health_task.abort();
    replica_task.abort();
    follow_task.abort();
    config_task.abort();
    agent_task.abort();
    session.abort();
    // Give the lease back so the others see this node leave at once.
    if let Some(l) = *n.lease.borrow() {
        let _ = etcd
            .once("lease revoke", etcd.timing.request, |mut c| async move {
                c.lease_revoke(l.id).await
            })
            .await;
    }
    info!("warden stopped");
    Ok(())
}

/// Keeps the configuration channel on what etcd holds.
async fn follow_config(
    etcd: Arc<Etcd>,
    mut rev: i64,
    tx: watch::Sender<Arc<Config>>,
    serving: mpsc::UnboundedSender<crate::config::Loaded>,
    ocf_root: std::path::PathBuf,
) {
    let key = etcd.key(keys::CONFIG);
    loop {
        let Ok((i, mut c)) = etcd.client().await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let opts = WatchOptions::new().with_start_revision(rev + 1);
        let mut stream =
            match tokio::time::timeout(etcd.timing.request, c.watch(key.clone(), Some(opts))).await
            {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    etcd.failed(i, format!("watch: {}", reason(&e)));
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                Err(_) => {
                    etcd.failed(i, "watch: request timed out".to_owned());
                    continue;
                }
            };
        while let Ok(Some(resp)) = stream.message().await {
            if resp.canceled() || resp.compact_revision() > 0 {
                // Read it again from the current revision.
                if let Ok(Some(kv)) = etcd.get(&key, Instant::now() + etcd.timing.ttl).await {
                    rev = kv.mod_revision() - 1;
                }
                break;
            }
            for ev in resp.events() {
                let (Some(kv), EventType::Put) = (ev.kv(), ev.event_type()) else {
                    continue;
                };
                rev = kv.mod_revision();
                let text = String::from_utf8_lossy(kv.value()).into_owned();
                match parse_cluster_config(&text, rev) {
                    Ok(l) if l.health_monitors.is_empty() => {
                        let engine =
                            crate::daemon::with_reloadable(l.engine.clone(), &ocf_root).await;
                        info!(revision = rev, "the cluster's configuration changed");
                        let _ = tx.send(Arc::new(engine));
                        let _ = serving.send(l);
                    }
                    Ok(_) => error!(
                        revision = rev,
                        "the configuration pushed to etcd uses health-check monitors, which run on one machine only for now; still running the previous one"
                    ),
                    Err(e) => {
                        error!(revision = rev, error = %format!("{e:#}"), "the configuration pushed to etcd has errors; still running the previous one")
                    }
                }
            }
        }
    }
}

/// Keeps the replica on the log (and notes assignments and the coordinator).
async fn follow(
    etcd: Arc<Etcd>,
    config: watch::Receiver<Arc<Config>>,
    replica: Arc<std::sync::Mutex<Replica>>,
    changed: Arc<tokio::sync::Notify>,
) {
    let log_prefix = etcd.key(keys::LOG);
    let assign_prefix = etcd.key(keys::ASSIGN);
    let election = etcd.key(keys::ELECTION);
    loop {
        if let Ok(mut g) = replica.lock() {
            g.disconnected_since
                .get_or_insert_with(crate::wire::wall_clock);
        }
        let deadline = Instant::now() + etcd.timing.ttl;
        let (kvs, rev) = match etcd.get_prefix(&etcd.prefix, deadline).await {
            Ok(v) => v,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let cfg = config.borrow().clone();
        {
            let mut r = Replica::default();
            let snap = kvs
                .iter()
                .find(|kv| kv.key() == etcd.key(keys::SNAPSHOT).as_bytes());
            let mut from = 0;
            if let Some(s) = snap.and_then(|kv| serde_json::from_slice::<Snapshot>(kv.value()).ok())
            {
                from = s.seq;
                if let Ok((state, _)) = s.state.into_state() {
                    r.state = state;
                }
            }
            let log: Vec<_> = kvs
                .iter()
                .filter(|kv| kv.key().starts_with(log_prefix.as_bytes()))
                .cloned()
                .collect();
            let mut skipped = Vec::new();
            r.last_seq = replay(&cfg, &mut r.state, &log, from, &mut skipped);
            r.assignments = kvs
                .iter()
                .filter(|kv| kv.key().starts_with(assign_prefix.as_bytes()))
                .count();
            r.coordinator = kvs
                .iter()
                .filter(|kv| kv.key().starts_with(election.as_bytes()))
                .min_by_key(|kv| kv.create_revision())
                .map(|kv| String::from_utf8_lossy(kv.value()).into_owned());
            if let Ok(mut g) = replica.lock() {
                *g = r;
            }
            changed.notify_one();
        }
        let Ok((i, mut c)) = etcd.client().await else {
            continue;
        };
        let opts = WatchOptions::new()
            .with_prefix()
            .with_start_revision(rev + 1);
        let mut stream = match tokio::time::timeout(
            etcd.timing.request,
            c.watch(format!("{}/", etcd.prefix), Some(opts)),
        )
        .await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                etcd.failed(i, format!("watch: {}", reason(&e)));
                continue;
            }
            Err(_) => {
                etcd.failed(i, "watch: request timed out".to_owned());
                continue;
            }
        };
        let mut assignments: HashMap<Vec<u8>, ()> = HashMap::new();
        for kv in kvs
            .iter()
            .filter(|kv| kv.key().starts_with(assign_prefix.as_bytes()))
        {
            assignments.insert(kv.key().to_vec(), ());
        }
        let mut leaders: Vec<(i64, String, Vec<u8>)> = kvs
            .iter()
            .filter(|kv| kv.key().starts_with(election.as_bytes()))
            .map(|kv| {
                (
                    kv.create_revision(),
                    String::from_utf8_lossy(kv.value()).into_owned(),
                    kv.key().to_vec(),
                )
            })
            .collect();
        loop {
            let resp = match stream.message().await {
                Ok(Some(r)) => r,
                _ => break,
            };
            if resp.canceled() || resp.compact_revision() > 0 {
                break;
            }
            let cfg = config.borrow().clone();
            let Ok(mut g) = replica.lock() else { return };
            for ev in resp.events() {
                let Some(kv) = ev.kv() else { continue };
                let put = ev.event_type() == EventType::Put;
                let key = kv.key();
                if key.starts_with(log_prefix.as_bytes()) && put {
                    let mut skipped = Vec::new();
                    let before = g.last_seq;
                    let last = replay(
                        &cfg,
                        &mut g.state,
                        std::slice::from_ref(kv),
                        before,
                        &mut skipped,
                    );
                    g.last_seq = last;
                    if let Ok(rec) = serde_json::from_slice::<crate::store::LogRecord>(kv.value()) {
                        if let WireEvent::OpResult {
                            resource,
                            node,
                            op,
                            rc,
                            exit_reason,
                            ..
                        } = rec.event
                        {
                            g.history.push(HistoryEntry {
                                seq: last,
                                time_ms: rec.time_ms,
                                resource,
                                node,
                                op,
                                rc,
                                exit_reason,
                                duration_ms: 0,
                            });
                            let len = g.history.len();
                            if len > 1000 {
                                g.history.drain(..len - 1000);
                            }
                        }
                    }
                } else if key.starts_with(assign_prefix.as_bytes()) {
                    if put {
                        assignments.insert(key.to_vec(), ());
                    } else {
                        assignments.remove(key);
                    }
                    g.assignments = assignments.len();
                } else if key.starts_with(election.as_bytes()) {
                    if put {
                        leaders.push((
                            kv.create_revision(),
                            String::from_utf8_lossy(kv.value()).into_owned(),
                            key.to_vec(),
                        ));
                    } else {
                        leaders.retain(|l| l.2 != key);
                    }
                    g.coordinator = leaders.iter().min_by_key(|l| l.0).map(|l| l.1.clone());
                }
            }
            drop(g);
            changed.notify_one();
        }
    }
}

struct Shell {
    etcd: Arc<Etcd>,
    node: String,
    config: watch::Receiver<Arc<Config>>,
    replica: Arc<std::sync::Mutex<Replica>>,
    lease: watch::Receiver<Option<Lease>>,
}

impl Shell {
    fn now(&self) -> Time {
        crate::wire::wall_clock()
    }

    /// Answers the API until asked to stop (SIGTERM, SIGINT, `warden shutdown`); then asks
    /// the coordinator to stop this node's resources and waits until none runs here (or the
    /// lease is gone, after the agent stopped them itself).
    async fn serve(
        &self,
        mut control: mpsc::UnboundedReceiver<Request>,
        mut local: watch::Receiver<usize>,
    ) {
        let (Ok(mut sigterm), Ok(mut sigint), Ok(mut sigquit), Ok(mut sighup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::quit()),
            signal(SignalKind::hangup()),
        ) else {
            error!("cannot handle signals");
            return;
        };
        let mut stopping: Option<Instant> = None;
        loop {
            if let Some(since) = stopping {
                let none_here = *local.borrow() == 0;
                let no_lease = !self.lease.borrow().is_some_and(|l| l.valid());
                if none_here || no_lease || since.elapsed() > Duration::from_secs(300) {
                    return;
                }
            }
            tokio::select! {
                Some(req) = control.recv() => {
                    if let Some(true) = self.answer(req).await {
                        if stopping.is_none() {
                            stopping = Some(Instant::now());
                            self.ask_shutdown().await;
                        }
                    }
                }
                _ = sigterm.recv() => { if stopping.is_none() { stopping = Some(Instant::now()); self.ask_shutdown().await; } }
                _ = sigint.recv() => { if stopping.is_none() { stopping = Some(Instant::now()); self.ask_shutdown().await; } }
                _ = sigquit.recv() => {
                    warn!("SIGQUIT: in a cluster, resources cannot be left running (the other nodes take over once this node's lease expires); stopping them");
                    if stopping.is_none() { stopping = Some(Instant::now()); self.ask_shutdown().await; }
                }
                // `systemctl reload` (ExecReload) and logrotate: the log output is opened again;
                // a cluster's configuration lives in etcd and changes with `warden config push`.
                _ = sighup.recv() => {
                    crate::daemon::reopen_log();
                    info!("SIGHUP: in a cluster the configuration changes with `warden config push FILE` (every node applies it)");
                }
                _ = local.changed() => {}
                _ = tokio::time::sleep(Duration::from_millis(200)), if stopping.is_some() => {}
            }
        }
    }

    async fn ask_shutdown(&self) {
        info!("asking the coordinator to move this node's resources away");
        let ev = WireEvent::from_event(&Event::NodeShutdown {
            node: self.node.clone(),
        });
        if let Err(e) = self.request(ev).await {
            warn!(error = %e, "the coordinator did not take the shutdown; the agent stops what runs here when its lease ends");
        }
    }

    /// Answers one request; Some(true) when it asks to stop.
    async fn answer(&self, req: Request) -> Option<bool> {
        match req {
            Request::Status { reply } => {
                let _ = reply.send(self.view());
            }
            Request::Admin { cmd, reply } => {
                // Checked against the replica first, for a precise refusal.
                let view = self.view();
                let mut probe = view.state.clone();
                if let Err(e) = warden_engine::apply(
                    &view.config,
                    &mut probe,
                    &Event::Admin(cmd.clone()),
                    view.now,
                ) {
                    let _ = reply.send(Err(ControlError::Apply(e)));
                    return None;
                }
                let r = self.request(super::coordinator::admin_event(cmd)).await;
                let _ = reply.send(r);
            }
            Request::PromotionScore {
                resource,
                node,
                score,
                reply,
            } => {
                let config = self.config.borrow().clone();
                let r = match config.resource(&resource) {
                    None => Err(ControlError::Apply(ApplyError::UnknownResource(resource))),
                    Some(s) if !s.is_promotable() => Err(ControlError::NotPromotable(resource)),
                    Some(_) => {
                        let ev = WireEvent::from_event(&Event::PromotionScore {
                            resource,
                            node,
                            score,
                        });
                        self.request(ev).await
                    }
                };
                let _ = reply.send(r);
            }
            Request::History {
                resource,
                limit,
                reply,
            } => {
                let config = self.config.borrow().clone();
                let r = match resource.as_deref() {
                    Some(r) if config.resource(r).is_none() => {
                        Err(ApplyError::UnknownResource(r.to_owned()).into())
                    }
                    _ => {
                        let g = self
                            .replica
                            .lock()
                            .map(|g| g.history.clone())
                            .unwrap_or_default();
                        let mut h: Vec<HistoryEntry> = g
                            .into_iter()
                            .filter(|e| resource.as_deref().is_none_or(|r| e.resource == r))
                            .collect();
                        let len = h.len();
                        if len > limit {
                            h.drain(..len - limit);
                        }
                        Ok(h)
                    }
                };
                let _ = reply.send(r);
            }
            Request::Reload { reply } => {
                let _ = reply.send(Err(ControlError::Config(
                    "in a cluster the configuration lives in etcd: `warden config push FILE` changes it on every node".to_owned(),
                )));
            }
            Request::Shutdown {
                leave_running,
                reply,
            } => {
                if leave_running {
                    warn!(
                        "in a cluster, resources cannot be left running (the other nodes take over once this node's lease expires); stopping them"
                    );
                }
                let _ = reply.send(Ok(()));
                return Some(true);
            }
        }
        None
    }

    fn view(&self) -> StatusView {
        let config = self.config.borrow().clone();
        let (state, running, coordinator, disconnected) = self
            .replica
            .lock()
            .map(|g| {
                (
                    g.state.clone(),
                    g.assignments > 0,
                    g.coordinator.clone(),
                    g.disconnected_since,
                )
            })
            .unwrap_or_default();
        let mut warnings = Vec::new();
        if let Some(t) = disconnected {
            warnings.push(format!(
                "etcd unreachable since {}: the cluster's state shown is as last seen",
                t.rfc3339()
            ));
        }
        let lease_valid = self.lease.borrow().is_some_and(|l| l.valid());
        if !lease_valid {
            warnings.push(
                "this node holds no valid etcd lease: it runs nothing until it joins again"
                    .to_owned(),
            );
        }
        StatusView {
            config,
            state,
            now: self.now(),
            node: self.node.clone(),
            transition_running: running,
            next_wakeup: None,
            coordinator,
            warnings,
            cluster: Some(crate::control::ClusterLink {
                lease_valid,
                etcd_connected: disconnected.is_none(),
            }),
        }
    }

    /// Sends a command to the coordinator through etcd and waits for its reply.
    async fn request(&self, event: WireEvent) -> Result<(), ControlError> {
        let n = REQUESTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("{}-{}-{n}", self.node, std::process::id());
        let key = self.etcd.key(&format!("{}{id}", keys::REQUEST));
        let reply_key = self.etcd.key(&format!("{}{id}", keys::REPLY));
        let value = serde_json::to_vec(&event).map_err(|e| ControlError::Store(e.to_string()))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        self.etcd
            .put(&key, value, None, deadline)
            .await
            .map_err(|e| ControlError::Cluster(format!("cannot reach etcd: {e}")))?;
        loop {
            match self.etcd.get(&reply_key, deadline).await {
                Ok(Some(kv)) => {
                    let _ = self
                        .etcd
                        .once("delete", self.etcd.timing.request, |mut c| {
                            let k = reply_key.clone();
                            async move { c.delete(k, None).await }
                        })
                        .await;
                    let reply: Reply = serde_json::from_slice(kv.value()).map_err(|e| {
                        ControlError::Cluster(format!(
                            "the coordinator's reply is not understood: {e}"
                        ))
                    })?;
                    return match reply.error {
                        None => Ok(()),
                        Some(e) => Err(ControlError::Cluster(e)),
                    };
                }
                Ok(None) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Ok(None) => {
                    // Withdrawn, so a coordinator elected later does not act on it; one that
                    // took it meanwhile may still (the reply would have come).
                    let _ = self
                        .etcd
                        .once("delete", self.etcd.timing.request, |mut c| {
                            let k = key.clone();
                            async move { c.delete(k, None).await }
                        })
                        .await;
                    return Err(ControlError::Cluster(
                        "no coordinator answered within 10s (is a majority of etcd up, and a node elected?); the command was withdrawn".to_owned(),
                    ));
                }
                Err(e) => return Err(ControlError::Cluster(format!("cannot reach etcd: {e}"))),
            }
        }
    }
}

static REQUESTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// What a node serves besides resources: health-checked upstreams and proxy listeners, the
/// upstreams that follow a resource taking their primary from the replica.
struct Serving {
    checker: crate::check::runner::Checker,
    listeners: HashMap<String, crate::proxy::Running>,
    proxy_stats: crate::proxy::stats::Registry,
    data_dir: std::path::PathBuf,
    follows: Vec<crate::follow::Follow>,
}

impl Serving {
    async fn run(
        mut self,
        mut configs: mpsc::UnboundedReceiver<crate::config::Loaded>,
        replica: Arc<std::sync::Mutex<Replica>>,
        changed: Arc<tokio::sync::Notify>,
        config: watch::Receiver<Arc<Config>>,
    ) {
        loop {
            tokio::select! {
                Some(loaded) = configs.recv() => {
                    match crate::daemon::apply_serving(&self.checker, &mut self.listeners, &self.proxy_stats, &self.data_dir, &loaded) {
                        Ok((changes, follows)) => {
                            for c in &changes {
                                info!(change = %c, "configuration change");
                            }
                            self.follows = follows;
                        }
                        Err(e) => error!(error = %e, "the upstreams and listeners of the new configuration cannot be applied; kept as they were"),
                    }
                }
                _ = changed.notified() => {}
            }
            let config = config.borrow().clone();
            let Ok(state) = replica.lock().map(|g| g.state.clone()) else {
                return;
            };
            for f in &self.follows {
                self.checker
                    .set_primaries(&f.upstream, &f.primaries(&config, &state));
            }
        }
    }
}
