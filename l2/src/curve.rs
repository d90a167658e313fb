//! EcGFp5: the prime-order group of Pornin's double-odd curve `y^2 = x(x^2 + a x + b)` over
//! GF(p^5) = GF(p)[z]/(z^5 - 3), with `a = 2`, `b = 263 z` and order `n` (a 319-bit prime).
//!
//! Points are kept in the fractional `(x, u) = (X/Z, U/T)` coordinates, `u = x/y`, where the
//! curve's addition law is complete (no special case for doubling or the neutral), the same law
//! the signature circuit will use. A group element's canonical encoding is `w = 1/u` (0 for the
//! neutral): one GF(p^5) element, which is how public keys and signature nonces travel.

use std::ops::{Add, Mul, Neg, Sub};
use std::sync::LazyLock;

use num_bigint::BigUint;
use plonky2::field::extension::FieldExtension;
use plonky2::field::extension::quintic::QuinticExtension;
use plonky2::field::ops::Square;
use plonky2::field::types::{Field, PrimeField64};
use via_schemas::primitives::EncodedPoint;

use crate::hash::F;
use crate::scalar::Scalar;

/// GF(p^5), the curve's base field.
pub type Fp5 = QuinticExtension<F>;

/// Builds a GF(p^5) element from canonical coefficients (coefficient of z^i at index i).
pub const fn fp5(limbs: [u64; 5]) -> Fp5 {
    let [a, b, c, d, e] = limbs;
    QuinticExtension([
        plonky2::field::goldilocks_field::GoldilocksField(a),
        plonky2::field::goldilocks_field::GoldilocksField(b),
        plonky2::field::goldilocks_field::GoldilocksField(c),
        plonky2::field::goldilocks_field::GoldilocksField(d),
        plonky2::field::goldilocks_field::GoldilocksField(e),
    ])
}

/// The curve constant `a = 2`.
pub const A: Fp5 = fp5([2, 0, 0, 0, 0]);
/// The curve constant `b = 263 z`.
pub const B: Fp5 = fp5([0, 263, 0, 0, 0]);

/// `(p^5 - 1) / 2`: Euler's criterion exponent.
static HALF_ORDER: LazyLock<BigUint> = LazyLock::new(|| (Fp5::order() - 1u32) >> 1);
/// `t` in `p^5 - 1 = 2^32 t`, for Tonelli-Shanks.
static ODD_PART: LazyLock<BigUint> = LazyLock::new(|| (Fp5::order() - 1u32) >> Fp5::TWO_ADICITY);

fn is_square(x: Fp5) -> bool {
    x.is_zero() || x.exp_biguint(&HALF_ORDER) == Fp5::ONE
}

/// A square root in GF(p^5) by Tonelli-Shanks, or `None` for a non-square.
fn sqrt(x: Fp5) -> Option<Fp5> {
    if x.is_zero() {
        return Some(x);
    }
    if !is_square(x) {
        return None;
    }
    // The field's 2^32-th roots of unity are those of GF(p); the generator of that subgroup has
    // order exactly 2^s, as Tonelli-Shanks' `c` must.
    let mut m = Fp5::TWO_ADICITY;
    let mut c = Fp5::POWER_OF_TWO_GENERATOR;
    let mut t = x.exp_biguint(&ODD_PART);
    let mut r = x.exp_biguint(&((&*ODD_PART + 1u32) >> 1));
    while t != Fp5::ONE {
        let mut i = 0;
        let mut t2i = t;
        while t2i != Fp5::ONE {
            t2i = t2i.square();
            i += 1;
        }
        let b = c.exp_power_of_2(m - i - 1);
        m = i;
        c = b.square();
        t *= c;
        r *= b;
    }
    Some(r)
}

/// An element of the EcGFp5 group.
#[derive(Clone, Copy, Debug)]
pub struct Point {
    x: Fp5,
    z: Fp5,
    u: Fp5,
    t: Fp5,
}

/// A GF(p^5) value that is not the encoding of any group element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0} does not encode an EcGFp5 point")]
pub struct InvalidEncoding(pub EncodedPoint);

impl Point {
    /// The group's neutral element (the curve point (0, 0)).
    pub const NEUTRAL: Self = Self { x: Fp5::ZERO, z: Fp5::ONE, u: Fp5::ZERO, t: Fp5::ONE };

    /// The conventional generator, the point encoded as `w = 4` (so `u = 1/4`).
    pub const GENERATOR: Self = Self {
        x: fp5([
            12883135586176881569,
            4356519642755055268,
            5248930565894896907,
            2165973894480315022,
            2448410071095648785,
        ]),
        z: Fp5::ONE,
        u: Fp5::ONE,
        t: fp5([4, 0, 0, 0, 0]),
    };

    /// Whether this is the neutral element.
    pub fn is_neutral(&self) -> bool {
        self.u.is_zero()
    }

    /// The canonical encoding `w = T/U` (0 for the neutral).
    pub fn encode(&self) -> Fp5 {
        if self.is_neutral() { Fp5::ZERO } else { self.t / self.u }
    }

    /// The canonical encoding as a wire value.
    pub fn to_wire(&self) -> EncodedPoint {
        EncodedPoint::from_limbs_reduced(self.encode().0.map(|c| c.to_canonical_u64()))
    }

    /// Decodes `w`: solves `x^2 - (w^2 - a) x + b = 0` and keeps the root that is not a square.
    pub fn decode(w: Fp5) -> Option<Self> {
        if w.is_zero() {
            return Some(Self::NEUTRAL);
        }
        let e = w.square() - A;
        let delta = e.square() - B * fp5([4, 0, 0, 0, 0]);
        let r = sqrt(delta)?;
        let half = <Fp5 as FieldExtension<5>>::from_basefield(F::TWO.inverse());
        let x1 = (e + r) * half;
        let x2 = (e - r) * half;
        let x = if is_square(x1) { x2 } else { x1 };
        Some(Self { x, z: Fp5::ONE, u: Fp5::ONE, t: w })
    }

    /// Decodes a wire value, naming it if it is not a point.
    pub fn from_wire(w: &EncodedPoint) -> Result<Self, InvalidEncoding> {
        Self::decode(<Fp5 as FieldExtension<5>>::from_basefield_array(w.limbs().map(F::from_canonical_u64))).ok_or(InvalidEncoding(*w))
    }

    /// `2·self`.
    pub fn double(self) -> Self {
        self + self
    }

    /// The fractional coordinates `(X, Z, U, T)`, for circuits that take the point as a constant.
    pub fn fractional(&self) -> [Fp5; 4] {
        [self.x, self.z, self.u, self.t]
    }

    /// Decodes a non-neutral `w` for a circuit: the point with `Z = U = 1`, `T = w`, and `y` with
    /// `y^2 · x = b`. That `y` shows `b/x` is a square, so `x` is the non-square root of the
    /// decoding equation (exactly one root is a square, since their product `b` is not), which is
    /// what makes the decoding unique.
    pub fn decode_with_witness(w: Fp5) -> Option<(Self, Fp5)> {
        if w.is_zero() {
            return None;
        }
        let point = Self::decode(w)?;
        let y = sqrt(B / point.x)?;
        Some((point, y))
    }
}

impl Add for Point {
    type Output = Self;

    /// The complete addition law in fractional `(x, u)` coordinates (10 multiplications).
    fn add(self, rhs: Self) -> Self {
        let (x1, z1, u1, t1) = (self.x, self.z, self.u, self.t);
        let (x2, z2, u2, t2) = (rhs.x, rhs.z, rhs.u, rhs.t);
        let xx = x1 * x2;
        let zz = z1 * z2;
        let uu = u1 * u2;
        let tt = t1 * t2;
        let xz = (x1 + z1) * (x2 + z2) - xx - zz;
        let ut = (u1 + t1) * (u2 + t2) - uu - tt;
        let m = xx + B * zz;
        let n = tt * m;
        let q = uu * ((B * xz).double() + m.double());
        let r = (tt + uu.double()) * (xz + m);
        Self { x: B * (r - n), z: n - q, u: ut * (B * zz - xx), t: n + q }
    }
}

impl Neg for Point {
    type Output = Self;

    fn neg(self) -> Self {
        Self { u: -self.u, ..self }
    }
}

impl Sub for Point {
    type Output = Self;

    fn sub(self, rhs: Self) -> Self {
        self + -rhs
    }
}

impl Mul<&Scalar> for Point {
    type Output = Self;

    /// Double-and-add from the top bit. Not constant-time: the devnet signs with public test keys,
    /// and verification handles public data only.
    fn mul(self, scalar: &Scalar) -> Self {
        let k = scalar.as_biguint();
        let mut acc = Self::NEUTRAL;
        for i in (0..k.bits()).rev() {
            acc = acc.double();
            if k.bit(i) {
                acc = Add::add(acc, self);
            }
        }
        acc
    }
}

impl PartialEq for Point {
    /// Group elements are equal exactly when their `u = U/T` agree.
    fn eq(&self, other: &Self) -> bool {
        self.u * other.t == other.u * self.t
    }
}

impl Eq for Point {}

#[cfg(test)]
mod tests {
    use super::*;

    // Known-answer vectors from the ecGFp5 reference implementation (Pornin): P1 a random
    // element, P2 = e·P1, P3 = P1 + P2, P4 = 2·P1, P6 = 2·P1 + P2, P7 = P1 + 2·P2.
    const W1: [u64; 5] =
        [12539254003028696409, 15524144070600887654, 15092036948424041984, 11398871370327264211, 10958391180505708567];
    const W2: [u64; 5] =
        [11001943240060308920, 17075173755187928434, 3940989555384655766, 15017795574860011099, 5548543797011402287];
    const W3: [u64; 5] =
        [246872606398642312, 4900963247917836450, 7327006728177203977, 13945036888436667069, 3062018119121328861];
    const W4: [u64; 5] =
        [8058035104653144162, 16041715455419993830, 7448530016070824199, 11253639182222911208, 6228757819849640866];
    const W6: [u64; 5] =
        [12173306542237620, 6587231965341539782, 17027985748515888117, 17194831817613584995, 10056734072351459010];
    const W7: [u64; 5] =
        [9420857400785992333, 4695934009314206363, 14471922162341187302, 13395190104221781928, 16359223219913018041];
    const E: &str =
        "841809598287430541331763924924406256080383779033370172527955679319982746101779529382447999363236";
    const NOT_POINTS: [[u64; 5]; 3] = [
        [13557832913345268708, 15669280705791538619, 8534654657267986396, 12533218303838131749, 5058070698878426028],
        [135036726621282077, 17283229938160287622, 13113167081889323961, 1653240450380825271, 520025869628727862],
        [6727960962624180771, 17240764188796091916, 3954717247028503753, 1002781561619501488, 4295357288570643789],
    ];

    fn decode(w: [u64; 5]) -> Point {
        Point::decode(fp5(w)).expect("known point decodes")
    }

    #[test]
    fn known_answers_for_the_group_law() {
        let (p1, p2) = (decode(W1), decode(W2));
        for w in [W1, W2, W3, W4, W6, W7] {
            assert_eq!(decode(w).encode(), fp5(w), "decode/encode round trip");
        }
        assert_eq!((p1 + p2).encode(), fp5(W3));
        assert_eq!(p1.double().encode(), fp5(W4));
        assert_eq!((p1.double() + p2).encode(), fp5(W6));
        assert_eq!((p1 + p2.double()).encode(), fp5(W7));
        assert_eq!((p1 - (-p2)).encode(), fp5(W3));
        assert!((p1 - p1).is_neutral());
        assert_eq!(p1 + Point::NEUTRAL, p1);
        let e = Scalar::from_biguint_reduced(E.parse().unwrap());
        assert_eq!((p1 * &e).encode(), fp5(W2));
    }

    #[test]
    fn non_points_are_rejected() {
        for w in NOT_POINTS {
            assert!(Point::decode(fp5(w)).is_none());
        }
    }

    #[test]
    fn decoding_witness_certifies_the_non_square_root() {
        let w = fp5(W1);
        let (p, y) = Point::decode_with_witness(w).unwrap();
        let [x, ..] = p.fractional();
        assert_eq!(y.square() * x, B);
        assert_eq!(x.square() - (w.square() - A) * x + B, Fp5::ZERO);
        assert!(Point::decode_with_witness(Fp5::ZERO).is_none());
    }

    #[test]
    fn generator_is_w4_and_has_order_n() {
        assert_eq!(decode([4, 0, 0, 0, 0]), Point::GENERATOR);
        assert_eq!(Point::GENERATOR.encode(), fp5([4, 0, 0, 0, 0]));
        let n_minus_1 = Scalar::from_biguint_reduced(Scalar::order() - 1u32);
        assert_eq!(Point::GENERATOR * &n_minus_1, -Point::GENERATOR);
        assert!((Point::GENERATOR * &n_minus_1 + Point::GENERATOR).is_neutral());
    }
}
