//! Active health checks of upstream peers: the checks themselves (`probe`),
//! the per-upstream runner (`runner`), and the outputs (status page, JSON, Prometheus). The
//! hysteresis deciding UP and DOWN is pure and lives in `warden_engine::health`.

pub mod runner;
pub mod tls;

use std::fmt;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use warden_engine::health::Hysteresis;

/// A peer of an upstream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// As written in the configuration: `127.0.0.1:8081`, `[::1]:8081`, `db.local:5432`.
    pub addr: String,
    pub host: String,
    pub port: u16,
    pub weight: u32,
    pub max_fails: u32,
    pub fail_timeout: Duration,
    /// Marked down by the operator: never checked, never routed to.
    pub down: bool,
}

impl Peer {
    /// A peer with nginx's defaults (`weight` 1, `max_fails` 1, `fail_timeout` 10 s).
    pub fn new(addr: String, host: String, port: u16) -> Peer {
        Peer {
            addr,
            host,
            port,
            weight: 1,
            max_fails: 1,
            fail_timeout: Duration::from_secs(10),
            down: false,
        }
    }

    /// A peer from `HOST:PORT` as written, its address in canonical form (`[0:0::1]:80` is
    /// `[::1]:80`), so one peer has one name in the status, the metrics and the API.
    pub fn parse(s: &str) -> Result<Peer, String> {
        let (host, port) = parse_peer_addr(s)?;
        Ok(Peer::new(peer_addr(&host, port), host, port))
    }
}

/// The canonical `HOST:PORT` of a peer (an IPv6 address bracketed).
pub fn peer_addr(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// What a check does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckKind {
    /// Send these bytes, read an HTTP status line (and the body when it must match); over TLS
    /// when `tls` is set (`https`).
    Http {
        request: Vec<u8>,
        tls: Option<tls::Tls>,
    },
    /// Connect.
    Tcp,
    /// Run a command (with `WARDEN_PEER_HOST` and `WARDEN_PEER_PORT`); exit 0 is healthy.
    Exec { command: Vec<String> },
}

/// How an upstream's peers are checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckSpec {
    pub kind: CheckKind,
    pub interval: Duration,
    /// One deadline for the whole check (connect, send, receive).
    pub timeout: Duration,
    pub hysteresis: Hysteresis,
    /// Statuses that count as healthy; None: any status line does (as in lua-resty).
    pub valid_statuses: Option<Vec<u16>>,
    /// A string the response body must contain.
    pub body: Option<String>,
    /// Checks in flight at once for this upstream.
    pub concurrency: usize,
    /// Each peer's checks are shifted by a random fraction of this, so they never bunch.
    pub jitter: Duration,
    /// Check this port instead of the peer's.
    pub port: Option<u16>,
    /// Whether a peer not yet checked (UNKNOWN) takes traffic.
    pub unknown_routable: bool,
    /// HTTP: keep the connection to each peer open between checks (as Envoy does), instead of
    /// a new connection per check (as HAProxy and lua-resty do).
    pub keepalive: bool,
}

impl Default for CheckSpec {
    fn default() -> Self {
        CheckSpec {
            kind: CheckKind::Tcp,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            hysteresis: Hysteresis::default(),
            valid_statuses: None,
            body: None,
            concurrency: 10,
            jitter: Duration::ZERO,
            port: None,
            unknown_routable: true,
            keepalive: false,
        }
    }
}

/// An upstream: primary peers, backup peers, one check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upstream {
    pub name: String,
    pub primary: Vec<Peer>,
    pub backup: Vec<Peer>,
    pub check: CheckSpec,
}

/// Why a check failed, by kind (the first of each kind is logged at ERROR while the peer is up).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckError {
    Refused,
    Timeout,
    Io(String),
    BadStatusLine,
    BadStatus(u16),
    BodyMismatch,
    Exit(i32),
    Tls(String),
    /// This machine could not check (out of descriptors or memory): says nothing of the peer,
    /// and is not counted against it.
    Local(String),
}

impl CheckError {
    /// A failed connect: refused, or another I/O error.
    pub fn from_connect(e: &std::io::Error) -> CheckError {
        if crate::fds::is_local_exhaustion(e) {
            return CheckError::Local(e.to_string());
        }
        match e.kind() {
            std::io::ErrorKind::ConnectionRefused => CheckError::Refused,
            _ => CheckError::Io(e.to_string()),
        }
    }

    /// The kind, without details: errors of one kind are logged once while the peer is up.
    pub fn kind(&self) -> &'static str {
        match self {
            CheckError::Refused => "refused",
            CheckError::Timeout => "timeout",
            CheckError::Io(_) => "io",
            CheckError::BadStatusLine => "bad status line",
            CheckError::BadStatus(_) => "bad status",
            CheckError::BodyMismatch => "body mismatch",
            CheckError::Exit(_) => "exit",
            CheckError::Tls(_) => "tls",
            CheckError::Local(_) => "local",
        }
    }
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckError::Refused => f.write_str("connection refused"),
            CheckError::Timeout => f.write_str("timeout"),
            CheckError::Io(e) => write!(f, "{e}"),
            CheckError::BadStatusLine => f.write_str("bad status line"),
            CheckError::BadStatus(c) => write!(f, "bad status code {c}"),
            CheckError::BodyMismatch => f.write_str("body does not match"),
            CheckError::Exit(c) => write!(f, "check command exited with {c}"),
            CheckError::Tls(e) => write!(f, "tls: {e}"),
            CheckError::Local(e) => write!(f, "this machine cannot check now: {e}"),
        }
    }
}

/// How much of a response is read when the body must match.
const BODY_LIMIT: usize = 64 * 1024;

/// Checks one peer once, within `check.timeout` as a whole.
pub async fn probe(peer: &Peer, check: &CheckSpec) -> Result<(), CheckError> {
    match tokio::time::timeout(check.timeout, probe_inner(peer, check)).await {
        Ok(r) => r,
        Err(_) => Err(CheckError::Timeout),
    }
}

/// A check over a connection kept between checks (`keepalive`, plain HTTP): `conn` holds it.
/// A new one is opened when there is none; it is kept only when the response was read whole
/// (by its Content-Length) and the peer did not ask to close; any failure drops it.
pub async fn probe_keepalive(
    peer: &Peer,
    check: &CheckSpec,
    conn: &mut Option<TcpStream>,
) -> Result<(), CheckError> {
    let CheckKind::Http { request, tls: None } = &check.kind else {
        return probe(peer, check).await;
    };
    let taken = conn.take();
    let attempt = async {
        let mut s = match taken {
            Some(s) => s,
            None => {
                let port = check.port.unwrap_or(peer.port);
                TcpStream::connect((peer.host.as_str(), port))
                    .await
                    .map_err(|e| CheckError::from_connect(&e))?
            }
        };
        let (head, body, reusable) = exchange_keepalive(&mut s, request).await?;
        Ok::<_, CheckError>((s, head, body, reusable))
    };
    let (s, head, body, reusable) = match tokio::time::timeout(check.timeout, attempt).await {
        Ok(r) => r?,
        Err(_) => return Err(CheckError::Timeout),
    };
    let status = status_code(&head).ok_or(CheckError::BadStatusLine)?;
    if reusable {
        *conn = Some(s);
    }
    if let Some(valid) = &check.valid_statuses {
        if !valid.contains(&status) {
            return Err(CheckError::BadStatus(status));
        }
    }
    if let Some(want) = &check.body {
        if !String::from_utf8_lossy(&body).contains(want.as_str()) {
            return Err(CheckError::BodyMismatch);
        }
    }
    Ok(())
}

/// Sends a request on a kept connection and reads the response head and its body by its
/// Content-Length: (head, body, whether the connection can carry the next check).
async fn exchange_keepalive(
    s: &mut TcpStream,
    request: &[u8],
) -> Result<(Vec<u8>, Vec<u8>, bool), CheckError> {
    let io = |e: std::io::Error| CheckError::Io(e.to_string());
    s.write_all(request).await.map_err(io)?;
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() >= BODY_LIMIT {
            return Ok((buf, Vec::new(), false));
        }
        let n = s.read(&mut chunk).await.map_err(io)?;
        if n == 0 {
            // Closed: whatever came is the answer, and the connection is done.
            return Ok((buf, Vec::new(), false));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let header = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(':')))
            .map(str::trim)
    };
    let length: Option<usize> = header("content-length").and_then(|v| v.parse().ok());
    let close = header("connection").is_some_and(|v| v.contains("close"))
        || head.starts_with("http/1.0")
            && !header("connection").is_some_and(|v| v.contains("keep-alive"));
    let code = status_code(&buf);
    let no_body = matches!(code, Some(100..=199 | 204 | 304));
    let mut body = buf.split_off(head_end);
    let Some(length) = length.or(no_body.then_some(0)) else {
        // No length (chunked, or until close): read what the check needs, then drop it.
        return Ok((buf, body, false));
    };
    if length > BODY_LIMIT {
        return Ok((buf, body, false));
    }
    while body.len() < length {
        let n = s.read(&mut chunk).await.map_err(io)?;
        if n == 0 {
            return Ok((buf, body, false));
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let exact = body.len() == length;
    Ok((buf, body, exact && !close))
}

async fn probe_inner(peer: &Peer, check: &CheckSpec) -> Result<(), CheckError> {
    let port = check.port.unwrap_or(peer.port);
    let connect = || async {
        let s = TcpStream::connect((peer.host.as_str(), port))
            .await
            .map_err(|e| CheckError::from_connect(&e))?;
        // Close with a reset, as HAProxy's checks do: no FIN exchange, no TIME_WAIT left behind
        // per check (most of a check's cost is the kernel's, at thousands of checks a second).
        let _ = s.set_zero_linger();
        Ok::<TcpStream, CheckError>(s)
    };
    match &check.kind {
        CheckKind::Tcp => connect().await.map(|_| ()),
        CheckKind::Http { request, tls } => {
            let s = connect().await?;
            let buf = match tls {
                None => exchange(s, request, check.body.is_some()).await?,
                Some(t) => {
                    let t = t.client().map_err(|e| CheckError::Tls(e.to_owned()))?;
                    let connector =
                        tokio_rustls::TlsConnector::from(std::sync::Arc::clone(&t.config));
                    let s = connector
                        .connect(t.server_name.clone(), s)
                        .await
                        .map_err(|e| CheckError::Tls(e.to_string()))?;
                    exchange(s, request, check.body.is_some()).await?
                }
            };
            // As lua-resty-upstream-healthcheck: without `valid_statuses`, any reply line
            // will do (the status line is not even parsed).
            match &check.valid_statuses {
                None if !buf.contains(&b'\n') => return Err(CheckError::BadStatusLine),
                None => {}
                Some(valid) => {
                    let status = status_code(&buf).ok_or(CheckError::BadStatusLine)?;
                    if !valid.contains(&status) {
                        return Err(CheckError::BadStatus(status));
                    }
                }
            }
            if let Some(want) = &check.body {
                let text = String::from_utf8_lossy(&buf);
                let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
                if !body.contains(want.as_str()) {
                    return Err(CheckError::BodyMismatch);
                }
            }
            Ok(())
        }
        CheckKind::Exec { command } => {
            let Some((prog, args)) = command.split_first() else {
                return Err(CheckError::Exit(-1));
            };
            let mut cmd = tokio::process::Command::new(prog);
            cmd.args(args)
                .env("WARDEN_PEER_HOST", &peer.host)
                .env("WARDEN_PEER_PORT", port.to_string());
            let r = crate::exec::run_command(cmd, check.timeout).await;
            if r.timed_out {
                Err(CheckError::Timeout)
            } else if r.rc == 0 {
                Ok(())
            } else {
                Err(CheckError::Exit(r.rc))
            }
        }
    }
}

/// Sends a request and reads the status line, or the whole response (up to a limit) when the
/// body must be read.
async fn exchange<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut s: S,
    request: &[u8],
    want_body: bool,
) -> Result<Vec<u8>, CheckError> {
    let io = |e: std::io::Error| CheckError::Io(e.to_string());
    s.write_all(request).await.map_err(io)?;
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 4096];
    loop {
        let n = match s.read(&mut chunk).await {
            Ok(n) => n,
            // A TLS peer closing without close_notify after the response: what we have counts.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !buf.is_empty() => 0,
            Err(e) => return Err(io(e)),
        };
        buf.extend_from_slice(&chunk[..n]);
        let line_done = buf.contains(&b'\n');
        if n == 0 || buf.len() >= BODY_LIMIT || (line_done && !want_body) {
            return Ok(buf);
        }
    }
}

/// The status code of an HTTP status line (`HTTP/1.1 200 OK`), if it is one.
pub fn status_code(buf: &[u8]) -> Option<u16> {
    let end = buf.iter().position(|&b| b == b'\n').unwrap_or(buf.len());
    let line = std::str::from_utf8(&buf[..end])
        .ok()?
        .trim_end_matches('\r');
    let mut parts = line.splitn(3, ' ');
    let version = parts.next()?;
    if !version.starts_with("HTTP/") {
        return None;
    }
    let code = parts.next()?;
    if code.len() != 3 {
        return None;
    }
    code.parse().ok().filter(|c| (100..600).contains(c))
}

/// Splits `host:port` (`[v6]:port` for IPv6).
pub fn parse_peer_addr(s: &str) -> Result<(String, u16), String> {
    let bad = || {
        format!(
            "bad peer address {s:?}: expected HOST:PORT, like \"127.0.0.1:8081\" or \"[::1]:8081\""
        )
    };
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, p) = rest.split_once("]:").ok_or_else(bad)?;
        (h, p)
    } else {
        let (h, p) = s.rsplit_once(':').ok_or_else(bad)?;
        if h.contains(':') {
            return Err(bad());
        }
        (h, p)
    };
    if host.is_empty() {
        return Err(bad());
    }
    let port: u16 = port.parse().map_err(|_| bad())?;
    if port == 0 {
        return Err(bad());
    }
    // An address in its one canonical form; a bracketed host must be an IPv6 address.
    let host = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) if s.starts_with('[') => return Err(bad()),
        Err(_) => host.to_ascii_lowercase(),
    };
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        let rows: &[(&[u8], Option<u16>)] = &[
            (b"HTTP/1.1 200 OK\r\n", Some(200)),
            (b"HTTP/1.0 302 Found\r\nLocation: /\r\n", Some(302)),
            (b"HTTP/1.1 503\r\n", Some(503)),
            (b"HTTP/1.1 200 OK", Some(200)),
            (b"SSH-2.0-OpenSSH_9.2\r\n", None),
            (b"HTTP/1.1 20 OK\r\n", None),
            (b"HTTP/1.1 abc OK\r\n", None),
            (b"HTTP/1.1 999 Nope\r\n", None),
            (b"", None),
            (b"\xff\xfe\r\n", None),
        ];
        for (raw, want) in rows {
            assert_eq!(
                status_code(raw),
                *want,
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn peer_addresses() {
        assert_eq!(
            parse_peer_addr("127.0.0.1:8081"),
            Ok(("127.0.0.1".into(), 8081))
        );
        assert_eq!(parse_peer_addr("[::1]:8081"), Ok(("::1".into(), 8081)));
        // One peer, one name.
        assert_eq!(parse_peer_addr("[0:0::1]:8081"), Ok(("::1".into(), 8081)));
        assert_eq!(
            Peer::parse("[0:0:0:0:0:0:0:1]:8081").map(|p| p.addr),
            Ok("[::1]:8081".into())
        );
        assert_eq!(
            Peer::parse("DB.Local:5432").map(|p| p.addr),
            Ok("db.local:5432".into())
        );
        assert!(parse_peer_addr("[not-ip]:80").is_err());
        assert_eq!(
            parse_peer_addr("db.local:5432"),
            Ok(("db.local".into(), 5432))
        );
        for bad in [
            "127.0.0.1",
            "::1:80",
            "[::1]80",
            ":80",
            "h:0",
            "h:99999",
            "h:x",
        ] {
            assert!(parse_peer_addr(bad).is_err(), "{bad}");
        }
    }
}
