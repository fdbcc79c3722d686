//! SCIM PATCH: each operation with each path form, and each refusal.

use latchkey_scim::patch::{self, PatchOp};
use latchkey_scim::schema::{GROUP_TYPE, USER_TYPE};
use latchkey_scim::{ScimError, ScimType};
use serde_json::{Value, json};

const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn user() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "alice",
        "name": {"givenName": "Alice", "familyName": "Liddell"},
        "active": true,
        "emails": [
            {"value": "alice@example.com", "type": "work", "primary": true},
            {"value": "alice@home.example", "type": "home"}
        ]
    })
}

fn request(ops: Value) -> Vec<PatchOp> {
    patch::parse_request(&json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": ops,
    }))
    .unwrap()
}

fn apply(ops: Value) -> Result<Value, ScimError> {
    let out = patch::apply(&user(), &request(ops), &USER_TYPE)?;
    USER_TYPE.check(&out, false)
}

fn ok(ops: Value) -> Value {
    apply(ops).unwrap()
}

fn err(ops: Value) -> ScimError {
    apply(ops).unwrap_err()
}

#[test]
fn replace_a_simple_attribute() {
    let out = ok(json!([{"op": "replace", "path": "active", "value": false}]));
    assert_eq!(out["active"], false);
    // Entra's capitalised op and string boolean.
    let out = ok(json!([{"op": "Replace", "path": "active", "value": "False"}]));
    assert_eq!(out["active"], false);
    // Paths are case-insensitive and come back canonical.
    let out = ok(json!([{"op": "replace", "path": "DISPLAYNAME", "value": "Al"}]));
    assert_eq!(out["displayName"], "Al");
}

#[test]
fn add_and_replace_sub_attributes() {
    let out = ok(json!([{"op": "add", "path": "name.middleName", "value": "P"}]));
    assert_eq!(out["name"]["middleName"], "P");
    assert_eq!(out["name"]["givenName"], "Alice");
    let out = ok(json!([{"op": "replace", "path": "name.givenName", "value": "Alicia"}]));
    assert_eq!(out["name"]["givenName"], "Alicia");
    // Replacing a complex attribute keeps the sub-attributes not named (RFC 7644 3.5.2.3).
    let out = ok(json!([{"op": "replace", "path": "name", "value": {"givenName": "Ally"}}]));
    assert_eq!(
        out["name"],
        json!({"givenName": "Ally", "familyName": "Liddell"})
    );
}

#[test]
fn add_appends_to_multi_valued_without_duplicates() {
    let out = ok(json!([{"op": "add", "path": "emails", "value": [
        {"value": "a@other.example", "type": "other"},
        {"value": "alice@example.com", "type": "work", "primary": true}
    ]}]));
    let emails = out["emails"].as_array().unwrap();
    assert_eq!(emails.len(), 3);
    assert_eq!(emails[2]["value"], "a@other.example");
    // Replace swaps the whole list.
    let out = ok(json!([{"op": "replace", "path": "emails", "value": [{"value": "x@y.example"}]}]));
    assert_eq!(out["emails"], json!([{"value": "x@y.example"}]));
}

#[test]
fn value_filter_paths() {
    let out = ok(
        json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "new@example.com"}]),
    );
    assert_eq!(out["emails"][0]["value"], "new@example.com");
    assert_eq!(out["emails"][1]["value"], "alice@home.example");
    let out = ok(
        json!([{"op": "replace", "path": "emails[type eq \"home\"]", "value": {"value": "h@h.example", "type": "home"}}]),
    );
    assert_eq!(
        out["emails"][1],
        json!({"value": "h@h.example", "type": "home"})
    );
    let out = ok(json!([{"op": "remove", "path": "emails[type eq \"home\"]"}]));
    assert_eq!(out["emails"].as_array().unwrap().len(), 1);
    let out = ok(json!([{"op": "remove", "path": "emails[type eq \"work\"].primary"}]));
    assert!(out["emails"][0].get("primary").is_none());
    // Setting a sub-attribute through an equality that matches nothing creates the item.
    let out = ok(
        json!([{"op": "add", "path": "emails[type eq \"other\"].value", "value": "o@o.example"}]),
    );
    assert_eq!(
        out["emails"][2],
        json!({"type": "other", "value": "o@o.example"})
    );
}

#[test]
fn remove_forms() {
    let out = ok(json!([{"op": "remove", "path": "name.givenName"}]));
    assert_eq!(out["name"], json!({"familyName": "Liddell"}));
    let out = ok(json!([{"op": "remove", "path": "emails"}]));
    assert!(out.get("emails").is_none());
    // Removing the last sub-attribute leaves the attribute unassigned, not `{}`.
    let out = ok(json!([
        {"op": "remove", "path": "name.givenName"},
        {"op": "remove", "path": "name.familyName"}
    ]));
    assert!(out.get("name").is_none());
    // Removing absent things is not an error.
    ok(json!([{"op": "remove", "path": "nickName"}]));
    ok(json!([{"op": "remove", "path": "emails[type eq \"fax\"]"}]));
}

#[test]
fn no_path_merges_an_object_of_attributes() {
    let out = ok(json!([{"op": "replace", "value": {
        "displayName": "A. L.",
        "name.givenName": "Al",
        "id": "ignored",
        ENT: {"department": "Sales"}
    }}]));
    assert_eq!(out["displayName"], "A. L.");
    assert_eq!(out["name"]["givenName"], "Al");
    assert!(out.get("id").is_none());
    assert_eq!(out[ENT]["department"], "Sales");
    assert!(out["schemas"].as_array().unwrap().contains(&json!(ENT)));
}

#[test]
fn extension_paths() {
    let path = format!("{ENT}:department");
    let out = ok(json!([{"op": "add", "path": path, "value": "Support"}]));
    assert_eq!(out[ENT]["department"], "Support");
    let out = ok(json!([{"op": "add", "path": format!("{ENT}:manager.value"), "value": "m-1"}]));
    assert_eq!(out[ENT]["manager"]["value"], "m-1");
}

#[test]
fn group_members_add_and_remove() {
    let group = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "g", "members": [{"value": "u1"}]});
    let ops = request(json!([
        {"op": "add", "path": "members", "value": [{"value": "u2"}, {"value": "u1"}]},
    ]));
    let out = patch::apply(&group, &ops, &GROUP_TYPE).unwrap();
    assert_eq!(out["members"], json!([{"value": "u1"}, {"value": "u2"}]));
    let ops = request(json!([{"op": "remove", "path": "members[value eq \"u1\"]"}]));
    let out = patch::apply(&out, &ops, &GROUP_TYPE).unwrap();
    assert_eq!(out["members"], json!([{"value": "u2"}]));
    // Entra removes members with a value list.
    let ops = request(json!([{"op": "remove", "path": "members", "value": [{"value": "u2"}]}]));
    let out = patch::apply(&out, &ops, &GROUP_TYPE).unwrap();
    assert!(out.get("members").is_none());
}

#[test]
fn refusals() {
    for (ops, expected) in [
        (
            json!([{"op": "replace", "path": "noSuch", "value": 1}]),
            ScimType::InvalidPath,
        ),
        (
            json!([{"op": "replace", "path": "name.noSuch", "value": 1}]),
            ScimType::InvalidPath,
        ),
        (
            json!([{"op": "replace", "path": "emails[noSuch eq \"x\"].value", "value": "x"}]),
            ScimType::InvalidPath,
        ),
        (
            json!([{"op": "replace", "path": "emails[type eq ", "value": "x"}]),
            ScimType::InvalidPath,
        ),
        (
            json!([{"op": "replace", "path": "name[givenName eq \"x\"]", "value": "x"}]),
            ScimType::InvalidPath,
        ),
        (
            json!([{"op": "replace", "path": "emails[type eq \"x\"]junk", "value": "x"}]),
            ScimType::InvalidPath,
        ),
        (
            json!([{"op": "replace", "path": "bad path!", "value": "x"}]),
            ScimType::InvalidPath,
        ),
        (
            json!([{"op": "replace", "path": "id", "value": "x"}]),
            ScimType::Mutability,
        ),
        (
            json!([{"op": "replace", "path": "meta.created", "value": "x"}]),
            ScimType::Mutability,
        ),
        (
            json!([{"op": "add", "path": "groups", "value": [{"value": "g"}]}]),
            ScimType::Mutability,
        ),
        (
            json!([{"op": "replace", "path": "emails[type eq \"fax\"]", "value": {"value": "x"}}]),
            ScimType::NoTarget,
        ),
        (json!([{"op": "remove"}]), ScimType::NoTarget),
        (
            json!([{"op": "replace", "path": "active", "value": "maybe"}]),
            ScimType::InvalidValue,
        ),
        (
            json!([{"op": "replace", "path": "userName", "value": 12}]),
            ScimType::InvalidValue,
        ),
        (
            json!([{"op": "replace", "value": "not an object"}]),
            ScimType::InvalidValue,
        ),
        (
            json!([{"op": "remove", "path": "userName"}]),
            ScimType::InvalidValue,
        ),
    ] {
        let e = err(ops.clone());
        assert_eq!(e.status, 400, "{ops}");
        assert_eq!(e.scim_type, Some(expected), "{ops}: {e}");
    }
}

#[test]
fn malformed_requests_are_invalid_syntax() {
    for body in [
        json!([]),
        json!({"Operations": [{"op": "add", "path": "x", "value": 1}]}),
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"]}),
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": []}),
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "move"}]}),
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"path": "x"}]}),
    ] {
        let e = patch::parse_request(&body).unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::InvalidSyntax), "{body}");
    }
    let many: Vec<Value> = (0..300)
        .map(|_| json!({"op": "remove", "path": "nickName"}))
        .collect();
    let body =
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": many});
    assert!(patch::parse_request(&body).is_err());
}

#[test]
fn a_failing_operation_leaves_the_input_untouched() {
    let before = user();
    let ops = request(json!([
        {"op": "replace", "path": "displayName", "value": "changed"},
        {"op": "replace", "path": "noSuch", "value": 1}
    ]));
    assert!(patch::apply(&before, &ops, &USER_TYPE).is_err());
    assert_eq!(before, user());
}

#[test]
fn an_extension_urn_as_the_path() {
    let out = ok(json!([{"op": "add", "path": ENT, "value": {
        "schemas": [ENT], "department": "Support", "employeeNumber": "42"
    }}]));
    assert_eq!(
        out[ENT],
        json!({"department": "Support", "employeeNumber": "42"})
    );
    let ops = request(json!([{"op": "remove", "path": ENT}]));
    let removed = patch::apply(&out, &ops, &USER_TYPE).unwrap();
    assert!(removed.get(ENT).is_none());
}

/// The member changes a server may apply one row at a time: for every group PATCH below,
/// applying the changes to the members they name gives what `apply` gives to the whole
/// group; anything else is not a member change.
#[test]
fn value_changes_agree_with_apply_on_the_members_they_name() {
    use latchkey_scim::patch::ValueChange;
    let group = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "Eng",
        "members": [{"value": "a", "display": "A"}, {"value": "b"}, {"value": "c"}],
    });
    let members = |g: &Value| -> Vec<String> {
        g["members"]
            .as_array()
            .map(|m| {
                m.iter()
                    .map(|e| e["value"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let cases = [
        json!([{"op": "add", "path": "members", "value": [{"value": "d"}, {"value": "a"}]}]),
        json!([{"op": "Add", "path": "Members", "value": {"value": "e"}}]),
        json!([{"op": "remove", "path": "members", "value": [{"value": "b"}, {"value": "z"}]}]),
        json!([{"op": "remove", "path": "members[value eq \"c\"]"}]),
        json!([{"op": "remove", "path": "members[Value eq \"a\"]"},
               {"op": "add", "path": "members", "value": [{"value": "a", "display": "new"}]}]),
        // A given item without a `value` removes nothing.
        json!([{"op": "remove", "path": "members", "value": [{"display": "A"}]}]),
    ];
    for ops in cases {
        let ops = request(ops);
        let whole = patch::apply(&group, &ops, &GROUP_TYPE).unwrap();
        let mut now = members(&group);
        let mut added = Vec::new();
        for op in &ops {
            match patch::value_change(op, &GROUP_TYPE, "members").expect("a member change") {
                ValueChange::Add(items) => {
                    for item in items {
                        let v = item["value"].as_str().unwrap().to_owned();
                        if !now.contains(&v) {
                            now.push(v);
                            added.push(item.clone());
                        }
                    }
                }
                ValueChange::Remove(gone) => now.retain(|v| !gone.contains(v)),
            }
        }
        let mut want = members(&whole);
        want.sort();
        now.sort();
        assert_eq!(now, want, "{ops:?}");
        for item in added {
            assert!(whole["members"].as_array().unwrap().contains(&item));
        }
    }
    for other in [
        json!([{"op": "replace", "path": "members", "value": [{"value": "a"}]}]),
        json!([{"op": "remove", "path": "members"}]),
        json!([{"op": "remove", "path": "members[display eq \"A\"]"}]),
        json!([{"op": "remove", "path": "members[value eq \"a\" or value eq \"b\"]"}]),
        json!([{"op": "replace", "path": "members[value eq \"a\"].display", "value": "x"}]),
        json!([{"op": "replace", "path": "displayName", "value": "x"}]),
        json!([{"op": "add", "value": {"members": [{"value": "a"}]}}]),
    ] {
        let ops = request(other);
        assert_eq!(
            patch::value_change(&ops[0], &GROUP_TYPE, "members"),
            None,
            "{ops:?}"
        );
    }
}
