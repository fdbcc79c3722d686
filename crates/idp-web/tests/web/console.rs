//! The admin console, in process: every page and form under each role (table-driven), the
//! sign-in round trip, anti-forgery, bad input given back with the field named and nothing
//! written, helpdesk kept away from console users, and audit lines carrying names.

use axum::http::StatusCode;
use latchkey_idp::Actor;
use latchkey_idp::audit::AuditFilter;
use latchkey_idp::console::{Holder, Role};
use latchkey_idp::directory::{NewGroup, NewUser, User};
use latchkey_idp::password::Password;

use super::support::{Browser, Idp, PASSWORD, Page, audit_actions, idp, step_up_with_new_totp};

/// A user with the test password and, if given, a console role.
pub async fn person(idp: &Idp, name: &str, role: Option<Role>) -> User {
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

/// A browser signed in as `name` with a password and a second factor, as the console asks.
pub async fn signed_in<'a>(idp: &'a Idp, name: &str) -> Browser<'a> {
    let mut b = Browser::new(idp);
    let page = b.login(name, PASSWORD, None).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let user = idp.store.users().lookup(name).await.unwrap();
    step_up_with_new_totp(&mut b, &user).await;
    b
}

/// The anti-forgery token of this browser (from any page with a form).
pub async fn csrf(b: &mut Browser<'_>) -> String {
    b.get("/logout").await.field("csrf").unwrap()
}

/// Everything a refused change could have touched.
pub async fn written(idp: &Idp) -> (usize, i64) {
    (
        idp.store.users().list().await.unwrap().len(),
        idp.store.audit().count().await.unwrap(),
    )
}

/// The one audit event a refused console request wrote, checked: `before` is [`written`]
/// before it; the event is `console.refused`, by `operator`, about `target` (a username, a
/// group's name or the console path), under the operation ID `page` shows, naming `rule`
/// (its `reason`).
pub async fn refusal_audited(
    idp: &Idp,
    before: (usize, i64),
    page: &Page,
    operator: &str,
    target: &str,
    rule: &str,
) -> latchkey_idp::audit::AuditEvent {
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    assert_eq!(page.error_code(), Some("WEB-FORBIDDEN"));
    assert_eq!(
        written(idp).await,
        (before.0, before.1 + 1),
        "a refusal writes its audit event and nothing else"
    );
    let event = audit_actions(idp, "console.refused")
        .await
        .into_iter()
        .max_by_key(|e| e.seq)
        .expect("a console.refused event");
    assert_eq!(event.actor_name.as_deref(), Some(operator), "{event:?}");
    assert_eq!(event.target_name.as_deref(), Some(target), "{event:?}");
    let after = event.after.clone().expect("details");
    let shown = page.operation_id().expect("an operation ID on the page");
    assert_eq!(after["operation_id"], shown, "{event:?}");
    assert_eq!(after["code"], "WEB-FORBIDDEN", "{event:?}");
    assert_eq!(after["reason"], rule, "{event:?}");
    event
}

/// Whether `name` holds a console role: the refusals of one who holds none are only
/// logged ([`refusal_only_logged`]), an operator's audited ([`refusal_audited`]).
pub async fn holds_a_role(idp: &Idp, name: &str) -> bool {
    let user = idp.store.users().lookup(name).await.unwrap();
    !idp.store.roles().of_user(&user).await.unwrap().is_empty()
}

/// A refused console request of a signed-in user holding no console role: the 403 page
/// with its code and operation ID, and nothing written, not even an audit event (`before`
/// is [`written`] before it).
pub async fn refusal_only_logged(idp: &Idp, before: (usize, i64), page: &Page) {
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    assert_eq!(page.error_code(), Some("WEB-FORBIDDEN"));
    assert!(page.operation_id().is_some(), "{}", page.body);
    assert_eq!(
        written(idp).await,
        before,
        "a refusal of a user holding no console role writes nothing"
    );
}

/// A refused console request checked by who was refused: [`refusal_audited`] for an
/// operator, [`refusal_only_logged`] for a user holding no console role.
pub async fn refused(
    idp: &Idp,
    before: (usize, i64),
    page: &Page,
    operator: &str,
    target: &str,
    rule: &str,
) {
    if holds_a_role(idp, operator).await {
        refusal_audited(idp, before, page, operator, target, rule).await;
    } else {
        refusal_only_logged(idp, before, page).await;
    }
}

struct Seeded {
    carol: User,
    staff: String,
}

async fn seed(idp: &Idp) -> Seeded {
    person(idp, "root", Some(Role::Admin)).await;
    person(idp, "hd", Some(Role::Helpdesk)).await;
    person(idp, "aud", Some(Role::Auditor)).await;
    person(idp, "plain", None).await;
    let carol = person(idp, "carol", None).await;
    let staff = idp.store.groups().lookup("staff").await.unwrap();
    Seeded {
        carol,
        staff: staff.id.to_string(),
    }
}

const ROLES: [&str; 4] = ["root", "hd", "aud", "plain"];

/// A form to post: route, fields, and for each of [`ROLES`] whether it is allowed.
type Case = (String, Vec<(&'static str, String)>, [bool; 4]);

#[tokio::test]
async fn each_role_sees_exactly_its_pages() {
    let idp = idp().await;
    let s = seed(&idp).await;
    let carol = format!("/admin/users/{}", s.carol.id);
    let staff = format!("/admin/groups/{}", s.staff);
    // (route, [root, hd, aud, plain]): true = 200, false = 403.
    let table: Vec<(String, [bool; 4])> = vec![
        ("/admin".into(), [true, true, true, false]),
        ("/admin/users".into(), [true, true, true, false]),
        (
            "/admin/users?q=car&page=0".into(),
            [true, true, true, false],
        ),
        ("/admin/users/new".into(), [true, true, false, false]),
        (carol.clone(), [true, true, true, false]),
        ("/admin/groups".into(), [true, true, true, false]),
        (staff.clone(), [true, true, true, false]),
        ("/admin/audit".into(), [true, false, true, false]),
        (
            "/admin/audit/export?format=csv".into(),
            [true, false, true, false],
        ),
        (
            "/admin/audit/export?format=json".into(),
            [true, false, true, false],
        ),
    ];
    for (i, who) in ROLES.iter().enumerate() {
        let mut b = signed_in(&idp, who).await;
        for (route, allowed) in &table {
            let page = b.get(route).await;
            if allowed[i] {
                assert_eq!(
                    page.status,
                    StatusCode::OK,
                    "{who} GET {route}: {}",
                    page.body
                );
            } else {
                assert_eq!(page.status, StatusCode::FORBIDDEN, "{who} GET {route}");
                assert_eq!(page.error_code(), Some("WEB-FORBIDDEN"), "{who} {route}");
                assert!(page.body.contains("Operation ID"), "{who} {route}");
            }
        }
    }
}

/// A signed-in user holding no console role is no operator: every `/admin` page or form
/// they open is refused with its code and operation ID, logged, and writes no audit row, so
/// however often they try, the audit log does not grow. An operator refused a permission
/// (an auditor's form) is still audited, one event a refusal.
#[tokio::test]
async fn a_user_holding_no_console_role_is_refused_without_an_audit_row() {
    let idp = idp().await;
    seed(&idp).await;
    let mut b = signed_in(&idp, "plain").await;
    let token = csrf(&mut b).await;
    let before = written(&idp).await;
    for i in 0..50 {
        let page = b.get(&format!("/admin/users?page={i}")).await;
        refusal_only_logged(&idp, before, &page).await;
        let page = b.get("/admin/audit").await;
        refusal_only_logged(&idp, before, &page).await;
    }
    let page = b
        .post(
            "/admin/users",
            &[
                ("username", "x"),
                ("email", "x@example.org"),
                ("csrf", &token),
            ],
        )
        .await;
    refusal_only_logged(&idp, before, &page).await;

    let mut b = signed_in(&idp, "aud").await;
    let token = csrf(&mut b).await;
    for _ in 0..2 {
        let before = written(&idp).await;
        let page = b
            .post(
                "/admin/users",
                &[
                    ("username", "x"),
                    ("email", "x@example.org"),
                    ("csrf", &token),
                ],
            )
            .await;
        refusal_audited(&idp, before, &page, "aud", "/admin/users", "permission").await;
    }
}

#[tokio::test]
async fn each_role_may_do_exactly_its_part() {
    let idp = idp().await;
    let s = seed(&idp).await;
    let carol = format!("/admin/users/{}", s.carol.id);
    let staff = format!("/admin/groups/{}", s.staff);
    for (i, who) in ROLES.iter().enumerate() {
        let mut b = signed_in(&idp, who).await;
        let token = csrf(&mut b).await;
        // A change of the same value writes nothing, so each role's edit is its own.
        // (route, fields, [root, hd, aud, plain]).
        let table: Vec<Case> = vec![
            (
                format!("{carol}/suspend"),
                vec![],
                [true, true, false, false],
            ),
            (
                format!("{carol}/resume"),
                vec![],
                [true, true, false, false],
            ),
            (
                format!("{carol}/sessions"),
                vec![],
                [true, true, false, false],
            ),
            (
                format!("{carol}/invitation"),
                vec![],
                [true, true, false, false],
            ),
            (
                format!("{carol}/factors/reset"),
                vec![],
                [true, true, false, false],
            ),
            (
                format!("{carol}/password"),
                vec![("password", "a new password 123".into())],
                [true, true, false, false],
            ),
            (
                carol.clone(),
                vec![
                    ("username", "carol".into()),
                    ("email", "carol@example.org".into()),
                    ("display_name", format!("Carol by {who}")),
                ],
                [true, true, false, false],
            ),
            (
                format!("{carol}/groups"),
                vec![("group", "staff".into())],
                [true, true, false, false],
            ),
            (
                format!("{carol}/groups/remove"),
                vec![("group", "staff".into())],
                [true, true, false, false],
            ),
            (
                format!("{staff}/members"),
                vec![("user", "carol".into())],
                [true, true, false, false],
            ),
            (
                format!("{staff}/members/remove"),
                vec![("user", "carol".into())],
                [true, true, false, false],
            ),
        ];
        for (route, fields, allowed) in &table {
            let before = written(&idp).await;
            let mut form: Vec<(&str, &str)> =
                fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            form.push(("csrf", &token));
            let page = b.post(route, &form).await;
            if allowed[i] {
                // Back to the page (303), or a page showing what was made (an invitation).
                assert!(
                    [StatusCode::SEE_OTHER, StatusCode::OK].contains(&page.status),
                    "{who} POST {route}: {} {}",
                    page.status,
                    page.body
                );
                assert!(
                    written(&idp).await.1 > before.1,
                    "{who} POST {route} wrote no audit line"
                );
            } else {
                // The refusal's audit event, about the page it was for, and nothing else.
                refused(&idp, before, &page, who, route, "permission").await;
            }
        }
        // Creating a user.
        let before = written(&idp).await;
        let name = format!("new-{who}");
        let email = format!("{name}@example.org");
        let page = b
            .post(
                "/admin/users",
                &[
                    ("username", name.as_str()),
                    ("email", email.as_str()),
                    ("csrf", &token),
                ],
            )
            .await;
        if i < 2 {
            assert_eq!(page.status, StatusCode::SEE_OTHER, "{who}: {}", page.body);
            assert_eq!(written(&idp).await.0, before.0 + 1);
        } else {
            refused(&idp, before, &page, who, "/admin/users", "permission").await;
        }
    }
}

#[tokio::test]
async fn signed_out_goes_to_sign_in_and_back() {
    let idp = idp().await;
    seed(&idp).await;
    let mut b = Browser::new(&idp);
    let page = b.get("/admin/users").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), "/login?to=/admin/users");
    let form = b.get(page.location()).await;
    assert_eq!(form.field("to").as_deref(), Some("/admin/users"));
    let token = form.field("csrf").unwrap();
    let done = b
        .post(
            "/login",
            &[
                ("username", "root"),
                ("password", PASSWORD),
                ("csrf", &token),
                ("to", "/admin/users"),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(done.location(), "/admin/users");
    // `to` never leaves the console: anything else goes to the portal.
    for evil in [
        "https://evil.example/admin",
        "//evil.example",
        "/admin/../portal",
        "/admin?x=1",
    ] {
        let mut b = Browser::new(&idp);
        let token2 = b.get("/login").await.field("csrf").unwrap();
        let done = b
            .post(
                "/login",
                &[
                    ("username", "root"),
                    ("password", PASSWORD),
                    ("csrf", &token2),
                    ("to", evil),
                ],
            )
            .await;
        assert_eq!(done.location(), "/portal", "{evil}");
    }
}

#[tokio::test]
async fn missing_or_foreign_anti_forgery_token_is_refused() {
    let idp = idp().await;
    let s = seed(&idp).await;
    let mut b = signed_in(&idp, "root").await;
    let mut other = signed_in(&idp, "hd").await;
    let foreign = csrf(&mut other).await;
    let before = written(&idp).await;
    let suspend = format!("/admin/users/{}/suspend", s.carol.id);
    for fields in [vec![], vec![("csrf", foreign.as_str())], vec![("csrf", "")]] {
        let page = b.post(&suspend, &fields).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
        assert_eq!(page.error_code(), Some("WEB-CSRF"));
        let mut create = fields.clone();
        create.extend([("username", "x"), ("email", "x@example.org")]);
        let page = b.post("/admin/users", &create).await;
        assert_eq!(page.error_code(), Some("WEB-CSRF"));
    }
    assert_eq!(written(&idp).await, before);
    let carol = idp.store.users().get(s.carol.id).await.unwrap();
    assert_eq!(carol.status.as_str(), "active");
}

#[tokio::test]
async fn bad_input_gives_the_form_back_naming_the_field() {
    let idp = idp().await;
    let s = seed(&idp).await;
    let mut b = signed_in(&idp, "root").await;
    let token = csrf(&mut b).await;
    let before = written(&idp).await;
    for (fields, field) in [
        (
            vec![("username", "ok-name"), ("email", "not an address")],
            "email",
        ),
        (
            vec![("username", "bad name!"), ("email", "bn@example.org")],
            "username",
        ),
        (
            vec![("username", "carol"), ("email", "c2@example.org")],
            "username",
        ),
        (
            vec![("username", ""), ("email", "e@example.org")],
            "username",
        ),
    ] {
        let mut form = fields.clone();
        form.push(("csrf", &token));
        let page = b.post("/admin/users", &form).await;
        assert_eq!(
            page.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{fields:?}: {}",
            page.body
        );
        assert!(
            page.body.contains(&format!("data-field=\"{field}\"")),
            "{fields:?}: {}",
            page.body
        );
        // The form comes back filled in.
        assert!(
            page.body.contains(&format!("value=\"{}\"", fields[1].1)),
            "{}",
            page.body
        );
    }
    let carol = format!("/admin/users/{}", s.carol.id);
    for (route, fields, field) in [
        (
            format!("{carol}/groups"),
            vec![("group", "no-such-group")],
            "group",
        ),
        (
            format!("{carol}/password"),
            vec![("password", "")],
            "password",
        ),
        (
            carol.clone(),
            vec![("username", "carol"), ("email", "alice@example.org")],
            "email",
        ),
    ] {
        let mut form = fields.clone();
        form.push(("csrf", &token));
        let page = b.post(&route, &form).await;
        assert_eq!(
            page.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{route}: {}",
            page.body
        );
        assert!(
            page.body.contains(&format!("data-field=\"{field}\"")),
            "{route}: {}",
            page.body
        );
    }
    let page = b.get("/admin/audit?since=yesterday").await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("data-field=\"since\""));
    assert_eq!(written(&idp).await, before);
}

#[tokio::test]
async fn helpdesk_cannot_reach_console_users_or_role_groups() {
    let idp = idp().await;
    seed(&idp).await;
    let root = idp.store.users().lookup("root").await.unwrap();
    let admins = idp
        .store
        .groups()
        .create(&Actor::system(), NewGroup::new("console-admins"))
        .await
        .unwrap();
    idp.store
        .roles()
        .grant(&Actor::system(), Role::Admin, Holder::Group(admins.id))
        .await
        .unwrap();
    let hd = idp.store.users().lookup("hd").await.unwrap();
    let mut b = signed_in(&idp, "hd").await;
    let token = csrf(&mut b).await;
    // Each refusal (from the user's page and the group's) is one audit event: who, about
    // whom, which rule, under the operation ID the page shows; nothing else is written.
    for (route, fields, target, rule) in [
        (
            format!("/admin/users/{}/suspend", root.id),
            vec![],
            "root",
            "role_holder",
        ),
        (
            format!("/admin/users/{}/password", root.id),
            vec![("password", "taken over 123")],
            "root",
            "role_holder",
        ),
        (
            format!("/admin/groups/{}/members", admins.id),
            vec![("user", "hd")],
            "console-admins",
            "role_carrying_group",
        ),
        (
            format!("/admin/users/{}/groups", hd.id),
            vec![("group", "console-admins")],
            "hd",
            "role_holder",
        ),
    ] {
        let before = written(&idp).await;
        let mut form = fields.clone();
        form.push(("csrf", &token));
        let page = b.post(&route, &form).await;
        let event = refusal_audited(&idp, before, &page, "hd", target, rule).await;
        assert_eq!(event.after.unwrap()["path"], route.as_str());
    }
    // The admin's page shows no change forms to helpdesk.
    let page = b.get(&format!("/admin/users/{}", root.id)).await;
    assert!(!page.body.contains("/suspend"), "{}", page.body);
}

/// A suspended admin holds no role while suspended, but is still an admin to guard: helpdesk
/// resetting their password and resuming them would be helpdesk becoming admin.
#[tokio::test]
async fn helpdesk_cannot_take_over_a_suspended_admin() {
    let idp = idp().await;
    seed(&idp).await;
    let former = person(&idp, "former-admin", Some(Role::Admin)).await;
    idp.store
        .users()
        .suspend(&Actor::system(), former.id)
        .await
        .unwrap();
    let mut b = signed_in(&idp, "hd").await;
    let token = csrf(&mut b).await;
    for (route, fields) in [
        (format!("/admin/users/{}/resume", former.id), vec![]),
        (
            format!("/admin/users/{}/password", former.id),
            vec![("password", "taken over 123")],
        ),
        (format!("/admin/users/{}/invitation", former.id), vec![]),
        (format!("/admin/users/{}/factors/reset", former.id), vec![]),
    ] {
        let before = written(&idp).await;
        let mut form = fields.clone();
        form.push(("csrf", &token));
        let page = b.post(&route, &form).await;
        refusal_audited(&idp, before, &page, "hd", "former-admin", "role_holder").await;
    }
    let page = b.get(&format!("/admin/users/{}", former.id)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("/resume"), "{}", page.body);
    // An admin still may.
    let mut root = signed_in(&idp, "root").await;
    let token = csrf(&mut root).await;
    let page = root
        .post(
            &format!("/admin/users/{}/resume", former.id),
            &[("csrf", &token)],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
}

/// The group's page changes a member's groups as much as the member's own page does: helpdesk
/// may not take an admin out of a group (the applications it opens, the groups an SP reads),
/// nor put one (or themselves, a console user) in, from either page.
#[tokio::test]
async fn helpdesk_cannot_change_a_console_users_groups_from_the_groups_page() {
    let idp = idp().await;
    let s = seed(&idp).await;
    let root = idp.store.users().lookup("root").await.unwrap();
    let staff = idp.store.groups().lookup("staff").await.unwrap();
    idp.store
        .groups()
        .add_member(&Actor::system(), staff.id, root.id)
        .await
        .unwrap();
    let former = person(&idp, "former-admin", Some(Role::Admin)).await;
    idp.store
        .users()
        .suspend(&Actor::system(), former.id)
        .await
        .unwrap();
    let mut b = signed_in(&idp, "hd").await;
    let token = csrf(&mut b).await;
    let route = format!("/admin/groups/{}/members", s.staff);
    for (route, user) in [
        (format!("{route}/remove"), "root"),
        (route.clone(), "hd"),
        (route.clone(), "aud"),
        (route.clone(), "former-admin"),
    ] {
        let before = written(&idp).await;
        let page = b.post(&route, &[("user", user), ("csrf", &token)]).await;
        let event = refusal_audited(&idp, before, &page, "hd", user, "role_holder").await;
        let after = event.after.unwrap();
        assert_eq!(after["permission"], "write_group_members");
        assert_eq!(after["path"], route.as_str());
    }
    let members = idp.store.groups().of_user(root.id).await.unwrap();
    assert!(members.iter().any(|g| g.id == staff.id));
    // Helpdesk still changes a user who holds no role there.
    let page = b.post(&route, &[("user", "carol"), ("csrf", &token)]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    // An admin may.
    let mut a = signed_in(&idp, "root").await;
    let token = csrf(&mut a).await;
    let page = a.post(&route, &[("user", "hd"), ("csrf", &token)]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
}

#[tokio::test]
async fn console_changes_are_audited_with_the_persons_name() {
    let idp = idp().await;
    let s = seed(&idp).await;
    let mut b = signed_in(&idp, "root").await;
    let token = csrf(&mut b).await;
    let page = b
        .post(
            &format!("/admin/users/{}/suspend", s.carol.id),
            &[("csrf", &token)],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let events = idp
        .store
        .audit()
        .list(&AuditFilter {
            target_id: Some(s.carol.id.to_string()),
            limit: Some(3),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    let by: Vec<(&str, Option<&str>)> = events
        .iter()
        .map(|e| (e.action.as_str(), e.actor_name.as_deref()))
        .take(2)
        .collect();
    assert_eq!(
        by,
        [
            ("user.sessions_end", Some("root")),
            ("user.suspend", Some("root"))
        ]
    );
    // The audit view shows the name, not the UUID label.
    let page = b.get("/admin/audit?event=user.suspend").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("<td>root</td>"), "{}", page.body);
    let root = idp.store.users().lookup("root").await.unwrap();
    assert!(!page.body.contains(&root.id.to_string()), "{}", page.body);
    // One event opens; the export carries the name too.
    let seq = events[1].seq;
    let one = b.get(&format!("/admin/audit/{seq}")).await;
    assert_eq!(one.status, StatusCode::OK);
    assert!(one.body.contains("user.suspend"));
    let csv = b
        .get("/admin/audit/export?format=csv&event=user.suspend")
        .await;
    assert_eq!(csv.headers["content-type"], "text/csv; charset=utf-8");
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(lines.len(), 2, "{}", csv.body);
    assert!(lines[1].contains(",root,"), "{}", csv.body);
}

#[tokio::test]
async fn what_a_user_can_use_names_the_granting_group() {
    let idp = idp().await;
    seed(&idp).await;
    let mut b = signed_in(&idp, "aud").await;
    let page = b.get(&format!("/admin/users/{}", idp.alice.id)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains(&format!(
            "<strong>{}</strong>: through staff",
            idp.app.settings.name
        )),
        "{}",
        page.body
    );
    // Auditors read; they get no change forms.
    assert!(!page.body.contains("name=\"csrf\""), "{}", page.body);
    let page = b.get(&format!("/admin/users/{}", idp.bob.id)).await;
    assert!(page.body.contains("No application."));
}

#[tokio::test]
async fn dashboard_counts_and_warns() {
    use latchkey_idp::Clock as _;
    use latchkey_idp::keys::{KeyAlgorithm, KeyStore};
    let idp = idp().await;
    seed(&idp).await;
    // alice signs in once, someone fails once.
    let mut alice = Browser::new(&idp);
    alice.login("alice", PASSWORD, None).await;
    let mut wrong = Browser::new(&idp);
    wrong.login("alice", "wrong", None).await;
    let mut b = signed_in(&idp, "aud").await;
    let page = b.get("/admin").await;
    assert_eq!(page.status, StatusCode::OK);
    let users = idp.store.users().list().await.unwrap().len();
    assert!(
        page.body
            .contains(&format!("<strong>{users}</strong> users")),
        "{}",
        page.body
    );
    // alice, aud: two successes; one failure.
    assert!(
        page.body.contains("<strong>2</strong> sign-ins in 24 h"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("<strong>1</strong> failed sign-ins in 24 h"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("next signing key"), "{}", page.body);
    // An app nobody is assigned to, and a next key not yet active, are flagged.
    let lonely = latchkey_idp::apps::NewApplication::new(
        "https://lonely.example.org",
        "Lonely",
        "https://lonely.example.org/acs",
    );
    idp.store
        .apps()
        .create(&Actor::system(), lonely)
        .await
        .unwrap();
    KeyStore::open(&idp.key_dir)
        .unwrap()
        .rotate(KeyAlgorithm::EcdsaP256, idp.clock.now())
        .unwrap();
    let page = b.get("/admin").await;
    assert!(page.body.contains("Nobody can use Lonely"), "{}", page.body);
    let keys = b.get("/admin/keys").await;
    assert_eq!(
        keys.body.matches("<tr><td>active</td>").count(),
        1,
        "{}",
        keys.body
    );
    assert_eq!(
        keys.body.matches("<tr><td>next (published").count(),
        1,
        "{}",
        keys.body
    );
    assert!(
        page.body
            .contains("next signing key is published but not active"),
        "{}",
        page.body
    );
    assert!(
        !page
            .body
            .contains(&format!("Nobody can use {}", idp.app.settings.name))
    );
}

#[tokio::test]
async fn api_tokens_are_created_shown_once_and_revoked_by_admins_only() {
    let idp = idp().await;
    seed(&idp).await;
    for who in ["hd", "aud", "plain"] {
        let mut b = signed_in(&idp, who).await;
        let token = csrf(&mut b).await;
        let before = written(&idp).await;
        let page = b
            .post("/admin/tokens", &[("name", "ci"), ("csrf", &token)])
            .await;
        refused(&idp, before, &page, who, "/admin/tokens", "permission").await;
    }
    let mut b = signed_in(&idp, "root").await;
    let token = csrf(&mut b).await;
    let before = written(&idp).await;
    let page = b
        .post("/admin/tokens", &[("name", ""), ("csrf", &token)])
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("data-field=\"name\""), "{}", page.body);
    assert_eq!(written(&idp).await, before);
    let page = b
        .post("/admin/tokens", &[("name", "terraform"), ("csrf", &token)])
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let marker = "<code class=\"secret\">";
    let start = page.body.find(marker).unwrap() + marker.len();
    let end = page.body[start..].find('<').unwrap() + start;
    let secret = &page.body[start..end];
    assert!(secret.starts_with("lk_"), "{secret}");
    let tokens = latchkey_idp::tokens::ApiTokens::new(&idp.store);
    let info = tokens.verify(secret).await.unwrap().unwrap();
    assert_eq!(info.name, "terraform");
    // The list shows it without the secret.
    let listed = b.get("/admin/tokens").await;
    assert!(listed.body.contains("terraform") && !listed.body.contains(secret));
    let page = b
        .post(
            "/admin/tokens/revoke",
            &[("token", info.id.as_str()), ("csrf", &token)],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(tokens.verify(secret).await.unwrap().is_none());
    let events = idp
        .store
        .audit()
        .list(&AuditFilter {
            target_id: Some(info.id.clone()),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert!(events.len() >= 2, "{events:?}");
    assert!(
        events
            .iter()
            .all(|e| e.actor_name.as_deref() == Some("root")),
        "{events:?}"
    );
}

/// A demoted admin's open tab: the console reads the roles on every request, so the page
/// and the form the tab still shows are refused from the moment the role is revoked.
#[tokio::test]
async fn a_demoted_admins_open_tab_is_refused_at_once() {
    let idp = idp().await;
    let s = seed(&idp).await;
    let mut b = signed_in(&idp, "root").await;
    let token = csrf(&mut b).await;
    let root = idp.store.users().lookup("root").await.unwrap();
    assert_eq!(b.get("/admin/users").await.status, StatusCode::OK);
    // Someone else stays admin: the console is never left without one.
    person(&idp, "root2", Some(Role::Admin)).await;
    idp.store
        .roles()
        .revoke(&Actor::system(), Role::Admin, Holder::User(root.id))
        .await
        .unwrap();
    let page = b.get("/admin/users").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(page.error_code(), Some("WEB-FORBIDDEN"));
    let before = written(&idp).await;
    let route = format!("/admin/users/{}/suspend", s.carol.id);
    let page = b.post(&route, &[("csrf", &token)]).await;
    // Holding no console role now, root is no operator: the refusal is logged under the
    // page's operation ID, not audited (the demotion itself is, as `role.revoked`).
    refusal_only_logged(&idp, before, &page).await;
}

#[tokio::test]
async fn only_admins_grant_and_revoke_roles_in_the_console() {
    let idp = idp().await;
    seed(&idp).await;
    for who in ["hd", "aud"] {
        let mut b = signed_in(&idp, who).await;
        let token = csrf(&mut b).await;
        let before = written(&idp).await;
        let page = b
            .post(
                "/admin/roles",
                &[
                    ("role", "admin"),
                    ("kind", "user"),
                    ("holder", who),
                    ("csrf", &token),
                ],
            )
            .await;
        refusal_audited(&idp, before, &page, who, "/admin/roles", "permission").await;
    }
    let mut b = signed_in(&idp, "root").await;
    let token = csrf(&mut b).await;
    let before = written(&idp).await;
    for (fields, field) in [
        (
            [("role", "root"), ("kind", "user"), ("holder", "carol")],
            "role",
        ),
        (
            [("role", "admin"), ("kind", "user"), ("holder", "nobody")],
            "holder",
        ),
        (
            [("role", "auditor"), ("kind", "user"), ("holder", "aud")],
            "role",
        ),
    ] {
        let mut form = fields.to_vec();
        form.push(("csrf", &token));
        let page = b.post("/admin/roles", &form).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{fields:?}");
        assert!(
            page.body.contains(&format!("data-field=\"{field}\"")),
            "{}",
            page.body
        );
    }
    assert_eq!(written(&idp).await, before);
    let page = b
        .post(
            "/admin/roles",
            &[
                ("role", "helpdesk"),
                ("kind", "group"),
                ("holder", "staff"),
                ("csrf", &token),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let alice = idp.store.users().get(idp.alice.id).await.unwrap();
    assert!(
        idp.store
            .roles()
            .of_user(&alice)
            .await
            .unwrap()
            .has(Role::Helpdesk)
    );
    let staff = idp.store.groups().lookup("staff").await.unwrap();
    let page = b
        .post(
            "/admin/roles/revoke",
            &[
                ("role", "helpdesk"),
                ("kind", "group"),
                ("holder", staff.id.to_string().as_str()),
                ("csrf", &token),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert!(idp.store.roles().of_user(&alice).await.unwrap().is_empty());
    let events = idp
        .store
        .audit()
        .list(&AuditFilter {
            target_id: Some(staff.id.to_string()),
            limit: Some(2),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    let by: Vec<(&str, Option<&str>)> = events
        .iter()
        .map(|e| (e.action.as_str(), e.actor_name.as_deref()))
        .collect();
    assert_eq!(
        by,
        [("role.revoke", Some("root")), ("role.grant", Some("root"))]
    );
}

/// The read-only application page says which NameID formats a request may ask for: any
/// until the admin sets a list, then the list.
#[tokio::test]
async fn the_app_page_shows_the_allowed_name_id_formats() {
    let idp = idp().await;
    person(&idp, "root", Some(Role::Admin)).await;
    let mut b = signed_in(&idp, "root").await;
    let route = format!("/admin/apps/{}", idp.app.id);
    let row = |body: &str| {
        let from = body
            .find("<dt>NameID formats a request may ask for</dt><dd>")
            .unwrap_or_else(|| panic!("no formats row: {body}"));
        let rest = &body[from..];
        rest[..rest.find("</dd>").unwrap()]
            .rsplit("<dd>")
            .next()
            .unwrap()
            .to_owned()
    };
    let page = b.get(&route).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(row(&page.body), "any");
    idp.store
        .apps()
        .update(&Actor::system(), idp.app.id, |a| {
            a.name_id_formats = vec![
                latchkey_idp::apps::NameIdFormat::Persistent,
                latchkey_idp::apps::NameIdFormat::Transient,
            ];
        })
        .await
        .unwrap();
    assert_eq!(row(&b.get(&route).await.body), "persistent, transient");
}

/// The console refuses to leave itself without an admin: the only admin revoking their own
/// role, suspending themself or leaving the group that carries it gets the form back with
/// `last_admin` on the role, 409, and nothing written. (Deleting a group that carries a role
/// is refused in the console before that; the store's tests hold the deletion.)
#[tokio::test]
async fn the_last_admin_cannot_be_taken_away_in_the_console() {
    let idp = idp().await;
    let root = person(&idp, "root", None).await;
    let admins = idp
        .store
        .groups()
        .create(&Actor::system(), NewGroup::new("admins"))
        .await
        .unwrap();
    idp.store
        .groups()
        .add_member(&Actor::system(), admins.id, root.id)
        .await
        .unwrap();
    idp.store
        .roles()
        .grant(&Actor::system(), Role::Admin, Holder::Group(admins.id))
        .await
        .unwrap();
    let mut b = signed_in(&idp, "root").await;
    let token = csrf(&mut b).await;
    let before = written(&idp).await;
    let group = admins.id.to_string();
    let cases: [(String, Vec<(&str, &str)>); 3] = [
        (
            "/admin/roles/revoke".into(),
            vec![("role", "admin"), ("kind", "group"), ("holder", &group)],
        ),
        (format!("/admin/users/{}/suspend", root.id), vec![]),
        (
            format!("/admin/groups/{}/members/remove", admins.id),
            vec![("user", "root")],
        ),
    ];
    for (route, fields) in cases {
        let mut form = fields;
        form.push(("csrf", &token));
        let page = b.post(&route, &form).await;
        assert_eq!(page.status, StatusCode::CONFLICT, "{route}: {}", page.body);
        assert!(
            page.body.contains("data-field=\"role\"") && page.body.contains("(last_admin)"),
            "{route}: {}",
            page.body
        );
        assert_eq!(written(&idp).await, before, "{route}");
    }
    let root = idp.store.users().get(root.id).await.unwrap();
    assert!(
        idp.store
            .roles()
            .of_user(&root)
            .await
            .unwrap()
            .has(Role::Admin)
    );
}

/// A password helpdesk sets in the console is one helpdesk knows: if the user later gains a
/// console role, it stops working (`user.password_voided`). One an admin sets stays.
#[tokio::test]
async fn a_password_helpdesk_set_in_the_console_is_voided_by_a_role() {
    let idp = idp().await;
    let s = seed(&idp).await;
    let dave = person(&idp, "dave", None).await;
    for (operator, target) in [("hd", &s.carol), ("root", &dave)] {
        let mut b = signed_in(&idp, operator).await;
        let token = csrf(&mut b).await;
        let page = b
            .post(
                &format!("/admin/users/{}/password", target.id),
                &[("password", "known to the operator"), ("csrf", &token)],
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    }
    for user in [&s.carol, &dave] {
        idp.store
            .roles()
            .grant(&Actor::system(), Role::Auditor, Holder::User(user.id))
            .await
            .unwrap();
    }
    let works = |id| {
        let users = idp.store.users();
        async move {
            users
                .verify_password(id, Password::new("known to the operator"))
                .await
                .unwrap()
        }
    };
    assert!(!works(s.carol.id).await, "set by helpdesk");
    assert!(works(dave.id).await, "set by an admin");
}
