//! Several machines on etcd (docs/cluster.md): the settings and timing budget, the etcd
//! client, membership leases, the coordinator and the node agents.

pub mod etcd;
pub mod settings;

pub use settings::{EtcdSettings, TlsFiles};
