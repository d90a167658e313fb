// The CUDA backend's kernels: Goldilocks arithmetic, plonky2's Poseidon permutation, the coset
// LDE as a radix-2 NTT, the transposition to Merkle rows, and Merkle tree hashing.
//
// Compiled at run time by NVRTC. The host writes plonky2's Poseidon tables in at the marker
// below: the round constants as `ROUND_CONSTANTS` and the MDS layer as the function
// `mds_layer`, both generated from plonky2's own constants, so nothing here is copied by hand.
//
// Every value a kernel writes is canonical (below the field's order); values read from the host
// may not be (plonky2 keeps some field elements unreduced), so kernels reduce what they load.
// No kernel uses shared memory or block-level synchronization: each thread owns its outputs.

typedef unsigned long long u64;
typedef unsigned int u32;

#define GL_ORDER 0xFFFFFFFF00000001ULL
// 2^64 - GL_ORDER = 2^32 - 1: what a wrapped 2^64 is worth.
#define GL_EPSILON 0xFFFFFFFFULL

static __device__ __forceinline__ u64 gl_canonical(u64 x) {
    return x >= GL_ORDER ? x - GL_ORDER : x;
}

// a + b for canonical a and b. A carry out is 2^64 = EPSILON; the sum then stays below the order.
static __device__ __forceinline__ u64 gl_add(u64 a, u64 b) {
    u64 s = a + b;
    if (s < a) s += GL_EPSILON;
    return gl_canonical(s);
}

// a - b for canonical a and b. A borrow wrapped by 2^64; the order is 2^64 - EPSILON.
static __device__ __forceinline__ u64 gl_sub(u64 a, u64 b) {
    u64 d = a - b;
    if (a < b) d -= GL_EPSILON;
    return d;
}

// hi * 2^64 + lo modulo the order, using 2^64 = EPSILON and 2^96 = -1 (plonky2's reduce128).
static __device__ __forceinline__ u64 gl_reduce128(u64 lo, u64 hi) {
    u64 hi_hi = hi >> 32;
    u64 hi_lo = hi & GL_EPSILON;
    u64 t0 = lo - hi_hi;
    if (lo < hi_hi) t0 -= GL_EPSILON;
    u64 t1 = hi_lo * GL_EPSILON;
    u64 t2 = t0 + t1;
    if (t2 < t1) t2 += GL_EPSILON;
    return gl_canonical(t2);
}

static __device__ __forceinline__ u64 gl_mul(u64 a, u64 b) {
    return gl_reduce128(a * b, __umul64hi(a, b));
}

// A sum of products of field elements with small constants, kept as the sums of their low and
// high 32-bit halves (each below 2^41 for the MDS layer's constants), reduced once.
static __device__ __forceinline__ u64 gl_reduce_halves(u64 lo, u64 hi) {
    u64 low = lo + (hi << 32);
    u64 high = (hi >> 32) + (low < lo ? 1 : 0);
    return gl_reduce128(low, high);
}

#define MDS_TERM(lo, hi, x, c) do { lo += (u64)(u32)(x) * (c); hi += ((x) >> 32) * (c); } while (0)

// @POSEIDON_TABLES@

// x^7, Poseidon's S-box.
static __device__ __forceinline__ u64 sbox(u64 x) {
    u64 x2 = gl_mul(x, x);
    u64 x3 = gl_mul(x, x2);
    u64 x4 = gl_mul(x2, x2);
    return gl_mul(x3, x4);
}

static __device__ __forceinline__ void full_round(u64 s[12], int round) {
#pragma unroll
    for (int i = 0; i < 12; i++) s[i] = sbox(gl_add(s[i], ROUND_CONSTANTS[12 * round + i]));
    mds_layer(s);
}

static __device__ __forceinline__ void partial_round(u64 s[12], int round) {
#pragma unroll
    for (int i = 0; i < 12; i++) s[i] = gl_add(s[i], ROUND_CONSTANTS[12 * round + i]);
    s[0] = sbox(s[0]);
    mds_layer(s);
}

// plonky2's Poseidon permutation (width 12, 4 + 22 + 4 rounds), its partial rounds computed
// naively: the same function as plonky2's fast partial rounds, and on a GPU no slower, since
// the naive MDS layer multiplies by small constants only.
static __device__ __forceinline__ void poseidon(u64 s[12]) {
#pragma unroll 1
    for (int r = 0; r < 4; r++) full_round(s, r);
#pragma unroll 1
    for (int r = 4; r < 26; r++) partial_round(s, r);
#pragma unroll 1
    for (int r = 26; r < 30; r++) full_round(s, r);
}

static __device__ __forceinline__ u64 thread_index() {
    return (u64)blockIdx.x * blockDim.x + threadIdx.x;
}

// The digest of each of `count` leaves of `width` elements, leaf i's element k at
// leaves[i * row_stride + k * column_stride] (rows or columns, whichever the caller holds): a
// leaf of at most four elements is its own digest, zero padded; a longer one is absorbed eight
// elements per permutation, overwriting the rate (plonky2's hash_or_noop).
extern "C" __global__ void hash_leaves(const u64* leaves, u64 count, u32 width, u64 row_stride, u64 column_stride, u64* digests) {
    u64 i = thread_index();
    if (i >= count) return;
    const u64* leaf = leaves + i * row_stride;
    u64 s[12];
#pragma unroll
    for (int k = 0; k < 12; k++) s[k] = 0;
    if (width <= 4) {
#pragma unroll
        for (u32 k = 0; k < 4; k++) s[k] = k < width ? gl_canonical(leaf[k * column_stride]) : 0;
    } else {
        for (u32 start = 0; start < width; start += 8) {
#pragma unroll
            for (u32 k = 0; k < 8; k++) {
                if (start + k < width) s[k] = gl_canonical(leaf[(start + k) * column_stride]);
            }
            poseidon(s);
        }
    }
#pragma unroll
    for (int k = 0; k < 4; k++) digests[4 * i + k] = s[k];
}

// The next level up: parent i is plonky2's two_to_one of children 2i and 2i + 1.
extern "C" __global__ void compress_pairs(const u64* children, u64 count, u64* parents) {
    u64 i = thread_index();
    if (i >= count) return;
    u64 s[12];
#pragma unroll
    for (int k = 0; k < 8; k++) s[k] = children[8 * i + k];
#pragma unroll
    for (int k = 8; k < 12; k++) s[k] = 0;
    poseidon(s);
#pragma unroll
    for (int k = 0; k < 4; k++) parents[4 * i + k] = s[k];
}

// The NTT's input: each polynomial's coefficients times the coset shift's powers (so that the
// NTT evaluates p(g x)), zero padded to the LDE's size. Polynomial j's coefficients at
// coeffs[j << log_n ..], its padded column at out[j << log_size ..].
extern "C" __global__ void coset_spread(const u64* coeffs, u32 log_n, u32 log_size, const u64* shift_powers, u64 total, u64* out) {
    u64 t = thread_index();
    if (t >= total) return;
    u64 column = t >> log_size;
    u64 i = t & ((1ULL << log_size) - 1);
    out[t] = i < (1ULL << log_n) ? gl_mul(gl_canonical(coeffs[(column << log_n) + i]), shift_powers[i]) : 0;
}

// One radix-2 decimation-in-frequency stage over every column at once: butterflies of span
// 2^log_half. After the stages for log_half = log_size - 1 down to 0, a column holds its
// evaluations in bit-reversed order, the order plonky2 lays Merkle leaves out in.
// twiddles[t] = w^t for the LDE's root of unity w, t < size / 2.
extern "C" __global__ void dif_stage(u64* data, u32 log_size, u32 log_half, const u64* twiddles, u64 butterflies) {
    u64 t = thread_index();
    if (t >= butterflies) return;
    u64 column = t >> (log_size - 1);
    u64 b = t & ((1ULL << (log_size - 1)) - 1);
    u64 half = 1ULL << log_half;
    u64 i = b & (half - 1);
    u64 at = (column << log_size) + ((b >> log_half) << (log_half + 1)) + i;
    u64 x = data[at];
    u64 y = data[at + half];
    data[at] = gl_add(x, y);
    data[at + half] = gl_mul(gl_sub(x, y), twiddles[i << (log_size - 1 - log_half)]);
}

// Columns (`columns` of 2^log_size values each) to rows of `columns` values: one thread per
// output element, so writes are coalesced.
extern "C" __global__ void transpose(const u64* in, u64 columns, u32 log_size, u64* out) {
    u64 t = thread_index();
    if (t >= (columns << log_size)) return;
    u64 row = t / columns;
    u64 column = t - row * columns;
    out[t] = in[(column << log_size) + row];
}
