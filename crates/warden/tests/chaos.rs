//! The chaos suite: the real daemon under faults chosen at random (seeded; the seed is
//! printed), then checked from what the agents and the store recorded. Faults: agents that
//! fail or hang in start, monitor and stop; the supervised process SIGKILLed; the daemon
//! SIGKILLed at any moment (mid-transition included) and started again at once; floods of idle
//! connections to its API and its proxy at a 512-descriptor limit; a store that cannot grow
//! (RLIMIT_FSIZE below its size, as a full disk); the wall clock stepped (hours back or ahead)
//! for a daemon started again (libfaketime, its monotonic clock untouched as a real step leaves
//! it; the test machine's own clock is not touched). Checked: no start or stop of a resource ever
//! ran alongside another (the agents note it), nothing started where it is forbidden, every
//! command the daemon acknowledged survives its SIGKILL, and everything recovers once the
//! faults stop. `WARDEN_CHAOS_SECONDS` (default 20; `bash scripts/chaos.sh` runs 600) and
//! `WARDEN_CHAOS_SEED` choose the run.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// xorshift64*: the faults, from a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Run {
    dir: tempfile::TempDir,
    config: PathBuf,
    data: PathBuf,
    root: PathBuf,
}

impl Run {
    /// Starts the daemon; `clock`: its wall clock's offset from the machine's ("-2h"), or "".
    fn start(&self, clock: &str) -> Daemon {
        let mut cmd = Command::new("sh");
        if !clock.is_empty() {
            cmd.env("LD_PRELOAD", faketime())
                .env("FAKETIME", clock)
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
        }
        let child = cmd
            .arg("-c")
            .arg("ulimit -n 512 && exec \"$0\" run --config \"$1\" --ocf-root \"$2\" --log-output \"$3\" --log-level debug")
            .arg(env!("CARGO_BIN_EXE_warden"))
            .arg(&self.config)
            .arg(&self.root)
            .arg(self.dir.path().join("daemon.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("warden run");
        Daemon(child)
    }

    fn cli(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_warden"))
            .args(args)
            .env("WARDEN_CONFIG", &self.config)
            .output()
            .expect("warden");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn status(&self) -> Option<Value> {
        let (ok, out, _) = self.cli(&["status", "--json"]);
        ok.then(|| serde_json::from_str(&out).ok()).flatten()
    }

    fn wait_for(&self, what: &str, within: Duration, cond: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + within;
        loop {
            if let Some(v) = self.status() {
                if cond(&v) {
                    return v;
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "{what} did not happen; status {:?}\nlog tail:\n{}",
                    self.status(),
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn pid_of(&self, id: &str) -> i32 {
        std::fs::read_to_string(self.data.join(format!("run/{id}.pid")))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }
}

fn resource<'a>(v: &'a Value, id: &str) -> &'a Value {
    v["resources"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["id"] == id))
        .expect("resource in status")
}

fn started(v: &Value, id: &str) -> bool {
    resource(v, id)["status"]
        .as_str()
        .is_some_and(|s| s.contains("Started"))
}

fn disabled(v: &Value, id: &str) -> bool {
    resource(v, id)["flags"]
        .as_array()
        .is_some_and(|f| f.iter().any(|x| x == "disabled"))
}

fn setup() -> Run {
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("warden.toml");
    let data = dir.path().join("data");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ocf");
    let chaos = |id: &str| {
        let p = |s: &str| dir.path().join(format!("{id}.{s}")).display().to_string();
        format!(
            "[[resource]]\nid = \"{id}\"\nclass = \"ocf\"\nprovider = \"warden-test\"\ntype = \"Chaos\"\n\
             params = {{ state = \"{}\", log = \"{}\", faults = \"{}\" }}\n\
             ops = [{{ name = \"monitor\", interval = \"1s\", timeout = \"2s\" }}, \
             {{ name = \"start\", timeout = \"2s\" }}, {{ name = \"stop\", timeout = \"2s\" }}]\n",
            p("state"),
            p("log"),
            p("faults")
        )
    };
    let node = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    std::fs::write(
        &config,
        format!(
            "[cluster]\nname = \"chaos\"\ndata_dir = \"data\"\n[api]\nlisten = \"127.0.0.1:0\"\n\
             {}{}{}\
             [[resource]]\nid = \"p\"\nclass = \"process\"\ncommand = [\"sleep\", \"100000\"]\n\
             stop_timeout = \"2s\"\nops = [{{ name = \"monitor\", interval = \"1s\" }}]\n\
             [[order]]\nfirst = \"a\"\nthen = \"b\"\n\
             [[location]]\nresource = \"never\"\nnode = \"{node}\"\nscore = \"-INFINITY\"\n\
             [[upstream]]\nname = \"svc\"\nprimary = [\"127.0.0.1:9\"]\n\
             check = {{ type = \"tcp\", interval = \"1s\" }}\n\
             [[listener]]\nname = \"front\"\nlisten = \"127.0.0.1:0\"\nupstream = \"svc\"\n",
            chaos("a"),
            chaos("b"),
            chaos("never"),
        ),
    )
    .expect("config");
    Run {
        dir,
        config,
        data,
        root,
    }
}

/// libfaketime (Debian's package; `scripts/test.sh` installs it).
fn faketime() -> PathBuf {
    ["x86_64-linux-gnu", "aarch64-linux-gnu"]
        .iter()
        .map(|arch| PathBuf::from(format!("/usr/lib/{arch}/faketime/libfaketime.so.1")))
        .find(|p| p.exists())
        .expect("libfaketime (Debian's libfaketime package; scripts/test.sh installs it)")
}

/// Sets the daemon's soft RLIMIT_FSIZE (prlimit); None: unlimited.
fn fsize(pid: u32, soft: Option<u64>) {
    let soft = soft.map_or("unlimited".to_owned(), |n| n.to_string());
    let _ = Command::new("prlimit")
        .args([
            "--pid",
            &pid.to_string(),
            &format!("--fsize={soft}:unlimited"),
        ])
        .status();
}

#[test]
fn under_random_faults_nothing_is_lost_doubled_or_misplaced_and_all_recovers() {
    let seconds: u64 = std::env::var("WARDEN_CHAOS_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let seed: u64 = std::env::var("WARDEN_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    println!("chaos: {seconds} s, WARDEN_CHAOS_SEED={seed}");
    let mut rng = Rng(seed);
    let run = setup();
    let mut clock = "";
    let mut daemon = run.start(clock);
    run.wait_for("the first start", Duration::from_secs(60), |v| {
        v["transition_running"] == false && ["a", "b", "p"].iter().all(|id| started(v, id))
    });
    let mut expect_disabled = false;
    let mut faults = std::collections::BTreeMap::<&str, usize>::new();
    let end = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < end {
        let kind = rng.below(8);
        match kind {
            0 | 1 => {
                // An agent fault, or none.
                let id = ["a", "b"][rng.below(2) as usize];
                let line = [
                    "",
                    "start fail\n",
                    "monitor fail\n",
                    "stop fail\n",
                    "monitor hang\n",
                    "start hang\n",
                ][rng.below(6) as usize];
                std::fs::write(run.file(&format!("{id}.faults")), line).expect("faults");
                *faults.entry("agent").or_default() += 1;
            }
            2 => {
                let p = run.pid_of("p");
                if p > 0 {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(p),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                *faults.entry("process killed").or_default() += 1;
            }
            3 | 7 => {
                // The daemon dies (mid-transition or not) and comes back at once, or with its
                // wall clock stepped; what it acknowledged before must still hold.
                if kind == 7 {
                    clock = ["", "-2h", "-5m", "+1h", "+3d"][rng.below(5) as usize];
                    *faults.entry("clock step").or_default() += 1;
                }
                let _ = daemon.0.kill();
                let _ = daemon.0.wait();
                std::mem::forget(daemon);
                daemon = run.start(clock);
                let v = run.wait_for("the API after a SIGKILL", Duration::from_secs(30), |_| true);
                assert_eq!(
                    disabled(&v, "b"),
                    expect_disabled,
                    "an acknowledged command was lost by a SIGKILL (seed {seed})"
                );
                *faults.entry("daemon SIGKILL").or_default() += 1;
            }
            4 => {
                // A flood of idle connections for a moment.
                let mut flood = Vec::new();
                for f in ["api.addr", "listener-front.addr"] {
                    let Ok(addr) = std::fs::read_to_string(run.data.join(f)) else {
                        continue;
                    };
                    let Ok(to) = addr.trim().parse::<std::net::SocketAddr>() else {
                        continue;
                    };
                    for _ in 0..400 {
                        match std::net::TcpStream::connect_timeout(&to, Duration::from_millis(100))
                        {
                            Ok(s) => flood.push(s),
                            Err(_) => break,
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(200 + rng.below(1500)));
                drop(flood);
                *faults.entry("flood").or_default() += 1;
            }
            5 => {
                // The store cannot grow for a moment (a full disk).
                let len = std::fs::metadata(run.data.join("warden.redb")).map_or(0, |m| m.len());
                fsize(daemon.0.id(), Some(len / 4));
                std::thread::sleep(Duration::from_millis(200 + rng.below(2000)));
                fsize(daemon.0.id(), None);
                *faults.entry("store full").or_default() += 1;
            }
            _ => {
                // A command; acknowledged ones must hold.
                let want = rng.below(2) == 0;
                let (ok, _, _) =
                    run.cli(&["resource", if want { "disable" } else { "enable" }, "b"]);
                if ok {
                    expect_disabled = want;
                }
                *faults.entry("command").or_default() += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(100 + rng.below(500)));
    }
    println!("chaos: faults {faults:?}");

    // The faults stop: agents behave, the store records again (within its 5 s retry), failures
    // are cleaned up, b enabled: everything but `never` runs again.
    for id in ["a", "b"] {
        std::fs::write(run.file(&format!("{id}.faults")), "").expect("faults");
    }
    fsize(daemon.0.id(), None);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ok = ["cleanup a", "cleanup b", "enable b"].iter().all(|c| {
            let (verb, id) = c.split_once(' ').expect("command");
            run.cli(&["resource", verb, id]).0
        });
        if ok {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "commands refused:\n{}",
            run.log_tail()
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let v = run.wait_for("everything recovered", Duration::from_secs(90), |v| {
        v["transition_running"] == false && ["a", "b", "p"].iter().all(|id| started(v, id))
    });
    assert!(!started(&v, "never"), "{v}");
    assert!(
        daemon.0.try_wait().expect("wait").is_none(),
        "the daemon runs"
    );

    // What the agents noted: no start or stop ran alongside another, nothing ever started
    // where it is forbidden.
    for id in ["a", "b", "never"] {
        let log = std::fs::read_to_string(run.file(&format!("{id}.log"))).unwrap_or_default();
        assert!(
            !log.contains("OVERLAP"),
            "{id}: two actions at once (seed {seed}):\n{log}"
        );
        if id == "never" {
            assert!(
                !log.contains("begin start"),
                "never started (seed {seed}):\n{log}"
            );
        }
    }
    drop(daemon);
}
