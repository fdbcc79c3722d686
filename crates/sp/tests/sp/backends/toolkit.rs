//! The ACS with the SQL replay cache on the accounts' own database, on each backend.

use std::sync::Arc;

use latchkey_sp::acs;
use latchkey_sp::binding::BrowserBinding;
use latchkey_sp::jit::{Contract, JitEngine, Outcome};
use latchkey_sp::replay::{ReplayCache, SqlReplayCache};
use latchkey_sp::settings::UnchangedLogins;
use latchkey_sp::store::SqlAccountStore;
use latchkey_sp::{AcsForm, ServiceProvider};

use crate::support::{Db, Fixture, fixture};

use crate::support::toolkit::*;

/// The SQL replay cache on the accounts' own database: the ACS records the assertion in the
/// login's transaction. A replay is still refused and audited, and a login JIT refuses still
/// uses its assertion up (its audit event and the replay entry commit together).
async fn sql_replay_cache_joins_the_login_transaction(backend: Db) {
    let fx = fixture(backend).await;
    let db = fx.store.database().clone();
    let open = ServiceProvider::new(
        &config("allow_idp_initiated = true"),
        None,
        trust(&[&old_key().cert]),
    )
    .unwrap();
    let replay = SqlReplayCache::new(db.clone());
    let engine = JitEngine::new(Contract::from_toml(CONTRACT).unwrap(), fx.store.clone());
    assert!(
        replay
            .database()
            .unwrap()
            .same_as(engine.store().database())
    );

    let first = form(&response(None, "_joined", &old_key().key), None);
    let done = acs::run(
        &open,
        &first,
        &BrowserBinding::none(),
        &replay,
        &engine,
        NOW,
    )
    .await
    .unwrap();
    assert_eq!(done.provisioned.outcome, Outcome::Created);
    assert_eq!(replay.count_entries().await.unwrap(), 1);
    let failure = acs::run(
        &open,
        &first,
        &BrowserBinding::none(),
        &replay,
        &engine,
        NOW,
    )
    .await
    .unwrap_err();
    assert_eq!(failure.code().as_str(), "ASSERTION_REPLAYED");
    assert_eq!(engine.store().accounts().await.unwrap().len(), 1);
    // (Events of one millisecond come back in no set order.)
    let mut kinds: Vec<&str> = engine
        .store()
        .audit_log(10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.kind.as_str())
        .collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["acs.rejected", "jit.created"]);

    // A returning login with a fresh assertion is fine; eight concurrent presentations of
    // one assertion sign in once.
    let again = form(&response(None, "_joined-2", &old_key().key), None);
    let mut tasks = Vec::new();
    let shared = std::sync::Arc::new((open, replay, engine));
    for _ in 0..8 {
        let (shared, again) = (shared.clone(), again.clone());
        tasks.push(tokio::spawn(async move {
            let (sp, replay, engine) = &*shared;
            acs::run(sp, &again, &BrowserBinding::none(), replay, engine, NOW).await
        }));
    }
    let mut signed_in = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(done) => {
                assert_eq!(done.provisioned.outcome, Outcome::Unchanged);
                signed_in += 1;
            }
            Err(failure) => assert_eq!(failure.code().as_str(), "ASSERTION_REPLAYED"),
        }
    }
    assert_eq!(signed_in, 1);
    let (open, replay, _) = &*shared;

    // A contract that refuses everyone: the refused login's assertion is used up too.
    let strict = JitEngine::new(
        Contract::from_toml(
            "identity = { source = \"persistent_name_id\" }\ndeny_when_no_role = true\n",
        )
        .unwrap(),
        fx.store.clone(),
    );
    let refused = form(&response(None, "_refused", &old_key().key), None);
    let failure = acs::run(
        open,
        &refused,
        &BrowserBinding::none(),
        replay,
        &strict,
        NOW,
    )
    .await
    .unwrap_err();
    assert_eq!(
        failure.code().as_str(),
        "NO_MATCHING_ROLE",
        "{:?}",
        failure.error
    );
    let failure = acs::run(
        open,
        &refused,
        &BrowserBinding::none(),
        replay,
        &strict,
        NOW,
    )
    .await
    .unwrap_err();
    assert_eq!(failure.code().as_str(), "ASSERTION_REPLAYED");
    assert_eq!(replay.count_entries().await.unwrap(), 3);
}

/// A burst of logins, some replaying one assertion, on the accounts' own database (on SQLite
/// they share commits through the login writer): each fresh login is kept with its audit
/// event, one use of the replayed assertion signs in and every other is refused, leaving
/// nothing but its `acs.rejected` event.
/// The SP, its replay cache and its JIT engine on the fixture's database, shared by the
/// tasks of [`posted_at_once`].
type Acs = (ServiceProvider, SqlReplayCache, JitEngine<SqlAccountStore>);

/// Posts every form to the ACS at once, a task each, from its browser; the results come back
/// in the forms' order, with the ACS's parts for the checks after.
async fn posted_at_once(
    fx: &Fixture,
    sp: ServiceProvider,
    forms: Vec<(AcsForm, BrowserBinding)>,
) -> (Arc<Acs>, Vec<Result<acs::SignedIn, acs::AcsFailure>>) {
    let replay = SqlReplayCache::new(fx.store.database().clone());
    let engine = JitEngine::new(Contract::from_toml(CONTRACT).unwrap(), fx.store.clone());
    let shared = Arc::new((sp, replay, engine));
    let tasks: Vec<_> = forms
        .into_iter()
        .map(|(f, browser)| {
            let shared = Arc::clone(&shared);
            tokio::spawn(async move {
                let (sp, replay, engine) = &*shared;
                acs::run(sp, &f, &browser, replay, engine, NOW).await
            })
        })
        .collect();
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(task.await.unwrap());
    }
    (shared, results)
}

async fn a_burst_keeps_each_login_apart(backend: Db) {
    let fx = fixture(backend).await;
    let sp = ServiceProvider::new(
        &config("allow_idp_initiated = true"),
        None,
        trust(&[&old_key().cert]),
    )
    .unwrap();
    let same = form(&response(None, "_burst-same", &old_key().key), None);
    let mut forms = vec![(same, BrowserBinding::none()); 8];
    for i in 0..16 {
        let xml = response_for(
            &format!("p-burst-{i}"),
            None,
            &format!("_burst-{i}"),
            &old_key().key,
        );
        forms.push((form(&xml, None), BrowserBinding::none()));
    }
    let (shared, results) = posted_at_once(&fx, sp, forms).await;
    let (mut created, mut replayed) = (0, 0);
    for result in results {
        match result {
            Ok(done) => {
                assert_eq!(done.provisioned.outcome, Outcome::Created);
                created += 1;
            }
            Err(failure) => {
                assert_eq!(failure.code().as_str(), "ASSERTION_REPLAYED");
                replayed += 1;
            }
        }
    }
    assert_eq!((created, replayed), (17, 7));
    let (_, replay, engine) = &*shared;
    assert_eq!(engine.store().accounts().await.unwrap().len(), 17);
    assert_eq!(replay.count_entries().await.unwrap(), 17);
    let log = engine.store().audit_log(100).await.unwrap();
    let count = |kind: &str| log.iter().filter(|e| e.kind.as_str() == kind).count();
    assert_eq!((count("jit.created"), count("acs.rejected")), (17, 7));
    assert_eq!(log.len(), 24);
}

/// SP-initiated logins with their requests in the database: of sixteen copies of one Response
/// posted at once with its RelayState, all find the request and are verified, exactly one
/// uses it up (in its login's transaction) and signs in, and the fifteen others find it gone
/// and are refused as answers to a request no longer held, having written nothing but their
/// `acs.rejected` events; a second login started beside it is answered once too, one account
/// each is provisioned, and nothing is left pending.
async fn an_answer_posted_in_a_burst_takes_its_request_once(backend: Db) {
    let fx = fixture(backend).await;
    let db = fx.store.database().clone();
    let sp =
        ServiceProvider::with_database(&config(""), None, trust(&[&old_key().cert]), db).unwrap();
    let started = sp.start_login(None, NOW).await.unwrap();
    let other = sp.start_login(None, NOW).await.unwrap();
    let answer = response(Some(&started.request.request_id), "_taken", &old_key().key);
    let mut forms = vec![
        (
            form(&answer, Some(&started.relay_state)),
            started.browser.clone()
        );
        16
    ];
    let xml = response_for(
        "p-other",
        Some(&other.request.request_id),
        "_other",
        &old_key().key,
    );
    forms.push((form(&xml, Some(&other.relay_state)), other.browser.clone()));
    let (shared, results) = posted_at_once(&fx, sp, forms).await;
    let (mut signed_in, mut refused) = (Vec::new(), 0);
    for result in results {
        match result {
            Ok(done) => {
                assert_eq!(done.provisioned.outcome, Outcome::Created);
                signed_in.push(done.login.assertion_id)
            }
            Err(failure) => {
                assert_eq!(failure.code().as_str(), "IN_RESPONSE_TO_MISMATCH");
                refused += 1;
            }
        }
    }
    signed_in.sort();
    assert_eq!(
        (signed_in, refused),
        (vec!["_other".to_owned(), "_taken".to_owned()], 15)
    );
    let (sp, replay, engine) = &*shared;
    assert_eq!(sp.pending().count().await.unwrap(), 0);
    assert_eq!(engine.store().accounts().await.unwrap().len(), 2);
    assert_eq!(replay.count_entries().await.unwrap(), 2);
    let log = engine.store().audit_log(100).await.unwrap();
    let count = |kind: &str| log.iter().filter(|e| e.kind.as_str() == kind).count();
    assert_eq!((count("jit.created"), count("acs.rejected")), (2, 15));
}

/// A successful SP-initiated login with its request in the login's database commits once:
/// the request is read before verification and deleted in the login's own transaction (on
/// SQLite, one commit of the login writer; before, the take was a commit of its own). The
/// request is gone after, and a second post of the answer is refused as a second use.
async fn an_sp_initiated_login_commits_once(backend: Db) {
    let fx = fixture(backend).await;
    let db = fx.store.database().clone();
    let sp =
        ServiceProvider::with_database(&config(""), None, trust(&[&old_key().cert]), db).unwrap();
    let replay = SqlReplayCache::new(fx.store.database().clone());
    let engine = JitEngine::new(Contract::from_toml(CONTRACT).unwrap(), fx.store.clone());
    let stats = || fx.store.database().writer_stats();
    for (n, outcome) in [Outcome::Created, Outcome::Unchanged]
        .into_iter()
        .enumerate()
    {
        let login = sp.start_login(None, NOW).await.unwrap();
        let xml = response(
            Some(&login.request.request_id),
            &format!("_once-{n}"),
            &old_key().key,
        );
        let posted = form(&xml, Some(&login.relay_state));
        let before = stats();
        let done = acs::run(&sp, &posted, &login.browser, &replay, &engine, NOW)
            .await
            .unwrap();
        assert_eq!(done.provisioned.outcome, outcome);
        if let (Some(before), Some(after)) = (before, stats()) {
            assert_eq!(
                (after.commits - before.commits, after.logins - before.logins),
                (1, 1),
                "{before:?} -> {after:?}"
            );
        }
        assert_eq!(sp.pending().count().await.unwrap(), 0);
        let again = acs::run(&sp, &posted, &login.browser, &replay, &engine, NOW)
            .await
            .unwrap_err();
        assert_eq!(again.code().as_str(), "IN_RESPONSE_TO_MISMATCH");
    }
    assert_eq!(engine.store().accounts().await.unwrap().len(), 1);
}

/// A refused SP-initiated login still uses its request up when the request is read before
/// verification (the replay cache in the login's database): a Response that fails
/// verification (signed by a key the SP does not trust), and an answer that comes after the
/// request expired, each delete it; the valid answer posted after is refused as a second use,
/// and nothing is provisioned.
async fn a_refused_answer_uses_its_request_up(backend: Db) {
    let fx = fixture(backend).await;
    let db = fx.store.database().clone();
    let sp =
        ServiceProvider::with_database(&config(""), None, trust(&[&old_key().cert]), db).unwrap();
    let replay = SqlReplayCache::new(fx.store.database().clone());
    let engine = JitEngine::new(Contract::from_toml(CONTRACT).unwrap(), fx.store.clone());

    let login = sp.start_login(None, NOW).await.unwrap();
    let forged = response(Some(&login.request.request_id), "_forged", &new_key().key);
    let failure = acs::run(
        &sp,
        &form(&forged, Some(&login.relay_state)),
        &login.browser,
        &replay,
        &engine,
        NOW,
    )
    .await
    .unwrap_err();
    assert_ne!(failure.code().as_str(), "IN_RESPONSE_TO_MISMATCH");
    assert!(!failure.error.is_internal(), "{:?}", failure.error);
    assert_eq!(sp.pending().count().await.unwrap(), 0);
    let valid = response(Some(&login.request.request_id), "_valid", &old_key().key);
    let again = acs::run(
        &sp,
        &form(&valid, Some(&login.relay_state)),
        &login.browser,
        &replay,
        &engine,
        NOW,
    )
    .await
    .unwrap_err();
    assert_eq!(again.code().as_str(), "IN_RESPONSE_TO_MISMATCH");

    let login = sp.start_login(None, NOW).await.unwrap();
    let later = NOW + time::Duration::minutes(11);
    let late = response(Some(&login.request.request_id), "_late", &old_key().key);
    let failure = acs::run(
        &sp,
        &form(&late, Some(&login.relay_state)),
        &login.browser,
        &replay,
        &engine,
        later,
    )
    .await
    .unwrap_err();
    assert_eq!(failure.code().as_str(), "REQUEST_EXPIRED");
    assert_eq!(sp.pending().count().await.unwrap(), 0);
    assert!(engine.store().accounts().await.unwrap().is_empty());
    assert_eq!(replay.count_entries().await.unwrap(), 0);
}

/// The request's use and the login's writes are one transaction: a login that fails after
/// its request was deleted (here its audit row, refused by a trigger) keeps nothing, and its
/// request is still pending; the same answer posted again, once the store works, signs in.
async fn a_login_that_fails_leaves_its_request_pending(backend: Db) {
    let fx = fixture(backend).await;
    let db = fx.store.database().clone();
    let sp =
        ServiceProvider::with_database(&config(""), None, trust(&[&old_key().cert]), db.clone())
            .unwrap();
    let replay = SqlReplayCache::new(db.clone());
    let engine = JitEngine::new(Contract::from_toml(CONTRACT).unwrap(), fx.store.clone());
    let (create, drop_trigger): (&[&str], &[&str]) = match backend {
        Db::Sqlite => (
            &["CREATE TRIGGER fail_audit BEFORE INSERT ON sp_audit \
               BEGIN SELECT RAISE(ABORT, 'injected'); END"],
            &["DROP TRIGGER fail_audit"],
        ),
        Db::Postgres => (
            &[
                "CREATE FUNCTION fail_audit() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN RAISE EXCEPTION 'injected'; END $$",
                "CREATE TRIGGER fail_audit BEFORE INSERT ON sp_audit \
                 FOR EACH ROW EXECUTE FUNCTION fail_audit()",
            ],
            &["DROP TRIGGER fail_audit ON sp_audit"],
        ),
    };
    for sql in create {
        sqlx::query(sqlx::AssertSqlSafe(*sql))
            .execute(db.pool())
            .await
            .unwrap();
    }
    let login = sp.start_login(None, NOW).await.unwrap();
    let xml = response(Some(&login.request.request_id), "_failing", &old_key().key);
    let posted = form(&xml, Some(&login.relay_state));
    let failure = acs::run(&sp, &posted, &login.browser, &replay, &engine, NOW)
        .await
        .unwrap_err();
    assert_eq!(
        failure.code().as_str(),
        "STORE_FAILED",
        "{:?}",
        failure.error
    );
    assert_eq!(sp.pending().count().await.unwrap(), 1);
    assert!(engine.store().accounts().await.unwrap().is_empty());
    assert_eq!(replay.count_entries().await.unwrap(), 0);

    for sql in drop_trigger {
        sqlx::query(sqlx::AssertSqlSafe(*sql))
            .execute(db.pool())
            .await
            .unwrap();
    }
    let done = acs::run(&sp, &posted, &login.browser, &replay, &engine, NOW)
        .await
        .unwrap();
    assert_eq!(done.provisioned.outcome, Outcome::Created);
    assert_eq!(sp.pending().count().await.unwrap(), 0);
}

/// Anyone can start a login, so the SQL pending-request store holds its bound under a burst
/// from two nodes: of 40 logins started at once against room for 8, exactly 8 are stored and
/// the rest are refused (a count followed by an insert let every one of them see room).
async fn pending_requests_hold_their_bound_under_a_burst(backend: Db) {
    use latchkey_sp::Error;
    use latchkey_sp::login::{PendingRequest, PendingStore, SqlPendingRequests};
    use std::sync::Arc;
    let fx = fixture(backend).await;
    let db = fx.store.database().clone();
    let nodes = [
        Arc::new(PendingStore::Sql(SqlPendingRequests::new(db.clone(), 8))),
        Arc::new(PendingStore::Sql(SqlPendingRequests::new(db, 8))),
    ];
    let request = |expires_at| PendingRequest {
        request_id: "_burst".into(),
        return_to: None,
        expires_at,
        browser: None,
    };
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40 {
        let node = Arc::clone(&nodes[i % 2]);
        let req = request(NOW + time::Duration::minutes(5));
        tasks.spawn(async move { node.insert(req, None, NOW).await });
    }
    let (mut stored, mut refused) = (0, 0);
    while let Some(done) = tasks.join_next().await {
        match done.unwrap() {
            Ok(_) => stored += 1,
            Err(Error::TooManyPendingRequests(8)) => refused += 1,
            Err(other) => panic!("{other}"),
        }
    }
    assert_eq!((stored, refused), (8, 32));
    assert_eq!(nodes[0].count().await.unwrap(), 8);
    // Once they have expired there is room again (they are pruned by the next insert).
    let later = NOW + time::Duration::minutes(6);
    nodes[1]
        .insert(request(later + time::Duration::minutes(5)), None, later)
        .await
        .unwrap();
    assert_eq!(nodes[0].count().await.unwrap(), 1);
}

/// One client cannot use up every place: a burst of logins started from one network (an
/// IPv6 /64, its addresses rotating) on two nodes stores exactly `PENDING_PER_NETWORK` of
/// them, the rest refused as that client's (429), and another client still gets its place.
async fn pending_requests_are_bounded_per_client_network(backend: Db) {
    use latchkey_sp::Error;
    use latchkey_sp::login::{
        PENDING_PER_NETWORK, PendingRequest, PendingStore, SqlPendingRequests,
    };
    use std::sync::Arc;
    let fx = fixture(backend).await;
    let db = fx.store.database().clone();
    let nodes = [
        Arc::new(PendingStore::Sql(SqlPendingRequests::new(
            db.clone(),
            10_000,
        ))),
        Arc::new(PendingStore::Sql(SqlPendingRequests::new(db, 10_000))),
    ];
    let request = || PendingRequest {
        request_id: "_client".into(),
        return_to: None,
        expires_at: NOW + time::Duration::minutes(5),
        browser: None,
    };
    let over = 40;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..(PENDING_PER_NETWORK + over) {
        let node = Arc::clone(&nodes[i % 2]);
        let client = format!("2001:db8:7:7::{:x}", i + 1);
        tasks.spawn(async move { node.insert(request(), Some(&client), NOW).await });
    }
    let (mut stored, mut refused) = (0, 0);
    while let Some(done) = tasks.join_next().await {
        match done.unwrap() {
            Ok(_) => stored += 1,
            Err(e @ Error::TooManyPendingFromClient(_)) => {
                assert!(e.is_throttled() && !e.is_busy() && !e.is_internal());
                assert_eq!(e.code().as_str(), "TOO_MANY_PENDING_FROM_CLIENT");
                refused += 1;
            }
            Err(other) => panic!("{other}"),
        }
    }
    assert_eq!((stored, refused), (PENDING_PER_NETWORK, over));
    nodes[1]
        .insert(request(), Some("192.0.2.8"), NOW)
        .await
        .unwrap();
    assert_eq!(nodes[0].count().await.unwrap(), PENDING_PER_NETWORK + 1);
}

/// A client with a /48 rotating through its /64s stores no more than
/// `PENDING_PER_WIDE_NETWORK` in all (each /64 within its own bound), refused as that
/// client's; a neighbouring /48 and an IPv4 client still get their places.
async fn the_64s_of_one_48_share_a_looser_bound(backend: Db) {
    use latchkey_sp::Error;
    use latchkey_sp::login::{
        PENDING_PER_NETWORK, PENDING_PER_WIDE_NETWORK, PendingRequest, PendingStore,
        SqlPendingRequests,
    };
    let fx = fixture(backend).await;
    let store = PendingStore::Sql(SqlPendingRequests::new(fx.store.database().clone(), 10_000));
    let request = || PendingRequest {
        request_id: "_wide".into(),
        return_to: None,
        expires_at: NOW + time::Duration::minutes(5),
        browser: None,
    };
    let per_64 = PENDING_PER_NETWORK / 2;
    let (mut stored, mut refused) = (0, 0);
    for i in 0..(PENDING_PER_WIDE_NETWORK / per_64 + 2) {
        for j in 0..per_64 {
            let client = format!("2001:db8:5:{:x}::{:x}", i + 1, j + 1);
            match store.insert(request(), Some(&client), NOW).await {
                Ok(_) => stored += 1,
                // The bound reached is the /48's, and the refusal says so.
                Err(Error::TooManyPendingFromClient(PENDING_PER_WIDE_NETWORK)) => refused += 1,
                Err(other) => panic!("{other}"),
            }
        }
    }
    assert_eq!((stored, refused), (PENDING_PER_WIDE_NETWORK, 2 * per_64));
    // A /64 of another /48 reaching its own bound is refused with that bound.
    for j in 0..PENDING_PER_NETWORK {
        let client = format!("2001:db8:7:1::{:x}", j + 1);
        store.insert(request(), Some(&client), NOW).await.unwrap();
    }
    assert!(matches!(
        store
            .insert(request(), Some("2001:db8:7:1::ffff"), NOW)
            .await,
        Err(Error::TooManyPendingFromClient(PENDING_PER_NETWORK))
    ));
    store
        .insert(request(), Some("2001:db8:6:1::1"), NOW)
        .await
        .unwrap();
    store
        .insert(request(), Some("192.0.2.9"), NOW)
        .await
        .unwrap();
    assert_eq!(
        store.count().await.unwrap(),
        PENDING_PER_WIDE_NETWORK + PENDING_PER_NETWORK + 2
    );
}

/// A replayed assertion whose login would change the account (the contract changed since
/// its first use) changes nothing: on PostgreSQL the replay is found only with the audit
/// event, after the update, and the rollback takes the update back.
async fn a_replay_that_would_update_leaves_the_account_as_it_was(backend: Db) {
    let fx = fixture(backend).await;
    let sp = ServiceProvider::new(
        &config("allow_idp_initiated = true"),
        None,
        trust(&[&old_key().cert]),
    )
    .unwrap();
    let replay = SqlReplayCache::new(fx.store.database().clone());
    let member = JitEngine::new(Contract::from_toml(CONTRACT).unwrap(), fx.store.clone());
    let staff = JitEngine::new(
        Contract::from_toml(&CONTRACT.replace("\"member\"", "\"staff\"")).unwrap(),
        fx.store.clone(),
    );
    let used = form(&response(None, "_used-once", &old_key().key), None);
    let done = acs::run(&sp, &used, &BrowserBinding::none(), &replay, &member, NOW)
        .await
        .unwrap();
    assert_eq!(done.provisioned.outcome, Outcome::Created);
    let roles = |accounts: Vec<latchkey_sp::store::Account>| -> Vec<String> {
        accounts[0].roles.keys().cloned().collect()
    };
    assert_eq!(roles(fx.store.accounts().await.unwrap()), ["member"]);

    let failure = acs::run(&sp, &used, &BrowserBinding::none(), &replay, &staff, NOW)
        .await
        .unwrap_err();
    assert_eq!(failure.code().as_str(), "ASSERTION_REPLAYED");
    assert_eq!(roles(fx.store.accounts().await.unwrap()), ["member"]);
    let log = staff.store().audit_log(10).await.unwrap();
    assert!(
        log.iter().all(|e| e.kind.as_str() != "jit.updated"),
        "{log:?}"
    );

    // A fresh assertion under the new contract does update.
    let fresh = form(&response(None, "_fresh", &old_key().key), None);
    let done = acs::run(&sp, &fresh, &BrowserBinding::none(), &replay, &staff, NOW)
        .await
        .unwrap();
    assert_eq!(done.provisioned.outcome, Outcome::Updated);
    assert_eq!(roles(fx.store.accounts().await.unwrap()), ["staff"]);
}

/// Login CSRF: the attacker starts a login in their own browser, signs in at the IdP as
/// themselves and has the victim's browser post the Response. Posted with the pending
/// request's RelayState from a browser without the login cookie, or with another browser's,
/// it is refused (`BROWSER_MISMATCH`, audited with its detail) before its signature is even
/// checked, nothing is provisioned, and the request is used up; from the browser that started
/// it, it signs in. Two logins started in one browser share its binding and both complete.
/// `sp` keeps its pending requests in memory or in the database; it refuses unsolicited
/// Responses (the binding's premise). With `replay` a [`SqlReplayCache`] on the database of
/// `store` and of `sp`'s pending requests, the ACS reads the request before verification and
/// uses it up in the login's transaction; with a memory cache it takes it first.
pub(crate) async fn a_login_is_answered_only_from_the_browser_that_started_it<R: ReplayCache>(
    sp: ServiceProvider,
    store: SqlAccountStore,
    replay: R,
) {
    let engine = JitEngine::new(Contract::from_toml(CONTRACT).unwrap(), store);
    let victim = sp.start_login(None, NOW).await.unwrap().browser;
    let refused = |failure: &acs::AcsFailure| {
        assert_eq!(
            failure.code().as_str(),
            "BROWSER_MISMATCH",
            "{:?}",
            failure.error
        );
    };

    // Without the cookie, and with another browser's: refused, and the request is used up
    // (the right browser cannot post it after).
    for (n, posted_by) in [BrowserBinding::none(), victim.clone()]
        .into_iter()
        .enumerate()
    {
        let attacker = sp.start_login(None, NOW).await.unwrap();
        let xml = response(
            Some(&attacker.request.request_id),
            &format!("_csrf-{n}"),
            &old_key().key,
        );
        let posted = form(&xml, Some(&attacker.relay_state));
        let failure = acs::run(&sp, &posted, &posted_by, &replay, &engine, NOW)
            .await
            .unwrap_err();
        refused(&failure);
        assert!(engine.store().accounts().await.unwrap().is_empty());
        let log = engine.store().audit_log(100).await.unwrap();
        let event = log
            .iter()
            .find(|e| e.operation_id == failure.operation_id)
            .unwrap();
        assert_eq!(event.kind.as_str(), "acs.rejected");
        match &event.plan.action {
            latchkey_sp::jit::PlanAction::Refuse(r) => {
                assert!(r.detail.starts_with("BROWSER_MISMATCH: "), "{r}")
            }
            other => panic!("{other:?}"),
        }
        let again = acs::run(&sp, &posted, &attacker.browser, &replay, &engine, NOW)
            .await
            .unwrap_err();
        assert_eq!(again.code().as_str(), "IN_RESPONSE_TO_MISMATCH");
    }

    // Checked before the signature: a Response no trusted key signed, posted with a pending
    // RelayState from another browser, costs no verification.
    let attacker = sp.start_login(None, NOW).await.unwrap();
    let forged = response(
        Some(&attacker.request.request_id),
        "_forged",
        &new_key().key,
    );
    let failure = acs::run(
        &sp,
        &form(&forged, Some(&attacker.relay_state)),
        &victim,
        &replay,
        &engine,
        NOW,
    )
    .await
    .unwrap_err();
    refused(&failure);

    // Two logins started in one browser (two tabs): the second reuses the first's binding,
    // and both complete, in either order.
    let first = sp.start_login(None, NOW).await.unwrap();
    let second = sp
        .start_login_from(None, &first.browser, None, NOW)
        .await
        .unwrap();
    assert_eq!(second.browser, first.browser);
    assert_eq!(second.set_cookie, first.set_cookie);
    assert_ne!(second.browser, victim);
    for (login, id) in [(&second, "_tab-2"), (&first, "_tab-1")] {
        let xml = response(Some(&login.request.request_id), id, &old_key().key);
        let done = acs::run(
            &sp,
            &form(&xml, Some(&login.relay_state)),
            &first.browser,
            &replay,
            &engine,
            NOW,
        )
        .await
        .unwrap();
        assert_eq!(done.login.assertion_id, id);
    }
    assert_eq!(engine.store().accounts().await.unwrap().len(), 1);
}

/// [`a_login_is_answered_only_from_the_browser_that_started_it`] with the pending requests
/// in the SP database.
async fn the_sql_pending_store_binds_a_login_to_its_browser(backend: Db) {
    let fx = fixture(backend).await;
    let db = fx.store.database().clone();
    let sp =
        ServiceProvider::with_database(&config(""), None, trust(&[&old_key().cert]), db).unwrap();
    a_login_is_answered_only_from_the_browser_that_started_it(
        sp,
        fx.store.clone(),
        latchkey_sp::replay::MemoryReplayCache::new(100),
    )
    .await;
    // The replay cache on the same database: the request is used up with the login.
    let fx = fixture(backend).await;
    let db = fx.store.database().clone();
    let sp =
        ServiceProvider::with_database(&config(""), None, trust(&[&old_key().cert]), db).unwrap();
    let replay = SqlReplayCache::new(fx.store.database().clone());
    a_login_is_answered_only_from_the_browser_that_started_it(sp, fx.store.clone(), replay).await;
}

/// A login started before logins were bound to browsers (a row of the pending store from
/// before migration `20261207000010`, with no binding) is refused from any browser, and used
/// up.
async fn a_login_started_before_the_binding_is_refused(backend: Db) {
    let (_dir, url, pool) = crate::support::migrated_to(backend, 20261206000050).await;
    let expires =
        i64::try_from((NOW + time::Duration::minutes(5)).unix_timestamp_nanos() / 1_000_000)
            .unwrap();
    sqlx::query(
        "INSERT INTO sp_pending_requests (relay_state, request_id, return_to, expires_at, \
         client) VALUES ('rs-before', '_req-before', '/back', $1, '192.0.2.0/24')",
    )
    .bind(expires)
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let db = latchkey_sp::store::Database::connect(&url).await.unwrap();
    let sp =
        ServiceProvider::with_database(&config(""), None, trust(&[&old_key().cert]), db.clone())
            .unwrap();
    // Any browser: one that holds a binding of this SP's.
    let browser = sp.start_login(None, NOW).await.unwrap().browser;
    let err = sp
        .verify_response(
            &form(
                &response(Some("_req-before"), "_before", &old_key().key),
                Some("rs-before"),
            ),
            &browser,
            NOW,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            latchkey_sp::Error::BrowserMismatch(latchkey_sp::BrowserMismatch::Unbound)
        ),
        "{err:?}"
    );
    assert_eq!(err.code().as_str(), "BROWSER_MISMATCH");
    assert_eq!(sp.pending().count().await.unwrap(), 1);
}

/// `[audit] unchanged_logins = "log_only"`: a returning login that changes nothing writes its
/// replay entry (and takes back its pending request) and no event, yet a replay of it is
/// refused and audited as before, a burst of one assertion signs in once, and creates are
/// still recorded. The default records each one.
async fn log_only_unchanged_logins_write_only_the_replay_entry(backend: Db) {
    let fx = fixture(backend).await;
    let db = fx.store.database().clone();
    let sp = ServiceProvider::with_database(
        &config("allow_idp_initiated = true"),
        None,
        trust(&[&old_key().cert]),
        db.clone(),
    )
    .unwrap();
    let replay = SqlReplayCache::new(db.clone());
    let engine = JitEngine::new(Contract::from_toml(CONTRACT).unwrap(), fx.store.clone())
        .unchanged_logins(UnchangedLogins::LogOnly);
    let kinds = || async {
        let mut kinds: Vec<&str> = fx
            .store
            .audit_log(100)
            .await
            .unwrap()
            .iter()
            .map(|e| e.kind.as_str())
            .collect();
        kinds.sort_unstable();
        kinds
    };
    let run = |posted: AcsForm, browser: BrowserBinding| {
        let (sp, replay, engine) = (&sp, &replay, &engine);
        async move { acs::run(sp, &posted, &browser, replay, engine, NOW).await }
    };

    let first = form(&response(None, "_lo-1", &old_key().key), None);
    let done = run(first, BrowserBinding::none()).await.unwrap();
    assert_eq!(done.provisioned.outcome, Outcome::Created);
    assert_eq!(kinds().await, ["jit.created"]);

    // Unsolicited, then SP-initiated: each leaves a replay entry and no event.
    let again = form(&response(None, "_lo-2", &old_key().key), None);
    let done = run(again.clone(), BrowserBinding::none()).await.unwrap();
    assert_eq!(done.provisioned.outcome, Outcome::Unchanged);
    let login = sp.start_login(None, NOW).await.unwrap();
    let answer = form(
        &response(Some(&login.request.request_id), "_lo-3", &old_key().key),
        Some(&login.relay_state),
    );
    let stats = || fx.store.database().writer_stats();
    let before = stats();
    let done = run(answer.clone(), login.browser.clone()).await.unwrap();
    assert_eq!(done.provisioned.outcome, Outcome::Unchanged);
    if let (Some(before), Some(after)) = (before, stats()) {
        assert_eq!(after.commits - before.commits, 1, "{before:?} -> {after:?}");
    }
    assert_eq!(sp.pending().count().await.unwrap(), 0);
    assert_eq!(replay.count_entries().await.unwrap(), 3);
    assert_eq!(kinds().await, ["jit.created"]);

    // Their replays are refused (and those refusals recorded).
    let failure = run(again, BrowserBinding::none()).await.unwrap_err();
    assert_eq!(failure.code().as_str(), "ASSERTION_REPLAYED");
    let failure = run(answer, login.browser).await.unwrap_err();
    assert_eq!(failure.code().as_str(), "IN_RESPONSE_TO_MISMATCH");
    assert_eq!(
        kinds().await,
        ["acs.rejected", "acs.rejected", "jit.created"]
    );

    // Eight presentations of one assertion at once sign in once.
    let burst = form(&response(None, "_lo-burst", &old_key().key), None);
    let shared = Arc::new((sp, replay, engine));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (shared, burst) = (shared.clone(), burst.clone());
        tasks.push(tokio::spawn(async move {
            let (sp, replay, engine) = &*shared;
            acs::run(sp, &burst, &BrowserBinding::none(), replay, engine, NOW).await
        }));
    }
    let mut signed_in = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(done) => {
                assert_eq!(done.provisioned.outcome, Outcome::Unchanged);
                signed_in += 1;
            }
            Err(failure) => assert_eq!(failure.code().as_str(), "ASSERTION_REPLAYED"),
        }
    }
    assert_eq!(signed_in, 1);
    assert_eq!(
        kinds()
            .await
            .iter()
            .filter(|k| **k == "jit.unchanged")
            .count(),
        0
    );

    // The default records an unchanged login.
    let (sp, replay, _) = &*shared;
    let recording = JitEngine::new(Contract::from_toml(CONTRACT).unwrap(), fx.store.clone());
    let posted = form(&response(None, "_lo-recorded", &old_key().key), None);
    let done = acs::run(
        sp,
        &posted,
        &BrowserBinding::none(),
        replay,
        &recording,
        NOW,
    )
    .await
    .unwrap();
    assert_eq!(done.provisioned.outcome, Outcome::Unchanged);
    assert_eq!(
        kinds()
            .await
            .iter()
            .filter(|k| **k == "jit.unchanged")
            .count(),
        1
    );
}

/// An assertion whose ID an entry recorded before the replay cache was keyed by the
/// IssueInstant holds (`20261207000200_replay_by_issue`: such entries have no instant) is
/// refused as a replay by the ACS too, in the login's own path on the accounts' database
/// (on SQLite the login writer's), and nothing of it is kept. An assertion with another ID
/// signs in.
async fn the_acs_refuses_an_assertion_an_entry_from_before_the_instant_key_holds(db: Db) {
    let (_dir, url, pool) = crate::support::migrated_to(db, 20261207000100).await;
    let until = NOW + time::Duration::minutes(5);
    sqlx::query("INSERT INTO sp_replay_cache (assertion_id, not_on_or_after) VALUES ($1, $2)")
        .bind("_before")
        .bind(i64::try_from(until.unix_timestamp_nanos() / 1_000_000).unwrap())
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let database = latchkey_sp::store::Database::connect(&url).await.unwrap();
    let open = ServiceProvider::new(
        &config("allow_idp_initiated = true"),
        None,
        trust(&[&old_key().cert]),
    )
    .unwrap();
    let replay = SqlReplayCache::new(database.clone());
    let engine = JitEngine::new(
        Contract::from_toml(CONTRACT).unwrap(),
        SqlAccountStore::new(database),
    );
    let before = form(&response(None, "_before", &old_key().key), None);
    let failure = acs::run(
        &open,
        &before,
        &BrowserBinding::none(),
        &replay,
        &engine,
        NOW,
    )
    .await
    .unwrap_err();
    assert_eq!(failure.code().as_str(), "ASSERTION_REPLAYED");
    assert!(engine.store().accounts().await.unwrap().is_empty());
    assert_eq!(replay.count_entries().await.unwrap(), 1);
    let after = form(&response(None, "_after", &old_key().key), None);
    let done = acs::run(
        &open,
        &after,
        &BrowserBinding::none(),
        &replay,
        &engine,
        NOW,
    )
    .await
    .unwrap();
    assert_eq!(done.provisioned.outcome, Outcome::Created);
    assert_eq!(replay.count_entries().await.unwrap(), 2);
}

crate::on_both_backends!(
    the_acs_refuses_an_assertion_an_entry_from_before_the_instant_key_holds,
    log_only_unchanged_logins_write_only_the_replay_entry,
    the_sql_pending_store_binds_a_login_to_its_browser,
    a_login_started_before_the_binding_is_refused,
    a_replay_that_would_update_leaves_the_account_as_it_was,
    sql_replay_cache_joins_the_login_transaction,
    a_burst_keeps_each_login_apart,
    an_answer_posted_in_a_burst_takes_its_request_once,
    an_sp_initiated_login_commits_once,
    a_refused_answer_uses_its_request_up,
    a_login_that_fails_leaves_its_request_pending,
    pending_requests_hold_their_bound_under_a_burst,
    pending_requests_are_bounded_per_client_network,
    the_64s_of_one_48_share_a_looser_bound,
    every_count_a_login_start_takes_reads_an_index,
);

/// Each count a login start takes (its network's, its /48's, all of them) is read off an
/// index, also on PostgreSQL, where the /48's range is compared in bytes (`COLLATE "C"`):
/// with the table full under a flood, a count that read every row made every start,
/// serialized under one lock, read all of them.
async fn every_count_a_login_start_takes_reads_an_index(backend: Db) {
    use latchkey_sp::login::SqlPendingRequests;
    let fx = fixture(backend).await;
    let db = fx.store.database().clone();
    let pool = db.pool();
    // 5,000 pending logins from 500 /48s, ten /64s each, as a flood leaves them.
    sqlx::query(
        "WITH RECURSIVE numbers(n) AS \
         (SELECT 1 UNION ALL SELECT n + 1 FROM numbers WHERE n < 5000) \
         INSERT INTO sp_pending_requests (relay_state, request_id, return_to, expires_at, client) \
         SELECT 'flood' || n, '_flood', NULL, 9000000000000, \
         '2001:db8:' || (n % 500) || ':' || (n / 500) || '::/64' FROM numbers",
    )
    .execute(pool)
    .await
    .unwrap();
    sqlx::query("ANALYZE").execute(pool).await.unwrap();
    if backend == Db::Postgres {
        // As autovacuum leaves the table between bursts: every page all-visible (a vacuum
        // that ran while another connection held a snapshot marks none, so it goes again).
        for _ in 0..50 {
            sqlx::query("VACUUM sp_pending_requests")
                .execute(pool)
                .await
                .unwrap();
            let (pages, visible): (i32, i32) = sqlx::query_as(
                "SELECT relpages, relallvisible FROM pg_class \
                 WHERE relname = 'sp_pending_requests'",
            )
            .fetch_one(pool)
            .await
            .unwrap();
            if pages == visible {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    let pending = SqlPendingRequests::new(db.clone(), 10_000);
    for client in ["2001:db8:7:1::9", "192.0.2.7"] {
        let plan = pending.explain_insert(client).await.unwrap();
        let plan = plan.join("\n");
        // The total may read every row (a count of all of them, bounded by the capacity);
        // the client's and its /48's must each search the client index for their range.
        for line in plan.lines() {
            let filters_clients =
                line.trim_start().starts_with("Filter:") && line.contains("client");
            let scans_the_table =
                line.contains("SCAN sp_pending_requests") && !line.contains("INDEX");
            assert!(
                !filters_clients && !scans_the_table,
                "{client}: a count of clients reads rows it does not want:\n{plan}"
            );
        }
        if backend == Db::Sqlite {
            let search =
                "SEARCH sp_pending_requests USING COVERING INDEX sp_pending_requests_client";
            assert!(plan.contains(&format!("{search} (client=?)")), "{plan}");
            if client.contains(':') {
                assert!(
                    plan.contains(&format!("{search} (client>? AND client<?)")),
                    "{plan}"
                );
            }
        }
        let index = match backend {
            Db::Postgres => "sp_pending_requests_client_c",
            Db::Sqlite => "sp_pending_requests_client",
        };
        assert!(plan.contains(index), "{client}: {index} unused:\n{plan}");
    }
}
