//! Generates the gRPC code from proto/ with a vendored protoc, so no system protoc is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // prost-build runs the protoc named by PROTOC.
    std::env::set_var("PROTOC", protoc);
    println!("cargo:rerun-if-changed=proto/ticketd.proto");
    tonic_prost_build::configure().compile_protos(&["proto/ticketd.proto"], &["proto"])?;
    Ok(())
}
