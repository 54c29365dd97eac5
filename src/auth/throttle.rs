//! Slows down password guessing: at most `max_failures` sign-in attempts for one email
//! may fail within `window`; past that, attempts for it are refused until the window ends.
//! Kept in memory (a restart clears it).
//!
//! INVARIANT (attempt-counted-first): an attempt is counted when it begins, before the
//! password is checked, under the same lock as the limit check; one that then succeeds
//! gives its count back. So however many attempts run at once, at most `max_failures`
//! passwords are checked and fail for one email within one window.

use std::collections::HashMap;
use std::sync::Mutex;

use time::{Duration, OffsetDateTime};

use crate::error::{Error, Result};

/// Most emails tracked at once; windows that have ended are dropped first when full.
const MAX_TRACKED: usize = 100_000;

/// Attempts counted in the window that began at `start`.
#[derive(Debug, Clone, Copy)]
struct Window {
    attempts: u32,
    start: OffsetDateTime,
}

#[derive(Debug)]
pub(crate) struct Throttle {
    max_failures: u32,
    window: Duration,
    windows: Mutex<HashMap<String, Window>>,
}

/// An attempt counted by [`Throttle::begin`]; [`Throttle::succeeded`] gives it back.
#[derive(Debug)]
pub(crate) struct Attempt {
    window_start: OffsetDateTime,
}

impl Throttle {
    pub(crate) fn new(max_failures: u32, window: Duration) -> Throttle {
        Throttle {
            max_failures,
            window,
            windows: Mutex::new(HashMap::new()),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Window>> {
        self.windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts an attempt for `email`, or refuses it when the window's attempts are used up.
    pub(crate) fn begin(&self, email: &str, now: OffsetDateTime) -> Result<Attempt> {
        let mut map = self.map();
        if map.len() >= MAX_TRACKED && !map.contains_key(email) {
            let window = self.window;
            map.retain(|_, w| now < w.start + window);
        }
        let w = map.entry(email.to_owned()).or_insert(Window {
            attempts: 0,
            start: now,
        });
        let ends = w.start + self.window;
        if now >= ends {
            *w = Window {
                attempts: 0,
                start: now,
            };
        } else if w.attempts >= self.max_failures {
            let wait = (ends - now).whole_seconds().max(1);
            return Err(Error::TooManyRequests(format!(
                "too many failed sign-ins for this email; try again in {wait} s"
            )));
        }
        w.attempts += 1;
        Ok(Attempt {
            window_start: w.start,
        })
    }

    /// The attempt succeeded: it does not count as a failure. Failures stay counted.
    pub(crate) fn succeeded(&self, email: &str, attempt: Attempt) {
        let mut map = self.map();
        if let Some(w) = map.get_mut(email)
            && w.start == attempt.window_start
        {
            w.attempts = w.attempts.saturating_sub(1);
            if w.attempts == 0 {
                map.remove(email);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_after_the_limit_until_the_window_ends() {
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
        t.begin("a@x", t0 + Duration::minutes(15)).unwrap();
    }

    #[test]
    fn a_success_gives_back_only_its_own_attempt() {
        let t = Throttle::new(3, Duration::minutes(15));
        let t0 = OffsetDateTime::UNIX_EPOCH;
        t.begin("a@x", t0).unwrap();
        t.begin("a@x", t0).unwrap();
        let ok = t.begin("a@x", t0).unwrap();
        t.succeeded("a@x", ok);
        // Two failures stay counted: one more attempt, then refused.
        let last = t.begin("a@x", t0).unwrap();
        assert!(matches!(t.begin("a@x", t0), Err(Error::TooManyRequests(_))));
        // An attempt of a window that has ended gives nothing back to the next window.
        let later = t0 + Duration::minutes(20);
        for _ in 0..3 {
            t.begin("a@x", later).unwrap();
        }
        t.succeeded("a@x", last);
        assert!(matches!(
            t.begin("a@x", later),
            Err(Error::TooManyRequests(_))
        ));
    }
}
