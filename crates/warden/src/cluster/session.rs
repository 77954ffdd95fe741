//! A node's membership: a lease with its member key attached, kept alive every renew
//! interval. What the rest of the node reads is when its lease is sure to be valid until: the
//! send time of the last acknowledged keepalive plus the TTL (etcd counts the TTL from when
//! it receives the request, later than we sent it). A node acts only before that instant.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{info, warn};

use super::etcd::{Etcd, jittered, reason};

/// A lease this node holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    pub id: i64,
    /// The lease is valid at least until then.
    pub valid_until: Instant,
}

impl Lease {
    pub fn valid(&self) -> bool {
        Instant::now() < self.valid_until
    }
}

/// The current lease (None: this node holds none it can trust).
pub type LeaseRx = watch::Receiver<Option<Lease>>;

/// Keeps this node a member, for ever: grants a lease, puts the member key, keeps the lease
/// alive; when it cannot, says so (None) and starts again with a new lease.
pub async fn run(
    etcd: Arc<Etcd>,
    member_key: String,
    member_value: Vec<u8>,
    tx: watch::Sender<Option<Lease>>,
) {
    let timing = etcd.timing;
    let ttl_secs = timing.ttl.as_secs().max(1) as i64;
    // A lease given up while etcd could not be reached: revoked once a new one holds the
    // member key (its election key, if any, goes with it; etcd would keep it until it expired).
    let mut given_up: Option<i64> = None;
    loop {
        // A new lease, and the member key on it.
        let sent = Instant::now();
        let far = sent + Duration::from_secs(3600 * 24 * 365);
        let granted = etcd
            .retry("lease grant", far, |mut c| async move {
                c.lease_grant(ttl_secs, None).await
            })
            .await;
        let Ok(granted) = granted else { continue };
        let id = granted.id();
        let mut valid_until = sent + Duration::from_secs(granted.ttl().max(0) as u64);
        if etcd
            .put(&member_key, member_value.clone(), Some(id), valid_until)
            .await
            .is_err()
        {
            // Left to expire: a node without its member key is not a member.
            continue;
        }
        info!(
            lease = format!("{id:x}"),
            ttl_s = ttl_secs,
            "joined the cluster (member key written)"
        );
        if let Some(old) = given_up.take() {
            let etcd = Arc::clone(&etcd);
            tokio::spawn(async move {
                let _ = etcd
                    .once("lease revoke", etcd.timing.request, |mut c| async move {
                        c.lease_revoke(old).await
                    })
                    .await;
            });
        }
        let _ = tx.send(Some(Lease { id, valid_until }));

        // Keepalives, on one stream while it works.
        let mut stream = None;
        let mut next_at = sent + timing.renew;
        loop {
            tokio::time::sleep_until(next_at).await;
            let attempt = Instant::now();
            if attempt >= valid_until {
                break;
            }
            if stream.is_none() {
                if let Ok((i, mut c)) = etcd.client().await {
                    match tokio::time::timeout(timing.request, c.lease_keep_alive(id)).await {
                        Ok(Ok(s)) => stream = Some((i, s)),
                        Ok(Err(e)) => {
                            etcd.failed(i, format!("lease keepalive: {}", reason(&e)));
                        }
                        Err(_) => {
                            etcd.failed(i, "lease keepalive: request timed out".to_owned());
                        }
                    }
                }
            }
            let Some((i, (keeper, responses))) = stream.as_mut() else {
                next_at = attempt + jittered(Duration::from_millis(20));
                continue;
            };
            let i = *i;
            let sent = Instant::now();
            let r = tokio::time::timeout(timing.request, async {
                keeper.keep_alive().await?;
                responses.message().await
            })
            .await;
            match r {
                Ok(Ok(Some(resp))) if resp.ttl() > 0 => {
                    valid_until = sent + Duration::from_secs(resp.ttl() as u64);
                    next_at = sent + timing.renew;
                    let _ = tx.send(Some(Lease { id, valid_until }));
                }
                Ok(Ok(Some(_))) => {
                    warn!(lease = format!("{id:x}"), "the lease has expired in etcd");
                    break;
                }
                Ok(Ok(None)) => {
                    etcd.failed(i, "lease keepalive: stream closed".to_owned());
                    stream = None;
                    next_at = Instant::now();
                }
                Ok(Err(e)) => {
                    etcd.failed(i, format!("lease keepalive: {}", reason(&e)));
                    stream = None;
                    next_at = Instant::now();
                }
                Err(_) => {
                    etcd.failed(i, "lease keepalive: request timed out".to_owned());
                    stream = None;
                    // Try again at once on the next endpoint.
                    next_at = Instant::now();
                }
            }
        }
        warn!(
            lease = format!("{id:x}"),
            "lost the cluster lease: this node is no longer a member"
        );
        let _ = tx.send(None);
        given_up = Some(id);
    }
}
