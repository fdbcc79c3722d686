//! The flows that must hold on PostgreSQL, where many IdP nodes share one database.

#![allow(unused_imports)]

use sqlx::Connection as _;

use super::bursts::*;
use super::readiness::*;
use super::slo_cases::replayed_logout_request;
use axum::http::StatusCode;
use latchkey_idp::Actor;
use latchkey_idp::session::Sessions;
use latchkey_idp::{Clock, SystemClock};
use latchkey_saml::assertion::NameId;
use latchkey_saml::binding::{BindingLimits, MessageKind, redirect};
use latchkey_saml::logout::{LogoutRequest, LogoutResponse};
use latchkey_saml::status::code;
use latchkey_xmlsec::crypto::{SignatureAlgorithm, SigningKey};

use super::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_at_another_postgres_node_is_seen_by_the_next_sign_in() {
    let idp = idp_postgres().await;
    super::app_copies::changes_elsewhere_are_seen_at_once(&idp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simultaneous_guesses_for_one_account_evaluate_only_the_limit_postgres() {
    let idp = idp_postgres_with(|c| c.trust_forwarded_for = true).await;
    one_account_burst(&idp, std::slice::from_ref(&idp.router), &[&idp.store]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_on_one_postgres_share_the_limit() {
    let idp = idp_postgres_with(|c| c.trust_forwarded_for = true).await;
    let (router2, store2) = second_node(&idp).await;
    one_account_burst(&idp, &[idp.router.clone(), router2], &[&idp.store, &store2]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_authn_request_id_burst_gets_one_response_on_two_postgres_nodes() {
    let idp = idp_postgres().await;
    one_authn_request_burst(&idp).await;
}

#[tokio::test]
async fn readyz_is_503_while_the_postgres_table_is_locked() {
    let idp = idp_postgres().await;
    let url = idp.url.clone();
    not_ready_while_the_database_is_locked(&idp, async move || {
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::raw_sql("BEGIN; LOCK TABLE readiness_probe IN ACCESS EXCLUSIVE MODE")
            .execute(&mut conn)
            .await
            .unwrap();
        Box::new(conn) as Box<dyn std::any::Any>
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_flow_runs_on_postgresql() {
    let idp = idp_postgres().await;
    let mut b = Browser::new(&idp);
    // Throttle rows, sessions, parked requests and session apps all live in PostgreSQL.
    assert_eq!(
        b.login("alice", "wrong password", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    let request = authn_request(SP);
    let first = b.get(&redirect_uri(&request, Some("pg"))).await;
    let cont = first.location().to_owned();
    let login = b.get(&cont).await.location().to_owned();
    b.login("alice", PASSWORD, Some(&continue_key(&login)))
        .await;
    let page = b.get(&cont).await;
    let subject = sp_validate(&idp, SP, SP_ACS, &page.saml_response(), Some(&request.id)).unwrap();
    assert!(subject.session_index.is_some());
    let page = b.go(&format!("/saml/init/{}", idp.app.id)).await;
    let again = sp_validate(&idp, SP, SP_ACS, &page.saml_response(), None).unwrap();
    assert_eq!(again.name_id, subject.name_id);
    idp.store
        .users()
        .suspend(&Actor::system(), idp.alice.id)
        .await
        .unwrap();
    assert_eq!(b.get("/portal").await.location(), "/login");
}

/// The replay record lives in the store: the same on PostgreSQL, which many nodes share.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_logout_request_is_refused_on_postgresql() {
    replayed_logout_request(idp_postgres().await).await;
}

/// The unsigned-logout bound holds on two PostgreSQL nodes sharing one database.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_unsigned_logout_requests_is_bounded_on_two_postgres_nodes() {
    let idp = idp_postgres_with(|c| c.trust_forwarded_for = true).await;
    let (node_b, _) = second_node(&idp).await;
    super::slo_cases::unsigned_logout_burst(&idp, &[idp.router.clone(), node_b]).await;
}
