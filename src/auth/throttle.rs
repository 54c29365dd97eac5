//! Slows down password guessing: after `max_failures` failed sign-ins for one email
//! within `window`, further attempts for it are refused until the window has passed.
//! Kept in memory (a restart clears it), bounded in size.

use std::collections::HashMap;
use std::sync::Mutex;

use time::{Duration, OffsetDateTime};

use crate::error::{Error, Result};

/// Most emails tracked at once; older windows are dropped first when full.
const MAX_TRACKED: usize = 100_000;

#[derive(Debug)]
pub(crate) struct Throttle {
    max_failures: u32,
    window: Duration,
    failures: Mutex<HashMap<String, (u32, OffsetDateTime)>>,
}

impl Throttle {
    pub(crate) fn new(max_failures: u32, window: Duration) -> Throttle {
        Throttle {
            max_failures,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u32, OffsetDateTime)>> {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Refuses when `email` has used up its failures in the current window.
    pub(crate) fn check(&self, email: &str, now: OffsetDateTime) -> Result<()> {
        if let Some((count, start)) = self.map().get(email) {
            let ends = *start + self.window;
            if *count >= self.max_failures && now < ends {
                let wait = (ends - now).whole_seconds().max(1);
                return Err(Error::TooManyRequests(format!(
                    "too many failed sign-ins for this email; try again in {wait} s"
                )));
            }
        }
        Ok(())
    }

    pub(crate) fn failed(&self, email: &str, now: OffsetDateTime) {
        let mut map = self.map();
        if map.len() >= MAX_TRACKED {
            let window = self.window;
            map.retain(|_, (_, start)| now < *start + window);
        }
        let entry = map.entry(email.to_owned()).or_insert((0, now));
        if now >= entry.1 + self.window {
            *entry = (0, now);
        }
        entry.0 = entry.0.saturating_add(1);
    }

    pub(crate) fn succeeded(&self, email: &str) {
        self.map().remove(email);
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
            t.check("a@x", t0).unwrap();
            t.failed("a@x", t0);
        }
        assert!(matches!(t.check("a@x", t0), Err(Error::TooManyRequests(_))));
        t.check("b@x", t0).unwrap();
        t.check("a@x", t0 + Duration::minutes(15)).unwrap();
        t.succeeded("a@x");
        t.check("a@x", t0).unwrap();
    }
}
