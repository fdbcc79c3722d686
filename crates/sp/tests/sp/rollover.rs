//! The SP following an IdP key rollover on its own: metadata from a local HTTP server that
//! changes between fetches; a Response that fails on the keys makes the SP fetch it once more
//! (at most once per `refetch_seconds`, however many fail at once) and verify again.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use latchkey_saml::metadata::EntityDescriptor;
use latchkey_sp::binding::BrowserBinding;
use latchkey_sp::fetch;
use latchkey_sp::idp::IdpTrust;
use latchkey_sp::settings::SpConfig;
use latchkey_sp::{AcsForm, ServiceProvider};
use latchkey_xmlsec::crypto::Certificate;
use time::{Duration, OffsetDateTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::keys::pair;
use crate::toolkit::{ACS, IDP, NOW, SP, form, idp_entity, new_key, old_key, response};

/// An HTTP server that answers every request with the current metadata and counts them.
struct MetadataServer {
    url: String,
    body: Arc<Mutex<String>>,
    hits: Arc<AtomicUsize>,
}

impl MetadataServer {
    async fn start(entity: &EntityDescriptor) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/saml/metadata", listener.local_addr().unwrap());
        let body = Arc::new(Mutex::new(entity.to_xml().unwrap()));
        let hits = Arc::new(AtomicUsize::new(0));
        let (served, counted) = (Arc::clone(&body), Arc::clone(&hits));
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let body = served.lock().unwrap().clone();
                let counted = Arc::clone(&counted);
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    counted.fetch_add(1, Ordering::SeqCst);
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/samlmetadata+xml\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = socket.write_all(head.as_bytes()).await;
                    let _ = socket.write_all(body.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Self { url, body, hits }
    }

    fn serve(&self, entity: &EntityDescriptor) {
        *self.body.lock().unwrap() = entity.to_xml().unwrap();
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    fn config(&self) -> SpConfig {
        SpConfig::from_toml(
            &format!(
                "entity_id = \"{SP}\"\nacs_url = \"{ACS}\"\nallow_idp_initiated = true\n\
                 [idp]\nmetadata_url = \"{}\"\n",
                self.url
            ),
            std::path::Path::new("/etc/app"),
        )
        .unwrap()
    }

    /// An SP that loaded the metadata from this server at `NOW`.
    async fn sp(&self) -> ServiceProvider {
        let config = self.config();
        let idp = fetch::load_idp(&config, NOW).await.unwrap();
        ServiceProvider::new(&config, None, idp).unwrap()
    }
}

fn metadata(certs: &[&Certificate], valid_until: Option<OffsetDateTime>) -> EntityDescriptor {
    let mut entity = idp_entity(IDP, certs);
    entity.valid_until = valid_until;
    entity
}

async fn verify(sp: &ServiceProvider, form: &AcsForm, at: OffsetDateTime) -> Result<(), String> {
    sp.verify_response(form, &BrowserBinding::none(), at)
        .await
        .map(|_| ())
        .map_err(|e| e.code().as_str().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_signed_by_a_newly_published_key_is_accepted_after_one_refetch() {
    let server = MetadataServer::start(&metadata(&[&old_key().cert], None)).await;
    let sp = server.sp().await;
    assert_eq!(server.hits(), 1);

    // The IdP rotated and activated: the new key signs, and only the new metadata lists it.
    server.serve(&metadata(&[&old_key().cert, &new_key().cert], None));
    let signed_by_new = form(&response(None, "_new1", &new_key().key), None);
    assert_eq!(verify(&sp, &signed_by_new, NOW).await, Ok(()));
    assert_eq!(server.hits(), 2, "exactly one re-fetch");
    assert_eq!(sp.idp().keys.len(), 2);

    // The new keys are kept: the next response needs no fetch.
    let again = form(&response(None, "_new2", &new_key().key), None);
    assert_eq!(verify(&sp, &again, NOW).await, Ok(()));
    assert_eq!(server.hits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_signatures_are_refused_and_a_burst_causes_one_fetch() {
    let server = MetadataServer::start(&metadata(&[&old_key().cert], None)).await;
    let sp = server.sp().await;
    let forger = pair();

    // Twenty forged responses at once: all refused, one fetch between them.
    let burst: Vec<_> = (0..20)
        .map(|i| {
            let sp = sp.clone();
            let forged = form(&response(None, &format!("_f{i}"), &forger.key), None);
            tokio::spawn(async move { verify(&sp, &forged, NOW).await })
        })
        .collect();
    for task in burst {
        assert_eq!(task.await.unwrap(), Err("SIGNATURE_INVALID".to_owned()));
    }
    assert_eq!(server.hits(), 2, "one forced fetch for the whole burst");

    // Within refetch_seconds (60 by default) a failure fetches nothing; after it, once more.
    let forged = form(&response(None, "_f20", &forger.key), None);
    assert!(
        verify(&sp, &forged, NOW + Duration::seconds(59))
            .await
            .is_err()
    );
    assert_eq!(server.hits(), 2);
    let forged = form(&response(None, "_f21", &forger.key), None);
    assert!(
        verify(&sp, &forged, NOW + Duration::seconds(60))
            .await
            .is_err()
    );
    assert_eq!(server.hits(), 3);

    // A response the trusted key did sign still passes, without a fetch.
    let good = form(&response(None, "_ok", &old_key().key), None);
    assert_eq!(
        verify(&sp, &good, NOW + Duration::seconds(61)).await,
        Ok(())
    );
    assert_eq!(server.hits(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_metadata_is_fetched_again_or_refused() {
    let soon = NOW + Duration::minutes(1);
    let later = NOW + Duration::minutes(2);
    let server = MetadataServer::start(&metadata(&[&old_key().cert], Some(soon))).await;
    let sp = server.sp().await;
    let signed = |id: &str| form(&response(None, id, &old_key().key), None);

    // Still valid: no fetch.
    assert_eq!(verify(&sp, &signed("_e1"), NOW).await, Ok(()));
    assert_eq!(server.hits(), 1);

    // Past validUntil and the server still has only the expired copy: refused.
    assert_eq!(
        verify(&sp, &signed("_e2"), later).await,
        Err("IDP_METADATA_UNUSABLE".to_owned())
    );
    assert_eq!(server.hits(), 2);

    // The IdP publishes a fresh copy; once the rate limit allows, it is fetched and used.
    server.serve(&metadata(&[&old_key().cert], Some(NOW + Duration::days(1))));
    assert_eq!(
        verify(&sp, &signed("_e3"), later + Duration::seconds(60)).await,
        Ok(())
    );
    assert_eq!(server.hits(), 3);

    // Metadata from a file cannot be fetched again: an expired copy verifies nothing.
    let from_file = ServiceProvider::new(
        &crate::toolkit::config("allow_idp_initiated = true"),
        None,
        IdpTrust::from_metadata(
            &metadata(&[&old_key().cert], Some(soon)).to_xml().unwrap(),
            None,
            NOW,
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        verify(&from_file, &signed("_e4"), later).await,
        Err("IDP_METADATA_UNUSABLE".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_refresh_follows_cache_duration() {
    let mut entity = metadata(&[&old_key().cert], None);
    entity.cache_duration = Some(Duration::minutes(10));
    let server = MetadataServer::start(&entity).await;
    let sp = server.sp().await;
    let next = fetch::refresh_once(&sp, &server.config()).await.unwrap();
    assert_eq!(next, Duration::minutes(10));
    assert_eq!(server.hits(), 2);
}

#[test]
fn valid_until_brings_the_next_refresh_forward() {
    let trust = |valid_until| {
        IdpTrust::from_metadata(
            &metadata(&[&old_key().cert], valid_until).to_xml().unwrap(),
            None,
            NOW,
        )
        .unwrap()
    };
    let hour = Duration::hours(1);
    // cacheDuration (2 h in these fixtures) when nothing expires sooner.
    assert_eq!(trust(None).next_refresh(hour, NOW), Duration::hours(2));
    assert_eq!(
        trust(Some(NOW + Duration::days(1))).next_refresh(hour, NOW),
        Duration::hours(2)
    );
    // validUntil first: refresh as it expires, but never in a loop.
    let expiring = trust(Some(NOW + Duration::minutes(5)));
    assert_eq!(expiring.next_refresh(hour, NOW), Duration::minutes(5));
    assert_eq!(
        expiring.next_refresh(hour, NOW + Duration::minutes(10)),
        Duration::minutes(1)
    );
    assert!(!expiring.is_expired(NOW));
    assert!(expiring.is_expired(NOW + Duration::minutes(5)));
}

/// Without `idp.entity_id`, the SP trusts the one IdP its metadata named when it started: a
/// refreshed document that names another IdP (the URL now serves another tenant, say) is a
/// failed refresh, not a new IdP, whether the background refresh or a failed signature's
/// re-fetch reads it. The trusted IdP and its keys stay as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refreshed_metadata_naming_another_idp_is_refused_and_the_trust_kept() {
    let server = MetadataServer::start(&metadata(&[&old_key().cert], None)).await;
    let sp = server.sp().await;
    server.serve(&idp_entity(
        "https://another-idp.example.org",
        &[&new_key().cert],
    ));

    assert!(fetch::refresh_once(&sp, &server.config()).await.is_err());
    assert_eq!(server.hits(), 2);
    assert_eq!(sp.idp().entity_id, IDP);
    assert_eq!(sp.idp().keys.len(), 1);

    let signed_by_new = form(&response(None, "_swap1", &new_key().key), None);
    assert!(verify(&sp, &signed_by_new, NOW).await.is_err());
    assert_eq!(server.hits(), 3, "the failed signature fetched once more");
    assert_eq!(sp.idp().entity_id, IDP);
    assert_eq!(sp.idp().keys.len(), 1);

    // The trusted key still verifies.
    let good = form(&response(None, "_swap2", &old_key().key), None);
    assert_eq!(verify(&sp, &good, NOW).await, Ok(()));
}

/// A metadata URL that redirects is followed only to where a configured URL may point: not
/// to plain HTTP on another host, where anyone on the path could swap the keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_is_not_followed_to_plain_http_elsewhere() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/saml/metadata", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = socket.read(&mut buf).await;
                let _ = socket
                    .write_all(
                        b"HTTP/1.1 302 Found\r\nlocation: http://metadata.invalid/saml/metadata\r\n\
                          content-length: 0\r\nconnection: close\r\n\r\n",
                    )
                    .await;
                let _ = socket.shutdown().await;
            });
        }
    });
    let error = fetch::fetch_metadata(&url).await.unwrap_err().to_string();
    assert!(error.contains("may not come from"), "{error}");
    let error = fetch::fetch_metadata("http://metadata.invalid/saml/metadata")
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("not https"), "{error}");
}
