//! `prover bench pipeline`: what the pipeline costs over the stages it runs. The same devnet
//! batches are proved (a) by calling every stage's circuit directly in this process, with no
//! Temporal, storage or records, and (b) through the whole pipeline: a devnet core, the gateway,
//! a Temporal server, blobs in local files, SQLite records and every pool in this process, as
//! `prover dev` runs them. Circuits are loaded once, before either clock starts.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use via_activities::core_client::CoreClient;
use via_activities::metrics::Metrics;
use via_activities::records::JobRecords;
use via_circuits::witness_generator::generate_basic_witnesses;
use via_core_devnet::CoreDevnet;
use via_schemas::config::{Config, CoreDevnetConfig};
use via_schemas::prover_interface::{L1BatchNumber, ProofGenerationData};

use super::{peak_memory_mib, prove_directly, reset_peak_memory};
use crate::commands::gateway::Gateway;
use crate::pipeline::{ensure_keys, ensure_temporal, every_pool_queue, prover_activities, run_pools, temporal_client};

const ROUNDS: [&str; 6] = ["basic", "leaf", "node", "recursion tip", "scheduler", "compression"];

/// A fresh devnet core in `dir` that has sealed `batches` batches (the stream is seeded, so every
/// fresh core seals the same ones).
async fn sealed_core(config: &CoreDevnetConfig, dir: &std::path::Path, name: &str, batches: u32) -> anyhow::Result<Arc<CoreDevnet>> {
    let core = CoreDevnet::open(CoreDevnetConfig {
        database_url: format!("sqlite://{}/{name}.db", dir.display()),
        max_unproven_batches: config.max_unproven_batches.max(batches),
        ..config.clone()
    })
    .await?;
    for _ in 0..batches {
        core.seal_batch().await?.context("the devnet core would not seal another batch")?;
    }
    Ok(core)
}

/// Per-round seconds, summed over batches.
#[derive(Default)]
struct Figures {
    busy: BTreeMap<usize, f64>,
    wall: BTreeMap<usize, f64>,
}

pub async fn run(config: Config, batches: u32) -> anyhow::Result<()> {
    ensure_keys(&config).await?;
    let dir = tempfile::tempdir()?;
    let pv = config.prover.protocol_version;
    let mut config = config;
    config.storage.url = format!("file://{}/blobs", dir.path().display());
    config.records.database_url = format!("sqlite://{}/prover.db", dir.path().display());
    let unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    config.temporal.deployment = format!("bench-{}-{unix}/", std::process::id());

    let core = sealed_core(&config.core_devnet, dir.path(), "core-pipeline", batches).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    config.gateway.core_url = format!("http://{}", listener.local_addr()?);
    let core_client = CoreClient::new(&config.gateway.core_url);
    let activities = prover_activities(&config, Some(core_client.clone()), Metrics::default()).await?;
    let started = Instant::now();
    let circuits = activities.circuits.get(pv).await?;
    println!(
        "{batches} batch(es) of {} transactions, basic shape {:?}, {:?}; circuits loaded in {:.1} s",
        config.core_devnet.txs_per_batch,
        config.basic_circuits,
        config.aggregation,
        started.elapsed().as_secs_f64()
    );

    // (a) Direct: the same stage functions, one after another, nothing stored.
    let direct_core = sealed_core(&config.core_devnet, dir.path(), "core-direct", batches).await?;
    let mut inputs: Vec<ProofGenerationData> = Vec::new();
    while let Some(data) = direct_core.next_proof_generation_data().await? {
        inputs.push(data);
    }
    drop(direct_core);
    let mut direct = Figures::default();
    let mut witness_generation = Duration::ZERO;
    reset_peak_memory();
    let started = Instant::now();
    for data in &inputs {
        let t = Instant::now();
        let witnesses = generate_basic_witnesses(&data.witness_input_data, &config.basic_circuits)?;
        witness_generation += t.elapsed();
        let (rounds, bytes) = prove_directly(&circuits.basic, &circuits.aggregation, &witnesses)?;
        circuits.aggregation.final_verifier().verify(&bytes, &witnesses.public_data)?;
        for round in &rounds {
            *direct.busy.entry(round.round).or_default() += round.time.as_secs_f64();
        }
    }
    let direct_wall = started.elapsed();
    let direct_peak = peak_memory_mib();
    println!("direct:   {} batch(es) proven and verified in {:.1} s", inputs.len(), direct_wall.as_secs_f64());

    // (b) The pipeline, end to end, until the core has accepted every batch's proof.
    let _server = ensure_temporal(&config.temporal).await?;
    let client = temporal_client(&config.temporal).await?;
    let shutdown = CancellationToken::new();
    let core_task = tokio::spawn(core.serve(listener, shutdown.clone()));
    reset_peak_memory();
    let started = Instant::now();
    let gateway = Gateway::new(&config, client.clone(), core_client, &activities).with_limit(Some(batches as usize));
    let polling = tokio::spawn(gateway.poll(shutdown.clone()));
    let watching = tokio::spawn(until_submitted(activities.records.clone(), batches, started, shutdown.clone()));
    let served = run_pools(client, every_pool_queue(&config)?, activities.clone(), config.worker.max_concurrent_jobs, shutdown.clone()).await;
    shutdown.cancel();
    let _ = polling.await;
    let _ = core_task.await;
    let pipeline_wall = watching.await??;
    served?;
    let pipeline_peak = peak_memory_mib();
    println!("pipeline: {batches} batch(es) proven and accepted by the core in {:.1} s", pipeline_wall.as_secs_f64());

    let mut pipeline = Figures::default();
    for n in 1..=batches {
        for (round, _, busy, wall) in activities.records.timings(L1BatchNumber(n)).await?.rounds {
            *pipeline.busy.entry(round as usize).or_default() += busy;
            *pipeline.wall.entry(round as usize).or_default() += wall;
        }
    }
    // A pipeline job's time runs from its start to its end, so two jobs of one worker overlap
    // (one computes its witness vector while the other proves): the summed job time exceeds the
    // proving time, and the span (first start to last end, per batch) shows the overlap.
    println!("{:<20} {:>10} {:>16} {:>16}", "stage (all batches)", "direct s", "pipeline jobs s", "pipeline span s");
    println!("{:<20} {:>10.1} {:>16} {:>16}", "witness generation", witness_generation.as_secs_f64(), "-", "-");
    for (i, name) in ROUNDS.iter().enumerate() {
        let cell = |m: &BTreeMap<usize, f64>| m.get(&i).map_or("-".to_owned(), |s| format!("{s:.1}"));
        println!("{name:<20} {:>10} {:>16} {:>16}", cell(&direct.busy), cell(&pipeline.busy), cell(&pipeline.wall));
    }
    println!(
        "wall: direct {:.1} s, pipeline {:.1} s, ratio {:.3} (goal: at most 1.10)",
        direct_wall.as_secs_f64(),
        pipeline_wall.as_secs_f64(),
        pipeline_wall.as_secs_f64() / direct_wall.as_secs_f64()
    );
    println!("peak memory: direct {direct_peak:.0} MiB; pipeline worker (core, gateway and every pool in one process) {pipeline_peak:.0} MiB");
    Ok(())
}

/// Waits until the records show `batches` batches submitted, then stops the pipeline. Returns
/// the time from `started`; fails if a batch failed.
async fn until_submitted(records: JobRecords, batches: u32, started: Instant, shutdown: CancellationToken) -> anyhow::Result<Duration> {
    let outcome = loop {
        let statuses = match records.status(None).await {
            Ok(statuses) => statuses,
            Err(e) => break Err(e.into()),
        };
        if let Some(failed) = statuses.iter().find(|b| b.witness_input == "failed") {
            break Err(anyhow::anyhow!("batch {} failed: {}", failed.l1_batch_number, failed.error.clone().unwrap_or_default()));
        }
        if statuses.iter().filter(|b| b.submitted).count() >= batches as usize {
            break Ok(started.elapsed());
        }
        tokio::select! {
            _ = shutdown.cancelled() => break Err(anyhow::anyhow!("stopped before every batch was proven")),
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    };
    shutdown.cancel();
    outcome
}
