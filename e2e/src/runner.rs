//! The runner the suites share (e2e, node, signer): libtest-mimic trials over one shared cluster, run one at a
//! time in the order the suite lists them, filtered as `cargo test -- FILTER` filters.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use libtest_mimic::{Arguments, Conclusion, Failed, Trial};

use crate::cluster::Cluster;

/// A test of a suite: an async function of the shared cluster.
pub type TestFn = fn(Arc<Cluster>) -> Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

/// `(name, test)` pairs of `module::test_function`s; the name (what filters match) is the function's.
#[macro_export]
macro_rules! tests {
    ($($module:ident :: $name:ident),* $(,)?) => {
        vec![$((stringify!($name), (|c| Box::pin($module::$name(c))) as $crate::runner::TestFn)),*]
    };
}

/// The command line's arguments, with one test thread: one cluster, shared, and with one thread
/// libtest-mimic runs the trials in the order given (it does not sort them by name as libtest does).
pub fn arguments() -> Arguments {
    let mut args = Arguments::from_args();
    args.test_threads = Some(1);
    args
}

/// When `args` select none of `tests` or only ask for the list: that answer, with no cluster started.
pub fn list_only(args: &Arguments, tests: &[(&'static str, TestFn)]) -> Option<Conclusion> {
    let matches = |name: &str, pattern: &str| {
        if args.exact {
            name == pattern
        } else {
            name.contains(pattern)
        }
    };
    let wanted = |name: &str| {
        args.filter.as_deref().is_none_or(|f| matches(name, f))
            && !args.skip.iter().any(|s| matches(name, s))
    };
    if !args.list && tests.iter().any(|(name, _)| wanted(name)) {
        return None;
    }
    let trials = tests
        .iter()
        .map(|(name, _)| Trial::test(*name, || Ok(())))
        .collect();
    Some(libtest_mimic::run(args, trials))
}

/// Runs `tests` against `cluster` on `runtime`; each fails at once with `setup_error` when set (the suite's
/// setup after the cluster failed, and every test depends on it).
pub fn run(
    args: &Arguments,
    tests: &[(&'static str, TestFn)],
    cluster: &Arc<Cluster>,
    runtime: &tokio::runtime::Runtime,
    setup_error: Option<String>,
) -> Conclusion {
    let trials = tests
        .iter()
        .map(|(name, test)| {
            let (cluster, handle, test) = (cluster.clone(), runtime.handle().clone(), *test);
            let setup_error = setup_error.clone();
            Trial::test(*name, move || {
                if let Some(err) = setup_error {
                    return Err(Failed::from(err));
                }
                handle
                    .block_on(test(cluster))
                    .map_err(|err| Failed::from(format!("{err:#}")))
            })
        })
        .collect();
    libtest_mimic::run(args, trials)
}
