// The kernels compiled for the CPU, for the CUDA backend's tests where no GPU is lent: CUDA's few
// built-ins written for one thread at a time, and a driver that runs a kernel's every thread in
// turn. The tests write the kernels' source (with plonky2's tables) beside this file as
// kernels.cu, compile both with the host's C++ compiler, and compare what the driver computes
// with the CPU's: Merkle trees, and the permutation argument's Z and partial products.
//
// Usage: host poseidon|keccak|permutation|mds_halves IN OUT, every value a little-endian u64.
// - poseidon, keccak: IN holds count, width, cap height and layout (0: leaves as rows, 1: as
//   columns, as an LDE lies on the device), then the leaves row after row; OUT gets the cap's
//   digests, four words each, as the kernels write them.
// - permutation: IN holds log n, routed wires, chunk, repetitions and segment, then the wires'
//   values and the sigmas' (column by column), the subgroup's points and the params (betas,
//   gammas, beta·k_j); OUT gets Z's and the partial products' columns, then each repetition's
//   whole product.
// - mds_halves: IN holds pairs of the MDS layer's sums of low and high halves; OUT gets each
//   pair reduced (gl_reduce_halves).

#include <cstdio>
#include <cstring>
#include <vector>

#define __device__
#define __global__
#define __forceinline__ inline
#define __constant__

struct Dim {
    unsigned x;
};
static Dim blockIdx = {0}, threadIdx = {0}, blockDim = {1};

static inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
    return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}
static inline int __clzll(long long x) {
    return x == 0 ? 64 : __builtin_clzll((unsigned long long)x);
}
static inline unsigned long long __brevll(unsigned long long x) {
    unsigned long long r = 0;
    for (int i = 0; i < 64; i++, x >>= 1) r = (r << 1) | (x & 1);
    return r;
}
static inline unsigned long long atomicMin(unsigned long long* p, unsigned long long v) {
    unsigned long long old = *p;
    if (v < old) *p = v;
    return old;
}

#include "kernels.cu"

// Runs `kernel` for threads 0 to count - 1, one after another.
template <typename Kernel>
static void each_thread(u64 count, Kernel kernel) {
    for (u64 t = 0; t < count; t++) {
        threadIdx.x = (unsigned)t;
        kernel();
    }
}

static bool read_all(FILE* in, std::vector<u64>& values) {
    return fread(values.data(), 8, values.size(), in) == values.size();
}

static int tree(bool keccak, FILE* in, std::vector<u64>& out) {
    u64 header[4];
    if (fread(header, 8, 4, in) != 4) return 3;
    u64 count = header[0], width = header[1], cap_height = header[2], layout = header[3];
    std::vector<u64> rows(count * width);
    if (!read_all(in, rows)) return 3;
    std::vector<u64> leaves = rows;
    u64 row_stride = width, column_stride = 1;
    if (layout == 1) {
        for (u64 i = 0; i < count; i++)
            for (u64 k = 0; k < width; k++) leaves[k * count + i] = rows[i * width + k];
        row_stride = 1;
        column_stride = count;
    }
    std::vector<u64> level(4 * count);
    each_thread(count, [&] {
        if (keccak) keccak_leaves(leaves.data(), count, (u32)width, row_stride, column_stride, level.data());
        else hash_leaves(leaves.data(), count, (u32)width, row_stride, column_stride, level.data());
    });
    for (u64 n = count; n > (1ULL << cap_height); n /= 2) {
        std::vector<u64> parents(4 * (n / 2));
        each_thread(n / 2, [&] {
            if (keccak) keccak_pairs(level.data(), n / 2, parents.data());
            else compress_pairs(level.data(), n / 2, parents.data());
        });
        level = parents;
    }
    out = level;
    return 0;
}

static int permutation(FILE* in, std::vector<u64>& out) {
    u64 header[5];
    if (fread(header, 8, 5, in) != 5) return 3;
    u32 routed = (u32)header[1], chunk = (u32)header[2], challenges = (u32)header[3];
    PermutationShape shape = {(u32)header[0], routed, chunk, (routed + chunk - 1) / chunk, challenges, (u32)header[4]};
    u64 n = 1ULL << shape.log_n;
    std::vector<u64> wires(routed * n), sigmas(routed * n), points(n), params(2 * challenges + challenges * routed);
    if (!read_all(in, wires) || !read_all(in, sigmas) || !read_all(in, points) || !read_all(in, params)) return 3;
    std::vector<u64> quotients(challenges * n * shape.width), columns(challenges * shape.width * n), totals(challenges);
    u64 segments_count = challenges * n / shape.segment;
    std::vector<u64> segments(segments_count);
    each_thread(challenges * n, [&] { permutation_quotients(wires.data(), sigmas.data(), points.data(), params.data(), shape, quotients.data()); });
    each_thread(segments_count, [&] { permutation_segments(quotients.data(), shape, segments.data()); });
    each_thread(challenges, [&] { permutation_scan(segments.data(), shape, totals.data()); });
    each_thread(segments_count, [&] { permutation_values(quotients.data(), segments.data(), shape, columns.data()); });
    out = columns;
    out.insert(out.end(), totals.begin(), totals.end());
    return 0;
}

static int mds_halves(FILE* in, std::vector<u64>& out) {
    u64 pair[2];
    while (fread(pair, 8, 2, in) == 2) out.push_back(gl_reduce_halves(pair[0], pair[1]));
    return ferror(in) ? 3 : 0;
}

int main(int argc, char** argv) {
    if (argc != 4) return 2;
    FILE* in = fopen(argv[2], "rb");
    if (!in) return 3;
    std::vector<u64> out;
    int failed = strcmp(argv[1], "permutation") == 0 ? permutation(in, out)
                 : strcmp(argv[1], "mds_halves") == 0 ? mds_halves(in, out)
                                                       : tree(strcmp(argv[1], "keccak") == 0, in, out);
    fclose(in);
    if (failed) return failed;
    FILE* file = fopen(argv[3], "wb");
    if (!file || fwrite(out.data(), 8, out.size(), file) != out.size()) return 4;
    fclose(file);
    return 0;
}
