//! The four ceremonies: enrol, passwordless sign-in, and a key as the second factor.

use webauthn_rs::prelude::{
    AuthenticationResult, CreationChallengeResponse, DiscoverableAuthentication,
    PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse, WebauthnError as CrateError,
};

use webauthn_rs_proto::ResidentKeyRequirement;

use super::challenges::{Kind, Pending};
use super::credentials::{
    Credential, Credentials, MAX_CREDENTIALS, Use, checked_name, presented_counter,
};
use super::{RelyingParty, WebauthnError};
use crate::audit::Actor;
use crate::directory::{User, UserStatus};
use crate::ids::UserId;
use crate::session::{Admission, Slot, Throttle, network_of};
use crate::store::Store;

/// How a sign-in ceremony is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A discoverable credential alone: no name typed, no password.
    Passwordless,
    /// After the password, one of the user's credentials (an allow-list).
    SecondFactor,
}

/// A started ceremony: the handle the browser sends back with its answer, and the options
/// it passes to `navigator.credentials`.
#[derive(Debug)]
pub struct Started<T> {
    /// Opaque, single-use; stored only as a hash.
    pub handle: String,
    /// `publicKey` options for `navigator.credentials.create` / `.get`.
    pub options: T,
}

fn state_text<T: serde::Serialize>(state: &T) -> Result<String, WebauthnError> {
    serde_json::to_string(state)
        .map_err(|e| WebauthnError::Malformed(format!("ceremony state not serialisable: {e}")))
}

fn state_of<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, WebauthnError> {
    serde_json::from_str(text).map_err(|e| {
        WebauthnError::Store(crate::Error::CorruptRow {
            what: "webauthn challenge",
            reason: e.to_string(),
        })
    })
}

/// The ceremonies, against one store and relying party.
#[derive(Debug, Clone, Copy)]
pub struct Ceremonies<'s> {
    store: &'s Store,
    rp: &'s RelyingParty,
}

impl<'s> Ceremonies<'s> {
    /// Ceremonies for `rp`, kept in `store`.
    pub fn new(store: &'s Store, rp: &'s RelyingParty) -> Self {
        Ceremonies { store, rp }
    }

    /// Live ceremonies in the table.
    pub async fn pending(&self) -> Result<i64, WebauthnError> {
        Pending::new(self.store).count().await
    }

    /// The database's plan (not run) for taking the place of a passwordless start from
    /// `address`, for the tests that hold each of its counts to an index.
    #[doc(hidden)]
    pub async fn explain_passwordless_start(&self, address: &str) -> Result<String, WebauthnError> {
        let owner = format!("addr:{}", network_of(address));
        Pending::new(self.store)
            .explain_put(&owner, None, self.store.now())
            .await
    }

    /// Starts enrolling a new credential for a signed-in user. The user's current credentials
    /// are excluded, so an authenticator refuses to enrol twice.
    pub async fn start_registration(
        &self,
        user: &User,
    ) -> Result<Started<CreationChallengeResponse>, WebauthnError> {
        let credentials = Credentials::new(self.store);
        if credentials.count(user.id).await? >= MAX_CREDENTIALS {
            return Err(WebauthnError::TooMany("credentials for this user"));
        }
        let exclude = credentials
            .passkeys(user.id)
            .await?
            .into_iter()
            .map(|(_, p)| p.cred_id().clone())
            .collect::<Vec<_>>();
        let (mut options, state) = self.rp.webauthn().start_passkey_registration(
            user.id.0,
            &user.username,
            &user.shown_name(),
            Some(exclude),
        )?;
        // The crate asks authenticators not to keep a resident (discoverable) credential; we
        // ask for one, so the same key can sign in with no name and no password. Keys without
        // room for one still enrol and serve as a second factor; nothing in the verification
        // depends on it.
        if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
            selection.resident_key = Some(ResidentKeyRequirement::Preferred);
        }
        let handle = Pending::new(self.store)
            .put(
                Kind::Register,
                &owner_user(user.id),
                Some(user.id),
                &state_text(&state)?,
                self.store.now(),
            )
            .await?;
        Ok(Started { handle, options })
    }

    /// Finishes an enrolment: the ceremony is consumed first (a replay finds nothing), the
    /// response is verified against it, and the credential is stored with its audit event
    /// in one transaction. Any refusal leaves no row.
    pub async fn finish_registration(
        &self,
        actor: &Actor,
        user: &User,
        handle: &str,
        response: &RegisterPublicKeyCredential,
        name: &str,
    ) -> Result<Credential, WebauthnError> {
        let name = checked_name(name)?;
        let now = self.store.now();
        let taken = Pending::new(self.store)
            .take(Kind::Register, handle, now)
            .await?;
        if taken.user != Some(user.id) {
            return Err(WebauthnError::Challenge);
        }
        let state: PasskeyRegistration = state_of(&taken.state)?;
        let passkey = self
            .rp
            .webauthn()
            .finish_passkey_registration(response, &state)?;
        Credentials::new(self.store)
            .insert(actor, user.id, name, &passkey, now)
            .await
    }

    /// Starts a sign-in. `Passwordless` asks for any discoverable credential of this RP (no
    /// user yet: the ceremony is counted against the client's network); `SecondFactor` asks
    /// for one of `user`'s credentials.
    pub async fn start_sign_in(
        &self,
        purpose: Purpose,
        user: Option<&User>,
        address: &str,
    ) -> Result<Started<RequestChallengeResponse>, WebauthnError> {
        let now = self.store.now();
        let pending = Pending::new(self.store);
        match (purpose, user) {
            (Purpose::Passwordless, _) => {
                let (mut options, state) =
                    self.rp.webauthn().start_discoverable_authentication()?;
                // The crate asks for conditional mediation (autofill); our page asks on a
                // button press, where the browser's own prompt is the right one.
                options.mediation = None;
                let owner = format!("addr:{}", network_of(address));
                let handle = pending
                    .put(Kind::Passwordless, &owner, None, &state_text(&state)?, now)
                    .await?;
                Ok(Started { handle, options })
            }
            (Purpose::SecondFactor, Some(user)) => {
                let keys: Vec<_> = Credentials::new(self.store)
                    .passkeys(user.id)
                    .await?
                    .into_iter()
                    .map(|(_, p)| p)
                    .collect();
                if keys.is_empty() {
                    return Err(WebauthnError::UnknownCredential);
                }
                let (options, state) = self.rp.webauthn().start_passkey_authentication(&keys)?;
                let handle = pending
                    .put(
                        Kind::SecondFactor,
                        &owner_user(user.id),
                        Some(user.id),
                        &state_text(&state)?,
                        now,
                    )
                    .await?;
                Ok(Started { handle, options })
            }
            (Purpose::SecondFactor, None) => Err(WebauthnError::UnknownCredential),
        }
    }

    /// Finishes a passwordless sign-in and names the user it proves. The order keeps a
    /// burst of forged answers from outrunning the throttle: the ceremony is consumed; the
    /// credential the answer claims is looked up (cheap); a slot is taken under the client's
    /// address and, when the credential is known, its account (the same keys and policies as
    /// a password guess); only then is the signature verified. A failure leaves the slots
    /// counted; a success resets the account's run as a right password does.
    pub async fn finish_passwordless(
        &self,
        handle: &str,
        response: &PublicKeyCredential,
        address: &str,
    ) -> Result<(User, Credential), WebauthnError> {
        let now = self.store.now();
        let taken = Pending::new(self.store)
            .take(Kind::Passwordless, handle, now)
            .await?;
        let state: DiscoverableAuthentication = state_of(&taken.state)?;
        let claimed = self
            .rp
            .webauthn()
            .identify_discoverable_authentication(response)
            .ok();
        let found = match claimed {
            Some((_, raw)) => Credentials::new(self.store).by_credential_id(raw).await?,
            None => None,
        };
        let user = match (&found, claimed) {
            (Some((c, _)), Some((claimed_user, _))) if c.user.0 == claimed_user => {
                Some(self.store.users().get(c.user).await?)
            }
            _ => None,
        };
        let mut slots = vec![Slot::address(address)];
        if let Some(u) = &user {
            slots.insert(0, Slot::account(&u.username));
            slots.insert(0, Slot::pair(&u.username, address));
        }
        let throttle = Throttle::new(self.store);
        let attempt = match throttle.admit(slots, now).await? {
            Admission::Admitted(a) => a,
            Admission::Refused { retry_after } => {
                return Err(WebauthnError::Throttled {
                    retry_after_seconds: u64::try_from(retry_after.whole_seconds()).unwrap_or(1),
                });
            }
        };
        let (Some((credential, passkey)), Some(user)) = (found, user) else {
            return Err(WebauthnError::UnknownCredential);
        };
        if user.status != UserStatus::Active {
            return Err(WebauthnError::UnknownCredential);
        }
        let actor = Actor::new(format!("anonymous:{address}"));
        let used = Use {
            credential: &credential,
            username: &user.username,
            actor: &actor,
            address,
            purpose: "passwordless",
        };
        let verified = self
            .rp
            .webauthn()
            .finish_discoverable_authentication_v2(response, state, &passkey);
        let result = self.counted(verified, &used, response, now).await?;
        Credentials::new(self.store)
            .record_use(&used, passkey, &result, now)
            .await?;
        throttle.succeeded(attempt).await?;
        let credential = Credential {
            last_used_at: Some(now),
            ..credential
        };
        Ok((user, credential))
    }

    /// Finishes a second-factor check for `user`, who has given the right password in this
    /// sign-in. Throttled like a password guess, under the same keys, before verifying.
    pub async fn finish_second_factor(
        &self,
        user: &User,
        handle: &str,
        response: &PublicKeyCredential,
        address: &str,
    ) -> Result<Credential, WebauthnError> {
        let now = self.store.now();
        let taken = Pending::new(self.store)
            .take(Kind::SecondFactor, handle, now)
            .await?;
        if taken.user != Some(user.id) {
            return Err(WebauthnError::Challenge);
        }
        let state: PasskeyAuthentication = state_of(&taken.state)?;
        let throttle = Throttle::new(self.store);
        let slots = vec![
            Slot::pair(&user.username, address),
            Slot::account(&user.username),
            Slot::address(address),
        ];
        let attempt = match throttle.admit(slots, now).await? {
            Admission::Admitted(a) => a,
            Admission::Refused { retry_after } => {
                return Err(WebauthnError::Throttled {
                    retry_after_seconds: u64::try_from(retry_after.whole_seconds()).unwrap_or(1),
                });
            }
        };
        let used = response.get_credential_id();
        let Some((credential, passkey)) = Credentials::new(self.store)
            .passkeys(user.id)
            .await?
            .into_iter()
            .find(|(_, p)| p.cred_id().as_ref() as &[u8] == used)
        else {
            return Err(WebauthnError::UnknownCredential);
        };
        let actor = Actor::person(user);
        let used = Use {
            credential: &credential,
            username: &user.username,
            actor: &actor,
            address,
            purpose: "second_factor",
        };
        let verified = self
            .rp
            .webauthn()
            .finish_passkey_authentication(response, &state);
        let result = self.counted(verified, &used, response, now).await?;
        Credentials::new(self.store)
            .record_use(&used, passkey, &result, now)
            .await?;
        throttle.succeeded(attempt).await?;
        Ok(Credential {
            last_used_at: Some(now),
            ..credential
        })
    }

    /// The crate's verdict on an assertion, with its counter check made ours: the crate
    /// compares the counter with the one the ceremony read (`CredentialPossibleCompromise`
    /// when it did not go up); that refusal is audited as
    /// [`Credentials::record_use`] audits the same finding against the stored counter.
    async fn counted(
        &self,
        verified: Result<AuthenticationResult, CrateError>,
        used: &Use<'_>,
        response: &PublicKeyCredential,
        now: time::OffsetDateTime,
    ) -> Result<AuthenticationResult, WebauthnError> {
        match verified {
            Ok(result) => Ok(result),
            Err(CrateError::CredentialPossibleCompromise) => {
                // The crate verified the signature over this data before comparing.
                let presented =
                    presented_counter(&response.response.authenticator_data).unwrap_or(0);
                Err(Credentials::new(self.store)
                    .refuse_regression(used, presented, now)
                    .await)
            }
            Err(e) => Err(e.into()),
        }
    }
}

fn owner_user(id: UserId) -> String {
    format!("user:{id}")
}
