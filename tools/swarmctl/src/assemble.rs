// SPDX-License-Identifier: GPL-2.0

//! Boot integration over configfs: `swarmctl assemble` makes and enables
//! the volumes of `/etc/swarmlog.conf` (never formatting anything),
//! `config-line` writes a volume's line for that file from what configfs
//! holds, `disable --all` disables every enabled volume, and `udev-name`
//! gives the volume of a `swarmlogN` disk for a udev symlink.

use std::thread::sleep;
use std::time::Duration;

use crate::conf::{valid_name, VolumeConf, DEFAULT_SWARM_WIDTH};
use crate::configfs::Configfs;
use crate::status::Status;

/// ` as /dev/DISK` for an enabled volume, else nothing.
fn as_disk(c: &Configfs, name: &str) -> String {
    match c.read(name, "disk") {
        Ok(d) if !d.is_empty() => format!(" as /dev/{d}"),
        _ => String::new(),
    }
}

/// Makes (if needed) and enables volume `v`. One already enabled (its
/// `status` says so) is left as it is; one replaying or existing with
/// other devices is refused; one whose `enable` fails is left in place for
/// `swarmctl status` to tell why.
pub fn assemble_one(c: &Configfs, v: &VolumeConf) -> Result<String, String> {
    let name = v.name.as_str();
    let existed = c.exists(name);
    if existed {
        let status = Status::parse(&c.read(name, "status")?).map_err(|e| format!("{name}: {e}"))?;
        match status.get("state") {
            Some("enabled") => {
                return Ok(format!(
                    "{name}: already enabled{}, left as it is",
                    as_disk(c, name)
                ))
            }
            Some("replaying") => {
                return Err(format!(
                    "{name}: an enable is replaying the log already (`swarmctl watch {name}`)"
                ))
            }
            _ => {}
        }
        for (attr, want) in [("log", &v.log), ("array", &v.array)] {
            let have = c.read(name, attr)?;
            if have.is_empty() {
                c.write(name, attr, want)?;
            } else if have != *want {
                return Err(format!(
                    "{name}: the volume exists with {attr} {have}, the configuration says \
                     {want}: correct the file, or `swarmctl remove {name}`"
                ));
            }
        }
    } else {
        c.create(name, &v.log, &v.array, false)?;
    }
    if let Some(w) = v.swarm_width {
        c.write(name, "swarm_width", &w.to_string())?;
    }
    c.enable(name).map_err(|e| {
        format!("{e}\n  the volume {name} is left in place: `swarmctl status {name}` tells more")
    })?;
    let how = if existed {
        "enabled"
    } else {
        "created and enabled"
    };
    Ok(format!("{name}: {how}{}", as_disk(c, name)))
}

/// `swarmctl assemble`: the volumes of `vols`, or only `only`, each with
/// its result; the others go on after a failure.
pub fn assemble(
    c: &Configfs,
    vols: &[VolumeConf],
    only: Option<&str>,
) -> Result<Vec<Result<String, String>>, String> {
    let picked: Vec<&VolumeConf> = match only {
        Some(n) => match vols.iter().find(|v| v.name == n) {
            Some(v) => vec![v],
            None => return Err(format!("{n}: not listed in the configuration file")),
        },
        None => vols.iter().collect(),
    };
    Ok(picked.into_iter().map(|v| assemble_one(c, v)).collect())
}

/// The configuration line of existing volume `name`.
pub fn config_line(c: &Configfs, name: &str) -> Result<String, String> {
    if !valid_name(name) {
        return Err(format!(
            "{name:?}: this name cannot be written in swarmlog.conf (letters, digits and -_.:+@)"
        ));
    }
    let (log, array) = (c.read(name, "log")?, c.read(name, "array")?);
    if log.is_empty() || array.is_empty() {
        return Err(format!("{name}: log or array not set"));
    }
    let width = c.read(name, "swarm_width")?;
    let swarm_width = match width.parse::<u32>() {
        Ok(DEFAULT_SWARM_WIDTH) => None,
        Ok(w) => Some(w),
        Err(_) => return Err(format!("{name}: swarm_width {width:?} is not a number")),
    };
    let v = VolumeConf {
        name: name.to_string(),
        log,
        array,
        swarm_width,
    };
    Ok(v.line())
}

/// `swarmctl config-line`: the line of volume `name`, or of every volume
/// (those that cannot be written are told in a comment).
pub fn config_lines(c: &Configfs, name: Option<&str>) -> Result<String, String> {
    if let Some(n) = name {
        return config_line(c, n).map(|l| l + "\n");
    }
    Ok(c.volumes()?
        .iter()
        .map(|n| config_line(c, n).unwrap_or_else(|e| format!("# {e}")) + "\n")
        .collect())
}

/// `swarmctl disable --all`: every enabled volume, each with its result.
pub fn disable_all(c: &Configfs) -> Result<Vec<Result<String, String>>, String> {
    Ok(c.volumes()?
        .iter()
        .filter(|n| c.active(n))
        .map(|n| c.disable(n).map(|()| format!("{n}: disabled")))
        .collect())
}

/// `swarmctl udev-name`: the volume whose `disk` is `kernel` (e.g.
/// `swarmlog0`). `disk` is shown once `enable` has returned, a moment
/// after the disk's uevent: asked `tries` times, `pause` apart.
pub fn udev_name(
    c: &Configfs,
    kernel: &str,
    tries: u32,
    pause: Duration,
) -> Result<String, String> {
    for i in 0..tries.max(1) {
        if i > 0 {
            sleep(pause);
        }
        for n in c.volumes()? {
            if c.read(&n, "disk").is_ok_and(|d| d == kernel) {
                if !valid_name(&n) {
                    return Err(format!("{n:?}: not a name for a symlink"));
                }
                return Ok(n + "\n");
            }
        }
    }
    Err(format!("{kernel}: no volume has this disk"))
}
