// SPDX-License-Identifier: GPL-2.0

//! A message: the transaction block of one log record (claim 2), a pointer
//! to the record and its state, and what starting its LOAD did.

use crate::device::cache::SECTORS;
use crate::format::log::Op;

/// The state of a message (claim 2), plus the outcomes skip and panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// Newly transferred to the file system (or retransferred).
    New,
    /// Its LOAD was issued and has not completed.
    Loading,
    /// LOAD complete.
    Loaded,
    /// MODIFY complete.
    Modified,
    /// Cannot LOAD until its prerequisite is LOADED and MODIFIED.
    Suspended,
    /// Omitted: its part of the array is unavailable; its record is kept.
    Skipped,
}

impl State {
    /// The state's name, as the trace shows it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            State::New => "NEW",
            State::Loading => "LOADING",
            State::Loaded => "LOADED",
            State::Modified => "MODIFIED",
            State::Suspended => "SUSPENDED",
            State::Skipped => "SKIPPED",
        }
    }
}

/// A message: the transaction block of one log record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Message {
    /// Sequence number of its record.
    pub(crate) seq: u64,
    /// Log offset of its record: the pointer to the entry.
    pub(crate) offset: u64,
    /// What the record does.
    pub(crate) op: Op,
    pub(crate) sector: u64,
    pub(crate) nr_sectors: u32,
    /// Its state.
    pub(crate) state: State,
    /// Index in the swarm of the earlier message it must wait for, if any.
    pub(crate) prerequisite: Option<usize>,
    /// Whether the initiator retransferred it.
    pub(crate) retransferred: bool,
}

impl Message {
    /// A new message for a record.
    pub(crate) fn new(seq: u64, offset: u64, op: Op, sector: u64, nr_sectors: u32) -> Self {
        Self {
            seq,
            offset,
            op,
            sector,
            nr_sectors,
            state: State::New,
            prerequisite: None,
            retransferred: false,
        }
    }

    /// The data blocks the message changes.
    pub(crate) fn blocks(&self) -> core::ops::Range<u64> {
        let end = self.sector.saturating_add(u64::from(self.nr_sectors));
        self.sector / SECTORS..end.div_ceil(SECTORS)
    }

    /// The blocks the message changes only in part: their old contents are
    /// what its LOAD reads (with their table blocks); it needs nothing from
    /// the array for the blocks it writes whole.
    pub(crate) fn partial_blocks(&self) -> [Option<u64>; 2] {
        let end = self.sector.saturating_add(u64::from(self.nr_sectors));
        let first = self.sector / SECTORS;
        let last = end.div_ceil(SECTORS).saturating_sub(1);
        let head = (self.sector % SECTORS != 0 || end < (first + 1) * SECTORS).then_some(first);
        let tail = (end % SECTORS != 0 && last != first).then_some(last);
        [head, tail]
    }
}

/// How a message's LOAD started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// Nothing to read: the message is LOADED now.
    Done,
    /// Its reads were issued: one of the `width` LOADs in flight.
    Issued,
}
