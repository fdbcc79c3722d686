//! Second factors in the store: TOTP enrolment, window, skew, replay (also under a burst)
//! and throttling on an injected clock; recovery codes once each; the MFA policy; session
//! methods and step-up.

use latchkey_idp::ManualClock;
use latchkey_idp::apps::Application;
use latchkey_idp::apps::NewApplication;
use latchkey_idp::audit::AuditFilter;
use latchkey_idp::directory::User;
use latchkey_idp::keys::{Kek, KekSource};
use latchkey_idp::mfa::policy::{AppMfa, MfaDecision, MfaFacts, MfaPolicy, Reason, Target};
use latchkey_idp::mfa::recovery::{RecoveryCheck, RecoveryCodes};
use latchkey_idp::mfa::totp::{Enrolment, Totp, TotpCheck};
use latchkey_idp::mfa::{AuthMethod, FactorKind, Factors, Methods, MfaError};
use latchkey_idp::session::{Keep, SessionApp, Sessions};
use latchkey_idp::sso::grant;
use latchkey_idp::{Actor, Store};
use latchkey_saml::authn_context::MfaClass;
use time::{Duration, macros::datetime};
use totp_rs::{Algorithm, Secret, TOTP};

use super::{admin, group, join, user};
use crate::on_both_backends;
use crate::support::TestStore;

on_both_backends!(
    totp_enrolment_window_skew_and_replay,
    totp_same_code_burst_is_accepted_once,
    totp_a_pending_enrolment_is_shown_again_until_it_expires,
    totp_guesses_are_throttled_and_a_success_resets,
    totp_secret_is_sealed_and_bound_to_its_row,
    recovery_codes_work_once_and_regenerate_replaces_all,
    recovery_codes_go_with_the_last_factor,
    policy_global_group_app_and_user,
    session_steps_up_under_a_new_token_and_keeps_its_index,
    admin_list_and_reset_never_show_secrets,
    a_totp_step_checked_for_a_reset_is_used_only_with_the_link,
    removing_a_factor_ends_sessions_as_who_removed_it_says,
    a_rule_change_audits_the_value_it_replaced,
);

const T0: time::OffsetDateTime = datetime!(2026-12-05 12:00:00 UTC);
const ADDR: &str = "192.0.2.10";

fn kek() -> Kek {
    Kek::from_base64(&Kek::generate_base64(), KekSource::Env).unwrap()
}

fn clocked(t: &TestStore) -> (Store, ManualClock) {
    let clock = ManualClock::new(T0);
    (t.store.clone().with_clock(clock.clone()), clock)
}

/// The code an authenticator app shows at `at`, computed from the base32 secret the user
/// was shown (not from anything stored).
fn code_at(enrolment: &Enrolment, at: time::OffsetDateTime) -> String {
    let secret = Secret::Encoded(enrolment.secret_base32.to_string())
        .to_bytes()
        .unwrap();
    TOTP::new_unchecked(Algorithm::SHA1, 6, 0, 30, secret, None, String::new())
        .generate(at.unix_timestamp() as u64)
}

async fn enrolled(s: &Store, kek: &Kek, who: &User, clock: &ManualClock) -> Enrolment {
    let totp = Totp::new(s, kek);
    let e = totp.begin(who, "phone", "Latchkey test").await.unwrap();
    let code = code_at(&e, clock_now(clock));
    let done = totp
        .confirm(&Actor::user(who.id), who, &e.factor_id, &code, ADDR)
        .await
        .unwrap();
    assert!(matches!(done, TotpCheck::Accepted { .. }), "{done:?}");
    e
}

fn clock_now(clock: &ManualClock) -> time::OffsetDateTime {
    use latchkey_idp::Clock;
    clock.now()
}

async fn totp_enrolment_window_skew_and_replay(t: TestStore) {
    let (s, clock) = clocked(&t);
    let kek = kek();
    let alice = user(&s, "alice").await;
    let totp = Totp::new(&s, &kek);
    let factors = Factors::new(&s);

    let e = totp.begin(&alice, "phone", "Latchkey test").await.unwrap();
    assert!(e.uri.starts_with("otpauth://totp/"), "{}", e.uri.as_str());
    assert!(e.uri.contains("secret=") && e.uri.contains("alice"));
    assert!(e.qr_svg.contains("<svg"), "not an SVG");
    // Pending: not a factor, and codes are not accepted for sign-in.
    assert!(!factors.has_factor(&alice).await.unwrap());
    let now_code = code_at(&e, T0);
    assert_eq!(
        totp.verify(&alice, &now_code, ADDR).await.unwrap(),
        TotpCheck::Wrong
    );
    // A wrong code leaves it pending; the right one confirms it.
    let wrong = if now_code == "000000" {
        "111111"
    } else {
        "000000"
    };
    assert_eq!(
        totp.confirm(&Actor::user(alice.id), &alice, &e.factor_id, wrong, ADDR)
            .await
            .unwrap(),
        TotpCheck::Wrong
    );
    assert!(matches!(
        totp.confirm(
            &Actor::user(alice.id),
            &alice,
            &e.factor_id,
            &now_code,
            ADDR
        )
        .await
        .unwrap(),
        TotpCheck::Accepted { .. }
    ));
    assert!(factors.has_factor(&alice).await.unwrap());
    // Confirming used up this step: the same code again is a replay.
    assert_eq!(
        totp.verify(&alice, &now_code, ADDR).await.unwrap(),
        TotpCheck::Replayed
    );
    // Confirming twice is refused.
    assert!(matches!(
        totp.confirm(
            &Actor::user(alice.id),
            &alice,
            &e.factor_id,
            &now_code,
            ADDR
        )
        .await,
        Err(MfaError::NoPendingEnrolment(_))
    ));

    // Skew: one step late or early is accepted, two is not.
    clock.advance(Duration::seconds(60));
    let late = code_at(&e, T0 + Duration::seconds(30)); // the app one step behind
    assert!(matches!(
        totp.verify(&alice, &late, ADDR).await.unwrap(),
        TotpCheck::Accepted { .. }
    ));
    clock.advance(Duration::seconds(60));
    let early = code_at(&e, T0 + Duration::seconds(150)); // one step ahead
    assert!(matches!(
        totp.verify(&alice, &early, ADDR).await.unwrap(),
        TotpCheck::Accepted { .. }
    ));
    // After the step T0+150 was used, the current step (T0+120) is older: refused as a replay.
    let current = code_at(&e, T0 + Duration::seconds(120));
    assert_eq!(
        totp.verify(&alice, &current, ADDR).await.unwrap(),
        TotpCheck::Replayed
    );
    clock.advance(Duration::seconds(120));
    let stale = code_at(&e, T0 + Duration::seconds(180)); // two steps behind now (T0+240)
    let now = code_at(&e, T0 + Duration::seconds(240));
    if stale != now {
        assert_eq!(
            totp.verify(&alice, &stale, ADDR).await.unwrap(),
            TotpCheck::Wrong
        );
    }
    // Malformed input is a typed error, never a panic, never a slot.
    for bad in ["12345", "12a456", "", "1234567", "１２３４５６"] {
        assert!(
            matches!(
                totp.verify(&alice, bad, ADDR).await,
                Err(MfaError::MalformedCode(_))
            ),
            "{bad:?}"
        );
    }
    // Enrolment was audited; the factor's last use is recorded.
    let events = s
        .audit()
        .list(&AuditFilter {
            action: Some("mfa.totp_enrol".into()),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert!(
        !events[0]
            .after
            .as_ref()
            .unwrap()
            .to_string()
            .contains(e.secret_base32.as_str())
    );
    let listed = factors.list(&alice).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].last_used_at, Some(T0 + Duration::seconds(120)));
}

async fn totp_same_code_burst_is_accepted_once(t: TestStore) {
    let (s, clock) = clocked(&t);
    let kek = std::sync::Arc::new(kek());
    let bob = user(&s, "bob").await;
    let e = enrolled(&s, &kek, &bob, &clock).await;
    clock.advance(Duration::seconds(30));
    let code = code_at(&e, T0 + Duration::seconds(30));
    let mut tasks = Vec::new();
    // Four: under the user's five free slots, so each submission is checked (a larger
    // burst is also cut short by the throttle).
    for i in 0..4 {
        let (s, kek, bob, code) = (s.clone(), kek.clone(), bob.clone(), code.clone());
        tasks.push(tokio::spawn(async move {
            Totp::new(&s, &kek)
                .verify(&bob, &code, &format!("198.51.100.{i}"))
                .await
                .unwrap()
        }));
    }
    let mut accepted = 0;
    for task in tasks {
        match task.await.unwrap() {
            TotpCheck::Accepted { .. } => accepted += 1,
            TotpCheck::Replayed => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(accepted, 1, "one code, one step, one success");
}

/// Showing the enrolment again (what the page's GET asks) gives the live pending enrolment,
/// the same secret, also to a burst of showings at once on an empty start (one is begun, the
/// rest wait for it); once expired, a new one; `begin` itself still starts over.
async fn totp_a_pending_enrolment_is_shown_again_until_it_expires(t: TestStore) {
    let (s, clock) = clocked(&t);
    let kek = std::sync::Arc::new(kek());
    let dave = user(&s, "dave").await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (s, kek, dave) = (s.clone(), kek.clone(), dave.clone());
        tasks.push(tokio::spawn(async move {
            let e = Totp::new(&s, &kek)
                .resume_or_begin(&dave, "phone", "Latchkey test")
                .await
                .unwrap();
            (e.factor_id.clone(), e.secret_base32.to_string())
        }));
    }
    let mut shown = Vec::new();
    for task in tasks {
        shown.push(task.await.unwrap());
    }
    shown.dedup();
    assert_eq!(shown.len(), 1, "one enrolment for all: {shown:?}");
    let (first, secret) = shown.remove(0);
    let totp = Totp::new(&s, &kek);
    let again = totp
        .resume_or_begin(&dave, "phone", "Latchkey test")
        .await
        .unwrap();
    assert_eq!(
        (&again.factor_id, again.secret_base32.as_str()),
        (&first, secret.as_str())
    );
    // Past its time: a new one, shown again in turn.
    clock.advance(latchkey_idp::mfa::totp::PENDING_FOR + Duration::seconds(1));
    let fresh = totp
        .resume_or_begin(&dave, "phone", "Latchkey test")
        .await
        .unwrap();
    assert_ne!(fresh.factor_id, first);
    assert_ne!(fresh.secret_base32.as_str(), secret.as_str());
    let again = totp
        .resume_or_begin(&dave, "phone", "Latchkey test")
        .await
        .unwrap();
    assert_eq!(again.factor_id, fresh.factor_id);
    // `begin` starts over: the shown one can no longer be confirmed, the new one can.
    let over = totp.begin(&dave, "phone", "Latchkey test").await.unwrap();
    assert_ne!(over.factor_id, fresh.factor_id);
    let code = code_at(&fresh, clock_now(&clock));
    assert!(matches!(
        totp.confirm(&Actor::user(dave.id), &dave, &fresh.factor_id, &code, ADDR)
            .await,
        Err(MfaError::NoPendingEnrolment(_))
    ));
    let code = code_at(&over, clock_now(&clock));
    assert!(matches!(
        totp.confirm(&Actor::user(dave.id), &dave, &over.factor_id, &code, ADDR)
            .await
            .unwrap(),
        TotpCheck::Accepted { .. }
    ));
    // A confirmed factor is not shown again: the next showing is a new enrolment.
    let next = totp
        .resume_or_begin(&dave, "spare", "Latchkey test")
        .await
        .unwrap();
    assert_ne!(next.factor_id, over.factor_id);
}

async fn totp_guesses_are_throttled_and_a_success_resets(t: TestStore) {
    let (s, clock) = clocked(&t);
    let kek = kek();
    let carol = user(&s, "carol").await;
    let e = enrolled(&s, &kek, &carol, &clock).await;
    let totp = Totp::new(&s, &kek);
    clock.advance(Duration::seconds(30));
    let right = code_at(&e, clock_now(&clock));
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    // The fifth wrong guess uses the last free slot and starts the block.
    for _ in 0..5 {
        assert_eq!(
            totp.verify(&carol, wrong, ADDR).await.unwrap(),
            TotpCheck::Wrong
        );
    }
    // Now even the right code is not checked.
    assert!(matches!(
        totp.verify(&carol, &right, ADDR).await.unwrap(),
        TotpCheck::Throttled { .. }
    ));
    // Another address does not help: the run is the user's.
    assert!(matches!(
        totp.verify(&carol, &right, "203.0.113.9").await.unwrap(),
        TotpCheck::Throttled { .. }
    ));
    clock.advance(Duration::seconds(31));
    let right = code_at(&e, clock_now(&clock));
    assert!(matches!(
        totp.verify(&carol, &right, ADDR).await.unwrap(),
        TotpCheck::Accepted { .. }
    ));
    // The success ended the run: wrong guesses are free again.
    assert_eq!(
        totp.verify(&carol, wrong, ADDR).await.unwrap(),
        TotpCheck::Wrong
    );
}

async fn totp_secret_is_sealed_and_bound_to_its_row(t: TestStore) {
    let (s, clock) = clocked(&t);
    let kek = kek();
    let dave = user(&s, "dave").await;
    let erin = user(&s, "erin").await;
    let e = enrolled(&s, &kek, &dave, &clock).await;
    let _ = enrolled(&s, &kek, &erin, &clock).await;
    // Nothing stored holds the secret.
    let sealed: Vec<(String, String)> =
        sqlx_rows(&t, "SELECT id, sealed_secret FROM mfa_totp").await;
    assert_eq!(sealed.len(), 2);
    for (_, value) in &sealed {
        assert!(!value.contains(e.secret_base32.as_str()));
    }
    // Another KEK cannot open it: a typed error, not a wrong code.
    clock.advance(Duration::seconds(30));
    let code = code_at(&e, clock_now(&clock));
    let other = Kek::from_base64(&Kek::generate_base64(), KekSource::Env).unwrap();
    assert!(matches!(
        Totp::new(&s, &other).verify(&dave, &code, ADDR).await,
        Err(MfaError::Sealing(_))
    ));
    // Dave's sealed secret copied into Erin's row does not open there.
    let dave_row = sealed
        .iter()
        .find(|(id, _)| *id == e.factor_id)
        .unwrap()
        .1
        .clone();
    exec(
        &t,
        &format!(
            "UPDATE mfa_totp SET sealed_secret = '{dave_row}' WHERE id <> '{}'",
            e.factor_id
        ),
    )
    .await;
    assert!(matches!(
        Totp::new(&s, &kek).verify(&erin, &code, ADDR).await,
        Err(MfaError::Sealing(_))
    ));
}

async fn sqlx_rows(t: &TestStore, sql: &str) -> Vec<(String, String)> {
    use sqlx::Row;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&t.url).await.unwrap();
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_all(&pool)
        .await
        .unwrap();
    rows.iter()
        .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1)))
        .collect()
}

async fn exec(t: &TestStore, sql: &str) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&t.url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&pool)
        .await
        .unwrap();
}

async fn recovery_codes_work_once_and_regenerate_replaces_all(t: TestStore) {
    let (s, clock) = clocked(&t);
    let frank = user(&s, "frank").await;
    let codes = RecoveryCodes::new(&s);
    let set = codes
        .regenerate(&admin(), &frank, latchkey_idp::session::Keep::Nothing)
        .await
        .unwrap();
    assert_eq!(set.len(), 10);
    let unique: std::collections::BTreeSet<&str> = set.iter().map(|c| c.as_str()).collect();
    assert_eq!(unique.len(), 10);
    // Stored hashed.
    let stored: Vec<(String, String)> =
        sqlx_rows(&t, "SELECT user_id, code_hash FROM mfa_recovery_codes").await;
    assert_eq!(stored.len(), 10);
    assert!(
        stored
            .iter()
            .all(|(_, h)| !set.iter().any(|c| h.contains(c.as_str())))
    );

    // Typed in upper case without dashes it works, once; a burst of the same code wins once.
    let first = set[0].to_uppercase().replace('-', "");
    assert_eq!(
        codes.consume(&frank, &first, ADDR).await.unwrap(),
        RecoveryCheck::Accepted { remaining: 9 }
    );
    assert_eq!(
        codes.consume(&frank, &set[0], ADDR).await.unwrap(),
        RecoveryCheck::Wrong
    );
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let (s, frank, code) = (s.clone(), frank.clone(), set[1].to_string());
        tasks.push(tokio::spawn(async move {
            RecoveryCodes::new(&s)
                .consume(&frank, &code, ADDR)
                .await
                .unwrap()
        }));
    }
    let mut wins = 0;
    for task in tasks {
        if matches!(task.await.unwrap(), RecoveryCheck::Accepted { .. }) {
            wins += 1;
        }
    }
    assert_eq!(wins, 1);
    assert_eq!(codes.remaining(&frank).await.unwrap(), 8);
    // The burst's five losers count against the factor throttle only if they took their
    // slots after the winner's success ended the run, which depends on scheduling: all five
    // would make the next guess the sixth and refuse it. A quiet period ends the run
    // either way, so what follows does not depend on how the burst interleaved.
    clock.advance(time::Duration::minutes(16));
    // Malformed: typed error before any slot.
    assert!(matches!(
        codes.consume(&frank, "not-a-code", ADDR).await,
        Err(MfaError::MalformedCode(_))
    ));
    // Each use is audited.
    let uses = s
        .audit()
        .list(&AuditFilter {
            action: Some("mfa.recovery_code_use".into()),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(uses.len(), 2);
    // Regenerate replaces every old code.
    let fresh = codes
        .regenerate(&admin(), &frank, latchkey_idp::session::Keep::Nothing)
        .await
        .unwrap();
    assert_eq!(codes.remaining(&frank).await.unwrap(), 10);
    assert_eq!(
        codes.consume(&frank, &set[2], ADDR).await.unwrap(),
        RecoveryCheck::Wrong
    );
    assert!(matches!(
        codes.consume(&frank, &fresh[0], ADDR).await.unwrap(),
        RecoveryCheck::Accepted { remaining: 9 }
    ));
}

/// Removing a factor keeps the recovery codes while another factor is left, and drops them
/// with the last one (else they would come back to life with the next factor enrolled).
async fn recovery_codes_go_with_the_last_factor(t: TestStore) {
    let (s, clock) = clocked(&t);
    let kek = kek();
    let grace = user(&s, "grace").await;
    let me = Actor::user(grace.id);
    let phone = enrolled(&s, &kek, &grace, &clock).await;
    let tablet = enrolled(&s, &kek, &grace, &clock).await;
    let codes = RecoveryCodes::new(&s);
    codes
        .regenerate(&me, &grace, latchkey_idp::session::Keep::Nothing)
        .await
        .unwrap();
    let totp = Totp::new(&s, &kek);

    assert!(
        totp.remove(
            &me,
            &grace,
            &phone.factor_id,
            latchkey_idp::session::Keep::Nothing
        )
        .await
        .unwrap()
    );
    assert_eq!(
        codes.remaining(&grace).await.unwrap(),
        10,
        "a factor is left"
    );
    assert!(
        totp.remove(
            &me,
            &grace,
            &tablet.factor_id,
            latchkey_idp::session::Keep::Nothing
        )
        .await
        .unwrap()
    );
    assert_eq!(
        codes.remaining(&grace).await.unwrap(),
        0,
        "the last factor went"
    );
    assert!(
        !Factors::new(&s)
            .available(&grace)
            .await
            .unwrap()
            .any_factor()
    );

    let removals = s
        .audit()
        .list(&AuditFilter {
            action: Some("mfa.totp_remove".into()),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    let dropped: Vec<Option<u64>> = removals
        .iter()
        .map(|e| {
            e.after
                .as_ref()
                .and_then(|a| a["recovery_codes_dropped"].as_u64())
        })
        .collect();
    assert_eq!(
        dropped.iter().filter(|d| d.is_some()).count(),
        1,
        "{removals:?}"
    );
    assert!(dropped.contains(&Some(10)));
}

/// What the SSO path reads of the MFA policy for `who` at `app`: the grant's facts, read in
/// the grant's one statement.
async fn facts(s: &Store, who: &User, app: &Application) -> MfaFacts {
    let alone = grant::for_user(s, who, app).await.unwrap().mfa;
    // A sign-in reads them with its session, in one statement: the same facts.
    let (token, _) = Sessions::new(s)
        .create(who, s.now(), Duration::hours(8))
        .await
        .unwrap();
    let (_, signing_in, _) =
        grant::resume(s, token.expose(), s.now(), Duration::minutes(30), app.id)
            .await
            .unwrap()
            .expect("a live session");
    assert_eq!(signing_in.mfa, alone);
    alone
}

/// The decision for `who` signing in to `app` with `methods`, as the policy makes it from its
/// own reads; the SSO path's decision from the grant's facts must be the same.
async fn decided(s: &Store, who: &User, app: &Application, methods: &Methods) -> MfaDecision {
    let policy = MfaPolicy::new(s)
        .decide(who, Target::App(app.id), methods, None, false, true)
        .await
        .unwrap();
    let from_grant = facts(s, who, app).await.decide(methods, None, false, true);
    assert_eq!(
        from_grant, policy,
        "{} at {}",
        who.username, app.settings.name
    );
    policy
}

async fn policy_global_group_app_and_user(t: TestStore) {
    let (s, clock) = clocked(&t);
    let kek = kek();
    let gina = user(&s, "gina").await;
    let hank = user(&s, "hank").await;
    let finance = group(&s, "finance").await;
    join(&s, finance.id, hank.id).await;
    let payroll = s
        .apps()
        .create(
            &admin(),
            NewApplication::new(
                "https://payroll.example.org",
                "Payroll",
                "https://payroll.example.org/acs",
            ),
        )
        .await
        .unwrap();
    let wiki = s
        .apps()
        .create(
            &admin(),
            NewApplication::new(
                "https://wiki.example.org",
                "Wiki",
                "https://wiki.example.org/acs",
            ),
        )
        .await
        .unwrap();
    let policy = MfaPolicy::new(&s);
    policy
        .set_app(
            &admin(),
            &payroll,
            AppMfa {
                require_mfa: true,
                mfa_class: MfaClass::MobileTwoFactorContract,
            },
        )
        .await
        .unwrap();
    let pw = Methods::password();
    // Payroll needs MFA, the wiki doesn't.
    let wiki_says = decided(&s, &gina, &wiki, &pw).await;
    assert!(
        matches!(wiki_says, MfaDecision::Satisfied { .. }),
        "{wiki_says:?}"
    );
    assert_eq!(decided(&s, &gina, &payroll, &pw).await, MfaDecision::Enrol);
    let _ = enrolled(&s, &kek, &gina, &clock).await;
    assert_eq!(decided(&s, &gina, &payroll, &pw).await, MfaDecision::StepUp);
    let both = Methods::of(&[AuthMethod::Password, AuthMethod::Totp]);
    assert_eq!(
        decided(&s, &gina, &payroll, &both).await,
        MfaDecision::Satisfied {
            class: latchkey_saml::assertion::authn_context::MOBILE_TWO_FACTOR_CONTRACT
        }
    );
    // The portal: only global and user rules.
    assert!(
        !policy
            .requirement(&gina, Target::Portal, false)
            .await
            .unwrap()
            .required()
    );
    assert_eq!(
        policy
            .requirement(&gina, Target::Portal, true)
            .await
            .unwrap()
            .reasons,
        vec![Reason::Global]
    );
    // A group's members, and a user an admin named.
    policy.set_group(&admin(), &finance, true).await.unwrap();
    assert_eq!(decided(&s, &hank, &wiki, &pw).await, MfaDecision::Enrol);
    assert!(facts(&s, &hank, &wiki).await.group_required);
    assert_eq!(
        policy
            .requirement(&hank, Target::App(wiki.id), false)
            .await
            .unwrap()
            .reasons,
        vec![Reason::Group("finance".into())]
    );
    assert!(
        !policy
            .requirement(&gina, Target::App(wiki.id), false)
            .await
            .unwrap()
            .required()
    );
    policy
        .require_for_user(&admin(), &gina, true)
        .await
        .unwrap();
    assert_eq!(
        policy
            .requirement(&gina, Target::App(wiki.id), false)
            .await
            .unwrap()
            .reasons,
        vec![Reason::User]
    );
    let gina_at_wiki = facts(&s, &gina, &wiki).await;
    assert!(gina_at_wiki.user_required && !gina_at_wiki.group_required);
    assert!(gina_at_wiki.has_factor);
    assert_eq!(decided(&s, &gina, &wiki, &pw).await, MfaDecision::StepUp);
    // [mfa] required: the facts need no row for it.
    assert_eq!(
        facts(&s, &hank, &payroll)
            .await
            .decide(&pw, None, true, true),
        policy
            .decide(&hank, Target::App(payroll.id), &pw, None, true, true)
            .await
            .unwrap()
    );
    // Each change audited with the admin's name.
    for action in ["app.mfa_policy", "group.mfa_policy", "user.mfa_required"] {
        let events = s
            .audit()
            .list(&AuditFilter {
                action: Some(action.into()),
                ..AuditFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(events.len(), 1, "{action}");
        assert_eq!(events[0].actor, "cli:tester");
    }
    assert_eq!(
        facts(&s, &gina, &payroll).await.app,
        policy.app(payroll.id).await.unwrap()
    );
    assert_eq!(
        policy.app(payroll.id).await.unwrap(),
        AppMfa {
            require_mfa: true,
            mfa_class: MfaClass::MobileTwoFactorContract
        }
    );
}

/// A step-up is a change of privilege: the session moves to a new token (the one it had
/// before the second factor resumes nothing), keeping its SessionIndex, its start and the
/// applications it signed in to (single logout still finds them); a second step-up of the
/// old token, racing the first, moves nothing.
async fn session_steps_up_under_a_new_token_and_keeps_its_index(t: TestStore) {
    let (s, clock) = clocked(&t);
    let ivy = user(&s, "ivy").await;
    let wiki = s
        .apps()
        .create(
            &admin(),
            NewApplication::new("https://wiki.step", "Wiki", "https://wiki.step/acs"),
        )
        .await
        .unwrap();
    let sessions = Sessions::new(&s);
    let (token, session) = sessions.create(&ivy, T0, Duration::hours(8)).await.unwrap();
    assert_eq!(session.methods, Methods::password());
    assert!(!session.methods.multi_factor());
    let told = SessionApp {
        app: wiki.id,
        name_id: "ivy".into(),
        name_id_format: "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified".into(),
    };
    sessions.record_app(&session, &told, T0).await.unwrap();
    clock.advance(Duration::minutes(5));
    let later = T0 + Duration::minutes(5);
    let (new_token, up) = sessions
        .step_up(&session, AuthMethod::Totp, later)
        .await
        .unwrap()
        .expect("the session is live");
    assert!(up.methods.multi_factor());
    assert_ne!(new_token.expose(), token.expose());
    assert!(
        sessions
            .resume(token.expose(), later, Duration::hours(1))
            .await
            .unwrap()
            .is_none(),
        "the token from before the second factor is spent"
    );
    let resumed = sessions
        .resume(new_token.expose(), later, Duration::hours(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resumed.session_index, session.session_index, "same session");
    assert_eq!(resumed.authn_at, later, "AuthnInstant moved");
    assert_eq!(
        resumed.methods,
        Methods::of(&[AuthMethod::Password, AuthMethod::Totp])
    );
    assert_eq!(resumed.created_at, T0);
    assert_eq!(sessions.apps(&resumed).await.unwrap(), vec![told]);
    assert_eq!(sessions.of_user(ivy.id, later).await.unwrap().len(), 1);
    // The old token's step-up, late: nothing to move.
    assert!(
        sessions
            .step_up(&session, AuthMethod::RecoveryCode, later)
            .await
            .unwrap()
            .is_none()
    );
    // A passkey session records no password.
    let (_, passkey) = sessions
        .create_with(
            &ivy,
            Methods::of(&[AuthMethod::Passkey]),
            &latchkey_idp::session::Client::default(),
            later,
            Duration::hours(8),
        )
        .await
        .unwrap();
    assert!(!passkey.methods.contains(AuthMethod::Password));
    assert!(passkey.methods.multi_factor());
}

async fn admin_list_and_reset_never_show_secrets(t: TestStore) {
    let (s, clock) = clocked(&t);
    let kek = kek();
    let jack = user(&s, "jack").await;
    let e = enrolled(&s, &kek, &jack, &clock).await;
    let _codes = RecoveryCodes::new(&s)
        .regenerate(&admin(), &jack, latchkey_idp::session::Keep::Nothing)
        .await
        .unwrap();
    let factors = Factors::new(&s);
    let listed = factors.list(&jack).await.unwrap();
    assert_eq!(
        listed.iter().map(|f| f.kind).collect::<Vec<_>>(),
        [FactorKind::Totp, FactorKind::RecoveryCodes]
    );
    assert_eq!(listed[0].name, "phone");
    assert_eq!(listed[1].remaining, Some(10));
    let json = serde_json::to_string(&listed).unwrap();
    assert!(!json.contains(e.secret_base32.as_str()) && !json.contains("sealed"));
    assert_eq!(factors.reset(&admin(), &jack).await.unwrap(), 2);
    assert!(factors.list(&jack).await.unwrap().is_empty());
    assert!(!factors.has_factor(&jack).await.unwrap());
    let resets = s
        .audit()
        .list(&AuditFilter {
            action: Some("mfa.reset".into()),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(resets.len(), 1);
    assert_eq!(resets[0].actor, "cli:tester");
    assert_eq!(resets[0].target_name.as_deref(), Some("jack"));
}

/// A TOTP code checked by the reset page is used only in the transaction that uses the
/// link: a sign-in that used the same step meanwhile makes the reset write nothing (the
/// link stays usable), and a reset that went through used the step.
async fn a_totp_step_checked_for_a_reset_is_used_only_with_the_link(t: TestStore) {
    let (s, clock) = clocked(&t);
    let kek = kek();
    let nina = user(&s, "nina").await;
    let e = enrolled(&s, &kek, &nina, &clock).await;
    let link = s
        .enrollment()
        .issue_reset(&admin(), nina.id, Duration::hours(1))
        .await
        .unwrap();
    let totp = Totp::new(&s, &kek);

    clock.advance(Duration::seconds(30));
    let code = code_at(&e, clock_now(&clock));
    let checked = totp
        .check_for_later(&nina, &code, ADDR)
        .await
        .unwrap()
        .unwrap();
    // Checking did not use the step: a sign-in with the same code still passes...
    assert!(matches!(
        totp.verify(&nina, &code, ADDR).await.unwrap(),
        TotpCheck::Accepted { .. }
    ));
    // ... and then the reset writes nothing and leaves the link.
    let out = s
        .enrollment()
        .redeem_with_code(
            link.token(),
            latchkey_idp::password::Password::new("a phrase long enough"),
            checked,
        )
        .await
        .unwrap();
    assert!(out.is_none());
    assert!(matches!(
        s.enrollment()
            .lookup(latchkey_idp::enrollment::LinkKind::Reset, link.token())
            .await
            .unwrap(),
        latchkey_idp::enrollment::LinkLookup::Valid(_)
    ));

    // The next step's code: the reset goes through and uses it.
    clock.advance(Duration::seconds(30));
    let code = code_at(&e, clock_now(&clock));
    let checked = totp
        .check_for_later(&nina, &code, ADDR)
        .await
        .unwrap()
        .unwrap();
    assert!(
        s.enrollment()
            .redeem_with_code(
                link.token(),
                latchkey_idp::password::Password::new("a phrase long enough"),
                checked
            )
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        totp.verify(&nina, &code, ADDR).await.unwrap(),
        TotpCheck::Replayed
    );
    assert!(matches!(
        totp.check_for_later(&nina, &code, ADDR).await.unwrap(),
        Err(TotpCheck::Replayed)
    ));
}

/// A second factor removed or replaced ends the sessions that may have used it: by its owner
/// (`Keep::Current`) every other session of theirs, the one they acted from staying; by an
/// admin (`Factors::reset`) every session. Someone else's sessions stay, and a first set of
/// recovery codes (nothing replaced) ends nothing.
async fn removing_a_factor_ends_sessions_as_who_removed_it_says(t: TestStore) {
    let (s, clock) = clocked(&t);
    let kek = kek();
    let hank = user(&s, "hank").await;
    let ivy = user(&s, "ivy").await;
    let me = Actor::user(hank.id);
    let phone = enrolled(&s, &kek, &hank, &clock).await;
    enrolled(&s, &kek, &hank, &clock).await;
    let sessions = Sessions::new(&s);
    let now = clock_now(&clock);
    let life = Duration::hours(8);
    let (_, here) = sessions.create(&hank, now, life).await.unwrap();
    let (ivys, _) = sessions.create(&ivy, now, life).await.unwrap();
    let live = |user: latchkey_idp::ids::UserId| async move {
        sessions.of_user(user, now).await.unwrap().len()
    };

    // A first set of codes replaces nothing: no session ends.
    let (other, _) = sessions.create(&hank, now, life).await.unwrap();
    let codes = RecoveryCodes::new(&s);
    codes.regenerate(&me, &hank, Keep::Nothing).await.unwrap();
    assert_eq!(live(hank.id).await, 2);

    // The owner removes an app: the other session ends, this one stays.
    let totp = Totp::new(&s, &kek);
    assert!(
        totp.remove(&me, &hank, &phone.factor_id, Keep::Current(&here))
            .await
            .unwrap()
    );
    let idle = Duration::hours(1);
    assert!(
        sessions
            .resume(other.expose(), now, idle)
            .await
            .unwrap()
            .is_none()
    );
    let left = sessions.of_user(hank.id, now).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].session_index, here.session_index);

    // The owner replaces unused codes: likewise.
    sessions.create(&hank, now, life).await.unwrap();
    codes
        .regenerate(&me, &hank, Keep::Current(&here))
        .await
        .unwrap();
    let left = sessions.of_user(hank.id, now).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].session_index, here.session_index);

    // An admin resets the factors: every session ends, this one too.
    sessions.create(&hank, now, life).await.unwrap();
    Factors::new(&s).reset(&admin(), &hank).await.unwrap();
    assert_eq!(live(hank.id).await, 0);
    assert!(
        sessions
            .resume(ivys.expose(), now, idle)
            .await
            .unwrap()
            .is_some()
    );

    let ended = s
        .audit()
        .list(&AuditFilter {
            action: Some("user.sessions_end".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut reasons: Vec<(String, i64)> = ended
        .iter()
        .map(|e| {
            let after = e.after.as_ref().unwrap();
            (
                after["reason"].as_str().unwrap().to_owned(),
                after["sessions_ended"].as_i64().unwrap(),
            )
        })
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        [
            ("mfa_recovery_codes_regenerate".to_owned(), 1),
            ("mfa_reset".to_owned(), 2),
            ("mfa_totp_remove".to_owned(), 1),
        ]
    );
}

/// Another writer's change of an MFA rule, held open: it takes `locks` (the holder's row
/// lock, as the store's own writers take it first; SQLite's write lock stands for it) and
/// writes `write`, each bound to `id`, and commits when told.
async fn held_rule_change(
    t: &TestStore,
    locks: &'static str,
    write: &'static str,
    id: String,
) -> tokio::sync::oneshot::Sender<()> {
    use sqlx::Connection as _;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&t.url).await.unwrap();
    let sqlite = t.url.starts_with("sqlite");
    let (commit, told) = tokio::sync::oneshot::channel::<()>();
    let (begun, started) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let begin = if sqlite { "BEGIN IMMEDIATE" } else { "BEGIN" };
        sqlx::raw_sql(begin).execute(&mut conn).await.unwrap();
        if !sqlite {
            sqlx::query(locks)
                .bind(&id)
                .execute(&mut conn)
                .await
                .unwrap();
        }
        sqlx::query(write)
            .bind(&id)
            .execute(&mut conn)
            .await
            .unwrap();
        begun.send(()).unwrap();
        told.await.unwrap();
        sqlx::raw_sql("COMMIT").execute(&mut conn).await.unwrap();
    });
    started.await.unwrap();
    commit
}

/// The `before` of a rule change's audit event is the value it replaced: read in its own
/// transaction once the holder's lock is held, not before the transaction began (then a
/// change committed in between is missing from the log: "false -> false" for a rule that
/// was on). For a user's rule, a group's and an application's.
async fn a_rule_change_audits_the_value_it_replaced(t: TestStore) {
    let s = t.store.clone();
    let gina = user(&s, "gina").await;
    let finance = group(&s, "finance").await;
    let wiki = s
        .apps()
        .create(
            &admin(),
            NewApplication::new(
                "https://wiki.example.org",
                "Wiki",
                "https://wiki.example.org/acs",
            ),
        )
        .await
        .unwrap();
    let latest = async |action: &str| {
        s.audit()
            .list(&AuditFilter {
                action: Some(action.into()),
                ..AuditFilter::default()
            })
            .await
            .unwrap()
            .into_iter()
            .max_by_key(|e| e.seq)
            .unwrap()
    };
    let pause = std::time::Duration::from_millis(300);

    let commit = held_rule_change(
        &t,
        "SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE",
        "INSERT INTO mfa_user_policy (user_id, require_mfa) VALUES ($1, 1)",
        gina.id.to_string(),
    )
    .await;
    let change = tokio::spawn({
        let (s, gina) = (s.clone(), gina.clone());
        async move {
            MfaPolicy::new(&s)
                .require_for_user(&admin(), &gina, false)
                .await
        }
    });
    tokio::time::sleep(pause).await;
    commit.send(()).unwrap();
    change.await.unwrap().unwrap();
    let event = latest("user.mfa_required").await;
    assert_eq!(event.before.unwrap()["require_mfa"], true);
    assert_eq!(event.after.unwrap()["require_mfa"], false);

    let commit = held_rule_change(
        &t,
        "SELECT 1 FROM directory_groups WHERE id = $1 FOR NO KEY UPDATE",
        "INSERT INTO mfa_group_policy (group_id, require_mfa) VALUES ($1, 1)",
        finance.id.to_string(),
    )
    .await;
    let change = tokio::spawn({
        let (s, finance) = (s.clone(), finance.clone());
        async move {
            MfaPolicy::new(&s)
                .set_group(&admin(), &finance, false)
                .await
        }
    });
    tokio::time::sleep(pause).await;
    commit.send(()).unwrap();
    change.await.unwrap().unwrap();
    let event = latest("group.mfa_policy").await;
    assert_eq!(event.before.unwrap()["require_mfa"], true);
    assert_eq!(event.after.unwrap()["require_mfa"], false);

    let commit = held_rule_change(
        &t,
        "SELECT 1 FROM applications WHERE id = $1 FOR NO KEY UPDATE",
        "INSERT INTO mfa_app_policy (app_id, require_mfa, mfa_class) VALUES ($1, 1, 'refeds')",
        wiki.id.to_string(),
    )
    .await;
    let change = tokio::spawn({
        let (s, wiki) = (s.clone(), wiki.clone());
        async move {
            MfaPolicy::new(&s)
                .set_app(&admin(), &wiki, AppMfa::default())
                .await
        }
    });
    tokio::time::sleep(pause).await;
    commit.send(()).unwrap();
    change.await.unwrap().unwrap();
    let event = latest("app.mfa_policy").await;
    assert_eq!(
        event.before.clone().unwrap()["require_mfa"],
        true,
        "{event:?}"
    );
    assert_eq!(event.after.unwrap()["require_mfa"], false);
}
