//! The console's people side: invitations and second-factor resets from the user's page
//! (helpdesk and admin, audited with the person's name, refused to the others with only the
//! refusal's audit event written), and the users list paged by keyset cursor.

use axum::http::StatusCode;
use latchkey_idp::Actor;
use latchkey_idp::audit::AuditFilter;
use latchkey_idp::console::{Holder, Role};
use latchkey_idp::directory::NewUser;
use latchkey_idp::mfa::Factors;

use super::console::{csrf, person, refusal_audited, signed_in, written};
use super::support::*;

/// The newest audit line about `target` with this action: its actor's name.
async fn actor_of(idp: &Idp, target: &str, action: &str) -> Option<String> {
    idp.store
        .audit()
        .list(&AuditFilter {
            target_id: Some(target.to_owned()),
            ..AuditFilter::default()
        })
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.action == action)
        .and_then(|e| e.actor_name)
}

#[tokio::test]
async fn helpdesk_invites_and_the_link_is_shown_once_and_works() {
    let idp = idp().await;
    person(&idp, "hd", Some(Role::Helpdesk)).await;
    person(&idp, "aud", Some(Role::Auditor)).await;
    let carol = idp
        .store
        .users()
        .create(&Actor::system(), NewUser::new("carol", "carol@example.org"))
        .await
        .unwrap();
    let route = format!("/admin/users/{}/invitation", carol.id);

    let mut aud = signed_in(&idp, "aud").await;
    let token = csrf(&mut aud).await;
    let before = written(&idp).await;
    let page = aud.post(&route, &[("csrf", &token)]).await;
    refusal_audited(&idp, before, &page, "aud", &route, "permission").await;

    let mut hd = signed_in(&idp, "hd").await;
    let token = csrf(&mut hd).await;
    let page = hd.post(&route, &[("csrf", &token)]).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    // No [smtp]: the link is on the page, to hand over.
    let start = page.body.find("id=\"invitation-link\">").unwrap() + 21;
    let end = page.body[start..].find('<').unwrap() + start;
    let url = &page.body[start..end];
    let path = url.strip_prefix(BASE).unwrap_or_else(|| panic!("{url}"));
    assert!(path.starts_with("/invite/"), "{path}");
    assert_eq!(
        actor_of(&idp, &carol.id.to_string(), "user.invited")
            .await
            .as_deref(),
        Some("hd")
    );
    // The page after it does not show the link again.
    let again = hd.get(&format!("/admin/users/{}", carol.id)).await;
    assert!(!again.body.contains(path), "{}", again.body);
    // carol opens it and gets the set-password form.
    let mut b = Browser::new(&idp);
    let form = b.get(path).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    assert!(form.field("password").is_some() || form.body.contains("name=\"password\""));
}

#[tokio::test]
async fn helpdesk_resets_a_lost_phone_but_not_an_admins() {
    let idp = idp().await;
    person(&idp, "hd", Some(Role::Helpdesk)).await;
    let root = person(&idp, "root", Some(Role::Admin)).await;
    let carol = person(&idp, "carol", None).await;
    // carol and root each have an authenticator app, and a session that used it.
    let mut sessions = Vec::new();
    for user in [&carol, &root] {
        let mut b = Browser::new(&idp);
        b.login(&user.username, PASSWORD, None).await;
        step_up_with_new_totp(&mut b, user).await;
        sessions.push(b);
    }
    let mut carols = sessions.remove(0);
    assert_eq!(carols.get("/portal").await.status, StatusCode::OK);
    let factors = Factors::new(&idp.store);
    assert!(factors.has_factor(&carol).await.unwrap());

    let mut hd = signed_in(&idp, "hd").await;
    let token = csrf(&mut hd).await;
    let page = hd.get(&format!("/admin/users/{}", carol.id)).await;
    assert!(page.body.contains("authenticator app"), "{}", page.body);
    assert!(page.body.contains("/factors/reset"), "{}", page.body);
    let done = hd
        .post(
            &format!("/admin/users/{}/factors/reset", carol.id),
            &[("csrf", &token)],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert!(!factors.has_factor(&carol).await.unwrap());
    assert_eq!(
        actor_of(&idp, &carol.id.to_string(), "mfa.reset")
            .await
            .as_deref(),
        Some("hd")
    );
    // The phone may be in someone else's hands: every session of carol's ends, the
    // one that used it too, in the reset's transaction; helpdesk's goes on.
    let out = carols.get("/portal").await;
    assert_eq!(out.status, StatusCode::SEE_OTHER, "{}", out.body);
    assert_eq!(out.location(), "/login");
    let ended = audit_actions(&idp, "user.sessions_end").await;
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert_eq!(ended[0].actor_name.as_deref(), Some("hd"));
    assert_eq!(ended[0].target_id, Some(carol.id.to_string()));
    let details = ended[0].after.clone().unwrap();
    assert_eq!(details["reason"], "mfa_reset");
    assert_eq!(details["sessions_ended"], 1);
    assert_eq!(hd.get("/admin").await.status, StatusCode::OK);
    // An admin's factors are not helpdesk's to remove.
    let before = written(&idp).await;
    let page = hd
        .post(
            &format!("/admin/users/{}/factors/reset", root.id),
            &[("csrf", &token)],
        )
        .await;
    refusal_audited(&idp, before, &page, "hd", "root", "role_holder").await;
    assert!(factors.has_factor(&root).await.unwrap());
}

/// An admin sets a new password because the old one leaked: whoever signed in with the old
/// one is signed out (every session of the user ends, audited with the password change),
/// and the new password signs in.
#[tokio::test]
async fn a_password_an_admin_sets_ends_the_users_sessions() {
    let idp = idp().await;
    person(&idp, "root", Some(Role::Admin)).await;
    let carol = person(&idp, "carol", None).await;
    let mut thief = Browser::new(&idp);
    let page = thief.login("carol", PASSWORD, None).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(thief.get("/portal").await.status, StatusCode::OK);

    let mut root = signed_in(&idp, "root").await;
    let token = csrf(&mut root).await;
    let done = root
        .post(
            &format!("/admin/users/{}/password", carol.id),
            &[("csrf", &token), ("password", "a new password 123")],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);

    let after = thief.get("/portal").await;
    assert_eq!(after.status, StatusCode::SEE_OTHER, "{}", after.body);
    assert_eq!(after.location(), "/login");
    let ended = idp
        .store
        .audit()
        .list(&AuditFilter {
            action: Some("user.sessions_end".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert_eq!(ended[0].target_id, Some(carol.id.to_string()));
    assert_eq!(ended[0].actor_name.as_deref(), Some("root"));
    // The admin's own session goes on.
    assert_eq!(root.get("/admin").await.status, StatusCode::OK);
    let mut carol_again = Browser::new(&idp);
    let page = carol_again.login("carol", "a new password 123", None).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
}

/// The usernames on a users page, and its "Next" link.
fn rows(page: &Page) -> (Vec<String>, Option<String>) {
    let names = page
        .body
        .split("<td><a href=\"/admin/users/")
        .skip(1)
        .map(|row| {
            let from = row.find("\">").unwrap() + 2;
            let to = row[from..].find('<').unwrap() + from;
            row[from..to].to_owned()
        })
        .collect();
    let next = page.body.find("\">Next</a>").map(|end| {
        let start = page.body[..end].rfind("href=\"").unwrap() + 6;
        page.body[start..end]
            .replace("&#38;", "&")
            .replace("&amp;", "&")
    });
    (names, next)
}

#[tokio::test]
async fn the_users_list_pages_by_cursor_through_everyone_once() {
    let idp = idp().await;
    person(&idp, "aud", Some(Role::Auditor)).await;
    for i in 0..120 {
        let name = format!("u{i:03}");
        idp.store
            .users()
            .create(
                &Actor::system(),
                NewUser::new(&name, format!("{name}@example.org")),
            )
            .await
            .unwrap();
    }
    let mut expected: Vec<String> = idp
        .store
        .users()
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    expected.sort_by_key(|n| n.to_lowercase());
    let mut b = signed_in(&idp, "aud").await;
    let mut seen = Vec::new();
    let mut at = "/admin/users".to_owned();
    let mut pages = 0;
    loop {
        let page = b.get(&at).await;
        assert_eq!(page.status, StatusCode::OK, "{at}: {}", page.body);
        let (names, next) = rows(&page);
        assert!(names.len() <= 50, "{at}");
        if pages > 0 {
            assert!(page.body.contains(">First page</a>"), "{}", page.body);
        }
        seen.extend(names);
        pages += 1;
        match next {
            Some(n) => at = n,
            None => break,
        }
    }
    assert_eq!(seen, expected);
    assert_eq!(pages, expected.len().div_ceil(50));

    // Search is a prefix of the username, and pages too.
    let (names, next) = rows(&b.get("/admin/users?q=U01").await);
    let want: Vec<String> = (10..20).map(|i| format!("u{i:03}")).collect();
    assert_eq!(names, want);
    assert!(next.is_none());
    let (names, _) = rows(&b.get("/admin/users?q=u119%40example.org").await);
    assert_eq!(names, ["u119"]);
    // And a word of a name: the family name finds its user.
    let mut ada = NewUser::new("u042", "u042@example.org");
    ada.family_name = Some("Lovelace".into());
    let u042 = idp.store.users().lookup("u042").await.unwrap();
    idp.store
        .users()
        .delete(&Actor::system(), u042.id)
        .await
        .unwrap();
    idp.store
        .users()
        .create(&Actor::system(), ada)
        .await
        .unwrap();
    let (names, _) = rows(&b.get("/admin/users?q=lovel").await);
    assert_eq!(names, ["u042"]);
    // A cursor this list did not hand out is refused, not guessed at.
    let page = b.get("/admin/users?after=not-a-cursor").await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
}

/// A family name 1,300 people share lists them, by cursor; a search too broad to read by
/// names says so rather than "No user matches".
#[tokio::test]
async fn a_search_by_names_lists_a_common_name_and_says_when_it_is_too_broad() {
    let idp = idp().await;
    person(&idp, "aud", Some(Role::Auditor)).await;
    let seeded = |prefix: &'static str, display: String| -> Vec<NewUser> {
        (0..1_300)
            .map(|i| {
                let name = format!("{prefix}{i:04}");
                let mut u = NewUser::new(&name, format!("{name}@example.org"));
                u.display_name = Some(display.clone());
                u
            })
            .collect()
    };
    let users = idp.store.users();
    users
        .create_many(&Actor::system(), seeded("k", "Barbara Liskov".into()))
        .await
        .unwrap();
    let wordy: Vec<String> = (1..=16).map(|w| format!("Zz{w:02}")).collect();
    users
        .create_many(&Actor::system(), seeded("z", wordy.join(" ")))
        .await
        .unwrap();
    let mut b = signed_in(&idp, "aud").await;

    let page = b.get("/admin/users?q=liskov").await;
    let (names, next) = rows(&page);
    let want: Vec<String> = (0..50).map(|i| format!("k{i:04}")).collect();
    assert_eq!(names, want);
    assert!(!page.body.contains("Too many people"), "{}", page.body);
    let (names, _) = rows(&b.get(&next.unwrap()).await);
    assert_eq!(names.first().map(String::as_str), Some("k0050"));

    let page = b.get("/admin/users?q=zz").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(rows(&page).0.is_empty());
    assert!(
        page.body
            .contains("Too many people have a name beginning with")
            && page.body.contains("No username matches."),
        "{}",
        page.body
    );
    let (names, _) = rows(&b.get("/admin/users?q=zz07").await);
    assert_eq!(names.len(), 50);
}

#[tokio::test]
async fn a_groups_members_page_by_cursor() {
    let idp = idp().await;
    person(&idp, "aud", Some(Role::Auditor)).await;
    let big = idp
        .store
        .groups()
        .create(
            &Actor::system(),
            latchkey_idp::directory::NewGroup::new("big"),
        )
        .await
        .unwrap();
    let mut expected = Vec::new();
    for i in 0..60 {
        let name = format!("m{i:02}");
        let user = idp
            .store
            .users()
            .create(
                &Actor::system(),
                NewUser::new(&name, format!("{name}@example.org")),
            )
            .await
            .unwrap();
        idp.store
            .groups()
            .add_member(&Actor::system(), big.id, user.id)
            .await
            .unwrap();
        expected.push(name);
    }
    let mut b = signed_in(&idp, "aud").await;
    let member_names = |page: &Page| -> Vec<String> {
        page.body
            .split("<li><a href=\"/admin/users/")
            .skip(1)
            .map(|row| {
                let from = row.find("\">").unwrap() + 2;
                let to = row[from..].find('<').unwrap() + from;
                row[from..to].to_owned()
            })
            .collect()
    };
    let first = b.get(&format!("/admin/groups/{}", big.id)).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let mut seen = member_names(&first);
    assert_eq!(seen.len(), 50);
    let (_, next) = rows(&first);
    let next = next.expect("a next page");
    let second = b.get(&next).await;
    assert!(second.body.contains(">First page</a>"), "{}", second.body);
    seen.extend(member_names(&second));
    assert!(rows(&second).1.is_none());
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn custom_attributes_are_set_and_removed_and_bad_ones_named() {
    use latchkey_idp::directory::AttributeValue;
    let idp = idp().await;
    person(&idp, "hd", Some(Role::Helpdesk)).await;
    let carol = person(&idp, "carol", None).await;
    let mut b = signed_in(&idp, "hd").await;
    let token = csrf(&mut b).await;
    let route = format!("/admin/users/{}/attributes", carol.id);
    let set = |name: &'static str, values: &'static str| {
        [
            ("csrf", token.clone()),
            ("name", name.into()),
            ("values", values.into()),
        ]
    };
    let form = set("roles", "sales\n support \n\n");
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(b.post(&route, &form).await.status, StatusCode::SEE_OTHER);
    let form = set("cost_center", "4711");
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(b.post(&route, &form).await.status, StatusCode::SEE_OTHER);
    let stored = idp.store.users().get(carol.id).await.unwrap().attributes;
    assert_eq!(
        stored.get("roles"),
        Some(&AttributeValue::Many(vec![
            "sales".into(),
            "support".into()
        ]))
    );
    assert_eq!(
        stored.get("cost_center"),
        Some(&AttributeValue::One("4711".into()))
    );
    let page = b.get(&format!("/admin/users/{}", carol.id)).await;
    assert!(
        page.body.contains("<code>roles</code>: sales, support"),
        "{}",
        page.body
    );
    assert_eq!(
        actor_of(&idp, &carol.id.to_string(), "user.update")
            .await
            .as_deref(),
        Some("hd")
    );

    // Refused: the form back naming its field, nothing written.
    let before = written(&idp).await;
    for (name, values, field) in [("bad name!", "x", "name"), ("ok", "  \n ", "values")] {
        let form = [("csrf", token.as_str()), ("name", name), ("values", values)];
        let page = b.post(&route, &form).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{name}");
        assert!(
            page.body.contains(&format!("data-field=\"{field}\"")),
            "{name}: {}",
            page.body
        );
    }
    assert_eq!(written(&idp).await, before);

    let remove = [("csrf", token.as_str()), ("name", "roles")];
    let page = b.post(&format!("{route}/remove"), &remove).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let stored = idp.store.users().get(carol.id).await.unwrap().attributes;
    assert!(!stored.contains_key("roles") && stored.contains_key("cost_center"));
}

/// An admin creates and renames groups from the console; a taken name is named on the form
/// and changes nothing; helpdesk (members only) sees neither form.
#[tokio::test]
async fn admins_create_and_rename_groups() {
    let idp = idp().await;
    person(&idp, "root", Some(Role::Admin)).await;
    person(&idp, "desk", Some(Role::Helpdesk)).await;
    let mut b = signed_in(&idp, "root").await;
    let groups = idp.store.groups().list().await.unwrap().len();
    let list = b.get("/admin/groups").await;
    assert!(
        list.body.contains("action=\"/admin/groups\""),
        "{}",
        list.body
    );
    let token = csrf(&mut b).await;
    let made = b
        .post(
            "/admin/groups",
            &[
                ("csrf", &token),
                ("name", "Payroll"),
                ("description", "Pays people"),
            ],
        )
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.body);
    let payroll = idp.store.groups().lookup("payroll").await.unwrap();
    assert_eq!(payroll.description.as_deref(), Some("Pays people"));
    let again = b
        .post("/admin/groups", &[("csrf", &token), ("name", "PAYROLL")])
        .await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(again.body.contains("data-field=\"name\""), "{}", again.body);
    assert_eq!(idp.store.groups().list().await.unwrap().len(), groups + 1);

    let page = b.get(&format!("/admin/groups/{}", payroll.id)).await;
    assert!(page.body.contains("/name\""), "{}", page.body);
    let renamed = b
        .post(
            &format!("/admin/groups/{}/name", payroll.id),
            &[("csrf", &token), ("name", "Finance")],
        )
        .await;
    assert_eq!(renamed.status, StatusCode::SEE_OTHER, "{}", renamed.body);
    assert_eq!(
        idp.store.groups().get(payroll.id).await.unwrap().name,
        "Finance"
    );
    assert_eq!(
        actor_of(&idp, &payroll.id.to_string(), "group.update")
            .await
            .as_deref(),
        Some("root")
    );
    let bad = b
        .post(
            &format!("/admin/groups/{}/name", payroll.id),
            &[("csrf", &token), ("name", "  ")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert_eq!(
        idp.store.groups().get(payroll.id).await.unwrap().name,
        "Finance"
    );

    let mut h = signed_in(&idp, "desk").await;
    let list = h.get("/admin/groups").await;
    assert!(
        !list.body.contains("action=\"/admin/groups\""),
        "{}",
        list.body
    );
    let page = h.get(&format!("/admin/groups/{}", payroll.id)).await;
    assert!(!page.body.contains("/name\""), "{}", page.body);
    assert!(!page.body.contains("/delete\""), "{}", page.body);
}

/// Admins delete a group once they tick the box, and never one that carries console roles
/// (its members, perhaps every admin, would lose them at once).
#[tokio::test]
async fn admins_delete_a_group_that_carries_no_role() {
    let idp = idp().await;
    person(&idp, "root", Some(Role::Admin)).await;
    let mut b = signed_in(&idp, "root").await;
    let token = csrf(&mut b).await;
    let staff = idp.store.groups().lookup("staff").await.unwrap();
    let page = b.get(&format!("/admin/groups/{}", staff.id)).await;
    assert!(page.body.contains("/delete\""), "{}", page.body);

    let path = format!("/admin/groups/{}/delete", staff.id);
    let unticked = b.post(&path, &[("csrf", &token)]).await;
    assert_eq!(unticked.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        unticked.body.contains("data-field=\"confirm\""),
        "{}",
        unticked.body
    );
    assert!(idp.store.groups().get(staff.id).await.is_ok());

    idp.store
        .roles()
        .grant(&Actor::system(), Role::Helpdesk, Holder::Group(staff.id))
        .await
        .unwrap();
    let page = b.get(&format!("/admin/groups/{}", staff.id)).await;
    assert!(!page.body.contains("/delete\""), "{}", page.body);
    let carries = b.post(&path, &[("csrf", &token), ("confirm", "yes")]).await;
    assert_eq!(carries.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        carries.body.contains("data-field=\"group\""),
        "{}",
        carries.body
    );
    assert!(idp.store.groups().get(staff.id).await.is_ok());

    idp.store
        .roles()
        .revoke(&Actor::system(), Role::Helpdesk, Holder::Group(staff.id))
        .await
        .unwrap();
    let gone = b.post(&path, &[("csrf", &token), ("confirm", "yes")]).await;
    assert_eq!(gone.status, StatusCode::SEE_OTHER, "{}", gone.body);
    assert!(matches!(
        idp.store.groups().get(staff.id).await,
        Err(latchkey_idp::Error::UnknownGroup { .. })
    ));
    assert_eq!(
        actor_of(&idp, &staff.id.to_string(), "group.delete")
            .await
            .as_deref(),
        Some("root")
    );
    // Its page is gone too.
    let page = b.get(&format!("/admin/groups/{}", staff.id)).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
}

/// An admin's edit of a user's names, saved from a page opened before someone else changed
/// them (another admin, an HR feed over SCIM), is refused (409, the page drawn again with
/// what is there now) instead of putting the old names back; saved again from that page, it
/// goes. A change that is not among the form's names (a suspension) does not stop it.
#[tokio::test]
async fn an_edit_from_a_page_opened_before_another_change_is_refused_not_saved_over_it() {
    use latchkey_idp::directory::UserPatch;
    let idp = idp().await;
    person(&idp, "hd", Some(Role::Helpdesk)).await;
    let carol = person(&idp, "carol", None).await;
    let mut b = signed_in(&idp, "hd").await;
    let token = csrf(&mut b).await;
    let route = format!("/admin/users/{}", carol.id);
    let opened = b.get(&route).await;
    let seen = opened.field("seen").expect("the edit form's names version");

    // Meanwhile the HR feed gives carol a family name.
    let hr = UserPatch {
        family_name: Some(Some("Cole".into())),
        ..UserPatch::default()
    };
    idp.store
        .users()
        .update(&Actor::system(), carol.id, hr)
        .await
        .unwrap();
    let before = written(&idp).await;
    let edit = |seen: &str| {
        vec![
            ("csrf", token.clone()),
            ("seen", seen.to_owned()),
            ("username", "carol".into()),
            ("email", "carol@example.org".into()),
            ("display_name", "Carol C.".into()),
        ]
    };
    let form = edit(&seen);
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let page = b.post(&route, &form).await;
    assert_eq!(page.status, StatusCode::CONFLICT, "{}", page.body);
    assert_eq!(
        page.error_code(),
        None,
        "a form's refusal, not an error page"
    );
    assert!(
        page.body.contains("data-field=\"user\"") && page.body.contains("changed by someone else"),
        "{}",
        page.body
    );
    assert!(page.body.contains("value=\"Cole\""), "{}", page.body);
    assert_eq!(written(&idp).await, before);
    let now = idp.store.users().get(carol.id).await.unwrap();
    assert_eq!(
        (now.family_name.as_deref(), now.display_name.as_deref()),
        (Some("Cole"), None)
    );

    // From the page drawn again (and after a suspension, not one of its names) it saves.
    idp.store
        .users()
        .suspend(&Actor::system(), carol.id)
        .await
        .unwrap();
    let seen = page.field("seen").expect("the edit form drawn again");
    let mut form = edit(&seen);
    form.push(("family_name", "Cole".into()));
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let saved = b.post(&route, &form).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let now = idp.store.users().get(carol.id).await.unwrap();
    assert_eq!(
        (
            now.family_name.as_deref(),
            now.display_name.as_deref(),
            now.status.as_str()
        ),
        (Some("Cole"), Some("Carol C."), "suspended")
    );
}

/// A group's rename saved from a page opened before another admin renamed it is refused
/// (409, the page drawn again with the name there now), not saved over the other rename;
/// from the page drawn again it goes, also after a member came in (not what the form shows).
#[tokio::test]
async fn a_rename_from_a_group_page_opened_before_another_rename_is_refused() {
    let idp = idp().await;
    person(&idp, "root", Some(Role::Admin)).await;
    let carol = person(&idp, "carol", None).await;
    let payroll = idp
        .store
        .groups()
        .create(
            &Actor::system(),
            latchkey_idp::directory::NewGroup::new("Payroll"),
        )
        .await
        .unwrap();
    let mut b = signed_in(&idp, "root").await;
    let token = csrf(&mut b).await;
    let route = format!("/admin/groups/{}", payroll.id);
    let opened = b.get(&route).await;
    let seen = opened.field("seen").expect("the rename form's version");

    // Meanwhile another admin renames it.
    idp.store
        .groups()
        .rename(&Actor::system(), payroll.id, "Finance")
        .await
        .unwrap();
    let before = written(&idp).await;
    let rename = format!("{route}/name");
    let page = b
        .post(
            &rename,
            &[("csrf", &token), ("seen", &seen), ("name", "Pay team")],
        )
        .await;
    assert_eq!(page.status, StatusCode::CONFLICT, "{}", page.body);
    assert_eq!(
        page.error_code(),
        None,
        "a form's refusal, not an error page"
    );
    assert!(
        page.body.contains("data-field=\"group\"") && page.body.contains("changed by someone else"),
        "{}",
        page.body
    );
    assert!(page.body.contains("value=\"Finance\""), "{}", page.body);
    assert_eq!(written(&idp).await, before);
    assert_eq!(
        idp.store.groups().get(payroll.id).await.unwrap().name,
        "Finance"
    );

    // From the page drawn again it goes, a membership added meanwhile notwithstanding.
    idp.store
        .groups()
        .add_member(&Actor::system(), payroll.id, carol.id)
        .await
        .unwrap();
    let seen = page.field("seen").expect("the rename form drawn again");
    let saved = b
        .post(
            &rename,
            &[("csrf", &token), ("seen", &seen), ("name", "Pay team")],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    assert_eq!(
        idp.store.groups().get(payroll.id).await.unwrap().name,
        "Pay team"
    );
}
