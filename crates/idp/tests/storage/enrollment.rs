//! Invitation and password-reset links: single use, expiry, supersession, simultaneous
//! redemption, and a reset request that answers the same for names that do not exist.

use std::sync::{Arc, Mutex};

use latchkey_idp::audit::AuditFilter;
use latchkey_idp::enrollment::reset::{LinkSink, ResetDesk, ResetRequested};
use latchkey_idp::enrollment::{IssuedLink, LinkKind, LinkLookup, LinkState};
use latchkey_idp::mfa::recovery::{RecoveryCheck, RecoveryCodes};
use latchkey_idp::password::Password;
use latchkey_idp::session::Sessions;
use latchkey_idp::{Error, ManualClock};
use time::Duration;

use super::{admin, group, join, user};
use crate::on_both_backends;
use crate::support::TestStore;

on_both_backends!(
    an_invitation_sets_the_password_once,
    an_invitation_expires,
    a_new_invitation_supersedes_the_old,
    of_two_simultaneous_redemptions_exactly_one_wins,
    a_refused_password_leaves_the_link_usable,
    a_reset_request_answers_the_same_for_unknown_names_and_mails_only_real_ones,
    a_reset_ends_every_session_and_is_audited,
    reset_requests_are_throttled_per_name_and_per_account,
    a_password_set_another_way_uses_up_the_links,
    a_suspended_or_deleted_users_link_does_nothing,
    of_twenty_simultaneous_redemptions_exactly_one_wins,
    a_recovery_code_survives_a_reset_that_fails_after_its_check,
    twenty_resets_with_one_code_write_one_password_and_use_the_code_once,
    gaining_a_console_role_uses_up_the_links,
    a_password_helpdesk_set_stops_working_when_a_role_is_gained,
);

fn state(err: Error) -> LinkState {
    match err {
        Error::LinkUnusable { state, .. } => state,
        other => panic!("expected an unusable link, got {other:?}"),
    }
}

async fn an_invitation_sets_the_password_once(t: TestStore) {
    let alice = user(&t.store, "alice").await;
    let links = t.store.enrollment();
    let link = links
        .invite(&admin(), alice.id, Duration::hours(72))
        .await
        .unwrap();
    assert!(link.path().starts_with("/invite/"));
    assert_eq!(
        link.url("https://idp.example.org/"),
        format!("https://idp.example.org/invite/{}", link.token())
    );
    match links
        .lookup(LinkKind::Invitation, link.token())
        .await
        .unwrap()
    {
        LinkLookup::Valid(v) => {
            assert_eq!(v.user.id, alice.id);
            assert_eq!(v.created_by, admin().as_str());
        }
        other => panic!("{other:?}"),
    }
    // Looking does not use it; the token does not work as a reset link.
    assert!(matches!(
        links.lookup(LinkKind::Reset, link.token()).await.unwrap(),
        LinkLookup::Unusable(LinkState::Unknown)
    ));
    let pw = || Password::new("violet staple hinge");
    let redeemed = links
        .redeem(LinkKind::Invitation, link.token(), pw())
        .await
        .unwrap();
    assert!(redeemed.has_password);
    assert!(
        t.store
            .users()
            .verify_password(alice.id, pw())
            .await
            .unwrap()
    );
    let again = links
        .redeem(
            LinkKind::Invitation,
            link.token(),
            Password::new("another long one"),
        )
        .await
        .unwrap_err();
    assert_eq!(again.code().as_str(), "link_used");
    assert_eq!(state(again), LinkState::Used);
    assert!(
        t.store
            .users()
            .verify_password(alice.id, pw())
            .await
            .unwrap()
    );
    assert!(matches!(
        links
            .lookup(LinkKind::Invitation, "not-a-token")
            .await
            .unwrap(),
        LinkLookup::Unusable(LinkState::Unknown)
    ));
    // Audited with the admin's name: the invitation, and its redemption naming who issued it.
    let events = t
        .store
        .audit()
        .list(&AuditFilter {
            target_id: Some(alice.id.to_string()),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    let invited = events.iter().find(|e| e.action == "user.invited").unwrap();
    assert_eq!(invited.actor, admin().as_str());
    let redeemed = events
        .iter()
        .find(|e| e.action == "user.invitation_redeemed")
        .unwrap();
    assert_eq!(redeemed.actor, format!("user:{}", alice.id));
    assert_eq!(
        redeemed.after.as_ref().unwrap()["link_issued_by"],
        admin().as_str()
    );
    // The token is nowhere in the log.
    assert!(
        !serde_json::to_string(&events)
            .unwrap()
            .contains(link.token())
    );
}

async fn an_invitation_expires(t: TestStore) {
    let clock = ManualClock::starting_now();
    let store = t.store.clone().with_clock(clock.clone());
    let bob = user(&store, "bob").await;
    let link = store
        .enrollment()
        .invite(&admin(), bob.id, Duration::hours(72))
        .await
        .unwrap();
    clock.advance(Duration::hours(72) - Duration::seconds(1));
    assert!(matches!(
        store
            .enrollment()
            .lookup(LinkKind::Invitation, link.token())
            .await
            .unwrap(),
        LinkLookup::Valid(_)
    ));
    clock.advance(Duration::seconds(1));
    assert!(matches!(
        store
            .enrollment()
            .lookup(LinkKind::Invitation, link.token())
            .await
            .unwrap(),
        LinkLookup::Unusable(LinkState::Expired)
    ));
    let err = store
        .enrollment()
        .redeem(
            LinkKind::Invitation,
            link.token(),
            Password::new("violet staple hinge"),
        )
        .await
        .unwrap_err();
    assert_eq!(state(err), LinkState::Expired);
    assert!(!store.users().get(bob.id).await.unwrap().has_password);
    // An expired link is purged; a live one is not.
    store
        .enrollment()
        .invite(&admin(), user(&store, "bob2").await.id, Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(store.enrollment().purge(store.now()).await.unwrap(), 1);
    // Refused out of range.
    for ttl in [Duration::ZERO, Duration::days(31)] {
        let err = store
            .enrollment()
            .invite(&admin(), bob.id, ttl)
            .await
            .unwrap_err();
        assert_eq!(err.code().as_str(), "invalid_field");
    }
}

async fn a_new_invitation_supersedes_the_old(t: TestStore) {
    let carol = user(&t.store, "carol").await;
    let links = t.store.enrollment();
    let first = links
        .invite(&admin(), carol.id, Duration::hours(1))
        .await
        .unwrap();
    let second = links
        .invite(&admin(), carol.id, Duration::hours(1))
        .await
        .unwrap();
    assert_ne!(first.token(), second.token());
    assert!(matches!(
        links
            .lookup(LinkKind::Invitation, first.token())
            .await
            .unwrap(),
        LinkLookup::Unusable(LinkState::Used)
    ));
    let err = links
        .redeem(
            LinkKind::Invitation,
            first.token(),
            Password::new("violet staple hinge"),
        )
        .await
        .unwrap_err();
    assert_eq!(state(err), LinkState::Used);
    links
        .redeem(
            LinkKind::Invitation,
            second.token(),
            Password::new("violet staple hinge"),
        )
        .await
        .unwrap();
    // A reset link does not supersede an invitation (different kinds), and vice versa.
    let invite = links
        .invite(&admin(), carol.id, Duration::hours(1))
        .await
        .unwrap();
    links
        .issue_reset(&admin(), carol.id, Duration::minutes(30))
        .await
        .unwrap();
    assert!(matches!(
        links
            .lookup(LinkKind::Invitation, invite.token())
            .await
            .unwrap(),
        LinkLookup::Valid(_)
    ));
}

async fn of_two_simultaneous_redemptions_exactly_one_wins(t: TestStore) {
    let dave = user(&t.store, "dave").await;
    for round in 0..4 {
        let link = t
            .store
            .enrollment()
            .invite(&admin(), dave.id, Duration::hours(1))
            .await
            .unwrap();
        let token = link.token().to_owned();
        let racer = |pw: &'static str| {
            let store = t.store.clone();
            let token = token.clone();
            tokio::spawn(async move {
                store
                    .enrollment()
                    .redeem(LinkKind::Invitation, &token, Password::new(pw))
                    .await
            })
        };
        let (a, b) = (
            racer("first racer password"),
            racer("second racer password"),
        );
        let (a, b) = (a.await.unwrap(), b.await.unwrap());
        assert!(a.is_ok() != b.is_ok(), "round {round}: {a:?} / {b:?}");
        let loser = if a.is_ok() { b } else { a };
        assert_eq!(state(loser.unwrap_err()), LinkState::Used);
        let winner = if t
            .store
            .users()
            .verify_password(dave.id, Password::new("first racer password"))
            .await
            .unwrap()
        {
            1
        } else {
            2
        };
        let redeemed = t
            .store
            .audit()
            .list(&AuditFilter {
                action: Some("user.invitation_redeemed".into()),
                ..AuditFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(
            redeemed.len(),
            round + 1,
            "winner {winner}: one event per link"
        );
    }
}

async fn a_refused_password_leaves_the_link_usable(t: TestStore) {
    let erin = user(&t.store, "erin").await;
    let links = t.store.enrollment();
    let link = links
        .invite(&admin(), erin.id, Duration::hours(1))
        .await
        .unwrap();
    for (pw, code) in [
        ("short", "password_too_short"),
        ("qwerty123456", "password_too_common"),
    ] {
        let err = links
            .redeem(LinkKind::Invitation, link.token(), Password::new(pw))
            .await
            .unwrap_err();
        assert_eq!(err.code().as_str(), code);
    }
    assert!(matches!(
        links
            .lookup(LinkKind::Invitation, link.token())
            .await
            .unwrap(),
        LinkLookup::Valid(_)
    ));
}

/// A sink that keeps what it was handed, as the mail queue would send it.
#[derive(Default)]
struct Inbox(Mutex<Vec<(String, String)>>);

impl LinkSink for Inbox {
    fn deliver(&self, link: &IssuedLink, url: &str) {
        self.0
            .lock()
            .unwrap()
            .push((link.user.email.clone(), url.to_owned()));
    }
}

impl Inbox {
    async fn wait_for(&self, n: usize) -> Vec<(String, String)> {
        for _ in 0..200 {
            if self.0.lock().unwrap().len() >= n {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        self.0.lock().unwrap().clone()
    }
}

fn desk(t: &TestStore, inbox: &Arc<Inbox>) -> ResetDesk {
    ResetDesk::start(
        t.store.clone(),
        "https://idp.example.org".into(),
        Duration::minutes(30),
        Arc::clone(inbox) as Arc<dyn LinkSink>,
    )
}

async fn a_reset_request_answers_the_same_for_unknown_names_and_mails_only_real_ones(t: TestStore) {
    let frank = user(&t.store, "frank").await;
    let inbox = Arc::new(Inbox::default());
    let desk = desk(&t, &inbox);
    let known = desk.request(&t.store, "frank", "192.0.2.1").await;
    let unknown = desk.request(&t.store, "nobody", "192.0.2.1").await;
    // The whole answer is the same value, and a unit: nothing in it can differ.
    assert_eq!(format!("{known:?}"), format!("{unknown:?}"));
    assert_eq!(known.unwrap(), ResetRequested);
    // By e-mail address too, any case.
    desk.request(&t.store, "FRANK@example.org", "192.0.2.1")
        .await
        .unwrap();
    let mail = inbox.wait_for(2).await;
    assert_eq!(mail.len(), 2, "{mail:?}");
    assert!(mail.iter().all(|(to, _)| to == &frank.email));
    let (_, url) = &mail[1];
    let token = url
        .strip_prefix("https://idp.example.org/reset/")
        .expect("a reset link under the base URL");
    // The second link superseded the first.
    let (_, first) = &mail[0];
    let first = first.rsplit('/').next().unwrap();
    assert!(matches!(
        t.store
            .enrollment()
            .lookup(LinkKind::Reset, first)
            .await
            .unwrap(),
        LinkLookup::Unusable(LinkState::Used)
    ));
    assert!(matches!(
        t.store
            .enrollment()
            .lookup(LinkKind::Reset, token)
            .await
            .unwrap(),
        LinkLookup::Valid(_)
    ));
    // Nothing was made for the unknown name: no link row, no audit line about it.
    let requested = t
        .store
        .audit()
        .list(&AuditFilter {
            action: Some("user.password_reset_requested".into()),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(requested.len(), 2);
    assert!(
        requested
            .iter()
            .all(|e| e.target_id.as_deref() == Some(&*frank.id.to_string()))
    );
}

async fn a_reset_ends_every_session_and_is_audited(t: TestStore) {
    let clock = ManualClock::starting_now();
    let store = t.store.clone().with_clock(clock.clone());
    let gina = user(&store, "gina").await;
    let sessions = Sessions::new(&store);
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let (token, _) = sessions
            .create(&gina, store.now(), Duration::hours(8))
            .await
            .unwrap();
        tokens.push(token);
    }
    let link = store
        .enrollment()
        .issue_reset(
            &latchkey_idp::Actor::system(),
            gina.id,
            Duration::minutes(30),
        )
        .await
        .unwrap();
    clock.advance(Duration::minutes(29));
    store
        .enrollment()
        .redeem(
            LinkKind::Reset,
            link.token(),
            Password::new("violet staple hinge"),
        )
        .await
        .unwrap();
    for token in &tokens {
        assert!(
            sessions
                .resume(token.expose(), store.now(), Duration::hours(1))
                .await
                .unwrap()
                .is_none()
        );
    }
    let reset = store
        .audit()
        .list(&AuditFilter {
            action: Some("user.password_reset".into()),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(reset.len(), 1);
    assert_eq!(reset[0].after.as_ref().unwrap()["sessions_ended"], 2);
    // And a reset link expires after its 30 minutes.
    let late = store
        .enrollment()
        .issue_reset(
            &latchkey_idp::Actor::system(),
            gina.id,
            Duration::minutes(30),
        )
        .await
        .unwrap();
    clock.advance(Duration::minutes(30));
    let err = store
        .enrollment()
        .redeem(
            LinkKind::Reset,
            late.token(),
            Password::new("violet staple hinge"),
        )
        .await
        .unwrap_err();
    assert_eq!(state(err), LinkState::Expired);
}

async fn reset_requests_are_throttled_per_name_and_per_account(t: TestStore) {
    let hank = user(&t.store, "hank").await;
    let inbox = Arc::new(Inbox::default());
    let desk = desk(&t, &inbox);
    // Three requests for a name as typed, then it blocks; an unknown name the same way.
    for name in ["hank", "ghost"] {
        for i in 0..3 {
            let addr = format!("198.51.100.{i}");
            desk.request(&t.store, name, &addr).await.unwrap();
        }
        let err = desk
            .request(&t.store, name, "198.51.100.9")
            .await
            .unwrap_err();
        assert_eq!(err.code().as_str(), "throttled", "{name}");
    }
    // The account's own bound holds across the names it is known by: 3 mails, not 6.
    for i in 0..3 {
        desk.request(&t.store, "HANK@example.org", &format!("203.0.113.{i}"))
            .await
            .unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mail = inbox.wait_for(3).await;
    assert_eq!(mail.len(), 3, "{mail:?}");
    assert!(mail.iter().all(|(to, _)| to == &hank.email));
    // One address cannot go on for ever over fresh names.
    let mut refused = false;
    for i in 0..20 {
        if desk
            .request(&t.store, &format!("name{i}"), "192.0.2.200")
            .await
            .is_err()
        {
            refused = true;
            break;
        }
    }
    assert!(refused, "the address bound refuses at last");
}

fn lookup_state(found: LinkLookup) -> Option<LinkState> {
    match found {
        LinkLookup::Valid(_) => None,
        LinkLookup::Unusable(state) => Some(state),
    }
}

/// An invitation or reset link mailed before the password was set some other way (an
/// admin, another link) sets nothing: the invitation, which asks for no second factor,
/// would otherwise replace the password of an account that has one.
async fn a_password_set_another_way_uses_up_the_links(t: TestStore) {
    let ivan = user(&t.store, "ivan").await;
    let links = t.store.enrollment();
    let system = latchkey_idp::Actor::system();
    let invitation = links
        .invite(&admin(), ivan.id, Duration::days(7))
        .await
        .unwrap();
    let reset = links
        .issue_reset(&system, ivan.id, Duration::minutes(30))
        .await
        .unwrap();
    // The reset link sets the password: the invitation is used up with it.
    links
        .redeem(
            LinkKind::Reset,
            reset.token(),
            Password::new("violet staple hinge"),
        )
        .await
        .unwrap();
    assert_eq!(
        lookup_state(
            links
                .lookup(LinkKind::Invitation, invitation.token())
                .await
                .unwrap()
        ),
        Some(LinkState::Used)
    );
    let err = links
        .redeem(
            LinkKind::Invitation,
            invitation.token(),
            Password::new("the holder of an old mail"),
        )
        .await
        .unwrap_err();
    assert_eq!(state(err), LinkState::Used);
    let users = t.store.users();
    assert!(
        users
            .verify_password(ivan.id, Password::new("violet staple hinge"))
            .await
            .unwrap()
    );
    let redeemed = t
        .store
        .audit()
        .list(&AuditFilter {
            action: Some("user.password_reset".into()),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(redeemed[0].after.as_ref().unwrap()["links_voided"], 1);

    // An admin sets the password: both kinds are used up.
    let invitation = links
        .invite(&admin(), ivan.id, Duration::days(7))
        .await
        .unwrap();
    let reset = links
        .issue_reset(&system, ivan.id, Duration::minutes(30))
        .await
        .unwrap();
    users
        .set_password(
            &admin(),
            ivan.id,
            Some(Password::new("set by the helpdesk")),
        )
        .await
        .unwrap();
    for (kind, token) in [
        (LinkKind::Invitation, invitation.token()),
        (LinkKind::Reset, reset.token()),
    ] {
        assert_eq!(
            lookup_state(links.lookup(kind, token).await.unwrap()),
            Some(LinkState::Used),
            "{kind}"
        );
        let err = links
            .redeem(kind, token, Password::new("the holder of an old mail"))
            .await
            .unwrap_err();
        assert_eq!(state(err), LinkState::Used, "{kind}");
    }
    assert!(
        users
            .verify_password(ivan.id, Password::new("set by the helpdesk"))
            .await
            .unwrap()
    );
    // A link made after the change works as usual.
    let fresh = links
        .issue_reset(&system, ivan.id, Duration::minutes(30))
        .await
        .unwrap();
    assert_eq!(
        lookup_state(links.lookup(LinkKind::Reset, fresh.token()).await.unwrap()),
        None
    );
}

/// A suspended user's link shows no form and sets no password (said to be unknown, like a
/// deleted user's); lifting the suspension makes it usable again while it lives.
async fn a_suspended_or_deleted_users_link_does_nothing(t: TestStore) {
    let jane = user(&t.store, "jane").await;
    let links = t.store.enrollment();
    let users = t.store.users();
    let invitation = links
        .invite(&admin(), jane.id, Duration::days(7))
        .await
        .unwrap();
    users.suspend(&admin(), jane.id).await.unwrap();
    assert_eq!(
        lookup_state(
            links
                .lookup(LinkKind::Invitation, invitation.token())
                .await
                .unwrap()
        ),
        Some(LinkState::Unknown)
    );
    let err = links
        .redeem(
            LinkKind::Invitation,
            invitation.token(),
            Password::new("violet staple hinge"),
        )
        .await
        .unwrap_err();
    assert_eq!(state(err), LinkState::Unknown);
    assert!(!users.get(jane.id).await.unwrap().has_password);
    assert!(
        t.store
            .audit()
            .list(&AuditFilter {
                action: Some("user.invitation_redeemed".into()),
                ..AuditFilter::default()
            })
            .await
            .unwrap()
            .is_empty()
    );
    users.delete(&admin(), jane.id).await.unwrap();
    assert_eq!(
        lookup_state(
            links
                .lookup(LinkKind::Invitation, invitation.token())
                .await
                .unwrap()
        ),
        Some(LinkState::Unknown)
    );
}

/// A burst of twenty redemptions of one link: exactly one sets the password and is
/// audited; every other is refused as used (or, past the hash pool's bound, busy), and
/// nothing is half-written.
async fn of_twenty_simultaneous_redemptions_exactly_one_wins(t: TestStore) {
    let kate = user(&t.store, "kate").await;
    let link = t
        .store
        .enrollment()
        .invite(&admin(), kate.id, Duration::hours(1))
        .await
        .unwrap();
    let racers: Vec<_> = (0..20)
        .map(|i| {
            let store = t.store.clone();
            let token = link.token().to_owned();
            tokio::spawn(async move {
                let pw = format!("racer number {i:02} password");
                let out = store
                    .enrollment()
                    .redeem(LinkKind::Invitation, &token, Password::new(pw.clone()))
                    .await;
                (pw, out)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for racer in racers {
        let (pw, out) = racer.await.unwrap();
        match out {
            Ok(_) => winners.push(pw),
            Err(Error::LinkUnusable {
                state: LinkState::Used,
                ..
            })
            | Err(Error::Busy { .. }) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert!(
        t.store
            .users()
            .verify_password(kate.id, Password::new(winners[0].clone()))
            .await
            .unwrap()
    );
    let redeemed = t
        .store
        .audit()
        .list(&AuditFilter {
            action: Some("user.invitation_redeemed".into()),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(redeemed.len(), 1);
}

const CODE_ADDR: &str = "192.0.2.44";

async fn recovery_code_uses(t: &TestStore) -> usize {
    t.store
        .audit()
        .list(&AuditFilter {
            action: Some("mfa.recovery_code_use".into()),
            ..AuditFilter::default()
        })
        .await
        .unwrap()
        .len()
}

/// The reset page checks a recovery code before the password is hashed, but the code is
/// used up only with the link: a busy hash pool, or a parallel post that used the link
/// first, leaves the user their code.
async fn a_recovery_code_survives_a_reset_that_fails_after_its_check(t: TestStore) {
    let lena = user(&t.store, "lena").await;
    let codes = RecoveryCodes::new(&t.store)
        .regenerate(&admin(), &lena, latchkey_idp::session::Keep::Nothing)
        .await
        .unwrap();
    let link = t
        .store
        .enrollment()
        .issue_reset(&admin(), lena.id, Duration::hours(1))
        .await
        .unwrap();

    // The hash pool is full: another handle on the same database, one slow hash at a
    // time and one queue place, with a hash running and one waiting.
    let busy = latchkey_idp::Store::open_url(
        &t.url,
        5,
        latchkey_idp::config::PasswordConfig {
            memory_kib: 8192,
            iterations: 40,
            max_concurrent: 1,
            max_queued: 1,
            ..crate::support::cheap_passwords()
        },
    )
    .await
    .unwrap();
    let holders: Vec<_> = (0..3)
        .map(|_| {
            let busy = busy.clone();
            tokio::spawn(async move { busy.hashing().hash(Password::new("held held held")).await })
        })
        .collect();
    // Full once one of the three is refused.
    while busy.hashing().stats().refused == 0 {
        tokio::task::yield_now().await;
    }
    let checked = RecoveryCodes::new(&busy)
        .check_for_later(&lena, &codes[0], CODE_ADDR)
        .await
        .unwrap()
        .unwrap();
    let out = busy
        .enrollment()
        .redeem_with_code(link.token(), Password::new("a new pass phrase"), checked)
        .await;
    assert!(matches!(out, Err(Error::Busy { .. })), "{out:?}");
    for holder in holders {
        let _ = holder.await.unwrap();
    }
    assert_eq!(
        RecoveryCodes::new(&t.store).remaining(&lena).await.unwrap(),
        10
    );
    assert_eq!(recovery_code_uses(&t).await, 0);

    // A parallel post used the link first (with another code, say): this one is refused
    // as a used link, and its code is still the user's.
    let checked = RecoveryCodes::new(&t.store)
        .check_for_later(&lena, &codes[0], CODE_ADDR)
        .await
        .unwrap()
        .unwrap();
    t.store
        .enrollment()
        .redeem(
            LinkKind::Reset,
            link.token(),
            Password::new("the winner's phrase"),
        )
        .await
        .unwrap();
    let out = t
        .store
        .enrollment()
        .redeem_with_code(link.token(), Password::new("the loser's phrase"), checked)
        .await;
    assert_eq!(state(out.unwrap_err()), LinkState::Used);
    assert_eq!(
        RecoveryCodes::new(&t.store).remaining(&lena).await.unwrap(),
        10
    );
    assert_eq!(recovery_code_uses(&t).await, 0);
    assert!(matches!(
        RecoveryCodes::new(&t.store)
            .consume(&lena, &codes[0], CODE_ADDR)
            .await
            .unwrap(),
        RecoveryCheck::Accepted { remaining: 9 }
    ));
}

/// Twenty posts of one reset link with one recovery code at once: at most one password
/// written, the code used once (and audited once), nothing half-written.
async fn twenty_resets_with_one_code_write_one_password_and_use_the_code_once(t: TestStore) {
    let mona = user(&t.store, "mona").await;
    let codes = RecoveryCodes::new(&t.store)
        .regenerate(&admin(), &mona, latchkey_idp::session::Keep::Nothing)
        .await
        .unwrap();
    let link = t
        .store
        .enrollment()
        .issue_reset(&admin(), mona.id, Duration::hours(1))
        .await
        .unwrap();
    let gate = Arc::new(tokio::sync::Barrier::new(20));
    let racers: Vec<_> = (0..20)
        .map(|i| {
            let (store, gate, mona) = (t.store.clone(), gate.clone(), mona.clone());
            let (token, code) = (link.token().to_owned(), codes[0].to_string());
            tokio::spawn(async move {
                gate.wait().await;
                let pw = format!("racer number {i:02} phrase");
                let checked = match RecoveryCodes::new(&store)
                    .check_for_later(&mona, &code, &format!("192.0.2.{}", 100 + i))
                    .await
                    .unwrap()
                {
                    Ok(checked) => checked,
                    Err(refused) => return (pw, Err(format!("{refused:?}"))),
                };
                let out = store
                    .enrollment()
                    .redeem_with_code(&token, Password::new(pw.clone()), checked)
                    .await;
                (pw, Ok(out))
            })
        })
        .collect();
    let mut winners = Vec::new();
    for racer in racers {
        match racer.await.unwrap() {
            (pw, Ok(Ok(Some(_)))) => winners.push(pw),
            (_, Ok(Ok(None)))
            | (
                _,
                Ok(Err(Error::LinkUnusable {
                    state: LinkState::Used,
                    ..
                })),
            )
            | (_, Ok(Err(Error::Busy { .. }))) => {}
            // Throttled, or checked after the winner used the code.
            (_, Err(refused)) => assert!(
                refused.starts_with("Throttled") || refused == "Wrong",
                "{refused}"
            ),
            (_, Ok(Err(other))) => panic!("{other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert!(
        t.store
            .users()
            .verify_password(mona.id, Password::new(winners[0].clone()))
            .await
            .unwrap()
    );
    assert_eq!(
        RecoveryCodes::new(&t.store).remaining(&mona).await.unwrap(),
        9
    );
    assert_eq!(recovery_code_uses(&t).await, 1);
    let resets = t
        .store
        .audit()
        .list(&AuditFilter {
            action: Some("user.password_reset".into()),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(resets.len(), 1);
}

/// Helpdesk may set the password of a user who holds no console role, and so knows it: if
/// the user then gains a role (granted to them, to a group they are in, or by joining a
/// role-carrying group, one by one or in bulk), that password is cleared and their sessions
/// end, in the same transaction, audited as `user.password_voided`. A password the user or
/// an admin set since, or one set by an admin, keeps working; so does helpdesk's for a user
/// who gains no role.
async fn a_password_helpdesk_set_stops_working_when_a_role_is_gained(t: TestStore) {
    use latchkey_idp::console::{Holder, Role};
    use latchkey_idp::directory::Setter;
    let users = t.store.users();
    let helpdesk = &latchkey_idp::Actor::new("user:helpdesk");
    let pw = || Password::new("helpdesk knows this one");
    let set = |id, setter| async move {
        users
            .set_password_by(helpdesk, id, Some(pw()), setter)
            .await
            .unwrap()
    };
    let works = |id| async move { users.verify_password(id, pw()).await.unwrap() };
    let [ann, bea, cal, dan, eve, fay] = [
        user(&t.store, "ann").await,
        user(&t.store, "bea").await,
        user(&t.store, "cal").await,
        user(&t.store, "dan").await,
        user(&t.store, "eve").await,
        user(&t.store, "fay").await,
    ];
    for u in [&ann, &bea, &dan, &eve, &fay] {
        set(u.id, Setter::Helpdesk).await;
    }
    set(cal.id, Setter::Trusted).await;
    // An admin sets dan's password again (the same one): no longer helpdesk's.
    users
        .set_password(&admin(), dan.id, Some(pw()))
        .await
        .unwrap();
    let ops = group(&t.store, "ops").await;
    let plain = group(&t.store, "plain").await;
    join(&t.store, ops.id, bea.id).await;
    let roles = t.store.roles();
    roles
        .grant(&admin(), Role::Auditor, Holder::Group(ops.id))
        .await
        .unwrap();
    let sessions = Sessions::new(&t.store);
    let (token, _) = sessions
        .create(&ann, t.store.now(), Duration::hours(8))
        .await
        .unwrap();

    roles
        .grant(&admin(), Role::Admin, Holder::User(ann.id))
        .await
        .unwrap();
    for u in [&cal, &dan] {
        roles
            .grant(&admin(), Role::Helpdesk, Holder::User(u.id))
            .await
            .unwrap();
    }
    join(&t.store, plain.id, eve.id).await;
    t.store
        .groups()
        .add_members(&admin(), &ops, std::slice::from_ref(&fay))
        .await
        .unwrap();

    assert!(!works(ann.id).await, "granted a role");
    assert!(
        !works(bea.id).await,
        "a group they are in was granted a role"
    );
    assert!(!works(fay.id).await, "added to a role-carrying group");
    assert!(works(cal.id).await, "set by an admin");
    assert!(works(dan.id).await, "set again by an admin");
    assert!(works(eve.id).await, "gained no role");
    assert!(!users.get(ann.id).await.unwrap().has_password);
    assert!(
        sessions
            .resume(token.expose(), t.store.now(), Duration::hours(1))
            .await
            .unwrap()
            .is_none(),
        "the session that may be the setter's ended"
    );
    let voided = t
        .store
        .audit()
        .list(&AuditFilter {
            action: Some("user.password_voided".into()),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    let mut named: Vec<(&str, String)> = voided
        .iter()
        .map(|e| {
            (
                e.target_name.as_deref().unwrap(),
                e.after.as_ref().unwrap()["roles"].to_string(),
            )
        })
        .collect();
    named.sort();
    assert_eq!(
        named,
        [
            ("ann", r#"["admin"]"#.to_owned()),
            ("bea", r#"["auditor"]"#.to_owned()),
            ("fay", r#"["auditor"]"#.to_owned()),
        ]
    );

    // A password set after the role is the holder's own business (helpdesk cannot set it;
    // an admin can, and it stays).
    users
        .set_password(&admin(), ann.id, Some(pw()))
        .await
        .unwrap();
    roles
        .grant(&admin(), Role::Auditor, Holder::User(ann.id))
        .await
        .unwrap();
    assert!(works(ann.id).await);
}

/// A link issued while its user held no console role (helpdesk may hold an invitation the
/// console showed) must not set the password of an account that has since gained one:
/// granting a role to the user, to a group they are in, or adding them (one by one or in
/// bulk) to a group that carries one, uses up their links in the same transaction, audited
/// as `user.links_voided`. A user who gains no role keeps theirs.
async fn gaining_a_console_role_uses_up_the_links(t: TestStore) {
    use latchkey_idp::console::{Holder, Role};
    let links = t.store.enrollment();
    let system = latchkey_idp::Actor::system();
    let invite = |id| async move { links.invite(&admin(), id, Duration::days(7)).await.unwrap() };
    let [dora, eve, fay, gus, hal, ida] = [
        user(&t.store, "dora").await,
        user(&t.store, "eve").await,
        user(&t.store, "fay").await,
        user(&t.store, "gus").await,
        user(&t.store, "hal").await,
        user(&t.store, "ida").await,
    ];
    let ops = group(&t.store, "ops").await;
    let staff = group(&t.store, "staff").await;
    let plain = group(&t.store, "plain").await;
    join(&t.store, ops.id, fay.id).await;
    join(&t.store, plain.id, gus.id).await;
    let roles = t.store.roles();
    roles
        .grant(&admin(), Role::Auditor, Holder::Group(staff.id))
        .await
        .unwrap();

    // A role granted to the user: the invitation and the reset link.
    let (dora_invite, dora_reset) = (
        invite(dora.id).await,
        links
            .issue_reset(&system, dora.id, Duration::minutes(30))
            .await
            .unwrap(),
    );
    let gus_invite = invite(gus.id).await;
    roles
        .grant(&admin(), Role::Helpdesk, Holder::User(dora.id))
        .await
        .unwrap();
    assert!(!usable(&t, &dora_invite, LinkKind::Invitation).await);
    assert!(!usable(&t, &dora_reset, LinkKind::Reset).await);
    let err = links
        .redeem(
            LinkKind::Invitation,
            dora_invite.token(),
            Password::new("chosen by the helpdesk"),
        )
        .await
        .unwrap_err();
    assert_eq!(state(err), LinkState::Used);

    // A role granted to a group the user is in.
    let fay_invite = invite(fay.id).await;
    roles
        .grant(&admin(), Role::Admin, Holder::Group(ops.id))
        .await
        .unwrap();
    assert!(!usable(&t, &fay_invite, LinkKind::Invitation).await);

    // Joining a group that carries a role, one by one and in bulk.
    let eve_invite = invite(eve.id).await;
    join(&t.store, staff.id, eve.id).await;
    assert!(!usable(&t, &eve_invite, LinkKind::Invitation).await);
    let (hal_invite, ida_invite) = (invite(hal.id).await, invite(ida.id).await);
    t.store
        .groups()
        .add_members(&admin(), &staff, std::slice::from_ref(&hal))
        .await
        .unwrap();
    assert!(!usable(&t, &hal_invite, LinkKind::Invitation).await);

    // Joining a group without a role, or no change at all, leaves the links working.
    join(&t.store, plain.id, ida.id).await;
    assert!(usable(&t, &ida_invite, LinkKind::Invitation).await);
    assert!(usable(&t, &gus_invite, LinkKind::Invitation).await);
    links
        .redeem(
            LinkKind::Invitation,
            gus_invite.token(),
            Password::new("violet staple hinge"),
        )
        .await
        .unwrap();

    // Each user whose links went is audited once, naming the role.
    let voided = t
        .store
        .audit()
        .list(&AuditFilter {
            action: Some("user.links_voided".into()),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    let mut named: Vec<(&str, String, i64)> = voided
        .iter()
        .map(|e| {
            let after = e.after.as_ref().unwrap();
            (
                e.target_name.as_deref().unwrap(),
                after["roles"].to_string(),
                after["links_voided"].as_i64().unwrap(),
            )
        })
        .collect();
    named.sort();
    assert_eq!(
        named,
        [
            ("dora", r#"["helpdesk"]"#.to_owned(), 2),
            ("eve", r#"["auditor"]"#.to_owned(), 1),
            ("fay", r#"["admin"]"#.to_owned(), 1),
            ("hal", r#"["auditor"]"#.to_owned(), 1),
        ]
    );
    assert!(voided.iter().all(|e| e.actor == admin().as_str()));
}

async fn usable(t: &TestStore, link: &IssuedLink, kind: LinkKind) -> bool {
    let found = t
        .store
        .enrollment()
        .lookup(kind, link.token())
        .await
        .unwrap();
    lookup_state(found).is_none()
}
