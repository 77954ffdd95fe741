//! Several machines on etcd (docs/cluster.md): the settings and timing budget, the etcd
//! client, membership leases, the coordinator and the node agents.

pub mod agent;
pub mod coordinator;
pub mod etcd;
pub mod health;
pub mod log;
pub mod node;
pub mod session;
pub mod settings;
pub mod wire;

pub use settings::{EtcdSettings, TlsFiles};
