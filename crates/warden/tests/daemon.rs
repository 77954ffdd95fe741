//! The real daemon, end to end: `warden run` with a real OCF agent (Debian's
//! ocf:heartbeat:Dummy) and a supervised process, talked to through the real CLI and API on
//! 127.0.0.1 with a port the kernel picks.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

struct Daemon {
    child: Child,
}

impl Drop for Daemon {
    /// SIGTERM, so the daemon stops what it runs (no process outlives the test), then SIGKILL
    /// if it takes too long.
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        if nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).is_ok() {
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn warden() -> Command {
    Command::new(env!("CARGO_BIN_EXE_warden"))
}

fn start(config: &Path, extra: &[&str]) -> Daemon {
    start_env(config, extra, &[])
}

/// [`start`] with these variables in the daemon's environment.
fn start_env(config: &Path, extra: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Daemon {
    let log = config.with_file_name("daemon.log");
    let child = warden()
        .args(["run", "--config"])
        .arg(config)
        .args(extra)
        .args(["--log-output"])
        .arg(&log)
        .args(["--log-level", "debug"])
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start warden run");
    Daemon { child }
}

/// Runs the CLI against the daemon of `config`; returns (success, stdout, stderr).
fn cli(config: &Path, args: &[&str]) -> (bool, String, String) {
    let out = warden()
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
    if ok {
        serde_json::from_str(&out).ok()
    } else {
        None
    }
}

/// Polls until `cond` holds on the status (generous bound: these are real processes).
fn wait_for(config: &Path, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = status(config) {
            if cond(&v) {
                return v;
            }
        }
        if Instant::now() > deadline {
            let log =
                std::fs::read_to_string(config.with_file_name("daemon.log")).unwrap_or_default();
            panic!(
                "timed out waiting for {what}; last status: {:?}\nlog:\n{log}",
                status(config)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn resource<'a>(v: &'a Value, id: &str) -> &'a Value {
    v["resources"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["id"] == id))
        .expect("resource in status")
}

fn settled_started(v: &Value) -> bool {
    v["transition_running"] == false
        && ["dummy", "web"].iter().all(|id| {
            resource(v, id)["status"]
                .as_str()
                .is_some_and(|s| s.contains("Started"))
        })
}

fn pid(data: &Path) -> i32 {
    pid_of(data, "web")
}

fn pid_of(data: &Path, id: &str) -> i32 {
    std::fs::read_to_string(data.join(format!("run/{id}.pid")))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn history(config: &Path, resource: &str) -> Vec<Value> {
    let (ok, out, err) = cli(config, &["history", resource, "--json", "--limit", "1000"]);
    assert!(ok, "{err}");
    serde_json::from_str::<Value>(&out)
        .expect("json")
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn count_ops(h: &[Value], op: &str) -> usize {
    h.iter().filter(|e| e["op"] == op).count()
}

fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let config = dir.path().join("warden.toml");
    std::fs::write(
        &config,
        format!(
            r#"[cluster]
name = "it"
data_dir = "data"

[api]
listen = "127.0.0.1:0"

[[resource]]
id = "dummy"
class = "ocf"
type = "Dummy"
params = {{ state = "{state}" }}
ops = [{{ name = "monitor", interval = "1s" }}]

[[resource]]
id = "web"
class = "process"
command = ["sleep", "1000"]
stop_timeout = "2s"
ops = [{{ name = "monitor", interval = "1s" }}]
"#,
            state = dir.path().join("dummy.state").display()
        ),
    )
    .expect("config");
    (dir, config, data)
}

#[test]
fn crash_restart_kill_9_of_the_daemon_and_sigterm() {
    assert!(
        Path::new("/usr/lib/ocf/resource.d/heartbeat/Dummy").exists(),
        "install Debian's resource-agents (scripts/test.sh does)"
    );
    let (dir, config, data) = setup();
    let mut d = start(&config, &[]);
    wait_for(&config, "both resources started", settled_started);
    let first = pid(&data);
    assert!(first > 0);

    // kill -9 the process: noticed at once, recovered in place, the failure recorded.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill");
    let v = wait_for(&config, "web restarted", |v| {
        settled_started(v) && pid(&data) != first && pid(&data) != 0
    });
    let web = resource(&v, "web");
    assert_eq!(web["state"], "started");
    assert_eq!(web["instances"][0]["role"], "started");
    assert_eq!(web["instances"][0]["node"], v["node"]);
    // The same in /metrics, with the daemon's own process.
    let node = v["node"].as_str().expect("node");
    let (_, metrics) = api_get(&data, "/metrics");
    for want in [
        "warden_resource_state{resource=\"web\",state=\"started\"} 1".to_owned(),
        "warden_resource_state{resource=\"web\",state=\"failed\"} 0".to_owned(),
        format!("warden_resource_running{{resource=\"web\",node=\"{node}\",role=\"started\"}} 1"),
        format!("warden_resource_fail_count{{resource=\"web\",node=\"{node}\"}} 1"),
        "warden_resource_start_delayed{resource=\"web\"} 0".to_owned(),
    ] {
        assert!(metrics.lines().any(|l| l == want), "{want}\n{metrics}");
    }
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name}\n{metrics}"))
    };
    // Every metric the daemon serves is documented in docs/api.md's table.
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md"))
        .expect("docs/api.md");
    let table = docs.split("## Metrics").nth(1).expect("a metrics section");
    for name in metrics.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
        let name = name.split(' ').next().unwrap_or_default();
        assert!(
            table.contains(&format!("`{name}`")),
            "{name} is served but docs/api.md does not list it"
        );
    }
    assert!(value("process_resident_memory_bytes") > 1e6);
    // Latency histograms: each operation by result, each store write.
    assert!(
        value(
            "warden_operation_duration_seconds_count{resource=\"web\",operation=\"start\",result=\"ok\"}"
        ) >= 2.0
    );
    assert!(
        value(
            "warden_operation_duration_seconds_count{resource=\"dummy\",operation=\"probe\",result=\"not running\"}"
        ) >= 1.0
    );
    assert!(
        metrics.contains("warden_operation_duration_seconds_bucket{resource=\"web\",operation=\"start\",result=\"ok\",le=\"+Inf\"}"),
        "{metrics}"
    );
    assert!(value("warden_store_write_duration_seconds_count{store=\"redb\"}") >= 1.0);
    assert_eq!(
        value(&format!(
            "warden_node_state{{node=\"{node}\",state=\"online\"}}"
        )),
        1.0
    );
    assert!(
        !metrics.contains("warden_cluster_lease_valid"),
        "one machine: no lease"
    );
    assert!(value("process_open_fds") > 3.0);
    assert!(value("process_max_fds") >= value("process_open_fds"));
    let started = value("process_start_time_seconds");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    assert!(
        now - started < 600.0 && now >= started - 2.0,
        "{started} vs {now}"
    );
    assert_eq!(
        web["fail_counts"]
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_u64),
        Some(1)
    );
    let failed = &v["failed_actions"][0];
    assert_eq!(
        (failed["resource"].as_str(), failed["rc"].as_i64()),
        (Some("web"), Some(7))
    );
    assert_eq!(failed["exit_reason"], "process killed by signal 9");
    let before = history(&config, "web");
    assert_eq!(count_ops(&before, "start_0"), 2);
    let (ok, text, _) = cli(&config, &["status"]);
    assert!(ok);
    assert!(
        text.contains("web_monitor_1000 on") && text.contains("'not running' (7): fail-count=1"),
        "{text}"
    );

    // kill -9 the daemon, start it again: nothing healthy restarts, no history is lost.
    let second = pid(&data);
    let dummy_starts = count_ops(&history(&config, "dummy"), "start_0");
    d.child.kill().expect("kill -9 the daemon");
    d.child.wait().expect("reap");
    drop(d);
    let d = start(&config, &[]);
    let v = wait_for(&config, "the restarted daemon to settle", |v| {
        settled_started(v)
            && history(&config, "web")
                .iter()
                .any(|h| h["op"] == "monitor_0" && h["rc"] == 0)
    });
    assert_eq!(pid(&data), second, "the process was adopted, not restarted");
    assert_eq!(
        count_ops(&history(&config, "dummy"), "start_0"),
        dummy_starts,
        "the OCF resource was not restarted"
    );
    let after = history(&config, "web");
    assert_eq!(
        &after[..before.len()],
        &before[..],
        "history survives a kill -9"
    );
    assert_eq!(count_ops(&after, "start_0"), 2);
    assert_eq!(
        resource(&v, "web")["fail_counts"]
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_u64),
        Some(1),
        "fail counts survive too"
    );

    // Mutations need the token; the CLI reads it from the data dir.
    let addr = std::fs::read_to_string(data.join("api.addr")).expect("api.addr");
    let (ok, _, err) = cli(&config, &["resource", "cleanup", "web", "--token", "wrong"]);
    assert!(
        !ok && err.contains("Authorization: Bearer"),
        "{err} ({addr})"
    );
    let (ok, out, err) = cli(&config, &["resource", "cleanup", "web"]);
    assert!(ok, "{err}");
    assert_eq!(out, "cleanup web: done\n");
    wait_for(&config, "the cleanup", |v| {
        settled_started(v)
            && resource(v, "web")["fail_counts"]
                .as_object()
                .is_some_and(|o| o.is_empty())
    });
    assert_eq!(
        pid(&data),
        second,
        "a cleanup re-probes and adopts; it does not restart"
    );

    // SIGTERM: resources stop in reverse order, the daemon exits 0.
    let mut d = d;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(d.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("sigterm");
    let status = d.child.wait().expect("wait");
    assert!(status.success(), "exit status {status:?}");
    // Gone, or a zombie waiting for init to reap it (it was adopted from the killed daemon).
    assert!(
        warden::exec::process::start_time(second).is_none(),
        "web was stopped"
    );
    assert!(
        !dir.path().join("dummy.state").exists(),
        "dummy was stopped"
    );
}

#[test]
fn leave_running_keeps_resources_on_sigterm_and_admin_commands_work() {
    let (_dir, config, data) = setup();
    let mut d = start(&config, &["--leave-running"]);
    wait_for(&config, "both resources started", settled_started);
    let (ok, _, err) = cli(&config, &["resource", "disable", "web"]);
    assert!(ok, "{err}");
    wait_for(&config, "web stopped", |v| {
        v["transition_running"] == false && resource(v, "web")["status"] == "web Stopped (disabled)"
    });
    let (ok, _, err) = cli(&config, &["resource", "enable", "web"]);
    assert!(ok, "{err}");
    wait_for(&config, "web started again", settled_started);
    let p = pid(&data);
    let (ok, _, err) = cli(&config, &["resource", "restart", "web"]);
    assert!(ok, "{err}");
    wait_for(&config, "web restarted", |v| {
        settled_started(v) && pid(&data) != p && pid(&data) != 0
    });
    let (ok, _, err) = cli(&config, &["resource", "move", "web", "nowhere"]);
    assert!(!ok && err.contains("unknown node \"nowhere\""), "{err}");
    let (ok, _, err) = cli(&config, &["node", "standby", "nowhere"]);
    assert!(!ok && err.contains("unknown node"), "{err}");

    let running = pid(&data);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(d.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("sigterm");
    assert!(d.child.wait().expect("wait").success());
    assert!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(running), None).is_ok(),
        "--leave-running left web running"
    );
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(running),
        nix::sys::signal::Signal::SIGKILL,
    );
}

#[test]
fn failure_timeout_expires_in_the_running_daemon_and_standby_empties_the_node() {
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("warden.toml");
    std::fs::write(
        &config,
        r#"[cluster]
name = "it"
data_dir = "data"
[api]
listen = "127.0.0.1:0"
[[resource]]
id = "web"
class = "process"
command = ["sleep", "1000"]
meta = { failure_timeout = "2s" }
ops = [{ name = "monitor", interval = "1s" }]
"#,
    )
    .expect("config");
    let data = dir.path().join("data");
    let log = dir.path().join("json.log");
    let mut d = Daemon {
        child: warden()
            .args(["run", "--log-format", "json", "--log-output"])
            .arg(&log)
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("warden run"),
    };
    let started = |v: &Value| {
        v["transition_running"] == false
            && resource(v, "web")["status"]
                .as_str()
                .is_some_and(|s| s.contains("Started"))
    };
    wait_for(&config, "web started", started);
    let p = std::fs::read_to_string(data.join("run/web.pid")).expect("pid");
    let p: i32 = p
        .split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .expect("pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(p),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill");
    let failed_at = Instant::now();
    wait_for(&config, "the failure recorded", |v| {
        started(v) && !v["failed_actions"].as_array().is_some_and(Vec::is_empty)
    });
    // Nothing happens in between; the loop wakes at the expiry by itself.
    let v = wait_for(&config, "the failure to expire", |v| {
        v["failed_actions"].as_array().is_some_and(Vec::is_empty)
    });
    assert!(
        failed_at.elapsed() >= Duration::from_millis(1500),
        "expired too early: {:?}",
        failed_at.elapsed()
    );
    assert!(
        resource(&v, "web")["fail_counts"]
            .as_object()
            .is_some_and(|o| o.is_empty())
    );

    // Standby (of the daemon's own node when none is named): the node runs nothing; online:
    // it runs again.
    let node = v["node"].as_str().expect("node").to_owned();
    let (ok, out, err) = cli(&config, &["node", "standby"]);
    assert!(ok, "{err}");
    assert_eq!(out, format!("standby {node}: done\n"));
    wait_for(&config, "web stopped by standby", |v| {
        v["transition_running"] == false && resource(v, "web")["status"] == "web Stopped"
    });
    let (ok, _, err) = cli(&config, &["node", "online", &node]);
    assert!(ok, "{err}");
    wait_for(&config, "web back", started);

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(d.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("sigterm");
    assert!(d.child.wait().expect("wait").success());
    // --log-format json: one JSON object per line, with level, fields and message.
    let text = std::fs::read_to_string(&log).expect("log");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON log line"))
        .collect();
    assert!(
        lines.iter().any(|l| l["level"] == "WARN"
            && l["fields"]["message"] == "process exited"
            && l["fields"]["resource"] == "web"),
        "{text}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"] == "warden stopped"),
        "{text}"
    );
}

#[test]
fn a_crash_loop_backs_off_instead_of_spinning() {
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("warden.toml");
    std::fs::write(
        &config,
        "[cluster]\nname = \"it\"\ndata_dir = \"data\"\n[api]\nlisten = \"127.0.0.1:0\"\n\
         [[resource]]\nid = \"crashy\"\nclass = \"process\"\ncommand = [\"sh\", \"-c\", \"exit 3\"]\n",
    )
    .expect("config");
    let _d = start(&config, &[]);
    // Give it three seconds: without backoff it would restart hundreds of times.
    wait_for(&config, "the daemon up", |_| true);
    std::thread::sleep(Duration::from_secs(3));
    let starts = count_ops(&history(&config, "crashy"), "start_0");
    assert!((2..=12).contains(&starts), "{starts} starts in 3 s");
    let v = status(&config).expect("status");
    let failed = &v["failed_actions"][0];
    assert_eq!(failed["exit_reason"], "process exited with 3");
}

/// `app` after `db` (a mandatory order, against file order), `solo` alone, and `looper`,
/// which dies 50 ms after each start. Returns (dir, config, data).
fn ordered_setup(looper: bool) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let config = dir.path().join("warden.toml");
    let mut text = String::from(
        "[cluster]\nname = \"it\"\ndata_dir = \"data\"\n[api]\nlisten = \"127.0.0.1:0\"\n",
    );
    for id in ["app", "db", "solo"] {
        text.push_str(&format!(
            "[[resource]]\nid = \"{id}\"\nclass = \"process\"\ncommand = [\"sleep\", \"1000\"]\n"
        ));
    }
    if looper {
        text.push_str(
            "[[resource]]\nid = \"looper\"\nclass = \"process\"\n\
             command = [\"sh\", \"-c\", \"sleep 0.05; exit 1\"]\n\
             meta = { crash_loop_delay_max = \"60s\" }\n",
        );
    }
    text.push_str("[[order]]\nfirst = \"db\"\nthen = \"app\"\n");
    std::fs::write(&config, text).expect("config");
    (dir, config, data)
}

fn all_started(ids: &'static [&'static str]) -> impl Fn(&Value) -> bool {
    move |v| {
        v["transition_running"] == false
            && ids.iter().all(|id| {
                resource(v, id)["status"]
                    .as_str()
                    .is_some_and(|s| s.contains("Started"))
            })
    }
}

/// The daemon's log from byte `from` on.
fn log_since(config: &Path, from: usize) -> String {
    let log = std::fs::read_to_string(config.with_file_name("daemon.log")).expect("log");
    log.get(from..).unwrap_or_default().to_owned()
}

fn log_len(config: &Path) -> usize {
    std::fs::metadata(config.with_file_name("daemon.log")).map_or(0, |m| m.len() as usize)
}

/// A POST to the daemon's API with its token: (status, JSON body).
fn api_post(data: &Path, path: &str) -> (u16, Value) {
    let token = std::fs::read_to_string(data.join("api.token")).expect("api.token");
    api_post_with(data, path, &token)
}

fn api_post_with(data: &Path, path: &str, token: &str) -> (u16, Value) {
    use std::io::{Read, Write};
    let addr = std::fs::read_to_string(data.join("api.addr")).expect("api.addr");
    let mut s = std::net::TcpStream::connect(addr.trim()).expect("connect");
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        addr.trim(),
        token.trim()
    )
    .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    let code = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split("\r\n\r\n").nth(1).unwrap_or_default();
    (code, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// Where each of `needles` first appears in `text`, in the order given.
fn positions(text: &str, needles: &[&str]) -> Vec<usize> {
    needles
        .iter()
        .map(|n| {
            text.find(n)
                .unwrap_or_else(|| panic!("{n} is not in the log:\n{text}"))
        })
        .collect()
}

#[test]
fn restart_cleanup_and_shutdown_keep_the_constraints() {
    let (_dir, config, data) = ordered_setup(false);
    let mut d = start(&config, &[]);
    const ALL: &[&str] = &["app", "db", "solo"];
    wait_for(&config, "all started", all_started(ALL));
    let (app, db, solo) = (
        pid_of(&data, "app"),
        pid_of(&data, "db"),
        pid_of(&data, "solo"),
    );

    // Restart of db: app (ordered after it) stops first and starts after it.
    let mark = log_len(&config);
    let (ok, out, err) = cli(&config, &["resource", "restart", "db"]);
    assert!(ok, "{err}");
    assert_eq!(out, "restart db: done\n");
    wait_for(&config, "the restart", |v| {
        all_started(ALL)(v) && pid_of(&data, "app") != app && pid_of(&data, "db") != db
    });
    let log = log_since(&config, mark);
    let p = positions(
        &log,
        &["app_stop_0", "db_stop_0", "db_start_0", "app_start_0"],
    );
    assert!(p.windows(2).all(|w| w[0] < w[1]), "order: {p:?}\n{log}");
    assert!(log.contains("Restart db ( "), "{log}");
    assert_eq!(pid_of(&data, "solo"), solo, "solo is not restarted");
    // A restart of what does not run is refused with the field it concerns.
    let (ok, _, err) = cli(&config, &["resource", "restart", "nope"]);
    assert!(!ok && err.contains("unknown resource \"nope\""), "{err}");
    // The field comes from the error's type: a resource named like a node is a resource.
    let (code, body) = api_post(&data, "/v1/resources/node-exporter/ban?node=vm");
    assert_eq!(code, 404, "{body}");
    assert_eq!(body["field"], "resource", "{body}");
    let (code, body) = api_post(&data, "/v1/resources/app/ban?node=resource-1");
    assert_eq!(
        (code, &body["field"]),
        (404, &Value::from("node")),
        "{body}"
    );
    let app = pid_of(&data, "app");
    let (code, body) = api_post(&data, "/v1/resources/app/restart?node=vm");
    assert_eq!(code, 200, "{body}");
    wait_for(&config, "app restarted", |v| {
        all_started(ALL)(v) && pid_of(&data, "app") != app
    });

    // Cleanup of a healthy db: probed again, nothing restarted.
    let (app, db) = (pid_of(&data, "app"), pid_of(&data, "db"));
    let mark = log_len(&config);
    let (ok, _, err) = cli(&config, &["resource", "cleanup", "db"]);
    assert!(ok, "{err}");
    wait_for(&config, "the cleanup's probe", |v| {
        all_started(ALL)(v) && log_since(&config, mark).contains("probe: already running")
    });
    std::thread::sleep(Duration::from_millis(300));
    let log = log_since(&config, mark);
    assert!(
        !log.contains("_stop_0"),
        "a cleanup stopped something:\n{log}"
    );
    assert_eq!((pid_of(&data, "app"), pid_of(&data, "db")), (app, db));

    // SIGTERM: the engine stops app before db (file order would be db first), then exits.
    let mark = log_len(&config);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(d.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("sigterm");
    let status = d.child.wait().expect("wait");
    assert!(status.success(), "exit status {status:?}");
    let log = log_since(&config, mark);
    let p = positions(&log, &["app_stop_0", "db_stop_0"]);
    assert!(p[0] < p[1], "app stops before db:\n{log}");
    assert!(log.contains("solo_stop_0"));
    for pid in [app, db, solo] {
        assert!(
            warden::exec::process::start_time(pid).is_none(),
            "{pid} stopped"
        );
    }
}

#[test]
fn shutdown_leaves_resources_running_when_asked_at_stop_time() {
    let (_dir, config, data) = ordered_setup(false);
    const ALL: &[&str] = &["app", "db", "solo"];
    let mut d = start(&config, &[]);
    wait_for(&config, "all started", all_started(ALL));
    let pids: Vec<i32> = ALL.iter().map(|id| pid_of(&data, id)).collect();
    let (ok, out, err) = cli(&config, &["shutdown", "--leave-running"]);
    assert!(ok, "{err}");
    assert_eq!(out, "shutting down; resources are left running\n");
    let status = d.child.wait().expect("wait");
    assert!(status.success(), "exit status {status:?}");
    for &pid in &pids {
        assert!(
            warden::exec::process::start_time(pid).is_some(),
            "{pid} left running"
        );
    }
    // A new daemon adopts them, and `warden shutdown` stops them.
    let mut d = start(&config, &[]);
    wait_for(&config, "adopted", all_started(ALL));
    let now: Vec<i32> = ALL.iter().map(|id| pid_of(&data, id)).collect();
    assert_eq!(now, pids, "adopted, not restarted");
    let (ok, out, err) = cli(&config, &["shutdown"]);
    assert!(ok, "{err}");
    assert_eq!(out, "shutting down; stopping resources first\n");
    let status = d.child.wait().expect("wait");
    assert!(status.success(), "exit status {status:?}");
    for &pid in &pids {
        assert!(
            warden::exec::process::start_time(pid).is_none(),
            "{pid} stopped"
        );
    }
}

#[test]
fn a_crash_loop_delays_only_its_own_resource() {
    let (_dir, config, data) = ordered_setup(true);
    let _d = start(&config, &[]);
    // Wait until looper's next start is at least 2 s away (its delay doubles per death).
    let v = wait_for(&config, "a long crash-loop delay", |v| {
        let until = resource(v, "looper")["status"]
            .as_str()
            .and_then(|s| s.split("start delayed until ").nth(1))
            .and_then(|s| s.split(": crash loop").next())
            .and_then(|t| warden::wire::parse_time(t).ok());
        let now = v["time"]
            .as_str()
            .and_then(|t| warden::wire::parse_time(t).ok());
        matches!((until, now), (Some(u), Some(n)) if u.since(n) >= Duration::from_secs(2))
            && all_started(&["app", "db", "solo"])(v)
    });
    let text = resource(&v, "looper")["status"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(text.ends_with(": crash loop)"), "{text}");
    // kill -9 solo while looper waits: solo is back long before looper's delay ends.
    let solo = pid_of(&data, "solo");
    let killed = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(solo),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill");
    wait_for(&config, "solo restarted", |v| {
        all_started(&["solo"])(v) && pid_of(&data, "solo") != solo && pid_of(&data, "solo") != 0
    });
    let took = killed.elapsed();
    let v = status(&config).expect("status");
    assert!(
        resource(&v, "looper")["status"]
            .as_str()
            .is_some_and(|s| s.contains("start delayed until")),
        "solo came back within looper's delay ({took:?}): {}",
        resource(&v, "looper")["status"]
    );
}

#[test]
fn upstream_health_through_the_daemon() {
    // A healthy HTTP peer (a thread answering 200) and one that refuses.
    let good = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let good_port = good.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for s in good.incoming() {
            let Ok(mut s) = s else { return };
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.0 200 OK\r\n\r\nok");
        }
    });
    let refused_port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("warden.toml");
    std::fs::write(
        &config,
        format!(
            "[cluster]\nname = \"it\"\ndata_dir = \"data\"\n[api]\nlisten = \"127.0.0.1:0\"\n\
             [[upstream]]\nname = \"api\"\nprimary = [\"127.0.0.1:{good_port}\"]\nbackup = [\"127.0.0.1:{refused_port}\"]\n\
             [upstream.check]\ntype = \"http\"\npath = \"/health\"\ninterval = \"50ms\"\ntimeout = \"500ms\"\nfall = 2\nrise = 2\nvalid_statuses = [200]\n"
        ),
    )
    .expect("config");
    let d = start(&config, &[]);
    let want = format!(
        "Upstream api\n    Primary Peers\n        127.0.0.1:{good_port} UP\n    Backup Peers\n        127.0.0.1:{refused_port} DOWN\n"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (ok, out, _) = cli(&config, &["upstream", "status"]);
        if ok && out == want {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "status page never became {want:?}; last {out:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (ok, out, err) = cli(&config, &["upstream", "status", "--json"]);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v[0]["version"], 1);
    assert_eq!(v[0]["peers"][1]["last_error"], "connection refused");
    let addr = std::fs::read_to_string(dir.path().join("data/api.addr")).expect("addr");
    let metrics = warden::client::Client {
        addr: addr.trim().parse().expect("addr"),
        token: None,
        token_problem: None,
        pin: None,
    }
    .get_text("/metrics")
    .expect("metrics");
    assert!(metrics.contains(&format!("warden_upstream_status_info{{name=\"api\",endpoint=\"127.0.0.1:{refused_port}\",status=\"DOWN\",role=\"backup\"}} 1")), "{metrics}");
    // Check latency by outcome.
    for (port, result) in [(good_port, "success"), (refused_port, "failure")] {
        assert!(
            metrics.contains(&format!("warden_check_duration_seconds_count{{upstream=\"api\",peer=\"127.0.0.1:{port}\",result=\"{result}\"}} ")),
            "{metrics}"
        );
    }
    // Peers at runtime, through the CLI (with the token from the data dir).
    let gone = format!("127.0.0.1:{refused_port}");
    let (ok, out, err) = cli(&config, &["upstream", "remove-peer", "api", &gone]);
    assert!(ok, "{err}");
    assert_eq!(out, format!("removed {gone} from api\n"));
    let (ok, _, err) = cli(
        &config,
        &[
            "upstream",
            "add-peer",
            "api",
            "127.0.0.1:1",
            "--token",
            "wrong",
        ],
    );
    assert!(!ok && err.contains("Bearer"), "{err}");
    let (ok, _, err) = cli(&config, &["upstream", "add-peer", "nope", "127.0.0.1:1"]);
    assert!(!ok && err.contains("unknown upstream \"nope\""), "{err}");
    let (ok, out, _) = cli(&config, &["upstream", "status"]);
    assert!(ok && !out.contains(&gone), "{out}");
    drop(d);
    let log = std::fs::read_to_string(config.with_file_name("daemon.log")).expect("log");
    assert!(
        log.contains(&format!(
            "peer 127.0.0.1:{refused_port} of upstream api is turned down after 2 failure(s)"
        )),
        "{log}"
    );
    assert!(log.contains("connection refused"), "{log}");
}

#[test]
fn a_hung_service_is_found_by_its_health_check_and_restarted() {
    assert!(
        Command::new("python3")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "python3 is needed (scripts/test.sh installs it)"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("warden.toml");
    std::fs::write(
        &config,
        format!(
            "[cluster]\nname = \"it\"\ndata_dir = \"data\"\n[api]\nlisten = \"127.0.0.1:0\"\n\
             [[resource]]\nid = \"web\"\nclass = \"process\"\n\
             command = [\"sh\", \"-c\", \"sleep 0.5; exec python3 -m http.server {port} --bind 127.0.0.1\"]\n\
             stop_timeout = \"500ms\"\n\
             monitor = {{ http = \"http://127.0.0.1:{port}/\", interval = \"100ms\", timeout = \"300ms\", fall = 2, rise = 1, valid_statuses = [200] }}\n"
        ),
    )
    .expect("config");
    let data = dir.path().join("data");
    let _d = start(&config, &[]);
    wait_for(&config, "web serving", |v| {
        v["transition_running"] == false
            && resource(v, "web")["status"]
                .as_str()
                .is_some_and(|s| s.starts_with("web Started"))
    });
    // The server takes half a second to listen: the checks refused meanwhile are not counted
    // (the start grace), and checking goes on until it passes.
    std::thread::sleep(Duration::from_millis(2500));
    let v = status(&config).expect("status");
    assert!(
        v["failed_actions"].as_array().is_some_and(Vec::is_empty),
        "killed while starting: {v}"
    );
    let log = std::fs::read_to_string(config.with_file_name("daemon.log")).expect("log");
    assert!(
        log.contains("health check failed while the service starts; not counted"),
        "{log}"
    );
    let first = std::fs::read_to_string(data.join("run/web.pid")).expect("pid");
    let first: i32 = first
        .split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .expect("pid");
    // Hung: alive, accepting, never answering.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first),
        nix::sys::signal::Signal::SIGSTOP,
    )
    .expect("stop");
    let v = wait_for(&config, "the hung server replaced", |v| {
        let p = std::fs::read_to_string(data.join("run/web.pid"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<i32>().ok());
        p.is_some_and(|p| p != first)
            && v["transition_running"] == false
            && !v["failed_actions"].as_array().is_some_and(Vec::is_empty)
    });
    let failed = &v["failed_actions"][0];
    assert_eq!(failed["rc"], 1);
    assert_eq!(failed["op"], "monitor_100");
    let reason = failed["exit_reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with(&format!(
            "health check of 127.0.0.1:{port} down after 2 failure(s): timeout"
        )),
        "{reason}"
    );
    // The new server answers again.
    wait_for(&config, "the new server healthy", |v| {
        resource(v, "web")["status"]
            .as_str()
            .is_some_and(|s| s.starts_with("web Started"))
    });
    let log = std::fs::read_to_string(config.with_file_name("daemon.log")).expect("log");
    assert!(
        log.contains(&format!(
            "health check of web (127.0.0.1:{port}) is turned down after 2 failure(s)"
        )),
        "{log}"
    );
    assert!(
        warden::exec::process::start_time(first).is_none(),
        "the hung process was killed"
    );
}

/// A config with one promotable resource; `body` is the rest of its `[[resource]]` table.
fn promotable_setup(body: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("warden.toml");
    std::fs::write(
        &config,
        format!(
            "[cluster]\nname = \"it\"\ndata_dir = \"data\"\n[api]\nlisten = \"127.0.0.1:0\"\n\
             [[resource]]\nid = \"db\"\npromotable = true\n{body}"
        ),
    )
    .expect("config");
    (dir, config)
}

fn db_status(v: &Value) -> String {
    resource(v, "db")["status"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn promoted_here(v: &Value) -> bool {
    v["transition_running"] == false
        && db_status(v) == format!("db Promoted [ {} ]", v["node"].as_str().unwrap_or_default())
}

#[test]
fn a_promotable_ocf_agent_sets_its_score_is_promoted_notified_and_recovered() {
    let (dir, config) = promotable_setup("");
    let state = dir.path().join("db.state");
    let notify_log = dir.path().join("notify.log");
    std::fs::write(
        &config,
        std::fs::read_to_string(&config).expect("config")
            + &format!(
                "class = \"ocf\"\nprovider = \"warden-test\"\ntype = \"Stateful\"\n\
                 params = {{ state = \"{}\", score = \"10\", notify_log = \"{}\" }}\n\
                 meta = {{ notify = true }}\n\
                 ops = [{{ name = \"monitor\", interval = \"1s\" }}, \
                 {{ name = \"monitor\", interval = \"700ms\", role = \"promoted\" }}]\n",
                state.display(),
                notify_log.display()
            ),
    )
    .expect("config");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ocf");
    let root = root.to_str().expect("utf-8 path");
    let _d = start(&config, &["--ocf-root", root]);
    // Started unpromoted; its agent sets score 10 through `warden promotion-score`; promoted.
    let v = wait_for(&config, "db promoted", promoted_here);
    let node = v["node"].as_str().expect("node").to_owned();
    assert_eq!(resource(&v, "db")["promotion_scores"][&node], "10");
    // Scripts read the state and the roles, not the sentence.
    assert_eq!(resource(&v, "db")["state"], "started");
    assert_eq!(
        resource(&v, "db")["instances"],
        serde_json::json!([{ "node": node, "role": "promoted", "failed": false }])
    );
    assert_eq!(
        std::fs::read_to_string(&state).expect("state"),
        "promoted\n"
    );
    let (ok, out, err) = cli(
        &config,
        &["promotion-score", "--resource", "db", "--node", &node],
    );
    assert!(ok, "{err}");
    assert_eq!(out, "10\n");
    let log = std::fs::read_to_string(&notify_log).expect("notifications");
    assert!(
        log.contains(&format!(
            "pre-promote start=[] promote=[{node}] promoted=[]"
        )),
        "{log}"
    );
    assert!(log.contains("post-promote"), "{log}");
    assert!(log.contains("post-start"), "{log}");

    // The promoted copy fails (its promoted monitor says rc 9): demoted, stopped, started and
    // promoted again, with the failure counted.
    std::fs::write(&state, "failed\n").expect("break it");
    let v = wait_for(&config, "db recovered and promoted again", |v| {
        promoted_here(v) && resource(v, "db")["fail_counts"][&node] == 1
    });
    let failed = &v["failed_actions"][0];
    assert_eq!(failed["op"], "monitor_700");
    assert_eq!(failed["rc"], 9);
    let h = history(&config, "db");
    let ops: Vec<&str> = h.iter().filter_map(|e| e["op"].as_str()).collect();
    let after = ops
        .iter()
        .position(|o| *o == "monitor_700")
        .expect("the failed monitor is in the history");
    let tail: Vec<&str> = ops[after..]
        .iter()
        .copied()
        .filter(|o| !o.starts_with("notify") && !o.starts_with("monitor"))
        .collect();
    assert_eq!(
        tail[..4],
        ["demote_0", "stop_0", "start_0", "promote_0"],
        "{ops:?}"
    );

    // Disabled: demoted, then stopped; its agent removed its score on stop.
    let (ok, _, err) = cli(&config, &["resource", "disable", "db"]);
    assert!(ok, "{err}");
    let v = wait_for(&config, "db stopped", |v| {
        v["transition_running"] == false && db_status(v).starts_with("db Stopped")
    });
    assert!(!state.exists());
    assert!(
        resource(&v, "db")["promotion_scores"]
            .as_object()
            .is_some_and(|m| m.is_empty())
    );
}

#[test]
fn a_promotable_process_runs_its_promote_command_and_keeps_its_role_across_a_daemon_restart() {
    let (dir, config) = promotable_setup("");
    let role = dir.path().join("role");
    std::fs::write(
        &config,
        std::fs::read_to_string(&config).expect("config")
            + &format!(
                "class = \"process\"\ncommand = [\"sleep\", \"1000\"]\nstop_timeout = \"2s\"\n\
                 promote = [\"sh\", \"-c\", \"echo promoted $WARDEN_RESOURCE > {role}; echo $WARDEN_TOKEN $WARDEN_NODE > {role}.env\"]\n\
                 demote = [\"sh\", \"-c\", \"echo unpromoted > {role}\"]\n\
                 meta = {{ promotion_score = 5 }}\n\
                 ops = [{{ name = \"monitor\", interval = \"1s\" }}, \
                 {{ name = \"monitor\", interval = \"700ms\", role = \"promoted\" }}]\n",
                role = role.display()
            ),
    )
    .expect("config");
    let data = dir.path().join("data");
    let pid_of = || {
        std::fs::read_to_string(data.join("run/db.pid"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<i32>().ok())
            .unwrap_or(0)
    };
    let mut d = start(&config, &[]);
    wait_for(&config, "db promoted", promoted_here);
    assert_eq!(
        std::fs::read_to_string(&role).expect("role"),
        "promoted db\n"
    );
    let first = pid_of();

    // The command holds a token good for its own resource's promotion score only, never the
    // daemon's (it may run as an unprivileged user).
    let env = std::fs::read_to_string(role.with_extension("env")).expect("env");
    let (token, node) = env.trim().split_once(' ').expect("token and node");
    let admin = std::fs::read_to_string(data.join("api.token")).expect("api.token");
    assert!(
        token.starts_with("resource.") && token != admin.trim(),
        "{token}"
    );
    let score = format!("/v1/resources/db/promotion-score?node={node}&score=7");
    assert_eq!(api_post_with(&data, &score, token).0, 200);
    let other = format!("/v1/resources/web/promotion-score?node={node}&score=7");
    assert_eq!(api_post_with(&data, &other, token).0, 401);
    assert_eq!(
        api_post_with(&data, "/v1/resources/db/disable", token).0,
        401
    );
    assert_eq!(api_post_with(&data, "/v1/shutdown", token).0, 401);
    // Unknown routes and methods answer JSON errors too.
    let (code, body) = api_post(&data, "/v1/nothing-here");
    assert_eq!(code, 404);
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("/v1/nothing-here")),
        "{body}"
    );
    assert_eq!(body["field"], "path");
    let (code, body) = api_post(&data, "/v1/status");
    assert_eq!(code, 405);
    assert_eq!(body["field"], "method", "{body}");

    // The daemon dies; the process lives on and is adopted promoted, without another promote.
    d.child.kill().expect("kill daemon");
    d.child.wait().expect("reaped");
    std::fs::write(&role, "untouched\n").expect("role");
    let _d = start(&config, &[]);
    wait_for(&config, "db adopted, still promoted", promoted_here);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(pid_of(), first, "the process was adopted, not restarted");
    assert_eq!(std::fs::read_to_string(&role).expect("role"), "untouched\n");

    // The process is killed: restarted and promoted again.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill");
    let v = wait_for(&config, "db restarted and promoted", |v| {
        promoted_here(v) && pid_of() != first && pid_of() != 0
    });
    // Noticed at once, as the exit of the process (adopted, so watched through a pidfd),
    // against the promoted copy's monitor; the demote of a dead process has nothing to do.
    let failed = v["failed_actions"].as_array().cloned().unwrap_or_default();
    assert_eq!(failed.len(), 1, "{v}");
    assert_eq!(failed[0]["op"], "monitor_700", "{v}");
    assert_eq!(failed[0]["exit_reason"], "process exited", "{v}");
    assert_eq!(
        std::fs::read_to_string(&role).expect("role"),
        "promoted db\n"
    );

    // Disable: the demote command runs before the stop.
    let (ok, _, err) = cli(&config, &["resource", "disable", "db"]);
    assert!(ok, "{err}");
    // The audit line names the command as the CLI says it.
    let log = std::fs::read_to_string(config.with_file_name("daemon.log")).expect("log");
    assert!(log.contains("command=disable db"), "{log}");
    wait_for(&config, "db stopped", |v| {
        v["transition_running"] == false && db_status(v).starts_with("db Stopped")
    });
    assert_eq!(
        std::fs::read_to_string(&role).expect("role"),
        "unpromoted\n"
    );
}

#[test]
fn an_upstream_follows_the_promoted_copy_of_a_resource() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let (dir, config) = promotable_setup("");
    std::fs::write(
        &config,
        std::fs::read_to_string(&config)
            .expect("config")
            .replace("[api]", "[[node]]\nname = \"n1\"\n[api]")
            + &format!(
                "class = \"process\"\ncommand = [\"python3\", \"-m\", \"http.server\", \"{port}\", \"--bind\", \"127.0.0.1\"]\n\
                 stop_timeout = \"2s\"\nmeta = {{ promotion_score = 5 }}\n\
                 ops = [{{ name = \"monitor\", interval = \"1s\" }}, {{ name = \"monitor\", interval = \"700ms\", role = \"promoted\" }}]\n\
                 [[upstream]]\nname = \"front\"\nfrom_resource = \"db\"\nnodes = {{ n1 = \"127.0.0.1:{port}\" }}\n\
                 check = {{ type = \"tcp\", interval = \"100ms\", fall = 1, rise = 1 }}\n\
                 [[listener]]\nname = \"web\"\nlisten = \"127.0.0.1:0\"\nupstream = \"front\"\nprotocol = \"http\"\n"
            ),
    )
    .expect("config");
    let _d = start(&config, &["--node", "n1"]);
    let peer_role = || -> Option<String> {
        let (ok, out, _) = cli(&config, &["upstream", "status", "--json"]);
        if !ok {
            return None;
        }
        let v: Value = serde_json::from_str(&out).ok()?;
        let p = &v[0]["peers"][0];
        Some(format!("{} {}", p["role"].as_str()?, p["state"].as_str()?))
    };
    wait_for(&config, "db promoted", |v| {
        v["transition_running"] == false && db_status(v) == "db Promoted [ n1 ]"
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    // Primary, and up (the server listens a moment after its start).
    while peer_role().as_deref() != Some("primary UP") {
        assert!(
            Instant::now() < deadline,
            "the peer never became the primary"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Traffic through the listener reaches it.
    let addr = std::fs::read_to_string(dir.path().join("data/listener-web.addr")).expect("addr");
    let mut s = std::net::TcpStream::connect(addr.trim()).expect("connect");
    use std::io::{Read, Write};
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("write");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("read");
    assert!(
        resp.starts_with("HTTP/1.1 200") || resp.starts_with("HTTP/1.0 200"),
        "{resp}"
    );
    // Disabled: it is promoted nowhere, so its peer is a backup again.
    let (ok, _, err) = cli(&config, &["resource", "disable", "db"]);
    assert!(ok, "{err}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !peer_role().is_some_and(|r| r.starts_with("backup")) {
        assert!(Instant::now() < deadline, "the peer never became a backup");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A line backend process (`tests/fixtures/backend.py tcp NAME 0`): answers `NAME:line`.
struct LineBackend {
    child: Child,
    port: u16,
}

impl LineBackend {
    fn start(name: &str) -> LineBackend {
        use std::io::BufRead;
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/backend.py");
        let mut child = Command::new("python3")
            .args([script, "tcp", name, "0"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the test backends");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("ready");
        let port = line
            .trim()
            .strip_prefix("ready ")
            .and_then(|p| p.parse().ok())
            .expect("port");
        LineBackend { child, port }
    }
}

impl Drop for LineBackend {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A line sent over an open connection, and its answer.
fn ask_line(s: &mut std::io::BufReader<std::net::TcpStream>, line: &str) -> String {
    use std::io::{BufRead, Write};
    s.get_mut()
        .write_all(format!("{line}\n").as_bytes())
        .expect("write");
    let mut answer = String::new();
    s.read_line(&mut answer).expect("read");
    answer.trim().to_owned()
}

fn connect_listener(data: &Path, name: &str) -> std::io::BufReader<std::net::TcpStream> {
    let addr = std::fs::read_to_string(data.join(format!("listener-{name}.addr"))).expect("addr");
    let s = std::net::TcpStream::connect(addr.trim()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    std::io::BufReader::new(s)
}

#[test]
fn reload_changes_peers_and_listeners_without_dropping_a_connection() {
    let (a, b) = (LineBackend::start("A"), LineBackend::start("B"));
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("warden.toml");
    let data = dir.path().join("data");
    let base = "[cluster]\nname = \"it\"\ndata_dir = \"data\"\n[api]\nlisten = \"127.0.0.1:0\"\n";
    let check = "check = { type = \"tcp\", interval = \"100ms\", fall = 1, rise = 1 }\n";
    std::fs::write(
        &config,
        format!(
            "{base}[[upstream]]\nname = \"svc\"\nprimary = [\"127.0.0.1:{}\"]\n{check}\
             [[listener]]\nname = \"front\"\nlisten = \"127.0.0.1:0\"\nupstream = \"svc\"\n",
            a.port
        ),
    )
    .expect("config");
    let _d = start(&config, &[]);
    wait_for(&config, "the daemon", |v| v["transition_running"] == false);
    let mut session = connect_listener(&data, "front");
    assert_eq!(ask_line(&mut session, "one"), "A:one");

    // B becomes the primary and A its backup; front changes its balance; a second listener.
    std::fs::write(
        &config,
        format!(
            "{base}[[upstream]]\nname = \"svc\"\nprimary = [\"127.0.0.1:{b}\"]\nbackup = [\"127.0.0.1:{a}\"]\n{check}\
             [[listener]]\nname = \"front\"\nlisten = \"127.0.0.1:0\"\nupstream = \"svc\"\nbalance = \"round-robin\"\n\
             [[listener]]\nname = \"second\"\nlisten = \"127.0.0.1:0\"\nupstream = \"svc\"\n",
            a = a.port,
            b = b.port
        ),
    )
    .expect("config");
    let (ok, out, err) = cli(&config, &["reload"]);
    assert!(ok, "{err}");
    for want in [
        format!("upstream svc: peer 127.0.0.1:{} added", b.port),
        format!("upstream svc: primaries are now 127.0.0.1:{}", b.port),
        "listener front: updated".to_owned(),
        "listener second: started".to_owned(),
    ] {
        assert!(out.contains(&want), "{want}\n{out}");
    }
    // The session opened before the reload goes on, to A.
    assert_eq!(ask_line(&mut session, "two"), "A:two");
    // New connections go to the new primary, through both listeners (B is UP after one check).
    let deadline = Instant::now() + Duration::from_secs(20);
    while ask_line(&mut connect_listener(&data, "front"), "x") != "B:x" {
        assert!(Instant::now() < deadline, "front never reached B");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(ask_line(&mut connect_listener(&data, "second"), "y"), "B:y");

    // A file with an error changes nothing and says where the error is.
    let good = std::fs::read_to_string(&config).expect("config");
    std::fs::write(&config, good.replace("round-robin", "round-robbin")).expect("config");
    let (ok, _, err) = cli(&config, &["reload"]);
    assert!(!ok);
    assert!(
        err.contains("warden.toml:15:11: error: unknown balance"),
        "{err}"
    );
    assert_eq!(ask_line(&mut session, "three"), "A:three");

    // The second listener removed: stopped, its address file gone.
    let second = std::fs::read_to_string(data.join("listener-second.addr")).expect("addr");
    let cut = good
        .find("[[listener]]\nname = \"second\"")
        .expect("second listener");
    std::fs::write(&config, &good[..cut]).expect("config");
    let (ok, out, err) = cli(&config, &["reload"]);
    assert!(ok, "{err}");
    assert!(out.contains("listener second: stopped"), "{out}");
    assert!(!data.join("listener-second.addr").exists());
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(second.trim()).is_ok() {
        assert!(Instant::now() < deadline, "second still accepts");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(ask_line(&mut session, "four"), "A:four");

    // /metrics: front's counters went on across its reload; second's went with it.
    let addr = std::fs::read_to_string(data.join("api.addr")).expect("addr");
    let metrics = warden::client::Client {
        addr: addr.trim().parse().expect("addr"),
        token: None,
        token_problem: None,
        pin: None,
    }
    .get_text("/metrics")
    .expect("metrics");
    let value = |series: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{metrics}"))
    };
    let sessions = value("warden_listener_sessions_total{listener=\"front\"}");
    assert!(
        sessions >= 2,
        "the session before the reload and at least one after: {sessions}"
    );
    let on = |port: u16| {
        value(&format!(
            "warden_listener_peer_requests_total{{listener=\"front\",peer=\"127.0.0.1:{port}\"}}"
        ))
    };
    assert!(on(a.port) >= 1 && on(b.port) >= 1, "{metrics}");
    assert!(value("warden_listener_sessions{listener=\"front\"}") >= 1);
    assert!(!metrics.contains("listener=\"second\""), "{metrics}");
}

/// The command line of a process, as `ps` shows it.
fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .replace('\0', " ")
                .trim()
                .to_owned()
        })
        .unwrap_or_default()
}

/// A configuration with the given resource blocks (and the usual header).
fn write_resources(config: &Path, blocks: &str) {
    std::fs::write(
        config,
        format!(
            "[cluster]\nname = \"it\"\ndata_dir = \"data\"\n[api]\nlisten = \"127.0.0.1:0\"\n{blocks}"
        ),
    )
    .expect("config");
}

fn process_block(id: &str, seconds: u32) -> String {
    format!(
        "[[resource]]\nid = \"{id}\"\nclass = \"process\"\ncommand = [\"sleep\", \"{seconds}\"]\n"
    )
}

fn dummy_block(state: &Path) -> String {
    format!(
        "[[resource]]\nid = \"dummy\"\nclass = \"ocf\"\ntype = \"Dummy\"\nparams = {{ state = \"{}\" }}\n",
        state.display()
    )
}

#[test]
fn a_reload_that_changes_a_definition_cleans_up_the_failures_of_the_old_one() {
    // Dummy's state file in a directory that does not exist: its start fails (fail count
    // INFINITY on the only node), and it stays stopped. The operator fixes the parameter and
    // reloads: the failures were the old definition's, so they no longer count (as Pacemaker
    // clears the fail count of what failed with other parameters) and it starts, without a
    // cleanup by hand.
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("warden.toml");
    let bad = dir.path().join("missing").join("d.state");
    let good = dir.path().join("d.state");
    write_resources(&config, &dummy_block(&bad));
    let _d = start(&config, &[]);
    wait_for(&config, "the start failed", |v| {
        v["transition_running"] == false
            && resource(v, "dummy")["state"] == "stopped"
            && resource(v, "dummy")["fail_counts"]
                .as_object()
                .is_some_and(|m| !m.is_empty())
    });
    write_resources(&config, &dummy_block(&good));
    let (ok, out, err) = cli(&config, &["reload"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("resource dummy: definition changed")
            && out.contains("were with the old definition: cleaned up"),
        "{out}"
    );
    wait_for(
        &config,
        "started with the new definition",
        all_started(&["dummy"]),
    );
    assert!(good.exists());
}

/// A small OCF agent (start, stop, monitor on a state file; its monitor answers
/// `$OCF_RESKEY_monitor_rc` when set) as provider `t`, type `Agent`, under `root`.
fn write_agent(root: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = root.join("resource.d/t/Agent");
    std::fs::create_dir_all(path.parent().expect("dir")).expect("dir");
    std::fs::write(
        &path,
        "#!/bin/sh
state=\"$OCF_RESKEY_state\"
case \"$1\" in
         meta-data) echo '<?xml version=\"1.0\"?><resource-agent name=\"Agent\"><parameters>         <parameter name=\"state\"><content type=\"string\"/></parameter>         <parameter name=\"monitor_rc\"><content type=\"string\"/></parameter></parameters>         <actions><action name=\"start\" timeout=\"20s\"/><action name=\"stop\" timeout=\"20s\"/>         <action name=\"monitor\" timeout=\"20s\" interval=\"10s\"/></actions></resource-agent>'; exit 0 ;;
         start) touch \"$state\"; exit 0 ;;
         stop) rm -f \"$state\"; exit 0 ;;
         monitor) [ -f \"$state\" ] || exit 7; exit \"${OCF_RESKEY_monitor_rc:-0}\" ;;
         *) exit 3 ;;
esac
",
    )
    .expect("agent");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

#[test]
fn on_fail_ignore_ignores_what_an_agent_says_but_not_that_it_is_gone() {
    // The monitor's `on_fail = "ignore"` keeps an agent's own rc 5 ("not installed") from
    // doing anything; but when the executor finds no agent at all (removed under a running
    // resource), that is not ignored: the resource fails and is stopped, whose stop cannot
    // run either, so it is blocked on this node (no fencing), as Pacemaker handles its
    // executor's "not installed". Before, the missing agent was ignored like the agent's rc 5
    // and the resource showed Started with nothing able to manage it.
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("warden.toml");
    let root = dir.path().join("ocf");
    let agent = write_agent(&root);
    let state = dir.path().join("r.state");
    write_resources(
        &config,
        &format!(
            "[[resource]]\nid = \"r\"\nclass = \"ocf\"\nprovider = \"t\"\ntype = \"Agent\"\n\
             params = {{ state = \"{}\", monitor_rc = \"5\" }}\n\
             ops = [{{ name = \"monitor\", interval = \"200ms\", on_fail = \"ignore\" }}]\n",
            state.display()
        ),
    );
    let _d = start(&config, &["--ocf-root", root.to_str().expect("utf-8 path")]);
    wait_for(&config, "its own rc 5 ignored", |v| {
        v["transition_running"] == false
            && resource(v, "r")["status"]
                .as_str()
                .is_some_and(|s| s.contains("Started") && s.contains("failure ignored"))
    });
    std::fs::remove_file(&agent).expect("remove the agent");
    let v = wait_for(&config, "the missing agent handled", |v| {
        v["transition_running"] == false
            && resource(v, "r")["status"]
                .as_str()
                .is_some_and(|s| s.contains("blocked"))
    });
    let h = history(&config, "r");
    assert!(
        h.iter().any(|e| e["op"] == "stop_0" && e["rc"] == 5),
        "a stop was tried: {h:?}\n{v}"
    );
    assert!(
        resource(&v, "r")["status"]
            .as_str()
            .is_some_and(|s| s.starts_with("r FAILED")),
        "{v}"
    );
}

#[test]
fn reload_applies_resources_live_and_a_restart_applies_what_changed_meanwhile() {
    assert!(
        Path::new("/usr/lib/ocf/resource.d/heartbeat/Dummy").exists(),
        "install Debian's resource-agents (scripts/test.sh does)"
    );
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("warden.toml");
    let data = dir.path().join("data");
    let (state1, state2) = (dir.path().join("d1.state"), dir.path().join("d2.state"));
    write_resources(
        &config,
        &format!("{}{}", process_block("web", 1000), dummy_block(&state1)),
    );
    let mut d = start(&config, &[]);
    wait_for(&config, "started", all_started(&["web", "dummy"]));
    let web = pid_of(&data, "web");
    assert!(state1.exists());

    // Reload: web's command changes, dummy's parameter changes, extra is new.
    write_resources(
        &config,
        &format!(
            "{}{}{}",
            process_block("web", 1001),
            dummy_block(&state2),
            process_block("extra", 1000)
        ),
    );
    let (ok, out, err) = cli(&config, &["reload"]);
    assert!(ok, "{err}");
    for want in [
        "resource web: definition changed: it restarts where it runs",
        "resource dummy: definition changed: it restarts where it runs",
        "resource extra: new",
    ] {
        assert!(out.contains(want), "{want}\n{out}");
    }
    wait_for(&config, "the new definitions", |v| {
        all_started(&["web", "dummy", "extra"])(v) && pid_of(&data, "web") != web
    });
    assert_eq!(cmdline(pid_of(&data, "web")), "sleep 1001");
    assert!(
        warden::exec::process::start_time(web).is_none(),
        "old web stopped"
    );
    // Dummy was stopped with the parameters it was started with, then started with the new.
    assert!(!state1.exists(), "the old instance was stopped");
    assert!(state2.exists(), "the new instance runs");

    // Reload: extra is gone from the file: stopped, then gone from the status.
    let extra = pid_of(&data, "extra");
    write_resources(
        &config,
        &format!("{}{}", process_block("web", 1001), dummy_block(&state2)),
    );
    let (ok, out, err) = cli(&config, &["reload"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("resource extra: gone from the file: it is stopped"),
        "{out}"
    );
    wait_for(&config, "extra stopped and forgotten", |v| {
        v["transition_running"] == false
            && v["resources"]
                .as_array()
                .is_some_and(|a| a.iter().all(|r| r["id"] != "extra"))
    });
    assert!(
        warden::exec::process::start_time(extra).is_none(),
        "extra stopped"
    );

    // A file with an error changes nothing.
    write_resources(
        &config,
        &process_block("web", 5).replace("sleep", "sleep\", 5, \""),
    );
    let (ok, _, _) = cli(&config, &["reload"]);
    assert!(!ok, "a bad file is refused");
    let web = pid_of(&data, "web");

    // With the daemon stopped (leaving resources running), the file changes: the next
    // daemon restarts web with its new command and stops gone, which it only knows from
    // its store.
    write_resources(
        &config,
        &format!(
            "{}{}{}",
            process_block("web", 1001),
            dummy_block(&state2),
            process_block("gone", 1000)
        ),
    );
    let (ok, _, err) = cli(&config, &["reload"]);
    assert!(ok, "{err}");
    wait_for(
        &config,
        "gone started",
        all_started(&["web", "dummy", "gone"]),
    );
    let gone = pid_of(&data, "gone");
    let (ok, _, err) = cli(&config, &["shutdown", "--leave-running"]);
    assert!(ok, "{err}");
    assert!(d.child.wait().expect("wait").success());
    write_resources(
        &config,
        &format!("{}{}", process_block("web", 1002), dummy_block(&state2)),
    );
    let _d = start(&config, &[]);
    wait_for(&config, "the changes applied at start", |v| {
        all_started(&["web", "dummy"])(v)
            && pid_of(&data, "web") != web
            && v["resources"]
                .as_array()
                .is_some_and(|a| a.iter().all(|r| r["id"] != "gone"))
    });
    assert_eq!(cmdline(pid_of(&data, "web")), "sleep 1002");
    assert!(
        warden::exec::process::start_time(gone).is_none(),
        "the orphan was stopped"
    );
    assert!(
        warden::exec::process::start_time(web).is_none(),
        "old web stopped"
    );
}

/// One request on a new connection: a line and its answer; Err says what went wrong.
fn try_line(addr: std::net::SocketAddr, line: &str) -> Result<String, String> {
    use std::io::{BufRead, Write};
    let s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let mut r = std::io::BufReader::new(s);
    r.get_mut()
        .write_all(format!("{line}\n").as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let mut answer = String::new();
    r.read_line(&mut answer).map_err(|e| format!("read: {e}"))?;
    if answer.is_empty() {
        return Err("closed without an answer".into());
    }
    Ok(answer.trim().to_owned())
}

#[test]
fn a_new_daemon_takes_over_the_listeners_without_refusing_a_connection() {
    let backend = LineBackend::start("A");
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("warden.toml");
    let data = dir.path().join("data");
    std::fs::write(
        &config,
        format!(
            "[cluster]\nname = \"it\"\ndata_dir = \"data\"\n[api]\nlisten = \"127.0.0.1:0\"\n\
             {}[[upstream]]\nname = \"svc\"\nprimary = [\"127.0.0.1:{}\"]\n\
             check = {{ type = \"tcp\", interval = \"100ms\", fall = 1, rise = 1 }}\n\
             [[listener]]\nname = \"front\"\nlisten = \"127.0.0.1:0\"\nupstream = \"svc\"\n",
            process_block("web", 1000),
            backend.port
        ),
    )
    .expect("config");
    let mut old = start(&config, &[]);
    wait_for(&config, "web started", all_started(&["web"]));
    let web = pid_of(&data, "web");
    let addr: std::net::SocketAddr = std::fs::read_to_string(data.join("listener-front.addr"))
        .expect("listener address")
        .trim()
        .parse()
        .expect("address");
    assert_eq!(try_line(addr, "first"), Ok("A:first".into()));

    // A client every 5 ms, each request on a new connection, across the restart.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let client = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let (mut ok, mut failed) = (0u32, Vec::new());
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                i += 1;
                match try_line(addr, &format!("r{i}")) {
                    Ok(a) if a == format!("A:r{i}") => ok += 1,
                    other => failed.push(format!("r{i}: {other:?}")),
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            (ok, failed)
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    let (ok, out, err) = cli(&config, &["shutdown", "--leave-running"]);
    assert!(ok, "{err}");
    assert_eq!(out, "shutting down; resources are left running\n");
    // The new daemon (the same binary here; a newer one in an upgrade) starts at once.
    let log = config.with_file_name("daemon.log");
    let _new = warden()
        .args(["run", "--config"])
        .arg(&config)
        .args(["--log-output"])
        .arg(config.with_file_name("new.log"))
        .args(["--log-level", "debug"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(|child| Daemon { child })
        .expect("start the new daemon");
    let status = old.child.wait().expect("the old daemon exits");
    assert!(status.success(), "{status:?}");
    wait_for(&config, "the new daemon adopts web", all_started(&["web"]));
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (served, failed) = client.join().expect("client");
    let old_log = std::fs::read_to_string(&log).unwrap_or_default();
    let new_log = std::fs::read_to_string(config.with_file_name("new.log")).unwrap_or_default();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {:?}\nold:\n{old_log}\nnew:\n{new_log}",
        failed.len(),
        served as usize + failed.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(served > 50, "only {served} requests");
    assert!(new_log.contains("listening socket taken over"), "{new_log}");
    assert!(
        old_log.contains("a successor accepts on the listening sockets"),
        "{old_log}"
    );
    assert_eq!(pid_of(&data, "web"), web, "web was adopted, not restarted");
    assert_eq!(try_line(addr, "last"), Ok("A:last".into()));
}

#[test]
fn reload_adds_removes_and_rechecks_upstreams() {
    let (a, b) = (LineBackend::start("A"), LineBackend::start("B"));
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("warden.toml");
    let data = dir.path().join("data");
    let base = "[cluster]\nname = \"it\"\ndata_dir = \"data\"\n[api]\nlisten = \"127.0.0.1:0\"\n";
    let svc = |check: &str| {
        format!(
            "[[upstream]]\nname = \"svc\"\nprimary = [\"127.0.0.1:{}\"]\n\
             check = {{ type = \"{check}\", interval = \"100ms\", fall = 1, rise = 1 }}\n\
             [[listener]]\nname = \"front\"\nlisten = \"127.0.0.1:0\"\nupstream = \"svc\"\n",
            a.port
        )
    };
    let svc2 = format!(
        "[[upstream]]\nname = \"svc2\"\nprimary = [\"127.0.0.1:{}\"]\n\
         check = {{ type = \"tcp\", interval = \"100ms\", fall = 1, rise = 1 }}\n\
         [[listener]]\nname = \"second\"\nlisten = \"127.0.0.1:0\"\nupstream = \"svc2\"\n",
        b.port
    );
    std::fs::write(&config, format!("{base}{}", svc("tcp"))).expect("config");
    let _d = start(&config, &[]);
    wait_for(&config, "the daemon", |v| v["transition_running"] == false);
    let upstreams = || -> Value {
        let (ok, out, err) = cli(&config, &["upstream", "status", "--json"]);
        assert!(ok, "{err}");
        serde_json::from_str(&out).expect("json")
    };
    let state_of = |v: &Value, name: &str| -> Option<String> {
        v.as_array()?.iter().find(|u| u["name"] == name)?["peers"][0]["state"]
            .as_str()
            .map(str::to_owned)
    };
    let wait_state = |name: &str, want: Option<&str>| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let v = upstreams();
            if state_of(&v, name).as_deref() == want {
                return;
            }
            assert!(Instant::now() < deadline, "{name} never {want:?}: {v}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_state("svc", Some("UP"));

    // A new upstream and a listener on it: checked and served at once.
    std::fs::write(&config, format!("{base}{}{svc2}", svc("tcp"))).expect("config");
    let (ok, out, err) = cli(&config, &["reload"]);
    assert!(ok, "{err}");
    assert!(out.contains("upstream svc2: new"), "{out}");
    assert!(out.contains("listener second: started"), "{out}");
    wait_state("svc2", Some("UP"));
    assert_eq!(ask_line(&mut connect_listener(&data, "second"), "x"), "B:x");

    // A changed check takes effect: an HTTP check that wants a 200 fails on a line server (its
    // reply line is not an HTTP status line), so A goes down.
    std::fs::write(
        &config,
        format!(
            "{base}{}{svc2}",
            svc("http\", valid_statuses = [200], path = \"/")
        ),
    )
    .expect("config");
    let (ok, out, err) = cli(&config, &["reload"]);
    assert!(ok, "{err}");
    assert!(out.contains("upstream svc: check updated"), "{out}");
    wait_state("svc", Some("DOWN"));

    // A removed upstream stops being checked and leaves the status.
    std::fs::write(&config, format!("{base}{}", svc("tcp"))).expect("config");
    let (ok, out, err) = cli(&config, &["reload"]);
    assert!(ok, "{err}");
    assert!(out.contains("upstream svc2: removed"), "{out}");
    assert!(out.contains("listener second: stopped"), "{out}");
    wait_state("svc2", None);
    wait_state("svc", Some("UP"));
    let (ok, page, _) = cli(&config, &["upstream", "status"]);
    assert!(ok && !page.contains("svc2"), "{page}");
}

#[test]
fn a_reloadable_parameter_is_reloaded_and_another_one_restarts() {
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("warden.toml");
    let state = dir.path().join("r.state");
    let log = dir.path().join("r.state.log");
    let write = |params: &str| {
        write_resources(
            &config,
            &format!(
                "[[resource]]\nid = \"r\"\nclass = \"ocf\"\nprovider = \"warden-test\"\n\
                 type = \"Reloadable\"\nparams = {{ {params} }}\n{}\
                 [[order]]\nfirst = \"r\"\nthen = \"after\"\n",
                process_block("after", 1000)
            ),
        )
    };
    let s = |p: &Path| p.display().to_string();
    write(&format!("state = \"{}\", level = \"1\"", s(&state)));
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ocf");
    let _d = start(&config, &["--ocf-root", root.to_str().expect("utf-8 path")]);
    let data = dir.path().join("data");
    wait_for(&config, "started", all_started(&["r", "after"]));
    let after = pid_of(&data, "after");
    let ops = || std::fs::read_to_string(&log).unwrap_or_default();
    let starts = || ops().lines().filter(|l| l.starts_with("start")).count();
    assert_eq!(starts(), 1);

    // Only `level` (reloadable) changes: reload-agent, no stop, nothing after it restarts.
    write(&format!("state = \"{}\", level = \"2\"", s(&state)));
    let (ok, out, err) = cli(&config, &["reload"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("resource r: definition changed: it reloads where it runs"),
        "{out}"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::read_to_string(&state).unwrap_or_default().trim() != "2" {
        assert!(Instant::now() < deadline, "never reloaded: {}", ops());
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_for(&config, "settled", all_started(&["r", "after"]));
    assert!(ops().contains("reload-agent 2"), "{}", ops());
    assert!(!ops().contains("stop"), "{}", ops());
    assert_eq!(starts(), 1);
    assert_eq!(
        pid_of(&data, "after"),
        after,
        "what is ordered after r stays"
    );

    // `state` is not reloadable: a restart, with the old state stopped.
    let state2 = dir.path().join("r2.state");
    write(&format!("state = \"{}\", level = \"2\"", s(&state2)));
    let (ok, out, err) = cli(&config, &["reload"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("resource r: definition changed: it restarts where it runs"),
        "{out}"
    );
    wait_for(&config, "restarted", |v| {
        all_started(&["r", "after"])(v) && pid_of(&data, "after") != after
    });
    assert!(
        !state.exists(),
        "stopped with the state it was started with"
    );
    assert!(state2.exists());
}

/// `warden run` with its descriptor limit (soft and hard) set to `nofile`.
fn start_limited(config: &Path, nofile: u32) -> Daemon {
    let log = config.with_file_name("daemon.log");
    let child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n {nofile} && exec \"$0\" run --config \"$1\" --log-output \"$2\" --log-level debug"
        ))
        .arg(env!("CARGO_BIN_EXE_warden"))
        .arg(config)
        .arg(&log)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start warden run");
    Daemon { child }
}

/// A raw request to the API: the status line of its answer.
fn api_status_line(data: &Path, request: &str) -> String {
    use std::io::{BufRead, Write};
    let addr = std::fs::read_to_string(data.join("api.addr")).expect("api.addr");
    let mut s = std::net::TcpStream::connect(addr.trim()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(request.as_bytes()).expect("write");
    let mut line = String::new();
    std::io::BufReader::new(s)
        .read_line(&mut line)
        .expect("read");
    line.trim().to_owned()
}

#[test]
fn a_flood_of_idle_connections_fails_no_resource_and_no_peer() {
    // The fault: ~1 100 idle connections at a 1 024 descriptor limit made agents fail with
    // EMFILE (fail count INFINITY), peers turn DOWN, and the damage stayed. Here the limit is
    // 256 and 1 000 connections come, half to a listener, half to the API.
    let a = LineBackend::start("A");
    let (dir, config, data) = setup();
    let mut text = std::fs::read_to_string(&config).expect("config");
    // A process whose monitor command leaves a line per run.
    let ticks = dir.path().join("ticks");
    text.push_str(&format!(
        "[[resource]]\nid = \"ticker\"\nclass = \"process\"\ncommand = [\"sleep\", \"1000\"]\n\
         ops = [{{ name = \"monitor\", interval = \"1s\", command = [\"sh\", \"-c\", \"echo tick >> {}\"] }}]\n",
        ticks.display()
    ));
    text.push_str(&format!(
        "[[upstream]]\nname = \"svc\"\nprimary = [\"127.0.0.1:{}\"]\n\
         check = {{ type = \"tcp\", interval = \"200ms\", fall = 1, rise = 1 }}\n\
         [[listener]]\nname = \"front\"\nlisten = \"127.0.0.1:0\"\nupstream = \"svc\"\n",
        a.port
    ));
    std::fs::write(&config, text).expect("config");
    let _d = start_limited(&config, 256);
    wait_for(&config, "both resources started", settled_started);
    let front = std::fs::read_to_string(data.join("listener-front.addr")).expect("addr");
    let api = std::fs::read_to_string(data.join("api.addr")).expect("api.addr");

    // A page from another name cannot read the API (DNS rebinding); an address or this
    // machine's names can.
    let port = api.trim().rsplit_once(':').expect("port").1.to_owned();
    let get = |host: &str| {
        format!("GET /v1/status HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
    };
    assert!(api_status_line(&data, &get("evil.example:80")).starts_with("HTTP/1.1 421"));
    assert!(api_status_line(&data, &get(&format!("localhost:{port}"))).starts_with("HTTP/1.1 200"));
    assert!(api_status_line(&data, &get(api.trim())).starts_with("HTTP/1.1 200"));

    let ticked = || {
        std::fs::read_to_string(&ticks)
            .unwrap_or_default()
            .lines()
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while ticked() == 0 {
        assert!(Instant::now() < deadline, "the ticker's monitor never ran");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut flood = Vec::new();
    for addr in [front.trim(), api.trim()] {
        let to: std::net::SocketAddr = addr.parse().expect("addr");
        let mut refused = 0;
        for _ in 0..500 {
            // Beyond the accept queue a connect is not answered: the queue is full. (A second
            // for an answer, and three tries a little apart before taking the queue as full:
            // under other tests' load the daemon drains its queue later.)
            match std::net::TcpStream::connect_timeout(&to, Duration::from_secs(1)) {
                Ok(s) => {
                    flood.push(s);
                    refused = 0;
                }
                Err(_) if refused < 3 => {
                    refused += 1;
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(_) => break,
            }
        }
    }
    assert!(flood.len() > 300, "only {} connections", flood.len());
    // Several monitor and check intervals under the flood: they keep running on time (the
    // descriptors they need were kept for them), not merely once the flood is gone.
    let before = ticked();
    std::thread::sleep(Duration::from_secs(5));
    let during = ticked() - before;
    drop(flood);
    assert!(
        during >= 3,
        "{during} monitor runs during the 5 s flood (interval 1s)\n{}",
        std::fs::read_to_string(config.with_file_name("daemon.log")).unwrap_or_default()
    );
    let v = wait_for(&config, "the API answering again", |v| {
        v["transition_running"] == false
    });
    for id in ["dummy", "web"] {
        let r = resource(&v, id);
        assert!(
            r["status"].as_str().is_some_and(|s| s.contains("Started")),
            "{id}: {r}"
        );
        assert_eq!(r["fail_counts"], serde_json::json!({}), "{id}: {r}");
        let failed: Vec<Value> = history(&config, id)
            .into_iter()
            .filter(|h| h["rc"] != 0 && !(h["op"] == "monitor_0" && h["rc"] == 7))
            .collect();
        assert!(failed.is_empty(), "{id}: {failed:?}");
    }
    let (ok, out, err) = cli(&config, &["upstream", "status", "--json"]);
    assert!(ok, "{err}");
    let ups: Value = serde_json::from_str(&out).expect("json");
    // Never turned down, not even for a moment: the version never moved.
    assert_eq!(ups[0]["version"], 0, "{ups}");
    assert_eq!(ups[0]["peers"][0]["state"], "UP", "{ups}");
    // The listener serves again.
    let mut s = connect_listener(&data, "front");
    assert_eq!(ask_line(&mut s, "after"), "A:after");
    drop(dir);
}

#[test]
fn sigterm_whose_stop_fails_exits_non_zero_and_names_what_still_runs() {
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("warden.toml");
    std::fs::write(
        &config,
        format!(
            "[cluster]\nname = \"it\"\ndata_dir = \"data\"\n[api]\nlisten = \"127.0.0.1:0\"\n\
             [[resource]]\nid = \"stuck\"\nclass = \"ocf\"\nprovider = \"warden-test\"\ntype = \"StopHangs\"\n\
             params = {{ state = \"{}\" }}\n\
             ops = [{{ name = \"monitor\", interval = \"1s\" }}, {{ name = \"stop\", timeout = \"1s\" }}]\n",
            dir.path().join("stuck.state").display()
        ),
    )
    .expect("config");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ocf");
    let mut d = start(&config, &["--ocf-root", root.to_str().expect("utf-8 path")]);
    wait_for(&config, "stuck started", |v| {
        resource(v, "stuck")["status"]
            .as_str()
            .is_some_and(|s| s.contains("Started"))
    });
    let pid = nix::unistd::Pid::from_raw(d.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = d.child.try_wait().expect("wait") {
            break s;
        }
        assert!(Instant::now() < deadline, "the daemon did not exit");
        std::thread::sleep(Duration::from_millis(50));
    };
    let log = std::fs::read_to_string(config.with_file_name("daemon.log")).unwrap_or_default();
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(
        log.contains("stopped with resources still running here: stuck"),
        "{log}"
    );
}

#[test]
fn op_defaults_time_out_the_operations_a_resource_lists_none_of() {
    // A start that takes 5 s, of a resource with no `start` operation of its own, under
    // `[op_defaults] timeout = "1s"`: it times out after 1 s, as docs/config.md says. Before,
    // operations a resource did not list (start, stop, promote, demote) took 20 s whatever
    // `[op_defaults]` said.
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("warden.toml");
    write_resources(
        &config,
        &format!(
            "[op_defaults]\ntimeout = \"1s\"\n\
             [[resource]]\nid = \"slow\"\nclass = \"ocf\"\nprovider = \"warden-test\"\ntype = \"SlowStart\"\n\
             params = {{ state = \"{}\", log = \"{}\", delay = \"5\" }}\n",
            dir.path().join("slow.state").display(),
            dir.path().join("starts.log").display()
        ),
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ocf");
    let _d = start(&config, &["--ocf-root", root.to_str().expect("utf-8 path")]);
    let failed_start = |v: &Value| {
        v["failed_actions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|f| f["op"] == "start_0")
            .cloned()
    };
    let v = wait_for(&config, "the start timed out", |v| {
        failed_start(v).is_some()
    });
    let failed = failed_start(&v).expect("the failed start");
    assert_eq!(failed["rc"], 1, "{v}");
    assert!(
        failed["exit_reason"]
            .as_str()
            .is_some_and(|r| r.contains("timed out after 1s")),
        "{v}"
    );
}

#[test]
fn the_data_dir_the_store_and_the_logs_are_the_daemons_alone() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, config, data) = setup();
    // An existing data dir open to everyone is made private.
    std::fs::create_dir_all(&data).expect("mkdir");
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let _d = start(&config, &[]);
    wait_for(&config, "both resources started", settled_started);
    let mode = |p: &Path| {
        std::fs::metadata(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(&data), 0o700);
    for f in ["warden.redb", "api.token", "log/web.out", "log/web.err"] {
        assert_eq!(mode(&data.join(f)), 0o600, "{f}");
    }
    assert_eq!(mode(&config.with_file_name("daemon.log")), 0o600);
}

#[test]
fn a_start_interrupted_by_sigkill_never_runs_alongside_the_next_daemons() {
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("warden.toml");
    let starts = dir.path().join("starts.log");
    std::fs::write(
        &config,
        format!(
            "[cluster]\nname = \"it\"\ndata_dir = \"data\"\n[api]\nlisten = \"127.0.0.1:0\"\n\
             [[resource]]\nid = \"slow\"\nclass = \"ocf\"\nprovider = \"warden-test\"\ntype = \"SlowStart\"\n\
             params = {{ state = \"{}\", log = \"{}\", delay = \"3\" }}\n\
             ops = [{{ name = \"monitor\", interval = \"1s\" }}]\n",
            dir.path().join("slow.state").display(),
            starts.display()
        ),
    )
    .expect("config");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ocf");
    let root = root.to_str().expect("utf-8 path");
    let mut first = start(&config, &["--ocf-root", root]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&starts).is_ok_and(|t| t.contains("begin")) {
        assert!(Instant::now() < deadline, "the first start never began");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SIGKILL mid-start, and a new daemon at once.
    first.child.kill().expect("SIGKILL");
    first.child.wait().expect("reaped");
    let _second = start(&config, &["--ocf-root", root]);
    wait_for(&config, "slow started by the second daemon", |v| {
        v["transition_running"] == false
            && resource(v, "slow")["status"]
                .as_str()
                .is_some_and(|s| s.contains("Started"))
    });
    // The first start's agent was killed before the second began: it never ended (left
    // alone, its `end` would come 3 s after its `begin`, before the second's).
    let log = std::fs::read_to_string(&starts).expect("starts");
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 3, "{log}");
    let (a, b) = (&lines[0][6..], &lines[1][6..]);
    assert!(
        a != b && lines[0].starts_with("begin ") && lines[1].starts_with("begin "),
        "{log}"
    );
    assert_eq!(lines[2], format!("end {b}"), "{log}");
    let daemon_log =
        std::fs::read_to_string(config.with_file_name("daemon.log")).unwrap_or_default();
    assert!(
        daemon_log.contains("was still running: killed") && daemon_log.contains("slow.start"),
        "{daemon_log}"
    );
}

#[test]
fn a_chatty_process_cannot_fill_the_disk_and_its_output_outlives_a_daemon_restart() {
    let (dir, config, data) = setup();
    let mut text = std::fs::read_to_string(&config).expect("config");
    text.push_str(
        "[[resource]]\nid = \"chatty\"\nclass = \"process\"\n\
         command = [\"sh\", \"-c\", \"exec yes warden-chatty-output\"]\noutput_max = \"256KiB\"\n\
         ops = [{ name = \"monitor\", interval = \"1s\" }]\n",
    );
    std::fs::write(&config, text).expect("config");
    let sizes = || {
        ["log/chatty.out", "log/chatty.out.1"].map(|f| {
            std::fs::metadata(data.join(f))
                .map(|m| m.len())
                .unwrap_or(0)
        })
    };
    let d = start(&config, &[]);
    wait_for(&config, "chatty started", |v| {
        resource(v, "chatty")["status"]
            .as_str()
            .is_some_and(|s| s.contains("Started"))
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while sizes()[1] == 0 {
        assert!(Instant::now() < deadline, "never rotated: {:?}", sizes());
        std::thread::sleep(Duration::from_millis(50));
    }
    // `yes` writes as fast as it can; each file stays under its cap all along.
    for _ in 0..20 {
        let [now, old] = sizes();
        assert!(now <= 256 << 10 && old <= 256 << 10, "{now} {old}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let tail = std::fs::read_to_string(data.join("log/chatty.out.1")).expect("rotated");
    assert!(
        tail.lines()
            .last()
            .is_some_and(|l| l.starts_with("warden-chatty"))
    );
    // The daemon goes (SIGKILL) and comes back: the process and its capped output go on.
    let pid = pid_of(&data, "chatty");
    drop(d_kill(d));
    let _d = start(&config, &[]);
    wait_for(&config, "chatty adopted", |v| {
        v["transition_running"] == false
            && resource(v, "chatty")["status"]
                .as_str()
                .is_some_and(|s| s.contains("Started"))
    });
    assert_eq!(pid_of(&data, "chatty"), pid, "adopted, not restarted");
    // Still written: the newest change to either file moves on. (A rotation renames the file
    // before the next one is opened, so one of them may be missing at the instant it is read.)
    let newest = || {
        ["log/chatty.out", "log/chatty.out.1"]
            .iter()
            .filter_map(|f| std::fs::metadata(data.join(f)).ok()?.modified().ok())
            .max()
    };
    let before = newest();
    let deadline = Instant::now() + Duration::from_secs(10);
    while newest() == before {
        assert!(Instant::now() < deadline, "no longer written");
        std::thread::sleep(Duration::from_millis(50));
    }
    let [now, old] = sizes();
    assert!(now <= 256 << 10 && old <= 256 << 10, "{now} {old}");
    drop(dir);
}

/// SIGKILL, as a crash: what the daemon runs is left as it is.
fn d_kill(mut d: Daemon) -> Daemon {
    let _ = d.child.kill();
    let _ = d.child.wait();
    d
}

/// Sets the soft RLIMIT_FSIZE of a running process (util-linux prlimit); None: unlimited.
fn set_fsize(pid: u32, soft: Option<u64>) {
    let soft = soft.map_or("unlimited".to_owned(), |n| n.to_string());
    let st = Command::new("prlimit")
        .args([
            "--pid",
            &pid.to_string(),
            &format!("--fsize={soft}:unlimited"),
        ])
        .status()
        .expect("prlimit");
    assert!(st.success(), "prlimit");
}

#[test]
fn a_store_that_cannot_record_holds_actions_and_the_proxy_keeps_serving() {
    // The fault: a full disk made the daemon stop at the first event it could not record,
    // and its proxy with it. A store that cannot grow (here: a file size limit smaller than
    // the store, set on the running daemon, so any write past it fails with EFBIG as one past
    // a full disk fails with ENOSPC) must hold the daemon's actions, not end it.
    let a = LineBackend::start("A");
    let (dir, config, data) = setup();
    let mut text = std::fs::read_to_string(&config).expect("config");
    text.push_str(&format!(
        "[[upstream]]\nname = \"svc\"\nprimary = [\"127.0.0.1:{}\"]\n\
         check = {{ type = \"tcp\", interval = \"200ms\" }}\n\
         [[listener]]\nname = \"front\"\nlisten = \"127.0.0.1:0\"\nupstream = \"svc\"\n",
        a.port
    ));
    std::fs::write(&config, text).expect("config");
    let mut d = start(&config, &[]);
    wait_for(&config, "both resources started", settled_started);
    let daemon_pid = d.child.id();
    let store_len = std::fs::metadata(data.join("warden.redb"))
        .expect("store")
        .len();
    set_fsize(daemon_pid, Some(store_len / 4));
    // Events until one cannot be recorded: each crash of web is several.
    let deadline = Instant::now() + Duration::from_secs(60);
    let held = loop {
        let p = pid(&data);
        if p > 0 {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        std::thread::sleep(Duration::from_millis(300));
        if let Some(v) = status(&config) {
            if v["warnings"].as_array().is_some_and(|w| {
                w.iter()
                    .any(|w| w.as_str().is_some_and(|s| s.contains("cannot record")))
            }) {
                break v;
            }
        }
        assert!(
            d.child.try_wait().expect("wait").is_none(),
            "the daemon stopped:\n{}",
            std::fs::read_to_string(config.with_file_name("daemon.log")).unwrap_or_default()
        );
        assert!(Instant::now() < deadline, "the store never failed");
    };
    // Held: the daemon runs, its proxy serves, reads answer, changes are refused with why.
    assert!(d.child.try_wait().expect("wait").is_none());
    assert_eq!(
        ask_line(&mut connect_listener(&data, "front"), "held"),
        "A:held"
    );
    assert!(
        held["warnings"].to_string().contains("free space"),
        "{held}"
    );
    let (ok, _, err) = cli(&config, &["resource", "restart", "dummy"]);
    assert!(!ok && err.contains("cannot record"), "{err}");
    let (code, body) = api_post(&data, "/v1/resources/dummy/restart");
    assert_eq!(code, 503, "{body}");
    // Room again: the state is read back, everything probed, web (killed) started again.
    set_fsize(daemon_pid, None);
    wait_for(&config, "recovered, web started again", |v| {
        settled_started(v)
            && pid(&data) > 0
            && v["warnings"].as_array().is_none_or(|w| w.is_empty())
    });
    let log = std::fs::read_to_string(config.with_file_name("daemon.log")).unwrap_or_default();
    assert!(log.contains("the store records again"), "{log}");
    drop(dir);
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

#[test]
fn request_bodies_beyond_the_room_to_hold_them_stream_through() {
    // The fault: every request body was held whole in RAM (16 MiB each, no total cap: 40
    // clients took 611 MB). Bodies up to 1 MiB are held (so they can be sent again) within
    // 128 MiB for the daemon; the rest stream. Here 300 clients each send half of a 1 MiB body
    // and wait: 128 are held, the other 172 reach the peer before their bodies are whole.
    use std::io::{Read, Write};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    const CLIENTS: usize = 300;
    const BODY: usize = 1 << 20;
    let heads = Arc::new(AtomicUsize::new(0));
    let bodies = Arc::new(AtomicUsize::new(0));
    let backend = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = backend.local_addr().expect("addr").port();
    {
        let (heads, bodies) = (Arc::clone(&heads), Arc::clone(&bodies));
        std::thread::spawn(move || {
            for s in backend.incoming() {
                let Ok(mut s) = s else { return };
                let (heads, bodies) = (Arc::clone(&heads), Arc::clone(&bodies));
                std::thread::spawn(move || {
                    let mut buf = Vec::new();
                    let mut chunk = vec![0u8; 64 << 10];
                    let end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        match s.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                    if head.starts_with("post") {
                        heads.fetch_add(1, Ordering::SeqCst);
                    }
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length: "))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    let mut got = buf.len() - end;
                    while got < len {
                        match s.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => got += n,
                        }
                    }
                    if len == BODY {
                        bodies.fetch_add(1, Ordering::SeqCst);
                    }
                    let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
                });
            }
        });
    }
    let (_dir, config, data) = setup();
    let mut text = std::fs::read_to_string(&config).expect("config");
    text.push_str(&format!(
        "[[upstream]]\nname = \"svc\"\nprimary = [\"127.0.0.1:{port}\"]\n\
         check = {{ type = \"tcp\", interval = \"200ms\", fall = 1, rise = 1 }}\n\
         [[listener]]\nname = \"front\"\nlisten = \"127.0.0.1:0\"\nupstream = \"svc\"\nprotocol = \"http\"\n"
    ));
    std::fs::write(&config, text).expect("config");
    let d = start(&config, &[]);
    wait_for(&config, "the daemon", |_| true);
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr = loop {
        if let Ok(a) = std::fs::read_to_string(data.join("listener-front.addr")) {
            break a.trim().to_owned();
        }
        assert!(Instant::now() < deadline, "no listener");
        std::thread::sleep(Duration::from_millis(50));
    };
    let half = vec![b'x'; BODY / 2];
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let mut s = std::net::TcpStream::connect(&addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        write!(
            s,
            "POST /upload HTTP/1.1\r\nHost: svc\r\nContent-Length: {BODY}\r\n\r\n"
        )
        .expect("head");
        s.write_all(&half).expect("half a body");
        clients.push(s);
    }
    let held = CLIENTS - (128 << 20) / BODY;
    let deadline = Instant::now() + Duration::from_secs(30);
    while heads.load(Ordering::SeqCst) < held {
        assert!(
            Instant::now() < deadline,
            "only {} of the requests past the room reached the peer",
            heads.load(Ordering::SeqCst)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        heads.load(Ordering::SeqCst),
        held,
        "bodies within the room are held until whole"
    );
    // Half of 300 MiB has been sent; the daemon holds at most the room (128 MiB, half used)
    // and a read buffer per stream.
    let rss = rss_kib(d.child.id());
    println!("the daemon's RSS with {CLIENTS} half-sent bodies: {rss} KiB");
    assert!(rss < 160 << 10, "the daemon holds {rss} KiB");
    for s in &mut clients {
        s.write_all(&half).expect("the rest of the body");
    }
    for s in &mut clients {
        let mut got = Vec::new();
        let mut b = [0u8; 256];
        while !got.ends_with(b"ok") {
            match s.read(&mut b) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&b[..n]),
            }
        }
        assert!(
            got.starts_with(b"HTTP/1.1 200 "),
            "{}",
            String::from_utf8_lossy(&got)
        );
    }
    assert_eq!(bodies.load(Ordering::SeqCst), CLIENTS, "every body whole");
}

#[test]
fn api_clients_that_never_read_or_send_half_a_body_do_not_hold_its_slots() {
    // The fault: the API's connection slots could be held forever by a client that asks and
    // never reads (nginx's send_timeout). Here all three slots are taken that way; a fourth
    // client is still answered once the API has let them go (after 10 s without progress).
    use std::io::{Read, Write};
    let (_dir, config, data) = setup();
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        &config,
        text.replace(
            "listen = \"127.0.0.1:0\"\n",
            "listen = \"127.0.0.1:0\"\nmax_connections = 3\n",
        ),
    )
    .expect("config");
    let _d = start(&config, &[]);
    wait_for(&config, "the API", |_| true);
    let addr = std::fs::read_to_string(data.join("api.addr")).expect("api.addr");
    let addr = addr.trim().to_owned();

    // A body sent half, then nothing: no endpoint reads one, the answer comes and the
    // connection closes (it cannot carry another request).
    let token = std::fs::read_to_string(data.join("api.token")).expect("api.token");
    let mut s = std::net::TcpStream::connect(&addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    write!(
        s,
        "POST /v1/reload HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n\
         Content-Length: 100\r\n\r\n0123456789",
        token.trim()
    )
    .expect("half a body");
    let mut half = Vec::new();
    let _ = s.read_to_end(&mut half);
    let half = String::from_utf8_lossy(&half);
    assert!(
        half.starts_with("HTTP/1.1 200 ") && half.contains("connection: close\r\n"),
        "{half:?}"
    );

    let mut held = Vec::new();
    for _ in 0..3 {
        // Asks for thousands of status pages and reads none of them.
        let s = std::net::TcpStream::connect(&addr).expect("connect");
        let mut w = s.try_clone().expect("clone");
        std::thread::spawn(move || {
            let one = b"GET /v1/status HTTP/1.1\r\nHost: localhost\r\n\r\n";
            for _ in 0..50_000 {
                if w.write_all(one).is_err() {
                    return;
                }
            }
        });
        held.push(s);
    }
    std::thread::sleep(Duration::from_secs(2));
    let start = Instant::now();
    let mut s = std::net::TcpStream::connect(&addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    s.write_all(b"GET /v1/status HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .expect("request");
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    let got = String::from_utf8_lossy(&got);
    assert!(got.starts_with("HTTP/1.1 200 "), "{got:?}");
    // Not before the slots were let go: the order, with a generous bound.
    assert!(
        start.elapsed() > Duration::from_secs(5),
        "answered after {:?}: the slots were not held",
        start.elapsed()
    );
    drop(held);
}

/// libfaketime, which steps a process's wall clock (its monotonic clock untouched, as a real
/// step leaves it); `scripts/test.sh` installs it.
fn faketime() -> PathBuf {
    ["x86_64-linux-gnu", "aarch64-linux-gnu"]
        .iter()
        .map(|arch| PathBuf::from(format!("/usr/lib/{arch}/faketime/libfaketime.so.1")))
        .find(|p| p.exists())
        .expect("libfaketime (Debian's libfaketime package; scripts/test.sh installs it)")
}

/// Starts the daemon of `config` with its wall clock `offset` from the machine's ("-1h").
fn start_at(config: &Path, offset: &str) -> Daemon {
    let preload = faketime();
    start_env(
        config,
        &[],
        &[
            ("LD_PRELOAD", preload.as_os_str()),
            ("FAKETIME", offset.as_ref()),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1".as_ref()),
        ],
    )
}

#[test]
fn a_clock_set_back_between_two_daemons_keeps_failures_to_their_timeout() {
    // The fault: failures are recorded in wall-clock time; a clock set back an hour while the
    // daemon was down left them an hour in the future, counting (and banning) for an hour
    // more than `failure_timeout`. Now their age is kept.
    let (_dir, config, data) = setup();
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        &config,
        text.replace(
            "stop_timeout = \"2s\"\n",
            "stop_timeout = \"2s\"\nmeta = { failure_timeout = \"8s\" }\n",
        ),
    )
    .expect("config");
    let mut d = start(&config, &[]);
    wait_for(&config, "web started", |v| {
        v["transition_running"] == false
            && resource(v, "web")["status"]
                .as_str()
                .is_some_and(|s| s.starts_with("web Started"))
    });
    let web = pid_of(&data, "web");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(web),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill");
    wait_for(&config, "the failure recorded and web restarted", |v| {
        v["transition_running"] == false
            && resource(v, "web")["status"]
                .as_str()
                .is_some_and(|s| s.starts_with("web Started"))
            && !v["failed_actions"].as_array().is_some_and(Vec::is_empty)
    });
    d.child.kill().expect("kill the daemon");
    d.child.wait().expect("reaped");
    std::mem::forget(d);

    // The next daemon's clock is an hour behind.
    let _d = start_at(&config, "-1h");
    // Once it has settled (its first probes and the start take a moment on a loaded
    // machine), web runs and the failure still counts.
    wait_for(
        &config,
        "web running with the failure still counting",
        |v| {
            v["transition_running"] == false
                && resource(v, "web")["status"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("web Started"))
                && !v["failed_actions"].as_array().is_some_and(Vec::is_empty)
        },
    );
    wait_for(&config, "the failure to expire", |v| {
        v["failed_actions"].as_array().is_some_and(Vec::is_empty)
            && resource(v, "web")["fail_counts"]
                .as_object()
                .is_some_and(|o| o.is_empty())
    });
    let log = std::fs::read_to_string(config.with_file_name("daemon.log")).expect("log");
    assert!(log.contains("ahead of the clock"), "{log}");
}

#[test]
fn systemd_hears_ready_status_watchdog_and_stopping_and_sighup_reopens_the_log() {
    use std::sync::{Arc, Mutex};
    let (dir, config, data) = setup();
    let path = dir.path().join("notify");
    let sock = std::os::unix::net::UnixDatagram::bind(&path).expect("bind");
    let heard = Arc::new(Mutex::new(Vec::<(Instant, String)>::new()));
    {
        let heard = Arc::clone(&heard);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = sock.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                heard.lock().expect("lock").push((Instant::now(), msg));
            }
        });
    }
    let said = |what: &str| {
        heard
            .lock()
            .expect("lock")
            .iter()
            .filter(|(_, m)| m.lines().any(|l| l.starts_with(what)))
            .map(|(t, m)| (*t, m.clone()))
            .collect::<Vec<_>>()
    };
    let eventually = |what: &str| {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(m) = said(what).into_iter().next() {
                return m;
            }
            assert!(Instant::now() < deadline, "systemd never heard {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let log = config.with_file_name("daemon.log");
    let mut d = Daemon {
        child: warden()
            .args(["run", "--config"])
            .arg(&config)
            .arg("--log-output")
            .arg(&log)
            .env("NOTIFY_SOCKET", &path)
            .env("WATCHDOG_USEC", "400000")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("warden run"),
    };
    // Ready once both resources are probed: by then the status knows each one's state.
    let (ready_at, ready) = eventually("READY=1");
    assert!(ready.contains("STATUS=2 resources"), "{ready}");
    let v = status(&config).expect("status");
    for id in ["dummy", "web"] {
        let s = resource(&v, id)["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(!s.contains("Unknown"), "{s}");
    }
    // The watchdog hears from the loop every 200 ms (half of WATCHDOG_USEC).
    std::thread::sleep(Duration::from_millis(1500));
    let pings = said("WATCHDOG=1")
        .iter()
        .filter(|(t, _)| *t > ready_at)
        .count();
    assert!(pings >= 3, "{pings} watchdog pings in 1.5 s");
    // What the daemon runs never sees the socket.
    let environ =
        std::fs::read(format!("/proc/{}/environ", pid_of(&data, "web"))).expect("environ");
    assert!(!String::from_utf8_lossy(&environ).contains("NOTIFY_SOCKET"));

    // logrotate moves the log away and sends SIGHUP: a new file under the name.
    std::fs::rename(&log, log.with_extension("log.1")).expect("rotate");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(d.child.id() as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .expect("hup");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&log).is_ok_and(|l| l.contains("log output reopened")) {
        assert!(Instant::now() < deadline, "the log was not reopened");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        std::fs::read_to_string(log.with_extension("log.1"))
            .expect("old log")
            .contains("warden started")
    );

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(d.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("term");
    eventually("STOPPING=1");
    let _ = d.child.wait();
}

#[test]
fn under_journald_lines_carry_their_syslog_priority_and_no_colour() {
    use std::os::unix::fs::MetadataExt;
    let (dir, config, _data) = setup();
    // journald's stream is a socket; a file stands in, named the same way systemd names it.
    let stream = dir.path().join("journal");
    let err = std::fs::File::create(&stream).expect("stream");
    let m = err.metadata().expect("metadata");
    let mut d = Daemon {
        child: warden()
            .args(["run", "--config"])
            .arg(&config)
            .env("JOURNAL_STREAM", format!("{}:{}", m.dev(), m.ino()))
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("warden run"),
    };
    wait_for(&config, "the daemon", |v| v["transition_running"] == false);
    let _ = d.child.kill();
    let _ = d.child.wait();
    let text = std::fs::read_to_string(&stream).expect("journal");
    assert!(
        text.lines()
            .any(|l| l.starts_with("<6>") && l.contains("warden started")),
        "{text}"
    );
    assert!(text.lines().all(|l| l.starts_with('<')), "{text}");
    assert!(!text.contains('\u{1b}'), "colour codes: {text}");
}

#[test]
fn the_cli_finds_the_daemon_through_its_data_dir_and_says_why_it_has_no_token() {
    let (_dir, config, data) = setup();
    let _d = start(&config, &[]);
    wait_for(&config, "both resources started", settled_started);
    // The file is being edited and has an error now: the daemon is still found.
    let good = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        &config,
        good.replace("[[resource]]\nid = \"web\"", "[[resource]]\nid = web"),
    )
    .expect("typo");
    assert!(
        crate_status_ok(&config),
        "status failed with a typo in the file"
    );
    // Not even TOML: the line scan finds `data_dir` under [cluster].
    std::fs::write(&config, format!("{good}\n[[[broken")).expect("broken");
    assert!(crate_status_ok(&config));
    std::fs::write(&config, &good).expect("restore");
    // No token to read: a command that needs one says which file and why, not just "unauthorized".
    let token = data.join("api.token");
    let kept = data.join("api.token.kept");
    std::fs::rename(&token, &kept).expect("move the token away");
    let (ok, _, err) = cli(&config, &["resource", "disable", "web"]);
    std::fs::rename(&kept, &token).expect("token back");
    assert!(!ok);
    assert!(
        err.contains("the token could not be read: cannot read")
            && err.contains("api.token: no such file"),
        "{err}"
    );
    let (ok, _, err) = cli(&config, &["resource", "disable", "web"]);
    assert!(ok, "{err}");
}

fn crate_status_ok(config: &Path) -> bool {
    let (ok, out, err) = cli(config, &["status"]);
    ok && out.contains("web") || {
        eprintln!("{err}");
        false
    }
}

/// The whole answer to a GET of `path` on the daemon's API: (status line, body).
fn api_get(data: &Path, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let addr = std::fs::read_to_string(data.join("api.addr")).expect("api.addr");
    let mut s = std::net::TcpStream::connect(addr.trim()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        addr.trim()
    )
    .expect("write");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read");
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (
        head.lines().next().unwrap_or("").to_owned(),
        body.to_owned(),
    )
}

#[test]
fn ready_says_503_with_reasons_until_every_resource_here_is_probed() {
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("warden.toml");
    // An agent whose probe takes 3 s.
    let root = dir.path().join("ocf");
    let agent = root.join("resource.d/t/SlowProbe");
    std::fs::create_dir_all(agent.parent().expect("dir")).expect("mkdir");
    std::fs::write(
        &agent,
        "#!/bin/sh\ncase \"$1\" in\nmeta-data) echo '<?xml version=\"1.0\"?><resource-agent name=\"SlowProbe\"><parameters/><actions/></resource-agent>'; exit 0;;\n\
         monitor) [ -e \"$OCF_RESKEY_state\" ] && exit 0; sleep 3; exit 7;;\nstart) touch \"$OCF_RESKEY_state\"; exit 0;;\nstop) rm -f \"$OCF_RESKEY_state\"; exit 0;;\n*) exit 3;;\nesac\n",
    )
    .expect("agent");
    std::fs::set_permissions(&agent, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    // `hidden` is never looked for here (resource_discovery = "never"): readiness does not
    // wait for a probe that never comes.
    std::fs::write(
        &config,
        format!(
            "[cluster]\nname = \"it\"\ndata_dir = \"data\"\n[api]\nlisten = \"127.0.0.1:0\"\n\
             [[node]]\nname = \"n1\"\n\
             [[resource]]\nid = \"slow\"\nclass = \"ocf\"\nprovider = \"t\"\ntype = \"SlowProbe\"\n\
             params = {{ state = \"{}\" }}\n\
             [[resource]]\nid = \"hidden\"\nclass = \"ocf\"\nprovider = \"t\"\ntype = \"SlowProbe\"\n\
             params = {{ state = \"{}\" }}\n\
             [[location]]\nresource = \"hidden\"\nnode = \"n1\"\nscore = 0\nresource_discovery = \"never\"\n",
            dir.path().join("slow.state").display(),
            dir.path().join("hidden.state").display()
        ),
    )
    .expect("config");
    let data = dir.path().join("data");
    let _d = start(
        &config,
        &[
            "--node",
            "n1",
            "--ocf-root",
            root.to_str().expect("utf-8 path"),
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !data.join("api.addr").exists() {
        assert!(Instant::now() < deadline, "no api.addr");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (line, body) = api_get(&data, "/ready");
    assert!(line.contains(" 503 "), "{line} {body}");
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["ready"], false);
    assert_eq!(
        v["reasons"],
        serde_json::json!(["resource slow is not probed yet"])
    );
    let (line, _) = api_get(&data, "/live");
    assert!(line.contains(" 200 "), "alive while not ready: {line}");
    // Once the probe has answered, the node is ready.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (line, body) = api_get(&data, "/ready");
        if line.contains(" 200 ") {
            assert_eq!(body.trim(), "{\"ready\":true}");
            break;
        }
        assert!(Instant::now() < deadline, "never ready: {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Not looked for is still placed: hidden starts.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !dir.path().join("hidden.state").exists() {
        assert!(Instant::now() < deadline, "hidden never started");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn api_allow_and_deny_refuse_clients_with_403() {
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("warden.toml");
    let data = dir.path().join("data");
    let write = |api: &str| {
        std::fs::write(
            &config,
            format!("[cluster]\nname = \"it\"\ndata_dir = \"data\"\n[api]\nlisten = \"127.0.0.1:0\"\n{api}"),
        )
        .expect("config");
    };
    // Only 10.0.0.0/8 may use it: this test, on 127.0.0.1, may not.
    write("allow = [\"10.0.0.0/8\"]\n");
    let d = start(&config, &[]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !data.join("api.addr").exists() {
        assert!(Instant::now() < deadline, "no api.addr");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (line, body) = api_get(&data, "/v1/status");
    assert!(line.contains(" 403 "), "{line}");
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["field"], "client");
    assert_eq!(
        v["error"],
        "127.0.0.1 may not use this API ([api] allow and deny)"
    );
    let (ok, _, err) = cli(&config, &["status"]);
    assert!(!ok && err.contains("may not use this API"), "{err}");
    drop(d);
    // Allowed, then denied by a narrower rule: deny wins.
    write("allow = [\"127.0.0.0/8\"]\n");
    let d = start(&config, &[]);
    wait_for(&config, "the status, allowed", |_| true);
    drop(d);
    write("allow = [\"127.0.0.0/8\"]\ndeny = [\"127.0.0.1\"]\n");
    let _d = start(&config, &[]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (ok, _, err) = cli(&config, &["status"]);
        if !ok && err.contains("may not use this API") {
            break;
        }
        assert!(Instant::now() < deadline, "never refused: {err}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_api_over_tls_with_the_cli_pinning_its_certificate() {
    let dir = tempfile::tempdir().expect("dir");
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("cert");
    let cert_file = dir.path().join("api.pem");
    let key_file = dir.path().join("api-key.pem");
    std::fs::write(&cert_file, cert.cert.pem()).expect("cert");
    std::fs::write(&key_file, cert.signing_key.serialize_pem()).expect("key");
    let config = dir.path().join("warden.toml");
    let body = |key: &Path| {
        format!(
            "[cluster]\nname = \"it\"\ndata_dir = \"data\"\n\n[api]\nlisten = \"127.0.0.1:0\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n\n[[resource]]\nid = \"web\"\nclass = \"process\"\ncommand = [\"sleep\", \"1000\"]\n",
            cert_file.display(),
            key.display()
        )
    };
    // A key that cannot be read is found by check-config, at its place.
    std::fs::write(&config, body(&dir.path().join("missing.pem"))).expect("config");
    let out = warden()
        .arg("check-config")
        .arg(&config)
        .output()
        .expect("check-config");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("warden.toml:7:12: error: cannot read a private key from tls_key"),
        "{err}"
    );
    std::fs::write(&config, body(&key_file)).expect("config");
    let data = dir.path().join("data");
    let _d = start(&config, &[]);
    let v = wait_for(&config, "web started over TLS", |v| {
        resource(v, "web")["state"] == "started"
    });
    assert_eq!(v["cluster"], "it");
    let addr = std::fs::read_to_string(data.join("api.addr")).expect("api.addr");
    let addr = addr
        .trim()
        .strip_prefix("https://")
        .expect("an https address");
    // A mutation through the CLI, pinned by <data_dir>/api.pin.
    let (ok, _, err) = cli(&config, &["resource", "restart", "web"]);
    assert!(ok, "{err}");
    // A standard client that verifies the certificate (Python's ssl, with it as its CA).
    let script = format!(
        "import ssl, urllib.request\nctx = ssl.create_default_context(cafile={:?})\nprint(urllib.request.urlopen('https://{addr}/live', context=ctx, timeout=10).read().decode().strip())",
        cert_file.display().to_string()
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "ok",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Plain HTTP gets no answer.
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    use std::io::{Read, Write};
    s.write_all(b"GET /live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .expect("write");
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    assert!(!answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
    // Another certificate's pin is refused, and said so.
    let out = warden()
        .args([
            "status",
            "--api",
            &format!("https://{addr}"),
            "--token",
            "x",
        ])
        .args(["--api-pin", &format!("sha256:{}", "0".repeat(64))])
        .output()
        .expect("status");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not the one pinned"), "{err}");
}

#[test]
fn status_watch_redraws_in_place_and_reads_print_json() {
    let (_dir, config, _data) = setup();
    let _d = start(&config, &[]);
    wait_for(&config, "both started", settled_started);
    let mut watch = warden()
        .args(["status", "--watch"])
        .env("WARDEN_CONFIG", &config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("status --watch");
    std::thread::sleep(Duration::from_millis(2500));
    let _ = watch.kill();
    let out = watch.wait_with_output().expect("output");
    let text = String::from_utf8_lossy(&out.stdout);
    // Each refresh goes home and overwrites (no full clear: no flicker).
    assert!(text.matches("\x1b[H").count() >= 2, "{text:?}");
    assert!(!text.contains("\x1b[2J"), "{text:?}");
    assert!(
        text.contains("dummy") && text.contains("\x1b[K\n"),
        "{text:?}"
    );
    // Reads and the reload print JSON on request.
    let (ok, out, err) = cli(&config, &["reload", "--json"]);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).expect("reload json");
    assert_eq!(v["ok"], true);
    assert!(v["changes"].is_array(), "{v}");
    let (ok, out, err) = cli(&config, &["upstream", "status", "--json"]);
    assert!(ok, "{err}");
    assert!(serde_json::from_str::<Value>(&out).is_ok_and(|v| v.is_array()));
}

#[test]
fn a_ticket_gates_its_resource_through_the_cli_and_survives_a_daemon_restart() {
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("warden.toml");
    let data = dir.path().join("data");
    std::fs::write(
        &config,
        "[cluster]\nname = \"it\"\ndata_dir = \"data\"\n[api]\nlisten = \"127.0.0.1:0\"\n\
         [[resource]]\nid = \"web\"\nclass = \"process\"\ncommand = [\"sleep\", \"600\"]\n\
         [[ticket]]\nticket = \"site-a\"\nresource = \"web\"\n",
    )
    .expect("config");
    let state_of = |v: &Value| resource(v, "web")["state"].as_str().map(str::to_owned);
    let settled = |want: &'static str| {
        move |v: &Value| v["transition_running"] == false && state_of(v).as_deref() == Some(want)
    };
    let mut d = start(&config, &[]);
    let v = wait_for(&config, "the first transition", |v| {
        v["transition_running"] == false && !v["next_wakeup"].is_string()
    });
    assert_eq!(state_of(&v).as_deref(), Some("stopped"), "no ticket: {v}");
    assert_eq!(
        v["tickets"][0],
        serde_json::json!({"name": "site-a", "granted": false, "standby": false, "resources": ["web"]})
    );
    let (ok, out, err) = cli(&config, &["ticket", "grant", "site-a"]);
    assert!(ok, "{err}");
    assert_eq!(out, "ticket grant site-a: done\n");
    wait_for(&config, "web started by the grant", settled("started"));
    let (ok, out, err) = cli(&config, &["status"]);
    assert!(
        ok && out.contains("* Tickets:\n    * site-a: granted\n"),
        "{out}{err}"
    );

    // The grant is state: a restarted daemon still holds it.
    drop(d);
    d = start(&config, &[]);
    let v = wait_for(&config, "web started again", settled("started"));
    assert_eq!(v["tickets"][0]["granted"], true);

    // A bad name is refused with the field named; a revoke stops web.
    let (code, body) = api_post(&data, "/v1/tickets/a%20b/grant");
    assert_eq!(
        (code, body["field"].as_str()),
        (422, Some("ticket")),
        "{body}"
    );
    let (ok, _, err) = cli(&config, &["ticket", "revoke", "site-a"]);
    assert!(ok, "{err}");
    wait_for(&config, "web stopped by the revoke", settled("stopped"));
    drop(d);
}

#[test]
fn a_node_attribute_set_by_the_cli_drives_a_location_rule() {
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("warden.toml");
    let data = dir.path().join("data");
    std::fs::write(
        &config,
        "[cluster]\nname = \"it\"\ndata_dir = \"data\"\n[api]\nlisten = \"127.0.0.1:0\"\n\
         [[resource]]\nid = \"web\"\nclass = \"process\"\ncommand = [\"sleep\", \"600\"]\n\
         [[location]]\nresource = \"web\"\nrule = \"defined drain\"\nscore = \"-INFINITY\"\n",
    )
    .expect("config");
    let state_of = |v: &Value| resource(v, "web")["state"].as_str().map(str::to_owned);
    let settled = |want: &'static str| {
        move |v: &Value| v["transition_running"] == false && state_of(v).as_deref() == Some(want)
    };
    let _d = start(&config, &[]);
    let v = wait_for(&config, "web started", settled("started"));
    let node = v["node"].as_str().expect("node").to_owned();
    let (ok, out, err) = cli(&config, &["node", "attribute", &node, "drain", "yes"]);
    assert!(ok, "{err}");
    assert_eq!(out, format!("drain=yes on {node}: done\n"));
    let v = wait_for(&config, "web stopped by the rule", settled("stopped"));
    assert_eq!(
        v["nodes"][0]["attributes"],
        serde_json::json!({"drain": "yes"})
    );
    let (ok, out, err) = cli(&config, &["status"]);
    assert!(
        ok && out.contains(&format!("* Node Attributes:\n    * {node}: drain=yes\n")),
        "{out}{err}"
    );
    // A name Warden keeps for itself is refused, with the field named.
    let (code, body) = api_post(
        &data,
        &format!("/v1/nodes/{node}/attributes/%23uname?value=x"),
    );
    assert_eq!(
        (code, body["field"].as_str()),
        (422, Some("attribute")),
        "{body}"
    );
    let (ok, _, err) = cli(&config, &["node", "attribute", &node, "drain", "--delete"]);
    assert!(ok, "{err}");
    wait_for(&config, "web back", settled("started"));
}

#[test]
fn a_fence_agent_device_is_placed_and_checked_like_a_resource() {
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("warden.toml");
    // A fence agent whose check fails (Pacemaker calls it with `action=monitor` on stdin).
    let broken = dir.path().join("fence_broken");
    std::fs::write(
        &broken,
        "#!/bin/sh\nwhile read l; do case \"$l\" in action=monitor) echo 'device unreachable' >&2; exit 1;; esac; done\nexit 0\n",
    )
    .expect("agent");
    std::fs::set_permissions(&broken, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    std::fs::write(
        &config,
        format!(
            "[cluster]\nname = \"it\"\ndata_dir = \"data\"\n[api]\nlisten = \"127.0.0.1:0\"\n\
             [[fence_device]]\nname = \"ipmi\"\nagent = \"fence_dummy\"\nmonitor = \"1s\"\n\
             [[fence_device]]\nname = \"broken\"\nagent = \"{}\"\n\
             [[fence_device]]\nname = \"script\"\ncommand = [\"true\"]\n",
            broken.display()
        ),
    )
    .expect("config");
    let _d = start(&config, &[]);
    let v = wait_for(&config, "the devices placed and checked", |v| {
        v["transition_running"] == false
            && resource(v, "ipmi")["state"] == "started"
            && !v["failed_actions"].as_array().is_some_and(Vec::is_empty)
    });
    assert!(
        resource(&v, "ipmi")["agent"]
            .as_str()
            .is_some_and(|a| a.ends_with("fence_dummy")),
        "{v}"
    );
    assert_eq!(resource(&v, "broken")["state"], "stopped", "{v}");
    let failed = &v["failed_actions"][0];
    assert_eq!(failed["resource"], "broken");
    assert!(
        failed["exit_reason"]
            .as_str()
            .is_some_and(|r| r.contains("device unreachable")),
        "{failed}"
    );
    // A command device has nothing to check: it is not placed.
    assert!(
        v["resources"]
            .as_array()
            .is_some_and(|r| r.iter().all(|r| r["id"] != "script")),
        "{v}"
    );
    // Its recurring check runs: a monitor of ipmi shows up in the history.
    std::thread::sleep(Duration::from_millis(2500));
    assert!(count_ops(&history(&config, "ipmi"), "monitor_1000") >= 1);
}

/// What a file says once something wrote it (up to 5 s), or "" if nothing did.
fn once_written(path: &Path) -> String {
    for _ in 0..50 {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if !text.is_empty() {
            return text;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    String::new()
}

#[test]
fn a_node_is_unfenced_by_the_agents_on_before_what_requires_it_starts_and_again_when_the_device_changes()
 {
    // fence_dummy keeps its "outlet" in a file: off to begin with. The device unfences, so
    // the process resource requires unfencing: the daemon runs the agent's `on` for this
    // node first (the file says on), then starts the process.
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("warden.toml");
    let outlet = dir.path().join("outlet");
    std::fs::write(&outlet, "off").expect("outlet");
    let started = dir.path().join("started");
    std::fs::write(
        &config,
        format!(
            "[cluster]\nname = \"it\"\ndata_dir = \"data\"\n[api]\nlisten = \"127.0.0.1:0\"\n\
             [[fence_device]]\nname = \"scsi\"\nagent = \"fence_dummy\"\nunfence = true\n\
             params = {{ status_file = \"{}\" }}\n\
             [[resource]]\nid = \"app\"\nclass = \"process\"\n\
             command = [\"sh\", \"-c\", \"cat {} > {}; exec sleep 1000\"]\n",
            outlet.display(),
            outlet.display(),
            started.display()
        ),
    )
    .expect("config");
    let _d = start(&config, &[]);
    wait_for(&config, "app started", |v| {
        v["transition_running"] == false && resource(v, "app")["state"] == "started"
    });
    assert_eq!(std::fs::read_to_string(&outlet).expect("outlet"), "on");
    // What the process saw when it started: the node was unfenced already.
    assert_eq!(once_written(&started), "on");

    // The device's parameters change (`type = "file"`, fence_dummy's default, so it behaves
    // the same): after the reload the node is unfenced again (the outlet, turned off by
    // hand, is on again), and the process, which requires unfencing, was stopped before and
    // started after that (it saw the outlet on).
    std::fs::write(&outlet, "off").expect("outlet off");
    std::fs::remove_file(&started).expect("started");
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        &config,
        text.replace("params = {", "params = { type = \"file\", "),
    )
    .expect("config");
    let (ok, out, err) = cli(&config, &["reload"]);
    assert!(ok, "{out}{err}");
    wait_for(&config, "app started again", |v| {
        v["transition_running"] == false
            && resource(v, "app")["state"] == "started"
            && started.exists()
    });
    assert_eq!(std::fs::read_to_string(&outlet).expect("outlet"), "on");
    assert_eq!(once_written(&started), "on");
}

#[test]
fn a_monitor_of_the_stopped_role_finds_a_service_started_behind_wardens_back() {
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("warden.toml");
    let state = dir.path().join("dummy.state");
    std::fs::write(
        &config,
        format!(
            "[cluster]\nname = \"it\"\ndata_dir = \"data\"\n[api]\nlisten = \"127.0.0.1:0\"\n\
             [[resource]]\nid = \"dummy\"\nclass = \"ocf\"\ntype = \"Dummy\"\n\
             params = {{ state = \"{}\" }}\nmeta = {{ target_role = \"stopped\" }}\n\
             ops = [{{ name = \"monitor\", interval = \"1s\", role = \"stopped\" }}]\n",
            state.display()
        ),
    )
    .expect("config");
    let _d = start(&config, &[]);
    wait_for(&config, "dummy probed, stopped", |v| {
        v["transition_running"] == false
            && resource(v, "dummy")["status"] == "dummy Stopped (disabled)"
    });
    // Someone starts it by hand (Dummy's state file): the next check finds it and Warden stops it.
    std::fs::write(&state, "").expect("start behind its back");
    let v = wait_for(&config, "found running and stopped", |v| {
        v["transition_running"] == false
            && !state.exists()
            && !v["failed_actions"].as_array().is_some_and(Vec::is_empty)
    });
    assert_eq!(v["failed_actions"][0]["op"], "monitor_1000", "{v}");
    assert_eq!(resource(&v, "dummy")["state"], "stopped", "{v}");
}

#[test]
fn a_clone_of_instances_runs_each_instance_with_its_number_and_commands_reach_them_all() {
    // clone_node_max 2 on a one-node cluster: both instances of "ip" run here, each a real
    // OCF agent with its own OCF_RESOURCE_INSTANCE (so its own state file); a ban of "ip"
    // stops both, a clear starts both again.
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("warden.toml");
    let rsctmp = dir.path().join("rsctmp");
    std::fs::create_dir_all(&rsctmp).expect("rsctmp");
    let log = dir.path().join("marker.log");
    std::fs::write(
        &config,
        format!(
            "[cluster]\nname = \"it\"\ndata_dir = \"data\"\n[api]\nlisten = \"127.0.0.1:0\"\n\
             [[resource]]\nid = \"ip\"\nclass = \"ocf\"\nprovider = \"warden-test\"\ntype = \"Marker\"\n\
             params = {{ log = \"{}\" }}\nclone = true\n\
             meta = {{ globally_unique = true, clone_max = 2, clone_node_max = 2 }}\n\
             ops = [{{ name = \"monitor\", interval = \"1s\" }}]\n",
            log.display()
        ),
    )
    .expect("config");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ocf");
    let root = root.to_str().expect("utf-8 path");
    let _d = start_env(
        &config,
        &["--ocf-root", root],
        &[("HA_RSCTMP", rsctmp.as_os_str())],
    );
    let both = |want: &'static str| {
        move |v: &Value| {
            v["transition_running"] == false
                && ["ip:0", "ip:1"].iter().all(|id| {
                    resource(v, id)["status"]
                        .as_str()
                        .is_some_and(|s| s.contains(want))
                })
        }
    };
    wait_for(&config, "both instances started", both("Started"));
    for n in 0..2 {
        assert!(
            rsctmp.join(format!("Marker-ip:{n}")).exists(),
            "instance {n} holds its own state"
        );
    }
    // Without a node: the one node where its instances run.
    let (ok, _, err) = cli(&config, &["resource", "ban", "ip"]);
    assert!(ok, "{err}");
    wait_for(&config, "both instances stopped", both("Stopped"));
    assert!(!rsctmp.join("Marker-ip:0").exists() && !rsctmp.join("Marker-ip:1").exists());
    let (ok, _, err) = cli(&config, &["resource", "clear", "ip"]);
    assert!(ok, "{err}");
    wait_for(&config, "both instances started again", both("Started"));
    let marks = std::fs::read_to_string(&log).expect("marker log");
    for id in ["ip:0", "ip:1"] {
        assert_eq!(
            marks
                .lines()
                .filter(|l| l.ends_with(&format!("start end {id}")))
                .count(),
            2,
            "{marks}"
        );
    }
}
