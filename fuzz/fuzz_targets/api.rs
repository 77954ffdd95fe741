//! The daemon's API on any request line, query and token: the routes, their path and query
//! extractors and the token check never panic, and every answer is JSON or text with a status.
//! The daemon behind it is gone (its channel dropped), so mutations get their refusal.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tower_service::Service;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.splitn(3, '\n');
    let method = match lines.next() {
        Some("P") => "POST",
        Some("D") => "DELETE",
        _ => "GET",
    };
    let uri = lines.next().unwrap_or("/");
    let token = lines.next().unwrap_or("");
    let Ok(req) = axum::http::Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {}", token.trim()))
        .body(axum::body::Body::empty())
    else {
        return;
    };
    runtime().block_on(async {
        let checker = warden::check::runner::Checker::start(Vec::new());
        let (control, rx) =
            warden::control::Control::new(checker, warden::proxy::stats::Registry::default());
        drop(rx);
        let mut app = warden::api::router(control, "t0ken".to_owned());
        let resp = app.call(req).await.expect("infallible");
        assert!(resp.status().as_u16() >= 200);
    });
});
