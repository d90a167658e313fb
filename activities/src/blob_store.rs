//! Blobs in an object store (local files by default, S3 for a fleet), each under a deterministic
//! key so a retried activity overwrites its own output instead of adding another, and each
//! prefixed with its SHA-256 so a corrupted blob is detected on read.

use std::fmt;
use std::sync::Arc;

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use sha2::{Digest, Sha256};
use via_circuits::basic::CircuitId;
use via_schemas::config::StorageConfig;
use via_schemas::prover_interface::{L1BatchNumber, ProtocolSemanticVersion};

/// Why a blob could not be stored or read.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("storage url {url}: {reason}")]
    Config { url: String, reason: String },
    #[error("blob {key} does not exist")]
    NotFound { key: BlobKey },
    #[error("blob {key} is corrupt: {reason}")]
    Corrupt { key: BlobKey, reason: String },
    #[error("blob {key}: {source}")]
    Store { key: BlobKey, source: object_store::Error },
}

impl BlobError {
    /// Store errors may pass; a missing or corrupt blob needs its producer to run again.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Store { .. } => true,
            Self::Config { .. } | Self::NotFound { .. } | Self::Corrupt { .. } => false,
        }
    }
}

/// A blob's place in the store: `{protocol_version}/batches/{n}/...`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct BlobKey(pub String);

impl fmt::Display for BlobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where one proof of a batch lives, by round.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum ProofSlot {
    /// Round 0: a basic proof, by instance sequence.
    Basic { circuit_id: CircuitId, sequence: usize },
    /// Round 1: a leaf, by its index among the type's leaves.
    Leaf { circuit_id: CircuitId, index: usize },
    /// Round 2: a node, by level (1 = above the leaves) and index within the level. A range
    /// partition's nodes are numbered within its own span, so keys never collide.
    Node { circuit_id: CircuitId, level: usize, index: usize },
    RecursionTip,
    Scheduler,
    /// Round 5: the final proof, compressed.
    Final,
}

impl ProofSlot {
    /// The aggregation round this proof belongs to.
    pub fn round(&self) -> u8 {
        match self {
            Self::Basic { .. } => 0,
            Self::Leaf { .. } => 1,
            Self::Node { .. } => 2,
            Self::RecursionTip => 3,
            Self::Scheduler => 4,
            Self::Final => 5,
        }
    }
}

/// Deterministic blob keys.
pub mod keys {
    use super::*;

    fn batch(pv: ProtocolSemanticVersion, batch: L1BatchNumber) -> String {
        format!("{pv}/batches/{batch}")
    }

    /// A file of a protocol version's setup data, as `prover keys publish` stores it.
    pub fn setup_data(pv: ProtocolSemanticVersion, file: &str) -> BlobKey {
        BlobKey(format!("keys/{pv}/{file}"))
    }

    pub fn witness_input(pv: ProtocolSemanticVersion, n: L1BatchNumber) -> BlobKey {
        BlobKey(format!("{}/witness_input.json", batch(pv, n)))
    }

    pub fn public_data(pv: ProtocolSemanticVersion, n: L1BatchNumber) -> BlobKey {
        BlobKey(format!("{}/public_data.json", batch(pv, n)))
    }

    pub fn basic_witness(pv: ProtocolSemanticVersion, n: L1BatchNumber, circuit_id: CircuitId, sequence: usize) -> BlobKey {
        BlobKey(format!("{}/round_0/{}/{sequence}/witness.json", batch(pv, n), circuit_id.id()))
    }

    pub fn proof(pv: ProtocolSemanticVersion, n: L1BatchNumber, slot: ProofSlot) -> BlobKey {
        let b = batch(pv, n);
        BlobKey(match slot {
            ProofSlot::Basic { circuit_id, sequence } => format!("{b}/round_0/{}/{sequence}/proof.bin", circuit_id.id()),
            ProofSlot::Leaf { circuit_id, index } => format!("{b}/round_1/{}/{index}/proof.bin", circuit_id.id()),
            ProofSlot::Node { circuit_id, level, index } => format!("{b}/round_2/{}/{level}_{index}/proof.bin", circuit_id.id()),
            ProofSlot::RecursionTip => format!("{b}/round_3/proof.bin"),
            ProofSlot::Scheduler => format!("{b}/round_4/proof.bin"),
            ProofSlot::Final => format!("{b}/round_5/final_proof.bin"),
        })
    }
}

const HASH_LEN: usize = 32;

/// The object store, with integrity checks.
#[derive(Clone, Debug)]
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
}

impl BlobStore {
    /// A store from configuration: `file://PATH` or `s3://BUCKET[/PREFIX]`.
    pub fn open(config: &StorageConfig) -> Result<Self, BlobError> {
        let url = &config.url;
        let bad = |reason: String| BlobError::Config { url: url.clone(), reason };
        if let Some(path) = url.strip_prefix("file://") {
            std::fs::create_dir_all(path).map_err(|e| bad(format!("cannot create {path}: {e}")))?;
            let fs = LocalFileSystem::new_with_prefix(path).map_err(|e| bad(e.to_string()))?;
            return Ok(Self { store: Arc::new(fs) });
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let mut builder = AmazonS3Builder::new().with_bucket_name(bucket).with_region(&config.s3_region).with_allow_http(config.s3_allow_http);
            if let Some(endpoint) = &config.s3_endpoint {
                // S3-compatible servers (s3s-fs, MinIO) want path-style requests.
                builder = builder.with_endpoint(endpoint).with_virtual_hosted_style_request(false);
            }
            if let (Some(key), Some(secret)) = (&config.s3_access_key_id, &config.s3_secret_access_key) {
                builder = builder.with_access_key_id(key).with_secret_access_key(secret);
            }
            let s3 = builder.build().map_err(|e| bad(e.to_string()))?;
            let store: Arc<dyn ObjectStore> = if prefix.is_empty() { Arc::new(s3) } else { Arc::new(object_store::prefix::PrefixStore::new(s3, prefix.trim_end_matches('/'))) };
            return Ok(Self { store });
        }
        Err(bad("expected file://PATH or s3://BUCKET[/PREFIX]".into()))
    }

    /// Stores `bytes` at `key`, replacing what was there.
    pub async fn put(&self, key: &BlobKey, bytes: &[u8]) -> Result<(), BlobError> {
        let mut content = Vec::with_capacity(HASH_LEN + bytes.len());
        content.extend_from_slice(&Sha256::digest(bytes));
        content.extend_from_slice(bytes);
        self.store.put(&Path::from(key.0.as_str()), PutPayload::from(content)).await.map_err(|source| BlobError::Store { key: key.clone(), source })?;
        Ok(())
    }

    /// Reads the blob at `key`, checking its hash.
    pub async fn get(&self, key: &BlobKey) -> Result<Vec<u8>, BlobError> {
        let got = match self.store.get(&Path::from(key.0.as_str())).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Err(BlobError::NotFound { key: key.clone() }),
            Err(source) => return Err(BlobError::Store { key: key.clone(), source }),
        };
        let content = got.bytes().await.map_err(|source| BlobError::Store { key: key.clone(), source })?;
        if content.len() < HASH_LEN {
            return Err(BlobError::Corrupt { key: key.clone(), reason: format!("{} bytes, shorter than its hash", content.len()) });
        }
        let (hash, payload) = content.split_at(HASH_LEN);
        if Sha256::digest(payload).as_slice() != hash {
            return Err(BlobError::Corrupt { key: key.clone(), reason: "its content does not match its SHA-256".into() });
        }
        Ok(payload.to_vec())
    }

    /// Stores a value as JSON.
    pub async fn put_json<T: serde::Serialize>(&self, key: &BlobKey, value: &T) -> Result<(), BlobError> {
        self.put(key, &serde_json::to_vec(value).expect("our types serialize")).await
    }

    /// Reads a JSON value.
    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, key: &BlobKey) -> Result<T, BlobError> {
        let bytes = self.get(key).await?;
        serde_json::from_slice(&bytes).map_err(|e| BlobError::Corrupt { key: key.clone(), reason: format!("not the expected JSON: {e}") })
    }

    /// Stores bytes without their hash, as a failing disk might: for tests of corruption.
    #[cfg(feature = "test-utils")]
    pub async fn put_raw(&self, key: &BlobKey, content: Vec<u8>) -> Result<(), BlobError> {
        self.store.put(&Path::from(key.0.as_str()), PutPayload::from(content)).await.map_err(|source| BlobError::Store { key: key.clone(), source })?;
        Ok(())
    }
}
