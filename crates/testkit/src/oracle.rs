//! The external programs the `oracles` test targets compare us against, found in one place.
//!
//! Every crate's `cargo test -p <crate>` runs without them; `cargo test -p <crate> --test
//! oracles` needs them, and a test that cannot find one fails with a message naming what is
//! missing and how to get it, never a silent skip. `./scripts/test` installs everything:
//! Debian packages (xmlsec1, PostgreSQL, Chromium, Shibboleth) and the Python venv
//! `target/oracle-venv` with lxml, cryptography, pysaml2, python3-saml,
//! openapi-spec-validator and pyotp (`tests/interop/requirements.txt`).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

/// How to get every oracle, appended to each "missing" message.
pub const HOW_TO_GET: &str = "`./scripts/test` installs every oracle (Debian packages and the \
     Python venv target/oracle-venv); to run only the oracles afterwards: \
     LATCHKEY_PYTHON=target/oracle-venv/bin/python cargo test -p <crate> --test oracles";

/// Fails the calling test: `needs` names the missing program, `why` what went wrong.
#[track_caller]
pub fn missing(needs: &str, why: &str) -> ! {
    panic!("this oracle test needs {needs}, and {why}.\n{HOW_TO_GET}")
}

/// The oracle Python as configured: `$LATCHKEY_PYTHON`, else `python3` from `PATH`.
pub fn python_path() -> String {
    std::env::var("LATCHKEY_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

static IMPORTABLE: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// The oracle Python, checked to import every module in `modules` (e.g. `["saml2"]` for
/// pysaml2, `["onelogin.saml2"]` for python3-saml, `["lxml"]`); fails the test with what is
/// missing otherwise. Each module is checked once per test binary.
#[track_caller]
pub fn python(modules: &[&str]) -> String {
    let python = python_path();
    let unchecked: Vec<&str> = {
        let known = IMPORTABLE.lock().unwrap_or_else(|e| e.into_inner());
        modules
            .iter()
            .copied()
            .filter(|m| !known.contains(*m))
            .collect()
    };
    if unchecked.is_empty() {
        return python;
    }
    let wanted = unchecked.join(", ");
    let needs = format!("a Python that imports {wanted} (LATCHKEY_PYTHON, else python3)");
    let out = Command::new(&python)
        .arg("-c")
        .arg(format!("import {wanted}"))
        .output()
        .unwrap_or_else(|e| missing(&needs, &format!("{python:?} cannot be run: {e}")));
    if !out.status.success() {
        missing(
            &needs,
            &format!(
                "{python:?} cannot import them:\n{}",
                String::from_utf8_lossy(&out.stderr).trim_end()
            ),
        );
    }
    IMPORTABLE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .extend(unchecked.iter().map(|m| (*m).to_owned()));
    python
}

/// The `xmlsec1` program: `$LATCHKEY_XMLSEC1`, else `xmlsec1` from `PATH` (Debian package
/// `xmlsec1`); fails the test if it does not run.
#[track_caller]
pub fn xmlsec1() -> PathBuf {
    let bin = std::env::var_os("LATCHKEY_XMLSEC1")
        .map_or_else(|| PathBuf::from("xmlsec1"), PathBuf::from);
    match Command::new(&bin).arg("--version").output() {
        Ok(out) if out.status.success() => bin,
        Ok(out) => missing(
            "xmlsec1 (Debian package xmlsec1, or LATCHKEY_XMLSEC1=<path>)",
            &format!("{} --version exited with {}", bin.display(), out.status),
        ),
        Err(e) => missing(
            "xmlsec1 (Debian package xmlsec1, or LATCHKEY_XMLSEC1=<path>)",
            &format!("{} cannot be run: {e}", bin.display()),
        ),
    }
}
