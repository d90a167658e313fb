//! The `prover` command.

mod commands;
mod pipeline;
mod runner;

use clap::Parser;

fn main() -> anyhow::Result<()> {
    runner::run(commands::Cli::parse())
}
