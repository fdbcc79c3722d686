//! The JIT engine against a real (SQLite) store: one test per behaviour of the contract.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use latchkey_sp::jit::{
    FieldChange, IdentityKey, JitEngine, LoginFacts, Outcome, PlanAction, Provisioned,
    ProvisioningPlan, RefusalCode,
};
use latchkey_sp::settings::UnchangedLogins;
use latchkey_sp::store::{Account, AuditKind, ProvisionedBy, RoleOrigin, SqlAccountStore};
use latchkey_sp::{Error, SetFieldError};
use time::Duration;
use uuid::Uuid;

use crate::support::{Db, IDP, WIKI, alice, contract, engine, facts, fixture, t0, wiki_with};

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn roles(pairs: &[(&str, RoleOrigin)]) -> BTreeMap<String, RoleOrigin> {
    pairs.iter().map(|(r, o)| ((*r).to_owned(), *o)).collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn refusal(result: Result<Provisioned, Error>) -> (RefusalCode, Uuid) {
    match result {
        Err(Error::Refused {
            refusal,
            operation_id,
        }) => (refusal.code, operation_id),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn with_attr(mut facts: LoginFacts, name: &str, values: &[&str]) -> LoginFacts {
    facts.attributes.insert(
        name.to_owned(),
        values.iter().map(|v| (*v).to_owned()).collect(),
    );
    facts
}

fn without_attr(mut facts: LoginFacts, name: &str) -> LoginFacts {
    facts.attributes.remove(name);
    facts
}

/// Asserts the audit log holds exactly one event, a refusal with `code` under `operation_id`.
async fn assert_refusal_audited(store: &SqlAccountStore, code: RefusalCode, operation_id: Uuid) {
    let log = store.audit_log(100).await.unwrap();
    let refusals: Vec<_> = log
        .iter()
        .filter(|e| e.kind == AuditKind::Refused)
        .collect();
    assert_eq!(refusals.len(), 1, "{log:#?}");
    assert_eq!(refusals[0].operation_id, operation_id);
    match &refusals[0].plan.action {
        PlanAction::Refuse(r) => assert_eq!(r.code, code),
        other => panic!("refusal event carries {other:?}"),
    }
}

async fn first_login_creates_account_with_fields_and_managed_roles(db: Db) {
    let (fx, engine) = engine(db, contract(WIKI)).await;
    let p = engine.login(&alice(), t0()).await.unwrap();

    assert_eq!(p.outcome, Outcome::Created);
    assert_eq!(
        p.account.identity,
        Some(IdentityKey::name_id(IDP, "alice-7f3a"))
    );
    assert_eq!(
        p.account.fields,
        map(&[
            ("email", "Alice@Example.org"),
            ("display_name", "Alice Liddell"),
            ("username", "alice"),
        ])
    );
    assert_eq!(p.account.email.as_deref(), Some("alice@example.org"));
    assert_eq!(
        p.account.roles,
        roles(&[
            ("admin", RoleOrigin::Managed),
            ("editor", RoleOrigin::Managed)
        ])
    );
    assert_eq!(p.account.provisioned_by, ProvisionedBy::Jit);

    let stored = fx.store.account(p.account.id).await.unwrap().unwrap();
    assert_eq!(stored, p.account);
    assert_eq!(fx.store.accounts().await.unwrap().len(), 1);

    let log = fx.store.audit_log(10).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].kind, AuditKind::Created);
    assert_eq!(log[0].operation_id, p.operation_id);
    assert_eq!(log[0].account_id, Some(p.account.id));
    assert_eq!(log[0].session_index.as_deref(), Some("_session-1"));
    assert_eq!(log[0].plan, p.plan);

    // The same login again finds the account by identity and changes nothing.
    let again = engine
        .login(&alice(), t0() + Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(again.outcome, Outcome::Unchanged);
    assert_eq!(again.account.id, p.account.id);
    assert_eq!(
        fx.store.audit_log(10).await.unwrap()[1].kind,
        AuditKind::Unchanged
    );
}

async fn on_first_login_refuse_admits_only_pre_provisioned_accounts(db: Db) {
    let (fx, engine) = engine(
        db,
        wiki_with(|c| {
            c.replace(
                r#"on_first_login = "create""#,
                r#"on_first_login = "refuse""#,
            )
        }),
    )
    .await;

    let (code, op) = refusal(engine.login(&alice(), t0()).await);
    assert_eq!(code, RefusalCode::NotProvisioned);
    assert!(fx.store.accounts().await.unwrap().is_empty());
    assert_refusal_audited(&fx.store, code, op).await;

    // Pre-provisioned by the app with the identity JIT will compute: admitted and filled in.
    let bob = facts(
        "bob-11",
        &[("mail", &["bob@example.org"]), ("groups", &["wiki-users"])],
    );
    let pre = fx
        .store
        .create_account(
            Some(IdentityKey::name_id(IDP, "bob-11")),
            map(&[("email", "bob@example.org")]),
            t0(),
        )
        .await
        .unwrap()
        .unwrap();
    let p = engine.login(&bob, t0()).await.unwrap();
    assert_eq!(p.outcome, Outcome::Updated);
    assert_eq!(p.account.id, pre.id);
    assert_eq!(p.account.roles, roles(&[("editor", RoleOrigin::Managed)]));
    assert_eq!(fx.store.accounts().await.unwrap().len(), 1);
}

async fn idp_owned_field_is_overwritten_and_cleared(db: Db) {
    let (fx, engine) = engine(db, contract(WIKI)).await;
    let first = engine.login(&alice(), t0()).await.unwrap();

    let renamed = with_attr(alice(), "displayName", &["Alice Kingsleigh"]);
    let p = engine
        .login(&renamed, t0() + Duration::days(1))
        .await
        .unwrap();
    assert_eq!(p.outcome, Outcome::Updated);
    match &p.plan.action {
        PlanAction::Update {
            field_changes,
            roles_added,
            roles_removed,
            ..
        } => {
            assert_eq!(
                field_changes,
                &vec![FieldChange {
                    field: "display_name".to_owned(),
                    old: Some("Alice Liddell".to_owned()),
                    new: Some("Alice Kingsleigh".to_owned()),
                }]
            );
            assert!(roles_added.is_empty() && roles_removed.is_empty());
        }
        other => panic!("expected update, got {other:?}"),
    }
    let stored = fx.store.account(first.account.id).await.unwrap().unwrap();
    assert_eq!(stored.fields["display_name"], "Alice Kingsleigh");
    assert_eq!(stored.updated_at, t0() + Duration::days(1));
    assert_eq!(stored.created_at, t0());

    // The IdP stops sending the (optional) attribute: the IdP-owned field follows.
    let p = engine
        .login(&without_attr(alice(), "displayName"), t0())
        .await
        .unwrap();
    assert_eq!(p.outcome, Outcome::Updated);
    let stored = fx.store.account(first.account.id).await.unwrap().unwrap();
    assert!(!stored.fields.contains_key("display_name"));
}

async fn idp_owned_email_change_moves_the_unique_address(db: Db) {
    let (fx, engine) = engine(db, contract(WIKI)).await;
    let first = engine.login(&alice(), t0()).await.unwrap();
    let moved = with_attr(alice(), "mail", &["Alice@New.example"]);
    assert_eq!(
        engine.login(&moved, t0()).await.unwrap().outcome,
        Outcome::Updated
    );
    let stored = fx.store.account(first.account.id).await.unwrap().unwrap();
    assert_eq!(stored.email.as_deref(), Some("alice@new.example"));
    // The old address is free again, the new one is taken.
    let old = fx
        .store
        .create_account(None, map(&[("email", "alice@example.org")]), t0())
        .await
        .unwrap();
    assert!(old.is_some());
    let new = fx
        .store
        .create_account(None, map(&[("email", "ALICE@new.example")]), t0())
        .await
        .unwrap();
    assert!(new.is_none());
}

/// The application moving a local account to an address another account holds (as when a
/// concurrent write took it after the application checked it was free): the unique index
/// refuses it, and `set_field` says so with a typed error, never a raw store error.
async fn setting_an_email_another_account_holds_is_a_typed_error(db: Db) {
    let fx = fixture(db).await;
    let mine = fx
        .store
        .create_account(None, map(&[("email", "me@example.org")]), t0())
        .await
        .unwrap()
        .unwrap();
    // Taken after the application looked.
    fx.store
        .create_account(None, map(&[("email", "taken@example.org")]), t0())
        .await
        .unwrap()
        .unwrap();
    let later = t0() + Duration::minutes(1);
    match fx
        .store
        .set_field(mine.id, "email", "Taken@Example.org", later)
        .await
    {
        Err(e @ SetFieldError::EmailTaken) => {
            assert_eq!(e.code().as_str(), "EMAIL_BELONGS_TO_OTHER_ACCOUNT");
        }
        other => panic!("expected EmailTaken, got {other:?}"),
    }
    // Nothing was written, and the store is usable at once.
    assert_eq!(fx.store.account(mine.id).await.unwrap().unwrap(), mine);
    assert!(
        fx.store
            .set_field(mine.id, "email", "free@example.org", later)
            .await
            .unwrap()
    );
    let stored = fx.store.account(mine.id).await.unwrap().unwrap();
    assert_eq!(stored.email.as_deref(), Some("free@example.org"));
    assert!(
        !fx.store
            .set_field(Uuid::new_v4(), "email", "x@example.org", later)
            .await
            .unwrap()
    );
}

async fn create_only_field_is_kept_after_creation(db: Db) {
    let (fx, engine) = engine(db, contract(WIKI)).await;
    let first = engine.login(&alice(), t0()).await.unwrap();

    let p = engine
        .login(&with_attr(alice(), "uid", &["alice.l"]), t0())
        .await
        .unwrap();
    assert_eq!(p.outcome, Outcome::Unchanged);
    let stored = fx.store.account(first.account.id).await.unwrap().unwrap();
    assert_eq!(stored.fields["username"], "alice");

    // Even when the user or app changed it since.
    fx.store
        .set_field(first.account.id, "username", "queen-alice", t0())
        .await
        .unwrap();
    engine.login(&alice(), t0()).await.unwrap();
    let stored = fx.store.account(first.account.id).await.unwrap().unwrap();
    assert_eq!(stored.fields["username"], "queen-alice");
}

async fn app_owned_and_undeclared_fields_are_never_touched(db: Db) {
    let (fx, engine) = engine(db, contract(WIKI)).await;
    let first = engine.login(&alice(), t0()).await.unwrap();
    fx.store
        .set_field(first.account.id, "nickname", "Al", t0())
        .await
        .unwrap();
    fx.store
        .set_field(first.account.id, "theme", "dark", t0())
        .await
        .unwrap();

    // The IdP even sends attributes named like those fields: they are not read.
    let noisy = with_attr(
        with_attr(alice(), "nickname", &["Ally"]),
        "theme",
        &["light"],
    );
    let p = engine.login(&noisy, t0()).await.unwrap();
    assert_eq!(p.outcome, Outcome::Unchanged);
    let stored = fx.store.account(first.account.id).await.unwrap().unwrap();
    assert_eq!(stored.fields["nickname"], "Al");
    assert_eq!(stored.fields["theme"], "dark");
}

async fn role_rules_contains_prefix_equals_and_default_role(db: Db) {
    let (_fx, engine) = engine(db, contract(WIKI)).await;
    let carol = facts(
        "carol",
        &[
            ("mail", &["carol@example.org"]),
            ("groups", &["wiki-readers"]),
            ("employeeType", &["staff"]),
        ],
    );
    let p = engine.login(&carol, t0()).await.unwrap();
    assert_eq!(
        p.account.roles,
        roles(&[
            ("editor", RoleOrigin::Managed),
            ("staff", RoleOrigin::Managed)
        ])
    );

    // `equals` needs exactly one distinct value; `contains` is exact, not a substring.
    let dave = facts(
        "dave",
        &[
            ("mail", &["dave@example.org"]),
            ("groups", &["xwiki-admins", "WIKI-ADMINS", "admins-wiki-"]),
            ("employeeType", &["staff", "contractor"]),
        ],
    );
    let (code, _) = refusal(engine.login(&dave, t0()).await);
    assert_eq!(code, RefusalCode::NoMatchingRole);

    // Without the deny rule, a default role stands in when nothing matches.
    let (_fx, engine) = engine_with_default(db).await;
    let p = engine.login(&dave, t0()).await.unwrap();
    assert_eq!(p.account.roles, roles(&[("viewer", RoleOrigin::Managed)]));
    let p = engine.login(&carol, t0()).await.unwrap();
    assert!(!p.account.roles.contains_key("viewer"));
}

async fn engine_with_default(db: Db) -> (crate::support::Fixture, JitEngine<SqlAccountStore>) {
    engine(
        db,
        wiki_with(|c| c.replace("deny_when_no_role = true", r#"default_role = "viewer""#)),
    )
    .await
}

async fn managed_role_follows_groups_while_hand_granted_role_stays(db: Db) {
    let (fx, engine) = engine(db, contract(WIKI)).await;
    let first = engine.login(&alice(), t0()).await.unwrap();
    let id = first.account.id;
    fx.store.grant_manual_role(id, "moderator").await.unwrap();
    // An admin also confirms "editor" by hand: it must survive the group going away.
    fx.store.grant_manual_role(id, "editor").await.unwrap();

    let demoted = with_attr(alice(), "groups", &["wiki-users"]);
    let p = engine.login(&demoted, t0()).await.unwrap();
    match &p.plan.action {
        PlanAction::Update {
            roles_added,
            roles_removed,
            field_changes,
            ..
        } => {
            assert!(roles_added.is_empty());
            assert_eq!(roles_removed, &set(&["admin"]));
            assert!(field_changes.is_empty());
        }
        other => panic!("expected update, got {other:?}"),
    }
    let stored = fx.store.account(id).await.unwrap().unwrap();
    assert_eq!(
        stored.roles,
        roles(&[
            ("editor", RoleOrigin::Manual),
            ("moderator", RoleOrigin::Manual)
        ])
    );

    // Back in the admin group: the managed role returns.
    let p = engine.login(&alice(), t0()).await.unwrap();
    assert_eq!(p.outcome, Outcome::Updated);
    let stored = fx.store.account(id).await.unwrap().unwrap();
    assert_eq!(stored.roles.get("admin"), Some(&RoleOrigin::Managed));
}

async fn deny_rule_refuses_with_code_and_writes_nothing(db: Db) {
    let (fx, engine) = engine(db, contract(WIKI)).await;
    let outsider = with_attr(alice(), "groups", &["finance"]);
    let (code, op) = refusal(engine.login(&outsider, t0()).await);
    assert_eq!(code, RefusalCode::NoMatchingRole);
    assert!(fx.store.accounts().await.unwrap().is_empty());
    assert_refusal_audited(&fx.store, code, op).await;

    // An existing account losing every group is refused and left exactly as it was.
    let before = engine.login(&alice(), t0()).await.unwrap().account;
    let renamed = with_attr(outsider, "displayName", &["Someone Else"]);
    let (code, _) = refusal(engine.login(&renamed, t0() + Duration::days(1)).await);
    assert_eq!(code, RefusalCode::NoMatchingRole);
    assert_eq!(fx.store.account(before.id).await.unwrap().unwrap(), before);
}

async fn missing_required_attribute_refuses_and_writes_nothing(db: Db) {
    let (fx, engine) = engine(db, contract(WIKI)).await;
    let (code, op) = refusal(engine.login(&without_attr(alice(), "mail"), t0()).await);
    assert_eq!(code, RefusalCode::RequiredAttributeMissing);
    assert!(fx.store.accounts().await.unwrap().is_empty());
    assert_refusal_audited(&fx.store, code, op).await;

    // An empty value is no value.
    let (code, _) = refusal(engine.login(&with_attr(alice(), "mail", &[""]), t0()).await);
    assert_eq!(code, RefusalCode::RequiredAttributeMissing);

    // Existing account: refused, untouched.
    let before = engine.login(&alice(), t0()).await.unwrap().account;
    let changed = with_attr(without_attr(alice(), "mail"), "displayName", &["X"]);
    let (code, _) = refusal(engine.login(&changed, t0()).await);
    assert_eq!(code, RefusalCode::RequiredAttributeMissing);
    assert_eq!(fx.store.account(before.id).await.unwrap().unwrap(), before);
}

async fn multi_valued_field_attribute_is_refused(db: Db) {
    let (fx, engine) = engine(db, contract(WIKI)).await;
    let two_mails = with_attr(alice(), "mail", &["a@example.org", "b@example.org"]);
    let (code, _) = refusal(engine.login(&two_mails, t0()).await);
    assert_eq!(code, RefusalCode::AttributeMultiValued);
    assert!(fx.store.accounts().await.unwrap().is_empty());

    // The same value twice is one value.
    let dup = with_attr(alice(), "mail", &["a@example.org", "a@example.org"]);
    assert_eq!(
        engine.login(&dup, t0()).await.unwrap().outcome,
        Outcome::Created
    );
}

async fn non_persistent_name_id_is_refused_by_default_identity(db: Db) {
    let (fx, engine) = engine(db, contract(WIKI)).await;
    let mut transient = alice();
    transient.name_id_format =
        Some("urn:oasis:names:tc:SAML:2.0:nameid-format:transient".to_owned());
    let (code, op) = refusal(engine.login(&transient, t0()).await);
    assert_eq!(code, RefusalCode::NameIdNotPersistent);
    let mut unspecified = alice();
    unspecified.name_id_format = None;
    let (code, _) = refusal(
        engine
            .login(&unspecified, t0() + Duration::seconds(1))
            .await,
    );
    assert_eq!(code, RefusalCode::NameIdNotPersistent);
    assert!(fx.store.accounts().await.unwrap().is_empty());
    let log = fx.store.audit_log(10).await.unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].operation_id, op);
    assert_eq!(log[0].plan.identity, None);
}

async fn identity_from_attribute_ignores_name_id(db: Db) {
    let (fx, engine) = engine(
        db,
        wiki_with(|c| {
            format!("identity = {{ source = \"attribute\", attribute = \"employeeNumber\" }}\n{c}")
        }),
    )
    .await;
    let mut first = with_attr(alice(), "employeeNumber", &["E-1001"]);
    first.name_id_format = Some("urn:oasis:names:tc:SAML:2.0:nameid-format:transient".to_owned());
    let created = engine.login(&first, t0()).await.unwrap();
    assert_eq!(
        created.account.identity,
        Some(IdentityKey::attribute(IDP, "employeeNumber", "E-1001"))
    );
    // A new transient NameID next time: still the same account.
    let mut second = first.clone();
    second.name_id = "another-transient".to_owned();
    let p = engine.login(&second, t0()).await.unwrap();
    assert_eq!(p.account.id, created.account.id);

    let (code, _) = refusal(
        engine
            .login(&without_attr(first.clone(), "employeeNumber"), t0())
            .await,
    );
    assert_eq!(code, RefusalCode::IdentityAttributeMissing);
    let (code, _) = refusal(
        engine
            .login(&with_attr(first, "employeeNumber", &["E-1", "E-2"]), t0())
            .await,
    );
    assert_eq!(code, RefusalCode::IdentityAttributeMultiValued);
    assert_eq!(fx.store.accounts().await.unwrap().len(), 1);
}

async fn same_name_id_from_another_idp_is_another_person(db: Db) {
    let (fx, engine) = engine(db, contract(WIKI)).await;
    engine.login(&alice(), t0()).await.unwrap();
    let mut elsewhere = with_attr(alice(), "mail", &["alice@other.example"]);
    elsewhere.idp_entity_id = "https://other-idp.example/".to_owned();
    let p = engine.login(&elsewhere, t0()).await.unwrap();
    assert_eq!(p.outcome, Outcome::Created);
    assert_eq!(fx.store.accounts().await.unwrap().len(), 2);
}

async fn without_link_by_email_a_local_account_is_not_taken_over(db: Db) {
    let (fx, engine) = engine(db, contract(WIKI)).await;
    let local = fx
        .store
        .create_account(None, map(&[("email", "alice@example.org")]), t0())
        .await
        .unwrap()
        .unwrap();
    fx.store.grant_manual_role(local.id, "owner").await.unwrap();
    let local = fx.store.account(local.id).await.unwrap().unwrap();

    let (code, op) = refusal(engine.login(&alice(), t0()).await);
    assert_eq!(code, RefusalCode::EmailBelongsToUnlinkedAccount);
    assert_refusal_audited(&fx.store, code, op).await;
    let all = fx.store.accounts().await.unwrap();
    assert_eq!(all, vec![local]);
}

async fn with_link_by_email_the_local_account_is_linked_and_audited(db: Db) {
    let (fx, engine) = engine(db, wiki_with(|c| format!("link_by_email = true\n{c}"))).await;
    let local = fx
        .store
        .create_account(
            None,
            map(&[("email", "ALICE@example.org"), ("nickname", "Al")]),
            t0(),
        )
        .await
        .unwrap()
        .unwrap();
    fx.store.grant_manual_role(local.id, "owner").await.unwrap();

    let p = engine.login(&alice(), t0()).await.unwrap();
    assert_eq!(p.outcome, Outcome::Linked);
    assert_eq!(p.account.id, local.id);
    match &p.plan.action {
        PlanAction::Link {
            account_id, email, ..
        } => {
            assert_eq!(*account_id, local.id);
            assert_eq!(email, "alice@example.org");
        }
        other => panic!("expected link, got {other:?}"),
    }
    let stored = fx.store.account(local.id).await.unwrap().unwrap();
    assert_eq!(
        stored.identity,
        Some(IdentityKey::name_id(IDP, "alice-7f3a"))
    );
    assert_eq!(stored.provisioned_by, ProvisionedBy::App);
    // IdP-owned fields now follow the IdP; create-only fields were not JIT's to write.
    assert_eq!(stored.fields["email"], "Alice@Example.org");
    assert_eq!(stored.fields["display_name"], "Alice Liddell");
    assert_eq!(stored.fields["nickname"], "Al");
    assert!(!stored.fields.contains_key("username"));
    assert_eq!(
        stored.roles,
        roles(&[
            ("admin", RoleOrigin::Managed),
            ("editor", RoleOrigin::Managed),
            ("owner", RoleOrigin::Manual),
        ])
    );
    let log = fx.store.audit_log(10).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].kind, AuditKind::LinkedByEmail);
    assert_eq!(log[0].account_id, Some(local.id));

    // From now on the account is found by identity.
    let again = engine.login(&alice(), t0()).await.unwrap();
    assert_eq!(again.outcome, Outcome::Unchanged);
    assert_eq!(fx.store.accounts().await.unwrap().len(), 1);
}

async fn email_of_another_identity_is_never_linked(db: Db) {
    let (fx, engine) = engine(db, wiki_with(|c| format!("link_by_email = true\n{c}"))).await;
    let alice_account = engine.login(&alice(), t0()).await.unwrap().account;

    // Another IdP subject asserting Alice's address: refused, even with linking on.
    let impostor = facts(
        "mallory",
        &[
            ("mail", &["alice@example.org"]),
            ("groups", &["wiki-admins"]),
        ],
    );
    let (code, _) = refusal(engine.login(&impostor, t0()).await);
    assert_eq!(code, RefusalCode::EmailBelongsToOtherAccount);

    // An existing subject whose IdP-owned e-mail moves onto Alice's: refused, untouched.
    let bob = facts(
        "bob",
        &[("mail", &["bob@example.org"]), ("groups", &["wiki-users"])],
    );
    let bob_account = engine.login(&bob, t0()).await.unwrap().account;
    let moved = with_attr(bob, "mail", &["alice@example.org"]);
    let (code, _) = refusal(engine.login(&moved, t0()).await);
    assert_eq!(code, RefusalCode::EmailBelongsToOtherAccount);
    assert_eq!(
        fx.store.account(bob_account.id).await.unwrap().unwrap(),
        bob_account
    );
    assert_eq!(
        fx.store.account(alice_account.id).await.unwrap().unwrap(),
        alice_account
    );
}

/// Lookups fold case the Unicode way (so two accounts never differ by case alone), but
/// some non-ASCII characters fold onto ASCII ones: U+212A KELVIN SIGN lower-cases to `k`.
/// An IdP vouching for `\u{212A}elly@` vouches for a different mailbox than `kelly@`, so
/// neither direction is linked, even with `link_by_email`; both are refused and untouched.
async fn an_address_that_only_folds_onto_a_local_one_is_not_linked(db: Db) {
    let (fx, engine) = engine(db, wiki_with(|c| format!("link_by_email = true\n{c}"))).await;
    for (local, asserted) in [
        ("kelly@example.org", "\u{212A}elly@example.org"),
        ("\u{212A}im@example.org", "kim@example.org"),
    ] {
        let local = fx
            .store
            .create_account(None, map(&[("email", local)]), t0())
            .await
            .unwrap()
            .unwrap();
        let login = facts(
            &format!("subject-of-{asserted}"),
            &[("mail", &[asserted]), ("groups", &["wiki-users"])],
        );
        let (code, op) = refusal(engine.login(&login, t0()).await);
        assert_eq!(
            code,
            RefusalCode::EmailBelongsToUnlinkedAccount,
            "{asserted}"
        );
        let log = fx.store.audit_log(100).await.unwrap();
        assert!(
            log.iter()
                .any(|e| e.kind == AuditKind::Refused && e.operation_id == op),
            "{log:#?}"
        );
        assert_eq!(fx.store.account(local.id).await.unwrap().unwrap(), local);
    }
    assert_eq!(fx.store.accounts().await.unwrap().len(), 2);
}

/// One address whatever its Unicode composition: `é` composed (U+00E9) and decomposed (`e`
/// U+0301) look the same and are one key (NFC), so a second account cannot take the other
/// spelling, and a login asserting it finds the local account; linking needs the address
/// itself up to ASCII case, so it is refused, not linked, and nothing is created. A key
/// stored before keys were NFC is rewritten when the database is opened.
async fn composed_and_decomposed_addresses_are_one_address(db: Db) {
    let (fx, engine) = engine(db, wiki_with(|c| format!("link_by_email = true\n{c}"))).await;
    let composed = "ren\u{e9}@example.org";
    let decomposed = "rene\u{301}@example.org";
    let local = fx
        .store
        .create_account(None, map(&[("email", composed)]), t0())
        .await
        .unwrap()
        .unwrap();
    assert!(
        fx.store
            .create_account(None, map(&[("email", decomposed)]), t0())
            .await
            .unwrap()
            .is_none()
    );
    let login = facts(
        "rene",
        &[("mail", &[decomposed]), ("groups", &["wiki-users"])],
    );
    let (code, _) = refusal(engine.login(&login, t0()).await);
    assert_eq!(code, RefusalCode::EmailBelongsToUnlinkedAccount);
    assert_eq!(fx.store.accounts().await.unwrap(), vec![local.clone()]);

    // A key written before NFC (decomposed) is rewritten at the next open.
    sqlx::query("UPDATE sp_accounts SET email = $1 WHERE id = $2")
        .bind(decomposed)
        .bind(local.id.to_string())
        .execute(fx.store.database().pool())
        .await
        .unwrap();
    let reopened = latchkey_sp::store::Database::connect(&fx.url)
        .await
        .unwrap();
    let key: String = sqlx::query_scalar("SELECT email FROM sp_accounts WHERE id = $1")
        .bind(local.id.to_string())
        .fetch_one(reopened.pool())
        .await
        .unwrap();
    assert_eq!(key, composed);
}

async fn dry_run_plan_writes_nothing(db: Db) {
    let (fx, engine) = engine(db, contract(WIKI)).await;
    let plan = engine.plan(&alice(), t0()).await.unwrap();
    assert!(matches!(plan.action, PlanAction::Create { .. }), "{plan:?}");
    assert!(fx.store.accounts().await.unwrap().is_empty());
    assert!(fx.store.audit_log(10).await.unwrap().is_empty());

    // The dry-run plan is the plan the real login applies.
    let p = engine.login(&alice(), t0()).await.unwrap();
    assert_eq!(p.plan, plan);
    let demoted = with_attr(alice(), "groups", &["wiki-users"]);
    let plan = engine.plan(&demoted, t0()).await.unwrap();
    assert_eq!(plan.account_id(), Some(p.account.id));
    assert!(matches!(plan.action, PlanAction::Update { .. }), "{plan:?}");
    assert_eq!(
        fx.store.account(p.account.id).await.unwrap().unwrap(),
        p.account
    );
}

async fn concurrent_first_logins_create_exactly_one_account(db: Db) {
    let fx = fixture(db).await;
    // Two engines on two pools over one file: like two app nodes.
    let node_b = latchkey_sp::store::Database::connect(&fx.url)
        .await
        .unwrap();
    let engines = [
        Arc::new(JitEngine::new(contract(WIKI), fx.store.clone())),
        Arc::new(JitEngine::new(contract(WIKI), SqlAccountStore::new(node_b))),
    ];
    let mut tasks = Vec::new();
    for i in 0..32 {
        let engine = Arc::clone(&engines[i % 2]);
        tasks.push(tokio::spawn(
            async move { engine.login(&alice(), t0()).await },
        ));
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap().unwrap());
    }
    let created = outcomes
        .iter()
        .filter(|p| p.outcome == Outcome::Created)
        .count();
    assert_eq!(created, 1);
    assert!(
        outcomes
            .iter()
            .all(|p| matches!(p.outcome, Outcome::Created | Outcome::Unchanged))
    );
    let accounts: Vec<Account> = fx.store.accounts().await.unwrap();
    assert_eq!(accounts.len(), 1);
    assert!(outcomes.iter().all(|p| p.account.id == accounts[0].id));
    let log = fx.store.audit_log(100).await.unwrap();
    assert_eq!(log.len(), 32);
    assert_eq!(
        log.iter().filter(|e| e.kind == AuditKind::Created).count(),
        1
    );
}

/// The audit log of an install from before the SQLite log lost its key (`20261206000040`)
/// keeps its events through the migration, listed oldest first by time (events written
/// before `AuditEvent::id_at` have random IDs, which the key listed out of order), with new
/// events after them; on SQLite the table then has no index for a login to write.
async fn audit_events_logged_before_the_unkeyed_migration_are_kept_in_time_order(db: Db) {
    let (_dir, url, pool) = crate::support::migrated_to(db, 20261206000030).await;
    // Random IDs in the opposite order to their times.
    let old = [
        ("f0000000-0000-4000-8000-000000000001", 0),
        ("80000000-0000-4000-8000-000000000002", 1),
        ("10000000-0000-4000-8000-000000000003", 2),
    ];
    let plan = serde_json::to_string(&ProvisioningPlan {
        identity: None,
        action: PlanAction::Unchanged {
            account_id: Uuid::nil(),
        },
    })
    .unwrap();
    for (id, minutes) in old {
        let at = t0() + Duration::minutes(minutes);
        sqlx::query(
            "INSERT INTO sp_audit (id, operation_id, at, kind, account_id, idp_entity_id, \
             identity_key, session_index, plan, actor) VALUES ($1, $1, $2, 'jit.unchanged', \
             NULL, $3, NULL, NULL, $4, NULL)",
        )
        .bind(id)
        .bind(i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap())
        .bind(IDP)
        .bind(&plan)
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;

    let database = latchkey_sp::store::Database::connect(&url).await.unwrap();
    let store = SqlAccountStore::new(database.clone());
    let ids = |log: &[latchkey_sp::store::AuditEvent]| -> Vec<String> {
        log.iter().map(|e| e.id.to_string()).collect()
    };
    let newest_two = store.audit_log(2).await.unwrap();
    let engine = JitEngine::new(contract(WIKI), store.clone());
    let created = engine
        .login(&alice(), t0() + Duration::minutes(3))
        .await
        .unwrap();
    let log = store.audit_log(10).await.unwrap();
    assert_eq!(log.len(), 4);
    let new: Vec<_> = log
        .iter()
        .filter(|e| e.kind == AuditKind::Created)
        .collect();
    assert_eq!(new.len(), 1);
    assert_eq!(new[0].account_id, Some(created.account.id));
    if db == Db::Sqlite {
        // VACUUM renumbers a rowid that has no name; `seq` keeps the order.
        sqlx::query("VACUUM")
            .execute(database.pool())
            .await
            .unwrap();
        assert_eq!(ids(&store.audit_log(10).await.unwrap()), ids(&log));
        assert_eq!(ids(&newest_two), [old[1].0, old[2].0]);
        assert_eq!(ids(&log[..3]), old.map(|(id, _)| id));
        assert_eq!(log[3].kind, AuditKind::Created);
        let indexes: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'sp_audit'",
        )
        .fetch_one(database.pool())
        .await
        .unwrap();
        assert_eq!(indexes, 0);
    } else {
        // PostgreSQL lists by the key, as before: the old events' random IDs sort as they do.
        let mut listed = ids(&log);
        listed.retain(|id| *id != new[0].id.to_string());
        listed.sort();
        let mut expected = old.map(|(id, _)| id.to_owned()).to_vec();
        expected.sort();
        assert_eq!(listed, expected);
    }
}

/// `log_only` for unchanged logins drops only their events: a create, an update and a refusal
/// are recorded as before, and the unchanged login leaves the account as it was.
async fn log_only_keeps_every_event_but_the_unchanged_logins(db: Db) {
    let (fx, engine) = engine(db, contract(WIKI)).await;
    let engine = engine.unchanged_logins(UnchangedLogins::LogOnly);
    let kinds = || async {
        fx.store
            .audit_log(10)
            .await
            .unwrap()
            .iter()
            .map(|e| e.kind)
            .collect::<Vec<_>>()
    };
    let created = engine.login(&alice(), t0()).await.unwrap();
    assert_eq!(created.outcome, Outcome::Created);
    let same = engine
        .login(&alice(), t0() + Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(same.outcome, Outcome::Unchanged);
    assert_eq!(same.account, created.account);
    assert_eq!(kinds().await, [AuditKind::Created]);
    let renamed = facts(
        "alice-7f3a",
        &[
            ("mail", &["Alice@Example.org"]),
            ("displayName", &["Alice Pleasance Liddell"]),
            ("uid", &["alice"]),
            ("groups", &["wiki-admins", "staff-all"]),
        ],
    );
    let updated = engine
        .login(&renamed, t0() + Duration::minutes(2))
        .await
        .unwrap();
    assert_eq!(updated.outcome, Outcome::Updated);
    assert_eq!(kinds().await, [AuditKind::Created, AuditKind::Updated]);
    let stranger = facts("bob-1", &[("uid", &["bob"])]);
    let refused = engine.login(&stranger, t0() + Duration::minutes(3)).await;
    assert!(matches!(refused, Err(Error::Refused { .. })), "{refused:?}");
    assert_eq!(
        kinds().await,
        [AuditKind::Created, AuditKind::Updated, AuditKind::Refused]
    );
}

crate::on_both_backends!(
    log_only_keeps_every_event_but_the_unchanged_logins,
    first_login_creates_account_with_fields_and_managed_roles,
    on_first_login_refuse_admits_only_pre_provisioned_accounts,
    idp_owned_field_is_overwritten_and_cleared,
    idp_owned_email_change_moves_the_unique_address,
    setting_an_email_another_account_holds_is_a_typed_error,
    create_only_field_is_kept_after_creation,
    app_owned_and_undeclared_fields_are_never_touched,
    role_rules_contains_prefix_equals_and_default_role,
    managed_role_follows_groups_while_hand_granted_role_stays,
    deny_rule_refuses_with_code_and_writes_nothing,
    missing_required_attribute_refuses_and_writes_nothing,
    multi_valued_field_attribute_is_refused,
    non_persistent_name_id_is_refused_by_default_identity,
    identity_from_attribute_ignores_name_id,
    same_name_id_from_another_idp_is_another_person,
    without_link_by_email_a_local_account_is_not_taken_over,
    with_link_by_email_the_local_account_is_linked_and_audited,
    email_of_another_identity_is_never_linked,
    an_address_that_only_folds_onto_a_local_one_is_not_linked,
    composed_and_decomposed_addresses_are_one_address,
    dry_run_plan_writes_nothing,
    concurrent_first_logins_create_exactly_one_account,
    audit_events_logged_before_the_unkeyed_migration_are_kept_in_time_order,
);
