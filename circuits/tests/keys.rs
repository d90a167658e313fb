//! Setup data round-trips: keys written once load back into circuits that prove exactly as
//! freshly built ones, and a missing, stale or corrupt key is named.

mod common;

use common::*;
use via_circuits::basic::CircuitId;
use via_circuits::keys::{KeyError, generate_basic_keys, load_basic_circuit, read_manifest};
use via_circuits::witness_generator::generate_basic_witnesses;
use via_schemas::config::BasicCircuitsConfig;
use via_schemas::prover_interface::ProtocolSemanticVersion;

const VERSION: ProtocolSemanticVersion = ProtocolSemanticVersion { minor: 1, patch: 0 };

#[test]
fn keys_round_trip_and_problems_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = generate_basic_keys(dir.path(), VERSION, &CONFIG).unwrap();
    assert_eq!(read_manifest(dir.path(), VERSION, &CONFIG).unwrap(), manifest);

    let witnesses = generate_basic_witnesses(&mixed_batch(), &CONFIG).unwrap();
    for id in CircuitId::ALL {
        let loaded = load_basic_circuit(dir.path(), &manifest, id).unwrap();
        let fresh = &CIRCUITS[&id];
        assert_eq!(loaded.data.verifier_only, fresh.data.verifier_only, "{id}: same verification key");
        let instance = witnesses.instances.iter().find(|i| i.circuit_id == id).unwrap();
        let proof = loaded.prove(&instance.witness).unwrap();
        fresh.verify(proof.clone()).unwrap_or_else(|e| panic!("{id}: a fresh circuit accepts the loaded key's proof: {e}"));
        loaded.verify(proof).unwrap();
    }

    // Stale: another shape, another protocol version, another circuits revision.
    let other_shape = BasicCircuitsConfig { txs_per_tx_execution: 3, ..CONFIG };
    let err = read_manifest(dir.path(), VERSION, &other_shape).unwrap_err();
    assert!(matches!(err, KeyError::Stale { .. }) && err.to_string().contains("instance shape"), "{err}");
    let err = read_manifest(dir.path(), ProtocolSemanticVersion { minor: 2, patch: 0 }, &CONFIG).unwrap_err();
    assert!(err.to_string().contains("they are for protocol version 0.1.0, this prover proves 0.2.0"), "{err}");
    let manifest_path = dir.path().join("manifest.json");
    let text = std::fs::read_to_string(&manifest_path).unwrap();
    std::fs::write(&manifest_path, text.replace("\"revision\": 1", "\"revision\": 0")).unwrap();
    let err = read_manifest(dir.path(), VERSION, &CONFIG).unwrap_err();
    assert!(err.to_string().contains("circuits revision 0"), "{err}");
    assert!(!err.is_retryable());
    std::fs::write(&manifest_path, text).unwrap();

    // Corrupt: a flipped byte in a key.
    let path = dir.path().join("basic_2.bin");
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let err = load_basic_circuit(dir.path(), &manifest, CircuitId::StorageApplication).err().expect("corrupt key refused");
    assert!(matches!(err, KeyError::Corrupt { circuit: CircuitId::StorageApplication, .. }), "{err}");

    // Missing: a deleted key, and a directory without keys.
    std::fs::remove_file(&path).unwrap();
    let err = load_basic_circuit(dir.path(), &manifest, CircuitId::StorageApplication).err().expect("missing key refused");
    assert_eq!(err.to_string(), format!("the key of StorageApplication (2) is missing from {}: generate the keys again", dir.path().display()));
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(read_manifest(empty.path(), VERSION, &CONFIG), Err(KeyError::MissingManifest { .. })));
}
