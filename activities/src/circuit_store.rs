//! The circuits a worker proves with, loaded from the keys of each protocol version on first use.
//! Keys are read from a local directory; where it lacks them (a fresh node of an autoscaled
//! pool) they are fetched from the object store, where `prover keys publish` put them.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::Mutex;
use via_circuits::aggregation::AggregationCircuits;
use via_circuits::basic::CircuitId;
use via_circuits::keys::{KeyError, KeyManifest, MANIFEST, load_aggregation_circuits, load_basic_circuits, read_key_file, read_manifest, read_manifest_unchecked};
use via_circuits::prover::BasicCircuit;
use via_schemas::config::{AggregationConfig, BasicCircuitsConfig};
use via_schemas::prover_interface::ProtocolSemanticVersion;

use crate::blob_store::{BlobError, BlobStore, keys};

/// Why a protocol version's circuits could not be had.
#[derive(Debug, thiserror::Error)]
pub enum CircuitsError {
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error("setup data in the object store: {0}")]
    Store(#[from] BlobError),
    #[error("no keys for protocol version {pv} in {dir} nor in the object store (keys/{pv}/): generate them with `prover keys generate --publish`")]
    Nowhere { pv: ProtocolSemanticVersion, dir: PathBuf },
}

impl CircuitsError {
    /// Storage and file system hiccups pass; missing, stale or corrupt keys need an operator.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Keys(e) => e.is_retryable(),
            Self::Store(e) => e.is_retryable(),
            Self::Nowhere { .. } => false,
        }
    }
}

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
    /// Where keys missing from `keys_dir` are fetched from.
    store: Option<BlobStore>,
    loaded: Mutex<HashMap<ProtocolSemanticVersion, Arc<Circuits>>>,
}

impl CircuitStore {
    /// Keys live in `{keys_dir}/{protocol_version}`, made for these shapes, and are fetched from
    /// `store` when missing there.
    pub fn new(keys_dir: PathBuf, basic: BasicCircuitsConfig, aggregation: AggregationConfig, store: Option<BlobStore>) -> Self {
        Self { keys_dir, basic, aggregation, store, loaded: Mutex::new(HashMap::new()) }
    }

    /// The circuits of `pv`, loading them (seconds, once) if needed. One load at a time: a
    /// second caller waits for the first instead of loading again.
    pub async fn get(&self, pv: ProtocolSemanticVersion) -> Result<Arc<Circuits>, CircuitsError> {
        let mut loaded = self.loaded.lock().await;
        if let Some(circuits) = loaded.get(&pv) {
            return Ok(circuits.clone());
        }
        let dir = self.keys_dir.join(pv.to_string());
        let manifest = match (read_manifest(&dir, pv, &self.basic, &self.aggregation), &self.store) {
            (Ok(manifest), _) => manifest,
            (Err(reason), Some(store)) => {
                tracing::info!(protocol_version = %pv, %reason, "fetching keys from the object store");
                fetch_keys(store, &dir, pv, &self.basic, &self.aggregation).await?
            }
            (Err(e), None) => return Err(e.into()),
        };
        let circuits = tokio::task::spawn_blocking(move || -> Result<Circuits, KeyError> {
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

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CircuitsError + '_ {
    move |source| CircuitsError::Keys(KeyError::Io { path: path.to_owned(), source })
}

/// Uploads a key directory to the object store under `keys/{protocol_version}/`: every file its
/// manifest lists, each checked against it first, and the manifest last, so a worker that finds
/// the manifest finds every key.
pub async fn publish_keys(store: &BlobStore, dir: &Path) -> Result<KeyManifest, CircuitsError> {
    let manifest = read_manifest_unchecked(dir)?;
    let pv = manifest.protocol_version;
    for (file, sha256) in manifest.files() {
        let (dir, name) = (dir.to_owned(), file.clone());
        let bytes = tokio::task::spawn_blocking(move || read_key_file(&dir, &name, sha256)).await.expect("reading keys does not panic")?;
        store.put(&keys::setup_data(pv, &file), &bytes).await?;
    }
    let path = dir.join(MANIFEST);
    let bytes = tokio::fs::read(&path).await.map_err(io(&path))?;
    store.put(&keys::setup_data(pv, MANIFEST), &bytes).await?;
    Ok(manifest)
}

/// Fetches the keys of `pv` into `dir`: into a directory of this process's own first, checked
/// against the manifest, then moved into place, so a reader never sees half the keys and two
/// workers fetching at once do not mix their files.
pub async fn fetch_keys(store: &BlobStore, dir: &Path, pv: ProtocolSemanticVersion, basic: &BasicCircuitsConfig, aggregation: &AggregationConfig) -> Result<KeyManifest, CircuitsError> {
    let manifest_bytes = match store.get(&keys::setup_data(pv, MANIFEST)).await {
        Err(BlobError::NotFound { .. }) => return Err(CircuitsError::Nowhere { pv, dir: dir.to_owned() }),
        other => other?,
    };
    let parent = dir.parent().unwrap_or(Path::new("."));
    tokio::fs::create_dir_all(parent).await.map_err(io(parent))?;
    let staging = parent.join(format!(".{pv}.fetching-{}", std::process::id()));
    let _ = tokio::fs::remove_dir_all(&staging).await;
    tokio::fs::create_dir_all(&staging).await.map_err(io(&staging))?;
    let fetched = async {
        tokio::fs::write(staging.join(MANIFEST), &manifest_bytes).await.map_err(io(&staging))?;
        let manifest = read_manifest(&staging, pv, basic, aggregation)?;
        for (file, sha256) in manifest.files() {
            let bytes = store.get(&keys::setup_data(pv, &file)).await?;
            let path = staging.join(&file);
            tokio::fs::write(&path, &bytes).await.map_err(io(&path))?;
            // The store's own hash guards the transfer; the manifest's guards the keys.
            let (dir, name) = (staging.clone(), file.clone());
            tokio::task::spawn_blocking(move || read_key_file(&dir, &name, sha256)).await.expect("reading keys does not panic")?;
        }
        Ok::<_, CircuitsError>(manifest)
    }
    .await;
    let manifest = match fetched {
        Ok(manifest) => manifest,
        Err(e) => {
            let _ = tokio::fs::remove_dir_all(&staging).await;
            return Err(e);
        }
    };
    // Whatever was in `dir` (stale or partial keys) gives way; a worker that moved its copy in
    // first wins, and ours is dropped.
    if read_manifest(dir, pv, basic, aggregation).is_err() {
        let _ = tokio::fs::remove_dir_all(dir).await;
        if let Err(e) = tokio::fs::rename(&staging, dir).await
            && read_manifest(dir, pv, basic, aggregation).is_err()
        {
            let _ = tokio::fs::remove_dir_all(&staging).await;
            return Err(io(dir)(e));
        }
    }
    let _ = tokio::fs::remove_dir_all(&staging).await;
    tracing::info!(protocol_version = %pv, dir = %dir.display(), "fetched keys from the object store");
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use via_circuits::keys::{CIRCUITS_REVISION, read_manifest_unchecked};
    use via_schemas::config::StorageConfig;
    use via_schemas::primitives::{Bytes32, Hash};

    use super::*;

    const PV: ProtocolSemanticVersion = ProtocolSemanticVersion { minor: 7, patch: 1 };

    /// A key directory with a manifest and a final verifier (no circuits: publishing and fetching
    /// do not look inside the files).
    fn key_dir(dir: &Path) -> KeyManifest {
        use sha2::Digest;
        std::fs::create_dir_all(dir).unwrap();
        let verifier = b"the final verifier's bytes".to_vec();
        std::fs::write(dir.join("final_verifier.bin"), &verifier).unwrap();
        let manifest = KeyManifest {
            revision: CIRCUITS_REVISION,
            protocol_version: PV,
            basic_circuits: BasicCircuitsConfig::default(),
            aggregation: AggregationConfig::default(),
            scheduler_vk_hash: Hash::default(),
            final_verifier_sha256: Bytes32(sha2::Sha256::digest(&verifier).into()),
            keys: Vec::new(),
        };
        std::fs::write(dir.join(MANIFEST), serde_json::to_vec(&manifest).unwrap()).unwrap();
        manifest
    }

    fn store(root: &Path) -> BlobStore {
        BlobStore::open(&StorageConfig { url: format!("file://{}", root.display()), ..StorageConfig::default() }).unwrap()
    }

    #[tokio::test]
    async fn published_keys_are_fetched_into_an_empty_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let manifest = key_dir(&tmp.path().join("made"));
        let store = store(&tmp.path().join("blobs"));
        assert_eq!(publish_keys(&store, &tmp.path().join("made")).await.unwrap(), manifest);

        let fetched = tmp.path().join("worker").join(PV.to_string());
        let got = fetch_keys(&store, &fetched, PV, &BasicCircuitsConfig::default(), &AggregationConfig::default()).await.unwrap();
        assert_eq!(got, manifest);
        assert_eq!(read_manifest_unchecked(&fetched).unwrap(), manifest);
        assert_eq!(std::fs::read(fetched.join("final_verifier.bin")).unwrap(), b"the final verifier's bytes");
        let leftovers: Vec<_> = std::fs::read_dir(tmp.path().join("worker")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(leftovers, [std::ffi::OsString::from(PV.to_string())], "no staging directory is left behind");
    }

    #[tokio::test]
    async fn missing_or_corrupt_published_keys_are_refused_by_name() {
        let tmp = tempfile::tempdir().unwrap();
        let store = store(&tmp.path().join("blobs"));
        let dir = tmp.path().join("worker").join(PV.to_string());
        let (basic, aggregation) = (BasicCircuitsConfig::default(), AggregationConfig::default());
        let nowhere = fetch_keys(&store, &dir, PV, &basic, &aggregation).await.unwrap_err();
        assert!(matches!(nowhere, CircuitsError::Nowhere { .. }) && !nowhere.is_retryable(), "{nowhere}");
        assert!(nowhere.to_string().contains("prover keys generate --publish"), "{nowhere}");

        key_dir(&tmp.path().join("made"));
        publish_keys(&store, &tmp.path().join("made")).await.unwrap();
        // A store that returns other bytes than were published, under a valid blob hash.
        store.put(&keys::setup_data(PV, "final_verifier.bin"), b"other bytes").await.unwrap();
        let corrupt = fetch_keys(&store, &dir, PV, &basic, &aggregation).await.unwrap_err();
        assert!(corrupt.to_string().contains("final_verifier.bin") && !corrupt.is_retryable(), "{corrupt}");
        assert!(!dir.exists(), "nothing half-fetched is left in place");

        // Keys for another shape are stale, named as such.
        let other = BasicCircuitsConfig { txs_per_tx_execution: 5, ..basic };
        let stale = fetch_keys(&store, &dir, PV, &other, &aggregation).await.unwrap_err();
        assert!(stale.to_string().contains("stale"), "{stale}");
    }
}
