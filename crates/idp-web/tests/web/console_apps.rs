//! The console's applications and keys, in process: adding an application from the
//! catalogue, from SP metadata (a URL the server fetches, an uploaded file) and by hand;
//! editing its settings and access policy; the assertion preview against a real assertion;
//! the key rollover with its safety rule. Each role may do exactly its part, forged forms
//! and bad input write nothing, and every change is audited with the person's name.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use latchkey_idp::console::{Holder, Role};
use latchkey_idp::directory::{NewUser, User};
use latchkey_idp::keys::{KeyStatus, KeyStore};
use latchkey_idp::password::Password;
use latchkey_idp::{Actor, Clock as _};

use super::support::{
    Browser, Idp, PASSWORD, SP, audit_actions, authn_request, idp, redirect_uri, sp_validate,
};

async fn person(idp: &Idp, name: &str, role: Option<Role>) -> User {
    let mut new = NewUser::new(name, format!("{name}@example.org"));
    new.password = Some(Password::new(PASSWORD.to_owned()));
    let user = idp
        .store
        .users()
        .create(&Actor::system(), new)
        .await
        .unwrap();
    if let Some(role) = role {
        idp.store
            .roles()
            .grant(&Actor::system(), role, Holder::User(user.id))
            .await
            .unwrap();
    }
    user
}

/// root (admin), hd (helpdesk), aud (auditor), plain (no role).
async fn seed(idp: &Idp) {
    person(idp, "root", Some(Role::Admin)).await;
    person(idp, "hd", Some(Role::Helpdesk)).await;
    person(idp, "aud", Some(Role::Auditor)).await;
    person(idp, "plain", None).await;
}

const ROLES: [&str; 4] = ["root", "hd", "aud", "plain"];

/// A refused form: route, fields, and the field the answer must name.
type BadCase<'a> = (String, Vec<(&'a str, &'a str)>, &'a str);

/// Signed in with a password and a second factor, as the console asks by default.
use super::console::{csrf, signed_in};

/// Everything a refused change could have touched: applications, audit lines, keys.
async fn written(idp: &Idp) -> (usize, i64, usize) {
    (
        idp.store.apps().list().await.unwrap().len(),
        idp.store.audit().count().await.unwrap(),
        KeyStore::open(&idp.key_dir).unwrap().list().len(),
    )
}

/// The newest audit event of `action`, which must name `who` as its actor.
async fn audited_as(idp: &Idp, action: &str, who: &str) -> latchkey_idp::audit::AuditEvent {
    let events = audit_actions(idp, action).await;
    let last = events
        .iter()
        .max_by_key(|e| e.seq)
        .unwrap_or_else(|| panic!("no {action} event"))
        .clone();
    assert_eq!(last.actor_name.as_deref(), Some(who), "{action}: {last:?}");
    last
}

fn wiki_metadata(entity: &str) -> String {
    metadata_until(entity, "")
}

/// SP metadata, valid until the given `validUntil` attribute text ("" for none).
fn metadata_until(entity: &str, valid_until: &str) -> String {
    let until = if valid_until.is_empty() {
        String::new()
    } else {
        format!(" validUntil=\"{valid_until}\"")
    };
    format!(
        r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{entity}"{until}>
  <md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://wiki.example.net/saml/slo"/>
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://wiki.example.net/saml/acs" index="0"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>"#
    )
}

/// A multipart upload as a browser sends the console's file form: the token first.
fn upload(csrf: Option<&str>, xml: &str, template: &str) -> Request<Body> {
    let boundary = "----latchkeytestboundary";
    let mut body = String::new();
    if let Some(token) = csrf {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{token}\r\n"
        ));
    }
    body.push_str(&format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"metadata_file\"; filename=\"sp.xml\"\r\nContent-Type: text/xml\r\n\r\n{xml}\r\n"
    ));
    body.push_str(&format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"template\"\r\n\r\n{template}\r\n--{boundary}--\r\n"
    ));
    Request::post("/admin/apps/new/upload")
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(Body::from(body))
        .unwrap()
}

#[tokio::test]
async fn each_role_sees_exactly_its_application_and_key_pages() {
    let idp = idp().await;
    seed(&idp).await;
    let app = format!("/admin/apps/{}", idp.app.id);
    let preview = format!("/admin/preview?user=alice&app={}", idp.app.id);
    // (route, [root, hd, aud, plain]).
    let table: Vec<(String, [bool; 4])> = vec![
        ("/admin/apps".into(), [true, false, true, false]),
        (app.clone(), [true, false, true, false]),
        ("/admin/apps/new".into(), [true, false, false, false]),
        (
            "/admin/apps/new/latchkey-wiki".into(),
            [true, false, false, false],
        ),
        ("/admin/keys".into(), [true, false, true, false]),
        ("/admin/preview".into(), [true, true, true, false]),
        (preview, [true, true, true, false]),
    ];
    for (i, who) in ROLES.iter().enumerate() {
        let mut b = signed_in(&idp, who).await;
        for (route, allowed) in &table {
            let page = b.get(route).await;
            if allowed[i] {
                assert_eq!(page.status, StatusCode::OK, "{who} {route}: {}", page.body);
            } else {
                assert_eq!(page.status, StatusCode::FORBIDDEN, "{who} {route}");
                assert_eq!(page.error_code(), Some("WEB-FORBIDDEN"), "{who} {route}");
            }
        }
        // The auditor reads the application but gets no form that changes it.
        if *who == "aud" {
            let page = b.get(&app).await;
            assert!(!page.body.contains("/access\""), "{}", page.body);
            assert!(
                !b.get("/admin/keys")
                    .await
                    .body
                    .contains("/admin/keys/rotate")
            );
        }
    }
}

#[tokio::test]
async fn only_an_admin_changes_applications_and_keys() {
    let idp = idp().await;
    seed(&idp).await;
    let app = format!("/admin/apps/{}", idp.app.id);
    for who in ["hd", "aud", "plain"] {
        let mut b = signed_in(&idp, who).await;
        let token = csrf(&mut b).await;
        let before = written(&idp).await;
        let posts: Vec<(String, Vec<(&str, &str)>)> = vec![
            (
                "/admin/apps".into(),
                vec![
                    ("entity_id", "https://new.example.org"),
                    ("acs_url", "https://new.example.org/acs"),
                    ("acs_binding", "post"),
                    ("name_id_format", "persistent"),
                ],
            ),
            (
                "/admin/apps/new/latchkey-wiki".into(),
                vec![("param-wiki_base_url", "https://wiki2.example.org")],
            ),
            (
                "/admin/apps/new/metadata".into(),
                vec![("metadata_url", "http://127.0.0.1:9/none")],
            ),
            (
                app.clone(),
                vec![
                    ("name", "Renamed"),
                    ("name_id_format", "persistent"),
                    ("name_id_source", "pairwise"),
                ],
            ),
            (format!("{app}/access"), vec![("group", "staff")]),
            (format!("{app}/access/remove"), vec![("group", "staff")]),
            (
                format!("{app}/mfa"),
                vec![("require_mfa", "on"), ("mfa_class", "refeds")],
            ),
            ("/admin/keys/rotate".into(), vec![("algorithm", "rsa2048")]),
            ("/admin/keys/activate".into(), vec![("force", "on")]),
            (
                format!("{app}/scim"),
                vec![
                    ("scim_url", "https://scim.sp.test/v2"),
                    ("scim_token", "a-token-of-forty-characters-or-so-123456"),
                ],
            ),
            (format!("{app}/scim/remove"), vec![]),
        ];
        // Each refusal of an operator writes its own audit event (`console.refused`) and
        // nothing else; one of a user holding no console role (plain) is only logged.
        let operator = who != "plain";
        let refusals = if operator { posts.len() as i64 + 1 } else { 0 };
        for (route, fields) in posts {
            let mut form = fields.clone();
            form.push(("csrf", &token));
            let page = b.post(&route, &form).await;
            assert_eq!(page.status, StatusCode::FORBIDDEN, "{who} POST {route}");
            assert_eq!(page.error_code(), Some("WEB-FORBIDDEN"), "{who} {route}");
            assert!(page.operation_id().is_some(), "{who} {route}");
            if !operator {
                continue;
            }
            let event = audited_as(&idp, "console.refused", who).await;
            assert_eq!(event.target_id.as_deref(), Some(route.as_str()));
            assert_eq!(
                event.after.unwrap()["operation_id"],
                page.operation_id().unwrap()
            );
        }
        let page = b
            .send(upload(
                Some(&token),
                &wiki_metadata("https://up.example"),
                "",
            ))
            .await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{who} upload");
        assert_eq!(
            written(&idp).await,
            (before.0, before.1 + refusals, before.2),
            "{who} wrote"
        );
    }
}

#[tokio::test]
async fn a_missing_or_foreign_anti_forgery_token_is_refused() {
    let idp = idp().await;
    seed(&idp).await;
    let mut b = signed_in(&idp, "root").await;
    let mut other = signed_in(&idp, "aud").await;
    let foreign = csrf(&mut other).await;
    let before = written(&idp).await;
    let app = format!("/admin/apps/{}", idp.app.id);
    for token in [None, Some(foreign.as_str()), Some("")] {
        for (route, fields) in [
            (
                "/admin/apps".to_owned(),
                vec![
                    ("entity_id", "https://forged.example"),
                    ("acs_url", "https://forged.example/acs"),
                ],
            ),
            (
                "/admin/apps/new/latchkey-wiki".to_owned(),
                vec![("param-wiki_base_url", "https://forged.example")],
            ),
            (app.clone(), vec![("name", "Forged")]),
            (format!("{app}/access/remove"), vec![("group", "staff")]),
            (format!("{app}/mfa"), vec![("mfa_class", "refeds")]),
            ("/admin/keys/rotate".to_owned(), vec![]),
            ("/admin/keys/activate".to_owned(), vec![("force", "on")]),
        ] {
            let mut form = fields.clone();
            if let Some(t) = token {
                form.push(("csrf", t));
            }
            let page = b.post(&route, &form).await;
            assert_eq!(page.status, StatusCode::FORBIDDEN, "{route} {token:?}");
            assert_eq!(page.error_code(), Some("WEB-CSRF"), "{route} {token:?}");
        }
        let page = b
            .send(upload(token, &wiki_metadata("https://forged.example"), ""))
            .await;
        assert_eq!(page.error_code(), Some("WEB-CSRF"), "upload {token:?}");
    }
    assert_eq!(written(&idp).await, before);
}

#[tokio::test]
async fn bad_input_gives_the_form_back_naming_the_field_and_writes_nothing() {
    let idp = idp().await;
    seed(&idp).await;
    let mut b = signed_in(&idp, "root").await;
    let token = csrf(&mut b).await;
    let app = format!("/admin/apps/{}", idp.app.id);
    let edit = |name_id_source: &'static str, attributes: &'static str| {
        vec![
            ("name", "Wiki"),
            ("name_id_format", "persistent"),
            ("name_id_source", name_id_source),
            ("attributes", attributes),
            ("sign_response", "on"),
            ("sign_assertion", "on"),
        ]
    };
    let cases: Vec<BadCase> = vec![
        (
            "/admin/apps".into(),
            vec![
                ("entity_id", "https://new.example.org"),
                ("acs_url", "not a url"),
                ("acs_binding", "post"),
                ("name_id_format", "persistent"),
            ],
            "acs_url",
        ),
        (
            "/admin/apps".into(),
            vec![
                ("entity_id", SP),
                ("acs_url", "https://dup.example/acs"),
                ("acs_binding", "post"),
                ("name_id_format", "persistent"),
            ],
            "entity_id",
        ),
        (
            "/admin/apps".into(),
            vec![
                ("entity_id", "https://new.example.org"),
                ("acs_url", "https://new.example.org/acs"),
                ("acs_binding", "carrier-pigeon"),
                ("name_id_format", "persistent"),
            ],
            "acs_binding",
        ),
        (
            "/admin/apps/new/latchkey-wiki".into(),
            vec![("param-wiki_base_url", "  ")],
            "wiki_base_url",
        ),
        (
            "/admin/apps/new/metadata".into(),
            vec![("metadata_url", "file:///etc/passwd")],
            "metadata_url",
        ),
        (app.clone(), edit("nonsense", ""), "name_id_source"),
        (
            app.clone(),
            [edit("pairwise", ""), vec![("acs_url", "not a url")]].concat(),
            "acs_url",
        ),
        (
            app.clone(),
            [edit("pairwise", ""), vec![("acs_url", "  ")]].concat(),
            "acs_url",
        ),
        (
            app.clone(),
            [
                edit("pairwise", ""),
                vec![("slo_url", "ftp://sp.example.com/slo")],
            ]
            .concat(),
            "slo_url",
        ),
        (
            app.clone(),
            [
                edit("pairwise", ""),
                vec![("signing_cert", "not a certificate")],
            ]
            .concat(),
            "signing_cert",
        ),
        (app.clone(), edit("pairwise", "mail=nowhere"), "attributes"),
        (format!("{app}/access"), vec![("group", "staff")], "group"),
        (format!("{app}/access"), vec![("group", "nosuch")], "group"),
        (
            format!("{app}/mfa"),
            vec![("mfa_class", "strong-ish")],
            "mfa_class",
        ),
        (
            "/admin/keys/rotate".into(),
            vec![("algorithm", "rot13")],
            "algorithm",
        ),
        ("/admin/keys/activate".into(), vec![], "force"),
    ];
    let stored = idp.store.apps().get(idp.app.id).await.unwrap();
    for (route, fields, field) in cases {
        let before = written(&idp).await;
        let mut form = fields.clone();
        form.push(("csrf", &token));
        let page = b.post(&route, &form).await;
        assert_eq!(
            page.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{route} {fields:?}: {}",
            page.body
        );
        assert!(
            page.body.contains(&format!("data-field=\"{field}\"")),
            "{route} {fields:?} should name {field}: {}",
            page.body
        );
        assert_eq!(written(&idp).await, before, "{route} {fields:?} wrote");
    }
    // The edit form comes back with what was typed.
    let page = b
        .post(
            &app,
            &[
                ("name", "Typed name"),
                ("name_id_format", "persistent"),
                ("name_id_source", "nonsense"),
                ("csrf", &token),
            ],
        )
        .await;
    assert_eq!(page.field("name").as_deref(), Some("Typed name"));
    assert_eq!(idp.store.apps().get(idp.app.id).await.unwrap(), stored);
    // A malformed uploaded file names the metadata.
    let before = written(&idp).await;
    let page = b
        .send(upload(Some(&token), "<md:EntityDescriptor", ""))
        .await;
    assert_eq!(
        page.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        page.body
    );
    assert!(
        page.body.contains("data-field=\"metadata\""),
        "{}",
        page.body
    );
    assert_eq!(written(&idp).await, before);
    // A file bigger than the server's usual form limit (256 KiB) but within the upload's
    // is read.
    let big = format!(
        "{}<!--{}-->",
        wiki_metadata("https://big.example.net"),
        "x".repeat(400 * 1024)
    );
    let page = b.send(upload(Some(&token), &big, "")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let before = written(&idp).await;
    // A file past the upload's body limit is refused before it is read, nothing written.
    let huge = format!(
        "{}<!--{}-->",
        wiki_metadata("https://huge.example.net"),
        "x".repeat(1100 * 1024)
    );
    let page = b.send(upload(Some(&token), &huge, "")).await;
    assert_eq!(page.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", page.body);
    assert_eq!(page.error_code(), Some("WEB-TOO-LARGE"), "{}", page.body);
    assert_eq!(written(&idp).await, before);
}

#[tokio::test]
async fn an_admin_adds_applications_three_ways_audited_by_name() {
    let idp = idp().await;
    seed(&idp).await;
    let mut b = signed_in(&idp, "root").await;
    let token = csrf(&mut b).await;

    // The catalogue: the form is made of the template's placeholders.
    let form = b.get("/admin/apps/new/latchkey-wiki").await;
    assert!(
        form.body.contains("name=\"param-wiki_base_url\""),
        "{}",
        form.body
    );
    assert!(form.body.contains("NO_MATCHING_ROLE"), "expects shown");
    let page = b
        .post(
            "/admin/apps/new/latchkey-wiki",
            &[
                ("param-wiki_base_url", "https://wiki2.example.org"),
                ("csrf", &token),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let wiki = idp
        .store
        .apps()
        .get_by_entity_id("https://wiki2.example.org/saml/metadata")
        .await
        .unwrap();
    assert_eq!(
        wiki.settings.acs[0].url,
        "https://wiki2.example.org/saml/acs"
    );
    assert_eq!(wiki.settings.name, "Latchkey demo wiki");
    let shown = b.get(page.location()).await;
    assert!(shown.body.contains("NO_MATCHING_ROLE"), "{}", shown.body);
    let event = audited_as(&idp, "app.create", "root").await;
    assert_eq!(
        event.target_id.as_deref(),
        Some(wiki.id.to_string().as_str())
    );

    // By hand.
    let page = b
        .post(
            "/admin/apps",
            &[
                ("entity_id", "https://hand.example.org"),
                ("name", "By hand"),
                ("acs_url", "https://hand.example.org/acs"),
                ("acs_binding", "post"),
                ("name_id_format", "email"),
                ("csrf", &token),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let hand = idp
        .store
        .apps()
        .get_by_entity_id("https://hand.example.org")
        .await
        .unwrap();
    assert_eq!(
        hand.settings.name_id.format,
        latchkey_idp::apps::NameIdFormat::EmailAddress
    );
    audited_as(&idp, "app.create", "root").await;

    // An uploaded metadata file, with a template's attribute release.
    let page = b
        .send(upload(
            Some(&token),
            &wiki_metadata("https://uploaded.example.net/saml/metadata"),
            "latchkey-wiki",
        ))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Added from the SP"), "{}", page.body);
    let uploaded = idp
        .store
        .apps()
        .get_by_entity_id("https://uploaded.example.net/saml/metadata")
        .await
        .unwrap();
    assert_eq!(
        uploaded.settings.acs[0].url,
        "https://wiki.example.net/saml/acs"
    );
    assert!(
        uploaded
            .settings
            .attributes
            .iter()
            .any(|a| a.name == "email"),
        "the template's release: {:?}",
        uploaded.settings.attributes
    );
    audited_as(&idp, "app.create", "root").await;

    // A metadata URL, fetched by the server.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = wiki_metadata("https://fetched.example.net/saml/metadata");
    let server = tokio::spawn(async move {
        let app = axum::Router::new().route(
            "/metadata",
            axum::routing::get(move || {
                let body = served.clone();
                async move { body }
            }),
        );
        axum::serve(listener, app).await.unwrap();
    });
    let url = format!("http://{addr}/metadata");
    let page = b
        .post(
            "/admin/apps/new/metadata",
            &[("metadata_url", url.as_str()), ("csrf", &token)],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    idp.store
        .apps()
        .get_by_entity_id("https://fetched.example.net/saml/metadata")
        .await
        .unwrap();
    // Nothing there: the URL is named, nothing written.
    let before = written(&idp).await;
    let missing = format!("http://{addr}/nothing-here");
    let page = b
        .post(
            "/admin/apps/new/metadata",
            &[("metadata_url", missing.as_str()), ("csrf", &token)],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.body.contains("data-field=\"metadata_url\""),
        "{}",
        page.body
    );
    assert_eq!(written(&idp).await, before);
    server.abort();
}

#[tokio::test]
async fn an_admin_edits_settings_and_access_audited_by_name() {
    let idp = idp().await;
    seed(&idp).await;
    let mut b = signed_in(&idp, "root").await;
    let token = csrf(&mut b).await;
    let app = format!("/admin/apps/{}", idp.app.id);
    let page = b
        .post(
            &app,
            &[
                ("name", "Team wiki"),
                ("slug", "team-wiki"),
                ("description", "Where we write things down"),
                ("icon_url", "https://sp.example.com/icon.png"),
                ("name_id_format", "email"),
                ("name_id_source", "email"),
                ("attributes", "mail=email\r\nuid@uri=username\r\n"),
                ("sign_assertion", "on"),
                ("csrf", &token),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let s = idp.store.apps().get(idp.app.id).await.unwrap().settings;
    assert_eq!(s.name, "Team wiki");
    assert_eq!(s.slug, "team-wiki");
    assert_eq!(
        s.tile.description.as_deref(),
        Some("Where we write things down")
    );
    assert_eq!(
        s.tile.icon_url.as_deref(),
        Some("https://sp.example.com/icon.png")
    );
    assert_eq!(
        s.name_id.format,
        latchkey_idp::apps::NameIdFormat::EmailAddress
    );
    let names: Vec<&str> = s.attributes.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["mail", "uid"]);
    assert!(!s.sign_response && s.sign_assertion && !s.encrypt_assertion);
    let event = audited_as(&idp, "app.update", "root").await;
    assert_eq!(event.before.as_ref().unwrap()["name"], "Wiki");
    assert_eq!(event.after.as_ref().unwrap()["name"], "Team wiki");

    // The form shows what is stored, and posting it back changes nothing.
    let form = b.get(&app).await;
    assert_eq!(form.field("slug").as_deref(), Some("team-wiki"));
    let count = idp.store.audit().count().await.unwrap();
    let page = b
        .post(
            &app,
            &[
                ("name", "Team wiki"),
                ("slug", "team-wiki"),
                ("description", "Where we write things down"),
                ("icon_url", "https://sp.example.com/icon.png"),
                ("name_id_format", "email"),
                ("name_id_source", "email"),
                ("attributes", "mail=email\nuid@uri=username"),
                ("sign_assertion", "on"),
                ("csrf", &token),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(idp.store.audit().count().await.unwrap(), count);

    // Access: a group off and on again, and a second factor.
    let page = b
        .post(
            &format!("{app}/access/remove"),
            &[("group", "staff"), ("csrf", &token)],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert!(
        idp.store
            .apps()
            .access_groups(idp.app.id)
            .await
            .unwrap()
            .is_empty()
    );
    audited_as(&idp, "app.unassign", "root").await;
    let page = b
        .post(
            &format!("{app}/access"),
            &[("group", "staff"), ("csrf", &token)],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(
        idp.store
            .apps()
            .access_groups(idp.app.id)
            .await
            .unwrap()
            .len(),
        1
    );
    audited_as(&idp, "app.assign", "root").await;
    let page = b
        .post(
            &format!("{app}/mfa"),
            &[
                ("require_mfa", "on"),
                ("mfa_class", "mobile_two_factor"),
                ("csrf", &token),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let mfa = latchkey_idp::mfa::policy::MfaPolicy::new(&idp.store)
        .app(idp.app.id)
        .await
        .unwrap();
    assert!(mfa.require_mfa);
    audited_as(&idp, "app.mfa_policy", "root").await;
}

/// The text of the first `<code class="{class}">`.
fn code(body: &str, class: &str) -> String {
    let marker = format!("<code class=\"{class}\">");
    let start = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no {class}: {body}"))
        + marker.len();
    let end = body[start..].find('<').unwrap() + start;
    body[start..end]
        .replace("&#34;", "\"")
        .replace("&#38;", "&")
}

#[tokio::test]
async fn an_admin_edits_endpoints_and_the_sps_certificates() {
    let idp = idp().await;
    seed(&idp).await;
    let mut b = signed_in(&idp, "root").await;
    let token = csrf(&mut b).await;
    let app = format!("/admin/apps/{}", idp.app.id);
    let before = idp.store.apps().get(idp.app.id).await.unwrap().settings;
    let old_acs = before.acs[0].clone();
    let cert = rcgen::generate_simple_self_signed(vec!["sp.example.com".to_owned()])
        .unwrap()
        .cert
        .pem();
    // The old URL typed twice stays one endpoint.
    let acs = format!(
        "https://sp.example.com/acs2\r\n{}\r\n{}\r\n",
        old_acs.url, old_acs.url
    );
    let two_certs = format!("{cert}\n{cert}");
    let page = b
        .post(
            &app,
            &[
                ("name", "Wiki"),
                ("name_id_format", "persistent"),
                ("name_id_source", "pairwise"),
                ("sign_response", "on"),
                ("sign_assertion", "on"),
                ("acs_url", &acs),
                ("slo_url", "https://sp.example.com/slo"),
                ("slo_binding", "post"),
                ("signing_cert", &two_certs),
                ("csrf", &token),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let s = idp.store.apps().get(idp.app.id).await.unwrap().settings;
    // The new URL is the default; the old one keeps its index and binding.
    let urls: Vec<(&str, bool)> = s
        .acs
        .iter()
        .map(|e| (e.url.as_str(), e.is_default))
        .collect();
    assert!(
        urls.contains(&("https://sp.example.com/acs2", true)),
        "{urls:?}"
    );
    assert!(urls.contains(&(old_acs.url.as_str(), false)), "{urls:?}");
    assert_eq!(s.acs.len(), 2, "{urls:?}");
    let kept = s.acs.iter().find(|e| e.url == old_acs.url).unwrap();
    assert_eq!((kept.index, kept.binding), (old_acs.index, old_acs.binding));
    let slo = s.slo.as_ref().unwrap();
    assert_eq!(
        (slo.url.as_str(), slo.binding),
        (
            "https://sp.example.com/slo",
            latchkey_idp::apps::Binding::HttpPost
        )
    );
    assert_eq!(s.signing_certs.len(), 2);
    let event = audited_as(&idp, "app.update", "root").await;
    assert!(event.after.is_some());
    // The page shows them back, default first.
    let form = b.get(&app).await;
    assert!(
        form.body.contains("https://sp.example.com/acs2"),
        "{}",
        form.body
    );
    assert!(form.body.contains("https://sp.example.com/slo"));

    // Empty fields remove the logout endpoint and the certificates.
    let page = b
        .post(
            &app,
            &[
                ("name", "Wiki"),
                ("name_id_format", "persistent"),
                ("name_id_source", "pairwise"),
                ("sign_response", "on"),
                ("sign_assertion", "on"),
                ("acs_url", &acs),
                ("slo_url", ""),
                ("slo_binding", "redirect"),
                ("signing_cert", ""),
                ("csrf", &token),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let s = idp.store.apps().get(idp.app.id).await.unwrap().settings;
    assert!(s.slo.is_none() && s.signing_certs.is_empty(), "{s:?}");
}

#[tokio::test]
async fn the_preview_shows_what_a_real_assertion_carries_and_writes_nothing() {
    let idp = idp().await;
    seed(&idp).await;
    let preview = format!("/admin/preview?user=alice&app={}", idp.app.id);

    // Before alice's first sign-in her pairwise identifier does not exist, and a preview
    // (by the helpdesk, who may read it) does not make it.
    let mut hd = signed_in(&idp, "hd").await;
    let audit_before = idp.store.audit().count().await.unwrap();
    let page = hd.get(&preview).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(
        code(&page.body, "name-id"),
        latchkey_idp::sso::response::PAIRWISE_NOT_YET
    );
    assert_eq!(idp.store.audit().count().await.unwrap(), audit_before);

    // A real sign-in.
    let mut alice = Browser::new(&idp);
    alice.login("alice", PASSWORD, None).await;
    let request = authn_request(SP);
    let first = alice.get(&redirect_uri(&request, None)).await;
    let posted = alice.follow(first).await;
    let xml = posted.saml_response();
    let real = sp_validate(
        &idp,
        SP,
        super::support::SP_ACS,
        &xml,
        Some(request.id.as_str()),
    )
    .unwrap();

    // The auditor's preview now says exactly what the SP received.
    let mut aud = signed_in(&idp, "aud").await;
    let page = aud.get(&preview).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(code(&page.body, "name-id"), real.name_id.value);
    assert_eq!(
        real.name_id.format.as_deref(),
        Some(latchkey_idp::apps::NameIdFormat::Persistent.uri())
    );
    assert!(page.body.contains(real.name_id.format.as_deref().unwrap()));
    assert_eq!(
        Some(code(&page.body, "authn-context")),
        real.authn_context_class_ref
    );
    let shown_values = page.body.matches("<code class=\"value\">").count();
    let real_values: usize = real.attributes.iter().map(|a| a.values.len()).sum();
    assert_eq!(shown_values, real_values, "{}", page.body);
    assert!(real_values > 0);
    for attribute in &real.attributes {
        assert!(
            page.body
                .contains(&format!("<code>{}</code>", attribute.name)),
            "{}",
            attribute.name
        );
        for value in &attribute.values {
            assert!(
                page.body
                    .contains(&format!("<code class=\"value\">{value}</code>")),
                "{}={value}: {}",
                attribute.name,
                page.body
            );
        }
    }

    // bob is in no assigned group: the refusal, with its code.
    let page = aud
        .get(&format!("/admin/preview?user=bob&app={}", idp.app.id))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("data-code=\"SSO-DENIED\""),
        "{}",
        page.body
    );
    assert!(!page.body.contains("name-id"), "{}", page.body);

    // An unknown user is a field of the form.
    let page = aud
        .get(&format!("/admin/preview?user=nobody&app={}", idp.app.id))
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("data-field=\"user\""), "{}", page.body);
}

#[tokio::test]
async fn keys_rotate_and_activate_under_the_rollover_rule() {
    let idp = idp().await;
    seed(&idp).await;
    let mut b = signed_in(&idp, "root").await;
    let token = csrf(&mut b).await;
    let status = |s: KeyStatus| {
        let dir = idp.key_dir.clone();
        move || {
            KeyStore::open(&dir)
                .unwrap()
                .list()
                .into_iter()
                .filter(|k| k.status == s)
                .map(|k| k.id)
                .collect::<Vec<_>>()
        }
    };
    let active = status(KeyStatus::Active);
    let next = status(KeyStatus::Next);
    let first = active();
    let certificates = |xml: &str| xml.matches("<ds:X509Certificate>").count();
    let published_before = certificates(&b.get("/saml/metadata").await.body);

    let page = b
        .post(
            "/admin/keys/rotate",
            &[("algorithm", "ecdsa_p256"), ("csrf", &token)],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let published = next();
    assert_eq!(published.len(), 1);
    audited_as(&idp, "key.rotate", "root").await;
    let page = b.get("/admin/keys").await;
    assert!(page.body.contains(&published[0]), "{}", page.body);
    assert!(page.body.contains("may be activated from"), "{}", page.body);
    // The metadata publishes it at once.
    let metadata = b.get("/saml/metadata").await;
    assert_eq!(certificates(&metadata.body), published_before + 1);

    // Too soon: refused with the field named, nothing changes.
    let before = written(&idp).await;
    let page = b.post("/admin/keys/activate", &[("csrf", &token)]).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("data-field=\"force\""), "{}", page.body);
    assert_eq!(written(&idp).await, before);
    assert_eq!(active(), first);

    // Once the metadata's cacheDuration has passed (and the admin signed in again, as the
    // session did not last that long), activation needs no confirmation.
    idp.clock
        .advance(idp.settings.metadata_cache + time::Duration::seconds(1));
    let mut b = signed_in(&idp, "root").await;
    let token = csrf(&mut b).await;
    let page = b.post("/admin/keys/activate", &[("csrf", &token)]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location(), "/admin/keys");
    assert_eq!(active(), published);
    let event = audited_as(&idp, "key.activate", "root").await;
    assert_eq!(event.after.as_ref().unwrap()["forced"], false);

    // A forced activation: only with the box ticked, and recorded as forced.
    b.post("/admin/keys/rotate", &[("csrf", &token)]).await;
    let second = next();
    assert_eq!(second.len(), 1);
    let page = b
        .post("/admin/keys/activate", &[("force", "on"), ("csrf", &token)])
        .await;
    assert_eq!(page.location(), "/admin/keys", "{}", page.body);
    assert_eq!(active(), second);
    let event = audited_as(&idp, "key.activate", "root").await;
    assert_eq!(event.after.as_ref().unwrap()["forced"], true);
}

#[tokio::test]
async fn the_dashboard_warns_of_expiring_metadata_a_waiting_key_and_an_app_nobody_can_use() {
    let idp = idp().await;
    seed(&idp).await;
    let mut b = signed_in(&idp, "root").await;
    let token = csrf(&mut b).await;
    let page = b.get("/admin").await;
    assert!(!page.body.contains("SP metadata of"), "{}", page.body);

    // Metadata valid for three more days, uploaded; metadata valid for a year, too.
    let soon = (idp.clock.now() + time::Duration::days(3))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let later = (idp.clock.now() + time::Duration::days(365))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    for (entity, until) in [
        ("https://soon.example.net/saml", soon.as_str()),
        ("https://later.example.net/saml", later.as_str()),
    ] {
        let page = b
            .send(upload(Some(&token), &metadata_until(entity, until), ""))
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    }
    b.post("/admin/keys/rotate", &[("csrf", &token)]).await;

    let page = b.get("/admin").await;
    assert!(
        page.body
            .contains("The SP metadata of https://soon.example.net/saml (https://soon.example.net/saml), read from an uploaded file, expires"),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains("SP metadata of https://later"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("A next signing key is published but not active"),
        "{}",
        page.body
    );
    // Nobody is assigned to the uploaded applications.
    assert!(
        page.body
            .contains("Nobody can use https://soon.example.net/saml"),
        "{}",
        page.body
    );

    // Past its validUntil, it says expired.
    idp.clock.advance(time::Duration::days(4));
    let mut b = signed_in(&idp, "aud").await;
    let page = b.get("/admin").await;
    assert!(
        page.body
            .contains("The SP metadata of https://soon.example.net/saml (https://soon.example.net/saml), read from an uploaded file, expired"),
        "{}",
        page.body
    );
}

/// The application page shows its SCIM connection's state (URL, policy, queue, last error),
/// never its token, and says when there is none.
#[tokio::test]
async fn the_application_page_shows_its_scim_state_without_the_token() {
    use latchkey_idp::keys::{Kek, KekSource};
    use latchkey_idp::provisioning::{NewConnection, OnRemove};
    let idp = idp().await;
    seed(&idp).await;
    let route = format!("/admin/apps/{}", idp.app.id);
    let mut b = signed_in(&idp, "aud").await;
    let page = b.get(&route).await;
    assert!(page.body.contains("Not connected"), "{}", page.body);
    let kek = Kek::from_base64(&Kek::generate_base64(), KekSource::Env).unwrap();
    let token = "console-must-not-show-this-token";
    idp.store
        .provisioning()
        .connect(
            &Actor::system(),
            &kek,
            idp.app.id,
            NewConnection {
                base_url: "https://scim.sp.test/v2".into(),
                token: zeroize::Zeroizing::new(token.into()),
                on_remove: OnRemove::Delete,
            },
        )
        .await
        .unwrap();
    let page = b.get(&route).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("https://scim.sp.test/v2"),
        "{}",
        page.body
    );
    assert!(page.body.contains("<dd>delete</dd>"), "{}", page.body);
    assert!(page.body.contains(" waiting"), "{}", page.body);
    assert!(!page.body.contains(token));
}

/// Alice's suspension has not reached the application: the disconnect form says so (409,
/// the field named, nothing written) until its box is ticked, and then the event names her.
#[tokio::test]
async fn a_scim_disconnect_with_pending_removals_needs_the_box_ticked() {
    let idp = idp().await;
    seed(&idp).await;
    let app = format!("/admin/apps/{}", idp.app.id);
    let mut b = signed_in(&idp, "root").await;
    let token = csrf(&mut b).await;
    let page = b
        .post(
            &format!("{app}/scim"),
            &[
                ("scim_url", "https://scim.sp.test/v2"),
                ("scim_token", "a-token"),
                ("csrf", &token),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let alice = idp.store.users().lookup("alice").await.unwrap();
    idp.store
        .users()
        .suspend(&latchkey_idp::Actor::system(), alice.id)
        .await
        .unwrap();
    let page = b.get(&app).await;
    assert!(page.body.contains("name=\"force\""), "{}", page.body);
    // Her page says where she still has access.
    let page = b.get(&format!("/admin/users/{}", alice.id)).await;
    assert!(page.body.contains("id=\"scim-pending\""), "{}", page.body);
    assert!(
        page.body
            .contains("removal not delivered: alice still has access there"),
        "{}",
        page.body
    );

    let before = written(&idp).await;
    let page = b
        .post(&format!("{app}/scim/remove"), &[("csrf", &token)])
        .await;
    assert_eq!(page.status, StatusCode::CONFLICT, "{}", page.body);
    assert!(page.body.contains("data-field=\"scim\""), "{}", page.body);
    assert!(page.body.contains("1 user(s)"), "{}", page.body);
    assert_eq!(written(&idp).await, before);
    let status = idp.store.provisioning().status(idp.app.id).await.unwrap();
    assert_eq!(
        status.unwrap().queue_length,
        2,
        "nothing dropped (her two rows)"
    );

    let page = b
        .post(
            &format!("{app}/scim/remove"),
            &[("force", "on"), ("csrf", &token)],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert!(
        idp.store
            .provisioning()
            .status(idp.app.id)
            .await
            .unwrap()
            .is_none()
    );
    let event = audited_as(&idp, "app.scim_disconnect", "root").await;
    let after = event.after.unwrap();
    assert_eq!(after["dropped_removals"], 1);
    assert_eq!(after["users"][0]["name"], "alice");
    assert_eq!(after["users"][0]["id"], alice.id.to_string());
}

/// An admin connects an application to its SCIM server from its page, changes the policy
/// and disconnects it, each audited by name; the token is never shown back, and bad input
/// names the field and writes nothing.
#[tokio::test]
async fn an_admin_connects_an_application_to_scim_from_its_page() {
    let idp = idp().await;
    seed(&idp).await;
    let app = format!("/admin/apps/{}", idp.app.id);
    let mut b = signed_in(&idp, "root").await;
    let token = csrf(&mut b).await;
    let secret = "console-form-token-that-must-stay-hidden";
    let page = b.get(&app).await;
    assert!(page.body.contains("action=\"/admin/apps/"), "{}", page.body);
    assert!(page.body.contains("name=\"scim_token\""), "{}", page.body);

    let before = written(&idp).await;
    let bad: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![
                ("scim_url", "http://scim.sp.test/v2"),
                ("scim_token", secret),
            ],
            "scim_url",
        ),
        (
            vec![("scim_url", "not a url"), ("scim_token", secret)],
            "scim_url",
        ),
        (
            vec![("scim_url", "https://scim.sp.test/v2"), ("scim_token", "")],
            "scim_token",
        ),
        (
            vec![
                ("scim_url", "https://scim.sp.test/v2"),
                ("scim_token", secret),
                ("scim_on_remove", "shred"),
            ],
            "scim_on_remove",
        ),
    ];
    for (fields, field) in bad {
        let mut form = fields.clone();
        form.push(("csrf", &token));
        let page = b.post(&format!("{app}/scim"), &form).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{fields:?}");
        assert!(
            page.body.contains(&format!("data-field=\"{field}\"")),
            "{field}: {}",
            page.body
        );
        assert!(!page.body.contains(secret));
    }
    assert_eq!(written(&idp).await, before);
    assert!(
        idp.store
            .provisioning()
            .status(idp.app.id)
            .await
            .unwrap()
            .is_none()
    );

    let page = b
        .post(
            &format!("{app}/scim"),
            &[
                ("scim_url", "https://scim.sp.test/v2"),
                ("scim_token", secret),
                ("scim_on_remove", "delete"),
                ("csrf", &token),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let status = idp
        .store
        .provisioning()
        .status(idp.app.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.base_url, "https://scim.sp.test/v2");
    assert_eq!(status.on_remove.as_str(), "delete");
    let event = audited_as(&idp, "app.scim_connect", "root").await;
    assert!(!format!("{event:?}").contains(secret));
    let page = b.get(&app).await;
    assert!(
        page.body.contains("https://scim.sp.test/v2"),
        "{}",
        page.body
    );
    assert!(!page.body.contains(secret));
    assert!(page.body.contains("Disconnect"), "{}", page.body);

    let page = b
        .post(&format!("{app}/scim/remove"), &[("csrf", &token)])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert!(
        idp.store
            .provisioning()
            .status(idp.app.id)
            .await
            .unwrap()
            .is_none()
    );
    audited_as(&idp, "app.scim_disconnect", "root").await;
    let page = b
        .post(&format!("{app}/scim/remove"), &[("csrf", &token)])
        .await;
    assert_eq!(
        page.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        page.body
    );
    assert!(page.body.contains("data-field=\"scim\""), "{}", page.body);
}

/// The settings form posts every setting it shows (the SP's certificates among them): saved
/// from a page opened before the SP's certificate was rolled (a metadata refresh, another
/// admin), it is refused (409, the page drawn again with the new certificate) instead of
/// putting the old one back; saved from the page drawn again, it goes.
#[tokio::test]
async fn settings_saved_from_a_page_opened_before_another_change_are_refused_not_saved_over_it() {
    let idp = idp().await;
    seed(&idp).await;
    let mut b = signed_in(&idp, "root").await;
    let token = csrf(&mut b).await;
    let app = format!("/admin/apps/{}", idp.app.id);
    let opened = b.get(&app).await;
    let seen = opened.field("seen").expect("the settings form's version");
    let acs = idp.store.apps().get(idp.app.id).await.unwrap().settings.acs[0]
        .url
        .clone();

    // Meanwhile the SP rolls its signing certificate.
    let cert = rcgen::generate_simple_self_signed(vec!["sp.example.com".to_owned()])
        .unwrap()
        .cert
        .pem();
    let rolled = cert.clone();
    idp.store
        .apps()
        .update(&Actor::system(), idp.app.id, move |s| {
            s.signing_certs = vec![rolled]
        })
        .await
        .unwrap();
    let before = written(&idp).await;
    let form = |seen: &str, certs: &str| {
        vec![
            ("csrf", token.clone()),
            ("seen", seen.to_owned()),
            ("name", "Wiki renamed".to_owned()),
            ("name_id_format", "persistent".to_owned()),
            ("name_id_source", "pairwise".to_owned()),
            ("sign_response", "on".to_owned()),
            ("sign_assertion", "on".to_owned()),
            ("acs_url", acs.clone()),
            ("signing_cert", certs.to_owned()),
        ]
    };
    let stale = form(&seen, "");
    let stale: Vec<(&str, &str)> = stale.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let page = b.post(&app, &stale).await;
    assert_eq!(page.status, StatusCode::CONFLICT, "{}", page.body);
    assert!(
        page.body.contains("data-field=\"application\"")
            && page.body.contains("changed by someone else"),
        "{}",
        page.body
    );
    assert_eq!(written(&idp).await, before);
    let s = idp.store.apps().get(idp.app.id).await.unwrap().settings;
    assert_eq!((s.signing_certs.len(), s.name.as_str()), (1, "Wiki"));
    let first_line = cert.lines().nth(1).unwrap();
    assert!(page.body.contains(first_line), "{}", page.body);

    let fresh = page.field("seen").expect("the form drawn again");
    let saved = form(&fresh, &cert);
    let saved: Vec<(&str, &str)> = saved.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let done = b.post(&app, &saved).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let s = idp.store.apps().get(idp.app.id).await.unwrap().settings;
    assert_eq!(
        (s.signing_certs.len(), s.name.as_str()),
        (1, "Wiki renamed")
    );
}
