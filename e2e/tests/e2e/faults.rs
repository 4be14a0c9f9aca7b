//! Faults, against the real peers and the real binary: kube-apiserver restarted under load, a ServiceAccount
//! annotated while the webhook's watch is stalled, the serving certificate's Secret swapped under load, and
//! slow clients on both servers.
//!
//! The restart is disruptive (watchers reconnect afterwards), so the runner runs these after every ordinary
//! test. The other three start irsa processes of their own, with the flags their fault needs, and stop them.

use std::io::{self, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use base64::Engine as _;
use irsa_e2e::cluster::{Cluster, ROLE_ARN_PATTERN};
use irsa_e2e::fault_proxy::FaultProxy;
use irsa_e2e::process::free_port;
use irsa_e2e::scenario::*;
use irsa_testing::pki::LOOPBACK;
use irsa_testing::wait::{Check, Wait};
use rustls::pki_types::ServerName;
use serde_json::{Value, json};

use crate::ROLE;

/// What the webhook's `--on-lookup-failure=admit` (the default) says to a pod it admits without credentials.
const ADMITTED_WITHOUT: &str = "admitted WITHOUT AWS web-identity credentials";

pub(crate) async fn apiserver_restart_mid_load_recovers_the_watch_and_admits_nothing_silently(
    cluster: Arc<Cluster>,
) -> anyhow::Result<()> {
    let ns = namespace(&cluster, "restart", json!({})).await?;
    service_account_with_role(&cluster, &ns, "cached", ROLE).await?;
    service_account(&cluster, &ns, "later", json!({})).await?;
    let http = cluster.http()?;
    let webhook = cluster.webhook_url.clone();
    // Both accounts in the webhook's index before the outage: "later" as unannotated, so that only the watch
    // can tell the webhook of its annotation afterwards (an indexed account is never looked up again).
    Wait::up_to(Duration::from_secs(10))
        .every(Duration::from_millis(100))
        .try_until("the webhook injects ServiceAccount cached", || async {
            let answer = admit(&http, &webhook, &ns, "cached").await?;
            anyhow::Ok(Check::ready_if(answer.injects(ROLE), || answer.to_string()))
        })
        .await?;
    let later = admit(&http, &webhook, &ns, "later").await?;
    ensure!(
        later.allowed && later.patch.is_empty(),
        "unannotated ServiceAccount later: {later}"
    );

    let stop = Stopper::default();
    let began = Instant::now();
    let pods = tokio::spawn(create_pods(cluster.clone(), ns.clone(), stop.flag()));
    let reviews = tokio::spawn(post_reviews(
        http.clone(),
        webhook.clone(),
        ns.clone(),
        stop.flag(),
    ));
    tokio::time::sleep(Duration::from_millis(800)).await;
    let stopped = Instant::now();
    // Killed, as a crash or an OOM kill ends it: its clients' connections break at once (a SIGTERM'd
    // apiserver holds its watches open for seconds while it drains, and the test would only wait longer).
    cluster.kill_apiserver("before-fault-restart");
    let down = while_down(&cluster, &http, &ns).await;
    let restarting = Instant::now();
    // Back whatever the checks found: the tests after this one need the apiserver.
    let started = cluster.start_apiserver().await;
    let up = Instant::now();
    down?;
    started?;
    eprintln!(
        "[e2e] kube-apiserver down for {:?}, restarted in {:?}",
        restarting - stopped,
        up - restarting
    );

    // The watch recovers: an annotation made now reaches the index (no lookup would fetch it).
    cluster.kubectl(&[
        "annotate",
        "serviceaccount",
        "later",
        "-n",
        &ns,
        &format!("eks.amazonaws.com/role-arn={ROLE}"),
    ])?;
    let annotated = Instant::now();
    Wait::up_to(Duration::from_secs(45))
        .every(Duration::from_millis(200))
        .try_until(
            "the webhook's watch delivers the annotation made after the restart",
            || async {
                let answer = admit(&http, &webhook, &ns, "later").await?;
                anyhow::Ok(Check::ready_if(answer.injects(ROLE), || answer.to_string()))
            },
        )
        .await?;
    eprintln!(
        "[e2e] the watch delivered the annotation {:?} after it was made",
        annotated.elapsed()
    );
    let pod = create_pod(&cluster, &ns, simple_pod("later", "later")).await?;
    ensure!(
        env_of(container(&pod, "containers", "app")?, "AWS_ROLE_ARN") == Some(ROLE),
        "a pod of the ServiceAccount annotated after the restart was not injected: {pod}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(stop);

    let pods = pods.await?;
    let uninjected: Vec<&String> = pods.iter().filter_map(|(_, p)| p.as_ref()).collect();
    let created = |from: Instant, to: Instant| {
        pods.iter()
            .filter(|(at, _)| (from..to).contains(at))
            .count()
    };
    ensure!(
        uninjected.is_empty(),
        "pods admitted without credentials: {uninjected:?}"
    );
    ensure!(
        created(began, stopped) > 0 && created(up, Instant::now()) > 0,
        "the load created no pod before the outage or none after it: {} pods in all",
        pods.len()
    );
    let reviews = reviews.await?;
    let during = reviews
        .iter()
        .filter(|(at, _)| (stopped..restarting).contains(at))
        .count();
    for (_, answer) in &reviews {
        ensure!(
            answer.as_ref().is_ok_and(|a| a.injects(ROLE)),
            "an admission of the indexed ServiceAccount failed or lacked credentials: {answer:?}"
        );
    }
    ensure!(
        during > 0,
        "no admission was answered while the apiserver was down"
    );
    Ok(())
}

/// What must hold while kube-apiserver is down: the webhook stays live and ready, as documented (`/readyz`
/// is false only until its first lists are applied; it answers from its index meanwhile, as the admissions
/// under load show), and a pod whose ServiceAccount it cannot look up is admitted without credentials only
/// with `--on-lookup-failure=admit`'s warning.
async fn while_down(cluster: &Cluster, http: &reqwest::Client, ns: &str) -> anyhow::Result<()> {
    let down = Instant::now() + Duration::from_secs(1);
    while Instant::now() < down {
        for probe in ["livez", "readyz"] {
            let url = format!("{}/{probe}", cluster.webhook_admin);
            let status = http.get(&url).send().await?.status();
            ensure!(
                status.is_success(),
                "/{probe} answered {status} while the apiserver was down"
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let unknown = admit(http, &cluster.webhook_url, ns, "never-indexed").await?;
    ensure!(
        unknown.allowed
            && unknown.patch.is_empty()
            && unknown
                .warnings
                .iter()
                .any(|w| w.contains(ADMITTED_WITHOUT)),
        "a pod whose ServiceAccount cannot be looked up, with --on-lookup-failure=admit: {unknown}"
    );
    Ok(())
}

/// Creates pods of ServiceAccount `cached` through the apiserver until `stop`; each created one: when, and
/// the pod if it got no credentials. Failures to create (the apiserver is down) are not recorded: nothing
/// was admitted.
async fn create_pods(
    cluster: Arc<Cluster>,
    ns: String,
    stop: Arc<AtomicBool>,
) -> Vec<(Instant, Option<String>)> {
    let mut created = Vec::new();
    let mut n = 0;
    while !stop.load(Ordering::Acquire) {
        n += 1;
        let pod = simple_pod(&format!("load-{n}"), "cached");
        let at = Instant::now();
        // An apiserver killed mid-request may leave the client waiting: bound it.
        let result =
            tokio::time::timeout(Duration::from_secs(5), create_pod(&cluster, &ns, pod)).await;
        if let Ok(Ok(pod)) = result {
            let injected = container(&pod, "containers", "app")
                .is_ok_and(|app| env_of(app, "AWS_ROLE_ARN") == Some(ROLE));
            created.push((at, (!injected).then(|| pod.to_string())));
        } else {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    created
}

/// Sets its flag when dropped, so that load loops stop on every early return as on success.
#[derive(Default)]
struct Stopper(Arc<AtomicBool>);

impl Stopper {
    /// The flag a load loop watches.
    fn flag(&self) -> Arc<AtomicBool> {
        self.0.clone()
    }
}

impl Drop for Stopper {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// POSTs AdmissionReviews of ServiceAccount `cached` to the webhook until `stop`, as the apiserver would.
async fn post_reviews(
    http: reqwest::Client,
    webhook: String,
    ns: String,
    stop: Arc<AtomicBool>,
) -> Vec<(Instant, Result<Answer, String>)> {
    let mut answers = Vec::new();
    while !stop.load(Ordering::Acquire) {
        let at = Instant::now();
        let answer = admit(&http, &webhook, &ns, "cached")
            .await
            .map_err(|err| format!("{err:#}"));
        answers.push((at, answer));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    answers
}

pub(crate) async fn a_service_account_annotated_while_the_watch_is_stalled_is_found_by_a_direct_get(
    cluster: Arc<Cluster>,
) -> anyhow::Result<()> {
    let upstream: SocketAddr = cluster
        .apiserver_url
        .trim_start_matches("https://")
        .parse()
        .context("the apiserver's address")?;
    let proxy = FaultProxy::start(upstream).await?;
    let kubeconfig = cluster.dir.join("kubeconfig-through-fault-proxy");
    std::fs::write(
        &kubeconfig,
        std::fs::read_to_string(&cluster.kubeconfig)?
            .replace(&cluster.apiserver_url, &format!("https://{}", proxy.addr())),
    )?;
    let webhook = Extra::webhook(
        &cluster,
        "webhook-stalled",
        &kubeconfig,
        &serving(&cluster),
        &[],
    )
    .await?;
    let http = cluster.http()?;
    let cached = "irsa_webhook_cached_service_accounts";
    let misses = "irsa_webhook_cache_misses_total{kind=\"serviceaccount\",result=\"miss\"}";
    let found = "irsa_webhook_fallback_gets_total{kind=\"serviceaccount\",result=\"found\"}";

    let ns = namespace(&cluster, "stalled", json!({})).await?;
    let before = webhook.metric(cached).await?;
    service_account_with_role(&cluster, &ns, "before", ROLE).await?;
    Wait::up_to(Duration::from_secs(10))
        .try_until("the watch delivers a new ServiceAccount", || async {
            let now = webhook.metric(cached).await?;
            anyhow::Ok(Check::ready_if(now > before, || format!("{cached} {now}")))
        })
        .await?;

    let frozen = proxy.freeze();
    ensure!(
        frozen >= 2,
        "{frozen} connection(s) to freeze; the webhook watches ServiceAccounts and Namespaces on two"
    );
    let accepted = proxy.accepted();
    let indexed = webhook.metric(cached).await?;
    service_account_with_role(&cluster, &ns, "after", ROLE).await?;
    // A live watch delivers in milliseconds: after this, "after" can only come from a direct GET.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let still = webhook.metric(cached).await?;
    ensure!(
        still == indexed,
        "the watch delivered although stalled ({cached} {indexed} -> {still})"
    );
    let (misses_before, found_before) =
        (webhook.metric(misses).await?, webhook.metric(found).await?);
    let answer = admit(&http, &webhook.url("/mutate"), &ns, "after").await?;
    ensure!(
        answer.injects(ROLE),
        "the ServiceAccount annotated during the stall was not injected: {answer}"
    );
    let (misses_after, found_after) = (webhook.metric(misses).await?, webhook.metric(found).await?);
    ensure!(
        misses_after == misses_before + 1.0 && found_after == found_before + 1.0,
        "expected one miss answered by one direct GET: misses {misses_before} -> {misses_after}, \
         GETs found {found_before} -> {found_after}"
    );
    ensure!(
        proxy.accepted() > accepted,
        "the direct GET did not open a new connection"
    );
    proxy.thaw();
    drop(webhook);
    drop(proxy);
    Ok(())
}

pub(crate) async fn certificate_secret_swapped_under_load_fails_no_handshake(
    cluster: Arc<Cluster>,
) -> anyhow::Result<()> {
    // A Secret volume as the kubelet writes it: files behind `..data`, a symlink swapped atomically.
    let secret = cluster.dir.join("swapped-secret");
    std::fs::create_dir_all(&secret)?;
    let mut served = vec![write_version(&cluster, &secret, 1)?];
    std::os::unix::fs::symlink("..v1", secret.join("..data"))?;
    for file in ["tls.crt", "tls.key"] {
        std::os::unix::fs::symlink(format!("..data/{file}"), secret.join(file))?;
    }
    let files = (secret.join("tls.crt"), secret.join("tls.key"));
    let webhook = Extra::webhook(
        &cluster,
        "webhook-swapped",
        &cluster.kubeconfig,
        &files,
        &[],
    )
    .await?;
    let ns = namespace(&cluster, "swap", json!({})).await?;
    service_account_with_role(&cluster, &ns, "app", ROLE).await?;
    let request = post_request(&review(&ns, "app"));

    let stop = Stopper::default();
    let tls = client_config(&cluster);
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (stop, tls, request, addr) =
                (stop.flag(), tls.clone(), request.clone(), webhook.addr);
            tokio::task::spawn_blocking(move || {
                let mut exchanges = Vec::new();
                while !stop.load(Ordering::Acquire) {
                    let at = Instant::now();
                    exchanges.push((at, exchange(&tls, addr, &request)));
                    // A steady load, not a spin: two cores serve the whole cluster.
                    std::thread::sleep(Duration::from_millis(10));
                }
                exchanges
            })
        })
        .collect();
    let mut last_swap = Instant::now();
    for version in 2..=4 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        served.push(write_version(&cluster, &secret, version)?);
        std::os::unix::fs::symlink(format!("..v{version}"), secret.join("..data_tmp"))?;
        std::fs::rename(secret.join("..data_tmp"), secret.join("..data"))?;
        last_swap = Instant::now();
        std::fs::remove_dir_all(secret.join(format!("..v{}", version - 1)))?;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(stop);
    let mut exchanges = Vec::new();
    for client in clients {
        exchanges.extend(client.await?);
    }

    let failed: Vec<String> = exchanges
        .iter()
        .filter_map(|(_, e)| e.as_ref().err().map(|err| format!("{err:#}")))
        .collect();
    ensure!(
        failed.is_empty(),
        "{} of {} handshakes or requests failed during the swaps: {:?}",
        failed.len(),
        exchanges.len(),
        &failed[..failed.len().min(5)]
    );
    let answered = exchanges
        .iter()
        .filter_map(|(at, exchange)| Some((at, exchange.as_ref().ok()?)));
    for (at, exchange) in answered {
        ensure!(
            exchange.status == 200 && exchange.body.contains("\"allowed\":true"),
            "an admission during the swaps: {} {}",
            exchange.status,
            exchange.body
        );
        ensure!(
            *at < last_swap || served.last() == Some(&exchange.certificate),
            "a connection made after the last swap was served an older certificate"
        );
    }
    for (version, certificate) in served.iter().enumerate() {
        let count = exchanges
            .iter()
            .filter(|(_, e)| e.as_ref().is_ok_and(|e| &e.certificate == certificate))
            .count();
        ensure!(
            count > 0,
            "certificate {} was never served ({} exchanges)",
            version + 1,
            exchanges.len()
        );
    }
    eprintln!(
        "[e2e] {} admissions over fresh TLS connections across 3 certificate swaps, none failed",
        exchanges.len()
    );
    drop(webhook);
    Ok(())
}

/// Writes `..v<version>/tls.crt` and `tls.key` (a new leaf of the run's CA); returns the leaf's DER.
fn write_version(cluster: &Cluster, secret: &Path, version: u32) -> anyhow::Result<Vec<u8>> {
    let leaf = cluster.ca.leaf(LOOPBACK);
    let dir = secret.join(format!("..v{version}"));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("tls.crt"), &leaf.chain_pem)?;
    std::fs::write(dir.join("tls.key"), &leaf.key_pem)?;
    Ok(leaf.cert_der.to_vec())
}

/// The timeouts the slow-client test gives both servers, short so that the test is.
const SLOW: Duration = Duration::from_secs(1);

pub(crate) async fn slow_clients_are_closed_at_their_timeouts_while_good_ones_are_served(
    cluster: Arc<Cluster>,
) -> anyhow::Result<()> {
    let seconds = format!("{}s", SLOW.as_secs());
    let flags = [
        format!("--tls-handshake-timeout={seconds}"),
        format!("--header-read-timeout={seconds}"),
        format!("--body-read-timeout={seconds}"),
    ];
    let webhook = Extra::webhook(
        &cluster,
        "webhook-slow-clients",
        &cluster.kubeconfig,
        &serving(&cluster),
        &flags,
    )
    .await?;
    let issuer = Extra::issuer(&cluster, "issuer-slow-clients", &flags).await?;
    let ns = namespace(&cluster, "slow", json!({})).await?;
    let review = post_request(&review(&ns, "default"));
    let jwks =
        b"GET /openid/v1/jwks HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".to_vec();
    let tls = client_config(&cluster);

    // Each slow client in its own thread, and a good client on each server meanwhile.
    let spawn = |kind: Slow, addr: SocketAddr, request: Vec<u8>| {
        let tls = tls.clone();
        tokio::task::spawn_blocking(move || (kind, kind.run(&tls, addr, &request)))
    };
    let mut slow = Vec::new();
    for (server, request) in [(&webhook, &review), (&issuer, &jwks)] {
        for kind in [Slow::NoHandshake, Slow::Silent, Slow::HeaderTrickle] {
            slow.push((
                server.name.clone(),
                spawn(kind, server.addr, request.clone()),
            ));
        }
    }
    slow.push((
        webhook.name.clone(),
        spawn(Slow::BodyTrickle, webhook.addr, review.clone()),
    ));
    let good: Vec<_> = [(&webhook, &review), (&issuer, &jwks)]
        .into_iter()
        .map(|(server, request)| {
            let (tls, addr, request) = (tls.clone(), server.addr, request.clone());
            let until = Instant::now() + SLOW + Duration::from_secs(1);
            tokio::task::spawn_blocking(move || {
                let mut served = Vec::new();
                while Instant::now() < until {
                    let at = Instant::now();
                    served.push(exchange(&tls, addr, &request).map(|e| (e.status, at.elapsed())));
                    std::thread::sleep(Duration::from_millis(100));
                }
                served
            })
        })
        .collect();

    for (server, client) in slow {
        let (kind, closed) = client.await?;
        let closed = closed.with_context(|| format!("{server}: {kind:?} client"))?;
        ensure!(
            closed >= SLOW - Duration::from_millis(250)
                && closed <= SLOW + Duration::from_millis(1500),
            "{server}: the {kind:?} client was closed after {closed:?}, not at the {SLOW:?} timeout"
        );
    }
    for (server, good) in [&webhook, &issuer].into_iter().zip(good) {
        let served = good.await?;
        ensure!(
            served.len() >= 5,
            "{}: only {} good requests",
            server.name,
            served.len()
        );
        for answer in &served {
            match answer {
                Ok((200, took)) if *took < Duration::from_secs(1) => {}
                other => bail!(
                    "{}: a good client beside the slow ones got {other:?}",
                    server.name
                ),
            }
        }
    }
    let closed = |reason: &str| format!("connections_closed_total{{reason=\"{reason}\"}}");
    for (server, prefix, body_timeouts) in [
        (&webhook, "irsa_webhook_", 1.0),
        (&issuer, "irsa_issuer_", 0.0),
    ] {
        for (reason, expected) in [
            ("handshake-timeout", 1.0),
            ("header-timeout", 2.0),
            ("body-timeout", body_timeouts),
        ] {
            let series = format!("{prefix}{}", closed(reason));
            let counted = server.metric(&series).await?;
            ensure!(
                counted == expected,
                "{}: {series} is {counted}, expected {expected}",
                server.name
            );
        }
    }
    drop((webhook, issuer));
    Ok(())
}

/// The slow clients.
#[derive(Clone, Copy, Debug)]
enum Slow {
    /// Connects and never starts the TLS handshake.
    NoHandshake,
    /// Completes the handshake and sends nothing.
    Silent,
    /// Sends the request's headers one byte a second.
    HeaderTrickle,
    /// Sends whole headers, then the body one byte a second.
    BodyTrickle,
}

impl Slow {
    /// Plays this client against `addr`; returns how long after its last prompt step (the TCP connection,
    /// the handshake, the headers) the server ended it. A server that answers anything but a 408 to the
    /// body trickle, or keeps the connection 10 s, fails it.
    fn run(
        self,
        tls: &Arc<rustls::ClientConfig>,
        addr: SocketAddr,
        request: &[u8],
    ) -> anyhow::Result<Duration> {
        let patience = Duration::from_secs(10);
        let Slow::NoHandshake = self else {
            return self.run_tls(tls, addr, request, patience);
        };
        let mut tcp = TcpStream::connect(addr)?;
        let started = Instant::now();
        tcp.set_read_timeout(Some(patience))?;
        let mut byte = [0u8; 1];
        match tcp.read(&mut byte) {
            Ok(0) => Ok(started.elapsed()),
            Err(err) if !timed_out(&err) => Ok(started.elapsed()),
            other => bail!("the connection was not closed: {other:?}"),
        }
    }

    /// [`Slow::run`] for the clients that complete the handshake.
    fn run_tls(
        self,
        tls: &Arc<rustls::ClientConfig>,
        addr: SocketAddr,
        request: &[u8],
        patience: Duration,
    ) -> anyhow::Result<Duration> {
        let mut connection = Connection::open(tls, addr)?;
        let started = Instant::now();
        match self {
            Slow::NoHandshake | Slow::Silent => {
                if connection.closed_within(patience)? {
                    return Ok(started.elapsed());
                }
            }
            Slow::HeaderTrickle => {
                for byte in request.iter().take_while(|b| **b != b'\n') {
                    if connection.send(std::slice::from_ref(byte)).is_err()
                        || connection.closed_within(Duration::from_secs(1))?
                    {
                        return Ok(started.elapsed());
                    }
                }
            }
            Slow::BodyTrickle => {
                let split = find(request, b"\r\n\r\n").context("a request with a body")? + 4;
                connection.send(&request[..split])?;
                let started = Instant::now();
                for byte in &request[split..] {
                    connection.send(std::slice::from_ref(byte))?;
                    connection
                        .tcp
                        .set_read_timeout(Some(Duration::from_secs(1)))?;
                    let mut first = [0u8; 1];
                    match connection.stream().read(&mut first) {
                        Ok(1) => {
                            let answer = connection.rest_of_response(first[0])?;
                            ensure!(
                                answer.status == 408,
                                "the body trickle got {}: {}",
                                answer.status,
                                answer.body
                            );
                            return Ok(started.elapsed());
                        }
                        Err(err) if timed_out(&err) => {}
                        other => {
                            bail!("the body trickle's connection ended without a 408: {other:?}")
                        }
                    }
                }
            }
        }
        bail!("still open after {:?}", started.elapsed())
    }
}

/// An irsa server started for one test with its own flags; stopped when dropped.
struct Extra<'a> {
    cluster: &'a Cluster,
    name: String,
    addr: SocketAddr,
    admin: String,
}

impl<'a> Extra<'a> {
    /// A webhook on free ports with the run's role-ARN pattern, its client on `kubeconfig`, serving `tls`.
    async fn webhook(
        cluster: &'a Cluster,
        name: &str,
        kubeconfig: &Path,
        tls: &(PathBuf, PathBuf),
        flags: &[String],
    ) -> anyhow::Result<Self> {
        let mut args = vec![
            "webhook".to_string(),
            "serve".to_string(),
            format!("--kubeconfig={}", kubeconfig.display()),
            format!("--role-arn-pattern={ROLE_ARN_PATTERN}"),
            "--log-level=info,irsa_webhook=debug".to_string(),
        ];
        args.extend(flags.iter().cloned());
        Self::start(cluster, name, args, tls).await
    }

    /// An issuer on free ports publishing the run's keys.
    async fn issuer(cluster: &'a Cluster, name: &str, flags: &[String]) -> anyhow::Result<Self> {
        let port = free_port();
        let mut args = vec![
            "issuer".to_string(),
            "serve".to_string(),
            format!("--issuer-url=https://127.0.0.1:{port}"),
            format!("--public-key-file={}", cluster.issuer_keys.display()),
        ];
        args.extend(flags.iter().cloned());
        Self::start_on(cluster, name, args, &serving(cluster), port).await
    }

    async fn start(
        cluster: &'a Cluster,
        name: &str,
        args: Vec<String>,
        tls: &(PathBuf, PathBuf),
    ) -> anyhow::Result<Self> {
        Self::start_on(cluster, name, args, tls, free_port()).await
    }

    async fn start_on(
        cluster: &'a Cluster,
        name: &str,
        mut args: Vec<String>,
        (cert, key): &(PathBuf, PathBuf),
        port: u16,
    ) -> anyhow::Result<Self> {
        let admin = format!("http://127.0.0.1:{}", free_port());
        args.extend([
            format!("--tls-cert-file={}", cert.display()),
            format!("--tls-key-file={}", key.display()),
            format!("--listen=127.0.0.1:{port}"),
            format!("--admin-listen={}", admin.trim_start_matches("http://")),
        ]);
        cluster.start_irsa(name, &args)?;
        let extra = Self {
            cluster,
            name: name.to_string(),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            admin,
        };
        cluster
            .wait_ready(name, &format!("{}/readyz", extra.admin))
            .await?;
        Ok(extra)
    }

    fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    /// The value of the metric line `series` (name and labels) on its admin port; 0 when absent.
    async fn metric(&self, series: &str) -> anyhow::Result<f64> {
        let text = self.cluster.metrics(&self.admin).await?;
        Ok(text
            .lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .map(str::parse)
            .transpose()?
            .unwrap_or(0.0))
    }
}

impl Drop for Extra<'_> {
    fn drop(&mut self) {
        self.cluster.stop_peer(&self.name);
    }
}

/// The run's serving certificate and key files.
fn serving(cluster: &Cluster) -> (PathBuf, PathBuf) {
    (
        cluster.dir.join("serving.crt"),
        cluster.dir.join("serving.key"),
    )
}

/// An AdmissionReview of a one-container pod of `account` in `ns`, as the apiserver sends it.
fn review(ns: &str, account: &str) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": unique("uid"),
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "operation": "CREATE",
            "namespace": ns,
            "object": {
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "p", "namespace": ns},
                "spec": {"serviceAccountName": account, "containers": [{"name": "app", "image": "app:1"}]}
            }
        }
    })
}

/// The webhook's answer to one AdmissionReview.
#[derive(Debug)]
struct Answer {
    allowed: bool,
    /// The JSON Patch, decoded; empty when there is none.
    patch: String,
    warnings: Vec<String>,
}

impl Answer {
    /// Allowed with a patch that injects `role`.
    fn injects(&self, role: &str) -> bool {
        self.allowed && self.patch.contains(role)
    }
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "allowed {}, patch {:?}, warnings {:?}",
            self.allowed, self.patch, self.warnings
        )
    }
}

/// POSTs an AdmissionReview for a pod of `account` in `ns` to `url`.
async fn admit(
    http: &reqwest::Client,
    url: &str,
    ns: &str,
    account: &str,
) -> anyhow::Result<Answer> {
    let answer: Value = http
        .post(url)
        .json(&review(ns, account))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let response = &answer["response"];
    let patch = match response["patch"].as_str() {
        Some(patch) => String::from_utf8(base64::engine::general_purpose::STANDARD.decode(patch)?)?,
        None => String::new(),
    };
    Ok(Answer {
        allowed: response["allowed"] == true,
        patch,
        warnings: response["warnings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|w| w.as_str().map(str::to_string))
            .collect(),
    })
}

/// `POST /mutate` of `review`, closing the connection after the answer.
fn post_request(review: &Value) -> Vec<u8> {
    let body = review.to_string();
    let mut request = format!(
        "POST /mutate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body.as_bytes());
    request
}

/// A TLS client trusting the run's CA, speaking HTTP/1.1.
fn client_config(cluster: &Cluster) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cluster.ca.der()).expect("the run's CA");
    Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// One answer over its own connection: the certificate the server presented, and the response.
struct Exchange {
    certificate: Vec<u8>,
    status: u16,
    body: String,
}

/// A fresh connection, its handshake, `request`, and the whole response.
fn exchange(
    tls: &Arc<rustls::ClientConfig>,
    addr: SocketAddr,
    request: &[u8],
) -> anyhow::Result<Exchange> {
    let mut connection = Connection::open(tls, addr).context("TLS handshake")?;
    connection.send(request).context("sending the request")?;
    connection
        .tcp
        .set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut first = [0u8; 1];
    connection
        .stream()
        .read_exact(&mut first)
        .context("reading the response")?;
    let mut exchange = connection.rest_of_response(first[0])?;
    exchange.certificate = connection
        .tls
        .peer_certificates()
        .and_then(|chain| chain.first())
        .context("no server certificate")?
        .to_vec();
    Ok(exchange)
}

/// A blocking TLS client connection.
struct Connection {
    tls: rustls::ClientConnection,
    tcp: TcpStream,
}

impl Connection {
    /// Connects and completes the handshake.
    fn open(tls: &Arc<rustls::ClientConfig>, addr: SocketAddr) -> anyhow::Result<Self> {
        let mut tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
        tcp.set_write_timeout(Some(Duration::from_secs(5)))?;
        let name = ServerName::try_from("127.0.0.1")?.to_owned();
        let mut tls = rustls::ClientConnection::new(tls.clone(), name)?;
        while tls.is_handshaking() {
            tls.complete_io(&mut tcp)?;
        }
        Ok(Self { tls, tcp })
    }

    fn stream(&mut self) -> rustls::Stream<'_, rustls::ClientConnection, TcpStream> {
        rustls::Stream::new(&mut self.tls, &mut self.tcp)
    }

    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut stream = self.stream();
        stream.write_all(bytes)?;
        stream.flush()
    }

    /// Whether the server closed the connection (TLS close, FIN or reset) within `wait`; data is an error.
    fn closed_within(&mut self, wait: Duration) -> anyhow::Result<bool> {
        self.tcp.set_read_timeout(Some(wait))?;
        let mut byte = [0u8; 1];
        match self.stream().read(&mut byte) {
            Ok(0) => Ok(true),
            Ok(_) => bail!("the server sent data to a client that sent no request"),
            Err(err) if timed_out(&err) => Ok(false),
            Err(_) => Ok(true),
        }
    }

    /// The rest of an HTTP/1.1 response whose first byte was `first`, up to its Content-Length (or the close).
    fn rest_of_response(&mut self, first: u8) -> anyhow::Result<Exchange> {
        let mut bytes = vec![first];
        let mut chunk = [0u8; 4096];
        let end_of_head = loop {
            if let Some(at) = find(&bytes, b"\r\n\r\n") {
                break at + 4;
            }
            let n = self.stream().read(&mut chunk)?;
            ensure!(n > 0, "the response ended inside its headers: {bytes:?}");
            bytes.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&bytes[..end_of_head]).to_ascii_lowercase();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("no status in {head:?}"))?;
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map(|l| l.trim().parse::<usize>())
            .transpose()?;
        loop {
            let have = bytes.len() - end_of_head;
            if length.is_some_and(|length| have >= length) {
                break;
            }
            match self.stream().read(&mut chunk) {
                Ok(0) if length.is_none() => break,
                Ok(0) => bail!("the response body ended at {have} of {length:?} bytes"),
                Ok(n) => bytes.extend_from_slice(&chunk[..n]),
                Err(err) if length.is_none() && err.kind() == io::ErrorKind::UnexpectedEof => break,
                Err(err) => return Err(err.into()),
            }
        }
        Ok(Exchange {
            certificate: Vec::new(),
            status,
            body: String::from_utf8_lossy(&bytes[end_of_head..]).into_owned(),
        })
    }
}

/// A read that ran out of time rather than ended.
fn timed_out(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
