//! Requests parked while their user signs in: anyone can have one parked, so parking takes a
//! place under a cap per owner and one over all anonymous owners, atomically, on every node.

use latchkey_idp::error::Error;
use latchkey_idp::ids::UserId;
use latchkey_idp::session::{
    PARK_TTL, ParkCaps, ParkOwner, Parkable, ParkedRequests, WIDE_OWNER_FACTOR,
};
use latchkey_idp::store::front_door::{EXPIRED_PER_START, FrontDoor, Scope};
use latchkey_idp::{ManualClock, Store};
use serde::{Deserialize, Serialize};
use time::Duration;
use tokio::task::JoinSet;

use crate::on_both_backends;
use crate::support::{TestStore, cheap_passwords, migrated_to};

on_both_backends!(
    parking_is_capped_per_network_and_in_all,
    a_burst_from_one_network_takes_no_more_than_its_cap,
    a_burst_from_one_48_takes_no_more_than_its_cap,
    a_mass_expiry_counts_for_nothing_and_one_park_deletes_a_few,
    the_64s_of_one_48_share_a_looser_cap,
    a_users_parks_neither_count_towards_the_total_nor_wait_for_it,
    every_count_a_park_takes_reads_the_kept_counts_by_key,
    the_kept_total_follows_parks_takes_and_expiry,
    a_burst_at_the_total_admits_exactly_up_to_it,
    an_upgraded_install_starts_its_kept_totals_at_the_rows_it_holds,
);

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Waiting {
    n: u32,
}

impl Parkable for Waiting {
    const KIND: &'static str = "test-waiting";
}

const CAPS: ParkCaps = ParkCaps {
    per_owner: 3,
    total: 5,
};

fn throttled(r: Result<String, Error>) -> bool {
    matches!(r, Err(Error::Throttled { .. }))
}

fn busy(r: Result<String, Error>) -> bool {
    matches!(r, Err(Error::Busy { .. }))
}

/// A client rotating through the /64s of its /48 holds at most `WIDE_OWNER_FACTOR` owners'
/// worth in all (each /64 within its own cap), refused 429-style; a neighbouring /48 and an
/// IPv4 client still park, and a taken request gives the /48 its place back.
async fn the_64s_of_one_48_share_a_looser_cap(t: TestStore) {
    let parked = ParkedRequests::new(&t.store).with_caps(ParkCaps {
        per_owner: 2,
        total: 100,
    });
    let now = t.store.now();
    let in_48 = |net: u32, host: u32| ParkOwner::network(&format!("2001:db8:9:{net:x}::{host:x}"));
    let mut keys = Vec::new();
    for net in 0..WIDE_OWNER_FACTOR {
        for host in 0..2 {
            keys.push(
                parked
                    .park(&Waiting { n: host }, &in_48(net, host + 1), now)
                    .await
                    .unwrap(),
            );
        }
    }
    let fresh = in_48(0xffff, 1);
    assert!(throttled(parked.park(&Waiting { n: 0 }, &fresh, now).await));
    // `2001:db8:9a::` is another /48, though its text begins with this one's.
    for neighbour in ["2001:db8:9a::1", "2001:db8:a::1", "192.0.2.1"] {
        parked
            .park(&Waiting { n: 0 }, &ParkOwner::network(neighbour), now)
            .await
            .unwrap();
    }
    assert!(parked.take::<Waiting>(&keys[0]).await.unwrap());
    parked.park(&Waiting { n: 1 }, &fresh, now).await.unwrap();
    assert!(throttled(parked.park(&Waiting { n: 2 }, &fresh, now).await));
}

/// A network holds at most its cap (429-style refusal), others are not held up by it, the
/// total cap holds across networks (503-style), an IPv6 client counts as its /64, and
/// requests that expire or are taken make room.
async fn parking_is_capped_per_network_and_in_all(t: TestStore) {
    let clock = ManualClock::starting_now();
    let store = t.store.with_clock(clock.clone());
    let parked = ParkedRequests::new(&store).with_caps(CAPS);
    let now = || store.now();
    let office = ParkOwner::network("203.0.113.5");
    let mut keys = Vec::new();
    for n in 0..3 {
        keys.push(parked.park(&Waiting { n }, &office, now()).await.unwrap());
    }
    assert!(throttled(
        parked.park(&Waiting { n: 9 }, &office, now()).await
    ));
    // Rotating through one /64 is one network.
    let v6 = |host: &str| ParkOwner::network(&format!("2001:db8:1:2:{host}"));
    parked
        .park(&Waiting { n: 3 }, &v6("::1"), now())
        .await
        .unwrap();
    parked
        .park(&Waiting { n: 4 }, &v6("aa::2"), now())
        .await
        .unwrap();
    // Five live in all: the next network finds the table full.
    assert!(busy(
        parked
            .park(
                &Waiting { n: 5 },
                &ParkOwner::network("198.51.100.1"),
                now()
            )
            .await
    ));
    // A signed-in user's park is not held back by the anonymous flood.
    let user_key = parked
        .park(
            &Waiting { n: 6 },
            &ParkOwner::user(UserId::new_random()),
            now(),
        )
        .await
        .unwrap();
    assert!(parked.take::<Waiting>(&user_key).await.unwrap());
    // A refused park stored nothing: what was parked is still there, once each.
    let (first, _) = parked
        .peek::<Waiting>(&keys[0], now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first, Waiting { n: 0 });
    // Taking one makes room for its network.
    assert!(parked.take::<Waiting>(&keys[0]).await.unwrap());
    parked
        .park(&Waiting { n: 7 }, &office, now())
        .await
        .unwrap();
    assert!(throttled(
        parked.park(&Waiting { n: 8 }, &office, now()).await
    ));
    // Expired ones go and make room everywhere.
    clock.advance(PARK_TTL + Duration::seconds(1));
    for n in 0..3 {
        parked.park(&Waiting { n }, &office, now()).await.unwrap();
    }
    parked
        .park(
            &Waiting { n: 3 },
            &ParkOwner::network("198.51.100.1"),
            now(),
        )
        .await
        .unwrap();
    // The default caps are what a server without `[server] parked_*` gets.
    assert_eq!(
        ParkCaps::DEFAULT,
        ParkCaps {
            per_owner: 1_000,
            total: 50_000
        }
    );
}

/// Thirty parks at once from one network, half on a second node over the same database:
/// exactly the cap's three get a place. A count followed by an insert would let the burst
/// all see room.
async fn a_burst_from_one_network_takes_no_more_than_its_cap(t: TestStore) {
    let clock = ManualClock::starting_now();
    let a = t.store.clone().with_clock(clock.clone());
    let b = Store::open_url(&t.url, 5, cheap_passwords())
        .await
        .unwrap()
        .with_clock(clock.clone());
    let mut burst = JoinSet::new();
    for n in 0..30u32 {
        let store = if n % 2 == 0 { a.clone() } else { b.clone() };
        burst.spawn(async move {
            let now = store.now();
            ParkedRequests::new(&store)
                .with_caps(CAPS)
                .park(&Waiting { n }, &ParkOwner::network("192.0.2.44"), now)
                .await
        });
    }
    let (mut parked, mut refused) = (0, 0);
    while let Some(done) = burst.join_next().await {
        match done.unwrap() {
            Ok(_) => parked += 1,
            Err(Error::Throttled { .. }) => refused += 1,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!((parked, refused), (3, 27));
}

/// The total counts (and holds back) anonymous owners only: a user's parks (a sign-in waiting
/// for their second factor, their logout chain) take no place of it, so a flood from many
/// networks that fills it shuts no signed-in user out; each user is still held to the
/// per-owner cap, refused 429-style.
async fn a_users_parks_neither_count_towards_the_total_nor_wait_for_it(t: TestStore) {
    let parked = ParkedRequests::new(&t.store).with_caps(CAPS);
    let now = t.store.now();
    let alice = ParkOwner::user(UserId::new_random());
    for n in 0..CAPS.per_owner {
        parked.park(&Waiting { n }, &alice, now).await.unwrap();
    }
    // Records hung off a user's key (a logout chain's hops) take no place either.
    let chain = parked
        .park(
            &Waiting { n: 50 },
            &ParkOwner::user(UserId::new_random()),
            now,
        )
        .await
        .unwrap();
    parked
        .park_under(&chain, &Hop { n: 51 }, now)
        .await
        .unwrap();
    // total - 1 anonymous rows from several networks, then the last place.
    let network = |n: u32| ParkOwner::network(&format!("198.51.100.{n}"));
    for n in 0..CAPS.total - 1 {
        parked.park(&Waiting { n }, &network(n), now).await.unwrap();
    }
    parked
        .park(&Waiting { n: 99 }, &network(99), now)
        .await
        .unwrap();
    // The anonymous total is reached: the next network finds it full (503-style).
    assert!(busy(
        parked.park(&Waiting { n: 100 }, &network(100), now).await
    ));
    // A user's park still goes, a new user's or one under their own cap.
    let bob = ParkOwner::user(UserId::new_random());
    let key = parked.park(&Waiting { n: 7 }, &bob, now).await.unwrap();
    let (waiting, _) = parked.peek::<Waiting>(&key, now).await.unwrap().unwrap();
    assert_eq!(waiting, Waiting { n: 7 });
    // A user's own cap still holds: 429-style, not "busy".
    assert!(throttled(parked.park(&Waiting { n: 8 }, &alice, now).await));
    for n in 1..CAPS.per_owner {
        parked.park(&Waiting { n }, &bob, now).await.unwrap();
    }
    assert!(throttled(parked.park(&Waiting { n: 9 }, &bob, now).await));
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Hop {
    n: u32,
}

impl Parkable for Hop {
    const KIND: &'static str = "test-hop";
}

/// Every count a park takes (its owner's, its /48's, all anonymous owners') is read from the
/// counts kept in step by their key, never from the table: with tens of thousands of live
/// rows under a flood, a count of the table (even of an index's range: up to a /48's cap of
/// entries) made every park, serialized under one lock, pay for it.
async fn every_count_a_park_takes_reads_the_kept_counts_by_key(t: TestStore) {
    super::flood(
        &t,
        "sso_parked_requests",
        5_000,
        "INSERT INTO sso_parked_requests \
         (key_hash, payload, created_at, expires_at, owner, wide) \
         SELECT 'flood' || n, $2, '2000-01-01T00:00:00Z', '9999-01-01T00:00:00Z', \
         'addr:2001:db8:' || (n % 500) || ':' || (n / 500) || '::/64', \
         'addr:2001:db8:' || (n % 500) || ':' FROM numbers",
    )
    .await;
    let parked = ParkedRequests::new(&t.store);
    let now = t.store.now();
    for owner in [
        ParkOwner::network("2001:db8:7:1::9"),
        ParkOwner::network("2001:db8:7:1::9"),
        ParkOwner::network("192.0.2.7"),
        ParkOwner::user(UserId::new_random()),
    ] {
        let plan = parked.explain_park(&owner, now).await.unwrap();
        super::counts_only_by_key(&plan, FrontDoor::Parked);
    }
}

/// The counts kept in step (migration 0660) are what the table holds after every kind of
/// write: parks (a user's counts for its owner only, the records hung off a key for
/// nothing), takes, and the expired rows a park deletes; and the total read at a time is the
/// live anonymous rows then: an expired row counts for nothing from the instant it expires,
/// deleted or not.
async fn the_kept_total_follows_parks_takes_and_expiry(t: TestStore) {
    let clock = ManualClock::starting_now();
    let store = t.store.clone().with_clock(clock.clone());
    let parked = ParkedRequests::new(&store).with_caps(ParkCaps {
        per_owner: 3,
        total: 50,
    });
    let network = |n: u32| ParkOwner::network(&format!("10.{n}.0.1"));
    let kept = async || {
        super::counts_follow_the_table(&t, FrontDoor::Parked).await;
        super::kept_and_counted(&t, FrontDoor::Parked, store.now()).await
    };
    assert_eq!(kept().await, (0, 0));
    let mut keys = Vec::new();
    for n in 0..3 {
        keys.push(
            parked
                .park(&Waiting { n }, &network(n), store.now())
                .await
                .unwrap(),
        );
    }
    keys.push(
        parked
            .park(
                &Waiting { n: 3 },
                &ParkOwner::network("2001:db8:1:2::3"),
                store.now(),
            )
            .await
            .unwrap(),
    );
    let alice = parked
        .park(
            &Waiting { n: 4 },
            &ParkOwner::user(UserId::new_random()),
            store.now(),
        )
        .await
        .unwrap();
    parked
        .park_under(&keys[0], &Hop { n: 5 }, store.now())
        .await
        .unwrap();
    assert_eq!(kept().await, (4, 4));
    let wide = |at| FrontDoor::Parked.live(&store, Scope::Wide, "addr:2001:db8:1:", at);
    assert_eq!(wide(store.now()).await.unwrap(), 1);
    // Takes: an anonymous one, a user's, a hop, and one already taken.
    assert!(parked.take::<Waiting>(&keys[1]).await.unwrap());
    assert!(parked.take::<Waiting>(&alice).await.unwrap());
    assert!(parked.take::<Hop>(&keys[0]).await.unwrap());
    assert!(!parked.take::<Waiting>(&keys[1]).await.unwrap());
    assert_eq!(kept().await, (3, 3));
    // Two more later; then the first three expire, and count for nothing at once.
    clock.advance(Duration::minutes(5));
    for n in 10..12 {
        parked
            .park(&Waiting { n }, &network(n), store.now())
            .await
            .unwrap();
    }
    assert_eq!(kept().await, (5, 5));
    clock.advance(PARK_TTL - Duration::minutes(4));
    assert_eq!(kept().await, (2, 2));
    assert_eq!(wide(store.now()).await.unwrap(), 0);
    parked
        .park(&Waiting { n: 20 }, &network(20), store.now())
        .await
        .unwrap();
    assert_eq!(kept().await, (3, 3));
    // All of them expired: nothing counts; the sweep deletes what the parks left.
    clock.advance(PARK_TTL);
    assert_eq!(kept().await, (0, 0));
    parked
        .park(&Waiting { n: 21 }, &network(21), store.now())
        .await
        .unwrap();
    assert_eq!(kept().await, (1, 1));
    FrontDoor::Parked.sweep(&store, store.now()).await.unwrap();
    assert_eq!(kept().await, (1, 1));
    assert_eq!(rows(&t).await, 1);
}

/// Every row `sso_parked_requests` holds, live or expired.
async fn rows(t: &TestStore) -> i64 {
    use sqlx::Connection as _;
    let mut conn = sqlx::AnyConnection::connect(&t.url).await.unwrap();
    sqlx::query_scalar("SELECT COUNT(*) FROM sso_parked_requests")
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

/// Sixty parks at once from sixty /64s of one IPv6 /48, half on a second node over the same
/// database: exactly the /48's cap (`WIDE_OWNER_FACTOR` owners' worth) get a place, the rest
/// are refused 429-style, and the /48's count is what the table holds.
async fn a_burst_from_one_48_takes_no_more_than_its_cap(t: TestStore) {
    const CAPS: ParkCaps = ParkCaps {
        per_owner: 2,
        total: 1_000,
    };
    let clock = ManualClock::starting_now();
    let a = t.store.clone().with_clock(clock.clone());
    let b = Store::open_url(&t.url, 5, cheap_passwords())
        .await
        .unwrap()
        .with_clock(clock.clone());
    let mut burst = JoinSet::new();
    for n in 0..60u32 {
        let store = if n % 2 == 0 { a.clone() } else { b.clone() };
        burst.spawn(async move {
            let now = store.now();
            ParkedRequests::new(&store)
                .with_caps(CAPS)
                .park(
                    &Waiting { n },
                    &ParkOwner::network(&format!("2001:db8:48:{n:x}::1")),
                    now,
                )
                .await
        });
    }
    let (mut parked, mut refused) = (0, 0);
    while let Some(done) = burst.join_next().await {
        match done.unwrap() {
            Ok(_) => parked += 1,
            Err(Error::Throttled { .. }) => refused += 1,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    let cap = CAPS.per_owner * WIDE_OWNER_FACTOR;
    assert_eq!((parked, refused), (cap, 60 - cap));
    assert_eq!(
        FrontDoor::Parked
            .live(&a, Scope::Wide, "addr:2001:db8:48:", a.now())
            .await
            .unwrap(),
        i64::from(cap)
    );
    super::counts_follow_the_table(&t, FrontDoor::Parked).await;
}

/// A flood that filled the total and a /48 runs out all at once: from that instant its rows
/// count for nothing (the next park from that /48 and from a new network get a place,
/// though nothing was deleted yet), the next park deletes only a few of them
/// (`EXPIRED_PER_START`), and the sweep the rest, leaving the counts what the table holds.
async fn a_mass_expiry_counts_for_nothing_and_one_park_deletes_a_few(t: TestStore) {
    const CAPS: ParkCaps = ParkCaps {
        per_owner: 1_000,
        total: 600,
    };
    let clock = ManualClock::starting_now();
    let store = t.store.clone().with_clock(clock.clone());
    let parked = ParkedRequests::new(&store).with_caps(CAPS);
    // 500 rows from the /48 2001:db8:5:: (its cap is 5,000), 100 more elsewhere: the total.
    let expires = latchkey_idp::session::PARK_TTL + Duration::seconds(0);
    let at = (store.now() + expires)
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
        ))
        .unwrap();
    let insert = "INSERT INTO sso_parked_requests \
         (key_hash, payload, created_at, expires_at, owner, wide) \
         SELECT 'flood' || n, $2, '2000-01-01T00:00:00.000000Z', '<at>', \
         CASE WHEN n <= 500 THEN 'addr:2001:db8:5:' || n || '::/64' \
         ELSE 'addr:198.51.100.' || (n - 500) END, \
         CASE WHEN n <= 500 THEN 'addr:2001:db8:5:' END FROM numbers"
        .replace("<at>", &at);
    super::flood(&t, "sso_parked_requests", 600, &insert).await;
    let from_48 = ParkOwner::network("2001:db8:5:ffff::1");
    assert!(busy(
        parked.park(&Waiting { n: 1 }, &from_48, store.now()).await
    ));
    clock.advance(expires + Duration::seconds(1));
    assert_eq!(
        super::kept_and_counted(&t, FrontDoor::Parked, store.now()).await,
        (0, 0)
    );
    parked
        .park(&Waiting { n: 2 }, &from_48, store.now())
        .await
        .unwrap();
    assert_eq!(rows(&t).await, 600 - EXPIRED_PER_START + 1);
    super::counts_follow_the_table(&t, FrontDoor::Parked).await;
    assert_eq!(
        FrontDoor::Parked
            .live(&store, Scope::Wide, "addr:2001:db8:5:", store.now())
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        FrontDoor::Parked.sweep(&store, store.now()).await.unwrap(),
        600 - EXPIRED_PER_START.unsigned_abs()
    );
    assert_eq!(rows(&t).await, 1);
    super::counts_follow_the_table(&t, FrontDoor::Parked).await;
    assert_eq!(
        super::kept_and_counted(&t, FrontDoor::Parked, store.now()).await,
        (1, 1)
    );
}

/// Forty anonymous parks at once from forty networks, half on a second node over the same
/// database, with fifteen places left in all: exactly fifteen get one, the rest are told
/// the IdP is busy, and the kept total is what the table holds. Then a burst of takes and
/// parks together leaves the kept total equal to the table's, never past the cap.
async fn a_burst_at_the_total_admits_exactly_up_to_it(t: TestStore) {
    const TOTAL: ParkCaps = ParkCaps {
        per_owner: 3,
        total: 20,
    };
    let clock = ManualClock::starting_now();
    let a = t.store.clone().with_clock(clock.clone());
    let b = Store::open_url(&t.url, 5, cheap_passwords())
        .await
        .unwrap()
        .with_clock(clock.clone());
    let network = |n: u32| ParkOwner::network(&format!("10.{n}.0.1"));
    let mut first = Vec::new();
    for n in 0..5 {
        let parked = ParkedRequests::new(&a).with_caps(TOTAL);
        first.push(
            parked
                .park(&Waiting { n }, &network(n), a.now())
                .await
                .unwrap(),
        );
    }
    let burst = |from: u32, count: u32| {
        let mut burst = JoinSet::new();
        for n in from..from + count {
            let store = if n % 2 == 0 { a.clone() } else { b.clone() };
            burst.spawn(async move {
                let now = store.now();
                ParkedRequests::new(&store)
                    .with_caps(TOTAL)
                    .park(&Waiting { n }, &network(n), now)
                    .await
            });
        }
        burst
    };
    let mut parks = burst(100, 40);
    let (mut parked, mut refused) = (0, 0);
    let mut keys = Vec::new();
    while let Some(done) = parks.join_next().await {
        match done.unwrap() {
            Ok(key) => {
                parked += 1;
                keys.push(key);
            }
            Err(Error::Busy { .. }) => refused += 1,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!((parked, refused), (15, 25));
    assert_eq!(
        super::kept_and_counted(&t, FrontDoor::Parked, a.now()).await,
        (20, 20)
    );
    super::counts_follow_the_table(&t, FrontDoor::Parked).await;

    // Takes of every place and new parks at once, on both nodes.
    let mut parks = burst(200, 30);
    let mut takes = JoinSet::new();
    for (n, key) in first.into_iter().chain(keys).enumerate() {
        let store = if n % 2 == 0 { a.clone() } else { b.clone() };
        takes.spawn(async move { ParkedRequests::new(&store).take::<Waiting>(&key).await });
    }
    while let Some(done) = takes.join_next().await {
        assert!(done.unwrap().unwrap());
    }
    while let Some(done) = parks.join_next().await {
        match done.unwrap() {
            // Refused by the total, read as the /48's when a take freed a place between
            // the insert and the refusal's reading of it (PostgreSQL).
            Ok(_) | Err(Error::Busy { .. } | Error::Throttled { .. }) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    let (kept, counted) = super::kept_and_counted(&t, FrontDoor::Parked, a.now()).await;
    assert_eq!(kept, counted);
    assert!((1..=20).contains(&kept), "{kept}");
    super::counts_follow_the_table(&t, FrontDoor::Parked).await;
}

/// Migrations 0655 and 0660 start each kept count at the rows an install already holds
/// (a network's parks, ceremonies without a user, each owner's and each /48's: the rows'
/// `wide` filled in from their owner), not at zero: otherwise a table a flood had filled
/// would take as many again.
async fn an_upgraded_install_starts_its_kept_totals_at_the_rows_it_holds(t: TestStore) {
    let (pool, url, _dir) = migrated_to(&t, 640).await;
    for (n, owner) in [
        "addr:192.0.2.1",
        "addr:2001:db8:1:2::/64",
        "addr:192.0.2.1",
        "user:6f0b2a40-6c1e-4a53-9a86-000000000001",
    ]
    .into_iter()
    .enumerate()
    {
        sqlx::query(
            "INSERT INTO sso_parked_requests (key_hash, payload, created_at, expires_at, owner) \
             VALUES ($1, '{}', '2000-01-01T00:00:00Z', '9999-01-01T00:00:00Z', $2)",
        )
        .bind(format!("old{n}"))
        .bind(owner)
        .execute(&pool)
        .await
        .unwrap();
    }
    // A record hung off a key: no owner.
    sqlx::query(
        "INSERT INTO sso_parked_requests (key_hash, payload, created_at, expires_at) \
         VALUES ('hop', '{}', '2000-01-01T00:00:00Z', '9999-01-01T00:00:00Z')",
    )
    .execute(&pool)
    .await
    .unwrap();
    for n in 0..2 {
        sqlx::query(
            "INSERT INTO webauthn_challenges (handle_hash, kind, owner, user_id, state, \
             expires_at) VALUES ($1, 'passwordless', 'addr:192.0.2.9', NULL, '{}', 9000000000000)",
        )
        .bind(format!("old{n}"))
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;

    let store = Store::open_url(&url, 2, cheap_passwords()).await.unwrap();
    let upgraded = TestStore {
        store,
        dir: None,
        url,
    };
    let now = upgraded.store.now();
    assert_eq!(
        super::kept_and_counted(&upgraded, FrontDoor::Parked, now).await,
        (3, 3)
    );
    assert_eq!(
        super::kept_and_counted(&upgraded, FrontDoor::Ceremonies, now).await,
        (2, 2)
    );
    for door in [FrontDoor::Parked, FrontDoor::Ceremonies] {
        super::counts_follow_the_table(&upgraded, door).await;
    }
    let live = |scope, name| FrontDoor::Parked.live(&upgraded.store, scope, name, now);
    assert_eq!(live(Scope::Wide, "addr:2001:db8:1:").await.unwrap(), 1);
    assert_eq!(live(Scope::Owner, "addr:192.0.2.1").await.unwrap(), 2);
    // And from there they follow the table.
    ParkedRequests::new(&upgraded.store)
        .park(
            &Waiting { n: 1 },
            &ParkOwner::network("192.0.2.1"),
            upgraded.store.now(),
        )
        .await
        .unwrap();
    assert_eq!(
        super::kept_and_counted(&upgraded, FrontDoor::Parked, now).await,
        (4, 4)
    );
    super::counts_follow_the_table(&upgraded, FrontDoor::Parked).await;
}
