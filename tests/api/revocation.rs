//! The revocation store's defined fallback, with the fault injected: a complete
//! cache answers alone; an incomplete one asks the database, and a database error
//! there denies with 503.

use crate::helpers::{problem, spawn_app, spawn_app_with};

#[actix_web::test]
async fn a_complete_cache_answers_alone_when_the_database_fails() {
    let app = spawn_app().await;
    let live = app.signed_up("cache.live@example.org").await;
    let dead = app
        .signed_in("cache.live@example.org", crate::helpers::GOOD_PASSWORD)
        .await;
    app.post_with_token("/api/v1/auth/logout", &dead.access_token, None)
        .await;

    app.db.inject_io_errors(true);
    // Revoked stays revoked, valid stays valid: no database needed for either.
    let response = app
        .get_with_token("/__test/whoami", &dead.access_token)
        .await;
    assert_eq!(problem(response, 401).await["detail"], "Token revoked");
    let response = app
        .get_with_token("/__test/whoami", &live.access_token)
        .await;
    assert_eq!(response.status(), 200);
    app.db.inject_io_errors(false);
}

#[actix_web::test]
async fn a_cache_miss_with_a_database_error_is_denied_with_503() {
    // A one-entry cache is full after the first revocation: from then on it cannot
    // vouch for a miss.
    let app = spawn_app_with(&[("REVOCATION_CACHE_CAPACITY", "1")]).await;
    let victim = app.signed_up("cache.miss@example.org").await;
    let live = app
        .signed_in("cache.miss@example.org", crate::helpers::GOOD_PASSWORD)
        .await;
    app.post_with_token("/api/v1/auth/logout", &victim.access_token, None)
        .await;
    assert_eq!(
        app.get_with_token("/__test/whoami", &live.access_token)
            .await
            .status(),
        200
    );

    app.db.inject_io_errors(true);
    let response = app
        .get_with_token("/__test/whoami", &live.access_token)
        .await;
    assert!(response.headers().contains_key("retry-after"));
    let body = problem(response, 503).await;
    assert_eq!(body["title"], "Service unavailable");

    app.db.inject_io_errors(false);
    assert_eq!(
        app.get_with_token("/__test/whoami", &live.access_token)
            .await
            .status(),
        200
    );
    // The revoked token is still revoked through the database path.
    assert_eq!(
        app.get_with_token("/__test/whoami", &victim.access_token)
            .await
            .status(),
        401
    );
}
