// SPDX-License-Identifier: GPL-2.0

//! CRC-32C, the checksum of every log record, log header and metadata block.
//!
//! Where the kernel's `crc32c()` is architecture-optimised (the CPU has a
//! CRC-32C instruction, `crc32_optimizations()` says so), it does the work.
//! Elsewhere the kernel falls back to one table lookup per byte; this file
//! then uses slicing-by-8 (eight lookups in eight tables per 8 bytes, as
//! the kernel's generic code once did), several times faster per block
//! (measured in `Documentation/swarmlog/performance.rst`). Userspace
//! (`tools/`) always uses slicing-by-8. Both give the same checksum; a test
//! holds them to it.
//!
//! It also combines checksums: CRC-32C is linear, so the checksum of `a`
//! followed by `b` can be made from the checksum of `a` and the checksum of
//! `b` alone ([`shift`]). The write path uses this to checksum each block
//! of a write once and use that both in the record's checksum and, at the
//! CP, in the block's table entry, instead of checksumming the block again.

/// Seed of every swarmlog checksum (the conventional CRC-32C start value).
pub(crate) const SEED: u32 = !0;

/// Continues a CRC-32C over `data`, starting from `crc`.
#[inline]
pub(crate) fn crc32c(crc: u32, data: &[u8]) -> u32 {
    #[cfg(CONFIG_RUST)]
    if kernel_crc::optimised() {
        return kernel_crc32c(crc, data);
    }
    slice8(crc, data)
}

/// The kernel's CRC-32C exports, declared here rather than in the module's
/// `sys` layer so that this tree stays free of the kernel crate (userspace
/// builds it without them and always uses [`slice8`]).
#[cfg(CONFIG_RUST)]
mod kernel_crc {
    use core::ffi::c_void;

    /// `CRC32C_OPTIMIZATION` of `crc32_optimizations()`: `crc32c()` is
    /// architecture-optimised.
    const CRC32C_OPTIMIZATION: u32 = 1 << 2;

    extern "C" {
        /// `lib/crc/crc32-main.c`.
        pub(super) fn crc32c(crc: u32, p: *const c_void, len: usize) -> u32;
        /// `lib/crc/crc32-main.c`: which CRC-32 functions are
        /// architecture-optimised on this CPU.
        fn crc32_optimizations() -> u32;
    }

    /// Whether the kernel's `crc32c()` is architecture-optimised.
    #[inline]
    pub(super) fn optimised() -> bool {
        // SAFETY: `crc32_optimizations` only reads static keys set at boot.
        let opt = unsafe { crc32_optimizations() };
        opt & CRC32C_OPTIMIZATION != 0
    }
}

/// The kernel's `crc32c()`.
#[cfg(CONFIG_RUST)]
fn kernel_crc32c(crc: u32, data: &[u8]) -> u32 {
    // SAFETY: `data` is a valid, initialised slice for its whole length, and
    // `crc32c` only reads `len` bytes from `p`.
    unsafe { kernel_crc::crc32c(crc, data.as_ptr().cast(), data.len()) }
}

/// `SLICE[0]` is the byte-at-a-time table; `SLICE[k][b]` is the CRC state
/// after byte `b` followed by `k` zero bytes.
const SLICE: [[u32; 256]; 8] = {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut j = 0;
        while j < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
            j += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[k - 1][i];
            t[k][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            i += 1;
        }
        k += 1;
    }
    t
};

/// CRC-32C by slicing-by-8.
fn slice8(mut crc: u32, data: &[u8]) -> u32 {
    let [t0, t1, t2, t3, t4, t5, t6, t7] = &SLICE;
    // A byte always indexes a 256-entry table (the compiler drops the
    // check).
    let at = |t: &[u32; 256], v: u64, shift: u32| {
        t.get(((v >> shift) & 0xff) as usize).copied().unwrap_or(0)
    };
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        // A cast of the 8-byte chunk, not a copy (`copy_from_slice` into an
        // array was an out-of-line call per 8 bytes).
        let Ok(b) = <&[u8; 8]>::try_from(w) else {
            continue;
        };
        let v = u64::from_le_bytes(*b) ^ u64::from(crc);
        crc = at(t7, v, 0)
            ^ at(t6, v, 8)
            ^ at(t5, v, 16)
            ^ at(t4, v, 24)
            ^ at(t3, v, 32)
            ^ at(t2, v, 40)
            ^ at(t1, v, 48)
            ^ at(t0, v, 56);
    }
    for &b in words.remainder() {
        crc = (crc >> 8) ^ at(t0, u64::from((crc as u8) ^ b), 0);
    }
    crc
}

/// The CRC-32C polynomial, bit-reflected.
const POLY: u32 = 0x82f6_3b78;

/// `a(x) * b(x)` modulo the CRC-32C polynomial, both bit-reflected (bit 31
/// is the coefficient of `x^0`).
const fn mul_mod(a: u32, mut b: u32) -> u32 {
    let mut p = 0;
    let mut m = 1u32 << 31;
    while m != 0 {
        if a & m != 0 {
            p ^= b;
        }
        b = if b & 1 != 0 { (b >> 1) ^ POLY } else { b >> 1 };
        m >>= 1;
    }
    p
}

/// `X2N[k]` is `x^(2^k)` modulo the polynomial, for every power of two a
/// shift by a `u64` count of bytes needs (`8 * len` has up to 67 bits; the
/// CRC-32C polynomial is not primitive, so the powers do not repeat every
/// 32 as zlib's would).
const X2N: [u32; 67] = {
    let mut t = [0u32; 67];
    t[0] = 1 << 30;
    let mut k = 1;
    while k < 67 {
        t[k] = mul_mod(t[k - 1], t[k - 1]);
        k += 1;
    }
    t
};

/// What the CRC-32C state `crc` becomes over `len` zero bytes:
/// `crc32c(crc, b) == shift(crc, b.len()) ^ crc32c(0, b)` for any `b`.
pub(crate) fn shift(crc: u32, len: u64) -> u32 {
    // x^(8 len), as the product of x^(2^k) over the bits of 8 len.
    let mut p = 1u32 << 31;
    let mut n = len;
    let mut k = 3usize;
    while n != 0 {
        if n & 1 != 0 {
            p = mul_mod(X2N.get(k).copied().unwrap_or(0), p);
        }
        n >>= 1;
        k += 1;
    }
    mul_mod(p, crc)
}

/// The checksum of a block from its CRC-32C from zero (`crc32c(0, data)`):
/// `crc32c(SEED, data)`.
pub(crate) fn seeded(crc0: u32, len: u64) -> u32 {
    shift(SEED, len) ^ crc0
}

#[cfg(CONFIG_RUST)]
#[kernel::prelude::kunit_tests(swarmlog_checksum)]
mod tests {
    use super::*;
    use kernel::prelude::*;

    fn bytes(n: usize, seed: u32) -> Result<KVec<u8>> {
        let mut v = KVec::with_capacity(n, GFP_KERNEL)?;
        let mut x = seed;
        for _ in 0..n {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            v.push((x >> 16) as u8, GFP_KERNEL)?;
        }
        Ok(v)
    }

    #[test]
    fn slicing_by_8_equals_the_kernels_crc32c() -> Result {
        for (i, len) in [0usize, 1, 7, 8, 9, 63, 512, 4096, 4099, 65_536]
            .into_iter()
            .enumerate()
        {
            let d = bytes(len, 77 + i as u32)?;
            for seed in [0, SEED, 0x1234_5678] {
                assert_eq!(slice8(seed, &d), kernel_crc32c(seed, &d));
            }
            // From an offset that is not 8-aligned as well.
            let tail = d.get(len.min(3)..).unwrap_or(&[]);
            assert_eq!(slice8(SEED, tail), kernel_crc32c(SEED, tail));
        }
        // The standard check value: CRC-32C of "123456789".
        assert_eq!(!slice8(SEED, b"123456789"), 0xe306_9283);
        Ok(())
    }

    #[test]
    fn zero_block_checksums_to_zero() {
        // From zero, zeroes stay zero: a block's CRC from zero is 0 if it
        // is all zeroes.
        assert_eq!(crc32c(0, &[0u8; 512]), 0);
    }

    #[test]
    fn shift_combines_like_one_pass() -> Result {
        for (i, (la, lb)) in [
            (0, 1),
            (1, 0),
            (7, 4096),
            (4096, 4096),
            (100, 65_536),
            (3, 511),
        ]
        .into_iter()
        .enumerate()
        {
            let a = bytes(la, i as u32)?;
            let b = bytes(lb, 1000 + i as u32)?;
            let mut ab = KVec::new();
            ab.extend_from_slice(&a, GFP_KERNEL)?;
            ab.extend_from_slice(&b, GFP_KERNEL)?;
            let whole = crc32c(SEED, &ab);
            let parts = shift(crc32c(SEED, &a), lb as u64) ^ crc32c(0, &b);
            assert_eq!(whole, parts);
            assert_eq!(seeded(crc32c(0, &b), lb as u64), crc32c(SEED, &b));
        }
        assert_eq!(shift(0x1234_5678, 0), 0x1234_5678);
        // A changed byte changes the combination.
        let a = bytes(64, 1)?;
        let mut b = bytes(4096, 2)?;
        let good = shift(crc32c(SEED, &a), 4096) ^ crc32c(0, &b);
        if let Some(x) = b.get_mut(4000) {
            *x ^= 1;
        }
        assert_ne!(good, shift(crc32c(SEED, &a), 4096) ^ crc32c(0, &b));
        Ok(())
    }
}
