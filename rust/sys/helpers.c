// SPDX-License-Identifier: GPL-2.0
/*
 * swarmlog: C shims for what Rust cannot reach through kernel::bindings in an
 * out-of-tree module: static inline functions, macros, and the block device
 * operations table (it needs THIS_MODULE). Nothing here holds state or makes
 * a decision; each function is wrapped by a safe type in the Rust file named
 * in its comment, and declared in rust/sys/ffi.rs.
 */

#include <linux/badblocks.h>
#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/dax.h>
#include <linux/highmem.h>
#include <linux/libnvdimm.h>
#include <linux/module.h>
#include <linux/sched/mm.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/uio.h>
#include <linux/vmalloc.h>

#include "helpers.h"

/* blockdev.rs: BlockDevice */

struct file *swl_bdev_open(const char *path, void *holder)
{
	return bdev_file_open_by_path(path, BLK_OPEN_READ | BLK_OPEN_WRITE, holder, NULL);
}

u64 swl_bdev_nr_sectors(struct block_device *bdev)
{
	return bdev_nr_sectors(bdev);
}

unsigned int swl_bdev_logical_block_size(struct block_device *bdev)
{
	return bdev_logical_block_size(bdev);
}

/*
 * Adds to bio the part of the len bytes of kernel memory (kmalloc or
 * vmalloc) at p that lies in p's page; returns its length, or 0 if the bio
 * has no room for it.
 */
static unsigned int swl_bio_add_kaddr(struct bio *bio, const void *p, unsigned int len)
{
	unsigned int off = offset_in_page(p);
	unsigned int n = min_t(unsigned int, len, PAGE_SIZE - off);
	struct page *page = is_vmalloc_addr(p) ? vmalloc_to_page(p) : virt_to_page(p);

	return bio_add_page(bio, page, n, off) == n ? n : 0;
}

/*
 * blockdev.rs: synchronous I/O on a kernel buffer (kmalloc or vmalloc
 * memory). op is REQ_OP_READ or REQ_OP_WRITE, flags may add REQ_FUA or
 * REQ_PREFLUSH.
 */
/* A bio over len bytes of the kernel buffer buf (kmalloc or vmalloc memory). */
static struct bio *swl_buf_bio(struct block_device *bdev, u64 sector, void *buf, unsigned int len,
			       blk_opf_t opf)
{
	unsigned int nr_vecs = DIV_ROUND_UP(offset_in_page(buf) + len, PAGE_SIZE);
	struct bio *bio;
	unsigned int done = 0;

	if (nr_vecs > BIO_MAX_VECS)
		return ERR_PTR(-EINVAL);
	bio = bio_alloc(bdev, nr_vecs, opf, GFP_NOIO);
	bio->bi_iter.bi_sector = sector;
	while (done < len) {
		unsigned int n = swl_bio_add_kaddr(bio, buf + done, len - done);

		if (!n) {
			bio_put(bio);
			return ERR_PTR(-EIO);
		}
		done += n;
	}
	return bio;
}

/*
 * A buffer larger than one bio holds (a block log's largest record is
 * 1 MiB and a unit) goes as a chain of bios, each the parent of the one
 * before: the wait on the last ends when all have, with the first error.
 */
int swl_bdev_rw(struct block_device *bdev, u64 sector, void *buf, unsigned int len,
		unsigned int op, unsigned int flags)
{
	const unsigned int most = (BIO_MAX_VECS - 1) * PAGE_SIZE;
	struct bio *prev = NULL, *bio;
	unsigned int done = 0;
	int ret;

	if (len % SECTOR_SIZE)
		return -EINVAL;
	do {
		unsigned int n = min(len - done, most);

		bio = swl_buf_bio(bdev, sector + (done >> SECTOR_SHIFT), buf + done, n,
				  op | flags);
		if (IS_ERR(bio)) {
			if (prev) {
				/* Let the chain end; report the error. */
				submit_bio_wait(prev);
				bio_put(prev);
			}
			return PTR_ERR(bio);
		}
		if (prev) {
			bio_chain(prev, bio);
			submit_bio(prev);
		}
		prev = bio;
		done += n;
	} while (done < len);
	ret = submit_bio_wait(prev);
	bio_put(prev);
	return ret;
}

/*
 * blockdev.rs: IoBatch, writes in flight together. pending counts the bios
 * in flight plus one for the submitter, so done completes only once the
 * submitter waits and the last bio has ended.
 */
struct swl_batch {
	atomic_t pending;
	int error;
	struct completion done;
};

struct swl_batch *swl_batch_new(void)
{
	struct swl_batch *b = kmalloc(sizeof(*b), GFP_NOIO);

	if (!b)
		return NULL;
	atomic_set(&b->pending, 1);
	b->error = 0;
	init_completion(&b->done);
	return b;
}

static void swl_batch_end_io(struct bio *bio)
{
	struct swl_batch *b = bio->bi_private;

	if (bio->bi_status)
		cmpxchg(&b->error, 0, blk_status_to_errno(bio->bi_status));
	bio_put(bio);
	if (atomic_dec_and_test(&b->pending))
		complete(&b->done);
}

static void swl_batch_submit(struct swl_batch *b, struct bio *bio)
{
	bio->bi_private = b;
	bio->bi_end_io = swl_batch_end_io;
	atomic_inc(&b->pending);
	submit_bio(bio);
}

/*
 * Writes the n segments one after the other from sector on, from their own
 * memory (kmalloc or vmalloc), in as few bios as hold them (BIO_MAX_VECS
 * pages each). Each segment's address and length must be multiples of 512
 * (else -EINVAL, nothing written). The bios submitted before an error stay
 * in the batch.
 */
int swl_batch_write_segs(struct swl_batch *b, struct block_device *bdev, u64 sector,
			 const struct swl_seg *segs, unsigned int n)
{
	struct bio *bio = NULL;
	struct blk_plug plug;
	unsigned int i;

	for (i = 0; i < n; i++)
		if ((segs[i].len | (unsigned long)segs[i].buf) % SECTOR_SIZE)
			return -EINVAL;
	/*
	 * Plugged, so that the pieces md makes of the bios reach each member's
	 * queue together: one virtio notification for them, not one each.
	 */
	blk_start_plug(&plug);
	for (i = 0; i < n; i++) {
		const void *buf = segs[i].buf;
		unsigned int len = segs[i].len, done = 0;

		while (done < len) {
			unsigned int k;

			if (!bio) {
				bio = bio_alloc(bdev, BIO_MAX_VECS, REQ_OP_WRITE, GFP_NOIO);
				bio->bi_iter.bi_sector = sector;
			}
			k = swl_bio_add_kaddr(bio, buf + done, len - done);
			if (k) {
				done += k;
				continue;
			}
			/* Full: on in a new bio. */
			if (!bio->bi_iter.bi_size) {
				bio_put(bio);
				blk_finish_plug(&plug);
				return -EIO;
			}
			sector += bio_sectors(bio);
			swl_batch_submit(b, bio);
			bio = NULL;
		}
	}
	if (bio)
		swl_batch_submit(b, bio);
	blk_finish_plug(&plug);
	return 0;
}

/*
 * Starts reading len bytes at sector into buf (kmalloc or vmalloc memory,
 * len a multiple of 512), in bios of at most BIO_MAX_VECS - 1 pages, all in
 * the batch: swl_batch_wait waits for them. The bios started before an
 * error stay in the batch.
 */
int swl_batch_read(struct swl_batch *b, struct block_device *bdev, u64 sector, void *buf,
		   unsigned int len)
{
	const unsigned int most = (BIO_MAX_VECS - 1) * PAGE_SIZE;
	unsigned int done = 0;
	struct blk_plug plug;

	if (len % SECTOR_SIZE)
		return -EINVAL;
	blk_start_plug(&plug);
	while (done < len) {
		unsigned int n = min(len - done, most);
		struct bio *bio = swl_buf_bio(bdev, sector + (done >> SECTOR_SHIFT), buf + done, n,
					      REQ_OP_READ);

		if (IS_ERR(bio)) {
			blk_finish_plug(&plug);
			return PTR_ERR(bio);
		}
		swl_batch_submit(b, bio);
		done += n;
	}
	blk_finish_plug(&plug);
	return 0;
}

int swl_batch_wait(struct swl_batch *b)
{
	int err;

	if (!atomic_dec_and_test(&b->pending))
		wait_for_completion_io(&b->done);
	err = READ_ONCE(b->error);
	b->error = 0;
	atomic_set(&b->pending, 1);
	reinit_completion(&b->done);
	return err;
}

void swl_batch_free(struct swl_batch *b)
{
	kfree(b);
}

int swl_bdev_flush(struct block_device *bdev)
{
	return blkdev_issue_flush(bdev);
}

/* pmem.rs: DaxMapping */

struct dax_device *swl_dax_get(struct block_device *bdev, u64 *start_off, void *holder)
{
	return fs_dax_get_by_bdev(bdev, start_off, holder, NULL);
}

void swl_dax_put(struct dax_device *dax, void *holder)
{
	fs_put_dax(dax, holder);
}

/*
 * Maps up to nr_pages pages of the DAX device from pgoff. A range the
 * driver knows bad (its badblocks) refuses DAX_ACCESS with -EHWPOISON; it
 * is then mapped in DAX_RECOVERY_WRITE mode, which gives the address of
 * the pages up to the bad one, or of the bad page alone: the mapping
 * covers the whole device, and reads consult the bad blocks themselves
 * (swl_bdev_bad).
 */
long swl_dax_map(struct dax_device *dax, u64 pgoff, long nr_pages, void **kaddr)
{
	long ret;
	int id = dax_read_lock();

	ret = dax_direct_access(dax, pgoff, nr_pages, DAX_ACCESS, kaddr, NULL);
	if (ret == -EHWPOISON)
		ret = dax_direct_access(dax, pgoff, nr_pages, DAX_RECOVERY_WRITE, kaddr, NULL);
	dax_read_unlock(id);
	return ret;
}

/*
 * Whether the disk of bdev has a known bad sector (its badblocks list:
 * poison the platform reported, or an entry an administrator or a test
 * wrote to /sys/block/DISK/badblocks) among the nr sectors from sector.
 */
bool swl_bdev_bad(struct block_device *bdev, u64 sector, u64 nr)
{
	struct badblocks *bb = bdev->bd_disk->bb;
	sector_t first_bad, nr_bad;

	if (!bb || !bb->count || !nr)
		return false;
	return badblocks_check(bb, sector, nr, &first_bad, &nr_bad) != 0;
}

/* Non-temporal copy: the data is on its way to the media, not yet ordered. */
void swl_memcpy_flushcache(void *dst, const void *src, size_t len)
{
	memcpy_flushcache(dst, src, len);
}

/*
 * Copies len bytes of pmem at src to dst, machine-check safe: a poisoned
 * line stops the copy instead of crashing the kernel, as dm-writecache
 * reads its pmem. Returns the bytes not copied (0 on success).
 */
unsigned long swl_copy_mc(void *dst, const void *src, size_t len)
{
	return copy_mc_to_kernel(dst, src, len);
}

/* Orders (and so makes durable) every earlier memcpy_flushcache(). */
void swl_pmem_wmb(void)
{
	pmem_wmb();
}

/* bio.rs: Bio */

unsigned int swl_bio_op(struct bio *bio)
{
	return bio_op(bio);
}

u64 swl_bio_sector(struct bio *bio)
{
	return bio->bi_iter.bi_sector;
}

unsigned int swl_bio_size(struct bio *bio)
{
	return bio->bi_iter.bi_size;
}

void swl_bio_endio(struct bio *bio, int err)
{
	bio->bi_status = errno_to_blk_status(err);
	bio_endio(bio);
}

/*
 * Calls fn(ctx, addr, len) for each piece of the bio's data, in order, each
 * mapped for the call. Stops at the first non-zero return and returns it.
 */
int swl_bio_for_each_chunk(struct bio *bio, int (*fn)(void *ctx, void *addr, unsigned int len),
			   void *ctx)
{
	struct bio_vec bv;
	struct bvec_iter iter;
	int ret = 0;

	bio_for_each_segment(bv, bio, iter) {
		void *addr = bvec_kmap_local(&bv);

		ret = fn(ctx, addr, bv.bv_len);
		kunmap_local(addr);
		if (ret)
			break;
	}
	return ret;
}

/* disk.rs: Disk */

void swarmlog_submit_bio(struct bio *bio);

static void swl_submit_bio(struct bio *bio)
{
	bio = bio_split_to_limits(bio);
	if (bio)
		swarmlog_submit_bio(bio);
}

static const struct block_device_operations swl_fops = {
	.owner = THIS_MODULE,
	.submit_bio = swl_submit_bio,
};

/*
 * A bio-based disk of capacity sectors; private is handed back through
 * swl_bio_private(). Requests are at most max_bytes long, sector-aligned.
 */
struct gendisk *swl_disk_alloc(const char *name, u64 capacity, unsigned int max_bytes,
			       void *private)
{
	struct queue_limits lim = {
		.logical_block_size = SECTOR_SIZE,
		.physical_block_size = PAGE_SIZE,
		.io_min = PAGE_SIZE,
		.max_hw_sectors = max_bytes >> SECTOR_SHIFT,
		.max_hw_discard_sectors = max_bytes >> SECTOR_SHIFT,
		.max_write_zeroes_sectors = max_bytes >> SECTOR_SHIFT,
		.features = BLK_FEAT_WRITE_CACHE | BLK_FEAT_FUA,
	};
	struct gendisk *disk = blk_alloc_disk(&lim, NUMA_NO_NODE);

	if (IS_ERR(disk))
		return disk;
	disk->fops = &swl_fops;
	disk->private_data = private;
	strscpy(disk->disk_name, name, DISK_NAME_LEN);
	set_capacity(disk, capacity);
	return disk;
}

int swl_disk_add(struct gendisk *disk)
{
	return add_disk(disk);
}

void *swl_bio_private(struct bio *bio)
{
	return bio->bi_bdev->bd_disk->private_data;
}

/* noio.rs: NoIo */

unsigned int swl_noio_save(void)
{
	return memalloc_noio_save();
}

void swl_noio_restore(unsigned int flags)
{
	memalloc_noio_restore(flags);
}
