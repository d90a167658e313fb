//! EcGFp5 in circuits: the complete addition law in fractional `(x, u)` coordinates (no special
//! cases, so no branching on witness data), decoding of public keys, encoding checks, and the
//! double-scalar multiplication of Schnorr verification.

use plonky2::field::types::Field;
use plonky2::iop::target::BoolTarget;
use plonky2::plonk::circuit_builder::CircuitBuilder;
use via_l2::curve::{self, Fp5, Point};

use crate::config::{D, F};
use crate::gadgets::fp5::Fp5Target;
use crate::gadgets::generators::{Fp5InverseGenerator, PointDecodeGenerator};

/// A group element `(X : Z : U : T)`, with `x = X/Z` and `u = U/T = x/y`.
#[derive(Clone, Copy, Debug)]
pub struct PointTarget {
    pub x: Fp5Target,
    pub z: Fp5Target,
    pub u: Fp5Target,
    pub t: Fp5Target,
}

impl PointTarget {
    /// A constant point.
    pub fn constant(builder: &mut CircuitBuilder<F, D>, point: &Point) -> Self {
        let [x, z, u, t] = point.fractional().map(|c| Fp5Target::constant(builder, c));
        Self { x, z, u, t }
    }

    /// The complete addition law (10 multiplications); doubling is `p.add(p)`.
    pub fn add(self, builder: &mut CircuitBuilder<F, D>, rhs: Self) -> Self {
        let xx = self.x.mul(builder, rhs.x);
        let zz = self.z.mul(builder, rhs.z);
        let uu = self.u.mul(builder, rhs.u);
        let tt = self.t.mul(builder, rhs.t);
        let xz1 = self.x.add(builder, self.z);
        let xz2 = rhs.x.add(builder, rhs.z);
        let xz = xz1.mul(builder, xz2).sub(builder, xx).sub(builder, zz);
        let ut1 = self.u.add(builder, self.t);
        let ut2 = rhs.u.add(builder, rhs.t);
        let ut = ut1.mul(builder, ut2).sub(builder, uu).sub(builder, tt);
        let b_zz = zz.mul_const(builder, curve::B);
        let m = xx.add(builder, b_zz);
        let n = tt.mul(builder, m);
        let b_xz = xz.mul_const(builder, curve::B);
        let q_factor = b_xz.add(builder, m).double(builder);
        let q = uu.mul(builder, q_factor);
        let r_left = uu.double(builder).add(builder, tt);
        let r_right = xz.add(builder, m);
        let r = r_left.mul(builder, r_right);
        let r_n = r.sub(builder, n);
        let b_zz_xx = b_zz.sub(builder, xx);
        Self {
            x: r_n.mul_const(builder, curve::B),
            z: n.sub(builder, q),
            u: ut.mul(builder, b_zz_xx),
            t: n.add(builder, q),
        }
    }

    pub fn neg(self, builder: &mut CircuitBuilder<F, D>) -> Self {
        Self { u: self.u.neg(builder), ..self }
    }

    /// `flag ? self : other`.
    pub fn select(self, builder: &mut CircuitBuilder<F, D>, flag: BoolTarget, other: Self) -> Self {
        Self {
            x: self.x.select(builder, flag, other.x),
            z: self.z.select(builder, flag, other.z),
            u: self.u.select(builder, flag, other.u),
            t: self.t.select(builder, flag, other.t),
        }
    }
}

/// A witness `1/x` (zero for `x = 0`), unconstrained: callers constrain it.
fn inverse_hint(builder: &mut CircuitBuilder<F, D>, x: Fp5Target) -> Fp5Target {
    let inverse = Fp5Target::new_virtual(builder);
    builder.add_simple_generator(Fp5InverseGenerator { x, inverse });
    inverse
}

/// Asserts `x != 0` in GF(p^5) where `active`, by exhibiting an inverse.
pub fn assert_nonzero(builder: &mut CircuitBuilder<F, D>, x: Fp5Target, active: BoolTarget) {
    let inverse = inverse_hint(builder, x);
    let product = x.mul(builder, inverse);
    let one = Fp5Target::constant(builder, Fp5::ONE);
    product.conditional_connect(builder, active, one);
}

/// Decodes a public key `w` where `active`: `w != 0`, `x^2 - (w^2 - a) x + b = 0`, and
/// `y^2 · x = b` (so `x` is the non-square root, making the decoding unique). The point is
/// `(x : 1 : 1 : w)`. Where not active the result is unconstrained.
pub fn decode(builder: &mut CircuitBuilder<F, D>, w: Fp5Target, active: BoolTarget) -> PointTarget {
    let x = Fp5Target::new_virtual(builder);
    let y = Fp5Target::new_virtual(builder);
    builder.add_simple_generator(PointDecodeGenerator { w, x, y });
    assert_nonzero(builder, w, active);

    let a = Fp5Target::constant(builder, curve::A);
    let b = Fp5Target::constant(builder, curve::B);
    let zero = Fp5Target::constant(builder, Fp5::ZERO);
    let e = w.square(builder).sub(builder, a);
    let ex = e.mul(builder, x);
    let quadratic = x.square(builder).sub(builder, ex).add(builder, b);
    quadratic.conditional_connect(builder, active, zero);
    let y2x = y.square(builder).mul(builder, x);
    y2x.conditional_connect(builder, active, b);

    let one = Fp5Target::constant(builder, Fp5::ONE);
    PointTarget { x, z: one, u: one, t: w }
}

/// Asserts where `active` that `point` is not neutral and encodes to `w`: `U != 0` and
/// `T = w · U`.
pub fn assert_encodes(builder: &mut CircuitBuilder<F, D>, point: PointTarget, w: Fp5Target, active: BoolTarget) {
    assert_nonzero(builder, point.u, active);
    let wu = w.mul(builder, point.u);
    point.t.conditional_connect(builder, active, wu);
}

/// `s·G - e·Q` for little-endian scalar bits, by one shared double-and-add (Shamir's trick) over
/// the table `{0, G, -Q, G - Q}`.
pub fn mul_generator_sub(builder: &mut CircuitBuilder<F, D>, s_bits: &[BoolTarget], e_bits: &[BoolTarget], q: PointTarget) -> PointTarget {
    let neutral = PointTarget::constant(builder, &Point::NEUTRAL);
    let g = PointTarget::constant(builder, &Point::GENERATOR);
    let minus_q = q.neg(builder);
    let g_minus_q = g.add(builder, minus_q);
    let zero_bit = builder.constant_bool(false);
    let mut acc = neutral;
    for i in (0..s_bits.len().max(e_bits.len())).rev() {
        acc = acc.add(builder, acc);
        let s = s_bits.get(i).copied().unwrap_or(zero_bit);
        let e = e_bits.get(i).copied().unwrap_or(zero_bit);
        let without_q = g.select(builder, s, neutral);
        let with_q = g_minus_q.select(builder, s, minus_q);
        let addend = with_q.select(builder, e, without_q);
        acc = acc.add(builder, addend);
    }
    acc
}
