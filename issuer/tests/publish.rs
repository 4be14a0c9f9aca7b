//! `irsa issuer publish` and `irsa issuer jwks`.

mod common;

use common::{fixture, kid_of, kids};
use irsa_issuer::cmd::jwks::{JwksArgs, jwks};
use irsa_issuer::cmd::publish::{PublishArgs, publish};
use irsa_issuer::cmd::{KeyFileArgs, SignerArgs};
use serde_json::Value;

fn args(out: Option<std::path::PathBuf>, dry_run: bool) -> PublishArgs {
    PublishArgs {
        issuer_url: "https://oidc.example.com/clusters/prod-1".into(),
        keys: KeyFileArgs {
            public_key_files: vec![fixture("rsa2048.key"), fixture("p256.pub")],
        },
        signer: SignerArgs::default(),
        jwks_uri: None,
        out,
        s3_uri: None,
        max_age: 3600,
        dry_run,
    }
}

#[tokio::test]
async fn out_dir_has_the_static_site_layout() {
    let dir = tempfile::tempdir().unwrap();
    let mut report = Vec::new();
    publish(args(Some(dir.path().to_path_buf()), false), &mut report)
        .await
        .unwrap();
    let report = String::from_utf8(report).unwrap();

    let discovery_path = dir
        .path()
        .join("clusters/prod-1/.well-known/openid-configuration");
    let jwks_path = dir.path().join("clusters/prod-1/openid/v1/jwks");
    let discovery: Value =
        serde_json::from_slice(&std::fs::read(&discovery_path).unwrap()).unwrap();
    assert_eq!(
        discovery["issuer"],
        "https://oidc.example.com/clusters/prod-1"
    );
    assert_eq!(
        discovery["jwks_uri"],
        "https://oidc.example.com/clusters/prod-1/openid/v1/jwks"
    );
    let jwks: Value = serde_json::from_slice(&std::fs::read(&jwks_path).unwrap()).unwrap();
    assert_eq!(kids(&jwks), [kid_of("rsa2048.pub"), kid_of("p256.pub")]);
    assert!(jwks["keys"][0].get("d").is_none());
    assert!(
        report.contains(&discovery_path.display().to_string()),
        "{report}"
    );
    assert!(
        report.contains(&jwks_path.display().to_string()),
        "{report}"
    );

    // Nothing but the two files (no temporaries left behind).
    let mut all: Vec<String> = walk(dir.path())
        .into_iter()
        .map(|p| p.strip_prefix(dir.path()).unwrap().display().to_string())
        .collect();
    all.sort();
    assert_eq!(
        all,
        [
            "clusters/prod-1/.well-known/openid-configuration",
            "clusters/prod-1/openid/v1/jwks"
        ]
    );

    // Publishing again is idempotent.
    let before = std::fs::read(&jwks_path).unwrap();
    publish(args(Some(dir.path().to_path_buf()), false), &mut Vec::new())
        .await
        .unwrap();
    assert_eq!(std::fs::read(&jwks_path).unwrap(), before);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path))
        } else {
            out.push(path)
        }
    }
    out
}

#[tokio::test]
async fn dry_run_writes_nothing_and_says_what_it_would_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut report = Vec::new();
    publish(args(Some(dir.path().join("site")), true), &mut report)
        .await
        .unwrap();
    assert!(!dir.path().join("site").exists());
    let report = String::from_utf8(report).unwrap();
    assert!(
        report.contains("would write") && report.contains("openid-configuration"),
        "{report}"
    );
    assert!(
        report.contains("application/jwk-set+json") && report.contains("public, max-age=3600"),
        "{report}"
    );
    assert!(report.contains(&kid_of("p256.pub")), "{report}");

    // Same for S3: no client is even built.
    let mut a = args(None, true);
    a.s3_uri = Some("s3://my-bucket/oidc".into());
    let mut report = Vec::new();
    publish(a, &mut report).await.unwrap();
    let report = String::from_utf8(report).unwrap();
    assert!(
        report.contains("s3://my-bucket/oidc/clusters/prod-1/.well-known/openid-configuration"),
        "{report}"
    );
    assert!(
        report.contains("s3://my-bucket/oidc/clusters/prod-1/openid/v1/jwks"),
        "{report}"
    );
}

#[tokio::test]
async fn publish_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let run = |a: PublishArgs| async move {
        let mut sink = Vec::new();
        publish(a, &mut sink).await.unwrap_err().to_string()
    };
    let mut a = args(Some(dir.path().to_path_buf()), false);
    a.issuer_url = "http://oidc.example.com".into();
    assert!(run(a).await.contains("https://"));
    let mut a = args(Some(dir.path().to_path_buf()), false);
    a.keys.public_key_files.push(fixture("ed25519.pub"));
    assert!(run(a).await.contains("ed25519.pub"));
    let mut a = args(None, false);
    a.s3_uri = Some("my-bucket/oidc".into());
    assert!(run(a).await.contains("s3://bucket"));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn jwks_prints_the_published_bytes() {
    let mut out = Vec::new();
    jwks(
        JwksArgs {
            keys: KeyFileArgs {
                public_key_files: vec![fixture("p384.sec1.key"), fixture("rsa3072.crt")],
            },
        },
        &mut out,
    )
    .unwrap();
    assert_eq!(out.last(), Some(&b'\n'));
    let doc: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(kids(&doc), [kid_of("p384.pub"), kid_of("rsa3072.crt")]);
}

/// One request the fake S3 received.
#[derive(Debug, Clone)]
struct Put {
    method: String,
    path: String,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

#[tokio::test]
async fn s3_upload_sets_content_type_and_cache_control_and_no_acl() {
    use std::sync::{Arc, Mutex};
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let seen: Arc<Mutex<Vec<Put>>> = Arc::default();
    let recorder = seen.clone();
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let recorder = recorder.clone();
        async move {
            let (parts, body) = req.into_parts();
            let body = axum::body::to_bytes(body, 1 << 20).await.unwrap().to_vec();
            recorder.lock().unwrap().push(Put {
                method: parts.method.to_string(),
                path: parts.uri.path().to_string(),
                headers: parts.headers,
                body,
            });
            ([("etag", "\"x\"")], "")
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let config = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(&endpoint)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "AKID", "SECRET", None, None, "test",
        ))
        .force_path_style(true)
        .build();
    let client = aws_sdk_s3::Client::from_conf(config);

    let paths = irsa_issuer::paths::Paths::new(
        irsa_core::IssuerUrl::parse("https://oidc.example.com/prod", false).unwrap(),
        None,
        false,
    )
    .unwrap();
    let keys = irsa_issuer::keys::load_files(&[fixture("p256.pub")])
        .unwrap()
        .keys;
    let (docs, _) = irsa_issuer::documents::Documents::render(&paths, &keys);
    let files = irsa_issuer::publish::files(&paths, &docs).unwrap();
    let target = irsa_issuer::publish::S3Uri::parse("s3://bucket/site").unwrap();
    let written = irsa_issuer::publish::upload(&client, &target, &files, 300)
        .await
        .unwrap();
    assert_eq!(
        written,
        [
            "s3://bucket/site/prod/.well-known/openid-configuration",
            "s3://bucket/site/prod/openid/v1/jwks"
        ]
    );

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:#?}");
    for (put, (path, content_type, body)) in seen.iter().zip([
        (
            "/bucket/site/prod/.well-known/openid-configuration",
            "application/json",
            &docs.discovery,
        ),
        (
            "/bucket/site/prod/openid/v1/jwks",
            "application/jwk-set+json",
            &docs.jwks,
        ),
    ]) {
        assert_eq!(put.method, "PUT");
        assert_eq!(put.path, path, "path-style addressing");
        assert_eq!(put.headers["content-type"], content_type);
        assert_eq!(put.headers["cache-control"], "public, max-age=300");
        assert!(
            put.headers.get("x-amz-acl").is_none(),
            "no ACL: {:?}",
            put.headers
        );
        // The SDK may frame the body (aws-chunked with a checksum trailer): the document is in it whole.
        let found = put.body.windows(body.len()).any(|w| w == &body[..]);
        assert!(found, "{path}: body not sent");
    }
}
