//! Server-side sessions: the cookie holds only a random ID.
//!
//! The cookie is set on the response to the IdP's POST and then only used on same-site
//! navigations, so `SameSite=Lax` fits; it is `HttpOnly`, and `Secure` when the app is served
//! over https.

use std::collections::HashMap;
use std::sync::Mutex;

use latchkey_sp::acs::SamlLogin;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// The longest a session lasts, whatever the IdP says.
const MAX_SESSION: Duration = Duration::hours(8);

/// How many sessions are kept; the oldest-expiring ones go first when full.
const CAPACITY: usize = 10_000;

/// One signed-in browser.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) login: SamlLogin,
    pub(crate) account_id: Uuid,
    /// How the login provisioned the account, shown on the home page.
    pub(crate) provisioning: String,
    pub(crate) operation_id: Uuid,
    pub(crate) expires_at: OffsetDateTime,
}

#[derive(Debug)]
pub(crate) struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    pub(crate) fn new() -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        // Each operation is a single insert, remove or retain: never left half-done.
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stores a session and returns its ID (244 random bits).
    pub(crate) fn create(&self, mut session: Session, now: OffsetDateTime) -> String {
        let cap = now + MAX_SESSION;
        session.expires_at = session
            .login
            .session_not_on_or_after
            .map_or(cap, |end| end.min(cap));
        let id = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
        let mut map = self.lock();
        if map.len() >= CAPACITY {
            map.retain(|_, s| s.expires_at > now);
            if map.len() >= CAPACITY
                && let Some(oldest) = map
                    .iter()
                    .min_by_key(|(_, s)| s.expires_at)
                    .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(id.clone(), session);
        id
    }

    pub(crate) fn get(&self, id: &str, now: OffsetDateTime) -> Option<Session> {
        let mut map = self.lock();
        match map.get(id) {
            Some(s) if s.expires_at > now => Some(s.clone()),
            Some(_) => {
                map.remove(id);
                None
            }
            None => None,
        }
    }

    /// Removes the session and returns it.
    pub(crate) fn remove(&self, id: &str) -> Option<Session> {
        self.lock().remove(id)
    }

    /// Ends every session of `account_id` (SCIM disabled or deleted it); returns how many.
    pub(crate) fn end_for_account(&self, account_id: Uuid) -> usize {
        let mut map = self.lock();
        let before = map.len();
        map.retain(|_, s| s.account_id != account_id);
        before - map.len()
    }

    /// Ends every session whose login `ends` says so (an IdP's LogoutRequest names the
    /// person and IdP session, not our cookie); returns how many.
    pub(crate) fn end_matching(&self, ends: impl Fn(&SamlLogin) -> bool) -> usize {
        let mut map = self.lock();
        let before = map.len();
        map.retain(|_, s| !ends(&s.login));
        before - map.len()
    }
}

/// The value of cookie `name` in a `Cookie` header.
pub(crate) fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}
