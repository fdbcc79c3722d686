use std::collections::BTreeSet;

use super::*;
use crate::apps::{
    AttributeNameFormat, AttributeSource, NameIdFormat, NameIdSource, UserField, ValueFilter,
};

#[test]
fn every_file_in_the_catalog_folder_is_shipped_and_nothing_else() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("catalog");
    let on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    let shipped: BTreeSet<String> = names().map(str::to_owned).collect();
    assert_eq!(on_disk, shipped);
}

#[test]
fn every_shipped_template_parses_with_its_required_fields() {
    let all = templates().unwrap();
    assert_eq!(all.len(), names().count());
    let mut seen = BTreeSet::new();
    for t in &all {
        assert!(seen.insert(t.name.clone()), "duplicate {}", t.name);
        assert!(!t.display_name.is_empty(), "{}", t.name);
        assert!(
            t.docs.starts_with("https://") || t.docs.starts_with("repo:"),
            "{}",
            t.name
        );
        assert!(t.sign_response || t.sign_assertion, "{}", t.name);
        assert!(!t.notes.is_empty(), "{} has no notes", t.name);
        // Every template says what the application needs of a user to let them in.
        assert!(
            t.expects.len() > 40,
            "{} does not say what the application expects",
            t.name
        );
        if let Some(path) = t.docs.strip_prefix("repo:") {
            let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
            assert!(
                root.join(path).exists(),
                "{}: {path} is not in the repository",
                t.name
            );
        }
        // Every vendor template names the SP's ACS URL; only the generic one cannot.
        if t.name != "generic-saml" {
            assert!(t.acs_url.is_some(), "{} has no ACS URL", t.name);
            assert!(t.entity_id.is_some(), "{} has no entity ID", t.name);
        }
    }
}

#[test]
fn the_required_applications_are_in_the_catalogue() {
    for name in [
        "generic-saml",
        "gitlab",
        "grafana",
        "nextcloud",
        "mattermost",
        "sentry",
        "zendesk",
        "slack",
        "atlassian-cloud",
        "aws-iam-identity-center",
        "salesforce",
        "latchkey-wiki",
        "latchkey-helpdesk",
    ] {
        assert_eq!(get(name).unwrap().name, name);
    }
}

fn names_of(t: &Template) -> Vec<&str> {
    t.attributes.iter().map(|a| a.name.as_str()).collect()
}

#[test]
fn gitlab_sends_the_names_gitlab_reads_by_default() {
    let t = get("gitlab").unwrap();
    // omniauth-saml defaults (email/mail, first_name, last_name, name) and GitLab's
    // nickname default (username); Groups is the name GitLab's documentation uses
    // for groups_attribute.
    assert_eq!(
        names_of(&t),
        [
            "email",
            "first_name",
            "last_name",
            "name",
            "username",
            "Groups"
        ]
    );
    assert_eq!(t.name_id.format, NameIdFormat::Persistent);
    assert_eq!(t.name_id.source, NameIdSource::Pairwise);
    let src = |n: &str| t.attribute(n).unwrap().source.clone();
    assert_eq!(src("email"), AttributeSource::Field(UserField::Email));
    assert_eq!(
        src("first_name"),
        AttributeSource::Field(UserField::GivenName)
    );
    assert_eq!(
        src("last_name"),
        AttributeSource::Field(UserField::FamilyName)
    );
    assert_eq!(src("name"), AttributeSource::Field(UserField::DisplayName));
    assert_eq!(src("username"), AttributeSource::Field(UserField::Username));
    assert_eq!(src("Groups"), AttributeSource::Groups);
    assert!(
        t.attributes
            .iter()
            .all(|a| a.name_format == AttributeNameFormat::Basic)
    );
    assert_eq!(
        t.acs_url
            .unwrap()
            .fill(&[("gitlab_host", "git.example.org")])
            .unwrap(),
        "https://git.example.org/users/auth/saml/callback"
    );
    let groups = t
        .sp_settings
        .iter()
        .find(|s| s.name == "groups_attribute")
        .unwrap();
    assert_eq!(groups.value, "Groups");
}

#[test]
fn grafana_sends_the_names_of_its_default_settings() {
    let t = get("grafana").unwrap();
    assert_eq!(names_of(&t), ["displayName", "mail", "Group"]);
    for (setting, attr) in [
        ("assertion_attribute_name", "displayName"),
        ("assertion_attribute_login", "mail"),
        ("assertion_attribute_email", "mail"),
        ("assertion_attribute_groups", "Group"),
    ] {
        let s = t.sp_settings.iter().find(|s| s.name == setting).unwrap();
        assert_eq!(s.value, attr);
        assert!(t.attribute(attr).is_some());
    }
}

#[test]
fn demo_apps_match_the_issue() {
    let wiki = get("latchkey-wiki").unwrap();
    assert_eq!(wiki.name_id.format, NameIdFormat::EmailAddress);
    assert_eq!(wiki.name_id.source, NameIdSource::Email);
    assert_eq!(
        names_of(&wiki),
        ["email", "givenName", "sn", "displayName", "groups"]
    );
    let desk = get("latchkey-helpdesk").unwrap();
    assert_eq!(desk.name_id.format, NameIdFormat::Persistent);
    assert_eq!(desk.name_id.source, NameIdSource::Pairwise);
    assert_eq!(names_of(&desk), ["givenName", "sn", "department", "email"]);
    assert_eq!(
        desk.attribute("department").unwrap().source,
        AttributeSource::Field(UserField::Attribute("department".into()))
    );
}

#[test]
fn salesforce_profile_is_a_constant_and_slack_uses_unspecified_name_format() {
    let sf = get("salesforce").unwrap();
    assert_eq!(
        sf.attribute("User.ProfileId").unwrap().source,
        AttributeSource::Constant("Standard User".into())
    );
    let slack = get("slack").unwrap();
    assert_eq!(slack.required_attributes, ["User.Email"]);
    assert!(
        slack
            .attributes
            .iter()
            .all(|a| a.name_format == AttributeNameFormat::Unspecified)
    );
}

#[test]
fn unknown_template_is_not_found() {
    assert_eq!(get("nope"), Err(CatalogError::NotFound("nope".into())));
}

const MINIMAL: &str = r#"
name = "t"
display_name = "T"
docs = "https://example.org/doc"
[name_id]
format = "persistent"
source = "pairwise"
"#;

fn with(extra: &str) -> Result<Template, CatalogError> {
    parse("t", &format!("{MINIMAL}\n{extra}"))
}

fn reason(r: Result<Template, CatalogError>) -> String {
    match r {
        Err(CatalogError::Invalid { reason, .. }) => reason,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn minimal_template_parses_with_defaults() {
    let t = with("").unwrap();
    assert!(t.sign_response && t.sign_assertion);
    assert!(t.attributes.is_empty());
    assert_eq!(
        t.name_id.format.uri(),
        "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
    );
}

#[test]
fn rules_are_enforced() {
    assert!(reason(parse("other", MINIMAL)).contains("differs from the file name"));
    assert!(
        reason(parse(
            "t",
            &MINIMAL.replace("https://example.org/doc", "http://x")
        ))
        .contains("docs")
    );
    assert!(
        reason(parse("t", &MINIMAL.replace("\"persistent\"", "\"x509\"")))
            .contains("NameID format")
    );
    let top = |extra: &str| {
        parse(
            "t",
            &MINIMAL.replace("[name_id]", &format!("{extra}\n[name_id]")),
        )
    };
    assert!(reason(top("unknown_key = 1")).contains("unknown field"));
    assert!(reason(top("sign_response = false\nsign_assertion = false")).contains("signed"));
    assert!(top("sign_response = false").is_ok());

    let dup = "[[attributes]]\nname = \"a\"\nsource = \"email\"\n[[attributes]]\nname = \"a\"\nsource = \"username\"";
    assert!(reason(with(dup)).contains("twice"));
    let attr = |body: &str| reason(with(&format!("[[attributes]]\nname = \"a\"\n{body}")));
    assert!(attr("source = \"shoe_size\"").contains("is not one of"));
    assert!(attr("source = \"attr:\"").contains("attribute"));
    assert!(attr("source = \"const:\"").contains("non-empty"));
    assert!(attr("source = \"groups\"\nfilter = \"suffix:x\"").contains("filter"));
    assert!(attr("source = \"groups\"\nfilter = \"prefix:\"").contains("must not be empty"));
    assert!(attr("source = \"email\"\nname_format = \"fancy\"").contains("name_format"));
    assert!(
        reason(with(
            "[[attributes]]\nname = \"mail\"\nname_format = \"uri\"\nsource = \"email\""
        ))
        .contains("not a URI")
    );
    assert!(
        reason(with("[[attributes]]\nname = \"a b\"\nsource = \"email\"")).contains("whitespace")
    );
    assert!(reason(with("[sp]\nacs_url = \"https://host/{acs\"")).contains("unclosed"));
    assert!(reason(with("[sp]\nacs_url = \"https://{}/acs\"")).contains("empty placeholder"));
    assert!(reason(with("[sp]\nacs_url = \"https://{Host}/acs\"")).contains("bad character"));
}

#[test]
fn name_id_format_and_source_must_agree() {
    let email_from_username = MINIMAL
        .replace("\"persistent\"", "\"email\"")
        .replace("\"pairwise\"", "\"username\"");
    assert!(reason(parse("t", &email_from_username)).contains("email field"));
    let persistent_from_email = MINIMAL.replace("\"pairwise\"", "\"email\"");
    assert!(reason(parse("t", &persistent_from_email)).contains("can change"));
    let unknown_source = MINIMAL.replace("\"pairwise\"", "\"display_name\"");
    assert!(reason(parse("t", &unknown_source)).contains("NameID source"));
    let full_urn = MINIMAL.replace(
        "\"persistent\"",
        "\"urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified\"",
    );
    assert_eq!(
        parse("t", &full_urn).unwrap().name_id.format,
        NameIdFormat::Unspecified
    );
}

#[test]
fn groups_prefix_is_kept() {
    let t =
        with("[[attributes]]\nname = \"g\"\nsource = \"groups\"\nfilter = \"strip-prefix:wiki-\"")
            .unwrap();
    assert_eq!(t.attributes[0].source, AttributeSource::Groups);
    assert_eq!(
        t.attributes[0].filter,
        Some(ValueFilter::StripPrefix("wiki-".into()))
    );
}

#[test]
fn url_pattern_fill_needs_every_placeholder() {
    let t = get("aws-iam-identity-center").unwrap();
    let acs = t.acs_url.clone().unwrap();
    assert_eq!(acs.placeholders(), ["region", "instance_id"]);
    assert_eq!(
        acs.fill(&[("region", "eu-west-1"), ("instance_id", "abc")])
            .unwrap(),
        "https://eu-west-1.signin.aws.amazon.com/platform/saml/acs/abc"
    );
    assert_eq!(
        acs.fill(&[("region", "eu-west-1")]),
        Err(CatalogError::MissingPlaceholder("instance_id".into()))
    );
    assert_eq!(
        t.placeholders().into_iter().collect::<Vec<_>>(),
        ["instance_id", "region"]
    );
}

#[test]
fn a_template_becomes_an_application_the_registry_accepts() {
    let t = get("gitlab").unwrap();
    let app = t
        .application(&[("gitlab_host", "git.example.org")])
        .unwrap();
    assert_eq!(app.entity_id, "https://git.example.org");
    assert_eq!(
        app.acs[0].url,
        "https://git.example.org/users/auth/saml/callback"
    );
    assert_eq!(app.name, "GitLab (self-managed)");
    assert_eq!(app.attributes, t.attributes);
    assert_eq!(app.name_id, t.name_id);
    // The registry's full rule set accepts every vendor template's application.
    for t in templates().unwrap() {
        let values: Vec<(String, &str)> = t
            .placeholders()
            .into_iter()
            .map(|p| {
                let v = if p.ends_with("base_url") {
                    "https://app.example.org"
                } else {
                    "example"
                };
                (p, v)
            })
            .collect();
        let values: Vec<(&str, &str)> = values.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        match t.application(&values) {
            Ok(app) => {
                crate::apps::rules::check(app).unwrap_or_else(|e| panic!("{}: {e}", t.name));
            }
            Err(CatalogError::NoUrlPattern { .. }) => assert_eq!(t.name, "generic-saml"),
            Err(e) => panic!("{}: {e}", t.name),
        }
    }
    assert!(matches!(
        get("generic-saml").unwrap().application(&[]),
        Err(CatalogError::NoUrlPattern {
            what: "acs_url",
            ..
        })
    ));
}

#[test]
fn login_url_patterns_fill_the_tile_with_the_acs_placeholders() {
    let gitlab = get("gitlab").unwrap();
    assert_eq!(
        gitlab.login_url.as_ref().map(UrlPattern::as_str),
        Some("https://{gitlab_host}/users/sign_in")
    );
    let app = gitlab
        .application(&[("gitlab_host", "git.example.org")])
        .unwrap();
    assert_eq!(
        app.tile.login_url.as_deref(),
        Some("https://git.example.org/users/sign_in")
    );
    let wiki = get("latchkey-wiki")
        .unwrap()
        .application(&[("wiki_base_url", "http://localhost:8081")])
        .unwrap();
    assert_eq!(
        crate::apps::rules::check(wiki)
            .unwrap()
            .tile
            .login_url
            .as_deref(),
        Some("http://localhost:8081/login")
    );
    // A template without one leaves the tile launching IdP-initiated.
    let grafana = get("grafana").unwrap();
    assert!(grafana.login_url.is_none());
    let app = grafana
        .application(&[("grafana_host", "grafana.example.org")])
        .unwrap();
    assert_eq!(app.tile.login_url, None);
}

#[test]
fn login_url_pattern_rules() {
    let sp = |body: &str| with(&format!("[sp]\n{body}"));
    let ok = sp(
        "acs_url = \"https://{host}/acs\"\nentity_id = \"https://{host}\"\nlogin_url = \"https://{host}/login\"",
    )
    .unwrap();
    assert_eq!(ok.placeholders().into_iter().collect::<Vec<_>>(), ["host"]);
    assert!(
        reason(sp(
            "acs_url = \"https://{host}/acs\"\nentity_id = \"https://{host}\"\nlogin_url = \"https://{tenant}/login\""
        ))
        .contains("{tenant} is not in acs_url or entity_id")
    );
    assert!(reason(sp("login_url = \"https://example.org/login\"")).contains("needs sp.acs_url"));
    assert!(
        reason(sp(
            "acs_url = \"https://{host}/acs\"\nentity_id = \"https://{host}\"\nlogin_url = \"https://{host}}/login\""
        ))
        .contains("unbalanced")
    );
}
