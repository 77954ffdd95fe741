//! HTTP mode of the failover proxy: HTTP/1.1 with keep-alive to clients, each request sent to
//! the peer the balancer picks, with `X-Forwarded-For`. One task per client connection does
//! all of it: reads a request head ([`h1`] parses and rewrites it), reads the body, writes both
//! to a peer connection (the one this client used last when it goes to the same peer, else an
//! idle one from the listener's pool, else a new one), reads the response head and passes the
//! body through by its framing. No second task, no channel, no header map per request.
//!
//! A request is retried on the next peer when the connect fails (any method: nothing was
//! sent), and, for idempotent methods, when the peer fails before answering, does not answer
//! within `upstream_timeout`, or turns DOWN while the request waits. A pooled connection the
//! peer closed while it was idle is not the peer's failure: the request goes again to the same
//! peer on a new connection (when it is idempotent or was not sent whole). Request bodies up
//! to [`RESEND_BODY`] are read whole first, so a retry can send them again; larger ones (or
//! any that finds no room among [`MAX_BODIES`]) stream from the client to the one peer that
//! takes them, through one buffer, and are not retried once sent. Responses stream through,
//! and a response that stalls mid-body for `upstream_timeout` is cut. `Upgrade` requests
//! (WebSocket) become a tunnel once the peer answers 101.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tracing::{debug, warn};

use super::h1::{self, ChunkedDecoder, Framing, Refusal, Relay, Request, Response};
use super::{Lease, Listener};
use crate::check::CheckError;

/// Request bodies up to this size are read whole before they are sent, so that a request can
/// go again to the next peer; larger ones stream through.
pub const RESEND_BODY: usize = 1 << 20;
/// The most request-body bytes all sessions of the daemon hold at once for resending: a body
/// that finds no room streams through instead, so many clients sending bodies at once hold
/// no more than this (plus one read buffer each).
pub const MAX_BODIES: usize = 128 << 20;

/// Room for held request bodies, shared by every listener.
fn body_room() -> &'static Arc<tokio::sync::Semaphore> {
    static ROOM: std::sync::OnceLock<Arc<tokio::sync::Semaphore>> = std::sync::OnceLock::new();
    ROOM.get_or_init(|| Arc::new(tokio::sync::Semaphore::new(MAX_BODIES)))
}

/// Takes room for `n` more held body bytes (added to `held`) if there is some now.
fn take_room(held: &mut Option<tokio::sync::OwnedSemaphorePermit>, n: usize) -> bool {
    if n == 0 {
        return true;
    }
    let Ok(n) = u32::try_from(n) else {
        return false;
    };
    let Ok(more) = Arc::clone(body_room()).try_acquire_many_owned(n) else {
        return false;
    };
    match held {
        Some(p) => p.merge(more),
        None => *held = Some(more),
    }
    true
}

/// A request body as read before the request is sent.
#[derive(Debug)]
enum Body {
    /// Read whole (the chunked coding taken off): it can be sent again.
    Whole(Bytes),
    /// Too large to hold, or no room: sent on while it is read.
    Stream(Stream),
}

/// A body that streams: what was read of it so far, and where the rest stands.
#[derive(Debug)]
struct Stream {
    /// Data already read (chunks decoded), sent first.
    first: Vec<u8>,
    rest: Rest,
}

#[derive(Debug)]
enum Rest {
    /// `Content-Length`: this many bytes are still to come from the client.
    Length(u64),
    /// Chunked: the decoder, and the data seen so far (for `max_request_body`).
    Chunked(ChunkedDecoder, u64),
}

/// How streaming a body to a peer failed.
#[derive(Debug)]
enum StreamFail {
    /// The client went away or stopped sending.
    Client(Cut),
    /// The body broke a rule (bad chunk, too large): the client is answered.
    Refused(Refusal),
    /// Writing to the peer failed.
    Peer(String),
    /// The peer took no more of the body within `upstream_timeout`.
    PeerTimeout,
}

/// Idle pooled connections kept per peer.
const POOL_PER_PEER: usize = 64;
/// How much room each read asks for.
const READ_CHUNK: usize = 16 << 10;
/// How long a refused client is drained before its connection is let go, and how long the
/// drain waits for each read.
const LINGER: Duration = Duration::from_secs(5);
const LINGER_IDLE: Duration = Duration::from_secs(1);
/// Bodies up to this size go out in the same write as their head.
const COALESCE: usize = 64 << 10;

/// A connection to a peer, with what was read from it and not used yet.
#[derive(Debug)]
struct Conn {
    addr: String,
    stream: TcpStream,
    buf: BytesMut,
}

impl Conn {
    /// Whether the peer has not closed this idle connection (nor sent anything on it).
    fn alive(&self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.stream.try_read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }

    /// Reads more from the peer (at least one byte, or 0 at its end) within `idle`; with
    /// `kill`, also ends (as an error) when the session is closed by policy.
    async fn read_more(&mut self, idle: Duration, kill: Option<&Notify>) -> Result<usize, Cut> {
        reserve(&mut self.buf);
        let read = tokio::time::timeout(idle, self.stream.read_buf(&mut self.buf));
        let r = match kill {
            Some(kill) => tokio::select! {
                r = read => r,
                _ = kill.notified() => return Err(Cut::killed("session closed by policy")),
            },
            None => read.await,
        };
        match r {
            Ok(Ok(n)) => Ok(n),
            Ok(Err(e)) => Err(Cut::server(format!(
                "the upstream peer failed mid-response: {e}"
            ))),
            Err(_) => Err(Cut::server_timeout(
                "the upstream peer stopped sending its response",
            )),
        }
    }
}

fn reserve(buf: &mut BytesMut) {
    if buf.capacity() - buf.len() < READ_CHUNK / 4 {
        buf.reserve(READ_CHUNK);
    }
}

/// Idle upstream connections, per peer address, each with the time it went idle.
#[derive(Debug, Default)]
pub(super) struct Pool {
    idle: Mutex<HashMap<String, Vec<(Instant, Conn)>>>,
}

impl Pool {
    /// The idle connection to `addr` used last that is still open, if there is one.
    fn take(&self, addr: &str) -> Option<Conn> {
        loop {
            let (_, c) = self.idle.lock().ok()?.get_mut(addr)?.pop()?;
            if c.alive() {
                return Some(c);
            }
        }
    }

    /// Keeps `c` idle; when its peer has [`POOL_PER_PEER`] already, the one idle longest goes.
    fn put(&self, c: Conn) {
        let Ok(mut idle) = self.idle.lock() else {
            return;
        };
        let list = idle.entry(c.addr.clone()).or_default();
        if list.len() >= POOL_PER_PEER {
            list.remove(0);
        }
        list.push((Instant::now(), c));
    }

    /// Closes the idle connections that have been idle `max_idle` or longer, that their peer
    /// closed (or wrote to unasked), or whose peer `is_peer` no longer names; returns how many.
    pub(super) fn sweep(&self, max_idle: Duration, is_peer: impl Fn(&str) -> bool) -> usize {
        let Ok(mut idle) = self.idle.lock() else {
            return 0;
        };
        let mut closed = 0;
        idle.retain(|addr, list| {
            let before = list.len();
            if is_peer(addr) {
                list.retain(|(since, c)| since.elapsed() < max_idle && c.alive());
            } else {
                list.clear();
            }
            closed += before - list.len();
            !list.is_empty()
        });
        closed
    }
}

/// Why a client connection ends early, and who ended it: HAProxy's first termination state
/// character (`C` the client, `c` its time-out, `S` the peer, `s` its time-out, `K` a policy).
#[derive(Debug)]
struct Cut {
    why: String,
    by: u8,
}

impl Cut {
    fn by(by: u8, why: impl Into<String>) -> Cut {
        Cut {
            why: why.into(),
            by,
        }
    }

    fn client(why: impl Into<String>) -> Cut {
        Cut::by(b'C', why)
    }

    fn client_timeout(why: impl Into<String>) -> Cut {
        Cut::by(b'c', why)
    }

    fn server(why: impl Into<String>) -> Cut {
        Cut::by(b'S', why)
    }

    fn server_timeout(why: impl Into<String>) -> Cut {
        Cut::by(b's', why)
    }

    fn killed(why: impl Into<String>) -> Cut {
        Cut::by(b'K', why)
    }
}

/// What the current request did, for the access log (kept only when the listener has one).
#[derive(Debug)]
struct Rec {
    /// A request is under way (its first byte came).
    open: bool,
    began: Instant,
    at: SystemTime,
    t_request: i64,
    t_connect: i64,
    t_response: i64,
    status: i32,
    bytes: u64,
    peer: Option<String>,
    retries: u32,
    /// Who ended it early, when someone did (HAProxy's first termination character).
    by: u8,
    /// Where it was: `R` the request, `C` connecting, `H` the response head, `D` data.
    phase: u8,
    line: String,
}

impl Rec {
    fn new() -> Rec {
        Rec {
            open: false,
            began: Instant::now(),
            at: SystemTime::now(),
            t_request: -1,
            t_connect: -1,
            t_response: -1,
            status: -1,
            bytes: 0,
            peer: None,
            retries: 0,
            by: b'-',
            phase: b'R',
            line: String::new(),
        }
    }

    /// A request begins now.
    fn begin(&mut self) {
        // The line's buffer is kept for the next request.
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        *self = Rec {
            open: true,
            line,
            ..Rec::new()
        };
    }
}

/// How an exchange with a peer failed before a response head came back.
#[derive(Debug)]
enum Fail {
    /// The connection closed or failed: `stale` when it was a reused one and nothing at all
    /// came back (the peer had closed it while idle); `sent` when the whole request went out.
    Closed {
        stale: bool,
        sent: bool,
        error: String,
    },
    /// What came back is not an HTTP/1 response.
    Bad(&'static str),
    TimedOut,
    /// The peer turned DOWN while the request waited.
    Down,
}

/// Serves one client connection's requests until it ends; `pool` holds the idle upstream
/// connections of the listener on this thread.
pub(super) async fn session(l: Listener, pool: Arc<Pool>, client: TcpStream, from: SocketAddr) {
    let ip = l.spec.forwarded_for.then(|| from.ip().to_string());
    let trusted = crate::net::any_contains(&l.spec.trusted_proxies, from.ip());
    let l_logs = l.logs();
    let session = Session {
        l,
        pool,
        client,
        from,
        ip,
        trusted,
        buf: BytesMut::new(),
        fwd: Vec::new(),
        out: Vec::new(),
        held: None,
        linger: false,
        logs: l_logs,
        rec: Rec::new(),
    };
    session.run().await;
}

/// One client connection.
#[derive(Debug)]
struct Session {
    l: Listener,
    pool: Arc<Pool>,
    client: TcpStream,
    from: SocketAddr,
    /// The client's address for `X-Forwarded-For` (when the listener adds it).
    ip: Option<String>,
    /// The client is one of the listener's `trusted_proxies`.
    trusted: bool,
    /// Read from the client and not used yet.
    buf: BytesMut,
    /// The current request's head for the peer.
    fwd: Vec<u8>,
    /// Bytes on their way out.
    out: Vec<u8>,
    /// The peer connection this client used last.
    held: Option<Conn>,
    /// The connection is closed after a refusal: drain the client before letting go.
    linger: bool,
    /// The listener writes an access log: `rec` is kept.
    logs: bool,
    rec: Rec,
}

impl Session {
    async fn run(mut self) {
        loop {
            let r = self.one().await;
            if let Err(cut) = &r {
                debug!(listener = %self.l.spec.name, client = %self.from, "client connection cut: {}", cut.why);
                if self.rec.by == b'-' {
                    self.rec.by = cut.by;
                }
            }
            if self.logs && self.rec.open {
                self.log();
            }
            if !matches!(r, Ok(true)) {
                break;
            }
        }
        let _ = self.client.shutdown().await;
        if let Some(c) = self.held.take() {
            self.pool.put(c);
        }
        if self.linger {
            // Refused mid-request: what the client still sends is read and dropped for a
            // moment (nginx's lingering close), so the kernel does not answer it with a reset
            // that can destroy the refusal before the client has read it.
            let drain = async {
                let mut sink = [0u8; 16 << 10];
                while let Ok(Ok(n)) =
                    tokio::time::timeout(LINGER_IDLE, self.client.read(&mut sink)).await
                {
                    if n == 0 {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(LINGER, drain).await;
        }
    }

    /// Writes the access log line of the request that just ended.
    fn log(&mut self) {
        self.rec.open = false;
        let r = &self.rec;
        let done = r.by == b'-';
        let request = if r.line.is_empty() {
            "<BADREQ>"
        } else {
            r.line.as_str()
        };
        self.l.log(super::access::Entry {
            client: self.from,
            at: r.at,
            listener: &self.l.spec.name,
            upstream: &self.l.spec.upstream,
            peer: r.peer.as_deref(),
            t_request: r.t_request,
            t_connect: r.t_connect,
            t_response: r.t_response,
            t_total: super::access::ms_since(r.began),
            status: r.status,
            bytes: r.bytes,
            term: if done { *b"--" } else { [r.by, r.phase] },
            conns: [0; 4],
            retries: r.retries,
            request: Some(request),
        });
    }

    /// Notes the request head's arrival and its request line (what the client buffer starts
    /// with, up to the first line break) for the access log.
    fn note_request(&mut self) {
        if !self.logs {
            return;
        }
        self.rec.t_request = super::access::ms_since(self.rec.began);
        let head = &self.buf[..self.buf.len().min(h1::MAX_HEAD)];
        let end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
        let line = head[..end].strip_suffix(b"\r").unwrap_or(&head[..end]);
        self.rec.line.push_str(&String::from_utf8_lossy(line));
    }

    /// An attempt at the current request failed on a peer.
    fn attempt_failed(&mut self) {
        self.l.stats.failed_attempt();
        self.rec.retries += 1;
    }

    /// Serves one request; `Ok(true)` when the connection stays open for the next.
    async fn one(&mut self) -> Result<bool, Cut> {
        // Idle between requests for up to `client_keepalive`; once a request has begun, its
        // head must come whole within `client_timeout` (a slow client holds no connection).
        if self.buf.is_empty() {
            reserve(&mut self.buf);
            let first = self.client.read_buf(&mut self.buf);
            match tokio::time::timeout(self.l.spec.client_keepalive, first).await {
                Err(_) | Ok(Ok(0) | Err(_)) => return Ok(false),
                Ok(Ok(n)) => self.l.stats.received(n as u64),
            }
        }
        if self.logs {
            self.rec.begin();
        }
        let req = match tokio::time::timeout(self.l.spec.client_timeout, self.read_head()).await {
            Err(_) => {
                let r = Refusal {
                    status: 408,
                    reason: "the request head did not come within client_timeout",
                };
                return self.refuse(r, false).await;
            }
            Ok(Ok(None)) => {
                self.rec.by = b'C';
                return Ok(false);
            }
            Ok(Ok(Some(r))) => r,
            Ok(Err(refusal)) => {
                self.note_request();
                return self.refuse(refusal, false).await;
            }
        };
        self.note_request();
        self.buf.advance(req.len);
        let mut room = None;
        let body = match self.read_body(&req, &mut room).await? {
            Ok(body) => body,
            Err(refusal) => return self.refuse(refusal, false).await,
        };
        // The body's room is given back once the request is done with it.
        let r = match body {
            Body::Whole(body) => self.forward(&req, &body).await,
            Body::Stream(body) => self.forward_stream(&req, body).await,
        };
        drop(room);
        r
    }

    /// The next request head; `Ok(None)` when the client closed.
    async fn read_head(&mut self) -> Result<Option<Request>, Refusal> {
        loop {
            if !self.buf.is_empty() {
                if let Some(r) = h1::parse_request(
                    &self.buf,
                    h1::Client {
                        ip: self.ip.as_deref(),
                        trusted: self.trusted,
                    },
                    &mut self.fwd,
                )? {
                    return Ok(Some(r));
                }
            }
            reserve(&mut self.buf);
            match self.client.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return Ok(None),
                Ok(n) => self.l.stats.received(n as u64),
            }
        }
    }

    /// Reads the request body whole (the chunked coding taken off) when it is small enough to
    /// hold and there is room, else the start of a streaming body; answers
    /// `Expect: 100-continue` first.
    async fn read_body(
        &mut self,
        req: &Request,
        room: &mut Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> Result<Result<Body, Refusal>, Cut> {
        let max = self.l.spec.max_request_body.unwrap_or(u64::MAX);
        let wait = self.l.spec.client_timeout;
        match req.framing {
            Framing::None | Framing::Close => Ok(Ok(Body::Whole(Bytes::new()))),
            Framing::Length(n) => {
                if n > max {
                    return Ok(Err(too_large()));
                }
                if req.expect_continue && (self.buf.len() as u64) < n {
                    self.continue_().await?;
                }
                let held = usize::try_from(n)
                    .ok()
                    .filter(|&n| n <= RESEND_BODY && take_room(room, n));
                let Some(n) = held else {
                    return Ok(Ok(Body::Stream(Stream {
                        first: Vec::new(),
                        rest: Rest::Length(n),
                    })));
                };
                while self.buf.len() < n {
                    self.buf.reserve(n - self.buf.len());
                    self.read_client(wait).await?;
                }
                Ok(Ok(Body::Whole(self.buf.split_to(n).freeze())))
            }
            Framing::Chunked => {
                if req.expect_continue && self.buf.is_empty() {
                    self.continue_().await?;
                }
                let mut dec = ChunkedDecoder::default();
                let mut body = Vec::new();
                loop {
                    let used = match dec.feed(&self.buf, |d| body.extend_from_slice(d)) {
                        Ok(n) => n,
                        Err(h1::BadChunk) => return Ok(Err(bad_chunk())),
                    };
                    self.buf.advance(used);
                    let seen = body.len() as u64;
                    if seen.saturating_add(dec.announced()) > max {
                        return Ok(Err(too_large()));
                    }
                    let held = room.as_ref().map_or(0, |p| p.num_permits());
                    if body.len() > RESEND_BODY || !take_room(room, body.len().saturating_sub(held))
                    {
                        return Ok(Ok(Body::Stream(Stream {
                            first: body,
                            rest: Rest::Chunked(dec, seen),
                        })));
                    }
                    if dec.done() {
                        return Ok(Ok(Body::Whole(Bytes::from(body))));
                    }
                    reserve(&mut self.buf);
                    self.read_client(wait).await?;
                }
            }
        }
    }

    /// Sends the request head and its streaming body to `conn`: the body as the client sends
    /// it, one read at a time, each write within `upstream_timeout`.
    async fn stream_body(
        &mut self,
        conn: &mut Conn,
        req: &Request,
        body: &mut Stream,
    ) -> Result<(), StreamFail> {
        let max = self.l.spec.max_request_body.unwrap_or(u64::MAX);
        self.out.clear();
        self.out.extend_from_slice(&self.fwd);
        let sent = match body.rest {
            Rest::Length(n) => h1::Sent::Length(n),
            Rest::Chunked(..) => h1::Sent::Chunked,
        };
        h1::finish_request(&mut self.out, req, &conn.addr, sent);
        if !body.first.is_empty() {
            match body.rest {
                Rest::Length(_) => self.out.extend_from_slice(&body.first),
                Rest::Chunked(..) => h1::chunk(&mut self.out, &body.first),
            }
            body.first = Vec::new();
        }
        loop {
            // What the client sent so far goes on.
            let done = match &mut body.rest {
                Rest::Length(left) => {
                    let take = self
                        .buf
                        .len()
                        .min(usize::try_from(*left).unwrap_or(usize::MAX));
                    self.out.extend_from_slice(&self.buf[..take]);
                    self.buf.advance(take);
                    *left -= take as u64;
                    *left == 0
                }
                Rest::Chunked(dec, seen) => {
                    let out = &mut self.out;
                    let used = dec
                        .feed(&self.buf, |d| {
                            if !d.is_empty() {
                                *seen += d.len() as u64;
                                h1::chunk(out, d);
                            }
                        })
                        .map_err(|h1::BadChunk| StreamFail::Refused(bad_chunk()))?;
                    self.buf.advance(used);
                    if seen.saturating_add(dec.announced()) > max {
                        return Err(StreamFail::Refused(too_large()));
                    }
                    if dec.done() {
                        h1::chunk(&mut self.out, b"");
                    }
                    dec.done()
                }
            };
            if !self.out.is_empty() {
                let write = conn.stream.write_all(&self.out);
                match tokio::time::timeout(self.l.spec.upstream_timeout, write).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return Err(StreamFail::Peer(e.to_string())),
                    Err(_) => return Err(StreamFail::PeerTimeout),
                }
                self.out.clear();
            }
            if done {
                return Ok(());
            }
            reserve(&mut self.buf);
            self.read_client(self.l.spec.client_timeout)
                .await
                .map_err(StreamFail::Client)?;
        }
    }

    async fn continue_(&mut self) -> Result<(), Cut> {
        const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";
        self.l.stats.sent(CONTINUE.len() as u64);
        self.client
            .write_all(CONTINUE)
            .await
            .map_err(|e| Cut::client(e.to_string()))
    }

    /// Reads more of the request body from the client.
    async fn read_client(&mut self, wait: Duration) -> Result<(), Cut> {
        match tokio::time::timeout(wait, self.client.read_buf(&mut self.buf)).await {
            Ok(Ok(0)) => Err(Cut::client("the client closed mid-request")),
            Ok(Ok(n)) => {
                self.l.stats.received(n as u64);
                Ok(())
            }
            Ok(Err(e)) => Err(Cut::client(e.to_string())),
            Err(_) => Err(Cut::client_timeout(
                "the client stopped sending its request",
            )),
        }
    }

    /// Answers with the proxy's own error page; `Ok(keep_alive)`.
    async fn refuse(&mut self, r: Refusal, keep_alive: bool) -> Result<bool, Cut> {
        self.linger |= !keep_alive;
        self.l.stats.answered(r.status);
        self.rec.status = i32::from(r.status);
        if self.rec.by == b'-' {
            // HAProxy's termination states for the proxy's own answers: a time-out of the
            // client (408), of the peer (504), a peer that failed or none that took it (502,
            // 503), else the proxy refused the request.
            self.rec.by = match r.status {
                408 => b'c',
                504 => b's',
                502 | 503 => b'S',
                _ => b'P',
            };
        }
        h1::error_response(&mut self.out, r.status, r.reason, keep_alive);
        self.write_out().await?;
        Ok(keep_alive)
    }

    /// Writes what is in `self.out` to the client, which must take it within `client_timeout`
    /// (a client that never reads does not hold a peer connection forever).
    async fn write_out(&mut self) -> Result<(), Cut> {
        self.rec.bytes += self.out.len() as u64;
        self.l.stats.sent(self.out.len() as u64);
        let write = self.client.write_all(&self.out);
        let r = tokio::time::timeout(self.l.spec.client_timeout, write).await;
        self.out.clear();
        match r {
            Ok(r) => r.map_err(|e| Cut::client(format!("writing to the client: {e}"))),
            Err(_) => Err(Cut::client_timeout(
                "the client stopped taking its response",
            )),
        }
    }

    /// The peer connection to use for `addr`: the one this client used last, or an idle one.
    fn reuse(&mut self, addr: &str) -> Option<Conn> {
        if self.held.as_ref().is_some_and(|c| c.addr == addr) {
            if let Some(c) = self.held.take().filter(Conn::alive) {
                return Some(c);
            }
        }
        self.pool.take(addr)
    }

    /// Keeps `conn` for this client's next request (the one held before goes to the pool).
    fn keep(&mut self, conn: Conn) {
        if let Some(old) = self.held.replace(conn) {
            self.pool.put(old);
        }
    }

    /// A new connection to `peer`; a failed connect counts against it (`view`) and is None.
    async fn connect(&mut self, peer: &crate::check::Peer, view: &super::PeerView) -> Option<Conn> {
        self.rec.phase = b'C';
        let began = Instant::now();
        match self.l.connect_to(peer).await {
            Ok(stream) => {
                self.rec.t_connect = super::access::ms_since(began);
                Some(Conn {
                    addr: peer.addr.clone(),
                    stream,
                    buf: BytesMut::new(),
                })
            }
            Err(e) => {
                debug!(listener = %self.l.spec.name, peer = %peer.addr, error = %e, "connect failed; trying the next peer");
                self.rec.retries += 1;
                self.l.failed(view, e);
                None
            }
        }
    }

    /// The peer at `addr` answered with `status` after `sent`: the data phase begins.
    fn answered(&mut self, addr: &str, status: u16, sent: Instant) {
        self.l.stats.response(status);
        self.rec.t_response = super::access::ms_since(sent);
        self.rec.status = i32::from(status);
        self.rec.phase = b'D';
        if self.logs {
            self.rec.peer = Some(addr.to_owned());
        }
    }

    /// Sends the request to peers in the balancer's order until one answers, and relays the
    /// answer; `Ok(keep_alive)`.
    async fn forward(&mut self, req: &Request, body: &[u8]) -> Result<bool, Cut> {
        let (all, order) = self.l.attempts();
        let mut timed_out = false;
        // Failures of this request on peers that received it: they count against those peers
        // only once another peer has answered it. A request that fails everywhere (one that
        // makes every peer drop it) says more about the request than about the peers, and one
        // request must not turn them all DOWN.
        let mut failed_on: Vec<(usize, CheckError)> = Vec::new();
        for (nth, (i, peer, view)) in order
            .into_iter()
            .map(|i| (i, &all.peers[i], &all.views[i]))
            .enumerate()
        {
            let mut pooled = true;
            loop {
                let reused = if pooled { self.reuse(&peer.addr) } else { None };
                let was_reused = reused.is_some();
                let conn = match reused {
                    Some(c) => {
                        self.rec.t_connect = 0;
                        c
                    }
                    None => match self.connect(peer, view).await {
                        Some(c) => c,
                        None => break,
                    },
                };
                let lease = self.l.lease(&peer.addr, view.backup);
                self.rec.phase = b'H';
                let sent = Instant::now();
                let fail = match self.exchange(conn, req, body, was_reused, &lease).await {
                    Ok((resp, conn)) => {
                        self.answered(&peer.addr, resp.status, sent);
                        self.l.stats.took(&peer.addr);
                        if nth > 0 {
                            self.l.stats.failover();
                        }
                        for (j, e) in failed_on.drain(..) {
                            self.l.request_failed(&all.views[j], e);
                        }
                        return self.relay(resp, conn, lease).await;
                    }
                    Err(f) => f,
                };
                drop(lease);
                match fail {
                    Fail::Closed {
                        stale: true, sent, ..
                    } if !sent || req.idempotent => {
                        debug!(listener = %self.l.spec.name, peer = %peer.addr, "a pooled connection was closed by the peer; sending again on a new one");
                        pooled = false;
                        continue;
                    }
                    Fail::Closed {
                        stale: true, error, ..
                    } => {
                        debug!(listener = %self.l.spec.name, peer = %peer.addr, error = %error, "a pooled connection was closed under a request that cannot be sent twice");
                        return self
                            .refuse(
                                bad_gateway("the upstream peer closed the connection"),
                                req.keep_alive,
                            )
                            .await;
                    }
                    Fail::Closed { sent, error, .. } => {
                        debug!(listener = %self.l.spec.name, peer = %peer.addr, error = %error, "request failed");
                        self.attempt_failed();
                        if sent && !req.idempotent {
                            // Not sent again: only this peer saw it, and it failed it.
                            self.l.request_failed(view, CheckError::Io(error));
                            return self
                                .refuse(bad_gateway("the upstream peer failed"), req.keep_alive)
                                .await;
                        }
                        failed_on.push((i, CheckError::Io(error)));
                    }
                    Fail::Bad(why) => {
                        debug!(listener = %self.l.spec.name, peer = %peer.addr, "bad response: {why}");
                        self.attempt_failed();
                        if !req.idempotent {
                            self.l.request_failed(view, CheckError::Io(why.to_owned()));
                            return self
                                .refuse(
                                    bad_gateway("the upstream peer sent a bad response"),
                                    req.keep_alive,
                                )
                                .await;
                        }
                        failed_on.push((i, CheckError::Io(why.to_owned())));
                    }
                    Fail::TimedOut => {
                        debug!(listener = %self.l.spec.name, peer = %peer.addr, "no answer within upstream_timeout");
                        self.attempt_failed();
                        timed_out = true;
                        if !req.idempotent {
                            self.l.request_failed(view, CheckError::Timeout);
                            let r = Refusal {
                                status: 504,
                                reason: "the upstream peer timed out",
                            };
                            return self.refuse(r, req.keep_alive).await;
                        }
                        failed_on.push((i, CheckError::Timeout));
                    }
                    Fail::Down => {
                        self.attempt_failed();
                        debug!(listener = %self.l.spec.name, peer = %peer.addr, "peer turned down while the request waited; trying the next peer");
                    }
                }
                break;
            }
        }
        warn!(listener = %self.l.spec.name, upstream = %self.l.spec.upstream, client = %self.from, "no peer of upstream {} answered", self.l.spec.upstream);
        let r = if timed_out {
            Refusal {
                status: 504,
                reason: "no upstream peer answered in time",
            }
        } else {
            bad_gateway("no upstream peer accepted the request")
        };
        self.refuse(r, req.keep_alive).await
    }

    /// Sends a request whose body streams to the first peer in the balancer's order that
    /// takes the connection, and relays its answer; once the body is on its way it is not sent
    /// again (a failure then is 502 or 504, and counts against that peer).
    async fn forward_stream(&mut self, req: &Request, mut body: Stream) -> Result<bool, Cut> {
        let (all, order) = self.l.attempts();
        for (nth, (peer, view)) in order
            .into_iter()
            .map(|i| (&all.peers[i], &all.views[i]))
            .enumerate()
        {
            // A new connection: a pooled one the peer closed while idle could not be retried.
            let Some(mut conn) = self.connect(peer, view).await else {
                continue;
            };
            let lease = self.l.lease(&peer.addr, view.backup);
            self.rec.phase = b'H';
            let sent = Instant::now();
            let mut req = req.clone();
            let cut_short = match self.stream_body(&mut conn, &req, &mut body).await {
                Ok(()) => None,
                Err(StreamFail::Client(cut)) => return Err(cut),
                Err(StreamFail::Refused(r)) => return self.refuse(r, false).await,
                Err(StreamFail::PeerTimeout) => {
                    self.attempt_failed();
                    self.l.request_failed(view, CheckError::Timeout);
                    let r = Refusal {
                        status: 504,
                        reason: "the upstream peer stopped taking the request body",
                    };
                    return self.refuse(r, false).await;
                }
                // The peer may have answered before it took the whole body (a refusal of its
                // own): that answer goes to the client, and both connections close after it.
                Err(StreamFail::Peer(e)) => {
                    req.keep_alive = false;
                    Some(e)
                }
            };
            let answer = answer(&mut conn, &req, &mut self.out, false);
            let failed = match tokio::time::timeout(self.l.spec.upstream_timeout, answer).await {
                Ok(Ok(mut resp)) => {
                    self.answered(&peer.addr, resp.status, sent);
                    self.l.stats.took(&peer.addr);
                    if nth > 0 {
                        self.l.stats.failover();
                    }
                    if cut_short.is_some() {
                        resp.reusable = false;
                        resp.keep_alive = false;
                    }
                    return self.relay(resp, conn, lease).await;
                }
                Ok(Err(Fail::Closed { error, .. })) => CheckError::Io(cut_short.unwrap_or(error)),
                Ok(Err(Fail::Bad(why))) => CheckError::Io(why.to_owned()),
                Ok(Err(Fail::TimedOut | Fail::Down)) | Err(_) => CheckError::Timeout,
            };
            debug!(listener = %self.l.spec.name, peer = %peer.addr, error = %failed, "a streamed request failed");
            self.attempt_failed();
            let r = match failed {
                CheckError::Timeout => Refusal {
                    status: 504,
                    reason: "the upstream peer timed out",
                },
                _ => bad_gateway("the upstream peer failed"),
            };
            self.l.request_failed(view, failed);
            let keep_alive = req.keep_alive;
            return self.refuse(r, keep_alive).await;
        }
        warn!(listener = %self.l.spec.name, upstream = %self.l.spec.upstream, client = %self.from, "no peer of upstream {} answered", self.l.spec.upstream);
        // The body was not read: the connection cannot carry another request.
        self.refuse(bad_gateway("no upstream peer accepted the request"), false)
            .await
    }

    /// Writes the request on `conn` and reads the response head (into `self.out`, rewritten
    /// for the client), within `upstream_timeout`; an idempotent request also gives up when
    /// its peer turns DOWN.
    async fn exchange(
        &mut self,
        mut conn: Conn,
        req: &Request,
        body: &[u8],
        reused: bool,
        lease: &Lease,
    ) -> Result<(Response, Conn), Fail> {
        self.out.clear();
        self.out.extend_from_slice(&self.fwd);
        h1::finish_request(
            &mut self.out,
            req,
            &conn.addr,
            h1::Sent::Length(body.len() as u64),
        );
        let small = body.len() <= COALESCE;
        if small {
            self.out.extend_from_slice(body);
        }
        let out = &mut self.out;
        let work = async {
            let written = match conn.stream.write_all(out).await {
                Ok(()) if small => Ok(()),
                Ok(()) => conn.stream.write_all(body).await,
                Err(e) => Err(e),
            };
            if let Err(e) = written {
                return Err(Fail::Closed {
                    stale: reused,
                    sent: false,
                    error: e.to_string(),
                });
            }
            answer(&mut conn, req, out, reused).await
        };
        let work = tokio::time::timeout(self.l.spec.upstream_timeout, work);
        let r = if req.idempotent {
            tokio::select! {
                r = work => r,
                _ = lease.kill.notified() => return Err(Fail::Down),
            }
        } else {
            work.await
        };
        match r {
            Ok(Ok(resp)) => Ok((resp, conn)),
            Ok(Err(f)) => Err(f),
            Err(_) => Err(Fail::TimedOut),
        }
    }

    /// Sends the response (its head is in `self.out`) and its body to the client, then keeps
    /// the peer connection when it can carry another request; `Ok(keep_alive)`.
    async fn relay(&mut self, resp: Response, mut conn: Conn, lease: Lease) -> Result<bool, Cut> {
        if resp.switch {
            return self.tunnel(conn, lease).await;
        }
        let idle = self.l.spec.upstream_timeout;
        let kill = self.l.spec.shutdown_sessions.then_some(&*lease.kill);
        match resp.relay {
            Relay::None => self.write_out().await?,
            Relay::Length(n) => {
                let mut left = n;
                loop {
                    let take = conn
                        .buf
                        .len()
                        .min(usize::try_from(left).unwrap_or(usize::MAX));
                    self.out.extend_from_slice(&conn.buf[..take]);
                    conn.buf.advance(take);
                    left -= take as u64;
                    self.write_out().await?;
                    if left == 0 {
                        break;
                    }
                    if conn.read_more(idle, kill).await? == 0 {
                        return Err(Cut::server("the upstream peer closed mid-response"));
                    }
                }
            }
            Relay::Chunks | Relay::Dechunk => {
                let mut dec = ChunkedDecoder::default();
                let pass = resp.relay == Relay::Chunks;
                loop {
                    let out = &mut self.out;
                    let used = dec
                        .feed(&conn.buf, |d| {
                            if !pass {
                                out.extend_from_slice(d);
                            }
                        })
                        .map_err(|h1::BadChunk| {
                            Cut::server("the upstream peer sent a bad chunk")
                        })?;
                    if pass {
                        self.out.extend_from_slice(&conn.buf[..used]);
                    }
                    conn.buf.advance(used);
                    self.write_out().await?;
                    if dec.done() {
                        break;
                    }
                    if conn.read_more(idle, kill).await? == 0 {
                        return Err(Cut::server("the upstream peer closed mid-response"));
                    }
                }
            }
            Relay::Rechunk | Relay::Raw => {
                let rechunk = resp.relay == Relay::Rechunk;
                loop {
                    if !conn.buf.is_empty() {
                        if rechunk {
                            h1::chunk(&mut self.out, &conn.buf);
                        } else {
                            self.out.extend_from_slice(&conn.buf);
                        }
                        conn.buf.clear();
                    }
                    self.write_out().await?;
                    if conn.read_more(idle, kill).await? == 0 {
                        if rechunk {
                            h1::chunk(&mut self.out, b"");
                            self.write_out().await?;
                        }
                        break;
                    }
                }
            }
        }
        drop(lease);
        if resp.reusable && conn.buf.is_empty() {
            self.keep(conn);
        }
        Ok(resp.keep_alive)
    }

    /// After `101 Switching Protocols`: bytes both ways until either side closes.
    async fn tunnel(&mut self, mut conn: Conn, lease: Lease) -> Result<bool, Cut> {
        self.out.extend_from_slice(&conn.buf);
        conn.buf.clear();
        self.write_out().await?;
        if !self.buf.is_empty() {
            conn.stream
                .write_all(&self.buf)
                .await
                .map_err(|e| Cut::server(e.to_string()))?;
            self.buf.clear();
        }
        let shutdown = self.l.spec.shutdown_sessions;
        let mut moved = super::relay::Moved::default();
        let by = tokio::select! {
            biased;
            r = super::relay::relay(&mut self.client, &mut conn.stream, self.l.spec.idle_timeout, &mut moved) => match r {
                Ok(()) => b'-',
                Err((_, Some(super::relay::End::A))) => b'C',
                Err((_, Some(super::relay::End::B))) => b'S',
                Err((_, None)) => b'c',
            },
            _ = lease.kill.notified(), if shutdown => {
                debug!(listener = %self.l.spec.name, peer = %lease.addr, client = %self.from, "session closed by policy");
                b'K'
            }
        };
        self.rec.bytes += moved.b_to_a;
        self.l.stats.received(moved.a_to_b);
        self.l.stats.sent(moved.b_to_a);
        self.rec.by = by;
        Ok(false)
    }
}

/// Reads the peer's response head on `conn` (the head for the client goes into `out`),
/// skipping interim responses; `reused`: the connection came from the pool.
async fn answer(
    conn: &mut Conn,
    req: &Request,
    out: &mut Vec<u8>,
    reused: bool,
) -> Result<Response, Fail> {
    let mut got = false;
    loop {
        if !conn.buf.is_empty() {
            match h1::parse_response(&conn.buf, req, out) {
                Ok(Some(r)) if r.interim => {
                    conn.buf.advance(r.len);
                    continue;
                }
                Ok(Some(r)) => {
                    conn.buf.advance(r.len);
                    return Ok(r);
                }
                Ok(None) => {}
                Err(why) => return Err(Fail::Bad(why)),
            }
        }
        reserve(&mut conn.buf);
        let error = match conn.stream.read_buf(&mut conn.buf).await {
            Ok(0) => "the peer closed the connection before answering".to_owned(),
            Ok(_) => {
                got = true;
                continue;
            }
            Err(e) => e.to_string(),
        };
        return Err(Fail::Closed {
            stale: reused && !got,
            sent: true,
            error,
        });
    }
}

fn too_large() -> Refusal {
    Refusal {
        status: 413,
        reason: "request body too large",
    }
}

fn bad_chunk() -> Refusal {
    Refusal {
        status: 400,
        reason: "malformed chunked body",
    }
}

fn bad_gateway(reason: &'static str) -> Refusal {
    Refusal {
        status: 502,
        reason,
    }
}
