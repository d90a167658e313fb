//! `prover dev`: the whole pipeline on the embedded defaults, in one process: a Temporal dev
//! server (started as a child when none answers), the devnet core, the gateway and every worker
//! pool, local files and SQLite. It proves batches end to end, shows each batch's progress, and
//! prints a summary per proven batch: per-round proofs and times, final proof size, and that the
//! core verified it.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use tokio_util::sync::CancellationToken;
use via_activities::core_client::CoreClient;
use via_activities::metrics::Metrics;
use via_activities::records::JobRecords;
use via_core_devnet::CoreDevnet;
use via_schemas::config::Config;
use via_schemas::prover_interface::L1BatchNumber;

use super::gateway::Gateway;
use crate::pipeline::{ensure_keys, ensure_temporal, every_pool_queue, prover_activities, run_pools, serve_metrics, temporal_client};

#[derive(Debug, Args)]
pub struct DevArgs {
    /// Stop once this many batches are proven (default: run until Ctrl-C).
    #[arg(long)]
    batches: Option<u32>,
}

/// Shows each batch's progress and prints its summary once proven. Returns when `target`
/// batches have finished (never without a target), failing if any of them failed, or on shutdown.
async fn watch(records: JobRecords, target: Option<u32>, shutdown: CancellationToken) -> anyhow::Result<()> {
    const ROUNDS: [&str; 6] = ["basic", "leaf", "node", "recursion tip", "scheduler", "compression"];
    // Bars on a terminal; plain lines otherwise (logs, CI), where indicatif draws nothing.
    let interactive = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let bars = MultiProgress::new();
    let say = |line: String| -> anyhow::Result<()> {
        if interactive {
            bars.println(line)?;
        } else {
            println!("{line}");
        }
        Ok(())
    };
    let style = ProgressStyle::with_template("{spinner} batch {prefix}: {msg} [{elapsed}]").expect("a valid template");
    let mut shown: BTreeMap<u32, ProgressBar> = BTreeMap::new();
    let (mut proven, mut failed) = (0, 0);
    loop {
        for batch in records.status(None).await?.into_iter().rev() {
            let n = batch.l1_batch_number;
            let bar = shown.entry(n).or_insert_with(|| {
                let bar = bars.add(ProgressBar::new_spinner().with_style(style.clone()).with_prefix(n.to_string()));
                bar.enable_steady_tick(Duration::from_millis(200));
                bar
            });
            if bar.is_finished() {
                continue;
            }
            let done: i64 = batch.jobs.iter().filter(|(_, s, _)| s == "successful").map(|(_, _, c)| c).sum();
            let running: Vec<String> = batch.jobs.iter().filter(|(_, s, _)| s == "in_progress").map(|(r, _, c)| format!("{c} {}", ROUNDS.get(*r as usize).unwrap_or(&"?"))).collect();
            bar.set_message(format!("{} - {done} proofs done{}", batch.witness_input, if running.is_empty() { String::new() } else { format!(", proving {}", running.join(", ")) }));
            if batch.submitted {
                let timings = records.timings(L1BatchNumber(n)).await?;
                let mut summary = format!("batch {n}: proven and verified by the core");
                if let Some(total) = timings.total_seconds {
                    summary += &format!(" in {total:.1} s");
                }
                if let Some(bytes) = timings.final_proof_bytes {
                    summary += &format!(", final proof {bytes} bytes");
                }
                for (round, proofs, busy, wall) in &timings.rounds {
                    summary += &format!("\n    {:<14} {proofs:>3} proofs, {busy:>6.1} s proving, {wall:>6.1} s wall", ROUNDS.get(*round as usize).unwrap_or(&"?"));
                }
                bar.finish_and_clear();
                say(summary)?;
                proven += 1;
            } else if batch.witness_input == "failed" {
                bar.finish_and_clear();
                say(format!("batch {n}: FAILED: {}", batch.error.unwrap_or_default()))?;
                failed += 1;
            }
        }
        if target.is_some_and(|t| proven + failed >= t) {
            anyhow::ensure!(failed == 0, "{failed} of {} batches failed", proven + failed);
            return Ok(());
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

pub async fn run(args: DevArgs, config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    ensure_keys(&config).await?;
    let _server = ensure_temporal(&config.temporal).await?;
    let client = temporal_client(&config.temporal).await?;

    let core_config = config.core_devnet.clone();
    let listener = tokio::net::TcpListener::bind(core_config.listen_addr).await.with_context(|| format!("cannot listen on {}", core_config.listen_addr))?;
    let core_addr = listener.local_addr()?;
    let core = CoreDevnet::open(core_config).await?;
    let core_task = tokio::spawn(core.run(listener, shutdown.clone()));

    let mut config = config;
    config.gateway.core_url = format!("http://{core_addr}");
    let metrics = Metrics::default();
    let core_client = CoreClient::new(&config.gateway.core_url);
    let activities = prover_activities(&config, Some(core_client.clone()), metrics.clone()).await?;
    let metrics_addr = serve_metrics(config.worker.metrics_addr, metrics, shutdown.clone()).await?;
    println!("devnet core: http://{core_addr}");
    println!("temporal ui: {} (workflows batch-N; filter by BatchNumber, ProtocolVersion, ProvingStage)", config.temporal.ui_address);
    println!("metrics:     http://{metrics_addr}/metrics");
    println!("records:     {} (prover status)", config.records.database_url);

    let gateway = Gateway::new(&config, client.clone(), core_client, &activities).with_limit(args.batches.map(|n| n as usize));
    let polling = tokio::spawn(gateway.poll(shutdown.clone()));
    let watching = tokio::spawn({
        let (records, shutdown) = (activities.records.clone(), shutdown.clone());
        async move {
            let outcome = watch(records, args.batches, shutdown.clone()).await;
            shutdown.cancel();
            outcome
        }
    });
    let served = run_pools(client, every_pool_queue(&config)?, activities, config.worker.max_concurrent_jobs, shutdown.clone()).await;
    shutdown.cancel();
    let _ = polling.await;
    let _ = core_task.await;
    watching.await??;
    served
}
