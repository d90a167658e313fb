//! The proof system's parameters, fixed for every circuit of the prover.

use plonky2::field::goldilocks_field::GoldilocksField;
use plonky2::plonk::circuit_data::CircuitConfig;
use plonky2::plonk::config::{KeccakGoldilocksConfig, PoseidonGoldilocksConfig};

/// The base field.
pub type F = GoldilocksField;
/// The extension degree FRI works in.
pub const D: usize = 2;
/// Poseidon over Goldilocks for Merkle trees and the Fiat-Shamir transcript.
pub type C = PoseidonGoldilocksConfig;
/// The last compression layer's: Keccak Merkle trees and transcript. Its proof is only ever
/// verified natively, never in a circuit, and Keccak's 25-byte digests make its Merkle paths
/// shorter than Poseidon's 32 bytes (what it verifies, and its public inputs' hash, stay
/// Poseidon).
pub type FinalC = KeccakGoldilocksConfig;

/// The configuration basic circuits and the recursion tip are built with: plonky2's standard
/// recursion configuration (135 wires, 80 routed), so any of them can be verified recursively.
/// Leaves, nodes and the scheduler (`aggregation::aggregation_config`) and the compression
/// layers (`aggregation::compression::compression_config`) start from it.
pub fn circuit_config() -> CircuitConfig {
    CircuitConfig::standard_recursion_config()
}
