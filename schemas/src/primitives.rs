//! Values backed by Goldilocks field elements or fixed byte strings, with canonical hex encodings.
//!
//! Field-element values are sent as `0x`-prefixed hex: each limb as 16 big-endian hex digits,
//! limb 0 first. Decoding rejects a limb that is not a canonical Goldilocks element (`>= p`), so
//! two encodings never name the same value.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The Goldilocks prime `p = 2^64 - 2^32 + 1`.
pub const GOLDILOCKS_MODULUS: u64 = 0xFFFF_FFFF_0000_0001;

/// Why a hex value could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HexValueError {
    /// The string does not start with `0x`.
    #[error("{what}: expected a 0x-prefixed hex string")]
    MissingPrefix { what: &'static str },
    /// The string has the wrong number of hex digits.
    #[error("{what}: expected {expected} hex digits, got {got}")]
    WrongLength { what: &'static str, expected: usize, got: usize },
    /// The string has a character that is not a hex digit.
    #[error("{what}: not a hex string")]
    NotHex { what: &'static str },
    /// A limb is not below the Goldilocks modulus.
    #[error("{what}: limb {limb} ({value:#x}) is not a canonical Goldilocks element")]
    NonCanonicalLimb { what: &'static str, limb: usize, value: u64 },
}

fn decode_hex<const BYTES: usize>(what: &'static str, s: &str) -> Result<[u8; BYTES], HexValueError> {
    let digits = s.strip_prefix("0x").ok_or(HexValueError::MissingPrefix { what })?;
    if digits.len() != 2 * BYTES {
        return Err(HexValueError::WrongLength { what, expected: 2 * BYTES, got: digits.len() });
    }
    let mut out = [0u8; BYTES];
    hex::decode_to_slice(digits, &mut out).map_err(|_| HexValueError::NotHex { what })?;
    Ok(out)
}

/// Serde through the type's `Display` and `FromStr`, so JSON carries the checked hex string.
macro_rules! serde_via_str {
    ($name:ident) => {
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({self})", stringify!($name))
            }
        }
    };
}

/// A value made of `$n` canonical Goldilocks limbs.
macro_rules! goldilocks_limbs {
    ($(#[$doc:meta])* $name:ident, $n:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name([u64; $n]);

        impl $name {
            /// The all-zero value.
            pub const ZERO: Self = Self([0; $n]);

            /// Builds the value from canonical limbs, rejecting any limb `>= p`.
            pub fn from_limbs(limbs: [u64; $n]) -> Result<Self, HexValueError> {
                for (limb, &value) in limbs.iter().enumerate() {
                    if value >= GOLDILOCKS_MODULUS {
                        return Err(HexValueError::NonCanonicalLimb { what: stringify!($name), limb, value });
                    }
                }
                Ok(Self(limbs))
            }

            /// Builds the value from limbs, reducing each one modulo `p`.
            pub const fn from_limbs_reduced(mut limbs: [u64; $n]) -> Self {
                let mut i = 0;
                while i < $n {
                    if limbs[i] >= GOLDILOCKS_MODULUS {
                        limbs[i] -= GOLDILOCKS_MODULUS;
                    }
                    i += 1;
                }
                Self(limbs)
            }

            /// The canonical limbs.
            pub const fn limbs(&self) -> [u64; $n] {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("0x")?;
                for limb in self.0 {
                    write!(f, "{limb:016x}")?;
                }
                Ok(())
            }
        }

        impl FromStr for $name {
            type Err = HexValueError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let bytes: [u8; 8 * $n] = decode_hex(stringify!($name), s)?;
                let mut limbs = [0u64; $n];
                for (limb, chunk) in limbs.iter_mut().zip(bytes.chunks_exact(8)) {
                    *limb = u64::from_be_bytes(chunk.try_into().expect("chunks_exact yields 8 bytes"));
                }
                Self::from_limbs(limbs)
            }
        }

        serde_via_str!($name);
    };
}

goldilocks_limbs!(
    /// A Poseidon digest over Goldilocks: state roots, queue states, verification key hashes,
    /// batch commitments.
    Hash,
    4
);

goldilocks_limbs!(
    /// An EcGFp5 group element in its canonical encoding `w`, an element of GF(p^5) (limb i is
    /// the coefficient of z^i). Public keys and signature nonces travel in this form.
    EncodedPoint,
    5
);

/// An account's public key: an EcGFp5 point.
pub type PublicKey = EncodedPoint;

/// Fixed 32 bytes: a Bitcoin transaction id, a Bitcoin output key, a SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Bytes32(pub [u8; 32]);

impl fmt::Display for Bytes32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(self.0))
    }
}

impl FromStr for Bytes32 {
    type Err = HexValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        decode_hex("Bytes32", s).map(Self)
    }
}

serde_via_str!(Bytes32);

/// An EcGFp5 scalar (an integer below the group order, about 2^319), sent as 40 bytes of
/// big-endian hex. Whether it is reduced is checked where it is used, in the signature scheme.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scalar(pub [u8; 40]);

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(self.0))
    }
}

impl FromStr for Scalar {
    type Err = HexValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        decode_hex("Scalar", s).map(Self)
    }
}

serde_via_str!(Scalar);

/// A Schnorr signature over EcGFp5: the nonce point `r` and the response `s`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Signature {
    /// The nonce commitment `R = k·G`, encoded.
    pub r: EncodedPoint,
    /// The response `s = k + e·sk mod n`.
    pub s: Scalar,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_hex_round_trips_limb_by_limb() {
        let h = Hash::from_limbs([1, 2, 0xdead_beef, GOLDILOCKS_MODULUS - 1]).unwrap();
        let s = h.to_string();
        assert_eq!(
            s,
            "0x00000000000000010000000000000002\
             00000000deadbeefffffffff00000000"
        );
        assert_eq!(s.parse::<Hash>().unwrap(), h);
        assert_eq!(serde_json::to_string(&h).unwrap(), format!("\"{s}\""));
    }

    #[test]
    fn non_canonical_limb_is_rejected_by_name() {
        let s = format!("0x{:016x}{}", GOLDILOCKS_MODULUS, "0".repeat(48));
        let err = s.parse::<Hash>().unwrap_err();
        assert_eq!(err, HexValueError::NonCanonicalLimb { what: "Hash", limb: 0, value: GOLDILOCKS_MODULUS });
        let err = serde_json::from_str::<Hash>(&format!("\"{s}\"")).unwrap_err().to_string();
        assert!(err.contains("not a canonical Goldilocks element"), "{err}");
    }

    #[test]
    fn malformed_hex_is_rejected() {
        assert!(matches!("12".parse::<Bytes32>(), Err(HexValueError::MissingPrefix { .. })));
        assert!(matches!("0x12".parse::<Bytes32>(), Err(HexValueError::WrongLength { expected: 64, got: 2, .. })));
        let not_hex = format!("0x{}", "zz".repeat(32));
        assert!(matches!(not_hex.parse::<Bytes32>(), Err(HexValueError::NotHex { .. })));
    }

    #[test]
    fn reduction_is_modular() {
        let v = EncodedPoint::from_limbs_reduced([GOLDILOCKS_MODULUS, GOLDILOCKS_MODULUS + 5, 3, 0, u64::MAX]);
        assert_eq!(v.limbs(), [0, 5, 3, 0, u64::MAX - GOLDILOCKS_MODULUS]);
    }
}
