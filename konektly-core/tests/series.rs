//! Recurring posts: occurrences by the rule and the zone, one post per occurrence whoever
//! creates it, and no catch-up burst after a downtime.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use konektly_core::series::{MemorySeriesStore, MissedPolicy, Recurrence, Series, SeriesId, SeriesRunner};
use konektly_core::testing::StubPlatform;
use konektly_core::{
    Account, Content, Konektly, MemoryScheduler, MemoryTokenStore, OwnerId, Post, Scheduler, Target, TargetFilter,
};

fn occurrences(rule: &str, zone: &str, start: &str, n: usize) -> Vec<String> {
    Recurrence::parse(rule).unwrap().occurrences(zone, start).unwrap().take(n).map(|(_, t)| t.to_rfc3339()).collect()
}

#[test]
fn rules_parse_and_say_what_is_wrong() {
    let r = Recurrence::parse("RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE;COUNT=10").unwrap();
    assert_eq!((r.interval, r.by_day.len(), r.count), (2, 2, Some(10)));
    for bad in [
        "",
        "FREQ=YEARLY",
        "FREQ=DAILY;INTERVAL=0",
        "FREQ=DAILY;BYHOUR=9",
        "FREQ=WEEKLY;BYDAY=XX",
        "FREQ=DAILY;COUNT=2;UNTIL=20270101T000000Z",
        "FREQ=MONTHLY;BYMONTHDAY=32",
    ] {
        assert!(Recurrence::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn weekly_monthly_count_and_until() {
    // Every other week on Monday and Wednesday, from Monday 2026-12-07 09:00 UTC.
    assert_eq!(
        occurrences("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE", "UTC", "2026-12-07T09:00", 4),
        vec![
            "2026-12-07T09:00:00+00:00",
            "2026-12-09T09:00:00+00:00",
            "2026-12-21T09:00:00+00:00",
            "2026-12-23T09:00:00+00:00"
        ]
    );
    // The 31st skips the months that have none (RFC 5545).
    assert_eq!(
        occurrences("FREQ=MONTHLY;BYMONTHDAY=31", "UTC", "2027-01-31T08:00", 3),
        vec!["2027-01-31T08:00:00+00:00", "2027-03-31T08:00:00+00:00", "2027-05-31T08:00:00+00:00"]
    );
    assert_eq!(occurrences("FREQ=DAILY;COUNT=2", "UTC", "2026-12-07T09:00", 5).len(), 2);
    assert_eq!(
        occurrences("FREQ=DAILY;UNTIL=20261209T090000Z", "UTC", "2026-12-07T09:00", 5).len(),
        3,
        "until is inclusive"
    );
}

#[test]
fn a_daily_rule_keeps_its_local_time_across_daylight_saving() {
    // New York, 09:00 local: 14:00 UTC in winter, 13:00 UTC from 2026-03-08.
    assert_eq!(
        occurrences("FREQ=DAILY", "America/New_York", "2026-03-07T09:00", 2),
        vec!["2026-03-07T14:00:00+00:00", "2026-03-08T13:00:00+00:00"]
    );
    // Paris, 02:30 local on the day it does not exist: moved past the gap (03:30 CEST).
    assert_eq!(
        occurrences("FREQ=DAILY", "Europe/Paris", "2026-03-28T02:30", 2),
        vec!["2026-03-28T01:30:00+00:00", "2026-03-29T01:30:00+00:00"]
    );
}

async fn engine() -> (Konektly, Arc<MemoryScheduler>, Account) {
    let scheduler = Arc::new(MemoryScheduler::new());
    let engine = Konektly::builder()
        .platform(Arc::new(StubPlatform::new("stub")))
        .token_store(Arc::new(MemoryTokenStore::new()))
        .scheduler(scheduler.clone())
        .build()
        .unwrap();
    let owner = OwnerId::new("o");
    let start = engine.connect(&owner, &"stub".into(), &"https://app.example/cb".parse().unwrap()).await.unwrap();
    let account = engine.complete_connect(&start.state, "code").await.unwrap().remove(0);
    (engine, scheduler, account)
}

fn series(account: &Account, start: DateTime<Utc>, missed: MissedPolicy) -> Series {
    let owner = account.owner.clone();
    Series {
        id: SeriesId::new(),
        owner: owner.clone(),
        rule: Recurrence::parse("FREQ=DAILY").unwrap(),
        time_zone: "UTC".into(),
        start: start.format("%Y-%m-%dT%H:%M").to_string(),
        template: Post::new(owner, Content::text("tip of the day")).to(Target::new(account.id)),
        variants: vec!["tip #{n} ({date})".into(), "another tip, #{n}".into()],
        missed,
        horizon_secs: 2 * 86_400 + 60,
        grace_secs: 600,
        paused: false,
        next: 0,
        end_before: None,
        overrides: Default::default(),
        version: 0,
    }
}

async fn posts_of(s: &MemoryScheduler) -> Vec<(DateTime<Utc>, String)> {
    let mut v: Vec<_> =
        s.list(&TargetFilter::default()).await.unwrap().into_iter().map(|t| (t.due_at, t.content.text)).collect();
    v.sort();
    v
}

#[tokio::test]
async fn a_series_after_ten_days_of_downtime_publishes_no_burst() {
    let (engine, scheduler, account) = engine().await;
    let runner = SeriesRunner::new(engine, Arc::new(MemorySeriesStore::default()));
    let now = Utc::now();
    // Started ten days ago, at this minute: occurrences 0..=9 were missed (10 is now, within the grace).
    let start = now - Duration::days(10) + Duration::minutes(1);
    let s = runner.create(series(&account, start, MissedPolicy::Skip)).await.unwrap();
    let posts = posts_of(&scheduler).await;
    assert_eq!(posts.len(), 3, "today's, tomorrow's and the next day's; no missed one: {posts:?}");
    assert_eq!(posts[0].1, "tip #11 (".to_owned() + &posts[0].0.format("%Y-%m-%d").to_string() + ")");
    assert_eq!(posts[1].1, "another tip, #12", "variants cycle");
    // Another pass (another node) adds nothing.
    runner.materialize(&account.owner, s.id, Utc::now()).await.unwrap();
    assert_eq!(posts_of(&scheduler).await.len(), 3);
    // Five more days without a pass: the missed ones are skipped, not published at once.
    let later = runner.materialize(&account.owner, s.id, now + Duration::days(5)).await.unwrap();
    assert_eq!(later.skipped.len(), 2, "{later:?}");
    assert_eq!(posts_of(&scheduler).await.len(), 3 + 3);
}

#[tokio::test]
async fn publish_latest_once_publishes_one_missed_occurrence_now() {
    let (engine, scheduler, account) = engine().await;
    let runner = SeriesRunner::new(engine, Arc::new(MemorySeriesStore::default()));
    let start = Utc::now() - Duration::days(10) + Duration::hours(2);
    runner.create(series(&account, start, MissedPolicy::PublishLatestOnce)).await.unwrap();
    let posts = posts_of(&scheduler).await;
    // Occurrences 0..=9 passed (the last 22 h ago): one of them, now; then the next two days' ones.
    assert_eq!(posts.len(), 1 + 2, "{posts:?}");
    assert!(posts[0].0 <= Utc::now(), "the missed one is due now");
    assert!(posts[0].1.starts_with("another tip, #10"), "the latest missed, occurrence 10: {}", posts[0].1);
}

#[tokio::test]
async fn skip_pause_and_edit_following() {
    let (engine, scheduler, account) = engine().await;
    let runner = SeriesRunner::new(engine, Arc::new(MemorySeriesStore::default()));
    let start = Utc::now() + Duration::hours(1);
    let s = runner.create(series(&account, start, MissedPolicy::Skip)).await.unwrap();
    assert_eq!(posts_of(&scheduler).await.len(), 2, "in an hour and a day later: the horizon is two days");
    // Skipping a created occurrence cancels its post.
    runner.skip(&account.owner, s.id, 1).await.unwrap();
    let cancelled =
        scheduler.list(&TargetFilter::default()).await.unwrap().into_iter().filter(|t| t.state.is_final()).count();
    assert_eq!(cancelled, 1);
    // Edit this and following from occurrence 5: the old series stops before it.
    let new_template = Post::new(account.owner.clone(), Content::text("new tip {n}")).to(Target::new(account.id));
    let new = runner.edit_following(&account.owner, s.id, 5, new_template).await.unwrap();
    assert_ne!(new.id, s.id);
    runner.materialize(&account.owner, s.id, Utc::now() + Duration::days(10)).await.unwrap();
    assert_eq!(runner.get(&account.owner, s.id).await.unwrap().next, 5, "the old one ends before 5");
    // Paused: nothing more is created.
    runner.pause(&account.owner, new.id).await.unwrap();
    let before = posts_of(&scheduler).await.len();
    runner.materialize(&account.owner, new.id, Utc::now() + Duration::days(30)).await.unwrap();
    assert_eq!(posts_of(&scheduler).await.len(), before);
}
