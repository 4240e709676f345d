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

/// Every success answer of every route is described: a JSON schema and an example, so that
/// schemathesis checks every body and a generated client gets typed answers.
#[test]
fn every_success_body_has_a_schema_and_an_example() {
    let doc: serde_json::Value =
        serde_json::from_str(&ticketd_http::openapi_json().expect("generate")).expect("JSON");
    let schemas = &doc["components"]["schemas"];
    let resolve = |s: &serde_json::Value| -> serde_json::Value {
        match s.get("$ref").and_then(|r| r.as_str()) {
            Some(r) => schemas[r.trim_start_matches("#/components/schemas/")].clone(),
            None => s.clone(),
        }
    };
    let mut bodies = 0;
    let mut missing = Vec::new();
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        for (method, op) in ops.as_object().expect("operations") {
            for (status, answer) in op["responses"].as_object().expect("responses") {
                if !status.starts_with('2') {
                    continue;
                }
                bodies += 1;
                let content = answer["content"].as_object();
                let described = content.is_some_and(|c| {
                    !c.is_empty()
                        && c.values().all(|m| {
                            let schema = resolve(&m["schema"]);
                            schema.is_object()
                                && (m.get("example").is_some() || schema.get("example").is_some())
                        })
                });
                if !described {
                    missing.push(format!("{method} {path} {status}"));
                }
                if status == "201" && path.starts_with("/v1/") && !path.ends_with("sessions") {
                    let users = path == "/v1/users";
                    if !users && answer["headers"].get("Location").is_none() {
                        missing.push(format!("{method} {path} 201 without Location"));
                    }
                }
            }
        }
    }
    assert!(bodies >= 31, "{bodies} success answers");
    assert!(missing.is_empty(), "not described: {missing:#?}");
}
