// SPDX-License-Identifier: GPL-2.0
/*
 * flip DEVICE COUNT: COUNT O_DIRECT writes of 64 KiB (every 4th of 1 to 7
 * sectors at an odd offset) to DEVICE, from a buffer that another thread,
 * on the other CPU, keeps changing meanwhile, as a program may do (the bytes
 * written are then any mix of old and new, but the device must stay
 * consistent with itself).
 * Prints "flip: done N writes, the buffer changed all through M of them"
 * (M: writes during which the other thread rewrote the whole buffer at
 * least once) and exits 0; 1 on any error.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SIZE (64 * 1024)

static unsigned char *buf;
static atomic_int stop;
static atomic_uint passes;

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static void *flipper(void *arg)
{
	(void)arg;
	pin(1);
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		/* Each pass writes its own number (not a value that repeats
		 * from one pass to the next). */
		unsigned char v = (unsigned char)(atomic_load(&passes) + 1);

		for (int i = 0; i < SIZE; i += 64)
			((volatile unsigned char *)buf)[i] = v;
		atomic_fetch_add_explicit(&passes, 1, memory_order_relaxed);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t t;
	int fd, count, changed = 0;

	if (argc != 3)
		return 2;
	count = atoi(argv[2]);
	fd = open(argv[1], O_WRONLY | O_DIRECT);
	if (fd < 0 || posix_memalign((void **)&buf, 4096, SIZE)) {
		perror("flip");
		return 1;
	}
	memset(buf, 0x5a, SIZE);
	pin(0);
	if (pthread_create(&t, NULL, flipper, NULL))
		return 1;
	for (int i = 0; i < count; i++) {
		/* Every 4th write is 1 to 7 sectors at an odd sector. */
		size_t len = i % 4 == 3 ? 512 * (size_t)(1 + i % 7) : SIZE;
		off_t at = i % 4 == 3 ? (off_t)(8 * i + 3) * 512 : (off_t)(i % 32) * SIZE;

		unsigned int before = atomic_load(&passes);

		if (pwrite(fd, buf, len, at) != (ssize_t)len) {
			perror("flip: pwrite");
			return 1;
		}
		/* The buffer was rewritten while this write was in flight. */
		if (atomic_load(&passes) - before >= 2)
			changed++;
	}
	atomic_store(&stop, 1);
	pthread_join(t, NULL);
	printf("flip: done %d writes, the buffer changed all through %d of them\n", count, changed);
	return 0;
}
