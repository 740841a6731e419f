//! `usage_meter`: session-minutes and upstream mints per team per UTC day.
//!
//! Each run recomputes whole days, from the day of the last good run to today, out of the
//! sessions and stored tokens themselves, and writes each value "raise only". Nothing is ever
//! added to a stored count, so a re-run, a crash mid-run or a second replica cannot count twice.
//! A live session counts up to the run's start.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use lanyard_store::UsageDay;
use uuid::Uuid;

use super::{Report, RunContext};
use crate::services::Services;

/// A first run (or one after a long outage) looks back this many days at most.
pub const MAX_BACKFILL_DAYS: i64 = 31;

/// Rows read per query.
const PAGE: u32 = 2_000;

/// The minutes of each UTC day during which `[start, end)` was active: every minute begun counts,
/// so a 10-second session is one minute and 60 s that straddle midnight are one minute each day.
pub fn minutes_by_day(start: DateTime<Utc>, end: DateTime<Utc>) -> Vec<(NaiveDate, i64)> {
    let mut out = Vec::new();
    let mut at = start;
    while at < end {
        let day = at.date_naive();
        let next_day = (day + Duration::days(1))
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc();
        let until = end.min(next_day);
        let millis = (until - at).num_milliseconds();
        out.push((day, (millis + 59_999) / 60_000));
        at = until;
    }
    out
}

fn day_start(at: DateTime<Utc>) -> DateTime<Utc> {
    at.date_naive()
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc()
}

pub(super) async fn run(svc: &Services, ctx: RunContext) -> anyhow::Result<Report> {
    let earliest = day_start(ctx.now - Duration::days(MAX_BACKFILL_DAYS));
    let from = ctx
        .last_ok_at
        .map_or(earliest, |at| day_start(at).max(earliest));
    let to = ctx.now;
    let first_day = from.date_naive();
    let mut days: BTreeMap<(Uuid, NaiveDate), (i64, i64)> = BTreeMap::new();

    let mut after = Uuid::nil();
    loop {
        let spans = svc.store().session_spans(from, to, after, PAGE).await?;
        for span in &spans {
            let ended = span
                .stopped_at
                .unwrap_or(span.expires_at)
                .min(span.expires_at);
            let (start, end) = (span.created_at.max(from), ended.min(to));
            for (day, minutes) in minutes_by_day(start, end) {
                days.entry((span.team_id, day)).or_default().0 += minutes;
            }
        }
        match spans.last() {
            Some(last) if spans.len() == PAGE as usize => after = last.id,
            _ => break,
        }
    }
    let mut after = Uuid::nil();
    loop {
        let mints = svc.store().mints_between(from, to, after, PAGE).await?;
        for mint in &mints {
            days.entry((mint.team_id, mint.created_at.date_naive()))
                .or_default()
                .1 += 1;
        }
        match mints.last() {
            Some(last) if mints.len() == PAGE as usize => after = last.id,
            _ => break,
        }
    }
    let rows: Vec<UsageDay> = days
        .into_iter()
        .filter(|((_, day), _)| *day >= first_day)
        .map(|((team_id, day), (session_minutes, mints))| UsageDay {
            team_id,
            day: day.format("%Y-%m-%d").to_string(),
            session_minutes,
            mints,
        })
        .collect();
    for chunk in rows.chunks(500) {
        svc.store().record_usage(chunk).await?;
    }
    let skipped = svc.store().test_teams_with_sessions(from, to).await?;
    Ok(Report {
        done: rows.len(),
        skipped_test: u64::try_from(skipped).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn minutes_are_counted_per_utc_day_and_every_begun_minute_counts() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(
            minutes_by_day(at("2026-01-01T10:00:00Z"), at("2026-01-01T10:00:10Z")),
            [(d("2026-01-01"), 1)]
        );
        assert_eq!(
            minutes_by_day(at("2026-01-01T23:30:00Z"), at("2026-01-02T00:45:00Z")),
            [(d("2026-01-01"), 30), (d("2026-01-02"), 45)]
        );
        assert_eq!(
            minutes_by_day(at("2026-01-01T00:00:00Z"), at("2026-01-03T00:00:00Z")),
            [(d("2026-01-01"), 1440), (d("2026-01-02"), 1440)]
        );
        assert!(minutes_by_day(at("2026-01-01T10:00:00Z"), at("2026-01-01T10:00:00Z")).is_empty());
    }
}
