//! The configuration reader on any text: it never panics, and whatever it accepts it can read
//! again to the same engine configuration (the reader is deterministic).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let first = warden::config::parse(src, "fuzz.toml", || "here".to_owned());
    if let Ok(loaded) = first {
        let again = warden::config::parse(src, "fuzz.toml", || "here".to_owned())
            .expect("a file read once reads again");
        assert_eq!(loaded.engine.nodes(), again.engine.nodes());
        assert_eq!(loaded.engine.resources(), again.engine.resources());
    }
});
