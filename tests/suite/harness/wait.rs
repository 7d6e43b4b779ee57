//! Waiting for a condition, never for a fixed time: the condition is looked at again
//! every 50 ms until it holds, and the test fails naming what it waited for once the
//! bound is past. On tokio's paused clock the bound and the polls move with it.

use std::future::Future;
use std::time::Duration;

/// How often a condition is looked at again.
const POLL: Duration = Duration::from_millis(50);

/// Waits until `check` gives a value (at most `within`), and returns it.
/// `what` is shown when the bound is past (a `Display` that reads live state shows the
/// state at that moment).
pub async fn until_some<T, F: Future<Output = Option<T>>>(
    what: impl std::fmt::Display,
    within: Duration,
    check: impl FnMut() -> F,
) -> T {
    polling(what, within, POLL, check).await
}

/// [`until_some`], looking every `every`: for a test that measures how soon a change
/// is seen, finer than the usual poll.
pub async fn polling<T, F: Future<Output = Option<T>>>(
    what: impl std::fmt::Display,
    within: Duration,
    every: Duration,
    mut check: impl FnMut() -> F,
) -> T {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited {within:?} for {what}"
        );
        // The one poll interval of the test suite: not a wait for time to pass.
        tokio::time::sleep(every).await;
    }
}

/// Waits until `check` holds (at most `within`).
pub async fn until<F: Future<Output = bool>>(
    what: impl std::fmt::Display,
    within: Duration,
    mut check: impl FnMut() -> F,
) {
    until_some(what, within, || {
        let f = check();
        async move { f.await.then_some(()) }
    })
    .await;
}
