// The CUDA backend's kernels: Goldilocks arithmetic, plonky2's Poseidon permutation, the coset
// LDE as a radix-2 NTT, the transposition to Merkle rows, and Merkle tree hashing with Poseidon
// or (a final layer's trees) Keccak.
//
// Compiled at run time by NVRTC. The host writes plonky2's Poseidon tables in at the marker
// below: the round constants as `ROUND_CONSTANTS` and the MDS layer as the function
// `mds_layer`, both generated from plonky2's own constants; and Keccak-f's round constants and
// rotations at the Keccak marker, from the CPU's Keccak (`keccak.rs`). Nothing here is copied
// by hand.
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
// high 32-bit halves (each below 2^41 for the MDS layer's constants), reduced once: with
// hi = hi_hi * 2^32 + hi_lo, lo + hi * 2^32 is hi_lo * 2^32 + (lo + hi_hi * EPSILON) (2^64 =
// EPSILON), a 64-bit value plus one below 2^42, a sum that wraps past 2^64 at most once. Half
// the work of a general 128-bit reduction.
static __device__ __forceinline__ u64 gl_reduce_halves(u64 lo, u64 hi) {
    u64 small = lo + (hi >> 32) * GL_EPSILON;
    u64 sum = (hi << 32) + small;
    if (sum < small) sum += GL_EPSILON;
    return gl_canonical(sum);
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

// ---- Keccak: a final layer's Merkle trees (plonky2's KeccakHash<25>) --------------------------
// A digest is Keccak-256's first 25 bytes. Kernels write each as four little-endian words, the
// fourth holding the 25th byte and zeros, so the Poseidon trees' layout and gathers serve.

// @KECCAK_TABLES@

// Keccak-256's rate, in 64-bit words (136 bytes).
#define KECCAK_RATE_WORDS 17
// The padding's last bit (pad10*1), at the top of the rate's last word.
#define KECCAK_PAD_END 0x8000000000000000ULL

static __device__ __forceinline__ u64 rotl64(u64 x, u32 n) {
    return n == 0 ? x : (x << n) | (x >> (64 - n));
}

// Keccak-f[1600], word x + 5y of the state at a[x + 5y]. The steps are unrolled, so every index
// and rotation is a constant and the state stays in registers.
static __device__ __forceinline__ void keccak_f(u64 a[25]) {
    const u32 rho[25] = KECCAK_RHO;
#pragma unroll 1
    for (int round = 0; round < 24; round++) {
        u64 c[5];
#pragma unroll
        for (int x = 0; x < 5; x++) c[x] = a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20];
#pragma unroll
        for (int x = 0; x < 5; x++) {
            u64 d = c[(x + 4) % 5] ^ rotl64(c[(x + 1) % 5], 1);
#pragma unroll
            for (int y = 0; y < 5; y++) a[x + 5 * y] ^= d;
        }
        u64 b[25];
#pragma unroll
        for (int x = 0; x < 5; x++) {
#pragma unroll
            for (int y = 0; y < 5; y++) b[y + 5 * ((2 * x + 3 * y) % 5)] = rotl64(a[x + 5 * y], rho[x + 5 * y]);
        }
#pragma unroll
        for (int y = 0; y < 5; y++) {
#pragma unroll
            for (int x = 0; x < 5; x++) a[x + 5 * y] = b[x + 5 * y] ^ (~b[(x + 1) % 5 + 5 * y] & b[(x + 2) % 5 + 5 * y]);
        }
        a[0] ^= KECCAK_ROUND_CONSTANTS[round];
    }
}

// A digest's four words from Keccak's state: its first 25 bytes.
static __device__ __forceinline__ void keccak_digest(const u64 a[25], u64* out) {
    out[0] = a[0];
    out[1] = a[1];
    out[2] = a[2];
    out[3] = a[3] & 0xFF;
}

// The digest of each of `count` leaves of `width` elements, laid out as for hash_leaves: a leaf
// of at most three elements (24 bytes) is its own digest, zero padded; a longer one is hashed
// with Keccak-256, each element as its canonical eight bytes, little-endian (one word), with
// Keccak's original padding (a 0x01 byte after the message, the rate's last bit set).
extern "C" __global__ void keccak_leaves(const u64* leaves, u64 count, u32 width, u64 row_stride, u64 column_stride, u64* digests) {
    u64 i = thread_index();
    if (i >= count) return;
    const u64* leaf = leaves + i * row_stride;
    if (width <= 3) {
#pragma unroll
        for (u32 k = 0; k < 4; k++) digests[4 * i + k] = k < width ? gl_canonical(leaf[k * column_stride]) : 0;
        return;
    }
    u64 a[25];
#pragma unroll
    for (int k = 0; k < 25; k++) a[k] = 0;
    u32 blocks = width / KECCAK_RATE_WORDS + 1;
    for (u32 block = 0; block < blocks; block++) {
        u32 start = block * KECCAK_RATE_WORDS;
#pragma unroll
        for (u32 w = 0; w < KECCAK_RATE_WORDS; w++) {
            u32 k = start + w;
            u64 word = k < width ? gl_canonical(leaf[k * column_stride]) : (k == width ? 0x01 : 0);
            if (w == KECCAK_RATE_WORDS - 1 && block + 1 == blocks) word ^= KECCAK_PAD_END;
            a[w] ^= word;
        }
        keccak_f(a);
    }
    keccak_digest(a, digests + 4 * i);
}

// The next level up: parent i is plonky2's two_to_one of children 2i and 2i + 1, Keccak-256 of
// the left digest's 25 bytes then the right's (50 bytes, padded).
extern "C" __global__ void keccak_pairs(const u64* children, u64 count, u64* parents) {
    u64 i = thread_index();
    if (i >= count) return;
    const u64* l = children + 8 * i;
    const u64* r = l + 4;
    u64 a[25];
#pragma unroll
    for (int k = 0; k < 25; k++) a[k] = 0;
    // Bytes 0-24 the left digest's, 25-49 the right's, then the padding's 0x01 at byte 50.
    a[0] = l[0];
    a[1] = l[1];
    a[2] = l[2];
    a[3] = (l[3] & 0xFF) | (r[0] << 8);
    a[4] = (r[0] >> 56) | (r[1] << 8);
    a[5] = (r[1] >> 56) | (r[2] << 8);
    a[6] = (r[2] >> 56) | ((r[3] & 0xFF) << 8) | (0x01ULL << 16);
    a[KECCAK_RATE_WORDS - 1] = KECCAK_PAD_END;
    keccak_f(a);
    keccak_digest(a, parents + 4 * i);
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

// FRI's proof of work: candidate first + t written at position `at` of the sponge's state
// (after its pending inputs), permuted; the smallest candidate whose challenge (the rate's last
// element) has `leading_zeros` leading zeros goes to *found, which starts at 2^64 - 1.
extern "C" __global__ void proof_of_work(const u64* state, u32 at, u64 first, u64 count, u32 leading_zeros, u64* found) {
    u64 t = thread_index();
    if (t >= count) return;
    u64 s[12];
#pragma unroll
    for (int k = 0; k < 12; k++) s[k] = state[k];
    s[at] = first + t;
    poseidon(s);
    if ((u32)__clzll(s[7]) >= leading_zeros) atomicMin(found, first + t);
}

// Coefficient k of each column from an inverse NTT's output (`dif_stage` run with the inverse
// root's twiddles leaves n times the coefficients in bit-reversed order), times
// scales[k] = 1/n (times the inverse coset shift's k-th power, for values on a coset).
extern "C" __global__ void interpolated(const u64* in, u32 log_n, const u64* scales, u64 total, u64* out) {
    u64 t = thread_index();
    if (t >= total) return;
    u64 column = t >> log_n;
    u64 k = t & ((1ULL << log_n) - 1);
    u64 from = log_n == 0 ? 0 : __brevll(k) >> (64 - log_n);
    out[t] = gl_mul(in[(column << log_n) + from], scales[k]);
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

// out[t] = in[positions[t]]: the rows FRI's queries open (each element's place in the LDE's
// columns) and their Merkle paths (each sibling's place among the tree's digests).
extern "C" __global__ void gather(const u64* in, const u64* positions, u64 count, u64* out) {
    u64 t = thread_index();
    if (t >= count) return;
    out[t] = in[positions[t]];
}

// ---- The quotient -------------------------------------------------------------------------
// Laid out as `via_circuit_prover::quotient` describes it: `GateRecord` and `QuotientShape`
// mirror the Rust structs of that name field for field.

struct GateRecord {
    u32 kind, size, extra, selector_column, group_start, group_end, row, params_offset;
};

struct QuotientShape {
    u32 log_points, log_lde, quotient_degree_bits, num_challenges, num_routed_wires, num_partial_products, chunk, num_constants, selector_prefix, many_selectors, num_gates, num_terms;
};

#define GATE_NOOP 0
#define GATE_ARITHMETIC 1
#define GATE_CONSTANT 2
#define GATE_PUBLIC_INPUT 3
#define GATE_BASE_SUM_BINARY 4
#define GATE_POSEIDON 5
#define GATE_POSEIDON_MDS 6
#define GATE_ARITHMETIC_EXTENSION 7
#define GATE_MUL_EXTENSION 8
#define GATE_REDUCING 9
#define GATE_REDUCING_EXTENSION 10
#define GATE_RANDOM_ACCESS 11
#define GATE_COSET_INTERPOLATION 12
#define MAX_RANDOM_ACCESS_ITEMS 32
// As `quotient::MAX_CHALLENGES`: a circuit with more repetitions is not sent here.
#define MAX_CHALLENGES 4
// plonky2's UNUSED_SELECTOR (u32::MAX).
#define UNUSED_SELECTOR 0xFFFFFFFFULL

static __device__ __forceinline__ u64 gl_pow(u64 x, u64 e) {
    u64 r = 1;
    while (e) {
        if (e & 1) r = gl_mul(r, x);
        x = gl_mul(x, x);
        e >>= 1;
    }
    return r;
}

static __device__ __forceinline__ u64 bit_reverse(u64 x, u32 bits) {
    return bits == 0 ? 0 : __brevll(x) >> (64 - bits);
}

// The quadratic extension F[X]/(X^2 - 7), plonky2's for D = 2.
struct Ext {
    u64 a, b;
};

static __device__ __forceinline__ Ext ext_add(Ext x, Ext y) { return {gl_add(x.a, y.a), gl_add(x.b, y.b)}; }
static __device__ __forceinline__ Ext ext_sub(Ext x, Ext y) { return {gl_sub(x.a, y.a), gl_sub(x.b, y.b)}; }
static __device__ __forceinline__ Ext ext_scale(Ext x, u64 c) { return {gl_mul(x.a, c), gl_mul(x.b, c)}; }
static __device__ __forceinline__ Ext ext_mul(Ext x, Ext y) {
    return {gl_add(gl_mul(x.a, y.a), gl_mul(7, gl_mul(x.b, y.b))), gl_add(gl_mul(x.a, y.b), gl_mul(x.b, y.a))};
}

// One point's sums `sum_t term_t * alpha_a^t`, one per repetition.
struct Terms {
    u64 acc[MAX_CHALLENGES];
    const u64* alpha_powers;
    u32 num_terms, challenges;
};

static __device__ __forceinline__ void add_term(Terms& t, u32 index, u64 term) {
    for (u32 a = 0; a < t.challenges; a++) t.acc[a] = gl_add(t.acc[a], gl_mul(term, t.alpha_powers[a * t.num_terms + index]));
}

// A gate's constraint `j`, times its filter, into term `first + j`.
struct Constraints {
    Terms* terms;
    u32 first;
    u64 filter;
    __device__ __forceinline__ void emit(u32 j, u64 value) { add_term(*terms, first + j, gl_mul(filter, value)); }
    // An extension constraint: two base constraints, its coefficients in order.
    __device__ __forceinline__ void emit_ext(u32 j, Ext value) {
        emit(j, value.a);
        emit(j + 1, value.b);
    }
};

// Where the quotient reads a point's wires and constants-and-sigmas row.
struct Row {
    const u64* wires;
    u64 stride, pos;
    const u64* consts;
    u32 consts_width, local;
    __device__ __forceinline__ u64 wire(u32 k) const { return gl_canonical(wires[(u64)k * stride + pos]); }
    __device__ __forceinline__ Ext ext(u32 k) const { return {wire(k), wire(k + 1)}; }
    // Column k of the constants-and-sigmas row.
    __device__ __forceinline__ u64 column(u32 k) const { return gl_canonical(consts[pos * consts_width + k]); }
    // A gate's own constant k (after the selectors).
    __device__ __forceinline__ u64 constant(u32 k) const { return column(local + k); }
};

// plonky2's PoseidonGate constraints (`eval_unfiltered_base_one`), its partial rounds naive
// like `poseidon` above: the same polynomials in the wires as plonky2's fast partial rounds.
static __device__ void poseidon_gate(Constraints& c, const Row& row) {
    u32 j = 0;
    u64 swap = row.wire(24);
    c.emit(j++, gl_mul(swap, gl_sub(swap, 1)));
    u64 s[12];
    for (int i = 0; i < 4; i++) {
        u64 lhs = row.wire(i), rhs = row.wire(i + 4), delta = row.wire(25 + i);
        c.emit(j++, gl_sub(gl_mul(swap, gl_sub(rhs, lhs)), delta));
        s[i] = gl_add(lhs, delta);
        s[i + 4] = gl_sub(rhs, delta);
    }
    for (int i = 8; i < 12; i++) s[i] = row.wire(i);
    int round = 0;
#pragma unroll 1
    for (int r = 0; r < 4; r++, round++) {
        for (int i = 0; i < 12; i++) s[i] = gl_add(s[i], ROUND_CONSTANTS[12 * round + i]);
        if (r != 0) {
            for (int i = 0; i < 12; i++) {
                u64 sbox_in = row.wire(29 + 12 * (r - 1) + i);
                c.emit(j++, gl_sub(s[i], sbox_in));
                s[i] = sbox_in;
            }
        }
        for (int i = 0; i < 12; i++) s[i] = sbox(s[i]);
        mds_layer(s);
    }
#pragma unroll 1
    for (int r = 0; r < 22; r++, round++) {
        for (int i = 0; i < 12; i++) s[i] = gl_add(s[i], ROUND_CONSTANTS[12 * round + i]);
        u64 sbox_in = row.wire(65 + r);
        c.emit(j++, gl_sub(s[0], sbox_in));
        s[0] = sbox(sbox_in);
        mds_layer(s);
    }
#pragma unroll 1
    for (int r = 0; r < 4; r++, round++) {
        for (int i = 0; i < 12; i++) {
            u64 sbox_in = row.wire(87 + 12 * r + i);
            c.emit(j++, gl_sub(gl_add(s[i], ROUND_CONSTANTS[12 * round + i]), sbox_in));
            s[i] = sbox(sbox_in);
        }
        mds_layer(s);
    }
    for (int i = 0; i < 12; i++) c.emit(j++, gl_sub(s[i], row.wire(12 + i)));
}

// PoseidonMdsGate: 12 extension outputs, Poseidon's MDS layer of the 12 inputs (its constants
// are base-field, so it acts on each coefficient apart).
static __device__ void poseidon_mds_gate(Constraints& c, const Row& r) {
    u64 lo[12], hi[12];
    for (int i = 0; i < 12; i++) {
        lo[i] = r.wire(2 * i);
        hi[i] = r.wire(2 * i + 1);
    }
    mds_layer(lo);
    mds_layer(hi);
    for (int i = 0; i < 12; i++) c.emit_ext(2 * i, ext_sub(r.ext(24 + 2 * i), {lo[i], hi[i]}));
}

// ArithmeticExtensionGate (`mul` = 0) and MulExtensionGate (`mul` = 1).
static __device__ void extension_arithmetic_gate(Constraints& c, const Row& r, u32 ops, bool mul) {
    u64 c0 = r.constant(0), c1 = mul ? 0 : r.constant(1);
    u32 width = mul ? 6 : 8;
    for (u32 op = 0; op < ops; op++) {
        u32 w = width * op;
        Ext computed = ext_scale(ext_mul(r.ext(w), r.ext(w + 2)), c0);
        if (!mul) computed = ext_add(computed, ext_scale(r.ext(w + 4), c1));
        c.emit_ext(2 * op, ext_sub(r.ext(w + (mul ? 4 : 6)), computed));
    }
}

// ReducingGate (base coefficients, `extension` = 0) and ReducingExtensionGate: output at 0,
// alpha at 2, the old accumulator at 4, the coefficients from 6, then the accumulators (the
// last one is the output).
static __device__ void reducing_gate(Constraints& c, const Row& r, u32 coeffs, bool extension) {
    Ext alpha = r.ext(2), acc = r.ext(4);
    u32 accs = 6 + coeffs * (extension ? 2 : 1);
    for (u32 i = 0; i < coeffs; i++) {
        Ext coeff = extension ? r.ext(6 + 2 * i) : Ext{r.wire(6 + i), 0};
        Ext next = i + 1 == coeffs ? r.ext(0) : r.ext(accs + 2 * i);
        c.emit_ext(2 * i, ext_sub(ext_add(ext_mul(acc, alpha), coeff), next));
        acc = next;
    }
}

// RandomAccessGate: per copy, the index's bits are binary and make the index, and folding the
// list by them leaves the claimed element; then the extra constants equal their wires.
static __device__ void random_access_gate(Constraints& c, const Row& r, u32 bits, u32 copies, u32 extra_constants) {
    u32 items = 1u << bits, j = 0;
    u32 routed = (2 + items) * copies + extra_constants;
    for (u32 copy = 0; copy < copies; copy++) {
        u32 base = (2 + items) * copy;
        u64 list[MAX_RANDOM_ACCESS_ITEMS];
        for (u32 i = 0; i < items; i++) list[i] = r.wire(base + 2 + i);
        u64 index = 0;
        for (u32 i = 0; i < bits; i++) {
            u64 b = r.wire(routed + copy * bits + i);
            c.emit(j++, gl_mul(b, gl_sub(b, 1)));
        }
        for (u32 i = bits; i-- > 0;) index = gl_add(gl_add(index, index), r.wire(routed + copy * bits + i));
        c.emit(j++, gl_sub(index, r.wire(base)));
        for (u32 i = 0, len = items; i < bits; i++, len /= 2) {
            u64 b = r.wire(routed + copy * bits + i);
            for (u32 k = 0; k < len / 2; k++) list[k] = gl_add(list[2 * k], gl_mul(b, gl_sub(list[2 * k + 1], list[2 * k])));
        }
        c.emit(j++, gl_sub(list[0], r.wire(base + 1)));
    }
    for (u32 i = 0; i < extra_constants; i++) c.emit(j++, gl_sub(r.constant(i), r.wire((2 + items) * copies + i)));
}

// plonky2's partial_interpolate: the barycentric sums over points [start, end).
static __device__ __forceinline__ void partial_interpolate(const u64* domain, const u64* weights, const Row& r, u32 start, u32 end, Ext x, Ext& eval, Ext& prod) {
    for (u32 k = start; k < end; k++) {
        Ext value = ext_scale(r.ext(1 + 2 * k), weights[k]);
        Ext term = {gl_sub(x.a, domain[k]), x.b};
        eval = ext_add(ext_mul(eval, term), ext_mul(value, prod));
        prod = ext_mul(prod, term);
    }
}

// CosetInterpolationGate: the interpolant of the values on the shifted subgroup, evaluated at
// the point, `degree` points at a time through intermediate wires. `params` holds the subgroup
// then the barycentric weights.
static __device__ void coset_interpolation_gate(Constraints& c, const Row& r, u32 subgroup_bits, u32 degree, const u64* params) {
    u32 points = 1u << subgroup_bits;
    const u64* domain = params;
    const u64* weights = params + points;
    u32 intermediates = (points - 2) / (degree - 1);
    u32 start = 5 + 2 * points;
    u64 shift = r.wire(0);
    Ext point = r.ext(1 + 2 * points), shifted = r.ext(start + 4 * intermediates);
    c.emit_ext(0, ext_sub(point, ext_scale(shifted, shift)));
    Ext eval = {0, 0}, prod = {1, 0};
    partial_interpolate(domain, weights, r, 0, degree, shifted, eval, prod);
    for (u32 i = 0; i < intermediates; i++) {
        Ext intermediate_eval = r.ext(start + 2 * i), intermediate_prod = r.ext(start + 2 * (intermediates + i));
        c.emit_ext(2 + 4 * i, ext_sub(intermediate_eval, eval));
        c.emit_ext(4 + 4 * i, ext_sub(intermediate_prod, prod));
        u32 from = 1 + (degree - 1) * (i + 1);
        u32 to = from + degree - 1 < points ? from + degree - 1 : points;
        eval = intermediate_eval;
        prod = intermediate_prod;
        partial_interpolate(domain, weights, r, from, to, shifted, eval, prod);
    }
    c.emit_ext(2 + 4 * intermediates, ext_sub(r.ext(3 + 2 * points), eval));
}

// The quotient's value at each of 2^log_points points, one thread per point: the vanishing
// terms (permutation argument, then every gate's filtered constraints) combined with powers of
// each repetition's alpha, over Z_H. `wires` and `zs` are LDEs as column-major arrays in the
// LDE's (bit-reversed) order, column k at k * stride; `consts` holds the constants-and-sigmas
// rows, `consts_width` each, in the same order. `params` is laid out as `QuotientInputs::params`
// says. Out: repetition a's value at point i at out[(a << log_points) + i].
extern "C" __global__ void quotient(const u64* wires, u64 wires_stride, const u64* zs, u64 zs_stride, const u64* consts, u32 consts_width, const GateRecord* gates, const u64* params, QuotientShape shape, u64* out) {
    u64 i = thread_index();
    u64 points = 1ULL << shape.log_points;
    if (i >= points) return;
    u32 R = shape.num_challenges, routed = shape.num_routed_wires, prods = shape.num_partial_products;
    u64 period = 1ULL << shape.quotient_degree_bits;
    const u64* pi_hash = params;
    const u64* betas = pi_hash + 4;
    const u64* gammas = betas + R;
    const u64* beta_ks = gammas + R;
    const u64* alpha_powers = beta_ks + R * routed;
    const u64* zh_evals = alpha_powers + R * shape.num_terms;
    const u64* zh_inverses = zh_evals + period;
    u64 n = zh_inverses[period], shift = zh_inverses[period + 1], omega = zh_inverses[period + 2];
    const u64* gate_params = zh_inverses + period + 3;

    u32 step_bits = shape.log_lde - shape.log_points;
    u64 pos = bit_reverse(i << step_bits, shape.log_lde);
    u64 next_pos = bit_reverse(((i + period) & (points - 1)) << step_bits, shape.log_lde);
    const Row row = {wires, wires_stride, pos, consts, consts_width, shape.selector_prefix};
#define ZS(k) gl_canonical(zs[(u64)(k) * zs_stride + pos])
    u64 x = gl_mul(shift, gl_pow(omega, i));

    Terms t;
    for (int a = 0; a < MAX_CHALLENGES; a++) t.acc[a] = 0;
    t.alpha_powers = alpha_powers;
    t.num_terms = shape.num_terms;
    t.challenges = R;

    // L_0(x) (Z_a(x) - 1).
    u64 l_0 = gl_mul(zh_evals[i & (period - 1)], gl_pow(gl_mul(n, gl_sub(x, 1)), GL_ORDER - 2));
    for (u32 a = 0; a < R; a++) add_term(t, a, gl_mul(l_0, gl_sub(ZS(a), 1)));
    // Each repetition's partial products: prev * numerators - next * denominators, per chunk.
    u32 term = R;
    for (u32 a = 0; a < R; a++) {
        for (u32 c = 0; c <= prods; c++, term++) {
            u64 num = 1, den = 1;
            u32 end = (c + 1) * shape.chunk < routed ? (c + 1) * shape.chunk : routed;
            for (u32 j = c * shape.chunk; j < end; j++) {
                u64 w = row.wire(j);
                num = gl_mul(num, gl_add(gl_add(w, gl_mul(beta_ks[a * routed + j], x)), gammas[a]));
                den = gl_mul(den, gl_add(gl_add(w, gl_mul(betas[a], row.column(shape.num_constants + j))), gammas[a]));
            }
            u64 prev = c == 0 ? ZS(a) : ZS(R + a * prods + c - 1);
            u64 next = c == prods ? gl_canonical(zs[(u64)a * zs_stride + next_pos]) : ZS(R + a * prods + c);
            add_term(t, term, gl_sub(gl_mul(prev, num), gl_mul(next, den)));
        }
    }

    // Gate constraints, each gate's filtered by its selector.
    for (u32 g = 0; g < shape.num_gates; g++) {
        GateRecord gate = gates[g];
        if (gate.kind == GATE_NOOP) continue;
        u64 selector = row.column(gate.selector_column);
        u64 filter = 1;
        for (u32 k = gate.group_start; k < gate.group_end; k++)
            if (k != gate.row) filter = gl_mul(filter, gl_sub(k, selector));
        if (shape.many_selectors) filter = gl_mul(filter, gl_sub(UNUSED_SELECTOR, selector));
        if (filter == 0) continue;
        Constraints c = {&t, term, filter};
        switch (gate.kind) {
        case GATE_ARITHMETIC: {
            u64 c0 = row.constant(0), c1 = row.constant(1);
            for (u32 op = 0; op < gate.size; op++) {
                u64 computed = gl_add(gl_mul(gl_mul(row.wire(4 * op), row.wire(4 * op + 1)), c0), gl_mul(row.wire(4 * op + 2), c1));
                c.emit(op, gl_sub(row.wire(4 * op + 3), computed));
            }
            break;
        }
        case GATE_CONSTANT:
            for (u32 k = 0; k < gate.size; k++) c.emit(k, gl_sub(row.constant(k), row.wire(k)));
            break;
        case GATE_PUBLIC_INPUT:
            for (u32 k = 0; k < 4; k++) c.emit(k, gl_sub(row.wire(k), pi_hash[k]));
            break;
        case GATE_BASE_SUM_BINARY: {
            u64 sum = 0;
            for (u32 k = gate.size; k-- > 0;) sum = gl_add(gl_add(sum, sum), row.wire(1 + k));
            c.emit(0, gl_sub(sum, row.wire(0)));
            for (u32 k = 0; k < gate.size; k++) {
                u64 limb = row.wire(1 + k);
                c.emit(1 + k, gl_mul(limb, gl_sub(limb, 1)));
            }
            break;
        }
        case GATE_POSEIDON:
            poseidon_gate(c, row);
            break;
        case GATE_POSEIDON_MDS:
            poseidon_mds_gate(c, row);
            break;
        case GATE_ARITHMETIC_EXTENSION:
        case GATE_MUL_EXTENSION:
            extension_arithmetic_gate(c, row, gate.size, gate.kind == GATE_MUL_EXTENSION);
            break;
        case GATE_REDUCING:
        case GATE_REDUCING_EXTENSION:
            reducing_gate(c, row, gate.size, gate.kind == GATE_REDUCING_EXTENSION);
            break;
        case GATE_RANDOM_ACCESS:
            random_access_gate(c, row, gate.size, gate.extra & 0xFFFF, gate.extra >> 16);
            break;
        case GATE_COSET_INTERPOLATION:
            coset_interpolation_gate(c, row, gate.size, gate.extra, gate_params + gate.params_offset);
            break;
        }
    }
    u64 zh_inverse = zh_inverses[i & (period - 1)];
    for (u32 a = 0; a < R; a++) out[((u64)a << shape.log_points) + i] = gl_mul(t.acc[a], zh_inverse);
#undef ZS
}

// ---- The permutation argument: Z and the partial products ----------------------------------
// From the wires' and sigmas' values on the subgroup, column by column (routed wire j's value at
// row i at [j * n + i], canonical), the subgroup's points, and params: betas (R), gammas (R),
// then beta·k_j per repetition and routed wire (R × routed). Repetition r's rows are numbered
// r * n + i throughout, so a segment of rows never straddles two repetitions (n is a multiple
// of the segment, both powers of two).

// The most chunks of routed wires a row has (routed wires over the quotient degree factor).
#define MAX_PERMUTATION_CHUNKS 32

// Mirrors the Rust struct of that name field for field.
struct PermutationShape {
    u32 log_n, routed, chunk, width, challenges, segment;
};

// Each row's chunk quotients: chunk c's numerators' product, wire + beta·k_j·x + gamma over its
// wires j, over its denominators', wire + beta·sigma_j + gamma, into quotients[row * width + c].
// The denominators' products of a row are inverted together (one exponentiation).
extern "C" __global__ void permutation_quotients(const u64* wires, const u64* sigmas, const u64* points, const u64* params, PermutationShape shape, u64* quotients) {
    u64 t = thread_index();
    u64 n = 1ULL << shape.log_n;
    if (t >= (u64)shape.challenges * n) return;
    u32 r = (u32)(t >> shape.log_n);
    u64 i = t & (n - 1);
    u64 beta = params[r], gamma = params[shape.challenges + r];
    const u64* beta_ks = params + 2 * shape.challenges + (u64)r * shape.routed;
    u64 x = points[i];
    u64 numerators[MAX_PERMUTATION_CHUNKS], denominators[MAX_PERMUTATION_CHUNKS];
    for (u32 c = 0; c < shape.width; c++) {
        u64 numerator = 1, denominator = 1;
        u32 end = (c + 1) * shape.chunk < shape.routed ? (c + 1) * shape.chunk : shape.routed;
        for (u32 j = c * shape.chunk; j < end; j++) {
            u64 wire = wires[(u64)j * n + i];
            numerator = gl_mul(numerator, gl_add(gl_add(wire, gl_mul(beta_ks[j], x)), gamma));
            denominator = gl_mul(denominator, gl_add(gl_add(wire, gl_mul(beta, sigmas[(u64)j * n + i])), gamma));
        }
        numerators[c] = numerator;
        denominators[c] = denominator;
    }
    // Prefix products of the denominators, their whole product inverted, then each inverse
    // peeled off from the last.
    u64 before[MAX_PERMUTATION_CHUNKS];
    u64 product = 1;
    for (u32 c = 0; c < shape.width; c++) {
        before[c] = product;
        product = gl_mul(product, denominators[c]);
    }
    u64 inverse = gl_pow(product, GL_ORDER - 2);
    for (u32 c = shape.width; c-- > 0;) {
        quotients[t * shape.width + c] = gl_mul(numerators[c], gl_mul(inverse, before[c]));
        inverse = gl_mul(inverse, denominators[c]);
    }
}

// Each segment's product of its rows' quotients (segment s: rows s * segment onwards).
extern "C" __global__ void permutation_segments(const u64* quotients, PermutationShape shape, u64* segments) {
    u64 s = thread_index();
    u64 count = ((u64)shape.challenges << shape.log_n) / shape.segment;
    if (s >= count) return;
    u64 product = 1;
    const u64* q = quotients + s * shape.segment * shape.width;
    for (u64 k = 0; k < (u64)shape.segment * shape.width; k++) product = gl_mul(product, q[k]);
    segments[s] = product;
}

// Per repetition (one thread each): every segment's product replaced by the product of the
// segments before it in its repetition, where Z starts in that segment; the repetition's whole
// product (Z past the last row, one where the copy constraints hold) into totals[r].
extern "C" __global__ void permutation_scan(u64* segments, PermutationShape shape, u64* totals) {
    u64 r = thread_index();
    if (r >= shape.challenges) return;
    u64 per = (1ULL << shape.log_n) / shape.segment;
    u64 product = 1;
    for (u64 s = r * per; s < (r + 1) * per; s++) {
        u64 segment = segments[s];
        segments[s] = product;
        product = gl_mul(product, segment);
    }
    totals[r] = product;
}

// Each segment's rows' values from Z at its start: row i's Z(g^i), then Z(g^i) times its first
// c + 1 quotients for c < width - 1 (all of them is Z(g^(i+1))). Into columns of n values in
// plonky2's order: repetition r's Z at column r, its partial product c at column
// challenges + r * (width - 1) + c.
extern "C" __global__ void permutation_values(const u64* quotients, const u64* segments, PermutationShape shape, u64* columns) {
    u64 s = thread_index();
    u64 n = 1ULL << shape.log_n;
    u64 count = ((u64)shape.challenges << shape.log_n) / shape.segment;
    if (s >= count) return;
    u64 z = segments[s];
    for (u64 row = s * shape.segment; row < (s + 1) * shape.segment; row++) {
        u64 r = row >> shape.log_n;
        u64 i = row & (n - 1);
        const u64* q = quotients + row * shape.width;
        columns[r * n + i] = z;
        u64 partial = z;
        for (u32 c = 0; c + 1 < shape.width; c++) {
            partial = gl_mul(partial, q[c]);
            columns[(shape.challenges + r * (shape.width - 1) + c) * n + i] = partial;
        }
        z = gl_mul(partial, q[shape.width - 1]);
    }
}
