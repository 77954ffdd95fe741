//! Warden's shell around the engine: configuration files, agents and processes, the store, the
//! daemon and its API, the simulator. The `warden` binary is a thin CLI over this library.

pub mod agent;
pub mod api;
pub mod api_tls;
pub mod check;
pub mod cib;
pub mod client;
pub mod cluster;
pub mod config;
pub mod control;
pub mod core;
pub mod daemon;
pub mod dbus;
pub mod diag;
pub mod duration;
pub mod exec;
pub mod fds;
pub mod follow;
pub mod handover;
pub mod logging;
pub mod metrics;
pub mod net;
pub mod notify;
pub mod proxy;
pub mod simulate;
pub mod store;
pub mod web;
pub mod wire;
