// SPDX-License-Identifier: GPL-2.0

//! Where an inspection reads from: a device or an image file (positioned
//! reads, never a write) or bytes in memory, and the adapter that gives the
//! format code's scan its `LogRead` view of it, reading ahead as the
//! module's `MediaReader` does so that a block log's data sums do not cost
//! a read per 512 bytes.

use std::cell::RefCell;
use std::io;

use crate::format::log::LogRead;
use crate::format::Invalid;

/// Bytes that can be read at any offset: a device, an image, a buffer.
pub trait ReadAt {
    /// Fills `buf` with the bytes at `off`; an error if any is missing.
    fn read_exact_at(&self, buf: &mut [u8], off: u64) -> io::Result<()>;
}

impl ReadAt for std::fs::File {
    fn read_exact_at(&self, buf: &mut [u8], off: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self, buf, off)
    }
}

impl ReadAt for [u8] {
    fn read_exact_at(&self, buf: &mut [u8], off: u64) -> io::Result<()> {
        let src = usize::try_from(off)
            .ok()
            .and_then(|s| self.get(s..s.checked_add(buf.len())?))
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

impl ReadAt for Vec<u8> {
    fn read_exact_at(&self, buf: &mut [u8], off: u64) -> io::Result<()> {
        self.as_slice().read_exact_at(buf, off)
    }
}

/// Bytes read at once by [`Reader`].
const READ_AHEAD: usize = 1 << 20;

/// The scan's view of a [`ReadAt`] of `size` bytes.
pub(crate) struct Reader<'a, R: ReadAt + ?Sized> {
    src: &'a R,
    size: u64,
    /// `(offset, bytes)` read ahead.
    ahead: RefCell<(u64, Vec<u8>)>,
}

impl<'a, R: ReadAt + ?Sized> Reader<'a, R> {
    pub(crate) fn new(src: &'a R, size: u64) -> Self {
        Self {
            src,
            size,
            ahead: RefCell::new((0, Vec::new())),
        }
    }

    /// The 64-byte line at `off`, or why it cannot be read.
    pub(crate) fn line(&self, off: u64) -> Result<[u8; 64], String> {
        let mut line = [0u8; 64];
        self.read_at(off, &mut line)
            .map_err(|e| format!("cannot read 64 bytes at offset {off}: {e:?}"))?;
        Ok(line)
    }
}

/// A read error as the module's scan sees one: `EIO` is a bad line of the
/// media, anything else out of range.
fn invalid(e: &io::Error) -> Invalid {
    if e.raw_os_error() == Some(5) {
        Invalid::Unreadable
    } else {
        Invalid::Range
    }
}

impl<R: ReadAt + ?Sized> LogRead for Reader<'_, R> {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<(), Invalid> {
        let len = buf.len() as u64;
        let end = off.checked_add(len).ok_or(Invalid::Range)?;
        if end > self.size {
            return Err(Invalid::Range);
        }
        if buf.len() > READ_AHEAD {
            return self.src.read_exact_at(buf, off).map_err(|e| invalid(&e));
        }
        let mut a = self.ahead.try_borrow_mut().map_err(|_| Invalid::Range)?;
        if off < a.0 || end > a.0 + a.1.len() as u64 {
            let n = (self.size - off).min(READ_AHEAD as u64) as usize;
            a.1.resize(n, 0);
            if self.src.read_exact_at(&mut a.1, off).is_err() {
                // A bad spot somewhere ahead: read just what is asked.
                a.1.clear();
                return self.src.read_exact_at(buf, off).map_err(|e| invalid(&e));
            }
            a.0 = off;
        }
        let at = (off - a.0) as usize;
        let src = a.1.get(at..at + buf.len()).ok_or(Invalid::Range)?;
        buf.copy_from_slice(src);
        Ok(())
    }
}
