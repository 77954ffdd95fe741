//! `warden run`: the shell around the daemon's core ([`crate::core::Core`]). It owns what the
//! core must not touch: the clock, the store, the sockets (API, proxy listeners, the listener
//! handover), the processes and agents it runs for the core's effects, and the signals. One
//! loop: ask the core what to do (`poll`), carry out its effects, wait for a result, a
//! request, a process exit, a signal or the core's next deadline (`poll_timeout`), hand it
//! over (`handle`), and so on until the core is finished.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};
use warden_engine::{Agent, ApplyError, Config, OpKey, OpName, Time};

use crate::control::{Control, ControlError, Request};
use crate::core::{Boot, Core, Effect, Input, OpOutcome, StoreFailed};
use crate::exec::executor::Executor;
use crate::exec::process::{Exited, Supervisor};
use crate::exec::{AgentResult, ocf};
use crate::store::{SNAPSHOT_EVERY, Store};

/// Binds the API's address and writes where the CLI finds it: `<data_dir>/api.addr` (with
/// `https://` before it when the API speaks TLS) and `api.pin`, the pin of its certificate
/// (removed when it does not). Returns the listener, its address and the TLS, if any.
pub(crate) async fn bind_api(
    settings: &crate::config::ApiSettings,
    data_dir: &Path,
) -> anyhow::Result<(
    tokio::net::TcpListener,
    std::net::SocketAddr,
    Option<crate::api_tls::ApiTls>,
)> {
    let tls = match &settings.tls {
        Some(f) => Some(crate::api_tls::load(&f.cert, &f.key).map_err(anyhow::Error::msg)?),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let addr = listener.local_addr()?;
    if settings.exposed_unconfirmed() {
        warn!(listen = %settings.listen, "{}", crate::config::API_EXPOSED);
    }
    let pin_file = data_dir.join("api.pin");
    match &tls {
        Some(t) => {
            std::fs::write(&pin_file, format!("{}\n", t.pin)).context("cannot write api.pin")?
        }
        None => match std::fs::remove_file(&pin_file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).context("cannot remove api.pin"),
        },
    }
    // With port 0 the kernel picks one: the CLI finds it here.
    let scheme = if tls.is_some() { "https://" } else { "" };
    std::fs::write(data_dir.join("api.addr"), format!("{scheme}{addr}\n"))
        .context("cannot write api.addr")?;
    Ok((listener, addr, tls))
}

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
            "this configuration has {} nodes and no [cluster.etcd]: one machine runs a file of one node; several machines coordinate through etcd (add [cluster.etcd], docs/cluster.md)",
            nodes.len()
        );
    }
    Ok(nodes[0].clone())
}

/// Reads the API token, creating it (mode 0600) when absent.
/// Creates the data dir if needed and makes it the daemon's alone (0700): it holds the API
/// token, the store and the resources' output.
pub fn private_dir(data_dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create the data dir {}", data_dir.display()))?;
    let mode = std::fs::metadata(data_dir)
        .with_context(|| format!("cannot read the data dir {}", data_dir.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700)).with_context(
            || {
                format!(
                    "cannot make the data dir {} private (0700)",
                    data_dir.display()
                )
            },
        )?;
        info!(data_dir = %data_dir.display(), was = %format!("{:o}", mode & 0o777), "the data dir is made private (0700)");
    }
    Ok(())
}

/// What a daemon starts from, read from its store: the state, and what the store knows that
/// the file lost or changed (orphans to stop, and the definitions copies still run with: a
/// stop uses the definition its copy started with).
fn boot_from(
    store: &Store,
    file_config: Arc<Config>,
    node: String,
    health_monitors: Vec<crate::config::HealthMonitor>,
    now: Time,
) -> anyhow::Result<Boot> {
    let (defs, bad) = store.definitions()?;
    for b in &bad {
        warn!(definition = %b, "stored definition skipped");
    }
    Boot::restore(
        file_config,
        crate::wire::orphan_specs(defs),
        node,
        health_monitors,
        |config| {
            let restored = store.load(config)?;
            for s in &restored.skipped {
                warn!(entry = %s, "stored event no longer applies to the configuration; skipped");
            }
            Ok(restored.state)
        },
    )
    .map(|mut boot| {
        keep_ages(&mut boot.state, now);
        boot
    })
}

/// SIGHUP: `--log-output` opened again (after logrotate moved it).
pub(crate) fn reopen_log() {
    crate::proxy::access::reopen_all();
    match crate::logging::reopen() {
        Ok(()) => info!("log output reopened"),
        Err(e) => {
            error!(error = %format!("{e:#}"), "cannot reopen the log output; logging on to the old file")
        }
    }
}

/// A store whose latest record is later than `now` was written before the clock was stepped
/// back: every recorded time moves back with it, so failures keep their age and expire on
/// time instead of when the clock catches up. A step forward cannot be told from time passed.
fn keep_ages(state: &mut warden_engine::State, now: Time) {
    if let Some(latest) = state.latest_time().filter(|&t| t > now) {
        let behind = latest.since(now);
        warn!(latest = %latest.rfc3339(), now = %now.rfc3339(), "the store's last record is {} s ahead of the clock (was the clock set back?): its times are moved back as much", behind.as_secs());
        state.move_times_back(behind);
    }
}

/// The process supervisor of a daemon (one machine's or a cluster node's) in `data_dir`,
/// exits sent to `exits`. Output is capped and rotated by `warden output-writer` (this very
/// binary, even once an upgrade has replaced the file it was started from). Agents a killed
/// daemon left running (a slow start, say) are killed first, before anything is probed: never
/// two starts of one resource at once.
pub(crate) fn supervisor(
    data_dir: &Path,
    exits: mpsc::UnboundedSender<Exited>,
) -> anyhow::Result<Supervisor> {
    let supervisor = Supervisor::new(data_dir, exits)
        .context("cannot prepare the process supervisor")?
        .with_output_writer(PathBuf::from("/proc/self/exe"));
    for a in crate::exec::reap_interrupted(&supervisor.agents_dir()) {
        warn!(action = %a, "an agent the previous daemon had running was still running: killed; its resource is probed");
    }
    Ok(supervisor)
}

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
pub(crate) fn start_listener(
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
    // A write past RLIMIT_FSIZE fails (EFBIG) instead of killing the daemon (SIGXFSZ): a store
    // that cannot grow is held like a full disk, with the proxy still serving. Tokio keeps
    // the handler for the life of the process.
    let _ = signal(SignalKind::from_raw(rustix::process::Signal::XFSZ.as_raw()));
    let mut loaded = crate::config::load(&opts.config_path)?;
    if let Some(etcd) = loaded.etcd.take() {
        return crate::cluster::node::run(opts, loaded, etcd).await;
    }
    loaded.engine = with_reloadable(loaded.engine, &opts.ocf_root).await;
    let file_config = Arc::new(loaded.engine);
    let node = pick_node(&file_config, opts.node.as_deref())?;
    let data_dir = data_dir(&opts.config_path, &loaded.data_dir);
    private_dir(&data_dir)?;
    let store = open_store(&data_dir.join("warden.redb")).await?;
    let clock = Clock::new();
    let boot = boot_from(
        &store,
        Arc::clone(&file_config),
        node.clone(),
        loaded.health_monitors.clone(),
        clock.now(),
    )?;
    let resources = file_config.resources().len() + boot.orphans.len();
    let token = ensure_token(&data_dir)?;
    let (tx, rx) = mpsc::unbounded_channel();
    let (exit_tx, exit_rx) = mpsc::unbounded_channel();
    let supervisor = supervisor(&data_dir, exit_tx)?;
    let (listener, api_addr, api_tls) = bind_api(&loaded.api, &data_dir).await?;
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
    let agent_env = crate::exec::executor::AgentEnv::new(api_addr, api_tls.as_ref(), &token, &node);
    let (control, control_rx) = Control::new(checker.clone(), proxy_stats.clone());
    let api_task = tokio::spawn(crate::api::serve(
        listener,
        control,
        token,
        loaded.api.clone(),
        api_tls,
    ));
    info!(cluster = %file_config.cluster.name, node = %node, data_dir = %data_dir.display(), api = %api_addr, resources, upstreams = loaded.upstreams.len(), "warden started");

    let core = Core::new(boot)?;
    let mut d = Daemon {
        core,
        store,
        clock,
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
        health_monitors: loaded.health_monitors.clone(),
        unrecorded: None,
        retry_store: Instant::now(),
        notify: crate::notify::Notifier::from_env(),
        under_systemd: std::env::var_os("INVOCATION_ID").is_some()
            && crate::exec::systemd::booted(),
        restarting: false,
        watchdog: crate::notify::watchdog_every(),
        pinged: Instant::now(),
        ready: false,
        said: String::new(),
    };
    let now = d.clock.now();
    let effects = d.core.join(now, &mut d.store)?;
    d.carry_out(effects)?;
    d.main_loop(rx, control_rx, exit_rx, opts.leave_running)
        .await?;
    // A stop that failed or timed out leaves its resource running: not a clean exit.
    let left: Vec<String> = if d.core.leaves_running() {
        Vec::new()
    } else {
        let state = d.core.state();
        d.core
            .definitions()
            .iter()
            .map(|r| r.id.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .filter(|id| state.on_node(id, &node).role.is_active())
            .collect()
    };
    if d.core.leaves_running() && !d.listeners.is_empty() {
        // Resources are left running for a successor: so are the listeners, until it takes
        // them. The API and the store are released first, so it can start.
        api_task.abort();
        let _ = api_task.await;
        let offer = crate::handover::Offer::bind(&data_dir)?;
        let listeners = std::mem::take(&mut d.listeners);
        let stats = d.proxy_stats.clone();
        let restarting = d.restarting;
        drop(d);
        let drain = if restarting {
            // systemd starts the new daemon only once this one exits: a process of its own
            // takes the sockets meanwhile, and the sessions open get a short drain (nobody
            // accepts new ones until the new daemon runs).
            spawn_holder(&data_dir);
            HANDOVER_DRAIN_RESTART
        } else {
            HANDOVER_DRAIN
        };
        hand_over(offer, listeners, stats, drain).await?;
    }
    if !left.is_empty() {
        anyhow::bail!(
            "stopped with resources still running here: {} (their stop failed or timed out; `warden history RESOURCE` tells why)",
            left.join(", ")
        );
    }
    info!("warden stopped");
    Ok(())
}

/// How long a daemon that leaves its resources running waits for a successor to take its
/// listening sockets, and how long it then serves the sessions it accepted.
const HANDOVER_WAIT: Duration = Duration::from_secs(60);
const HANDOVER_DRAIN: Duration = Duration::from_secs(10);
const HANDOVER_DRAIN_RESTART: Duration = Duration::from_secs(2);

/// Starts `warden hold-listeners` (from this very binary, even one an upgrade replaced on
/// disk) in a process group of its own, to take the listening sockets from this daemon.
fn spawn_holder(data_dir: &Path) {
    use std::os::unix::process::CommandExt;
    let r = std::process::Command::new("/proc/self/exe")
        .arg("hold-listeners")
        .arg(data_dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn();
    if let Err(e) = r {
        warn!(error = %e, "cannot start a process to hold the listening sockets; the new daemon binds them anew");
    }
}

/// Offers the listening sockets to a successor; once it accepts on them, stops accepting and
/// serves the sessions already accepted until they end (at most [`HANDOVER_DRAIN`]).
/// SIGTERM or SIGINT end the wait.
async fn hand_over(
    offer: crate::handover::Offer,
    listeners: HashMap<String, crate::proxy::Running>,
    stats: crate::proxy::stats::Registry,
    drain: Duration,
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
    let deadline = Instant::now() + drain;
    while stats.open_sessions() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// The configuration with what each OCF agent's meta-data says it reloads (`reload-agent`
/// and its `reloadable` parameters). An agent whose meta-data cannot be read reloads
/// nothing: its changes restart.
pub(crate) async fn with_reloadable(config: Config, ocf_root: &Path) -> Config {
    let mut by_agent: HashMap<(String, String), Option<Vec<String>>> = HashMap::new();
    for (provider, kind) in crate::config::ocf_agents(&config) {
        let r = match ocf::metadata(ocf_root, &provider, &kind).await {
            Ok(md) => md.reloadable(),
            Err(e) => {
                warn!(agent = %format!("ocf:{provider}:{kind}"), error = %format!("{e:#}"), "cannot read the agent's meta-data; its changes restart");
                None
            }
        };
        by_agent.insert((provider, kind), r);
    }
    let reloadable: HashMap<String, Vec<String>> = config
        .resources()
        .iter()
        .filter_map(|r| match &r.agent {
            Agent::Ocf { provider, kind } => by_agent
                .get(&(provider.clone(), kind.clone()))
                .cloned()
                .flatten()
                .map(|p| (r.id.clone(), p)),
            Agent::Process(_) | Agent::Systemd { .. } | Agent::Fence(_) => None,
        })
        .collect();
    config.with_reloadable(&reloadable)
}

/// Opens the store, waiting while a daemon that stops still holds it.
async fn open_store(path: &Path) -> anyhow::Result<Store> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match Store::open(path) {
            Err(e) if Instant::now() < deadline && crate::store::already_open(&e) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            r => return r,
        }
    }
}

struct Daemon {
    core: Core,
    store: Store,
    clock: Clock,
    supervisor: Supervisor,
    ocf_root: Arc<PathBuf>,
    /// Environment variables every agent and promote/demote command gets.
    agent_env: Arc<crate::exec::executor::AgentEnv>,
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
    /// Where the tasks the shell starts send the core's inputs.
    tx: mpsc::UnboundedSender<Input>,
    /// Health checks serving as monitors (to build a new core after the store failed).
    health_monitors: Vec<crate::config::HealthMonitor>,
    /// The store could not record: why, and since when (see [`Daemon::held`]).
    unrecorded: Option<(String, warden_engine::Time)>,
    /// When to try the store again while it cannot record.
    retry_store: Instant,
    /// systemd's notification socket (`Type=notify`), if it gave one.
    notify: Option<crate::notify::Notifier>,
    /// Started by systemd as a service (`INVOCATION_ID`): SIGTERM may be a restart.
    under_systemd: bool,
    /// systemd restarts the unit: resources and listeners are left for the new daemon.
    restarting: bool,
    /// How often systemd's watchdog wants to hear from the loop, and when it last did.
    watchdog: Option<Duration>,
    pinged: Instant,
    /// `READY=1` was sent; the last `STATUS=` sent.
    ready: bool,
    said: String,
}

impl Daemon {
    /// Tells systemd what it wants to know: `READY=1` once every resource here is probed (or
    /// blocked, which is never probed) with the listeners already bound, `STATUS=` when the
    /// summary changes, `WATCHDOG=1` when due (from this loop: a loop that hangs stops them).
    fn tell_systemd(&mut self) {
        let Some(n) = &self.notify else {
            return;
        };
        if let Some(every) = self.watchdog {
            if self.pinged.elapsed() >= every {
                n.send("WATCHDOG=1");
                self.pinged = Instant::now();
            }
        }
        let state = self.core.state();
        let node = self.core.node();
        let (mut probed, mut started, mut failed) = (true, 0, 0);
        let config = self.core.config();
        let resources = config.resources();
        for r in resources {
            let on = state.on_node(&r.id, node);
            // What is never looked for here (resource_discovery) is never probed here.
            probed &= on.role != warden_engine::Role::Unknown
                || on.blocked
                || !config.discovers_on(&r.id, node);
            started += usize::from(on.role.is_active());
            failed += usize::from(!on.failed_ops.is_empty() || on.blocked);
        }
        let mut status = format!(
            "{} resources: {started} running here, {failed} failed",
            resources.len()
        );
        if self.unrecorded.is_some() {
            status.push_str("; the store cannot record: holding");
        } else if self.core.busy() {
            status.push_str("; a transition runs");
        }
        if probed && !self.ready {
            self.ready = true;
            n.send(&format!("READY=1\nSTATUS={status}"));
            self.said = status;
        } else if status != self.said {
            n.send(&format!("STATUS={status}"));
            self.said = status;
        }
    }

    /// A signal to stop: systemd hears `STOPPING=1`, the core shuts down.
    fn stopping(&mut self, leave_running: bool) -> anyhow::Result<Vec<Effect>> {
        if let Some(n) = &self.notify {
            n.send("STOPPING=1");
        }
        self.core
            .shutdown(leave_running, self.clock.now(), &mut self.store)
    }

    /// Whether the SIGTERM that came is systemd restarting this daemon's unit (`systemctl
    /// restart`, an upgrade): then the resources stay running for the new daemon, which
    /// adopts them, as after `warden shutdown --leave-running`. systemd tells a stop from a
    /// restart only through the unit's job, which is asked over D-Bus; when it cannot be
    /// asked, it is a stop (the resources stop in order), the safe reading.
    async fn systemd_restarts(&mut self) -> bool {
        if !self.under_systemd {
            return false;
        }
        let ask = async {
            let mut sd = crate::exec::systemd::Systemd::connect().await?;
            sd.job_of_pid(std::process::id()).await
        };
        match tokio::time::timeout(Duration::from_secs(5), ask).await {
            Ok(Ok(Some(job))) if matches!(job.as_str(), "restart" | "try-restart") => {
                info!(job = %job, "systemd restarts this daemon: the resources stay running for the new one");
                self.restarting = true;
                true
            }
            Ok(Ok(job)) => {
                debug!(job = ?job, "systemd stops this daemon");
                false
            }
            Ok(Err(e)) => {
                warn!(error = %e, "cannot ask systemd whether this is a restart; stopping the resources");
                false
            }
            Err(_) => {
                warn!(
                    "systemd did not say in 5 s whether this is a restart; stopping the resources"
                );
                false
            }
        }
    }

    /// When the watchdog wants the next `WATCHDOG=1`.
    fn next_ping(&self) -> Option<Instant> {
        self.watchdog.map(|every| self.pinged + every)
    }

    async fn main_loop(
        &mut self,
        mut rx: mpsc::UnboundedReceiver<Input>,
        mut control: mpsc::UnboundedReceiver<Request>,
        mut exits: mpsc::UnboundedReceiver<Exited>,
        leave_running_default: bool,
    ) -> anyhow::Result<()> {
        let mut signals = [
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
            signal(SignalKind::quit())?,
            signal(SignalKind::hangup())?,
        ];
        loop {
            self.tell_systemd();
            if self.unrecorded.is_some() {
                if !self
                    .held(&mut rx, &mut control, &mut exits, &mut signals)
                    .await?
                {
                    return Ok(());
                }
                continue;
            }
            let r = self.core.poll(self.clock.now());
            let effects = self.recorded(r)?;
            let r = self.carry_out(effects).map(|()| Vec::new());
            self.recorded(r)?;
            if self.unrecorded.is_some() {
                continue;
            }
            if self.core.finished() {
                break;
            }
            for f in &self.follows {
                self.checker.set_primaries(
                    &f.upstream,
                    &f.primaries(self.core.config(), self.core.state()),
                );
            }
            let far = Instant::now() + Duration::from_secs(3600);
            let deadline = self
                .core
                .poll_timeout()
                .map_or(far, |t| self.clock.instant_of(t).min(far))
                .min(self.next_ping().unwrap_or(far));
            let [sigterm, sigint, sigquit, sighup] = &mut signals;
            let r = tokio::select! {
                Some(input) = rx.recv() => self.core.handle(input, self.clock.now(), &mut self.store),
                Some(req) = control.recv() => self.control(req).await,
                Some(exit) = exits.recv() => self.core.handle(Input::Exited(exit), self.clock.now(), &mut self.store),
                _ = tokio::time::sleep_until(deadline) => Ok(Vec::new()),
                _ = sigterm.recv() => {
                    let leave = leave_running_default || self.systemd_restarts().await;
                    self.stopping(leave)
                }
                _ = sigint.recv() => self.stopping(leave_running_default),
                _ = sigquit.recv() => self.stopping(true),
                _ = sighup.recv() => {
                    reopen_log();
                    if let Err(e) = self.reload().await {
                        error!(error = %e, "reload refused; nothing changed");
                    }
                    Ok(Vec::new())
                }
            };
            let effects = self.recorded(r)?;
            let r = self.carry_out(effects).map(|()| Vec::new());
            self.recorded(r)?;
        }
        let now = self.clock.now();
        self.store.snapshot(self.core.state(), now)?;
        Ok(())
    }

    /// Carries out the core's effects: each agent, monitor, check and fence device in a task
    /// of its own, whose result comes back as an input. Snapshots the state when the log
    /// has grown.
    fn carry_out(&mut self, effects: Vec<Effect>) -> anyhow::Result<()> {
        for e in effects {
            let tx = self.tx.clone();
            match e {
                Effect::Run {
                    id,
                    spec,
                    op,
                    node: _,
                    notification,
                    migration,
                } => {
                    let ctx = self.executor();
                    tokio::spawn(async move {
                        let migration = migration.as_ref().map(|(s, t)| (s.as_str(), t.as_str()));
                        let r = ctx
                            .run_migration_op(&spec, op, notification.as_ref(), migration)
                            .await;
                        let _ = tx.send(Input::ActionDone {
                            id,
                            result: outcome(r),
                        });
                    });
                }
                Effect::Fence {
                    id,
                    node,
                    devices,
                    unfence,
                } => {
                    tokio::spawn(async move {
                        let ok = crate::exec::executor::fence(&node, &devices, unfence).await;
                        let _ = tx.send(Input::FenceDone { id, ok });
                    });
                }
                Effect::Monitor {
                    resource,
                    interval_ms,
                    generation,
                    spec,
                } => {
                    let ctx = self.executor();
                    tokio::spawn(async move {
                        let op = OpKey {
                            name: OpName::Monitor,
                            interval_ms,
                        };
                        let r = ctx.run_op(&spec, op, None).await;
                        let _ = tx.send(Input::MonitorDone {
                            resource,
                            interval_ms,
                            generation,
                            result: outcome(r),
                        });
                    });
                }
                Effect::Health {
                    resource,
                    interval_ms,
                    generation,
                    peer,
                    check,
                } => {
                    tokio::spawn(async move {
                        let started = Instant::now();
                        let result = crate::check::probe(&peer, &check).await;
                        let _ = tx.send(Input::HealthDone {
                            resource,
                            interval_ms,
                            generation,
                            error: result.err().map(|e| e.to_string()),
                            took: started.elapsed(),
                        });
                    });
                }
                Effect::SaveDefinitions(defs) => {
                    let defs: Vec<crate::wire::WireDefinition> = defs
                        .iter()
                        .map(crate::wire::WireDefinition::from_spec)
                        .collect();
                    self.store
                        .set_definitions(&defs)
                        .map_err(|e| StoreFailed(format!("the resource definitions: {e:#}")))?;
                }
            }
        }
        if self.store.log_len() >= SNAPSHOT_EVERY {
            self.store
                .snapshot(self.core.state(), self.clock.now())
                .map_err(|e| StoreFailed(format!("a snapshot: {e:#}")))?;
        }
        Ok(())
    }

    /// `r`, unless it failed because the store cannot record: then the daemon holds its
    /// actions (see [`Daemon::held`]) instead of stopping, so the proxy, the health checks and
    /// the API go on.
    fn recorded(&mut self, r: anyhow::Result<Vec<Effect>>) -> anyhow::Result<Vec<Effect>> {
        match r {
            Err(e) if e.chain().any(|c| c.is::<StoreFailed>()) => {
                error!(error = %format!("{e:#}"), "the store cannot record (a full disk?): resources are left as they are and nothing more is done until it records again; the proxy, the health checks and the API go on; trying again every 5 s");
                self.unrecorded = Some((format!("{e:#}"), crate::wire::wall_clock()));
                self.retry_store = Instant::now() + Duration::from_secs(5);
                Ok(Vec::new())
            }
            r => r,
        }
    }

    /// While the store cannot record: what comes in is dropped (the probes after recovery
    /// find the truth), reads are answered, changes refused with the reason, and every 5 s
    /// the store is tried. Once it records, the state is read back from it and every resource
    /// probed, as a restarted daemon does. Returns `false` when the daemon must stop.
    async fn held(
        &mut self,
        rx: &mut mpsc::UnboundedReceiver<Input>,
        control: &mut mpsc::UnboundedReceiver<Request>,
        exits: &mut mpsc::UnboundedReceiver<Exited>,
        signals: &mut [tokio::signal::unix::Signal; 4],
    ) -> anyhow::Result<bool> {
        let Some((why, since)) = self.unrecorded.clone() else {
            return Ok(true);
        };
        let refusal = || {
            ControlError::Store(format!(
                "the store cannot record since {}: {why}; nothing can be changed until it does (free space in the data dir)",
                crate::wire::format_time(since)
            ))
        };
        let [sigterm, sigint, sigquit, sighup] = signals;
        let ping = self.next_ping().filter(|p| *p < self.retry_store);
        tokio::select! {
            Some(_) = rx.recv() => {}
            Some(_) = exits.recv() => {}
            Some(req) = control.recv() => match req {
                Request::Status { reply } => {
                    let mut v = self.core.view(self.clock.now());
                    v.warnings.push(refusal().to_string());
                    let _ = reply.send(v);
                }
                Request::History { resource, limit, reply } => {
                    let r = self
                        .store
                        .history(resource.as_deref(), limit)
                        .map_err(|e| ControlError::Store(format!("{e:#}")));
                    let _ = reply.send(r);
                }
                Request::Admin { reply, .. }
                | Request::PromotionScore { reply, .. } => {
                    let _ = reply.send(Err(refusal()));
                }
                Request::Reload { reply } => {
                    let _ = reply.send(Err(refusal()));
                }
                Request::Shutdown { reply, .. } => {
                    let _ = reply.send(Ok(()));
                    warn!("stopping while the store cannot record: resources are left as they are");
                    return Ok(false);
                }
            },
            _ = sigterm.recv() => return Ok(false),
            _ = sigint.recv() => return Ok(false),
            _ = sigquit.recv() => return Ok(false),
            _ = sighup.recv() => {
                reopen_log();
                error!("reload refused: {}", refusal());
            }
            // Back to the loop, which feeds the watchdog.
            _ = tokio::time::sleep_until(ping.unwrap_or(self.retry_store)), if ping.is_some() => {}
            _ = tokio::time::sleep_until(self.retry_store) => {
                self.retry_store = Instant::now() + Duration::from_secs(5);
                match self.store.reopen().and_then(|()| self.store.writable()) {
                    Ok(()) => self.recover()?,
                    Err(e) => debug!(error = %format!("{e:#}"), "the store still cannot record"),
                }
            }
        }
        Ok(true)
    }

    /// The store records again: a new core from what it holds, and every resource probed.
    fn recover(&mut self) -> anyhow::Result<()> {
        let boot = boot_from(
            &self.store,
            Arc::clone(self.core.file_config()),
            self.core.node().to_owned(),
            self.health_monitors.clone(),
            self.clock.now(),
        )?;
        self.core = Core::new(boot)?;
        let now = self.clock.now();
        let was = self.unrecorded.take();
        let r = self.core.join(now, &mut self.store);
        let effects = self.recorded(r)?;
        if self.unrecorded.is_some() {
            // Failed again at once: still held, since the first failure.
            self.unrecorded = was;
            return Ok(());
        }
        info!("the store records again: state read back, every resource probed");
        let r = self.carry_out(effects).map(|()| Vec::new());
        self.recorded(r)?;
        Ok(())
    }

    fn executor(&self) -> Executor {
        Executor {
            ocf_root: Arc::clone(&self.ocf_root),
            supervisor: self.supervisor.clone(),
            node: self.core.node().to_owned(),
            agent_env: Arc::clone(&self.agent_env),
            copy_number: self.core.config().node_index(self.core.node()).unwrap_or(0),
        }
    }

    /// Answers a request of the control handle. Only a store that cannot record stops the
    /// daemon; every other refusal is the requester's answer.
    async fn control(&mut self, req: Request) -> anyhow::Result<Vec<Effect>> {
        let now = self.clock.now();
        match req {
            Request::Admin { cmd, reply } => {
                let (r, effects) = split(self.core.admin(cmd, now, &mut self.store));
                let _ = reply.send(r);
                Ok(effects)
            }
            Request::Reload { reply } => {
                let r = self.reload().await.map_err(ControlError::Config);
                if let Err(e) = &r {
                    error!(error = %e, "reload refused; nothing changed");
                }
                let _ = reply.send(r);
                Ok(Vec::new())
            }
            Request::PromotionScore {
                resource,
                node,
                score,
                reply,
            } => {
                let (r, effects) =
                    split(
                        self.core
                            .promotion_score(resource, node, score, now, &mut self.store),
                    );
                let _ = reply.send(r);
                Ok(effects)
            }
            Request::Status { reply } => {
                let _ = reply.send(self.core.view(now));
                Ok(Vec::new())
            }
            Request::History {
                resource,
                limit,
                reply,
            } => {
                let r = match resource.as_deref() {
                    Some(r) if self.core.config().resource(r).is_none() => {
                        Err(ApplyError::UnknownResource(r.to_owned()).into())
                    }
                    _ => self
                        .store
                        .history(resource.as_deref(), limit)
                        .map_err(|e| ControlError::Store(format!("{e:#}"))),
                };
                let _ = reply.send(r);
                Ok(Vec::new())
            }
            Request::Shutdown {
                leave_running,
                reply,
            } => {
                let r = self.core.shutdown(leave_running, now, &mut self.store);
                let _ = reply.send(Ok(()));
                r
            }
        }
    }

    /// Applies the configuration file to the running daemon (`warden reload`, SIGHUP) without
    /// dropping a connection: peers are added, removed and updated in place (the others keep
    /// their health), listeners started, stopped or restarted on the socket they have (sessions
    /// they accepted go on); resources, constraints and cluster options as
    /// [`Core::reload`] says. A file with errors changes nothing.
    async fn reload(&mut self) -> Result<Vec<String>, String> {
        let mut loaded = crate::config::load(&self.config_path).map_err(|e| format!("{e:#}"))?;
        loaded.engine = with_reloadable(loaded.engine, &self.ocf_root).await;
        // Checked before anything changes: a file this node cannot run changes nothing.
        let node = self.core.node().to_owned();
        if loaded.engine.node_index(&node).is_none() {
            return Err(format!(
                "this node ({node}) is not in the file any more; restart the daemon with --node"
            ));
        }
        pick_node(&loaded.engine, Some(&node)).map_err(|e| format!("{e:#}"))?;
        let (mut changes, follows) = apply_serving(
            &self.checker,
            &mut self.listeners,
            &self.proxy_stats,
            &self.data_dir,
            &loaded,
        )?;
        self.follows = follows;
        let (more, effects) = self
            .core
            .reload(
                &loaded.engine,
                &loaded.health_monitors,
                self.clock.now(),
                &mut self.store,
            )
            .map_err(|e| format!("{e:#}"))?;
        self.health_monitors = loaded.health_monitors.clone();
        changes.extend(more);
        if let Err(e) = self.carry_out(effects) {
            return Err(format!("{e:#}"));
        }
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
}

/// Applies a configuration's upstreams and listeners to what a node serves, without dropping
/// a connection: peers are added, removed and updated in place (the others keep their
/// health), listeners started, stopped or restarted on the socket they have (sessions they
/// accepted go on). Returns what changed and the upstreams that follow a resource. The
/// daemon's reload and a cluster node's configuration changes share it.
pub(crate) fn apply_serving(
    checker: &crate::check::runner::Checker,
    listeners: &mut HashMap<String, crate::proxy::Running>,
    proxy_stats: &crate::proxy::stats::Registry,
    data_dir: &Path,
    loaded: &crate::config::Loaded,
) -> Result<(Vec<String>, Vec<crate::follow::Follow>), String> {
    let mut changes = Vec::new();
    let followed: std::collections::HashSet<&str> =
        loaded.follows.iter().map(|f| f.upstream.as_str()).collect();
    for u in &loaded.upstreams {
        if !checker.has_upstream(&u.name) {
            checker.add_upstream(u.clone()).map_err(|e| e.to_string())?;
            changes.push(format!("upstream {}: new", u.name));
            continue;
        }
        let c = checker
            .reconcile(u, !followed.contains(u.name.as_str()))
            .map_err(|e| e.to_string())?;
        changes.extend(c);
    }
    let gone_upstreams: Vec<String> = checker
        .upstream_names()
        .into_iter()
        .filter(|name| !loaded.upstreams.iter().any(|u| &u.name == name))
        .collect();
    let new_follows = loaded
        .follows
        .iter()
        .filter(|f| checker.has_upstream(&f.upstream))
        .cloned()
        .collect();
    for spec in &loaded.listeners {
        match listeners.get(&spec.name) {
            Some(r) if r.spec == *spec => {}
            Some(r) if r.spec.listen == spec.listen => {
                // Same address: same socket, new rules; no connection is refused meanwhile.
                let socket = Arc::clone(&r.socket);
                r.stop();
                let running = crate::proxy::spawn(
                    spec.clone(),
                    socket,
                    checker.clone(),
                    proxy_stats.of(&spec.name),
                );
                listeners.insert(spec.name.clone(), running);
                changes.push(format!("listener {}: updated", spec.name));
            }
            old => {
                let running = start_listener(spec, data_dir, checker, proxy_stats)
                    .map_err(|e| format!("{e:#}"))?;
                if let Some(old) = old {
                    old.stop();
                }
                let what = if listeners.contains_key(&spec.name) {
                    "moved"
                } else {
                    "started"
                };
                changes.push(format!("listener {}: {what}", spec.name));
                listeners.insert(spec.name.clone(), running);
            }
        }
    }
    let gone: Vec<String> = listeners
        .keys()
        .filter(|n| !loaded.listeners.iter().any(|l| &l.name == *n))
        .cloned()
        .collect();
    for name in gone {
        if let Some(r) = listeners.remove(&name) {
            r.stop();
            proxy_stats.remove(&name);
            let _ = std::fs::remove_file(data_dir.join(format!("listener-{name}.addr")));
            changes.push(format!("listener {name}: stopped"));
        }
    }
    for name in gone_upstreams {
        checker.remove_upstream(&name).map_err(|e| e.to_string())?;
        changes.push(format!("upstream {name}: removed"));
    }
    Ok((changes, new_follows))
}

/// A reply and the effects to carry out: a refusal has none.
fn split(r: Result<Vec<Effect>, ControlError>) -> (Result<(), ControlError>, Vec<Effect>) {
    match r {
        Ok(effects) => (Ok(()), effects),
        Err(e) => (Err(e), Vec::new()),
    }
}

/// What the core needs of an agent's result.
fn outcome(r: AgentResult) -> OpOutcome {
    OpOutcome {
        rc: r.rc,
        exit_reason: r.exit_reason,
        duration: r.duration,
        status: r.status,
    }
}
