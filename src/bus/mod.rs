//! The control plane, wire-compatible with python-vj's `vj_bus`: length-prefixed JSON frames
//! on a Unix stream socket; commands in, acks/errors/heartbeats out.

pub mod client;
pub mod command;
pub mod frame;
pub mod message;
pub mod server;

pub use client::{Client, ClientError};
pub use message::{Command, Outcome};
