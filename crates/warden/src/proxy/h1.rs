//! HTTP/1.1 message framing for the proxy's forwarding path (RFC 9112): the request and
//! response heads as the proxy rewrites them (hop-by-hop fields dropped, the body framing
//! decided here, `X-Forwarded-For`), and a decoder for the chunked coding that can both pass
//! chunks through untouched and take the data out of them. Pure: no I/O, unit-tested here.

/// The largest head (request or status line and fields) the proxy reads.
pub const MAX_HEAD: usize = 64 << 10;
/// The most header fields in one head.
pub const MAX_HEADERS: usize = 100;
/// The largest chunk extension or trailer section the chunked decoder accepts.
const MAX_CHUNK_META: usize = 64 << 10;

/// How a message's body is delimited (RFC 9112 6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    None,
    /// `Content-Length` bytes.
    Length(u64),
    /// The chunked transfer coding.
    Chunked,
    /// Everything until the connection closes (responses only).
    Close,
}

/// Fields that belong to one connection, not to the message (RFC 9110 7.6.1), and the
/// framing fields the proxy writes itself.
const DROPPED: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
];

fn is(name: &str, other: &str) -> bool {
    name.eq_ignore_ascii_case(other)
}

/// The comma-separated tokens of a field value, trimmed, empty ones skipped.
fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}

/// The fields a `Connection` header names (hop-by-hop too), and whether it says `close`,
/// `keep-alive`, `upgrade`.
#[derive(Debug, Default)]
struct ConnectionField<'a> {
    named: Vec<&'a [u8]>,
    close: bool,
    keep_alive: bool,
    upgrade: bool,
}

impl<'a> ConnectionField<'a> {
    fn of(headers: &[httparse::Header<'a>]) -> ConnectionField<'a> {
        let mut c = ConnectionField::default();
        for h in headers.iter().filter(|h| is(h.name, "connection")) {
            // `Host` is never hop-by-hop, whatever `Connection` says.
            for t in tokens(h.value).filter(|t| !t.eq_ignore_ascii_case(b"host")) {
                c.close |= t.eq_ignore_ascii_case(b"close");
                c.keep_alive |= t.eq_ignore_ascii_case(b"keep-alive");
                c.upgrade |= t.eq_ignore_ascii_case(b"upgrade");
                c.named.push(t);
            }
        }
        c
    }

    /// Whether the field `name` goes no further than this connection.
    fn drops(&self, name: &str) -> bool {
        DROPPED.iter().any(|d| is(name, d))
            || self
                .named
                .iter()
                .any(|n| n.eq_ignore_ascii_case(name.as_bytes()))
    }
}

/// The body length `Content-Length` fields give: all must agree (RFC 9112 6.3 point 5).
fn content_length(headers: &[httparse::Header<'_>]) -> Result<Option<u64>, ()> {
    let mut found = None;
    for h in headers.iter().filter(|h| is(h.name, "content-length")) {
        for t in h.value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
            if t.is_empty() || t.len() > 19 || !t.iter().all(u8::is_ascii_digit) {
                return Err(());
            }
            let n: u64 = std::str::from_utf8(t)
                .map_err(|_| ())?
                .parse()
                .map_err(|_| ())?;
            if found.is_some_and(|f| f != n) {
                return Err(());
            }
            found = Some(n);
        }
    }
    Ok(found)
}

/// What a message's `Transfer-Encoding` fields say (RFC 9112 6.1).
#[derive(Debug, Default, PartialEq, Eq)]
struct Codings<'a> {
    /// The message has a `Transfer-Encoding` field.
    present: bool,
    /// The codings applied before the final `chunked` (all of them when it is not chunked).
    other: Vec<&'a [u8]>,
    /// The final coding is `chunked`.
    chunked: bool,
    /// `chunked` comes more than once, or somewhere other than last: malformed.
    misplaced: bool,
}

impl<'a> Codings<'a> {
    fn of(headers: &[httparse::Header<'a>]) -> Codings<'a> {
        let mut c = Codings::default();
        for h in headers.iter().filter(|h| is(h.name, "transfer-encoding")) {
            c.present = true;
            for t in tokens(h.value) {
                if c.chunked {
                    // Something after chunked, or chunked twice.
                    c.misplaced = true;
                }
                if t.eq_ignore_ascii_case(b"chunked") {
                    c.chunked = true;
                } else {
                    c.chunked = false;
                    c.other.push(t);
                }
            }
        }
        c
    }

    /// The field value for the codings, ending in `chunked` when `chunked`.
    fn value(&self, chunked: bool) -> Vec<u8> {
        let mut v = Vec::new();
        for t in self
            .other
            .iter()
            .copied()
            .chain(chunked.then_some(&b"chunked"[..]))
        {
            if !v.is_empty() {
                v.extend_from_slice(b", ");
            }
            v.extend_from_slice(t);
        }
        v
    }
}

fn field(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Writes `n` in decimal.
fn decimal(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// A `Content-Length: n` field.
fn length_field(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(b"Content-Length: ");
    decimal(out, n);
    out.extend_from_slice(b"\r\n");
}

/// A request the proxy cannot forward: the status to answer with, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub reason: &'static str,
}

fn refuse(status: u16, reason: &'static str) -> Refusal {
    Refusal { status, reason }
}

/// A client request head, parsed; its rewritten head for the peer is in the buffer that
/// [`parse_request`] was given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The head's length in the client's buffer.
    pub len: usize,
    /// May be sent twice (RFC 9110 9.2.2).
    pub idempotent: bool,
    /// `HEAD`: the response has no body whatever its fields say.
    pub head: bool,
    /// The client spoke HTTP/1.0.
    pub http10: bool,
    /// The client wants the connection kept open after this request.
    pub keep_alive: bool,
    pub framing: Framing,
    /// The request had a body framing (`Content-Length: N` is sent on, even for 0).
    pub has_body_field: bool,
    /// `Expect: 100-continue`: answered here before the body is read.
    pub expect_continue: bool,
    /// The client asks to switch protocols (`Connection: upgrade` + `Upgrade`).
    pub upgrade: bool,
    /// The request has no `Host`: the peer's address is sent as one.
    pub no_host: bool,
}

/// Fields a client may use to say where a request came from: only a trusted proxy's pass on.
const FORWARDING: &[&str] = &[
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-real-ip",
];

/// What the forwarded request says about its client.
#[derive(Clone, Copy, Debug, Default)]
pub struct Client<'a> {
    /// The client's address, appended to `X-Forwarded-For` (None: the listener adds none).
    pub ip: Option<&'a str>,
    /// The client is a trusted proxy (`trusted_proxies`): its `Forwarded` and `X-Forwarded-*`
    /// fields pass on. Anyone else's are dropped, so a client cannot pose as another address.
    pub trusted: bool,
}

/// Parses the request head at the start of `buf`; `Ok(None)` until it is whole. The head to
/// send to the peer (request line and fields, without `Content-Length`, a `Host` when an
/// HTTP/1.0 client sent none, and the final empty line) is written to `fwd`.
pub fn parse_request(
    buf: &[u8],
    client: Client<'_>,
    fwd: &mut Vec<u8>,
) -> Result<Option<Request>, Refusal> {
    let client_ip = client.ip;
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
            return Err(refuse(431, "request header fields too large"));
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(refuse(431, "too many request header fields"));
        }
        Err(_) => return Err(refuse(400, "malformed request")),
    };
    if len > MAX_HEAD {
        return Err(refuse(431, "request header fields too large"));
    }
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return Err(refuse(400, "malformed request"));
    };
    let http10 = version == 0;
    let conn = ConnectionField::of(req.headers);
    let length = content_length(req.headers).map_err(|()| refuse(400, "bad Content-Length"))?;
    let codings = Codings::of(req.headers);
    let framing = match (codings.present, length) {
        (true, Some(_)) => {
            return Err(refuse(400, "both Content-Length and Transfer-Encoding"));
        }
        (true, None) if http10 => {
            return Err(refuse(400, "Transfer-Encoding in an HTTP/1.0 request"));
        }
        // RFC 9112 6.1: chunked once, last; a coding the proxy cannot decode is 501 (as
        // nginx answers), never forwarded without it.
        (true, None) if codings.misplaced || !codings.chunked => {
            return Err(refuse(
                400,
                "bad Transfer-Encoding: chunked must come once, last",
            ));
        }
        (true, None) if !codings.other.is_empty() => {
            return Err(refuse(501, "unsupported transfer coding"));
        }
        (true, None) => Framing::Chunked,
        (false, Some(0) | None) => Framing::None,
        (false, Some(n)) => Framing::Length(n),
    };
    match req.headers.iter().filter(|h| is(h.name, "host")).count() {
        0 if !http10 => return Err(refuse(400, "HTTP/1.1 request without Host")),
        0 | 1 => {}
        _ => return Err(refuse(400, "more than one Host field")),
    }
    let mut expect_continue = false;
    for h in req.headers.iter().filter(|h| is(h.name, "expect")) {
        if h.value.eq_ignore_ascii_case(b"100-continue") {
            expect_continue = true;
        } else {
            return Err(refuse(417, "unsupported expectation"));
        }
    }
    if method == "CONNECT" {
        return Err(refuse(405, "CONNECT is not supported"));
    }
    // Origin form to the peer: an absolute-form target keeps its path and query.
    let (target, authority) = match target.split_once("://") {
        Some((scheme, rest))
            if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") =>
        {
            match rest.find(['/', '?']) {
                Some(i) => (&rest[i..], &rest[..i]),
                None => ("/", rest),
            }
        }
        _ if target.starts_with('/') || target == "*" => (target, ""),
        _ => return Err(refuse(400, "bad request target")),
    };
    let upgrade = conn.upgrade && req.headers.iter().any(|h| is(h.name, "upgrade"));

    fwd.clear();
    fwd.extend_from_slice(method.as_bytes());
    fwd.push(b' ');
    if target.starts_with('?') {
        fwd.push(b'/');
    }
    fwd.extend_from_slice(target.as_bytes());
    fwd.extend_from_slice(b" HTTP/1.1\r\n");
    let mut host = false;
    let mut xff: Option<Vec<u8>> = None;
    let mut proto = false;
    for h in req.headers.iter() {
        let name = h.name;
        if (conn.drops(name) && !(upgrade && is(name, "upgrade"))) || is(name, "expect") {
            continue;
        }
        if !client.trusted && FORWARDING.iter().any(|f| is(name, f)) {
            continue;
        }
        if client_ip.is_some() && is(name, "x-forwarded-for") {
            let v = xff.get_or_insert_with(Vec::new);
            if !v.is_empty() {
                v.extend_from_slice(b", ");
            }
            v.extend_from_slice(h.value);
            continue;
        }
        host |= is(name, "host");
        proto |= is(name, "x-forwarded-proto");
        field(fwd, name, h.value);
    }
    if !host && !authority.is_empty() {
        field(fwd, "Host", authority.as_bytes());
        host = true;
    }
    if let Some(ip) = client_ip {
        let mut v = xff.unwrap_or_default();
        if !v.is_empty() {
            v.extend_from_slice(b", ");
        }
        v.extend_from_slice(ip.as_bytes());
        field(fwd, "X-Forwarded-For", &v);
        if !proto {
            field(fwd, "X-Forwarded-Proto", b"http");
        }
    }
    if upgrade {
        field(fwd, "Connection", b"upgrade");
    }
    let keep_alive = if http10 {
        conn.keep_alive && !conn.close
    } else {
        !conn.close
    };
    Ok(Some(Request {
        len,
        idempotent: matches!(
            method,
            "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE"
        ),
        head: method == "HEAD",
        http10,
        keep_alive,
        framing,
        has_body_field: length.is_some() || framing == Framing::Chunked,
        expect_continue,
        upgrade,
        no_host: !host,
    }))
}

/// Ends a forwarded request head: `Host` when the client sent none, the body's length.
pub fn finish_request(fwd: &mut Vec<u8>, req: &Request, peer: &str, body: Sent) {
    if req.no_host {
        field(fwd, "Host", peer.as_bytes());
    }
    match body {
        Sent::Length(n) if req.has_body_field => length_field(fwd, n),
        Sent::Length(_) => {}
        Sent::Chunked => field(fwd, "Transfer-Encoding", b"chunked"),
    }
    fwd.extend_from_slice(b"\r\n");
}

/// How a request's body goes on to the peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sent {
    /// Whole, or streamed with a known length: `Content-Length`.
    Length(u64),
    /// Streamed as it comes from a chunked client: chunks again (extensions and trailers
    /// dropped).
    Chunked,
}

/// How a response's body travels to the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relay {
    /// No body.
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunks passed through as they are (an HTTP/1.1 client).
    Chunks,
    /// Chunks decoded to their data (an HTTP/1.0 client; the connection closes after).
    Dechunk,
    /// A body delimited by the peer closing, sent on in chunks (an HTTP/1.1 client).
    Rechunk,
    /// A body delimited by the peer closing, sent on as it is (HTTP/1.0; closes after).
    Raw,
}

/// A peer's response head, parsed; its head for the client is in the buffer that
/// [`parse_response`] was given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The head's length in the peer's buffer.
    pub len: usize,
    pub status: u16,
    /// An interim response (1xx other than an accepted upgrade): skipped, the final one follows.
    pub interim: bool,
    /// `101 Switching Protocols` to an upgrade request: the connection becomes a tunnel.
    pub switch: bool,
    pub relay: Relay,
    /// The peer's connection can carry another request once this body is read.
    pub reusable: bool,
    /// The client's connection stays open after this response.
    pub keep_alive: bool,
}

/// Parses the response head at the start of `buf` (an answer to `req`); `Ok(None)` until it
/// is whole, `Err` when it is not HTTP/1.x. The head for the client is written to `out`.
pub fn parse_response(
    buf: &[u8],
    req: &Request,
    out: &mut Vec<u8>,
) -> Result<Option<Response>, &'static str> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
            return Err("response head too large");
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err("malformed response head"),
    };
    if len > MAX_HEAD {
        return Err("response head too large");
    }
    let (Some(status), Some(version)) = (resp.code, resp.version) else {
        return Err("malformed response head");
    };
    let switch = status == 101 && req.upgrade;
    let interim = (100..200).contains(&status) && !switch;
    let conn = ConnectionField::of(resp.headers);
    let length = content_length(resp.headers).map_err(|()| "bad Content-Length")?;
    let codings = Codings::of(resp.headers);
    let framing = if req.head || interim || switch || status == 204 || status == 304 {
        Framing::None
    } else {
        match (codings.present, length) {
            (true, _) if codings.misplaced => return Err("bad Transfer-Encoding"),
            (true, _) if codings.chunked => Framing::Chunked,
            (true, _) => Framing::Close,
            (false, Some(n)) => Framing::Length(n),
            (false, None) => Framing::Close,
        }
    };
    let reusable = !switch
        && framing != Framing::Close
        && if version == 0 {
            conn.keep_alive && !conn.close
        } else {
            !conn.close
        };
    let relay = match framing {
        Framing::None => Relay::None,
        Framing::Length(n) => Relay::Length(n),
        Framing::Chunked if req.http10 => Relay::Dechunk,
        Framing::Chunked => Relay::Chunks,
        Framing::Close if req.http10 => Relay::Raw,
        Framing::Close => Relay::Rechunk,
    };
    let keep_alive = req.keep_alive && !switch && !matches!(relay, Relay::Dechunk | Relay::Raw);

    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    decimal(out, u64::from(status));
    out.push(b' ');
    out.extend_from_slice(resp.reason.unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for h in resp.headers.iter() {
        if conn.drops(h.name) && !(switch && is(h.name, "upgrade")) {
            continue;
        }
        field(out, h.name, h.value);
    }
    match relay {
        // A HEAD or 304 answer keeps the length the body would have had.
        Relay::None => {
            if let (Some(n), false) = (length, switch || interim || status == 204) {
                length_field(out, n);
            }
        }
        Relay::Length(n) => length_field(out, n),
        // Codings other than chunked (gzip) stay on the body: the field keeps naming them.
        Relay::Chunks | Relay::Rechunk => field(out, "Transfer-Encoding", &codings.value(true)),
        Relay::Dechunk | Relay::Raw if !codings.other.is_empty() => {
            field(out, "Transfer-Encoding", &codings.value(false));
        }
        Relay::Dechunk | Relay::Raw => {}
    }
    if switch {
        field(out, "Connection", b"upgrade");
    } else if !keep_alive {
        field(out, "Connection", b"close");
    } else if req.http10 {
        field(out, "Connection", b"keep-alive");
    }
    out.extend_from_slice(b"\r\n");
    Ok(Some(Response {
        len,
        status,
        interim,
        switch,
        relay,
        reusable,
        keep_alive,
    }))
}

/// A complete response of the proxy's own (an error page).
pub fn error_response(out: &mut Vec<u8>, status: u16, msg: &str, keep_alive: bool) {
    let reason = match status {
        400 => "Bad Request",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        417 => "Expectation Failed",
        431 => "Request Header Fields Too Large",
        502 => "Bad Gateway",
        504 => "Gateway Timeout",
        _ => "Error",
    };
    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    decimal(out, u64::from(status));
    out.push(b' ');
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ");
    decimal(out, msg.len() as u64 + 1);
    out.extend_from_slice(b"\r\n");
    if !keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(msg.as_bytes());
    out.push(b'\n');
}

/// Wraps `data` as one chunk (empty data: the last chunk).
pub fn chunk(out: &mut Vec<u8>, data: &[u8]) {
    use std::io::Write;
    let _ = write!(out, "{:x}\r\n", data.len());
    // For the last chunk, this ends the (empty) trailer section.
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Where the chunked decoder is in the coding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Size { digits: u8 },
    Ext,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    LineStart,
    Line,
    EndLf,
    Done,
}

/// A malformed chunked body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadChunk;

/// Walks a chunked body (RFC 9112 7.1) a buffer at a time: finds where it ends, and hands
/// out the data it carries. Trailers are skipped.
#[derive(Clone, Copy, Debug)]
pub struct ChunkedDecoder {
    state: State,
    size: u64,
    meta: usize,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder {
            state: State::Size { digits: 0 },
            size: 0,
            meta: 0,
        }
    }
}

impl ChunkedDecoder {
    /// Whether the whole body (last chunk and trailers) has been seen.
    pub fn done(&self) -> bool {
        self.state == State::Done
    }

    /// The data the current chunk still announces (0 between chunks), so a reader can refuse a
    /// body that will be too large before waiting for it.
    pub fn announced(&self) -> u64 {
        match self.state {
            State::Data | State::SizeLf | State::Ext => self.size,
            _ => 0,
        }
    }

    /// Reads `input` until the body ends or the input does; `data` gets the chunks' data.
    /// Returns how many bytes of `input` belong to the body.
    pub fn feed(&mut self, input: &[u8], mut data: impl FnMut(&[u8])) -> Result<usize, BadChunk> {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.state {
                State::Done => return Ok(i),
                State::Data => {
                    let n = (input.len() - i).min(usize::try_from(self.size).unwrap_or(usize::MAX));
                    data(&input[i..i + n]);
                    self.size -= n as u64;
                    i += n;
                    if self.size == 0 {
                        self.state = State::DataCr;
                    }
                    continue;
                }
                State::Size { digits } => {
                    if let Some(d) = (b as char).to_digit(16) {
                        // At most 15 hex digits (2^60 - 1): no size near the u64 limit.
                        if digits >= 15 {
                            return Err(BadChunk);
                        }
                        self.size = self.size << 4 | u64::from(d);
                        self.state = State::Size { digits: digits + 1 };
                    } else if digits == 0 {
                        return Err(BadChunk);
                    } else if b == b'\r' {
                        self.state = State::SizeLf;
                    } else if b == b';' || b == b' ' || b == b'\t' {
                        self.state = State::Ext;
                    } else {
                        return Err(BadChunk);
                    }
                }
                State::Ext => {
                    self.meta += 1;
                    if self.meta > MAX_CHUNK_META {
                        return Err(BadChunk);
                    }
                    if b == b'\r' {
                        self.state = State::SizeLf;
                    } else if b == b'\n' {
                        return Err(BadChunk);
                    }
                }
                State::SizeLf => {
                    if b != b'\n' {
                        return Err(BadChunk);
                    }
                    self.state = if self.size == 0 {
                        State::LineStart
                    } else {
                        State::Data
                    };
                }
                State::DataCr => {
                    if b != b'\r' {
                        return Err(BadChunk);
                    }
                    self.state = State::DataLf;
                }
                State::DataLf => {
                    if b != b'\n' {
                        return Err(BadChunk);
                    }
                    self.state = State::Size { digits: 0 };
                }
                State::LineStart => {
                    self.state = if b == b'\r' {
                        State::EndLf
                    } else {
                        State::Line
                    };
                }
                State::Line => {
                    self.meta += 1;
                    if self.meta > MAX_CHUNK_META {
                        return Err(BadChunk);
                    }
                    if b == b'\n' {
                        self.state = State::LineStart;
                    }
                }
                State::EndLf => {
                    if b != b'\n' {
                        return Err(BadChunk);
                    }
                    self.state = State::Done;
                }
            }
            i += 1;
        }
        Ok(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(raw: &str, ip: Option<&str>) -> (Result<Option<Request>, Refusal>, String) {
        req_from(raw, ip, false)
    }

    fn req_from(
        raw: &str,
        ip: Option<&str>,
        trusted: bool,
    ) -> (Result<Option<Request>, Refusal>, String) {
        let mut fwd = Vec::new();
        let r = parse_request(raw.as_bytes(), Client { ip, trusted }, &mut fwd);
        (r, String::from_utf8_lossy(&fwd).into_owned())
    }

    fn full(raw: &str) -> (Request, String) {
        let (r, mut fwd) = req(raw, Some("10.0.0.9"));
        let r = r.expect("parses").expect("complete");
        let mut bytes = fwd.into_bytes();
        finish_request(&mut bytes, &r, "127.0.0.1:81", Sent::Length(0));
        fwd = String::from_utf8_lossy(&bytes).into_owned();
        (r, fwd)
    }

    #[test]
    fn a_request_head_is_rewritten_for_the_peer() {
        let (r, fwd) = full(
            "GET /a?b=1 HTTP/1.1\r\nHost: svc\r\nConnection: keep-alive, X-Secret\r\n\
             X-Secret: 1\r\nKeep-Alive: 5\r\nTE: trailers\r\nX-Forwarded-For: 1.2.3.4\r\n\
             Accept: */*\r\n\r\n",
        );
        assert_eq!(
            fwd,
            "GET /a?b=1 HTTP/1.1\r\nHost: svc\r\nAccept: */*\r\n\
             X-Forwarded-For: 10.0.0.9\r\nX-Forwarded-Proto: http\r\n\r\n"
        );
        assert!(r.idempotent && r.keep_alive && !r.http10 && !r.upgrade);
        assert_eq!(r.framing, Framing::None);
        assert!(!r.has_body_field);
    }

    #[test]
    fn partial_heads_wait_and_bad_ones_are_refused() {
        assert_eq!(req("GET / HTTP/1.1\r\nHost: a\r\n", None).0, Ok(None));
        let status = |raw: &str| req(raw, None).0.map(|_| 0).unwrap_or_else(|e| e.status);
        assert_eq!(status("GARBAGE\r\n\r\n"), 400);
        assert_eq!(status("GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n"), 400);
        assert_eq!(
            status("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"),
            400
        );
        assert_eq!(
            status("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
            400
        );
        assert_eq!(
            status("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"),
            400
        );
        assert_eq!(
            status("GET / HTTP/1.1\r\nHost: a\r\nExpect: magic\r\n\r\n"),
            417
        );
        assert_eq!(status("CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n"), 405);
        assert_eq!(status("GET nowhere HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
        let many: String = (0..MAX_HEADERS + 1)
            .map(|i| format!("X-{i}: v\r\n"))
            .collect();
        assert_eq!(status(&format!("GET / HTTP/1.1\r\n{many}\r\n")), 431);
        let long = format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(MAX_HEAD + 1));
        assert_eq!(status(&long), 431);
    }

    #[test]
    fn bodies_keep_alive_and_targets() {
        let (r, fwd) = full(
            "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
        );
        assert_eq!(r.framing, Framing::Length(5));
        assert!(r.expect_continue && !r.idempotent);
        assert!(fwd.ends_with("Content-Length: 0\r\n\r\n"), "{fwd}");
        assert!(!fwd.contains("Expect"));
        let (r, _) = full("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n");
        assert_eq!(r.framing, Framing::Chunked);
        assert!(r.has_body_field);
        let (r, fwd) = full("GET / HTTP/1.0\r\n\r\n");
        assert!(r.http10 && !r.keep_alive && r.no_host);
        assert!(fwd.contains("Host: 127.0.0.1:81\r\n"), "{fwd}");
        let (r, _) = full("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        assert!(r.keep_alive);
        let (r, _) = full("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
        assert!(!r.keep_alive);
        let (r, fwd) = full("GET http://example.org:8080/p?q HTTP/1.0\r\n\r\n");
        assert!(
            fwd.starts_with("GET /p?q HTTP/1.1\r\nHost: example.org:8080\r\n"),
            "{fwd}"
        );
        assert!(!r.no_host);
        let (_, fwd) = full("GET http://example.org HTTP/1.1\r\nHost: h\r\n\r\n");
        assert!(fwd.starts_with("GET / HTTP/1.1\r\nHost: h\r\n"), "{fwd}");
        let (r, fwd) = full(
            "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        );
        assert!(r.upgrade);
        assert!(
            fwd.contains("Upgrade: websocket\r\n") && fwd.contains("Connection: upgrade\r\n"),
            "{fwd}"
        );
        // Without forwarded-for, a trusted proxy's X-Forwarded-For passes as it came.
        let (_, fwd) = req_from(
            "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.1.1.1\r\n\r\n",
            None,
            true,
        );
        assert_eq!(
            fwd,
            "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.1.1.1\r\n"
        );
    }

    #[test]
    fn only_a_trusted_proxy_says_where_a_request_came_from() {
        let spoof = "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 6.6.6.6\r\n\
                     Forwarded: for=6.6.6.6\r\nX-Real-IP: 6.6.6.6\r\nX-Forwarded-Proto: https\r\n\
                     X-Forwarded-Host: evil\r\nx-forwarded-port: 1\r\n\r\n";
        let (_, fwd) = req_from(spoof, Some("10.0.0.9"), false);
        assert_eq!(
            fwd,
            "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 10.0.0.9\r\n\
             X-Forwarded-Proto: http\r\n"
        );
        let (_, fwd) = req_from(spoof, None, false);
        assert_eq!(fwd, "GET / HTTP/1.1\r\nHost: a\r\n");
        let (_, fwd) = req_from(spoof, Some("10.0.0.9"), true);
        assert!(
            fwd.contains("X-Forwarded-For: 6.6.6.6, 10.0.0.9\r\n")
                && fwd.contains("Forwarded: for=6.6.6.6\r\n")
                && fwd.contains("X-Forwarded-Proto: https\r\n")
                && !fwd.contains("X-Forwarded-Proto: http\r\n"),
            "{fwd}"
        );
    }

    #[test]
    fn host_and_transfer_codings_follow_rfc_9112() {
        let status = |raw: &str| req(raw, None).0.map(|_| 0).unwrap_or_else(|e| e.status);
        // A coding the proxy cannot take off is refused, never forwarded without its name.
        assert_eq!(
            status("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            501
        );
        assert_eq!(
            status("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"),
            400
        );
        assert_eq!(
            status(
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\
                 Transfer-Encoding: chunked\r\n\r\n"
            ),
            400
        );
        assert_eq!(
            status("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"),
            400
        );
        assert_eq!(
            status("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
            400
        );
        assert_eq!(status("GET / HTTP/1.1\r\n\r\n"), 400, "HTTP/1.1 needs Host");
        assert_eq!(
            status("GET http://a/ HTTP/1.1\r\n\r\n"),
            400,
            "even in absolute form"
        );
        assert_eq!(status("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
        // `Connection` cannot make Host hop-by-hop.
        let (_, fwd) = full("GET / HTTP/1.1\r\nHost: a\r\nConnection: Host, close\r\n\r\n");
        assert!(fwd.contains("Host: a\r\n"), "{fwd}");
        assert!(!fwd.contains("Host: 127.0.0.1:81"), "{fwd}");
    }

    fn resp(raw: &str, request: &str) -> (Response, String) {
        let (r, _) = full(request);
        let mut out = Vec::new();
        let p = parse_response(raw.as_bytes(), &r, &mut out)
            .expect("parses")
            .expect("complete");
        (p, String::from_utf8_lossy(&out).into_owned())
    }

    const GET: &str = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    const GET10: &str = "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";

    #[test]
    fn response_framing_per_rfc_9112() {
        let (r, out) = resp(
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX: y\r\n\r\nabc",
            GET,
        );
        assert_eq!(
            (r.relay, r.reusable, r.keep_alive),
            (Relay::Length(3), true, true)
        );
        assert_eq!(out, "HTTP/1.1 200 OK\r\nX: y\r\nContent-Length: 3\r\n\r\n");
        let (r, out) = resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", GET);
        assert_eq!(r.relay, Relay::Chunks);
        assert!(out.contains("Transfer-Encoding: chunked\r\n"));
        let (r, out) = resp(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            GET10,
        );
        assert_eq!((r.relay, r.keep_alive), (Relay::Dechunk, false));
        assert!(out.contains("Connection: close\r\n") && !out.contains("chunked"));
        let (r, out) = resp("HTTP/1.0 200 OK\r\n\r\n", GET);
        assert_eq!(
            (r.relay, r.reusable, r.keep_alive),
            (Relay::Rechunk, false, true)
        );
        assert!(out.contains("Transfer-Encoding: chunked\r\n"));
        // A coding other than chunked stays named on the body it is still applied to.
        let (r, out) = resp(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            GET,
        );
        assert_eq!(r.relay, Relay::Chunks);
        assert!(
            out.contains("Transfer-Encoding: gzip, chunked\r\n"),
            "{out}"
        );
        let (r, out) = resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", GET);
        assert_eq!(r.relay, Relay::Rechunk);
        assert!(
            out.contains("Transfer-Encoding: gzip, chunked\r\n"),
            "{out}"
        );
        let (r, _) = resp("HTTP/1.1 200 OK\r\n\r\n", GET10);
        assert_eq!((r.relay, r.keep_alive), (Relay::Raw, false));
        let (r, out) = resp("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", GET10);
        assert!(r.keep_alive && out.contains("Connection: keep-alive\r\n"));
        let (r, out) = resp(
            "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n",
            "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n",
        );
        assert_eq!(r.relay, Relay::None);
        assert!(out.contains("Content-Length: 7\r\n"));
        let (r, _) = resp("HTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\n", GET);
        assert_eq!((r.relay, r.reusable), (Relay::None, true));
        let (r, _) = resp(
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\n",
            GET,
        );
        assert!(!r.reusable && r.keep_alive);
        let (r, _) = resp(
            "HTTP/1.0 200 OK\r\nContent-Length: 1\r\nConnection: keep-alive\r\n\r\n",
            GET,
        );
        assert!(r.reusable);
        let (r, _) = resp("HTTP/1.1 100 Continue\r\n\r\n", GET);
        assert!(r.interim && !r.switch);
        let (r, out) = resp(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
        );
        assert!(r.switch && !r.interim && !r.reusable);
        assert!(out.contains("Upgrade: websocket\r\n") && out.contains("Connection: upgrade\r\n"));
        let mut out = Vec::new();
        let (get, _) = full(GET);
        assert!(
            parse_response(
                b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
                &get,
                &mut out
            )
            .is_err()
        );
        assert!(parse_response(b"SSH-2.0-OpenSSH\r\n\r\n", &get, &mut out).is_err());
        assert!(
            parse_response(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
                &get,
                &mut out
            )
            .is_err()
        );
        assert_eq!(
            parse_response(b"HTTP/1.1 200 OK\r\n", &get, &mut out),
            Ok(None)
        );
    }

    #[test]
    fn chunked_bodies_pass_through_or_decode_in_any_split() {
        let body = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\nNEXT";
        for split in 0..=body.len() - 4 {
            let mut d = ChunkedDecoder::default();
            let mut data = Vec::new();
            let a = d
                .feed(&body[..split], |c| data.extend_from_slice(c))
                .expect("ok");
            assert_eq!(a, split);
            let b = d
                .feed(&body[split..], |c| data.extend_from_slice(c))
                .expect("ok");
            assert_eq!(split + b, body.len() - 4, "split {split}");
            assert!(d.done());
            assert_eq!(data, b"hello world");
        }
        for bad in [
            &b"x\r\n"[..],
            b"5\r\nhello\n",
            b"5\nhello",
            b"1111111111111111\r\n",
        ] {
            assert_eq!(
                ChunkedDecoder::default().feed(bad, |_| {}),
                Err(BadChunk),
                "{bad:?}"
            );
        }
        let mut out = Vec::new();
        chunk(&mut out, b"abc");
        chunk(&mut out, b"");
        assert_eq!(out, b"3\r\nabc\r\n0\r\n\r\n");
    }
}
