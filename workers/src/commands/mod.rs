//! The roles, one module each.

mod bench;
mod core_devnet;
mod dev;
pub mod gateway;
mod keys;
mod status;
mod verify;
mod worker;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use via_schemas::config::{Config, ProverBackendKind};

/// The Via prover: turns sealed L1 batches into proofs.
#[derive(Debug, Parser)]
#[command(name = "prover", version)]
pub struct Cli {
    /// Configuration file (TOML). Defaults to ./prover.toml when present.
    #[arg(long, global = true, env = "PROVER_CONFIG")]
    pub config: Option<PathBuf>,
    /// What makes the proofs: auto (the fastest this machine has), cpu or plonky2. Overrides
    /// `[prover].backend`.
    #[arg(long, global = true)]
    pub backend: Option<ProverBackendKind>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the local devnet end to end on the embedded defaults.
    Dev(dev::DevArgs),
    /// Run the devnet core alone: seal batches and serve the prover interface.
    CoreDevnet,
    /// Poll the core, start each batch's proving workflow, run the workflows and submit proofs.
    Gateway,
    /// Serve pools of provers (witness generation, prover groups, compression).
    Worker(worker::WorkerArgs),
    /// Setup data (circuit keys) for this prover's protocol version.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Benchmarks, each against a baseline measured in the same run.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Check a final proof against a batch's public data with the protocol version's keys.
    Verify(verify::VerifyArgs),
    /// Where batches stand, from the job records.
    Status {
        /// One batch (default: every batch, newest first).
        batch: Option<u32>,
    },
    /// Print the effective configuration as TOML.
    Config,
}

impl Command {
    /// Whether the command makes proofs (and so picks a prover at start).
    pub fn proves(&self) -> bool {
        matches!(self, Self::Dev(_) | Self::Worker(_) | Self::Bench(_))
    }

    pub async fn run(self, config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
        match self {
            Self::Dev(args) => dev::run(args, config, shutdown).await,
            Self::CoreDevnet => core_devnet::run(config.core_devnet, shutdown).await,
            Self::Gateway => gateway::run(config, shutdown).await,
            Self::Status { batch } => status::run(batch, &config).await,
            Self::Worker(args) => worker::run(args, config, shutdown).await,
            Self::Keys(command) => keys::run(command, &config).await,
            Self::Bench(command) => bench::run(command, config).await,
            Self::Verify(args) => {
                if verify::run(args, &config).await? {
                    Ok(())
                } else {
                    std::process::exit(1)
                }
            }
            Self::Config => {
                print!("{}", toml::to_string_pretty(&config)?);
                Ok(())
            }
        }
    }
}
