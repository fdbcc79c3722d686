//! The admin console in a real browser: an admin signs in to `/admin`, adds the demo wiki
//! (from its live metadata, with the catalogue's wiki template for attribute release) and
//! assigns a group; a helpdesk user adds carol to that group; the admin previews what the
//! wiki will receive; carol signs in to the wiki and gets an account (JIT); the admin
//! suspends her and she can no longer sign in. (The walk has the helpdesk send an
//! invitation; the console's invitation form is the users pages' work, so carol here has
//! her password already.) axe-core (installed by `scripts/test`
//! under `target/axe`, injected through WebDriver) checks every console page on the way:
//! no serious or critical violation. Screenshots in `target/test-artifacts/console/`.

use std::path::Path;

use serde_json::{Value, json};

use super::stack::{Stack, free_port};
use super::webdriver::{Browser, Driver};
use super::{Shots, artefact_dir_named, sign_in_at_idp};

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
    // The second step ends on the dashboard, not the page first asked for.
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
    helpdesk.type_into("#user", "carol").await;
    helpdesk.click("form[action$='/members'] button").await;
    let text = helpdesk.wait_for(&stack.idp, "carol").await;
    assert!(
        text.contains("Latchkey demo wiki"),
        "the group opens the wiki: {text}"
    );
    shots.take(&helpdesk, "helpdesk-adds-carol").await;
    helpdesk.quit().await;

    // 5. What carol's sign-in will carry: her e-mail address as NameID, her groups.
    admin
        .goto(&format!(
            "{}/admin/preview?user=carol&app={app_id}",
            stack.idp
        ))
        .await;
    let text = admin
        .wait_for(&stack.idp, "What the application would receive")
        .await;
    assert!(text.contains("carol@example.com"), "{text}");
    assert!(text.contains("wiki-readers"), "{text}");
    shots.take(&admin, "assertion-preview").await;
    accessible(&admin, &axe, "assertion preview").await;
    admin.goto(&format!("{}/admin/keys", stack.idp)).await;
    admin.wait_for(&stack.idp, "Rotate").await;
    accessible(&admin, &axe, "keys").await;

    // 6. carol signs in to the wiki and gets an account.
    let carol = driver.browser(&profiles.path().join("carol")).await;
    carol.goto(&format!("{}/", stack.wiki)).await;
    carol.click("a[href='/login']").await;
    sign_in_at_idp(&carol, &stack, "carol").await;
    let text = carol
        .wait_for(&format!("{}/", stack.wiki), "Signed in as Carol Chen")
        .await;
    assert!(text.contains("created just now"), "{text}");
    shots.take(&carol, "carol-in-the-wiki").await;
    carol.quit().await;

    // 7. The admin suspends her.
    admin
        .goto(&format!("{}/admin/users?q=carol", stack.idp))
        .await;
    admin.wait_for(&stack.idp, "carol").await;
    accessible(&admin, &axe, "users").await;
    let user = admin
        .script(
            "return [...document.querySelectorAll('a')]\
               .find(a => a.textContent.trim() === 'carol').href;",
            json!([]),
        )
        .await;
    admin.goto(user.as_str().unwrap()).await;
    admin.wait_for(&stack.idp, "active").await;
    accessible(&admin, &axe, "carol's page").await;
    admin.click("form[action$='/suspend'] button").await;
    admin.wait_for(&stack.idp, "suspended").await;
    shots.take(&admin, "carol-suspended").await;
    admin.quit().await;

    // 8. She can no longer sign in.
    let again = driver.browser(&profiles.path().join("carol-again")).await;
    again.goto(&format!("{}/", stack.wiki)).await;
    again.click("a[href='/login']").await;
    sign_in_at_idp(&again, &stack, "carol").await;
    let text = again.wait_for(&stack.idp, "Sign-in failed").await;
    assert!(!text.contains("Signed in as"), "{text}");
    shots.take(&again, "carol-refused").await;
    again.quit().await;
}
