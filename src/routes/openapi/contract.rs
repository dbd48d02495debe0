//! What every operation can answer besides its own outcomes, added to the generated
//! document in one place so no operation can forget one: 401 where a token is
//! needed, 400/408/413/415/422 where a JSON body is read, 400/422 for query values,
//! 429 and 503 wherever the limiter and the database are involved, the `X-Request-ID`
//! and `RateLimit-*` headers, a `HEAD` beside every `GET`, operation ids that are
//! unique (`{tag}_{handler}`), and request objects closed to unknown fields as the
//! body parser is. A test holds the document to the server
//! (schemathesis, in the test command).

use serde_json::{Map, Value, json};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// Completes the rendered document in place.
pub fn complete(doc: &mut Value) {
    doc["components"]["headers"] = headers();
    require_request_id(doc);
    new_webhook_requires_a_url(doc);
    request_bodies_are_closed(doc);
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for method in METHODS {
            if let Some(operation) = item.get_mut(method).and_then(Value::as_object_mut) {
                complete_operation(path, operation);
            }
        }
        if let Some(get) = item.get("get").and_then(Value::as_object) {
            item.insert("head".to_owned(), Value::Object(head_of(get)));
        }
    }
}

fn header_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/headers/{name}")})
}

fn headers() -> Value {
    let integer = |description: &str| json!({"description": description, "schema": {"type": "integer", "minimum": 0}});
    json!({
        "X-Request-ID": {
            "description": "This request's id (the caller's, when it sent a valid one); in every log line of it.",
            "schema": {"type": "string"}
        },
        "RateLimit-Limit": integer("Requests allowed in the current window of the tightest limit that applied."),
        "RateLimit-Remaining": integer("Requests left in that window."),
        "RateLimit-Reset": integer("Seconds until that window starts afresh."),
        "Retry-After": integer("Seconds to wait before trying again."),
        "WWW-Authenticate": {
            "description": "`Bearer`: the scheme the token is expected in.",
            "schema": {"type": "string"}
        }
    })
}

fn require_request_id(doc: &mut Value) {
    let problem = &mut doc["components"]["schemas"]["Problem"];
    if let Some(required) = problem["required"].as_array_mut()
        && !required.contains(&json!("request_id"))
    {
        required.push(json!("request_id"));
    }
    problem["properties"]["request_id"]["type"] = json!("string");
}

/// One request type serves create and PATCH; a new webhook needs its `url`.
fn new_webhook_requires_a_url(doc: &mut Value) {
    let mut schema = doc["components"]["schemas"]["WebhookRequest"].clone();
    if schema.is_null() {
        return;
    }
    schema["required"] = json!(["url"]);
    schema["properties"]["url"]["type"] = json!("string");
    doc["components"]["schemas"]["NewWebhookRequest"] = schema;
    let create = &mut doc["paths"]["/api/v1/webhooks"]["post"]["requestBody"]["content"]["application/json"]
        ["schema"];
    if create.is_object() {
        *create = json!({"$ref": "#/components/schemas/NewWebhookRequest"});
    }
}

/// The body parser refuses a field it does not know, at any depth (free-form maps
/// such as `attributes` aside), so every object schema a request body reaches says
/// `additionalProperties: false`.
fn request_bodies_are_closed(doc: &mut Value) {
    let mut pending: Vec<String> = Vec::new();
    if let Some(paths) = doc["paths"].as_object() {
        for item in paths.values().filter_map(Value::as_object) {
            for operation in item.values() {
                collect_refs(&operation["requestBody"], &mut pending);
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    while let Some(name) = pending.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let schema = &mut doc["components"]["schemas"][name.as_str()];
        collect_refs(schema, &mut pending);
        close_objects(schema);
    }
}

/// Every `#/components/schemas/…` name `value` refers to.
fn collect_refs(value: &Value, names: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(name) = map
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
            {
                names.push(name.to_owned());
            }
            map.values().for_each(|v| collect_refs(v, names));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, names)),
        _ => {}
    }
}

/// Marks each object schema with named properties (not a free-form map) closed.
fn close_objects(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map
                .get("properties")
                .is_some_and(|p| p.as_object().is_some_and(|p| !p.is_empty()))
                && !map.contains_key("additionalProperties")
            {
                map.insert("additionalProperties".to_owned(), Value::Bool(false));
            }
            for (key, child) in map.iter_mut() {
                if key != "additionalProperties" {
                    close_objects(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(close_objects),
        _ => {}
    }
}

fn is_limited(path: &str) -> bool {
    !(path == "/health" || path.starts_with("/health/"))
}

fn complete_operation(path: &str, operation: &mut Map<String, Value>) {
    let tag = operation
        .get("tags")
        .and_then(|tags| tags.get(0))
        .and_then(Value::as_str)
        .unwrap_or("api")
        .to_owned();
    if let Some(id) = operation.get("operationId").and_then(Value::as_str) {
        let unique = format!("{tag}_{id}");
        operation.insert("operationId".to_owned(), Value::String(unique));
    }
    let secured = operation
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|s| !s.is_empty());
    let has_body = operation.contains_key("requestBody");
    let has_query = operation
        .get("parameters")
        .and_then(Value::as_array)
        .is_some_and(|ps| ps.iter().any(|p| p["in"] == "query"));
    let limited = is_limited(path);
    let responses = operation
        .entry("responses")
        .or_insert_with(|| json!({}))
        .as_object_mut();
    let Some(responses) = responses else { return };
    if secured {
        add_problem(
            responses,
            "401",
            "Missing, malformed, expired or revoked access token, or its session ended",
            &["WWW-Authenticate"],
        );
    }
    if has_body {
        add_problem(
            responses,
            "400",
            "The body is not one JSON value (malformed, or followed by more data)",
            &[],
        );
        add_problem(
            responses,
            "408",
            "The body did not arrive within `REQUEST_BODY_TIMEOUT_SECONDS`",
            &[],
        );
        add_problem(
            responses,
            "413",
            "The body is larger than `MAX_JSON_BODY_BYTES`",
            &[],
        );
        add_problem(responses, "415", "The body is not `application/json`", &[]);
    }
    if has_body || has_query {
        add_problem(
            responses,
            "422",
            "Invalid fields, each named in `errors` by its JSON path",
            &[],
        );
    }
    if has_query {
        add_problem(responses, "400", "A query value that does not parse", &[]);
    }
    if limited {
        add_problem(
            responses,
            "429",
            "A rate limit is spent; wait `Retry-After` seconds",
            &["Retry-After"],
        );
        add_problem(
            responses,
            "503",
            "The database cannot answer or take writes now, or too many password checks are queued; retry after `Retry-After`",
            &["Retry-After"],
        );
    }
    for response in responses.values_mut() {
        let headers = response
            .as_object_mut()
            .map(|r| r.entry("headers").or_insert_with(|| json!({})));
        let Some(Value::Object(headers)) = headers else {
            continue;
        };
        headers.insert("X-Request-ID".to_owned(), header_ref("X-Request-ID"));
        if limited {
            for name in ["RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"] {
                headers.insert(name.to_owned(), header_ref(name));
            }
        }
    }
}

fn add_problem(
    responses: &mut Map<String, Value>,
    status: &str,
    description: &str,
    headers: &[&str],
) {
    let response = responses.entry(status.to_owned()).or_insert_with(|| {
        json!({
            "description": description,
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
        })
    });
    for name in headers {
        response["headers"][*name] = header_ref(name);
    }
}

/// `HEAD` answers as `GET` does, without a body.
fn head_of(get: &Map<String, Value>) -> Map<String, Value> {
    let mut head = get.clone();
    if let Some(id) = head.get("operationId").and_then(Value::as_str) {
        head.insert(
            "operationId".to_owned(),
            Value::String(format!("{id}_head")),
        );
    }
    head.insert(
        "summary".to_owned(),
        Value::String("As GET, without a body.".to_owned()),
    );
    head.remove("description");
    if let Some(responses) = head.get_mut("responses").and_then(Value::as_object_mut) {
        for response in responses.values_mut() {
            if let Some(response) = response.as_object_mut() {
                response.remove("content");
            }
        }
    }
    head
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_gets_the_shared_answers_once() {
        let mut doc = json!({
            "paths": {
                "/api/v1/things": {
                    "get": {"tags": ["things"], "operationId": "list", "security": [{"bearer": []}],
                            "parameters": [{"name": "limit", "in": "query"}],
                            "responses": {"200": {"description": "ok", "content": {"application/json": {}}}}},
                    "post": {"tags": ["things"], "operationId": "create", "requestBody": {},
                             "responses": {"422": {"description": "own text"}}}
                },
                "/health": {"get": {"tags": ["health"], "operationId": "live", "responses": {"200": {"description": "ok"}}}}
            },
            "components": {"schemas": {"Problem": {"required": ["type"], "properties": {"request_id": {}}}}}
        });
        complete(&mut doc);
        let things = &doc["paths"]["/api/v1/things"];
        assert_eq!(things["get"]["operationId"], "things_list");
        assert!(things["get"]["responses"]["401"].is_object());
        assert!(things["get"]["responses"]["422"].is_object());
        assert!(things["get"]["responses"]["429"]["headers"]["Retry-After"].is_object());
        assert!(things["post"]["responses"]["415"].is_object());
        assert!(things["post"]["responses"]["401"].is_null(), "not secured");
        assert_eq!(
            things["post"]["responses"]["422"]["description"],
            "own text"
        );
        assert_eq!(things["head"]["operationId"], "things_list_head");
        assert!(things["head"]["responses"]["200"]["content"].is_null());
        assert!(things["get"]["responses"]["200"]["headers"]["X-Request-ID"].is_object());
        let health = &doc["paths"]["/health"]["get"]["responses"];
        assert!(health["429"].is_null() && health["503"].is_null());
        assert!(health["200"]["headers"]["RateLimit-Limit"].is_null());
        assert!(
            doc["components"]["schemas"]["Problem"]["required"]
                .as_array()
                .is_some_and(|r| r.contains(&json!("request_id")))
        );
    }
}
