//! Who needs a second factor, and whether a session has what a sign-in needs.
//!
//! A second factor is required for a sign-in when any of these says so: the whole IdP
//! (`[mfa] required`), the application (`app set APP --require-mfa true`; the portal is no
//! application and needs only what the global and user rules ask), a group the user is in
//! (`group set GROUP --require-mfa true`), or the user (`user mfa require USER`). So
//! "payroll needs MFA, the wiki doesn't": one session signs in to the wiki with a password,
//! and steps up when it opens payroll.
//!
//! [`decide`] is the one pure decision: from what is required, what the user has enrolled,
//! what the session used and what the request asks for ([`latchkey_saml::authn_context`]),
//! it says satisfied (with the class to state), step up, enrol first, or not satisfiable.
//! [`MfaPolicy::decide`] loads its inputs from the store.

use latchkey_saml::authn_context::{self, ContextDecision, MfaClass, Strength};
use latchkey_saml::authn_request::RequestedAuthnContext;
use serde::{Deserialize, Serialize};

use super::{Factors, Methods};
use crate::apps::Application;
use crate::audit::{self, Actor, Change};
use crate::directory::{Group, User, VersionedGroup, groups, users};
use crate::error::{Error, Result};
use crate::ids::AppId;
use crate::store::{self, Store};

/// What a sign-in is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The IdP's own pages: the portal (and the account page).
    Portal,
    /// An application.
    App(AppId),
}

/// Where the rules that require a second factor of one holder (a group's members, or a
/// user) are kept, and how a change to one is audited.
struct HolderRule {
    table: &'static str,
    key: &'static str,
    action: &'static str,
    target_kind: &'static str,
}

const GROUP_RULE: HolderRule = HolderRule {
    table: "mfa_group_policy",
    key: "group_id",
    action: "group.mfa_policy",
    target_kind: "group",
};

const USER_RULE: HolderRule = HolderRule {
    table: "mfa_user_policy",
    key: "user_id",
    action: "user.mfa_required",
    target_kind: "user",
};

/// An application's settings (the defaults when none were set), read on `exec`.
async fn app_in<'e, E>(exec: E, app: AppId) -> Result<AppMfa>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let row: Option<(i64, String)> =
        sqlx::query_as("SELECT require_mfa, mfa_class FROM mfa_app_policy WHERE app_id = $1")
            .bind(app.to_db())
            .fetch_optional(exec)
            .await?;
    let Some((require, class)) = row else {
        return Ok(AppMfa::default());
    };
    Ok(AppMfa {
        require_mfa: store::flag(require),
        mfa_class: class_name::parse(&class)
            .ok_or_else(|| Error::corrupt("mfa_app_policy.mfa_class", &class))?,
    })
}

/// Whether a holder's rule requires a second factor, read on `exec`.
async fn holder_requires_in<'e, E>(exec: E, rule: &HolderRule, key: &str) -> Result<bool>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let v: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT require_mfa FROM {} WHERE {} = $1",
        rule.table, rule.key
    )))
    .bind(key)
    .fetch_optional(exec)
    .await?;
    Ok(v.is_some_and(store::flag))
}

/// Why a second factor is required (for the log and the enrolment page).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "by", content = "name")]
pub enum Reason {
    /// `[mfa] required`.
    Global,
    /// An admin required it of this user.
    User,
    /// A group the user is in.
    Group(String),
    /// The application.
    App,
}

/// Whether a second factor is required, and by what.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Requirement {
    /// Every rule that requires one (empty: none does).
    pub reasons: Vec<Reason>,
}

impl Requirement {
    /// Whether any rule requires a second factor.
    pub fn required(&self) -> bool {
        !self.reasons.is_empty()
    }
}

/// An application's MFA settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AppMfa {
    /// Every sign-in to it needs a second factor.
    pub require_mfa: bool,
    /// The multi-factor class its assertions state when it does not ask for one.
    #[serde(with = "class_name")]
    pub mfa_class: MfaClass,
}

/// `refeds` or `mobile_two_factor`, as stored, in the API and on the command line.
pub mod class_name {
    use latchkey_saml::authn_context::MfaClass;
    use serde::{Deserialize, Deserializer, Serializer};

    /// The name of a class.
    pub fn as_str(class: MfaClass) -> &'static str {
        match class {
            MfaClass::RefedsMfa => "refeds",
            MfaClass::MobileTwoFactorContract => "mobile_two_factor",
        }
    }

    /// A class by name.
    pub fn parse(name: &str) -> Option<MfaClass> {
        match name {
            "refeds" => Some(MfaClass::RefedsMfa),
            "mobile_two_factor" => Some(MfaClass::MobileTwoFactorContract),
            _ => None,
        }
    }

    pub(super) fn serialize<S: Serializer>(c: &MfaClass, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(as_str(*c))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<MfaClass, D::Error> {
        let name = String::deserialize(d)?;
        parse(&name)
            .ok_or_else(|| serde::de::Error::custom("expected \"refeds\" or \"mobile_two_factor\""))
    }
}

/// Everything [`decide`] looks at.
#[derive(Debug, Clone, Copy)]
pub struct Situation<'a> {
    /// Whether a second factor is required for this sign-in.
    pub required: bool,
    /// Whether the user has a confirmed factor to step up with.
    pub has_factor: bool,
    /// What the session's authentication used.
    pub methods: &'a Methods,
    /// What the SP's AuthnRequest asked for, if anything.
    pub requested: Option<&'a RequestedAuthnContext>,
    /// The IdP's public URL is `https://`.
    pub protected_transport: bool,
    /// The application's multi-factor class.
    pub mfa_class: MfaClass,
}

/// What a sign-in needs before an assertion may be issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MfaDecision {
    /// Issue now, stating this `AuthnContextClassRef`.
    Satisfied {
        /// The class to state.
        class: &'static str,
    },
    /// A second factor in this session (the user has one).
    StepUp,
    /// A second factor is needed and the user has none: enrol one first (then it counts as
    /// the step-up).
    Enrol,
    /// Nothing this IdP offers meets the request: answer `NoAuthnContext`.
    Unsatisfiable,
}

/// The decision (module docs). Pure.
pub fn decide(s: Situation<'_>) -> MfaDecision {
    let strength = Strength {
        protected_transport: s.protected_transport,
        multi_factor: s.methods.multi_factor(),
        mfa_class: s.mfa_class,
    };
    let second = || {
        if s.has_factor {
            MfaDecision::StepUp
        } else {
            MfaDecision::Enrol
        }
    };
    match authn_context::decide(s.requested, strength) {
        ContextDecision::Unsatisfiable => MfaDecision::Unsatisfiable,
        ContextDecision::StepUp => second(),
        ContextDecision::Satisfied(_) if s.required && !strength.multi_factor => {
            // Required, so the session steps up; the request must still be met after it.
            match authn_context::decide(s.requested, strength.stepped_up()) {
                ContextDecision::Satisfied(_) => second(),
                _ => MfaDecision::Unsatisfiable,
            }
        }
        ContextDecision::Satisfied(class) => MfaDecision::Satisfied { class },
    }
}

/// The stored inputs of [`decide`] for one user at one application: what [`MfaPolicy::decide`]
/// reads in four statements, read instead with everything else a sign-in needs in one
/// (see [`crate::sso::grant`]), so the SSO path pays no statement of its own for the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MfaFacts {
    /// An admin required a second factor of this user.
    pub user_required: bool,
    /// A group the user is in requires one.
    pub group_required: bool,
    /// The application's settings.
    pub app: AppMfa,
    /// The user has a confirmed factor to step up with ([`super::Available::any_factor`]).
    pub has_factor: bool,
}

impl MfaFacts {
    /// [`decide`] on these facts: the same answer as [`MfaPolicy::decide`] for the
    /// application they were read for, when the store has not changed in between.
    pub fn decide(
        &self,
        methods: &Methods,
        requested: Option<&RequestedAuthnContext>,
        global: bool,
        protected_transport: bool,
    ) -> MfaDecision {
        decide(Situation {
            required: global || self.user_required || self.group_required || self.app.require_mfa,
            has_factor: self.has_factor,
            methods,
            requested,
            protected_transport,
            mfa_class: self.app.mfa_class,
        })
    }
}

/// The MFA policy in a store.
#[derive(Debug, Clone, Copy)]
pub struct MfaPolicy<'s> {
    store: &'s Store,
}

impl<'s> MfaPolicy<'s> {
    /// The policy in `store`.
    pub fn new(store: &'s Store) -> Self {
        MfaPolicy { store }
    }

    /// An application's settings (the defaults when none were set).
    pub async fn app(&self, app: AppId) -> Result<AppMfa> {
        app_in(self.store.pool(), app).await
    }

    /// Sets an application's settings; audited as `app.mfa_policy` with before and after.
    /// The application's row lock is taken first (PostgreSQL; SQLite's write transaction
    /// holds the database) and `before` read under it, so two changes at once audit what
    /// each replaced.
    pub async fn set_app(&self, actor: &Actor, app: &Application, to: AppMfa) -> Result<()> {
        let now = self.store.now();
        let mut tx = self.store.begin().await?;
        if store::Backend::of(store::conn(&mut tx)) == store::Backend::Postgres {
            sqlx::query("SELECT 1 FROM applications WHERE id = $1 FOR NO KEY UPDATE")
                .bind(app.id.to_db())
                .execute(&mut *tx)
                .await?;
        }
        let before = app_in(&mut *tx, app.id).await?;
        sqlx::query(
            "INSERT INTO mfa_app_policy (app_id, require_mfa, mfa_class) VALUES ($1, $2, $3) \
             ON CONFLICT (app_id) DO UPDATE SET require_mfa = excluded.require_mfa, \
             mfa_class = excluded.mfa_class",
        )
        .bind(app.id.to_db())
        .bind(store::to_flag(to.require_mfa))
        .bind(class_name::as_str(to.mfa_class))
        .execute(&mut *tx)
        .await?;
        audit::record(
            store::conn(&mut tx),
            actor,
            now,
            Change {
                action: "app.mfa_policy",
                target_kind: "app",
                target_id: app.id.to_string(),
                target_name: app.settings.entity_id.clone(),
                before: audit::snapshot(&before),
                after: audit::snapshot(&to),
            },
        )
        .await?;
        store::commit(tx).await
    }

    /// Whether a group's members need a second factor.
    pub async fn group_requires(&self, group: &Group) -> Result<bool> {
        self.holder_requires(&GROUP_RULE, &group.id.to_db()).await
    }

    /// Requires (or stops requiring) a second factor of a group's members; audited as
    /// `group.mfa_policy`.
    pub async fn set_group(&self, actor: &Actor, group: &Group, require: bool) -> Result<()> {
        self.set_group_if(actor, group, require, |_| true).await?;
        Ok(())
    }

    /// [`MfaPolicy::set_group`] from what a client saw (an API `If-Match`): the group's row
    /// lock is taken first in the write's transaction and, unless `admits` the group as it
    /// is now (its fields and members' version, [`VersionedGroup::version`]), nothing is
    /// written ([`Error::ChangedSince`]); a group deleted meanwhile is
    /// [`Error::UnknownGroup`]. Answers the group as it was locked (the rule is no part of
    /// its version).
    pub async fn set_group_if(
        &self,
        actor: &Actor,
        group: &Group,
        require: bool,
        admits: impl FnOnce(&VersionedGroup) -> bool,
    ) -> Result<VersionedGroup> {
        let holder = (group.id.to_db(), group.id.to_string(), group.name.clone());
        let id = group.id;
        let unknown = || Error::UnknownGroup {
            name: group.name.clone(),
        };
        let mut locked = None;
        self.set_holder_checked(&GROUP_RULE, actor, holder, require, async |conn| {
            if !groups::lock_id(&mut *conn, id).await? {
                return Err(unknown());
            }
            let now = groups::fetch_versioned(&mut *conn, id)
                .await?
                .ok_or_else(unknown)?;
            if !admits(&now) {
                return Err(Error::ChangedSince { what: "group" });
            }
            locked = Some(now);
            Ok(())
        })
        .await?;
        locked.ok_or_else(unknown)
    }

    /// Whether an admin required a second factor of this user.
    pub async fn user_required(&self, user: &User) -> Result<bool> {
        self.holder_requires(&USER_RULE, &user.id.to_db()).await
    }

    /// Requires (or stops requiring) a second factor of one user; audited as
    /// `user.mfa_required`. At the user's next sign-in they step up, or enrol if they have
    /// no factor.
    pub async fn require_for_user(&self, actor: &Actor, user: &User, require: bool) -> Result<()> {
        let holder = (user.id.to_db(), user.id.to_string(), user.username.clone());
        let id = user.id;
        self.set_holder_checked(&USER_RULE, actor, holder, require, async |conn| {
            users::lock(conn, id).await
        })
        .await
    }

    async fn holder_requires(&self, rule: &HolderRule, key: &str) -> Result<bool> {
        holder_requires_in(self.store.pool(), rule, key).await
    }

    /// Writes a holder's rule and its audit line in one transaction. `holder` is the key in
    /// the table, the ID and the name the audit line shows. `check` runs first in the
    /// transaction: it takes the holder's row lock (and may refuse a stale precondition
    /// before anything is written); the audit's `before` is read after it, in the same
    /// transaction, so of two changes at once each audits the value it replaced.
    async fn set_holder_checked(
        &self,
        rule: &HolderRule,
        actor: &Actor,
        (key, id, name): (String, String, String),
        require: bool,
        check: impl AsyncFnOnce(&mut sqlx::AnyConnection) -> Result<()>,
    ) -> Result<()> {
        let now = self.store.now();
        let mut tx = self.store.begin().await?;
        check(store::conn(&mut tx)).await?;
        let before = holder_requires_in(&mut *tx, rule, &key).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {table} ({key}, require_mfa) VALUES ($1, $2) \
             ON CONFLICT ({key}) DO UPDATE SET require_mfa = excluded.require_mfa",
            table = rule.table,
            key = rule.key,
        )))
        .bind(key)
        .bind(store::to_flag(require))
        .execute(&mut *tx)
        .await?;
        audit::record(
            store::conn(&mut tx),
            actor,
            now,
            Change {
                action: rule.action,
                target_kind: rule.target_kind,
                target_id: id,
                target_name: name,
                before: Some(serde_json::json!({ "require_mfa": before })),
                after: Some(serde_json::json!({ "require_mfa": require })),
            },
        )
        .await?;
        store::commit(tx).await
    }

    /// Every rule that requires a second factor of `user` signing in to `target`;
    /// `global` is `[mfa] required`.
    pub async fn requirement(
        &self,
        user: &User,
        target: Target,
        global: bool,
    ) -> Result<Requirement> {
        let mut reasons = Vec::new();
        if global {
            reasons.push(Reason::Global);
        }
        if self.user_required(user).await? {
            reasons.push(Reason::User);
        }
        let groups: Vec<String> = sqlx::query_scalar(
            "SELECT g.name FROM mfa_group_policy p \
             JOIN directory_groups g ON g.id = p.group_id \
             JOIN group_members m ON m.group_id = p.group_id \
             WHERE m.user_id = $1 AND p.require_mfa = 1 ORDER BY g.name",
        )
        .bind(user.id.to_db())
        .fetch_all(self.store.pool())
        .await?;
        reasons.extend(groups.into_iter().map(Reason::Group));
        if let Target::App(app) = target
            && self.app(app).await?.require_mfa
        {
            reasons.push(Reason::App);
        }
        Ok(Requirement { reasons })
    }

    /// [`decide`] with its inputs loaded: what `user`, whose session used `methods`, needs
    /// to sign in to `target` for a request asking `requested`.
    pub async fn decide(
        &self,
        user: &User,
        target: Target,
        methods: &Methods,
        requested: Option<&RequestedAuthnContext>,
        global: bool,
        protected_transport: bool,
    ) -> Result<MfaDecision> {
        let requirement = self.requirement(user, target, global).await?;
        let mfa_class = match target {
            Target::App(app) => self.app(app).await?.mfa_class,
            Target::Portal => MfaClass::default(),
        };
        let has_factor = Factors::new(self.store).has_factor(user).await?;
        Ok(decide(Situation {
            required: requirement.required(),
            has_factor,
            methods,
            requested,
            protected_transport,
            mfa_class,
        }))
    }
}

#[cfg(test)]
mod tests {
    use latchkey_saml::assertion::authn_context::{
        MOBILE_TWO_FACTOR_CONTRACT, PASSWORD_PROTECTED_TRANSPORT, REFEDS_MFA,
    };
    use latchkey_saml::authn_request::Comparison;

    use super::*;
    use crate::mfa::AuthMethod;

    fn situation<'a>(methods: &'a Methods, required: bool, has_factor: bool) -> Situation<'a> {
        Situation {
            required,
            has_factor,
            methods,
            requested: None,
            protected_transport: true,
            mfa_class: MfaClass::RefedsMfa,
        }
    }

    #[test]
    fn not_required_and_not_asked_a_password_is_enough() {
        let pw = Methods::password();
        assert_eq!(
            decide(situation(&pw, false, false)),
            MfaDecision::Satisfied {
                class: PASSWORD_PROTECTED_TRANSPORT
            }
        );
    }

    #[test]
    fn required_steps_up_with_a_factor_and_enrols_without_one() {
        let pw = Methods::password();
        assert_eq!(decide(situation(&pw, true, true)), MfaDecision::StepUp);
        assert_eq!(decide(situation(&pw, true, false)), MfaDecision::Enrol);
        let both = Methods::of(&[AuthMethod::Password, AuthMethod::Totp]);
        assert_eq!(
            decide(situation(&both, true, true)),
            MfaDecision::Satisfied { class: REFEDS_MFA }
        );
        let mobile = Situation {
            mfa_class: MfaClass::MobileTwoFactorContract,
            ..situation(&both, true, true)
        };
        assert_eq!(
            decide(mobile),
            MfaDecision::Satisfied {
                class: MOBILE_TWO_FACTOR_CONTRACT
            }
        );
        // A recovery code is a second factor too; a passkey is two on its own.
        let recovery = Methods::of(&[AuthMethod::Password, AuthMethod::RecoveryCode]);
        assert!(matches!(
            decide(situation(&recovery, true, false)),
            MfaDecision::Satisfied { .. }
        ));
        let passkey = Methods::of(&[AuthMethod::Passkey]);
        assert!(matches!(
            decide(situation(&passkey, true, false)),
            MfaDecision::Satisfied { .. }
        ));
        // A second factor without the password is not two factors.
        let totp_only = Methods::of(&[AuthMethod::Totp]);
        assert_eq!(
            decide(situation(&totp_only, true, true)),
            MfaDecision::StepUp
        );
    }

    #[test]
    fn a_request_for_mfa_steps_up_even_where_the_policy_does_not_ask() {
        let pw = Methods::password();
        let wants = RequestedAuthnContext {
            comparison: Comparison::Exact,
            class_refs: vec![REFEDS_MFA.into()],
        };
        let s = Situation {
            requested: Some(&wants),
            ..situation(&pw, false, true)
        };
        assert_eq!(decide(s), MfaDecision::StepUp);
        assert_eq!(
            decide(Situation {
                has_factor: false,
                ..s
            }),
            MfaDecision::Enrol
        );
    }

    #[test]
    fn a_request_nothing_meets_is_unsatisfiable_whatever_the_policy() {
        let pw = Methods::password();
        let unknown = RequestedAuthnContext {
            comparison: Comparison::Exact,
            class_refs: vec!["urn:example:smartcard".into()],
        };
        for required in [false, true] {
            let s = Situation {
                requested: Some(&unknown),
                ..situation(&pw, required, true)
            };
            assert_eq!(decide(s), MfaDecision::Unsatisfiable);
        }
        // Required MFA, but the SP caps the class at PasswordProtectedTransport: after the
        // step-up the session still states PPT, which meets "maximum".
        let cap = RequestedAuthnContext {
            comparison: Comparison::Maximum,
            class_refs: vec![PASSWORD_PROTECTED_TRANSPORT.into()],
        };
        let s = Situation {
            requested: Some(&cap),
            ..situation(&pw, true, true)
        };
        assert_eq!(decide(s), MfaDecision::StepUp);
    }
}
