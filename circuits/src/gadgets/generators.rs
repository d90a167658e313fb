//! Witness generators of our own (values the prover computes outside the constraints and the
//! constraints then check), and the generator serializer that knows them beside plonky2's.

use plonky2::field::extension::FieldExtension;
use plonky2::field::types::Field;
use plonky2::iop::generator::{GeneratedValues, SimpleGenerator};
use plonky2::iop::target::Target;
use plonky2::iop::witness::{PartitionWitness, Witness, WitnessWrite};
use plonky2::plonk::circuit_data::CommonCircuitData;
use plonky2::util::serialization::{Buffer, IoResult, Read, Write};
use via_l2::curve::{Fp5, Point};

use crate::config::{D, F};
use crate::gadgets::fp5::Fp5Target;

fn read_fp5(witness: &PartitionWitness<F>, t: &Fp5Target) -> Fp5 {
    <Fp5 as FieldExtension<5>>::from_basefield_array(t.0.map(|x| witness.get_target(x)))
}

fn write_fp5(out: &mut GeneratedValues<F>, t: &Fp5Target, value: Fp5) -> anyhow::Result<()> {
    for (target, v) in t.0.iter().zip(value.0) {
        out.set_target(*target, v)?;
    }
    Ok(())
}

fn serialize_fp5s(dst: &mut Vec<u8>, values: &[&Fp5Target]) -> IoResult<()> {
    for v in values {
        dst.write_target_array(&v.0)?;
    }
    Ok(())
}

fn deserialize_fp5(src: &mut Buffer) -> IoResult<Fp5Target> {
    Ok(Fp5Target(src.read_target_array::<5>()?))
}

/// `inverse = 1 / x` in GF(p^5), or 0 when `x = 0` (the constraints that use it decide whether
/// zero is acceptable).
#[derive(Debug, Clone, Copy)]
pub struct Fp5InverseGenerator {
    pub x: Fp5Target,
    pub inverse: Fp5Target,
}

impl Default for Fp5InverseGenerator {
    fn default() -> Self {
        let t = Fp5Target([Target::VirtualTarget { index: 0 }; 5]);
        Self { x: t, inverse: t }
    }
}

impl SimpleGenerator<F, D> for Fp5InverseGenerator {
    fn id(&self) -> String {
        "ViaFp5InverseGenerator".into()
    }

    fn dependencies(&self) -> Vec<Target> {
        self.x.0.to_vec()
    }

    fn run_once(&self, witness: &PartitionWitness<F>, out: &mut GeneratedValues<F>) -> anyhow::Result<()> {
        let x = read_fp5(witness, &self.x);
        write_fp5(out, &self.inverse, x.try_inverse().unwrap_or(Fp5::ZERO))
    }

    fn serialize(&self, dst: &mut Vec<u8>, _: &CommonCircuitData<F, D>) -> IoResult<()> {
        serialize_fp5s(dst, &[&self.x, &self.inverse])
    }

    fn deserialize(src: &mut Buffer, _: &CommonCircuitData<F, D>) -> IoResult<Self> {
        Ok(Self { x: deserialize_fp5(src)?, inverse: deserialize_fp5(src)? })
    }
}

/// Decodes an EcGFp5 encoding `w` into the witnesses the decoding constraints check: `x` (the
/// non-square root) and `y` with `y^2 · x = b`. An invalid `w` gets zeros, which the constraints
/// refuse where decoding is required.
#[derive(Debug, Clone, Copy)]
pub struct PointDecodeGenerator {
    pub w: Fp5Target,
    pub x: Fp5Target,
    pub y: Fp5Target,
}

impl Default for PointDecodeGenerator {
    fn default() -> Self {
        let t = Fp5Target([Target::VirtualTarget { index: 0 }; 5]);
        Self { w: t, x: t, y: t }
    }
}

impl SimpleGenerator<F, D> for PointDecodeGenerator {
    fn id(&self) -> String {
        "ViaPointDecodeGenerator".into()
    }

    fn dependencies(&self) -> Vec<Target> {
        self.w.0.to_vec()
    }

    fn run_once(&self, witness: &PartitionWitness<F>, out: &mut GeneratedValues<F>) -> anyhow::Result<()> {
        let w = read_fp5(witness, &self.w);
        let (x, y) = Point::decode_with_witness(w).map_or((Fp5::ZERO, Fp5::ZERO), |(p, y)| (p.fractional()[0], y));
        write_fp5(out, &self.x, x)?;
        write_fp5(out, &self.y, y)
    }

    fn serialize(&self, dst: &mut Vec<u8>, _: &CommonCircuitData<F, D>) -> IoResult<()> {
        serialize_fp5s(dst, &[&self.w, &self.x, &self.y])
    }

    fn deserialize(src: &mut Buffer, _: &CommonCircuitData<F, D>) -> IoResult<Self> {
        Ok(Self { w: deserialize_fp5(src)?, x: deserialize_fp5(src)?, y: deserialize_fp5(src)? })
    }
}

/// Serializes every generator our circuits use: plonky2's own and ours.
#[derive(Debug, Default)]
pub struct GeneratorSerializer;

mod serializer {
    use plonky2::gadgets::arithmetic::EqualityGenerator;
    use plonky2::gadgets::arithmetic_extension::QuotientGeneratorExtension;
    use plonky2::gadgets::range_check::LowHighGenerator;
    use plonky2::gadgets::split_base::BaseSumGenerator;
    use plonky2::gadgets::split_join::{SplitGenerator, WireSplitGenerator};
    use plonky2::gates::arithmetic_base::ArithmeticBaseGenerator;
    use plonky2::gates::arithmetic_extension::ArithmeticExtensionGenerator;
    use plonky2::gates::base_sum::BaseSplitGenerator;
    use plonky2::gates::coset_interpolation::InterpolationGenerator;
    use plonky2::gates::exponentiation::ExponentiationGenerator;
    use plonky2::gates::lookup::LookupGenerator;
    use plonky2::gates::lookup_table::LookupTableGenerator;
    use plonky2::gates::multiplication_extension::MulExtensionGenerator;
    use plonky2::gates::poseidon::PoseidonGenerator;
    use plonky2::gates::poseidon_mds::PoseidonMdsGenerator;
    use plonky2::gates::random_access::RandomAccessGenerator;
    use plonky2::gates::reducing::ReducingGenerator;
    use plonky2::gates::reducing_extension::ReducingGenerator as ReducingExtensionGenerator;
    use plonky2::iop::generator::{ConstantGenerator, CopyGenerator, NonzeroTestGenerator, RandomValueGenerator};
    use plonky2::recursion::dummy_circuit::DummyProofGenerator;
    use plonky2::util::serialization::WitnessGeneratorSerializer;
    use plonky2::{get_generator_tag_impl, impl_generator_serializer, read_generator_impl};

    use super::*;
    use crate::config::C;

    impl WitnessGeneratorSerializer<F, D> for GeneratorSerializer {
        impl_generator_serializer! {
            GeneratorSerializer,
            ArithmeticBaseGenerator<F, D>,
            ArithmeticExtensionGenerator<F, D>,
            BaseSplitGenerator<2>,
            BaseSumGenerator<2>,
            ConstantGenerator<F>,
            CopyGenerator,
            DummyProofGenerator<F, C, D>,
            EqualityGenerator,
            ExponentiationGenerator<F, D>,
            InterpolationGenerator<F, D>,
            LookupGenerator,
            LookupTableGenerator,
            LowHighGenerator,
            MulExtensionGenerator<F, D>,
            NonzeroTestGenerator,
            PoseidonGenerator<F, D>,
            PoseidonMdsGenerator<D>,
            QuotientGeneratorExtension<D>,
            RandomAccessGenerator<F, D>,
            RandomValueGenerator,
            ReducingGenerator<D>,
            ReducingExtensionGenerator<D>,
            SplitGenerator,
            WireSplitGenerator,
            Fp5InverseGenerator,
            PointDecodeGenerator
        }
    }
}
