#![doc = include_str!("../README.md")]

pub mod config;
pub mod l2;
pub mod primitives;
pub mod prover_interface;
mod wire_version;

pub use wire_version::{UnsupportedWireVersion, WireVersion};
