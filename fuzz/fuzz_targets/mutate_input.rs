//! `irsa webhook mutate --pod -`: the YAML or JSON reader (a pod, or an AdmissionReview holding one), then
//! the mutation and the patched pod printed as YAML. Errors are fine; panics are not.
#![no_main]

use std::path::PathBuf;

use irsa_webhook::cmd::mutate::{MutateArgs, OutputFormat, run_mutate_with_stderr};
use irsa_webhook::config::InjectionArgs;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let args = MutateArgs {
        pod: PathBuf::from("-"),
        service_account: None,
        namespace: None,
        injection: InjectionArgs::default(),
        output: OutputFormat::Pod,
    };
    let _ = run_mutate_with_stderr(args, data, std::io::sink(), std::io::sink());
});
