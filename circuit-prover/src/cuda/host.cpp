// The tree kernels compiled for the CPU, for the CUDA backend's tests where no GPU is lent: CUDA's
// few built-ins written for one thread at a time, and a driver that runs a kernel's every thread
// in turn. The test writes the kernels' source (with plonky2's tables) beside this file as
// kernels.cu, compiles both with the host's C++ compiler, and compares what the driver hashes
// with the CPU backend's trees.
//
// Usage: host poseidon|keccak IN OUT. IN holds count, width, cap height and layout (0: leaves as
// rows, 1: as columns, as an LDE lies on the device), then the leaves row after row, all as
// little-endian u64s; OUT gets the cap's digests, four words each, as the kernels write them.

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

int main(int argc, char** argv) {
    if (argc != 4) return 2;
    bool keccak = strcmp(argv[1], "keccak") == 0;
    FILE* in = fopen(argv[2], "rb");
    if (!in) return 3;
    u64 header[4];
    if (fread(header, 8, 4, in) != 4) return 3;
    u64 count = header[0], width = header[1], cap_height = header[2], layout = header[3];
    std::vector<u64> rows(count * width);
    if (fread(rows.data(), 8, rows.size(), in) != rows.size()) return 3;
    fclose(in);

    std::vector<u64> leaves = rows;
    u64 row_stride = width, column_stride = 1;
    if (layout == 1) {
        for (u64 i = 0; i < count; i++)
            for (u64 k = 0; k < width; k++) leaves[k * count + i] = rows[i * width + k];
        row_stride = 1;
        column_stride = count;
    }
    std::vector<u64> level(4 * count);
    for (u64 t = 0; t < count; t++) {
        threadIdx.x = (unsigned)t;
        if (keccak) keccak_leaves(leaves.data(), count, (u32)width, row_stride, column_stride, level.data());
        else hash_leaves(leaves.data(), count, (u32)width, row_stride, column_stride, level.data());
    }
    for (u64 n = count; n > (1ULL << cap_height); n /= 2) {
        std::vector<u64> parents(4 * (n / 2));
        for (u64 t = 0; t < n / 2; t++) {
            threadIdx.x = (unsigned)t;
            if (keccak) keccak_pairs(level.data(), n / 2, parents.data());
            else compress_pairs(level.data(), n / 2, parents.data());
        }
        level = parents;
    }
    FILE* out = fopen(argv[3], "wb");
    if (!out || fwrite(level.data(), 8, level.size(), out) != level.size()) return 4;
    fclose(out);
    return 0;
}
