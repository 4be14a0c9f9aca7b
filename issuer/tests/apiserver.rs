//! `serve --from-apiserver` against a stand-in apiserver (plain HTTP, reached through a kubeconfig): the
//! cleaned JWKS is republished under the apiserver's kids, refreshed, and kept when the apiserver fails.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use common::{Server, fixture, kids, reload_errors, wait_for_reload_errors};
use irsa_issuer::{jwks, keys};
use irsa_serve::Readiness;
use irsa_testing::wait::{Check, wait_until};
use serde_json::{Value, json};
use tokio::net::TcpListener;

type Answer = Arc<Mutex<(StatusCode, String)>>;

async fn fake_apiserver(issuer: &str, answer: Answer) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let discovery =
        json!({"issuer": issuer, "jwks_uri": format!("http://{addr}/openid/v1/jwks")}).to_string();
    let app = Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(move || async move { discovery }),
        )
        .route(
            "/openid/v1/jwks",
            get(move || {
                let answer = answer.clone();
                async move { answer.lock().unwrap().clone() }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn kubeconfig(dir: &std::path::Path, server: &str) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\n\
         users:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\n\
         current-context: x\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// The apiserver's own JWKS for `files`, with what newer apiservers add (an ML-DSA key, key_ops).
fn apiserver_jwks(files: &[&str], kid_prefix: &str) -> String {
    let paths: Vec<_> = files.iter().map(|f| fixture(f)).collect();
    let rendered: Value =
        serde_json::from_slice(&jwks::render(&keys::load_files(&paths).unwrap().keys).json)
            .unwrap();
    let mut keys: Vec<Value> = rendered["keys"].as_array().unwrap().clone();
    for (i, k) in keys.iter_mut().enumerate() {
        k["kid"] = json!(format!("{kid_prefix}{i}"));
        k["key_ops"] = json!(["verify"]);
    }
    keys.push(
        json!({"use": "sig", "kty": "AKP", "kid": "mldsa", "alg": "ML-DSA-44", "pub": "AAAA"}),
    );
    json!({ "keys": keys }).to_string()
}

async fn served_kids(client: &reqwest::Client, base: &str) -> Option<Vec<String>> {
    let r = client
        .get(format!("{base}/openid/v1/jwks"))
        .send()
        .await
        .ok()?;
    if r.status() != StatusCode::OK {
        return None;
    }
    let doc: Value = r.json().await.ok()?;
    Some(kids(&doc))
}

async fn wait_for(client: &reqwest::Client, base: &str, expected: &[&str]) {
    wait_until(
        Duration::from_secs(15),
        "the expected kids are served",
        || async {
            let kids = served_kids(client, base).await;
            Check::ready_if(kids.as_deref().is_some_and(|k| k == expected), || {
                format!("served {kids:?}, expected {expected:?}")
            })
        },
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn republishes_the_cleaned_apiserver_jwks_and_keeps_it_on_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::bind(|addr| format!("http://{addr}")).await;
    let base = server.args.issuer_url.clone();
    let admin_base = server.admin_base();
    let answer: Answer = Arc::new(Mutex::new((
        StatusCode::OK,
        apiserver_jwks(&["rsa2048.pub"], "a"),
    )));
    let apiserver = fake_apiserver(&base, answer.clone()).await;
    server.args.from_apiserver = true;
    server.args.kube.kubeconfig = Some(kubeconfig(dir.path(), &apiserver));
    server.args.plain_http = true;
    server.args.reload_interval = Some(Duration::from_millis(100));
    let readiness = Readiness::new();
    let (shutdown, task) = server.spawn(readiness.clone());
    let client = reqwest::Client::new();

    wait_for(&client, &base, &["a0"]).await;
    assert!(readiness.is_ready());
    let doc: Value = client
        .get(format!("{base}/openid/v1/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["keys"][0].get("key_ops").is_none(), "{doc}");

    // Rotation on the apiserver side is picked up.
    *answer.lock().unwrap() = (
        StatusCode::OK,
        apiserver_jwks(&["rsa2048.pub", "p256.pub"], "b"),
    );
    wait_for(&client, &base, &["b0", "b1"]).await;

    // The apiserver failing keeps the last good set, and counts.
    *answer.lock().unwrap() = (StatusCode::INTERNAL_SERVER_ERROR, "boom".into());
    wait_for_reload_errors(&admin_base, "apiserver", 1).await;
    assert_eq!(served_kids(&client, &base).await.unwrap(), ["b0", "b1"]);
    // So does a JWKS with nothing STS accepts (an apiserver signing with ML-DSA only).
    let before = reload_errors(&admin_base, "apiserver").await;
    *answer.lock().unwrap() = (
        StatusCode::OK,
        json!({"keys": [{"use": "sig", "kty": "AKP", "kid": "m", "alg": "ML-DSA-44", "pub": "AAAA"}]}).to_string(),
    );
    wait_for_reload_errors(&admin_base, "apiserver", before + 2).await;
    assert_eq!(served_kids(&client, &base).await.unwrap(), ["b0", "b1"]);

    shutdown.trigger();
    task.await.unwrap().unwrap();
}
