#![doc = include_str!("../README.md")]

pub mod blob_store;
pub mod circuit_store;
pub mod core_client;
pub mod jobs;
pub mod metrics;
pub mod records;
pub mod stages;
