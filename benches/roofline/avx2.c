/* The AVX2 int8 rooflines of one core, against which the AVX2 GEMM is
 * quoted:
 *   - `vpmaddwd` on operands already widened to i16, then `vpaddd`: 16
 *     multiply-adds per `vpmaddwd`, the instructions of qtensor's exact
 *     AVX2 kernel (`kernels/src/x86_64/avx2/gemm_i16.rs`);
 *   - `vpmaddubsw` (u8 x s8, 32 multiply-adds, i16 pair sums that may
 *     saturate), `vpmaddwd` by ones and `vpaddd`: fbgemm's AVX2 recipe.
 * Build and run on one core:
 *
 *   gcc -O3 -march=native benches/roofline/avx2.c -o avx2 && taskset -c 0 ./avx2
 *
 * On a Zen 2 (one vector integer multiplier) both give about 53 G/s at
 * 3 GHz: 16 multiply-adds per multiplier instruction either way. */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Six chains, each with its own accumulator, from three operands times
 * two weights. The loop is written in assembly with fixed registers: in
 * C, GCC spilled accumulators to the stack however few there were, and
 * the probe measured store forwarding (31 G/s on a Zen 2 whose GEMM ran
 * at 48). The operands are set once and never change; the CPU cannot
 * tell, so every multiply runs. */
#define CHAIN(op, w, x, t, c) op " %%ymm" w ", %%ymm" x ", %%ymm" t "\n\t"
#define ZERO6 "vpxor %%ymm0, %%ymm0, %%ymm0\n\tvpxor %%ymm1, %%ymm1, %%ymm1\n\tvpxor %%ymm2, %%ymm2, %%ymm2\n\t" \
              "vpxor %%ymm3, %%ymm3, %%ymm3\n\tvpxor %%ymm4, %%ymm4, %%ymm4\n\tvpxor %%ymm5, %%ymm5, %%ymm5\n\t"
#define SUM_STORE "vpaddd %%ymm1, %%ymm0, %%ymm0\n\tvpaddd %%ymm3, %%ymm2, %%ymm2\n\tvpaddd %%ymm5, %%ymm4, %%ymm4\n\t" \
                  "vpaddd %%ymm2, %%ymm0, %%ymm0\n\tvpaddd %%ymm4, %%ymm0, %%ymm0\n\tvmovdqu %%ymm0, %1\n\t"
#define CLOBBERS "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm10", "xmm11", "xmm12", "xmm13", "cc", "memory"

/* vpmaddwd x (ymm6, ymm9, ymm14) by w (ymm7, ymm8), vpaddd into ymm0-5. */
static int madd_chains(long iters, __m256i x0, __m256i x1, __m256i x2, __m256i w0, __m256i w1) {
    int out[8];
    register __m256i r6 __asm__("ymm6") = x0, r9 __asm__("ymm9") = x1, r14 __asm__("ymm14") = x2;
    register __m256i r7 __asm__("ymm7") = w0, r8 __asm__("ymm8") = w1;
    __asm__ volatile(ZERO6 "1:\n\t"
                     "vpmaddwd %%ymm7, %%ymm6, %%ymm10\n\tvpaddd %%ymm10, %%ymm0, %%ymm0\n\t"
                     "vpmaddwd %%ymm8, %%ymm6, %%ymm11\n\tvpaddd %%ymm11, %%ymm1, %%ymm1\n\t"
                     "vpmaddwd %%ymm7, %%ymm9, %%ymm12\n\tvpaddd %%ymm12, %%ymm2, %%ymm2\n\t"
                     "vpmaddwd %%ymm8, %%ymm9, %%ymm13\n\tvpaddd %%ymm13, %%ymm3, %%ymm3\n\t"
                     "vpmaddwd %%ymm7, %%ymm14, %%ymm10\n\tvpaddd %%ymm10, %%ymm4, %%ymm4\n\t"
                     "vpmaddwd %%ymm8, %%ymm14, %%ymm11\n\tvpaddd %%ymm11, %%ymm5, %%ymm5\n\t"
                     "dec %0\n\tjnz 1b\n\t" SUM_STORE
                     : "+r"(iters), "=m"(out)
                     : "x"(r6), "x"(r9), "x"(r14), "x"(r7), "x"(r8)
                     : CLOBBERS);
    return out[0];
}

/* vpmaddubsw x by w, vpmaddwd by ones (ymm15), vpaddd into ymm0-5. */
static int maddubs_chains(long iters, __m256i x0, __m256i x1, __m256i x2, __m256i w0, __m256i w1) {
    int out[8];
    register __m256i r6 __asm__("ymm6") = x0, r9 __asm__("ymm9") = x1, r14 __asm__("ymm14") = x2;
    register __m256i r7 __asm__("ymm7") = w0, r8 __asm__("ymm8") = w1;
    register __m256i ones __asm__("ymm15") = _mm256_set1_epi16(1);
    __asm__ volatile(ZERO6 "1:\n\t"
                     "vpmaddubsw %%ymm7, %%ymm6, %%ymm10\n\tvpmaddwd %%ymm15, %%ymm10, %%ymm10\n\tvpaddd %%ymm10, %%ymm0, %%ymm0\n\t"
                     "vpmaddubsw %%ymm8, %%ymm6, %%ymm11\n\tvpmaddwd %%ymm15, %%ymm11, %%ymm11\n\tvpaddd %%ymm11, %%ymm1, %%ymm1\n\t"
                     "vpmaddubsw %%ymm7, %%ymm9, %%ymm12\n\tvpmaddwd %%ymm15, %%ymm12, %%ymm12\n\tvpaddd %%ymm12, %%ymm2, %%ymm2\n\t"
                     "vpmaddubsw %%ymm8, %%ymm9, %%ymm13\n\tvpmaddwd %%ymm15, %%ymm13, %%ymm13\n\tvpaddd %%ymm13, %%ymm3, %%ymm3\n\t"
                     "vpmaddubsw %%ymm7, %%ymm14, %%ymm10\n\tvpmaddwd %%ymm15, %%ymm10, %%ymm10\n\tvpaddd %%ymm10, %%ymm4, %%ymm4\n\t"
                     "vpmaddubsw %%ymm8, %%ymm14, %%ymm11\n\tvpmaddwd %%ymm15, %%ymm11, %%ymm11\n\tvpaddd %%ymm11, %%ymm5, %%ymm5\n\t"
                     "dec %0\n\tjnz 1b\n\t" SUM_STORE
                     : "+r"(iters), "=m"(out)
                     : "x"(r6), "x"(r9), "x"(r14), "x"(r7), "x"(r8), "x"(ones)
                     : CLOBBERS);
    return out[0];
}

int main(void) {
    const long iters = 200000000;
    __m256i w0 = _mm256_set1_epi16(5), w1 = _mm256_set1_epi16(9);
    __m256i x0 = _mm256_set1_epi16(3), x1 = _mm256_set1_epi16(4), x2 = _mm256_set1_epi16(5);
    double t0 = now();
    int sum = madd_chains(iters, x0, x1, x2, w0, w1);
    double t = now() - t0;
    printf("vpmaddwd + vpaddd (i16): %.1f G multiply-adds/s (checksum %d)\n", iters * 6 * 16.0 / t / 1e9, sum);
    t0 = now();
    sum = maddubs_chains(iters, x0, x1, x2, w0, w1);
    t = now() - t0;
    printf("vpmaddubsw + vpmaddwd + vpaddd (u8 x s8): %.1f G multiply-adds/s (checksum %d)\n", iters * 6 * 32.0 / t / 1e9,
           sum);
    return 0;
}
