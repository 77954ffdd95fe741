//! `warden run`: the daemon. One loop over a closed set of inputs around the engine: every
//! event is recorded in the store, then applied; transitions run their actions concurrently as
//! their dependencies allow; recurring monitors run on their intervals; a process that exits is
//! a failed monitor at once; failure expiries wake the loop at their exact time.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};
use warden_engine::{
    Action, ActionKind, AdminCommand, Agent, Config, Event, Notification, OpKey, OpName, OpResult,
    OpSpec, ResourceSpec, Role, Score, State, Time, Transition, expected, rc, schedule,
};

use crate::control::{Control, ControlError, Request, StatusView};
use crate::exec::process::{Exited, Supervisor};
use crate::exec::{AgentResult, ocf, run_command};
use crate::store::{Entry, SNAPSHOT_EVERY, Store};

/// How `warden run` was asked to run.
#[derive(Clone, Debug)]
pub struct Options {
    pub config_path: PathBuf,
    /// This node's name (default: the only node of the configuration).
    pub node: Option<String>,
    pub ocf_root: PathBuf,
    /// On SIGTERM and SIGINT, leave resources running instead of stopping them (SIGQUIT and
    /// `warden shutdown --leave-running` decide so at stop time).
    pub leave_running: bool,
}

/// What the loop hears from the tasks it started (the control handle's requests come on a
/// channel of their own).
#[derive(Debug)]
enum Input {
    Action {
        id: usize,
        result: AgentResult,
        /// The definition digest of the spec it ran with.
        digest: u64,
    },
    Fence {
        id: usize,
        ok: bool,
    },
    Monitor {
        resource: String,
        interval_ms: u64,
        generation: u64,
        result: AgentResult,
    },
    /// A health check that serves as a resource's monitor finished.
    Health {
        resource: String,
        interval_ms: u64,
        generation: u64,
        result: Result<(), crate::check::CheckError>,
        took: Duration,
    },
}

/// The wall clock as the daemon sees it: wall time at start plus tokio's monotonic time since,
/// so timing tests can pause it and a wall clock jump never fires expiries early.
#[derive(Clone, Copy, Debug)]
struct Clock {
    wall0: Time,
    mono0: Instant,
}

impl Clock {
    fn new() -> Clock {
        Clock {
            wall0: crate::wire::wall_clock(),
            mono0: Instant::now(),
        }
    }
    fn now(&self) -> Time {
        self.wall0 + self.mono0.elapsed()
    }
    fn instant_of(&self, t: Time) -> Instant {
        Instant::now() + t.since(self.now())
    }
}

/// The state of an action within the running transition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Pending,
    InFlight,
    Done,
    Failed,
}

#[derive(Debug)]
struct Run {
    t: Transition,
    steps: Vec<Step>,
    aborted: bool,
    /// A fence action failed: the next transitions back off (they would fence again).
    fence_failed: bool,
}

#[derive(Debug)]
struct Slot {
    next_due: Instant,
    in_flight: bool,
}

/// The resolved data directory: relative paths are taken from the config file's folder.
pub fn data_dir(config_path: &Path, configured: &Path) -> PathBuf {
    if configured.is_absolute() {
        configured.to_owned()
    } else {
        config_path
            .parent()
            .unwrap_or(Path::new("."))
            .join(configured)
    }
}

/// The node this daemon is.
fn pick_node(config: &Config, wanted: Option<&str>) -> anyhow::Result<String> {
    let nodes = config.nodes();
    match wanted {
        Some(n) if nodes.iter().any(|x| x == n) => {}
        Some(n) => bail!(
            "--node {n:?} is not in the configuration (nodes: {})",
            nodes.join(", ")
        ),
        None => {}
    }
    if nodes.len() > 1 {
        bail!(
            "this configuration has {} nodes; running several nodes needs the etcd cluster backend, which is not built yet (run one node per configuration)",
            nodes.len()
        );
    }
    Ok(nodes[0].clone())
}

/// Reads the API token, creating it (mode 0600) when absent.
pub fn ensure_token(data_dir: &Path) -> anyhow::Result<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let path = data_dir.join("api.token");
    if let Ok(t) = std::fs::read_to_string(&path) {
        if !t.trim().is_empty() {
            return Ok(t.trim().to_owned());
        }
    }
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("cannot read /dev/urandom")?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    std::io::Write::write_all(&mut f, format!("{token}\n").as_bytes())?;
    Ok(token)
}

/// Binds a proxy listener, writes its address to `<data_dir>/listener-NAME.addr` and starts it.
fn start_listener(
    l: &crate::proxy::ListenerSpec,
    data_dir: &Path,
    checker: &crate::check::runner::Checker,
    stats: &crate::proxy::stats::Registry,
) -> anyhow::Result<crate::proxy::Running> {
    let sock = std::net::TcpListener::bind(l.listen)
        .with_context(|| format!("listener {}: cannot listen on {}", l.name, l.listen))?;
    serve_listener(l, sock, data_dir, checker, stats)
}

/// Starts a proxy listener on a bound socket and writes its address to
/// `<data_dir>/listener-NAME.addr`.
fn serve_listener(
    l: &crate::proxy::ListenerSpec,
    sock: std::net::TcpListener,
    data_dir: &Path,
    checker: &crate::check::runner::Checker,
    stats: &crate::proxy::stats::Registry,
) -> anyhow::Result<crate::proxy::Running> {
    sock.set_nonblocking(true)?;
    let bound = sock.local_addr()?;
    std::fs::write(
        data_dir.join(format!("listener-{}.addr", l.name)),
        format!("{bound}\n"),
    )
    .context("cannot write the listener address")?;
    info!(listener = %l.name, listen = %bound, upstream = %l.upstream, "proxy listening");
    Ok(crate::proxy::spawn(
        l.clone(),
        Arc::new(sock),
        checker.clone(),
        stats.of(&l.name),
    ))
}

/// Runs the daemon until SIGTERM/SIGINT (or a shutdown request).
pub async fn run(opts: Options) -> anyhow::Result<()> {
    let loaded = crate::config::load(&opts.config_path)?;
    let file_config = Arc::new(loaded.engine);
    let node = pick_node(&file_config, opts.node.as_deref())?;
    let data_dir = data_dir(&opts.config_path, &loaded.data_dir);
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create the data dir {}", data_dir.display()))?;
    let store = open_store(&data_dir.join("warden.redb")).await?;
    // What the store knows that the file lost or changed: orphans to stop, and the
    // definitions copies still run with (a stop uses the definition its copy started with).
    let (defs, bad) = store.definitions()?;
    for b in &bad {
        warn!(definition = %b, "stored definition skipped");
    }
    let stored: Vec<ResourceSpec> = defs
        .into_iter()
        .filter_map(|d| {
            d.into_orphan()
                .map_err(|e| warn!(error = %e, "stored definition skipped"))
                .ok()
        })
        .collect();
    let mut orphans: Vec<ResourceSpec> = Vec::new();
    for d in &stored {
        if file_config.resource(&d.id).is_none() && !orphans.iter().any(|o| o.id == d.id) {
            orphans.push(d.clone());
        }
    }
    let config = Arc::new(file_config.with_extra_resources(orphans.clone())?);
    let restored = store.load(&config)?;
    for s in &restored.skipped {
        warn!(entry = %s, "stored event no longer applies to the configuration; skipped");
    }
    // An orphan known stopped everywhere is forgotten; one that may run is probed and stopped.
    orphans.retain(|o| !stopped_everywhere(&restored.state, &o.id));
    for o in &orphans {
        warn!(resource = %o.id, "resource gone from the configuration may still run: it will be stopped");
    }
    let config = Arc::new(file_config.with_extra_resources(orphans.clone())?);
    let previous: HashMap<u64, ResourceSpec> =
        stored.into_iter().map(|d| (d.digest(), d)).collect();
    let token = ensure_token(&data_dir)?;
    let (tx, rx) = mpsc::unbounded_channel();
    let (exit_tx, exit_rx) = mpsc::unbounded_channel();
    let supervisor =
        Supervisor::new(&data_dir, exit_tx).context("cannot prepare the process supervisor")?;
    let listener = tokio::net::TcpListener::bind(loaded.api_listen)
        .await
        .with_context(|| format!("cannot listen on {}", loaded.api_listen))?;
    let api_addr = listener.local_addr()?;
    // With port 0 the kernel picks one: the CLI finds it here.
    std::fs::write(data_dir.join("api.addr"), format!("{api_addr}\n"))
        .context("cannot write api.addr")?;
    let checker = crate::check::runner::Checker::start(loaded.upstreams.clone());
    // Proxy listeners: taken over from a daemon that stops (so no connection is refused
    // meanwhile), else bound now, so a taken port stops the start with a clear error.
    let mut taken = match crate::handover::take(&data_dir, Duration::from_secs(5)) {
        Ok(t) => t,
        Err(e) => {
            warn!(error = %format!("{e:#}"), "the stopping daemon's listeners could not be taken over; binding anew");
            None
        }
    };
    let mut listeners = HashMap::new();
    let proxy_stats = crate::proxy::stats::Registry::default();
    for l in &loaded.listeners {
        let sock = taken
            .as_mut()
            .and_then(|t| t.take(&l.name, &l.listen.to_string()));
        let running = match sock {
            Some(sock) => {
                info!(listener = %l.name, listen = %l.listen, "listening socket taken over");
                serve_listener(l, sock, &data_dir, &checker, &proxy_stats)?
            }
            None => start_listener(l, &data_dir, &checker, &proxy_stats)?,
        };
        listeners.insert(l.name.clone(), running);
    }
    if let Some(t) = taken {
        t.accepting()
            .context("cannot tell the stopping daemon to stop accepting")?;
    }
    // What an agent needs to reach the daemon (`warden promotion-score`).
    let agent_env = Arc::new(vec![
        ("WARDEN_API".to_owned(), api_addr.to_string()),
        ("WARDEN_TOKEN".to_owned(), token.clone()),
        ("WARDEN_NODE".to_owned(), node.clone()),
        (
            "WARDEN_BIN".to_owned(),
            std::env::current_exe().map_or("warden".to_owned(), |p| p.display().to_string()),
        ),
    ]);
    let (control, control_rx) = Control::channel();
    let api_task = tokio::spawn(crate::api::serve(
        listener,
        control,
        token,
        checker.clone(),
        proxy_stats.clone(),
    ));
    info!(cluster = %config.cluster.name, node = %node, data_dir = %data_dir.display(), api = %api_addr, resources = config.resources().len(), upstreams = loaded.upstreams.len(), "warden started");

    let mut d = Daemon {
        config,
        file_config,
        orphans,
        previous,
        node: node.clone(),
        state: restored.state,
        store,
        clock: Clock::new(),
        supervisor,
        ocf_root: Arc::new(opts.ocf_root),
        agent_env,
        checker,
        follows: loaded.follows.clone(),
        listeners,
        proxy_stats,
        config_path: opts.config_path.clone(),
        data_dir: data_dir.clone(),
        tx,
        run: None,
        dirty: true,
        wakeup: None,
        monitors: HashMap::new(),
        generation: HashMap::new(),
        busy: HashMap::new(),
        last_monitor_rc: HashMap::new(),
        shutting_down: None,
        failed_fences: 0,
        hold_until: None,
        last_start: HashMap::new(),
        deferred_exits: Vec::new(),
        health: loaded
            .health_monitors
            .iter()
            .map(|h| {
                let key = (h.resource.clone(), warden_engine::millis(h.check.interval));
                let mon = HealthMon {
                    peer: h.peer.clone(),
                    check: h.check.clone(),
                    grace: h.grace,
                    health: Default::default(),
                    generation: 0,
                };
                (key, mon)
            })
            .collect(),
    };
    d.keep_definitions()?;
    // Joining (or rejoining after a restart): probe everything, adopt what runs.
    d.record(vec![(Event::NodeUp { node }, None)])?;
    d.main_loop(rx, control_rx, exit_rx, opts.leave_running)
        .await?;
    if d.shutting_down == Some(true) && !d.listeners.is_empty() {
        // Resources are left running for a successor: so are the listeners, until it takes
        // them. The API and the store are released first, so it can start.
        api_task.abort();
        let _ = api_task.await;
        let offer = crate::handover::Offer::bind(&data_dir)?;
        let listeners = std::mem::take(&mut d.listeners);
        let stats = d.proxy_stats.clone();
        drop(d);
        hand_over(offer, listeners, stats).await?;
    }
    info!("warden stopped");
    Ok(())
}

/// How long a daemon that leaves its resources running waits for a successor to take its
/// listening sockets, and how long it then serves the sessions it accepted.
const HANDOVER_WAIT: Duration = Duration::from_secs(60);
const HANDOVER_DRAIN: Duration = Duration::from_secs(10);

/// Offers the listening sockets to a successor; once it accepts on them, stops accepting and
/// serves the sessions already accepted until they end (at most [`HANDOVER_DRAIN`]).
/// SIGTERM or SIGINT end the wait.
async fn hand_over(
    offer: crate::handover::Offer,
    listeners: HashMap<String, crate::proxy::Running>,
    stats: crate::proxy::stats::Registry,
) -> anyhow::Result<()> {
    let sockets: Vec<_> = listeners
        .values()
        .map(|r| {
            (
                crate::handover::Offered {
                    name: r.spec.name.clone(),
                    listen: r.spec.listen.to_string(),
                },
                Arc::clone(&r.socket),
            )
        })
        .collect();
    info!(
        listeners = sockets.len(),
        wait_s = HANDOVER_WAIT.as_secs(),
        "waiting for a successor to take the listening sockets"
    );
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let taken = tokio::select! {
        r = offer.serve(&sockets, HANDOVER_WAIT) => r.unwrap_or_else(|e| {
            warn!(error = %format!("{e:#}"), "handover failed");
            false
        }),
        _ = sigterm.recv() => false,
        _ = sigint.recv() => false,
    };
    drop(sockets);
    drop(listeners);
    if !taken {
        info!("no successor took the listening sockets; they are closed");
        return Ok(());
    }
    info!("a successor accepts on the listening sockets; serving the sessions already open");
    let deadline = Instant::now() + HANDOVER_DRAIN;
    while stats.open_sessions() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Opens the store, waiting while a daemon that stops still holds it.
async fn open_store(path: &Path) -> anyhow::Result<Store> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match Store::open(path) {
            Err(e)
                if Instant::now() < deadline
                    && e.chain().any(|c| {
                        matches!(
                            c.downcast_ref::<redb::DatabaseError>(),
                            Some(redb::DatabaseError::DatabaseAlreadyOpen)
                        )
                    }) =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            r => return r,
        }
    }
}

/// Whether the state knows `resource` as stopped on every node it was ever seen on.
fn stopped_everywhere(state: &State, resource: &str) -> bool {
    state.resource(resource).is_some_and(|rs| {
        !rs.nodes.is_empty()
            && rs
                .nodes
                .values()
                .all(|on| on.role == Role::Stopped && !on.blocked)
    })
}

struct Daemon {
    /// What the engine schedules: the file's configuration and the orphans still to stop.
    config: Arc<Config>,
    /// The configuration file as last loaded.
    file_config: Arc<Config>,
    /// Resources gone from the file that may still run (stopped, then forgotten).
    orphans: Vec<ResourceSpec>,
    /// Definitions by digest that copies may still run with (from an earlier file): a stop
    /// or demote of such a copy runs with the definition it was started with.
    previous: HashMap<u64, ResourceSpec>,
    node: String,
    state: State,
    store: Store,
    clock: Clock,
    supervisor: Supervisor,
    ocf_root: Arc<PathBuf>,
    /// Environment variables every agent and promote/demote command gets.
    agent_env: Arc<Vec<(String, String)>>,
    /// The health of every upstream (the proxy routes by it).
    checker: crate::check::runner::Checker,
    /// Upstreams whose primary is where a resource is promoted (or runs).
    follows: Vec<crate::follow::Follow>,
    /// The proxy listeners, by name (a reload starts, stops and changes them).
    listeners: HashMap<String, crate::proxy::Running>,
    /// Their counters, by name (kept across a reload that changes a listener).
    proxy_stats: crate::proxy::stats::Registry,
    config_path: PathBuf,
    data_dir: PathBuf,
    tx: mpsc::UnboundedSender<Input>,
    run: Option<Run>,
    /// Something changed: schedule again once no transition runs.
    dirty: bool,
    wakeup: Option<Time>,
    monitors: HashMap<(String, u64), Slot>,
    /// Bumped by every start and stop of a resource: older monitor results are stale.
    generation: HashMap<String, u64>,
    /// Actions in flight per resource.
    busy: HashMap<String, usize>,
    /// The last recorded rc of each recurring monitor (unchanged successes are not recorded).
    last_monitor_rc: HashMap<(String, u64), i32>,
    /// Stopping: Some(true) leaves the resources running, Some(false) stops them first.
    shutting_down: Option<bool>,
    /// Transitions in a row whose fencing failed: scheduling backs off after two, as
    /// every transition would fence again. (A crash loop delays only its own resource: the
    /// engine's `crash_loop_delay_max`.)
    failed_fences: u32,
    hold_until: Option<Instant>,
    /// When each resource last started here (a health-check monitor's start grace).
    last_start: HashMap<String, Instant>,
    /// Exits of processes whose start had not been applied yet: handled once it is.
    deferred_exits: Vec<Exited>,
    /// Health checks serving as recurring monitors, by (resource, interval).
    health: HashMap<(String, u64), HealthMon>,
}

/// A resource's health-check monitor and its hysteresis (reset by every start and stop).
#[derive(Debug)]
struct HealthMon {
    peer: crate::check::Peer,
    check: crate::check::CheckSpec,
    grace: Duration,
    health: warden_engine::health::PeerHealth,
    generation: u64,
}

impl Daemon {
    async fn main_loop(
        &mut self,
        mut rx: mpsc::UnboundedReceiver<Input>,
        mut control: mpsc::UnboundedReceiver<Request>,
        mut exits: mpsc::UnboundedReceiver<Exited>,
        leave_running_default: bool,
    ) -> anyhow::Result<()> {
        let mut sigterm = signal(SignalKind::terminate())?;
        let mut sigint = signal(SignalKind::interrupt())?;
        let mut sigquit = signal(SignalKind::quit())?;
        let mut sighup = signal(SignalKind::hangup())?;
        loop {
            let held = self.hold_until.is_some_and(|h| Instant::now() < h);
            if self.run.is_none() && (!held || self.shutting_down.is_some()) {
                self.hold_until = None;
                self.forget_stopped_orphans()?;
                if self.shutting_down == Some(true) {
                    break;
                }
                if self.dirty {
                    self.dirty = false;
                    let now = self.clock.now();
                    let t = schedule(&self.config, &self.state, now);
                    self.wakeup = t.wakeup;
                    if !t.is_empty() {
                        self.start_run(t);
                    } else if self.shutting_down.is_some() {
                        // The engine stopped everything it may stop here.
                        break;
                    }
                }
            }
            if self.shutting_down.is_none() {
                self.reconcile_monitors();
            }
            for f in &self.follows {
                self.checker
                    .set_primaries(&f.upstream, &f.primaries(&self.config, &self.state));
            }
            let deadline = self.next_deadline();
            tokio::select! {
                Some(input) = rx.recv() => self.handle(input)?,
                Some(req) = control.recv() => self.control(req)?,
                Some(exit) = exits.recv() => self.on_exit(exit)?,
                _ = tokio::time::sleep_until(deadline) => self.on_timer(),
                _ = sigterm.recv() => self.begin_shutdown(leave_running_default)?,
                _ = sigint.recv() => self.begin_shutdown(leave_running_default)?,
                _ = sigquit.recv() => self.begin_shutdown(true)?,
                _ = sighup.recv() => {
                    if let Err(e) = self.reload() {
                        error!(error = %e, "reload refused; nothing changed");
                    }
                }
            }
        }
        let now = self.clock.now();
        self.store.snapshot(&self.state, now)?;
        Ok(())
    }

    /// The definition an action runs with: the configuration's, except for a stop or demote
    /// of a copy started with an earlier definition still known (its parameters are what
    /// the running copy uses: an OCF agent stops the address, file or process it started).
    fn spec_for(&self, kind: &ActionKind) -> Option<ResourceSpec> {
        let spec = self.config.resource(kind.resource()?)?;
        if matches!(kind, ActionKind::Stop { .. } | ActionKind::Demote { .. }) {
            let on = self.state.on_node(&spec.id, kind.node());
            if let Some(old) = on
                .digest
                .filter(|&d| d != spec.digest())
                .and_then(|d| self.previous.get(&d))
            {
                return Some(old.clone());
            }
        }
        Some(spec.clone())
    }

    /// Stores every definition the daemon may still have to act on (see `previous`), and
    /// forgets earlier definitions no running copy uses any more.
    fn keep_definitions(&mut self) -> anyhow::Result<()> {
        let used: std::collections::HashSet<u64> = self
            .state
            .resources
            .values()
            .flat_map(|rs| rs.nodes.values())
            .filter(|on| on.role != Role::Stopped)
            .filter_map(|on| on.digest)
            .collect();
        let current: std::collections::HashSet<u64> = self
            .config
            .resources()
            .iter()
            .map(ResourceSpec::digest)
            .collect();
        self.previous
            .retain(|d, _| used.contains(d) && !current.contains(d));
        let mut defs: Vec<crate::wire::WireDefinition> = self
            .config
            .resources()
            .iter()
            .map(crate::wire::WireDefinition::from_spec)
            .collect();
        defs.extend(
            self.previous
                .values()
                .map(crate::wire::WireDefinition::from_spec),
        );
        self.store
            .set_definitions(&defs)
            .context("cannot store the resource definitions")
    }

    /// Orphans stopped everywhere leave the configuration (and the status).
    fn forget_stopped_orphans(&mut self) -> anyhow::Result<()> {
        let before = self.orphans.len();
        let state = &self.state;
        self.orphans.retain(|o| {
            let done = stopped_everywhere(state, &o.id);
            if done {
                info!(resource = %o.id, "orphan stopped; forgotten");
            }
            !done
        });
        if self.orphans.len() != before {
            self.config = Arc::new(
                self.file_config
                    .with_extra_resources(self.orphans.clone())?,
            );
            self.keep_definitions()?;
        }
        Ok(())
    }

    /// Applies the file's resources, constraints and cluster options: new resources start,
    /// those gone from the file are stopped as orphans, a changed definition restarts (the
    /// engine compares digests), everything else takes effect at the next transition.
    /// Returns what changed, one line each.
    fn reload_resources(&mut self, loaded: &crate::config::Loaded) -> anyhow::Result<Vec<String>> {
        let new = &loaded.engine;
        let mut changes = Vec::new();
        let old = Arc::clone(&self.config);
        for spec in new.resources() {
            match old.resource(&spec.id) {
                None => changes.push(format!("resource {}: new", spec.id)),
                Some(o) if o.meta.orphan => {
                    changes.push(format!("resource {}: back in the file", spec.id))
                }
                Some(o) if o.digest() != spec.digest() => {
                    self.previous.insert(o.digest(), o.clone());
                    changes.push(format!(
                        "resource {}: definition changed: it restarts where it runs",
                        spec.id
                    ));
                }
                Some(o) if o != spec => changes.push(format!("resource {}: updated", spec.id)),
                Some(_) => {}
            }
        }
        let mut orphans: Vec<ResourceSpec> = Vec::new();
        for o in old.resources() {
            if new.resource(&o.id).is_some() {
                continue;
            }
            if stopped_everywhere(&self.state, &o.id) {
                if !o.meta.orphan {
                    changes.push(format!("resource {}: removed", o.id));
                }
                continue;
            }
            if !o.meta.orphan {
                changes.push(format!(
                    "resource {}: gone from the file: it is stopped",
                    o.id
                ));
            }
            let mut orphan = o.clone();
            orphan.meta.orphan = true;
            orphan.meta.target_role = warden_engine::TargetRole::Stopped;
            orphan
                .ops
                .retain(|op| op.name != OpName::Monitor || op.interval.is_zero());
            orphans.push(orphan);
        }
        let constraints = |c: &Config| {
            (
                c.locations().to_vec(),
                c.colocations().to_vec(),
                c.orders().to_vec(),
                c.groups().to_vec(),
            )
        };
        if constraints(&self.file_config) != constraints(new) {
            changes.push("constraints: updated".to_owned());
        }
        if self.file_config.cluster != new.cluster
            || self.file_config.fence_devices() != new.fence_devices()
        {
            changes.push("cluster options: updated".to_owned());
        }
        let config = new.with_extra_resources(orphans.clone())?;
        self.file_config = Arc::new(new.clone());
        self.orphans = orphans;
        self.config = Arc::new(config);
        // Health checks serving as monitors: unchanged ones keep their hysteresis.
        let mut health = HashMap::new();
        for h in &loaded.health_monitors {
            let key = (h.resource.clone(), warden_engine::millis(h.check.interval));
            let mon = match self.health.remove(&key) {
                Some(m) if m.peer == h.peer && m.check == h.check && m.grace == h.grace => m,
                _ => HealthMon {
                    peer: h.peer.clone(),
                    check: h.check.clone(),
                    grace: h.grace,
                    health: Default::default(),
                    generation: 0,
                },
            };
            health.insert(key, mon);
        }
        self.health = health;
        self.keep_definitions()?;
        if !changes.is_empty() {
            self.abort_run();
        }
        Ok(changes)
    }

    /// Stops the daemon: with `leave_running`, once the actions in flight finish; otherwise
    /// the node is recorded as shutting down and the engine stops its resources in its own
    /// order (what depends on a resource first, promoted copies demoted first), then the
    /// daemon exits. Asking again to leave them running cuts a stop short.
    fn begin_shutdown(&mut self, leave_running: bool) -> anyhow::Result<()> {
        match self.shutting_down {
            Some(true) => return Ok(()),
            Some(false) if !leave_running => return Ok(()),
            _ => {}
        }
        info!(leave_running, "shutting down");
        let first = self.shutting_down.is_none();
        self.shutting_down = Some(leave_running);
        if !leave_running && first {
            let node = self.node.clone();
            self.record(vec![(Event::NodeShutdown { node }, None)])?;
        }
        self.abort_run();
        Ok(())
    }

    fn next_deadline(&self) -> Instant {
        let far = Instant::now() + Duration::from_secs(3600);
        let monitors = self
            .monitors
            .values()
            .filter(|s| !s.in_flight)
            .map(|s| s.next_due)
            .min();
        let wake = self.wakeup.map(|w| self.clock.instant_of(w));
        [Some(far), monitors, wake, self.hold_until]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(far)
    }

    fn on_timer(&mut self) {
        let now_i = Instant::now();
        if self.wakeup.is_some_and(|w| self.clock.now() >= w) {
            debug!("a failure expired: scheduling");
            self.wakeup = None;
            self.dirty = true;
        }
        if self.shutting_down.is_some() {
            return;
        }
        let due: Vec<(String, u64)> = self
            .monitors
            .iter()
            .filter(|(_, s)| !s.in_flight && s.next_due <= now_i)
            .map(|(k, _)| k.clone())
            .collect();
        for (resource, interval_ms) in due {
            self.fire_monitor(&resource, interval_ms);
        }
    }

    /// Records events durably, then applies them. Nothing is acted on before this returns.
    fn record(&mut self, events: Vec<(Event, Option<u64>)>) -> anyhow::Result<()> {
        let now = self.clock.now();
        let entries: Vec<Entry> = events
            .iter()
            .map(|(e, d)| Entry {
                time: now,
                event: e.clone(),
                duration_ms: *d,
            })
            .collect();
        self.store
            .append(&entries)
            .context("cannot record an event in the store; stopping rather than acting on it")?;
        for (e, _) in events {
            if let Err(err) = warden_engine::apply(&self.config, &mut self.state, &e, now) {
                warn!(error = %err, "event refused by the engine");
            }
        }
        if self.store.log_len()? >= SNAPSHOT_EVERY {
            self.store.snapshot(&self.state, now)?;
        }
        Ok(())
    }

    fn abort_run(&mut self) {
        if let Some(run) = &mut self.run {
            run.aborted = true;
        }
        self.dirty = true;
    }

    fn start_run(&mut self, t: Transition) {
        let probes = t
            .actions
            .iter()
            .filter(|a| matches!(a.kind, ActionKind::Probe { .. }))
            .count();
        if probes > 0 {
            // What follows the probes depends on what they find: say so, not the plan.
            info!(probes, "probing what runs here");
            for c in &t.summary {
                debug!(change = %c, "planned after the probes");
            }
        } else {
            for c in &t.summary {
                info!(change = %c, "transition");
            }
        }
        let steps = vec![Step::Pending; t.actions.len()];
        self.run = Some(Run {
            t,
            steps,
            aborted: false,
            fence_failed: false,
        });
        self.advance();
    }

    /// Launches every action whose prerequisites are done; finishes the run when nothing more
    /// can happen.
    fn advance(&mut self) {
        let Some(run) = &mut self.run else { return };
        let mut launch = Vec::new();
        if !run.aborted {
            for a in &run.t.actions {
                if run.steps[a.id] == Step::Pending
                    && a.deps.iter().all(|&d| run.steps[d] == Step::Done)
                {
                    run.steps[a.id] = Step::InFlight;
                    launch.push(a.clone());
                }
            }
        }
        let in_flight = run.steps.contains(&Step::InFlight);
        if !in_flight {
            let fence_failed = run.fence_failed;
            self.run = None;
            self.dirty = true;
            if fence_failed {
                self.failed_fences += 1;
                if self.failed_fences >= 2 {
                    let backoff = Duration::from_millis(50u64 << self.failed_fences.min(7))
                        .min(Duration::from_secs(5));
                    self.hold_until = Some(Instant::now() + backoff);
                }
            } else {
                self.failed_fences = 0;
            }
            return;
        }
        for a in launch {
            self.launch(a);
        }
    }

    fn launch(&mut self, a: Action) {
        let tx = self.tx.clone();
        match &a.kind {
            ActionKind::Fence { node, reason } => {
                info!(node = %node, reason = %reason, "fencing");
                let devices: Vec<Vec<String>> = self
                    .config
                    .fence_devices_for(node)
                    .map(|d| d.command.clone())
                    .collect();
                let node = node.clone();
                tokio::spawn(async move {
                    let mut ok = false;
                    for argv in devices {
                        let mut cmd = tokio::process::Command::new(&argv[0]);
                        cmd.args(&argv[1..]).arg(&node);
                        let r = run_command(cmd, Duration::from_secs(60)).await;
                        if r.rc == 0 {
                            ok = true;
                            break;
                        }
                        warn!(node = %node, device = %argv[0], rc = r.rc, reason = %r.exit_reason, "fence device failed");
                    }
                    let _ = tx.send(Input::Fence { id: a.id, ok });
                });
            }
            kind => {
                let id = a.id;
                let spec = self.spec_for(kind);
                let (Some(spec), Some(op)) = (spec, kind.op()) else {
                    // Gone from the configuration since it was scheduled: the step fails (it
                    // must not wait forever) and the engine decides again.
                    let _ = tx.send(Input::Action {
                        id,
                        result: AgentResult::failed("the resource is no longer configured"),
                        digest: 0,
                    });
                    return;
                };
                let resource = spec.id.as_str();
                *self.busy.entry(resource.to_owned()).or_default() += 1;
                let ctx = self.exec_ctx();
                let notification = match kind {
                    ActionKind::Notify { notification, .. } => Some(notification.clone()),
                    _ => None,
                };
                debug!(action = %kind, "action starts");
                tokio::spawn(async move {
                    let result = ctx.run_op(&spec, op, notification.as_deref()).await;
                    let digest = spec.digest();
                    let _ = tx.send(Input::Action { id, result, digest });
                });
            }
        }
    }

    fn exec_ctx(&self) -> ExecCtx {
        ExecCtx {
            ocf_root: Arc::clone(&self.ocf_root),
            supervisor: self.supervisor.clone(),
            node: self.node.clone(),
            agent_env: Arc::clone(&self.agent_env),
        }
    }

    fn handle(&mut self, input: Input) -> anyhow::Result<()> {
        match input {
            Input::Action { id, result, digest } => self.on_action_done(id, result, digest)?,
            Input::Fence { id, ok } => {
                let Some(node) = self
                    .run
                    .as_ref()
                    .and_then(|r| r.t.actions.get(id))
                    .map(|a| a.kind.node().to_owned())
                else {
                    return Ok(());
                };
                self.record(vec![(
                    Event::Fenced {
                        node: node.clone(),
                        ok,
                    },
                    None,
                )])?;
                if !ok {
                    error!(node = %node, "fencing failed: nothing it ran is recovered until it succeeds");
                    if let Some(run) = &mut self.run {
                        run.fence_failed = true;
                    }
                }
                self.finish_step(id, ok);
            }
            Input::Monitor {
                resource,
                interval_ms,
                generation,
                result,
            } => {
                self.rearm_monitor(&resource, interval_ms);
                self.on_monitor_done(resource, interval_ms, generation, result)?
            }
            Input::Health {
                resource,
                interval_ms,
                generation,
                result,
                took,
            } => {
                self.rearm_monitor(&resource, interval_ms);
                self.on_health_done(resource, interval_ms, generation, result, took)?
            }
        }
        Ok(())
    }

    /// Answers a request of the control handle. Only a store that cannot record stops the
    /// daemon; every other refusal is the requester's answer.
    fn control(&mut self, req: Request) -> anyhow::Result<()> {
        match req {
            Request::Admin { cmd, reply } => {
                let r = self.admin(cmd);
                let _ = reply.send(r);
            }
            Request::Reload { reply } => {
                let r = self.reload().map_err(ControlError::Config);
                if let Err(e) = &r {
                    error!(error = %e, "reload refused; nothing changed");
                }
                let _ = reply.send(r);
            }
            Request::PromotionScore {
                resource,
                node,
                score,
                reply,
            } => {
                let _ = reply.send(self.promotion_score(resource, node, score));
            }
            Request::Status { reply } => {
                let _ = reply.send(StatusView {
                    config: Arc::clone(&self.config),
                    state: self.state.clone(),
                    now: self.clock.now(),
                    node: self.node.clone(),
                    transition_running: self.run.is_some(),
                    next_wakeup: self.wakeup,
                });
            }
            Request::History {
                resource,
                limit,
                reply,
            } => {
                let r = match resource.as_deref() {
                    Some(r) if self.config.resource(r).is_none() => {
                        Err(ControlError::UnknownResource(r.to_owned()))
                    }
                    _ => self
                        .store
                        .history(resource.as_deref(), limit)
                        .map_err(|e| ControlError::Store(format!("{e:#}"))),
                };
                let _ = reply.send(r);
            }
            Request::Shutdown {
                leave_running,
                reply,
            } => {
                let r = self.begin_shutdown(leave_running);
                let _ = reply.send(Ok(()));
                r?;
            }
        }
        Ok(())
    }

    fn admin(&mut self, cmd: AdminCommand) -> Result<(), ControlError> {
        // Check names first: nothing is recorded that the engine would refuse.
        let mut probe = self.state.clone();
        warden_engine::apply(
            &self.config,
            &mut probe,
            &Event::Admin(cmd.clone()),
            self.clock.now(),
        )?;
        info!(command = ?cmd, "admin command");
        self.record(vec![(Event::Admin(cmd), None)])
            .map_err(|e| ControlError::Store(format!("{e:#}")))?;
        self.abort_run();
        Ok(())
    }

    /// Applies the configuration file to the running daemon (`warden reload`, SIGHUP) without
    /// dropping a connection: peers are added, removed and updated in place (the others keep
    /// their health), listeners started, stopped or restarted on the socket they have (sessions
    /// they accepted go on); resources, constraints and cluster options as
    /// [`Daemon::reload_resources`] says. A file with errors changes nothing.
    fn reload(&mut self) -> Result<Vec<String>, String> {
        let loaded = crate::config::load(&self.config_path).map_err(|e| format!("{e:#}"))?;
        // Checked before anything changes: a file this node cannot run changes nothing.
        if loaded.engine.node_index(&self.node).is_none() {
            return Err(format!(
                "this node ({}) is not in the file any more; restart the daemon with --node",
                self.node
            ));
        }
        pick_node(&loaded.engine, Some(&self.node)).map_err(|e| format!("{e:#}"))?;
        let mut changes = Vec::new();
        let follows: std::collections::HashSet<&str> =
            loaded.follows.iter().map(|f| f.upstream.as_str()).collect();
        for u in &loaded.upstreams {
            if !self.checker.has_upstream(&u.name) {
                changes.push(format!(
                    "upstream {} is new: it starts at the next restart",
                    u.name
                ));
                continue;
            }
            let c = self
                .checker
                .reconcile(u, !follows.contains(u.name.as_str()))
                .map_err(|e| e.to_string())?;
            changes.extend(c);
        }
        for name in self.checker.upstream_names() {
            if !loaded.upstreams.iter().any(|u| u.name == name) {
                changes.push(format!(
                    "upstream {name} is gone from the file: it stops at the next restart"
                ));
            }
        }
        self.follows = loaded
            .follows
            .iter()
            .filter(|f| self.checker.has_upstream(&f.upstream))
            .cloned()
            .collect();
        for spec in &loaded.listeners {
            match self.listeners.get(&spec.name) {
                Some(r) if r.spec == *spec => {}
                Some(r) if r.spec.listen == spec.listen => {
                    // Same address: same socket, new rules; no connection is refused meanwhile.
                    let socket = Arc::clone(&r.socket);
                    r.stop();
                    let running = crate::proxy::spawn(
                        spec.clone(),
                        socket,
                        self.checker.clone(),
                        self.proxy_stats.of(&spec.name),
                    );
                    self.listeners.insert(spec.name.clone(), running);
                    changes.push(format!("listener {}: updated", spec.name));
                }
                old => {
                    let running =
                        start_listener(spec, &self.data_dir, &self.checker, &self.proxy_stats)
                            .map_err(|e| format!("{e:#}"))?;
                    if let Some(old) = old {
                        old.stop();
                    }
                    let what = if self.listeners.contains_key(&spec.name) {
                        "moved"
                    } else {
                        "started"
                    };
                    changes.push(format!("listener {}: {what}", spec.name));
                    self.listeners.insert(spec.name.clone(), running);
                }
            }
        }
        let gone: Vec<String> = self
            .listeners
            .keys()
            .filter(|n| !loaded.listeners.iter().any(|l| &l.name == *n))
            .cloned()
            .collect();
        for name in gone {
            if let Some(r) = self.listeners.remove(&name) {
                r.stop();
                self.proxy_stats.remove(&name);
                let _ = std::fs::remove_file(self.data_dir.join(format!("listener-{name}.addr")));
                changes.push(format!("listener {name}: stopped"));
            }
        }
        changes.extend(
            self.reload_resources(&loaded)
                .map_err(|e| format!("{e:#}"))?,
        );
        let dir = data_dir(&self.config_path, &loaded.data_dir);
        if dir != self.data_dir {
            changes.push(format!(
                "data_dir {}: takes effect at the next daemon start",
                dir.display()
            ));
        }
        for c in &changes {
            info!(change = %c, "reload");
        }
        info!(changes = changes.len(), "configuration reloaded");
        Ok(changes)
    }

    /// Records an agent's promotion score. Nothing is recorded when it did not change (agents
    /// set it on every monitor); a change is scheduled after the running transition, which
    /// it does not abort.
    fn promotion_score(
        &mut self,
        resource: String,
        node: String,
        score: Option<Score>,
    ) -> Result<(), ControlError> {
        let Some(spec) = self.config.resource(&resource) else {
            return Err(ControlError::UnknownResource(resource));
        };
        if !spec.is_promotable() {
            return Err(ControlError::NotPromotable(resource));
        }
        if self.config.node_index(&node).is_none() {
            return Err(ControlError::UnknownNode(node));
        }
        let current = self
            .state
            .resource(&resource)
            .and_then(|r| r.promotion_scores.get(&node))
            .copied();
        if current == score {
            return Ok(());
        }
        debug!(resource = %resource, node = %node, score = ?score.map(|s| s.to_string()), "promotion score");
        let ev = Event::PromotionScore {
            resource,
            node,
            score,
        };
        self.record(vec![(ev, None)])
            .map_err(|e| ControlError::Store(format!("{e:#}")))?;
        self.dirty = true;
        Ok(())
    }

    fn on_action_done(
        &mut self,
        id: usize,
        result: AgentResult,
        digest: u64,
    ) -> anyhow::Result<()> {
        let Some(action) = self.run.as_ref().and_then(|r| r.t.actions.get(id)).cloned() else {
            return Ok(());
        };
        let (Some(resource), Some(op)) = (action.kind.resource(), action.kind.op()) else {
            self.finish_step(id, false);
            return Ok(());
        };
        if let Some(n) = self.busy.get_mut(resource) {
            *n = n.saturating_sub(1);
        }
        if self.config.resource(resource).is_none() {
            warn!(action = %action.kind, reason = %result.exit_reason, "result of a resource no longer configured; not recorded");
            self.finish_step(id, false);
            return Ok(());
        }
        let ok = self
            .config
            .resource(resource)
            .is_some_and(|spec| expected(spec, op, result.rc));
        let ms = result.duration.as_millis() as u64;
        match (op.is_probe(), result.rc) {
            (true, rc::NOT_RUNNING) => debug!(action = %action.kind, "probe: not running"),
            (true, rc::OK | rc::RUNNING_PROMOTED | rc::DEGRADED) => {
                info!(resource, node = %action.kind.node(), "probe: already running; adopted")
            }
            _ if ok => info!(action = %action.kind, rc = result.rc, ms, "action done"),
            _ => {
                warn!(action = %action.kind, rc = result.rc, rc_name = rc::name(result.rc), reason = %result.exit_reason, ms, "action failed")
            }
        }
        if op.name == OpName::Start && ok {
            self.last_start.insert(resource.to_owned(), Instant::now());
        }
        // Monitors follow the role: a new instance or role gets fresh ones.
        if matches!(
            op.name,
            OpName::Start | OpName::Stop | OpName::Promote | OpName::Demote
        ) {
            *self.generation.entry(resource.to_owned()).or_default() += 1;
            self.monitors.retain(|(r, _), _| r != resource);
        }
        let ev = Event::OpResult(OpResult {
            resource: resource.to_owned(),
            node: action.kind.node().to_owned(),
            op,
            rc: result.rc,
            exit_reason: result.exit_reason.clone(),
            digest: (op.name == OpName::Start).then_some(digest),
        });
        self.record(vec![(ev, Some(result.duration.as_millis() as u64))])?;
        self.finish_step(id, ok);
        // A process that died before its start was applied: its exit counts now.
        if self.busy.get(resource).copied().unwrap_or(0) == 0 {
            let (now, later): (Vec<Exited>, Vec<Exited>) = std::mem::take(&mut self.deferred_exits)
                .into_iter()
                .partition(|e| e.resource == resource);
            self.deferred_exits = later;
            for e in now {
                self.on_exit(e)?;
            }
        }
        Ok(())
    }

    fn finish_step(&mut self, id: usize, ok: bool) {
        if let Some(run) = &mut self.run {
            if let Some(s) = run.steps.get_mut(id) {
                *s = if ok { Step::Done } else { Step::Failed };
            }
            if !ok {
                run.aborted = true;
            }
        }
        self.advance();
    }

    /// Keeps one timer per recurring monitor of every resource started here and healthy.
    fn reconcile_monitors(&mut self) {
        let mut desired = Vec::new();
        for spec in self.config.resources() {
            // Unmanaged resources are still monitored (as Pacemaker does); maintenance ones are not.
            if spec.meta.maintenance {
                continue;
            }
            let Some(on) = self
                .state
                .resource(&spec.id)
                .and_then(|r| r.nodes.get(&self.node))
            else {
                continue;
            };
            if !on.role.is_active() || on.failed || on.demote_on_fail || on.blocked {
                continue;
            }
            // A promotable resource's copy runs the monitors of its role.
            let promoted = spec.is_promotable() && on.role == Role::Promoted;
            for op in spec.recurring_monitors_in(promoted) {
                desired.push((
                    spec.id.clone(),
                    warden_engine::millis(op.interval),
                    op.interval,
                ));
            }
        }
        let keep: std::collections::HashSet<(String, u64)> =
            desired.iter().map(|(r, i, _)| (r.clone(), *i)).collect();
        self.monitors.retain(|k, s| keep.contains(k) || s.in_flight);
        for (r, i, interval) in desired {
            self.monitors.entry((r, i)).or_insert_with(|| Slot {
                next_due: Instant::now() + interval,
                in_flight: false,
            });
        }
    }

    fn fire_monitor(&mut self, resource: &str, interval_ms: u64) {
        let interval = Duration::from_millis(interval_ms);
        let busy = self.busy.get(resource).copied().unwrap_or(0) > 0;
        let Some(slot) = self.monitors.get_mut(&(resource.to_owned(), interval_ms)) else {
            return;
        };
        if busy {
            slot.next_due = Instant::now() + interval;
            return;
        }
        slot.in_flight = true;
        let Some(spec) = self.config.resource(resource).cloned() else {
            return;
        };
        let generation = self.generation.get(resource).copied().unwrap_or(0);
        let tx = self.tx.clone();
        if let Some(h) = self.health.get(&(resource.to_owned(), interval_ms)) {
            let (peer, check, resource) = (h.peer.clone(), h.check.clone(), resource.to_owned());
            tokio::spawn(async move {
                let started = Instant::now();
                let result = crate::check::probe(&peer, &check).await;
                let _ = tx.send(Input::Health {
                    resource,
                    interval_ms,
                    generation,
                    result,
                    took: started.elapsed(),
                });
            });
            return;
        }
        let ctx = self.exec_ctx();
        let resource = resource.to_owned();
        tokio::spawn(async move {
            let result = ctx
                .run_op(
                    &spec,
                    OpKey {
                        name: OpName::Monitor,
                        interval_ms,
                    },
                    None,
                )
                .await;
            let _ = tx.send(Input::Monitor {
                resource,
                interval_ms,
                generation,
                result,
            });
        });
    }

    /// A monitor's run ended: whatever becomes of its result, it runs again at its next
    /// interval. Called once per result, where results arrive.
    fn rearm_monitor(&mut self, resource: &str, interval_ms: u64) {
        if let Some(slot) = self.monitors.get_mut(&(resource.to_owned(), interval_ms)) {
            slot.in_flight = false;
            slot.next_due = Instant::now() + Duration::from_millis(interval_ms);
        }
    }

    fn on_monitor_done(
        &mut self,
        resource: String,
        interval_ms: u64,
        generation: u64,
        result: AgentResult,
    ) -> anyhow::Result<()> {
        let current = self.generation.get(&resource).copied().unwrap_or(0);
        let started = self.state.on_node(&resource, &self.node).role.is_active();
        if generation != current || !started {
            debug!(resource = %resource, "stale monitor result dropped");
            return Ok(());
        }
        let op = OpKey {
            name: OpName::Monitor,
            interval_ms,
        };
        let Some(spec) = self.config.resource(&resource) else {
            return Ok(());
        };
        let ok = expected(spec, op, result.rc);
        let key = (resource.clone(), interval_ms);
        let changed = self.last_monitor_rc.get(&key) != Some(&result.rc);
        self.last_monitor_rc.insert(key, result.rc);
        if ok && !changed {
            return Ok(());
        }
        if !ok {
            warn!(resource = %resource, op = %op, rc = result.rc, rc_name = rc::name(result.rc), reason = %result.exit_reason, "monitor failed");
        }
        let ev = Event::OpResult(OpResult {
            resource,
            node: self.node.clone(),
            op,
            rc: result.rc,
            exit_reason: result.exit_reason,
            digest: None,
        });
        self.record(vec![(ev, Some(result.duration.as_millis() as u64))])?;
        if !ok {
            self.abort_run();
        }
        Ok(())
    }

    /// A health check serving as a monitor: its result goes through the hysteresis, and the
    /// monitor fails (rc 1) while the check is DOWN.
    fn on_health_done(
        &mut self,
        resource: String,
        interval_ms: u64,
        generation: u64,
        result: Result<(), crate::check::CheckError>,
        took: Duration,
    ) -> anyhow::Result<()> {
        use warden_engine::health::PeerState;
        let Some(h) = self.health.get_mut(&(resource.clone(), interval_ms)) else {
            return Ok(());
        };
        // A new instance (started or stopped since) starts from UNKNOWN.
        if h.generation != generation {
            h.generation = generation;
            h.health = Default::default();
        }
        let err = result.as_ref().err().map(ToString::to_string);
        // Still coming up: failures before its first success count only after the grace.
        let starting = self
            .last_start
            .get(&resource)
            .is_some_and(|t| t.elapsed() < h.grace);
        if result.is_err() && starting && h.health.state == PeerState::Unknown {
            debug!(resource = %resource, error = ?err, "health check failed while the service starts; not counted");
            return Ok(());
        }
        if let Some(change) = h.health.record(result.is_ok(), h.check.hysteresis) {
            if change.routing_changed {
                let (dir, what) = if change.to == PeerState::Down {
                    ("down", "failure(s)")
                } else {
                    ("up", "success(es)")
                };
                warn!(resource = %resource, peer = %h.peer.addr, "health check of {resource} ({}) is turned {dir} after {} {what}", h.peer.addr, change.after);
            }
        }
        let down = h.health.state == PeerState::Down;
        let exit_reason = match (down, err) {
            (true, Some(e)) => format!(
                "health check of {} down after {} failure(s): {e}",
                h.peer.addr, h.health.failures
            ),
            (true, None) => format!("health check of {} down", h.peer.addr),
            _ => String::new(),
        };
        let rc = if down { rc::ERR_GENERIC } else { rc::OK };
        let result = AgentResult {
            rc,
            exit_reason,
            stdout: String::new(),
            stderr: String::new(),
            duration: took,
            timed_out: false,
        };
        self.on_monitor_done(resource, interval_ms, generation, result)
    }

    /// A supervised process ended on its own: a failed monitor (rc 7), now.
    fn on_exit(&mut self, exit: Exited) -> anyhow::Result<()> {
        if self.busy.get(&exit.resource).copied().unwrap_or(0) > 0 {
            // Its start is still being applied (a stop never reports an exit): wait for it.
            self.deferred_exits.push(exit);
            return Ok(());
        }
        let role = self.state.on_node(&exit.resource, &self.node).role;
        if !role.is_active() {
            return Ok(());
        }
        let Some(spec) = self.config.resource(&exit.resource) else {
            return Ok(());
        };
        // The exit fails a monitor of the copy's role (a promoted copy runs only those).
        let promoted = spec.is_promotable() && role == Role::Promoted;
        let interval = spec
            .recurring_monitors_in(promoted)
            .next()
            .map_or(crate::config::IMPLICIT_MONITOR, |o| o.interval);
        let op = OpKey::new(OpName::Monitor, interval);
        warn!(resource = %exit.resource, pid = exit.pid, how = %exit.how, "process exited");
        // Dying right after its start again and again is a crash loop: the engine delays
        // this resource's next start (`crash_loop_delay_max`), nothing else.
        *self.generation.entry(exit.resource.clone()).or_default() += 1;
        let ev = Event::OpResult(OpResult {
            resource: exit.resource,
            node: self.node.clone(),
            op,
            rc: rc::NOT_RUNNING,
            exit_reason: format!("process {}", exit.how),
            digest: None,
        });
        self.record(vec![(ev, Some(0))])?;
        self.abort_run();
        Ok(())
    }
}

/// What an action needs to run, detached from the loop.
#[derive(Clone, Debug)]
struct ExecCtx {
    ocf_root: Arc<PathBuf>,
    supervisor: Supervisor,
    node: String,
    agent_env: Arc<Vec<(String, String)>>,
}

impl ExecCtx {
    async fn run_op(
        &self,
        spec: &ResourceSpec,
        op: OpKey,
        notification: Option<&Notification>,
    ) -> AgentResult {
        let op_spec: Option<&OpSpec> = spec.op(op.name, op.interval());
        // A probe takes the probe op's timeout, else the recurring monitor's.
        let timeout = op_spec
            .or_else(|| {
                if op.is_probe() {
                    spec.recurring_monitors().next()
                } else {
                    None
                }
            })
            .map_or(warden_engine::config::DEFAULT_OP_TIMEOUT, |o| o.timeout);
        match &spec.agent {
            Agent::Ocf { provider, kind } => {
                let mut inv = ocf::Invocation::for_op(
                    &self.ocf_root,
                    provider,
                    kind,
                    &spec.id,
                    op,
                    timeout,
                    &spec.params,
                    &self.node,
                    op_spec.and_then(|o| o.check_level),
                );
                inv.extra_env = &self.agent_env;
                inv.promotable = spec.promotable.as_ref();
                inv.notification = notification;
                inv.role = op_spec
                    .filter(|o| spec.is_promotable() && o.name == OpName::Monitor)
                    .map(|o| o.role);
                ocf::run(&inv).await
            }
            Agent::Process(p) => match op.name {
                OpName::Monitor if op.is_probe() => self.supervisor.probe(&spec.id),
                OpName::Monitor => {
                    self.supervisor
                        .monitor(
                            &spec.id,
                            op_spec.and_then(|o| o.command.as_deref()),
                            timeout,
                        )
                        .await
                }
                OpName::Start => self.supervisor.start(&spec.id, p),
                OpName::Stop => self.supervisor.stop(&spec.id, p).await,
                OpName::Promote | OpName::Demote => {
                    self.supervisor
                        .change_role(
                            &spec.id,
                            p,
                            op.name == OpName::Promote,
                            timeout,
                            &self.agent_env,
                        )
                        .await
                }
                // A process takes no notifications; they succeed.
                OpName::Notify => AgentResult {
                    rc: rc::OK,
                    exit_reason: String::new(),
                    stdout: String::new(),
                    stderr: String::new(),
                    duration: Duration::ZERO,
                    timed_out: false,
                },
            },
        }
    }
}
