//! Warden's shell around the engine: configuration files, agents, the simulator, and (next)
//! the daemon. The `warden` binary is a thin CLI over this library.

pub mod agent;
pub mod config;
pub mod diag;
pub mod duration;
pub mod exec;
pub mod simulate;
pub mod store;
pub mod wire;
