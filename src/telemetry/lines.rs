//! How a log line is written, and what it says about the request being served.
//!
//! Every line logged while a request is served carries that request's id, method
//! and client address, so a failure deep in a service can be found from the id a
//! client reports. The fields live in a thread-local for the duration of each poll
//! of the request's future ([`InRequest`]) instead of a tracing span: a span is
//! built, formatted and torn down for every request whether or not anything is
//! logged, and that cost a quarter of the throughput of a request that logs
//! nothing. Here the fields cost a pointer swap per poll, and are written only
//! into lines that are written.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// What every line logged while a request is served says about it.
#[derive(Debug)]
pub struct RequestFields {
    pub request_id: Arc<str>,
    pub method: String,
    pub client_ip: Option<IpAddr>,
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<RequestFields>>> = const { RefCell::new(None) };
}

/// Puts `fields` in place for as long as it lives, and what was there back after
/// (also when the code in between panics).
struct Current(Option<Rc<RequestFields>>);

impl Current {
    fn set(fields: &Rc<RequestFields>) -> Self {
        Self(CURRENT.with(|c| c.replace(Some(Rc::clone(fields)))))
    }
}

impl Drop for Current {
    fn drop(&mut self) {
        let previous = self.0.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

/// Runs `work` with the request's fields on every line it logs.
pub fn in_request<R>(fields: &Rc<RequestFields>, work: impl FnOnce() -> R) -> R {
    let _current = Current::set(fields);
    work()
}

pin_project_lite::pin_project! {
    /// A request's future, with its fields on every line logged while it is polled.
    pub struct InRequest<F> {
        fields: Rc<RequestFields>,
        #[pin]
        inner: F,
    }
}

impl<F> InRequest<F> {
    pub fn new(fields: Rc<RequestFields>, inner: F) -> Self {
        Self { fields, inner }
    }
}

impl<F: Future> Future for InRequest<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _current = Current::set(this.fields);
        this.inner.poll(cx)
    }
}

/// Lines as text (`2026-01-02T03:04:05.123456Z  INFO target: message k=v
/// request_id=… method=… client_ip=…`) or as one JSON object each.
pub struct LineFormat {
    pub json: bool,
}

/// `YYYY-MM-DDThh:mm:ss.ffffffZ`, now.
fn timestamp() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.microsecond()
    )
}

/// An event's fields as JSON values.
#[derive(Default)]
struct JsonFields(Map<String, Value>);

impl Visit for JsonFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), Value::from(format!("{value:?}")));
    }
}

impl<S, N> FormatEvent<S, N> for LineFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let request = CURRENT.with(|c| c.borrow().clone());
        if self.json {
            let mut line = Map::new();
            line.insert("timestamp".to_owned(), Value::from(timestamp()));
            line.insert("level".to_owned(), Value::from(meta.level().as_str()));
            line.insert("target".to_owned(), Value::from(meta.target()));
            let mut fields = JsonFields::default();
            event.record(&mut fields);
            line.extend(fields.0);
            if let Some(request) = request {
                line.insert(
                    "request_id".to_owned(),
                    Value::from(request.request_id.as_ref()),
                );
                line.insert("method".to_owned(), Value::from(request.method.as_str()));
                if let Some(ip) = request.client_ip {
                    line.insert("client_ip".to_owned(), Value::from(ip.to_string()));
                }
            }
            return writeln!(writer, "{}", Value::Object(line));
        }
        let level = meta.level();
        if writer.has_ansi_escapes() {
            let color = match *level {
                tracing::Level::ERROR => "31",
                tracing::Level::WARN => "33",
                tracing::Level::INFO => "32",
                _ => "34",
            };
            write!(writer, "{}  \x1b[{color}m{level:>5}\x1b[0m ", timestamp())?;
        } else {
            write!(writer, "{}  {level:>5} ", timestamp())?;
        }
        write!(writer, "{}: ", meta.target())?;
        ctx.format_fields(writer.by_ref(), event)?;
        if let Some(request) = request {
            write!(
                writer,
                " request_id={} method={}",
                request.request_id, request.method
            )?;
            if let Some(ip) = request.client_ip {
                write!(writer, " client_ip={ip}")?;
            }
        }
        writeln!(writer)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    /// Lines written into memory.
    #[derive(Clone, Default)]
    struct Memory(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Memory {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Memory {
        type Writer = Memory;

        fn make_writer(&'a self) -> Memory {
            self.clone()
        }
    }

    fn logged(json: bool, work: impl FnOnce()) -> String {
        let memory = Memory::default();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .event_format(LineFormat { json })
            .with_writer(memory.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, work);
        String::from_utf8(memory.0.lock().expect("lock").clone()).expect("utf-8")
    }

    fn request() -> Rc<RequestFields> {
        Rc::new(RequestFields {
            request_id: Arc::from("req-42"),
            method: "POST".to_owned(),
            client_ip: "203.0.113.9".parse().ok(),
        })
    }

    #[test]
    fn lines_inside_a_request_carry_its_id_and_others_do_not() {
        let fields = request();
        let text = logged(false, || {
            in_request(&fields, || {
                tracing::error!(cause = "disk full", "could not write")
            });
            tracing::warn!("outside");
        });
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].contains("ERROR") && lines[0].contains("could not write"));
        assert!(lines[0].contains("cause=\"disk full\""), "{}", lines[0]);
        assert!(
            lines[0].ends_with("request_id=req-42 method=POST client_ip=203.0.113.9"),
            "{}",
            lines[0]
        );
        assert!(!lines[1].contains("request_id"), "{}", lines[1]);
    }

    #[test]
    fn a_polled_request_future_carries_its_id_and_json_lines_are_json() {
        let fields = request();
        let text = logged(true, || {
            let future = InRequest::new(fields, async {
                tracing::info!(status = 200_u64, "request completed");
            });
            futures_util::FutureExt::now_or_never(future).expect("ready");
        });
        let line: Value = serde_json::from_str(text.trim()).expect("one JSON line");
        assert_eq!(line["request_id"], "req-42");
        assert_eq!(line["method"], "POST");
        assert_eq!(line["client_ip"], "203.0.113.9");
        assert_eq!(line["status"], 200);
        assert_eq!(line["message"], "request completed");
        assert_eq!(line["level"], "INFO");
    }
}
