//! The proxy's access log: one line per HTTP request or TCP session, in HAProxy's `httplog` and
//! `tcplog` layouts (so `halog` and the parsers written for HAProxy read it) or as JSON lines.
//! Lines are copied into a buffer that a thread of its own writes out in batches (at least
//! every 100 ms): the proxy never waits on the disk nor makes a system call per line, and when
//! the disk cannot keep up, lines are dropped and counted, never traffic held.
//! The file is opened for appending (created 0640) and reopened on SIGHUP, for logrotate.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
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

/// Bytes of lines waiting for the writer at most; more lines are dropped (and counted).
const HELD: usize = 8 << 20;
/// The writer is woken at once when this much waits; else it writes what waits every
/// [`FLUSH`] (nginx's `access_log ... buffer= flush=`).
const BATCH: usize = 64 << 10;
const FLUSH: Duration = Duration::from_millis(100);

/// What the proxy threads and the writer share.
#[derive(Debug, Default)]
struct Shared {
    /// Lines not written yet.
    waiting: Mutex<Vec<u8>>,
    wake: Condvar,
    reopen: AtomicBool,
    /// The sink is gone: the writer writes what waits and ends.
    closed: AtomicBool,
    dropped: AtomicU64,
    /// When a drop was last reported (at most every 10 s).
    reported: Mutex<Option<Instant>>,
}

/// An open access log file, shared by every listener writing to it.
#[derive(Debug)]
pub struct Sink {
    path: PathBuf,
    shared: Arc<Shared>,
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.wake.notify_one();
    }
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
    let shared = Arc::new(Shared::default());
    let owned = path.to_path_buf();
    let theirs = Arc::clone(&shared);
    std::thread::Builder::new()
        .name("warden-access-log".into())
        .spawn(move || write_loop(&owned, file, &theirs))?;
    let sink = Arc::new(Sink {
        path: path.to_path_buf(),
        shared,
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
        s.shared.reopen.store(true, Ordering::Release);
        s.shared.wake.notify_one();
    }
}

fn open_file(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
}

/// Writes what waits, in one write, whenever [`BATCH`] bytes wait and at least every
/// [`FLUSH`]: a busy proxy pays a copy per line, not a system call or a wake-up.
fn write_loop(path: &Path, mut file: File, shared: &Shared) {
    let mut failing = false;
    let mut chunk = Vec::new();
    loop {
        {
            let mut waiting = shared
                .waiting
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if waiting.len() < BATCH
                && !shared.reopen.load(Ordering::Acquire)
                && !shared.closed.load(Ordering::Acquire)
            {
                waiting = shared
                    .wake
                    .wait_timeout(waiting, FLUSH)
                    .map_or_else(|e| e.into_inner().0, |(g, _)| g);
            }
            std::mem::swap(&mut *waiting, &mut chunk);
        }
        // Reopened before what waits is written: a line may land in the new file that came
        // just before the rotation, never one after it in the old.
        if shared.reopen.swap(false, Ordering::AcqRel) {
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
        if !chunk.is_empty() {
            if let Err(e) = file.write_all(&chunk) {
                if !failing {
                    error!(path = %path.display(), error = %e, "cannot write the access log");
                }
                failing = true;
            }
            chunk.clear();
            if chunk.capacity() > 4 * BATCH {
                chunk = Vec::new();
            }
        }
        if shared.closed.load(Ordering::Acquire)
            && shared.waiting.lock().map_or(true, |w| w.is_empty())
        {
            return;
        }
    }
}

impl Sink {
    /// Adds one line (with its newline) to what the writer writes next; dropped and counted
    /// when the writer is [`HELD`] bytes behind.
    pub fn write(&self, line: &str) {
        let s = &self.shared;
        let Ok(mut waiting) = s.waiting.lock() else {
            return;
        };
        if waiting.len() + line.len() > HELD {
            drop(waiting);
            let n = s.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            let now = Instant::now();
            let due = s.reported.lock().is_ok_and(|mut t| {
                let due = t.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(10));
                if due {
                    *t = Some(now);
                }
                due
            });
            if due {
                warn!(path = %self.path.display(), dropped = n, "the access log cannot keep up; lines dropped");
            }
            return;
        }
        let before = waiting.len();
        waiting.extend_from_slice(line.as_bytes());
        let full = before < BATCH && waiting.len() >= BATCH;
        drop(waiting);
        if full {
            s.wake.notify_one();
        }
    }

    /// Lines dropped so far.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
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
        sink.write("one\n");
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
        sink.write("two\n");
        wait(&path, "two\n");
        assert_eq!(read(&rotated), "one\n");
        assert_eq!(sink.dropped(), 0);
    }
}
