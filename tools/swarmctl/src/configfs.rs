// SPDX-License-Identifier: GPL-2.0

//! The volume commands over configfs (`/sys/kernel/config/swarmlog/NAME/`,
//! see the admin guide): create, enable, disable, remove. A refused write
//! is told in the admin's terms: the attribute, the value, what the errno
//! means there and what to do about it.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Linux errno values the module returns (asm-generic).
mod errno {
    pub const ENOENT: i32 = 2;
    pub const EIO: i32 = 5;
    pub const EACCES: i32 = 13;
    pub const EBUSY: i32 = 16;
    pub const EEXIST: i32 = 17;
    pub const EINVAL: i32 = 22;
    pub const ENOSPC: i32 = 28;
    pub const ERANGE: i32 = 34;
    pub const ENOTEMPTY: i32 = 39;
    pub const EUCLEAN: i32 = 117;
    pub const EMEDIUMTYPE: i32 = 124;
    pub const ECANCELED: i32 = 125;
    pub const EPERM: i32 = 1;
}

/// The swarmlog configfs directory and its volumes.
pub struct Configfs {
    root: PathBuf,
}

/// What an errno means for attribute `attr`, and what to do.
fn hint(attr: &str, code: i32) -> &'static str {
    use errno::*;
    match (attr, code) {
        (_, EPERM | EACCES) => "permission denied: run as root",
        ("log" | "array", EINVAL) => "not an absolute device path (no spaces, 256 bytes at most)",
        ("log" | "array", EBUSY) => "the volume is enabled: disable it first",
        ("format", EINVAL) => "set log and array first; see `dmesg`",
        ("format", EBUSY) => "the volume is enabled or a device is in use: disable it first",
        ("format", ENOSPC) => "the log device is too small (pmem: over 2 MiB, block: over 4 MiB)",
        ("enable", EINVAL) => {
            "the log or the array is not usable: not formatted, belonging to another array, a \
             smaller array, or an unsupported block size; `dmesg` says which, \
             `swarmctl inspect LOGDEV` shows the log"
        }
        ("enable", EBUSY) => {
            "already enabled, a replay is running, or a device is held by another user"
        }
        ("enable", EUCLEAN) => {
            "the log is corrupt: save the log device (dd if=LOGDEV of=FILE), then `echo 1 > \
             discard_corrupt` and enable again to replay up to the corrupt record and drop it and \
             every record after it (admin guide, \"Corrupt log\"); `swarmctl inspect LOGDEV` \
             shows where"
        }
        ("enable", EMEDIUMTYPE) => {
            "the log was written for the other medium (pmem or block device) or another logical \
             block size: format it anew on this device (that erases the volume)"
        }
        ("enable", EIO) => {
            "replay skipped records (array unavailable or damaged) or the log is damaged; see \
             `dmesg`; once the array is repaired enable again, or `echo 1 > discard_skipped` to \
             drop the skipped records"
        }
        ("enable", ECANCELED) => "the replay was aborted (enable 0); enable again to resume it",
        ("swarm_width", ERANGE) => "out of range 1..=4096",
        (_, ENOENT) => "no such volume (is swarmlog loaded? `swarmctl status` lists volumes)",
        _ => "see `dmesg`",
    }
}

/// The error of writing `value` to `attr` of volume `name`.
fn refused(name: &str, attr: &str, value: &str, e: &io::Error) -> String {
    let h = e.raw_os_error().map_or("see `dmesg`", |c| hint(attr, c));
    format!("{name}: writing {value:?} to {attr} failed: {e}\n  hint: {h}")
}

impl Configfs {
    /// The subsystem at `root` (normally `/sys/kernel/config/swarmlog`).
    #[must_use]
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
        }
    }

    /// A volume's directory; volume names are one path component.
    pub fn volume(&self, name: &str) -> Result<PathBuf, String> {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(format!("{name:?}: not a volume name"));
        }
        Ok(self.root.join(name))
    }

    /// A volume that exists.
    fn existing(&self, name: &str) -> Result<PathBuf, String> {
        let dir = self.volume(name)?;
        if !self.root.is_dir() {
            return Err(format!(
                "{}: no such directory: is swarmlog loaded (insmod swarmlog.ko) and configfs \
                 mounted?",
                self.root.display()
            ));
        }
        if !dir.is_dir() {
            return Err(format!("{name}: no such volume in {}", self.root.display()));
        }
        Ok(dir)
    }

    /// Writes `value` to attribute `attr` of volume `name`, as `echo` does.
    pub(crate) fn write(&self, name: &str, attr: &str, value: &str) -> Result<(), String> {
        let dir = self.existing(name)?;
        fs::write(dir.join(attr), format!("{value}\n")).map_err(|e| refused(name, attr, value, &e))
    }

    /// Reads attribute `attr` of volume `name`, without its newline.
    pub fn read(&self, name: &str, attr: &str) -> Result<String, String> {
        let p = self.existing(name)?.join(attr);
        let s = fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        Ok(s.trim_end_matches('\n').to_string())
    }

    /// Whether volume `name` exists.
    #[must_use]
    pub fn exists(&self, name: &str) -> bool {
        self.volume(name).is_ok_and(|d| d.is_dir())
    }

    /// The volumes, by name.
    pub fn volumes(&self) -> Result<Vec<String>, String> {
        let rd = fs::read_dir(&self.root).map_err(|e| {
            format!(
                "{}: {e}: is swarmlog loaded (insmod swarmlog.ko)?",
                self.root.display()
            )
        })?;
        let mut names: Vec<String> = rd
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        Ok(names)
    }

    /// Makes volume `name` on `log` and `array`, and formats both if asked.
    /// A volume left half made is removed again.
    pub fn create(&self, name: &str, log: &str, array: &str, format: bool) -> Result<(), String> {
        let dir = self.volume(name)?;
        fs::create_dir(&dir).map_err(|e| match e.raw_os_error() {
            Some(errno::EEXIST) => format!("{name}: the volume exists already"),
            Some(errno::ENOENT) => format!(
                "{}: no such directory: is swarmlog loaded (insmod swarmlog.ko)?",
                self.root.display()
            ),
            _ => format!("{name}: cannot make the volume: {e}"),
        })?;
        let mut steps = vec![("log", log), ("array", array)];
        if format {
            steps.push(("format", "1"));
        }
        for (attr, value) in steps {
            if let Err(e) = self.write(name, attr, value) {
                // The configfs group goes with its attributes.
                let undone = fs::remove_dir(&dir).is_ok();
                let note = if undone {
                    "removed again"
                } else {
                    "left in place"
                };
                return Err(format!("{e}\n  the volume {name} was {note}"));
            }
        }
        Ok(())
    }

    /// Enables volume `name` (its replay, if any, runs before this returns).
    pub fn enable(&self, name: &str) -> Result<(), String> {
        self.write(name, "enable", "1")
    }

    /// Disables volume `name` (its final CP runs first).
    pub fn disable(&self, name: &str) -> Result<(), String> {
        self.write(name, "enable", "0")
    }

    /// Whether volume `name` is enabled or replaying: `enable` reads 0
    /// during a replay, which writing 0 aborts; `status` says `state
    /// replaying` then.
    pub fn active(&self, name: &str) -> bool {
        self.read(name, "enable").is_ok_and(|e| e != "0")
            || self
                .read(name, "status")
                .is_ok_and(|s| s.lines().any(|l| l.trim() == "state replaying"))
    }

    /// Disables volume `name` if it is enabled (or aborts its replay), then
    /// removes it.
    pub fn remove(&self, name: &str) -> Result<(), String> {
        let dir = self.existing(name)?;
        if self.active(name) {
            self.disable(name)?;
        }
        fs::remove_dir(&dir).map_err(|e| match e.raw_os_error() {
            Some(errno::ENOTEMPTY) => {
                format!("{name}: cannot remove: {e} (not a configfs volume?)")
            }
            _ => format!("{name}: cannot remove: {e}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_name_the_recovery() {
        let e = io::Error::from_raw_os_error(errno::EUCLEAN);
        let m = refused("vol0", "enable", "1", &e);
        assert!(
            m.starts_with("vol0: writing \"1\" to enable failed:"),
            "{m}"
        );
        assert!(m.contains("discard_corrupt") && m.contains("save the log device"));
        let e = io::Error::from_raw_os_error(errno::EMEDIUMTYPE);
        assert!(refused("v", "enable", "1", &e).contains("other medium"));
        let e = io::Error::from_raw_os_error(errno::EINVAL);
        assert!(refused("v", "log", "dev", &e).contains("absolute device path"));
        let e = io::Error::from_raw_os_error(errno::EBUSY);
        assert!(refused("v", "format", "1", &e).contains("disable it first"));
    }

    #[test]
    fn volume_names_are_one_component() {
        let c = Configfs::new(Path::new("/nonexistent"));
        for bad in ["", ".", "..", "a/b", "/x"] {
            assert!(c.volume(bad).is_err(), "{bad:?}");
        }
        assert_eq!(c.volume("vol0"), Ok(PathBuf::from("/nonexistent/vol0")));
    }
}
