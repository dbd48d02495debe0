//! The framework's own limit, for `scripts/load.sh`: a bare actix-web 4 server with
//! one route, `GET /health` answering `{"status":"ok"}`, on the same worker count as
//! Portcullis (one per core, or `HTTP_WORKERS`), with no middleware and no logging.
//! Portcullis's throughput is reported as a ratio of this server's, measured in the
//! same run on the same machine.
//!
//! With `--with-portcullis-headers` it answers with the headers every Portcullis
//! response carries (the security headers, a request id, a timing, `Vary`), fixed:
//! what those bytes alone cost the server and the client, with none of the work
//! behind them.
//!
//! `cargo run --release --example baseline` binds 127.0.0.1 on a free port (or
//! `BIND_ADDRESS`) and prints `listening on http://ADDRESS`.

use std::net::TcpListener;

use actix_web::middleware::DefaultHeaders;
use actix_web::{App, HttpResponse, HttpServer, web};
use portcullis::http::security_headers::response_headers;

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
    let with_headers = std::env::args().any(|a| a == "--with-portcullis-headers");
    println!("listening on http://{}", listener.local_addr()?);
    let server = if with_headers {
        HttpServer::new(|| {
            let mut headers = DefaultHeaders::new();
            for header in response_headers(None) {
                headers = headers.add(header);
            }
            let headers = headers
                .add(("x-request-id", "6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f"))
                .add(("x-process-time", "0.000042"))
                .add((
                    "vary",
                    "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
                ));
            App::new()
                .wrap(headers)
                .route("/health", web::get().to(health))
        })
        .workers(workers)
        .listen(listener)?
        .run()
    } else {
        HttpServer::new(|| App::new().route("/health", web::get().to(health)))
            .workers(workers)
            .listen(listener)?
            .run()
    };
    actix_web::rt::System::new().block_on(server)
}
