//! Reloads of a served policy directory: file changes, the Reload RPC,
//! SIGHUP, and rejected sets that leave the last good one serving.

mod support;

use std::{fs, process::Command};

use kafka_pdp_server::proto::{
    AuthorizeRequest, AuthorizeResponse, Decision, Operation as Op, ReloadRequest,
    ResourceType as Rt, StatusRequest, WatchPolicyVersionRequest,
};
use support::{action, context, copy_policies, eventually, policies_dir, Server};

const GRANT: &str = r#"
@id("nobody-reads-public")
permit (
  principal == Kafka::Principal::"User:nobody",
  action in [Kafka::Action::"Read"],
  resource in Kafka::TopicPrefix::"public."
);
"#;

/// Line 3 misses its closing parenthesis.
const BROKEN: &str = "@id(\"broken\")\npermit (\n  principal,\n  action,\n  resource\n;\n";

fn nobody_reads_public() -> AuthorizeRequest {
    AuthorizeRequest {
        context: Some(context("User:nobody")),
        actions: vec![action(Op::Read, Rt::Topic, "public.metrics")],
    }
}

fn decision(response: &AuthorizeResponse) -> i32 {
    response.results[0].decision
}

#[tokio::test]
async fn a_changed_file_is_reloaded_and_a_broken_one_is_rejected() {
    let dir = copy_policies(&policies_dir());
    let server = Server::plaintext(&["--policy-dir", dir.path().to_str().unwrap()]);
    let mut authorizer = server.authorizer().await;
    let mut admin = server.admin().await;

    let mut versions = authorizer
        .watch_policy_version(WatchPolicyVersionRequest {})
        .await
        .unwrap()
        .into_inner();
    let first = versions
        .message()
        .await
        .unwrap()
        .expect("the current version at once");
    let before = authorizer
        .authorize(nobody_reads_public())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(decision(&before), Decision::Deny as i32);
    assert_eq!(before.policy_version, first.version);

    // A new grant: the watch reports a new version and the decision changes,
    // although the DENY above sits in the decision cache.
    // Written aside and renamed, as editors and deploy tools do.
    fs::write(dir.path().join("extra.cedar.tmp"), GRANT).unwrap();
    fs::rename(
        dir.path().join("extra.cedar.tmp"),
        dir.path().join("extra.cedar"),
    )
    .unwrap();
    let second = versions.message().await.unwrap().expect("a new version");
    assert_ne!(second.version, first.version);
    let after = authorizer
        .authorize(nobody_reads_public())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(decision(&after), Decision::Allow as i32);
    assert_eq!(after.policy_version, second.version);

    // A broken file: rejected, visible in Status and the log, the last good set serves.
    fs::write(dir.path().join("broken.cedar"), BROKEN).unwrap();
    let last = eventually("the rejected reload in Status", || {
        let mut admin = admin.clone();
        async move {
            let status = admin.status(StatusRequest {}).await.ok()?.into_inner();
            status.last_reload.filter(|r| !r.accepted)
        }
    })
    .await;
    assert!(last.error.contains("broken.cedar:6:1: "), "{}", last.error);
    let status = admin.status(StatusRequest {}).await.unwrap().into_inner();
    assert_eq!(status.active_version, second.version);
    let still = authorizer
        .authorize(nobody_reads_public())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(decision(&still), Decision::Allow as i32);
    assert_eq!(still.policy_version, second.version);
    let log = server.stderr();
    assert!(
        log.contains("WARN") && log.contains("policy reload rejected"),
        "{log}"
    );
    assert!(log.contains("broken.cedar:6:1"), "{log}");

    // The Reload RPC answers with the outcome; fixed, the set is accepted.
    let rejected = admin.reload(ReloadRequest {}).await.unwrap().into_inner();
    assert!(!rejected.outcome.unwrap().accepted);
    assert_eq!(rejected.active_version, second.version);
    fs::remove_file(dir.path().join("broken.cedar")).unwrap();
    let accepted = admin.reload(ReloadRequest {}).await.unwrap().into_inner();
    assert!(accepted.outcome.unwrap().accepted);
    assert_eq!(
        accepted.active_version, second.version,
        "same content, same version"
    );
}

#[tokio::test]
async fn sighup_reloads_the_directory() {
    let dir = copy_policies(&policies_dir());
    let server = Server::plaintext(&["--policy-dir", dir.path().to_str().unwrap()]);
    let status = Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let admin = server.admin().await;
    let outcome = eventually("a reload after SIGHUP", || {
        let mut admin = admin.clone();
        async move {
            admin
                .status(StatusRequest {})
                .await
                .ok()?
                .into_inner()
                .last_reload
        }
    })
    .await;
    assert!(outcome.accepted);
    assert!(
        server.stderr().contains("cause=\"SIGHUP\""),
        "{}",
        server.stderr()
    );
}

#[tokio::test]
async fn the_embedded_set_is_not_reloadable() {
    let server = Server::plaintext(&[]);
    let mut admin = server.admin().await;
    let status = admin.reload(ReloadRequest {}).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
    let current = admin.status(StatusRequest {}).await.unwrap().into_inner();
    assert!(current.policy_dir.is_empty());
    assert!(current.policy_count > 0);
}

#[test]
fn an_invalid_directory_never_starts_serving() {
    let dir = copy_policies(&policies_dir());
    fs::write(dir.path().join("broken.cedar"), BROKEN).unwrap();
    let err = Server::try_start(&["--plaintext", "--policy-dir", dir.path().to_str().unwrap()])
        .err()
        .expect("must not start");
    assert!(err.contains("broken.cedar:6:1"), "{err}");
}
