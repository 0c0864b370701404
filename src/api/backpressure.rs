//! Backpressure on dispatches: a cap on the backlog (`-max-pending`) and a rate per caller
//! (`-dispatch-rate LIMIT[/BURST]`, keyed by the caller's ACL token, or by its address when
//! anonymous). Both answer `429 Too Many Requests` with `Retry-After` before anything is
//! stored.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;

/// `Retry-After` (seconds) when the backlog is full.
pub const BACKLOG_RETRY_AFTER: &str = "5";

/// The 429 for a caller over its dispatch rate, counted as a refused dispatch.
pub fn too_many(job_label: &str, wait: RetryAfter) -> Response {
    crate::metrics::dispatch_request(
        job_label,
        crate::metrics::DispatchOutcome::Rejected("rate_limited"),
    );
    let seconds = wait.seconds();
    let mut response = (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("dispatch rate exceeded for this caller (-dispatch-rate); retry in {seconds}s"),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

/// A token bucket's settings: `per_second` refill, up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: u32,
}

impl RateLimit {
    /// `LIMIT[/BURST]`: dispatches per second (a decimal number above 0), and how many may
    /// come at once (default: LIMIT rounded up, at least 1).
    pub fn parse(raw: &str) -> Result<RateLimit, String> {
        let expected = "expected LIMIT[/BURST]: dispatches per second, and how many at once, e.g. 50 or 50/200 or 0.5/5";
        let (limit, burst) = match raw.trim().split_once('/') {
            Some((l, b)) => (l.trim(), Some(b.trim())),
            None => (raw.trim(), None),
        };
        let per_second: f64 = limit
            .parse()
            .ok()
            .filter(|l: &f64| l.is_finite() && *l > 0.0)
            .ok_or_else(|| format!("{raw:?}: {limit:?} is not a rate above 0; {expected}"))?;
        let burst = match burst {
            None => (per_second.ceil() as u32).max(1),
            Some(b) => b.parse::<u32>().ok().filter(|b| *b >= 1).ok_or_else(|| {
                format!("{raw:?}: burst {b:?} is not a whole number of at least 1; {expected}")
            })?,
        };
        Ok(RateLimit { per_second, burst })
    }
}

impl std::fmt::Display for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.per_second, self.burst)
    }
}

/// The backpressure settings of a server.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Backpressure {
    /// Most dispatches pending (queued, never launched) at once; `None` = no cap.
    pub max_pending: Option<u64>,
    /// Dispatches per caller; `None` = no limit.
    pub dispatch_rate: Option<RateLimit>,
}

/// How long a caller waits before it may dispatch again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub Duration);

impl RetryAfter {
    /// Whole seconds, at least 1 (the `Retry-After` header).
    pub fn seconds(&self) -> u64 {
        self.0.as_secs_f64().ceil().max(1.0) as u64
    }
}

/// One token bucket per caller.
#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Buckets of callers idle this long are full again and are forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(600);

impl RateLimiter {
    pub fn new(limit: RateLimit) -> RateLimiter {
        RateLimiter {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Take one dispatch from `caller`'s bucket, or say how long until one is there.
    pub fn take(&self, caller: &str, now: Instant) -> Result<(), RetryAfter> {
        let burst = f64::from(self.limit.burst);
        let mut buckets = self.buckets.lock();
        if buckets.len() > 100_000 {
            buckets.retain(|_, b| now.duration_since(b.at) < FORGET_AFTER);
        }
        let bucket = buckets.entry(caller.to_string()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.limit.per_second).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / self.limit.per_second;
            Err(RetryAfter(Duration::from_secs_f64(wait)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_with_an_optional_burst() {
        assert_eq!(
            RateLimit::parse("50").unwrap(),
            RateLimit {
                per_second: 50.0,
                burst: 50
            }
        );
        assert_eq!(
            RateLimit::parse("0.5/5").unwrap(),
            RateLimit {
                per_second: 0.5,
                burst: 5
            }
        );
        assert_eq!(RateLimit::parse("0.2").unwrap().burst, 1);
        assert!(RateLimit::parse("0")
            .unwrap_err()
            .contains("not a rate above 0"));
        assert!(RateLimit::parse("ten").is_err());
        assert!(RateLimit::parse("5/0")
            .unwrap_err()
            .contains("burst \"0\" is not a whole number of at least 1"));
    }

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_the_rate() {
        let limiter = RateLimiter::new(RateLimit::parse("2/3").unwrap());
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.take("a", t0), Ok(()));
        }
        let refused = limiter.take("a", t0).unwrap_err();
        assert_eq!(refused, RetryAfter(Duration::from_millis(500)));
        assert_eq!(refused.seconds(), 1);
        // another caller has its own bucket
        assert_eq!(limiter.take("b", t0), Ok(()));
        // half a second later one dispatch is back
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!(limiter.take("a", t1), Ok(()));
        assert!(limiter.take("a", t1).is_err());
    }
}
