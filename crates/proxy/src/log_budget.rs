//! How many refusal log lines a proxy writes: every refusal is logged at its level, but
//! a looping agent must not flood the log, so lines come out of a token bucket (a burst
//! of 100, then 20 a second). Refusals past the budget are counted, and the next line
//! that is written says how many were left out (`suppressed=N`); metrics and the audit
//! log still count every one.

use std::sync::Mutex;

use tokio::time::Instant;

const BURST: f64 = 100.0;
const PER_SECOND: f64 = 20.0;

pub(crate) struct LogBudget {
    state: Mutex<State>,
}

struct State {
    tokens: f64,
    last: Instant,
    suppressed: u64,
}

impl Default for LogBudget {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                tokens: BURST,
                last: Instant::now(),
                suppressed: 0,
            }),
        }
    }
}

impl LogBudget {
    /// `Some(suppressed since the last line)` when a line may be written now; `None`
    /// when it must be left out (and is counted).
    pub(crate) fn take(&self, now: Instant) -> Option<u64> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let elapsed = now.saturating_duration_since(s.last).as_secs_f64();
        s.tokens = (s.tokens + elapsed * PER_SECOND).min(BURST);
        s.last = now;
        if s.tokens >= 1.0 {
            s.tokens -= 1.0;
            Some(std::mem::take(&mut s.suppressed))
        } else {
            s.suppressed += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_is_cut_and_the_next_line_says_how_many_were_left_out() {
        let budget = LogBudget::default();
        let start = Instant::now();
        let written = (0..1000).filter(|_| budget.take(start).is_some()).count();
        assert_eq!(written, 100, "the burst");
        assert_eq!(budget.take(start + Duration::from_millis(60)), Some(900));
        assert_eq!(budget.take(start + Duration::from_millis(60)), None);
        assert_eq!(budget.take(start + Duration::from_secs(1)), Some(1));
    }
}
