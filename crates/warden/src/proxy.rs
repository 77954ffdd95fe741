//! The failover proxy (design section 5), TCP so far: a listener bound to an upstream sends each
//! client connection to the first routable primary, or to a backup when no primary is, failing
//! back as soon as a primary is routable again (`preempt`). A connect that fails moves on to the
//! next peer within the same client connection, before any client byte is lost.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, warn};

use crate::check::runner::Checker;
use crate::check::{CheckError, Peer};

/// A `[[listener]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenerSpec {
    pub name: String,
    pub listen: SocketAddr,
    pub upstream: String,
    /// How long one connect attempt to a peer may take before the next peer is tried.
    pub connect_timeout: Duration,
}

/// The peers to try for a new connection, in order: routable primaries (in configuration
/// order), then routable backups, then the others (a health state can be stale, and a refused
/// connect costs little), so a failed connect always has somewhere to go next. Peers marked
/// `down` are never tried.
pub fn candidates(checker: &Checker, upstream: &str) -> Vec<Peer> {
    let Some((peers, spec)) = checker.peers_of(upstream) else {
        return Vec::new();
    };
    let tier = |backup: bool, routable: bool| -> Vec<Peer> {
        peers
            .iter()
            .filter(|p| p.backup == backup && !p.peer.down && p.routable(&spec) == routable)
            .map(|p| p.peer.clone())
            .collect()
    };
    let mut out = tier(false, true);
    out.extend(tier(true, true));
    out.extend(tier(false, false));
    out.extend(tier(true, false));
    out
}

/// Accepts and proxies connections until the daemon exits.
pub async fn serve_tcp(spec: ListenerSpec, listener: TcpListener, checker: Checker) {
    loop {
        let (client, from) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                warn!(listener = %spec.name, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (spec, checker) = (spec.clone(), checker.clone());
        tokio::spawn(async move {
            let _ = client.set_nodelay(true);
            let Some((mut upstream, peer)) = connect_first(&spec, &checker).await else {
                warn!(listener = %spec.name, upstream = %spec.upstream, client = %from, "no peer of upstream {} accepted the connection", spec.upstream);
                return;
            };
            debug!(listener = %spec.name, peer = %peer.addr, client = %from, "proxying");
            let mut client = client;
            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
        });
    }
}

/// Connects to the first candidate that accepts, in order.
async fn connect_first(spec: &ListenerSpec, checker: &Checker) -> Option<(TcpStream, Peer)> {
    for peer in candidates(checker, &spec.upstream) {
        match tokio::time::timeout(
            spec.connect_timeout,
            TcpStream::connect((peer.host.as_str(), peer.port)),
        )
        .await
        {
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                return Some((s, peer));
            }
            Ok(Err(e)) => {
                debug!(listener = %spec.name, peer = %peer.addr, error = %e, "connect failed; trying the next peer");
                // Real traffic saw it fail: that counts for its health now.
                checker.report_failure(&spec.upstream, &peer.addr, CheckError::from_connect(&e));
            }
            Err(_) => {
                debug!(listener = %spec.name, peer = %peer.addr, "connect timed out; trying the next peer");
                checker.report_failure(&spec.upstream, &peer.addr, CheckError::Timeout);
            }
        }
    }
    None
}
