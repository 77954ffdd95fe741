//! Health checks at scale: `warden run` checks 10 000 peers over HTTP every
//! second; we measure its CPU (percent of one core) and peak RSS over 60 s, and count the
//! checks the peers answered to prove the rate was kept. The peers are 10 000 addresses in
//! 127.0.0.0/8 served by four listeners (Linux delivers all of 127/8 to loopback; only loopback
//! addresses are ever contacted). Warden runs twice: a new connection per check (as HAProxy and
//! lua-resty check), then with `keepalive = true` (one connection per peer kept between checks,
//! as Envoy checks). Run: `cargo bench -p warden --bench health_checks`
//! (WARDEN_BENCH_SECONDS and WARDEN_BENCH_PEERS change the duration and the size).

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// (user, system) CPU ticks of a process.
fn cpu_ticks(pid: u32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rfind(')').map_or("", |i| &stat[i + 2..]);
    let f: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15, indexes 11 and 12 after the state.
    let field = |i: usize| f.get(i).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
    (field(11), field(12))
}

fn status_kb(pid: u32, key: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return; // only `cargo bench` runs it: it takes a minute
    }
    let seconds: u64 = std::env::var("WARDEN_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let peers: usize = std::env::var("WARDEN_BENCH_PEERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let served = Arc::new(AtomicU64::new(0));
    let mut ports = Vec::new();
    let mut listeners = Vec::new();
    for _ in 0..4 {
        // 0.0.0.0 so that every 127/8 address reaches it; only loopback addresses are used.
        let l = TcpListener::bind("0.0.0.0:0").expect("bind");
        l.set_nonblocking(true).expect("nonblocking");
        ports.push(l.local_addr().expect("addr").port());
        listeners.push(l);
    }
    // The peers: every request answered 200; an HTTP/1.0 one (a check per connection) then
    // closed, an HTTP/1.1 one (a kept connection) left open for the next.
    let counter = Arc::clone(&served);
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            for l in listeners {
                let l = tokio::net::TcpListener::from_std(l).expect("listener");
                let served = Arc::clone(&counter);
                tokio::spawn(async move {
                    loop {
                        let Ok((mut s, _)) = l.accept().await else {
                            continue;
                        };
                        let served = Arc::clone(&served);
                        tokio::spawn(async move {
                            use tokio::io::{AsyncReadExt, AsyncWriteExt};
                            let mut buf = [0u8; 512];
                            loop {
                                let n = s.read(&mut buf).await.unwrap_or(0);
                                if n == 0 {
                                    return;
                                }
                                let http10 = buf[..n].windows(8).any(|w| w == b"HTTP/1.0");
                                let reply: &[u8] = if http10 {
                                    b"HTTP/1.0 200 OK\r\n\r\n"
                                } else {
                                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
                                };
                                if s.write_all(reply).await.is_err() {
                                    return;
                                }
                                served.fetch_add(1, Ordering::Relaxed);
                                if http10 {
                                    return;
                                }
                            }
                        });
                    }
                });
            }
            std::future::pending::<()>().await;
        });
    });
    let dir = tempfile::tempdir().expect("dir");
    let per_upstream = 1000;
    let warden_config = |keepalive: bool| {
        let mut config = String::from(
            "[cluster]\nname = \"bench\"\ndata_dir = \"data\"\n[api]\nlisten = \"127.0.0.1:0\"\n",
        );
        for u in 0..peers.div_ceil(per_upstream) {
            let list: Vec<String> = (u * per_upstream..((u + 1) * per_upstream).min(peers))
                .map(|i| {
                    format!(
                        "\"127.{}.{}.{}:{}\"",
                        1 + i / 62_500,
                        (i / 250) % 250,
                        i % 250 + 1,
                        ports[i % ports.len()]
                    )
                })
                .collect();
            config.push_str(&format!(
            "[[upstream]]\nname = \"u{u}\"\nprimary = [{}]\n[upstream.check]\ntype = \"http\"\npath = \"/\"\ninterval = \"1s\"\ntimeout = \"1s\"\nfall = 3\nrise = 2\nvalid_statuses = [200]\nconcurrency = 50\nkeepalive = {keepalive}\n",
            list.join(", ")
        ));
        }
        config
    };
    let mut w = (0.0, 0.0);
    for keepalive in [false, true] {
        let path = dir.path().join(format!("bench-{keepalive}.toml"));
        std::fs::write(&path, warden_config(keepalive)).expect("config");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_warden"));
        cmd.args(["run", "--log-level", "warn", "--config"])
            .arg(&path);
        let name = if keepalive { "warden-ka" } else { "warden" };
        let r = measure(name, cmd, &served, seconds, peers);
        if !keepalive {
            w = r;
        }
    }

    // HAProxy, the same peers, the same check (HTTP GET /, 200, inter 1s fall 3 rise 2).
    let haproxy = ["/usr/sbin/haproxy", "/usr/bin/haproxy"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let Some(haproxy) = haproxy else {
        println!("haproxy is not installed (apt-get install haproxy): no side-by-side figure");
        return;
    };
    let front = TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let mut cfg = format!(
        "global\n  maxconn 4000\ndefaults\n  mode http\n  timeout connect 1s\n  timeout client 1s\n  timeout server 1s\n  timeout check 1s\nfrontend f\n  bind 127.0.0.1:{front}\n  default_backend b0\n"
    );
    for u in 0..peers.div_ceil(per_upstream) {
        cfg.push_str(&format!(
            "backend b{u}\n  option httpchk GET /\n  http-check expect status 200\n"
        ));
        for i in u * per_upstream..((u + 1) * per_upstream).min(peers) {
            let addr = format!(
                "127.{}.{}.{}:{}",
                1 + i / 62_500,
                (i / 250) % 250,
                i % 250 + 1,
                ports[i % ports.len()]
            );
            cfg.push_str(&format!(
                "  server s{i} {addr} check inter 1s fall 3 rise 2\n"
            ));
        }
    }
    let hpath = dir.path().join("haproxy.cfg");
    std::fs::write(&hpath, cfg).expect("haproxy config");
    let mut cmd = Command::new(haproxy);
    cmd.arg("-db").arg("-f").arg(&hpath);
    let h = measure("haproxy", cmd, &served, seconds, peers);
    println!(
        "ratio (haproxy / warden): CPU {:.2}x, peak RSS {:.2}x",
        h.0 / w.0,
        h.1 / w.1
    );
}

/// Runs `cmd` for `seconds` after a 5 s warm-up; prints and returns (CPU % of one core, peak
/// RSS in MB).
fn measure(
    name: &str,
    mut cmd: Command,
    served: &AtomicU64,
    seconds: u64,
    peers: usize,
) -> (f64, f64) {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let pid = child.id();
    std::thread::sleep(Duration::from_secs(5)); // warm up: every peer checked a few times
    let tick = 100.0; // USER_HZ
    let (c0, s0, t0) = (
        cpu_ticks(pid),
        served.load(Ordering::Relaxed),
        Instant::now(),
    );
    std::thread::sleep(Duration::from_secs(seconds));
    let (c1, s1, el) = (
        cpu_ticks(pid),
        served.load(Ordering::Relaxed),
        t0.elapsed().as_secs_f64(),
    );
    let hwm_mb = status_kb(pid, "VmHWM:") as f64 / 1024.0;
    let rss_mb = status_kb(pid, "VmRSS:") as f64 / 1024.0;
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
    let _ = child.wait();
    let user = (c1.0 - c0.0) as f64 / tick / el * 100.0;
    let sys = (c1.1 - c0.1) as f64 / tick / el * 100.0;
    let cpu = user + sys;
    let rate = (s1 - s0) as f64 / el;
    println!(
        "{name:>8}: {peers} HTTP peers every 1 s, {el:.0} s: CPU {cpu:.1} % of one core ({user:.1} user, {sys:.1} system), peak RSS {hwm_mb:.1} MB (now {rss_mb:.1} MB), checks answered {rate:.0}/s (expected {peers}/s)"
    );
    println!("RESULT {name} cpu_percent={cpu:.1} peak_rss_mb={hwm_mb:.1} checks_per_s={rate:.0}");
    (cpu, hwm_mb)
}
