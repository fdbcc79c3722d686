//! The throttle's address slots (sign-in, password-reset requests, refused SAML requests,
//! unsigned LogoutRequests):
//! an IPv6 client counts as its /64, and the /64s of one /48 count together too, so
//! rotating through a site's 65,536 /64s buys five addresses' worth of free attempts, not
//! 65,536.

use latchkey_idp::session::{Admission, Slot, Throttle, ThrottlePolicy};
use time::Duration;

use crate::on_both_backends;
use crate::support::TestStore;

on_both_backends!(
    the_64s_of_one_48_share_a_looser_budget,
    the_64s_of_one_48_share_a_looser_reset_budget,
    the_64s_of_one_48_share_a_looser_refusal_budget,
    the_64s_of_one_48_share_a_looser_unsigned_logout_budget,
    a_success_in_a_later_request_gives_its_slot_back
);

async fn the_64s_of_one_48_share_a_looser_budget(t: TestStore) {
    one_48(
        t,
        Slot::address,
        ThrottlePolicy::ADDRESS,
        ThrottlePolicy::WIDE_ADDRESS,
    )
    .await;
}

async fn the_64s_of_one_48_share_a_looser_reset_budget(t: TestStore) {
    one_48(
        t,
        Slot::reset_address,
        ThrottlePolicy::RESET_ADDRESS,
        ThrottlePolicy::WIDE_RESET_ADDRESS,
    )
    .await;
}

async fn the_64s_of_one_48_share_a_looser_refusal_budget(t: TestStore) {
    one_48(
        t,
        Slot::refused_request,
        ThrottlePolicy::REFUSED_REQUEST,
        ThrottlePolicy::WIDE_REFUSED_REQUEST,
    )
    .await;
}

async fn the_64s_of_one_48_share_a_looser_unsigned_logout_budget(t: TestStore) {
    one_48(
        t,
        Slot::unsigned_logout,
        ThrottlePolicy::UNSIGNED_LOGOUT,
        ThrottlePolicy::WIDE_UNSIGNED_LOGOUT,
    )
    .await;
}

/// Attempts from one /64 after another, each /64 staying under its own budget, until the
/// /48's budget refuses; then what is and is not held up by that block.
async fn one_48(
    t: TestStore,
    slot: fn(&str) -> Slot,
    narrow: ThrottlePolicy,
    wide_policy: ThrottlePolicy,
) {
    let throttle = Throttle::new(&t.store);
    let now = t.store.now();
    // Below each /64's own budget.
    let per_64 = narrow.free - 1;
    let wide = wide_policy.free;
    assert!(wide > per_64, "the test needs more than one /64");
    let mut admitted = 0;
    let mut refused = None;
    for i in 0..(wide + per_64) {
        let address = format!("2001:db8:9:{:x}::{:x}", i / per_64, i % per_64 + 1);
        match throttle.admit(vec![slot(&address)], now).await.unwrap() {
            // A wrong password: the slots stay taken.
            Admission::Admitted(_) => admitted += 1,
            Admission::Refused { retry_after } => {
                refused = Some(retry_after);
                break;
            }
        }
    }
    assert_eq!(admitted, wide, "the /48's free attempts, then a block");
    assert_eq!(refused, Some(wide_policy.base));
    // Another /48, and an IPv4 client, are not held up by it.
    for other in ["2001:db8:9a::1", "192.0.2.1"] {
        let admission = throttle.admit(vec![slot(other)], now).await.unwrap();
        assert!(matches!(admission, Admission::Admitted(_)), "{other}");
    }
    // A fresh /64 inside the /48 is refused, and its own slot given back.
    let fresh = "2001:db8:9:ffff::1";
    let admission = throttle.admit(vec![slot(fresh)], now).await.unwrap();
    assert!(matches!(admission, Admission::Refused { .. }));
    // Once the block ends, one attempt gets through.
    let later = now + wide_policy.base + Duration::seconds(1);
    let Admission::Admitted(attempt) = throttle.admit(vec![slot(fresh)], later).await.unwrap()
    else {
        panic!("the block ended");
    };
    throttle.succeeded(attempt).await.unwrap();
}

/// An unsigned LogoutRequest that came by POST takes its slot there and ends a session only
/// once continued: that later success gives the slot back, as a success in the same request
/// would, and lifts the block it set.
async fn a_success_in_a_later_request_gives_its_slot_back(t: TestStore) {
    let throttle = Throttle::new(&t.store);
    let now = t.store.now();
    let address = "198.51.100.44";
    let free = ThrottlePolicy::UNSIGNED_LOGOUT.free;
    for i in 0..free {
        let admission = throttle
            .admit(vec![Slot::unsigned_logout(address)], now)
            .await
            .unwrap();
        assert!(matches!(admission, Admission::Admitted(_)), "attempt {i}");
    }
    let take = || throttle.admit(vec![Slot::unsigned_logout(address)], now);
    assert!(matches!(take().await.unwrap(), Admission::Refused { .. }));
    throttle
        .succeeded_later(Slot::unsigned_logout(address))
        .await
        .unwrap();
    assert!(matches!(take().await.unwrap(), Admission::Admitted(_)));
    assert!(matches!(take().await.unwrap(), Admission::Refused { .. }));
    // A key with no run is left at nothing: a success gives back no slot it did not take.
    let elsewhere = "192.0.2.200";
    throttle
        .succeeded_later(Slot::unsigned_logout(elsewhere))
        .await
        .unwrap();
    for i in 0..free {
        let admission = throttle
            .admit(vec![Slot::unsigned_logout(elsewhere)], now)
            .await
            .unwrap();
        assert!(matches!(admission, Admission::Admitted(_)), "attempt {i}");
    }
    let admission = throttle
        .admit(vec![Slot::unsigned_logout(elsewhere)], now)
        .await
        .unwrap();
    assert!(matches!(admission, Admission::Refused { .. }));
}
