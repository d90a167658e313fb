//! The verifier of final proofs: given a proof, the batch's public data and the protocol
//! version's final verification key and scheduler key hash, accept or say why not. This is what
//! the devnet core runs on `submit_proof` and what `prover verify` runs.

use plonky2::field::types::PrimeField64;
use plonky2::plonk::circuit_data::VerifierCircuitData;
use plonky2::plonk::proof::CompressedProofWithPublicInputs;
use via_l2::batch::batch_commitment;
use via_schemas::l2::BatchPublicData;
use via_schemas::primitives::Hash;

use crate::config::{D, F, FinalC};

/// Why a final proof was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the proof is malformed: {0}")]
    Malformed(String),
    #[error("the proof commits to {got}, the batch's public data commits to {expected}")]
    WrongCommitment { expected: Hash, got: String },
    #[error("the proof does not verify: {0}")]
    Invalid(String),
}

/// Verifies final proofs of one protocol version.
pub struct FinalVerifier {
    /// The last compression layer's verifier data.
    pub verifier: VerifierCircuitData<F, FinalC, D>,
    /// The scheduler's verification key hash, which the commitment binds.
    pub scheduler_vk_hash: Hash,
}

impl FinalVerifier {
    /// Checks `proof` (a compressed plonky2 proof, as [`crate::aggregation::AggregationCircuits::final_proof_bytes`]
    /// writes it) against the batch's public data.
    pub fn verify(&self, proof: &[u8], public_data: &BatchPublicData) -> Result<(), VerifyError> {
        self.verify_commitment(proof, batch_commitment(public_data, self.scheduler_vk_hash))
    }

    /// Checks `proof` against a batch commitment computed elsewhere.
    pub fn verify_commitment(&self, proof: &[u8], expected: Hash) -> Result<(), VerifyError> {
        // plonky2 indexes into a compressed proof by the query positions it derives, and panics
        // when tampered bytes lead it to a position the proof does not hold: that is a rejection.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.verify_unguarded(proof, expected)))
            .unwrap_or_else(|_| Err(VerifyError::Malformed("its openings do not match the queries its transcript derives".into())))
    }

    fn verify_unguarded(&self, proof: &[u8], expected: Hash) -> Result<(), VerifyError> {
        let proof = CompressedProofWithPublicInputs::<F, FinalC, D>::from_bytes(proof.to_vec(), &self.verifier.common).map_err(|e| VerifyError::Malformed(format!("{e:?}")))?;
        let got: Vec<u64> = proof.public_inputs.iter().map(|x| x.to_canonical_u64()).collect();
        if got != expected.limbs() {
            let got = Hash::from_limbs(got.clone().try_into().unwrap_or([u64::MAX; 4])).map_or_else(|_| format!("{got:?}"), |h| h.to_string());
            return Err(VerifyError::WrongCommitment { expected, got });
        }
        self.verifier.verify_compressed(proof).map_err(|e| VerifyError::Invalid(e.to_string()))
    }
}
