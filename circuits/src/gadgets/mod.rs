//! Circuit gadgets shared by the basic circuits.

pub mod curve;
pub mod fp5;
pub mod generators;
pub mod merkle;
pub mod queue;
pub mod range;
pub mod sha256;

#[cfg(test)]
pub(crate) mod testing {
    use plonky2::iop::witness::PartialWitness;
    use plonky2::plonk::circuit_builder::CircuitBuilder;

    use crate::config::{C, D, F, circuit_config};

    /// A fresh builder with the production configuration.
    pub fn builder() -> CircuitBuilder<F, D> {
        CircuitBuilder::new(circuit_config())
    }

    /// Builds, proves and verifies; an `Err` when the witness breaks a constraint (or a generator
    /// finds it inconsistent).
    pub fn prove(builder: CircuitBuilder<F, D>, witness: PartialWitness<F>) -> anyhow::Result<()> {
        let data = builder.build::<C>();
        let proof = data.prove(witness)?;
        data.verify(proof)
    }
}
