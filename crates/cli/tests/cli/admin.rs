//! The admin commands, run as the built binary against a temp SQLite store.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// A temp working directory with a `latchkey.toml` (cheap password hashing) in it.
fn workdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("latchkey.toml"),
        "[password]\nmemory_kib = 64\niterations = 1\nparallelism = 1\n",
    )
    .unwrap();
    dir
}

fn latchkey_with_stdin(dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(args)
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("LATCHKEY_DATABASE_URL")
        .env_remove("LATCHKEY_CONFIG")
        .env_remove("LATCHKEY_DATA_DIR")
        .env("USER", "tester")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn latchkey(dir: &Path, args: &[&str]) -> Output {
    latchkey_with_stdin(dir, args, "")
}

/// Runs a command that must succeed and returns its stdout.
fn ok(dir: &Path, args: &[&str]) -> String {
    let out = latchkey(dir, args);
    assert!(
        out.status.success(),
        "latchkey {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a command that must be refused (exit status 1) and returns its single stderr line.
fn fails(dir: &Path, args: &[&str]) -> String {
    fails_with(dir, args, 1)
}

/// Runs a command that must fail with exit status `code` (1 refused, 2 bad input, 3
/// unavailable) and returns its single stderr line.
fn fails_with(dir: &Path, args: &[&str], code: i32) -> String {
    let out = latchkey(dir, args);
    assert!(
        !out.status.success(),
        "latchkey {args:?} should have failed"
    );
    assert_eq!(
        out.status.code(),
        Some(code),
        "latchkey {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "not one line: {stderr:?}");
    assert!(stderr.starts_with("error: "), "{stderr:?}");
    stderr.trim_end().to_string()
}

fn users_json(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&ok(dir, &["user", "list", "--json"])).unwrap()
}

#[test]
fn add_user_then_duplicate_is_one_clear_line() {
    let dir = workdir();
    let d = dir.path();
    let out = ok(
        d,
        &[
            "user",
            "add",
            "alice",
            "--email",
            "alice@example.org",
            "--given-name",
            "Alice",
        ],
    );
    assert!(out.starts_with("created user alice ("), "{out}");
    assert!(
        d.join("latchkey-data/latchkey.db").is_file(),
        "default store location"
    );

    let err = fails(d, &["user", "add", "ALICE", "--email", "other@example.org"]);
    assert_eq!(err, "error: username \"ALICE\" is already taken");
    let err = fails(d, &["user", "add", "bob", "--email", "Alice@Example.org"]);
    assert!(
        err.contains("e-mail address \"Alice@Example.org\""),
        "{err}"
    );
    // Bad input, not a refusal: exit status 2 (it was 1 before exit codes had classes).
    let err = fails_with(
        d,
        &["user", "add", "carol", "--email", "carol.example.org"],
        2,
    );
    assert!(err.starts_with("error: invalid email:"), "{err}");
    let err = fails(d, &["group", "members", "add", "nope", "alice"]);
    assert_eq!(err, "error: unknown group \"nope\"");

    let users = users_json(d);
    assert_eq!(users.as_array().unwrap().len(), 1);
}

/// Exit status by class: 0 ok, 1 refused, 2 bad input or usage, 3 unavailable.
#[test]
fn exit_status_tells_refused_from_bad_input_from_unavailable() {
    let dir = workdir();
    let d = dir.path();
    ok(d, &["user", "add", "alice", "--email", "alice@example.org"]);
    fails_with(d, &["user", "add", "alice", "--email", "a2@example.org"], 1);
    fails_with(d, &["user", "add", "bob", "--email", "not-an-address"], 2);
    fails_with(
        d,
        &[
            "user",
            "add",
            "bob",
            "--email",
            "b@example.org",
            "--attr",
            "x",
        ],
        2,
    );
    let usage = latchkey(d, &["user", "add"]);
    assert_eq!(usage.status.code(), Some(2));
    // A data folder that cannot be created (its parent is a file): the server side is at
    // fault, not the command.
    std::fs::write(d.join("not-a-dir"), "").unwrap();
    std::fs::write(
        d.join("latchkey.toml"),
        "data_dir = \"not-a-dir/data\"\n[password]\nmemory_kib = 64\niterations = 1\nparallelism = 1\n",
    )
    .unwrap();
    let err = fails_with(d, &["user", "list"], 3);
    assert!(err.contains("not-a-dir"), "{err}");
}

#[test]
fn list_json_shows_users_groups_and_apps() {
    let dir = workdir();
    let d = dir.path();
    ok(
        d,
        &[
            "user",
            "add",
            "bob",
            "--email",
            "bob@example.org",
            "--attr",
            "roles=a",
            "--attr",
            "roles=b",
        ],
    );
    ok(d, &["user", "add", "alice", "--email", "alice@example.org"]);
    ok(d, &["group", "add", "staff"]);
    ok(d, &["group", "members", "add", "staff", "alice", "bob"]);
    ok(
        d,
        &[
            "app",
            "add",
            "--entity-id",
            "https://wiki.example.org",
            "--name",
            "Wiki",
            "--acs-url",
            "https://wiki.example.org/acs",
            "--attr",
            "mail=email",
        ],
    );
    ok(d, &["app", "assign", "Wiki", "staff"]);
    let err = fails(
        d,
        &[
            "app",
            "add",
            "--entity-id",
            "https://wiki.example.org",
            "--acs-url",
            "https://x.example.org/acs",
        ],
    );
    assert!(
        err.contains("entity ID \"https://wiki.example.org\" is already registered"),
        "{err}"
    );

    let users = users_json(d);
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "bob"]);
    assert_eq!(
        users[1]["attributes"]["roles"],
        serde_json::json!(["a", "b"])
    );
    assert!(users[0].get("password_hash").is_none());

    let groups: serde_json::Value =
        serde_json::from_str(&ok(d, &["group", "list", "--json"])).unwrap();
    assert_eq!(groups[0]["name"], "staff");
    let members: serde_json::Value =
        serde_json::from_str(&ok(d, &["group", "members", "list", "staff", "--json"])).unwrap();
    assert_eq!(members.as_array().unwrap().len(), 2);
    let apps: serde_json::Value = serde_json::from_str(&ok(d, &["app", "list", "--json"])).unwrap();
    assert_eq!(apps[0]["entity_id"], "https://wiki.example.org");
    assert_eq!(apps[0]["access_groups"], serde_json::json!(["staff"]));
    // The API's shape (`GET /api/v1/apps`): mappings in their text form.
    assert!(
        apps[0]["attributes"][0]
            .as_str()
            .unwrap()
            .starts_with("mail@"),
        "{apps}"
    );
}

#[test]
fn import_is_idempotent_and_all_or_nothing() {
    let dir = workdir();
    let d = dir.path();
    ok(d, &["group", "add", "staff"]);
    std::fs::write(
        d.join("users.csv"),
        "username,email,given_name,groups\nalice,alice@example.org,Alice,staff\nbob,bob@example.org,Bob,\n",
    )
    .unwrap();
    let first = ok(d, &["import", "users", "users.csv"]);
    assert_eq!(
        first.trim(),
        "created 2, updated 0, unchanged 0, memberships added 1"
    );
    let export = |d: &Path| {
        let mut v: serde_json::Value = serde_json::from_str(&ok(d, &["export"])).unwrap();
        v.as_object_mut().unwrap().remove("exported_at");
        v
    };
    let before = export(d);
    let second = ok(d, &["import", "users", "users.csv"]);
    assert_eq!(
        second.trim(),
        "created 0, updated 0, unchanged 2, memberships added 0"
    );
    assert_eq!(export(d), before);

    std::fs::write(
        d.join("bad.csv"),
        "username,email\ncarol,carol@example.org\ndave,not-an-address\n",
    )
    .unwrap();
    let err = fails_with(d, &["import", "users", "bad.csv"], 2);
    assert!(
        err.starts_with("error: bad.csv: line 3: invalid email:"),
        "{err}"
    );
    assert_eq!(export(d), before);
}

#[test]
fn passwd_reads_stdin_and_config_names_the_store() {
    let dir = workdir();
    let d = dir.path();
    std::fs::write(
        d.join("other.toml"),
        "data_dir = \"elsewhere\"\n[password]\nmemory_kib = 64\niterations = 1\nparallelism = 1\n",
    )
    .unwrap();
    ok(
        d,
        &[
            "user",
            "add",
            "alice",
            "--email",
            "alice@example.org",
            "--config",
            "other.toml",
        ],
    );
    assert!(d.join("elsewhere/latchkey.db").is_file());
    // The default store does not have her.
    let err = fails(d, &["user", "show", "alice"]);
    assert_eq!(err, "error: unknown user \"alice\"");

    let out = latchkey_with_stdin(
        d,
        &[
            "user",
            "passwd",
            "alice",
            "--password-stdin",
            "--config",
            "other.toml",
        ],
        "a long enough password\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown: serde_json::Value = serde_json::from_str(&ok(
        d,
        &["user", "show", "alice", "--json", "--config", "other.toml"],
    ))
    .unwrap();
    assert_eq!(shown["has_password"], true);
    let out = latchkey_with_stdin(
        d,
        &["user", "passwd", "alice", "--config", "other.toml"],
        "short\n",
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid password"));

    std::fs::write(d.join("broken.toml"), "[databse]\nurl = \"x\"\n").unwrap();
    let err = fails_with(d, &["user", "list", "--config", "broken.toml"], 2);
    assert!(
        err.contains("broken.toml") && err.contains("databse"),
        "{err}"
    );
}

#[test]
fn every_command_is_wired() {
    let dir = workdir();
    let d = dir.path();
    ok(d, &["user", "add", "alice", "--email", "alice@example.org"]);
    ok(
        d,
        &[
            "user",
            "set",
            "alice",
            "--username",
            "alice.l",
            "--display-name",
            "Alice L.",
            "--attr",
            "dept=rd",
        ],
    );
    let err = fails_with(d, &["user", "set", "alice.l"], 2);
    assert!(err.contains("nothing to change"), "{err}");
    ok(d, &["user", "suspend", "alice.l"]);
    let shown = ok(d, &["user", "show", "ALICE@example.org"]);
    assert!(
        shown.contains("status:") && shown.contains("suspended"),
        "{shown}"
    );
    assert!(shown.contains("dept=rd"), "{shown}");
    ok(d, &["user", "resume", "alice.l"]);

    ok(
        d,
        &[
            "group",
            "add",
            "wiki-editors",
            "--description",
            "Edit the wiki",
        ],
    );
    ok(d, &["group", "members", "add", "wiki-editors", "alice.l"]);
    let err = fails(d, &["group", "members", "add", "wiki-editors", "alice.l"]);
    assert!(err.contains("already a member"), "{err}");
    ok(
        d,
        &[
            "app",
            "add",
            "--entity-id",
            "https://wiki.example.org",
            "--name",
            "Wiki",
            "--acs-url",
            "https://wiki.example.org/acs",
            "--acs-url",
            "https://wiki.example.org/acs2",
        ],
    );
    ok(
        d,
        &["app", "assign", "https://wiki.example.org", "wiki-editors"],
    );
    ok(
        d,
        &[
            "app",
            "set",
            "Wiki",
            "--name-id-format",
            "email",
            "--name-id-source",
            "email",
            "--add-attr",
            "groups@basic=groups|strip-prefix:wiki-",
            "--visible",
            "false",
            "--relay-state",
            "/start",
        ],
    );
    let err = fails_with(
        d,
        &[
            "app",
            "set",
            "Wiki",
            "--acs-url",
            "ftp://wiki.example.org/acs",
        ],
        2,
    );
    assert!(err.starts_with("error: invalid acs_url:"), "{err}");
    let shown: serde_json::Value =
        serde_json::from_str(&ok(d, &["app", "show", "Wiki", "--json"])).unwrap();
    assert_eq!(
        shown["name_id_format"],
        "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
    );
    assert_eq!(shown["acs"][1]["index"], 1);
    assert!(
        shown["attributes"][0]
            .as_str()
            .unwrap()
            .starts_with("groups@basic=groups|"),
        "{shown}"
    );
    assert_eq!(shown["tile"]["visible"], false);
    assert_eq!(shown["tile"]["default_relay_state"], "/start");
    assert_eq!(shown["access_groups"], serde_json::json!(["wiki-editors"]));
    let text = ok(d, &["app", "show", "Wiki"]);
    assert!(
        text.contains("groups@basic=groups|strip-prefix:wiki-"),
        "{text}"
    );

    let log: serde_json::Value =
        serde_json::from_str(&ok(d, &["audit", "--target", "alice.l", "--json"])).unwrap();
    let actions: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    // The CLI's suspension ends her sessions in its transaction, as every path's does.
    assert_eq!(
        actions,
        [
            "user.resume",
            "user.sessions_end",
            "user.suspend",
            "user.update",
            "user.create"
        ]
    );
    // The OS user and the host, as the label filters match and as the name people read.
    let actor = log[0]["actor"].as_str().unwrap();
    let host = actor
        .strip_prefix("cli:tester@")
        .unwrap_or_else(|| panic!("{actor}"));
    assert!(!host.is_empty() && !host.contains("unknown"), "{actor}");
    assert_eq!(log[0]["actor_name"], format!("tester@{host}"));

    ok(d, &["app", "unassign", "Wiki", "wiki-editors"]);
    ok(d, &["app", "remove", "Wiki"]);
    ok(
        d,
        &["group", "members", "remove", "wiki-editors", "alice.l"],
    );
    ok(d, &["group", "delete", "wiki-editors"]);
    ok(d, &["user", "delete", "alice.l"]);
    let export: serde_json::Value = serde_json::from_str(&ok(d, &["export"])).unwrap();
    assert_eq!(export["users"], serde_json::json!([]));
    assert_eq!(export["groups"], serde_json::json!([]));
    assert_eq!(export["applications"], serde_json::json!([]));
    let info = ok(d, &["store-info"]);
    assert!(info.starts_with("backend: sqlite"), "{info}");
}

/// The demo wiki's SP metadata at `acs`: one HTTP-POST ACS, one Artifact ACS (not used) and
/// an HTTP-Redirect SLO.
fn wiki_metadata(acs: &str) -> String {
    format!(
        r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://wiki.example.net/saml/metadata">
  <md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol" WantAssertionsSigned="true">
    <md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://wiki.example.net/saml/slo"/>
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact" Location="https://wiki.example.net/saml/artifact" index="0" isDefault="true"/>
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{acs}" index="1"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>"#
    )
}

#[test]
fn app_add_from_metadata_with_a_template() {
    let dir = workdir();
    let d = dir.path();
    let file = d.join("wiki-sp.xml");
    std::fs::write(&file, wiki_metadata("https://wiki.example.net/saml/acs")).unwrap();
    let file = file.to_str().unwrap();
    let out = latchkey(
        d,
        &[
            "app",
            "add",
            "--metadata",
            file,
            "--template",
            "latchkey-wiki",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains(
            "warning: ignored AssertionConsumerService https://wiki.example.net/saml/artifact"
        ),
        "{stderr}"
    );
    // The launch link by slug, and what the template says the wiki expects of a user.
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("launch link: /saml/init/latchkey-demo-wiki\n"),
        "{stdout}"
    );
    assert!(stdout.contains("the application expects:"), "{stdout}");
    assert!(stdout.contains("engineering"), "{stdout}");
    let shown = ok(d, &["template", "show", "latchkey-wiki"]);
    assert!(shown.contains("expects:\n  Group engineering"), "{shown}");
    let json: serde_json::Value =
        serde_json::from_str(&ok(d, &["template", "show", "latchkey-wiki", "--json"])).unwrap();
    assert!(json["expects"].as_str().unwrap().contains("wiki-admins"));
    let entity = "https://wiki.example.net/saml/metadata";
    let shown: serde_json::Value =
        serde_json::from_str(&ok(d, &["app", "show", entity, "--json"])).unwrap();
    assert_eq!(shown["name"], "Latchkey demo wiki");
    assert_eq!(shown["slug"], "latchkey-demo-wiki");
    // Settable; the table and the list show it; the app is found by it.
    ok(d, &["app", "set", entity, "--slug", "wiki"]);
    let text = ok(d, &["app", "show", "wiki"]);
    assert!(text.contains("wiki"), "{text}");
    let list = ok(d, &["app", "list"]);
    assert!(list.contains("SLUG"), "{list}");
    let listed: serde_json::Value =
        serde_json::from_str(&ok(d, &["app", "list", "--json"])).unwrap();
    assert_eq!(listed[0]["slug"], "wiki", "{listed}");
    let err = fails_with(d, &["app", "set", entity, "--slug", "Not A Slug"], 2);
    assert!(err.contains("invalid slug"), "{err}");
    assert_eq!(
        shown["acs"],
        serde_json::json!([{
            "url": "https://wiki.example.net/saml/acs",
            "binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST",
            "index": 1,
            "is_default": true
        }])
    );
    assert_eq!(shown["slo"]["url"], "https://wiki.example.net/saml/slo");
    // The template's release policy and NameID.
    assert_eq!(
        shown["name_id_format"],
        "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
    );
    assert_eq!(shown["name_id_source"], "email");
    let attrs = shown["attributes"].as_array().unwrap();
    assert_eq!(attrs.len(), 5, "{attrs:?}");

    // Registering it again names the clash.
    let err = fails(d, &["app", "add", "--metadata", file]);
    assert!(err.contains("already registered"), "{err}");

    // `app set --metadata` refreshes the endpoints and keeps the policy; explicit options win.
    let moved = d.join("moved.xml");
    std::fs::write(&moved, wiki_metadata("https://wiki.example.net/new/acs")).unwrap();
    ok(
        d,
        &[
            "app",
            "set",
            entity,
            "--metadata",
            moved.to_str().unwrap(),
            "--description",
            "Team wiki",
        ],
    );
    let shown: serde_json::Value =
        serde_json::from_str(&ok(d, &["app", "show", entity, "--json"])).unwrap();
    assert_eq!(shown["acs"][0]["url"], "https://wiki.example.net/new/acs");
    assert_eq!(shown["attributes"].as_array().unwrap().len(), 5);
    assert_eq!(shown["tile"]["description"], "Team wiki");

    // Bad input is one clear line and changes nothing.
    let bad = d.join("bad.xml");
    std::fs::write(&bad, "<md:EntityDescriptor").unwrap();
    let err = fails_with(d, &["app", "add", "--metadata", bad.to_str().unwrap()], 2);
    assert!(err.contains("malformed SP metadata"), "{err}");
    let expired = d.join("expired.xml");
    std::fs::write(
        &expired,
        wiki_metadata("https://x.example.net/acs")
            .replace(
                "https://wiki.example.net/saml/metadata",
                "https://x.example.net",
            )
            .replace("entityID=", "validUntil=\"2020-01-01T00:00:00Z\" entityID="),
    )
    .unwrap();
    let expired = expired.to_str().unwrap();
    let err = fails_with(d, &["app", "add", "--metadata", expired], 2);
    assert!(err.contains("expired"), "{err}");
    let list: serde_json::Value = serde_json::from_str(&ok(d, &["app", "list", "--json"])).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    ok(
        d,
        &[
            "app",
            "add",
            "--metadata",
            expired,
            "--allow-expired-metadata",
        ],
    );
}

#[test]
fn app_add_from_metadata_url() {
    use std::io::Read;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let body = wiki_metadata("https://wiki.example.net/saml/acs");
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut request = [0u8; 4096];
        let n = conn.read(&mut request).unwrap();
        let request = String::from_utf8_lossy(&request[..n]).to_string();
        write!(
            conn,
            "HTTP/1.1 200 OK\r\ncontent-type: application/samlmetadata+xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        request
    });
    let dir = workdir();
    let d = dir.path();
    let url = format!("http://{addr}/saml/metadata");
    ok(d, &["app", "add", "--metadata", &url, "--name", "Wiki"]);
    let request = server.join().unwrap();
    assert!(request.starts_with("GET /saml/metadata "), "{request}");
    let shown: serde_json::Value = serde_json::from_str(&ok(
        d,
        &[
            "app",
            "show",
            "https://wiki.example.net/saml/metadata",
            "--json",
        ],
    ))
    .unwrap();
    // Explicit --name wins over the metadata; endpoints come from the fetched document.
    assert_eq!(shown["name"], "Wiki");
    assert_eq!(shown["acs"][0]["url"], "https://wiki.example.net/saml/acs");
}

#[test]
fn app_refresh_metadata_is_audited_when_it_changes_something() {
    let dir = workdir();
    let d = dir.path();
    let file = d.join("wiki-sp.xml");
    let path = file.to_str().unwrap();
    let entity = "https://wiki.example.net/saml/metadata";
    std::fs::write(&file, wiki_metadata("https://wiki.example.net/saml/acs")).unwrap();
    ok(d, &["app", "add", "--metadata", path]);

    let same = ok(d, &["app", "refresh-metadata", entity, path]);
    assert!(same.contains("nothing changed"), "{same}");
    std::fs::write(&file, wiki_metadata("https://wiki.example.net/saml/acs2")).unwrap();
    let changed = ok(d, &["app", "refresh-metadata", entity, path]);
    assert!(changed.starts_with("refreshed application"), "{changed}");
    let shown: serde_json::Value =
        serde_json::from_str(&ok(d, &["app", "show", entity, "--json"])).unwrap();
    assert_eq!(shown["acs"][0]["url"], "https://wiki.example.net/saml/acs2");

    let events: Vec<serde_json::Value> = serde_json::from_str(&ok(
        d,
        &["audit", "--action", "app.metadata_refresh", "--json"],
    ))
    .unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0]["actor"].as_str().unwrap().starts_with("cli:"));
    assert_eq!(events[0]["after"]["source"], path);
    assert_eq!(
        events[0]["after"]["acs"][0]["url"],
        "https://wiki.example.net/saml/acs2"
    );
    assert_eq!(
        events[0]["before"]["acs"][0]["url"],
        "https://wiki.example.net/saml/acs"
    );
}

#[test]
fn audit_filters_by_user_app_and_age() {
    let dir = workdir();
    let d = dir.path();
    ok(d, &["user", "add", "alice", "--email", "alice@example.org"]);
    ok(d, &["user", "add", "bob", "--email", "bob@example.org"]);
    ok(
        d,
        &[
            "app",
            "add",
            "--entity-id",
            "https://wiki.example.org/saml",
            "--name",
            "Wiki",
            "--acs-url",
            "https://wiki.example.org/acs",
        ],
    );
    let events = |args: &[&str]| -> Vec<serde_json::Value> {
        let mut all = vec!["audit", "--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&ok(d, &all)).unwrap()
    };
    let actions = |list: &[serde_json::Value]| -> Vec<String> {
        list.iter()
            .map(|e| e["action"].as_str().unwrap().to_owned())
            .collect()
    };
    let alice = events(&["--user", "alice"]);
    assert_eq!(actions(&alice), ["user.create"]);
    assert_eq!(alice[0]["target_name"], "alice");
    let wiki = events(&["--app", "https://wiki.example.org/saml"]);
    assert_eq!(actions(&wiki), ["app.create"]);
    assert_eq!(events(&["--since", "1h"]).len(), 3);
    assert!(events(&["--since", "2999-01-01T00:00:00Z"]).is_empty());
    // A malformed --since is a usage error, reported by clap (exit status 2).
    let out = latchkey(d, &["audit", "--since", "yesterday"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("RFC 3339"));
    let err = fails(d, &["audit", "--user", "nobody"]);
    assert!(err.contains("nobody"), "{err}");
}

/// A self-signed certificate PEM written to `dir/name`.
fn cert_file(dir: &Path, name: &str, alg: &'static rcgen::SignatureAlgorithm) -> String {
    let pair = rcgen::KeyPair::generate_for(alg).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["crm.example.net".to_string()])
        .unwrap()
        .self_signed(&pair)
        .unwrap();
    let path = dir.join(name);
    std::fs::write(&path, cert.pem()).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn app_encryption_needs_an_rsa_certificate_and_takes_advertised_algorithms() {
    let dir = workdir();
    let d = dir.path();
    let ec = cert_file(d, "ec.pem", &rcgen::PKCS_ECDSA_P256_SHA256);
    let rsa = cert_file(d, "rsa.pem", &rcgen::PKCS_RSA_SHA256);
    let entity = "https://crm.example.net/saml";
    let add = |cert: &str, extra: &[&str]| {
        let mut args = vec![
            "app",
            "add",
            "--entity-id",
            entity,
            "--acs-url",
            "https://crm.example.net/saml/acs",
            "--encryption-cert",
            cert,
            "--encrypt",
            "true",
        ];
        args.extend_from_slice(extra);
        args.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let args = add(&ec, &[]);
    let err = fails_with(d, &args.iter().map(String::as_str).collect::<Vec<_>>(), 2);
    assert!(err.contains("ECDSA P-256") && err.contains("RSA"), "{err}");
    let list: serde_json::Value = serde_json::from_str(&ok(d, &["app", "list", "--json"])).unwrap();
    assert_eq!(list, serde_json::json!([]));

    let args = add(
        &rsa,
        &[
            "--encryption-method",
            "aes128-cbc",
            "--encryption-method",
            "http://www.w3.org/2001/04/xmlenc#rsa-1_5",
        ],
    );
    ok(d, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let shown: serde_json::Value =
        serde_json::from_str(&ok(d, &["app", "show", entity, "--json"])).unwrap();
    assert_eq!(
        shown["encryption_methods"],
        serde_json::json!([
            "http://www.w3.org/2001/04/xmlenc#aes128-cbc",
            "http://www.w3.org/2001/04/xmlenc#rsa-1_5"
        ])
    );
    let text = ok(d, &["app", "show", entity]);
    assert!(text.contains("xmlenc#aes128-cbc"), "{text}");

    // Switching to the ECDSA certificate while encrypting is refused and changes nothing.
    let err = fails_with(d, &["app", "set", entity, "--encryption-cert", &ec], 2);
    assert!(err.contains("RSA"), "{err}");
    let again: serde_json::Value =
        serde_json::from_str(&ok(d, &["app", "show", entity, "--json"])).unwrap();
    assert_eq!(again, shown);

    // Replaced, then cleared.
    ok(
        d,
        &["app", "set", entity, "--encryption-method", "aes256-gcm"],
    );
    let shown: serde_json::Value =
        serde_json::from_str(&ok(d, &["app", "show", entity, "--json"])).unwrap();
    assert_eq!(
        shown["encryption_methods"],
        serde_json::json!(["http://www.w3.org/2009/xmlenc11#aes256-gcm"])
    );
    ok(d, &["app", "set", entity, "--clear-encryption-methods"]);
    let shown: serde_json::Value =
        serde_json::from_str(&ok(d, &["app", "show", entity, "--json"])).unwrap();
    assert_eq!(shown["encryption_methods"], serde_json::json!([]));
    let err = fails_with(
        d,
        &["app", "set", entity, "--encryption-method", "fast please"],
        2,
    );
    assert!(err.contains("encryption_methods"), "{err}");
}

/// `app scim show --json` prints what `GET /api/v1/apps/{id}/scim` answers: the API's
/// `ScimStatusDto`, no field more or less, in the same forms.
#[test]
fn app_scim_show_json_is_the_apis_object() {
    let dir = workdir();
    let d = dir.path();
    let add = "app add --entity-id https://wiki.example.org --name Wiki --acs-url https://wiki.example.org/acs";
    ok(d, &add.split(' ').collect::<Vec<_>>());
    let token = d.join("scim.token");
    std::fs::write(&token, "a-bearer-token\n").unwrap();
    ok(
        d,
        &[
            "app",
            "scim",
            "set",
            "Wiki",
            "--on-remove=delete",
            "--url=https://wiki.example.org/scim/v2/",
            "--token-file",
            token.to_str().unwrap(),
        ],
    );
    let shown: serde_json::Value =
        serde_json::from_str(&ok(d, &["app", "scim", "show", "Wiki", "--json"])).unwrap();
    let dto: latchkey_idp_web::api::scim::ScimStatusDto =
        serde_json::from_value(shown.clone()).unwrap();
    assert_eq!(serde_json::to_value(&dto).unwrap(), shown);
    assert_eq!(dto.base_url, "https://wiki.example.org/scim/v2");
    assert_eq!(dto.on_remove, "delete");
    assert_eq!(app_json(d, "Wiki")["id"], shown["app_id"]);
}

/// A removal that cannot be delivered holds up `app scim remove` (exit 1, the code and the
/// way past it said); `user provisioning --json` shows it in the API's shape; `--force`
/// drops it and names the user.
#[test]
fn app_scim_remove_refuses_to_drop_pending_removals_without_force() {
    let dir = workdir();
    let d = dir.path();
    let add = "app add --entity-id https://wiki.example.org --name Wiki --acs-url https://wiki.example.org/acs";
    ok(d, &add.split(' ').collect::<Vec<_>>());
    ok(d, &["user", "add", "alice", "--email", "alice@example.org"]);
    ok(d, &["group", "add", "staff"]);
    ok(d, &["group", "members", "add", "staff", "alice"]);
    ok(d, &["app", "assign", "Wiki", "staff"]);
    let token = d.join("scim.token");
    std::fs::write(&token, "a-bearer-token\n").unwrap();
    let set = [
        "app",
        "scim",
        "set",
        "Wiki",
        "--url=https://wiki.example.org/scim/v2",
        "--token-file",
        token.to_str().unwrap(),
    ];
    ok(d, &set);
    // Nothing delivers here (no server runs): alice's row waits, an update.
    let pending: serde_json::Value =
        serde_json::from_str(&ok(d, &["user", "provisioning", "alice", "--json"])).unwrap();
    assert_eq!(pending[0]["kind"], "update", "{pending}");
    ok(d, &["app", "scim", "remove", "Wiki"]);

    ok(d, &set);
    ok(d, &["user", "suspend", "alice"]);
    let pending: serde_json::Value =
        serde_json::from_str(&ok(d, &["user", "provisioning", "alice", "--json"])).unwrap();
    let dtos: Vec<latchkey_idp_web::api::scim::PendingChangeDto> =
        serde_json::from_value(pending.clone()).unwrap();
    assert_eq!(serde_json::to_value(&dtos).unwrap(), pending);
    assert_eq!(dtos.len(), 1);
    assert_eq!(dtos[0].app, "https://wiki.example.org");
    assert_eq!(dtos[0].kind, "removal");
    assert_eq!(dtos[0].attempts, 0);
    let text = ok(d, &["user", "provisioning", "alice"]);
    assert!(text.contains("removal"), "{text}");

    let err = fails(d, &["app", "scim", "remove", "Wiki"]);
    assert!(err.contains("scim_removals_pending"), "{err}");
    assert!(err.contains("--force"), "{err}");
    let shown: serde_json::Value =
        serde_json::from_str(&ok(d, &["app", "scim", "show", "Wiki", "--json"])).unwrap();
    assert_eq!(shown["queue_length"], 2, "still connected, nothing dropped");

    let out = ok(d, &["app", "scim", "remove", "Wiki", "--force"]);
    assert!(out.contains("1 user(s)") && out.contains("alice"), "{out}");
    let events: Vec<serde_json::Value> = serde_json::from_str(&ok(
        d,
        &["audit", "--action", "app.scim_disconnect", "--json"],
    ))
    .unwrap();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0]["after"]["dropped_removals"], 1, "{events:?}");
    assert_eq!(events[0]["after"]["users"][0]["name"], "alice");
    assert_eq!(events[1]["after"], serde_json::Value::Null, "the plain one");
    let pending: serde_json::Value =
        serde_json::from_str(&ok(d, &["user", "provisioning", "alice", "--json"])).unwrap();
    assert_eq!(pending, serde_json::json!([]));
}

fn app_json(dir: &Path, app: &str) -> serde_json::Value {
    serde_json::from_str(&ok(dir, &["app", "show", app, "--json"])).unwrap()
}

/// SP metadata listing `formats` as its NameIDFormats.
fn metadata_with_formats(entity: &str, formats: &[&str]) -> String {
    let listed: String = formats
        .iter()
        .map(|f| format!("<md:NameIDFormat>{f}</md:NameIDFormat>"))
        .collect();
    format!(
        r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{entity}">
  <md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    {listed}
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{entity}/acs" index="0"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>"#
    )
}

#[test]
fn app_name_id_formats_are_set_shown_checked_and_warned_about() {
    let dir = workdir();
    let d = dir.path();
    let entity = "https://crm.example.net/saml";
    let transient = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient";
    let persistent = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent";
    ok(
        d,
        &[
            "app",
            "add",
            "--entity-id",
            entity,
            "--acs-url",
            "https://crm.example.net/saml/acs",
            "--name-id-formats",
            "transient,persistent",
        ],
    );
    let shown = app_json(d, entity);
    assert_eq!(
        shown["name_id_formats"],
        serde_json::json!([transient, persistent])
    );
    let text = ok(d, &["app", "show", entity]);
    assert!(
        text.lines()
            .any(|l| l.starts_with("name id formats allowed")
                && l.ends_with("transient, persistent")),
        "{text}"
    );
    // The spelling the issue used works too; a list without the app's own format, or
    // with a format we do not make, is refused in one line and changes nothing.
    ok(d, &["app", "set", entity, "--nameid-formats", "persistent"]);
    assert_eq!(
        app_json(d, entity)["name_id_formats"],
        serde_json::json!([persistent])
    );
    let before = app_json(d, entity);
    let err = fails_with(
        d,
        &["app", "set", entity, "--name-id-formats", "transient"],
        2,
    );
    assert!(err.contains("invalid name_id_formats"), "{err}");
    let err = fails_with(
        d,
        &["app", "set", entity, "--name-id-formats", "kerberos"],
        2,
    );
    assert!(err.contains("kerberos"), "{err}");
    assert_eq!(app_json(d, entity), before);
    // "" clears it: any format.
    ok(d, &["app", "set", entity, "--name-id-formats", ""]);
    assert_eq!(
        app_json(d, entity)["name_id_formats"],
        serde_json::json!([])
    );
    let text = ok(d, &["app", "show", entity]);
    assert!(
        text.lines()
            .any(|l| l.starts_with("name id formats allowed") && l.ends_with("any")),
        "{text}"
    );

    // `app add --metadata`: an SP that asks only for transient (mellon's default) and an
    // allowed list without it is warned about; with it, not.
    let file = d.join("mellon-sp.xml");
    let mellon = "https://mellon.example.net/sp";
    std::fs::write(&file, metadata_with_formats(mellon, &[transient])).unwrap();
    let file = file.to_str().unwrap();
    let out = latchkey(
        d,
        &[
            "app",
            "add",
            "--metadata",
            file,
            "--name-id-format",
            "persistent",
            "--name-id-formats",
            "persistent,email",
        ],
    );
    assert!(out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.lines().any(|l| l.starts_with("warning: ")
            && l.contains(transient)
            && l.contains("allows only persistent, email-address")
            && l.contains("--name-id-formats")),
        "{stderr}"
    );
    ok(d, &["app", "remove", mellon]);
    let out = latchkey(
        d,
        &[
            "app",
            "add",
            "--metadata",
            file,
            "--name-id-formats",
            "transient",
        ],
    );
    assert!(out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!stderr.contains("--name-id-formats"), "{stderr}");
}

#[test]
fn app_tile_login_url_is_set_shown_refused_and_cleared() {
    let dir = workdir();
    let d = dir.path();
    let entity = "https://crm.example.net/saml";
    ok(
        d,
        &[
            "app",
            "add",
            "--entity-id",
            entity,
            "--acs-url",
            "https://crm.example.net/saml/acs",
            "--tile-login-url",
            "https://crm.example.net/sso/start",
        ],
    );
    assert_eq!(
        app_json(d, entity)["tile"]["login_url"],
        "https://crm.example.net/sso/start"
    );
    let text = ok(d, &["app", "show", entity]);
    assert!(
        text.lines()
            .any(|l| l.starts_with("tile login url")
                && l.ends_with("https://crm.example.net/sso/start")),
        "{text}"
    );

    // Refused in one line naming the field; nothing changes.
    let before = app_json(d, entity);
    for bad in [
        "javascript:alert(1)",
        "/sso/start",
        "http://crm.example.net/sso/start",
        "https://me:pw@crm.example.net/sso/start",
    ] {
        let err = fails_with(d, &["app", "set", entity, "--tile-login-url", bad], 2);
        assert!(err.contains("invalid login_url"), "{bad}: {err}");
    }
    assert_eq!(app_json(d, entity), before);
    let err = fails_with(
        d,
        &[
            "app",
            "add",
            "--entity-id",
            "https://other.example.net",
            "--acs-url",
            "https://other.example.net/acs",
            "--tile-login-url",
            "data:text/html,x",
        ],
        2,
    );
    assert!(err.contains("invalid login_url"), "{err}");
    let list: serde_json::Value = serde_json::from_str(&ok(d, &["app", "list", "--json"])).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);

    // Changed (a development SP on localhost), then cleared; clearing twice is no change.
    ok(
        d,
        &[
            "app",
            "set",
            entity,
            "--tile-login-url",
            "http://localhost:8081/login",
        ],
    );
    assert_eq!(
        app_json(d, entity)["tile"]["login_url"],
        "http://localhost:8081/login"
    );
    ok(d, &["app", "set", entity, "--clear-tile-login-url"]);
    assert_eq!(
        app_json(d, entity)["tile"]["login_url"],
        serde_json::Value::Null
    );
    let err = fails_with(d, &["app", "set", entity, "--clear-tile-login-url"], 2);
    assert!(err.contains("nothing to change"), "{err}");
    // Both at once is a usage error.
    let out = latchkey(
        d,
        &[
            "app",
            "set",
            entity,
            "--clear-tile-login-url",
            "--tile-login-url",
            "https://crm.example.net/x",
        ],
    );
    assert_eq!(out.status.code(), Some(2));

    // A template with a login URL pattern fills it; an explicit option wins.
    ok(
        d,
        &[
            "app",
            "add",
            "--template",
            "gitlab",
            "--param",
            "gitlab_host=git.example.net",
        ],
    );
    assert_eq!(
        app_json(d, "https://git.example.net")["tile"]["login_url"],
        "https://git.example.net/users/sign_in"
    );
    ok(
        d,
        &[
            "app",
            "add",
            "--template",
            "gitlab",
            "--param",
            "gitlab_host=git2.example.net",
            "--clear-tile-login-url",
        ],
    );
    assert_eq!(
        app_json(d, "https://git2.example.net")["tile"]["login_url"],
        serde_json::Value::Null
    );
}

#[test]
fn template_show_names_the_tile_login_url_pattern() {
    let dir = workdir();
    let text = ok(dir.path(), &["template", "show", "gitlab"]);
    assert!(
        text.contains("tile login URL:  https://{gitlab_host}/users/sign_in"),
        "{text}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(dir.path(), &["template", "show", "gitlab", "--json"])).unwrap();
    assert_eq!(json["login_url"], "https://{gitlab_host}/users/sign_in");
    // A template without one says nothing of it.
    let list: serde_json::Value =
        serde_json::from_str(&ok(dir.path(), &["template", "list", "--json"])).unwrap();
    let without = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["login_url"].is_null())
        .expect("some template has no login URL");
    let name = without["name"].as_str().unwrap();
    let text = ok(dir.path(), &["template", "show", name]);
    assert!(!text.contains("tile login URL"), "{text}");
}

#[test]
fn mfa_admin_commands_are_audited_with_the_admins_name() {
    let dir = workdir();
    let d = dir.path();
    ok(d, &["user", "add", "alice", "--email", "alice@example.org"]);
    ok(d, &["group", "add", "payroll-users"]);
    ok(
        d,
        &[
            "app",
            "add",
            "--entity-id",
            "https://payroll.example.org",
            "--name",
            "Payroll",
            "--acs-url",
            "https://payroll.example.org/acs",
        ],
    );
    // No factors yet: the JSON is the API's (an empty list).
    let listed = ok(d, &["user", "mfa", "list", "alice", "--json"]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&listed).unwrap(),
        serde_json::json!([])
    );
    ok(d, &["user", "mfa", "require", "alice"]);
    ok(
        d,
        &["group", "set", "payroll-users", "--require-mfa", "true"],
    );
    let out = ok(
        d,
        &[
            "app",
            "set",
            "https://payroll.example.org",
            "--require-mfa",
            "true",
            "--mfa-class",
            "mobile_two_factor",
        ],
    );
    assert!(
        out.contains("required") && out.contains("mobile_two_factor"),
        "{out}"
    );
    let err = fails_with(
        d,
        &[
            "app",
            "set",
            "https://payroll.example.org",
            "--mfa-class",
            "sms",
        ],
        2,
    );
    assert!(err.contains("mobile_two_factor"), "{err}");
    ok(d, &["user", "mfa", "reset", "alice"]);
    let audit = ok(d, &["audit", "--json"]);
    let events: serde_json::Value = serde_json::from_str(&audit).unwrap();
    for action in [
        "user.mfa_required",
        "group.mfa_policy",
        "app.mfa_policy",
        "mfa.reset",
        // An admin's factor reset ends the user's sessions, in its transaction.
        "user.sessions_end",
    ] {
        let event = events
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("{action} not audited: {audit}"));
        let actor = event["actor"].as_str().unwrap();
        assert!(actor.starts_with("cli:tester@"), "{action}: {actor}");
    }
}

/// `user invite` without `[smtp]` prints the link; with `[smtp]` pointing at a loopback sink
/// it mails it, and the mailed link sets the password; a refusing server exits 3 and still
/// prints the link.
#[test]
fn invite_prints_or_mails_a_link_that_redeems() {
    use latchkey_testkit::smtp::SmtpSink;
    let dir = workdir();
    let d = dir.path();
    ok(d, &["user", "add", "alice", "--email", "alice@example.org"]);

    let shown: serde_json::Value = serde_json::from_str(&ok(
        d,
        &["user", "invite", "alice", "--expires", "2h", "--json"],
    ))
    .unwrap();
    assert_eq!(shown["mail"], "not_configured");
    assert_eq!(shown["username"], "alice");
    let printed = shown["url"].as_str().unwrap();
    assert!(
        printed.starts_with("http://127.0.0.1:8080/invite/"),
        "{printed}"
    );
    let text = ok(d, &["user", "invite", "alice"]);
    assert!(text.contains("give them this link"), "{text}");
    assert!(text.contains("/invite/"), "{text}");

    let sink = SmtpSink::start();
    let config = format!(
        "[password]\nmemory_kib = 64\niterations = 1\nparallelism = 1\n\
         [server]\nbase_url = \"https://idp.example.org\"\n\
         [smtp]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\n\
         from = \"Latchkey <idp@example.org>\"\n",
        sink.port()
    );
    std::fs::write(d.join("latchkey.toml"), config).unwrap();
    let text = ok(d, &["user", "invite", "alice@example.org"]);
    assert!(text.contains("mailed a link"), "{text}");
    assert!(
        !text.contains("/invite/"),
        "a mailed link is not printed: {text}"
    );
    let got = sink.wait_for(1, std::time::Duration::from_secs(5));
    assert_eq!(got[0].to, vec!["alice@example.org".to_owned()]);
    let body = got[0].text();
    let start = body
        .find("https://idp.example.org/invite/")
        .expect("link in mail");
    let url = body[start..].split_whitespace().next().unwrap().to_owned();
    let token = url.rsplit('/').next().unwrap().to_owned();

    // The mailed link (and only the newest) sets the password.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        use latchkey_idp::enrollment::{LinkKind, LinkLookup, LinkState};
        use latchkey_idp::password::Password;
        let config = latchkey_idp::Config::load(Some(&d.join("latchkey.toml"))).unwrap();
        let store = latchkey_idp::Store::open(&config).await.unwrap();
        let old = printed.rsplit('/').next().unwrap();
        assert_eq!(
            store
                .enrollment()
                .lookup(LinkKind::Invitation, old)
                .await
                .unwrap(),
            LinkLookup::Unusable(LinkState::Used)
        );
        store
            .enrollment()
            .redeem(
                LinkKind::Invitation,
                &token,
                Password::new("violet staple hinge"),
            )
            .await
            .unwrap();
        store.close().await;
    });
    let shown: serde_json::Value =
        serde_json::from_str(&ok(d, &["user", "show", "alice", "--json"])).unwrap();
    assert_eq!(shown["has_password"], true);
    let audit = ok(d, &["audit", "--json"]);
    assert!(audit.contains("user.invitation_redeemed"), "{audit}");
    assert!(audit.contains("cli:tester@"), "{audit}");

    // A server that refuses: the link is printed, the failure said, exit 3.
    sink.refuse(true);
    let out = latchkey(d, &["user", "invite", "alice"]);
    assert_eq!(out.status.code(), Some(3));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("https://idp.example.org/invite/"),
        "{stdout}"
    );
    assert!(stderr.contains("made but not mailed"), "{stderr}");

    // Clear text to a non-loopback host is refused at config check.
    std::fs::write(
        d.join("bad.toml"),
        "[smtp]\nhost = \"smtp.example.org\"\nsecurity = \"none\"\nfrom = \"idp@example.org\"\n",
    )
    .unwrap();
    let err = fails_with(d, &["config", "check", "bad.toml"], 2);
    assert!(err.contains("loopback"), "{err}");
}

#[test]
fn new_passwords_follow_the_policy() {
    let dir = workdir();
    let d = dir.path();
    for (pw, code) in [
        ("too short\n", "at least 12"),
        ("qwerty123456\n", "most common"),
    ] {
        let out = latchkey_with_stdin(
            d,
            &[
                "user",
                "add",
                "bob",
                "--email",
                "bob@example.org",
                "--password-stdin",
            ],
            pw,
        );
        assert_eq!(out.status.code(), Some(2), "{pw}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(code), "{err}");
    }
    let err = fails(d, &["user", "show", "bob"]);
    assert_eq!(err, "error: unknown user \"bob\"");
    // Allowed but guessable: set, with zxcvbn's advice on stderr; a strong one gets none.
    let out = latchkey_with_stdin(
        d,
        &[
            "user",
            "add",
            "bob",
            "--email",
            "bob@example.org",
            "--password-stdin",
        ],
        "qwertyuiop12\n",
    );
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("looks guessable"));
    let out = latchkey_with_stdin(d, &["user", "passwd", "bob"], "violet staple hinge orbit\n");
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn roles_are_granted_at_user_add_and_by_role_commands() {
    let dir = workdir();
    let d = dir.path();
    // A misspelt role is bad input and creates nobody.
    let err = fails_with(
        d,
        &[
            "user",
            "add",
            "root",
            "--email",
            "root@example.org",
            "--role",
            "god",
        ],
        2,
    );
    assert!(err.contains("role"), "{err}");
    assert_eq!(users_json(d).as_array().unwrap().len(), 0);

    ok(
        d,
        &[
            "user",
            "add",
            "root",
            "--email",
            "root@example.org",
            "--role",
            "admin",
        ],
    );
    ok(d, &["user", "add", "hd", "--email", "hd@example.org"]);
    ok(d, &["group", "add", "support"]);
    ok(d, &["role", "grant", "helpdesk", "--group", "support"]);
    ok(d, &["role", "grant", "auditor", "--user", "hd"]);
    let err = fails(d, &["role", "grant", "auditor", "--user", "hd"]);
    assert!(err.contains("already granted"), "{err}");
    let listed: serde_json::Value =
        serde_json::from_str(&ok(d, &["role", "list", "--json"])).unwrap();
    let rows: Vec<(String, String, String)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let s = |k: &str| g[k].as_str().unwrap().to_string();
            (s("role"), s("holder_kind"), s("holder_name"))
        })
        .collect();
    let expected = [
        ("admin", "user", "root"),
        ("helpdesk", "group", "support"),
        ("auditor", "user", "hd"),
    ]
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()));
    assert_eq!(rows, expected);
    ok(d, &["role", "revoke", "auditor", "--user", "hd"]);
    let table = ok(d, &["role", "list"]);
    assert!(!table.contains("auditor"), "{table}");
    let audit = ok(d, &["audit", "--json"]);
    assert!(
        audit.contains("role.grant") && audit.contains("role.revoke"),
        "{audit}"
    );
    // Exactly one holder is named.
    let out = latchkey(d, &["role", "grant", "admin"]);
    assert!(!out.status.success());
    // root is the only admin: the operator is told, and may go past it only with --force
    // (on the server, where `role grant` lets someone in again).
    let before = ok(d, &["audit", "--json"]);
    for args in [
        &["role", "revoke", "admin", "--user", "root"][..],
        &["user", "suspend", "root"],
        &["user", "delete", "root"],
    ] {
        let err = fails(d, args);
        assert!(
            err.contains("last_admin") && err.contains("no active admin"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(ok(d, &["audit", "--json"]), before);
    ok(d, &["role", "revoke", "admin", "--user", "root", "--force"]);
    assert!(!ok(d, &["role", "list"]).contains("admin"));
    ok(d, &["role", "grant", "admin", "--user", "hd"]);
}
