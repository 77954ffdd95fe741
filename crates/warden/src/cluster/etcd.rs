//! The etcd client as Warden uses it: one connection per endpoint, so a failure names its
//! endpoint; every call has a deadline; reads and idempotent writes are retried with backoff
//! and jitter on the next endpoint; every failure is logged with the endpoint and a short
//! reason ("request timed out", "no leader", "compacted", "connection refused", ...).
//! Requests carry etcd's require-leader flag, so a member cut off from its quorum answers
//! "no leader" at once instead of serving stale data or hanging.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use etcd_client::{
    Client, ConnectOptions, GetOptions, KeyValue, PutOptions, TlsOptions, Txn, TxnResponse,
};
use tokio::time::Instant;
use tracing::warn;

use super::settings::{EtcdSettings, Timing};

/// Why an etcd call failed, in the words the logs use.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("etcd {endpoint}: {reason}")]
pub struct EtcdError {
    pub endpoint: String,
    pub reason: String,
}

impl EtcdError {
    /// The watch's start revision has been compacted away: read again from scratch.
    pub fn is_compacted(&self) -> bool {
        self.reason.starts_with("compacted")
    }
}

/// A short reason for an etcd client error.
pub fn reason(e: &etcd_client::Error) -> String {
    let text = match e {
        etcd_client::Error::GRpcStatus(s) => {
            let m = s.message();
            if m.contains("no leader") {
                return "no leader".to_owned();
            }
            if m.contains("compacted") {
                return format!("compacted ({m})");
            }
            if s.code() == tonic::Code::DeadlineExceeded {
                return "request timed out".to_owned();
            }
            format!("{:?}: {m}", s.code())
        }
        other => other.to_string(),
    };
    // The transport's message ("tcp connect error") hides the cause; its sources name it.
    let mut lower = text.to_lowercase();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        lower.push(' ');
        lower.push_str(&s.to_string().to_lowercase());
        source = s.source();
    }
    if lower.contains("connection refused") {
        "connection refused".to_owned()
    } else if lower.contains("no route to host") {
        "no route to host".to_owned()
    } else if lower.contains("timed out") || lower.contains("deadline") {
        "request timed out".to_owned()
    } else {
        // The transport's errors nest their cause: keep the message one line.
        text.replace('\n', " ")
    }
}

struct Endpoint {
    url: String,
    client: Mutex<Option<Client>>,
}

/// A handle on the etcd cluster.
pub struct Etcd {
    endpoints: Vec<Endpoint>,
    /// The last failure logged as a warning, and when: the same failure again within a
    /// second is logged at debug level (an election can fail hundreds of requests).
    last_logged: Mutex<Option<(String, std::time::Instant)>>,
    current: AtomicUsize,
    options: ConnectOptions,
    pub timing: Timing,
    pub prefix: String,
}

impl std::fmt::Debug for Etcd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Etcd")
            .field("endpoints", &self.endpoints.len())
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl Etcd {
    /// A handle; nothing is connected until the first call.
    pub fn new(settings: &EtcdSettings) -> anyhow::Result<Etcd> {
        let timing = settings.timing();
        let mut options = ConnectOptions::new()
            .with_require_leader(true)
            .with_connect_timeout(timing.request.max(Duration::from_millis(100)))
            .with_keep_alive(timing.renew, timing.request.max(Duration::from_millis(100)))
            .with_keep_alive_while_idle(true);
        if let Some(tls) = &settings.tls {
            let mut t = TlsOptions::new();
            if let Some(ca) = &tls.ca {
                let pem = std::fs::read(ca).map_err(|e| {
                    anyhow::anyhow!("cannot read the etcd CA {}: {e}", ca.display())
                })?;
                t = t.ca_certificate(etcd_client::Certificate::from_pem(pem));
            }
            if let Some((cert, key)) = &tls.cert_key {
                let c = std::fs::read(cert).map_err(|e| {
                    anyhow::anyhow!(
                        "cannot read the etcd client certificate {}: {e}",
                        cert.display()
                    )
                })?;
                let k = std::fs::read(key).map_err(|e| {
                    anyhow::anyhow!("cannot read the etcd client key {}: {e}", key.display())
                })?;
                t = t.identity(etcd_client::Identity::from_pem(c, k));
            }
            options = options.with_tls(t);
        }
        if let Some((user, password)) = &settings.auth {
            options = options.with_user(user, password);
        }
        Ok(Etcd {
            endpoints: settings
                .endpoints
                .iter()
                .map(|url| Endpoint {
                    url: url.clone(),
                    client: Mutex::new(None),
                })
                .collect(),
            current: AtomicUsize::new(0),
            last_logged: Mutex::new(None),
            options,
            timing,
            prefix: settings.prefix.clone(),
        })
    }

    /// The full key of `rel` under the cluster's prefix.
    pub fn key(&self, rel: &str) -> String {
        format!("{}/{rel}", self.prefix)
    }

    /// The endpoint in use and its client (connected now if need be).
    pub async fn client(&self) -> Result<(usize, Client), EtcdError> {
        let i = self.current.load(Ordering::Relaxed) % self.endpoints.len();
        let ep = &self.endpoints[i];
        let cached = ep.client.lock().map(|c| c.clone()).unwrap_or(None);
        if let Some(c) = cached {
            return Ok((i, c));
        }
        let connect = Client::connect([ep.url.as_str()], Some(self.options.clone()));
        let c = match tokio::time::timeout(
            self.timing.request.max(Duration::from_millis(200)),
            connect,
        )
        .await
        {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(self.failed(i, reason(&e))),
            Err(_) => return Err(self.failed(i, "connect timed out".to_owned())),
        };
        if let Ok(mut slot) = ep.client.lock() {
            *slot = Some(c.clone());
        }
        Ok((i, c))
    }

    /// Notes a failure of endpoint `i`: logged, and the next call goes to the next endpoint.
    pub fn failed(&self, i: usize, reason: String) -> EtcdError {
        let url = self.endpoints[i].url.clone();
        let what = format!("{url} {reason}");
        let repeated = self.last_logged.lock().is_ok_and(|mut last| {
            let now = std::time::Instant::now();
            let repeated = last.as_ref().is_some_and(|(w, t)| {
                *w == what && now.duration_since(*t) < Duration::from_secs(1)
            });
            if !repeated {
                *last = Some((what, now));
            }
            repeated
        });
        if repeated {
            tracing::debug!(endpoint = %url, reason = %reason, "etcd request failed");
        } else {
            warn!(endpoint = %url, reason = %reason, "etcd request failed");
        }
        if self.endpoints.len() > 1 {
            let _ = self.current.compare_exchange(
                i,
                (i + 1) % self.endpoints.len(),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
        EtcdError {
            endpoint: url,
            reason,
        }
    }

    /// One call on the current endpoint with the request deadline, not retried.
    pub async fn once<T, F, Fut>(&self, what: &str, timeout: Duration, f: F) -> Result<T, EtcdError>
    where
        F: FnOnce(Client) -> Fut,
        Fut: std::future::Future<Output = Result<T, etcd_client::Error>>,
    {
        let (i, c) = self.client().await?;
        match tokio::time::timeout(timeout, f(c)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.failed(i, format!("{what}: {}", reason(&e)))),
            Err(_) => Err(self.failed(i, format!("{what}: request timed out"))),
        }
    }

    /// A call retried on the next endpoint with backoff and jitter until `deadline`. Only for
    /// reads and writes that may be repeated.
    pub async fn retry<T, F, Fut>(
        &self,
        what: &str,
        deadline: Instant,
        f: F,
    ) -> Result<T, EtcdError>
    where
        F: Fn(Client) -> Fut,
        Fut: std::future::Future<Output = Result<T, etcd_client::Error>>,
    {
        let mut backoff = Duration::from_millis(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let r = self
                .once(
                    what,
                    self.timing.request.min(left.max(Duration::from_millis(1))),
                    &f,
                )
                .await;
            match r {
                Ok(v) => return Ok(v),
                Err(e) => {
                    let pause = jittered(backoff);
                    if Instant::now() + pause >= deadline {
                        return Err(e);
                    }
                    tokio::time::sleep(pause).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
    }

    /// The value of `key` and its create and mod revisions.
    pub async fn get(&self, key: &str, deadline: Instant) -> Result<Option<KeyValue>, EtcdError> {
        let mut r = self
            .retry("get", deadline, |mut c| {
                let key = key.to_owned();
                async move { c.get(key, None).await }
            })
            .await?;
        Ok(r.take_kvs().into_iter().next())
    }

    /// Every key under `prefix`, and the revision they were read at.
    pub async fn get_prefix(
        &self,
        prefix: &str,
        deadline: Instant,
    ) -> Result<(Vec<KeyValue>, i64), EtcdError> {
        let mut r = self
            .retry("get", deadline, |mut c| {
                let prefix = prefix.to_owned();
                async move { c.get(prefix, Some(GetOptions::new().with_prefix())).await }
            })
            .await?;
        let rev = r.header().map_or(0, |h| h.revision());
        Ok((r.take_kvs(), rev))
    }

    /// Puts `value` at `key` (attached to `lease` when given).
    pub async fn put(
        &self,
        key: &str,
        value: Vec<u8>,
        lease: Option<i64>,
        deadline: Instant,
    ) -> Result<(), EtcdError> {
        let began = std::time::Instant::now();
        let r = self
            .retry("put", deadline, |mut c| {
                let (key, value) = (key.to_owned(), value.clone());
                async move {
                    c.put(key, value, lease.map(|l| PutOptions::new().with_lease(l)))
                        .await
                }
            })
            .await
            .map(|_| ());
        wrote(began);
        r
    }

    /// A transaction, sent once: a timeout leaves its outcome unknown, which the caller
    /// resolves by reading.
    pub async fn txn(&self, txn: Txn) -> Result<TxnResponse, EtcdError> {
        let began = std::time::Instant::now();
        let r = self
            .once("txn", self.timing.request, |mut c| async move {
                c.txn(txn).await
            })
            .await;
        wrote(began);
        r
    }
}

/// A write to etcd that began at `began` is over (for `/metrics`).
fn wrote(began: std::time::Instant) {
    crate::metrics::global()
        .store_writes
        .observe(&["etcd"], began.elapsed());
}

/// `d` with +-50 % jitter, so nodes that failed together do not retry together.
pub fn jittered(d: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    let f = (h.finish() % 1000) as f64 / 1000.0; // 0..1
    d.mul_f64(0.5 + f)
}
