//! `latchkey bench list` end to end at a tiny scale: it seeds, serves, measures every page
//! through both doors, walks every listing and reads the server's memory, and says so in
//! its JSON report. A smoke test: no figure is held to a time here.

use std::process::Command;

/// The pages the report must measure, each through the API and the console.
const BOTH: [&str; 10] = [
    "users: first page",
    "users: middle page by cursor",
    "users: exact username",
    "users: username prefix",
    "users: family name",
    "group members: all staff",
    "group members: a department",
    "audit: newest",
    "audit: by event",
    "audit: one day last month",
];

#[test]
fn bench_list_reports_every_page_walk_and_memory_figure() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(["bench", "list", "--users", "200", "--audit", "2000"])
        .args(["--requests", "3", "--json", "--tmp"])
        .arg(tmp.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));

    assert_eq!(report["backend"], "sqlite");
    assert_eq!(report["users"], 200);
    // The history asked for, plus a line per user created and per membership (each user is
    // in the company-wide group and one department), and the seeding's own few.
    let audit_rows = report["audit_rows"].as_i64().unwrap();
    assert!(
        (2_000 + 200 * 3..2_000 + 200 * 3 + 200).contains(&audit_rows),
        "{audit_rows}"
    );

    let figures = report["figures"].as_array().unwrap();
    let via = |name: &str, surface: &str| {
        figures
            .iter()
            .find(|f| f["name"] == name && f["surface"] == surface)
            .unwrap_or_else(|| panic!("no {name} via {surface} in {figures:?}"))
    };
    for name in BOTH {
        for surface in ["api", "console"] {
            let f = via(name, surface);
            assert_eq!(f["errors"], 0, "{f}");
            assert_eq!(f["requests"], 3, "{f}");
            let (p50, p99) = (f["p50_ms"].as_f64().unwrap(), f["p99_ms"].as_f64().unwrap());
            assert!(p50 > 0.0 && p99 >= p50, "{f}");
        }
    }
    for (name, surface) in [
        ("audit: by actor", "api"),
        ("audit: by target (app)", "api"),
        ("audit: since yesterday", "api"),
        ("audit: by user", "console"),
        ("audit: by application", "console"),
        ("audit: since yesterday", "console"),
    ] {
        assert_eq!(via(name, surface)["errors"], 0);
    }
    // SCIM membership changes to the whole-company group, without `If-Match` and with it
    // (the ETag read without the members first), both measured against the page target.
    for name in [
        "SCIM PATCH: a member of all staff",
        "SCIM PATCH with If-Match: all staff",
    ] {
        let scim = via(name, "scim");
        assert_eq!(scim["errors"], 0, "{scim}");
        assert_eq!(scim["requests"], 3, "{scim}");
        assert!(scim["p50_ms"].as_f64().unwrap() > 0.0, "{scim}");
    }
    assert!(report["membership_seconds"].as_f64().unwrap() > 0.0);
    assert_eq!(figures.len(), 28, "{figures:?}");

    // Every walk saw every item once: the seeded users and the admin, every audit line.
    let walks = report["walks"].as_array().unwrap();
    let walk = |name: &str, surface: &str| {
        walks
            .iter()
            .find(|w| w["name"] == name && w["surface"] == surface)
            .unwrap_or_else(|| panic!("no walk of {name} via {surface}"))
    };
    assert_eq!(walk("users", "api")["items"], 201);
    assert_eq!(walk("users", "api")["pages"], 5);
    assert_eq!(walk("users", "console")["items"], 201);
    assert_eq!(walk("audit", "api")["items"], audit_rows);
    for w in walks {
        assert!(w["first_tenth_ms"].as_f64().unwrap() > 0.0, "{w}");
        assert!(w["ratio"].as_f64().unwrap() > 0.0, "{w}");
    }

    let idle = report["rss_idle_kib"].as_u64().unwrap();
    let after = report["rss_after_walk_kib"].as_u64().unwrap();
    let peak = report["rss_peak_kib"].as_u64().unwrap();
    assert!(idle > 1024 && after > 1024 && peak >= after, "{report}");
}
