//! Crash-to-restart latency of a `process` resource: the real daemon runs a
//! `sleep` process; we SIGKILL it and time until the new process runs (its pidfile names a new,
//! live pid). 100 trials, 1 s apart (about two minutes); prints p50, p99 and max. Run: `cargo bench -p warden --bench
//! crash_restart`. Pacemaker's anchor: up to one monitor interval (10 s by default) + ~0.1 s.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn pid(data: &Path) -> Option<i32> {
    let s = std::fs::read_to_string(data.join("run/job.pid")).ok()?;
    s.split_whitespace().next()?.parse().ok()
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let trials = if quick { 3 } else { 100 };
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let config = dir.path().join("bench.toml");
    std::fs::write(
        &config,
        "[cluster]\nname = \"bench\"\ndata_dir = \"data\"\n[api]\nlisten = \"127.0.0.1:0\"\n\
         [[resource]]\nid = \"job\"\nclass = \"process\"\ncommand = [\"sleep\", \"100000\"]\n\
         ops = [{ name = \"monitor\", interval = \"10s\" }]\n",
    )
    .expect("config");
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["run", "--log-level", "warn", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("warden run");
    let wait_new = |old: Option<i32>, within: Duration| -> Option<(i32, Instant)> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(p) = pid(&data) {
                if Some(p) != old && alive(p) {
                    return Some((p, Instant::now()));
                }
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        None
    };
    let (mut current, _) = wait_new(None, Duration::from_secs(30)).expect("the process starts");
    std::thread::sleep(Duration::from_millis(200));
    let mut samples = Vec::with_capacity(trials);
    for _ in 0..trials {
        let killed = Instant::now();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(current),
            nix::sys::signal::Signal::SIGKILL,
        )
        .expect("kill");
        let (next, seen) =
            wait_new(Some(current), Duration::from_secs(10)).expect("restarted within 10 s");
        samples.push(seen - killed);
        current = next;
        // Each trial is one crash, not a crash loop: wait past the daemon's quick-exit window
        // (1 s), after which a second death in a row would be restarted with a backoff.
        std::thread::sleep(Duration::from_millis(1050));
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = daemon.wait();
    let slow: Vec<String> = samples
        .iter()
        .enumerate()
        .filter(|(_, d)| **d > Duration::from_millis(20))
        .map(|(i, d)| format!("#{i} {d:.1?}"))
        .collect();
    if !slow.is_empty() {
        println!("trials over 20 ms: {}", slow.join(", "));
    }
    samples.sort();
    println!(
        "crash to restart, process resource, {trials} trials: p50 {:.2?}  p99 {:.2?}  max {:.2?}  min {:.2?}",
        percentile(&samples, 0.50),
        percentile(&samples, 0.99),
        samples[samples.len() - 1],
        samples[0]
    );
    println!(
        "RESULT p50_us={} p99_us={}",
        percentile(&samples, 0.50).as_micros(),
        percentile(&samples, 0.99).as_micros()
    );
}
