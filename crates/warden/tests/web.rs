//! The web console at `/`, end to end in a real browser: the daemon runs a supervised process
//! and checks an HTTP peer; tests/web/console.mjs drives Debian's headless Chromium (through
//! playwright-core, installed by scripts/test.sh) against it: the resource shown, a `kill -9`
//! shown as a failure and a restart without a reload, a cleanup refused without the token and
//! done with it, a peer drained, a peer going DOWN drawn red, the page no wider than a phone.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        if nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).is_ok() {
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.0.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An HTTP peer that answers 200 until someone asks for `/break`, then 500.
fn peer() -> (u16, Arc<AtomicBool>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let broken = Arc::new(AtomicBool::new(false));
    let b = Arc::clone(&broken);
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            let mut buf = [0u8; 1024];
            let n = s.read(&mut buf).unwrap_or(0);
            let answer: &[u8] = if buf[..n].starts_with(b"GET /break ") {
                b.store(true, Ordering::SeqCst);
                b"HTTP/1.0 200 OK\r\nContent-Length: 6\r\n\r\nbroken"
            } else if b.load(Ordering::SeqCst) {
                b"HTTP/1.0 500 Broken\r\nContent-Length: 0\r\n\r\n"
            } else {
                b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"
            };
            let _ = s.write_all(answer);
        }
    });
    (port, broken)
}

fn tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/web")
}

fn wait_for_file(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(s) = std::fs::read_to_string(path) {
            if !s.trim().is_empty() {
                return s.trim().to_owned();
            }
        }
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_console_in_a_real_browser() {
    let modules = tests_dir().join("node_modules/playwright-core");
    assert!(
        modules.exists() && Path::new("/usr/bin/chromium").exists(),
        "the browser test needs Debian's chromium and playwright-core: bash scripts/test.sh \
         installs both (apt-get install chromium; npm ci --prefix {})",
        tests_dir().display()
    );
    let (port, broken) = peer();
    let front = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("warden.toml");
    std::fs::write(
        &config,
        format!(
            r#"[cluster]
name = "console"
data_dir = "data"

[api]
listen = "127.0.0.1:0"

[[resource]]
id = "web"
class = "process"
command = ["sleep", "1000"]
stop_timeout = "2s"
ops = [{{ name = "monitor", interval = "1s" }}]

[[upstream]]
name = "app"
primary = ["127.0.0.1:{port}"]

[upstream.check]
type = "http"
path = "/health"
interval = "200ms"
timeout = "1s"
fall = 2
rise = 2
valid_statuses = [200]

[[listener]]
name = "site"
listen = "127.0.0.1:{front}"
upstream = "app"
protocol = "http"
"#
        ),
    )
    .expect("config");
    let log = dir.path().join("daemon.log");
    let child = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["run", "--config"])
        .arg(&config)
        .arg("--log-output")
        .arg(&log)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start warden run");
    let _daemon = Daemon(child);
    let data = dir.path().join("data");
    let addr = wait_for_file(&data.join("api.addr"));
    let token = wait_for_file(&data.join("api.token"));
    let screenshot = std::env::var_os("WARDEN_CONSOLE_SCREENSHOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.path().join("console.png"));
    let out = Command::new("node")
        .arg(tests_dir().join("console.mjs"))
        .current_dir(tests_dir())
        .env("URL", format!("http://{addr}/"))
        .env("TOKEN", &token)
        .env("PIDFILE", data.join("run/web.pid"))
        .env("PEER", format!("127.0.0.1:{port}"))
        .env("BREAK", format!("http://127.0.0.1:{port}/break"))
        .env("SCREENSHOT", &screenshot)
        .output()
        .expect("run node (Debian's nodejs)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the browser run failed:\n{stdout}\n{stderr}\ndaemon log:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert!(stdout.contains("ok: every step passed"), "{stdout}");
    assert!(
        broken.load(Ordering::SeqCst),
        "the page's run broke the peer"
    );
    let png = std::fs::read(&screenshot).expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
}
