//! Token buckets: the per-client rate limits of a relay. No I/O; time is passed in.

use std::time::{Duration, Instant};

/// A token bucket: holds at most `burst` tokens, refills at `rate` tokens per second, and
/// grants a request only when it can pay for all of it.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket at `now`. A `rate` of 0 means no limit.
    pub fn new(rate: u64, burst: u64, now: Instant) -> Self {
        let burst = burst.max(1) as f64;
        Self {
            rate: rate as f64,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Takes `amount` tokens at `now` if the bucket holds them; otherwise takes nothing.
    pub fn take(&mut self, amount: u64, now: Instant) -> bool {
        if self.rate == 0.0 {
            return true;
        }
        // A clock read before the last one (another thread's) refills nothing.
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = elapsed.mul_add(self.rate, self.tokens).min(self.burst);
        self.last = self.last.max(now);
        let amount = amount as f64;
        if self.tokens >= amount {
            self.tokens -= amount;
            true
        } else {
            false
        }
    }
}

/// Paces a sender to at most `messages` and `bytes` per second (0: no limit on that), allowing a
/// burst of [`PACING_BURST`] worth. Each send reserves its share of time; the caller waits out
/// the delay [`reserve_by`](Self::reserve_by) returns (virtual scheduling, as GCRA).
#[derive(Debug, Clone)]
pub struct Pacer {
    /// Seconds one message costs, and when the next one is due; `None` without a limit.
    per_message: Option<(f64, Instant)>,
    /// Seconds one payload byte costs, and when the next byte is due.
    per_byte: Option<(f64, Instant)>,
}

/// How far ahead of its schedule a pacer lets a sender run.
pub const PACING_BURST: Duration = Duration::from_millis(10);

impl Pacer {
    /// A pacer that starts on schedule at `now`; `None` when neither rate is limited.
    pub fn new(messages: u64, bytes: u64, now: Instant) -> Option<Self> {
        let cost = |rate: u64| (rate > 0).then(|| (1.0 / rate as f64, now));
        let pacer = Self {
            per_message: cost(messages),
            per_byte: cost(bytes),
        };
        (pacer.per_message.is_some() || pacer.per_byte.is_some()).then_some(pacer)
    }

    /// Reserves the time a message of `len` payload bytes costs if its turn comes by `deadline`
    /// (`None`: whenever it comes), and returns how long, from `now`, its sender must wait
    /// before sending it; `None`, with nothing reserved, if the turn comes later.
    pub fn reserve_by(
        &mut self,
        len: usize,
        now: Instant,
        deadline: Option<Instant>,
    ) -> Option<Duration> {
        // Idle time earns no credit beyond the burst: the schedule restarts at `now`.
        let start = |slot: Option<(f64, Instant)>| slot.map(|(_, due)| due.max(now));
        let wait = [start(self.per_message), start(self.per_byte)]
            .into_iter()
            .flatten()
            .map(|start| start.saturating_duration_since(now + PACING_BURST))
            .max()
            .unwrap_or_default();
        // A turn that is due now is never late, however soon the deadline was.
        if !wait.is_zero() && deadline.is_some_and(|deadline| now + wait > deadline) {
            return None;
        }
        for (slot, units) in [
            (&mut self.per_message, 1.0),
            (&mut self.per_byte, len as f64),
        ] {
            if let Some((cost, due)) = slot {
                *due = (*due).max(now) + Duration::from_secs_f64(*cost * units);
            }
        }
        Some(wait)
    }
}

/// The buckets of one relay client: datagrams and bytes it sends up, and control messages.
#[derive(Debug, Clone)]
pub struct ClientLimits {
    datagrams: TokenBucket,
    bytes: TokenBucket,
    control: TokenBucket,
}

/// Per-second rates of a [`ClientLimits`]; each bucket holds one second's worth (at least
/// one datagram of the largest size for bytes). 0 disables a limit.
#[derive(Debug, Clone, Copy)]
pub struct Rates {
    pub datagrams: u64,
    pub bytes: u64,
    pub control: u64,
}

impl ClientLimits {
    pub fn new(rates: Rates, now: Instant) -> Self {
        let largest = crate::wire::control::MAX_DATA_DATAGRAM as u64;
        Self {
            datagrams: TokenBucket::new(rates.datagrams, rates.datagrams, now),
            bytes: TokenBucket::new(rates.bytes, rates.bytes.max(largest), now),
            control: TokenBucket::new(rates.control, rates.control, now),
        }
    }

    /// Whether a datagram of `len` bytes may go up now; a refused one costs nothing.
    pub fn allow_data(&mut self, len: usize, now: Instant) -> bool {
        let len = len as u64;
        // Check both before paying either, so a refusal leaves both buckets untouched.
        let mut datagrams = self.datagrams.clone();
        let mut bytes = self.bytes.clone();
        if datagrams.take(1, now) && bytes.take(len, now) {
            (self.datagrams, self.bytes) = (datagrams, bytes);
            true
        } else {
            false
        }
    }

    /// Whether a control message may be handled now.
    pub fn allow_control(&mut self, now: Instant) -> bool {
        self.control.take(1, now)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_bucket_grants_its_burst_then_its_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(100, 10, start);
        let granted = (0..50).filter(|_| bucket.take(1, start)).count();
        assert_eq!(granted, 10, "a full bucket pays its burst at once");
        // 100 per second: 50 ms buys 5 more.
        let later = start + Duration::from_millis(50);
        let granted = (0..50).filter(|_| bucket.take(1, later)).count();
        assert_eq!(granted, 5);
    }

    #[test]
    fn a_bucket_never_holds_more_than_its_burst() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(1000, 20, start);
        assert!(bucket.take(20, start));
        let much_later = start + Duration::from_secs(3600);
        let granted = (0..100).filter(|_| bucket.take(1, much_later)).count();
        assert_eq!(granted, 20);
    }

    #[test]
    fn a_refused_request_costs_nothing() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10, 10, start);
        assert!(
            !bucket.take(11, start),
            "more than the burst is never granted"
        );
        assert!(bucket.take(10, start), "the refusal took nothing");
        assert!(!bucket.take(1, start));
    }

    #[test]
    fn an_earlier_clock_reading_refills_nothing() {
        let start = Instant::now() + Duration::from_secs(1);
        let mut bucket = TokenBucket::new(10, 2, start);
        assert!(bucket.take(2, start));
        assert!(!bucket.take(1, start - Duration::from_millis(500)));
        assert!(bucket.take(1, start + Duration::from_millis(100)));
    }

    #[test]
    fn a_zero_rate_is_no_limit() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(0, 0, start);
        assert!((0..10_000).all(|_| bucket.take(1_000_000, start)));
    }

    #[test]
    fn client_limits_cap_datagrams_and_bytes_separately() {
        let start = Instant::now();
        let rates = Rates {
            datagrams: 100,
            bytes: 100_000,
            control: 5,
        };
        let mut few_large = ClientLimits::new(rates, start);
        // 100 000 bytes of burst: 99 datagrams of 1000 bytes fit, then the bytes run out
        // before the datagram count does.
        let granted = (0..200)
            .filter(|_| few_large.allow_data(1_010, start))
            .count();
        assert_eq!(granted, 99);
        let mut many_small = ClientLimits::new(rates, start);
        let granted = (0..200)
            .filter(|_| many_small.allow_data(10, start))
            .count();
        assert_eq!(granted, 100, "the datagram count caps small datagrams");
        let granted = (0..20).filter(|_| many_small.allow_control(start)).count();
        assert_eq!(granted, 5, "control has its own bucket");
    }

    #[test]
    fn a_datagram_refused_for_bytes_keeps_its_datagram_token() {
        let start = Instant::now();
        let rates = Rates {
            datagrams: 2,
            bytes: 100,
            control: 1,
        };
        let mut limits = ClientLimits::new(rates, start);
        let too_big = crate::wire::control::MAX_DATA_DATAGRAM + 1;
        assert!(!limits.allow_data(too_big, start));
        assert!(limits.allow_data(10, start));
        assert!(
            limits.allow_data(10, start),
            "the refusal spent no datagram token"
        );
        assert!(!limits.allow_data(10, start));
    }

    /// The wait for a message of `len` bytes sent at `now`, with no deadline.
    fn reserve(pacer: &mut Pacer, len: usize, now: Instant) -> Duration {
        pacer.reserve_by(len, now, None).unwrap()
    }

    /// Sends `count` messages of `len` bytes as fast as `pacer` lets them, on a fake clock, and
    /// returns how long that took.
    fn paced(pacer: &mut Pacer, count: usize, len: usize, start: Instant) -> Duration {
        let mut now = start;
        for _ in 0..count {
            now += reserve(pacer, len, now);
        }
        now - start
    }

    #[test]
    fn no_rate_means_no_pacer() {
        assert!(Pacer::new(0, 0, Instant::now()).is_none());
    }

    #[test]
    fn a_message_rate_spaces_sends_after_the_burst() {
        let start = Instant::now();
        let mut pacer = Pacer::new(100, 0, start).unwrap();
        // 10 ms apart; the first two fit the 10 ms burst.
        assert_eq!(reserve(&mut pacer, 64, start), Duration::ZERO);
        assert_eq!(reserve(&mut pacer, 64, start), Duration::ZERO);
        assert_eq!(reserve(&mut pacer, 64, start), Duration::from_millis(10));
        let mut pacer = Pacer::new(100, 0, start).unwrap();
        let took = paced(&mut pacer, 1001, 64, start);
        assert!((took.as_secs_f64() - 9.99).abs() < 0.001, "{took:?}");
    }

    #[test]
    fn a_byte_rate_paces_by_size_and_the_slower_limit_wins() {
        let start = Instant::now();
        let mut pacer = Pacer::new(0, 1000, start).unwrap();
        let took = paced(&mut pacer, 21, 500, start);
        assert!(
            (took.as_secs_f64() - 9.99).abs() < 0.001,
            "2 messages a second: {took:?}"
        );
        let mut both = Pacer::new(1000, 1000, start).unwrap();
        let took = paced(&mut both, 21, 500, start);
        assert!(
            (took.as_secs_f64() - 9.99).abs() < 0.001,
            "bytes are the limit: {took:?}"
        );
    }

    #[test]
    fn idle_time_earns_no_credit_beyond_the_burst() {
        let start = Instant::now();
        let mut pacer = Pacer::new(100, 0, start).unwrap();
        let later = start + Duration::from_secs(10);
        assert_eq!(reserve(&mut pacer, 1, later), Duration::ZERO);
        assert_eq!(reserve(&mut pacer, 1, later), Duration::ZERO);
        assert_eq!(
            reserve(&mut pacer, 1, later),
            Duration::from_millis(10),
            "no saved-up burst"
        );
    }

    #[test]
    fn a_turn_after_the_deadline_reserves_nothing() {
        let start = Instant::now();
        let mut pacer = Pacer::new(100, 1000, start).unwrap();
        let past = start.checked_sub(Duration::from_millis(1)).unwrap();
        assert_eq!(pacer.reserve_by(5, start, Some(past)), Some(Duration::ZERO));
        assert_eq!(
            pacer.reserve_by(5, start, Some(start)),
            Some(Duration::ZERO)
        );
        // The third message's turn is 10 ms away: refused at a deadline of 9 ms, taken at 10.
        let soon = start + Duration::from_millis(9);
        assert_eq!(pacer.reserve_by(5, start, Some(soon)), None);
        let in_turn = start + Duration::from_millis(10);
        assert_eq!(
            pacer.reserve_by(5, start, Some(in_turn)),
            Some(Duration::from_millis(10)),
            "the refusal reserved nothing, in messages or in bytes"
        );
        assert_eq!(reserve(&mut pacer, 5, start), Duration::from_millis(20));
    }
}
