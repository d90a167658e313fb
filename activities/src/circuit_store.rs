//! The circuits a worker proves with, loaded from the keys of each protocol version on first use.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::Mutex;
use via_circuits::aggregation::AggregationCircuits;
use via_circuits::basic::CircuitId;
use via_circuits::keys::{KeyError, KeyManifest, load_aggregation_circuits, load_basic_circuits, read_manifest};
use via_circuits::prover::BasicCircuit;
use via_schemas::config::{AggregationConfig, BasicCircuitsConfig};
use via_schemas::prover_interface::ProtocolSemanticVersion;

/// Every circuit of one protocol version.
pub struct Circuits {
    pub manifest: KeyManifest,
    pub basic: BTreeMap<CircuitId, BasicCircuit>,
    pub aggregation: AggregationCircuits,
}

/// Loads and keeps the circuits of each protocol version a worker meets.
pub struct CircuitStore {
    keys_dir: PathBuf,
    basic: BasicCircuitsConfig,
    aggregation: AggregationConfig,
    loaded: Mutex<HashMap<ProtocolSemanticVersion, Arc<Circuits>>>,
}

impl CircuitStore {
    /// Keys live in `{keys_dir}/{protocol_version}`, made for these shapes.
    pub fn new(keys_dir: PathBuf, basic: BasicCircuitsConfig, aggregation: AggregationConfig) -> Self {
        Self { keys_dir, basic, aggregation, loaded: Mutex::new(HashMap::new()) }
    }

    /// The circuits of `pv`, loading them (seconds, once) if needed. One load at a time: a
    /// second caller waits for the first instead of loading again.
    pub async fn get(&self, pv: ProtocolSemanticVersion) -> Result<Arc<Circuits>, KeyError> {
        let mut loaded = self.loaded.lock().await;
        if let Some(circuits) = loaded.get(&pv) {
            return Ok(circuits.clone());
        }
        let dir = self.keys_dir.join(pv.to_string());
        let (basic_config, aggregation_config) = (self.basic, self.aggregation);
        let circuits = tokio::task::spawn_blocking(move || -> Result<Circuits, KeyError> {
            let manifest = read_manifest(&dir, pv, &basic_config, &aggregation_config)?;
            let basic = load_basic_circuits(&dir, &manifest)?;
            let aggregation = load_aggregation_circuits(&dir, &manifest, &basic)?;
            Ok(Circuits { manifest, basic, aggregation })
        })
        .await
        .expect("loading keys does not panic")?;
        let circuits = Arc::new(circuits);
        loaded.insert(pv, circuits.clone());
        tracing::info!(protocol_version = %pv, "loaded circuits");
        Ok(circuits)
    }
}
