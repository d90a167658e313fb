//! Setup data ("keys"): building a circuit costs about as much as proving with it, so each basic
//! circuit is built once per protocol version, serialized with plonky2's gate and generator
//! serializers (ours registered), and loaded by workers.
//!
//! A key directory holds `manifest.json` and one file per circuit. The manifest records the
//! circuits' revision, the protocol version, the instance shape and each circuit's verification
//! key hash (its circuit digest). Loading checks all of them and names the missing or stale key.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use plonky2::field::types::PrimeField64;
use plonky2::plonk::circuit_builder::CircuitBuilder;
use plonky2::plonk::circuit_data::CircuitData;
use plonky2::util::serialization::DefaultGateSerializer;
use serde::{Deserialize, Serialize};
use via_schemas::config::BasicCircuitsConfig;
use sha2::{Digest as _, Sha256};
use via_schemas::primitives::{Bytes32, Hash};
use via_schemas::prover_interface::ProtocolSemanticVersion;

use crate::basic::CircuitId;
use crate::config::{C, D, F, circuit_config};
use crate::gadgets::generators::GeneratorSerializer;
use crate::prover::{BasicCircuit, define};

/// The revision of the circuits' constraints. Bump it with any change that alters a circuit, so
/// keys made before the change are refused as stale instead of producing proofs nothing accepts.
pub const CIRCUITS_REVISION: u32 = 1;

const MANIFEST: &str = "manifest.json";

/// What a key directory says about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyManifest {
    pub revision: u32,
    pub protocol_version: ProtocolSemanticVersion,
    pub basic_circuits: BasicCircuitsConfig,
    pub keys: Vec<KeyEntry>,
}

/// One circuit's key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyEntry {
    pub circuit_id: CircuitId,
    pub file: String,
    /// The circuit digest: a hash of the verification key (constants, permutation, shape).
    pub vk_hash: Hash,
    pub degree_bits: usize,
    /// SHA-256 of the file: the prover data (polynomials, Merkle trees) is not covered by the
    /// verification key hash, and a flipped bit there would only show as proofs that fail.
    pub sha256: Bytes32,
}

/// Why keys could not be written or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("no keys in {dir}: generate them with `prover keys generate`")]
    MissingManifest { dir: PathBuf },
    #[error("the key of {circuit} is missing from {dir}: generate the keys again")]
    Missing { circuit: CircuitId, dir: PathBuf },
    #[error("the keys in {dir} are stale: {reason}; generate them again")]
    Stale { dir: PathBuf, reason: String },
    #[error("the key of {circuit} in {path} is corrupt: {reason}")]
    Corrupt { circuit: CircuitId, path: PathBuf, reason: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

impl KeyError {
    /// Reading a file may succeed later; keys that are absent, stale or corrupt need an
    /// operator.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Io { .. } => true,
            Self::MissingManifest { .. } | Self::Missing { .. } | Self::Stale { .. } | Self::Corrupt { .. } => false,
        }
    }
}

fn io(path: &Path) -> impl FnOnce(io::Error) -> KeyError + '_ {
    move |source| KeyError::Io { path: path.to_owned(), source }
}

/// Writes `bytes` to `path` through a temporary file, so a reader never sees half a key.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), KeyError> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, bytes).map_err(io(&tmp))?;
    fs::rename(&tmp, path).map_err(io(path))
}

fn vk_hash(data: &CircuitData<F, C, D>) -> Hash {
    Hash::from_limbs_reduced(data.verifier_only.circuit_digest.elements.map(|e| e.to_canonical_u64()))
}

fn key_file(id: CircuitId) -> String {
    format!("basic_{}.bin", id.id())
}

/// Builds every basic circuit for `config` and writes its key to `dir`, the manifest last.
pub fn generate_basic_keys(dir: &Path, protocol_version: ProtocolSemanticVersion, config: &BasicCircuitsConfig) -> Result<KeyManifest, KeyError> {
    fs::create_dir_all(dir).map_err(io(dir))?;
    let mut keys = Vec::new();
    for id in CircuitId::ALL {
        let circuit = BasicCircuit::build(id, config);
        let file = key_file(id);
        let path = dir.join(&file);
        let bytes = circuit
            .data
            .to_bytes(&DefaultGateSerializer, &GeneratorSerializer)
            .map_err(|e| KeyError::Corrupt { circuit: id, path: path.clone(), reason: format!("cannot serialize: {e:?}") })?;
        write_atomically(&path, &bytes)?;
        tracing::info!(circuit = %id, degree_bits = circuit.data.common.degree_bits(), bytes = bytes.len(), "wrote key");
        keys.push(KeyEntry {
            circuit_id: id,
            file,
            vk_hash: vk_hash(&circuit.data),
            degree_bits: circuit.data.common.degree_bits(),
            sha256: Bytes32(Sha256::digest(&bytes).into()),
        });
    }
    let manifest = KeyManifest { revision: CIRCUITS_REVISION, protocol_version, basic_circuits: *config, keys };
    let json = serde_json::to_vec_pretty(&manifest).expect("the manifest serializes");
    write_atomically(&dir.join(MANIFEST), &json)?;
    Ok(manifest)
}

/// Reads and checks a key directory's manifest against what this prover expects.
pub fn read_manifest(dir: &Path, protocol_version: ProtocolSemanticVersion, config: &BasicCircuitsConfig) -> Result<KeyManifest, KeyError> {
    let path = dir.join(MANIFEST);
    let text = match fs::read(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(KeyError::MissingManifest { dir: dir.to_owned() }),
        Err(e) => return Err(io(&path)(e)),
    };
    let manifest: KeyManifest = serde_json::from_slice(&text).map_err(|e| KeyError::Stale { dir: dir.to_owned(), reason: format!("unreadable manifest: {e}") })?;
    let stale = |reason: String| Err(KeyError::Stale { dir: dir.to_owned(), reason });
    if manifest.revision != CIRCUITS_REVISION {
        return stale(format!("they are for circuits revision {}, this build's circuits are revision {CIRCUITS_REVISION}", manifest.revision));
    }
    if manifest.protocol_version != protocol_version {
        return stale(format!("they are for protocol version {}, this prover proves {protocol_version}", manifest.protocol_version));
    }
    if manifest.basic_circuits != *config {
        return stale(format!("they were made for instance shape {:?}, the configuration says {config:?}", manifest.basic_circuits));
    }
    Ok(manifest)
}

/// Loads one basic circuit's key, checked against the manifest, and recovers its targets by
/// laying the circuit out again (cheap: no polynomial work).
pub fn load_basic_circuit(dir: &Path, manifest: &KeyManifest, id: CircuitId) -> Result<BasicCircuit, KeyError> {
    let entry = manifest.keys.iter().find(|k| k.circuit_id == id).ok_or(KeyError::Missing { circuit: id, dir: dir.to_owned() })?;
    let path = dir.join(&entry.file);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(KeyError::Missing { circuit: id, dir: dir.to_owned() }),
        Err(e) => return Err(io(&path)(e)),
    };
    let corrupt = |reason: String| KeyError::Corrupt { circuit: id, path: path.clone(), reason };
    let sha256 = Bytes32(Sha256::digest(&bytes).into());
    if sha256 != entry.sha256 {
        return Err(corrupt(format!("its SHA-256 is {sha256}, the manifest says {}", entry.sha256)));
    }
    let data = CircuitData::<F, C, D>::from_bytes(&bytes, &DefaultGateSerializer, &GeneratorSerializer).map_err(|e| corrupt(format!("cannot deserialize: {e:?}")))?;
    if vk_hash(&data) != entry.vk_hash {
        return Err(corrupt(format!("its verification key hash is {}, the manifest says {}", vk_hash(&data), entry.vk_hash)));
    }
    let mut builder = CircuitBuilder::new(circuit_config());
    let targets = define(&mut builder, id, &manifest.basic_circuits);
    if builder.num_public_inputs() != data.common.num_public_inputs {
        return Err(KeyError::Stale { dir: dir.to_owned(), reason: format!("{id} has {} public inputs in this build, {} in its key", builder.num_public_inputs(), data.common.num_public_inputs) });
    }
    Ok(BasicCircuit { id, data, targets })
}
