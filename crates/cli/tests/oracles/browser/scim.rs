//! The whole loop of issue #13 in a real Chromium: the IdP's SCIM client pushes to the demo
//! wiki's SCIM server (the SP toolkit's). alice signs in to the wiki (JIT, onto the account
//! SCIM made ahead of her login); the admin takes her out of wiki-editors and her editor
//! role goes without a new login (SCIM group membership), then out of the wiki's last group
//! and her wiki access goes; the admin suspends her, and her wiki session ends and her
//! account is disabled there within seconds.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::stack::{Stack, free_port};
use super::webdriver::Driver;
use super::{Shots, artefact_dir_named, sign_in_at_idp, whoami};

/// The wiki's SCIM user `name`, read with the wiki's own token.
fn wiki_user(stack: &Stack, token: &str, name: &str) -> Option<Value> {
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-f",
            "-G",
            "-H",
            &format!("Authorization: Bearer {token}"),
        ])
        .args([
            "--data-urlencode",
            &format!("filter=userName eq \"{name}\""),
        ])
        .arg(format!("{}/scim/v2/Users", stack.wiki))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the wiki's SCIM server answered {out:?}"
    );
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    list["Resources"]
        .as_array()
        .and_then(|r| r.first().cloned())
}

fn wait_wiki_user(
    stack: &Stack,
    token: &str,
    name: &str,
    what: &str,
    check: impl Fn(Option<&Value>) -> bool,
) -> Option<Value> {
    let started = Instant::now();
    loop {
        let found = wiki_user(stack, token, name);
        if check(found.as_ref()) {
            return found;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{what}: the wiki has {found:?}\n{}",
            stack.cli(&[
                "app",
                "scim",
                "show",
                &format!("{}/saml/metadata", stack.wiki)
            ])
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_idp_deprovisions_the_wiki_over_scim() {
    let dir = artefact_dir_named("scim");
    let logs = dir.join("logs");
    let mut shots = Shots {
        dir: dir.clone(),
        next: 0,
    };
    let profiles = tempfile::tempdir().unwrap();
    let driver = Driver::start(free_port(), &logs.join("chromedriver.log")).await;
    let stack = Stack::start(&logs);
    let wiki_entity = format!("{}/saml/metadata", stack.wiki);
    let token_file = stack.file("wiki-scim-token");
    let token = std::fs::read_to_string(&token_file)
        .unwrap()
        .trim()
        .to_owned();
    let said = stack.cli(&[
        "app",
        "scim",
        "set",
        &wiki_entity,
        "--url",
        &format!("{}/scim/v2", stack.wiki),
        "--token-file",
        token_file.to_str().unwrap(),
    ]);
    assert!(said.contains("1 user(s) queued"), "{said}");
    // Provisioned ahead of any login.
    let pushed = wait_wiki_user(&stack, &token, "alice", "alice pushed", |u| {
        u.is_some_and(|u| u["active"] == true)
    })
    .unwrap();

    // 1. alice signs in: JIT finds the account SCIM made and gives it her role.
    let alice = driver.browser(&profiles.path().join("alice")).await;
    alice.goto(&format!("{}/login", stack.wiki)).await;
    sign_in_at_idp(&alice, &stack, "alice").await;
    let text = alice
        .wait_for(&format!("{}/", stack.wiki), "Signed in as Alice Anders")
        .await;
    assert!(text.contains("Role: editor"), "{text}");
    shots.take(&alice, "wiki-alice-signed-in").await;
    let me = whoami(&alice, &stack.wiki).await;
    assert_eq!(me["authenticated"], true, "{me}");
    let same = wiki_user(&stack, &token, "alice").unwrap();
    assert_eq!(same["id"], pushed["id"], "the login used the SCIM account");

    // 2. The admin takes her out of wiki-editors: the IdP moves her out of that SCIM group
    //    at the wiki, and her editor role goes without a new login (engineering still
    //    makes her a reader).
    stack.cli(&["group", "members", "remove", "wiki-editors", "alice"]);
    let started = Instant::now();
    loop {
        let me = whoami(&alice, &stack.wiki).await;
        let roles: Vec<&str> = me["account"]["roles"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if me["authenticated"] == true && !roles.contains(&"editor") {
            assert!(roles.contains(&"reader"), "{me}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "still an editor: {me}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    alice.goto(&format!("{}/", stack.wiki)).await;
    let text = alice.text().await;
    assert!(text.contains("Role: reader"), "{text}");
    shots.take(&alice, "wiki-alice-editor-role-gone").await;

    // Out of the wiki's last group, the wiki is no longer hers: her account there is
    // deactivated (her session with it) without a new login.
    stack.cli(&["group", "members", "remove", "engineering", "alice"]);
    wait_wiki_user(&stack, &token, "alice", "unassigned: deactivated", |u| {
        u.is_some_and(|u| u["active"] == false)
    });
    let me = whoami(&alice, &stack.wiki).await;
    assert_eq!(me["authenticated"], false, "her wiki session ended: {me}");
    shots.take(&alice, "wiki-alice-access-gone").await;

    // Back in, she signs in again; then the admin suspends her.
    stack.cli(&["group", "members", "add", "wiki-editors", "alice"]);
    wait_wiki_user(&stack, &token, "alice", "assigned again: active", |u| {
        u.is_some_and(|u| u["active"] == true)
    });
    alice.goto(&format!("{}/login", stack.wiki)).await;
    let text = alice
        .wait_for(&format!("{}/", stack.wiki), "Signed in as Alice Anders")
        .await;
    assert!(text.contains("Role: editor"), "{text}");

    // 3. Suspended in the IdP: her wiki session ends and her account is disabled there.
    let started = Instant::now();
    stack.cli(&["user", "suspend", "alice"]);
    wait_wiki_user(&stack, &token, "alice", "suspended: deactivated", |u| {
        u.is_some_and(|u| u["active"] == false)
    });
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let me = whoami(&alice, &stack.wiki).await;
    assert_eq!(me["authenticated"], false, "her wiki session ended: {me}");
    alice.goto(&format!("{}/", stack.wiki)).await;
    let text = alice.text().await;
    assert!(text.contains("You are not signed in"), "{text}");
    shots.take(&alice, "wiki-alice-suspended").await;
    alice.quit().await;
}
