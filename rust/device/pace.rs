// SPDX-License-Identifier: GPL-2.0

//! Pacing of the CP loop's work while writers are active and the log has
//! room: after each stretch of work (a CP's batch of writes, a round of
//! checksums ahead) of at least [`QUANTUM_US`], the loop sleeps so that it
//! works at most `cp_share` percent of the time (module parameter).
//!
//! Why: the CP's reads of the pmem, its checksums and the bios it issues
//! take the CPU and the host threads that a writer's next write needs;
//! measured under TCG on two cores, a CP running flat out beside a QD1
//! writer is what sets the writer's p99 (`performance.rst`). A CP is
//! paced only while nothing waits for it: writes arrived during the last
//! stretch, and the log is at most half used and the cache's memory at
//! most half of `cache_max_mb` (a timed CP paced until then runs flat out
//! from there on; past three quarters writers ask for a CP, which is never
//! paced: `room.rs`); with no writer (a CP at `disable`, or after a
//! burst), it runs flat out too. A first version paced up to three
//! quarters of the log: a writer then waited 466 ms for room once in
//! five runs of `make bench-pace` (`performance.rst`).

use core::sync::atomic::Ordering::Relaxed;
use kernel::prelude::*;
use kernel::time::{delay::fsleep, Delta, Instant, Monotonic};

use super::{Array, Core};
use crate::sys::dax::Media;

/// Work shorter than this is not paced: a sleep costs a wake-up.
const QUANTUM_US: u64 = 2000;

/// The longest sleep of one pause, in microseconds.
const MAX_PAUSE_US: u64 = 20_000;

/// How long to sleep after `busy_us` of work for the work to take `share`
/// percent of the time: `busy * (100 - share) / share`, at most
/// [`MAX_PAUSE_US`]; 0 for a share of 100 or more (or 0, which the
/// module parameter never gives).
pub(super) fn pause_us(busy_us: u64, share: u32) -> u64 {
    if share == 0 || share >= 100 {
        return 0;
    }
    let share = u64::from(share);
    (busy_us.saturating_mul(100 - share) / share).min(MAX_PAUSE_US)
}

/// The pacing state of one stretch of work.
pub(super) struct Pacer {
    /// Since when the loop has been working.
    since: Instant<Monotonic>,
    /// The volume's write count when the stretch began.
    writes: u64,
}

impl<M: Media + 'static, A: Array> Core<M, A> {
    /// A pacer whose stretch of work begins now.
    pub(super) fn pacer(&self) -> Pacer {
        Pacer {
            since: Instant::now(),
            writes: self.stats.writes.load(Relaxed),
        }
    }

    /// Called between pieces of the CP loop's work: once the stretch has
    /// lasted [`QUANTUM_US`], sleeps as `cp_share` asks if the CP may be
    /// paced now, and begins a new stretch.
    pub(super) fn pace(&self, p: &mut Pacer) {
        let busy = u64::try_from(p.since.elapsed().as_micros_ceil()).unwrap_or(0);
        if busy < QUANTUM_US {
            return;
        }
        let writes = self.stats.writes.load(Relaxed);
        let active = writes != p.writes;
        let pause = pause_us(busy, self.limits.cp_share);
        if active && pause > 0 && self.has_room() {
            fsleep(Delta::from_micros(pause as i64));
            self.stats.cp_paced_us.fetch_add(pause, Relaxed);
        }
        *p = self.pacer();
    }

    /// Whether nothing waits for the CP: no CP asked for (`kick`: the log
    /// past three quarters used, or a writer waiting for room), the log (its
    /// ring and its slots) at most half used, the cache's memory at most half its limit, the volume not
    /// stopping.
    pub(super) fn has_room(&self) -> bool {
        let st = self.state.lock();
        !st.stop
            && !st.kick
            && !self.past_half(&st)
            && st.cache.ram_blocks() <= self.limits.cache_blocks / 2
    }
}

#[kernel::prelude::kunit_tests(swarmlog_pace)]
mod tests {
    use super::*;

    #[test]
    fn pause_gives_the_share() -> Result {
        // Half the time: as long a sleep as the work.
        assert_eq!(pause_us(4000, 50), 4000);
        // A quarter of the time: three times as long.
        assert_eq!(pause_us(2000, 25), 6000);
        // Never paced at 100 (or more), nor at 0.
        assert_eq!(pause_us(4000, 100), 0);
        assert_eq!(pause_us(4000, 150), 0);
        assert_eq!(pause_us(4000, 0), 0);
        // Bounded, and no overflow on a huge stretch.
        assert_eq!(pause_us(1_000_000, 10), MAX_PAUSE_US);
        assert_eq!(pause_us(u64::MAX, 50), MAX_PAUSE_US);
        Ok(())
    }
}
