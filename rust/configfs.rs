// SPDX-License-Identifier: GPL-2.0

//! The configfs interface: `/sys/kernel/config/swarmlog/<name>/`.
//!
//! One group per volume. The attributes are those of
//! `Documentation/swarmlog/admin-guide.rst`.

use kernel::{
    configfs::{self, AttributeOperations},
    configfs_attrs,
    fmt::Write as _,
    new_mutex,
    page::PAGE_SIZE,
    prelude::*,
    str::CString,
    sync::Mutex,
};

/// Longest device path accepted in `log` and `array`.
const MAX_PATH: usize = 256;
/// Default and largest `swarm_width`.
pub(crate) const DEFAULT_SWARM_WIDTH: u32 = 64;
pub(crate) const MAX_SWARM_WIDTH: u32 = 4096;

pub(crate) fn subsystem() -> impl PinInit<configfs::Subsystem<Config>, Error> {
    let item_type = configfs_attrs! {
        container: configfs::Subsystem<Config>,
        data: Config,
        child: Volume,
        attributes: [],
    };
    configfs::Subsystem::new(c"swarmlog", item_type, try_pin_init!(Config {}))
}

/// The subsystem's own data: none beyond its children.
#[pin_data]
pub(crate) struct Config {}

#[vtable]
impl configfs::GroupOperations for Config {
    type Child = Volume;

    fn make_group(&self, name: &CStr) -> Result<impl PinInit<configfs::Group<Volume>, Error>> {
        let item_type = configfs_attrs! {
            container: configfs::Group<Volume>,
            data: Volume,
            attributes: [
                log: 0,
                array: 1,
                swarm_width: 2,
                status: 3,
            ],
        };
        Ok(configfs::Group::new(
            name.try_into()?,
            item_type,
            try_pin_init!(Volume {
                inner <- new_mutex!(VolumeConfig {
                    log: None,
                    array: None,
                    swarm_width: DEFAULT_SWARM_WIDTH,
                }),
            }),
        ))
    }
}

/// One volume's configfs group.
#[pin_data]
pub(crate) struct Volume {
    #[pin]
    inner: Mutex<VolumeConfig>,
}

/// What the administrator has configured for a volume.
struct VolumeConfig {
    log: Option<CString>,
    array: Option<CString>,
    swarm_width: u32,
}

/// Parses a device path written to `log` or `array`: one absolute path, a
/// trailing newline allowed, nothing else.
fn parse_path(page: &[u8]) -> Result<CString> {
    let text = core::str::from_utf8(page).map_err(|_| EINVAL)?;
    let text = text.strip_suffix('\n').unwrap_or(text);
    if !text.starts_with('/') || text.len() > MAX_PATH || text.contains(['\n', '\0', ' ']) {
        return Err(EINVAL);
    }
    CString::try_from_fmt(fmt!("{text}"))
}

/// Parses a decimal number with an optional trailing newline.
pub(crate) fn parse_u32(page: &[u8]) -> Result<u32> {
    let text = core::str::from_utf8(page).map_err(|_| EINVAL)?;
    text.strip_suffix('\n')
        .unwrap_or(text)
        .parse::<u32>()
        .map_err(|_| EINVAL)
}

fn show_path(p: &Option<CString>, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
    let mut w = kernel::str::Formatter::new(page);
    if let Some(p) = p {
        w.write_fmt(fmt!("{}", p.to_str()?))?;
    }
    w.write_str("\n")?;
    Ok(w.bytes_written())
}

#[vtable]
impl AttributeOperations<0> for Volume {
    type Data = Volume;

    fn show(this: &Volume, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        show_path(&this.inner.lock().log, page)
    }

    fn store(this: &Volume, page: &[u8]) -> Result {
        let path = parse_path(page).inspect_err(|_| pr_err!("log: not a device path\n"))?;
        this.inner.lock().log = Some(path);
        Ok(())
    }
}

#[vtable]
impl AttributeOperations<1> for Volume {
    type Data = Volume;

    fn show(this: &Volume, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        show_path(&this.inner.lock().array, page)
    }

    fn store(this: &Volume, page: &[u8]) -> Result {
        let path = parse_path(page).inspect_err(|_| pr_err!("array: not a device path\n"))?;
        this.inner.lock().array = Some(path);
        Ok(())
    }
}

#[vtable]
impl AttributeOperations<2> for Volume {
    type Data = Volume;

    fn show(this: &Volume, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        let mut w = kernel::str::Formatter::new(page);
        w.write_fmt(fmt!("{}\n", this.inner.lock().swarm_width))?;
        Ok(w.bytes_written())
    }

    fn store(this: &Volume, page: &[u8]) -> Result {
        let width = parse_u32(page)?;
        if !(1..=MAX_SWARM_WIDTH).contains(&width) {
            pr_err!("swarm_width: {width} is out of range 1..={MAX_SWARM_WIDTH}\n");
            return Err(ERANGE);
        }
        this.inner.lock().swarm_width = width;
        Ok(())
    }
}

#[vtable]
impl AttributeOperations<3> for Volume {
    type Data = Volume;

    fn show(this: &Volume, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        let cfg = this.inner.lock();
        let mut w = kernel::str::Formatter::new(page);
        let state = if cfg.log.is_some() && cfg.array.is_some() {
            "configured"
        } else {
            "unconfigured"
        };
        w.write_fmt(fmt!("state {state}\n"))?;
        w.write_fmt(fmt!("swarm_width {}\n", cfg.swarm_width))?;
        Ok(w.bytes_written())
    }
}

#[kunit_tests(swarmlog_configfs)]
mod tests {
    use super::*;

    #[test]
    fn parses_numbers() {
        assert_eq!(parse_u32(b"64\n").ok(), Some(64));
        assert_eq!(parse_u32(b"1").ok(), Some(1));
        assert!(parse_u32(b"-1").is_err());
        assert!(parse_u32(b"99999999999").is_err());
        assert!(parse_u32(b"x").is_err());
        assert!(parse_u32(b"\xff").is_err());
        assert!(parse_u32(b"").is_err());
    }

    #[test]
    fn parses_paths() {
        assert!(parse_path(b"/dev/pmem0\n").is_ok());
        assert!(parse_path(b"dev/pmem0").is_err());
        assert!(parse_path(b"/dev/a b").is_err());
        assert!(parse_path(b"/dev/a\n\n").is_err());
        assert!(parse_path(b"\xfe/dev").is_err());
        assert!(parse_path(b"").is_err());
    }
}
