//! The race paths of the engine, made deterministic: a store whose first lookups miss an
//! account that already exists, as PostgreSQL statements (READ COMMITTED: each sees what was
//! committed when it started) run just before a concurrent first login committed would.

use latchkey_sp::StoreError;
use latchkey_sp::jit::{IdentityKey, JitEngine, Outcome, PlanAction};
use latchkey_sp::store::{
    Account, AccountStore, AccountTx, AuditEvent, AuditKind, RoleOrigin, SqlAccountStore,
    SqlAccountTx,
};
use uuid::Uuid;

use latchkey_sp::Error;
use latchkey_sp::jit::RefusalCode;

use crate::support::{Db, WIKI, alice, contract, facts, fixture, t0, wiki_with};

/// `stale_email`: the first e-mail lookup misses too (the concurrent login committed after
/// both lookups, so this one loses the insert); otherwise only the identity lookup misses
/// (it committed between the two lookups).
struct StaleFirstLookup {
    store: SqlAccountStore,
    stale_identity: bool,
    stale_email: bool,
}

struct StaleTx {
    inner: SqlAccountTx,
    stale_identity: bool,
    stale_email: bool,
}

impl AccountStore for StaleFirstLookup {
    type Tx = StaleTx;

    async fn begin(&self) -> Result<StaleTx, StoreError> {
        Ok(StaleTx {
            inner: self.store.begin().await?,
            stale_identity: self.stale_identity,
            stale_email: self.stale_email,
        })
    }
}

impl AccountTx for StaleTx {
    async fn find_by_identity(
        &mut self,
        identity: &IdentityKey,
    ) -> Result<Option<Account>, StoreError> {
        if std::mem::replace(&mut self.stale_identity, false) {
            return Ok(None);
        }
        self.inner.find_by_identity(identity).await
    }

    async fn find_by_email(&mut self, email: &str) -> Result<Option<Account>, StoreError> {
        if std::mem::replace(&mut self.stale_email, false) {
            return Ok(None);
        }
        self.inner.find_by_email(email).await
    }

    async fn insert_account(&mut self, account: &Account) -> Result<bool, StoreError> {
        self.inner.insert_account(account).await
    }

    async fn update_account(&mut self, account: &Account) -> Result<(), StoreError> {
        self.inner.update_account(account).await
    }

    async fn update_account_new_email(&mut self, account: &Account) -> Result<bool, StoreError> {
        self.inner.update_account_new_email(account).await
    }

    async fn grant_role(
        &mut self,
        account_id: Uuid,
        role: &str,
        origin: RoleOrigin,
    ) -> Result<(), StoreError> {
        self.inner.grant_role(account_id, role, origin).await
    }

    async fn revoke_managed_role(
        &mut self,
        account_id: Uuid,
        role: &str,
    ) -> Result<(), StoreError> {
        self.inner.revoke_managed_role(account_id, role).await
    }

    async fn append_audit(&mut self, event: &AuditEvent) -> Result<(), StoreError> {
        self.inner.append_audit(event).await
    }

    async fn commit(self) -> Result<(), StoreError> {
        self.inner.commit().await
    }
}

async fn losing_the_insert_race_replans_against_the_winner(db: Db) {
    late_login_sees_the_winner(db, true).await;
}

/// The e-mail lookup finds the account the identity lookup just missed: it is this person's
/// own account, not "someone else's e-mail".
async fn winner_committing_between_lookups_is_recognised(db: Db) {
    late_login_sees_the_winner(db, false).await;
}

async fn late_login_sees_the_winner(db: Db, stale_email: bool) {
    let fx = fixture(db).await;
    let winner = JitEngine::new(contract(WIKI), fx.store.clone())
        .login(&alice(), t0())
        .await
        .unwrap();

    let late = JitEngine::new(
        contract(WIKI),
        StaleFirstLookup {
            store: fx.store.clone(),
            stale_identity: true,
            stale_email,
        },
    );
    let p = late
        .login(&alice(), t0() + time::Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(p.outcome, Outcome::Unchanged);
    assert_eq!(p.account.id, winner.account.id);
    assert_eq!(
        p.plan.action,
        PlanAction::Unchanged {
            account_id: winner.account.id
        }
    );

    assert_eq!(fx.store.accounts().await.unwrap().len(), 1);
    let kinds: Vec<AuditKind> = fx
        .store
        .audit_log(10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.kind)
        .collect();
    // The discarded `Create` plan of the losing attempt is not audited: only what was applied.
    assert_eq!(kinds, vec![AuditKind::Created, AuditKind::Unchanged]);
}

/// A returning login moving its IdP-owned e-mail to an address whose owner committed it after
/// this login looked (its e-mail lookup misses): the unique index refuses the write, and the
/// login gets the refusal it would have got coming second, never a store error.
async fn moving_to_an_address_taken_meanwhile_is_refused(db: Db) {
    let fx = fixture(db).await;
    let engine = JitEngine::new(contract(WIKI), fx.store.clone());
    let owner = engine.login(&alice(), t0()).await.unwrap().account;
    let bob = subject("bob", "bob@example.org");
    let bob_account = engine.login(&bob, t0()).await.unwrap().account;

    let late = JitEngine::new(
        contract(WIKI),
        StaleFirstLookup {
            store: fx.store.clone(),
            stale_identity: false,
            stale_email: true,
        },
    );
    let moved = subject("bob", "alice@example.org");
    match late.login(&moved, t0() + time::Duration::seconds(1)).await {
        Err(Error::Refused { refusal, .. }) => {
            assert_eq!(refusal.code, RefusalCode::EmailBelongsToOtherAccount);
        }
        other => panic!("expected EMAIL_BELONGS_TO_OTHER_ACCOUNT, got {other:?}"),
    }
    // Nothing of the move was written; the refusal is audited like any other.
    assert_eq!(
        fx.store.account(bob_account.id).await.unwrap().unwrap(),
        bob_account
    );
    assert_eq!(fx.store.account(owner.id).await.unwrap().unwrap(), owner);
    let log = fx.store.audit_log(1).await.unwrap();
    assert_eq!(log[0].kind, AuditKind::Refused);
    assert_eq!(log[0].account_id, Some(bob_account.id));
}

/// A link losing the identity to a concurrent login of the same person that created an
/// account (or linked another local one) after this login looked: the identity's unique
/// index refuses the link, and the login is planned again, once, against the winner,
/// never a store error.
async fn a_link_racing_a_create_for_the_identity_is_replanned(db: Db) {
    link_loses_the_identity(db, false).await;
}

async fn two_links_of_one_identity_race_to_one_winner(db: Db) {
    link_loses_the_identity(db, true).await;
}

async fn link_loses_the_identity(db: Db, winner_links: bool) {
    let fx = fixture(db).await;
    let linking = wiki_with(|c| format!("link_by_email = true\n{c}"));
    let local = |mail: &str| {
        let store = fx.store.clone();
        let fields = [("email".to_owned(), mail.to_owned())]
            .into_iter()
            .collect();
        async move {
            store
                .create_account(None, fields, t0())
                .await
                .unwrap()
                .unwrap()
        }
    };
    if winner_links {
        local("carol@example.org").await;
    }
    let other = local("carol.new@example.org").await;
    let winner = JitEngine::new(linking.clone(), fx.store.clone())
        .login(&subject("carol", "carol@example.org"), t0())
        .await
        .unwrap();
    let expected = if winner_links {
        Outcome::Linked
    } else {
        Outcome::Created
    };
    assert_eq!(winner.outcome, expected);

    // The IdP now asserts the other local account's address; this login looked before the
    // winner committed, so it found no account for the identity and plans to link `other`.
    let late = JitEngine::new(
        linking,
        StaleFirstLookup {
            store: fx.store.clone(),
            stale_identity: true,
            stale_email: false,
        },
    );
    let moved = subject("carol", "carol.new@example.org");
    match late.login(&moved, t0() + time::Duration::seconds(1)).await {
        Err(Error::Refused { refusal, .. }) => {
            assert_eq!(refusal.code, RefusalCode::EmailBelongsToUnlinkedAccount);
        }
        other => panic!("expected the second comer's refusal, got {other:?}"),
    }
    // Nothing of the link was written: the identity is the winner's only.
    assert_eq!(fx.store.account(other.id).await.unwrap().unwrap(), other);
    assert_eq!(
        fx.store.account(winner.account.id).await.unwrap().unwrap(),
        winner.account
    );
    let log = fx.store.audit_log(1).await.unwrap();
    assert_eq!(log[0].kind, AuditKind::Refused);
    assert_eq!(log[0].account_id, Some(winner.account.id));
}

/// How many logins the bursts below run at once.
const BURST: usize = 16;

fn subject(name: &str, mail: &str) -> latchkey_sp::jit::LoginFacts {
    facts(name, &[("mail", &[mail]), ("groups", &["wiki-users"])])
}

/// What each login of a burst came to: (succeeded with `outcome`, refused with the e-mail
/// code); anything else fails the test.
async fn burst(
    engine: &JitEngine<SqlAccountStore>,
    logins: Vec<latchkey_sp::jit::LoginFacts>,
    at: time::OffsetDateTime,
) -> (Vec<Outcome>, usize) {
    let tasks: Vec<_> = logins
        .into_iter()
        .map(|facts| {
            let engine = engine.clone();
            tokio::spawn(async move { engine.login(&facts, at).await })
        })
        .collect();
    let mut done = Vec::new();
    let mut refused = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(p) => done.push(p.outcome),
            Err(Error::Refused { refusal, .. })
                if refusal.code == RefusalCode::EmailBelongsToOtherAccount =>
            {
                refused += 1;
            }
            Err(other) => panic!("a login of the burst failed: {other:?}"),
        }
    }
    (done, refused)
}

/// Many returning subjects moving their IdP-owned e-mail to one new address at once: exactly
/// one gets it, every other is refused with the code the sequential case gives, and no
/// account is half-moved.
async fn a_burst_moving_to_one_address_gives_it_once(db: Db) {
    let fx = fixture(db).await;
    let engine = JitEngine::new(contract(WIKI), fx.store.clone());
    let names: Vec<String> = (0..BURST).map(|i| format!("user-{i}")).collect();
    // Their first logins, at once too: the pool then holds a connection per login in flight,
    // so the burst below runs concurrently rather than one connection after another.
    let firsts = names
        .iter()
        .map(|name| subject(name, &format!("{name}@example.org")))
        .collect();
    let (created, refused) = burst(&engine, firsts, t0()).await;
    assert_eq!((created.len(), refused), (BURST, 0));
    let moves = names
        .iter()
        .map(|name| subject(name, "shared@example.org"))
        .collect();
    // Later than the first logins, so their audit events are the newest.
    let (done, refused) = burst(&engine, moves, t0() + time::Duration::minutes(1)).await;
    assert_eq!(done, vec![Outcome::Updated]);
    assert_eq!(refused, BURST - 1);

    let accounts = fx.store.accounts().await.unwrap();
    assert_eq!(accounts.len(), BURST);
    let holders: Vec<_> = accounts
        .iter()
        .filter(|a| a.email.as_deref() == Some("shared@example.org"))
        .collect();
    assert_eq!(holders.len(), 1);
    for account in accounts.iter().filter(|a| a.id != holders[0].id) {
        let own = account
            .identity
            .as_ref()
            .unwrap()
            .key
            .replace("name_id:", "");
        assert_eq!(
            account.email.as_deref(),
            Some(format!("{own}@example.org").as_str())
        );
        assert_eq!(
            account.fields.get("email").map(String::as_str),
            Some(format!("{own}@example.org").as_str())
        );
    }
    let log = fx.store.audit_log(BURST as u32).await.unwrap();
    let updated = log.iter().filter(|e| e.kind == AuditKind::Updated).count();
    let refusals = log.iter().filter(|e| e.kind == AuditKind::Refused).count();
    assert_eq!((updated, refusals), (1, BURST - 1));
}

/// The same for first logins: distinct new subjects asserting one address at once create one
/// account; the others are refused.
async fn a_burst_of_first_logins_with_one_address_creates_one(db: Db) {
    let fx = fixture(db).await;
    let engine = JitEngine::new(contract(WIKI), fx.store.clone());
    // Others' first logins at once, so that the pool holds a connection per login.
    let warm = (0..BURST)
        .map(|i| subject(&format!("other-{i}"), &format!("other-{i}@example.org")))
        .collect();
    assert_eq!(burst(&engine, warm, t0()).await.0.len(), BURST);
    let logins = (0..BURST)
        .map(|i| subject(&format!("new-{i}"), "shared@example.org"))
        .collect();
    let (done, refused) = burst(&engine, logins, t0() + time::Duration::minutes(1)).await;
    assert_eq!(done, vec![Outcome::Created]);
    assert_eq!(refused, BURST - 1);
    let accounts = fx.store.accounts().await.unwrap();
    assert_eq!(accounts.len(), BURST + 1);
    let holders: Vec<_> = accounts
        .iter()
        .filter(|a| a.email.as_deref() == Some("shared@example.org"))
        .collect();
    assert_eq!(holders.len(), 1);
    assert!(
        holders[0]
            .identity
            .as_ref()
            .unwrap()
            .key
            .starts_with("name_id:new-")
    );
}

crate::on_both_backends!(
    losing_the_insert_race_replans_against_the_winner,
    winner_committing_between_lookups_is_recognised,
    moving_to_an_address_taken_meanwhile_is_refused,
    a_link_racing_a_create_for_the_identity_is_replanned,
    two_links_of_one_identity_race_to_one_winner,
    a_burst_moving_to_one_address_gives_it_once,
    a_burst_of_first_logins_with_one_address_creates_one,
);
