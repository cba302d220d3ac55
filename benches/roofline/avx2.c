/* The AVX2 int8 rooflines of one core, against which the AVX2 GEMM is
 * quoted:
 *   - `vpmaddwd` on operands already widened to i16, then `vpaddd`: 16
 *     multiply-adds per `vpmaddwd`, the instructions of qtensor's exact
 *     AVX2 kernel (`kernels/src/x86_64/avx2/gemm_i16.rs`);
 *   - `vpmaddubsw` (u8 x s8, 32 multiply-adds, i16 pair sums that may
 *     saturate), `vpmaddwd` by ones and `vpaddd`: fbgemm's AVX2 recipe.
 * Both on 12 independent accumulators. Build and run on one core:
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

static int sum(__m256i *acc) {
    __m256i s = acc[0];
    for (int i = 1; i < 12; i++) s = _mm256_add_epi32(s, acc[i]);
    int out[8];
    _mm256_storeu_si256((__m256i *)out, s);
    return out[0];
}

int main(void) {
    const long iters = 100000000;
    __m256i a = _mm256_set1_epi16(3), b = _mm256_set1_epi16(5), acc[12];
    for (int i = 0; i < 12; i++) acc[i] = _mm256_setzero_si256();
    double t0 = now();
    for (long i = 0; i < iters; i++) {
        for (int j = 0; j < 12; j++) acc[j] = _mm256_add_epi32(acc[j], _mm256_madd_epi16(a, b));
        __asm__ volatile("" : "+x"(a)); /* keep the loop from being folded */
    }
    double t = now() - t0;
    printf("vpmaddwd + vpaddd (i16): %.1f G multiply-adds/s (checksum %d)\n", iters * 12.0 * 16 / t / 1e9, sum(acc));

    __m256i u = _mm256_set1_epi8(3), s8 = _mm256_set1_epi8(5), ones = _mm256_set1_epi16(1);
    for (int i = 0; i < 12; i++) acc[i] = _mm256_setzero_si256();
    t0 = now();
    for (long i = 0; i < iters; i++) {
        for (int j = 0; j < 12; j++)
            acc[j] = _mm256_add_epi32(acc[j], _mm256_madd_epi16(_mm256_maddubs_epi16(u, s8), ones));
        __asm__ volatile("" : "+x"(u));
    }
    t = now() - t0;
    printf("vpmaddubsw + vpmaddwd + vpaddd (u8 x s8): %.1f G multiply-adds/s (checksum %d)\n",
           iters * 12.0 * 32 / t / 1e9, sum(acc));
    return 0;
}
