// SPDX-License-Identifier: GPL-2.0
/*
 * What a few 4 KiB operations cost in the VM's CPU (scripts/tcg-costs):
 * CRC-32C by table (the kernel's generic code, without SSE4.2), CRC-32C by
 * the crc32 instruction (what the kernel uses with SSE4.2), memcpy. Each is
 * run N times and its mean printed in microseconds.
 */
#include <nmmintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define N 2000

static uint32_t table[256];

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
