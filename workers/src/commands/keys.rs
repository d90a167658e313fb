//! `prover keys`: setup data for this prover's protocol version.

use std::path::PathBuf;

use clap::Subcommand;
use via_circuits::keys::generate_keys;
use via_schemas::config::Config;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Build every circuit of the protocol version and write its key (slow: as costly as a proof
    /// per circuit).
    Generate {
        /// Output directory (default: `{keys_dir}/{protocol_version}`).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// Where keys of the configured protocol version live.
pub fn keys_dir(config: &Config) -> PathBuf {
    config.prover.keys_dir.join(config.prover.protocol_version.to_string())
}

pub fn run(command: KeysCommand, config: &Config) -> anyhow::Result<()> {
    match command {
        KeysCommand::Generate { out } => {
            let dir = out.unwrap_or_else(|| keys_dir(config));
            let manifest = generate_keys(&dir, config.prover.protocol_version, &config.basic_circuits, &config.aggregation)?;
            println!("keys for protocol version {} in {}", manifest.protocol_version, dir.display());
            for key in &manifest.keys {
                println!("  {:<32} 2^{:<3} vk {}", key.name.to_string(), key.degree_bits, key.vk_hash);
            }
            println!("scheduler key hash (L1VerifierConfig.scheduler_vk_hash): {}", manifest.scheduler_vk_hash);
            Ok(())
        }
    }
}
