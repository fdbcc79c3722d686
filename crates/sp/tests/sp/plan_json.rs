//! The plan's JSON shape, which `latchkey sp plan` prints and the audit log stores.

use latchkey_sp::jit::{Lookup, PlanAction, ProvisioningPlan, plan};
use latchkey_sp::store::{Account, ProvisionedBy, RoleOrigin};
use serde_json::json;
use uuid::Uuid;

use crate::support::{WIKI, alice, contract, t0};

#[test]
fn create_plan_json() {
    let c = contract(WIKI);
    let mapped = c.map(&alice()).unwrap();
    let p = plan(&c, &mapped, &Lookup::default());
    assert_eq!(
        serde_json::to_value(&p).unwrap(),
        json!({
            "identity": {"idp_entity_id": "https://idp.example.org/saml", "key": "name_id:alice-7f3a"},
            "action": "create",
            "fields": {"display_name": "Alice Liddell", "email": "Alice@Example.org", "username": "alice"},
            "roles": ["admin", "editor"],
        })
    );
}

#[test]
fn update_plan_json_round_trips() {
    let c = contract(WIKI);
    let mapped = c.map(&alice()).unwrap();
    let id = Uuid::from_u128(0x1234);
    let existing = Account {
        id,
        identity: Some(mapped.identity.clone()),
        email: Some("alice@example.org".to_owned()),
        fields: [
            ("email", "Alice@Example.org"),
            ("display_name", "Old Name"),
            ("username", "alice0"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect(),
        roles: [
            ("staff".to_owned(), RoleOrigin::Managed),
            ("admin".to_owned(), RoleOrigin::Manual),
        ]
        .into_iter()
        .collect(),
        provisioned_by: ProvisionedBy::Jit,
        active: true,
        created_at: t0(),
        updated_at: t0(),
    };
    let lookup = Lookup {
        by_identity: Some(existing),
        by_email: None,
    };
    let p = plan(&c, &mapped, &lookup);
    let value = serde_json::to_value(&p).unwrap();
    assert_eq!(
        value,
        json!({
            "identity": {"idp_entity_id": "https://idp.example.org/saml", "key": "name_id:alice-7f3a"},
            "action": "update",
            "account_id": "00000000-0000-0000-0000-000000001234",
            "field_changes": [{"field": "display_name", "old": "Old Name", "new": "Alice Liddell"}],
            "roles_added": ["editor"],
            "roles_removed": ["staff"],
        })
    );
    let back: ProvisioningPlan = serde_json::from_value(value).unwrap();
    assert_eq!(back, p);
}

#[test]
fn refuse_plan_json() {
    let c = contract(WIKI);
    let mut facts = alice();
    facts.attributes.remove("mail");
    let refusal = c.map(&facts).unwrap_err();
    let p = ProvisioningPlan::refused(None, refusal);
    assert_eq!(
        serde_json::to_value(&p).unwrap(),
        json!({
            "identity": null,
            "action": "refuse",
            "code": "REQUIRED_ATTRIBUTE_MISSING",
            "detail": "attribute `mail` (field `email`)",
        })
    );
}

#[test]
fn logout_event_plan_json_round_trips() {
    use latchkey_sp::store::LogoutRecord;

    let p = ProvisioningPlan {
        identity: None,
        action: PlanAction::Logout(LogoutRecord::Received {
            request_id: "_r1".into(),
            name_id: "alice-7f3a".into(),
            session_indexes: vec!["_s1".into()],
            sessions_ended: 2,
        }),
    };
    let value = serde_json::to_value(&p).unwrap();
    assert_eq!(
        value,
        json!({
            "identity": null,
            "action": "logout",
            "event": "received",
            "request_id": "_r1",
            "name_id": "alice-7f3a",
            "session_indexes": ["_s1"],
            "sessions_ended": 2,
        })
    );
    let back: ProvisioningPlan = serde_json::from_value(value).unwrap();
    assert_eq!(back, p);
    let refused = ProvisioningPlan {
        identity: None,
        action: PlanAction::Logout(LogoutRecord::Refused {
            code: "LOGOUT_REPLAYED".into(),
            detail: "LogoutRequest `_r1` was already used".into(),
        }),
    };
    let text = serde_json::to_string(&refused).unwrap();
    assert_eq!(
        serde_json::from_str::<ProvisioningPlan>(&text).unwrap(),
        refused
    );
}

/// An `audit.purged` event's plan: the cutoff (RFC 3339) and how many events went.
#[test]
fn purge_plan_json_round_trips() {
    let p = ProvisioningPlan {
        identity: None,
        action: PlanAction::Purge {
            before: t0(),
            events: 1234,
        },
    };
    let value = serde_json::to_value(&p).unwrap();
    assert_eq!(
        value,
        json!({"identity": null, "action": "purge", "before": "2026-11-28T12:00:00Z", "events": 1234})
    );
    assert_eq!(
        serde_json::from_value::<ProvisioningPlan>(value).unwrap(),
        p
    );
}
