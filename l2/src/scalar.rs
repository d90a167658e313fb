//! Integers modulo the EcGFp5 group order `n`.

use std::ops::{Add, Mul};
use std::sync::LazyLock;

use num_bigint::BigUint;
use via_schemas::primitives::Scalar as WireScalar;

/// The EcGFp5 group order, a 319-bit prime.
static ORDER: LazyLock<BigUint> = LazyLock::new(|| {
    "1067993516717146951041484916571792702745057740581727230159139685185762082554198619328292418486241"
        .parse()
        .expect("the group order is a decimal literal")
});

/// An integer in `[0, n)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scalar(BigUint);

/// A wire scalar that is not below the group order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("scalar {0} is not reduced modulo the EcGFp5 group order")]
pub struct ScalarNotReduced(pub WireScalar);

impl Scalar {
    /// The group order `n`.
    pub fn order() -> &'static BigUint {
        &ORDER
    }

    /// `value mod n`.
    pub fn from_biguint_reduced(value: BigUint) -> Self {
        Self(value % &*ORDER)
    }

    /// Reads a wire scalar, rejecting values `>= n` so each scalar has one encoding.
    pub fn from_wire(wire: &WireScalar) -> Result<Self, ScalarNotReduced> {
        let value = BigUint::from_bytes_be(&wire.0);
        if value < *ORDER { Ok(Self(value)) } else { Err(ScalarNotReduced(*wire)) }
    }

    /// The scalar as 40 big-endian bytes.
    pub fn to_wire(&self) -> WireScalar {
        let bytes = self.0.to_bytes_be();
        let mut out = [0u8; 40];
        out[40 - bytes.len()..].copy_from_slice(&bytes);
        WireScalar(out)
    }

    /// Whether this is zero.
    pub fn is_zero(&self) -> bool {
        self.0.bits() == 0
    }

    /// The value as an integer.
    pub fn as_biguint(&self) -> &BigUint {
        &self.0
    }
}

impl Add for &Scalar {
    type Output = Scalar;

    fn add(self, rhs: Self) -> Scalar {
        Scalar::from_biguint_reduced(&self.0 + &rhs.0)
    }
}

impl Mul for &Scalar {
    type Output = Scalar;

    fn mul(self, rhs: Self) -> Scalar {
        Scalar::from_biguint_reduced(&self.0 * &rhs.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_round_trip_and_range() {
        let s = Scalar::from_biguint_reduced(Scalar::order() - 1u32);
        assert_eq!(Scalar::from_wire(&s.to_wire()).unwrap(), s);
        let mut n_bytes = [0u8; 40];
        let be = Scalar::order().to_bytes_be();
        n_bytes[40 - be.len()..].copy_from_slice(&be);
        assert!(Scalar::from_wire(&WireScalar(n_bytes)).is_err());
    }
}
