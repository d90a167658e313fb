#![doc = include_str!("../README.md")]

pub mod batch;
pub mod jobs;
pub mod naming;
pub mod plan;
pub mod range;
