//! Several machines on etcd, for real: three network namespaces on a bridge, with addresses
//! that exist only inside them, a 3-member etcd cluster (one member per namespace, pre-vote,
//! heartbeat 50 ms, election 500 ms) and three Warden nodes. Runs as root (the test command
//! runs it so); everything is removed when a test ends.
//!
//! One resource, `db`, a promotable test agent (warden-test:Marker) that appends every
//! promote, demote, start and stop with its time and node to one log file: one event log on
//! one clock, so a test tells whether two nodes ever held the promoted copy at once.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The scenarios share the machine's two cores: one cluster at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run a command");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ip(args: &[&str]) {
    run(Command::new("ip").args(args));
}

struct Cluster {
    tag: String,
    dir: tempfile::TempDir,
    etcd: Vec<Option<Child>>,
    nodes: Vec<Option<Child>>,
    /// The shared event log of the Marker agent.
    log: PathBuf,
    /// Each node's OCF root.
    ocf_roots: Vec<PathBuf>,
}

const NODES: usize = 3;

/// The test agents (warden-test).
fn test_ocf() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ocf")
}

impl Cluster {
    fn ns(&self, i: usize) -> String {
        format!("{}n{i}", self.tag)
    }

    fn node_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("n{i}"))
    }

    fn config_path(&self, i: usize) -> PathBuf {
        self.node_dir(i).join("warden.toml")
    }

    /// The network, etcd and the three nodes, running `resources` (TOML) with `lease_ttl`.
    fn new(resources: &str, lease_ttl: &str) -> Cluster {
        Cluster::with_ocf_root(resources, lease_ttl, &test_ocf())
    }

    /// As `new`, with the OCF agents of `ocf_root`.
    fn with_ocf_root(resources: &str, lease_ttl: &str, ocf_root: &Path) -> Cluster {
        Cluster::with_ocf_roots(resources, lease_ttl, [ocf_root; NODES], "")
    }

    /// As `new`, each node with the OCF agents of its own root, and `cluster_keys` (TOML) in
    /// `[cluster]`.
    fn with_ocf_roots(
        resources: &str,
        lease_ttl: &str,
        ocf_roots: [&Path; NODES],
        cluster_keys: &str,
    ) -> Cluster {
        assert!(
            nix::unistd::geteuid().is_root(),
            "the cluster tests create network namespaces: run them as root (the test command does)"
        );
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let tag = format!(
            "w{}{}",
            std::process::id() % 100_000,
            N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("events.log");
        std::fs::write(&log, "").expect("log");
        let mut c = Cluster {
            tag,
            dir,
            etcd: (0..NODES).map(|_| None).collect(),
            nodes: (0..NODES).map(|_| None).collect(),
            log,
            ocf_roots: ocf_roots.iter().map(|r| r.to_path_buf()).collect(),
        };
        let bridge = format!("{}b", c.tag);
        ip(&["link", "add", &bridge, "type", "bridge"]);
        ip(&["link", "set", &bridge, "up"]);
        for i in 1..=NODES {
            let ns = c.ns(i);
            let (host, peer) = (format!("{}h{i}", c.tag), format!("{}p{i}", c.tag));
            ip(&["netns", "add", &ns]);
            ip(&["link", "add", &host, "type", "veth", "peer", "name", &peer]);
            ip(&["link", "set", &peer, "netns", &ns]);
            ip(&["link", "set", &host, "master", &bridge, "up"]);
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("10.77.0.{i}/24"),
                "dev",
                &peer,
            ]);
            ip(&["-n", &ns, "link", "set", &peer, "up"]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
        }
        for i in 1..=NODES {
            c.start_etcd(i);
        }
        let endpoints: Vec<String> = (1..=NODES)
            .map(|i| format!("\"http://10.77.0.{i}:2379\""))
            .collect();
        let nodes: String = (1..=NODES)
            .map(|i| format!("[[node]]\nname = \"n{i}\"\naddress = \"10.77.0.{i}\"\n"))
            .collect();
        let config = format!(
            "[cluster]\nname = \"test\"\ndata_dir = \"data\"\n{cluster_keys}[cluster.etcd]\nendpoints = [{}]\nlease_ttl = \"{lease_ttl}\"\n{nodes}{}",
            endpoints.join(", "),
            resources.replace("@LOG@", &c.log.display().to_string())
        );
        for i in 1..=NODES {
            std::fs::create_dir_all(c.node_dir(i).join("rsctmp")).expect("node dir");
            std::fs::write(c.config_path(i), &config).expect("config");
        }
        for i in 1..=NODES {
            c.start(i);
        }
        for i in 1..=NODES {
            c.wait(i, 60, "the node's API", |_| true);
        }
        c
    }

    fn start_etcd(&mut self, i: usize) {
        let cluster: Vec<String> = (1..=NODES)
            .map(|j| format!("e{j}=http://10.77.0.{j}:2380"))
            .collect();
        let out = std::fs::File::create(self.dir.path().join(format!("etcd{i}.log"))).expect("log");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(i), "etcd"])
            .args(["--name", &format!("e{i}")])
            .arg("--data-dir")
            .arg(self.dir.path().join(format!("etcd{i}")))
            .args(["--listen-client-urls", &format!("http://10.77.0.{i}:2379")])
            .args([
                "--advertise-client-urls",
                &format!("http://10.77.0.{i}:2379"),
            ])
            .args(["--listen-peer-urls", &format!("http://10.77.0.{i}:2380")])
            .args([
                "--initial-advertise-peer-urls",
                &format!("http://10.77.0.{i}:2380"),
            ])
            .args(["--initial-cluster", &cluster.join(",")])
            .args(["--initial-cluster-state", "new"])
            .args([
                "--heartbeat-interval",
                "50",
                "--election-timeout",
                "500",
                "--pre-vote",
            ])
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .expect("etcd (Debian's etcd-server) runs");
        self.etcd[i - 1] = Some(child);
    }

    /// Starts Warden on node `i`.
    fn start(&mut self, i: usize) {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.node_dir(i).join("warden.log"))
            .expect("log");
        let ocf = &self.ocf_roots[i - 1];
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns(i),
                env!("CARGO_BIN_EXE_warden"),
                "run",
            ])
            .arg("--config")
            .arg(self.config_path(i))
            .args(["--node", &format!("n{i}")])
            .arg("--ocf-root")
            .arg(ocf)
            .env("HA_RSCTMP", self.node_dir(i).join("rsctmp"))
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .expect("warden");
        self.nodes[i - 1] = Some(child);
    }

    /// The node dies as a machine does: Warden is killed and whatever it ran is gone (the
    /// Marker's state; the log notes the end of what it held).
    fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i - 1].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // Its addresses go with it (an IPaddr2 floating address).
        let _ = Command::new("ip")
            .args([
                "-n",
                &self.ns(i),
                "addr",
                "del",
                "10.77.0.100/24",
                "dev",
                &format!("{}p{i}", self.tag),
            ])
            .stderr(Stdio::null())
            .status();
        let state = self.node_dir(i).join("rsctmp/Marker-db");
        if state.exists() {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_nanos();
            let line = format!("{now} n{i} died end db\n");
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&self.log)
                .expect("log");
            std::io::Write::write_all(&mut f, line.as_bytes()).expect("log");
            std::fs::remove_file(state).expect("remove state");
        }
    }

    /// Cuts node `i` off from the others (its etcd member too): its link leaves the bridge
    /// and stays up, as in a partition behind a switch.
    fn partition(&self, i: usize) {
        ip(&["link", "set", &format!("{}h{i}", self.tag), "nomaster"]);
    }

    fn heal(&self, i: usize) {
        ip(&[
            "link",
            "set",
            &format!("{}h{i}", self.tag),
            "master",
            &format!("{}b", self.tag),
        ]);
    }

    fn cli(&self, i: usize, args: &[&str]) -> (bool, String) {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns(i), env!("CARGO_BIN_EXE_warden")])
            .args(args)
            .arg("--config")
            .arg(self.config_path(i))
            .output()
            .expect("warden cli");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    fn status(&self, i: usize) -> Option<Value> {
        let (ok, out) = self.cli(i, &["status", "--json"]);
        if !ok {
            return None;
        }
        serde_json::from_str(&out).ok()
    }

    /// Waits until node `i`'s status satisfies `cond`; panics with the last status and the
    /// logs after `secs`.
    fn wait(&self, i: usize, secs: u64, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut last = None;
        while Instant::now() < deadline {
            self.assert_running();
            if let Some(s) = self.status(i) {
                if cond(&s) {
                    return s;
                }
                last = Some(s);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "timed out waiting for {what} on n{i}; last status: {}\n{}",
            last.map(|s| s.to_string()).unwrap_or_default(),
            self.logs()
        );
    }

    /// Fails at once when a node's Warden exited on its own.
    fn assert_running(&self) {
        for (i, c) in self.nodes.iter().enumerate() {
            if let Some(c) = c {
                let mut probe = Command::new("kill");
                probe
                    .args(["-0", &c.id().to_string()])
                    .stderr(Stdio::null());
                let alive = probe.status().is_ok_and(|s| s.success())
                    && !std::fs::read_to_string(format!("/proc/{}/stat", c.id()))
                        .is_ok_and(|s| s.contains(") Z "));
                assert!(alive, "n{} exited\n{}", i + 1, self.logs());
            }
        }
    }

    fn logs(&self) -> String {
        let mut out = String::new();
        for i in 1..=NODES {
            let log =
                std::fs::read_to_string(self.node_dir(i).join("warden.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(400).collect();
            out.push_str(&format!("--- n{i} (last lines)\n"));
            for l in tail.into_iter().rev() {
                out.push_str(l);
                out.push('\n');
            }
        }
        out.push_str(&format!(
            "--- events\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        ));
        out
    }

    /// The node holding the promoted copy, per `status`.
    fn promoted_on(s: &Value) -> Option<String> {
        s["resources"]
            .as_array()?
            .iter()
            .find(|r| r["id"] == "db")?
            .get("promoted")?
            .as_array()?
            .first()?
            .as_str()
            .map(str::to_owned)
    }

    /// When each node held the promoted copy, from the event log: from a promote's begin to
    /// the end of the demote, stop or death that ended it.
    fn promoted_intervals(&self) -> Vec<(String, u128, u128)> {
        let text = std::fs::read_to_string(&self.log).expect("log");
        let mut open: std::collections::HashMap<String, u128> = Default::default();
        let mut out = Vec::new();
        for line in text.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            let [t, node, action, phase, "db"] = f[..] else {
                continue;
            };
            let Ok(t) = t.parse::<u128>() else { continue };
            match (action, phase) {
                ("promote", "begin") => {
                    open.entry(node.to_owned()).or_insert(t);
                }
                ("demote" | "stop" | "died", "end") => {
                    if let Some(from) = open.remove(node) {
                        out.push((node.to_owned(), from, t));
                    }
                }
                _ => {}
            }
        }
        for (node, from) in open {
            out.push((node, from, u128::MAX));
        }
        out
    }

    /// Asserts that no two nodes ever held the promoted copy at once.
    fn assert_no_overlap(&self) {
        let iv = self.promoted_intervals();
        for (i, a) in iv.iter().enumerate() {
            for b in &iv[i + 1..] {
                if a.0 != b.0 && a.1 < b.2 && b.1 < a.2 {
                    panic!(
                        "{} and {} held the promoted copy at once: {a:?} {b:?}\n{}",
                        a.0,
                        b.0,
                        self.logs()
                    );
                }
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in self.nodes.iter_mut().chain(self.etcd.iter_mut()).flatten() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for i in 1..=NODES {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.ns(i)])
                .status();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &format!("{}b", self.tag)])
            .status();
    }
}

const DB: &str = r#"
[[resource]]
id = "db"
class = "ocf"
provider = "warden-test"
type = "Marker"
promotable = true
params = { log = "@LOG@" }
meta = { promotion_score = 10 }
ops = [
  { name = "monitor", interval = "1s" },
  { name = "monitor", interval = "900ms", role = "promoted" },
  { name = "stop", timeout = "400ms" },
  { name = "demote", timeout = "400ms" },
]
"#;

/// A plain clone: a copy on every node.
const AGENTD: &str = r#"
[[resource]]
id = "agentd"
class = "process"
clone = true
command = ["sleep", "600"]
stop_timeout = "300ms"
"#;

/// The resource `id` of a status.
fn resource_of<'a>(s: &'a Value, id: &str) -> &'a Value {
    s["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["id"] == id)
        .unwrap_or(&Value::Null)
}

/// The nodes where `id` runs, from a status.
fn running_on(s: &Value, id: &str) -> Vec<String> {
    resource_of(s, id)["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_str().map(str::to_owned))
        .collect()
}

fn lock() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

#[test]
fn a_node_that_dies_is_replaced_and_status_shows_the_whole_cluster_from_any_node() {
    let _g = lock();
    let mut c = Cluster::new(&format!("{DB}{AGENTD}"), "3s");
    let s = c.wait(1, 60, "db promoted somewhere", |s| {
        Cluster::promoted_on(s).is_some() && !s["transition_running"].as_bool().unwrap_or(true)
    });
    let first = Cluster::promoted_on(&s).expect("promoted");
    // The clone runs a copy on each node.
    let s = c.wait(1, 30, "a copy of agentd on every node", |s| {
        running_on(s, "agentd").len() == NODES
    });
    assert_eq!(
        resource_of(&s, "agentd")["status"],
        "agentd Started [ n1 n2 n3 ]"
    );
    // Every node shows the same cluster.
    for i in 1..=NODES {
        let s = c.wait(i, 10, "the same view", |s| {
            Cluster::promoted_on(s).as_deref() == Some(first.as_str())
                && s["nodes"]
                    .as_array()
                    .is_some_and(|n| n.iter().all(|n| n["online"] == true))
        });
        assert_eq!(s["node"], format!("n{i}"));
    }
    // SIGHUP (systemctl reload, logrotate) reopens the log; it does not end the node.
    let n1 = c.nodes[0].as_ref().expect("n1 runs").id();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(n1 as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .expect("hup");
    c.wait(1, 10, "n1 answering after SIGHUP", |s| s["node"] == "n1");
    assert!(
        c.nodes[0]
            .as_mut()
            .expect("n1")
            .try_wait()
            .expect("wait")
            .is_none(),
        "SIGHUP ended the node"
    );
    let dead: usize = first[1..].parse().expect("node number");
    c.kill(dead);
    let other = if dead == 1 { 2 } else { 1 };
    let s = c.wait(other, 30, "db promoted on another node", |s| {
        Cluster::promoted_on(s).is_some_and(|n| n != first)
    });
    let offline: Vec<&str> = s["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter(|n| n["online"] == false)
        .filter_map(|n| n["name"].as_str())
        .collect();
    assert_eq!(offline, vec![first.as_str()], "{}", s["text"]);
    c.assert_no_overlap();
    // The lost node's copy is gone; the others stay where they are (one per node).
    let mut others: Vec<String> = (1..=NODES)
        .filter(|&i| i != dead)
        .map(|i| format!("n{i}"))
        .collect();
    others.sort();
    let s = c.wait(other, 30, "agentd on the two live nodes", |s| {
        running_on(s, "agentd") == others
    });
    assert_eq!(resource_of(&s, "agentd")["flags"], serde_json::json!([]));

    // It comes back: probed, joins as a backup, and runs its copy of the clone again.
    c.start(dead);
    c.wait(other, 30, "the node back online", all_online_and_settled);
    c.wait(other, 30, "agentd on every node again", |s| {
        running_on(s, "agentd").len() == NODES
    });
    c.assert_no_overlap();
}

#[test]
fn a_partitioned_node_demotes_itself_before_another_node_promotes() {
    let _g = lock();
    let c = Cluster::new(DB, "2s");
    let s = c.wait(1, 60, "db promoted somewhere", |s| {
        Cluster::promoted_on(s).is_some() && !s["transition_running"].as_bool().unwrap_or(true)
    });
    let first = Cluster::promoted_on(&s).expect("promoted");
    let cut: usize = first[1..].parse().expect("node number");
    c.partition(cut);
    let other = if cut == 1 { 2 } else { 1 };
    c.wait(other, 30, "db promoted on another node", |s| {
        Cluster::promoted_on(s).is_some_and(|n| n != first)
    });
    // The cut node gave the copy up on its own (no_quorum_policy = stop): the log shows its
    // stop before the other's promote.
    c.assert_no_overlap();
    let iv = c.promoted_intervals();
    let gave_up = iv
        .iter()
        .find(|(n, _, end)| *n == first && *end != u128::MAX)
        .map(|iv| iv.2);
    let promoted = iv.iter().filter(|(n, ..)| *n != first).map(|iv| iv.1).min();
    let (Some(gave_up), Some(promoted)) = (gave_up, promoted) else {
        panic!("the partitioned node never stopped: {iv:?}\n{}", c.logs());
    };
    eprintln!(
        "the cut node gave the copy up {} ms before another node promoted",
        (promoted.saturating_sub(gave_up)) / 1_000_000
    );
    c.heal(cut);
    c.wait(other, 30, "the node back", all_online_and_settled);
    c.assert_no_overlap();
}

#[test]
fn the_coordinator_can_die_and_commands_work_from_any_node() {
    let _g = lock();
    let mut c = Cluster::new(DB, "2s");
    c.wait(1, 60, "db promoted somewhere", |s| {
        Cluster::promoted_on(s).is_some() && !s["transition_running"].as_bool().unwrap_or(true)
    });
    // A command from one node, seen from another.
    let (ok, out) = c.cli(2, &["resource", "disable", "db"]);
    assert!(ok, "{out}");
    c.wait(3, 30, "db stopped everywhere", |s| {
        s["resources"][0]["nodes"]
            .as_array()
            .is_some_and(|n| n.is_empty())
    });
    // Kill the coordinator (whichever node it is), then enable from a survivor.
    let s = c.status(3).expect("status");
    // The node's link to etcd, as the console and /metrics show it.
    assert_eq!(
        (&s["lease_valid"], &s["etcd_connected"]),
        (&Value::Bool(true), &Value::Bool(true)),
        "{s}"
    );
    let coordinator: usize = s["coordinator"].as_str().expect("a coordinator")[1..]
        .parse()
        .expect("node number");
    c.kill(coordinator);
    let survivor = if coordinator == 1 { 2 } else { 1 };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (ok, out) = c.cli(survivor, &["resource", "enable", "db"]);
        if ok {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "enable never taken: {out}\n{}",
            c.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    c.wait(survivor, 30, "db promoted again", |s| {
        Cluster::promoted_on(s).is_some_and(|n| n != format!("n{coordinator}"))
    });
    c.assert_no_overlap();
    // A bad command names its field, from any node.
    let (ok, out) = c.cli(survivor, &["resource", "disable", "nope"]);
    assert!(!ok && out.contains("nope"), "{out}");
}

impl Cluster {
    /// The node that coordinates, per node `i`'s status.
    fn coordinator(&self, i: usize) -> usize {
        let s = self.wait(i, 30, "a coordinator", |s| s["coordinator"].is_string());
        s["coordinator"].as_str().expect("coordinator")[1..]
            .parse()
            .expect("node number")
    }

    /// Asks node `i`'s Warden to stop (SIGTERM) and waits until it has.
    fn stop(&mut self, i: usize) {
        let Some(mut c) = self.nodes[i - 1].take() else {
            return;
        };
        let pid = nix::unistd::Pid::from_raw(c.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if c.try_wait().expect("wait").is_some() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "n{i} did not stop\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The etcd member that leads, asked through etcd's JSON gateway from inside node 1.
    fn etcd_leader(&self) -> usize {
        let script = "import json,urllib.request,sys\n\
            for i in (1,2,3):\n\
            \x20 try:\n\
            \x20   r=json.load(urllib.request.urlopen(urllib.request.Request(f'http://10.77.0.{i}:2379/v3/maintenance/status',data=b'{}'),timeout=2))\n\
            \x20   if r.get('leader')==r['header']['member_id']: print(i); sys.exit(0)\n\
            \x20 except Exception: pass\n\
            sys.exit(1)\n";
        let out =
            run(Command::new("ip").args(["netns", "exec", &self.ns(1), "python3", "-c", script]));
        out.trim().parse().expect("leader number")
    }

    fn kill_etcd(&mut self, i: usize) {
        if let Some(mut c) = self.etcd[i - 1].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Lines of the event log for `resource`: (time, node, action, phase).
    fn events_of(&self, resource: &str) -> Vec<(u128, String, String, String)> {
        std::fs::read_to_string(&self.log)
            .expect("log")
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let [t, node, action, phase, r] = f[..] else {
                    return None;
                };
                (r == resource)
                    .then(|| {
                        (
                            t.parse().ok(),
                            node.to_owned(),
                            action.to_owned(),
                            phase.to_owned(),
                        )
                    })
                    .and_then(|(t, n, a, p)| Some((t?, n, a, p)))
            })
            .collect()
    }
}

fn all_online_and_settled(s: &Value) -> bool {
    s["nodes"]
        .as_array()
        .is_some_and(|n| n.iter().all(|n| n["online"] == true))
        && !s["transition_running"].as_bool().unwrap_or(true)
}

#[test]
fn the_etcd_leader_dies_and_the_service_stays() {
    let _g = lock();
    // The lease outlasts etcd's election (up to twice its 500 ms timeout) plus the stop time
    // (docs/cluster.md, "Choosing the TTL").
    let mut c = Cluster::new(DB, "3s");
    let s = c.wait(1, 60, "db promoted and settled", |s| {
        Cluster::promoted_on(s).is_some() && all_online_and_settled(s)
    });
    let holder = Cluster::promoted_on(&s).expect("promoted");
    let leader = c.etcd_leader();
    c.kill_etcd(leader);
    // etcd elects a new leader (pre-vote, 500 ms election): no node loses its lease, nothing moves.
    std::thread::sleep(Duration::from_secs(5));
    let other = if leader == 1 { 2 } else { 1 };
    let s = c.wait(other, 30, "db still promoted", |s| {
        Cluster::promoted_on(s).is_some()
    });
    assert_eq!(
        Cluster::promoted_on(&s).as_deref(),
        Some(holder.as_str()),
        "the promoted copy moved when the etcd leader died\n{}",
        c.logs()
    );
    c.assert_no_overlap();
    // The member comes back (its data dir is intact) and the cluster is whole again.
    c.start_etcd(leader);
    c.wait(other, 30, "everything online", all_online_and_settled);
    c.assert_no_overlap();
}

#[test]
fn a_rolling_restart_keeps_the_service_up() {
    let _g = lock();
    let mut c = Cluster::new(DB, "2s");
    c.wait(1, 60, "db promoted and settled", |s| {
        Cluster::promoted_on(s).is_some() && all_online_and_settled(s)
    });
    let began = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    for i in 1..=NODES {
        let watcher = if i == 1 { 2 } else { 1 };
        c.stop(i);
        c.wait(watcher, 30, "db promoted elsewhere", |s| {
            Cluster::promoted_on(s).is_some_and(|n| n != format!("n{i}"))
        });
        c.start(i);
        c.wait(watcher, 30, "the node back", all_online_and_settled);
    }
    c.assert_no_overlap();
    // Up throughout: between one holder and the next, never more than a few seconds.
    let mut iv: Vec<(u128, u128)> = c
        .promoted_intervals()
        .into_iter()
        .filter(|(_, _, end)| *end > began)
        .map(|(_, from, to)| (from, to))
        .collect();
    iv.sort();
    for w in iv.windows(2) {
        let gap_ms = w[1].0.saturating_sub(w[0].1) / 1_000_000;
        assert!(
            gap_ms < 5_000,
            "no promoted copy for {gap_ms} ms\n{}",
            c.logs()
        );
    }
}

#[test]
fn a_coordinator_killed_mid_transition_is_continued_without_a_second_start() {
    let _g = lock();
    let slow = format!(
        "{DB}\n[[resource]]\nid = \"slow\"\nclass = \"ocf\"\nprovider = \"warden-test\"\ntype = \"Marker\"\nparams = {{ log = \"@LOG@\", start_delay = \"3\" }}\nops = [{{ name = \"start\", timeout = \"20s\" }}, {{ name = \"stop\", timeout = \"400ms\" }}]\n"
    );
    let mut c = Cluster::new(&slow, "2s");
    let s = c.wait(1, 60, "slow started", |s| {
        all_online_and_settled(s)
            && s["resources"].as_array().is_some_and(|r| {
                r.iter().any(|r| {
                    r["id"] == "slow" && r["nodes"].as_array().is_some_and(|n| n.len() == 1)
                })
            })
    });
    let on: usize = s["resources"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["id"] == "slow"))
        .and_then(|r| r["nodes"][0].as_str())
        .expect("slow's node")[1..]
        .parse()
        .expect("node number");
    let coordinator = c.coordinator(1);
    let target = (1..=NODES)
        .find(|&n| n != on && n != coordinator)
        .expect("a third node");
    let (ok, out) = c.cli(target, &["resource", "move", "slow", &format!("n{target}")]);
    assert!(ok, "{out}");
    // Kill the coordinator while the start on the target runs (it takes 3 s).
    let deadline = Instant::now() + Duration::from_secs(30);
    while !c
        .events_of("slow")
        .iter()
        .any(|(_, n, a, p)| *n == format!("n{target}") && a == "start" && p == "begin")
    {
        assert!(
            Instant::now() < deadline,
            "the move never started\n{}",
            c.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    c.kill(coordinator);
    let survivor = if coordinator == target { on } else { target };
    c.wait(survivor, 30, "slow started on the target", |s| {
        s["resources"].as_array().is_some_and(|r| {
            r.iter().any(|r| {
                r["id"] == "slow" && r["nodes"] == serde_json::json!([format!("n{target}")])
            })
        }) && !s["transition_running"].as_bool().unwrap_or(true)
    });
    let starts = c
        .events_of("slow")
        .iter()
        .filter(|(_, n, a, p)| *n == format!("n{target}") && a == "start" && p == "begin")
        .count();
    assert_eq!(
        starts,
        1,
        "the new coordinator started slow again\n{}",
        c.logs()
    );
    // (Logs to a file carry no terminal colour codes.)
    assert!(!c.logs().contains('\u{1b}'), "colour codes in a log file");
    let log = std::fs::read_to_string(c.node_dir(survivor).join("warden.log")).unwrap_or_default();
    let new_coordinator = c.coordinator(survivor);
    let log_c =
        std::fs::read_to_string(c.node_dir(new_coordinator).join("warden.log")).unwrap_or_default();
    assert!(
        log_c.contains("pending=1") || log.contains("pending=1"),
        "the new coordinator did not wait for the running start\n{}",
        c.logs()
    );
}

#[test]
fn a_node_that_briefly_cannot_renew_stops_its_copies_then_runs_them_again() {
    let _g = lock();
    let c = Cluster::new(DB, "2s");
    let three = |s: &Value| {
        all_online_and_settled(s)
            && Cluster::promoted_on(s).is_some()
            && s["resources"][0]["nodes"]
                .as_array()
                .is_some_and(|n| n.len() == 3)
    };
    let s = c.wait(1, 60, "three copies, one promoted", three);
    let holder = Cluster::promoted_on(&s).expect("promoted");
    let coordinator = c.coordinator(1);
    let cut = (1..=NODES)
        .find(|&i| i != coordinator && format!("n{i}") != holder)
        .expect("a plain node");
    // Cut until the node stops its copy (no keepalive acknowledged for TTL minus its stop
    // time and margin), then heal at once: etcd may still hold its lease.
    c.partition(cut);
    let deadline = Instant::now() + Duration::from_secs(5);
    let stopped = || {
        std::fs::read_to_string(c.node_dir(cut).join("warden.log"))
            .unwrap_or_default()
            .contains("stopped what ran here")
    };
    while !stopped() {
        assert!(
            Instant::now() < deadline,
            "the cut node did not stop its copy\n{}",
            c.logs()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    c.heal(cut);
    assert!(
        !c.node_dir(cut).join("rsctmp/Marker-db").exists(),
        "the copy still runs"
    );
    // Whether its lease survived or not, the coordinator learns and the copy runs again,
    // for real (the status alone could be stale: the copy's own state says).
    let deadline = Instant::now() + Duration::from_secs(30);
    while !c.node_dir(cut).join("rsctmp/Marker-db").exists() {
        assert!(
            Instant::now() < deadline,
            "the cut node's copy never ran again\n{}",
            c.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    c.wait(coordinator, 30, "three copies again", three);
    c.assert_no_overlap();
}

impl Cluster {
    /// The node whose namespace holds `addr`.
    fn holder_of(&self, addr: &str) -> Option<usize> {
        (1..=NODES).find(|&i| {
            let out = Command::new("ip")
                .args(["-n", &self.ns(i), "-o", "addr", "show"])
                .output()
                .expect("ip addr");
            String::from_utf8_lossy(&out.stdout).contains(&format!("inet {addr}/"))
        })
    }
}

/// A floating address (the ClusterLabs IPaddr2 agent, unchanged) lives with the promoted copy,
/// and an upstream follows it: its primary is the peer of the node where db is promoted.
const FLOATING: &str = r#"
[[resource]]
id = "vip"
class = "ocf"
provider = "heartbeat"
type = "IPaddr2"
params = { ip = "10.77.0.100", cidr_netmask = "24" }
ops = [{ name = "monitor", interval = "1s" }, { name = "stop", timeout = "300ms" }]
[[colocation]]
resource = "vip"
with = "db"
with_role = "promoted"
[[order]]
first = "db"
first_action = "promote"
then = "vip"
[[upstream]]
name = "pg"
from_resource = "db"
nodes = { n1 = "10.77.0.1:2379", n2 = "10.77.0.2:2379", n3 = "10.77.0.3:2379" }
check = { type = "tcp", interval = "200ms", fall = 1, rise = 1 }
"#;

#[test]
fn a_floating_address_and_an_upstream_follow_the_promoted_copy() {
    let _g = lock();
    let ocf = test_ocf();
    // IPaddr2 comes from resource-agents: the test's OCF root holds warden-test only.
    let root = tempfile::tempdir().expect("root");
    std::fs::create_dir_all(root.path().join("resource.d")).expect("dir");
    std::os::unix::fs::symlink(
        ocf.join("resource.d/warden-test"),
        root.path().join("resource.d/warden-test"),
    )
    .expect("link");
    std::os::unix::fs::symlink(
        "/usr/lib/ocf/resource.d/heartbeat",
        root.path().join("resource.d/heartbeat"),
    )
    .expect("link");
    std::os::unix::fs::symlink("/usr/lib/ocf/lib", root.path().join("lib")).expect("link");
    let mut c = Cluster::with_ocf_root(&format!("{DB}{FLOATING}"), "3s", root.path());
    let s = c.wait(1, 60, "db promoted and vip up", |s| {
        all_online_and_settled(s)
            && s["resources"].as_array().is_some_and(|r| {
                r.iter().any(|r| {
                    r["id"] == "vip" && r["nodes"].as_array().is_some_and(|n| n.len() == 1)
                })
            })
    });
    let holder = Cluster::promoted_on(&s).expect("promoted");
    let h: usize = holder[1..].parse().expect("number");
    assert_eq!(c.holder_of("10.77.0.100"), Some(h), "{}", c.logs());
    let primary = |c: &Cluster, i: usize| -> Option<String> {
        let (ok, out) = c.cli(i, &["upstream", "status", "--json"]);
        let v: Value = serde_json::from_str(&out).ok().filter(|_| ok)?;
        v[0]["peers"]
            .as_array()?
            .iter()
            .find(|p| p["role"] == "primary")
            .and_then(|p| p["addr"].as_str().map(str::to_owned))
    };
    let other = if h == 1 { 2 } else { 1 };
    let deadline = Instant::now() + Duration::from_secs(20);
    while primary(&c, other) != Some(format!("10.77.0.{h}:2379")) {
        assert!(
            Instant::now() < deadline,
            "the upstream does not follow db: {:?}",
            primary(&c, other)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    c.kill(h);
    let s = c.wait(other, 30, "db promoted and vip up elsewhere", |s| {
        Cluster::promoted_on(s).is_some_and(|n| n != holder)
            && s["resources"].as_array().is_some_and(|r| {
                r.iter().any(|r| {
                    r["id"] == "vip"
                        && r["nodes"]
                            .as_array()
                            .is_some_and(|n| n.len() == 1 && n[0] != holder.as_str())
                })
            })
    });
    let new: usize = Cluster::promoted_on(&s).expect("promoted")[1..]
        .parse()
        .expect("number");
    assert!(
        Command::new("ip")
            .args(["-n", &c.ns(new), "-o", "addr", "show"])
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("inet 10.77.0.100/")),
        "{}",
        c.logs()
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while primary(&c, other) != Some(format!("10.77.0.{new}:2379")) {
        assert!(
            Instant::now() < deadline,
            "the upstream did not follow db: {:?}",
            primary(&c, other)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn config_push_changes_every_node_live_and_refuses_a_bad_file() {
    let _g = lock();
    let c = Cluster::new(DB, "2s");
    c.wait(1, 60, "db promoted and settled", |s| {
        Cluster::promoted_on(s).is_some() && all_online_and_settled(s)
    });
    let push = |file: &Path| {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &c.ns(3),
                env!("CARGO_BIN_EXE_warden"),
                "config",
                "push",
            ])
            .arg(file)
            .output()
            .expect("warden config push");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let base = std::fs::read_to_string(c.config_path(3)).expect("config");
    let extra = format!(
        "{base}\n[[resource]]\nid = \"extra\"\nclass = \"ocf\"\nprovider = \"warden-test\"\ntype = \"Marker\"\nparams = {{ log = \"{}\" }}\nops = [{{ name = \"stop\", timeout = \"300ms\" }}]\n\
         [[upstream]]\nname = \"u\"\nprimary = [\"10.77.0.1:2379\"]\ncheck = {{ type = \"tcp\", interval = \"200ms\" }}\n",
        c.log.display()
    );
    let file = c.dir.path().join("pushed.toml");
    std::fs::write(&file, &extra).expect("write");
    let (ok, out) = push(&file);
    assert!(ok && out.contains("stored in etcd"), "{out}");
    // Every node runs it: the new resource starts, the new upstream is checked everywhere.
    c.wait(1, 30, "extra started", |s| {
        s["resources"].as_array().is_some_and(|r| {
            r.iter()
                .any(|r| r["id"] == "extra" && r["nodes"].as_array().is_some_and(|n| n.len() == 1))
        })
    });
    for i in 1..=NODES {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (ok, out) = c.cli(i, &["upstream", "status", "--json"]);
            if ok && out.contains("\"u\"") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "n{i} does not check the new upstream: {out}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    // Any node shows every node's upstreams (published through etcd).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (ok, out) = c.cli(2, &["upstream", "status", "--cluster"]);
        let v: Value = serde_json::from_str(&out).unwrap_or_default();
        let checks_u = |n: &str| {
            v["nodes"][n]["upstreams"]
                .as_array()
                .is_some_and(|u| u.iter().any(|u| u["name"] == "u"))
        };
        if ok && v["node"] == "n2" && (1..=NODES).all(|i| checks_u(&format!("n{i}"))) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "n2 does not show every node's upstreams: {out}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // A file with an error is refused where it is pushed, with its place; nothing changes.
    std::fs::write(
        &file,
        format!("{extra}\n[[resource]]\nid = \"bad\"\nclass = \"ocf\"\n"),
    )
    .expect("write");
    let (ok, out) = push(&file);
    assert!(
        !ok && out.contains("pushed.toml:") && out.contains("error:"),
        "{out}"
    );
    // Back to the first file: extra is stopped and forgotten.
    std::fs::write(&file, &base).expect("write");
    let (ok, out) = push(&file);
    assert!(ok, "{out}");
    // Gone from the file, it is stopped as an orphan, then forgotten.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !c
        .events_of("extra")
        .last()
        .is_some_and(|(_, _, a, p)| a == "stop" && p == "end")
    {
        assert!(
            Instant::now() < deadline,
            "extra was not stopped: {:?}\n{}",
            c.events_of("extra"),
            c.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    c.wait(2, 30, "extra gone", |s| {
        s["resources"]
            .as_array()
            .is_some_and(|r| r.iter().all(|r| r["id"] != "extra"))
    });
}

#[test]
fn with_etcd_down_every_node_stops_its_resources_keeps_answering_and_recovers() {
    let _g = lock();
    let mut c = Cluster::new(DB, "2s");
    c.wait(1, 60, "db promoted and settled", |s| {
        Cluster::promoted_on(s).is_some() && all_online_and_settled(s)
    });
    for i in 1..=NODES {
        c.kill_etcd(i);
    }
    // Each node gives everything up before its lease could expire, and still answers.
    let deadline = Instant::now() + Duration::from_secs(20);
    while (1..=NODES).any(|i| c.node_dir(i).join("rsctmp/Marker-db").exists()) {
        assert!(
            Instant::now() < deadline,
            "a copy still runs without etcd\n{}",
            c.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for i in 1..=NODES {
        c.wait(i, 20, "a status that says etcd is unreachable", |s| {
            let w = s["warnings"].to_string();
            w.contains("etcd unreachable") && w.contains("no valid etcd lease")
        });
    }
    // etcd comes back (data intact): the nodes join again and the service runs again.
    for i in 1..=NODES {
        c.start_etcd(i);
    }
    // The status follows what runs: the copy the status calls promoted really runs.
    let runs = |s: &Value| {
        Cluster::promoted_on(s).is_some_and(|h| {
            c.node_dir(h[1..].parse().expect("number"))
                .join("rsctmp/Marker-db")
                .exists()
        }) && all_online_and_settled(s)
            && s["warnings"].as_array().is_some_and(|w| w.is_empty())
    };
    c.wait(1, 60, "db promoted again", runs);
    c.assert_no_overlap();
}

#[test]
fn the_coordinator_fences_a_lost_node_before_recovering_its_resources() {
    let _g = lock();
    // A fence device that notes whom it fenced, and when, in the shared event log.
    let dir = tempfile::tempdir().expect("dir");
    let device = dir.path().join("fence-log");
    std::fs::write(
        &device,
        "#!/bin/sh\n# the node to fence is the last argument\nfor n; do :; done\necho \"$(date +%s%N) $n fenced end db\" >> \"$1\"\n",
    )
    .expect("device");
    std::fs::set_permissions(&device, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    // First a real fence agent (Debian's fence-agents) whose outlet never powers off: the
    // coordinator must hand over to the next device.
    let fencing = format!(
        "{DB}\n[[fence_device]]\nname = \"stuck-pdu\"\nagent = \"fence_dummy\"\nparams = {{ type = \"fail\", power_timeout = 1 }}\n[[fence_device]]\nname = \"logger\"\ncommand = [\"{}\", \"@LOG@\"]\n",
        device.display()
    );
    let mut c = Cluster::new(&fencing, "2s");
    let s = c.wait(1, 60, "db promoted and settled", |s| {
        Cluster::promoted_on(s).is_some() && all_online_and_settled(s)
    });
    let first = Cluster::promoted_on(&s).expect("promoted");
    let dead: usize = first[1..].parse().expect("number");
    c.kill(dead);
    let other = if dead == 1 { 2 } else { 1 };
    c.wait(other, 30, "db promoted elsewhere", |s| {
        Cluster::promoted_on(s).is_some_and(|n| n != first)
    });
    let events = c.events_of("db");
    let fenced = events
        .iter()
        .find(|(_, n, a, _)| *n == first && a == "fenced")
        .map(|e| e.0);
    let promoted = events
        .iter()
        .filter(|(_, n, a, p)| *n != first && a == "promote" && p == "begin")
        .map(|e| e.0)
        .next_back();
    match (fenced, promoted) {
        (Some(f), Some(p)) => assert!(f < p, "promoted before the fence\n{}", c.logs()),
        _ => panic!(
            "no fence of {first} before the promote: {events:?}\n{}",
            c.logs()
        ),
    }
    let logs = c.logs();
    assert!(
        logs.lines()
            .any(|l| l.contains("fence device failed") && l.contains("stuck-pdu")),
        "the fence agent was not tried first\n{logs}"
    );
    c.assert_no_overlap();
}

#[test]
fn a_move_of_a_migratable_resource_is_a_live_migration_across_nodes() {
    let _g = lock();
    let vm = r#"
[[resource]]
id = "vm"
class = "ocf"
provider = "warden-test"
type = "Marker"
params = { log = "@LOG@" }
meta = { allow_migrate = true }
ops = [{ name = "monitor", interval = "1s" }, { name = "stop", timeout = "400ms" }]
"#;
    let c = Cluster::new(vm, "3s");
    let s = c.wait(1, 60, "vm started", |s| {
        all_online_and_settled(s) && running_on(s, "vm").len() == 1
    });
    let from = running_on(&s, "vm")[0].clone();
    let to = (1..=NODES)
        .map(|i| format!("n{i}"))
        .find(|n| *n != from)
        .expect("another node");
    let (ok, out) = c.cli(1, &["resource", "move", "vm", &to]);
    assert!(ok, "{out}");
    c.wait(1, 30, "vm on the target", |s| {
        all_online_and_settled(s) && running_on(s, "vm") == [to.clone()]
    });
    // migrate_to where it ran (told the target), migrate_from where it went (told the source),
    // then the stop where it was, in that order; no start on the target.
    let events: Vec<(String, String)> = c
        .events_of("vm")
        .into_iter()
        .filter(|(_, _, _, p)| p == "end")
        .map(|(_, n, a, _)| (n, a))
        .collect();
    let after_first_start = events
        .iter()
        .position(|(n, a)| *n == from && a == "start")
        .expect("the first start");
    assert_eq!(
        events[after_first_start + 1..],
        [
            (from.clone(), format!("migrate_to:{to}")),
            (to.clone(), format!("migrate_from:{from}")),
            (from.clone(), "stop".to_owned()),
        ],
        "{}",
        c.logs()
    );
}

#[test]
fn an_agent_missing_on_one_node_is_recovered_elsewhere_whatever_on_fail_says() {
    // The agent is installed on n1 and n3, not on n2, where the resource prefers to run and is
    // never probed (`resource_discovery = "never"`). Its start there fails with the executor's
    // "not installed", which `on_fail = "ignore"` cannot ignore: the result crosses etcd with
    // its execution status and the coordinator starts it on another node. Before, the failure
    // was ignored like an agent's own rc 5: "Started" on n2, where nothing ran.
    let _g = lock();
    let ocf = test_ocf();
    let empty = tempfile::tempdir().expect("dir");
    std::fs::create_dir_all(empty.path().join("resource.d/warden-test")).expect("dir");
    let vm = r#"
[[resource]]
id = "vm"
class = "ocf"
provider = "warden-test"
type = "Marker"
params = { log = "@LOG@" }
ops = [
  { name = "start", on_fail = "ignore" },
  { name = "monitor", interval = "1s", on_fail = "ignore" },
  { name = "stop", timeout = "400ms" },
]

[[location]]
resource = "vm"
node = "n2"
score = 100
resource_discovery = "never"
"#;
    let c = Cluster::with_ocf_roots(vm, "3s", [&ocf, empty.path(), &ocf], "");
    let s = c.wait(1, 60, "vm started on a node with the agent", |s| {
        all_online_and_settled(s) && running_on(s, "vm").len() == 1 && running_on(s, "vm") != ["n2"]
    });
    let failed = s["failed_actions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["resource"] == "vm" && f["node"] == "n2")
        .unwrap_or_else(|| panic!("the start on n2 is a failed action: {s}"));
    assert_eq!(failed["op"], "start_0", "{s}");
    assert_eq!(failed["rc"], 5, "{s}");
    let on = running_on(&s, "vm")[0].clone();
    assert!(
        c.events_of("vm")
            .iter()
            .any(|(_, n, a, p)| *n == on && a == "start" && p == "end"),
        "{}",
        c.logs()
    );
}

#[test]
fn with_a_shutdown_lock_what_ran_on_a_node_stopped_cleanly_waits_for_it() {
    // `shutdown_lock = true`: n2's daemon is stopped (a planned reboot); what ran there stops
    // and stays stopped, LOCKED to n2, instead of moving; when n2 is back it starts there.
    let _g = lock();
    let ocf = test_ocf();
    let vm = r#"
[[resource]]
id = "vm"
class = "ocf"
provider = "warden-test"
type = "Marker"
params = { log = "@LOG@" }
ops = [{ name = "monitor", interval = "1s" }, { name = "stop", timeout = "400ms" }]

[[location]]
resource = "vm"
node = "n2"
score = 100
"#;
    let mut c = Cluster::with_ocf_roots(vm, "3s", [&ocf; NODES], "shutdown_lock = true\n");
    c.wait(1, 60, "vm on n2", |s| {
        all_online_and_settled(s) && running_on(s, "vm") == ["n2"]
    });
    c.stop(2);
    let s = c.wait(1, 30, "vm stopped and locked", |s| {
        !s["transition_running"].as_bool().unwrap_or(true)
            && running_on(s, "vm").is_empty()
            && resource_of(s, "vm")["status"]
                .as_str()
                .is_some_and(|st| st.contains("LOCKED"))
    });
    assert_eq!(resource_of(&s, "vm")["locked_to"], "n2", "{s}");
    // It stays so (the coordinator has nothing left to do for it).
    std::thread::sleep(Duration::from_secs(3));
    let later = c.wait(1, 30, "settled", |s| {
        !s["transition_running"].as_bool().unwrap_or(true)
    });
    assert!(running_on(&later, "vm").is_empty(), "{later}\n{s}");
    assert!(
        !c.events_of("vm")
            .iter()
            .any(|(_, n, a, p)| n != "n2" && a == "start" && p == "end"),
        "{}",
        c.logs()
    );
    c.start(2);
    let s = c.wait(1, 60, "vm back on n2", |s| {
        all_online_and_settled(s) && running_on(s, "vm") == ["n2"]
    });
    assert!(
        !resource_of(&s, "vm")["status"]
            .as_str()
            .is_some_and(|st| st.contains("LOCKED"))
            && resource_of(&s, "vm")["locked_to"].is_null(),
        "{s}"
    );
}
