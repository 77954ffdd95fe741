//! Names the commit and the build date for `warden --version` (`WARDEN_COMMIT`,
//! `WARDEN_BUILD_DATE`). Outside a git checkout the commit is "unknown"; `SOURCE_DATE_EPOCH`
//! (reproducible builds) sets the date.

use std::process::Command;

fn main() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let commit = Command::new("git")
        .args(["-C", root, "rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_owned());
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        });
    println!("cargo:rustc-env=WARDEN_COMMIT={commit}");
    // The engine's own calendar: the date part of its RFC 3339 form.
    let stamp = warden_engine::Time::from_millis(secs.saturating_mul(1000)).rfc3339();
    println!("cargo:rustc-env=WARDEN_BUILD_DATE={}", &stamp[..10]);
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    for f in [".git/HEAD", ".git/refs/heads", ".git/packed-refs"] {
        println!("cargo:rerun-if-changed={root}/{f}");
    }
}
