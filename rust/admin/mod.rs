// SPDX-License-Identifier: GPL-2.0

//! The administrator's interface: the configfs tree of volumes (`configfs`)
//! and their activation (`active`), which wires the device layer, replay
//! and the exposed disk together.

mod active;
pub(crate) mod configfs;
