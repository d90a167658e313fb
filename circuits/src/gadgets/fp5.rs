//! GF(p^5) = GF(p)[z]/(z^5 - 3) arithmetic over base-field targets (the circuit's own extension is
//! the quadratic one, so EcGFp5's field is built from base-field operations).

use plonky2::field::types::Field;
use plonky2::iop::target::{BoolTarget, Target};
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use via_l2::curve::Fp5;

use crate::config::{D, F};

/// `z^5 = W`.
const W: u64 = 3;

/// A GF(p^5) element: coefficient `i` multiplies `z^i`.
#[derive(Clone, Copy, Debug)]
pub struct Fp5Target(pub [Target; 5]);

impl Fp5Target {
    /// A fresh witness element.
    pub fn new_virtual(builder: &mut CircuitBuilder<F, D>) -> Self {
        Self(builder.add_virtual_target_arr())
    }

    /// A constant.
    pub fn constant(builder: &mut CircuitBuilder<F, D>, value: Fp5) -> Self {
        Self(value.0.map(|c| builder.constant(c)))
    }

    /// Sets a witness element.
    pub fn set(&self, witness: &mut PartialWitness<F>, value: Fp5) -> anyhow::Result<()> {
        for (t, v) in self.0.iter().zip(value.0) {
            witness.set_target(*t, v)?;
        }
        Ok(())
    }

    pub fn add(self, builder: &mut CircuitBuilder<F, D>, rhs: Self) -> Self {
        Self(std::array::from_fn(|i| builder.add(self.0[i], rhs.0[i])))
    }

    pub fn sub(self, builder: &mut CircuitBuilder<F, D>, rhs: Self) -> Self {
        Self(std::array::from_fn(|i| builder.sub(self.0[i], rhs.0[i])))
    }

    pub fn neg(self, builder: &mut CircuitBuilder<F, D>) -> Self {
        Self(self.0.map(|c| builder.neg(c)))
    }

    /// `2 · self`.
    pub fn double(self, builder: &mut CircuitBuilder<F, D>) -> Self {
        self.add(builder, self)
    }

    /// Product, schoolbook with the `z^5 = 3` reduction folded into the coefficients.
    pub fn mul(self, builder: &mut CircuitBuilder<F, D>, rhs: Self) -> Self {
        Self(std::array::from_fn(|k| {
            let mut acc: Option<Target> = None;
            for i in 0..5 {
                // j with i + j = k, or i + j = k + 5 (which wraps with a factor W).
                let (j, weight) = if i <= k { (k - i, 1) } else { (k + 5 - i, W) };
                let weight = F::from_canonical_u64(weight);
                acc = Some(match acc {
                    None => {
                        let product = builder.mul(self.0[i], rhs.0[j]);
                        builder.mul_const(weight, product)
                    }
                    Some(a) => builder.arithmetic(weight, F::ONE, self.0[i], rhs.0[j], a),
                });
            }
            acc.expect("five terms")
        }))
    }

    pub fn square(self, builder: &mut CircuitBuilder<F, D>) -> Self {
        self.mul(builder, self)
    }

    /// Product with a constant (linear: no multiplication gates beyond scalings).
    pub fn mul_const(self, builder: &mut CircuitBuilder<F, D>, c: Fp5) -> Self {
        Self(std::array::from_fn(|k| {
            let mut acc = builder.zero();
            for i in 0..5 {
                let (j, weight) = if i <= k { (k - i, 1) } else { (k + 5 - i, W) };
                let coeff = c.0[j] * F::from_canonical_u64(weight);
                if coeff != F::ZERO {
                    acc = builder.mul_const_add(coeff, self.0[i], acc);
                }
            }
            acc
        }))
    }

    /// `flag ? self : other`.
    pub fn select(self, builder: &mut CircuitBuilder<F, D>, flag: BoolTarget, other: Self) -> Self {
        Self(std::array::from_fn(|i| builder.select(flag, self.0[i], other.0[i])))
    }

    pub fn connect(self, builder: &mut CircuitBuilder<F, D>, rhs: Self) {
        for i in 0..5 {
            builder.connect(self.0[i], rhs.0[i]);
        }
    }

    /// Asserts `self == rhs` where `condition` holds.
    pub fn conditional_connect(self, builder: &mut CircuitBuilder<F, D>, condition: BoolTarget, rhs: Self) {
        for i in 0..5 {
            builder.conditional_assert_eq(condition.target, self.0[i], rhs.0[i]);
        }
    }
}

#[cfg(test)]
mod tests {
    use plonky2::field::types::Sample;

    use super::*;
    use crate::gadgets::testing::{builder, prove};

    #[test]
    fn arithmetic_matches_native() {
        let (a, b, c) = (Fp5::rand(), Fp5::rand(), Fp5::rand());
        let mut bld = builder();
        let (ta, tb) = (Fp5Target::new_virtual(&mut bld), Fp5Target::new_virtual(&mut bld));
        let product = ta.mul(&mut bld, tb);
        let scaled = ta.mul_const(&mut bld, c);
        let doubled = tb.double(&mut bld);
        let mixed = product.sub(&mut bld, scaled).add(&mut bld, doubled);
        let expected = Fp5Target::constant(&mut bld, a * b - a * c + b + b);
        mixed.connect(&mut bld, expected);
        let mut pw = PartialWitness::new();
        ta.set(&mut pw, a).unwrap();
        tb.set(&mut pw, b).unwrap();
        prove(bld, pw).unwrap();
    }

    #[test]
    fn wrong_product_is_refused() {
        let (a, b) = (Fp5::rand(), Fp5::rand());
        let mut bld = builder();
        let ta = Fp5Target::new_virtual(&mut bld);
        let sq = ta.square(&mut bld);
        let claimed = Fp5Target::constant(&mut bld, a * b);
        sq.connect(&mut bld, claimed);
        let mut pw = PartialWitness::new();
        ta.set(&mut pw, a).unwrap();
        assert!(prove(bld, pw).is_err());
    }
}
