//! The CUDA backend: coset LDEs, Merkle trees (Poseidon, and Keccak for a final layer's
//! commitments), the permutation argument's Z and partial products and, for circuits of the
//! gates it knows, the quotient on an NVIDIA GPU, with kernels (`cuda/kernels.cu`) compiled at run time by NVRTC
//! for the device found.
//!
//! A commitment's LDE and tree stay on the device ([`ProverBackend::commit_lde`]): only its cap
//! comes back, the quotient kernel reads the wires and partial products where they lie (a
//! circuit's constants and sigmas are uploaded once and kept), and FRI's queries fetch just the
//! rows they open and their paths, a few dozen of the LDE's hundreds of thousands of rows (see
//! [`crate::quotient`]). Both are freed when the commitment is dropped.
//!
//! CUDA is loaded dynamically, so the project builds, tests and runs with none installed:
//! [`CudaBackend::new`] looks for the driver library, NVRTC and a device, and says which is
//! missing. Device and pinned host buffers are kept between calls and grown as needed, and the
//! memory of each proof's own LDEs and trees, once freed, stays in the device's pool for the next.
//!
//! A call runs its phases one after another (stage into pinned memory, upload, kernels,
//! download); where whole rows do come down (an LDE asked for as rows, plonky2's `MerkleTree`,
//! a quotient left to the CPU) they come down on a second stream while the tree is hashed, in
//! parts, the host building one part's rows while the next is copied.
//! [`CudaBackend::timings`] adds up the time waited on each phase, for the benchmark's split
//! between host copies, transfers and kernels. Should the GPU fail mid-proof (out of memory,
//! say), a commitment is made on the CPU backend instead, and a failed fetch of committed rows
//! fails the proof with the reason.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::collections::hash_map::Entry;
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cudarc::driver::{CudaContext, CudaEvent, CudaFunction, CudaSlice, CudaStream, DeviceRepr, DriverError, LaunchConfig, PinnedHostSlice, PushKernelArg};
use cudarc::nvrtc::{CompileOptions, compile_ptx_with_opts};
use plonky2::field::polynomial::{PolynomialCoeffs, PolynomialValues};
use plonky2::field::types::{Field, Field64, PrimeField64};
use plonky2::hash::hash_types::{BytesHash, HashOut};
use plonky2::hash::merkle_proofs::MerkleProof;
use plonky2::hash::merkle_tree::{MerkleCap, MerkleTree};
use plonky2::hash::poseidon::{ALL_ROUND_CONSTANTS, N_ROUNDS, Poseidon, SPONGE_WIDTH};
use plonky2::hash::poseidon::PoseidonHash;
use rayon::prelude::*;

use crate::cpu::{CpuBackend, Simd, tree_from_levels, tree_height};
use crate::poseidon::State;
use crate::partial_products::{BrokenCopyConstraint, PermutationInputs};
use crate::quotient::{CapName, GateRecord, QuotientInputs, QuotientShape};
use crate::{Committed, CommittedValues, F, FetchError, Keccak, MerkleHasher, Opening, ProverBackend};

// SAFETY: plain `repr(C)` structs of `u32`s, laid out as the kernels' structs of the same name.
unsafe impl DeviceRepr for QuotientShape {}
unsafe impl DeviceRepr for GateRecord {}

/// Commitments whose LDEs stay on the device after they are made, for the quotient to read: a
/// proof's wires, partial products and quotient, and those of a proof beside it (a worker runs
/// two jobs at once). An LDE evicted before its quotient only sends that quotient to the CPU.
const RETAINED_LDES: usize = 6;
/// Circuits whose constants and sigmas stay on the device once uploaded: every circuit of a
/// protocol version (four basic, four leaves, node, tip, scheduler, compression) and more.
const RETAINED_CONSTANTS: usize = 16;

/// Proof-of-work candidates searched per launch: at 16 bits, the chance that none works is e^-4.
const POW_BLOCK: u64 = 1 << 18;

/// Rows per segment of the permutation's running product: each segment's product is taken by one
/// thread, the segments' products scanned by one thread per repetition, then each segment's
/// rows written from where its product starts.
const PERMUTATION_SEGMENT: usize = 32;

/// The most chunks of routed wires a row may have (the kernels' `MAX_PERMUTATION_CHUNKS`): a
/// circuit with more has its partial products made on the CPU.
const MAX_PERMUTATION_CHUNKS: usize = 32;

/// The permutation kernels' sizes, laid out as the kernels' struct of that name.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct PermutationShape {
    log_n: u32,
    routed: u32,
    chunk: u32,
    /// Chunks per row: `routed / chunk`, rounded up.
    width: u32,
    challenges: u32,
    segment: u32,
}

// SAFETY: a plain `repr(C)` struct of `u32`s, laid out as the kernels' struct of that name.
unsafe impl DeviceRepr for PermutationShape {}

impl PermutationShape {
    fn new(log_n: usize, routed: usize, chunk: usize, challenges: usize) -> Self {
        let u = |v: usize| u32::try_from(v).expect("a permutation's sizes fit in u32");
        Self { log_n: u(log_n), routed: u(routed), chunk: u(chunk), width: u(routed.div_ceil(chunk)), challenges: u(challenges), segment: u(PERMUTATION_SEGMENT.min(1 << log_n)) }
    }
}

/// Threads per block for every kernel: each thread works alone, so any multiple of a warp does.
const THREADS: u32 = 256;

/// Why there is no CUDA backend here, or why a GPU call failed.
#[derive(Debug, thiserror::Error)]
pub enum CudaError {
    #[error("no CUDA driver library (libcuda.so) on this machine")]
    NoDriver,
    #[error("no NVRTC library (libnvrtc.so.13) to compile the kernels with: install CUDA 13 or put its lib64 folder on LD_LIBRARY_PATH")]
    NoNvrtc,
    #[error("the CUDA driver sees no device")]
    NoDevice,
    #[error("CUDA driver: {0}")]
    Driver(#[from] DriverError),
    #[error("compiling the CUDA kernels: {0}")]
    Compile(String),
}

/// Time a backend spent in each phase of its calls, summed since it was made.
#[derive(Clone, Copy, Debug, Default)]
pub struct CudaTimings {
    /// Host copies: inputs into pinned memory, results into plonky2's row and digest vectors.
    pub host: Duration,
    /// Copies between host and device: the time waited for them (a commitment's rows come down
    /// while its tree is hashed and while the host builds the previous part's rows).
    pub transfers: Duration,
    /// Kernels: the time waited for them (hashing that the rows' download hides is not counted).
    pub kernels: Duration,
    /// Quotients evaluated on the device (of circuits whose gates the kernels know).
    pub quotients: usize,
    /// Permutation arguments (Z and partial products) computed on the device.
    pub partial_products: usize,
    /// Calls the device failed, each then done on the CPU (and logged as an error).
    pub failures: usize,
}

impl CudaTimings {
    pub fn total(&self) -> Duration {
        self.host + self.transfers + self.kernels
    }

    /// The time spent between `earlier` and `self`, readings of one backend.
    pub fn since(&self, earlier: &Self) -> Self {
        Self { host: self.host - earlier.host, transfers: self.transfers - earlier.transfers, kernels: self.kernels - earlier.kernels, quotients: self.quotients - earlier.quotients, partial_products: self.partial_products - earlier.partial_products, failures: self.failures - earlier.failures }
    }

    /// Both readings' times together.
    pub fn add(&self, other: &Self) -> Self {
        Self { host: self.host + other.host, transfers: self.transfers + other.transfers, kernels: self.kernels + other.kernels, quotients: self.quotients + other.quotients, partial_products: self.partial_products + other.partial_products, failures: self.failures + other.failures }
    }

    /// One line for a report: each phase's time and share, over `calls` calls.
    pub fn summary(&self, calls: usize) -> String {
        let calls = calls.max(1) as f64;
        let total = self.total().as_secs_f64().max(f64::MIN_POSITIVE);
        let phase = |name: &str, d: Duration| format!("{name} {:.1} ms ({:.0}%)", d.as_secs_f64() * 1e3 / calls, 100.0 * d.as_secs_f64() / total);
        let failures = if self.failures > 0 { format!("; {} calls failed on the GPU and were done on the CPU", self.failures) } else { String::new() };
        format!("{}, {}, {}{failures}", phase("host copies", self.host), phase("transfers", self.transfers), phase("kernels", self.kernels))
    }
}

/// The hash of a tree the kernels build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TreeHash {
    Poseidon,
    Keccak,
}

/// How fast a tree's kernels ran ([`CudaBackend::merkle_throughput`]): their time on the device
/// (between two events, no transfers) and the memory traffic they made, against the device's
/// peak bandwidth.
#[derive(Clone, Copy, Debug)]
pub struct MerkleThroughput {
    pub seconds: f64,
    /// Bytes read and written: every leaf element read once, every digest written once, and
    /// every digest below the cap read once more by the level above.
    pub bytes: u64,
    /// The device's peak memory bandwidth in bytes a second (from its memory clock and bus
    /// width), or `None` where the driver does not report them.
    pub peak: Option<f64>,
}

impl MerkleThroughput {
    /// Bytes a second.
    pub fn bandwidth(&self) -> f64 {
        self.bytes as f64 / self.seconds
    }

    /// The share of the device's peak bandwidth the kernels reached.
    pub fn share_of_peak(&self) -> Option<f64> {
        self.peak.map(|peak| self.bandwidth() / peak)
    }
}

/// Timed runs of the tree kernels in [`CudaBackend::merkle_throughput`] (the fastest is kept).
const THROUGHPUT_RUNS: usize = 5;

/// The peak bandwidth of a memory clocked at `clock_khz` (double data rate: two transfers a
/// clock) over a bus `bus_bits` wide, in bytes a second; `None` for a reading of zero.
fn peak_bandwidth(clock_khz: i32, bus_bits: i32) -> Option<f64> {
    (clock_khz > 0 && bus_bits > 0).then(|| 2.0 * f64::from(clock_khz) * 1e3 * f64::from(bus_bits) / 8.0)
}

/// Keeps device memory freed by this process in the device's default pool, for its next
/// allocation, instead of handing it back to the driver at every synchronization (the pool's
/// default). A proof's LDEs and trees are allocated as they are made (cudarc allocates from this
/// pool) and freed with their commitments, so each proof reuses the last one's memory rather than
/// having the driver map hundreds of megabytes again. The worker owns its GPU, so the memory its
/// largest proof needed stays reserved for the next.
fn keep_freed_memory(context: &CudaContext) -> Result<(), DriverError> {
    use cudarc::driver::result::{device, mem_pool};
    use cudarc::driver::sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD;
    let mut threshold = u64::MAX;
    // SAFETY: the context's own device; the release threshold attribute is a `cuuint64_t`.
    unsafe {
        let pool = device::get_default_mem_pool(context.cu_device())?;
        mem_pool::set_attribute(pool, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, (&raw mut threshold).cast())
    }
}

/// The CUDA backend on the machine's first device.
pub struct CudaBackend {
    device: String,
    /// Shared with the commitments whose rows lie on the device, which fetch them through it.
    gpu: Arc<Mutex<Gpu>>,
}

impl CudaBackend {
    /// The backend on device 0, its kernels compiled; an error names what is missing.
    pub fn new() -> Result<Self, CudaError> {
        // cudarc panics on first use of a library it cannot load, so look first.
        if !unsafe { cudarc::driver::sys::is_culib_present() } {
            return Err(CudaError::NoDriver);
        }
        if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
            return Err(CudaError::NoNvrtc);
        }
        if CudaContext::device_count()? < 1 {
            return Err(CudaError::NoDevice);
        }
        let context = CudaContext::new(0)?;
        if context.has_async_alloc() {
            keep_freed_memory(&context)?;
        }
        let (major, minor) = context.compute_capability()?;
        let ptx = compile(&format!("compute_{major}{minor}"))?;
        let module = context.load_module(ptx)?;
        let function = |name: &str| module.load_function(name);
        let kernels = Kernels {
            hash_leaves: function("hash_leaves")?,
            compress_pairs: function("compress_pairs")?,
            keccak_leaves: function("keccak_leaves")?,
            keccak_pairs: function("keccak_pairs")?,
            coset_spread: function("coset_spread")?,
            dif_stage: function("dif_stage")?,
            interpolated: function("interpolated")?,
            proof_of_work: function("proof_of_work")?,
            transpose: function("transpose")?,
            gather: function("gather")?,
            quotient: function("quotient")?,
            permutation_quotients: function("permutation_quotients")?,
            permutation_segments: function("permutation_segments")?,
            permutation_scan: function("permutation_scan")?,
            permutation_values: function("permutation_values")?,
        };
        let device = format!("{} (sm_{major}{minor})", context.name()?);
        // A second stream for downloads, so an LDE's rows come down while its tree is hashed.
        // (With two streams cudarc orders each buffer's uses across them by events.)
        let copies = context.new_stream()?;
        let gpu = Gpu { stream: context.default_stream(), copies, kernels, buffers: Buffers::default(), timings: CudaTimings::default() };
        Ok(Self { device, gpu: Arc::new(Mutex::new(gpu)) })
    }

    /// The device's name and compute capability.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// The tree kernels of `hash` over `2^log_leaves` random leaves of `width` elements, laid
    /// out as an LDE's columns, up to a cap of `2^cap_height`: the fastest of a few runs, after
    /// one that warms the device up. For the benchmark; these runs are not in [`Self::timings`].
    pub fn merkle_throughput(&self, hash: TreeHash, log_leaves: usize, width: usize, cap_height: usize) -> Result<MerkleThroughput, CudaError> {
        assert!(cap_height <= log_leaves, "a cap no wider than the leaves");
        let count = 1usize << log_leaves;
        let columns = crate::random_elements(count * width);
        let mut gpu = self.lock();
        let Gpu { stream, kernels: k, .. } = &mut *gpu;
        let input = stream.clone_htod(as_u64s(&columns))?;
        let levels = Levels::new(count, log_leaves - cap_height);
        let mut digests = unsafe { stream.alloc::<u64>(levels.total) }?;
        let hash_tree = |digests: &mut CudaSlice<u64>| match hash {
            TreeHash::Poseidon => hash_lde::<PoseidonHash>(stream, k, &input, width, &levels, digests),
            TreeHash::Keccak => hash_lde::<Keccak>(stream, k, &input, width, &levels, digests),
        };
        hash_tree(&mut digests)?;
        let mut seconds = f64::MAX;
        for _ in 0..THROUGHPUT_RUNS {
            let timed = Some(cudarc::driver::sys::CUevent_flags::CU_EVENT_DEFAULT);
            let start = stream.record_event(timed)?;
            hash_tree(&mut digests)?;
            let end = stream.record_event(timed)?;
            seconds = seconds.min(f64::from(start.elapsed_ms(&end)?) / 1e3);
        }
        let digest_bytes = 8 * levels.total as u64;
        let bytes = 8 * (count * width) as u64 + digest_bytes + (digest_bytes - 8 * levels.cap().len() as u64);
        let context = stream.context();
        let attribute = |a| context.attribute(a).unwrap_or(0);
        use cudarc::driver::sys::CUdevice_attribute::{CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH, CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE};
        let peak = peak_bandwidth(attribute(CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE), attribute(CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH));
        Ok(MerkleThroughput { seconds, bytes, peak })
    }

    /// Time spent in each phase since the backend was made.
    pub fn timings(&self) -> CudaTimings {
        self.lock().timings
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Gpu> {
        lock(&self.gpu)
    }

    /// Counts a call the device failed, which the caller does on the CPU instead.
    fn count_failure(&self) {
        self.lock().timings.failures += 1;
    }
}

fn lock(gpu: &Mutex<Gpu>) -> std::sync::MutexGuard<'_, Gpu> {
    gpu.lock().unwrap_or_else(|e| e.into_inner())
}

impl ProverBackend for CudaBackend {
    fn name(&self) -> String {
        "cuda".into()
    }

    /// Keccak commitments are hashed on the device; FRI's commit-phase trees and the proof of
    /// work hash Keccak on the host, at its widest SIMD.
    fn keccak_simd(&self) -> Simd {
        Simd::detect()
    }

    fn quotient_values(&self, inputs: &QuotientInputs<'_>) -> Option<Vec<Vec<F>>> {
        let result = self.lock().quotient(inputs);
        match result {
            Ok(values) => values,
            Err(e) => {
                tracing::error!(error = %e, "the GPU failed to evaluate the quotient; evaluating it on the CPU");
                self.count_failure();
                None
            }
        }
    }

    fn interpolate(&self, values: Vec<PolynomialValues<F>>, on_coset: bool) -> Vec<PolynomialCoeffs<F>> {
        if values.is_empty() {
            return Vec::new();
        }
        let n = check_lengths(values.iter().map(PolynomialValues::len));
        let result = self.lock().interpolate(&values, on_coset);
        match result {
            Ok(polynomials) => polynomials,
            Err(e) => {
                tracing::error!(error = %e, polynomials = values.len(), length = n, "the GPU failed to interpolate; interpolating on the CPU");
                self.count_failure();
                CpuBackend::detect().interpolate(values, on_coset)
            }
        }
    }

    fn commit_values(&self, values: &[PolynomialValues<F>], rate_bits: usize, salt_size: usize, cap_height: usize) -> (Vec<PolynomialCoeffs<F>>, Box<dyn Committed>) {
        let n = check_lengths(values.iter().map(PolynomialValues::len));
        match self.commit_on_device::<PoseidonHash>(LdeInput::Values(values), rate_bits, salt_size, cap_height) {
            Ok((tree, coefficients)) => (coefficients.expect("values' coefficients come back"), Box::new(tree)),
            Err(e) => {
                tracing::error!(error = %e, polynomials = values.len(), length = n, rate_bits, "the GPU failed to commit; committing on the CPU");
                self.count_failure();
                CpuBackend::detect().commit_values(values, rate_bits, salt_size, cap_height)
            }
        }
    }

    fn proof_of_work(&self, state: &State, at: usize, leading_zeros: u32) -> Option<u64> {
        let result = self.lock().proof_of_work(state, at, leading_zeros);
        match result {
            Ok(witness) => Some(witness),
            Err(e) => {
                tracing::error!(error = %e, "the GPU failed to search for the proof of work; searching on the CPU");
                self.count_failure();
                None
            }
        }
    }

    fn device_busy(&self) -> Option<Duration> {
        let timings = self.timings();
        Some(timings.transfers + timings.kernels)
    }

    fn merkle_tree(&self, leaves: Vec<Vec<F>>, cap_height: usize) -> MerkleTree<F, PoseidonHash> {
        let height = tree_height(leaves.len(), cap_height);
        let width = leaves[0].len();
        if leaves.iter().any(|leaf| leaf.len() != width) {
            // plonky2 allows leaves of several lengths; ours are all of one.
            return CpuBackend::detect().merkle_tree(leaves, cap_height);
        }
        let result = self.lock().tree_levels(&leaves, height - cap_height);
        match result {
            Ok(levels) => tree_from_levels(leaves, levels),
            Err(e) => {
                tracing::error!(error = %e, leaves = leaves.len(), width, "the GPU failed to build a Merkle tree; building it on the CPU");
                self.count_failure();
                CpuBackend::detect().merkle_tree(leaves, cap_height)
            }
        }
    }

    fn lde_rows(&self, polynomials: &[PolynomialCoeffs<F>], rate_bits: usize) -> Vec<Vec<F>> {
        if polynomials.is_empty() {
            return Vec::new();
        }
        check_lengths(polynomials.iter().map(PolynomialCoeffs::len));
        let result = self.lock().lde(polynomials, rate_bits, 0, None);
        match result {
            Ok((rows, _)) => rows,
            Err(e) => {
                tracing::error!(error = %e, polynomials = polynomials.len(), length = polynomials[0].len(), rate_bits, "the GPU failed to compute an LDE; computing it on the CPU");
                self.count_failure();
                CpuBackend::detect().lde_rows(polynomials, rate_bits)
            }
        }
    }

    fn commit_lde(&self, polynomials: &[PolynomialCoeffs<F>], rate_bits: usize, salt_size: usize, cap_height: usize) -> Box<dyn Committed> {
        check_lengths(polynomials.iter().map(PolynomialCoeffs::len));
        match self.commit_on_device::<PoseidonHash>(LdeInput::Coefficients(polynomials), rate_bits, salt_size, cap_height) {
            Ok((tree, _)) => Box::new(tree),
            Err(e) => {
                tracing::error!(error = %e, polynomials = polynomials.len(), length = polynomials[0].len(), rate_bits, "the GPU failed to commit; committing on the CPU");
                self.count_failure();
                CpuBackend::detect().commit_lde(polynomials, rate_bits, salt_size, cap_height)
            }
        }
    }

    fn commit_lde_keccak(&self, polynomials: &[PolynomialCoeffs<F>], rate_bits: usize, salt_size: usize, cap_height: usize) -> Option<Box<dyn Committed<Keccak>>> {
        check_lengths(polynomials.iter().map(PolynomialCoeffs::len));
        match self.commit_on_device::<Keccak>(LdeInput::Coefficients(polynomials), rate_bits, salt_size, cap_height) {
            Ok((tree, _)) => Some(Box::new(tree)),
            Err(e) => {
                tracing::error!(error = %e, polynomials = polynomials.len(), length = polynomials[0].len(), rate_bits, "the GPU failed to commit with Keccak; hashing the LDE's rows on the CPU");
                self.count_failure();
                None
            }
        }
    }

    fn commit_values_keccak(&self, values: &[PolynomialValues<F>], rate_bits: usize, salt_size: usize, cap_height: usize) -> Option<CommittedValues<Keccak>> {
        let n = check_lengths(values.iter().map(PolynomialValues::len));
        match self.commit_on_device::<Keccak>(LdeInput::Values(values), rate_bits, salt_size, cap_height) {
            Ok((tree, coefficients)) => Some((coefficients.expect("values' coefficients come back"), Box::new(tree))),
            Err(e) => {
                tracing::error!(error = %e, polynomials = values.len(), length = n, rate_bits, "the GPU failed to commit with Keccak; committing on the CPU");
                self.count_failure();
                None
            }
        }
    }

    fn commit_permutation(&self, inputs: &PermutationInputs<'_>, rate_bits: usize, salt_size: usize, cap_height: usize) -> Option<Result<CommittedValues, BrokenCopyConstraint>> {
        self.permutation_on_device::<PoseidonHash>(inputs, rate_bits, salt_size, cap_height)
    }

    fn commit_permutation_keccak(&self, inputs: &PermutationInputs<'_>, rate_bits: usize, salt_size: usize, cap_height: usize) -> Option<Result<CommittedValues<Keccak>, BrokenCopyConstraint>> {
        self.permutation_on_device::<Keccak>(inputs, rate_bits, salt_size, cap_height)
    }

    fn lde_merkle_tree(&self, polynomials: &[PolynomialCoeffs<F>], rate_bits: usize, salt_size: usize, cap_height: usize) -> MerkleTree<F, PoseidonHash> {
        check_lengths(polynomials.iter().map(PolynomialCoeffs::len));
        let height = tree_height(polynomials[0].len() << rate_bits, cap_height);
        let result = self.lock().lde(polynomials, rate_bits, salt_size, Some(height - cap_height));
        match result {
            Ok((rows, Some(levels))) => tree_from_levels(rows, levels),
            Ok((_, None)) => unreachable!("a tree was asked for"),
            Err(e) => {
                tracing::error!(error = %e, polynomials = polynomials.len(), length = polynomials[0].len(), rate_bits, "the GPU failed to commit; committing on the CPU");
                self.count_failure();
                CpuBackend::detect().lde_merkle_tree(polynomials, rate_bits, salt_size, cap_height)
            }
        }
    }
}

impl CudaBackend {
    /// See [`ProverBackend::commit_permutation`]: computed from the wires' values the wires
    /// commitment left on the device, committed there.
    fn permutation_on_device<H: DeviceHash>(&self, inputs: &PermutationInputs<'_>, rate_bits: usize, salt_size: usize, cap_height: usize) -> Option<Result<CommittedValues<H>, BrokenCopyConstraint>> {
        let height = tree_height((1usize << inputs.degree_bits) << rate_bits, cap_height);
        let result = self.lock().commit_permutation::<H>(inputs, rate_bits, salt_size, height - cap_height);
        match result {
            Ok(committed) => committed.map(|committed| {
                committed.map(|made| -> CommittedValues<H> {
                    let (tree, coefficients) = self.device_tree(made);
                    (coefficients.expect("values' coefficients come back"), Box::new(tree))
                })
            }),
            Err(e) => {
                tracing::error!(error = %e, degree_bits = inputs.degree_bits, "the GPU failed to compute the partial products; computing them on the CPU");
                self.count_failure();
                None
            }
        }
    }

    /// See [`ProverBackend::commit_lde`]: the LDE and its tree stay on the device, and only the
    /// cap (and values' coefficients) come back.
    #[allow(clippy::type_complexity)]
    fn commit_on_device<H: DeviceHash>(&self, input: LdeInput<'_>, rate_bits: usize, salt_size: usize, cap_height: usize) -> Result<(DeviceTree<H>, Option<Vec<PolynomialCoeffs<F>>>), DriverError> {
        let height = tree_height(input.shape().1 << rate_bits, cap_height);
        let made = self.lock().commit::<H>(input, rate_bits, salt_size, height - cap_height)?;
        Ok(self.device_tree(made))
    }

    /// A commitment made on the device as the prover holds it: a tree that fetches its rows and
    /// paths through this backend, and values' coefficients.
    fn device_tree<H: DeviceHash>(&self, made: MadeOnDevice<H>) -> (DeviceTree<H>, Option<Vec<PolynomialCoeffs<F>>>) {
        let MadeOnDevice { lde, digests, levels, cap, coefficients } = made;
        (DeviceTree { gpu: self.gpu.clone(), lde, digests, levels, cap }, coefficients)
    }
}

/// What [`Gpu::commit`] leaves of a commitment: its LDE, kept on the device; its tree's digests
/// there and their layout; its cap, brought back; and for values, their coefficients, brought
/// back.
struct MadeOnDevice<H: DeviceHash> {
    lde: Arc<RetainedLde>,
    digests: CudaSlice<u64>,
    levels: Levels,
    cap: MerkleCap<F, H>,
    coefficients: Option<Vec<PolynomialCoeffs<F>>>,
}

/// A commitment whose LDE and tree stay on the device: FRI's queries fetch the rows they open
/// and those rows' paths.
struct DeviceTree<H: DeviceHash> {
    gpu: Arc<Mutex<Gpu>>,
    lde: Arc<RetainedLde>,
    /// Every level of the tree, the cap's included, laid out as `levels` says.
    digests: CudaSlice<u64>,
    levels: Levels,
    cap: MerkleCap<F, H>,
}

impl<H: DeviceHash> DeviceTree<H> {
    /// Rows `indices` and their paths: one gather of the rows' elements from the LDE's columns,
    /// one of the paths' digests.
    fn fetch(&self, indices: &[usize]) -> Result<Vec<Opening<H>>, DriverError> {
        let (width, size) = (self.lde.width, self.lde.size);
        let row_positions: Vec<u64> = indices.iter().flat_map(|&index| (0..width).map(move |k| (k * size + index) as u64)).collect();
        let path_positions: Vec<u64> = indices.iter().flat_map(|&index| self.levels.path_positions(index)).collect();
        let mut gpu = lock(&self.gpu);
        let rows = gpu.gather(&self.lde.columns, &row_positions)?;
        let paths = gpu.gather(&self.digests, &path_positions)?;
        let path_len = path_positions.len() / indices.len().max(1);
        Ok((0..indices.len())
            .map(|q| {
                let row = as_field(&rows[q * width..(q + 1) * width]).to_vec();
                let siblings = paths[q * path_len..(q + 1) * path_len].chunks_exact(4).map(H::digest).collect();
                (row, MerkleProof { siblings })
            })
            .collect())
    }
}

impl<H: DeviceHash> Committed<H> for DeviceTree<H> {
    fn cap(&self) -> &MerkleCap<F, H> {
        &self.cap
    }

    fn open(&self, indices: &[usize]) -> Result<Vec<Opening<H>>, FetchError> {
        self.fetch(indices).map_err(|e| FetchError(e.to_string()))
    }

    fn rows(&self) -> Result<Cow<'_, [Vec<F>]>, FetchError> {
        lock(&self.gpu).rows(&self.lde).map(Cow::Owned).map_err(|e| FetchError(e.to_string()))
    }
}

impl<H: DeviceHash> Drop for DeviceTree<H> {
    fn drop(&mut self) {
        // The LDE and the digests may be freed when this returns, on whatever thread drops the
        // commitment: that thread needs the device's context current.
        if let Err(e) = lock(&self.gpu).stream.context().bind_to_thread() {
            tracing::error!(error = %e, "binding the CUDA context to free a commitment's LDE");
        }
    }
}

/// A Merkle hash the kernels build trees with. Its digests lie on the device as four words
/// each, whichever the hash, so the levels' layout and the paths' gathers serve both.
trait DeviceHash: MerkleHasher {
    /// The kernels hashing its leaves and its pairs of digests.
    fn tree_kernels(k: &Kernels) -> (&CudaFunction, &CudaFunction);

    /// A digest from the four words a kernel wrote.
    fn digest(words: &[u64]) -> Self::Hash;
}

impl DeviceHash for PoseidonHash {
    fn tree_kernels(k: &Kernels) -> (&CudaFunction, &CudaFunction) {
        (&k.hash_leaves, &k.compress_pairs)
    }

    /// Four canonical elements.
    fn digest(words: &[u64]) -> HashOut<F> {
        HashOut { elements: std::array::from_fn(|i| F::from_canonical_u64(words[i])) }
    }
}

impl DeviceHash for Keccak {
    fn tree_kernels(k: &Kernels) -> (&CudaFunction, &CudaFunction) {
        (&k.keccak_leaves, &k.keccak_pairs)
    }

    /// The words' first 25 bytes, little-endian.
    fn digest(words: &[u64]) -> BytesHash<25> {
        let bytes: Vec<u8> = words[..4].iter().flat_map(|w| w.to_le_bytes()).collect();
        BytesHash(bytes[..25].try_into().expect("25 of 32 bytes"))
    }
}

/// What an LDE or an interpolation takes: at least one polynomial (by coefficients or values),
/// all of one power-of-two length, which is returned.
fn check_lengths(lengths: impl IntoIterator<Item = usize>) -> usize {
    let mut lengths = lengths.into_iter();
    let n = lengths.next().expect("polynomials to transform");
    assert!(n.is_power_of_two() && lengths.all(|len| len == n), "an LDE or interpolation needs polynomials of one power-of-two length");
    n
}

struct Kernels {
    hash_leaves: CudaFunction,
    compress_pairs: CudaFunction,
    keccak_leaves: CudaFunction,
    keccak_pairs: CudaFunction,
    coset_spread: CudaFunction,
    dif_stage: CudaFunction,
    interpolated: CudaFunction,
    proof_of_work: CudaFunction,
    transpose: CudaFunction,
    gather: CudaFunction,
    quotient: CudaFunction,
    permutation_quotients: CudaFunction,
    permutation_segments: CudaFunction,
    permutation_scan: CudaFunction,
    permutation_values: CudaFunction,
}

/// A commitment's LDE kept on the device: its columns (with any salt columns after them), in
/// leaf order (column `k`'s value for leaf `i` at `k·size + i`), named by the commitment's cap.
/// Shared by the backend's list of the latest and the commitment itself, which keeps it until
/// its proof is made.
struct RetainedLde {
    name: CapName,
    columns: CudaSlice<u64>,
    size: usize,
    width: usize,
    /// For a commitment to values, those values (column by column, `n` each, canonical): the
    /// wires', which the permutation's kernels read.
    values: Option<(CudaSlice<u64>, usize)>,
}

/// A circuit's sigmas on the subgroup (routed wire after routed wire, canonical), named by its
/// constants-and-sigmas commitment's cap.
struct RetainedSigmas {
    name: CapName,
    values: CudaSlice<u64>,
}

/// A circuit's constants-and-sigmas rows on the device, named by their commitment's cap.
struct RetainedConstants {
    name: CapName,
    rows: CudaSlice<u64>,
    width: usize,
}

/// Buffers kept between calls, each grown to the largest size asked of it.
#[derive(Default)]
struct Buffers {
    /// Pinned host memory uploads are staged through.
    staging: Option<PinnedHostSlice<u64>>,
    /// The two pinned buffers an LDE's rows are downloaded through, part by part.
    parts: [Option<PinnedHostSlice<u64>>; 2],
    /// Coefficients, or a tree's leaves.
    input: Option<CudaSlice<u64>>,
    /// The NTT's columns.
    columns: Option<CudaSlice<u64>>,
    /// The LDE's rows.
    rows: Option<CudaSlice<u64>>,
    /// Every level of a tree's digests, leaves' first.
    digests: Option<CudaSlice<u64>>,
    /// Powers of the coset shift, by log length.
    shift_powers: HashMap<usize, CudaSlice<u64>>,
    /// Powers of the LDE's root of unity (half its order of them), by log size.
    twiddles: HashMap<usize, CudaSlice<u64>>,
    /// Powers of the inverse root of unity (half its order of them), by log size.
    inverse_twiddles: HashMap<usize, CudaSlice<u64>>,
    /// What interpolation scales coefficient `k` by: `1/n`, by log length, for values on a
    /// subgroup; `1/n` times the inverse coset shift's `k`-th power, for values on its coset.
    subgroup_scales: HashMap<usize, CudaSlice<u64>>,
    coset_scales: HashMap<usize, CudaSlice<u64>>,
    /// The latest commitments' LDEs, newest first.
    ldes: VecDeque<Arc<RetainedLde>>,
    /// The latest circuits' constants and sigmas, newest first.
    constants: VecDeque<RetainedConstants>,
    /// The latest circuits' sigmas on the subgroup, newest first.
    sigmas: VecDeque<RetainedSigmas>,
    /// The subgroup's points (powers of its generator), by log length.
    subgroup_points: HashMap<usize, CudaSlice<u64>>,
    /// Each row's chunk quotients, for the permutation's running product.
    permutation: Option<CudaSlice<u64>>,
    /// The quotient's values.
    quotient: Option<CudaSlice<u64>>,
}

/// The device buffer in `slot`, at least `len` long.
fn grown<'a>(stream: &Arc<CudaStream>, slot: &'a mut Option<CudaSlice<u64>>, len: usize) -> Result<&'a mut CudaSlice<u64>, DriverError> {
    if slot.as_ref().is_none_or(|buffer| buffer.len() < len) {
        *slot = None; // free before allocating the larger one
        *slot = Some(unsafe { stream.alloc::<u64>(len.max(1)) }?);
    }
    Ok(slot.as_mut().expect("just allocated"))
}

/// A table of `count` powers of `base`, each times `first`, on the device, made once per key.
fn table<'a>(stream: &Arc<CudaStream>, tables: &'a mut HashMap<usize, CudaSlice<u64>>, key: usize, first: F, base: F, count: usize) -> Result<&'a CudaSlice<u64>, DriverError> {
    Ok(match tables.entry(key) {
        Entry::Occupied(table) => table.into_mut(),
        Entry::Vacant(slot) => {
            let powers: Vec<u64> = base.powers().take(count.max(1)).map(|x| (first * x).to_canonical_u64()).collect();
            slot.insert(stream.clone_htod(&powers)?)
        }
    })
}

fn launch_config(threads: usize) -> LaunchConfig {
    let blocks = u32::try_from(threads.div_ceil(THREADS as usize)).expect("a grid of fewer than 2^32 blocks");
    LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (THREADS, 1, 1), shared_mem_bytes: 0 }
}

struct Gpu {
    /// Where kernels and uploads run.
    stream: Arc<CudaStream>,
    /// Where an LDE's rows are downloaded, beside the kernels hashing its tree.
    copies: Arc<CudaStream>,
    kernels: Kernels,
    buffers: Buffers,
    timings: CudaTimings,
}

/// The pinned staging buffer in `slot`, at least `len` long.
fn staging<'a>(stream: &CudaStream, slot: &'a mut Option<PinnedHostSlice<u64>>, len: usize) -> Result<&'a mut PinnedHostSlice<u64>, DriverError> {
    if slot.as_ref().is_none_or(|buffer| buffer.len() < len) {
        *slot = None;
        // Not write-combined: the host reads the download buffers back.
        *slot = Some(unsafe { stream.context().alloc_pinned_with_flags::<u64>(len.max(1), 0) }?);
    }
    Ok(slot.as_mut().expect("just allocated"))
}

/// A stopwatch over a call's phases: each lap waits for the stream, then adds the time since
/// the last lap to one phase's total.
struct Laps<'a> {
    stream: &'a CudaStream,
    timings: &'a mut CudaTimings,
    since: Instant,
}

impl<'a> Laps<'a> {
    fn start(stream: &'a CudaStream, timings: &'a mut CudaTimings) -> Self {
        Self { stream, timings, since: Instant::now() }
    }

    /// Runs `work`, which counts its own time into the timings, and starts the next lap after it.
    fn untimed<T>(&mut self, work: impl FnOnce(&mut CudaTimings) -> T) -> T {
        let result = work(self.timings);
        self.since = Instant::now();
        result
    }

    fn lap(&mut self, phase: fn(&mut CudaTimings) -> &mut Duration) -> Result<(), DriverError> {
        self.stream.synchronize()?;
        *phase(self.timings) += self.since.elapsed();
        self.since = Instant::now();
        Ok(())
    }
}

fn host(t: &mut CudaTimings) -> &mut Duration {
    &mut t.host
}

fn transfers(t: &mut CudaTimings) -> &mut Duration {
    &mut t.transfers
}

fn kernels(t: &mut CudaTimings) -> &mut Duration {
    &mut t.kernels
}

/// Where a tree's digests lie in the digests buffer: level `k` (the leaves' digests at 0) holds
/// `count >> k` digests of four elements from `offsets[k]`.
struct Levels {
    count: usize,
    offsets: Vec<usize>,
    total: usize,
}

impl Levels {
    fn new(count: usize, levels_above: usize) -> Self {
        let offsets: Vec<usize> = (0..=levels_above).scan(0, |at, k| Some(std::mem::replace(at, *at + 4 * (count >> k)))).collect();
        let total = offsets[levels_above] + 4 * (count >> levels_above);
        Self { count, offsets, total }
    }

    /// Where leaf `index`'s path to the cap lies: each sibling's four elements, level by level
    /// below the cap.
    fn path_positions(&self, index: usize) -> impl Iterator<Item = u64> + '_ {
        self.offsets[..self.offsets.len() - 1].iter().enumerate().flat_map(move |(k, &at)| {
            let sibling = (at + 4 * ((index >> k) ^ 1)) as u64;
            sibling..sibling + 4
        })
    }

    /// Where the cap lies.
    fn cap(&self) -> std::ops::Range<usize> {
        self.offsets[self.offsets.len() - 1]..self.total
    }

    /// Each level's digests, downloaded from the first `total` elements of `digests`.
    fn download(&self, stream: &Arc<CudaStream>, digests: &CudaSlice<u64>, laps: &mut Laps<'_>) -> Result<Vec<Vec<HashOut<F>>>, DriverError> {
        let flat = stream.clone_dtoh(&digests.slice(..self.total))?;
        laps.lap(transfers)?;
        let levels
 = self.offsets.iter().enumerate().map(|(k, &at)| flat[at..at + 4 * (self.count >> k)].chunks_exact(4).map(PoseidonHash::digest).collect()).collect();
        laps.lap(host)?;
        Ok(levels)
    }
}

/// Hashes the leaves in `input` (leaf `i`'s element `k` at `i * row_stride + k * column_stride`)
/// and every level above them that `levels` holds, into `digests`.
#[allow(clippy::too_many_arguments)]
fn hash_tree<H: DeviceHash>(stream: &Arc<CudaStream>, k: &Kernels, input: &CudaSlice<u64>, width: usize, row_stride: usize, column_stride: usize, levels: &Levels, digests: &mut CudaSlice<u64>) -> Result<(), DriverError> {
    let (hash_leaves, compress_pairs) = H::tree_kernels(k);
    let (count, width, row_stride, column_stride) = (levels.count as u64, width as u32, row_stride as u64, column_stride as u64);
    unsafe { stream.launch_builder(hash_leaves).arg(input).arg(&count).arg(&width).arg(&row_stride).arg(&column_stride).arg(&mut *digests).launch(launch_config(levels.count)) }?;
    for level in 0..levels.offsets.len() - 1 {
        let (lower, mut upper) = digests.split_at_mut(levels.offsets[level + 1]);
        let children = lower.slice(levels.offsets[level]..);
        let parents = (levels.count >> level) / 2;
        unsafe { stream.launch_builder(compress_pairs).arg(&children).arg(&(parents as u64)).arg(&mut upper).launch(launch_config(parents)) }?;
    }
    Ok(())
}

impl Gpu {
    /// Digests of every level of the tree over `leaves`, from the leaves' up to `levels_above`
    /// levels above them (the cap).
    fn tree_levels(&mut self, leaves: &[Vec<F>], levels_above: usize) -> Result<Vec<Vec<HashOut<F>>>, DriverError> {
        let Gpu { stream, kernels: k, buffers, timings, .. } = self;
        let (count, width) = (leaves.len(), leaves[0].len());
        let mut laps = Laps::start(stream, timings);
        let staged = staging(stream, &mut buffers.staging, count * width)?;
        staged.as_mut_slice()?[..count * width].par_chunks_mut(width.max(1)).zip(leaves).for_each(|(row, leaf)| row.copy_from_slice(as_u64s(leaf)));
        laps.lap(host)?;

        let input = grown(stream, &mut buffers.input, count * width)?;
        stream.memcpy_htod(&staged.as_slice()?[..count * width], input)?;
        laps.lap(transfers)?;

        let levels = Levels::new(count, levels_above);
        let digests = grown(stream, &mut buffers.digests, levels.total)?;
        hash_tree::<PoseidonHash>(stream, k, input, width, width, 1, &levels, digests)?;
        laps.lap(kernels)?;

        levels.download(stream, digests, &mut laps)
    }

    /// The coset LDE of `polynomials` as Merkle rows (see [`ProverBackend::lde_rows`]), each
    /// row followed by `salt_size` random elements, and, given `levels_above`, the levels of the
    /// tree over those rows, hashed from the LDE where it lies.
    #[allow(clippy::type_complexity)]
    fn lde(&mut self, polynomials: &[PolynomialCoeffs<F>], rate_bits: usize, salt_size: usize, levels_above: Option<usize>) -> Result<(Vec<Vec<F>>, Option<Vec<Vec<HashOut<F>>>>), DriverError> {
        let Gpu { stream, copies, kernels: k, buffers, timings } = self;
        let mut laps = Laps::start(stream, timings);
        let (width, size, _) = coset_lde(stream, k, buffers, &mut laps, LdeInput::Coefficients(polynomials), rate_bits, salt_size)?;
        let data = buffers.columns.as_ref().expect("the LDE's columns");
        let rows = grown(stream, &mut buffers.rows, width * size)?;
        transpose(stream, k, data, width, size, rows)?;
        laps.lap(kernels)?;

        // The tree is hashed from the columns while the rows go down on the other stream, so
        // only the hashing that outlasts the download is waited for.
        let levels = levels_above.map(|above| Levels::new(size, above));
        if let Some(levels) = &levels {
            let digests = grown(stream, &mut buffers.digests, levels.total)?;
            hash_lde::<PoseidonHash>(stream, k, data, width, levels, digests)?;
        }
        let rows = laps.untimed(|timings| download_rows(copies, rows, size, width, &mut buffers.parts, timings))?;
        laps.lap(kernels)?;

        let levels = match levels {
            Some(levels) => Some(levels.download(stream, buffers.digests.as_ref().expect("hashed"), &mut laps)?),
            None => None,
        };
        if let Some(cap) = levels.as_ref().and_then(|levels| levels.last()) {
            retain(buffers, CapName::of(&MerkleCap::<F, PoseidonHash>(cap.clone())), size, width, None);
        }
        Ok((rows, levels))
    }

    /// A commitment to the coset LDE of `input` (rows salted with `salt_size` random elements)
    /// that leaves the LDE and its tree (`levels_above` levels over the leaves) on the device:
    /// the LDE, kept; the tree's digests and where they lie; the cap, brought back; and for
    /// values, their coefficients, brought back while the LDE is computed and hashed.
    fn commit<H: DeviceHash>(&mut self, input: LdeInput<'_>, rate_bits: usize, salt_size: usize, levels_above: usize) -> Result<MadeOnDevice<H>, DriverError> {
        let Gpu { stream, copies, kernels: k, buffers, timings } = self;
        let mut laps = Laps::start(stream, timings);
        let (width, size, values) = coset_lde(stream, k, buffers, &mut laps, input, rate_bits, salt_size)?;
        let levels = Levels::new(size, levels_above);
        // The commitment's own buffer: its paths are read from it until its proof is made.
        let mut digests = unsafe { stream.alloc::<u64>(levels.total) }?;
        hash_lde::<H>(stream, k, buffers.columns.as_ref().expect("the LDE's columns"), width, &levels, &mut digests)?;
        let coefficients = match input {
            LdeInput::Values(_) | LdeInput::OnDevice { .. } => {
                let (count, n) = input.shape();
                Some(laps.untimed(|timings| download_coefficients(copies, buffers, count, n, timings))?)
            }
            LdeInput::Coefficients(_) => None,
        };
        laps.lap(kernels)?;
        let cap = MerkleCap(stream.clone_dtoh(&digests.slice(levels.cap()))?.chunks_exact(4).map(H::digest).collect());
        laps.lap(transfers)?;
        let lde = retain(buffers, CapName::of(&cap), size, width, values);
        Ok(MadeOnDevice { lde, digests, levels, cap, coefficients })
    }

    /// The permutation argument's polynomials computed from the wires' values kept with their
    /// commitment, then committed as values ([`Self::commit`]); or the repetition whose Z does
    /// not return to one. `None` where the wires' values are no longer on the device or a row
    /// has more chunks than the kernels take.
    fn commit_permutation<H: DeviceHash>(&mut self, inputs: &PermutationInputs<'_>, rate_bits: usize, salt_size: usize, levels_above: usize) -> Result<Option<Result<MadeOnDevice<H>, BrokenCopyConstraint>>, DriverError> {
        let (routed, n, challenges) = (inputs.sigmas.len(), 1usize << inputs.degree_bits, inputs.betas.len());
        let shape = PermutationShape::new(inputs.degree_bits, routed, inputs.chunk, challenges);
        let Some(wires) = self.buffers.ldes.iter().find(|lde| lde.name == inputs.wires).cloned() else { return Ok(None) };
        let Some((wire_values, _)) = wires.values.as_ref().filter(|(values, values_n)| *values_n == n && values.len() >= routed * n) else { return Ok(None) };
        if shape.width as usize > MAX_PERMUTATION_CHUNKS {
            return Ok(None);
        }
        let count = challenges * n / shape.segment as usize;
        {
            let Gpu { stream, kernels: k, buffers, timings, .. } = self;
            let mut laps = Laps::start(stream, timings);
            if !buffers.sigmas.iter().any(|kept| kept.name == inputs.constants_sigmas) {
                // Uploaded once per circuit.
                let flat: Vec<u64> = inputs.sigmas.iter().flat_map(|column| column.iter().map(|x| x.to_canonical_u64())).collect();
                laps.lap(host)?;
                buffers.sigmas.push_front(RetainedSigmas { name: inputs.constants_sigmas.clone(), values: stream.clone_htod(&flat)? });
                buffers.sigmas.truncate(RETAINED_CONSTANTS);
            }
            let sigmas = &buffers.sigmas.iter().find(|kept| kept.name == inputs.constants_sigmas).expect("kept just now or before").values;
            let points = table(stream, &mut buffers.subgroup_points, inputs.degree_bits, F::ONE, F::primitive_root_of_unity(inputs.degree_bits), n)?;
            let params: Vec<u64> = inputs.betas.iter().chain(inputs.gammas).chain(inputs.beta_ks.iter().flat_map(|ks| &ks[..routed])).map(|x| x.to_canonical_u64()).collect();
            let params = stream.clone_htod(&params)?;
            let mut segments = unsafe { stream.alloc::<u64>(count) }?;
            let mut totals = unsafe { stream.alloc::<u64>(challenges) }?;
            laps.lap(transfers)?;

            let quotients = grown(stream, &mut buffers.permutation, challenges * n * shape.width as usize)?;
            unsafe { stream.launch_builder(&k.permutation_quotients).arg(wire_values).arg(sigmas).arg(points).arg(&params).arg(&shape).arg(&mut *quotients).launch(launch_config(challenges * n)) }?;
            unsafe { stream.launch_builder(&k.permutation_segments).arg(&*quotients).arg(&shape).arg(&mut segments).launch(launch_config(count)) }?;
            unsafe { stream.launch_builder(&k.permutation_scan).arg(&mut segments).arg(&shape).arg(&mut totals).launch(launch_config(challenges)) }?;
            let columns = grown(stream, &mut buffers.rows, challenges * shape.width as usize * n)?;
            unsafe { stream.launch_builder(&k.permutation_values).arg(&*quotients).arg(&segments).arg(&shape).arg(columns).launch(launch_config(count)) }?;
            laps.lap(kernels)?;
            let totals = stream.clone_dtoh(&totals)?;
            laps.lap(transfers)?;
            if let Some(challenge) = totals.iter().position(|&total| total != 1) {
                return Ok(Some(Err(BrokenCopyConstraint { challenge })));
            }
        }
        let input = LdeInput::OnDevice { count: challenges * shape.width as usize, n };
        let committed = self.commit::<H>(input, rate_bits, salt_size, levels_above)?;
        self.timings.partial_products += 1;
        Ok(Some(Ok(committed)))
    }

    /// `source[p]` for each of `positions`.
    fn gather(&mut self, source: &CudaSlice<u64>, positions: &[u64]) -> Result<Vec<u64>, DriverError> {
        let Gpu { stream, kernels: k, timings, .. } = self;
        if positions.is_empty() {
            return Ok(Vec::new());
        }
        let mut laps = Laps::start(stream, timings);
        let on_device = stream.clone_htod(positions)?;
        let mut out = unsafe { stream.alloc::<u64>(positions.len()) }?;
        laps.lap(transfers)?;
        let count = positions.len() as u64;
        unsafe { stream.launch_builder(&k.gather).arg(source).arg(&on_device).arg(&count).arg(&mut out).launch(launch_config(positions.len())) }?;
        laps.lap(kernels)?;
        let values = stream.clone_dtoh(&out)?;
        laps.lap(transfers)?;
        Ok(values)
    }

    /// See [`ProverBackend::proof_of_work`]: blocks of candidates in order, each searched at
    /// once, so the first block holding a witness holds the smallest.
    fn proof_of_work(&mut self, state: &State, at: usize, leading_zeros: u32) -> Result<u64, DriverError> {
        let Gpu { stream, kernels: k, timings, .. } = self;
        let mut laps = Laps::start(stream, timings);
        let on_device = stream.clone_htod(state)?;
        let mut found = stream.clone_htod(&[u64::MAX])?;
        laps.lap(transfers)?;
        let at = u32::try_from(at).expect("a position in the state");
        let mut first = 0;
        loop {
            // Candidates are field elements.
            let count = POW_BLOCK.min(F::ORDER - first);
            unsafe { stream.launch_builder(&k.proof_of_work).arg(&on_device).arg(&at).arg(&first).arg(&count).arg(&leading_zeros).arg(&mut found).launch(launch_config(count as usize)) }?;
            let witness = stream.clone_dtoh(&found)?[0];
            if witness != u64::MAX {
                laps.lap(kernels)?;
                return Ok(witness);
            }
            first += count;
            assert!(first < F::ORDER, "a proof-of-work witness exists among the field's elements");
        }
    }

    /// See [`ProverBackend::interpolate`].
    fn interpolate(&mut self, values: &[PolynomialValues<F>], on_coset: bool) -> Result<Vec<PolynomialCoeffs<F>>, DriverError> {
        let Gpu { stream, copies, kernels: k, buffers, timings } = self;
        let mut laps = Laps::start(stream, timings);
        let (count, n) = (values.len(), values[0].len());
        upload_values(stream, buffers, &mut laps, values)?;
        laps.lap(transfers)?;
        interpolate_values(stream, k, buffers, count, n, on_coset)?;
        laps.lap(kernels)?;
        laps.untimed(|timings| download_coefficients(copies, buffers, count, n, timings))
    }

    /// Every row of a kept LDE, in leaf order.
    fn rows(&mut self, lde: &RetainedLde) -> Result<Vec<Vec<F>>, DriverError> {
        let Gpu { stream, copies, kernels: k, buffers, timings } = self;
        let mut laps = Laps::start(stream, timings);
        let rows = grown(stream, &mut buffers.rows, lde.width * lde.size)?;
        transpose(stream, k, &lde.columns, lde.width, lde.size, rows)?;
        laps.lap(kernels)?;
        laps.untimed(|timings| download_rows(copies, rows, lde.size, lde.width, &mut buffers.parts, timings))
    }
}

/// What an LDE is computed from: coefficients, or values on the subgroup of their length,
/// interpolated on the device first.
#[derive(Clone, Copy)]
enum LdeInput<'a> {
    Coefficients(&'a [PolynomialCoeffs<F>]),
    Values(&'a [PolynomialValues<F>]),
    /// `count` columns of `n` values a kernel left in `buffers.rows`.
    OnDevice { count: usize, n: usize },
}

impl LdeInput<'_> {
    /// How many polynomials, and their length.
    fn shape(self) -> (usize, usize) {
        match self {
            Self::Coefficients(p) => (p.len(), p[0].len()),
            Self::Values(v) => (v.len(), v[0].len()),
            Self::OnDevice { count, n } => (count, n),
        }
    }
}

/// Uploads `input` and computes its coset LDE into `buffers.columns` in leaf order
/// (bit-reversed, as the NTT leaves it), with `salt_size` columns of random elements after them;
/// values are interpolated into `buffers.input` on the way. Returns the LDE's width (columns
/// with the salt's) and size, and uploaded values, copied before their interpolation (a wires
/// commitment's: the permutation's kernels read them).
#[allow(clippy::type_complexity)]
fn coset_lde(stream: &Arc<CudaStream>, k: &Kernels, buffers: &mut Buffers, laps: &mut Laps<'_>, input: LdeInput<'_>, rate_bits: usize, salt_size: usize) -> Result<(usize, usize, Option<(CudaSlice<u64>, usize)>), DriverError> {
    let (columns, n) = input.shape();
    let width = columns + salt_size;
    let log_n = n.trailing_zeros() as usize;
    let log_size = log_n + rate_bits;
    let size = n << rate_bits;
    // The salt, as `salt_size` more columns.
    let salt = crate::random_elements(salt_size * size);
    match input {
        LdeInput::Coefficients(polynomials) => {
            let staged = staging(stream, &mut buffers.staging, columns * n)?;
            staged.as_mut_slice()?[..columns * n].par_chunks_mut(n).zip(polynomials).for_each(|(column, p)| column.copy_from_slice(as_u64s(&p.coeffs)));
            laps.lap(host)?;
            let input = grown(stream, &mut buffers.input, columns * n)?;
            stream.memcpy_htod(&staged.as_slice()?[..columns * n], input)?;
        }
        LdeInput::Values(values) => upload_values(stream, buffers, laps, values)?,
        LdeInput::OnDevice { .. } => {}
    }
    let values = match input {
        LdeInput::Values(_) => Some((stream.clone_dtod(&buffers.rows.as_ref().expect("uploaded").slice(..columns * n))?, n)),
        _ => None,
    };
    let data = grown(stream, &mut buffers.columns, width * size)?;
    if salt_size > 0 {
        stream.memcpy_htod(as_u64s(&salt), &mut data.slice_mut(columns * size..width * size))?;
    }
    table(stream, &mut buffers.shift_powers, log_n, F::ONE, F::coset_shift(), n)?;
    table(stream, &mut buffers.twiddles, log_size, F::ONE, F::primitive_root_of_unity(log_size), size / 2)?;
    laps.lap(transfers)?;

    if let LdeInput::Values(_) | LdeInput::OnDevice { .. } = input {
        interpolate_values(stream, k, buffers, columns, n, false)?;
    }
    let (input, data) = (buffers.input.as_ref().expect("coefficients"), buffers.columns.as_mut().expect("grown"));
    let (shift_powers, twiddles) = (&buffers.shift_powers[&log_n], &buffers.twiddles[&log_size]);
    let (log_n32, log_size32, total) = (log_n as u32, log_size as u32, (columns * size) as u64);
    unsafe { stream.launch_builder(&k.coset_spread).arg(input).arg(&log_n32).arg(&log_size32).arg(shift_powers).arg(&total).arg(&mut *data).launch(launch_config(columns * size)) }?;
    dif_stages(stream, k, data, columns, log_size, twiddles)?;
    Ok((width, size, values))
}

/// Every radix-2 decimation-in-frequency stage over `columns` columns of `2^log_size` values in
/// `data`, with `twiddles` (the root's powers for an NTT, the inverse root's for an inverse one):
/// each column's transform, in bit-reversed order.
fn dif_stages(stream: &Arc<CudaStream>, k: &Kernels, data: &mut CudaSlice<u64>, columns: usize, log_size: usize, twiddles: &CudaSlice<u64>) -> Result<(), DriverError> {
    let log_size32 = log_size as u32;
    let butterflies = ((columns << log_size) / 2) as u64;
    for log_half in (0..log_size32).rev() {
        unsafe { stream.launch_builder(&k.dif_stage).arg(&mut *data).arg(&log_size32).arg(&log_half).arg(twiddles).arg(&butterflies).launch(launch_config(butterflies as usize)) }?;
    }
    Ok(())
}

/// Stages `values` (of one length `n`) in pinned memory, column after column, and uploads them
/// into `buffers.rows`, where [`interpolate_values`] reads them.
fn upload_values(stream: &Arc<CudaStream>, buffers: &mut Buffers, laps: &mut Laps<'_>, values: &[PolynomialValues<F>]) -> Result<(), DriverError> {
    let (count, n) = (values.len(), values[0].len());
    let staged = staging(stream, &mut buffers.staging, count * n)?;
    // Reduced here, in the copy, since the NTT's stages add what they load as it is.
    staged.as_mut_slice()?[..count * n].par_chunks_mut(n).zip(values).for_each(|(column, v)| {
        for (to, x) in column.iter_mut().zip(&v.values) {
            *to = x.to_canonical_u64();
        }
    });
    laps.lap(host)?;
    let data = grown(stream, &mut buffers.rows, count * n)?;
    stream.memcpy_htod(&staged.as_slice()?[..count * n], data)?;
    Ok(())
}

/// Interpolates the `count` columns of `n` values uploaded by [`upload_values`] into
/// `buffers.input`, coefficient `k` of polynomial `c` at `c·n + k`: an inverse NTT in place (the
/// radix-2 stages with the inverse root), then its bit-reversed output put in order and scaled
/// (see [`ProverBackend::interpolate`]).
fn interpolate_values(stream: &Arc<CudaStream>, k: &Kernels, buffers: &mut Buffers, count: usize, n: usize, on_coset: bool) -> Result<(), DriverError> {
    let log_n = n.trailing_zeros() as usize;
    let inverse_root = F::primitive_root_of_unity(log_n).inverse();
    let twiddles = table(stream, &mut buffers.inverse_twiddles, log_n, F::ONE, inverse_root, n / 2)?;
    let n_inverse = F::inverse_2exp(log_n);
    let scales = match on_coset {
        false => table(stream, &mut buffers.subgroup_scales, log_n, n_inverse, F::ONE, n)?,
        true => table(stream, &mut buffers.coset_scales, log_n, n_inverse, F::coset_shift().inverse(), n)?,
    };
    let data = buffers.rows.as_mut().expect("uploaded");
    dif_stages(stream, k, data, count, log_n, twiddles)?;
    let (log_n32, total) = (log_n as u32, (count * n) as u64);
    let input = grown(stream, &mut buffers.input, count * n)?;
    unsafe { stream.launch_builder(&k.interpolated).arg(&*data).arg(&log_n32).arg(scales).arg(&total).arg(input).launch(launch_config(count * n)) }?;
    Ok(())
}

/// The `count` polynomials of `n` coefficients [`interpolate_values`] left in `buffers.input`.
fn download_coefficients(stream: &Arc<CudaStream>, buffers: &mut Buffers, count: usize, n: usize, timings: &mut CudaTimings) -> Result<Vec<PolynomialCoeffs<F>>, DriverError> {
    let interpolated = buffers.input.as_ref().expect("interpolated");
    let rows = download_rows(stream, interpolated, count, n, &mut buffers.parts, timings)?;
    Ok(rows.into_iter().map(PolynomialCoeffs::new).collect())
}

/// The LDE's columns as rows of `width` (for plonky2's `Vec` per row).
fn transpose(stream: &Arc<CudaStream>, k: &Kernels, columns: &CudaSlice<u64>, width: usize, size: usize, rows: &mut CudaSlice<u64>) -> Result<(), DriverError> {
    let (width, log_size) = (width as u64, size.trailing_zeros());
    unsafe { stream.launch_builder(&k.transpose).arg(columns).arg(&width).arg(&log_size).arg(rows).launch(launch_config(width as usize * size)) }?;
    Ok(())
}

/// The tree over an LDE's rows, hashed from its columns: leaf `i` is element `i` of every
/// column, so the reads of a warp's leaves coalesce.
fn hash_lde<H: DeviceHash>(stream: &Arc<CudaStream>, k: &Kernels, columns: &CudaSlice<u64>, width: usize, levels: &Levels, digests: &mut CudaSlice<u64>) -> Result<(), DriverError> {
    hash_tree::<H>(stream, k, columns, width, 1, levels.count, levels, digests)
}

/// Keeps the LDE in `buffers.columns` on the device, named by its commitment's cap, among the
/// latest; the next LDE gets a buffer of its own (the oldest one's, if its commitment is gone).
fn retain(buffers: &mut Buffers, name: CapName, size: usize, width: usize, values: Option<(CudaSlice<u64>, usize)>) -> Arc<RetainedLde> {
    let columns = buffers.columns.take().expect("the LDE's columns");
    let lde = Arc::new(RetainedLde { name, columns, size, width, values });
    buffers.ldes.push_front(lde.clone());
    if buffers.ldes.len() > RETAINED_LDES {
        buffers.columns = buffers.ldes.pop_back().and_then(Arc::into_inner).map(|oldest| oldest.columns);
    }
    lde
}

impl Gpu {
    /// The quotient's values (see [`ProverBackend::quotient_values`]), or `None` if the LDEs of
    /// the commitments `inputs` names are no longer on the device.
    fn quotient(&mut self, inputs: &QuotientInputs<'_>) -> Result<Option<Vec<Vec<F>>>, DriverError> {
        let Gpu { stream, kernels: k, buffers, timings, .. } = self;
        let retained = |name: &CapName| buffers.ldes.iter().position(|lde| lde.name == *name);
        let (Some(wires), Some(zs)) = (retained(&inputs.commitments.wires), retained(&inputs.commitments.zs_partial_products)) else {
            return Ok(None);
        };
        let shape = inputs.shape;
        let mut laps = Laps::start(stream, timings);
        let name = &inputs.commitments.constants_sigmas;
        let constants = match buffers.constants.iter().position(|c| c.name == *name) {
            Some(found) => found,
            None => {
                // Uploaded once per circuit: its rows as committed, in the LDE's order.
                let leaves = inputs.commitments.constants_sigmas_rows;
                let width = leaves[0].len();
                let flat: Vec<u64> = leaves.par_iter().flat_map_iter(|row| as_u64s(row).iter().copied()).collect();
                laps.lap(host)?;
                let rows = stream.clone_htod(&flat)?;
                laps.lap(transfers)?;
                buffers.constants.push_front(RetainedConstants { name: name.clone(), rows, width });
                buffers.constants.truncate(RETAINED_CONSTANTS);
                0
            }
        };
        let gates = stream.clone_htod(&inputs.gates)?;
        let params = stream.clone_htod(&inputs.params)?;
        let points = 1usize << shape.log_points;
        let out = grown(stream, &mut buffers.quotient, shape.num_challenges as usize * points)?;
        laps.lap(transfers)?;

        let (wires, zs, constants) = (&buffers.ldes[wires], &buffers.ldes[zs], &buffers.constants[constants]);
        let (wires_stride, zs_stride, width) = (wires.size as u64, zs.size as u64, constants.width as u32);
        unsafe {
            stream
                .launch_builder(&k.quotient)
                .arg(&wires.columns)
                .arg(&wires_stride)
                .arg(&zs.columns)
                .arg(&zs_stride)
                .arg(&constants.rows)
                .arg(&width)
                .arg(&gates)
                .arg(&params)
                .arg(&shape)
                .arg(&mut *out)
                .launch(launch_config(points))
        }?;
        laps.lap(kernels)?;
        let flat = stream.clone_dtoh(&out.slice(..shape.num_challenges as usize * points))?;
        laps.lap(transfers)?;
        let values = flat.chunks_exact(points).map(|values| as_field(values).to_vec()).collect();
        laps.lap(host)?;
        laps.timings.quotients += 1;
        Ok(Some(values))
    }
}

/// Parts a download of rows is split into: the host turns one part into plonky2's rows while
/// the next is copied.
const DOWNLOAD_PARTS: usize = 8;

/// The parts a download of `count` rows of `width` elements is split into, as ranges of
/// elements: at most [`DOWNLOAD_PARTS`], of whole rows, the last one maybe shorter.
fn download_parts(count: usize, width: usize) -> Vec<std::ops::Range<usize>> {
    let part_len = count.div_ceil(DOWNLOAD_PARTS).max(1) * width;
    (0..count * width).step_by(part_len.max(1)).map(|start| start..(start + part_len).min(count * width)).collect()
}

/// `count` rows of `width` elements from `rows` on the device, as plonky2's `Vec` per row. The
/// copies go through two pinned buffers in turn, so building one part's rows on the host
/// overlaps the copy of the next; only the time spent waiting for a copy counts as transfers.
fn download_rows(stream: &Arc<CudaStream>, rows: &CudaSlice<u64>, count: usize, width: usize, slots: &mut [Option<PinnedHostSlice<u64>>; 2], timings: &mut CudaTimings) -> Result<Vec<Vec<F>>, DriverError> {
    let parts = download_parts(count, width);
    for slot in slots.iter_mut() {
        staging(stream, slot, parts[0].len())?;
    }
    let [first, second] = slots;
    let (first, second) = (first.as_mut().expect("allocated"), second.as_mut().expect("allocated"));
    // Each buffer's copy completes at its event, recorded here so the wait does not rest on
    // cudarc's tracking, which records a pinned buffer's own event only while it manages several
    // streams.
    let mut copied: [Option<CudaEvent>; 2] = [None, None];
    let mut out = Vec::with_capacity(count);
    for p in 0..=parts.len() {
        // Part p goes to buffer p % 2 while part p - 1 is read from the other.
        let (copy_into, read_from) = if p % 2 == 0 { (&mut *first, &*second) } else { (&mut *second, &*first) };
        if p < parts.len() {
            // Into as much of the buffer as the part fills: a copy fills its whole destination.
            stream.memcpy_dtoh(&rows.slice(parts[p].clone()), &mut copy_into.as_mut_slice()?[..parts[p].len()])?;
            copied[p % 2] = Some(stream.record_event(None)?);
        }
        if p > 0 {
            let waited = Instant::now();
            copied[(p - 1) % 2].take().expect("a copy was made into it").synchronize()?;
            let values = read_from.as_slice()?;
            timings.transfers += waited.elapsed();
            let building = Instant::now();
            out.par_extend(values[..parts[p - 1].len()].par_chunks_exact(width).map(|row| as_field(row).to_vec()));
            timings.host += building.elapsed();
        }
    }
    Ok(out)
}

/// Field elements as the `u64`s they wrap (`GoldilocksField` is `repr(transparent)`).
fn as_u64s(values: &[F]) -> &[u64] {
    // SAFETY: `GoldilocksField` is a `repr(transparent)` wrapper of `u64`.
    unsafe { std::slice::from_raw_parts(values.as_ptr().cast::<u64>(), values.len()) }
}

/// `u64`s as field elements (any `u64` is a valid, possibly unreduced, element).
fn as_field(values: &[u64]) -> &[F] {
    // SAFETY: as for `as_u64s`.
    unsafe { std::slice::from_raw_parts(values.as_ptr().cast::<F>(), values.len()) }
}

/// The kernels' source with plonky2's Poseidon tables written in (the round constants, and the
/// MDS layer unrolled with its (small) constants as literals) and Keccak-f's round constants and
/// rotations, the CPU Keccak's.
fn kernel_source() -> String {
    const KERNELS: &str = include_str!("cuda/kernels.cu");
    const MARKER: &str = "// @POSEIDON_TABLES@";
    let mut tables = String::new();
    let constants: Vec<String> = ALL_ROUND_CONSTANTS[..SPONGE_WIDTH * N_ROUNDS].iter().map(|&c| format!("{}ULL", F::from_noncanonical_u64(c).to_canonical_u64())).collect();
    writeln!(tables, "__constant__ u64 ROUND_CONSTANTS[{}] = {{{}}};", constants.len(), constants.join(", ")).expect("writing to a string");
    tables.push_str("static __device__ __forceinline__ void mds_layer(u64 s[12]) {\n    u64 out[12];\n");
    // gl_reduce_halves takes sums of halves below 2^41: each row's constants sum below 2^9.
    let row_sum: u64 = <F as Poseidon>::MDS_MATRIX_CIRC.iter().chain(&<F as Poseidon>::MDS_MATRIX_DIAG).sum();
    assert!(row_sum < 1 << 9, "the MDS constants are small");
    for r in 0..SPONGE_WIDTH {
        tables.push_str("    {\n        u64 lo = 0, hi = 0;\n");
        for i in 0..SPONGE_WIDTH {
            // Row r: the circulant's constant i times s[(i + r) % 12], plus the diagonal's at i = 0.
            let c = <F as Poseidon>::MDS_MATRIX_CIRC[i] + if i == 0 { <F as Poseidon>::MDS_MATRIX_DIAG[r] } else { 0 };
            writeln!(tables, "        MDS_TERM(lo, hi, s[{}], {c}ULL);", (i + r) % SPONGE_WIDTH).expect("writing to a string");
        }
        writeln!(tables, "        out[{r}] = gl_reduce_halves(lo, hi);\n    }}").expect("writing to a string");
    }
    tables.push_str("#pragma unroll\n    for (int i = 0; i < 12; i++) s[i] = out[i];\n}\n");
    assert!(KERNELS.contains(MARKER), "the kernels mark where the Poseidon tables go");
    const KECCAK_MARKER: &str = "// @KECCAK_TABLES@";
    let hex: Vec<String> = crate::keccak::ROUND_CONSTANTS.iter().map(|c| format!("0x{c:016X}ULL")).collect();
    let rho: Vec<String> = crate::keccak::RHO.iter().map(u32::to_string).collect();
    let keccak = format!("__constant__ u64 KECCAK_ROUND_CONSTANTS[{}] = {{{}}};\n#define KECCAK_RHO {{{}}}\n", hex.len(), hex.join(", "), rho.join(", "));
    assert!(KERNELS.contains(KECCAK_MARKER), "the kernels mark where the Keccak tables go");
    KERNELS.replacen(MARKER, &tables, 1).replacen(KECCAK_MARKER, &keccak, 1)
}

/// Compiles the kernels to PTX for `arch` (`compute_90`, say).
fn compile(arch: &str) -> Result<cudarc::nvrtc::Ptx, CudaError> {
    let options = CompileOptions { options: vec![format!("--gpu-architecture={arch}")], ..Default::default() };
    compile_ptx_with_opts(kernel_source(), options).map_err(|e| CudaError::Compile(e.to_string()))
}

#[cfg(test)]
mod tests {
    use plonky2::field::types::Sample;
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::cpu::CpuBackend;

    /// The backend, or `None` with the reason printed: CUDA tests pass trivially without a GPU
    /// (CI has none) and say so.
    fn gpu(test: &str) -> Option<CudaBackend> {
        match CudaBackend::new() {
            Ok(backend) => Some(backend),
            Err(e) => {
                eprintln!("skipped {test}: no CUDA backend here ({e})");
                None
            }
        }
    }

    /// A call the GPU fails is done on the CPU, whose results would pass these tests.
    fn assert_no_failures(cuda: &CudaBackend) {
        assert_eq!(cuda.timings().failures, 0, "calls failed on the GPU (see the error logs)");
    }

    #[test]
    fn the_proof_of_work_found_on_the_gpu_is_the_smallest() {
        let Some(cuda) = gpu("the_proof_of_work_found_on_the_gpu_is_the_smallest") else { return };
        // The smallest candidate, by permutations on the CPU, a chunk at a time.
        let smallest = |state: &State, at: usize, leading_zeros: u32| {
            (0u64..).step_by(4096).find_map(|first| {
                let mut states: Vec<State> = (first..first + 4096).map(|c| { let mut s = *state; s[at] = c; s }).collect();
                crate::poseidon::permute_all(&mut states, crate::cpu::Simd::detect());
                states.iter().position(|s| s[7].leading_zeros() >= leading_zeros).map(|i| first + i as u64)
            }).expect("a witness")
        };
        // Every position a candidate takes; 19 bits usually needs more than one launch's block.
        for (at, bits) in [(0, 1), (3, 8), (7, 12), (5, 16), (1, 19)] {
            let state: State = std::array::from_fn(|_| F::rand().to_canonical_u64());
            let got = ProverBackend::proof_of_work(&cuda, &state, at, bits).expect("searched on the GPU");
            assert_eq!(got, smallest(&state, at, bits), "candidate at {at}, {bits} bits");
        }
        assert_no_failures(&cuda);
    }

    #[test]
    fn memory_freed_on_the_device_stays_reserved_for_the_next_proof() {
        use cudarc::driver::result::{device, mem_pool};
        use cudarc::driver::sys::CUmemPool_attribute::{CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, CU_MEMPOOL_ATTR_USED_MEM_CURRENT};
        let Some(cuda) = gpu("memory_freed_on_the_device_stays_reserved_for_the_next_proof") else { return };
        let stream = cuda.lock().stream.clone();
        if !stream.context().has_async_alloc() {
            eprintln!("skipped memory_freed_on_the_device_stays_reserved_for_the_next_proof: this device has no memory pools");
            return;
        }
        let pool = unsafe { device::get_default_mem_pool(stream.context().cu_device()) }.unwrap();
        let read = |attribute| {
            let mut value = 0u64;
            unsafe { mem_pool::get_attribute(pool, attribute, (&raw mut value).cast()) }.unwrap();
            value
        };
        // As large as a 2^16 circuit's wires' LDE.
        let size = 512usize << 20;
        drop(unsafe { stream.alloc::<u8>(size) }.unwrap());
        // A synchronization is where a pool hands memory above its threshold back to the driver.
        stream.synchronize().unwrap();
        let (reserved, used) = (read(CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), read(CU_MEMPOOL_ATTR_USED_MEM_CURRENT));
        assert!(reserved - used >= size as u64, "{reserved} bytes reserved, {used} in use: the freed {size} went back to the driver");
    }

    #[test]
    fn peak_bandwidth_is_two_transfers_a_clock_over_the_bus() {
        // An H100 SXM's HBM3: 2,619 MHz over 5,120 bits, about 3.35 TB/s.
        let h100 = peak_bandwidth(2_619_000, 5120).unwrap();
        assert!((h100 - 3.352e12).abs() < 1e9, "{h100}");
        assert_eq!(peak_bandwidth(0, 5120), None, "a driver that reports no clock");
    }

    #[test]
    fn the_merkle_kernels_throughput_is_measured_below_the_devices_peak() {
        let Some(cuda) = gpu("the_merkle_kernels_throughput_is_measured_below_the_devices_peak") else { return };
        for hash in [TreeHash::Poseidon, TreeHash::Keccak] {
            let throughput = cuda.merkle_throughput(hash, 12, 135, 4).unwrap();
            // 2^12 leaves of 135 read; 2^13 - 16 digests of 32 bytes written, all but the cap's 16 read again.
            assert_eq!(throughput.bytes, 8 * 4096 * 135 + 32 * 8176 + 32 * 8160, "{hash:?}");
            assert!(throughput.seconds > 0.0, "{hash:?}: {throughput:?}");
            if let Some(share) = throughput.share_of_peak() {
                assert!(share > 0.0 && share < 1.0, "{hash:?}: {throughput:?}");
            }
        }
        assert_no_failures(&cuda);
    }

    #[test]
    fn downloads_are_split_into_parts_of_whole_rows() {
        for count in 1..=70 {
            for width in [1, 3, 8] {
                let parts = download_parts(count, width);
                assert!(!parts.is_empty() && parts.len() <= DOWNLOAD_PARTS, "{count} rows: {parts:?}");
                assert_eq!(parts[0].start, 0);
                assert_eq!(parts.last().unwrap().end, count * width, "{count} rows");
                assert!(parts.windows(2).all(|w| w[0].end == w[1].start && w[1].len() <= w[0].len()), "{count} rows: {parts:?}");
                assert!(parts.iter().all(|p| !p.is_empty() && p.len() % width == 0), "{count} rows of {width}: {parts:?}");
            }
        }
    }

    #[test]
    fn kernels_compile_wherever_nvrtc_is() {
        if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
            eprintln!("skipped kernels_compile_wherever_nvrtc_is: {}", CudaError::NoNvrtc);
            return;
        }
        // Hopper, the oldest architecture we deploy on, and Turing, NVRTC 13's oldest.
        for arch in ["compute_90", "compute_75"] {
            compile(arch).unwrap_or_else(|e| panic!("{arch}: {e}"));
        }
    }

    #[test]
    fn the_mds_layer_is_plonky2s() {
        let source = kernel_source();
        assert!(!source.contains("@POSEIDON_TABLES@") && !source.contains("@KECCAK_TABLES@"));
        // Row 0 folds the diagonal (8) into the circulant's first constant (17).
        assert!(source.contains("MDS_TERM(lo, hi, s[0], 25ULL);"), "{source}");
        assert!(source.contains(&format!("{}ULL", ALL_ROUND_CONSTANTS[0])));
    }

    /// The kernels compiled for the CPU by the host's C++ compiler (`cuda/host.cpp`), once per
    /// test process: their arithmetic checked wherever the tests run, not only where a GPU is lent.
    fn host_kernels() -> &'static std::path::Path {
        static HOST: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
        HOST.get_or_init(|| {
            let dir = std::env::temp_dir().join(format!("via-kernels-on-the-host-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("kernels.cu"), kernel_source()).unwrap();
            std::fs::write(dir.join("host.cpp"), include_str!("cuda/host.cpp")).unwrap();
            let host = dir.join("host");
            let compiled = std::process::Command::new("c++").args(["-O1", "-std=c++17", "-Wno-unknown-pragmas", "-o"]).arg(&host).arg(dir.join("host.cpp")).output();
            let compiled = compiled.unwrap_or_else(|e| panic!("running c++, a C++ compiler (infra/install.sh installs g++): {e}"));
            assert!(compiled.status.success(), "compiling the kernels for the host: {}", String::from_utf8_lossy(&compiled.stderr));
            host
        })
    }

    /// What the host-compiled kernels of `mode` make of `input` (see `cuda/host.cpp`).
    fn on_the_host(mode: &str, input: &[u64]) -> Vec<u64> {
        let host = host_kernels();
        let unique = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let (input_path, output_path) = (host.with_extension(format!("{mode}-{unique}.in")), host.with_extension(format!("{mode}-{unique}.out")));
        std::fs::write(&input_path, input.iter().flat_map(|w| w.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
        let status = std::process::Command::new(host).arg(mode).arg(&input_path).arg(&output_path).status().unwrap();
        assert!(status.success(), "the host driver, {mode}: {status}");
        let out = std::fs::read(&output_path).unwrap().chunks_exact(8).map(|b| u64::from_le_bytes(b.try_into().expect("eight bytes"))).collect();
        std::fs::remove_file(input_path).ok();
        std::fs::remove_file(output_path).ok();
        out
    }

    #[test]
    fn the_tree_kernels_compiled_for_the_host_hash_as_the_cpu_backend() {
        // The cap's words as the kernels hash it, from leaves laid out as rows or as columns.
        let cap_words = |hash: &str, leaves: &[Vec<F>], cap_height: usize, layout: u64| -> Vec<u64> {
            let mut input = vec![leaves.len() as u64, leaves[0].len() as u64, cap_height as u64, layout];
            input.extend(leaves.iter().flatten().map(|x| x.0));
            on_the_host(hash, &input)
        };
        let cpu = CpuBackend::detect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(26);
        for log_leaves in [0, 1, 3, 6] {
            // Around the no-hash limits (Poseidon 4, Keccak 3), Poseidon's rate (8), Keccak's
            // (17), and a wire count.
            for width in [1, 3, 4, 5, 8, 9, 17, 18, 34, 135] {
                // Unreduced elements too: plonky2 keeps some, and the kernels must reduce them.
                let leaves: Vec<Vec<F>> = (0..1usize << log_leaves).map(|_| (0..width).map(|_| F::from_noncanonical_u64(rng.r#gen())).collect()).collect();
                for cap_height in [0, 2, log_leaves].into_iter().filter(|c| *c <= log_leaves) {
                    let poseidon = cpu.merkle_tree(leaves.clone(), cap_height).cap.0;
                    let keccak = crate::keccak::merkle_tree::<25>(leaves.clone(), cap_height, Simd::detect()).cap.0;
                    for layout in [0, 1] {
                        let what = format!("2^{log_leaves} leaves of {width}, cap height {cap_height}, layout {layout}");
                        let words = cap_words("poseidon", &leaves, cap_height, layout);
                        assert_eq!(words.chunks_exact(4).map(PoseidonHash::digest).collect::<Vec<_>>(), poseidon, "Poseidon, {what}");
                        let words = cap_words("keccak", &leaves, cap_height, layout);
                        assert!(words.chunks_exact(4).all(|w| w[3] >> 8 == 0), "Keccak, {what}: a digest's 25 bytes and zeros");
                        assert_eq!(words.chunks_exact(4).map(Keccak::digest).collect::<Vec<_>>(), keccak, "Keccak, {what}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_mds_layers_reduction_compiled_for_the_host_is_128_bit_arithmetic() {
        let (pairs, expected): (Vec<(u64, u64)>, Vec<u64>) = crate::poseidon::tests::mds_halves_cases().into_iter().unzip();
        let reduced = on_the_host("mds_halves", &pairs.iter().flat_map(|&(l, h)| [l, h]).collect::<Vec<_>>());
        assert_eq!(reduced, expected, "canonical, and equal to the sums modulo p");
    }

    #[test]
    fn the_permutation_kernels_compiled_for_the_host_make_z_and_the_partial_products() {
        // A row of one chunk, a last chunk short of the others, and a standard circuit's 80
        // routed wires in chunks of 8; down to two rows, and more rows than a segment.
        for (log_n, routed, chunk) in [(1, 5, 8), (3, 20, 8), (6, 80, 8), (7, 13, 4)] {
            let n = 1usize << log_n;
            let points: Vec<F> = F::two_adic_subgroup(log_n);
            let ks: Vec<F> = (0..routed).map(|_| F::rand()).collect();
            let wires: Vec<Vec<F>> = (0..routed).map(|_| F::rand_vec(n)).collect();
            // Sigmas at random (Z does not return to one), and the identity (it does).
            let identity: Vec<Vec<F>> = ks.iter().map(|&k| points.iter().map(|&x| k * x).collect()).collect();
            for (sigmas, holds) in [((0..routed).map(|_| F::rand_vec(n)).collect::<Vec<_>>(), false), (identity, true)] {
                let (betas, gammas) = (F::rand_vec(2), F::rand_vec(2));
                let beta_ks: Vec<Vec<F>> = betas.iter().map(|&beta| ks.iter().map(|&k| beta * k).collect()).collect();
                let shape = PermutationShape::new(log_n, routed, chunk, 2);
                let mut input = vec![log_n as u64, routed as u64, chunk as u64, 2, shape.segment as u64];
                for values in [&wires, &sigmas] {
                    input.extend(values.iter().flatten().map(|x| x.to_canonical_u64()));
                }
                input.extend(points.iter().chain(&betas).chain(&gammas).chain(beta_ks.iter().flatten()).map(|x| x.to_canonical_u64()));
                let out = on_the_host("permutation", &input);
                // The definition, row by row: Z(g^0) = 1, and each chunk's quotient taken in turn.
                let width = routed.div_ceil(chunk);
                let (mut zs, mut partials, mut totals) = (Vec::new(), Vec::new(), Vec::new());
                for r in 0..2 {
                    let (mut z, mut column, mut rows) = (F::ONE, Vec::new(), vec![Vec::new(); width - 1]);
                    for i in 0..n {
                        column.push(z);
                        for c in 0..width {
                            let wires_of_chunk = c * chunk..((c + 1) * chunk).min(routed);
                            let numerator: F = wires_of_chunk.clone().map(|j| wires[j][i] + beta_ks[r][j] * points[i] + gammas[r]).product();
                            let denominator: F = wires_of_chunk.map(|j| wires[j][i] + betas[r] * sigmas[j][i] + gammas[r]).product();
                            z *= numerator / denominator;
                            if let Some(partial) = rows.get_mut(c) {
                                partial.push(z);
                            }
                        }
                    }
                    zs.push(column);
                    partials.extend(rows);
                    totals.push(z);
                }
                let expected: Vec<u64> = zs.iter().chain(&partials).flatten().chain(&totals).map(|x| x.to_canonical_u64()).collect();
                assert_eq!(out, expected, "2^{log_n} rows, {routed} routed wires in chunks of {chunk}, the permutation holds: {holds}");
                assert_eq!(totals.iter().all(|t| *t == F::ONE), holds, "Z returns to one exactly where the permutation holds");
            }
        }
    }

    #[test]
    fn cuda_trees_equal_the_cpu_backends() {
        let Some(cuda) = gpu("cuda_trees_equal_the_cpu_backends") else { return };
        let mut rng = rand::rngs::StdRng::seed_from_u64(21);
        let cpu = CpuBackend::detect();
        for log_leaves in [0, 1, 2, 3, 5, 10, 14] {
            // Around the no-hash limit (4) and the sponge rate (8), a wire count, and one salted.
            for width in [1, 4, 5, 8, 9, 16, 135, 139] {
                // Unreduced elements too: plonky2 keeps some, and the kernels must reduce them.
                let leaves: Vec<Vec<F>> = (0..1usize << log_leaves).map(|_| (0..width).map(|_| F::from_noncanonical_u64(rng.r#gen())).collect()).collect();
                for cap_height in [0, 1, 4, log_leaves].into_iter().filter(|c| *c <= log_leaves) {
                    let expected = cpu.merkle_tree(leaves.clone(), cap_height);
                    let got = cuda.merkle_tree(leaves.clone(), cap_height);
                    assert!(got == expected, "2^{log_leaves} leaves of {width}, cap height {cap_height}");
                }
            }
        }
        assert_no_failures(&cuda);
    }

    #[test]
    fn cuda_ldes_equal_the_cpu_backends() {
        let Some(cuda) = gpu("cuda_ldes_equal_the_cpu_backends") else { return };
        let cpu = CpuBackend::detect();
        // Down to one coefficient, odd polynomial counts, and a production-sized batch.
        // The largest is a 2^16 circuit's wires: its rows come down in parts larger than a copy
        // takes to finish while the host reads the one before.
        for (log_n, count, rate_bits) in [(0, 1, 1), (0, 3, 3), (1, 1, 1), (2, 7, 2), (4, 17, 3), (10, 5, 1), (10, 9, 7), (12, 135, 3), (15, 20, 3), (16, 135, 3)] {
            let polynomials: Vec<PolynomialCoeffs<F>> = (0..count).map(|_| PolynomialCoeffs::new(F::rand_vec(1 << log_n))).collect();
            let expected = cpu.lde_rows(&polynomials, rate_bits);
            let got = cuda.lde_rows(&polynomials, rate_bits);
            assert!(got == expected, "{count} polynomials of 2^{log_n} at rate bits {rate_bits}");
        }
        let timings = cuda.timings();
        assert!(timings.kernels > Duration::ZERO && timings.transfers > Duration::ZERO, "{timings:?}");
        assert_no_failures(&cuda);
    }

    #[test]
    fn cuda_interpolation_equals_plonky2s() {
        let Some(cuda) = gpu("cuda_interpolation_equals_plonky2s") else { return };
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        // Down to one value, odd counts (downloaded in uneven parts), a 2^16 circuit's wires, and
        // values plonky2 leaves unreduced (at or above the order).
        for (log_n, count) in [(0, 1), (0, 3), (1, 2), (3, 9), (7, 1), (10, 17), (16, 135)] {
            let values: Vec<PolynomialValues<F>> = (0..count).map(|_| PolynomialValues::new((0..1 << log_n).map(|i| if i % 3 == 0 { F::from_noncanonical_u64(rng.gen_range(F::ORDER..=u64::MAX)) } else { F::rand() }).collect())).collect();
            for on_coset in [false, true] {
                let expected: Vec<PolynomialCoeffs<F>> = values.iter().map(|v| if on_coset { v.clone().coset_ifft(F::coset_shift()) } else { v.clone().ifft() }).collect();
                let got = cuda.interpolate(values.clone(), on_coset);
                assert!(got == expected, "{count} polynomials of 2^{log_n}, on the coset: {on_coset}");
            }
        }
        assert_no_failures(&cuda);
    }

    #[test]
    fn cuda_commitment_trees_equal_the_cpu_backends() {
        let Some(cuda) = gpu("cuda_commitment_trees_equal_the_cpu_backends") else { return };
        let cpu = CpuBackend::detect();
        for (log_n, count, rate_bits, cap_height) in [(0, 1, 1, 0), (0, 3, 3, 2), (2, 7, 2, 4), (10, 9, 3, 4), (13, 135, 3, 4), (14, 2, 4, 0)] {
            let polynomials: Vec<PolynomialCoeffs<F>> = (0..count).map(|_| PolynomialCoeffs::new(F::rand_vec(1 << log_n))).collect();
            let shape = format!("{count} polynomials of 2^{log_n} at rate bits {rate_bits}, cap height {cap_height}");
            let expected = cpu.lde_merkle_tree(&polynomials, rate_bits, 0, cap_height);
            assert!(cuda.lde_merkle_tree(&polynomials, rate_bits, 0, cap_height) == expected, "{shape}");
            // Salted: the rows are the LDE's and four fresh elements, and the tree is over them.
            let salted = cuda.lde_merkle_tree(&polynomials, rate_bits, 4, cap_height);
            assert!(salted.leaves.iter().zip(&expected.leaves).all(|(s, e)| s.len() == count + 4 && s[..count] == e[..]), "{shape}: salted rows");
            assert!(cpu.merkle_tree(salted.leaves.clone(), cap_height) == salted, "{shape}: salted tree");
            assert_ne!(salted.leaves[0][count..], cuda.lde_merkle_tree(&polynomials, rate_bits, 4, cap_height).leaves[0][count..], "{shape}: fresh salt");
        }
        assert_no_failures(&cuda);
    }

    #[test]
    fn paths_gathered_where_the_levels_lie_are_plonky2s() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(23);
        for (log_leaves, cap_height) in [(0, 0), (1, 0), (3, 1), (6, 4), (6, 6)] {
            let leaves: Vec<Vec<F>> = (0..1usize << log_leaves).map(|_| (0..9).map(|_| F::from_noncanonical_u64(rng.r#gen())).collect()).collect();
            // The digests laid out as the kernels write them, gathered as a fetch does.
            let layout = Levels::new(leaves.len(), log_leaves - cap_height);
            let mut flat = vec![0; layout.total];
            for (level, &at) in CpuBackend::detect().tree_levels(&leaves, cap_height).iter().zip(&layout.offsets) {
                for (i, d) in level.iter().enumerate() {
                    for (e, x) in d.elements.iter().enumerate() {
                        flat[at + 4 * i + e] = x.to_canonical_u64();
                    }
                }
            }
            let tree = MerkleTree::<F, PoseidonHash>::new(leaves, cap_height);
            assert_eq!(flat[layout.cap()].chunks_exact(4).map(PoseidonHash::digest).collect::<Vec<_>>(), tree.cap.0);
            for index in 0..1usize << log_leaves {
                let elements: Vec<u64> = layout.path_positions(index).map(|p| flat[p as usize]).collect();
                let siblings = elements.chunks_exact(4).map(PoseidonHash::digest).collect();
                assert_eq!(MerkleProof { siblings }, tree.prove(index), "2^{log_leaves} leaves, cap height {cap_height}, leaf {index}");
            }
        }
    }

    #[test]
    fn commitments_to_values_equal_the_cpu_backends() {
        let Some(cuda) = gpu("commitments_to_values_equal_the_cpu_backends") else { return };
        let cpu = CpuBackend::detect();
        // Odd counts come down in uneven parts; the largest is a 2^16 circuit's wires.
        for (log_n, count, rate_bits, cap_height) in [(0, 1, 1, 0), (0, 3, 3, 2), (2, 7, 2, 4), (10, 20, 3, 4), (16, 135, 3, 4)] {
            let values: Vec<PolynomialValues<F>> = (0..count).map(|_| PolynomialValues::new(F::rand_vec(1 << log_n))).collect();
            let shape = format!("{count} polynomials of 2^{log_n} at rate bits {rate_bits}, cap height {cap_height}");
            let (expected_coefficients, expected) = cpu.commit_values(&values, rate_bits, 0, cap_height);
            let (coefficients, committed) = cuda.commit_values(&values, rate_bits, 0, cap_height);
            assert!(coefficients == expected_coefficients, "{shape}: coefficients");
            assert_eq!(committed.cap(), expected.cap(), "{shape}");
            assert!(*committed.rows().unwrap() == *expected.rows().unwrap(), "{shape}: every row");
            // Salted: the same coefficients, and every row the LDE's and four elements.
            let (coefficients, salted) = cuda.commit_values(&values, rate_bits, 4, cap_height);
            assert!(coefficients == expected_coefficients, "{shape}: salted, coefficients");
            let (rows, expected_rows) = (salted.rows().unwrap(), expected.rows().unwrap());
            assert!(rows.iter().zip(expected_rows.iter()).all(|(row, expected)| row.len() == count + 4 && row[..count] == expected[..]), "{shape}: salted rows");
        }
        assert_no_failures(&cuda);
    }

    #[test]
    fn commitments_left_on_the_device_open_the_cpu_backends_rows() {
        let Some(cuda) = gpu("commitments_left_on_the_device_open_the_cpu_backends_rows") else { return };
        let cpu = CpuBackend::detect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(24);
        for (log_n, count, rate_bits, cap_height) in [(0, 1, 1, 0), (0, 3, 3, 2), (2, 7, 2, 4), (10, 9, 3, 4), (13, 135, 3, 4), (16, 135, 3, 4)] {
            let polynomials: Vec<PolynomialCoeffs<F>> = (0..count).map(|_| PolynomialCoeffs::new(F::rand_vec(1 << log_n))).collect();
            let shape = format!("{count} polynomials of 2^{log_n} at rate bits {rate_bits}, cap height {cap_height}");
            let expected = cpu.lde_merkle_tree(&polynomials, rate_bits, 0, cap_height);
            let last = expected.leaves.len() - 1;
            let mut indices = vec![0, last, last / 2, 0];
            indices.extend((0..28).map(|_| rng.gen_range(0..=last)));
            let committed = cuda.commit_lde(&polynomials, rate_bits, 0, cap_height);
            assert_eq!(committed.cap(), &expected.cap, "{shape}");
            let opened = committed.open(&indices).unwrap();
            for (&index, (row, path)) in indices.iter().zip(&opened) {
                assert_eq!((row.as_slice(), path), (expected.get(index), &expected.prove(index)), "{shape}: row {index}");
            }
            assert!(*committed.rows().unwrap() == expected.leaves, "{shape}: every row");
            // Salted: the opened rows are the LDE's and four elements, and open to the cap.
            let salted = cuda.commit_lde(&polynomials, rate_bits, 4, cap_height);
            for (&index, (row, path)) in indices.iter().zip(salted.open(&indices).unwrap()) {
                assert_eq!(row[..count], expected.get(index)[..], "{shape}: salted row {index}");
                assert_eq!(row.len(), count + 4);
                plonky2::hash::merkle_proofs::verify_merkle_proof_to_cap::<F, PoseidonHash>(row, index, salted.cap(), &path).unwrap_or_else(|e| panic!("{shape}: salted row {index}: {e}"));
            }
        }
        assert_no_failures(&cuda);
    }

    #[test]
    fn keccak_commitments_left_on_the_device_are_the_cpu_backends() {
        let Some(cuda) = gpu("keccak_commitments_left_on_the_device_are_the_cpu_backends") else { return };
        let cpu = CpuBackend::detect();
        let simd = Simd::detect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(25);
        // Rows of up to three elements are their own digests; 17 fill Keccak's rate exactly; the
        // last is a final layer's wires at its rate, 1/256.
        for (log_n, count, rate_bits, cap_height) in [(0, 1, 1, 0), (0, 3, 3, 2), (2, 4, 2, 4), (3, 17, 3, 4), (10, 20, 3, 4), (12, 135, 8, 4)] {
            let shape = format!("{count} polynomials of 2^{log_n} at rate bits {rate_bits}, cap height {cap_height}");
            let values: Vec<PolynomialValues<F>> = (0..count).map(|_| PolynomialValues::new(F::rand_vec(1 << log_n))).collect();
            let polynomials = cpu.interpolate(values.clone(), false);
            let expected = crate::keccak::merkle_tree::<25>(cpu.lde_rows(&polynomials, rate_bits), cap_height, simd);
            let last = expected.leaves.len() - 1;
            let mut indices = vec![0, last, last / 2];
            indices.extend((0..28).map(|_| rng.gen_range(0..=last)));

            let committed = cuda.commit_lde_keccak(&polynomials, rate_bits, 0, cap_height).expect("committed on the GPU");
            assert_eq!(committed.cap(), &expected.cap, "{shape}");
            for (&index, (row, path)) in indices.iter().zip(committed.open(&indices).unwrap()) {
                assert_eq!((row.as_slice(), path), (expected.get(index), expected.prove(index)), "{shape}: row {index}");
            }
            assert!(*committed.rows().unwrap() == expected.leaves, "{shape}: every row");

            let (coefficients, committed) = cuda.commit_values_keccak(&values, rate_bits, 0, cap_height).expect("committed on the GPU");
            assert!(coefficients == polynomials, "{shape}: coefficients");
            assert_eq!(committed.cap(), &expected.cap, "{shape}: from values");

            // Salted: the opened rows are the LDE's and four elements, and open to the cap.
            let salted = cuda.commit_lde_keccak(&polynomials, rate_bits, 4, cap_height).expect("committed on the GPU");
            for (&index, (row, path)) in indices.iter().zip(salted.open(&indices).unwrap()) {
                assert_eq!((&row[..count], row.len()), (expected.get(index), count + 4), "{shape}: salted row {index}");
                plonky2::hash::merkle_proofs::verify_merkle_proof_to_cap::<F, Keccak>(row, index, salted.cap(), &path).unwrap_or_else(|e| panic!("{shape}: salted row {index}: {e}"));
            }
        }
        assert_no_failures(&cuda);
    }

    #[test]
    fn a_second_call_reuses_the_buffers() {
        let Some(cuda) = gpu("a_second_call_reuses_the_buffers") else { return };
        let polynomials: Vec<PolynomialCoeffs<F>> = (0..4).map(|_| PolynomialCoeffs::new(F::rand_vec(1 << 8))).collect();
        let first = cuda.lde_rows(&polynomials, 2);
        let input = cuda.lock().buffers.input.as_ref().map(|b| b.len());
        // A smaller call after a larger one must read only its own part of the kept buffers.
        let smaller = cuda.lde_rows(&polynomials[..1], 1);
        assert_eq!(cuda.lock().buffers.input.as_ref().map(|b| b.len()), input);
        assert_eq!(smaller, CpuBackend::detect().lde_rows(&polynomials[..1], 1));
        assert_eq!(cuda.lde_rows(&polynomials, 2), first);
        assert_no_failures(&cuda);
    }
}
