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
 * -O3 matters: at -O2 GCC keeps the accumulators in memory. */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Six chains, each with its own accumulator and operand, all in named
 * registers (arrays of them GCC keeps in memory, which measures store
 * forwarding). The empty asm marks the operands as changed every
 * iteration, so the compiler can neither merge the chains' multiplies nor
 * hoist them out of the loop. */
#define TOUCH __asm__ volatile("" : "+x"(x0), "+x"(x1), "+x"(x2), "+x"(x3), "+x"(x4), "+x"(x5))
#define SUM6 _mm256_add_epi32(_mm256_add_epi32(_mm256_add_epi32(c0, c1), _mm256_add_epi32(c2, c3)), _mm256_add_epi32(c4, c5))

static int first(__m256i v) {
    int out[8];
    _mm256_storeu_si256((__m256i *)out, v);
    return out[0];
}

int main(void) {
    const long iters = 200000000;
    __m256i w = _mm256_set1_epi16(5);
    __m256i x0 = _mm256_set1_epi16(3), x1 = _mm256_set1_epi16(4), x2 = _mm256_set1_epi16(5);
    __m256i x3 = _mm256_set1_epi16(6), x4 = _mm256_set1_epi16(7), x5 = _mm256_set1_epi16(8);
    __m256i c0 = _mm256_setzero_si256(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;
    double t0 = now();
    for (long i = 0; i < iters; i++) {
#define MADD(c, x) c = _mm256_add_epi32(c, _mm256_madd_epi16(x, w))
        MADD(c0, x0); MADD(c1, x1); MADD(c2, x2); MADD(c3, x3); MADD(c4, x4); MADD(c5, x5);
        TOUCH;
    }
    double t = now() - t0;
    printf("vpmaddwd + vpaddd (i16): %.1f G multiply-adds/s (checksum %d)\n", iters * 6 * 16.0 / t / 1e9, first(SUM6));

    __m256i s8 = _mm256_set1_epi8(5), ones = _mm256_set1_epi16(1);
    c0 = c1 = c2 = c3 = c4 = c5 = _mm256_setzero_si256();
    t0 = now();
    for (long i = 0; i < iters; i++) {
#define MADDUBS(c, x) c = _mm256_add_epi32(c, _mm256_madd_epi16(_mm256_maddubs_epi16(x, s8), ones))
        MADDUBS(c0, x0); MADDUBS(c1, x1); MADDUBS(c2, x2); MADDUBS(c3, x3); MADDUBS(c4, x4); MADDUBS(c5, x5);
        TOUCH;
    }
    t = now() - t0;
    printf("vpmaddubsw + vpmaddwd + vpaddd (u8 x s8): %.1f G multiply-adds/s (checksum %d)\n",
           iters * 6 * 32.0 / t / 1e9, first(SUM6));
    return 0;
}
