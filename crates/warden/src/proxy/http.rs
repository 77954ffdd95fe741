//! HTTP mode of the failover proxy: HTTP/1.1 with keep-alive to clients, each request sent to
//! the peer the balancer picks over a pooled connection, with `X-Forwarded-For`. A request is
//! retried on the next peer when the connect fails (any method: nothing was sent), and, for
//! idempotent methods, when the peer fails before answering or does not answer within
//! `upstream_timeout`. Request bodies are buffered (up to [`MAX_BODY`]) so a retry can resend
//! them; responses stream through.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Frame, Incoming};
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, warn};

use super::{Lease, Listener};
use crate::check::CheckError;

/// The largest request body the proxy buffers (so it can be sent again to another peer).
pub const MAX_BODY: usize = 16 << 20;
/// Idle pooled connections kept per peer.
const POOL_PER_PEER: usize = 64;

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// Idle upstream connections, per peer address.
#[derive(Debug, Default)]
struct Pool {
    idle: Mutex<HashMap<String, Vec<Sender>>>,
}

impl Pool {
    /// A ready connection to `addr`, if one is idle.
    fn take(&self, addr: &str) -> Option<Sender> {
        let mut idle = self.idle.lock().ok()?;
        let list = idle.get_mut(addr)?;
        list.retain(|s| !s.is_closed());
        let i = list.iter().position(Sender::is_ready)?;
        Some(list.swap_remove(i))
    }

    fn put(&self, addr: &str, s: Sender) {
        if s.is_closed() {
            return;
        }
        if let Ok(mut idle) = self.idle.lock() {
            match idle.get_mut(addr) {
                Some(list) if list.len() < POOL_PER_PEER => list.push(s),
                Some(_) => {}
                None => {
                    idle.insert(addr.to_owned(), vec![s]);
                }
            }
        }
    }
}

/// Headers that belong to one connection, not to the request or response (RFC 9110 7.6.1).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn strip_hop_by_hop(h: &mut HeaderMap) {
    // Headers the Connection header names are hop-by-hop too.
    let named: Vec<HeaderName> = h
        .get_all(hyper::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in named {
        h.remove(n);
    }
    for n in HOP_BY_HOP {
        h.remove(*n);
    }
}

/// Methods that may be sent twice (RFC 9110 9.2.2).
fn idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// A response body that holds its peer's lease until it ends (least-conn counts requests in
/// flight), and fails when the peer sends nothing for `idle` (a peer that hangs mid-response).
struct LeasedBody {
    inner: Incoming,
    _lease: Lease,
    idle: Duration,
    /// Armed the first time the peer makes us wait (most bodies never do).
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl LeasedBody {
    fn new(inner: Incoming, lease: Lease, idle: Duration) -> LeasedBody {
        LeasedBody {
            inner,
            _lease: lease,
            idle,
            timer: None,
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Body for LeasedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                self.timer = None;
                Poll::Ready(frame.map(|f| f.map_err(BoxError::from)))
            }
            Poll::Pending => {
                let idle = self.idle;
                let timer = self
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(BoxError::from(
                        "the upstream peer stopped sending its response",
                    )))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

type ProxyBody = http_body_util::Either<LeasedBody, Full<Bytes>>;

fn plain(status: StatusCode, msg: &str) -> Response<ProxyBody> {
    let mut r = Response::new(http_body_util::Either::Right(Full::new(Bytes::from(
        format!("{msg}\n"),
    ))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Accepts client connections and serves their requests until the daemon exits.
pub async fn serve(l: Listener, listener: Arc<TcpListener>) {
    let pool = Arc::new(Pool::default());
    loop {
        let (client, from) = super::accept(&l, &listener).await;
        let (l, pool) = (l.clone(), Arc::clone(&pool));
        tokio::spawn(async move {
            let keepalive = l.spec.client_keepalive;
            let svc = hyper::service::service_fn(move |req| {
                let (l, pool) = (l.clone(), Arc::clone(&pool));
                async move { Ok::<_, std::convert::Infallible>(handle(&l, &pool, req, from).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .timer(TokioTimer::new())
                .header_read_timeout(keepalive)
                .serve_connection(TokioIo::new(client), svc);
            if let Err(e) = conn.await {
                debug!(client = %from, error = %e, "client connection ended");
            }
        });
    }
}

/// One client request: buffered, then sent to peers in the balancer's order until one answers.
async fn handle(
    l: &Listener,
    pool: &Pool,
    req: Request<Incoming>,
    from: SocketAddr,
) -> Response<ProxyBody> {
    let (mut parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            let too_big = e
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some();
            return if too_big {
                plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large")
            } else {
                plain(StatusCode::BAD_REQUEST, "cannot read the request body")
            };
        }
    };
    strip_hop_by_hop(&mut parts.headers);
    if l.spec.forwarded_for {
        let ip = from.ip().to_string();
        let xff = match parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
        {
            Some(prev) => format!("{prev}, {ip}"),
            None => ip,
        };
        if let Ok(v) = HeaderValue::from_str(&xff) {
            parts.headers.insert("x-forwarded-for", v);
        }
        parts
            .headers
            .entry("x-forwarded-proto")
            .or_insert(HeaderValue::from_static("http"));
    }
    // Origin form to the peer: path and query only.
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let uri: hyper::Uri = match path.parse() {
        Ok(u) => u,
        Err(_) => return plain(StatusCode::BAD_REQUEST, "bad request target"),
    };
    let retry_all = idempotent(&parts.method);
    let mut timed_out = false;
    let (all, order) = l.attempts();
    for (peer, view) in order.into_iter().map(|i| (&all.peers[i], &all.views[i])) {
        let mut req = Request::new(Full::new(body.clone()));
        *req.method_mut() = parts.method.clone();
        *req.uri_mut() = uri.clone();
        *req.headers_mut() = parts.headers.clone();
        if !req.headers().contains_key(hyper::header::HOST) {
            if let Ok(v) = HeaderValue::from_str(&peer.addr) {
                req.headers_mut().insert(hyper::header::HOST, v);
            }
        }
        // A pooled connection, or a new one (a failed connect always moves on).
        let mut sender = match pool.take(&peer.addr) {
            Some(s) => s,
            None => match connect(l, peer).await {
                Ok(s) => s,
                Err(e) => {
                    debug!(listener = %l.spec.name, peer = %peer.addr, error = %e, "connect failed; trying the next peer");
                    l.failed(view, e);
                    continue;
                }
            },
        };
        let lease = l.lease(&peer.addr, view.backup);
        let answer = tokio::time::timeout(l.spec.upstream_timeout, sender.send_request(req));
        let answer = if retry_all {
            // The peer turned DOWN while we wait: go on to the next one now.
            tokio::select! {
                a = answer => Some(a),
                _ = lease.kill.notified() => None,
            }
        } else {
            Some(answer.await)
        };
        let Some(answer) = answer else {
            debug!(listener = %l.spec.name, peer = %peer.addr, "peer turned down while the request waited; trying the next peer");
            continue;
        };
        match answer {
            Ok(Ok(resp)) => {
                pool.put(&peer.addr, sender);
                let (mut rparts, rbody) = resp.into_parts();
                strip_hop_by_hop(&mut rparts.headers);
                let body = http_body_util::Either::Left(LeasedBody::new(
                    rbody,
                    lease,
                    l.spec.upstream_timeout,
                ));
                return Response::from_parts(rparts, body);
            }
            Ok(Err(e)) => {
                drop(lease);
                debug!(listener = %l.spec.name, peer = %peer.addr, error = %e, "request failed");
                l.failed(view, CheckError::Io(e.to_string()));
                if !retry_all {
                    return plain(StatusCode::BAD_GATEWAY, "the upstream peer failed");
                }
            }
            Err(_) => {
                drop(lease);
                debug!(listener = %l.spec.name, peer = %peer.addr, "no answer within upstream_timeout");
                l.failed(view, CheckError::Timeout);
                timed_out = true;
                if !retry_all {
                    return plain(StatusCode::GATEWAY_TIMEOUT, "the upstream peer timed out");
                }
            }
        }
    }
    warn!(listener = %l.spec.name, upstream = %l.spec.upstream, client = %from, "no peer of upstream {} answered", l.spec.upstream);
    if timed_out {
        plain(
            StatusCode::GATEWAY_TIMEOUT,
            "no upstream peer answered in time",
        )
    } else {
        plain(
            StatusCode::BAD_GATEWAY,
            "no upstream peer accepted the request",
        )
    }
}

/// A new HTTP/1.1 connection to `peer`, within `connect_timeout`.
async fn connect(l: &Listener, peer: &crate::check::Peer) -> Result<Sender, CheckError> {
    let stream = match tokio::time::timeout(
        l.spec.connect_timeout,
        TcpStream::connect((peer.host.as_str(), peer.port)),
    )
    .await
    {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(CheckError::from_connect(&e)),
        Err(_) => return Err(CheckError::Timeout),
    };
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| CheckError::Io(e.to_string()))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}
