//! TLS and mutual TLS, with a CA and certificates made by the test.

mod support;

use std::{fs, path::PathBuf};

use kafka_pdp_server::{
    client::Connect,
    proto::{
        authorizer_client::AuthorizerClient, AuthorizeRequest, Decision, Operation, ResourceType,
    },
};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use support::{action, context, Server};

/// A CA with a server certificate (for `localhost` and 127.0.0.1) and a
/// client certificate, as PEM files in a temp dir.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki { dir };
        let ca = pki.ca("kafka-pdp test CA", "ca");
        pki.leaf(&ca, "server", ExtendedKeyUsagePurpose::ServerAuth);
        pki.leaf(&ca, "client", ExtendedKeyUsagePurpose::ClientAuth);
        let other = pki.ca("some other CA", "other-ca");
        pki.leaf(&other, "stranger", ExtendedKeyUsagePurpose::ClientAuth);
        pki
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn arg(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    fn ca(&self, common_name: &str, file: &str) -> Issuer<'static, KeyPair> {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        fs::write(self.path(&format!("{file}.pem")), cert.pem()).unwrap();
        Issuer::new(params, key)
    }

    fn leaf(&self, issuer: &Issuer<'static, KeyPair>, name: &str, usage: ExtendedKeyUsagePurpose) {
        let sans = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let mut params = CertificateParams::new(sans).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, issuer).unwrap();
        fs::write(self.path(&format!("{name}.pem")), cert.pem()).unwrap();
        fs::write(self.path(&format!("{name}.key")), key.serialize_pem()).unwrap();
    }

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
    let pki = Pki::new();
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
    let pki = Pki::new();
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
    let pki = Pki::new();
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
