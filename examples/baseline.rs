//! The framework's own limit, for `scripts/load.sh`: a bare actix-web 4 server with
//! one route, `GET /health` answering `{"status":"ok"}`, on the same worker count as
//! Portcullis (one per core, or `HTTP_WORKERS`), with no middleware and no logging.
//! Portcullis's throughput is reported as a ratio of this server's, measured in the
//! same run on the same machine.
//!
//! `cargo run --release --example baseline` binds 127.0.0.1 on a free port (or
//! `BIND_ADDRESS`) and prints `listening on http://ADDRESS`.

use std::net::TcpListener;

use actix_web::{App, HttpResponse, HttpServer, web};

async fn health() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(r#"{"status":"ok"}"#)
}

fn main() -> std::io::Result<()> {
    let address = std::env::var("BIND_ADDRESS").unwrap_or_else(|_| "127.0.0.1:0".to_owned());
    let listener = TcpListener::bind(address)?;
    let workers = std::env::var("HTTP_WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    println!("listening on http://{}", listener.local_addr()?);
    actix_web::rt::System::new().block_on(
        HttpServer::new(|| App::new().route("/health", web::get().to(health)))
            .workers(workers)
            .listen(listener)?
            .run(),
    )
}
