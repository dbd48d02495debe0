//! `portcullis healthcheck`: exit 0 when the server's readiness probe
//! (`/health/ready`) answers 200, 1 otherwise — for container health checks in an
//! image with no curl. It asks the configured address (or `--url`) and waits five
//! seconds at most.

use std::process::ExitCode;
use std::time::Duration;

use super::{EXIT_CONFIG, EXIT_FAILURE, block_on};
use crate::config::{ConfigSources, Settings};

const TIMEOUT: Duration = Duration::from_secs(5);

pub fn run(sources: ConfigSources, url: Option<String>) -> ExitCode {
    let url = match url {
        Some(url) => url,
        None => match Settings::readiness_url(&sources) {
            Ok(url) => url,
            Err(reason) => {
                eprintln!("portcullis healthcheck: {reason}");
                return ExitCode::from(EXIT_CONFIG);
            }
        },
    };
    let asked = block_on(async {
        let client = reqwest::Client::builder().timeout(TIMEOUT).build()?;
        client.get(&url).send().await.map(|r| r.status())
    });
    match asked {
        Err(code) => code,
        Ok(Ok(status)) if status == reqwest::StatusCode::OK => {
            println!("ready: {url}");
            ExitCode::SUCCESS
        }
        Ok(Ok(status)) => {
            eprintln!("not ready: {url} answered {status}");
            ExitCode::from(EXIT_FAILURE)
        }
        Ok(Err(error)) => {
            eprintln!("not ready: {url} did not answer ({error})");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}
