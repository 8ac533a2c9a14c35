// SPDX-License-Identifier: GPL-2.0

//! Fuzz target: the module's open and scan path over a mutated log image,
//! and its superblock check over a mutated line.
//!
//! The input is a list of patches of 10 bytes each: an offset (2 bytes,
//! little-endian, into the first 32 KiB of `sample_log_image`, where its
//! header, CP slots and records lie; bit 15 set leaves the line's checksum
//! as the patch leaves it, else the line is resealed) and 8 bytes written
//! there. So a patch changes one field (or two) of a valid line, as a
//! writer would that meant it. The result goes through `scan_log_image`.
//! The input's first 64 bytes, resealed, also go through
//! `check_array_super`. A refusal is fine; a panic (an inconsistent
//! result, an overflow) is a finding.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use swarmlog_format::check::{check_array_super, reseal, sample_log_image, scan_log_image};

static SAMPLE: OnceLock<Vec<u8>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let mut image = SAMPLE.get_or_init(sample_log_image).clone();
    for p in data.chunks_exact(10) {
        let n = u16::from_le_bytes([p[0], p[1]]);
        let at = usize::from(n & 0x7fff);
        image[at..at + 8].copy_from_slice(&p[2..]);
        if n & 0x8000 == 0 {
            // The line (or the two) the patch touched.
            for line in [at / 64, (at + 7) / 64] {
                reseal(&mut image[line * 64..line * 64 + 64]);
            }
        }
    }
    let _ = scan_log_image(&image);
    if let Some(head) = data.get(..64) {
        let mut sb = [0u8; 64];
        sb.copy_from_slice(head);
        reseal(&mut sb);
        let _ = check_array_super(&sb);
    }
});
