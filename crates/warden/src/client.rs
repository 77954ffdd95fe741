//! The CLI's side of the API: a small blocking HTTP/1.1 client (the API is local and tiny).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

/// Where the daemon is and how to prove who we are.
#[derive(Clone, Debug)]
pub struct Client {
    pub addr: SocketAddr,
    pub token: Option<String>,
    /// Why there is no token, when it could not be read: said when the daemon wants one.
    pub token_problem: Option<String>,
    /// The API speaks TLS with the certificate of this pin (`sha256:HEX`, see
    /// [`crate::api_tls`]).
    pub pin: Option<String>,
}

/// An API address as the CLI takes it: `IP:PORT`, `http://IP:PORT` or `https://IP:PORT`;
/// the address and whether it speaks TLS.
pub fn parse_api(s: &str) -> anyhow::Result<(SocketAddr, bool)> {
    let (rest, https) = match (s.strip_prefix("https://"), s.strip_prefix("http://")) {
        (Some(r), _) => (r, true),
        (None, Some(r)) => (r, false),
        (None, None) => (s, false),
    };
    let addr = rest.trim_end_matches('/').parse().map_err(|_| {
        anyhow::anyhow!("bad API address {s:?}: expected IP:PORT or https://IP:PORT")
    })?;
    Ok((addr, https))
}

impl Client {
    pub fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.request("GET", path)
    }

    pub fn post(&self, path: &str) -> anyhow::Result<Value> {
        self.request("POST", path)
    }

    pub fn delete(&self, path: &str) -> anyhow::Result<Value> {
        self.request("DELETE", path)
    }

    /// A text page (`/status`).
    pub fn get_text(&self, path: &str) -> anyhow::Result<String> {
        let (status, body) = self.raw("GET", path)?;
        if !(200..300).contains(&status) {
            bail!("warden answered {status} for {path}");
        }
        Ok(body)
    }

    fn request(&self, method: &str, path: &str) -> anyhow::Result<Value> {
        let (status, body) = self.raw(method, path)?;
        let v: Value = serde_json::from_str(&body)
            .with_context(|| format!("warden answered {status} with something that is not JSON"))?;
        if !(200..300).contains(&status) {
            let msg = v["error"].as_str().unwrap_or("request failed");
            if status == 401 {
                if let Some(why) = &self.token_problem {
                    bail!("{msg}: the token could not be read: {why}");
                }
            }
            bail!("{msg}");
        }
        Ok(v)
    }

    fn raw(&self, method: &str, path: &str) -> anyhow::Result<(u16, String)> {
        let mut s =
            TcpStream::connect_timeout(&self.addr, Duration::from_secs(3)).with_context(|| {
                format!(
                    "cannot reach warden at {} (is `warden run` running?)",
                    self.addr
                )
            })?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        let request = self.request_text(method, path);
        let raw = match &self.pin {
            None => {
                s.write_all(request.as_bytes())?;
                let mut raw = Vec::new();
                s.read_to_end(&mut raw)?;
                raw
            }
            Some(pin) => {
                let config = crate::api_tls::client_config(pin).map_err(anyhow::Error::msg)?;
                let name = rustls::pki_types::ServerName::IpAddress(self.addr.ip().into());
                let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name)?;
                let mut tls = rustls::StreamOwned::new(conn, s);
                tls.write_all(request.as_bytes())
                    .with_context(|| format!("TLS with warden at {} failed", self.addr))?;
                let mut raw = Vec::new();
                match tls.read_to_end(&mut raw) {
                    Ok(_) => {}
                    // A server that closes without close_notify: what came is whole (the
                    // answer says how long it is, and is checked below).
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
                    Err(e) => return Err(e.into()),
                }
                raw
            }
        };
        Self::parse_response(&raw)
    }

    fn request_text(&self, method: &str, path: &str) -> String {
        let auth = self
            .token
            .as_ref()
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n",
            self.addr
        )
    }

    fn parse_response(raw: &[u8]) -> anyhow::Result<(u16, String)> {
        let text = String::from_utf8_lossy(raw);
        let (head, body) = text
            .split_once("\r\n\r\n")
            .context("bad response from warden")?;
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .context("bad status line from warden")?;
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(body)
        } else {
            body.to_owned()
        };
        Ok((status, body))
    }
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

/// Escapes a value for a URL path segment or query.
pub fn escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
