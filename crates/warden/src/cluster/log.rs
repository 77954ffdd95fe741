//! The cluster's store in etcd: the event log the coordinator appends to (every write a
//! transaction that compares the election key's create revision, so a deposed coordinator
//! cannot write), its snapshot, and the key layout every node shares (docs/cluster.md).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use etcd_client::{Compare, CompareOp, DeleteOptions, KeyValue, Txn, TxnOp};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tracing::warn;
use warden_engine::{Config, State, Time, apply};

use super::etcd::Etcd;
use crate::store::{Entry, LogRecord, Recorded, Recorder};
use crate::wire::{StateFile, WireEvent};

/// Keys under the cluster's prefix.
pub mod keys {
    /// The configuration every node runs (TOML text), set by `warden config push`.
    pub const CONFIG: &str = "config";
    /// `members/<node>`: attached to the node's lease.
    pub const MEMBERS: &str = "members/";
    /// The coordinator election (etcd's election API adds `/<lease>`).
    pub const ELECTION: &str = "election";
    /// `log/<seq>`: the recorded events after the snapshot.
    pub const LOG: &str = "log/";
    pub const SNAPSHOT: &str = "snapshot";
    /// Resource definitions copies may still run with (orphans, earlier definitions).
    pub const DEFINITIONS: &str = "definitions";
    /// `assign/<node>/<epoch>-<n>`: an action for a node's agent.
    pub const ASSIGN: &str = "assign/";
    /// `result/<node>/<epoch>-<n>`: its result.
    pub const RESULT: &str = "result/";
    /// `report/<node>/<n>`: what a node's agent saw on its own (monitor failures, exits).
    pub const REPORT: &str = "report/";
    /// `request/<node>-<n>`: an operator's command for the coordinator; `reply/<same>`.
    pub const REQUEST: &str = "request/";
    pub const REPLY: &str = "reply/";
    /// The member-key create revision of each node the coordinator last saw join.
    pub const SEEN: &str = "seen";
    /// `health/<node>`: the node's upstreams and listeners, on its lease.
    pub const HEALTH: &str = "health/";

    pub fn log(seq: u64) -> String {
        format!("{LOG}{seq:020}")
    }
}

/// The snapshot's value.
#[derive(Debug, Serialize, Deserialize)]
pub struct Snapshot {
    pub seq: u64,
    pub state: StateFile,
}

/// What the log and snapshot hold, replayed under `config`.
#[derive(Debug)]
pub struct LoadedLog {
    pub state: State,
    /// The last sequence number used.
    pub last_seq: u64,
    /// Events since the snapshot.
    pub logged: u64,
    pub skipped: Vec<String>,
    /// The revision the log was read at.
    pub revision: i64,
}

/// Replays `kvs` (log keys) over `state`, from `after` on.
pub fn replay(
    config: &Config,
    state: &mut State,
    kvs: &[KeyValue],
    after: u64,
    skipped: &mut Vec<String>,
) -> u64 {
    let mut last = after;
    for kv in kvs {
        let Some(seq) = kv
            .key_str()
            .ok()
            .and_then(|k| k.rsplit('/').next())
            .and_then(|s| s.parse::<u64>().ok())
        else {
            continue;
        };
        if seq <= after {
            continue;
        }
        last = last.max(seq);
        let rec: LogRecord = match serde_json::from_slice(kv.value()) {
            Ok(r) => r,
            Err(e) => {
                skipped.push(format!("log entry {seq}: {e}"));
                continue;
            }
        };
        match rec.event.into_event() {
            Ok(ev) => {
                if let Err(e) = apply(config, state, &ev, Time::from_millis(rec.time_ms)) {
                    skipped.push(format!("log entry {seq}: {e}"));
                }
            }
            Err(e) => skipped.push(format!("log entry {seq}: {e:#}")),
        }
    }
    last
}

/// Reads the snapshot and the log, and replays them under `config`.
pub async fn load(etcd: &Etcd, config: &Config, deadline: Instant) -> anyhow::Result<LoadedLog> {
    let (kvs, revision) = etcd.get_prefix(&etcd.prefix, deadline).await?;
    let snap_key = etcd.key(keys::SNAPSHOT);
    let log_prefix = etcd.key(keys::LOG);
    let (mut state, from) = match kvs.iter().find(|kv| kv.key() == snap_key.as_bytes()) {
        Some(kv) => {
            let s: Snapshot = serde_json::from_slice(kv.value())
                .context("the cluster's snapshot is not valid")?;
            let (state, _) = s
                .state
                .into_state()
                .context("the cluster's snapshot is not valid")?;
            (state, s.seq)
        }
        None => (State::default(), 0),
    };
    let log: Vec<KeyValue> = kvs
        .into_iter()
        .filter(|kv| kv.key().starts_with(log_prefix.as_bytes()))
        .collect();
    let mut skipped = Vec::new();
    let last_seq = replay(config, &mut state, &log, from, &mut skipped);
    Ok(LoadedLog {
        state,
        last_seq,
        logged: log.len() as u64,
        skipped,
        revision,
    })
}

/// The coordinator's [`Recorder`]: appends to the log in etcd, only while it holds the
/// election. It blocks (the coordinator's loop runs on a thread of its own).
pub struct EtcdLog {
    etcd: Arc<Etcd>,
    rt: tokio::runtime::Handle,
    /// The election key this coordinator holds, and its create revision (the epoch).
    leader_key: Vec<u8>,
    pub epoch: i64,
    next_seq: u64,
    logged: u64,
    /// Keys the next append deletes in the same transaction (the assignment and result
    /// it records, a report, a request), so nothing is recorded twice.
    pub also_delete: Vec<String>,
    /// Keys the next append writes in the same transaction (a request's reply).
    pub also_put: Vec<(String, Vec<u8>)>,
}

impl std::fmt::Debug for EtcdLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdLog")
            .field("epoch", &self.epoch)
            .field("next_seq", &self.next_seq)
            .finish_non_exhaustive()
    }
}

/// The coordinator lost the election: it must not act any more.
#[derive(Debug, thiserror::Error)]
#[error("no longer the coordinator (the election key of epoch {0} is gone)")]
pub struct Deposed(pub i64);

impl EtcdLog {
    pub fn new(
        etcd: Arc<Etcd>,
        rt: tokio::runtime::Handle,
        leader_key: Vec<u8>,
        epoch: i64,
        loaded: &LoadedLog,
    ) -> EtcdLog {
        EtcdLog {
            etcd,
            rt,
            leader_key,
            epoch,
            next_seq: loaded.last_seq + 1,
            logged: loaded.logged,
            also_delete: Vec::new(),
            also_put: Vec::new(),
        }
    }

    fn guard(&self) -> Compare {
        Compare::create_revision(self.leader_key.clone(), CompareOp::Equal, self.epoch)
    }

    /// Writes `puts` and deletes `deletes` in one transaction guarded by the epoch, retried
    /// while the outcome is unknown; `check` (a key and the value this write puts there)
    /// tells a retry whether an earlier attempt got through.
    pub fn write(
        &self,
        puts: Vec<(String, Vec<u8>)>,
        deletes: Vec<String>,
        check: Option<(String, Vec<u8>)>,
    ) -> anyhow::Result<()> {
        let etcd = Arc::clone(&self.etcd);
        let guard = self.guard();
        let leader_key = self.leader_key.clone();
        let epoch = self.epoch;
        self.rt.block_on(async move {
            let deadline = Instant::now() + etcd.timing.ttl;
            let mut backoff = Duration::from_millis(10);
            loop {
                let mut ops: Vec<TxnOp> = puts
                    .iter()
                    .map(|(k, v)| TxnOp::put(k.clone(), v.clone(), None))
                    .collect();
                ops.extend(deletes.iter().map(|k| TxnOp::delete(k.clone(), None)));
                let mut compares = vec![guard.clone()];
                if let Some((k, _)) = &check {
                    compares.push(Compare::create_revision(k.clone(), CompareOp::Equal, 0));
                }
                let txn = Txn::new().when(compares).and_then(ops);
                match etcd.txn(txn).await {
                    Ok(r) if r.succeeded() => return Ok(()),
                    Ok(_) => {
                        // The guard failed, or the checked key exists: did an earlier
                        // attempt of this very write get through?
                        let me = etcd
                            .get(std::str::from_utf8(&leader_key).unwrap_or(""), deadline)
                            .await?;
                        if me.is_none_or(|kv| kv.create_revision() != epoch) {
                            return Err(anyhow::Error::new(Deposed(epoch)));
                        }
                        if let Some((k, v)) = &check {
                            let got = etcd.get(k, deadline).await?;
                            if got.is_some_and(|kv| kv.value() == v.as_slice()) {
                                return Ok(());
                            }
                            bail!("{k} was written by someone else");
                        }
                        bail!("the transaction failed")
                    }
                    Err(e) if Instant::now() < deadline => {
                        warn!(error = %e, "etcd write failed; retrying");
                        tokio::time::sleep(super::etcd::jittered(backoff)).await;
                        backoff = (backoff * 2).min(Duration::from_millis(200));
                    }
                    Err(e) => return Err(anyhow::Error::new(e)),
                }
            }
        })
    }

    /// How many events the log holds since the snapshot.
    pub fn log_len(&self) -> u64 {
        self.logged
    }

    /// Stores `state` as of every event recorded so far and deletes those events.
    pub fn snapshot(&mut self, state: &State, now: Time) -> anyhow::Result<()> {
        let seq = self.next_seq - 1;
        let value = serde_json::to_vec(&Snapshot {
            seq,
            state: StateFile::from_state(state, now),
        })?;
        let etcd = Arc::clone(&self.etcd);
        let from = etcd.key(&keys::log(0));
        let to = etcd.key(&keys::log(seq + 1));
        let txn = Txn::new().when(vec![self.guard()]).and_then(vec![
            TxnOp::put(etcd.key(keys::SNAPSHOT), value, None),
            TxnOp::delete(from, Some(DeleteOptions::new().with_range(to))),
        ]);
        let r = self.rt.block_on(async move { etcd.txn(txn).await })?;
        if !r.succeeded() {
            return Err(anyhow::Error::new(Deposed(self.epoch)));
        }
        self.logged = 0;
        Ok(())
    }
}

impl Recorder for EtcdLog {
    fn append(&mut self, entries: &[Entry]) -> anyhow::Result<Recorded> {
        if entries.is_empty() {
            return Ok(Recorded::durable(entries));
        }
        let mut puts = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let rec = LogRecord {
                time_ms: e.time.as_millis(),
                event: WireEvent::from_event(&e.event),
            };
            puts.push((
                self.etcd.key(&keys::log(self.next_seq + i as u64)),
                serde_json::to_vec(&rec)?,
            ));
        }
        let check = puts.first().cloned();
        puts.append(&mut self.also_put);
        let deletes = std::mem::take(&mut self.also_delete);
        self.write(puts, deletes, check)?;
        self.next_seq += entries.len() as u64;
        self.logged += entries.len() as u64;
        Ok(Recorded::durable(entries))
    }
}
