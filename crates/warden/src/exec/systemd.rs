//! systemd units as resources (`class = "systemd"`, Pacemaker's `systemd:` class) and the
//! daemon's own unit, through systemd's D-Bus API.
//!
//! As Pacemaker does, a unit Warden manages gets a drop-in (`50-warden.conf` under
//! `/run/systemd/system/UNIT.d/`, gone at reboot) with `Restart=no`, so that systemd does not
//! restart it behind Warden's back (a failure is Warden's to handle, by `on_fail`), and
//! `Before=warden.service`, so that at shutdown systemd stops Warden (which stops the unit in
//! order) before it would stop the unit itself.
//!
//! As root, the connection is systemd's own socket (`/run/systemd/private`, as `systemctl`
//! does), so no D-Bus daemon is needed; else the system bus.

use std::path::Path;
use std::time::Duration;

use tokio::time::Instant;
use warden_engine::rc::{self, ExecStatus};
use warden_engine::{OpKey, OpName};

use super::AgentResult;
use crate::dbus::{Arg, Conn, Value};

/// Present exactly when systemd is the init system (`sd_booted()`).
pub const RUNTIME_UNITS: &str = "/run/systemd/system";
const PRIVATE_SOCKET: &str = "/run/systemd/private";
const DEST: &str = "org.freedesktop.systemd1";
const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
const UNIT: &str = "org.freedesktop.systemd1.Unit";
const SERVICE: &str = "org.freedesktop.systemd1.Service";
const JOB: &str = "org.freedesktop.systemd1.Job";
const PROPERTIES: &str = "org.freedesktop.DBus.Properties";
const SYSTEM_BUS: &str = "/run/dbus/system_bus_socket";
/// How often a unit's job is looked at while an operation waits for it.
const POLL: Duration = Duration::from_millis(50);

/// systemd is this machine's init system.
pub fn booted() -> bool {
    Path::new(RUNTIME_UNITS).is_dir()
}

/// Why `class = "systemd"` cannot run here, when it cannot.
pub fn unavailable() -> Option<String> {
    (!booted()).then(|| {
        format!("systemd is not this machine's init system (no {RUNTIME_UNITS}): class \"systemd\" resources cannot run here")
    })
}

/// The unit a `type` names: `nginx` is `nginx.service`; a name with a suffix stays as it is.
pub fn unit_name(kind: &str) -> String {
    if kind.contains('.') {
        kind.to_owned()
    } else {
        format!("{kind}.service")
    }
}

/// A unit name systemd could have: letters, digits and `:-_.\@`, with a type suffix.
pub fn valid_unit_name(unit: &str) -> bool {
    let Some((stem, suffix)) = unit.rsplit_once('.') else {
        return false;
    };
    !stem.is_empty()
        && unit.len() <= 255
        && [
            "service", "socket", "target", "mount", "timer", "path", "scope", "slice",
        ]
        .contains(&suffix)
        && unit
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ":-_.\\@".contains(c))
}

/// A connection to systemd's manager.
#[derive(Debug)]
pub struct Systemd {
    conn: Conn,
}

/// A unit's state as systemd reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitState {
    pub load: String,
    pub active: String,
    pub sub: String,
    /// The type of the job (start, stop, restart, ...) queued or running for it.
    pub job: Option<String>,
}

fn one(values: Vec<Value>, what: &str) -> Result<Value, String> {
    values
        .into_iter()
        .next()
        .ok_or_else(|| format!("{what}: an empty reply"))
}

fn text(v: Value, what: &str) -> Result<String, String> {
    match v {
        Value::Str(s) => Ok(s),
        other => Err(format!("{what}: unexpected reply {other:?}")),
    }
}

impl Systemd {
    pub async fn connect() -> Result<Systemd, String> {
        if let Some(why) = unavailable() {
            return Err(why);
        }
        if nix::unistd::Uid::effective().is_root() && Path::new(PRIVATE_SOCKET).exists() {
            match Conn::open(PRIVATE_SOCKET, false).await {
                Ok(conn) => return Ok(Systemd { conn }),
                Err(e) => {
                    tracing::debug!(error = %e, "cannot use systemd's private socket; trying the system bus");
                }
            }
        }
        let bus = std::env::var("DBUS_SYSTEM_BUS_ADDRESS")
            .ok()
            .and_then(|a| a.strip_prefix("unix:path=").map(str::to_owned))
            .unwrap_or_else(|| SYSTEM_BUS.to_owned());
        Conn::open(&bus, true)
            .await
            .map(|conn| Systemd { conn })
            .map_err(|e| format!("cannot reach systemd: {e}"))
    }

    async fn manager(&mut self, method: &str, args: &[Arg<'_>]) -> Result<Vec<Value>, String> {
        self.conn
            .call(DEST, MANAGER_PATH, MANAGER, method, args)
            .await
            .map_err(|e| format!("{method}: {e}"))
    }

    async fn property(&mut self, path: &str, iface: &str, name: &str) -> Result<Value, String> {
        let v = self
            .conn
            .call(
                DEST,
                path,
                PROPERTIES,
                "Get",
                &[Arg::Str(iface), Arg::Str(name)],
            )
            .await
            .map_err(|e| format!("{name}: {e}"))?;
        one(v, name)
    }

    async fn string_property(
        &mut self,
        path: &str,
        iface: &str,
        name: &str,
    ) -> Result<String, String> {
        let v = self.property(path, iface, name).await?;
        text(v, name)
    }

    /// The type of the job at `path` (`start`, `stop`, `restart`, ...).
    async fn job_type(&mut self, job: Value) -> Result<Option<String>, String> {
        match job {
            Value::Struct(v) => match v.as_slice() {
                [Value::U32(0), _] => Ok(None),
                [Value::U32(_), Value::Str(path)] => {
                    self.string_property(path, JOB, "JobType").await.map(Some)
                }
                _ => Err(format!("Job: unexpected value {v:?}")),
            },
            other => Err(format!("Job: unexpected value {other:?}")),
        }
    }

    /// The unit's object, loading its definition when systemd has not.
    async fn load(&mut self, unit: &str) -> Result<String, String> {
        let v = self.manager("LoadUnit", &[Arg::Str(unit)]).await?;
        text(one(v, "LoadUnit")?, "LoadUnit")
    }

    /// The state of `unit` now.
    pub async fn state(&mut self, unit: &str) -> Result<UnitState, String> {
        let path = self.load(unit).await?;
        let job = self.property(&path, UNIT, "Job").await?;
        // An error: the job ended between the two questions.
        let job = self.job_type(job).await.unwrap_or_default();
        Ok(UnitState {
            load: self.string_property(&path, UNIT, "LoadState").await?,
            active: self.string_property(&path, UNIT, "ActiveState").await?,
            sub: self.string_property(&path, UNIT, "SubState").await?,
            job,
        })
    }

    /// Why a service unit last failed (its `Result`: `exit-code`, `signal`, `timeout`, ...).
    async fn result(&mut self, unit: &str) -> Option<String> {
        let path = self.load(unit).await.ok()?;
        self.string_property(&path, SERVICE, "Result")
            .await
            .ok()
            .filter(|r| r != "success")
    }

    /// Queues a start or stop job for `unit` (`method`, mode `replace`) and waits for it to
    /// end; the unit's state then.
    async fn job(&mut self, unit: &str, method: &str) -> Result<UnitState, String> {
        self.manager(method, &[Arg::Str(unit), Arg::Str("replace")])
            .await?;
        loop {
            let s = self.state(unit).await?;
            if s.job.is_none() {
                return Ok(s);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Writes the drop-in that keeps systemd from restarting `unit` itself, and has systemd
    /// read it when it changed.
    async fn claim(&mut self, unit: &str) -> Result<(), String> {
        let dir = Path::new(RUNTIME_UNITS).join(format!("{unit}.d"));
        let file = dir.join("50-warden.conf");
        if std::fs::read_to_string(&file).is_ok_and(|s| s == DROP_IN) {
            return Ok(());
        }
        std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(&file, DROP_IN))
            .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
        self.manager("Reload", &[]).await.map(drop)
    }

    async fn start(&mut self, unit: &str) -> AgentResult {
        let s = match self.state(unit).await {
            Ok(s) => s,
            Err(e) => return result(rc::ERR_GENERIC, e),
        };
        if s.load == "not-found" {
            return result(rc::ERR_INSTALLED, format!("unit {unit} not found"));
        }
        if let Err(e) = self.claim(unit).await {
            return result(rc::ERR_GENERIC, e);
        }
        match self.job(unit, "StartUnit").await {
            Ok(s) if matches!(s.active.as_str(), "active" | "reloading") => {
                result(rc::OK, String::new())
            }
            Ok(s) => {
                let why = self
                    .result(unit)
                    .await
                    .map_or_else(String::new, |r| format!(", result {r}"));
                result(
                    rc::ERR_GENERIC,
                    format!("unit {unit} did not start: {} ({}){why}", s.active, s.sub),
                )
            }
            Err(e) => result(rc::ERR_GENERIC, e),
        }
    }

    async fn stop(&mut self, unit: &str) -> AgentResult {
        match self.state(unit).await {
            Ok(s) if s.load == "not-found" => return result(rc::OK, String::new()),
            Ok(_) => {}
            Err(e) => return result(rc::ERR_GENERIC, e),
        }
        match self.job(unit, "StopUnit").await {
            Ok(s) if matches!(s.active.as_str(), "inactive" | "failed") => {
                result(rc::OK, String::new())
            }
            Ok(s) => result(
                rc::ERR_GENERIC,
                format!("unit {unit} did not stop: {} ({})", s.active, s.sub),
            ),
            Err(e) => result(rc::ERR_GENERIC, e),
        }
    }

    /// Pacemaker's mapping of a unit's state to a monitor's result.
    async fn monitor(&mut self, unit: &str) -> AgentResult {
        match self.state(unit).await {
            Err(e) => result(rc::ERR_GENERIC, e),
            Ok(s) if s.load == "not-found" => {
                result(rc::ERR_INSTALLED, format!("unit {unit} not found"))
            }
            Ok(s) => match s.active.as_str() {
                "active" | "reloading" => result(rc::OK, String::new()),
                "inactive" => result(rc::NOT_RUNNING, String::new()),
                "failed" => {
                    let why = self
                        .result(unit)
                        .await
                        .map_or_else(String::new, |r| format!(": {r}"));
                    result(rc::NOT_RUNNING, format!("unit {unit} failed{why}"))
                }
                other => result(
                    rc::ERR_GENERIC,
                    format!(
                        "unit {unit} is {other} ({}), which Warden did not ask for",
                        s.sub
                    ),
                ),
            },
        }
    }

    /// The type of the job systemd runs now for the unit of process `pid` (`restart`,
    /// `stop`, ...), if any: how a daemon told to stop learns whether it is being restarted.
    pub async fn job_of_pid(&mut self, pid: u32) -> Result<Option<String>, String> {
        let v = self.manager("GetUnitByPID", &[Arg::U32(pid)]).await?;
        let path = text(one(v, "GetUnitByPID")?, "GetUnitByPID")?;
        let job = self.property(&path, UNIT, "Job").await?;
        self.job_type(job).await
    }
}

/// The drop-in of a unit Warden manages.
const DROP_IN: &str = "# Written by Warden, which manages this unit: systemd must not restart it\n\
                       # itself, and stops it only after Warden at shutdown.\n\
                       [Unit]\nBefore=warden.service\n\n[Service]\nRestart=no\n";

/// A unit's result. rc 5 here is always Warden's finding (no such unit, or no systemd), never
/// a unit's own: the executor found nothing to run ([`ExecStatus::NotInstalled`]).
fn result(code: i32, exit_reason: String) -> AgentResult {
    AgentResult {
        rc: code,
        exit_reason,
        stdout: String::new(),
        stderr: String::new(),
        duration: Duration::ZERO,
        timed_out: false,
        status: if code == rc::ERR_INSTALLED {
            ExecStatus::NotInstalled
        } else {
            ExecStatus::Done
        },
    }
}

/// Runs operation `op` of the systemd unit `unit` within `timeout`, as an OCF agent's result.
pub async fn run(unit: &str, op: OpKey, timeout: Duration) -> AgentResult {
    let began = Instant::now();
    let work = async {
        let mut sd = match Systemd::connect().await {
            Ok(sd) => sd,
            // Not this machine's init system: the unit cannot run here (a hard error: the
            // resource goes elsewhere), as an OCF agent that is not installed.
            Err(e) if !booted() => return result(rc::ERR_INSTALLED, e),
            Err(e) => return result(rc::ERR_GENERIC, e),
        };
        match op.name {
            OpName::Start => sd.start(unit).await,
            OpName::Stop => sd.stop(unit).await,
            OpName::Monitor => sd.monitor(unit).await,
            other => result(
                rc::ERR_UNIMPLEMENTED,
                format!("systemd units have no {other} operation"),
            ),
        }
    };
    let mut r = match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => AgentResult {
            timed_out: true,
            ..result(
                rc::ERR_GENERIC,
                format!("timed out after {}", crate::duration::format(timeout)),
            )
        },
    };
    r.duration = began.elapsed();
    r
}
