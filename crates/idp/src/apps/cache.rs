//! This node's copy of the applications the sign-in path reads, so that a sign-in with a
//! live session makes one statement, not two.
//!
//! A copy is only as good as its check: every copy is held with the applications' version
//! it was read at ([`AppsVersion`], bumped by a trigger on every insert, update or delete of
//! an `applications` row, whoever writes it: console, API, CLI, catalog import, metadata
//! refresh, another node, hand-written SQL). A sign-in answered from a copy sees the
//! current version in the statement that reads its session and grant, and one that does
//! not reach that statement (a refusal, a parked request, the confirmation page) reads it
//! on its own; on a mismatch the copy is dropped and the request is decided again from a
//! fresh read. So a change is seen by every node from its commit on, exactly as when the
//! row was read on every request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::Application;
use crate::ids::AppId;

/// Most applications kept; past it the copy starts again empty (the number of applications
/// is the admins', not the public's, but a node's memory is bounded all the same).
const CAPACITY: usize = 1024;

/// The applications' version: any change to any application moves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppsVersion(pub(crate) i64);

/// How a sign-in names its application.
#[derive(Debug, Clone, Copy)]
pub enum AppKey<'a> {
    /// The internal ID.
    Id(AppId),
    /// The SAML entity ID (an AuthnRequest's Issuer).
    EntityId(&'a str),
    /// The launch path's slug.
    Slug(&'a str),
}

#[derive(Default)]
struct Copies {
    version: Option<AppsVersion>,
    by_id: HashMap<AppId, Arc<Application>>,
    by_entity_id: HashMap<String, AppId>,
    by_slug: HashMap<String, AppId>,
}

impl Copies {
    fn clear(&mut self) {
        self.by_id.clear();
        self.by_entity_id.clear();
        self.by_slug.clear();
    }
}

/// The copies, shared by every handle on one node's store.
#[derive(Default)]
pub(crate) struct AppCache {
    copies: Mutex<Copies>,
}

impl std::fmt::Debug for AppCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppCache")
            .field("apps", &self.lock().by_id.len())
            .finish()
    }
}

impl AppCache {
    /// Nothing in here can panic while holding the lock; a poisoned one is used as it is.
    fn lock(&self) -> MutexGuard<'_, Copies> {
        self.copies.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The copy of the application `key` names, with the version it was read at.
    pub(crate) fn get(&self, key: AppKey<'_>) -> Option<(Arc<Application>, AppsVersion)> {
        let copies = self.lock();
        let version = copies.version?;
        let id = match key {
            AppKey::Id(id) => id,
            AppKey::EntityId(entity_id) => *copies.by_entity_id.get(entity_id)?,
            AppKey::Slug(slug) => *copies.by_slug.get(slug)?,
        };
        copies.by_id.get(&id).map(|app| (Arc::clone(app), version))
    }

    /// Keeps `app`, read at `version`; copies read at another version are dropped.
    pub(crate) fn put(&self, app: &Arc<Application>, version: AppsVersion) {
        let mut copies = self.lock();
        if copies.version != Some(version) {
            copies.clear();
            copies.version = Some(version);
        }
        if copies.by_id.len() >= CAPACITY && !copies.by_id.contains_key(&app.id) {
            copies.clear();
        }
        copies
            .by_entity_id
            .insert(app.settings.entity_id.clone(), app.id);
        copies.by_slug.insert(app.settings.slug.clone(), app.id);
        copies.by_id.insert(app.id, Arc::clone(app));
    }

    /// The database says the applications are at `current`: copies read at any other
    /// version are dropped.
    pub(crate) fn seen(&self, current: AppsVersion) {
        let mut copies = self.lock();
        if copies.version != Some(current) {
            copies.clear();
            copies.version = None;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code

    use super::*;
    use crate::apps::NewApplication;

    fn app(n: usize) -> Arc<Application> {
        let host = format!("https://app{n}.example.org");
        let mut settings = NewApplication::new(&host, "App", format!("{host}/acs"));
        settings.slug = format!("app-{n}");
        let at = time::macros::datetime!(2026-12-06 00:00 UTC);
        Arc::new(Application {
            id: AppId::new_random(),
            settings,
            created_at: at,
            updated_at: at,
        })
    }

    #[test]
    fn copies_are_bounded_and_of_one_version() {
        let cache = AppCache::default();
        let v1 = AppsVersion(1);
        let apps: Vec<_> = (0..=CAPACITY).map(app).collect();
        for app in &apps {
            cache.put(app, v1);
        }
        assert!(cache.lock().by_id.len() <= CAPACITY);
        assert!(cache.lock().by_entity_id.len() <= CAPACITY);
        let last = &apps[CAPACITY];
        for key in [
            AppKey::Id(last.id),
            AppKey::EntityId(&last.settings.entity_id),
            AppKey::Slug(&last.settings.slug),
        ] {
            let (found, version) = cache.get(key).unwrap();
            assert_eq!((found.id, version), (last.id, v1));
        }

        // A copy read at another version replaces every other.
        cache.put(&apps[0], AppsVersion(2));
        assert!(cache.get(AppKey::Id(last.id)).is_none());
        assert_eq!(cache.get(AppKey::Id(apps[0].id)).unwrap().1, AppsVersion(2));
        // The database at yet another version: nothing is kept.
        cache.seen(AppsVersion(3));
        assert!(cache.get(AppKey::Id(apps[0].id)).is_none());
    }
}
