//! TLS and mutual TLS, with a CA and certificates made by the test.

mod support;

use kafka_pdp_server::{
    client::Connect,
    proto::{
        authorizer_client::AuthorizerClient, AuthorizeRequest, Decision, Operation, ResourceType,
    },
};
use rcgen::ExtendedKeyUsagePurpose;
use support::{action, context, pki::Pki, Server};

/// A CA with a server certificate (for `localhost` and 127.0.0.1) and a
/// client certificate, and a stranger's certificate from another CA.
fn pki() -> Pki {
    let pki = Pki::new();
    let ca = pki.ca("kafka-pdp test CA", "ca");
    pki.leaf(&ca, "server", &[ExtendedKeyUsagePurpose::ServerAuth]);
    pki.leaf(&ca, "client", &[ExtendedKeyUsagePurpose::ClientAuth]);
    let other = pki.ca("some other CA", "other-ca");
    pki.leaf(&other, "stranger", &[ExtendedKeyUsagePurpose::ClientAuth]);
    pki
}

/// A client of `server` that trusts `ca.pem` and shows `identity` if given.
trait Connects {
    fn connect(&self, server: &Server, identity: Option<&str>) -> Connect;
}

impl Connects for Pki {
    fn connect(&self, server: &Server, identity: Option<&str>) -> Connect {
        Connect {
            server: server.addr.to_string(),
            plaintext: false,
            ca: Some(self.path("ca.pem")),
            identity: identity.map(|n| {
                (
                    self.path(&format!("{n}.pem")),
                    self.path(&format!("{n}.key")),
                )
            }),
        }
    }
}

fn request() -> AuthorizeRequest {
    AuthorizeRequest {
        context: Some(context("User:lab-results-consumer")),
        actions: vec![action(
            Operation::Read,
            ResourceType::Topic,
            "phi.labs.results",
        )],
    }
}

/// Connects and makes one call; the error text when either fails.
async fn call(connect: Connect) -> Result<i32, String> {
    let channel = connect
        .channel()
        .await
        .map_err(|e| format!("connect: {e:?}"))?;
    let response = AuthorizerClient::new(channel)
        .authorize(request())
        .await
        .map_err(|e| format!("call: {e:?}"))?;
    Ok(response.into_inner().results[0].decision)
}

#[tokio::test]
async fn tls_serves_clients_that_trust_the_ca() {
    let pki = pki();
    let server = Server::start(&[
        "--tls-cert",
        &pki.arg("server.pem"),
        "--tls-key",
        &pki.arg("server.key"),
    ]);
    assert_eq!(
        call(pki.connect(&server, None)).await,
        Ok(Decision::Allow as i32)
    );

    // A plaintext client cannot talk to a TLS server.
    assert!(call(server.plaintext_connect()).await.is_err());
}

#[tokio::test]
async fn mutual_tls_refuses_clients_without_a_certificate_from_the_ca() {
    let pki = pki();
    let server = Server::start(&[
        "--tls-cert",
        &pki.arg("server.pem"),
        "--tls-key",
        &pki.arg("server.key"),
        "--tls-client-ca",
        &pki.arg("ca.pem"),
    ]);
    let with_cert = call(pki.connect(&server, Some("client"))).await;
    assert_eq!(with_cert, Ok(Decision::Allow as i32));

    let without = call(pki.connect(&server, None)).await;
    assert!(
        without.is_err(),
        "a client without a certificate was served"
    );

    let stranger = call(pki.connect(&server, Some("stranger"))).await;
    assert!(
        stranger.is_err(),
        "a certificate from another CA was accepted"
    );
}

#[tokio::test]
async fn the_cli_checks_over_mutual_tls() {
    let pki = pki();
    let server = Server::start(&[
        "--tls-cert",
        &pki.arg("server.pem"),
        "--tls-key",
        &pki.arg("server.key"),
        "--tls-client-ca",
        &pki.arg("ca.pem"),
    ]);
    let addr = server.addr.to_string();
    let base = [
        "check",
        "--server",
        &addr,
        "--principal",
        "User:lab-results-consumer",
        "--operation",
        "Read",
        "--resource",
        "phi.labs.results",
        "--tls-ca",
    ];
    let mut args = base.to_vec();
    let ca = pki.arg("ca.pem");
    let (cert, key) = (pki.arg("client.pem"), pki.arg("client.key"));
    args.extend([ca.as_str(), "--tls-cert", &cert, "--tls-key", &key]);
    let out = support::run(&args);
    assert_eq!(out.status.code(), Some(0), "{}", support::stderr(&out));
    assert!(support::stdout(&out).contains("decision: ALLOW"));

    let mut without = base.to_vec();
    without.push(ca.as_str());
    let out = support::run(&without);
    assert_eq!(
        out.status.code(),
        Some(1),
        "no client certificate is an error, not a DENY"
    );
}

#[test]
fn a_missing_certificate_file_is_named() {
    let out = support::run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        "no-such-cert.pem",
        "--tls-key",
        "no-such-key.pem",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        support::stderr(&out).contains("`no-such-cert.pem`"),
        "{}",
        support::stderr(&out)
    );
}
