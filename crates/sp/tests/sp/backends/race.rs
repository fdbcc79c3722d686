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

use crate::support::{Db, WIKI, alice, contract, fixture, t0};

/// `stale_email`: the first e-mail lookup misses too (the concurrent login committed after
/// both lookups, so this one loses the insert); otherwise only the identity lookup misses
/// (it committed between the two lookups).
struct StaleFirstLookup {
    store: SqlAccountStore,
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
            stale_identity: true,
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

crate::on_both_backends!(
    losing_the_insert_race_replans_against_the_winner,
    winner_committing_between_lookups_is_recognised,
);
