//! What the store and etcd hold, read back: a snapshot (`StateFile`), a definition and a
//! logged event. Damaged or hostile bytes are refused, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(file) = serde_json::from_slice::<warden::wire::StateFile>(data) {
        let _ = file.into_state();
    }
    if let Ok(def) = serde_json::from_slice::<warden::wire::WireDefinition>(data) {
        let _ = def.into_orphan();
    }
    if let Ok(rec) = serde_json::from_slice::<warden::store::LogRecord>(data) {
        let _ = rec.event.into_event();
    }
});
