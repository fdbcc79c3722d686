use std::collections::HashSet;

use latchkey_idp::Error;
use latchkey_idp::apps::{AcsEndpoint, Binding, NameIdFormat, NameIdSource, NewApplication};
use latchkey_idp::directory::UserPatch;

use super::{admin, group, join, snapshot, user};
use crate::on_both_backends;
use crate::support::TestStore;

on_both_backends!(
    register_find_update_delete,
    duplicate_entity_id_is_refused,
    access_policy_is_groups_only,
    pairwise_name_ids_are_stable_opaque_and_per_app,
    pairwise_get_or_create_is_race_free,
    slugs_are_derived_unique_settable_and_found,
);

fn wiki() -> NewApplication {
    let mut app = NewApplication::new(
        "https://wiki.example.org/saml",
        "Wiki",
        "https://wiki.example.org/acs",
    );
    app.attributes = vec![
        "mail=email".parse().unwrap(),
        "groups@basic=groups|strip-prefix:wiki-".parse().unwrap(),
    ];
    app
}

async fn register_find_update_delete(t: TestStore) {
    let apps = t.store.apps();
    let mut new = wiki();
    new.acs.push(AcsEndpoint {
        url: "https://wiki.example.org/acs2".into(),
        binding: Binding::HttpArtifact,
        index: 1,
        is_default: false,
    });
    new.tile.default_relay_state = Some("/home".into());
    let cert = rcgen::generate_simple_self_signed(vec!["wiki.example.org".to_string()])
        .unwrap()
        .cert
        .pem();
    new.signing_certs = vec![cert];
    // Encryption needs an RSA key (XML Encryption's key transport).
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let rsa = rcgen::CertificateParams::new(vec!["wiki.example.org".to_string()])
        .unwrap()
        .self_signed(&pair)
        .unwrap();
    new.encryption_cert = Some(rsa.pem());
    new.encrypt_assertion = true;
    new.slo = Some(latchkey_idp::apps::Endpoint {
        url: "https://wiki.example.org/slo".into(),
        binding: Binding::HttpRedirect,
    });
    let app = apps.create(&admin(), new.clone()).await.unwrap();
    // The slug, left empty, is the name's.
    new.slug = "wiki".into();
    assert_eq!(app.settings, new);
    assert_eq!(
        apps.get_by_entity_id("https://wiki.example.org/saml")
            .await
            .unwrap(),
        app
    );
    assert_eq!(apps.lookup(&app.id.to_string()).await.unwrap(), app);
    assert_eq!(apps.lookup("wiki").await.unwrap(), app);
    assert!(
        apps.find_by_entity_id("https://other")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        latchkey_saml::profile::idp::default_acs(&app.settings.acs)
            .unwrap()
            .index,
        0
    );

    let updated = apps
        .update(&admin(), app.id, |a| {
            a.name_id.format = NameIdFormat::EmailAddress;
            a.name_id.source = NameIdSource::Email;
            a.tile.visible = false;
            a.sign_response = false;
        })
        .await
        .unwrap();
    assert_eq!(updated.settings.name_id.format, NameIdFormat::EmailAddress);
    assert!(!updated.settings.tile.visible);
    assert_eq!(apps.get(app.id).await.unwrap(), updated);
    assert_eq!(apps.list().await.unwrap(), vec![updated.clone()]);

    // An invalid change is refused and nothing is written.
    let before = snapshot(&t.store).await;
    let err = apps
        .update(&admin(), app.id, |a| {
            a.acs[0].url = "ftp://wiki.example.org/acs".into()
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidField {
                field: "acs_url",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(snapshot(&t.store).await, before);

    apps.delete(&admin(), app.id).await.unwrap();
    let err = apps
        .get_by_entity_id("https://wiki.example.org/saml")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::UnknownApplication { .. }), "{err:?}");
    let actions: Vec<String> = t
        .store
        .audit()
        .list(&Default::default())
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(actions, ["app.delete", "app.update", "app.create"]);
}

async fn duplicate_entity_id_is_refused(t: TestStore) {
    let apps = t.store.apps();
    apps.create(&admin(), wiki()).await.unwrap();
    let other = apps
        .create(
            &admin(),
            NewApplication::new(
                "https://crm.example.org",
                "CRM",
                "https://crm.example.org/acs",
            ),
        )
        .await
        .unwrap();
    let before = snapshot(&t.store).await;
    let mut again = wiki();
    again.name = "Wiki again".into();
    let err = apps.create(&admin(), again).await.unwrap_err();
    assert!(
        matches!(&err, Error::DuplicateEntityId { entity_id } if entity_id == "https://wiki.example.org/saml"),
        "{err:?}"
    );
    let err = apps
        .update(&admin(), other.id, |a| {
            a.entity_id = "https://wiki.example.org/saml".into()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DuplicateEntityId { .. }), "{err:?}");
    assert_eq!(snapshot(&t.store).await, before);
}

async fn access_policy_is_groups_only(t: TestStore) {
    let s = &t.store;
    let app = s.apps().create(&admin(), wiki()).await.unwrap();
    let editors = group(s, "wiki-editors").await;
    let alice = user(s, "alice").await;
    let bob = user(s, "bob").await;
    join(s, editors.id, alice.id).await;

    // Nobody until a group is assigned.
    assert!(!s.apps().may_access(app.id, &alice).await.unwrap());
    s.apps().assign(&admin(), app.id, editors.id).await.unwrap();
    assert!(s.apps().may_access(app.id, &alice).await.unwrap());
    assert!(!s.apps().may_access(app.id, &bob).await.unwrap());
    assert_eq!(s.apps().for_user(&alice).await.unwrap(), vec![app.clone()]);
    assert!(s.apps().for_user(&bob).await.unwrap().is_empty());
    // What the console's group page lists: the apps a group opens, and no other group's.
    let readers = group(s, "readers").await;
    assert_eq!(
        s.apps().opened_by_group(editors.id).await.unwrap(),
        vec![app.clone()]
    );
    assert!(
        s.apps()
            .opened_by_group(readers.id)
            .await
            .unwrap()
            .is_empty()
    );
    let groups: Vec<String> = s
        .apps()
        .access_groups(app.id)
        .await
        .unwrap()
        .into_iter()
        .map(|g| g.name)
        .collect();
    assert_eq!(groups, ["wiki-editors"]);

    let err = s
        .apps()
        .assign(&admin(), app.id, editors.id)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AlreadyAssigned { .. }), "{err:?}");
    let before = snapshot(s).await;
    let err = s
        .apps()
        .assign(&admin(), app.id, latchkey_idp::ids::GroupId::new_random())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::UnknownGroup { .. }), "{err:?}");
    assert_eq!(snapshot(s).await, before);

    // Suspended users lose access without losing membership.
    let suspended = s.users().suspend(&admin(), alice.id).await.unwrap();
    assert!(!s.apps().may_access(app.id, &suspended).await.unwrap());
    assert!(s.apps().for_user(&suspended).await.unwrap().is_empty());
    let alice = s.users().resume(&admin(), alice.id).await.unwrap();

    s.apps()
        .unassign(&admin(), app.id, editors.id)
        .await
        .unwrap();
    assert!(!s.apps().may_access(app.id, &alice).await.unwrap());
    let err = s
        .apps()
        .unassign(&admin(), app.id, editors.id)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotAssigned { .. }), "{err:?}");

    // Deleting an assigned group removes the access and says so in the log.
    s.apps().assign(&admin(), app.id, editors.id).await.unwrap();
    s.groups().delete(&admin(), editors.id).await.unwrap();
    assert!(!s.apps().may_access(app.id, &alice).await.unwrap());
    assert!(s.apps().access_groups(app.id).await.unwrap().is_empty());
    let deleted = s
        .audit()
        .list(&latchkey_idp::audit::AuditFilter {
            action: Some("group.delete".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let before = deleted[0].before.as_ref().unwrap();
    assert_eq!(
        before["applications"],
        serde_json::json!(["https://wiki.example.org/saml"])
    );
    assert_eq!(before["members"], serde_json::json!(["alice"]));
}

async fn pairwise_name_ids_are_stable_opaque_and_per_app(t: TestStore) {
    let s = &t.store;
    let wiki = s.apps().create(&admin(), wiki()).await.unwrap();
    let crm = s
        .apps()
        .create(
            &admin(),
            NewApplication::new(
                "https://crm.example.org",
                "CRM",
                "https://crm.example.org/acs",
            ),
        )
        .await
        .unwrap();
    let alice = user(s, "alice").await;
    let bob = user(s, "bob").await;

    let a_wiki = s
        .apps()
        .persistent_name_id(alice.id, wiki.id)
        .await
        .unwrap();
    let a_crm = s.apps().persistent_name_id(alice.id, crm.id).await.unwrap();
    let b_wiki = s.apps().persistent_name_id(bob.id, wiki.id).await.unwrap();
    assert_ne!(a_wiki, a_crm);
    assert_ne!(a_wiki, b_wiki);
    assert!(a_wiki.len() >= 22, "{a_wiki}");
    assert!(!a_wiki.contains("alice") && !a_wiki.contains(&alice.id.to_string()));
    assert!(
        a_wiki
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    );

    // Renaming the user changes nothing the SP sees.
    s.users()
        .update(
            &admin(),
            alice.id,
            UserPatch {
                username: Some("alice.liddell".into()),
                email: Some("al@example.org".into()),
                ..UserPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        s.apps()
            .persistent_name_id(alice.id, wiki.id)
            .await
            .unwrap(),
        a_wiki
    );
    assert_eq!(
        s.apps().user_for_name_id(wiki.id, &a_wiki).await.unwrap(),
        Some(alice.id)
    );
    assert_eq!(
        s.apps().user_for_name_id(crm.id, &a_wiki).await.unwrap(),
        None
    );

    let err = s
        .apps()
        .persistent_name_id(latchkey_idp::ids::UserId::new_random(), wiki.id)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::UnknownUser { .. }), "{err:?}");
}

async fn pairwise_get_or_create_is_race_free(t: TestStore) {
    let s = &t.store;
    let app = s.apps().create(&admin(), wiki()).await.unwrap();
    let alice = user(s, "alice").await;
    // Two handles (two pools) stand in for two IdP nodes.
    let other = latchkey_idp::Store::open_url(&t.url, 4, crate::support::cheap_passwords())
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = if i % 2 == 0 { s.clone() } else { other.clone() };
        tasks.push(tokio::spawn(async move {
            store
                .apps()
                .persistent_name_id(alice.id, app.id)
                .await
                .unwrap()
        }));
    }
    let mut seen = HashSet::new();
    for task in tasks {
        seen.insert(task.await.unwrap());
    }
    assert_eq!(
        seen.len(),
        1,
        "racing callers got different identifiers: {seen:?}"
    );
}

async fn slugs_are_derived_unique_settable_and_found(t: TestStore) {
    let apps = t.store.apps();
    let mut first = wiki();
    first.name = "Team Wiki (EU)".into();
    let first = apps.create(&admin(), first).await.unwrap();
    assert_eq!(first.settings.slug, "team-wiki-eu");
    // Another application of the same name gets the next free one.
    let mut second = NewApplication::new(
        "https://wiki2.example.org/saml",
        "Team Wiki (EU)",
        "https://wiki2.example.org/acs",
    );
    second.slug = String::new();
    let second = apps.create(&admin(), second).await.unwrap();
    assert_eq!(second.settings.slug, "team-wiki-eu-2");
    // Found by slug, and by what an admin types.
    assert_eq!(
        apps.find_by_slug("team-wiki-eu-2")
            .await
            .unwrap()
            .unwrap()
            .id,
        second.id
    );
    assert_eq!(apps.lookup("team-wiki-eu").await.unwrap().id, first.id);
    assert!(apps.find_by_slug("nothing").await.unwrap().is_none());

    // Settable; a change that leaves it empty keeps it; another's is refused.
    let renamed = apps
        .update(&admin(), second.id, |a| a.slug = "eu-wiki".into())
        .await
        .unwrap();
    assert_eq!(renamed.settings.slug, "eu-wiki");
    let kept = apps
        .update(&admin(), second.id, |a| {
            a.slug = String::new();
            a.name = "Wiki two".into();
        })
        .await
        .unwrap();
    assert_eq!(kept.settings.slug, "eu-wiki");
    let taken = apps
        .update(&admin(), second.id, |a| a.slug = "team-wiki-eu".into())
        .await
        .unwrap_err();
    assert!(
        matches!(&taken, Error::InvalidField { field, .. } if *field == "slug"),
        "{taken:?}"
    );
    // Only lower-case letters, digits and single hyphens, and never an ID.
    for bad in [
        "Wiki",
        "wiki wiki",
        "-wiki",
        "wiki-",
        "a--b",
        "wiki/x",
        &"x".repeat(41),
        &first.id.to_string(),
        "0123456789abcdef0123456789abcdef",
    ] {
        let err = apps
            .update(&admin(), second.id, |a| a.slug = bad.to_owned())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::InvalidField { field, .. } if *field == "slug"),
            "{bad:?}: {err:?}"
        );
    }
    // Every change is audited like any other: the two that changed something.
    let updates = t
        .store
        .audit()
        .list(&Default::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "app.update")
        .count();
    assert_eq!(updates, 2);
}
