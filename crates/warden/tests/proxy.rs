//! The TCP failover proxy with real backends on 127.0.0.1: primary killed under a client that
//! connects every 5 ms (zero failed requests, the retry covers the time before the health check
//! notices), and failback to the primary when it returns.

use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use warden::check::runner::Checker;
use warden::check::{CheckKind, CheckSpec, Peer, Upstream};
use warden::proxy::{ListenerSpec, serve};
use warden_engine::health::{Hysteresis, PeerState};

/// A backend answering each line with `NAME:line`; returns its port and the handle that kills it
/// (the listener closes: new connections are refused).
async fn backend(name: &'static str, port: u16) -> (u16, tokio::task::JoinHandle<()>) {
    let l = TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    let h = tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            tokio::spawn(async move {
                let (r, mut w) = s.into_split();
                let mut lines = BufReader::new(r).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if w.write_all(format!("{name}:{line}\n").as_bytes())
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (port, h)
}

fn peer(port: u16) -> Peer {
    Peer {
        addr: format!("127.0.0.1:{port}"),
        host: "127.0.0.1".into(),
        port,
        weight: 1,
        max_fails: 1,
        fail_timeout: Duration::from_secs(10),
        down: false,
    }
}

/// Checks upstream `svc` (these primaries and backups) and serves it on a listener on
/// 127.0.0.1; returns the checker and the proxy's port.
async fn proxy_for(
    primary: Vec<Peer>,
    backup: Vec<Peer>,
    check: CheckSpec,
    connect_timeout_ms: u64,
) -> (Checker, u16) {
    let checker = Checker::start(vec![Upstream {
        name: "svc".into(),
        primary,
        backup,
        check,
    }]);
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let spec = ListenerSpec {
        connect_timeout: Duration::from_millis(connect_timeout_ms),
        ..ListenerSpec::tcp("front", addr, "svc")
    };
    tokio::spawn(serve(spec, l, checker.clone()));
    (checker, addr.port())
}

/// One request through the proxy: connect, send a line, read the answer.
async fn request(proxy: u16, line: &str) -> Result<String, String> {
    let s = TcpStream::connect(("127.0.0.1", proxy))
        .await
        .map_err(|e| e.to_string())?;
    let (r, mut w) = s.into_split();
    w.write_all(format!("{line}\n").as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut lines = BufReader::new(r).lines();
    match tokio::time::timeout(Duration::from_secs(5), lines.next_line()).await {
        Ok(Ok(Some(l))) => Ok(l),
        other => Err(format!("{other:?}")),
    }
}

#[tokio::test]
async fn primary_killed_zero_failed_requests_then_failback() {
    let (a_port, a) = backend("A", 0).await;
    let (b_port, _b) = backend("B", 0).await;
    let check = CheckSpec {
        kind: CheckKind::Tcp,
        interval: Duration::from_millis(50),
        timeout: Duration::from_millis(200),
        hysteresis: Hysteresis { fall: 2, rise: 2 },
        ..CheckSpec::default()
    };
    let (checker, proxy) = proxy_for(vec![peer(a_port)], vec![peer(b_port)], check, 500).await;

    assert_eq!(request(proxy, "hello").await, Ok("A:hello".to_owned()));
    // Kill the primary, and keep a client connecting every 5 ms throughout.
    a.abort();
    let _ = a.await;
    let mut answers = Vec::new();
    let mut worst = Duration::ZERO;
    for i in 0..100 {
        let t = Instant::now();
        let r = request(proxy, &format!("r{i}")).await;
        worst = worst.max(t.elapsed());
        assert!(r.is_ok(), "request {i} failed: {r:?}");
        answers.push(r.unwrap_or_default());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(answers.iter().all(|a| a.starts_with("B:")), "{answers:?}");
    assert!(worst < Duration::from_secs(1), "worst latency {worst:?}");
    assert_eq!(
        checker.peers_of("svc").map(|(p, _)| p[0].state()),
        Some(PeerState::Down)
    );

    // The primary returns: once UP again, new connections go back to it (preempt).
    let (_a2_port, _a2) = backend("A", a_port).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if request(proxy, "back").await == Ok("A:back".to_owned()) {
            break;
        }
        assert!(Instant::now() < deadline, "no failback to the primary");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn no_peer_accepting_closes_the_client_cleanly() {
    let closed = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let check = CheckSpec {
        kind: CheckKind::Tcp,
        interval: Duration::from_secs(60),
        ..CheckSpec::default()
    };
    let (_checker, proxy) = proxy_for(vec![peer(closed)], vec![], check, 200).await;
    let r = request(proxy, "x").await;
    assert!(r.is_err(), "{r:?}");
}

#[tokio::test]
async fn a_refused_connect_counts_for_the_peers_health_at_once() {
    let (a_port, a_task) = backend("A", 0).await;
    let (b_port, _b) = backend("B", 0).await;
    // Active checks every minute: only real traffic can tell that A died.
    let check = CheckSpec {
        kind: CheckKind::Tcp,
        interval: Duration::from_secs(60),
        hysteresis: Hysteresis { fall: 2, rise: 2 },
        ..CheckSpec::default()
    };
    // nginx's passive detection off (max_fails = 0): only the health state keeps A out here.
    let a = Peer {
        max_fails: 0,
        ..peer(a_port)
    };
    let (checker, proxy) = proxy_for(vec![a], vec![peer(b_port)], check, 500).await;
    let a_state = || checker.peers_of("svc").map(|(p, _)| p[0].clone());
    // The first active check (at start) finds A up.
    for _ in 0..200 {
        if a_state().is_some_and(|p| p.state() == PeerState::Up) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(request(proxy, "x").await, Ok("A:x".to_owned()));
    a_task.abort();
    let _ = a_task.await;
    // Two connections meet A's refusal (fall = 2) and are carried to B.
    assert_eq!(request(proxy, "1").await, Ok("B:1".to_owned()));
    assert_eq!(request(proxy, "2").await, Ok("B:2".to_owned()));
    let a_now = a_state().expect("peer");
    assert_eq!(
        a_now.state(),
        PeerState::Down,
        "down at once, not at the next check a minute later"
    );
    assert_eq!(a_now.last_error.as_deref(), Some("connection refused"));
}
