//! AuthnRequest IDs recorded with the answer's audit line (the audit writer's group commit):
//! of many answers racing with one ID, on one node or two, exactly one is stored, and a
//! losing answer leaves no line.

use std::sync::Arc;

use latchkey_idp::audit::{AuditBatcher, AuditFilter, Change};
use latchkey_idp::sso::{Claim, SeenRequests};
use latchkey_idp::{Clock, ManualClock, Store};
use time::{Duration, macros::datetime};
use tokio::sync::Barrier;
use tokio::task::JoinSet;

use super::admin;
use crate::on_both_backends;
use crate::support::{TestStore, cheap_passwords};

on_both_backends!(
    an_authn_request_id_burst_is_answered_once_across_nodes,
    a_claim_lost_to_a_parked_request_stores_nothing
);

const T0: time::OffsetDateTime = datetime!(2026-12-06 01:00:00 UTC);

fn line(target: &str) -> Change {
    Change {
        action: "sso.assertion",
        target_kind: "app",
        target_id: target.into(),
        target_name: target.into(),
        before: None,
        after: None,
    }
}

async fn lines(s: &Store, target: &str) -> usize {
    s.audit()
        .list(&AuditFilter {
            action: Some("sso.assertion".into()),
            target_id: Some(target.into()),
            ..AuditFilter::default()
        })
        .await
        .unwrap()
        .len()
}

/// Two nodes (their own pools and audit writers over one database) each answer 16 requests
/// at once, all with one AuthnRequest ID, beside 8 requests with IDs of their own: exactly
/// one of the 32 is stored (its line with it), every other ID once. After the ID's window
/// the same ID is answered again, once.
async fn an_authn_request_id_burst_is_answered_once_across_nodes(t: TestStore) {
    let clock = ManualClock::new(T0);
    let a = t.store.clone().with_clock(clock.clone());
    let b = Store::open_url(&t.url, 5, cheap_passwords())
        .await
        .unwrap()
        .with_clock(clock.clone());
    let writers = [
        AuditBatcher::start(a.clone()),
        AuditBatcher::start(b.clone()),
    ];
    let until = T0 + Duration::minutes(10);
    let shared = Claim::authn_request("https://sp.example.org", "_burst", until);

    let run = |shared: &Claim, n: usize, extra: usize, tag: &'static str| {
        let gate = Arc::new(Barrier::new(n + extra));
        let mut set = JoinSet::new();
        for i in 0..n + extra {
            let writer = writers[i % 2].clone();
            let (claim, target) = if i < n {
                (shared.clone(), format!("{tag}-shared"))
            } else {
                let id = format!("_{tag}_{i}");
                (
                    Claim::authn_request("https://sp.example.org", &id, until),
                    format!("{tag}-{i}"),
                )
            };
            let gate = gate.clone();
            set.spawn(async move {
                gate.wait().await;
                let stored = writer
                    .record_claiming(&admin(), T0, line(&target), Some(claim))
                    .await
                    .unwrap();
                (i, stored)
            });
        }
        set
    };
    let mut set = run(&shared, 32, 8, "first");
    let mut won = Vec::new();
    while let Some(r) = set.join_next().await {
        let (i, stored) = r.unwrap();
        if i < 32 {
            won.push(stored);
        } else {
            assert!(stored, "request {i} had an ID of its own");
        }
    }
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
    assert_eq!(lines(&a, "first-shared").await, 1, "only the winner's line");
    for i in 32..40 {
        assert_eq!(lines(&b, &format!("first-{i}")).await, 1);
    }

    // Still in its window, on its own: a replay, nothing written.
    let seen = SeenRequests::new(&b);
    assert!(
        !seen
            .claim(&shared, T0 + Duration::minutes(1))
            .await
            .unwrap()
    );
    assert!(
        !writers[1]
            .record_claiming(&admin(), T0, line("late"), Some(shared.clone()))
            .await
            .unwrap()
    );
    assert_eq!(lines(&a, "late").await, 0);

    // Past the window the row is taken over, once, by a claim with a window of its own
    // (the old request itself would be refused as stale; this checks the record alone).
    clock.advance(Duration::minutes(11));
    let renewed = Claim::authn_request(
        "https://sp.example.org",
        "_burst",
        T0 + Duration::minutes(21),
    );
    let mut set = run(&renewed, 16, 0, "again");
    let mut won = 0;
    while let Some(r) = set.join_next().await {
        won += usize::from(r.unwrap().1);
    }
    assert_eq!(won, 1);
    assert_eq!(lines(&a, "again-shared").await, 1);

    // A claim whose window has passed by the time it is recorded (validated just before
    // the end, answered just after) is refused, even with the ID free: its record would be
    // expired at once and taken over by the next one.
    let stale = Claim::authn_request("https://sp.example.org", "_late", T0 + Duration::minutes(5));
    assert!(
        !SeenRequests::new(&a)
            .claim(&stale, clock.now())
            .await
            .unwrap()
    );
    assert!(
        !writers[0]
            .record_claiming(&admin(), T0, line("stale"), Some(stale))
            .await
            .unwrap()
    );
    assert_eq!(lines(&a, "stale").await, 0);
}

/// A request recorded on its own (as when it is parked for a sign-in) makes a later answer
/// with the same ID a replay, and a line without a claim in the same batch is stored
/// regardless.
async fn a_claim_lost_to_a_parked_request_stores_nothing(t: TestStore) {
    let clock = ManualClock::new(T0);
    let s = t.store.clone().with_clock(clock.clone());
    let writer = AuditBatcher::start(s.clone());
    let claim = Claim::authn_request(
        "https://sp.example.org",
        "_parked",
        T0 + Duration::minutes(10),
    );
    assert!(SeenRequests::new(&s).claim(&claim, T0).await.unwrap());
    let gate = Arc::new(Barrier::new(2));
    let (w1, w2, g1, g2, c) = (
        writer.clone(),
        writer.clone(),
        gate.clone(),
        gate,
        claim.clone(),
    );
    let replay = tokio::spawn(async move {
        g1.wait().await;
        w1.record_claiming(&admin(), T0, line("replay"), Some(c))
            .await
            .unwrap()
    });
    let plain = tokio::spawn(async move {
        g2.wait().await;
        w2.record_claiming(&admin(), T0, line("plain"), None)
            .await
            .unwrap()
    });
    assert!(!replay.await.unwrap());
    assert!(plain.await.unwrap());
    assert_eq!(lines(&s, "replay").await, 0);
    assert_eq!(lines(&s, "plain").await, 1);
}
