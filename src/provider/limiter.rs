//! The request rate limit: never more than N requests started in any window.
//!
//! FoneStorm rejects requests over the account's limit (10 per second on
//! standard accounts). A token bucket would allow a burst of N and then N
//! more within the same second; this limiter keeps the start times of the
//! last N requests instead, so no window of one second — including the first
//! — ever holds more than N starts. Logins and retries take a slot too.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// Added to every window: requests leave a busy machine and cross the network
/// with some jitter, and the provider counts arrivals, not our start times.
/// 50 ms costs under 5 % of throughput and absorbs that jitter.
const MARGIN: Duration = Duration::from_millis(50);

/// Hears how long each request waited for its slot (only waits that
/// happened), for metrics; it must not block.
pub type WaitHook = std::sync::Arc<dyn Fn(Duration) + Send + Sync>;

/// A sliding-window rate limiter shared by every task of a run (or, in a
/// pager, by every page of the account).
pub struct RateLimiter {
    permits: usize,
    window: Duration,
    starts: Mutex<VecDeque<Instant>>,
    hook: Option<WaitHook>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("permits", &self.permits)
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// At most `per_second` starts in any second; below 1, one start every `1 / per_second` s.
    pub fn new(per_second: f64) -> RateLimiter {
        let per_second = if per_second.is_finite() && per_second > 0.0 {
            // The callers bound it already; a permit per start time must never
            // become a huge allocation.
            per_second.min(crate::limits::MAX_RATE_LIMIT)
        } else {
            1.0
        };
        let (permits, window) = if per_second >= 1.0 {
            // Whole requests only: 2.5/s allows 2 in any second.
            (per_second.floor() as usize, Duration::from_secs(1))
        } else {
            // A rate so small that the window overflows is as good as one a day.
            let window = Duration::try_from_secs_f64(1.0 / per_second)
                .unwrap_or(Duration::from_secs(86_400));
            (1, window.min(Duration::from_secs(86_400)))
        };
        RateLimiter {
            permits,
            window: window + MARGIN,
            starts: Mutex::new(VecDeque::with_capacity(permits)),
            hook: None,
        }
    }

    /// The same limiter, telling `hook` how long each waiting request waited.
    #[must_use]
    pub fn with_wait_hook(mut self, hook: WaitHook) -> RateLimiter {
        self.hook = Some(hook);
        self
    }

    /// Waits until a request may start, and records that it starts now.
    pub async fn acquire(&self) {
        self.take().await;
    }

    /// As [`RateLimiter::acquire`], returning the start taken, so that it
    /// can be moved to when the request really leaves
    /// ([`RateLimiter::leaving`]).
    pub async fn take(&self) -> Slot {
        let begun = Instant::now();
        let mut waited = false;
        loop {
            let next = {
                let mut starts = self.starts.lock().await;
                let now = Instant::now();
                while starts
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= self.window)
                {
                    starts.pop_front();
                }
                if starts.len() < self.permits {
                    starts.push_back(now);
                    drop(starts);
                    if waited && let Some(hook) = &self.hook {
                        hook(now.duration_since(begun));
                    }
                    return Slot(now);
                }
                match starts.front() {
                    Some(oldest) => *oldest + self.window,
                    None => now,
                }
            };
            waited = true;
            tokio::time::sleep_until(next).await;
        }
    }
}

/// A start taken from a [`RateLimiter`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot(Instant);

impl RateLimiter {
    /// Moves start `slot` to now: the request leaves only now (its journal
    /// record was written in between). The provider counts arrivals, and
    /// with many calls recording at once (one journal, one writer) the
    /// last of a second's requests would otherwise leave late and crowd
    /// the next second's first ones.
    pub async fn leaving(&self, slot: Slot) {
        let mut starts = self.starts.lock().await;
        if let Some(at) = starts.iter().position(|t| *t == slot.0) {
            starts.remove(at);
            // Every other start was taken before now: the order is kept.
            starts.push_back(Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With the clock paused, starts land exactly where the limiter puts them.
    #[tokio::test(start_paused = true)]
    async fn no_window_holds_more_than_the_limit() {
        let limiter = std::sync::Arc::new(RateLimiter::new(10.0));
        let begin = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..35 {
            let l = limiter.clone();
            tasks.push(tokio::spawn(async move {
                l.acquire().await;
                Instant::now()
            }));
        }
        let mut starts = Vec::new();
        for t in tasks {
            starts.push(t.await.unwrap());
        }
        starts.sort();
        for (i, s) in starts.iter().enumerate() {
            let in_window = starts[i..]
                .iter()
                .take_while(|t| t.duration_since(*s) < Duration::from_secs(1))
                .count();
            assert!(
                in_window <= 10,
                "{in_window} starts within a second of start {i}"
            );
        }
        // The first ten go at once; the limit is saturated, not undershot.
        assert_eq!(starts[9].duration_since(begin), Duration::ZERO);
        let last = starts[34].duration_since(begin);
        assert_eq!(last, 3 * (Duration::from_secs(1) + MARGIN));
    }

    #[test]
    fn fractional_rates() {
        let l = RateLimiter::new(0.5);
        assert_eq!((l.permits, l.window), (1, Duration::from_secs(2) + MARGIN));
        let l = RateLimiter::new(2.5);
        assert_eq!(l.permits, 2);
        let l = RateLimiter::new(1e-300);
        assert_eq!(l.window, Duration::from_secs(86_400) + MARGIN);
    }

    /// A start moved to when its request leaves holds its place in the
    /// window from then: the next request waits a whole window after it.
    #[tokio::test(start_paused = true)]
    async fn a_start_moved_later_pushes_the_next_one_back() {
        let limiter = RateLimiter::new(1.0);
        let begin = Instant::now();
        let slot = limiter.take().await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        limiter.leaving(slot).await;
        limiter.acquire().await;
        let waited = begin.elapsed();
        assert_eq!(
            waited,
            Duration::from_millis(300) + Duration::from_secs(1) + MARGIN
        );
    }
}
