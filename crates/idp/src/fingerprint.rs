//! The one fingerprint of a record's fields: what a console form was drawn from and sends
//! back (a 409 when the record changed meanwhile), and the admin API's `ETag` (a 412 on a
//! stale `If-Match`). A SHA-256, in hex, of the value's JSON (serde's derived form: every
//! serialized field, by name, in declaration order, the times as their serde attributes
//! say). Not its `Debug` form: that is no stable format (a compiler or a dependency's
//! derive may change it), and an upgrade that moved it would turn every open form into a
//! spurious 409 and every cached `ETag` into a 412. The test below pins a value's
//! fingerprint, so a change of encoding is a deliberate change of that test.

use serde::Serialize;
use sha2::{Digest, Sha256};

/// The fingerprint of `value`. A value that does not serialize (no derived record does)
/// is logged and gets a fresh random fingerprint: a precondition drawn from it then fails
/// (409 or 412) rather than admitting a write it cannot tell is current.
pub(crate) fn of<T: Serialize + ?Sized>(value: &T) -> String {
    match serde_json::to_vec(value) {
        Ok(bytes) => hex::encode(Sha256::digest(&bytes)),
        Err(e) => {
            tracing::error!(error = %e, "a record did not serialize for its fingerprint");
            let mut random = [0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::rng(), &mut random);
            hex::encode(random)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::Group;
    use crate::ids::GroupId;
    use std::collections::BTreeMap;

    #[derive(Serialize)]
    struct Sample {
        name: String,
        note: Option<String>,
        count: i64,
        urls: Vec<String>,
    }

    /// The encoding is pinned: a change here breaks every open form and cached `ETag` once,
    /// so it must be deliberate.
    #[test]
    fn a_fixed_value_has_a_pinned_fingerprint() {
        let sample = Sample {
            name: "payroll".into(),
            note: None,
            count: 3,
            urls: vec!["https://sp.example.org/acs".into()],
        };
        assert_eq!(
            of(&sample),
            hex::encode(Sha256::digest(
                br#"{"name":"payroll","note":null,"count":3,"urls":["https://sp.example.org/acs"]}"#
            ))
        );
        assert_eq!(of(&sample), PINNED_SAMPLE);
        let group = Group {
            id: GroupId("6f1c1d3e-8b44-4b8e-9c55-0d5a1f7e2b10".parse().unwrap()),
            name: "eng".into(),
            description: Some("Engineering".into()),
            created_at: time::macros::datetime!(2026-01-02 03:04:05 UTC),
            updated_at: time::macros::datetime!(2026-02-03 04:05:06.5 UTC),
        };
        assert_eq!(of(&group), PINNED_GROUP);
    }

    #[test]
    fn every_field_moves_it() {
        let base = Sample {
            name: "a".into(),
            note: None,
            count: 0,
            urls: vec![],
        };
        let seen: BTreeMap<String, &str> = [
            (of(&base), "base"),
            (
                of(&Sample {
                    name: "b".into(),
                    ..clone(&base)
                }),
                "name",
            ),
            (
                of(&Sample {
                    note: Some(String::new()),
                    ..clone(&base)
                }),
                "note",
            ),
            (
                of(&Sample {
                    count: 1,
                    ..clone(&base)
                }),
                "count",
            ),
            (
                of(&Sample {
                    urls: vec![String::new()],
                    ..clone(&base)
                }),
                "urls",
            ),
        ]
        .into_iter()
        .collect();
        assert_eq!(seen.len(), 5, "{seen:?}");
    }

    fn clone(s: &Sample) -> Sample {
        Sample {
            name: s.name.clone(),
            note: s.note.clone(),
            count: s.count,
            urls: s.urls.clone(),
        }
    }

    const PINNED_SAMPLE: &str = "7d7ece9d7e27cfea5a974032ad85636d17a9d71f13f3611e7cd836100838b3d2";
    /// SHA-256 of `{"id":"6f1c1d3e-8b44-4b8e-9c55-0d5a1f7e2b10","name":"eng","description":"Engineering","created_at":"2026-01-02T03:04:05Z","updated_at":"2026-02-03T04:05:06.5Z"}`.
    const PINNED_GROUP: &str = "696b30696081a8682b2e2888b513302247857f20e228b979b6ed0b97dfcc3a2c";
}
