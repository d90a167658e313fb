//! The wire formats against hand-written JSON in zkSync's `prover_interface` shape: each document
//! decodes to the value built here, and that value encodes back to the same document.

use chrono::{TimeZone, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use via_schemas::WireVersion;
use via_schemas::l2::*;
use via_schemas::primitives::*;
use via_schemas::prover_interface::*;

fn assert_wire<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(doc: Value, value: T) {
    let decoded: T = serde_json::from_value(doc.clone()).expect("hand-written document decodes");
    assert_eq!(decoded, value);
    assert_eq!(serde_json::to_value(&value).unwrap(), doc);
}

fn hash(last: u64) -> Hash {
    Hash::from_limbs([0, 0, 0, last]).unwrap()
}

fn hash_hex(last: u64) -> String {
    format!("0x{}{last:016x}", "0".repeat(48))
}

fn point(first: u64) -> EncodedPoint {
    EncodedPoint::from_limbs([first, 0, 0, 0, 0]).unwrap()
}

fn point_hex(first: u64) -> String {
    format!("0x{first:016x}{}", "0".repeat(64))
}

fn signature() -> (Signature, Value) {
    let mut s = [0u8; 40];
    s[39] = 7;
    (
        Signature { r: point(9), s: Scalar(s) },
        json!({ "r": point_hex(9), "s": format!("0x{}07", "0".repeat(78)) }),
    )
}

fn witness_input() -> (WitnessInputData, Value) {
    let (sig, sig_json) = signature();
    let value = WitnessInputData {
        version: WireVersion::CURRENT,
        l1_batch_number: L1BatchNumber(12),
        chain_id: L2ChainId(270),
        protocol_version: ProtocolSemanticVersion { minor: 1, patch: 2 },
        fee_account: AccountId(0),
        previous_state_root: hash(1),
        transactions: vec![
            L2Transaction::Deposit(Deposit {
                l1_tx_id: Bytes32([0xab; 32]),
                to: AccountId(3),
                public_key: point(4),
                amount: 5_000,
            }),
            L2Transaction::Transfer(Signed {
                tx: Transfer { from: AccountId(3), to: AccountId(1), amount: 100, fee: 2, nonce: 0 },
                signature: sig,
            }),
            L2Transaction::Withdraw(Signed {
                tx: Withdraw { from: AccountId(3), to_l1: Bytes32([0xcd; 32]), amount: 50, fee: 1, nonce: 1 },
                signature: sig,
            }),
        ],
        accounts: vec![AccountWitness {
            account_id: AccountId(3),
            account: Some(Account { public_key: point(4), balance: 0, nonce: 0 }),
            merkle_path: vec![hash(2), hash(3)],
        }],
    };
    let doc = json!({
        "version": 1,
        "l1_batch_number": 12,
        "chain_id": 270,
        "protocol_version": { "minor": 1, "patch": 2 },
        "fee_account": 0,
        "previous_state_root": hash_hex(1),
        "transactions": [
            { "Deposit": {
                "l1_tx_id": format!("0x{}", "ab".repeat(32)),
                "to": 3, "public_key": point_hex(4), "amount": 5000 } },
            { "Transfer": {
                "from": 3, "to": 1, "amount": 100, "fee": 2, "nonce": 0, "signature": sig_json } },
            { "Withdraw": {
                "from": 3, "to_l1": format!("0x{}", "cd".repeat(32)), "amount": 50, "fee": 1,
                "nonce": 1, "signature": sig_json } }
        ],
        "accounts": [
            { "account_id": 3,
              "account": { "public_key": point_hex(4), "balance": 0, "nonce": 0 },
              "merkle_path": [hash_hex(2), hash_hex(3)] }
        ]
    });
    (value, doc)
}

#[test]
fn proof_generation_data_response_success() {
    let (witness_input_data, witness_doc) = witness_input();
    let value = ProofGenerationDataResponse::Success(Some(Box::new(ProofGenerationData {
        l1_batch_number: L1BatchNumber(12),
        chain_id: L2ChainId(270),
        batch_sealed_at: Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap(),
        witness_input_data,
        protocol_version: ProtocolSemanticVersion { minor: 1, patch: 2 },
        l1_verifier_config: L1VerifierConfig { scheduler_vk_hash: hash(42) },
    })));
    let doc = json!({ "Success": {
        "l1_batch_number": 12,
        "chain_id": 270,
        "batch_sealed_at": "2026-11-25T12:00:00Z",
        "witness_input_data": witness_doc,
        "protocol_version": { "minor": 1, "patch": 2 },
        "l1_verifier_config": { "scheduler_vk_hash": hash_hex(42) }
    }});
    assert_wire(doc, value);
}

#[test]
fn proof_generation_data_response_empty_and_error() {
    assert_wire(json!({ "Success": null }), ProofGenerationDataResponse::Success(None));
    assert_wire(json!({ "Error": "db down" }), ProofGenerationDataResponse::Error("db down".into()));
    assert_wire(json!({}), ProofGenerationDataRequest {});
}

#[test]
fn submit_proof_request_and_response() {
    let value = SubmitProofRequest::Proof(Box::new(L1BatchProofForL1 {
        version: WireVersion::CURRENT,
        protocol_version: ProtocolSemanticVersion { minor: 1, patch: 0 },
        batch_commitment: hash(5),
        proof: ProofBytes(vec![1, 2, 3, 250]),
    }));
    let doc = json!({ "Proof": {
        "version": 1,
        "protocol_version": { "minor": 1, "patch": 0 },
        "batch_commitment": hash_hex(5),
        "proof": "AQID+g=="
    }});
    assert_wire(doc, value);
    assert_wire(json!("SkippedProofGeneration"), SubmitProofRequest::SkippedProofGeneration);
    assert_wire(json!("Success"), SubmitProofResponse::Success);
    assert_wire(json!({ "Error": "batch 3 is already proven" }), SubmitProofResponse::Error("batch 3 is already proven".into()));
}

#[test]
fn unknown_wire_version_is_named() {
    let (_, mut doc) = witness_input();
    doc["version"] = json!(7);
    let err = serde_json::from_value::<WitnessInputData>(doc).unwrap_err().to_string();
    assert!(err.contains("unsupported wire format version 7: this build speaks version 1"), "{err}");
}

#[test]
fn bad_proof_encoding_is_named() {
    let doc = json!({ "Proof": {
        "version": 1, "protocol_version": { "minor": 1, "patch": 0 },
        "batch_commitment": hash_hex(5), "proof": "not base64!" }});
    let err = serde_json::from_value::<SubmitProofRequest>(doc).unwrap_err().to_string();
    assert!(err.contains("proof: invalid base64"), "{err}");
}

#[test]
fn protocol_version_reads_like_zksync() {
    assert_eq!(ProtocolSemanticVersion { minor: 24, patch: 3 }.to_string(), "0.24.3");
}
