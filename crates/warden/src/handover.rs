//! Hands the proxy's listening sockets from a daemon that stops, leaving its resources
//! running, to the daemon that replaces it (same or newer binary), as HAProxy's `-x` does: the
//! old daemon offers them on `<data_dir>/handover.sock`, the new one receives them (the very
//! sockets, through SCM_RIGHTS) and accepts on them before the old one stops accepting, so no
//! connection is refused in between. Connections already accepted stay with the old daemon
//! until they end.

use std::io::{IoSlice, IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, recvmsg, sendmsg,
};
use serde::{Deserialize, Serialize};

/// The socket's name in the data dir.
pub const SOCKET: &str = "handover.sock";
/// At most this many listeners are handed over (one message).
const MAX_SOCKETS: usize = 200;

/// What the old daemon says of each socket it sends, in the order of the descriptors.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offered {
    /// The listener's name.
    pub name: String,
    /// Its configured `listen` address (the new daemon takes the socket only for the same).
    pub listen: String,
}

/// The old daemon's side: a socket bound before the store is released, so a successor that
/// could open the store finds it.
#[derive(Debug)]
pub struct Offer {
    path: PathBuf,
    listener: UnixListener,
    /// The (device, inode) of the socket file it bound: dropped, it removes that file only,
    /// never one a later offer bound at the same path.
    file: Option<(u64, u64)>,
}

impl Offer {
    /// Binds `<data_dir>/handover.sock` (a stale one is replaced).
    pub fn bind(data_dir: &Path) -> anyhow::Result<Offer> {
        let path = data_dir.join(SOCKET);
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path)
            .with_context(|| format!("cannot listen on {}", path.display()))?;
        listener.set_nonblocking(true)?;
        let file = file_id(&path);
        Ok(Offer {
            path,
            listener,
            file,
        })
    }

    /// Waits up to `wait` for a successor, sends it the sockets and waits for it to say it
    /// accepts on them. True when it did: the caller may stop accepting.
    pub async fn serve(
        &self,
        sockets: &[(Offered, Arc<std::net::TcpListener>)],
        wait: Duration,
    ) -> anyhow::Result<bool> {
        let listener = tokio::net::UnixListener::from_std(self.listener.try_clone()?)?;
        let Ok(accepted) = tokio::time::timeout(wait, listener.accept()).await else {
            return Ok(false);
        };
        let stream = accepted?.0.into_std()?;
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let sockets = &sockets[..sockets.len().min(MAX_SOCKETS)];
        let header: Vec<&Offered> = sockets.iter().map(|(o, _)| o).collect();
        let mut data = serde_json::to_vec(&header)?;
        data.push(b'\n');
        let fds: Vec<_> = sockets.iter().map(|(_, s)| s.as_fd()).collect();
        let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(fds.len()))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(&fds)) {
            bail!("cannot fit {} descriptors in one message", fds.len());
        }
        let len = (data.len() as u64).to_le_bytes();
        sendmsg(
            &stream,
            &[IoSlice::new(&len), IoSlice::new(&data)],
            &mut control,
            SendFlags::empty(),
        )
        .context("cannot send the listening sockets")?;
        let mut ack = [0u8; 3];
        let taken = tokio::task::spawn_blocking(move || {
            let mut s = &stream;
            s.read_exact(&mut ack).map(|_| ack == *b"ok\n")
        })
        .await?;
        Ok(taken.unwrap_or(false))
    }
}

fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

impl Drop for Offer {
    fn drop(&mut self) {
        if self.file.is_some() && file_id(&self.path) == self.file {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// How long [`hold`] keeps the sockets for a successor.
pub const HOLD_WAIT: Duration = Duration::from_secs(60);

/// `warden hold-listeners`: takes the listening sockets a stopping daemon offers in
/// `data_dir` and offers them in its turn, for up to `wait`, to the daemon that replaces it.
/// What `systemctl restart` needs: the old daemon must exit before systemd starts the new
/// one, so a process of its own holds the sockets in between. It accepts nothing: clients wait
/// in the sockets' queues, none is refused.
pub async fn hold(data_dir: &Path, wait: Duration) -> anyhow::Result<bool> {
    let Some(taken) = take(data_dir, Duration::from_secs(5))? else {
        bail!(
            "no daemon offers its listening sockets in {}",
            data_dir.display()
        );
    };
    // Bound before the old daemon hears it may go, so a successor never finds no offer.
    let offer = Offer::bind(data_dir)?;
    let sockets: Vec<(Offered, Arc<std::net::TcpListener>)> = taken
        .sockets
        .iter()
        .map(|(o, s)| Ok((o.clone(), Arc::new(s.try_clone()?))))
        .collect::<std::io::Result<_>>()?;
    taken.accepting()?;
    offer.serve(&sockets, wait).await
}

/// Sockets received from a stopping daemon; [`Taken::accepting`] tells it to stop accepting.
#[derive(Debug)]
pub struct Taken {
    pub sockets: Vec<(Offered, std::net::TcpListener)>,
    conn: UnixStream,
}

impl Taken {
    /// Says the new daemon accepts on the sockets now.
    pub fn accepting(mut self) -> anyhow::Result<()> {
        self.conn.write_all(b"ok\n")?;
        Ok(())
    }

    /// The socket offered for listener `name` at `listen`, if any (taken out).
    pub fn take(&mut self, name: &str, listen: &str) -> Option<std::net::TcpListener> {
        let i = self
            .sockets
            .iter()
            .position(|(o, _)| o.name == name && o.listen == listen)?;
        Some(self.sockets.swap_remove(i).1)
    }
}

/// The new daemon's side: when a stopping daemon offers its sockets in `data_dir`, takes
/// them (waiting up to `wait` for a connection that is being set up); None when nobody
/// offers any.
pub fn take(data_dir: &Path, wait: Duration) -> anyhow::Result<Option<Taken>> {
    let path = data_dir.join(SOCKET);
    if !path.exists() {
        return Ok(None);
    }
    let deadline = Instant::now() + wait;
    let conn = loop {
        match UnixStream::connect(&path) {
            Ok(c) => break c,
            // A file nobody listens on: a daemon that died while offering.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return Ok(None),
            Err(e) if Instant::now() >= deadline => {
                return Err(e).with_context(|| format!("cannot connect to {}", path.display()));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    conn.set_read_timeout(Some(wait.max(Duration::from_secs(1))))?;
    let mut len = [0u8; 8];
    let mut data = vec![0u8; 64 * 1024];
    let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_SOCKETS))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let got = recvmsg(
        &conn,
        &mut [IoSliceMut::new(&mut len), IoSliceMut::new(&mut data)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )
    .context("cannot receive the listening sockets")?;
    let mut fds = Vec::new();
    for msg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = msg {
            fds.extend(received);
        }
    }
    let want = usize::try_from(u64::from_le_bytes(len)).unwrap_or(usize::MAX);
    if got.bytes < 8 || got.bytes - 8 < want || want == 0 {
        bail!("the handover message was cut short");
    }
    let header: Vec<Offered> =
        serde_json::from_slice(&data[..want]).context("the handover message is not valid")?;
    if header.len() != fds.len() {
        bail!(
            "the handover named {} sockets and sent {}",
            header.len(),
            fds.len()
        );
    }
    let sockets = header
        .into_iter()
        .zip(fds)
        .map(|(o, fd)| (o, std::net::TcpListener::from(fd)))
        .collect();
    Ok(Some(Taken { sockets, conn }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_very_sockets_go_across_and_keep_their_queue() {
        let dir = tempfile::tempdir().expect("dir");
        let a = Arc::new(std::net::TcpListener::bind("127.0.0.1:0").expect("bind"));
        let addr = a.local_addr().expect("addr");
        // A connection waiting in the old socket's queue is accepted by the new owner.
        let _early = std::net::TcpStream::connect(addr).expect("connect");
        let offer = Offer::bind(dir.path()).expect("offer");
        let offered = vec![(
            Offered {
                name: "front".into(),
                listen: "127.0.0.1:0".into(),
            },
            Arc::clone(&a),
        )];
        let path = dir.path().to_owned();
        let taker = std::thread::spawn(move || {
            let mut t = take(&path, Duration::from_secs(5))
                .expect("take")
                .expect("offered");
            assert!(t.take("front", "127.0.0.1:1").is_none(), "another address");
            let s = t.take("front", "127.0.0.1:0").expect("front");
            t.accepting().expect("ack");
            s
        });
        assert!(
            offer
                .serve(&offered, Duration::from_secs(5))
                .await
                .expect("serve")
        );
        let s = taker.join().expect("taker");
        drop(offered);
        drop(a);
        assert_eq!(s.local_addr().expect("addr"), addr, "the same socket");
        s.set_nonblocking(false).expect("blocking");
        let (_c, _) = s.accept().expect("the queued connection");
        let _late = std::net::TcpStream::connect(addr).expect("still listening");
        drop(offer);
        assert!(!dir.path().join(SOCKET).exists());
        assert!(
            take(dir.path(), Duration::from_millis(10))
                .expect("none")
                .is_none()
        );
    }
}
