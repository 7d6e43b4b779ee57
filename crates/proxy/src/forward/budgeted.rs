//! Step 4b: each connection the request spends counts against its budget
//! (`connectors[].limits`): over the window's count, `429 budget_exhausted` (and the
//! webhook `connection.budget_exhausted`, once per window on this replica); over the
//! requests in flight, `429 too_many_in_flight`. Nothing is sent then. A request's
//! places in flight are held by its in-flight guard, until its answer is done.

use egret_policy::{EventKind, Policy};
use egret_webhooks::Event;
use serde_json::json;

use crate::Proxy;
use crate::budget::Over;
use crate::idle::InFlight;
use crate::refusal::Refusal;
use crate::swap::SwapReport;

pub(super) fn take(
    proxy: &Proxy,
    policy: &Policy,
    report: &SwapReport,
    guard: &mut InFlight,
) -> Result<(), Refusal> {
    let mut slots = Vec::new();
    let mut seen = Vec::new();
    for s in &report.swapped {
        let conn = &s.placeholder.connection;
        if seen.contains(&conn) {
            continue;
        }
        seen.push(conn);
        let connector = policy.connector(&conn.connector).and_then(|c| c.budget);
        // The owner's limits, where they narrowed the connection: the stricter applies.
        let budget = match crate::swap::narrowing::of(&s.credential) {
            Some(n) => n.budget_over(connector),
            None => connector,
        };
        let Some(budget) = budget else {
            continue;
        };
        match proxy.budgets.take(conn, &budget, proxy.clock.unix()) {
            Ok(slot) => slots.extend(slot),
            Err(Over::Concurrency(r)) => return Err(r),
            Err(Over::Count { refusal, first }) => {
                if first {
                    let limit = budget.requests.map_or(0, |(n, _)| n);
                    let reason = format!(
                        "the connection used its budget of {limit} requests; it renews in {} s",
                        refusal.retry_after.unwrap_or(0)
                    );
                    let mut event = Event::connection(
                        EventKind::ConnectionBudgetExhausted,
                        conn,
                        "budget_exhausted",
                        &reason,
                    );
                    if let Some(map) = event.data.as_object_mut() {
                        map.insert("budget".to_owned(), json!(limit));
                        map.insert("retry_after".to_owned(), json!(refusal.retry_after));
                    }
                    proxy.events.emit(event);
                    proxy.audit.record(
                        "connection.budget_exhausted",
                        Some(conn),
                        &json!({"budget": limit, "retry_after": refusal.retry_after}),
                    );
                }
                return Err(refusal);
            }
        }
    }
    guard.hold(slots);
    Ok(())
}
