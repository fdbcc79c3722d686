//! Sign-in throttling, kept in the store so every node counts the same attempts.
//!
//! # Why slots are taken before the password is checked
//! A check ("is this account locked?"), then the slow Argon2 work, then a record of the
//! failure is a race: a burst of simultaneous guesses all pass the check before the first
//! failure is recorded. So an attempt *takes a slot* first, in one atomic statement per key
//! that both refuses when the key is blocked and counts the attempt ([`Throttle::admit`]).
//! Only an admitted attempt is checked. A success then resets the key's run, or gives its
//! slot back ([`OnSuccess`]); a failure leaves the slot counted.
//!
//! # The policy
//! Each key allows a few attempts freely. The attempt that reaches the limit blocks the key
//! for [`ThrottlePolicy::base`], and each further admitted attempt doubles that, up to
//! [`ThrottlePolicy::max_block`]: back-off rather than one fixed lock, and when a block ends
//! exactly one attempt gets through before the next, longer one. A run ends after a quiet
//! window with no admitted attempt. The numbers are in the README ("Sign-in throttling").
//!
//! Accounts are keyed by the name as typed (case-folded), so names that do not exist are
//! throttled exactly like names that do and the throttle tells nobody which exist.

use time::{Duration, OffsetDateTime};

use crate::error::Result;
use crate::store::{self, Store};

/// What a success does to a key's run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnSuccess {
    /// Forget the run: the right password for this account ends its guessing run.
    Reset,
    /// Give back only this attempt's slot: an address's run keeps counting a spray over
    /// many accounts even when some of them sign in.
    GiveBack,
}

/// When a key starts refusing, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Attempts admitted before any block; the one that reaches this number blocks.
    pub free: i64,
    /// The first block.
    pub base: Duration,
    /// The longest block.
    pub max_block: Duration,
    /// A run ends after this long without an admitted attempt.
    pub quiet: Duration,
    /// What a success does.
    pub on_success: OnSuccess,
}

impl ThrottlePolicy {
    /// One account name from an untrusted browser, whatever the address: a guesser spread
    /// over many addresses. An owner with a device cookie is not subject to it.
    pub const ACCOUNT: ThrottlePolicy = Self::sign_in(10, OnSuccess::Reset);
    /// One account name from one address (untrusted browsers).
    pub const PAIR: ThrottlePolicy = Self::sign_in(5, OnSuccess::Reset);
    /// One client address, over all names (several people may share a NAT, and their
    /// successes give their slots back).
    pub const ADDRESS: ThrottlePolicy = Self::sign_in(20, OnSuccess::GiveBack);
    /// The /64s of one IPv6 /48, over all names, five addresses' worth: a site is commonly
    /// handed a /48, 65,536 /64s that would each get [`Self::ADDRESS`]'s free attempts.
    /// Taken with every address slot of an IPv6 client ([`Throttle::admit`]).
    pub const WIDE_ADDRESS: ThrottlePolicy = Self::ADDRESS.widened();
    /// One trusted browser of one account (its device cookie): its own failures count
    /// against it alone.
    pub const DEVICE: ThrottlePolicy = Self::sign_in(5, OnSuccess::Reset);

    /// One user's second-factor codes (TOTP, recovery codes), from anywhere: a code has a
    /// million values, so five guesses before backing off keeps a guesser's odds at a few
    /// in a million per block. The right code ends the run.
    pub const FACTOR: ThrottlePolicy = Self::sign_in(5, OnSuccess::Reset);
    /// Password-reset requests naming one account (as typed, or the account they
    /// resolved to): a few links an hour, so nobody can flood its owner's mailbox.
    /// Every request counts; none gives its slot back.
    pub const RESET_ACCOUNT: ThrottlePolicy = Self::hourly(3, Duration::minutes(15));
    /// Password-reset requests from one client address, over all names: bounds what one
    /// client can put on the reset queue.
    pub const RESET_ADDRESS: ThrottlePolicy = Self::hourly(10, Duration::minutes(1));

    /// SAML requests from one client network that are answered with an error Status before
    /// anyone signs in (each one an audit line): an application's users rarely send one, so
    /// a client sending many is filling the log. Every refusal counts.
    pub const REFUSED_REQUEST: ThrottlePolicy = Self::hourly(30, Duration::minutes(1));

    /// Unsigned LogoutRequests from one client network, accepted from an application with
    /// the legacy opt-in `allow_unsigned_logout` (each one a replay record and an audit
    /// line): anyone can send one, so the same budget and back-off as
    /// [`Self::REFUSED_REQUEST`]. One that ends the browser's own session gives its slot back
    /// (that browser signed in to the application: a NAT full of colleagues signing out).
    pub const UNSIGNED_LOGOUT: ThrottlePolicy = Self::REFUSED_REQUEST;

    /// Wrong bearer tokens (the admin API's, the SCIM server's) from one client network:
    /// `[server] bad_tokens_per_network` of them within `bad_tokens_window_seconds` and the
    /// network's further bearer-token requests are refused until the window has passed
    /// ([`Self::bearer_tokens`]); these are the defaults.
    pub const BEARER_TOKEN: ThrottlePolicy = Self::bearer_tokens(10, Duration::minutes(5));

    /// Bearer-token requests from one client network: the one that brings `wrong` wrong
    /// tokens blocks the network for `window` (each further one admitted after a block, for
    /// `window` again: no doubling), and a run ends after `window` without an admitted
    /// request. Every request takes a slot before its token is looked up; a right token
    /// gives it back.
    pub const fn bearer_tokens(wrong: i64, window: Duration) -> ThrottlePolicy {
        ThrottlePolicy {
            free: wrong,
            base: window,
            max_block: window,
            quiet: window,
            on_success: OnSuccess::GiveBack,
        }
    }

    /// The sign-in back-off (the README's "Sign-in throttling"): after `free` attempts
    /// 30 seconds, doubling up to 15 minutes; a run ends after 15 quiet minutes.
    const fn sign_in(free: i64, on_success: OnSuccess) -> ThrottlePolicy {
        ThrottlePolicy {
            free,
            base: Duration::seconds(30),
            max_block: Duration::minutes(15),
            quiet: Duration::minutes(15),
            on_success,
        }
    }

    /// A budget of anonymous requests that each cost us something (a mail, an audit line,
    /// a replay record): after `free` of them `base`, doubling up to an hour; a run ends
    /// after a quiet hour. A success gives back only its own slot, never ends the run.
    const fn hourly(free: i64, base: Duration) -> ThrottlePolicy {
        ThrottlePolicy {
            free,
            base,
            max_block: Duration::hours(1),
            quiet: Duration::hours(1),
            on_success: OnSuccess::GiveBack,
        }
    }

    /// [`Self::RESET_ADDRESS`] for the /64s of one IPv6 /48 together (as [`Self::WIDE_ADDRESS`]).
    pub const WIDE_RESET_ADDRESS: ThrottlePolicy = Self::RESET_ADDRESS.widened();

    /// [`Self::REFUSED_REQUEST`] for the /64s of one IPv6 /48 together (as
    /// [`Self::WIDE_ADDRESS`]).
    pub const WIDE_REFUSED_REQUEST: ThrottlePolicy = Self::REFUSED_REQUEST.widened();

    /// [`Self::UNSIGNED_LOGOUT`] for the /64s of one IPv6 /48 together (as
    /// [`Self::WIDE_ADDRESS`]).
    pub const WIDE_UNSIGNED_LOGOUT: ThrottlePolicy = Self::UNSIGNED_LOGOUT.widened();

    /// The policy of an IPv6 client's /48 for a policy of its /64: the same back-off with
    /// [`WIDE_FACTOR`] times the free attempts.
    const fn widened(self) -> ThrottlePolicy {
        ThrottlePolicy {
            free: self.free * WIDE_FACTOR,
            ..self
        }
    }

    /// The block set by the `n`th attempt of a run (the statement in [`Throttle::admit`]
    /// computes the same; this is its specification, tested below).
    pub fn block_after(&self, n: i64) -> Option<Duration> {
        let over = n - self.free;
        if over < 0 {
            return None;
        }
        let factor = 1i64 << over.min(MAX_SHIFT);
        let ms = millis(self.base).saturating_mul(factor);
        Some(Duration::milliseconds(ms.min(millis(self.max_block))))
    }
}

/// How many /64s' worth of free attempts the /64s of one /48 have together.
const WIDE_FACTOR: i64 = WIDE_NETWORK_FACTOR as i64;

/// The keys of a client network, each with the key of an IPv6 client's /48 beside it (whose
/// policy is the network's [`ThrottlePolicy::widened`]): an address slot taken alone would
/// give whoever holds a /48 65,536 budgets.
const WIDE_KEYS: [NetworkKey; 5] = [
    ADDR_KEY,
    RESET_ADDR_KEY,
    REFUSED_ADDR_KEY,
    UNSIGNED_LOGOUT_KEY,
    BEARER_ADDR_KEY,
];

/// The prefix of a client-network slot's key, and of its /48's beside it.
type NetworkKey = (&'static str, &'static str);
const ADDR_KEY: NetworkKey = ("addr:", "addr48:");
const RESET_ADDR_KEY: NetworkKey = ("reset-addr:", "reset-addr48:");
const REFUSED_ADDR_KEY: NetworkKey = ("refused-addr:", "refused-addr48:");
const UNSIGNED_LOGOUT_KEY: NetworkKey = ("unsigned-logout:", "unsigned-logout48:");
const BEARER_ADDR_KEY: NetworkKey = ("bearer-addr:", "bearer-addr48:");

/// The longest window [`ThrottlePolicy::bearer_tokens`] may be given (`[server]
/// bad_tokens_window_seconds`): [`Throttle::purge`] forgets runs quiet for longer.
pub const MAX_BEARER_WINDOW: Duration = Duration::hours(1);

/// The doubling stops here (2^20 times the base is past any sensible maximum).
const MAX_SHIFT: i64 = 20;

fn millis(d: Duration) -> i64 {
    i64::try_from(d.whole_milliseconds()).unwrap_or(i64::MAX)
}

fn unix_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

pub use latchkey_sp::network::network_of;
use latchkey_sp::network::{WIDE_NETWORK_FACTOR, wide_network_of};

/// One key an attempt must get a slot under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    key: String,
    policy: ThrottlePolicy,
}

impl Slot {
    /// A name as typed (trimmed, case-folded) under `prefix`.
    fn named(prefix: &str, name: &str, policy: ThrottlePolicy) -> Slot {
        Slot {
            key: format!("{prefix}{}", store::fold(name.trim())),
            policy,
        }
    }

    /// A client's network ([`network_of`]) under the key kind `kind` (one of [`WIDE_KEYS`]:
    /// an IPv6 client's /48 is taken beside it).
    fn on_network(kind: NetworkKey, address: &str, policy: ThrottlePolicy) -> Slot {
        Slot {
            key: format!("{}{}", kind.0, network_of(address)),
            policy,
        }
    }

    /// An account name as typed, from anywhere.
    pub fn account(name: &str) -> Slot {
        Slot::named("account:", name, ThrottlePolicy::ACCOUNT)
    }

    /// An account name as typed, from one client address.
    pub fn pair(name: &str, address: &str) -> Slot {
        Slot {
            key: format!("pair:{}|{}", store::fold(name.trim()), network_of(address)),
            policy: ThrottlePolicy::PAIR,
        }
    }

    /// A client address.
    pub fn address(address: &str) -> Slot {
        Slot::on_network(ADDR_KEY, address, ThrottlePolicy::ADDRESS)
    }

    /// A trusted browser (the nonce of a verified device cookie).
    pub fn device(nonce: &str) -> Slot {
        Slot {
            key: format!("device:{nonce}"),
            policy: ThrottlePolicy::DEVICE,
        }
    }

    /// A user's second-factor checks ([`crate::mfa`]), keyed by the user's id: only a
    /// user who passed the password step has one.
    pub fn factor(user: crate::ids::UserId) -> Slot {
        Slot {
            key: format!("factor:{user}"),
            policy: ThrottlePolicy::FACTOR,
        }
    }

    /// A password-reset request for a name or e-mail address as typed.
    pub fn reset_name(name: &str) -> Slot {
        Slot::named("reset:", name, ThrottlePolicy::RESET_ACCOUNT)
    }

    /// A password-reset link for one existing account, however it was named: the bound on
    /// mail to its owner.
    pub fn reset_user(user: crate::ids::UserId) -> Slot {
        Slot {
            key: format!("reset-user:{user}"),
            policy: ThrottlePolicy::RESET_ACCOUNT,
        }
    }

    /// Password-reset requests from a client address.
    pub fn reset_address(address: &str) -> Slot {
        Slot::on_network(RESET_ADDR_KEY, address, ThrottlePolicy::RESET_ADDRESS)
    }

    /// An anonymous SAML request answered with an error Status, from a client address.
    pub fn refused_request(address: &str) -> Slot {
        Slot::on_network(REFUSED_ADDR_KEY, address, ThrottlePolicy::REFUSED_REQUEST)
    }

    /// An unsigned LogoutRequest accepted under the legacy opt-in, from a client address.
    pub fn unsigned_logout(address: &str) -> Slot {
        Slot::on_network(
            UNSIGNED_LOGOUT_KEY,
            address,
            ThrottlePolicy::UNSIGNED_LOGOUT,
        )
    }

    /// A request presenting a bearer token (admin API, SCIM) from a client address, under
    /// `policy` (the server's [`ThrottlePolicy::bearer_tokens`]).
    pub fn bearer_token(address: &str, policy: ThrottlePolicy) -> Slot {
        Slot::on_network(BEARER_ADDR_KEY, address, policy)
    }

    /// The key in the table.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// For an IPv6 client's address slot (of any kind in [`WIDE_KEYS`]), the slot of its /48.
    fn wide(&self) -> Option<Slot> {
        WIDE_KEYS.iter().find_map(|(prefix, wide_prefix)| {
            let network = self.key.strip_prefix(prefix)?;
            wide_network_of(network).map(|wide| Slot {
                key: format!("{wide_prefix}{wide}"),
                policy: self.policy.widened(),
            })
        })
    }
}

/// Whether an attempt may go on to the password check.
#[derive(Debug)]
#[must_use]
pub enum Admission {
    /// Go on; report the outcome with [`Throttle::succeeded`], or [`Throttle::not_checked`]
    /// if the check never ran. A failure needs nothing: its slots stay counted.
    Admitted(Attempt),
    /// A key is blocked; try again after this long.
    Refused {
        /// Until the blocking key admits an attempt again (at least one second).
        retry_after: Duration,
    },
}

/// The slots an admitted attempt holds.
#[derive(Debug)]
pub struct Attempt {
    slots: Vec<Slot>,
}

/// The throttle table.
#[derive(Debug, Clone, Copy)]
pub struct Throttle<'s> {
    store: &'s Store,
}

/// Takes one slot. `$2` now, `$3` the block a first attempt sets, `$4` the end of the
/// quiet window (a run whose last attempt is older starts again), `$5` the free attempts,
/// `$6` the base block, `$7` the longest (all milliseconds). The `WHERE` makes a blocked key
/// refuse without counting; `RETURNING` then yields no row. Every `SET` expression reads
/// the row as it was, so `n` is spelled out where it is needed. Portable: SQLite and
/// PostgreSQL both have `<<` on integers and `RETURNING`.
fn take_sql() -> String {
    let n = "(CASE WHEN login_attempts.last_at <= $4 THEN 1 ELSE login_attempts.attempts + 1 END)";
    let shift = format!(
        "CAST(CASE WHEN {n} - $5 > {MAX_SHIFT} THEN {MAX_SHIFT} ELSE {n} - $5 END AS INTEGER)"
    );
    let grown = format!("($6 * (1 << {shift}))");
    format!(
        "INSERT INTO login_attempts (throttle_key, attempts, last_at, blocked_until) \
         VALUES ($1, 1, $2, $3) \
         ON CONFLICT (throttle_key) DO UPDATE SET \
         attempts = {n}, last_at = $2, \
         blocked_until = CASE WHEN {n} < $5 THEN 0 \
         ELSE $2 + CASE WHEN {grown} > $7 THEN $7 ELSE {grown} END END \
         WHERE login_attempts.blocked_until <= $2 \
         RETURNING attempts"
    )
}

impl<'s> Throttle<'s> {
    /// The throttle in `store`.
    pub fn new(store: &'s Store) -> Self {
        Throttle { store }
    }

    /// Takes a slot under every key, in order, each atomically (an IPv6 client's address
    /// slot, of any kind, is followed by its /48's). If one refuses, the slots already taken are given
    /// back and the attempt is refused.
    pub async fn admit(&self, slots: Vec<Slot>, now: OffsetDateTime) -> Result<Admission> {
        let sql = take_sql();
        let now_ms = unix_ms(now);
        let mut taken: Vec<Slot> = Vec::with_capacity(slots.len() + 1);
        let slots = slots.into_iter().flat_map(|slot| {
            let wide = slot.wide();
            std::iter::once(slot).chain(wide)
        });
        for slot in slots {
            let p = slot.policy;
            let first_block = p.block_after(1).map_or(0, |d| now_ms + millis(d));
            let admitted: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone()))
                .bind(slot.key.as_str())
                .bind(now_ms)
                .bind(first_block)
                .bind(now_ms.saturating_sub(millis(p.quiet)))
                .bind(p.free)
                .bind(millis(p.base))
                .bind(millis(p.max_block))
                .fetch_optional(self.store.pool())
                .await?;
            if admitted.is_none() {
                let retry_after = self.blocked_for(&slot, now_ms).await?;
                self.give_back(&taken).await?;
                return Ok(Admission::Refused { retry_after });
            }
            taken.push(slot);
        }
        Ok(Admission::Admitted(Attempt { slots: taken }))
    }

    async fn blocked_for(&self, slot: &Slot, now_ms: i64) -> Result<Duration> {
        let until: Option<i64> =
            sqlx::query_scalar("SELECT blocked_until FROM login_attempts WHERE throttle_key = $1")
                .bind(slot.key.as_str())
                .fetch_optional(self.store.pool())
                .await?;
        let ms = until.unwrap_or(0).saturating_sub(now_ms);
        Ok(Duration::milliseconds(ms).max(Duration::seconds(1)))
    }

    async fn give_back(&self, slots: &[Slot]) -> Result<()> {
        for slot in slots {
            sqlx::query(
                "UPDATE login_attempts SET attempts = attempts - 1, \
                 blocked_until = CASE WHEN attempts - 1 < $2 THEN 0 ELSE blocked_until END \
                 WHERE throttle_key = $1 AND attempts > 0",
            )
            .bind(slot.key.as_str())
            .bind(slot.policy.free)
            .execute(self.store.pool())
            .await?;
            // A run back at nothing is no run: without this, a flood of attempts the hash
            // pool refuses (each a fresh name from a fresh address) would leave a row per
            // key until the next purge. One statement, so an attempt that took the slot in
            // between (attempts > 0 again) keeps its row.
            sqlx::query(
                "DELETE FROM login_attempts \
                 WHERE throttle_key = $1 AND attempts <= 0 AND blocked_until = 0",
            )
            .bind(slot.key.as_str())
            .execute(self.store.pool())
            .await?;
        }
        Ok(())
    }

    /// How many keys have a run (for tests and operators: what an attacker can make grow).
    pub async fn runs(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM login_attempts")
            .fetch_one(self.store.pool())
            .await?)
    }

    /// The attempt's password was right: each key resets or gives its slot back.
    pub async fn succeeded(&self, attempt: Attempt) -> Result<()> {
        let (reset, give): (Vec<Slot>, Vec<Slot>) = attempt
            .slots
            .into_iter()
            .partition(|s| s.policy.on_success == OnSuccess::Reset);
        for slot in reset {
            sqlx::query("DELETE FROM login_attempts WHERE throttle_key = $1")
                .bind(slot.key.as_str())
                .execute(self.store.pool())
                .await?;
        }
        self.give_back(&give).await
    }

    /// The attempt was admitted but its password never checked (the hash pool was full):
    /// it gives every slot back, as if it had not come.
    pub async fn not_checked(&self, attempt: Attempt) -> Result<()> {
        self.give_back(&attempt.slots).await
    }

    /// An attempt admitted in an earlier request under `slot` (and, for an IPv6 client, its
    /// /48) succeeded only now: as [`Self::succeeded`]. For an attempt that outlives its
    /// request: an unsigned LogoutRequest that came by POST takes its slot there, and ends
    /// a session only once continued. Never takes a count below zero.
    pub async fn succeeded_later(&self, slot: Slot) -> Result<()> {
        let wide = slot.wide();
        let slots = std::iter::once(slot).chain(wide).collect();
        self.succeeded(Attempt { slots }).await
    }

    /// Forgets runs that ended (quiet and not blocked) by `now`; returns how many.
    pub async fn purge(&self, now: OffsetDateTime) -> Result<u64> {
        let now_ms = unix_ms(now);
        let longest_quiet = [
            ThrottlePolicy::ACCOUNT,
            ThrottlePolicy::PAIR,
            ThrottlePolicy::ADDRESS,
            ThrottlePolicy::WIDE_ADDRESS,
            ThrottlePolicy::DEVICE,
            ThrottlePolicy::FACTOR,
            ThrottlePolicy::RESET_ACCOUNT,
            ThrottlePolicy::RESET_ADDRESS,
            ThrottlePolicy::WIDE_RESET_ADDRESS,
            ThrottlePolicy::REFUSED_REQUEST,
            ThrottlePolicy::WIDE_REFUSED_REQUEST,
            ThrottlePolicy::UNSIGNED_LOGOUT,
            ThrottlePolicy::WIDE_UNSIGNED_LOGOUT,
            // `bad_tokens_window_seconds` is at most an hour: no longer than these.
            ThrottlePolicy::bearer_tokens(1, MAX_BEARER_WINDOW),
        ]
        .iter()
        .map(|p| millis(p.quiet))
        .max()
        .unwrap_or(0);
        let done =
            sqlx::query("DELETE FROM login_attempts WHERE last_at <= $1 AND blocked_until <= $2")
                .bind(now_ms.saturating_sub(longest_quiet))
                .bind(now_ms)
                .execute(self.store.pool())
                .await?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_attempt_reaching_the_limit_blocks_and_each_further_one_doubles_up_to_the_cap() {
        let p = ThrottlePolicy::PAIR;
        assert_eq!(p.block_after(4), None);
        assert_eq!(p.block_after(5), Some(Duration::seconds(30)));
        assert_eq!(p.block_after(6), Some(Duration::seconds(60)));
        assert_eq!(p.block_after(9), Some(Duration::seconds(480)));
        assert_eq!(p.block_after(10), Some(Duration::minutes(15)));
        assert_eq!(p.block_after(100), Some(Duration::minutes(15)));
        assert_eq!(p.block_after(i64::MAX), Some(Duration::minutes(15)));
    }

    #[test]
    fn every_policy_keeps_its_numbers() {
        use OnSuccess::{GiveBack, Reset};
        type P = ThrottlePolicy;
        let (s30, m1, m5) = (
            Duration::seconds(30),
            Duration::minutes(1),
            Duration::minutes(5),
        );
        let (m15, h1) = (Duration::minutes(15), Duration::hours(1));
        // Each: free attempts, first block, longest block (also the quiet window), success.
        let table = [
            (P::ACCOUNT, 10, s30, m15, Reset),
            (P::PAIR, 5, s30, m15, Reset),
            (P::ADDRESS, 20, s30, m15, GiveBack),
            (P::WIDE_ADDRESS, 100, s30, m15, GiveBack),
            (P::DEVICE, 5, s30, m15, Reset),
            (P::FACTOR, 5, s30, m15, Reset),
            (P::RESET_ACCOUNT, 3, m15, h1, GiveBack),
            (P::RESET_ADDRESS, 10, m1, h1, GiveBack),
            (P::WIDE_RESET_ADDRESS, 50, m1, h1, GiveBack),
            (P::REFUSED_REQUEST, 30, m1, h1, GiveBack),
            (P::WIDE_REFUSED_REQUEST, 150, m1, h1, GiveBack),
            (P::UNSIGNED_LOGOUT, 30, m1, h1, GiveBack),
            (P::WIDE_UNSIGNED_LOGOUT, 150, m1, h1, GiveBack),
            (P::BEARER_TOKEN, 10, m5, m5, GiveBack),
        ];
        for (row, (policy, free, base, max_block, on_success)) in table.into_iter().enumerate() {
            let want = P {
                free,
                base,
                max_block,
                quiet: max_block,
                on_success,
            };
            assert_eq!(policy, want, "row {row}");
        }
    }

    #[test]
    fn keys_fold_case_and_name_their_kind() {
        assert_eq!(Slot::account(" Alice ").key(), "account:alice");
        assert_eq!(Slot::address("10.0.0.1").key(), "addr:10.0.0.1");
        assert_eq!(Slot::pair("ALICE", "10.0.0.1").key(), "pair:alice|10.0.0.1");
        assert_eq!(Slot::device("abc").key(), "device:abc");
        assert_eq!(
            Slot::reset_name(" Bob@Example.org").key(),
            "reset:bob@example.org"
        );
        assert_eq!(Slot::reset_address("10.0.0.1").key(), "reset-addr:10.0.0.1");
        assert_eq!(
            Slot::unsigned_logout("10.0.0.1").key(),
            "unsigned-logout:10.0.0.1"
        );
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64_and_mapped_v4_as_v4() {
        assert_eq!(
            Slot::address("2001:db8:1:2:aaaa::1").key(),
            Slot::address("2001:db8:1:2:ffff:1:2:3").key()
        );
        assert_eq!(
            Slot::address("2001:db8:1:2::9").key(),
            "addr:2001:db8:1:2::/64"
        );
        assert_ne!(
            Slot::address("2001:db8:1:2::1").key(),
            Slot::address("2001:db8:1:3::1").key()
        );
        assert_eq!(Slot::address("::ffff:192.0.2.7").key(), "addr:192.0.2.7");
        assert_eq!(
            Slot::pair("bob", "2001:db8::1").key(),
            "pair:bob|2001:db8:0:0::/64"
        );
        assert_eq!(Slot::address("unknown").key(), "addr:unknown");
    }

    #[test]
    fn every_kind_of_address_slot_of_an_ipv6_client_comes_with_its_48() {
        let v6 = "2001:db8:1:2::9";
        for (slot, key, policy) in [
            (
                Slot::address(v6),
                "addr48:2001:db8:1:",
                ThrottlePolicy::WIDE_ADDRESS,
            ),
            (
                Slot::reset_address(v6),
                "reset-addr48:2001:db8:1:",
                ThrottlePolicy::WIDE_RESET_ADDRESS,
            ),
            (
                Slot::refused_request(v6),
                "refused-addr48:2001:db8:1:",
                ThrottlePolicy::WIDE_REFUSED_REQUEST,
            ),
            (
                Slot::unsigned_logout(v6),
                "unsigned-logout48:2001:db8:1:",
                ThrottlePolicy::WIDE_UNSIGNED_LOGOUT,
            ),
            (
                Slot::bearer_token(v6, ThrottlePolicy::BEARER_TOKEN),
                "bearer-addr48:2001:db8:1:",
                ThrottlePolicy::BEARER_TOKEN.widened(),
            ),
        ] {
            let wide = slot.wide().unwrap();
            assert_eq!(wide.key(), key);
            assert_eq!(wide.policy, policy);
            assert_eq!(wide.policy.free, slot.policy.free * 5, "{key}");
            assert_eq!(
                (wide.policy.base, wide.policy.max_block, wide.policy.quiet),
                (slot.policy.base, slot.policy.max_block, slot.policy.quiet),
                "{key}: the same back-off"
            );
            assert_eq!(wide.policy.on_success, OnSuccess::GiveBack);
        }
        // IPv4 clients, names and devices have no wider slot.
        for slot in [
            Slot::address("192.0.2.7"),
            Slot::reset_address("192.0.2.7"),
            Slot::refused_request("::ffff:192.0.2.7"),
            Slot::unsigned_logout("192.0.2.7"),
            Slot::bearer_token("192.0.2.7", ThrottlePolicy::BEARER_TOKEN),
            Slot::pair("bob", v6),
            Slot::account("bob"),
            Slot::reset_name("bob"),
            Slot::device("abc"),
        ] {
            assert_eq!(slot.wide(), None, "{}", slot.key());
        }
    }
}
