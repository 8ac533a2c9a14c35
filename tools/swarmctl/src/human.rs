// SPDX-License-Identifier: GPL-2.0

//! Human output: sizes in binary units, durations from microseconds, UUIDs,
//! and sections of `key: value` lines aligned on one column.

use std::fmt::Write as _;

/// `n` bytes in the largest binary unit that keeps it at least 1, e.g.
/// `64.0 MiB`; exact below 1 KiB (`512 B`).
#[must_use]
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

/// `n` bytes as [`bytes`] with the exact count after it when it rounds.
#[must_use]
pub fn bytes_exact(n: u64) -> String {
    if n < 1024 {
        bytes(n)
    } else {
        format!("{} ({n} bytes)", bytes(n))
    }
}

/// A duration of `us` microseconds: `850 µs`, `12.5 ms`, `3.20 s`, `2 min 5 s`.
#[must_use]
pub fn micros(us: u64) -> String {
    match us {
        0..=999 => format!("{us} µs"),
        1_000..=999_999 => format!("{:.1} ms", us as f64 / 1e3),
        1_000_000..=59_999_999 => format!("{:.2} s", us as f64 / 1e6),
        _ => format!("{} min {} s", us / 60_000_000, us / 1_000_000 % 60),
    }
}

/// A UUID in its usual 8-4-4-4-12 form.
#[must_use]
pub fn uuid(u: &[u8; 16]) -> String {
    let mut s = String::with_capacity(36);
    for (i, b) in u.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Titled groups of `key: value` lines.
#[derive(Default)]
pub struct Report {
    sections: Vec<(String, Vec<(String, String)>)>,
}

impl Report {
    /// Starts a section titled `title`; the lines added next go in it.
    pub fn section(&mut self, title: impl Into<String>) {
        self.sections.push((title.into(), Vec::new()));
    }

    /// Adds a line to the current section.
    pub fn line(&mut self, key: impl Into<String>, value: impl Into<String>) {
        if self.sections.is_empty() {
            self.section("");
        }
        if let Some((_, rows)) = self.sections.last_mut() {
            rows.push((key.into(), value.into()));
        }
    }

    /// The report, every value starting on the same column.
    #[must_use]
    pub fn render(&self) -> String {
        let width = self
            .sections
            .iter()
            .flat_map(|(_, rows)| rows.iter().map(|(k, _)| k.chars().count()))
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        for (title, rows) in &self.sections {
            if !title.is_empty() {
                let _ = writeln!(out, "{title}");
            }
            for (k, v) in rows {
                let pad = width - k.chars().count();
                let _ = writeln!(out, "  {k}:{:pad$} {v}", "");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(64 << 20), "64.0 MiB");
        assert_eq!(bytes(u64::MAX), "16.0 EiB");
        assert_eq!(bytes_exact(4096), "4.0 KiB (4096 bytes)");
        assert_eq!(micros(850), "850 µs");
        assert_eq!(micros(12_500), "12.5 ms");
        assert_eq!(micros(3_200_000), "3.20 s");
        assert_eq!(micros(125_000_000), "2 min 5 s");
        assert_eq!(
            uuid(&[0xab; 16]),
            "abababab-abab-abab-abab-abababababab".to_string()
        );
    }

    #[test]
    fn report_aligns_values() {
        let mut r = Report::default();
        r.section("log header");
        r.line("medium", "pmem");
        r.line("log id", "0x1");
        r.section("scan");
        r.line("records", "3");
        assert_eq!(
            r.render(),
            "log header\n  medium:  pmem\n  log id:  0x1\nscan\n  records: 3\n"
        );
    }
}
