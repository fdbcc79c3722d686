//! The in-process reference rates, on this thread's CPU time so that a loaded machine
//! (waiting for a core) does not count: RSA signing, the protocol layer's issuance, and
//! Argon2id verification.

use latchkey_idp::{Clock as _, SystemClock};
use std::hint::black_box;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use latchkey_idp::config::PasswordConfig;
use latchkey_idp::password::{self, Password};
use latchkey_saml::assertion::{Attribute, NameId, authn_context, name_id_format};
use latchkey_saml::profile::idp::{
    IdpSettings, Issuance, ResponseTarget, SignedParts, build_response,
};
use latchkey_xmlsec::crypto::{SignatureAlgorithm, SigningKey};

/// How fast an operation runs on one core.
#[derive(Debug, Clone, Copy)]
pub struct Rate {
    /// Per second of this thread's CPU time.
    pub per_core: f64,
}

/// This thread's user + system CPU time (`/proc/thread-self/stat`, clock ticks of 10 ms:
/// fine over runs of seconds).
fn thread_cpu() -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat")
        .context("cannot read /proc/thread-self/stat")?;
    let after = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("unexpected /proc stat format")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<u64> {
        Ok(fields.get(i).context("short /proc stat")?.parse::<u64>()?)
    };
    Ok(Duration::from_millis((ticks(11)? + ticks(12)?) * 10))
}

/// Repeats `op` until it has used `cpu` of this thread's CPU time (or four times that in
/// wall time, on a badly overloaded machine).
fn measure(cpu: Duration, mut op: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<Rate> {
    let cpu0 = thread_cpu()?;
    let wall0 = Instant::now();
    let mut n = 0u64;
    loop {
        for _ in 0..4 {
            op()?;
            n += 1;
        }
        let used = thread_cpu()? - cpu0;
        if used >= cpu || wall0.elapsed() >= cpu * 4 {
            let used = used.max(Duration::from_millis(10));
            return Ok(Rate {
                per_core: n as f64 / used.as_secs_f64(),
            });
        }
    }
}

/// A fresh RSA-2048 key, when the server's own is out of reach.
pub fn rsa2048_key() -> anyhow::Result<SigningKey> {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256)?;
    Ok(SigningKey::from_pem(&pair.serialize_pem())?)
}

/// Raw RSA-SHA256 signatures over a message the size of a canonical SignedInfo.
pub fn rsa_sign_rate(key: &SigningKey, cpu: Duration) -> anyhow::Result<Rate> {
    let message = vec![b'x'; 600];
    tokio::task::block_in_place(|| {
        measure(cpu, || {
            black_box(key.sign(SignatureAlgorithm::RsaSha256, &message)?);
            Ok(())
        })
    })
}

/// `profile::idp::build_response` as the protocol layer's benchmark runs it: 6 attributes,
/// the assertion signed.
pub fn issuance_rate(key: &SigningKey, cpu: Duration) -> anyhow::Result<Rate> {
    let now = SystemClock.now();
    let settings = IdpSettings::new(
        "https://idp.example.org/saml",
        "https://idp.example.org/saml/sso",
    );
    let target = ResponseTarget {
        sp_entity_id: super::server::APP_ENTITY_ID.into(),
        acs_url: "https://bench-app.example.com/saml/acs".into(),
        in_response_to: Some("_req-42".into()),
    };
    let issuance = bench_issuance(now);
    tokio::task::block_in_place(|| {
        measure(cpu, || {
            black_box(build_response(
                &settings,
                &target,
                &issuance,
                key,
                None,
                SignedParts::Assertion,
                now,
            )?);
            Ok(())
        })
    })
}

/// The assertion content every issuance benchmark signs: a persistent NameID and six
/// attributes, as a typical application receives.
pub fn bench_issuance(now: time::OffsetDateTime) -> Issuance {
    let attributes = [
        (
            "urn:oid:0.9.2342.19200300.100.1.3",
            "mail",
            "bench0@example.org",
        ),
        ("urn:oid:2.5.4.42", "givenName", "Bench"),
        ("urn:oid:2.5.4.4", "sn", "User 0"),
        (
            "urn:oid:2.16.840.1.113730.3.1.241",
            "displayName",
            "Bench User 0",
        ),
        ("urn:oid:1.3.6.1.4.1.5923.1.5.1.1", "isMemberOf", "staff"),
        ("urn:oid:2.16.840.1.113730.3.1.3", "employeeNumber", "0"),
    ]
    .into_iter()
    .map(|(name, friendly, value)| Attribute {
        name: name.into(),
        name_format: Some("urn:oasis:names:tc:SAML:2.0:attrname-format:uri".into()),
        friendly_name: Some(friendly.into()),
        values: vec![value.into()],
    })
    .collect();
    Issuance {
        name_id: NameId::new("p-0", name_id_format::PERSISTENT),
        session_index: "_session-1".into(),
        authn_instant: now,
        authn_context_class_ref: authn_context::PASSWORD_PROTECTED_TRANSPORT.into(),
        session_not_on_or_after: None,
        attributes,
    }
}

/// Argon2id verification of the right password at `config`'s parameters.
pub fn argon2_verify_rate(config: &PasswordConfig, cpu: Duration) -> anyhow::Result<Rate> {
    let password = Password::new("bench-password-for-load");
    let stored = password::hash(config, &password)?;
    tokio::task::block_in_place(|| {
        measure(cpu, || {
            anyhow::ensure!(password::verify(&stored, &password), "verify failed");
            Ok(())
        })
    })
}
