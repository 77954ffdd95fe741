//! The daemon's JSON API under `/v1` (127.0.0.1 by default). Reads are open; mutations need
//! `Authorization: Bearer <token>` with the token from `<data_dir>/api.token`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use warden_engine::{AdminCommand, rc};

use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::Semaphore;
use tower_service::Service;

use crate::config::ApiSettings;
use crate::control::{Control, ControlError, ErrorKind, StatusView, UpstreamView};
use crate::wire::format_time;

#[derive(Clone, Debug)]
struct Api {
    control: Control,
    token: String,
}

/// How long a client may take to send a request head (or stay idle between requests), as
/// HAProxy's `timeout http-request`: a slow or idle client does not hold a connection slot.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may leave each part of a response untaken (nginx's `send_timeout`): a
/// client that never reads what it asked for does not hold a connection slot either. (No
/// endpoint reads a request body; one left unsent closes the connection after the answer.)
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves the API until the daemon exits: at most `settings.max_connections` connections at
/// once (more wait in the kernel's accept queue), each cut when its request head does not come
/// within [`HEADER_TIMEOUT`] or when it takes no part of a response for [`SEND_TIMEOUT`]; a request whose `Host` is not this machine's is
/// refused.
pub async fn serve(
    listener: tokio::net::TcpListener,
    control: Control,
    token: String,
    settings: ApiSettings,
    tls: Option<crate::api_tls::ApiTls>,
) {
    let app = router(control, token);
    serve_with(listener, app, settings, tls).await;
}

/// The API's routes, for `control`, mutations guarded by `token`.
pub fn router(control: Control, token: String) -> Router {
    Router::new()
        .route("/", get(|| async { page("index.html") }))
        .route(
            "/ui/{file}",
            get(|P(file): P<String>| async move { page(&file) }),
        )
        .route(
            "/v1/events",
            get(|State(api): State<Api>| async move { crate::web::events(api.control) }),
        )
        .route(
            "/v1/listeners",
            get(|State(api): State<Api>| async move { Json(api.control.listeners()) }),
        )
        .route("/v1/openapi.json", get(|| async { Json(openapi()) }))
        .route("/v1/cluster", get(cluster))
        .route("/live", get(|| async { "ok\n" }))
        .route("/ready", get(ready))
        .route("/status", get(status_page))
        .route("/metrics", get(metrics))
        .route("/v1/upstreams", get(upstreams))
        .route(
            "/v1/upstreams/{name}/peers",
            post(add_peer).delete(remove_peer),
        )
        .route("/v1/upstreams/{name}/peers/{action}", post(peer_action))
        .route("/v1/status", get(status))
        .route("/v1/reload", post(reload))
        .route("/v1/shutdown", post(shutdown))
        .route("/v1/history", get(history))
        .route(
            "/v1/resources/{id}/promotion-score",
            post(set_promotion_score).delete(delete_promotion_score),
        )
        .route("/v1/resources/{id}/move", post(move_resource))
        .route("/v1/resources/{id}/{action}", post(resource_action))
        .route("/v1/nodes/{name}/{action}", post(node_action))
        .route("/v1/tickets/{name}/{action}", post(ticket_action))
        .route(
            "/v1/nodes/{name}/attributes/{attr}",
            post(set_node_attribute).delete(delete_node_attribute),
        )
        // Errors are JSON everywhere, unknown routes and methods included.
        .fallback(|uri: axum::http::Uri| async move {
            error(
                StatusCode::NOT_FOUND,
                format!("no such endpoint: {} (docs/api.md lists them)", uri.path()),
                Some("path"),
            )
        })
        .method_not_allowed_fallback(|method: axum::http::Method| async move {
            error(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{method} is not allowed here"),
                Some("method"),
            )
        })
        .with_state(Api { control, token })
}

async fn serve_with(
    listener: tokio::net::TcpListener,
    app: Router,
    settings: ApiSettings,
    tls: Option<crate::api_tls::ApiTls>,
) {
    let hosts = Arc::new(Hosts::new(settings.hosts.clone()));
    let most = u64::from(settings.max_connections).min(crate::fds::budget().api);
    let slots = Arc::new(Semaphore::new(usize::try_from(most).unwrap_or(usize::MAX)));
    let mut last_error: Option<Instant> = None;
    loop {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let (stream, from) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors (EMFILE) or memory: wait a little, say so once in a while.
                if last_error.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    tracing::error!(error = %e, "the API cannot accept connections");
                    last_error = Some(Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let app = app.clone();
        let hosts = Arc::clone(&hosts);
        let tls = tls.clone();
        // `allow`/`deny`: every request of a refused client gets 403 (as nginx answers).
        let forbidden = settings.refuses(from.ip()).then(|| from.ip());
        tokio::spawn(async move {
            let _slot = slot;
            let svc = hyper::service::service_fn(move |req: axum::http::Request<Incoming>| {
                let refused = match forbidden {
                    Some(ip) => Some(error(
                        StatusCode::FORBIDDEN,
                        format!("{ip} may not use this API ([api] allow and deny)"),
                        Some("client"),
                    )),
                    None => hosts.refuse(req.headers()),
                };
                let app = app.clone();
                async move {
                    match refused {
                        Some(r) => Ok::<_, Infallible>(r),
                        None => {
                            let mut app = app;
                            app.call(req.map(axum::body::Body::new)).await
                        }
                    }
                }
            });
            match tls {
                // The handshake, like a request head, must come within HEADER_TIMEOUT.
                Some(t) => {
                    let handshake = t.acceptor.accept(stream);
                    if let Ok(Ok(stream)) = tokio::time::timeout(HEADER_TIMEOUT, handshake).await {
                        serve_connection(stream, svc).await;
                    }
                }
                None => serve_connection(stream, svc).await,
            }
        });
    }
}

/// Serves HTTP/1.1 requests on one connection (plain or TLS) until it closes.
async fn serve_connection<I, S>(io: I, svc: S)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<
            axum::http::Request<Incoming>,
            Response = Response,
            Error = Infallible,
        >,
    S::Future: Send + 'static,
{
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(SendDeadline::new(io)), svc);
    let _ = conn.await;
}

/// An API connection whose writes fail once the client has taken nothing for
/// [`SEND_TIMEOUT`].
struct SendDeadline<S> {
    io: S,
    sleep: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl<S> SendDeadline<S> {
    fn new(io: S) -> SendDeadline<S> {
        SendDeadline { io, sleep: None }
    }

    /// Passes a write's outcome on; a write still pending when the deadline passes fails.
    fn check<T>(
        &mut self,
        cx: &mut std::task::Context<'_>,
        r: std::task::Poll<std::io::Result<T>>,
    ) -> std::task::Poll<std::io::Result<T>> {
        use std::future::Future;
        use std::task::Poll;
        match r {
            Poll::Ready(r) => {
                self.sleep = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let sleep = self
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(SEND_TIMEOUT)));
                if sleep.as_mut().poll(cx).is_ready() {
                    Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the client took none of its response for 10 s",
                    )))
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for SendDeadline<S> {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for SendDeadline<S> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = std::pin::Pin::new(&mut this.io).poll_write(cx, buf);
        this.check(cx, r)
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = std::pin::Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.check(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let r = std::pin::Pin::new(&mut this.io).poll_flush(cx);
        this.check(cx, r)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let r = std::pin::Pin::new(&mut this.io).poll_shutdown(cx);
        this.check(cx, r)
    }
}

/// The names a request may carry in `Host`: IP addresses, `localhost`, this machine's host
/// name and `[api] hosts`. A page a browser loaded from another name (DNS rebinding, a name
/// that resolves to 127.0.0.1 later) cannot read the API.
#[derive(Debug)]
struct Hosts {
    names: Vec<String>,
}

impl Hosts {
    fn new(mut names: Vec<String>) -> Hosts {
        names.push("localhost".into());
        let uts = rustix::system::uname();
        if let Ok(n) = uts.nodename().to_str() {
            names.push(n.to_ascii_lowercase());
        }
        Hosts { names }
    }

    fn allows(&self, host: &str) -> bool {
        // An IPv6 literal is bracketed; anything else may end in `:PORT`.
        if let Some(rest) = host.strip_prefix('[') {
            return rest
                .split_once(']')
                .is_some_and(|(ip, _)| ip.parse::<std::net::Ipv6Addr>().is_ok());
        }
        let name = host.rsplit_once(':').map_or(host, |(n, _)| n);
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        name.parse::<std::net::Ipv4Addr>().is_ok() || self.names.contains(&name)
    }

    fn refuse(&self, headers: &HeaderMap) -> Option<Response> {
        let host = headers.get("host")?;
        let ok = host.to_str().is_ok_and(|h| self.allows(h));
        (!ok).then(|| {
            error(
                StatusCode::MISDIRECTED_REQUEST,
                format!(
                    "Host {:?} is not this machine's: use its address, or add the name to [api] hosts",
                    String::from_utf8_lossy(host.as_bytes())
                ),
                Some("host"),
            )
        })
    }
}

/// Query parameters whose rejection (a missing or mistyped one) is a JSON error like every
/// other, with `field: query`.
#[derive(Debug)]
struct Q<T>(T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for Q<T> {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Response> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(v)) => Ok(Q(v)),
            Err(e) => Err(error(StatusCode::BAD_REQUEST, e.body_text(), Some("query"))),
        }
    }
}

/// Path parameters, rejected (not UTF-8, say) as JSON with `field: path`.
#[derive(Debug)]
struct P<T>(T);

impl<T: serde::de::DeserializeOwned + Send, S: Send + Sync> axum::extract::FromRequestParts<S>
    for P<T>
{
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Response> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(v)) => Ok(P(v)),
            Err(e) => Err(error(StatusCode::BAD_REQUEST, e.body_text(), Some("path"))),
        }
    }
}

/// The OpenAPI document of this API, with this build's version.
fn openapi() -> Value {
    let mut doc: Value =
        serde_json::from_str(include_str!("openapi.json")).unwrap_or_else(|_| json!({}));
    doc["info"]["version"] = json!(env!("CARGO_PKG_VERSION"));
    doc
}

/// A file of the web console, or a JSON 404.
fn page(file: &str) -> Response {
    crate::web::asset(file).unwrap_or_else(|| {
        error(
            StatusCode::NOT_FOUND,
            format!("no such file: /ui/{file}"),
            Some("path"),
        )
    })
}

fn error(status: StatusCode, message: impl Into<String>, field: Option<&str>) -> Response {
    let mut body = json!({ "error": message.into() });
    if let Some(f) = field {
        body["field"] = json!(f);
    }
    (status, Json(body)).into_response()
}

/// The refusal of a request without the right token, if it lacks it.
fn unauthorized(api: &Api, headers: &HeaderMap) -> Option<Response> {
    unauthorized_for(api, headers, None)
}

/// Like [`unauthorized`]; with `resource`, that resource's own token (the one its agents get)
/// is good too.
fn unauthorized_for(api: &Api, headers: &HeaderMap, resource: Option<&str>) -> Option<Response> {
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let scoped = resource.map(|r| crate::exec::executor::resource_token(&api.token, r));
    let good = given.is_some_and(|t| {
        same_secret(t.as_bytes(), api.token.as_bytes())
            | scoped
                .as_ref()
                .is_some_and(|s| same_secret(t.as_bytes(), s.as_bytes()))
    });
    if good {
        None
    } else {
        Some(error(
            StatusCode::UNAUTHORIZED,
            "a mutation needs `Authorization: Bearer <token>` (the token is in <data_dir>/api.token)",
            Some("authorization"),
        ))
    }
}

/// Whether two secrets are equal, in a time that depends on their lengths only (not on where
/// they first differ), so the token cannot be guessed byte by byte from response times.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0xff);
    }
    std::hint::black_box(diff) == 0
}

/// A refusal of the daemon as an HTTP answer: the status from the error's kind, the field
/// from the error itself.
fn refused(e: ControlError) -> Response {
    let status = match e.kind() {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error(status, e.to_string(), e.field())
}

fn ok(r: Result<(), ControlError>) -> Response {
    match r {
        Ok(()) => Json(json!({ "ok": true })).into_response(),
        Err(e) => refused(e),
    }
}

/// The health-check status page, in lua-resty-upstream-healthcheck's text format.
async fn status_page(State(api): State<Api>) -> Response {
    let text = api.control.status_page();
    ([("content-type", "text/plain; charset=utf-8")], text).into_response()
}

async fn metrics(State(api): State<Api>) -> Response {
    let mut text = api.control.metrics();
    if let Ok(view) = api.control.status().await {
        text.push_str(&resource_metrics(&status_json(&view)));
    }
    text.push_str(&crate::metrics::global().render());
    text.push_str(&process_metrics());
    ([("content-type", "text/plain; version=0.0.4")], text).into_response()
}

/// The resources in Prometheus' text format, from the status: a state per resource (one
/// series of each name at 1, as an enum gauge), where each copy runs with its role, and fail
/// counts per node.
pub fn resource_metrics(status: &Value) -> String {
    use crate::check::runner::escape;
    use std::fmt::Write as _;
    let mut out = String::new();
    let resources = status["resources"].as_array().cloned().unwrap_or_default();
    out.push_str("# HELP warden_resource_state Each resource's state: 1 for the one it is in.\n# TYPE warden_resource_state gauge\n");
    for r in &resources {
        let id = escape(r["id"].as_str().unwrap_or_default());
        let now = r["state"].as_str().unwrap_or_default();
        for state in ["started", "stopped", "failed", "blocked"] {
            let _ = writeln!(
                out,
                "warden_resource_state{{resource=\"{id}\",state=\"{state}\"}} {}",
                u8::from(state == now)
            );
        }
    }
    out.push_str("# HELP warden_resource_running A copy of a resource runs on a node, in a role.\n# TYPE warden_resource_running gauge\n");
    for r in &resources {
        let id = escape(r["id"].as_str().unwrap_or_default());
        for i in r["instances"].as_array().into_iter().flatten() {
            let _ = writeln!(
                out,
                "warden_resource_running{{resource=\"{id}\",node=\"{}\",role=\"{}\"}} 1",
                escape(i["node"].as_str().unwrap_or_default()),
                escape(i["role"].as_str().unwrap_or_default())
            );
        }
    }
    out.push_str("# HELP warden_resource_fail_count Failures of a resource on a node that count (failure_timeout, cleanup).\n# TYPE warden_resource_fail_count gauge\n");
    for r in &resources {
        let id = escape(r["id"].as_str().unwrap_or_default());
        for (node, n) in r["fail_counts"].as_object().into_iter().flatten() {
            let _ = writeln!(
                out,
                "warden_resource_fail_count{{resource=\"{id}\",node=\"{}\"}} {}",
                escape(node),
                n.as_u64().unwrap_or(0)
            );
        }
    }
    out.push_str("# HELP warden_node_state Each node's state: 1 for the one it is in.\n# TYPE warden_node_state gauge\n");
    for n in status["nodes"].as_array().into_iter().flatten() {
        let now = crate::web::node_word(n);
        for state in ["online", "standby", "offline", "unclean"] {
            let _ = writeln!(
                out,
                "warden_node_state{{node=\"{}\",state=\"{state}\"}} {}",
                escape(n["name"].as_str().unwrap_or_default()),
                u8::from(state == now)
            );
        }
    }
    // A cluster node's link: which node coordinates, whether this one holds its lease and
    // reaches etcd (absent on one machine).
    if let Some(lease) = status["lease_valid"].as_bool() {
        let me = status["node"].as_str().unwrap_or_default();
        let coordinator = status["coordinator"].as_str();
        let _ = writeln!(
            out,
            "# HELP warden_cluster_lease_valid Whether this node holds a valid etcd lease.\n# TYPE warden_cluster_lease_valid gauge\nwarden_cluster_lease_valid{{node=\"{}\"}} {}",
            escape(me),
            u8::from(lease)
        );
        let _ = writeln!(
            out,
            "# HELP warden_cluster_etcd_connected Whether etcd answers this node.\n# TYPE warden_cluster_etcd_connected gauge\nwarden_cluster_etcd_connected{{node=\"{}\"}} {}",
            escape(me),
            u8::from(status["etcd_connected"] == true)
        );
        let _ = writeln!(
            out,
            "# HELP warden_cluster_is_coordinator Whether this node coordinates the cluster.\n# TYPE warden_cluster_is_coordinator gauge\nwarden_cluster_is_coordinator{{node=\"{}\"}} {}",
            escape(me),
            u8::from(coordinator == Some(me))
        );
        if let Some(c) = coordinator {
            let _ = writeln!(
                out,
                "# HELP warden_cluster_coordinator_info The node that coordinates the cluster, as this node sees it.\n# TYPE warden_cluster_coordinator_info gauge\nwarden_cluster_coordinator_info{{node=\"{}\"}} 1",
                escape(c)
            );
        }
    }
    out.push_str("# HELP warden_resource_start_delayed A crash loop delays the resource's next start.\n# TYPE warden_resource_start_delayed gauge\n");
    for r in &resources {
        let _ = writeln!(
            out,
            "warden_resource_start_delayed{{resource=\"{}\"}} {}",
            escape(r["id"].as_str().unwrap_or_default()),
            u8::from(!r["start_delayed_until"].is_null())
        );
    }
    out
}

/// The daemon's own process, with the names of Prometheus' client libraries' process
/// collector (from /proc/self).
pub fn process_metrics() -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which may hold spaces: ") state ppid ...".
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let field = |n: usize| -> Option<f64> { fields.get(n - 3)?.parse().ok() };
    let tick = rustix::param::clock_ticks_per_second().max(1) as f64;
    let page = rustix::param::page_size() as f64;
    let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse::<f64>().ok())
    });
    let mut gauge = |name: &str, kind: &str, help: &str, v: Option<f64>| {
        if let Some(v) = v {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        }
    };
    gauge(
        "process_cpu_seconds_total",
        "counter",
        "User and system CPU time spent, in seconds.",
        field(14).zip(field(15)).map(|(u, s)| (u + s) / tick),
    );
    gauge(
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory size in bytes.",
        field(24).map(|p| p * page),
    );
    gauge(
        "process_virtual_memory_bytes",
        "gauge",
        "Virtual memory size in bytes.",
        field(23),
    );
    gauge(
        "process_start_time_seconds",
        "gauge",
        "Start time of the process since the Unix epoch, in seconds.",
        field(22).zip(boot).map(|(t, b)| b + t / tick),
    );
    gauge(
        "process_threads",
        "gauge",
        "Threads in the process.",
        field(20),
    );
    let fds = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count() as f64)
        .ok();
    gauge("process_open_fds", "gauge", "Open file descriptors.", fds);
    let max = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3)?.parse::<f64>().ok())
        });
    gauge(
        "process_max_fds",
        "gauge",
        "Maximum number of open file descriptors.",
        max,
    );
    out
}

async fn upstreams(State(api): State<Api>) -> Response {
    Json(upstreams_json(&api.control.upstreams())).into_response()
}

#[derive(Debug, Deserialize)]
struct PeerQuery {
    addr: Option<String>,
    backup: Option<bool>,
}

/// Adds a peer to a running upstream (until the next restart: put it in the configuration to
/// keep it).
async fn add_peer(
    State(api): State<Api>,
    headers: HeaderMap,
    P(name): P<String>,
    Q(q): Q<PeerQuery>,
) -> Response {
    if let Some(r) = unauthorized(&api, &headers) {
        return r;
    }
    let Some(addr) = q.addr else {
        return error(
            StatusCode::BAD_REQUEST,
            "adding a peer needs ?addr=HOST:PORT",
            Some("addr"),
        );
    };
    peer_change(
        api.control
            .add_peer(&name, &addr, q.backup.unwrap_or(false)),
    )
}

async fn remove_peer(
    State(api): State<Api>,
    headers: HeaderMap,
    P(name): P<String>,
    Q(q): Q<PeerQuery>,
) -> Response {
    if let Some(r) = unauthorized(&api, &headers) {
        return r;
    }
    let Some(addr) = q.addr else {
        return error(
            StatusCode::BAD_REQUEST,
            "removing a peer needs ?addr=HOST:PORT",
            Some("addr"),
        );
    };
    peer_change(api.control.remove_peer(&name, &addr))
}

/// Drains a peer (no new traffic) or takes it back: `drain` or `undrain`, `?addr=HOST:PORT`.
async fn peer_action(
    State(api): State<Api>,
    headers: HeaderMap,
    P((name, action)): P<(String, String)>,
    Q(q): Q<PeerQuery>,
) -> Response {
    if let Some(r) = unauthorized(&api, &headers) {
        return r;
    }
    let drained = match action.as_str() {
        "drain" => true,
        "undrain" => false,
        other => {
            return error(
                StatusCode::NOT_FOUND,
                format!("unknown peer action {other:?} (allowed: drain, undrain)"),
                Some("action"),
            );
        }
    };
    let Some(addr) = q.addr else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("{action} needs ?addr=HOST:PORT"),
            Some("addr"),
        );
    };
    peer_change(api.control.drain_peer(&name, &addr, drained))
}

fn peer_change(r: Result<(), crate::check::runner::PeerChangeError>) -> Response {
    use crate::check::runner::PeerChangeError as E;
    match r {
        Ok(()) => Json(json!({ "ok": true })).into_response(),
        Err(e @ E::UnknownUpstream(_)) => {
            error(StatusCode::NOT_FOUND, e.to_string(), Some("upstream"))
        }
        Err(e @ E::NoSuchPeer { .. }) => error(StatusCode::NOT_FOUND, e.to_string(), Some("addr")),
        Err(e @ E::UpstreamExists(_)) => {
            error(StatusCode::CONFLICT, e.to_string(), Some("upstream"))
        }
        Err(e @ E::Exists { .. }) => error(StatusCode::CONFLICT, e.to_string(), Some("addr")),
        Err(e @ E::BadAddress(_)) => error(StatusCode::BAD_REQUEST, e.to_string(), Some("addr")),
    }
}

/// Every upstream's version and peers (documented in docs/api.md).
pub fn upstreams_json(upstreams: &[UpstreamView]) -> Value {
    Value::Array(
        upstreams
            .iter()
            .map(|(u, spec)| {
                json!({
                    "name": u.name,
                    "version": u.version,
                    "late_checks": u.late_checks,
                    "peers": u.peers.iter().map(|p| json!({
                        "addr": p.peer.addr,
                        "role": if p.backup { "backup" } else { "primary" },
                        "state": p.state().to_string(),
                        // Whether it takes traffic now (UNKNOWN counts as up unless configured otherwise).
                        "routable": spec.as_ref().is_some_and(|s| p.routable(s)),
                        "successes": p.health.successes,
                        "failures": p.health.failures,
                        "down_by_config": p.peer.down,
                        "drained": p.drained,
                        "last_error": p.last_error,
                        "last_failure": p.last_failure.as_ref().map(|(e, t)| json!({ "error": e, "time": format_time(*t) })),
                        "last_check": p.last_check.map(format_time),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

/// Every node's upstreams and listeners: this node's now, the others' as they last published
/// them through etcd (every 2 s; docs/cluster.md). One machine: itself only.
async fn cluster(State(api): State<Api>) -> Response {
    let view = match api.control.status().await {
        Ok(v) => v,
        Err(e) => return refused(e),
    };
    let mut nodes = api
        .control
        .elsewhere()
        .lock()
        .map(|m| m.clone())
        .unwrap_or_default();
    nodes.insert(
        view.node.clone(),
        crate::cluster::health::view(&api.control),
    );
    Json(json!({ "node": view.node, "nodes": nodes })).into_response()
}

/// 200 once the daemon knows what runs here (every resource of this node probed, blocked, or
/// never looked for here) and nothing stands in its way (no warning: a store that cannot
/// record, no lease, etcd out of reach); 503 with the reasons before and while not. What a
/// load balancer or an orchestrator asks before it counts on this node.
async fn ready(State(api): State<Api>) -> Response {
    let view = match api.control.status().await {
        Ok(v) => v,
        Err(e) => return refused(e),
    };
    let mut reasons: Vec<String> = view
        .config
        .resources()
        .iter()
        .filter(|r| {
            let on = view.state.on_node(&r.id, &view.node);
            on.role == warden_engine::Role::Unknown
                && !on.blocked
                && view.config.discovers_on(&r.id, &view.node)
        })
        .map(|r| format!("resource {} is not probed yet", r.id))
        .collect();
    reasons.extend(view.warnings.iter().cloned());
    if reasons.is_empty() {
        Json(json!({ "ready": true })).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "ready": false, "reasons": reasons })),
        )
            .into_response()
    }
}

async fn status(State(api): State<Api>) -> Response {
    match api.control.status().await {
        Ok(view) => Json(status_json(&view)).into_response(),
        Err(e) => refused(e),
    }
}

/// The status as JSON (documented in docs/api.md), with the text `warden status` prints.
pub fn status_json(v: &StatusView) -> Value {
    let c = &v.config;
    let nodes: Vec<Value> = c
        .nodes()
        .iter()
        .map(|n| {
            let s = v.state.node(n).cloned().unwrap_or_default();
            json!({
                "name": n, "online": s.online, "standby": s.standby, "unclean": s.unclean,
                "attributes": warden_engine::node_attributes(c, &v.state, n),
            })
        })
        .collect();
    let resources: Vec<Value> = warden_engine::resource_status(c, &v.state, v.now)
        .iter()
        .map(|r| {
            let spec = c.resource(&r.id);
            let fail_counts: BTreeMap<&str, u32> = c
                .nodes()
                .iter()
                .filter_map(|n| {
                    let on = v.state.resource(&r.id)?.nodes.get(n)?;
                    let count = on.fail_count(&spec?.meta, v.now);
                    (count > 0).then_some((n.as_str(), count))
                })
                .collect();
            let promotion_scores: BTreeMap<&str, String> = v
                .state
                .resource(&r.id)
                .map(|rs| {
                    rs.promotion_scores
                        .iter()
                        .map(|(n, s)| (n.as_str(), s.to_string()))
                        .collect()
                })
                .unwrap_or_default();
            // What scripts read instead of the sentence: a state word, and where each copy
            // runs with its role.
            let state = if r.blocked {
                "blocked"
            } else if r.failed {
                "failed"
            } else if r.nodes.is_empty() {
                "stopped"
            } else {
                "started"
            };
            let instances: Vec<Value> = r
                .nodes
                .iter()
                .map(|n| {
                    let role = if !r.promotable {
                        "started"
                    } else if r.promoted.contains(n) {
                        "promoted"
                    } else {
                        "unpromoted"
                    };
                    json!({ "node": n, "role": role, "failed": r.failed_nodes.contains(n) })
                })
                .collect();
            let mut o = json!({
                "id": r.id, "agent": r.agent, "status": r.to_string(), "state": state,
                "instances": instances, "nodes": r.nodes,
                "failed": r.failed, "blocked": r.blocked, "flags": r.flags, "fail_counts": fail_counts,
            });
            if let Some(t) = r.start_delayed_until {
                o["start_delayed_until"] = json!(format_time(t));
            }
            // Kept for a node that shut down (`shutdown_lock`).
            if let Some(l) = v.state.shutdown_lock(&c.cluster, &r.id, v.now) {
                o["locked_to"] = json!(l.node);
            }
            // What operators set at run time (`resource disable`, `move`, `ban`).
            let overrides = v.state.resource(&r.id);
            o["target_role"] = json!(
                overrides
                    .and_then(|s| s.target_role)
                    .or(spec.map(|s| s.meta.target_role))
                    .map(|t| t.as_str())
            );
            o["moved_to"] = json!(overrides.and_then(|s| s.moved_to.as_deref()));
            o["banned"] = json!(overrides.map(|s| s.banned.iter().collect::<Vec<_>>()));
            if r.promotable {
                o["promoted"] = json!(r.promoted);
                o["promotion_scores"] = json!(promotion_scores);
            }
            o
        })
        .collect();
    let failed: Vec<Value> = warden_engine::failed_actions(c, &v.state, v.now)
        .iter()
        .map(|f| {
            json!({
                "resource": f.resource, "node": f.node, "op": f.op.to_string(), "rc": f.record.rc,
                "rc_name": rc::name(f.record.rc), "exit_reason": f.record.exit_reason,
                "time": format_time(f.record.time), "fail_count": f.fail_count,
            })
        })
        .collect();
    json!({
        "cluster": c.cluster.name,
        "node": v.node,
        "time": format_time(v.now),
        "transition_running": v.transition_running,
        "next_wakeup": v.next_wakeup.map(format_time),
        "coordinator": v.coordinator,
        "lease_valid": v.cluster.map(|c| c.lease_valid),
        "etcd_connected": v.cluster.map(|c| c.etcd_connected),
        "warnings": v.warnings,
        "nodes": nodes,
        "resources": resources,
        "tickets": tickets_json(c, &v.state),
        "failed_actions": failed,
        "constraints": constraints_json(c),
        "text": crate::simulate::render_status(c, &v.state, v.now),
    })
}

/// Every ticket a constraint names or an operator set: granted, standby, and the resources
/// that need it.
fn tickets_json(c: &warden_engine::Config, state: &warden_engine::State) -> Value {
    let mut names: std::collections::BTreeSet<&str> =
        c.tickets().iter().map(|t| t.ticket.as_str()).collect();
    names.extend(state.tickets.keys().map(String::as_str));
    names
        .into_iter()
        .map(|name| {
            let st = state.tickets.get(name).cloned().unwrap_or_default();
            let resources: Vec<&str> = c
                .tickets()
                .iter()
                .filter(|t| t.ticket == name)
                .map(|t| t.resource.as_str())
                .collect();
            json!({ "name": name, "granted": st.granted, "standby": st.standby, "resources": resources })
        })
        .collect()
}

/// The configured constraints and groups (bans and moves are per resource, as the operator's).
fn constraints_json(c: &warden_engine::Config) -> Value {
    json!({
        "locations": c.locations().iter().map(|l| json!({
            "resource": l.resource, "node": l.node, "score": l.score.to_string(), "role": l.role.as_str(),
        })).collect::<Vec<_>>(),
        "colocations": c.colocations().iter().map(|l| json!({
            "resource": l.resource, "with": l.with, "score": l.score.to_string(),
            "role": l.role.as_str(), "with_role": l.with_role.as_str(),
        })).collect::<Vec<_>>(),
        "orders": c.orders().iter().map(|o| json!({
            "first": o.first, "then": o.then, "kind": o.kind.as_str(), "symmetric": o.symmetric,
            "first_action": o.first_action.as_str(), "then_action": o.then_action.as_str(),
        })).collect::<Vec<_>>(),
        "groups": c.groups().iter().map(|g| json!({ "id": g.id, "resources": g.resources })).collect::<Vec<_>>(),
    })
}

#[derive(Debug, Deserialize)]
struct HistoryQuery {
    resource: Option<String>,
    limit: Option<usize>,
}

async fn history(State(api): State<Api>, Q(q): Q<HistoryQuery>) -> Response {
    let limit = q.limit.unwrap_or(200);
    if !(1..=10_000).contains(&limit) {
        return error(
            StatusCode::BAD_REQUEST,
            format!("limit {limit} is out of range (1 to 10000)"),
            Some("limit"),
        );
    }
    match api.control.history(q.resource, limit).await {
        Ok(entries) => Json(
            entries
                .iter()
                .map(|h| {
                    json!({
                        "time": format_time(warden_engine::Time::from_millis(h.time_ms)),
                        "resource": h.resource, "node": h.node, "op": h.op, "rc": h.rc,
                        "rc_name": rc::name(h.rc), "exit_reason": h.exit_reason, "duration_ms": h.duration_ms,
                    })
                })
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Err(e) => refused(e),
    }
}

#[derive(Debug, Deserialize)]
struct NodeParam {
    node: Option<String>,
}

async fn resource_action(
    State(api): State<Api>,
    headers: HeaderMap,
    P((id, action)): P<(String, String)>,
    Q(q): Q<NodeParam>,
) -> Response {
    if let Some(r) = unauthorized(&api, &headers) {
        return r;
    }
    let node = q.node;
    let cmd = match action.as_str() {
        "cleanup" => AdminCommand::Cleanup {
            resource: Some(id),
            node,
        },
        "enable" => AdminCommand::Enable { resource: id },
        "disable" => AdminCommand::Disable { resource: id },
        "clear" => AdminCommand::Clear { resource: id },
        "move" | "ban" => {
            let node = match (node, action.as_str()) {
                (Some(n), _) => n,
                // A ban without a node bans the node it runs on, as `crm_resource --ban`.
                (None, "ban") => match running_on(&api, &id).await {
                    Ok(n) => n,
                    Err(r) => return r,
                },
                (None, _) => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        format!("{action} needs a node (?node=NAME)"),
                        Some("node"),
                    );
                }
            };
            if action == "move" {
                AdminCommand::Move { resource: id, node }
            } else {
                AdminCommand::Ban { resource: id, node }
            }
        }
        "restart" => AdminCommand::Restart { resource: id, node },
        other => {
            return error(
                StatusCode::NOT_FOUND,
                format!(
                    "unknown resource action {other:?} (allowed: cleanup, restart, enable, disable, move, ban, clear)"
                ),
                Some("action"),
            );
        }
    };
    admin(&api, cmd).await
}

#[derive(Debug, Deserialize)]
struct MoveQuery {
    node: String,
}

/// `move` names its node (a query without one is refused like any malformed query).
async fn move_resource(
    State(api): State<Api>,
    headers: HeaderMap,
    P(id): P<String>,
    Q(q): Q<MoveQuery>,
) -> Response {
    if let Some(r) = unauthorized(&api, &headers) {
        return r;
    }
    admin(
        &api,
        AdminCommand::Move {
            resource: id,
            node: q.node,
        },
    )
    .await
}

/// The one node `resource` runs on, for a ban without a node; else the refusal: 404 for an
/// unknown resource, 409 when it runs nowhere or on several nodes.
async fn running_on(api: &Api, resource: &str) -> Result<String, Response> {
    let view = api.control.status().await.map_err(refused)?;
    // A clone of instances runs where any of its instances runs.
    let ids = view.config.named_ids(resource);
    if ids.iter().any(|id| view.config.resource(id).is_none()) {
        return Err(refused(ControlError::Apply(
            warden_engine::ApplyError::UnknownResource(resource.to_owned()),
        )));
    }
    let mut nodes: Vec<&String> = view
        .config
        .nodes()
        .iter()
        .filter(|n| {
            ids.iter()
                .any(|id| view.state.on_node(id, n).role.is_active())
        })
        .collect();
    match (nodes.pop(), nodes.is_empty()) {
        (Some(n), true) => Ok(n.clone()),
        (None, _) => Err(error(
            StatusCode::CONFLICT,
            format!("{resource} runs nowhere: name the node to ban it from (?node=NAME)"),
            Some("node"),
        )),
        (Some(_), false) => Err(error(
            StatusCode::CONFLICT,
            format!("{resource} runs on several nodes: name the node to ban it from (?node=NAME)"),
            Some("node"),
        )),
    }
}

/// Re-reads upstreams and listeners from the configuration file (`warden reload`).
async fn reload(State(api): State<Api>, headers: HeaderMap) -> Response {
    if let Some(r) = unauthorized(&api, &headers) {
        return r;
    }
    match api.control.reload().await {
        Ok(changes) => Json(json!({ "ok": true, "changes": changes })).into_response(),
        Err(e) => refused(e),
    }
}

#[derive(Debug, Deserialize)]
struct ShutdownQuery {
    #[serde(default)]
    leave_running: bool,
}

/// Stops the daemon (`warden shutdown`): its resources first (in the engine's order), or,
/// with `?leave_running=true`, none of them, for a new daemon to adopt.
async fn shutdown(State(api): State<Api>, headers: HeaderMap, Q(q): Q<ShutdownQuery>) -> Response {
    if let Some(r) = unauthorized(&api, &headers) {
        return r;
    }
    ok(api.control.shutdown(q.leave_running).await)
}

#[derive(Debug, Deserialize)]
struct ScoreQuery {
    node: Option<String>,
    score: Option<String>,
}

/// An agent sets its copy's promotion score (`warden promotion-score --value`).
async fn set_promotion_score(
    State(api): State<Api>,
    headers: HeaderMap,
    P(id): P<String>,
    Q(q): Q<ScoreQuery>,
) -> Response {
    let Some(score) = q.score else {
        return error(
            StatusCode::BAD_REQUEST,
            "promotion-score needs a score (?score=N, INFINITY or -INFINITY)".to_owned(),
            Some("score"),
        );
    };
    match score.parse::<warden_engine::Score>() {
        Ok(s) => promotion_score(&api, &headers, id, q.node, Some(s)).await,
        Err(e) => error(StatusCode::BAD_REQUEST, e, Some("score")),
    }
}

async fn delete_promotion_score(
    State(api): State<Api>,
    headers: HeaderMap,
    P(id): P<String>,
    Q(q): Q<ScoreQuery>,
) -> Response {
    promotion_score(&api, &headers, id, q.node, None).await
}

async fn promotion_score(
    api: &Api,
    headers: &HeaderMap,
    resource: String,
    node: Option<String>,
    score: Option<warden_engine::Score>,
) -> Response {
    if let Some(r) = unauthorized_for(api, headers, Some(&resource)) {
        return r;
    }
    let Some(node) = node else {
        return error(
            StatusCode::BAD_REQUEST,
            "promotion-score needs a node (?node=NAME)".to_owned(),
            Some("node"),
        );
    };
    ok(api.control.promotion_score(resource, node, score).await)
}

async fn node_action(
    State(api): State<Api>,
    headers: HeaderMap,
    P((name, action)): P<(String, String)>,
) -> Response {
    if let Some(r) = unauthorized(&api, &headers) {
        return r;
    }
    let cmd = match action.as_str() {
        "standby" => AdminCommand::Standby { node: name },
        "online" => AdminCommand::Online { node: name },
        other => {
            return error(
                StatusCode::NOT_FOUND,
                format!("unknown node action {other:?} (allowed: standby, online)"),
                Some("action"),
            );
        }
    };
    admin(&api, cmd).await
}

#[derive(serde::Deserialize)]
struct AttributeQuery {
    value: Option<String>,
}

async fn set_node_attribute(
    State(api): State<Api>,
    headers: HeaderMap,
    P((node, name)): P<(String, String)>,
    Q(q): Q<AttributeQuery>,
) -> Response {
    if let Some(r) = unauthorized(&api, &headers) {
        return r;
    }
    let Some(value) = q.value else {
        return error(
            StatusCode::BAD_REQUEST,
            "setting an attribute needs a value (?value=V; DELETE removes it)".to_owned(),
            Some("value"),
        );
    };
    let cmd = AdminCommand::NodeAttribute {
        node,
        name,
        value: Some(value),
    };
    admin(&api, cmd).await
}

async fn delete_node_attribute(
    State(api): State<Api>,
    headers: HeaderMap,
    P((node, name)): P<(String, String)>,
) -> Response {
    if let Some(r) = unauthorized(&api, &headers) {
        return r;
    }
    let cmd = AdminCommand::NodeAttribute {
        node,
        name,
        value: None,
    };
    admin(&api, cmd).await
}

async fn ticket_action(
    State(api): State<Api>,
    headers: HeaderMap,
    P((ticket, action)): P<(String, String)>,
) -> Response {
    if let Some(r) = unauthorized(&api, &headers) {
        return r;
    }
    let Ok(action) = action.parse::<warden_engine::TicketAction>() else {
        return error(
            StatusCode::NOT_FOUND,
            format!("unknown ticket action {action:?} (allowed: grant, revoke, standby, activate)"),
            Some("action"),
        );
    };
    admin(&api, AdminCommand::Ticket { ticket, action }).await
}

async fn admin(api: &Api, cmd: AdminCommand) -> Response {
    ok(api.control.admin(cmd).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_and_cluster_metrics_come_from_the_status() {
        let status = json!({
            "node": "n1", "coordinator": "n2", "lease_valid": true, "etcd_connected": false,
            "nodes": [
                {"name": "n1", "online": true, "standby": false, "unclean": null},
                {"name": "n2", "online": true, "standby": true, "unclean": null},
                {"name": "n3", "online": false, "standby": false, "unclean": "lost"},
            ],
            "resources": [],
        });
        let text = resource_metrics(&status);
        for want in [
            "warden_node_state{node=\"n1\",state=\"online\"} 1",
            "warden_node_state{node=\"n2\",state=\"standby\"} 1",
            "warden_node_state{node=\"n2\",state=\"online\"} 0",
            "warden_node_state{node=\"n3\",state=\"unclean\"} 1",
            "warden_cluster_lease_valid{node=\"n1\"} 1",
            "warden_cluster_etcd_connected{node=\"n1\"} 0",
            "warden_cluster_is_coordinator{node=\"n1\"} 0",
            "warden_cluster_coordinator_info{node=\"n2\"} 1",
        ] {
            assert!(text.lines().any(|l| l == want), "{want}\n{text}");
        }
        let alone = json!({"node": "n1", "coordinator": null, "lease_valid": null, "nodes": [], "resources": []});
        assert!(!resource_metrics(&alone).contains("warden_cluster"));
    }

    #[test]
    fn every_route_is_in_the_openapi_document_and_nothing_else() {
        let doc = openapi();
        let documented: Vec<&str> = doc["paths"]
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let source = include_str!("api.rs");
        let routes: Vec<&str> = source
            .match_indices(".route(")
            .filter_map(|(i, _)| {
                let rest = source[i..].split_once('"')?.1;
                Some(rest.split_once('"')?.0)
            })
            .filter(|r| r.starts_with('/'))
            .collect();
        assert!(routes.len() >= 18, "{routes:?}");
        for r in &routes {
            assert!(documented.contains(r), "route {r} is not in openapi.json");
        }
        for d in &documented {
            assert!(
                routes.contains(d),
                "openapi.json documents {d}, which is no route"
            );
        }
        assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    }
}
