//! systemd's service notifications (sd_notify(3)), spoken directly: one datagram per message to
//! the socket `$NOTIFY_SOCKET` names (a path, or `@name` in the abstract namespace). A daemon
//! that systemd did not start with `Type=notify` has no such socket, and every call does
//! nothing. `READY=1` once every resource is probed and the listeners are bound, `STATUS=`
//! lines as things change, `STOPPING=1` at shutdown, and `WATCHDOG=1` from the daemon's own
//! loop (a loop that hangs stops them, and systemd's `WatchdogSec=` restarts the daemon).

use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

use tracing::debug;

/// The daemon's line to systemd.
#[derive(Debug)]
pub struct Notifier {
    sock: UnixDatagram,
    addr: SocketAddr,
}

impl Notifier {
    /// The notifier `$NOTIFY_SOCKET` names, if it names one.
    pub fn from_env() -> Option<Notifier> {
        let path = std::env::var_os("NOTIFY_SOCKET")?;
        let addr = match path.as_encoded_bytes().strip_prefix(b"@") {
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                SocketAddr::from_abstract_name(name)
            }
            None => SocketAddr::from_pathname(&path),
        };
        let addr = match addr {
            Ok(a) => a,
            Err(e) => {
                debug!(socket = ?path, error = %e, "NOTIFY_SOCKET is not a socket address");
                return None;
            }
        };
        let sock = UnixDatagram::unbound().ok()?;
        Some(Notifier { sock, addr })
    }

    /// Sends `msg` (`KEY=value` lines); a failure is only logged (systemd may have gone).
    pub fn send(&self, msg: &str) {
        if let Err(e) = self.sock.send_to_addr(msg.as_bytes(), &self.addr) {
            debug!(error = %e, "cannot notify systemd");
        }
    }
}

/// How often to send `WATCHDOG=1`: half of `$WATCHDOG_USEC`, as sd_watchdog_enabled(3)
/// advises, when `$WATCHDOG_PID` is unset or names this process.
pub fn watchdog_every() -> Option<Duration> {
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.trim().parse::<u32>().ok() != Some(std::process::id()) {
            return None;
        }
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

/// The variables a notified daemon must not pass on to what it runs: an agent could otherwise
/// tell systemd the daemon is ready, or feed its watchdog.
pub const PRIVATE_ENV: &[&str] = &["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_arrives_whole_at_a_path_socket() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("notify");
        let server = UnixDatagram::bind(&path).expect("bind");
        let n = Notifier {
            sock: UnixDatagram::unbound().expect("sock"),
            addr: SocketAddr::from_pathname(&path).expect("addr"),
        };
        n.send("READY=1\nSTATUS=2 resources started");
        let mut buf = [0u8; 256];
        let len = server.recv(&mut buf).expect("recv");
        assert_eq!(&buf[..len], b"READY=1\nSTATUS=2 resources started");
    }
}
