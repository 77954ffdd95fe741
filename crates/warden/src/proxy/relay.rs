//! Bytes both ways between a client and a peer (TCP sessions, HTTP upgrades), as HAProxy moves
//! them: what a read brings is written at once from one buffer per thread, and a session keeps
//! bytes of its own only while the other side cannot take them. An idle session holds no
//! buffer at all (tokio's `copy_bidirectional` keeps 16 KiB per session for its life).
//!
//! Each direction ends at its reader's end, which shuts the other side's write half (a
//! half-close passes through); the relay ends when both have, at the first error, or when
//! nothing has moved either way for the listener's `idle_timeout`.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// How much one read may bring.
const SCRATCH: usize = 64 << 10;
/// Bytes kept for a slow writer are given back above this capacity once written.
const KEEP: usize = 16 << 10;

thread_local! {
    static BUF: RefCell<Box<[u8]>> = RefCell::new(vec![0; SCRATCH].into_boxed_slice());
}

/// Which end of a relay failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum End {
    A,
    B,
}

/// Bytes a relay moved so far: `a_to_b` and `b_to_a`.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Moved {
    pub a_to_b: u64,
    pub b_to_a: u64,
}

/// Relays between `a` and `b` until both directions have ended (`Ok`) or one fails (with the
/// end whose socket failed); with `idle`, also ends (`TimedOut`, no end) once no byte has
/// moved either way for that long. `moved` counts the bytes as they go, so it holds them
/// also when the relay is dropped.
pub(super) async fn relay(
    a: &mut TcpStream,
    b: &mut TcpStream,
    idle: Option<Duration>,
    moved: &mut Moved,
) -> Result<(), (io::Error, Option<End>)> {
    let (mut ar, mut aw) = a.split();
    let (mut br, mut bw) = b.split();
    let (mut ab, mut ba) = (Pipe::default(), Pipe::default());
    // The timer is not reset per transfer: when it fires it is pushed to `idle` after the
    // last one, if there was one since.
    let mut last = Instant::now();
    let mut timer = idle.map(|d| Box::pin(tokio::time::sleep_until(last + d)));
    poll_fn(|cx| {
        let before = ab.moved + ba.moved;
        let there = ab.poll(cx, &mut ar, &mut bw);
        let back = ba.poll(cx, &mut br, &mut aw);
        moved.a_to_b = ab.moved;
        moved.b_to_a = ba.moved;
        // A failed read is its reader's end; a failed write, its writer's.
        let there = there.map_err(|(e, reader)| (e, Some(if reader { End::A } else { End::B })))?;
        let back = back.map_err(|(e, reader)| (e, Some(if reader { End::B } else { End::A })))?;
        if there.is_ready() && back.is_ready() {
            return Poll::Ready(Ok(()));
        }
        if idle.is_some() && ab.moved + ba.moved != before {
            last = Instant::now();
        }
        if let (Some(timer), Some(idle)) = (timer.as_mut(), idle) {
            while timer.as_mut().poll(cx).is_ready() {
                if last.elapsed() >= idle {
                    return Poll::Ready(Err((io::ErrorKind::TimedOut.into(), None)));
                }
                timer.as_mut().reset(last + idle);
            }
        }
        Poll::Pending
    })
    .await
}

/// One direction's state.
#[derive(Debug, Default)]
struct Pipe {
    /// Read but not written yet (the writer could not take it all); `pending[at..]` is left.
    pending: Vec<u8>,
    at: usize,
    /// The reader ended: the writer's side is shut once `pending` is written.
    eof: bool,
    done: bool,
    /// Bytes written so far.
    moved: u64,
}

impl Pipe {
    /// Moves bytes from `from` to `to` until either must wait; ready once `from` ended and
    /// `to` was shut. An error says whether the reader (`true`) or the writer failed.
    fn poll<R, W>(
        &mut self,
        cx: &mut Context<'_>,
        from: &mut R,
        to: &mut W,
    ) -> Poll<Result<(), (io::Error, bool)>>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        loop {
            if self.done {
                return Poll::Ready(Ok(()));
            }
            while self.at < self.pending.len() {
                let n = ready!(Pin::new(&mut *to).poll_write(cx, &self.pending[self.at..]))
                    .map_err(|e| (e, false))?;
                if n == 0 {
                    return Poll::Ready(Err((io::ErrorKind::WriteZero.into(), false)));
                }
                self.at += n;
                self.moved += n as u64;
            }
            if !self.pending.is_empty() {
                self.pending.clear();
                self.at = 0;
                if self.pending.capacity() > KEEP {
                    self.pending = Vec::new();
                }
            }
            if self.eof {
                ready!(Pin::new(&mut *to).poll_shutdown(cx)).map_err(|e| (e, false))?;
                self.done = true;
                continue;
            }
            // Read into this thread's buffer and write from it at once; only what the writer
            // does not take is copied into the session's own `pending`.
            ready!(BUF.with_borrow_mut(|buf| {
                let mut rb = ReadBuf::new(buf);
                ready!(Pin::new(&mut *from).poll_read(cx, &mut rb)).map_err(|e| (e, true))?;
                let data = rb.filled();
                if data.is_empty() {
                    self.eof = true;
                    return Poll::Ready(Ok(()));
                }
                match Pin::new(&mut *to).poll_write(cx, data) {
                    Poll::Ready(Ok(0)) => {
                        return Poll::Ready(Err((io::ErrorKind::WriteZero.into(), false)));
                    }
                    Poll::Ready(Ok(n)) => {
                        self.moved += n as u64;
                        self.pending.extend_from_slice(&data[n..]);
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err((e, false))),
                    Poll::Pending => self.pending.extend_from_slice(data),
                }
                Poll::Ready(Ok(()))
            }))?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A connected pair of sockets on 127.0.0.1.
    async fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let c = TcpStream::connect(l.local_addr().expect("addr"));
        let (c, s) = tokio::join!(c, l.accept());
        (c.expect("connect"), s.expect("accept").0)
    }

    #[tokio::test]
    async fn bytes_pass_both_ways_with_back_pressure_and_half_close() {
        // client <-> (a | relay | b) <-> server
        let (mut client, mut a) = pair().await;
        let (mut b, mut server) = pair().await;
        let relay = tokio::spawn(async move {
            let mut moved = Moved::default();
            let r = relay(&mut a, &mut b, None, &mut moved).await;
            r.map(|()| moved)
        });
        // 8 MiB one way while nobody reads it at first: the relay must hold back, not lose.
        let big: Vec<u8> = (0..8 << 20).map(|i| (i % 251) as u8).collect();
        let sent = big.clone();
        let writer = tokio::spawn(async move {
            client.write_all(&sent).await.expect("write");
            client.shutdown().await.expect("half-close");
            client
        });
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.expect("read");
        assert!(
            got == big,
            "{} bytes of {} arrived in order",
            got.len(),
            big.len()
        );
        // The other way still works after the half-close, and its end reaches the client.
        server.write_all(b"answer").await.expect("write back");
        drop(server);
        let mut client = writer.await.expect("writer");
        let mut back = Vec::new();
        client.read_to_end(&mut back).await.expect("read back");
        assert_eq!(back, b"answer");
        let moved = relay.await.expect("relay").expect("ends cleanly");
        assert_eq!((moved.a_to_b, moved.b_to_a), (8 << 20, 6));
    }

    #[tokio::test]
    async fn a_session_idle_for_idle_timeout_ends_and_a_busy_one_does_not() {
        let (mut client, mut a) = pair().await;
        let (mut b, mut server) = pair().await;
        let idle = std::time::Duration::from_millis(300);
        let relay =
            tokio::spawn(
                async move { relay(&mut a, &mut b, Some(idle), &mut Moved::default()).await },
            );
        // A byte every 100 ms for a second: never idle that long.
        let mut last = std::time::Instant::now();
        for i in 0..10u8 {
            client.write_all(&[i]).await.expect("write");
            let mut got = [0u8; 1];
            server.read_exact(&mut got).await.expect("read");
            assert_eq!(got[0], i);
            last = std::time::Instant::now();
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(!relay.is_finished(), "a busy session stays");
        // Then nothing: it ends, and both sides see the close.
        let r = tokio::time::timeout(std::time::Duration::from_secs(10), relay)
            .await
            .expect("ends within 10 s")
            .expect("relay");
        assert_eq!(
            r.map_err(|(e, end)| (e.kind(), end)),
            Err((io::ErrorKind::TimedOut, None))
        );
        let quiet = last.elapsed();
        assert!(
            quiet >= std::time::Duration::from_millis(250),
            "ended after {quiet:?} quiet"
        );
        let mut rest = Vec::new();
        assert_eq!(server.read_to_end(&mut rest).await.expect("closed"), 0);
        assert_eq!(client.read_to_end(&mut rest).await.expect("closed"), 0);
    }
}
