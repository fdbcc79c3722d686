//! README.md's "Running the IdP" recipe, run as written (only its two ports are swapped
//! for free ones, so parallel runs do not collide): the commands are read from the README's
//! code block, so the README cannot drift from what works, and the recipe must end with
//! alice signed in to the demo wiki through a real SAML round trip.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::collections::HashMap;
use std::process::{Command, Stdio};

use crate::shared::serve::free_port;

/// The text between the first `start` in `text` and the next `end`.
fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text
        .find(start)
        .unwrap_or_else(|| panic!("no {start:?} in {text}"))
        + start.len();
    let len = text[from..]
        .find(end)
        .unwrap_or_else(|| panic!("no {end:?} after {start:?} in {text}"));
    &text[from..from + len]
}

/// The shell block under "## Running the IdP".
fn recipe() -> String {
    let readme = include_str!("../../../../README.md");
    let section = between(readme, "## Running the IdP\n", "\n## ");
    between(section, "```sh\n", "\n```\n").to_owned()
}

/// Kills what the recipe left running in the background.
struct Background(Vec<String>);

impl Drop for Background {
    fn drop(&mut self) {
        for pid in &self.0 {
            let _ = Command::new("kill").arg(pid).status();
        }
    }
}

/// A cookie jar per host:port, enough for the IdP and the wiki.
#[derive(Default)]
struct Browser {
    jar: HashMap<String, HashMap<String, String>>,
    client: Option<reqwest::Client>,
}

struct Page {
    url: reqwest::Url,
    status: u16,
    body: String,
}

impl Browser {
    async fn send(&mut self, url: &str, form: Option<&[(&str, &str)]>) -> Page {
        let client = self
            .client
            .get_or_insert_with(|| {
                reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .unwrap()
            })
            .clone();
        let mut url = reqwest::Url::parse(url).unwrap();
        let mut form = form.map(|f| {
            f.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<Vec<_>>()
        });
        for _ in 0..20 {
            let host = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
            let cookies = self
                .jar
                .get(&host)
                .map(|c| {
                    c.iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .unwrap_or_default();
            let request = match form.take() {
                Some(fields) => client.post(url.clone()).form(&fields),
                None => client.get(url.clone()),
            };
            let response = request
                .header("cookie", cookies)
                .header("sec-fetch-site", "same-origin")
                .send()
                .await
                .unwrap();
            for set in response.headers().get_all("set-cookie") {
                let pair = set.to_str().unwrap().split(';').next().unwrap();
                let (name, value) = pair.split_once('=').unwrap();
                self.jar
                    .entry(host.clone())
                    .or_default()
                    .insert(name.to_owned(), value.to_owned());
            }
            let status = response.status().as_u16();
            if (300..400).contains(&status) {
                let location = response.headers()["location"].to_str().unwrap().to_owned();
                url = url.join(&location).unwrap();
                continue;
            }
            let body = response.text().await.unwrap();
            return Page { url, status, body };
        }
        panic!("too many redirects");
    }
}

/// A hidden field's value in a page (our pages escape `&`, which these values never hold).
fn field(page: &Page, name: &str) -> String {
    between(&page.body, &format!("name=\"{name}\" value=\""), "\"").replace("&amp;", "&")
}

#[test]
fn the_readme_recipe_ends_in_a_working_login() {
    let dir = tempfile::tempdir().unwrap();
    let (idp_port, wiki_port) = (free_port(), free_port());
    let script = recipe()
        .replace("8080", &idp_port.to_string())
        .replace("8081", &wiki_port.to_string());
    assert!(script.contains("latchkey demo-app wiki"), "{script}");
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_latchkey"), bin.join("latchkey")).unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    std::fs::write(
        work.join("recipe.sh"),
        format!("set -e\n{script}\njobs -p > pids\n"),
    )
    .unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let log = std::fs::File::create(dir.path().join("recipe.log")).unwrap();
    let status = Command::new("timeout")
        .args(["180", "bash", "recipe.sh"])
        .current_dir(&work)
        .env("PATH", path)
        .env_remove("LATCHKEY_CONFIG")
        .env_remove("DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .status()
        .unwrap();
    let pids = std::fs::read_to_string(work.join("pids")).unwrap_or_default();
    let _background = Background(pids.split_whitespace().map(str::to_owned).collect());
    let output = std::fs::read_to_string(dir.path().join("recipe.log")).unwrap();
    assert!(status.success(), "the recipe failed:\n{output}");
    assert_eq!(_background.0.len(), 2, "serve and the wiki run: {output}");
    assert!(output.contains("the application expects:"), "{output}");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let wiki = format!("http://localhost:{wiki_port}");
        let mut b = Browser::default();
        // The wiki sends the browser to the IdP, which asks alice to sign in.
        let form = b.send(&format!("{wiki}/login"), None).await;
        assert_eq!(form.status, 200, "{}", form.body);
        assert_eq!(form.url.port(), Some(idp_port), "{}", form.url);
        assert!(form.body.contains("name=\"password\""), "{}", form.body);
        let password = between(&recipe(), "<<< '", "'").to_owned();
        let action = form.url.join("/login").unwrap();
        let csrf = field(&form, "csrf");
        let cont = field(&form, "continue");
        let answer = b
            .send(
                action.as_str(),
                Some(&[
                    ("username", "alice"),
                    ("password", &password),
                    ("csrf", &csrf),
                    ("continue", &cont),
                ]),
            )
            .await;
        // The IdP's auto-POST page carries her assertion to the wiki's ACS.
        assert_eq!(answer.status, 200, "{}", answer.body);
        let acs = between(&answer.body, "action=\"", "\"").to_owned();
        assert_eq!(acs, format!("{wiki}/saml/acs"));
        let saml_response = field(&answer, "SAMLResponse");
        let mut fields = vec![("SAMLResponse", saml_response.as_str())];
        let relay = answer
            .body
            .contains("name=\"RelayState\"")
            .then(|| field(&answer, "RelayState"));
        if let Some(relay) = &relay {
            fields.push(("RelayState", relay));
        }
        let home = b.send(&acs, Some(&fields)).await;
        assert_eq!(home.status, 200, "{}", home.body);
        let me = b.send(&format!("{wiki}/whoami"), None).await;
        let me: serde_json::Value = serde_json::from_str(&me.body).unwrap();
        assert_eq!(me["authenticated"], true, "{me}");
        assert!(me.to_string().contains("alice@example.org"), "{me}");
    });
}
