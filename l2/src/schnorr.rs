//! Schnorr signatures over EcGFp5 with Poseidon challenges: what the core checks before it
//! executes a transaction, and exactly what the SignatureVerifier circuit checks again.
//!
//! - sign: `k` derived from the key and message, `R = k·G`, `e = H(w(R) || w(pk) || m)` read as a
//!   256-bit integer, `s = k + e·sk mod n`; the signature is `(w(R), s)`.
//! - verify: `pk` decodes to a non-neutral point, `R` is not neutral, `s < n`, and
//!   `w(s·G - e·pk) == w(R)`.

use num_bigint::BigUint;
use plonky2::field::types::{Field, PrimeField64};
use via_schemas::primitives::{EncodedPoint, PublicKey, Signature};

use crate::curve::{InvalidEncoding, Point};
use crate::hash::{Digest, F, hash};
use crate::scalar::{Scalar, ScalarNotReduced};

/// Domain tags keep the nonce and key derivations apart from every other Poseidon use.
const NONCE_DOMAIN: u64 = 0x6e6f6e6365; // "nonce"
const KEY_DOMAIN: u64 = 0x6b6579; // "key"

/// Why a signature was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("public key: {0}")]
    InvalidPublicKey(InvalidEncoding),
    #[error("public key is the neutral element")]
    NeutralPublicKey,
    #[error("signature: {0}")]
    ScalarNotReduced(ScalarNotReduced),
    #[error("signature nonce is the neutral element")]
    NeutralNonce,
    #[error("signature does not match the message and public key")]
    Mismatch,
}

/// A signing key: a non-zero scalar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretKey(Scalar);

/// Reads 512 bits from two Poseidon outputs and reduces them mod n, so the bias is negligible.
fn wide_scalar(inputs: &[F]) -> Scalar {
    let mut bytes = Vec::with_capacity(64);
    for counter in 0..2u64 {
        let mut input = inputs.to_vec();
        input.push(F::from_canonical_u64(counter));
        for limb in hash(&input).elements {
            bytes.extend_from_slice(&limb.to_canonical_u64().to_le_bytes());
        }
    }
    Scalar::from_biguint_reduced(BigUint::from_bytes_le(&bytes))
}

/// The challenge `e = H(w(R) || w(pk) || m)`, four limbs read as a little-endian integer below
/// 2^256 (and so below n).
pub fn challenge(r: &EncodedPoint, public_key: &PublicKey, message: Digest) -> Scalar {
    let mut input = Vec::with_capacity(14);
    input.extend(r.limbs().map(F::from_canonical_u64));
    input.extend(public_key.limbs().map(F::from_canonical_u64));
    input.extend(message.elements);
    let mut bytes = Vec::with_capacity(32);
    for limb in hash(&input).elements {
        bytes.extend_from_slice(&limb.to_canonical_u64().to_le_bytes());
    }
    Scalar::from_biguint_reduced(BigUint::from_bytes_le(&bytes))
}

impl SecretKey {
    /// Derives a key deterministically from entropy given as field elements (the devnet derives
    /// its accounts' keys from its seed this way).
    pub fn derive(entropy: &[F]) -> Self {
        let mut input = vec![F::from_canonical_u64(KEY_DOMAIN)];
        input.extend_from_slice(entropy);
        let k = wide_scalar(&input);
        // Zero has probability ~2^-319; map it to one rather than fail.
        Self(if k.is_zero() { Scalar::from_biguint_reduced(1u32.into()) } else { k })
    }

    /// The public key `sk·G`.
    pub fn public_key(&self) -> PublicKey {
        (Point::GENERATOR * &self.0).to_wire()
    }

    /// Signs a message digest. The nonce is derived from the key and the message, so signing is
    /// deterministic and never reuses a nonce across messages.
    pub fn sign(&self, message: Digest) -> Signature {
        let mut input = vec![F::from_canonical_u64(NONCE_DOMAIN)];
        for chunk in self.0.to_wire().0.chunks_exact(4) {
            input.push(F::from_canonical_u32(u32::from_be_bytes(chunk.try_into().expect("4 bytes"))));
        }
        input.extend(message.elements);
        let k = wide_scalar(&input);
        let r = (Point::GENERATOR * &k).to_wire();
        let e = challenge(&r, &self.public_key(), message);
        let s = &k + &(&e * &self.0);
        Signature { r, s: s.to_wire() }
    }
}

/// Verifies `signature` on `message` under `public_key`.
pub fn verify(public_key: &PublicKey, message: Digest, signature: &Signature) -> Result<(), SignatureError> {
    let pk = Point::from_wire(public_key).map_err(SignatureError::InvalidPublicKey)?;
    if pk.is_neutral() {
        return Err(SignatureError::NeutralPublicKey);
    }
    // R = k·G is neutral only for k = 0; refusing it lets the circuit compare encodings through
    // `T = w·U` with `U != 0`.
    if signature.r == EncodedPoint::ZERO {
        return Err(SignatureError::NeutralNonce);
    }
    let s = Scalar::from_wire(&signature.s).map_err(SignatureError::ScalarNotReduced)?;
    let e = challenge(&signature.r, public_key, message);
    let r = Point::GENERATOR * &s - pk * &e;
    if r.to_wire() == signature.r { Ok(()) } else { Err(SignatureError::Mismatch) }
}

#[cfg(test)]
mod tests {
    use plonky2::hash::hash_types::HashOut;

    use super::*;

    fn message(x: u64) -> Digest {
        HashOut { elements: [F::from_canonical_u64(x), F::ONE, F::TWO, F::ZERO] }
    }

    #[test]
    fn honest_signature_verifies() {
        let sk = SecretKey::derive(&[F::ONE]);
        let sig = sk.sign(message(7));
        assert_eq!(verify(&sk.public_key(), message(7), &sig), Ok(()));
        assert_eq!(sig, sk.sign(message(7)), "signing is deterministic");
    }

    #[test]
    fn wrong_key_is_rejected() {
        let sk = SecretKey::derive(&[F::ONE]);
        let other = SecretKey::derive(&[F::TWO]);
        let sig = sk.sign(message(7));
        assert_eq!(verify(&other.public_key(), message(7), &sig), Err(SignatureError::Mismatch));
    }

    #[test]
    fn tampered_message_is_rejected() {
        let sk = SecretKey::derive(&[F::ONE]);
        let sig = sk.sign(message(7));
        assert_eq!(verify(&sk.public_key(), message(8), &sig), Err(SignatureError::Mismatch));
    }

    #[test]
    fn tampered_signature_is_rejected() {
        let sk = SecretKey::derive(&[F::ONE]);
        let mut sig = sk.sign(message(7));
        sig.s.0[39] ^= 1;
        assert_eq!(verify(&sk.public_key(), message(7), &sig), Err(SignatureError::Mismatch));
        let mut sig = sk.sign(message(7));
        sig.s.0 = [0xff; 40];
        assert!(matches!(verify(&sk.public_key(), message(7), &sig), Err(SignatureError::ScalarNotReduced(_))));
        let mut sig = sk.sign(message(7));
        sig.r = EncodedPoint::ZERO;
        assert_eq!(verify(&sk.public_key(), message(7), &sig), Err(SignatureError::NeutralNonce));
    }

    #[test]
    fn malformed_and_neutral_keys_are_rejected() {
        let sig = SecretKey::derive(&[F::ONE]).sign(message(7));
        assert_eq!(verify(&EncodedPoint::ZERO, message(7), &sig), Err(SignatureError::NeutralPublicKey));
        // Not an encoding, from the ecGFp5 reference's known answers.
        let not_a_point = EncodedPoint::from_limbs([
            13557832913345268708,
            15669280705791538619,
            8534654657267986396,
            12533218303838131749,
            5058070698878426028,
        ])
        .unwrap();
        assert!(matches!(verify(&not_a_point, message(7), &sig), Err(SignatureError::InvalidPublicKey(_))));
    }
}
