use crate::helpers::{problem, spawn_app, spawn_app_with};

async fn client_ip(
    app: &crate::helpers::TestApp,
    forwarded_for: Option<&str>,
) -> reqwest::Response {
    let mut request = app.client.get(app.url("/__test/client-ip"));
    if let Some(value) = forwarded_for {
        request = request.header("x-forwarded-for", value);
    }
    request.send().await.expect("request")
}

#[actix_web::test]
async fn a_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored() {
    let app = spawn_app().await;
    let response = client_ip(&app, Some("203.0.113.5")).await;
    assert_eq!(response.text().await.expect("body"), "127.0.0.1");
}

#[actix_web::test]
async fn a_trusted_proxy_is_believed_up_to_the_rightmost_untrusted_hop() {
    let app = spawn_app_with(&[("TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8")]).await;
    // The client forged 6.6.6.6; our proxies (10.0.0.7, then 127.0.0.1) appended the rest.
    let response = client_ip(&app, Some("6.6.6.6, 203.0.113.5, 10.0.0.7")).await;
    assert_eq!(response.text().await.expect("body"), "203.0.113.5");
    let direct = client_ip(&app, None).await;
    assert_eq!(direct.text().await.expect("body"), "127.0.0.1");
}

#[actix_web::test]
async fn an_undeterminable_client_is_refused_not_guessed() {
    let app = spawn_app_with(&[("TRUSTED_PROXIES", "127.0.0.1")]).await;
    problem(client_ip(&app, Some("not-an-address")).await, 400).await;
}
