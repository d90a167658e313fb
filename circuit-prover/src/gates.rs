//! plonky2 gates' constraints on SIMD lanes, for the quotient the CPU evaluates. plonky2
//! evaluates a gate a point at a time with generic field code (its packed evaluation packs
//! nothing unless AVX2 is compiled in), allocating as it goes; in plonky2's batch layout (wire or
//! constant `i` of point `j` at `i·points + j`) a batch's points lie side by side, so eight of
//! them (four with AVX2) load as one vector. The gates here are the heaviest of a recursive
//! verifier's: the Poseidon gate ([`crate::poseidon::gate_constraints`]) and the random-access
//! gate on lanes, and the Poseidon MDS gate on the permutation's own MDS layer; the others stay
//! plonky2's.

use plonky2::field::types::Field;
use plonky2::gates::gate::{Gate, GateRef};
use plonky2::gates::poseidon::PoseidonGate;
use plonky2::gates::poseidon_mds::PoseidonMdsGate;
use plonky2::hash::poseidon::{Poseidon, SPONGE_WIDTH};
use plonky2::gates::random_access::RandomAccessGate;
use plonky2::plonk::vars::EvaluationVarsBaseBatch;

use crate::F;
use crate::cpu::Simd;
use crate::prover::D;

/// `gate`'s unfiltered constraints at every point of `vars` (its own constants first, the
/// selectors' removed), in plonky2's batch layout, if `gate` is of a kind evaluated here (the
/// MDS gate at any width, the others only where `simd` has lanes); `None` leaves it to plonky2.
pub(crate) fn unfiltered_constraints(gate: &GateRef<F, D>, vars: EvaluationVarsBaseBatch<'_, F>, simd: Simd) -> Option<Vec<F>> {
    let any = gate.0.as_any();
    if any.is::<PoseidonGate<F, D>>() {
        return crate::poseidon::gate_constraints(vars.local_wires, vars.len(), simd);
    }
    if any.is::<PoseidonMdsGate<F, D>>() {
        return Some(poseidon_mds(vars));
    }
    let gate = any.downcast_ref::<RandomAccessGate<F, D>>()?;
    let shape = RandomAccess { bits: gate.bits, copies: gate.num_copies, extra_constants: gate.num_extra_constants };
    let points = vars.len();
    let mut out = vec![F::ZERO; Gate::<F, D>::num_constraints(gate) * points];
    match simd {
        #[cfg(target_arch = "x86_64")]
        Simd::Avx512 if simd.is_available() => {
            for first in (0..points).step_by(crate::goldilocks::avx512::LANES) {
                // SAFETY: AVX-512F is available (checked above).
                unsafe { avx512::random_access(shape, vars, first, &mut out) };
            }
        }
        #[cfg(target_arch = "x86_64")]
        Simd::Avx2 if simd.is_available() => {
            for first in (0..points).step_by(crate::goldilocks::avx2::LANES) {
                // SAFETY: AVX2 is available (checked above).
                unsafe { avx2::random_access(shape, vars, first, &mut out) };
            }
        }
        _ => return None,
    }
    Some(out)
}

/// Adds each of `unfiltered`'s constraints times its point's filter into `sums` (both in
/// plonky2's batch layout, `filters` one per point; `unfiltered` may have fewer constraints), a
/// lane-full of points at a time where `simd` has lanes.
pub(crate) fn add_filtered(sums: &mut [F], unfiltered: &[F], filters: &[F], simd: Simd) {
    let points = filters.len();
    for (sums, values) in sums.chunks_exact_mut(points).zip(unfiltered.chunks_exact(points)) {
        let done = match simd {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: AVX-512F is available (checked).
            Simd::Avx512 if simd.is_available() => unsafe { avx512::add_products(sums, values, filters) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: AVX2 is available (checked).
            Simd::Avx2 if simd.is_available() => unsafe { avx2::add_products(sums, values, filters) },
            _ => 0,
        };
        for ((sum, &value), &filter) in sums[done..].iter_mut().zip(&values[done..]).zip(&filters[done..]) {
            *sum += value * filter;
        }
    }
}

/// plonky2's `PoseidonMdsGate` constraints: its twelve outputs minus the MDS layer of its
/// twelve inputs, each an extension element, whose two components the matrix (of base-field
/// entries) maps apart. plonky2 multiplies by the matrix generically (144 reduced products per
/// component); this is the permutation's own MDS layer (`Poseidon::mds_layer`, in the frequency
/// domain), a point at a time.
fn poseidon_mds(vars: EvaluationVarsBaseBatch<'_, F>) -> Vec<F> {
    let points = vars.len();
    let wire = |w: usize, j: usize| vars.local_wires[w * points + j];
    let mut out = vec![F::ZERO; SPONGE_WIDTH * D * points];
    for j in 0..points {
        for c in 0..D {
            let inputs: [F; SPONGE_WIDTH] = std::array::from_fn(|i| wire(D * i + c, j));
            for (i, computed) in <F as Poseidon>::mds_layer(&inputs).into_iter().enumerate() {
                out[(D * i + c) * points + j] = wire(D * (SPONGE_WIDTH + i) + c, j) - computed;
            }
        }
    }
    out
}

/// A random-access gate's shape: `copies` lookups of a `bits`-bit index into a list of
/// `2^bits`, and `extra_constants` wires equal to the row's constants. Its wires, as plonky2
/// lays them out: per copy the index, the claimed element and the list (routed), then the
/// extra constants (routed), then per copy the index's bits.
#[derive(Clone, Copy, Debug)]
struct RandomAccess {
    bits: usize,
    copies: usize,
    extra_constants: usize,
}

/// Batch access and the random-access gate on the lanes of one instruction set's registers (its
/// lane primitives and field operations in scope), every function compiled with target feature
/// `$feature`.
#[cfg(target_arch = "x86_64")]
macro_rules! gate_lanes {
    ($feature:literal) => {
        /// Up to `LANES` points of a batch (`first` onwards) in lanes: their wires and constants
        /// read, their constraints written in order, in plonky2's batch layout.
        pub(crate) struct Points<'a> {
            wires: &'a [F],
            constants: &'a [F],
            out: &'a mut [F],
            points: usize,
            first: usize,
            count: usize,
            constraint: usize,
        }

        /// Up to `LANES` values into lanes (the rest zero).
        #[inline]
        #[target_feature(enable = $feature)]
        fn load_values(values: &[F]) -> V {
            let mut lanes = [0; LANES];
            for (lane, x) in lanes.iter_mut().zip(values) {
                *lane = x.to_noncanonical_u64();
            }
            load(&lanes)
        }

        /// Lanes into up to `LANES` values, canonical.
        #[inline]
        #[target_feature(enable = $feature)]
        fn store_values(x: V, out: &mut [F]) {
            for (o, value) in out.iter_mut().zip(store(canonical(x))) {
                *o = F::from_canonical_u64(value);
            }
        }

        impl<'a> Points<'a> {
            pub(crate) fn new(wires: &'a [F], constants: &'a [F], out: &'a mut [F], points: usize, first: usize) -> Self {
                Self { wires, constants, out, points, first, count: LANES.min(points - first), constraint: 0 }
            }

            #[inline]
            #[target_feature(enable = $feature)]
            fn column(&self, values: &[F], i: usize) -> V {
                load_values(&values[i * self.points + self.first..][..self.count])
            }

            #[inline]
            #[target_feature(enable = $feature)]
            pub(crate) fn wire(&self, wire: usize) -> V {
                self.column(self.wires, wire)
            }

            #[inline]
            #[target_feature(enable = $feature)]
            pub(crate) fn constant(&self, constant: usize) -> V {
                self.column(self.constants, constant)
            }

            /// Writes the next constraint.
            #[inline]
            #[target_feature(enable = $feature)]
            pub(crate) fn constrain(&mut self, value: V) {
                store_values(value, &mut self.out[self.constraint * self.points + self.first..][..self.count]);
                self.constraint += 1;
            }

            /// How many constraints have been written.
            pub(crate) fn constraints(&self) -> usize {
                self.constraint
            }
        }

        /// `sums[j] += values[j]·filters[j]` for every whole lane-full of points; returns how
        /// many points that was.
        #[target_feature(enable = $feature)]
        pub(super) fn add_products(sums: &mut [F], values: &[F], filters: &[F]) -> usize {
            let groups = sums.len() / LANES;
            for ((sum, value), filter) in sums.chunks_exact_mut(LANES).zip(values.chunks_exact(LANES)).zip(filters.chunks_exact(LANES)) {
                let total = add(load_values(sum), mul(load_values(value), load_values(filter)));
                store_values(total, sum);
            }
            groups * LANES
        }

        /// plonky2's `RandomAccessGate` constraints at up to `LANES` points, `first` onwards, in
        /// its order: per copy each bit binary, the bits summing to the index, the list folded
        /// by the bits (lowest first) equal to the claimed element; then the extra constants.
        #[target_feature(enable = $feature)]
        pub(super) fn random_access(shape: super::RandomAccess, vars: EvaluationVarsBaseBatch<'_, F>, first: usize, out: &mut [F]) {
            let mut p = Points::new(vars.local_wires, vars.local_constants, out, vars.len(), first);
            let size = 1 << shape.bits;
            let routed = (2 + size) * shape.copies + shape.extra_constants;
            let one = splat(1);
            let mut items = vec![zero(); size];
            for copy in 0..shape.copies {
                let base = (2 + size) * copy;
                let bit = |i: usize| routed + copy * shape.bits + i;
                for i in 0..shape.bits {
                    let b = p.wire(bit(i));
                    p.constrain(mul(b, sub(b, one)));
                }
                let mut index = zero();
                for i in (0..shape.bits).rev() {
                    index = add(add(index, index), p.wire(bit(i)));
                }
                p.constrain(sub(index, p.wire(base)));
                for (i, item) in items.iter_mut().enumerate() {
                    *item = p.wire(base + 2 + i);
                }
                let mut len = size;
                for i in 0..shape.bits {
                    let b = p.wire(bit(i));
                    len /= 2;
                    for k in 0..len {
                        let (x, y) = (items[2 * k], items[2 * k + 1]);
                        items[k] = add(x, mul(b, sub(y, x)));
                    }
                }
                p.constrain(sub(items[0], p.wire(base + 1)));
            }
            for i in 0..shape.extra_constants {
                let constant = p.constant(i);
                p.constrain(sub(constant, p.wire((2 + size) * shape.copies + i)));
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512 {
    //! Eight points per pass.
    use plonky2::field::types::{Field, PrimeField64};
    use plonky2::plonk::vars::EvaluationVarsBaseBatch;

    use crate::F;
    use crate::goldilocks::avx512::*;

    gate_lanes!("avx512f");
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2 {
    //! Four points per pass.
    use plonky2::field::types::{Field, PrimeField64};
    use plonky2::plonk::vars::EvaluationVarsBaseBatch;

    use crate::F;
    use crate::goldilocks::avx2::*;

    gate_lanes!("avx2");
}

#[cfg(test)]
mod tests {
    use plonky2::field::types::Sample;
    use plonky2::hash::hash_types::HashOut;
    use plonky2::plonk::circuit_data::CircuitConfig;

    use super::*;

    #[test]
    fn filtered_sums_on_lanes_are_the_scalar_ones() {
        for points in [1, 7, 8, 9, 32, 37] {
            let (sums, values, filters) = (F::rand_vec(5 * points), F::rand_vec(3 * points), F::rand_vec(points));
            let mut expected = sums.clone();
            for (k, sum) in expected.iter_mut().enumerate().take(values.len()) {
                *sum += values[k] * filters[k % points];
            }
            for simd in Simd::ALL {
                let mut ours = sums.clone();
                add_filtered(&mut ours, &values, &filters, simd);
                assert_eq!(ours, expected, "{simd:?}, {points} points");
            }
        }
    }

    #[test]
    fn the_mds_gate_is_plonky2s() {
        let gate = PoseidonMdsGate::<F, D>::new();
        let gate_ref = GateRef::new(PoseidonMdsGate::<F, D>::new());
        let hash = HashOut::ZERO;
        for points in [1, 9, 32] {
            let mut wires = F::rand_vec(135 * points);
            let random = EvaluationVarsBaseBatch::new(points, &[], &wires, &hash);
            let constraints = gate.eval_unfiltered_base_batch(random);
            assert_eq!(unfiltered_constraints(&gate_ref, random, Simd::Scalar), Some(constraints.clone()), "random wires, {points} points");
            // Outputs that are the inputs' MDS layer satisfy it.
            for (k, c) in constraints.iter().enumerate() {
                // Constraint 2i + c is output i's component c, wire 2·12 + 2i + c.
                wires[(SPONGE_WIDTH * D + k / points) * points + k % points] -= *c;
            }
            let vars = EvaluationVarsBaseBatch::new(points, &[], &wires, &hash);
            assert!(gate.eval_unfiltered_base_batch(vars).iter().all(|c| *c == F::ZERO));
            assert!(unfiltered_constraints(&gate_ref, vars, Simd::Scalar).expect("evaluated").iter().all(|c| *c == F::ZERO));
        }
    }

    #[test]
    fn random_access_on_lanes_is_plonky2s() {
        let standard = CircuitConfig::standard_recursion_config();
        let narrow = CircuitConfig { num_routed_wires: 32, ..standard.clone() };
        for (config, bits) in [(&standard, 4), (&standard, 1), (&standard, 6), (&narrow, 3)] {
            let gate = RandomAccessGate::<F, D>::new_from_config(config, bits);
            let gate_ref = GateRef::new(gate);
            for points in [1, 7, 8, 9, 37] {
                // Random values (every constraint nonzero), and an honest lookup at each point.
                for honest in [false, true] {
                    let mut wires = F::rand_vec(config.num_wires * points);
                    let constants = F::rand_vec(config.num_constants * points);
                    if honest {
                        let size = 1 << bits;
                        let routed = gate.num_routed_wires();
                        for j in 0..points {
                            for copy in 0..gate.num_copies {
                                let index = (j + copy) % size;
                                let base = (2 + size) * copy;
                                wires[base * points + j] = F::from_canonical_usize(index);
                                wires[(base + 1) * points + j] = wires[(base + 2 + index) * points + j];
                                for i in 0..bits {
                                    wires[(routed + copy * bits + i) * points + j] = F::from_bool(index >> i & 1 == 1);
                                }
                            }
                            for i in 0..gate.num_extra_constants {
                                wires[((2 + size) * gate.num_copies + i) * points + j] = constants[i * points + j];
                            }
                        }
                    }
                    let hash = HashOut::ZERO;
                    let vars = EvaluationVarsBaseBatch::new(points, &constants, &wires, &hash);
                    let expected = gate.eval_unfiltered_base_batch(vars);
                    assert_eq!(expected.iter().all(|c| *c == F::ZERO), honest, "the honest lookups, and only they, satisfy the gate");
                    for simd in Simd::ALL {
                        match unfiltered_constraints(&gate_ref, vars, simd) {
                            Some(ours) => assert_eq!(ours, expected, "{simd:?}: {bits} bits, {} copies, {points} points", gate.num_copies),
                            None => assert!(simd == Simd::Scalar || !simd.is_available(), "{simd:?} evaluates on lanes"),
                        }
                    }
                }
            }
        }
    }
}
