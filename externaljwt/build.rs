//! Compiles `proto/api.proto` (kube-apiserver's external signer API) into the tonic server and client.

use prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/api.proto");
    // protox returns its own prost-types' descriptor; going through the encoded bytes keeps this build
    // independent of which prost generation protox was built with.
    let encoded = protox::Compiler::new(["proto"])?
        .include_imports(true)
        .open_file("api.proto")?
        .encode_file_descriptor_set();
    let descriptors = tonic_prost_build::FileDescriptorSet::decode(encoded.as_slice())?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(descriptors)?;
    Ok(())
}
