//! Setup data ("keys"): building a circuit costs about as much as proving with it, so every
//! circuit of a protocol version (the four basic circuits, the leaves, the node, the recursion
//! tip, the scheduler and the compression layers) is built once, serialized with plonky2's gate
//! and generator serializers (ours registered), and loaded by workers.
//!
//! A key directory holds `manifest.json`, one file per circuit, and `final_verifier.bin` (the
//! last compression layer's verifier data alone, all a verifier needs). The manifest records the
//! circuits' revision, the protocol version, both shapes, the scheduler key hash (the protocol
//! version's verification key hash) and, per circuit, its verification key hash (circuit digest)
//! and the file's SHA-256. Loading checks all of them and names the missing or stale key.
//!
//! A key file is plonky2's serialization of the circuit less the Merkle tree of its constants'
//! and sigmas' LDE: most of a key (the LDE is `2^rate_bits` times the polynomials, up to 256
//! times for the compression layers), and recomputable from the polynomials the key keeps.
//! Loading recomputes it on the CPU backend and checks its cap against the key's verifier data.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use plonky2::field::extension::Extendable;
use plonky2::gates::gate::GateRef;
use plonky2::hash::hash_types::RichField;
use plonky2::hash::merkle_tree::MerkleTree;
use plonky2::iop::generator::WitnessGeneratorRef;
use plonky2::plonk::circuit_builder::CircuitBuilder;
use plonky2::plonk::circuit_data::{CircuitData, CommonCircuitData, VerifierCircuitData};
use plonky2::plonk::config::Hasher;
use plonky2::util::serialization::{DefaultGateSerializer, GateSerializer, IoResult, WitnessGeneratorSerializer, Write};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use via_schemas::config::{AggregationConfig, BasicCircuitsConfig};
use via_schemas::primitives::{Bytes32, Hash};
use via_schemas::prover_interface::ProtocolSemanticVersion;

use crate::aggregation::compression::{CompressionCircuit, chain_layers, vk_hash};
use crate::aggregation::leaf::LeafCircuit;
use crate::aggregation::node::NodeCircuit;
use crate::aggregation::recursion_tip::RecursionTipCircuit;
use crate::aggregation::scheduler::SchedulerCircuit;
use crate::aggregation::{AggregationCircuits, AggregationError};
use crate::basic::CircuitId;
use crate::config::{D, F, FinalC, circuit_config};
use crate::gadgets::generators::GeneratorSerializer;
use crate::prover::{BasicCircuit, define};
use crate::verifier::FinalVerifier;
use via_circuit_prover::{MerkleHasher, ProverBackend};
use via_circuit_prover::cpu::CpuBackend;
use via_circuit_prover::prover::ProverConfig;

/// The revision of the circuits' constraints and their keys' format. Bump it with any change
/// that alters a circuit, so keys made before the change are refused as stale instead of
/// producing proofs nothing accepts, or a key file's layout (6: the constants' tree left out;
/// 7: leaves and nodes with 48 routed wires, compression layer 0 at rate 1/64; 8: the scheduler
/// with the leaves' configuration, one compression layer by default, the final wrap over the
/// scheduler).
pub const CIRCUITS_REVISION: u32 = 8;

/// The manifest's file name in a key directory.
pub const MANIFEST: &str = "manifest.json";
const FINAL_VERIFIER: &str = "final_verifier.bin";

/// Which circuit a key belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyName {
    Basic(CircuitId),
    Leaf(CircuitId),
    Node,
    RecursionTip,
    Scheduler,
    Compression(usize),
}

impl KeyName {
    fn file(self) -> String {
        match self {
            Self::Basic(id) => format!("basic_{}.bin", id.id()),
            Self::Leaf(id) => format!("leaf_{}.bin", id.id()),
            Self::Node => "node.bin".into(),
            Self::RecursionTip => "recursion_tip.bin".into(),
            Self::Scheduler => "scheduler.bin".into(),
            Self::Compression(layer) => format!("compression_{layer}.bin"),
        }
    }
}

impl fmt::Display for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Basic(id) => write!(f, "{id}"),
            Self::Leaf(id) => write!(f, "leaf of {id}"),
            Self::Node => f.write_str("node"),
            Self::RecursionTip => f.write_str("recursion tip"),
            Self::Scheduler => f.write_str("scheduler"),
            Self::Compression(layer) => write!(f, "compression layer {layer}"),
        }
    }
}

/// What a key directory says about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyManifest {
    pub revision: u32,
    pub protocol_version: ProtocolSemanticVersion,
    pub basic_circuits: BasicCircuitsConfig,
    pub aggregation: AggregationConfig,
    /// The protocol version's verification key hash, as L1VerifierConfig publishes it.
    pub scheduler_vk_hash: Hash,
    /// SHA-256 of `final_verifier.bin`.
    pub final_verifier_sha256: Bytes32,
    pub keys: Vec<KeyEntry>,
}

/// One circuit's key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyEntry {
    pub name: KeyName,
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
    Missing { circuit: String, dir: PathBuf },
    #[error("the keys in {dir} are stale: {reason}; generate them again")]
    Stale { dir: PathBuf, reason: String },
    #[error("the key of {circuit} in {path} is corrupt: {reason}")]
    Corrupt { circuit: String, path: PathBuf, reason: String },
    #[error("building the aggregation circuits: {0}")]
    Aggregation(#[from] AggregationError),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

impl KeyError {
    /// Reading a file may succeed later; keys that are absent, stale or corrupt need an
    /// operator.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Io { .. } => true,
            Self::MissingManifest { .. } | Self::Missing { .. } | Self::Stale { .. } | Self::Corrupt { .. } | Self::Aggregation(_) => false,
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

fn sha256(bytes: &[u8]) -> Bytes32 {
    Bytes32(Sha256::digest(bytes).into())
}

/// plonky2's serialization of a circuit written without the Merkle tree of its constants' and
/// sigmas' LDE (the only Merkle tree a circuit's data holds): no leaves, no digests, its cap.
struct KeyWriter(Vec<u8>);

impl Write for KeyWriter {
    type Error = std::convert::Infallible;

    fn write_all(&mut self, bytes: &[u8]) -> IoResult<()> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }

    fn write_merkle_tree<FF: RichField, H: Hasher<FF>>(&mut self, tree: &MerkleTree<FF, H>) -> IoResult<()> {
        self.write_usize(0)?;
        self.write_hash_vec::<FF, H>(&[])?;
        self.write_usize(tree.cap.height())?;
        self.write_merkle_cap(&tree.cap)
    }

    fn write_gate<FF: RichField + Extendable<DD>, const DD: usize>(&mut self, gate: &GateRef<FF, DD>, gate_serializer: &dyn GateSerializer<FF, DD>, common_data: &CommonCircuitData<FF, DD>) -> IoResult<()> {
        gate_serializer.write_gate(&mut self.0, gate, common_data)
    }

    fn write_generator<FF: RichField + Extendable<DD>, const DD: usize>(
        &mut self,
        generator: &WitnessGeneratorRef<FF, DD>,
        generator_serializer: &dyn WitnessGeneratorSerializer<FF, DD>,
        common_data: &CommonCircuitData<FF, DD>,
    ) -> IoResult<()> {
        generator_serializer.write_generator(&mut self.0, generator, common_data)
    }
}

/// A key file's bytes (see the module docs).
fn key_bytes<CC: ProverConfig>(data: &CircuitData<F, CC, D>) -> IoResult<Vec<u8>> {
    let mut writer = KeyWriter(Vec::new());
    writer.write_circuit_data(data, &DefaultGateSerializer, &GeneratorSerializer)?;
    Ok(writer.0)
}

/// Recomputes the constants' and sigmas' LDE and Merkle tree a key file leaves out, from the
/// polynomials it keeps, and checks the tree's cap against the circuit's verifier data.
fn restore_constants_sigmas<CC: ProverConfig>(data: &mut CircuitData<F, CC, D>) -> Result<(), String> {
    let backend = CpuBackend::detect();
    let batch = &mut data.prover_only.constants_sigmas_commitment;
    if batch.blinding {
        return Err("its constants and sigmas are committed with blinding, which no circuit of ours does".into());
    }
    let rows = backend.lde_rows(&batch.polynomials, batch.rate_bits);
    let tree = CC::MerkleHash::merkle_tree(&backend, rows, data.common.config.fri_config.cap_height);
    if tree.cap != data.verifier_only.constants_sigmas_cap {
        return Err("its constants and sigmas do not commit to its verification key's cap".into());
    }
    batch.merkle_tree = tree;
    Ok(())
}

fn save<CC: ProverConfig>(dir: &Path, name: KeyName, data: &CircuitData<F, CC, D>) -> Result<KeyEntry, KeyError> {
    let file = name.file();
    let path = dir.join(&file);
    let bytes = key_bytes(data).map_err(|e| KeyError::Corrupt { circuit: name.to_string(), path: path.clone(), reason: format!("cannot serialize: {e:?}") })?;
    write_atomically(&path, &bytes)?;
    tracing::info!(circuit = %name, degree_bits = data.common.degree_bits(), bytes = bytes.len(), "wrote key");
    Ok(KeyEntry { name, file, vk_hash: vk_hash(&data.verifier_only), degree_bits: data.common.degree_bits(), sha256: sha256(&bytes) })
}

impl KeyManifest {
    /// Every file the manifest vouches for (itself aside), with its SHA-256.
    pub fn files(&self) -> Vec<(String, Bytes32)> {
        let mut files: Vec<(String, Bytes32)> = self.keys.iter().map(|k| (k.file.clone(), k.sha256)).collect();
        files.push((FINAL_VERIFIER.to_owned(), self.final_verifier_sha256));
        files
    }
}

/// Reads a file of a key directory that its manifest lists (see [`KeyManifest::files`]),
/// checking its SHA-256.
pub fn read_key_file(dir: &Path, file: &str, expected: Bytes32) -> Result<Vec<u8>, KeyError> {
    read_checked(dir, file, expected, file)
}

/// Reads a file the manifest lists, checking its SHA-256.
fn read_checked(dir: &Path, file: &str, expected: Bytes32, circuit: &str) -> Result<Vec<u8>, KeyError> {
    let path = dir.join(file);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(KeyError::Missing { circuit: circuit.into(), dir: dir.to_owned() }),
        Err(e) => return Err(io(&path)(e)),
    };
    let got = sha256(&bytes);
    if got != expected {
        return Err(KeyError::Corrupt { circuit: circuit.into(), path, reason: format!("its SHA-256 is {got}, the manifest says {expected}") });
    }
    Ok(bytes)
}

fn load_data<CC: ProverConfig>(dir: &Path, manifest: &KeyManifest, name: KeyName) -> Result<CircuitData<F, CC, D>, KeyError> {
    let entry = manifest.keys.iter().find(|k| k.name == name).ok_or(KeyError::Missing { circuit: name.to_string(), dir: dir.to_owned() })?;
    let bytes = read_checked(dir, &entry.file, entry.sha256, &name.to_string())?;
    let corrupt = |reason: String| KeyError::Corrupt { circuit: name.to_string(), path: dir.join(&entry.file), reason };
    let mut data = CircuitData::<F, CC, D>::from_bytes(&bytes, &DefaultGateSerializer, &GeneratorSerializer).map_err(|e| corrupt(format!("cannot deserialize: {e:?}")))?;
    restore_constants_sigmas(&mut data).map_err(corrupt)?;
    let got = vk_hash(&data.verifier_only);
    if got != entry.vk_hash {
        return Err(corrupt(format!("its verification key hash is {got}, the manifest says {}", entry.vk_hash)));
    }
    Ok(data)
}

/// Builds every circuit of a protocol version and writes its key to `dir`, the manifest last.
pub fn generate_keys(dir: &Path, protocol_version: ProtocolSemanticVersion, basic_config: &BasicCircuitsConfig, aggregation_config: &AggregationConfig) -> Result<KeyManifest, KeyError> {
    let basic: BTreeMap<CircuitId, BasicCircuit> = CircuitId::ALL.into_iter().map(|id| (id, BasicCircuit::build(id, basic_config))).collect();
    let aggregation = AggregationCircuits::build(&basic, aggregation_config, protocol_version)?;
    save_keys(dir, basic_config, aggregation_config, &basic, &aggregation)
}

/// Writes the keys of circuits already built (with `basic_config` and `aggregation_config`) to
/// `dir`, the manifest last.
pub fn save_keys(
    dir: &Path,
    basic_config: &BasicCircuitsConfig,
    aggregation_config: &AggregationConfig,
    basic: &BTreeMap<CircuitId, BasicCircuit>,
    aggregation: &AggregationCircuits,
) -> Result<KeyManifest, KeyError> {
    fs::create_dir_all(dir).map_err(io(dir))?;
    let mut keys = Vec::new();
    for (id, circuit) in basic {
        keys.push(save(dir, KeyName::Basic(*id), &circuit.data)?);
    }
    for (id, leaf) in &aggregation.leaves {
        keys.push(save(dir, KeyName::Leaf(*id), &leaf.data)?);
    }
    keys.push(save(dir, KeyName::Node, &aggregation.node.data)?);
    keys.push(save(dir, KeyName::RecursionTip, &aggregation.tip.data)?);
    keys.push(save(dir, KeyName::Scheduler, &aggregation.scheduler.data)?);
    for layer in &aggregation.compression {
        keys.push(save(dir, KeyName::Compression(layer.layer), &layer.data)?);
    }
    keys.push(save(dir, KeyName::Compression(aggregation.final_layer.layer), &aggregation.final_layer.data)?);
    let final_verifier = aggregation
        .final_circuit()
        .data
        .verifier_data()
        .to_bytes(&DefaultGateSerializer)
        .map_err(|e| KeyError::Corrupt { circuit: "final verifier".into(), path: dir.join(FINAL_VERIFIER), reason: format!("cannot serialize: {e:?}") })?;
    write_atomically(&dir.join(FINAL_VERIFIER), &final_verifier)?;
    let manifest = KeyManifest {
        revision: CIRCUITS_REVISION,
        protocol_version: aggregation.scheduler.protocol_version,
        basic_circuits: *basic_config,
        aggregation: *aggregation_config,
        scheduler_vk_hash: aggregation.scheduler_vk_hash(),
        final_verifier_sha256: sha256(&final_verifier),
        keys,
    };
    let json = serde_json::to_vec_pretty(&manifest).expect("the manifest serializes");
    write_atomically(&dir.join(MANIFEST), &json)?;
    Ok(manifest)
}

/// Reads a key directory's manifest without judging it (a verifier needs only the final key and
/// the scheduler key hash).
pub fn read_manifest_unchecked(dir: &Path) -> Result<KeyManifest, KeyError> {
    let path = dir.join(MANIFEST);
    let text = match fs::read(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(KeyError::MissingManifest { dir: dir.to_owned() }),
        Err(e) => return Err(io(&path)(e)),
    };
    let manifest: KeyManifest = serde_json::from_slice(&text).map_err(|e| KeyError::Stale { dir: dir.to_owned(), reason: format!("unreadable manifest: {e}") })?;
    if manifest.revision != CIRCUITS_REVISION {
        return Err(KeyError::Stale { dir: dir.to_owned(), reason: format!("they are for circuits revision {}, this build's circuits are revision {CIRCUITS_REVISION}", manifest.revision) });
    }
    Ok(manifest)
}

/// Reads and checks a key directory's manifest against what this prover expects.
pub fn read_manifest(dir: &Path, protocol_version: ProtocolSemanticVersion, basic_config: &BasicCircuitsConfig, aggregation_config: &AggregationConfig) -> Result<KeyManifest, KeyError> {
    let manifest = read_manifest_unchecked(dir)?;
    let stale = |reason: String| Err(KeyError::Stale { dir: dir.to_owned(), reason });
    if manifest.protocol_version != protocol_version {
        return stale(format!("they are for protocol version {}, this prover proves {protocol_version}", manifest.protocol_version));
    }
    if manifest.basic_circuits != *basic_config {
        return stale(format!("they were made for instance shape {:?}, the configuration says {basic_config:?}", manifest.basic_circuits));
    }
    if manifest.aggregation != *aggregation_config {
        return stale(format!("they were made for aggregation shape {:?}, the configuration says {aggregation_config:?}", manifest.aggregation));
    }
    Ok(manifest)
}

/// Loads one basic circuit's key and recovers its targets by laying the circuit out again
/// (cheap: no polynomial work).
pub fn load_basic_circuit(dir: &Path, manifest: &KeyManifest, id: CircuitId) -> Result<BasicCircuit, KeyError> {
    let data = load_data(dir, manifest, KeyName::Basic(id))?;
    let mut builder = CircuitBuilder::new(circuit_config());
    let targets = define(&mut builder, id, &manifest.basic_circuits);
    if builder.num_public_inputs() != data.common.num_public_inputs {
        return Err(KeyError::Stale { dir: dir.to_owned(), reason: format!("{id} has {} public inputs in this build, {} in its key", builder.num_public_inputs(), data.common.num_public_inputs) });
    }
    Ok(BasicCircuit { id, data, targets })
}

/// Loads every basic circuit.
pub fn load_basic_circuits(dir: &Path, manifest: &KeyManifest) -> Result<BTreeMap<CircuitId, BasicCircuit>, KeyError> {
    CircuitId::ALL.into_iter().map(|id| load_basic_circuit(dir, manifest, id).map(|c| (id, c))).collect()
}

/// Loads rounds 1 to 5 over the loaded basic circuits.
pub fn load_aggregation_circuits(dir: &Path, manifest: &KeyManifest, basic: &BTreeMap<CircuitId, BasicCircuit>) -> Result<AggregationCircuits, KeyError> {
    // Keys are written only from circuits that were built, so never with no layer; a manifest
    // that says so was not written by us.
    let last = manifest.aggregation.compression_layers.checked_sub(1).ok_or_else(|| KeyError::Corrupt {
        circuit: "manifest".into(),
        path: dir.join(MANIFEST),
        reason: "compression_layers is 0: at least one layer, the final wrap, makes the final proof".into(),
    })?;
    let mut leaves = BTreeMap::new();
    for (id, circuit) in basic {
        let data = load_data(dir, manifest, KeyName::Leaf(*id))?;
        leaves.insert(*id, LeafCircuit::from_data(data, circuit.data.verifier_data(), *id, manifest.aggregation.basic_proofs_per_leaf));
    }
    let leaf_keys: BTreeMap<_, _> = leaves.iter().map(|(id, l)| (*id, l.data.verifier_only.clone())).collect();
    let node = NodeCircuit::from_data(load_data(dir, manifest, KeyName::Node)?, leaf_keys.clone());
    let tip = RecursionTipCircuit::from_data(load_data(dir, manifest, KeyName::RecursionTip)?, &leaf_keys, &node);
    let scheduler = SchedulerCircuit::from_data(load_data(dir, manifest, KeyName::Scheduler)?, &tip, manifest.protocol_version);
    // Two closures, since a closure has one return type and the final layer's configuration is
    // not the shrink layers'.
    let shrink = |layer, inner| load_layer(dir, manifest, layer, inner);
    let wrap = |layer, inner| load_layer(dir, manifest, layer, inner);
    let (compression, final_layer) = chain_layers(last, scheduler.data.verifier_data(), shrink, wrap)?;
    Ok(AggregationCircuits { leaves, node, tip, scheduler, compression, final_layer })
}

/// Compression layer `layer` from its key, over the proof whose verifier data is `inner` (the
/// shrink layers' and the final layer's differ only in their configuration).
fn load_layer<CC: ProverConfig + 'static>(dir: &Path, manifest: &KeyManifest, layer: usize, inner: VerifierCircuitData<F, crate::config::C, D>) -> Result<CompressionCircuit<CC>, KeyError> {
    Ok(CompressionCircuit::from_data(load_data(dir, manifest, KeyName::Compression(layer))?, layer, inner))
}

/// Loads only what verifying final proofs needs.
pub fn load_final_verifier(dir: &Path, manifest: &KeyManifest) -> Result<FinalVerifier, KeyError> {
    let bytes = read_checked(dir, FINAL_VERIFIER, manifest.final_verifier_sha256, "final verifier")?;
    let verifier = VerifierCircuitData::<F, FinalC, D>::from_bytes(bytes, &DefaultGateSerializer)
        .map_err(|e| KeyError::Corrupt { circuit: "final verifier".into(), path: dir.join(FINAL_VERIFIER), reason: format!("cannot deserialize: {e:?}") })?;
    Ok(FinalVerifier { verifier, scheduler_vk_hash: manifest.scheduler_vk_hash })
}

/// Writes a key directory holding only a final verifier, for tests of verifiers (the core) that
/// need real verification without building every circuit.
#[cfg(feature = "test-utils")]
pub fn save_verifier_only(dir: &Path, protocol_version: ProtocolSemanticVersion, verifier: &VerifierCircuitData<F, FinalC, D>, scheduler_vk_hash: Hash) -> Result<KeyManifest, KeyError> {
    fs::create_dir_all(dir).map_err(io(dir))?;
    let bytes = verifier
        .to_bytes(&DefaultGateSerializer)
        .map_err(|e| KeyError::Corrupt { circuit: "final verifier".into(), path: dir.join(FINAL_VERIFIER), reason: format!("cannot serialize: {e:?}") })?;
    write_atomically(&dir.join(FINAL_VERIFIER), &bytes)?;
    let manifest = KeyManifest {
        revision: CIRCUITS_REVISION,
        protocol_version,
        basic_circuits: BasicCircuitsConfig::default(),
        aggregation: AggregationConfig::default(),
        scheduler_vk_hash,
        final_verifier_sha256: sha256(&bytes),
        keys: Vec::new(),
    };
    write_atomically(&dir.join(MANIFEST), &serde_json::to_vec_pretty(&manifest).expect("the manifest serializes"))?;
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use plonky2::field::types::Field;

    use super::*;
    use crate::config::C;

    /// A small circuit of every configuration's kind: Poseidon (its tree built on the backend) and
    /// Keccak (a final layer's, built by plonky2's tree on the CPU).
    fn circuit<CC: ProverConfig>() -> CircuitData<F, CC, D> {
        let mut builder = CircuitBuilder::<F, D>::new(circuit_config());
        let x = builder.add_virtual_target();
        let y = builder.mul_const(F::from_canonical_u64(3), x);
        builder.register_public_input(y);
        builder.build::<CC>()
    }

    fn round_trip<CC: ProverConfig>() {
        let data = circuit::<CC>();
        let bytes = key_bytes(&data).unwrap();
        let full = data.to_bytes(&DefaultGateSerializer, &GeneratorSerializer).unwrap();
        assert!(bytes.len() * 2 < full.len(), "a key of {} bytes against plonky2's {}", bytes.len(), full.len());
        let mut loaded = CircuitData::<F, CC, D>::from_bytes(&bytes, &DefaultGateSerializer, &GeneratorSerializer).unwrap();
        assert!(loaded.prover_only.constants_sigmas_commitment.merkle_tree.leaves.is_empty());
        restore_constants_sigmas(&mut loaded).unwrap();
        assert_eq!(loaded.to_bytes(&DefaultGateSerializer, &GeneratorSerializer).unwrap(), full, "the restored circuit serializes as the built one");

        // Constants that are not the circuit's are refused: they do not commit to its cap.
        let mut tampered = CircuitData::<F, CC, D>::from_bytes(&bytes, &DefaultGateSerializer, &GeneratorSerializer).unwrap();
        tampered.prover_only.constants_sigmas_commitment.polynomials[0].coeffs[0] += F::ONE;
        let error = restore_constants_sigmas(&mut tampered).unwrap_err();
        assert!(error.contains("do not commit to its verification key's cap"), "{error}");
    }

    #[test]
    fn a_manifest_with_no_compression_layer_is_refused_before_any_key_is_read() {
        let dir = std::env::temp_dir().join(format!("via-keys-no-layer-{}", std::process::id()));
        let manifest = KeyManifest {
            revision: CIRCUITS_REVISION,
            protocol_version: ProtocolSemanticVersion { minor: 26, patch: 0 },
            basic_circuits: BasicCircuitsConfig::default(),
            aggregation: AggregationConfig { compression_layers: 0, ..AggregationConfig::default() },
            scheduler_vk_hash: Hash::default(),
            final_verifier_sha256: Bytes32::default(),
            keys: Vec::new(),
        };
        // No key files at all: reading any would fail as missing instead.
        let error = load_aggregation_circuits(&dir, &manifest, &BTreeMap::new()).err().expect("refused");
        assert!(matches!(&error, KeyError::Corrupt { circuit, path, .. } if circuit == "manifest" && *path == dir.join(MANIFEST)), "{error}");
        assert!(error.to_string().contains("compression_layers is 0"), "{error}");
        assert!(!error.is_retryable());
    }

    #[test]
    fn keys_leave_out_the_constants_tree_and_loading_restores_it_exactly() {
        round_trip::<C>();
        round_trip::<FinalC>();
    }
}
