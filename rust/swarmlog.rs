// SPDX-License-Identifier: GPL-2.0

//! swarmlog: a persistent-memory write-ahead log in front of an md array,
//! exposed as one block device, replayed after a crash by a swarm of
//! parallel LOADs and one ordered MODIFY path.
//!
//! Volumes are created and configured through configfs, under
//! `/sys/kernel/config/swarmlog/`; see
//! `Documentation/swarmlog/admin-guide.rst`.

mod admin;
mod device;
mod format;
mod replay;
mod sys;

use kernel::prelude::*;

module! {
    type: SwarmlogModule,
    name: "swarmlog",
    authors: ["The swarmlog developers"],
    description: "pmem write-ahead log over an md array with swarm replay",
    license: "GPL",
    params: {
        cp_interval_ms: u32 {
            default: 5000,
            description: "Milliseconds between timed consistency points (CPs also run on log or cache fill and at disable)",
        },
        cache_max_mb: u32 {
            default: 64,
            description: "MiB of blocks a volume holds in memory before writers wait for a CP (at least 4)",
        },
        cp_share: u32 {
            default: 50,
            description: "Percent of the time a CP works while writers are active and the log has room; it sleeps the rest (10 to 100; 100: never paced)",
        },
    },
}

/// The time between timed CPs, from the module parameter (at least 10 ms).
pub(crate) fn cp_interval_ms() -> u32 {
    module_parameters::cp_interval_ms.value().max(10)
}

/// The share of the time a CP works while it is paced, in percent, from
/// the module parameter (10 to 100).
pub(crate) fn cp_share() -> u32 {
    module_parameters::cp_share.value().clamp(10, 100)
}

/// Most blocks a volume holds in memory (dirty and committing) before
/// writers wait for a CP, from the module parameter (at least 4 MiB).
pub(crate) fn max_cache_blocks() -> usize {
    let mb = module_parameters::cache_max_mb.value().max(4) as usize;
    mb.saturating_mul(1 << 20) / format::array::BLOCK_SIZE
}

#[pin_data]
struct SwarmlogModule {
    #[pin]
    configfs_subsystem: kernel::configfs::Subsystem<admin::configfs::Config>,
}

impl kernel::InPlaceModule for SwarmlogModule {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        pr_info!("swarmlog loaded\n");
        try_pin_init!(Self {
            configfs_subsystem <- admin::configfs::subsystem(),
        })
    }
}
