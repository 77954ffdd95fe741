//! Health checks against real servers on 127.0.0.1 (and ::1), started by the tests on ports
//! the kernel picks: lua-resty-upstream-healthcheck's behaviours, then what it lacks.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use warden::check::runner::{Checker, UpstreamStatus, status_page};
use warden::check::{CheckError, CheckKind, CheckSpec, Peer, Upstream, probe};
use warden_engine::health::{Hysteresis, PeerState};

/// How a test server answers each connection.
#[derive(Clone)]
enum Reply {
    /// Reads the request, writes this, closes.
    Bytes(&'static [u8]),
    /// Accepts and never answers (a hung peer).
    Silence,
}

/// A server on `addr` (port 0: any); returns its port.
async fn serve(addr: &str, reply: Reply) -> u16 {
    let l = TcpListener::bind(addr).await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            let reply = reply.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                match reply {
                    Reply::Bytes(b) => {
                        let _ = s.read(&mut buf).await;
                        let _ = s.write_all(b).await;
                    }
                    Reply::Silence => {
                        let _ = s.read(&mut buf).await;
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                    }
                }
            });
        }
    });
    port
}

/// A port nothing listens on.
async fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    l.local_addr().expect("addr").port()
}

fn peer(host: &str, port: u16) -> Peer {
    let addr = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    Peer {
        addr,
        host: host.to_owned(),
        port,
        weight: 1,
        max_fails: 1,
        fail_timeout: Duration::from_secs(10),
        down: false,
    }
}

fn http(valid: Option<Vec<u16>>) -> CheckSpec {
    CheckSpec {
        kind: CheckKind::Http {
            request: b"GET /status HTTP/1.0\r\nHost: foo.com\r\n\r\n".to_vec(),
            tls: None,
        },
        interval: Duration::from_millis(40),
        timeout: Duration::from_millis(500),
        hysteresis: Hysteresis { fall: 3, rise: 2 },
        valid_statuses: valid,
        ..CheckSpec::default()
    }
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
const NOT_FOUND: &[u8] = b"HTTP/1.1 404 Not Found\r\n\r\n";
const ERROR: &[u8] = b"HTTP/1.1 500 Internal Server Error\r\n\r\n";
const SSH: &[u8] = b"SSH-2.0-OpenSSH_9.2\r\n";

async fn wait_until(
    c: &Checker,
    what: &str,
    cond: impl Fn(&[UpstreamStatus]) -> bool,
) -> Vec<UpstreamStatus> {
    // Generous: these are real sockets on a shared machine; the conditions come in well under
    // a second normally.
    for _ in 0..2000 {
        let s = c.snapshot();
        if cond(&s) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}: {:#?}", c.snapshot());
}

fn state(s: &[UpstreamStatus], u: usize, p: usize) -> PeerState {
    s[u].peers[p].state()
}

#[tokio::test]
async fn probe_outcomes() {
    let ok = serve("127.0.0.1:0", Reply::Bytes(OK)).await;
    let nf = serve("127.0.0.1:0", Reply::Bytes(NOT_FOUND)).await;
    let err = serve("127.0.0.1:0", Reply::Bytes(ERROR)).await;
    let ssh = serve("127.0.0.1:0", Reply::Bytes(SSH)).await;
    let hung = serve("127.0.0.1:0", Reply::Silence).await;
    let closed = closed_port().await;
    let h = "127.0.0.1";
    // Statuses ignored: any status line is healthy (as in lua-resty).
    assert_eq!(probe(&peer(h, nf), &http(None)).await, Ok(()));
    assert_eq!(
        probe(&peer(h, nf), &http(Some(vec![200, 302]))).await,
        Err(CheckError::BadStatus(404))
    );
    assert_eq!(
        probe(&peer(h, err), &http(Some(vec![200]))).await,
        Err(CheckError::BadStatus(500))
    );
    // As lua-resty-upstream-healthcheck: without valid_statuses, any reply line is healthy
    // (the status line is not even parsed); with them, it must be an HTTP status line.
    assert_eq!(probe(&peer(h, ssh), &http(None)).await, Ok(()));
    assert_eq!(
        probe(&peer(h, ssh), &http(Some(vec![200]))).await,
        Err(CheckError::BadStatusLine)
    );
    // No line at all (closed at once) is not a reply.
    let mute = serve("127.0.0.1:0", Reply::Bytes(b"")).await;
    assert_eq!(
        probe(&peer(h, mute), &http(None)).await,
        Err(CheckError::BadStatusLine)
    );
    assert_eq!(
        probe(&peer(h, closed), &http(None)).await,
        Err(CheckError::Refused)
    );
    // One deadline for the whole check: a peer that accepts and never answers fails.
    let started = std::time::Instant::now();
    assert_eq!(
        probe(&peer(h, hung), &http(None)).await,
        Err(CheckError::Timeout)
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    // Body match.
    let mut body = http(Some(vec![200]));
    body.body = Some("hello".into());
    assert_eq!(probe(&peer(h, ok), &body).await, Ok(()));
    body.body = Some("goodbye".into());
    assert_eq!(
        probe(&peer(h, ok), &body).await,
        Err(CheckError::BodyMismatch)
    );
    // TCP: connect only.
    let tcp = CheckSpec {
        kind: CheckKind::Tcp,
        ..http(None)
    };
    assert_eq!(probe(&peer(h, hung), &tcp).await, Ok(()));
    assert_eq!(
        probe(&peer(h, closed), &tcp).await,
        Err(CheckError::Refused)
    );
    // A check port other than the peer's.
    let mut other = http(Some(vec![200]));
    other.port = Some(ok);
    assert_eq!(probe(&peer(h, closed), &other).await, Ok(()));
    // Exec: the command's exit status, with the peer in its environment.
    let exec = |cmd: &str| CheckSpec {
        kind: CheckKind::Exec {
            command: vec!["sh".into(), "-c".into(), cmd.into()],
        },
        ..http(None)
    };
    assert_eq!(
        probe(
            &peer(h, ok),
            &exec(&format!("test \"$WARDEN_PEER_PORT\" = {ok}"))
        )
        .await,
        Ok(())
    );
    assert_eq!(
        probe(&peer(h, ok), &exec("exit 3")).await,
        Err(CheckError::Exit(3))
    );
}

#[tokio::test]
async fn ipv6_peers() {
    let Ok(l) = std::net::TcpListener::bind("[::1]:0") else {
        eprintln!("no IPv6 loopback here; nothing to check");
        return;
    };
    drop(l);
    let port = serve("[::1]:0", Reply::Bytes(OK)).await;
    assert_eq!(
        probe(&peer("::1", port), &http(Some(vec![200]))).await,
        Ok(())
    );
}

#[tokio::test]
async fn refused_peers_go_down_after_exactly_fall_failures_and_rise_again() {
    let good = serve("127.0.0.1:0", Reply::Bytes(OK)).await;
    // A peer that refuses now and will accept later: bind its port again when it should rise.
    let flaky = closed_port().await;
    let backup = closed_port().await;
    let c = Checker::start(vec![Upstream {
        name: "foo.com".into(),
        primary: vec![peer("127.0.0.1", good), peer("127.0.0.1", flaky)],
        backup: vec![peer("127.0.0.1", backup)],
        check: http(Some(vec![200])),
    }]);
    // Subscribed before any check ran (the test runtime has one thread and has not yielded).
    let mut events = c.events.subscribe();
    // The flaky peer's state read as its DOWN event arrives: the checks share this thread, and
    // its next check is an interval away (a poll of the state could come after it).
    let mut seen = Vec::new();
    let at_down = loop {
        let e = tokio::time::timeout(Duration::from_secs(20), events.recv())
            .await
            .expect("a change within 20 s")
            .expect("events");
        let is_flaky = e.peer.ends_with(&format!(":{flaky}"));
        seen.push((is_flaky, e.to, e.version));
        if is_flaky && e.to == PeerState::Down {
            break c.snapshot();
        }
    };
    let s = wait_until(&c, "the refusing peers down", |s| {
        state(s, 0, 1) == PeerState::Down && state(s, 0, 2) == PeerState::Down
    })
    .await;
    assert_eq!(state(&s, 0, 0), PeerState::Up);
    assert_eq!(s[0].version, 2, "one change per peer that went down");
    assert_eq!(
        at_down[0].peers[1].health.failures, 3,
        "down after exactly fall (3) failures"
    );
    assert_eq!(
        s[0].peers[1].last_error.as_deref(),
        Some("connection refused")
    );
    // The flaky peer comes back: UP after rise successes, version 3.
    let l = TcpListener::bind(("127.0.0.1", flaky))
        .await
        .expect("rebind");
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(OK).await;
        }
    });
    let s = wait_until(&c, "the flaky peer up", |s| state(s, 0, 1) == PeerState::Up).await;
    assert_eq!(s[0].version, 3);
    assert!(s[0].peers[1].health.successes >= 2);
    // An UP peer shows no error; the failure that took it down is kept, with its time.
    assert_eq!(s[0].peers[1].last_error, None);
    assert_eq!(
        s[0].peers[1].last_failure.as_ref().map(|(e, _)| e.as_str()),
        Some("connection refused")
    );
    // An event on every change, in order, with the version it made.
    while let Ok(e) = events.try_recv() {
        seen.push((e.peer.ends_with(&format!(":{flaky}")), e.to, e.version));
    }
    seen.sort_by_key(|e| e.2);
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(seen[2], (true, PeerState::Up, 3));
    assert!(seen[..2].iter().all(|e| e.1 == PeerState::Down));
}

#[tokio::test]
async fn several_upstreams_share_peers_and_more_peers_than_concurrency() {
    let good = serve("127.0.0.1:0", Reply::Bytes(OK)).await;
    let bad = serve("127.0.0.1:0", Reply::Bytes(ERROR)).await;
    let mut many = Vec::new();
    for _ in 0..12 {
        many.push(peer(
            "127.0.0.1",
            serve("127.0.0.1:0", Reply::Bytes(OK)).await,
        ));
    }
    let mut strict = http(Some(vec![200]));
    strict.concurrency = 2;
    let lenient = http(None);
    let c = Checker::start(vec![
        Upstream {
            name: "strict".into(),
            primary: vec![peer("127.0.0.1", good), peer("127.0.0.1", bad)],
            backup: many.clone(),
            check: strict,
        },
        Upstream {
            name: "lenient".into(),
            primary: vec![peer("127.0.0.1", good), peer("127.0.0.1", bad)],
            backup: vec![],
            check: lenient,
        },
    ]);
    let s = wait_until(&c, "everything checked", |s| {
        state(s, 0, 1) == PeerState::Down
            && s[0]
                .peers
                .iter()
                .skip(2)
                .all(|p| p.state() == PeerState::Up)
            && state(s, 1, 1) == PeerState::Up
    })
    .await;
    // The same peer is DOWN for the upstream that wants 200 and UP for the one that takes any status.
    assert_eq!(
        (state(&s, 0, 1), state(&s, 1, 1)),
        (PeerState::Down, PeerState::Up)
    );
    assert_eq!(s[1].version, 0);
}

#[tokio::test(start_paused = true)]
async fn a_hung_peer_is_detected_within_fall_times_interval_plus_timeout() {
    let hung = serve("127.0.0.1:0", Reply::Silence).await;
    let check = CheckSpec {
        kind: CheckKind::Http {
            request: b"GET / HTTP/1.0\r\n\r\n".to_vec(),
            tls: None,
        },
        interval: Duration::from_secs(2),
        timeout: Duration::from_secs(1),
        hysteresis: Hysteresis { fall: 3, rise: 2 },
        valid_statuses: Some(vec![200]),
        ..CheckSpec::default()
    };
    let bound = (check.interval + check.timeout) * check.hysteresis.fall;
    let start = tokio::time::Instant::now();
    let c = Checker::start(vec![Upstream {
        name: "api".into(),
        primary: vec![peer("127.0.0.1", hung)],
        backup: vec![],
        check,
    }]);
    loop {
        if c.snapshot()[0].peers[0].state() == PeerState::Down {
            break;
        }
        assert!(start.elapsed() <= bound, "not detected within {bound:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        c.snapshot()[0].peers[0].last_error.as_deref(),
        Some("timeout")
    );
}

#[test]
fn the_status_page_is_lua_restys_format_byte_for_byte() {
    use warden_engine::health::PeerHealth;
    let ps = |addr: &str, backup: bool, state: PeerState| {
        warden::check::runner::PeerStatus::for_test(
            Peer {
                addr: addr.into(),
                host: "127.0.0.1".into(),
                port: 1,
                weight: 1,
                max_fails: 1,
                fail_timeout: Duration::ZERO,
                down: false,
            },
            backup,
            PeerHealth {
                state,
                successes: 0,
                failures: 0,
            },
        )
    };
    let ups = vec![
        UpstreamStatus::for_test(
            "foo.com",
            3,
            vec![
                ps("127.0.0.1:12354", false, PeerState::Up),
                ps("127.0.0.1:12355", false, PeerState::Down),
                ps("127.0.0.1:12356", true, PeerState::Up),
            ],
        ),
        UpstreamStatus::for_test(
            "bar.com",
            0,
            vec![ps("127.0.0.1:12357", false, PeerState::Unknown)],
        ),
    ];
    assert_eq!(
        status_page(&ups),
        "Upstream foo.com\n    Primary Peers\n        127.0.0.1:12354 UP\n        127.0.0.1:12355 DOWN\n    Backup Peers\n        127.0.0.1:12356 UP\n\nUpstream bar.com\n    Primary Peers\n        127.0.0.1:12357 UNKNOWN\n    Backup Peers\n"
    );
}

#[tokio::test]
async fn peers_added_and_removed_at_runtime_leave_the_others_alone() {
    use warden::check::runner::PeerChangeError;
    let good = serve("127.0.0.1:0", Reply::Bytes(OK)).await;
    let refused = closed_port().await;
    let c = Checker::start(vec![Upstream {
        name: "api".into(),
        primary: vec![peer("127.0.0.1", good), peer("127.0.0.1", refused)],
        backup: vec![],
        check: http(Some(vec![200])),
    }]);
    let before = wait_until(&c, "the refused peer down", |s| {
        state(s, 0, 1) == PeerState::Down && state(s, 0, 0) == PeerState::Up
    })
    .await;
    let another = serve("127.0.0.1:0", Reply::Bytes(OK)).await;
    let addr = format!("127.0.0.1:{another}");
    c.add_peer("api", &addr, true).expect("add");
    assert_eq!(
        c.add_peer("api", &addr, true),
        Err(PeerChangeError::Exists {
            upstream: "api".into(),
            addr: addr.clone()
        })
    );
    assert_eq!(
        c.add_peer("nope", &addr, false),
        Err(PeerChangeError::UnknownUpstream("nope".into()))
    );
    assert!(matches!(
        c.add_peer("api", "nonsense", false),
        Err(PeerChangeError::BadAddress(_))
    ));
    let s = wait_until(&c, "the new peer up", |s| {
        s[0].peers.len() == 3 && state(s, 0, 2) == PeerState::Up
    })
    .await;
    assert!(s[0].peers[2].backup);
    // The others kept their state, and the version counts only real changes.
    assert_eq!(
        (state(&s, 0, 0), state(&s, 0, 1)),
        (PeerState::Up, PeerState::Down)
    );
    assert_eq!(s[0].version, before[0].version);
    assert!(s[0].peers[1].health.failures >= before[0].peers[1].health.failures);
    // Removed: gone from the status, no longer checked.
    let refused_addr = format!("127.0.0.1:{refused}");
    c.remove_peer("api", &refused_addr).expect("remove");
    assert_eq!(
        c.remove_peer("api", &refused_addr),
        Err(PeerChangeError::NoSuchPeer {
            upstream: "api".into(),
            addr: refused_addr.clone()
        })
    );
    let s = c.snapshot();
    assert_eq!(
        s[0].peers
            .iter()
            .map(|p| p.peer.addr.clone())
            .collect::<Vec<_>>(),
        [format!("127.0.0.1:{good}"), addr]
    );
    assert_eq!(status_page(&s).matches("DOWN").count(), 0);
}

#[test]
fn unknown_peers_route_as_up_unless_configured_otherwise() {
    use warden_engine::health::PeerHealth;
    let st = |state| {
        warden::check::runner::PeerStatus::for_test(
            peer("127.0.0.1", 1),
            false,
            PeerHealth {
                state,
                successes: 0,
                failures: 0,
            },
        )
    };
    let up_by_default = CheckSpec::default();
    let cautious = CheckSpec {
        unknown_routable: false,
        ..CheckSpec::default()
    };
    let rows = [
        (PeerState::Unknown, true, false),
        (PeerState::Up, true, true),
        (PeerState::Down, false, false),
    ];
    for (state, default, cautious_routes) in rows {
        assert_eq!(st(state).routable(&up_by_default), default, "{state:?}");
        assert_eq!(st(state).routable(&cautious), cautious_routes, "{state:?}");
    }
}

/// An HTTPS server on 127.0.0.1 with a self-signed certificate for `warden.test`; returns its
/// port and the certificate's PEM.
async fn serve_tls() -> (u16, String) {
    let cert = rcgen::generate_simple_self_signed(vec!["warden.test".to_owned()]).expect("cert");
    let pem = cert.cert.pem();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(vec![cert.cert.der().clone()], key)
    .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut s) = acceptor.accept(s).await else {
                    return;
                };
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(OK).await;
                let _ = s.shutdown().await;
            });
        }
    });
    (port, pem)
}

#[tokio::test]
async fn https_checks_with_sni_and_verification() {
    let (port, pem) = serve_tls().await;
    let dir = tempfile::tempdir().expect("dir");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pem).expect("ca");
    let check = |sni: &str, verify: bool, ca: Option<&std::path::Path>| CheckSpec {
        kind: CheckKind::Http {
            request: b"GET / HTTP/1.0\r\nHost: warden.test\r\n\r\n".to_vec(),
            tls: Some(warden::check::tls::Tls::new(
                sni.to_owned(),
                verify,
                ca.map(std::path::Path::to_path_buf),
            )),
        },
        valid_statuses: Some(vec![200]),
        body: Some("hello".into()),
        ..http(None)
    };
    let p = peer("127.0.0.1", port);
    assert_eq!(
        probe(&p, &check("warden.test", false, None)).await,
        Ok(()),
        "verify off"
    );
    let unknown = probe(&p, &check("warden.test", true, None)).await;
    assert!(
        matches!(&unknown, Err(CheckError::Tls(e)) if e.contains("UnknownIssuer")),
        "{unknown:?}"
    );
    assert_eq!(
        probe(&p, &check("warden.test", true, Some(&ca))).await,
        Ok(()),
        "verified against the CA, with SNI"
    );
    let wrong = probe(&p, &check("other.test", true, Some(&ca))).await;
    assert!(
        matches!(&wrong, Err(CheckError::Tls(e)) if e.contains("not valid for name \"other.test\"")),
        "{wrong:?}"
    );
    assert!(warden::check::tls::client("bad name!", true, None).is_err());
    assert!(warden::check::tls::client("x", true, Some(&dir.path().join("missing.pem"))).is_err());
}

/// An HTTP/1.1 server that answers every request on a connection with `reply` (or closes after
/// one when `close`); counts the connections it accepted.
async fn serve_persistent(
    reply: &'static [u8],
    close: bool,
) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    let conns = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&conns);
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            counted.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(reply).await.is_err() || close {
                        return;
                    }
                }
            });
        }
    });
    (port, conns)
}

#[tokio::test]
async fn keepalive_checks_reuse_one_connection_and_still_find_failures() {
    use std::sync::atomic::Ordering;
    use warden::check::probe_keepalive;
    let mut check = http(Some(vec![200]));
    check.keepalive = true;
    check.kind = CheckKind::Http {
        request: b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        tls: None,
    };
    // A persistent peer: ten checks, one connection.
    let (port, conns) =
        serve_persistent(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false).await;
    let p = peer("127.0.0.1", port);
    let mut conn = None;
    for _ in 0..10 {
        assert_eq!(probe_keepalive(&p, &check, &mut conn).await, Ok(()));
    }
    assert_eq!(conns.load(Ordering::Relaxed), 1);
    // A body match reads the body by its length.
    check.body = Some("ok".into());
    assert_eq!(probe_keepalive(&p, &check, &mut conn).await, Ok(()));
    check.body = Some("nope".into());
    assert_eq!(
        probe_keepalive(&p, &check, &mut conn).await,
        Err(CheckError::BodyMismatch)
    );
    check.body = None;
    assert_eq!(conns.load(Ordering::Relaxed), 1);

    // A peer that closes after each answer: a new connection per check, all fine.
    let (port, conns) = serve_persistent(
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        true,
    )
    .await;
    let p = peer("127.0.0.1", port);
    let mut conn = None;
    for _ in 0..3 {
        assert_eq!(probe_keepalive(&p, &check, &mut conn).await, Ok(()));
    }
    assert_eq!(conns.load(Ordering::Relaxed), 3);

    // A bad status on the kept connection is a failure; a hung peer times out.
    let (port, _) = serve_persistent(b"HTTP/1.1 503 No\r\nContent-Length: 0\r\n\r\n", false).await;
    let mut conn = None;
    assert_eq!(
        probe_keepalive(&peer("127.0.0.1", port), &check, &mut conn).await,
        Err(CheckError::BadStatus(503))
    );
    let hung = serve("127.0.0.1:0", Reply::Silence).await;
    check.timeout = Duration::from_millis(200);
    let mut conn = None;
    assert_eq!(
        probe_keepalive(&peer("127.0.0.1", hung), &check, &mut conn).await,
        Err(CheckError::Timeout)
    );
    assert!(conn.is_none(), "a timed-out connection is not kept");
}

/// The quickstart's demo servers (examples/hello.py) under Warden's HTTP checks, which close
/// with a reset: their logs stay free of tracebacks.
#[tokio::test]
async fn the_quickstart_servers_take_checks_without_tracebacks() {
    let port = closed_port().await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/hello.py");
    let mut server = std::process::Command::new("python3")
        .args([script, "demo", &port.to_string()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let p = peer("127.0.0.1", port);
    let check = http(Some(vec![200]));
    let mut passed = 0;
    for _ in 0..100 {
        if probe(&p, &check).await.is_ok() {
            passed += 1;
            if passed == 20 {
                break;
            }
        } else {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert_eq!(passed, 20, "the demo server answers the checks");
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill().expect("kill");
    let out = server.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("Traceback"), "{err}");
}

#[tokio::test]
async fn a_peer_no_longer_marked_down_by_a_reload_is_checked_again() {
    let good = serve("127.0.0.1:0", Reply::Bytes(OK)).await;
    let marked = Peer {
        down: true,
        ..peer("127.0.0.1", good)
    };
    let up = |p: Peer| Upstream {
        name: "api".into(),
        primary: vec![p],
        backup: vec![],
        check: http(Some(vec![200])),
    };
    let c = Checker::start(vec![up(marked)]);
    assert_eq!(
        state(&c.snapshot(), 0, 0),
        PeerState::Down,
        "down by config"
    );
    c.reconcile(&up(peer("127.0.0.1", good)), false)
        .expect("reload");
    wait_until(&c, "the peer checked and UP", |s| {
        state(s, 0, 0) == PeerState::Up
    })
    .await;
}

#[test]
fn one_peer_has_one_name() {
    let p = Peer::parse("[0:0::1]:8080").expect("peer");
    assert_eq!((p.addr.as_str(), p.host.as_str()), ("[::1]:8080", "::1"));
}

/// A server on its own thread (so a stalled test runtime does not stall it) that answers
/// 200 and notes when each check came.
fn timed_server() -> (
    u16,
    std::sync::Arc<std::sync::Mutex<Vec<std::time::Instant>>>,
) {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let at = std::sync::Arc::clone(&seen);
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            at.lock().expect("lock").push(std::time::Instant::now());
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let _ = s.write_all(OK);
        }
    });
    (port, seen)
}

#[tokio::test]
async fn after_a_stall_checks_keep_their_interval() {
    // The fault: after the daemon was stopped (SIGSTOP) and continued, the check queued during
    // the stall and the next ran back to back, so a peer "turned up" 1 ms after SIGCONT.
    let (port, seen) = timed_server();
    let interval = Duration::from_millis(300);
    let c = Checker::start(vec![Upstream {
        name: "api".into(),
        primary: vec![peer("127.0.0.1", port)],
        backup: vec![],
        check: CheckSpec {
            interval,
            ..http(Some(vec![200]))
        },
    }]);
    wait_until(&c, "checked", |s| state(s, 0, 0) == PeerState::Up).await;
    // The whole runtime stalls for several intervals, as a stopped process does.
    std::thread::sleep(interval * 4);
    tokio::time::sleep(interval * 4).await;
    let times = seen.lock().expect("lock").clone();
    assert!(times.len() >= 4, "{} checks", times.len());
    for w in times.windows(2) {
        let gap = w[1] - w[0];
        assert!(
            gap >= interval * 3 / 4,
            "two checks {gap:?} apart with an interval of {interval:?}"
        );
    }
}

#[tokio::test]
async fn checks_that_cannot_start_on_time_are_counted_and_said() {
    // The fault: 2 000 hung peers with the default concurrency were each checked every ~200 s,
    // none DOWN after 40 s, and nothing said so.
    let mut hung = Vec::new();
    for _ in 0..30 {
        let p = serve("127.0.0.1:0", Reply::Silence).await;
        hung.push(peer("127.0.0.1", p));
    }
    let c = Checker::start(vec![Upstream {
        name: "many".into(),
        primary: hung,
        backup: vec![],
        check: CheckSpec {
            interval: Duration::from_millis(100),
            timeout: Duration::from_millis(300),
            concurrency: 2,
            ..http(None)
        },
    }]);
    let s = wait_until(&c, "late checks counted", |s| s[0].late_checks > 0).await;
    let metrics = warden::check::runner::prometheus(&s);
    assert!(
        metrics.contains("warden_upstream_late_checks_total{name=\"many\"} "),
        "{metrics}"
    );
}

/// Captures what is logged on this thread (the test's single-threaded runtime).
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_peer_not_yet_up_is_not_an_error_until_it_turns_down() {
    let logs = Captured::default();
    let w = logs.clone();
    let sub = tracing_subscriber::fmt()
        .with_writer(move || w.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(sub);
    // A service that starts after the checks do: refused at first, then listening.
    let late = closed_port().await;
    let c = Checker::start(vec![Upstream {
        name: "api".into(),
        primary: vec![peer("127.0.0.1", late)],
        backup: vec![],
        check: CheckSpec {
            hysteresis: Hysteresis { fall: 5, rise: 1 },
            ..http(Some(vec![200]))
        },
    }]);
    wait_until(&c, "a failed check", |s| s[0].peers[0].health.failures >= 2).await;
    let _l = serve(&format!("127.0.0.1:{late}"), Reply::Bytes(OK)).await;
    wait_until(&c, "UP", |s| state(s, 0, 0) == PeerState::Up).await;
    let text = String::from_utf8_lossy(&logs.0.lock().expect("lock")).into_owned();
    assert!(!text.contains("ERROR"), "{text}");
}

/// `openssl s_server` with an X.509 v1 certificate (openssl makes one for `x509 -req` without
/// extensions), answering HTTP with its status page; killed when dropped.
struct V1Server {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl V1Server {
    fn start() -> V1Server {
        let dir = tempfile::tempdir().expect("dir");
        let run = |args: &[&str]| {
            let st = std::process::Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .expect("openssl (Debian's openssl package)");
            assert!(st.success(), "openssl {args:?}");
        };
        run(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "k.pem",
        ]);
        run(&[
            "req",
            "-new",
            "-key",
            "k.pem",
            "-subj",
            "/CN=warden.test",
            "-out",
            "r.csr",
        ]);
        run(&[
            "x509", "-req", "-in", "r.csr", "-signkey", "k.pem", "-days", "2", "-out", "c.pem",
        ]);
        let text = std::process::Command::new("openssl")
            .args(["x509", "-in", "c.pem", "-noout", "-text"])
            .current_dir(dir.path())
            .output()
            .expect("openssl");
        assert!(
            String::from_utf8_lossy(&text.stdout).contains("Version: 1 (0x0)"),
            "not a v1 certificate"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let child = std::process::Command::new("openssl")
            .args([
                "s_server", "-quiet", "-www", "-cert", "c.pem", "-key", "k.pem",
            ])
            .args(["-accept", &format!("127.0.0.1:{port}")])
            .current_dir(dir.path())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("openssl s_server");
        V1Server {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for V1Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn verify_false_accepts_an_x509_v1_certificate() {
    let server = V1Server::start();
    let check = |verify: bool| CheckSpec {
        kind: CheckKind::Http {
            request: b"GET / HTTP/1.0\r\nHost: warden.test\r\n\r\n".to_vec(),
            tls: Some(warden::check::tls::Tls::new(
                "warden.test".to_owned(),
                verify,
                None,
            )),
        },
        valid_statuses: Some(vec![200]),
        timeout: Duration::from_secs(2),
        ..http(None)
    };
    let p = peer("127.0.0.1", server.port);
    // s_server takes a moment to listen.
    let mut got = probe(&p, &check(false)).await;
    for _ in 0..100 {
        if got.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        got = probe(&p, &check(false)).await;
    }
    assert_eq!(got, Ok(()), "verify = false takes any certificate");
    assert!(
        matches!(probe(&p, &check(true)).await, Err(CheckError::Tls(_))),
        "verified, an unknown v1 certificate is refused"
    );
}
