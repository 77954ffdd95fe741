//! Warden with a real systemd: each test boots systemd 252 (Debian's) as PID 1 of a PID and
//! mount namespace of its own (`tests/fixtures/systemd-ns.sh`: a fresh /run and /proc, every
//! unit that would touch the machine masked), and runs the daemon there, as a plain process or
//! as a `Type=notify` unit. What is checked: `class = "systemd"` resources through systemd's
//! D-Bus API (and refused where systemd is not the init system), and `systemctl restart` of
//! Warden leaving its resources and listeners to the new daemon while `systemctl stop` stops
//! them. Needs root (namespaces), as the cluster tests do.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const WARDEN: &str = env!("CARGO_BIN_EXE_warden");

/// systemd booted in namespaces of its own; killed (with all it runs) when dropped.
struct Systemd {
    unshare: Child,
    /// systemd's PID as this (the host's) namespace sees it.
    pid: u32,
}

impl Systemd {
    fn boot() -> Systemd {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/systemd-ns.sh");
        let unshare = Command::new("unshare")
            .args([
                "--pid",
                "--fork",
                "--mount",
                "--cgroup",
                "--propagation",
                "private",
                "--kill-child",
                "sh",
                script,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("unshare (util-linux)");
        let deadline = Instant::now() + Duration::from_secs(30);
        let pid = loop {
            let children = std::fs::read_to_string(format!(
                "/proc/{}/task/{}/children",
                unshare.id(),
                unshare.id()
            ))
            .unwrap_or_default();
            if let Some(pid) = children.split_whitespace().next() {
                break pid.parse().expect("pid");
            }
            assert!(Instant::now() < deadline, "systemd did not start");
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut sd = Systemd { unshare, pid };
        loop {
            let state = sd.sh("systemctl is-system-running 2>/dev/null || true");
            if state.trim() == "running" {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "systemd did not come up in its namespace: {state:?}"
            );
            if let Ok(Some(status)) = sd.unshare.try_wait() {
                panic!("systemd's namespace ended: {status}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        sd
    }

    /// Runs `script` with sh inside the namespaces; its standard output.
    fn sh(&self, script: &str) -> String {
        let out = Command::new("nsenter")
            .args(["-t", &self.pid.to_string(), "-m", "-p", "sh", "-c", script])
            .output()
            .expect("nsenter");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A property of a unit (`systemctl show -p NAME --value`).
    fn show(&self, unit: &str, name: &str) -> String {
        self.sh(&format!("systemctl show -p {name} --value {unit}"))
            .trim()
            .to_owned()
    }

    fn write_unit(&self, name: &str, text: &str) {
        self.sh(&format!(
            "cat > /run/systemd/system/{name} <<'EOF'\n{text}EOF\nsystemctl daemon-reload"
        ));
    }
}

impl Drop for Systemd {
    fn drop(&mut self) {
        // systemd is PID 1 of the namespace: when it dies, so does everything in it.
        let _ = Command::new("kill")
            .args(["-9", &self.pid.to_string()])
            .status();
        let _ = self.unshare.kill();
        let _ = self.unshare.wait();
    }
}

fn cli(config: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(WARDEN)
        .args(args)
        .env("WARDEN_CONFIG", config)
        .output()
        .expect("run warden");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn status(config: &Path) -> Option<Value> {
    let (ok, out, _) = cli(config, &["status", "--json"]);
    ok.then(|| serde_json::from_str(&out).ok()).flatten()
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

fn wait_for(config: &Path, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = status(config) {
            if cond(&v) {
                return v;
            }
        }
        if Instant::now() > deadline {
            let log =
                std::fs::read_to_string(config.with_file_name("warden.log")).unwrap_or_default();
            panic!(
                "timed out waiting for {what}; last status: {:?}\nlog:\n{log}",
                status(config)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port()
}

/// A directory for a test's configuration and data (under the target dir, not /tmp).
fn workdir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("dir")
}

fn write_config(dir: &Path, body: &str) -> PathBuf {
    let config = dir.join("warden.toml");
    std::fs::write(
        &config,
        format!(
            "[cluster]\nname = \"sd\"\ndata_dir = \"data\"\n[api]\nlisten = \"127.0.0.1:0\"\n{body}"
        ),
    )
    .expect("config");
    config
}

const SLEEPER: &str = "[Service]\nExecStart=/bin/sleep infinity\nRestart=always\n";

#[test]
fn a_systemd_unit_is_run_by_warden_and_not_restarted_by_systemd_behind_its_back() {
    let sd = Systemd::boot();
    // `Restart=always` in the unit: Warden's drop-in must win, or systemd would restart the
    // unit itself and Warden would never see the failure.
    sd.write_unit("wtest-web.service", SLEEPER);
    let dir = workdir();
    let config = write_config(
        dir.path(),
        "[[resource]]\nid = \"web\"\nclass = \"systemd\"\ntype = \"wtest-web\"\nops = [{ name = \"monitor\", interval = \"500ms\" }]\n\
         [[resource]]\nid = \"ghost\"\nclass = \"systemd\"\ntype = \"wtest-missing\"\n",
    );
    let log = dir.path().join("warden.log");
    let daemon = sd.sh(&format!(
        "{WARDEN} run --config {} --log-output {} --log-level debug >/dev/null 2>&1 & echo $!",
        config.display(),
        log.display()
    ));
    let daemon = daemon.trim().to_owned();
    let v = wait_for(&config, "web started, ghost refused", |v| {
        started(v, "web")
            && v["failed_actions"]
                .as_array()
                .is_some_and(|f| f.iter().any(|a| a["resource"] == "ghost" && a["rc"] == 5))
    });
    assert_eq!(sd.show("wtest-web", "ActiveState"), "active");
    let ghost = v["failed_actions"]
        .as_array()
        .and_then(|f| f.iter().find(|a| a["resource"] == "ghost"))
        .expect("ghost");
    assert!(
        ghost["exit_reason"]
            .as_str()
            .is_some_and(|r| r.contains("unit wtest-missing.service not found")),
        "{ghost}"
    );
    let dropin = sd.sh("cat /run/systemd/system/wtest-web.service.d/50-warden.conf");
    assert!(dropin.contains("Restart=no"), "{dropin}");

    // The unit's process dies: Warden's monitor sees it, and Warden, not systemd, starts it
    // again.
    let first = sd.show("wtest-web", "MainPID");
    sd.sh(&format!("kill -9 {first}"));
    let v = wait_for(
        &config,
        "the failure seen and the unit started again",
        |v| {
            started(v, "web")
                && v["failed_actions"]
                    .as_array()
                    .is_some_and(|f| f.iter().any(|a| a["resource"] == "web" && a["rc"] == 7))
        },
    );
    let failed = v["failed_actions"]
        .as_array()
        .and_then(|f| f.iter().find(|a| a["resource"] == "web"))
        .expect("web failure");
    assert!(
        failed["exit_reason"]
            .as_str()
            .is_some_and(|r| r.contains("failed: signal")),
        "{failed}"
    );
    eventually("a new main process", || {
        let now = sd.show("wtest-web", "MainPID");
        now != first && now != "0"
    });
    assert_eq!(
        sd.show("wtest-web", "NRestarts"),
        "0",
        "systemd restarted it"
    );
    let (ok, out, err) = cli(&config, &["history", "web", "--json", "--limit", "100"]);
    assert!(ok, "{err}");
    let starts = serde_json::from_str::<Value>(&out)
        .expect("json")
        .as_array()
        .map_or(0, |h| h.iter().filter(|e| e["op"] == "start_0").count());
    assert_eq!(starts, 2, "{out}");

    // The daemon stops: so does the unit.
    sd.sh(&format!("kill -TERM {daemon}"));
    eventually("the unit stopped", || {
        sd.show("wtest-web", "ActiveState") == "inactive"
    });
}

#[test]
fn systemctl_restart_leaves_resources_and_listeners_to_the_new_daemon_and_stop_stops_them() {
    let sd = Systemd::boot();
    sd.write_unit("wtest-web.service", SLEEPER);
    let dir = workdir();
    let (front, back) = (free_port(), free_port());
    let config = write_config(
        dir.path(),
        &format!(
            "[[resource]]\nid = \"web\"\nclass = \"systemd\"\ntype = \"wtest-web\"\n\
             [[resource]]\nid = \"backend\"\nclass = \"process\"\ncommand = [\"python3\", \"-m\", \"http.server\", \"{back}\", \"--bind\", \"127.0.0.1\"]\n\
             [[upstream]]\nname = \"app\"\nprimary = [\"127.0.0.1:{back}\"]\ncheck = {{ type = \"tcp\", interval = \"200ms\" }}\n\
             [[listener]]\nname = \"front\"\nlisten = \"127.0.0.1:{front}\"\nupstream = \"app\"\nprotocol = \"http\"\n"
        ),
    );
    let log = dir.path().join("warden.log");
    // The packaged unit's settings that matter here.
    sd.write_unit(
        "warden.service",
        &format!(
            "[Service]\nType=notify\nExecStart={WARDEN} run --config {} --log-output {} --log-level debug\nKillMode=process\nTimeoutStopSec=60\n",
            config.display(),
            log.display()
        ),
    );
    sd.sh("systemctl start warden");
    assert_eq!(sd.show("warden", "ActiveState"), "active", "READY=1 came");
    wait_for(&config, "both resources started", |v| {
        started(v, "web") && started(v, "backend")
    });
    let get = move || {
        let mut s =
            std::net::TcpStream::connect(("127.0.0.1", front)).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        std::io::Write::write_all(
            &mut s,
            b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        )
        .map_err(|e| e.to_string())?;
        let mut out = String::new();
        std::io::Read::read_to_string(&mut s, &mut out).map_err(|e| e.to_string())?;
        Ok::<_, String>(out.lines().next().unwrap_or("").to_owned())
    };
    eventually("the listener serves", || {
        get().is_ok_and(|l| l.contains(" 200 "))
    });
    let unit_pid = sd.show("wtest-web", "MainPID");
    let backend_pid = sd.sh("pgrep -f '^python3 -m http.server'");
    let old_daemon = sd.show("warden", "MainPID");
    assert!(!backend_pid.trim().is_empty());

    // A client sends requests all through the restart: none may fail.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let client = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut results = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                results.push(get());
                std::thread::sleep(Duration::from_millis(10));
            }
            results
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    sd.sh("systemctl restart warden");
    eventually("a new daemon", || {
        let now = sd.show("warden", "MainPID");
        now != old_daemon && now != "0"
    });
    wait_for(&config, "the new daemon settled", |v| {
        v["transition_running"] == false && started(v, "web") && started(v, "backend")
    });
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let results = client.join().expect("client");
    let failed: Vec<_> = results
        .iter()
        .filter(|r| !r.as_ref().is_ok_and(|l| l.contains(" 200 ")))
        .collect();
    assert!(
        results.len() > 20 && failed.is_empty(),
        "{} of {} requests failed across the restart: {failed:?}",
        failed.len(),
        results.len()
    );
    // Nothing was stopped or started again: the same unit process, the same backend.
    assert_eq!(sd.show("wtest-web", "MainPID"), unit_pid);
    assert_eq!(sd.sh("pgrep -f '^python3 -m http.server'"), backend_pid);
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(
        text.contains("systemd restarts this daemon: the resources stay running"),
        "{text}"
    );
    assert!(text.contains("listening socket taken over"), "{text}");

    // A stop is a stop: the resources stop with the daemon.
    sd.sh("systemctl stop warden");
    assert_eq!(sd.show("wtest-web", "ActiveState"), "inactive");
    assert_eq!(
        sd.sh("pgrep -f '^python3 -m http.server' || true").trim(),
        ""
    );
}

#[test]
fn class_systemd_is_refused_with_its_reason_where_systemd_is_not_the_init_system() {
    // A mount namespace whose /run is empty: whatever the host runs, no systemd here.
    let dir = workdir();
    let config = write_config(
        dir.path(),
        "[[resource]]\nid = \"web\"\nclass = \"systemd\"\ntype = \"nginx\"\n",
    );
    let in_ns = |script: &str| {
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(format!("mount -t tmpfs tmpfs /run && {script}"))
            .output()
            .expect("unshare")
    };
    let out = in_ns(&format!("{WARDEN} check-config {}", config.display()));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(
            "warden.toml:8:9: error: nginx.service: systemd is not this machine's init system"
        ),
        "{err}"
    );
    let log = dir.path().join("warden.log");
    let mut daemon = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(format!(
            "mount -t tmpfs tmpfs /run && exec {WARDEN} run --config {} --log-output {}",
            config.display(),
            log.display()
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("daemon");
    let v = wait_for(&config, "the resource refused", |v| {
        v["failed_actions"]
            .as_array()
            .is_some_and(|f| f.iter().any(|a| a["resource"] == "web" && a["rc"] == 5))
    });
    let reason = v["failed_actions"][0]["exit_reason"].as_str().unwrap_or("");
    assert!(
        reason.contains("systemd is not this machine's init system"),
        "{reason}"
    );
    let _ = Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status();
    let _ = daemon.wait();
}
