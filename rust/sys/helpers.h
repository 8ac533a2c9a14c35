/* SPDX-License-Identifier: GPL-2.0 */
/*
 * swarmlog: prototypes of the C shims in rust/sys/helpers.c, which rust/sys/ffi.rs
 * declares to Rust; helpers.c includes this so the compiler checks both
 * agree (and -Wmissing-prototypes stays quiet).
 */
#ifndef SWARMLOG_HELPERS_H
#define SWARMLOG_HELPERS_H

#include <linux/types.h>

struct bio;
struct block_device;
struct dax_device;
struct file;
struct gendisk;
struct work_struct;
struct workqueue_struct;

struct file *swl_bdev_open(const char *path, void *holder);
u64 swl_bdev_nr_sectors(struct block_device *bdev);
unsigned int swl_bdev_logical_block_size(struct block_device *bdev);
int swl_bdev_rw(struct block_device *bdev, u64 sector, void *buf, unsigned int len,
		unsigned int op, unsigned int flags);
int swl_bdev_flush(struct block_device *bdev);
struct swl_batch;
struct swl_batch *swl_batch_new(void);
/* blockdev.rs: Segment, one piece of memory a batch writes from. */
struct swl_seg {
	const void *buf;
	unsigned int len;
};
int swl_batch_write_segs(struct swl_batch *b, struct block_device *bdev, u64 sector,
			 const struct swl_seg *segs, unsigned int n);
int swl_batch_read(struct swl_batch *b, struct block_device *bdev, u64 sector, void *buf,
		   unsigned int len);
int swl_batch_wait(struct swl_batch *b);
void swl_batch_free(struct swl_batch *b);
struct dax_device *swl_dax_get(struct block_device *bdev, u64 *start_off, void *holder);
void swl_dax_put(struct dax_device *dax, void *holder);
long swl_dax_map(struct dax_device *dax, u64 pgoff, long nr_pages, void **kaddr);
bool swl_bdev_bad(struct block_device *bdev, u64 sector, u64 nr);
void swl_memcpy_flushcache(void *dst, const void *src, size_t len);
unsigned long swl_copy_mc(void *dst, const void *src, size_t len);
void swl_pmem_wmb(void);
unsigned int swl_bio_op(struct bio *bio);
u64 swl_bio_sector(struct bio *bio);
unsigned int swl_bio_size(struct bio *bio);
void swl_bio_endio(struct bio *bio, int err);
int swl_bio_for_each_chunk(struct bio *bio, int (*fn)(void *ctx, void *addr, unsigned int len),
			   void *ctx);
struct gendisk *swl_disk_alloc(const char *name, u64 capacity, unsigned int max_bytes,
			       void *private);
int swl_disk_add(struct gendisk *disk);
void *swl_bio_private(struct bio *bio);
unsigned int swl_noio_save(void);
void swl_noio_restore(unsigned int flags);

#endif /* SWARMLOG_HELPERS_H */
