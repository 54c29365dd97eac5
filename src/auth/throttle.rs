//! Slows down password guessing: at most `max_failures` sign-in attempts for one email
//! may fail within any `window` (a sliding window); past that, attempts for it are
//! refused until the oldest of them is `window` old. Kept in memory (a restart clears it).
//!
//! INVARIANT (attempt-counted-first): an attempt is counted when it begins, before the
//! password is checked, under the same lock as the limit check; one that then succeeds
//! gives its count back. So however many attempts run at once, at most `max_failures`
//! passwords are checked and fail for one email within any `window`.
//!
//! Emails are kept as SHA-256 digests (32 bytes, whatever the email's length), and at
//! most [`MAX_TRACKED`] emails at once: when that many have attempts in their window,
//! attempts for other emails are refused too (closed, not open) until some windows end.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use time::{Duration, OffsetDateTime};

use crate::error::{Error, Result};

/// Most emails tracked at once.
const MAX_TRACKED: usize = 100_000;

type EmailDigest = [u8; 32];

#[derive(Debug)]
pub(crate) struct Throttle {
    max_failures: u32,
    window: Duration,
    /// Most emails tracked at once ([`MAX_TRACKED`] but in tests).
    max_tracked: usize,
    /// Per email, the start times of its counted attempts in the window, oldest first.
    attempts: Mutex<HashMap<EmailDigest, VecDeque<OffsetDateTime>>>,
}

/// An attempt counted by [`Throttle::begin`]; [`Throttle::succeeded`] gives it back.
#[derive(Debug)]
pub(crate) struct Attempt {
    email: EmailDigest,
    at: OffsetDateTime,
}

impl Throttle {
    pub(crate) fn new(max_failures: u32, window: Duration) -> Throttle {
        Throttle::tracking(max_failures, window, MAX_TRACKED)
    }

    fn tracking(max_failures: u32, window: Duration, max_tracked: usize) -> Throttle {
        Throttle {
            max_failures,
            window,
            max_tracked,
            attempts: Mutex::new(HashMap::new()),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<EmailDigest, VecDeque<OffsetDateTime>>> {
        self.attempts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts an attempt for `email` (as given: the caller folds its case), or refuses it
    /// when the window's attempts are used up.
    pub(crate) fn begin(&self, email: &str, now: OffsetDateTime) -> Result<Attempt> {
        let digest = crate::secret::sha256(email.as_bytes());
        let window = self.window;
        let mut map = self.map();
        if map.len() >= self.max_tracked && !map.contains_key(&digest) {
            map.retain(|_, times| times.back().is_some_and(|t| now < *t + window));
            if map.len() >= self.max_tracked {
                return Err(Error::TooManyRequests(
                    "too many sign-ins in progress; try again later".into(),
                ));
            }
        }
        let times = map.entry(digest).or_default();
        while times.front().is_some_and(|t| now >= *t + window) {
            times.pop_front();
        }
        if times.len() >= usize::try_from(self.max_failures).unwrap_or(usize::MAX) {
            let ends = times.front().map_or(now, |t| *t + window);
            let wait = (ends - now).whole_seconds().max(1);
            return Err(Error::TooManyRequests(format!(
                "too many failed sign-ins for this email; try again in {wait} s"
            )));
        }
        times.push_back(now);
        Ok(Attempt {
            email: digest,
            at: now,
        })
    }

    /// The attempt succeeded: it does not count as a failure. Failures stay counted.
    pub(crate) fn succeeded(&self, attempt: Attempt) {
        let mut map = self.map();
        if let Some(times) = map.get_mut(&attempt.email) {
            if let Some(i) = times.iter().position(|t| *t == attempt.at) {
                times.remove(i);
            }
            if times.is_empty() {
                map.remove(&attempt.email);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_after_the_limit_until_the_oldest_attempt_leaves_the_window() {
        let t = Throttle::new(3, Duration::minutes(15));
        let t0 = OffsetDateTime::UNIX_EPOCH;
        for _ in 0..3 {
            t.begin("a@x", t0).unwrap();
        }
        assert!(matches!(t.begin("a@x", t0), Err(Error::TooManyRequests(_))));
        t.begin("b@x", t0).unwrap();
        let last = t0 + Duration::minutes(15) - Duration::seconds(1);
        assert!(matches!(
            t.begin("a@x", last),
            Err(Error::TooManyRequests(_))
        ));
        // The refusal says how long until the oldest attempt leaves the window.
        let r = t.begin("a@x", t0 + Duration::minutes(14));
        assert!(
            matches!(&r, Err(Error::TooManyRequests(m)) if m.ends_with("try again in 60 s")),
            "{r:?}"
        );
        t.begin("a@x", t0 + Duration::minutes(15)).unwrap();
    }

    #[test]
    fn the_window_slides() {
        // One failure at 0, two at 14:59: the next is refused until 15:00 frees one slot,
        // and then until 29:59 frees the others; never more than 3 in any 15 minutes.
        let t = Throttle::new(3, Duration::minutes(15));
        let t0 = OffsetDateTime::UNIX_EPOCH;
        let at = |m: i64, s: i64| t0 + Duration::minutes(m) + Duration::seconds(s);
        t.begin("a@x", at(0, 0)).unwrap();
        t.begin("a@x", at(14, 59)).unwrap();
        t.begin("a@x", at(14, 59)).unwrap();
        assert!(t.begin("a@x", at(14, 59)).is_err());
        t.begin("a@x", at(15, 0)).unwrap();
        assert!(t.begin("a@x", at(15, 0)).is_err());
        assert!(t.begin("a@x", at(29, 58)).is_err());
        t.begin("a@x", at(29, 59)).unwrap();
    }

    #[test]
    fn a_success_gives_back_only_its_own_attempt() {
        let t = Throttle::new(3, Duration::minutes(15));
        let t0 = OffsetDateTime::UNIX_EPOCH;
        t.begin("a@x", t0).unwrap();
        t.begin("a@x", t0).unwrap();
        let ok = t.begin("a@x", t0 + Duration::seconds(1)).unwrap();
        t.succeeded(ok);
        // Two failures stay counted: one more attempt, then refused.
        let last = t.begin("a@x", t0).unwrap();
        assert!(matches!(t.begin("a@x", t0), Err(Error::TooManyRequests(_))));
        // An attempt whose window has ended gives nothing back to a later one.
        let later = t0 + Duration::minutes(20);
        for _ in 0..3 {
            t.begin("a@x", later).unwrap();
        }
        t.succeeded(last);
        assert!(matches!(
            t.begin("a@x", later),
            Err(Error::TooManyRequests(_))
        ));
    }

    #[test]
    fn when_full_new_emails_wait_for_windows_to_end() {
        let t = Throttle::tracking(3, Duration::minutes(15), 2);
        let t0 = OffsetDateTime::UNIX_EPOCH;
        t.begin("a@x", t0).unwrap();
        t.begin("b@x", t0 + Duration::minutes(5)).unwrap();
        // Full of live windows: a new email is refused, a tracked one still counted.
        let r = t.begin("c@x", t0 + Duration::minutes(14));
        assert!(
            matches!(&r, Err(Error::TooManyRequests(m)) if m.contains("in progress")),
            "{r:?}"
        );
        t.begin("a@x", t0 + Duration::minutes(14)).unwrap();
        // a@x's last attempt is 14 min old at 28 min, b@x's window ended at 20 min.
        t.begin("c@x", t0 + Duration::minutes(20)).unwrap();
        assert!(
            t.begin("d@x", t0 + Duration::minutes(28)).is_err(),
            "a and c are live"
        );
        t.begin("d@x", t0 + Duration::minutes(34)).unwrap();
        assert_eq!(
            t.map().len(),
            2,
            "a@x's ended window was dropped, c@x's kept"
        );
    }

    #[test]
    fn memory_per_email_does_not_grow_with_its_length() {
        let t = Throttle::new(3, Duration::minutes(15));
        t.begin(&"x".repeat(1 << 20), OffsetDateTime::UNIX_EPOCH)
            .unwrap();
        let map = t.map();
        assert_eq!(map.len(), 1);
        assert!(map.keys().all(|k| k.len() == 32));
    }
}
