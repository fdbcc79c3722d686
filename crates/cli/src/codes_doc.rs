//! `docs/error-codes.md`, generated from the code enums, and a test that fails when the page
//! is stale. `LATCHKEY_BLESS=1 cargo test -p latchkey error_codes_page` rewrites it.

use std::fmt::Write as _;

use latchkey_idp::{ErrorCode, PageCode};
use latchkey_sp::Code as SpCode;

use crate::Exit;

fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// The whole page.
fn page() -> String {
    let mut md = String::new();
    md.push_str(
        "# Error codes\n\n\
         Generated from the code enums by `cargo test -p latchkey error_codes_page` (which fails \
         when this page is stale; `LATCHKEY_BLESS=1` rewrites it). Do not edit by hand.\n\n\
         Each surface has one vocabulary. A code is stable across versions; the message \
         beside it may be reworded. Pages show the code and an operation ID, never the \
         detail: the log line (and, at an SP, the audit event) under the same operation ID \
         has it.\n\n",
    );

    md.push_str(
        "## `latchkey` exit status\n\n\
         | status | meaning |\n|---|---|\n\
         | 0 | Done (a write to a closed pipe, as in `latchkey ... \\| head`, also ends with 0). |\n",
    );
    for exit in Exit::ALL {
        let _ = writeln!(md, "| {} | {} |", exit as u8, cell(exit.meaning()));
    }
    md.push_str(
        "\nClap's usage errors exit 2. An admin command's status follows the class of its \
         code in the admin table below; `latchkey saml verify` exits 1 when a rule refuses \
         the Response and prints the SAML code.\n\n",
    );

    md.push_str(
        "## SP toolkit and the pages built on it (`latchkey_sp::Code`)\n\n\
         SCREAMING_SNAKE. What an SP's error page shows, its log line and its audit event \
         carry, and what `latchkey saml verify` prints. Three homes joined in one vocabulary: \
         the SAML layer (`latchkey_saml::Code`), the JIT refusals (`RefusalCode`) and the \
         toolkit's own (`ToolkitCode`).\n\n\
         | code | from | meaning |\n|---|---|---|\n",
    );
    for code in SpCode::all() {
        let from = match code {
            SpCode::Saml(_) => "SAML",
            SpCode::Jit(_) => "JIT",
            SpCode::Toolkit(_) => "toolkit",
            _ => "?",
        };
        let _ = writeln!(
            md,
            "| `{}` | {from} | {} |",
            code.as_str(),
            cell(code.meaning())
        );
    }
    md.push_str("\nThe demo apps add their own page codes:\n\n| code | meaning |\n|---|---|\n");
    for code in latchkey_demo_apps::DemoCode::ALL {
        let _ = writeln!(md, "| `{}` | {} |", code.as_str(), cell(code.meaning()));
    }

    md.push_str(
        "\n## Readiness checks (`/readyz`)\n\n\
         snake_case. Each check of a `/readyz` answer is `\"ok\"` or one of these: anyone may \
         ask, so the answer never carries an error's text; the log line (`not ready`, or \
         the probe's own) has it. An SP built on the toolkit (the demo apps) uses \
         `latchkey_sp::health::ReadyCode`:\n\n\
         | code | meaning |\n|---|---|\n",
    );
    for code in latchkey_sp::health::ReadyCode::ALL {
        let _ = writeln!(md, "| `{}` | {} |", code.as_str(), cell(code.meaning()));
    }
    md.push_str("\nThe IdP (`latchkey_idp_web::ReadyCode`):\n\n| code | meaning |\n|---|---|\n");
    for code in latchkey_idp_web::ReadyCode::ALL {
        let _ = writeln!(md, "| `{}` | {} |", code.as_str(), cell(code.meaning()));
    }

    md.push_str(
        "\n## SCIM servers (`latchkey_sp::scim::ScimType`)\n\n\
         camelCase, from RFC 7644 table 9. The `scimType` of a SCIM error answer (with its \
         HTTP status, 400 unless said); 401, 404, 412, 413 and 503 answers have none. A \
         write the provisioning contract refuses names the JIT code above in its `detail`.\n\n\
         | scimType | meaning |\n|---|---|\n",
    );
    for code in latchkey_sp::scim::ScimType::ALL {
        let _ = writeln!(md, "| `{}` | {} |", code.as_str(), cell(code.meaning()));
    }

    md.push_str(
        "\n## IdP browser pages (`latchkey_idp::PageCode`)\n\n\
         `AREA-WORD`. Shown on the IdP's error pages beside the operation ID, carried by their \
         log lines, and counted by `latchkey_failures_total{reason}` (with the refusals the \
         IdP answers to an application as a SAML status). A page for an admin-side failure \
         shows `WEB-BUSY` or `WEB-INTERNAL`; its log line carries the admin code.\n\n\
         | code | meaning |\n|---|---|\n",
    );
    for code in PageCode::ALL {
        let _ = writeln!(md, "| `{}` | {} |", code.as_str(), cell(code.meaning()));
    }

    md.push_str(
        "\n## Passkeys and security keys (`latchkey_idp::webauthn::Code`)\n\n\
         `WEBAUTHN-WORD`. Answered as `{\"code\": ...}` by the IdP's WebAuthn JSON endpoints \
         (with an operation ID) and carried by their log and audit lines.\n\n\
         | code | meaning |\n|---|---|\n",
    );
    for code in latchkey_idp::webauthn::Code::ALL {
        let _ = writeln!(md, "| `{}` | {} |", code.as_str(), cell(code.meaning()));
    }

    md.push_str(
        "\n## Admin API and CLI (`latchkey_idp::ErrorCode`)\n\n\
         snake_case, part of the admin API's contract. `latchkey_idp::Error::code()` is one \
         of these; the API sends it as `error` and the CLI exits with its class. A server \
         fault (HTTP 500) is answered `internal` with an operation ID, and its own code goes \
         only to the log line under that ID. Codes marked API come from the request's shape \
         and only the API sends them.\n\n\
         | code | HTTP status | exit status | meaning |\n|---|---|---|---|\n",
    );
    for &code in ErrorCode::ALL {
        let status = latchkey_idp_web::api::error::status(code);
        let http = if latchkey_idp_web::api::error::answered_as_internal(code)
            && code != ErrorCode::Internal
        {
            format!("{} (as `internal`)", status.as_u16())
        } else {
            status.as_u16().to_string()
        };
        let exit = match code.class() {
            latchkey_idp::Class::Refused => Exit::Refused,
            latchkey_idp::Class::BadInput => Exit::BadInput,
            latchkey_idp::Class::Unavailable => Exit::Unavailable,
        } as u8;
        let _ = writeln!(
            md,
            "| `{}` | {http} | {exit} | {} |",
            code.as_str(),
            cell(code.meaning())
        );
    }
    md
}

#[test]
fn error_codes_page() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/error-codes.md");
    let want = page();
    if std::env::var_os("LATCHKEY_BLESS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &want).unwrap();
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    if have != want {
        let line = have
            .lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| have.lines().count().min(want.lines().count()));
        panic!(
            "docs/error-codes.md is stale (first difference at line {}); regenerate it with \
             LATCHKEY_BLESS=1 cargo test -p latchkey error_codes_page",
            line + 1
        );
    }
}

#[test]
fn every_code_appears_once_per_surface() {
    let page = page();
    for code in SpCode::all() {
        let cell = format!("| `{}` |", code.as_str());
        assert_eq!(page.matches(&cell).count(), 1, "{code}");
    }
    for code in PageCode::ALL {
        assert!(page.contains(&format!("| `{}` |", code.as_str())), "{code}");
    }
    for code in latchkey_idp::webauthn::Code::ALL {
        assert!(page.contains(&format!("| `{}` |", code.as_str())), "{code}");
    }
    for code in ErrorCode::ALL {
        assert!(page.contains(&format!("| `{}` |", code.as_str())), "{code}");
    }
}
