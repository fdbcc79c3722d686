//! Passkey-only sign-ins per core, beside password sign-ins, in one run.
//!
//! Run: `cargo bench -p latchkey-idp --bench passkey`. Each sign-in is the server's side of
//! it, in process, on SQLite in a temporary directory: a passkey sign-in is
//! `Ceremonies::start_sign_in` (a discoverable challenge, stored server-side), then
//! `finish_passwordless` (the challenge taken once, the credential found, the throttle
//! slots, the signature and counter checked, the audit line) and `Sessions::create_with`;
//! a password sign-in is `Users::authenticate` (Argon2id at the default parameters, on the
//! store's bounded hash pool) and `Sessions::create_with`. The authenticator's own work
//! (`webauthn-authenticator-rs`'s software key signing the challenge) happens in the
//! browser and is not counted. HTTP is not counted either (`latchkey bench login` measures
//! password sign-ins over HTTP, with the `login.success` audit line this leaves out of both; WebAuthn needs a `localhost` origin and an authenticator
//! the binary does not carry).
//!
//! The two kinds alternate in rounds of about 50 ms for `PASSKEY_BENCH_SECS` (default 10)
//! seconds, so both see the same load; the ratio is what compares across machines.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use latchkey_idp::config::PasswordConfig;
use latchkey_idp::directory::{Login, NewUser, User};
use latchkey_idp::mfa::{AuthMethod, Methods};
use latchkey_idp::password::Password;
use latchkey_idp::session::{Client, Sessions};
use latchkey_idp::webauthn::{Ceremonies, Purpose, RelyingParty, WebauthnConfig};
use latchkey_idp::{Actor, Store};
use url::Url;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs_proto::{AllowCredentials, PublicKeyCredential, RequestChallengeResponse};

const ORIGIN: &str = "https://idp.example.org";
const PASSWORD: &str = "bench-password-for-passkeys";
const USERS: usize = 64;

struct Person {
    user: User,
    key: SoftPasskey,
    credential_id: Vec<u8>,
}

/// An address per sign-in, spread over 10.0.0.0/8, so that the per-address throttle (made
/// for guesses from one network) does not count a benchmark's successes against it.
fn address(n: u64) -> String {
    format!("10.{}.{}.{}", (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff)
}

/// What a resident-key authenticator answers to a discoverable request: the software key
/// holds no resident credentials, so it is told which key to use (client side only: the
/// challenge is unchanged) and adds the user handle a resident key would have stored.
fn answer(p: &mut Person, mut options: RequestChallengeResponse) -> PublicKeyCredential {
    options.public_key.allow_credentials = vec![AllowCredentials {
        type_: "public-key".into(),
        id: p.credential_id.clone(),
        transports: None,
    }];
    let mut answer = p
        .key
        .do_authentication(Url::parse(ORIGIN).unwrap(), options)
        .unwrap();
    answer.response.user_handle = Some(p.user.id.0.as_bytes().to_vec());
    answer
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let url = latchkey_idp::config::sqlite_url(&dir.path().join("bench.db"));
    let store = Store::open_url(&url, 5, PasswordConfig::default())
        .await
        .unwrap();
    let rp = RelyingParty::new(ORIGIN, &WebauthnConfig::default()).unwrap();
    let admin = Actor::system();

    let mut people = Vec::with_capacity(USERS);
    for i in 0..USERS {
        let name = format!("user{i}");
        let user = store
            .users()
            .create(&admin, NewUser::new(&name, format!("{name}@example.org")))
            .await
            .unwrap();
        store
            .users()
            .set_password(&admin, user.id, Some(Password::new(PASSWORD)))
            .await
            .unwrap();
        let mut key = SoftPasskey::new(true);
        let started = Ceremonies::new(&store, &rp)
            .start_registration(&user)
            .await
            .unwrap();
        let registration = key
            .do_registration(Url::parse(ORIGIN).unwrap(), started.options)
            .unwrap();
        Ceremonies::new(&store, &rp)
            .finish_registration(&admin, &user, &started.handle, &registration, "bench key")
            .await
            .unwrap();
        let started = Ceremonies::new(&store, &rp)
            .start_sign_in(Purpose::SecondFactor, Some(&user), "192.0.2.1")
            .await
            .unwrap();
        let credential_id = started.options.public_key.allow_credentials[0].id.to_vec();
        people.push(Person {
            user,
            key,
            credential_id,
        });
    }

    let secs: u64 = std::env::var("PASSKEY_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let round = Duration::from_millis(50);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let (mut passkey_time, mut passkey_n) = (Duration::ZERO, 0u64);
    let (mut password_time, mut password_n) = (Duration::ZERO, 0u64);
    let mut n = 0u64;
    while Instant::now() < deadline {
        // Passkey sign-ins for one round: only the server's calls are timed.
        let end = Instant::now() + round;
        while Instant::now() < end {
            n += 1;
            let at = address(n);
            let p = &mut people[(n as usize) % USERS];
            let t0 = Instant::now();
            let started = Ceremonies::new(&store, &rp)
                .start_sign_in(Purpose::Passwordless, None, &at)
                .await
                .unwrap();
            let server = t0.elapsed();
            let response = answer(p, started.options);
            let t1 = Instant::now();
            let (user, _) = Ceremonies::new(&store, &rp)
                .finish_passwordless(&started.handle, &response, &at)
                .await
                .unwrap();
            Sessions::new(&store)
                .create_with(
                    &user,
                    Methods::of(&[AuthMethod::Passkey]),
                    &Client::new(&at, None),
                    store.now(),
                    time::Duration::hours(8),
                )
                .await
                .unwrap();
            passkey_time += server + t1.elapsed();
            passkey_n += 1;
        }
        // Password sign-ins for one round.
        let end = Instant::now() + round;
        while Instant::now() < end {
            n += 1;
            let at = address(n);
            let p = &people[(n as usize) % USERS];
            let t0 = Instant::now();
            let user = match store
                .users()
                .authenticate(&p.user.username, Password::new(PASSWORD))
                .await
                .unwrap()
            {
                Login::Success(u) => u,
                other => panic!("password sign-in: {other:?}"),
            };
            Sessions::new(&store)
                .create_with(
                    &user,
                    Methods::password(),
                    &Client::new(&at, None),
                    store.now(),
                    time::Duration::hours(8),
                )
                .await
                .unwrap();
            password_time += t0.elapsed();
            password_n += 1;
        }
    }
    let rate = |n: u64, t: Duration| n as f64 / t.as_secs_f64().max(1e-9);
    let (passkey, password) = (
        rate(passkey_n, passkey_time),
        rate(password_n, password_time),
    );
    println!(
        "passkey-only sign-ins (server side: challenge, verification, throttle, audit, session): \
         {passkey:.0}/s on one core ({passkey_n} in {:.1} s)",
        passkey_time.as_secs_f64()
    );
    println!(
        "password sign-ins (Argon2id at the defaults, session): {password:.0}/s on one core \
         ({password_n} in {:.1} s)",
        password_time.as_secs_f64()
    );
    println!("passkey / password: {:.1}x", passkey / password);
}
