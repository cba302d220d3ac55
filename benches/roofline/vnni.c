/* The AVX-512 VNNI roofline of one core: `vpdpbusd` (64 u8 x s8
 * multiply-adds per zmm instruction) on 12 independent accumulators, and
 * the same on ymm. Build and run on one core:
 *
 *   gcc -O3 -march=native benches/roofline/vnni.c -o vnni && taskset -c 0 ./vnni
 *
 * -O3 matters: at -O2 GCC keeps the accumulators in memory and the probe
 * measures store forwarding instead. */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(void) {
    const long iters = 200000000;
    __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(5), acc[12];
    for (int i = 0; i < 12; i++) acc[i] = _mm512_setzero_si512();
    double t0 = now();
    for (long i = 0; i < iters; i++) {
        for (int j = 0; j < 12; j++) acc[j] = _mm512_dpbusd_epi32(acc[j], a, b);
        __asm__ volatile("" : "+v"(a)); /* keep the loop from being folded */
    }
    double t = now() - t0;
    __m512i s = acc[0];
    for (int i = 1; i < 12; i++) s = _mm512_add_epi32(s, acc[i]);
    printf("vpdpbusd zmm: %.1f G multiply-adds/s (checksum %d)\n", iters * 12.0 * 64 / t / 1e9,
           _mm512_reduce_add_epi32(s));

    __m256i a2 = _mm256_set1_epi8(3), b2 = _mm256_set1_epi8(5), acc2[12];
    for (int i = 0; i < 12; i++) acc2[i] = _mm256_setzero_si256();
    t0 = now();
    for (long i = 0; i < iters; i++) {
        for (int j = 0; j < 12; j++) acc2[j] = _mm256_dpbusd_epi32(acc2[j], a2, b2);
        __asm__ volatile("" : "+v"(a2));
    }
    t = now() - t0;
    __m256i s2 = acc2[0];
    for (int i = 1; i < 12; i++) s2 = _mm256_add_epi32(s2, acc2[i]);
    int out[8];
    _mm256_storeu_si256((__m256i *)out, s2);
    printf("vpdpbusd ymm: %.1f G multiply-adds/s (checksum %d)\n", iters * 12.0 * 32 / t / 1e9, out[0]);
    return 0;
}
