#![doc = include_str!("../README.md")]

pub mod batch;
pub mod curve;
pub mod hash;
pub mod scalar;
pub mod schnorr;
pub mod smt;
pub mod state;
pub mod tx;
