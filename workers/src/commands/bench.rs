//! `prover bench`: benchmarks that compare our path with a baseline measured in the same run.

use std::time::{Duration, Instant};

use clap::{Subcommand, ValueEnum};
use via_circuits::basic::CircuitId;
use via_circuits::prover::BasicCircuit;
use via_circuits::witness_generator::generate_basic_witnesses;
use via_core_devnet::CoreDevnet;
use via_schemas::config::{BasicCircuitsConfig, CoreDevnetConfig};
use via_schemas::l2::WitnessInputData;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Round 0: each basic circuit proved through our path (witness vector, then proof) and by
    /// calling plonky2's `prove` directly on the same circuit and witness.
    Basic {
        /// Instance shape: the production one, or the small one of tests.
        #[arg(long, value_enum, default_value_t = Shape::Production)]
        shape: Shape,
        /// Runs per measurement; the fastest is reported.
        #[arg(long, default_value_t = 1)]
        runs: usize,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shape {
    Production,
    Small,
}

impl Shape {
    fn config(self) -> BasicCircuitsConfig {
        match self {
            Self::Production => BasicCircuitsConfig::PRODUCTION,
            Self::Small => BasicCircuitsConfig::SMALL,
        }
    }
}

pub async fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Basic { shape, runs } => basic(shape.config(), runs.max(1)).await,
    }
}

/// A mixed devnet batch big enough to fill an instance of every circuit at `config`'s shape.
async fn devnet_batch(config: &BasicCircuitsConfig) -> anyhow::Result<WitnessInputData> {
    let dir = tempfile::tempdir()?;
    let txs = config.txs_per_tx_execution.max(config.blocks_per_pubdata_hasher).max(config.signatures_per_signature_verifier * 2).max(8);
    let core = CoreDevnet::open(CoreDevnetConfig {
        database_url: format!("sqlite://{}/core.db", dir.path().display()),
        txs_per_batch: txs,
        user_accounts: 16,
        ..CoreDevnetConfig::default()
    })
    .await?;
    // The first batch opens the accounts with deposits; the second mixes every kind.
    core.seal_batch().await?;
    core.seal_batch().await?;
    core.next_proof_generation_data().await?;
    let data = core.next_proof_generation_data().await?.ok_or_else(|| anyhow::anyhow!("the devnet sealed no second batch"))?;
    Ok(data.witness_input_data)
}

/// Resets the kernel's peak-RSS counter for this process, so the next reading covers only what
/// follows (Linux `clear_refs` 5).
fn reset_peak_memory() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak resident memory since the last reset, in MiB (Linux `VmHWM`).
fn peak_memory_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok());
    kib.map_or(f64::NAN, |k| k / 1024.0)
}

struct Measured {
    witness_vector: Duration,
    total: Duration,
    peak_mib: f64,
}

fn fastest(runs: usize, mut measure: impl FnMut() -> anyhow::Result<Measured>) -> anyhow::Result<Measured> {
    let mut best: Option<Measured> = None;
    for _ in 0..runs {
        let m = measure()?;
        if best.as_ref().is_none_or(|b| m.total < b.total) {
            best = Some(m);
        }
    }
    Ok(best.expect("at least one run"))
}

async fn basic(config: BasicCircuitsConfig, runs: usize) -> anyhow::Result<()> {
    println!("basic circuits at {config:?}, fastest of {runs} run(s)");
    let input = devnet_batch(&config).await?;
    let witnesses = generate_basic_witnesses(&input, &config)?;
    println!(
        "{:<24} {:>6} {:>8} {:>9} {:>9} {:>10} {:>10} {:>6} {:>9} {:>9} {:>8}",
        "circuit", "degree", "build s", "wit.vec s", "prove s", "ours s", "plonky2 s", "ratio", "ours MiB", "base MiB", "proof KiB"
    );
    for id in CircuitId::ALL {
        let instance = witnesses.instances.iter().find(|i| i.circuit_id == id).expect("every circuit has an instance");
        let started = Instant::now();
        let circuit = BasicCircuit::build(id, &config);
        let build = started.elapsed();

        let baseline = fastest(runs, || {
            reset_peak_memory();
            let started = Instant::now();
            let pw = circuit.partial_witness(&instance.witness)?;
            let proof = circuit.data.prove(pw)?;
            let total = started.elapsed();
            let peak_mib = peak_memory_mib();
            circuit.verify(proof)?;
            Ok(Measured { witness_vector: Duration::ZERO, total, peak_mib })
        })?;
        let mut proof_bytes = 0;
        let ours = fastest(runs, || {
            reset_peak_memory();
            let started = Instant::now();
            let vector = circuit.witness_vector(&instance.witness)?;
            let witness_vector = started.elapsed();
            let proof = circuit.prove_witness_vector(vector)?;
            let total = started.elapsed();
            let peak_mib = peak_memory_mib();
            proof_bytes = proof.to_bytes().len();
            circuit.verify(proof)?;
            Ok(Measured { witness_vector, total, peak_mib })
        })?;
        println!(
            "{:<24} {:>6} {:>8.2} {:>9.2} {:>9.2} {:>10.2} {:>10.2} {:>6.3} {:>9.0} {:>9.0} {:>8.1}",
            id.to_string(),
            format!("2^{}", circuit.data.common.degree_bits()),
            build.as_secs_f64(),
            ours.witness_vector.as_secs_f64(),
            (ours.total - ours.witness_vector).as_secs_f64(),
            ours.total.as_secs_f64(),
            baseline.total.as_secs_f64(),
            ours.total.as_secs_f64() / baseline.total.as_secs_f64(),
            ours.peak_mib,
            baseline.peak_mib,
            proof_bytes as f64 / 1024.0,
        );
    }
    Ok(())
}
