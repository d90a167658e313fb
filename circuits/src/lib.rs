#![doc = include_str!("../README.md")]

pub mod config;
pub mod aggregation;
pub mod basic;
pub mod gadgets;
pub mod keys;
pub mod prover;
pub mod proving;
pub mod verifier;
pub mod witness_generator;
