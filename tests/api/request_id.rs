use crate::helpers::{problem, spawn_app};

fn request_id(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("X-Request-ID present")
        .to_owned()
}

#[actix_web::test]
async fn a_request_id_is_generated_when_absent() {
    let app = spawn_app().await;
    let first = request_id(&app.get("/health").await);
    let second = request_id(&app.get("/health").await);
    assert_ne!(first, second);
    assert!(uuid::Uuid::parse_str(&first).is_ok(), "{first}");
}

#[actix_web::test]
async fn a_valid_incoming_request_id_is_propagated_to_header_and_problem() {
    let app = spawn_app().await;
    for id in ["abc-123_XYZ", "a", &"z".repeat(64)] {
        let response = app
            .client
            .get(app.url("/missing"))
            .header("x-request-id", id)
            .send()
            .await
            .expect("request");
        assert_eq!(request_id(&response), id);
        let body = problem(response, 404).await;
        assert_eq!(body["request_id"], id);
    }
}

#[actix_web::test]
async fn an_invalid_incoming_request_id_is_replaced() {
    let app = spawn_app().await;
    let too_long = "a".repeat(65);
    for id in [
        too_long.as_str(),
        "has space",
        "<script>",
        "a;b=c",
        "ünï",
        "../../etc",
    ] {
        let response = app
            .client
            .get(app.url("/health"))
            .header("x-request-id", id)
            .send()
            .await
            .expect("request");
        let echoed = request_id(&response);
        assert_ne!(echoed, id);
        assert!(
            uuid::Uuid::parse_str(&echoed).is_ok(),
            "replaced with a fresh id, got {echoed}"
        );
    }
}
