use latchkey_idp::Error;
use latchkey_idp::directory::{AttributeValue, NewGroup, UserStatus};

use super::{admin, snapshot};
use crate::on_both_backends;
use crate::support::TestStore;

on_both_backends!(
    import_creates_then_changes_nothing,
    import_updates_only_what_differs,
    bad_email_row_leaves_store_unchanged,
    unknown_group_row_leaves_store_unchanged,
    duplicate_within_file_is_refused,
    spreadsheet_exports_are_accepted,
);

const USERS: &str = "\
username,email,given_name,family_name,groups,department
alice,alice@example.org,Alice,Liddell,staff;wiki-editors,R&D
bob,bob@example.org,Bob,,staff,
";

async fn groups(t: &TestStore) {
    for name in ["staff", "wiki-editors"] {
        t.store
            .groups()
            .create(&admin(), NewGroup::new(name))
            .await
            .unwrap();
    }
}

async fn import_creates_then_changes_nothing(t: TestStore) {
    groups(&t).await;
    let report = t
        .store
        .users()
        .import_csv(&admin(), USERS.as_bytes())
        .await
        .unwrap();
    assert_eq!(report.created, ["alice", "bob"]);
    assert_eq!(report.memberships_added, 3);
    let alice = t
        .store
        .users()
        .find_by_username("alice")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(alice.family_name.as_deref(), Some("Liddell"));
    assert_eq!(
        alice.attributes.get("department"),
        Some(&AttributeValue::One("R&D".into()))
    );
    let bob = t
        .store
        .users()
        .find_by_username("bob")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bob.family_name, None);
    assert!(bob.attributes.is_empty());

    let before = snapshot(&t.store).await;
    let again = t
        .store
        .users()
        .import_csv(&admin(), USERS.as_bytes())
        .await
        .unwrap();
    assert!(!again.changed_anything(), "{again:?}");
    assert_eq!(again.unchanged, 2);
    assert_eq!(snapshot(&t.store).await, before);
}

async fn import_updates_only_what_differs(t: TestStore) {
    groups(&t).await;
    t.store
        .users()
        .import_csv(&admin(), USERS.as_bytes())
        .await
        .unwrap();
    let changed = "\
username,email,status
ALICE,alice@example.org,suspended
bob,bob@example.org,active
";
    let report = t
        .store
        .users()
        .import_csv(&admin(), changed.as_bytes())
        .await
        .unwrap();
    // Rows match users case-insensitively; the file's spelling wins, as for every column.
    assert_eq!(report.updated, ["ALICE"]);
    assert_eq!(report.unchanged, 1);
    let alice = t
        .store
        .users()
        .find_by_username("alice")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(alice.username, "ALICE");
    assert_eq!(alice.status, UserStatus::Suspended);
    // Columns absent from the file are left alone.
    assert_eq!(alice.given_name.as_deref(), Some("Alice"));
    assert_eq!(alice.attributes.len(), 1);
}

async fn bad_email_row_leaves_store_unchanged(t: TestStore) {
    groups(&t).await;
    let before = snapshot(&t.store).await;
    let csv = "\
username,email
carol,carol@example.org
dave,dave-at-example.org
";
    let err = t
        .store
        .users()
        .import_csv(&admin(), csv.as_bytes())
        .await
        .unwrap_err();
    match &err {
        Error::ImportRow { line, source } => {
            assert_eq!(*line, 3);
            assert!(
                matches!(**source, Error::InvalidField { field: "email", .. }),
                "{source:?}"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        err.to_string().starts_with("line 3: invalid email"),
        "{err}"
    );
    assert_eq!(snapshot(&t.store).await, before);
}

async fn unknown_group_row_leaves_store_unchanged(t: TestStore) {
    groups(&t).await;
    let before = snapshot(&t.store).await;
    let csv = "\
username,email,groups
carol,carol@example.org,staff
dave,dave@example.org,staff;no-such-group
";
    let err = t
        .store
        .users()
        .import_csv(&admin(), csv.as_bytes())
        .await
        .unwrap_err();
    match &err {
        Error::ImportRow { line: 3, source } => {
            assert!(matches!(&**source, Error::UnknownGroup { name } if name == "no-such-group"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(snapshot(&t.store).await, before);
}

async fn duplicate_within_file_is_refused(t: TestStore) {
    let before = snapshot(&t.store).await;
    let csv = "username,email\ncarol,carol@example.org\nCarol,other@example.org\n";
    let err = t
        .store
        .users()
        .import_csv(&admin(), csv.as_bytes())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::ImportRow { line: 3, source } if matches!(**source, Error::DuplicateUsername { .. })),
        "{err:?}"
    );
    let csv = "username,email\nerin,erin@example.org\nfrank,ERIN@example.org\n";
    let err = t
        .store
        .users()
        .import_csv(&admin(), csv.as_bytes())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::ImportRow { line: 3, source } if matches!(**source, Error::DuplicateEmail { .. })),
        "{err:?}"
    );
    // An e-mail already held by another user in the store is caught inside the transaction.
    t.store
        .users()
        .create(
            &admin(),
            latchkey_idp::directory::NewUser::new("gina", "gina@example.org"),
        )
        .await
        .unwrap();
    let before_dup = snapshot(&t.store).await;
    let csv = "username,email\nhank,hank@example.org\nivan,GINA@example.org\n";
    let err = t
        .store
        .users()
        .import_csv(&admin(), csv.as_bytes())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::ImportRow { line: 3, source } if matches!(**source, Error::DuplicateEmail { .. })),
        "{err:?}"
    );
    assert_eq!(snapshot(&t.store).await, before_dup);
    assert_ne!(before, before_dup);
}

async fn spreadsheet_exports_are_accepted(t: TestStore) {
    // A UTF-8 byte-order mark, CRLF line ends, header case and padding, quoted cells.
    let csv =
        "\u{feff}Username , EMAIL,Display_Name\r\nerin,erin@example.org,\"Erin, the Red\"\r\n";
    let report = t
        .store
        .users()
        .import_csv(&admin(), csv.as_bytes())
        .await
        .unwrap();
    assert_eq!(report.created, ["erin"]);
    let erin = t
        .store
        .users()
        .find_by_username("erin")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(erin.display_name.as_deref(), Some("Erin, the Red"));
    assert!(erin.attributes.is_empty(), "{:?}", erin.attributes);
}
