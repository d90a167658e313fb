//! `prover verify`: checks a final proof against a batch's public data with the protocol
//! version's keys, and says why when it does not hold.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use via_circuits::keys::{load_final_verifier, read_manifest_unchecked};
use via_l2::batch::batch_commitment;
use via_schemas::config::Config;
use via_schemas::l2::BatchPublicData;
use via_schemas::prover_interface::L1BatchProofForL1;

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Fetch the proof and public data of this batch from the core.
    #[arg(long, conflicts_with_all = ["proof", "public_data"])]
    batch: Option<u32>,
    /// The core's address (default: the devnet core's listen address).
    #[arg(long)]
    core: Option<String>,
    /// A proof as submitted to the core (JSON `L1BatchProofForL1`).
    #[arg(long, requires = "public_data")]
    proof: Option<PathBuf>,
    /// The batch's public data (JSON, as `GET /batches/{n}` shows it under `public_data`).
    #[arg(long, requires = "proof")]
    public_data: Option<PathBuf>,
}

async fn fetch(args: &VerifyArgs, config: &Config) -> anyhow::Result<(L1BatchProofForL1, BatchPublicData)> {
    if let (Some(proof), Some(public_data)) = (&args.proof, &args.public_data) {
        let proof = serde_json::from_slice(&std::fs::read(proof).with_context(|| format!("reading {}", proof.display()))?).context("the proof file is not an L1BatchProofForL1")?;
        let public_data = serde_json::from_slice(&std::fs::read(public_data).with_context(|| format!("reading {}", public_data.display()))?).context("the public data file is not a BatchPublicData")?;
        return Ok((proof, public_data));
    }
    let batch = args.batch.context("name a batch (--batch N) or files (--proof and --public-data)")?;
    let core = args.core.clone().unwrap_or_else(|| format!("http://{}", config.core_devnet.listen_addr));
    let client = reqwest::Client::new();
    let record: serde_json::Value = client.get(format!("{core}/batches/{batch}")).send().await?.error_for_status().with_context(|| format!("batch {batch} from {core}"))?.json().await?;
    let public_data = serde_json::from_value(record["public_data"].clone()).context("the core's batch record has no public data")?;
    let proof = client.get(format!("{core}/batches/{batch}/proof")).send().await?.error_for_status().with_context(|| format!("the proof of batch {batch} from {core}"))?.json().await?;
    Ok((proof, public_data))
}

/// Returns whether the proof holds; prints the verdict either way.
pub async fn run(args: VerifyArgs, config: &Config) -> anyhow::Result<bool> {
    let (proof, public_data) = fetch(&args, config).await?;
    let dir = config.prover.keys_dir.join(proof.protocol_version.to_string());
    let manifest = read_manifest_unchecked(&dir)?;
    let verifier = load_final_verifier(&dir, &manifest)?;
    let commitment = batch_commitment(&public_data, manifest.scheduler_vk_hash);
    let batch = public_data.l1_batch_number;
    let started = std::time::Instant::now();
    let verdict = verifier.verify(&proof.proof.0, &public_data);
    let took = started.elapsed();
    match verdict {
        Ok(()) => {
            println!("batch {batch}: valid proof ({} bytes, verified in {:.2} ms), commitment {commitment}", proof.proof.0.len(), took.as_secs_f64() * 1e3);
            Ok(true)
        }
        Err(e) => {
            println!("batch {batch}: INVALID: {e}");
            Ok(false)
        }
    }
}
