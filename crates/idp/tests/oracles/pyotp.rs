//! pyotp (software nobody here wrote) computes the codes from the enrolment's `otpauth://`
//! URI, as an authenticator app would; the domain must accept them, at the current step and
//! one step either side, and refuse two steps out.

use std::process::Command;

use latchkey_idp::directory::NewUser;
use latchkey_idp::keys::{Kek, KekSource};
use latchkey_idp::mfa::totp::{Totp, TotpCheck};
use latchkey_idp::{Actor, Clock, ManualClock};
use latchkey_testkit::oracle;
use time::Duration;
use time::macros::datetime;

/// pyotp's code for `uri` at each Unix time in `at`.
fn pyotp_codes(uri: &str, at: &[i64]) -> Vec<String> {
    let python = oracle::python(&["pyotp"]);
    let script = "import sys, pyotp\n\
                  t = pyotp.parse_uri(sys.argv[1])\n\
                  assert t.digits == 6 and t.interval == 30, (t.digits, t.interval)\n\
                  for s in sys.argv[2:]: print(t.at(int(s)))\n";
    let mut cmd = Command::new(python);
    cmd.arg("-c").arg(script).arg(uri);
    for t in at {
        cmd.arg(t.to_string());
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "pyotp failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyotp_codes_from_the_enrolment_uri_are_accepted() {
    let t = crate::support::sqlite().await;
    let start = datetime!(2026-12-05 12:00:10 UTC);
    let clock = ManualClock::new(start);
    let store = t.store.clone().with_clock(clock.clone());
    let kek = Kek::from_base64(&Kek::generate_base64(), KekSource::Env).unwrap();
    let alice = store
        .users()
        .create(
            &Actor::cli("tester"),
            NewUser::new("alice", "alice@example.org"),
        )
        .await
        .unwrap();
    let totp = Totp::new(&store, &kek);
    let enrolment = totp.begin(&alice, "phone", "Latchkey").await.unwrap();
    let now = |c: &ManualClock| c.now().unix_timestamp();
    let codes = pyotp_codes(&enrolment.uri, &[now(&clock)]);
    let confirmed = totp
        .confirm(
            &Actor::user(alice.id),
            &alice,
            &enrolment.factor_id,
            &codes[0],
            "192.0.2.1",
        )
        .await
        .unwrap();
    assert!(
        matches!(confirmed, TotpCheck::Accepted { .. }),
        "{confirmed:?}"
    );
    // Each later step, the phone's clock one step behind, on time and one step ahead.
    for offset in [-30, 0, 30] {
        clock.advance(Duration::seconds(90));
        let code = pyotp_codes(&enrolment.uri, &[now(&clock) + offset]).remove(0);
        let check = totp.verify(&alice, &code, "192.0.2.1").await.unwrap();
        assert!(
            matches!(check, TotpCheck::Accepted { .. }),
            "offset {offset}: {check:?}"
        );
    }
    // Two steps out is refused (unless the two codes happen to coincide).
    clock.advance(Duration::seconds(90));
    let [far, current] = <[String; 2]>::try_from(pyotp_codes(
        &enrolment.uri,
        &[now(&clock) - 60, now(&clock)],
    ))
    .unwrap();
    if far != current {
        assert_eq!(
            totp.verify(&alice, &far, "192.0.2.1").await.unwrap(),
            TotpCheck::Wrong
        );
    }
}
