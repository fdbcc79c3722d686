//! The sign-in throttle's address slots: an IPv6 client counts as its /64, and the /64s of
//! one /48 count together too, so rotating through a site's 65,536 /64s buys five
//! addresses' worth of free guesses, not 65,536.

use latchkey_idp::session::{Admission, Slot, Throttle, ThrottlePolicy};
use time::Duration;

use crate::on_both_backends;
use crate::support::TestStore;

on_both_backends!(the_64s_of_one_48_share_a_looser_budget);

async fn the_64s_of_one_48_share_a_looser_budget(t: TestStore) {
    let throttle = Throttle::new(&t.store);
    let now = t.store.now();
    // Below each /64's own budget: 19 guesses from each /64 in turn.
    let per_64 = ThrottlePolicy::ADDRESS.free - 1;
    let wide = ThrottlePolicy::WIDE_ADDRESS.free;
    let mut admitted = 0;
    let mut refused = None;
    for i in 0..(wide + per_64) {
        let address = format!("2001:db8:9:{:x}::{:x}", i / per_64, i % per_64 + 1);
        match throttle
            .admit(vec![Slot::address(&address)], now)
            .await
            .unwrap()
        {
            // A wrong password: the slots stay taken.
            Admission::Admitted(_) => admitted += 1,
            Admission::Refused { retry_after } => {
                refused = Some(retry_after);
                break;
            }
        }
    }
    assert_eq!(admitted, wide, "the /48's free guesses, then a block");
    assert_eq!(refused, Some(Duration::seconds(30)));
    // Another /48, and an IPv4 client, are not held up by it.
    for other in ["2001:db8:9a::1", "192.0.2.1"] {
        let admission = throttle
            .admit(vec![Slot::address(other)], now)
            .await
            .unwrap();
        assert!(matches!(admission, Admission::Admitted(_)), "{other}");
    }
    // A fresh /64 inside the /48 is refused, and its own slot given back.
    let fresh = "2001:db8:9:ffff::1";
    let admission = throttle
        .admit(vec![Slot::address(fresh)], now)
        .await
        .unwrap();
    assert!(matches!(admission, Admission::Refused { .. }));
    // Once the block ends, a guess that succeeds gives its slots back.
    let later = now + Duration::seconds(31);
    let Admission::Admitted(attempt) = throttle
        .admit(vec![Slot::address(fresh)], later)
        .await
        .unwrap()
    else {
        panic!("the block ended");
    };
    throttle.succeeded(attempt).await.unwrap();
}
