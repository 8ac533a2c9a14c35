// SPDX-License-Identifier: GPL-2.0

//! A volume's two devices: format (a fresh metadata area on the array and
//! an empty log bound to it) and open (the checks that the log belongs to
//! the array, then a [`Volume`] whose log still holds what replay must
//! apply).

use core::ffi::c_void;
use kernel::{prelude::*, str::CStr, sync::Arc};

use super::cache::SECTORS;
use super::log::Log;
use super::{Array, Core, Limits, Volume};
use crate::format::array::{ArraySuper, Layout, TableBlock, BLOCK_SIZE};
use crate::format::log::{CpMarker, Geometry, Medium};
use crate::format::Invalid;
use crate::sys::blockdev::BlockDevice;
use crate::sys::blocklog::LogDevice;
use crate::sys::bytes;
use crate::sys::dax::{DaxMapping, Media};

/// Why a device cannot be used, for the kernel log.
fn invalid_reason(i: Invalid) -> &'static str {
    match i {
        Invalid::Magic => "nothing of swarmlog's on it (write 1 to format)",
        Invalid::Version => "an unknown format version",
        Invalid::Checksum => "a corrupt header",
        Invalid::Field | Invalid::LogId | Invalid::Sequence => "an inconsistent header",
        Invalid::Range => "a read error",
        Invalid::Unreadable | Invalid::DataUnreadable => "a bad line of the pmem",
        Invalid::Medium => "a log of the other medium",
    }
}

/// Opens the log (pmem through DAX, or any other block device) and the
/// array devices for `holder`.
fn open_devices(log: &CStr, array: &CStr, holder: *mut c_void) -> Result<(LogDevice, BlockDevice)> {
    let log_dev = BlockDevice::open(log, holder).inspect_err(|e| {
        pr_err!(
            "cannot open log device {}: {:?}\n",
            log.to_str().unwrap_or("?"),
            e
        )
    })?;
    let array_dev = BlockDevice::open(array, holder).inspect_err(|e| {
        pr_err!(
            "cannot open array device {}: {:?}\n",
            array.to_str().unwrap_or("?"),
            e
        )
    })?;
    if log_dev.as_raw() == array_dev.as_raw() {
        pr_err!("the log and the array are the same device\n");
        return Err(EINVAL);
    }
    // Since a log may be on any block device, log and array swapped would
    // be taken (and formatting them would destroy both): pmem is never
    // the array.
    if DaxMapping::is_pmem(&array_dev, holder) {
        pr_err!(
            "the array device {} is pmem (DAX): are the log and the array swapped?\n",
            array.to_str().unwrap_or("?")
        );
        return Err(EINVAL);
    }
    if array_dev.logical_block_size() as usize > BLOCK_SIZE {
        pr_err!("array logical block size is above {BLOCK_SIZE}\n");
        return Err(EINVAL);
    }
    let media = LogDevice::new(log_dev, holder).inspect_err(|e| {
        pr_err!(
            "cannot use {} as a log device: {:?}\n",
            log.to_str().unwrap_or("?"),
            e
        )
    })?;
    Ok((media, array_dev))
}

/// Writes a fresh array metadata area and an empty log bound to it.
/// With `slotted`, a pmem log gets slots (`format.rst`, "Slots").
pub(crate) fn format(log: &CStr, array: &CStr, holder: *mut c_void, slotted: bool) -> Result {
    let (media, array_dev) = open_devices(log, array, holder)?;
    let (log, array) = (log.to_str().unwrap_or("?"), array.to_str().unwrap_or("?"));
    let layout = format_on(media, &array_dev, slotted)?;
    pr_info!(
        "formatted {} ({} data blocks of {} bytes) with log {}\n",
        array,
        layout.data_blocks,
        BLOCK_SIZE,
        log
    );
    Ok(())
}

/// Formats `array` and the log on `media`: every table block empty in
/// both copies, then the superblock, then the log (its header last, the
/// commit point of [`Log::format`]); a pmem log with slots if `slotted`.
pub(super) fn format_on<M: Media, A: Array>(media: M, array: &A, slotted: bool) -> Result<Layout> {
    let layout = Layout::for_array(array.nr_sectors() / SECTORS).ok_or_else(|| {
        pr_err!("the array is too small\n");
        ENOSPC
    })?;
    let geo = match media.medium() {
        Medium::Pmem => Geometry::new(media.size()),
        Medium::Block { unit } => Geometry::block(media.size(), unit),
    };
    if geo.is_none() {
        let need = if media.medium() == Medium::Pmem { 2 } else { 4 };
        pr_err!("the log device is too small (needs more than {need} MiB)\n");
        return Err(ENOSPC);
    }
    let mut uuid = [0u8; 16];
    // SAFETY: `uuid` is a valid buffer of 16 bytes.
    unsafe { kernel::bindings::get_random_bytes(uuid.as_mut_ptr().cast(), uuid.len()) };
    // SAFETY: no preconditions.
    let log_id = unsafe { kernel::bindings::get_random_u64() };

    // Both copies of every table block, empty, generation 0; 1 MiB a write.
    const RUN: u64 = 256;
    let mut buf = bytes::zeroed(RUN as usize * BLOCK_SIZE, GFP_KERNEL)?;
    let copies = 2 * layout.table_blocks;
    let mut done = 0u64;
    while done < copies {
        let n = RUN.min(copies - done);
        for (i, blk) in buf.chunks_mut(BLOCK_SIZE).enumerate().take(n as usize) {
            blk.fill(0);
            TableBlock(blk).seal((done + i as u64) / 2, 0);
        }
        buf.truncate(n as usize * BLOCK_SIZE);
        array.write((1 + done) * SECTORS, &buf, false)?;
        bytes::resize_zeroed(&mut buf, RUN as usize * BLOCK_SIZE, GFP_KERNEL)?;
        done += n;
    }
    array.flush()?;
    let sb = ArraySuper {
        uuid,
        layout,
        cp_generation: 0,
    };
    let mut block = KVec::with_capacity(BLOCK_SIZE, GFP_KERNEL)?;
    bytes::extend(&mut block, &sb.encode(), GFP_KERNEL)?;
    bytes::resize_zeroed(&mut block, BLOCK_SIZE, GFP_KERNEL)?;
    array.write(0, &block, true)?;
    array.flush()?;
    Log::format(media, uuid, log_id, slotted)?;
    Ok(layout)
}

/// Opens volume `name` on its `log` and `array` devices for `holder`.
/// Returns the volume and the log's CP marker, past which replay has to
/// apply the log.
pub(crate) fn open(
    name: &CStr,
    (log, array): (&CStr, &CStr),
    holder: *mut c_void,
    limits: Limits,
) -> Result<(Arc<Volume>, CpMarker)> {
    let (media, array_dev) = open_devices(log, array, holder)?;
    let names = (log.to_str().unwrap_or("?"), array.to_str().unwrap_or("?"));
    open_on(name, (media, array_dev), names, limits)
}

/// Opens volume `name` on `media` and `array` (named `names` in the kernel
/// log): checks that the log belongs to the array and that the array is as
/// big as when it was formatted.
pub(super) fn open_on<M: Media + 'static, A: Array>(
    name: &CStr,
    (media, array): (M, A),
    (log_dev, array_dev): (&str, &str),
    limits: Limits,
) -> Result<(Arc<Core<M, A>>, CpMarker)> {
    let medium = media.medium();
    let log = Log::open(media).map_err(|(why, _)| {
        if why == Invalid::Medium {
            pr_err!(
                "log device {}: {}, which swarmlog's log is not (format it anew on this device \
                 to use it)\n",
                log_dev,
                match medium {
                    Medium::Pmem => "pmem with DAX holds a log written for a block device",
                    Medium::Block { .. } => {
                        "a block device without DAX holds a log written for pmem, or for another \
                         logical block size"
                    }
                }
            );
            return EMEDIUMTYPE;
        }
        pr_err!("log device {}: {}\n", log_dev, invalid_reason(why));
        EINVAL
    })?;
    let mut block = bytes::zeroed(BLOCK_SIZE, GFP_KERNEL)?;
    array.read(0, &mut block)?;
    let mut line = [0u8; 64];
    line.copy_from_slice(block.get(..64).ok_or(EINVAL)?);
    let sb = ArraySuper::decode(&line).map_err(|why| {
        pr_err!("array device {}: {}\n", array_dev, invalid_reason(why));
        EINVAL
    })?;
    if sb.uuid != log.header().array_uuid {
        pr_err!("the log on {log_dev} belongs to another array, not {array_dev}\n");
        return Err(EINVAL);
    }
    if sb.layout.array_blocks() > array.nr_sectors() / SECTORS {
        pr_err!("the array is smaller than when it was formatted\n");
        return Err(EINVAL);
    }
    let (cp_slot, cp) = log.cp_marker().inspect_err(|_| {
        pr_err!("log device {log_dev}: no usable CP marker\n");
    })?;
    let interrupted = log.cp_intent(&cp).inspect_err(|_| {
        pr_err!("log device {log_dev}: no usable CP intent\n");
    })?;
    let core = Core::new(
        name,
        log,
        array,
        sb.layout,
        (cp_slot, cp, interrupted),
        limits,
    )?;
    Ok((core, cp))
}
