//! Rounds 1 to 5 on a real batch: basic proofs to one verified final proof, and every bad input
//! refused with the offending proof named (natively first, and by the circuits themselves).

mod common;

use std::collections::BTreeMap;
use std::sync::LazyLock;

use common::*;
use plonky2::field::types::PrimeField64;
use via_circuits::aggregation::node::AggregatedProof;
use via_circuits::aggregation::compression::{FinalProof, build_layers};
use via_circuits::aggregation::{AGGREGATION_DEGREE_BITS, AggregationCircuits, AggregationError, Proof};
use via_circuits::basic::CircuitId;
use via_circuits::verifier::{FinalVerifier, VerifyError};
use via_circuits::witness_generator::{BasicWitnesses, generate_basic_witnesses};
use via_l2::batch::batch_commitment;
use via_schemas::config::AggregationConfig;
use via_schemas::l2::{AccountId, BatchPublicData, L2ChainId};
use via_schemas::primitives::{Bytes32, Hash};
use via_schemas::prover_interface::{L1BatchNumber, ProtocolSemanticVersion};

const VERSION: ProtocolSemanticVersion = ProtocolSemanticVersion { minor: 1, patch: 0 };

static AGGREGATION: LazyLock<AggregationCircuits> = LazyLock::new(|| AggregationCircuits::build(&CIRCUITS, &AggregationConfig::default(), VERSION).expect("aggregation circuits build"));

/// The mixed batch, with every basic proof, grouped by type in sequence order.
static BATCH: LazyLock<(BasicWitnesses, BTreeMap<CircuitId, Vec<Proof>>)> = LazyLock::new(|| {
    let witnesses = generate_basic_witnesses(&mixed_batch(), &CONFIG).unwrap();
    let mut proofs: BTreeMap<CircuitId, Vec<Proof>> = BTreeMap::new();
    for instance in &witnesses.instances {
        proofs.entry(instance.circuit_id).or_default().push(CIRCUITS[&instance.circuit_id].prove(&instance.witness).unwrap());
    }
    (witnesses, proofs)
});

fn proofs(id: CircuitId) -> &'static [Proof] {
    &BATCH.1[&id]
}

#[test]
fn a_batch_aggregates_to_a_verified_final_proof() {
    let public_data = BATCH.0.public_data;
    let final_proof = &*FINAL_PROOF;
    let verifier = AGGREGATION.final_verifier();
    let commitment = batch_commitment(&public_data, AGGREGATION.scheduler_vk_hash());
    let public: Vec<u64> = final_proof.public_inputs.iter().map(|x| x.to_canonical_u64()).collect();
    assert_eq!(public, commitment.limbs(), "the final proof's one public input is the batch commitment");
    let bytes = AGGREGATION.final_proof_bytes(final_proof.clone()).unwrap();
    verifier.verify(&bytes, &public_data).unwrap();
    println!("final proof: {} bytes compressed, {} plain", bytes.len(), final_proof.to_bytes().len());
    // The final wrap (compression layer 0, Keccak, over the scheduler) brings the proof to about
    // 48 KB. The compressed form shares Merkle path nodes between queries, so the size moves by
    // up to about 1.5 KB with where they land; 50 KB leaves room for that and fails if the wrap
    // is lost, grows or hashes with Poseidon (about 5 KB more).
    assert_eq!((AGGREGATION.compression.len(), AGGREGATION.final_layer.layer), (0, 0), "one compression layer");
    assert_eq!(AGGREGATION.final_layer.data.common.degree_bits(), 12, "the final wrap outgrew 2^12 rows");
    assert!(bytes.len() < 50_000, "final proof of {} bytes", bytes.len());
    // Leaves and nodes are proved with fewer routed wires and a larger final FRI polynomial so
    // that the tip verifies its four roots in 2^14 rows (2^15, at twice the cost, otherwise).
    assert_eq!(AGGREGATION.tip.data.common.degree_bits(), AGGREGATION_DEGREE_BITS, "the recursion tip outgrew 2^14 rows");

    // Any field of the public data changed: refused.
    let h = Hash::from_limbs([1, 2, 3, 4]).unwrap();
    let p = public_data;
    for changed in [
        BatchPublicData { l1_batch_number: L1BatchNumber(8), ..p },
        BatchPublicData { chain_id: L2ChainId(1), ..p },
        BatchPublicData { fee_account: AccountId(1), ..p },
        BatchPublicData { previous_state_root: h, ..p },
        BatchPublicData { new_state_root: h, ..p },
        BatchPublicData { priority_ops_hash: h, ..p },
        BatchPublicData { withdrawals_hash: h, ..p },
        BatchPublicData { pubdata_sha256: Bytes32([9; 32]), ..p },
        BatchPublicData { protocol_version: ProtocolSemanticVersion { minor: 1, patch: 1 }, ..p },
    ] {
        assert!(matches!(verifier.verify(&bytes, &changed), Err(VerifyError::WrongCommitment { .. })), "{changed:?}");
    }
    // Bits flipped across the whole proof: refused (as malformed or invalid, never accepted).
    let step = (bytes.len() / 97).max(1);
    for at in (0..bytes.len()).step_by(step).chain([bytes.len() - 1]) {
        for bit in [0, 5] {
            let mut tampered = bytes.clone();
            tampered[at] ^= 1 << bit;
            assert!(verifier.verify(&tampered, &public_data).is_err(), "byte {at} bit {bit} flipped was accepted");
        }
    }
    assert!(matches!(verifier.verify(&bytes[..bytes.len() / 2], &public_data), Err(VerifyError::Malformed(_))));
}

#[test]
fn leaves_refuse_proofs_of_the_wrong_type_order_or_batch() {
    let leaf = &AGGREGATION.leaves[&CircuitId::StorageApplication];
    let storage = proofs(CircuitId::StorageApplication);
    assert!(storage.len() >= 3, "the batch needs three storage instances");

    let err = leaf.prove(&[proofs(CircuitId::SignatureVerifier)[0].clone()]).unwrap_err();
    assert!(matches!(&err, AggregationError::WrongKey { index: 0, .. }), "{err}");
    assert!(!err.is_retryable());

    let err = leaf.prove(&[storage[1].clone(), storage[0].clone()]).unwrap_err();
    assert!(matches!(err, AggregationError::Unchained { index: 1, previous: 0, .. }), "out of order: {err}");
    let err = leaf.prove(&[storage[0].clone(), storage[2].clone()]).unwrap_err();
    assert!(matches!(err, AggregationError::Unchained { index: 1, .. }), "missing: {err}");
    let err = leaf.prove(&[storage[0].clone(), storage[0].clone()]).unwrap_err();
    assert!(matches!(err, AggregationError::Unchained { index: 1, .. }), "repeated: {err}");
    assert!(leaf.prove_unchecked(&[storage[1].clone(), storage[0].clone()]).is_err(), "the leaf circuit itself refuses the order");
    assert!(leaf.prove(&storage[..2]).is_ok());
    assert!(leaf.prove(&storage[2..3]).is_ok(), "a single proof is a valid leaf");

    // A TxExecution proof of another batch (another fee account) cannot join this batch's leaf.
    let other = witness_input(&genesis(), vec![deposit(3, 1), deposit(4, 1), deposit(5, 1)]);
    let other = via_schemas::l2::WitnessInputData { fee_account: AccountId(1), ..other };
    let other_witnesses = generate_basic_witnesses(&other, &CONFIG).unwrap();
    let other_tx: Vec<Proof> = other_witnesses.instances.iter().filter(|i| i.circuit_id == CircuitId::TxExecution).map(|i| CIRCUITS[&CircuitId::TxExecution].prove(&i.witness).unwrap()).collect();
    let leaf = &AGGREGATION.leaves[&CircuitId::TxExecution];
    let err = leaf.prove(&[proofs(CircuitId::TxExecution)[0].clone(), other_tx[1].clone()]).unwrap_err();
    assert!(matches!(err, AggregationError::OtherBatch { index: 1, .. }), "{err}");
    assert!(leaf.prove_unchecked(&[proofs(CircuitId::TxExecution)[0].clone(), other_tx[1].clone()]).is_err());
}

#[test]
fn nodes_and_the_tip_refuse_mismatched_children() {
    let leaf_of = |id: CircuitId, range: std::ops::Range<usize>| AggregatedProof { is_node: false, proof: AGGREGATION.leaves[&id].prove(&proofs(id)[range]).unwrap() };
    let hasher_a = leaf_of(CircuitId::PubdataHasher, 0..2);
    let hasher_b = leaf_of(CircuitId::PubdataHasher, 2..4);
    let storage = leaf_of(CircuitId::StorageApplication, 0..2);

    let err = AGGREGATION.node.prove(&[hasher_a.clone(), storage.clone()]).unwrap_err();
    assert!(matches!(err, AggregationError::WrongCircuit { index: 1, .. }), "{err}");
    let err = AGGREGATION.node.prove(&[hasher_b.clone(), hasher_a.clone()]).unwrap_err();
    assert!(matches!(err, AggregationError::Unchained { .. }), "{err}");
    let err = AGGREGATION.node.prove(std::slice::from_ref(&hasher_a)).unwrap_err();
    assert!(matches!(err, AggregationError::Inconsistent { .. }), "a node merges at least two: {err}");
    let merged = AGGREGATION.node.prove(&[hasher_a.clone(), hasher_b.clone()]).unwrap();
    assert!(AGGREGATION.node.verify(&merged).is_ok());
    // Three children at once, or a node and a leaf: the same range either way.
    let hasher_c = leaf_of(CircuitId::PubdataHasher, 4..5);
    let three = AGGREGATION.node.prove(&[hasher_a.clone(), hasher_b.clone(), hasher_c.clone()]).unwrap();
    let nested = AGGREGATION.node.prove(&[merged.clone(), hasher_c.clone()]).unwrap();
    let payload = |p: &AggregatedProof| p.proof.public_inputs[..via_circuits::aggregation::PAYLOAD_LEN].to_vec();
    assert_eq!(payload(&three), payload(&nested));
    assert_eq!(payload(&three).last().unwrap().to_canonical_u64(), 5, "the count covers all five hasher proofs");
    // A node claimed to be a leaf (or the reverse) does not verify.
    assert!(AGGREGATION.node.verify(&AggregatedProof { is_node: false, proof: merged.proof.clone() }).is_err());
    assert!(AGGREGATION.node.verify(&AggregatedProof { is_node: true, proof: hasher_a.proof.clone() }).is_err());

    // The tip takes one root per type, in id order.
    let roots: Vec<AggregatedProof> = CircuitId::ALL.into_iter().map(|id| AGGREGATION.aggregate_type(id, proofs(id)).unwrap()).collect();
    let mut swapped = roots.clone();
    swapped.swap(0, 1);
    assert!(matches!(AGGREGATION.tip.prove(&AGGREGATION.node, &swapped), Err(AggregationError::WrongCircuit { index: 0, .. })));
    let partial = AGGREGATION.aggregate_type(CircuitId::PubdataHasher, &proofs(CircuitId::PubdataHasher)[..2]).unwrap();
    let mut short = roots.clone();
    short[2] = partial;
    let tip = AGGREGATION.tip.prove(&AGGREGATION.node, &short).expect("a prefix of a type's proofs is a valid range");
    // But the scheduler sees the pubdata queue was not consumed to its end.
    let err = AGGREGATION.scheduler.prove(&tip, &BATCH.0.public_data).unwrap_err();
    assert!(err.to_string().contains("PubdataHasher consumed TxExecution's pubdata does not hold"), "{err}");
    assert!(AGGREGATION.scheduler.prove_unchecked(&tip, &BATCH.0.public_data).is_err(), "the scheduler circuit itself refuses");

    let tip = AGGREGATION.tip.prove(&AGGREGATION.node, &roots).unwrap();
    let mut wrong = BATCH.0.public_data;
    wrong.new_state_root = Hash::from_limbs([7, 7, 7, 7]).unwrap();
    let err = AGGREGATION.scheduler.prove(&tip, &wrong).unwrap_err();
    assert!(err.to_string().contains("StorageApplication ends at the new state root does not hold"), "{err}");
    assert!(AGGREGATION.scheduler.prove_unchecked(&tip, &wrong).is_err());
}

/// The final proof of the mixed batch, made once.
static FINAL_PROOF: LazyLock<FinalProof> = LazyLock::new(|| AGGREGATION.aggregate(&BATCH.1, &BATCH.0.public_data).unwrap());

/// `compression_layers = 2`: a shrink layer between the scheduler and the final wrap. Both fit
/// 2^12 rows, and the final proof verifies for the same batch and is smaller than one layer's
/// (the reason to pay for the extra proof).
#[test]
fn a_shrink_layer_before_the_wrap_makes_a_smaller_final_proof() {
    let roots: Vec<AggregatedProof> = CircuitId::ALL.into_iter().map(|id| AGGREGATION.aggregate_type(id, proofs(id)).unwrap()).collect();
    let tip = AGGREGATION.tip.prove(&AGGREGATION.node, &roots).unwrap();
    let scheduler_proof = AGGREGATION.scheduler.prove(&tip, &BATCH.0.public_data).unwrap();
    let (shrink, wrap) = build_layers(2, AGGREGATION.scheduler.data.verifier_data());
    assert_eq!(shrink.iter().map(|c| c.data.common.degree_bits()).chain([wrap.data.common.degree_bits()]).collect::<Vec<_>>(), [12, 12]);
    let proof = wrap.prove(&shrink[0].prove(&scheduler_proof).unwrap()).unwrap();
    let bytes = wrap.data.compress(proof).unwrap().to_bytes();
    let verifier = FinalVerifier { verifier: wrap.data.verifier_data(), scheduler_vk_hash: AGGREGATION.scheduler_vk_hash() };
    verifier.verify(&bytes, &BATCH.0.public_data).unwrap();
    let one_layer = AGGREGATION.final_proof_bytes(FINAL_PROOF.clone()).unwrap();
    println!("final proof: {} bytes over a shrink layer, {} over the scheduler", bytes.len(), one_layer.len());
    assert!(bytes.len() < one_layer.len(), "{} bytes over a shrink layer, {} without", bytes.len(), one_layer.len());
    // The wrap over the shrink layer is not the protocol version's final circuit.
    assert!(AGGREGATION.final_verifier().verify(&bytes, &BATCH.0.public_data).is_err());
}

#[test]
fn no_compression_layer_is_refused_by_name() {
    let config = AggregationConfig { compression_layers: 0, ..AggregationConfig::default() };
    let err = AggregationCircuits::build(&CIRCUITS, &config, VERSION).err().expect("refused");
    assert!(err.to_string().contains("compression_layers is 0"), "{err}");
    assert!(!err.is_retryable());
}

#[test]
fn keys_round_trip_and_problems_are_named() {
    use via_circuits::keys::{KeyError, KeyName, load_aggregation_circuits, load_basic_circuits, load_final_verifier, read_manifest, save_keys};
    use via_schemas::config::BasicCircuitsConfig;

    let dir = tempfile::tempdir().unwrap();
    let aggregation_config = AggregationConfig::default();
    let manifest = save_keys(dir.path(), &CONFIG, &aggregation_config, &CIRCUITS, &AGGREGATION).unwrap();
    assert_eq!(read_manifest(dir.path(), VERSION, &CONFIG, &aggregation_config).unwrap(), manifest);
    assert_eq!(manifest.scheduler_vk_hash, AGGREGATION.scheduler_vk_hash());

    // Loaded circuits have the fresh circuits' keys and prove what they prove.
    let basic = load_basic_circuits(dir.path(), &manifest).unwrap();
    let loaded = load_aggregation_circuits(dir.path(), &manifest, &basic).unwrap();
    for id in CircuitId::ALL {
        assert_eq!(basic[&id].data.verifier_only, CIRCUITS[&id].data.verifier_only, "{id}");
        assert_eq!(loaded.leaves[&id].data.verifier_only, AGGREGATION.leaves[&id].data.verifier_only, "leaf of {id}");
    }
    assert_eq!(loaded.node.data.verifier_only, AGGREGATION.node.data.verifier_only);
    assert_eq!(loaded.tip.data.verifier_only, AGGREGATION.tip.data.verifier_only);
    assert_eq!(loaded.scheduler.data.verifier_only, AGGREGATION.scheduler.data.verifier_only);
    assert_eq!(loaded.final_circuit().data.verifier_only, AGGREGATION.final_circuit().data.verifier_only);
    let instance = BATCH.0.instances.iter().find(|i| i.circuit_id == CircuitId::StorageApplication).unwrap();
    let basic_proof = basic[&CircuitId::StorageApplication].prove(&instance.witness).unwrap();
    CIRCUITS[&CircuitId::StorageApplication].verify(basic_proof.clone()).unwrap();
    let leaf = loaded.leaves[&CircuitId::StorageApplication].prove(&[basic_proof]).unwrap();
    AGGREGATION.node.verify(&AggregatedProof { is_node: false, proof: leaf }).expect("a fresh node accepts the loaded leaf's proof");
    let verifier = load_final_verifier(dir.path(), &manifest).unwrap();
    verifier.verify(&AGGREGATION.final_proof_bytes(FINAL_PROOF.clone()).unwrap(), &BATCH.0.public_data).unwrap();

    // Stale: another shape, another protocol version, another circuits revision.
    let other_shape = BasicCircuitsConfig { txs_per_tx_execution: 3, ..CONFIG };
    let err = read_manifest(dir.path(), VERSION, &other_shape, &aggregation_config).unwrap_err();
    assert!(matches!(err, KeyError::Stale { .. }) && err.to_string().contains("instance shape"), "{err}");
    let err = read_manifest(dir.path(), VERSION, &CONFIG, &AggregationConfig { basic_proofs_per_leaf: 2, ..aggregation_config }).unwrap_err();
    assert!(err.to_string().contains("aggregation shape"), "{err}");
    let err = read_manifest(dir.path(), ProtocolSemanticVersion { minor: 2, patch: 0 }, &CONFIG, &aggregation_config).unwrap_err();
    assert!(err.to_string().contains("they are for protocol version 0.1.0, this prover proves 0.2.0"), "{err}");
    let manifest_path = dir.path().join("manifest.json");
    let text = std::fs::read_to_string(&manifest_path).unwrap();
    let revision = format!("\"revision\": {}", via_circuits::keys::CIRCUITS_REVISION);
    std::fs::write(&manifest_path, text.replace(&revision, "\"revision\": 0")).unwrap();
    let err = read_manifest(dir.path(), VERSION, &CONFIG, &aggregation_config).unwrap_err();
    assert!(err.to_string().contains("circuits revision 0"), "{err}");
    assert!(!err.is_retryable());
    std::fs::write(&manifest_path, text).unwrap();

    // Corrupt: a flipped byte in a key.
    let path = dir.path().join("node.bin");
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let err = load_aggregation_circuits(dir.path(), &manifest, &basic).err().expect("corrupt key refused");
    assert!(matches!(&err, KeyError::Corrupt { circuit, .. } if circuit == "node"), "{err}");

    // Missing: a deleted key, and a directory without keys.
    std::fs::remove_file(&path).unwrap();
    let err = load_aggregation_circuits(dir.path(), &manifest, &basic).err().expect("missing key refused");
    assert_eq!(err.to_string(), format!("the key of {} is missing from {}: generate the keys again", KeyName::Node, dir.path().display()));
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(read_manifest(empty.path(), VERSION, &CONFIG, &aggregation_config), Err(KeyError::MissingManifest { .. })));
}
