//! How values look on the pages: times (relative, with the absolute time on hover), short
//! IDs, resources, sizes, URLs of jobs, the queue chart.

use serde::Serialize;

use super::history::{Sample, SPAN};
use crate::cluster::Demand;

/// A time as a page shows it: relative text, the absolute time for `title`, ISO for
/// `<time datetime>`, and the Unix ns the script keeps the relative text current from.
#[derive(Debug, Clone, Serialize)]
pub struct Time {
    pub ns: i64,
    pub iso: String,
    pub abs: String,
    pub rel: String,
}

impl Time {
    pub fn at(ns: i64, now: i64) -> Time {
        let iso = crate::clock::rfc3339(ns);
        Time {
            ns,
            abs: iso.replace('T', " ").replace('Z', " UTC"),
            iso,
            rel: relative(ns, now),
        }
    }
}

/// `3 min ago`, `2 h 5 min ago`, `just now`.
pub fn relative(ns: i64, now: i64) -> String {
    let secs = (now - ns) / 1_000_000_000;
    let (future, secs) = (secs < 0, secs.abs());
    if secs < 5 {
        return "just now".into();
    }
    let text = match secs {
        0..=59 => format!("{secs} s"),
        60..=3599 => format!("{} min", secs / 60),
        3600..=86_399 => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
        _ => format!("{} d", secs / 86_400),
    };
    if future {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

/// Percent-encode everything but unreserved characters: a job ID as one path segment or a
/// query value (`transcode/dispatch-1-ab` -> `transcode%2Fdispatch-1-ab`).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The page of a job or child (Nomad's UI URL: the ID is one encoded segment).
pub fn job_url(id: &str) -> String {
    format!("/ui/jobs/{}", encode(id))
}

/// A child's ID without its parent's prefix (`dispatch-1796651101-baa3958e`), as Nomad's UI
/// shows children.
pub fn short_child<'a>(id: &'a str, parent: &str) -> &'a str {
    id.strip_prefix(parent)
        .and_then(|rest| rest.strip_prefix('/'))
        .unwrap_or(id)
}

/// The first 8 characters of a UUID-like ID.
pub fn short_id(id: &str) -> String {
    id.chars().take(8).collect()
}

/// `1.5 cpus, 512 MiB, 1 GPU`; `nothing` when all are zero.
pub fn demand(d: &Demand) -> String {
    let mut parts = Vec::new();
    if d.cpus > 0.0 {
        parts.push(format!(
            "{} cpu{}",
            number(d.cpus),
            if d.cpus == 1.0 { "" } else { "s" }
        ));
    }
    if d.mem_mb > 0.0 {
        parts.push(megabytes(d.mem_mb));
    }
    if d.disk_mb > 0.0 {
        parts.push(format!("{} disk", megabytes(d.disk_mb)));
    }
    if d.gpus > 0.0 {
        parts.push(format!(
            "{} GPU{}",
            number(d.gpus),
            if d.gpus == 1.0 { "" } else { "s" }
        ));
    }
    if parts.is_empty() {
        "nothing".into()
    } else {
        parts.join(", ")
    }
}

fn number(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn megabytes(mb: f64) -> String {
    if mb >= 1024.0 * 1024.0 {
        format!("{} TiB", number(mb / 1024.0 / 1024.0))
    } else if mb >= 1024.0 {
        format!("{} GiB", number(mb / 1024.0))
    } else {
        format!("{} MiB", number(mb))
    }
}

/// `512 B`, `1.5 KiB`, `3.2 MiB`.
pub fn bytes(n: u64) -> String {
    match n {
        0..=1023 => format!("{n} B"),
        1024..=1_048_575 => format!("{:.1} KiB", n as f64 / 1024.0),
        _ => format!("{:.1} MiB", n as f64 / 1_048_576.0),
    }
}

/// A queue chart: polylines of pending and running over the last hour.
#[derive(Debug, Clone, Serialize)]
pub struct Chart {
    pub size: &'static str,
    pub width: u32,
    pub height: u32,
    pub pending: String,
    pub running: String,
    pub max: u64,
    pub span: String,
    /// What a screen reader says.
    pub label: String,
}

/// The chart of `samples`, ending with the counts of now (`now` in Unix seconds).
pub fn chart(mut samples: Vec<Sample>, now: Sample, large: bool) -> Chart {
    let (width, height) = if large { (480, 90) } else { (160, 28) };
    samples.push(now);
    let span = SPAN.as_secs() as f64;
    let start = now.at as f64 - span;
    let max = samples
        .iter()
        .map(|s| s.pending.max(s.running))
        .max()
        .unwrap_or(0);
    let scale = if max == 0 {
        0.0
    } else {
        (height - 2) as f64 / max as f64
    };
    let points = |value: fn(&Sample) -> u64| {
        samples
            .iter()
            .map(|s| {
                let x = ((s.at as f64 - start) / span * width as f64).clamp(0.0, width as f64);
                let y = height as f64 - 1.0 - value(s) as f64 * scale;
                format!("{x:.1},{y:.1}")
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let first = samples.first().map_or(now.at, |s| s.at);
    let minutes = ((now.at - first) / 60).max(0);
    Chart {
        size: if large { "large" } else { "small" },
        width,
        height,
        pending: points(|s| s.pending),
        running: points(|s| s.running),
        max,
        span: if minutes < 1 {
            "sampling started under a minute ago".into()
        } else {
            format!("last {minutes} min")
        },
        label: format!(
            "Queue over the last hour: {} pending and {} running now, at most {max}",
            now.pending, now.running
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks() {
        assert_eq!(
            encode("transcode/dispatch-1-ab@x y"),
            "transcode%2Fdispatch-1-ab%40x%20y"
        );
        assert_eq!(short_child("t/dispatch-1-ab", "t"), "dispatch-1-ab");
        assert_eq!(relative(0, 90_000_000_000), "1 min ago");
        assert_eq!(relative(0, 2_000_000_000), "just now");
        assert_eq!(relative(7_300_000_000_000, 0), "in 2 h 1 min");
        let d = Demand {
            cpus: 1.5,
            mem_mb: 2048.0,
            disk_mb: 0.0,
            gpus: 1.0,
        };
        assert_eq!(demand(&d), "1.5 cpus, 2 GiB, 1 GPU");
        assert_eq!(demand(&Demand::default()), "nothing");
        assert_eq!(bytes(1536), "1.5 KiB");
        let now = Sample {
            at: 3600,
            pending: 4,
            running: 2,
        };
        let c = chart(
            vec![Sample {
                at: 1800,
                pending: 2,
                running: 0,
            }],
            now,
            false,
        );
        assert_eq!(c.pending, "80.0,14.0 160.0,1.0");
        assert_eq!(c.running, "80.0,27.0 160.0,14.0");
        assert_eq!(c.max, 4);
    }
}
