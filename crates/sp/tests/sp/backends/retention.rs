//! The audit log's retention: `SqlAccountStore::purge_audit` deletes the events older than a
//! cutoff, in batches, and records itself as an `audit.purged` event; `[audit] retain_days`
//! of 0 deletes nothing.

use std::sync::Arc;

use latchkey_sp::jit::{JitEngine, Outcome, PlanAction, ProvisioningPlan};
use latchkey_sp::settings::AuditSettings;
use latchkey_sp::store::{
    AUDIT_PURGE_BATCH, AccountStore, AccountTx, AuditEvent, AuditKind, SqlAccountStore,
};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::support::{Db, IDP, WIKI, contract, facts, fixture, t0};

/// An event of the kind a returning login writes, at `at`, told apart by `n`.
fn event(at: OffsetDateTime, n: usize) -> AuditEvent {
    AuditEvent {
        id: AuditEvent::id_at(at),
        operation_id: Uuid::new_v4(),
        at,
        kind: AuditKind::Unchanged,
        account_id: None,
        idp_entity_id: IDP.to_owned(),
        identity_key: Some(format!("name_id:user-{n}")),
        session_index: None,
        actor: None,
        plan: ProvisioningPlan {
            identity: None,
            action: PlanAction::Unchanged {
                account_id: Uuid::nil(),
            },
        },
    }
}

/// `count` events a millisecond apart from `start`, numbered from `first`.
fn events(start: OffsetDateTime, first: usize, count: usize) -> Vec<AuditEvent> {
    (0..count)
        .map(|i| event(start + Duration::milliseconds(i as i64), first + i))
        .collect()
}

async fn append(store: &SqlAccountStore, events: &[AuditEvent]) {
    let mut tx = store.begin().await.unwrap();
    for e in events {
        tx.append_audit(e).await.unwrap();
    }
    tx.commit().await.unwrap();
}

fn operation_ids(log: &[AuditEvent]) -> Vec<Uuid> {
    log.iter().map(|e| e.operation_id).collect()
}

/// The log's one `audit.purged` event, checked to say `events` before `cutoff`, at `now`.
fn the_purge_event(log: &[AuditEvent], cutoff: OffsetDateTime, events: u64, now: OffsetDateTime) {
    let purges: Vec<_> = log.iter().filter(|e| e.kind == AuditKind::Purged).collect();
    assert_eq!(purges.len(), 1, "{log:#?}");
    let purge = purges[0];
    assert_eq!(purge.at, now);
    assert_eq!(purge.actor.as_deref(), Some("system"));
    assert_eq!(
        purge.plan.action,
        PlanAction::Purge {
            before: cutoff,
            events
        }
    );
}

async fn events_older_than_the_cutoff_go_and_the_purge_is_recorded(db: Db) {
    let fx = fixture(db).await;
    let now = t0();
    let cutoff = now - Duration::days(30);
    let old = events(now - Duration::days(40), 0, 3);
    let on_the_cutoff = vec![event(cutoff, 3)];
    let newer = events(now - Duration::days(1), 4, 2);
    append(&fx.store, &old).await;
    append(&fx.store, &on_the_cutoff).await;
    append(&fx.store, &newer).await;

    let purge = fx.store.purge_audit(cutoff, now).await.unwrap();
    assert_eq!(purge.events, 3);
    assert_eq!(purge.batches, 1);

    let log = fx.store.audit_log(100).await.unwrap();
    // What was not older than the cutoff stays, in its order, and the purge comes last.
    let mut kept = operation_ids(&on_the_cutoff);
    kept.extend(operation_ids(&newer));
    assert_eq!(operation_ids(&log[..3]), kept);
    assert_eq!(log.len(), 4);
    assert_eq!(Some(log[3].operation_id), purge.operation_id);
    the_purge_event(&log, cutoff, 3, now);
    // The plan round-trips as JSON: `{"identity": null, "action": "purge", ...}`.
    let json = serde_json::to_value(&log[3].plan).unwrap();
    assert_eq!(json["action"], "purge");
    assert_eq!(json["events"], 3);

    // Again, later: nothing more is old enough, so nothing is deleted and nothing recorded,
    // and a purge never takes its own record.
    let again = fx
        .store
        .purge_audit(cutoff, now + Duration::minutes(10))
        .await
        .unwrap();
    assert_eq!(
        (again.events, again.batches, again.operation_id),
        (0, 0, None)
    );
    assert_eq!(
        operation_ids(&fx.store.audit_log(100).await.unwrap()),
        operation_ids(&log)
    );
}

async fn a_purge_larger_than_a_batch_takes_several(db: Db) {
    let fx = fixture(db).await;
    let now = t0();
    let cutoff = now - Duration::days(30);
    let batch = AUDIT_PURGE_BATCH as usize;
    let old = events(now - Duration::days(400), 0, 2 * batch + 500);
    let newer = events(now - Duration::days(29), old.len(), 5);
    append(&fx.store, &old).await;
    append(&fx.store, &newer).await;

    let purge = fx.store.purge_audit(cutoff, now).await.unwrap();
    assert_eq!(purge.events, old.len() as u64);
    assert_eq!(purge.batches, 3);

    let log = fx.store.audit_log(10_000).await.unwrap();
    assert_eq!(operation_ids(&log[..5]), operation_ids(&newer));
    assert_eq!(log.len(), 6);
    the_purge_event(&log, cutoff, old.len() as u64, now);
}

/// `retain_days = 0` (the default) purges nothing, however old the log; a retention purges
/// what it says.
async fn retention_zero_deletes_nothing(db: Db) {
    let fx = fixture(db).await;
    let now = t0();
    let ancient = events(now - Duration::days(36_000), 0, 3);
    let recent = events(now - Duration::days(2), 3, 2);
    append(&fx.store, &ancient).await;
    append(&fx.store, &recent).await;
    let before = fx.store.audit_log(100).await.unwrap();

    let keep_all = AuditSettings::default();
    assert_eq!(keep_all.retain_days, 0);
    assert_eq!(
        fx.store
            .apply_audit_retention(&keep_all, now)
            .await
            .unwrap(),
        None
    );
    assert_eq!(fx.store.audit_log(100).await.unwrap(), before);

    let a_week = AuditSettings {
        retain_days: 7,
        ..AuditSettings::default()
    };
    let purge = fx
        .store
        .apply_audit_retention(&a_week, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(purge.events, 3);
    let log = fx.store.audit_log(100).await.unwrap();
    assert_eq!(operation_ids(&log[..2]), operation_ids(&recent));
    the_purge_event(&log, now - Duration::days(7), 3, now);
}

/// Logins during a long purge commit, each with its audit event: the purge takes the lock a
/// batch at a time and deletes only what is older than its cutoff.
async fn logins_during_a_purge_commit(db: Db) {
    let fx = fixture(db).await;
    let now = t0();
    let cutoff = now - Duration::days(30);
    let old = events(now - Duration::days(60), 0, 10 * AUDIT_PURGE_BATCH as usize);
    append(&fx.store, &old).await;
    let engine = Arc::new(JitEngine::new(contract(WIKI), fx.store.clone()));
    let login = |i: usize| {
        let engine = Arc::clone(&engine);
        tokio::spawn(async move {
            let mail = format!("user{i}@example.org");
            let person = facts(
                &format!("user-{i}"),
                &[("mail", &[mail.as_str()]), ("groups", &["wiki-editors"])],
            );
            engine
                .login(&person, now + Duration::milliseconds(i as i64))
                .await
        })
    };

    let purging = {
        let store = fx.store.clone();
        tokio::spawn(async move { store.purge_audit(cutoff, now).await })
    };
    // Waves of four logins at once until the purge is done: some finish while it runs.
    let mut logins = 0;
    let mut during = 0;
    while logins < 8 || !purging.is_finished() {
        let wave: Vec<_> = (logins..logins + 4).map(login).collect();
        for task in wave {
            let done = task.await.unwrap().unwrap();
            assert_eq!(done.outcome, Outcome::Created);
            if !purging.is_finished() {
                during += 1;
            }
        }
        logins += 4;
    }
    assert!(during > 0, "no login finished while the purge ran");
    let purge = purging.await.unwrap().unwrap();
    assert_eq!(purge.events, old.len() as u64);
    assert!(purge.batches >= 10, "{purge:?}");

    let log = fx.store.audit_log(100_000).await.unwrap();
    assert_eq!(log.len(), logins + 1, "{log:#?}");
    assert_eq!(
        log.iter().filter(|e| e.kind == AuditKind::Created).count(),
        logins
    );
    assert_eq!(fx.store.accounts().await.unwrap().len(), logins);
    the_purge_event(&log, cutoff, old.len() as u64, now);
}

/// No batch reads the log from end to end: on SQLite each is a range of the rowid, on
/// PostgreSQL a range of the primary key or the partial index of the unordered IDs.
async fn each_batch_is_found_by_an_index(db: Db) {
    let fx = fixture(db).await;
    let plans = fx.store.explain_audit_purge().await.unwrap();
    let on_the_log: Vec<&String> = plans.iter().filter(|l| l.contains("sp_audit")).collect();
    assert!(!on_the_log.is_empty(), "{plans:#?}");
    match db {
        Db::Sqlite => {
            for line in &on_the_log {
                assert!(line.contains("USING INTEGER PRIMARY KEY"), "{plans:#?}");
            }
        }
        Db::Postgres => {
            assert!(!plans.iter().any(|l| l.contains("Seq Scan")), "{plans:#?}");
            let text = plans.join("\n");
            assert!(text.contains("sp_audit_pkey"), "{text}");
            assert!(text.contains("sp_audit_unordered_at"), "{text}");
        }
    }
}

/// Events logged before `AuditEvent::id_at` have random (version 4) IDs, anywhere in
/// PostgreSQL's key: they are purged all the same, by their time.
async fn events_with_random_ids_from_an_older_version_are_purged_too(db: Db) {
    let (_dir, url, pool) = crate::support::migrated_to(db, 20261206000030).await;
    let old = [
        "f0000000-0000-4000-8000-000000000001",
        "80000000-0000-4000-8000-000000000002",
        "00000000-0000-4000-8000-000000000003",
    ];
    let plan = serde_json::to_string(&ProvisioningPlan {
        identity: None,
        action: PlanAction::Unchanged {
            account_id: Uuid::nil(),
        },
    })
    .unwrap();
    for (i, id) in old.iter().enumerate() {
        let at = t0() + Duration::minutes(i as i64);
        sqlx::query(
            "INSERT INTO sp_audit (id, operation_id, at, kind, account_id, idp_entity_id, \
             identity_key, session_index, plan, actor) VALUES ($1, $1, $2, 'jit.unchanged', \
             NULL, $3, NULL, NULL, $4, NULL)",
        )
        .bind(*id)
        .bind(i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap())
        .bind(IDP)
        .bind(&plan)
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;
    let database = latchkey_sp::store::Database::connect(&url).await.unwrap();
    let store = SqlAccountStore::new(database);
    let now = t0() + Duration::days(60);
    let newer = events(now - Duration::days(1), 10, 2);
    append(&store, &newer).await;

    let cutoff = now - Duration::days(30);
    let purge = store.purge_audit(cutoff, now).await.unwrap();
    assert_eq!(purge.events, 3);
    let log = store.audit_log(100).await.unwrap();
    assert_eq!(operation_ids(&log[..2]), operation_ids(&newer));
    assert_eq!(log.len(), 3);
    the_purge_event(&log, cutoff, 3, now);
}

crate::on_both_backends!(
    events_older_than_the_cutoff_go_and_the_purge_is_recorded,
    a_purge_larger_than_a_batch_takes_several,
    retention_zero_deletes_nothing,
    logins_during_a_purge_commit,
    each_batch_is_found_by_an_index,
    events_with_random_ids_from_an_older_version_are_purged_too,
);
