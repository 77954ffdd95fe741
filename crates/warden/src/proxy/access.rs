//! The proxy's access log: one line per HTTP request or TCP session, in HAProxy's `httplog` and
//! `tcplog` layouts (so `halog` and the parsers written for HAProxy read it) or as JSON lines.
//! Lines go to a thread of their own through a bounded queue: the proxy never waits on the
//! disk, and when the disk cannot keep up, lines are dropped and counted, never traffic held.
//! The file is opened for appending (created 0640) and reopened on SIGHUP, for logrotate.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

use tracing::{error, warn};

/// How lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// HAProxy's `option httplog` / `option tcplog` fields, without the syslog header.
    #[default]
    Haproxy,
    /// One JSON object a line, with the same fields named.
    Json,
}

impl Format {
    pub const NAMES: &'static str = "\"haproxy\" or \"json\"";

    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "haproxy" => Some(Format::Haproxy),
            "json" => Some(Format::Json),
            _ => None,
        }
    }
}

/// A listener's `access_log`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    pub path: PathBuf,
    pub format: Format,
}

/// Lines waiting for the writer at most; more are dropped (and counted).
const QUEUE: usize = 16 * 1024;

enum Msg {
    Line(String),
    Reopen,
}

/// An open access log file, shared by every listener writing to it.
#[derive(Debug)]
pub struct Sink {
    path: PathBuf,
    tx: SyncSender<Msg>,
    dropped: AtomicU64,
    /// When a drop was last reported (at most every 10 s).
    reported: Mutex<Option<Instant>>,
}

/// The open files by path: a reload that keeps a listener's `access_log` keeps its writer.
static SINKS: Mutex<BTreeMap<PathBuf, Weak<Sink>>> = Mutex::new(BTreeMap::new());

/// The sink writing to `path`, opened (and its writer started) when none is open.
pub fn open(path: &Path) -> std::io::Result<Arc<Sink>> {
    let mut sinks = SINKS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(s) = sinks.get(path).and_then(Weak::upgrade) {
        return Ok(s);
    }
    let file = open_file(path)?;
    let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
    let owned = path.to_path_buf();
    std::thread::Builder::new()
        .name("warden-access-log".into())
        .spawn(move || write_loop(&owned, file, &rx))?;
    let sink = Arc::new(Sink {
        path: path.to_path_buf(),
        tx,
        dropped: AtomicU64::new(0),
        reported: Mutex::new(None),
    });
    sinks.retain(|_, w| w.strong_count() > 0);
    sinks.insert(path.to_path_buf(), Arc::downgrade(&sink));
    Ok(sink)
}

/// Reopens every access log (SIGHUP, after logrotate moved the files away).
pub fn reopen_all() {
    let sinks = SINKS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for s in sinks.values().filter_map(Weak::upgrade) {
        // Blocking: a reopen must not be dropped like a line.
        let _ = s.tx.send(Msg::Reopen);
    }
}

fn open_file(path: &Path) -> std::io::Result<BufWriter<File>> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)?;
    Ok(BufWriter::with_capacity(64 << 10, f))
}

/// Writes lines as they come and flushes whenever the queue is empty, so a line is on disk
/// as soon as the proxy is not busy, and in batches when it is.
fn write_loop(path: &Path, mut file: BufWriter<File>, rx: &Receiver<Msg>) {
    let mut failing = false;
    while let Ok(mut msg) = rx.recv() {
        loop {
            match msg {
                Msg::Line(l) => {
                    if let Err(e) = file.write_all(l.as_bytes()) {
                        if !failing {
                            error!(path = %path.display(), error = %e, "cannot write the access log");
                        }
                        failing = true;
                    }
                }
                Msg::Reopen => {
                    let _ = file.flush();
                    match open_file(path) {
                        Ok(f) => {
                            file = f;
                            failing = false;
                        }
                        Err(e) => {
                            error!(path = %path.display(), error = %e, "cannot reopen the access log; writing on to the old file");
                        }
                    }
                }
            }
            match rx.try_recv() {
                Ok(m) => msg = m,
                Err(_) => break,
            }
        }
        if let Err(e) = file.flush() {
            if !failing {
                error!(path = %path.display(), error = %e, "cannot write the access log");
            }
            failing = true;
        }
    }
    let _ = file.flush();
}

impl Sink {
    /// Queues one line (with its newline); dropped and counted when the writer is behind.
    pub fn write(&self, line: String) {
        match self.tx.try_send(Msg::Line(line)) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                let now = Instant::now();
                let due = self.reported.lock().is_ok_and(|mut t| {
                    let due = t.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(10));
                    if due {
                        *t = Some(now);
                    }
                    due
                });
                if due {
                    warn!(path = %self.path.display(), dropped = n, "the access log cannot keep up; lines dropped");
                }
            }
        }
    }

    /// Lines dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Milliseconds since `from`, for a timer field.
pub fn ms_since(from: Instant) -> i64 {
    i64::try_from(from.elapsed().as_millis()).unwrap_or(i64::MAX)
}

/// What one HTTP request or TCP session did: HAProxy's log fields.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub client: SocketAddr,
    /// When the request (HTTP: its first byte) or the session (TCP) began.
    pub at: SystemTime,
    pub listener: &'a str,
    pub upstream: &'a str,
    /// The peer that took it; `None`: no peer did (`<NOSRV>`).
    pub peer: Option<&'a str>,
    /// HTTP: milliseconds until the request head was whole (`TR`).
    pub t_request: i64,
    /// Milliseconds to connect to the peer (`Tc`; 0 on a kept-alive connection, -1 none).
    pub t_connect: i64,
    /// HTTP: milliseconds from the request sent to the response head (`Tr`; -1 none).
    pub t_response: i64,
    /// Milliseconds in all (`Ta` for HTTP, `Tt` for TCP).
    pub t_total: i64,
    /// HTTP: the status sent to the client (-1: none).
    pub status: i32,
    /// Bytes sent to the client.
    pub bytes: u64,
    /// HAProxy's termination state: who ended it (`-` nobody early, `C`/`S` client/server,
    /// `c`/`s` their time-outs, `P` the proxy refused, `K` closed by policy) and in which
    /// phase (`R` request, `C` connect, `H` response head, `D` data, `-` done).
    pub term: [u8; 2],
    /// Sessions open: in every listener, this listener, to this upstream, to this peer.
    pub conns: [u64; 4],
    /// Attempts that failed before the one that answered (or gave up).
    pub retries: u32,
    /// HTTP: the request line.
    pub request: Option<&'a str>,
}

impl Entry<'_> {
    /// The line in `format`, with its newline.
    pub fn line(&self, format: Format) -> String {
        match format {
            Format::Haproxy => self.haproxy(),
            Format::Json => self.json(),
        }
    }

    fn millis(&self) -> u64 {
        self.at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    fn term_str(&self) -> String {
        String::from_utf8_lossy(&self.term).into_owned()
    }

    /// HAProxy's line: for HTTP,
    /// `127.0.0.1:40318 [05/Dec/2026:12:14:14.655] web app/10.0.0.2:8080 0/0/1/3/4 200 2750 - - ---- 3/3/1/1/0 0/0 "GET / HTTP/1.1"`,
    /// for TCP, `... db pg/10.0.0.3:5432 0/0/5007 212 -- 0/0/0/0/3 0/0`. Dates are UTC.
    fn haproxy(&self) -> String {
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let c = warden_engine::Time::from_millis(self.millis()).civil();
        let month = MONTHS[usize::try_from(c.month.saturating_sub(1)).unwrap_or(0) % 12];
        let mut l = String::with_capacity(160);
        let _ = write!(
            l,
            "{} [{:02}/{month}/{:04}:{:02}:{:02}:{:02}.{:03}] {} {}/{} ",
            self.client,
            c.day,
            c.year,
            c.hour,
            c.minute,
            c.second,
            c.milli,
            self.listener,
            self.upstream,
            self.peer.unwrap_or("<NOSRV>"),
        );
        let [act, fe, be, srv] = self.conns;
        match self.request {
            Some(request) => {
                let _ = write!(
                    l,
                    "{}/0/{}/{}/{} {} {} - - {}-- {act}/{fe}/{be}/{srv}/{} 0/0 \"",
                    self.t_request,
                    self.t_connect,
                    self.t_response,
                    self.t_total,
                    self.status,
                    self.bytes,
                    self.term_str(),
                    self.retries,
                );
                escape_into(&mut l, request);
                l.push('"');
            }
            None => {
                let _ = write!(
                    l,
                    "0/{}/{} {} {} {act}/{fe}/{be}/{srv}/{} 0/0",
                    self.t_connect,
                    self.t_total,
                    self.bytes,
                    self.term_str(),
                    self.retries,
                );
            }
        }
        l.push('\n');
        l
    }

    fn json(&self) -> String {
        let [act, fe, be, srv] = self.conns;
        let mut v = serde_json::json!({
            "time": warden_engine::Time::from_millis(self.millis()).rfc3339(),
            "client": self.client.to_string(),
            "listener": self.listener,
            "upstream": self.upstream,
            "peer": self.peer,
            "connect_ms": self.t_connect,
            "total_ms": self.t_total,
            "bytes": self.bytes,
            "termination": self.term_str(),
            "connections": { "process": act, "listener": fe, "upstream": be, "peer": srv },
            "retries": self.retries,
        });
        if let Some(request) = self.request {
            v["request"] = request.into();
            v["request_ms"] = self.t_request.into();
            v["response_ms"] = self.t_response.into();
            v["status"] = self.status.into();
        }
        let mut l = v.to_string();
        l.push('\n');
        l
    }
}

/// The request line as HAProxy logs it: printable ASCII as is, anything else (and `"` and `#`)
/// as `#XX`, so a line can never be split or forged.
fn escape_into(out: &mut String, s: &str) {
    for b in s.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'"' && b != b'#' {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "#{b:02X}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry<'static> {
        Entry {
            client: "10.0.1.2:33317".parse().expect("addr"),
            at: SystemTime::UNIX_EPOCH + Duration::from_millis(1_233_922_454_655),
            listener: "http-in",
            upstream: "static",
            peer: Some("10.0.0.5:80"),
            t_request: 10,
            t_connect: 30,
            t_response: 69,
            t_total: 109,
            status: 200,
            bytes: 2750,
            term: *b"--",
            conns: [1, 1, 1, 1],
            retries: 0,
            request: Some("GET /index.html HTTP/1.1"),
        }
    }

    #[test]
    fn lines_have_haproxys_fields_in_haproxys_order() {
        // HAProxy's own example line (its configuration manual, "HTTP log format"), less the
        // syslog header and with the server named by address.
        assert_eq!(
            entry().line(Format::Haproxy),
            "10.0.1.2:33317 [06/Feb/2009:12:14:14.655] http-in static/10.0.0.5:80 10/0/30/69/109 200 2750 - - ---- 1/1/1/1/0 0/0 \"GET /index.html HTTP/1.1\"\n"
        );
        let tcp = Entry {
            request: None,
            peer: None,
            t_connect: -1,
            bytes: 0,
            term: *b"SC",
            retries: 3,
            ..entry()
        };
        assert_eq!(
            tcp.line(Format::Haproxy),
            "10.0.1.2:33317 [06/Feb/2009:12:14:14.655] http-in static/<NOSRV> 0/-1/109 0 SC 1/1/1/1/3 0/0\n"
        );
    }

    #[test]
    fn a_request_line_cannot_break_or_forge_a_log_line() {
        let e = Entry {
            request: Some("GET /a\"b#c\u{7f}\u{e9} HTTP/1.1"),
            ..entry()
        };
        let l = e.line(Format::Haproxy);
        assert!(l.ends_with("\"GET /a#22b#23c#7F#C3#A9 HTTP/1.1\"\n"), "{l}");
        let j: serde_json::Value =
            serde_json::from_str(e.line(Format::Json).trim_end()).expect("json");
        assert_eq!(j["request"], "GET /a\"b#c\u{7f}\u{e9} HTTP/1.1");
        assert_eq!(j["status"], 200);
        assert_eq!(j["time"], "2009-02-06T12:14:14.655Z");
        assert_eq!(j["termination"], "--");
    }
}

#[cfg(test)]
mod file_tests {
    use super::*;

    #[test]
    fn lines_reach_the_file_and_a_reopen_follows_logrotate() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("access.log");
        let sink = open(&path).expect("open");
        assert!(
            Arc::ptr_eq(&sink, &open(&path).expect("again")),
            "one writer a file"
        );
        sink.write("one\n".to_owned());
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        let wait = |p: &Path, want: &str| {
            let deadline = Instant::now() + Duration::from_secs(10);
            while read(p) != want && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            assert_eq!(read(p), want);
        };
        wait(&path, "one\n");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
        let rotated = dir.path().join("access.log.1");
        std::fs::rename(&path, &rotated).expect("rotate");
        reopen_all();
        sink.write("two\n".to_owned());
        wait(&path, "two\n");
        assert_eq!(read(&rotated), "one\n");
        assert_eq!(sink.dropped(), 0);
    }
}
