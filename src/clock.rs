//! The one clock: wall time as Unix nanoseconds, and how a time is written for people.
//!
//! Everything that decides by time (the writer stamping commands, the scheduler's retries,
//! kill repeats and revive debounce, garbage collection, the backends' timestamps) reads a
//! `Clock` it was given. The server gives them all `Clock::system()`; unit tests give a
//! `Clock::manual(t)` and move it with `advance`, so no test sleeps to make time pass.
//!
//! Wall time can jump backwards (NTP, an operator). Code that measures an interval with it
//! treats a negative interval as "due" (`elapsed_since`), so a jump never stalls anything.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of the current time. Cheap to clone; clones of a manual clock move together.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    /// `None`: the system clock. `Some`: a manual clock (tests).
    manual: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The machine's wall clock.
    pub fn system() -> Clock {
        Clock { manual: None }
    }

    /// A clock that stands at `unix_ns` until moved (`advance`, `set`).
    pub fn manual(unix_ns: i64) -> Clock {
        Clock {
            manual: Some(Arc::new(AtomicI64::new(unix_ns))),
        }
    }

    /// Now, as Unix nanoseconds.
    pub fn now_ns(&self) -> i64 {
        match &self.manual {
            Some(t) => t.load(Ordering::Relaxed),
            None => system_now_ns(),
        }
    }

    /// Now, as Unix seconds.
    pub fn now_secs(&self) -> f64 {
        self.now_ns() as f64 / 1e9
    }

    /// Move a manual clock forward (no effect on the system clock).
    pub fn advance(&self, by: Duration) {
        if let Some(t) = &self.manual {
            t.fetch_add(duration_ns(by), Ordering::Relaxed);
        }
    }

    /// Put a manual clock at `unix_ns` (no effect on the system clock).
    pub fn set(&self, unix_ns: i64) {
        if let Some(t) = &self.manual {
            t.store(unix_ns, Ordering::Relaxed);
        }
    }
}

fn system_now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or_default()
}

/// A duration in nanoseconds, saturating.
pub fn duration_ns(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// True when at least `interval` passed from `then` to `now`, or when the clock went
/// backwards in between (then waiting could take as long as the jump: act instead).
pub fn elapsed_since(then: i64, now: i64, interval: Duration) -> bool {
    let elapsed = now.saturating_sub(then);
    elapsed < 0 || elapsed >= duration_ns(interval)
}

/// Unix nanoseconds as RFC 3339 in UTC, whole seconds (`2025-12-22T13:26:40Z`), as Nomad's
/// CLI and API print times. Out-of-range values are written as the plain number.
pub fn rfc3339(unix_ns: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(unix_ns as i128)
        .ok()
        .and_then(|t| {
            t.replace_nanosecond(0)
                .ok()?
                .format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix_ns.to_string())
}

/// Unix nanoseconds as RFC 3339 in UTC with the sub-second part (Nomad's allocation
/// timestamps); `None` when out of range.
pub fn rfc3339_nanos(unix_ns: i64) -> Option<String> {
    time::OffsetDateTime::from_unix_timestamp_nanos(unix_ns as i128)
        .ok()?
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clocks_move_only_when_told_and_clones_move_together() {
        let clock = Clock::manual(1_000);
        let clone = clock.clone();
        clock.advance(Duration::from_nanos(500));
        assert_eq!(clone.now_ns(), 1_500);
        clone.set(7);
        assert_eq!(clock.now_ns(), 7);
    }

    #[test]
    fn intervals_are_due_after_they_pass_or_when_the_clock_jumps_back() {
        let second = Duration::from_secs(1);
        assert!(!elapsed_since(10_000_000_000, 10_500_000_000, second));
        assert!(elapsed_since(10_000_000_000, 11_000_000_000, second));
        assert!(elapsed_since(10_000_000_000, 9_000_000_000, second));
    }

    #[test]
    fn times_are_rfc3339() {
        assert_eq!(rfc3339(1_766_410_000_000_000_000), "2025-12-22T13:26:40Z");
        assert_eq!(
            rfc3339_nanos(1_766_410_000_500_000_000).as_deref(),
            Some("2025-12-22T13:26:40.5Z")
        );
    }
}
