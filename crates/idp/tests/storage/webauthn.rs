//! Passkeys and security keys against a software authenticator (webauthn-authenticator-rs):
//! real attestation and assertion bytes that our code did not make.

use latchkey_idp::audit::AuditFilter;
use latchkey_idp::mfa::recovery::RecoveryCodes;
use latchkey_idp::store::front_door::{EXPIRED_PER_START, FrontDoor, Scope};
use latchkey_idp::webauthn::{
    Ceremonies, Code, Credentials, MAX_PENDING, MAX_PENDING_PER_OWNER, Purpose, RelyingParty,
    WebauthnConfig, WebauthnError,
};
use latchkey_idp::{Actor, ManualClock, Store};
use time::Duration;
use url::Url;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs_proto::{AllowCredentials, PublicKeyCredential, RequestChallengeResponse};

use super::user;
use crate::on_both_backends;
use crate::support::TestStore;

const ORIGIN: &str = "https://idp.example.org";
const ADDR: &str = "192.0.2.7";

on_both_backends!(
    enrol_then_sign_in_without_password_and_as_second_factor,
    replayed_or_expired_challenges_are_refused,
    wrong_origin_and_malformed_attestation_leave_nothing,
    wrong_credentials_are_refused_and_throttled,
    rename_and_remove_are_audited,
    ceremonies_under_way_are_capped,
    ceremonies_from_one_ipv6_48_share_a_wider_cap,
    a_flood_of_anonymous_ceremonies_leaves_users_their_second_factor,
    a_key_is_a_factor_to_the_mfa_policy,
    every_count_a_start_takes_reads_the_kept_counts_by_key,
    a_use_finishing_after_a_higher_one_is_refused_as_a_regression,
    a_counter_below_the_stored_one_is_refused_and_audited,
    a_burst_at_the_anonymous_total_starts_exactly_up_to_it,
);

fn rp() -> RelyingParty {
    RelyingParty::new(ORIGIN, &WebauthnConfig::default()).unwrap()
}

fn origin() -> Url {
    Url::parse(ORIGIN).unwrap()
}

fn code<T: std::fmt::Debug>(r: Result<T, WebauthnError>) -> Code {
    r.unwrap_err().code()
}

/// Enrols a new soft key for `u` and returns it.
async fn enrol(
    store: &Store,
    rp: &RelyingParty,
    u: &latchkey_idp::directory::User,
    name: &str,
) -> SoftPasskey {
    let mut key = SoftPasskey::new(true);
    let started = Ceremonies::new(store, rp)
        .start_registration(u)
        .await
        .unwrap();
    let answer = key.do_registration(origin(), started.options).unwrap();
    Ceremonies::new(store, rp)
        .finish_registration(&Actor::user(u.id), u, &started.handle, &answer, name)
        .await
        .unwrap();
    key
}

/// What a resident-key authenticator answers to a discoverable request: the soft key holds
/// no resident credentials, so it is told which of its keys to use (client side only: the
/// challenge is unchanged) and the user handle it would have stored is added (the user
/// handle is not signed).
fn discoverable_answer(
    key: &mut SoftPasskey,
    mut options: RequestChallengeResponse,
    credential_id: Vec<u8>,
    user: &latchkey_idp::directory::User,
) -> PublicKeyCredential {
    options.public_key.allow_credentials = vec![AllowCredentials {
        type_: "public-key".into(),
        id: credential_id,
        transports: None,
    }];
    let mut answer = key.do_authentication(origin(), options).unwrap();
    answer.response.user_handle = Some(user.id.0.as_bytes().to_vec());
    answer
}

async fn enrolled_id(
    store: &Store,
    key_owner: &latchkey_idp::directory::User,
    rp: &RelyingParty,
) -> Vec<u8> {
    // The credential ID an authenticator uses is what a second-factor request allows.
    let started = Ceremonies::new(store, rp)
        .start_sign_in(Purpose::SecondFactor, Some(key_owner), ADDR)
        .await
        .unwrap();
    started.options.public_key.allow_credentials[0].id.to_vec()
}

async fn enrol_then_sign_in_without_password_and_as_second_factor(t: TestStore) {
    let store = t.store;
    let rp = rp();
    let alice = user(&store, "alice").await;
    let mut key = enrol(&store, &rp, &alice, "YubiKey").await;
    let listed = Credentials::new(&store).list(alice.id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "YubiKey");
    assert_eq!(listed[0].last_used_at, None);
    let registered = store
        .audit()
        .list(&AuditFilter {
            action: Some("webauthn.registered".into()),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(registered.len(), 1);
    assert_eq!(
        registered[0].target_id.as_deref(),
        Some(alice.id.to_string().as_str())
    );

    // Passwordless: no user named in the request; the answer names her.
    let cred_id = enrolled_id(&store, &alice, &rp).await;
    let ceremonies = Ceremonies::new(&store, &rp);
    let started = ceremonies
        .start_sign_in(Purpose::Passwordless, None, ADDR)
        .await
        .unwrap();
    assert!(started.options.public_key.allow_credentials.is_empty());
    let answer = discoverable_answer(&mut key, started.options, cred_id, &alice);
    let (who, used) = ceremonies
        .finish_passwordless(&started.handle, &answer, ADDR)
        .await
        .unwrap();
    assert_eq!(who.id, alice.id);
    assert_eq!(used.name, "YubiKey");
    let listed = Credentials::new(&store).list(alice.id).await.unwrap();
    assert!(listed[0].last_used_at.is_some());

    // Second factor: her credential on the allow-list.
    let started = ceremonies
        .start_sign_in(Purpose::SecondFactor, Some(&alice), ADDR)
        .await
        .unwrap();
    assert_eq!(started.options.public_key.allow_credentials.len(), 1);
    let answer = key.do_authentication(origin(), started.options).unwrap();
    let used = ceremonies
        .finish_second_factor(&alice, &started.handle, &answer, ADDR)
        .await
        .unwrap();
    assert_eq!(used.id, listed[0].id);
}

async fn replayed_or_expired_challenges_are_refused(t: TestStore) {
    let clock = ManualClock::starting_now();
    let store = t.store.with_clock(clock.clone());
    let rp = rp();
    let alice = user(&store, "alice").await;
    let ceremonies = Ceremonies::new(&store, &rp);
    let actor = Actor::user(alice.id);

    // Enrolment answered twice: the second finds no ceremony, and one row exists.
    let mut key = SoftPasskey::new(true);
    let started = ceremonies.start_registration(&alice).await.unwrap();
    let answer = key.do_registration(origin(), started.options).unwrap();
    ceremonies
        .finish_registration(&actor, &alice, &started.handle, &answer, "one")
        .await
        .unwrap();
    let again = ceremonies
        .finish_registration(&actor, &alice, &started.handle, &answer, "two")
        .await;
    assert_eq!(code(again), Code::Challenge);
    assert_eq!(Credentials::new(&store).count(alice.id).await.unwrap(), 1);

    // A sign-in answer replayed under its own (used) handle.
    let started = ceremonies
        .start_sign_in(Purpose::SecondFactor, Some(&alice), ADDR)
        .await
        .unwrap();
    let answer = key.do_authentication(origin(), started.options).unwrap();
    ceremonies
        .finish_second_factor(&alice, &started.handle, &answer, ADDR)
        .await
        .unwrap();
    let replay = ceremonies
        .finish_second_factor(&alice, &started.handle, &answer, ADDR)
        .await;
    assert_eq!(code(replay), Code::Challenge);

    // The old answer under a fresh handle: the challenge inside it is not the new one.
    let fresh = ceremonies
        .start_sign_in(Purpose::SecondFactor, Some(&alice), ADDR)
        .await
        .unwrap();
    let replay = ceremonies
        .finish_second_factor(&alice, &fresh.handle, &answer, ADDR)
        .await;
    assert_eq!(code(replay), Code::Refused);

    // A handle of another kind is not accepted (and is used up).
    let reg = ceremonies.start_registration(&alice).await.unwrap();
    let wrong_kind = ceremonies
        .finish_second_factor(&alice, &reg.handle, &answer, ADDR)
        .await;
    assert_eq!(code(wrong_kind), Code::Challenge);

    // Expired: answered after the lifetime.
    let started = ceremonies
        .start_sign_in(Purpose::SecondFactor, Some(&alice), ADDR)
        .await
        .unwrap();
    let answer = key.do_authentication(origin(), started.options).unwrap();
    clock.advance(latchkey_idp::webauthn::CHALLENGE_LIFETIME + Duration::seconds(1));
    let late = ceremonies
        .finish_second_factor(&alice, &started.handle, &answer, ADDR)
        .await;
    assert_eq!(code(late), Code::Challenge);
}

async fn wrong_origin_and_malformed_attestation_leave_nothing(t: TestStore) {
    let store = t.store;
    let rp = rp();
    let alice = user(&store, "alice").await;
    let ceremonies = Ceremonies::new(&store, &rp);
    let actor = Actor::user(alice.id);
    let audit_before = store.audit().count().await.unwrap();

    // Made on a look-alike origin: the client data the browser wrote names it, we refuse.
    let mut key = SoftPasskey::new(true);
    let started = ceremonies.start_registration(&alice).await.unwrap();
    let mut answer = key.do_registration(origin(), started.options).unwrap();
    let client_data = String::from_utf8(answer.response.client_data_json.to_vec()).unwrap();
    assert!(client_data.contains(ORIGIN));
    answer.response.client_data_json = client_data
        .replace(ORIGIN, "https://idp.example.org.evil.test")
        .into_bytes();
    let refused = ceremonies
        .finish_registration(&actor, &alice, &started.handle, &answer, "evil")
        .await;
    assert_eq!(code(refused), Code::WrongRelyingParty);

    // Another RP ID (the authenticator data's hash): a relying party at another host.
    let other = RelyingParty::new("https://other.example.net", &WebauthnConfig::default()).unwrap();
    let started = Ceremonies::new(&store, &other)
        .start_registration(&alice)
        .await
        .unwrap();
    let answer = key
        .do_registration(
            Url::parse("https://other.example.net").unwrap(),
            started.options,
        )
        .unwrap();
    let started_here = ceremonies.start_registration(&alice).await.unwrap();
    let refused = ceremonies
        .finish_registration(&actor, &alice, &started_here.handle, &answer, "other")
        .await;
    assert!(matches!(
        code(refused),
        Code::Refused | Code::WrongRelyingParty
    ));

    // A truncated attestation object (bad CBOR).
    let started = ceremonies.start_registration(&alice).await.unwrap();
    let mut answer = key.do_registration(origin(), started.options).unwrap();
    let cut = answer.response.attestation_object.len() / 2;
    let mut bytes = answer.response.attestation_object.to_vec();
    bytes.truncate(cut);
    answer.response.attestation_object = bytes;
    let refused = ceremonies
        .finish_registration(&actor, &alice, &started.handle, &answer, "cut")
        .await;
    assert_eq!(code(refused), Code::Malformed);

    // A bad name is refused before the ceremony is used.
    let started = ceremonies.start_registration(&alice).await.unwrap();
    let answer = key.do_registration(origin(), started.options).unwrap();
    let refused = ceremonies
        .finish_registration(&actor, &alice, &started.handle, &answer, "  ")
        .await;
    assert_eq!(code(refused), Code::BadName);

    assert_eq!(Credentials::new(&store).count(alice.id).await.unwrap(), 0);
    assert_eq!(store.audit().count().await.unwrap(), audit_before);
}

async fn wrong_credentials_are_refused_and_throttled(t: TestStore) {
    let store = t.store;
    let rp = rp();
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let _alice_key = enrol(&store, &rp, &alice, "alice's").await;
    let mut bob_key = enrol(&store, &rp, &bob, "bob's").await;
    let ceremonies = Ceremonies::new(&store, &rp);

    // Bob's key for Alice's second factor.
    let started = ceremonies
        .start_sign_in(Purpose::SecondFactor, Some(&alice), ADDR)
        .await
        .unwrap();
    let bob_id = enrolled_id(&store, &bob, &rp).await;
    let mut options = started.options;
    options.public_key.allow_credentials[0].id = bob_id.clone();
    let answer = bob_key.do_authentication(origin(), options).unwrap();
    let refused = ceremonies
        .finish_second_factor(&alice, &started.handle, &answer, ADDR)
        .await;
    assert_eq!(code(refused), Code::UnknownCredential);

    // Bob's key claiming to be Alice's passkey (her user handle): refused.
    let started = ceremonies
        .start_sign_in(Purpose::Passwordless, None, ADDR)
        .await
        .unwrap();
    let answer = discoverable_answer(&mut bob_key, started.options, bob_id.clone(), &alice);
    let refused = ceremonies
        .finish_passwordless(&started.handle, &answer, ADDR)
        .await;
    assert_eq!(code(refused), Code::UnknownCredential);

    // A key never enrolled here.
    let mut stranger = SoftPasskey::new(true);
    let elsewhere = crate::support::sqlite().await;
    let carol = user(&elsewhere.store, "carol").await;
    let reg = Ceremonies::new(&elsewhere.store, &rp)
        .start_registration(&carol)
        .await
        .unwrap();
    let made = stranger.do_registration(origin(), reg.options).unwrap();
    let started = ceremonies
        .start_sign_in(Purpose::Passwordless, None, ADDR)
        .await
        .unwrap();
    let answer = discoverable_answer(&mut stranger, started.options, made.raw_id.to_vec(), &carol);
    let refused = ceremonies
        .finish_passwordless(&started.handle, &answer, ADDR)
        .await;
    assert_eq!(code(refused), Code::UnknownCredential);

    // Forged signatures for Bob count like password guesses until his account is blocked.
    let mut codes = Vec::new();
    for _ in 0..12 {
        let started = ceremonies
            .start_sign_in(Purpose::Passwordless, None, "198.51.100.9")
            .await
            .unwrap();
        let mut answer = discoverable_answer(&mut bob_key, started.options, bob_id.clone(), &bob);
        let mut sig = answer.response.signature.to_vec();
        let last = sig.len() - 1;
        sig[last] ^= 1;
        answer.response.signature = sig;
        codes.push(code(
            ceremonies
                .finish_passwordless(&started.handle, &answer, "198.51.100.9")
                .await,
        ));
    }
    assert_eq!(codes[0], Code::Refused);
    assert!(codes.contains(&Code::Throttled), "{codes:?}");
}

async fn rename_and_remove_are_audited(t: TestStore) {
    let store = t.store;
    let rp = rp();
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    enrol(&store, &rp, &alice, "first").await;
    enrol(&store, &rp, &alice, "second").await;
    let creds = Credentials::new(&store);
    let listed = creds.list(alice.id).await.unwrap();
    assert_eq!(listed.len(), 2);
    let actor = Actor::user(alice.id);
    let renamed = creds
        .rename(&actor, alice.id, listed[0].id, "laptop")
        .await
        .unwrap();
    assert_eq!(renamed.name, "laptop");
    // Not Bob's to touch.
    let refused = creds
        .remove(
            &Actor::user(bob.id),
            bob.id,
            listed[1].id,
            latchkey_idp::session::Keep::Nothing,
        )
        .await;
    assert_eq!(code(refused), Code::UnknownCredential);
    creds
        .remove(
            &actor,
            alice.id,
            listed[1].id,
            latchkey_idp::session::Keep::Nothing,
        )
        .await
        .unwrap();
    let names: Vec<String> = creds
        .list(alice.id)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["laptop"]);
    for action in ["webauthn.renamed", "webauthn.removed"] {
        let events = store
            .audit()
            .list(&AuditFilter {
                action: Some(action.into()),
                ..AuditFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(events.len(), 1, "{action}");
        assert_eq!(events[0].actor, actor.as_str());
        // The target is the person, by name; the credential's name is in the detail.
        assert_eq!(events[0].target_name.as_deref(), Some("alice"), "{action}");
    }

    // Recovery codes outlive a passkey only while some factor is left: removing the last
    // one drops them in the same transaction, so old codes cannot come back with a new key.
    RecoveryCodes::new(&store)
        .regenerate(&actor, &alice, latchkey_idp::session::Keep::Nothing)
        .await
        .unwrap();
    let last = creds.list(alice.id).await.unwrap()[0].id;
    creds
        .remove(&actor, alice.id, last, latchkey_idp::session::Keep::Nothing)
        .await
        .unwrap();
    assert_eq!(
        RecoveryCodes::new(&store).remaining(&alice).await.unwrap(),
        0
    );
    let removed = store
        .audit()
        .list(&AuditFilter {
            action: Some("webauthn.removed".into()),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert!(
        removed.iter().any(|e| e
            .after
            .as_ref()
            .and_then(|a| a["recovery_codes_dropped"].as_u64())
            == Some(10)),
        "{removed:?}"
    );
}

async fn ceremonies_under_way_are_capped(t: TestStore) {
    let clock = ManualClock::starting_now();
    let store = t.store.with_clock(clock.clone());
    let rp = rp();
    let ceremonies = Ceremonies::new(&store, &rp);
    for _ in 0..MAX_PENDING_PER_OWNER {
        ceremonies
            .start_sign_in(Purpose::Passwordless, None, "203.0.113.5")
            .await
            .unwrap();
    }
    let over = ceremonies
        .start_sign_in(Purpose::Passwordless, None, "203.0.113.5")
        .await;
    assert_eq!(code(over), Code::TooMany);
    // Another network is not held up by it.
    ceremonies
        .start_sign_in(Purpose::Passwordless, None, "203.0.114.5")
        .await
        .unwrap();
    assert_eq!(
        ceremonies.pending().await.unwrap(),
        MAX_PENDING_PER_OWNER + 1
    );
    // Expired ceremonies go, and make room.
    clock.advance(latchkey_idp::webauthn::CHALLENGE_LIFETIME + Duration::seconds(1));
    ceremonies
        .start_sign_in(Purpose::Passwordless, None, "203.0.113.5")
        .await
        .unwrap();
    assert_eq!(ceremonies.pending().await.unwrap(), 1);

    // A burst from one client takes no more than its cap: each start counts and inserts as
    // one step, so the burst cannot all see room.
    clock.advance(latchkey_idp::webauthn::CHALLENGE_LIFETIME + Duration::seconds(1));
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..(3 * MAX_PENDING_PER_OWNER) {
        let (store, rp) = (store.clone(), rp.clone());
        burst.spawn(async move {
            Ceremonies::new(&store, &rp)
                .start_sign_in(Purpose::Passwordless, None, "198.51.100.7")
                .await
                .map(drop)
        });
    }
    let (mut started, mut refused) = (0, 0);
    while let Some(done) = burst.join_next().await {
        match done.unwrap() {
            Ok(()) => started += 1,
            Err(e) => {
                assert_eq!(e.code(), Code::TooMany, "{e}");
                refused += 1;
            }
        }
    }
    assert_eq!(
        (started, refused),
        (MAX_PENDING_PER_OWNER, 2 * MAX_PENDING_PER_OWNER)
    );
    assert_eq!(ceremonies.pending().await.unwrap(), MAX_PENDING_PER_OWNER);
}

/// A user whose only factor is a passkey has a factor: the policy steps them up (with the
/// key) rather than sending them to enrol a TOTP app; admins see the key and a reset
/// removes it.
async fn a_key_is_a_factor_to_the_mfa_policy(t: TestStore) {
    use latchkey_idp::mfa::{FactorKind, Factors};
    let store = t.store;
    let rp = rp();
    let alice = user(&store, "alice").await;
    let factors = Factors::new(&store);
    assert!(!factors.has_factor(&alice).await.unwrap());
    enrol(&store, &rp, &alice, "yubikey").await;
    assert!(factors.has_factor(&alice).await.unwrap());
    let available = factors.available(&alice).await.unwrap();
    assert!(available.webauthn && !available.totp && available.any_factor());
    let listed = factors.list(&alice).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].kind, FactorKind::Webauthn);
    assert_eq!(listed[0].name, "yubikey");
    assert_eq!(factors.reset(&super::admin(), &alice).await.unwrap(), 1);
    assert!(!factors.has_factor(&alice).await.unwrap());
    assert_eq!(Credentials::new(&store).count(alice.id).await.unwrap(), 0);
}

/// An IPv6 site holds a /48, 65,536 /64s: were each /64 capped on its own, one site could
/// fill the table's cap for everyone (every passkey sign-in and security-key step refused).
/// Its /64s count together too, at `WIDE_OWNER_FACTOR` owners' worth, taken in the same one
/// step under a burst; another /48, and an IPv4 client, are not held up.
async fn ceremonies_from_one_ipv6_48_share_a_wider_cap(t: TestStore) {
    let rp = rp();
    let wide = MAX_PENDING_PER_OWNER * i64::from(latchkey_idp::session::WIDE_OWNER_FACTOR);
    let n = 3 * wide;
    // Half of them on a second node over the same database.
    let other = Store::open_url(&t.url, 5, crate::support::cheap_passwords())
        .await
        .unwrap();
    let mut burst = tokio::task::JoinSet::new();
    for i in 0..n {
        let store = if i % 2 == 0 {
            t.store.clone()
        } else {
            other.clone()
        };
        let rp = rp.clone();
        // A fresh /64 of the /48 2001:db8:77:: for every request.
        let address = format!("2001:db8:77:{i:x}::1");
        burst.spawn(async move {
            Ceremonies::new(&store, &rp)
                .start_sign_in(Purpose::Passwordless, None, &address)
                .await
                .map(drop)
        });
    }
    let (mut started, mut refused) = (0, 0);
    while let Some(done) = burst.join_next().await {
        match done.unwrap() {
            Ok(()) => started += 1,
            Err(e) => {
                assert_eq!(e.code(), Code::TooMany, "{e}");
                refused += 1;
            }
        }
    }
    assert_eq!((started, refused), (wide, n - wide));
    let ceremonies = Ceremonies::new(&t.store, &rp);
    assert_eq!(ceremonies.pending().await.unwrap(), wide);
    let now = t.store.now();
    assert_eq!(
        FrontDoor::Ceremonies
            .live(&t.store, Scope::Wide, "addr:2001:db8:77:", now)
            .await
            .unwrap(),
        wide
    );
    super::counts_follow_the_table(&t, FrontDoor::Ceremonies).await;
    // The next /48 over (2001:db8:78::), and IPv4 clients, still start ceremonies.
    ceremonies
        .start_sign_in(Purpose::Passwordless, None, "2001:db8:78::1")
        .await
        .unwrap();
    ceremonies
        .start_sign_in(Purpose::Passwordless, None, "203.0.113.5")
        .await
        .unwrap();
}

/// Anonymous passwordless starts from many networks fill [`MAX_PENDING`]; a user's own
/// ceremonies (enrolling a key, the security-key step after a password) neither count
/// towards it nor are refused by it, so such a flood cannot shut every user out of their
/// second factor. They stay held to [`MAX_PENDING_PER_OWNER`] per user.
async fn a_flood_of_anonymous_ceremonies_leaves_users_their_second_factor(t: TestStore) {
    use sqlx::Connection as _;
    let rp = rp();
    let alice = user(&t.store, "alice").await;
    let mut key = enrol(&t.store, &rp, &alice, "YubiKey").await;
    // The flood, as the table holds it: one live ceremony from each of MAX_PENDING networks
    // but one (written directly: 10,000 starts through the code would only be slow).
    let expires = (t.store.now() + Duration::minutes(4)).unix_timestamp() * 1000;
    let mut conn = sqlx::AnyConnection::connect(&t.url).await.unwrap();
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) \
         INSERT INTO webauthn_challenges (handle_hash, kind, owner, user_id, state, expires_at) \
         SELECT 'flood' || i, 'passwordless', 'addr:flood-' || i, NULL, '{}', $2 FROM n",
    )
    .bind(MAX_PENDING - 1)
    .bind(expires)
    .execute(&mut conn)
    .await
    .unwrap();
    let ceremonies = Ceremonies::new(&t.store, &rp);
    ceremonies
        .start_sign_in(Purpose::Passwordless, None, "203.0.113.5")
        .await
        .unwrap();
    let over = ceremonies
        .start_sign_in(Purpose::Passwordless, None, "203.0.113.6")
        .await;
    assert_eq!(code(over), Code::TooMany);

    // Alice's security-key step and a second key's enrolment still start, and the step
    // finishes.
    let started = ceremonies
        .start_sign_in(Purpose::SecondFactor, Some(&alice), ADDR)
        .await
        .unwrap();
    let answer = key.do_authentication(origin(), started.options).unwrap();
    ceremonies
        .finish_second_factor(&alice, &started.handle, &answer, ADDR)
        .await
        .unwrap();
    ceremonies.start_registration(&alice).await.unwrap();
    // Her own cap still holds.
    for _ in 1..MAX_PENDING_PER_OWNER {
        ceremonies.start_registration(&alice).await.unwrap();
    }
    assert_eq!(
        code(ceremonies.start_registration(&alice).await),
        Code::TooMany
    );
    assert_eq!(
        ceremonies.pending().await.unwrap(),
        MAX_PENDING + MAX_PENDING_PER_OWNER
    );
}

/// Every count an anonymous start takes (its network's, its /48's, all anonymous
/// ceremonies') is read from the counts kept in step by their key, never from the table:
/// under a flood, a count of the table (even of an index's range) made every start,
/// serialized under one lock, pay for it.
async fn every_count_a_start_takes_reads_the_kept_counts_by_key(t: TestStore) {
    super::flood(
        &t,
        "webauthn_challenges",
        5_000,
        "INSERT INTO webauthn_challenges \
         (handle_hash, kind, owner, user_id, state, expires_at, wide) \
         SELECT 'flood' || n, 'passwordless', \
         'addr:2001:db8:' || (n % 500) || ':' || (n / 500) || '::/64', NULL, $2, \
         9000000000000, 'addr:2001:db8:' || (n % 500) || ':' FROM numbers",
    )
    .await;
    let rp = rp();
    let ceremonies = Ceremonies::new(&t.store, &rp);
    for address in ["2001:db8:7:1::9", "2001:db8:1:1::9", ADDR] {
        let plan = ceremonies
            .explain_passwordless_start(address)
            .await
            .unwrap();
        super::counts_only_by_key(&plan, FrontDoor::Ceremonies);
    }
}

/// Forty passwordless starts at once from forty networks, half on a second node over the
/// same database, with ten places left in all: exactly ten start, the rest are refused, and
/// the kept total is what the table holds through starts, takes (a finish, answered or not),
/// a user's own ceremonies and the expired ones a start deletes first.
async fn a_burst_at_the_anonymous_total_starts_exactly_up_to_it(t: TestStore) {
    use sqlx::Connection as _;
    let clock = ManualClock::starting_now();
    let a = t.store.clone().with_clock(clock.clone());
    let b = Store::open_url(&t.url, 5, crate::support::cheap_passwords())
        .await
        .unwrap()
        .with_clock(clock.clone());
    let rp = rp();
    let alice = user(&a, "alice").await;
    let mut key = enrol(&a, &rp, &alice, "YubiKey").await;
    let cred_id = enrolled_id(&a, &alice, &rp).await;
    let kept = async || {
        super::counts_follow_the_table(&t, FrontDoor::Ceremonies).await;
        super::kept_and_counted(&t, FrontDoor::Ceremonies, a.now()).await
    };
    assert_eq!(kept().await, (0, 0));
    // A passwordless sign-in taken by its finish counts for nothing after.
    let ceremonies = Ceremonies::new(&a, &rp);
    let started = ceremonies
        .start_sign_in(Purpose::Passwordless, None, ADDR)
        .await
        .unwrap();
    assert_eq!(kept().await, (1, 1));
    let answer = discoverable_answer(&mut key, started.options, cred_id, &alice);
    ceremonies
        .finish_passwordless(&started.handle, &answer, ADDR)
        .await
        .unwrap();
    assert_eq!(kept().await, (0, 0));
    // The flood as the table holds it (written directly; the triggers count it too), one
    // ceremony from each of MAX_PENDING - 10 networks, and a user's own, which counts for none.
    let expires = (a.now() + Duration::minutes(4)).unix_timestamp() * 1000;
    let mut conn = sqlx::AnyConnection::connect(&t.url).await.unwrap();
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) \
         INSERT INTO webauthn_challenges (handle_hash, kind, owner, user_id, state, expires_at) \
         SELECT 'flood' || i, 'passwordless', 'addr:flood-' || i, NULL, '{}', $2 FROM n",
    )
    .bind(MAX_PENDING - 10)
    .bind(expires)
    .execute(&mut conn)
    .await
    .unwrap();
    ceremonies.start_registration(&alice).await.unwrap();
    assert_eq!(kept().await, (MAX_PENDING - 10, MAX_PENDING - 10));
    let mut burst = tokio::task::JoinSet::new();
    for n in 0..40 {
        let store = if n % 2 == 0 { a.clone() } else { b.clone() };
        let rp = rp.clone();
        burst.spawn(async move {
            Ceremonies::new(&store, &rp)
                .start_sign_in(Purpose::Passwordless, None, &format!("10.{n}.0.1"))
                .await
                .map(drop)
        });
    }
    let (mut started, mut refused) = (0, 0);
    while let Some(done) = burst.join_next().await {
        match done.unwrap() {
            Ok(()) => started += 1,
            Err(e) => {
                assert_eq!(e.code(), Code::TooMany, "{e}");
                refused += 1;
            }
        }
    }
    assert_eq!((started, refused), (10, 30));
    assert_eq!(kept().await, (MAX_PENDING, MAX_PENDING));
    // The flood expires and counts for nothing at once; the next start deletes a few of its
    // rows, the sweep the rest (the burst's and the user's rows too).
    let rows = async || {
        let mut conn = sqlx::AnyConnection::connect(&t.url).await.unwrap();
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM webauthn_challenges")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        rows
    };
    let before = rows().await;
    assert!(before > MAX_PENDING, "{before}");
    clock.advance(latchkey_idp::webauthn::CHALLENGE_LIFETIME + Duration::seconds(1));
    assert_eq!(kept().await, (0, 0));
    ceremonies
        .start_sign_in(Purpose::Passwordless, None, ADDR)
        .await
        .unwrap();
    assert_eq!(kept().await, (1, 1));
    assert_eq!(ceremonies.pending().await.unwrap(), 1);
    assert_eq!(rows().await, before - EXPIRED_PER_START + 1);
    FrontDoor::Ceremonies.sweep(&a, a.now()).await.unwrap();
    assert_eq!(rows().await, 1);
    assert_eq!(kept().await, (1, 1));
}

/// Two assertions of one key under way at once (two tabs, two nodes, or a copy of the key
/// used in parallel): once the one with the higher counter is recorded, the lower one is
/// refused as WebAuthn's sign of a cloned authenticator (L2 §7.2 step 21), audited, and the
/// counter stays where it was. As a second factor the ceremony's own state still holds the
/// older counter, so the refusal is the store's conditional write; passwordless, the crate
/// compares with the key as stored now. Either way the key goes on working from the higher
/// counter.
async fn a_use_finishing_after_a_higher_one_is_refused_as_a_regression(t: TestStore) {
    let store = &t.store;
    let rp = rp();
    let alice = user(store, "alice").await;
    let mut key = enrol(store, &rp, &alice, "YubiKey").await;
    let cred_id = enrolled_id(store, &alice, &rp).await;
    let ceremonies = Ceremonies::new(store, &rp);
    let first = ceremonies
        .start_sign_in(Purpose::SecondFactor, Some(&alice), ADDR)
        .await
        .unwrap();
    let second = ceremonies
        .start_sign_in(Purpose::SecondFactor, Some(&alice), ADDR)
        .await
        .unwrap();
    // The key signs the first challenge, then the second: counters n and n + 1.
    let lower = key.do_authentication(origin(), first.options).unwrap();
    let higher = key.do_authentication(origin(), second.options).unwrap();
    ceremonies
        .finish_second_factor(&alice, &second.handle, &higher, ADDR)
        .await
        .unwrap();
    let after_higher = Credentials::new(store).list(alice.id).await.unwrap()[0].sign_count;
    assert!(after_higher > 0, "the soft key counts");
    let refused = ceremonies
        .finish_second_factor(&alice, &first.handle, &lower, ADDR)
        .await;
    assert_eq!(code(refused), Code::CounterRegression);
    let listed = Credentials::new(store).list(alice.id).await.unwrap();
    assert_eq!(listed[0].sign_count, after_higher, "the counter moved");
    let event = regression_event(store, 1).await;
    assert_eq!(
        event.after.as_ref().unwrap()["stored_counter"],
        after_higher
    );
    assert_eq!(
        event.after.as_ref().unwrap()["presented_counter"],
        after_higher - 1
    );
    assert_eq!(event.after.as_ref().unwrap()["purpose"], "second_factor");
    assert_eq!(event.actor_name.as_deref(), Some("alice"));

    // Passwordless: two answers signed in order, the later one recorded first.
    let one = ceremonies
        .start_sign_in(Purpose::Passwordless, None, ADDR)
        .await
        .unwrap();
    let two = ceremonies
        .start_sign_in(Purpose::Passwordless, None, ADDR)
        .await
        .unwrap();
    let lower = discoverable_answer(&mut key, one.options, cred_id.clone(), &alice);
    let higher = discoverable_answer(&mut key, two.options, cred_id, &alice);
    ceremonies
        .finish_passwordless(&two.handle, &higher, ADDR)
        .await
        .unwrap();
    let stored = Credentials::new(store).list(alice.id).await.unwrap()[0].sign_count;
    let refused = ceremonies
        .finish_passwordless(&one.handle, &lower, ADDR)
        .await;
    assert_eq!(code(refused), Code::CounterRegression);
    let event = regression_event(store, 2).await;
    assert_eq!(event.after.as_ref().unwrap()["stored_counter"], stored);
    assert_eq!(
        event.after.as_ref().unwrap()["presented_counter"],
        stored - 1
    );
    assert_eq!(event.after.as_ref().unwrap()["purpose"], "passwordless");
    assert_eq!(
        Credentials::new(store).list(alice.id).await.unwrap()[0].sign_count,
        stored
    );

    // The key goes on working from the higher counter.
    let third = ceremonies
        .start_sign_in(Purpose::SecondFactor, Some(&alice), ADDR)
        .await
        .unwrap();
    let next = key.do_authentication(origin(), third.options).unwrap();
    ceremonies
        .finish_second_factor(&alice, &third.handle, &next, ADDR)
        .await
        .unwrap();
    let listed = Credentials::new(store).list(alice.id).await.unwrap();
    assert!(listed[0].sign_count > stored);
}

/// The newest `webauthn.counter_regression` event, once there are `count` of them.
async fn regression_event(store: &Store, count: usize) -> latchkey_idp::audit::AuditEvent {
    let events = store
        .audit()
        .list(&AuditFilter {
            action: Some("webauthn.counter_regression".into()),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(events.len(), count, "{events:?}");
    events.into_iter().max_by_key(|e| e.seq).unwrap()
}

/// A key whose counter is behind the one stored (another copy of it was used more): every
/// verified use is refused, as a second factor and passwordless, each audited with both
/// counters, and nothing of the credential changes (its counter, its last use).
async fn a_counter_below_the_stored_one_is_refused_and_audited(t: TestStore) {
    use sqlx::Connection as _;
    let store = &t.store;
    let rp = rp();
    let alice = user(store, "alice").await;
    let mut key = enrol(store, &rp, &alice, "YubiKey").await;
    let cred_id = enrolled_id(store, &alice, &rp).await;
    let ceremonies = Ceremonies::new(store, &rp);
    let started = ceremonies
        .start_sign_in(Purpose::SecondFactor, Some(&alice), ADDR)
        .await
        .unwrap();
    let answer = key.do_authentication(origin(), started.options).unwrap();
    ceremonies
        .finish_second_factor(&alice, &started.handle, &answer, ADDR)
        .await
        .unwrap();
    // The copy was used 1,000 times elsewhere.
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&t.url).await.unwrap();
    sqlx::query("UPDATE webauthn_credentials SET sign_count = 1000")
        .execute(&mut conn)
        .await
        .unwrap();
    let before = Credentials::new(store).list(alice.id).await.unwrap();
    assert_eq!(before[0].sign_count, 1000);

    let started = ceremonies
        .start_sign_in(Purpose::SecondFactor, Some(&alice), ADDR)
        .await
        .unwrap();
    let answer = key.do_authentication(origin(), started.options).unwrap();
    let refused = ceremonies
        .finish_second_factor(&alice, &started.handle, &answer, ADDR)
        .await;
    assert_eq!(code(refused), Code::CounterRegression);
    let event = regression_event(store, 1).await;
    let details = event.after.clone().unwrap();
    assert_eq!(details["stored_counter"], 1000);
    assert_eq!(details["presented_counter"], 2);
    assert_eq!(details["credential"], before[0].id.to_string());
    assert_eq!(details["address"], ADDR);
    assert_eq!(event.target_name.as_deref(), Some("alice"));

    let started = ceremonies
        .start_sign_in(Purpose::Passwordless, None, ADDR)
        .await
        .unwrap();
    let answer = discoverable_answer(&mut key, started.options, cred_id, &alice);
    let refused = ceremonies
        .finish_passwordless(&started.handle, &answer, ADDR)
        .await;
    assert_eq!(code(refused), Code::CounterRegression);
    let event = regression_event(store, 2).await;
    assert_eq!(event.after.as_ref().unwrap()["presented_counter"], 3);
    assert_eq!(event.after.as_ref().unwrap()["purpose"], "passwordless");
    assert_eq!(
        Credentials::new(store).list(alice.id).await.unwrap(),
        before,
        "a refused use changes nothing"
    );
}
