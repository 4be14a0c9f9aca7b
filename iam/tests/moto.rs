//! Against moto (the IAM emulator): set `IRSA_MOTO_ENDPOINT=http://127.0.0.1:PORT` to run, e.g.
//! `moto_server -H 127.0.0.1 -p PORT`. Without it the test says "skipped" and passes.
//!
//! The test re-runs itself in a child whose environment points the AWS SDK at moto
//! (`AWS_ENDPOINT_URL`, dummy keys), since the library takes endpoints from the environment only.
//! moto 5.2.5 lacks Add/RemoveClientID, so client-ID changes are checked as plans (dry run).

mod support;

use std::collections::BTreeMap;

use aws_config::BehaviorVersion;
use irsa_core::names::DEFAULT_AUDIENCE;
use irsa_core::{IssuerUrl, Partition};
use irsa_iam::associate::{AssociateOptions, AssociateReport, associate};
use irsa_iam::create_role::{CreateRoleOptions, create_role};
use irsa_iam::plan::report::Report as _;
use irsa_iam::plan::{Plan as _, ProviderChange, ProviderUpdate, TrustChange};
use irsa_iam::thumbprint::Thumbprint;
use irsa_iam::trust_policy::TrustPolicy;
use support::{Pki, TestServer, is_child, rsa_jwks, run_child};

const TEST: &str = "associate_and_create_role_against_moto";

#[test]
fn associate_and_create_role_against_moto() {
    if is_child(TEST) {
        return tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(against_moto());
    }
    let Ok(endpoint) = std::env::var("IRSA_MOTO_ENDPOINT") else {
        println!(
            "skipped: set IRSA_MOTO_ENDPOINT=http://127.0.0.1:PORT (a running moto_server) to run"
        );
        return;
    };
    let out = run_child(
        TEST,
        false,
        &[
            ("AWS_ENDPOINT_URL", endpoint),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("AWS_PROFILE", "default".into()),
            ("AWS_CONFIG_FILE", "/nonexistent".into()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent".into()),
        ],
    );
    println!("{out}");
}

async fn against_moto() {
    let pki = Pki::new();
    let server = TestServer::start(&pki).await;
    let issuer = server.serve_issuer("/moto-test", None, &rsa_jwks());
    let iam = aws_sdk_iam::Client::new(&aws_config::load_defaults(BehaviorVersion::latest()).await);
    let ca_thumbprint = Thumbprint::of_der(&pki.ca_der).as_str().to_owned();

    // 1. Create.
    let mut opts = AssociateOptions::new(&issuer);
    opts.ca_file = Some(pki.ca_file.clone());
    opts.tags = BTreeMap::from([("cluster".to_owned(), "moto".to_owned())]);
    let report = associate(&opts).await.unwrap();
    print!("{}", report.render_text());
    assert!(report.outcome.applied);
    let ProviderChange::Create {
        thumbprints,
        client_ids,
        ..
    } = &report.plan.change
    else {
        panic!("expected a create: {:?}", report.plan)
    };
    assert_eq!(thumbprints, &[ca_thumbprint.as_str()]);
    assert_eq!(client_ids, &[DEFAULT_AUDIENCE.to_owned()]);
    let arn = report.plan.arn.clone();
    let url = IssuerUrl::parse(&issuer, false).unwrap();
    assert_eq!(arn, url.provider_arn(Partition::Aws, "123456789012"));
    let got = provider(&iam, &arn).await;
    assert_eq!(got.thumbprint_list(), [ca_thumbprint.as_str()]);
    assert_eq!(got.client_id_list(), [DEFAULT_AUDIENCE]);

    // 2. Again: no changes.
    let report = associate(&opts).await.unwrap();
    let text = report.render_text();
    print!("{text}");
    assert!(!report.plan.has_changes(), "{text}");
    assert!(!report.outcome.applied);
    assert!(text.contains("no changes"), "{text}");

    // 3. Thumbprint drift is corrected.
    iam.update_open_id_connect_provider_thumbprint()
        .open_id_connect_provider_arn(&arn)
        .thumbprint_list("0".repeat(40))
        .send()
        .await
        .unwrap();
    let report = associate(&opts).await.unwrap();
    print!("{}", report.render_text());
    assert_eq!(
        update(&report).set_thumbprints,
        Some(vec![ca_thumbprint.clone()])
    );
    let got = provider(&iam, &arn).await;
    assert_eq!(got.thumbprint_list(), [ca_thumbprint.as_str()]);

    // 4. A new tag is added; the old one stays.
    opts.tags.insert("owner".into(), "platform".into());
    let report = associate(&opts).await.unwrap();
    print!("{}", report.render_text());
    assert_eq!(
        update(&report).add_tags,
        BTreeMap::from([("owner".to_owned(), "platform".to_owned())])
    );
    let report = associate(&opts).await.unwrap();
    assert!(!report.plan.has_changes(), "{}", report.render_text());

    // 5. Client IDs: the plan only (moto has no AddClientIDToOpenIDConnectProvider).
    let mut more = opts.clone();
    more.client_ids = vec![DEFAULT_AUDIENCE.into(), "minio".into()];
    more.dry_run = true;
    let report = associate(&more).await.unwrap();
    print!("{}", report.render_text());
    assert!(!report.outcome.applied);
    assert_eq!(update(&report).add_client_ids, ["minio".to_owned()]);

    // 5b. --assume-role-arn goes through sts:AssumeRole first (moto grants anything).
    let mut assumed = opts.clone();
    assumed.dry_run = true;
    assumed.aws.assume_role_arn = Some("arn:aws:iam::123456789012:role/irsa-admin".into());
    let report = associate(&assumed).await.unwrap();
    assert!(!report.plan.has_changes(), "{}", report.render_text());

    // 6. create-role writes exactly the trust policy.
    let role_name = format!("irsa-moto-{}", server.port);
    let policy = iam
        .create_policy()
        .policy_name(format!("{role_name}-read"))
        .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#)
        .send()
        .await
        .unwrap();
    let policy_arn = policy.policy().unwrap().arn().unwrap().to_owned();
    let mut role = CreateRoleOptions::new(&issuer, "team-a", "uploader", &role_name);
    role.attach_policy_arns = vec![policy_arn.clone()];

    // A policy that does not exist stops the run before the role is created.
    let mut wrong = role.clone();
    wrong.attach_policy_arns = vec!["arn:aws:iam::aws:policy/NoSuchPolicy".into()];
    let err = create_role(&wrong).await.unwrap_err().to_string();
    assert!(err.contains("does not exist"), "{err}");
    let absent = iam.get_role().role_name(&role_name).send().await;
    assert!(absent.is_err(), "the role was created: {absent:?}");

    let report = create_role(&role).await.unwrap();
    print!("{}", report.render_text());
    assert!(report.outcome.applied);
    assert_eq!(report.plan.trust_change, TrustChange::CreateRole);
    let want = TrustPolicy::new(&url, &arn, "team-a", "uploader", DEFAULT_AUDIENCE).to_json();
    assert_eq!(trust_policy_of(&iam, &role_name).await, want);
    let attached = iam
        .list_attached_role_policies()
        .role_name(&role_name)
        .send()
        .await
        .unwrap();
    assert_eq!(
        attached.attached_policies()[0].policy_arn(),
        Some(policy_arn.as_str())
    );

    // 7. Again: no changes.
    let report = create_role(&role).await.unwrap();
    let text = report.render_text();
    print!("{text}");
    assert!(!report.plan.has_changes(), "{text}");
    assert!(text.ends_with("no changes\n"), "{text}");

    // 8. A drifted trust policy is replaced.
    iam.update_assume_role_policy()
        .role_name(&role_name)
        .policy_document(want.replace("uploader", "someone-else"))
        .send()
        .await
        .unwrap();
    let report = create_role(&role).await.unwrap();
    print!("{}", report.render_text());
    assert!(matches!(
        report.plan.trust_change,
        TrustChange::Replace { .. }
    ));
    assert_eq!(trust_policy_of(&iam, &role_name).await, want);
}

/// The provider as IAM holds it.
async fn provider(
    iam: &aws_sdk_iam::Client,
    arn: &str,
) -> aws_sdk_iam::operation::get_open_id_connect_provider::GetOpenIdConnectProviderOutput {
    iam.get_open_id_connect_provider()
        .open_id_connect_provider_arn(arn)
        .send()
        .await
        .unwrap()
}

/// The update an `associate` report planned; panics on a create.
fn update(report: &AssociateReport) -> &ProviderUpdate {
    match &report.plan.change {
        ProviderChange::Update(update) => update,
        ProviderChange::Create { .. } => panic!("expected an update: {:?}", report.plan),
    }
}

/// The role's trust policy as IAM holds it, decoded (IAM returns policy documents URL-encoded).
async fn trust_policy_of(iam: &aws_sdk_iam::Client, role_name: &str) -> String {
    let got = iam.get_role().role_name(role_name).send().await.unwrap();
    let doc = got.role().unwrap().assume_role_policy_document().unwrap();
    percent_encoding::percent_decode_str(doc)
        .decode_utf8()
        .unwrap()
        .into_owned()
}
