//! The embedded store (redb, one file under `data_dir`): a write-ahead log of every event, a
//! snapshot of the state it folds into, and the history of operation results. An event is
//! committed durably before the daemon acts on it, so a daemon killed at any instant comes back
//! with exactly the state it had acted on.

use std::path::{Path, PathBuf};

use anyhow::Context;
use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};
use warden_engine::{Config, Event, State, Time, apply};

use crate::wire::{StateFile, WireDefinition, WireEvent};

const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
const HISTORY: TableDefinition<u64, &[u8]> = TableDefinition::new("history");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// How many operation results the history keeps.
pub const HISTORY_LIMIT: u64 = 10_000;
/// A snapshot is taken once the log holds this many events.
pub const SNAPSHOT_EVERY: u64 = 512;

/// One logged event (also the value of each key of the cluster's log in etcd).
#[derive(Debug, Serialize, Deserialize)]
pub struct LogRecord {
    pub time_ms: u64,
    pub event: WireEvent,
}

/// One operation in the history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub seq: u64,
    pub time_ms: u64,
    pub resource: String,
    pub node: String,
    pub op: String,
    pub rc: i32,
    #[serde(default)]
    pub exit_reason: String,
    pub duration_ms: u64,
}

/// Events a store has recorded durably, in order, with their times. Only a store's
/// `append` makes one (its field is private to this module), and the daemon's core applies
/// nothing else: "recorded before applied" is a type, not a habit.
#[derive(Debug)]
#[must_use = "recorded events must be applied"]
pub struct Recorded(Vec<(Event, Time)>);

impl Recorded {
    /// What a store outside this module (the cluster's log in etcd) returns once it has
    /// made `entries` durable; nothing else may call it.
    pub(crate) fn durable(entries: &[Entry]) -> Recorded {
        Recorded(entries.iter().map(|e| (e.event.clone(), e.time)).collect())
    }

    pub fn events(&self) -> impl Iterator<Item = (&Event, Time)> {
        self.0.iter().map(|(e, t)| (e, *t))
    }
}

/// Where the core records events before it applies them: the redb [`Store`], or the
/// [`MemoryStore`] of the core's simulation.
pub trait Recorder {
    /// Records `entries` durably, all or none.
    fn append(&mut self, entries: &[Entry]) -> anyhow::Result<Recorded>;
}

impl Recorder for Store {
    fn append(&mut self, entries: &[Entry]) -> anyhow::Result<Recorded> {
        Store::append(self, entries)
    }
}

/// A store in memory, for simulations: it keeps the log so a simulated restart can replay it.
#[derive(Debug, Default)]
pub struct MemoryStore {
    pub log: Vec<(Event, Time)>,
    /// When set, the next append fails (a disk that fails under the daemon).
    pub fail_next: bool,
}

impl Recorder for MemoryStore {
    fn append(&mut self, entries: &[Entry]) -> anyhow::Result<Recorded> {
        if std::mem::take(&mut self.fail_next) {
            anyhow::bail!("simulated store failure");
        }
        let rec: Vec<(Event, Time)> = entries.iter().map(|e| (e.event.clone(), e.time)).collect();
        self.log.extend(rec.iter().cloned());
        Ok(Recorded(rec))
    }
}

/// What an operator does about a damaged store.
const RECOVER: &str = "Move it aside (keep it for a post-mortem) and start again: the daemon probes every resource and rebuilds what runs, but bans, disabled resources, standby and fail counts recorded there are lost";

/// Whether opening failed because another process holds the store.
pub fn already_open(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<redb::DatabaseError>(),
            Some(redb::DatabaseError::DatabaseAlreadyOpen)
        )
    })
}

/// Runs `f`, turning a panic inside it (redb panics on some damaged files) into an error; the
/// panic's own message is kept out of the logs for the while.
fn unpanicked<T>(f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(hook);
    match r {
        Ok(r) => r,
        Err(p) => {
            let why = p
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown".to_owned());
            Err(anyhow::anyhow!("the storage engine failed on it: {why}"))
        }
    }
}

/// Stored values are sealed: a mark, a CRC-32 of the value, the value. A changed byte is found
/// and refused instead of trusted (a disabled resource started, a ban lost).
const SEAL: &[u8; 2] = b"W1";

fn seal(value: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(value.len() + 6);
    v.extend_from_slice(SEAL);
    v.extend_from_slice(&crc32(value).to_be_bytes());
    v.extend_from_slice(value);
    v
}

/// The value a sealed one holds; a value written before seals (plain JSON, or an 8-byte
/// sequence number) is taken as it is.
fn unseal(bytes: &[u8]) -> Result<&[u8], &'static str> {
    let Some(rest) = bytes.strip_prefix(SEAL) else {
        return match bytes.first() {
            Some(b'{' | b'[') => Ok(bytes),
            _ if bytes.len() == 8 => Ok(bytes),
            _ => Err("has no seal"),
        };
    };
    let Some((sum, value)) = rest.split_first_chunk::<4>() else {
        return Err("is cut short");
    };
    if crc32(value) == u32::from_be_bytes(*sum) {
        Ok(value)
    } else {
        Err("fails its checksum (a byte changed)")
    }
}

fn read_seq(bytes: &[u8]) -> anyhow::Result<u64> {
    let raw = unseal(bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
    let b: [u8; 8] = raw
        .try_into()
        .map_err(|_| anyhow::anyhow!("is {} bytes, not 8", raw.len()))?;
    Ok(u64::from_be_bytes(b))
}

/// CRC-32 (IEEE 802.3, as zlib's), a byte at a time from a table made at compile time.
fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    let mut c = !0u32;
    for &b in data {
        c = TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

/// An event to record, with what only the history keeps.
#[derive(Clone, Debug)]
pub struct Entry {
    pub time: Time,
    pub event: Event,
    /// For operation results: how long the operation took.
    pub duration_ms: Option<u64>,
}

#[derive(Debug)]
pub struct Store {
    db: Database,
    path: PathBuf,
    next_seq: u64,
    /// Events in the log since the last snapshot, counted in memory (the daemon asks after
    /// every step; a read transaction each time would be waste).
    logged: u64,
}

/// What loading found.
#[derive(Debug)]
pub struct Loaded {
    pub state: State,
    /// The time of the last event (None for a new store).
    pub last_time: Option<Time>,
    /// Events that no longer apply (the configuration changed), as messages.
    pub skipped: Vec<String>,
}

impl Store {
    /// Opens (or creates) the store at `path`. A store that is empty, cut short or otherwise
    /// damaged is refused with an error naming it (redb's own panics on such files are caught).
    pub fn open(path: &Path) -> anyhow::Result<Store> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        if std::fs::metadata(path).is_ok_and(|m| m.len() == 0) {
            anyhow::bail!(
                "the store {} is empty (0 bytes): it was cut or overwritten, and starting from it would forget bans, disabled resources and fail counts. {}",
                path.display(),
                RECOVER
            );
        }
        let db = match unpanicked(|| Database::create(path).map_err(anyhow::Error::from)) {
            Ok(db) => db,
            Err(e) if already_open(&e) => {
                return Err(e.context(format!(
                    "the store {} is in use (another warden daemon runs on this data dir?)",
                    path.display()
                )));
            }
            Err(e) => {
                anyhow::bail!(
                    "cannot open the store {} (damaged?): {e:#}. {RECOVER}",
                    path.display()
                );
            }
        };
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .with_context(|| format!("cannot make the store {} private (0600)", path.display()))?;
        let tx = db.begin_write()?;
        let (next_seq, logged) = {
            let log = tx.open_table(LOG)?;
            let logged = log.len()?;
            let hist = tx.open_table(HISTORY)?;
            let meta = tx.open_table(META)?;
            let last_log = log.last()?.map(|(k, _)| k.value());
            let last_hist = hist.last()?.map(|(k, _)| k.value());
            let snap = match meta.get("snapshot_seq")? {
                Some(v) => Some(read_seq(v.value()).with_context(|| {
                    format!(
                        "the store {} is damaged: its snapshot's sequence number. {RECOVER}",
                        path.display()
                    )
                })?),
                None => None,
            };
            let next = [last_log, last_hist, snap]
                .into_iter()
                .flatten()
                .max()
                .map_or(1, |s| s + 1);
            (next, logged)
        };
        tx.commit()?;
        let store = Store {
            db,
            path: path.to_owned(),
            next_seq,
            logged,
        };
        Ok(store)
    }

    /// An error about this store's content, naming it and what to do.
    fn damaged(&self, what: impl std::fmt::Display) -> anyhow::Error {
        anyhow::anyhow!(
            "the store {} is damaged: {what}. {RECOVER}",
            self.path.display()
        )
    }

    /// The state: the last snapshot with every later event applied again.
    pub fn load(&self, config: &Config) -> anyhow::Result<Loaded> {
        unpanicked(|| self.load_inner(config))
            .with_context(|| format!("cannot read the store {}", self.path.display()))
    }

    fn load_inner(&self, config: &Config) -> anyhow::Result<Loaded> {
        let tx = self.db.begin_read()?;
        let meta = tx.open_table(META)?;
        let (mut state, mut last_time, from) =
            match (meta.get("snapshot")?, meta.get("snapshot_seq")?) {
                (Some(snap), Some(seq)) => {
                    let json = unseal(snap.value())
                        .map_err(|e| self.damaged(format!("its snapshot {e}")))?;
                    let file: StateFile = serde_json::from_slice(json)
                        .map_err(|e| self.damaged(format!("its snapshot is not valid: {e}")))?;
                    let (s, t) = file
                        .into_state()
                        .map_err(|e| self.damaged(format!("its snapshot is not valid: {e:#}")))?;
                    let seq = read_seq(seq.value()).map_err(|e| {
                        self.damaged(format!("its snapshot's sequence number: {e}"))
                    })?;
                    (s, Some(t), seq + 1)
                }
                (Some(_), None) | (None, Some(_)) => {
                    return Err(self.damaged("its snapshot is half there"));
                }
                _ => (State::default(), None, 0),
            };
        let mut skipped = Vec::new();
        let log = tx.open_table(LOG)?;
        for row in log.range(from..)? {
            let (seq, bytes) = row?;
            let json = unseal(bytes.value())
                .map_err(|e| self.damaged(format!("log entry {} {e}", seq.value())))?;
            let rec: LogRecord = serde_json::from_slice(json).map_err(|e| {
                self.damaged(format!("log entry {} is not valid: {e}", seq.value()))
            })?;
            let time = Time::from_millis(rec.time_ms);
            last_time = Some(time);
            let event = match rec.event.into_event() {
                Ok(e) => e,
                Err(e) => {
                    skipped.push(format!("log entry {}: {e:#}", seq.value()));
                    continue;
                }
            };
            if let Err(e) = apply(config, &mut state, &event, time) {
                skipped.push(format!("log entry {}: {e}", seq.value()));
            }
        }
        Ok(Loaded {
            state,
            last_time,
            skipped,
        })
    }

    /// Records events durably (one transaction, committed before this returns).
    pub fn append(&mut self, entries: &[Entry]) -> anyhow::Result<Recorded> {
        if entries.is_empty() {
            return Ok(Recorded(Vec::new()));
        }
        let began = std::time::Instant::now();
        let tx = self.db.begin_write()?;
        {
            let mut log = tx.open_table(LOG)?;
            let mut hist = tx.open_table(HISTORY)?;
            for e in entries {
                let seq = self.next_seq;
                self.next_seq += 1;
                let rec = LogRecord {
                    time_ms: e.time.as_millis(),
                    event: WireEvent::from_event(&e.event),
                };
                log.insert(seq, seal(&serde_json::to_vec(&rec)?).as_slice())?;
                if let (Event::OpResult(r), Some(duration_ms)) = (&e.event, e.duration_ms) {
                    let h = HistoryEntry {
                        seq,
                        time_ms: e.time.as_millis(),
                        resource: r.resource.clone(),
                        node: r.node.clone(),
                        op: r.op.to_string(),
                        rc: r.rc,
                        exit_reason: r.exit_reason.clone(),
                        duration_ms,
                    };
                    hist.insert(seq, seal(&serde_json::to_vec(&h)?).as_slice())?;
                }
            }
            // Keep the history bounded.
            let len = hist.len()?;
            if len > HISTORY_LIMIT {
                let first = hist.first()?.map(|(k, _)| k.value());
                if let Some(first) = first {
                    let cut = first + (len - HISTORY_LIMIT);
                    hist.retain_in(..cut, |_, _| false)?;
                }
            }
        }
        tx.commit()?;
        crate::metrics::global()
            .store_writes
            .observe(&["redb"], began.elapsed());
        self.logged += entries.len() as u64;
        Ok(Recorded(
            entries.iter().map(|e| (e.event.clone(), e.time)).collect(),
        ))
    }

    /// Closes the file and opens it again: after a failed write redb refuses everything until
    /// then. On an error the store is unusable (reads fail) until a reopen succeeds.
    pub fn reopen(&mut self) -> anyhow::Result<()> {
        // The file must be closed before it is opened again: an empty in-memory database
        // stands in meanwhile (nothing is ever written to it: it lives only until `open`).
        let stand_in =
            Database::builder().create_with_backend(redb::backends::InMemoryBackend::new())?;
        drop(std::mem::replace(&mut self.db, stand_in));
        *self = Store::open(&self.path)?;
        Ok(())
    }

    /// Whether the store can record now (a small write, committed durably).
    pub fn writable(&mut self) -> anyhow::Result<()> {
        let tx = self.db.begin_write()?;
        {
            let mut meta = tx.open_table(META)?;
            let now = crate::wire::wall_clock().as_millis();
            meta.insert("alive", seal(&now.to_be_bytes()).as_slice())?;
        }
        tx.commit()?;
        Ok(())
    }

    /// How many events the log holds since the last snapshot.
    pub fn log_len(&self) -> u64 {
        self.logged
    }

    /// Stores `state` as of every event recorded so far and drops those events from the log.
    pub fn snapshot(&mut self, state: &State, now: Time) -> anyhow::Result<()> {
        let seq = self.next_seq - 1;
        let tx = self.db.begin_write()?;
        {
            let mut meta = tx.open_table(META)?;
            let snap = serde_json::to_vec(&StateFile::from_state(state, now))?;
            meta.insert("snapshot", seal(&snap).as_slice())?;
            meta.insert("snapshot_seq", seal(&seq.to_be_bytes()).as_slice())?;
            let mut log = tx.open_table(LOG)?;
            log.retain_in(..=seq, |_, _| false)?;
        }
        tx.commit()?;
        self.logged = 0;
        Ok(())
    }

    /// The resource definitions stored by [`Store::set_definitions`] (a definition that cannot
    /// be read is skipped with a message).
    pub fn definitions(&self) -> anyhow::Result<(Vec<WireDefinition>, Vec<String>)> {
        let tx = self.db.begin_read()?;
        let meta = tx.open_table(META)?;
        let Some(bytes) = meta.get("definitions")? else {
            return Ok((Vec::new(), Vec::new()));
        };
        let json = unseal(bytes.value())
            .map_err(|e| self.damaged(format!("its resource definitions {e}")))?;
        let raw: Vec<serde_json::Value> = serde_json::from_slice(json)
            .map_err(|e| self.damaged(format!("its resource definitions are not valid: {e}")))?;
        let mut out = Vec::new();
        let mut skipped = Vec::new();
        for v in raw {
            match serde_json::from_value::<WireDefinition>(v) {
                Ok(d) => out.push(d),
                Err(e) => skipped.push(format!("stored definition: {e}")),
            }
        }
        Ok((out, skipped))
    }

    /// Stores what the daemon may have to stop after the file changed: every definition it
    /// runs (orphans included) and the older ones that copies still run with.
    pub fn set_definitions(&mut self, defs: &[WireDefinition]) -> anyhow::Result<()> {
        let tx = self.db.begin_write()?;
        {
            let mut meta = tx.open_table(META)?;
            meta.insert("definitions", seal(&serde_json::to_vec(defs)?).as_slice())?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Operation results, oldest first: all, or those of one resource; at most `limit` (the
    /// most recent).
    pub fn history(
        &self,
        resource: Option<&str>,
        limit: usize,
    ) -> anyhow::Result<Vec<HistoryEntry>> {
        let tx = self.db.begin_read()?;
        let hist = tx.open_table(HISTORY)?;
        let mut out = Vec::new();
        for row in hist.iter()?.rev() {
            let (seq, bytes) = row?;
            let json = unseal(bytes.value())
                .map_err(|e| self.damaged(format!("history entry {} {e}", seq.value())))?;
            let h: HistoryEntry = serde_json::from_slice(json).map_err(|e| {
                self.damaged(format!("history entry {} is not valid: {e}", seq.value()))
            })?;
            if resource.is_none_or(|r| r == h.resource) {
                out.push(h);
                if out.len() >= limit {
                    break;
                }
            }
        }
        out.reverse();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use warden_engine::{
        AdminCommand, Agent, ClusterOptions, OpKey, OpName, OpResult, OpSpec, ResourceSpec,
    };

    use super::*;

    fn config() -> Config {
        let mut r = ResourceSpec::new(
            "d",
            Agent::Ocf {
                provider: "heartbeat".into(),
                kind: "Dummy".into(),
            },
        );
        r.ops
            .push(OpSpec::new(OpName::Monitor, Duration::from_secs(10)));
        Config::new(
            ClusterOptions::default(),
            vec!["n1".into()],
            vec![],
            vec![r],
            vec![],
        )
        .expect("config")
    }

    fn op(op: OpKey, rc: i32) -> Event {
        Event::OpResult(OpResult {
            resource: "d".into(),
            node: "n1".into(),
            op,
            rc,
            exit_reason: String::new(),
            status: warden_engine::rc::ExecStatus::Done,
            digest: None,
        })
    }

    #[test]
    fn events_survive_reopening_and_snapshots() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("warden.redb");
        let c = config();
        let t = |s: u64| Time::from_millis(1_000_000 + s * 1000);
        let mon = OpKey::new(OpName::Monitor, Duration::from_secs(10));
        let events = [
            (t(1), Event::NodeUp { node: "n1".into() }, None),
            (t(2), op(OpKey::probe(), 7), Some(3)),
            (
                t(3),
                op(OpKey::new(OpName::Start, Duration::ZERO), 0),
                Some(12),
            ),
            (t(4), op(mon, 7), Some(2)),
            (
                t(5),
                Event::Admin(AdminCommand::Ban {
                    resource: "d".into(),
                    node: "n1".into(),
                }),
                None,
            ),
        ];
        let mut want = State::default();
        {
            let mut s = Store::open(&path).expect("open");
            for (i, (time, e, d)) in events.iter().enumerate() {
                let recorded = s
                    .append(&[Entry {
                        time: *time,
                        event: e.clone(),
                        duration_ms: *d,
                    }])
                    .expect("append");
                assert_eq!(recorded.events().count(), 1);
                apply(&c, &mut want, e, *time).expect("apply");
                if i == 2 {
                    s.snapshot(&want, *time).expect("snapshot");
                    assert_eq!(s.log_len(), 0);
                }
            }
        }
        let s = Store::open(&path).expect("reopen");
        let loaded = s.load(&c).expect("load");
        assert_eq!(loaded.state, want);
        assert_eq!(loaded.last_time, Some(t(5)));
        assert!(loaded.skipped.is_empty());
        let h = s.history(None, 100).expect("history");
        assert_eq!(
            h.iter()
                .map(|h| (h.op.as_str(), h.rc, h.duration_ms))
                .collect::<Vec<_>>(),
            [
                ("monitor_0", 7, 3),
                ("start_0", 0, 12),
                ("monitor_10000", 7, 2)
            ]
        );
        assert_eq!(s.history(Some("other"), 100).expect("history"), []);
        assert_eq!(
            s.history(Some("d"), 1).expect("history")[0].op,
            "monitor_10000"
        );
        // Sequence numbers keep growing across reopenings.
        assert!(h.windows(2).all(|w| w[0].seq < w[1].seq));
    }

    /// A store with some events and a snapshot, closed; returns its bytes.
    fn written_store(path: &Path) -> Vec<u8> {
        let c = config();
        let mut s = Store::open(path).expect("open");
        let mut state = State::default();
        for i in 0..20u64 {
            let e = if i == 0 {
                Event::Admin(AdminCommand::Ban {
                    resource: "d".into(),
                    node: "n1".into(),
                })
            } else {
                Event::NodeUp { node: "n1".into() }
            };
            let t = Time::from_millis(1_000 + i);
            let _ = s
                .append(&[Entry {
                    time: t,
                    event: e.clone(),
                    duration_ms: None,
                }])
                .expect("append");
            apply(&c, &mut state, &e, t).expect("apply");
            if i == 10 {
                s.snapshot(&state, t).expect("snapshot");
            }
        }
        drop(s);
        std::fs::read(path).expect("read")
    }

    #[test]
    fn a_damaged_store_is_refused_with_a_clear_error_never_a_panic() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("warden.redb");
        let good = written_store(&path);
        let c = config();
        let cuts = [0, 1, 4096, good.len() / 2, good.len() - 1];
        for cut in cuts {
            std::fs::write(&path, &good[..cut]).expect("write");
            let got = std::panic::catch_unwind(|| {
                Store::open(&path).and_then(|s| s.load(&c).map(|_| ()))
            });
            match got {
                Err(_) => panic!("a store cut to {cut} bytes panicked"),
                Ok(Ok(())) => panic!("a store cut to {cut} bytes was trusted"),
                Ok(Err(e)) => {
                    let msg = format!("{e:#}");
                    assert!(msg.contains("warden.redb"), "cut {cut}: {msg}");
                }
            }
        }
    }

    #[test]
    fn a_changed_byte_in_the_snapshot_is_found_not_trusted() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("warden.redb");
        let mut bytes = written_store(&path);
        // The ban is in the snapshot only (its log entry went with the snapshot): change the
        // node it names, as a bad disk block would.
        let needle = b"\"banned\":[\"n1\"]";
        let mut changed = 0;
        for i in 0..bytes.len() - needle.len() {
            if &bytes[i..i + needle.len()] == needle {
                bytes[i + 11] = b'x';
                changed += 1;
            }
        }
        assert!(changed > 0);
        std::fs::write(&path, &bytes).expect("write");
        let e = Store::open(&path)
            .and_then(|s| s.load(&config()).map(|_| ()))
            .expect_err("refused");
        let msg = format!("{e:#}");
        assert!(
            msg.contains("is damaged: its snapshot fails its checksum"),
            "{msg}"
        );
        assert!(msg.contains("Move it aside"), "{msg}");
    }

    #[test]
    fn events_naming_what_the_config_lost_are_skipped_not_fatal() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("warden.redb");
        let mut s = Store::open(&path).expect("open");
        let e = Event::Admin(AdminCommand::Disable {
            resource: "gone".into(),
        });
        let recorded = s
            .append(&[Entry {
                time: Time::from_millis(5),
                event: e.clone(),
                duration_ms: None,
            }])
            .expect("append");
        assert_eq!(
            recorded.events().collect::<Vec<_>>(),
            [(&e, Time::from_millis(5))]
        );
        let loaded = s.load(&config()).expect("load");
        assert_eq!(loaded.skipped, ["log entry 1: unknown resource \"gone\""]);
    }
}
