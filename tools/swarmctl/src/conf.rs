// SPDX-License-Identifier: GPL-2.0

//! `/etc/swarmlog.conf`, the volumes to assemble at boot, in the manner of
//! `mdadm.conf`: one line per volume,
//!
//! ```text
//! VOLUME name log=/dev/X array=/dev/Y [swarm_width=N]
//! ```
//!
//! blank lines, and comments from a word starting with `#` to the end of
//! the line. A volume name, a missing `log` or `array`, an unknown or
//! repeated key, a value the module would refuse and a name listed twice
//! are errors, each with its line number.

use std::path::Path;

/// Largest `swarm_width` the module takes (`rust/admin/configfs.rs`).
const MAX_SWARM_WIDTH: u32 = 4096;
/// The module's default `swarm_width`, left out of a generated line.
pub const DEFAULT_SWARM_WIDTH: u32 = 64;
/// Longest device path the module takes in `log` and `array`.
const MAX_PATH: usize = 256;

/// One `VOLUME` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeConf {
    /// The volume's name (its configfs directory).
    pub name: String,
    /// The log device.
    pub log: String,
    /// The array device.
    pub array: String,
    /// `swarm_width`, if given.
    pub swarm_width: Option<u32>,
}

/// Whether `name` can be a volume name in the file and a udev symlink:
/// one path component of letters, digits and `-_.:+@`.
#[must_use]
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:+@".contains(c))
}

/// Checks a device path as the module does: absolute, at most 256 bytes.
fn device(key: &str, v: &str) -> Result<String, String> {
    if !v.starts_with('/') || v.len() > MAX_PATH {
        return Err(format!("{key}={v}: not an absolute device path"));
    }
    Ok(v.to_string())
}

impl VolumeConf {
    /// The line describing this volume, as the file holds it.
    #[must_use]
    pub fn line(&self) -> String {
        let mut l = format!("VOLUME {} log={} array={}", self.name, self.log, self.array);
        if let Some(w) = self.swarm_width {
            l += &format!(" swarm_width={w}");
        }
        l
    }

    /// Parses the words after `VOLUME`.
    fn parse(words: &[&str]) -> Result<Self, String> {
        let Some((name, keys)) = words.split_first() else {
            return Err("VOLUME without a name".into());
        };
        if !valid_name(name) {
            return Err(format!(
                "{name:?}: not a volume name (letters, digits and -_.:+@)"
            ));
        }
        let (mut log, mut array, mut width) = (None, None, None);
        for kv in keys {
            let Some((k, v)) = kv.split_once('=') else {
                return Err(format!("{kv:?}: not key=value"));
            };
            let slot = match k {
                "log" => &mut log,
                "array" => &mut array,
                "swarm_width" => &mut width,
                _ => return Err(format!("unknown key {k:?} (log, array, swarm_width)")),
            };
            if slot.replace(v).is_some() {
                return Err(format!("{k} given twice"));
            }
        }
        let swarm_width = width
            .map(|w| match w.parse::<u32>() {
                Ok(n) if (1..=MAX_SWARM_WIDTH).contains(&n) => Ok(n),
                _ => Err(format!(
                    "swarm_width={w}: not a number in 1..={MAX_SWARM_WIDTH}"
                )),
            })
            .transpose()?;
        let need = |v: Option<&str>, k: &str| {
            v.ok_or_else(|| format!("{name}: no {k}="))
                .and_then(|v| device(k, v))
        };
        Ok(Self {
            name: (*name).to_string(),
            log: need(log, "log")?,
            array: need(array, "array")?,
            swarm_width,
        })
    }
}

/// Parses a configuration file's text: its volumes, or every error, one
/// per line, `line N: ...`.
pub fn parse(text: &str) -> Result<Vec<VolumeConf>, String> {
    let (mut vols, mut errors) = (Vec::<(usize, VolumeConf)>::new(), Vec::new());
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let words: Vec<&str> = line
            .split_whitespace()
            .take_while(|w| !w.starts_with('#'))
            .collect();
        let res = match words.split_first() {
            None => continue,
            Some((&"VOLUME", rest)) => VolumeConf::parse(rest),
            Some((w, _)) => Err(format!("unknown keyword {w:?} (VOLUME)")),
        };
        match res {
            Ok(v) => match vols.iter().find(|(_, o)| o.name == v.name) {
                Some((first, _)) => errors.push(format!(
                    "line {n}: volume {} already listed on line {first}",
                    v.name
                )),
                None => vols.push((n, v)),
            },
            Err(e) => errors.push(format!("line {n}: {e}")),
        }
    }
    if errors.is_empty() {
        Ok(vols.into_iter().map(|(_, v)| v).collect())
    } else {
        Err(errors.join("\n"))
    }
}

/// Reads and parses the file at `path`; errors name it.
pub fn load(path: &Path) -> Result<Vec<VolumeConf>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse(&text).map_err(|e| {
        e.lines()
            .map(|l| format!("{}: {l}", path.display()))
            .collect::<Vec<_>>()
            .join("\n")
    })
}
