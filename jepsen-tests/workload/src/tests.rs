//! The workload against the model.

use super::*;
use ticketd_checker::model::{Model, Now};
use ticketd_store::Outcome;

#[test]
fn the_setup_is_valid_for_the_model() {
    let mut m = Model::default();
    for (i, (key, cmd)) in sale_setup(2, 3).iter().enumerate() {
        let r = m
            .apply(i as u64 + 1, Now::default(), SETUP_CLIENT, key, cmd, None)
            .expect("modelled");
        assert!(matches!(r.outcome, Outcome::Done(_)), "{cmd:?}: {r:?}");
    }
}

#[test]
fn a_client_is_a_function_of_its_seed_and_answers() {
    let calls = |seed| {
        let mut c = SaleClient::new(0, 3, seed, "c".into());
        let mut t = Shared::default();
        (0..50)
            .map(|_| {
                let call = c.next("dt1", &t, &[1, 2, 3]);
                c.observe(&call, Seen::Unknown, None, &mut t);
                call
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(calls(5), calls(5));
    assert_ne!(calls(5), calls(6));
}
