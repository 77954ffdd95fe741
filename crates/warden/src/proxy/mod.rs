//! The failover proxy: a listener bound to an upstream sends each client
//! connection (TCP) or request (HTTP, see [`http`]) to the peer its balancer picks: a routable
//! primary, or a backup when no primary can take it, failing back per policy. A connect that
//! fails moves on to the next peer within the same client connection, before any client byte
//! is lost, and counts at once against the peer's health. Sessions of a peer that goes DOWN
//! can be closed (`shutdown_sessions`) so long-lived clients reconnect to the new primary, and
//! sessions on backups on failback (`shutdown_backup_sessions`).

pub mod access;
pub mod balance;
pub mod h1;
pub mod http;
mod relay;
pub mod stats;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, broadcast};
use tracing::{debug, error, info, warn};
use warden_engine::health::PeerState;

use crate::check::runner::Checker;
use crate::check::{CheckError, Peer};
use balance::{Balancer, Failback, PeerView, Policy};

/// What a listener speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Protocol {
    /// Bytes both ways, one peer per client connection.
    #[default]
    Tcp,
    /// HTTP/1.1: one peer per request, keep-alive to clients, pooled upstream connections.
    Http,
}

/// A `[[listener]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenerSpec {
    pub name: String,
    pub listen: SocketAddr,
    pub upstream: String,
    pub protocol: Protocol,
    pub policy: Policy,
    /// How long one connect attempt to a peer may take before the next peer is tried.
    pub connect_timeout: Duration,
    /// Close the client sessions of a peer that goes DOWN.
    pub shutdown_sessions: bool,
    /// Close the client sessions on backups when traffic fails back to a primary.
    pub shutdown_backup_sessions: bool,
    /// HTTP: how long a peer may take to answer a request before an idempotent request is
    /// retried on the next peer (and others fail with 504).
    pub upstream_timeout: Duration,
    /// HTTP: add `X-Forwarded-For` (and `X-Forwarded-Proto`).
    pub forwarded_for: bool,
    /// HTTP: clients whose `Forwarded` and `X-Forwarded-*` fields pass on (other proxies in
    /// front of this one); everyone else's are dropped.
    pub trusted_proxies: Vec<crate::net::Cidr>,
    /// HTTP: how long an idle client connection is kept open.
    pub client_keepalive: Duration,
    /// HTTP: how long an idle pooled connection to a peer is kept open.
    pub upstream_keepalive: Duration,
    /// A TCP session (or an HTTP connection turned tunnel) through which nothing has moved
    /// for this long is closed; `None`: never.
    pub idle_timeout: Option<Duration>,
    /// Client connections served at once; more wait in the kernel's accept queue.
    pub max_connections: u32,
    /// HTTP: a request that fails on a peer (and was answered by another) also counts as a
    /// failed health check of it (HAProxy's `observe layer7`); off, only connects count.
    pub observe_requests: bool,
    /// HTTP: how long a client may take to send a request head once it started one, to send
    /// each part of a body, and to take each part of a response (HAProxy's `timeout client`,
    /// nginx's `client_header_timeout`/`client_body_timeout`/`send_timeout`).
    pub client_timeout: Duration,
    /// HTTP: the largest request body taken (413 above it, as nginx's
    /// `client_max_body_size`); `None`: any size (bodies stream through).
    pub max_request_body: Option<u64>,
    /// Where each request (HTTP) or session (TCP) is logged; `None`: nowhere.
    pub access_log: Option<access::Spec>,
}

impl ListenerSpec {
    /// A TCP listener with the defaults.
    pub fn tcp(name: &str, listen: SocketAddr, upstream: &str) -> ListenerSpec {
        ListenerSpec {
            name: name.to_owned(),
            listen,
            upstream: upstream.to_owned(),
            protocol: Protocol::Tcp,
            policy: Policy::default(),
            connect_timeout: Duration::from_secs(1),
            shutdown_sessions: false,
            shutdown_backup_sessions: false,
            upstream_timeout: Duration::from_secs(60),
            forwarded_for: true,
            trusted_proxies: Vec::new(),
            client_keepalive: Duration::from_secs(75),
            upstream_keepalive: Duration::from_secs(60),
            idle_timeout: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            observe_requests: false,
            client_timeout: Duration::from_secs(30),
            max_request_body: None,
            access_log: None,
        }
    }
}

/// One open client session, so it can be closed from outside.
#[derive(Debug)]
struct Session {
    addr: String,
    backup: bool,
    kill: Arc<Notify>,
}

#[derive(Debug, Default)]
struct Sessions {
    next: u64,
    open: HashMap<u64, Session>,
}

/// Client connections a listener serves at once by default.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 4096;

/// A listener's shared state: its spec, the health it routes by, its balancer and its open
/// sessions.
#[derive(Clone, Debug)]
pub struct Listener {
    pub spec: Arc<ListenerSpec>,
    checker: Checker,
    balancer: Arc<Mutex<Balancer>>,
    sessions: Arc<Mutex<Sessions>>,
    /// The peers as last derived from the checker, with the checker's generation then.
    views: Arc<Mutex<(u64, Views)>>,
    /// What it did, for `/metrics`.
    stats: Arc<stats::Stats>,
    /// Its `max_connections`, one permit per client connection.
    slots: Arc<tokio::sync::Semaphore>,
    /// Its access log, when it has one (and it could be opened).
    access: Option<Arc<access::Sink>>,
}

/// Client sessions open in every listener of this process (the access log's `actconn`),
/// counted by [`Counted`].
static ACTIVE: AtomicU64 = AtomicU64::new(0);

/// The upstream's peers (`peers[i]` is seen by the balancer as `views[i]`).
#[derive(Debug, Default)]
pub struct Peers {
    pub peers: Vec<Peer>,
    pub views: Vec<PeerView>,
}

pub type Views = Arc<Peers>;

/// A connection to a peer, counted by the balancer (least-conn) and registered as a session
/// while it lives.
#[derive(Debug)]
pub struct Lease {
    listener: Listener,
    id: u64,
    /// The peer's address.
    pub addr: String,
    pub backup: bool,
    /// Notified when the session must close (`shutdown_sessions`).
    pub kill: Arc<Notify>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Ok(mut b) = self.listener.balancer.lock() {
            b.closed(&self.addr);
        }
        if let Ok(mut s) = self.listener.sessions.lock() {
            s.open.remove(&self.id);
        }
    }
}

impl Listener {
    pub fn new(spec: ListenerSpec, checker: Checker, stats: Arc<stats::Stats>) -> Listener {
        let policy = spec.policy;
        let spec_slots = spec.max_connections as usize;
        let access = spec
            .access_log
            .as_ref()
            .and_then(|a| match access::open(&a.path) {
                Ok(sink) => Some(sink),
                Err(e) => {
                    error!(listener = %spec.name, path = %a.path.display(), error = %e, "cannot open the access log; the listener serves without it");
                    None
                }
            });
        Listener {
            spec: Arc::new(spec),
            checker,
            balancer: Arc::new(Mutex::new(Balancer::new(policy))),
            sessions: Arc::default(),
            views: Arc::new(Mutex::new((u64::MAX, Arc::default()))),
            stats,
            slots: Arc::new(tokio::sync::Semaphore::new(spec_slots)),
            access,
        }
    }

    /// Writes an access log line for `entry` (when the listener has a log); the session
    /// counts are filled in here.
    fn log(&self, mut entry: access::Entry<'_>) {
        let (Some(sink), Some(spec)) = (&self.access, &self.spec.access_log) else {
            return;
        };
        let upstream = self.sessions.lock().map_or(0, |s| s.open.len() as u64);
        let peer = entry.peer.map_or(0, |p| {
            self.balancer.lock().map_or(0, |b| u64::from(b.conns_to(p)))
        });
        entry.conns = [
            ACTIVE.load(Ordering::Relaxed),
            self.stats.open(),
            upstream,
            peer,
        ];
        sink.write(&entry.line(spec.format));
    }

    /// The listener writes an access log.
    fn logs(&self) -> bool {
        self.access.is_some()
    }

    /// The peers of the upstream as the balancer sees them, with their configuration; derived
    /// again only when the checker's generation moved.
    fn views(&self) -> Views {
        let generation = self.checker.generation();
        if let Ok(cache) = self.views.lock() {
            if cache.0 == generation {
                return Arc::clone(&cache.1);
            }
        }
        let (peers, views) = self.derive_views().into_iter().unzip();
        let fresh: Views = Arc::new(Peers { peers, views });
        if let Ok(mut cache) = self.views.lock() {
            *cache = (generation, Arc::clone(&fresh));
        }
        fresh
    }

    fn derive_views(&self) -> Vec<(Peer, PeerView)> {
        let Some((peers, check)) = self.checker.peers_of(&self.spec.upstream) else {
            return Vec::new();
        };
        peers
            .into_iter()
            .map(|p| {
                let view = PeerView {
                    addr: p.peer.addr.clone(),
                    backup: p.backup,
                    routable: p.routable(&check),
                    down: p.peer.down,
                    weight: p.peer.weight,
                    max_fails: p.peer.max_fails,
                    fail_timeout: p.peer.fail_timeout,
                    since: p.since.map(tokio::time::Instant::into_std),
                    risen: p.risen.map(tokio::time::Instant::into_std),
                };
                (p.peer, view)
            })
            .collect()
    }

    /// The peers to try for one new connection or request: the views, and the order to try
    /// them in (indexes into the views).
    pub fn attempts(&self) -> (Views, Vec<usize>) {
        let views = self.views();
        let now = tokio::time::Instant::now().into_std();
        let order = match self.balancer.lock() {
            Ok(mut b) => b.order_indexes(&views.views, now),
            Err(_) => Vec::new(),
        };
        (views, order)
    }

    /// A request that reached `view` failed there (closed, garbage, no answer in time) while
    /// another peer answered it: nginx's passive count, and, with `observe_requests` (HAProxy's
    /// `observe layer7`), the peer's health.
    pub fn request_failed(&self, view: &PeerView, error: CheckError) {
        if matches!(error, CheckError::Local(_)) {
            return;
        }
        if let Ok(mut b) = self.balancer.lock() {
            b.failed(view, tokio::time::Instant::now().into_std());
        }
        if self.spec.observe_requests {
            self.checker
                .report_failure(&self.spec.upstream, &view.addr, error);
        }
    }

    /// A connect to `view` failed: nginx's passive count, and the peer's health.
    pub fn failed(&self, view: &PeerView, error: CheckError) {
        self.stats.failed_attempt();
        if matches!(error, CheckError::Local(_)) {
            // This machine's lack (descriptors), not the peer's fault.
            return;
        }
        if let Ok(mut b) = self.balancer.lock() {
            b.failed(view, tokio::time::Instant::now().into_std());
        }
        self.checker
            .report_failure(&self.spec.upstream, &view.addr, error);
    }

    /// Registers a session on the peer at `addr`.
    pub fn lease(&self, addr: &str, backup: bool) -> Lease {
        let addr = addr.to_owned();
        if let Ok(mut b) = self.balancer.lock() {
            b.connected(&addr, backup);
        }
        let kill = Arc::new(Notify::new());
        let id = match self.sessions.lock() {
            Ok(mut s) => {
                s.next += 1;
                let id = s.next;
                s.open.insert(
                    id,
                    Session {
                        addr: addr.clone(),
                        backup,
                        kill: Arc::clone(&kill),
                    },
                );
                id
            }
            Err(_) => 0,
        };
        Lease {
            listener: self.clone(),
            id,
            addr,
            backup,
            kill,
        }
    }

    /// A new connection to `peer`, within `connect_timeout`, without Nagle's delay.
    async fn connect_to(&self, peer: &Peer) -> Result<TcpStream, CheckError> {
        match tokio::time::timeout(
            self.spec.connect_timeout,
            TcpStream::connect((peer.host.as_str(), peer.port)),
        )
        .await
        {
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                Ok(s)
            }
            Ok(Err(e)) => Err(CheckError::from_connect(&e)),
            Err(_) => Err(CheckError::Timeout),
        }
    }

    /// Connects to the first peer that accepts, in the balancer's order, counting the
    /// attempts that failed in `retries`.
    pub async fn connect(&self, retries: &mut u32) -> Option<(TcpStream, Lease)> {
        let (all, order) = self.attempts();
        for (peer, view) in order.into_iter().map(|i| (&all.peers[i], &all.views[i])) {
            match self.connect_to(peer).await {
                Ok(s) => {
                    let lease = self.lease(&peer.addr, view.backup);
                    return Some((s, lease));
                }
                Err(e) => {
                    debug!(listener = %self.spec.name, peer = %peer.addr, error = %e, "connect failed; trying the next peer");
                    *retries += 1;
                    // Real traffic saw it fail: that counts for its health now.
                    self.failed(view, e);
                }
            }
        }
        None
    }

    /// Closes the sessions `which` selects; returns how many.
    fn close_sessions(&self, which: impl Fn(&str, bool) -> bool) -> usize {
        let Ok(s) = self.sessions.lock() else {
            return 0;
        };
        let mut n = 0;
        for sess in s.open.values().filter(|s| which(&s.addr, s.backup)) {
            sess.kill.notify_one();
            n += 1;
        }
        n
    }

    /// Follows the upstream's health: closes sessions of a peer that goes DOWN
    /// (`shutdown_sessions`) and sessions on backups when traffic fails back to a primary
    /// (`shutdown_backup_sessions`, after `preempt_delay` when there is one).
    async fn watch(self) {
        let mut events = self.checker.events.subscribe();
        loop {
            let ev = match events.recv().await {
                Ok(ev) => ev,
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            };
            if ev.upstream != self.spec.upstream {
                continue;
            }
            // HTTP: requests in flight to a peer that turned DOWN are tried again elsewhere
            // (idempotent ones; see `http`), whatever shutdown_sessions says.
            let close_down = self.spec.shutdown_sessions || self.spec.protocol == Protocol::Http;
            if ev.to == PeerState::Down && ev.backup.is_none() && close_down {
                let n = self.close_sessions(|addr, _| addr == ev.peer);
                if n > 0 {
                    info!(listener = %self.spec.name, peer = %ev.peer, sessions = n, "peer is down: its sessions are closed");
                }
            }
            // A primary turned up, or a peer became the primary (its resource moved).
            let primary_up = (ev.to == PeerState::Up && ev.backup.is_none()
                || ev.backup == Some(false))
                && self
                    .views()
                    .views
                    .iter()
                    .any(|v| v.addr == ev.peer && !v.backup);
            if primary_up && self.spec.shutdown_backup_sessions {
                let wait = match self.spec.policy.failback {
                    Failback::Preempt => Duration::ZERO,
                    Failback::PreemptDelay(d) => d,
                    Failback::NoPreempt => continue,
                };
                let me = self.clone();
                let peer = ev.peer.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(wait).await;
                    let views = me.views();
                    let still = views
                        .views
                        .iter()
                        .any(|v| v.addr == peer && v.routable && !v.backup);
                    if still {
                        // Backups as they are now: a former primary may be one.
                        let n = me.close_sessions(|addr, _| {
                            views.views.iter().any(|v| v.addr == addr && v.backup)
                        });
                        if n > 0 {
                            info!(listener = %me.spec.name, peer = %peer, sessions = n, "failback to the primary: sessions on backups are closed");
                        }
                    }
                });
            }
        }
    }
}

/// Accepts and serves connections until the daemon exits, per the listener's protocol.
pub async fn serve(
    spec: ListenerSpec,
    listener: TcpListener,
    checker: Checker,
    stats: Arc<stats::Stats>,
) {
    let _running = match listener.into_std() {
        Ok(socket) => spawn(spec, Arc::new(socket), checker, stats),
        Err(e) => {
            warn!(listener = %spec.name, error = %e, "cannot serve the listener");
            return;
        }
    };
    std::future::pending::<()>().await;
}

/// A listener at work: its accept loops and its health watcher. Stopping it (a reload) stops
/// them; the sessions it accepted go on until they end.
#[derive(Debug)]
pub struct Running {
    pub spec: ListenerSpec,
    /// The bound socket (each proxy thread accepts on a duplicate of it), kept so a reload
    /// that keeps the address keeps the socket.
    pub socket: Arc<std::net::TcpListener>,
    tasks: Vec<tokio::task::AbortHandle>,
}

impl Running {
    pub fn stop(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Drop for Running {
    /// A listener nobody holds stops accepting (its accept loops live on the proxy threads,
    /// not on the runtime that started them).
    fn drop(&mut self) {
        self.stop();
    }
}

/// The proxy's threads, each with a runtime of its own (as HAProxy's threads and nginx's
/// workers: a connection lives on the thread that accepted it, nothing is stolen between
/// threads, so no thread wakes another per request). One per core by default;
/// `WARDEN_PROXY_THREADS=N` chooses, 0 for none (sessions then run on the caller's runtime).
fn proxy_threads() -> &'static [ProxyThread] {
    static THREADS: std::sync::OnceLock<Vec<ProxyThread>> = std::sync::OnceLock::new();
    THREADS.get_or_init(|| {
        let n = std::env::var("WARDEN_PROXY_THREADS")
            .ok()
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(64)));
        (0..n)
            .filter_map(|i| {
                let (tx, rx) = std::sync::mpsc::channel();
                let thread = std::thread::Builder::new()
                    .name(format!("warden-proxy-{i}"))
                    .spawn(move || {
                        match tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                        {
                            Ok(rt) => {
                                let _ = tx.send(Some(rt.handle().clone()));
                                rt.block_on(std::future::pending::<()>());
                            }
                            Err(e) => {
                                warn!(error = %e, "cannot start a proxy thread");
                                let _ = tx.send(None);
                            }
                        }
                    });
                match thread {
                    Ok(_) => rx.recv().ok().flatten().map(|handle| ProxyThread {
                        handle,
                        sessions: AtomicUsize::new(0),
                    }),
                    Err(e) => {
                        warn!(error = %e, "cannot start a proxy thread");
                        None
                    }
                }
            })
            .collect()
    })
}

/// A proxy thread: its runtime, and how many client sessions it serves now.
#[derive(Debug)]
struct ProxyThread {
    handle: tokio::runtime::Handle,
    sessions: AtomicUsize,
}

/// One client session counted on its proxy thread (and in [`ACTIVE`]) while it lives, with its
/// place under the listener's `max_connections` and its descriptors from the daemon's budget.
#[derive(Debug)]
struct Counted {
    thread: Option<&'static AtomicUsize>,
    _places: (OwnedSemaphorePermit, OwnedSemaphorePermit),
}

impl Counted {
    fn on(thread: Option<usize>, places: (OwnedSemaphorePermit, OwnedSemaphorePermit)) -> Counted {
        let n = thread
            .and_then(|t| proxy_threads().get(t))
            .map(|t| &t.sessions);
        if let Some(n) = n {
            n.fetch_add(1, Ordering::Relaxed);
        }
        ACTIVE.fetch_add(1, Ordering::Relaxed);
        Counted {
            thread: n,
            _places: places,
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        if let Some(n) = self.thread {
            n.fetch_sub(1, Ordering::Relaxed);
        }
        ACTIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The proxy thread a connection accepted on thread `me` goes to: `me`, unless another thread
/// serves at least two sessions fewer (as HAProxy hands a connection to its least loaded
/// thread; the kernel wakes whichever thread it likes for an accept).
fn fewest_sessions(me: usize) -> usize {
    let threads = proxy_threads();
    let load = |i: usize| threads[i].sessions.load(Ordering::Relaxed);
    let least = (0..threads.len()).min_by_key(|&i| load(i)).unwrap_or(me);
    if load(least) + 1 < load(me) {
        least
    } else {
        me
    }
}

/// Starts serving `socket` per `spec`: an accept loop on each proxy thread, on a duplicate of
/// the socket; what it does is counted in `stats`.
pub fn spawn(
    spec: ListenerSpec,
    socket: Arc<std::net::TcpListener>,
    checker: Checker,
    stats: Arc<stats::Stats>,
) -> Running {
    let l = Listener::new(spec.clone(), checker, stats);
    let mut tasks = vec![tokio::spawn(l.clone().watch()).abort_handle()];
    // Idle upstream connections (HTTP) are kept per thread, as its sockets are.
    let pools: Arc<Vec<Arc<http::Pool>>> = Arc::new(
        (0..proxy_threads().len().max(1))
            .map(|_| Arc::default())
            .collect(),
    );
    let http = spec.protocol == Protocol::Http;
    for (i, thread) in proxy_threads().iter().enumerate() {
        match socket.try_clone() {
            Ok(dup) => tasks.push(
                thread
                    .handle
                    .spawn(accept_loop(l.clone(), dup, Some(i), Arc::clone(&pools)))
                    .abort_handle(),
            ),
            Err(e) => {
                warn!(listener = %spec.name, error = %e, "cannot share the listener with a proxy thread");
                continue;
            }
        }
        if http {
            let sweep = sweep_loop(l.clone(), Arc::clone(&pools[i]));
            tasks.push(thread.handle.spawn(sweep).abort_handle());
        }
    }
    if tasks.len() == 1 {
        match socket.try_clone() {
            Ok(dup) => {
                if http {
                    let sweep = sweep_loop(l.clone(), Arc::clone(&pools[0]));
                    tasks.push(tokio::spawn(sweep).abort_handle());
                }
                tasks.push(tokio::spawn(accept_loop(l, dup, None, pools)).abort_handle());
            }
            Err(e) => warn!(listener = %spec.name, error = %e, "cannot accept on the listener"),
        }
    }
    Running {
        spec,
        socket,
        tasks,
    }
}

/// Closes a thread's idle upstream connections (HTTP) once idle `upstream_keepalive`, those
/// their peer closed, and those to peers the upstream no longer has (a reload removed them).
async fn sweep_loop(l: Listener, pool: Arc<http::Pool>) {
    let every =
        (l.spec.upstream_keepalive / 2).clamp(Duration::from_millis(100), Duration::from_secs(1));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let views = l.views();
        let n = pool.sweep(l.spec.upstream_keepalive, |addr| {
            views.peers.iter().any(|p| p.addr == addr)
        });
        if n > 0 {
            debug!(listener = %l.spec.name, connections = n, "idle upstream connections closed");
        }
    }
}

/// Accepts connections on proxy thread `me` (or the caller's runtime, `None`) and starts a
/// session for each, on the thread with the fewest.
async fn accept_loop(
    l: Listener,
    sock: std::net::TcpListener,
    me: Option<usize>,
    pools: Arc<Vec<Arc<http::Pool>>>,
) {
    let sock = match TcpListener::from_std(sock) {
        Ok(s) => s,
        Err(e) => {
            warn!(listener = %l.spec.name, error = %e, "cannot accept on the listener");
            return;
        }
    };
    let mut last_full: Option<Instant> = None;
    loop {
        // A place for the connection before taking it: the listener's own cap, then two
        // descriptors (client and peer) from the daemon's budget. Until then clients wait in
        // the kernel's queue, and agents keep the descriptors they need.
        // Said at most every 10 s.
        let mut full = |what: &str| {
            if last_full.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                warn!(listener = %l.spec.name, max_connections = l.spec.max_connections, "listener {}: {what}; new clients wait", l.spec.name);
                last_full = Some(Instant::now());
            }
        };
        let Some(slot) = place(&l.slots, 1, || full("max_connections reached")).await else {
            return;
        };
        let budget = &crate::fds::budget().listeners;
        let Some(fds) = place(budget, 2, || {
            full("the daemon's descriptor budget for listeners is used (raise the hard RLIMIT_NOFILE: LimitNOFILE= in systemd)")
        })
        .await
        else {
            return;
        };
        let (client, from) = accept(&l, &sock).await;
        let to = me.map(fewest_sessions);
        let count = Counted::on(to, (slot, fds));
        let pool = Arc::clone(&pools[to.unwrap_or(0)]);
        if to == me {
            tokio::spawn(session(l.clone(), pool, client, from, count));
            continue;
        }
        let Some(thread) = to.and_then(|t| proxy_threads().get(t)) else {
            continue;
        };
        match client.into_std() {
            Ok(client) => {
                let l = l.clone();
                thread.handle.spawn(async move {
                    match TcpStream::from_std(client) {
                        Ok(client) => session(l, pool, client, from, count).await,
                        Err(e) => warn!(error = %e, "cannot move a connection to a proxy thread"),
                    }
                });
            }
            Err(e) => warn!(error = %e, "cannot move a connection to a proxy thread"),
        }
    }
}

/// One client connection, per the listener's protocol.
async fn session(
    l: Listener,
    pool: Arc<http::Pool>,
    client: TcpStream,
    from: SocketAddr,
    _count: Counted,
) {
    let _open = l.stats.session();
    match l.spec.protocol {
        Protocol::Tcp => tcp_session(l, client, from).await,
        Protocol::Http => http::session(l, pool, client, from).await,
    }
}

/// `n` permits of `sem`, at once or, after calling `waiting` (which says so), when they come;
/// None once the semaphore is closed.
async fn place(
    sem: &Arc<tokio::sync::Semaphore>,
    n: u32,
    waiting: impl FnOnce(),
) -> Option<OwnedSemaphorePermit> {
    if let Ok(p) = Arc::clone(sem).try_acquire_many_owned(n) {
        return Some(p);
    }
    waiting();
    Arc::clone(sem).acquire_many_owned(n).await.ok()
}

/// When an accept last failed (logged at most every 10 s).
static LAST_ACCEPT_ERROR: Mutex<Option<Instant>> = Mutex::new(None);

/// The next client connection (an accept error is logged and waited out, never fatal).
async fn accept(l: &Listener, listener: &TcpListener) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok((client, from)) => {
                let _ = client.set_nodelay(true);
                return (client, from);
            }
            Err(e) => {
                // EMFILE and the like: wait it out, and say so once in a while, not 20 times
                // a second.
                let now = Instant::now();
                let quiet = LAST_ACCEPT_ERROR
                    .lock()
                    .map(|mut t| {
                        let quiet =
                            t.is_some_and(|t| now.duration_since(t) < Duration::from_secs(10));
                        if !quiet {
                            *t = Some(now);
                        }
                        quiet
                    })
                    .unwrap_or(false);
                if !quiet {
                    warn!(listener = %l.spec.name, error = %e, "accept failed");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// A TCP session: the first peer that accepts, then bytes both ways until either side closes
/// (or the session is closed by policy).
async fn tcp_session(l: Listener, mut client: TcpStream, from: SocketAddr) {
    let (began, at) = (Instant::now(), std::time::SystemTime::now());
    let mut retries = 0;
    let entry = |peer, t_connect, bytes, term, retries| access::Entry {
        client: from,
        at,
        listener: &l.spec.name,
        upstream: &l.spec.upstream,
        peer,
        t_request: 0,
        t_connect,
        t_response: -1,
        t_total: access::ms_since(began),
        status: -1,
        bytes,
        term,
        conns: [0; 4],
        retries,
        request: None,
    };
    let Some((mut upstream, lease)) = l.connect(&mut retries).await else {
        l.stats.unserved();
        warn!(listener = %l.spec.name, upstream = %l.spec.upstream, client = %from, "no peer of upstream {} accepted the connection", l.spec.upstream);
        if l.logs() {
            l.log(entry(None, -1, 0, *b"SC", retries));
        }
        return;
    };
    let t_connect = access::ms_since(began);
    l.stats.took(&lease.addr);
    if retries > 0 {
        l.stats.failover();
    }
    debug!(listener = %l.spec.name, peer = %lease.addr, client = %from, "proxying");
    let mut moved = relay::Moved::default();
    let term = tokio::select! {
        biased;
        r = relay::relay(&mut client, &mut upstream, l.spec.idle_timeout, &mut moved) => {
            match r {
                Ok(()) => *b"--",
                Err((e, end)) => {
                    debug!(listener = %l.spec.name, peer = %lease.addr, client = %from, error = %e, "session ended");
                    match end {
                        Some(relay::End::A) => *b"CD",
                        Some(relay::End::B) => *b"SD",
                        // Idle for idle_timeout: HAProxy's client time-out.
                        None => *b"cD",
                    }
                }
            }
        }
        _ = lease.kill.notified() => {
            debug!(listener = %l.spec.name, peer = %lease.addr, client = %from, "session closed by policy");
            *b"KD"
        }
    };
    l.stats.received(moved.a_to_b);
    l.stats.sent(moved.b_to_a);
    if l.logs() {
        l.log(entry(
            Some(&lease.addr),
            t_connect,
            moved.b_to_a,
            term,
            retries,
        ));
    }
}
