//! Identifiers that name a record or an operation but guard nothing: an operation ID shown
//! to the person and written to the log, an audit event's ID.
//!
//! They come from the thread's generator (rand's `ThreadRng`: ChaCha, seeded and reseeded
//! from the OS), not from a `getrandom` system call per UUID as `Uuid::new_v4` makes: every
//! login makes one or two, and on a virtual machine each call costs about a microsecond of
//! a ~50 us login. Values that are secrets (a browser's binding key, a pending login's relay
//! state) keep coming from the OS, one call each.

use uuid::Uuid;

/// A version 4 (random) UUID from the thread's generator.
pub(crate) fn random_uuid() -> Uuid {
    uuid::Builder::from_random_bytes(rand::random()).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_version_4_and_differ() {
        let (a, b) = (random_uuid(), random_uuid());
        assert_eq!(a.get_version(), Some(uuid::Version::Random));
        assert_eq!(a.get_variant(), uuid::Variant::RFC4122);
        assert_ne!(a, b);
    }
}
