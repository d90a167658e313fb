//! Queues that cross circuit boundaries, as Poseidon hash chains `h' = H(h || item)`.
//!
//! A producer pushes and a consumer pops the same items; both expose the chain's state in and
//! out, and the scheduler checks that the producer's final state equals the consumer's. Pushes and
//! pops are conditional so a padded slot leaves the chain as it was: it can neither skip nor
//! invent an item.

use plonky2::hash::hash_types::HashOutTarget;
use plonky2::hash::poseidon::PoseidonHash;
use plonky2::iop::target::{BoolTarget, Target};
use plonky2::plonk::circuit_builder::CircuitBuilder;

use crate::config::{D, F};

/// `H(state || item)` where `active`, else `state`.
pub fn push_if(builder: &mut CircuitBuilder<F, D>, state: HashOutTarget, item: &[Target], active: BoolTarget) -> HashOutTarget {
    let mut input = state.elements.to_vec();
    input.extend_from_slice(item);
    let pushed = builder.hash_n_to_hash_no_pad::<PoseidonHash>(input);
    HashOutTarget { elements: std::array::from_fn(|i| builder.select(active, pushed.elements[i], state.elements[i])) }
}

#[cfg(test)]
mod tests {
    use plonky2::field::types::Field;
    use plonky2::iop::witness::{PartialWitness, WitnessWrite};
    use via_l2::hash::{ZERO_DIGEST, chain};

    use super::*;
    use crate::gadgets::testing::{builder, prove};

    #[test]
    fn conditional_pushes_match_the_native_chain() {
        let items = [[F::ONE, F::TWO], [F::from_canonical_u64(9), F::ZERO], [F::TWO, F::TWO]];
        let active = [true, false, true];
        let mut expected = ZERO_DIGEST;
        for (item, on) in items.iter().zip(active) {
            if on {
                expected = chain(expected, item);
            }
        }
        let mut b = builder();
        let mut state = b.constant_hash(ZERO_DIGEST);
        for (item, on) in items.iter().zip(active) {
            let item: Vec<Target> = item.iter().map(|x| b.constant(*x)).collect();
            let flag = b.constant_bool(on);
            state = push_if(&mut b, state, &item, flag);
        }
        let out = b.constant_hash(expected);
        b.connect_hashes(state, out);
        prove(b, PartialWitness::new()).unwrap();

        // Skipping the inactive item changes nothing; skipping an active one is caught.
        let mut b = builder();
        let mut state = b.constant_hash(ZERO_DIGEST);
        let flag = b.add_virtual_bool_target_safe();
        let item: Vec<Target> = items[0].iter().map(|x| b.constant(*x)).collect();
        state = push_if(&mut b, state, &item, flag);
        let out = b.constant_hash(chain(ZERO_DIGEST, &items[0]));
        b.connect_hashes(state, out);
        let mut pw = PartialWitness::new();
        pw.set_bool_target(flag, false).unwrap();
        assert!(prove(b, pw).is_err());
    }
}
