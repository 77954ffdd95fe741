//! The part of D-Bus that talking to systemd needs, and nothing more: one method call at a time
//! on a Unix socket (SASL `EXTERNAL`), arguments of basic types, replies of basic types,
//! variants and structs. Written here rather than taken from a crate because systemd's own
//! socket (`/run/systemd/private`, what `systemctl` uses as root) is a peer-to-peer connection
//! whose replies name a well-known sender, which the D-Bus crate we tried panics on; a daemon
//! must not panic on what a peer sends, so every byte read here is checked and an error is a
//! value.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// The largest message taken (systemd's replies here are a few hundred bytes).
const MAX_MESSAGE: usize = 1 << 20;
/// How long the handshake and each call may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// An argument of a call.
#[derive(Debug, Clone)]
pub enum Arg<'a> {
    Str(&'a str),
    U32(u32),
}

/// A value of a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A string, object path or signature.
    Str(String),
    U32(u32),
    I32(i32),
    Bool(bool),
    Byte(u8),
    U64(u64),
    Struct(Vec<Value>),
    Array(Vec<Value>),
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// A connection.
#[derive(Debug)]
pub struct Conn {
    stream: BufReader<UnixStream>,
    serial: u32,
    /// Calls name this destination (none on a peer-to-peer connection with no bus).
    bus: bool,
}

fn err(what: impl std::fmt::Display) -> String {
    format!("D-Bus: {what}")
}

impl Conn {
    /// Connects to the socket at `path` and authenticates as this process's user; `bus`: it is
    /// a message bus (the system bus), which wants `Hello` first.
    pub async fn open(path: &str, bus: bool) -> Result<Conn, String> {
        tokio::time::timeout(TIMEOUT, Conn::open_inner(path, bus))
            .await
            .map_err(|_| err(format!("{path}: no answer to the handshake")))?
    }

    async fn open_inner(path: &str, bus: bool) -> Result<Conn, String> {
        let stream = UnixStream::connect(path)
            .await
            .map_err(|e| err(format!("cannot connect to {path}: {e}")))?;
        let mut stream = BufReader::new(stream);
        let uid = nix::unistd::Uid::effective().as_raw().to_string();
        let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
        // BEGIN goes with AUTH, as sd-bus clients send it: systemd's server, sent BEGIN on its
        // own after its OK, left the first call unanswered (seen on systemd 252).
        stream
            .get_mut()
            .write_all(format!("\0AUTH EXTERNAL {hex}\r\nBEGIN\r\n").as_bytes())
            .await
            .map_err(|e| err(format!("{path}: {e}")))?;
        let mut line = String::new();
        (&mut stream)
            .take(4096)
            .read_line(&mut line)
            .await
            .map_err(|e| err(format!("{path}: {e}")))?;
        if !line.starts_with("OK ") {
            return Err(err(format!(
                "{path} refused the authentication: {:?}",
                line.trim_end()
            )));
        }
        let mut conn = Conn {
            stream,
            serial: 0,
            bus,
        };
        if bus {
            conn.call(
                "org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus",
                "Hello",
                &[],
            )
            .await?;
        }
        Ok(conn)
    }

    /// Calls `member` and returns the reply's values; an error reply is `Err` with its name
    /// and message.
    pub async fn call(
        &mut self,
        destination: &str,
        path: &str,
        interface: &str,
        member: &str,
        args: &[Arg<'_>],
    ) -> Result<Vec<Value>, String> {
        tokio::time::timeout(
            TIMEOUT,
            self.call_inner(destination, path, interface, member, args),
        )
        .await
        .map_err(|_| err(format!("no answer to {member}")))?
    }

    async fn call_inner(
        &mut self,
        destination: &str,
        path: &str,
        interface: &str,
        member: &str,
        args: &[Arg<'_>],
    ) -> Result<Vec<Value>, String> {
        self.serial = self.serial.wrapping_add(1).max(1);
        let serial = self.serial;
        let dest = self.bus.then_some(destination);
        let msg = encode_call(serial, dest, path, interface, member, args);
        self.stream
            .get_mut()
            .write_all(&msg)
            .await
            .map_err(|e| err(e.to_string()))?;
        loop {
            let m = self.read_message(serial).await?;
            if m.reply_serial != Some(serial) {
                // A signal, or a reply to something else: not ours.
                continue;
            }
            return match m.kind {
                2 => Ok(m.body),
                3 => {
                    let text = m
                        .body
                        .first()
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned();
                    Err(format!(
                        "{}: {text}",
                        m.error.unwrap_or_else(|| "error".to_owned())
                    ))
                }
                other => Err(err(format!("unexpected message type {other}"))),
            };
        }
    }

    async fn read_message(&mut self, want: u32) -> Result<Message, String> {
        let mut fixed = [0u8; 16];
        self.stream
            .read_exact(&mut fixed)
            .await
            .map_err(|e| err(format!("reading a reply: {e}")))?;
        let little = match fixed[0] {
            b'l' => true,
            b'B' => false,
            other => return Err(err(format!("bad endianness mark {other}"))),
        };
        let u32_at = |i: usize| {
            let b = [fixed[i], fixed[i + 1], fixed[i + 2], fixed[i + 3]];
            if little {
                u32::from_le_bytes(b)
            } else {
                u32::from_be_bytes(b)
            }
        };
        let body_len = u32_at(4) as usize;
        let fields_len = u32_at(12) as usize;
        let head = 16 + fields_len;
        let total = head.next_multiple_of(8).saturating_add(body_len);
        if total > MAX_MESSAGE {
            return Err(err(format!("a message of {total} bytes")));
        }
        let mut buf = vec![0u8; total];
        buf[..16].copy_from_slice(&fixed);
        self.stream
            .read_exact(&mut buf[16..])
            .await
            .map_err(|e| err(format!("reading a reply: {e}")))?;
        parse_message(&buf, little, Some(want))
    }
}

#[derive(Debug)]
struct Message {
    kind: u8,
    reply_serial: Option<u32>,
    error: Option<String>,
    body: Vec<Value>,
}

fn pad(buf: &mut Vec<u8>, to: usize) {
    while buf.len() % to != 0 {
        buf.push(0);
    }
}

fn put_u32(buf: &mut Vec<u8>, v: u32) {
    pad(buf, 4);
    buf.extend_from_slice(&v.to_le_bytes());
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    put_u32(buf, u32::try_from(s.len()).unwrap_or(u32::MAX));
    buf.extend_from_slice(s.as_bytes());
    buf.push(0);
}

fn put_sig(buf: &mut Vec<u8>, s: &str) {
    buf.push(u8::try_from(s.len()).unwrap_or(u8::MAX));
    buf.extend_from_slice(s.as_bytes());
    buf.push(0);
}

/// A method call, little-endian.
fn encode_call(
    serial: u32,
    destination: Option<&str>,
    path: &str,
    interface: &str,
    member: &str,
    args: &[Arg<'_>],
) -> Vec<u8> {
    let mut body = Vec::new();
    let mut sig = String::new();
    for a in args {
        match a {
            Arg::Str(s) => {
                sig.push('s');
                put_str(&mut body, s);
            }
            Arg::U32(v) => {
                sig.push('u');
                put_u32(&mut body, *v);
            }
        }
    }
    let mut fields = Vec::new();
    let field = |fields: &mut Vec<u8>, code: u8, ty: &str, value: &str| {
        pad(fields, 8);
        fields.push(code);
        put_sig(fields, ty);
        if ty == "g" {
            put_sig(fields, value);
        } else {
            put_str(fields, value);
        }
    };
    field(&mut fields, 1, "o", path);
    field(&mut fields, 2, "s", interface);
    field(&mut fields, 3, "s", member);
    if let Some(d) = destination {
        field(&mut fields, 6, "s", d);
    }
    if !sig.is_empty() {
        field(&mut fields, 8, "g", &sig);
    }
    let mut msg = vec![b'l', 1, 0, 1];
    msg.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_le_bytes());
    msg.extend_from_slice(&serial.to_le_bytes());
    // The fields array: its length, then (aligned to 8 at offset 16) its structs.
    msg.extend_from_slice(
        &u32::try_from(fields.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes(),
    );
    msg.extend_from_slice(&fields);
    pad(&mut msg, 8);
    msg.extend_from_slice(&body);
    msg
}

/// Reads values off a message; offsets are from the message's start (alignment counts from it).
struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
    little: bool,
    /// Nesting of variants and structs (a hostile peer cannot recurse without bound).
    depth: u32,
}

impl Reader<'_> {
    fn align(&mut self, to: usize) -> Result<(), String> {
        let next = self.at.next_multiple_of(to);
        if next > self.buf.len() {
            return Err(err("truncated message"));
        }
        self.at = next;
        Ok(())
    }

    fn bytes(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| err("truncated message"))?;
        let b = &self.buf[self.at..end];
        self.at = end;
        Ok(b)
    }

    fn u32(&mut self) -> Result<u32, String> {
        self.align(4)?;
        let b = self.bytes(4)?;
        let b = [b[0], b[1], b[2], b[3]];
        Ok(if self.little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    }

    fn u64(&mut self) -> Result<u64, String> {
        self.align(8)?;
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(if self.little {
            u64::from_le_bytes(a)
        } else {
            u64::from_be_bytes(a)
        })
    }

    fn string(&mut self) -> Result<String, String> {
        let n = self.u32()? as usize;
        let s = self.bytes(n)?.to_vec();
        self.bytes(1)?;
        String::from_utf8(s).map_err(|_| err("a string that is not UTF-8"))
    }

    fn signature(&mut self) -> Result<String, String> {
        let n = usize::from(self.bytes(1)?[0]);
        let s = self.bytes(n)?.to_vec();
        self.bytes(1)?;
        String::from_utf8(s).map_err(|_| err("a bad signature"))
    }

    /// One complete type at the start of `sig`: its value and the rest of `sig`.
    fn value<'s>(&mut self, sig: &'s str) -> Result<(Value, &'s str), String> {
        let Some(c) = sig.chars().next() else {
            return Err(err("empty signature"));
        };
        let rest = &sig[1..];
        let v = match c {
            's' | 'o' => Value::Str(self.string()?),
            'g' => Value::Str(self.signature()?),
            'u' => Value::U32(self.u32()?),
            'i' => Value::I32(i32::from_ne_bytes(self.u32()?.to_ne_bytes())),
            'b' => Value::Bool(self.u32()? != 0),
            'y' => Value::Byte(self.bytes(1)?[0]),
            't' | 'x' | 'd' => Value::U64(self.u64()?),
            'h' => Value::U32(self.u32()?),
            'n' | 'q' => {
                self.align(2)?;
                let b = self.bytes(2)?;
                let b = [b[0], b[1]];
                Value::U32(u32::from(if self.little {
                    u16::from_le_bytes(b)
                } else {
                    u16::from_be_bytes(b)
                }))
            }
            'v' => {
                self.enter()?;
                let inner = self.signature()?;
                let (v, left) = self.value(&inner)?;
                if !left.is_empty() {
                    return Err(err("a variant holding more than one value"));
                }
                self.depth -= 1;
                v
            }
            'a' => {
                self.enter()?;
                let len = complete_type(rest).ok_or_else(|| err("a bad array signature"))?;
                let (elem, after) = rest.split_at(len);
                let n = self.u32()? as usize;
                if n > MAX_MESSAGE {
                    return Err(err("an array too large"));
                }
                // Elements start at their own alignment, even when there are none.
                self.align(alignment(elem))?;
                let end = self
                    .at
                    .checked_add(n)
                    .filter(|&e| e <= self.buf.len())
                    .ok_or_else(|| err("truncated array"))?;
                let mut items = Vec::new();
                while self.at < end {
                    let (v, left) = self.value(elem)?;
                    if !left.is_empty() {
                        return Err(err("a bad array element"));
                    }
                    items.push(v);
                }
                if self.at != end {
                    return Err(err("an array element past the array's end"));
                }
                self.depth -= 1;
                return Ok((Value::Array(items), after));
            }
            '(' | '{' => {
                self.enter()?;
                self.align(8)?;
                let mut items = Vec::new();
                let mut s = rest;
                loop {
                    if let Some(after) = s.strip_prefix([')', '}']) {
                        self.depth -= 1;
                        return Ok((Value::Struct(items), after));
                    }
                    let (v, left) = self.value(s)?;
                    items.push(v);
                    s = left;
                }
            }
            other => return Err(err(format!("a value of type {other:?}, not handled here"))),
        };
        Ok((v, rest))
    }

    fn enter(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > 32 {
            return Err(err("values nested too deep"));
        }
        Ok(())
    }
}

/// The length of the one complete type at the start of `sig`.
fn complete_type(sig: &str) -> Option<usize> {
    let b = sig.as_bytes();
    match b.first()? {
        b'a' => complete_type(&sig[1..]).map(|n| n + 1),
        open @ (b'(' | b'{') => {
            let close = if *open == b'(' { b')' } else { b'}' };
            let mut i = 1;
            while *b.get(i)? != close {
                i += complete_type(&sig[i..])?;
            }
            Some(i + 1)
        }
        _ => Some(1),
    }
}

/// The alignment of a type's values.
fn alignment(sig: &str) -> usize {
    match sig.as_bytes().first() {
        Some(b'(' | b'{' | b't' | b'x' | b'd') => 8,
        Some(b'y' | b'g' | b'v') => 1,
        Some(b'n' | b'q') => 2,
        _ => 4,
    }
}

/// Parses a message; with `want`, its body only when it answers that call (others are skipped).
fn parse_message(buf: &[u8], little: bool, want: Option<u32>) -> Result<Message, String> {
    let mut r = Reader {
        buf,
        at: 12,
        little,
        depth: 0,
    };
    let fields_len = r.u32()? as usize;
    let fields_end = 16usize
        .checked_add(fields_len)
        .filter(|&e| e <= buf.len())
        .ok_or_else(|| err("truncated header"))?;
    let (mut reply_serial, mut error, mut signature) = (None, None, String::new());
    while r.at < fields_end {
        r.align(8)?;
        if r.at >= fields_end {
            break;
        }
        let code = r.bytes(1)?[0];
        let (v, _) = r.value("v")?;
        match (code, v) {
            (4, Value::Str(s)) => error = Some(s),
            (5, Value::U32(n)) => reply_serial = Some(n),
            (8, Value::Str(s)) => signature = s,
            _ => {}
        }
    }
    r.at = fields_end;
    r.align(8)?;
    let mut body = Vec::new();
    if want.is_some_and(|w| reply_serial != Some(w)) {
        signature.clear();
    }
    let mut sig = signature.as_str();
    while !sig.is_empty() {
        let (v, rest) = r.value(sig)?;
        body.push(v);
        sig = rest;
    }
    Ok(Message {
        kind: buf[1],
        reply_serial,
        error,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_reads_back_as_what_was_written() {
        let m = encode_call(
            7,
            Some("org.freedesktop.systemd1"),
            "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager",
            "StartUnit",
            &[Arg::Str("nginx.service"), Arg::Str("replace"), Arg::U32(3)],
        );
        let body_len = u32::from_le_bytes([m[4], m[5], m[6], m[7]]) as usize;
        // "nginx.service" (4 + 13 + 1), 2 of padding, "replace" (4 + 7 + 1), 3 (4).
        assert_eq!(body_len, 36);
        let parsed = parse_message(&m, true, None).expect("parse");
        assert_eq!(parsed.kind, 1);
        assert_eq!(
            parsed.body,
            vec![
                Value::Str("nginx.service".into()),
                Value::Str("replace".into()),
                Value::U32(3)
            ]
        );
    }

    #[test]
    fn bad_bytes_are_errors_never_panics() {
        let good = encode_call(1, None, "/a", "b.c", "D", &[Arg::Str("x")]);
        // Every truncation and every single-byte change of a real message: an error or a
        // message, never a panic or a loop.
        for n in 0..good.len() {
            let _ = parse_message(&good[..n], true, None);
        }
        for i in 0..good.len() {
            for b in [0u8, 1, 0x7f, 0xff, b'(', b'v'] {
                let mut m = good.clone();
                m[i] = b;
                let _ = parse_message(&m, true, None);
            }
        }
        // A variant nested without end is cut off.
        let mut deep = good[..16].to_vec();
        deep.extend(std::iter::repeat_n([1u8, b'v', 0], 200).flatten());
        assert!(parse_message(&deep, true, None).is_err());
    }
}
