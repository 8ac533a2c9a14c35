// SPDX-License-Identifier: GPL-2.0
/*
 * What a few 4 KiB operations cost in the VM's CPU (scripts/tcg-costs):
 * CRC-32C by table (the kernel's generic code, without SSE4.2), CRC-32C by
 * the crc32 instruction (what the kernel uses with SSE4.2), CRC-32C by
 * slicing-by-8 (swarmlog's, without SSE4.2), xxh64's main loop (a cheaper
 * checksum, for comparison), memcpy. Each is run N times and its mean
 * printed in microseconds.
 */
#include <nmmintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define N 2000

static uint32_t table[256];
static uint32_t slice[8][256];

static double now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static uint32_t crc_table(uint32_t c, const uint8_t *p, size_t n)
{
	while (n--)
		c = (c >> 8) ^ table[(c & 255) ^ *p++];
	return c;
}

/* Slicing-by-8: eight table lookups per 8 bytes. */
static uint32_t crc_slice8(uint32_t c, const uint8_t *p, size_t n)
{
	uint64_t v;

	for (; n >= 8; n -= 8, p += 8) {
		memcpy(&v, p, 8);
		v ^= c;
		c = slice[7][v & 255] ^ slice[6][(v >> 8) & 255] ^
		    slice[5][(v >> 16) & 255] ^ slice[4][(v >> 24) & 255] ^
		    slice[3][(v >> 32) & 255] ^ slice[2][(v >> 40) & 255] ^
		    slice[1][(v >> 48) & 255] ^ slice[0][v >> 56];
	}
	return crc_table(c, p, n);
}

#define P1 0x9E3779B185EBCA87ULL
#define P2 0xC2B2AE3D27D4EB4FULL
static inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
static inline uint64_t round64(uint64_t acc, uint64_t in)
{
	return rotl(acc + in * P2, 31) * P1;
}

/* xxh64's main loop (4 lanes of 8 bytes), as the kernel's xxh64(). */
static uint64_t xxh64_body(const uint8_t *p, size_t n)
{
	uint64_t v1 = P1 + P2, v2 = P2, v3 = 0, v4 = -P1, x;

	for (size_t i = 0; i + 32 <= n; i += 32) {
		memcpy(&x, p + i, 8); v1 = round64(v1, x);
		memcpy(&x, p + i + 8, 8); v2 = round64(v2, x);
		memcpy(&x, p + i + 16, 8); v3 = round64(v3, x);
		memcpy(&x, p + i + 24, 8); v4 = round64(v4, x);
	}
	return rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18);
}

__attribute__((target("sse4.2")))
static uint32_t crc_insn(uint32_t c, const uint8_t *p, size_t n)
{
	uint64_t x = c, v;

	for (size_t i = 0; i + 8 <= n; i += 8) {
		memcpy(&v, p + i, 8);
		x = _mm_crc32_u64(x, v);
	}
	return (uint32_t)x;
}

int main(void)
{
	static uint8_t a[4096], b[4096];
	volatile uint32_t sink = 0;
	double t;

	for (int i = 0; i < 4096; i++)
		a[i] = i * 7;
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int j = 0; j < 8; j++)
			c = (c >> 1) ^ ((c & 1) ? 0x82f63b78 : 0);
		table[i] = c;
	}
	for (int i = 0; i < 256; i++) {
		slice[0][i] = table[i];
		for (int k = 1; k < 8; k++)
			slice[k][i] = (slice[k - 1][i] >> 8) ^ table[slice[k - 1][i] & 255];
	}
	if (crc_slice8(~0u, a, sizeof(a)) != crc_table(~0u, a, sizeof(a)))
		printf("COST slice8-mismatch\n");
	t = now_us();
	for (int i = 0; i < N; i++)
		sink += crc_slice8(~0u, a, sizeof(a));
	printf("COST crc32c-slice8-4k %.1f\n", (now_us() - t) / N);
	t = now_us();
	for (int i = 0; i < N; i++)
		sink += xxh64_body(a, sizeof(a));
	printf("COST xxh64-4k %.1f\n", (now_us() - t) / N);
	t = now_us();
	for (int i = 0; i < N; i++)
		sink += crc_table(~0u, a, sizeof(a));
	printf("COST crc32c-table-4k %.1f\n", (now_us() - t) / N);
	if (__builtin_cpu_supports("sse4.2")) {
		t = now_us();
		for (int i = 0; i < N; i++)
			sink += crc_insn(~0u, a, sizeof(a));
		printf("COST crc32c-insn-4k %.1f\n", (now_us() - t) / N);
	} else {
		printf("COST crc32c-insn-4k none\n");
	}
	t = now_us();
	for (int i = 0; i < N; i++) {
		memcpy(b, a, sizeof(a));
		a[i & 4095] ^= b[(i * 3) & 4095];
	}
	printf("COST memcpy-4k %.1f\n", (now_us() - t) / N);
	return sink == 1;
}
