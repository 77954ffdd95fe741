//! File descriptors as a budget. The daemon raises its soft `RLIMIT_NOFILE` to the hard limit at
//! start (as systemd advises services to), keeps a reserve that only agents, processes, the store
//! and logs may use, and splits the rest between the API and the proxy's listeners, which take a
//! share for each connection *before* accepting it: a flood of idle clients waits in the kernel's
//! accept queue instead of taking the descriptors a monitor needs (the fault was: ~1 100 idle
//! connections at the usual 1 024 limit made agents fail with EMFILE, and those failures
//! counted against resources and peers).
//!
//! A local lack of descriptors is never a failure of a resource or a peer: [`is_local_exhaustion`]
//! tells them apart where errors are judged.

use std::sync::{Arc, OnceLock};

use tokio::sync::Semaphore;

/// Descriptors kept for agents and processes (each takes several for pipes), the store, logs.
const RESERVE_MIN: u64 = 128;

/// How the descriptors are split, once, at start.
#[derive(Debug)]
pub struct Budget {
    /// The soft limit after raising it.
    pub limit: u64,
    /// Descriptors the API and the listeners may take in all.
    pub connections: u64,
    /// Shared by every listener (a proxied connection takes two: client and peer).
    pub listeners: Arc<Semaphore>,
    /// The most connections the API may hold, whatever `[api] max_connections` says.
    pub api: u64,
}

static BUDGET: OnceLock<Budget> = OnceLock::new();

/// Raises the soft descriptor limit to the hard one; returns the soft limit now. Failing to
/// raise it is not fatal (the budget follows the limit there is).
pub fn raise_limit() -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let cur = getrlimit(Resource::Nofile);
    let soft = cur.current.unwrap_or(u64::MAX);
    if cur.current.is_some() && cur.current != cur.maximum {
        let want = Rlimit {
            current: cur.maximum,
            maximum: cur.maximum,
        };
        if setrlimit(Resource::Nofile, want).is_ok() {
            return cur.maximum.unwrap_or(u64::MAX);
        }
    }
    soft
}

/// The budget for a soft limit of `limit` descriptors.
pub fn split(limit: u64) -> Budget {
    // A quarter of the descriptors (at least RESERVE_MIN, at most 64 Ki) stay for the rest.
    let limit = limit.min(1 << 24);
    let reserve = (limit / 4).clamp(RESERVE_MIN, 64 << 10).min(limit / 2);
    let connections = limit - reserve;
    let api = (connections / 8).max(4);
    let listeners = connections.saturating_sub(api);
    Budget {
        limit,
        connections,
        listeners: Arc::new(Semaphore::new(
            usize::try_from(listeners).unwrap_or(usize::MAX),
        )),
        api,
    }
}

/// The daemon's budget: made on first use from the limit then (after [`raise_limit`]).
pub fn budget() -> &'static Budget {
    BUDGET.get_or_init(|| {
        let cur = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        split(cur.current.unwrap_or(1 << 20))
    })
}

/// Whether `e` says this machine (this process) ran out of descriptors, buffers or memory:
/// nothing a peer or an agent did.
pub fn is_local_exhaustion(e: &std::io::Error) -> bool {
    use rustix::io::Errno;
    e.raw_os_error().is_some_and(|n| {
        [Errno::MFILE, Errno::NFILE, Errno::NOBUFS, Errno::NOMEM]
            .iter()
            .any(|x| x.raw_os_error() == n)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_keeps_a_reserve_and_a_share_for_the_api() {
        let b = split(1024);
        assert_eq!(b.connections, 768);
        assert_eq!(b.api, 96);
        assert_eq!(b.listeners.available_permits(), 672);
        let b = split(256);
        assert_eq!((b.connections, b.api), (128, 16));
        let b = split(1 << 20);
        assert_eq!(b.connections, (1 << 20) - (64 << 10));
        assert!(is_local_exhaustion(&std::io::Error::from_raw_os_error(24)));
        assert!(!is_local_exhaustion(&std::io::Error::from_raw_os_error(
            111
        )));
    }
}
