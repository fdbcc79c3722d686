//! The overwrite rule: when a value pushed by SCIM may replace the one the directory holds.
//!
//! The IdP's directory has two writers for the same person: the SCIM client (an HR system,
//! another IdP) and the admins (console, API, CLI, import). Each directory field a SCIM write
//! touches is decided here, and nowhere else:
//!
//! 1. A value equal to the current one changes nothing.
//! 2. `active: false` always applies: a leaver is suspended whoever set the account active.
//! 3. An empty field takes the pushed value.
//! 4. A field whose current value is the one SCIM itself last pushed (nobody has changed it
//!    since) takes the new pushed value, or is cleared by it.
//! 5. Otherwise an admin set the value by hand after (or without) SCIM: it is kept, and the
//!    write reports a [`Conflict`] (audited as `scim.conflict`). The admin's value wins until
//!    an admin clears it; from then on rule 3 lets SCIM fill it again.
//!
//! "What SCIM last pushed" is remembered per user and field (`scim_users.pushed`), so no
//! admin write path needs to mark its fields: a hand edit shows as a current value that
//! differs from the pushed one. An admin setting a field to exactly the pushed value hands
//! it back to SCIM, which is indistinguishable and harmless.

use std::collections::BTreeMap;

use serde_json::Value;

/// Directory values by field name (`userName`, `email`, `givenName`, `familyName`,
/// `displayName`, `active`, and `attributes.<key>` for the custom attributes SCIM feeds).
/// An absent key is an empty field.
pub type Fields = BTreeMap<String, Value>;

/// The field whose `false` always applies (rule 2).
pub const ACTIVE: &str = "active";

/// What happens to one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The pushed value is the current one.
    Unchanged,
    /// The pushed value is written.
    Write,
    /// The current value, set by hand, is kept.
    Conflict,
}

/// Decides one field (the rules above, in order).
pub fn decide(
    field: &str,
    current: Option<&Value>,
    pushed_before: Option<&Value>,
    wanted: Option<&Value>,
) -> Decision {
    if current == wanted {
        return Decision::Unchanged;
    }
    if field == ACTIVE && wanted == Some(&Value::Bool(false)) {
        return Decision::Write;
    }
    match current {
        None => Decision::Write,
        Some(value) if pushed_before == Some(value) => Decision::Write,
        Some(_) => Decision::Conflict,
    }
}

/// A pushed value the rule refused, for the audit.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Conflict {
    /// The field.
    pub field: String,
    /// The value kept (set by hand).
    pub kept: Option<Value>,
    /// The value SCIM pushed.
    pub refused: Option<Value>,
}

/// The outcome of a SCIM write over every field it names.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Merged {
    /// The directory's fields after the write.
    pub fields: Fields,
    /// What SCIM has pushed, to remember for the next write.
    pub pushed: Fields,
    /// The pushed values refused.
    pub conflicts: Vec<Conflict>,
}

/// Merges `wanted` into `current` for each of `fields`, given what SCIM pushed before.
/// A field in `keep_when_absent` that `wanted` lacks is left alone (the client said nothing
/// of it) rather than cleared.
pub fn merge<'a>(
    fields: impl IntoIterator<Item = &'a str>,
    current: &Fields,
    pushed_before: &Fields,
    wanted: &Fields,
    keep_when_absent: &[&str],
) -> Merged {
    let mut out = Merged {
        fields: current.clone(),
        pushed: pushed_before.clone(),
        conflicts: Vec::new(),
    };
    for field in fields {
        let want = wanted.get(field);
        if want.is_none() && keep_when_absent.contains(&field) {
            continue;
        }
        let cur = current.get(field);
        match decide(field, cur, pushed_before.get(field), want) {
            Decision::Unchanged | Decision::Write => {
                set(&mut out.fields, field, want);
                set(&mut out.pushed, field, want);
            }
            Decision::Conflict => out.conflicts.push(Conflict {
                field: field.to_owned(),
                kept: cur.cloned(),
                refused: want.cloned(),
            }),
        }
    }
    out
}

fn set(map: &mut Fields, field: &str, value: Option<&Value>) {
    match value {
        Some(v) => {
            map.insert(field.to_owned(), v.clone());
        }
        None => {
            map.remove(field);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn v(s: &str) -> Value {
        Value::from(s)
    }

    #[test]
    fn each_rule_in_order() {
        // 1: nothing to do.
        assert_eq!(
            decide("title", Some(&v("a")), None, Some(&v("a"))),
            Decision::Unchanged
        );
        // 2: suspension always applies, even over a hand-set `true`.
        let (t, f) = (Value::Bool(true), Value::Bool(false));
        assert_eq!(
            decide(ACTIVE, Some(&t), Some(&f), Some(&f)),
            Decision::Write
        );
        // ...but resuming does not override a hand suspension.
        assert_eq!(
            decide(ACTIVE, Some(&f), Some(&t), Some(&t)),
            Decision::Conflict
        );
        // 3: an empty field is filled.
        assert_eq!(
            decide("title", None, Some(&v("x")), Some(&v("a"))),
            Decision::Write
        );
        // 4: what SCIM pushed last, untouched since, is SCIM's to change or clear.
        assert_eq!(
            decide("title", Some(&v("a")), Some(&v("a")), Some(&v("b"))),
            Decision::Write
        );
        assert_eq!(
            decide("title", Some(&v("a")), Some(&v("a")), None),
            Decision::Write
        );
        // 5: a hand edit (never pushed, or changed since) wins, and cannot be cleared.
        assert_eq!(
            decide("title", Some(&v("h")), None, Some(&v("b"))),
            Decision::Conflict
        );
        assert_eq!(
            decide("title", Some(&v("h")), Some(&v("a")), Some(&v("b"))),
            Decision::Conflict
        );
        assert_eq!(
            decide("title", Some(&v("h")), Some(&v("a")), None),
            Decision::Conflict
        );
    }

    #[test]
    fn merge_keeps_conflicts_and_remembers_only_what_applied() {
        let current: Fields = [("title".into(), v("hand")), ("department".into(), v("R&D"))]
            .into_iter()
            .collect();
        let pushed: Fields = [("department".into(), v("R&D"))].into_iter().collect();
        let wanted: Fields = [
            ("title".into(), v("feed")),
            ("department".into(), v("Sales")),
            ("userName".into(), v("x")),
        ]
        .into_iter()
        .collect();
        let m = merge(
            ["title", "department", "userName", "email"],
            &current,
            &pushed,
            &wanted,
            &["email"],
        );
        assert_eq!(m.fields["title"], v("hand"));
        assert_eq!(m.fields["department"], v("Sales"));
        assert_eq!(m.fields["userName"], v("x"));
        assert!(!m.fields.contains_key("email"));
        assert_eq!(m.pushed.get("title"), None);
        assert_eq!(m.pushed["department"], v("Sales"));
        assert_eq!(
            m.conflicts,
            [Conflict {
                field: "title".into(),
                kept: Some(v("hand")),
                refused: Some(v("feed")),
            }]
        );
        assert_eq!(json!(m.conflicts)[0]["refused"], "feed");
    }
}
