//! `prover dev`: the local devnet on the embedded defaults, in one process.
//!
//! Today the pipeline is the devnet core: it seals batches of signed transactions and serves them
//! to provers. The proving stages join this command as they land (see docs/ARCHITECTURE.md).

use anyhow::Context;
use clap::Args;
use tokio_util::sync::CancellationToken;
use via_circuits::keys::{generate_keys, read_manifest};
use via_core_devnet::CoreDevnet;
use via_schemas::config::Config;
use via_schemas::prover_interface::L1BatchNumber;

#[derive(Debug, Args)]
pub struct DevArgs {
    /// Stop after this many batches are sealed (default: run until Ctrl-C).
    #[arg(long)]
    batches: Option<u32>,
}

/// Generates the keys the devnet core verifies with, unless they are there already.
async fn ensure_keys(config: &Config) -> anyhow::Result<()> {
    let core = &config.core_devnet;
    if !core.verify_proofs {
        return Ok(());
    }
    let dir = core.keys_dir.join(core.protocol_version.to_string());
    match read_manifest(&dir, core.protocol_version, &config.basic_circuits, &config.aggregation) {
        Ok(_) => Ok(()),
        Err(reason) => {
            println!("keys for protocol version {}: {reason}", core.protocol_version);
            println!("generating them in {} (once; about a minute on the small shape)", dir.display());
            let (version, basic, aggregation) = (core.protocol_version, config.basic_circuits, config.aggregation);
            let manifest = tokio::task::spawn_blocking(move || generate_keys(&dir, version, &basic, &aggregation)).await??;
            println!("scheduler key hash {}", manifest.scheduler_vk_hash);
            Ok(())
        }
    }
}

pub async fn run(args: DevArgs, config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    ensure_keys(&config).await?;
    let core_config = config.core_devnet;
    let listener = tokio::net::TcpListener::bind(core_config.listen_addr).await.with_context(|| format!("cannot listen on {}", core_config.listen_addr))?;
    let addr = listener.local_addr()?;
    let core = CoreDevnet::open(core_config).await?;
    println!("devnet core: http://{addr} (database {})", core.config().database_url);

    let serving = tokio::spawn(core.clone().serve(listener, shutdown.clone()));
    let target = args.batches.map(L1BatchNumber);
    let interval = std::time::Duration::from_millis(core.config().batch_interval_ms.max(1));
    let mut paused = false;
    while !shutdown.is_cancelled() {
        let sealed = core.seal_batch().await?;
        if sealed.is_none() && !paused {
            println!("sealing paused: {} batches await a proof", core.config().max_unproven_batches);
        }
        paused = sealed.is_none();
        if let Some(number) = sealed {
            let record = core.batch(number).await?.context("sealed batch is recorded")?;
            println!(
                "batch {number}: sealed, root {}, commitment {}",
                record.public_data.new_state_root, record.commitment
            );
            if target.is_some_and(|t| number >= t) {
                break;
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::time::sleep(interval) => {}
        }
    }
    shutdown.cancel();
    serving.await??;
    Ok(())
}
