//! Contract parsing: a contract that loads is one that makes sense.

use latchkey_sp::ContractError;
use latchkey_sp::jit::{Contract, FirstLogin, Ownership};

use crate::support::WIKI;

fn err(text: &str) -> ContractError {
    Contract::from_toml(text).expect_err("contract should be rejected")
}

#[test]
fn wiki_contract_loads_with_safe_defaults() {
    let c = Contract::from_toml(WIKI).unwrap();
    assert_eq!(c.on_first_login(), FirstLogin::Create);
    assert!(!c.link_by_email(), "linking by e-mail must be opt-in");
    assert_eq!(c.fields().len(), 4);
    assert_eq!(c.fields()[2].ownership, Ownership::CreateOnly);

    let empty = Contract::from_toml("").unwrap();
    assert_eq!(empty.on_first_login(), FirstLogin::Create);
    assert!(!empty.link_by_email());
}

#[test]
fn unknown_keys_are_rejected() {
    // A typo in a security setting must not silently fall back to the default.
    assert!(matches!(
        err("link_by_emial = true"),
        ContractError::Parse(_)
    ));
    assert!(matches!(
        err(
            "[[fields]]\nattribute = \"mail\"\nfield = \"email\"\nownership = \"idp\"\nrequird = true"
        ),
        ContractError::Parse(_)
    ));
    assert!(matches!(
        err("identity = { source = \"email\" }"),
        ContractError::Parse(_)
    ));
}

#[test]
fn every_rule_is_checked() {
    let field = |extra: &str| format!("[[fields]]\n{extra}\n");
    assert_eq!(
        err(
            &(field("attribute = \"a\"\nfield = \"x\"\nownership = \"idp\"")
                + &field("attribute = \"b\"\nfield = \"x\"\nownership = \"idp\""))
        ),
        ContractError::DuplicateField("x".to_owned())
    );
    assert_eq!(
        err(&field("field = \"x\"\nownership = \"create_only\"")),
        ContractError::FieldWithoutAttribute("x".to_owned())
    );
    assert_eq!(
        err(&field(
            "attribute = \"a\"\nfield = \"x\"\nownership = \"app\""
        )),
        ContractError::AppFieldWithAttribute("x".to_owned())
    );
    assert_eq!(
        err(&field(
            "field = \"x\"\nownership = \"app\"\nrequired = true"
        )),
        ContractError::AppFieldWithAttribute("x".to_owned())
    );
    assert_eq!(
        err(&field(
            "attribute = \"a\"\nfield = \"\"\nownership = \"idp\""
        )),
        ContractError::EmptyName("fields")
    );
    assert_eq!(
        err("[[roles]]\ngrant = \"admin\"\nwhen = { attribute = \"groups\" }"),
        ContractError::AmbiguousCondition("admin".to_owned())
    );
    assert_eq!(
        err(
            "[[roles]]\ngrant = \"admin\"\nwhen = { attribute = \"groups\", contains = \"a\", prefix = \"b\" }"
        ),
        ContractError::AmbiguousCondition("admin".to_owned())
    );
    assert_eq!(
        err("default_role = \"viewer\"\ndeny_when_no_role = true"),
        ContractError::DefaultRoleWithDeny
    );
    assert_eq!(err("link_by_email = true"), ContractError::LinkWithoutEmail);
    assert_eq!(
        err(&format!(
            "link_by_email = true\n{}",
            field("field = \"email\"\nownership = \"app\"")
        )),
        ContractError::LinkWithoutEmail
    );
    assert_eq!(
        err("identity = { source = \"attribute\", attribute = \"\" }"),
        ContractError::EmptyName("identity attribute")
    );
}

#[test]
fn contract_deserialises_as_a_table_of_a_larger_config() {
    #[derive(serde::Deserialize)]
    struct SpToml {
        provisioning: Contract,
    }
    let text = format!(
        "[provisioning]\n{}",
        "deny_when_no_role = true\nlink_by_email = false"
    );
    let sp: SpToml = toml::from_str(&text).unwrap();
    assert!(!sp.provisioning.link_by_email());
    let bad = "[provisioning]\ndefault_role = \"v\"\ndeny_when_no_role = true";
    let e = toml::from_str::<SpToml>(bad).err().unwrap().to_string();
    assert!(e.contains("cannot both be set"), "{e}");
}
