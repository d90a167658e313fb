//! `prover keys`: setup data for this prover's protocol version.

use std::path::PathBuf;

use clap::Subcommand;
use via_activities::blob_store::BlobStore;
use via_activities::circuit_store::publish_keys;
use via_circuits::keys::{KeyManifest, generate_keys};
use via_schemas::config::Config;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Build every circuit of the protocol version and write its key (slow: as costly as a proof
    /// per circuit).
    Generate {
        /// Output directory (default: `{keys_dir}/{protocol_version}`).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Then upload them to the object store (`[storage]`), where workers without local keys
        /// fetch them.
        #[arg(long)]
        publish: bool,
    },
    /// Upload a key directory to the object store (`[storage]`) under `keys/{protocol_version}/`,
    /// where workers without local keys fetch them.
    Publish {
        /// The key directory (default: `{keys_dir}/{protocol_version}`).
        #[arg(long)]
        from: Option<PathBuf>,
    },
}

/// Where keys of the configured protocol version live.
pub fn keys_dir(config: &Config) -> PathBuf {
    config.prover.keys_dir.join(config.prover.protocol_version.to_string())
}

pub async fn run(command: KeysCommand, config: &Config) -> anyhow::Result<()> {
    match command {
        KeysCommand::Generate { out, publish: and_publish } => {
            let dir = out.unwrap_or_else(|| keys_dir(config));
            let (pv, basic, aggregation) = (config.prover.protocol_version, config.basic_circuits, config.aggregation);
            let manifest = tokio::task::spawn_blocking({
                let dir = dir.clone();
                move || generate_keys(&dir, pv, &basic, &aggregation)
            })
            .await??;
            println!("keys for protocol version {} in {}", manifest.protocol_version, dir.display());
            for key in &manifest.keys {
                println!("  {:<32} 2^{:<3} vk {}", key.name.to_string(), key.degree_bits, key.vk_hash);
            }
            println!("scheduler key hash (L1VerifierConfig.scheduler_vk_hash): {}", manifest.scheduler_vk_hash);
            if and_publish {
                publish(config, &dir).await?;
            }
            Ok(())
        }
        KeysCommand::Publish { from } => publish(config, &from.unwrap_or_else(|| keys_dir(config))).await.map(|_| ()),
    }
}

async fn publish(config: &Config, dir: &std::path::Path) -> anyhow::Result<KeyManifest> {
    let store = BlobStore::open(&config.storage)?;
    let manifest = publish_keys(&store, dir).await?;
    println!("published the keys of protocol version {} from {} to {} (keys/{}/)", manifest.protocol_version, dir.display(), config.storage.url, manifest.protocol_version);
    Ok(manifest)
}
