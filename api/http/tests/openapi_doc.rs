//! The committed docs/openapi.json is the document the code generates.

#[test]
fn committed_openapi_matches_the_code() {
    let generated = ticketd_http::openapi_json().expect("generate");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed.trim() == generated.trim(),
        "docs/openapi.json is stale: regenerate it with `ticketd openapi > docs/openapi.json`"
    );
    let doc: serde_json::Value = serde_json::from_str(&generated).expect("JSON");
    assert_eq!(doc["openapi"], "3.1.0");
}
