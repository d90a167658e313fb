//! The pieces every pipeline role shares: the Temporal client, the activities with their
//! storage, records and circuits, and running several pools (one Temporal worker per task queue)
//! in one process until shutdown.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use temporalio_client::{Client, ClientOptions, Connection, ConnectionOptions, Url};
use temporalio_sdk::runtime::worker_tuner::{FixedSizeSlotSupplier, TunerHolder};
use temporalio_sdk::{Runtime, Worker, WorkerOptions};
use tokio_util::sync::CancellationToken;
use via_activities::blob_store::BlobStore;
use via_activities::circuit_store::CircuitStore;
use via_activities::core_client::CoreClient;
use via_activities::metrics::Metrics;
use via_activities::records::JobRecords;
use via_activities::stages::ProverActivities;
use via_circuits::keys::{generate_keys, read_manifest};
use via_schemas::config::{Config, TemporalConfig};
use via_schemas::prover_interface::ProtocolSemanticVersion;
use via_workflows::batch::BatchProvingWorkflow;
use via_workflows::naming::{GATEWAY_POOL, Pool, task_queue};
use via_workflows::range::RangeWorkflow;

/// Connects to the Temporal frontend.
pub async fn temporal_client(config: &TemporalConfig) -> anyhow::Result<Client> {
    let url = Url::from_str(&config.address).with_context(|| format!("temporal.address {:?}", config.address))?;
    let connection = Connection::connect(ConnectionOptions::new(url).build()).await.with_context(|| format!("cannot reach Temporal at {}", config.address))?;
    Ok(Client::new(connection, ClientOptions::new(config.namespace.clone()).build())?)
}

/// The activities of one process, over the configured storage, records and keys.
pub async fn prover_activities(config: &Config, core: Option<CoreClient>, metrics: Metrics) -> anyhow::Result<ProverActivities> {
    let store = BlobStore::open(&config.storage)?;
    let records = JobRecords::open(&config.records.database_url).await?;
    let circuits = Arc::new(CircuitStore::new(config.prover.keys_dir.clone(), config.basic_circuits, config.aggregation, Some(store.clone())));
    let worker = format!("{}@{}", std::process::id(), std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into()));
    Ok(ProverActivities::new(store, records, circuits, metrics, core, worker))
}

/// The task queue of a pool this process serves, by name: `witness-generator`, `compressor`,
/// `gateway` or `prover-group-{id}`.
pub fn pool_queue(deployment: &str, pv: ProtocolSemanticVersion, name: &str) -> anyhow::Result<String> {
    let pool = match name {
        "witness-generator" => Pool::WitnessGenerator,
        "compressor" => Pool::Compressor,
        GATEWAY_POOL => return Ok(format!("{deployment}{pv}/{GATEWAY_POOL}")),
        other => Pool::ProverGroup(other.strip_prefix("prover-group-").with_context(|| format!("unknown pool {other:?}: expected witness-generator, compressor, gateway or prover-group-ID"))?.to_owned()),
    };
    Ok(format!("{deployment}{}", task_queue(pv, &pool)))
}

/// Every worker pool of the configuration: witness generation, compression and each prover group.
pub fn worker_pools(config: &Config) -> Vec<String> {
    let mut pools = vec!["witness-generator".to_owned(), "compressor".to_owned()];
    pools.extend(config.prover.prover_groups.iter().map(|g| format!("prover-group-{}", g.id)));
    pools
}

/// The task queues of every pool, the gateway's included, for one process that serves them all
/// (`prover dev`).
pub fn every_pool_queue(config: &Config) -> anyhow::Result<Vec<String>> {
    let mut pools = worker_pools(config);
    pools.push(GATEWAY_POOL.to_owned());
    pools.iter().map(|p| pool_queue(&config.temporal.deployment, config.prover.protocol_version, p)).collect()
}

/// Serves `/metrics` until shutdown; returns the address it bound.
pub async fn serve_metrics(addr: SocketAddr, metrics: Metrics, shutdown: CancellationToken) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("metrics address {addr}"))?;
    let bound = listener.local_addr()?;
    let app = axum::Router::new().route("/metrics", axum::routing::get(move || async move { metrics.render() }));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await;
    });
    Ok(bound)
}

/// Runs one Temporal worker per queue on this task (workers are not `Send`) until `shutdown`.
/// Every worker registers every activity; the gateway's also runs the workflows.
pub async fn run_pools(client: Client, queues: Vec<String>, activities: ProverActivities, concurrency: usize, shutdown: CancellationToken) -> anyhow::Result<()> {
    let runtime = Runtime::from_current_tokio(Default::default())?;
    let mut workers = Vec::with_capacity(queues.len());
    for queue in &queues {
        let tuner = TunerHolder::builder()
            .workflow_task_slot_supplier(FixedSizeSlotSupplier::new(100))
            .activity_task_slot_supplier(FixedSizeSlotSupplier::new(concurrency.max(1)))
            .local_activity_task_slot_supplier(FixedSizeSlotSupplier::new(1))
            .nexus_task_slot_supplier(FixedSizeSlotSupplier::new(1))
            .build();
        let mut options = WorkerOptions::new(queue.as_str()).tuner(tuner).build();
        options.register_activities(activities.clone());
        if queue.ends_with(&format!("/{GATEWAY_POOL}")) {
            options.register_workflow::<BatchProvingWorkflow>()?;
            options.register_workflow::<RangeWorkflow>()?;
        }
        workers.push(Worker::new(&runtime, client.clone(), options).with_context(|| format!("worker for {queue}"))?);
    }
    let stops: Vec<_> = workers.iter().map(|w| w.shutdown_handle()).collect();
    tracing::info!(?queues, "polling");
    let stopper = async move {
        shutdown.cancelled().await;
        for stop in &stops {
            stop();
        }
    };
    let runs = futures::future::join_all(workers.iter_mut().map(|w| w.run()));
    let (results, ()) = tokio::join!(runs, stopper);
    for result in results {
        result?;
    }
    Ok(())
}

/// A Temporal dev server this process started (stopped with it).
pub struct DevServer(Child);

impl Drop for DevServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn port_of(address: &str) -> anyhow::Result<u16> {
    address.rsplit(':').next().and_then(|p| p.trim_end_matches('/').parse().ok()).with_context(|| format!("no port in {address:?}"))
}

/// Reuses the Temporal server at the configured address, or starts a dev server there.
pub async fn ensure_temporal(config: &TemporalConfig) -> anyhow::Result<Option<DevServer>> {
    if temporal_client(config).await.is_ok() {
        println!("temporal: using the server at {}", config.address);
        return Ok(None);
    }
    std::fs::create_dir_all(".devnet")?;
    let log = std::fs::File::create(".devnet/temporal.log")?;
    let child = Command::new(&config.cli)
        .args(["server", "start-dev", "--ip", "127.0.0.1", "--log-level", "warn", "--db-filename", ".devnet/temporal.db"])
        .args(["--port", &port_of(&config.address)?.to_string(), "--ui-port", &port_of(&config.ui_address)?.to_string()])
        .args(["--search-attribute", "BatchNumber=Int", "--search-attribute", "ProtocolVersion=Keyword", "--search-attribute", "ProvingStage=Keyword"])
        .stdout(log.try_clone()?)
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start the Temporal dev server with {} (run infra/install.sh)", config.cli.display()))?;
    let server = DevServer(child);
    for _ in 0..150 {
        if temporal_client(config).await.is_ok() {
            println!("temporal: started a dev server at {} (log .devnet/temporal.log)", config.address);
            return Ok(Some(server));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    anyhow::bail!("the Temporal dev server did not start; see .devnet/temporal.log")
}

/// Generates the keys the devnet core verifies with, unless they are there already.
pub async fn ensure_keys(config: &Config) -> anyhow::Result<()> {
    let core = &config.core_devnet;
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
