#![allow(clippy::unwrap_used)]
use std::time::Instant;
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = axum::Router::new().route("/hook", axum::routing::post(|_b: axum::body::Bytes| async { axum::http::StatusCode::NO_CONTENT }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = reqwest::Client::builder().no_proxy().tcp_nodelay(true).build().unwrap();
    for round in 0..3 {
        let t = Instant::now();
        for _ in 0..2000 {
            let r = client.post(&url).body(vec![b'x'; 200]).send().await.unwrap();
            assert!(r.status().is_success());
        }
        println!("round {round}: {:.3} ms per POST", t.elapsed().as_secs_f64() * 1000.0 / 2000.0);
    }
    let t = Instant::now();
    let secret = b"whsec_0123456789abcdef0123456789abcdef";
    for i in 0..2000 { let _ = postern_events::signature::sign(secret, i, &[b'x'; 300]); }
    println!("sign: {:.3} ms", t.elapsed().as_secs_f64() * 1000.0 / 2000.0);
}
