//! The sign-in's one read (`sso::grant::resume`): the session a cookie names and its grant
//! at an application in one statement. It must decide exactly as the two reads it replaces
//! (`Sessions::resume`, then `grant::load`), with the same effects on sessions that are over.

use latchkey_idp::ManualClock;
use latchkey_idp::apps::{Application, NewApplication};
use latchkey_idp::session::{SessionApp, Sessions};
use latchkey_idp::sso::grant;
use latchkey_idp::{Actor, Store};
use time::{Duration, macros::datetime};

use super::{admin, group, join, user};
use crate::on_both_backends;
use crate::support::TestStore;

on_both_backends!(
    sign_in_read_is_the_session_and_its_grant,
    sign_in_read_ends_sessions_that_are_over
);

const T0: time::OffsetDateTime = datetime!(2026-12-05 12:00:00 UTC);
const IDLE: Duration = Duration::minutes(30);
const LIFETIME: Duration = Duration::hours(8);

fn clocked(t: &TestStore) -> (Store, ManualClock) {
    let clock = ManualClock::new(T0);
    (t.store.clone().with_clock(clock.clone()), clock)
}

async fn app(s: &Store, name: &str) -> Application {
    let host = format!("https://{name}.example.org");
    s.apps()
        .create(
            &admin(),
            NewApplication::new(&host, name, format!("{host}/acs")),
        )
        .await
        .unwrap()
}

/// Both reads of a sign-in, the one statement and the two it replaces, agree for `token` at
/// `app`; returns the grant.
async fn agree(s: &Store, token: &str, app: &Application) -> Option<grant::Grant> {
    let now = s.now();
    let one = grant::resume(s, token, now, IDLE, app.id).await.unwrap();
    let two = match Sessions::new(s).resume(token, now, IDLE).await.unwrap() {
        Some(session) => {
            let grant = grant::load(s, &session, app).await.unwrap();
            Some((session, grant))
        }
        None => None,
    };
    match (one, two) {
        (None, None) => None,
        (Some((a, ga, _)), Some((b, gb))) => {
            assert_eq!(a.user, b.user);
            assert_eq!(a.session_index, b.session_index);
            assert_eq!(a.authn_at, b.authn_at);
            assert_eq!(a.methods, b.methods);
            assert_eq!(a.expires_at, b.expires_at);
            assert_eq!(ga, gb);
            Some(ga)
        }
        (one, two) => panic!(
            "the one statement found a session: {}, the two reads: {}",
            one.is_some(),
            two.is_some()
        ),
    }
}

async fn sign_in_read_is_the_session_and_its_grant(t: TestStore) {
    let (s, _clock) = clocked(&t);
    let wiki = app(&s, "wiki").await;
    let crm = app(&s, "crm").await;
    let ann = user(&s, "ann").await;
    let (token, session) = Sessions::new(&s)
        .create(&ann, s.now(), LIFETIME)
        .await
        .unwrap();

    // No groups, nothing recorded: no grant row at all, still the session.
    let g = agree(&s, token.expose(), &wiki).await.unwrap();
    assert!(!g.may_access);
    assert!(g.groups.is_empty() && g.pairwise.is_none() && g.recorded.is_none());

    // Two groups, one of them granted the wiki: access there only, groups in name order.
    let staff = group(&s, "staff").await;
    let editors = group(&s, "Editors").await;
    join(&s, staff.id, ann.id).await;
    join(&s, editors.id, ann.id).await;
    s.apps()
        .assign(&admin(), wiki.id, editors.id)
        .await
        .unwrap();
    let g = agree(&s, token.expose(), &wiki).await.unwrap();
    assert!(g.may_access);
    assert_eq!(g.groups, ["Editors", "staff"]);
    assert!(!agree(&s, token.expose(), &crm).await.unwrap().may_access);

    // The pairwise NameID and what this session told the wiki come along, for the wiki only.
    let pairwise = s.apps().persistent_name_id(ann.id, wiki.id).await.unwrap();
    let told = SessionApp {
        app: wiki.id,
        name_id: pairwise.clone(),
        name_id_format: "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent".into(),
    };
    Sessions::new(&s)
        .record_app(&session, &told, s.now())
        .await
        .unwrap();
    let g = agree(&s, token.expose(), &wiki).await.unwrap();
    assert_eq!(g.pairwise.as_deref(), Some(pairwise.as_str()));
    assert_eq!(g.recorded, Some(told));
    let g = agree(&s, token.expose(), &crm).await.unwrap();
    assert!(g.pairwise.is_none() && g.recorded.is_none());

    // Another user's session reads that user's grant, never ann's.
    let bob = user(&s, "bob").await;
    let (bobs, _) = Sessions::new(&s)
        .create(&bob, s.now(), LIFETIME)
        .await
        .unwrap();
    let g = agree(&s, bobs.expose(), &wiki).await.unwrap();
    assert!(!g.may_access && g.groups.is_empty() && g.recorded.is_none());

    // Tokens no session has.
    assert!(agree(&s, "", &wiki).await.is_none());
    assert!(agree(&s, &"x".repeat(129), &wiki).await.is_none());
    assert!(agree(&s, "not-a-token", &wiki).await.is_none());
}

async fn sign_in_read_ends_sessions_that_are_over(t: TestStore) {
    let (s, clock) = clocked(&t);
    let wiki = app(&s, "wiki").await;
    let ann = user(&s, "ann").await;
    let staff = group(&s, "staff").await;
    join(&s, staff.id, ann.id).await;
    s.apps().assign(&admin(), wiki.id, staff.id).await.unwrap();
    let sessions = Sessions::new(&s);
    let live = |token: &str| {
        let token = token.to_owned();
        let s = s.clone();
        let app = wiki.id;
        async move {
            grant::resume(&s, &token, s.now(), IDLE, app)
                .await
                .unwrap()
                .is_some()
        }
    };

    // Idle too long: ended by the read, so it stays ended when the clock is set back.
    let (idle, _) = sessions.create(&ann, s.now(), LIFETIME).await.unwrap();
    clock.advance(IDLE);
    assert!(!live(idle.expose()).await);
    clock.set(T0);
    assert!(
        sessions
            .resume(idle.expose(), s.now(), IDLE)
            .await
            .unwrap()
            .is_none()
    );

    // A request within the idle time keeps it going (the read notes it).
    let (busy, _) = sessions.create(&ann, s.now(), LIFETIME).await.unwrap();
    for _ in 0..4 {
        clock.advance(IDLE - Duration::minutes(1));
        assert!(live(busy.expose()).await);
    }

    // Past the absolute lifetime, however busy.
    clock.set(T0);
    let (old, _) = sessions.create(&ann, s.now(), LIFETIME).await.unwrap();
    for _ in 0..20 {
        clock.advance(Duration::minutes(25));
        if s.now() - T0 >= LIFETIME {
            break;
        }
        assert!(live(old.expose()).await);
    }
    clock.set(T0 + LIFETIME);
    assert!(!live(old.expose()).await);

    // A suspended user: no session, and all of theirs end.
    clock.set(T0);
    let (one, _) = sessions.create(&ann, s.now(), LIFETIME).await.unwrap();
    let (two, _) = sessions.create(&ann, s.now(), LIFETIME).await.unwrap();
    s.users()
        .suspend(&Actor::cli("tester"), ann.id)
        .await
        .unwrap();
    assert!(!live(one.expose()).await);
    s.users()
        .resume(&Actor::cli("tester"), ann.id)
        .await
        .unwrap();
    assert!(!live(two.expose()).await);
    assert!(sessions.of_user(ann.id, s.now()).await.unwrap().is_empty());
}
