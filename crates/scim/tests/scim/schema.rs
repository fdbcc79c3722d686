//! SCIM resources against their schema, and the discovery documents.

use latchkey_scim::list::Projection;
use latchkey_scim::schema::{self, GROUP_TYPE, USER_TYPE};
use latchkey_scim::{self as scim, ScimType};
use serde_json::json;

#[test]
fn a_user_comes_back_canonical_without_read_only_attributes() {
    let out = USER_TYPE
        .check(
            &json!({
                "SCHEMAS": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "USERNAME": "alice",
                "id": "client-chosen",
                "meta": {"created": "2000-01-01T00:00:00Z"},
                "groups": [{"value": "g"}],
                "Name": {"GivenName": "Alice"},
                "emails": [{"Value": "a@example.com", "Primary": true}],
                "nickName": "",
                "title": null
            }),
            true,
        )
        .unwrap();
    assert_eq!(
        out,
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "alice",
            "name": {"givenName": "Alice"},
            "emails": [{"value": "a@example.com", "primary": true}]
        })
    );
}

#[test]
fn bad_resources() {
    for (body, expected) in [
        (json!("text"), ScimType::InvalidSyntax),
        (json!({"userName": "a"}), ScimType::InvalidSyntax),
        (
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "userName": "a"}),
            ScimType::InvalidSyntax,
        ),
        (
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"]}),
            ScimType::InvalidValue,
        ),
        (
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": 5}),
            ScimType::InvalidValue,
        ),
        (
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "a", "active": 1}),
            ScimType::InvalidValue,
        ),
        (
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "a", "emails": {"value": "x"}}),
            ScimType::InvalidValue,
        ),
        (
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "a", "shoeSize": 9}),
            ScimType::InvalidValue,
        ),
        (
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "a", "name": {"nick": "x"}}),
            ScimType::InvalidValue,
        ),
    ] {
        let e = USER_TYPE.check(&body, true).unwrap_err();
        assert_eq!(
            (e.status, e.scim_type),
            (400, Some(expected)),
            "{body}: {e}"
        );
    }
    let e = GROUP_TYPE
        .check(
            &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"]}),
            true,
        )
        .unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
}

#[test]
fn discovery_documents_describe_the_schemas() {
    let user = schema::schema_json(&schema::USER, "https://app/scim/v2");
    let names: Vec<&str> = user["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert!(
        names.contains(&"userName") && names.contains(&"emails") && names.contains(&"externalId")
    );
    let user_name = user["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "userName")
        .unwrap();
    assert_eq!(user_name["uniqueness"], "server");
    assert_eq!(user_name["required"], true);
    let rt = USER_TYPE.to_json("https://app/scim/v2");
    assert_eq!(rt["endpoint"], "/Users");
    assert_eq!(
        rt["schemaExtensions"][0]["schema"],
        scim::ENTERPRISE_USER_SCHEMA
    );
    let spc = scim::service_provider_config("https://app/scim/v2");
    assert_eq!(spc["patch"]["supported"], true);
    assert_eq!(spc["etag"]["supported"], true);
}

#[test]
fn error_bodies_carry_status_and_scim_type() {
    let e = scim::ScimError::uniqueness("userName alice is taken");
    assert_eq!(
        e.to_json(),
        json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
            "status": "409",
            "scimType": "uniqueness",
            "detail": "userName alice is taken"
        })
    );
    assert!(
        scim::ScimError::precondition_failed()
            .to_json()
            .get("scimType")
            .is_none()
    );
}

#[test]
fn etags_and_if_match() {
    assert_eq!(scim::etag(3), "W/\"3\"");
    assert!(scim::if_match_admits("W/\"3\"", 3));
    assert!(scim::if_match_admits("\"3\"", 3));
    assert!(scim::if_match_admits("*", 3));
    assert!(scim::if_match_admits("W/\"1\", W/\"3\"", 3));
    assert!(!scim::if_match_admits("W/\"2\"", 3));
}

#[test]
fn attributes_and_excluded_attributes_project_a_resource() {
    let params = |k: &str, v: &str| vec![(k.to_owned(), v.to_owned())];
    let resource = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": "1",
        "userName": "alice",
        "name": {"givenName": "Alice", "familyName": "Liddell"},
        "emails": [{"value": "a@example.org", "type": "work"}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Support"},
        "meta": {"resourceType": "User"}
    });
    let mut only = resource.clone();
    Projection::parse(
        &params("attributes", "userName,name.givenName,emails.value"),
        &USER_TYPE,
    )
    .apply(&mut only);
    assert_eq!(
        only,
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": "1",
            "userName": "alice",
            "name": {"givenName": "Alice"},
            "emails": [{"value": "a@example.org"}]
        })
    );
    let mut without = resource.clone();
    Projection::parse(
        &params(
            "excludedAttributes",
            "name, emails.type, id, urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
        ),
        &USER_TYPE,
    )
    .apply(&mut without);
    assert!(without.get("name").is_none());
    assert_eq!(without["emails"], json!([{"value": "a@example.org"}]));
    assert_eq!(without["id"], "1", "id is always returned");
    assert!(
        without
            .get("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
            .is_none()
    );
}

/// What a projection returns of a top-level attribute, so a server may leave out reading what
/// it drops: a group's members for `excludedAttributes=members` or `attributes=displayName`.
#[test]
fn projection_says_whether_an_attribute_is_returned() {
    let params = |k: &str, v: &str| vec![(k.to_owned(), v.to_owned())];
    let returns =
        |k: &str, v: &str| Projection::parse(&params(k, v), &GROUP_TYPE).returns("members");
    assert!(Projection::default().returns("members"));
    assert!(!returns("excludedAttributes", "members"));
    assert!(
        !returns("excludedAttributes", "MEMBERS"),
        "names are case-insensitive"
    );
    assert!(!returns("attributes", "displayName"));
    assert!(returns("attributes", "displayName,members"));
    assert!(
        returns("attributes", "members.value"),
        "a sub-attribute needs the members"
    );
    assert!(returns("excludedAttributes", "members.display"));
    assert!(returns("excludedAttributes", "displayName"));
    assert!(
        returns("excludedAttributes", "shoeSize"),
        "an unknown name selects nothing"
    );
}
