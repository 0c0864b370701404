//! Offer bookkeeping of the one local agent: one outstanding offer at a time, decline
//! filters, suppress and revive. Pure logic, no I/O: the agent loop asks it what to do.

use std::time::{Duration, Instant};

use crate::cluster::types::{Demand, OfferId};

/// Mesos's default filter when none (or a nonsensical one) is given.
const DEFAULT_REFUSE: Duration = Duration::from_secs(5);
/// Filters longer than this are capped (Mesos caps at a year; keep `Instant` arithmetic safe).
const MAX_REFUSE: Duration = Duration::from_secs(365 * 24 * 3600);

/// Resources the framework refused, not to be offered again until `until` unless more than
/// them becomes free (Mesos filters only hold while the offerable set is a subset).
#[derive(Debug, Clone)]
struct Filter {
    refused: Demand,
    until: Instant,
}

#[derive(Debug, Default)]
pub struct Offers {
    /// Counter behind `local-O<n>`.
    next_id: u64,
    /// The offer the framework holds, with what it carries.
    outstanding: Option<(OfferId, Demand)>,
    /// Set by `Suppress`, cleared by `Revive`.
    suppressed: bool,
    filters: Vec<Filter>,
}

/// Turn a `refuse_seconds` into a duration the way the Mesos master does.
pub fn refuse_duration(refuse_seconds: f64) -> Duration {
    if !refuse_seconds.is_finite() || refuse_seconds < 0.0 {
        return DEFAULT_REFUSE;
    }
    Duration::from_secs_f64(refuse_seconds.min(MAX_REFUSE.as_secs_f64()))
}

fn is_empty(d: &Demand) -> bool {
    d.cpus < 0.001 && d.mem_mb < 0.001 && d.disk_mb < 0.001 && d.gpus < 0.001
}

/// What an offer of `free` actually carries (Mesos quantities have three decimals).
fn rounded(free: &Demand) -> Demand {
    use crate::cluster::types::round3;
    Demand {
        cpus: round3(free.cpus),
        mem_mb: round3(free.mem_mb),
        disk_mb: round3(free.disk_mb),
        gpus: round3(free.gpus),
    }
}

impl Offers {
    /// A new offer of `free`, if one is due now.
    pub fn maybe_offer(&mut self, free: &Demand, now: Instant) -> Option<(OfferId, Demand)> {
        self.filters.retain(|f| f.until > now);
        let free = rounded(free);
        if self.outstanding.is_some() || self.suppressed || is_empty(&free) {
            return None;
        }
        if self.filters.iter().any(|f| free.fits_in(&f.refused)) {
            return None;
        }
        self.next_id += 1;
        let id = OfferId::new(format!("local-O{}", self.next_id));
        self.outstanding = Some((id.clone(), free));
        Some((id, free))
    }

    /// The outstanding offer's resources if `ids` names exactly it; the offer is used up
    /// either way when it is among `ids` (an invalid accept still consumes valid offers).
    pub fn take(&mut self, ids: &[OfferId]) -> Result<Demand, String> {
        let held = self.outstanding.as_ref().map(|(id, _)| id.clone());
        let names_held = held.as_ref().is_some_and(|h| ids.contains(h));
        let result = match (&self.outstanding, ids) {
            (_, []) => Err("No offers given".to_string()),
            (Some((id, d)), [only]) if id == only => Ok(*d),
            _ => {
                let bad: Vec<String> = ids
                    .iter()
                    .enumerate()
                    .filter(|(i, id)| Some(*id) != held.as_ref() || ids[..*i].contains(id))
                    .map(|(_, id)| id.value.clone())
                    .collect();
                Err(format!("Offer {} is no longer valid", bad.join(", ")))
            }
        };
        if names_held {
            self.outstanding = None;
        }
        result
    }

    /// Filter `refused` for `refuse_seconds` (zero: no filter at all).
    pub fn filter(&mut self, refused: Demand, refuse_seconds: f64, now: Instant) {
        let dur = refuse_duration(refuse_seconds);
        if dur.is_zero() || is_empty(&refused) {
            return;
        }
        self.filters.push(Filter {
            refused: rounded(&refused),
            until: now + dur,
        });
    }

    /// `Decline`: returns whether the outstanding offer was among `ids`.
    pub fn decline(&mut self, ids: &[OfferId], refuse_seconds: f64, now: Instant) -> bool {
        match &self.outstanding {
            Some((id, d)) if ids.contains(id) => {
                let d = *d;
                self.outstanding = None;
                self.filter(d, refuse_seconds, now);
                true
            }
            _ => false,
        }
    }

    /// `Suppress`: no more offers; the outstanding one (returned) must be rescinded.
    pub fn suppress(&mut self) -> Option<OfferId> {
        self.suppressed = true;
        self.outstanding.take().map(|(id, _)| id)
    }

    /// `Revive`: offers again, filters forgotten.
    pub fn revive(&mut self) {
        self.suppressed = false;
        self.filters.clear();
    }

    /// When the earliest filter expires (the agent loop wakes up then).
    pub fn next_expiry(&self) -> Option<Instant> {
        self.filters.iter().map(|f| f.until).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(cpus: f64, mem_mb: f64) -> Demand {
        Demand {
            cpus,
            mem_mb,
            disk_mb: 0.0,
            gpus: 0.0,
        }
    }

    #[test]
    fn one_offer_at_a_time_and_unique_ids() {
        let mut o = Offers::default();
        let now = Instant::now();
        let (id1, got) = o.maybe_offer(&d(2.0, 100.0), now).expect("offer");
        assert_eq!(got, d(2.0, 100.0));
        assert!(o.maybe_offer(&d(2.0, 100.0), now).is_none());
        assert_eq!(o.take(std::slice::from_ref(&id1)), Ok(d(2.0, 100.0)));
        let (id2, _) = o.maybe_offer(&d(2.0, 100.0), now).expect("offer");
        assert_ne!(id1, id2);
        assert!(o.take(&[id1]).is_err());
        // A stale accept does not void the outstanding offer.
        assert!(o.maybe_offer(&d(2.0, 100.0), now).is_none());
    }

    #[test]
    fn decline_filter_holds_until_more_is_free_or_expiry_or_revive() {
        let mut o = Offers::default();
        let now = Instant::now();
        let (id, _) = o.maybe_offer(&d(1.0, 100.0), now).expect("offer");
        assert!(o.decline(&[id], 10.0, now));
        assert!(o.maybe_offer(&d(1.0, 100.0), now).is_none());
        assert!(o.maybe_offer(&d(0.5, 100.0), now).is_none());
        let (id, _) = o.maybe_offer(&d(2.0, 100.0), now).expect("more free");
        assert!(o.decline(&[id], 10.0, now));
        let later = now + Duration::from_secs(11);
        assert!(o.maybe_offer(&d(2.0, 100.0), later).is_some());
        let mut o = Offers::default();
        let (id, _) = o.maybe_offer(&d(1.0, 100.0), now).expect("offer");
        o.decline(&[id], 3600.0, now);
        o.revive();
        assert!(o.maybe_offer(&d(1.0, 100.0), now).is_some());
    }

    #[test]
    fn suppress_rescinds_and_stops_offers() {
        let mut o = Offers::default();
        let now = Instant::now();
        let (id, _) = o.maybe_offer(&d(1.0, 1.0), now).expect("offer");
        assert_eq!(o.suppress(), Some(id));
        assert!(o.maybe_offer(&d(1.0, 1.0), now).is_none());
        o.revive();
        assert!(o.maybe_offer(&d(1.0, 1.0), now).is_some());
        assert!(o.maybe_offer(&d(0.0, 0.0), now).is_none());
    }

    #[test]
    fn refuse_seconds_defaults() {
        assert_eq!(refuse_duration(-1.0), DEFAULT_REFUSE);
        assert_eq!(refuse_duration(f64::NAN), DEFAULT_REFUSE);
        assert_eq!(refuse_duration(1e30), MAX_REFUSE);
        assert_eq!(refuse_duration(0.0), Duration::ZERO);
    }
}
