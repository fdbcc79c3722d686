//! The role table, checked cell by cell against the words.

use super::{Permission as P, Role, RoleSet};

#[test]
fn each_role_permits_exactly_its_part() {
    let helpdesk = [P::ReadDirectory, P::WriteUsers, P::WriteGroupMembers];
    let auditor = [P::ReadDirectory, P::ReadApps, P::ReadAudit];
    for p in P::ALL {
        assert!(Role::Admin.permits(p), "admin {p:?}");
        assert_eq!(
            Role::Helpdesk.permits(p),
            helpdesk.contains(&p),
            "helpdesk {p:?}"
        );
        assert_eq!(
            Role::Auditor.permits(p),
            auditor.contains(&p),
            "auditor {p:?}"
        );
    }
    assert!(!RoleSet::default().allows(P::ReadDirectory));
}

#[test]
fn helpdesk_cannot_reach_a_console_user_or_a_role_group() {
    let helpdesk = RoleSet::new([Role::Helpdesk]);
    let admin = RoleSet::new([Role::Admin]);
    let auditor = RoleSet::new([Role::Auditor]);
    assert!(helpdesk.may_change_user(&RoleSet::default()));
    assert!(!helpdesk.may_change_user(&auditor));
    assert!(admin.may_change_user(&auditor));
    assert!(!auditor.may_change_user(&RoleSet::default()));
    assert!(helpdesk.may_change_members(&[]));
    assert!(!helpdesk.may_change_members(&[Role::Admin]));
    assert!(admin.may_change_members(&[Role::Admin]));
}

#[test]
fn role_names_parse_in_any_case_and_nothing_else() {
    assert_eq!(Role::parse(" Admin ").unwrap(), Role::Admin);
    assert!(Role::parse("root").is_err());
}
