//! `prover worker`: the pools of one protocol version this process serves (witness generation,
//! prover groups, compression), each polling only its own task queue, with Prometheus metrics.

use clap::Args;
use tokio_util::sync::CancellationToken;
use tracing::info;
use via_activities::metrics::Metrics;
use via_schemas::config::Config;
use via_schemas::prover_interface::ProtocolSemanticVersion;

use crate::pipeline::{pool_queue, prover_activities, run_pools, serve_metrics, temporal_client, worker_pools};

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Pools to serve: witness-generator, compressor, prover-group-ID (comma separated; default:
    /// all of them).
    #[arg(long, value_delimiter = ',')]
    pools: Vec<String>,
    /// Prover groups to serve, by id (comma separated): short for `--pools prover-group-ID,...`.
    #[arg(long, value_delimiter = ',')]
    groups: Vec<String>,
    /// The protocol version to serve, as `0.MINOR.PATCH` (default: prover.protocol_version).
    #[arg(long)]
    protocol_version: Option<String>,
}

fn parse_version(s: &str) -> anyhow::Result<ProtocolSemanticVersion> {
    let parts: Vec<&str> = s.split('.').collect();
    match parts.as_slice() {
        ["0", minor, patch] => Ok(ProtocolSemanticVersion { minor: minor.parse()?, patch: patch.parse()? }),
        _ => anyhow::bail!("protocol version {s:?}: expected 0.MINOR.PATCH"),
    }
}

pub async fn run(args: WorkerArgs, mut config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    if let Some(v) = &args.protocol_version {
        config.prover.protocol_version = parse_version(v)?;
    }
    let pv = config.prover.protocol_version;
    let mut args = args;
    args.pools.extend(args.groups.iter().map(|g| format!("prover-group-{g}")));
    let pools = if args.pools.is_empty() { worker_pools(&config) } else { args.pools };
    let known: Vec<&str> = config.prover.prover_groups.iter().map(|g| g.id.as_str()).collect();
    for group in pools.iter().filter_map(|p| p.strip_prefix("prover-group-")) {
        anyhow::ensure!(known.contains(&group), "unknown prover group {group:?}: [prover].prover_groups has {}", known.join(", "));
    }
    let queues = pools.iter().map(|p| pool_queue(&config.temporal.deployment, pv, p)).collect::<anyhow::Result<Vec<_>>>()?;
    let client = temporal_client(&config.temporal).await?;
    let metrics = Metrics::default();
    let activities = prover_activities(&config, None, metrics.clone()).await?;
    let metrics_addr = serve_metrics(config.worker.metrics_addr, metrics, shutdown.clone()).await?;
    info!(protocol_version = %pv, %metrics_addr, worker = %activities.worker, "worker");
    run_pools(client, queues, activities, config.worker.max_concurrent_jobs, shutdown).await
}
