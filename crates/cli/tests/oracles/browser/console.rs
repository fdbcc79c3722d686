//! The admin console in a real browser, the walk of issue #12: an admin signs in to
//! `/admin` (setting up an authenticator app on the way, as the console asks), adds the demo
//! wiki (from its live metadata, with the catalogue's wiki template for attribute release)
//! and assigns a group; a helpdesk user makes a new person, erin, puts her in that group and
//! sends her an invitation (no SMTP here, so the link is shown once); the admin previews what
//! the wiki will receive; erin follows the link, sets her password and signs in to the wiki,
//! which makes her account (JIT); the admin suspends her and she can no longer sign in.
//! axe-core (installed by `scripts/test` under `target/axe`, injected through WebDriver)
//! checks every console page on the way, and the invitation page: no serious or critical
//! violation. Screenshots in `target/test-artifacts/console/`.

use std::path::Path;

use serde_json::{Value, json};

use super::stack::{Stack, free_port};
use super::webdriver::{Browser, Driver};
use super::{Shots, artefact_dir_named, sign_in_at_idp};

/// The password erin chooses when she follows her invitation.
const ERIN_PASSWORD: &str = "erin-chose-this-passphrase";

/// axe-core's script, as `scripts/test` installs it.
fn axe_source() -> String {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap();
    let path = target.join("axe/node_modules/axe-core/axe.min.js");
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; scripts/test installs axe-core (npm install --prefix target/axe axe-core)",
            path.display()
        )
    })
}

/// Runs axe-core on the page the browser shows; any serious or critical violation fails
/// the test, naming the rule and the elements.
async fn accessible(b: &Browser, axe: &str, what: &str) {
    b.script(&format!("{axe}\nreturn true;"), json!([])).await;
    let found = b
        .command(
            "POST",
            "/execute/async",
            json!({
                "script": "const done = arguments[arguments.length - 1];\
                    axe.run(document).then(r => done(r.violations\
                      .filter(v => v.impact === 'serious' || v.impact === 'critical')\
                      .map(v => v.id + ' (' + v.impact + '): ' + v.help + ' at '\
                        + v.nodes.map(n => n.target.join(' ')).join(', '))))\
                    .catch(e => done(['axe failed: ' + e]));",
                "args": [],
            }),
        )
        .await;
    let violations: Vec<&str> = found
        .as_array()
        .unwrap_or_else(|| panic!("{what}: axe answered {found}"))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(violations.is_empty(), "{what}: {violations:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_adds_the_wiki_in_the_console_and_every_page_passes_axe() {
    let axe = axe_source();
    let dir = artefact_dir_named("console");
    let logs = dir.join("logs");
    let mut shots = Shots {
        dir: dir.clone(),
        next: 0,
    };
    let profiles = tempfile::tempdir().unwrap();
    let driver = Driver::start(free_port(), &logs.join("chromedriver.log")).await;
    let stack = Stack::start(&logs);
    let wiki_entity = format!("{}/saml/metadata", stack.wiki);
    // The admin adds the wiki herself; carol (in no group) gets into it through the group
    // the admin assigns and the helpdesk puts her in.
    stack.cli(&["app", "remove", &wiki_entity]);
    stack.cli(&["role", "grant", "admin", "--user", "alice"]);
    stack.cli(&["role", "grant", "helpdesk", "--user", "bob"]);
    stack.cli(&["group", "add", "wiki-readers"]);

    // 1. The admin signs in: the console sends her to the IdP's sign-in and back.
    let admin = driver.browser(&profiles.path().join("alice")).await;
    admin.goto(&format!("{}/admin", stack.idp)).await;
    sign_in_at_idp(&admin, &stack, "alice").await;
    // The console asks for a second factor by default; she has none, so she sets one up.
    super::mfa::enrol_totp_on_the_way(&admin, &stack.idp).await;
    admin
        .wait_for(&format!("{}/admin", stack.idp), "Needs attention")
        .await;
    shots.take(&admin, "dashboard").await;
    accessible(&admin, &axe, "dashboard").await;
    admin.goto(&format!("{}/admin/apps", stack.idp)).await;
    admin.wait_for(&stack.idp, "Add an application").await;
    accessible(&admin, &axe, "applications").await;
    admin.click("a[href='/admin/apps/new']").await;
    admin
        .wait_for(&format!("{}/admin/apps/new", stack.idp), "By hand")
        .await;
    shots.take(&admin, "add-an-application").await;
    accessible(&admin, &axe, "add an application").await;
    admin
        .goto(&format!("{}/admin/apps/new/latchkey-wiki", stack.idp))
        .await;
    admin
        .wait_for(&stack.idp, "What the application expects")
        .await;
    shots.take(&admin, "catalogue-wiki-template").await;
    accessible(&admin, &axe, "the wiki template's form").await;

    // 2. The wiki from its live metadata, with the catalogue's wiki template.
    admin.goto(&format!("{}/admin/apps/new", stack.idp)).await;
    admin.type_into("#metadata_url", &wiki_entity).await;
    admin
        .click("#template-url option[value='latchkey-wiki']")
        .await;
    admin
        .click("form[action='/admin/apps/new/metadata'] button")
        .await;
    admin
        .wait_for(&stack.idp, "Added from the SP's metadata")
        .await;
    shots.take(&admin, "wiki-added").await;
    accessible(&admin, &axe, "the application's page").await;

    // 3. A group is assigned on the application's page.
    admin.type_into("#group", "wiki-readers").await;
    admin.click("form[action$='/access'] button").await;
    let text = admin.wait_for(&stack.idp, "members of wiki-readers").await;
    assert!(text.contains("Latchkey demo wiki"), "{text}");
    let app_url = admin.url().await;
    let app_id = app_url
        .rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    shots.take(&admin, "group-assigned").await;

    // 4. The helpdesk adds carol to the group.
    let helpdesk = driver.browser(&profiles.path().join("bob")).await;
    helpdesk.goto(&format!("{}/admin/groups", stack.idp)).await;
    sign_in_at_idp(&helpdesk, &stack, "bob").await;
    super::mfa::enrol_totp_on_the_way(&helpdesk, &stack.idp).await;
    // A new person, erin, made in the console (the second step ends on the dashboard).
    helpdesk
        .goto(&format!("{}/admin/users/new", stack.idp))
        .await;
    helpdesk
        .wait_for(&format!("{}/admin/users/new", stack.idp), "New user")
        .await;
    accessible(&helpdesk, &axe, "the new user form").await;
    helpdesk.type_into("#username", "erin").await;
    helpdesk.type_into("#email", "erin@example.com").await;
    helpdesk.type_into("#given_name", "Erin").await;
    helpdesk.type_into("#family_name", "Evans").await;
    helpdesk.type_into("#display_name", "Erin Evans").await;
    helpdesk.click("form[action='/admin/users'] button").await;
    helpdesk
        .wait_for(&format!("{}/admin/users/", stack.idp), "Send an invitation")
        .await;
    let erin_page = helpdesk.url().await;
    shots.take(&helpdesk, "helpdesk-adds-erin").await;
    helpdesk.goto(&format!("{}/admin/groups", stack.idp)).await;
    helpdesk
        .wait_for(&format!("{}/admin/groups", stack.idp), "wiki-readers")
        .await;
    accessible(&helpdesk, &axe, "groups").await;
    let group = helpdesk
        .script(
            "return [...document.querySelectorAll('a')]\
               .find(a => a.textContent.trim() === 'wiki-readers').href;",
            json!([]),
        )
        .await;
    helpdesk.goto(group.as_str().unwrap()).await;
    helpdesk.wait_for(&stack.idp, "No members").await;
    accessible(&helpdesk, &axe, "the group's page").await;
    helpdesk.type_into("#user", "erin").await;
    helpdesk.click("form[action$='/members'] button").await;
    let text = helpdesk.wait_for(&stack.idp, "erin").await;
    assert!(
        text.contains("Latchkey demo wiki"),
        "the group opens the wiki: {text}"
    );
    shots.take(&helpdesk, "erin-in-the-group").await;
    // ... and sends her an invitation: with no SMTP configured, the link is shown once.
    helpdesk.goto(&erin_page).await;
    helpdesk.wait_for(&erin_page, "Send an invitation").await;
    helpdesk.click("form[action$='/invitation'] button").await;
    helpdesk.wait_for(&stack.idp, "shown this once").await;
    accessible(&helpdesk, &axe, "the invitation shown once").await;
    let link = helpdesk
        .script(
            "return document.getElementById('invitation-link').textContent;",
            json!([]),
        )
        .await;
    let link = link.as_str().unwrap().trim().to_owned();
    assert!(
        link.starts_with(&format!("{}/invite/", stack.idp)),
        "{link}"
    );
    shots.take(&helpdesk, "invitation-sent").await;
    helpdesk.quit().await;

    // 5. What erin's sign-in will carry: her e-mail address as NameID, her groups.
    admin
        .goto(&format!(
            "{}/admin/preview?user=erin&app={app_id}",
            stack.idp
        ))
        .await;
    let text = admin
        .wait_for(&stack.idp, "What the application would receive")
        .await;
    assert!(text.contains("erin@example.com"), "{text}");
    assert!(text.contains("wiki-readers"), "{text}");
    shots.take(&admin, "assertion-preview").await;
    accessible(&admin, &axe, "assertion preview").await;
    admin.goto(&format!("{}/admin/keys", stack.idp)).await;
    admin.wait_for(&stack.idp, "Rotate").await;
    accessible(&admin, &axe, "keys").await;

    // 6. erin follows the invitation, sets her password, and signs in to the wiki, which
    //    makes her account (JIT).
    let erin = driver.browser(&profiles.path().join("erin")).await;
    erin.goto(&link).await;
    erin.wait_for(&link, "erin").await;
    accessible(&erin, &axe, "the invitation page").await;
    erin.type_into("#password", ERIN_PASSWORD).await;
    erin.type_into("#confirm", ERIN_PASSWORD).await;
    erin.click("button[type=submit]").await;
    erin.wait_for(&format!("{}/portal", stack.idp), "erin")
        .await;
    erin.goto(&format!("{}/", stack.wiki)).await;
    erin.click("a[href='/login']").await;
    let text = erin
        .wait_for(&format!("{}/", stack.wiki), "Signed in as Erin Evans")
        .await;
    assert!(text.contains("created just now"), "{text}");
    shots.take(&erin, "erin-in-the-wiki").await;
    erin.quit().await;

    // 7. The admin suspends her.
    admin
        .goto(&format!("{}/admin/users?q=erin", stack.idp))
        .await;
    admin.wait_for(&stack.idp, "erin").await;
    accessible(&admin, &axe, "users").await;
    let user = admin
        .script(
            "return [...document.querySelectorAll('a')]\
               .find(a => a.textContent.trim() === 'erin').href;",
            json!([]),
        )
        .await;
    admin.goto(user.as_str().unwrap()).await;
    admin.wait_for(&stack.idp, "active").await;
    accessible(&admin, &axe, "erin's page").await;
    admin.click("form[action$='/suspend'] button").await;
    admin.wait_for(&stack.idp, "suspended").await;
    shots.take(&admin, "erin-suspended").await;
    admin.quit().await;

    // 8. She can no longer sign in.
    let again = driver.browser(&profiles.path().join("erin-again")).await;
    again.goto(&format!("{}/", stack.wiki)).await;
    again.click("a[href='/login']").await;
    again
        .wait_for(&format!("{}/login", stack.idp), "Password")
        .await;
    again.type_into("#username", "erin").await;
    again.type_into("#password", ERIN_PASSWORD).await;
    again.click("button[type=submit]").await;
    let text = again.wait_for(&stack.idp, "Sign-in failed").await;
    assert!(!text.contains("Signed in as"), "{text}");
    shots.take(&again, "erin-refused").await;
    again.quit().await;
}
