//! Self-service in the store: a password change (current password, throttle, the other
//! sessions ended in the same transaction), a user's sessions with their client, ending one
//! of one's own only, and the sign-in history read from the audit log.

use latchkey_idp::account::{Account, PasswordChange};
use latchkey_idp::audit::Change;
use latchkey_idp::password::Password;
use latchkey_idp::session::{Client, MAX_USER_AGENT_CHARS, Sessions};
use latchkey_idp::{Actor, Error, ManualClock, Store};
use time::{Duration, macros::datetime};

use super::user;
use crate::on_both_backends;
use crate::support::TestStore;

on_both_backends!(
    a_password_change_checks_the_current_one_and_ends_the_other_sessions,
    sessions_list_with_their_client_and_end_only_ones_own,
    sign_ins_come_from_the_audit_log_newest_first
);

const T0: time::OffsetDateTime = datetime!(2026-12-05 12:00:00 UTC);
const OLD: &str = "the old long passphrase";
const NEW: &str = "a brand new long passphrase";

async fn with_password(s: &Store, name: &str) -> latchkey_idp::directory::User {
    let u = user(s, name).await;
    s.users()
        .set_password(&Actor::system(), u.id, Some(Password::new(OLD)))
        .await
        .unwrap();
    s.users().get(u.id).await.unwrap()
}

async fn a_password_change_checks_the_current_one_and_ends_the_other_sessions(t: TestStore) {
    let s = t.store.clone().with_clock(ManualClock::new(T0));
    let ann = with_password(&s, "ann").await;
    let ben = with_password(&s, "ben").await;
    let sessions = Sessions::new(&s);
    let (_, here) = sessions.create(&ann, T0, Duration::hours(8)).await.unwrap();
    let (other, _) = sessions.create(&ann, T0, Duration::hours(8)).await.unwrap();
    let (bens, _) = sessions.create(&ben, T0, Duration::hours(8)).await.unwrap();
    let account = Account::new(&s);

    // The policy first: nothing counted, nothing changed.
    let short = account
        .change_password(
            &here,
            Password::new(OLD),
            Password::new("short"),
            "192.0.2.1",
        )
        .await;
    assert!(
        matches!(short, Err(Error::PasswordRefused { .. })),
        "{short:?}"
    );
    let wrong = account
        .change_password(
            &here,
            Password::new("nope"),
            Password::new(NEW),
            "192.0.2.1",
        )
        .await
        .unwrap();
    assert_eq!(wrong, PasswordChange::WrongPassword);
    assert!(
        s.users()
            .verify_password(ann.id, Password::new(OLD))
            .await
            .unwrap()
    );

    let done = account
        .change_password(&here, Password::new(OLD), Password::new(NEW), "192.0.2.1")
        .await
        .unwrap();
    assert_eq!(done, PasswordChange::Changed { sessions_ended: 1 });
    assert!(
        s.users()
            .verify_password(ann.id, Password::new(NEW))
            .await
            .unwrap()
    );
    let idle = Duration::hours(1);
    assert!(
        sessions
            .resume(other.expose(), T0, idle)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        sessions
            .resume(bens.expose(), T0, idle)
            .await
            .unwrap()
            .is_some()
    );
    let of_ann = sessions.of_user(ann.id, T0).await.unwrap();
    assert_eq!(of_ann.len(), 1);
    assert_eq!(of_ann[0].session_index, here.session_index);
}

async fn sessions_list_with_their_client_and_end_only_ones_own(t: TestStore) {
    let s = t.store.clone().with_clock(ManualClock::new(T0));
    let ann = user(&s, "ann").await;
    let ben = user(&s, "ben").await;
    let sessions = Sessions::new(&s);
    let agent = format!("Agent/1.0 {}", "x".repeat(400));
    let client = Client::new("192.0.2.7", Some(&agent));
    let methods = latchkey_idp::mfa::Methods::password();
    let (_, first) = sessions
        .create_with(&ann, methods.clone(), &client, T0, Duration::hours(8))
        .await
        .unwrap();
    let later = T0 + Duration::minutes(5);
    let (_, second) = sessions
        .create_with(&ann, methods, &Client::default(), later, Duration::hours(8))
        .await
        .unwrap();
    let (_, bens) = sessions.create(&ben, T0, Duration::hours(8)).await.unwrap();

    let listed = sessions.of_user(ann.id, later).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(
        listed[0].session_index, second.session_index,
        "most recent first"
    );
    assert_eq!(listed[1].address.as_deref(), Some("192.0.2.7"));
    let kept = listed[1].user_agent.as_deref().unwrap();
    assert_eq!(kept.chars().count(), MAX_USER_AGENT_CHARS);
    assert!(kept.starts_with("Agent/1.0 "));
    assert_eq!(listed[0].address, None);
    // Past its absolute expiry a session is not listed.
    assert!(
        sessions
            .of_user(ann.id, T0 + Duration::hours(9))
            .await
            .unwrap()
            .is_empty()
    );

    // Ben's session is not Ann's to end: nothing ended, nothing audited.
    let actor = Actor::person(&ann);
    assert!(
        !sessions
            .end_one_audited(&actor, &ann, &bens.session_index)
            .await
            .unwrap()
    );
    assert_eq!(sessions.of_user(ben.id, later).await.unwrap().len(), 1);
    assert!(
        sessions
            .end_one_audited(&actor, &ann, &first.session_index)
            .await
            .unwrap()
    );
    assert!(
        !sessions
            .end_one_audited(&actor, &ann, &first.session_index)
            .await
            .unwrap()
    );
    let left = sessions.of_user(ann.id, later).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].session_index, second.session_index);
    let events = s
        .audit()
        .list(&latchkey_idp::audit::AuditFilter {
            action: Some("session.end".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].actor_name.as_deref(), Some("ann"));
}

async fn sign_ins_come_from_the_audit_log_newest_first(t: TestStore) {
    let s = t.store.clone().with_clock(ManualClock::new(T0));
    let ann = user(&s, "ann").await;
    let ben = user(&s, "ben").await;
    let record = |who: &latchkey_idp::directory::User, action: &'static str, n: i64| {
        let s = s.clone();
        let who = who.clone();
        async move {
            s.audit()
                .record(
                    &Actor::person(&who),
                    T0 + Duration::seconds(n),
                    Change {
                        action,
                        target_kind: "user",
                        target_id: who.id.to_string(),
                        target_name: who.username.clone(),
                        before: None,
                        after: Some(serde_json::json!({ "n": n })),
                    },
                )
                .await
                .unwrap();
        }
    };
    record(&ann, "login.failure", 1).await;
    record(&ann, "login.success", 2).await;
    record(&ben, "login.success", 3).await;
    record(&ann, "user.update", 4).await;
    record(&ann, "login.step_up", 5).await;
    let seen = Account::new(&s).sign_ins(ann.id, 20).await.unwrap();
    let actions: Vec<&str> = seen.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["login.step_up", "login.success", "login.failure"]);
    let two = Account::new(&s).sign_ins(ann.id, 2).await.unwrap();
    assert_eq!(two.len(), 2);
}
