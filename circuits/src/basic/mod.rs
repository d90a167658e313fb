//! The basic circuits of round 0: each proves one slice of a batch, and queues (Poseidon hash
//! chains) connect the slices.
//!
//! | id | circuit | consumes | produces |
//! |---|---|---|---|
//! | 1 | [`tx_execution`] | transactions | access log, pubdata, signature requests, priority ops, withdrawals |
//! | 2 | [`storage_application`] | access log | state root in -> out |
//! | 3 | [`pubdata_hasher`] | pubdata | SHA-256 state in -> out |
//! | 4 | [`signature_verifier`] | signature requests | - |
//!
//! Every instance's public inputs are `context || state_in || state_out`: the context is the same
//! for every instance of a batch, and `state_out` of instance `i` is `state_in` of instance
//! `i + 1`, so aggregation checks chaining the same way for every circuit type.

pub mod pubdata_hasher;
pub mod signature_verifier;
pub mod storage_application;
pub mod tx_execution;

use std::fmt;

use serde::{Deserialize, Serialize};

/// The basic circuit types, with zkSync-style stable ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[repr(u8)]
pub enum CircuitId {
    TxExecution = 1,
    StorageApplication = 2,
    PubdataHasher = 3,
    SignatureVerifier = 4,
}

impl CircuitId {
    /// Every basic circuit type, in id order.
    pub const ALL: [Self; 4] = [Self::TxExecution, Self::StorageApplication, Self::PubdataHasher, Self::SignatureVerifier];

    /// The numeric id.
    pub fn id(self) -> u8 {
        self as u8
    }

    /// Lengths of the `context` and of each of `state_in` / `state_out` in the public inputs.
    pub fn public_input_layout(self) -> (usize, usize) {
        match self {
            Self::TxExecution => (tx_execution::CONTEXT_LEN, tx_execution::STATE_LEN),
            Self::StorageApplication => (0, storage_application::STATE_LEN),
            Self::PubdataHasher => (0, pubdata_hasher::STATE_LEN),
            Self::SignatureVerifier => (0, signature_verifier::STATE_LEN),
        }
    }
}

impl fmt::Display for CircuitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::TxExecution => "TxExecution",
            Self::StorageApplication => "StorageApplication",
            Self::PubdataHasher => "PubdataHasher",
            Self::SignatureVerifier => "SignatureVerifier",
        };
        write!(f, "{name} ({})", self.id())
    }
}

/// Sets witness targets from canonical `u64` values.
pub(crate) fn set_all(
    pw: &mut plonky2::iop::witness::PartialWitness<crate::config::F>,
    targets: &[plonky2::iop::target::Target],
    values: impl IntoIterator<Item = u64>,
) -> anyhow::Result<()> {
    use plonky2::field::types::Field;
    use plonky2::iop::witness::WitnessWrite;
    for (t, v) in targets.iter().zip(values) {
        pw.set_target(*t, crate::config::F::from_canonical_u64(v))?;
    }
    Ok(())
}

/// Queue items, written once for the native witness generator and once for circuits, side by
/// side so their layouts cannot drift apart.
pub mod items {
    use plonky2::hash::hash_types::HashOutTarget;
    use plonky2::iop::target::Target;
    use via_l2::hash::{Digest, F, fe};

    /// An access-log item: `account id || old leaf || new leaf`.
    pub fn access(account: u32, old_leaf: Digest, new_leaf: Digest) -> Vec<F> {
        let mut item = vec![fe(account.into())];
        item.extend(old_leaf.elements);
        item.extend(new_leaf.elements);
        item
    }

    /// [`access`] in a circuit.
    pub fn access_target(account: Target, old_leaf: HashOutTarget, new_leaf: HashOutTarget) -> Vec<Target> {
        let mut item = vec![account];
        item.extend(old_leaf.elements);
        item.extend(new_leaf.elements);
        item
    }

    /// A signature request: `public key (5) || message (4) || r (5) || s as ten 32-bit words,
    /// most significant first`.
    pub fn signature_request(public_key: [F; 5], message: Digest, r: [F; 5], s_words: [F; 10]) -> Vec<F> {
        let mut item = public_key.to_vec();
        item.extend(message.elements);
        item.extend(r);
        item.extend(s_words);
        item
    }

    /// Length of a signature request.
    pub const SIGNATURE_REQUEST_LEN: usize = 24;
}
