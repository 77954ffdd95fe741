//! Resource output, capped and rotated. A supervised process writes its stdout and stderr into
//! pipes; at the other end of each is `warden output-writer`, a small process of its own (its
//! own process group, so it outlives a restart of the daemon along with the process it serves)
//! that appends to `log/<id>.out` or `.err` and, once the file would pass `output_max`, renames
//! it to `<file>.1` (dropping the previous one) and starts a new file. A process that writes
//! without pause fills at most twice `output_max` per stream, never the disk; on a full disk
//! what cannot be written is dropped and the process is never blocked.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// `output_max` when a process does not set it.
pub const DEFAULT_OUTPUT_MAX: u64 = 10 << 20;
/// The smallest `output_max` (one read's worth).
pub const MIN_OUTPUT_MAX: u64 = 64 << 10;

/// Where a rotated file goes: `web.out` -> `web.out.1`.
pub fn rotated(path: &Path) -> PathBuf {
    super::with_suffix(path, ".1")
}

fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// Copies `input` to `path` until `input` ends, rotating at `max` bytes as the module says.
/// Only reading `input` can fail it.
pub fn write_rotating(mut input: impl Read, path: &Path, max: u64) -> io::Result<()> {
    let max = max.max(MIN_OUTPUT_MAX);
    let mut file = open(path).ok();
    let mut size = file
        .as_ref()
        .and_then(|f| f.metadata().ok())
        .map_or(0, |m| m.len());
    let mut buf = vec![0u8; MIN_OUTPUT_MAX as usize];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if size > 0 && size + n as u64 > max {
            // What the process wrote so far goes to `.1`; a new file takes the rest.
            let _ = std::fs::rename(path, rotated(path));
            file = None;
            size = 0;
        }
        if file.is_none() {
            file = open(path).ok();
        }
        match file.as_mut().map(|f| f.write_all(&buf[..n])) {
            Some(Ok(())) => size += n as u64,
            // A full disk, say: this part is lost, the next is tried on a reopened file.
            Some(Err(_)) | None => file = None,
        }
    }
}

/// A size as the configuration writes it: a number of bytes, or a number with `KiB`, `MiB` or
/// `GiB` (`K`, `M`, `G`, `KB`, `MB`, `GB` too, in the same powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(digits);
    let bad = || format!("bad size {s:?}: a number of bytes, or with KiB, MiB or GiB (\"10MiB\")");
    let n: u64 = n.parse().map_err(|_| bad())?;
    let shift = match unit.trim() {
        "" | "B" => 0,
        "K" | "KB" | "KiB" => 10,
        "M" | "MB" | "MiB" => 20,
        "G" | "GB" | "GiB" => 30,
        _ => return Err(bad()),
    };
    n.checked_mul(1 << shift).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_rotates_at_its_cap_and_keeps_one_old_file() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("web.out");
        // 1 MiB through a 256 KiB cap, in lines the test can count.
        let line = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n";
        let input: Vec<u8> = line.iter().copied().cycle().take(1 << 20).collect();
        write_rotating(&input[..], &path, 256 << 10).expect("write");
        let now = std::fs::metadata(&path).expect("file").len();
        let old = std::fs::metadata(rotated(&path)).expect("rotated").len();
        assert!(now <= 256 << 10 && old <= 256 << 10, "{now} {old}");
        assert!(now > 0 && old > 0);
        // The newest output is whole at the end of the current file.
        let text = std::fs::read(&path).expect("read");
        assert!(text.ends_with(line));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("file").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn sizes_read_as_written() {
        assert_eq!(parse_size("10MiB"), Ok(10 << 20));
        assert_eq!(parse_size("512K"), Ok(512 << 10));
        assert_eq!(parse_size("1 GiB"), Ok(1 << 30));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("10 parsecs").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
    }
}
