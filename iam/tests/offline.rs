//! Preflight, thumbprints and the credentials edge, against local HTTPS servers and no AWS.

mod support;

use std::time::Duration;

use irsa_core::IssuerUrl;
use irsa_iam::associate::{AssociateError, AssociateOptions, associate};
use irsa_iam::create_role::{CreateRoleError, CreateRoleOptions, create_role};
use irsa_iam::preflight::{PreflightError, preflight};
use irsa_iam::thumbprint::{self, Thumbprint, ThumbprintError};
use irsa_iam::trust::Trust;
use serde_json::json;
use support::{Canned, Pki, TestServer, closed_port, is_child, rsa_jwks, run_child};

const TIMEOUT: Duration = Duration::from_secs(5);

fn one_line(e: &impl std::fmt::Display) -> String {
    let s = e.to_string();
    assert!(!s.contains('\n'), "not one line: {s}");
    println!("{s}");
    s
}

async fn run_preflight(
    pki: &Pki,
    issuer: &str,
) -> Result<irsa_iam::preflight::PreflightReport, PreflightError> {
    let url = IssuerUrl::parse(issuer, false).unwrap();
    let trust = Trust::load(Some(&pki.ca_file)).unwrap();
    preflight(&url, &trust, TIMEOUT).await
}

#[tokio::test]
async fn preflight_good_issuer() {
    let pki = Pki::new();
    let server = TestServer::start(&pki).await;
    let issuer = server.serve_issuer("/cluster-1", None, &rsa_jwks());
    let report = run_preflight(&pki, &issuer).await.unwrap();
    assert_eq!(report.kids, ["test-key-1"]);
    assert_eq!((report.rsa_keys, report.ec_keys), (1, 0));
    assert_eq!(report.jwks_uri, server.url("/cluster-1/openid/v1/jwks"));
    assert_eq!(report.jwks_host, "127.0.0.1");
    assert_eq!(report.jwks_port, server.port);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
}

#[tokio::test]
async fn preflight_issuer_differing_by_a_trailing_slash() {
    let pki = Pki::new();
    let server = TestServer::start(&pki).await;
    let with_slash = server.url("/cluster-1/");
    let issuer = server.serve_issuer("/cluster-1", Some(&with_slash), &rsa_jwks());
    let err = run_preflight(&pki, &issuer).await.unwrap_err();
    assert!(
        matches!(err, PreflightError::IssuerMismatch { .. }),
        "{err}"
    );
    let line = one_line(&err);
    assert!(line.contains("trailing slash"), "{line}");
    assert!(line.contains("STS would refuse"), "{line}");
}

#[tokio::test]
async fn preflight_jwks_with_key_ops() {
    let pki = Pki::new();
    let server = TestServer::start(&pki).await;
    let mut jwks = rsa_jwks();
    jwks["keys"][0]["key_ops"] = json!(["verify"]);
    let issuer = server.serve_issuer("", None, &jwks);
    let err = run_preflight(&pki, &issuer).await.unwrap_err();
    assert!(matches!(err, PreflightError::Jwks { .. }), "{err}");
    let line = one_line(&err);
    assert!(line.contains("\"key_ops\""), "{line}");
    assert!(
        line.contains("STS would answer InvalidIdentityToken"),
        "{line}"
    );
    assert!(line.contains("fix: remove key_ops"), "{line}");
}

#[tokio::test]
async fn preflight_unreachable_issuer() {
    let pki = Pki::new();
    let issuer = format!("https://127.0.0.1:{}", closed_port());
    let err = run_preflight(&pki, &issuer).await.unwrap_err();
    assert!(matches!(err, PreflightError::Unreachable { .. }), "{err}");
    let line = one_line(&err);
    assert!(line.contains("/.well-known/openid-configuration"), "{line}");
    assert!(line.to_lowercase().contains("connection refused"), "{line}");
    assert!(line.contains("STS would answer"), "{line}");
}

#[tokio::test]
async fn preflight_redirect_and_private_ca_without_ca_file() {
    let pki = Pki::new();
    let server = TestServer::start(&pki).await;
    server.set(
        "/moved/.well-known/openid-configuration",
        Canned {
            status: 302,
            headers: vec![("Location".into(), server.url("/elsewhere"))],
            body: vec![],
        },
    );
    let err = run_preflight(&pki, &server.url("/moved"))
        .await
        .unwrap_err();
    let line = one_line(&err);
    assert!(
        line.contains("HTTP 302 (a redirect to https://127.0.0.1:"),
        "{line}"
    );
    assert!(line.contains("no redirects"), "{line}");

    // Without --ca-file the private CA is not trusted, as STS would not trust it.
    let issuer = server.serve_issuer("/ok", None, &rsa_jwks());
    let url = IssuerUrl::parse(&issuer, false).unwrap();
    let err = preflight(&url, &Trust::load(None).unwrap(), TIMEOUT)
        .await
        .unwrap_err();
    let line = one_line(&err);
    assert!(line.contains("certificate"), "{line}");
}

#[tokio::test]
async fn http_issuer_is_refused_before_anything_else() {
    let err = associate(&AssociateOptions::new("http://127.0.0.1:1/issuer"))
        .await
        .unwrap_err();
    assert!(matches!(err, AssociateError::Url(_)), "{err}");
    let line = one_line(&err);
    assert!(line.contains("must start with https://"), "{line}");
}

#[tokio::test]
async fn thumbprint_is_the_sha1_of_the_last_presented_certificate() {
    let pki = Pki::new();
    let trust = Trust::load(Some(&pki.ca_file)).unwrap();

    // leaf + CA presented: the CA's thumbprint.
    let server = TestServer::start(&pki).await;
    let chain = thumbprint::presented_chain("127.0.0.1", server.port, &trust, TIMEOUT)
        .await
        .unwrap();
    assert_eq!(chain, [pki.leaf_der.clone(), pki.ca_der.clone()]);
    let t = thumbprint::last_certificate_thumbprint("127.0.0.1", server.port, &trust, TIMEOUT)
        .await
        .unwrap();
    assert_eq!(t, Thumbprint::of_der(&pki.ca_der));
    assert_eq!(t.as_str().len(), 40);
    assert!(
        t.as_str()
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );

    // Only the leaf presented: the last certificate is the leaf.
    let leaf_only = TestServer::start_with_chain(&pki, vec![pki.leaf_der.clone()]).await;
    let t = thumbprint::last_certificate_thumbprint("127.0.0.1", leaf_only.port, &trust, TIMEOUT)
        .await
        .unwrap();
    assert_eq!(t, Thumbprint::of_der(&pki.leaf_der));

    // The recording verifier still verifies: without the CA there is no thumbprint.
    let err = thumbprint::last_certificate_thumbprint(
        "127.0.0.1",
        server.port,
        &Trust::load(None).unwrap(),
        TIMEOUT,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ThumbprintError::Connect { .. }), "{err}");
    let line = one_line(&err);
    assert!(line.contains("--ca-file"), "{line}");
}

/// With no AWS credentials anywhere (environment cleared, a config file without the profile, IMDS
/// off), both commands stop with one clear line before any request reaches the endpoint.
#[test]
fn missing_credentials_is_one_clear_line_and_nothing_is_sent() {
    const TEST: &str = "missing_credentials_is_one_clear_line_and_nothing_is_sent";
    if is_child(TEST) {
        return missing_credentials_child();
    }
    let endpoint = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = endpoint.local_addr().unwrap().port();
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("config");
    std::fs::write(&config, "[profile other]\nregion = eu-west-1\n").unwrap();
    let credentials = home.path().join("credentials");
    std::fs::write(&credentials, "").unwrap();
    let out = run_child(
        TEST,
        true,
        &[
            ("HOME", home.path().display().to_string()),
            ("AWS_CONFIG_FILE", config.display().to_string()),
            (
                "AWS_SHARED_CREDENTIALS_FILE",
                credentials.display().to_string(),
            ),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}")),
        ],
    );
    println!("{out}");
    // Nothing ever connected to the (would-be) IAM/STS endpoint.
    endpoint.set_nonblocking(true).unwrap();
    let accepted = endpoint.accept();
    assert!(
        matches!(&accepted, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "something reached the AWS endpoint: {accepted:?}"
    );
}

fn missing_credentials_child() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let pki = Pki::new();
        let server = TestServer::start(&pki).await;
        let issuer = server.serve_issuer("/c", None, &rsa_jwks());

        // Nothing in the chain at all.
        let mut opts = AssociateOptions::new(&issuer);
        opts.ca_file = Some(pki.ca_file.clone());
        let err = associate(&opts).await.unwrap_err();
        let line = one_line(&err);
        assert!(line.starts_with("no AWS credentials found"), "{line}");
        assert!(line.contains("--profile"), "{line}");

        // A profile that is not in the config file.
        let mut opts = CreateRoleOptions::new(&issuer, "ns", "sa", "role");
        opts.aws.profile = Some("bogus".into());
        let err = create_role(&opts).await.unwrap_err();
        let line = one_line(&err);
        assert!(line.contains("bogus"), "{line}");
        assert!(line.contains("credentials"), "{line}");
    });
}

#[tokio::test]
async fn broken_kubeconfig_stops_create_role_before_aws() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = CreateRoleOptions::new("https://oidc.example.com", "ns", "sa", "role");
    opts.annotate_service_account = true;
    opts.kubeconfig = Some(dir.path().join("missing-kubeconfig"));
    let err = create_role(&opts).await.unwrap_err();
    let line = one_line(&err);
    assert!(
        line.starts_with("cannot configure the Kubernetes client"),
        "{line}"
    );
    assert!(line.contains("missing-kubeconfig"), "{line}");
}

/// `--annotation-prefix` is judged as the webhook judges it, before the cluster or AWS is touched:
/// the kubeconfig and the profile below would each fail if they were reached.
#[tokio::test]
async fn bad_annotation_prefix_stops_create_role_before_anything() {
    let dir = tempfile::tempdir().unwrap();
    for bad in [
        "",
        "eks.amazonaws.com/",
        "irsa.example.com/role-arn",
        "Not_A.Prefix",
    ] {
        let mut opts = CreateRoleOptions::new("https://oidc.example.com", "ns", "sa", "role");
        opts.annotate_service_account = true;
        opts.annotation_prefix = bad.into();
        opts.kubeconfig = Some(dir.path().join("missing-kubeconfig"));
        opts.aws.profile = Some("bogus".into());
        let err = create_role(&opts).await.unwrap_err();
        assert!(
            matches!(err, CreateRoleError::AnnotationPrefix(_)),
            "{bad:?}: {err}"
        );
        let line = one_line(&err);
        assert!(line.contains("--annotation-prefix"), "{line}");
        assert!(line.contains(&format!("{bad:?}")), "{line}");
    }
}
