//! What clients and peers send the proxy and the health checks: request and response heads,
//! chunked bodies, status lines. Nothing panics; the chunked decoder gives the same data and
//! the same end whichever way the input is split.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden::proxy::h1::{ChunkedDecoder, Client, parse_request, parse_response};

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let mut fwd = Vec::new();
    let req = parse_request(
        rest,
        Client {
            ip: Some("10.0.0.9"),
            trusted: split & 1 == 1,
        },
        &mut fwd,
    );
    if let Ok(Some(r)) = &req {
        assert!(r.len <= rest.len());
        assert!(fwd.ends_with(b"\r\n"));
    }
    // A response to a plain GET, and to whatever request parsed.
    let mut get_fwd = Vec::new();
    let get = parse_request(
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        Client::default(),
        &mut get_fwd,
    )
    .ok()
    .flatten()
    .expect("a GET parses");
    let mut out = Vec::new();
    let _ = parse_response(rest, &get, &mut out);
    if let Ok(Some(r)) = &req {
        let _ = parse_response(rest, r, &mut out);
    }
    let _ = warden::check::status_code(rest);

    // Chunked: one feed, or two at any split point, agree.
    let whole = {
        let mut d = ChunkedDecoder::default();
        let mut got = Vec::new();
        d.feed(rest, |c| got.extend_from_slice(c))
            .map(|n| (n, got, d.done()))
    };
    let at = usize::from(split).min(rest.len());
    let parts = {
        let mut d = ChunkedDecoder::default();
        let mut got = Vec::new();
        d.feed(&rest[..at], |c| got.extend_from_slice(c))
            .and_then(|a| {
                if d.done() {
                    return Ok((a, got, true));
                }
                let b = d.feed(&rest[at..], |c| got.extend_from_slice(c))?;
                Ok((a + b, got, d.done()))
            })
    };
    match (whole, parts) {
        (Ok(w), Ok(p)) => assert_eq!(w, p),
        (Err(_), Err(_)) => {}
        (w, p) => panic!("split at {at}: {w:?} vs {p:?}"),
    }
});
