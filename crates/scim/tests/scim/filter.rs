//! SCIM filters: every operator, the logic, value paths, and every way a filter is refused.

use latchkey_scim::schema::{GROUP_TYPE, USER_TYPE};
use latchkey_scim::{Filter, ScimType};
use proptest::prelude::*;
use serde_json::{Value, json};

fn alice() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "externalId": "AbC-1",
        "userName": "Alice@Example.com",
        "name": {"givenName": "Alice", "familyName": "Liddell"},
        "displayName": "Alice Liddell",
        "active": true,
        "emails": [
            {"value": "alice@example.com", "type": "work", "primary": true},
            {"value": "alice@home.example", "type": "home"}
        ],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Support"},
        "meta": {"lastModified": "2026-12-01T10:00:00Z", "created": "2026-11-01T10:00:00Z"}
    })
}

fn user_filter(text: &str) -> Result<Filter, latchkey_scim::ScimError> {
    let mut f = Filter::parse(text)?;
    f.resolve(&USER_TYPE)?;
    Ok(f)
}

fn matches(text: &str) -> bool {
    user_filter(text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .matches(&alice())
}

#[test]
fn each_comparison_operator() {
    // eq is case-insensitive on userName (caseExact false), exact on externalId.
    assert!(matches(r#"userName eq "alice@example.com""#));
    assert!(!matches(r#"userName eq "bob@example.com""#));
    assert!(matches(r#"externalId eq "AbC-1""#));
    assert!(!matches(r#"externalId eq "abc-1""#));
    assert!(matches(r#"userName ne "bob@example.com""#));
    assert!(!matches(r#"userName ne "ALICE@example.com""#));
    assert!(matches(r#"displayName co "lidd""#));
    assert!(!matches(r#"displayName co "bob""#));
    assert!(matches(r#"userName sw "alice@""#));
    assert!(!matches(r#"userName sw "example""#));
    assert!(matches(r#"userName ew "EXAMPLE.COM""#));
    assert!(!matches(r#"userName ew "alice""#));
    assert!(matches(r#"name.familyName gt "K""#));
    assert!(!matches(r#"name.familyName gt "M""#));
    assert!(matches(r#"name.familyName ge "liddell""#));
    assert!(matches(r#"name.familyName lt "M""#));
    assert!(!matches(r#"name.familyName lt "Liddell""#));
    assert!(matches(r#"name.familyName le "Liddell""#));
    assert!(matches("active eq true"));
    assert!(!matches("active eq false"));
}

#[test]
fn present_and_absent() {
    assert!(matches("name.givenName pr"));
    assert!(matches("emails pr"));
    assert!(!matches("nickName pr"));
    assert!(!matches("name.middleName pr"));
    assert!(matches("nickName eq null"));
}

#[test]
fn last_modified_compares_as_time_not_text() {
    // The same instant in another offset is not earlier, though it sorts earlier as text.
    assert!(matches(r#"meta.lastModified gt "2026-11-30T00:00:00Z""#));
    assert!(!matches(r#"meta.lastModified gt "2026-12-01T10:00:00Z""#));
    assert!(matches(
        r#"meta.lastModified ge "2026-12-01T11:00:00+01:00""#
    ));
    assert!(matches(r#"meta.lastModified lt "2026-12-01T10:00:01Z""#));
    assert!(!matches(
        r#"meta.lastModified lt "2026-12-01T05:00:00-05:00""#
    ));
    assert!(matches(
        r#"meta.lastModified le "2026-12-01T05:00:00-05:00""#
    ));
    assert!(matches(r#"meta.created lt "2026-12-01T00:00:00Z""#));
}

#[test]
fn logic_and_grouping() {
    assert!(matches(r#"userName sw "alice" and active eq true"#));
    assert!(!matches(r#"userName sw "alice" and active eq false"#));
    assert!(matches(r#"userName sw "bob" or active eq true"#));
    assert!(!matches(r#"userName sw "bob" or active eq false"#));
    assert!(matches(r#"not (userName sw "bob")"#));
    assert!(!matches(r#"not (userName sw "alice")"#));
    // and binds tighter than or: false or (true and true).
    assert!(matches(
        r#"userName sw "bob" or userName sw "alice" and active eq true"#
    ));
    // Parentheses change it: (false or true) and false.
    assert!(!matches(
        r#"(userName sw "bob" or userName sw "alice") and active eq false"#
    ));
    // Keywords and operators are case-insensitive.
    assert!(matches(r#"userName SW "alice" AND NOT (active EQ false)"#));
}

#[test]
fn value_paths_and_multi_valued_attributes() {
    assert!(matches(r#"emails[type eq "work"]"#));
    assert!(matches(
        r#"emails[type eq "work" and value co "example.com"]"#
    ));
    assert!(!matches(r#"emails[type eq "home" and primary eq true]"#));
    assert!(!matches(r#"emails[type eq "other"]"#));
    // A multi-valued complex attribute compared as a whole compares its values.
    assert!(matches(r#"emails co "home.example""#));
    assert!(matches(r#"emails.type eq "home""#));
    assert!(matches(
        r#"userName pr and emails[value ew "home.example"]"#
    ));
}

#[test]
fn urn_qualified_paths() {
    assert!(matches(
        r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "alice@example.com""#
    ));
    assert!(matches(
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "support""#
    ));
    assert!(!matches(
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "sales""#
    ));
}

#[test]
fn group_members() {
    let group =
        json!({"displayName": "Wiki Admins", "members": [{"value": "u1"}, {"value": "u2"}]});
    let mut f = Filter::parse(r#"members[value eq "u2"]"#).unwrap();
    f.resolve(&GROUP_TYPE).unwrap();
    assert!(f.matches(&group));
    let mut f = Filter::parse(r#"members eq "u3""#).unwrap();
    f.resolve(&GROUP_TYPE).unwrap();
    assert!(!f.matches(&group));
    // A Group has no userName.
    let mut f = Filter::parse(r#"userName eq "x""#).unwrap();
    assert_eq!(
        f.resolve(&GROUP_TYPE).unwrap_err().scim_type,
        Some(ScimType::InvalidFilter)
    );
}

#[test]
fn malformed_and_unknown_filters_are_invalid_filter() {
    for bad in [
        "",
        "userName",
        r#"userName eq"#,
        r#"userName zz "x""#,
        r#"userName eq "unterminated"#,
        r#"(userName eq "x""#,
        r#"userName eq "x")"#,
        r#"userName eq "x" and"#,
        r#"userName eq "x" extra"#,
        r#"emails[type eq "work""#,
        r#"name.givenName[value eq "x"]"#,
        r#"userName eq "\q""#,
        r#"userName eq 12abc"#,
        r#"noSuchAttribute eq "x""#,
        r#"name.noSuchSub eq "x""#,
        r#"emails[noSuchSub eq "x"]"#,
        r#"urn:example:unknown:User:thing eq "x""#,
        r#"active gt true"#,
        r#"active co "t""#,
        r#"active eq "yes""#,
        r#"userName eq true"#,
        r#"meta.lastModified gt "yesterday""#,
        r#"userName[value eq "x"]"#,
    ] {
        let err = user_filter(bad).expect_err(bad);
        assert_eq!(err.status, 400, "{bad}");
        assert_eq!(err.scim_type, Some(ScimType::InvalidFilter), "{bad}: {err}");
    }
}

#[test]
fn length_and_depth_are_bounded() {
    let long = format!(r#"userName eq "{}""#, "a".repeat(5000));
    assert_eq!(
        Filter::parse(&long).unwrap_err().scim_type,
        Some(ScimType::InvalidFilter)
    );
    let deep = format!("{}userName pr{}", "(".repeat(100), ")".repeat(100));
    assert!(Filter::parse(&deep).unwrap_err().detail.contains("nested"));
    let nots = format!("{}userName pr{}", "not (".repeat(40), ")".repeat(40));
    assert!(Filter::parse(&nots).is_err());
    let fine = format!("{}userName pr{}", "(".repeat(20), ")".repeat(20));
    assert!(user_filter(&fine).unwrap().matches(&alice()));
}

/// A generated filter and the answer it should have on `alice()`, built side by side.
fn arb_filter() -> impl Strategy<Value = (String, bool)> {
    let leaf = prop_oneof![
        Just((r#"userName eq "alice@example.com""#.to_owned(), true)),
        Just((r#"userName eq "bob""#.to_owned(), false)),
        Just(("active eq true".to_owned(), true)),
        Just(("nickName pr".to_owned(), false)),
        Just((r#"emails[type eq "home"]"#.to_owned(), true)),
        Just((
            r#"meta.lastModified lt "2020-01-01T00:00:00Z""#.to_owned(),
            false
        )),
    ];
    leaf.prop_recursive(6, 64, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone())
                .prop_map(|((a, x), (b, y))| (format!("({a}) and ({b})"), x && y)),
            (inner.clone(), inner.clone())
                .prop_map(|((a, x), (b, y))| (format!("({a}) or ({b})"), x || y)),
            inner.prop_map(|(a, x)| (format!("not ({a})"), !x)),
        ]
    })
}

proptest! {
    #[test]
    fn generated_filters_evaluate_like_their_boolean_model((text, expected) in arb_filter()) {
        let f = user_filter(&text).unwrap();
        prop_assert_eq!(f.matches(&alice()), expected);
    }

    /// Whatever the bytes, parsing answers Ok or invalidFilter, never a panic.
    #[test]
    fn arbitrary_input_never_panics(text in "[ -~]{0,200}") {
        if let Err(e) = user_filter(&text) {
            prop_assert_eq!(e.scim_type, Some(ScimType::InvalidFilter));
        }
    }

    #[test]
    fn filter_like_input_never_panics(
        parts in proptest::collection::vec(
            prop_oneof![
                Just("("), Just(")"), Just("["), Just("]"), Just(" and "), Just(" or "),
                Just("not "), Just("userName"), Just(" eq "), Just(" pr"), Just("\"x\""),
                Just("emails"), Just("type"), Just("."), Just("12"), Just("true"),
            ],
            0..40,
        )
    ) {
        let text: String = parts.concat();
        let _ = user_filter(&text);
    }
}
