//! `portcullis healthcheck`: exit 0 when the server's readiness probe
//! (`/health/ready`) answers 200 with `{"status":"ready"}`, 1 otherwise — for
//! container health checks in an image with no curl. It asks the configured address
//! (or `--url`) directly: no proxy from the environment, no redirect followed, so
//! nothing but the server itself can answer for it; five seconds at most a try.

use std::process::ExitCode;
use std::time::Duration;

use super::{EXIT_CONFIG, EXIT_FAILURE, block_on};
use crate::config::{ConfigSources, Settings};

const TIMEOUT: Duration = Duration::from_secs(5);

/// Why a URL did not say ready.
async fn ask(client: &reqwest::Client, url: &str) -> Result<(), String> {
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("did not answer ({e})"))?;
    let status = response.status();
    if status != reqwest::StatusCode::OK {
        return Err(format!("answered {status}"));
    }
    let body: serde_json::Value = response
        .json()
        .await
        .map_err(|_| "answered 200 without Portcullis's readiness body".to_owned())?;
    if body["status"] == "ready" {
        Ok(())
    } else {
        Err("answered 200 without Portcullis's readiness body".to_owned())
    }
}

pub fn run(sources: ConfigSources, url: Option<String>) -> ExitCode {
    let urls = match url {
        Some(url) => vec![url],
        None => match Settings::readiness_urls(&sources) {
            Ok(urls) => urls,
            Err(reason) => {
                eprintln!("portcullis healthcheck: {reason}");
                return ExitCode::from(EXIT_CONFIG);
            }
        },
    };
    let asked = block_on(async {
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot make an HTTP client ({e})"))?;
        let mut problems = Vec::new();
        for url in &urls {
            match ask(&client, url).await {
                Ok(()) => return Ok(url.clone()),
                Err(problem) => problems.push(format!("{url} {problem}")),
            }
        }
        Err(problems.join("; "))
    });
    match asked {
        Err(code) => code,
        Ok(Ok(url)) => {
            println!("ready: {url}");
            ExitCode::SUCCESS
        }
        Ok(Err(problems)) => {
            eprintln!("not ready: {problems}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}
